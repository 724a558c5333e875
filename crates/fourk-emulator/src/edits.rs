//! `POST /v1/images/edits`: a `multipart/form-data` body with one `image` or repeated
//! `image[]` files (1-16, PNG/JPEG/WebP, each under 50 MB), an optional PNG `mask` (under
//! 4 MB, with alpha, the size of the first image) and the text fields of an edit. The form is
//! read part by part with each file's limit enforced while it streams in; the options are
//! checked by building the same [`ImageRequest`] the generations endpoint validates.

use std::io::Cursor;
use std::sync::Arc;

use axum::Extension;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use fourk_api::{ImageRequest, Rule, Violation};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::compose::EditInputs;
use crate::error::{EmulatorError, MaskProblem};
use crate::generate::{check_policy, validate};
use crate::images::{Endpoint, on_render_slot, respond};
use crate::plan::{Fidelity, Plan};
use crate::state::{EmulatorState, RequestContext, hex};

/// Most input images per edit.
pub(crate) const MAX_IMAGES: usize = 16;
/// Each image must be smaller than this.
pub(crate) const MAX_IMAGE_BYTES: u64 = 50 * 1024 * 1024;
/// The mask must be smaller than this.
pub(crate) const MAX_MASK_BYTES: u64 = 4 * 1024 * 1024;
/// A text field longer than this is refused before it is buffered (a prompt is at most
/// 32,000 characters, so 128 KiB of UTF-8).
const MAX_TEXT_BYTES: u64 = 256 * 1024;
/// The whole body: every image at its limit, the mask, and room for the text fields.
pub(crate) const MAX_BODY_BYTES: usize =
    MAX_IMAGES * (MAX_IMAGE_BYTES as usize) + MAX_MASK_BYTES as usize + 1024 * 1024;

/// Largest input edge the decoder accepts, and its memory cap: bounds for untrusted files.
const MAX_INPUT_EDGE: u32 = 12_000;
const MAX_DECODE_ALLOC: u64 = 1024 * 1024 * 1024;

/// The image types an input may have, as the API's message lists them.
const IMAGE_TYPES: &str = "'image/jpeg', 'image/png', and 'image/webp'";

/// An uploaded file, its type checked but not yet decoded.
#[derive(Debug)]
struct Upload {
    format: ImageFormat,
    bytes: Vec<u8>,
}

/// The form, read.
#[derive(Debug, Default)]
struct Form {
    /// The text fields an [`ImageRequest`] has, typed like JSON.
    fields: Map<String, Value>,
    images: Vec<Upload>,
    mask: Option<Vec<u8>>,
    input_fidelity: Option<String>,
}

/// The handler: auth first, then the form, with the rate-limit headers on every answer
/// after auth.
pub(crate) async fn edits(
    State(state): State<Arc<EmulatorState>>,
    Extension(ctx): Extension<Arc<RequestContext>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    state
        .answer(&headers, edit(&state, &ctx, &headers, multipart))
        .await
}

