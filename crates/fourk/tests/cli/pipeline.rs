//! The local pipeline commands (`upscale`, `fit`, `convert`, `cutout`, `sheet`, `compare`)
//! run as a user runs them: the binary on files in a temporary folder. Generated inputs come
//! from the in-process emulator.

use std::path::Path;
use std::process::Output;

use image::{DynamicImage, GenericImageView, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::Value;

use crate::common::{fourk, fourk_unsent, json_stdout, sha256_hex, sidecar};

#[path = "../../../fourk-matte/tests/support/onnx.rs"]
mod onnx;

fn run(dir: &Path, args: &[&str]) -> Output {
    run_env(dir, &[], args)
}

fn run_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let out = fourk()
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    out
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    ok_env(dir, &[], args)
}

fn ok_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let out = run_env(dir, env, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs, expects `code`, and returns stderr.
fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    fails_env(dir, &[], args, code)
}

/// [`fails`] with extra environment variables.
fn fails_env(dir: &Path, env: &[(&str, &str)], args: &[&str], code: i32) -> String {
    let out = run_env(dir, env, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}\nstderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn sha256(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

/// A photographic-ish texture with a transparent band on the left when `alpha`.
fn picture(w: u32, h: u32, alpha: bool) -> DynamicImage {
    let rgba = RgbaImage::from_fn(w, h, |x, y| {
        let v = ((x * 7919 + y * 104_729) ^ (x * y)) % 251;
        let a = if alpha && x < w / 4 { 0 } else { 255 };
        Rgba([v as u8, (x * 255 / w) as u8, (y * 255 / h) as u8, a])
    });
    if alpha {
        DynamicImage::ImageRgba8(rgba)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).to_rgb8())
    }
}

fn save(img: &DynamicImage, path: &Path) {
    img.save(path).unwrap();
}

// --- hand-built metadata chunks: independent of fourk's own writer ---------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Insert PNG chunks right after IHDR.
fn png_with_chunks(png: &[u8], chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let at = 8 + 12 + 13;
    let mut out = png[..at].to_vec();
    for (tag, data) in chunks {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(*tag);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc32(&[&tag[..], data].concat()).to_be_bytes());
    }
    out.extend_from_slice(&png[at..]);
    out
}

/// Insert JPEG segments right after SOI.
fn jpeg_with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for (marker, body) in segments {
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

const TIFF: &[u8] = b"MM\0\x2a\0\0\0\x08\0\0";
const XMP: &[u8] = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF/></x:xmpmeta>";
const JUMBF: &[u8] = b"\0\0\0\x10jumbc2pa";

fn png_xmp_itxt() -> Vec<u8> {
    [b"XML:com.adobe.xmp\0\0\0\0\0".as_slice(), XMP].concat()
}

/// The chunk types of a PNG, in order.
fn png_chunk_types(bytes: &[u8]) -> Vec<String> {
    let mut at = 8;
    let mut out = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        at += 12 + len;
    }
    out
}

fn png_text(path: &Path) -> Vec<(String, String)> {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let reader = dec.read_info().unwrap();
    let info = reader.info();
    let mut out: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect();
    out.extend(
        info.utf8_text
            .iter()
            .map(|t| (t.keyword.clone(), t.get_text().unwrap())),
    );
    out
}

fn text<'a>(t: &'a [(String, String)], key: &str) -> Option<&'a str> {
    t.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn generate(dir: &Path, prompt: &str, out: &str, size: &str) {
    ok(
        dir,
        &[
            "generate",
            prompt,
            "--emulator",
            "--size",
            size,
            "--quality",
            "low",
            "--out",
            out,
        ],
    );
}

// --- 1. upscale ----------------------------------------------------------------------------

#[test]
fn upscale_reaches_the_exact_target_keeps_alpha_and_records_a_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&picture(256, 144, true), &d.join("in.png"));
    let out = ok(
        d,
        &[
            "upscale",
            "in.png",
            "--to",
            "512x288",
            "--out",
            "out.png",
            "--sharpen",
            "0.5",
            "--json",
        ],
    );
    let v = json_stdout(&out);
    assert_eq!(v["width"], 512);
    assert_eq!(v["height"], 288);
    assert_eq!(v["format"], "png");
    assert_eq!(v["verified"], true);
    let img = image::open(d.join("out.png")).unwrap();
    assert_eq!(img.dimensions(), (512, 288));
    let rgba = img.to_rgba8();
    assert_eq!(rgba.get_pixel(10, 100).0[3], 0, "transparent band kept");
    assert_eq!(rgba.get_pixel(400, 100).0[3], 255);

    let car = sidecar(&d.join("out.png"));
    assert_eq!(car["operation"], "upscale");
    assert_eq!(car["inputs"][0]["sha256"], sha256(&d.join("in.png")));
    assert_eq!(car["inputs"][0]["width"], 256);
    assert_eq!(car["parameters"]["filter"], "lanczos3");
    assert_eq!(car["parameters"]["sharpen"], 0.5);
    assert_eq!(car["parameters"]["to"], "512x288");
    assert_eq!(car["checks"]["verified"], true);
    assert_eq!(car["checks"]["sha256"], sha256(&d.join("out.png")));
    assert_eq!(car["checks"]["details"]["checks"][3]["name"], "alpha");
    assert_eq!(car["checks"]["details"]["checks"][3]["pass"], true);
    for step in ["decode", "process", "encode", "verify", "write", "total"] {
        assert!(car["timings_ms"][step].is_number(), "{step}: {car}");
    }
    // The output verifies as a user would check it.
    ok(d, &["verify", "out.png", "--expect", "512x288", "--alpha"]);
}

