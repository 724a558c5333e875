//! Response bodies: `ImagesResponse` and its `usage`.
//!
//! Settings echoed back (`size`, `quality`, `output_format`, `background`) are open strings:
//! older SDKs typed them as closed enums and broke when gpt-image-2 answered `"1536x864"`.
//! Unknown fields are ignored.

use std::borrow::Cow;

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

/// The image settings an answer echoes (the Image API's whole answer and its stream events,
/// the Responses API's image call and its partial images): one type, flattened into each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSettings {
    /// Background (`transparent` or `opaque`; a stream event may say `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    /// Output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// Quality (never `auto` on a whole answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Size, `WxH` (a stream event may say `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// The body of a successful `POST /v1/images/generations` or `/edits`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagesResponse {
    /// Unix seconds.
    pub created: i64,
    /// The images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<ImageData>>,
    /// What the answer says was used: background, format, quality, size.
    #[serde(flatten)]
    pub settings: ImageSettings,
    /// Tokens billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// A borrowed view of an [`ImagesResponse`] body: the base64 strings point into the response
/// bytes instead of being copied, which matters when one 4K image is 15+ MB of base64.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImagesResponseRef<'a> {
    /// Unix seconds.
    pub created: i64,
    /// The images.
    #[serde(default, borrow)]
    pub data: Vec<ImageDataRef<'a>>,
    /// What the answer says was used: background, format, quality, size.
    #[serde(flatten)]
    pub settings: ImageSettings,
    /// Tokens billed.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// A borrowed entry of `data`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageDataRef<'a> {
    /// The image, base64; borrowed unless the JSON escaped a character.
    #[serde(default, borrow, deserialize_with = "cow_str::option")]
    pub b64_json: Option<Cow<'a, str>>,
    /// Legacy field; never set for GPT Image models.
    #[serde(default, borrow)]
    pub url: Option<Cow<'a, str>>,
}

/// `Option<Cow<str>>` that really borrows: serde's derive only borrows a bare `Cow<str>`.
mod cow_str {
    use std::borrow::Cow;
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    struct CowVisitor;

    impl<'de> Visitor<'de> for CowVisitor {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }

    pub(super) fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
        d.deserialize_option(CowVisitor)
    }
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
        assert_eq!(r.settings.size.as_deref(), Some("1536x864"));
        assert_eq!(r.usage.unwrap().total_tokens, 12);
    }

    #[test]
    fn borrowed_view_does_not_copy_base64() {
        let body = r#"{"created":1,"data":[{"b64_json":"QUJD"}],"size":"3840x2160"}"#;
        let r: ImagesResponseRef<'_> = serde_json::from_str(body).unwrap();
        assert!(matches!(r.data[0].b64_json, Some(Cow::Borrowed("QUJD"))));
    }
}
