//! The router: routes, the OpenAI-style fallbacks, and the layer that adds the headers every
//! answer carries and enforces the request timeout.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fourk_api::ModelStatus;
use serde_json::{Value, json};

use crate::error::EmulatorError;
use crate::generate::generations;
use crate::state::EmulatorState;

/// The header that says an answer, and its images, came from this emulator.
pub const EMULATOR_HEADER: &str = "x-fourk-emulator";
/// Its value.
pub const EMULATOR_HEADER_VALUE: &str = "procedural; images are rendered locally, not by OpenAI";

/// The emulator as an axum [`Router`], ready for [`axum::serve()`] or for calling in tests.
///
/// Routes: `POST /v1/images/generations`, `GET /v1/models`, `GET /v1/models/{id}` (both need a
/// key, as on the API) and `GET /health` (no key; for readiness checks). Anything else gets the
/// API's 404 (or 405) envelope.
pub fn app(state: Arc<EmulatorState>) -> Router {
    Router::new()
        .route("/v1/images/generations", post(generations))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), common))
        .with_state(state)
}

/// Request id, API version, processing time and the emulator marker on every answer, and
/// the request timeout around every handler.
async fn common(State(state): State<Arc<EmulatorState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = state.next_request_id();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let mut response = match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => EmulatorError::Timeout(state.request_timeout).into_response(),
    };
    let ms = started.elapsed().as_millis();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    h.insert(
        "openai-processing-ms",
        HeaderValue::from(u64::try_from(ms).unwrap_or(u64::MAX)),
    );
    h.insert("openai-version", HeaderValue::from_static("2020-10-01"));
    h.insert(EMULATOR_HEADER, HeaderValue::from_static(EMULATOR_HEADER_VALUE));
    tracing::debug!(request_id = %id, %method, %path, status = response.status().as_u16(), ms, "request");
    response
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "emulator": "fourk", "images": "procedural"}))
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "fourk-emulator"})
}

async fn list_models(State(state): State<Arc<EmulatorState>>, headers: HeaderMap) -> Response {
    if let Err(e) = state.authorize(&headers) {
        return e.into_response();
    }
    let data: Vec<Value> = state
        .config
        .capabilities
        .models
        .iter()
        .filter(|m| m.status == ModelStatus::Active)
        .flat_map(|m| std::iter::once(&m.id).chain(&m.aliases))
        .map(|id| model_object(id))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn get_model(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = state.authorize(&headers) {
        return e.into_response();
    }
    match state.config.capabilities.model(&id) {
        Ok(_) => Json(model_object(&id)).into_response(),
        Err(e) => EmulatorError::Invalid {
            violation: fourk_api::Violation {
                rule: if e.rule() == "retired" {
                    fourk_api::Rule::Retired
                } else {
                    fourk_api::Rule::UnknownModel
                },
                param: "model".into(),
                message: e.to_string(),
            },
            model: id,
        }
        .into_response(),
    }
}

async fn not_found(method: Method, uri: Uri) -> EmulatorError {
    EmulatorError::NotFound {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> EmulatorError {
    EmulatorError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}
