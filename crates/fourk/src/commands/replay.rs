//! `fourk replay`: send a request from the payload log again and print what came back.
//! Nothing is saved: this reproduces a problem, it does not make images.

use fourk_api::Capabilities;
use serde::Serialize;

use crate::cli::ReplayArgs;
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::session::Session;

/// What `fourk replay` prints.
#[derive(Debug, Serialize)]
struct ReplayReport<'a> {
    status: u16,
    request_id: Option<&'a str>,
    attempts: u32,
    elapsed_ms: u128,
    body_bytes: usize,
    emulator: bool,
}

pub(super) async fn run(args: &ReplayArgs, caps: &Capabilities) -> anyhow::Result<Exit> {
    let session = Session::connect(&args.endpoint.spec(), caps).await?;
    let result = fourk_client::replay(&args.path, &session.client).await;
    session.close().await;
    let resp = result?;
    Printer.json(&ReplayReport {
        status: resp.status,
        request_id: resp.request_id.as_deref(),
        attempts: resp.attempts,
        elapsed_ms: resp.elapsed.as_millis(),
        body_bytes: resp.body.len(),
        emulator: resp.emulator.is_some(),
    });
    Ok(if (200..300).contains(&resp.status) {
        Exit::Success
    } else {
        Exit::Api
    })
}
