//! Slow and greedy clients: the header and body read timeouts, the per-route body limits and
//! the bound on requests in progress. Slow clients are written by hand over a raw socket,
//! since an HTTP library will not send half a request.

use std::time::{Duration, Instant};

use fourk_emulator::EmulatorConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::{KEY, client, generate, get, photo, png, start};

/// Read until the server closes the connection (or `within` passes, which fails the test);
/// the bytes read and how long it took.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {within:?}; got so far: {}",
        String::from_utf8_lossy(&got)
    );
    (got, started.elapsed())
}

/// The status and the JSON body of a raw HTTP/1.1 answer, and whether it said
/// `connection: close`.
fn parse_answer(raw: &[u8]) -> (u16, Value, bool) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {text}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let close = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "connection:close");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, body, close)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_headers_is_dropped() {
    let emu = start(EmulatorConfig {
        header_read_timeout: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    // Half a request line and one header, then nothing.
    let mut slow = TcpStream::connect(emu.addr()).await.unwrap();
    slow.write_all(b"POST /v1/images/generations HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // A connection that never sends a byte is dropped as well.
    let mut silent = TcpStream::connect(emu.addr()).await.unwrap();
    let (got, took) = read_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(took >= Duration::from_millis(200), "dropped too early: {took:?}");
    let (got, _) = read_to_close(&mut silent, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    // The server itself is fine.
    let root = emu.base_url().trim_end_matches("/v1").to_owned();
    assert_eq!(get(&root, "/health", None).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_gets_408_within_the_body_timeout() {
    let emu = start(EmulatorConfig {
        body_read_timeout: Duration::from_millis(400),
        ..EmulatorConfig::default()
    })
    .await;
    let body = br#"{"model": "gpt-image-2", "prompt": "slow", "size": "1024x1024"}"#;
    let mut stream = TcpStream::connect(emu.addr()).await.unwrap();
    let head = format!(
        "POST /v1/images/generations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // One byte every 100 ms: an idle timeout of 400 ms would never fire, the deadline does.
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for b in body {
            if writer.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut got))
        .await
        .expect("the connection was still open after 5 s")
        .ok();
    let took = started.elapsed();
    trickle.abort();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let (status, body, close) = parse_answer(&got);
    assert_eq!(status, 408, "{body}");
    assert!(close, "the answer must close the connection");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "request_timeout");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("0.4 s") && message.contains("--body-timeout-ms"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_generation_body_is_refused_with_the_envelope() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    // Just over 1 MiB of JSON: refused by its Content-Length.
    let prompt = "a".repeat(1024 * 1024);
    let r = generate(
        &base,
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": prompt}),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert_eq!(r.error()["type"], "invalid_request_error");
    assert_eq!(r.error()["code"], "request_too_large");
    let message = r.error()["message"].as_str().unwrap();
    assert!(
        message.contains("1048576 bytes (1 MiB)") && message.contains("POST /v1/images/generations"),
        "{message}"
    );
    assert!(
        r.headers.get("x-request-id").is_some(),
        "the common headers are there too"
    );

    // The same sent chunked, with no Content-Length: refused while it streams in.
    let chunks = (0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]));
    let r = client()
        .post(format!("{base}/images/generations"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .expect("the answer, not a reset connection");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_too_large");

    // A long prompt within the limit is read and judged on its merits.
    let prompt = "a".repeat(40_000);
    let r = generate(
        &base,
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": prompt}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_ne!(r.error()["code"], "request_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_declared_over_their_route_limit_are_refused_before_they_are_read() {
    let emu = start(EmulatorConfig::default()).await;
    for (path, content_type, declared, names) in [
        (
            "/v1/images/edits",
            "multipart/form-data; boundary=x",
            900u64 << 20,
            "844103680 bytes (805 MiB), the largest POST /v1/images/edits takes. An edit takes at most 16 images, each smaller than 50 MB",
        ),
        (
            "/v1/images/edits",
            "application/json",
            400 << 20,
            "357564416 bytes (341 MiB), the largest POST /v1/images/edits takes. A JSON edit",
        ),
        (
            "/v1/files",
            "multipart/form-data; boundary=x",
            600 << 20,
            "(513 MiB), the largest POST /v1/files takes. A file may be at most 512 MB",
        ),
        (
            "/v1/responses",
            "application/json",
            100 << 20,
            "(50 MiB), the largest POST /v1/responses takes",
        ),
    ] {
        let mut stream = TcpStream::connect(emu.addr()).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: {content_type}\r\ncontent-length: {declared}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // No body is sent: the answer comes from the headers alone (each is more than 16 MiB
        // over, the most the emulator reads and drops to let a client finish sending).
        let (got, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
        let (status, body, close) = parse_answer(&got);
        assert_eq!(status, 413, "{path}: {body}");
        assert!(close, "{path}");
        assert_eq!(body["error"]["code"], "request_too_large");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{path}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_concurrency_bound_get_429_with_retry_after() {
    // 1024x1024 medium is modelled at 80 s; 0.01 of that keeps each request busy for 0.8 s.
    let emu = start(EmulatorConfig {
        latency_scale: 0.01,
        max_concurrent_requests: 2,
        ..EmulatorConfig::default()
    })
    .await;
    let base = emu.base_url();
    let body = json!({"model": "gpt-image-2", "prompt": "busy", "size": "1024x1024", "quality": "medium"});
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (base, body) = (base.clone(), body.clone());
            tokio::spawn(async move { generate(&base, Some(KEY), &body).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = generate(&base, Some(KEY), &body).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.headers["retry-after-ms"], "1000");
    assert_eq!(r.error()["type"], "requests");
    assert_eq!(r.error()["code"], "rate_limit_exceeded");
    let message = r.error()["message"].as_str().unwrap();
    assert!(
        message.contains("already processing 2") && message.contains("--max-concurrent-requests"),
        "{message}"
    );
    // Readiness checks are not counted.
    let root = base.trim_end_matches("/v1").to_owned();
    assert_eq!(get(&root, "/health", None).await.status, StatusCode::OK);
    for s in slow {
        let r = s.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // The places are given back when the answers are sent.
    let r = get(&base, "/models", Some(KEY)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A 1024x1024 picture of noise: about 3 MB as PNG, since noise does not compress.
fn noise_png(seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    let img = image::RgbImage::from_fn(1024, 1024, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let [a, b, c, _] = x.to_le_bytes();
        image::Rgb([a, b, c])
    });
    png(&image::DynamicImage::ImageRgb8(img))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_sixteen_image_edit_is_answered() {
    let emu = start(EmulatorConfig::default()).await;
    let mut form = reqwest::multipart::Form::new()
        .text("model", "gpt-image-2")
        .text("prompt", "sixteen large inputs")
        .text("size", "1024x1024")
        .text("quality", "low");
    let mut total = 0;
    for i in 0..16 {
        let bytes = if i == 0 {
            png(&photo(1024, 1024))
        } else {
            noise_png(i)
        };
        total += bytes.len();
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(format!("{i}.png"))
            .mime_str("image/png")
            .unwrap();
        form = form.part("image[]", part);
    }
    assert!(
        total > 40 * 1024 * 1024,
        "the inputs should be large: {total} bytes"
    );
    let r = client()
        .post(format!("{}/images/edits", emu.base_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["size"], "1024x1024");
    // Every input is billed: sixteen images at 1024x1024.
    let image_tokens = body["usage"]["input_tokens_details"]["image_tokens"]
        .as_u64()
        .unwrap();
    let one = {
        let r = crate::common::edit(
            &emu.base_url(),
            crate::common::EditForm::new()
                .text("model", "gpt-image-2")
                .text("prompt", "one large input")
                .text("size", "1024x1024")
                .text("quality", "low")
                .file("image", png(&photo(1024, 1024)), "image/png"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["usage"]["input_tokens_details"]["image_tokens"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(image_tokens, 16 * one, "{body}");
}
