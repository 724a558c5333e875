//! Google's Gemini image models: their tiers as data (`[model.gemini]` in `models.toml`), the
//! choice of ratio and tier for an exact target, and the `generateContent` wire types.
//!
//! Gemini takes no `WIDTHxHEIGHT`: an `aspectRatio` from a list and an `imageSize` tier
//! (`1K`, `2K`, `4K`, and `512` on 3.1 Flash). Its 4K at 16:9 is 5504x3072, not 3840x2160.
//! [`GeminiCaps::plan`] picks the ratio nearest the target's and the smallest tier whose
//! native size covers the target, so the exact target is a local Lanczos3 cover (a downscale
//! and a crop of a few pixels), never an upscale when a tier is large enough.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The API version in Gemini's paths.
pub const API_VERSION: &str = "v1beta";

/// Most reference images one request takes (Nano Banana Pro and Nano Banana 2 both take up
/// to 14).
pub const MAX_REFERENCE_IMAGES: usize = 14;
/// Largest `generateContent` request with inline data, in bytes (Google raised the inline
/// limit from 20 MB to 100 MB in January 2026).
pub const MAX_INLINE_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// Whether `path` is Gemini's `generateContent` route (`/v1beta/models/{model}:generateContent`).
#[must_use]
pub fn is_generate_content_path(path: &str) -> bool {
    path.strip_prefix('/')
        .unwrap_or(path)
        .strip_prefix(API_VERSION)
        .and_then(|p| p.strip_prefix("/models/"))
        .is_some_and(|t| t.ends_with(":generateContent"))
}

/// `v1beta/models/{model}:generateContent`, below the Gemini API's root.
#[must_use]
pub fn generate_content_path(model: &str) -> String {
    format!("{API_VERSION}/models/{model}:generateContent")
}

/// A Gemini model's tiers, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeminiCaps {
    /// `imageSize` values, smallest first (`512`, `1K`, `2K`, `4K`).
    pub tiers: Vec<String>,
    /// Per `aspectRatio`, the native `WxH` of each tier, in the order of `tiers`.
    pub sizes: BTreeMap<String, Vec<String>>,
    /// Output tokens per image at each tier (billed at the model's `image_output` price).
    pub tokens: BTreeMap<String, u64>,
    /// Where the table comes from.
    #[serde(default)]
    pub source: Option<String>,
}

/// What to ask Gemini for to make an exact target, and what to do with the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeminiPlan {
    /// `aspectRatio`.
    pub aspect_ratio: String,
    /// `imageSize`.
    pub image_size: String,
    /// The native size the table says the answer has.
    pub native: (u32, u32),
    /// The exact target.
    pub target: (u32, u32),
    /// The window of the native image the target is made from (x, y, width, height), centred:
    /// the cover crop.
    pub crop: (u32, u32, u32, u32),
    /// Target pixels per native pixel (below 1 is a downscale).
    pub scale: f64,
    /// True when no tier covers the target, so the largest one is enlarged.
    pub upscaled: bool,
    /// Output tokens of one image at this tier, from the table.
    pub tokens: Option<u64>,
}

fn parse_ratio(r: &str) -> Option<f64> {
    let (a, b) = r.split_once(':')?;
    let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a > 0.0 && b > 0.0).then_some(a / b)
}

fn parse_dims(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once('x')?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

impl GeminiCaps {
    /// The native size of `tier` at `ratio`.
    #[must_use]
    pub fn native(&self, ratio: &str, tier: &str) -> Option<(u32, u32)> {
        let i = self.tiers.iter().position(|t| t == tier)?;
        self.sizes.get(ratio)?.get(i).and_then(|s| parse_dims(s))
    }

    /// The ratio nearest `width`:`height` (by the logarithm of the ratios, so 2:1 is as far
    /// from 1:1 as 1:2), then the smallest tier whose native size covers the target.
    #[must_use]
    pub fn plan(&self, width: u32, height: u32) -> Option<GeminiPlan> {
        let want = f64::from(width) / f64::from(height.max(1));
        let (ratio, _) = self
            .sizes
            .keys()
            .filter_map(|r| parse_ratio(r).map(|v| (r, (v.ln() - want.ln()).abs())))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        let covering = self.tiers.iter().find_map(|t| {
            let (nw, nh) = self.native(ratio, t)?;
            (nw >= width && nh >= height).then_some((t, (nw, nh)))
        });
        let (tier, native, upscaled) = match covering {
            Some((t, n)) => (t, n, false),
            None => {
                let t = self.tiers.last()?;
                (t, self.native(ratio, t)?, true)
            }
        };
        let (nw, nh) = (f64::from(native.0), f64::from(native.1));
        let scale = (f64::from(width) / nw).max(f64::from(height) / nh);
        let (cw, ch) = (
            (f64::from(width) / scale).min(nw),
            (f64::from(height) / scale).min(nh),
        );
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let crop = (
            ((nw - cw) / 2.0).round() as u32,
            ((nh - ch) / 2.0).round() as u32,
            cw.round() as u32,
            ch.round() as u32,
        );
        Some(GeminiPlan {
            aspect_ratio: ratio.clone(),
            image_size: tier.clone(),
            native,
            target: (width, height),
            crop,
            scale,
            upscaled,
            tokens: self.tokens.get(tier).copied(),
        })
    }
}

/// A part of a message: text or an inline image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// An image, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob>,
    /// A thought (an interim image or text of the model's thinking), not the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// The thought signature to send back in a multi-turn edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

/// Inline bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// `image/png`, `image/jpeg`, ... (google-genai sends `mime_type`; both are read).
    #[serde(alias = "mime_type")]
    pub mime_type: String,
    /// Standard base64.
    pub data: String,
}

