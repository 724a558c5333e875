//! The MCP server's own cost per `generate` call, beside the work it wraps.
//!
//!     cargo bench -p fourk-mcp --bench overhead            # RUNS=9 rounds
//!     RUNS=3 SIZE=1024x1024 cargo bench -p fourk-mcp --bench overhead   # the CI smoke
//!
//! Anchors, interleaved round by round in one process so that drift hits them alike; medians:
//! - `render`: the in-process emulator's answer alone (send, read the body);
//! - `core`: `fourk_core::generate::generate`, what `fourk generate` does: the same, then
//!   save atomically, verify every pixel, sidecar, ledger;
//! - `mcp`: the `generate` tool through an MCP client over an in-memory pipe, `preview: false`;
//! - `mcp+preview`: the same with the preview (the default);
//! - `verify`, `verify+thumbnail`: the full verification of the saved bytes, without and with
//!   the thumbnail the preview is made from (its cost is the difference);
//! - `preview from thumbnail`: the JPEG preview of that thumbnail;
//! - `preview from file`: the preview made by decoding the saved file again (the slow way,
//!   still used for images the core did not just save).
//!
//! overhead = mcp - core, against save-and-verify = core - render (target under 5%); the
//! preview's cost = thumbnail + preview from thumbnail (target under 40 ms for 3840x2160).

#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fourk_api::{Capabilities, Quality, Size};
use fourk_core::Fourk;
use fourk_core::send::Recorder;
use fourk_core::session::{Endpoint, Session, SharedEmulator};
use fourk_core::spec::{GenerateSpec, ImageOptions};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Case {
    size: Size,
    quality: Quality,
    prompt: &'static str,
}

impl Case {
    fn spec(&self, out: PathBuf, endpoint: &Endpoint) -> GenerateSpec {
        let mut spec = GenerateSpec::new(self.prompt, "gpt-image-2", self.size, endpoint.clone());
        spec.image = ImageOptions {
            quality: Some(self.quality),
            ..ImageOptions::default()
        };
        spec.out = Some(out);
        spec
    }
}

async fn render(case: &Case, caps: &Capabilities, endpoint: &Endpoint) -> Duration {
    let spec = case.spec(PathBuf::from("unused.png"), endpoint);
    let (req, _, _) = fourk_core::image_api::build_request(&spec, caps).expect("a valid request");
    let t = Instant::now();
    let session = Session::connect(&spec.endpoint, caps)
        .await
        .expect("emulator starts");
    let resp = session.client.generate(&req).await.expect("the emulator answers");
    assert!(!resp.body.is_empty());
    let took = t.elapsed();
    session.close().await;
    took
}

async fn core(case: &Case, fk: &Fourk, out: &Path, endpoint: &Endpoint) -> Duration {
    let spec = case.spec(out.to_path_buf(), endpoint);
    let t = Instant::now();
    let rec = Recorder::new(
        fk.ledger_path(),
        "generate",
        fourk_core::generate::ledger_args(&spec),
    );
    let result = fourk_core::generate::generate(&spec, &fk.caps, &rec).await;
    rec.finish(&result);
    let (images, ok) = result.expect("generates");
    assert!(ok && images.len() == 1);
    t.elapsed()
}

