//! The tools: names, schemas, annotations, and each handler (arguments -> the core's spec ->
//! the core's operation -> a result).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use fourk_core::Fourk;
use fourk_core::save::ImageSummary;
use fourk_core::send::Control;
use fourk_core::spec::{EditSpec, GenerateSpec, ImageOptions, StreamSpec, Transparency};
use rmcp::RoleServer;
use rmcp::model::{
    CallToolResult, JsonObject, ProgressNotificationParam, Resource, ResourceContents, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::jobs::{self, Job, JobStatus};
use crate::params::{self, BackgroundArg};
use crate::results::{self, EMULATOR_NOTE, ImageRecord, ImagesResult, JobRef};
use crate::roots::Roots;
use crate::{Server, ToolError};

/// What a tool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reads only (check_size, plan, verify, compare, history, cost, status).
    ReadOnly,
    /// Writes local files, no API call.
    Local,
    /// Calls the API (spends money).
    Spending,
}

fn tool<P: JsonSchema + 'static, R: JsonSchema + 'static>(
    name: &'static str,
    title: &str,
    kind: Kind,
    description: &'static str,
) -> Tool {
    let annotations = ToolAnnotations::with_title(title)
        .read_only(kind == Kind::ReadOnly)
        .destructive(false)
        .idempotent(kind == Kind::ReadOnly)
        .open_world(kind == Kind::Spending);
    Tool::new(name, description, Arc::new(JsonObject::new()))
        .with_title(title)
        .with_input_schema::<P>()
        .with_output_schema::<R>()
        .with_annotations(annotations)
}

/// The structured answer of `check_size`: the verdict as `fourk size --json` prints it.
type CheckSizeResult = fourk_api::SizeVerdict;

/// The structured answer of `plan`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanResult {
    /// The recommended route's id.
    pub recommended: Option<String>,
    /// Its predicted dollars.
    pub usd: Option<f64>,
    /// Its predicted seconds.
    pub seconds: Option<f64>,
    /// The whole plan, as `fourk plan --json` prints it.
    pub plan: Value,
}

/// One file of `verify`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifiedFile {
    /// The file, absolute.
    pub path: String,
    /// Decoded in full and every expectation met.
    pub ok: bool,
    /// The report (format, size, colour, bit depth, bytes, sha256, checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    /// Why it could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The structured answer of `verify`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifyResult {
    /// Every file passed.
    pub all_ok: bool,
    /// One entry per file.
    pub files: Vec<VerifiedFile>,
}

/// A page of `history` or `cost`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PageResult {
    /// The rows of this page.
    pub rows: Vec<Value>,
    /// Pass as `offset` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
    /// Dollars of every group (cost only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_usd: Option<f64>,
    /// Of which measured (cost only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_usd: Option<f64>,
    /// Of which estimated (cost only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_usd: Option<f64>,
    /// The ledger read.
    pub ledger: String,
}

/// Every tool, in the order agents' docs list them.
#[must_use]
pub fn definitions() -> Vec<Tool> {
    use Kind::{Local, ReadOnly, Spending};
    vec![
        tool::<params::CheckSize, CheckSizeResult>(
            "check_size",
            "Check a size",
            ReadOnly,
            "Check WIDTHxHEIGHT (or a preset such as 4k) against the model's size rules before anything is paid for: valid or not, every broken rule by id, the experimental flag above 2560x1440, and the nearest valid sizes. A failed check is a normal result (valid: false).",
        ),
        tool::<params::Plan, PlanResult>(
            "plan",
            "Plan a deliverable",
            ReadOnly,
            "Predict tokens, dollars and time of every route to a deliverable (native, draft then final, 2K master + local upscale) with fourk's practice rules, offline, and recommend one.",
        ),
        tool::<params::Generate, ImagesResult>(
            "generate",
            "Generate images",
            Spending,
            "Generate image(s) from a prompt at an exact size (size sets the resolution; the prompt cannot). Saves atomically, re-reads and verifies size, format and alpha, writes a sidecar and a ledger row; returns paths, resource links, a preview and the cost. dry_run shows the exact request and estimate.",
        ),
        tool::<params::Edit, ImagesResult>(
            "edit",
            "Edit images",
            Spending,
            "Edit 1-16 input images (paths inside a root) with a prompt and an optional mask (a PNG whose transparent pixels mark the area). Checked locally first; verified result as for generate.",
        ),
        tool::<params::Draft, ImagesResult>(
            "draft",
            "Cheap drafts",
            Spending,
            "Render n cheap drafts (about 1 MP, low quality, the target's aspect ratio) and a contact sheet. Look at the preview, then call final with the chosen draft's ledger_id.",
        ),
        tool::<params::Final, ImagesResult>(
            "final",
            "Final from a draft",
            Spending,
            "Render the final of an approved draft (ledger id or path): mode native renders the target size; mode upscale renders the largest non-experimental master and upscales it locally to the exact size. Both verified and linked to the draft.",
        ),
        tool::<params::Deliver, ImagesResult>(
            "deliver",
            "Deliver one image",
            Spending,
            "One call to a verified deliverable: refuse over max_cost_usd before sending, try native, fall back to a master + local upscale on failure or timeout_s.",
        ),
        tool::<params::Batch, ImagesResult>(
            "batch",
            "Run a batch",
            Spending,
            "Run a JSONL/CSV jobs file with bounded concurrency that follows the rate limits, a dollar ceiling and resume (a rerun never pays twice for a verified file).",
        ),
        tool::<params::Status, ImagesResult>(
            "status",
            "Job status",
            ReadOnly,
            "Progress of a background job (job: true); when it is done, the same result the call would have returned. Without job, every job of this server.",
        ),
        tool::<params::Upscale, ImagesResult>(
            "upscale",
            "Upscale locally",
            Local,
            "Upscale a picture locally to an exact size (Lanczos3 by default, premultiplied alpha), verified.",
        ),
        tool::<params::Fit, ImagesResult>(
            "fit",
            "Fit to a frame",
            Local,
            "Fit a picture to an exact frame: cover (scale and crop), contain (scale and pad) or crop, with gravity.",
        ),
        tool::<params::Convert, ImagesResult>(
            "convert",
            "Convert",
            Local,
            "Re-encode a picture (PNG, JPEG, WebP; quality, PNG effort, lossless WebP, flatten, PNG text), keeping provenance, verified.",
        ),
        tool::<params::Cutout, ImagesResult>(
            "cutout",
            "Cut out the background",
            Local,
            "Remove a flat key-colour background (or run a user ONNX matting model) to a transparent PNG or WebP, verified to have transparency.",
        ),
        tool::<params::Sheet, ImagesResult>(
            "sheet",
            "Contact sheet",
            Local,
            "Lay pictures out on one contact sheet with labels (name, size, verdict, cost, model).",
        ),
        tool::<params::Verify, VerifyResult>(
            "verify",
            "Verify files",
            ReadOnly,
            "Decode files in full and check them against an expected size, format and alpha; format, size, colour, bit depth, bytes and SHA-256 of each.",
        ),
        tool::<params::Compare, ImagesResult>(
            "compare",
            "Compare two pictures",
            ReadOnly,
            "Compare two pictures (say native 4K against an upscaled master) on a common size: a side-by-side crop at 100%, detail ratio, PSNR and SSIM. Writes only the new side-by-side picture.",
        ),
        tool::<params::History, PageResult>(
            "history",
            "History",
            ReadOnly,
            "What was made, newest first, from the run ledger (paged): ids, paths, sizes, verification and cost; requests that may have been billed without an answer too.",
        ),
        tool::<params::Cost, PageResult>(
            "cost",
            "Cost",
            ReadOnly,
            "Dollars and tokens from the usage recorded in the ledger, measured and estimated apart, optionally by model, quality, size or day (paged).",
        ),
    ]
}

