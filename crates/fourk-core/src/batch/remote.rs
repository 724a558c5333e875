//! A checked [`Plan`] through OpenAI's Batch API (`fourk batch JOBS --via batch-api`,
//! `batch status`, `batch collect`): the jobs as batch requests, the budget at batch prices,
//! the submission record that makes a rerun follow the batch already paid for instead of
//! submitting the jobs a second time, and the ledger record of what was collected (images
//! already recorded are skipped, so collecting twice never doubles the cost). The driver
//! itself is [`crate::batch_api`]; progress is its [`BatchEvent`]s, for the caller to draw.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use fourk_api::batch::{Batch, batch_prices};
use fourk_api::{Capabilities, EditJsonBody};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::runner::{self, Request};
use super::{Job, Plan};
use crate::UsageError;
use crate::batch_api::{self, BatchEvent, BatchJob, CollectReport, SubmitOptions};
use crate::session::{Endpoint, Session};

/// How often the in-process emulator's batches are polled.
const EMULATOR_POLL: Duration = Duration::from_millis(200);

/// A progress callback.
pub type OnEvent<'a> = &'a mut (dyn FnMut(&BatchEvent) + Send);

/// What `--via batch-api` needs beyond the plan.
#[derive(Debug, Clone)]
pub struct RemoteSpec {
    /// Where the Batch API is.
    pub endpoint: Endpoint,
    /// Poll interval against a real endpoint (the in-process emulator is polled faster).
    pub poll: Duration,
    /// Return once the batch is created.
    pub no_wait: bool,
    /// Stops the wait for the batch (it keeps running at OpenAI; the same command follows it
    /// again, and `batch collect` saves its images).
    pub cancel: CancellationToken,
}

/// How a submission ended.
#[derive(Debug)]
pub enum RemoteOutcome {
    /// Submitted (or found submitted) and not waited for: its status now.
    Submitted(Box<Batch>),
    /// Waited for and collected.
    Collected(CollectReport),
}

/// The record of a submitted plan, so running the same command again follows the batch
/// already paid for instead of submitting the jobs a second time.
#[derive(Debug, Serialize, Deserialize)]
struct Submission {
    batch_id: String,
    input_file_id: String,
    requests: usize,
}

/// The jobs' identity: the same jobs (whatever file they came from) into the same folder
/// have the same key, and a changed job is a new plan.
fn plan_key(plan: &Plan) -> String {
    let mut keys: Vec<&str> = plan.jobs.iter().map(|j| j.key.as_str()).collect();
    keys.sort_unstable();
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.as_bytes());
        h.update(b"\n");
    }
    let hex = format!("{:x}", h.finalize());
    hex[..16].to_owned()
}

fn submission_path(out: &Path, key: &str) -> PathBuf {
    batch_api::work_dir(out).join(format!("plan-{key}.json"))
}

/// The jobs as Batch API requests, rules checked before anything is sent. Edits travel as
/// JSON edit bodies with their images inline (data URLs). One batch has one endpoint, so a
/// jobs file that mixes generations and edits is refused with the fix named.
/// Returns the jobs and their estimate in dollars at Batch API prices (an upper bound, as for
/// local batches).
///
/// # Errors
/// [`UsageError`] for a job that cannot be built or a mix of endpoints.
pub fn batch_jobs(caps: &Capabilities, plan: &Plan) -> anyhow::Result<(Vec<BatchJob>, f64)> {
    let mut jobs = Vec::with_capacity(plan.jobs.len());
    let mut estimate = 0.0;
    let (mut generations, mut edits) = (Vec::new(), Vec::new());
    for job in &plan.jobs {
        if let Some(k) = runner::provider_of(caps, job) {
            return Err(UsageError(format!(
                "line {}: the job goes to the {k} provider ('provider' or its model), and a Batch API batch sends every job to the batch's own; nothing was sent\n\nhint: run this jobs file without --via batch-api (the local runner sends each job to its provider), or drop 'provider' from the line",
                job.line
            ))
            .into());
        }
        let (request, input_dims) =
            runner::build(caps, job).map_err(|e| UsageError(format!("line {}: {e}", job.line)))?;
        estimate += estimate_usd(caps, job, &input_dims);
        let out = output_base(&plan.out_dir, job);
        jobs.push(match request {
            Request::Generate(request) => {
                generations.push(job.line.to_string());
                BatchJob::generate(job.spec.name.clone(), request, out)
            }
            Request::Edit {
                req, images, mask, ..
            } => {
                edits.push(job.line.to_string());
                BatchJob::edit(
                    job.spec.name.clone(),
                    EditJsonBody::from_edit(&req, &images, mask.as_ref()),
                    out,
                )
            }
            Request::Gemini { .. } => {
                return Err(UsageError(format!(
                    "line {}: {} is a Gemini model, which OpenAI's Batch API does not serve; nothing was sent\n\nhint: run this jobs file without --via batch-api",
                    job.line, job.spec.model
                ))
                .into());
            }
        });
    }
    if !generations.is_empty() && !edits.is_empty() {
        return Err(UsageError(format!(
            "the jobs mix generations (line(s) {}) and edits with reference images (line(s) {}); a Batch API batch runs one endpoint; nothing was sent\n\nhint: put the edits in a jobs file of their own and submit each file with --via batch-api",
            generations.join(", "),
            edits.join(", ")
        ))
        .into());
    }
    Ok((jobs, estimate))
}