async fn mcp(
    case: &Case,
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    out: &Path,
    preview: bool,
) -> Duration {
    let args = serde_json::json!({
        "prompt": case.prompt,
        "size": case.size.to_string(),
        "quality": case.quality,
        "out": out.display().to_string(),
        "preview": preview,
    });
    let t = Instant::now();
    let r = client
        .call_tool(
            CallToolRequestParams::new("generate")
                .with_arguments(args.as_object().cloned().unwrap_or_default()),
        )
        .await
        .expect("the call returns");
    let took = t.elapsed();
    assert_ne!(r.is_error, Some(true), "{r:?}");
    assert_eq!(
        r.content
            .iter()
            .any(|c| matches!(c, rmcp::model::ContentBlock::Image(_))),
        preview
    );
    took
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(9);
    let size: Size = std::env::var("SIZE")
        .ok()
        .map_or(Ok(Size::new(3840, 2160)), |s| s.parse())
        .expect("SIZE is WxH");
    let case = Case {
        size,
        quality: Quality::High,
        prompt: "a lighthouse on a cliff at dusk, waves, gulls, long exposure",
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().canonicalize().expect("canonical temp dir");
    let caps = Capabilities::builtin();
    let fk = Fourk::new(caps.clone(), root.join("ledger.db"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    rt.block_on(async {
        // One emulator for every anchor, as `fourk mcp --emulator` keeps one for its life.
        let endpoint = Endpoint {
            shared_emulator: Some(SharedEmulator::start(&caps).await.expect("emulator starts")),
            ..Endpoint::emulator()
        };
        let server = fourk_mcp::Server::new(
            fk.clone(),
            fourk_mcp::Options {
                endpoint: endpoint.clone(),
                roots: vec![root.clone()],
                out_dir: None,
                max_cost: None,
            },
        )
        .await
        .expect("server");
        let (a, b) = tokio::io::duplex(1 << 20);
        let (sr, sw) = tokio::io::split(a);
        let serving = tokio::spawn(async move {
            let running = server.serve((sr, sw)).await.expect("server starts");
            let _ = running.waiting().await;
        });
        let (cr, cw) = tokio::io::split(b);
        let client = ().serve((cr, cw)).await.expect("client connects");

        let (mut t_render, mut t_core, mut t_mcp, mut t_prev, mut t_preview) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut t_verify, mut t_thumb, mut t_from_thumb) = (Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        // One warm-up round, not counted.
        for round in 0..=runs {
            let r = render(&case, &caps, &endpoint).await;
            let c = core(&case, &fk, &root.join(format!("core-{round}.png")), &endpoint).await;
            let m = mcp(&case, &client, &root.join(format!("mcp-{round}.png")), false).await;
            let p = mcp(&case, &client, &root.join(format!("prev-{round}.png")), true).await;
            let file = root.join(format!("core-{round}.png"));
            let t = Instant::now();
            let jpeg = fourk_imaging::preview::preview_jpeg(&[&file], 512).expect("preview");
            let pv = t.elapsed();
            let bytes = std::fs::read(&file).expect("the saved file");
            let expect = fourk_imaging::Expect::default().with_size(case.size);
            let t = Instant::now();
            let plain = fourk_imaging::verify_bytes(&bytes, &expect);
            let v = t.elapsed();
            let t = Instant::now();
            let with = fourk_imaging::verify_bytes(&bytes, &expect.with_thumbnail(512));
            let vt = t.elapsed();
            assert!(plain.ok && with.ok);
            let thumb = with.thumbnail.expect("a thumbnail");
            let t = Instant::now();
            let from_thumb =
                fourk_imaging::preview::preview_of_thumbnails(&[&thumb.0], 512).expect("preview");
            let ft = t.elapsed();
            assert!(!from_thumb.is_empty());
            if round > 0 {
                t_verify.push(v);
                t_thumb.push(vt);
                t_from_thumb.push(ft);
                t_render.push(r);
                t_core.push(c);
                t_mcp.push(m);
                t_prev.push(p);
                t_preview.push(pv);
            }
            last = Some((std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0), jpeg.len()));
        }
        client.cancel().await.ok();
        serving.abort();

        let (render, core, mcp, prev, preview) = (
            median(t_render),
            median(t_core),
            median(t_mcp),
            median(t_prev),
            median(t_preview),
        );
        let (png, jpeg) = last.unwrap_or_default();
        let save_verify = core.saturating_sub(render);
        let overhead = ms(mcp) - ms(core);
        println!(
            "fourk-mcp overhead: {} quality high, PNG {:.1} MB, preview JPEG {} KB; medians of {runs} rounds",
            case.size,
            png as f64 / 1e6,
            jpeg / 1024
        );
        println!("  render (emulator answer)      {:>8.1} ms", ms(render));
        println!("  core generate                 {:>8.1} ms", ms(core));
        println!("    save-and-verify (core-render){:>7.1} ms", ms(save_verify));
        println!("  mcp generate, preview false   {:>8.1} ms", ms(mcp));
        println!("  mcp generate, preview true    {:>8.1} ms", ms(prev));
        let (verify, verify_thumb, from_thumb) = (median(t_verify), median(t_thumb), median(t_from_thumb));
        println!("  verify                        {:>8.1} ms", ms(verify));
        println!("  verify + thumbnail            {:>8.1} ms", ms(verify_thumb));
        println!("  preview from thumbnail        {:>8.1} ms", ms(from_thumb));
        println!("  preview from file (decode)    {:>8.1} ms", ms(preview));
        println!(
            "  server overhead (mcp - core)  {:>8.1} ms = {:.1}% of save-and-verify (target < 5%)",
            overhead,
            100.0 * overhead / ms(save_verify).max(f64::EPSILON)
        );
        println!(
            "  preview: thumbnail {:.1} ms + JPEG {:.1} ms = {:.1} ms (target < 40 ms); in the call \
             (mcp+preview - mcp) {:.1} ms; decoding the file again instead: {:.1} ms",
            ms(verify_thumb) - ms(verify),
            ms(from_thumb),
            ms(verify_thumb) - ms(verify) + ms(from_thumb),
            ms(prev) - ms(mcp),
            ms(preview)
        );
    });
}
