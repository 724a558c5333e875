//! The payload log: what each attempt sent and received, blobs beside it, no key anywhere;
//! and replay of a logged request against another server.

use std::path::Path;

use base64::Engine as _;
use fourk_api::{
    ContentPart, EditRequest, ImageDetail, ImageGenTool, ImageRequest, InputImage, InputItem, OutputFormat,
    ResponsesRequest,
};
use fourk_client::{PayloadLog, replay};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::server::{Act, KEY, client, envelope, event, images_body, json, serve, sse};

fn read_json(dir: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_attempt_is_logged_with_blobs_beside_it_and_the_key_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let image = vec![9u8; 1200];
    let partial = json!({"type": "image_generation.partial_image", "b64_json": b64(&[8u8; 900]),
        "partial_image_index": 0, "output_format": "webp"})
    .to_string();
    let completed =
        json!({"type": "image_generation.completed", "b64_json": b64(&image), "output_format": "png",
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}})
        .to_string();
    let server = serve(vec![
        // generate: 429 then 200
        Act::Reply(json(
            "429 Too Many Requests",
            "retry-after-ms: 10\r\nset-cookie: session=abc\r\n",
            &envelope(
                "requests",
                Some("rate_limit_exceeded"),
                &format!("Rate limit for key {KEY}"),
            ),
        )),
        Act::Reply(json("200 OK", "", &images_body(&b64(&image)))),
        // edit
        Act::Reply(json("200 OK", "", &images_body(&b64(&image)))),
        // stream
        Act::Reply(sse(&format!(
            "{}{}",
            event(Some("image_generation.partial_image"), &partial),
            event(Some("image_generation.completed"), &completed)
        ))),
        // responses with an inline image
        Act::Reply(json(
            "200 OK",
            "",
            r#"{"id":"resp_1","status":"completed","output":[]}"#,
        )),
    ])
    .await;
    let log = PayloadLog::new(dir.path()).with_inspector(|b| Some((u32::try_from(b.len()).unwrap(), 7)));
    let c = client(&server.url).with_payload_log(log);

    c.generate(&ImageRequest::new("gpt-image-2", "a fox"))
        .await
        .unwrap();
    let photo = InputImage::new("photo.png", OutputFormat::Png, vec![5u8; 700]);
    c.edit(
        &EditRequest::new("gpt-image-2", "night"),
        std::slice::from_ref(&photo),
        None,
    )
    .await
    .unwrap();
    let events: Vec<_> = c
        .generate_stream(&ImageRequest::new("gpt-image-2", "a fox"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(events.len(), 2);
    let mut r = ResponsesRequest::image("gpt-5", ImageGenTool::new("gpt-image-2"), "put a hat on it");
    if let InputItem::Message(m) = &mut r.input[0] {
        m.content.push(ContentPart::image(&photo, ImageDetail::High));
    }
    c.responses(&r).await.unwrap();

    let d = dir.path();
    let names = listing(d);
    for want in [
        "001-images-generations-attempt-1.request.json",
        "001-images-generations-attempt-1.response.json",
        "001-images-generations-attempt-2.request.json",
        "001-images-generations-attempt-2.response.json",
        "001-images-generations-attempt-2.response.blob-1.png",
        "002-images-edits-attempt-1.request.json",
        "002-images-edits-attempt-1.request.blob-1.png",
        "003-images-generations-attempt-1.response.json",
        "003-images-generations-attempt-1.response.blob-1.webp",
        "003-images-generations-attempt-1.response.blob-2.png",
        "004-responses-attempt-1.request.blob-1.png",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:#?}");
    }

    // No file holds the key, in any form the client had it.
    for name in &names {
        let bytes = std::fs::read(d.join(name)).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "{name} contains the API key"
        );
    }

    let req = read_json(d, "001-images-generations-attempt-1.request.json");
    assert_eq!(req["method"], "POST");
    assert_eq!(req["path"], "images/generations");
    assert_eq!(req["headers"]["authorization"], "Bearer [REDACTED]");
    assert_eq!(req["headers"]["content-type"], "application/json");
    assert!(
        req["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("fourk/")
    );
    assert_eq!(req["body"], json!({"model": "gpt-image-2", "prompt": "a fox"}));

    let first = read_json(d, "001-images-generations-attempt-1.response.json");
    assert_eq!(first["status"], 429);
    assert_eq!(first["headers"]["set-cookie"], "[REDACTED]");
    assert_eq!(first["body"]["error"]["code"], "rate_limit_exceeded");

    let ok = read_json(d, "001-images-generations-attempt-2.response.json");
    let blob = &ok["body"]["data"][0]["b64_json"];
    assert_eq!(
        blob["blob"],
        "001-images-generations-attempt-2.response.blob-1.png"
    );
    assert_eq!(blob["bytes"], 1200);
    assert_eq!(
        (blob["width"].clone(), blob["height"].clone()),
        (json!(1200), json!(7))
    );
    let saved = std::fs::read(d.join("001-images-generations-attempt-2.response.blob-1.png")).unwrap();
    assert_eq!(saved, image);

    let edit = read_json(d, "002-images-edits-attempt-1.request.json");
    let fields = edit["multipart"].as_array().unwrap();
    assert_eq!(fields[0], json!({"name": "model", "value": "gpt-image-2"}));
    assert_eq!(fields[2]["name"], "image");
    assert_eq!(fields[2]["file"]["filename"], "photo.png");
    assert_eq!(fields[2]["file"]["content_type"], "image/png");
    assert_eq!(fields[2]["file"]["bytes"], 700);
    assert!(
        edit["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/form-data")
    );

    let stream = read_json(d, "003-images-generations-attempt-1.response.json");
    assert_eq!(stream["end"], "end of body");
    let evs = stream["events"].as_array().unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["event"], "image_generation.partial_image");
    assert_eq!(evs[0]["data"]["b64_json"]["bytes"], 900);
    assert_eq!(evs[1]["data"]["usage"]["total_tokens"], 3);

    let resp_req = read_json(d, "004-responses-attempt-1.request.json");
    let part = &resp_req["body"]["input"][0]["content"][1];
    assert_eq!(part["image_url"]["data_url_prefix"], "data:image/png;base64,");
    assert_eq!(part["detail"], "high");
}

