//! fourk's typed core: everything that is neither argument parsing nor printing.
//!
//! The CLI (`fourk`), and the doors that follow it, build typed values here and call these
//! functions; none of them re-implements a check, a record or a message. This crate never
//! prints: the CLI's `output` module writes data to stdout, and everything here reports
//! through `tracing`, return values and reporter traits.
//!
//! - [`Fourk`]: what every operation needs (the capability table and the ledger's path),
//!   passed in as a value, never a process-wide static.
//! - [`spec`]: what a door asks for ([`spec::GenerateSpec`], [`spec::EditSpec`]).
//! - [`generate`], [`edit`], [`transparent`]: the operations, typed specs in, summaries out.
//! - [`draft`]: cheap drafts with the target's ratio, a contact sheet, ids in the ledger.
//! - [`finalize`]: an approved draft to the final, native or master + upscale.
//! - [`deliver`]: one command to a verified deliverable, with the fallback built in.
//! - [`workflow`]: what draft, final and deliver share (renders, upscale, sheet, the run record).
//! - [`session`]: the client (or the in-process emulator) for an [`session::Endpoint`].
//! - [`route`]: the Responses API request of the image options.
//! - [`send`]: the one send path; every request on record before it leaves.
//! - [`save`]: an answer's images saved atomically, verified, and described in sidecars.
//! - [`sidecar`]: the JSON record next to every image.
//! - [`ledger`]: the SQLite run ledger.
//! - [`batch`] and [`batch_api`]: the local batch runner and the Batch API driver.
//! - [`models`]: the capability table in use (built in, plus a user file).
//! - [`pipeline`]: the local pixel operations (upscale, fit, convert, cutout, sheet, compare).
//! - [`replay`]: a logged request sent again, on record like every other.
//! - [`jobs`]: long work on its own task for the doors that stay up (MCP, studio), with
//!   progress, safe cancellation and a spending ceiling.

#![warn(missing_docs)]

pub mod batch;
pub mod batch_api;
pub mod deliver;
pub mod draft;
pub mod edit;
pub mod edit_request;
pub mod finalize;
pub mod gemini;
pub mod generate;
pub mod image_api;
pub mod jobs;
pub mod ledger;
pub mod models;
pub mod outputs;
pub mod pipeline;
pub mod replay;
pub mod roots;
pub mod route;
pub mod save;
pub mod secret;
pub mod send;
pub mod session;
pub mod sidecar;
pub mod spec;
pub mod thumbs;
pub mod transparent;
pub mod workflow;

use std::path::{Path, PathBuf};

use fourk_api::Capabilities;

/// A problem with the user's input, found before anything was sent. Every door shows it as
/// a usage error (the CLI exits 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What every operation of the core needs: the capability table in use and where the run
/// ledger lives. Built once by a door and passed by reference.
#[derive(Debug, Clone)]
pub struct Fourk {
    /// The models, sizes, options and prices requests are checked and priced with.
    pub caps: Capabilities,
    /// The run ledger's file (see [`ledger::resolve_path`]).
    pub ledger: PathBuf,
}

impl Fourk {
    /// A core value with `caps` and the ledger at `ledger`.
    #[must_use]
    pub fn new(caps: Capabilities, ledger: PathBuf) -> Self {
        Self { caps, ledger }
    }

    /// The ledger's file.
    #[must_use]
    pub fn ledger_path(&self) -> &Path {
        &self.ledger
    }

    /// Open the ledger.
    ///
    /// # Errors
    /// As [`ledger::Ledger::open`].
    pub fn open_ledger(&self) -> Result<ledger::Ledger, ledger::LedgerError> {
        ledger::Ledger::open(&self.ledger)
    }
}

/// An error in the words every door shows (the CLI after `error: `, the studio's pages): each
/// cause of the chain once (an error that already quotes its source is not followed by it
/// again), and for a failure that may have been billed a note saying so, with the request id
/// to quote, even when the error's own words do not.
#[must_use]
pub fn error_text(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    if let Some(c) = err
        .chain()
        .find_map(|c| c.downcast_ref::<fourk_client::ClientError>())
        && c.possibly_billed()
        && !msg.contains("possibly billed")
    {
        msg.push_str(&format!(
            "\n\nnote: possibly billed (request {})",
            c.request_id().unwrap_or("unknown")
        ));
    }
    msg
}