#[test]
fn upscale_takes_presets_filters_and_output_formats() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&picture(640, 360, false), &d.join("master.png"));
    ok(
        d,
        &[
            "upscale",
            "master.png",
            "--to",
            "4k",
            "--out",
            "hero.png",
            "--png-level",
            "fast",
        ],
    );
    assert_eq!(
        image::open(d.join("hero.png")).unwrap().dimensions(),
        (3840, 2160)
    );
    let out = ok(
        d,
        &[
            "upscale",
            "master.png",
            "--to",
            "2k",
            "--filter",
            "mitchell",
            "--out",
            "hero.jpg",
            "--quality",
            "85",
            "--json",
        ],
    );
    assert_eq!(json_stdout(&out)["format"], "jpeg");
    assert_eq!(sidecar(&d.join("hero.jpg"))["output"]["quality"], 85);
    ok(
        d,
        &[
            "upscale",
            "master.png",
            "--to",
            "1280x720",
            "--filter",
            "catmull-rom",
            "--out",
            "hero.webp",
        ],
    );
    assert_eq!(sidecar(&d.join("hero.webp"))["output"]["lossless"], true);
}

#[test]
fn upscale_refuses_stretching_auto_and_bad_amounts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&picture(100, 100, false), &d.join("sq.png"));
    let e = fails(d, &["upscale", "sq.png", "--to", "4k", "--out", "x.png"], 2);
    assert!(e.contains("aspect ratio") && e.contains("fourk fit"), "{e}");
    ok(
        d,
        &[
            "upscale",
            "sq.png",
            "--to",
            "300x200",
            "--stretch",
            "--out",
            "x.png",
        ],
    );
    let e = fails(d, &["upscale", "sq.png", "--to", "auto", "--out", "y.png"], 2);
    assert!(e.contains("--to 4k"), "{e}");
    let e = fails(
        d,
        &[
            "upscale",
            "sq.png",
            "--to",
            "200x200",
            "--sharpen",
            "9",
            "--out",
            "y.png",
        ],
        2,
    );
    assert!(e.contains("sharpen"), "{e}");
    let e = fails(d, &["upscale", "sq.png", "--to", "16:9", "--out", "y.png"], 2);
    assert!(e.contains("aspect ratio"), "{e}");
    assert!(!d.join("y.png").exists());
}

// --- 2. fit --------------------------------------------------------------------------------

