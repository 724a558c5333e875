//! `sheet`: a contact sheet of drafts or variants, each labelled with its file name,
//! size, verdict and cost, so they are compared by looking.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fourk_api::OutputFormat;
use fourk_imaging::sheet::colors;
use fourk_imaging::{Cell, Expect, Line, SheetOptions};
use serde::Serialize;
use serde_json::json;

use tokio_util::sync::CancellationToken;

use super::{Encode, InputRecord, Job, SourceInfo, Summary};

/// A contact sheet.
#[derive(Debug, Clone)]
pub struct SheetSpec {
    /// The pictures, in sheet order.
    pub images: Vec<PathBuf>,
    /// Pictures per row (default: about the square root of the count, at most 8).
    pub columns: Option<u32>,
    /// Label each picture (name, size, verdict, cost and model).
    pub labels: bool,
    /// Edge of the square box each picture is fitted into, in pixels.
    pub cell: u32,
    /// Where to write the sheet.
    pub out: PathBuf,
    /// How it is written.
    pub encode: Encode,
}

/// One picture on the sheet, as recorded in the sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The path as given.
    pub path: PathBuf,
    /// Intact, and its sidecar (if any) says it verified and still matches it.
    pub ok: bool,
    /// The verdict in words, as on the label.
    pub verdict: String,
    /// Width, when readable.
    pub width: Option<u32>,
    /// Height, when readable.
    pub height: Option<u32>,
    /// Format, when readable.
    pub format: Option<OutputFormat>,
    /// File size.
    pub bytes: Option<u64>,
    /// Dollars, from the sidecar.
    pub cost_usd: Option<f64>,
    /// Whether that cost is an estimate.
    pub cost_estimate: Option<bool>,
    /// The model, from the sidecar.
    pub model: Option<String>,
}

fn human_bytes(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if f >= 1e6 {
        format!("{:.1} MB", f / 1e6)
    } else {
        format!("{:.0} kB", (f / 1e3).max(1.0))
    }
}

