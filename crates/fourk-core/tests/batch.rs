//! The local batch runner at library level: its attempts go through the send path's record,
//! so a job in flight is on record with its estimate before a byte is sent (a kill at that
//! moment leaves a cost `fourk cost` counts), and the answer replaces the estimate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fourk_api::{Capabilities, OutputFormat, Quality, Size};
use fourk_client::{Client, Config, RetryPolicy};
use fourk_core::batch::{self, BatchSpec, Defaults, JobReport, Reporter};
use fourk_core::ledger::{JobState, Ledger};
use fourk_emulator::{EmulatorConfig, FaultSpec, RunningEmulator};
use tokio_util::sync::CancellationToken;

struct Silent;

impl Reporter for Silent {
    fn start(&self, _: usize, _: usize, _: usize, _: f64) {}
    fn job(&self, _: &JobReport, _: f64) {}
    fn finish(&self) {}
}

async fn emulator(faults: &str) -> RunningEmulator {
    fourk_emulator::spawn(
        ([127, 0, 0, 1], 0).into(),
        EmulatorConfig {
            faults: if faults.is_empty() {
                FaultSpec::none()
            } else {
                faults.parse().unwrap()
            },
            seed: Some(3),
            stall: Duration::from_secs(30),
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap()
}

fn client(base_url: &str) -> Client {
    let config = Config::from_lookup(|_| None)
        .with_base_url(base_url)
        .with_api_key("sk-test-batch")
        .with_timeout(Duration::from_secs(60));
    Client::new(config)
        .unwrap()
        .with_retry_policy(RetryPolicy::none())
}

fn spec(dir: &Path) -> BatchSpec {
    let jobs = dir.join("jobs.jsonl");
    std::fs::write(&jobs, "{\"prompt\": \"a red kite\", \"name\": \"kite\"}\n").unwrap();
    BatchSpec {
        jobs,
        out_dir: dir.join("out"),
        defaults: Defaults {
            model: "gpt-image-2".into(),
            size: Size::new(1024, 1024),
            quality: Some(Quality::Low),
            format: OutputFormat::Png,
        },
        concurrency: 1,
        max_cost: None,
        retry_ambiguous: false,
        policy: RetryPolicy::none(),
        via: "local",
        force: false,
    }
}

/// (measured, estimated) dollars as `fourk cost` sums them.
fn spend(ledger: &Path) -> (f64, f64) {
    let rows = Ledger::open(ledger).unwrap().cost(None, None).unwrap();
    rows.iter()
        .fold((0.0, 0.0), |(m, e), r| (m + r.measured_usd, e + r.estimated_usd))
}

/// (state, possibly billed, has a job) of every attempt.
fn attempts(ledger: &Path) -> Vec<(String, bool, bool)> {
    let conn = rusqlite::Connection::open(ledger).unwrap();
    let mut stmt = conn
        .prepare("SELECT state, possibly_billed, job_id IS NOT NULL FROM attempts ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn run(spec: &BatchSpec, base_url: &str, ledger: &Path) -> batch::BatchReport {
    run_until(spec, base_url, ledger, CancellationToken::new()).await
}

async fn run_until(
    spec: &BatchSpec,
    base_url: &str,
    ledger: &Path,
    cancel: CancellationToken,
) -> batch::BatchReport {
    let caps = Capabilities::builtin();
    std::fs::create_dir_all(&spec.out_dir).unwrap();
    let plan = batch::plan(spec, &caps).unwrap();
    batch::runner::run(plan, caps, client(base_url), ledger, Arc::new(Silent), cancel)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_answered_job_is_measured_and_the_estimate_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let emu = emulator("").await;
    let report = run(&spec(dir.path()), &emu.base_url(), &ledger).await;
    assert!(report.all_succeeded(), "{:?}", report.jobs);
    assert_eq!(attempts(&ledger), vec![("ok".to_owned(), false, true)]);
    let (measured, estimated) = spend(&ledger);
    assert!(measured > 0.0);
    assert!(estimated.abs() < f64::EPSILON, "estimate replaced: {estimated}");
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_job_killed_in_flight_is_on_record_at_its_estimate_once() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let spec = spec(dir.path());
    let emu = emulator("stall:1").await;
    let task = tokio::spawn({
        let (spec, base, ledger) = (spec.clone(), emu.base_url(), ledger.clone());
        async move { run(&spec, &base, &ledger).await }
    });
    // Wait for the attempt to be on record, then "kill" the batch mid-request.
    let mut seen = Vec::new();
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if ledger.exists() {
            seen = attempts(&ledger);
            if !seen.is_empty() {
                break;
            }
        }
    }
    // The "kill": the run and its workers are gone before the emulator goes away. (Aborting
    // the run's task only schedules its end; a worker woken before it ends would otherwise
    // see the emulator's shutdown as a refused connection and record a failure no killed
    // process could.)
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        seen,
        vec![("sent".to_owned(), true, true)],
        "written before the send"
    );
    let (measured, estimated) = spend(&ledger);
    assert!(measured.abs() < f64::EPSILON);
    assert!(
        estimated > 0.0,
        "the estimate is the cost on record while in flight"
    );
    emu.shutdown().await.unwrap();

    // The next run finds the open attempt: possibly billed, held, and counted once.
    let emu = emulator("").await;
    let report = run(&spec, &emu.base_url(), &ledger).await;
    assert_eq!(report.possibly_billed, 1);
    assert_eq!(report.jobs[0].state, JobState::PossiblyBilled);
    assert_eq!(attempts(&ledger), vec![("interrupted".to_owned(), true, true)]);
    let (_, after) = spend(&ledger);
    assert!(
        (after - estimated).abs() < 1e-9,
        "not counted twice: {estimated} -> {after}"
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_batch_holds_what_was_in_flight_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let mut spec = spec(dir.path());
    let lines: String = (0..4)
        .map(|i| format!("{{\"prompt\": \"a red kite {i}\", \"name\": \"kite-{i}\"}}\n"))
        .collect();
    std::fs::write(&spec.jobs, lines).unwrap();
    spec.concurrency = 1;
    let emu = emulator("stall:1").await;
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (spec, base, ledger, cancel) = (spec.clone(), emu.base_url(), ledger.clone(), cancel.clone());
        async move { run_until(&spec, &base, &ledger, cancel).await }
    });
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if ledger.exists() && !attempts(&ledger).is_empty() {
            break;
        }
    }
    cancel.cancel();
    let report = task.await.unwrap();
    assert_eq!(report.possibly_billed, 1, "{:?}", report.jobs);
    assert_eq!(report.skipped, 3, "{:?}", report.jobs);
    assert_eq!(attempts(&ledger), vec![("interrupted".to_owned(), true, true)]);
    let (_, estimated) = spend(&ledger);
    assert!(
        estimated > 0.0,
        "the request in flight is on record at its estimate"
    );
    let conn = rusqlite::Connection::open(&ledger).unwrap();
    let status: String = conn
        .query_row("SELECT status FROM runs ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(status, "interrupted");
    emu.shutdown().await.unwrap();

    // The next run finishes the skipped jobs and holds the one that may be billed.
    let emu = emulator("").await;
    let report = run(&spec, &emu.base_url(), &ledger).await;
    assert_eq!(report.succeeded, 3, "{:?}", report.jobs);
    assert_eq!(report.possibly_billed, 1);
    emu.shutdown().await.unwrap();
}