#[test]
fn fit_covers_contains_and_crops_to_the_exact_frame() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Top half red, bottom half blue.
    let sq = RgbImage::from_fn(200, 200, |_, y| {
        if y < 100 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    save(&DynamicImage::ImageRgb8(sq), &d.join("sq.png"));

    ok(
        d,
        &[
            "fit",
            "sq.png",
            "--to",
            "320x180",
            "--mode",
            "cover",
            "--gravity",
            "top",
            "--out",
            "top.png",
        ],
    );
    let top = image::open(d.join("top.png")).unwrap().to_rgb8();
    assert_eq!(top.dimensions(), (320, 180));
    assert!(top.get_pixel(160, 10).0[0] > 240, "top kept");

    ok(
        d,
        &[
            "fit", "sq.png", "--to", "320x180", "--mode", "contain", "--pad", "#00ff00", "--out", "pad.png",
        ],
    );
    let pad = image::open(d.join("pad.png")).unwrap().to_rgb8();
    assert_eq!(pad.get_pixel(2, 90).0, [0, 255, 0]);
    assert!(pad.get_pixel(160, 20).0[0] > 240);

    ok(
        d,
        &[
            "fit",
            "sq.png",
            "--to",
            "320x180",
            "--mode",
            "contain",
            "--out",
            "clear.webp",
        ],
    );
    let clear = image::open(d.join("clear.webp")).unwrap().to_rgba8();
    assert_eq!(clear.get_pixel(2, 90).0[3], 0);

    ok(
        d,
        &[
            "fit",
            "sq.png",
            "--to",
            "50x50",
            "--mode",
            "crop",
            "--gravity",
            "0.5,1",
            "--out",
            "crop.png",
        ],
    );
    let crop = image::open(d.join("crop.png")).unwrap().to_rgb8();
    assert_eq!(crop.get_pixel(25, 25).0, [0, 0, 255]);
    let car = sidecar(&d.join("crop.png"));
    assert_eq!(car["parameters"]["mode"], "crop");
    assert_eq!(car["parameters"]["gravity"], serde_json::json!([0.5, 1.0]));

    let e = fails(
        d,
        &[
            "fit", "sq.png", "--to", "320x180", "--mode", "contain", "--out", "pad.jpg",
        ],
        2,
    );
    assert!(e.contains("--flatten") && e.contains("jpeg"), "{e}");
    ok(
        d,
        &[
            "fit",
            "sq.png",
            "--to",
            "320x180",
            "--mode",
            "contain",
            "--flatten",
            "#ffffff",
            "--out",
            "pad.jpg",
        ],
    );
    let e = fails(
        d,
        &[
            "fit",
            "sq.png",
            "--to",
            "320x180",
            "--gravity",
            "north",
            "--out",
            "g.png",
        ],
        2,
    );
    assert!(e.contains("expected center"), "{e}");
}

// --- 3. convert ----------------------------------------------------------------------------

#[test]
fn convert_writes_every_format_and_refuses_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = picture(120, 80, false);
    save(&src, &d.join("in.png"));

    let v = json_stdout(&ok(
        d,
        &["convert", "in.png", "--out", "a.jpg", "--quality", "80", "--json"],
    ));
    assert_eq!(v["format"], "jpeg");
    let v = json_stdout(&ok(
        d,
        &[
            "convert", "in.png", "--format", "webp", "--out", "b.webp", "--json",
        ],
    ));
    assert_eq!(v["format"], "webp");
    // WebP without --quality is lossless: every pixel survives.
    assert_eq!(image::open(d.join("b.webp")).unwrap().to_rgb8(), src.to_rgb8());
    let lossy = json_stdout(&ok(
        d,
        &[
            "convert",
            "in.png",
            "--out",
            "c.webp",
            "--quality",
            "50",
            "--json",
        ],
    ));
    assert!(lossy["bytes"].as_u64() < v["bytes"].as_u64());
    ok(d, &["convert", "a.jpg", "--out", "d.png", "--png-level", "best"]);
    assert_eq!(sidecar(&d.join("d.png"))["output"]["png_level"], "best");
    // Lossless WebP effort, cwebp's -z levels: both ends lossless, the effort on record; the
    // default (no flag) is level 2 byte for byte and records none.
    let photo = DynamicImage::ImageRgb8(image::RgbImage::from_fn(256, 192, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 29;
        image::Rgb([(x / 2 + n) as u8, (y + n) as u8, ((x + y) / 3) as u8])
    }));
    save(&photo, &d.join("photo.png"));
    let mut sizes = Vec::new();
    for effort in ["0", "2", "9"] {
        let out = format!("e{effort}.webp");
        let v = json_stdout(&ok(
            d,
            &[
                "convert",
                "photo.png",
                "--out",
                &out,
                "--webp-effort",
                effort,
                "--json",
            ],
        ));
        assert_eq!(
            image::open(d.join(&out)).unwrap().to_rgb8(),
            photo.to_rgb8(),
            "effort {effort}"
        );
        assert_eq!(
            sidecar(&d.join(&out))["output"]["webp_effort"],
            effort.parse::<u64>().unwrap()
        );
        sizes.push(v["bytes"].as_u64().unwrap());
    }
    assert!(sizes[0] > sizes[2], "effort 0 is larger than effort 9: {sizes:?}");
    ok(d, &["convert", "photo.png", "--out", "edefault.webp"]);
    assert_eq!(sha256(&d.join("edefault.webp")), sha256(&d.join("e2.webp")));
    assert!(
        sidecar(&d.join("edefault.webp"))["output"]
            .get("webp_effort")
            .is_none()
    );

    for (args, needle) in [
        (
            &["convert", "in.png", "--out", "x.jpg", "--lossless"][..],
            "--lossless is impossible with JPEG",
        ),
        (
            &["convert", "in.png", "--out", "x.png", "--quality", "80"],
            "does not apply to PNG",
        ),
        (
            &["convert", "in.png", "--out", "x.webp", "--png-level", "fast"],
            "applies to PNG only",
        ),
        (
            &[
                "convert",
                "in.png",
                "--out",
                "x.webp",
                "--lossless",
                "--quality",
                "80",
            ],
            "contradict",
        ),
        (&["convert", "in.png", "--out", "x.tif"], "does not write"),
        (
            &[
                "convert",
                "in.png",
                "--out",
                "x.webp",
                "--quality",
                "80",
                "--webp-effort",
                "0",
            ],
            "lossless WebP only",
        ),
        (
            &["convert", "in.png", "--out", "x.png", "--webp-effort", "0"],
            "lossless WebP only",
        ),
        (
            &["convert", "in.png", "--out", "x.webp", "--webp-effort", "10"],
            "0..=9",
        ),
        (
            &["convert", "in.png", "--out", "x.png", "--format", "jpeg"],
            "does not match",
        ),
        (
            &["convert", "in.png", "--out", "x.png", "--quality", "101"],
            "101",
        ),
        (
            &["convert", "in.png", "--out", "x.png", "--meta", "bad  key=v"],
            "PNG keyword rule",
        ),
    ] {
        let e = fails(d, args, 2);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    save(&picture(40, 40, true), &d.join("alpha.png"));
    let e = fails(d, &["convert", "alpha.png", "--out", "x.jpg"], 2);
    assert!(e.contains("--flatten"), "{e}");
    assert!(!d.join("x.jpg").exists());
}

