//! Recording images that were paid for elsewhere (results of the Batch API, fetched later):
//! after they are saved and their sidecars written, record the run. The images are already
//! safe on disk by then, so a ledger problem is a warning, never a failed command. Requests
//! fourk sends itself are recorded by the send path ([`crate::send::Recorder`]).

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
