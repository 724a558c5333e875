//! What every route shares once an answer is in: collect the images (whole, streamed or from
//! the Responses API), save each atomically, verify it, write its sidecar, and summarise.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use fourk_api::{
    Cost, ImageGenCall, ImageStreamEvent, OutputFormat, Prices, ResponseObject, ResponseStreamEvent, Usage,
    Warning,
};
use fourk_client::{ApiResponse, ClientError, EventStream};
use fourk_imaging::Expect;
use futures_util::StreamExt;
use serde::Serialize;

use crate::sidecar::{self, Checks, InputRecord, ResponseMeta, ResponsesMeta, SentRequest, Sidecar};

/// What `--json` prints for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageSummary {
    /// Where the bytes are (a `.rejected.` name when verification failed).
    pub path: PathBuf,
    /// Actual width.
    pub width: Option<u32>,
    /// Actual height.
    pub height: Option<u32>,
    /// Actual format.
    pub format: Option<String>,
    /// True when the file matched the request and decoded fully.
    pub verified: bool,
    /// The sidecar's path.
    pub sidecar: PathBuf,
    /// Tokens for the whole request.
    pub usage: Option<Usage>,
    /// Dollars for the whole request.
    pub cost: Option<Cost>,
    /// Where the image came from: `openai` or `emulator`.
    pub source: &'static str,
    /// Its row in the run ledger, once recorded.
    #[serde(skip)]
    pub ledger_id: Option<crate::ledger::ImageId>,
    /// The ledger's attempt (the request) it came from, once recorded.
    #[serde(skip)]
    pub attempt_id: Option<crate::ledger::AttemptId>,
    /// SHA-256 of the file as written (empty when not known).
    #[serde(skip)]
    pub sha256: String,
    /// The file's size in bytes (0 when not known).
    #[serde(skip)]
    pub bytes: u64,
    /// The answer's `x-request-id`.
    #[serde(skip)]
    pub request_id: Option<String>,
    /// A thumbnail made from the pixels decoded to verify, when the caller asked for one
    /// ([`crate::send::Control::with_thumbnails`]).
    #[serde(skip)]
    pub thumbnail: Option<std::sync::Arc<fourk_imaging::Thumbnail>>,
}

/// What was asked, independent of the route.
#[derive(Debug, Clone)]
pub struct Job {
    /// What made it: `images.generate`, `images.edit`, `responses`, ...
    pub route: fourk_api::RouteLabel,
    /// Whether the answer is streamed.
    pub stream: bool,
    /// The endpoint URL.
    pub endpoint: String,
    /// The provider it goes to (filled in when it is sent).
    pub provider: crate::sidecar::ProviderRecord,
    /// The image model.
    pub model: String,
    /// The model's prices, for the cost.
    pub price: Option<Prices>,
    /// The body as sent.
    pub request: SentRequest,
    /// Input images of an edit.
    pub inputs: Vec<InputRecord>,
    /// Warnings raised before sending.
    pub warnings: Vec<Warning>,
    /// The explicit size, when there was one.
    pub dims: Option<(u32, u32)>,
    /// The output format asked for.
    pub format: OutputFormat,
    /// Whether a transparent background was asked for.
    pub transparent: bool,
    /// The output path (numbered when there are several images).
    pub base: PathBuf,
    /// Replace files already there (`--force`); otherwise the image's rename is a create-new.
    pub force: bool,
}

/// What came back, besides the image bytes.
#[derive(Debug)]
pub struct Delivery {
    /// Response metadata for the sidecar.
    pub meta: ResponseMeta,
    /// Tokens billed for the request.
    pub usage: Option<Usage>,
    /// Attempts made.
    pub attempts: u32,
    /// Set on the `responses` route.
    pub responses: Option<ResponsesMeta>,
}

/// The path for image `i` of `n`: `hero.png`, or `hero-1.png`, `hero-2.png`...
#[must_use]
pub fn indexed_path(base: &Path, i: usize, n: usize, format: OutputFormat) -> PathBuf {
    let base = with_ext(base, format);
    if n <= 1 {
        return base;
    }
    let stem = base.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
    let ext = base
        .extension()
        .and_then(|s| s.to_str())
        .unwrap_or(format.extension());
    base.with_file_name(format!("{stem}-{}.{ext}", i + 1))
}

fn with_ext(base: &Path, format: OutputFormat) -> PathBuf {
    if base.extension().is_none() {
        base.with_extension(format.extension())
    } else {
        base.to_path_buf()
    }
}

/// `hero.png` -> `hero.partial-K.png`.
#[must_use]
pub fn partial_path(base: &Path, k: u32, format: OutputFormat) -> PathBuf {
    let base = with_ext(base, format);
    let stem = base.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
    let ext = base
        .extension()
        .and_then(|s| s.to_str())
        .unwrap_or(format.extension());
    base.with_file_name(format!("{stem}.partial-{k}.{ext}"))
}

