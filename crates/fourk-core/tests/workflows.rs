//! The workflows at library level, no binary and no clap: build a spec, call the core, assert
//! on the report, the files and the ledger. Against the in-process emulator.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fourk_api::{Capabilities, Quality, Size};
use fourk_core::Fourk;
use fourk_core::deliver::{DeliverSpec, deliver};
use fourk_core::send::{Cancelled, Control, Observer, Progress};
use fourk_core::session::Endpoint;
use fourk_emulator::{EmulatorConfig, RunningEmulator};
use tokio_util::sync::CancellationToken;

/// An emulator on 127.0.0.1:0 that takes `scale` times the real API's time to answer, and
/// the endpoint that reaches it with a key given as a value.
async fn slow_emulator(scale: f64) -> (RunningEmulator, Endpoint) {
    let emu = fourk_emulator::spawn(
        ([127, 0, 0, 1], 0).into(),
        EmulatorConfig {
            latency_scale: scale,
            seed: Some(11),
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    let endpoint = Endpoint {
        base_url: Some(emu.base_url()),
        api_key: Some("sk-test-workflows".into()),
        ..Endpoint::default()
    };
    (emu, endpoint)
}

/// Collects every progress event.
#[derive(Debug, Default)]
struct Events(Mutex<Vec<Progress>>);

impl Observer for Events {
    fn progress(&self, event: &Progress) {
        self.0.lock().unwrap().push(event.clone());
    }
}

fn core(dir: &Path) -> Fourk {
    Fourk::new(Capabilities::builtin(), dir.join("ledger.db"))
}

fn spec(prompt: &str, size: Size, out: &Path) -> DeliverSpec {
    DeliverSpec {
        prompt: prompt.to_owned(),
        model: "gpt-image-2".to_owned(),
        size,
        quality: Quality::Low,
        max_cost: None,
        timeout: None,
        format: None,
        out: Some(out.to_path_buf()),
        force: false,
        endpoint: Endpoint::emulator(),
    }
}

fn count(ledger: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(ledger).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn deliver_ships_native_when_it_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let out = dir.path().join("lake.png");
    let size = Size::Exact {
        width: 2560,
        height: 1440,
    };
    let r = deliver(&spec("a mountain lake", size, &out), &fk, &Control::default())
        .await
        .unwrap();
    assert!(r.verified);
    assert_eq!(r.shipped_by, Some("native"));
    assert_eq!(r.shipped.as_deref(), Some(out.as_path()));
    assert_eq!(r.steps.len(), 1);
    assert!(r.usd > 0.0 && !r.estimate);
    assert!(out.exists());
    let ledger = fk.ledger_path();
    assert_eq!(
        count(ledger, "SELECT COUNT(*) FROM attempts WHERE state = 'ok'"),
        1
    );
    assert_eq!(count(ledger, "SELECT COUNT(*) FROM usage WHERE measured = 1"), 1);
    assert_eq!(r.id, Some(count(ledger, "SELECT MAX(id) FROM images")));
}

#[tokio::test]
async fn deliver_falls_back_to_a_master_and_an_upscale_on_a_wrong_size_answer() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let out = dir.path().join("lake.png");
    let size = Size::Exact {
        width: 3840,
        height: 2160,
    };
    let r = deliver(
        &spec("a mountain lake [fourk:wrong-size-experimental]", size, &out),
        &fk,
        &Control::default(),
    )
    .await
    .unwrap();
    assert!(r.verified, "{r:?}");
    assert_eq!(r.shipped_by, Some("master+upscale"));
    assert_eq!(r.master_size, "2560x1440");
    let steps: Vec<&str> = r.steps.iter().map(|s| s.step).collect();
    assert_eq!(steps, ["native", "master", "upscale"]);
    assert!(!r.steps[0].verified);
    assert!(out.exists());
    assert!(
        fourk_imaging::verify_file(&out, &fourk_imaging::Expect::default())
            .unwrap()
            .ok
    );
    let ledger = fk.ledger_path();
    // Both renders were paid for and are measured; the upscale is local.
    assert_eq!(count(ledger, "SELECT COUNT(*) FROM usage WHERE measured = 1"), 2);
    assert_eq!(
        count(ledger, "SELECT COUNT(*) FROM links WHERE kind = 'fallback'"),
        1
    );
    assert_eq!(
        count(
            ledger,
            "SELECT COUNT(*) FROM links WHERE kind = 'master->upscale'"
        ),
        1
    );
}

#[tokio::test]
async fn deliver_refuses_over_its_ceiling_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let out = dir.path().join("lake.png");
    let mut s = spec(
        "a mountain lake",
        Size::Exact {
            width: 3840,
            height: 2160,
        },
        &out,
    );
    s.quality = Quality::High;
    s.max_cost = Some(0.01);
    let err = deliver(&s, &fk, &Control::default()).await.unwrap_err();
    assert!(err.downcast_ref::<fourk_core::UsageError>().is_some(), "{err:#}");
    assert!(format!("{err:#}").contains("nothing was sent"));
    assert!(!out.exists());
    assert!(!fk.ledger_path().exists(), "no run, no request on record");
}

