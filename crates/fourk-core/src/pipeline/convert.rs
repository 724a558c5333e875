//! `convert`: re-encode as PNG, JPEG or WebP (lossy or lossless), with quality meaning the
//! API's output_compression, metadata carried where the format allows, verified.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fourk_api::OutputFormat;
use image::DynamicImage;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Encode, Encoding, Input, Job, Summary};

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
    if format == OutputFormat::Png && enc.format == OutputFormat::Jpeg && spec.encode.flatten.is_none() {
        return png_to_jpeg(spec, enc, &out, started, cancel);
    }
    let (image, input) = super::read_input(&spec.input)?.take_image();
    let job = job(spec, &input, enc, started, cancel);
    super::deliver(&out, &image, &spec.encode, enc, job)
}

/// The sidecar's and ledger's record of a conversion of `input`.
fn job<'a>(
    spec: &ConvertSpec,
    input: &'a Input<()>,
    enc: Encoding,
    started: Instant,
    cancel: &CancellationToken,
) -> Job<'a> {
    let parameters = json!({
        "from": input.record.format,
        "to": enc.format,
        "flatten": spec.encode.flatten.map(|[r, g, b]| format!("#{r:02x}{g:02x}{b:02x}")),
    });
    Job::of_input("convert", input, parameters, None, started, cancel)
}

/// What reading a PNG for a JPEG made: the JPEG itself (streamed), or the decoded frame.
enum Read {
    Jpeg(fourk_imaging::StreamedJpeg),
    Frame(DynamicImage),
}

/// PNG to JPEG streamed ([`fourk_imaging::png_to_jpeg`]: decoding and encoding overlap, no
/// frame in memory) when the PNG allows it, else decoded and encoded as usual. The sidecar's
/// timings then name one `decode_encode` step instead of `decode` and `encode`.
fn png_to_jpeg(
    spec: &ConvertSpec,
    enc: Encoding,
    out: &Path,
    started: Instant,
    cancel: &CancellationToken,
) -> anyhow::Result<Summary> {
    let (compression, options) = (enc.quality.filter(|_| !enc.lossless), enc.options());
    let input = super::read_input_as(&spec.input, |bytes| {
        if let Some(jpeg) = fourk_imaging::png_to_jpeg(bytes, compression, &options) {
            return Ok(((jpeg.width, jpeg.height), Read::Jpeg(jpeg)));
        }
        let image = fourk_imaging::load_bytes(bytes, &fourk_imaging::load_limits())?;
        Ok(((image.width(), image.height()), Read::Frame(image)))
    })?;
    let (read, input) = input.take_image();
    let mut job = job(spec, &input, enc, started, cancel);
    match read {
        Read::Frame(image) => super::deliver(out, &image, &spec.encode, enc, job),
        Read::Jpeg(jpeg) => {
            if let Some(ms) = job.timings.remove("decode") {
                job.timings.insert("decode_encode", ms);
            }
            super::deliver_streamed_jpeg(out, jpeg, &spec.encode, enc, job)
        }
    }
}
