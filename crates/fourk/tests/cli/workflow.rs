//! The workflow commands end to end, as a user runs them: `fourk plan` (offline), `fourk
//! draft` -> `fourk final`, and `fourk deliver` with its fallback, on the emulator. Every
//! server is on 127.0.0.1.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{self, dims, json_stdout, sidecar};

fn fourk(dir: &Path) -> Command {
    let mut c = common::fourk();
    c.current_dir(dir).env_remove("FOURK_LEDGER");
    c
}

fn links(ledger: &Path) -> Vec<(i64, i64, String)> {
    let conn = rusqlite::Connection::open(ledger).unwrap();
    let mut st = conn
        .prepare("SELECT from_image, to_image, kind FROM links ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn ok(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// --- fourk plan ---------------------------------------------------------------------------

#[test]
fn plan_json_for_one_4k_hero() {
    let dir = tempfile::tempdir().unwrap();
    let out = fourk(dir.path())
        .args(["plan", "--size", "4k", "--quality", "high", "--json"])
        .output()
        .unwrap();
    ok(&out);
    let v = json_stdout(&out);
    assert_eq!(v["recommended"], "native");
    assert_eq!(v["experimental"], true);
    assert!(v["experimental_note"].as_str().unwrap().contains("2560x1440"));
    assert_eq!(v["draft_size"], "1536x864");
    assert_eq!(v["master_size"], "2560x1440");
    assert_eq!(v["rules"][0], "one-hero-native");
    let ids: Vec<&str> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], "native");
    for id in ["drafts-native", "drafts-upscale"] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    let native = &v["candidates"][0];
    assert_eq!(native["steps"][0]["output_tokens"], 13_342);
    assert!((native["usd"].as_f64().unwrap() - 0.400).abs() < 0.001);
    assert!(native["seconds"].as_f64().unwrap() > 200.0);
    assert_eq!(native["experimental"], true);
    let up = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "drafts-upscale")
        .unwrap();
    assert_eq!(up["experimental"], false);
    assert_eq!(up["steps"][1]["output_tokens"], 7370);
    assert_eq!(up["steps"][2]["kind"], "upscale");
    assert!(!v["why"].as_array().unwrap().is_empty());
    assert!(v["latency_source"].as_str().unwrap().contains("§13"));
}

#[test]
fn plan_rules_variants_text_budget_and_text_output() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = fourk(dir.path())
            .args(["plan", "--size", "4k", "--json"])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), json_stdout(&out))
    };
    let (code, v) = run(&["--variants", "6"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["recommended"], "drafts-native");
    let (_, v) = run(&["--text-heavy"]);
    assert_eq!(v["recommended"], "drafts-upscale");
    let (_, v) = run(&["--transparent"]);
    assert!(
        v["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "native-transparent")
    );
    let (code, v) = run(&["--budget", "0.30"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["recommended"], "medium-2k");
    let native = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "native")
        .unwrap();
    assert!(native["excluded"].as_str().unwrap().contains("over budget"));
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .contains(&Value::from("cost-latency-blocker"))
    );
    let (code, v) = run(&["--budget", "0.001"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["recommended"], Value::Null);

    let out = fourk(dir.path()).args(["plan", "--size", "4k"]).output().unwrap();
    ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("EXPERIMENTAL"), "{text}");
    assert!(text.contains("recommended: native"), "{text}");
    assert!(text.contains("drafts-upscale"), "{text}");

    let out = fourk(dir.path())
        .args(["plan", "--size", "1920x1080"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("multiple_of_16") && err.contains("1920x1088"),
        "{err}"
    );
}

#[test]
fn plan_prices_come_from_the_models_file() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models.toml");
    std::fs::write(
        &models,
        r#"
[[model]]
id = "gpt-image-2"
status = "active"
qualities = ["low", "medium", "high", "auto"]
formats = ["png", "jpeg", "webp"]
[model.sizes]
kind = "flexible"
max_edge = 3840
multiple_of = 16
max_ratio = 3.0
min_pixels = 655360
max_pixels = 8294400
experimental_above_pixels = 3686400
[model.tokens]
kind = "gpt-image-2"
[model.price]
text_input = 5.0
cached_text_input = 1.25
image_input = 8.0
cached_image_input = 2.0
image_output = 60.0
estimate = true
[model.latency]
low_s = 10.0
medium_s = 40.0
high_s = 100.0
pixel_exponent = 0.0
source = "test numbers"
"#,
    )
    .unwrap();
    let out = fourk(dir.path())
        .env("FOURK_MODELS", &models)
        .args(["plan", "--size", "4k", "--json"])
        .output()
        .unwrap();
    ok(&out);
    let v = json_stdout(&out);
    let native = &v["candidates"][0];
    assert!(
        (native["usd"].as_f64().unwrap() - 0.800).abs() < 0.001,
        "{native}"
    );
    assert!(
        (native["seconds"].as_f64().unwrap() - 100.0).abs() < 1e-6,
        "{native}"
    );
    assert_eq!(v["latency_source"], "test numbers");
    assert_eq!(v["prices"]["estimate"], true);
}

