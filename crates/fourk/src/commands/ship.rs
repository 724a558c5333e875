//! `fourk deliver`: the flags become a [`DeliverSpec`]; the core delivers
//! ([`fourk_core::deliver`]); this module prints the report and picks the exit code.

use std::time::Duration;

use fourk_core::deliver::{DeliverReport, DeliverSpec, deliver};

use crate::cli::workflow::DeliverArgs;
use crate::exit::Exit;
use crate::output::Printer;

impl DeliverArgs {
    /// The core's delivery spec.
    #[must_use]
    pub fn spec(&self) -> DeliverSpec {
        DeliverSpec {
            prompt: self.prompt.clone(),
            model: self.model.clone(),
            size: self.size,
            quality: self.quality,
            max_cost: self.max_cost,
            timeout: self.timeout.map(Duration::from_secs_f64),
            format: self.format,
            out: self.out.clone(),
            force: self.force,
            endpoint: self
                .connect
                .endpoint(Duration::from_secs(self.request_timeout), &self.delivery),
        }
    }
}

pub(super) async fn run(args: &DeliverArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let r = deliver(&args.spec(), fk, &fourk_core::send::Control::default()).await?;
    Ok(report(args.json, &r))
}

fn report(json: bool, r: &DeliverReport) -> Exit {
    let p = Printer;
    tracing::info!(
        "{} by {}, ${:.3}{} in all",
        if r.verified { "shipped" } else { "NOT shipped" },
        r.shipped_by.unwrap_or("-"),
        r.usd,
        if r.estimate { " (partly estimated)" } else { "" }
    );
    if json {
        p.json(r);
    } else if let Some(s) = &r.shipped {
        p.line(&s.display().to_string());
    }
    if r.verified {
        Exit::Success
    } else {
        Exit::CheckFailed
    }
}