#[test]
fn png_to_jpeg_streams_and_writes_the_bytes_of_a_decoded_frame() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Tall enough to be cut into strips (256 rows and up); opaque RGB and RGBA.
    let rgb = picture(640, 400, false);
    save(&rgb, &d.join("rgb.png"));
    save(&DynamicImage::ImageRgba8(rgb.to_rgba8()), &d.join("rgba.png"));
    // Two cores whatever the machine has: the stream needs a second one.
    let convert = |args: &[&str]| ok_env(d, &[("RAYON_NUM_THREADS", "2")], args);
    for name in ["rgb", "rgba"] {
        let (input, streamed, frame) = (
            format!("{name}.png"),
            format!("{name}.jpg"),
            format!("{name}-frame.jpg"),
        );
        convert(&["convert", &input, "--quality", "90", "--out", &streamed]);
        // --flatten makes convert decode a frame and encode it (there is nothing to flatten).
        convert(&[
            "convert",
            &input,
            "--quality",
            "90",
            "--flatten",
            "#000000",
            "--out",
            &frame,
        ]);
        assert_eq!(sha256(&d.join(&streamed)), sha256(&d.join(&frame)), "{name}");
        let timings = &sidecar(&d.join(&streamed))["timings_ms"];
        assert!(
            timings["decode_encode"].is_number() && timings["encode"].is_null(),
            "{timings}"
        );
        let timings = &sidecar(&d.join(&frame))["timings_ms"];
        assert!(
            timings["encode"].is_number() && timings["decode_encode"].is_null(),
            "{timings}"
        );
        assert_eq!(
            sidecar(&d.join(&streamed))["checks"],
            sidecar(&d.join(&frame))["checks"]
        );
        ok(d, &["verify", &streamed, "--expect", "640x400"]);
    }
}

// --- 4. metadata ---------------------------------------------------------------------------

#[test]
fn provenance_is_carried_into_the_same_format_and_reported_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut png = Vec::new();
    picture(160, 90, false)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let png = png_with_chunks(
        &png,
        &[
            (b"eXIf", TIFF.to_vec()),
            (b"iTXt", png_xmp_itxt()),
            (b"caBX", JUMBF.to_vec()),
        ],
    );
    std::fs::write(d.join("signed.png"), &png).unwrap();

    let v = json_stdout(&ok(
        d,
        &[
            "upscale",
            "signed.png",
            "--to",
            "320x180",
            "--out",
            "up.png",
            "--json",
        ],
    ));
    let kinds: Vec<&str> = v["metadata"]["carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["exif", "xmp", "c2pa"]);
    assert!(
        v["metadata"]["carried"][2]["note"]
            .as_str()
            .unwrap()
            .contains("hash binding")
    );
    let bytes = std::fs::read(d.join("up.png")).unwrap();
    let types = png_chunk_types(&bytes);
    for t in ["eXIf", "iTXt", "caBX", "IDAT", "IEND"] {
        assert!(types.iter().any(|x| x == t), "{t} missing: {types:?}");
    }
    let idat = types.iter().position(|t| t == "IDAT").unwrap();
    assert!(types.iter().position(|t| t == "eXIf").unwrap() < idat);
    assert!(bytes.windows(XMP.len()).any(|w| w == XMP));
    ok(d, &["verify", "up.png", "--expect", "320x180"]);
    assert_eq!(
        sidecar(&d.join("up.png"))["metadata"]["carried"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Another format: nothing carried, each block reported with the reason.
    let v = json_stdout(&ok(d, &["convert", "signed.png", "--out", "flat.jpg", "--json"]));
    let dropped = v["metadata"]["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 3, "{v}");
    assert!(
        dropped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("source is png and the output is jpeg")
    );
    assert_eq!(
        sidecar(&d.join("flat.jpg"))["metadata"]["dropped"],
        v["metadata"]["dropped"]
    );

    // JPEG: APP1 Exif, APP1 XMP and APP11 JUMBF survive a JPEG-to-JPEG resize.
    let mut jpg = Vec::new();
    picture(160, 90, false)
        .write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg)
        .unwrap();
    let jpg = jpeg_with_segments(
        &jpg,
        &[
            (0xE1, [b"Exif\0\0".as_slice(), TIFF].concat()),
            (0xE1, [b"http://ns.adobe.com/xap/1.0/\0".as_slice(), XMP].concat()),
            (0xEB, [b"JP\x02\x11\0\0\0\x01".as_slice(), JUMBF].concat()),
        ],
    );
    std::fs::write(d.join("signed.jpg"), &jpg).unwrap();
    let v = json_stdout(&ok(
        d,
        &[
            "fit",
            "signed.jpg",
            "--to",
            "100x100",
            "--out",
            "sq.jpg",
            "--quality",
            "90",
            "--json",
        ],
    ));
    assert_eq!(v["metadata"]["carried"].as_array().unwrap().len(), 3, "{v}");
    let out = std::fs::read(d.join("sq.jpg")).unwrap();
    assert!(out.windows(6).any(|w| w == b"Exif\0\0"));
    assert!(out.windows(XMP.len()).any(|w| w == XMP));
    assert!(out.windows(JUMBF.len()).any(|w| w == JUMBF));
    assert_eq!(image::load_from_memory(&out).unwrap().dimensions(), (100, 100));
    ok(
        d,
        &["verify", "sq.jpg", "--expect", "100x100", "--format", "jpeg"],
    );

    // WebP: EXIF and XMP chunks, with the VP8X flags set, survive WebP to WebP.
    let webp =
        fourk_imaging::encode(&picture(160, 90, false), fourk_api::OutputFormat::Webp, Some(80)).unwrap();
    let blocks = [
        fourk_imaging::Provenance::new(
            fourk_imaging::MetaKind::Exif,
            fourk_api::OutputFormat::Webp,
            TIFF.to_vec(),
        ),
        fourk_imaging::Provenance::new(
            fourk_imaging::MetaKind::Xmp,
            fourk_api::OutputFormat::Webp,
            XMP.to_vec(),
        ),
    ];
    let (webp, _) =
        fourk_imaging::metadata::embed(webp, fourk_api::OutputFormat::Webp, &blocks, &[]).unwrap();
    std::fs::write(d.join("signed.webp"), &webp).unwrap();
    let v = json_stdout(&ok(
        d,
        &[
            "convert",
            "signed.webp",
            "--out",
            "again.webp",
            "--quality",
            "70",
            "--json",
        ],
    ));
    assert_eq!(v["metadata"]["carried"].as_array().unwrap().len(), 2, "{v}");
    let out = std::fs::read(d.join("again.webp")).unwrap();
    assert_eq!(&out[12..16], b"VP8X");
    assert_eq!(out[20] & 0x0C, 0x0C, "EXIF and XMP flags");
    assert!(out.windows(4).any(|w| w == b"EXIF") && out.windows(XMP.len()).any(|w| w == XMP));
    ok(
        d,
        &["verify", "again.webp", "--expect", "160x90", "--format", "webp"],
    );
}

#[test]
fn prompt_model_and_settings_follow_the_picture_into_png_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "a lighthouse at dawn", "draft.png", "1024x1024");
    ok(
        d,
        &[
            "upscale",
            "draft.png",
            "--to",
            "2048x2048",
            "--out",
            "big.png",
            "--meta",
            "title=Lighthouse",
            "--meta",
            "caption=Leuchtturm ☀",
        ],
    );
    let t = png_text(&d.join("big.png"));
    assert_eq!(text(&t, "prompt"), Some("a lighthouse at dawn"));
    assert_eq!(text(&t, "model"), Some("gpt-image-2"));
    assert!(text(&t, "fourk:settings").unwrap().contains("1024x1024"));
    assert_eq!(text(&t, "title"), Some("Lighthouse"));
    assert_eq!(text(&t, "caption"), Some("Leuchtturm ☀"));
    assert!(text(&t, "Software").unwrap().starts_with("fourk "));
    let car = sidecar(&d.join("big.png"));
    assert_eq!(car["source"]["prompt"], "a lighthouse at dawn");
    assert_eq!(car["source"]["made_by"], "images.generate");
    assert_eq!(car["source"]["verified"], true);
    assert_eq!(car["source"]["sha256_matches"], true);
    assert!(car["source"]["cost"]["usd"].as_f64().unwrap() > 0.0);

    // A second step reads the first step's sidecar and keeps the chain.
    ok(
        d,
        &["convert", "big.png", "--out", "big2.png", "--png-level", "fast"],
    );
    let t = png_text(&d.join("big2.png"));
    assert_eq!(text(&t, "prompt"), Some("a lighthouse at dawn"));
    assert_eq!(text(&t, "title"), Some("Lighthouse"));
    assert_eq!(sidecar(&d.join("big2.png"))["source"]["made_by"], "upscale");

    // JPEG has no text chunks: the sidecar says so.
    let v = json_stdout(&ok(d, &["convert", "big.png", "--out", "big.jpg", "--json"]));
    assert_eq!(v["metadata"]["dropped"][0]["kind"], "text");
}

