//! `/v1/files` and `/v1/batches`: uploads, batches processed in the background through the
//! live generation (or JSON edit) checks, honest statuses and counts, result files, cancel, list, and every
//! body checked against the OpenAPI schemas (`OpenAIFile`, `Batch`, `ListBatchesResponse`,
//! `ImagesResponse`, `ErrorResponse`).

use std::time::{Duration, Instant};

use fourk_emulator::{EmulatorConfig, FaultKind, FaultSpec};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::common::{KEY, client, data_url, get, mask, photo, png, post_json, start, unb64, upload_file};
use crate::schema::{assert_error_response, assert_images_response, assert_schema};

fn line(custom_id: &str, body: Value) -> String {
    json!({"custom_id": custom_id, "method": "POST", "url": "/v1/images/generations", "body": body})
        .to_string()
}

fn small(prompt: &str) -> Value {
    json!({"model": "gpt-image-2", "prompt": prompt, "size": "1024x1024", "quality": "low"})
}

async fn upload(base: &str, filename: &str, text: String) -> (StatusCode, Value) {
    let form = Form::new().text("purpose", "batch").part(
        "file",
        Part::bytes(text.into_bytes())
            .file_name(filename.to_owned())
            .mime_str("application/jsonl")
            .unwrap(),
    );
    let r = client()
        .post(format!("{base}/files"))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = r.status();
    (status, r.json().await.expect("JSON"))
}

async fn create(base: &str, file_id: &str) -> Value {
    create_for(base, file_id, "/v1/images/generations").await
}