impl Blob {
    /// An input image, inline.
    #[must_use]
    pub fn of(image: &crate::InputImage) -> Self {
        use base64::Engine as _;
        Self {
            mime_type: image.mime().to_owned(),
            data: base64::engine::general_purpose::STANDARD.encode(&image.data),
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// `user` or `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Its parts.
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// `generationConfig.imageConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    /// `16:9`, `1:1`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<String>,
    /// `1K`, `2K`, `4K` (`512` on 3.1 Flash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<String>,
}

/// `generationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    /// `["IMAGE"]` (or `["TEXT", "IMAGE"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modalities: Vec<String>,
    /// The image's ratio and tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_config: Option<ImageConfig>,
}

/// The body of `POST /v1beta/models/{model}:generateContent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    /// The conversation: one user message here.
    pub contents: Vec<Content>,
    /// Modalities and image options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

impl GenerateContentRequest {
    /// One image from `prompt` (and `images`, base64 with their MIME types, for an edit) at
    /// `plan`'s ratio and tier.
    #[must_use]
    pub fn image(prompt: &str, images: Vec<Blob>, plan: &GeminiPlan) -> Self {
        let mut parts = vec![Part {
            text: Some(prompt.to_owned()),
            ..Part::default()
        }];
        parts.extend(images.into_iter().map(|b| Part {
            inline_data: Some(b),
            ..Part::default()
        }));
        Self {
            contents: vec![Content {
                role: Some("user".into()),
                parts,
            }],
            generation_config: Some(GenerationConfig {
                response_modalities: vec!["IMAGE".into()],
                image_config: Some(ImageConfig {
                    aspect_ratio: Some(plan.aspect_ratio.clone()),
                    image_size: Some(plan.image_size.clone()),
                }),
            }),
        }
    }

    /// The prompt: the text parts of the last message.
    #[must_use]
    pub fn prompt(&self) -> String {
        self.contents
            .last()
            .map(|c| {
                c.parts
                    .iter()
                    .filter_map(|p| p.text.as_deref())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    /// The request with every inline image replaced by its length, for records.
    #[must_use]
    pub fn summarised(&self) -> Self {
        let mut r = self.clone();
        for c in &mut r.contents {
            for p in &mut c.parts {
                if let Some(b) = &mut p.inline_data {
                    b.data = format!("[{} base64 chars]", b.data.len());
                }
            }
        }
        r
    }
}

/// A modality's token count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModalityTokens {
    /// `TEXT`, `IMAGE`.
    pub modality: String,
    /// Tokens.
    #[serde(default)]
    pub token_count: u64,
}

/// `usageMetadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Input tokens.
    #[serde(default)]
    pub prompt_token_count: u64,
    /// Output tokens (the image's).
    #[serde(default)]
    pub candidates_token_count: u64,
    /// Thinking tokens (billed at the text-output rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thoughts_token_count: Option<u64>,
    /// All of them.
    #[serde(default)]
    pub total_token_count: u64,
    /// Output tokens by modality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates_tokens_details: Vec<ModalityTokens>,
    /// Input tokens by modality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_tokens_details: Vec<ModalityTokens>,
}

/// One candidate answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The answer.
    #[serde(default)]
    pub content: Option<Content>,
    /// `STOP`, or why it stopped without an image (`IMAGE_SAFETY`, `NO_IMAGE`, ...).
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Its index.
    #[serde(default)]
    pub index: Option<u32>,
}

/// `promptFeedback`: a blocked prompt comes back as 200 with a reason and no candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    /// `PROHIBITED_CONTENT`, `SAFETY`, ...
    #[serde(default)]
    pub block_reason: Option<String>,
    /// Its explanation, when given.
    #[serde(default)]
    pub block_reason_message: Option<String>,
}

/// The answer of `generateContent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    /// The candidates (one).
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// Set when the prompt was blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<PromptFeedback>,
    /// Tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The answer's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
}

impl GenerateContentResponse {
    /// The answer's image: the last inline image that is not a thought.
    #[must_use]
    pub fn image(&self) -> Option<&Blob> {
        self.candidates
            .iter()
            .filter_map(|c| c.content.as_ref())
            .flat_map(|c| c.parts.iter())
            .filter(|p| p.thought != Some(true))
            .filter_map(|p| p.inline_data.as_ref())
            .rfind(|b| b.mime_type.starts_with("image/"))
    }

