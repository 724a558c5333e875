//! `fourk emulator`: serve the offline emulator until Ctrl-C.

use std::time::Duration;

use anyhow::Context as _;
use fourk_api::Capabilities;
use fourk_emulator::{EmulatorConfig, PerMinute, RateLimits};

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
    let mut rate_limits = RateLimits::default();
    if let Some(PerMinute(n)) = args.rate_limit {
        rate_limits.requests_per_minute = n;
    }
    let config = EmulatorConfig {
        capabilities: caps,
        require_key: args.require_key.clone(),
        latency_scale: args.latency.0,
        rate_limits,
        faults: args.faults.clone().unwrap_or_default(),
        seed: args.seed,
        stall: Duration::from_millis(args.stall_ms),
        fail_org_verification: args.fail_org_verification,
        moderation_block_words: args
            .moderation_block_words
            .iter()
            .map(|w| w.trim().to_owned())
            .filter(|w| !w.is_empty())
            .collect(),
        request_log: args.request_log.clone(),
        header_read_timeout: Duration::from_millis(args.header_timeout_ms),
        body_read_timeout: Duration::from_millis(args.body_timeout_ms),
        max_concurrent_requests: args.max_concurrent_requests,
        deployments: args.deployments.clone(),
    };
    if let Some(path) = &args.request_log {
        // Checked here, before binding, so the message names the flag rather than the port.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| {
                format!(
                    "cannot open the request log {}\n\nhint: pass a writable path to --request-log",
                    path.display()
                )
            })?;
    }
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
