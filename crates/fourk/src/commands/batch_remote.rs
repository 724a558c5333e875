//! `fourk batch JOBS --via batch-api`, `fourk batch status ID` and `fourk batch collect ID`:
//! flags to `fourk_core::batch::remote` (budget at batch prices, the submission record, the
//! ledger record), the driver's events drawn on stderr, the report printed.

use std::path::Path;
use std::time::Duration;

use fourk_api::batch::Batch;

use crate::cli::EndpointArgs;
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::batch::Plan;
use fourk_core::batch::remote::{self, RemoteOutcome, RemoteSpec};
use fourk_core::batch_api::{BatchEvent, CollectReport};

/// Draw the driver's events: plain lines on stderr.
fn draw(event: &BatchEvent) {
    if event.is_warning() {
        tracing::warn!("{event}");
    } else {
        tracing::info!("{event}");
    }
}

/// `fourk batch JOBS --via batch-api`.
///
/// # Errors
/// Usage errors before anything is sent; client and IO errors.
pub async fn submit_and_collect(
    fk: &fourk_core::Fourk,
    plan: &Plan,
    endpoint: &EndpointArgs,
    poll: Duration,
    no_wait: bool,
    json: bool,
) -> anyhow::Result<Exit> {
    let spec = RemoteSpec {
        endpoint: endpoint.spec(),
        poll,
        no_wait,
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    Ok(
        match remote::submit_and_collect(fk, plan, &spec, &mut draw).await? {
            RemoteOutcome::Submitted(batch) => {
                print_status(&batch, json);
                Exit::Success
            }
            RemoteOutcome::Collected(report) => finish(&report, json),
        },
    )
}

/// Print the report (the core recorded it in the ledger), and say how it went.
fn finish(report: &CollectReport, json: bool) -> Exit {
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
    fk: &fourk_core::Fourk,
    id: &str,
    endpoint: &EndpointArgs,
    json: bool,
) -> anyhow::Result<Exit> {
    let batch = remote::status(fk, id, &endpoint.spec()).await?;
    print_status(&batch, json);
    Ok(Exit::Success)
}

/// `fourk batch collect ID`.
///
/// # Errors
/// A usage error while the batch is still running; client and IO errors.
pub async fn collect(
    fk: &fourk_core::Fourk,
    id: &str,
    out: &Path,
    endpoint: &EndpointArgs,
    json: bool,
) -> anyhow::Result<Exit> {
    let report = remote::collect(fk, id, out, &endpoint.spec(), &mut draw).await?;
    Ok(finish(&report, json))
}
