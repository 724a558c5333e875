//! What a request body may be: its size, per route, close to the API's limits, and how long it
//! may take to arrive. [`guard`] enforces both while the body streams in, whatever the handler
//! does with it, and answers in the API's envelope: `413 request_too_large` naming the limit,
//! or `408 request_timeout`. Either closes the connection, since the rest of the body is not
//! read.
//!
//! The deadline covers the whole body, from its first read: an idle timeout (one that restarts
//! with every chunk, like tower-http's `TimeoutBody`) never drops a client that trickles a byte
//! every few seconds.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use fourk_api::{ImageEndpoint, MAX_IMAGE_URL_CHARS};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;

use crate::error::EmulatorError;
use crate::state::EmulatorState;

const MIB: u64 = 1024 * 1024;

/// A generation body: a prompt of at most 32,000 characters and a few options.
pub(crate) const GENERATION_BODY_BYTES: u64 = MIB;
/// A `/v1/responses` body: input images travel inside it as base64 data URLs, and the API
/// takes at most 50 MB of image input per request.
pub(crate) const RESPONSES_BODY_BYTES: u64 = 50 * MIB;
/// A JSON edit: 16 images and a mask, each a data URL of at most [`MAX_IMAGE_URL_CHARS`]
/// characters, and the options.
pub(crate) const EDIT_JSON_BODY_BYTES: u64 =
    (crate::edits::MAX_IMAGES as u64 + 1) * MAX_IMAGE_URL_CHARS as u64 + MIB;
/// A multipart edit: 16 images under 50 MB, a mask under 4 MB, the text fields. Its image
/// parts are spooled to disk as they arrive, each under its own limit.
pub(crate) const EDIT_FORM_BODY_BYTES: u64 = crate::edits::MAX_BODY_BYTES as u64;
/// A `/v1/files` upload: the file (512 MB at most, written to disk as it arrives) and its
/// text fields.
pub(crate) const FILE_UPLOAD_BODY_BYTES: u64 = crate::files::MAX_UPLOAD_BODY as u64;
/// Any other body (`/v1/batches`, and routes that take none).
pub(crate) const OTHER_BODY_BYTES: u64 = MIB;

/// A body over its limit is read on and dropped up to this many more bytes before the `413`,
/// so that the client, still sending, reads the answer instead of a reset connection. A body
/// whose `Content-Length` is further over is answered at once.
const DRAIN_BYTES: u64 = 16 * MIB;

/// One route's limit and the advice its `413` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLimit {
    pub(crate) bytes: u64,
    pub(crate) hint: &'static str,
}

/// The limit of a request's body, by route and (for edits) by content type.
pub(crate) fn body_limit(method: &Method, path: &str, headers: &HeaderMap) -> BodyLimit {
    if method != Method::POST {
        return BodyLimit {
            bytes: OTHER_BODY_BYTES,
            hint: "This route takes no request body.",
        };
    }
    if path == ImageEndpoint::Generations.v1() {
        BodyLimit {
            bytes: GENERATION_BODY_BYTES,
            hint: "A generation body is a prompt of at most 32,000 characters and its options; send the prompt and options only.",
        }
    } else if path == ImageEndpoint::Edits.v1() {
        let json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
        if json {
            BodyLimit {
                bytes: EDIT_JSON_BODY_BYTES,
                hint: "A JSON edit takes at most 16 images and a mask, each a data URL of at most 20,971,520 characters; upload larger images with POST /v1/files and reference them by file_id.",
            }
        } else {
            BodyLimit {
                bytes: EDIT_FORM_BODY_BYTES,
                hint: "An edit takes at most 16 images, each smaller than 50 MB, and a mask smaller than 4 MB.",
            }
        }
    } else if path == ImageEndpoint::Responses.v1() {
        BodyLimit {
            bytes: RESPONSES_BODY_BYTES,
            hint: "Input images count toward it: send fewer, smaller or more compressed (JPEG or WebP) images.",
        }
    } else if fourk_api::gemini::is_generate_content_path(path) {
        BodyLimit {
            bytes: fourk_api::gemini::MAX_INLINE_REQUEST_BYTES as u64,
            hint: "Gemini takes at most 100 MB of inline data a request: send fewer or smaller images.",
        }
    } else if path == "/v1/files" {
        BodyLimit {
            bytes: FILE_UPLOAD_BODY_BYTES,
            hint: "A file may be at most 512 MB; split a batch input into several files.",
        }
    } else {
        BodyLimit {
            bytes: OTHER_BODY_BYTES,
            hint: "Send a smaller body.",
        }
    }
}

