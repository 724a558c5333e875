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
    // The output frame is made (its 25 MB zeroed, at 4K) on the other core while the input
    // decodes, which is otherwise one core's work: with the alpha the header promises, and
    // made again after the decode in the rare case it promised wrong.
    let alpha = header.is_some_and(|p| p.has_alpha);
    let (input, early) = rayon::join(|| super::read_input(&spec.input), || blank(alpha, w, h));
    let mut input = input?;
    let (sw, sh) = (input.image.width(), input.image.height());
    let change = (f64::from(w) / f64::from(h)) / (f64::from(sw) / f64::from(sh)) - 1.0;
    if change.abs() > STRETCH_TOLERANCE && !spec.stretch {
        return Err(UsageError(format!(
            "{sw}x{sh} to {w}x{h} changes the aspect ratio by {:.1}%, which would stretch the picture\n\nhint: use `fourk fit {} --to {w}x{h} --mode cover` (crop) or `--mode contain` (pad), or pass --stretch",
            change * 100.0,
            spec.input.display()
        ))
        .into());
    }
    if w < sw || h < sh {
        tracing::info!("{sw}x{sh} to {w}x{h} is a downscale");
    }
    let t = Instant::now();
    let mut dst = match early {
        Ok(dst) if dst.color().has_alpha() == input.image.color().has_alpha() => dst,
        _ => blank_like(&input.image, w, h)
            .map_err(|e| super::pipeline_error(e, &format!("cannot make a {w}x{h} picture")))?,
    };
    Upscaler::new()
        .resize_into(&input.image, &mut dst, spec.filter, spec.sharpen)
        .map_err(|e| super::pipeline_error(e, "cannot upscale"))?;
    let process = super::ms(t);
    // The source frame is not needed any more; free it before encoding the larger one.
    input.image = DynamicImage::new_rgb8(0, 0);
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
