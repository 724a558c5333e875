//! fourk's fuzz targets, in one place for their three users:
//!
//! - the coverage-guided `cargo fuzz` targets in `fuzz/fuzz_targets/` (nightly), one line each;
//! - the stable driver (`cargo run -p fourk-fuzz --release -- run TARGET SECONDS`), a seeded
//!   random-mutation loop for machines without nightly or cargo-fuzz;
//! - the replay tests (`tests/replay.rs`), which CI runs on stable: every seed below and every
//!   input checked in under `fuzz/corpus-regressions/<target>/` goes through its target.
//!
//! Each target takes arbitrary bytes, must never panic, and asserts what has to hold for any
//! input (round-trips, limits, envelopes); see [`TARGETS`]. The targets call public entry
//! points (the emulator through its router, decoding through `load_bytes` and `verify_bytes`),
//! so they stay valid whatever the internals become; one property of verification's internals
//! (what the JPEG entropy check proves, the strict decoder decodes) is reached through
//! `fourk_imaging::internals`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, header};
use base64::Engine as _;
use bytes::Bytes;
use fourk_api::{Capabilities, OutputFormat, Size};
use fourk_client::sse::{SseDecoder, SseEvent};
use fourk_core::batch::jobs::{self, Defaults, Layout};
use fourk_emulator::{EmulatorConfig, EmulatorState, RateLimits};
use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub mod mutate;

/// One fuzz target: its name (also the cargo-fuzz target's and the corpus folder's), the
/// function that checks one input, the seeds every run starts from, and tokens the mutators
/// splice in.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// `fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus-regressions/<name>/`.
    pub name: &'static str,
    /// What the target covers and asserts, for `fourk-fuzz list`.
    pub about: &'static str,
    /// Check one input; panics on a bug.
    pub run: fn(&[u8]),
    /// Valid (or nearly valid) inputs to start from.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Tokens worth inserting (a libFuzzer dictionary).
    pub dictionary: &'static [&'static str],
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "size",
        about: "Size parsing (FromStr, parse_wire, serde): a parsed size prints back to the same size; every model's verdict and its suggestions",
        run: size,
        seeds: size_seeds,
        dictionary: &[
            "x",
            "X",
            "auto",
            "4k",
            "-portrait",
            ":",
            "0",
            "65536",
            "4294967296",
            " ",
            "\u{d7}",
            "\u{0130}",
        ],
    },
    Target {
        name: "sse",
        about: "The client's SSE decoder: the same events however the body is split into chunks; no CR or LF inside a line's value",
        run: sse,
        seeds: sse_seeds,
        dictionary: &[
            "data:", "event:", "id:", "retry:", ":", "\r\n", "\r", "\n", "\n\n", "\u{feff}",
        ],
    },
    Target {
        name: "emulator_json",
        about: "The emulator's JSON routes (generations, JSON edits, responses, batches) through its router: no 500, every answer the API's envelope or a valid event stream",
        run: emulator_json,
        seeds: emulator_json_seeds,
        dictionary: &[
            "\"model\"",
            "\"prompt\"",
            "\"size\"",
            "\"quality\"",
            "\"n\"",
            "\"stream\"",
            "\"partial_images\"",
            "\"output_format\"",
            "\"output_compression\"",
            "\"background\"",
            "\"images\"",
            "\"mask\"",
            "\"image_url\"",
            "\"file_id\"",
            "\"input\"",
            "\"tools\"",
            "\"tool_choice\"",
            "\"input_fidelity\"",
            "\"previous_response_id\"",
            "\"moderation\"",
            "\"transparent\"",
            "\"webp\"",
            "\"jpeg\"",
            "true",
            "null",
            "\"data:image/png;base64,",
            "\"gpt-image-2\"",
            "\"gpt-5\"",
            "\"image_generation\"",
            "-1",
            "1e999",
        ],
    },
    Target {
        name: "multipart",
        about: "The emulator's multipart routes (edits; /v1/files after a leading `F`) under a fixed boundary: no 500, every answer the API's envelope",
        run: multipart,
        seeds: multipart_seeds,
        dictionary: MULTIPART_DICT,
    },
    Target {
        name: "multipart_boundary",
        about: "As `multipart`, with the boundary chosen by the input (its first line)",
        run: multipart_boundary,
        seeds: multipart_boundary_seeds,
        dictionary: MULTIPART_DICT,
    },
    Target {
        name: "jobs",
        about: "The batch jobs file (JSONL and CSV): every job keyed (64 hex digits, unique), named within the output folder, its size round-tripping",
        run: jobs,
        seeds: jobs_seeds,
        dictionary: &[
            "prompt",
            "size",
            "quality",
            "format",
            "name",
            "model",
            "images",
            "image",
            "mask",
            "background",
            "compression",
            "moderation",
            "\"n\"",
            ",",
            "\"",
            "\n",
            "#",
            "{",
            "}",
            "..",
            "/",
            "CON",
            ";",
            "|",
        ],
    },
    Target {
        name: "sidecar",
        about: "Sidecar readers: annotating one (the JSON written back keeps every key and has the new one) and reading its provenance",
        run: sidecar,
        seeds: sidecar_seeds,
        dictionary: &[
            "\"checks\"",
            "\"sha256\"",
            "\"request\"",
            "\"source\"",
            "\"cost\"",
            "\"route\"",
            "[",
            "{",
            "null",
            "\"prompt\"",
        ],
    },
    Target {
        name: "manifest",
        about: "Batch manifests and batch input lines as `fourk batch collect` reads them back: outputs stay in the output folder",
        run: manifest,
        seeds: manifest_seeds,
        dictionary: &[
            "\"custom_id\"",
            "\"output\"",
            "\"request\"",
            "\"inputs\"",
            "\"jobs\"",
            "\"url\"",
            "\"body\"",
            "\"/v1/images/edits\"",
            "\"/v1/images/generations\"",
            "\"..\"",
            "\"/\"",
            "\"images\"",
            "\"image_url\"",
        ],
    },
    Target {
        name: "image",
        about: "Decoding PNG, JPEG and WebP under limits (load_bytes, verify_bytes, probe, metadata): no image beyond the limits, load and verify agree",
        run: image,
        seeds: image_seeds,
        dictionary: &[
            "IHDR",
            "IDAT",
            "IEND",
            "tEXt",
            "iTXt",
            "PLTE",
            "tRNS",
            "RIFF",
            "WEBP",
            "VP8 ",
            "VP8L",
            "VP8X",
            "ALPH",
            "\u{ff}\u{d8}",
            "\u{ff}\u{d9}",
        ],
    },
    Target {
        name: "jpeg_check",
        about: "JPEG verification's entropy check: whatever it proves intact, zune-jpeg's strict decode decodes",
        run: jpeg_check,
        seeds: jpeg_check_seeds,
        dictionary: &[
            "\u{ff}\u{d8}",
            "\u{ff}\u{d9}",
            "\u{ff}\u{d0}",
            "\u{ff}\u{d1}",
            "\u{ff}\u{dd}\u{0}\u{4}",
            "\u{ff}\u{c4}",
            "\u{ff}\u{da}",
            "\u{ff}\u{0}",
        ],
    },
    Target {
        name: "png_rows",
        about: "The pipeline's PNG row reader (zlib-rs, own unfiltering): whatever it reads, the png crate decodes to the same pixels",
        run: png_rows,
        seeds: png_rows_seeds,
        dictionary: &[
            "IHDR",
            "IDAT",
            "IEND",
            "tEXt",
            "PLTE",
            "\u{78}\u{9c}",
            "\u{78}\u{da}",
        ],
    },
    Target {
        name: "webp_check",
        about: "WebP verification's lossless entropy check: whatever it proves intact, libwebp decodes",
        run: webp_check,
        seeds: webp_check_seeds,
        dictionary: &["RIFF", "WEBP", "VP8L", "VP8X", "\u{2f}"],
    },
];

