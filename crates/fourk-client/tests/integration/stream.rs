//! Streams: typed events, keep-alives, `[DONE]`, errors of every kind, and a consumer that
//! walks away.

use std::time::Duration;

use fourk_api::{ErrorClass, ImageRequest, ImageStreamEvent, ResponseStreamEvent, ResponsesRequest};
use fourk_client::{ClientError, Config, RetryPolicy};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::oneshot;

use crate::server::{Act, KEY, client, envelope, event, json, serve, sse, sse_head};

fn req() -> ImageRequest {
    let mut r = ImageRequest::new("gpt-image-2", "a fox");
    r.partial_images = Some(2);
    r
}

fn partial(i: u32) -> String {
    json!({"type": "image_generation.partial_image", "b64_json": "UEFSVA==", "partial_image_index": i,
           "background": "opaque", "created_at": 1, "output_format": "png", "quality": "high", "size": "1024x1024"})
    .to_string()
}

fn completed(b64: &str) -> String {
    json!({"type": "image_generation.completed", "b64_json": b64, "background": "opaque", "created_at": 2,
           "output_format": "png", "quality": "high", "size": "1024x1024",
           "usage": {"input_tokens": 5, "output_tokens": 7024, "total_tokens": 7029}})
    .to_string()
}

async fn collect<T>(s: fourk_client::EventStream<T>) -> Vec<Result<T, ClientError>>
where
    T: fourk_client::StreamEvent,
{
    s.collect().await
}

#[tokio::test]
async fn a_generation_stream_yields_typed_events_across_chunk_boundaries() {
    let body = format!(
        ": keep-alive\n\n{}: ping\n\n{}{}\n{}data: [DONE]\n\n",
        event(Some("image_generation.partial_image"), &partial(0)),
        event(Some("image_generation.partial_image"), &partial(1)),
        event(
            Some("image_generation.future_event"),
            r#"{"type":"image_generation.future_event"}"#
        ),
        event(Some("image_generation.completed"), &completed("RklOQUw=")),
    );
    // Dribble the body out 7 bytes at a time, so lines and events straddle reads.
    let mut pieces = vec![(0, sse_head())];
    pieces.extend(body.as_bytes().chunks(7).map(|c| (0, c.to_vec())));
    let server = serve(vec![Act::Pieces(pieces)]).await;
    let stream = client(&server.url).generate_stream(&req()).await.unwrap();
    assert_eq!(stream.request_id(), Some("req_stream"));
    assert_eq!(stream.head().status, 200);
    let events: Vec<ImageStreamEvent> = collect(stream).await.into_iter().map(Result::unwrap).collect();
    let kinds: Vec<&str> = events.iter().map(ImageStreamEvent::kind).collect();
    assert_eq!(
        kinds,
        [
            "image_generation.partial_image",
            "image_generation.partial_image",
            "unknown",
            "image_generation.completed"
        ]
    );
    assert_eq!(events[3].completed().unwrap().b64_json, "RklOQUw=");
    // The request asked for a stream even though the caller's request did not say so.
    let sent = server.request(0).json();
    assert_eq!(sent["stream"], true);
    assert_eq!(server.request(0).header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn nothing_after_done_is_read() {
    let body = format!("data: [DONE]\n\n{}", event(None, &completed("QQ==")));
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let items = collect(client(&server.url).generate_stream(&req()).await.unwrap()).await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn a_12_mb_single_line_event_arrives_whole() {
    let b64 = "QUJD".repeat(3 * 1024 * 1024);
    let body = event(Some("image_generation.completed"), &completed(&b64));
    assert!(body.len() > 12 * 1024 * 1024);
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let items = collect(client(&server.url).generate_stream(&req()).await.unwrap()).await;
    assert_eq!(items.len(), 1);
    let ev = items.into_iter().next().unwrap().unwrap();
    assert_eq!(ev.completed().unwrap().b64_json.len(), b64.len());
}

#[tokio::test]
async fn an_error_event_is_a_typed_error_and_ends_the_stream() {
    let body = format!(
        "{}{}{}",
        event(Some("image_generation.partial_image"), &partial(0)),
        event(
            Some("error"),
            &envelope(
                "image_generation_user_error",
                Some("moderation_blocked"),
                "Your request was rejected by the safety system."
            )
        ),
        event(Some("image_generation.completed"), &completed("QQ==")),
    );
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let items = collect(client(&server.url).generate_stream(&req()).await.unwrap()).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].is_ok());
    let err = items[1].as_ref().unwrap_err();
    assert!(matches!(err, ClientError::Stream { .. }), "{err:?}");
    assert_eq!(err.class(), Some(ErrorClass::ModerationBlocked));
    assert_eq!(err.request_id(), Some("req_stream"));
    assert!(err.possibly_billed());
    assert!(err.to_string().contains("rephrase"), "{err}");
}

#[tokio::test]
async fn data_with_an_error_key_is_a_typed_error() {
    let body = event(
        None,
        &envelope("server_error", Some("server_error"), "The server had an error"),
    );
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let items = collect(client(&server.url).generate_stream(&req()).await.unwrap()).await;
    assert_eq!(items.len(), 1);
    let err = items[0].as_ref().unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::Server), "{err:?}");
}

