//! Failures: each answers with the real API's status and error envelope.

use fourk_emulator::EmulatorConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{KEY, generate, generate_raw, get, start};
use crate::schema::assert_error_response;

/// Assert status, `type`, `code` and `param` of an error reply, and the schema.
fn expect(r: &crate::common::Reply, status: u16, kind: &str, code: Option<&str>, param: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_error_response(&r.body);
    let e = r.error();
    assert_eq!(e["type"], kind, "{}", r.body);
    assert_eq!(e["code"], code.map_or(Value::Null, Value::from), "{}", r.body);
    assert_eq!(e["param"], param.map_or(Value::Null, Value::from), "{}", r.body);
    assert!(!e["message"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_off_the_grid_is_an_image_generation_user_error() {
    let emu = start(EmulatorConfig::default()).await;
    let r = generate(
        &emu.base_url(),
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": "x", "size": "1920x1080"}),
    )
    .await;
    expect(
        &r,
        400,
        "image_generation_user_error",
        Some("invalid_value"),
        Some("size"),
    );
    assert_eq!(
        r.error()["message"],
        "Invalid size '1920x1080'. Width and height must both be divisible by 16."
    );
    assert!(r.headers.contains_key("x-request-id"));
    assert!(r.headers.contains_key("x-ratelimit-remaining-requests"));
    for (size, needle) in [
        ("4096x2160", "3840"),
        ("3840x2560", "8,294,400"),
        ("832x784", "655,360"),
        ("16:9", "Expected WIDTHxHEIGHT"),
    ] {
        let r = generate(
            &emu.base_url(),
            Some(KEY),
            &json!({"model": "gpt-image-2", "prompt": "x", "size": size}),
        )
        .await;
        expect(
            &r,
            400,
            "image_generation_user_error",
            Some("invalid_value"),
            Some("size"),
        );
        let msg = r.error()["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{size}: {msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_wrong_keys_are_401() {
    let emu = start(EmulatorConfig {
        require_key: Some("sk-proj-rightkey1234".into()),
        ..EmulatorConfig::default()
    })
    .await;
    let body = json!({"model": "gpt-image-2", "prompt": "x"});
    let r = generate(&emu.base_url(), None, &body).await;
    expect(&r, 401, "invalid_request_error", None, None);
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .starts_with("You didn't provide an API key.")
    );
    assert!(!r.headers.contains_key("x-ratelimit-remaining-requests"));
    let r = generate(&emu.base_url(), Some("sk-proj-wrongkey9876"), &body).await;
    expect(&r, 401, "invalid_request_error", Some("invalid_api_key"), None);
    assert_eq!(
        r.error()["message"],
        "Incorrect API key provided: sk-proj-********9876. You can find your API key at https://platform.openai.com/account/api-keys."
    );
    let r = generate(&emu.base_url(), Some("sk-proj-rightkey1234"), &body).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_wants_a_key_and_unknown_paths_do_not() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let routes = [
        ("POST", "/images/generations"),
        ("POST", "/images/edits"),
        ("POST", "/responses"),
        ("POST", "/files"),
        ("GET", "/files/file-x"),
        ("DELETE", "/files/file-x"),
        ("GET", "/files/file-x/content"),
        ("POST", "/batches"),
        ("GET", "/batches"),
        ("GET", "/batches/batch_x"),
        ("POST", "/batches/batch_x/cancel"),
        ("GET", "/models"),
        ("GET", "/models/gpt-image-2"),
    ];
    for (method, path) in routes {
        let r = crate::common::client()
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        let (status, limited) = (r.status(), r.headers().contains_key("x-ratelimit-limit-requests"));
        let body: Value = r.json().await.expect("a JSON error");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_error_response(&body);
        assert!(!limited, "{method} {path}: a 401 carries no rate-limit headers");
    }
    let r = get(&base, "/nothing/here", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_name_their_parameter() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let cases = [
        (
            json!({"prompt": "x", "colour": "red"}),
            400,
            "unknown_parameter",
            Some("colour"),
        ),
        (
            json!({"prompt": "x", "response_format": "url"}),
            400,
            "unknown_parameter",
            Some("response_format"),
        ),
        (json!({"prompt": "x", "n": "2"}), 400, "invalid_type", Some("n")),
        (
            json!({"model": "gpt-image-2"}),
            400,
            "missing_required_parameter",
            Some("prompt"),
        ),
        (
            json!({"prompt": "x", "quality": "ultra"}),
            400,
            "invalid_value",
            Some("quality"),
        ),
        (json!({"prompt": "x", "n": 11}), 400, "invalid_value", Some("n")),
        (
            json!({"prompt": "x", "output_compression": 50}),
            400,
            "invalid_value",
            Some("output_compression"),
        ),
        (
            json!({"prompt": "x", "background": "transparent", "output_format": "jpeg"}),
            400,
            "invalid_value",
            Some("background"),
        ),
        (
            json!({"prompt": "x", "model": "dall-e-3"}),
            404,
            "model_not_found",
            Some("model"),
        ),
        (
            json!({"prompt": "x", "model": "gpt-image-9"}),
            404,
            "model_not_found",
            Some("model"),
        ),
    ];
    for (body, status, code, param) in cases {
        let r = generate(&base, Some(KEY), &body).await;
        expect(&r, status, "invalid_request_error", Some(code), param);
        assert!(
            !r.error()["message"].as_str().unwrap().contains("hint:"),
            "CLI hints stay out of API messages: {}",
            r.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_and_unknown_routes() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let r = generate_raw(&base, "{\"prompt\": ").await;
    expect(&r, 400, "invalid_request_error", None, None);
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("could not parse the JSON body")
    );
    let r = generate_raw(&base, "[1, 2]").await;
    expect(&r, 400, "invalid_request_error", Some("invalid_type"), None);

    let r = get(&base, "/images/variations", Some(KEY)).await;
    expect(&r, 404, "invalid_request_error", None, None);
    assert_eq!(r.error()["message"], "Invalid URL (GET /v1/images/variations)");
    assert!(r.headers.contains_key("x-request-id"));
    let r = get(&base, "/images/generations", Some(KEY)).await;
    expect(&r, 405, "invalid_request_error", None, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    use fourk_emulator::{EmulatorState, RateLimits, app};
    let state = EmulatorState::new(EmulatorConfig::default()).with_rate_limits(RateLimits {
        requests_per_minute: 2,
        ..RateLimits::default()
    });
    let listener = tokio::net::TcpListener::bind(crate::common::loopback())
        .await
        .unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app(std::sync::Arc::new(state))).await });
    let body = json!({"model": "gpt-image-2", "prompt": "x", "size": "1024x1024", "quality": "low"});
    for _ in 0..2 {
        assert_eq!(generate(&base, Some(KEY), &body).await.status, StatusCode::OK);
    }
    let r = generate(&base, Some(KEY), &body).await;
    expect(&r, 429, "requests", Some("rate_limit_exceeded"), None);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers["x-ratelimit-remaining-requests"], "0");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_with_an_envelope() {
    use fourk_emulator::{EmulatorState, app};
    // latency_scale 1.0 would wait 80 s; the timeout cuts it at 300 ms.
    let state = EmulatorState::new(EmulatorConfig {
        latency_scale: 1.0,
        ..EmulatorConfig::default()
    })
    .with_request_timeout(std::time::Duration::from_millis(300));
    let listener = tokio::net::TcpListener::bind(crate::common::loopback())
        .await
        .unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app(std::sync::Arc::new(state))).await });
    let r = generate(
        &base,
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": "x", "size": "1024x1024"}),
    )
    .await;
    expect(&r, 408, "server_error", Some("timeout"), None);
    server.abort();
}
