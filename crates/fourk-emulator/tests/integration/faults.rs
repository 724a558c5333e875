//! Injected faults as a client sees them, seed repeatability, rate limits, the request log,
//! and the on-demand account and safety answers.

use std::time::{Duration, Instant};

use fourk_emulator::{EmulatorConfig, FaultSpec, RateLimits};
use image::GenericImageView as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{KEY, decode, generate, post_raw, start};
use crate::schema::{assert_error_response, assert_images_response};

fn faulty(spec: &str) -> EmulatorConfig {
    EmulatorConfig {
        faults: spec.parse::<FaultSpec>().unwrap(),
        seed: Some(1),
        ..EmulatorConfig::default()
    }
}

fn small() -> Value {
    json!({"model": "gpt-image-2", "prompt": "a small test", "size": "1024x640", "quality": "low"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_faults_answer_with_the_api_envelopes() {
    for (spec, status, kind, code) in [
        ("429:1", 429, "requests", Some("rate_limit_exceeded")),
        ("quota:1", 429, "insufficient_quota", Some("insufficient_quota")),
        ("500:1", 500, "server_error", None),
        (
            "503:1",
            503,
            "service_unavailable_error",
            Some("server_is_overloaded"),
        ),
    ] {
        let emu = start(faulty(spec)).await;
        let r = generate(&emu.base_url(), Some(KEY), &small()).await;
        assert_eq!(r.status.as_u16(), status, "{spec}: {}", r.body);
        assert_error_response(&r.body);
        assert_eq!(r.error()["type"], kind, "{spec}");
        assert_eq!(r.error()["code"], code.map_or(Value::Null, Value::from), "{spec}");
        assert!(r.headers.contains_key("x-request-id"));
        assert_eq!(
            r.headers.contains_key("retry-after"),
            spec == "429:1",
            "{spec}: only the rate limit says when to retry"
        );
        // The key is still checked first.
        let r = generate(&emu.base_url(), Some(""), &small()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{spec}");
        // Health and models are never faulted.
        let h = crate::common::get(&emu.base_url().replace("/v1", ""), "/health", None).await;
        assert_eq!(h.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_drops_the_connection_before_any_status() {
    let emu = start(faulty("reset:1")).await;
    for path in ["/images/generations", "/responses"] {
        let err = post_raw(&emu.base_url(), path, &small(), None)
            .await
            .err()
            .unwrap_or_else(|| panic!("{path}: a status arrived"));
        assert!(!err.is_timeout() && !err.is_status(), "{path}: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_cuts_json_and_event_streams() {
    let emu = start(faulty("truncate:1")).await;
    let raw = post_raw(&emu.base_url(), "/images/generations", &small(), None)
        .await
        .expect("headers arrive");
    assert_eq!(raw.status, Some(StatusCode::OK));
    let length: usize = raw.headers["content-length"].to_str().unwrap().parse().unwrap();
    assert!(raw.body_error, "the body ends in an error");
    assert!(raw.bytes.len() < length, "{} of {length}", raw.bytes.len());
    assert!(serde_json::from_slice::<Value>(&raw.bytes).is_err());

    let mut body = small();
    body["stream"] = true.into();
    body["partial_images"] = 2.into();
    let raw = post_raw(&emu.base_url(), "/images/generations", &body, None)
        .await
        .expect("headers arrive");
    assert_eq!(raw.status, Some(StatusCode::OK));
    assert!(raw.body_error);
    let text = String::from_utf8_lossy(&raw.bytes);
    assert!(text.starts_with("event: image_generation.partial_image\n"));
    assert!(
        text.matches("\n\n").count() < 3,
        "cut before the completed event ends"
    );
    assert!(!text.ends_with("\n\n"), "cut mid-event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_keeps_quiet_then_answers() {
    let emu = start(EmulatorConfig {
        stall: Duration::from_millis(1500),
        ..faulty("stall:1")
    })
    .await;
    let err = post_raw(
        &emu.base_url(),
        "/images/generations",
        &small(),
        Some(Duration::from_millis(300)),
    )
    .await
    .err()
    .expect("times out");
    assert!(err.is_timeout(), "{err:?}");
    let started = Instant::now();
    let r = generate(&emu.base_url(), Some(KEY), &small()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_size_sends_a_valid_image_of_another_size() {
    let emu = start(faulty("wrong-size:1")).await;
    let r = generate(&emu.base_url(), Some(KEY), &small()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    assert_eq!(r.body["size"], "1024x640", "the body names the size asked for");
    assert_eq!(decode(&r.image_bytes(0)).dimensions(), (512, 320));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_sends_bad_base64_or_a_truncated_file() {
    let emu = start(faulty("corrupt:1")).await;
    let (mut bad_base64, mut truncated) = (0, 0);
    for _ in 0..6 {
        let r = generate(&emu.base_url(), Some(KEY), &small()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_images_response(&r.body);
        let b64 = r.body["data"][0]["b64_json"].as_str().unwrap();
        match base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64) {
            Err(_) => bad_base64 += 1,
            Ok(bytes) => {
                assert!(bytes.starts_with(b"\x89PNG"));
                assert!(image::load_from_memory(&bytes).is_err(), "a truncated PNG");
                truncated += 1;
            }
        }
    }
    assert!(bad_base64 > 0 && truncated > 0, "{bad_base64} / {truncated}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_replays_the_same_faults() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let emu = start(EmulatorConfig {
            seed: Some(seed),
            ..faulty("500:0.5,503:0.5")
        })
        .await;
        let mut out = Vec::new();
        for _ in 0..16 {
            out.push(
                generate(&emu.base_url(), Some(KEY), &small())
                    .await
                    .status
                    .as_u16(),
            );
        }
        out
    }
    let a = statuses(42).await;
    assert!(a.contains(&500) && a.contains(&503), "{a:?}");
    assert_eq!(a, statuses(42).await);
    assert_ne!(a, statuses(43).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answers_429_with_retry_after() {
    let emu = start(EmulatorConfig {
        rate_limits: RateLimits {
            requests_per_minute: 2,
            ..RateLimits::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let first = generate(&emu.base_url(), Some(KEY), &small()).await;
    assert_eq!(first.headers["x-ratelimit-limit-requests"], "2");
    assert_eq!(first.headers["x-ratelimit-remaining-requests"], "1");
    let r = crate::common::post_json(
        &emu.base_url(),
        "/responses",
        &json!({"model": "gpt-5", "input": "x"}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "counted, then refused for its body"
    );
    let r = generate(&emu.base_url(), Some(KEY), &small()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_error_response(&r.body);
    assert_eq!(r.error()["code"], "rate_limit_exceeded");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers["x-ratelimit-remaining-requests"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_has_one_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let emu = start(EmulatorConfig {
        request_log: Some(path.clone()),
        ..faulty("500:0.5")
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            generate(&emu.base_url(), Some(KEY), &small())
                .await
                .status
                .as_u16(),
        );
    }
    crate::common::get(&emu.base_url(), "/models", Some(KEY)).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5, "{text}");
    let sha: String = Sha256::digest(b"a small test")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for (line, status) in lines.iter().zip(&statuses) {
        assert_eq!(line["route"], "/v1/images/generations");
        assert_eq!(line["method"], "POST");
        assert_eq!(line["status"], *status);
        assert!(line["request_id"].as_str().unwrap().starts_with("req_"));
        assert!(line["ts_ms"].as_u64().unwrap() > 1_700_000_000_000);
        if *status == 500 {
            assert_eq!(line["fault"], "500");
            assert_eq!(
                line["prompt_sha256"],
                Value::Null,
                "faulted before the body was read"
            );
        } else {
            assert_eq!(line["fault"], Value::Null);
            assert_eq!(line["prompt_sha256"], sha.as_str());
        }
    }
    assert!(statuses.contains(&500) && statuses.contains(&200), "{statuses:?}");
    assert_eq!(lines[4]["route"], "/v1/models");
    assert_eq!(lines[4]["fault"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_verification_and_moderation_on_demand() {
    let emu = start(EmulatorConfig::default()).await;
    let ask = |prompt: &str| json!({"model": "gpt-image-2", "prompt": prompt, "size": "1024x640"});
    let r = generate(&emu.base_url(), Some(KEY), &ask("a fox [fourk:org-unverified]")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_error_response(&r.body);
    assert_eq!(
        r.error()["message"],
        "Your organization must be verified to use the model 'gpt-image-2'. Please go to: https://platform.openai.com/settings/organization/general and click on Verify Organization. If you just verified, it can take up to 15 minutes for access to propagate."
    );
    let r = generate(&emu.base_url(), Some(KEY), &ask("[fourk:moderation] a fox")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_error_response(&r.body);
    assert_eq!(r.error()["type"], "image_generation_user_error");
    assert_eq!(r.error()["code"], "moderation_blocked");
    let message = r.error()["message"].as_str().unwrap();
    assert!(message.starts_with("Your request was rejected by the safety system."));
    assert!(message.contains(r.headers["x-request-id"].to_str().unwrap()));
    assert_eq!(r.error()["moderation_details"]["moderation_stage"], "input");

    let emu = start(EmulatorConfig {
        fail_org_verification: true,
        ..EmulatorConfig::default()
    })
    .await;
    let r = generate(&emu.base_url(), Some(KEY), &ask("a fox")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
