//! `fourk edit`: the flags become an [`fourk_core::spec::EditSpec`]; the core checks the
//! inputs, sends, saves, verifies and records; this module prints (the multipart layout for
//! `--dry-run`, paths or JSON).

use fourk_core::edit::{dry_run, edit_recorded};

use crate::cli::EditArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) async fn run(args: &EditArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let caps = &fk.caps;
    let spec = args.spec();
    if args.dry_run {
        // The warnings were logged when the request was built.
        Printer.json(&dry_run(&spec, caps)?.body);
        return Ok(Exit::Success);
    }
    let (images, all_ok) = edit_recorded(&spec, fk, fourk_core::send::Control::default()).await?;
    Ok(crate::output::report(&images, all_ok, args.json))
}
