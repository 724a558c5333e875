//! `POST /v1/responses` with the `image_generation` tool: the mainline model is taken on
//! trust (any model name that is not an image model), the tool's image model and options are
//! checked against the capability table, and the answer is one `image_generation_call` output
//! item, streamed as the API's `response.*` events when `stream` is true.
//!
//! Input is a string or a list of messages whose `input_text` parts make the prompt and whose
//! `input_image` parts (base64 data URLs) are images to edit; an `image_generation_call` item
//! with a `result` is an input image too. `previous_response_id` continues from a stored
//! response (in memory, bounded, least recently used out): its image is what the new call
//! edits. With an input image or a previous image the action is `edit` (unless the tool says
//! `generate`), and the result builds on that image.
//!
//! A moderation block does not fail the HTTP request: the response has `status: "failed"`,
//! `error.code: "image_content_policy_violation"` (the closest code the `ResponseError` enum
//! has) and the output item carries the image error the SDK types describe
//! (`moderation_blocked`, `moderation_details`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use fourk_api::{
    CallError, ErrorEvent, ImageGenCall, ImageGenCallEvent, ImageGenPartialImage, ImageSettings, OutputItem,
    OutputItemEvent, ResponseError, ResponseEvent, ResponseInputDetails, ResponseObject,
    ResponseOutputDetails, ResponseStreamEvent, ResponseUsage, Rule, ToolUsage, Usage, Violation, cost,
};
use image::ImageFormat;
use serde_json::{Map, Value, json};

use crate::compose::{EditInputs, preview};
use crate::edits::MAX_IMAGE_BYTES;
use crate::error::{EmulatorError, MaskProblem, moderation_details};
use crate::generate::validate;
use crate::images::{on_render_slot, unix_now};
use crate::plan::{Fidelity, Plan};
use crate::policy::{self, Verdict};
use crate::sse::{self, Events};
use crate::state::{EmulatorState, RequestContext};
use crate::store::StoredResponse;

/// The tool's image model when none is named: the SDK documents `gpt-image-2.6-sunburst`
/// as the current default (api-contract §8.1).
pub(crate) const DEFAULT_TOOL_MODEL: &str = "gpt-image-2.6-sunburst";

/// The handler (the router checked the key), with the rate-limit headers on every answer.
pub(crate) async fn responses(
    State(state): State<Arc<EmulatorState>>,
    Extension(ctx): Extension<Arc<RequestContext>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    state.answer(create(&state, &ctx, body)).await
}

// ---------------------------------------------------------------------------------------
// Reading the request.

fn bad(param: impl Into<String>, code: &'static str, message: impl Into<String>) -> EmulatorError {
    EmulatorError::BadRequest {
        code: Some(code),
        param: Some(param.into()),
        message: message.into(),
    }
}

fn type_error(param: &str, want: &str, got: &Value) -> EmulatorError {
    bad(
        param,
        "invalid_type",
        format!(
            "Invalid type for '{param}': expected {want}, but got {} instead.",
            fourk_api::json_kind(got)
        ),
    )
}

fn unknown(param: &str) -> EmulatorError {
    EmulatorError::Invalid {
        violation: Violation {
            rule: Rule::UnknownParameter,
            param: param.to_owned(),
            message: format!("Unknown parameter: '{param}'."),
        },
        model: String::new(),
    }
}

fn opt_str<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    param: &str,
) -> Result<Option<&'v str>, EmulatorError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(type_error(param, "a string", other)),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, EmulatorError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(type_error(key, "a boolean", other)),
    }
}

fn opt_number(obj: &Map<String, Value>, key: &str, range: (f64, f64)) -> Result<Option<f64>, EmulatorError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if (range.0..=range.1).contains(&v) {
                Ok(Some(v))
            } else {
                Err(bad(
                    key,
                    "invalid_value",
                    format!(
                        "Invalid '{key}': {v} is out of range; it must be between {} and {}.",
                        range.0, range.1
                    ),
                ))
            }
        }
        Some(other) => Err(type_error(key, "a number", other)),
    }
}

fn opt_int(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>, EmulatorError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(other) => Err(type_error(key, "an integer", other)),
    }
}

/// An image sent inline: its format and bytes.
#[derive(Debug)]
struct InlineImage {
    param: String,
    format: ImageFormat,
    bytes: Vec<u8>,
}

