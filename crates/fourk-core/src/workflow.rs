//! What the workflows (draft, final, deliver) share: one render through the core's generate
//! and edit (so saving, verification, sidecars and the ledger record are the same as
//! everywhere), the local upscale of a master with its own sidecar, the contact sheet of
//! drafts, and the `workflow` section these commands add to every sidecar they touch.
//!
//! A render is a typed [`GenerateSpec`] or [`EditSpec`] built here, with every option the
//! render does not set left at its default: no argument list is built or parsed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use fourk_api::{Capabilities, OutputFormat, Quality, Size};
use fourk_imaging::{Cell, Expect, Filter, Line, SheetOptions};
use serde::Serialize;
use serde_json::{Value, json};

use crate::image_api::DryRun;
use crate::ledger::RunStatus;
use crate::ledger::{ImageId, Ledger, RunId};
use crate::route::{Route, RouteSpec};
use crate::save::ImageSummary;
use crate::send::{Cancelled, Control, Progress, Recorder};
use crate::session::Endpoint;
use crate::sidecar::{self, Checks};
use crate::spec::{EditSpec, GenerateSpec};

/// One render: what to ask for and where to put it.
#[derive(Debug, Clone)]
pub struct Render<'a> {
    /// Image model.
    pub model: &'a str,
    /// Prompt.
    pub prompt: &'a str,
    /// Output size.
    pub size: (u32, u32),
    /// Quality.
    pub quality: Quality,
    /// Images in the request.
    pub n: u32,
    /// Output format (from `out`'s extension when `None`).
    pub format: Option<OutputFormat>,
    /// Output path (numbered when `n` > 1).
    pub out: &'a Path,
    /// Continue a Responses API conversation (the draft's response id).
    pub previous_response: Option<&'a str>,
    /// Use the Responses API route.
    pub responses: bool,
    /// A reference image: the render is an edit of it.
    pub reference: Option<&'a Path>,
    /// Replace files already at the output names (the workflow checked them all first).
    pub force: bool,
}

impl<'a> Render<'a> {
    /// One image of `model` at `size` and `quality` saved to `out` on the Image API, in the
    /// format of `format` (else `out`'s extension): no reference, no continuation.
    #[must_use]
    pub fn image(
        model: &'a str,
        prompt: &'a str,
        size: (u32, u32),
        quality: Quality,
        format: Option<OutputFormat>,
        out: &'a Path,
    ) -> Self {
        Self {
            model,
            prompt,
            size,
            quality,
            n: 1,
            format,
            out,
            previous_response: None,
            responses: false,
            reference: None,
            force: false,
        }
    }
}

/// The route of a render: the Responses API for a draft made there or a continuation.
fn route_of(r: &Render<'_>) -> RouteSpec {
    RouteSpec {
        route: if r.responses || r.previous_response.is_some() {
            Route::Responses
        } else {
            Route::Images
        },
        previous_response: r.previous_response.map(str::to_owned),
        ..RouteSpec::default()
    }
}

/// What a render sends: a generation, or an edit of its reference image.
#[derive(Debug, Clone)]
pub enum RenderSpec {
    /// No reference image: the core's generate.
    Generate(GenerateSpec),
    /// A reference image: the core's edit.
    Edit(EditSpec),
}

/// The spec a render sends through the core's generate or edit: size, quality, count,
/// format, output, `force` and route from `r`, every other option at its default.
#[must_use]
pub fn render_spec(r: &Render<'_>, endpoint: &Endpoint) -> RenderSpec {
    let size = Size::Exact {
        width: r.size.0,
        height: r.size.1,
    };
    let n = (r.n > 1).then(|| u8::try_from(r.n).unwrap_or(u8::MAX));
    if let Some(reference) = r.reference {
        let mut spec = EditSpec::new(vec![reference.to_path_buf()], r.prompt, r.model, endpoint.clone());
        spec.size = size;
        spec.image.quality = Some(r.quality);
        spec.image.format = r.format;
        spec.n = n;
        spec.out = Some(r.out.to_path_buf());
        spec.force = r.force;
        spec.route = route_of(r);
        RenderSpec::Edit(spec)
    } else {
        let mut spec = GenerateSpec::new(r.prompt, r.model, size, endpoint.clone());
        spec.image.quality = Some(r.quality);
        spec.image.format = r.format;
        spec.n = n;
        spec.out = Some(r.out.to_path_buf());
        spec.force = r.force;
        spec.route = route_of(r);
        RenderSpec::Generate(spec)
    }
}