/// The target called `name`.
#[must_use]
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn caps() -> &'static Capabilities {
    static CAPS: OnceLock<Capabilities> = OnceLock::new();
    CAPS.get_or_init(Capabilities::builtin)
}

// ---------------------------------------------------------------------------------------------
// size

/// `Size` from text in every way fourk reads one.
pub fn size(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<Size>();
    if let Ok(size) = parsed {
        let printed = size.to_string();
        assert_eq!(
            printed.parse::<Size>(),
            Ok(size),
            "{text:?} printed as {printed:?}"
        );
        assert_eq!(
            Size::parse_wire(&printed),
            Ok(size),
            "{printed:?} is not a wire size"
        );
        let json = serde_json::to_string(&size).expect("a size serialises");
        assert_eq!(serde_json::from_str::<Size>(&json).ok(), Some(size), "{json}");
        if let Some((w, h)) = size.dims() {
            assert!(w > 0 && h > 0, "{text:?} parsed to {w}x{h}");
            assert_eq!(size.pixels(), Some(u64::from(w) * u64::from(h)));
        }
    }
    // The wire form accepts a subset of what `--size` does, and means the same by it.
    if let Ok(wire) = Size::parse_wire(text) {
        assert_eq!(parsed.as_ref().ok(), Some(&wire), "{text:?}");
    }
    // From JSON, the same text means the same size.
    let from_json = serde_json::from_value::<Size>(Value::String(text.to_owned())).ok();
    assert!(
        from_json.is_none() || from_json == parsed.as_ref().ok().copied(),
        "{text:?}"
    );
    if let Err(e) = &parsed {
        let _ = e.to_string();
    }
    for model in ["gpt-image-2", "gpt-image-2.6-sunburst"] {
        let Ok(m) = caps().model(model) else { continue };
        let verdict = m.check_size_str(text, model);
        assert_eq!(
            verdict.valid,
            verdict.violations.is_empty(),
            "{text:?}: {verdict:?}"
        );
        for s in &verdict.suggestions {
            let suggested: Size = s
                .parse()
                .unwrap_or_else(|e| panic!("suggestion {s:?} for {text:?}: {e}"));
            let again = m.check_size(suggested);
            assert!(
                again.valid,
                "suggestion {s} for {text:?} is not valid for {model}: {again:?}"
            );
        }
    }
}

