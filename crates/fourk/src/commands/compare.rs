//! `fourk compare`: two renders side by side at 100%, with detail numbers, so the
//! native-versus-upscale decision has a number behind it.

use std::time::Instant;

use fourk_api::OutputFormat;
use fourk_imaging::sheet::colors;
use fourk_imaging::{Comparison, Line};
use serde_json::json;

use super::pipeline::{self, Job};
use crate::cli::pipeline::CompareArgs;
use crate::exit::Exit;
use tokio_util::sync::CancellationToken;

fn side_label(
    tag: &str,
    path: &std::path::Path,
    side: &fourk_imaging::compare::Side,
    r: &Comparison,
    ratio: Option<f64>,
) -> Vec<Line> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let size = if side.scaled == "none" {
        format!("{}x{} native", side.width, side.height)
    } else {
        format!(
            "{}x{} -> {}x{} ({})",
            side.width, side.height, r.common_width, r.common_height, side.scaled
        )
    };
    let detail = match ratio {
        Some(q) => format!("detail {:.2} = {:.0}% of A", side.detail_energy, q * 100.0),
        None => format!("detail {:.2}", side.detail_energy),
    };
    vec![
        Line::new(format!("{tag}: {name}"), colors::TEXT),
        Line::new(size, colors::DIM),
        Line::new(detail, colors::OK),
    ]
}

pub(super) fn run(args: &CompareArgs, cancel: CancellationToken) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let enc = args.encode.resolve(&args.out, OutputFormat::Png)?;
    let out = pipeline::with_extension(&args.out, enc.format);
    let (a, b) = rayon::join(|| pipeline::read_input(&args.a), || pipeline::read_input(&args.b));
    let (a, b) = (a?, b?);
    let t = Instant::now();
    let cmp = fourk_imaging::compare(&a.image, &b.image, args.crop.map(|c| c.0))
        .map_err(|e| pipeline::pipeline_error(e, "cannot compare"))?;
    let r = &cmp.report;
    let canvas = fourk_imaging::side_by_side(
        &cmp.a,
        &cmp.b,
        &side_label("A", &args.a, &r.a, r, None),
        &side_label("B", &args.b, &r.b, r, r.detail_ratio),
    )
    .map_err(|e| pipeline::pipeline_error(e, "cannot draw the comparison"))?;
    let process = pipeline::ms(t);
    for note in &r.notes {
        tracing::info!("{note}");
    }
    tracing::info!(
        "detail energy A {:.2}, B {:.2}{}; PSNR {}; SSIM {:.3}",
        r.a.detail_energy,
        r.b.detail_energy,
        r.detail_ratio
            .map(|q| format!(" ({:.0}% of A)", q * 100.0))
            .unwrap_or_default(),
        r.psnr_db
            .map_or_else(|| "inf (identical)".to_owned(), |p| format!("{p:.2} dB")),
        r.ssim
    );
    let mut report = serde_json::to_value(r)?;
    report["a"]["path"] = json!(args.a);
    report["b"]["path"] = json!(args.b);
    let job = Job {
        operation: "compare",
        inputs: vec![a.record.clone(), b.record.clone()],
        parameters: json!({ "crop": r.crop, "crop_given": args.crop.is_some() }),
        provenance: &[],
        input_text: &[],
        source: None,
        report: Some(report),
        timings: [("decode", a.decode_ms.max(b.decode_ms)), ("process", process)].into(),
        started,
        cancel,
    };
    let (_, exit) = pipeline::deliver(
        &out,
        &image::DynamicImage::ImageRgb8(canvas),
        &args.encode,
        enc,
        job,
        args.json,
    )?;
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use crate::cli::pipeline::CropArg;

    #[test]
    fn crops_parse_or_say_the_form() {
        assert_eq!("1,2,30,40".parse::<CropArg>().unwrap().0, (1, 2, 30, 40));
        for bad in ["1,2,3", "a,b,c,d", "0,0,2,2", "1,2,3,4,5"] {
            assert!(bad.parse::<CropArg>().unwrap_err().contains("x,y,width,height"));
        }
    }
}
