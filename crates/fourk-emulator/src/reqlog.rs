//! The request log: one JSON line per request received, appended and flushed line by line
//! so that a test or a CI job can read it while the emulator runs.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

/// One line of the log.
#[derive(Debug, Serialize)]
pub(crate) struct Entry<'a> {
    /// Unix time in milliseconds when the request arrived.
    pub(crate) ts_ms: u64,
    /// `POST`, `GET`, ...
    pub(crate) method: &'a str,
    /// The path, such as `/v1/images/generations`.
    pub(crate) route: &'a str,
    /// SHA-256 of the prompt (hex), when the request got far enough to have one.
    pub(crate) prompt_sha256: Option<&'a str>,
    /// The HTTP status sent; `null` when no status was sent: the connection was reset, or
    /// the client went away first (a `stall` it did not wait out).
    pub(crate) status: Option<u16>,
    /// The `x-request-id` of the answer.
    pub(crate) request_id: &'a str,
    /// The `x-client-request-id` the client sent, if any: the id a client can quote when
    /// no answer (and so no `x-request-id`) reached it.
    pub(crate) client_request_id: Option<&'a str>,
    /// The injected fault, if any (`429`, `reset`, `wrong-size`, ...).
    pub(crate) fault: Option<&'a str>,
}

/// Writes a request's line exactly once: with its status through [`LineGuard::finish`], or
/// with no status when the request is dropped first (the client hung up during a stall), so
/// every request that arrived is counted.
pub(crate) struct LineGuard<F: FnOnce(Option<u16>)> {
    write: Option<F>,
}

impl<F: FnOnce(Option<u16>)> LineGuard<F> {
    pub(crate) fn new(write: F) -> Self {
        Self { write: Some(write) }
    }

    /// Write the line with `status` (`None`: no status line was sent).
    pub(crate) fn finish(mut self, status: Option<u16>) {
        if let Some(w) = self.write.take() {
            w(status);
        }
    }
}

impl<F: FnOnce(Option<u16>)> Drop for LineGuard<F> {
    fn drop(&mut self) {
        if let Some(w) = self.write.take() {
            w(None);
        }
    }
}

/// An open log file.
#[derive(Debug)]
pub(crate) struct RequestLog {
    file: Mutex<File>,
}

impl RequestLog {
    /// Open `path` for appending, creating it if needed.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Append one line. The line is written with a single `write_all` on an append-mode
    /// file, so concurrent requests never interleave; a failure is logged, not fatal.
    pub(crate) fn write(&self, entry: &Entry<'_>) {
        let mut line = match serde_json::to_vec(entry) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "request log line not serialized");
                return;
            }
        };
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = file.write_all(&line).and_then(|()| file.flush()) {
            tracing::warn!(error = %e, "request log line not written");
        }
    }
}
