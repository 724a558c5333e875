//! A generation or an edit on Google's Gemini image models (an edit's images go inline after
//! the prompt; Gemini has no mask): the target size becomes the nearest `aspectRatio` and the
//! smallest `imageSize` tier that covers it
//! ([`GeminiCaps::plan`](fourk_api::gemini::GeminiCaps::plan)); the native answer is saved
//! beside the output (`NAME.native.png`), verified against the tier table and recorded; then
//! it is brought to the exact target locally (Lanczos3 cover, the crop recorded) and verified
//! again. Both files and both checks are in the output's sidecar (`gemini`), the native one is
//! linked to the output in the ledger (`image->fit`), and the cost is the tier's tokens at the
//! model's price, or the answer's `usageMetadata`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fourk_api::gemini::{GenerateContentRequest, GenerateContentResponse};
use fourk_api::{Capabilities, ErrorClass, OutputFormat, ProviderKind, RouteLabel, Size, Usage};
use fourk_client::ClientError;
use serde_json::json;

use crate::UsageError;
use crate::save::{self, Delivery, ImageSummary, Job};
use crate::send::{Estimate, Progress, Recorder};
use crate::session::Session;
use crate::sidecar::{ProviderRecord, ResponseMeta, SentRequest};
use crate::spec::{EditSpec, GenerateSpec};

/// Whether `model` is one of Gemini's (served by the Gemini API only).
#[must_use]
pub fn is_gemini(caps: &Capabilities, model: &str) -> bool {
    caps.model(model)
        .is_ok_and(|m| m.gemini.is_some() && m.home_provider() == Some(ProviderKind::Gemini))
}

/// A table of `model`'s entry alone, served by OpenAI's shape, for the option checks.
pub(crate) fn as_image_api(caps: &Capabilities, model: &str) -> anyhow::Result<Capabilities> {
    let mut m = caps.model(model).map_err(|e| UsageError(e.to_string()))?.clone();
    m.providers = vec![ProviderKind::Openai];
    Ok(Capabilities { models: vec![m] })
}

/// `out.png` -> `out.native.png`: where Gemini's native answer is kept.
#[must_use]
pub fn native_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("fourk");
    out.with_file_name(format!("{stem}.native.png"))
}

pub use fourk_api::gemini::{MAX_INLINE_REQUEST_BYTES, MAX_REFERENCE_IMAGES};

/// Why a request with `images` inline would be over [`MAX_INLINE_REQUEST_BYTES`].
pub(crate) fn too_large(images: &[fourk_api::gemini::Blob], prompt: &str) -> Option<String> {
    let inline: usize = images.iter().map(|b| b.data.len()).sum::<usize>() + prompt.len();
    (inline > MAX_INLINE_REQUEST_BYTES).then(|| {
        format!(
            "image: the reference images make a {:.1} MB request; Gemini takes at most {} MB inline; send fewer or smaller images (fourk convert IMAGE --format jpeg --quality 85 --out SMALL.jpg makes one smaller)",
            inline as f64 / 1e6,
            MAX_INLINE_REQUEST_BYTES / (1024 * 1024)
        )
    })
}

/// One Gemini request as a generation or an edit asks it.
struct Ask<'a> {
    model: &'a fourk_api::ModelCaps,
    /// The id as the user gave it (a `-preview` id is a model of its own at Google).
    id: &'a str,
    prompt: String,
    target: (u32, u32),
    format: OutputFormat,
    compression: Option<u8>,
    out: Option<&'a Path>,
    force: bool,
    endpoint: &'a crate::session::Endpoint,
    warnings: Vec<fourk_api::Warning>,
    /// Reference images, sent inline after the prompt.
    images: Vec<fourk_api::gemini::Blob>,
    /// Their records for the sidecar.
    inputs: Vec<crate::sidecar::InputRecord>,
}

/// What a Gemini request is asked for that `generateContent` has no counterpart for.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Asked {
    pub(crate) n: u8,
    pub(crate) stream: bool,
    pub(crate) responses: bool,
    pub(crate) transparent: bool,
    pub(crate) mask: bool,
    pub(crate) images: usize,
}