// --- 5. cutout -----------------------------------------------------------------------------

/// A red-orange disc on green with a little noise.
fn disc_on_green(w: u32, h: u32) -> DynamicImage {
    let (cx, cy, r) = (w as f32 / 2.0, h as f32 / 2.0, h as f32 / 3.0);
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let d = (x as f32 + 0.5 - cx).hypot(y as f32 + 0.5 - cy);
        let cover = (r + 0.5 - d).clamp(0.0, 1.0);
        let noise = ((x * 31 + y * 17) % 7) as f32 - 3.0;
        let (fg, bg) = ([230.0, 90.0, 40.0], [0.0 + noise, 177.0 + noise, 64.0 + noise]);
        let mix = |i: usize| (cover * fg[i] + (1.0 - cover) * bg[i]).round().clamp(0.0, 255.0) as u8;
        Rgb([mix(0), mix(1), mix(2)])
    }))
}

#[test]
fn cutout_keys_out_the_backdrop_and_reports_qa() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&disc_on_green(300, 200), &d.join("green.png"));
    let v = json_stdout(&ok(d, &["cutout", "green.png", "--out", "cut.png", "--json"]));
    let r = &v["report"];
    let disc = std::f64::consts::PI * (200.0f64 / 3.0).powi(2) / 60_000.0;
    assert!(
        (r["transparent_share"].as_f64().unwrap() - (1.0 - disc)).abs() < 0.03,
        "{r}"
    );
    assert!(r["halo_score"].as_f64().unwrap() < 0.05, "{r}");
    assert_eq!(r["touches_border"], false);
    assert!(r["key"][1].as_u64().unwrap() > 170);
    let img = image::open(d.join("cut.png")).unwrap().to_rgba8();
    assert_eq!(img.get_pixel(3, 3).0[3], 0);
    assert_eq!(img.get_pixel(150, 100).0, [230, 90, 40, 255]);
    let car = sidecar(&d.join("cut.png"));
    assert_eq!(car["report"], v["report"]);
    assert_eq!(car["parameters"]["method"], "chroma-key");
    assert_eq!(car["checks"]["verified"], true);
    ok(d, &["verify", "cut.png", "--alpha"]);

    ok(
        d,
        &[
            "cutout",
            "green.png",
            "--key",
            "#00b140",
            "--tolerance",
            "30",
            "--feather",
            "10",
            "--out",
            "cut2.webp",
        ],
    );
    assert!(image::open(d.join("cut2.webp")).unwrap().color().has_alpha());
    let e = fails(d, &["cutout", "green.png", "--out", "cut.jpg"], 2);
    assert!(e.contains("alpha") && e.contains(".png"), "{e}");
    let e = fails(d, &["cutout", "green.png", "--key", "green", "--out", "x.png"], 2);
    assert!(e.contains("#RRGGBB"), "{e}");
    let e = fails(
        d,
        &["cutout", "green.png", "--tolerance", "999", "--out", "x.png"],
        2,
    );
    assert!(e.contains("tolerance"), "{e}");
    // A wrong key keys out nothing; the command still succeeds but warns.
    let out = ok(
        d,
        &["cutout", "green.png", "--key", "#0000ff", "--out", "none.png"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
}

// --- 6. ONNX matting -----------------------------------------------------------------------

/// Red | grey | green thirds.
fn bands(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, _| match 3 * x / w {
        0 => Rgb([255, 0, 0]),
        1 => Rgb([128, 128, 128]),
        _ => Rgb([0, 255, 0]),
    }))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn an_onnx_model_built_here_predicts_the_alpha() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&bands(96, 64), &d.join("in.png"));
    // alpha = sigmoid(6 R - 6 G): a model ending in Sigmoid, and one ending in logits.
    std::fs::write(
        d.join("m.onnx"),
        onnx::conv_model(&[6.0, -6.0, 0.0], 0.0, 64, 96, true),
    )
    .unwrap();
    std::fs::write(
        d.join("logits.onnx"),
        onnx::conv_model(&[6.0, -6.0, 0.0], 0.0, 32, 48, false),
    )
    .unwrap();
    for (model, sigmoid_applied) in [("m.onnx", false), ("logits.onnx", true)] {
        let v = json_stdout(&ok(
            d,
            &[
                "cutout", "in.png", "--model", model, "--out", "o.png", "--json", "--force",
            ],
        ));
        assert_eq!(v["report"]["sigmoid_applied"], sigmoid_applied, "{v}");
        assert_eq!(v["report"]["layout"], "nchw");
        let img = image::open(d.join("o.png")).unwrap().to_rgba8();
        assert_eq!(img.dimensions(), (96, 64));
        for (x, want) in [(10, sigmoid(6.0)), (48, sigmoid(0.0)), (86, sigmoid(-6.0))] {
            let a = f32::from(img.get_pixel(x, 30).0[3]);
            assert!(
                (a - want * 255.0).abs() <= 2.0,
                "{model} x {x}: {a} vs {}",
                want * 255.0
            );
        }
        let car = sidecar(&d.join("o.png"));
        assert_eq!(car["parameters"]["method"], "onnx");
        assert_eq!(car["parameters"]["model_sha256"], sha256(&d.join(model)));
    }

    std::fs::write(d.join("junk.onnx"), b"this is not a model").unwrap();
    let e = fails(
        d,
        &["cutout", "in.png", "--model", "junk.onnx", "--out", "x.png"],
        2,
    );
    assert!(
        e.contains("not a usable ONNX model") && e.contains("hint:"),
        "{e}"
    );
    std::fs::write(d.join("grey.onnx"), onnx::model_with_input(&[1, 1, 16, 16])).unwrap();
    let e = fails(
        d,
        &["cutout", "in.png", "--model", "grey.onnx", "--out", "x.png"],
        2,
    );
    assert!(e.contains("[1, 1, 16, 16]"), "{e}");
    let e = fails(
        d,
        &["cutout", "in.png", "--model", "missing.onnx", "--out", "x.png"],
        7,
    );
    assert!(e.contains("missing.onnx"), "{e}");
    fails(
        d,
        &[
            "cutout", "in.png", "--model", "m.onnx", "--key", "#00ff00", "--out", "x.png",
        ],
        2,
    );
    assert!(!d.join("x.png").exists());
}

