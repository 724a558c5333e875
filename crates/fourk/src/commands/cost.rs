//! `fourk cost`: dollars and tokens from the usage recorded in the run ledger, measured and
//! estimated kept apart.

use clap::Args;
use serde::Serialize;

use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::ledger::{CostBy, CostRow, Ledger};

/// `fourk cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Only usage recorded on or after this UTC date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM).
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    pub since: Option<String>,
    /// Group by model, quality, size or day.
    #[arg(long, value_enum)]
    pub by: Option<CostByArg>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--by`: how `fourk cost` groups (the core's [`CostBy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostByArg {
    /// The image model.
    Model,
    /// The quality asked for.
    Quality,
    /// The size asked for.
    Size,
    /// The UTC day.
    Day,
}

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

/// Accept `YYYY-MM-DD`, optionally followed by `THH`, `THH:MM` or `THH:MM:SS` (UTC); the
/// ledger stores times as ISO text, so a valid prefix compares correctly.
fn parse_since(s: &str) -> Result<String, String> {
    let bad = || {
        format!("'{s}' is not a date; write YYYY-MM-DD (UTC), for example 2026-01-31, optionally with THH:MM")
    };
    let shape = |t: &str, pat: &str| {
        t.len() == pat.len()
            && t.bytes()
                .zip(pat.bytes())
                .all(|(c, p)| if p == b'9' { c.is_ascii_digit() } else { c == p })
    };
    let t = s.trim().replace(' ', "T");
    let ok = [
        "9999-99-99",
        "9999-99-99T99",
        "9999-99-99T99:99",
        "9999-99-99T99:99:99",
    ]
    .iter()
    .any(|p| shape(&t, p));
    if !ok {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|v| v.parse::<u32>().ok()).unwrap_or(99);
    if !(1..=12).contains(&num(5..7)) || !(1..=31).contains(&num(8..10)) {
        return Err(bad());
    }
    if t.len() > 10 && num(11..13) > 23 {
        return Err(bad());
    }
    Ok(t)
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
    use super::parse_since;

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
