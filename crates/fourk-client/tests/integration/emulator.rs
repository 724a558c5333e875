//! End to end against fourk's emulator: every route, whole and streamed, through the same
//! client, plus a payload-log replay. The emulator's images are procedural; what is checked
//! is the wire, not the picture.

use base64::Engine as _;
use fourk_api::{
    ContentPart, EditRequest, ImageDetail, ImageGenTool, ImageRequest, ImageStreamEvent, InputImage,
    InputItem, OutputFormat, Quality, ResponseStreamEvent, ResponsesRequest, Size,
};
use fourk_client::{Client, Config, PayloadLog, replay};
use futures_util::StreamExt;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn decode(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

fn small() -> ImageRequest {
    let mut r = ImageRequest::new("gpt-image-2", "a red fox in snow");
    r.size = Some(Size::new(1024, 1024));
    r.quality = Some(Quality::Low);
    r
}

#[tokio::test]
async fn every_route_against_the_emulator() {
    let emu = fourk_emulator::spawn(
        ([127, 0, 0, 1], 0).into(),
        fourk_emulator::EmulatorConfig::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = Client::new(
        Config::default()
            .with_base_url(emu.base_url())
            .with_api_key(crate::server::KEY),
    )
    .unwrap()
    .with_payload_log(PayloadLog::new(dir.path()));

    // Generation, streamed with one partial image.
    let mut req = small();
    req.partial_images = Some(1);
    let events: Vec<ImageStreamEvent> = c
        .generate_stream(&req)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let done = events
        .iter()
        .find_map(ImageStreamEvent::completed)
        .expect("a completed event");
    assert!(events.iter().any(|e| e.partial().is_some()), "{events:?}");
    let png = decode(&done.b64_json);
    assert!(png.starts_with(PNG_SIGNATURE));
    assert!(done.usage.is_some());

    // Edit that image, whole and streamed.
    let input = InputImage::new("fox.png", OutputFormat::Png, png.clone());
    let edit = EditRequest::new("gpt-image-2", "make it night");
    let resp = c.edit(&edit, std::slice::from_ref(&input), None).await.unwrap();
    let images = resp.images().unwrap();
    assert!(decode(images.data[0].b64_json.as_deref().unwrap()).starts_with(PNG_SIGNATURE));
    let events: Vec<ImageStreamEvent> = c
        .edit_stream(&edit, std::slice::from_ref(&input), None)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert!(
        matches!(events.last(), Some(ImageStreamEvent::EditCompleted(_))),
        "{events:?}"
    );

    // The Responses API, whole and streamed, with the image as input.
    let mut tool = ImageGenTool::new("gpt-image-2");
    tool.size = Some(Size::new(1024, 1024));
    tool.quality = Some(Quality::Low);
    let mut r = ResponsesRequest::image("gpt-5", tool, "put a hat on the fox");
    if let InputItem::Message(m) = &mut r.input[0] {
        m.content.push(ContentPart::image(&input, ImageDetail::Auto));
    }
    let obj = c.responses(&r).await.unwrap().response_object().unwrap();
    assert_eq!(obj.status, "completed");
    let call = obj.image_calls().next().expect("an image call");
    assert!(decode(call.result.as_deref().unwrap()).starts_with(PNG_SIGNATURE));
    let events: Vec<ResponseStreamEvent> = c
        .responses_stream(&r)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let result = events.iter().find_map(|e| match e {
        ResponseStreamEvent::OutputItemDone(d) => d.item.image_call().and_then(|c| c.result.clone()),
        _ => None,
    });
    assert!(decode(&result.expect("output_item.done carries the image")).starts_with(PNG_SIGNATURE));
    assert!(matches!(events.last(), Some(ResponseStreamEvent::Completed(_))));

    // The logged edit replays against the emulator.
    let again = replay(dir.path().join("002-images-edits-attempt-1.request.json"), &c)
        .await
        .unwrap();
    assert_eq!(again.status, 200);
    emu.shutdown().await.unwrap();
}
