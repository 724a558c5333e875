//! `compare`: two renders side by side at 100%, with detail numbers, so the
//! native-versus-upscale decision has a number behind it.

use std::path::PathBuf;
use std::time::Instant;

use fourk_api::OutputFormat;
use fourk_imaging::sheet::colors;
use fourk_imaging::{Comparison, Line};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Encode, Job, Summary};

/// Two renders side by side at 100%, with detail numbers.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    /// The reference picture (for example the native 4K render).
    pub a: PathBuf,
    /// The picture compared with it.
    pub b: PathBuf,
    /// The region compared, `(x, y, width, height)` at the larger picture's size (default: a
    /// 1024x1024 square from the centre).
    pub crop: Option<(u32, u32, u32, u32)>,
    /// Where to write the side-by-side picture.
    pub out: PathBuf,
    /// How it is written.
    pub encode: Encode,
}

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

/// Compare `spec.a` with `spec.b`; the numbers are in the summary's report.
///
/// # Errors
/// Decoding and I/O errors, a crop outside the pictures, and [`crate::send::Cancelled`].
pub fn compare(spec: &CompareSpec, cancel: &CancellationToken) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (enc, out) = super::output(&spec.out, &spec.encode, OutputFormat::Png, None, None, "compare")?;
    let (a, b) = rayon::join(|| super::read_input(&spec.a), || super::read_input(&spec.b));
    let (a, b) = (a?, b?);
    let t = Instant::now();
    let cmp = fourk_imaging::compare(&a.image, &b.image, spec.crop)
        .map_err(|e| super::pipeline_error(e, "cannot compare"))?;
    let r = &cmp.report;
    let canvas = fourk_imaging::side_by_side(
        &cmp.a,
        &cmp.b,
        &side_label("A", &spec.a, &r.a, r, None),
        &side_label("B", &spec.b, &r.b, r, r.detail_ratio),
    )
    .map_err(|e| super::pipeline_error(e, "cannot draw the comparison"))?;
    let process = super::ms(t);
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
    report["a"]["path"] = json!(spec.a);
    report["b"]["path"] = json!(spec.b);
    let job = Job {
        operation: "compare",
        inputs: vec![a.record.clone(), b.record.clone()],
        parameters: json!({ "crop": r.crop, "crop_given": spec.crop.is_some() }),
        provenance: &[],
        input_text: &[],
        source: None,
        report: Some(report),
        timings: [("decode", a.decode_ms.max(b.decode_ms)), ("process", process)].into(),
        started,
        cancel: cancel.clone(),
    };
    super::deliver(
        &out,
        &image::DynamicImage::ImageRgb8(canvas),
        &spec.encode,
        enc,
        job,
    )
}
