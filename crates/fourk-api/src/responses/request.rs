//! The body of `POST /v1/responses` with the `image_generation` tool, and its checks.

use serde::{Deserialize, Serialize};

use crate::caps::Capabilities;
use crate::check::Warning;
use crate::check::{Rule, Violation};
use crate::edit::InputImage;
use crate::options::{self, ImageOptions, Prefix};
use crate::size::Size;
use crate::types::{
    Background, ImageDetail, InputFidelity, Moderation, OutputFormat, Quality, Role, ToolAction,
};

/// `POST /v1/responses`, with the fields fourk sends. `None` fields and an empty `tools`
/// list are absent from the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    /// The mainline model that decides to call the tool (not the image model, which is
    /// the tool's `model`).
    pub model: String,
    /// The conversation so far: messages with text and images, or references to earlier
    /// items.
    pub input: Vec<InputItem>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Which tool to use; [`ToolChoice::image_generation`] forces an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Continue from an earlier response (multi-turn editing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// Server-sent events instead of one JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

/// One item of `input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum InputItem {
    /// A message with text and image parts.
    #[serde(rename = "message")]
    Message(InputMessage),
    /// An item of an earlier response, by id (for example an `ig_...` image call).
    #[serde(rename = "item_reference")]
    ItemReference {
        /// The item's id.
        id: String,
    },
}

/// A message in `input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputMessage {
    /// Who speaks.
    pub role: Role,
    /// Text and images.
    pub content: Vec<ContentPart>,
}

/// One part of a message's `content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ContentPart {
    /// Text.
    #[serde(rename = "input_text")]
    InputText {
        /// The text.
        text: String,
    },
    /// An image, as a URL (usually a `data:` URL) or an uploaded file id.
    #[serde(rename = "input_image")]
    InputImage(InputImagePart),
}

/// `input_image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputImagePart {
    /// A URL or a base64 `data:` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// An uploaded file's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// How finely the mainline model looks at the image; required by the newest SDK.
    pub detail: ImageDetail,
}

/// A tool in `tools`. Only the image tool is modelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Tool {
    /// `{"type": "image_generation", ...}`.
    #[serde(rename = "image_generation")]
    ImageGeneration(ImageGenTool),
}

/// The `image_generation` tool's options: the Image API's options, minus `n` and `prompt`
/// (the mainline model writes the prompt), plus `action` and a mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageGenTool {
    /// The image model. Always sent: the tool's default has changed with each SDK era.
    pub model: String,
    /// Output size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Quality tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// File format of the result (default png).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    /// 0-100, jpeg and webp only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_compression: Option<u8>,
    /// Background handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Background>,
    /// Moderation strictness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<Moderation>,
    /// 0-3 partial images while streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_images: Option<u8>,
    /// Generate, edit, or let the model decide (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ToolAction>,
    /// How closely edits keep the input's features; not for gpt-image-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_fidelity: Option<InputFidelity>,
    /// A mask for inpainting: transparent pixels mark the area to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_image_mask: Option<ImageMask>,
}

/// `input_image_mask`: a `data:` URL or an uploaded file id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMask {
    /// Base64 `data:` URL of a PNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// An uploaded file's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
}

/// `tool_choice`: a mode, or one hosted tool to force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `"none"`, `"auto"` or `"required"`.
    Mode(ToolChoiceMode),
    /// `{"type": "image_generation"}`.
    Hosted(HostedTool),
}

/// The string forms of `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoiceMode {
    /// Call no tool.
    None,
    /// The model decides.
    Auto,
    /// Call at least one tool.
    Required,
}

/// A hosted tool forced by `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum HostedTool {
    /// The image tool.
    #[serde(rename = "image_generation")]
    ImageGeneration,
}

impl ToolChoice {
    /// Force the image tool: `{"type": "image_generation"}`.
    #[must_use]
    pub const fn image_generation() -> Self {
        Self::Hosted(HostedTool::ImageGeneration)
    }
}

impl ContentPart {
    /// A text part.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self::InputText { text: text.into() }
    }

    /// An image part carrying the image inline as a `data:` URL.
    #[must_use]
    pub fn image(image: &InputImage, detail: ImageDetail) -> Self {
        Self::InputImage(InputImagePart {
            image_url: Some(image.data_url()),
            file_id: None,
            detail,
        })
    }
}

impl InputItem {
    /// A user message.
    #[must_use]
    pub fn user(content: Vec<ContentPart>) -> Self {
        Self::Message(InputMessage {
            role: Role::User,
            content,
        })
    }
}

impl ImageGenTool {
    /// The tool with only the image model set.
    #[must_use]
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            size: None,
            quality: None,
            output_format: None,
            output_compression: None,
            background: None,
            moderation: None,
            partial_images: None,
            action: None,
            input_fidelity: None,
            input_image_mask: None,
        }
    }

    fn options(&self, stream: bool) -> ImageOptions<'_> {
        ImageOptions {
            model: &self.model,
            prompt: None,
            size: self.size,
            quality: self.quality,
            background: self.background,
            output_format: self.output_format,
            output_compression: self.output_compression,
            n: None,
            stream,
            partial_images: self.partial_images,
            input_fidelity: self.input_fidelity,
        }
    }
}