/// `data:image/png;base64,...` to bytes, split by [`fourk_api::DataUrl`] as the JSON edits
/// are, with the size checked before the payload is decoded.
fn data_url(url: &str, param: &str) -> Result<(ImageFormat, Vec<u8>), EmulatorError> {
    let data = fourk_api::DataUrl::parse(url).map_err(|e| {
        bad(
            param,
            "invalid_image_url",
            match e {
                fourk_api::ImageUrlError::NotBase64 => {
                    "Invalid image URL: only base64 data URLs (data:image/png;base64,<data>) are supported."
                }
                _ => "Invalid image URL: a data URL must look like data:image/png;base64,<data>.",
            },
        )
    })?;
    let format = match data.format() {
        Some(f) => crate::edits::image_format(f),
        None => {
            return Err(bad(
                param,
                "invalid_image_format",
                format!(
                    "Invalid image format '{}'. Supported formats are 'image/jpeg', 'image/png', and 'image/webp'.",
                    data.mime().to_ascii_lowercase()
                ),
            ));
        }
    };
    if data.decoded_len() as u64 >= MAX_IMAGE_BYTES {
        return Err(bad(
            param,
            "image_file_too_large",
            "The image is too large: each input image must be smaller than 50 MB.",
        ));
    }
    let bytes = data.decode().map_err(|_| {
        bad(
            param,
            "invalid_base64_image",
            "Invalid base64 image: the data URL's payload is not valid base64.",
        )
    })?;
    Ok((format, bytes))
}

/// What `input` contributed.
#[derive(Debug, Default)]
struct Inputs {
    /// The user's text, which makes the image prompt.
    prompt_parts: Vec<String>,
    /// Every text the mainline model reads, for its usage.
    all_text: String,
    images: Vec<InlineImage>,
}

impl Inputs {
    fn text(&mut self, text: &str, user: bool) {
        if user {
            self.prompt_parts.push(text.to_owned());
        }
        self.all_text.push_str(text);
        self.all_text.push('\n');
    }
}

fn parse_input(v: Option<&Value>) -> Result<Inputs, EmulatorError> {
    let mut inputs = Inputs::default();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => inputs.text(s, true),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                parse_item(item, &format!("input[{i}]"), &mut inputs)?;
            }
        }
        Some(other) => return Err(type_error("input", "a string or an array", other)),
    }
    Ok(inputs)
}

fn parse_item(item: &Value, param: &str, inputs: &mut Inputs) -> Result<(), EmulatorError> {
    let obj = item
        .as_object()
        .ok_or_else(|| type_error(param, "an object", item))?;
    let kind = match obj.get("type") {
        None | Some(Value::Null) if obj.contains_key("role") => "message",
        _ => opt_str(obj, "type", &format!("{param}.type"))?.unwrap_or_default(),
    };
    match kind {
        "message" => {
            let role = opt_str(obj, "role", &format!("{param}.role"))?.unwrap_or_default();
            if !["user", "assistant", "system", "developer"].contains(&role) {
                return Err(bad(
                    format!("{param}.role"),
                    "invalid_value",
                    format!(
                        "Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'."
                    ),
                ));
            }
            let user = role == "user";
            match obj.get("content") {
                Some(Value::String(s)) => inputs.text(s, user),
                Some(Value::Array(parts)) => {
                    for (j, part) in parts.iter().enumerate() {
                        parse_part(part, &format!("{param}.content[{j}]"), user, inputs)?;
                    }
                }
                Some(other) => {
                    return Err(type_error(
                        &format!("{param}.content"),
                        "a string or an array",
                        other,
                    ));
                }
                None => {
                    return Err(bad(
                        format!("{param}.content"),
                        "missing_required_parameter",
                        format!("Missing required parameter: '{param}.content'."),
                    ));
                }
            }
        }
        "image_generation_call" => {
            let b64 = opt_str(obj, "result", &format!("{param}.result"))?.ok_or_else(|| {
                bad(
                    format!("{param}.result"),
                    "missing_required_parameter",
                    format!("Missing required parameter: '{param}.result'."),
                )
            })?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| {
                    bad(
                        format!("{param}.result"),
                        "invalid_base64_image",
                        "Invalid base64 image in the image_generation_call's result.",
                    )
                })?;
            let format = image::guess_format(&bytes)
                .ok()
                .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP))
                .ok_or_else(|| {
                    bad(
                        format!("{param}.result"),
                        "invalid_image_format",
                        "The image_generation_call's result is not a PNG, JPEG or WebP image.",
                    )
                })?;
            inputs.images.push(InlineImage {
                param: format!("{param}.result"),
                format,
                bytes,
            });
        }
        "item_reference" => {
            return Err(EmulatorError::NotEmulated {
                param: param.to_owned(),
                feature: "Input items by reference (item_reference)".into(),
            });
        }
        other => {
            return Err(bad(
                format!("{param}.type"),
                "invalid_value",
                format!(
                    "Invalid value: '{other}'. The fourk emulator takes input items of type 'message' and 'image_generation_call'."
                ),
            ));
        }
    }
    Ok(())
}

