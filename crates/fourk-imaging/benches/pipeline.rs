//! The local pipeline's hot paths at 4K: upscale 2560x1440 to 3840x2160 (each filter, with and
//! without sharpening), cover-fit 1536x1024 to 4K, chroma-key cutout and detail energy.
//!
//! ```text
//! cargo bench -p fourk-imaging --bench pipeline
//! ```
//!
//! For a comparison with libvips, ImageMagick, cwebp and Pillow, run `scripts/bench-pipeline`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fourk_imaging::{
    DEFAULT_FEATHER, DEFAULT_TOLERANCE, Filter, FitMode, Gravity, KeySpec, Upscaler, blank_like, cutout,
    detail_energy, fit,
};
use image::{DynamicImage, Rgb, RgbImage};

/// Cheap deterministic texture with detail at several scales; resampling and keying cost does
/// not depend on content, unlike compression.
fn texture(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 24;
        let v = ((x / 7 + y / 5) % 64) * 3 + n % 32;
        Rgb([v as u8, (v / 2 + 40) as u8, (255 - v) as u8])
    }))
}

fn on_green(w: u32, h: u32) -> DynamicImage {
    let tex = texture(w, h).to_rgb8();
    let (cx, cy, r) = (w as f32 / 2.0, h as f32 / 2.0, h as f32 * 0.35);
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        if (x as f32 - cx).hypot(y as f32 - cy) < r {
            *tex.get_pixel(x, y)
        } else {
            Rgb([20, 200, 60])
        }
    }))
}

fn pipeline(c: &mut Criterion) {
    let qhd = texture(2560, 1440);
    let mut group = c.benchmark_group("pipeline_4k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    let mut upscaler = Upscaler::new();
    let mut dst = blank_like(&qhd, 3840, 2160).expect("4K buffer");
    for (name, filter, sharpen) in [
        ("upscale_lanczos3", Filter::Lanczos3, None),
        ("upscale_catmullrom", Filter::CatmullRom, None),
        ("upscale_mitchell", Filter::Mitchell, None),
        ("upscale_lanczos3_sharpen", Filter::Lanczos3, Some(0.5)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                upscaler
                    .resize_into(black_box(&qhd), &mut dst, filter, sharpen)
                    .expect("resizes");
            });
        });
    }

    let api = texture(1536, 1024);
    group.bench_function("fit_cover_1536x1024", |b| {
        b.iter(|| fit(black_box(&api), 3840, 2160, FitMode::Cover, Gravity::Center).expect("fits"));
    });

    let keyed = on_green(3840, 2160);
    group.bench_function("cutout", |b| {
        b.iter(|| {
            cutout(
                black_box(&keyed),
                KeySpec::Auto,
                DEFAULT_TOLERANCE,
                DEFAULT_FEATHER,
            )
            .expect("keys")
        });
    });

    let uhd = texture(3840, 2160);
    group.bench_function("detail_energy", |b| {
        b.iter(|| detail_energy(black_box(&uhd), None).expect("measures"));
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