/// Render, save, verify and write sidecars through the core's generate or edit, every
/// request on record in `record`'s run.
///
/// # Errors
/// What generate and edit fail with: usage errors before sending, client errors, IO errors.
pub async fn render(
    r: &Render<'_>,
    endpoint: &Endpoint,
    caps: &Capabilities,
    record: &Record,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    match render_spec(r, endpoint) {
        RenderSpec::Edit(spec) => crate::edit::edit(&spec, caps, &record.rec).await,
        RenderSpec::Generate(spec) => crate::generate::generate(&spec, caps, &record.rec).await,
    }
}

/// The dry run of a render: the exact body the core's generate or edit would send and its
/// estimate, with the same checks (an edit reads and checks its reference image). Nothing
/// is sent, no file is written, nothing is recorded.
///
/// # Errors
/// [`crate::UsageError`] naming every broken rule, as the render would.
pub fn dry_run(r: &Render<'_>, endpoint: &Endpoint, caps: &Capabilities) -> anyhow::Result<DryRun> {
    match render_spec(r, endpoint) {
        RenderSpec::Edit(spec) => crate::edit::dry_run(&spec, caps),
        RenderSpec::Generate(spec) => crate::generate::dry_run(&spec, caps),
    }
}

/// One step of a workflow's dry run: what it would send (or do locally), at which size,
/// for how much, and where its file would go.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    /// `draft`, `native`, `master`, `upscale` or `sheet`.
    pub step: &'static str,
    /// The request body as it would leave (`None` for a local step, which sends nothing).
    pub body: Option<Value>,
    /// `WIDTHxHEIGHT` of what the step makes.
    pub size: String,
    /// Predicted dollars (`Some(0.0)` for a local step; `None` without prices or a token
    /// rule).
    pub estimate_usd: Option<f64>,
    /// Where the step would save (for a request of several images, the base name they are
    /// numbered from: `NAME-1.EXT`, `NAME-2.EXT`, ...).
    pub output: PathBuf,
}

impl PlannedStep {
    /// The planned request of a render, from its dry run; the checks' warnings go to
    /// `notes`.
    pub(crate) fn request(step: &'static str, r: &Render<'_>, dry: DryRun, notes: &mut Vec<String>) -> Self {
        notes.extend(dry.warnings.into_iter().map(|w| w.message));
        Self {
            step,
            body: Some(dry.body),
            size: format!("{}x{}", r.size.0, r.size.1),
            estimate_usd: dry.estimate.map(|e| e.cost.usd),
            output: r.out.to_path_buf(),
        }
    }

    /// A local step (upscale, contact sheet): nothing sent, nothing billed.
    pub(crate) fn local(step: &'static str, (w, h): (u32, u32), output: PathBuf) -> Self {
        Self {
            step,
            body: None,
            size: format!("{w}x{h}"),
            estimate_usd: Some(0.0),
            output,
        }
    }
}

/// What a workflow's dry run shows (`draft`, `final`, `deliver`): every step it would take
/// with its exact request and estimate, the totals, and notes (the checks' warnings, what
/// the run would decide). Nothing is sent, no file is written, no ledger row is added.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowDryRun {
    /// The steps in order. For `deliver`, the native attempt, then the fallback it takes
    /// when the native image fails or does not verify.
    pub steps: Vec<PlannedStep>,
    /// Predicted dollars when every step goes as planned (for `deliver`: the native attempt
    /// ships); `None` when a request has no estimate.
    pub total_usd: Option<f64>,
    /// Predicted dollars in the worst case (for `deliver`: native attempt plus fallback);
    /// `None` when a request has no estimate.
    pub worst_usd: Option<f64>,
    /// Warnings of the checks and what the run would decide, in words.
    pub notes: Vec<String>,
}

/// `notes` without repeats, in order (each request of a run warns the same way).
pub(crate) fn dedup(notes: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    notes.into_iter().filter(|n| seen.insert(n.clone())).collect()
}

/// The sum of the steps' estimates; `None` when one has none.
#[must_use]
pub fn total_usd<'s>(steps: impl IntoIterator<Item = &'s PlannedStep>) -> Option<f64> {
    steps.into_iter().map(|s| s.estimate_usd).sum()
}

/// Read a sidecar as JSON, if there is one.
#[must_use]
pub fn read_sidecar(image: &Path) -> Option<Value> {
    std::fs::read(sidecar::path_for(image))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// `dir/hero.png` -> `dir/hero.master.png`.
#[must_use]
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    match path.extension() {
        Some(ext) => path.with_file_name(format!("{stem}.{suffix}.{}", ext.to_string_lossy())),
        None => path.with_file_name(format!("{stem}.{suffix}")),
    }
}

