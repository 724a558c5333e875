//! `fourk batch`, `fourk history` and `fourk cost` end to end: the binary against a
//! `fourk emulator` child process on 127.0.0.1 port 0, whose request log proves what was
//! requested how often.

#![allow(clippy::print_stderr)] // progress of the long soak-style tests

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{self, Emulator, sha256_hex};

const KEY: &str = "sk-test-batch-SECRET-7777";

fn fourk() -> Command {
    let mut c = common::fourk();
    c.env_remove("FOURK_LEDGER").env("OPENAI_API_KEY", KEY);
    c
}

fn prompt(i: usize) -> String {
    format!("batch test image number {i}: a lighthouse at dawn")
}

fn write_jobs(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("jobs.jsonl");
    let mut s = String::new();
    for i in 0..n {
        s.push_str(
            &serde_json::json!({"prompt": prompt(i), "name": format!("img-{i:03}"), "size": "1024x1024", "quality": "low"})
                .to_string(),
        );
        s.push('\n');
    }
    std::fs::write(&path, s).unwrap();
    path
}

fn batch(dir: &Path, emu: &Emulator, jobs: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out = fourk()
        .arg("batch")
        .arg(jobs)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--ledger")
        .arg(dir.join("ledger.db"))
        .args(["--base-url", &emu.base, "--json"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains(KEY) && !String::from_utf8_lossy(&out.stdout).contains(KEY));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON report ({e}); stderr:\n{stderr}"));
    (out.status.code(), v, stderr)
}

/// Every final-named image in the folder decodes fully at 1024x1024; rejected ones are
/// only under `.rejected.` names.
fn assert_no_corrupt_final_files(out: &Path) {
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".png") && !name.contains(".rejected.") {
            let img = image::open(&p).unwrap_or_else(|e| panic!("{name} is corrupt: {e}"));
            assert_eq!((img.width(), img.height()), (1024, 1024), "{name}");
            assert!(crate_sidecar(&p).exists(), "{name} has no sidecar");
        }
    }
}