fn parse_part(part: &Value, param: &str, user: bool, inputs: &mut Inputs) -> Result<(), EmulatorError> {
    let obj = part
        .as_object()
        .ok_or_else(|| type_error(param, "an object", part))?;
    match opt_str(obj, "type", &format!("{param}.type"))?.unwrap_or_default() {
        "input_text" | "output_text" => {
            let text = opt_str(obj, "text", &format!("{param}.text"))?.unwrap_or_default();
            inputs.text(text, user);
        }
        "refusal" => {}
        "input_image" => {
            if let Some(detail) = opt_str(obj, "detail", &format!("{param}.detail"))?
                && !["low", "high", "auto", "original"].contains(&detail)
            {
                return Err(bad(
                    format!("{param}.detail"),
                    "invalid_value",
                    format!(
                        "Invalid value: '{detail}'. Supported values are: 'low', 'high', 'auto', and 'original'."
                    ),
                ));
            }
            if opt_str(obj, "file_id", &format!("{param}.file_id"))?.is_some() {
                return Err(EmulatorError::NotEmulated {
                    param: format!("{param}.file_id"),
                    feature: "Input images by file_id".into(),
                });
            }
            let url_param = format!("{param}.image_url");
            let url = opt_str(obj, "image_url", &url_param)?.ok_or_else(|| {
                bad(
                    &url_param,
                    "missing_required_parameter",
                    format!("Missing required parameter: '{url_param}'."),
                )
            })?;
            if !url.starts_with("data:") {
                return Err(EmulatorError::NotEmulated {
                    param: url_param,
                    feature: "Downloading input images from URLs".into(),
                });
            }
            let (format, bytes) = data_url(url, &url_param)?;
            inputs.images.push(InlineImage {
                param: url_param,
                format,
                bytes,
            });
        }
        "input_file" => {
            return Err(EmulatorError::NotEmulated {
                param: param.to_owned(),
                feature: "File inputs (input_file)".into(),
            });
        }
        other => {
            return Err(bad(
                format!("{param}.type"),
                "invalid_value",
                format!(
                    "Invalid value: '{other}'. Supported content types are 'input_text' and 'input_image'."
                ),
            ));
        }
    }
    Ok(())
}

/// `generate`, `edit` or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Generate,
    Edit,
    Auto,
}

/// The `image_generation` tool, read.
#[derive(Debug)]
struct Tool {
    /// The options as an Images API body, for [`fourk_api::ImageRequest::from_json`].
    image_body: Map<String, Value>,
    action: Action,
    partial_images: u8,
    input_fidelity: Option<String>,
    mask: Option<Vec<u8>>,
    /// The tool as the response echoes it, defaults filled in.
    echo: Value,
}

fn parse_tools(v: Option<&Value>) -> Result<Tool, EmulatorError> {
    let tools = match v {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => &Vec::new(),
        Some(other) => return Err(type_error("tools", "an array", other)),
    };
    let mut found = None;
    for (i, t) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        let obj = t.as_object().ok_or_else(|| type_error(&param, "an object", t))?;
        match opt_str(obj, "type", &format!("{param}.type"))?.unwrap_or_default() {
            "image_generation" if found.is_some() => {
                return Err(bad(
                    param,
                    "invalid_value",
                    "The image_generation tool is listed twice; list it once.",
                ));
            }
            "image_generation" => found = Some(parse_tool(obj, &param)?),
            other => {
                return Err(EmulatorError::NotEmulated {
                    param: format!("{param}.type"),
                    feature: format!("The '{other}' tool"),
                });
            }
        }
    }
    found.ok_or_else(|| {
        bad(
            "tools",
            "missing_required_parameter",
            "The fourk emulator answers through the image_generation tool only: add {\"type\": \"image_generation\", \"model\": \"gpt-image-2\"} to tools.",
        )
    })
}

