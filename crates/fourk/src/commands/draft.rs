//! `fourk draft`: N cheap drafts with the target's aspect ratio, saved, verified, recorded in
//! the ledger (their ids are what `fourk final` takes) and laid out on a contact sheet.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fourk_api::plan::{check_target, draft_size};
use fourk_api::{Cost, OutputFormat, Quality};
use serde::Serialize;
use serde_json::json;

use crate::UsageError;
use crate::cli::Route;
use crate::cli::workflow::DraftArgs;
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::ledger::ImageId;
use fourk_core::save::{ImageSummary, indexed_path};
use fourk_core::workflow::{self, Record, Render};

/// One draft as printed.
#[derive(Debug, Serialize)]
struct DraftOut {
    id: Option<ImageId>,
    path: PathBuf,
    width: Option<u32>,
    height: Option<u32>,
    verified: bool,
    response_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    draft_size: String,
    quality: Quality,
    model: String,
    drafts: Vec<DraftOut>,
    sheet: Option<PathBuf>,
    usd: f64,
    estimate: bool,
    next: String,
}

/// Dollars of a set of summaries: one request's cost is repeated on each of its images, so
/// each distinct request id counts once.
#[must_use]
pub fn total_cost(images: &[ImageSummary]) -> (f64, bool) {
    let mut seen = std::collections::HashSet::new();
    let mut usd = 0.0;
    let mut estimate = false;
    for img in images {
        let rid = workflow::read_sidecar(&img.path)
            .and_then(|c| {
                c.pointer("/response/request_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| img.path.display().to_string());
        if let Some(c) = img.cost
            && seen.insert(rid)
        {
            usd += c.usd;
            estimate |= c.estimate;
        }
    }
    (usd, estimate)
}

fn default_base(format: Option<OutputFormat>) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from(format!(
        "fourk-draft-{secs}.{}",
        format.unwrap_or(OutputFormat::Png).extension()
    ))
}

#[allow(clippy::too_many_lines)]
pub(super) async fn run(args: &DraftArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let caps = &fk.caps;
    let model = caps.model(&args.model).map_err(|e| UsageError(format!("{e}")))?;
    let target = check_target(model, args.size).map_err(|e| UsageError(format!("cannot draft: {e}")))?;
    let dims = draft_size(model, target.0, target.1);
    let base = args.out.clone().unwrap_or_else(|| default_base(args.format));
    if let (Some(p), Some(u)) = (
        model.price,
        fourk_api::cost::predict_usage(model, &args.prompt, dims.0, dims.1, args.quality, 1),
    ) {
        let each = Cost::from_usage(&u, &p, false).usd;
        tracing::info!(
            "{} draft(s) at {}x{} {} for a {}x{} final (estimated ${:.3} in all)",
            args.n,
            dims.0,
            dims.1,
            args.quality,
            target.0,
            target.1,
            each * f64::from(args.n)
        );
    }
    let record = Record::begin(
        fk.ledger_path(),
        "draft",
        &json!({
            "prompt": args.prompt, "n": args.n, "model": model.id, "quality": args.quality,
            "target": format!("{}x{}", target.0, target.1), "draft_size": format!("{}x{}", dims.0, dims.1),
            "route": format!("{:?}", args.route).to_lowercase(),
        }),
    );
    let started = Instant::now();
    let responses = args.route == Route::Responses;
    let result: anyhow::Result<(Vec<ImageSummary>, bool)> = if responses {
        // One image per Responses API request.
        let mut all = Vec::new();
        let mut ok = true;
        let format = args.format.unwrap_or(OutputFormat::Png);
        for i in 0..args.n as usize {
            let out = indexed_path(&base, i, args.n as usize, format);
            let r = Render {
                model: &args.model,
                prompt: &args.prompt,
                size: dims,
                quality: args.quality,
                n: 1,
                format: args.format,
                out: &out,
                previous_response: None,
                responses: true,
                reference: None,
            };
            match workflow::render(&r, &args.endpoint.spec(), caps, &record).await {
                Ok((imgs, v)) => {
                    ok &= v;
                    all.extend(imgs);
                }
                Err(e) if all.is_empty() => return finish_err(&record, e),
                Err(e) => {
                    // The send path has it on record already.
                    tracing::error!("draft {} of {} failed: {e:#}", i + 1, args.n);
                    ok = false;
                }
            }
        }
        Ok((all, ok))
    } else {
        let r = Render {
            model: &args.model,
            prompt: &args.prompt,
            size: dims,
            quality: args.quality,
            n: args.n,
            format: args.format,
            out: &base,
            previous_response: None,
            responses: false,
            reference: None,
        };
        workflow::render(&r, &args.endpoint.spec(), caps, &record).await
    };
    let (images, all_ok) = match result {
        Ok(v) => v,
        Err(e) => return finish_err(&record, e),
    };
    let wf = json!({
        "command": "draft",
        "step": "draft",
        "target": format!("{}x{}", target.0, target.1),
        "draft_size": format!("{}x{}", dims.0, dims.1),
    });
    for img in &images {
        if let Err(e) = fourk_core::sidecar::annotate(&img.sidecar, "workflow", &wf) {
            tracing::warn!("{e:#}");
        }
    }
    let ids = record.images(&images);
    let (usd, estimate) = total_cost(&images);
    let drafts: Vec<DraftOut> = images
        .iter()
        .enumerate()
        .map(|(i, img)| DraftOut {
            id: ids.get(i).copied(),
            path: img.path.clone(),
            width: img.width,
            height: img.height,
            verified: img.verified,
            response_id: workflow::read_sidecar(&img.path).and_then(|c| {
                c.pointer("/responses/response_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            }),
        })
        .collect();
    let sheet = if args.no_sheet || images.is_empty() {
        None
    } else {
        let cells = drafts
            .iter()
            .map(|d| {
                let name = d
                    .path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (
                    vec![
                        d.id.map_or_else(|| name.clone(), |id| format!("#{id}  {name}")),
                        format!(
                            "{}x{} {}",
                            d.width.unwrap_or(0),
                            d.height.unwrap_or(0),
                            if d.verified { "verified" } else { "NOT verified" }
                        ),
                    ],
                    d.path.clone(),
                )
            })
            .collect();
        let stem = base
            .file_stem()
            .map_or_else(|| "drafts".into(), |s| s.to_string_lossy().into_owned());
        let out = base.with_file_name(format!("{stem}-sheet.png"));
        match workflow::sheet(cells, out).await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("the drafts are saved, but the contact sheet failed: {e:#}");
                None
            }
        }
    };
    record.finish(if all_ok { "ok" } else { "check_failed" });
    tracing::info!(
        "{} draft(s) in {:.1} s, ${usd:.3}{}; approve one, then `fourk final ID --native` or `--upscale`",
        images.len(),
        started.elapsed().as_secs_f64(),
        if estimate { " (estimate)" } else { "" }
    );
    let report = Report {
        target: format!("{}x{}", target.0, target.1),
        draft_size: format!("{}x{}", dims.0, dims.1),
        quality: args.quality,
        model: model.id.clone(),
        next: format!(
            "fourk final {} --native --size {}x{}",
            drafts
                .first()
                .and_then(|d| d.id)
                .map_or_else(|| "ID".into(), |id| id.to_string()),
            target.0,
            target.1
        ),
        drafts,
        sheet,
        usd,
        estimate,
    };
    let p = Printer;
    if args.json {
        p.json(&report);
    } else {
        for d in &report.drafts {
            p.line(&format!(
                "{}\t{}",
                d.id.map_or_else(|| "-".into(), |id| id.to_string()),
                d.path.display()
            ));
        }
        if let Some(s) = &report.sheet {
            p.line(&format!("sheet\t{}", s.display()));
        }
    }
    Ok(if all_ok { Exit::Success } else { Exit::CheckFailed })
}

/// Close the run of a failed render (the send path has the request on record) and return
/// its error.
fn finish_err(record: &Record, e: anyhow::Error) -> anyhow::Result<Exit> {
    record.finish("failed");
    Err(e)
}
