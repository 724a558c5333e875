//! The SSE decoder against `eventsource-stream` (the decoder async-openai uses), on what an
//! image stream looks like: one `data:` line of several megabytes (a 4K image in base64)
//! arriving in 16 KiB network chunks, and many small events.
//!
//! Run with `cargo bench -p fourk-client --bench sse`. `eventsource-stream` keeps its pending
//! text in one `String`, re-parses it from the start on every chunk and copies the rest on
//! every line, so its time grows with the square of the line length; fourk's decoder scans
//! each byte once and copies a line at most once.
//!
//! On the 2-core development machine (release profile, other builds running):
//!
//! | input               | fourk    | eventsource-stream |
//! |---------------------|----------|--------------------|
//! | one 1 MB line       | 0.07 ms  | 68 ms              |
//! | one 4 MB line       | 0.38 ms  | 1.2 s              |
//! | one 12 MB line      | 2.8 ms   | 8.5 s (run once)   |
//! | 10,000 small events | 3.8 ms   | 22 ms              |

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use fourk_client::sse::SseDecoder;
use futures_util::{FutureExt, StreamExt};

const CHUNK: usize = 16 * 1024;

fn one_big_event(bytes: usize) -> Vec<Bytes> {
    let b64 = "QUJD".repeat(bytes / 4);
    let body = format!(
        "event: image_generation.completed\ndata: {{\"type\":\"image_generation.completed\",\"b64_json\":\"{b64}\"}}\n\n"
    );
    body.as_bytes()
        .chunks(CHUNK)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn many_small_events(n: usize) -> Vec<Bytes> {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "event: response.image_generation_call.generating\ndata: {{\"type\":\"response.image_generation_call.generating\",\"item_id\":\"ig_1\",\"output_index\":0,\"sequence_number\":{i}}}\n\n: keep-alive\n\n"
        ));
    }
    body.as_bytes()
        .chunks(CHUNK)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn fourk(chunks: &[Bytes]) -> usize {
    let mut d = SseDecoder::new();
    let mut total = 0;
    for c in chunks {
        d.push(c.clone());
        while let Some(e) = d.next_event() {
            total += e.data.len();
        }
    }
    total + d.finish().map_or(0, |e| e.data.len())
}

fn eventsource(chunks: &[Bytes]) -> usize {
    let stream = futures_util::stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>)).eventsource();
    // Every item is ready at once, so one poll runs the whole stream.
    stream
        .fold(0, |acc, e| async move { acc + e.map_or(0, |e| e.data.len()) })
        .now_or_never()
        .expect("an in-memory stream completes in one poll")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("one data line");
    g.sample_size(10);
    for mb in [1usize, 4, 12] {
        let chunks = one_big_event(mb * 1024 * 1024);
        if mb <= 4 {
            assert_eq!(fourk(&chunks), eventsource(&chunks));
        }
        g.throughput(Throughput::Bytes((mb * 1024 * 1024) as u64));
        g.bench_with_input(BenchmarkId::new("fourk", format!("{mb} MB")), &chunks, |b, c| {
            b.iter(|| fourk(black_box(c)));
        });
        // At 12 MB one eventsource-stream iteration takes seconds; 1 and 4 MB show the curve.
        if mb <= 4 {
            g.bench_with_input(
                BenchmarkId::new("eventsource-stream", format!("{mb} MB")),
                &chunks,
                |b, c| {
                    b.iter(|| eventsource(black_box(c)));
                },
            );
        }
    }
    g.finish();

    let mut g = c.benchmark_group("small events");
    let chunks = many_small_events(10_000);
    assert_eq!(fourk(&chunks), eventsource(&chunks));
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("fourk", |b| b.iter(|| fourk(black_box(&chunks))));
    g.bench_function("eventsource-stream", |b| {
        b.iter(|| eventsource(black_box(&chunks)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
