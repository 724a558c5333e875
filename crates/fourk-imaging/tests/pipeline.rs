//! The local pipeline end to end: load untrusted bytes, upscale 2K to 4K without fringes,
//! frame, key out a backdrop, and tell a native render from an upscale by number.

use fourk_api::OutputFormat;
use fourk_imaging::{
    DEFAULT_FEATHER, DEFAULT_TOLERANCE, Expect, Filter, FitMode, Gravity, KeySpec, Pad, PipelineError,
    cutout, detail_energy, encode, fit, load_bytes, load_limits, upscale, verify_bytes,
};
use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};
use proptest::prelude::*;

/// Deterministic texture with detail at every scale, like a photograph's, down to pixel grain.
fn photo(w: u32, h: u32, scale: f32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 * scale, y as f32 * scale);
        let v = (fx * 0.9).sin() * (fy * 1.3).cos() * 60.0
            + (fx * 0.21 + fy * 0.17).sin() * 50.0
            + (fx * 2.7).sin() * (fy * 2.3).sin() * 30.0;
        // Pixel-scale grain: the finest detail, which only a full-resolution render holds.
        let grain = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 27) as f32 - 16.0;
        let base = 128.0 + v + grain;
        Rgb([
            base.clamp(0.0, 255.0) as u8,
            (base * 0.8 + 20.0).clamp(0.0, 255.0) as u8,
            (255.0 - base).clamp(0.0, 255.0) as u8,
        ])
    }))
}

/// Fully transparent black around an opaque white square: the classic fringe test.
fn white_square_on_clear_black(size: u32, square: std::ops::Range<u32>) -> DynamicImage {
    DynamicImage::ImageRgba8(RgbaImage::from_fn(size, size, |x, y| {
        if square.contains(&x) && square.contains(&y) {
            Rgba([255, 255, 255, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    }))
}

#[test]
fn two_k_upscales_to_exact_4k_and_verifies() {
    let src = photo(256, 144, 1.0);
    let big = upscale(&src, 3840, 2160, Filter::Lanczos3, None).unwrap();
    assert_eq!((big.width(), big.height()), (3840, 2160));
    let png = encode(&big, OutputFormat::Png, None).unwrap();
    let report = verify_bytes(
        &png,
        &Expect {
            width: Some(3840),
            height: Some(2160),
            ..Expect::default()
        },
    );
    assert!(report.ok, "{report:?}");
}

#[test]
fn upscaled_transparent_edges_have_no_dark_fringe() {
    let src = white_square_on_clear_black(32, 8..24);
    for filter in [Filter::Lanczos3, Filter::CatmullRom, Filter::Mitchell] {
        let out = upscale(&src, 77, 77, filter, None).unwrap().to_rgba8();
        let edge: Vec<_> = out.pixels().filter(|p| (1..255).contains(&p.0[3])).collect();
        assert!(
            edge.len() > 50,
            "{filter:?}: the upscale should create a soft edge"
        );
        for p in edge {
            // A straight-alpha resize would pull these towards black (the transparent colour).
            assert!(
                p.0[..3].iter().all(|&c| c >= 250),
                "{filter:?}: dark fringe {p:?}"
            );
        }
    }
}

#[test]
fn fitting_an_api_landscape_into_4k_keeps_the_chosen_part() {
    // 1536x1024 (3:2) into 16:9: cover trims top and bottom.
    let mut src = RgbImage::from_pixel(1536, 1024, Rgb([0, 0, 255]));
    for y in 0..60 {
        for x in 0..1536 {
            src.put_pixel(x, y, Rgb([255, 0, 0]));
        }
    }
    let src = DynamicImage::ImageRgb8(src);
    let top = fit(&src, 3840, 2160, FitMode::Cover, Gravity::Top)
        .unwrap()
        .to_rgb8();
    let mid = fit(&src, 3840, 2160, FitMode::Cover, Gravity::Center)
        .unwrap()
        .to_rgb8();
    assert_eq!(top.dimensions(), (3840, 2160));
    assert!(
        top.get_pixel(1920, 20).0[0] > 200,
        "gravity top keeps the red band"
    );
    assert!(mid.get_pixel(1920, 20).0[2] > 200, "gravity centre trims it");

    let boxed = fit(
        &src,
        3840,
        2160,
        FitMode::Contain(Pad::Transparent),
        Gravity::Center,
    )
    .unwrap()
    .to_rgba8();
    assert_eq!(boxed.get_pixel(10, 1080).0[3], 0, "pillarbox");
    assert_eq!(boxed.get_pixel(1920, 1080).0[3], 255);
}

#[test]
fn native_detail_beats_an_upscale_of_the_same_scene() {
    // The same scene at full resolution, and band-limited to half (what a render at half the
    // size holds) then upscaled back.
    let native = photo(1920, 1080, 0.5);
    let small = upscale(&native, 960, 540, Filter::Lanczos3, None).unwrap();
    let upscaled = upscale(&small, 1920, 1080, Filter::Lanczos3, None).unwrap();
    let crop = Some((400, 300, 512, 512));
    let n = detail_energy(&native, crop).unwrap();
    let u = detail_energy(&upscaled, crop).unwrap();
    assert!(u < n * 0.6, "native {n:.2} upscaled {u:.2}");
}

#[test]
fn cutout_report_serialises_for_qa() {
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(120, 90, |x, y| {
        if (40..80).contains(&x) && (25..65).contains(&y) {
            Rgb([250, 240, 230])
        } else {
            Rgb([0, 255, 0])
        }
    }));
    let (out, report) = cutout(&img, KeySpec::Auto, DEFAULT_TOLERANCE, DEFAULT_FEATHER).unwrap();
    assert_eq!(report.key, [0, 255, 0]);
    assert_eq!(out.get_pixel(60, 45).0, [250, 240, 230, 255]);
    let json = serde_json::to_value(report).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "halo_score",
            "key",
            "partial_share",
            "touches_border",
            "transparent_share"
        ]
    );
    assert!((json["transparent_share"].as_f64().unwrap() - (1.0 - 1600.0 / 10800.0)).abs() < 1e-9);
}

