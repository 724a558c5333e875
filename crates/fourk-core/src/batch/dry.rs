//! The dry run of a local batch: the same checked [`Plan`](super::Plan) a run starts from,
//! each job's state as a resume would find it (reconciled with the files on disk, without
//! writing), each request as it would leave with its estimate, the `--max-cost` ceiling
//! applied at the estimates, and the run's output check. Nothing is sent, no file, folder or
//! lock is left behind, and the ledger is only read.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::plan::{BatchSpec, plan};
use super::runner::{self, Budget, Request};
use crate::ledger::{JobId, JobState, Ledger};

/// One job of a batch's dry run.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedJob {
    /// Short job id.
    pub id: String,
    /// Full stable key.
    pub key: String,
    /// Line in the jobs file.
    pub line: u32,
    /// Output name (stem).
    pub name: String,
    /// Where the job stands before the run: `pending` (new), `succeeded` (done: verified on
    /// disk, not sent again), `failed` or `skipped` (sent again), `possibly_billed` (held
    /// unless `retry_ambiguous`); `skipped` too for a job the `--max-cost` ceiling would
    /// leave unstarted.
    pub state: JobState,
    /// A run would send it.
    pub send: bool,
    /// Its image files.
    pub outputs: Vec<PathBuf>,
    /// The request as it would leave (the JSON body of a generation; the multipart layout of
    /// an edit, file parts summarised). Only for jobs with a request to build.
    pub body: Option<Value>,
    /// Predicted dollars of its request (an upper bound: `auto` counts as the highest
    /// quality); `None` without prices or when it is not sent.
    pub estimate_usd: Option<f64>,
    /// Why it would not be sent, when it would not.
    pub note: Option<String>,
}

/// What a batch would do (`fourk batch --dry-run`'s report).
#[derive(Debug, Clone, Serialize)]
pub struct BatchDryRun {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Jobs in the file.
    pub total: usize,
    /// Verified on disk from an earlier run: not sent again.
    pub already_done: usize,
    /// Jobs a run would send.
    pub to_send: usize,
    /// Possibly billed earlier and held (`retry_ambiguous` sends them again).
    pub held: usize,
    /// Jobs the `--max-cost` ceiling would leave unstarted, at the estimates.
    pub over_budget: usize,
    /// Dollars already recorded against this batch's jobs (measured and estimated).
    pub spent_usd: f64,
    /// Predicted dollars of the jobs to send (`None` when one has no estimate).
    pub estimate_usd: Option<f64>,
    /// The ceiling.
    pub max_cost_usd: Option<f64>,
    /// Every job, in file order.
    pub jobs: Vec<PlannedJob>,
    /// What the run would decide, in words.
    pub notes: Vec<String>,
}