fn entry_for(path: &Path, cell: u32) -> (Cell, Entry, Option<InputRecord>) {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut entry = Entry {
        path: path.to_owned(),
        ok: false,
        verdict: String::new(),
        width: None,
        height: None,
        format: None,
        bytes: None,
        cost_usd: None,
        cost_estimate: None,
        model: None,
    };
    let mut lines = vec![Line::new(name, colors::TEXT)];
    let bytes = match super::read_limited(path, super::MAX_INPUT_BYTES) {
        Ok(b) => b,
        Err(e) => {
            entry.verdict = format!("FAIL unreadable: {e:#}");
            tracing::error!("{}: {e:#}", path.display());
            lines.push(Line::new(entry.verdict.clone(), colors::FAIL));
            return (Cell { image: None, lines }, entry, None);
        }
    };
    let (report, image) = rayon::join(
        || fourk_imaging::verify_bytes(&bytes, &Expect::default()),
        || {
            fourk_imaging::load_bytes(&bytes, &fourk_imaging::load_limits())
                .and_then(|img| fourk_imaging::thumbnail(&img, cell))
        },
    );
    entry.bytes = Some(report.bytes);
    if let Some(p) = &report.probe {
        entry.width = Some(p.width);
        entry.height = Some(p.height);
        entry.format = Some(p.format);
        lines.push(Line::new(
            format!(
                "{}x{} {} {}",
                p.width,
                p.height,
                p.format.as_str().to_uppercase(),
                human_bytes(report.bytes)
            ),
            colors::DIM,
        ));
    }
    let source = SourceInfo::near(path, &report.sha256);
    let image = match image {
        Ok(img) if report.intact => Some(img),
        Ok(_) => None,
        Err(e) => {
            tracing::error!("{}: {e}", path.display());
            None
        }
    };
    entry.verdict = match (&report.decode_error, &source) {
        (Some(e), _) => format!("FAIL corrupt: {e}"),
        (None, _) if image.is_none() => "FAIL cannot be decoded within the limits".to_owned(),
        (None, Some(s)) if s.sha256_matches == Some(false) => "FAIL changed since its sidecar".to_owned(),
        (None, Some(s)) if s.verified == Some(false) => "FAIL rejected by its checks".to_owned(),
        (None, Some(s)) if s.verified == Some(true) => "OK verified".to_owned(),
        (None, _) => "OK intact".to_owned(),
    };
    entry.ok = entry.verdict.starts_with("OK");
    if !entry.ok {
        tracing::error!("{}: {}", path.display(), entry.verdict);
    }
    lines.push(Line::new(
        entry.verdict.clone(),
        if entry.ok { colors::OK } else { colors::FAIL },
    ));
    if let Some(s) = &source {
        entry.model.clone_from(&s.model);
        if let Some(c) = &s.cost {
            entry.cost_usd = c["usd"].as_f64();
            entry.cost_estimate = c["estimate"].as_bool();
        }
        let cost = entry.cost_usd.map(|usd| {
            format!(
                "{}${usd:.3}",
                if entry.cost_estimate == Some(true) {
                    "~"
                } else {
                    ""
                }
            )
        });
        let text = [cost, entry.model.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() {
            lines.push(Line::new(text, colors::DIM));
        }
    }
    let record = report.probe.as_ref().map(|p| InputRecord {
        path: path.to_owned(),
        sha256: report.sha256.clone(),
        bytes: report.bytes,
        width: p.width,
        height: p.height,
        format: p.format,
    });
    (Cell { image, lines }, entry, record)
}

/// Lay out `spec.images` on a sheet. A picture that cannot be read gets a red label, and the
/// summary's `inputs_ok` is false; the sheet is still written.
///
/// # Errors
/// Usage errors from the encoding, I/O errors, and [`crate::send::Cancelled`].
pub fn sheet(spec: &SheetSpec, cancel: &CancellationToken) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (enc, out) = super::output(&spec.out, &spec.encode, OutputFormat::Png, None, None, "sheet")?;
    let t = Instant::now();
    // One picture failing does not stop the sheet: it gets a red label and the exit code says so.
    // One cell at a time, so the peaks of large pictures do not add up (each cell still decodes
    // and verifies on two threads).
    let results: Vec<_> = spec.images.iter().map(|p| entry_for(p, spec.cell)).collect();
    let decode = super::ms(t);
    let n = u32::try_from(spec.images.len()).unwrap_or(u32::MAX);
    let columns = spec
        .columns
        .unwrap_or_else(|| (f64::from(n).sqrt().ceil() as u32).clamp(1, 8));
    let options = SheetOptions {
        columns,
        cell: spec.cell,
        labels: spec.labels,
    };
    let t = Instant::now();
    let cells: Vec<Cell> = results.iter().map(|r| r.0.clone()).collect();
    let sheet = fourk_imaging::contact_sheet(&cells, options)
        .map_err(|e| super::pipeline_error(e, "cannot lay out the sheet"))?;
    drop(cells);
    let process = super::ms(t);
    let entries: Vec<Entry> = results.iter().map(|r| r.1.clone()).collect();
    let all_ok = entries.iter().all(|e| e.ok);
    let job = Job {
        operation: "sheet",
        inputs: results.iter().filter_map(|r| r.2.clone()).collect(),
        parameters: json!({ "columns": columns, "cell": spec.cell, "labels": spec.labels }),
        provenance: &[],
        input_text: &[],
        source: None,
        report: Some(json!({ "entries": entries })),
        timings: [("decode", decode), ("process", process)].into(),
        started,
        cancel: cancel.clone(),
    };
    let mut summary = super::deliver(
        &out,
        &image::DynamicImage::ImageRgb8(sheet),
        &spec.encode,
        enc,
        job,
    )?;
    summary.inputs_ok = all_ok;
    Ok(summary)
}