    /// Why no image came: the blocked prompt's reason, the finish reason, or the text the
    /// model answered instead.
    #[must_use]
    pub fn why_no_image(&self) -> String {
        if let Some(reason) = self
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref())
        {
            return format!("the prompt was blocked ({reason})");
        }
        let finish = self.candidates.first().and_then(|c| c.finish_reason.as_deref());
        let text: Vec<&str> = self
            .candidates
            .iter()
            .filter_map(|c| c.content.as_ref())
            .flat_map(|c| c.parts.iter())
            .filter(|p| p.thought != Some(true))
            .filter_map(|p| p.text.as_deref())
            .collect();
        match (finish, text.is_empty()) {
            (Some(f), true) => format!("no image came back (finishReason {f})"),
            (f, false) => format!(
                "no image came back (finishReason {}); the model answered: {}",
                f.unwrap_or("none"),
                text.join(" ")
            ),
            (None, true) => "no image came back (no candidates)".to_owned(),
        }
    }
}

/// Gemini's error body: `{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeminiErrorEnvelope {
    /// The error.
    pub error: GeminiError,
}

/// The inner error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeminiError {
    /// The HTTP status, as a number.
    pub code: u16,
    /// What went wrong.
    pub message: String,
    /// The canonical status: `INVALID_ARGUMENT`, `PERMISSION_DENIED`, `NOT_FOUND`,
    /// `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNAVAILABLE`.
    #[serde(default)]
    pub status: String,
    /// `google.rpc` details (`ErrorInfo{reason: "API_KEY_INVALID"}`, `RetryInfo`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

impl GeminiErrorEnvelope {
    /// An error body.
    #[must_use]
    pub fn new(code: u16, status: &str, message: impl Into<String>) -> Self {
        Self {
            error: GeminiError {
                code,
                message: message.into(),
                status: status.to_owned(),
                details: Vec::new(),
            },
        }
    }

    /// As OpenAI's error (status in `type`, the `ErrorInfo` reason or the status in `code`),
    /// so one error type and one set of exit codes serve every provider.
    #[must_use]
    pub fn to_api_error(&self) -> crate::ApiError {
        let reason = self
            .error
            .details
            .iter()
            .find_map(|d| d.get("reason").and_then(serde_json::Value::as_str))
            .map(str::to_owned);
        crate::ApiError {
            message: self.error.message.clone(),
            kind: self.error.status.clone(),
            param: None,
            code: reason.or_else(|| Some(self.error.status.clone())),
            inner_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Capabilities;

    fn pro() -> GeminiCaps {
        Capabilities::builtin()
            .model("gemini-3-pro-image")
            .unwrap()
            .gemini
            .clone()
            .unwrap()
    }

    #[test]
    fn four_k_uhd_is_the_4k_tier_at_16_9_cropped_by_a_few_pixels() {
        let p = pro().plan(3840, 2160).unwrap();
        assert_eq!((p.aspect_ratio.as_str(), p.image_size.as_str()), ("16:9", "4K"));
        assert_eq!(p.native, (5504, 3072));
        assert!(!p.upscaled);
        // 5504x3072 is 1.7917:1, 3840x2160 is 1.7778:1: the cover keeps the full height.
        assert_eq!(p.crop, (21, 0, 5461, 3072));
        assert_eq!(p.tokens, Some(2000));
    }

    #[test]
    fn the_smallest_covering_tier_is_chosen() {
        let p = pro().plan(1920, 1080).unwrap();
        assert_eq!((p.aspect_ratio.as_str(), p.image_size.as_str()), ("16:9", "2K"));
        let p = pro().plan(1024, 1024).unwrap();
        assert_eq!((p.aspect_ratio.as_str(), p.image_size.as_str()), ("1:1", "1K"));
        let p = pro().plan(2160, 3840).unwrap();
        assert_eq!((p.aspect_ratio.as_str(), p.image_size.as_str()), ("9:16", "4K"));
        let p = pro().plan(8000, 8000).unwrap();
        assert!(
            p.upscaled,
            "nothing covers 8000x8000: the largest tier is enlarged"
        );
    }

    #[test]
    fn a_response_s_image_is_the_last_non_thought_inline_part() {
        let r: GenerateContentResponse = serde_json::from_value(serde_json::json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"inlineData": {"mimeType": "image/png", "data": "dGhvdWdodA=="}, "thought": true},
                {"text": "here"},
                {"inlineData": {"mime_type": "image/png", "data": "aW1hZ2U="}}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 2000, "totalTokenCount": 2012}
        }))
        .unwrap();
        assert_eq!(r.image().unwrap().data, "aW1hZ2U=");
        let blocked: GenerateContentResponse = serde_json::from_value(
            serde_json::json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
        )
        .unwrap();
        assert!(blocked.image().is_none());
        assert_eq!(
            blocked.why_no_image(),
            "the prompt was blocked (PROHIBITED_CONTENT)"
        );
    }
}
