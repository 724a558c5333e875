//! The async HTTP client for OpenAI's image endpoints.
//!
//! It reads the official SDKs' variables (`OPENAI_API_KEY`, `OPENAI_BASE_URL`,
//! `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`), keeps the key secret, waits up to 600 s by default
//! (4K `high` can take minutes), and turns error envelopes into typed errors that say what to
//! do. Pointing `OPENAI_BASE_URL` at fourk's emulator needs no special code path.

mod client;
mod config;
mod error;

pub use client::{ApiResponse, Client, RateLimits};
pub use config::{Config, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
pub use error::ClientError;
