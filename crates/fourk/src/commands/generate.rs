//! `fourk generate`: the flags become a [`GenerateSpec`](fourk_core::spec::GenerateSpec); the
//! core checks, sends, saves, verifies and records; this module prints (the body for
//! `--dry-run`, paths or JSON).

use fourk_core::generate::{dry_run, generate_recorded};

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
    let (images, all_ok) = generate_recorded(&spec, fk, fourk_core::send::Control::default()).await?;
    Ok(crate::output::report(&images, all_ok, args.json))
}
