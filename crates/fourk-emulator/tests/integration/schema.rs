//! Validators for the OpenAI OpenAPI schemas `ImagesResponse` and `ErrorResponse`, built from
//! the vendored spec at `spec/openai-openapi.json`.

use std::sync::LazyLock;

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

struct Validators {
    images: Validator,
    error: Validator,
}

static VALIDATORS: LazyLock<Validators> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/openai-openapi.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut spec: Value = serde_json::from_str(&text).expect("spec is JSON");
    let schemas = &mut spec["components"]["schemas"];
    // The vendored spec (2026-08) still types ImagesResponse.size and .quality as closed enums
    // (the three 2025 sizes; low/medium/high). The newer SDK, which api-contract.md says wins,
    // makes `size` an open string (gpt-image-2 answers e.g. "3840x2160") and adds quality
    // tiers, so only these two enums are dropped; everything else validates unmodified.
    for field in ["size", "quality"] {
        let prop = schemas["ImagesResponse"]["properties"][field]
            .as_object_mut()
            .unwrap_or_else(|| panic!("ImagesResponse.{field} is in the spec"));
        assert!(
            prop.remove("enum").is_some(),
            "ImagesResponse.{field} has an enum to drop"
        );
    }
    let components = spec["components"].take();
    let build = |name: &str| {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{name}"),
            "components": components,
        });
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema {name}: {e}"))
    };
    Validators {
        images: build("ImagesResponse"),
        error: build("ErrorResponse"),
    }
});

fn check(v: &Validator, what: &str, body: &Value) {
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the OpenAI schema: {errors:#?}"
    );
}

pub fn assert_images_response(body: &Value) {
    check(&VALIDATORS.images, "ImagesResponse", body);
}

pub fn assert_error_response(body: &Value) {
    check(&VALIDATORS.error, "ErrorResponse", body);
}

#[test]
fn the_schemas_reject_what_they_should() {
    // Guards against a validator that accepts anything (for example an unresolved $ref).
    assert!(!VALIDATORS.images.is_valid(&json!({"data": []})));
    assert!(
        !VALIDATORS
            .images
            .is_valid(&json!({"created": 1, "background": "auto"}))
    );
    assert!(
        VALIDATORS
            .images
            .is_valid(&json!({"created": 1, "size": "3840x2160"}))
    );
    assert!(
        !VALIDATORS
            .error
            .is_valid(&json!({"error": {"message": "x", "type": "y"}}))
    );
    assert!(
        VALIDATORS
            .error
            .is_valid(&json!({"error": {"message": "x", "type": "y", "param": null, "code": null}}))
    );
}
