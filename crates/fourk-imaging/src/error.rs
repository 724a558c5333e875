//! Errors of the image pipeline, split by cause: each calls for a different action.

use std::path::PathBuf;

/// Everything that can go wrong turning bytes into a verified file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImagingError {
    /// The bytes are not a readable image of a supported format (truncated, corrupt, hostile).
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// Encoding failed (a bug or an impossible parameter).
    #[error("cannot encode {format} image: {message}")]
    Encode {
        /// Target format.
        format: &'static str,
        /// What the encoder said.
        message: String,
    },
    /// The image would need more memory or pixels than the limits allow.
    #[error("image exceeds decoding limits: {0}")]
    Limits(String),
    /// Not PNG, JPEG or WebP.
    #[error("unsupported image format: {0}")]
    Unsupported(String),
    /// Base64 that does not decode.
    #[error("invalid base64 image data: {0}")]
    Base64(String),
    /// Reading or writing a file.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`writing`, `reading`, `renaming`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}
