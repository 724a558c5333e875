//! The cost of `#[serde(flatten)] settings: ImageSettings` on the answers that carry a 4K
//! image: an Image API body (borrowed, as the client parses it) and a streamed completed
//! event, each against a struct of the same shape with the four settings as plain fields
//! (the layout before the flatten), side by side in one run.
//!
//! `cargo bench -p fourk-api --bench settings_flatten`

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fourk_api::{ImageStreamEvent, ImagesResponseRef, Usage};
use serde::Deserialize;

/// A 4K PNG is about 15 MB of base64.
const B64_LEN: usize = 15 * 1024 * 1024;

fn b64() -> String {
    "QUJD".repeat(B64_LEN / 4)
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainRef<'a> {
    created: i64,
    #[serde(default, borrow)]
    data: Vec<PlainData<'a>>,
    #[serde(default, borrow)]
    background: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    output_format: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    quality: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    size: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainData<'a> {
    #[serde(default, borrow)]
    b64_json: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
#[allow(dead_code)]
enum PlainEvent {
    #[serde(rename = "image_generation.completed")]
    Completed(PlainCompleted),
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainCompleted {
    b64_json: String,
    background: Option<String>,
    created_at: Option<i64>,
    output_format: Option<String>,
    quality: Option<String>,
    size: Option<String>,
    usage: Option<Usage>,
}

fn bench(c: &mut Criterion) {
    let b = b64();
    let body = format!(
        r#"{{"created":1,"data":[{{"b64_json":"{b}"}}],"background":"opaque","output_format":"png","quality":"high","size":"3840x2160","usage":{{"input_tokens":5,"output_tokens":13342,"total_tokens":13347}}}}"#
    )
    .into_bytes();
    let event = format!(
        r#"{{"type":"image_generation.completed","b64_json":"{b}","background":"opaque","created_at":1,"output_format":"png","quality":"high","size":"3840x2160","usage":{{"input_tokens":5,"output_tokens":13342,"total_tokens":13347}}}}"#
    )
    .into_bytes();
    let mut g = c.benchmark_group("images_body_15MB");
    g.sample_size(20);
    g.bench_function("flattened", |bch| {
        bch.iter(|| {
            let r: ImagesResponseRef<'_> = serde_json::from_slice(black_box(&body)).unwrap();
            r.data.len()
        });
    });
    g.bench_function("plain_fields", |bch| {
        bch.iter(|| {
            let r: PlainRef<'_> = serde_json::from_slice(black_box(&body)).unwrap();
            r.data.len()
        });
    });
    g.finish();
    let mut g = c.benchmark_group("completed_event_15MB");
    g.sample_size(20);
    g.bench_function("flattened", |bch| {
        bch.iter(|| {
            let e: ImageStreamEvent = serde_json::from_slice(black_box(&event)).unwrap();
            e.completed().map(|c| c.b64_json.len())
        });
    });
    g.bench_function("plain_fields", |bch| {
        bch.iter(|| {
            let e: PlainEvent = serde_json::from_slice(black_box(&event)).unwrap();
            let PlainEvent::Completed(c) = e;
            c.b64_json.len()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
