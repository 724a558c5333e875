//! End-to-end tests of the `fourk` binary, as a user runs it. Every server is on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::common::{dims, fourk, fourk_unsent, json_stdout, sidecar};

const SECRET: &str = "sk-test-SECRET-do-not-print-4242";

fn spec_validator(schema: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/openai-openapi.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    spec["$ref"] = Value::String(format!("#/components/schemas/{schema}"));
    jsonschema::validator_for(&spec).unwrap()
}

// --- fourk size ---------------------------------------------------------------------------

#[test]
fn size_valid_4k_is_experimental() {
    let out = fourk().args(["size", "4k", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v = json_stdout(&out);
    assert_eq!(v["size"], "3840x2160");
    assert_eq!(v["width"], 3840);
    assert_eq!(v["height"], 2160);
    assert_eq!(v["model"], "gpt-image-2");
    assert_eq!(v["valid"], true);
    assert_eq!(v["experimental"], true);
    assert_eq!(v["pixels"], 8_294_400);
    assert_eq!(v["violations"], Value::Array(vec![]));
    assert_eq!(v["suggestions"], Value::Array(vec![]));
}

#[test]
fn size_invalid_names_rules_and_suggests() {
    let out = fourk().args(["size", "1920x1080", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_stdout(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(v["violations"][0]["rule"], "multiple_of_16");
    assert_eq!(v["suggestions"][0], "1920x1088");
    assert_eq!(v["suggestions"][1], "1920x1072");

    let out = fourk().args(["size", "4096x2160"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("max_edge: "), "{text}");
    assert!(text.contains("max_pixels: "), "{text}");
    assert!(text.contains("3840x2016"), "{text}");
}

#[test]
fn size_fixed_model_and_retired_model() {
    // gpt-image-1-mini's fixed sizes, from the models file of the retired models.
    let legacy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fourk-api/tests/fixtures/legacy-models.toml"
    );
    let out = fourk()
        .args(["size", "3840x2160", "--model", "gpt-image-1-mini", "--json"])
        .args(["--models-file", legacy])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_stdout(&out)["violations"][0]["rule"], "unsupported_size");
    let out = fourk()
        .args(["size", "1024x1024", "--model", "dall-e-3", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_stdout(&out);
    assert_eq!(v["violations"][0]["rule"], "retired");
    assert!(
        v["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("retired")
    );
}

#[test]
fn models_retired_on_december_first_are_refused_before_anything_is_sent() {
    for model in ["gpt-image-1.5", "gpt-image-1-mini", "chatgpt-image-latest"] {
        let out = fourk_unsent()
            .args(["generate", "a fox", "--model", model, "--size", "1024x1024"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{model}: {err}");
        assert!(
            err.contains(&format!("{model} was shut down on December 1, 2026")),
            "{err}"
        );
        assert!(!err.contains("127.0.0.1:9"), "nothing was sent: {err}");
    }
}

#[test]
fn models_shows_sources_and_check_flags_stale_entries_with_a_fixed_clock() {
    let out = fourk().args(["models"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("gpt-image-2.6-flare: sizes"), "{text}");
    assert!(
        text.contains("unknown (unverified, never sent): token bases"),
        "{text}"
    );
    assert!(text.contains("(checked 2026-12-03)"), "{text}");
    let fresh = fourk()
        .args(["models", "--check", "--today", "2026-12-31"])
        .output()
        .unwrap();
    assert_eq!(
        fresh.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    assert!(fresh.stdout.is_empty());
    let late = fourk()
        .args(["models", "--check", "--json", "--today", "2027-03-04"])
        .output()
        .unwrap();
    assert_eq!(late.status.code(), Some(1));
    let v = json_stdout(&late);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "gpt-image-2" && s["age_days"] == 91),
        "{v}"
    );
}

#[test]
fn store_flags_show_only_where_they_are_used_and_are_accepted_everywhere() {
    let help = |cmd: &[&str]| {
        let out = fourk().args(cmd).arg("--help").output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    for cmd in [&["generate"][..], &["cost"], &["batch", "collect"], &["size"]] {
        let text = help(cmd);
        assert!(
            text.contains("--models-file") || cmd == ["cost"],
            "{cmd:?}:\n{text}"
        );
        assert!(text.contains("--ledger") || cmd == ["size"], "{cmd:?}:\n{text}");
    }
    for cmd in [&["verify"][..], &["emulator"]] {
        let text = help(cmd);
        assert!(!text.contains("--ledger"), "{cmd:?}:\n{text}");
    }
    for cmd in [&["verify"][..], &["upscale"], &["sheet"], &["history"]] {
        let text = help(cmd);
        assert!(!text.contains("--models-file"), "{cmd:?}:\n{text}");
    }
    // The pipeline writes images, so it records them in the ledger.
    assert!(help(&["upscale"]).contains("--ledger"));
    // Still accepted before and after every command, as scripts pass them.
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("l.db");
    let l = ledger.to_str().unwrap();
    for args in [
        vec!["--ledger", l, "size", "4k"],
        vec!["size", "4k", "--ledger", l],
        vec!["size", "4k", "--models-file", "/nonexistent.toml"],
    ] {
        let out = fourk().args(&args).output().unwrap();
        let code = out.status.code();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
        if args.contains(&"--models-file") {
            assert_eq!(code, Some(2), "the given models file is used: {err}");
            assert!(err.contains("nonexistent.toml"), "{err}");
        } else {
            assert_eq!(code, Some(0), "{args:?}: {err}");
        }
    }
}

#[test]
fn presets_are_listed_in_help() {
    let out = fourk().args(["generate", "--help"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for p in [
        "4k=3840x2160",
        "4k-portrait=2160x3840",
        "2k=2560x1440",
        "2k-portrait=1440x2560",
        "square=2048x2048",
    ] {
        assert!(text.contains(p), "{p} missing from help:\n{text}");
    }
}

// --- fourk generate --dry-run ----------------------------------------------------------------

#[test]
fn dry_run_prints_the_exact_body_and_it_validates_against_the_spec() {
    let validator = spec_validator("CreateImageRequest");
    // The schema has teeth: a body it must reject.
    assert!(!validator.is_valid(&serde_json::json!({"prompt": 5, "n": 11})));
    let cases: &[&[&str]] = &[
        &["generate", "a red fox", "--dry-run"],
        &[
            "generate",
            "a red fox",
            "--dry-run",
            "--size",
            "4k-portrait",
            "--quality",
            "high",
            "--format",
            "jpeg",
            "--compression",
            "80",
            "--moderation",
            "low",
            "-n",
            "2",
            "--safety-identifier",
            "user-hash",
        ],
        &[
            "generate",
            "logo",
            "--dry-run",
            "--background",
            "transparent",
            "--format",
            "webp",
            "--size",
            "1024x1024",
        ],
    ];
    for args in cases {
        let out = fourk()
            .env("OPENAI_API_KEY", SECRET)
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body = json_stdout(&out);
        assert!(validator.is_valid(&body), "{body}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));
    }
    let out = fourk()
        .args(["generate", "a red fox", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"model\":\"gpt-image-2\",\"prompt\":\"a red fox\",\"size\":\"3840x2160\"}\n"
    );
}

#[test]
fn bad_options_fail_before_sending() {
    let out = fourk()
        .args(["generate", "x", "--dry-run", "--compression", "50"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("output_compression"));
    let out = fourk()
        .args(["generate", "x", "--dry-run", "--out", "a.jpg", "--format", "png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = fourk()
        .args(["generate", "x", "--dry-run", "--size", "16:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A loopback listener that counts connections, to prove a request never left.
struct CountingServer {
    url: String,
    hits: Arc<AtomicUsize>,
}

fn counting_server(response: Option<Vec<u8>>) -> CountingServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            h.fetch_add(1, Ordering::SeqCst);
            if let Some(resp) = &response {
                // Read the request headers and body, then answer with the canned response.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                let mut need: Option<usize> = None;
                while let Ok(n) = s.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if need.is_none()
                        && let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                    {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        need = Some(end + 4 + len);
                    }
                    if need.is_some_and(|n| buf.len() >= n) {
                        break;
                    }
                }
                let _ = s.write_all(resp);
            }
        }
    });
    CountingServer { url, hits }
}

#[test]
fn bad_size_never_reaches_the_server() {
    let server = counting_server(None);
    let out = fourk()
        .env("OPENAI_API_KEY", SECRET)
        .args([
            "generate",
            "a fox",
            "--size",
            "1920x1080",
            "--base-url",
            &server.url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("multiple_of_16"), "{err}");
    assert!(err.contains("1920x1088"), "{err}");
    assert!(!err.contains(SECRET));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(server.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn missing_key_says_what_to_do() {
    let out = fourk()
        .args([
            "generate",
            "a fox",
            "--size",
            "1024x1024",
            "--base-url",
            "http://127.0.0.1:9/v1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OPENAI_API_KEY") && err.contains("--emulator"),
        "{err}"
    );
}

// --- generate -> file -> verify on the emulator ------------------------------------------------

fn generate_json(dir: &Path, args: &[&str]) -> (Value, std::process::Output) {
    let out = fourk()
        .current_dir(dir)
        .env("OPENAI_API_KEY", SECRET)
        .args(["-v", "generate", "--emulator", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(SECRET), "key leaked");
    }
    (json_stdout(&out), out)
}

#[test]
fn generates_a_verified_4k_png_with_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = generate_json(
        dir.path(),
        &[
            "a lighthouse at dawn",
            "--size",
            "4k",
            "--quality",
            "high",
            "--out",
            "hero.png",
        ],
    );
    assert_eq!(v["width"], 3840);
    assert_eq!(v["height"], 2160);
    assert_eq!(v["format"], "png");
    assert_eq!(v["verified"], true);
    assert_eq!(v["source"], "emulator");
    assert_eq!(v["usage"]["output_tokens"], 13342);
    assert!((v["cost"]["usd"].as_f64().unwrap() - 0.40).abs() < 0.01);
    let img = dir.path().join("hero.png");
    assert_eq!(dims(&img), (3840, 2160));

    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("hero.png.json")).unwrap()).unwrap();
    let text = serde_json::to_string(&sidecar).unwrap();
    assert!(!text.contains(SECRET));
    assert_eq!(sidecar["route"], "images.generate");
    assert_eq!(sidecar["request"]["size"], "3840x2160");
    assert!(
        sidecar["response"]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    assert!(sidecar["response"]["processing_ms"].is_u64());
    assert!(
        sidecar["response"]["emulator"]
            .as_str()
            .unwrap()
            .contains("procedural")
    );
    assert_eq!(sidecar["checks"]["verified"], true);
    assert_eq!(sidecar["checks"]["actual_width"], 3840);
    assert_eq!(sidecar["checks"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(sidecar["warnings"][0]["id"], "experimental_size");
    assert!(spec_validator("CreateImageRequest").is_valid(&sidecar["request"]));

    let out = fourk()
        .current_dir(dir.path())
        .args(["verify", "hero.png", "--expect", "4k", "--format", "png"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3840x2160"));
}

#[test]
fn generates_a_portrait_jpeg_with_compression() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = generate_json(
        dir.path(),
        &[
            "a tall waterfall",
            "--size",
            "4k-portrait",
            "--format",
            "jpeg",
            "--compression",
            "70",
            "--quality",
            "low",
            "--out",
            "tall.jpg",
        ],
    );
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(2160), Some(3840))
    );
    assert_eq!(v["format"], "jpeg");
    assert_eq!(v["verified"], true);
    let out = fourk()
        .current_dir(dir.path())
        .args([
            "verify",
            "tall.jpg",
            "--expect",
            "2160x3840",
            "--format",
            "jpeg",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r = json_stdout(&out);
    assert_eq!(r[0]["ok"], true);
}

#[test]
fn several_images_get_numbered_names() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = generate_json(
        dir.path(),
        &[
            "icons",
            "--size",
            "1024x1024",
            "-n",
            "2",
            "--quality",
            "low",
            "--out",
            "icon.png",
        ],
    );
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(dir.path().join("icon-1.png").exists() && dir.path().join("icon-2.png.json").exists());
}

#[test]
fn verify_reports_mismatch_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    generate_json(
        dir.path(),
        &[
            "a cat",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--out",
            "cat.png",
        ],
    );
    let out = fourk()
        .current_dir(dir.path())
        .args(["verify", "cat.png", "--expect", "4k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("expected 3840"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let bytes = std::fs::read(dir.path().join("cat.png")).unwrap();
    std::fs::write(dir.path().join("cut.png"), &bytes[..bytes.len() / 2]).unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .args(["verify", "cat.png", "cut.png", "missing.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cat.png PNG 1024x1024") && text.contains("cut.png") && text.contains("FAIL"),
        "{text}"
    );
}

/// A server that answers a 4K request with a 1024x1024 image (a gateway that drops `size`):
/// fourk must not accept it.
#[test]
fn a_wrong_size_answer_is_kept_as_rejected_and_fails() {
    let img = image::RgbImage::from_fn(1024, 1024, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    use base64::Engine as _;
    let body = format!(
        "{{\"created\":1,\"data\":[{{\"b64_json\":\"{}\"}}],\"size\":\"3840x2160\",\"output_format\":\"png\"}}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_wrongsize\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let server = counting_server(Some(resp.into_bytes()));
    let dir = tempfile::tempdir().unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", SECRET)
        .args([
            "generate",
            "a fox",
            "--size",
            "4k",
            "--base-url",
            &server.url,
            "--out",
            "fox.png",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("fox.png").exists(),
        "a mismatching image stands under the final name"
    );
    let rejected: PathBuf = dir.path().join("fox.rejected.png");
    assert!(rejected.exists());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3840") && err.contains("1024") && err.contains("req_wrongsize"),
        "{err}"
    );
    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("fox.rejected.png.json")).unwrap()).unwrap();
    assert_eq!(sidecar["checks"]["verified"], false);
    assert_eq!(
        sidecar["provider"]["name"], "compatible",
        "a base URL that is not OpenAI's is a gateway, and its answer is verified, not trusted"
    );
}

#[test]
fn a_models_file_adds_a_model_without_a_release() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("models.toml");
    std::fs::write(
        &file,
        r#"
[[model]]
id = "gpt-image-3"
status = "active"
qualities = ["low", "high"]
formats = ["png"]
[model.sizes]
kind = "fixed"
sizes = ["2048x2048"]
"#,
    )
    .unwrap();
    let out = fourk()
        .env("FOURK_MODELS", &file)
        .args(["size", "square", "--model", "gpt-image-3"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = fourk()
        .args(["--models-file"])
        .arg(&file)
        .args(["size", "4k", "--model", "gpt-image-3", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_stdout(&out)["suggestions"][0], "2048x2048");
    std::fs::write(&file, "not = [valid").unwrap();
    let out = fourk()
        .env("FOURK_MODELS", &file)
        .args(["size", "4k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("models file"));
}

#[test]
fn the_key_never_appears_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", SECRET)
        .args([
            "-vv",
            "generate",
            "a fox",
            "--emulator",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--out",
            "fox.png",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.len() > 200, "trace logging produced almost nothing");
    for (name, bytes) in [
        ("stdout", out.stdout.clone()),
        ("stderr", out.stderr.clone()),
        ("sidecar", std::fs::read(dir.path().join("fox.png.json")).unwrap()),
    ] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "key found in {name}"
        );
    }
}

#[test]
fn emulator_prints_its_address_first_and_serves() {
    use std::io::BufRead;
    let bin = assert_cmd::cargo::cargo_bin("fourk");
    let mut child = std::process::Command::new(bin)
        .args(["-q", "emulator", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("listening on ").expect(&line).to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let dir = tempfile::tempdir().unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .env("OPENAI_API_KEY", "sk-anything")
        .env("OPENAI_BASE_URL", format!("{url}/v1"))
        .args([
            "generate",
            "a fox",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--out",
            "fox.png",
            "--json",
        ])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_stdout(&out)["verified"], true);
}

// --- payload log, replay, streaming, edit, responses route ---------------------------------

fn run_ok(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = fourk()
        .current_dir(dir)
        .env("OPENAI_API_KEY", SECRET)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(SECRET), "key leaked");
    }
    out
}

fn write_png(path: &Path, w: u32, h: u32, alpha: bool) {
    if alpha {
        let mut img = image::RgbaImage::from_pixel(w, h, image::Rgba([10, 20, 30, 255]));
        img.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        img.save(path).unwrap();
    } else {
        image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]))
            .save(path)
            .unwrap();
    }
}

fn longest_string(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(longest_string).max().unwrap_or(0),
        Value::Object(m) => m.values().map(longest_string).max().unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn payload_log_has_no_key_summarises_blobs_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        dir.path(),
        &[
            "generate",
            "a fox",
            "--emulator",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--out",
            "fox.png",
            "--log-payload",
            "log",
            "--retries",
            "1",
        ],
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("possibly billed"));
    let car = sidecar(&dir.path().join("fox.png"));
    assert_eq!(car["attempts"], 1);
    let log = dir.path().join("log");
    let names: Vec<String> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".request.json")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".response.json")), "{names:?}");
    for n in &names {
        let bytes = std::fs::read(log.join(n)).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(SECRET), "key in {n}");
        if n.ends_with(".json") {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            assert!(longest_string(&v) <= 1000, "unsummarised blob in {n}");
        }
    }
    let store = tempfile::tempdir().unwrap();
    let ledger = store.path().join("ledger.db");
    let out = run_ok(
        dir.path(),
        &[
            "replay",
            "log",
            "--emulator",
            "--ledger",
            ledger.to_str().unwrap(),
        ],
    );
    let v = json_stdout(&out);
    assert_eq!(v["status"], 200);
    assert!(v["request_id"].is_string());
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(after.len(), 3, "replay saved something: {after:?}");
    // A replay is a request that may be billed: on record, with the answer's usage.
    let conn = rusqlite::Connection::open(&ledger).unwrap();
    let (kind, state, route): (String, String, String) = conn
        .query_row(
            "SELECT r.kind, a.state, a.route FROM runs r JOIN attempts a ON a.run_id = r.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (kind.as_str(), state.as_str(), route.as_str()),
        ("replay", "ok", "images.generate")
    );
    let (measured, quality): (bool, String) = conn
        .query_row("SELECT measured, quality FROM usage", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(measured);
    assert_eq!(quality, "low");
}

#[test]
fn replay_of_a_missing_log_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .args(["replay", "empty", "--emulator"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("request.json"));
}

#[test]
fn streams_keeps_partials_and_records_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        dir.path(),
        &[
            "generate",
            "a fox",
            "--emulator",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--out",
            "fox.png",
            "--stream",
            "--partials",
            "2",
            "--keep-partials",
            "--json",
        ],
    );
    let v = json_stdout(&out);
    assert_eq!(v["verified"], true);
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
    for k in 0..2 {
        let p = dir.path().join(format!("fox.partial-{k}.png"));
        assert!(p.exists(), "missing {}", p.display());
        image::open(&p).unwrap();
    }
    assert_eq!(dims(&dir.path().join("fox.png")), (1024, 1024));
    let car = sidecar(&dir.path().join("fox.png"));
    assert_eq!(car["route"], "images.generate");
    assert_eq!(car["stream"], true);
    assert!(car["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("partial image 1"));
}

#[test]
fn edits_one_and_two_images() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 64, 48, false);
    write_png(&dir.path().join("b.png"), 32, 32, true);
    let out = run_ok(
        dir.path(),
        &[
            "edit",
            "a.png",
            "make it blue",
            "--emulator",
            "--size",
            "1024x1024",
            "--out",
            "one.png",
            "--json",
        ],
    );
    assert_eq!(json_stdout(&out)["verified"], true);
    let car = sidecar(&dir.path().join("one.png"));
    assert_eq!(car["route"], "images.edit");
    assert_eq!(car["inputs"][0]["part"], "image");
    assert_eq!(car["request"]["prompt"], "make it blue");

    run_ok(
        dir.path(),
        &[
            "edit",
            "a.png",
            "b.png",
            "put b on a",
            "--emulator",
            "--size",
            "1024x1024",
            "--out",
            "two.png",
        ],
    );
    let car = sidecar(&dir.path().join("two.png"));
    assert_eq!(car["inputs"][1]["part"], "image[]");
    assert_eq!(car["inputs"][1]["filename"], "b.png");
    assert_eq!(car["checks"]["verified"], true);
}

#[test]
fn mask_rules_fail_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 64, 48, false);
    write_png(&dir.path().join("opaque.png"), 64, 48, false);
    write_png(&dir.path().join("small.png"), 32, 32, true);
    let server = counting_server(None);
    for (mask, rule) in [("opaque.png", "mask_alpha"), ("small.png", "mask_dimensions")] {
        let out = fourk()
            .current_dir(dir.path())
            .env("OPENAI_API_KEY", SECRET)
            .args([
                "edit",
                "a.png",
                "edit it",
                "--mask",
                mask,
                "--base-url",
                &server.url,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(rule), "{err}");
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(server.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn edit_dry_run_prints_the_multipart_layout_without_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 64, 48, false);
    write_png(&dir.path().join("b.png"), 64, 48, true);
    write_png(&dir.path().join("m.png"), 64, 48, true);
    let out = run_ok(
        dir.path(),
        &[
            "edit",
            "a.png",
            "b.png",
            "merge",
            "--mask",
            "m.png",
            "--dry-run",
            "--quality",
            "low",
        ],
    );
    let v = json_stdout(&out);
    assert_eq!(v["endpoint"], "images/edits");
    assert_eq!(v["content_type"], "multipart/form-data");
    assert_eq!(
        v["fields"][1],
        serde_json::json!({"name": "prompt", "value": "merge"})
    );
    let files = v["files"].as_array().unwrap();
    let parts: Vec<&str> = files.iter().map(|f| f["part"].as_str().unwrap()).collect();
    assert_eq!(parts, ["image[]", "image[]", "mask"]);
    assert_eq!(files[0]["filename"], "a.png");
    assert_eq!(files[0]["content_type"], "image/png");
    let a = std::fs::read(dir.path().join("a.png")).unwrap();
    assert_eq!(files[0]["bytes"], a.len());
    assert_eq!(files[0]["sha256"].as_str().unwrap().len(), 64);
    assert!(longest_string(&v) < 100, "bytes leaked into the layout");
}

#[test]
fn both_routes_yield_the_same_checks_and_responses_chain() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["a fox", "--emulator", "--size", "1024x1024", "--quality", "low"];
    run_ok(
        dir.path(),
        &[&["generate"][..], &common, &["--out", "images.png"]].concat(),
    );
    run_ok(
        dir.path(),
        &[
            &["generate"][..],
            &common,
            &["--out", "responses.png", "--route", "responses"],
        ]
        .concat(),
    );
    let a = sidecar(&dir.path().join("images.png"));
    let b = sidecar(&dir.path().join("responses.png"));
    for key in [
        "requested_width",
        "requested_height",
        "actual_width",
        "actual_height",
        "actual_format",
        "verified",
    ] {
        assert_eq!(a["checks"][key], b["checks"][key], "{key}");
    }
    assert_eq!(b["route"], "responses");
    assert!(b["responses"]["image_call_id"].is_string());
    assert!(b["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // A chain needs one emulator that outlives each command: a separate process.
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("fourk"))
        .args(["-q", "emulator", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!("{}/v1", line.trim().strip_prefix("listening on ").expect(&line));
    let remote = [
        "a fox",
        "--base-url",
        &url,
        "--size",
        "1024x1024",
        "--quality",
        "low",
        "--route",
        "responses",
    ];
    run_ok(
        dir.path(),
        &[&["generate"][..], &remote, &["--out", "first.png"]].concat(),
    );
    let id = sidecar(&dir.path().join("first.png"))["responses"]["response_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let chained = std::panic::catch_unwind(|| {
        run_ok(
            dir.path(),
            &[
                &["generate"][..],
                &remote,
                &["--out", "next.png", "--previous-response", &id],
            ]
            .concat(),
        )
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(chained.is_ok(), "the chained request failed");
    let c = sidecar(&dir.path().join("next.png"));
    assert_eq!(c["responses"]["previous_response_id"], id.as_str());
    assert_eq!(c["checks"]["verified"], true);
}

#[test]
fn checks_before_money_timeout_and_base_url() {
    let dir = tempfile::tempdir().unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .args(["generate", "a fox", "--emulator", "--timeout", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--timeout") && err.contains("at least 1 second"),
        "{err}"
    );
    let out = fourk()
        .current_dir(dir.path())
        .args(["generate", "a fox", "--size", "1024x1024"])
        .env("OPENAI_API_KEY", "sk-test-url")
        .env("OPENAI_BASE_URL", "not-a-url")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OPENAI_BASE_URL") && err.contains("'not-a-url'"),
        "{err}"
    );
    assert!(!err.contains("builder error"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn a_timeout_below_the_usual_render_time_is_allowed_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .args([
            "generate",
            "a fox",
            "--emulator",
            "--size",
            "1024x1024",
            "--quality",
            "high",
        ])
        .args(["--timeout", "5", "--out", "fox.png"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("--timeout 5s is shorter than the 195s"), "{err}");
    let out = fourk()
        .current_dir(dir.path())
        .args([
            "generate",
            "a fox",
            "--emulator",
            "--size",
            "1024x1024",
            "--quality",
            "low",
        ])
        .args(["--timeout", "60", "--out", "fox2.png"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("shorter than"));
}

#[test]
fn errors_say_each_os_error_once_and_logs_have_no_colour_when_redirected() {
    let dir = tempfile::tempdir().unwrap();
    let out = fourk()
        .current_dir(dir.path())
        .args(["upscale", "missing.png", "--to", "2k", "--out", "big.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert!(err.contains("missing.png"), "{err}");
    let out = fourk()
        .current_dir(dir.path())
        .args([
            "generate",
            "a fox",
            "--emulator",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--out",
            "fox.png",
        ])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INFO") || err.contains("requesting"), "{err}");
    assert!(!err.contains('\u{1b}'), "no escape codes in a file: {err:?}");
}
