//! The worker loop: one loop, run by `--concurrency` workers that share a job queue, a
//! [`Governor`] (adaptive concurrency and rate pacing), a [`Budget`] and the client's
//! [`RetryPolicy`]. Each attempt is recorded in the ledger before it is sent and closed
//! after, so a crash at any moment leaves jobs that a rerun can finish: succeeded jobs are
//! never requested again, and a job cut off mid-request is held as possibly billed.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use fourk_api::gemini::{Blob, GeminiPlan, GenerateContentRequest};
use fourk_api::{
    Background, Capabilities, Cost, EditRequest, ImageRequest, InputImage, ModelCaps, Prices, ProviderKind,
    Quality, Size, Usage,
};
use fourk_client::{Attempt, Client, ClientError, Decision, Outcome, RetryPolicy, ServerHints};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::jobs::Job;
use super::pace::Governor;
use crate::ledger::RunStatus;
use crate::ledger::{JobId, JobState, Ledger, NewJob, RunId, UsageKey};
use crate::save::{self as deliver, ImageSummary};
use crate::sidecar::{InputRecord, SentRequest};

/// Rate-limit answers retried per job on top of the policy's retries: the governor has
/// already slowed everyone down, so these are waits, not failures.
const RATE_LIMIT_RETRIES: u32 = 10;

/// What the batch runs with (validated).
#[derive(Debug)]
pub struct Plan {
    /// The jobs, in file order.
    pub jobs: Vec<Job>,
    /// Where images go.
    pub out_dir: PathBuf,
    /// Most requests in flight.
    pub concurrency: usize,
    /// Ceiling for the whole batch in USD (earlier runs of it included).
    pub max_cost: Option<f64>,
    /// Retry and resume possibly billed jobs.
    pub retry_ambiguous: bool,
    /// The retry policy for each job's requests.
    pub policy: RetryPolicy,
    /// Identifies the batch (jobs file and output folder) in the ledger.
    pub batch_key: String,
    /// The command line, for the ledger's run row.
    pub args: serde_json::Value,
    /// Replace files already at a new job's output names.
    pub force: bool,
}

/// Progress events, drawn by the CLI (bars or plain lines).
pub trait Reporter: Send + Sync {
    /// The batch starts: `total` jobs, `done` already succeeded earlier, `queued` to run.
    fn start(&self, total: usize, done: usize, queued: usize, spent_usd: f64);
    /// A job finished this run.
    fn job(&self, job: &JobReport, spent_usd: f64);
    /// The batch is over.
    fn finish(&self);
}

/// One job in the final report.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// Short job id.
    pub id: String,
    /// Full stable key.
    pub key: String,
    /// Line in the jobs file.
    pub line: u32,
    /// Output name (stem).
    pub name: String,
    /// Final state.
    pub state: JobState,
    /// Files written (verified ones, or `.rejected.` ones when verification failed).
    pub outputs: Vec<PathBuf>,
    /// Whether this run sent requests for it.
    pub requested: bool,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `x-request-id` of the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Dollars this run spent on it (measured, or estimated when possibly billed).
    pub usd: f64,
}

/// The final report (`--json` prints it).
#[derive(Debug, Serialize)]
pub struct BatchReport {
    /// The ledger run.
    pub run_id: RunId,
    /// The ledger file.
    pub ledger: PathBuf,
    /// The output folder.
    pub out_dir: PathBuf,
    /// Jobs in the file.
    pub total: usize,
    /// Verified on disk (this run or before).
    pub succeeded: usize,
    /// Succeeded in an earlier run (not requested again).
    pub already_done: usize,
    /// Failed (a rerun tries them again).
    pub failed: usize,
    /// Not started because of the budget ceiling (a rerun tries them again).
    pub skipped: usize,
    /// Sent with no complete answer: may be billed. Held until `--retry-ambiguous`.
    pub possibly_billed: usize,
    /// Dollars recorded against this batch's jobs, all runs (measured + estimated).
    pub spent_usd: f64,
    /// Of which estimated (possibly billed requests).
    pub estimated_usd: f64,
    /// Dollars this run.
    pub spent_this_run_usd: f64,
    /// The ceiling.
    pub max_cost_usd: Option<f64>,
    /// HTTP requests this run sent.
    pub requests: u64,
    /// 429 rate-limit answers this run.
    pub rate_limited: u64,
    /// Wall time of this run, in seconds.
    pub elapsed_s: f64,
    /// Every job.
    pub jobs: Vec<JobReport>,
}

impl BatchReport {
    /// True when every job succeeded.
    #[must_use]
    pub fn all_succeeded(&self) -> bool {
        self.succeeded == self.total
    }
}

