//! The Batch API driver (`fourk_core::batch_api`) end to end against an in-process emulator on
//! 127.0.0.1:0: submit, poll, collect, verify, sidecars at Batch API prices, a failed line
//! reported without stopping the rest, a later session collecting by batch id alone, and edit
//! batches (inline reference images and masks, input records, no base64 in any record; a
//! batch that mixes generations and edits refused before anything is sent).

use std::path::Path;
use std::time::Duration;

use fourk_api::batch::{BatchStatus, batch_prices};
use fourk_api::{
    Capabilities, Cost, EditJsonBody, EditRequest, ImageRequest, InputImage, OutputFormat, Quality, Size,
    Usage,
};
use fourk_client::{Client, Config};
use fourk_core::batch_api::{self, BatchEvent, BatchJob, SubmitOptions};
use fourk_emulator::{EmulatorConfig, MAGIC_MODERATION, RunningEmulator, spawn};
use serde_json::Value;

use crate::common::{sha256_hex, sidecar};

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
    BatchJob::generate(id, r, out.join(id))
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

/// A small PNG reference image (a gradient), and its bytes.
fn reference_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// An RGBA mask whose left half is transparent (the area to edit).
fn mask_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, _| {
        image::Rgba([0, 0, 0, if x < w / 2 { 0 } else { 255 }])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn edit_job(id: &str, reference: &[u8], mask: Option<&[u8]>, out: &Path) -> BatchJob {
    let mut req = EditRequest::new("gpt-image-2", format!("{id}: add a red hat"));
    req.size = Some(Size::new(1024, 1024));
    req.quality = Some(Quality::Low);
    let image = InputImage::new("reference.png", OutputFormat::Png, reference.to_vec());
    let mask = mask.map(|m| InputImage::new("mask.png", OutputFormat::Png, m.to_vec()));
    BatchJob::edit(
        id,
        EditJsonBody::from_edit(&req, &[image], mask.as_ref()),
        out.join(id),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edits_batch_is_submitted_collected_and_verified() {
    let (emu, client) = emulator(EmulatorConfig::default()).await;
    let caps = Capabilities::builtin();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let reference = reference_png(512, 512);
    let mask = mask_png(512, 512);
    let jobs = vec![
        edit_job("hat", &reference, None, out),
        edit_job("door", &reference, Some(&mask), out),
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
    assert_eq!((report.succeeded(), report.failed()), (2, 0), "{report:#?}");
    let batch = client.retrieve_batch(&report.batch_id).await.unwrap();
    assert_eq!(batch.endpoint, "/v1/images/edits");

    let payload =
        &fourk_api::ImageRef::inline(&InputImage::new("r.png", OutputFormat::Png, reference.clone()));
    let fourk_api::ImageRef::Url(url) = payload else {
        unreachable!()
    };
    let base64_sample = &url[url.len() - 200..];
    for job in &report.jobs {
        assert!(job.ok, "{job:?}");
        assert_eq!(job.paths, [out.join(format!("{}.png", job.custom_id))]);
        let img = image::open(&job.paths[0]).unwrap();
        assert_eq!((img.width(), img.height()), (1024, 1024));
        let text = std::fs::read_to_string(&job.sidecars[0]).unwrap();
        assert!(!text.contains(base64_sample), "no base64 in the sidecar");
        let car: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(car["route"], "batch");
        assert_eq!(car["checks"]["verified"], true);
        assert_eq!(
            car["request"]["prompt"],
            format!("{}: add a red hat", job.custom_id)
        );
        let sent = car["request"]["images"][0]["image_url"].as_str().unwrap();
        assert_eq!(
            sent,
            format!("data:image/png;base64,[{} base64 chars]", url.len() - 22)
        );
        assert_eq!(car["inputs"][0]["part"], "images");
        assert_eq!(car["inputs"][0]["sha256"], sha256_hex(&reference));
        assert_eq!(car["inputs"][0]["bytes"], reference.len());
        assert_eq!(
            (
                car["inputs"][0]["width"].as_u64(),
                car["inputs"][0]["height"].as_u64()
            ),
            (Some(512), Some(512))
        );
        assert_eq!(
            car["usage"]["input_tokens_details"]["image_tokens"],
            fourk_api::cost::gpt_image_2_output_tokens(512, 512, Quality::High),
            "gpt-image-2 reads the reference at high fidelity"
        );
        let live = caps.model("gpt-image-2").unwrap().price.unwrap();
        let usage: Usage = serde_json::from_value(car["usage"].clone()).unwrap();
        let half = Cost::from_usage(&usage, &batch_prices(&live), true).usd;
        assert!((car["cost"]["usd"].as_f64().unwrap() - half).abs() < 1e-12);
    }
    let door = sidecar(&report.jobs[1].paths[0]);
    assert!(
        door["request"]["mask"]["image_url"]
            .as_str()
            .unwrap()
            .ends_with(" base64 chars]")
    );
    assert_eq!(door["inputs"][1]["part"], "mask");
    assert_eq!(door["inputs"][1]["sha256"], sha256_hex(&mask));
    assert_ne!(
        door["checks"]["sha256"],
        sidecar(&report.jobs[0].paths[0])["checks"]["sha256"],
        "the mask and the prompt change the edit"
    );
    let manifest =
        std::fs::read_to_string(batch_api::work_dir(out).join(format!("{}.manifest.json", report.batch_id)))
            .unwrap();
    assert!(!manifest.contains(base64_sample), "no base64 in the manifest");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, BatchEvent::Saved { verified: true, .. }))
            .count(),
        2
    );

    // A later session without the manifest reads the edits back from the input file.
    let other = tempfile::tempdir().unwrap();
    let fresh = batch_api::collect(&client, &caps, &report.batch_id, other.path(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(fresh.succeeded(), 2);
    let car = sidecar(&other.path().join("door.png"));
    assert_eq!(car["checks"]["sha256"], door["checks"]["sha256"]);
    assert_eq!(car["inputs"], door["inputs"]);
    assert_eq!(car["request"], door["request"]);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_mixing_generations_and_edits_is_refused_before_anything_is_sent() {
    let (emu, client) = emulator(EmulatorConfig::default()).await;
    let caps = Capabilities::builtin();
    let dir = tempfile::tempdir().unwrap();
    let reference = reference_png(64, 64);
    let jobs = vec![
        job(
            "gen",
            "a fox",
            Size::new(1024, 1024),
            OutputFormat::Png,
            dir.path(),
        ),
        edit_job("edit", &reference, None, dir.path()),
    ];
    let opts = SubmitOptions::new(batch_api::work_dir(dir.path()));
    let err = batch_api::submit(&client, &caps, &jobs, &opts, &mut |_| {
        panic!("no event: nothing is sent")
    })
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("1 generation(s) (e.g. gen) and 1 edit(s) (e.g. edit)"),
        "{msg}"
    );
    assert!(msg.contains("split them into two batches"), "{msg}");
    assert_eq!(fourk::exit_for(&err), fourk::Exit::Usage);

    // An edit whose mask does not fit its image is refused too, before sending.
    let bad = vec![edit_job(
        "masked",
        &reference,
        Some(&mask_png(32, 32)),
        dir.path(),
    )];
    let err = batch_api::submit(&client, &caps, &bad, &opts, &mut |_| {
        panic!("no event: nothing is sent")
    })
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("masked: mask is 32x32 but the first image is 64x64"),
        "{msg}"
    );
    assert_eq!(client.list_batches(None, None).await.unwrap().data.len(), 0);
    emu.shutdown().await.unwrap();
}
