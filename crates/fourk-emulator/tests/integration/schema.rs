//! Validators for the OpenAI OpenAPI schemas, built on demand from the vendored spec at
//! `spec/openai-openapi.json`. Every success body, stream event and error body the tests see
//! goes through one of these.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

/// The spec's components, with the known-outdated enums patched (each patch says why).
static COMPONENTS: LazyLock<Value> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/openai-openapi.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut spec: Value = serde_json::from_str(&text).expect("spec is JSON");
    let schemas = &mut spec["components"]["schemas"];
    // The vendored spec (2026-08) still types ImagesResponse.size and .quality as closed enums
    // (the three 2025 sizes; low/medium/high). The newer SDK, which api-contract.md says wins,
    // makes `size` an open string (gpt-image-2 answers e.g. "3840x2160") and adds quality
    // tiers, so only these two enums are dropped.
    drop_enum(schemas, "ImagesResponse", "size");
    drop_enum(schemas, "ImagesResponse", "quality");
    // The image stream events type `size` as the same three sizes plus `auto`; the SDK
    // (3.57.0 `image_gen_*_event.py`, `image_edit_*_event.py`) makes it an open string, as
    // gpt-image-2 streams any WIDTHxHEIGHT.
    for event in [
        "ImageGenPartialImageEvent",
        "ImageGenCompletedEvent",
        "ImageEditPartialImageEvent",
        "ImageEditCompletedEvent",
    ] {
        drop_enum(schemas, event, "size");
    }
    spec["components"].take()
});

fn drop_enum(schemas: &mut Value, schema: &str, field: &str) {
    let prop = schemas[schema]["properties"][field]
        .as_object_mut()
        .unwrap_or_else(|| panic!("{schema}.{field} is in the spec"));
    assert!(
        prop.remove("enum").is_some(),
        "{schema}.{field} has an enum to drop"
    );
}

static VALIDATORS: LazyLock<Mutex<HashMap<String, &'static Validator>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The validator of `components.schemas.{name}`, compiled once.
pub fn validator(name: &str) -> &'static Validator {
    let mut map = VALIDATORS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(v) = map.get(name) {
        return v;
    }
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": &*COMPONENTS,
    });
    let v: &'static Validator = Box::leak(Box::new(
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema {name}: {e}")),
    ));
    map.insert(name.to_owned(), v);
    v
}

/// Assert that `body` matches `components.schemas.{name}`.
pub fn assert_schema(name: &str, body: &Value) {
    let errors: Vec<String> = validator(name)
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .take(10)
        .collect();
    assert!(
        errors.is_empty(),
        "{name} does not match the OpenAI schema: {errors:#?}\nbody: {}",
        shorten(body)
    );
}

/// The body with long strings (base64) cut, for readable failures.
pub fn shorten(v: &Value) -> String {
    fn cut(v: &Value) -> Value {
        match v {
            Value::String(s) if s.len() > 80 => Value::String(format!("{}…({} chars)", &s[..40], s.len())),
            Value::Array(a) => Value::Array(a.iter().map(cut).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), cut(v))).collect()),
            other => other.clone(),
        }
    }
    cut(v).to_string()
}

pub fn assert_images_response(body: &Value) {
    assert_schema("ImagesResponse", body);
}

pub fn assert_error_response(body: &Value) {
    assert_schema("ErrorResponse", body);
}

/// A Responses API stream event: its own schema (by `type`) and the `ResponseStreamEvent`
/// union.
pub fn assert_response_event(event: &Value) {
    let name = match event["type"].as_str().unwrap_or_default() {
        "response.created" => "ResponseCreatedEvent",
        "response.in_progress" => "ResponseInProgressEvent",
        "response.output_item.added" => "ResponseOutputItemAddedEvent",
        "response.output_item.done" => "ResponseOutputItemDoneEvent",
        "response.image_generation_call.in_progress" => "ResponseImageGenCallInProgressEvent",
        "response.image_generation_call.generating" => "ResponseImageGenCallGeneratingEvent",
        "response.image_generation_call.partial_image" => "ResponseImageGenCallPartialImageEvent",
        "response.image_generation_call.completed" => "ResponseImageGenCallCompletedEvent",
        "response.completed" => "ResponseCompletedEvent",
        "response.failed" => "ResponseFailedEvent",
        "error" => "ResponseErrorEvent",
        other => panic!("unexpected event type {other}"),
    };
    assert_schema(name, event);
    assert_schema("ResponseStreamEvent", event);
}

#[test]
fn the_schemas_reject_what_they_should() {
    // Guards against a validator that accepts anything (for example an unresolved $ref).
    let images = validator("ImagesResponse");
    assert!(!images.is_valid(&json!({"data": []})));
    assert!(!images.is_valid(&json!({"created": 1, "background": "auto"})));
    assert!(images.is_valid(&json!({"created": 1, "size": "3840x2160"})));
    let error = validator("ErrorResponse");
    assert!(!error.is_valid(&json!({"error": {"message": "x", "type": "y"}})));
    assert!(error.is_valid(&json!({"error": {"message": "x", "type": "y", "param": null, "code": null}})));
    let partial = validator("ImageGenStreamEvent");
    assert!(!partial.is_valid(&json!({"type": "image_generation.partial_image", "b64_json": "AA=="})));
    let response = validator("Response");
    assert!(!response.is_valid(&json!({"id": "resp_1", "object": "response"})));
    let call = validator("ResponseImageGenCallPartialImageEvent");
    assert!(
        !call.is_valid(&json!({"type": "response.image_generation_call.partial_image", "output_index": 0}))
    );
}