fn size_seeds() -> Vec<Vec<u8>> {
    [
        "1024x1024",
        "3840x2160",
        "auto",
        "4k",
        "4K-Portrait",
        " 2048X2048 ",
        "16:9",
        "0x5",
        "1920x1080",
        "99999x1",
        "1x1",
        "",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

// ---------------------------------------------------------------------------------------------
// sse

fn sse_decode(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(Bytes::copy_from_slice(c));
        out.extend(std::iter::from_fn(|| d.next_event()));
    }
    out.extend(std::iter::from_fn(|| d.finish()));
    out
}

/// The client's server-sent events decoder.
pub fn sse(data: &[u8]) {
    let whole = sse_decode(&[data]);
    for e in &whole {
        assert!(!e.data.contains(&b'\r'), "CR inside data: {e:?}");
        if let Some(name) = &e.event {
            assert!(!name.contains(['\r', '\n']), "line break in an event name: {e:?}");
        }
    }
    // Split points: all of them for short inputs, a spread of them otherwise, and one byte a
    // chunk (the worst case for lines spread over chunks).
    let n = data.len();
    let step = (n / 32).max(1);
    for i in (0..=n).step_by(step) {
        let j = (i + 1 + (i * 7) % (n - i + 1)).min(n);
        assert_eq!(sse_decode(&[&data[..i], &data[i..]]), whole, "split at {i}");
        assert_eq!(
            sse_decode(&[&data[..i], &data[i..j], &data[j..]]),
            whole,
            "split at {i} and {j}"
        );
    }
    if n <= 4096 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(sse_decode(&bytes), whole, "one byte a chunk");
    }
}

fn sse_seeds() -> Vec<Vec<u8>> {
    vec![
        b": keep-alive\n\nevent: image_generation.partial_image\ndata: {\"a\":\ndata:1}\n\ndata: [DONE]\n\n"
            .to_vec(),
        b"\xEF\xBB\xBFevent: a\r\ndata: one\r\n\r\n:c\rdata:two\r\rdata: three\n\nevent: empty\n\n".to_vec(),
        b"data: {\"x\":1}".to_vec(),
        b"id: 1\nretry: 5\nevent:x\ndata\n\ndata:\ndata:\n\n".to_vec(),
    ]
}

// ---------------------------------------------------------------------------------------------
// the emulator

/// A current-thread runtime made once; every emulator input runs on it.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// A fresh emulator for every input (so an input replays the same way alone or in a run):
/// no latency, no faults, limits no fuzzer reaches.
fn emulator() -> axum::Router {
    static CONFIG: OnceLock<EmulatorConfig> = OnceLock::new();
    let config = CONFIG.get_or_init(|| EmulatorConfig {
        capabilities: caps().clone(),
        latency_scale: 0.0,
        seed: Some(0),
        ..EmulatorConfig::default()
    });
    let state = EmulatorState::new(config.clone()).with_rate_limits(RateLimits {
        requests_per_minute: 1 << 40,
        tokens_per_minute: 1 << 50,
        images_per_minute: 1 << 40,
    });
    fourk_emulator::app(Arc::new(state))
}

/// Send one request to a fresh emulator and check its answer: never a 500 (the emulator
/// injects none here, so one would be a bug), always a request id, JSON answers in the API's
/// shape (an error envelope for an error status), event streams whose every event is JSON.
fn call_emulator(path: &str, content_type: &[u8], body: &[u8]) -> Option<u16> {
    let Ok(content_type) = header::HeaderValue::from_bytes(content_type) else {
        return None;
    };
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::AUTHORIZATION, "Bearer sk-fuzz")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    runtime().block_on(async {
        let response = emulator()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body is readable");
        assert_ne!(
            status.as_u16(),
            500,
            "{path}: 500 {}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(headers.contains_key("x-request-id"), "{path}: no x-request-id");
        let kind = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if kind.starts_with("text/event-stream") {
            assert!(status.is_success(), "{path}: a {status} stream");
            for e in sse_decode(&[&bytes]) {
                let v: Value = serde_json::from_slice(&e.data)
                    .unwrap_or_else(|err| panic!("{path}: an event is not JSON ({err}): {e:?}"));
                assert!(v["type"].is_string(), "{path}: an event without a type: {v}");
            }
        } else {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                panic!(
                    "{path}: a {status} answer is not JSON ({err}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            if !status.is_success() {
                assert!(
                    v["error"]["message"].is_string(),
                    "{path}: {status} without an error envelope: {v}"
                );
                assert!(
                    v["error"]["type"].is_string(),
                    "{path}: {status} error without a type: {v}"
                );
            }
        }
        Some(status.as_u16())
    })
}

const JSON_ROUTES: [(u8, &str); 4] = [
    (b'g', "/v1/images/generations"),
    (b'e', "/v1/images/edits"),
    (b'r', "/v1/responses"),
    (b'b', "/v1/batches"),
];

/// A JSON body to one of the emulator's JSON routes, chosen by the first byte (`g`
/// generations, `e` edits, `r` responses, `b` batches; another byte by its value).
pub fn emulator_json(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let route = JSON_ROUTES
        .iter()
        .find(|(c, _)| *c == first)
        .unwrap_or(&JSON_ROUTES[usize::from(first) % JSON_ROUTES.len()])
        .1;
    json_status(route, body);
}

