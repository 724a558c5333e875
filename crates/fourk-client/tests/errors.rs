//! Error envelopes become typed errors whose messages say what to do. Each case is served by a
//! one-shot server on 127.0.0.1 that answers with a canned status and body.

use std::io::{Read, Write};
use std::net::TcpListener;

use fourk_api::{ErrorClass, ImageRequest};
use fourk_client::{Client, ClientError, Config, RetryPolicy};

fn canned(status: &str, headers: &str, body: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-request-id: req_test123\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = vec![0u8; 1 << 16];
            let _ = s.read(&mut buf);
            let _ = s.write_all(resp.as_bytes());
        }
    });
    url
}

async fn call(url: &str) -> ClientError {
    // One-shot servers: these tests are about how one answer is typed, so no retries (the
    // retry policy has its own tests in tests/integration/retry.rs).
    let client = Client::new(
        Config::default()
            .with_base_url(url)
            .with_api_key("sk-test-secret"),
    )
    .unwrap()
    .with_retry_policy(RetryPolicy::none());
    client
        .generate(&ImageRequest::new("gpt-image-2", "x"))
        .await
        .unwrap_err()
}

fn envelope(kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> String {
    serde_json::to_string(&fourk_api::ErrorEnvelope::new(kind, code, param, message)).unwrap()
}

#[tokio::test]
async fn each_error_class_is_typed_with_a_next_step() {
    let cases = [
        (
            "400 Bad Request",
            "",
            envelope(
                "image_generation_user_error",
                Some("invalid_value"),
                Some("size"),
                "Invalid size '1792x936'. Width and height must both be divisible by 16.",
            ),
            ErrorClass::InvalidRequest,
            "param: size",
        ),
        (
            "400 Bad Request",
            "",
            envelope(
                "image_generation_user_error",
                Some("moderation_blocked"),
                None,
                "Your request was rejected by the safety system.",
            ),
            ErrorClass::ModerationBlocked,
            "rephrase",
        ),
        (
            "401 Unauthorized",
            "",
            envelope(
                "invalid_request_error",
                Some("invalid_api_key"),
                None,
                "Incorrect API key provided: sk-te****cret.",
            ),
            ErrorClass::Authentication,
            "OPENAI_API_KEY",
        ),
        (
            "403 Forbidden",
            "",
            envelope(
                "invalid_request_error",
                None,
                None,
                "Your organization must be verified to use the model 'gpt-image-2'.",
            ),
            ErrorClass::OrganizationVerification,
            "settings/organization/general",
        ),
        (
            "429 Too Many Requests",
            "",
            envelope(
                "insufficient_quota",
                Some("insufficient_quota"),
                None,
                "You exceeded your current quota.",
            ),
            ErrorClass::QuotaExhausted,
            "retrying will not help",
        ),
        (
            "429 Too Many Requests",
            "retry-after: 7\r\n",
            envelope(
                "requests",
                Some("rate_limit_exceeded"),
                None,
                "Rate limit reached for gpt-image-2.",
            ),
            ErrorClass::RateLimited,
            "wait and retry",
        ),
        (
            "503 Service Unavailable",
            "",
            envelope("server_error", None, None, "overloaded"),
            ErrorClass::Server,
            "retry later",
        ),
    ];
    for (status, headers, body, class, hint) in cases {
        let url = canned(status, headers, &body);
        let err = call(&url).await;
        assert_eq!(err.class(), Some(class), "{status}: {err}");
        let text = err.to_string();
        assert!(text.contains(hint), "{status}: hint missing from: {text}");
        assert!(text.contains("req_test123"), "{text}");
        assert!(!text.contains("sk-test-secret"));
        if let ClientError::Api { retry_after, .. } = &err
            && headers.contains("retry-after")
        {
            assert_eq!(*retry_after, Some(std::time::Duration::from_secs(7)));
        }
    }
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_and_not_billed() {
    // Bind then drop, so the port is very likely closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = call(&format!("http://127.0.0.1:{port}/v1")).await;
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(!err.possibly_billed());
}

#[tokio::test]
async fn a_silent_server_times_out_and_is_possibly_billed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop(conn);
    });
    let client = Client::new(
        Config::default()
            .with_base_url(url)
            .with_api_key("sk-x")
            .with_timeout(std::time::Duration::from_millis(300)),
    )
    .unwrap();
    let err = client
        .generate(&ImageRequest::new("gpt-image-2", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(err.possibly_billed());
    assert!(err.to_string().contains("possibly billed"));
}

#[tokio::test]
async fn missing_key_is_caught_before_sending() {
    let client = Client::new(Config::default().with_base_url("http://127.0.0.1:9/v1")).unwrap();
    let err = client
        .generate(&ImageRequest::new("gpt-image-2", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::MissingKey { .. }));
    assert!(err.to_string().contains("--emulator"));
}

#[tokio::test]
async fn talks_to_the_emulator_and_sends_the_key_as_bearer() {
    let config = fourk_emulator::EmulatorConfig {
        require_key: Some("sk-right".into()),
        ..Default::default()
    };
    let emu = fourk_emulator::spawn(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap();
    let ok = Client::new(
        Config::default()
            .with_base_url(emu.base_url())
            .with_api_key("sk-right"),
    )
    .unwrap();
    let mut req = ImageRequest::new("gpt-image-2", "a fox");
    req.size = Some(fourk_api::Size::new(1024, 1024));
    req.quality = Some(fourk_api::Quality::Low);
    let resp = ok.generate(&req).await.unwrap();
    assert!(resp.request_id.as_deref().unwrap().starts_with("req_"));
    assert!(resp.emulator.is_some());
    assert!(resp.rate_limits.limit_requests.is_some());
    let images = resp.images().unwrap();
    assert_eq!(images.settings.size.as_deref(), Some("1024x1024"));
    assert_eq!(images.usage.unwrap().output_tokens, 196);

    let bad = Client::new(
        Config::default()
            .with_base_url(emu.base_url())
            .with_api_key("sk-wrong"),
    )
    .unwrap();
    let err = bad.generate(&req).await.unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::Authentication));
    emu.shutdown().await.unwrap();
}