impl Asked {
    /// Each option Gemini cannot honour, with its fix: refused before anything is sent (a
    /// silently dropped option would deliver something other than was asked).
    pub(crate) fn unsupported(self) -> Vec<String> {
        let mut why = Vec::new();
        if self.n > 1 {
            why.push(
                "n: Gemini answers one image a request; ask once per image (a batch file runs many)"
                    .to_owned(),
            );
        }
        if self.stream {
            why.push("stream: Gemini's image answers do not stream partial images; drop --stream".to_owned());
        }
        if self.responses {
            why.push("route: the Responses API is OpenAI's; drop --route responses".to_owned());
        }
        if self.transparent {
            why.push("background: Gemini returns opaque images; drop the transparent background, or use an OpenAI model with --transparent".to_owned());
        }
        if self.mask {
            why.push(
                "mask: Gemini takes no mask; drop it and say in the prompt what to change and where"
                    .to_owned(),
            );
        }
        if self.images > MAX_REFERENCE_IMAGES {
            why.push(format!(
                "image: Gemini takes 1 to {MAX_REFERENCE_IMAGES} reference images; got {}",
                self.images
            ));
        }
        why
    }

    fn refuse(self, model: &str) -> anyhow::Result<()> {
        let why = self.unsupported();
        if why.is_empty() {
            return Ok(());
        }
        Err(UsageError(format!(
            "{model} is a Gemini model, and {} of the options cannot be sent to it; nothing was sent:\n  {}",
            why.len(),
            why.join("\n  ")
        ))
        .into())
    }
}

/// Generate on Gemini, save and verify the native answer, fit it to the exact target and
/// verify that; see the module.
///
/// # Errors
/// Usage errors before sending (the request's rules, a provider that does not serve the
/// model, existing files); client errors; a 200 without an image (a blocked prompt) as a
/// moderation error; IO errors.
pub async fn generate(
    spec: &GenerateSpec,
    caps: &Capabilities,
    rec: &Recorder,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    run(generate_ask(spec, caps)?, caps, rec).await
}

/// Edit on Gemini: the input images go inline after the prompt (Gemini has no mask; the
/// prompt says what to change). The target is `--size`, else the first input's size; the
/// rest is [`generate`]'s path.
///
/// # Errors
/// As [`generate`]; a mask, more than [`MAX_REFERENCE_IMAGES`] images or a request over
/// [`MAX_INLINE_REQUEST_BYTES`] are usage errors before sending.
pub async fn edit(
    spec: &EditSpec,
    caps: &Capabilities,
    rec: &Recorder,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    run(edit_ask(spec, caps)?, caps, rec).await
}

/// The dry run of a generation on Gemini: every local check, the `generateContent` body as it
/// would leave and its estimate; nothing sent.
///
/// # Errors
/// As [`generate`] before sending.
pub fn dry_run_generate(
    spec: &GenerateSpec,
    caps: &Capabilities,
) -> anyhow::Result<crate::image_api::DryRun> {
    dry_run(generate_ask(spec, caps)?)
}

/// [`dry_run_generate`] for an edit (the inline images summarised).
///
/// # Errors
/// As [`edit`] before sending.
pub fn dry_run_edit(spec: &EditSpec, caps: &Capabilities) -> anyhow::Result<crate::image_api::DryRun> {
    dry_run(edit_ask(spec, caps)?)
}

fn dry_run(ask: Ask<'_>) -> anyhow::Result<crate::image_api::DryRun> {
    let plan = plan_of(&ask)?;
    let estimate = estimate_of(&ask);
    let body = GenerateContentRequest::image(&ask.prompt, ask.images, &plan);
    Ok(crate::image_api::DryRun {
        body: serde_json::to_value(body.summarised())?,
        estimate,
        warnings: ask.warnings,
    })
}

/// The ratio and tier for the ask's target.
fn plan_of(ask: &Ask<'_>) -> anyhow::Result<fourk_api::gemini::GeminiPlan> {
    let model = ask.model;
    let (w, h) = ask.target;
    model
        .gemini
        .as_ref()
        .and_then(|g| g.plan(w, h))
        .ok_or_else(|| UsageError(format!("{} has no tier table to plan {w}x{h} with", model.id)).into())
}

