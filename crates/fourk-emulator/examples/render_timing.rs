//! Time the procedural renderer and the PNG encoder at a size, and report the file size.
//!
//! `cargo run --release -p fourk-emulator --example render_timing -- 3840x2160 [--transparent] [--out FILE] [--render-only]`
//!
//! Its report is its output, so it writes to stdout; usage errors go to stderr.
#![allow(clippy::print_stderr)]

use std::io::Write as _;
use std::time::Instant;

use fourk_api::OutputFormat;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size = args.first().map_or("3840x2160", String::as_str);
    let Some((w, h)) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
    else {
        eprintln!("usage: render_timing WIDTHxHEIGHT [--transparent] [--out FILE]");
        std::process::exit(2);
    };
    let transparent = args.iter().any(|a| a == "--transparent");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1));
    if args.iter().any(|a| a == "--render-only") {
        // For CPU-time measurements under `time`, which are robust on a busy machine.
        let t = Instant::now();
        for i in 0..10 {
            let img = fourk_emulator::render::render("render only", w, h, &i.to_string(), transparent);
            assert_eq!(img.width(), w);
        }
        // A closed pipe (`| head`) is not an error for a report.
        let _ = writeln!(
            std::io::stdout(),
            "10 renders of {w}x{h}: {:.0} ms each (wall)",
            t.elapsed().as_secs_f64() * 100.0
        );
        return;
    }
    let prompt = "A lighthouse on a cliff at dusk, waves crashing below, warm light in the windows";
    for round in 0..3 {
        let t = Instant::now();
        let img = fourk_emulator::render::render(prompt, w, h, "gpt-image-2|high|0", transparent);
        let render_ms = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let png = fourk_imaging::encode(&img, OutputFormat::Png, None).expect("png encodes");
        let png_ms = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let jpeg = fourk_imaging::encode(&img, OutputFormat::Jpeg, Some(90)).expect("jpeg encodes");
        let jpeg_ms = t.elapsed().as_secs_f64() * 1000.0;
        let _ = writeln!(
            std::io::stdout(),
            "round {round}: {w}x{h} render {render_ms:.0} ms, png {png_ms:.0} ms {:.2} MB, jpeg q90 {jpeg_ms:.0} ms {:.2} MB",
            png.len() as f64 / 1e6,
            jpeg.len() as f64 / 1e6
        );
        if let (0, Some(path)) = (round, out) {
            std::fs::write(path, &png).expect("write output");
        }
    }
}