#[tokio::test]
async fn replay_resends_a_logged_request_with_its_blobs_to_another_server() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(vec![
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
        Act::Reply(json(
            "200 OK",
            "",
            r#"{"id":"resp_1","status":"completed","output":[]}"#,
        )),
    ])
    .await;
    let c = client(&first.url).with_payload_log(PayloadLog::new(dir.path()));
    let photo = InputImage::new("photo.jpg", OutputFormat::Jpeg, vec![0xd8u8; 5000]);
    let mask = InputImage::new("mask.png", OutputFormat::Png, vec![0u8; 400]);
    c.edit(
        &EditRequest::new("gpt-image-2", "night"),
        &[photo.clone(), photo.clone()],
        Some(&mask),
    )
    .await
    .unwrap();
    let mut r = ResponsesRequest::image("gpt-5", ImageGenTool::new("gpt-image-2"), "a hat");
    if let InputItem::Message(m) = &mut r.input[0] {
        m.content.push(ContentPart::image(&photo, ImageDetail::Auto));
    }
    c.responses(&r).await.unwrap();

    // The other server (say, the emulator or a gateway) gets the same requests.
    let second = serve(vec![
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
        Act::Reply(json(
            "200 OK",
            "",
            r#"{"id":"resp_2","status":"completed","output":[]}"#,
        )),
    ])
    .await;
    let other = client(&second.url);
    let edit_file = dir.path().join("001-images-edits-attempt-1.request.json");
    let resp = replay(&edit_file, &other).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(second.request(0).path, "/v1/images/edits");
    assert_eq!(second.request(0).parts(), first.request(0).parts());

    // A folder replays its newest request: the Responses call.
    let resp = replay(dir.path(), &other).await.unwrap();
    assert_eq!(resp.response_object().unwrap().id, "resp_2");
    assert_eq!(second.request(1).json(), first.request(1).json());
    assert_eq!(
        second.request(1).header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn a_log_that_cannot_be_written_does_not_fail_the_request() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let server = serve(vec![Act::Reply(json(
        "200 OK",
        "",
        &images_body(&b64(&[1u8; 600])),
    ))])
    .await;
    // A file where the folder should be: every write fails, with a warning.
    let c = client(&server.url).with_payload_log(PayloadLog::new(file.path().join("logs")));
    let resp = c
        .generate(&ImageRequest::new("gpt-image-2", "a fox"))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
}
