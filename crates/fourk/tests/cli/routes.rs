//! The `fourk` binary on every route and against every failure the network can throw, through
//! the emulator: streaming over the Responses API, edits on both routes, retries proven by the
//! emulator's request log, mid-stream errors, possibly billed timeouts, a key scan with every
//! verbosity, mask rules, and `--transparent` on both of its branches. Every server is on
//! 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{self, Emulator, json_stdout, sidecar};

const SECRET: &str = "sk-routes-KEYSCAN-7c1f0e99-never-print";

fn fourk() -> Command {
    let mut c = common::fourk();
    c.env("OPENAI_API_KEY", SECRET);
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let out = fourk().current_dir(dir).args(args).output().unwrap();
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(SECRET), "key leaked");
    }
    out
}

fn run_ok(dir: &Path, args: &[&str]) -> Output {
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 90]))
        .save(path)
        .unwrap();
}

/// An RGBA mask; `clear` pixels (columns left of it) are fully transparent.
fn write_mask(path: &Path, w: u32, h: u32, clear: u32, opaque_alpha: u8) {
    image::RgbaImage::from_fn(w, h, |x, _| {
        image::Rgba([0, 0, 0, if x < clear { 0 } else { opaque_alpha }])
    })
    .save(path)
    .unwrap();
}

const SMALL: [&str; 4] = ["--size", "1024x1024", "--quality", "low"];

fn generate_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["generate", "a paper boat", "--base-url", url, "--out", "boat.png"];
    v.extend(SMALL);
    v.extend(extra);
    v
}

// --- 1. streaming through the Responses route ---------------------------------------------