fn draft_spec(dir: &Path, n: u32) -> fourk_core::draft::DraftSpec {
    fourk_core::draft::DraftSpec {
        prompt: "a harbour at dusk".to_owned(),
        n,
        size: Size::Exact {
            width: 3840,
            height: 2160,
        },
        quality: Quality::Low,
        model: "gpt-image-2".to_owned(),
        format: None,
        out: Some(dir.join("drafts").join("harbour.png")),
        force: false,
        no_sheet: false,
        route: fourk_core::route::Route::Images,
        endpoint: Endpoint::emulator(),
    }
}

#[tokio::test]
async fn drafts_then_a_final_by_upscale_and_one_native_are_linked_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let d = fourk_core::draft::draft(&draft_spec(dir.path(), 2), &fk, &Control::default())
        .await
        .unwrap();
    assert!(d.all_verified);
    assert_eq!(d.drafts.len(), 2);
    assert_eq!(d.draft_size, "1536x864");
    assert!(d.sheet.as_ref().is_some_and(|s| s.exists()));
    let first = d.drafts[0].id.unwrap();

    let final_spec = |draft: String, upscale: bool, out: &str| fourk_core::finalize::FinalSpec {
        draft,
        upscale,
        quality: Quality::Low,
        size: None,
        prompt: None,
        out: Some(dir.path().join(out)),
        force: false,
        endpoint: Endpoint::emulator(),
    };
    // By ledger id, with the target the draft was made for: a 2560x1440 master, upscaled.
    let up = fourk_core::finalize::finalize(
        &final_spec(first.to_string(), true, "final.png"),
        &fk,
        &Control::default(),
    )
    .await
    .unwrap();
    assert!(up.verified, "{up:?}");
    assert_eq!(up.mode, "upscale");
    assert_eq!(up.target, "3840x2160");
    let steps: Vec<&str> = up.steps.iter().map(|s| s.step).collect();
    assert_eq!(steps, ["master", "upscale"]);
    let report =
        fourk_imaging::verify_file(&dir.path().join("final.png"), &fourk_imaging::Expect::default()).unwrap();
    assert_eq!(report.probe.map(|p| (p.width, p.height)), Some((3840, 2160)));

    // By path, native at 2K.
    let second = d.drafts[1].path.display().to_string();
    let mut native = final_spec(second, false, "native.png");
    native.size = Some(Size::Exact {
        width: 2560,
        height: 1440,
    });
    let n = fourk_core::finalize::finalize(&native, &fk, &Control::default())
        .await
        .unwrap();
    assert!(n.verified);
    assert_eq!(n.mode, "native");

    let ledger = fk.ledger_path();
    assert_eq!(
        count(ledger, "SELECT COUNT(*) FROM links WHERE kind = 'draft->final'"),
        2
    );
    assert_eq!(
        count(
            ledger,
            "SELECT COUNT(*) FROM links WHERE kind = 'master->upscale'"
        ),
        1
    );
    // One request for both drafts, the master, the native final.
    assert_eq!(count(ledger, "SELECT COUNT(*) FROM usage WHERE measured = 1"), 3);
}