#[tokio::test]
async fn a_malformed_event_is_reported_and_the_stream_goes_on() {
    let body = format!(
        "{}{}",
        event(
            Some("image_generation.partial_image"),
            r#"{"type":"image_generation.partial_image","b64_json":5}"#
        ),
        event(Some("image_generation.completed"), &completed("QQ==")),
    );
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let items = collect(client(&server.url).generate_stream(&req()).await.unwrap()).await;
    assert_eq!(items.len(), 2);
    assert!(
        matches!(&items[0], Err(ClientError::InvalidResponse { request_id: Some(r), .. }) if r == "req_stream"),
        "{:?}",
        items[0]
    );
    assert!(items[1].as_ref().unwrap().is_completed());
}

#[tokio::test]
async fn a_stream_cut_before_the_final_image_is_possibly_billed() {
    let body = event(Some("image_generation.partial_image"), &partial(0));
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let items = collect(client(&server.url).generate_stream(&req()).await.unwrap()).await;
    assert_eq!(items.len(), 2);
    let err = items[1].as_ref().unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(err.possibly_billed());
    assert_eq!(err.request_id(), Some("req_stream"));
}

#[tokio::test]
async fn with_n_images_every_final_event_is_awaited() {
    let mut r = req();
    r.n = Some(2);
    let body = event(Some("image_generation.completed"), &completed("QQ=="));
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let items = collect(client(&server.url).generate_stream(&r).await.unwrap()).await;
    assert!(items[0].is_ok());
    let err = items[1].as_ref().unwrap_err();
    assert!(err.to_string().contains("1 of 2 final events"), "{err}");
}

#[tokio::test]
async fn a_stalled_stream_times_out_with_its_request_id() {
    let server = serve(vec![Act::Pieces(vec![
        (0, sse_head()),
        (
            0,
            event(Some("image_generation.partial_image"), &partial(0)).into_bytes(),
        ),
        (3000, Vec::new()),
    ])])
    .await;
    let c = fourk_client::Client::new(
        Config::default()
            .with_base_url(&server.url)
            .with_api_key(KEY)
            .with_timeout(Duration::from_millis(600)),
    )
    .unwrap();
    let items = collect(c.generate_stream(&req()).await.unwrap()).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let err = items[1].as_ref().unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert_eq!(err.request_id(), Some("req_stream"));
    assert!(err.possibly_billed());
}

#[tokio::test]
async fn an_error_status_before_the_stream_is_an_api_error() {
    let server = serve(vec![Act::Reply(json(
        "400 Bad Request",
        "",
        &envelope("invalid_request_error", Some("invalid_value"), "Invalid size"),
    ))])
    .await;
    let err = client(&server.url).generate_stream(&req()).await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 400, .. }), "{err:?}");
}