// --- fourk draft -> fourk final -----------------------------------------------------------

#[test]
fn draft_then_final_native_and_upscale_record_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let l = ledger.to_str().unwrap();
    let out = fourk(dir.path())
        .args([
            "--ledger",
            l,
            "draft",
            "a red fox in snow",
            "-n",
            "3",
            "--size",
            "4k",
            "--emulator",
            "--out",
            "drafts/fox.png",
            "--json",
        ])
        .output()
        .unwrap();
    ok(&out);
    let v = json_stdout(&out);
    assert_eq!(v["draft_size"], "1536x864");
    assert_eq!(v["target"], "3840x2160");
    let drafts = v["drafts"].as_array().unwrap();
    assert_eq!(drafts.len(), 3);
    for d in drafts {
        assert_eq!(d["verified"], true);
        assert!(d["id"].as_i64().is_some(), "{d}");
        let p = dir.path().join(d["path"].as_str().unwrap());
        assert_eq!(dims(&p), (1536, 864));
        let car = sidecar(&p);
        assert_eq!(car["workflow"]["target"], "3840x2160");
        assert_eq!(car["request"]["quality"], "low");
    }
    let sheet = dir.path().join(v["sheet"].as_str().unwrap());
    assert!(
        fourk_imaging::verify_file(&sheet, &fourk_imaging::Expect::default())
            .unwrap()
            .ok
    );
    assert!(v["usd"].as_f64().unwrap() > 0.0);
    let draft_id = drafts[1]["id"].as_i64().unwrap();

    // Native: an edit of the draft at the target size.
    let out = fourk(dir.path())
        .args([
            "--ledger",
            l,
            "final",
            &draft_id.to_string(),
            "--native",
            "--quality",
            "low",
            "--emulator",
            "--out",
            "final-native.png",
            "--json",
        ])
        .output()
        .unwrap();
    ok(&out);
    let v = json_stdout(&out);
    assert_eq!(v["mode"], "native");
    assert_eq!(v["draft"], draft_id);
    let shipped = dir.path().join(v["shipped"].as_str().unwrap());
    assert_eq!(dims(&shipped), (3840, 2160));
    let car = sidecar(&shipped);
    assert_eq!(car["route"], "images.edit");
    assert_eq!(car["checks"]["verified"], true);
    assert_eq!(car["workflow"]["from_draft"]["id"], draft_id);
    let native_id = v["id"].as_i64().unwrap();
    assert!(links(&ledger).contains(&(draft_id, native_id, "draft->final".into())));

    // Upscale: a 2K master from the draft, then a local upscale to the exact target.
    let out = fourk(dir.path())
        .args([
            "--ledger",
            l,
            "final",
            "drafts/fox-1.png",
            "--upscale",
            "--quality",
            "low",
            "--emulator",
            "--out",
            "final-up.png",
            "--json",
        ])
        .output()
        .unwrap();
    ok(&out);
    let v = json_stdout(&out);
    assert_eq!(v["mode"], "upscale");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], "master");
    assert_eq!(steps[1]["step"], "upscale");
    assert_eq!(steps[1]["usd"], 0.0);
    let master = dir.path().join("final-up.master.png");
    assert_eq!(dims(&master), (2560, 1440));
    let up = dir.path().join("final-up.png");
    assert_eq!(dims(&up), (3840, 2160));
    let car = sidecar(&up);
    assert_eq!(car["route"], "local.upscale");
    assert_eq!(car["checks"]["verified"], true);
    assert_eq!(car["source"]["width"], 2560);
    // The hashes name the files on disk: the master read once, the upscale as written.
    let hash = |p: &std::path::Path| crate::common::sha256_hex(&std::fs::read(p).unwrap());
    assert_eq!(car["source"]["sha256"], hash(&master));
    assert_eq!(car["checks"]["sha256"], hash(&up));
    let first_draft = drafts[0]["id"].as_i64().unwrap();
    let master_id = steps[0]["id"].as_i64().unwrap();
    let up_id = steps[1]["id"].as_i64().unwrap();
    let l = links(&ledger);
    assert!(
        l.contains(&(first_draft, master_id, "draft->final".into())),
        "{l:?}"
    );
    assert!(l.contains(&(master_id, up_id, "master->upscale".into())), "{l:?}");

    // An unknown id names the fix.
    let out = fourk(dir.path())
        .args(["--ledger", ledger.to_str().unwrap(), "final", "999", "--emulator"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fourk history"));
}

// --- fourk deliver ------------------------------------------------------------------------

#[test]
fn deliver_falls_back_to_master_and_upscale_when_native_is_the_wrong_size() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let out = fourk(dir.path())
        .args([
            "--ledger",
            ledger.to_str().unwrap(),
            "deliver",
            "a lighthouse [fourk:wrong-size-experimental]",
            "--size",
            "4k",
            "--quality",
            "low",
            "--emulator",
            "--out",
            "hero.png",
            "--json",
        ])
        .output()
        .unwrap();
    ok(&out);
    let v = json_stdout(&out);
    assert_eq!(v["shipped_by"], "master+upscale");
    assert_eq!(v["verified"], true);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], "native");
    assert!(
        steps[0]["error"]
            .as_str()
            .unwrap()
            .contains("verification failed"),
        "{}",
        steps[0]
    );
    assert!(
        steps[0]["usd"].as_f64().unwrap() > 0.0,
        "the failed native attempt was billed"
    );
    assert_eq!(steps[1]["step"], "master");
    assert_eq!(steps[2]["step"], "upscale");
    assert_eq!(dims(&dir.path().join("hero.rejected.png")), (1920, 1080));
    assert_eq!(dims(&dir.path().join("hero.master.png")), (2560, 1440));
    let hero = dir.path().join("hero.png");
    assert_eq!(dims(&hero), (3840, 2160));
    let car = sidecar(&hero);
    assert_eq!(car["workflow"]["shipped_by"], "master+upscale");
    assert_eq!(car["workflow"]["steps"].as_array().unwrap().len(), 3);
    let kinds: Vec<String> = links(&ledger).into_iter().map(|l| l.2).collect();
    assert!(kinds.contains(&"fallback".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"master->upscale".to_owned()), "{kinds:?}");
}

