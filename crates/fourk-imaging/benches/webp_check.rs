//! Verification of a 4K lossless WebP as `fourk convert --webp-effort 0` writes it: the
//! entropy check against libwebp's full decode it stands in for, on one core.
//!
//! ```text
//! cargo bench -p fourk-imaging --bench webp_check
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fourk_api::OutputFormat;
use fourk_imaging::{EncodeOptions, encode_with_options, internals};
use image::DynamicImage;

// Shared with the save_path bench; only the picture is used here.
#[allow(dead_code)]
mod support;

fn webp_check(c: &mut Criterion) {
    let frame = DynamicImage::ImageRgb8(support::photo_like());
    for level in [0, 6] {
        let options = EncodeOptions::default().with_webp_lossless_level(level);
        let webp = encode_with_options(&frame, OutputFormat::Webp, None, &options).expect("encodes");
        let mut group = c.benchmark_group(format!(
            "4k_webp_lossless_z{level}_{:.1}MB",
            webp.len() as f64 / 1e6
        ));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5))
            .throughput(Throughput::Bytes(webp.len() as u64));
        group.bench_function("libwebp_decode", |b| {
            b.iter(|| assert!(internals::webp_decodes(black_box(&webp))));
        });
        group.bench_function("entropy_check", |b| {
            b.iter(|| assert!(internals::webp_lossless_proven(black_box(&webp))));
        });
        group.finish();
    }
}

criterion_group!(benches, webp_check);
criterion_main!(benches);
