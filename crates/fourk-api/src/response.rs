//! Response bodies: `ImagesResponse` and its `usage`.
//!
//! Settings echoed back (`size`, `quality`, `output_format`, `background`) are open strings:
//! older SDKs typed them as closed enums and broke when gpt-image-2 answered `"1536x864"`.
//! Unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Tokens of text in the prompt.
    #[serde(default)]
    pub text_tokens: u64,
    /// Tokens of input images (edits).
    #[serde(default)]
    pub image_tokens: u64,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Image tokens produced.
    #[serde(default)]
    pub image_tokens: u64,
    /// Text tokens produced.
    #[serde(default)]
    pub text_tokens: u64,
}

/// Token usage of one request, as billed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// All input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Input split by kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_details: Option<InputTokensDetails>,
    /// All output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input plus output.
    #[serde(default)]
    pub total_tokens: u64,
    /// Output split by kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
}

impl Usage {
    /// Usage with every detail filled in consistently.
    #[must_use]
    pub fn new(text_in: u64, image_in: u64, image_out: u64) -> Self {
        Self {
            input_tokens: text_in + image_in,
            input_tokens_details: Some(InputTokensDetails {
                text_tokens: text_in,
                image_tokens: image_in,
            }),
            output_tokens: image_out,
            total_tokens: text_in + image_in + image_out,
            output_tokens_details: Some(OutputTokensDetails {
                image_tokens: image_out,
                text_tokens: 0,
            }),
        }
    }
}

/// One entry of `data`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageData {
    /// The image, base64. GPT Image models always fill this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b64_json: Option<String>,
    /// Legacy DALL-E URL; never set for GPT Image models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Legacy DALL-E 3 field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revised_prompt: Option<String>,
}

/// The body of a successful `POST /v1/images/generations` or `/edits`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagesResponse {
    /// Unix seconds.
    pub created: i64,
    /// The images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<ImageData>>,
    /// Resolved background (`transparent` or `opaque`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    /// Resolved format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// Resolved quality (never `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Resolved size, `WxH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Tokens billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_open_strings_and_ignores_unknown_fields() {
        let r: ImagesResponse = serde_json::from_str(
            r#"{"created":1,"data":[{"b64_json":"AA=="}],"size":"1536x864","quality":"xhigh","svg_usage":{},"usage":{"input_tokens":5,"output_tokens":7,"total_tokens":12}}"#,
        )
        .unwrap();
        assert_eq!(r.size.as_deref(), Some("1536x864"));
        assert_eq!(r.usage.unwrap().total_tokens, 12);
    }
}
