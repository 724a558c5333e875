//! N cheap drafts with the target's aspect ratio (`fourk draft`), saved, verified, recorded
//! in the ledger (their ids are what a final takes) and laid out on a contact sheet.
//! [`draft`] takes a [`DraftSpec`] and returns a [`DraftReport`]; it never prints.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fourk_api::plan::{check_target, draft_size};
use fourk_api::{Capabilities, Cost, ModelCaps, OutputFormat, Quality};
use serde::Serialize;
use serde_json::json;

use crate::UsageError;
use crate::ledger::ImageId;
use crate::ledger::RunStatus;
use crate::route::Route;
use crate::save::{ImageSummary, indexed_path};
use crate::send::Control;
use crate::session::Endpoint;
use crate::workflow::{self, PlannedStep, Record, Render, WorkflowDryRun};

/// Drafts of one prompt for a target size.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftSpec {
    /// What to draw.
    pub prompt: String,
    /// How many drafts (1-10); each is billed.
    pub n: u32,
    /// The final's target size; the drafts take its aspect ratio at about one megapixel.
    pub size: fourk_api::Size,
    /// Draft quality.
    pub quality: Quality,
    /// The image model.
    pub model: String,
    /// Output format (`None`: from `out`'s extension, else png).
    pub format: Option<OutputFormat>,
    /// The drafts' base path (numbered); `None`: a default name in the working folder.
    pub out: Option<PathBuf>,
    /// Skip the contact sheet.
    pub no_sheet: bool,
    /// Replace files already at the drafts' or the sheet's names.
    pub force: bool,
    /// The Image API (one request for all) or the Responses API (one request each).
    pub route: Route,
    /// Where requests go.
    pub endpoint: Endpoint,
}

/// One draft.
#[derive(Debug, Clone, Serialize)]
pub struct DraftOut {
    /// Its ledger id (what a final takes).
    pub id: Option<ImageId>,
    /// The file.
    pub path: PathBuf,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Verified against the request.
    pub verified: bool,
    /// The Responses API response id, for a continuation.
    pub response_id: Option<String>,
    /// SHA-256 of the file as written (empty when not known).
    #[serde(skip)]
    pub sha256: String,
    /// The thumbnail made from the pixels decoded to verify it, when the run's
    /// [`crate::send::Control`] asked for thumbnails.
    #[serde(skip)]
    pub thumbnail: Option<std::sync::Arc<fourk_imaging::Thumbnail>>,
}

/// What a draft run made (the CLI's `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct DraftReport {
    /// The final's target, `WIDTHxHEIGHT`.
    pub target: String,
    /// The drafts' size.
    pub draft_size: String,
    /// Their quality.
    pub quality: Quality,
    /// The model.
    pub model: String,
    /// Each draft.
    pub drafts: Vec<DraftOut>,
    /// The contact sheet.
    pub sheet: Option<PathBuf>,
    /// Dollars in all.
    pub usd: f64,
    /// Some of `usd` is estimated.
    pub estimate: bool,
    /// The command that turns the first draft into the final.
    pub next: String,
    /// Every draft verified.
    #[serde(skip)]
    pub all_verified: bool,
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

/// `drafts.png` -> `drafts-sheet.png`.
fn sheet_path(base: &Path) -> PathBuf {
    let stem = base
        .file_stem()
        .map_or_else(|| "drafts".into(), |s| s.to_string_lossy().into_owned());
    base.with_file_name(format!("{stem}-sheet.png"))
}

/// The contact sheet of a draft run, found from one of its drafts (`drafts-2.png` ->
/// `drafts-sheet.png`, a single `drafts.png` -> `drafts-sheet.png`), when that file exists.
#[must_use]
pub fn sheet_of(draft: &Path) -> Option<PathBuf> {
    let stem = draft.file_stem()?.to_str()?;
    let base = match stem.rsplit_once('-') {
        Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => stem,
    };
    let sheet = sheet_path(&draft.with_file_name(format!("{base}.png")));
    sheet.is_file().then_some(sheet)
}

/// Every file a draft run may write: each draft's files and the sheet's.
fn draft_files(base: &Path, n: u32, format: OutputFormat, sheet: bool) -> Vec<PathBuf> {
    let mut files = crate::image_api::request_files(base, n as usize, format, None);
    if sheet {
        files.extend(crate::outputs::image_files(&sheet_path(base)));
    }
    files
}