impl ResponsesRequest {
    /// A request that forces one image from `tool`, described by `prompt`.
    #[must_use]
    pub fn image(model: impl Into<String>, tool: ImageGenTool, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            input: vec![InputItem::user(vec![ContentPart::text(prompt)])],
            tools: vec![Tool::ImageGeneration(tool)],
            tool_choice: Some(ToolChoice::image_generation()),
            previous_response_id: None,
            stream: None,
        }
    }

    /// The image tools in `tools`.
    pub fn image_tools(&self) -> impl Iterator<Item = &ImageGenTool> {
        self.tools.iter().map(|t| match t {
            Tool::ImageGeneration(g) => g,
        })
    }

    /// Check the request, and each image tool's options against its image model's
    /// capabilities with the same rules as [`crate::ImageRequest::validate`]. Violations of a
    /// tool name the field as `tools[i].field`. The mainline `model` is not in fourk's table
    /// and is only checked for presence.
    ///
    /// # Errors
    /// Every broken rule.
    pub fn validate(&self, caps: &Capabilities) -> Result<Vec<Warning>, Vec<Violation>> {
        let mut errs = Vec::new();
        let mut warnings = Vec::new();
        if self.model.trim().is_empty() {
            errs.push(Violation::new(
                Rule::MissingField,
                "model",
                "Missing required parameter: 'model' (the mainline model that calls the image tool).",
            ));
        }
        if self.input.is_empty() && self.previous_response_id.is_none() {
            errs.push(Violation::new(
                Rule::MissingField,
                "input",
                "The input is empty; describe the image to generate.",
            ));
        }
        let stream = self.stream == Some(true);
        for (i, tool) in self.image_tools().enumerate() {
            let prefix = format!("tools[{i}].");
            match options::check(caps, &tool.options(stream), Prefix(&prefix)) {
                Ok((_, w)) => warnings.extend(w),
                Err(v) => errs.extend(v),
            }
            if let Some(m) = &tool.input_image_mask
                && m.image_url.is_none()
                && m.file_id.is_none()
            {
                errs.push(Violation::new(
                    Rule::Tool,
                    format!("{prefix}input_image_mask"),
                    "input_image_mask needs an image_url or a file_id.",
                ));
            }
        }
        if self.tool_choice == Some(ToolChoice::image_generation()) && self.image_tools().next().is_none() {
            errs.push(Violation::new(
                Rule::Tool,
                "tool_choice",
                "tool_choice forces image_generation, but tools has no image_generation tool.",
            ));
        }
        if errs.is_empty() { Ok(warnings) } else { Err(errs) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool() -> ImageGenTool {
        let mut t = ImageGenTool::new("gpt-image-2");
        t.size = Some(Size::new(3840, 2160));
        t.quality = Some(Quality::High);
        t.output_format = Some(OutputFormat::Png);
        t.partial_images = Some(2);
        t
    }

    #[test]
    fn the_documented_skeleton_serializes_exactly() {
        let mut r = ResponsesRequest::image("gpt-5", tool(), "a lighthouse");
        r.stream = Some(true);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "model": "gpt-5",
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a lighthouse"}]}],
                "tools": [{"type": "image_generation", "model": "gpt-image-2", "size": "3840x2160", "quality": "high", "output_format": "png", "partial_images": 2}],
                "tool_choice": {"type": "image_generation"},
                "stream": true
            })
        );
        let back: ResponsesRequest = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn none_fields_and_empty_tools_are_absent() {
        let r = ResponsesRequest {
            model: "gpt-5".into(),
            input: vec![InputItem::ItemReference { id: "ig_1".into() }],
            tools: vec![],
            tool_choice: None,
            previous_response_id: None,
            stream: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"model":"gpt-5","input":[{"type":"item_reference","id":"ig_1"}]}"#
        );
        assert_eq!(
            serde_json::to_string(&ImageGenTool::new("gpt-image-2")).unwrap(),
            r#"{"model":"gpt-image-2"}"#
        );
        assert_eq!(
            serde_json::to_string(&ToolChoice::Mode(ToolChoiceMode::Required)).unwrap(),
            r#""required""#
        );
    }

    #[test]
    fn image_parts_are_data_urls_with_detail() {
        let img = InputImage::new("a.webp", OutputFormat::Webp, b"RIFF".to_vec());
        assert_eq!(
            serde_json::to_value(ContentPart::image(&img, ImageDetail::High)).unwrap(),
            json!({"type": "input_image", "image_url": "data:image/webp;base64,UklGRg==", "detail": "high"})
        );
    }

    #[test]
    fn tool_options_are_checked_with_the_image_rules() {
        let caps = Capabilities::builtin();
        let mut r = ResponsesRequest::image("gpt-5", tool(), "x");
        // partial_images without streaming, like the Image API.
        let errs = r.validate(&caps).unwrap_err();
        assert_eq!(
            errs.iter()
                .map(|e| (e.rule.id(), e.param.as_str()))
                .collect::<Vec<_>>(),
            [("partial_images", "tools[0].partial_images")]
        );
        r.stream = Some(true);
        let warnings = r.validate(&caps).unwrap();
        assert_eq!(warnings[0].id, "experimental_size");

        let mut t = ImageGenTool::new("gpt-image-2");
        t.size = Some(Size::new(1920, 1080));
        t.input_fidelity = Some(InputFidelity::High);
        t.output_compression = Some(10);
        t.input_image_mask = Some(ImageMask {
            image_url: None,
            file_id: None,
        });
        let r = ResponsesRequest::image("gpt-5", t, "x");
        let got: Vec<_> = r
            .validate(&caps)
            .unwrap_err()
            .iter()
            .map(|e| (e.rule.id(), e.param.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("multiple_of_16", "tools[0].size".to_owned()),
                ("output_compression", "tools[0].output_compression".to_owned()),
                ("unsupported_parameter", "tools[0].input_fidelity".to_owned()),
                ("tool", "tools[0].input_image_mask".to_owned()),
            ]
        );

        let mut r = ResponsesRequest::image("gpt-5", ImageGenTool::new("dall-e-3"), "x");
        assert_eq!(r.validate(&caps).unwrap_err()[0].param, "tools[0].model");
        r.tools.clear();
        assert_eq!(r.validate(&caps).unwrap_err()[0].rule, Rule::Tool);
    }
}
