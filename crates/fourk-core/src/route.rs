//! The Responses API route: the image options become the forced `image_generation` tool, and
//! the input images of an edit travel as `data:` URLs (summarised in sidecars and dry runs).

use fourk_api::{
    Capabilities, ContentPart, ImageDetail, ImageGenTool, ImageMask, InputImage, InputItem, ResponsesRequest,
    Violation,
};

use crate::UsageError;

/// Which API produces the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The Image API: /v1/images/generations or /v1/images/edits.
    #[default]
    Images,
    /// The Responses API with the image_generation tool forced (one image per request).
    Responses,
}

/// The route and what the Responses route needs besides the image options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The API to call.
    pub route: Route,
    /// With [`Route::Responses`]: the mainline model that calls the image tool.
    pub responses_model: String,
    /// With [`Route::Responses`]: continue from this response id.
    pub previous_response: Option<String>,
}

/// The mainline model of the Responses route when none is named.
pub const DEFAULT_RESPONSES_MODEL: &str = "gpt-5";

impl Default for RouteSpec {
    fn default() -> Self {
        Self {
            route: Route::Images,
            responses_model: DEFAULT_RESPONSES_MODEL.to_owned(),
            previous_response: None,
        }
    }
}

/// The tool options shared by generations and edits.
#[derive(Debug, Clone, Copy)]
pub struct ToolOptions {
    /// `size`.
    pub size: Option<fourk_api::Size>,
    /// `quality`.
    pub quality: Option<fourk_api::Quality>,
    /// `output_format`.
    pub output_format: Option<fourk_api::OutputFormat>,
    /// `output_compression`.
    pub output_compression: Option<u8>,
    /// `background`.
    pub background: Option<fourk_api::Background>,
    /// `moderation`.
    pub moderation: Option<fourk_api::Moderation>,
    /// `partial_images`.
    pub partial_images: Option<u8>,
    /// `n`: the Responses API makes one image per call.
    pub n: Option<u8>,
    /// Whether the request is streamed (`partial_images` only applies then).
    pub stream: bool,
}

/// When `route` takes the Responses API, build and check its request: the image model's
/// options on the tool, the prompt (and input images, mask) in one user message,
/// `tool_choice` forcing the tool. `None` on the Image API.
///
/// # Errors
/// [`UsageError`] when `-n` asks for more than one image or a rule is broken.
pub fn for_route(
    route: &RouteSpec,
    caps: &Capabilities,
    model: &str,
    prompt: &str,
    opts: ToolOptions,
    images: &[InputImage],
    mask: Option<&InputImage>,
) -> anyhow::Result<Option<ResponsesRequest>> {
    if route.route == Route::Images {
        return Ok(None);
    }
    if opts.n.is_some_and(|n| n > 1) {
        return Err(UsageError(
            "the responses route makes one image per request; nothing was sent\n\nhint: drop -n, or use --route images"
                .into(),
        )
        .into());
    }
    let mut tool = ImageGenTool::new(model);
    tool.size = opts.size;
    tool.quality = opts.quality;
    tool.output_format = opts.output_format;
    tool.output_compression = opts.output_compression;
    tool.background = opts.background;
    tool.moderation = opts.moderation;
    tool.partial_images = opts.partial_images;
    if !images.is_empty() {
        tool.action = Some(fourk_api::ToolAction::Edit);
    }
    tool.input_image_mask = mask.map(|m| ImageMask {
        image_url: Some(m.data_url()),
        file_id: None,
    });
    let mut req = ResponsesRequest::image(&route.responses_model, tool, prompt);
    if let Some(InputItem::Message(msg)) = req.input.first_mut() {
        msg.content
            .extend(images.iter().map(|i| ContentPart::image(i, ImageDetail::Auto)));
    }
    req.previous_response_id.clone_from(&route.previous_response);
    if opts.stream {
        req.stream = Some(true);
    }
    req.validate(caps)
        .map_err(|v| rules_error(&route.responses_model, &v))?;
    Ok(Some(req))
}

fn rules_error(model: &str, violations: &[Violation]) -> anyhow::Error {
    let mut msg = format!(
        "the Responses API request breaks {} rule(s) (mainline model {model}); nothing was sent:",
        violations.len()
    );
    for v in violations {
        msg.push_str(&format!("\n  {}: {}", v.rule.id(), v.message));
    }
    UsageError(msg).into()
}

/// The request with every inline image replaced by a short description, for sidecars and
/// `--dry-run`: the bytes are in the files, not in the record.
#[must_use]
pub fn summarised(req: &ResponsesRequest) -> ResponsesRequest {
    let mut req = req.clone();
    let short = |url: &mut String| {
        if let Some(comma) = url.find(";base64,") {
            let len = url.len() - comma - ";base64,".len();
            *url = format!("{}[{len} base64 chars]", &url[..comma + ";base64,".len()]);
        }
    };
    for item in &mut req.input {
        if let InputItem::Message(m) = item {
            for part in &mut m.content {
                if let ContentPart::InputImage(p) = part
                    && let Some(u) = &mut p.image_url
                {
                    short(u);
                }
            }
        }
    }
    for tool in &mut req.tools {
        if let fourk_api::Tool::ImageGeneration(t) = tool
            && let Some(ImageMask {
                image_url: Some(u), ..
            }) = &mut t.input_image_mask
        {
            short(u);
        }
    }
    req
}

/// A request the Responses route can carry instead: the Image API's generation or edit.
pub trait ToolRequest {
    /// The image model.
    fn model(&self) -> &str;
    /// The prompt.
    fn prompt(&self) -> &str;
    /// Its options as the `image_generation` tool's.
    fn tool_options(&self) -> ToolOptions;
}

impl ToolRequest for fourk_api::ImageRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn prompt(&self) -> &str {
        &self.prompt
    }

    fn tool_options(&self) -> ToolOptions {
        ToolOptions {
            size: self.size,
            quality: self.quality,
            output_format: self.output_format,
            output_compression: self.output_compression,
            background: self.background,
            moderation: self.moderation,
            partial_images: self.partial_images,
            n: self.n,
            stream: self.stream == Some(true),
        }
    }
}

impl ToolRequest for fourk_api::EditRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn prompt(&self) -> &str {
        &self.prompt
    }

    fn tool_options(&self) -> ToolOptions {
        // An edit has no moderation field; the rest is the generation's.
        let mut opts = fourk_api::ImageRequest {
            size: self.size,
            quality: self.quality,
            output_format: self.output_format,
            output_compression: self.output_compression,
            background: self.background,
            partial_images: self.partial_images,
            n: self.n,
            stream: self.stream,
            ..fourk_api::ImageRequest::new(&self.model, &self.prompt)
        }
        .tool_options();
        opts.moderation = None;
        opts
    }
}

/// [`for_route`] for a whole request: the Responses API request that carries `req` (input
/// images as `data:` URLs, the mask as the tool's `input_image_mask`) when `route` takes
/// that route; `None` on the Image API.
///
/// # Errors
/// [`UsageError`] when the Responses request breaks a rule.
pub fn for_request(
    route: &RouteSpec,
    caps: &Capabilities,
    req: &impl ToolRequest,
    images: &[InputImage],
    mask: Option<&InputImage>,
) -> anyhow::Result<Option<ResponsesRequest>> {
    for_route(
        route,
        caps,
        req.model(),
        req.prompt(),
        req.tool_options(),
        images,
        mask,
    )
}