fn fk(ledger: &Path) -> fourk_core::Fourk {
    fourk_core::Fourk::new(Capabilities::builtin(), ledger.to_path_buf())
}

fn runs(ledger: &Path) -> i64 {
    let conn = rusqlite::Connection::open(ledger).unwrap();
    conn.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_dry_run_shows_every_request_and_what_is_done_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let mut spec = spec(dir.path());
    std::fs::write(
        &spec.jobs,
        "{\"prompt\": \"a red kite\", \"name\": \"kite\"}\n{\"prompt\": \"a blue kite\", \"name\": \"blue\", \"n\": 2}\n",
    )
    .unwrap();

    // Nothing run yet: every job to send, nothing made (no folder, no lock, no ledger).
    let d = batch::dry_run(&spec, &fk(&ledger)).unwrap();
    assert_eq!(
        (d.total, d.already_done, d.to_send, d.held),
        (2, 0, 2, 0),
        "{d:?}"
    );
    assert!(d.jobs.iter().all(|j| j.send && j.estimate_usd.unwrap() > 0.0));
    assert_eq!(d.jobs[0].body.as_ref().unwrap()["prompt"], "a red kite");
    assert_eq!(d.jobs[1].body.as_ref().unwrap()["n"], 2);
    assert_eq!(d.jobs[1].outputs.len(), 2);
    let total: f64 = d.jobs.iter().map(|j| j.estimate_usd.unwrap()).sum();
    assert!((d.estimate_usd.unwrap() - total).abs() < 1e-9);
    assert!(!spec.out_dir.exists(), "no folder, no lock");
    assert!(!ledger.exists());

    // A ceiling below the first job's estimate: nothing would start.
    spec.max_cost = Some(1e-6);
    let tight = batch::dry_run(&spec, &fk(&ledger)).unwrap();
    assert_eq!((tight.to_send, tight.over_budget), (0, 2), "{tight:?}");
    assert!(tight.jobs.iter().all(|j| j.state == JobState::Skipped));
    spec.max_cost = None;

    // After a run of the first job, the dry run finds it done and only the second to send.
    let first = spec.jobs.with_file_name("first.jsonl");
    std::fs::write(&first, "{\"prompt\": \"a red kite\", \"name\": \"kite\"}\n").unwrap();
    let emu = emulator("").await;
    let mut one = spec.clone();
    one.jobs.clone_from(&first);
    assert!(run(&one, &emu.base_url(), &ledger).await.all_succeeded());
    emu.shutdown().await.unwrap();
    let runs_before = runs(&ledger);
    let files_before: Vec<_> = std::fs::read_dir(&spec.out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let d = batch::dry_run(&one, &fk(&ledger)).unwrap();
    assert_eq!((d.total, d.already_done, d.to_send), (1, 1, 0), "{d:?}");
    assert_eq!(d.jobs[0].state, JobState::Succeeded);
    assert!(d.jobs[0].body.is_none() && !d.jobs[0].send);
    assert_eq!(d.estimate_usd, Some(0.0));
    assert!(d.spent_usd > 0.0, "what the first run spent");
    let mut files_after: Vec<_> = std::fs::read_dir(&spec.out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut files_before = files_before;
    files_before.sort();
    files_after.sort();
    assert_eq!(files_before, files_after);
    assert_eq!(runs(&ledger), runs_before, "no ledger row");

    // A new job's file in the way: the real run's words.
    std::fs::write(spec.out_dir.join("blue-1.png"), b"x").unwrap();
    let dry = batch::dry_run(&spec, &fk(&ledger)).unwrap_err();
    let caps = Capabilities::builtin();
    let real = batch::runner::run(
        batch::plan(&spec, &caps).unwrap(),
        caps,
        client("http://127.0.0.1:9"),
        &ledger,
        Arc::new(Silent),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(dry.downcast_ref::<fourk_core::UsageError>().is_some(), "{dry:#}");
    assert_eq!(format!("{dry:#}"), format!("{real:#}"));
    assert!(format!("{dry:#}").contains("blue-1.png"));

    // A broken line: the real run's words.
    std::fs::write(&spec.jobs, "{\"prompt\": \"a red kite\", \"size\": \"17x5\"}\n").unwrap();
    let dry = batch::dry_run(&spec, &fk(&ledger)).unwrap_err();
    let real = batch::plan(&spec, &Capabilities::builtin()).unwrap_err();
    assert!(dry.downcast_ref::<fourk_core::UsageError>().is_some(), "{dry:#}");
    assert_eq!(format!("{dry:#}"), format!("{real:#}"));
}