/// The spending ceiling, counting requests in flight at their estimate.
#[derive(Debug)]
pub struct Budget {
    max: Option<f64>,
    inner: Mutex<Spend>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Spend {
    spent: f64,
    estimated: f64,
    reserved: f64,
    this_run: f64,
    closed: bool,
}

impl Budget {
    /// A budget with `spent` (measured) and `estimated` already recorded.
    #[must_use]
    pub fn new(max: Option<f64>, spent: f64, estimated: f64) -> Self {
        Self {
            max,
            inner: Mutex::new(Spend {
                spent: spent + estimated,
                estimated,
                ..Spend::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spend> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserve `usd` for a request about to be sent. `false` (and no new work from then
    /// on) when spent + in flight + this would pass the ceiling.
    pub fn reserve(&self, usd: f64) -> bool {
        let mut s = self.lock();
        if s.closed {
            return false;
        }
        if let Some(max) = self.max
            && s.spent + s.reserved + usd > max + 1e-9
        {
            s.closed = true;
            return false;
        }
        s.reserved += usd;
        true
    }

    /// A reserved request ended: free the reservation and add what it cost (`estimated`
    /// when the cost is a guess).
    pub fn settle(&self, reserved: f64, cost: f64, estimated: bool) {
        let mut s = self.lock();
        s.reserved = (s.reserved - reserved).max(0.0);
        s.spent += cost;
        s.this_run += cost;
        if estimated {
            s.estimated += cost;
        }
    }

    /// Whether the ceiling stopped new work.
    #[must_use]
    pub fn closed(&self) -> bool {
        self.lock().closed
    }

    /// (spent, estimated part, this run).
    #[must_use]
    pub fn totals(&self) -> (f64, f64, f64) {
        let s = self.lock();
        (s.spent, s.estimated, s.this_run)
    }
}

/// A job's predicted cost: dollars (an upper bound: `auto` counts as the model's highest quality, each input
/// image at high fidelity) and its usage.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// Dollars.
    pub usd: f64,
    /// Predicted usage.
    pub usage: Usage,
    /// Its cost split.
    pub cost: Cost,
    /// Output tokens, for token-rate pacing.
    pub tokens: u64,
}

/// Predict a job's cost from the token formula and the model's prices.
#[must_use]
pub fn estimate(caps: &Capabilities, job: &Job, input_dims: &[(u32, u32)]) -> Option<Estimate> {
    let s = &job.spec;
    let model = caps.model(&s.model).ok()?;
    let prices: Prices = model.price?;
    let (w, h) = s.size.dims().unwrap_or((3840, 2160));
    let q = s.quality.unwrap_or(Quality::Auto);
    let mut usage = fourk_api::cost::predict_usage(model, &s.prompt, w, h, q, s.n)?;
    let image_in = crate::send::reference_image_tokens(input_dims);
    if image_in > 0 {
        usage = Usage::new(usage.input_tokens, image_in, usage.output_tokens);
    }
    let cost = Cost::from_usage(&usage, &prices, false);
    Some(Estimate {
        usd: cost.usd,
        tokens: usage.output_tokens + usage.input_tokens,
        usage,
        cost,
    })
}

/// The clients a batch sends with: the batch's own, and one for each provider its jobs name
/// (a `provider` key, or a model only one non-OpenAI provider serves).
#[derive(Debug, Clone)]
pub struct Clients {
    default: Client,
    by_provider: Vec<(ProviderKind, Client)>,
}

impl From<Client> for Clients {
    fn from(default: Client) -> Self {
        Self {
            default,
            by_provider: Vec::new(),
        }
    }
}

impl Clients {
    /// `client` for the jobs that go to `kind`.
    #[must_use]
    pub fn with(mut self, kind: ProviderKind, client: Client) -> Self {
        self.by_provider.retain(|(k, _)| *k != kind);
        self.by_provider.push((kind, client));
        self
    }

    /// The client for a job that goes to `kind` (`None`: the batch's).
    fn get(&self, kind: Option<ProviderKind>) -> &Client {
        kind.and_then(|k| self.by_provider.iter().find(|(p, _)| *p == k))
            .map_or(&self.default, |(_, c)| c)
    }
}

/// The provider `job` goes to when it is not the batch's: the job's `provider`, else the
/// model's own when only a provider that does not speak OpenAI's shape serves it (Gemini's).
#[must_use]
pub fn provider_of(caps: &Capabilities, job: &Job) -> Option<ProviderKind> {
    job.spec.provider.or_else(|| {
        caps.model(&job.spec.model)
            .ok()
            .and_then(ModelCaps::home_provider)
            .filter(|k| !k.speaks_openai())
    })
}

/// Everything the workers share.
struct Ctx {
    plan: Plan,
    caps: Capabilities,
    clients: Clients,
    ledger_path: PathBuf,
    /// One connection for all workers: writes are short, and a `Connection` is not `Sync`.
    ledger: Mutex<Ledger>,
    /// The send path's record of every attempt (estimate before the send, measured usage or
    /// the failure after it).
    rec: crate::send::Recorder,
    run: RunId,
    gov: Arc<Governor>,
    budget: Budget,
    queue: Mutex<VecDeque<(usize, JobId)>>,
    reports: Mutex<Vec<Option<JobReport>>>,
    reporter: Arc<dyn Reporter>,
    requests: std::sync::atomic::AtomicU64,
    cancel: CancellationToken,
}

/// Run (or resume) a batch. The ledger at `ledger_path` holds its state. When `cancel`
/// fires, no new request starts, the ones in flight are left (on record as possibly
/// billed, held), jobs not started are `skipped`, and the run is closed as `interrupted`;
/// running the same batch again resumes it.
///
/// # Errors
/// Ledger errors (the batch cannot be tracked safely without it); job failures are not
/// errors, they are in the report.
pub async fn run(
    plan: Plan,
    caps: Capabilities,
    clients: impl Into<Clients>,
    ledger_path: &Path,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
) -> anyhow::Result<BatchReport> {
    let started = Instant::now();
    let ledger = Ledger::open(ledger_path)?;
    let run = ledger.begin_run("batch", &plan.args)?;
    let new: Vec<NewJob> = plan
        .jobs
        .iter()
        .map(|j| NewJob {
            job_key: j.key.clone(),
            line: Some(j.line),
            name: j.spec.name.clone(),
            spec: j.spec_json.clone(),
        })
        .collect();
    let rows = ledger.upsert_jobs(run, &plan.batch_key, &new)?;
    let mut states: Vec<JobState> = rows.iter().map(|r| r.state).collect();
    let ids: Vec<JobId> = rows.iter().map(|r| r.id).collect();

    // Reconcile what a crash left: a job whose files are complete on disk succeeded (the
    // kill came between the save and the ledger); any other open attempt is possibly billed.
    for (i, job) in plan.jobs.iter().enumerate() {
        if states[i] != JobState::Running {
            continue;
        }
        if let Some(found) = complete_on_disk(&plan.out_dir, job) {
            let attempt = ledger.open_attempt(ids[i])?;
            ledger.record_job_success(run, ids[i], attempt, &found)?;
            tracing::info!(
                "job {} (line {}): found verified on disk; not requested again",
                job.short_id(),
                job.line
            );
            states[i] = JobState::Succeeded;
        }
    }
    let running: Vec<JobId> = (0..ids.len())
        .filter(|&i| states[i] == JobState::Running)
        .map(|i| ids[i])
        .collect();
    if !running.is_empty() {
        let by_id: std::collections::HashMap<JobId, usize> =
            ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let hit = ledger.interrupt_open_attempts(&running, |id| {
            let job = &plan.jobs[*by_id.get(&id)?];
            let e = estimate(&caps, job, &[])?;
            Some((usage_key(job), e.usage, e.cost))
        })?;
        for id in running {
            let i = by_id[&id];
            // No open attempt: the answer had arrived (its usage is on record) when fourk
            // stopped, before the image was saved.
            let (err, what) = if hit.contains(&id) {
                (
                    "fourk stopped while a request for this job was in flight; it may have been billed",
                    "interrupted mid-request earlier; possibly billed",
                )
            } else {
                (
                    "fourk stopped after the answer arrived and before its image was saved; billed (its usage is recorded)",
                    "answered but not saved earlier; billed",
                )
            };
            ledger.set_job_state(id, JobState::PossiblyBilled, Some(err))?;
            states[i] = JobState::PossiblyBilled;
            tracing::warn!(
                "job {} (line {}): {what}{}",
                plan.jobs[i].short_id(),
                plan.jobs[i].line,
                if plan.retry_ambiguous {
                    ", retrying (--retry-ambiguous)"
                } else {
                    "; held (rerun with --retry-ambiguous to send it again)"
                }
            );
        }
    }

    let (spent, estimated) = ledger.job_spend(&ids)?;
    let budget = Budget::new(plan.max_cost, spent, estimated);
    let mut queue = VecDeque::new();
    let mut reports: Vec<Option<JobReport>> = vec![None; plan.jobs.len()];
    let mut done = 0;
    for (i, job) in plan.jobs.iter().enumerate() {
        if runnable(states[i], plan.retry_ambiguous) {
            queue.push_back((i, ids[i]));
        } else {
            if states[i] == JobState::Succeeded {
                done += 1;
            }
            let row = &rows[i];
            reports[i] = Some(JobReport {
                id: job.short_id().to_owned(),
                key: job.key.clone(),
                line: job.line,
                name: job.spec.name.clone(),
                state: states[i],
                outputs: row
                    .output
                    .as_ref()
                    .map(|o| outputs_of(Path::new(o), job))
                    .unwrap_or_default(),
                requested: false,
                error: if states[i] == JobState::Succeeded {
                    None
                } else {
                    row.error.clone().or_else(|| {
                        Some(
                            "possibly billed earlier; held (rerun with --retry-ambiguous to send it again)"
                                .into(),
                        )
                    })
                },
                request_id: None,
                usd: 0.0,
            });
        }
    }
    let queued: Vec<usize> = queue.iter().map(|(i, _)| *i).collect();
    if let Err(e) = check_outputs(&plan, &states, &queued, false) {
        ledger.finish_run(run, RunStatus::Failed)?;
        return Err(e);
    }
    let (spent_now, _, _) = budget.totals();
    reporter.start(plan.jobs.len(), done, queue.len(), spent_now);

    let workers = plan.concurrency.max(1).min(queue.len().max(1));
    let ctx = Arc::new(Ctx {
        gov: Governor::new(plan.concurrency),
        plan,
        caps,
        clients: clients.into(),
        ledger_path: ledger_path.to_path_buf(),
        ledger: Mutex::new(ledger),
        rec: crate::send::Recorder::for_run(ledger_path, run),
        run,
        budget,
        queue: Mutex::new(queue),
        reports: Mutex::new(reports),
        reporter: Arc::clone(&reporter),
        requests: std::sync::atomic::AtomicU64::new(0),
        cancel,
    });
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let ctx = Arc::clone(&ctx);
        set.spawn(async move { worker(&ctx).await });
    }
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!("a batch worker failed: {e}"));
            }
        }
    }
    reporter.finish();
    if let Some(e) = first_err {
        return Err(e);
    }
    let cancelled = ctx.cancel.is_cancelled();
    let reports: Vec<Option<JobReport>> = ctx.reports.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut jobs = Vec::with_capacity(reports.len());
    for (i, r) in reports.into_iter().enumerate() {
        jobs.push(match r {
            Some(r) => r,
            // Only a cancelled batch leaves jobs that no worker took.
            None => not_started(&ctx.ledger(), ids[i], &ctx.plan.jobs[i])?,
        });
    }
    let count = |s: JobState| jobs.iter().filter(|j| j.state == s).count();
    let (spent, estimated, this_run) = ctx.budget.totals();
    let report = BatchReport {
        run_id: run,
        ledger: ctx.ledger_path.clone(),
        out_dir: ctx.plan.out_dir.clone(),
        total: jobs.len(),
        succeeded: count(JobState::Succeeded),
        already_done: done,
        failed: count(JobState::Failed),
        skipped: count(JobState::Skipped),
        possibly_billed: count(JobState::PossiblyBilled),
        spent_usd: spent,
        estimated_usd: estimated,
        spent_this_run_usd: this_run,
        max_cost_usd: ctx.plan.max_cost,
        requests: ctx.requests.load(std::sync::atomic::Ordering::Relaxed),
        rate_limited: ctx.gov.rate_limited(),
        elapsed_s: started.elapsed().as_secs_f64(),
        jobs,
    };
    ctx.ledger().finish_run(
        run,
        if cancelled {
            RunStatus::Interrupted
        } else if report.all_succeeded() {
            RunStatus::Ok
        } else {
            RunStatus::Partial
        },
    )?;
    Ok(report)
}