fn no_image(request_id: Option<&str>, what: &str) -> anyhow::Error {
    ClientError::InvalidResponse {
        message: format!("no image in the answer: {what}"),
        request_id: request_id.map(str::to_owned),
    }
    .into()
}

/// The images of a whole Image API answer, borrowed from its body.
///
/// # Errors
/// When the body is not an images response or holds no `b64_json`.
pub fn from_images(resp: &ApiResponse) -> anyhow::Result<(Delivery, Vec<Cow<'_, str>>)> {
    let parsed = resp.images()?;
    let meta = ResponseMeta {
        created: parsed.created,
        request_id: resp.request_id.clone(),
        processing_ms: resp.processing_ms,
        elapsed_ms: resp.elapsed.as_millis(),
        settings: parsed.settings.clone(),
        rate_limits: resp.rate_limits.clone(),
        emulator: resp.emulator.clone(),
    };
    let delivery = Delivery {
        meta,
        usage: parsed.usage,
        attempts: resp.attempts,
        responses: None,
    };
    let images: Vec<Cow<'_, str>> = parsed.data.into_iter().filter_map(|d| d.b64_json).collect();
    if images.is_empty() {
        return Err(no_image(resp.request_id.as_deref(), "no b64_json in data[]"));
    }
    Ok((delivery, images))
}

/// Save every image of a whole Image API answer.
///
/// # Errors
/// As [`from_images`] and [`save_all`].
pub fn save_images_response(job: &Job, resp: &ApiResponse) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let (got, images) = from_images(resp)?;
    let images: Vec<&str> = images.iter().map(AsRef::as_ref).collect();
    save_all(job, &got, &images, None)
}

/// The status line and headers of an answer, whole or streamed, as the sidecar records them.
struct Head<'a> {
    request_id: Option<&'a str>,
    processing_ms: Option<u64>,
    elapsed_ms: u128,
    rate_limits: &'a fourk_client::RateLimits,
    emulator: Option<&'a str>,
    attempts: u32,
}

/// The image of a whole Responses API answer: the first `image_generation_call` result.
///
/// # Errors
/// When the response failed, the call failed (moderation), or no call has a result.
pub fn from_responses(
    resp: &ApiResponse,
    previous: Option<&str>,
    mainline: &str,
) -> anyhow::Result<(Delivery, String)> {
    let obj: ResponseObject = resp.response_object()?;
    let head = Head {
        request_id: resp.request_id.as_deref(),
        processing_ms: resp.processing_ms,
        elapsed_ms: resp.elapsed.as_millis(),
        rate_limits: &resp.rate_limits,
        emulator: resp.emulator.as_deref(),
        attempts: resp.attempts,
    };
    from_response_object(&obj, None, &head, previous, mainline)
}

/// Read a streamed Responses API answer to its end: partial images
/// (`response.image_generation_call.partial_image`) are progress, kept when `keep` names the
/// output base; the final image comes from `response.output_item.done`, or from the output of
/// `response.completed`; the usage and ids from the response the stream ends with.
///
/// # Errors
/// A stream error (possibly billed), a failed or incomplete response, a failed call, or a
/// partial that cannot be saved.
pub async fn from_responses_stream(
    mut events: EventStream<ResponseStreamEvent>,
    keep: Option<(&Path, OutputFormat)>,
    previous: Option<&str>,
    mainline: &str,
    partial_seen: &(dyn Fn(u32, Option<&Path>) + Sync),
) -> anyhow::Result<(Delivery, String)> {
    let head = events.head().clone();
    let mut done_call: Option<ImageGenCall> = None;
    let mut last: Option<ResponseObject> = None;
    while let Some(event) = next_event(&mut events).await {
        let event = event?;
        match event {
            ResponseStreamEvent::ImageGenPartialImage(p) => {
                let path = partial(keep, p.partial_image_index, &p.partial_image_b64)?;
                partial_seen(p.partial_image_index, path.as_deref());
            }
            ResponseStreamEvent::ImageGenGenerating(_) => tracing::info!("the image is being drawn"),
            ResponseStreamEvent::OutputItemDone(d) => {
                if let Some(c) = d.item.image_call() {
                    tracing::info!("image call {} {}", c.id, c.status);
                    done_call = Some(c.clone());
                }
            }
            ResponseStreamEvent::Completed(r)
            | ResponseStreamEvent::Failed(r)
            | ResponseStreamEvent::Incomplete(r) => last = Some(r.response),
            _ => {}
        }
    }
    let rid = head.request_id.as_deref();
    let obj = last.ok_or_else(|| no_image(rid, "the stream ended without a final response event"))?;
    let head = Head {
        request_id: rid,
        processing_ms: head.processing_ms,
        elapsed_ms: head.elapsed.as_millis(),
        rate_limits: &head.rate_limits,
        emulator: head.emulator.as_deref(),
        attempts: head.attempts,
    };
    from_response_object(&obj, done_call.as_ref(), &head, previous, mainline)
}

