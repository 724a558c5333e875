//! Hostile and damaged input: truncated, mutated and random bytes must give `intact == false`
//! or an error, never a panic, and a rejected save must leave only the `.rejected` file.

use std::fs;
use std::path::Path;
use std::sync::LazyLock;

use base64::Engine as _;
use fourk_api::{OutputFormat, Size};
use fourk_imaging::{Expect, ImagingError, encode, probe_bytes, save_verified, verify_bytes};
use image::{DynamicImage, Rgba, RgbaImage};
use proptest::prelude::*;

fn picture(alpha: bool) -> DynamicImage {
    let img = RgbaImage::from_fn(48, 40, |x, y| {
        let a = if alpha && (x + y) % 5 == 0 { 90 } else { 255 };
        Rgba([(x * 5) as u8, (y * 6) as u8, ((x * y) % 256) as u8, a])
    });
    if alpha {
        DynamicImage::ImageRgba8(img)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img).to_rgb8())
    }
}

/// One valid file per decoder path: PNG (RGB, RGBA), JPEG, WebP lossy, lossless and alpha.
static SAMPLES: LazyLock<Vec<(&'static str, Vec<u8>)>> = LazyLock::new(|| {
    vec![
        (
            "png-rgb",
            encode(&picture(false), OutputFormat::Png, None).unwrap(),
        ),
        (
            "png-rgba",
            encode(&picture(true), OutputFormat::Png, None).unwrap(),
        ),
        (
            "jpeg",
            encode(&picture(false), OutputFormat::Jpeg, Some(80)).unwrap(),
        ),
        (
            "webp-lossy",
            encode(&picture(false), OutputFormat::Webp, Some(80)).unwrap(),
        ),
        (
            "webp-lossless",
            encode(&picture(false), OutputFormat::Webp, None).unwrap(),
        ),
        (
            "webp-alpha",
            encode(&picture(true), OutputFormat::Webp, Some(80)).unwrap(),
        ),
    ]
});

fn all_expectations() -> Expect {
    Expect {
        width: Some(48),
        height: Some(40),
        format: None,
        alpha: Some(true),
        thumbnail: None,
    }
}

#[test]
fn samples_are_intact() {
    for (name, bytes) in SAMPLES.iter() {
        let r = verify_bytes(bytes, &Expect::default().with_size(Size::new(48, 40)));
        assert!(r.ok, "{name}: {r:?}");
    }
}

#[test]
fn every_truncation_of_every_sample_is_not_intact() {
    for (name, bytes) in SAMPLES.iter() {
        for cut in 0..bytes.len() {
            let r = verify_bytes(&bytes[..cut], &all_expectations());
            assert!(!r.intact && !r.ok, "{name} cut at {cut}/{}: {r:?}", bytes.len());
            assert!(r.decode_error.is_some());
        }
    }
}

#[test]
fn wrong_width_and_format_fail_naming_both_values() {
    let (_, png) = &SAMPLES[0];
    let expect = Expect::default()
        .with_size(Size::new(3840, 40))
        .with_format(OutputFormat::Webp);
    let r = verify_bytes(png, &expect);
    assert!(r.intact && !r.ok);
    let failed: Vec<_> = r
        .failed_checks()
        .map(|c| (c.name.as_str(), c.expected.as_str(), c.actual.as_str()))
        .collect();
    assert_eq!(failed, [("width", "3840", "48"), ("format", "webp", "png")]);
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn rejected_saves_never_use_the_requested_name_or_leave_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (i, (name, bytes)) in SAMPLES.iter().enumerate() {
        let sub = dir.path().join(format!("{i}"));
        let x = sub.join("x.png");
        // Truncated, then wrong size, then fine: three saves into the same directory.
        let saved = save_verified(&x, &b64.encode(&bytes[..bytes.len() - 1]), &Expect::default()).unwrap();
        assert!(saved.rejected, "{name}");
        let saved = save_verified(
            &x,
            &b64.encode(bytes),
            &Expect::default().with_size(Size::new(1, 1)),
        )
        .unwrap();
        assert!(saved.rejected, "{name}");
        assert_eq!(listing(&sub), ["x.rejected.png"], "{name}");
        assert_eq!(fs::read(sub.join("x.rejected.png")).unwrap(), *bytes);
        let saved = save_verified(&x, &b64.encode(bytes), &Expect::default()).unwrap();
        assert!(!saved.rejected, "{name}");
        assert_eq!(listing(&sub), ["x.png", "x.rejected.png"], "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let r = verify_bytes(&bytes, &all_expectations());
        prop_assert!(!r.ok);
        let _ = probe_bytes(&bytes);
    }

    /// Garbage behind each format's magic bytes reaches the real decoders.
    #[test]
    fn garbage_behind_valid_magic_never_panics(
        which in 0usize..3,
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let magic: &[u8] = match which {
            0 => b"\x89PNG\r\n\x1a\n",
            1 => &[0xFF, 0xD8, 0xFF],
            _ => b"RIFF\x00\x10\x00\x00WEBPVP8 ",
        };
        let bytes = [magic, &tail].concat();
        let r = verify_bytes(&bytes, &all_expectations());
        prop_assert!(!r.ok);
    }

    /// Flipped bytes: whatever the verdict, no panic, and a probe never disagrees with a
    /// report that claims the image is intact.
    #[test]
    fn mutated_samples_never_panic(
        sample in 0usize..6,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = SAMPLES[sample].1.clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let r = verify_bytes(&bytes, &Expect::default());
        if r.intact {
            let probe = probe_bytes(&bytes).ok();
            prop_assert_eq!(r.probe.as_ref(), probe.as_ref());
        }
    }

    #[test]
    fn base64_garbage_is_an_error_not_a_file(s in "[^A-Za-z0-9+/=]{1,64}") {
        let dir = tempfile::tempdir().unwrap();
        let err = save_verified(&dir.path().join("x.png"), &s, &Expect::default()).unwrap_err();
        prop_assert!(matches!(err, ImagingError::Base64(_)));
        prop_assert!(listing(dir.path()).is_empty());
    }
}
