//! The one call a spending command makes: after its images are saved and their sidecars
//! written, record the run. The image is already safe on disk by then, so a ledger problem
//! is a warning, never a failed command.

use std::path::Path;

use serde_json::Value;

use super::{ImageId, Ledger, RunId, RunStatus};
use crate::save::ImageSummary;

/// Record a command that produced `images` (the summaries `deliver::save_all` and friends
/// return, whose sidecars are written): a run of `kind` with `args`, an attempt and usage
/// row per request, an image row per file. Returns the run and image ids, or `None` (with a
/// warning on stderr) when the ledger cannot be written.
pub fn record_delivery(
    ledger: &Path,
    kind: &str,
    args: &Value,
    images: &[ImageSummary],
) -> Option<(RunId, Vec<ImageId>)> {
    let go = || -> Result<_, super::LedgerError> {
        let ledger = Ledger::open(ledger)?;
        let run = ledger.begin_run(kind, args)?;
        let ids = ledger.record_summaries(run, None, images)?;
        let all_ok = images.iter().all(|i| i.verified);
        ledger.finish_run(run, RunStatus::verified(all_ok))?;
        Ok((run, ids))
    };
    match go() {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!("the images are saved, but the ledger was not updated: {e}");
            None
        }
    }
}

/// Record a command that failed after it may have sent a request: a run of `kind` with
/// one failed attempt (request id, HTTP status, possibly billed) from the error chain.
/// Errors found before sending (usage errors) are not worth a row and are skipped.
pub fn record_failed_command(ledger: &Path, kind: &str, args: &Value, err: &anyhow::Error) {
    let client = err
        .chain()
        .find_map(|c| c.downcast_ref::<fourk_client::ClientError>());
    let Some(client) = client else {
        return;
    };
    if matches!(
        client,
        fourk_client::ClientError::MissingKey | fourk_client::ClientError::Config(_)
    ) {
        return;
    }
    let go = || -> Result<(), super::LedgerError> {
        let ledger = Ledger::open(ledger)?;
        let run = ledger.begin_run(kind, args)?;
        ledger.record_failure(run, None, kind, err, None)?;
        ledger.finish_run(run, RunStatus::Failed)
    };
    if let Err(e) = go() {
        tracing::warn!("the failure was not recorded in the ledger: {e}");
    }
}

/// Record what a spending command ended with, success or failure, and hand the result back
/// unchanged: the one wrapper `generate` and `edit` put around their work.
///
/// # Errors
/// The command's own error, passed through.
pub fn record_outcome(
    ledger: &Path,
    kind: &str,
    args: &Value,
    outcome: anyhow::Result<(Vec<ImageSummary>, bool)>,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    match &outcome {
        Ok((images, _)) => {
            record_delivery(ledger, kind, args, images);
        }
        Err(err) => record_failed_command(ledger, kind, args, err),
    }
    outcome
}