/// The sidecar of a local upscale.
#[derive(Debug, Serialize)]
struct UpscaleSidecar<'a> {
    sidecar_version: u32,
    fourk_version: &'static str,
    image: String,
    route: fourk_api::RouteLabel,
    model: &'a str,
    /// The deliverable's settings, so history and cost read this like any other image.
    request: Value,
    source: Value,
    parameters: Value,
    usage: Option<()>,
    cost: Option<()>,
    checks: Checks,
    workflow: &'a Value,
}

/// Upscale `master` to exactly `target` (Lanczos3, alpha premultiplied), encode it in the
/// master's format, verify it, save it atomically (as `NAME.rejected.EXT` when it fails) and
/// write its sidecar. Runs on a blocking thread. Costs nothing, so the summary has no usage.
///
/// # Errors
/// When the master cannot be read or decoded, or the output cannot be written.
pub async fn upscale(
    master: &Path,
    target: (u32, u32),
    out: &Path,
    model: &str,
    prompt: &str,
    quality: Quality,
    workflow: Value,
) -> anyhow::Result<ImageSummary> {
    let (master, out, model, prompt) = (
        master.to_owned(),
        out.to_owned(),
        model.to_owned(),
        prompt.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        upscale_blocking(&master, target, &out, &model, &prompt, quality, &workflow)
    })
    .await
    .context("the upscale thread stopped")?
}

fn upscale_blocking(
    master: &Path,
    (w, h): (u32, u32),
    out: &Path,
    model: &str,
    prompt: &str,
    quality: Quality,
    workflow: &Value,
) -> anyhow::Result<ImageSummary> {
    // Read once: hashed for the sidecar, its format named by its magic bytes (the decode
    // parses the header itself), decoded.
    let master_bytes =
        std::fs::read(master).with_context(|| format!("reading master {}", master.display()))?;
    let master_sha = fourk_imaging::verify::sha256_hex(&master_bytes);
    let format = fourk_imaging::probe::detect_format(&master_bytes)
        .with_context(|| format!("reading master {}", master.display()))?;
    let src = fourk_imaging::load_bytes(&master_bytes, &fourk_imaging::load_limits())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("decoding master {}", master.display()))?;
    drop(master_bytes);
    let (sw, sh) = (src.width(), src.height());
    let dst = fourk_imaging::upscale(&src, w, h, Filter::Lanczos3, None)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("upscaling {} to {w}x{h}", master.display()))?;
    drop(src);
    let expect = Expect {
        width: Some(w),
        height: Some(h),
        format: Some(format),
        alpha: None,
        thumbnail: None,
    };
    // A PNG is decoded for verification while it is encoded; the save hashes it, and
    // decodes anything else, while the bytes are written.
    let file = fourk_imaging::encode_verified(
        &dst,
        format,
        None,
        &fourk_imaging::EncodeOptions::default(),
        fourk_imaging::metadata::prepare(format, &[], &[])?,
        &expect,
    )?;
    drop(dst);
    let saved = fourk_imaging::save_bytes_verified_decoded(
        out,
        file.bytes,
        &file.decoded,
        &expect,
        fourk_imaging::Replace::Yes,
    )?;
    if saved.rejected {
        tracing::error!(
            "the upscale of {} failed verification (kept as {}); this is a bug in fourk",
            master.display(),
            saved.path.display()
        );
    }
    let (path, report) = (saved.path, saved.report);
    let checks = Checks::from_report(Some((w, h)), format, report);
    let car = UpscaleSidecar {
        sidecar_version: sidecar::SIDECAR_VERSION,
        fourk_version: env!("CARGO_PKG_VERSION"),
        image: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        route: fourk_api::RouteLabel::LocalUpscale,
        model,
        request: json!({"prompt": prompt, "size": format!("{w}x{h}"), "quality": quality.as_str()}),
        source: json!({
            "path": master.display().to_string(),
            "sha256": master_sha,
            "width": sw,
            "height": sh,
        }),
        parameters: json!({"filter": "lanczos3", "sharpen": null, "alpha": "premultiplied"}),
        usage: None,
        cost: None,
        checks: checks.clone(),
        workflow,
    };
    let sidecar_path = sidecar::path_for(&path);
    let mut json_bytes = serde_json::to_vec_pretty(&car)?;
    json_bytes.push(b'\n');
    fourk_imaging::save_atomic(&sidecar_path, &json_bytes)?;
    Ok(ImageSummary {
        path,
        width: checks.actual_width,
        height: checks.actual_height,
        format: checks.actual_format,
        verified: checks.verified,
        sidecar: sidecar_path,
        usage: None,
        cost: None,
        source: "local",
        ledger_id: None,
        attempt_id: None,
        sha256: checks.sha256,
        bytes: checks.bytes,
        request_id: None,
        thumbnail: None,
    })
}

