//! `fourk replay`: send a request from the payload log again and print what came back.
//! Nothing is saved: this reproduces a problem, it does not make images. The request is on
//! record in the ledger like every other (`fourk_core::replay`).

use crate::cli::ReplayArgs;
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::replay::{ReplaySpec, replay};
use fourk_core::send::Control;

pub(super) async fn run(args: &ReplayArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let spec = ReplaySpec {
        path: args.path.clone(),
        endpoint: args.endpoint.spec(),
    };
    let report = replay(&spec, fk, &Control::default()).await?;
    Printer.json(&report);
    Ok(if (200..300).contains(&report.status) {
        Exit::Success
    } else {
        Exit::Api
    })
}
