//! `POST /images/edits` as multipart: the part names the official SDK uses, real MIME
//! types and file names, and the text fields in order.

use fourk_api::{EditRequest, ImageStreamEvent, InputFidelity, InputImage, OutputFormat, Quality, Size};
use futures_util::StreamExt;

use crate::server::{Act, client, event, images_body, json, serve, sse};

fn png(name: &str, fill: u8) -> InputImage {
    InputImage::new(name, OutputFormat::Png, vec![fill; 300])
}

#[tokio::test]
async fn one_image_is_part_image_and_several_are_image_brackets() {
    let server = serve(vec![
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
        Act::Reply(json("200 OK", "", &images_body("QUJD"))),
    ])
    .await;
    let c = client(&server.url);
    let mut req = EditRequest::new("gpt-image-1.5", "make it night");
    req.size = Some(Size::new(1536, 1024));
    req.quality = Some(Quality::High);
    req.input_fidelity = Some(InputFidelity::High);
    req.stream = Some(false);

    c.edit(&req, &[png("one.png", 1)], None).await.unwrap();
    let sent = server.request(0);
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/images/edits")
    );
    assert!(
        sent.header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    let parts = sent.parts();
    let names: Vec<(&str, Option<&str>)> = parts
        .iter()
        .map(|p| (p.name.as_str(), p.filename.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("model", None),
            ("prompt", None),
            ("size", None),
            ("quality", None),
            ("stream", None),
            ("input_fidelity", None),
            ("image", Some("one.png")),
        ]
    );
    assert_eq!(parts[4].data, b"false");
    assert_eq!(parts[6].content_type.as_deref(), Some("image/png"));
    assert_eq!(parts[6].data, vec![1u8; 300]);

    let jpeg = InputImage::new("two.jpg", OutputFormat::Jpeg, vec![2u8; 10]);
    let webp = InputImage::new("three.webp", OutputFormat::Webp, vec![3u8; 10]);
    let mask = png("mask.png", 0);
    c.edit(
        &EditRequest::new("gpt-image-2", "x"),
        &[png("one.png", 1), jpeg, webp],
        Some(&mask),
    )
    .await
    .unwrap();
    let files: Vec<(String, Option<String>, Option<String>, usize)> = server
        .request(1)
        .parts()
        .into_iter()
        .filter(|p| p.filename.is_some())
        .map(|p| (p.name, p.filename, p.content_type, p.data.len()))
        .collect();
    let want =
        |n: &str, f: &str, ct: &str, len: usize| (n.to_owned(), Some(f.to_owned()), Some(ct.to_owned()), len);
    assert_eq!(
        files,
        [
            want("image[]", "one.png", "image/png", 300),
            want("image[]", "two.jpg", "image/jpeg", 10),
            want("image[]", "three.webp", "image/webp", 10),
            want("mask", "mask.png", "image/png", 300),
        ]
    );
}

#[tokio::test]
async fn an_edit_stream_sends_stream_true_and_reads_edit_events() {
    let done = serde_json::json!({"type": "image_edit.completed", "b64_json": "QUJD", "size": "1024x1024",
        "usage": {"input_tokens": 300, "output_tokens": 196, "total_tokens": 496}})
    .to_string();
    let server = serve(vec![Act::Reply(sse(&event(Some("image_edit.completed"), &done)))]).await;
    let mut s = client(&server.url)
        .edit_stream(&EditRequest::new("gpt-image-2", "x"), &[png("a.png", 1)], None)
        .await
        .unwrap();
    let ev = s.next().await.unwrap().unwrap();
    assert!(matches!(ev, ImageStreamEvent::EditCompleted(_)), "{ev:?}");
    assert!(s.next().await.is_none());
    let stream_field = server
        .request(0)
        .parts()
        .into_iter()
        .find(|p| p.name == "stream")
        .unwrap();
    assert_eq!(stream_field.data, b"true");
}