#[test]
fn deliver_ships_native_when_it_verifies_and_refuses_over_max_cost() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let out = fourk(dir.path())
        .args([
            "--ledger",
            ledger.to_str().unwrap(),
            "deliver",
            "a lighthouse",
            "--size",
            "4k",
            "--quality",
            "low",
            "--emulator",
            "--out",
            "hero.png",
            "--json",
        ])
        .output()
        .unwrap();
    ok(&out);
    let v = json_stdout(&out);
    assert_eq!(v["shipped_by"], "native");
    assert_eq!(v["steps"].as_array().unwrap().len(), 1);
    assert_eq!(dims(&dir.path().join("hero.png")), (3840, 2160));
    assert!(!dir.path().join("hero.master.png").exists());
    assert_eq!(
        sidecar(&dir.path().join("hero.png"))["workflow"]["shipped_by"],
        "native"
    );

    // 4K high plus a 2K high fallback is about $0.62: refused before anything is sent (the
    // base URL is a closed port, so a request would fail differently).
    let out = fourk(dir.path())
        .args([
            "deliver",
            "a lighthouse",
            "--size",
            "4k",
            "--max-cost",
            "0.50",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--out",
            "nope.png",
        ])
        .env("OPENAI_API_KEY", "sk-test")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("over --max-cost") && err.contains("nothing was sent"),
        "{err}"
    );
    assert!(!dir.path().join("nope.png").exists());
}

