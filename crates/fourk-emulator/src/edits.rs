//! `POST /v1/images/edits`, in both of the API's forms, through one set of checks and one
//! renderer:
//!
//! - `multipart/form-data` with one `image` or repeated `image[]` files (1-16, PNG/JPEG/WebP,
//!   each under 50 MB), an optional PNG `mask` (under 4 MB, with alpha, the size of the first
//!   image) and the text fields of an edit. The form is read part by part with each file's
//!   limit enforced while it streams in; image parts are written to anonymous temporary files
//!   as they arrive (up to 16 x 50 MB would not fit in memory side by side) and decoded from
//!   there, the mask and the text fields are kept in memory.
//! - `application/json` (`EditImageBodyJsonParam`, read by [`EditJsonBody::from_json`]): the
//!   same options plus `moderation`, with `images` (and `mask`) as references: base64 data URLs
//!   (decoded under the same limits, with the same errors as the form's files) or the
//!   `file_id` of an upload to `/v1/files` with purpose `vision` or `user_data`. An http(s)
//!   URL gets a 400 that says to send a data URL or a file id instead: the emulator is
//!   offline. A Batch API edit line runs through here too ([`read_json`], [`plan_json`]).
//!
//! The options are checked by building the same [`ImageRequest`] the generations endpoint
//! validates, plus `input_fidelity` against the model.

use std::io::{self, BufRead, BufReader, Cursor, Read as _, Seek, SeekFrom};
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest as _, Multipart, Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use fourk_api::{
    EditJsonBody, ImageRef, ImageRequest, ImageSource, ImageUrlError, MAX_IMAGE_URL_CHARS, ModelCaps,
    OutputFormat, Rule, Violation,
};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::compose::EditInputs;
use crate::error::{EmulatorError, MaskProblem};
use crate::generate::{check_policy, invalid_body, read_request, validate};
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

/// An input image, its type checked but not yet decoded.
#[derive(Debug)]
pub(crate) struct Upload {
    /// The field it came from (`image`, `images[2].image_url`), for decoding errors.
    pub(crate) param: String,
    pub(crate) format: ImageFormat,
    pub(crate) data: ImageData,
}

/// Where an input image's bytes are.
#[derive(Debug)]
pub(crate) enum ImageData {
    /// Decoded from a data URL.
    Memory(Vec<u8>),
    /// A form part spooled to a temporary file, or an upload of `/v1/files`; read from the
    /// start.
    File(std::fs::File),
}

impl ImageData {
    /// All the bytes in memory (for a mask, which is under 4 MB).
    async fn into_vec(self) -> Result<Vec<u8>, EmulatorError> {
        match self {
            Self::Memory(bytes) => Ok(bytes),
            Self::File(file) => {
                let mut bytes = Vec::new();
                tokio::io::AsyncReadExt::read_to_end(&mut tokio::fs::File::from_std(file), &mut bytes)
                    .await
                    .map_err(|e| EmulatorError::Internal(format!("reading an input image: {e}")))?;
                Ok(bytes)
            }
        }
    }

    /// Add the length and the bytes to `digest`, then decode them as `format`. Blocking.
    fn digest_and_decode(
        self,
        digest: &mut Sha256,
        format: ImageFormat,
    ) -> Result<Result<DynamicImage, image::ImageError>, io::Error> {
        match self {
            Self::Memory(bytes) => {
                digest.update((bytes.len() as u64).to_le_bytes());
                digest.update(&bytes);
                Ok(decode_image(Cursor::new(bytes.as_slice()), format))
            }
            Self::File(mut file) => {
                let len = file.metadata()?.len();
                digest.update(len.to_le_bytes());
                file.seek(SeekFrom::Start(0))?;
                io::copy(&mut (&mut file).take(len), digest)?;
                file.seek(SeekFrom::Start(0))?;
                Ok(decode_image(BufReader::new(file), format))
            }
        }
    }
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

/// The handler (the router checked the key): the body, a form or JSON by `Content-Type`,
/// with the rate-limit headers on every answer.
pub(crate) async fn edits(
    State(state): State<Arc<EmulatorState>>,
    Extension(ctx): Extension<Arc<RequestContext>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    state.answer(edit(&state, &ctx, &headers, request)).await
}

/// The media type of the body, lower case, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// `stream: true` as [`respond`] takes it: the number of partial images.
fn stream_of(req: &ImageRequest) -> Option<u8> {
    (req.stream == Some(true)).then(|| req.partial_images.unwrap_or(0))
}

async fn edit(
    state: &Arc<EmulatorState>,
    ctx: &RequestContext,
    headers: &HeaderMap,
    request: Request,
) -> Result<Response, EmulatorError> {
    state.limiter.acquire([1, 0, 0])?;
    let azure = request.extensions().get::<crate::azure::AzureRoute>().cloned();
    let azure = azure.as_ref();
    let json = content_type(headers).is_some_and(|t| t == "application/json" || t.ends_with("+json"));
    let (plan, stream) = if json {
        json_edit(state, ctx, azure, request).await?
    } else {
        form_edit(state, ctx, azure, headers, request).await?
    };
    respond(state, plan, stream, Endpoint::Edits).await
}

async fn json_edit(
    state: &EmulatorState,
    ctx: &RequestContext,
    azure: Option<&crate::azure::AzureRoute>,
    request: Request,
) -> Result<(Plan, Option<u8>), EmulatorError> {
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|r| EmulatorError::Body {
            status: r.status(),
            message: r.body_text(),
        })?;
    let mut json: Value = serde_json::from_slice(&bytes).map_err(|_| EmulatorError::InvalidJson)?;
    crate::azure::map_model(state, azure, &mut json)?;
    // The data URLs are in the body, the JSON and the read edit in turn: hold one copy.
    drop(bytes);
    let edit = read_json(&json)?;
    drop(json);
    ctx.set_prompt(&edit.req.prompt);
    let stream = stream_of(&edit.req);
    Ok((plan_json(state, ctx, edit).await?, stream))
}

