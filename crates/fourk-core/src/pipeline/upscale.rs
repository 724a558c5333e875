//! `upscale`: resample to an exact size (Lanczos3 by default, alpha premultiplied, optional
//! unsharp mask), verified, with metadata carried and a sidecar.

use std::path::PathBuf;
use std::time::Instant;

use fourk_api::OutputFormat;
use fourk_api::Size;
use fourk_imaging::{Filter, Upscaler, blank, blank_like};
use image::DynamicImage;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Encode, Job, Summary};
use crate::UsageError;

/// How far the aspect ratio may change before an upscale counts as a stretch.
pub const STRETCH_TOLERANCE: f64 = 0.01;

/// An upscale (or downscale) to an exact size.
#[derive(Debug, Clone)]
pub struct UpscaleSpec {
    /// The picture (PNG, JPEG or WebP).
    pub input: PathBuf,
    /// The exact output size (`auto` is refused).
    pub to: Size,
    /// Where to write (the format's extension is added when it has none).
    pub out: PathBuf,
    /// The resampling filter.
    pub filter: Filter,
    /// Unsharp-mask strength after resampling, 0-4.
    pub sharpen: Option<f32>,
    /// Allow a change of aspect ratio.
    pub stretch: bool,
    /// How the output is written.
    pub encode: Encode,
}

/// What reading the input made of it.
enum Decoded {
    /// The decoded picture, still to be resampled.
    Frame(DynamicImage),
    /// The finished upscale, resampled while the PNG inflated.
    Upscaled(fourk_imaging::StreamedUpscale),
}

fn decode(bytes: &[u8]) -> Result<((u32, u32), Decoded), fourk_imaging::PipelineError> {
    let image = fourk_imaging::load_bytes(bytes, &fourk_imaging::load_limits())?;
    Ok(((image.width(), image.height()), Decoded::Frame(image)))
}

/// Refuse a change of aspect ratio beyond [`STRETCH_TOLERANCE`] unless `--stretch`.
fn stretch_check(spec: &UpscaleSpec, (sw, sh): (u32, u32), (w, h): (u32, u32)) -> anyhow::Result<()> {
    let change = (f64::from(w) / f64::from(h)) / (f64::from(sw) / f64::from(sh)) - 1.0;
    if change.abs() > STRETCH_TOLERANCE && !spec.stretch {
        return Err(UsageError(format!(
            "{sw}x{sh} to {w}x{h} changes the aspect ratio by {:.1}%, which would stretch the picture\n\nhint: use `fourk fit {} --to {w}x{h} --mode cover` (crop) or `--mode contain` (pad), or pass --stretch",
            change * 100.0,
            spec.input.display()
        ))
        .into());
    }
    Ok(())
}

/// Upscale `spec.input` to `spec.to`.
///
/// # Errors
/// [`UsageError`] for `auto` or a stretch not allowed, decoding and I/O errors, and
/// [`crate::send::Cancelled`].
pub fn upscale(spec: &UpscaleSpec, cancel: &CancellationToken) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (w, h) = super::exact(spec.to, "upscale", "the exact output size")?;
    let header = fourk_imaging::probe_file(&spec.input).ok();
    let (enc, out) = super::output(
        &spec.out,
        &spec.encode,
        header.as_ref().map_or(OutputFormat::Png, |p| p.format),
        Some((w, h)),
        Some((w, h)),
        "upscale",
    )?;
    // A stretch is refused before any pixel is read (when the header is one the pipeline
    // reads at all: a picture over the pixel budget gets that error, from the read).
    if let Some(p) = &header
        && fourk_imaging::budget::check(
            p.width,
            p.height,
            fourk_imaging::budget::bytes_per_pixel(&p.color),
        )
        .is_ok()
    {
        stretch_check(spec, (p.width, p.height), (w, h))?;
    }
    // An 8-bit RGB or RGBA PNG is resampled while it inflates (png_upscale), band by band on
    // the other core; anything else is decoded first while the output frame is made on the
    // other core, with the alpha the header promises (made again after the decode in the rare
    // case it promised wrong).
    let streams = header
        .as_ref()
        .is_some_and(|p| p.format == OutputFormat::Png && (p.color == "rgb8" || p.color == "rgba8"));
    let alpha = header.as_ref().is_some_and(|p| p.has_alpha);
    let (input, early) = if streams {
        let input = super::read_input_as(&spec.input, |bytes| {
            match fourk_imaging::png_upscale(bytes, w, h, spec.filter, spec.sharpen) {
                Some(up) => Ok((up.source, Decoded::Upscaled(up))),
                None => decode(bytes),
            }
        });
        (input, None)
    } else {
        let (input, early) = rayon::join(
            || super::read_input_as(&spec.input, decode),
            || blank(alpha, w, h),
        );
        (input, Some(early))
    };
    let (image, mut input) = input?.take_image();
    let (sw, sh) = (input.record.width, input.record.height);
    stretch_check(spec, (sw, sh), (w, h))?;
    if w < sw || h < sh {
        tracing::info!("{sw}x{sh} to {w}x{h} is a downscale");
    }
    let t = Instant::now();
    let (dst, process) = match image {
        Decoded::Upscaled(up) => {
            // The resampling the decode did not hide counts as processing, not decoding.
            let process = up.after_decode.as_secs_f64() * 1000.0;
            input.decode_ms = (input.decode_ms - process).max(0.0);
            (up.image, process)
        }
        Decoded::Frame(image) => {
            let mut dst = match early {
                Some(Ok(dst)) if dst.color().has_alpha() == image.color().has_alpha() => dst,
                _ => blank_like(&image, w, h)
                    .map_err(|e| super::pipeline_error(e, &format!("cannot make a {w}x{h} picture")))?,
            };
            Upscaler::new()
                .resize_into(&image, &mut dst, spec.filter, spec.sharpen)
                .map_err(|e| super::pipeline_error(e, "cannot upscale"))?;
            // The source frame is freed here, before the larger one is encoded.
            (dst, super::ms(t))
        }
    };
    let job = Job::of_input(
        "upscale",
        &input,
        json!({
            "to": format!("{w}x{h}"),
            "from": format!("{sw}x{sh}"),
            "filter": spec.filter.name(),
            "sharpen": spec.sharpen,
            "stretch": spec.stretch,
            "alpha": "premultiplied",
        }),
        Some(process),
        started,
        cancel,
    );
    super::deliver(&out, &dst, &spec.encode, enc, job)
}