async fn edit(
    state: &Arc<EmulatorState>,
    ctx: &RequestContext,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, EmulatorError> {
    state.limiter.acquire([1, 0, 0])?;
    let multipart = multipart.map_err(|_| {
        let got = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        EmulatorError::BadRequest {
            code: None,
            param: None,
            message: format!(
                "Invalid Content-Type header ({got}), expected multipart/form-data. Send the image files and fields as a multipart form."
            ),
        }
    })?;
    let form = read_form(multipart).await?;
    let json = Value::Object(form.fields);
    let req = ImageRequest::from_json(&json).map_err(|violation| EmulatorError::Invalid {
        violation,
        model: json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })?;
    ctx.set_prompt(&req.prompt);
    if form.images.is_empty() {
        return Err(EmulatorError::BadRequest {
            code: Some("missing_required_parameter"),
            param: Some("image".into()),
            message: "Missing required parameter: 'image'.".into(),
        });
    }
    let model = validate(state, &req)?;
    if let Some(fidelity) = &form.input_fidelity {
        if !model.input_fidelity {
            return Err(EmulatorError::UnsupportedParameter {
                param: "input_fidelity".into(),
                model: req.model.clone(),
            });
        }
        if !["high", "low"].contains(&fidelity.as_str()) {
            return Err(EmulatorError::BadRequest {
                code: Some("invalid_value"),
                param: Some("input_fidelity".into()),
                message: format!("Invalid value: '{fidelity}'. Supported values are: 'high' and 'low'."),
            });
        }
    }
    check_policy(state, ctx, &req)?;
    let (images, mask) = (form.images, form.mask);
    let inputs = on_render_slot(state, move || decode_inputs(images, mask)).await?;
    let fidelity = Fidelity::resolve(model, form.input_fidelity.as_deref());
    let plan = Plan::resolve(&req, model, Some(Arc::new(inputs)), fidelity, ctx.fault);
    let stream = (req.stream == Some(true)).then(|| req.partial_images.unwrap_or(0));
    respond(state, plan, stream, Endpoint::Edits).await
}

fn multipart_error(e: &MultipartError) -> EmulatorError {
    EmulatorError::Body {
        status: e.status(),
        message: format!(
            "The multipart/form-data body could not be read: {}",
            e.body_text()
        ),
    }
}

fn unknown_parameter(name: &str) -> EmulatorError {
    EmulatorError::Invalid {
        violation: Violation {
            rule: Rule::UnknownParameter,
            param: name.to_owned(),
            message: format!("Unknown parameter: '{name}'."),
        },
        model: String::new(),
    }
}

async fn read_form(mut multipart: Multipart) -> Result<Form, EmulatorError> {
    let mut form = Form::default();
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "image" | "image[]" => {
                if form.images.len() == MAX_IMAGES {
                    return Err(EmulatorError::BadRequest {
                        code: Some("invalid_value"),
                        param: Some("image".into()),
                        message: format!("Too many images: at most {MAX_IMAGES} may be sent in one edit."),
                    });
                }
                let mime = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                // Parameters such as `; charset=binary` do not change the type.
                let essence = mime
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                let format = match essence.as_str() {
                    "image/png" => ImageFormat::Png,
                    "image/jpeg" => ImageFormat::Jpeg,
                    "image/webp" => ImageFormat::WebP,
                    _ => {
                        return Err(EmulatorError::UnsupportedMimetype {
                            param: "image".into(),
                            mime,
                            allowed: IMAGE_TYPES,
                        });
                    }
                };
                let bytes = read_limited(&mut field, MAX_IMAGE_BYTES, |bytes| EmulatorError::FileTooLarge {
                    param: "image".into(),
                    bytes,
                    limit: MAX_IMAGE_BYTES,
                })
                .await?;
                form.images.push(Upload { format, bytes });
            }
            "mask" => {
                let essence = field
                    .content_type()
                    .and_then(|m| m.split(';').next())
                    .map(|m| m.trim().to_ascii_lowercase());
                if essence.as_deref() != Some("image/png") {
                    return Err(EmulatorError::Mask(MaskProblem::NotPng));
                }
                let bytes = read_limited(&mut field, MAX_MASK_BYTES, |bytes| {
                    EmulatorError::Mask(MaskProblem::TooLarge { bytes })
                })
                .await?;
                form.mask = Some(bytes);
            }
            "moderation" => return Err(unknown_parameter("moderation")),
            "input_fidelity" => form.input_fidelity = Some(read_text(&mut field, &name).await?),
            "prompt" | "model" | "size" | "quality" | "background" | "output_format"
            | "output_compression" | "n" | "stream" | "partial_images" | "safety_identifier" | "user"
            | "response_format" | "style" => {
                let text = read_text(&mut field, &name).await?;
                form.fields.insert(name.clone(), typed(&name, text));
            }
            _ => return Err(unknown_parameter(&name)),
        }
    }
    Ok(form)
}

