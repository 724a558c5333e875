//! Server-sent events: `event: NAME\ndata: JSON\n\n` frames from a producer task, which stops
//! as soon as the client goes away.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::mpsc;

/// How many frames may wait for a slow client. Small: each may hold a multi-megabyte image.
const BUFFER: usize = 2;

/// One frame. `data` is a single line: JSON never contains a raw newline.
pub(crate) fn frame(event: &str, data: &Value) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!("event: {event}\ndata: {json}\n\n"))
}

/// The producer side of an event stream.
#[derive(Debug, Clone)]
pub(crate) struct Events(mpsc::Sender<Bytes>);

impl Events {
    /// Send one event. `false` when the client has gone: the producer should stop, so a
    /// render nobody waits for is not kept going.
    pub(crate) async fn send(&self, event: &str, data: &Value) -> bool {
        self.0.send(frame(event, data)).await.is_ok()
    }
}

/// A `200 text/event-stream` answer and the handle to feed it.
pub(crate) fn channel() -> (Events, Response) {
    let (tx, rx) = mpsc::channel::<Bytes>(BUFFER);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (Events(tx), response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_event_then_one_data_line() {
        let f = frame("image_generation.completed", &serde_json::json!({"a": "x\ny"}));
        assert_eq!(
            &f[..],
            b"event: image_generation.completed\ndata: {\"a\":\"x\\ny\"}\n\n"
        );
    }
}
