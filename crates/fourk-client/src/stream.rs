//! Typed event streams over server-sent events.
//!
//! An [`EventStream`] owns the HTTP body. It ends after `data: [DONE]`, after an error
//! (which it yields as [`ClientError::Stream`]), or when the server closes the body; and it
//! stops as soon as the consumer drops it, because dropping it drops the body and so closes
//! the connection. There is no background task that could keep an idle upstream open.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use fourk_api::{ApiError, ErrorClass, ErrorEnvelope, ImageStreamEvent, ResponseStreamEvent};
use futures_util::Stream;
use serde::de::DeserializeOwned;

use crate::error::{ClientError, transport_error};
use crate::head::ResponseHead;
use crate::payload_log::StreamRecorder;
use crate::sse::{SseDecoder, SseEvent};

/// What a typed stream needs to know about its events.
pub trait StreamEvent: DeserializeOwned {
    /// An event type this release does not model.
    fn is_unknown(&self) -> bool;
    /// An event that completes an answer (a final image, a finished response): a body that
    /// ends before enough of these was cut short.
    fn is_final(&self) -> bool;
    /// An event that reports an error (the Responses API's `error` event).
    fn error(&self) -> Option<ApiError>;
}

impl StreamEvent for ImageStreamEvent {
    fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }
    fn is_final(&self) -> bool {
        self.is_completed()
    }
    fn error(&self) -> Option<ApiError> {
        None
    }
}

impl StreamEvent for ResponseStreamEvent {
    fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }
    fn is_final(&self) -> bool {
        self.is_terminal()
    }
    fn error(&self) -> Option<ApiError> {
        match self {
            Self::Error(e) => Some(ApiError {
                message: e.message.clone(),
                kind: "error".to_owned(),
                param: e.param.clone(),
                code: e.code.clone(),
                inner_error: None,
            }),
            _ => None,
        }
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the body.
    Open,
    /// The body ended; buffered events remain, then the completeness check.
    BodyEnded,
    /// Done: nothing more is yielded.
    Closed,
}

/// A stream of typed events: [`ImageStreamEvent`] from the Image API,
/// [`ResponseStreamEvent`] from the Responses API.
///
/// After `[DONE]`, an error event, or a transport error the stream yields `None`. An event
/// whose data does not parse is yielded as [`ClientError::InvalidResponse`] and the stream
/// goes on, so one malformed event does not cost the image that follows it.
pub struct EventStream<T> {
    head: ResponseHead,
    url: String,
    body: Option<Body>,
    state: State,
    decoder: SseDecoder,
    /// Final events needed for a complete answer (`n` images).
    finals_expected: u32,
    finals_seen: u32,
    started: Instant,
    recorder: Option<StreamRecorder>,
    _event: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("url", &self.url)
            .field("head", &self.head)
            .field("state", &self.state)
            .field("finals_seen", &self.finals_seen)
            .finish_non_exhaustive()
    }
}

impl<T: StreamEvent> EventStream<T> {
    pub(crate) fn new(
        head: ResponseHead,
        url: String,
        response: reqwest::Response,
        finals_expected: u32,
        recorder: Option<StreamRecorder>,
    ) -> Self {
        Self {
            head,
            url,
            body: Some(Box::pin(response.bytes_stream())),
            state: State::Open,
            decoder: SseDecoder::new(),
            finals_expected: finals_expected.max(1),
            finals_seen: 0,
            started: Instant::now(),
            recorder,
            _event: PhantomData,
        }
    }

