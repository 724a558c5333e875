//! `fourk upscale`: resample to an exact size (Lanczos3 by default, alpha premultiplied,
//! optional unsharp mask), verified, with metadata carried and a sidecar.

use std::time::Instant;

use fourk_imaging::{Filter, Upscaler, blank_like};
use image::DynamicImage;
use serde_json::json;

use super::pipeline::{self, Job};
use crate::UsageError;
use crate::cli::pipeline::{FilterArg, UpscaleArgs};
use crate::exit::Exit;
use tokio_util::sync::CancellationToken;

/// How far the aspect ratio may change before an upscale counts as a stretch.
pub const STRETCH_TOLERANCE: f64 = 0.01;

impl FilterArg {
    /// The library's filter.
    #[must_use]
    pub const fn filter(self) -> Filter {
        match self {
            Self::Lanczos3 => Filter::Lanczos3,
            Self::CatmullRom => Filter::CatmullRom,
            Self::Mitchell => Filter::Mitchell,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Lanczos3 => "lanczos3",
            Self::CatmullRom => "catmull-rom",
            Self::Mitchell => "mitchell",
        }
    }
}

pub(super) fn run(args: &UpscaleArgs, cancel: CancellationToken) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let Some((w, h)) = args.to.dims() else {
        return Err(UsageError(
            "--to auto is not a size: upscale needs the exact output size\n\nhint: --to 4k, or --to 3840x2160".into(),
        )
        .into());
    };
    let mut input = pipeline::read_input(&args.input)?;
    let enc = args.encode.resolve(&args.out, input.record.format)?;
    let out = pipeline::with_extension(&args.out, enc.format);
    let (sw, sh) = (input.image.width(), input.image.height());
    let change = (f64::from(w) / f64::from(h)) / (f64::from(sw) / f64::from(sh)) - 1.0;
    if change.abs() > STRETCH_TOLERANCE && !args.stretch {
        return Err(UsageError(format!(
            "{sw}x{sh} to {w}x{h} changes the aspect ratio by {:.1}%, which would stretch the picture\n\nhint: use `fourk fit {} --to {w}x{h} --mode cover` (crop) or `--mode contain` (pad), or pass --stretch",
            change * 100.0,
            args.input.display()
        ))
        .into());
    }
    if w < sw || h < sh {
        tracing::info!("{sw}x{sh} to {w}x{h} is a downscale");
    }
    let t = Instant::now();
    let mut dst = blank_like(&input.image, w, h)
        .map_err(|e| pipeline::pipeline_error(e, &format!("cannot make a {w}x{h} picture")))?;
    Upscaler::new()
        .resize_into(&input.image, &mut dst, args.filter.filter(), args.sharpen)
        .map_err(|e| pipeline::pipeline_error(e, "cannot upscale"))?;
    let process = pipeline::ms(t);
    // The source frame is not needed any more; free it before encoding the larger one.
    input.image = DynamicImage::new_rgb8(0, 0);
    let timings = [("decode", input.decode_ms), ("process", process)].into();
    let job = Job {
        operation: "upscale",
        inputs: vec![input.record.clone()],
        parameters: json!({
            "to": format!("{w}x{h}"),
            "from": format!("{sw}x{sh}"),
            "filter": args.filter.name(),
            "sharpen": args.sharpen,
            "stretch": args.stretch,
            "alpha": "premultiplied",
        }),
        provenance: &input.provenance,
        input_text: &input.text,
        source: input.source.clone(),
        report: None,
        timings,
        started,
        cancel,
    };
    let (_, exit) = pipeline::deliver(&out, &dst, &args.encode, enc, job, args.json)?;
    Ok(exit)
}
