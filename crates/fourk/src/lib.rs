//! fourk: verified high-resolution images with OpenAI's GPT Image models.
//!
//! This crate is the command line: clap structs, the typed values built from them, printing
//! and exit codes. `main.rs` only calls [`run`]. The session, the send path, saving and
//! sidecars, the ledger and batches live in `fourk-core`; wire rules in `fourk-api`, HTTP in
//! `fourk-client`, pixels in `fourk-imaging`, and the offline emulator in `fourk-emulator`.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod output;

use std::ffi::OsString;
use std::process::ExitCode;

pub use exit::Exit;

/// A problem with the user's input, found before anything was sent. Exits with
/// [`Exit::Usage`]. It is the core's type, so every door shows it the same way.
pub use fourk_core::UsageError;

/// Parse `args`, run the command, and return the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match cli::Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            }
            .into();
        }
    };
    output::init_logging(cli.verbose, cli.quiet);
    if let Some(max) = cli.max_pixels {
        fourk_imaging::budget::set_max_pixels(max);
    }
    if let Some(result) = commands::run_offline(&cli) {
        return match result {
            Ok(code) => code.into(),
            Err(err) => {
                report_error(&err);
                exit_for(&err).into()
            }
        };
    }
    let ledger = fourk_core::ledger::resolve_path(cli.ledger.clone());
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if matches!(cli.command, cli::Command::Emulator(_)) {
        // The emulator decodes and renders on blocking threads. mimalloc hands back what a
        // thread freed when that thread next allocates or exits, and an idle blocking thread
        // does neither until tokio ends it (10 s by default): memory after a burst of large
        // edits stayed up that long. scripts/emulator-soak measures it.
        builder.thread_keep_alive(std::time::Duration::from_secs(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return Exit::Io.into();
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = commands::dispatch(cli) => r,
            stop = stop_signal() => Ok(stop),
        }
    });
    if let Ok(stop @ (Exit::Interrupted | Exit::Terminated)) = result {
        note_stopped(&ledger, stop);
    }
    match result {
        Ok(code) => code.into(),
        Err(err) => {
            report_error(&err);
            exit_for(&err).into()
        }
    }
}

/// Ctrl-C ([`Exit::Interrupted`]) or, on Unix, SIGTERM ([`Exit::Terminated`]).
async fn stop_signal() -> Exit {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => Exit::Interrupted,
                _ = term.recv() => Exit::Terminated,
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    Exit::Interrupted
}

/// After Ctrl-C or SIGTERM: requests this process had sent without an answer become
/// possibly billed in the ledger (their estimate stays as the cost on record), and stderr
/// says so with each request's ledger attempt and request id.
fn note_stopped(ledger: &std::path::Path, stop: Exit) {
    let why = if stop == Exit::Terminated {
        "fourk was terminated (SIGTERM) while the request was in flight"
    } else {
        "fourk was interrupted (Ctrl-C) while the request was in flight"
    };
    if !ledger.exists() {
        return;
    }
    let hit = match fourk_core::ledger::Ledger::open(ledger)
        .and_then(|l| l.interrupt_process(std::process::id(), why))
    {
        Ok(hit) => hit,
        Err(e) => {
            tracing::warn!("the interruption was not recorded in the ledger: {e}");
            return;
        }
    };
    for (attempt, run, rid) in hit {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "{why}: possibly billed (request {}, ledger run {run}, attempt {attempt}); its estimated cost is recorded (fourk cost, fourk history)",
                rid.as_deref().unwrap_or("id not received")
            );
        }
    }
}

/// Print an error on stderr, in the words every door uses ([`fourk_core::error_text`]).
fn report_error(err: &anyhow::Error) {
    let msg = fourk_core::error_text(err);
    #[allow(clippy::print_stderr)]
    {
        eprintln!("error: {msg}");
    }
}

fn exit_for_class(class: fourk_api::ErrorClass) -> Exit {
    use fourk_api::ErrorClass;
    match class {
        ErrorClass::RateLimited | ErrorClass::QuotaExhausted => Exit::RateLimited,
        ErrorClass::Server => Exit::Network,
        _ => Exit::Api,
    }
}

/// The exit code an error maps to.
#[must_use]
pub fn exit_for(err: &anyhow::Error) -> Exit {
    use fourk_client::ClientError;
    // Context attached with `.context(UsageError(..))` is only visible through `downcast_ref`.
    if err.downcast_ref::<UsageError>().is_some() {
        return Exit::Usage;
    }
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return Exit::Usage;
        }
        if cause.downcast_ref::<fourk_core::send::Cancelled>().is_some() {
            return Exit::Interrupted;
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return match c {
                ClientError::MissingKey { .. } | ClientError::Config(_) | ClientError::Replay { .. } => {
                    Exit::Usage
                }
                ClientError::Api { class, .. } | ClientError::Stream { class, .. } => exit_for_class(*class),
                ClientError::Timeout { .. } => Exit::Timeout,
                ClientError::Connect { .. } | ClientError::Transport { .. } => Exit::Network,
                _ => Exit::Api,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return Exit::Io;
        }
        if let Some(i) = cause.downcast_ref::<fourk_imaging::ImagingError>() {
            return match i {
                fourk_imaging::ImagingError::Io { .. } => Exit::Io,
                _ => Exit::CheckFailed,
            };
        }
    }
    Exit::CheckFailed
}

#[cfg(test)]
mod tests {
    use fourk_api::{ApiError, ErrorClass};
    use fourk_client::ClientError;

    use super::*;

    fn stream_error(class: ErrorClass) -> anyhow::Error {
        let error: ApiError = serde_json::from_value(serde_json::json!({
            "message": "boom", "type": "server_error", "param": null, "code": null
        }))
        .unwrap();
        ClientError::Stream {
            class,
            error: Box::new(error),
            request_id: Some("req_1".into()),
        }
        .into()
    }

    #[test]
    fn stream_errors_exit_by_class_and_replay_errors_are_usage() {
        assert_eq!(exit_for(&stream_error(ErrorClass::Server)), Exit::Network);
        assert_eq!(
            exit_for(&stream_error(ErrorClass::RateLimited)),
            Exit::RateLimited
        );
        assert_eq!(exit_for(&stream_error(ErrorClass::ModerationBlocked)), Exit::Api);
        let replay = ClientError::Replay {
            path: "x".into(),
            message: "no path".into(),
        };
        assert_eq!(exit_for(&replay.into()), Exit::Usage);
    }
}