/// A contact sheet of `images` (label lines: id, file, size, verdict, cost), as a verified
/// PNG with a sidecar. Runs on a blocking thread.
///
/// # Errors
/// When a picture cannot be laid out or the sheet cannot be written.
pub async fn sheet(images: Vec<(Vec<String>, PathBuf)>, out: PathBuf) -> anyhow::Result<PathBuf> {
    tokio::task::spawn_blocking(move || sheet_blocking(&images, &out))
        .await
        .context("the contact-sheet thread stopped")?
}

/// The layout of a contact sheet of `n` pictures.
fn sheet_options(n: usize) -> SheetOptions {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let columns = (n as f64).sqrt().ceil().max(1.0) as u32;
    SheetOptions {
        columns,
        cell: 384,
        labels: true,
    }
}

/// The size of the contact sheet [`sheet`] lays out for `n` pictures labelled with `lines`
/// lines each (laid out in memory, nothing written); `None` when there is nothing to lay out.
#[must_use]
pub fn sheet_size(n: usize, lines: usize) -> Option<(u32, u32)> {
    let cells: Vec<Cell> = (0..n)
        .map(|_| Cell {
            image: None,
            lines: (0..lines)
                .map(|_| Line::new(String::new(), fourk_imaging::sheet::colors::TEXT))
                .collect(),
        })
        .collect();
    fourk_imaging::contact_sheet(&cells, sheet_options(n))
        .ok()
        .map(|c| (c.width(), c.height()))
}

fn sheet_blocking(images: &[(Vec<String>, PathBuf)], out: &Path) -> anyhow::Result<PathBuf> {
    let cell = sheet_options(images.len()).cell;
    let cells: Vec<Cell> = images
        .iter()
        .map(|(label, path)| {
            let pic = fourk_imaging::load_file(path, &fourk_imaging::load_limits())
                .ok()
                .and_then(|img| fourk_imaging::thumbnail(&img, cell).ok());
            let color = if pic.is_some() {
                fourk_imaging::sheet::colors::TEXT
            } else {
                fourk_imaging::sheet::colors::FAIL
            };
            Cell {
                image: pic,
                lines: label.iter().map(|l| Line::new(l.clone(), color)).collect(),
            }
        })
        .collect();
    let canvas = fourk_imaging::contact_sheet(&cells, sheet_options(images.len()))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("laying out the contact sheet")?;
    let (w, h) = (canvas.width(), canvas.height());
    let bytes = fourk_imaging::encode(&image::DynamicImage::ImageRgb8(canvas), OutputFormat::Png, None)?;
    let report = fourk_imaging::verify_bytes(
        &bytes,
        &Expect {
            width: Some(w),
            height: Some(h),
            format: Some(OutputFormat::Png),
            alpha: None,
            thumbnail: None,
        },
    );
    let path = if report.ok {
        out.to_owned()
    } else {
        fourk_imaging::rejected_path(out)
    };
    fourk_imaging::save_atomic(&path, &bytes)?;
    let car = json!({
        "sidecar_version": sidecar::SIDECAR_VERSION,
        "fourk_version": env!("CARGO_PKG_VERSION"),
        "image": path.file_name().map(|f| f.to_string_lossy().into_owned()),
        "operation": "sheet",
        "inputs": images.iter().map(|(_, p)| p.display().to_string()).collect::<Vec<_>>(),
        "checks": Checks::from_report(Some((w, h)), OutputFormat::Png, report),
    });
    let mut json_bytes = serde_json::to_vec_pretty(&car)?;
    json_bytes.push(b'\n');
    fourk_imaging::save_atomic(&sidecar::path_for(&path), &json_bytes)?;
    Ok(path)
}

/// The ledger for a workflow command: a run of `kind`, kept open while steps are recorded.
/// A ledger that cannot be opened is a warning; the images on disk are what matters.
/// Its renders go through the core's send path with a recorder on the same run, so every
/// request is on record before it is sent.
#[derive(Debug)]
pub struct Record {
    /// Behind a mutex so that a workflow's future is `Send` (a door spawns it on a runtime).
    ledger: Option<std::sync::Mutex<Ledger>>,
    run: Option<RunId>,
    rec: Recorder,
}

