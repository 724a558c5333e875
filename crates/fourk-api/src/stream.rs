//! Events of the Image API's streams (`stream: true` on generations and edits).
//!
//! Each server-sent event's `data` is one JSON object whose `type` names it; the SSE `event:`
//! line carries the same name. Settings echoed back are open strings, as on
//! [`crate::ImagesResponse`], and event types this release does not know become
//! [`ImageStreamEvent::Unknown`] instead of an error.

use serde::{Deserialize, Serialize};

use crate::response::{ImageSettings, Usage};

/// One event of an Image API stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ImageStreamEvent {
    /// A partial image of a generation.
    #[serde(rename = "image_generation.partial_image")]
    GenerationPartial(PartialImage),
    /// The final image of a generation.
    #[serde(rename = "image_generation.completed")]
    GenerationCompleted(CompletedImage),
    /// A partial image of an edit.
    #[serde(rename = "image_edit.partial_image")]
    EditPartial(PartialImage),
    /// The final image of an edit.
    #[serde(rename = "image_edit.completed")]
    EditCompleted(CompletedImage),
    /// An event type this release does not know.
    #[serde(other)]
    Unknown,
}

impl ImageStreamEvent {
    /// The event's `type` string (`"unknown"` for [`Self::Unknown`]).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::GenerationPartial(_) => "image_generation.partial_image",
            Self::GenerationCompleted(_) => "image_generation.completed",
            Self::EditPartial(_) => "image_edit.partial_image",
            Self::EditCompleted(_) => "image_edit.completed",
            Self::Unknown => "unknown",
        }
    }

    /// The partial image, for either route.
    #[must_use]
    pub fn partial(&self) -> Option<&PartialImage> {
        match self {
            Self::GenerationPartial(p) | Self::EditPartial(p) => Some(p),
            _ => None,
        }
    }

    /// The final image, for either route.
    #[must_use]
    pub fn completed(&self) -> Option<&CompletedImage> {
        match self {
            Self::GenerationCompleted(c) | Self::EditCompleted(c) => Some(c),
            _ => None,
        }
    }

    /// True for the final image. With `n > 1` a stream carries one per image, so this is
    /// not the end of the stream; the stream ends when the server closes it.
    #[must_use]
    pub fn is_completed(&self) -> bool {
        self.completed().is_some()
    }
}

/// `image_generation.partial_image` / `image_edit.partial_image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialImage {
    /// The partial image, base64.
    pub b64_json: String,
    /// 0-based index of this partial image.
    #[serde(default)]
    pub partial_image_index: u32,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// What the answer says was used: background, format, quality, size.
    #[serde(flatten)]
    pub settings: ImageSettings,
}

/// `image_generation.completed` / `image_edit.completed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedImage {
    /// The final image, base64.
    pub b64_json: String,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// What the answer says was used: background, format, quality, size.
    #[serde(flatten)]
    pub settings: ImageSettings,
    /// Tokens billed for this image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_event_and_ignores_unknown_fields() {
        let p: ImageStreamEvent = serde_json::from_str(
            r#"{"type":"image_generation.partial_image","b64_json":"QUJD","partial_image_index":1,"background":"opaque","created_at":5,"output_format":"png","quality":"xhigh","size":"3840x2160","future":1}"#,
        )
        .unwrap();
        let part = p.partial().unwrap();
        assert_eq!(
            (part.partial_image_index, part.settings.quality.as_deref()),
            (1, Some("xhigh"))
        );

        let c: ImageStreamEvent = serde_json::from_str(
            r#"{"type":"image_edit.completed","b64_json":"QUJD","size":"1536x864","usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3},"safety_identifier":"x"}"#,
        )
        .unwrap();
        assert!(matches!(&c, ImageStreamEvent::EditCompleted(i) if i.usage.unwrap().total_tokens == 3));
        assert!(c.is_completed());

        let u: ImageStreamEvent =
            serde_json::from_str(r#"{"type":"image_generation.progress","percent":40}"#).unwrap();
        assert_eq!(u, ImageStreamEvent::Unknown);
    }

    #[test]
    fn serializes_with_the_type_tag_and_without_none_fields() {
        let e = ImageStreamEvent::GenerationCompleted(CompletedImage {
            b64_json: "QQ==".into(),
            created_at: Some(1),
            settings: ImageSettings {
                output_format: Some("png".into()),
                ..ImageSettings::default()
            },
            usage: None,
        });
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"image_generation.completed","b64_json":"QQ==","created_at":1,"output_format":"png"}"#
        );
    }
}