fn parse_tool(obj: &Map<String, Value>, param: &str) -> Result<Tool, EmulatorError> {
    let mut body = Map::new();
    let mut action = Action::Auto;
    let mut partial_images = 0;
    let mut input_fidelity = None;
    let mut mask = None;
    for (key, value) in obj {
        let p = format!("{param}.{key}");
        match key.as_str() {
            "type" => {}
            "model" | "size" | "quality" | "output_format" | "output_compression" | "background"
            | "moderation" => {
                if !value.is_null() {
                    body.insert(key.clone(), value.clone());
                }
            }
            "partial_images" => {
                if !value.is_null() {
                    body.insert(key.clone(), value.clone());
                    // The Images API ties partial images to streaming; the tool does not (a
                    // non-streamed call ignores them), so validate the range as if streamed.
                    body.insert("stream".into(), Value::Bool(true));
                    partial_images = value.as_u64().and_then(|n| u8::try_from(n).ok()).unwrap_or(0);
                }
            }
            "action" => {
                action = match opt_str(obj, key, &p)? {
                    None | Some("auto") => Action::Auto,
                    Some("generate") => Action::Generate,
                    Some("edit") => Action::Edit,
                    Some(other) => {
                        return Err(bad(
                            p,
                            "invalid_value",
                            format!(
                                "Invalid value: '{other}'. Supported values are: 'generate', 'edit', and 'auto'."
                            ),
                        ));
                    }
                };
            }
            "input_fidelity" => input_fidelity = opt_str(obj, key, &p)?.map(str::to_owned),
            "input_image_mask" => {
                if value.is_null() {
                    continue;
                }
                let m = value
                    .as_object()
                    .ok_or_else(|| type_error(&p, "an object", value))?;
                if opt_str(m, "file_id", &format!("{p}.file_id"))?.is_some() {
                    return Err(EmulatorError::NotEmulated {
                        param: format!("{p}.file_id"),
                        feature: "Masks by file_id".into(),
                    });
                }
                if let Some(url) = opt_str(m, "image_url", &format!("{p}.image_url"))? {
                    let (format, bytes) = data_url(url, &format!("{p}.image_url"))?;
                    if format != ImageFormat::Png {
                        return Err(EmulatorError::Mask(MaskProblem::NotPng));
                    }
                    if bytes.len() as u64 >= crate::edits::MAX_MASK_BYTES {
                        return Err(EmulatorError::Mask(MaskProblem::TooLarge {
                            bytes: bytes.len() as u64,
                        }));
                    }
                    mask = Some(bytes);
                }
            }
            _ => return Err(unknown(&p)),
        }
    }
    let get = |k: &str, default: Value| body.get(k).cloned().unwrap_or(default);
    let mut echo = json!({
        "type": "image_generation",
        "model": get("model", DEFAULT_TOOL_MODEL.into()),
        "size": get("size", "auto".into()),
        "quality": get("quality", "auto".into()),
        "output_format": get("output_format", "png".into()),
        "output_compression": get("output_compression", 100.into()),
        "background": get("background", "auto".into()),
        "moderation": get("moderation", "auto".into()),
        "partial_images": get("partial_images", 0.into()),
        "action": match action {
            Action::Generate => "generate",
            Action::Edit => "edit",
            Action::Auto => "auto",
        },
    });
    if let Some(f) = &input_fidelity {
        echo["input_fidelity"] = f.clone().into();
    }
    if let Some(m) = obj.get("input_image_mask").filter(|m| !m.is_null()) {
        echo["input_image_mask"] = m.clone();
    }
    Ok(Tool {
        image_body: body,
        action,
        partial_images,
        input_fidelity,
        mask,
        echo,
    })
}

fn parse_tool_choice(v: Option<&Value>) -> Result<Value, EmulatorError> {
    match v {
        None | Some(Value::Null) => Ok("auto".into()),
        Some(Value::String(s)) if s == "auto" || s == "required" => Ok(s.clone().into()),
        Some(Value::String(s)) if s == "none" => Err(bad(
            "tool_choice",
            "invalid_value",
            "tool_choice 'none' keeps the model from calling image_generation, and the fourk emulator only answers with image generation calls: use 'auto', 'required' or {\"type\": \"image_generation\"}.",
        )),
        Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("image_generation") => {
            Ok(json!({"type": "image_generation"}))
        }
        Some(other) => Err(bad(
            "tool_choice",
            "invalid_value",
            format!(
                "Invalid tool_choice {other}: the fourk emulator takes 'auto', 'required' or {{\"type\": \"image_generation\"}}."
            ),
        )),
    }
}

/// What the response echoes from the request.
#[derive(Debug, Clone, serde::Serialize)]
struct Echo {
    /// Typed in the response object.
    #[serde(skip)]
    model: String,
    instructions: Value,
    metadata: Value,
    temperature: f64,
    top_p: f64,
    parallel_tool_calls: bool,
    store: bool,
    max_output_tokens: Value,
    max_tool_calls: Value,
    truncation: String,
    reasoning: Value,
    text: Value,
    tool_choice: Value,
    tools: Vec<Value>,
    safety_identifier: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    /// Typed in the response object.
    #[serde(skip)]
    previous_response_id: Value,
}

/// The request, read and checked.
#[derive(Debug)]
struct Request {
    echo: Echo,
    inputs: Inputs,
    tool: Tool,
    previous_response_id: Option<String>,
    stream: bool,
}