async fn form_edit(
    state: &EmulatorState,
    ctx: &RequestContext,
    azure: Option<&crate::azure::AzureRoute>,
    headers: &HeaderMap,
    request: Request,
) -> Result<(Plan, Option<u8>), EmulatorError> {
    let multipart = Multipart::from_request(request, &()).await.map_err(|_| {
        let got = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        EmulatorError::BadRequest {
            code: None,
            param: None,
            message: format!(
                "Invalid Content-Type header ({got}), expected multipart/form-data or application/json. Send the image files and fields as a multipart form, or a JSON body that lists the images under 'images'."
            ),
        }
    })?;
    let form = read_form(multipart).await?;
    let mut json = Value::Object(form.fields);
    crate::azure::map_model(state, azure, &mut json)?;
    let req = read_request(&json)?;
    ctx.set_prompt(&req.prompt);
    if form.images.is_empty() {
        return Err(EmulatorError::BadRequest {
            code: Some("missing_required_parameter"),
            param: Some("image".into()),
            message: "Missing required parameter: 'image'.".into(),
        });
    }
    let fidelity = form.input_fidelity.as_deref();
    let model = check_options(state, ctx, &req, fidelity)?;
    let plan = plan_inputs(state, ctx, &req, model, fidelity, form.images, form.mask).await?;
    Ok((plan, stream_of(&req)))
}

/// The option checks of every edit, whatever its body: the generation rules, then
/// `input_fidelity` against the model, then the on-demand policy answers.
fn check_options<'s>(
    state: &'s EmulatorState,
    ctx: &RequestContext,
    req: &ImageRequest,
    input_fidelity: Option<&str>,
) -> Result<&'s ModelCaps, EmulatorError> {
    let model = validate(state, req)?;
    if let Some(fidelity) = input_fidelity {
        if !model.input_fidelity {
            return Err(EmulatorError::UnsupportedParameter {
                param: "input_fidelity".into(),
                model: req.model.clone(),
            });
        }
        if !["high", "low"].contains(&fidelity) {
            return Err(EmulatorError::BadRequest {
                code: Some("invalid_value"),
                param: Some("input_fidelity".into()),
                message: format!("Invalid value: '{fidelity}'. Supported values are: 'high' and 'low'."),
            });
        }
    }
    check_policy(state, ctx, req)?;
    Ok(model)
}

/// Decode the inputs on a render slot and plan the answer.
async fn plan_inputs(
    state: &EmulatorState,
    ctx: &RequestContext,
    req: &ImageRequest,
    model: &ModelCaps,
    input_fidelity: Option<&str>,
    images: Vec<Upload>,
    mask: Option<Vec<u8>>,
) -> Result<Plan, EmulatorError> {
    let inputs = on_render_slot(state, move || decode_uploads(images, mask)).await?;
    let fidelity = Fidelity::resolve(model, input_fidelity);
    Ok(Plan::resolve(
        req,
        model,
        Some(Arc::new(inputs)),
        fidelity,
        ctx.fault,
    ))
}

