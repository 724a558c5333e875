//! One module per subcommand, plus what the sending commands share: `session` (client,
//! retries, payload log), `deliver` (save, verify, sidecar, summary for every route) and
//! `route` (the Responses API request).

pub mod deliver;
pub mod edit;
mod emulator;
pub mod generate;
mod models;
mod replay;
pub mod route;
pub mod session;
mod size;
mod verify;

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
    match cli.command {
        Command::Size(a) => Ok(size::run(&a, &caps)),
        Command::Generate(a) => generate::run(&a, &caps).await,
        Command::Edit(a) => edit::run(&a, &caps).await,
        Command::Replay(a) => replay::run(&a, &caps).await,
        Command::Verify(a) => verify::run(&a),
        Command::Emulator(a) => emulator::run(&a, caps).await,
        Command::Models(a) => models::run(&a, &caps),
    }
}
