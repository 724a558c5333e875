//! `fourk fit`: make a picture exactly the target size without distorting it, by cover
//! (scale and crop), contain (scale and pad) or crop (no scaling).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use clap::{Args, ValueEnum};
use fourk_api::Size;
use fourk_imaging::{FitMode, Gravity, Pad};
use serde_json::json;

use super::pipeline::{self, EncodeArgs, Job};
use crate::UsageError;
use crate::exit::Exit;

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

/// `center`, `top`, `bottom`, `left`, `right`, or a focal point `x,y` as fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GravityArg(pub Gravity, pub &'static str);

impl FromStr for GravityArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "center" | "centre" => Self(Gravity::Center, "center"),
            "top" => Self(Gravity::Top, "top"),
            "bottom" => Self(Gravity::Bottom, "bottom"),
            "left" => Self(Gravity::Left, "left"),
            "right" => Self(Gravity::Right, "right"),
            _ => {
                let bad = || {
                    format!(
                        "invalid gravity '{s}': expected center, top, bottom, left, right, or a focal point x,y as fractions from 0 to 1 (for example 0.5,0.3)"
                    )
                };
                let (x, y) = t.split_once(',').ok_or_else(bad)?;
                let (x, y) = (
                    x.trim().parse::<f32>().map_err(|_| bad())?,
                    y.trim().parse::<f32>().map_err(|_| bad())?,
                );
                if !(0.0..=1.0).contains(&x) || !(0.0..=1.0).contains(&y) {
                    return Err(bad());
                }
                Self(Gravity::Point(x, y), "point")
            }
        })
    }
}

/// `transparent` or `#RRGGBB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PadArg(pub Pad);

impl FromStr for PadArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("transparent") {
            return Ok(Self(Pad::Transparent));
        }
        pipeline::parse_color(s)
            .map(|c| Self(Pad::Color(c)))
            .map_err(|_| format!("invalid pad '{s}': expected transparent or #RRGGBB"))
    }
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

pub(super) fn run(args: &FitArgs) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let Some((w, h)) = args.to.dims() else {
        return Err(UsageError(
            "--to auto is not a size: fit needs the exact frame\n\nhint: --to 4k, or --to 3840x2160".into(),
        )
        .into());
    };
    let input = pipeline::read_input(&args.input)?;
    let enc = args.encode.resolve(&args.out, input.record.format)?;
    let out = pipeline::with_extension(&args.out, enc.format);
    let mode = match args.mode {
        ModeArg::Cover => FitMode::Cover,
        ModeArg::Contain => FitMode::Contain(args.pad.0),
        ModeArg::Crop => FitMode::Crop(args.pad.0),
    };
    let t = Instant::now();
    let img = fourk_imaging::fit(&input.image, w, h, mode, args.gravity.0)
        .map_err(|e| pipeline::pipeline_error(e, &format!("cannot fit to {w}x{h}")))?;
    let process = pipeline::ms(t);
    let gravity = match args.gravity.0 {
        Gravity::Point(x, y) => json!([x, y]),
        _ => json!(args.gravity.1),
    };
    let pad = match args.pad.0 {
        Pad::Color([r, g, b]) => json!(format!("#{r:02x}{g:02x}{b:02x}")),
        _ => json!("transparent"),
    };
    let job = Job {
        operation: "fit",
        inputs: vec![input.record.clone()],
        parameters: json!({
            "to": format!("{w}x{h}"),
            "from": format!("{}x{}", input.image.width(), input.image.height()),
            "mode": args.mode.to_possible_value().map(|v| v.get_name().to_owned()),
            "gravity": gravity,
            "pad": pad,
            "filter": "lanczos3",
        }),
        provenance: &input.provenance,
        input_text: &input.text,
        source: input.source.clone(),
        report: None,
        timings: [("decode", input.decode_ms), ("process", process)].into(),
        started,
    };
    let (_, exit) = pipeline::deliver(&out, &img, &args.encode, enc, job, args.json)?;
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gravity_parses_names_and_points() {
        assert_eq!("Top".parse::<GravityArg>().unwrap().0, Gravity::Top);
        assert_eq!(
            "0.25, 0.75".parse::<GravityArg>().unwrap().0,
            Gravity::Point(0.25, 0.75)
        );
        for bad in ["up", "1.5,0", "0.5", "a,b"] {
            let e = bad.parse::<GravityArg>().unwrap_err();
            assert!(e.contains("expected center"), "{e}");
        }
        assert_eq!("#0A0b0c".parse::<PadArg>().unwrap().0, Pad::Color([10, 11, 12]));
        assert!("blue".parse::<PadArg>().is_err());
    }
}
