//! `POST /v1/images/generations`: the same checks as the real endpoint, then procedural
//! images in the real response shape.
//!
//! Settings the API leaves to the model resolve as follows (the API does not document them):
//! `size: auto` (or no size) is `1024x1024`, `quality: auto` (or none) is `medium`,
//! `background: auto` is `opaque`, and `output_format` defaults to `png`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use fourk_api::{
    Background, ImageData, ImageRequest, ImagesResponse, ModelCaps, OutputFormat, Quality, Usage, cost,
};
use serde_json::Value;

use crate::error::EmulatorError;
use crate::render::render;
use crate::state::EmulatorState;

/// Everything needed to render and describe one request, resolved from the request.
#[derive(Debug, Clone)]
struct Plan {
    prompt: String,
    model: String,
    width: u32,
    height: u32,
    quality: Quality,
    format: OutputFormat,
    compression: Option<u8>,
    transparent: bool,
    n: u8,
    usage: Usage,
}

impl Plan {
    fn resolve(req: &ImageRequest, model: &ModelCaps) -> Self {
        let (width, height) = req.size.and_then(fourk_api::Size::dims).unwrap_or((1024, 1024));
        let quality = match req.quality {
            None | Some(Quality::Auto) => Quality::Medium,
            Some(q) => q,
        };
        let n = req.n.unwrap_or(1).max(1);
        let per_image = cost::output_tokens(model, width, height, quality).unwrap_or(0);
        Self {
            prompt: req.prompt.clone(),
            model: model.id.clone(),
            width,
            height,
            quality,
            format: req.effective_format(),
            compression: req.output_compression,
            transparent: req.background == Some(Background::Transparent),
            n,
            usage: Usage::new(
                cost::estimate_text_tokens(&req.prompt),
                0,
                per_image * u64::from(n),
            ),
        }
    }

    /// Render and encode every image; runs on a blocking thread.
    fn render_all(&self) -> Result<Vec<String>, EmulatorError> {
        (0..self.n)
            .map(|i| {
                // The format is not part of the seed: a PNG and a JPEG of the same request
                // show the same picture.
                let extra = format!("{}|{}|{i}", self.model, self.quality);
                let img = render(&self.prompt, self.width, self.height, &extra, self.transparent);
                let bytes = fourk_imaging::encode(&img, self.format, self.compression)
                    .map_err(|e| EmulatorError::Internal(e.to_string()))?;
                Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
            })
            .collect()
    }

    /// How long the real API would take, before `latency_scale`: about 80 s for 1024x1024
    /// medium and 195 s for high (api-contract §13), growing slowly with pixels (2048x2048
    /// high is reported at 200-250 s).
    fn modelled_latency(&self) -> Duration {
        let base = match self.quality {
            Quality::Low => 20.0,
            Quality::Medium | Quality::Auto => 80.0,
            Quality::High => 195.0,
            Quality::Xhigh | Quality::Max => 260.0,
        };
        let pixels = f64::from(self.width) * f64::from(self.height);
        Duration::from_secs_f64(base * (pixels / 1_048_576.0).powf(0.15))
    }
}

/// The handler: auth first (no rate-limit headers on a 401), then the rest, with the
/// rate-limit headers on every answer after that.
pub(crate) async fn generations(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = state.authorize(&headers) {
        return e.into_response();
    }
    let mut response = match generate(&state, body).await {
        Ok(images) => Json(images).into_response(),
        Err(e) => e.into_response(),
    };
    state.limiter.snapshot().write(response.headers_mut());
    response
}

async fn generate(
    state: &EmulatorState,
    body: Result<Bytes, BytesRejection>,
) -> Result<ImagesResponse, EmulatorError> {
    state.limiter.acquire([1, 0, 0])?;
    let bytes = body.map_err(|r| EmulatorError::Body {
        status: r.status(),
        message: r.body_text(),
    })?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|_| EmulatorError::InvalidJson)?;
    let req = ImageRequest::from_json(&json).map_err(|violation| EmulatorError::Invalid {
        violation,
        model: json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })?;
    let (model, warnings) =
        req.validate(&state.config.capabilities).map_err(|violations| {
            match violations.into_iter().next() {
                Some(violation) => EmulatorError::Invalid {
                    violation,
                    model: req.model.clone(),
                },
                None => EmulatorError::Internal("validation failed without a violation".into()),
            }
        })?;
    for w in &warnings {
        tracing::debug!(id = w.id, "{}", w.message);
    }
    if req.stream == Some(true) {
        return Err(EmulatorError::StreamingNotImplemented);
    }
    let plan = Plan::resolve(&req, model);
    state
        .limiter
        .acquire([0, plan.usage.total_tokens, u64::from(plan.n)])?;

    let started = Instant::now();
    let slot = Arc::clone(&state.renders)
        .acquire_owned()
        .await
        .map_err(|e| EmulatorError::Internal(e.to_string()))?;
    let job = plan.clone();
    // The slot moves into the blocking task, so a request that times out does not free it
    // while its render is still running.
    let data = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        job.render_all()
    })
    .await
    .map_err(|e| EmulatorError::Internal(e.to_string()))??;
    let scale = state.config.latency_scale;
    if scale > 0.0 {
        // A scale too large for a Duration simply waits until the request timeout.
        let target = Duration::try_from_secs_f64(plan.modelled_latency().as_secs_f64() * scale)
            .unwrap_or(Duration::MAX);
        tokio::time::sleep(target.saturating_sub(started.elapsed())).await;
    }
    tracing::debug!(
        size = %format_args!("{}x{}", plan.width, plan.height),
        n = plan.n,
        ms = started.elapsed().as_millis(),
        "rendered procedural images"
    );
    Ok(ImagesResponse {
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        data: Some(
            data.into_iter()
                .map(|b64| ImageData {
                    b64_json: Some(b64),
                    ..ImageData::default()
                })
                .collect(),
        ),
        background: Some(if plan.transparent { "transparent" } else { "opaque" }.to_owned()),
        output_format: Some(plan.format.as_str().to_owned()),
        quality: Some(plan.quality.as_str().to_owned()),
        size: Some(format!("{}x{}", plan.width, plan.height)),
        usage: Some(plan.usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_settings_resolve_to_documented_values() {
        let caps = fourk_api::Capabilities::builtin();
        let model = caps.model("gpt-image-2").unwrap();
        let mut req = ImageRequest::new("gpt-image-2", "a fox");
        req.size = Some(fourk_api::Size::Auto);
        req.quality = Some(Quality::Auto);
        req.n = Some(2);
        let plan = Plan::resolve(&req, model);
        assert_eq!(
            (plan.width, plan.height, plan.quality),
            (1024, 1024, Quality::Medium)
        );
        assert_eq!(plan.usage.output_tokens, 2 * 1756);
        assert_eq!(plan.usage.input_tokens, cost::estimate_text_tokens("a fox"));
        assert!(!plan.transparent);
        assert_eq!(plan.modelled_latency().as_secs(), 80);
    }
}