fn parse_request(json: &Value, caps: &fourk_api::Capabilities) -> Result<Request, EmulatorError> {
    let obj = json.as_object().ok_or_else(|| EmulatorError::BadRequest {
        code: Some("invalid_type"),
        param: None,
        message: "The request body must be a JSON object.".into(),
    })?;
    for (key, value) in obj {
        match key.as_str() {
            "model"
            | "input"
            | "instructions"
            | "tools"
            | "tool_choice"
            | "previous_response_id"
            | "stream"
            | "store"
            | "metadata"
            | "temperature"
            | "top_p"
            | "parallel_tool_calls"
            | "max_output_tokens"
            | "max_tool_calls"
            | "truncation"
            | "user"
            | "safety_identifier"
            | "prompt_cache_key"
            | "prompt_cache_retention"
            | "reasoning"
            | "text"
            | "include"
            | "stream_options"
            | "service_tier"
            | "top_logprobs" => {}
            "background" => {
                if value.as_bool() == Some(true) {
                    return Err(EmulatorError::NotEmulated {
                        param: "background".into(),
                        feature: "Background responses (background: true)".into(),
                    });
                }
            }
            "conversation" | "prompt" => {
                if !value.is_null() {
                    return Err(EmulatorError::NotEmulated {
                        param: key.clone(),
                        feature: format!("The '{key}' parameter"),
                    });
                }
            }
            _ => return Err(unknown(key)),
        }
    }
    let model = opt_str(obj, "model", "model")?
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| {
            bad(
                "model",
                "missing_required_parameter",
                "Missing required parameter: 'model'.",
            )
        })?;
    if caps.model(model).is_ok() {
        return Err(bad(
            "model",
            "invalid_value",
            format!(
                "'{model}' is an image model. Set `model` to a mainline model such as gpt-5, and the image model in the image_generation tool's `model`."
            ),
        ));
    }
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(m)) => {
            if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(type_error(&format!("metadata.{k}"), "a string", v));
            }
            Value::Object(m.clone())
        }
        Some(other) => return Err(type_error("metadata", "an object", other)),
    };
    let truncation = opt_str(obj, "truncation", "truncation")?.unwrap_or("disabled");
    if !["auto", "disabled"].contains(&truncation) {
        return Err(bad(
            "truncation",
            "invalid_value",
            format!("Invalid value: '{truncation}'. Supported values are: 'auto' and 'disabled'."),
        ));
    }
    let object_or_null = |key: &str| match obj.get(key) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(other) => Err(type_error(key, "an object", other)),
    };
    let int_or_null = |key: &str| opt_int(obj, key).map(|v| v.map_or(Value::Null, Value::from));
    let tool = parse_tools(obj.get("tools"))?;
    let previous_response_id =
        opt_str(obj, "previous_response_id", "previous_response_id")?.map(str::to_owned);
    let echo = Echo {
        model: model.to_owned(),
        instructions: opt_str(obj, "instructions", "instructions")?.map_or(Value::Null, Value::from),
        metadata,
        temperature: opt_number(obj, "temperature", (0.0, 2.0))?.unwrap_or(1.0),
        top_p: opt_number(obj, "top_p", (0.0, 1.0))?.unwrap_or(1.0),
        parallel_tool_calls: opt_bool(obj, "parallel_tool_calls")?.unwrap_or(true),
        store: opt_bool(obj, "store")?.unwrap_or(true),
        max_output_tokens: int_or_null("max_output_tokens")?,
        max_tool_calls: int_or_null("max_tool_calls")?,
        truncation: truncation.to_owned(),
        reasoning: object_or_null("reasoning")?,
        text: match object_or_null("text")? {
            Value::Null => json!({"format": {"type": "text"}}),
            v => v,
        },
        tool_choice: parse_tool_choice(obj.get("tool_choice"))?,
        tools: vec![tool.echo.clone()],
        safety_identifier: opt_str(obj, "safety_identifier", "safety_identifier")?
            .map_or(Value::Null, Value::from),
        user: opt_str(obj, "user", "user")?.map(str::to_owned),
        previous_response_id: previous_response_id.clone().map_or(Value::Null, Value::from),
    };
    Ok(Request {
        echo,
        inputs: parse_input(obj.get("input"))?,
        tool,
        previous_response_id,
        stream: opt_bool(obj, "stream")?.unwrap_or(false),
    })
}

// ---------------------------------------------------------------------------------------
// Answering.

/// How the call ended.
#[derive(Debug)]
enum Outcome {
    /// An image: its base64 (as sent, possibly corrupted by a fault) and its encoded bytes.
    Image { b64: String, bytes: Vec<u8> },
    /// The safety system rejected the prompt.
    Blocked,
    /// Rendering failed.
    Failed,
}

/// Everything fixed before the call runs.
#[derive(Debug)]
struct Prepared {
    id: String,
    item_id: String,
    created_at: i64,
    echo: Echo,
    plan: Plan,
    action: &'static str,
    blocked: bool,
    partial_images: u8,
    /// The image the chain had before this call, kept when this call makes none.
    inherited: Option<Vec<u8>>,
    /// Mainline model tokens: the text it read, and the tool call it wrote.
    mainline: (u64, u64),
}

