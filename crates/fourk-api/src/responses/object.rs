//! The response object of the Responses API and its `image_generation_call` items.
//!
//! Only what fourk reads is typed. Other output items (messages, reasoning, other tools) are
//! kept as raw JSON in [`OutputItem::Other`], and the response's other fields (the request
//! echoed back: `instructions`, `tools`, `temperature`, ...) in [`ResponseObject::rest`], so
//! they survive a parse and a re-serialization. The emulator serialises these same types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::response::{ImageSettings, Usage};

/// A response (`"object": "response"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    /// `resp_...`.
    pub id: String,
    /// `completed`, `failed`, `in_progress`, `cancelled`, `queued`, `incomplete`, ...
    #[serde(default)]
    pub status: String,
    /// The mainline model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Unix seconds (a JSON number, kept as sent: integer or fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<serde_json::Number>,
    /// The items produced, image calls among them.
    #[serde(default)]
    pub output: Vec<OutputItem>,
    /// Why the response failed (`null` unless it did: always written).
    #[serde(default)]
    pub error: Option<ResponseError>,
    /// Why the response is incomplete (`null` unless it is: always written).
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    /// Tokens billed to tools; the image tokens are here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_usage: Option<ToolUsage>,
    /// Tokens of the mainline model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResponseUsage>,
    /// The response this one continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// Every other field, as sent (`object`, the echoed request settings, `completed_at`).
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

impl ResponseObject {
    /// The image calls in `output`, in order.
    pub fn image_calls(&self) -> impl Iterator<Item = &ImageGenCall> {
        self.output.iter().filter_map(OutputItem::image_call)
    }
}

/// `error` of a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseError {
    /// Machine-readable code such as `server_error`, `rate_limit_exceeded`,
    /// `image_content_policy_violation`.
    #[serde(default)]
    pub code: Option<String>,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
}

/// `incomplete_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens`, `content_filter`, ...
    #[serde(default)]
    pub reason: Option<String>,
}

/// `tool_usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolUsage {
    /// Tokens of the image tool, as billed ("calls with missing or incomplete usage
    /// records may be skipped").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_gen: Option<Usage>,
}

/// `usage` of the mainline model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Input detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_details: Option<ResponseInputDetails>,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Output detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<ResponseOutputDetails>,
    /// Input plus output.
    #[serde(default)]
    pub total_tokens: u64,
}

/// `usage.input_tokens_details` of the mainline model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseInputDetails {
    /// Tokens read from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Tokens written to the prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
}

/// `usage.output_tokens_details` of the mainline model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseOutputDetails {
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

/// One item of `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum OutputItem {
    /// The image tool's call and its result (boxed: it is ten times the size of `Other`).
    #[serde(rename = "image_generation_call")]
    ImageGenerationCall(Box<ImageGenCall>),
    /// Any other item (`message`, `reasoning`, other tools), kept as sent.
    #[serde(untagged)]
    Other(Value),
}

impl OutputItem {
    /// The image call, if this item is one.
    #[must_use]
    pub fn image_call(&self) -> Option<&ImageGenCall> {
        match self {
            Self::ImageGenerationCall(c) => Some(c),
            Self::Other(_) => None,
        }
    }
}

/// `image_generation_call`. Older SDKs typed only `id`, `status` and `result`, so the rest
/// is optional; settings are open strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageGenCall {
    /// `ig_...`.
    pub id: String,
    /// `in_progress`, `generating`, `completed`, `failed`.
    #[serde(default)]
    pub status: String,
    /// The image, base64, once completed.
    #[serde(default)]
    pub result: Option<String>,
    /// The prompt the mainline model wrote for the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revised_prompt: Option<String>,
    /// `generate`, `edit`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// What the answer says was used: background, format, quality, size.
    #[serde(flatten)]
    pub settings: ImageSettings,
    /// Why the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CallError>,
}

/// `error` of a failed image call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    /// `moderation_blocked`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// `image_generation_user_error`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Details of a moderation failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation_details: Option<ModerationDetails>,
}

/// `moderation_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationDetails {
    /// Categories that triggered the block.
    #[serde(default)]
    pub categories: Vec<String>,
    /// `input`, `output` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation_stage: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_image_calls_keeps_other_items_and_tool_usage() {
        let body = json!({
            "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5",
            "created_at": 1_740_855_869.5,
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "QUJD",
                 "revised_prompt": "a red fox", "action": "generate", "size": "3840x2160", "quality": "high",
                 "output_format": "png", "background": "opaque", "svg_usage": {}},
                {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
            ],
            "tool_usage": {"image_gen": {"input_tokens": 10, "output_tokens": 13342, "total_tokens": 13352,
                           "input_tokens_details": {"image_tokens": 0, "text_tokens": 10}, "cached_tokens": 0}},
            "usage": {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                      "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 12},
            "previous_response_id": null,
            "future_field": true
        });
        let r: ResponseObject = serde_json::from_value(body).unwrap();
        assert_eq!(r.output.len(), 3);
        let calls: Vec<_> = r.image_calls().collect();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].result.as_deref(), Some("QUJD"));
        assert_eq!(calls[0].settings.size.as_deref(), Some("3840x2160"));
        assert_eq!(r.tool_usage.unwrap().image_gen.unwrap().output_tokens, 13342);
        assert_eq!(
            r.usage.unwrap().output_tokens_details.unwrap().reasoning_tokens,
            3
        );
        assert!(matches!(&r.output[2], OutputItem::Other(v) if v["type"] == "message"));
        // Other items re-serialize as they came; the image call gets its tag back.
        let again = serde_json::to_value(&r).unwrap();
        assert_eq!(
            again["output"][0],
            json!({"type": "reasoning", "id": "rs_1", "summary": []})
        );
        assert_eq!(again["output"][1]["type"], "image_generation_call");
    }

    #[test]
    fn reads_a_failed_call_with_moderation_details() {
        let item: OutputItem = serde_json::from_value(json!({
            "type": "image_generation_call", "id": "ig_2", "status": "failed", "result": null,
            "error": {"code": "moderation_blocked", "message": "Your request was rejected by the safety system.",
                      "type": "image_generation_user_error",
                      "moderation_details": {"categories": ["violence"], "moderation_stage": "output"}}
        }))
        .unwrap();
        let call = item.image_call().unwrap();
        let err = call.error.as_ref().unwrap();
        assert_eq!(err.code.as_deref(), Some("moderation_blocked"));
        assert_eq!(err.kind.as_deref(), Some("image_generation_user_error"));
        assert_eq!(
            err.moderation_details
                .as_ref()
                .unwrap()
                .moderation_stage
                .as_deref(),
            Some("output")
        );
    }
}