fn output_base(out: &Path, job: &Job) -> PathBuf {
    out.join(format!("{}.{}", job.spec.name, job.spec.format.extension()))
}

/// A job's predicted cost at Batch API prices.
fn estimate_usd(caps: &Capabilities, job: &Job, input_dims: &[(u32, u32)]) -> f64 {
    let Some(e) = runner::estimate(caps, job, input_dims) else {
        return 0.0;
    };
    caps.model(&job.spec.model)
        .ok()
        .and_then(|m| m.price)
        .map_or(0.0, |p| {
            fourk_api::Cost::from_usage(&e.usage, &batch_prices(&p), false).usd
        })
}

fn poll_every(spec: &RemoteSpec) -> Duration {
    if spec.endpoint.emulator {
        EMULATOR_POLL
    } else {
        spec.poll
    }
}

/// Submit the plan (or follow the batch it was submitted as before), then, unless
/// `no_wait`, wait for it, collect its images and record them in the ledger.
///
/// # Errors
/// [`UsageError`] before anything is sent (rules, a mix of endpoints, over `max_cost` at
/// batch prices); client and IO errors.
pub async fn submit_and_collect(
    fk: &crate::Fourk,
    plan: &Plan,
    spec: &RemoteSpec,
    on_event: OnEvent<'_>,
) -> anyhow::Result<RemoteOutcome> {
    let caps = &fk.caps;
    let (jobs, estimate) = batch_jobs(caps, plan)?;
    if let Some(max) = plan.max_cost
        && estimate > max
    {
        return Err(UsageError(format!(
            "the batch is estimated at ${estimate:.4} at Batch API prices, more than --max-cost ${max:.2}; nothing was sent\n\nhint: raise --max-cost, or split the jobs file"
        ))
        .into());
    }
    // A first submission must not replace files that are not this batch's; once submitted,
    // collecting (again) rewrites the batch's own files.
    if !submission_path(&plan.out_dir, &plan_key(plan)).exists() {
        let files: Vec<PathBuf> = plan
            .jobs
            .iter()
            .flat_map(|job| {
                let base = output_base(&plan.out_dir, job);
                let n = usize::from(job.spec.n);
                (0..n).flat_map(move |k| {
                    crate::outputs::image_files(&crate::save::indexed_path(&base, k, n, job.spec.format))
                })
            })
            .collect();
        crate::outputs::check(&files, plan.force, crate::outputs::worst_image_bytes(None))?;
    }
    std::fs::create_dir_all(&plan.out_dir)
        .with_context(|| format!("creating the output folder {}", plan.out_dir.display()))?;
    let session = Session::connect(&spec.endpoint, caps).await?;
    let result = follow(&session, fk, plan, &jobs, estimate, spec, on_event).await;
    session.close().await;
    result
}

