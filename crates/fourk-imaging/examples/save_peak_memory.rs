//! Peak memory of the save path on a 4K PNG response body.
//!
//! ```text
//! cargo run --release -p fourk-imaging --example save_peak_memory
//! ```
//!
//! Linux only (reads `/proc/self/status`). VmHWM cannot be lowered inside a process once
//! building the test image has raised it, so the body is built here, written to a temporary
//! file, and measured in a fresh child process (this binary with `--measure FILE`) whose only
//! allocation before the baseline is the body itself. The figure reported is
//! `VmHWM after - VmRSS at baseline`: the most the save path added on top of holding the body.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use fourk_api::{OutputFormat, Size};
use fourk_imaging::{Expect, save_verified};

#[path = "../benches/support/mod.rs"]
mod support;

/// Target from the design brief: at most this many times the body size.
const TARGET_RATIO: f64 = 3.0;

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--measure") => match args.get(2) {
            Some(file) => measure(Path::new(file)),
            None => usage(),
        },
        None => orchestrate(&args[0]),
        Some(_) => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: save_peak_memory [--measure BODY_FILE]");
    ExitCode::from(2)
}

fn orchestrate(me: &str) -> ExitCode {
    let t = Instant::now();
    let png = support::photo_png();
    let body = support::response_body(&png);
    println!(
        "generated {}x{} PNG: {:.2} MiB, response body {:.2} MiB ({:.1} s)",
        support::WIDTH,
        support::HEIGHT,
        png.len() as f64 / MIB,
        body.len() as f64 / MIB,
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("body.json");
    std::fs::write(&file, body).expect("body written");
    match Command::new(me).arg("--measure").arg(&file).status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cannot run {me} --measure: {e}");
            ExitCode::FAILURE
        }
    }
}

fn measure(file: &Path) -> ExitCode {
    let body = std::fs::read_to_string(file).expect("body readable");
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("out.png");
    let expect = Expect::default()
        .with_size(Size::new(support::WIDTH, support::HEIGHT))
        .with_format(OutputFormat::Png);

    let baseline = status_kb("VmRSS");
    let t = Instant::now();
    let parsed: support::Body<'_> = serde_json::from_str(&body).expect("body parses");
    let saved = save_verified(&target, &parsed.data[0].b64_json, &expect).expect("saves");
    let elapsed = t.elapsed();
    let peak = status_kb("VmHWM");

    let (Some(baseline), Some(peak)) = (baseline, peak) else {
        eprintln!("/proc/self/status has no VmRSS/VmHWM (not Linux?)");
        return ExitCode::FAILURE;
    };
    let body_kb = body.len() as f64 / 1024.0;
    let increase = peak.saturating_sub(baseline) as f64;
    let ratio = increase / body_kb;
    println!(
        "save path: {:.1} ms, image {} ({}, sha256 {}…)",
        elapsed.as_secs_f64() * 1e3,
        if saved.rejected { "REJECTED" } else { "ok" },
        saved.path.display(),
        &saved.report.sha256[..12]
    );
    println!("body size:             {:>9.1} MiB", body_kb / 1024.0);
    println!(
        "RSS at baseline:       {:>9.1} MiB (includes the body)",
        baseline as f64 / 1024.0
    );
    println!("peak RSS (VmHWM):      {:>9.1} MiB", peak as f64 / 1024.0);
    println!("peak increase:         {:>9.1} MiB", increase / 1024.0);
    println!(
        "increase / body size:  {ratio:>9.2}x (target <= {TARGET_RATIO}x: {})",
        if ratio <= TARGET_RATIO { "met" } else { "MISSED" }
    );
    if saved.rejected {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A `kB` field of `/proc/self/status`.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}
