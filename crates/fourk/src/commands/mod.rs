//! One module per subcommand. What the sending commands share (the session, the send path,
//! saving and sidecars, the Responses API request) is in `fourk-core`.

pub mod batch;
pub mod batch_remote;
pub mod cost;
pub mod edit;
mod emulator;
pub mod generate;
pub mod history;
mod models;
mod probe;
mod replay;
mod shell;
mod size;
mod verify;
// The local pixel pipeline: upscale, fit, convert, cutout, sheet and compare.
pub mod pipeline;
// Workflows: plan, draft, final and deliver (`ship`), with what they share in `workflow`.
pub mod draft;
pub mod finalize;
pub mod plan;
pub mod ship;
// The doors beside the CLI.
mod mcp;
mod studio;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// The commands that need neither the async runtime, the capability table nor the ledger
/// (`probe`, `completions`, `man`): run at once, so that `fourk probe` costs about a process
/// start. `None` for every other command.
#[must_use]
pub fn run_offline(cli: &Cli) -> Option<anyhow::Result<Exit>> {
    match &cli.command {
        Command::Probe(a) => Some(Ok(probe::run(a))),
        Command::Completions(a) => Some(Ok(shell::completions(a))),
        Command::Man(a) => Some(shell::man(a)),
        _ => None,
    }
}

/// Run a parsed command line.
///
/// # Errors
/// Whatever the command fails with; the caller maps it to an exit code.
pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    if let Some(result) = run_offline(&cli) {
        return result;
    }
    let caps = fourk_core::models::load(cli.models_file.as_deref()).map_err(|e| {
        e.context(crate::UsageError(
            "cannot use the models file; fix it, or unset FOURK_MODELS / drop --models-file".into(),
        ))
    })?;
    let fk = fourk_core::Fourk::new(caps, fourk_core::ledger::resolve_path(cli.ledger.clone()));
    let caps = &fk.caps;
    match cli.command {
        Command::Size(a) => Ok(size::run(&a, caps)),
        Command::Generate(a) => generate::run(&a, &fk).await,
        Command::Edit(a) => edit::run(&a, &fk).await,
        Command::Replay(a) => replay::run(&a, &fk).await,
        Command::Verify(a) => verify::run(&a),
        Command::Probe(_) | Command::Completions(_) | Command::Man(_) => {
            unreachable!("run by run_offline above")
        }
        Command::Emulator(a) => emulator::run(&a, caps.clone()).await,
        Command::Models(a) => models::run(&a, caps),
        Command::Upscale(a) => pipeline::run(a.op(), fk.ledger_path(), a.json).await,
        Command::Fit(a) => pipeline::run(a.op(), fk.ledger_path(), a.json).await,
        Command::Convert(a) => pipeline::run(a.op(), fk.ledger_path(), a.json).await,
        Command::Cutout(a) => pipeline::run(a.op(), fk.ledger_path(), a.json).await,
        Command::Sheet(a) => pipeline::run(a.op(), fk.ledger_path(), a.json).await,
        Command::Compare(a) => pipeline::run(a.op(), fk.ledger_path(), a.json).await,
        Command::History(a) => history::run(&a, &fk),
        Command::Cost(a) => cost::run(&a, &fk),
        Command::Batch(a) => batch::run(&a, &fk).await,
        Command::Plan(a) => plan::run(&a, caps),
        Command::Draft(a) => draft::run(&a, &fk).await,
        Command::Final(a) => finalize::run(&a, &fk).await,
        Command::Deliver(a) => ship::run(&a, &fk).await,
        Command::Mcp(a) => mcp::run(&a, fk).await,
        Command::Studio(a) => studio::run(&a, fk).await,
    }
}
