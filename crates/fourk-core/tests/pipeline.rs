//! The pixel pipeline called as a library: typed specs in, summaries out, no binary.

use fourk_api::{OutputFormat, Size};
use fourk_core::UsageError;
use fourk_core::pipeline::{self, Encode, FitSpec, SheetSpec, UpscaleSpec};
use fourk_core::send::Cancelled;
use fourk_imaging::{Filter, FitMode, Gravity, Pad};
use image::{DynamicImage, Rgba, RgbaImage};
use tokio_util::sync::CancellationToken;

fn picture(dir: &std::path::Path) -> std::path::PathBuf {
    let img = RgbaImage::from_fn(64, 32, |x, y| {
        Rgba([(x * 4) as u8, (y * 8) as u8, 90, if x < 4 { 0 } else { 255 }])
    });
    let path = dir.join("in.png");
    let bytes = fourk_imaging::encode(&DynamicImage::ImageRgba8(img), OutputFormat::Png, None).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

fn upscale_spec(input: std::path::PathBuf, out: std::path::PathBuf) -> UpscaleSpec {
    UpscaleSpec {
        input,
        to: Size::new(128, 64),
        out,
        filter: Filter::Lanczos3,
        sharpen: None,
        stretch: false,
        encode: Encode::default(),
    }
}

#[test]
fn upscale_writes_a_verified_file_with_its_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let spec = upscale_spec(picture(dir.path()), dir.path().join("big"));
    let s = pipeline::upscale(&spec, &CancellationToken::new()).unwrap();
    assert_eq!(s.path, dir.path().join("big.png"));
    assert!(s.verified && s.inputs_ok);
    assert_eq!((s.width, s.height, s.format), (128, 64, OutputFormat::Png));
    let car: serde_json::Value = serde_json::from_slice(&std::fs::read(&s.sidecar).unwrap()).unwrap();
    assert_eq!(car["operation"], "upscale");
    assert_eq!(car["parameters"]["filter"], "lanczos3");
    assert_eq!(car["checks"]["verified"], true);
    // The input had transparent pixels: a JPEG cannot hold them without flattening.
    let mut jpeg = upscale_spec(spec.input.clone(), dir.path().join("big.jpg"));
    let e = pipeline::upscale(&jpeg, &CancellationToken::new()).unwrap_err();
    assert!(
        e.downcast_ref::<UsageError>().unwrap().0.contains("--flatten"),
        "{e:#}"
    );
    jpeg.encode.flatten = Some([255, 255, 255]);
    let s = pipeline::upscale(&jpeg, &CancellationToken::new()).unwrap();
    assert!(s.verified && s.format == OutputFormat::Jpeg);
}

#[test]
fn a_cancelled_operation_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = upscale_spec(picture(dir.path()), dir.path().join("big.png"));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let e = pipeline::upscale(&spec, &cancel).unwrap_err();
    assert!(!e.downcast_ref::<Cancelled>().unwrap().possibly_billed);
    assert!(!spec.out.exists());
}

#[test]
fn fit_refuses_auto_and_records_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = FitSpec {
        input: picture(dir.path()),
        to: Size::Auto,
        mode: FitMode::Contain(Pad::Color([0, 0, 0])),
        gravity: Gravity::Point(0.5, 0.25),
        out: dir.path().join("square.png"),
        encode: Encode::default(),
    };
    let e = pipeline::fit(&spec, &CancellationToken::new()).unwrap_err();
    assert!(e.downcast_ref::<UsageError>().unwrap().0.contains("--to auto"));
    spec.to = Size::new(48, 48);
    let s = pipeline::fit(&spec, &CancellationToken::new()).unwrap();
    assert!(s.verified);
    let car: serde_json::Value = serde_json::from_slice(&std::fs::read(&s.sidecar).unwrap()).unwrap();
    assert_eq!(car["parameters"]["mode"], "contain");
    assert_eq!(car["parameters"]["pad"], "#000000");
    assert_eq!(car["parameters"]["gravity"], serde_json::json!([0.5, 0.25]));
}

#[test]
fn a_sheet_with_an_unreadable_picture_is_written_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SheetSpec {
        images: vec![picture(dir.path()), dir.path().join("missing.png")],
        columns: None,
        labels: true,
        cell: 64,
        out: dir.path().join("sheet.png"),
        encode: Encode::default(),
    };
    let s = pipeline::sheet(&spec, &CancellationToken::new()).unwrap();
    assert!(s.verified, "the sheet itself verifies");
    assert!(!s.inputs_ok, "but one picture on it failed");
    let entries = &s.report.as_ref().unwrap()["entries"];
    assert_eq!(entries[0]["ok"], true);
    assert_eq!(entries[1]["ok"], false);
}