fn crate_sidecar(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

fn counts(v: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().unwrap();
    (
        n("total"),
        n("succeeded"),
        n("failed"),
        n("possibly_billed"),
        n("skipped"),
    )
}

/// Successful (200, no fault) image requests per prompt hash.
fn ok_requests(reqs: &[Value]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in reqs {
        if r["status"] == 200 && r["fault"].is_null() && r["route"] == "/v1/images/generations" {
            *m.entry(r["prompt_sha256"].as_str().unwrap_or("").to_owned())
                .or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn every_fault_kind_ends_verified_or_reported_and_resume_never_repeats_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(
        dir.path(),
        &[
            "--faults",
            "429:0.05,quota:0.03,500:0.05,503:0.05,reset:0.04,truncate:0.04,stall:0.03,wrong-size:0.04,corrupt:0.04",
            "--seed",
            "11",
            "--stall-ms",
            "2500",
        ],
    );
    let n = 40;
    let jobs = write_jobs(dir.path(), n);
    let (code, first, stderr) = batch(dir.path(), &emu, &jobs, &["--concurrency", "4", "--timeout", "1"]);
    let (total, ok, failed, held, skipped) = counts(&first);
    assert_eq!(total, n as u64);
    assert_eq!(ok + failed + held + skipped, total, "{first:#}");
    assert!(
        ok > 0 && ok < total,
        "faults at these rates should fail some jobs: {stderr}"
    );
    assert_eq!(code, Some(1), "not every job succeeded, so the exit says so");
    assert_no_corrupt_final_files(&dir.path().join("out"));
    for j in first["jobs"].as_array().unwrap() {
        if j["state"] == "succeeded" {
            let p = PathBuf::from(j["outputs"][0].as_str().unwrap());
            assert!(p.starts_with(dir.path().join("out")) || p.is_relative());
            assert!(dir.path().join("out").join(p.file_name().unwrap()).exists());
        } else {
            assert!(j["error"].is_string(), "a failure names its reason: {j}");
        }
    }
    let succeeded_first: HashSet<String> = first["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["state"] == "succeeded")
        .map(|j| j["name"].as_str().unwrap().to_owned())
        .collect();
    let before = emu.requests().len();

    // Resume (ambiguous ones too) until every job is done; faults keep firing.
    let mut last = first;
    for _ in 0..6 {
        if last["succeeded"] == last["total"] {
            break;
        }
        let (_, v, _) = batch(
            dir.path(),
            &emu,
            &jobs,
            &["--concurrency", "4", "--timeout", "1", "--retry-ambiguous"],
        );
        for j in v["jobs"].as_array().unwrap() {
            if succeeded_first.contains(j["name"].as_str().unwrap()) {
                assert_eq!(j["requested"], false, "a succeeded job was requested again: {j}");
                assert_eq!(j["state"], "succeeded");
            }
        }
        last = v;
    }
    // The emulator's log: no prompt of a job that had succeeded reached it again.
    let later = &emu.requests()[before..];
    let first_ok: HashSet<String> = succeeded_first
        .iter()
        .map(|name| {
            let i: usize = name.trim_start_matches("img-").parse().unwrap();
            sha256_hex(prompt(i).as_bytes())
        })
        .collect();
    for r in later {
        assert!(
            !first_ok.contains(r["prompt_sha256"].as_str().unwrap_or("")),
            "requested again after success: {r}"
        );
    }
    // No job has two successful answers unless a kill or ambiguous failure forced a resend.
    assert_no_corrupt_final_files(&dir.path().join("out"));
    let names: HashSet<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png") && !n.contains(".rejected."))
        .collect();
    assert_eq!(
        names.len() as u64,
        last["succeeded"].as_u64().unwrap(),
        "one file per succeeded job, no duplicates"
    );
}

#[test]
fn kill_nine_three_times_then_resume_finishes_with_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    // 0.02 x the modelled 20 s: each request takes about 400 ms, so kills land mid-request.
    let emu = Emulator::start_in(dir.path(), &["--latency", "0.02"]);
    let n = 24;
    let jobs = write_jobs(dir.path(), n);
    let ledger = dir.path().join("ledger.db");
    let mut rng = 0x9e37_79b9_u64;
    for round in 0..3 {
        let mut child = Std::new(env!("CARGO_BIN_EXE_fourk"))
            .arg("batch")
            .arg(&jobs)
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg("--ledger")
            .arg(&ledger)
            .args(["--base-url", &emu.base, "--concurrency", "3"])
            .env("OPENAI_API_KEY", KEY)
            .env("FOURK_NO_PROGRESS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = 500 + rng % 1200;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        eprintln!("round {round}: killed after {wait} ms");
    }
    // Resume: held (possibly billed) jobs are sent again only with --retry-ambiguous.
    let (_, held, _) = batch(dir.path(), &emu, &jobs, &["--concurrency", "3"]);
    let interrupted = held["possibly_billed"].as_u64().unwrap();
    let (code, done, stderr) = batch(
        dir.path(),
        &emu,
        &jobs,
        &["--concurrency", "3", "--retry-ambiguous"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(done["succeeded"], n);
    assert_no_corrupt_final_files(&dir.path().join("out"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temp files the kills left: {leftovers:?}");
    // A fourth run finds nothing to do and sends nothing.
    let before = emu.requests().len();
    let (code, again, _) = batch(dir.path(), &emu, &jobs, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(again["requests"], 0);
    assert_eq!(emu.requests().len(), before, "nothing was requested");
    assert_eq!(again["succeeded"], n);
    // The request log: each prompt answered once, except jobs cut off mid-request
    // (at most one extra answer each, for the kill that cut it off).
    let oks = ok_requests(&emu.requests());
    let mut extra = 0;
    for i in 0..n {
        let c = oks.get(&sha256_hex(prompt(i).as_bytes())).copied().unwrap_or(0);
        assert!(c >= 1, "job {i} never answered");
        extra += c - 1;
    }
    let conn = rusqlite::Connection::open(&ledger).unwrap();
    // Every repeated answer is explained by an earlier attempt on record that ended in no
    // saved image: cut off mid-request (`interrupted`), or answered (its usage measured, so
    // on record as billed) with the kill landing before its image was saved.
    let cut: usize = conn
        .query_row(
            "SELECT COUNT(*) FROM attempts a WHERE a.job_id IS NOT NULL AND (a.state = 'interrupted'
                 OR (a.state = 'ok' AND NOT EXISTS (SELECT 1 FROM images i WHERE i.attempt_id = a.id)))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        extra <= cut,
        "{extra} repeated answers but only {cut} attempts that ended without a saved image"
    );
    assert!(interrupted as usize <= cut);
    // Ledger consistency: every succeeded job has exactly one image row per output.
    let dup: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM (SELECT job_id FROM images WHERE verified = 1 GROUP BY job_id HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dup, 0);
}

#[test]
fn the_budget_ceiling_is_never_crossed() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &[]);
    let jobs = write_jobs(dir.path(), 20);
    // 1024x1024 low is 196 output tokens; at $30/M that is about $0.0059 a job.
    let max = 0.035;
    let (code, v, stderr) = batch(
        dir.path(),
        &emu,
        &jobs,
        &["--max-cost", "0.035", "--concurrency", "4"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let spent = v["spent_usd"].as_f64().unwrap();
    assert!(spent <= max, "spent {spent} > {max}");
    assert!(v["skipped"].as_u64().unwrap() > 0);
    assert!(v["succeeded"].as_u64().unwrap() >= 4);
    assert!(stderr.contains("--max-cost"), "{stderr}");
    // A rerun with the same ceiling starts nothing new; the ledger agrees.
    let (_, v2, _) = batch(dir.path(), &emu, &jobs, &["--max-cost", "0.035"]);
    assert!(v2["spent_usd"].as_f64().unwrap() <= max);
    let cost = fourk()
        .args(["cost", "--json", "--ledger"])
        .arg(dir.path().join("ledger.db"))
        .output()
        .unwrap();
    let c: Value = serde_json::from_slice(&cost.stdout).unwrap();
    assert!(c["total_usd"].as_f64().unwrap() <= max, "{c}");
    // Raising the ceiling finishes the batch.
    let (code, v3, _) = batch(dir.path(), &emu, &jobs, &["--max-cost", "1"]);
    assert_eq!(code, Some(0));
    assert_eq!(v3["succeeded"], 20);
}

#[test]
fn hostile_names_stay_in_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &[]);
    let jobs = dir.path().join("jobs.jsonl");
    let abs = dir.path().join("abs-escape").display().to_string();
    let lines = [
        serde_json::json!({"prompt": "one", "name": "../escape-up", "size": "1024x1024", "quality": "low"}),
        serde_json::json!({"prompt": "two", "name": abs, "size": "1024x1024", "quality": "low"}),
        serde_json::json!({"prompt": "three", "name": "NUL", "size": "1024x1024", "quality": "low"}),
        serde_json::json!({"prompt": "four", "name": "a\u{0}b", "size": "1024x1024", "quality": "low"}),
    ];
    std::fs::write(&jobs, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let (code, v, stderr) = batch(dir.path(), &emu, &jobs, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let out = std::fs::canonicalize(dir.path().join("out")).unwrap();
    for j in v["jobs"].as_array().unwrap() {
        let p = std::fs::canonicalize(j["outputs"][0].as_str().unwrap()).unwrap();
        assert_eq!(p.parent().unwrap(), out, "{p:?} left the folder");
    }
    assert!(!dir.path().join("escape-up.png").exists());
    assert!(!dir.path().join("abs-escape.png").exists());
    let names: BTreeMap<String, ()> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| (e.unwrap().file_name().to_string_lossy().into_owned(), ()))
        .collect();
    assert!(names.contains_key("_NUL.png"), "{names:?}");
    assert!(names.contains_key("a_b.png"), "{names:?}");
}

#[test]
fn a_bad_jobs_file_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs.csv");
    std::fs::write(
        &jobs,
        "prompt,size,sise\na cat,1024x1024,\nbad,1000x1000,\nx,1024x1024,4k\n",
    )
    .unwrap();
    let out = fourk()
        .arg("batch")
        .arg(&jobs)
        .arg("--ledger")
        .arg(dir.path().join("l.db"))
        .args(["--base-url", "http://127.0.0.1:9/v1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key(s) 'sise'"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn every_problem_of_every_line_is_named_in_one_run_in_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &[]);
    let jobs = dir.path().join("jobs.jsonl");
    std::fs::write(
        &jobs,
        concat!(
            "{\"prompt\": \"fine\", \"name\": \"a\"}\n",
            "{\"prompt\": \"bad size\", \"size\": \"5000x1000\"}\n",
            "{\"prompt\": \"\", \"quality\": \"ultra\", \"colour\": \"red\"}\n",
            "{not json\n",
            "{\"prompt\": \"same name\", \"name\": \"a\"}\n",
        ),
    )
    .unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", "sk-test-jobs")
        .arg("batch")
        .arg(&jobs)
        .args(["--ledger", "l.db", "--base-url", &emu.base])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    let at = |needle: &str| {
        err.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing in {err}"))
    };
    // Model rules (line 2), two field problems and an unknown key (line 3), syntax (line 4)
    // and a name collision (line 5): all in one message, in line order.
    let order = [
        at("line 2: max_edge"),
        at("line 3: unknown key(s) 'colour'"),
        at("line 3: 'prompt'"),
        at("line 3: invalid quality"),
        at("line 4: not a JSON object"),
        at("line 5: the output name 'a'"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{err}");
    assert!(err.contains("problem(s) on 4 line(s)"), "{err}");
    assert!(emu.posts().is_empty(), "sent a request");
}

#[test]
fn history_and_cost_report_what_a_batch_made() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &[]);
    let jobs = write_jobs(dir.path(), 3);
    let (code, _, _) = batch(dir.path(), &emu, &jobs, &[]);
    assert_eq!(code, Some(0));
    let ledger = dir.path().join("ledger.db");
    let h = fourk()
        .args(["history", "--json", "--ledger"])
        .arg(&ledger)
        .output()
        .unwrap();
    assert_eq!(h.status.code(), Some(0));
    let rows: Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert_eq!(rows[0]["command"], "batch");
    assert_eq!(rows[0]["verified"], true);
    assert_eq!(rows[0]["dimensions"], "1024x1024");
    assert!(rows[0]["usd"].as_f64().unwrap() > 0.0);
    let c = fourk()
        .args(["cost", "--by", "size", "--json", "--ledger"])
        .arg(&ledger)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&c.stdout).unwrap();
    assert_eq!(v["rows"][0]["key"], "1024x1024");
    assert_eq!(v["rows"][0]["images"], 3);
    assert_eq!(v["estimated_usd"], 0.0, "measured usage is not an estimate");
    let text = fourk()
        .args(["cost", "--since", "2000-01-01", "--ledger"])
        .arg(&ledger)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("total\t3\t3"));
    let bad = fourk().args(["cost", "--since", "last week"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // FOURK_LEDGER moves it too.
    let env = fourk()
        .env("FOURK_LEDGER", &ledger)
        .args(["history", "--json"])
        .output()
        .unwrap();
    let rows2: Value = serde_json::from_slice(&env.stdout).unwrap();
    assert_eq!(rows2.as_array().unwrap().len(), 3);
}

/// Against `--rate-limit R/min`, the achieved rate is at least 0.9 R with few 429s. Takes
/// about two minutes: `cargo test --workspace --test cli -- --ignored rate_limit --nocapture`.
#[test]
#[ignore = "takes about two minutes"]
fn rate_limit_is_approached_not_hammered() {
    let dir = tempfile::tempdir().unwrap();
    let r: u64 = 120;
    let emu = Emulator::start_in(dir.path(), &["--rate-limit", &format!("{r}/min")]);
    let n = (r * 2 + r / 2) as usize;
    let jobs = write_jobs(dir.path(), n);
    let t = Instant::now();
    let (code, v, _) = batch(dir.path(), &emu, &jobs, &["--concurrency", "8"]);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(code, Some(0));
    let reqs = emu.requests();
    let ok = reqs.iter().filter(|q| q["status"] == 200).count();
    let limited = reqs.iter().filter(|q| q["status"] == 429).count();
    let rate = ok as f64 / secs * 60.0;
    eprintln!(
        "rate test: R = {r}/min, {ok} images in {secs:.1} s = {rate:.1}/min ({:.0}% of R), {limited} x 429, report rate_limited = {}",
        rate / r as f64 * 100.0,
        v["rate_limited"]
    );
    assert!(rate >= 0.9 * r as f64, "{rate:.1}/min < 0.9 x {r}");
    assert!(limited <= 5, "{limited} 429s");
}

fn uploads(reqs: &[Value]) -> usize {
    reqs.iter()
        .filter(|r| r["method"] == "POST" && r["route"] == "/v1/files")
        .count()
}

#[test]
fn via_batch_api_submits_once_collects_verifies_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &[]);
    let jobs = write_jobs(dir.path(), 3);
    let (code, v, stderr) = batch(dir.path(), &emu, &jobs, &["--via", "batch-api", "--poll", "0.1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let batch_id = v["batch_id"].as_str().unwrap().to_owned();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["jobs"].as_array().unwrap().len(), 3);
    assert!(v["emulator"].as_bool().unwrap());
    assert!(stderr.contains("rendered procedurally"), "{stderr}");
    let out = dir.path().join("out");
    for (i, j) in v["jobs"].as_array().unwrap().iter().enumerate() {
        assert_eq!(j["ok"], true, "{j}");
        let path = PathBuf::from(j["paths"][0].as_str().unwrap());
        assert_eq!(
            path,
            std::path::absolute(out.join(format!("img-{i:03}.png"))).unwrap()
        );
        let car: Value = serde_json::from_slice(&std::fs::read(crate_sidecar(&path)).unwrap()).unwrap();
        assert_eq!(car["checks"]["verified"], true, "{car}");
        assert_eq!(car["route"], "batch", "{car}");
    }
    assert_no_corrupt_final_files(&out);
    let reqs = emu.requests();
    assert_eq!(uploads(&reqs), 1);
    let ran = reqs.iter().filter(|r| r["method"] == "BATCH").count();
    assert_eq!(ran, 3, "one batch request per job");

    // The same command again follows the batch already paid for: no second upload, the
    // same files, and the ledger does not count the images twice.
    let (code, again, stderr) = batch(dir.path(), &emu, &jobs, &["--via", "batch-api", "--poll", "0.1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(again["batch_id"], batch_id.as_str());
    assert!(stderr.contains("submitted before"), "{stderr}");
    let reqs = emu.requests();
    assert_eq!(uploads(&reqs), 1, "resubmitted the same jobs");
    assert_eq!(reqs.iter().filter(|r| r["method"] == "BATCH").count(), 3);
    let c = fourk()
        .args(["cost", "--json", "--ledger"])
        .arg(dir.path().join("ledger.db"))
        .output()
        .unwrap();
    let cost: Value = serde_json::from_slice(&c.stdout).unwrap();
    let images: u64 = cost["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["images"].as_u64().unwrap())
        .sum();
    assert_eq!(images, 3, "{cost}");
    let usd = cost["total_usd"].as_f64().unwrap();
    let reported = v["cost_usd"].as_f64().unwrap();
    assert!((usd - reported).abs() < 1e-9, "ledger {usd} vs report {reported}");
}

#[test]
fn batch_api_no_wait_then_status_and_collect_in_later_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &[]);
    let jobs = write_jobs(dir.path(), 2);
    let (code, v, stderr) = batch(dir.path(), &emu, &jobs, &["--via", "batch-api", "--no-wait"]);
    assert_eq!(code, Some(0), "{stderr}");
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("batch_"), "{v}");
    assert!(stderr.contains(&format!("fourk batch collect {id}")), "{stderr}");
    // Poll until final, the way a user would.
    let mut status = Value::Null;
    for _ in 0..200 {
        let s = fourk()
            .args(["batch", "status", &id, "--json", "--base-url", &emu.base])
            .output()
            .unwrap();
        assert_eq!(s.status.code(), Some(0), "{}", String::from_utf8_lossy(&s.stderr));
        status = serde_json::from_slice(&s.stdout).unwrap();
        if status["status"] == "completed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["request_counts"]["completed"], 2);
    let plain = fourk()
        .args(["batch", "status", &id, "--base-url", &emu.base])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&plain.stdout).into_owned();
    assert_eq!(line.trim(), format!("{id} completed 2/2 done 0 failed"));
    // A later session, in another folder: no manifest there, so the requests are read back
    // from the batch's input file and the images are named after the job names.
    let elsewhere = dir.path().join("elsewhere");
    let c = fourk()
        .args(["batch", "collect", &id, "--base-url", &emu.base, "--ledger"])
        .arg(dir.path().join("ledger.db"))
        .arg("--out")
        .arg(&elsewhere)
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(0), "{}", String::from_utf8_lossy(&c.stderr));
    let paths: Vec<String> = String::from_utf8_lossy(&c.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    for p in &paths {
        let img = image::open(p).unwrap();
        assert_eq!((img.width(), img.height()), (1024, 1024));
    }
    // An unknown id is the API's 404, named.
    let bad = fourk()
        .args(["batch", "status", "batch_nope", "--base-url", &emu.base])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("batch_nope"));
}

#[test]
fn batch_api_refuses_a_budget_break_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &[]);
    let jobs = write_jobs(dir.path(), 4);
    let out = fourk()
        .arg("batch")
        .arg(&jobs)
        .args([
            "--via",
            "batch-api",
            "--max-cost",
            "0.001",
            "--base-url",
            &emu.base,
            "--ledger",
        ])
        .arg(dir.path().join("l.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-cost") && err.contains("nothing was sent"),
        "{err}"
    );
    assert!(emu.requests().is_empty(), "something was sent");
}

#[test]
fn a_second_batch_into_the_same_folder_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    // Each request takes about 2 s, so the first run is still going when the second starts.
    let emu = Emulator::start_in(dir.path(), &["--latency", "0.1"]);
    let jobs = write_jobs(dir.path(), 4);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A temp file a killed run left behind.
    std::fs::write(out.join(".fourk-abc123.part"), b"half an image").unwrap();
    let mut first = Std::new(env!("CARGO_BIN_EXE_fourk"))
        .arg("batch")
        .arg(&jobs)
        .arg("--out")
        .arg(&out)
        .arg("--ledger")
        .arg(dir.path().join("ledger.db"))
        .args(["--base-url", &emu.base, "--concurrency", "1"])
        .env("OPENAI_API_KEY", KEY)
        .env("FOURK_NO_PROGRESS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while emu.requests().is_empty() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !out.join(".fourk-abc123.part").exists(),
        "the stale temp file was kept"
    );
    let before = emu.requests().len();
    let second = fourk()
        .arg("batch")
        .arg(&jobs)
        .arg("--out")
        .arg(&out)
        .arg("--ledger")
        .arg(dir.path().join("ledger.db"))
        .args(["--base-url", &emu.base])
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another fourk batch is running"), "{err}");
    assert!(emu.requests().len() <= before + 1, "the second run sent requests");
}

#[test]
fn batch_api_runs_edit_jobs_and_refuses_a_mix_with_generations() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &[]);
    image::RgbImage::from_pixel(512, 512, image::Rgb([40, 90, 200]))
        .save(dir.path().join("ref.png"))
        .unwrap();
    let edits = dir.path().join("edits.jsonl");
    std::fs::write(
        &edits,
        "{\"prompt\":\"make it a watercolour\",\"name\":\"wc\",\"size\":\"1024x1024\",\"quality\":\"low\",\"images\":[\"ref.png\"]}\n\
         {\"prompt\":\"make it night\",\"name\":\"night\",\"size\":\"1536x1024\",\"quality\":\"low\",\"images\":[\"ref.png\"]}\n",
    )
    .unwrap();
    let (code, v, stderr) = batch(dir.path(), &emu, &edits, &["--via", "batch-api", "--poll", "0.1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    for (j, want) in jobs.iter().zip([(1024, 1024), (1536, 1024)]) {
        assert_eq!(j["ok"], true, "{j}");
        let p = PathBuf::from(j["paths"][0].as_str().unwrap());
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), want);
        let car = std::fs::read_to_string(crate_sidecar(&p)).unwrap();
        assert!(!car.contains("iVBORw0KGgo"), "base64 image bytes in the sidecar");
    }
    assert!(
        emu.requests()
            .iter()
            .any(|r| r["method"] == "BATCH" && r["route"] == "/v1/images/edits"),
        "no edit ran in a batch"
    );
    // A file that mixes generations and edits needs two batches: refused, nothing sent.
    let mixed = dir.path().join("mixed.jsonl");
    std::fs::write(
        &mixed,
        "{\"prompt\":\"a fox\",\"name\":\"fox\",\"size\":\"1024x1024\"}\n\
         {\"prompt\":\"night\",\"name\":\"n2\",\"size\":\"1024x1024\",\"images\":[\"ref.png\"]}\n",
    )
    .unwrap();
    let before = emu.requests().len();
    let out = fourk()
        .arg("batch")
        .arg(&mixed)
        .args(["--via", "batch-api", "--base-url", &emu.base, "--ledger"])
        .arg(dir.path().join("l2.db"))
        .arg("--out")
        .arg(dir.path().join("mixed-out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mix generations") && err.contains("nothing was sent"),
        "{err}"
    );
    assert_eq!(emu.requests().len(), before);
}