#[tokio::test]
async fn deliver_falls_back_when_the_native_attempt_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let out = dir.path().join("lake.png");
    // 4K low takes about 1.6 s here (27 s on the real API), the 2560x1440 master about
    // 1.5 s; the native attempt is given 1 s.
    let (emu, endpoint) = slow_emulator(0.06).await;
    let mut s = spec("a mountain lake", Size::new(3840, 2160), &out);
    s.endpoint = endpoint;
    s.timeout = Some(Duration::from_secs(1));
    let events = Arc::new(Events::default());
    let control = Control::default().observed(events.clone());
    let r = deliver(&s, &fk, &control).await.unwrap();
    assert!(r.verified, "{r:?}");
    assert_eq!(r.shipped_by, Some("master+upscale"));
    let native = &r.steps[0];
    assert!(
        native.error.as_deref().is_some_and(|e| e.contains("timed out")),
        "{native:?}"
    );
    assert!(
        native.estimate && native.usd > 0.0,
        "possibly billed at its estimate"
    );
    let steps: Vec<&str> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Progress::Step { step } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, ["native", "master", "upscale"]);
    let ledger = fk.ledger_path();
    assert_eq!(
        count(
            ledger,
            "SELECT COUNT(*) FROM attempts WHERE state = 'interrupted' AND possibly_billed = 1"
        ),
        1
    );
    assert_eq!(count(ledger, "SELECT COUNT(*) FROM usage WHERE measured = 0"), 1);
    assert_eq!(count(ledger, "SELECT COUNT(*) FROM usage WHERE measured = 1"), 1);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_render_cancelled_mid_request_writes_no_file_and_stays_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let out = dir.path().join("lake.png");
    let (emu, endpoint) = slow_emulator(0.1).await;
    let mut s = spec("a mountain lake", Size::new(3840, 2160), &out);
    s.endpoint = endpoint;
    let cancel = CancellationToken::new();
    let events = Arc::new(Events::default());
    let control = Control::new(cancel.clone()).observed(events.clone());
    let work = tokio::spawn({
        let (fk, control) = (
            Fourk::new(fk.caps.clone(), fk.ledger_path().to_path_buf()),
            control,
        );
        async move { deliver(&s, &fk, &control).await }
    });
    // Cancel once the request is on its way.
    for _ in 0..400 {
        if events
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::Sending { .. }))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    let err = work.await.unwrap().unwrap_err();
    let c = err.downcast_ref::<Cancelled>().expect("cancelled");
    assert!(c.possibly_billed);
    assert!(!out.exists(), "no file under the final name");
    assert!(
        !fourk_core::workflow::with_suffix(&out, "master").exists(),
        "no fallback either"
    );
    let ledger = fk.ledger_path();
    assert_eq!(
        count(
            ledger,
            "SELECT COUNT(*) FROM attempts WHERE possibly_billed = 1 AND state = 'interrupted'"
        ),
        1
    );
    assert_eq!(count(ledger, "SELECT COUNT(*) FROM usage WHERE measured = 0"), 1);
    assert_eq!(
        count(ledger, "SELECT COUNT(*) FROM runs WHERE status = 'interrupted'"),
        1
    );
    emu.shutdown().await.unwrap();
}

/// Every operation's future can be spawned on a multi-threaded runtime, as the doors (MCP
/// server, studio) do; built and dropped here, never run.
#[test]
fn every_operation_can_be_spawned() {
    fn spawnable<T: Send + 'static>(_: impl FnOnce() -> T) {}
    spawnable(|| async {
        let dir = tempfile::tempdir().unwrap();
        let fk = core(dir.path());
        let c = Control::default();
        let out = dir.path().join("x.png");
        let _ = deliver(&spec("p", Size::new(1024, 1024), &out), &fk, &c).await;
        let _ = fourk_core::draft::draft(&draft_spec(dir.path(), 1), &fk, &c).await;
        let f = fourk_core::finalize::FinalSpec {
            draft: "1".into(),
            upscale: true,
            quality: Quality::Low,
            size: None,
            prompt: None,
            out: None,
            force: false,
            endpoint: Endpoint::emulator(),
        };
        let _ = fourk_core::finalize::finalize(&f, &fk, &c).await;
        let rec = fourk_core::send::Recorder::disabled().with_control(c.clone());
        let g = fourk_core::spec::GenerateSpec::new(
            "p",
            "gpt-image-2",
            Size::new(1024, 1024),
            Endpoint::emulator(),
        );
        let _ = fourk_core::generate::generate(&g, &fk.caps, &rec).await;
        let e = fourk_core::spec::EditSpec::new(vec![out.clone()], "p", "gpt-image-2", Endpoint::emulator());
        let _ = fourk_core::edit::edit(&e, &fk.caps, &rec).await;
    });
}

