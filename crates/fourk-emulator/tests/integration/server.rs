//! Readiness routes, the model list, and shutdown.

use fourk_emulator::EmulatorConfig;
use reqwest::StatusCode;

use crate::common::{KEY, client, get, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_models() {
    let emu = start(EmulatorConfig::default()).await;
    let root = emu.base_url().trim_end_matches("/v1").to_owned();
    let r = get(&root, "/health", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");

    let r = get(&emu.base_url(), "/models", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get(&emu.base_url(), "/models", Some(KEY)).await;
    assert_eq!(r.body["object"], "list");
    let ids: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gpt-image-2") && ids.contains(&"gpt-image-2-2026-04-21"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"dall-e-3"), "retired models are not listed");
    let r = get(&emu.base_url(), "/models/gpt-image-2", Some(KEY)).await;
    assert_eq!(r.body["id"], "gpt-image-2");
    let r = get(&emu.base_url(), "/models/dall-e-2", Some(KEY)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "model_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_url_is_loopback_and_shutdown_stops_it() {
    let emu = start(EmulatorConfig::default()).await;
    let addr = emu.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    assert_eq!(emu.base_url(), format!("http://127.0.0.1:{}/v1", addr.port()));
    emu.shutdown().await.unwrap();
    let after = client().get(format!("http://{addr}/health")).send().await;
    assert!(after.is_err(), "still answering after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_it() {
    let emu = start(EmulatorConfig::default()).await;
    let addr = emu.addr();
    drop(emu);
    for _ in 0..50 {
        if client()
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("still answering after the handle was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish() {
    // 1024x1024 medium is modelled at 80 s; 0.005 of that keeps the request busy for 400 ms.
    let emu = start(EmulatorConfig {
        latency_scale: 0.005,
        ..EmulatorConfig::default()
    })
    .await;
    let base = emu.base_url();
    let request = tokio::spawn(async move {
        crate::common::generate(
            &base,
            Some(KEY),
            &serde_json::json!({"model": "gpt-image-2", "prompt": "in flight", "size": "1024x1024"}),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    emu.shutdown().await.unwrap();
    let r = request.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
