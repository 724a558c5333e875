//! `fourk probe`: what each file's headers say, without decoding a pixel.

use fourk_imaging::Probe;
use serde::Serialize;

use crate::cli::ProbeArgs;
use crate::exit::Exit;
use crate::output::Printer;

#[derive(Debug, Serialize)]
struct FileProbe {
    file: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    probe: Option<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn human(file: &str, p: &Probe) -> String {
    format!(
        "{file} {} {}x{} {} {}-bit{}",
        p.format.as_str().to_uppercase(),
        p.width,
        p.height,
        p.color,
        p.bit_depth,
        if p.has_alpha { " alpha" } else { "" }
    )
}

/// Exit 0 when every header reads, 1 when any does not (each failure is named; the rest are
/// still read).
pub(super) fn run(args: &ProbeArgs) -> Exit {
    let p = Printer;
    let mut all_ok = true;
    let mut out = Vec::with_capacity(args.files.len());
    for f in &args.files {
        let file = f.display().to_string();
        match fourk_imaging::probe_file(f) {
            Ok(probe) => {
                if !args.json {
                    p.line(&human(&file, &probe));
                }
                out.push(FileProbe {
                    file,
                    probe: Some(probe),
                    error: None,
                });
            }
            Err(e) => {
                all_ok = false;
                tracing::error!("{file}: {e}");
                out.push(FileProbe {
                    file,
                    probe: None,
                    error: Some(e.to_string()),
                });
            }
        }
    }
    if args.json {
        p.json(&out);
    }
    if all_ok { Exit::Success } else { Exit::CheckFailed }
}
