//! The flags of the pipeline commands (upscale, fit, convert, cutout, sheet, compare) and
//! the output encoding they share, with the parsers of their values.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use fourk_api::{OutputFormat, Size};
use fourk_core::pipeline::values;
use fourk_imaging::sheet::DEFAULT_CELL;
use fourk_imaging::{DEFAULT_FEATHER, DEFAULT_TOLERANCE, Gravity, KeySpec, Pad};

/// `fourk compare`.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk compare native-4k.png master-2k.png --out cmp.png --json")]
pub struct CompareArgs {
    /// The reference picture (for example the native 4K render).
    pub a: PathBuf,
    /// The picture compared with it (for example the 2K master, or its upscale).
    pub b: PathBuf,
    /// Where to write the side-by-side picture.
    #[arg(long, short)]
    pub out: PathBuf,
    /// The region to compare, x,y,width,height at the larger picture's size (default: a
    /// 1024x1024 square from the centre).
    #[arg(long, value_name = "x,y,w,h")]
    pub crop: Option<CropArg>,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Print a JSON summary with the numbers (detail energy of each, ratio, PSNR, SSIM).
    #[arg(long)]
    pub json: bool,
}

/// `fourk convert`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  fourk convert hero.png --format webp --quality 80 --out hero.webp\n  fourk convert hero.png --out hero-small.png --png-level best"
)]
pub struct ConvertArgs {
    /// The picture (PNG, JPEG or WebP).
    pub input: PathBuf,
    /// Where to write (the format follows the extension unless --format says otherwise).
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// `fourk cutout`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  fourk cutout mascot-on-green.png --out mascot.png --json\n  fourk cutout portrait.jpg --model modnet.onnx --out portrait.png"
)]
pub struct CutoutArgs {
    /// The picture (PNG, JPEG or WebP), generated on a flat key colour for the chroma key.
    pub input: PathBuf,
    /// Where to write: PNG or WebP (JPEG has no alpha).
    #[arg(long, short)]
    pub out: PathBuf,
    /// The backdrop colour: auto (median of the outer 2% ring) or #RRGGBB.
    #[arg(long, default_value = "auto", value_name = "auto|#RRGGBB")]
    pub key: KeyArg,
    /// Colour distance (0-256, YCbCr units) up to which pixels become fully transparent.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE, value_name = "N")]
    pub tolerance: f32,
    /// Width (0-256) of the soft ramp from transparent to opaque beyond the tolerance.
    #[arg(long, default_value_t = DEFAULT_FEATHER, value_name = "N")]
    pub feather: f32,
    /// Use this ONNX matting/segmentation model instead of the chroma key: NCHW or NHWC RGB
    /// input in 0..1, one-channel output taken as alpha (sigmoid applied when its values fall
    /// outside 0..1). Runs on the CPU; nothing is downloaded.
    #[arg(long, value_name = "FILE.onnx", conflicts_with_all = ["key", "tolerance", "feather"])]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Print a JSON summary with the QA report (transparent share, halo score, touches
    /// border).
    #[arg(long)]
    pub json: bool,
}

/// How the frame is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ModeArg {
    /// Scale to cover the frame, crop the overflow at the gravity.
    #[default]
    Cover,
    /// Scale to fit inside the frame, pad the rest with --pad.
    Contain,
    /// No scaling: cut a frame-sized window at the gravity (padding where the picture is
    /// smaller).
    Crop,
}

