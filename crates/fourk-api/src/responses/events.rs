//! Events of a streamed response (`"stream": true` on `POST /v1/responses`).
//!
//! The image arrives twice: as `partial_image_b64` in partial-image events, and as the final
//! item's `result` in `response.output_item.done` (and again in `response.completed`).
//! `response.image_generation_call.completed` carries no image bytes.

use serde::{Deserialize, Serialize};

use super::object::{OutputItem, ResponseObject};
use crate::response::ImageSettings;

/// One event of a streamed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ResponseStreamEvent {
    /// The response was created.
    #[serde(rename = "response.created")]
    Created(ResponseEvent),
    /// The response is being produced.
    #[serde(rename = "response.in_progress")]
    InProgress(ResponseEvent),
    /// An output item (an image call, a message...) started.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded(OutputItemEvent),
    /// The image call started.
    #[serde(rename = "response.image_generation_call.in_progress")]
    ImageGenInProgress(ImageGenCallEvent),
    /// The image is being drawn.
    #[serde(rename = "response.image_generation_call.generating")]
    ImageGenGenerating(ImageGenCallEvent),
    /// A partial image.
    #[serde(rename = "response.image_generation_call.partial_image")]
    ImageGenPartialImage(ImageGenPartialImage),
    /// The image call finished; the image is in the next `response.output_item.done`.
    #[serde(rename = "response.image_generation_call.completed")]
    ImageGenCompleted(ImageGenCallEvent),
    /// An output item finished; for an image call, `result` holds the image.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone(OutputItemEvent),
    /// The response finished.
    #[serde(rename = "response.completed")]
    Completed(ResponseEvent),
    /// The response failed; `response.error` says why.
    #[serde(rename = "response.failed")]
    Failed(ResponseEvent),
    /// The response stopped early; `response.incomplete_details` says why.
    #[serde(rename = "response.incomplete")]
    Incomplete(ResponseEvent),
    /// An error.
    #[serde(rename = "error")]
    Error(ErrorEvent),
    /// An event type fourk does not read (text deltas, other tools, newer events).
    #[serde(other)]
    Unknown,
}

impl ResponseStreamEvent {
    /// True for the events after which nothing more comes: completed, failed, incomplete
    /// and error.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed(_) | Self::Failed(_) | Self::Incomplete(_) | Self::Error(_)
        )
    }

    /// The event's `sequence_number`, when it has one.
    #[must_use]
    pub fn sequence_number(&self) -> Option<u64> {
        match self {
            Self::Created(e)
            | Self::InProgress(e)
            | Self::Completed(e)
            | Self::Failed(e)
            | Self::Incomplete(e) => e.sequence_number,
            Self::OutputItemAdded(e) | Self::OutputItemDone(e) => e.sequence_number,
            Self::ImageGenInProgress(e) | Self::ImageGenGenerating(e) | Self::ImageGenCompleted(e) => {
                e.sequence_number
            }
            Self::ImageGenPartialImage(e) => e.sequence_number,
            Self::Error(e) => e.sequence_number,
            Self::Unknown => None,
        }
    }
}

/// Events that carry the whole response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEvent {
    /// The response as it stands.
    pub response: ResponseObject,
    /// Position in the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
}

/// `response.output_item.added` / `.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputItemEvent {
    /// Index in `output`.
    #[serde(default)]
    pub output_index: u32,
    /// The item.
    pub item: OutputItem,
    /// Position in the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
}

/// `response.image_generation_call.{in_progress,generating,completed}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageGenCallEvent {
    /// The image call's id.
    pub item_id: String,
    /// Index in `output`.
    #[serde(default)]
    pub output_index: u32,
    /// Position in the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
}

/// `response.image_generation_call.partial_image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageGenPartialImage {
    /// The image call's id.
    pub item_id: String,
    /// Index in `output`.
    #[serde(default)]
    pub output_index: u32,
    /// Position in the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
    /// The partial image, base64.
    pub partial_image_b64: String,
    /// 0-based index of this partial image.
    #[serde(default)]
    pub partial_image_index: u32,
    /// What the answer says was used: background, format, quality, size.
    #[serde(flatten)]
    pub settings: ImageSettings,
}

/// `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// Machine-readable code.
    #[serde(default)]
    pub code: Option<String>,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// The field at fault.
    #[serde(default)]
    pub param: Option<String>,
    /// Position in the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> ResponseStreamEvent {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reads_every_image_event() {
        let resp = json!({"id": "resp_1", "status": "in_progress", "output": []});
        let cases = [
            (
                json!({"type": "response.created", "response": resp, "sequence_number": 0}),
                "Created",
            ),
            (
                json!({"type": "response.in_progress", "response": resp, "sequence_number": 1}),
                "InProgress",
            ),
            (
                json!({"type": "response.output_item.added", "output_index": 0, "sequence_number": 2,
                       "item": {"type": "image_generation_call", "id": "ig_1", "status": "in_progress", "result": null}}),
                "OutputItemAdded",
            ),
            (
                json!({"type": "response.image_generation_call.in_progress", "item_id": "ig_1", "output_index": 0, "sequence_number": 3}),
                "ImageGenInProgress",
            ),
            (
                json!({"type": "response.image_generation_call.generating", "item_id": "ig_1", "output_index": 0, "sequence_number": 4}),
                "ImageGenGenerating",
            ),
            (
                json!({"type": "response.image_generation_call.partial_image", "item_id": "ig_1", "output_index": 0,
                       "sequence_number": 5, "partial_image_b64": "QUJD", "partial_image_index": 0, "size": "3840x2160"}),
                "ImageGenPartialImage",
            ),
            (
                json!({"type": "response.image_generation_call.completed", "item_id": "ig_1", "output_index": 0, "sequence_number": 6}),
                "ImageGenCompleted",
            ),
            (
                json!({"type": "response.output_item.done", "output_index": 0, "sequence_number": 7,
                       "item": {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "QUJD"}}),
                "OutputItemDone",
            ),
            (
                json!({"type": "response.completed", "response": resp, "sequence_number": 8}),
                "Completed",
            ),
            (
                json!({"type": "response.failed", "response": resp, "sequence_number": 8}),
                "Failed",
            ),
            (
                json!({"type": "response.incomplete", "response": resp, "sequence_number": 8}),
                "Incomplete",
            ),
            (
                json!({"type": "error", "code": "server_error", "message": "boom", "param": null, "sequence_number": 9}),
                "Error",
            ),
            (
                json!({"type": "response.output_text.delta", "delta": "hi", "sequence_number": 10}),
                "Unknown",
            ),
        ];
        for (body, want) in cases {
            let e = parse(body.clone());
            let got = format!("{e:?}");
            assert!(got.starts_with(want), "{body} parsed as {got}");
        }
        assert!(parse(json!({"type": "error", "message": "x"})).is_terminal());
        let done = parse(
            json!({"type": "response.output_item.done", "output_index": 0, "sequence_number": 7,
            "item": {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "QUJD"}}),
        );
        let ResponseStreamEvent::OutputItemDone(d) = &done else {
            unreachable!()
        };
        assert_eq!(d.item.image_call().unwrap().result.as_deref(), Some("QUJD"));
        assert_eq!(done.sequence_number(), Some(7));
    }

    #[test]
    fn serializes_with_the_type_tag() {
        let e = ResponseStreamEvent::ImageGenGenerating(ImageGenCallEvent {
            item_id: "ig_1".into(),
            output_index: 0,
            sequence_number: Some(3),
        });
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"type": "response.image_generation_call.generating", "item_id": "ig_1", "output_index": 0, "sequence_number": 3})
        );
    }
}
