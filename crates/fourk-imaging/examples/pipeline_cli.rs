//! A tiny command line over the local pipeline, used by `scripts/bench-pipeline` to time
//! fourk against libvips, ImageMagick, cwebp and Pillow on the same files.
//!
//! ```text
//! cargo run --release -p fourk-imaging --example pipeline_cli -- upscale IN OUT W H [lanczos3|catmullrom|mitchell] [SHARPEN] [png-fast|png-best]
//! pipeline_cli probe IN                 # header JSON on stdout
//! pipeline_cli verify IN                # full-decode report JSON on stdout
//! pipeline_cli encode IN OUT png|png-fast|jpeg|webp [Q]   # webp without Q is lossless
//!                                      # (more settings: see `encode_spec`)
//! pipeline_cli cutout IN OUT            # chroma key, QA report JSON on stdout
//! pipeline_cli energy IN                # detail energy on stdout
//! pipeline_cli gen OUT W H [SEED]       # photographic-entropy test picture (PNG)
//! pipeline_cli gen-key OUT W H          # a subject on flat green, for cutout
//! pipeline_cli body IN.png OUT.json     # an Image API response body carrying IN as b64_json
//! pipeline_cli save BODY.json DIR       # the save path: parse, base64, verify, atomic write
//!                                      # (to DIR/save-PID.png, a new name each run)
//! pipeline_cli decode IN                # a bare full decode (image::open), nothing else
//! ```
//!
//! The output format of `upscale` and `cutout` follows OUT's extension (PNG by default).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::ExitCode;

use fourk_api::OutputFormat;
use fourk_imaging::{
    DEFAULT_FEATHER, DEFAULT_TOLERANCE, EncodeOptions, Expect, Filter, JpegSubsampling, KeySpec, PngLevel,
    cutout, detail_energy, encode_with, encode_with_options, load_file, load_limits, probe_file, save_atomic,
    upscale, verify_file,
};
use image::{DynamicImage, Rgb, RgbImage};

// The response body and its borrowing parser, shared with the save_path bench and the
// save_peak_memory example (this tool does not use its test picture).
#[path = "../benches/support/mod.rs"]
#[allow(dead_code)]
mod support;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["upscale", input, output, w, h, rest @ ..] => {
            let (mut filter, mut sharpen, mut level) = (Filter::Lanczos3, None, PngLevel::Default);
            for word in rest {
                match *word {
                    "lanczos3" => filter = Filter::Lanczos3,
                    "catmullrom" => filter = Filter::CatmullRom,
                    "mitchell" => filter = Filter::Mitchell,
                    "png-fast" => level = PngLevel::Fast,
                    "png-best" => level = PngLevel::Best,
                    amount => {
                        sharpen = Some(amount.parse::<f32>().map_err(|_| {
                            format!("{amount:?} is neither a filter, a PNG level nor a sharpen amount")
                        })?);
                    }
                }
            }
            let img = load_file(Path::new(input), &load_limits())?;
            let out = upscale(&img, w.parse()?, h.parse()?, filter, sharpen)?;
            drop(img); // the source is not needed while the output encodes
            write(&out, output, None, level)
        }
        ["probe", input] => {
            println!("{}", serde_json::to_string(&probe_file(Path::new(input))?)?);
            Ok(())
        }
        ["verify", input] => {
            let report = verify_file(Path::new(input), &Expect::default())?;
            println!("{}", serde_json::to_string(&report)?);
            if report.ok {
                Ok(())
            } else {
                Err("verification failed".into())
            }
        }
        ["encode", input, output, fmt, rest @ ..] => {
            let q = rest.first().map(|q| q.parse::<u8>()).transpose()?;
            let img = load_file(Path::new(input), &load_limits())?;
            let (format, options) = encode_spec(fmt)?;
            let bytes = encode_with_options(&img, format, q, &options)?;
            Ok(save_atomic(Path::new(output), &bytes)?)
        }
        ["cutout", input, output] => {
            let img = load_file(Path::new(input), &load_limits())?;
            let (out, report) = cutout(&img, KeySpec::Auto, DEFAULT_TOLERANCE, DEFAULT_FEATHER)?;
            write(&DynamicImage::ImageRgba8(out), output, None, PngLevel::Default)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        ["body", input, output] => {
            let body = support::response_body(&std::fs::read(input)?);
            Ok(save_atomic(Path::new(output), body.as_bytes())?)
        }
        ["save", body, dir] => {
            // What `fourk generate` does with an answer: the JSON parsed borrowing the base64,
            // decoded once, every pixel verified against the request, written atomically.
            let text = std::fs::read_to_string(body)?;
            let parsed: support::Body<'_> = serde_json::from_str(&text)?;
            let b64 = &parsed.data.first().ok_or("no data")?.b64_json;
            let expect = Expect::default().with_format(OutputFormat::Png);
            let output = Path::new(dir).join(format!("save-{}.png", std::process::id()));
            let saved = fourk_imaging::save_verified(&output, b64, &expect)?;
            if saved.rejected {
                return Err("the saved image did not verify".into());
            }
            Ok(())
        }
        ["decode", input] => {
            let img = image::open(input)?;
            std::hint::black_box(img);
            Ok(())
        }
        ["energy", input] => {
            let img = load_file(Path::new(input), &load_limits())?;
            println!("{:.3}", detail_energy(&img, None)?);
            Ok(())
        }
        ["gen", output, w, h, rest @ ..] => {
            let seed = rest.first().map(|s| s.parse::<u64>()).transpose()?.unwrap_or(1);
            write(
                &photo(w.parse()?, h.parse()?, seed),
                output,
                None,
                PngLevel::Default,
            )
        }
        ["gen-key", output, w, h] => write(
            &subject_on_green(w.parse()?, h.parse()?),
            output,
            None,
            PngLevel::Default,
        ),
        _ => Err("usage: see the header of examples/pipeline_cli.rs".into()),
    }
}

