//! `fourk final`: the flags become a [`FinalSpec`]; the core renders the final from the
//! draft ([`fourk_core::finalize`]); this module prints the path or the report.

use fourk_core::finalize::{FinalSpec, finalize};

use crate::cli::workflow::FinalArgs;
use crate::exit::Exit;
use crate::output::Printer;

impl FinalArgs {
    /// The core's final spec.
    #[must_use]
    pub fn spec(&self) -> FinalSpec {
        FinalSpec {
            draft: self.draft.clone(),
            upscale: self.upscale,
            quality: self.quality,
            size: self.size,
            prompt: self.prompt.clone(),
            out: self.out.clone(),
            force: self.force,
            endpoint: self.endpoint.spec(),
        }
    }
}

pub(super) async fn run(args: &FinalArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let report = finalize(&args.spec(), fk, &fourk_core::send::Control::default()).await?;
    let p = Printer;
    if args.json {
        p.json(&report);
    } else {
        p.line(&report.path.display().to_string());
    }
    Ok(if report.verified {
        Exit::Success
    } else {
        Exit::CheckFailed
    })
}