/// What a draft run is, checked before anything is sent or written: shared by [`draft`] and
/// [`dry_run`].
struct Prepared<'c> {
    model: &'c ModelCaps,
    /// The final's target.
    target: (u32, u32),
    /// The drafts' size.
    dims: (u32, u32),
    /// The drafts' base path (numbered).
    base: PathBuf,
}

/// Every check of a draft run: the model, the target, the drafts' size, the format, the
/// output names free ([`crate::outputs::check`], or [`crate::outputs::check_dry`] when
/// `dry`).
fn prepare<'c>(spec: &DraftSpec, caps: &'c Capabilities, dry: bool) -> anyhow::Result<Prepared<'c>> {
    let model = caps.model(&spec.model).map_err(|e| UsageError(format!("{e}")))?;
    let target = check_target(model, spec.size).map_err(|e| UsageError(format!("cannot draft: {e}")))?;
    let dims = draft_size(model, target.0, target.1);
    let format =
        crate::image_api::output_format(spec.format, spec.out.as_deref())?.unwrap_or(OutputFormat::Png);
    let files = |b: &Path| draft_files(b, spec.n, format, !spec.no_sheet);
    let base = crate::outputs::resolve(spec.out.as_deref(), "fourk-draft", format, files)?;
    let worst = crate::outputs::worst_image_bytes(Some(dims)) * u64::from(spec.n + 1);
    if dry {
        crate::outputs::check_dry(&files(&base), spec.force, worst)?;
    } else {
        crate::outputs::check(&files(&base), spec.force, worst)?;
    }
    Ok(Prepared {
        model,
        target,
        dims,
        base,
    })
}

impl Prepared<'_> {
    /// Where each request saves: one request for all the drafts on the Image API, one per
    /// draft on the Responses API.
    fn request_outs(&self, spec: &DraftSpec) -> Vec<PathBuf> {
        if spec.route == Route::Responses {
            let format = spec.format.unwrap_or(OutputFormat::Png);
            (0..spec.n as usize)
                .map(|i| indexed_path(&self.base, i, spec.n as usize, format))
                .collect()
        } else {
            vec![self.base.clone()]
        }
    }

    /// The request that saves to `out` (one of [`Self::request_outs`]).
    fn render<'a>(&self, spec: &'a DraftSpec, out: &'a Path) -> Render<'a> {
        let responses = spec.route == Route::Responses;
        Render {
            n: if responses { 1 } else { spec.n },
            responses,
            force: spec.force,
            ..Render::image(
                &spec.model,
                &spec.prompt,
                self.dims,
                spec.quality,
                spec.format,
                out,
            )
        }
    }
}

/// The dry run of a draft run: the same checks as [`draft`], each request exactly as it would
/// leave (one with `n` on the Image API, `n` of one on the Responses API) with its estimate,
/// and the contact sheet. Nothing is sent, no file is written, no ledger row is added.
///
/// # Errors
/// The [`UsageError`] the real run would stop with.
pub fn dry_run(spec: &DraftSpec, fk: &crate::Fourk) -> anyhow::Result<WorkflowDryRun> {
    let caps = &fk.caps;
    let p = prepare(spec, caps, true)?;
    let mut notes = vec![format!(
        "{} draft(s) at {}x{} {} for a {}x{} final",
        spec.n, p.dims.0, p.dims.1, spec.quality, p.target.0, p.target.1
    )];
    let mut steps = Vec::new();
    for out in p.request_outs(spec) {
        let r = p.render(spec, &out);
        let dry = workflow::dry_run(&r, &spec.endpoint, caps)?;
        steps.push(PlannedStep::request("draft", &r, dry, &mut notes));
    }
    if !spec.no_sheet
        && let Some(size) = workflow::sheet_size(spec.n as usize, SHEET_LINES)
    {
        steps.push(PlannedStep::local("sheet", size, sheet_path(&p.base)));
    }
    if spec.out.is_none() {
        notes.push("the default file names are drawn again when the run starts".into());
    }
    let total = workflow::total_usd(&steps);
    Ok(WorkflowDryRun {
        steps,
        total_usd: total,
        worst_usd: total,
        notes: workflow::dedup(notes),
    })
}

