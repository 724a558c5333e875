//! The Batch API driver (`fourk::batch_api`) end to end against an in-process emulator on
//! 127.0.0.1:0: submit, poll, collect, verify, sidecars at Batch API prices, a failed line
//! reported without stopping the rest, and a later session collecting by batch id alone.

use std::path::Path;
use std::time::Duration;

use fourk::batch_api::{self, BatchEvent, BatchJob, SubmitOptions};
use fourk_api::batch::{BatchStatus, batch_prices};
use fourk_api::{Capabilities, Cost, ImageRequest, OutputFormat, Quality, Size, Usage};
use fourk_client::{Client, Config};
use fourk_emulator::{EmulatorConfig, MAGIC_MODERATION, RunningEmulator, spawn};
use serde_json::Value;

async fn emulator(config: EmulatorConfig) -> (RunningEmulator, Client) {
    let emu = spawn(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("bind 127.0.0.1:0");
    let client = Client::new(
        Config::default()
            .with_base_url(emu.base_url())
            .with_api_key("sk-test-batch"),
    )
    .unwrap();
    (emu, client)
}

fn job(id: &str, prompt: &str, size: Size, format: OutputFormat, out: &Path) -> BatchJob {
    let mut r = ImageRequest::new("gpt-image-2", prompt);
    r.size = Some(size);
    r.quality = Some(Quality::Low);
    r.output_format = Some(format);
    BatchJob {
        custom_id: id.into(),
        request: r,
        output: out.join(id),
    }
}

fn sidecar(path: &Path) -> Value {
    let mut s = path.as_os_str().to_owned();
    s.push(".json");
    serde_json::from_slice(&std::fs::read(s).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_submitted_polled_collected_and_verified() {
    let (emu, client) = emulator(EmulatorConfig::default()).await;
    let caps = Capabilities::builtin();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let jobs = vec![
        job("square", "a fox", Size::new(1024, 1024), OutputFormat::Png, out),
        job("wide", "a valley", Size::new(1536, 1024), OutputFormat::Jpeg, out),
        job(
            "blocked",
            &format!("a cat {MAGIC_MODERATION}"),
            Size::new(1024, 1024),
            OutputFormat::Png,
            out,
        ),
    ];
    let mut events = Vec::new();
    let report = batch_api::run(
        &client,
        &caps,
        &jobs,
        &SubmitOptions::new(batch_api::work_dir(out)),
        Duration::from_millis(20),
        out,
        &mut |e: &BatchEvent| events.push(e.clone()),
    )
    .await
    .unwrap();

    assert_eq!(report.status, BatchStatus::Completed);
    assert_eq!((report.succeeded(), report.failed()), (2, 1));
    assert_eq!(report.counts.total, 3);
    assert!(report.emulator);
    let ids: Vec<&str> = report.jobs.iter().map(|j| j.custom_id.as_str()).collect();
    assert_eq!(ids, ["square", "wide", "blocked"], "manifest order");

    let square = &report.jobs[0];
    assert_eq!(square.paths, [out.join("square.png")]);
    let img = image::open(&square.paths[0]).unwrap();
    assert_eq!((img.width(), img.height()), (1024, 1024));
    let wide = &report.jobs[1];
    assert_eq!(wide.paths, [out.join("wide.jpg")]);
    let img = image::open(&wide.paths[0]).unwrap();
    assert_eq!((img.width(), img.height()), (1536, 1024));

    let blocked = &report.jobs[2];
    assert!(!blocked.ok);
    assert_eq!(blocked.status_code, Some(400));
    assert!(
        blocked.error.as_deref().unwrap().contains("moderation_blocked"),
        "{blocked:?}"
    );

    let car = sidecar(&square.paths[0]);
    assert_eq!(car["route"], "batch");
    assert_eq!(car["checks"]["verified"], true);
    assert_eq!(car["usage"]["output_tokens"], 196);
    assert!(
        car["response"]["emulator"]
            .as_str()
            .unwrap()
            .contains("procedural")
    );
    assert!(
        car["endpoint"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/batches/{}", report.batch_id))
    );
    let live = caps.model("gpt-image-2").unwrap().price.unwrap();
    let usage: Usage = serde_json::from_value(car["usage"].clone()).unwrap();
    let half = Cost::from_usage(&usage, &batch_prices(&live), true).usd;
    let full = Cost::from_usage(&usage, &live, true).usd;
    let recorded = car["cost"]["usd"].as_f64().unwrap();
    assert!((recorded - half).abs() < 1e-12 && (recorded * 2.0 - full).abs() < 1e-12);
    assert!((report.cost_usd - report.jobs.iter().filter_map(|j| j.cost_usd).sum::<f64>()).abs() < 1e-12);

    assert!(matches!(events[0], BatchEvent::Uploaded { requests: 3, .. }));
    assert!(matches!(events[1], BatchEvent::Created { .. }));
    assert!(events.iter().any(|e| matches!(
        e,
        BatchEvent::Status {
            status: BatchStatus::Completed,
            ..
        }
    )));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, BatchEvent::Saved { .. }))
            .count(),
        2
    );

    // A later session: status by id, collect again (same files), and collect into a new
    // folder with no manifest (requests read back from the input file).
    let batch = batch_api::status(&client, &report.batch_id).await.unwrap();
    assert_eq!(batch.status, BatchStatus::Completed);
    let sha = car["checks"]["sha256"].clone();
    let again = batch_api::collect(&client, &caps, &report.batch_id, out, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again.succeeded(), 2);
    assert_eq!(sidecar(&square.paths[0])["checks"]["sha256"], sha);

    let other = tempfile::tempdir().unwrap();
    let fresh = batch_api::collect(&client, &caps, &report.batch_id, other.path(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(fresh.succeeded(), 2);
    assert!(other.path().join("square.png").is_file());
    assert!(other.path().join("wide.jpg").is_file());
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_before_the_batch_is_done_says_to_check_later() {
    let (emu, client) = emulator(EmulatorConfig {
        latency_scale: 0.5,
        ..EmulatorConfig::default()
    })
    .await;
    let caps = Capabilities::builtin();
    let dir = tempfile::tempdir().unwrap();
    let jobs = vec![job(
        "slow",
        "a fox",
        Size::new(1024, 1024),
        OutputFormat::Png,
        dir.path(),
    )];
    let submitted = batch_api::submit(
        &client,
        &caps,
        &jobs,
        &SubmitOptions::new(batch_api::work_dir(dir.path())),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(submitted.manifest.is_file());
    let err = batch_api::collect(&client, &caps, &submitted.batch_id, dir.path(), &mut |_| {})
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("nothing to collect yet"), "{msg}");
    assert!(
        msg.contains(&format!("fourk batch status {}", submitted.batch_id)),
        "{msg}"
    );
    assert_eq!(fourk::exit_for(&err), fourk::Exit::Usage);
    client.cancel_batch(&submitted.batch_id).await.unwrap();
    let done = batch_api::wait(
        &client,
        &submitted.batch_id,
        Duration::from_millis(50),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(done.status, BatchStatus::Cancelled);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_break_a_rule_are_refused_before_anything_is_sent() {
    let (emu, client) = emulator(EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = vec![job(
        "bad",
        "x",
        Size::new(1000, 1000),
        OutputFormat::Png,
        dir.path(),
    )];
    let err = batch_api::submit(
        &client,
        &Capabilities::builtin(),
        &jobs,
        &SubmitOptions::new(batch_api::work_dir(dir.path())),
        &mut |_| panic!("no event: nothing is sent"),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("bad: "), "{err:#}");
    assert_eq!(client.list_batches(None, None).await.unwrap().data.len(), 0);
    emu.shutdown().await.unwrap();
}
