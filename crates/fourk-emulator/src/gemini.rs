//! Google's Gemini API image route: `POST /v1beta/models/{model}:generateContent` (and the
//! `/v1/` path google-genai uses by default). The key in `x-goog-api-key` or `?key=`; the
//! request's `contents`, `responseModalities` and `imageConfig` (`aspectRatio`, `imageSize`)
//! checked against the model's tier table; the answer an inline PNG at the tier's native
//! size (5504x3072 for 4K at 16:9 on Nano Banana Pro), with `usageMetadata`; a blocked prompt
//! a 200 with `promptFeedback.blockReason`; errors in Gemini's envelope
//! (`{"error": {"code", "message", "status", "details"}}`). An edit's first inline image,
//! fitted to the native size, is the picture the procedural label is drawn on.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use fourk_api::gemini::{
    Blob, Candidate, Content, GeminiErrorEnvelope, GenerateContentRequest, GenerateContentResponse,
    ModalityTokens, Part, PromptFeedback, UsageMetadata,
};
use fourk_api::{ModelCaps, OutputFormat};
use serde_json::json;

use crate::error::EmulatorError;
use crate::policy::{self, Verdict};
use crate::state::{EmulatorState, RequestContext};

/// google-genai's default API version is `v1`: `/v1/models/{model}:generateContent` is
/// the same route as `/v1beta/...`, rewritten before routing (the request log keeps the path
/// the client used).
pub(crate) async fn v1_alias(mut req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    if let Some(target) = path.strip_prefix("/v1/models/")
        && target.ends_with(":generateContent")
    {
        let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
        let arrived = path.to_owned();
        if let Ok(u) = format!("/v1beta/models/{target}{query}").parse::<Uri>() {
            *req.uri_mut() = u;
            req.extensions_mut().insert(crate::state::ArrivedOn(arrived));
        }
    }
    next.run(req).await
}

/// A Gemini error answer.
struct GeminiFailure(StatusCode, GeminiErrorEnvelope);

impl GeminiFailure {
    fn new(status: StatusCode, name: &str, message: impl Into<String>) -> Self {
        Self(status, GeminiErrorEnvelope::new(status.as_u16(), name, message))
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }
}

impl IntoResponse for GeminiFailure {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

/// An emulator error answered in Gemini's envelope (the body guard's `413` and `408` on
/// Gemini's route).
pub(crate) fn error_response(e: EmulatorError) -> Response {
    GeminiFailure::from(e).into_response()
}

impl From<EmulatorError> for GeminiFailure {
    fn from(e: EmulatorError) -> Self {
        let status = e.status();
        let name = match status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            408 | 504 => "DEADLINE_EXCEEDED",
            413 => "INVALID_ARGUMENT",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        };
        Self::new(status, name, e.to_string())
    }
}

/// The key: `x-goog-api-key`, else `?key=`; checked against `--require-key` when set.
fn authorize(state: &EmulatorState, headers: &HeaderMap, uri: &Uri) -> Result<(), GeminiFailure> {
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            uri.query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=")))
                .map(str::to_owned)
        })
        .filter(|k| !k.trim().is_empty());
    let Some(key) = key else {
        return Err(GeminiFailure::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        ));
    };
    match &state.config.require_key {
        Some(want) if want != &key => {
            let mut env = GeminiErrorEnvelope::new(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
            );
            env.error.details.push(json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }));
            Err(GeminiFailure(StatusCode::BAD_REQUEST, env))
        }
        _ => Ok(()),
    }
}

/// The handler.
pub(crate) async fn generate_content(
    State(state): State<Arc<EmulatorState>>,
    Extension(ctx): Extension<Arc<RequestContext>>,
    Path(target): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match answer(&state, &ctx, &target, &uri, &headers, body).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

fn model_of<'s>(state: &'s EmulatorState, target: &str) -> Result<&'s ModelCaps, GeminiFailure> {
    let not_found = |m: &str| {
        GeminiFailure::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "models/{m} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."
            ),
        )
    };
    let Some(model) = target.strip_suffix(":generateContent") else {
        return Err(not_found(target));
    };
    state
        .config
        .capabilities
        .model(model)
        .ok()
        .filter(|m| m.gemini.is_some())
        .ok_or_else(|| not_found(model))
}

