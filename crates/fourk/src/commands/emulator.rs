//! `fourk emulator`: serve the offline emulator until Ctrl-C.

use fourk_api::Capabilities;
use fourk_emulator::EmulatorConfig;

use crate::cli::EmulatorArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) async fn run(args: &EmulatorArgs, caps: Capabilities) -> anyhow::Result<Exit> {
    if !args.addr.ip().is_loopback() {
        tracing::warn!(
            "listening on {}, which is reachable from other machines; the emulator has no real authentication",
            args.addr
        );
    }
    let config = EmulatorConfig {
        capabilities: caps,
        require_key: args.require_key.clone(),
        ..EmulatorConfig::default()
    };
    let running = fourk_emulator::spawn(args.addr, config).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {}: {e}\n\nhint: pick another port with --addr 127.0.0.1:0",
            args.addr
        )
    })?;
    // The first line of stdout is the contract scripts and tests read.
    Printer.line(&format!("listening on http://{}", running.addr()));
    tracing::info!(
        "OpenAI-compatible image endpoints at {}; images are rendered procedurally, not by OpenAI. Ctrl-C stops.",
        running.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    running.shutdown().await?;
    Ok(Exit::Success)
}
