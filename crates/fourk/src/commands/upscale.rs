//! `fourk upscale`: resample to an exact size (Lanczos3 by default, alpha premultiplied,
//! optional unsharp mask), verified, with metadata carried and a sidecar.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use fourk_api::Size;
use fourk_imaging::{Filter, Upscaler, blank_like};
use image::DynamicImage;
use serde_json::json;

use super::pipeline::{self, EncodeArgs, Job};
use crate::UsageError;
use crate::exit::Exit;

/// How far the aspect ratio may change before an upscale counts as a stretch.
pub const STRETCH_TOLERANCE: f64 = 0.01;

/// The resampling filter, as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FilterArg {
    /// Sharpest; faint ringing on hard edges (the default, as in libvips and Pillow).
    #[default]
    Lanczos3,
    /// A little softer, less ringing.
    CatmullRom,
    /// Softest, no visible ringing; suits flat illustrations.
    Mitchell,
}

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

/// `fourk upscale`.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk upscale master-2k.png --to 4k --out hero-4k.png")]
pub struct UpscaleArgs {
    /// The picture (PNG, JPEG or WebP).
    pub input: PathBuf,
    /// The exact output size: WIDTHxHEIGHT or a preset (4k=3840x2160, 2k=2560x1440, ...).
    #[arg(long, value_name = "SIZE")]
    pub to: Size,
    /// Where to write (the format follows the extension unless --format says otherwise).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Resampling filter.
    #[arg(long, value_enum, default_value_t)]
    pub filter: FilterArg,
    /// Unsharp-mask strength after resampling, 0-4 (0.5 is moderate).
    #[arg(long, value_name = "AMOUNT")]
    pub sharpen: Option<f32>,
    /// Allow a change of aspect ratio (the picture is stretched). Without it, a target of
    /// another shape is refused: use `fourk fit` to crop or pad instead.
    #[arg(long)]
    pub stretch: bool,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Print a JSON summary (path, size, format, verified, sidecar, metadata, timings).
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(args: &UpscaleArgs) -> anyhow::Result<Exit> {
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
    };
    let (_, exit) = pipeline::deliver(&out, &dst, &args.encode, enc, job, args.json)?;
    Ok(exit)
}
