//! Providers through the `fourk` binary, against a `fourk emulator` child on 127.0.0.1: Azure
//! OpenAI on both of its URL shapes (key header, Entra token from a command, deployments,
//! its errors as typed exit codes), an OpenAI-compatible gateway with its own headers and
//! path prefix, the provider on record in sidecars and the ledger, every secret kept out of
//! output, payload logs and sidecars, and the line that says which provider was chosen.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

use crate::common::{self, Emulator, sidecar};

const AZURE_KEY: &str = "az-key-PROVIDERS-5d1e-never-print";
const GATEWAY_SECRET: &str = "gw-secret-PROVIDERS-77aa-never-print";
const TOKEN: &str = "entra-token-PROVIDERS-31c9-never-print";

const SMALL: [&str; 4] = ["--size", "1024x1024", "--quality", "low"];

/// Every file below `dir`, as text, for secret scans.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in walk(dir) {
        if let Ok(bytes) = std::fs::read(&entry) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

/// The emulator's root (`http://127.0.0.1:PORT`), which Azure clients take as the endpoint.
fn root(emu: &Emulator) -> String {
    emu.base.trim_end_matches("/v1").to_owned()
}

fn run(mut cmd: Command, dir: &Path, args: &[&str]) -> Output {
    let out = cmd.current_dir(dir).args(args).output().unwrap();
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        for secret in [AZURE_KEY, GATEWAY_SECRET, TOKEN] {
            assert!(!text.contains(secret), "a secret was printed: {text}");
        }
    }
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn azure(emu: &Emulator) -> Command {
    let mut c = common::fourk();
    c.env("AZURE_OPENAI_ENDPOINT", root(emu))
        .env("AZURE_OPENAI_API_KEY", AZURE_KEY);
    c
}

