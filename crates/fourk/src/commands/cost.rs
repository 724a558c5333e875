//! `fourk cost`: dollars and tokens from the usage recorded in the run ledger, measured and
//! estimated kept apart.

use serde::Serialize;

use crate::cli::ledger::{CostArgs, CostByArg};
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::ledger::{CostBy, CostRow, Ledger};

impl From<CostByArg> for CostBy {
    fn from(b: CostByArg) -> Self {
        match b {
            CostByArg::Model => Self::Model,
            CostByArg::Quality => Self::Quality,
            CostByArg::Size => Self::Size,
            CostByArg::Day => Self::Day,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    since: Option<&'a str>,
    by: Option<CostBy>,
    rows: &'a [CostRow],
    total_usd: f64,
    measured_usd: f64,
    estimated_usd: f64,
}

pub(super) fn run(args: &CostArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let ledger = Ledger::open(fk.ledger_path())?;
    let by = args.by.map(CostBy::from);
    let rows = ledger.cost(args.since.as_deref(), by)?;
    // Folded from +0.0: an empty sum of f64 is -0.0, which JSON would print as `-0.0`.
    let sum = |f: fn(&CostRow) -> f64| rows.iter().fold(0.0_f64, |a, r| a + f(r));
    let total = sum(|r| r.usd);
    let measured = sum(|r| r.measured_usd);
    let estimated = sum(|r| r.estimated_usd);
    let p = Printer;
    if args.json {
        p.json(&Report {
            since: args.since.as_deref(),
            by,
            rows: &rows,
            total_usd: total,
            measured_usd: measured,
            estimated_usd: estimated,
        });
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        tracing::info!("no usage recorded in {}", ledger.path().display());
        return Ok(Exit::Success);
    }
    p.line("GROUP\tREQUESTS\tIMAGES\tOUTPUT_TOKENS\tUSD\tMEASURED\tESTIMATED");
    for r in &rows {
        p.line(&format!(
            "{}\t{}\t{}\t{}\t{:.4}\t{:.4}\t{:.4}",
            r.key, r.requests, r.images, r.output_tokens, r.usd, r.measured_usd, r.estimated_usd
        ));
    }
    p.line(&format!(
        "total\t{}\t{}\t{}\t{total:.4}\t{measured:.4}\t{estimated:.4}",
        rows.iter().map(|r| r.requests).sum::<u64>(),
        rows.iter().map(|r| r.images).sum::<u64>(),
        rows.iter().map(|r| r.output_tokens).sum::<u64>(),
    ));
    if estimated > 0.0 {
        tracing::info!(
            "${estimated:.4} of the total is estimated: requests that may have been billed without an answer, or prices marked as estimates"
        );
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use crate::cli::ledger::parse_since;

    #[test]
    fn since_accepts_dates_and_rejects_the_rest() {
        assert_eq!(parse_since("2026-01-31").unwrap(), "2026-01-31");
        assert_eq!(parse_since("2026-01-31 10:30").unwrap(), "2026-01-31T10:30");
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-1-1",
            "2026-01-32",
            "2026-01-01T25",
            "",
        ] {
            let e = parse_since(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
    }
}
