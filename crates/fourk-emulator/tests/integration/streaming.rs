//! `stream: true` on generations and edits: partial images that gain detail, then a completed
//! image byte-identical to the non-streamed answer.

use fourk_emulator::EmulatorConfig;
use image::GenericImageView as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    EditForm, KEY, decode, detail, edit, edit_stream, generate, photo, png, post_stream, start, unb64,
};
use crate::schema::assert_schema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_partials_gain_detail_and_the_final_image_matches() {
    let emu = start(EmulatorConfig::default()).await;
    let body =
        json!({"model": "gpt-image-2", "prompt": "a harbour at dusk", "size": "1024x1024", "quality": "low"});
    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    streamed["partial_images"] = 2.into();
    let s = post_stream(&emu.base_url(), "/images/generations", &streamed).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.raw);
    assert!(
        s.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(s.headers.contains_key("x-request-id"));
    let names: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "image_generation.partial_image",
            "image_generation.partial_image",
            "image_generation.completed"
        ]
    );
    for e in &s.events {
        assert_schema("ImageGenStreamEvent", &e.data);
        assert_eq!(e.data["size"], "1024x1024");
        assert_eq!(e.data["quality"], "low");
        assert_eq!(e.data["background"], "opaque");
        assert_eq!(e.data["output_format"], "png");
    }
    assert_eq!(s.events[0].data["partial_image_index"], 0);
    assert_eq!(s.events[1].data["partial_image_index"], 1);
    let images: Vec<Vec<u8>> = s
        .events
        .iter()
        .map(|e| unb64(e.data["b64_json"].as_str().unwrap()))
        .collect();
    for bytes in &images {
        assert_eq!(decode(bytes).dimensions(), (1024, 1024));
    }
    // Progressively more detail: larger files and more high-frequency energy each step.
    let energies: Vec<u64> = images.iter().map(|b| detail(&decode(b))).collect();
    assert!(
        images[0].len() < images[1].len() && images[1].len() < images[2].len(),
        "sizes {:?}",
        images.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(
        energies[0] < energies[1] && energies[1] < energies[2],
        "{energies:?}"
    );
    // The completed image is the non-streamed answer, byte for byte.
    let plain = generate(&emu.base_url(), Some(KEY), &body).await;
    assert_eq!(plain.image_bytes(0), images[2]);
    let usage = &s.events[2].data["usage"];
    assert_eq!(usage, &plain.body["usage"]);
    assert!(!s.raw.contains("[DONE]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_images_stream_in_order_and_partial_images_zero_sends_only_completed() {
    let emu = start(EmulatorConfig::default()).await;
    let body = json!({"model": "gpt-image-2", "prompt": "two kites", "size": "1024x640", "quality": "low",
                      "n": 2, "stream": true, "partial_images": 1});
    let s = post_stream(&emu.base_url(), "/images/generations", &body).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.raw);
    let names: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "image_generation.partial_image",
            "image_generation.completed",
            "image_generation.partial_image",
            "image_generation.completed"
        ]
    );
    for e in &s.events {
        assert_schema("ImageGenStreamEvent", &e.data);
    }
    assert_eq!(
        s.events[2].data["partial_image_index"], 0,
        "indexes restart per image"
    );
    assert_ne!(s.events[1].data["b64_json"], s.events[3].data["b64_json"]);
    // The completed events' usage adds up to the whole request's.
    let plain = generate(
        &emu.base_url(),
        Some(KEY),
        &json!({"model": "gpt-image-2", "prompt": "two kites", "size": "1024x640", "quality": "low", "n": 2}),
    )
    .await;
    let total: u64 = [1, 3]
        .iter()
        .map(|&i| s.events[i].data["usage"]["total_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(total, plain.body["usage"]["total_tokens"].as_u64().unwrap());
    assert_eq!(plain.body["data"][1]["b64_json"], s.events[3].data["b64_json"]);

    let s = post_stream(
        &emu.base_url(),
        "/images/generations",
        &json!({"model": "gpt-image-2", "prompt": "one kite", "size": "1024x640", "quality": "low", "stream": true}),
    )
    .await;
    let names: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["image_generation.completed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_stream_image_edit_events() {
    let emu = start(EmulatorConfig::default()).await;
    let input = png(&photo(1024, 1024));
    let form = |stream: bool| {
        let f = EditForm::new()
            .text("model", "gpt-image-2")
            .text("prompt", "a snowy version")
            .text("size", "1024x1024")
            .text("quality", "low")
            .file("image", input.clone(), "image/png");
        if stream {
            f.text("stream", "true").text("partial_images", "3")
        } else {
            f
        }
    };
    let s = edit_stream(&emu.base_url(), form(true)).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.raw);
    let names: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "image_edit.partial_image",
            "image_edit.partial_image",
            "image_edit.partial_image",
            "image_edit.completed"
        ]
    );
    for (i, e) in s.events.iter().enumerate() {
        assert_schema("ImageEditStreamEvent", &e.data);
        if i < 3 {
            assert_eq!(e.data["partial_image_index"], i);
        }
    }
    let energies: Vec<u64> = s
        .events
        .iter()
        .map(|e| detail(&decode(&unb64(e.data["b64_json"].as_str().unwrap()))))
        .collect();
    assert!(energies.windows(2).all(|w| w[0] < w[1]), "{energies:?}");
    let plain = edit(&emu.base_url(), form(false)).await;
    assert_eq!(
        plain.body["data"][0]["b64_json"], s.events[3].data["b64_json"],
        "streamed and plain edits are the same image"
    );
    assert_eq!(
        s.events[3].data["usage"]["input_tokens_details"]["image_tokens"],
        7024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_errors_before_the_stream_are_plain_http_errors() {
    let emu = start(EmulatorConfig::default()).await;
    let s = post_stream(
        &emu.base_url(),
        "/images/generations",
        &json!({"model": "gpt-image-2", "prompt": "x", "stream": true, "partial_images": 4}),
    )
    .await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);
    let body: &Value = &s.events[0].data;
    crate::schema::assert_error_response(body);
    assert_eq!(body["error"]["param"], "partial_images");
}