// Dry runs: the exact requests and the estimate, nothing sent, no file written, no ledger row.

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The runs in the ledger, read through the core's own reader.
fn runs(ledger: &Path) -> i64 {
    if !ledger.exists() {
        return 0;
    }
    count(ledger, "SELECT COUNT(*) FROM runs")
}

/// The error text of a result that must fail with a usage error.
fn usage_text<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    let e = r.unwrap_err();
    assert!(e.downcast_ref::<fourk_core::UsageError>().is_some(), "{e:#}");
    format!("{e:#}")
}

fn steps(d: &fourk_core::workflow::WorkflowDryRun) -> Vec<&'static str> {
    d.steps.iter().map(|s| s.step).collect()
}

#[tokio::test]
async fn draft_dry_runs_show_the_requests_and_the_sheet_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let spec = draft_spec(dir.path(), 3);
    let d = fourk_core::draft::dry_run(&spec, &fk).unwrap();
    assert_eq!(steps(&d), ["draft", "sheet"], "{d:?}");
    let draft = &d.steps[0];
    assert_eq!(draft.size, "1536x864");
    let body = draft.body.as_ref().unwrap();
    assert_eq!(body["n"], 3, "one request for all: {body}");
    assert_eq!(body["size"], "1536x864");
    assert!(draft.estimate_usd.unwrap() > 0.0);
    assert_eq!(draft.output, dir.path().join("drafts").join("harbour.png"));
    assert!(d.steps[1].body.is_none());
    assert_eq!(d.steps[1].estimate_usd, Some(0.0));
    assert!(d.total_usd.unwrap() > 0.0);
    assert_eq!(d.total_usd, d.worst_usd);

    // The Responses API route: one request per draft.
    let mut responses = spec.clone();
    responses.route = fourk_core::route::Route::Responses;
    let r = fourk_core::draft::dry_run(&responses, &fk).unwrap();
    assert_eq!(steps(&r), ["draft", "draft", "draft", "sheet"], "{r:?}");
    assert!(r.steps[..3].iter().all(|s| s.estimate_usd.unwrap() > 0.0));
    assert_eq!(r.steps[1].output, dir.path().join("drafts").join("harbour-2.png"));

    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
    let ledger = fourk_core::ledger::Ledger::open(fk.ledger_path()).unwrap();
    assert!(ledger.history(10).unwrap().is_empty());
    assert_eq!(ledger.last_run("draft").unwrap(), None);

    // A broken rule: the real run's words.
    let mut bad = spec.clone();
    bad.format = Some(fourk_api::OutputFormat::Jpeg);
    let dry = usage_text(fourk_core::draft::dry_run(&bad, &fk));
    let real = usage_text(fourk_core::draft::draft(&bad, &fk, &Control::default()).await);
    assert_eq!(dry, real);
}