fn estimate_of(ask: &Ask<'_>) -> Option<Estimate> {
    let (w, h) = ask.target;
    let input_dims: Vec<(u32, u32)> = ask.inputs.iter().map(|i| (i.width, i.height)).collect();
    crate::send::predict(
        ask.model,
        &ask.prompt,
        Some(Size::new(w, h)),
        None,
        1,
        &input_dims,
    )
}

fn generate_ask<'a>(spec: &'a GenerateSpec, caps: &'a Capabilities) -> anyhow::Result<Ask<'a>> {
    Asked {
        n: spec.n.unwrap_or(1),
        stream: spec.stream.stream,
        responses: spec.route.route == crate::route::Route::Responses,
        transparent: spec.transparency.transparent
            || spec.image.background == Some(fourk_api::Background::Transparent),
        ..Asked::default()
    }
    .refuse(&spec.model)?;
    // The options are checked by the Image API's rules (quality, format, prompt), on this
    // model's entry as if an OpenAI-shaped provider served it; the size is planned below.
    let image_api = as_image_api(caps, &spec.model)?;
    let (req, _, warnings) = crate::image_api::build_request(spec, &image_api)?;
    let model = caps.model(&spec.model).map_err(|e| UsageError(e.to_string()))?;
    let target = spec.size.dims().ok_or_else(|| {
        UsageError(format!(
            "{} makes only its own tier sizes, so fourk needs the exact target to choose one and fit it: give --size WIDTHxHEIGHT or a preset (4k, 2k, square); nothing was sent",
            model.id
        ))
    })?;
    let ask = Ask {
        model,
        id: &spec.model,
        prompt: req.prompt.clone(),
        target,
        format: req.effective_format(),
        compression: req.output_compression,
        out: spec.out.as_deref(),
        force: spec.force,
        endpoint: &spec.endpoint,
        warnings,
        images: Vec::new(),
        inputs: Vec::new(),
    };
    Ok(ask)
}

fn edit_ask<'a>(spec: &'a EditSpec, caps: &'a Capabilities) -> anyhow::Result<Ask<'a>> {
    Asked {
        n: spec.n.unwrap_or(1),
        stream: spec.stream.stream,
        responses: spec.route.route == crate::route::Route::Responses,
        transparent: spec.image.background == Some(fourk_api::Background::Transparent),
        mask: spec.mask.is_some(),
        images: spec.images.len(),
    }
    .refuse(&spec.model)?;
    let (loaded, _) = crate::edit_request::load_inputs(spec)?;
    let image_api = as_image_api(caps, &spec.model)?;
    let (req, job) = crate::edit_request::build_request(spec, &image_api, loaded.len())?;
    let model = caps.model(&spec.model).map_err(|e| UsageError(e.to_string()))?;
    let target = match (spec.size.dims(), loaded.first()) {
        (Some(d), _) => d,
        (None, Some(first)) => (first.width, first.height),
        (None, None) => return Err(UsageError("image: an edit needs an input image".into()).into()),
    };
    let images: Vec<fourk_api::gemini::Blob> = loaded
        .iter()
        .map(|l| fourk_api::gemini::Blob::of(&l.image))
        .collect();
    if let Some(why) = too_large(&images, &req.prompt) {
        return Err(UsageError(format!("{why}; nothing was sent")).into());
    }
    let inputs = crate::edit_request::records(&loaded, None);
    let ask = Ask {
        model,
        id: &spec.model,
        prompt: req.prompt.clone(),
        target,
        format: req.effective_format(),
        compression: req.output_compression,
        out: spec.out.as_deref(),
        force: spec.force,
        endpoint: &spec.endpoint,
        warnings: job.warnings,
        images,
        inputs,
    };
    Ok(ask)
}

