//! A generation on Google's Gemini image models: the target size becomes the nearest
//! `aspectRatio` and the smallest `imageSize` tier that covers it ([`GeminiCaps::plan`]); the
//! native answer is saved beside the output (`NAME.native.png`), verified against the tier
//! table and recorded; then it is brought to the exact target locally (Lanczos3 cover, the
//! crop recorded) and verified again. Both files and both checks are in the output's
//! sidecar (`gemini`), the native one is linked to the output in the ledger
//! (`image->fit`), and the cost is the tier's tokens at the model's price, or the answer's
//! `usageMetadata`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fourk_api::gemini::{GeminiPlan, GenerateContentRequest};
use fourk_api::{Capabilities, ErrorClass, OutputFormat, ProviderKind, RouteLabel, Size, Usage};
use fourk_client::ClientError;
use serde_json::json;

use crate::UsageError;
use crate::save::{self, Delivery, ImageSummary, Job};
use crate::send::{Estimate, Progress, Recorder};
use crate::session::Session;
use crate::sidecar::{ProviderRecord, ResponseMeta, SentRequest};
use crate::spec::GenerateSpec;

/// Whether `model` is one of Gemini's (served by the Gemini API only).
#[must_use]
pub fn is_gemini(caps: &Capabilities, model: &str) -> bool {
    caps.model(model)
        .is_ok_and(|m| m.gemini.is_some() && m.home_provider() == Some(ProviderKind::Gemini))
}

/// The plan for `spec`'s target on its Gemini model.
///
/// # Errors
/// [`UsageError`] without an exact target size, or for a model without a tier table.
pub fn plan(spec: &GenerateSpec, caps: &Capabilities) -> anyhow::Result<GeminiPlan> {
    let model = caps.model(&spec.model).map_err(|e| UsageError(e.to_string()))?;
    let tiers = model
        .gemini
        .as_ref()
        .ok_or_else(|| UsageError(format!("{} has no Gemini tier table", model.id)))?;
    let (w, h) = spec.size.dims().ok_or_else(|| {
        UsageError(format!(
            "{} makes only its own tier sizes, so fourk needs the exact target to choose one and fit it: give --size WIDTHxHEIGHT or a preset (4k, 1080p); nothing was sent",
            model.id
        ))
    })?;
    tiers
        .plan(w, h)
        .ok_or_else(|| UsageError(format!("{} has no tier table to plan {w}x{h} with", model.id)).into())
}