impl Record {
    /// Open the ledger at `path` and begin a run, whose work reports to and stops with
    /// `control`.
    #[must_use]
    pub fn begin(path: &Path, kind: &str, args: &Value, control: &Control) -> Self {
        match Ledger::open(path).and_then(|l| {
            let run = l.begin_run(kind, args)?;
            Ok((l, run))
        }) {
            Ok((l, run)) => Self {
                ledger: Some(std::sync::Mutex::new(l)),
                run: Some(run),
                rec: Recorder::for_run(path, run).with_control(control.clone()),
            },
            Err(e) => {
                tracing::warn!("the ledger is not available, so this run is not recorded: {e}");
                Self {
                    ledger: None,
                    run: None,
                    rec: Recorder::disabled().with_control(control.clone()),
                }
            }
        }
    }

    /// A step begins: stop here when the work was cancelled, else report it.
    ///
    /// # Errors
    /// [`Cancelled`] when the work was cancelled (nothing is in flight between steps).
    pub fn step(&self, step: &'static str) -> Result<(), Cancelled> {
        let control = self.rec.control();
        control.check()?;
        control.emit(&Progress::Step { step });
        Ok(())
    }

    /// The run ends with `e`: closed as `interrupted` when it was cancelled, else `failed`.
    /// Returns `e`.
    pub fn fail(&self, e: anyhow::Error) -> anyhow::Error {
        let cancelled = e.chain().any(|c| c.downcast_ref::<Cancelled>().is_some());
        self.finish(if cancelled {
            RunStatus::Interrupted
        } else {
            RunStatus::Failed
        });
        e
    }

    /// The recorder of this run's requests.
    #[must_use]
    pub fn recorder(&self) -> &Recorder {
        &self.rec
    }

    /// The run id, when the ledger opened.
    #[must_use]
    pub fn run(&self) -> Option<RunId> {
        self.run
    }

    /// The ledger, when it opened (held until the guard is dropped: never across an await).
    #[must_use]
    pub fn ledger(&self) -> Option<std::sync::MutexGuard<'_, Ledger>> {
        self.ledger
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Record saved images; their ids in order (empty when the ledger is unavailable).
    /// Images the send path already recorded keep their ids.
    pub fn images(&self, images: &[ImageSummary]) -> Vec<ImageId> {
        if !images.is_empty()
            && let Some(ids) = images.iter().map(|i| i.ledger_id).collect::<Option<Vec<_>>>()
        {
            return ids;
        }
        let (Some(l), Some(run)) = (self.ledger(), self.run) else {
            return Vec::new();
        };
        l.record_summaries(run, None, images).unwrap_or_else(|e| {
            tracing::warn!("the images are saved, but the ledger was not updated: {e}");
            Vec::new()
        })
    }

    /// Link two recorded images.
    pub fn link(&self, from: Option<ImageId>, to: Option<ImageId>, kind: crate::ledger::LinkKind) {
        if let (Some(l), Some(a), Some(b)) = (self.ledger(), from, to)
            && let Err(e) = l.link(a, b, kind)
        {
            tracing::warn!("the ledger link {} was not recorded: {e}", kind.as_str());
        }
    }

    /// Close the run with a status.
    pub fn finish(&self, status: RunStatus) {
        if let (Some(l), Some(run)) = (self.ledger(), self.run)
            && let Err(e) = l.finish_run(run, status)
        {
            tracing::warn!("the ledger run was not closed: {e}");
        }
    }
}

/// One step of a workflow as reported on stdout and in sidecars.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// `draft`, `native`, `native-from-draft`, `master`, `upscale`.
    pub step: &'static str,
    /// Where the file is (absent when the request failed).
    pub path: Option<PathBuf>,
    /// Ledger id of the image.
    pub id: Option<ImageId>,
    /// Verified against the request.
    pub verified: bool,
    /// Dollars (measured from `usage`, or predicted when no answer came back).
    pub usd: f64,
    /// True when `usd` is a prediction or uses estimated prices.
    pub estimate: bool,
    /// Wall time in seconds.
    pub seconds: f64,
    /// What went wrong, when it did.
    pub error: Option<String>,
}

impl StepReport {
    /// The report of a step that saved `img`.
    #[must_use]
    pub fn saved(step: &'static str, img: &ImageSummary, id: Option<ImageId>, seconds: f64) -> Self {
        Self {
            step,
            path: Some(img.path.clone()),
            id,
            verified: img.verified,
            usd: img.cost.map_or(0.0, |c| c.usd),
            estimate: img.cost.is_some_and(|c| c.estimate),
            seconds,
            error: None,
        }
    }
}