/// The dry run of a local batch (see the module's documentation).
///
/// # Errors
/// The [`crate::UsageError`] a run would stop with before sending (every problem of every
/// line; output files in the way; a folder that cannot be written); a ledger that cannot be
/// read (a run needs it).
pub fn dry_run(spec: &BatchSpec, fk: &crate::Fourk) -> anyhow::Result<BatchDryRun> {
    let caps = &fk.caps;
    let plan = plan(spec, caps)?;
    let mut notes = Vec::new();
    // Each job as the run's resume would find it: a job cut off mid-request is done when its
    // files verify on disk, else possibly billed.
    let ledger = Ledger::open_read_only(fk.ledger_path())?;
    let mut states = Vec::with_capacity(plan.jobs.len());
    let mut known: Vec<JobId> = Vec::new();
    let mut held_why: Vec<Option<String>> = Vec::with_capacity(plan.jobs.len());
    for job in &plan.jobs {
        let row = ledger.find_job(&job.key)?;
        if let Some(r) = &row {
            known.push(r.id);
        }
        let state = match row.as_ref().map(|r| r.state) {
            None => JobState::Pending,
            Some(JobState::Running) if runner::complete_on_disk(&plan.out_dir, job).is_some() => {
                JobState::Succeeded
            }
            Some(JobState::Running) => JobState::PossiblyBilled,
            Some(s) => s,
        };
        held_why.push(row.and_then(|r| r.error));
        states.push(state);
    }
    let (spent, estimated) = ledger.job_spend(&known)?;
    drop(ledger);
    let queued: Vec<usize> = (0..plan.jobs.len())
        .filter(|&i| runner::runnable(states[i], plan.retry_ambiguous))
        .collect();
    runner::check_outputs(&plan, &states, &queued, true)?;

    let budget = Budget::new(plan.max_cost, spent, estimated);
    let mut jobs = Vec::with_capacity(plan.jobs.len());
    let mut estimate_usd = Some(0.0);
    let mut over_budget = 0;
    for (i, job) in plan.jobs.iter().enumerate() {
        let mut planned = PlannedJob {
            id: job.short_id().to_owned(),
            key: job.key.clone(),
            line: job.line,
            name: job.spec.name.clone(),
            state: states[i],
            send: false,
            outputs: (0..usize::from(job.spec.n))
                .map(|k| runner::output_path(&plan.out_dir, job, k))
                .collect(),
            body: None,
            estimate_usd: None,
            note: None,
        };
        if !queued.contains(&i) {
            if states[i] == JobState::PossiblyBilled {
                planned.note = Some(held_why[i].clone().unwrap_or_else(|| {
                    "possibly billed earlier; held (rerun with --retry-ambiguous to send it again)".into()
                }));
            }
            jobs.push(planned);
            continue;
        }
        // What a worker does first with the job: build its request (reading reference
        // images), price it, keep the ceiling.
        let (request, dims) = match runner::build(caps, job) {
            Ok(r) => r,
            Err(e) => {
                planned.note = Some(format!("would fail before sending: {e}"));
                jobs.push(planned);
                continue;
            }
        };
        planned.body = Some(match &request {
            Request::Generate(req) => serde_json::to_value(req)?,
            Request::Edit { req, records, .. } => crate::edit_request::multipart_layout(req, records)?,
            Request::Gemini { body, .. } => serde_json::to_value(body.summarised())?,
        });
        let est = runner::estimate(caps, job, &dims);
        planned.estimate_usd = est.as_ref().map(|e| e.usd);
        if plan.max_cost.is_some() && est.is_none() {
            planned.note = Some(format!(
                "would fail before sending: no price for model {}: cannot keep --max-cost; add prices with --models-file",
                job.spec.model
            ));
        } else if budget.reserve(est.as_ref().map_or(0.0, |e| e.usd)) {
            planned.send = true;
            estimate_usd = estimate_usd.zip(planned.estimate_usd).map(|(a, b)| a + b);
        } else {
            planned.state = JobState::Skipped;
            over_budget += 1;
            planned.note = Some(format!(
                "not started: --max-cost ${:.2} would be passed (at the estimates)",
                plan.max_cost.unwrap_or_default()
            ));
        }
        jobs.push(planned);
    }
    let count = |f: &dyn Fn(&PlannedJob) -> bool| jobs.iter().filter(|j| f(j)).count();
    let already_done = count(&|j| j.state == JobState::Succeeded);
    let to_send = count(&|j| j.send);
    let held = count(&|j| j.state == JobState::PossiblyBilled && !j.send);
    notes.push(format!(
        "{} job(s), {already_done} already done, {to_send} to send, {held} held; ${:.4} recorded so far",
        plan.jobs.len(),
        spent + estimated
    ));
    if spec.via != "local" {
        notes.push("estimated at the synchronous prices; the Batch API bills its own (lower) prices".into());
    }
    let lock = plan.out_dir.join(".fourk-batch.lock");
    if let Ok(f) = std::fs::File::open(&lock)
        && matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
    {
        notes.push(format!(
            "another fourk batch is running into {}: a run now would be refused",
            plan.out_dir.display()
        ));
    }
    Ok(BatchDryRun {
        out_dir: plan.out_dir.clone(),
        total: plan.jobs.len(),
        already_done,
        to_send,
        held,
        over_budget,
        spent_usd: spent + estimated,
        estimate_usd,
        max_cost_usd: plan.max_cost,
        jobs,
        notes,
    })
}