async fn create_for(base: &str, file_id: &str, endpoint: &str) -> Value {
    let r = post_json(
        base,
        "/batches",
        &json!({"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h", "metadata": {"job": "test"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_schema("Batch", &r.body);
    r.body
}

/// Poll until the batch is final; every body seen is checked, and the statuses seen are
/// returned in order (without repeats).
async fn wait_final(base: &str, id: &str) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let r = get(base, &format!("/batches/{id}"), Some(KEY)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_schema("Batch", &r.body);
        let status = r.body["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if ["completed", "failed", "expired", "cancelled"].contains(&status.as_str()) {
            return (r.body, seen);
        }
        assert!(Instant::now() < deadline, "batch {id} not final: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn content_lines(base: &str, file_id: &str) -> Vec<Value> {
    let meta = get(base, &format!("/files/{file_id}"), Some(KEY)).await;
    assert_eq!(meta.status, StatusCode::OK);
    assert_schema("OpenAIFile", &meta.body);
    assert_eq!(meta.body["purpose"], "batch_output");
    let r = client()
        .get(format!("{base}/files/{file_id}/content"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert_eq!(text.len() as u64, meta.body["bytes"].as_u64().unwrap());
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn a_batch_runs_in_the_background_with_per_line_results() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let text = [
        line("fox", small("a fox")),
        line("owl", small("an owl")),
        line(
            "bad-size",
            json!({"model": "gpt-image-2", "prompt": "x", "size": "1000x1000"}),
        ),
    ]
    .join("\n");
    let (status, file) = upload(&base, "jobs.jsonl", text.clone()).await;
    assert_eq!(status, StatusCode::OK, "{file}");
    assert_schema("OpenAIFile", &file);
    assert_eq!(file["purpose"], "batch");
    assert_eq!(file["bytes"], text.len());
    assert!(file["id"].as_str().unwrap().starts_with("file-"));

    let batch = create(&base, file["id"].as_str().unwrap()).await;
    assert_eq!(batch["status"], "validating");
    assert_eq!(batch["metadata"]["job"], "test");
    assert_eq!(batch["request_counts"]["total"], 0);
    let id = batch["id"].as_str().unwrap();
    let (done, seen) = wait_final(&base, id).await;
    assert_eq!(seen.last().unwrap(), "completed", "{seen:?}");
    for pair in seen.windows(2) {
        let order = ["validating", "in_progress", "finalizing", "completed"];
        let pos = |s: &str| order.iter().position(|o| *o == s).unwrap();
        assert!(pos(&pair[0]) < pos(&pair[1]), "statuses go forward: {seen:?}");
    }
    assert_eq!(
        done["request_counts"],
        json!({"total": 3, "completed": 2, "failed": 1})
    );
    for t in ["in_progress_at", "finalizing_at", "completed_at", "expires_at"] {
        assert!(
            done[t].as_i64().unwrap() >= done["created_at"].as_i64().unwrap(),
            "{t}"
        );
    }
    assert_eq!(
        done["usage"]["output_tokens"],
        2 * 196,
        "two low 1024x1024 images"
    );

    let out = content_lines(&base, done["output_file_id"].as_str().unwrap()).await;
    assert_eq!(out.len(), 2);
    let mut ids: Vec<&str> = out.iter().map(|l| l["custom_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["fox", "owl"]);
    for l in &out {
        assert!(l["id"].as_str().unwrap().starts_with("batch_req_"));
        assert_eq!(l["error"], Value::Null);
        assert_eq!(l["response"]["status_code"], 200);
        assert!(l["response"]["request_id"].as_str().unwrap().starts_with("req_"));
        let body = &l["response"]["body"];
        assert_images_response(body);
        assert_eq!(body["usage"]["output_tokens"], 196);
        let png = unb64(body["data"][0]["b64_json"].as_str().unwrap());
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (1024, 1024));
    }
    let errors = content_lines(&base, done["error_file_id"].as_str().unwrap()).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["custom_id"], "bad-size");
    assert_eq!(errors[0]["response"]["status_code"], 400);
    assert_error_response(&errors[0]["response"]["body"]);
    assert_eq!(errors[0]["response"]["body"]["error"]["param"], "size");

    let list = get(&base, "/batches", Some(KEY)).await;
    assert_schema("ListBatchesResponse", &list.body);
    assert_eq!(list.body["data"][0]["id"], id);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_input_file_that_breaks_batch_rules_fails_validation_with_line_numbers() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let edits =
        json!({"custom_id": "e", "method": "POST", "url": "/v1/images/edits", "body": {}}).to_string();
    let text = [line("a", small("x")), line("a", small("y")), edits].join("\n");
    let (status, file) = upload(&base, "jobs.jsonl", text).await;
    assert_eq!(status, StatusCode::OK, "{file}");
    let batch = create(&base, file["id"].as_str().unwrap()).await;
    let (done, _) = wait_final(&base, batch["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert!(done["failed_at"].is_i64());
    let errors = &done["errors"]["data"];
    assert_eq!(errors[0]["code"], "duplicate_custom_id");
    assert_eq!(errors[0]["line"], 2);
    assert_eq!(errors[1]["code"], "mismatched_endpoint");
    assert_eq!(errors[1]["line"], 3);
    assert!(done.get("output_file_id").is_none());
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn uploads_and_creates_are_refused_with_the_apis_errors() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let (status, body) = upload(&base, "jobs.txt", line("a", small("x"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_response(&body);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Must be .jsonl")
    );

    let (status, body) = upload(
        &base,
        "jobs.jsonl",
        format!("{}\nnot json\n", line("a", small("x"))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("line 2"), "{msg}");

    let (status, body) = upload(
        &base,
        "jobs.jsonl",
        json!({"custom_id": "a", "method": "GET", "url": "/v1/images/generations", "body": {}}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("POST"));

    let r = post_json(
        &base,
        "/batches",
        &json!({"input_file_id": "file-nope", "endpoint": "/v1/images/generations", "completion_window": "24h"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_error_response(&r.body);

    let (_, file) = upload(&base, "jobs.jsonl", line("a", small("x"))).await;
    let fid = file["id"].as_str().unwrap();
    for (body, param) in [
        (
            json!({"input_file_id": fid, "endpoint": "/v1/images/generations", "completion_window": "1h"}),
            "completion_window",
        ),
        (
            json!({"input_file_id": fid, "endpoint": "/v1/nope", "completion_window": "24h"}),
            "endpoint",
        ),
        (
            json!({"input_file_id": fid, "completion_window": "24h"}),
            "endpoint",
        ),
    ] {
        let r = post_json(&base, "/batches", &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_error_response(&r.body);
        assert_eq!(r.body["error"]["param"], param);
    }
    for path in [
        "/batches/batch_nope",
        "/files/file-nope",
        "/files/file-nope/content",
    ] {
        let r = get(&base, path, Some(KEY)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_error_response(&r.body);
    }
    let r = get(&base, "/batches", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_stops_the_rest_and_keeps_what_finished() {
    let emu = start(EmulatorConfig {
        // 1024x1024 low is modelled at 20 s; a tenth keeps each request slow enough to
        // cancel mid-batch.
        latency_scale: 0.1,
        ..EmulatorConfig::default()
    })
    .await;
    let base = emu.base_url();
    let text = (0..40)
        .map(|i| line(&format!("job-{i}"), small(&format!("prompt {i}"))))
        .collect::<Vec<_>>()
        .join("\n");
    let (_, file) = upload(&base, "jobs.jsonl", text).await;
    let batch = create(&base, file["id"].as_str().unwrap()).await;
    let id = batch["id"].as_str().unwrap();
    let r = post_json(&base, &format!("/batches/{id}/cancel"), &json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_schema("Batch", &r.body);
    assert_eq!(r.body["status"], "cancelling");
    assert!(r.body["cancelling_at"].is_i64());
    let (done, _) = wait_final(&base, id).await;
    assert_eq!(done["status"], "cancelled");
    assert!(done["cancelled_at"].is_i64());
    let counts = &done["request_counts"];
    let (completed, failed) = (
        counts["completed"].as_u64().unwrap(),
        counts["failed"].as_u64().unwrap(),
    );
    assert!(completed < 40, "{counts}");
    if let Some(eid) = done["error_file_id"].as_str() {
        let lines = content_lines(&base, eid).await;
        assert_eq!(lines.len() as u64, failed);
        assert!(lines.iter().all(|l| l["error"]["code"] == "batch_cancelled"));
    }
    let again = post_json(&base, &format!("/batches/{id}/cancel"), &json!({})).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "cancelling a cancelled batch is a no-op"
    );

    let fast = start(EmulatorConfig::default()).await;
    let (_, file) = upload(&fast.base_url(), "one.jsonl", line("one", small("x"))).await;
    let b = create(&fast.base_url(), file["id"].as_str().unwrap()).await;
    let bid = b["id"].as_str().unwrap();
    let _ = wait_final(&fast.base_url(), bid).await;
    let r = post_json(&fast.base_url(), &format!("/batches/{bid}/cancel"), &json!({})).await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "a completed batch cannot be cancelled"
    );
    assert_error_response(&r.body);
    emu.shutdown().await.unwrap();
    fast.shutdown().await.unwrap();
}

#[tokio::test]
async fn faults_become_per_line_errors_and_list_pages() {
    let emu = start(EmulatorConfig {
        faults: FaultSpec::none().with(FaultKind::ServerError, 1.0).unwrap(),
        seed: Some(7),
        ..EmulatorConfig::default()
    })
    .await;
    let base = emu.base_url();
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, file) = upload(&base, "jobs.jsonl", line(&format!("j{i}"), small("x"))).await;
        assert_eq!(status, StatusCode::OK, "uploads are not fault targets");
        let b = create(&base, file["id"].as_str().unwrap()).await;
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let (done, _) = wait_final(&base, id).await;
        assert_eq!(done["status"], "completed");
        assert_eq!(done["request_counts"]["failed"], 1);
        let lines = content_lines(&base, done["error_file_id"].as_str().unwrap()).await;
        assert_eq!(lines[0]["response"]["status_code"], 500);
        assert_error_response(&lines[0]["response"]["body"]);
    }
    let page = get(&base, "/batches?limit=2", Some(KEY)).await;
    assert_schema("ListBatchesResponse", &page.body);
    assert_eq!(page.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(page.body["has_more"], true);
    assert_eq!(page.body["first_id"], ids[2].as_str(), "newest first");
    let last = page.body["last_id"].as_str().unwrap();
    let next = get(&base, &format!("/batches?limit=2&after={last}"), Some(KEY)).await;
    assert_eq!(next.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(next.body["data"][0]["id"], ids[0].as_str());
    assert_eq!(next.body["has_more"], false);
    let bad = get(&base, "/batches?limit=0", Some(KEY)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await.unwrap();
}

fn edit_line(custom_id: &str, body: Value) -> String {
    json!({"custom_id": custom_id, "method": "POST", "url": "/v1/images/edits", "body": body}).to_string()
}

#[tokio::test]
async fn an_edits_batch_runs_each_line_as_a_json_edit() {
    let emu = start(EmulatorConfig::default()).await;
    let base = emu.base_url();
    let photo_png = png(&photo(1024, 1024));
    let up = upload_file(&base, "vision", "photo.png", photo_png.clone()).await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    let file_id = up.body["id"].as_str().unwrap();
    let edit = |images: Value| json!({"model": "gpt-image-2", "prompt": "add a hat", "size": "1024x1024", "quality": "low", "images": images});
    let inline = edit(json!([{"image_url": data_url("image/png", &photo_png)}]));
    let mut masked = edit(json!([{"file_id": file_id}]));
    masked["mask"] = json!({"image_url": data_url("image/png", &mask(1024, 1024, 512))});
    let text = [
        edit_line("inline", inline.clone()),
        edit_line("masked", masked),
        edit_line(
            "remote",
            edit(json!([{"image_url": "https://example.com/a.png"}])),
        ),
    ]
    .join("\n");
    let (status, file) = upload(&base, "edits.jsonl", text).await;
    assert_eq!(status, StatusCode::OK, "{file}");
    let batch = create_for(&base, file["id"].as_str().unwrap(), "/v1/images/edits").await;
    assert_eq!(batch["endpoint"], "/v1/images/edits");
    let (done, _) = wait_final(&base, batch["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["request_counts"],
        json!({"total": 3, "completed": 2, "failed": 1})
    );
    assert_eq!(done["model"], "gpt-image-2");

    let out = content_lines(&base, done["output_file_id"].as_str().unwrap()).await;
    let by_id = |id: &str| out.iter().find(|l| l["custom_id"] == id).unwrap().clone();
    for id in ["inline", "masked"] {
        let body = &by_id(id)["response"]["body"];
        assert_images_response(body);
        assert_eq!(body["usage"]["input_tokens_details"]["image_tokens"], 7024);
        let img = image::load_from_memory(&unb64(body["data"][0]["b64_json"].as_str().unwrap())).unwrap();
        assert_eq!((img.width(), img.height()), (1024, 1024));
    }
    // The same code as the live JSON edit: the same request gives the same image.
    let live = post_json(&base, "/images/edits", &inline).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.body);
    assert_eq!(by_id("inline")["response"]["body"]["data"], live.body["data"]);
    assert_ne!(
        by_id("masked")["response"]["body"]["data"],
        live.body["data"],
        "the mask changes the edit"
    );
    let errors = content_lines(&base, done["error_file_id"].as_str().unwrap()).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["custom_id"], "remote");
    assert_eq!(errors[0]["response"]["status_code"], 400);
    assert_error_response(&errors[0]["response"]["body"]);
    assert_eq!(
        errors[0]["response"]["body"]["error"]["param"],
        "images[0].image_url"
    );

    // A batch has one endpoint: a generation line in an edits batch fails validation.
    let mixed = [edit_line("e", inline), line("g", small("a fox"))].join("\n");
    let (_, file) = upload(&base, "mixed.jsonl", mixed).await;
    let batch = create_for(&base, file["id"].as_str().unwrap(), "/v1/images/edits").await;
    let (done, _) = wait_final(&base, batch["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["errors"]["data"][0]["code"], "mismatched_endpoint");
    assert_eq!(done["errors"]["data"][0]["line"], 2);
    emu.shutdown().await.unwrap();
}