// --- 7. sheet ------------------------------------------------------------------------------

#[test]
fn sheet_labels_each_picture_with_name_size_verdict_and_cost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "a red fox", "fox.png", "1024x1024");
    save(&picture(300, 200, true), &d.join("plain.png"));
    let v = json_stdout(&ok(
        d,
        &[
            "sheet",
            "fox.png",
            "plain.png",
            "--labels",
            "--out",
            "sheet.png",
            "--json",
        ],
    ));
    assert_eq!(v["verified"], true);
    let entries = &v["report"]["entries"];
    assert_eq!(entries[0]["verdict"], "OK verified");
    assert!(entries[0]["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(entries[0]["model"], "gpt-image-2");
    assert_eq!(entries[1]["verdict"], "OK intact");
    let sheet = image::open(d.join("sheet.png")).unwrap().to_rgb8();
    // Two columns of 512 px cells plus gaps, and label lines in the verdict colour.
    assert_eq!(sheet.width(), 2 * 512 + 3 * 16);
    assert!(sheet.pixels().any(|p| p.0 == [110, 220, 120]));
    let car = sidecar(&d.join("sheet.png"));
    assert_eq!(car["inputs"][0]["sha256"], sha256(&d.join("fox.png")));

    // A broken file gets a red label, the sheet is still written, and the exit code says so.
    let bytes = std::fs::read(d.join("plain.png")).unwrap();
    std::fs::write(d.join("cut.png"), &bytes[..bytes.len() / 2]).unwrap();
    let out = run(
        d,
        &[
            "sheet",
            "fox.png",
            "cut.png",
            "nothere.png",
            "--labels",
            "--columns",
            "3",
            "--cell",
            "128",
            "--out",
            "sheet2.png",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_stdout(&out);
    assert!(
        v["report"]["entries"][1]["verdict"]
            .as_str()
            .unwrap()
            .starts_with("FAIL corrupt"),
        "{v}"
    );
    assert!(
        v["report"]["entries"][2]["verdict"]
            .as_str()
            .unwrap()
            .starts_with("FAIL unreadable")
    );
    let sheet = image::open(d.join("sheet2.png")).unwrap().to_rgb8();
    assert_eq!(sheet.width(), 3 * 128 + 4 * 16);
    assert!(sheet.pixels().any(|p| p.0 == [255, 105, 97]));
}

// --- 8. compare ----------------------------------------------------------------------------

#[test]
fn compare_puts_a_number_on_native_versus_upscale() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let native = picture(640, 360, false);
    save(&native, &d.join("native.png"));
    save(
        &native.resize_exact(320, 180, image::imageops::FilterType::Triangle),
        &d.join("master.png"),
    );
    let v = json_stdout(&ok(
        d,
        &[
            "compare",
            "native.png",
            "master.png",
            "--out",
            "cmp.png",
            "--json",
        ],
    ));
    let r = &v["report"];
    assert_eq!(r["b"]["scaled"], "resampled");
    assert_eq!(r["crop"], serde_json::json!([0, 0, 640, 360]));
    assert!(r["detail_ratio"].as_f64().unwrap() < 0.7, "{r}");
    assert!(r["psnr_db"].as_f64().unwrap() > 5.0);
    assert!(r["ssim"].as_f64().unwrap() < 0.95);
    assert!(r["notes"][0].as_str().unwrap().contains("320x180"));
    assert_eq!(r["a"]["path"], "native.png");
    let cmp = image::open(d.join("cmp.png")).unwrap();
    assert_eq!(cmp.width(), 2 * 640 + 3 * 16);

    let v = json_stdout(&ok(
        d,
        &[
            "compare",
            "native.png",
            "native.png",
            "--crop",
            "10,20,100,50",
            "--out",
            "same.png",
            "--json",
        ],
    ));
    assert_eq!(v["report"]["identical"], true);
    assert_eq!(v["report"]["psnr_db"], Value::Null);
    assert_eq!(v["report"]["detail_ratio"], 1.0);
    let e = fails(
        d,
        &[
            "compare",
            "native.png",
            "master.png",
            "--crop",
            "600,0,100,100",
            "--out",
            "x.png",
        ],
        2,
    );
    assert!(e.contains("does not fit"), "{e}");
}

// --- untrusted input -----------------------------------------------------------------------

#[test]
fn hostile_and_missing_inputs_are_errors_never_panics_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&picture(64, 48, false), &d.join("ok.png"));
    let bytes = std::fs::read(d.join("ok.png")).unwrap();
    std::fs::write(d.join("cut.png"), &bytes[..bytes.len() - 20]).unwrap();
    std::fs::write(d.join("junk.png"), b"definitely not an image").unwrap();
    // A PNG header claiming 100000 x 100000 pixels.
    let mut huge = bytes.clone();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(d.join("huge.png"), &huge).unwrap();
    for input in ["cut.png", "junk.png", "huge.png"] {
        for cmd in [
            &["upscale", input, "--to", "128x96", "--out", "o.png"][..],
            &["fit", input, "--to", "32x32", "--out", "o.png"],
            &["convert", input, "--out", "o.jpg"],
            &["cutout", input, "--out", "o.png"],
            &["compare", input, "ok.png", "--out", "o.png"],
        ] {
            let e = fails(d, cmd, 1);
            assert!(e.contains(input), "{cmd:?}: {e}");
        }
    }
    let e = fails(d, &["upscale", "nope.png", "--to", "4k", "--out", "o.png"], 7);
    assert!(e.contains("nope.png"), "{e}");
    assert!(!d.join("o.png").exists() && !d.join("o.jpg").exists());
}