/// The path both share: plan, check the files, send, save and verify the native answer, fit
/// and verify the target.
async fn run(ask: Ask<'_>, caps: &Capabilities, rec: &Recorder) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let model = ask.model;
    for w in &ask.warnings {
        tracing::warn!("{}", w.message);
    }
    let plan = plan_of(&ask)?;
    let estimate = estimate_of(&ask);
    if plan.upscaled {
        tracing::warn!(
            "no {} tier covers {}x{}: the largest ({} at {}, {}x{}) is enlarged to it",
            model.id,
            plan.target.0,
            plan.target.1,
            plan.image_size,
            plan.aspect_ratio,
            plan.native.0,
            plan.native.1
        );
    }
    let format = ask.format;
    let out = crate::image_api::out_path(ask.out, format, 1)?;
    let native = native_path(&out);
    let body = GenerateContentRequest::image(&ask.prompt, ask.images, &plan);
    let job = Job {
        route: RouteLabel::GeminiGenerate,
        stream: false,
        endpoint: String::new(),
        provider: ProviderRecord::default(),
        model: model.id.clone(),
        price: model.price,
        request: SentRequest::Gemini(Box::new(body.summarised())),
        inputs: ask.inputs,
        warnings: ask.warnings,
        dims: Some(plan.native),
        format: OutputFormat::Png,
        transparent: false,
        base: native.clone(),
        force: ask.force,
    };
    let mut files = crate::image_api::request_files(&native, 1, OutputFormat::Png, None);
    files.extend(crate::image_api::request_files(&out, 1, format, None));
    crate::outputs::check(
        &files,
        ask.force,
        crate::outputs::worst_image_bytes(Some(plan.native)) * 2,
    )?;
    if let Some(e) = &estimate {
        tracing::info!(
            "requesting {} at {} from {} ({}x{} native, then fitted to {}x{}; ~${:.3})",
            plan.image_size,
            plan.aspect_ratio,
            model.id,
            plan.native.0,
            plan.native.1,
            plan.target.0,
            plan.target.1,
            e.cost.usd
        );
    }
    let session = Session::connect_for(ask.endpoint, caps, Some(&model.id)).await?;
    if session.provider() != ProviderKind::Gemini {
        let p = session.provider();
        session.close().await;
        return Err(UsageError(format!(
            "{} is served by the Gemini API, not by the {p} provider; drop --provider (or give --provider gemini) and set GEMINI_API_KEY; nothing was sent",
            model.id
        ))
        .into());
    }
    // The id the user gave (a `-preview` id is a model of its own at Google).
    let result = send(&session, rec, job, &body, ask.id, estimate.as_ref()).await;
    session.close().await;
    let (mut images, native_ok) = result?;
    let native_img = images
        .first()
        .cloned()
        .context("the native image was not saved")?;
    if !native_ok {
        return Ok((images, false));
    }
    rec.control().check()?;
    let fit = Fit {
        model: model.clone(),
        plan,
        out,
        format,
        compression: ask.compression,
        force: ask.force,
    };
    let cancel = rec.cancel_token().clone();
    let native_for_fit = native_img.clone();
    let mut fitted = tokio::task::spawn_blocking(move || fit.run(&native_for_fit, &cancel))
        .await
        .context("the fit task failed")??;
    rec.derived(&native_img, &mut fitted, crate::ledger::LinkKind::ImageToFit);
    rec.control().emit(&Progress::Saved {
        path: fitted.path.clone(),
        verified: fitted.verified,
    });
    let ok = fitted.verified;
    images.insert(0, fitted);
    Ok((images, ok))
}

/// The local half of a Gemini delivery: the verified native answer brought to the exact
/// target (a Lanczos3 cover), verified again, with the whole route in its sidecar.
pub(crate) struct Fit {
    pub(crate) model: fourk_api::ModelCaps,
    pub(crate) plan: fourk_api::gemini::GeminiPlan,
    /// The output at the target size.
    pub(crate) out: PathBuf,
    pub(crate) format: OutputFormat,
    pub(crate) compression: Option<u8>,
    pub(crate) force: bool,
}

