//! The HTTP client: one send path for every route, so the retry policy and the payload log
//! apply to generations, edits and the Responses API alike.

use std::time::{Duration, Instant};

use bytes::Bytes;
use fourk_api::{
    EditRequest, ErrorClass, ErrorEnvelope, ImageEndpoint, ImageRequest, ImageStreamEvent, ImagesResponseRef,
    InputImage, ResponseObject, ResponseStreamEvent, ResponsesRequest,
};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use secrecy::ExposeSecret;

use crate::config::{Auth, Config};
use crate::error::ClientError;
use crate::error::transport_error;
use crate::head::{RateLimits, ResponseHead};
use crate::payload::{self, Payload};
use crate::payload_log::{LogEntry, LoggedRequest, PayloadLog};
use crate::retry::{Attempt, Decision, Outcome, RetryPolicy, ServerHints, retry_after};
use crate::stream::{EventStream, StreamEvent};

/// The header that carries fourk's own id for each attempt.
const CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// A successful answer: the raw body (parsed on demand, so the base64 is not copied) and the
/// metadata a sidecar records.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// `openai-processing-ms`.
    pub processing_ms: Option<u64>,
    /// `x-fourk-emulator`, present when the answer came from fourk's emulator.
    pub emulator: Option<String>,
    /// Rate-limit headers.
    pub rate_limits: RateLimits,
    /// Wall time from sending the last attempt to its last byte.
    pub elapsed: Duration,
    /// The body.
    pub body: Bytes,
    /// Attempts made, retries included (1 when the first attempt succeeded).
    pub attempts: u32,
}

impl ApiResponse {
    /// Parse the body as an `ImagesResponse`, borrowing the base64 strings.
    ///
    /// # Errors
    /// [`ClientError::InvalidResponse`] when the body is not an `ImagesResponse`.
    pub fn images(&self) -> Result<ImagesResponseRef<'_>, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::InvalidResponse {
            message: format!("body is not an ImagesResponse: {e}"),
            request_id: self.request_id.clone(),
        })
    }

    /// Parse the body of Gemini's `generateContent`.
    ///
    /// # Errors
    /// [`ClientError::InvalidResponse`] when the body is not a `GenerateContentResponse`.
    pub fn gemini(&self) -> Result<fourk_api::gemini::GenerateContentResponse, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::InvalidResponse {
            message: format!("body is not a Gemini GenerateContentResponse: {e}"),
            request_id: self.request_id.clone(),
        })
    }

    /// Parse the body of a non-streamed `POST /v1/responses` as a [`ResponseObject`].
    ///
    /// # Errors
    /// [`ClientError::InvalidResponse`] when the body is not a response object.
    pub fn response_object(&self) -> Result<ResponseObject, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::InvalidResponse {
            message: format!("body is not a Responses API response object: {e}"),
            request_id: self.request_id.clone(),
        })
    }
}

/// A client for the OpenAI image endpoints (or anything that speaks them, like the emulator).
///
/// Every route goes through one send path: the [`RetryPolicy`] (default: 2 retries of
/// transient failures, never of possibly billed ones) and, when set, the [`PayloadLog`].
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Config,
    /// The headers every request carries besides its own, for the payload log.
    default_headers: HeaderMap,
    retry: RetryPolicy,
    payload_log: Option<PayloadLog>,
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The server's id of an answer: `x-request-id` (OpenAI, gateways), else Azure's
/// `apim-request-id`.
pub(crate) fn request_id_of(h: &HeaderMap) -> Option<String> {
    header_str(h, "x-request-id").or_else(|| header_str(h, "apim-request-id"))
}

/// A request body whose `model` a provider may rename.
pub(crate) trait HasModel {
    fn model(&self) -> &str;
    fn set_model(&mut self, model: &str);
}

impl HasModel for ImageRequest {
    fn model(&self) -> &str {
        &self.model
    }
    fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }
}

impl HasModel for EditRequest {
    fn model(&self) -> &str {
        &self.model
    }
    fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    header_str(h, name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = v.max(0.0) as u64;
            n
        })
}

