//! `POST /v1/images/edits` with a JSON body (`EditImageBodyJsonParam`): images as data URLs
//! or uploaded file ids, rendered exactly as the multipart edit renders the same inputs; bad
//! references named by their field; URLs refused offline; streaming.

use fourk_emulator::EmulatorConfig;
use image::{GenericImageView as _, ImageFormat};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    EditForm, Reply, data_url, decode, edit, encode, mask, photo, png, post_json, post_stream, start,
    upload_file,
};
use crate::schema::{assert_error_response, assert_images_response, assert_schema};

fn expect_error(r: &Reply, code: &str, param: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_error_response(&r.body);
    assert_eq!(r.error()["code"], code, "{}", r.body);
    assert_eq!(r.error()["param"], param, "{}", r.body);
}

fn body(prompt: &str, images: Value) -> Value {
    json!({"model": "gpt-image-2", "prompt": prompt, "size": "1024x1024", "quality": "low", "images": images})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_url_edit_renders_as_the_multipart_edit_does() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let input = png(&photo(1024, 1024));
    let m = mask(1024, 1024, 512);
    let mut json_body = body(
        "a red door",
        json!([{"image_url": data_url("image/png", &input)}]),
    );
    json_body["mask"] = json!({"image_url": data_url("image/png", &m)});
    let r = post_json(&base, "/images/edits", &json_body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    assert_eq!(r.body["size"], "1024x1024");
    assert_eq!(decode(&r.image_bytes(0)).dimensions(), (1024, 1024));
    assert_eq!(r.body["usage"]["input_tokens_details"]["image_tokens"], 7024);

    let form = EditForm::new()
        .text("model", "gpt-image-2")
        .text("prompt", "a red door")
        .text("size", "1024x1024")
        .text("quality", "low")
        .file("image", input, "image/png")
        .file("mask", m, "image/png");
    let multipart = edit(&base, form).await;
    assert_eq!(multipart.status, StatusCode::OK, "{}", multipart.body);
    assert_eq!(
        r.body["data"], multipart.body["data"],
        "same inputs, same image, whichever body carried them"
    );
    assert_eq!(r.body["usage"], multipart.body["usage"]);

    // An explicit size other than the input's, a JPEG input and JSON-only `moderation`.
    let wide = encode(&photo(600, 400), ImageFormat::Jpeg);
    let mut b = body("a valley", json!([{"image_url": data_url("image/jpeg", &wide)}]));
    b["size"] = "1536x1024".into();
    b["moderation"] = "low".into();
    b["output_format"] = "webp".into();
    let r = post_json(&base, "/images/edits", &b).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let out = image::load_from_memory_with_format(&r.image_bytes(0), ImageFormat::WebP).unwrap();
    assert_eq!(out.dimensions(), (1536, 1024));
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_references_are_refused_naming_their_field() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let ok = || json!({"image_url": data_url("image/png", &png(&photo(64, 64)))});
    let edit_with = |images: Value| body("x", images);

    let r = post_json(
        &base,
        "/images/edits",
        &edit_with(json!([ok(), {"image_url": "data:image/png;base64,@@@"}])),
    )
    .await;
    expect_error(&r, "invalid_base64_image", "images[1].image_url");
    let r = post_json(
        &base,
        "/images/edits",
        &edit_with(json!([{"image_url": "data:image/png,abc"}])),
    )
    .await;
    expect_error(&r, "invalid_image_url", "images[0].image_url");
    let r = post_json(
        &base,
        "/images/edits",
        &edit_with(json!([{"image_url": data_url("image/gif", b"GIF89a")}])),
    )
    .await;
    expect_error(&r, "invalid_value", "images[0].image_url");
    assert!(
        r.error()["message"].as_str().unwrap().contains("('image/gif')"),
        "the multipart path's message: {}",
        r.body
    );
    // PNG bytes said to be a JPEG.
    let r = post_json(
        &base,
        "/images/edits",
        &edit_with(json!([{"image_url": data_url("image/jpeg", &png(&photo(64, 64)))}])),
    )
    .await;
    expect_error(&r, "invalid_image", "images[0].image_url");
    let r = post_json(
        &base,
        "/images/edits",
        &edit_with(json!([{"image_url": "data:image/png;base64,AAAA", "file_id": "file-1"}])),
    )
    .await;
    expect_error(&r, "invalid_value", "images[0]");
    let r = post_json(&base, "/images/edits", &edit_with(json!([]))).await;
    expect_error(&r, "invalid_value", "images");
    let r = post_json(&base, "/images/edits", &edit_with(Value::Array(vec![ok(); 17]))).await;
    expect_error(&r, "invalid_value", "images");

    // The mask rules of the form, on the mask reference.
    let mut b = edit_with(json!([ok()]));
    b["mask"] = json!({"image_url": data_url("image/jpeg", &encode(&photo(64, 64), ImageFormat::Jpeg))});
    let r = post_json(&base, "/images/edits", &b).await;
    expect_error(&r, "invalid_value", "mask");
    assert!(r.error()["message"].as_str().unwrap().contains("must be a PNG"));
    b["mask"] = json!({"image_url": data_url("image/png", &mask(32, 32, 8))});
    let r = post_json(&base, "/images/edits", &b).await;
    expect_error(&r, "invalid_value", "mask");
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("the mask is 32x32 but the image is 64x64"),
        "{}",
        r.body
    );
    // The option rules of the form: gpt-image-2 takes no input_fidelity.
    let mut b = edit_with(json!([ok()]));
    b["input_fidelity"] = "high".into();
    let r = post_json(&base, "/images/edits", &b).await;
    expect_error(&r, "unsupported_parameter", "input_fidelity");
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_are_refused_offline_with_what_to_send_instead() {
    let emu = start(EmulatorConfig::default()).await;
    let r = post_json(
        &emu.base_url(),
        "/images/edits",
        &body(
            "x",
            json!([{"image_url": "https://example.com/source-image.png"}]),
        ),
    )
    .await;
    expect_error(&r, "unsupported_value", "images[0].image_url");
    let message = r.error()["message"].as_str().unwrap();
    assert!(
        message.contains("cannot download") && message.contains("data URL") && message.contains("file_id"),
        "{message}"
    );
    let r = post_json(
        &emu.base_url(),
        "/images/edits",
        &body("x", json!([{"image_url": "ftp://example.com/a.png"}])),
    )
    .await;
    expect_error(&r, "invalid_image_url", "images[0].image_url");
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_ids_resolve_to_image_uploads() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let input = png(&photo(1024, 1024));
    let up = upload_file(&base, "vision", "photo.png", input.clone()).await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_schema("OpenAIFile", &up.body);
    assert_eq!(up.body["purpose"], "vision");
    let id = up.body["id"].as_str().unwrap();

    let by_id = post_json(
        &base,
        "/images/edits",
        &body("add a hat", json!([{"file_id": id}])),
    )
    .await;
    assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.body);
    assert_images_response(&by_id.body);
    let inline = post_json(
        &base,
        "/images/edits",
        &body("add a hat", json!([{"image_url": data_url("image/png", &input)}])),
    )
    .await;
    assert_eq!(
        by_id.body["data"], inline.body["data"],
        "the upload is the same input as the data URL"
    );

    let r = post_json(
        &base,
        "/images/edits",
        &body("x", json!([{"file_id": "file-nope"}])),
    )
    .await;
    expect_error(&r, "invalid_value", "images[0].file_id");
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("purpose 'vision'")
    );
    let text = upload_file(&base, "user_data", "notes.txt", b"not an image".to_vec()).await;
    let r = post_json(
        &base,
        "/images/edits",
        &body("x", json!([{"file_id": text.body["id"]}])),
    )
    .await;
    expect_error(&r, "invalid_value", "images[0].file_id");
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("unsupported mimetype")
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_edit_streams_like_the_multipart_edit() {
    let emu = start(EmulatorConfig::default()).await;
    let input = png(&photo(1024, 1024));
    let mut b = body("add a hat", json!([{"image_url": data_url("image/png", &input)}]));
    let whole = post_json(&emu.base_url(), "/images/edits", &b).await;
    b["stream"] = true.into();
    b["partial_images"] = 1.into();
    let s = post_stream(&emu.base_url(), "/images/edits", &b).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.raw);
    let names: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["image_edit.partial_image", "image_edit.completed"]);
    for e in &s.events {
        assert_schema("ImageEditStreamEvent", &e.data);
    }
    assert_eq!(
        s.events[1].data["b64_json"], whole.body["data"][0]["b64_json"],
        "the streamed final image is the non-streamed one"
    );
    emu.shutdown().await.unwrap();
}
