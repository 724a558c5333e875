//! Answering an image request of the Images API (generations or edits) once it is planned:
//! one `ImagesResponse` JSON body, or with `stream: true` an event stream of partial images
//! and one `completed` event per image.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::response::{IntoResponse, Response};
use fourk_api::{ImageData, ImagesResponse};
use serde_json::{Value, json};

use crate::compose::preview;
use crate::error::EmulatorError;
use crate::plan::Plan;
use crate::sse::{self, Events};
use crate::state::EmulatorState;

/// Which endpoint: it names the stream events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/images/generations`: `image_generation.*` events.
    Generations,
    /// `POST /v1/images/edits`: `image_edit.*` events.
    Edits,
}

impl Endpoint {
    fn event(self, what: &str) -> String {
        let prefix = match self {
            Self::Generations => "image_generation",
            Self::Edits => "image_edit",
        };
        format!("{prefix}.{what}")
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Take the plan's tokens and images from the rate limits, then answer: JSON, or with
/// `stream` set to `Some(partial_images)`, an event stream.
pub(crate) async fn respond(
    state: &Arc<EmulatorState>,
    plan: Plan,
    stream: Option<u8>,
    endpoint: Endpoint,
) -> Result<Response, EmulatorError> {
    state
        .limiter
        .acquire([0, plan.usage.total_tokens, u64::from(plan.n)])?;
    match stream {
        None => Ok(Json(render_json(state, plan).await?).into_response()),
        Some(partials) => Ok(stream_events(
            Arc::clone(state),
            Arc::new(plan),
            partials,
            endpoint,
        )),
    }
}

/// Run `f` on a blocking thread while holding a render slot. The slot moves into the task,
/// so a request that times out does not free it while its render is still running.
pub(crate) async fn on_render_slot<T: Send + 'static>(
    state: &EmulatorState,
    f: impl FnOnce() -> Result<T, EmulatorError> + Send + 'static,
) -> Result<T, EmulatorError> {
    let slot = Arc::clone(&state.renders)
        .acquire_owned()
        .await
        .map_err(|e| EmulatorError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f()
    })
    .await
    .map_err(|e| EmulatorError::Internal(e.to_string()))?
}

/// Render every image of the plan (on a render slot), wait out the modelled latency, and
/// build the `ImagesResponse`: the live JSON answer and a Batch API line's body.
pub(crate) async fn render_json(state: &EmulatorState, plan: Plan) -> Result<ImagesResponse, EmulatorError> {
    let started = Instant::now();
    let plan = Arc::new(plan);
    let job = Arc::clone(&plan);
    let data = on_render_slot(state, move || job.render_all()).await?;
    let target = plan.scaled_latency(state.config.latency_scale);
    tokio::time::sleep(target.saturating_sub(started.elapsed())).await;
    tracing::debug!(
        size = %plan.size(),
        n = plan.n,
        ms = started.elapsed().as_millis(),
        "rendered procedural images"
    );
    Ok(ImagesResponse {
        created: unix_now(),
        data: Some(
            data.into_iter()
                .map(|b64| ImageData {
                    b64_json: Some(b64),
                    ..ImageData::default()
                })
                .collect(),
        ),
        settings: plan.settings(),
        usage: Some(plan.usage),
    })
}

/// The settings every stream event repeats.
fn settings(plan: &Plan, kind: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), kind.into());
    m.insert("created_at".into(), unix_now().into());
    m.insert("size".into(), plan.size().into());
    m.insert("quality".into(), plan.quality.as_str().into());
    m.insert("background".into(), plan.background().into());
    m.insert("output_format".into(), plan.format.as_str().into());
    m
}

fn stream_events(state: Arc<EmulatorState>, plan: Arc<Plan>, partials: u8, endpoint: Endpoint) -> Response {
    let (events, response) = sse::channel();
    tokio::spawn(async move {
        if let Err(e) = produce(&state, &plan, partials, endpoint, &events).await {
            events.send("error", &error_event(&e)).await;
        }
    });
    response
}

/// The status line is long gone when a stream fails: the error travels as an `error` event,
/// in the shape the SDKs raise from (`{"error": {...}}` in the data).
fn error_event(e: &EmulatorError) -> Value {
    let mut data = json!({"type": "error"});
    data["error"] = e.body()["error"].take();
    data
}

/// Partial images are sent as evenly spaced milestones of the modelled latency; the
/// completed image of each of the `n` images follows its partials.
async fn produce(
    state: &EmulatorState,
    plan: &Arc<Plan>,
    partials: u8,
    endpoint: Endpoint,
    events: &Events,
) -> Result<(), EmulatorError> {
    let started = Instant::now();
    let total = plan.scaled_latency(state.config.latency_scale);
    let steps = u32::from(plan.n) * (u32::from(partials) + 1);
    let mut step = 0u32;
    let milestone = |step: u32| {
        if total.is_zero() {
            Duration::ZERO
        } else {
            total.mul_f64(f64::from(step) / f64::from(steps))
        }
    };
    for i in 0..plan.n {
        let job = Arc::clone(plan);
        let (previews, (b64, _)) = on_render_slot(state, move || {
            let img = job.render(i);
            let previews = (0..partials)
                .map(|k| job.encode(&preview(&img, k, partials)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((previews, job.finish(&img)?))
        })
        .await?;
        for (k, partial) in previews.into_iter().enumerate() {
            step += 1;
            tokio::time::sleep(milestone(step).saturating_sub(started.elapsed())).await;
            let mut data = settings(plan, &endpoint.event("partial_image"));
            data.insert("b64_json".into(), partial.into());
            data.insert("partial_image_index".into(), k.into());
            if !events
                .send(&endpoint.event("partial_image"), &Value::Object(data))
                .await
            {
                return Ok(());
            }
        }
        if plan.stream_error {
            // `[fourk:stream-error]`: the generation fails after its partial images.
            return Err(EmulatorError::InjectedServerError);
        }
        step += 1;
        tokio::time::sleep(milestone(step).saturating_sub(started.elapsed())).await;
        let mut data = settings(plan, &endpoint.event("completed"));
        data.insert("b64_json".into(), b64.into());
        data.insert(
            "usage".into(),
            serde_json::to_value(plan.image_usage(i)).unwrap_or_default(),
        );
        if !events
            .send(&endpoint.event("completed"), &Value::Object(data))
            .await
        {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_mid_stream_is_an_error_event_with_the_envelope() {
        let e = error_event(&EmulatorError::Internal("encoder failed".into()));
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], "server_error");
        assert_eq!(e["error"]["param"], Value::Null);
        assert_eq!(e["error"]["code"], Value::Null);
        assert!(
            !e["error"]["message"].as_str().unwrap().contains("encoder"),
            "internals stay out"
        );
        let frame = sse::frame("error", &e);
        assert!(frame.starts_with(b"event: error\ndata: {"));
    }
}
