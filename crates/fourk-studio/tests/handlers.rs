//! The studio's handlers through its app (guard included), without a browser: what the pages
//! and the API answer, and what they refuse.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fourk_api::{Capabilities, Size};
use fourk_core::Fourk;
use fourk_core::session::Endpoint;
use fourk_core::spec::GenerateSpec;
use tower::ServiceExt as _;

const PORT: u16 = 8088;
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    fk: Fourk,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let fk = Fourk::new(Capabilities::builtin(), root.join("ledger.db"));
    Fixture { _dir: dir, root, fk }
}

async fn generate(fk: &Fourk, prompt: &str, out: &Path) -> i64 {
    let mut spec = GenerateSpec::new(prompt, "gpt-image-2", Size::new(1024, 1024), Endpoint::emulator());
    spec.out = Some(out.to_path_buf());
    let (images, ok) =
        fourk_core::generate::generate_recorded(&spec, fk, fourk_core::send::Control::default())
            .await
            .unwrap();
    assert!(ok);
    images[0].ledger_id.unwrap()
}

async fn app(f: &Fixture, max_cost: Option<f64>) -> Router {
    let studio = fourk_studio::Studio::new(
        f.fk.clone(),
        fourk_studio::Options {
            endpoint: Endpoint::emulator(),
            roots: vec![f.root.clone()],
            out_dir: None,
            max_cost,
        },
    )
    .await
    .unwrap();
    studio.app(PORT, TOKEN)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::HOST, format!("127.0.0.1:{PORT}"))
        .header(header::COOKIE, format!("fourk_studio_{PORT}={TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

fn post(uri: &str, json: &serde_json::Value) -> Request<Body> {
    Request::post(uri)
        .header(header::HOST, format!("127.0.0.1:{PORT}"))
        .header(header::ORIGIN, format!("http://127.0.0.1:{PORT}"))
        .header(header::COOKIE, format!("fourk_studio_{PORT}={TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json.to_string()))
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gallery_escapes_prompts_and_lists_images_outside_the_roots_without_serving_them() {
    let f = fixture();
    let inside = generate(
        &f.fk,
        "<script>alert(1)</script> & \"quotes\"",
        &f.root.join("a.png"),
    )
    .await;
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = generate(&f.fk, "outside", &elsewhere.path().join("b.png")).await;
    let app = app(&f, None).await;
    let (status, html) = send(&app, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !html.contains("<script>alert"),
        "a prompt's markup must not reach the page as markup"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"),
        "{html}"
    );
    assert!(
        html.contains(&format!("/image/{outside}")) && html.contains("not under --root: b.png"),
        "listed, not shown"
    );
    assert!(!html.contains(&format!("/thumb/{outside}")));
    assert_eq!(
        send(&app, get(&format!("/file/{inside}"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, get(&format!("/thumb/{inside}"))).await.0,
        StatusCode::OK
    );
    for path in [format!("/file/{outside}"), format!("/thumb/{outside}")] {
        let (status, body) = send(&app, get(&path)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("--root"), "{body}");
    }
    let (status, html) = send(&app, get(&format!("/image/{outside}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("not under the studio's roots"));
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_serves_only_intact_images_under_a_root() {
    let f = fixture();
    generate(&f.fk, "a", &f.root.join("a.png")).await;
    std::fs::write(f.root.join("notes.png"), b"not an image").unwrap();
    let bytes = std::fs::read(f.root.join("a.png")).unwrap();
    std::fs::write(f.root.join("cut.png"), &bytes[..bytes.len() / 2]).unwrap();
    let app = app(&f, None).await;
    let q = |p: &Path| format!("/raw?path={}", p.display());
    let ok = app.clone().oneshot(get(&q(&f.root.join("a.png")))).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        send(&app, get(&q(&f.root.join("notes.png")))).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, get(&q(&f.root.join("cut.png")))).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, get("/raw?path=/etc/passwd")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, get("/raw?path=../../../etc/passwd")).await.0,
        StatusCode::FORBIDDEN
    );
    // A link inside the root that points out of it is resolved, then refused.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/hostname", f.root.join("link.png")).unwrap();
        assert_eq!(
            send(&app, get(&q(&f.root.join("link.png")))).await.0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_size_check_names_the_rule_and_the_nearest_sizes() {
    let f = fixture();
    let app = app(&f, None).await;
    let (status, body) = send(&app, get("/api/check?size=4000x2000&model=gpt-image-2")).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["verdict"]["valid"], false);
    assert_eq!(v["verdict"]["violations"][0]["rule"], "max_edge");
    assert_eq!(v["verdict"]["suggestions"][0], "3840x1920");
    let (_, body) = send(&app, get("/api/check?size=4k&quality=high&n=1")).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["verdict"]["experimental"], true);
    assert!(v["generate"]["usd"].as_f64().unwrap() > 0.3);
    assert!(v["generate"]["median_s"].as_f64().unwrap() > 10.0);
    assert_eq!(v["draft"]["size"], "1536x864");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ceiling_refuses_before_anything_is_sent() {
    let f = fixture();
    let app = app(&f, Some(0.05)).await;
    let (status, body) = send(
        &app,
        post(
            "/api/generate",
            &serde_json::json!({"prompt": "x", "size": "3840x2160", "quality": "high"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("--max-cost $0.05") && body.contains("fourk studio"),
        "{body}"
    );
    assert!(
        !f.root.join("ledger.db").exists(),
        "nothing was sent, so nothing is on record"
    );
    let (status, body) = send(
        &app,
        post(
            "/api/generate",
            &serde_json::json!({"prompt": "x", "size": "4000x2000"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("max_edge"), "{body}");
    let (status, _) = send(&app, get("/api/jobs/job-99")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generate_job_runs_to_its_verified_image_and_its_thumbnail() {
    let f = fixture();
    let app = app(&f, None).await;
    let (status, body) = send(
        &app,
        post(
            "/api/generate",
            &serde_json::json!({"prompt": "a job", "size": "1024x1024", "quality": "low"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = serde_json::from_str::<serde_json::Value>(&body).unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut view = serde_json::Value::Null;
    for _ in 0..200 {
        let (_, body) = send(&app, get(&format!("/api/jobs/{job}"))).await;
        view = serde_json::from_str(&body).unwrap();
        if view["status"]["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(view["status"]["state"], "done", "{view}");
    assert_eq!(view["outcome"]["ok"], true);
    let id = view["outcome"]["images"][0]["id"].as_i64().unwrap();
    // The thumbnail was made from the pixels decoded to verify it: it is in the cache already.
    let sha = fourk_core::ledger::Ledger::open(f.fk.ledger_path())
        .unwrap()
        .find_image(id)
        .unwrap()
        .unwrap()
        .sha256;
    assert!(f.root.join("thumbs-384").join(format!("{sha}.jpg")).is_file());
    // The job's log has the partial images the page shows as progress.
    assert!(
        view["status"]["log"].as_array().unwrap().iter().any(|l| l
            .as_str()
            .unwrap()
            .starts_with("partial image 0 received; kept as")),
        "{view}"
    );
}