#[test]
fn generate_streams_through_the_responses_route_and_matches_the_whole_answer() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["a fox in the snow", "--emulator", "--route", "responses"];
    let out = run_ok(
        dir.path(),
        &[
            &["generate"][..],
            &common,
            &SMALL,
            &[
                "--out",
                "fox.png",
                "--stream",
                "--partials",
                "2",
                "--keep-partials",
                "--json",
            ],
        ]
        .concat(),
    );
    let v = json_stdout(&out);
    assert_eq!(v["verified"], true);
    for k in 0..2 {
        let p = dir.path().join(format!("fox.partial-{k}.png"));
        assert_eq!(image::open(&p).unwrap().width(), 1024, "{}", p.display());
    }
    assert!(stderr(&out).contains("partial image 1"), "{}", stderr(&out));
    let car = sidecar(&dir.path().join("fox.png"));
    assert_eq!(car["route"], "responses");
    assert_eq!(car["stream"], true);
    assert!(car["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(
        car["responses"]["response_id"]
            .as_str()
            .unwrap()
            .starts_with("resp_")
    );
    assert!(
        car["responses"]["image_call_id"]
            .as_str()
            .unwrap()
            .starts_with("ig_")
    );
    assert!(
        car["response"]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(car["checks"]["verified"], true);

    // The streamed final image is the whole answer's image, byte for byte.
    run_ok(
        dir.path(),
        &[&["generate"][..], &common, &SMALL, &["--out", "whole.png"]].concat(),
    );
    assert_eq!(
        sidecar(&dir.path().join("whole.png"))["checks"]["sha256"],
        car["checks"]["sha256"]
    );
}

// --- 2. edits on both routes, streamed and not ----------------------------------------------

#[test]
fn edits_go_through_both_routes_streamed_and_not() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("room.png"), 64, 48);
    write_png(&dir.path().join("lamp.png"), 32, 32);
    write_mask(&dir.path().join("mask.png"), 64, 48, 20, 255);
    let base = ["--emulator", "--size", "1024x1024", "--quality", "low"];

    // Responses route, whole: the images travel as input_image data URLs.
    run_ok(
        dir.path(),
        &[
            &["edit", "room.png", "lamp.png", "put the lamp in the room"][..],
            &base,
            &["--route", "responses", "--mask", "mask.png", "--out", "r.png"],
        ]
        .concat(),
    );
    let car = sidecar(&dir.path().join("r.png"));
    assert_eq!(car["route"], "responses");
    assert_eq!(car["checks"]["verified"], true);
    assert_eq!(car["inputs"].as_array().unwrap().len(), 3);
    let content = &car["request"]["input"][0]["content"];
    let urls: Vec<&str> = content
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "input_image")
        .map(|p| p["image_url"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 2, "{content}");
    assert!(
        urls.iter().all(|u| u.starts_with("data:image/png;base64,[")),
        "{urls:?}"
    );
    assert_eq!(car["request"]["tools"][0]["action"], "edit");
    assert!(
        car["request"]["tools"][0]["input_image_mask"]["image_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,[")
    );

    // Responses route, streamed, partials kept.
    let out = run_ok(
        dir.path(),
        &[
            &["edit", "room.png", "make it night"][..],
            &base,
            &[
                "--route",
                "responses",
                "--stream",
                "--partials",
                "1",
                "--keep-partials",
                "--out",
                "rs.png",
            ],
        ]
        .concat(),
    );
    assert!(stderr(&out).contains("partial image 0"));
    assert!(dir.path().join("rs.partial-0.png").exists());
    let car = sidecar(&dir.path().join("rs.png"));
    assert_eq!(
        (car["route"].as_str(), car["stream"].as_bool()),
        (Some("responses"), Some(true))
    );
    assert!(
        car["usage"]["input_tokens_details"]["image_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Image API, streamed: image_edit.* events, usage of the completed event in the sidecar.
    run_ok(
        dir.path(),
        &[
            &["edit", "room.png", "lamp.png", "merge"][..],
            &base,
            &[
                "--stream",
                "--partials",
                "2",
                "--keep-partials",
                "--out",
                "is.png",
            ],
        ]
        .concat(),
    );
    for k in 0..2 {
        assert!(dir.path().join(format!("is.partial-{k}.png")).exists());
    }
    let car = sidecar(&dir.path().join("is.png"));
    assert_eq!(
        (car["route"].as_str(), car["stream"].as_bool()),
        (Some("images.edit"), Some(true))
    );
    assert!(car["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(car["checks"]["verified"], true);
}

// --- 3. retries, counted by the emulator -----------------------------------------------------

#[test]
fn transient_failures_are_retried_and_the_log_proves_it() {
    for (fault, exit) in [("429", 6), ("500", 4), ("503", 4)] {
        let emu = Emulator::start(&["--faults", &format!("{fault}:1")]);
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), &generate_args(&emu.base, &["--retries", "2"]));
        assert_eq!(out.status.code(), Some(exit), "{fault}: {}", stderr(&out));
        let reqs = emu.wait_for_posts(3);
        assert_eq!(reqs.len(), 3, "{fault}: one attempt and two retries: {reqs:?}");
        assert!(reqs.iter().all(|r| r["fault"] == fault));
        assert_eq!(stderr(&out).matches("retrying").count(), 2, "{}", stderr(&out));
        assert!(!dir.path().join("boat.png").exists());
    }
    // Two 500s, then an answer: saved, with three attempts in the sidecar (seed 10 draws
    // fault, fault, no fault at probability 0.5).
    let emu = Emulator::start(&["--faults", "500:0.5", "--seed", "10"]);
    let dir = tempfile::tempdir().unwrap();
    run_ok(dir.path(), &generate_args(&emu.base, &["--retries", "2"]));
    let reqs = emu.wait_for_posts(3);
    let statuses: Vec<&Value> = reqs.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [&Value::from(500), &Value::from(500), &Value::from(200)]
    );
    assert_eq!(sidecar(&dir.path().join("boat.png"))["attempts"], 3);
}

#[test]
fn permanent_failures_are_sent_once() {
    let cases: &[(&[&str], &str, i32)] = &[
        (&["--faults", "quota:1"], "a paper boat", 6),
        (&[], "a paper boat [fourk:moderation]", 3),
        (&[], "a paper boat [fourk:org-unverified]", 3),
        (&["--require-key", "sk-another-key"], "a paper boat", 3),
    ];
    for (flags, prompt, exit) in cases {
        let emu = Emulator::start(flags);
        let dir = tempfile::tempdir().unwrap();
        let mut args = generate_args(&emu.base, &["--retries", "3"]);
        args[1] = *prompt;
        let out = run(dir.path(), &args);
        assert_eq!(
            out.status.code(),
            Some(*exit),
            "{flags:?} {prompt}: {}",
            stderr(&out)
        );
        // Give a wrong retry time to show up in the log.
        std::thread::sleep(Duration::from_millis(700));
        let reqs = emu.posts();
        assert_eq!(reqs.len(), 1, "{flags:?} {prompt}: {reqs:?}");
        // The retry log line is "retrying" followed by its fields; a hint may say "retrying will not help".
        assert!(!stderr(&out).contains("retrying route"), "{}", stderr(&out));
    }
}

#[test]
fn a_reset_after_sending_is_possibly_billed_and_resent_only_when_allowed() {
    let emu = Emulator::start(&["--faults", "reset:1"]);
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &generate_args(&emu.base, &["--retries", "2"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("possibly billed") && err.contains("client request id fourk-"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(emu.posts().len(), 1);

    let out = run(
        dir.path(),
        &generate_args(&emu.base, &["--retries", "2", "--retry-ambiguous"]),
    );
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(emu.wait_for_posts(4).len(), 4, "1 + 1 + 2 retries");
    assert_eq!(stderr(&out).matches("retrying").count(), 2);
}

// --- 4. a stream that fails or is cut ---------------------------------------------------------

#[test]
fn a_mid_stream_error_fails_clearly_and_saves_nothing() {
    for route in ["images", "responses"] {
        let dir = tempfile::tempdir().unwrap();
        let out = run(
            dir.path(),
            &[
                &[
                    "generate",
                    "a fox [fourk:stream-error]",
                    "--emulator",
                    "--route",
                    route,
                ][..],
                &SMALL,
                &["--stream", "--partials", "1", "--out", "fox.png"],
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(4), "{route}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("error mid-stream") && err.contains("possibly billed") && err.contains("req_"),
            "{route}: {err}"
        );
        assert!(!dir.path().join("fox.png").exists(), "{route}");
        assert!(!dir.path().join("fox.png.json").exists(), "{route}");
    }
}

#[test]
fn a_truncated_stream_fails_clearly_saves_nothing_and_is_not_resent() {
    let emu = Emulator::start(&["--faults", "truncate:1"]);
    for route in ["images", "responses"] {
        let dir = tempfile::tempdir().unwrap();
        let before = emu.posts().len();
        let out = run(
            dir.path(),
            &generate_args(&emu.base, &["--stream", "--partials", "2", "--route", route]),
        );
        assert_ne!(out.status.code(), Some(0), "{route}");
        let err = stderr(&out);
        assert!(err.contains("possibly billed"), "{route}: {err}");
        assert!(!dir.path().join("boat.png").exists(), "{route}");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(emu.posts().len(), before + 1, "{route}: resent");
    }
}

// --- 5. possibly billed: a read timeout after sending -----------------------------------------

#[test]
fn a_timeout_after_sending_is_not_resent_unless_allowed() {
    let emu = Emulator::start(&["--faults", "stall:1", "--stall-ms", "3000"]);
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &generate_args(&emu.base, &["--timeout", "1", "--retries", "2"]),
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("possibly billed"), "{err}");
    let id = err
        .split("client request id ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no client request id in: {err}"))
        .to_owned();
    let reqs = emu.wait_for_posts(1);
    std::thread::sleep(Duration::from_millis(3500));
    let reqs_after = emu.posts();
    assert_eq!(
        reqs_after.len(),
        1,
        "resent without --retry-ambiguous: {reqs_after:?}"
    );
    assert_eq!(
        reqs[0]["client_request_id"],
        id.as_str(),
        "the quoted id is the one the server saw"
    );

    let out = run(
        dir.path(),
        &generate_args(
            &emu.base,
            &["--timeout", "1", "--retries", "1", "--retry-ambiguous"],
        ),
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("retrying"));
    let reqs = emu.wait_for_posts(3);
    assert_eq!(
        reqs.len(),
        3,
        "with --retry-ambiguous it is resent once: {reqs:?}"
    );
    assert_ne!(reqs[1]["client_request_id"], reqs[2]["client_request_id"]);
}

// --- 6. the key never appears, whatever is logged ----------------------------------------------

#[test]
fn the_key_appears_nowhere_at_any_verbosity() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("in.png"), 64, 48);
    let mut runs = 0;
    for cmd in [&["generate", "a fox"][..], &["edit", "in.png", "a fox"][..]] {
        for route in ["images", "responses"] {
            for (i, verbosity) in ["-v", "-vv", "-vvv", "-vv+RUST_LOG"].iter().enumerate() {
                let out_name = format!("{}-{route}-{i}.png", cmd[0]);
                let log = format!("log-{}-{route}-{i}", cmd[0]);
                let mut c = fourk();
                c.current_dir(dir.path());
                if let Some(v) = verbosity.strip_suffix("+RUST_LOG") {
                    c.env("RUST_LOG", "trace").arg(v);
                } else {
                    c.arg(verbosity);
                }
                let out = c
                    .args(cmd)
                    .args([
                        "--emulator",
                        "--route",
                        route,
                        "--out",
                        &out_name,
                        "--log-payload",
                        &log,
                    ])
                    .args(SMALL)
                    .output()
                    .unwrap();
                assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
                assert!(out.stderr.len() > 200, "{verbosity} logged almost nothing");
                scan(
                    &out,
                    &[dir.path().join(&out_name).with_extension("png.json")],
                    &dir.path().join(&log),
                );
                runs += 1;
            }
            let out = fourk()
                .current_dir(dir.path())
                .args(["-vv"])
                .args(cmd)
                .args(["--dry-run", "--route", route])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            scan(&out, &[], Path::new("/nonexistent"));
        }
    }
    assert_eq!(runs, 16);
}

fn scan(out: &Output, sidecars: &[PathBuf], log: &Path) {
    let mut files: Vec<PathBuf> = sidecars.to_vec();
    if let Ok(rd) = std::fs::read_dir(log) {
        files.extend(rd.map(|e| e.unwrap().path()));
        assert!(files.len() > sidecars.len(), "the payload log is empty");
    }
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(SECRET),
        "key in stdout"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(SECRET),
        "key in stderr"
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "key in {}",
            f.display()
        );
    }
}