impl Prepared {
    /// The response object: the fields fourk reads typed, the request's settings echoed as
    /// the API echoes them.
    fn response(&self, status: &str, output: Vec<OutputItem>, outcome: Option<&Outcome>) -> ResponseObject {
        let mut rest = match serde_json::to_value(&self.echo) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        rest.insert("object".into(), "response".into());
        rest.insert("background".into(), false.into());
        rest.insert("service_tier".into(), "default".into());
        let completed = matches!(outcome, Some(Outcome::Image { .. }));
        rest.insert(
            "completed_at".into(),
            if completed { unix_now().into() } else { Value::Null },
        );
        let mut r = ResponseObject {
            id: self.id.clone(),
            status: status.to_owned(),
            model: Some(self.echo.model.clone()),
            created_at: Some(self.created_at.into()),
            output,
            error: None,
            incomplete_details: None,
            tool_usage: None,
            usage: None,
            previous_response_id: self.echo.previous_response_id.as_str().map(str::to_owned),
            rest,
        };
        let Some(outcome) = outcome else {
            return r;
        };
        let (text_in, out) = self.mainline;
        r.usage = Some(ResponseUsage {
            input_tokens: text_in,
            input_tokens_details: Some(ResponseInputDetails::default()),
            output_tokens: out,
            output_tokens_details: Some(ResponseOutputDetails::default()),
            total_tokens: text_in + out,
        });
        let (text, image) = self.plan.input_tokens();
        let tool = match outcome {
            Outcome::Image { .. } => Usage::new(text, image, self.plan.usage.output_tokens),
            Outcome::Blocked | Outcome::Failed => Usage::new(0, 0, 0),
        };
        r.tool_usage = Some(ToolUsage {
            image_gen: Some(tool),
        });
        r.error = match outcome {
            Outcome::Image { .. } => None,
            Outcome::Blocked => Some(ResponseError {
                code: Some("image_content_policy_violation".into()),
                message: blocked_message().into(),
            }),
            Outcome::Failed => Some(ResponseError {
                code: Some("server_error".into()),
                message: "The image generation call failed in the fourk emulator; see its log.".into(),
            }),
        };
        r
    }

    /// The output item; `None` outcome is the item still in progress.
    fn item(&self, outcome: Option<&Outcome>) -> OutputItem {
        let mut call = ImageGenCall {
            id: self.item_id.clone(),
            status: "in_progress".into(),
            result: None,
            revised_prompt: None,
            action: Some(self.action.to_owned()),
            settings: ImageSettings::default(),
            error: None,
        };
        match outcome {
            None => {}
            Some(Outcome::Image { b64, .. }) => {
                call.status = "completed".into();
                call.result = Some(b64.clone());
                call.revised_prompt = Some(self.plan.prompt.clone());
                call.settings = self.settings();
            }
            Some(Outcome::Blocked) => {
                call.status = "failed".into();
                call.error = Some(CallError {
                    code: Some("moderation_blocked".into()),
                    message: blocked_message().into(),
                    kind: Some("image_generation_user_error".into()),
                    param: None,
                    moderation_details: Some(moderation_details()),
                });
            }
            Some(Outcome::Failed) => {
                call.status = "failed".into();
                call.error = Some(CallError {
                    code: Some("server_error".into()),
                    message: "The image could not be rendered.".into(),
                    kind: Some("server_error".into()),
                    param: None,
                    moderation_details: None,
                });
            }
        }
        OutputItem::ImageGenerationCall(Box::new(call))
    }

    /// The settings the image was made with, as items and partial images echo them.
    fn settings(&self) -> ImageSettings {
        ImageSettings {
            background: Some(self.plan.background().to_owned()),
            output_format: Some(self.plan.format.as_str().to_owned()),
            quality: Some(self.plan.quality.as_str().to_owned()),
            size: Some(self.plan.size()),
        }
    }

    fn store(&self, state: &EmulatorState, outcome: &Outcome) {
        if !self.echo.store {
            return;
        }
        let image = match outcome {
            Outcome::Image { bytes, .. } => Some(bytes.clone()),
            Outcome::Blocked | Outcome::Failed => self.inherited.clone(),
        };
        state.responses.insert(self.id.clone(), StoredResponse { image });
    }
}

fn blocked_message() -> &'static str {
    "Your request was rejected by the safety system. The image generation call was blocked by moderation."
}