/// The image and the sidecar's records from a final response object; `done_call` is the
/// image call of `response.output_item.done`, used when the response's output lacks it.
fn from_response_object(
    obj: &ResponseObject,
    done_call: Option<&ImageGenCall>,
    head: &Head<'_>,
    previous: Option<&str>,
    mainline: &str,
) -> anyhow::Result<(Delivery, String)> {
    let rid = head.request_id;
    if let Some(e) = &obj.error {
        return Err(no_image(
            rid,
            &format!(
                "response {} failed: {}{} (possibly billed)",
                obj.id,
                e.message,
                e.code
                    .as_deref()
                    .map(|c| format!(" [code: {c}]"))
                    .unwrap_or_default()
            ),
        ));
    }
    let call = obj
        .image_calls()
        .find(|c| c.result.is_some() || c.error.is_some())
        .or(done_call)
        .ok_or_else(|| {
            let why = obj
                .incomplete_details
                .as_ref()
                .and_then(|d| d.reason.as_deref())
                .map(|r| format!(" (incomplete: {r})"))
                .unwrap_or_default();
            no_image(
                rid,
                &format!("response {} has no image_generation_call result{why}", obj.id),
            )
        })?;
    if let Some(e) = &call.error {
        let details = e
            .moderation_details
            .as_ref()
            .map(|m| format!(" (moderation: {})", m.categories.join(", ")))
            .unwrap_or_default();
        return Err(no_image(
            rid,
            &format!("image call {} failed: {}{details}", call.id, e.message),
        ));
    }
    let b64 = call.result.clone().unwrap_or_default();
    #[allow(clippy::cast_possible_truncation)]
    let created = obj
        .created_at
        .as_ref()
        .and_then(serde_json::Number::as_f64)
        .map_or(0, |t| t as i64);
    let meta = ResponseMeta {
        created,
        request_id: head.request_id.map(str::to_owned),
        processing_ms: head.processing_ms,
        elapsed_ms: head.elapsed_ms,
        settings: call.settings.clone(),
        rate_limits: head.rate_limits.clone(),
        emulator: head.emulator.map(str::to_owned),
    };
    let delivery = Delivery {
        meta,
        usage: obj.tool_usage.as_ref().and_then(|t| t.image_gen),
        attempts: head.attempts,
        responses: Some(ResponsesMeta {
            response_id: obj.id.clone(),
            image_call_id: call.id.clone(),
            revised_prompt: call.revised_prompt.clone(),
            previous_response_id: obj.previous_response_id.clone().or(previous.map(str::to_owned)),
            model: mainline.to_owned(),
        }),
    };
    Ok((delivery, b64))
}

/// The next readable event of a stream: one malformed event does not cost the image that
/// follows, so it is logged and skipped; any other error ends the stream.
async fn next_event<T: fourk_client::StreamEvent>(
    events: &mut EventStream<T>,
) -> Option<Result<T, ClientError>> {
    loop {
        match events.next().await? {
            Err(e @ ClientError::InvalidResponse { .. }) => {
                tracing::warn!("skipping an unreadable event: {e}");
            }
            other => return Some(other),
        }
    }
}

/// Log a partial image, and save it when `keep` names the output base (its path returned).
///
/// # Errors
/// A partial that does not decode or cannot be saved.
fn partial(keep: Option<(&Path, OutputFormat)>, k: u32, b64: &str) -> anyhow::Result<Option<PathBuf>> {
    let path = match keep {
        Some((base, format)) => {
            let path = partial_path(base, k, format);
            let bytes =
                fourk_imaging::decode_b64(b64).with_context(|| format!("decoding partial image {k}"))?;
            fourk_imaging::save_atomic(&path, &bytes).with_context(|| format!("saving partial image {k}"))?;
            tracing::info!("partial image {k} received; saved {}", path.display());
            Some(path)
        }
        None => {
            tracing::info!("partial image {k} received ({} base64 bytes)", b64.len());
            None
        }
    };
    Ok(path)
}

