//! The router: routes, the OpenAI-style fallbacks, and the layers that every answer passes
//! through: the bound on requests in progress, request ids, fault injection, the request
//! timeout, the common headers and the request log; then the body limits and body deadline
//! ([`crate::limits`]).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fourk_api::{ImageEndpoint, ModelStatus};
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use crate::edits::edits;
use crate::error::EmulatorError;
use crate::faults::{self, FaultKind};
use crate::generate::generations;
use crate::reqlog::{self, Entry};
use crate::responses::responses;
use crate::state::{EmulatorState, RequestContext};

/// The header that says an answer, and its images, came from this emulator.
pub const EMULATOR_HEADER: &str = "x-fourk-emulator";
/// Its value.
pub const EMULATOR_HEADER_VALUE: &str = "procedural; images are rendered locally, not by OpenAI";

/// The routes faults are injected into: the ones that make images.
const FAULT_ROUTES: [&str; 3] = [
    ImageEndpoint::Generations.v1(),
    ImageEndpoint::Edits.v1(),
    ImageEndpoint::Responses.v1(),
];

/// The emulator as an axum [`Router`], ready for [`axum::serve()`] or for calling in tests.
///
/// Routes: `POST /v1/images/generations`, `POST /v1/images/edits` (multipart or JSON),
/// `POST /v1/responses` (the `image_generation` tool), `GET /v1/models`,
/// `GET /v1/models/{id}` (all need a key, as on the API) and `GET /health` (no key; for
/// readiness checks). Anything else gets the API's 404 (or 405) envelope.
pub fn app(state: Arc<EmulatorState>) -> Router {
    let api = Router::new()
        .route(ImageEndpoint::Generations.v1(), post(generations))
        .route(ImageEndpoint::Edits.v1(), post(edits))
        .route(ImageEndpoint::Responses.v1(), post(responses))
        .route("/v1/files", post(crate::files::create_file))
        .route(
            "/v1/files/{id}",
            get(crate::files::retrieve_file).delete(crate::files::delete_file),
        )
        .route("/v1/files/{id}/content", get(crate::files::file_content))
        .route(
            "/v1/batches",
            post(crate::batch::create_batch).get(crate::batch::list_batches),
        )
        .route("/v1/batches/{id}", get(crate::batch::retrieve_batch))
        .route("/v1/batches/{id}/cancel", post(crate::batch::cancel_batch))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        // Only matched routes: an unknown path gets its 404 with or without a key.
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), require_key));
    let openai = api
        .route("/health", get(health))
        // Gemini's route checks its own key (x-goog-api-key), in its own words.
        .route("/v1beta/models/{target}", post(crate::gemini::generate_content))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The per-route limits of `crate::limits` replace axum's 2 MB default.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::limits::guard,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), common))
        .with_state(Arc::clone(&state));
    // Azure OpenAI's URLs and key header, answered in its shapes and rewritten to the routes
    // above before they are routed (a layer on a router runs after its routing, so the
    // adapter wraps the whole router as its fallback).
    // google-genai's default `/v1/models/M:generateContent` is rewritten to Gemini's route the
    // same way.
    Router::new()
        .fallback_service(openai)
        .layer(middleware::from_fn_with_state(state, crate::azure::adapter))
        .layer(middleware::from_fn(crate::gemini::v1_alias))
}

/// A place among the requests in progress, or the `429` that says there is none; `/health`
/// needs none, so readiness checks pass under load.
fn admit(state: &EmulatorState, path: &str) -> Result<Option<OwnedSemaphorePermit>, EmulatorError> {
    if path == "/health" {
        return Ok(None);
    }
    Arc::clone(&state.in_flight)
        .try_acquire_owned()
        .map(Some)
        .map_err(|_| EmulatorError::Busy(state.max_in_flight))
}

