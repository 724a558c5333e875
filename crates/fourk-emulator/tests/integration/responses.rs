//! `POST /v1/responses` with the `image_generation` tool: plain and streamed, chains through
//! `previous_response_id`, input images, and failures.

use fourk_emulator::EmulatorConfig;
use image::GenericImageView as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{b64, decode, mean_diff, photo, png, post_json, post_stream, start, unb64};
use crate::schema::{assert_error_response, assert_response_event, assert_schema};

fn tool() -> Value {
    json!({"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low"})
}

fn body(input: Value) -> Value {
    json!({"model": "gpt-5", "input": input, "tools": [tool()], "tool_choice": {"type": "image_generation"}})
}

/// The image of the response's only output item.
fn result_image(response: &Value) -> image::DynamicImage {
    let item = &response["output"][0];
    assert_eq!(item["type"], "image_generation_call");
    assert_eq!(item["status"], "completed", "{item}");
    decode(&unb64(item["result"].as_str().expect("result")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_call_returns_a_completed_response_with_the_image() {
    let emu = start(EmulatorConfig::default()).await;
    let r = post_json(
        &emu.base_url(),
        "/responses",
        &body(json!("a lighthouse in a storm")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_schema("Response", &r.body);
    let b = &r.body;
    assert!(b["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(b["object"], "response");
    assert_eq!(b["status"], "completed");
    assert_eq!(b["model"], "gpt-5");
    assert_eq!(b["previous_response_id"], Value::Null);
    assert_eq!(b["tool_choice"], json!({"type": "image_generation"}));
    assert_eq!(b["tools"][0]["model"], "gpt-image-2");
    assert_eq!(b["tools"][0]["output_format"], "png", "defaults are filled in");
    let item = &b["output"][0];
    assert!(item["id"].as_str().unwrap().starts_with("ig_"));
    assert_eq!(item["action"], "generate");
    assert_eq!(item["revised_prompt"], "a lighthouse in a storm");
    assert_eq!(
        (
            &item["size"],
            &item["quality"],
            &item["background"],
            &item["output_format"]
        ),
        (
            &json!("1024x1024"),
            &json!("low"),
            &json!("opaque"),
            &json!("png")
        )
    );
    assert_eq!(result_image(b).dimensions(), (1024, 1024));
    let usage = &b["tool_usage"]["image_gen"];
    assert_eq!(usage["output_tokens"], 196);
    assert_eq!(usage["input_tokens_details"]["image_tokens"], 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + 196
    );
    assert!(b["usage"]["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_sends_every_event_in_order() {
    let emu = start(EmulatorConfig::default()).await;
    let mut req = body(json!([{"role": "user", "content": [{"type": "input_text", "text": "a red fox"}]}]));
    req["tools"][0]["partial_images"] = 2.into();
    req["stream"] = true.into();
    let s = post_stream(&emu.base_url(), "/responses", &req).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.raw);
    let names: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.image_generation_call.in_progress",
            "response.image_generation_call.generating",
            "response.image_generation_call.partial_image",
            "response.image_generation_call.partial_image",
            "response.image_generation_call.completed",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, e) in s.events.iter().enumerate() {
        assert_response_event(&e.data);
        assert_eq!(e.data["sequence_number"], i, "sequence numbers count up from 0");
    }
    assert_eq!(s.events[0].data["response"]["status"], "in_progress");
    let item_id = s.events[2].data["item"]["id"].as_str().unwrap();
    let mut sizes = Vec::new();
    for e in &s.events[5..7] {
        assert_eq!(e.data["item_id"], item_id);
        assert_eq!(e.data["output_index"], 0);
        sizes.push(unb64(e.data["partial_image_b64"].as_str().unwrap()).len());
    }
    assert_eq!(s.events[6].data["partial_image_index"], 1);
    let done = &s.events[8].data["item"];
    let finished = &s.events[9].data["response"];
    assert_eq!(finished["status"], "completed");
    assert_eq!(&finished["output"][0], done);
    let final_len = unb64(done["result"].as_str().unwrap()).len();
    assert!(
        sizes[0] < sizes[1] && sizes[1] < final_len,
        "{sizes:?} {final_len}"
    );
    assert_eq!(result_image(finished).dimensions(), (1024, 1024));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_response_id_edits_the_earlier_image() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let first = post_json(&base, "/responses", &body(json!("a wooden cabin"))).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let mut next = body(json!("now in winter"));
    next["previous_response_id"] = first.body["id"].clone();
    let second = post_json(&base, "/responses", &next).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_schema("Response", &second.body);
    assert_eq!(second.body["previous_response_id"], first.body["id"]);
    let item = &second.body["output"][0];
    assert_eq!(item["action"], "edit");
    let (a, b) = (result_image(&first.body), result_image(&second.body));
    let fresh = fourk_emulator::render::render("now in winter", 1024, 1024, "x", false);
    assert!(
        mean_diff(&a, &b) * 1.5 < mean_diff(&a, &fresh),
        "the edit builds on the earlier image"
    );
    assert_eq!(
        second.body["tool_usage"]["image_gen"]["input_tokens_details"]["image_tokens"],
        7024
    );
    // The chain goes on from the second response.
    let mut third = body(json!("add a moose"));
    third["previous_response_id"] = second.body["id"].clone();
    let third = post_json(&base, "/responses", &third).await;
    assert_eq!(third.body["output"][0]["action"], "edit");

    let mut unknown = body(json!("x"));
    unknown["previous_response_id"] = "resp_nope".into();
    let r = post_json(&base, "/responses", &unknown).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_error_response(&r.body);
    assert_eq!(
        r.error()["message"],
        "Previous response with id 'resp_nope' not found."
    );
    assert_eq!(r.error()["param"], "previous_response_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_images_are_edited_and_unsupported_sources_are_explained() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let photo_url = format!("data:image/png;base64,{}", b64(&png(&photo(1024, 1024))));
    let with_image = |image: Value| {
        body(json!([{"role": "user", "content": [
            {"type": "input_text", "text": "make it autumn"},
            image,
        ]}]))
    };
    let r = post_json(
        &base,
        "/responses",
        &with_image(json!({"type": "input_image", "image_url": photo_url, "detail": "auto"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_schema("Response", &r.body);
    assert_eq!(r.body["output"][0]["action"], "edit");
    let out = result_image(&r.body);
    assert!(mean_diff(&out, &photo(1024, 1024)) < 45.0);

    for (image, param) in [
        (
            json!({"type": "input_image", "file_id": "file-123", "detail": "auto"}),
            "input[0].content[1].file_id",
        ),
        (
            json!({"type": "input_image", "image_url": "https://example.invalid/a.png", "detail": "auto"}),
            "input[0].content[1].image_url",
        ),
    ] {
        let r = post_json(&base, "/responses", &with_image(image)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_error_response(&r.body);
        assert_eq!(r.error()["param"], param);
        assert!(
            r.error()["message"]
                .as_str()
                .unwrap()
                .contains("not supported by the fourk emulator")
        );
    }
    let r = post_json(
        &base,
        "/responses",
        &with_image(
            json!({"type": "input_image", "image_url": "data:image/png;base64,!!!", "detail": "auto"}),
        ),
    )
    .await;
    assert_eq!(r.error()["code"], "invalid_base64_image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_fails_the_response_not_the_request() {
    let emu = start(EmulatorConfig {
        moderation_block_words: vec!["forbidden".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let base = emu.base_url();
    let r = post_json(&base, "/responses", &body(json!("a forbidden castle"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_schema("Response", &r.body);
    assert_eq!(r.body["status"], "failed");
    assert_eq!(r.body["error"]["code"], "image_content_policy_violation");
    let item = &r.body["output"][0];
    assert_eq!(item["status"], "failed");
    assert_eq!(item["result"], Value::Null);
    assert_eq!(item["error"]["code"], "moderation_blocked");
    assert_eq!(item["error"]["moderation_details"]["moderation_stage"], "input");

    let mut req = body(json!("[fourk:moderation] a castle"));
    req["stream"] = true.into();
    let s = post_stream(&base, "/responses", &req).await;
    assert_eq!(s.status, StatusCode::OK);
    for e in &s.events {
        assert_response_event(&e.data);
    }
    let last = s.events.last().unwrap();
    assert_eq!(last.name, "response.failed");
    assert_eq!(last.data["response"]["output"][0]["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_are_envelopes() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let cases = [
        (
            json!({"model": "gpt-image-2", "input": "x", "tools": [tool()]}),
            400,
            "model",
        ),
        (json!({"model": "gpt-5", "input": "x"}), 400, "tools"),
        (
            json!({"model": "gpt-5", "input": "x", "tools": [{"type": "image_generation", "model": "gpt-image-2", "size": "1920x1080"}]}),
            400,
            "size",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "tools": [{"type": "image_generation", "model": "gpt-image-2", "input_fidelity": "high"}]}),
            400,
            "tools[0].input_fidelity",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "tools": [{"type": "image_generation", "model": "gpt-image-9"}]}),
            404,
            "model",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "tools": [{"type": "web_search"}]}),
            400,
            "tools[0].type",
        ),
        (
            json!({"model": "gpt-5", "input": "x", "tools": [tool()], "colour": 1}),
            400,
            "colour",
        ),
        (json!({"model": "gpt-5", "tools": [tool()]}), 400, "input"),
        (
            json!({"model": "gpt-5", "input": "x", "tools": [tool()], "tool_choice": "none"}),
            400,
            "tool_choice",
        ),
    ];
    for (req, status, param) in cases {
        let r = post_json(&base, "/responses", &req).await;
        assert_eq!(r.status.as_u16(), status, "{req}: {}", r.body);
        assert_error_response(&r.body);
        assert_eq!(r.error()["param"], param, "{req}: {}", r.body);
    }
    let r = post_json(&base, "/responses", &body(json!("[fourk:org-unverified] a fox"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_error_response(&r.body);
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .starts_with("Your organization must be verified to use the model 'gpt-image-2'.")
    );
}
