//! `fourk fit`: make a picture exactly the target size without distorting it, by cover
//! (scale and crop), contain (scale and pad) or crop (no scaling).

use std::time::Instant;

use clap::ValueEnum;
use fourk_imaging::{FitMode, Gravity, Pad};
use serde_json::json;

use super::pipeline::{self, Job};
use crate::UsageError;
use crate::cli::pipeline::{FitArgs, ModeArg};
use crate::exit::Exit;
use tokio_util::sync::CancellationToken;

pub(super) fn run(args: &FitArgs, cancel: CancellationToken) -> anyhow::Result<Exit> {
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
        cancel,
    };
    let (_, exit) = pipeline::deliver(&out, &img, &args.encode, enc, job, args.json)?;
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use crate::cli::pipeline::{GravityArg, PadArg};
    use fourk_imaging::{Gravity, Pad};

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