impl Fit {
    /// Fit `native` (saved and verified) to the target; the output's summary.
    ///
    /// # Errors
    /// Decode, resize, encode and IO errors; cancellation.
    pub(crate) fn run(
        &self,
        native: &ImageSummary,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<ImageSummary> {
        let plan = &self.plan;
        let spec = crate::pipeline::FitSpec {
            input: native.path.clone(),
            to: Size::new(plan.target.0, plan.target.1),
            mode: fourk_imaging::FitMode::Cover,
            gravity: fourk_imaging::Gravity::Center,
            out: self.out.clone(),
            encode: crate::pipeline::Encode {
                format: Some(self.format),
                quality: self.compression,
                force: self.force,
                ..crate::pipeline::Encode::default()
            },
        };
        let summary = crate::pipeline::fit(&spec, cancel)?;
        let native_checks = std::fs::read(&native.sidecar)
            .ok()
            .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
            .map(|v| v["checks"].clone())
            .unwrap_or_default();
        let record = json!({
            "model": self.model.id,
            "aspect_ratio": plan.aspect_ratio,
            "image_size": plan.image_size,
            "native": {
                "path": native.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                "sidecar": native.sidecar.file_name().map(|n| n.to_string_lossy().into_owned()),
                "width": plan.native.0,
                "height": plan.native.1,
                "checks": native_checks,
            },
            "target": {"width": plan.target.0, "height": plan.target.1},
            "crop": {"x": plan.crop.0, "y": plan.crop.1, "width": plan.crop.2, "height": plan.crop.3},
            "scale": plan.scale,
            "upscaled": plan.upscaled,
            "filter": "lanczos3",
            "request_id": native.request_id,
            "usage": native.usage,
            "cost": native.cost,
            "tier_table": self.model.gemini.as_ref().and_then(|g| g.source.clone()),
        });
        crate::sidecar::annotate(&summary.sidecar, "gemini", &record)?;
        Ok(ImageSummary {
            path: summary.path.clone(),
            width: Some(summary.width),
            height: Some(summary.height),
            format: Some(summary.format.as_str().to_owned()),
            verified: summary.verified,
            sidecar: summary.sidecar.clone(),
            usage: None,
            cost: None,
            source: "gemini.fit",
            ledger_id: None,
            attempt_id: None,
            sha256: String::new(),
            bytes: summary.bytes,
            request_id: native.request_id.clone(),
            thumbnail: None,
        })
    }
}

/// The one request: on record before it leaves, its answer saved and verified as the native
/// image, the measured usage on record.
async fn send(
    session: &Session,
    rec: &Recorder,
    job: Job,
    body: &GenerateContentRequest,
    model: &str,
    estimate: Option<&Estimate>,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let client = &session.client;
    let job = Job {
        endpoint: fourk_client::redact_url(
            &client
                .config()
                .endpoint(&fourk_api::gemini::generate_content_path(model)),
        ),
        provider: ProviderRecord::of(client.config()),
        ..job
    };
    let route = job.route.clone();
    crate::send::on_record(rec, &route, ProviderKind::Gemini, estimate, |attempt| {
        receive(client, rec, attempt, &job, body, model)
    })
    .await
}

async fn receive(
    client: &fourk_client::Client,
    rec: &Recorder,
    attempt: Option<crate::ledger::AttemptId>,
    job: &Job,
    body: &GenerateContentRequest,
    model: &str,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let resp = client.generate_content(model, body).await?;
    let parsed = resp.gemini()?;
    let measured = measured(job, &parsed);
    rec.answered(attempt, resp.request_id.as_deref(), measured.as_ref());
    rec.control().emit(&Progress::Answered {
        request_id: resp.request_id.clone(),
    });
    let (mut saved, all_ok) = save_native(job, &resp, &parsed, rec.control().thumbnails())?;
    let ids = rec.saved(attempt, &saved);
    for (img, id) in saved.iter_mut().zip(ids) {
        img.ledger_id = Some(id);
        img.attempt_id = attempt;
    }
    Ok((saved, all_ok))
}

/// The usage an answer reports (`usageMetadata`), priced at the job's model.
pub(crate) fn measured(job: &Job, parsed: &GenerateContentResponse) -> Option<Estimate> {
    let usage = usage_of(parsed)?;
    let (w, h) = job.dims.unwrap_or_default();
    let key = crate::send::usage_key(&job.model, None, Some(&format!("{w}x{h}")), 1);
    job.price.map(|p| Estimate {
        key,
        cost: fourk_api::Cost::from_usage(&usage, &p, true),
        usage,
    })
}

/// The usage an answer reports, in OpenAI's terms.
pub(crate) fn usage_of(parsed: &GenerateContentResponse) -> Option<Usage> {
    parsed
        .usage_metadata
        .as_ref()
        .map(|u| Usage::new(u.prompt_token_count, 0, u.candidates_token_count))
}

/// A whole Gemini delivery without the ledger (the batch runner records it): the answer
/// (`parsed`, read once by the caller) has its image saved and verified as the native file,
/// then fitted to the target and verified. The fitted output comes first, then the native
/// image.
///
/// # Errors
/// As [`save_native`] and [`Fit::run`].
pub(crate) fn deliver(
    job: &Job,
    resp: &fourk_client::ApiResponse,
    parsed: &GenerateContentResponse,
    fit: &Fit,
    cancel: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let (mut images, ok) = save_native(job, resp, parsed, None)?;
    if !ok {
        return Ok((images, false));
    }
    let native = images
        .first()
        .cloned()
        .context("the native image was not saved")?;
    let fitted = fit.run(&native, cancel)?;
    let ok = fitted.verified;
    images.insert(0, fitted);
    Ok((images, ok))
}

/// Save the answer's image as `job` (the native file), verified against the tier's size,
/// with `usageMetadata` in its sidecar. No ledger writes: the caller records.
///
/// # Errors
/// A 200 without an image (a blocked prompt, a safety stop, text instead) as a typed client
/// error (moderation when blocked); save and IO errors.
pub(crate) fn save_native(
    job: &Job,
    resp: &fourk_client::ApiResponse,
    parsed: &GenerateContentResponse,
    thumbnails: Option<u32>,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let Some(image) = parsed.image() else {
        // A 200 without an image: a blocked prompt, a safety stop, or text instead.
        let why = parsed.why_no_image();
        let blocked = parsed.prompt_feedback.is_some()
            || parsed
                .candidates
                .first()
                .and_then(|c| c.finish_reason.as_deref())
                .is_some_and(|f| f.contains("SAFETY") || f.contains("PROHIBITED") || f == "BLOCKLIST");
        return Err(ClientError::Api {
            status: resp.status,
            provider: ProviderKind::Gemini,
            class: if blocked {
                ErrorClass::ModerationBlocked
            } else {
                ErrorClass::Other
            },
            error: Some(Box::new(fourk_api::ApiError {
                message: why,
                kind: "gemini".into(),
                param: None,
                code: parsed
                    .prompt_feedback
                    .as_ref()
                    .and_then(|f| f.block_reason.clone())
                    .or_else(|| parsed.candidates.first().and_then(|c| c.finish_reason.clone())),
                inner_error: None,
            })),
            request_id: resp.request_id.clone(),
            retry_after: None,
        }
        .into());
    };
    if image.mime_type != "image/png" {
        tracing::warn!(
            "Gemini answered {}, not PNG; it is saved and checked as such",
            image.mime_type
        );
    }
    let format = match image.mime_type.as_str() {
        "image/jpeg" => OutputFormat::Jpeg,
        "image/webp" => OutputFormat::Webp,
        _ => OutputFormat::Png,
    };
    let job = Job {
        format,
        base: if format == OutputFormat::Png {
            job.base.clone()
        } else {
            job.base.with_extension(format.as_str())
        },
        ..job.clone()
    };
    let got = Delivery {
        meta: ResponseMeta {
            created: i64::try_from(crate::outputs::since_epoch().as_secs()).unwrap_or(i64::MAX),
            request_id: resp.request_id.clone(),
            processing_ms: resp.processing_ms,
            elapsed_ms: resp.elapsed.as_millis(),
            settings: fourk_api::ImageSettings {
                size: Some(format!(
                    "{}x{}",
                    job.dims.unwrap_or_default().0,
                    job.dims.unwrap_or_default().1
                )),
                output_format: Some(format.as_str().to_owned()),
                ..fourk_api::ImageSettings::default()
            },
            rate_limits: resp.rate_limits.clone(),
            emulator: resp.emulator.clone(),
        },
        usage: usage_of(parsed),
        attempts: resp.attempts,
        responses: None,
    };
    let (saved, all_ok) = save::save_all(&job, &got, &[image.data.as_str()], thumbnails)?;
    if let Some(u) = &parsed.usage_metadata {
        for img in &saved {
            crate::sidecar::annotate(&img.sidecar, "usage_metadata", u)?;
        }
    }
    Ok((saved, all_ok))
}