#[test]
fn every_pipeline_stage_accepts_what_load_returns() {
    for (fmt, q) in [
        (OutputFormat::Png, None),
        (OutputFormat::Jpeg, Some(85)),
        (OutputFormat::Webp, None),
    ] {
        let bytes = encode(&photo(64, 48, 1.0), fmt, q).unwrap();
        let img = load_bytes(&bytes, &load_limits()).unwrap();
        upscale(&img, 96, 72, Filter::default(), Some(0.5)).unwrap();
        fit(&img, 50, 50, FitMode::Cover, Gravity::Center).unwrap();
        cutout(&img, KeySpec::Auto, 10.0, 10.0).unwrap();
        detail_energy(&img, None).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Mutated files are decoded or rejected, never a panic.
    #[test]
    fn mutated_inputs_never_panic(
        fmt in prop_oneof![Just(OutputFormat::Png), Just(OutputFormat::Jpeg), Just(OutputFormat::Webp)],
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&photo(40, 30, 1.0), fmt, Some(80)).unwrap();
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let keep = cut.index(bytes.len() + 1);
        let _ = load_bytes(&bytes[..keep], &load_limits());
    }

    /// Any target size in range is reached exactly; anything else is a parameter error.
    #[test]
    fn fit_reaches_any_frame(w in 0u32..300, h in 0u32..300, sw in 1u32..80, sh in 1u32..80) {
        let src = photo(sw, sh, 1.0);
        for mode in [FitMode::Cover, FitMode::Contain(Pad::Color([0; 3])), FitMode::Crop(Pad::Transparent)] {
            match fit(&src, w, h, mode, Gravity::Point(0.3, 0.7)) {
                Ok(out) => prop_assert_eq!((out.width(), out.height()), (w, h)),
                Err(e) => {
                    let size_error = matches!(e, PipelineError::InvalidSize { .. });
                    prop_assert!((w == 0 || h == 0) && size_error, "{e}");
                }
            }
        }
    }
}
