//! Every request that may have been billed is in the ledger, whatever happens after it is
//! sent, and `fourk cost` sums it: a billed answer whose image is corrupt (measured), a
//! request in flight when fourk is stopped by Ctrl-C or SIGTERM (estimated, exit 130 / 143,
//! a stderr line naming it), and an empty ledger that sums to 0, never `-0.0`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Emulator, fourk, json_stdout};

const KEY: &str = "sk-test-money-0123456789";

fn cost(ledger: &Path) -> Value {
    let out = fourk()
        .args(["--ledger"])
        .arg(ledger)
        .args(["cost", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("-0.0"),
        "negative zero"
    );
    json_stdout(&out)
}

fn history(ledger: &Path) -> Value {
    if !ledger.exists() {
        return Value::Null;
    }
    let out = fourk()
        .arg("--ledger")
        .arg(ledger)
        .args(["history", "--json"])
        .output()
        .unwrap();
    json_stdout(&out)
}

#[test]
fn a_billed_answer_with_a_corrupt_image_is_measured_in_cost() {
    let emu = Emulator::start(&["--faults", "corrupt:1", "--seed", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let out = fourk()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", KEY)
        .arg("--ledger")
        .arg(&ledger)
        .args([
            "generate",
            "a paper boat",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--base-url",
        ])
        .arg(&emu.base)
        .args(["--out", "boat.png"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(!dir.path().join("boat.png").exists());
    let c = cost(&ledger);
    assert!(c["measured_usd"].as_f64().unwrap() > 0.0, "{c}");
    assert_eq!(c["rows"][0]["requests"], 1, "{c}");
}

#[test]
fn an_empty_ledger_costs_zero_not_negative_zero() {
    let dir = tempfile::tempdir().unwrap();
    let c = cost(&dir.path().join("ledger.db"));
    assert_eq!(c["total_usd"].as_f64(), Some(0.0));
}

/// Start a generate against a stalling emulator, stop it with `signal` once the request has
/// arrived, and return (exit code, stderr, ledger path).
fn stop_in_flight(signal: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let emu = Emulator::start(&["--faults", "stall:1", "--stall-ms", "20000"]);
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fourk"))
        .current_dir(dir.path())
        .env_remove("OPENAI_BASE_URL")
        .env_remove("FOURK_MODELS")
        .env_remove("RUST_LOG")
        .env("OPENAI_API_KEY", KEY)
        .arg("--ledger")
        .arg(&ledger)
        .args([
            "generate",
            "a paper boat",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--base-url",
        ])
        .arg(&emu.base)
        .args(["--out", "boat.png"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The attempt is on record (possibly billed) from the moment it is sent: wait for it.
    let start = Instant::now();
    loop {
        let h = history(&ledger);
        if h.as_array().is_some_and(|a| !a.is_empty()) {
            assert_eq!(h[0]["entry"], "possibly_billed", "{h}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the request was never recorded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "fourk did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains(KEY));
    assert!(
        !dir.path().join("boat.png").exists(),
        "no file under the final name"
    );
    (out.status.code(), err, dir)
}

#[test]
fn ctrl_c_and_sigterm_after_the_send_leave_a_possibly_billed_row_at_its_estimate() {
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let (exit, err, dir) = stop_in_flight(signal);
        assert_eq!(exit, Some(code), "{signal}: {err}");
        assert!(err.contains("possibly billed"), "{signal}: {err}");
        let ledger = dir.path().join("ledger.db");
        let c = cost(&ledger);
        assert!(c["estimated_usd"].as_f64().unwrap() > 0.0, "{signal}: {c}");
        assert_eq!(c["measured_usd"].as_f64(), Some(0.0), "{signal}: {c}");
        let h = history(&ledger);
        assert_eq!(h[0]["entry"], "possibly_billed", "{signal}: {h}");
    }
}