/// The bound on requests in progress, request id, fault injection, the request timeout
/// around every handler, then API version, processing time and the emulator marker on every
/// answer, and the request log line. A request holds its place until its answer's body is
/// sent or dropped, so a stream counts for as long as it lasts.
async fn common(State(state): State<Arc<EmulatorState>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let arrived_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let id = state.next_request_id();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    // The log names the path the client used (Azure's, before the adapter's rewrite).
    let logged_path = req
        .extensions()
        .get::<crate::state::ArrivedOn>()
        .map_or_else(|| path.clone(), |a| a.0.clone());
    let place = admit(&state, &path);
    // Drawn for every request to an image route, in arrival order, so a seed replays the
    // same sequence; applied only to authorised requests, since a real server checks the
    // key before anything can go wrong. A request turned away for want of a place draws none.
    let fault = if place.is_ok() && method == Method::POST && FAULT_ROUTES.contains(&path.as_str()) {
        state.faults.next()
    } else {
        None
    }
    .filter(|_| state.authorize(req.headers()).is_ok());
    let ctx = Arc::new(RequestContext::new(id.clone(), fault));
    req.extensions_mut().insert(Arc::clone(&ctx));
    let client_request_id = req
        .headers()
        .get("x-client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let line = {
        let (state, ctx, id) = (Arc::clone(&state), Arc::clone(&ctx), id.clone());
        let (method, path, client_request_id) = (method.clone(), logged_path, client_request_id.clone());
        reqlog::LineGuard::new(move |status| {
            if let Some(log) = &state.request_log {
                log.write(&Entry {
                    ts_ms: arrived_ms,
                    method: method.as_str(),
                    route: &path,
                    prompt_sha256: ctx.prompt_sha256(),
                    status,
                    request_id: &id,
                    client_request_id: client_request_id.as_deref(),
                    fault: fault.map(|f| f.kind.name()),
                });
            }
        })
    };
    let early = match (&place, fault.map(|f| f.kind)) {
        (Err(busy), _) => Some(busy.clone().into_response()),
        (Ok(_), kind) => match kind {
            Some(FaultKind::RateLimit) => Some(EmulatorError::InjectedRateLimit.into_response()),
            Some(FaultKind::Quota) => Some(EmulatorError::InsufficientQuota.into_response()),
            Some(FaultKind::ServerError) => Some(EmulatorError::InjectedServerError.into_response()),
            Some(FaultKind::Unavailable) => Some(EmulatorError::Overloaded.into_response()),
            Some(FaultKind::Reset) => Some(faults::reset_response()),
            Some(FaultKind::Stall) => {
                tokio::time::sleep(state.config.stall).await;
                None
            }
            _ => None,
        },
    };
    let mut response = match early {
        Some(r) => r,
        None => match tokio::time::timeout(state.request_timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => EmulatorError::Timeout(state.request_timeout).into_response(),
        },
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
    if let Some(v) = client_request_id.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert("x-client-request-id", v);
    }
    if fault.is_some_and(|f| f.kind == FaultKind::Truncate) {
        response = faults::truncate(response).await;
    }
    let reset = fault.is_some_and(|f| f.kind == FaultKind::Reset);
    let status = response.status().as_u16();
    tracing::debug!(request_id = %id, %method, %path, status, ms, fault = fault.map(|f| f.kind.name()), "request");
    line.finish((!reset).then_some(status));
    match place {
        // The place goes with the body, which the connection drops when it is sent or the
        // client leaves.
        Ok(Some(permit)) => response.map(|inner| {
            Body::new(Holding {
                inner,
                _permit: permit,
            })
        }),
        _ => response,
    }
}

/// An answer's body holding its request's place among those in progress, with the body's own
/// size (a `content-length` stays).
#[derive(Debug)]
struct Holding {
    inner: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Every API route wants `Authorization: Bearer <key>` first, as on the API: a 401 comes
/// before the body is read and carries no rate-limit headers.
async fn require_key(State(state): State<Arc<EmulatorState>>, req: Request, next: Next) -> Response {
    match state.authorize(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "emulator": "fourk", "images": "procedural"}))
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "fourk-emulator"})
}

async fn list_models(State(state): State<Arc<EmulatorState>>) -> Response {
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

async fn get_model(State(state): State<Arc<EmulatorState>>, Path(id): Path<String>) -> Response {
    match state.config.capabilities.model(&id) {
        Ok(_) => Json(model_object(&id)).into_response(),
        Err(e) => EmulatorError::Invalid {
            violation: e.violation(),
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
