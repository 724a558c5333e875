//! `fourk batch JOBS --via batch-api`, `fourk batch status ID` and `fourk batch collect ID`:
//! the CLI around the Batch API driver in `fourk_core::batch_api`. This module turns the checked
//! jobs into batch requests, keeps the budget and the "never submit the same jobs twice"
//! promise, draws the driver's events on stderr, records the saved images in the ledger and
//! prints the report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use fourk_api::batch::{Batch, batch_prices};
use fourk_api::{Capabilities, EditJsonBody};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::UsageError;
use crate::cli::EndpointArgs;
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::batch::runner::{self, Request};
use fourk_core::batch::{Job, Plan};
use fourk_core::batch_api::{self, BatchEvent, BatchJob, CollectReport, SubmitOptions};
use fourk_core::session::Session;

/// How often the in-process emulator's batches are polled.
const EMULATOR_POLL: Duration = Duration::from_millis(200);

/// What `--via batch-api` needs beyond the plan.
#[derive(Debug)]
pub struct RemoteOptions<'a> {
    /// The shared endpoint flags.
    pub endpoint: &'a EndpointArgs,
    /// Poll interval against a real endpoint.
    pub poll: Duration,
    /// Return once the batch is created.
    pub no_wait: bool,
    /// Print JSON on stdout.
    pub json: bool,
    /// The run ledger.
    pub ledger: &'a Path,
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
fn batch_jobs(caps: &Capabilities, plan: &Plan) -> anyhow::Result<(Vec<BatchJob>, f64)> {
    let mut jobs = Vec::with_capacity(plan.jobs.len());
    let mut estimate = 0.0;
    let (mut generations, mut edits) = (Vec::new(), Vec::new());
    for job in &plan.jobs {
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

/// Draw the driver's events: plain lines on stderr.
fn draw(event: &BatchEvent) {
    match event {
        BatchEvent::Uploaded {
            file_id,
            bytes,
            requests,
        } => tracing::info!("uploaded {requests} request(s) as {file_id} ({bytes} bytes)"),
        BatchEvent::Created { batch_id } => tracing::info!("batch {batch_id} created"),
        BatchEvent::Status {
            batch_id,
            status,
            counts,
        } => tracing::info!(
            "batch {batch_id}: {status}, {} of {} done, {} failed",
            counts.completed + counts.failed,
            counts.total,
            counts.failed
        ),
        BatchEvent::Downloading { file_id, kind } => tracing::info!("downloading the {kind} file {file_id}"),
        BatchEvent::Downloaded { file_id, kind, bytes } => {
            tracing::info!("downloaded the {kind} file {file_id} ({bytes} bytes)");
        }
        BatchEvent::Saved {
            custom_id,
            path,
            verified,
        } => {
            if *verified {
                tracing::info!("{custom_id}: saved {}", path.display());
            } else {
                tracing::warn!("{custom_id}: {} does not match the request", path.display());
            }
        }
        BatchEvent::Failed { custom_id, message } => tracing::warn!("{custom_id}: {message}"),
    }
}

fn poll_every(endpoint: &EndpointArgs, poll: Duration) -> Duration {
    if endpoint.connect.emulator {
        EMULATOR_POLL
    } else {
        poll
    }
}

/// `fourk batch JOBS --via batch-api`.
///
/// # Errors
/// Usage errors before anything is sent; client and IO errors.
pub async fn submit_and_collect(
    caps: &Capabilities,
    plan: &Plan,
    opts: &RemoteOptions<'_>,
) -> anyhow::Result<Exit> {
    let (jobs, estimate) = batch_jobs(caps, plan)?;
    if let Some(max) = plan.max_cost
        && estimate > max
    {
        return Err(UsageError(format!(
            "the batch is estimated at ${estimate:.4} at Batch API prices, more than --max-cost ${max:.2}; nothing was sent\n\nhint: raise --max-cost, or split the jobs file"
        ))
        .into());
    }
    std::fs::create_dir_all(&plan.out_dir)
        .with_context(|| format!("creating the output folder {}", plan.out_dir.display()))?;
    let session = Session::connect(&opts.endpoint.spec(), caps).await?;
    let result = follow(&session, caps, plan, &jobs, estimate, opts).await;
    session.close().await;
    result
}

async fn follow(
    session: &Session,
    caps: &Capabilities,
    plan: &Plan,
    jobs: &[BatchJob],
    estimate: f64,
    opts: &RemoteOptions<'_>,
) -> anyhow::Result<Exit> {
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
        let submitted = batch_api::submit(client, caps, jobs, &options, &mut draw).await?;
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
    if opts.no_wait {
        tracing::info!(
            "not waiting: see progress with `fourk batch status {batch_id}`, then save the images with `fourk batch collect {batch_id} --out {}`",
            plan.out_dir.display()
        );
        let batch = batch_api::status(client, &batch_id).await?;
        print_status(&batch, opts.json);
        return Ok(Exit::Success);
    }
    batch_api::wait(client, &batch_id, poll_every(opts.endpoint, opts.poll), &mut draw).await?;
    let report = batch_api::collect(client, caps, &batch_id, &plan.out_dir, &mut draw).await?;
    Ok(finish(&report, "batch-api", &plan.args, opts.json, opts.ledger))
}

/// Record the saved images, print the report, and say how it went.
fn finish(
    report: &CollectReport,
    kind: &str,
    args: &serde_json::Value,
    json: bool,
    ledger_path: &Path,
) -> Exit {
    let ledger = fourk_core::ledger::Ledger::open(ledger_path).ok();
    // Collecting again rewrites the same files; record only images the ledger does not
    // hold yet, so `fourk cost` never counts a batch twice.
    let images: Vec<_> = report
        .jobs
        .iter()
        .flat_map(|j| j.images.iter().cloned())
        .filter(|i| !already_recorded(ledger.as_ref(), &i.path, &i.sidecar))
        .collect();
    drop(ledger);
    if !images.is_empty() {
        fourk_core::ledger::record_delivery(ledger_path, kind, args, &images);
    }
    tracing::info!(
        "batch {}: {} of {} job(s) saved and verified, {} failed; ${:.4} at Batch API prices{}",
        report.batch_id,
        report.succeeded(),
        report.jobs.len(),
        report.failed(),
        report.cost_usd,
        if report.cost_estimate {
            " (estimated prices)"
        } else {
            ""
        }
    );
    if report.emulator {
        tracing::info!("the images came from fourk's emulator: rendered procedurally, not by OpenAI");
    }
    let p = Printer;
    if json {
        p.json(report);
    } else {
        for j in &report.jobs {
            if j.ok {
                for path in &j.paths {
                    p.line(&path.display().to_string());
                }
            } else {
                tracing::warn!("{}: {}", j.custom_id, j.error.as_deref().unwrap_or("failed"));
            }
        }
    }
    if report.failed() == 0 {
        Exit::Success
    } else {
        Exit::CheckFailed
    }
}

fn already_recorded(ledger: Option<&fourk_core::ledger::Ledger>, path: &Path, sidecar: &Path) -> bool {
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

fn print_status(batch: &Batch, json: bool) {
    let p = Printer;
    if json {
        p.json(batch);
    } else {
        let c = batch.counts();
        p.line(&format!(
            "{} {} {}/{} done {} failed",
            batch.id,
            batch.status,
            c.completed + c.failed,
            c.total,
            c.failed
        ));
    }
}

/// `fourk batch status ID`.
///
/// # Errors
/// Client errors (an unknown id is the API's 404).
pub async fn status(
    caps: &Capabilities,
    id: &str,
    endpoint: &EndpointArgs,
    json: bool,
) -> anyhow::Result<Exit> {
    let session = Session::connect(&endpoint.spec(), caps).await?;
    let result = batch_api::status(&session.client, id).await;
    session.close().await;
    let batch = result?;
    print_status(&batch, json);
    Ok(Exit::Success)
}

/// `fourk batch collect ID`.
///
/// # Errors
/// A usage error while the batch is still running; client and IO errors.
pub async fn collect(
    caps: &Capabilities,
    id: &str,
    out: &Path,
    endpoint: &EndpointArgs,
    json: bool,
    ledger: &Path,
) -> anyhow::Result<Exit> {
    let session = Session::connect(&endpoint.spec(), caps).await?;
    let result = batch_api::collect(&session.client, caps, id, out, &mut draw).await;
    session.close().await;
    let report = result?;
    let args = serde_json::json!({
        "batch_id": id,
        "out": std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf()),
        "via": "batch-api",
    });
    Ok(finish(&report, "batch-collect", &args, json, ledger))
}
