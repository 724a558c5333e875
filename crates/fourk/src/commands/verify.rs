//! `fourk verify`: what `magick identify` says, plus a verdict.

use fourk_imaging::{Expect, VerifyReport};
use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::exit::Exit;
use crate::output::Printer;

#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    #[serde(flatten)]
    report: Option<VerifyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn human(file: &str, r: &VerifyReport) -> String {
    let mut s = String::from(file);
    match &r.probe {
        Some(p) => s.push_str(&format!(
            " {} {}x{} {} {}-bit {}B sha256:{}",
            p.format.as_str().to_uppercase(),
            p.width,
            p.height,
            p.color,
            p.bit_depth,
            r.bytes,
            &r.sha256[..16.min(r.sha256.len())]
        )),
        None => s.push_str(&format!(" {}B", r.bytes)),
    }
    if r.ok {
        s.push_str(" OK");
    } else {
        s.push_str(" FAIL");
        if let Some(e) = &r.decode_error {
            s.push_str(&format!(" (corrupt: {e})"));
        }
        for c in r.checks.iter().filter(|c| !c.pass) {
            s.push_str(&format!(
                " ({}: expected {}, got {})",
                c.name, c.expected, c.actual
            ));
        }
    }
    s
}

pub(super) fn run(args: &VerifyArgs) -> anyhow::Result<Exit> {
    let expect = Expect {
        width: args.expect.and_then(fourk_api::Size::dims).map(|d| d.0),
        height: args.expect.and_then(fourk_api::Size::dims).map(|d| d.1),
        format: args.format,
        alpha: args.alpha.then_some(true),
        thumbnail: None,
    };
    let p = Printer;
    let mut all_ok = true;
    let mut reports = Vec::new();
    // One unreadable file is reported and counted; the rest are still checked.
    for f in &args.files {
        let name = f.display().to_string();
        match fourk_imaging::verify_file(f, &expect) {
            Ok(r) => {
                all_ok &= r.ok;
                if !args.json {
                    p.line(&human(&name, &r));
                }
                reports.push(FileReport {
                    file: name,
                    report: Some(r),
                    error: None,
                });
            }
            Err(e) => {
                all_ok = false;
                tracing::error!("{e}");
                reports.push(FileReport {
                    file: name,
                    report: None,
                    error: Some(e.to_string()),
                });
            }
        }
    }
    if args.json {
        p.json(&reports);
    }
    Ok(if all_ok { Exit::Success } else { Exit::CheckFailed })
}