#[test]
fn every_decode_is_held_to_the_pixel_budget_which_can_be_set() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&picture(128, 96, false), &d.join("in.png"));
    save(&picture(64, 48, false), &d.join("small.png"));
    // A budget below the file (12288 pixels) refuses every reader of it, before decoding.
    let out = run(d, &["--max-pixels", "100x100", "verify", "in.png"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("decoding budget of 10000 pixels"));
    for cmd in [
        &[
            "--max-pixels",
            "100x100",
            "upscale",
            "in.png",
            "--to",
            "64x48",
            "--out",
            "o.png",
        ][..],
        &[
            "--max-pixels",
            "10000",
            "fit",
            "in.png",
            "--to",
            "32x32",
            "--out",
            "o.png",
        ],
        &["--max-pixels", "10000", "convert", "in.png", "--out", "o.jpg"],
        &["--max-pixels", "10000", "cutout", "in.png", "--out", "o.png"],
        &[
            "--max-pixels",
            "10000",
            "compare",
            "in.png",
            "small.png",
            "--out",
            "o.png",
        ],
    ] {
        let e = fails(d, cmd, 1);
        assert!(
            e.contains("decoding budget") && e.contains("--max-pixels"),
            "{cmd:?}: {e}"
        );
    }
    // PNG -> JPEG on two cores streams (decoding and encoding at once, not through the
    // frame decoder): a picture tall enough for strips is held to the budget there too.
    save(&picture(640, 400, false), &d.join("tall.png"));
    let e = fails_env(
        d,
        &[("RAYON_NUM_THREADS", "2")],
        &["--max-pixels", "100000", "convert", "tall.png", "--out", "t.jpg"],
        1,
    );
    assert!(e.contains("decoding budget") && e.contains("--max-pixels"), "{e}");
    assert!(!d.join("t.jpg").exists());
    // The sheet labels the cell it could not read and goes on.
    let out = run(
        d,
        &[
            "--max-pixels",
            "10000",
            "sheet",
            "in.png",
            "small.png",
            "--out",
            "s.png",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("decoding budget"));
    // The environment sets it too; an output size over it is refused before any work.
    let out = fourk()
        .current_dir(d)
        .env("FOURK_MAX_PIXELS", "10000")
        .args(["upscale", "small.png", "--to", "256x192", "--out", "big.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pixel budget"));
    assert!(!d.join("o.png").exists() && !d.join("o.jpg").exists() && !d.join("big.png").exists());
    // The default takes it.
    ok(d, &["upscale", "in.png", "--to", "256x192", "--out", "o.png"]);
    let e = fails(d, &["--max-pixels", "0", "verify", "in.png"], 2);
    assert!(e.contains("at least 1"), "{e}");
}

// --- the ledger ----------------------------------------------------------------------------

#[test]
fn pipeline_outputs_are_in_the_ledger_linked_to_their_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ledger = d.join("ledger.db");
    let l = ledger.to_str().unwrap();
    ok(
        d,
        &[
            "--ledger",
            l,
            "generate",
            "a lighthouse",
            "--emulator",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--out",
            "light.png",
        ],
    );
    ok(
        d,
        &[
            "--ledger",
            l,
            "upscale",
            "light.png",
            "--to",
            "2048x2048",
            "--out",
            "big.png",
        ],
    );
    ok(
        d,
        &[
            "convert", "big.png", "--format", "webp", "--out", "big.webp", "--ledger", l,
        ],
    );
    ok(
        d,
        &[
            "--ledger",
            l,
            "sheet",
            "light.png",
            "big.png",
            "--out",
            "sheet.png",
        ],
    );
    let conn = rusqlite::Connection::open(&ledger).unwrap();
    let kinds: Vec<String> = conn
        .prepare("SELECT l.kind FROM links l ORDER BY l.to_image, l.from_image")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        kinds,
        ["image->upscale", "image->convert", "image->sheet", "image->sheet"]
    );
    let routes: Vec<(String, String, bool)> = conn
        .prepare(
            "SELECT r.kind, i.route, i.verified FROM images i JOIN runs r ON r.id = i.run_id ORDER BY i.id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        routes[1],
        ("upscale".to_owned(), "local.upscale".to_owned(), true)
    );
    assert_eq!(routes[2].1, "local.convert");
    assert_eq!(routes[3].1, "local.sheet");
    // No request, no cost: the only usage row is the generation's.
    let usage: i64 = conn
        .query_row("SELECT COUNT(*) FROM usage", [], |r| r.get(0))
        .unwrap();
    assert_eq!(usage, 1);
    let history = ok(d, &["--ledger", l, "history", "--json"]);
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(text.contains("big.webp") && text.contains("sheet.png"), "{text}");
    // A ledger that cannot be written is a warning: the work is still done.
    let blocker = d.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("ledger.db");
    let out = ok(
        d,
        &[
            "--ledger",
            bad.to_str().unwrap(),
            "convert",
            "light.png",
            "--out",
            "light.jpg",
        ],
    );
    assert!(d.join("light.jpg").exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ledger was not updated"));
}

// --- edit inputs are decoded before anything is sent -----------------------------------------

#[test]
fn edit_refuses_a_truncated_or_enormous_input_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&picture(256, 256, false), &d.join("ok.png"));
    let bytes = std::fs::read(d.join("ok.png")).unwrap();
    std::fs::write(d.join("cut.png"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    // A valid PNG whose header declares 60000x60000.
    let mut huge = bytes.clone();
    huge[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    let crc = crc32(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(d.join("huge.png"), &huge).unwrap();
    for (file, rule) in [("cut.png", "input_intact"), ("huge.png", "input_pixels")] {
        let out = fourk_unsent()
            .current_dir(d)
            .args(["edit", file, "make it night"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(
            err.contains(rule) && err.contains("nothing was sent"),
            "{file}: {err}"
        );
        assert!(!err.contains("127.0.0.1:9"), "{file}: {err}");
    }
}