#[test]
fn azure_serves_both_url_shapes_and_the_provider_is_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(
        dir.path(),
        &["--require-key", AZURE_KEY, "--deployment", "img-eu=gpt-image-2"],
    );
    let ledger = dir.path().join("ledger.db");
    let ledger = ledger.to_str().unwrap();
    // No --provider: AZURE_OPENAI_ENDPOINT alone chooses Azure. A dated api-version takes
    // the deployment URLs.
    let mut args = vec![
        "--ledger",
        ledger,
        "-vv",
        "generate",
        "a harbour at dusk",
        "--deployment",
        "img-eu",
        "--api-version",
        "2025-04-01-preview",
        "--out",
        "classic.png",
        "--log-payload",
        "payloads",
    ];
    args.extend(SMALL);
    let out = run(azure(&emu), dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sc = sidecar(&dir.path().join("classic.png"));
    assert_eq!(sc["provider"]["name"], "azure");
    assert_eq!(sc["provider"]["deployment"], "img-eu");
    assert_eq!(sc["provider"]["api_version"], "2025-04-01-preview");
    assert_eq!(sc["model"], "gpt-image-2", "the model, not the deployment");
    assert!(
        sc["endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/openai/deployments/img-eu/images/generations?api-version=2025-04-01-preview"),
        "{}",
        sc["endpoint"]
    );
    assert_eq!(sc["checks"]["verified"], true);

    // The v1 API: no api-version, the deployment in the body's model.
    let mut args = vec![
        "--ledger",
        ledger,
        "generate",
        "a harbour at dawn",
        "--deployment",
        "img-eu",
        "--out",
        "v1.png",
        "--log-payload",
        "payloads",
    ];
    args.extend(SMALL);
    let out = run(azure(&emu), dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sc = sidecar(&dir.path().join("v1.png"));
    assert!(
        sc["endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/openai/v1/images/generations")
    );
    assert_eq!(sc["provider"]["deployment"], "img-eu");
    assert!(sc["provider"].get("api_version").is_none());

    let routes: Vec<String> = emu
        .posts()
        .iter()
        .map(|r| r["route"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        routes,
        [
            "/openai/deployments/img-eu/images/generations",
            "/openai/v1/images/generations"
        ]
    );
    // The payload log shows the deployment as the body's model on v1, and never the key.
    let logged = all_text(&dir.path().join("payloads"));
    assert!(logged.contains("\"api-key\": \"[REDACTED]\""), "{logged}");
    assert!(logged.contains("\"model\": \"img-eu\""));
    assert!(!all_text(dir.path()).contains(AZURE_KEY), "the key is in a file");

    let db = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let providers: Vec<String> = db
        .prepare("SELECT provider FROM attempts ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(providers, ["azure", "azure"]);
}

#[test]
fn an_azure_edit_goes_to_the_deployments_edit_url() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &["--require-key", AZURE_KEY]);
    image::RgbImage::from_fn(1024, 1024, |x, y| image::Rgb([(x / 4) as u8, (y / 4) as u8, 80]))
        .save(dir.path().join("in.png"))
        .unwrap();
    let mut args = vec![
        "edit",
        "in.png",
        "make it night",
        "--provider",
        "azure",
        "--api-version",
        "2025-04-01-preview",
        "--out",
        "night.png",
    ];
    args.extend(SMALL);
    let out = run(azure(&emu), dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        emu.posts()[0]["route"],
        "/openai/deployments/gpt-image-2/images/edits",
        "the model id names the deployment when --deployment is not given"
    );
    assert_eq!(
        sidecar(&dir.path().join("night.png"))["provider"]["name"],
        "azure"
    );
}

#[test]
fn azure_errors_are_typed_and_say_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(
        dir.path(),
        &[
            "--require-key",
            AZURE_KEY,
            "--moderation-block-words",
            "forbidden",
        ],
    );
    let mut wrong = azure(&emu);
    wrong.env("AZURE_OPENAI_API_KEY", "not-the-key");
    let mut args = vec!["generate", "a fox", "--out", "a.png"];
    args.extend(SMALL);
    let out = run(wrong, dir.path(), &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("authentication failed (HTTP 401)") && err.contains("Access denied"),
        "{err}"
    );
    assert!(
        err.contains("AZURE_OPENAI_API_KEY"),
        "the hint names Azure's variable: {err}"
    );

    let mut args = vec!["generate", "a fox", "--deployment", "nope", "--out", "b.png"];
    args.extend(SMALL);
    let out = run(azure(&emu), dir.path(), &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 404") && err.contains("DeploymentNotFound"),
        "{err}"
    );
    assert!(err.contains("--deployment"), "{err}");

    let mut args = vec!["generate", "a forbidden fox", "--out", "c.png"];
    args.extend(SMALL);
    let out = run(azure(&emu), dir.path(), &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("blocked by moderation (HTTP 400)"), "{err}");
    assert!(err.contains("content filter: violence (medium)"), "{err}");
    assert!(err.contains("code: content_policy_violation"), "{err}");

    // Without an endpoint nothing can be sent, and the variable is named.
    let mut none = common::fourk();
    none.env_remove("AZURE_OPENAI_ENDPOINT");
    let out = run(
        none,
        dir.path(),
        &["generate", "a fox", "--provider", "azure", "--out", "d.png"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("AZURE_OPENAI_ENDPOINT"));
    assert!(!dir.path().join("d.png").exists());
}

#[test]
fn an_entra_token_comes_from_the_token_command() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &["--require-key", TOKEN]);
    let mut c = common::fourk();
    c.env("AZURE_OPENAI_ENDPOINT", root(&emu))
        .env("FOURK_TEST_TOKEN", TOKEN);
    let mut args = vec![
        "generate",
        "a fox",
        "--token-command",
        "printf '%s\\n' \"$FOURK_TEST_TOKEN\"",
        "--out",
        "fox.png",
        "--log-payload",
        "payloads",
    ];
    args.extend(SMALL);
    let out = run(c, dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let logged = all_text(&dir.path().join("payloads"));
    assert!(logged.contains("Bearer [REDACTED]"), "{logged}");
    assert!(!all_text(dir.path()).contains(TOKEN), "the token is in a file");

    let mut c = common::fourk();
    c.env("AZURE_OPENAI_ENDPOINT", root(&emu));
    let out = run(
        c,
        dir.path(),
        &[
            "generate",
            "a fox",
            "--token-command",
            "exit 4",
            "--out",
            "no.png",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--token-command"), "{}", stderr(&out));
}

#[test]
fn a_gateway_gets_its_headers_and_prefix_and_none_of_them_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    // The emulator's v1 routes are below the root: the gateway's URL is the root, and its
    // prefix is `/v1`.
    let emu = Emulator::start_in(dir.path(), &["--require-key", GATEWAY_SECRET]);
    let mut c = common::fourk();
    c.env("OPENAI_API_KEY", GATEWAY_SECRET)
        .env("GW_TEAM_TOKEN", GATEWAY_SECRET);
    let root = root(&emu);
    let mut args = vec![
        "-vv",
        "generate",
        "a fox",
        "--base-url",
        &root,
        "--path-prefix",
        "/v1",
        "--header",
        "X-Team-Token:${GW_TEAM_TOKEN}",
        "--header",
        "X-Team: imaging",
        "--out",
        "fox.png",
        "--log-payload",
        "payloads",
    ];
    args.extend(SMALL);
    let out = run(c, dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sc = sidecar(&dir.path().join("fox.png"));
    assert_eq!(
        sc["provider"]["name"], "compatible",
        "a base URL that is not OpenAI's is a gateway"
    );
    assert_eq!(
        sc["provider"]["headers"],
        serde_json::json!(["X-Team-Token", "X-Team"])
    );
    let logged = all_text(&dir.path().join("payloads"));
    assert!(logged.contains("\"x-team-token\": \"[REDACTED]\""), "{logged}");
    assert!(
        logged.contains("\"x-team\": \"[REDACTED]\""),
        "every --header is redacted: {logged}"
    );
    assert!(!all_text(dir.path()).contains(GATEWAY_SECRET));
    assert_eq!(emu.posts()[0]["route"], "/v1/images/generations");

    let mut c = common::fourk();
    c.env("OPENAI_API_KEY", GATEWAY_SECRET);
    let out = run(
        c,
        dir.path(),
        &[
            "generate",
            "a fox",
            "--base-url",
            &root,
            "--header",
            "X-Team-Token:${UNSET_VAR_FOURK}",
            "--out",
            "x.png",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("UNSET_VAR_FOURK"), "{}", stderr(&out));
}

#[test]
fn the_chosen_provider_is_named_when_others_are_set_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::fourk();
    c.env("AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:9")
        .env("GEMINI_API_KEY", "g-unused");
    let mut args = vec!["generate", "a fox", "--emulator", "--out", "fox.png"];
    args.extend(SMALL);
    let out = run(c, dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("provider openai (--emulator); also set: AZURE_OPENAI_ENDPOINT, GEMINI_API_KEY"),
        "{err}"
    );
    assert!(!err.contains("g-unused"));
}

const GEMINI_KEY: &str = "gemini-key-PROVIDERS-90b2-never-print";

fn gemini(emu: &Emulator) -> Command {
    let mut c = common::fourk();
    c.env("GEMINI_API_KEY", GEMINI_KEY);
    let root = root(emu);
    c.env("GOOGLE_GEMINI_BASE_URL", root);
    c
}

#[test]
fn gemini_makes_the_exact_target_from_its_4k_tier_and_records_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &["--require-key", GEMINI_KEY]);
    let ledger = dir.path().join("ledger.db");
    let out = run(
        gemini(&emu),
        dir.path(),
        &[
            "--ledger",
            ledger.to_str().unwrap(),
            "-vv",
            "generate",
            "a lighthouse at dawn",
            "--model",
            "gemini-3-pro-image-preview",
            "--size",
            "4k",
            "--out",
            "lh.png",
            "--log-payload",
            "payloads",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(common::dims(&dir.path().join("lh.png")), (3840, 2160));
    assert_eq!(common::dims(&dir.path().join("lh.native.png")), (5504, 3072));
    let sc = sidecar(&dir.path().join("lh.png"));
    let g = &sc["gemini"];
    assert_eq!(
        (g["aspect_ratio"].as_str(), g["image_size"].as_str()),
        (Some("16:9"), Some("4K"))
    );
    assert_eq!(g["native"]["checks"]["verified"], true);
    assert_eq!(g["native"]["width"], 5504);
    assert_eq!(
        g["crop"],
        serde_json::json!({"x": 21, "y": 0, "width": 5461, "height": 3072})
    );
    assert_eq!(g["cost"]["usd"].as_f64().map(|u| (u * 100.0).round()), Some(24.0));
    assert_eq!(sc["checks"]["verified"], true, "the fitted file is verified too");
    let native = sidecar(&dir.path().join("lh.native.png"));
    assert_eq!(native["provider"]["name"], "gemini");
    assert_eq!(native["route"], "gemini.generate");
    assert_eq!(native["usage_metadata"]["candidatesTokenCount"], 2000);
    assert_eq!(
        emu.posts()[0]["route"],
        "/v1beta/models/gemini-3-pro-image-preview:generateContent"
    );
    let logged = all_text(&dir.path().join("payloads"));
    assert!(logged.contains("\"x-goog-api-key\": \"[REDACTED]\""), "{logged}");
    assert!(logged.contains("\"imageSize\": \"4K\""));
    assert!(!all_text(dir.path()).contains(GEMINI_KEY));
    let db = rusqlite::Connection::open(&ledger).unwrap();
    let (provider, route): (String, String) = db
        .query_row("SELECT provider, route FROM attempts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((provider.as_str(), route.as_str()), ("gemini", "gemini.generate"));
    let links: i64 = db
        .query_row("SELECT COUNT(*) FROM links WHERE kind = 'image->fit'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(links, 1, "the native image is linked to the fitted one");
}

#[test]
fn gemini_failures_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(
        dir.path(),
        &[
            "--require-key",
            GEMINI_KEY,
            "--moderation-block-words",
            "forbidden",
        ],
    );
    let args = |prompt: &'static str, out: &'static str| {
        vec![
            "generate",
            prompt,
            "--model",
            "gemini-3.1-flash-image",
            "--size",
            "1024x1024",
            "--out",
            out,
        ]
    };
    let mut wrong = gemini(&emu);
    wrong.env("GEMINI_API_KEY", "not-the-key");
    let out = run(wrong, dir.path(), &args("a fox", "a.png"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("authentication failed") && err.contains("API key not valid"),
        "{err}"
    );
    assert!(err.contains("GEMINI_API_KEY"), "{err}");

    let out = run(gemini(&emu), dir.path(), &args("a forbidden fox", "b.png"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the prompt was blocked (PROHIBITED_CONTENT)"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("b.png").exists());

    // Gemini's model through the OpenAI provider: refused before anything is sent.
    let mut c = common::fourk();
    c.env("OPENAI_API_KEY", "sk-x");
    let out = run(
        c,
        dir.path(),
        &[
            "generate",
            "a fox",
            "--model",
            "gemini-3-pro-image",
            "--provider",
            "openai",
            "--size",
            "1024x1024",
            "--base-url",
            "http://127.0.0.1:9/v1",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("served by the Gemini API"),
        "{}",
        stderr(&out)
    );
    // Gemini's tiers need a target.
    let out = run(
        gemini(&emu),
        dir.path(),
        &[
            "generate",
            "a fox",
            "--model",
            "gemini-3-pro-image",
            "--size",
            "auto",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--size"), "{}", stderr(&out));
}

#[test]
fn plan_compares_the_deliverable_across_providers() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(common::fourk(), dir.path(), &["plan", "--size", "4k", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = common::json_stdout(&out);
    let others = plan["other_providers"].as_array().unwrap();
    let pro = others
        .iter()
        .find(|o| o["model"] == "gemini-3-pro-image")
        .unwrap();
    assert_eq!(pro["provider"], "gemini");
    assert_eq!(
        (pro["aspect_ratio"].as_str(), pro["image_size"].as_str()),
        (Some("16:9"), Some("4K"))
    );
    assert_eq!(pro["native"], "5504x3072");
    assert_eq!(pro["resampled"], "downscale");
    assert!((pro["usd"].as_f64().unwrap() - 0.24).abs() < 0.001, "{pro}");
    let text = run(common::fourk(), dir.path(), &["plan", "--size", "4k"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("gemini/gemini-3-pro-image") && text.contains("5504x3072 native"),
        "{text}"
    );
}

#[test]
fn gemini_models_are_refused_where_only_openai_s_shape_is_spoken() {
    let dir = tempfile::tempdir().unwrap();
    // OpenAI's Batch API serves no Gemini model: refused before anything is sent.
    std::fs::write(
        dir.path().join("jobs.jsonl"),
        "{\"prompt\": \"a fox\", \"model\": \"gemini-3-pro-image\", \"size\": \"1024x1024\"}\n",
    )
    .unwrap();
    let out = run(
        common::fourk(),
        dir.path(),
        &["batch", "jobs.jsonl", "--emulator", "--via", "batch-api"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 1: the job goes to the gemini provider")
            && stderr(&out).contains("without --via batch-api"),
        "{}",
        stderr(&out)
    );
    // The emulator's Image API answers as OpenAI would: no such model there.
    let emu = Emulator::start(&[]);
    let body = serde_json::json!({"model": "gemini-3-pro-image", "prompt": "a fox", "size": "1024x1024"})
        .to_string();
    let addr = emu
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        stream,
        "POST /v1/images/generations HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(
        answer.contains("\"code\":\"model_not_found\""),
        "OpenAI's own words: {answer}"
    );
}

#[test]
fn gemini_edits_send_the_images_inline_and_keep_the_input_size() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start_in(dir.path(), &["--require-key", GEMINI_KEY]);
    image::RgbImage::from_fn(1280, 720, |x, y| image::Rgb([(x / 5) as u8, (y / 3) as u8, 90]))
        .save(dir.path().join("in.png"))
        .unwrap();
    let out = run(
        gemini(&emu),
        dir.path(),
        &[
            "edit",
            "in.png",
            "make it night",
            "--model",
            "gemini-3.1-flash-image",
            "--out",
            "night.png",
            "--log-payload",
            "payloads",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // No --size: the input's size, from the smallest 16:9 tier that covers it (1K, 1376x768).
    assert_eq!(common::dims(&dir.path().join("night.png")), (1280, 720));
    let sc = sidecar(&dir.path().join("night.png"));
    assert_eq!(
        (
            sc["gemini"]["aspect_ratio"].as_str(),
            sc["gemini"]["image_size"].as_str()
        ),
        (Some("16:9"), Some("1K"))
    );
    assert_eq!(sc["checks"]["verified"], true);
    let native = sidecar(&dir.path().join("night.native.png"));
    assert_eq!(native["inputs"][0]["filename"], "in.png");
    assert_eq!(native["inputs"][0]["width"], 1280);
    let post = &emu.posts()[0];
    assert_eq!(
        post["route"],
        "/v1beta/models/gemini-3.1-flash-image:generateContent"
    );
    let logged = all_text(&dir.path().join("payloads"));
    assert!(
        logged.contains("inlineData") && !logged.contains("iVBORw0KGgo"),
        "the image travels inline and the log summarises it: {logged}"
    );

    // What Gemini cannot honour is refused before anything is sent, every reason at once.
    image::RgbaImage::new(1280, 720)
        .save(dir.path().join("mask.png"))
        .unwrap();
    let out = run(
        gemini(&emu),
        dir.path(),
        &[
            "edit",
            "in.png",
            "make it night",
            "--model",
            "gemini-3-pro-image",
            "--mask",
            "mask.png",
            "-n",
            "2",
            "--out",
            "masked.png",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("mask: Gemini takes no mask") && err.contains("n: Gemini answers one image"),
        "{err}"
    );
    assert_eq!(emu.posts().len(), 1, "nothing more was sent");
}

#[test]
fn a_batch_sends_each_job_to_its_provider() {
    let dir = tempfile::tempdir().unwrap();
    image::RgbImage::from_fn(1024, 1024, |x, y| image::Rgb([(x / 4) as u8, (y / 4) as u8, 80]))
        .save(dir.path().join("ref.png"))
        .unwrap();
    std::fs::write(
        dir.path().join("jobs.jsonl"),
        concat!(
            "{\"prompt\": \"a lighthouse\", \"name\": \"openai\"}\n",
            "{\"prompt\": \"a lighthouse\", \"name\": \"azure\", \"provider\": \"azure\"}\n",
            "{\"prompt\": \"a lighthouse\", \"name\": \"nano\", \"model\": \"gemini-3.1-flash-image\", \"size\": \"1536x1024\"}\n",
            "{\"prompt\": \"the same at night\", \"name\": \"nano-night\", \"model\": \"gemini-3-pro-image\", \"images\": [\"ref.png\"]}\n",
        ),
    )
    .unwrap();
    let out = run(
        common::fourk(),
        dir.path(),
        &[
            "--ledger",
            "ledger.db",
            "batch",
            "jobs.jsonl",
            "--emulator",
            "--out",
            "shots",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shots = dir.path().join("shots");
    for (name, provider) in [("openai", "openai"), ("azure", "azure"), ("nano", "gemini")] {
        let side = if provider == "gemini" {
            sidecar(&shots.join(format!("{name}.native.png")))
        } else {
            sidecar(&shots.join(format!("{name}.png")))
        };
        assert_eq!(side["provider"]["name"], provider, "{name}: {side}");
    }
    assert_eq!(common::dims(&shots.join("nano.png")), (1536, 1024));
    assert_eq!(sidecar(&shots.join("nano.png"))["gemini"]["aspect_ratio"], "3:2");
    assert_eq!(common::dims(&shots.join("nano-night.png")), (1024, 1024));
    assert_eq!(
        sidecar(&shots.join("nano-night.native.png"))["inputs"][0]["filename"],
        "ref.png"
    );
    let db = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let mut providers: Vec<String> = db
        .prepare("SELECT provider FROM attempts ORDER BY provider")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    providers.dedup();
    assert_eq!(providers, ["azure", "gemini", "openai"]);
    // Run again: every job is done, nothing is sent.
    let again = run(
        common::fourk(),
        dir.path(),
        &[
            "--ledger",
            "ledger.db",
            "batch",
            "jobs.jsonl",
            "--emulator",
            "--out",
            "shots",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--json",
        ],
    );
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(common::json_stdout(&again)["requests"], 0, "{}", stderr(&again));

    // A provider that does not serve the job's model is a problem of its line, named before
    // anything is sent, with the other problems of the file.
    std::fs::write(
        dir.path().join("bad.jsonl"),
        concat!(
            "{\"prompt\": \"a fox\", \"provider\": \"gemini\"}\n",
            "{\"prompt\": \"a fox\", \"provider\": \"bedrock\"}\n",
            "{\"prompt\": \"a fox\", \"model\": \"gemini-3-pro-image\", \"n\": 2, \"size\": \"4k\"}\n",
        ),
    )
    .unwrap();
    let out = run(
        common::fourk(),
        dir.path(),
        &["batch", "bad.jsonl", "--emulator", "--out", "bad"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 1: provider: gpt-image-2 is not served by gemini"),
        "{err}"
    );
    assert!(
        err.contains("line 2: provider: unknown provider 'bedrock'"),
        "{err}"
    );
    assert!(err.contains("line 3: n: Gemini answers one image"), "{err}");
}