/// A JSON edit, read: the body and its options as the generations endpoint types them.
#[derive(Debug)]
pub(crate) struct JsonEdit {
    body: EditJsonBody,
    /// The options, for the shared checks and the plan.
    pub(crate) req: ImageRequest,
}

/// Read a JSON edit body (types, unknown fields, the shape of each image reference).
pub(crate) fn read_json(json: &Value) -> Result<JsonEdit, EmulatorError> {
    let body = EditJsonBody::from_json(json).map_err(invalid_body(json))?;
    let req = body.generation_request();
    Ok(JsonEdit { body, req })
}

/// Check a JSON edit, read its images (data URLs, uploaded files) and plan the answer: the
/// live endpoint and the Batch API's edit lines both run through here.
pub(crate) async fn plan_json(
    state: &EmulatorState,
    ctx: &RequestContext,
    edit: JsonEdit,
) -> Result<Plan, EmulatorError> {
    let JsonEdit { body, req } = edit;
    let count = body.images.len();
    if count == 0 || count > MAX_IMAGES {
        return Err(EmulatorError::BadRequest {
            code: Some("invalid_value"),
            param: Some("images".into()),
            message: format!("Invalid 'images': an edit takes 1 to {MAX_IMAGES} images; got {count}."),
        });
    }
    let fidelity = body.edit.input_fidelity.map(|f| f.as_str());
    let model = check_options(state, ctx, &req, fidelity)?;
    let mut images = Vec::with_capacity(count);
    for (i, r) in body.images.iter().enumerate() {
        images.push(resolve(state, r, &format!("images[{i}]"), false).await?);
    }
    let mask = match &body.mask {
        Some(m) => Some(resolve(state, m, "mask", true).await?.data.into_vec().await?),
        None => None,
    };
    drop(body);
    plan_inputs(state, ctx, &req, model, fidelity, images, mask).await
}

/// The decoder's name for an image format of the API.
pub(crate) fn image_format(f: OutputFormat) -> ImageFormat {
    match f {
        OutputFormat::Png => ImageFormat::Png,
        OutputFormat::Jpeg => ImageFormat::Jpeg,
        OutputFormat::Webp => ImageFormat::WebP,
    }
}

/// The bytes of one image reference of a JSON edit at `at` (`images[0]`, `mask`), checked
/// like a form's file part: the type (PNG for a mask), then the size, before decoding.
async fn resolve(state: &EmulatorState, r: &ImageRef, at: &str, mask: bool) -> Result<Upload, EmulatorError> {
    let param = match r {
        ImageRef::Url(_) => format!("{at}.image_url"),
        ImageRef::FileId(_) => format!("{at}.file_id"),
    };
    if let ImageRef::Url(url) = r
        && url.len() > MAX_IMAGE_URL_CHARS
    {
        return Err(EmulatorError::BadRequest {
            code: Some("string_above_max_length"),
            param: Some(param.clone()),
            message: format!(
                "Invalid '{param}': string too long. Expected a string with maximum length {MAX_IMAGE_URL_CHARS}, but got a string with length {} instead. Send a smaller image, or upload it (POST /v1/files) and reference it by file_id.",
                url.len()
            ),
        });
    }
    let limit = if mask { MAX_MASK_BYTES } else { MAX_IMAGE_BYTES };
    let too_large = |bytes: u64| {
        if mask {
            EmulatorError::Mask(MaskProblem::TooLarge { bytes })
        } else {
            EmulatorError::FileTooLarge {
                param: param.clone(),
                bytes,
                limit,
            }
        }
    };
    let checked = |format: Option<ImageFormat>, mime: &str| match format {
        Some(ImageFormat::Png) => Ok(ImageFormat::Png),
        _ if mask => Err(EmulatorError::Mask(MaskProblem::NotPng)),
        Some(f) => Ok(f),
        None => Err(EmulatorError::UnsupportedMimetype {
            param: param.clone(),
            mime: mime.to_owned(),
            allowed: IMAGE_TYPES,
        }),
    };
    let bad_url = |e: ImageUrlError, code: &'static str| EmulatorError::BadRequest {
        code: Some(code),
        param: Some(param.clone()),
        message: format!("Invalid '{param}': {e}."),
    };
    let (format, data) = match r.source().map_err(|e| bad_url(e, "invalid_image_url"))? {
        ImageSource::Remote(_) => return Err(EmulatorError::UrlNotFetched { param }),
        ImageSource::Data(data) => {
            let format = checked(data.format().map(image_format), data.mime())?;
            if data.decoded_len() as u64 >= limit {
                return Err(too_large(data.decoded_len() as u64));
            }
            let bytes = data.decode().map_err(|e| bad_url(e, "invalid_base64_image"))?;
            (format, ImageData::Memory(bytes))
        }
        ImageSource::File(id) => {
            let file = state
                .batch
                .files
                .get(id)
                .ok_or_else(|| EmulatorError::BadRequest {
                    code: Some("invalid_value"),
                    param: Some(param.clone()),
                    message: format!(
                        "No such File object: {id}. Upload the image with POST /v1/files (purpose 'vision' or 'user_data') and pass the id it returns."
                    ),
                })?;
            if !matches!(file.meta.purpose.as_str(), "vision" | "user_data") {
                return Err(EmulatorError::BadRequest {
                    code: Some("invalid_value"),
                    param: Some(param.clone()),
                    message: format!(
                        "The file {id} has purpose '{}'; an input image must be uploaded with purpose 'vision' or 'user_data'. Upload it again with one of those.",
                        file.meta.purpose.as_str()
                    ),
                });
            }
            if file.meta.bytes >= limit {
                return Err(too_large(file.meta.bytes));
            }
            // Decoded from the stored file, not copied into memory first.
            let read_failed =
                |e: io::Error| EmulatorError::Internal(format!("reading {}: {e}", file.path.display()));
            let mut opened = tokio::fs::File::open(&file.path).await.map_err(read_failed)?;
            let mut head = Vec::with_capacity(64);
            tokio::io::AsyncReadExt::read_to_end(
                &mut tokio::io::AsyncReadExt::take(&mut opened, 64),
                &mut head,
            )
            .await
            .map_err(read_failed)?;
            let guessed = image::guess_format(&head).ok();
            let mime = guessed.map_or("application/octet-stream", |f| f.to_mime_type());
            let known =
                guessed.filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP));
            (checked(known, mime)?, ImageData::File(opened.into_std().await))
        }
    };
    Ok(Upload { param, format, data })
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
                let file = spool(&mut field, MAX_IMAGE_BYTES, |bytes| EmulatorError::FileTooLarge {
                    param: "image".into(),
                    bytes,
                    limit: MAX_IMAGE_BYTES,
                })
                .await?;
                form.images.push(Upload {
                    param: "image".into(),
                    format,
                    data: ImageData::File(file),
                });
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