/// A form field as the JSON value the API would have parsed it to: integers and booleans
/// where the field is one (left a string when it does not parse, so the type error names
/// the field), strings otherwise.
fn typed(name: &str, text: String) -> Value {
    match name {
        "n" | "output_compression" | "partial_images" => text
            .trim()
            .parse::<i64>()
            .map_or(Value::String(text), Value::from),
        "stream" => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        _ => Value::String(text),
    }
}

async fn read_limited(
    field: &mut Field<'_>,
    limit: u64,
    too_large: impl Fn(u64) -> EmulatorError,
) -> Result<Vec<u8>, EmulatorError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        let len = (buf.len() + chunk.len()) as u64;
        if len >= limit {
            return Err(too_large(len));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

async fn read_text(field: &mut Field<'_>, name: &str) -> Result<String, EmulatorError> {
    let bytes = read_limited(field, MAX_TEXT_BYTES, |_| EmulatorError::BadRequest {
        code: Some("invalid_value"),
        param: Some(name.to_owned()),
        message: format!("The field '{name}' is too long."),
    })
    .await?;
    String::from_utf8(bytes).map_err(|_| EmulatorError::BadRequest {
        code: Some("invalid_value"),
        param: Some(name.to_owned()),
        message: format!("The field '{name}' is not valid UTF-8 text."),
    })
}

/// Decode bytes of a known format under explicit limits: inputs are untrusted.
pub(crate) fn decode_image(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, image::ImageError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_EDGE);
    limits.max_image_height = Some(MAX_INPUT_EDGE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    reader.decode()
}

pub(crate) fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::WebP => "webp",
        _ => "image",
    }
}

/// Decode every input and check the mask against the first image. CPU work: run it on a
/// blocking thread.
fn decode_inputs(images: Vec<Upload>, mask: Option<Vec<u8>>) -> Result<EditInputs, EmulatorError> {
    decode_uploads(
        images.iter().map(|up| ("image", up.format, up.bytes.as_slice())),
        mask,
    )
}

/// Decode input images (the first is the one edited) and check the mask against the first.
/// Shared by the edits endpoint and the Responses tool, so both reject the same inputs the
/// same way; `param` names the field an undecodable image came from.
pub(crate) fn decode_uploads<'a>(
    uploads: impl IntoIterator<Item = (&'a str, ImageFormat, &'a [u8])>,
    mask: Option<Vec<u8>>,
) -> Result<EditInputs, EmulatorError> {
    let mut digest = Sha256::new();
    let mut decoded = Vec::new();
    for (param, format, bytes) in uploads {
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
        let img = decode_image(bytes, format).map_err(|e| EmulatorError::UndecodableImage {
            param: param.into(),
            format: format_name(format),
            detail: e.to_string(),
        })?;
        decoded.push(img);
    }
    let mask = match mask {
        None => None,
        Some(bytes) => {
            digest.update(b"mask");
            digest.update(&bytes);
            let first = decoded.first().map_or((0, 0), |i| (i.width(), i.height()));
            Some(check_mask(&bytes, first)?)
        }
    };
    Ok(EditInputs {
        images: decoded,
        mask,
        digest: hex(&digest.finalize()),
    })
}

/// The mask rules, in the order a user would fix them: a PNG, with alpha, the image's size.
pub(crate) fn check_mask(bytes: &[u8], image: (u32, u32)) -> Result<DynamicImage, EmulatorError> {
    let mask = decode_image(bytes, ImageFormat::Png).map_err(|_| EmulatorError::Mask(MaskProblem::NotPng))?;
    if !mask.color().has_alpha() {
        return Err(EmulatorError::Mask(MaskProblem::NoAlpha));
    }
    let dims = (mask.width(), mask.height());
    if dims != image {
        return Err(EmulatorError::Mask(MaskProblem::SizeMismatch {
            mask: dims,
            image,
        }));
    }
    Ok(mask)
}
