//! The save path against a plain decode of the same 4K PNG.
//!
//! `save_path` is what `fourk generate` does with a response body: parse the JSON (borrowing
//! the base64), decode the base64, verify every pixel, hash, write and fsync to a temporary
//! file and rename it. The target is at most 1.3x `full_png_decode`
//! (`image::load_from_memory`), i.e. verifying and saving should cost about one decode.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fourk_api::{OutputFormat, Size};
use fourk_imaging::{Expect, save_verified};

mod support;

fn save_path(c: &mut Criterion) {
    let png = support::photo_png();
    let body = support::response_body(&png);
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("out.png");
    let expect = Expect::default()
        .with_size(Size::new(support::WIDTH, support::HEIGHT))
        .with_format(OutputFormat::Png);

    let mut group = c.benchmark_group(format!(
        "4k_png_{:.1}MB_body_{:.1}MB",
        png.len() as f64 / 1e6,
        body.len() as f64 / 1e6
    ));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(png.len() as u64));

    group.bench_function("full_png_decode", |b| {
        b.iter(|| image::load_from_memory(black_box(&png)).expect("decodes"));
    });
    group.bench_function("save_path", |b| {
        b.iter_batched(
            // The CLI saves to a new name; renaming over the previous iteration's 18 MB file
            // would add the filesystem's cost of freeing it (about 10 ms on ext4), so remove
            // it untimed.
            || {
                let _ = std::fs::remove_file(&target);
            },
            |()| {
                let parsed: support::Body<'_> = serde_json::from_str(black_box(&body)).expect("body parses");
                let saved = save_verified(&target, &parsed.data[0].b64_json, &expect).expect("saves");
                assert!(!saved.rejected, "{:?}", saved.report);
                saved
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, save_path);
criterion_main!(benches);