/// The label lines of each draft on the contact sheet (id and file; size and verdict).
const SHEET_LINES: usize = 2;

/// Render the drafts, annotate their sidecars, record them and lay out the contact sheet.
/// Steps (`draft`, `sheet`) are reported to `control`, which can stop the work.
///
/// # Errors
/// [`UsageError`] before anything is sent; the first render's failure (a later Responses
/// draft that fails is logged and leaves the others); [`crate::send::Cancelled`].
#[allow(clippy::too_many_lines)]
pub async fn draft(spec: &DraftSpec, fk: &crate::Fourk, control: &Control) -> anyhow::Result<DraftReport> {
    let caps = &fk.caps;
    let p = prepare(spec, caps, false)?;
    let (model, target, dims, base) = (p.model, p.target, p.dims, &p.base);
    if let (Some(price), Some(u)) = (
        model.price,
        fourk_api::cost::predict_usage(model, &spec.prompt, dims.0, dims.1, spec.quality, 1),
    ) {
        let each = Cost::from_usage(&u, &price, false).usd;
        tracing::info!(
            "{} draft(s) at {}x{} {} for a {}x{} final (estimated ${:.3} in all)",
            spec.n,
            dims.0,
            dims.1,
            spec.quality,
            target.0,
            target.1,
            each * f64::from(spec.n)
        );
    }
    let record = Record::begin(
        fk.ledger_path(),
        "draft",
        &json!({
            "prompt": spec.prompt, "n": spec.n, "model": model.id, "quality": spec.quality,
            "target": format!("{}x{}", target.0, target.1), "draft_size": format!("{}x{}", dims.0, dims.1),
            "route": format!("{:?}", spec.route).to_lowercase(),
        }),
        control,
    );
    let started = Instant::now();
    if let Err(e) = record.step("draft") {
        return finish_err(&record, e.into());
    }
    let outs = p.request_outs(spec);
    let result: anyhow::Result<(Vec<ImageSummary>, bool)> = if spec.route == Route::Responses {
        // One image per Responses API request.
        let mut all = Vec::new();
        let mut ok = true;
        for (i, out) in outs.iter().enumerate() {
            let r = p.render(spec, out);
            match workflow::render(&r, &spec.endpoint, caps, &record).await {
                Ok((imgs, v)) => {
                    ok &= v;
                    all.extend(imgs);
                }
                Err(e) if all.is_empty() => return finish_err(&record, e),
                Err(e) => {
                    // The send path has it on record already.
                    tracing::error!("draft {} of {} failed: {e:#}", i + 1, spec.n);
                    ok = false;
                }
            }
        }
        Ok((all, ok))
    } else {
        let r = p.render(spec, base);
        workflow::render(&r, &spec.endpoint, caps, &record).await
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
        if let Err(e) = crate::sidecar::annotate(&img.sidecar, "workflow", &wf) {
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
            sha256: img.sha256.clone(),
            thumbnail: img.thumbnail.clone(),
        })
        .collect();
    let sheet = if spec.no_sheet || images.is_empty() {
        None
    } else if let Err(e) = record.step("sheet") {
        return finish_err(&record, e.into());
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
        match workflow::sheet(cells, sheet_path(base)).await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("the drafts are saved, but the contact sheet failed: {e:#}");
                None
            }
        }
    };
    record.finish(RunStatus::verified(all_ok));
    tracing::info!(
        "{} draft(s) in {:.1} s, ${usd:.3}{}; approve one, then `fourk final ID --native` or `--upscale`",
        images.len(),
        started.elapsed().as_secs_f64(),
        if estimate { " (estimate)" } else { "" }
    );
    Ok(DraftReport {
        target: format!("{}x{}", target.0, target.1),
        draft_size: format!("{}x{}", dims.0, dims.1),
        quality: spec.quality,
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
        all_verified: all_ok,
    })
}

/// Close the run of a failed render (the send path has the request on record) and return
/// its error.
fn finish_err(record: &Record, e: anyhow::Error) -> anyhow::Result<DraftReport> {
    Err(record.fail(e))
}
