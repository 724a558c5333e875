//! `fourk draft`: the flags become a [`DraftSpec`]; the core renders, records and lays out
//! the drafts ([`fourk_core::draft`]); this module prints their ids and paths.

use fourk_core::draft::{DraftSpec, draft};

use crate::cli::workflow::DraftArgs;
use crate::exit::Exit;
use crate::output::Printer;

impl DraftArgs {
    /// The core's draft spec.
    #[must_use]
    pub fn spec(&self) -> DraftSpec {
        DraftSpec {
            prompt: self.prompt.clone(),
            n: self.n,
            size: self.size,
            quality: self.quality,
            model: self.model.clone(),
            format: self.format,
            out: self.out.clone(),
            force: self.force,
            no_sheet: self.no_sheet,
            route: self.route.into(),
            endpoint: self.endpoint.spec(),
        }
    }
}

pub(super) async fn run(args: &DraftArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let report = draft(&args.spec(), fk, &fourk_core::send::Control::default()).await?;
    let p = Printer;
    if args.json {
        p.json(&report);
    } else {
        for d in &report.drafts {
            p.line(&format!(
                "{}\t{}",
                d.id.map_or_else(|| "-".into(), |id| id.to_string()),
                d.path.display()
            ));
        }
        if let Some(s) = &report.sheet {
            p.line(&format!("sheet\t{}", s.display()));
        }
    }
    Ok(if report.all_verified {
        Exit::Success
    } else {
        Exit::CheckFailed
    })
}