fn head_of(
    status: u16,
    headers: HeaderMap,
    elapsed: Duration,
    attempts: u32,
    client_request_id: &str,
) -> ResponseHead {
    ResponseHead {
        status,
        request_id: request_id_of(&headers),
        client_request_id: client_request_id.to_owned(),
        processing_ms: header_u64(&headers, "openai-processing-ms"),
        emulator: header_str(&headers, "x-fourk-emulator"),
        rate_limits: RateLimits {
            limit_requests: header_u64(&headers, "x-ratelimit-limit-requests"),
            remaining_requests: header_u64(&headers, "x-ratelimit-remaining-requests"),
            reset_requests: header_str(&headers, "x-ratelimit-reset-requests"),
            limit_tokens: header_u64(&headers, "x-ratelimit-limit-tokens"),
            remaining_tokens: header_u64(&headers, "x-ratelimit-remaining-tokens"),
            reset_tokens: header_str(&headers, "x-ratelimit-reset-tokens"),
        },
        headers,
        elapsed,
        attempts,
    }
}

/// Whether the caller wants the whole body or a stream of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Full,
    Stream,
}

/// A successful attempt.
// One value per call, moved once to its caller: boxing either variant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Sent {
    Full(ApiResponse),
    Stream(StreamStart),
}

/// A stream whose headers have arrived.
pub(crate) struct StreamStart {
    head: ResponseHead,
    url: String,
    response: reqwest::Response,
    log: Option<(LogEntry, u32)>,
}

/// How an attempt failed, for the retry policy (owned, so the error can be returned).
#[derive(Debug)]
enum Failed {
    NotSent,
    Ambiguous,
    Status {
        status: u16,
        code: Option<String>,
        kind: Option<String>,
        hints: ServerHints,
    },
    /// Not retryable whatever the policy says (a bad request body, a 2xx of the wrong kind).
    Final,
}

impl Failed {
    fn outcome(&self) -> Option<Outcome<'_>> {
        Some(match self {
            Self::NotSent => Outcome::NotSent,
            Self::Ambiguous => Outcome::Ambiguous,
            Self::Status {
                status,
                code,
                kind,
                hints,
            } => Outcome::Status {
                status: *status,
                code: code.as_deref(),
                kind: kind.as_deref(),
                hints: *hints,
            },
            Self::Final => return None,
        })
    }
}

/// Run payload-log work (base64 decoding, hashing and writing tens of megabytes) on the
/// blocking pool, so it does not stall the runtime's workers; wait for it, so the files are
/// complete when the call returns.
async fn off_runtime(work: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(work).await {
        tracing::warn!(error = %e, "the payload log task failed");
    }
}

/// A route name for logs: `images/generations` becomes `images-generations`.
fn route_of(path: &str) -> String {
    path.trim_matches('/').replace(['/', ':'], "-")
}

/// The error in an error body: OpenAI's envelope (Azure's too), else Gemini's.
pub(crate) fn error_of(body: &[u8]) -> Option<Box<fourk_api::ApiError>> {
    serde_json::from_slice::<ErrorEnvelope>(body)
        .map(|e| e.error)
        .or_else(|_| {
            serde_json::from_slice::<fourk_api::gemini::GeminiErrorEnvelope>(body).map(|g| g.to_api_error())
        })
        .ok()
        .map(Box::new)
}

/// The base URL must be an absolute http(s) URL; say which setting holds it when not.
fn check_base_url(url: &str) -> Result<(), ClientError> {
    let bad = |why: String| {
        ClientError::Config(format!(
            "the base URL '{url}' (from --base-url or OPENAI_BASE_URL) {why}; give an http(s) URL such as https://api.openai.com/v1 or http://127.0.0.1:8080/v1"
        ))
    };
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(bad(format!("has the scheme '{}' or no host", u.scheme()))),
        Err(e) => Err(bad(format!("is not a URL ({e})"))),
    }
}