#[tokio::test]
async fn a_json_answer_to_a_stream_request_is_reported_not_retried() {
    let server = serve(vec![
        Act::Reply(json("200 OK", "", &crate::server::images_body("QUJD"))),
        Act::Reply(json("200 OK", "", &crate::server::images_body("QUJD"))),
    ])
    .await;
    let err = client(&server.url).generate_stream(&req()).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("text/event-stream"), "{err}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn stream_setup_errors_are_typed() {
    let c = fourk_client::Client::new(Config::default().with_base_url("http://127.0.0.1:9/v1")).unwrap();
    assert!(matches!(
        c.generate_stream(&req()).await.unwrap_err(),
        ClientError::MissingKey { .. }
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(&format!("http://127.0.0.1:{port}/v1")).with_retry_policy(RetryPolicy::none());
    let err = c.generate_stream(&req()).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let (tx, rx) = oneshot::channel();
    let mut first = sse_head();
    first.extend_from_slice(event(Some("image_generation.partial_image"), &partial(0)).as_bytes());
    let server = serve(vec![Act::HoldUntilEof(first, tx)]).await;
    let mut stream = client(&server.url).generate_stream(&req()).await.unwrap();
    let ev = stream.next().await.unwrap().unwrap();
    assert!(ev.partial().is_some());
    let mut rx = rx;
    // While the stream is held, the connection stays open...
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), &mut rx)
            .await
            .is_err(),
        "the connection closed while the stream was still held"
    );
    // ...and dropping it closes the connection.
    drop(stream);
    assert!(rx.await.unwrap(), "the server never saw the connection close");
}

#[tokio::test]
async fn a_responses_stream_carries_the_image_through_every_event() {
    let resp = |status: &str| json!({"id": "resp_1", "status": status, "model": "gpt-5", "output": []});
    let item = |status: &str, result: Option<&str>| json!({"type": "image_generation_call", "id": "ig_1", "status": status, "result": result});
    let events = [
        json!({"type": "response.created", "response": resp("in_progress"), "sequence_number": 0}),
        json!({"type": "response.in_progress", "response": resp("in_progress"), "sequence_number": 1}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": item("in_progress", None), "sequence_number": 2}),
        json!({"type": "response.image_generation_call.in_progress", "item_id": "ig_1", "output_index": 0, "sequence_number": 3}),
        json!({"type": "response.image_generation_call.generating", "item_id": "ig_1", "output_index": 0, "sequence_number": 4}),
        json!({"type": "response.image_generation_call.partial_image", "item_id": "ig_1", "output_index": 0,
               "sequence_number": 5, "partial_image_b64": "UEFSVA==", "partial_image_index": 0}),
        json!({"type": "response.image_generation_call.completed", "item_id": "ig_1", "output_index": 0, "sequence_number": 6}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": item("completed", Some("RklOQUw=")), "sequence_number": 7}),
        json!({"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": [item("completed", Some("RklOQUw="))],
               "tool_usage": {"image_gen": {"input_tokens": 1, "output_tokens": 7024, "total_tokens": 7025}}}, "sequence_number": 8}),
    ];
    let body: String = events
        .iter()
        .map(|e| event(e["type"].as_str(), &e.to_string()))
        .collect();
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let r = ResponsesRequest::image("gpt-5", fourk_api::ImageGenTool::new("gpt-image-2"), "a fox");
    let items: Vec<ResponseStreamEvent> = collect(client(&server.url).responses_stream(&r).await.unwrap())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(items.len(), 9);
    assert_eq!(server.request(0).json()["stream"], true);
    let seq: Vec<_> = items.iter().map(ResponseStreamEvent::sequence_number).collect();
    assert_eq!(seq, (0..9).map(Some).collect::<Vec<_>>());
    let ResponseStreamEvent::OutputItemDone(done) = &items[7] else {
        panic!("{:?}", items[7])
    };
    assert_eq!(
        done.item.image_call().unwrap().result.as_deref(),
        Some("RklOQUw=")
    );
    let ResponseStreamEvent::Completed(c) = &items[8] else {
        panic!()
    };
    assert_eq!(
        c.response.tool_usage.unwrap().image_gen.unwrap().output_tokens,
        7024
    );
}

#[tokio::test]
async fn a_responses_error_event_is_a_typed_error() {
    let body = event(
        Some("error"),
        r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null,"sequence_number":3}"#,
    );
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let r = ResponsesRequest::image("gpt-5", fourk_api::ImageGenTool::new("gpt-image-2"), "a fox");
    let items = collect(client(&server.url).responses_stream(&r).await.unwrap()).await;
    assert_eq!(items.len(), 1);
    let err = items[0].as_ref().unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::RateLimited), "{err:?}");
    // Without an `event:` line the typed `error` event is recognised as well.
    let body = event(
        None,
        r#"{"type":"error","code":"server_error","message":"boom","sequence_number":3}"#,
    );
    let server = serve(vec![Act::Reply(sse(&body))]).await;
    let items = collect(client(&server.url).responses_stream(&r).await.unwrap()).await;
    assert_eq!(items[0].as_ref().unwrap_err().class(), Some(ErrorClass::Server));
}