#[tokio::test]
async fn final_dry_runs_look_the_draft_up_without_a_run_and_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let final_spec = |draft: String, upscale: bool| fourk_core::finalize::FinalSpec {
        draft,
        upscale,
        quality: Quality::Low,
        size: None,
        prompt: None,
        out: Some(dir.path().join("final.png")),
        force: false,
        endpoint: Endpoint::emulator(),
    };
    // No ledger yet: an unknown id says what the real run says, and no ledger is made.
    let dry = usage_text(fourk_core::finalize::dry_run(&final_spec("42".into(), true), &fk));
    assert!(!fk.ledger_path().exists());
    let real = usage_text(
        fourk_core::finalize::finalize(&final_spec("42".into(), true), &fk, &Control::default()).await,
    );
    assert_eq!(dry, real);

    let d = fourk_core::draft::draft(&draft_spec(dir.path(), 1), &fk, &Control::default())
        .await
        .unwrap();
    let id = d.drafts[0].id.unwrap();
    let before = files_under(dir.path());
    let runs_before = runs(fk.ledger_path());

    let up = fourk_core::finalize::dry_run(&final_spec(id.to_string(), true), &fk).unwrap();
    assert_eq!(steps(&up), ["master", "upscale"], "{up:?}");
    assert_eq!(up.steps[0].size, "2560x1440");
    assert_eq!(up.steps[0].output, dir.path().join("final.master.png"));
    let body = up.steps[0].body.as_ref().unwrap();
    assert_eq!(body["endpoint"], "images/edits", "an edit of the draft: {body}");
    assert!(up.steps[0].estimate_usd.unwrap() > 0.0);
    assert_eq!(up.steps[1].size, "3840x2160");
    assert_eq!(up.steps[1].estimate_usd, Some(0.0));
    assert_eq!(up.steps[1].output, dir.path().join("final.png"));
    assert_eq!(up.total_usd, up.steps[0].estimate_usd);

    let mut native = final_spec(d.drafts[0].path.display().to_string(), false);
    native.size = Some(Size::new(2560, 1440));
    let n = fourk_core::finalize::dry_run(&native, &fk).unwrap();
    assert_eq!(steps(&n), ["native"], "{n:?}");
    assert_eq!(n.steps[0].size, "2560x1440");
    assert!(n.total_usd.unwrap() > 0.0);

    assert_eq!(files_under(dir.path()), before, "no file written");
    assert_eq!(runs(fk.ledger_path()), runs_before, "no ledger row");
    // The only final run is the real one that refused the unknown id.
    let ledger = fourk_core::ledger::Ledger::open(fk.ledger_path()).unwrap();
    assert_eq!(ledger.last_run("final").unwrap(), Some(1));
    drop(ledger);

    // A broken rule: an output in the way, in the real run's words.
    std::fs::write(dir.path().join("final.png"), b"x").unwrap();
    let dry = usage_text(fourk_core::finalize::dry_run(
        &final_spec(id.to_string(), true),
        &fk,
    ));
    let real = usage_text(
        fourk_core::finalize::finalize(&final_spec(id.to_string(), true), &fk, &Control::default()).await,
    );
    assert_eq!(dry, real);
    assert!(dry.contains("--force"), "{dry}");
}

#[tokio::test]
async fn deliver_dry_runs_show_native_and_fallback_and_keep_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let fk = core(dir.path());
    let out = dir.path().join("lake.png");
    let s = spec("a mountain lake", Size::new(3840, 2160), &out);
    let d = fourk_core::deliver::dry_run(&s, &fk).unwrap();
    assert_eq!(steps(&d), ["native", "master", "upscale"], "{d:?}");
    assert_eq!(d.steps[0].size, "3840x2160");
    assert_eq!(d.steps[0].output, out);
    assert_eq!(d.steps[0].body.as_ref().unwrap()["size"], "3840x2160");
    assert_eq!(d.steps[1].size, "2560x1440");
    assert_eq!(d.steps[1].output, dir.path().join("lake.master.png"));
    assert_eq!(d.steps[2].body, None);
    let (native, master) = (d.steps[0].estimate_usd.unwrap(), d.steps[1].estimate_usd.unwrap());
    assert!(native > 0.0 && master > 0.0);
    assert_eq!(d.total_usd, Some(native));
    assert!((d.worst_usd.unwrap() - (native + master)).abs() < 1e-9, "{d:?}");
    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );

    // The same ceiling as the real run, in its words.
    let mut tight = s.clone();
    tight.quality = Quality::High;
    tight.max_cost = Some(0.01);
    let dry = usage_text(fourk_core::deliver::dry_run(&tight, &fk));
    let real = usage_text(deliver(&tight, &fk, &Control::default()).await);
    assert_eq!(dry, real);
    assert!(dry.contains("--max-cost"), "{dry}");
    // Within it, the dry run says so.
    let mut roomy = s.clone();
    roomy.max_cost = Some(100.0);
    let ok = fourk_core::deliver::dry_run(&roomy, &fk).unwrap();
    assert!(ok.notes.iter().any(|n| n.contains("--max-cost")), "{ok:?}");

    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
    let ledger = fourk_core::ledger::Ledger::open(fk.ledger_path()).unwrap();
    assert!(ledger.history(10).unwrap().is_empty());
    assert_eq!(ledger.last_run("deliver").unwrap(), None);
}