/// Why a guarded body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    TooLarge,
    TimedOut,
}

/// The error a guarded body fails with (the handler's own error is replaced by the guard's
/// answer, so its text only reaches logs).
#[derive(Debug, thiserror::Error)]
#[error("the request body {0}")]
struct GuardError(&'static str);

/// A request body under a size limit and a deadline for the whole of it, started at its
/// first read. Why it stopped is left in `stop` for [`guard`] to answer. Over the limit, up to
/// [`DRAIN_BYTES`] more are read and dropped before the body fails, so that a client still
/// sending reads the `413` rather than a reset connection.
#[derive(Debug)]
struct Guarded {
    inner: Body,
    limit: u64,
    read: u64,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    stop: Arc<OnceLock<Stop>>,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = GuardError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, GuardError>>> {
        let this = &mut *self;
        let timeout = this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if deadline.as_mut().poll(cx).is_ready() {
            let _ = this.stop.set(Stop::TimedOut);
            return Poll::Ready(Some(Err(GuardError("did not arrive in time"))));
        }
        loop {
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "request body failed");
                    return Poll::Ready(Some(Err(GuardError("could not be read"))));
                }
                None if this.read > this.limit => return Poll::Ready(Some(Err(GuardError("is too large")))),
                None => return Poll::Ready(None),
            };
            this.read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if this.read <= this.limit {
                return Poll::Ready(Some(Ok(frame)));
            }
            let _ = this.stop.set(Stop::TooLarge);
            if this.read - this.limit > DRAIN_BYTES {
                return Poll::Ready(Some(Err(GuardError("is too large"))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// An answer that ends the connection: the rest of the body will not be read. Gemini's
/// route answers in Gemini's envelope.
fn closing(e: EmulatorError, path: &str) -> Response {
    let mut r = if fourk_api::gemini::is_generate_content_path(path) {
        crate::gemini::error_response(e)
    } else {
        e.into_response()
    };
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The middleware: refuse a body whose `Content-Length` is over its route's limit, otherwise
/// guard it while the handler reads it, and answer `413` or `408` in the API's envelope
/// (instead of whatever the handler made of the failed read) when the guard stopped it.
pub(crate) async fn guard(State(state): State<Arc<EmulatorState>>, req: Request, next: Next) -> Response {
    let limit = body_limit(req.method(), req.uri().path(), req.headers());
    let path = req.uri().path().to_owned();
    let route = format!("{} {path}", req.method());
    let timeout = state.config.body_read_timeout;
    let too_large = |route: String| EmulatorError::BodyTooLarge {
        route,
        limit: limit.bytes,
        hint: limit.hint,
    };
    if let Some(len) = content_length(req.headers())
        && len > limit.bytes
    {
        if len - limit.bytes <= DRAIN_BYTES {
            let drain = async {
                let mut body = req.into_body();
                while let Some(Ok(_)) = body.frame().await {}
            };
            if tokio::time::timeout(timeout, drain).await.is_err() {
                return closing(EmulatorError::BodyTimeout(timeout), &path);
            }
        }
        return closing(too_large(route), &path);
    }
    let stop = Arc::new(OnceLock::new());
    let req = req.map(|inner| {
        Body::new(Guarded {
            inner,
            limit: limit.bytes,
            read: 0,
            timeout,
            deadline: None,
            stop: Arc::clone(&stop),
        })
    });
    let response = next.run(req).await;
    match stop.get() {
        Some(Stop::TooLarge) => closing(too_large(route), &path),
        Some(Stop::TimedOut) => closing(EmulatorError::BodyTimeout(timeout), &path),
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_route_and_the_edit_body_type() {
        let none = HeaderMap::new();
        let gen_limit = body_limit(&Method::POST, "/v1/images/generations", &none);
        assert_eq!(gen_limit.bytes, MIB);
        let form = body_limit(&Method::POST, "/v1/images/edits", &none);
        assert_eq!(form.bytes, 16 * 50 * MIB + 4 * MIB + MIB);
        let mut json = HeaderMap::new();
        json.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let json = body_limit(&Method::POST, "/v1/images/edits", &json);
        assert_eq!(json.bytes, 17 * 20 * MIB + MIB);
        assert_eq!(body_limit(&Method::POST, "/v1/files", &none).bytes, 513 * MIB);
        assert_eq!(body_limit(&Method::POST, "/v1/responses", &none).bytes, 50 * MIB);
        assert_eq!(body_limit(&Method::POST, "/v1/batches", &none).bytes, MIB);
        assert_eq!(body_limit(&Method::GET, "/v1/files", &none).bytes, MIB);
    }
}