// --- 7. mask rules ---------------------------------------------------------------------------

#[test]
fn a_mask_without_a_transparent_pixel_is_refused_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 64, 48);
    write_mask(&dir.path().join("opaque-rgba.png"), 64, 48, 0, 255);
    write_mask(&dir.path().join("half.png"), 64, 48, 0, 128);
    write_mask(&dir.path().join("good.png"), 64, 48, 1, 255);
    let emu = Emulator::start(&[]);
    for mask in ["opaque-rgba.png", "half.png"] {
        let out = run(
            dir.path(),
            &[
                "edit",
                "a.png",
                "edit it",
                "--mask",
                mask,
                "--base-url",
                &emu.base,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("mask_transparent") && err.contains("alpha 0") && err.contains("fix:"),
            "{err}"
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(emu.posts().is_empty(), "a refused mask reached the server");
    // One clear pixel column is enough.
    let out = run(
        dir.path(),
        &[
            &[
                "edit",
                "a.png",
                "edit it",
                "--mask",
                "good.png",
                "--base-url",
                &emu.base,
                "--out",
                "e.png",
            ][..],
            &SMALL,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(emu.wait_for_posts(1).len(), 1);
}

// --- 9. --transparent ------------------------------------------------------------------------

/// Alpha at the corner and at the centre of a PNG, and whether it has an alpha channel.
fn alpha_probe(path: &Path) -> (bool, u8, u8) {
    let img = image::open(path).unwrap();
    let has = img.color().has_alpha();
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    (has, rgba.get_pixel(2, 2)[3], rgba.get_pixel(w / 2, h / 2)[3])
}

#[test]
fn transparent_natively_when_the_model_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    for route in ["images", "responses"] {
        let name = format!("marble-{route}.png");
        let out = run_ok(
            dir.path(),
            &[
                &[
                    "generate",
                    "a glass marble",
                    "--transparent",
                    "--emulator",
                    "--route",
                    route,
                ][..],
                &SMALL,
                &["--out", &name, "--json"],
            ]
            .concat(),
        );
        assert_eq!(json_stdout(&out)["verified"], true);
        let path = dir.path().join(&name);
        let (has, corner, centre) = alpha_probe(&path);
        assert!(
            has && corner == 0 && centre == 255,
            "{route}: {has} {corner} {centre}"
        );
        let car = sidecar(&path);
        let t = &car["transparency"];
        assert_eq!(t["method"], "native", "{t}");
        assert_eq!(t["model_support"], "preview");
        assert!(t["why"].as_str().unwrap().contains("preview"));
        assert_eq!(t["steps"].as_array().unwrap().len(), 1);
        assert_eq!(t["steps"][0]["verified"], true);
        assert_eq!(
            car["request"]["background"]
                .as_str()
                .or(car["request"]["tools"][0]["background"].as_str()),
            Some("transparent")
        );
        assert!(!dir.path().join(format!("marble-{route}.key.png")).exists());
    }
}

#[test]
fn transparent_falls_back_to_a_chroma_key_when_the_alpha_check_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        dir.path(),
        &[
            &[
                "generate",
                "a red fox [fourk:no-alpha]",
                "--transparent",
                "--emulator",
            ][..],
            &SMALL,
            &["--out", "fox.png", "--json"],
        ]
        .concat(),
    );
    let v = json_stdout(&out);
    assert_eq!(v["verified"], true, "{v}");
    assert!(
        stderr(&out).contains("generating on a key colour"),
        "{}",
        stderr(&out)
    );
    // The native attempt is kept under its rejected name; the key-colour original beside it.
    let (has, ..) = alpha_probe(&dir.path().join("fox.rejected.png"));
    assert!(!has);
    let key = image::open(dir.path().join("fox.key.png")).unwrap().to_rgb8();
    assert_eq!(
        key.get_pixel(2, 2).0,
        [0, 255, 0],
        "the backdrop is the key colour"
    );
    let (has, corner, centre) = alpha_probe(&dir.path().join("fox.png"));
    assert!(has && corner == 0 && centre == 255, "{has} {corner} {centre}");

    let car = sidecar(&dir.path().join("fox.png"));
    let t = &car["transparency"];
    assert_eq!(t["method"], "chroma_key", "{t}");
    let steps = t["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["method"], "native");
    assert_eq!(steps[0]["verified"], false);
    assert!(
        steps[0]["outcome"].as_str().unwrap().contains("alpha"),
        "{}",
        steps[0]
    );
    assert_eq!(steps[0]["image"], "fox.rejected.png");
    assert_eq!(steps[1]["method"], "chroma_key");
    assert_eq!(steps[1]["key"], "#00FF00");
    assert_eq!(steps[1]["key_image"], "fox.key.png");
    let share = steps[1]["cutout"]["transparent_share"].as_f64().unwrap();
    assert!((0.2..0.95).contains(&share), "{share}");
    assert!(
        steps[1]["qa"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["pass"] == true)
    );
    assert_eq!(car["checks"]["verified"], true);
    assert_eq!(car["checks"]["actual_alpha"], true);
    assert_eq!(car["derived_from"], "fox.key.png");
    assert!(
        car["request"]["prompt"]
            .as_str()
            .unwrap()
            .contains("chroma-key background of solid #00FF00")
    );
    assert_eq!(car["request"]["background"], "opaque");
    assert!(t["total_cost_usd"].as_f64().unwrap() > 0.0);
}

#[test]
fn transparent_picks_a_contrasting_key_and_obeys_its_method() {
    let dir = tempfile::tempdir().unwrap();
    // Straight to the key for a green subject: magenta.
    run_ok(
        dir.path(),
        &[
            &[
                "generate",
                "a frog on a leaf",
                "--transparent",
                "--transparent-via",
                "key",
                "--emulator",
            ][..],
            &SMALL,
            &["--out", "frog.webp"],
        ]
        .concat(),
    );
    let car = sidecar(&dir.path().join("frog.webp"));
    let t = &car["transparency"];
    assert_eq!(t["steps"].as_array().unwrap().len(), 1);
    assert_eq!(t["steps"][0]["key"], "#FF00FF");
    assert!(t["steps"][0]["key_reason"].as_str().unwrap().contains("frog"));
    assert_eq!(car["checks"]["actual_format"], "webp");
    assert_eq!(car["checks"]["actual_alpha"], true);

    // Native only: a failed alpha check is a failure, with nothing under the final name.
    let out = run(
        dir.path(),
        &[
            &[
                "generate",
                "a fox [fourk:no-alpha]",
                "--transparent",
                "--transparent-via",
                "native",
                "--emulator",
            ][..],
            &SMALL,
            &["--out", "n.png"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!dir.path().join("n.png").exists());
    let car = sidecar(&dir.path().join("n.rejected.png"));
    assert_eq!(car["transparency"]["method"], "none");

    // Rules before sending.
    for (extra, rule) in [
        (&["--format", "jpeg"][..], "transparent_format"),
        (&["-n", "2"][..], "transparent_n"),
    ] {
        let out = run(
            dir.path(),
            &[&["generate", "x", "--transparent", "--dry-run"][..], extra].concat(),
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(rule), "{}", stderr(&out));
    }
    let out = run(
        dir.path(),
        &[
            "generate",
            "x",
            "--transparent",
            "--background",
            "opaque",
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(2));

    // The dry run shows the first request of each branch.
    let body = json_stdout(&run_ok(
        dir.path(),
        &["generate", "a fox", "--transparent", "--dry-run"],
    ));
    assert_eq!(body["background"], "transparent");
    let body = json_stdout(&run_ok(
        dir.path(),
        &[
            "generate",
            "a fox",
            "--transparent",
            "--transparent-via",
            "key",
            "--dry-run",
        ],
    ));
    assert_eq!(body["background"], "opaque");
    assert!(body["prompt"].as_str().unwrap().contains("#00FF00"));
}