async fn follow(
    session: &Session,
    fk: &crate::Fourk,
    plan: &Plan,
    jobs: &[BatchJob],
    estimate: f64,
    spec: &RemoteSpec,
    on_event: OnEvent<'_>,
) -> anyhow::Result<RemoteOutcome> {
    let client = &session.client;
    let key = plan_key(plan);
    let record = submission_path(&plan.out_dir, &key);
    let earlier: Option<Submission> = std::fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let batch_id = if let Some(s) = earlier {
        tracing::info!(
            "these jobs were submitted before as batch {} ({} request(s)); following it instead of submitting again",
            s.batch_id,
            s.requests
        );
        s.batch_id
    } else {
        tracing::info!(
            "submitting {} job(s) to the Batch API, estimated at ${estimate:.4} (batch prices, an upper bound)",
            jobs.len()
        );
        let mut options = SubmitOptions::new(batch_api::work_dir(&plan.out_dir));
        options.metadata.insert("fourk_plan".into(), key.clone());
        let submitted = batch_api::submit(client, &fk.caps, jobs, &options, on_event).await?;
        let s = Submission {
            batch_id: submitted.batch_id.clone(),
            input_file_id: submitted.input_file_id,
            requests: submitted.requests,
        };
        let mut json = serde_json::to_vec_pretty(&s)?;
        json.push(b'\n');
        fourk_imaging::save_atomic(&record, &json)
            .with_context(|| format!("writing {}", record.display()))?;
        submitted.batch_id
    };
    if spec.no_wait {
        tracing::info!(
            "not waiting: see progress with `fourk batch status {batch_id}`, then save the images with `fourk batch collect {batch_id} --out {}`",
            plan.out_dir.display()
        );
        let batch = batch_api::status(client, &batch_id).await?;
        return Ok(RemoteOutcome::Submitted(Box::new(batch)));
    }
    tokio::select! {
        r = batch_api::wait(client, &batch_id, poll_every(spec), on_event) => { r?; }
        () = spec.cancel.cancelled() => {
            tracing::warn!(
                "stopped waiting for batch {batch_id}; it goes on at the Batch API (and is billed as it runs): run the same command again to follow it, or `fourk batch collect {batch_id} --out {}`",
                plan.out_dir.display()
            );
            return Err(crate::send::Cancelled { possibly_billed: true }.into());
        }
    }
    let report = batch_api::collect(client, &fk.caps, &batch_id, &plan.out_dir, on_event).await?;
    record_collected(fk.ledger_path(), &report, "batch-api", &plan.args);
    Ok(RemoteOutcome::Collected(report))
}

/// A batch's status.
///
/// # Errors
/// Client errors (an unknown id is the API's 404).
pub async fn status(fk: &crate::Fourk, id: &str, endpoint: &Endpoint) -> anyhow::Result<Batch> {
    let session = Session::connect(endpoint, &fk.caps).await?;
    let result = batch_api::status(&session.client, id).await;
    session.close().await;
    result
}

/// Collect a finished batch's images into `out` and record them in the ledger.
///
/// # Errors
/// A usage error while the batch is still running; client and IO errors.
pub async fn collect(
    fk: &crate::Fourk,
    id: &str,
    out: &Path,
    endpoint: &Endpoint,
    on_event: OnEvent<'_>,
) -> anyhow::Result<CollectReport> {
    let session = Session::connect(endpoint, &fk.caps).await?;
    let result = batch_api::collect(&session.client, &fk.caps, id, out, on_event).await;
    session.close().await;
    let report = result?;
    let args = serde_json::json!({
        "batch_id": id,
        "out": std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf()),
        "via": "batch-api",
    });
    record_collected(fk.ledger_path(), &report, "batch-collect", &args);
    Ok(report)
}

/// Record the collected images the ledger does not hold yet (collecting again rewrites the
/// same files), so `fourk cost` never counts a batch twice.
fn record_collected(ledger_path: &Path, report: &CollectReport, kind: &str, args: &serde_json::Value) {
    let ledger = crate::ledger::Ledger::open(ledger_path).ok();
    let images: Vec<_> = report
        .jobs
        .iter()
        .flat_map(|j| j.images.iter().cloned())
        .filter(|i| !already_recorded(ledger.as_ref(), &i.path, &i.sidecar))
        .collect();
    drop(ledger);
    if !images.is_empty() {
        crate::ledger::record_delivery(ledger_path, kind, args, &images);
    }
}

fn already_recorded(ledger: Option<&crate::ledger::Ledger>, path: &Path, sidecar: &Path) -> bool {
    let Some(ledger) = ledger else { return false };
    let sha = std::fs::read(sidecar)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.pointer("/checks/sha256")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        });
    // find_image_by_path makes the path absolute itself.
    sha.is_some_and(|sha| {
        ledger
            .find_image_by_path(path)
            .ok()
            .flatten()
            .is_some_and(|r| r.sha256 == sha)
    })
}