async fn answer(
    state: &Arc<EmulatorState>,
    ctx: &RequestContext,
    target: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GeminiFailure> {
    authorize(state, headers, uri)?;
    let caps = model_of(state, target)?;
    let tiers = caps
        .gemini
        .clone()
        .unwrap_or_else(|| unreachable!("model_of checked it"));
    let bytes = body.map_err(|r| GeminiFailure::invalid(r.body_text()))?;
    let req: GenerateContentRequest = serde_json::from_slice(&bytes)
        .map_err(|e| GeminiFailure::invalid(format!("Invalid JSON payload received. {e}")))?;
    let prompt = req.prompt();
    if req.contents.is_empty() || prompt.trim().is_empty() {
        return Err(GeminiFailure::invalid(
            "* GenerateContentRequest.contents: contents is not specified (a text part with the prompt is needed)",
        ));
    }
    ctx.set_prompt(&prompt);
    let config = req.generation_config.clone().unwrap_or_default();
    if !config
        .response_modalities
        .iter()
        .any(|m| m.eq_ignore_ascii_case("IMAGE"))
    {
        return Err(GeminiFailure::invalid(
            "generationConfig.responseModalities must include IMAGE for an image model (this emulator renders images only)",
        ));
    }
    let image_config = config.image_config.unwrap_or_default();
    let ratio = image_config.aspect_ratio.unwrap_or_else(|| "1:1".to_owned());
    let tier = image_config.image_size.unwrap_or_else(|| "1K".to_owned());
    if !tiers.sizes.contains_key(&ratio) {
        return Err(GeminiFailure::invalid(format!(
            "* GenerateContentRequest.generation_config.image_config.aspect_ratio: unsupported aspect ratio '{ratio}' for {}; supported: {}",
            caps.id,
            tiers.sizes.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let Some((w, h)) = tiers.native(&ratio, &tier) else {
        return Err(GeminiFailure::invalid(format!(
            "* GenerateContentRequest.generation_config.image_config.image_size: unsupported image size '{tier}' for {}; supported: {} (uppercase K)",
            caps.id,
            tiers.tiers.join(", ")
        )));
    };
    let prompt_tokens = fourk_api::cost::estimate_text_tokens(&prompt);
    let inputs: Vec<Blob> = req
        .contents
        .iter()
        .flat_map(|c| c.parts.iter())
        .filter_map(|p| p.inline_data.clone())
        .collect();
    if inputs.len() > fourk_api::gemini::MAX_REFERENCE_IMAGES {
        return Err(GeminiFailure::invalid(format!(
            "{} takes at most {} input images; the request has {}.",
            caps.id,
            fourk_api::gemini::MAX_REFERENCE_IMAGES,
            inputs.len()
        )));
    }
    // 560 tokens per input image (Gemini 3 Pro Image's documented image input).
    let input_tokens = prompt_tokens + 560 * inputs.len() as u64;
    if policy::judge(&state.config, &prompt) == Verdict::ModerationBlocked {
        let resp = GenerateContentResponse {
            prompt_feedback: Some(PromptFeedback {
                block_reason: Some("PROHIBITED_CONTENT".into()),
                block_reason_message: None,
            }),
            usage_metadata: Some(UsageMetadata {
                prompt_token_count: input_tokens,
                total_token_count: input_tokens,
                ..UsageMetadata::default()
            }),
            model_version: Some(caps.id.clone()),
            response_id: Some(ctx.id.clone()),
            ..GenerateContentResponse::default()
        };
        return Ok(axum::Json(resp).into_response());
    }
    let base = match inputs.first() {
        Some(b) => Some(
            // Proto JSON takes standard and URL-safe base64 (google-genai sends the latter).
            base64::engine::general_purpose::STANDARD
                .decode(&b.data)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&b.data))
                .ok()
                .and_then(|raw| image::load_from_memory(&raw).ok())
                .ok_or_else(|| {
                    GeminiFailure::invalid("Unable to process input image. Please retry or report in https://developers.generativeai.google/guide/troubleshooting")
                })?,
        ),
        None => None,
    };
    let seed = format!("{}|{ratio}|{tier}", caps.id);
    let prompt_for_render = prompt.clone();
    let png = crate::images::on_render_slot(state, move || {
        let img = match base {
            Some(src) => {
                let mut img = fourk_imaging::fit(
                    &src,
                    w,
                    h,
                    fourk_imaging::FitMode::Cover,
                    fourk_imaging::Gravity::Center,
                )
                .map_err(|e| EmulatorError::Internal(e.to_string()))?;
                crate::render::draw_overlay(&mut img, &prompt_for_render);
                img
            }
            None => crate::render::render(&prompt_for_render, w, h, &seed, false),
        };
        fourk_imaging::encode(&img, OutputFormat::Png, None)
            .map_err(|e| EmulatorError::Internal(e.to_string()))
    })
    .await?;
    let image_tokens = tiers.tokens.get(&tier).copied().unwrap_or(0);
    let resp = GenerateContentResponse {
        candidates: vec![Candidate {
            content: Some(Content {
                role: Some("model".into()),
                parts: vec![Part {
                    inline_data: Some(Blob {
                        mime_type: "image/png".into(),
                        data: base64::engine::general_purpose::STANDARD.encode(&png),
                    }),
                    ..Part::default()
                }],
            }),
            finish_reason: Some("STOP".into()),
            index: Some(0),
        }],
        prompt_feedback: None,
        usage_metadata: Some(UsageMetadata {
            prompt_token_count: input_tokens,
            candidates_token_count: image_tokens,
            thoughts_token_count: None,
            total_token_count: input_tokens + image_tokens,
            candidates_tokens_details: vec![ModalityTokens {
                modality: "IMAGE".into(),
                token_count: image_tokens,
            }],
            prompt_tokens_details: vec![ModalityTokens {
                modality: "TEXT".into(),
                token_count: prompt_tokens,
            }],
        }),
        model_version: Some(caps.id.clone()),
        response_id: Some(ctx.id.clone()),
    };
    Ok(axum::Json(resp).into_response())
}