/// A table of `model`'s entry alone, served by OpenAI's shape, for the option checks.
fn as_image_api(caps: &Capabilities, model: &str) -> anyhow::Result<Capabilities> {
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
    // The options are checked by the Image API's rules (quality, format, prompt), on this
    // model's entry as if an OpenAI-shaped provider served it; the size is planned below.
    let image_api = as_image_api(caps, &spec.model)?;
    let (req, _, warnings) = crate::generate::build_request(spec, &image_api)?;
    let model = caps.model(&spec.model).map_err(|e| UsageError(e.to_string()))?;
    for w in &warnings {
        tracing::warn!("{}", w.message);
    }
    let plan = plan(spec, caps)?;
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
    let format = req.effective_format();
    let out = crate::generate::out_path(spec.out.as_deref(), format, 1)?;
    let native = native_path(&out);
    let body = GenerateContentRequest::image(&req.prompt, Vec::new(), &plan);
    let estimate = crate::send::predict(model, &req.prompt, req.size, None, 1, &[]);
    let job = Job {
        route: RouteLabel::GeminiGenerate,
        stream: false,
        endpoint: String::new(),
        provider: ProviderRecord::default(),
        model: model.id.clone(),
        price: model.price,
        request: SentRequest::Gemini(Box::new(body.summarised())),
        inputs: Vec::new(),
        warnings,
        dims: Some(plan.native),
        format: OutputFormat::Png,
        transparent: false,
        base: native.clone(),
        force: spec.force,
    };
    let mut files = crate::generate::request_files(&native, 1, OutputFormat::Png, None);
    files.extend(crate::generate::request_files(&out, 1, format, None));
    crate::outputs::check(
        &files,
        spec.force,
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
    let session = Session::connect_for(&spec.endpoint, caps, Some(&model.id)).await?;
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
    let result = send(&session, rec, job, &body, &req.model, estimate.as_ref()).await;
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
    // The exact target: a Lanczos3 cover of the native answer, verified.
    let fit = crate::pipeline::FitSpec {
        input: native_img.path.clone(),
        to: Size::new(plan.target.0, plan.target.1),
        mode: fourk_imaging::FitMode::Cover,
        gravity: fourk_imaging::Gravity::Center,
        out: out.clone(),
        encode: crate::pipeline::Encode {
            format: Some(format),
            quality: req.output_compression,
            force: spec.force,
            ..crate::pipeline::Encode::default()
        },
    };
    let cancel = rec.cancel_token().clone();
    let summary = tokio::task::spawn_blocking(move || crate::pipeline::fit(&fit, &cancel))
        .await
        .context("the fit task failed")??;
    let native_checks = std::fs::read(&native_img.sidecar)
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .map(|v| v["checks"].clone())
        .unwrap_or_default();
    let record = json!({
        "model": model.id,
        "aspect_ratio": plan.aspect_ratio,
        "image_size": plan.image_size,
        "native": {
            "path": native_img.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "sidecar": native_img.sidecar.file_name().map(|n| n.to_string_lossy().into_owned()),
            "width": plan.native.0,
            "height": plan.native.1,
            "checks": native_checks,
        },
        "target": {"width": plan.target.0, "height": plan.target.1},
        "crop": {"x": plan.crop.0, "y": plan.crop.1, "width": plan.crop.2, "height": plan.crop.3},
        "scale": plan.scale,
        "upscaled": plan.upscaled,
        "filter": "lanczos3",
        "request_id": native_img.request_id,
        "usage": native_img.usage,
        "cost": native_img.cost,
        "tier_table": model.gemini.as_ref().and_then(|g| g.source.clone()),
    });
    crate::sidecar::annotate(&summary.sidecar, "gemini", &record)?;
    let mut fitted = ImageSummary {
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
        request_id: native_img.request_id.clone(),
        thumbnail: None,
    };
    rec.derived(&native_img, &mut fitted, crate::ledger::LinkKind::ImageToFit);
    rec.control().emit(&Progress::Saved {
        path: fitted.path.clone(),
        verified: fitted.verified,
    });
    let ok = fitted.verified;
    images.insert(0, fitted);
    Ok((images, ok))
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
    let path = format!(
        "{}/models/{model}:generateContent",
        fourk_api::gemini::API_VERSION
    );
    let job = Job {
        endpoint: fourk_client::redact_url(&client.config().endpoint(&path)),
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
    let usage = parsed
        .usage_metadata
        .as_ref()
        .map(|u| Usage::new(u.prompt_token_count, 0, u.candidates_token_count));
    let key = crate::send::usage_key(
        model,
        None,
        Some(&format!(
            "{}x{}",
            job.dims.unwrap_or_default().0,
            job.dims.unwrap_or_default().1
        )),
        1,
    );
    let measured = usage.and_then(|u| {
        job.price.map(|p| Estimate {
            key: key.clone(),
            cost: fourk_api::Cost::from_usage(&u, &p, true),
            usage: u,
        })
    });
    rec.answered(attempt, resp.request_id.as_deref(), measured.as_ref());
    rec.control().emit(&Progress::Answered {
        request_id: resp.request_id.clone(),
    });
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
        route: job.route.clone(),
        stream: false,
        endpoint: job.endpoint.clone(),
        provider: job.provider.clone(),
        model: job.model.clone(),
        price: job.price,
        request: job.request.clone(),
        inputs: job.inputs.clone(),
        warnings: job.warnings.clone(),
        dims: job.dims,
        format,
        transparent: false,
        base: if format == OutputFormat::Png {
            job.base.clone()
        } else {
            job.base.with_extension(format.as_str())
        },
        force: job.force,
    };
    let got = Delivery {
        meta: ResponseMeta {
            created: chrono_now(),
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
        usage,
        attempts: resp.attempts,
        responses: None,
    };
    let (mut saved, all_ok) = save::save_all(&job, &got, &[image.data.as_str()], rec.control().thumbnails())?;
    if let Some(u) = &parsed.usage_metadata {
        for img in &saved {
            crate::sidecar::annotate(&img.sidecar, "usage_metadata", u)?;
        }
    }
    let ids = rec.saved(attempt, &saved);
    for (img, id) in saved.iter_mut().zip(ids) {
        img.ledger_id = Some(id);
        img.attempt_id = attempt;
    }
    Ok((saved, all_ok))
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