    /// The answer's status and headers.
    #[must_use]
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// `x-request-id`.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.head.request_id.as_deref()
    }

    fn close(&mut self, how: &str) {
        // Dropping the body closes the connection.
        self.body = None;
        self.state = State::Closed;
        if let Some(r) = &mut self.recorder {
            r.finish(how);
        }
    }

    fn stream_error(&self, error: ApiError) -> ClientError {
        ClientError::Stream {
            class: ErrorClass::of_code(&error),
            error: Box::new(error),
            request_id: self.head.request_id.clone(),
        }
    }

    /// Turn one SSE event into an item, or `None` to skip it.
    fn handle(&mut self, ev: &SseEvent) -> Option<Result<T, ClientError>> {
        if let Some(r) = &mut self.recorder {
            r.event(ev);
        }
        let data = ev.data.trim_ascii();
        if data == b"[DONE]" {
            self.close("done");
            return None;
        }
        if data.is_empty() {
            return None;
        }
        if ev.event.as_deref() == Some("error") {
            let error = error_in(data).unwrap_or_else(|| ApiError {
                message: String::from_utf8_lossy(data).into_owned(),
                kind: "error".to_owned(),
                param: None,
                code: None,
                inner_error: None,
            });
            let err = self.stream_error(error);
            self.close("error event");
            return Some(Err(err));
        }
        match serde_json::from_slice::<T>(data) {
            Ok(event) => {
                let error = event
                    .error()
                    .or_else(|| event.is_unknown().then(|| error_in(data)).flatten());
                if let Some(error) = error {
                    let err = self.stream_error(error);
                    self.close("error event");
                    return Some(Err(err));
                }
                if event.is_final() {
                    self.finals_seen += 1;
                }
                Some(Ok(event))
            }
            Err(e) => {
                if let Some(error) = error_in(data) {
                    let err = self.stream_error(error);
                    self.close("error event");
                    return Some(Err(err));
                }
                Some(Err(ClientError::InvalidResponse {
                    message: format!(
                        "stream event {} is not valid: {e}",
                        ev.event.as_deref().unwrap_or("(unnamed)")
                    ),
                    request_id: self.head.request_id.clone(),
                }))
            }
        }
    }
}

/// The error an event's data reports: `{"error": {...}}`, or a top-level
/// `{"type": "error", "message": ...}`.
fn error_in(data: &[u8]) -> Option<ApiError> {
    #[derive(serde::Deserialize)]
    struct Flat {
        #[serde(rename = "type")]
        kind: Option<String>,
        message: Option<String>,
        code: Option<String>,
        param: Option<String>,
    }
    if let Ok(env) = serde_json::from_slice::<ErrorEnvelope>(data) {
        return Some(env.error);
    }
    let flat: Flat = serde_json::from_slice(data).ok()?;
    (flat.kind.as_deref() == Some("error")).then(|| ApiError {
        message: flat.message.unwrap_or_default(),
        kind: "error".to_owned(),
        param: flat.param,
        code: flat.code,
        inner_error: None,
    })
}

impl<T: StreamEvent> Stream for EventStream<T> {
    type Item = Result<T, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.state == State::Closed {
                return Poll::Ready(None);
            }
            if let Some(ev) = this.decoder.next_event() {
                if let Some(item) = this.handle(&ev) {
                    return Poll::Ready(Some(item));
                }
                continue;
            }
            if this.state == State::BodyEnded {
                if let Some(ev) = this.decoder.finish() {
                    if let Some(item) = this.handle(&ev) {
                        return Poll::Ready(Some(item));
                    }
                    continue;
                }
                if this.finals_seen >= this.finals_expected {
                    this.close("end of body");
                    return Poll::Ready(None);
                }
                let err = ClientError::Transport {
                    url: this.url.clone(),
                    message: format!(
                        "the event stream ended after {} of {} final events",
                        this.finals_seen, this.finals_expected
                    ),
                    request_id: this.head.request_id.clone(),
                    client_request_id: Some(this.head.client_request_id.clone()),
                };
                this.close("end of body before the final event");
                return Poll::Ready(Some(Err(err)));
            }
            let Some(body) = this.body.as_mut() else {
                return Poll::Ready(None);
            };
            match body.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.decoder.push(chunk),
                Poll::Ready(Some(Err(e))) => {
                    let err = transport_error(
                        &this.url,
                        &e,
                        this.started.elapsed(),
                        this.head.request_id.clone(),
                        Some(this.head.client_request_id.as_str()),
                    );
                    this.close(&format!("transport error: {err}"));
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    this.body = None;
                    this.state = State::BodyEnded;
                }
            }
        }
    }
}