/// Whether a run sends a job that stands at `state` once a resume has reconciled it: never
/// a job that succeeded, a possibly billed one only with `retry_ambiguous`.
pub(crate) fn runnable(state: JobState, retry_ambiguous: bool) -> bool {
    match state {
        JobState::Pending | JobState::Failed | JobState::Skipped | JobState::Running => true,
        JobState::PossiblyBilled => retry_ambiguous,
        JobState::Succeeded => false,
    }
}

/// The check a run makes before it sends anything ([`crate::outputs::check`], or
/// [`crate::outputs::check_dry`] when `dry`): the files of the `queued` jobs this batch
/// never tried are free, and the folder has room for the largest job from every worker.
pub(crate) fn check_outputs(
    plan: &Plan,
    states: &[JobState],
    queued: &[usize],
    dry: bool,
) -> anyhow::Result<()> {
    // A job this batch never tried must not replace a file that is not its own; jobs tried
    // before own what they left (a resume keeps its verified outputs as done).
    let fresh: Vec<PathBuf> = queued
        .iter()
        .filter(|&&i| states[i] == JobState::Pending)
        .flat_map(|&i| {
            let job = &plan.jobs[i];
            (0..usize::from(job.spec.n))
                .flat_map(|k| crate::outputs::image_files(&output_path(&plan.out_dir, job, k)))
        })
        .collect();
    // Room for the largest job's images from every worker at once (not the whole batch:
    // most 4K files are a fraction of the raw frame this counts).
    let worst: u64 = queued
        .iter()
        .map(|&i| {
            let job = &plan.jobs[i];
            crate::outputs::worst_image_bytes(job.spec.size.dims()) * u64::from(job.spec.n)
        })
        .max()
        .unwrap_or(0)
        * plan.concurrency.max(1) as u64;
    if dry {
        crate::outputs::check_dry(&fresh, plan.force, worst)
    } else {
        crate::outputs::check(&fresh, plan.force, worst)
    }
}