async fn create(
    state: &Arc<EmulatorState>,
    ctx: &RequestContext,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, EmulatorError> {
    let json = crate::state::json_request(state, body)?;
    let caps = &state.config.capabilities;
    let request = parse_request(&json, caps)?;
    let prompt = request.inputs.prompt_parts.join("\n").trim().to_owned();
    ctx.set_prompt(&prompt);
    if prompt.is_empty() {
        return Err(bad(
            "input",
            "missing_required_parameter",
            "The input has no text: describe the image to generate (or the edit to make) in the input.",
        ));
    }
    let mut image_body = request.tool.image_body.clone();
    image_body
        .entry("model")
        .or_insert_with(|| DEFAULT_TOOL_MODEL.into());
    image_body.insert("prompt".into(), prompt.clone().into());
    let image_json = Value::Object(image_body);
    let req = crate::generate::read_request(&image_json)?;
    let model = validate(state, &req)?;
    if request.tool.input_fidelity.is_some() && !model.input_fidelity {
        return Err(EmulatorError::UnsupportedParameter {
            param: "tools[0].input_fidelity".into(),
            model: req.model.clone(),
        });
    }
    let inherited = match &request.previous_response_id {
        None => None,
        Some(id) => state
            .responses
            .get(id)
            .ok_or_else(|| EmulatorError::PreviousResponseNotFound { id: id.clone() })?
            .image
            .clone(),
    };
    let verdict = policy::judge(&state.config, &prompt);
    if verdict == Verdict::OrganizationNotVerified {
        return Err(EmulatorError::OrganizationNotVerified {
            model: req.model.clone(),
        });
    }
    let blocked = verdict == Verdict::ModerationBlocked;
    let has_image = !request.inputs.images.is_empty() || inherited.is_some();
    let edit = match request.tool.action {
        Action::Generate => false,
        Action::Auto => has_image,
        Action::Edit if has_image => true,
        Action::Edit => {
            return Err(bad(
                "tools[0].action",
                "invalid_value",
                "The action 'edit' needs an image: add an input_image to the input, or continue from a response with previous_response_id.",
            ));
        }
    };
    let inputs = if edit && !blocked {
        let images = request.inputs.images;
        let mask = request.tool.mask.clone();
        let previous = inherited.clone();
        Some(Arc::new(
            on_render_slot(state, move || decode_inputs(images, previous, mask)).await?,
        ))
    } else {
        None
    };
    let fidelity = Fidelity::resolve(model, request.tool.input_fidelity.as_deref());
    // The tool takes no `n`, so the plan is for one image.
    let plan = Plan::resolve(&req, model, inputs, fidelity, ctx.fault).with_seed_tag("responses");
    let text_in = cost::estimate_text_tokens(&request.inputs.all_text)
        + request
            .echo
            .instructions
            .as_str()
            .map_or(0, cost::estimate_text_tokens);
    let prepared = Prepared {
        id: state.object_id("resp"),
        item_id: state.object_id("ig"),
        created_at: unix_now(),
        mainline: (text_in, cost::estimate_text_tokens(&prompt)),
        echo: request.echo,
        action: if edit { "edit" } else { "generate" },
        blocked,
        partial_images: if request.stream {
            request.tool.partial_images
        } else {
            0
        },
        inherited,
        plan,
    };
    if !blocked {
        state.limiter.acquire([0, prepared.plan.usage.total_tokens, 1])?;
    }
    if request.stream {
        let (events, response) = sse::channel();
        let state = Arc::clone(state);
        tokio::spawn(async move { stream(&state, prepared, events).await });
        return Ok(response);
    }
    let started = Instant::now();
    let outcome = run(state, &prepared).await?;
    tokio::time::sleep(latency(state, &prepared).saturating_sub(started.elapsed())).await;
    prepared.store(state, &outcome);
    let status = match outcome {
        Outcome::Image { .. } => "completed",
        Outcome::Blocked | Outcome::Failed => "failed",
    };
    let body = prepared.response(status, vec![prepared.item(Some(&outcome))], Some(&outcome));
    Ok(Json(body).into_response())
}

/// Decode the inputs: explicit images first (the first is edited), then the previous
/// response's image, and the mask against the first of them.
fn decode_inputs(
    images: Vec<InlineImage>,
    previous: Option<Vec<u8>>,
    mask: Option<Vec<u8>>,
) -> Result<EditInputs, EmulatorError> {
    let previous = previous.and_then(|bytes| {
        let format = image::guess_format(&bytes).ok()?;
        Some(InlineImage {
            param: "previous_response_id".into(),
            format,
            bytes,
        })
    });
    let uploads = images.into_iter().chain(previous).map(|up| crate::edits::Upload {
        param: up.param,
        format: up.format,
        data: crate::edits::ImageData::Memory(up.bytes),
    });
    crate::edits::decode_uploads(uploads, mask)
}

fn latency(state: &EmulatorState, p: &Prepared) -> Duration {
    if p.blocked {
        Duration::ZERO
    } else {
        p.plan.scaled_latency(state.config.latency_scale)
    }
}

/// Render the image (non-streamed): the outcome, with rendering failures reported as a
/// failed call rather than an HTTP error, as the API does for tool calls.
async fn run(state: &EmulatorState, p: &Prepared) -> Result<Outcome, EmulatorError> {
    if p.blocked {
        return Ok(Outcome::Blocked);
    }
    let plan = p.plan.clone();
    match on_render_slot(state, move || plan.finish(&plan.render(0))).await {
        Ok((b64, bytes)) => Ok(Outcome::Image { b64, bytes }),
        Err(e) => {
            tracing::error!(error = %e, "image generation call failed");
            Ok(Outcome::Failed)
        }
    }
}

/// Numbers the events of one stream.
struct Emitter {
    events: Events,
    seq: u64,
}

impl Emitter {
    /// Send `event` with the next `sequence_number`; false once the client is gone.
    async fn emit(&mut self, event: ResponseStreamEvent) -> bool {
        let Ok(mut data) = serde_json::to_value(&event) else {
            return false;
        };
        let kind = data["type"].as_str().unwrap_or("error").to_owned();
        data["sequence_number"] = self.seq.into();
        self.seq += 1;
        self.events.send(&kind, &data).await
    }
}

async fn stream(state: &EmulatorState, p: Prepared, events: Events) {
    let mut out = Emitter { events, seq: 0 };
    let whole = |response: ResponseObject| ResponseEvent {
        response,
        sequence_number: None,
    };
    let in_progress = p.response("in_progress", Vec::new(), None);
    let item = |item: OutputItem| OutputItemEvent {
        output_index: 0,
        item,
        sequence_number: None,
    };
    let call = ImageGenCallEvent {
        item_id: p.item_id.clone(),
        output_index: 0,
        sequence_number: None,
    };
    if !out
        .emit(ResponseStreamEvent::Created(whole(in_progress.clone())))
        .await
        || !out
            .emit(ResponseStreamEvent::InProgress(whole(in_progress)))
            .await
        || !out
            .emit(ResponseStreamEvent::OutputItemAdded(item(p.item(None))))
            .await
        || !out
            .emit(ResponseStreamEvent::ImageGenInProgress(call.clone()))
            .await
    {
        return;
    }
    let outcome = if p.blocked {
        Outcome::Blocked
    } else {
        if !out
            .emit(ResponseStreamEvent::ImageGenGenerating(call.clone()))
            .await
        {
            return;
        }
        let started = Instant::now();
        let total = latency(state, &p);
        let partials = p.partial_images;
        let plan = p.plan.clone();
        let rendered = on_render_slot(state, move || {
            let img = plan.render(0);
            let previews = (0..partials)
                .map(|k| plan.encode(&preview(&img, k, partials)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((previews, plan.finish(&img)?))
        })
        .await;
        match rendered {
            Err(e) => {
                tracing::error!(error = %e, "image generation call failed");
                Outcome::Failed
            }
            Ok((previews, (b64, bytes))) => {
                let steps = f64::from(partials) + 1.0;
                for (k, partial) in previews.into_iter().enumerate() {
                    let at = total.mul_f64((k as f64 + 1.0) / steps);
                    tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
                    let partial = ImageGenPartialImage {
                        item_id: p.item_id.clone(),
                        output_index: 0,
                        sequence_number: None,
                        partial_image_b64: partial,
                        partial_image_index: u32::try_from(k).unwrap_or(u32::MAX),
                        settings: p.settings(),
                    };
                    if !out.emit(ResponseStreamEvent::ImageGenPartialImage(partial)).await {
                        return;
                    }
                }
                tokio::time::sleep(total.saturating_sub(started.elapsed())).await;
                if p.plan.stream_error {
                    // `[fourk:stream-error]`: the stream fails after its partial images,
                    // with the API's `error` event and nothing after it.
                    out.emit(ResponseStreamEvent::Error(ErrorEvent {
                        code: Some("server_error".into()),
                        message: "The server had an error while processing your request. Sorry about that!"
                            .into(),
                        param: None,
                        sequence_number: None,
                    }))
                    .await;
                    return;
                }
                if !out
                    .emit(ResponseStreamEvent::ImageGenCompleted(call.clone()))
                    .await
                {
                    return;
                }
                Outcome::Image { b64, bytes }
            }
        }
    };
    p.store(state, &outcome);
    let done = p.item(Some(&outcome));
    if !out
        .emit(ResponseStreamEvent::OutputItemDone(item(done.clone())))
        .await
    {
        return;
    }
    let completed = matches!(outcome, Outcome::Image { .. });
    let response = whole(p.response(
        if completed { "completed" } else { "failed" },
        vec![done],
        Some(&outcome),
    ));
    out.emit(if completed {
        ResponseStreamEvent::Completed(response)
    } else {
        ResponseStreamEvent::Failed(response)
    })
    .await;
}