/// Parse a tool's arguments, refusing names the schema does not have (an agent's typo must
/// not silently become a default).
fn parse<P: DeserializeOwned>(name: &str, args: JsonObject) -> Result<P, ToolError> {
    if let Some(def) = definitions().into_iter().find(|t| t.name == name)
        && let Some(props) = def.input_schema.get("properties").and_then(Value::as_object)
    {
        let unknown: Vec<&String> = args.keys().filter(|k| !props.contains_key(*k)).collect();
        if !unknown.is_empty() {
            let mut known: Vec<&String> = props.keys().collect();
            known.sort();
            return Err(ToolError::usage(
                "unknown_argument",
                format!(
                    "{name} does not take {}; nothing was sent",
                    unknown
                        .iter()
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &format!(
                    "use only: {}",
                    known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    serde_json::from_value(Value::Object(args)).map_err(|e| {
        ToolError::usage(
            "bad_argument",
            format!("{name}: {e}; nothing was sent"),
            "see the tool's input schema (tools/list)",
        )
    })
}

/// Run a tool.
pub async fn call(
    server: &Server,
    name: &str,
    args: JsonObject,
    ctx: RequestContext<RoleServer>,
) -> CallToolResult {
    match dispatch(server, name, args, ctx).await {
        Ok(r) => r,
        Err(e) => e.result(),
    }
}

async fn dispatch(
    server: &Server,
    name: &str,
    args: JsonObject,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let fk = &server.inner.fk;
    match name {
        "check_size" => {
            let p: params::CheckSize = parse(name, args)?;
            let v = fk.caps.verdict(&p.size, &p.model);
            let text = v.describe();
            Ok(results::plain_result(&v, text))
        }
        "plan" => plan(fk, parse(name, args)?),
        "verify" => {
            let p: params::Verify = parse(name, args)?;
            let roots = server.roots(&ctx).await;
            verify(&roots, &p)
        }
        "history" => history(fk, &parse(name, args)?),
        "cost" => cost(fk, &parse(name, args)?),
        "status" => Ok(status(server, &parse(name, args)?)),
        "generate" => generate(server, parse(name, args)?, ctx).await,
        "edit" => edit(server, parse(name, args)?, ctx).await,
        "draft" => draft(server, parse(name, args)?, ctx).await,
        "final" => finalize(server, parse(name, args)?, ctx).await,
        "deliver" => deliver(server, parse(name, args)?, ctx).await,
        "batch" => batch(server, parse(name, args)?, ctx).await,
        "upscale" | "fit" | "convert" | "cutout" | "sheet" | "compare" => {
            pipeline(server, name, args, ctx).await
        }
        other => Err(ToolError::usage(
            "unknown_tool",
            format!("there is no tool named {other}"),
            "call tools/list for the tools",
        )),
    }
}

fn plan(fk: &Fourk, p: params::Plan) -> Result<CallToolResult, ToolError> {
    let mut input = fourk_api::plan::PlanInput::new(&p.model, p.size, p.quality);
    input.variants = p.variants;
    input.text_heavy = p.text_heavy;
    input.transparent = p.transparent;
    input.budget_usd = p.budget;
    input.max_seconds = p.max_time;
    let plan = fourk_api::plan::plan(&fk.caps, &input)
        .map_err(|e| ToolError::from_core(&fourk_core::UsageError(format!("cannot plan: {e}")).into()))?;
    let winner = plan.winner();
    let text = match winner {
        Some(w) => format!(
            "recommended: {} ({}), ${:.3}, about {}; {}",
            w.id.as_str(),
            w.title,
            w.usd,
            fourk_api::plan::human_seconds(w.seconds),
            plan.why.join("; ")
        ),
        None => "no route fits the limits; see the candidates' exclusions".to_owned(),
    };
    let r = PlanResult {
        recommended: winner.map(|w| w.id.as_str().to_owned()),
        usd: winner.map(|w| w.usd),
        seconds: winner.map(|w| w.seconds),
        plan: serde_json::to_value(&plan).unwrap_or(Value::Null),
    };
    Ok(results::plain_result(&r, text))
}

fn verify(roots: &Roots, p: &params::Verify) -> Result<CallToolResult, ToolError> {
    let expect = fourk_imaging::Expect {
        width: p.expect.and_then(fourk_api::Size::dims).map(|d| d.0),
        height: p.expect.and_then(fourk_api::Size::dims).map(|d| d.1),
        format: p.format,
        alpha: p.alpha.then_some(true),
        thumbnail: None,
    };
    let mut files = Vec::new();
    for given in &p.paths {
        let path = roots.input(given)?;
        match fourk_imaging::verify_file(&path, &expect) {
            Ok(r) => files.push(VerifiedFile {
                path: path.display().to_string(),
                ok: r.ok,
                report: serde_json::to_value(&r).ok(),
                error: None,
            }),
            Err(e) => files.push(VerifiedFile {
                path: path.display().to_string(),
                ok: false,
                report: None,
                error: Some(e.to_string()),
            }),
        }
    }
    let all_ok = files.iter().all(|f| f.ok);
    let text = files
        .iter()
        .map(|f| format!("{} {}", f.path, if f.ok { "OK" } else { "FAIL" }))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(results::plain_result(&VerifyResult { all_ok, files }, text))
}

fn ledger_error(e: impl std::fmt::Display) -> ToolError {
    ToolError::usage(
        "ledger",
        format!("the run ledger cannot be read: {e}"),
        "start `fourk mcp` with --ledger PATH",
    )
}

fn history(fk: &Fourk, p: &params::History) -> Result<CallToolResult, ToolError> {
    let ledger = fk.open_ledger().map_err(ledger_error)?;
    let limit = p.limit.clamp(1, 200);
    let rows = ledger.history(p.offset + limit + 1).map_err(ledger_error)?;
    let more = rows.len() > (p.offset + limit) as usize;
    let page: Vec<Value> = rows
        .iter()
        .skip(p.offset as usize)
        .take(limit as usize)
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let text = format!(
        "{} row(s) from {}{}",
        page.len(),
        fk.ledger_path().display(),
        if more {
            format!("; more with offset {}", p.offset + limit)
        } else {
            String::new()
        }
    );
    Ok(results::plain_result(
        &PageResult {
            rows: page,
            next_offset: more.then_some(p.offset + limit),
            total_usd: None,
            measured_usd: None,
            estimated_usd: None,
            ledger: fk.ledger_path().display().to_string(),
        },
        text,
    ))
}

fn cost(fk: &Fourk, p: &params::Cost) -> Result<CallToolResult, ToolError> {
    let since = p
        .since
        .as_deref()
        .map(fourk_core::ledger::parse_since)
        .transpose()
        .map_err(|e| ToolError::usage("since", e, "pass since as YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)"))?;
    let by = p.by;
    let ledger = fk.open_ledger().map_err(ledger_error)?;
    let rows = ledger.cost(since.as_deref(), by).map_err(ledger_error)?;
    let sum = |f: fn(&fourk_core::ledger::CostRow) -> f64| rows.iter().fold(0.0_f64, |a, r| a + f(r));
    let (total, measured, estimated) = (sum(|r| r.usd), sum(|r| r.measured_usd), sum(|r| r.estimated_usd));
    let limit = p.limit.clamp(1, 200);
    let more = rows.len() > (p.offset + limit) as usize;
    let page: Vec<Value> = rows
        .iter()
        .skip(p.offset as usize)
        .take(limit as usize)
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let text = format!(
        "${total:.4} in all (${measured:.4} measured, ${estimated:.4} estimated) over {} group(s)",
        rows.len()
    );
    Ok(results::plain_result(
        &PageResult {
            rows: page,
            next_offset: more.then_some(p.offset + limit),
            total_usd: Some(total),
            measured_usd: Some(measured),
            estimated_usd: Some(estimated),
            ledger: fk.ledger_path().display().to_string(),
        },
        text,
    ))
}

fn job_ref(job: &Job) -> JobRef {
    JobRef {
        id: job.id.clone(),
        state: job.state().as_str().to_owned(),
        tool: job.kind.clone(),
    }
}

fn status(server: &Server, p: &params::Status) -> CallToolResult {
    let jobs = &server.inner.jobs;
    match &p.job {
        None => {
            let all: Vec<JobStatus> = jobs.all().iter().map(|j| j.status()).collect();
            let text = if all.is_empty() {
                "no jobs in this server".to_owned()
            } else {
                all.iter()
                    .map(|s| format!("{} {} {} ({:.0} s)", s.id, s.kind, s.state, s.elapsed_s))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let r = ImagesResult {
                all_verified: true,
                report: Some(json!({"jobs": all})),
                ..ImagesResult::default()
            };
            let mut out = results::images_result(r, false);
            out.content = vec![rmcp::model::ContentBlock::text(text)];
            out
        }
        Some(id) => match jobs.get(id) {
            None => ToolError::usage(
                "unknown_job",
                format!("there is no job {id} in this server (jobs live as long as the server process)"),
                "call status without job for the list, or history for what was made",
            )
            .result(),
            Some(job) => match job.result() {
                Some(mut r) => {
                    if let Some(Value::Object(m)) = r.structured_content.as_mut() {
                        m.insert("job".into(), json!(job_ref(&job)));
                    }
                    if p.preview == Some(false) {
                        r.content.retain(|c| c.as_image().is_none());
                    }
                    r
                }
                None => {
                    let s = job.status();
                    let text = format!(
                        "job {} ({}) is running for {:.0} s; last: {}",
                        s.id,
                        s.kind,
                        s.elapsed_s,
                        s.log.last().map_or("started", String::as_str)
                    );
                    let r = ImagesResult {
                        job: Some(job_ref(&job)),
                        report: serde_json::to_value(&s).ok(),
                        ..ImagesResult::default()
                    };
                    let mut out = results::images_result(r, false);
                    out.content = vec![rmcp::model::ContentBlock::text(text)];
                    out
                }
            },
        },
    }
}

/// How a long call runs: in the foreground (with progress notifications when the call has a
/// progress token) or as a job.
struct Run {
    tool: &'static str,
    background: bool,
    preview: bool,
    estimate: f64,
    /// The work may spend money; `false` for work that only reads what was paid before
    /// (collecting a Batch API batch), whose cost is reported but not counted again.
    bills: bool,
}

impl Run {
    /// A call that spends: `estimate` reserved against the session ceiling and the call's
    /// own `max_cost_usd` (refused before anything is sent).
    fn spending(
        server: &Server,
        tool: &'static str,
        estimate: Option<f64>,
        call_max: Option<f64>,
        background: bool,
        preview: Option<bool>,
    ) -> Result<Self, ToolError> {
        Ok(Self {
            tool,
            background,
            preview: preview.unwrap_or(true),
            estimate: reserve(server, estimate, call_max)?,
            bills: true,
        })
    }
}

/// Reserve `estimate` against the session ceiling and the call's own `max_cost_usd`.
fn reserve(server: &Server, estimate: Option<f64>, call_max: Option<f64>) -> Result<f64, ToolError> {
    let est = estimate.unwrap_or(0.0);
    if let Some(max) = call_max
        && est > max + 1e-9
    {
        return Err(ToolError::usage(
            "max_cost",
            format!("the estimate ${est:.3} is over max_cost_usd ${max:.3}; nothing was sent"),
            "raise max_cost_usd, or lower the size, quality or n (plan shows the cheaper routes)",
        ));
    }
    if estimate.is_none() && call_max.is_some() {
        return Err(fourk_core::jobs::Refusal::NoEstimate.into());
    }
    Ok(server
        .inner
        .budget
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .reserve(estimate)?)
}

/// Spawn `work` as a job and answer: the job id at once (background), or its result,
/// with progress notifications meanwhile. A cancelled foreground call cancels the job (what
/// was sent still finishes and is saved).
async fn launch<F, Fut>(
    server: &Server,
    run: Run,
    ctx: RequestContext<RoleServer>,
    work: F,
) -> Result<CallToolResult, ToolError>
where
    F: FnOnce(Arc<Job>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<ImagesResult, ToolError>> + Send + 'static,
{
    let token = ctx.meta.get_progress_token();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<jobs::Tick>();
    let notify = (!run.background && token.is_some()).then_some(tx);
    let job = server
        .inner
        .jobs
        .create(run.tool, run.preview.then_some(results::PREVIEW_EDGE), notify);
    let emulator = server.inner.opts.endpoint.emulator;
    let srv = server.clone();
    let (estimate, preview, bills) = (run.estimate, run.preview, run.bills);
    let task_job = job.clone();
    tokio::spawn(async move {
        let outcome = work(task_job.clone()).await;
        let mut budget = srv
            .inner
            .budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if bills {
            let measured = outcome.as_ref().ok().and_then(|r| r.cost_usd);
            budget.settle_job(estimate, measured, outcome.is_err(), task_job.sent());
        } else {
            budget.settle(estimate, 0.0);
        }
        drop(budget);
        let outcome = outcome.map(|mut r| {
            if emulator {
                r.emulator_note = Some(EMULATOR_NOTE.to_owned());
            }
            results::images_result(r, preview)
        });
        jobs::finish(&task_job, outcome);
    });
    if run.background {
        let r = ImagesResult {
            job: Some(job_ref(&job)),
            next: Some(format!("call status with job {} until its state is done", job.id)),
            ..ImagesResult::default()
        };
        return Ok(results::images_result(r, false));
    }
    if let Some(token) = token {
        let peer = ctx.peer.clone();
        tokio::spawn(async move {
            while let Some(t) = rx.recv().await {
                let mut p = ProgressNotificationParam::new(token.clone(), t.progress).with_message(t.message);
                if let Some(total) = t.total {
                    p = p.with_total(total);
                }
                if peer.notify_progress(p).await.is_err() {
                    break;
                }
            }
        });
    }
    tokio::select! {
        r = jobs::wait(&job) => Ok(r),
        () = ctx.ct.cancelled() => {
            job.cancel();
            job.detach();
            Err(ToolError::usage(
                "cancelled",
                format!("cancelled; job {} stops before its next request (a request already sent is saved, verified and recorded)", job.id),
                "call status with the job id, or history",
            ))
        }
    }
}

/// How the core's work of `job` is followed (its progress to the job) and stopped.
/// When the result shows a preview, images saved from an answer come with a thumbnail made
/// from the pixels decoded to verify them, so the preview decodes nothing again.
fn control_of(job: &Arc<Job>) -> Control {
    let control = Control::new(job.token()).observed(Arc::new(fourk_core::jobs::JobObserver(job.clone())));
    match job.thumbnails {
        Some(edge) => control.with_thumbnails(edge),
        None => control,
    }
}

/// The core's image summaries as a result: records, usage, dollars, request ids.
fn images_of(summaries: &[ImageSummary], role: Option<&str>) -> ImagesResult {
    let mut r = ImagesResult {
        all_verified: summaries.iter().all(|s| s.verified),
        ..ImagesResult::default()
    };
    let mut usage: Option<fourk_api::Usage> = None;
    for s in summaries {
        let mut rec = ImageRecord::of_summary(s);
        rec.role = role.map(str::to_owned);
        r.images.push(rec);
        if let Some(t) = &s.thumbnail {
            r.thumbnails.push(t.clone());
        }
        if let Some(rid) = s.request_id.clone()
            && !r.request_ids.contains(&rid)
        {
            r.request_ids.push(rid);
            if let Some(u) = s.usage {
                let a = usage.unwrap_or_default();
                usage = Some(fourk_api::Usage {
                    input_tokens: a.input_tokens + u.input_tokens,
                    output_tokens: a.output_tokens + u.output_tokens,
                    total_tokens: a.total_tokens + u.total_tokens,
                    ..fourk_api::Usage::default()
                });
            }
        }
    }
    let (usd, est) = fourk_core::draft::total_cost(summaries);
    if summaries.iter().any(|s| s.cost.is_some()) {
        r.cost_usd = Some(usd);
        r.cost_is_estimate = est;
    }
    r.usage = usage.and_then(|u| serde_json::to_value(u).ok());
    r
}

fn dry_result(dry: &fourk_core::image_api::DryRun) -> ImagesResult {
    ImagesResult {
        all_verified: true,
        cost_usd: dry.estimate.as_ref().map(|e| e.cost.usd),
        cost_is_estimate: true,
        dry_run: Some(json!({
            "body": dry.body,
            "estimate": dry.estimate.as_ref().map(|e| json!({
                "usd": e.cost.usd,
                "output_tokens": e.usage.output_tokens,
                "input_tokens": e.usage.input_tokens,
            })),
            "warnings": dry.warnings.iter().map(|w| w.message.clone()).collect::<Vec<_>>(),
        })),
        ..ImagesResult::default()
    }
}

fn workflow_dry(d: &fourk_core::workflow::WorkflowDryRun) -> ImagesResult {
    ImagesResult {
        all_verified: true,
        cost_usd: d.worst_usd.or(d.total_usd),
        cost_is_estimate: true,
        dry_run: serde_json::to_value(d).ok(),
        ..ImagesResult::default()
    }
}

fn background_of(
    common: &params::Common,
    background: Option<BackgroundArg>,
) -> (bool, Option<fourk_api::Background>) {
    match background {
        Some(BackgroundArg::Job(b)) => (b || common.job, None),
        Some(BackgroundArg::Image(i)) => (common.job, Some(i)),
        None => (common.job, None),
    }
}

fn route_spec(
    route: params::Route,
    responses_model: Option<String>,
    previous: Option<String>,
) -> fourk_core::route::RouteSpec {
    let default = fourk_core::route::RouteSpec::default();
    fourk_core::route::RouteSpec {
        route: match route {
            params::Route::Images => fourk_core::route::Route::Images,
            params::Route::Responses => fourk_core::route::Route::Responses,
        },
        responses_model: responses_model.unwrap_or(default.responses_model),
        previous_response: previous,
    }
}

async fn generate(
    server: &Server,
    p: params::Generate,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let roots = server.roots(&ctx).await;
    let (background, image_bg) = background_of(&p.common, p.background);
    let spec = GenerateSpec {
        prompt: p.prompt,
        model: p.model,
        size: p.size,
        image: ImageOptions {
            quality: p.quality,
            format: p.format,
            compression: p.compression,
            background: image_bg,
        },
        moderation: p.moderation,
        n: p.n,
        safety_identifier: p.safety_identifier,
        out: Some(roots.output(p.out.as_deref())?),
        force: p.force,
        transparency: Transparency {
            transparent: p.transparent,
            transparent_via: p.transparent_via,
        },
        stream: StreamSpec {
            stream: p.stream,
            partials: p.partials,
            keep_partials: p.keep_partials,
        },
        route: route_spec(p.route, p.responses_model, p.previous_response),
        endpoint: server.inner.opts.endpoint.clone(),
    };
    let fk = server.inner.fk.clone();
    let dry = fourk_core::generate::dry_run(&spec, &fk.caps).map_err(|e| ToolError::from_core(&e))?;
    if p.common.dry_run {
        return Ok(results::images_result(dry_result(&dry), false));
    }
    let run = Run::spending(
        server,
        "generate",
        dry.estimate.as_ref().map(|e| e.cost.usd),
        p.common.max_cost_usd,
        background,
        p.common.preview,
    )?;
    launch(server, run, ctx, move |job| async move {
        let (images, _) = fourk_core::generate::generate_recorded(&spec, &fk, control_of(&job))
            .await
            .map_err(|e| ToolError::from_core(&e))?;
        Ok(images_of(&images, None))
    })
    .await
}

async fn edit(
    server: &Server,
    p: params::Edit,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let roots = server.roots(&ctx).await;
    let (background, image_bg) = background_of(&p.common, p.background);
    let images = p
        .images
        .iter()
        .map(|i| roots.input(i))
        .collect::<Result<Vec<PathBuf>, ToolError>>()?;
    let mut spec = EditSpec::new(images, &p.prompt, &p.model, server.inner.opts.endpoint.clone());
    spec.mask = p.mask.as_deref().map(|m| roots.input(m)).transpose()?;
    spec.size = p.size.unwrap_or(fourk_api::Size::Auto);
    spec.image = ImageOptions {
        quality: p.quality,
        format: p.format,
        compression: p.compression,
        background: image_bg,
    };
    spec.n = p.n;
    spec.out = Some(roots.output(p.out.as_deref())?);
    spec.force = p.force;
    spec.stream = StreamSpec {
        stream: p.stream,
        partials: p.partials,
        keep_partials: p.keep_partials,
    };
    spec.route = route_spec(p.route, p.responses_model, p.previous_response);
    let fk = server.inner.fk.clone();
    let dry = fourk_core::edit::dry_run(&spec, &fk.caps).map_err(|e| ToolError::from_core(&e))?;
    if p.common.dry_run {
        return Ok(results::images_result(dry_result(&dry), false));
    }
    let run = Run::spending(
        server,
        "edit",
        dry.estimate.as_ref().map(|e| e.cost.usd),
        p.common.max_cost_usd,
        background,
        p.common.preview,
    )?;
    launch(server, run, ctx, move |job| async move {
        let (images, _) = fourk_core::edit::edit_recorded(&spec, &fk, control_of(&job))
            .await
            .map_err(|e| ToolError::from_core(&e))?;
        Ok(images_of(&images, None))
    })
    .await
}

async fn draft(
    server: &Server,
    p: params::Draft,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let roots = server.roots(&ctx).await;
    let spec = fourk_core::draft::DraftSpec {
        prompt: p.prompt,
        n: p.n,
        size: p.size,
        quality: p.quality,
        model: p.model,
        format: p.format,
        out: Some(roots.output(p.out.as_deref())?),
        no_sheet: p.no_sheet,
        force: p.force,
        route: match p.route {
            params::Route::Images => fourk_core::route::Route::Images,
            params::Route::Responses => fourk_core::route::Route::Responses,
        },
        endpoint: server.inner.opts.endpoint.clone(),
    };
    let fk = server.inner.fk.clone();
    let dry = fourk_core::draft::dry_run(&spec, &fk).map_err(|e| ToolError::from_core(&e))?;
    if p.common.dry_run {
        return Ok(results::images_result(workflow_dry(&dry), false));
    }
    let run = Run::spending(
        server,
        "draft",
        dry.worst_usd.or(dry.total_usd),
        p.common.max_cost_usd,
        p.background.unwrap_or(false) || p.common.job,
        p.common.preview,
    )?;
    launch(server, run, ctx, move |job| async move {
        let control = control_of(&job);
        let report = fourk_core::draft::draft(&spec, &fk, &control)
            .await
            .map_err(|e| ToolError::from_core(&e))?;
        let mut r = ImagesResult {
            all_verified: report.all_verified,
            cost_usd: Some(report.usd),
            cost_is_estimate: report.estimate,
            ..ImagesResult::default()
        };
        for d in &report.drafts {
            r.images.push(
                ImageRecord::of_file(&d.path, d.verified, Some(&fourk_core::sidecar::path_for(&d.path)), d.id).role("draft"),
            );
        }
        if let Some(s) = &report.sheet {
            r.images.push(ImageRecord::of_file(s, true, Some(&fourk_core::sidecar::path_for(s)), None).role("sheet"));
        }
        r.next = Some(format!(
            "approve one draft, then call final with draft = its ledger_id (e.g. {}) and mode native or upscale",
            report.drafts.first().and_then(|d| d.id).map_or_else(|| "ID".into(), |i| i.to_string())
        ));
        r.report = serde_json::to_value(&report).ok();
        Ok(r)
    })
    .await
}

async fn finalize(
    server: &Server,
    p: params::Final,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let roots = server.roots(&ctx).await;
    // A draft named by path must be inside a root; an id is the ledger's.
    let draft = if p.draft.trim().parse::<i64>().is_ok() {
        p.draft.trim().to_owned()
    } else {
        roots.input(&p.draft)?.display().to_string()
    };
    let spec = fourk_core::finalize::FinalSpec {
        draft,
        upscale: p.mode == params::FinalMode::Upscale,
        quality: p.quality,
        size: p.size,
        prompt: p.prompt,
        out: Some(roots.output(p.out.as_deref())?),
        force: p.force,
        endpoint: server.inner.opts.endpoint.clone(),
    };
    let fk = server.inner.fk.clone();
    let dry = fourk_core::finalize::dry_run(&spec, &fk).map_err(|e| ToolError::from_core(&e))?;
    if p.common.dry_run {
        return Ok(results::images_result(workflow_dry(&dry), false));
    }
    let run = Run::spending(
        server,
        "final",
        dry.worst_usd.or(dry.total_usd),
        p.common.max_cost_usd,
        p.background.unwrap_or(false) || p.common.job,
        p.common.preview,
    )?;
    launch(server, run, ctx, move |job| async move {
        let control = control_of(&job);
        let report = fourk_core::finalize::finalize(&spec, &fk, &control)
            .await
            .map_err(|e| ToolError::from_core(&e))?;
        let mut r = ImagesResult {
            all_verified: report.verified,
            cost_usd: Some(report.usd),
            cost_is_estimate: report.estimate,
            ..ImagesResult::default()
        };
        for (role, s) in report.files() {
            if let Some(path) = &s.path {
                r.images.push(
                    ImageRecord::of_file(path, s.verified, Some(&fourk_core::sidecar::path_for(path)), s.id)
                        .role(role),
                );
            }
        }
        r.report = serde_json::to_value(&report).ok();
        Ok(r)
    })
    .await
}

async fn deliver(
    server: &Server,
    p: params::Deliver,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let roots = server.roots(&ctx).await;
    let spec = fourk_core::deliver::DeliverSpec {
        prompt: p.prompt,
        model: p.model,
        size: p.size,
        quality: p.quality,
        max_cost: p.max_cost_usd,
        timeout: p
            .timeout_s
            .filter(|t| *t > 0.0)
            .map(std::time::Duration::from_secs_f64),
        format: p.format,
        out: Some(roots.output(p.out.as_deref())?),
        force: p.force,
        endpoint: server.inner.opts.endpoint.clone(),
    };
    let fk = server.inner.fk.clone();
    let dry = fourk_core::deliver::dry_run(&spec, &fk).map_err(|e| ToolError::from_core(&e))?;
    if p.dry_run {
        return Ok(results::images_result(workflow_dry(&dry), false));
    }
    // deliver's own max_cost_usd is its budget, checked by the core between its steps.
    let run = Run::spending(
        server,
        "deliver",
        dry.worst_usd.or(dry.total_usd),
        None,
        p.background.unwrap_or(false) || p.job,
        p.preview,
    )?;
    launch(server, run, ctx, move |job| async move {
        let control = control_of(&job);
        let report = fourk_core::deliver::deliver(&spec, &fk, &control)
            .await
            .map_err(|e| ToolError::from_core(&e))?;
        let mut r = ImagesResult {
            all_verified: report.verified,
            cost_usd: Some(report.usd),
            cost_is_estimate: report.estimate,
            ..ImagesResult::default()
        };
        if let Some(s) = &report.shipped {
            r.images.push(
                ImageRecord::of_file(
                    s,
                    report.verified,
                    Some(&fourk_core::sidecar::path_for(s)),
                    report.id,
                )
                .role("final"),
            );
        }
        for s in &report.steps {
            if let Some(path) = &s.path
                && report.shipped.as_deref() != Some(path.as_path())
            {
                r.images.push(
                    ImageRecord::of_file(path, s.verified, Some(&fourk_core::sidecar::path_for(path)), s.id)
                        .role(s.step),
                );
            }
        }
        r.report = serde_json::to_value(&report).ok();
        Ok(r)
    })
    .await
}

async fn batch(
    server: &Server,
    p: params::Batch,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let roots = server.roots(&ctx).await;
    let out_dir = roots.output(
        Some(p.out.as_deref().map_or_else(
            || "batch/".to_owned(),
            |o| {
                if o.ends_with('/') {
                    o.to_owned()
                } else {
                    format!("{o}/")
                }
            },
        ))
        .as_deref(),
    )?;
    let endpoint = server.inner.opts.endpoint.clone();
    if let Some(action) = p.action {
        let id = p.batch_id.clone().ok_or_else(|| {
            ToolError::usage(
                "batch_id",
                "action status and collect need batch_id",
                "pass batch_id: the batch_... id that batch with via batch-api returned",
            )
        })?;
        return batch_action(server, action, id, out_dir, &p.common, ctx).await;
    }
    let jobs_file = roots.input(p.jobs.as_deref().ok_or_else(|| {
        ToolError::usage(
            "jobs",
            "batch needs jobs: a JSONL or CSV file of jobs",
            "pass jobs (a file inside a root), or action status/collect with batch_id",
        )
    })?)?;
    let batch_api = p.via == params::Via::BatchApi;
    if p.no_wait && !batch_api {
        return Err(ToolError::usage(
            "no_wait",
            "no_wait is for via batch-api; a local batch runs to the end (call again to resume)",
            "pass via: batch-api, or leave out no_wait (use job: true to run in the background)",
        ));
    }
    let spec = fourk_core::batch::BatchSpec {
        jobs: jobs_file,
        out_dir: out_dir.clone(),
        defaults: fourk_core::batch::Defaults {
            model: p.model,
            size: p.size,
            quality: p.quality,
            format: p.format.unwrap_or(fourk_api::OutputFormat::Png),
        },
        concurrency: usize::from(p.concurrency.clamp(1, 64)),
        max_cost: p.max_cost,
        retry_ambiguous: endpoint.retry_ambiguous,
        policy: fourk_core::session::retry_policy(&endpoint),
        via: if batch_api { "batch-api" } else { "local" },
        force: p.force,
    };
    let fk = server.inner.fk.clone();
    if p.common.dry_run {
        let d = fourk_core::batch::dry_run(&spec, &fk).map_err(|e| ToolError::from_core(&e))?;
        let r = ImagesResult {
            all_verified: true,
            cost_usd: d.estimate_usd,
            cost_is_estimate: true,
            dry_run: serde_json::to_value(&d).ok(),
            ..ImagesResult::default()
        };
        return Ok(results::images_result(r, false));
    }
    let plan = fourk_core::batch::plan(&spec, &fk.caps).map_err(|e| ToolError::from_core(&e))?;
    let est = if batch_api {
        fourk_core::batch::remote::batch_jobs(&fk.caps, &plan)
            .map_err(|e| ToolError::from_core(&e))?
            .1
    } else {
        plan.estimate_usd(&fk.caps)
    };
    let run = Run::spending(
        server,
        "batch",
        Some(p.max_cost.map_or(est, |m| m.min(est))),
        p.common.max_cost_usd,
        p.background.unwrap_or(false) || p.common.job,
        p.common.preview,
    )?;
    if batch_api {
        let poll = std::time::Duration::from_secs_f64(p.poll.unwrap_or(30.0).clamp(0.1, 3600.0));
        let no_wait = p.no_wait;
        return launch(server, run, ctx, move |job| async move {
            let remote = fourk_core::batch::remote::RemoteSpec {
                endpoint,
                poll,
                no_wait,
                cancel: job.token(),
            };
            let mut ticks = batch_api_ticks(&job);
            let outcome = fourk_core::batch::remote::submit_and_collect(&fk, &plan, &remote, &mut ticks)
                .await
                .map_err(|e| ToolError::from_core(&e))?;
            Ok(match outcome {
                fourk_core::batch::remote::RemoteOutcome::Submitted(b) => batch_submitted(&b),
                fourk_core::batch::remote::RemoteOutcome::Collected(report) => collected(&report),
            })
        })
        .await;
    }
    launch(server, run, ctx, move |job| async move {
        let reporter: Arc<dyn fourk_core::batch::Reporter> =
            Arc::new(fourk_core::jobs::BatchTicks(job.clone()));
        let report = fourk_core::batch::run_local(plan, &fk, &endpoint, reporter, job.token())
            .await
            .map_err(|e| ToolError::from_core(&e))?;
        let mut r = ImagesResult {
            all_verified: report.all_succeeded(),
            cost_usd: Some(report.spent_this_run_usd),
            ..ImagesResult::default()
        };
        for j in report
            .jobs
            .iter()
            .filter(|j| j.state == fourk_core::ledger::JobState::Succeeded)
        {
            for o in &j.outputs {
                r.images.push(ImageRecord::of_file(
                    o,
                    true,
                    Some(&fourk_core::sidecar::path_for(o)),
                    None,
                ));
            }
        }
        r.report = Some(json!({
            "total": report.total, "succeeded": report.succeeded, "already_done": report.already_done,
            "failed": report.failed, "skipped": report.skipped, "possibly_billed": report.possibly_billed,
            "spent_usd": report.spent_usd, "run_id": report.run_id, "out_dir": report.out_dir,
        }));
        Ok(r)
    })
    .await
}

/// The Batch API driver's events as job ticks (the same lines as the CLI's); the batch's
/// creation marks the job as sent (from then on it is billed as it runs).
fn batch_api_ticks(job: &Arc<Job>) -> impl FnMut(&fourk_core::batch_api::BatchEvent) + Send + use<> {
    use fourk_core::batch_api::BatchEvent;
    let job = job.clone();
    move |event| {
        #[allow(clippy::cast_precision_loss)]
        let total = match event {
            BatchEvent::Created { .. } => {
                job.mark_sent();
                None
            }
            BatchEvent::Status { counts, .. } => Some(counts.total as f64),
            _ => None,
        };
        job.tick(event.to_string(), total);
    }
}

/// A Batch API batch that was created and not waited for.
fn batch_submitted(batch: &fourk_api::batch::Batch) -> ImagesResult {
    let c = batch.counts();
    ImagesResult {
        all_verified: true,
        report: Some(json!({
            "batch_id": batch.id, "status": batch.status, "counts": c,
        })),
        next: Some(format!(
            "batch {} is {} ({} of {} done); it runs at the Batch API (up to 24 h): call batch with action status and batch_id {}, then action collect once it is completed",
            batch.id,
            batch.status,
            c.completed + c.failed,
            c.total,
            batch.id
        )),
        ..ImagesResult::default()
    }
}

/// A collected Batch API batch: its saved images, cost at batch prices, failures.
fn collected(report: &fourk_core::batch_api::CollectReport) -> ImagesResult {
    let summaries: Vec<ImageSummary> = report
        .jobs
        .iter()
        .flat_map(|j| j.images.iter().cloned())
        .collect();
    let mut r = images_of(&summaries, None);
    r.all_verified = report.failed() == 0 && r.all_verified;
    r.cost_usd = Some(report.cost_usd);
    r.cost_is_estimate = report.cost_estimate;
    r.usage = serde_json::to_value(report.usage).ok();
    let failures: Vec<Value> = report
        .jobs
        .iter()
        .filter(|j| !j.ok)
        .take(20)
        .map(|j| json!({"custom_id": j.custom_id, "error": j.error}))
        .collect();
    r.report = Some(json!({
        "batch_id": report.batch_id, "status": report.status, "counts": report.counts,
        "succeeded": report.succeeded(), "failed": report.failed(), "failures": failures,
        "prices": "Batch API",
    }));
    r
}

/// `batch` with `action`: a Batch API batch's status now, or its images collected.
async fn batch_action(
    server: &Server,
    action: params::BatchAction,
    id: String,
    out_dir: PathBuf,
    common: &params::Common,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let fk = server.inner.fk.clone();
    let endpoint = server.inner.opts.endpoint.clone();
    match action {
        params::BatchAction::Status => {
            let b = fourk_core::batch::remote::status(&fk, &id, &endpoint)
                .await
                .map_err(|e| ToolError::from_core(&e))?;
            Ok(results::images_result(batch_submitted(&b), false))
        }
        params::BatchAction::Collect => {
            let run = Run {
                bills: false,
                tool: "batch",
                background: common.job,
                preview: common.preview.unwrap_or(true),
                estimate: 0.0,
            };
            launch(server, run, ctx, move |job| async move {
                let mut ticks = batch_api_ticks(&job);
                let report = fourk_core::batch::remote::collect(&fk, &id, &out_dir, &endpoint, &mut ticks)
                    .await
                    .map_err(|e| ToolError::from_core(&e))?;
                Ok(collected(&report))
            })
            .await
        }
    }
}

fn encode_of(e: &params::Encode) -> Result<fourk_core::pipeline::Encode, ToolError> {
    use fourk_core::pipeline::values;
    let bad = |rule: &'static str, fix: &'static str| move |m: String| ToolError::usage(rule, m, fix);
    Ok(fourk_core::pipeline::Encode {
        format: e.format,
        quality: e.quality,
        png_level: e.png_level,
        webp_effort: e.webp_effort,
        lossless: e.lossless,
        flatten: e
            .flatten
            .as_deref()
            .map(values::color)
            .transpose()
            .map_err(bad("flatten", "pass #RRGGBB"))?,
        meta: e
            .meta
            .iter()
            .map(|m| values::meta(m))
            .collect::<Result<_, _>>()
            .map_err(bad("meta", "pass KEY=VALUE"))?,
        force: e.force,
    })
}

async fn pipeline(
    server: &Server,
    name: &str,
    args: JsonObject,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    use fourk_core::pipeline::{self as pl, Operation, values};
    let roots = server.roots(&ctx).await;
    let usage = |rule: &'static str, fix: &'static str| move |m: String| ToolError::usage(rule, m, fix);
    let (op, preview): (Operation, Option<bool>) = match name {
        "upscale" => {
            let p: params::Upscale = parse(name, args)?;
            (
                Operation::Upscale(pl::UpscaleSpec {
                    input: roots.input(&p.input)?,
                    to: p.to,
                    out: roots.output(p.out.as_deref())?,
                    filter: p.filter,
                    sharpen: p.sharpen,
                    stretch: p.stretch,
                    encode: encode_of(&p.encode)?,
                }),
                p.encode.preview,
            )
        }
        "fit" => {
            let p: params::Fit = parse(name, args)?;
            let pad = p
                .pad
                .as_deref()
                .map(values::pad)
                .transpose()
                .map_err(usage("pad", "pass transparent or #RRGGBB"))?
                .unwrap_or(fourk_imaging::Pad::Transparent);
            (
                Operation::Fit(pl::FitSpec {
                    input: roots.input(&p.input)?,
                    to: p.to,
                    mode: match p.mode {
                        params::FitMode::Cover => fourk_imaging::FitMode::Cover,
                        params::FitMode::Contain => fourk_imaging::FitMode::Contain(pad),
                        params::FitMode::Crop => fourk_imaging::FitMode::Crop(pad),
                    },
                    gravity: p
                        .gravity
                        .as_deref()
                        .map(values::gravity)
                        .transpose()
                        .map_err(usage("gravity", "pass center, top, bottom, left, right or x,y"))?
                        .unwrap_or(fourk_imaging::Gravity::Center),
                    out: roots.output(p.out.as_deref())?,
                    encode: encode_of(&p.encode)?,
                }),
                p.encode.preview,
            )
        }
        "convert" => {
            let p: params::Convert = parse(name, args)?;
            (
                Operation::Convert(pl::ConvertSpec {
                    input: roots.input(&p.input)?,
                    out: roots.output(p.out.as_deref())?,
                    encode: encode_of(&p.encode)?,
                }),
                p.encode.preview,
            )
        }
        "cutout" => {
            let p: params::Cutout = parse(name, args)?;
            let method = match &p.model {
                Some(m) => pl::CutoutMethod::Model(roots.input(m)?),
                None => pl::CutoutMethod::Key {
                    key: p
                        .key
                        .as_deref()
                        .map(values::key)
                        .transpose()
                        .map_err(usage("key", "pass auto or #RRGGBB"))?
                        .unwrap_or(fourk_imaging::KeySpec::Auto),
                    tolerance: p.tolerance.unwrap_or(fourk_imaging::DEFAULT_TOLERANCE),
                    feather: p.feather.unwrap_or(fourk_imaging::DEFAULT_FEATHER),
                },
            };
            (
                Operation::Cutout(pl::CutoutSpec {
                    input: roots.input(&p.input)?,
                    method,
                    out: roots.output(p.out.as_deref())?,
                    encode: encode_of(&p.encode)?,
                }),
                p.encode.preview,
            )
        }
        "sheet" => {
            let p: params::Sheet = parse(name, args)?;
            (
                Operation::Sheet(pl::SheetSpec {
                    images: p
                        .images
                        .iter()
                        .map(|i| roots.input(i))
                        .collect::<Result<_, _>>()?,
                    columns: p.columns,
                    labels: p.labels,
                    cell: p.cell.unwrap_or(fourk_imaging::sheet::DEFAULT_CELL),
                    out: roots.output(p.out.as_deref())?,
                    encode: encode_of(&p.encode)?,
                }),
                p.encode.preview,
            )
        }
        _ => {
            let p: params::Compare = parse(name, args)?;
            (
                Operation::Compare(pl::CompareSpec {
                    a: roots.input(&p.a)?,
                    b: roots.input(&p.b)?,
                    crop: p
                        .crop
                        .as_deref()
                        .map(values::crop)
                        .transpose()
                        .map_err(usage("crop", "pass x,y,width,height"))?,
                    out: roots.output(p.out.as_deref())?,
                    encode: encode_of(&p.encode)?,
                }),
                p.encode.preview,
            )
        }
    };
    let ledger = server.inner.fk.ledger_path().to_path_buf();
    let tool: &'static str = match name {
        "upscale" => "upscale",
        "fit" => "fit",
        "convert" => "convert",
        "cutout" => "cutout",
        "sheet" => "sheet",
        _ => "compare",
    };
    let run = Run {
        tool,
        background: false,
        preview: preview.unwrap_or(true),
        estimate: 0.0,
        bills: false,
    };
    launch(server, run, ctx, move |job| async move {
        let token = job.token();
        job.tick(format!("{tool}: working"), None);
        let on = ledger.clone();
        let summary = tokio::task::spawn_blocking(move || op.run(&on, &token))
            .await
            .map_err(|e| ToolError::internal(&format!("the operation failed: {e}")))?
            .map_err(|e| ToolError::from_core(&e))?;
        let mut r = ImagesResult {
            all_verified: summary.verified && summary.inputs_ok,
            ..ImagesResult::default()
        };
        let id = fourk_core::ledger::Ledger::open(&ledger)
            .ok()
            .and_then(|l| l.find_image_by_path(&summary.path).ok().flatten())
            .map(|i| i.id);
        r.images.push(ImageRecord::of_file(
            &summary.path,
            summary.verified,
            Some(&summary.sidecar),
            id,
        ));
        r.report = summary.report.clone();
        Ok(r)
    })
    .await
}

/// The newest ledger images as resources (`fourk://image/{id}`).
#[must_use]
pub fn recent_resources(server: &Server) -> Vec<Resource> {
    let Ok(ledger) = server.inner.fk.open_ledger() else {
        return Vec::new();
    };
    ledger
        .history(50)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| {
            let id = r.image_id?;
            let path = r.path?;
            let name = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some(
                Resource::new(format!("fourk://image/{id}"), name)
                    .with_description(format!(
                        "{} {} {}",
                        r.command,
                        r.dimensions.unwrap_or_default(),
                        if r.verified == Some(true) {
                            "verified"
                        } else {
                            "not verified"
                        }
                    ))
                    .with_mime_type("application/json"),
            )
        })
        .collect()
}

/// `fourk://image/{id}`: the ledger's record as JSON, and a preview of the file.
///
/// # Errors
/// [`ToolError`] for another URI, an unknown id or an unreadable ledger.
pub fn read_image_resource(server: &Server, uri: &str) -> Result<Vec<ResourceContents>, ToolError> {
    let id: i64 = uri
        .strip_prefix("fourk://image/")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ToolError::usage(
                "unknown_resource",
                format!("{uri} is not fourk://image/{{id}}"),
                "list resources",
            )
        })?;
    let ledger = server.inner.fk.open_ledger().map_err(ledger_error)?;
    let rec = ledger.find_image(id).map_err(ledger_error)?.ok_or_else(|| {
        ToolError::usage(
            "unknown_image",
            format!("no image {id} in the ledger"),
            "call history for ids",
        )
    })?;
    let mut meta = serde_json::to_value(&rec).unwrap_or(Value::Null);
    let exists = rec.path.exists();
    if let Value::Object(m) = &mut meta {
        m.insert("exists".into(), json!(exists));
        m.insert("uri".into(), json!(crate::roots::file_uri(&rec.path)));
    }
    let mut out = vec![ResourceContents::TextResourceContents {
        uri: uri.to_owned(),
        mime_type: Some("application/json".into()),
        text: serde_json::to_string_pretty(&meta).unwrap_or_default(),
        meta: None,
    }];
    if exists && let Ok(jpeg) = fourk_imaging::preview::preview_jpeg(&[&rec.path], results::PREVIEW_EDGE) {
        use base64::Engine as _;
        out.push(ResourceContents::BlobResourceContents {
            uri: format!("{uri}/preview"),
            mime_type: Some("image/jpeg".into()),
            blob: base64::engine::general_purpose::STANDARD.encode(jpeg),
            meta: None,
        });
    }
    Ok(out)
}
