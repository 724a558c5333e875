//! `fourk generate`: the flags become a [`GenerateSpec`]; the core checks, sends, saves,
//! verifies and records; this module prints (the body for `--dry-run`, paths or JSON).

use fourk_core::generate::{dry_run, generate, ledger_args};
use fourk_core::send::Recorder;

use crate::cli::GenerateArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) async fn run(args: &GenerateArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let caps = &fk.caps;
    let spec = args.spec();
    if args.dry_run {
        let dry = dry_run(&spec, caps)?;
        for w in &dry.warnings {
            tracing::warn!("{}", w.message);
        }
        Printer.line(&serde_json::to_string(&dry.body)?);
        return Ok(Exit::Success);
    }
    let record = ledger_args(&spec);
    let rec = Recorder::new(fk.ledger_path(), "generate", record);
    let result = generate(&spec, caps, &rec).await;
    rec.finish(&result);
    let (images, all_ok) = result?;
    Ok(crate::output::report(&images, all_ok, args.json))
}
