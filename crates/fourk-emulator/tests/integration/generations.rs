//! Successful generations: sizes, formats, determinism, usage and headers.

use fourk_emulator::{EMULATOR_HEADER, EMULATOR_HEADER_VALUE, EmulatorConfig};
use image::GenericImageView as _;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{KEY, generate, start};
use crate::schema::assert_images_response;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1024_png_decodes_at_its_size_and_matches_the_schema() {
    let emu = start(EmulatorConfig::default()).await;
    let prompt = "a red fox in fresh snow, morning light";
    let r = generate(
        &emu.base_url(),
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": prompt, "size": "1024x1024"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    let bytes = r.image_bytes(0);
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
    assert_eq!(img.dimensions(), (1024, 1024));
    assert!(!img.color().has_alpha());
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["size"], "1024x1024");
    // No quality was asked for: auto resolves to medium.
    assert_eq!(r.body["quality"], "medium");
    assert_eq!(r.body["background"], "opaque");
    assert_eq!(r.body["output_format"], "png");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(r.body["created"].as_u64().unwrap().abs_diff(now) < 60);
    let text = fourk_api::cost::estimate_text_tokens(prompt);
    assert_eq!(
        r.body["usage"],
        json!({
            "input_tokens": text,
            "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
            "output_tokens": 1756,
            "total_tokens": text + 1756,
            "output_tokens_details": {"image_tokens": 1756, "text_tokens": 0},
        })
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_4k_size_works() {
    let emu = start(EmulatorConfig::default()).await;
    let r = generate(
        &emu.base_url(),
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": "a city skyline at night", "size": "3840x2160", "quality": "high"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.error());
    assert_images_response(&r.body);
    assert_eq!(r.body["size"], "3840x2160");
    assert_eq!(r.body["quality"], "high");
    assert_eq!(r.body["usage"]["output_tokens"], 13342);
    let bytes = r.image_bytes(0);
    // Photographic entropy: a 4K PNG of a real output is several megabytes.
    assert!(bytes.len() > 6_000_000, "4K PNG is only {} bytes", bytes.len());
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!(img.dimensions(), (3840, 2160));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_with_compression_is_a_jpeg() {
    let emu = start(EmulatorConfig::default()).await;
    let body = json!({"model": "gpt-image-2", "prompt": "a bowl of ramen", "size": "1536x1024",
                      "output_format": "jpeg", "output_compression": 50});
    let r = generate(&emu.base_url(), Some(KEY), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    assert_eq!(r.body["output_format"], "jpeg");
    let bytes = r.image_bytes(0);
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]), "not a JPEG");
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(img.dimensions(), (1536, 1024));
    // Compression 50 is visibly smaller than the default (100).
    let full = generate(
        &emu.base_url(),
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": "a bowl of ramen", "size": "1536x1024", "output_format": "jpeg"}),
    )
    .await;
    assert!(full.image_bytes(0).len() > bytes.len() * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_webp_has_alpha() {
    let emu = start(EmulatorConfig::default()).await;
    let body = json!({"model": "gpt-image-2", "prompt": "a sticker of a cat", "size": "1024x1024",
                      "background": "transparent", "output_format": "webp", "output_compression": 80});
    let r = generate(&emu.base_url(), Some(KEY), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    assert_eq!(r.body["background"], "transparent");
    assert_eq!(r.body["output_format"], "webp");
    let img = image::load_from_memory_with_format(&r.image_bytes(0), image::ImageFormat::WebP).unwrap();
    assert!(img.color().has_alpha());
    assert_eq!(img.to_rgba8().get_pixel(0, 0)[3], 0, "corner is transparent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_request_same_image_and_n_images_differ() {
    let emu = start(EmulatorConfig::default()).await;
    let body = json!({"model": "gpt-image-2", "prompt": "a lighthouse", "size": "1024x1536", "n": 2});
    let a = generate(&emu.base_url(), Some(KEY), &body).await;
    let b = generate(&emu.base_url(), Some(KEY), &body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_images_response(&a.body);
    assert_eq!(a.body["data"], b.body["data"], "same request, same images");
    assert_eq!(a.body["data"].as_array().unwrap().len(), 2);
    assert_ne!(
        a.body["data"][0], a.body["data"][1],
        "each of n images is its own"
    );
    assert_eq!(a.body["usage"]["output_tokens"], 2 * 1372);
    let c = generate(
        &emu.base_url(),
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": "a lighthouse.", "size": "1024x1536"}),
    )
    .await;
    assert_ne!(
        a.body["data"][0], c.body["data"][0],
        "another prompt, another image"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_present_and_honest() {
    let emu = start(EmulatorConfig::default()).await;
    let body = json!({"model": "gpt-image-2", "prompt": "headers", "size": "1024x1024", "quality": "low"});
    let a = generate(&emu.base_url(), Some(KEY), &body).await;
    let b = generate(&emu.base_url(), Some(KEY), &body).await;
    assert_eq!(a.status, StatusCode::OK);
    let h = |r: &crate::common::Reply, name: &str| {
        r.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let (ida, idb) = (h(&a, "x-request-id"), h(&b, "x-request-id"));
    for id in [&ida, &idb] {
        assert!(id.len() == 36 && id.starts_with("req_"), "{id}");
        assert!(
            id[4..].bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{id}"
        );
    }
    assert_ne!(ida, idb);
    assert_eq!(h(&a, "openai-version"), "2020-10-01");
    h(&a, "openai-processing-ms").parse::<u64>().unwrap();
    assert_eq!(h(&a, EMULATOR_HEADER), EMULATOR_HEADER_VALUE);
    for kind in ["requests", "tokens", "images"] {
        let limit: u64 = h(&b, &format!("x-ratelimit-limit-{kind}")).parse().unwrap();
        let left_a: u64 = h(&a, &format!("x-ratelimit-remaining-{kind}")).parse().unwrap();
        let left_b: u64 = h(&b, &format!("x-ratelimit-remaining-{kind}")).parse().unwrap();
        assert!(
            left_b < left_a && left_a < limit,
            "{kind}: {limit} {left_a} {left_b}"
        );
        let reset = h(&b, &format!("x-ratelimit-reset-{kind}"));
        assert!(reset.ends_with('s'), "{kind}: {reset}");
    }
    let used_tokens: u64 = h(&a, "x-ratelimit-limit-tokens").parse::<u64>().unwrap()
        - h(&a, "x-ratelimit-remaining-tokens").parse::<u64>().unwrap();
    assert_eq!(used_tokens, a.body["usage"]["total_tokens"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_size_and_quality_resolve_and_latency_is_simulated() {
    let emu = start(EmulatorConfig {
        latency_scale: 0.002,
        ..EmulatorConfig::default()
    })
    .await;
    let r = generate(
        &emu.base_url(),
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": "auto", "size": "auto", "quality": "auto", "background": "auto"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (&r.body["size"], &r.body["quality"], &r.body["background"]),
        (&json!("1024x1024"), &json!("medium"), &json!("opaque"))
    );
    // 80 s for 1024x1024 medium, scaled by 0.002.
    let ms: u64 = r.headers["openai-processing-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ms >= 160, "{ms} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_follows_each_models_token_bases() {
    let emu = start(EmulatorConfig::default()).await;
    for (model, quality, tokens) in [
        ("gpt-image-2", "medium", 1756),
        ("gpt-image-2.5-flare", "medium", 439),
        ("gpt-image-2.5-sunburst-2026-09-08", "xhigh", 3122),
        ("gpt-image-2.5-flare", "max", 7024),
    ] {
        let r = generate(
            &emu.base_url(),
            Some(KEY),
            &json!({"model": model, "prompt": "a fox", "size": "1024x1024", "quality": quality}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{model}: {}", r.body);
        assert_eq!(r.body["usage"]["output_tokens"], tokens, "{model} {quality}");
    }
    // A model shut down on 2026-12-01 is refused as the API refuses an unknown model.
    let r = generate(
        &emu.base_url(),
        Some(KEY),
        &json!({"model": "gpt-image-1.5", "prompt": "a fox", "size": "1024x1024"}),
    )
    .await;
    assert_ne!(r.status, StatusCode::OK, "{}", r.body);
}