fn json_status(route: &str, body: &[u8]) -> Option<u16> {
    call_emulator(route, b"application/json", body)
}

fn tiny_png() -> Vec<u8> {
    let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(16, 16, |x, y| {
        Rgba([(x * 16) as u8, (y * 16) as u8, 90, if x < 8 { 255 } else { 0 }])
    }));
    fourk_imaging::encode(&img, OutputFormat::Png, None).expect("a PNG")
}

fn data_url(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

fn emulator_json_seeds() -> Vec<Vec<u8>> {
    let url = data_url(&tiny_png());
    let line = json!({"custom_id": "a", "method": "POST", "url": "/v1/images/generations",
        "body": {"model": "gpt-image-2", "prompt": "x", "size": "1024x1024", "quality": "low"}});
    [
        (b'g', json!({"model": "gpt-image-2", "prompt": "a red fox", "size": "1024x1024", "quality": "low"})),
        (
            b'g',
            json!({"model": "gpt-image-2", "prompt": "a fox", "size": "1024x1024", "quality": "low", "stream": true,
                "partial_images": 1, "output_format": "webp", "output_compression": 50}),
        ),
        (
            b'g',
            json!({"model": "gpt-image-2", "prompt": "[fourk:moderation]", "n": 2, "background": "transparent"}),
        ),
        (
            b'e',
            json!({"model": "gpt-image-2", "prompt": "make it blue", "images": [{"image_url": url}],
                "size": "1024x1024", "quality": "low"}),
        ),
        (
            b'e',
            json!({"model": "gpt-image-2", "prompt": "x", "images": [{"image_url": url}, {"file_id": "file-1"}],
                "mask": {"image_url": url}, "stream": true, "quality": "low", "size": "1024x1024"}),
        ),
        (
            b'r',
            json!({"model": "gpt-5", "input": "draw a fox", "tools": [{"type": "image_generation",
                "model": "gpt-image-2", "size": "1024x1024", "quality": "low"}],
                "tool_choice": {"type": "image_generation"}}),
        ),
        (
            b'r',
            json!({"model": "gpt-5", "stream": true, "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "a fox"}, {"type": "input_image", "image_url": url}]}],
                "tools": [{"type": "image_generation", "size": "1024x1024", "quality": "low", "partial_images": 1}]}),
        ),
        (
            b'b',
            json!({"input_file_id": "file-abc", "endpoint": "/v1/images/generations", "completion_window": "24h",
                "metadata": {"k": "v"}, "line": line}),
        ),
    ]
    .into_iter()
    .map(|(route, body)| {
        let mut v = vec![route];
        v.extend(serde_json::to_vec(&body).expect("JSON"));
        v
    })
    .collect()
}

const BOUNDARY: &str = "fourkfuzzboundary";

const MULTIPART_DICT: &[&str] = &[
    "--",
    "\r\n",
    "\r\n\r\n",
    "Content-Disposition: form-data; name=\"",
    "\"; filename=\"",
    "Content-Type: ",
    "image/png",
    "image/jpeg",
    "image/webp",
    "image[]",
    "mask",
    "prompt",
    "model",
    "size",
    "purpose",
    "file",
    "--fourkfuzzboundary",
    "--fourkfuzzboundary--",
];

/// Multipart bodies to the emulator under a fixed boundary: to `/v1/images/edits`, or to
/// `/v1/files` when the input starts with `F`.
pub fn multipart(data: &[u8]) {
    multipart_status(data);
}

fn multipart_status(data: &[u8]) -> Option<u16> {
    let (path, body) = multipart_route(data);
    call_emulator(
        path,
        format!("multipart/form-data; boundary={BOUNDARY}").as_bytes(),
        body,
    )
}

/// As [`multipart`], with the boundary on the input's first line.
pub fn multipart_boundary(data: &[u8]) {
    let Some(nl) = data.iter().take(256).position(|&b| b == b'\n') else {
        return;
    };
    let (boundary, rest) = (&data[..nl], &data[nl + 1..]);
    let (path, body) = multipart_route(rest);
    let mut content_type = b"multipart/form-data; boundary=".to_vec();
    content_type.extend_from_slice(boundary);
    let _ = call_emulator(path, &content_type, body);
}

fn multipart_route(data: &[u8]) -> (&'static str, &[u8]) {
    match data.split_first() {
        Some((b'F', rest)) => ("/v1/files", rest),
        _ => ("/v1/images/edits", data),
    }
}

/// One part of a form: its name, its file name and content type if it is a file, its value.
type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A multipart form.
fn form(boundary: &str, parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, file, value) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some((filename, mime)) => out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {mime}\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn forms(boundary: &str) -> Vec<Vec<u8>> {
    let png = tiny_png();
    let jsonl = format!(
        "{}\n",
        json!({"custom_id": "a", "method": "POST", "url": "/v1/images/generations",
            "body": {"model": "gpt-image-2", "prompt": "x", "size": "1024x1024", "quality": "low"}})
    );
    let edit = form(
        boundary,
        &[
            ("model", None, b"gpt-image-2"),
            ("prompt", None, b"make it blue"),
            ("image", Some(("a.png", "image/png")), &png),
            ("size", None, b"1024x1024"),
            ("quality", None, b"low"),
        ],
    );
    let masked = form(
        boundary,
        &[
            ("prompt", None, b"x"),
            ("image[]", Some(("a.png", "image/png")), &png),
            ("image[]", Some(("b.png", "image/png")), &png),
            ("mask", Some(("m.png", "image/png")), &png),
            ("stream", None, b"true"),
            ("partial_images", None, b"1"),
            ("quality", None, b"low"),
            ("size", None, b"1024x1024"),
        ],
    );
    let mut batch_file = b"F".to_vec();
    batch_file.extend(form(
        boundary,
        &[
            ("purpose", None, b"batch"),
            (
                "file",
                Some(("jobs.jsonl", "application/jsonl")),
                jsonl.as_bytes(),
            ),
        ],
    ));
    let mut vision_file = b"F".to_vec();
    vision_file.extend(form(
        boundary,
        &[
            ("purpose", None, b"vision"),
            ("file", Some(("a.png", "image/png")), &png),
        ],
    ));
    vec![edit, masked, batch_file, vision_file]
}

fn multipart_seeds() -> Vec<Vec<u8>> {
    forms(BOUNDARY)
}

fn multipart_boundary_seeds() -> Vec<Vec<u8>> {
    ["x", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "a'()+_,-./:=? b"]
        .iter()
        .flat_map(|b| {
            forms(b).into_iter().map(move |f| {
                let mut v = b.as_bytes().to_vec();
                v.push(b'\n');
                v.extend(f);
                v
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// jobs

/// A jobs file, read both as JSONL and as CSV.
pub fn jobs(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let defaults = Defaults {
        model: "gpt-image-2".into(),
        size: Size::new(1024, 1024),
        quality: None,
        format: OutputFormat::Png,
    };
    let (base, out) = (Path::new("/jobs"), Path::new("/out"));
    for layout in [Layout::Jsonl, Layout::Csv] {
        // One pass: the jobs that parsed come back with every problem of the other lines.
        let Ok((jobs, problems)) = jobs::parse(text, layout, base, out, &defaults) else {
            continue;
        };
        assert!(
            !jobs.is_empty() || !problems.is_empty(),
            "{layout:?}: no jobs and no problem"
        );
        let mut keys = std::collections::HashSet::new();
        let mut stems = std::collections::HashSet::new();
        for job in &jobs {
            assert_eq!(job.key.len(), 64, "{job:?}");
            assert!(job.key.bytes().all(|b| b.is_ascii_hexdigit()), "{job:?}");
            assert!(
                keys.insert(job.key.clone()),
                "{layout:?}: two jobs with the key {}",
                job.key
            );
            let s = &job.spec;
            assert!(!s.prompt.trim().is_empty(), "{job:?}");
            assert!((1..=10).contains(&s.n), "{job:?}");
            assert!(s.compression.is_none_or(|c| c <= 100), "{job:?}");
            // The name is a file stem inside the output folder.
            assert!(!s.name.is_empty(), "{job:?}");
            assert_eq!(
                fourk_core::batch::names::sanitize(&s.name).as_deref(),
                Some(s.name.as_str()),
                "{layout:?}: the name {:?} is not sanitised",
                s.name
            );
            assert!(
                !s.name.contains(['/', '\\', '\0']) && !s.name.starts_with('.'),
                "{:?}",
                s.name
            );
            assert_eq!(out.join(&s.name).parent(), Some(out), "{:?}", s.name);
            assert_eq!(s.size.to_string().parse::<Size>(), Ok(s.size), "{job:?}");
            for p in s.images.iter().chain(&s.mask) {
                assert!(p.is_absolute(), "{layout:?}: a relative image path {p:?}");
            }
            let stems_of_job: Vec<String> = if s.n <= 1 {
                vec![s.name.to_lowercase()]
            } else {
                (1..=s.n)
                    .map(|i| format!("{}-{i}", s.name).to_lowercase())
                    .collect()
            };
            for stem in stems_of_job {
                assert!(stems.insert(stem.clone()), "{layout:?}: two jobs write {stem}");
            }
            let spec: Value = serde_json::from_str(&job.spec_json).expect("the spec JSON parses");
            assert_eq!(spec["prompt"], s.prompt.as_str());
        }
    }
}

fn jobs_seeds() -> Vec<Vec<u8>> {
    [
        "{\"prompt\": \"a fox\", \"size\": \"4k\", \"name\": \"hero.png\", \"n\": 2}\n# comment\n\n{\"prompt\": \"b\", \"images\": [\"a.png\", \"/abs/b.png\"], \"mask\": \"m.png\", \"quality\": \"high\"}\n",
        "prompt,size,name,images,format,compression\n\"a, fox\",1024x1024,hero,a.png;b.png,jpeg,80\nb,auto,,,webp,\n",
        "{\"prompt\": \"x\", \"name\": \"../../etc/passwd\"}\n{\"prompt\": \"x\", \"name\": \"CON.png\"}\n{\"prompt\": \"x\", \"n\": 10, \"background\": \"transparent\", \"moderation\": \"low\"}\n",
        "prompt;size\nx;1024x1024\n",
        "prompt,n,name\na,2,x\nb,1,x-1\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

// ---------------------------------------------------------------------------------------------
// sidecars

/// A sidecar's text, as fourk reads it back: annotated with a new record, and read for the
/// provenance of a pipeline input.
pub fn sidecar(data: &[u8]) {
    let record = json!({"fuzz": true});
    if let Ok(written) = fourk_core::sidecar::annotated(data, "transparency", &record) {
        let before: Value = serde_json::from_slice(data).expect("annotated only what parses");
        let after: Value = serde_json::from_slice(&written).expect("the annotated sidecar parses");
        assert_eq!(after["transparency"], record);
        if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
            for (k, v) in b.iter().filter(|(k, _)| *k != "transparency") {
                assert!(
                    a.get(k).is_some_and(|w| same_json(v, w)),
                    "the key {k} was lost: {v} -> {:?}",
                    a.get(k)
                );
            }
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let sha = "ab".repeat(32);
    let info = fourk_core::pipeline::SourceInfo::from_json("x.png.json".into(), &v, &sha);
    if v["checks"]["sha256"].as_str() == Some(sha.as_str()) {
        assert_eq!(info.sha256_matches, Some(true));
    }
    let _ = serde_json::to_string(&info).expect("a SourceInfo serialises");
}

/// JSON equality, except that a float may come back one unit in the last place off: serde_json's
/// default parser is not correctly rounded for long mantissas or large exponents (for example
/// `4.44444444444e61` reads back as `4.4444444444400006e61` after a write), and fourk only
/// writes short decimals, which it reads exactly. Its `float_roundtrip` feature would make every
/// read exact; see the fuzzing notes.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= 2.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn sidecar_seeds() -> Vec<Vec<u8>> {
    let generated = json!({
        "sidecar_version": 1, "fourk_version": "0.1.0", "image": "hero.png", "index": 0,
        "route": "images.generate", "stream": false, "attempts": 1, "model": "gpt-image-2",
        "request": {"model": "gpt-image-2", "prompt": "a fox", "size": "1024x1024", "quality": "low", "n": 1},
        "response": {"created": 1, "request_id": "req_1", "rate_limits": {}},
        "usage": null, "cost": {"usd": 0.01},
        "checks": {"sha256": "ab".repeat(32), "verified": true, "details": {"checks": []}},
        "warnings": []
    });
    let pipeline = json!({"operation": "upscale", "source": {"prompt": "a fox", "model": "gpt-image-2",
        "settings": "{}", "cost": 0.5}, "checks": {"verified": false}});
    let responses = json!({"route": "responses", "request": {"input": "x", "tools": [{"size": "auto"}]},
        "responses": {"revised_prompt": "y"}});
    vec![
        serde_json::to_vec_pretty(&generated).expect("JSON"),
        serde_json::to_vec(&pipeline).expect("JSON"),
        serde_json::to_vec(&responses).expect("JSON"),
        b"{}".to_vec(),
    ]
}

// ---------------------------------------------------------------------------------------------
// batch manifests

/// A batch manifest, and each of the input's lines as a batch input line.
pub fn manifest(data: &[u8]) {
    let out = Path::new("/out");
    if let Ok(entries) = fourk_core::batch_api::read_manifest(data) {
        for e in entries {
            let _ = format!("{e:?}");
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        let Ok(entry) = fourk_core::batch_api::read_input_line(line, out) else {
            continue;
        };
        // A custom id is untrusted: its output file must land directly in the folder.
        assert_eq!(entry.output.parent(), Some(out), "{entry:?}");
        let name = entry.output.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(!name.is_empty() && !name.starts_with('.'), "{entry:?}");
    }
}

fn manifest_seeds() -> Vec<Vec<u8>> {
    let url = data_url(&tiny_png());
    let gen_body = json!({"model": "gpt-image-2", "prompt": "x", "size": "1024x1024", "quality": "low"});
    let edit_body = json!({"model": "gpt-image-2", "prompt": "x", "images": [{"image_url": url}], "mask": {"image_url": url}});
    let manifest = json!({"version": 2, "batch_id": "batch_1", "input_file_id": "file-1",
    "endpoint": "/v1/images/generations", "jobs": [
        {"custom_id": "a", "output": "/out/a", "request": gen_body},
        {"custom_id": "b", "output": "/out/b", "request": {"model": "gpt-image-2", "prompt": "x",
            "images": [{"image_url": "data:image/png;base64,<1234 bytes>"}]},
         "inputs": [{"part": "images", "filename": "images[0]", "content_type": "image/png", "bytes": 10,
            "sha256": "ab", "width": 16, "height": 16}]}
    ]});
    let lines = format!(
        "{}\n{}\n{}\n",
        json!({"custom_id": "../a", "method": "POST", "url": "/v1/images/generations", "body": gen_body}),
        json!({"custom_id": "b", "method": "POST", "url": "/v1/images/edits", "body": edit_body}),
        json!({"custom_id": "...", "method": "POST", "url": "/v1/images/generations", "body": gen_body}),
    );
    vec![serde_json::to_vec(&manifest).expect("JSON"), lines.into_bytes()]
}

// ---------------------------------------------------------------------------------------------
// images

/// The limits the image target decodes under: small enough that a fuzzer finds their edges.
pub const FUZZ_MAX_DIMENSION: u32 = 4096;
/// The allocation limit the image target decodes under.
pub const FUZZ_MAX_ALLOC: u64 = 64 << 20;

fn fuzz_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(FUZZ_MAX_DIMENSION);
    limits.max_image_height = Some(FUZZ_MAX_DIMENSION);
    limits.max_alloc = Some(FUZZ_MAX_ALLOC);
    limits
}

/// PNG, JPEG and WebP bytes through every decoding entry point.
pub fn image(data: &[u8]) {
    let loaded = fourk_imaging::load_bytes(data, &fuzz_limits());
    if let Ok(img) = &loaded {
        assert!(
            img.width() <= FUZZ_MAX_DIMENSION && img.height() <= FUZZ_MAX_DIMENSION,
            "decoded {}x{} past the limits",
            img.width(),
            img.height()
        );
        assert!(
            img.as_bytes().len() as u64 <= FUZZ_MAX_ALLOC,
            "{} bytes past the limit",
            img.as_bytes().len()
        );
    }
    let expect = fourk_imaging::Expect::default().with_alpha(true);
    let report = fourk_imaging::verify_bytes(data, &expect);
    assert_eq!(report.bytes, data.len() as u64);
    assert_eq!(report.sha256.len(), 64);
    assert!(!report.ok || report.intact, "{report:?}");
    assert_eq!(report.intact, report.decode_error.is_none(), "{report:?}");
    if report.intact {
        let probe = report.probe.as_ref().expect("an intact image has a header");
        assert!(probe.width <= fourk_imaging::MAX_DIMENSION && probe.height <= fourk_imaging::MAX_DIMENSION);
    }
    if let (Ok(img), Some(probe)) = (&loaded, &report.probe) {
        // The header the verifier read is the frame the pipeline decoded.
        assert_eq!(
            (img.width(), img.height()),
            (probe.width, probe.height),
            "{report:?}"
        );
    }
    if let Ok(p) = fourk_imaging::probe_bytes(data) {
        assert!(p.width > 0 && p.height > 0, "{p:?}");
    }
    let _ = fourk_imaging::metadata::extract(data);
    let _ = fourk_imaging::metadata::png_text(data);
}

/// A JPEG (a whole file or a piece of one) the entropy check proves must decode strictly.
pub fn jpeg_check(data: &[u8]) {
    use fourk_imaging::internals::{jpeg_decodes, jpeg_proven};
    if jpeg_proven(data, &mut Vec::new()) {
        assert!(
            jpeg_decodes(data, &mut Vec::new()),
            "proven by the entropy check, refused by the strict decoder"
        );
    }
}

/// Striped JPEGs (restart markers, as fourk writes on several cores) at both subsamplings, a
/// grey one from `image`'s encoder, and pieces cut from them.
fn jpeg_check_seeds() -> Vec<Vec<u8>> {
    use fourk_imaging::{EncodeOptions, JpegSubsampling, encode_with_options};
    // Tall enough to be encoded in strips (the encoder's minimum), narrow to stay small.
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(24, 260, |x, y| {
        Rgb([(x * 6) as u8 ^ (y * 13) as u8, (y * 7) as u8, (x * y) as u8])
    }));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("a pool");
    let mut out = Vec::new();
    for (subsampling, quality) in [(JpegSubsampling::Full, 90), (JpegSubsampling::Half, 60)] {
        let options = EncodeOptions::default().with_jpeg_subsampling(subsampling);
        let jpeg = pool
            .install(|| encode_with_options(&rgb, OutputFormat::Jpeg, Some(quality), &options))
            .expect("encodes");
        out.extend(fourk_imaging::internals::jpeg_pieces(&jpeg, 2).unwrap_or_default());
        out.push(jpeg);
    }
    let grey = DynamicImage::ImageLuma8(image::GrayImage::from_fn(24, 17, |x, y| {
        image::Luma([((x ^ y) * 9) as u8])
    }));
    let mut jpeg = Vec::new();
    grey.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 75))
        .expect("encodes");
    out.push(jpeg);
    out
}

/// A PNG the pipeline's row reader reads must decode with the png crate to the same pixels.
pub fn png_rows(data: &[u8]) {
    use fourk_imaging::internals::{png_crate_pixels, png_rows_pixels};
    if let Some(pixels) = png_rows_pixels(data) {
        assert!(
            png_crate_pixels(data) == Some(pixels),
            "read by the row reader, refused or read otherwise by the png crate"
        );
    }
}

/// Small RGB and RGBA PNGs with every filter type (image's encoder, one filter for all rows)
/// and fourk's own (a filter chosen per row).
fn png_rows_seeds() -> Vec<Vec<u8>> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(23, 9, |x, y| {
        Rgb([(x * 11) as u8 ^ (y * 5) as u8, (y * 29) as u8, (x + y) as u8])
    }));
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(10, 7, |x, y| {
        Rgba([(x * 25) as u8, (y * 36) as u8, 9, (x * y * 3) as u8])
    }));
    let mut out = Vec::new();
    for img in [&rgb, &rgba] {
        for filter in [
            FilterType::NoFilter,
            FilterType::Sub,
            FilterType::Up,
            FilterType::Avg,
            FilterType::Paeth,
        ] {
            let mut png = Vec::new();
            PngEncoder::new_with_quality(&mut png, CompressionType::Fast, filter)
                .write_image(img.as_bytes(), img.width(), img.height(), img.color().into())
                .expect("encodes");
            out.push(png);
        }
        out.push(fourk_imaging::encode(img, OutputFormat::Png, None).expect("encodes"));
    }
    out
}

/// A lossless WebP the entropy check proves must decode with libwebp.
pub fn webp_check(data: &[u8]) {
    use fourk_imaging::internals::{webp_decodes, webp_lossless_proven};
    if webp_lossless_proven(data) {
        assert!(
            webp_decodes(data),
            "proven by the entropy check, refused by libwebp"
        );
    }
}

/// Small lossless WebPs at the fast, default and smallest presets: photographic noise
/// (prediction, references, several code groups), a few colours (colour indexing) and alpha.
fn webp_check_seeds() -> Vec<Vec<u8>> {
    use fourk_imaging::{EncodeOptions, encode_with_options};
    let noise = DynamicImage::ImageRgb8(RgbImage::from_fn(40, 24, |x, y| {
        Rgb([(x * 6) as u8 ^ (y * 13) as u8, (y * 7) as u8, (x * y) as u8])
    }));
    let few = DynamicImage::ImageRgb8(RgbImage::from_fn(33, 9, |x, y| {
        Rgb([[0, 200, 90][((x / 3 + y) % 3) as usize], 40, 7])
    }));
    let alpha = DynamicImage::ImageRgba8(RgbaImage::from_fn(17, 11, |x, y| {
        Rgba([
            (x * 15) as u8,
            3,
            (y * 23) as u8,
            if x < 4 { 0 } else { (x * y) as u8 },
        ])
    }));
    let mut out = Vec::new();
    for img in [&noise, &few, &alpha] {
        for level in [0, 6, 9] {
            let options = EncodeOptions::default().with_webp_lossless_level(level);
            out.push(encode_with_options(img, OutputFormat::Webp, None, &options).expect("encodes"));
        }
    }
    out
}

fn image_seeds() -> Vec<Vec<u8>> {
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(13, 7, |x, y| {
        Rgb([(x * 19) as u8, (y * 31) as u8, 7])
    }));
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(9, 5, |x, y| {
        Rgba([(x * 9) as u8, 3, (y * 40) as u8, (x * 28) as u8])
    }));
    let mut out = Vec::new();
    for (img, fmt, q) in [
        (&rgb, OutputFormat::Png, None),
        (&rgba, OutputFormat::Png, None),
        (&rgb, OutputFormat::Jpeg, Some(80)),
        (&rgb, OutputFormat::Webp, Some(70)),
        (&rgba, OutputFormat::Webp, None),
    ] {
        out.push(fourk_imaging::encode(img, fmt, q).expect("encodes"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds are only worth mutating if they get past validation.
    #[test]
    fn the_jpeg_check_seeds_are_proven_so_mutants_reach_the_assertion() {
        let seeds = jpeg_check_seeds();
        assert!(seeds.len() >= 5, "{}", seeds.len());
        for seed in seeds {
            assert!(fourk_imaging::internals::jpeg_proven(&seed, &mut Vec::new()));
        }
    }

    #[test]
    fn the_png_rows_seeds_are_read_so_mutants_reach_the_assertion() {
        let seeds = png_rows_seeds();
        assert_eq!(seeds.len(), 12);
        for seed in seeds {
            assert!(fourk_imaging::internals::png_rows_pixels(&seed).is_some());
        }
    }

    #[test]
    fn the_webp_check_seeds_are_proven_so_mutants_reach_the_assertion() {
        let seeds = webp_check_seeds();
        assert_eq!(seeds.len(), 9);
        for seed in seeds {
            assert!(fourk_imaging::internals::webp_lossless_proven(&seed));
        }
    }

    #[test]
    fn the_emulator_seeds_are_accepted() {
        for seed in emulator_json_seeds() {
            let route = JSON_ROUTES
                .iter()
                .find(|(c, _)| *c == seed[0])
                .expect("a route")
                .1;
            let status = json_status(route, &seed[1..]);
            let text = String::from_utf8_lossy(&seed);
            match seed[0] {
                // The batch seed names a file this fresh emulator does not have.
                b'b' => assert_eq!(status, Some(404), "{text}"),
                _ if text.contains("[fourk:moderation]") => assert_eq!(status, Some(400), "{text}"),
                _ if text.contains("file-1") => assert_eq!(status, Some(400), "{text}"),
                _ => assert_eq!(status, Some(200), "{text}"),
            }
        }
        for seed in multipart_seeds() {
            assert_eq!(
                multipart_status(&seed),
                Some(200),
                "{}",
                String::from_utf8_lossy(&seed)
            );
        }
    }
}
