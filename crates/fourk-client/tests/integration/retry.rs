//! The retry policy on the wire: what is resent, after how long, and what never is.

use std::time::{Duration, Instant};

use fourk_api::{EditRequest, ErrorClass, ImageRequest, InputImage, OutputFormat, ResponsesRequest};
use fourk_client::{ClientError, RetryPolicy};

use crate::server::{Act, client, envelope, images_body, json, serve};

fn req() -> ImageRequest {
    ImageRequest::new("gpt-image-2", "a fox")
}

#[tokio::test]
async fn a_429_rate_limit_is_retried_after_retry_after_and_then_succeeds() {
    let server = serve(vec![
        Act::Reply(json(
            "429 Too Many Requests",
            "retry-after: 1\r\n",
            &envelope("requests", Some("rate_limit_exceeded"), "Rate limit reached"),
        )),
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let start = Instant::now();
    let resp = client(&server.url).generate(&req()).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "retry-after was not honoured"
    );
    assert_eq!(resp.attempts, 2);
    assert_eq!(server.count(), 2);
    assert_eq!(server.request(0).body, server.request(1).body);
}

#[tokio::test]
async fn retry_after_ms_wins_over_retry_after() {
    let server = serve(vec![
        Act::Reply(json(
            "503 Service Unavailable",
            "retry-after-ms: 150\r\nretry-after: 30\r\n",
            &envelope("server_error", None, "overloaded"),
        )),
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let start = Instant::now();
    let resp = client(&server.url).generate(&req()).await.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(resp.attempts, 2);
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let server = serve(vec![
        Act::Reply(json(
            "400 Bad Request",
            "",
            &envelope(
                "image_generation_user_error",
                Some("moderation_blocked"),
                "rejected",
            ),
        )),
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let err = client(&server.url).generate(&req()).await.unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::ModerationBlocked));
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn quota_exhaustion_is_not_retried() {
    let server = serve(vec![
        Act::Reply(json(
            "429 Too Many Requests",
            "retry-after: 1\r\n",
            &envelope(
                "insufficient_quota",
                Some("insufficient_quota"),
                "You exceeded your current quota",
            ),
        )),
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let err = client(&server.url).generate(&req()).await.unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::QuotaExhausted));
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn x_should_retry_false_overrides_a_503() {
    let server = serve(vec![
        Act::Reply(json(
            "503 Service Unavailable",
            "x-should-retry: false\r\n",
            &envelope("server_error", None, "overloaded"),
        )),
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let err = client(&server.url).generate(&req()).await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 503, .. }), "{err:?}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn retries_stop_after_the_policy_s_attempts() {
    let fail = || {
        Act::Reply(json(
            "500 Internal Server Error",
            "retry-after-ms: 10\r\n",
            &envelope("server_error", None, "boom"),
        ))
    };
    let server = serve(vec![fail(), fail(), fail(), fail()]).await;
    let err = client(&server.url).generate(&req()).await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 500, .. }), "{err:?}");
    assert_eq!(server.count(), 3, "default: 2 retries, 3 attempts");
}

#[tokio::test]
async fn a_reset_after_the_request_was_sent_is_not_retried_by_default() {
    let server = serve(vec![
        Act::Reset,
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let err = client(&server.url).generate(&req()).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(err.possibly_billed());
    assert!(err.to_string().contains("possibly billed"), "{err}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn a_reset_after_the_request_was_sent_is_retried_when_ambiguous_retries_are_on() {
    let server = serve(vec![
        Act::Reset,
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let c = client(&server.url).with_retry_policy(
        RetryPolicy::default()
            .with_retry_ambiguous(true)
            .with_backoff(Duration::from_millis(10), Duration::from_millis(10)),
    );
    let resp = c.generate(&req()).await.unwrap();
    assert_eq!(resp.attempts, 2);
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_truncated_2xx_body_is_possibly_billed_and_names_the_request() {
    let truncated = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_cut\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n{\"created\":1,\"da".to_vec();
    let server = serve(vec![
        Act::Reply(truncated),
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let err = client(&server.url).generate(&req()).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert_eq!(err.request_id(), Some("req_cut"));
    assert!(err.to_string().contains("req_cut"), "{err}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported_as_not_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(&format!("http://127.0.0.1:{port}/v1")).with_retry_policy(
        RetryPolicy::default().with_backoff(Duration::from_millis(100), Duration::from_millis(100)),
    );
    let start = Instant::now();
    let err = c.generate(&req()).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(!err.possibly_billed());
    // Two retries, 100 ms (less up to 25 % jitter) apart.
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn edits_and_responses_share_the_policy() {
    let busy = || {
        Act::Reply(json(
            "502 Bad Gateway",
            "retry-after-ms: 10\r\n",
            &envelope("server_error", None, "bad gateway"),
        ))
    };
    let server = serve(vec![
        busy(),
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
        busy(),
        Act::Reply(json(
            "200 OK",
            "",
            r#"{"id":"resp_1","status":"completed","output":[]}"#,
        )),
    ])
    .await;
    let c = client(&server.url);
    let img = InputImage::new("a.png", OutputFormat::Png, vec![1u8, 2, 3]);
    let resp = c
        .edit(&EditRequest::new("gpt-image-2", "x"), &[img], None)
        .await
        .unwrap();
    assert_eq!(resp.attempts, 2);
    // The multipart body was rebuilt for the retry, part for part.
    assert_eq!(server.request(0).parts(), server.request(1).parts());
    let r = ResponsesRequest::image("gpt-5", fourk_api::ImageGenTool::new("gpt-image-2"), "x");
    let resp = c.responses(&r).await.unwrap();
    assert_eq!(resp.attempts, 2);
    assert_eq!(resp.response_object().unwrap().id, "resp_1");
    assert_eq!(server.count(), 4);
}
