//! `fourk history`: what was made, newest first, from the run ledger.

use crate::cli::ledger::HistoryArgs;
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::ledger::Ledger;

fn money(usd: Option<f64>, estimate: bool) -> String {
    usd.map_or_else(
        || "-".to_owned(),
        |u| format!("${u:.4}{}", if estimate { " (est.)" } else { "" }),
    )
}

pub(super) fn run(args: &HistoryArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let ledger = Ledger::open(fk.ledger_path())?;
    let rows = ledger.history(args.limit)?;
    let p = Printer;
    if args.json {
        p.json(&rows);
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        tracing::info!(
            "nothing recorded yet in {}; generate, edit and batch runs are recorded there",
            ledger.path().display()
        );
        return Ok(Exit::Success);
    }
    p.line("ID\tTIME\tCOMMAND\tSIZE\tQUALITY\tVERIFIED\tCOST\tPATH");
    for r in rows {
        let id = r.image_id.map_or_else(|| "-".to_owned(), |i| i.to_string());
        let verified = match (r.entry, r.verified) {
            ("possibly_billed", _) => "possibly billed".to_owned(),
            (_, Some(true)) => "yes".to_owned(),
            (_, Some(false)) => "NO".to_owned(),
            _ => "-".to_owned(),
        };
        let path = r.path.map_or_else(
            || {
                r.request_id
                    .map_or_else(|| "-".to_owned(), |q| format!("(request {q})"))
            },
            |p| p.display().to_string(),
        );
        p.line(&format!(
            "{id}\t{}\t{}\t{}\t{}\t{verified}\t{}\t{path}",
            r.time.get(..19).unwrap_or(&r.time).replace('T', " "),
            r.command,
            r.dimensions.as_deref().unwrap_or("-"),
            r.quality.as_deref().unwrap_or("-"),
            money(r.usd, r.estimate),
        ));
    }
    Ok(Exit::Success)
}