#[test]
fn deliver_falls_back_when_the_native_attempt_times_out() {
    let dir = tempfile::tempdir().unwrap();
    // Every request stalls 3 s: the native attempt is given 1 s, the master waits it out.
    let mut emu = common::Emulator::start(&["--faults", "stall:1", "--stall-ms", "3000"]);
    let url = emu.base.clone();
    let ledger = dir.path().join("ledger.db");
    let out = fourk(dir.path())
        .env("OPENAI_API_KEY", "sk-anything")
        .args([
            "--ledger",
            ledger.to_str().unwrap(),
            "deliver",
            "a lighthouse",
            "--size",
            "4k",
            "--quality",
            "low",
            "--timeout",
            "1",
            "--base-url",
            &url,
            "--out",
            "hero.png",
            "--json",
        ])
        .output()
        .unwrap();
    emu.kill();
    ok(&out);
    let v = json_stdout(&out);
    assert_eq!(v["shipped_by"], "master+upscale");
    let native = &v["steps"][0];
    assert!(
        native["error"].as_str().unwrap().contains("timed out"),
        "{native}"
    );
    assert_eq!(native["estimate"], true);
    assert_eq!(dims(&dir.path().join("hero.png")), (3840, 2160));
    let conn = rusqlite::Connection::open(&ledger).unwrap();
    let billed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM attempts WHERE possibly_billed = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(billed, 1);
}

/// A Responses API draft goes final as a continuation (`previous_response_id`), not as an
/// edit: both steps talk to one emulator process, which keeps the draft's response.
#[test]
fn a_responses_route_draft_goes_final_with_previous_response_id() {
    let dir = tempfile::tempdir().unwrap();
    let emu = common::Emulator::start_in(dir.path(), &[]);
    let url = emu.base.clone();
    let ledger = dir.path().join("ledger.db");
    let l = ledger.to_str().unwrap();
    let run = |args: &[&str]| {
        fourk(dir.path())
            .env("OPENAI_API_KEY", "sk-anything")
            .args(["--ledger", l])
            .args(args)
            .args(["--base-url", &url, "--json"])
            .output()
            .unwrap()
    };
    let out = run(&[
        "draft",
        "a red fox in snow",
        "-n",
        "1",
        "--size",
        "2k",
        "--route",
        "responses",
        "--out",
        "fox.png",
    ]);
    ok(&out);
    let v = json_stdout(&out);
    let draft = &v["drafts"][0];
    let draft_id = draft["id"].as_i64().unwrap();
    let car = sidecar(&dir.path().join(draft["path"].as_str().unwrap()));
    let response_id = car["responses"]["response_id"].as_str().unwrap().to_owned();
    assert!(response_id.starts_with("resp_"), "{car}");

    let out = run(&[
        "final",
        &draft_id.to_string(),
        "--native",
        "--quality",
        "low",
        "--out",
        "fox-final.png",
    ]);
    let requests = emu.requests();
    drop(emu);
    ok(&out);
    let v = json_stdout(&out);
    assert_eq!(v["mode"], "native");
    let shipped = dir.path().join(v["shipped"].as_str().unwrap());
    assert_eq!(dims(&shipped), (2560, 1440));
    let car = sidecar(&shipped);
    assert_eq!(car["route"], "responses", "{car}");
    assert_eq!(
        car["request"]["previous_response_id"],
        response_id.as_str(),
        "{car}"
    );
    assert_eq!(car["checks"]["verified"], true);
    let final_id = v["id"].as_i64().unwrap();
    assert!(links(&ledger).contains(&(draft_id, final_id, "draft->final".into())));
    // Both steps went through /v1/responses; no edit upload was needed.
    let routes: Vec<String> = requests
        .iter()
        .map(|r| r["route"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(routes, ["/v1/responses", "/v1/responses"], "{routes:?}");
}
