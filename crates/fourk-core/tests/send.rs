//! The one send path at library level, no binary: every request that may have been billed is
//! in the ledger with its status and a cost (measured or estimated), whatever happens after
//! it is sent; a request that provably never left is on record but never called billed.
//! Each case runs against an in-process emulator on 127.0.0.1:0 with injected faults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fourk_api::{Capabilities, ImageRequest, OutputFormat, Quality, Size};
use fourk_client::{Client, Config, RetryPolicy};
use fourk_core::ledger::Ledger;
use fourk_core::save::Job;
use fourk_core::send::{self, Outgoing, Recorder};
use fourk_core::sidecar::SentRequest;
use fourk_emulator::{EmulatorConfig, FaultSpec, RunningEmulator};
use serde_json::json;

struct Setup {
    dir: tempfile::TempDir,
    ledger: PathBuf,
    caps: Capabilities,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    Setup {
        dir,
        ledger,
        caps: Capabilities::builtin(),
    }
}

async fn emulator(faults: &str, stall: Duration) -> RunningEmulator {
    let faults: FaultSpec = if faults.is_empty() {
        FaultSpec::none()
    } else {
        faults.parse().unwrap()
    };
    fourk_emulator::spawn(
        ([127, 0, 0, 1], 0).into(),
        EmulatorConfig {
            faults,
            seed: Some(7),
            stall,
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap()
}

fn client(base_url: &str, timeout: Duration) -> Client {
    let config = Config::from_lookup(|_| None)
        .with_base_url(base_url)
        .with_api_key("sk-test-send-path")
        .with_timeout(timeout);
    Client::new(config)
        .unwrap()
        .with_retry_policy(RetryPolicy::none())
}

fn request(prompt: &str) -> ImageRequest {
    let mut req = ImageRequest::new("gpt-image-2", prompt);
    req.size = Some(Size::Exact {
        width: 1024,
        height: 1024,
    });
    req.quality = Some(Quality::Low);
    req
}

fn job(s: &Setup, req: &ImageRequest, out: &Path) -> Job {
    let model = s.caps.model(&req.model).unwrap();
    Job {
        route: fourk_api::RouteLabel::ImagesGenerate,
        stream: false,
        endpoint: String::new(),
        provider: fourk_core::sidecar::ProviderRecord::default(),
        model: req.model.clone(),
        price: model.price,
        request: SentRequest::Generate(req.clone()),
        inputs: Vec::new(),
        warnings: Vec::new(),
        dims: Some((1024, 1024)),
        format: OutputFormat::Png,
        transparent: false,
        base: out.to_path_buf(),
        force: false,
    }
}

/// Send `req` through the send path with a fresh recorder; the result and the recorder.
async fn go(s: &Setup, client: &Client, req: &ImageRequest, out: &Path) -> (anyhow::Result<bool>, Recorder) {
    let rec = Recorder::new(&s.ledger, "generate", json!({"prompt": req.prompt}));
    let model = s.caps.model(&req.model).unwrap();
    let estimate = send::predict(model, &req.prompt, req.size, req.quality, 1, &[]);
    let key = send::usage_key(&req.model, Some("low"), Some("1024x1024"), 1);
    let result = send::send(
        client,
        &rec,
        job(s, req, out),
        Outgoing::Generate(req),
        &key,
        estimate.as_ref(),
        None,
    )
    .await;
    rec.finish(&result);
    (result.map(|(_, ok)| ok), rec)
}

#[derive(Debug)]
struct AttemptRow {
    state: String,
    possibly_billed: bool,
    error: Option<String>,
}

fn attempts(ledger: &Path) -> Vec<AttemptRow> {
    let conn = rusqlite::Connection::open(ledger).unwrap();
    let mut stmt = conn
        .prepare("SELECT state, possibly_billed, error FROM attempts ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(AttemptRow {
            state: r.get(0)?,
            possibly_billed: r.get(1)?,
            error: r.get(2)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// (measured dollars, estimated dollars) as `fourk cost` sums them.
fn spend(ledger: &Path) -> (f64, f64) {
    let rows = Ledger::open(ledger).unwrap().cost(None, None).unwrap();
    rows.iter()
        .fold((0.0, 0.0), |(m, e), r| (m + r.measured_usd, e + r.estimated_usd))
}

fn image_rows(ledger: &Path) -> i64 {
    let conn = rusqlite::Connection::open(ledger).unwrap();
    conn.query_row("SELECT COUNT(*) FROM images", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_verified_answer_is_measured_and_its_image_recorded() {
    let s = setup();
    let emu = emulator("", Duration::from_secs(1)).await;
    let out = s.dir.path().join("ok.png");
    let (result, rec) = go(
        &s,
        &client(&emu.base_url(), Duration::from_secs(60)),
        &request("a fox"),
        &out,
    )
    .await;
    assert!(result.unwrap());
    assert!(rec.run().is_some());
    let a = attempts(&s.ledger);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].state, "ok");
    assert!(!a[0].possibly_billed);
    let (measured, estimated) = spend(&s.ledger);
    assert!(measured > 0.0, "measured {measured}");
    assert!(
        estimated.abs() < f64::EPSILON,
        "the estimate was replaced: {estimated}"
    );
    assert_eq!(image_rows(&s.ledger), 1);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_billed_answer_with_a_corrupt_image_keeps_its_measured_cost() {
    let s = setup();
    let emu = emulator("corrupt:1", Duration::from_secs(1)).await;
    let out = s.dir.path().join("corrupt.png");
    let (result, _) = go(
        &s,
        &client(&emu.base_url(), Duration::from_secs(60)),
        &request("a fox"),
        &out,
    )
    .await;
    // Either the image is kept as rejected (not verified) or saving fails: never a success.
    assert!(!matches!(result, Ok(true)), "{result:?}");
    assert!(!out.exists(), "nothing under the final name");
    let a = attempts(&s.ledger);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].state, "ok", "the answer arrived: {a:?}");
    let (measured, _) = spend(&s.ledger);
    assert!(measured > 0.0, "the answer's usage is on record: {measured}");
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_answer_that_cannot_be_saved_keeps_its_measured_cost() {
    let s = setup();
    let emu = emulator("", Duration::from_secs(1)).await;
    // A path under a regular file cannot be written.
    let blocker = s.dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("out.png");
    let (result, _) = go(
        &s,
        &client(&emu.base_url(), Duration::from_secs(60)),
        &request("a fox"),
        &out,
    )
    .await;
    assert!(result.is_err());
    let a = attempts(&s.ledger);
    assert_eq!(a[0].state, "ok");
    assert!(
        a[0].error
            .as_deref()
            .is_some_and(|e| e.contains("the answer arrived")),
        "{a:?}"
    );
    let (measured, estimated) = spend(&s.ledger);
    assert!(measured > 0.0);
    assert!(estimated.abs() < f64::EPSILON);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn reset_truncated_and_stalled_requests_are_possibly_billed_at_their_estimate() {
    for (fault, timeout) in [
        ("reset:1", Duration::from_secs(60)),
        ("truncate:1", Duration::from_secs(60)),
        ("stall:1", Duration::from_millis(500)),
    ] {
        let s = setup();
        let emu = emulator(fault, Duration::from_secs(5)).await;
        let out = s.dir.path().join("x.png");
        let (result, _) = go(&s, &client(&emu.base_url(), timeout), &request("a fox"), &out).await;
        let err = result.expect_err(fault);
        let client_err = err
            .chain()
            .find_map(|c| c.downcast_ref::<fourk_client::ClientError>())
            .unwrap_or_else(|| panic!("{fault}: {err:#}"));
        assert!(client_err.possibly_billed(), "{fault}: {err:#}");
        let a = attempts(&s.ledger);
        assert_eq!(a.len(), 1, "{fault}");
        assert_eq!(a[0].state, "failed", "{fault}");
        assert!(a[0].possibly_billed, "{fault}");
        let (measured, estimated) = spend(&s.ledger);
        assert!(measured.abs() < f64::EPSILON, "{fault}");
        assert!(estimated > 0.0, "{fault}: the estimate is the cost on record");
        assert!(!out.exists());
        emu.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_request_that_never_left_is_on_record_but_not_billed() {
    let s = setup();
    // A port with nothing listening: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let out = s.dir.path().join("x.png");
    let (result, _) = go(
        &s,
        &client(&base, Duration::from_secs(10)),
        &request("a fox"),
        &out,
    )
    .await;
    let err = result.unwrap_err();
    assert!(!format!("{err:#}").contains("possibly billed"), "{err:#}");
    let a = attempts(&s.ledger);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].state, "failed");
    assert!(!a[0].possibly_billed);
    assert_eq!(spend(&s.ledger), (0.0, 0.0));
}

#[tokio::test]
async fn an_api_error_is_not_billed() {
    let s = setup();
    let emu = emulator("", Duration::from_secs(1)).await;
    let out = s.dir.path().join("x.png");
    let (result, _) = go(
        &s,
        &client(&emu.base_url(), Duration::from_secs(60)),
        &request("a fox [fourk:moderation]"),
        &out,
    )
    .await;
    assert!(result.is_err());
    let a = attempts(&s.ledger);
    assert_eq!(a[0].state, "failed");
    assert!(!a[0].possibly_billed);
    assert_eq!(spend(&s.ledger), (0.0, 0.0));
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_request_cancelled_after_the_send_stays_possibly_billed() {
    let s = setup();
    let emu = emulator("stall:1", Duration::from_secs(30)).await;
    let out = s.dir.path().join("x.png");
    let c = client(&emu.base_url(), Duration::from_secs(60));
    let req = request("a fox");
    let rec = Recorder::new(&s.ledger, "generate", json!({}));
    let model = s.caps.model("gpt-image-2").unwrap();
    let estimate = send::predict(model, &req.prompt, req.size, req.quality, 1, &[]);
    let key = send::usage_key("gpt-image-2", Some("low"), Some("1024x1024"), 1);
    let sending = send::send(
        &c,
        &rec,
        job(&s, &req, &out),
        Outgoing::Generate(&req),
        &key,
        estimate.as_ref(),
        None,
    );
    // The user gives up while the request is in flight (Ctrl-C drops the work).
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sending)
            .await
            .is_err()
    );
    // Even before anyone says so, the request is on record as possibly billed.
    let a = attempts(&s.ledger);
    assert_eq!(a[0].state, "sent");
    assert!(a[0].possibly_billed);
    let ids = rec.interrupt("interrupted by Ctrl-C");
    assert_eq!(ids.len(), 1);
    let a = attempts(&s.ledger);
    assert_eq!(a[0].state, "interrupted");
    assert!(a[0].possibly_billed);
    let (measured, estimated) = spend(&s.ledger);
    assert!(measured.abs() < f64::EPSILON);
    assert!(estimated > 0.0);
    assert!(!out.exists(), "no file under the final name");
    emu.shutdown().await.unwrap();
}

#[derive(Debug, Default)]
struct Events(std::sync::Mutex<Vec<send::Progress>>);

impl send::Observer for Events {
    fn progress(&self, event: &send::Progress) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[tokio::test]
async fn progress_events_follow_the_request_and_a_cancel_token_stops_it() {
    let s = setup();
    let emu = emulator("", Duration::from_secs(1)).await;
    let c = client(&emu.base_url(), Duration::from_secs(60));
    let req = request("a fox");
    let key = send::usage_key("gpt-image-2", Some("low"), Some("1024x1024"), 1);

    // Events: sending (with its ledger attempt), answered, saved.
    let events = std::sync::Arc::new(Events::default());
    let rec = Recorder::new(&s.ledger, "generate", json!({})).with_observer(events.clone());
    let out = s.dir.path().join("ok.png");
    send::send(
        &c,
        &rec,
        job(&s, &req, &out),
        Outgoing::Generate(&req),
        &key,
        None,
        None,
    )
    .await
    .unwrap();
    let got = events.0.lock().unwrap().clone();
    assert!(
        matches!(
            got[0],
            send::Progress::Sending {
                route: fourk_api::RouteLabel::ImagesGenerate,
                attempt: Some(_)
            }
        ),
        "{got:?}"
    );
    assert!(
        matches!(got[1], send::Progress::Answered { request_id: Some(_) }),
        "{got:?}"
    );
    assert!(
        matches!(&got[2], send::Progress::Saved { path, verified: true } if path == &out),
        "{got:?}"
    );

    // Cancelled before the send: nothing leaves, nothing is recorded.
    let token = tokio_util::sync::CancellationToken::new();
    token.cancel();
    let fresh = s.dir.path().join("fresh.db");
    let rec = Recorder::new(&fresh, "generate", json!({})).with_cancel(token);
    let err = send::send(
        &c,
        &rec,
        job(&s, &req, &s.dir.path().join("no.png")),
        Outgoing::Generate(&req),
        &key,
        None,
        None,
    )
    .await
    .unwrap_err();
    assert!(
        err.downcast_ref::<send::Cancelled>()
            .is_some_and(|c| !c.possibly_billed),
        "{err:#}"
    );
    assert!(!fresh.exists());
    emu.shutdown().await.unwrap();

    // Cancelled while the answer is awaited: on record as possibly billed at its estimate.
    let emu = emulator("stall:1", Duration::from_secs(30)).await;
    let c = client(&emu.base_url(), Duration::from_secs(60));
    let token = tokio_util::sync::CancellationToken::new();
    let ledger = s.dir.path().join("cancel.db");
    let rec = Recorder::new(&ledger, "generate", json!({})).with_cancel(token.clone());
    let model = s.caps.model("gpt-image-2").unwrap();
    let estimate = send::predict(model, &req.prompt, req.size, req.quality, 1, &[]);
    let out = s.dir.path().join("cancelled.png");
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel();
    });
    let err = send::send(
        &c,
        &rec,
        job(&s, &req, &out),
        Outgoing::Generate(&req),
        &key,
        estimate.as_ref(),
        None,
    )
    .await
    .unwrap_err();
    canceller.await.unwrap();
    assert!(
        err.downcast_ref::<send::Cancelled>()
            .is_some_and(|c| c.possibly_billed),
        "{err:#}"
    );
    let a = attempts(&ledger);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].state, "interrupted");
    assert!(a[0].possibly_billed);
    assert!(spend(&ledger).1 > 0.0);
    assert!(!out.exists());
    emu.shutdown().await.unwrap();
}