/// `png`, `png-fast`, `png-best`, `png-z0`..`png-z9` (a zlib level), `jpeg`, `jpeg-420`,
/// `jpeg-444`, `webp`, `webp-m0`..`webp-m6` (libwebp's method), `webp-m2-e25` (and a lossless
/// effort).
fn encode_spec(spec: &str) -> Result<(OutputFormat, EncodeOptions)> {
    let o = EncodeOptions::default();
    let bad = || -> Box<dyn std::error::Error> { format!("unknown format {spec:?}").into() };
    Ok(match spec {
        "png" => (OutputFormat::Png, o),
        "png-fast" => (OutputFormat::Png, o.with_png_level(PngLevel::Fast)),
        "png-best" => (OutputFormat::Png, o.with_png_level(PngLevel::Best)),
        "jpeg" => (OutputFormat::Jpeg, o),
        "jpeg-420" => (OutputFormat::Jpeg, o.with_jpeg_subsampling(JpegSubsampling::Half)),
        "jpeg-444" => (OutputFormat::Jpeg, o.with_jpeg_subsampling(JpegSubsampling::Full)),
        "webp" => (OutputFormat::Webp, o),
        s if s.starts_with("png-z") => (
            OutputFormat::Png,
            o.with_png_zlib_level(s[5..].parse().map_err(|_| bad())?),
        ),
        s if s.starts_with("webp-m") => {
            let mut parts = s[6..].split("-e");
            let m = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
            let mut o = o.with_webp_method(m);
            if let Some(e) = parts.next() {
                o = o.with_webp_lossless_effort(e.parse().map_err(|_| bad())?);
            }
            (OutputFormat::Webp, o)
        }
        _ => return Err(bad()),
    })
}

fn write(img: &DynamicImage, output: &str, q: Option<u8>, level: PngLevel) -> Result<()> {
    let format = match Path::new(output).extension().and_then(|e| e.to_str()) {
        Some("jpg" | "jpeg") => OutputFormat::Jpeg,
        Some("webp") => OutputFormat::Webp,
        _ => OutputFormat::Png,
    };
    let bytes = encode_with(img, format, q, level)?;
    Ok(save_atomic(Path::new(output), &bytes)?)
}

/// SplitMix64: a seeded, dependency-free source of noise.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn lattice(seed: u64, x: i64, y: i64) -> f32 {
    (mix(seed ^ (x as u64).wrapping_mul(0x1234_5677) ^ (y as u64).wrapping_mul(0x8765_4321)) >> 40) as f32
        / (1u64 << 24) as f32
}

/// Bilinear value noise at one scale, in 0..1.
fn value_noise(seed: u64, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (tx, ty) = (x - x0, y - y0);
    let (tx, ty) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let (ix, iy) = (x0 as i64, y0 as i64);
    let a = lattice(seed, ix, iy);
    let b = lattice(seed, ix + 1, iy);
    let c = lattice(seed, ix, iy + 1);
    let d = lattice(seed, ix + 1, iy + 1);
    (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty
}

/// Something with a photograph's statistics: smooth light, texture at every scale (fractal
/// noise, scale-relative so 2K and 4K renders hold the same scene), hard edges and sensor
/// grain. Flat synthetic pictures compress and resample unrealistically fast.
fn photo(w: u32, h: u32, seed: u64) -> DynamicImage {
    let scale = 1440.0 / h as f32;
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 * scale, y as f32 * scale);
        let mut n = [0.0f32; 3];
        for (c, v) in n.iter_mut().enumerate() {
            let mut amp = 0.5;
            let mut freq = 1.0 / 256.0;
            for octave in 0..7 {
                let s = seed.wrapping_mul(31).wrapping_add((c * 8 + octave) as u64);
                *v += amp * value_noise(s, fx * freq, fy * freq);
                amp *= 0.55;
                freq *= 2.0;
            }
        }
        // A few hard-edged discs, like objects against a background.
        let disc = (0..6).any(|i| {
            let cx = lattice(seed, i, 0) * 2560.0;
            let cy = lattice(seed, i, 1) * 1440.0;
            let r = 60.0 + lattice(seed, i, 2) * 200.0;
            (fx - cx).hypot(fy - cy) < r
        });
        let grain = (mix(seed ^ (u64::from(y) << 32 | u64::from(x))) % 13) as f32 - 6.0;
        let light = 0.6 + 0.4 * (fx / 2560.0);
        let px = n.map(|v| {
            let v = if disc { 1.0 - v * 0.7 } else { v };
            (v * 255.0 * light + grain).clamp(0.0, 255.0) as u8
        });
        Rgb(px)
    }))
}

/// A textured subject on a flat, slightly noisy green: what a "on a green background" prompt
/// gives.
fn subject_on_green(w: u32, h: u32) -> DynamicImage {
    let textured = photo(w, h, 7).to_rgb8();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let r = h as f32 * 0.35;
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let d = (x as f32 + 0.5 - cx).hypot((y as f32 + 0.5 - cy) * 1.2);
        let cover = (r + 0.5 - d).clamp(0.0, 1.0);
        let noise = (mix(u64::from(y) << 32 | u64::from(x)) % 5) as f32 - 2.0;
        let bg = [20.0 + noise, 200.0 + noise, 60.0 + noise];
        let fg = textured.get_pixel(x, y).0.map(f32::from);
        let mut px = [0u8; 3];
        for i in 0..3 {
            px[i] = (cover * fg[i] + (1.0 - cover) * bg[i]).round().clamp(0.0, 255.0) as u8;
        }
        Rgb(px)
    }))
}
