//! One module per subcommand, plus what the sending commands share: `session` (client,
//! retries, payload log), `deliver` (save, verify, sidecar, summary for every route) and
//! `route` (the Responses API request).

pub mod batch;
pub mod batch_remote;
pub mod cost;
pub mod deliver;
pub mod edit;
mod emulator;
pub mod generate;
pub mod history;
mod models;
mod replay;
pub mod route;
pub mod session;
mod size;
pub mod transparent;
mod verify;
// The local pixel pipeline; `pipeline` is what its commands share.
pub mod compare;
pub mod convert;
pub mod cutout;
pub mod fit;
pub mod pipeline;
pub mod sheet;
pub mod upscale;
// Workflows: plan, draft, final and deliver (`ship`), with what they share in `workflow`.
pub mod draft;
pub mod finalize;
pub mod plan;
pub mod ship;
pub mod workflow;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// Run a parsed command line.
///
/// # Errors
/// Whatever the command fails with; the caller maps it to an exit code.
pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let caps = crate::models::load(cli.models_file.as_deref()).map_err(|e| {
        e.context(crate::UsageError(
            "cannot use the models file; fix it, or unset FOURK_MODELS / drop --models-file".into(),
        ))
    })?;
    crate::ledger::set_location(cli.ledger.clone());
    match cli.command {
        Command::Size(a) => Ok(size::run(&a, &caps)),
        Command::Generate(a) => generate::run(&a, &caps).await,
        Command::Edit(a) => edit::run(&a, &caps).await,
        Command::Replay(a) => replay::run(&a, &caps).await,
        Command::Verify(a) => verify::run(&a),
        Command::Emulator(a) => emulator::run(&a, caps).await,
        Command::Models(a) => models::run(&a, &caps),
        Command::Upscale(a) => pipeline::blocking(move || upscale::run(&a)).await,
        Command::Fit(a) => pipeline::blocking(move || fit::run(&a)).await,
        Command::Convert(a) => pipeline::blocking(move || convert::run(&a)).await,
        Command::Cutout(a) => pipeline::blocking(move || cutout::run(&a)).await,
        Command::Sheet(a) => pipeline::blocking(move || sheet::run(&a)).await,
        Command::Compare(a) => pipeline::blocking(move || compare::run(&a)).await,
        Command::History(a) => history::run(&a),
        Command::Cost(a) => cost::run(&a),
        Command::Batch(a) => batch::run(&a, &caps).await,
        Command::Plan(a) => plan::run(&a, &caps),
        Command::Draft(a) => draft::run(&a, &caps).await,
        Command::Final(a) => finalize::run(&a, &caps).await,
        Command::Deliver(a) => ship::run(&a, &caps).await,
    }
}