impl Client {
    /// Build a client with the default [`RetryPolicy`] and no payload log.
    ///
    /// # Errors
    /// [`ClientError::Config`] when the TLS backend or headers cannot be set up.
    pub fn new(config: Config) -> Result<Self, ClientError> {
        check_base_url(&config.base_url)?;
        let mut headers = HeaderMap::new();
        if let Some(org) = &config.organization {
            headers.insert(
                "OpenAI-Organization",
                HeaderValue::from_str(org).map_err(|e| ClientError::Config(format!("OPENAI_ORG_ID: {e}")))?,
            );
        }
        if let Some(project) = &config.project {
            headers.insert(
                "OpenAI-Project",
                HeaderValue::from_str(project)
                    .map_err(|e| ClientError::Config(format!("OPENAI_PROJECT_ID: {e}")))?,
            );
        }
        let user_agent = concat!("fourk/", env!("CARGO_PKG_VERSION"));
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .default_headers(headers.clone())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        headers.insert(USER_AGENT, HeaderValue::from_static(user_agent));
        Ok(Self {
            http,
            config,
            default_headers: headers,
            retry: RetryPolicy::default(),
            payload_log: None,
        })
    }

    /// Replace the retry policy (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Write every attempt's request and response to a payload log. Default: off.
    #[must_use]
    pub fn with_payload_log(mut self, log: PayloadLog) -> Self {
        self.payload_log = Some(log);
        self
    }