pub(crate) fn usage_key(job: &Job) -> UsageKey {
    UsageKey {
        model: job.spec.model.clone(),
        quality: job.spec.quality.map_or("auto", Quality::as_str).to_owned(),
        size: job.spec.size.to_string(),
        images: u32::from(job.spec.n),
    }
}

/// The final path of image `i` of a job.
pub(crate) fn output_path(out_dir: &Path, job: &Job, i: usize) -> PathBuf {
    let base = out_dir.join(format!("{}.{}", job.spec.name, job.spec.format.extension()));
    deliver::indexed_path(&base, i, usize::from(job.spec.n), job.spec.format)
}

pub(crate) fn outputs_of(first: &Path, job: &Job) -> Vec<PathBuf> {
    let dir = first.parent().unwrap_or(Path::new("."));
    (0..usize::from(job.spec.n))
        .map(|i| output_path(dir, job, i))
        .collect()
}

/// Every image of the job verified on disk with its sidecar, read back as summaries.
pub(crate) fn complete_on_disk(out_dir: &Path, job: &Job) -> Option<Vec<ImageSummary>> {
    let expect = fourk_imaging::Expect {
        width: job.spec.size.dims().map(|d| d.0),
        height: job.spec.size.dims().map(|d| d.1),
        format: Some(job.spec.format),
        alpha: (job.spec.background == Some(Background::Transparent)).then_some(true),
        thumbnail: None,
    };
    (0..usize::from(job.spec.n))
        .map(|i| {
            let path = output_path(out_dir, job, i);
            let sidecar = crate::sidecar::path_for(&path);
            let car: serde_json::Value = serde_json::from_slice(&std::fs::read(&sidecar).ok()?).ok()?;
            let report = fourk_imaging::verify_file(&path, &expect).ok()?;
            let sha_ok =
                car.pointer("/checks/sha256").and_then(|v| v.as_str()) == Some(report.sha256.as_str());
            if !(report.ok && sha_ok) {
                return None;
            }
            let probe = report.probe.as_ref();
            Some(ImageSummary {
                width: probe.map(|p| p.width),
                height: probe.map(|p| p.height),
                format: probe.map(|p| p.format.as_str().to_owned()),
                verified: true,
                usage: car
                    .get("usage")
                    .and_then(|u| serde_json::from_value(u.clone()).ok()),
                cost: car
                    .get("cost")
                    .and_then(|u| serde_json::from_value(u.clone()).ok()),
                source: if car.pointer("/response/emulator").is_some_and(|v| !v.is_null()) {
                    "emulator"
                } else {
                    "openai"
                },
                request_id: car
                    .pointer("/response/request_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                sha256: report.sha256,
                bytes: report.bytes,
                thumbnail: None,
                path,
                sidecar,
                ledger_id: None,
                attempt_id: None,
            })
        })
        .collect()
}

impl Ctx {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn worker(ctx: &Ctx) -> anyhow::Result<()> {
    loop {
        let next = ctx
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        let Some((i, id)) = next else {
            return Ok(());
        };
        if ctx.cancel.is_cancelled() {
            ctx.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_front((i, id));
            return Ok(());
        }
        let job = &ctx.plan.jobs[i];
        let report = if ctx.budget.closed() {
            skip(&ctx.ledger(), id, job)?
        } else {
            run_job(ctx, id, job).await?
        };
        let (spent, _, _) = ctx.budget.totals();
        ctx.reporter.job(&report, spent);
        ctx.reports.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(report);
    }
}

/// A job the batch was cancelled before: skipped, tried again on the next run.
fn not_started(ledger: &Ledger, id: JobId, job: &Job) -> anyhow::Result<JobReport> {
    let why = "not started: the batch was cancelled; run it again to finish";
    ledger.set_job_state(id, JobState::Skipped, Some(why))?;
    Ok(base_report(job, JobState::Skipped, Some(why.to_owned())))
}

fn skip(ledger: &Ledger, id: JobId, job: &Job) -> anyhow::Result<JobReport> {
    let why = "not started: the next request would pass --max-cost (counting requests in flight); rerun with a higher --max-cost to finish";
    ledger.set_job_state(id, JobState::Skipped, Some(why))?;
    Ok(base_report(job, JobState::Skipped, Some(why.to_owned())))
}

fn base_report(job: &Job, state: JobState, error: Option<String>) -> JobReport {
    JobReport {
        id: job.short_id().to_owned(),
        key: job.key.clone(),
        line: job.line,
        name: job.spec.name.clone(),
        state,
        outputs: Vec::new(),
        requested: false,
        error,
        request_id: None,
        usd: 0.0,
    }
}

/// The request of a job, built and checked.
#[derive(Debug)]
pub enum Request {
    /// No reference images: a generation.
    Generate(ImageRequest),
    /// Reference images: an edit.
    Edit {
        /// The text fields.
        req: EditRequest,
        /// The reference images.
        images: Vec<InputImage>,
        /// The mask.
        mask: Option<InputImage>,
        /// What the sidecar records about the inputs.
        records: Vec<InputRecord>,
    },
    /// A job on a Gemini model: one `generateContent` request (reference images inline), its
    /// native answer fitted to the job's size.
    Gemini {
        /// The body.
        body: GenerateContentRequest,
        /// The ratio and tier asked for, and the fit to the target.
        plan: GeminiPlan,
        /// What the sidecar records about the inputs.
        records: Vec<InputRecord>,
    },
}

/// Read, probe and decode one reference image as `fourk edit` does, with its record.
fn load_input(p: &Path, limit: usize, part: &'static str) -> Result<(InputImage, InputRecord), String> {
    let loaded = crate::edit_request::load(p, limit, part).map_err(|e| format!("{e:#}"))?;
    let image = loaded.image;
    let record = InputRecord {
        part,
        filename: image.filename.clone(),
        content_type: image.format.mime(),
        bytes: image.data.len(),
        sha256: format!("{:x}", Sha256::digest(&image.data)),
        width: loaded.width,
        height: loaded.height,
    };
    Ok((image, record))
}

/// A Gemini job's request: the options Gemini cannot honour refused, the rest checked by the
/// Image API's rules on the model's entry, the target planned on its tier table.
fn build_gemini(caps: &Capabilities, job: &Job) -> Result<(Request, Vec<(u32, u32)>), String> {
    let s = &job.spec;
    let mut errs = crate::gemini::Asked {
        n: s.n,
        transparent: s.background == Some(Background::Transparent),
        mask: s.mask.is_some(),
        images: s.images.len(),
        ..crate::gemini::Asked::default()
    }
    .unsupported();
    let image_api = crate::gemini::as_image_api(caps, &s.model).map_err(|e| format!("{e:#}"))?;
    // Gemini has tiers, not qualities: the batch's `--quality` (a default for every job) does
    // not apply.
    let mut req = ImageRequest::new(&s.model, &s.prompt);
    req.size = Some(s.size);
    req.output_format = Some(s.format);
    req.output_compression = s.compression;
    req.moderation = s.moderation;
    if let Err(v) = req.validate(&image_api) {
        errs.push(rule_list(&v));
    }
    if !errs.is_empty() {
        return Err(errs.join("; "));
    }
    let mut blobs = Vec::new();
    let mut records = Vec::new();
    let mut dims = Vec::new();
    let part = if s.images.len() == 1 { "image" } else { "image[]" };
    for p in &s.images {
        let (img, rec) = load_input(p, fourk_api::MAX_IMAGE_BYTES, part)?;
        dims.push((rec.width, rec.height));
        blobs.push(Blob::of(&img));
        records.push(rec);
    }
    if let Some(why) = crate::gemini::too_large(&blobs, &s.prompt) {
        return Err(why);
    }
    let (w, h) = s.size.dims().or_else(|| dims.first().copied()).ok_or_else(|| {
        format!(
            "size: {} makes only its own tier sizes; give the job an exact size (WIDTHxHEIGHT or a preset such as 4k) to choose one and fit it",
            s.model
        )
    })?;
    let plan = caps
        .model(&s.model)
        .ok()
        .and_then(|m| m.gemini.as_ref())
        .and_then(|g| g.plan(w, h))
        .ok_or_else(|| format!("{} has no tier table to plan {w}x{h} with", s.model))?;
    let body = GenerateContentRequest::image(&s.prompt, blobs, &plan);
    Ok((Request::Gemini { body, plan, records }, dims))
}

/// Build a job's request (and the reference images' dimensions). Usage problems (rules) were caught when the file was loaded;
/// what fails here is reading reference images, which fails the job, not the batch.
pub fn build(caps: &Capabilities, job: &Job) -> Result<(Request, Vec<(u32, u32)>), String> {
    let s = &job.spec;
    if let (Some(k), Ok(m)) = (s.provider, caps.model(&s.model))
        && !m.served_by(k)
    {
        return Err(format!(
            "provider: {} is not served by {k} (it is served by {}); drop 'provider' or choose another 'model'",
            m.id,
            m.providers
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if crate::gemini::is_gemini(caps, &s.model) {
        return build_gemini(caps, job);
    }
    if s.images.is_empty() {
        let mut req = ImageRequest::new(&s.model, &s.prompt);
        req.size = Some(s.size);
        req.quality = s.quality;
        req.output_format = Some(s.format);
        req.output_compression = s.compression;
        req.background = s.background;
        req.moderation = s.moderation;
        req.n = (s.n > 1).then_some(s.n);
        req.validate(caps).map_err(|v| rule_list(&v))?;
        return Ok((Request::Generate(req), Vec::new()));
    }
    // The same reading, probing and full decode as `fourk edit`.
    let load = load_input;
    let part = if s.images.len() == 1 { "image" } else { "image[]" };
    let mut images = Vec::new();
    let mut records = Vec::new();
    let mut dims = Vec::new();
    for p in &s.images {
        let (img, rec) = load(p, fourk_api::MAX_IMAGE_BYTES, part)?;
        dims.push((rec.width, rec.height));
        images.push(img);
        records.push(rec);
    }
    let mask = match &s.mask {
        Some(p) => {
            let (m, rec) = load(p, fourk_api::MAX_MASK_BYTES, "mask")?;
            records.push(rec);
            Some(m)
        }
        None => None,
    };
    let v = EditRequest::check_inputs(&images, mask.as_ref());
    if !v.is_empty() {
        return Err(rule_list(&v));
    }
    let mut req = EditRequest::new(&s.model, &s.prompt);
    req.size = (s.size != Size::Auto).then_some(s.size);
    req.quality = s.quality;
    req.output_format = Some(s.format);
    req.output_compression = s.compression;
    req.background = s.background;
    req.n = (s.n > 1).then_some(s.n);
    req.validate(caps, images.len()).map_err(|v| rule_list(&v))?;
    Ok((
        Request::Edit {
            req,
            images,
            mask,
            records,
        },
        dims,
    ))
}

fn rule_list(v: &[fourk_api::Violation]) -> String {
    v.iter()
        .map(|v| format!("{}: {}", v.rule.id(), v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a failed call looks to the retry policy.
fn outcome_of(e: &ClientError) -> Option<Outcome<'_>> {
    Some(match e {
        ClientError::Connect { .. } => Outcome::NotSent,
        ClientError::Timeout { .. } | ClientError::Transport { .. } | ClientError::Stream { .. } => {
            Outcome::Ambiguous
        }
        ClientError::Api {
            status,
            error,
            retry_after,
            ..
        } => Outcome::Status {
            status: *status,
            code: error.as_ref().and_then(|e| e.code.as_deref()),
            kind: error.as_ref().map(|e| e.kind.as_str()),
            hints: ServerHints {
                retry_after: *retry_after,
                should_retry: None,
            },
        },
        _ => return None,
    })
}

fn is_rate_limit(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { status: 429, error, .. }
        if RetryPolicy::retryable_status(429, error.as_ref().and_then(|e| e.code.as_deref()), error.as_ref().map(|e| e.kind.as_str())))
}

#[allow(clippy::too_many_lines)]
async fn run_job(ctx: &Ctx, id: JobId, job: &Job) -> anyhow::Result<JobReport> {
    let run = ctx.run;
    let (request, dims) = match build(&ctx.caps, job) {
        Ok(r) => r,
        Err(e) => {
            ctx.ledger().set_job_state(id, JobState::Failed, Some(&e))?;
            return Ok(base_report(job, JobState::Failed, Some(e)));
        }
    };
    let est = estimate(&ctx.caps, job, &dims);
    let est_usd = est.as_ref().map_or(0.0, |e| e.usd);
    if ctx.plan.max_cost.is_some() && est.is_none() {
        let e = format!(
            "no price for model {}: cannot keep --max-cost; add prices with --models-file",
            job.spec.model
        );
        ctx.ledger().set_job_state(id, JobState::Failed, Some(&e))?;
        return Ok(base_report(job, JobState::Failed, Some(e)));
    }
    let key = usage_key(job);
    let sent_estimate = est.as_ref().map(|e| crate::send::Estimate {
        key: key.clone(),
        usage: e.usage,
        cost: e.cost,
    });
    let client = ctx.clients.get(provider_of(&ctx.caps, job));
    let (route, endpoint) = match &request {
        Request::Generate(_) => (
            fourk_api::ImageEndpoint::Generations.label(),
            fourk_api::ImageEndpoint::Generations.path().to_owned(),
        ),
        Request::Edit { .. } => (
            fourk_api::ImageEndpoint::Edits.label(),
            fourk_api::ImageEndpoint::Edits.path().to_owned(),
        ),
        Request::Gemini { .. } => (
            fourk_api::RouteLabel::GeminiGenerate,
            fourk_api::gemini::generate_content_path(&job.spec.model),
        ),
    };
    let price = ctx.caps.model(&job.spec.model).ok().and_then(|m| m.price);
    let mut report = base_report(job, JobState::Pending, None);
    report.requested = true;
    let start = Instant::now();
    let mut retries = 0u32;
    let mut rate_waits = 0u32;
    loop {
        let slot = ctx.gov.acquire().await;
        if ctx.cancel.is_cancelled() {
            drop(slot);
            let mut r = not_started(&ctx.ledger(), id, job)?;
            r.requested = report.requested && (retries + rate_waits) > 0;
            r.usd = report.usd;
            return Ok(r);
        }
        if !ctx.budget.reserve(est_usd) {
            drop(slot);
            let mut r = skip(&ctx.ledger(), id, job)?;
            r.requested = report.requested && (retries + rate_waits) > 0;
            r.usd = report.usd;
            return Ok(r);
        }
        let attempt = ctx
            .rec
            .sending_job(id, route.as_str(), client.config().provider.kind, sent_estimate.as_ref())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the ledger could not put job {} on record before sending it; the batch stops so that nothing is sent off the record",
                    job.short_id()
                )
            })?;
        ctx.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let call = async {
            match &request {
                Request::Generate(req) => client.generate(req).await,
                Request::Edit {
                    req, images, mask, ..
                } => client.edit(req, images, mask.as_ref()).await,
                Request::Gemini { body, .. } => client.generate_content(&job.spec.model, body).await,
            }
        };
        let result = tokio::select! {
            r = call => r,
            () = ctx.cancel.cancelled() => {
                drop(slot);
                // Left in flight: on record as possibly billed at its estimate, held.
                ctx.rec.abandon("the batch was cancelled while the request was in flight");
                ctx.budget.settle(est_usd, est_usd, true);
                let why = "cancelled while the request was in flight; it may have been billed (held: rerun with --retry-ambiguous to send it again)";
                ctx.ledger().set_job_state(id, JobState::PossiblyBilled, Some(why))?;
                report.usd += est_usd;
                report.state = JobState::PossiblyBilled;
                report.error = Some(why.to_owned());
                return Ok(report);
            }
        };
        drop(slot);
        match result {
            Ok(resp) => {
                ctx.gov
                    .on_success(&resp.rate_limits, est.as_ref().map_or(0, |e| e.tokens));
                report.request_id.clone_from(&resp.request_id);
                // A Gemini answer is read once: its usage here, its image when it is saved.
                let gemini = matches!(request, Request::Gemini { .. }).then(|| resp.gemini());
                let measured = if let Some(parsed) = &gemini {
                    parsed.as_ref().ok().and_then(|g| {
                        crate::send::Estimate::measured(
                            &key,
                            crate::gemini::usage_of(g),
                            price,
                            &fourk_api::ImageSettings::default(),
                        )
                    })
                } else {
                    resp.images()
                        .ok()
                        .and_then(|r| crate::send::Estimate::measured(&key, r.usage, price, &r.settings))
                };
                ctx.rec
                    .answered(Some(attempt), resp.request_id.as_deref(), measured.as_ref());
                let cost_now = measured.as_ref().map_or(est_usd, |m| m.cost.usd);
                ctx.budget.settle(est_usd, cost_now, measured.is_none());
                report.usd += cost_now;
                let out = ctx
                    .plan
                    .out_dir
                    .join(format!("{}.{}", job.spec.name, job.spec.format.extension()));
                let mut djob = deliver::Job {
                    route: route.clone(),
                    stream: false,
                    endpoint: fourk_client::redact_url(
                        &client.config().endpoint_for(&endpoint, &job.spec.model),
                    ),
                    provider: crate::sidecar::ProviderRecord::of(client.config()),
                    model: job.spec.model.clone(),
                    price,
                    request: match &request {
                        Request::Generate(r) => SentRequest::Generate(r.clone()),
                        Request::Edit { req, .. } => SentRequest::Edit(req.clone()),
                        Request::Gemini { body, .. } => SentRequest::Gemini(Box::new(body.summarised())),
                    },
                    inputs: match &request {
                        Request::Generate(_) => Vec::new(),
                        Request::Edit { records, .. } | Request::Gemini { records, .. } => records.clone(),
                    },
                    warnings: Vec::new(),
                    dims: job.spec.size.dims(),
                    format: job.spec.format,
                    transparent: job.spec.background == Some(Background::Transparent),
                    base: out.clone(),
                    // The job's own names: a new job's were checked free before the run (the
                    // folder is locked while it runs), and a job tried before replaces what its
                    // killed attempt left (an image without its sidecar).
                    force: true,
                };
                let saved = if let (Request::Gemini { plan, .. }, Some(parsed)) = (&request, gemini) {
                    // The native answer beside the output, then the fit to the job's size.
                    djob.dims = Some(plan.native);
                    djob.format = fourk_api::OutputFormat::Png;
                    djob.base = crate::gemini::native_path(&out);
                    let fit = crate::gemini::Fit {
                        model: ctx.caps.model(&job.spec.model)?.clone(),
                        plan: plan.clone(),
                        out,
                        format: job.spec.format,
                        compression: job.spec.compression,
                        force: true,
                    };
                    let cancel = ctx.cancel.clone();
                    tokio::task::spawn_blocking(move || {
                        crate::gemini::deliver(&djob, &resp, &parsed?, &fit, &cancel)
                    })
                    .await
                } else {
                    tokio::task::spawn_blocking(move || deliver::save_images_response(&djob, &resp)).await
                }
                .map_err(|e| anyhow::anyhow!("saving failed: {e}"))?;
                let (state, why) = match saved {
                    Ok((images, verified)) => {
                        let why = (!verified).then_some(
                            "the answer did not verify (wrong size, format or a corrupt image); kept under a .rejected. name; billed",
                        );
                        ctx.ledger().record_job_images(run, id, attempt, &images, why)?;
                        report.outputs = images.into_iter().map(|i| i.path).collect();
                        if verified {
                            (JobState::Succeeded, None)
                        } else {
                            (JobState::Failed, why.map(str::to_owned))
                        }
                    }
                    Err(e) => {
                        ctx.rec.failed(Some(attempt), &e);
                        let why = format!("{e:#}");
                        ctx.ledger().set_job_state(id, JobState::Failed, Some(&why))?;
                        (JobState::Failed, Some(why))
                    }
                };
                report.state = state;
                report.error = why;
                return Ok(report);
            }
            Err(e) => {
                let billed = e.possibly_billed();
                let rate = is_rate_limit(&e);
                if rate || matches!(e, ClientError::Api { status: 503, .. }) {
                    let ra = match &e {
                        ClientError::Api { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    ctx.gov.on_slow_down(ra, rate);
                }
                let decision = if rate && rate_waits < RATE_LIMIT_RETRIES {
                    let wait = match &e {
                        ClientError::Api {
                            retry_after: Some(d), ..
                        } => *d,
                        _ => ctx.plan.policy.backoff(rate_waits),
                    };
                    Decision::Retry(
                        wait.min(ctx.plan.policy.max_server_delay),
                        fourk_client::RetryReason::Status(429),
                    )
                } else {
                    outcome_of(&e).map_or(Decision::Stop, |o| {
                        ctx.plan.policy.decide(
                            Attempt {
                                retries,
                                elapsed: start.elapsed(),
                            },
                            &o,
                        )
                    })
                };
                let cost_now = if billed { est_usd } else { 0.0 };
                ctx.budget.settle(est_usd, cost_now, billed);
                report.usd += cost_now;
                report.request_id = e.request_id().map(str::to_owned);
                match decision {
                    Decision::Retry(delay, reason) => {
                        ctx.rec.failed_call(Some(attempt), &e, Some(reason.to_string()));
                        tracing::debug!(job = job.short_id(), %reason, delay_ms = delay.as_millis() as u64, "retrying");
                        if rate {
                            rate_waits += 1;
                        } else {
                            retries += 1;
                        }
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = ctx.cancel.cancelled() => {}
                        }
                    }
                    Decision::Stop => {
                        ctx.rec.failed_call(Some(attempt), &e, None);
                        let state = if billed {
                            JobState::PossiblyBilled
                        } else {
                            JobState::Failed
                        };
                        ctx.ledger().set_job_state(id, state, Some(&e.to_string()))?;
                        report.state = state;
                        report.error = Some(first_line(&format!("{e}")));
                        return Ok(report);
                    }
                }
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_owned()
}
