//! `POST /v1/images/edits`: multipart forms with one or several images, masks, MIME checks
//! and the edit-only rules.

use fourk_emulator::EmulatorConfig;
use image::{DynamicImage, GenericImageView as _, ImageFormat, RgbImage};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{EditForm, Reply, decode, edit, encode, mask, mean_diff, photo, png, start};
use crate::schema::{assert_error_response, assert_images_response};

/// Assert an error reply: status, schema, `code` and `param`.
fn expect_error(r: &Reply, status: u16, code: Option<&str>, param: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_error_response(&r.body);
    assert_eq!(
        r.error()["code"],
        code.map_or(Value::Null, Value::from),
        "{}",
        r.body
    );
    assert_eq!(
        r.error()["param"],
        param.map_or(Value::Null, Value::from),
        "{}",
        r.body
    );
}

fn base_form(prompt: &str) -> EditForm {
    EditForm::new()
        .text("model", "gpt-image-2")
        .text("prompt", prompt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_image_edit_builds_on_the_input() {
    let emu = start(EmulatorConfig::default()).await;
    let input = photo(1024, 1024);
    let prompt = "add a hot air balloon";
    let r = edit(
        &emu.base_url(),
        base_form(prompt)
            .text("size", "1024x1024")
            .text("quality", "low")
            .file("image", png(&input), "image/png"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    assert_eq!(r.body["size"], "1024x1024");
    let out = decode(&r.image_bytes(0));
    assert_eq!(out.dimensions(), (1024, 1024));
    // The input shows through: much closer to it than a fresh generation is.
    let fresh = fourk_emulator::render::render(prompt, 1024, 1024, "", false);
    let (to_input, to_fresh) = (mean_diff(&out, &input), mean_diff(&fresh, &input));
    assert!(
        to_input < 45.0 && to_input * 1.5 < to_fresh,
        "{to_input} vs {to_fresh}"
    );
    // gpt-image-2 reads inputs at high fidelity: the formula at 1024x1024 high.
    let text = fourk_api::cost::estimate_text_tokens(prompt);
    let usage = &r.body["usage"];
    assert_eq!(usage["input_tokens_details"]["image_tokens"], 7024);
    assert_eq!(usage["input_tokens_details"]["text_tokens"], text);
    assert_eq!(usage["input_tokens"], 7024 + text);
    assert_eq!(usage["output_tokens"], 196);
    // Same inputs, same output.
    let again = edit(
        &emu.base_url(),
        base_form(prompt)
            .text("size", "1024x1024")
            .text("quality", "low")
            .file("image", png(&input), "image/png"),
    )
    .await;
    assert_eq!(again.body["data"], r.body["data"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_images_of_every_type_and_auto_size() {
    let emu = start(EmulatorConfig::default()).await;
    let first = photo(800, 600);
    let form = base_form("put them together")
        .text("quality", "low")
        .text("output_format", "jpeg")
        .text("output_compression", "80")
        .file("image[]", png(&first), "image/png")
        .file(
            "image[]",
            encode(&photo(300, 300), ImageFormat::Jpeg),
            "image/jpeg",
        )
        .file(
            "image[]",
            encode(&photo(200, 400), ImageFormat::WebP),
            "image/webp",
        );
    let r = edit(&emu.base_url(), form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    // No size: the standard size closest to the first image's 4:3.
    assert_eq!(r.body["size"], "1536x1024");
    assert_eq!(r.body["output_format"], "jpeg");
    let out = image::load_from_memory_with_format(&r.image_bytes(0), ImageFormat::Jpeg).unwrap();
    assert_eq!(out.dimensions(), (1536, 1024));
    let tokens = |w: u32, h: u32| fourk_api::cost::gpt_image_2_output_tokens(w, h, fourk_api::Quality::High);
    assert_eq!(
        r.body["usage"]["input_tokens_details"]["image_tokens"],
        tokens(800, 600) + tokens(300, 300) + tokens(200, 400)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mask_limits_the_edit_and_each_mask_rule_is_checked() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let input = photo(1024, 1024);
    let with_mask = |m: Vec<u8>, mime: &str| {
        base_form("a red door")
            .text("size", "1024x1024")
            .text("quality", "low")
            .file("image", png(&input), "image/png")
            .file("mask", m, mime)
    };
    let r = edit(&base, with_mask(mask(1024, 1024, 512), "image/png")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    let out = decode(&r.image_bytes(0)).to_rgb8();
    let inp = input.to_rgb8();
    let mut changed_left = 0;
    for (x, y, p) in out.enumerate_pixels() {
        if x >= 512 {
            assert_eq!(
                p,
                inp.get_pixel(x, y),
                "({x},{y}) is outside the mask's transparent area"
            );
        } else if p != inp.get_pixel(x, y) {
            changed_left += 1;
        }
    }
    assert!(changed_left > 512 * 1024 / 2, "only {changed_left} edited pixels");

    let jpeg_mask = encode(&photo(1024, 1024), ImageFormat::Jpeg);
    let r = edit(&base, with_mask(jpeg_mask, "image/jpeg")).await;
    expect_error(&r, 400, Some("invalid_value"), Some("mask"));
    assert!(
        r.error()["message"].as_str().unwrap().contains("must be a PNG"),
        "{}",
        r.body
    );

    let opaque = png(&DynamicImage::ImageRgb8(RgbImage::new(1024, 1024)));
    let r = edit(&base, with_mask(opaque, "image/png")).await;
    expect_error(&r, 400, Some("invalid_value"), Some("mask"));
    assert!(
        r.error()["message"].as_str().unwrap().contains("alpha channel"),
        "{}",
        r.body
    );

    let r = edit(&base, with_mask(mask(512, 512, 100), "image/png")).await;
    expect_error(&r, 400, Some("invalid_value"), Some("mask"));
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("the mask is 512x512 but the image is 1024x1024"),
        "{}",
        r.body
    );

    let r = edit(&base, with_mask(vec![0; 4 * 1024 * 1024], "image/png")).await;
    expect_error(&r, 400, Some("invalid_value"), Some("mask"));
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("smaller than 4 MB"),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_must_carry_an_image_type_and_be_that_type() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let bytes = png(&photo(64, 64));
    let r = edit(&base, base_form("x").untyped_file("image", bytes.clone())).await;
    expect_error(&r, 400, Some("invalid_value"), Some("image"));
    assert_eq!(
        r.error()["message"],
        "Invalid file 'image': unsupported mimetype ('application/octet-stream'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'."
    );
    let r = edit(
        &base,
        base_form("x").file("image[]", bytes.clone(), "application/octet-stream"),
    )
    .await;
    expect_error(&r, 400, Some("invalid_value"), Some("image"));
    let r = edit(&base, base_form("x").file("image", bytes.clone(), "image/gif")).await;
    assert!(r.error()["message"].as_str().unwrap().contains("('image/gif')"));
    // PNG bytes sent as a JPEG.
    let r = edit(&base, base_form("x").file("image", bytes, "image/jpeg")).await;
    expect_error(&r, 400, Some("invalid_image"), Some("image"));
    // 50 MB is already too large.
    let r = edit(
        &base,
        base_form("x").file("image", vec![0; 50 * 1024 * 1024], "image/png"),
    )
    .await;
    expect_error(&r, 400, Some("invalid_value"), Some("image"));
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("smaller than 50 MB")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_only_rules() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let img = || png(&photo(64, 64));
    // gpt-image-2 takes no input_fidelity.
    let r = edit(
        &base,
        base_form("x")
            .text("input_fidelity", "high")
            .file("image", img(), "image/png"),
    )
    .await;
    expect_error(&r, 400, Some("unsupported_parameter"), Some("input_fidelity"));
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("Omit this parameter")
    );
    // moderation belongs to generations only.
    let r = edit(
        &base,
        base_form("x")
            .text("moderation", "low")
            .file("image", img(), "image/png"),
    )
    .await;
    expect_error(&r, 400, Some("unknown_parameter"), Some("moderation"));
    let r = edit(
        &base,
        base_form("x")
            .text("colour", "red")
            .file("image", img(), "image/png"),
    )
    .await;
    expect_error(&r, 400, Some("unknown_parameter"), Some("colour"));
    let r = edit(&base, base_form("x")).await;
    expect_error(&r, 400, Some("missing_required_parameter"), Some("image"));
    let r = edit(&base, EditForm::new().file("image", img(), "image/png")).await;
    expect_error(&r, 400, Some("missing_required_parameter"), Some("prompt"));
    let r = edit(
        &base,
        base_form("x").text("n", "two").file("image", img(), "image/png"),
    )
    .await;
    expect_error(&r, 400, Some("invalid_type"), Some("n"));
    let r = edit(
        &base,
        base_form("x")
            .text("size", "1920x1080")
            .file("image", img(), "image/png"),
    )
    .await;
    expect_error(&r, 400, Some("invalid_value"), Some("size"));
    let seventeen = (0..17).fold(base_form("x"), |f, _| f.file("image[]", img(), "image/png"));
    let r = edit(&base, seventeen).await;
    expect_error(&r, 400, Some("invalid_value"), Some("image"));
    // A JSON body is the other form of an edit (see json_edits.rs); anything else is neither.
    let r = crate::common::post_json(&base, "/images/edits", &serde_json::json!({"prompt": "x"})).await;
    expect_error(&r, 400, Some("missing_required_parameter"), Some("images"));
    let r = crate::common::client()
        .post(format!("{base}/images/edits"))
        .bearer_auth(crate::common::KEY)
        .header("content-type", "text/plain")
        .body("prompt=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("multipart/form-data or application/json"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_fidelity_is_taken_by_models_that_have_it() {
    // gpt-image-1.5 was retired on 2026-12-01; its rules come from the legacy models file.
    let legacy = fourk_api::Capabilities::from_toml(include_str!(
        "../../../fourk-api/tests/fixtures/legacy-models.toml"
    ))
    .unwrap();
    let emu = start(EmulatorConfig {
        capabilities: fourk_api::Capabilities::builtin().merged_with(legacy),
        ..EmulatorConfig::default()
    })
    .await;
    let form = EditForm::new()
        .text("model", "gpt-image-1.5")
        .text("prompt", "a cat in a hat")
        .text("size", "1024x1024")
        .text("quality", "low")
        .text("input_fidelity", "low")
        .file("image", png(&photo(1024, 1024)), "image/png");
    let r = edit(&emu.base_url(), form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_images_response(&r.body);
    assert_eq!(r.body["usage"]["input_tokens_details"]["image_tokens"], 196);
    // gpt-image-1.5's own output-token table.
    assert_eq!(r.body["usage"]["output_tokens"], 272);
}
