//! JPEG verification of a 4K q90 4:4:4 frame as fourk writes it (restart markers at MCU rows,
//! cut into pieces of whole rows): the entropy check against the strict full decode it stands
//! in for, piece by piece on one core.
//!
//! ```text
//! cargo bench -p fourk-imaging --bench jpeg_check
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fourk_api::OutputFormat;
use fourk_imaging::{EncodeOptions, JpegSubsampling, encode_with_options, internals};
use image::DynamicImage;

// Shared with the save_path bench; only the picture is used here.
#[allow(dead_code)]
mod support;

fn jpeg_check(c: &mut Criterion) {
    let frame = DynamicImage::ImageRgb8(support::photo_like());
    let options = EncodeOptions::default().with_jpeg_subsampling(JpegSubsampling::Full);
    // Encoded in strips on four threads, so the scan has restart markers as on any machine
    // with more than one core.
    let jpeg = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .expect("pool")
        .install(|| encode_with_options(&frame, OutputFormat::Jpeg, Some(90), &options))
        .expect("encodes");
    let pieces = internals::jpeg_pieces(&jpeg, 16).expect("a striped JPEG splits");
    let mut group = c.benchmark_group(format!("4k_jpeg_q90_444_{:.1}MB", jpeg.len() as f64 / 1e6));
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(jpeg.len() as u64));
    let mut buf = Vec::new();
    group.bench_function("strict_decode", |b| {
        b.iter(|| {
            for piece in &pieces {
                assert!(internals::jpeg_decodes(black_box(piece), &mut buf));
            }
        });
    });
    group.bench_function("entropy_check", |b| {
        b.iter(|| {
            for piece in &pieces {
                assert!(internals::jpeg_proven(black_box(piece), &mut buf));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, jpeg_check);
criterion_main!(benches);