    /// The retry policy in use.
    #[must_use]
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The payload log, if one is set.
    #[must_use]
    pub fn payload_log(&self) -> Option<&PayloadLog> {
        self.payload_log.as_ref()
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The underlying HTTP client, for the Batch API's reads (`batch.rs`).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The headers that carry the key, in the provider's way, and the `--header`s, all marked
    /// sensitive. A token command runs here when its token is stale.
    pub(crate) async fn auth(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
        let provider = &self.config.provider;
        let mut out = Vec::new();
        for h in &provider.headers {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
                ClientError::Config(format!("--header: '{}' is not a valid header name", h.name))
            })?;
            let mut value = HeaderValue::from_str(h.value.expose_secret())
                .map_err(|_| ClientError::Config(format!("--header {}: the value cannot be sent", h.name)))?;
            value.set_sensitive(true);
            out.push((name, value));
        }
        if provider.auth == Auth::None {
            return Ok(out);
        }
        let token;
        let key = match (&self.config.token_command, &provider.auth) {
            (Some(cmd), Auth::Bearer) => {
                token = cmd.token_async().await?;
                &token
            }
            _ => self.config.api_key.as_ref().ok_or(ClientError::MissingKey {
                provider: provider.kind,
            })?,
        };
        let bad = |_| ClientError::Config("the key contains characters not allowed in a header".into());
        let (name, mut value) = match &provider.auth {
            Auth::Header(name) => (
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    ClientError::Config(format!("'{name}' is not a valid header name for the key"))
                })?,
                HeaderValue::from_str(key.expose_secret()).map_err(bad)?,
            ),
            _ => (
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).map_err(bad)?,
            ),
        };
        value.set_sensitive(true);
        out.push((name, value));
        Ok(out)
    }

    /// `request` with the `model` the provider wants in the body (Azure: the deployment).
    fn for_provider<'r, R: Clone + HasModel>(&self, request: &'r R) -> std::borrow::Cow<'r, R> {
        let model = self.config.provider.model_for(request.model());
        if model == request.model() {
            std::borrow::Cow::Borrowed(request)
        } else {
            let mut r = request.clone();
            r.set_model(model);
            std::borrow::Cow::Owned(r)
        }
    }

    /// `POST /images/generations` with a JSON body, retried by the client's policy.
    ///
    /// Send requests with `stream` unset here; [`Self::generate_stream`] reads a stream.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn generate(&self, request: &ImageRequest) -> Result<ApiResponse, ClientError> {
        let sent = self.for_provider(request);
        let body = serde_json::to_vec(&*sent).map_err(|e| ClientError::Config(e.to_string()))?;
        self.send_full(
            ImageEndpoint::Generations.path(),
            Some(&request.model),
            Payload::Json(body.into()),
        )
        .await
    }

    /// POST a JSON body to an endpoint below the base URL, retried by the client's policy.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn post_json(&self, path: &str, body: Vec<u8>) -> Result<ApiResponse, ClientError> {
        self.send_full(path, None, Payload::Json(body.into())).await
    }

    /// `POST /images/edits` as `multipart/form-data`: the request's text fields, the images
    /// (part `image` for one, repeated `image[]` for several, each with its file name and
    /// MIME type) and the mask (part `mask`).
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn edit(
        &self,
        request: &EditRequest,
        images: &[InputImage],
        mask: Option<&InputImage>,
    ) -> Result<ApiResponse, ClientError> {
        let sent = self.for_provider(request);
        self.send_full(
            ImageEndpoint::Edits.path(),
            Some(&request.model),
            Payload::edit(&sent, images, mask),
        )
        .await
    }

    /// `POST /images/generations` with `stream: true` (set here if the request lacks it):
    /// partial images, then one completed event per image.
    ///
    /// # Errors
    /// Failures before the stream starts (status errors after retries, connection
    /// failures); later ones are items of the stream.
    pub async fn generate_stream(
        &self,
        request: &ImageRequest,
    ) -> Result<EventStream<ImageStreamEvent>, ClientError> {
        let streaming;
        let request = if request.stream == Some(true) {
            request
        } else {
            streaming = ImageRequest {
                stream: Some(true),
                ..request.clone()
            };
            &streaming
        };
        let sent = self.for_provider(request);
        let body = serde_json::to_vec(&*sent).map_err(|e| ClientError::Config(e.to_string()))?;
        self.send_stream(
            ImageEndpoint::Generations.path(),
            Some(&request.model),
            Payload::Json(body.into()),
            u32::from(request.n.unwrap_or(1)),
        )
        .await
    }

    /// `POST /images/edits` with `stream: true` (set here if the request lacks it).
    ///
    /// # Errors
    /// As [`Self::generate_stream`].
    pub async fn edit_stream(
        &self,
        request: &EditRequest,
        images: &[InputImage],
        mask: Option<&InputImage>,
    ) -> Result<EventStream<ImageStreamEvent>, ClientError> {
        let streaming = EditRequest {
            stream: Some(true),
            ..request.clone()
        };
        let sent = self.for_provider(&streaming);
        self.send_stream(
            ImageEndpoint::Edits.path(),
            Some(&request.model),
            Payload::edit(&sent, images, mask),
            u32::from(request.n.unwrap_or(1)),
        )
        .await
    }

    /// Gemini's `POST v1beta/models/{model}:generateContent` (below the Gemini API's root);
    /// read the answer with [`ApiResponse::gemini`].
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`] (Gemini's error envelope read into the same
    /// [`fourk_api::ApiError`]).
    pub async fn generate_content(
        &self,
        model: &str,
        request: &fourk_api::gemini::GenerateContentRequest,
    ) -> Result<ApiResponse, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Config(e.to_string()))?;
        let path = fourk_api::gemini::generate_content_path(model);
        self.send_full(&path, None, Payload::Json(body.into())).await
    }

    /// `POST /responses` without streaming; read the answer with
    /// [`ApiResponse::response_object`].
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn responses(&self, request: &ResponsesRequest) -> Result<ApiResponse, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Config(e.to_string()))?;
        self.send_full(ImageEndpoint::Responses.path(), None, Payload::Json(body.into()))
            .await
    }

    /// `POST /responses` with `stream: true` (set here if the request lacks it).
    ///
    /// # Errors
    /// As [`Self::generate_stream`].
    pub async fn responses_stream(
        &self,
        request: &ResponsesRequest,
    ) -> Result<EventStream<ResponseStreamEvent>, ClientError> {
        let body = if request.stream == Some(true) {
            serde_json::to_vec(request)
        } else {
            let mut v = serde_json::to_value(request).map_err(|e| ClientError::Config(e.to_string()))?;
            v["stream"] = serde_json::Value::Bool(true);
            serde_json::to_vec(&v)
        }
        .map_err(|e| ClientError::Config(e.to_string()))?;
        self.send_stream(
            ImageEndpoint::Responses.path(),
            None,
            Payload::Json(body.into()),
            1,
        )
        .await
    }

    pub(crate) async fn send_full(
        &self,
        path: &str,
        model: Option<&str>,
        payload: Payload,
    ) -> Result<ApiResponse, ClientError> {
        match self.send(path, model, payload, Mode::Full).await? {
            Sent::Full(r) => Ok(r),
            Sent::Stream(_) => unreachable!("a full-body send returns the full body"),
        }
    }

    async fn send_stream<T: StreamEvent>(
        &self,
        path: &str,
        model: Option<&str>,
        payload: Payload,
        finals_expected: u32,
    ) -> Result<EventStream<T>, ClientError> {
        match self.send(path, model, payload, Mode::Stream).await? {
            Sent::Stream(start) => {
                let StreamStart {
                    head,
                    url,
                    response,
                    log,
                } = start;
                let recorder =
                    log.map(|(entry, attempt)| entry.recorder(attempt, head.status, &head.headers));
                Ok(EventStream::new(head, url, response, finals_expected, recorder))
            }
            Sent::Full(_) => unreachable!("a stream send returns a stream"),
        }
    }

    /// The one send path: attempts, retry decisions, logging.
    async fn send(
        &self,
        path: &str,
        model: Option<&str>,
        payload: Payload,
        mode: Mode,
    ) -> Result<Sent, ClientError> {
        let auth = self.auth().await?;
        let url = match model {
            Some(m) => self.config.endpoint_for(path, m),
            None => self.config.endpoint(path),
        };
        let route = route_of(path);
        let log = self.payload_log.as_ref().map(|l| {
            l.begin(&route, self.config.secrets())
                .hiding_headers(self.config.provider.secret_header_names())
        });
        let start = Instant::now();
        let mut retries = 0u32;
        loop {
            let attempt_no = retries + 1;
            let (error, failed) = match self
                .attempt(&url, path, &payload, mode, &auth, log.as_ref(), attempt_no)
                .await
            {
                Ok(sent) => return Ok(sent),
                Err(e) => e,
            };
            let decision = failed.outcome().map_or(Decision::Stop, |o| {
                self.retry.decide(
                    Attempt {
                        retries,
                        elapsed: start.elapsed(),
                    },
                    &o,
                )
            });
            match decision {
                Decision::Retry(delay, reason) => {
                    tracing::info!(
                        route = %route,
                        attempt = attempt_no,
                        next_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        %reason,
                        request_id = error.request_id().unwrap_or("-"),
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
                Decision::Stop => {
                    if retries > 0 {
                        tracing::debug!(route = %route, attempts = attempt_no, "giving up");
                    }
                    return Err(error);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        url: &str,
        path: &str,
        payload: &Payload,
        mode: Mode,
        auth: &[(HeaderName, HeaderValue)],
        log: Option<&LogEntry>,
        attempt_no: u32,
    ) -> Result<Sent, (ClientError, Failed)> {
        // A fresh id per attempt, sent as `X-Client-Request-Id` (which OpenAI records), so
        // an attempt that never got an answer, and so no `x-request-id`, can still be
        // quoted and found in logs.
        let client_request_id = format!("fourk-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let mut builder = self
            .http
            .post(url)
            .header(CLIENT_REQUEST_ID, client_request_id.as_str());
        for (name, value) in auth {
            builder = builder.header(name.clone(), value.clone());
        }
        builder = match payload {
            Payload::Json(body) => builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone()),
            Payload::Multipart(parts) => {
                builder.multipart(payload::form(parts).map_err(|e| (e, Failed::Final))?)
            }
        };
        if mode == Mode::Stream {
            builder = builder.header(ACCEPT, "text/event-stream");
        }
        let request = builder
            .build()
            .map_err(|e| (ClientError::Config(e.to_string()), Failed::Final))?;
        if let Some(log) = log {
            let mut headers = self.default_headers.clone();
            headers.extend(request.headers().iter().map(|(k, v)| (k.clone(), v.clone())));
            let (log, url, path, payload) = (log.clone(), url.to_owned(), path.to_owned(), payload.clone());
            off_runtime(move || {
                log.request(
                    attempt_no,
                    &LoggedRequest {
                        method: "POST",
                        url: &url,
                        path: &path,
                        headers: &headers,
                        payload: &payload,
                    },
                );
            })
            .await;
        }
        let start = Instant::now();
        tracing::debug!(%url, attempt = attempt_no, "sending request");
        let resp = match self.http.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                let failed = if e.is_connect() {
                    Failed::NotSent
                } else {
                    Failed::Ambiguous
                };
                let err = transport_error(url, &e, start.elapsed(), None, Some(client_request_id.as_str()));
                if let Some(log) = log {
                    log.failure(attempt_no, &err, start.elapsed());
                }
                return Err((err, failed));
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let request_id = request_id_of(&headers);
        let success = (200..300).contains(&status);
        let is_event_stream = header_str(&headers, "content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
        if success && mode == Mode::Stream && is_event_stream {
            let head = head_of(status, headers, start.elapsed(), attempt_no, &client_request_id);
            tracing::debug!(status, ?request_id, "event stream started");
            return Ok(Sent::Stream(StreamStart {
                head,
                url: url.to_owned(),
                response: resp,
                log: log.map(|l| (l.clone(), attempt_no)),
            }));
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if success => {
                let err = transport_error(
                    url,
                    &e,
                    start.elapsed(),
                    request_id,
                    Some(client_request_id.as_str()),
                );
                if let Some(log) = log {
                    log.failure(attempt_no, &err, start.elapsed());
                }
                return Err((err, Failed::Ambiguous));
            }
            // An error status with a truncated body is still that error status.
            Err(_) => Bytes::new(),
        };
        let elapsed = start.elapsed();
        tracing::debug!(
            status,
            ?request_id,
            bytes = body.len(),
            ?elapsed,
            "response received"
        );
        if let Some(log) = log {
            let (log, headers, body) = (log.clone(), headers.clone(), body.clone());
            off_runtime(move || log.response(attempt_no, status, &headers, elapsed, &body)).await;
        }
        if !success {
            let error = error_of(&body);
            let failed = Failed::Status {
                status,
                code: error.as_ref().and_then(|e| e.code.clone()),
                kind: error.as_ref().map(|e| e.kind.clone()),
                hints: ServerHints::from_headers(&headers),
            };
            return Err((
                ClientError::Api {
                    status,
                    provider: self.config.provider.kind,
                    class: ErrorClass::of(status, error.as_deref()),
                    error,
                    request_id,
                    retry_after: retry_after(&headers),
                },
                failed,
            ));
        }
        if mode == Mode::Stream {
            // A 2xx that is not a stream was probably billed: report, never retry.
            return Err((
                ClientError::InvalidResponse {
                    message: format!(
                        "expected an event stream (text/event-stream), got {}",
                        header_str(&headers, "content-type").unwrap_or_else(|| "no content type".into())
                    ),
                    request_id,
                },
                Failed::Final,
            ));
        }
        let head = head_of(status, headers, elapsed, attempt_no, &client_request_id);
        Ok(Sent::Full(ApiResponse {
            status,
            request_id: head.request_id,
            processing_ms: head.processing_ms,
            emulator: head.emulator,
            rate_limits: head.rate_limits,
            elapsed,
            body,
            attempts: attempt_no,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_named_from_their_paths() {
        assert_eq!(route_of("images/generations"), "images-generations");
        assert_eq!(route_of("/responses"), "responses");
    }
}
