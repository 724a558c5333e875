//! Local image work for fourk: encoding, atomic saving, header probing and full verification.
//!
//! Every input is treated as untrusted: decoding runs under explicit limits and a truncated or
//! hostile file is an error, never a panic.

pub mod encode;
mod error;

pub use encode::{PngLevel, encode, encode_with};
pub use error::ImagingError;