/// Write a file part to an anonymous temporary file (in the system's temporary folder, gone
/// when closed, even after a crash), under `limit`; the file is returned rewound.
async fn spool(
    field: &mut Field<'_>,
    limit: u64,
    too_large: impl Fn(u64) -> EmulatorError,
) -> Result<std::fs::File, EmulatorError> {
    let failed = |e: io::Error| EmulatorError::Internal(format!("spooling an input image to disk: {e}"));
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| EmulatorError::Internal(e.to_string()))?
        .map_err(failed)?;
    let mut out = tokio::io::BufWriter::with_capacity(1024 * 1024, tokio::fs::File::from_std(file));
    let mut len = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        len += chunk.len() as u64;
        if len >= limit {
            return Err(too_large(len));
        }
        tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
            .await
            .map_err(failed)?;
    }
    tokio::io::AsyncWriteExt::flush(&mut out).await.map_err(failed)?;
    let mut file = out.into_inner().into_std().await;
    file.seek(SeekFrom::Start(0)).map_err(failed)?;
    Ok(file)
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

/// Decode an image of a known format under explicit limits: inputs are untrusted.
pub(crate) fn decode_image(
    input: impl BufRead + Seek,
    format: ImageFormat,
) -> Result<DynamicImage, image::ImageError> {
    let mut reader = ImageReader::with_format(input, format);
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

/// Decode input images (the first is the one edited) and check the mask against the first.
/// Shared by the edits endpoint and the Responses tool, so both reject the same inputs the
/// same way; an undecodable image is named by its `param`. CPU and disk work: run it on a
/// blocking thread.
pub(crate) fn decode_uploads(
    uploads: impl IntoIterator<Item = Upload>,
    mask: Option<Vec<u8>>,
) -> Result<EditInputs, EmulatorError> {
    let mut digest = Sha256::new();
    let mut decoded = Vec::new();
    for Upload { param, format, data } in uploads {
        let img = data
            .digest_and_decode(&mut digest, format)
            .map_err(|e| EmulatorError::Internal(format!("reading the input image '{param}': {e}")))?
            .map_err(|e| EmulatorError::UndecodableImage {
                param,
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
    let mask = decode_image(Cursor::new(bytes), ImageFormat::Png)
        .map_err(|_| EmulatorError::Mask(MaskProblem::NotPng))?;
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
