//! `convert`: re-encode as PNG, JPEG or WebP (lossy or lossless), with quality meaning the
//! API's output_compression, metadata carried where the format allows, verified.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Encode, Job, Summary};

/// A re-encoding.
#[derive(Debug, Clone)]
pub struct ConvertSpec {
    /// The picture (PNG, JPEG or WebP).
    pub input: PathBuf,
    /// Where to write (the format follows the extension unless `encode.format` says
    /// otherwise).
    pub out: PathBuf,
    /// How the output is written.
    pub encode: Encode,
}

/// Re-encode `spec.input`.
///
/// # Errors
/// Usage errors from the encoding, decoding and I/O errors, and [`crate::send::Cancelled`].
pub fn convert(spec: &ConvertSpec, cancel: &CancellationToken) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (format, dims) = super::input_header(&spec.input);
    let (enc, out) = super::output(&spec.out, &spec.encode, format, None, dims, "convert")?;
    let input = super::read_input(&spec.input)?;
    let job = Job::of_input(
        "convert",
        &input,
        json!({
            "from": input.record.format,
            "to": enc.format,
            "flatten": spec.encode.flatten.map(|[r, g, b]| format!("#{r:02x}{g:02x}{b:02x}")),
        }),
        None,
        started,
        cancel,
    );
    super::deliver(&out, &input.image, &spec.encode, enc, job)
}
