//! `fourk size`: the verdict on one size, offline.

use fourk_api::Capabilities;

use crate::cli::SizeArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) fn run(args: &SizeArgs, caps: &Capabilities) -> Exit {
    let v = caps.verdict(&args.size, &args.model);
    let p = Printer;
    if args.json {
        p.json(&v);
    } else {
        p.line(&v.describe());
    }
    if v.valid { Exit::Success } else { Exit::CheckFailed }
}