/// `fourk fit`.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk fit square.png --to 4k --mode cover --gravity top --out banner.png")]
pub struct FitArgs {
    /// The picture (PNG, JPEG or WebP).
    pub input: PathBuf,
    /// The exact output size: WIDTHxHEIGHT or a preset (4k=3840x2160, 2k=2560x1440, ...).
    #[arg(long, value_name = "SIZE")]
    pub to: Size,
    /// cover (crop to fill), contain (pad to fit) or crop (no scaling).
    #[arg(long, value_enum, default_value_t)]
    pub mode: ModeArg,
    /// What to keep when cropping, where to sit when padding: center, top, bottom, left,
    /// right, or a focal point x,y as fractions of the picture (0.5,0.3).
    #[arg(long, default_value = "center", value_name = "GRAVITY")]
    pub gravity: GravityArg,
    /// Padding for contain and crop: transparent or #RRGGBB.
    #[arg(long, default_value = "transparent", value_name = "transparent|#RRGGBB")]
    pub pad: PadArg,
    /// Where to write (the format follows the extension unless --format says otherwise).
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// `fourk sheet`.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk sheet drafts/*.png --labels --out drafts-sheet.png")]
pub struct SheetArgs {
    /// The pictures (PNG, JPEG or WebP), in sheet order.
    #[arg(required = true, value_name = "IMAGES")]
    pub images: Vec<PathBuf>,
    /// Where to write the sheet.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Pictures per row (default: about the square root of the count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub columns: Option<u32>,
    /// Label each picture: file name, size and format, verdict (verified / intact / failed)
    /// and, when its sidecar has one, the cost and model.
    #[arg(long)]
    pub labels: bool,
    /// Edge of the square box each picture is fitted into, in pixels.
    #[arg(long, default_value_t = DEFAULT_CELL, value_name = "PIXELS", value_parser = clap::value_parser!(u32).range(64..=4096))]
    pub cell: u32,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Print a JSON summary with one entry per picture.
    #[arg(long)]
    pub json: bool,
}

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

/// PNG effort, as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PngLevelArg {
    /// Fastest, larger files.
    Fast,
    /// Balanced (about zlib level 6).
    Default,
    /// Smallest, slowest.
    Best,
}

/// Output flags shared by every pipeline command that writes a picture.
#[derive(Debug, Clone, Args)]
pub struct EncodeArgs {
    /// Output format (default: from --out's extension, else the input's format).
    #[arg(long)]
    pub format: Option<OutputFormat>,
    /// 0-100, with the meaning of the API's output_compression: JPEG quality, or lossy WebP
    /// quality (100 = best). JPEG defaults to 100; WebP without it is lossless.
    #[arg(long, value_name = "0-100", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub quality: Option<u8>,
    /// PNG effort: fast, default or best (PNG only; it is always lossless).
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub png_level: Option<PngLevelArg>,
    /// Lossless WebP effort, 0 (fastest) to 9 (smallest), the levels of `cwebp -lossless -z`
    /// (default 2).
    #[arg(long, value_name = "0-9", value_parser = clap::value_parser!(u8).range(0..=9))]
    pub webp_effort: Option<u8>,
    /// Lossless WebP (the WebP default when --quality is not given). PNG is always lossless;
    /// JPEG never is.
    #[arg(long)]
    pub lossless: bool,
    /// Composite transparent pixels onto this colour (#RRGGBB): needed to write a picture
    /// with transparency as JPEG.
    #[arg(long, value_name = "#RRGGBB", value_parser = parse_color)]
    pub flatten: Option<[u8; 3]>,
    /// Text to store in the PNG as a tEXt/iTXt chunk (repeatable); prompt, model and settings
    /// are added from the input's sidecar on their own.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// Replace a file already at --out (and its sidecar). Without it, fourk refuses before
    /// it reads the input.
    #[arg(long)]
    pub force: bool,
}

/// `#RRGGBB` or `RRGGBB` (see [`values::color`]).
///
/// # Errors
/// A message naming the expected form.
pub(crate) fn parse_color(s: &str) -> Result<[u8; 3], String> {
    values::color(s)
}

pub(crate) fn parse_meta(s: &str) -> Result<(String, String), String> {
    values::meta(s)
}

/// `x,y,w,h` in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropArg(pub (u32, u32, u32, u32));

impl FromStr for CropArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        values::crop(s).map(Self)
    }
}

/// `auto` or `#RRGGBB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyArg(pub KeySpec);

impl FromStr for KeyArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        values::key(s).map(Self)
    }
}

/// `center`, `top`, `bottom`, `left`, `right`, or a focal point `x,y` as fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GravityArg(pub Gravity);

impl FromStr for GravityArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        values::gravity(s).map(Self)
    }
}

/// `transparent` or `#RRGGBB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PadArg(pub Pad);

impl FromStr for PadArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        values::pad(s).map(Self)
    }
}
