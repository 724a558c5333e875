//! The bodies fourk builds validate against the vendored OpenAPI spec
//! (`spec/openai-openapi.json`): `CreateImageEditRequest` for the edit's text fields (as
//! their typed JSON, with placeholders for the file parts), `EditImageBodyJsonParam` for the
//! JSON edit (a Batch API line's body), `CreateResponse` for the
//! Responses API, and the stream-event schemas for what the emulator may serialize.

use std::sync::LazyLock;

use fourk_api::{
    Background, CompletedImage, ContentPart, EditJsonBody, EditRequest, ImageDetail, ImageGenPartialImage,
    ImageGenTool, ImageMask, ImageRef, ImageSettings, ImageStreamEvent, InputFidelity, InputImage, InputItem,
    Moderation, OutputFormat, PartialImage, Quality, ResponseStreamEvent, ResponsesRequest, Size, ToolAction,
    ToolChoice, ToolChoiceMode, Usage,
};
use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

static COMPONENTS: LazyLock<Value> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/openai-openapi.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut spec: Value = serde_json::from_str(&text).expect("spec is JSON");
    // `InputItem` is a `oneOf` of `EasyInputMessage` and `Item` (which contains
    // `InputMessage`) that OpenAPI disambiguates with a `discriminator`. JSON Schema has no
    // discriminator, and every user message with a content list matches both branches, so
    // `oneOf` rejects all of them. `anyOf` is the JSON Schema meaning of the OpenAPI
    // construct; every branch is still checked.
    let input_item = spec["components"]["schemas"]["InputItem"]
        .as_object_mut()
        .expect("InputItem is in the spec");
    let branches = input_item.remove("oneOf").expect("InputItem is a oneOf");
    input_item.insert("anyOf".into(), branches);
    spec["components"].take()
});

/// A validator with the whole spec's components as the root and a top-level `$ref`, so
/// every reference inside the schema resolves.
fn validator(name: &str) -> Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": *COMPONENTS,
    });
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {name}: {e}"))
}

fn assert_valid(v: &Validator, what: &str, body: &Value) {
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the spec: {errors:#?}\n{body:#}"
    );
}

fn edit_json(r: &EditRequest, images: usize) -> Value {
    let mut v = serde_json::to_value(r).unwrap();
    // The file parts are binary strings in the schema; a placeholder stands for each.
    v["image"] = if images == 1 {
        json!("<binary>")
    } else {
        Value::Array(vec![json!("<binary>"); images])
    };
    v
}

#[test]
fn edit_text_fields_match_create_image_edit_request() {
    let v = validator("CreateImageEditRequest");
    let minimal = EditRequest::new("gpt-image-2", "add a red hat");
    assert_valid(&v, "minimal edit", &edit_json(&minimal, 1));

    let mut full = EditRequest::new("gpt-image-1.5", "make it night");
    full.size = Some(Size::new(1536, 1024));
    full.quality = Some(Quality::High);
    full.background = Some(Background::Transparent);
    full.output_format = Some(OutputFormat::Webp);
    full.output_compression = Some(80);
    full.n = Some(3);
    full.stream = Some(true);
    full.partial_images = Some(3);
    full.input_fidelity = Some(InputFidelity::High);
    full.safety_identifier = Some("user-hash".into());
    assert_valid(&v, "full edit", &edit_json(&full, 16));

    let mut four_k = EditRequest::new("gpt-image-2", "upscale the look");
    four_k.size = Some(Size::new(3840, 2160));
    assert_valid(&v, "4k edit", &edit_json(&four_k, 2));

    // The validator is not vacuous.
    assert!(!v.is_valid(&json!({"prompt": "x"})), "image is required");
    assert!(!v.is_valid(&json!({"prompt": "x", "image": "<binary>", "n": 11})));
    let mut too_many = edit_json(&minimal, 17);
    assert!(!v.is_valid(&too_many), "at most 16 images");
    too_many["image"] = json!("<binary>");
    too_many["input_fidelity"] = json!("medium");
    assert!(!v.is_valid(&too_many));
}

#[test]
fn json_edits_match_edit_image_body_json_param() {
    let v = validator("EditImageBodyJsonParam");
    let photo = InputImage::new("photo.png", OutputFormat::Png, vec![0x89, b'P', b'N', b'G']);
    let mask = InputImage::new("mask.png", OutputFormat::Png, vec![0x89, b'P', b'N', b'G', 0]);
    let minimal = EditJsonBody::from_edit(
        &EditRequest::new("gpt-image-2", "add a red hat"),
        std::slice::from_ref(&photo),
        None,
    );
    assert_valid(&v, "minimal JSON edit", &serde_json::to_value(&minimal).unwrap());

    // The spec's size and quality enums for this body are the 2025 ones (no 4K, no xhigh),
    // so the full body keeps to them.
    let mut req = EditRequest::new("gpt-image-1.5", "make it night");
    req.size = Some(Size::new(1536, 1024));
    req.quality = Some(Quality::High);
    req.background = Some(Background::Transparent);
    req.output_format = Some(OutputFormat::Webp);
    req.output_compression = Some(80);
    req.n = Some(3);
    req.stream = Some(true);
    req.partial_images = Some(3);
    req.input_fidelity = Some(InputFidelity::High);
    req.safety_identifier = Some("user-hash".into());
    let mut full = EditJsonBody::from_edit(&req, &vec![photo; 15], Some(&mask));
    full.images.push(ImageRef::file("file-abc123"));
    full.moderation = Some(Moderation::Low);
    assert_valid(&v, "full JSON edit", &serde_json::to_value(&full).unwrap());
    let by_url = EditJsonBody::new(
        "gpt-image-2",
        "x",
        vec![ImageRef::url("https://example.com/source-image.png")],
    );
    assert_valid(&v, "JSON edit by URL", &serde_json::to_value(&by_url).unwrap());

    // The validator is not vacuous.
    let mut bad = serde_json::to_value(&minimal).unwrap();
    bad["images"] = json!([{"image_url": "data:,", "file_id": "file-1"}]);
    assert!(!v.is_valid(&bad), "exactly one of image_url and file_id");
    bad["images"] = json!([]);
    assert!(!v.is_valid(&bad), "at least one image");
    assert!(!v.is_valid(&json!({"prompt": "x"})), "images is required");
}

