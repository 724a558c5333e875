//! What a gallery thumbnail costs on the server, beside the work around it.
//!
//!     cargo bench -p fourk-studio --bench thumbs            # RUNS=9 rounds, 3840x2160
//!     RUNS=1 SIZE=1024x1024 cargo test -p fourk-studio --bench thumbs   # the CI smoke
//!
//! One realistic image is made by the in-process emulator and saved as `fourk generate` saves
//! it. Anchors, interleaved round by round in one process; medians:
//! - `verify`: the full verification of the saved bytes (what every save does anyway);
//! - `verify+thumbnail`: the same, building the studio's 384 px thumbnail row by row from the
//!   pixels it decodes (`Expect::with_thumbnail`);
//! - `store`: that thumbnail as a JPEG in the cache (encode + atomic write);
//! - `first view`: an image saved before the studio kept thumbnails: read, hash, verify in
//!   full with the thumbnail, store (`ThumbCache::of_file` on an empty cache);
//! - `served warm`: `GET /thumb/ID` through the studio's app (guard, ledger lookup, root
//!   check, cached JPEG read).
//!
//! The thumbnail from decoded pixels = (verify+thumbnail - verify) + store; target under 15 ms
//! at 3840x2160.

#![allow(clippy::print_stdout)] // A benchmark reports on stdout.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use fourk_api::{Capabilities, Quality, Size};
use fourk_core::Fourk;
use fourk_core::session::Endpoint;
use fourk_core::spec::{GenerateSpec, ImageOptions};
use fourk_core::thumbs::ThumbCache;
use tower::ServiceExt as _;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().canonicalize().expect("canonical temp dir");
    let caps = Capabilities::builtin();
    let fk = Fourk::new(caps.clone(), root.join("ledger.db"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut spec = GenerateSpec::new(
            "a lighthouse on a cliff at dusk, waves, gulls, long exposure",
            "gpt-image-2",
            size,
            Endpoint::emulator(),
        );
        spec.image = ImageOptions {
            quality: Some(Quality::High),
            ..ImageOptions::default()
        };
        spec.out = Some(root.join("image.png"));
        let (images, ok) = fourk_core::generate::generate_recorded(&spec, &fk, fourk_core::send::Control::default())
            .await
            .expect("generates");
        assert!(ok);
        let file = images[0].path.clone();
        let id = images[0].ledger_id.expect("recorded");
        let bytes = std::fs::read(&file).expect("the saved file");

        let studio = fourk_studio::Studio::new(
            fk.clone(),
            fourk_studio::Options {
                endpoint: Endpoint::default(),
                roots: vec![root.clone()],
                out_dir: None,
                max_cost: None,
            },
        )
        .await
        .expect("studio");
        let app = studio.app(8080, "t0k3n");
        let cache = ThumbCache::beside_ledger(fk.ledger_path(), fourk_studio::THUMB_EDGE);
        let expect = fourk_imaging::Expect::default().with_size(size);
        let (mut t_verify, mut t_thumb, mut t_store, mut t_first, mut t_served) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut jpeg_bytes = 0;
        for round in 0..=runs {
            let t = Instant::now();
            let plain = fourk_imaging::verify_bytes(&bytes, &expect);
            let v = t.elapsed();
            let t = Instant::now();
            let with = fourk_imaging::verify_bytes(&bytes, &expect.with_thumbnail(fourk_studio::THUMB_EDGE));
            let vt = t.elapsed();
            assert!(plain.ok && with.ok);
            let thumb = with.thumbnail.expect("a thumbnail");
            let t = Instant::now();
            let stored = cache.store(&with.sha256, &thumb).expect("stored");
            let st = t.elapsed();
            jpeg_bytes = std::fs::metadata(&stored).map_or(0, |m| m.len());
            let fresh = ThumbCache::new(root.join(format!("cold-{round}")), fourk_studio::THUMB_EDGE);
            let t = Instant::now();
            fresh.of_file(&file).expect("first view");
            let fv = t.elapsed();
            let t = Instant::now();
            let r = app
                .clone()
                .oneshot(
                    Request::get(format!("/thumb/{id}"))
                        .header("host", "127.0.0.1:8080")
                        .header("cookie", "fourk_studio_8080=t0k3n")
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("answer");
            let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.expect("body");
            let sv = t.elapsed();
            assert_eq!(body.len() as u64, jpeg_bytes);
            if round > 0 {
                t_verify.push(v);
                t_thumb.push(vt);
                t_store.push(st);
                t_first.push(fv);
                t_served.push(sv);
            }
        }
        let (v, vt, st) = (median(t_verify), median(t_thumb), median(t_store));
        let thumb_ms = ms(vt.saturating_sub(v)) + ms(st);
        println!(
            "fourk-studio thumbnails, {size}, {} KB PNG, {runs} rounds, medians:",
            bytes.len() / 1024
        );
        println!("  verify                       {:8.1} ms", ms(v));
        println!("  verify+thumbnail             {:8.1} ms", ms(vt));
        println!("  store (JPEG {jpeg_bytes} B)        {:8.1} ms", ms(st));
        println!("  first view (older images)    {:8.1} ms", ms(median(t_first)));
        println!("  served warm (GET /thumb/ID)  {:8.2} ms", ms(median(t_served)));
        println!(
            "  thumbnail from decoded pixels = {thumb_ms:.1} ms ({:.0}% of the verification it rides on; target under 15 ms)",
            thumb_ms / ms(v) * 100.0
        );
    });
}