/// Read an Image API stream to its end: log each partial on stderr (and save it when `keep`
/// names the output base), and collect every completed image.
///
/// # Errors
/// A stream error (possibly billed), or a partial that cannot be saved.
pub async fn from_image_stream(
    mut events: EventStream<ImageStreamEvent>,
    keep: Option<(&Path, OutputFormat)>,
    partial_seen: &(dyn Fn(u32, Option<&Path>) + Sync),
) -> anyhow::Result<(Delivery, Vec<String>)> {
    let head = events.head().clone();
    let mut images = Vec::new();
    let mut usage = None;
    let mut last = None;
    while let Some(event) = next_event(&mut events).await {
        let event = event?;
        if let Some(p) = event.partial() {
            let path = partial(keep, p.partial_image_index, &p.b64_json)?;
            partial_seen(p.partial_image_index, path.as_deref());
        } else if let Some(c) = event.completed() {
            tracing::info!("image {} completed", images.len() + 1);
            usage = usage.or(c.usage);
            images.push(c.b64_json.clone());
            last = Some(c.clone());
        }
    }
    if images.is_empty() {
        return Err(no_image(
            head.request_id.as_deref(),
            "the stream ended without a completed event",
        ));
    }
    let last = last.unwrap_or_else(|| unreachable!("images is not empty"));
    let meta = ResponseMeta {
        created: last.created_at.unwrap_or_default(),
        request_id: head.request_id.clone(),
        processing_ms: head.processing_ms,
        elapsed_ms: head.elapsed.as_millis(),
        settings: last.settings,
        rate_limits: head.rate_limits.clone(),
        emulator: head.emulator.clone(),
    };
    let delivery = Delivery {
        meta,
        usage,
        attempts: head.attempts,
        responses: None,
    };
    Ok((delivery, images))
}

/// Save, verify and record each image. Returns one summary per image and whether all
/// verified; a rejected image is kept under its `.rejected.` name and logged.
///
/// # Errors
/// IO errors while saving.
pub fn save_all(
    job: &Job,
    got: &Delivery,
    images: &[&str],
    thumbnails: Option<u32>,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let cost = match (got.usage, job.price) {
        (Some(u), Some(p)) => Some(Cost::from_usage(&u, &p, true)),
        _ => None,
    };
    let expect = Expect {
        width: job.dims.map(|d| d.0),
        height: job.dims.map(|d| d.1),
        format: Some(job.format),
        alpha: job.transparent.then_some(true),
        thumbnail: thumbnails,
    };
    let request_id = got.meta.request_id.as_deref().unwrap_or("unknown");
    let mut out = Vec::new();
    let mut all_ok = true;
    for (i, b64) in images.iter().enumerate() {
        let path = indexed_path(&job.base, i, images.len(), job.format);
        let replace = if job.force {
            fourk_imaging::Replace::Yes
        } else {
            fourk_imaging::Replace::No
        };
        let mut saved = fourk_imaging::save_verified_as(&path, b64, &expect, replace).with_context(|| {
            format!(
                "saving image {} of {} to {} (request {request_id})",
                i + 1,
                images.len(),
                path.display()
            )
        })?;
        if saved.rejected {
            all_ok = false;
            let failed: Vec<String> = saved
                .report
                .checks
                .iter()
                .filter(|c| !c.pass)
                .map(|c| format!("{}: requested {}, got {}", c.name, c.expected, c.actual))
                .chain(
                    saved
                        .report
                        .decode_error
                        .iter()
                        .map(|e| format!("corrupt image: {e}")),
                )
                .collect();
            tracing::error!(
                "image {} does not match the request ({}); kept as {} (request {request_id})",
                i + 1,
                failed.join("; "),
                saved.path.display(),
            );
        }
        let thumbnail = saved.report.thumbnail.take().map(std::sync::Arc::new);
        let checks = Checks::from_report(job.dims, job.format, saved.report);
        let car = Sidecar {
            sidecar_version: sidecar::SIDECAR_VERSION,
            fourk_version: env!("CARGO_PKG_VERSION"),
            image: saved
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            index: i,
            route: job.route.clone(),
            stream: job.stream,
            attempts: got.attempts,
            endpoint: job.endpoint.clone(),
            provider: job.provider.clone(),
            model: job.model.clone(),
            request: job.request.clone(),
            inputs: job.inputs.clone(),
            response: got.meta.clone(),
            responses: got.responses.clone(),
            usage: got.usage,
            cost,
            checks: checks.clone(),
            warnings: job.warnings.clone(),
        };
        let sidecar_path = sidecar::write(&saved.path, &car)?;
        out.push(ImageSummary {
            path: saved.path,
            width: checks.actual_width,
            height: checks.actual_height,
            format: checks.actual_format,
            verified: checks.verified,
            sidecar: sidecar_path,
            usage: got.usage,
            cost,
            source: if got.meta.emulator.is_some() {
                "emulator"
            } else {
                "openai"
            },
            ledger_id: None,
            attempt_id: None,
            sha256: checks.sha256,
            bytes: checks.bytes,
            request_id: got.meta.request_id.clone(),
            thumbnail,
        });
    }
    Ok((out, all_ok))
}