fn full_responses_request() -> ResponsesRequest {
    let mut tool = ImageGenTool::new("gpt-image-2");
    tool.size = Some(Size::new(3840, 2160));
    tool.quality = Some(Quality::High);
    tool.output_format = Some(OutputFormat::Jpeg);
    tool.output_compression = Some(90);
    tool.background = Some(Background::Opaque);
    tool.moderation = Some(Moderation::Low);
    tool.partial_images = Some(2);
    tool.action = Some(ToolAction::Edit);
    let mask = InputImage::new("mask.png", OutputFormat::Png, vec![0x89, b'P', b'N', b'G']);
    tool.input_image_mask = Some(ImageMask {
        image_url: Some(mask.data_url()),
        file_id: None,
    });
    let photo = InputImage::new("photo.jpg", OutputFormat::Jpeg, vec![0xff, 0xd8, 0xff]);
    let mut r = ResponsesRequest::image("gpt-5", tool, "put the cat on the moon");
    if let InputItem::Message(m) = &mut r.input[0] {
        m.content.push(ContentPart::image(&photo, ImageDetail::Auto));
    }
    r.previous_response_id = Some("resp_123".into());
    r.stream = Some(true);
    r
}

#[test]
fn responses_requests_match_create_response() {
    let v = validator("CreateResponse");
    assert_valid(
        &v,
        "full request",
        &serde_json::to_value(full_responses_request()).unwrap(),
    );
    let minimal = ResponsesRequest::image("gpt-5", ImageGenTool::new("gpt-image-2"), "a fox");
    assert_valid(&v, "minimal request", &serde_json::to_value(&minimal).unwrap());

    let mut follow_up = minimal.clone();
    follow_up.input = vec![
        InputItem::ItemReference { id: "ig_123".into() },
        InputItem::user(vec![ContentPart::text("now make it blue")]),
    ];
    follow_up.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::Required));
    assert_valid(&v, "follow-up", &serde_json::to_value(&follow_up).unwrap());

    let mut bad = serde_json::to_value(&minimal).unwrap();
    bad["tools"][0]["partial_images"] = json!(4);
    assert!(!v.is_valid(&bad), "the validator checks the tool");
    let mut bad = serde_json::to_value(&minimal).unwrap();
    bad["tool_choice"] = json!({"type": "painting"});
    assert!(!v.is_valid(&bad), "the validator checks tool_choice");
}

fn settings() -> ImageSettings {
    ImageSettings {
        background: Some("opaque".into()),
        output_format: Some("png".into()),
        quality: Some("high".into()),
        size: Some("1024x1024".into()),
    }
}

fn usage() -> Usage {
    Usage::new(50, 0, 7024)
}

#[test]
fn image_stream_events_match_the_spec_event_schemas() {
    let partial = PartialImage {
        b64_json: "QUJD".into(),
        partial_image_index: 0,
        created_at: Some(1_777_000_000),
        settings: settings(),
    };
    let completed = CompletedImage {
        b64_json: "QUJD".into(),
        created_at: Some(1_777_000_000),
        settings: settings(),
        usage: Some(usage()),
    };
    let cases = [
        (
            "ImageGenPartialImageEvent",
            ImageStreamEvent::GenerationPartial(partial.clone()),
        ),
        (
            "ImageGenCompletedEvent",
            ImageStreamEvent::GenerationCompleted(completed.clone()),
        ),
        (
            "ImageEditPartialImageEvent",
            ImageStreamEvent::EditPartial(partial),
        ),
        (
            "ImageEditCompletedEvent",
            ImageStreamEvent::EditCompleted(completed),
        ),
    ];
    for (schema, event) in cases {
        assert_valid(&validator(schema), schema, &serde_json::to_value(&event).unwrap());
    }
    let partial = ResponseStreamEvent::ImageGenPartialImage(ImageGenPartialImage {
        item_id: "ig_1".into(),
        output_index: 0,
        sequence_number: Some(4),
        partial_image_b64: "QUJD".into(),
        partial_image_index: 1,
        settings: ImageSettings {
            output_format: Some("png".into()),
            size: Some("3840x2160".into()),
            ..ImageSettings::default()
        },
    });
    assert_valid(
        &validator("ResponseImageGenCallPartialImageEvent"),
        "partial image event",
        &serde_json::to_value(&partial).unwrap(),
    );
}
