//! The payload log: every attempt's request and response written to a folder, with secrets
//! redacted and image blobs moved to their own files, so a problem can be read, shared and
//! replayed (see [`crate::replay`]).
//!
//! Per attempt `K` of the `NNN`th call on a route:
//! - `NNN-<route>-attempt-K.request.json`: method, URL, endpoint path, headers
//!   (`Authorization` becomes `Bearer [REDACTED]`, other secret-looking headers
//!   `[REDACTED]`), and the JSON body, or for multipart the field list;
//! - `NNN-<route>-attempt-K.response.json`: status, headers, elapsed time and the body, or
//!   for a stream the list of events and how it ended, or the transport error;
//! - `NNN-<route>-attempt-K.<request|response>.blob-N.<ext>`: each image blob.
//!
//! A blob is a base64 string longer than 256 characters in a JSON body (`b64_json`,
//! `result`, `partial_image_b64`, `data:` URLs...) or a multipart file part. In its place the
//! JSON holds `{"blob": "<file>", "sha256": ..., "bytes": ..., "width": ..., "height": ...}`,
//! plus `data_url_prefix` for data URLs and `filename`/`content_type` for file parts. Width
//! and height come from the injected [`ImageInspector`]; without one they are absent (this
//! crate does not decode images).
//!
//! Logging never fails a request: a write error is a `tracing` warning. The key is never
//! written: headers are redacted by name and every text file is scrubbed for the key itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::ClientError;
use crate::payload::{FormPart, Payload};
use crate::sse::SseEvent;

/// Reads an image's width and height from its bytes (for example fourk-imaging's header
/// probe). `None` when the bytes are not an image it knows.
pub type ImageInspector = fn(&[u8]) -> Option<(u32, u32)>;

/// Strings at least this long that are valid base64 are treated as blobs. Shorter ones stay
/// inline: they are not images, and a short id that happens to be base64 stays readable.
pub(crate) const BLOB_MIN_CHARS: usize = 256;

/// Where the payload log goes, shared by clones of a client.
#[derive(Debug, Clone)]
pub struct PayloadLog {
    dir: PathBuf,
    next: Arc<AtomicU32>,
    inspector: Option<ImageInspector>,
}

impl PayloadLog {
    /// Log into `dir` (created on the first write). Numbering continues after the entries
    /// already there, so one folder can collect several runs.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let last = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.split('-').next()?.parse::<u32>().ok()
            })
            .max()
            .unwrap_or(0);
        Self {
            dir,
            next: Arc::new(AtomicU32::new(last + 1)),
            inspector: None,
        }
    }

    /// Fill in `width` and `height` of blobs with this function. Default: none.
    #[must_use]
    pub fn with_inspector(mut self, inspector: ImageInspector) -> Self {
        self.inspector = Some(inspector);
        self
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Start logging one call (all its attempts share the number).
    pub(crate) fn begin(&self, route: &str, secrets: Vec<SecretString>) -> LogEntry {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        LogEntry {
            dir: self.dir.clone(),
            prefix: format!("{n:03}-{route}"),
            inspector: self.inspector,
            secrets,
            hidden: Vec::new(),
        }
    }
}

/// One logged call.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    dir: PathBuf,
    prefix: String,
    inspector: Option<ImageInspector>,
    /// Values scrubbed from every file written (the key, a token, `--header` values).
    secrets: Vec<SecretString>,
    /// Header names redacted besides the secret-looking ones (every `--header`).
    hidden: Vec<String>,
}

/// The request as it goes out.
pub(crate) struct LoggedRequest<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub payload: &'a Payload,
}

impl LogEntry {
    /// Also redact these headers (lower-case names), whatever they are called.
    pub(crate) fn hiding_headers(mut self, names: Vec<String>) -> Self {
        self.hidden = names;
        self
    }

    fn redact(&self, headers: &HeaderMap) -> Value {
        redact_headers_with(headers, &self.hidden)
    }

    fn stem(&self, attempt: u32) -> String {
        format!("{}-attempt-{attempt}", self.prefix)
    }

    fn blobs(&self, attempt: u32, side: &'static str) -> BlobSink {
        BlobSink {
            dir: self.dir.clone(),
            stem: format!("{}.{side}", self.stem(attempt)),
            n: 0,
            inspector: self.inspector,
        }
    }

    fn write(&self, name: &str, value: &Value) {
        let result = std::fs::create_dir_all(&self.dir).and_then(|()| {
            let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
            for key in &self.secrets {
                let key = key.expose_secret();
                if !key.is_empty() && text.contains(key) {
                    text = text.replace(key, "[REDACTED]");
                }
            }
            text.push('\n');
            std::fs::write(self.dir.join(name), text)
        });
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), file = name, error = %e, "cannot write the payload log");
        }
    }

    /// `...request.json`.
    pub(crate) fn request(&self, attempt: u32, req: &LoggedRequest<'_>) {
        let mut blobs = self.blobs(attempt, "request");
        let mut doc = json!({
            "method": req.method,
            "url": redact_url(req.url),
            "path": req.path,
            "attempt": attempt,
            "headers": self.redact(req.headers),
        });
        match req.payload {
            Payload::Json(body) => {
                doc["body"] = body_value(body, &mut blobs);
            }
            Payload::Multipart(parts) => {
                let fields: Vec<Value> = parts
                    .iter()
                    .map(|p| match p {
                        FormPart::Text { name, value } => json!({"name": name, "value": value}),
                        FormPart::File {
                            name,
                            filename,
                            mime,
                            data,
                        } => {
                            let ext = ext_of_mime(mime);
                            let mut file = blobs.save(data, ext);
                            file["filename"] = json!(filename);
                            file["content_type"] = json!(mime);
                            json!({"name": name, "file": file})
                        }
                    })
                    .collect();
                doc["multipart"] = Value::Array(fields);
            }
        }
        self.write(&format!("{}.request.json", self.stem(attempt)), &doc);
    }

    /// `...response.json` for a complete answer.
    pub(crate) fn response(
        &self,
        attempt: u32,
        status: u16,
        headers: &HeaderMap,
        elapsed: Duration,
        body: &[u8],
    ) {
        let mut blobs = self.blobs(attempt, "response");
        let doc = json!({
            "status": status,
            "headers": self.redact(headers),
            "elapsed_ms": elapsed.as_millis(),
            "body": body_value(body, &mut blobs),
        });
        self.write(&format!("{}.response.json", self.stem(attempt)), &doc);
    }

    /// `...response.json` for an attempt that got no complete answer.
    pub(crate) fn failure(&self, attempt: u32, error: &ClientError, elapsed: Duration) {
        let doc = json!({
            "error": error.to_string(),
            "possibly_billed": error.possibly_billed(),
            "request_id": error.request_id(),
            "elapsed_ms": elapsed.as_millis(),
        });
        self.write(&format!("{}.response.json", self.stem(attempt)), &doc);
    }

    /// A recorder for a streamed answer; it writes `...response.json` when the stream ends
    /// or is dropped.
    pub(crate) fn recorder(&self, attempt: u32, status: u16, headers: &HeaderMap) -> StreamRecorder {
        StreamRecorder {
            entry: self.clone(),
            attempt,
            blobs: self.blobs(attempt, "response"),
            head: json!({"status": status, "headers": self.redact(headers)}),
            events: Vec::new(),
            written: false,
        }
    }
}

/// Collects a stream's events, blobs summarised, for the log.
#[derive(Debug)]
pub(crate) struct StreamRecorder {
    entry: LogEntry,
    attempt: u32,
    blobs: BlobSink,
    head: Value,
    events: Vec<Value>,
    written: bool,
}

impl StreamRecorder {
    /// Record one event. Called from the stream's `poll_next`, so the blob is written
    /// synchronously: the log is an opt-in debugging aid, and a blob write costs about as
    /// much as the base64 decode the consumer does anyway.
    pub(crate) fn event(&mut self, ev: &SseEvent) {
        let data = body_value(&ev.data, &mut self.blobs);
        self.events.push(json!({"event": ev.event, "data": data}));
    }

    /// Write the file; `end` says how the stream ended.
    pub(crate) fn finish(&mut self, end: &str) {
        if self.written {
            return;
        }
        self.written = true;
        let mut doc = self.head.take();
        doc["events"] = Value::Array(std::mem::take(&mut self.events));
        doc["end"] = json!(end);
        self.entry
            .write(&format!("{}.response.json", self.entry.stem(self.attempt)), &doc);
    }
}

impl Drop for StreamRecorder {
    fn drop(&mut self) {
        self.finish("dropped by the consumer before the end");
    }
}

/// Writes blobs beside the JSON and returns their summaries.
#[derive(Debug)]
struct BlobSink {
    dir: PathBuf,
    stem: String,
    n: usize,
    inspector: Option<ImageInspector>,
}

impl BlobSink {
    fn save(&mut self, bytes: &[u8], ext: &str) -> Value {
        self.n += 1;
        let name = format!("{}.blob-{}.{ext}", self.stem, self.n);
        let result =
            std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::write(self.dir.join(&name), bytes));
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), file = %name, error = %e, "cannot write a payload-log blob");
        }
        let mut summary = json!({
            "blob": name,
            "sha256": format!("{:x}", Sha256::digest(bytes)),
            "bytes": bytes.len(),
        });
        if let Some((w, h)) = self.inspector.and_then(|f| f(bytes)) {
            summary["width"] = json!(w);
            summary["height"] = json!(h);
        }
        summary
    }

    /// Replace `s` by a blob summary when it is base64 (or a base64 `data:` URL) long enough
    /// to be an image. Only strict, canonical base64 qualifies, so replay restores the exact
    /// string.
    fn try_blob(&mut self, s: &str, ext_hint: Option<&str>) -> Option<Value> {
        if s.len() < BLOB_MIN_CHARS {
            return None;
        }
        let engine = &base64::engine::general_purpose::STANDARD;
        if let Some(rest) = s.strip_prefix("data:") {
            let comma = rest.find(";base64,")?;
            let mime = &rest[..comma];
            let prefix_len = "data:".len() + comma + ";base64,".len();
            let bytes = engine.decode(&s[prefix_len..]).ok()?;
            let mut summary = self.save(&bytes, ext_of_mime(mime));
            summary["data_url_prefix"] = json!(&s[..prefix_len]);
            return Some(summary);
        }
        let bytes = engine.decode(s).ok()?;
        Some(self.save(&bytes, ext_hint.unwrap_or("bin")))
    }
}

/// A body as JSON with blobs summarised; text that is not JSON as a string; anything else
/// as one blob.
fn body_value(body: &[u8], blobs: &mut BlobSink) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            summarise(&mut v, None, blobs);
            v
        }
        Err(_) => match std::str::from_utf8(body) {
            Ok(text) => blobs
                .try_blob(text.trim(), None)
                .unwrap_or_else(|| Value::String(text.to_owned())),
            Err(_) => blobs.save(body, "bin"),
        },
    }
}

fn summarise(v: &mut Value, ext_hint: Option<&str>, blobs: &mut BlobSink) {
    match v {
        Value::String(s) => {
            if let Some(summary) = blobs.try_blob(s, ext_hint) {
                *v = summary;
            }
        }
        Value::Array(items) => {
            for item in items {
                summarise(item, ext_hint, blobs);
            }
        }
        Value::Object(map) => {
            let hint = map
                .get("output_format")
                .and_then(Value::as_str)
                .map(ext_of_format)
                .or(ext_hint);
            for (_, item) in map.iter_mut() {
                summarise(item, hint, blobs);
            }
        }
        _ => {}
    }
}

fn ext_of_format(format: &str) -> &'static str {
    match format {
        "png" => "png",
        "jpeg" | "jpg" => "jpg",
        "webp" => "webp",
        "gif" => "gif",
        "svg" => "svg",
        _ => "bin",
    }
}

fn ext_of_mime(mime: &str) -> &'static str {
    ext_of_format(mime.strip_prefix("image/").unwrap_or(""))
}

/// Header names that look like they carry a secret.
fn is_secret_header(name: &str) -> bool {
    const WORDS: [&str; 8] = [
        "auth",
        "key",
        "token",
        "secret",
        "cookie",
        "password",
        "signature",
        "credential",
    ];
    let n = name.to_ascii_lowercase();
    WORDS.iter().any(|w| n.contains(w))
}

/// A URL with the values of secret-looking query parameters (`?key=`, as the Gemini API
/// accepts a key) replaced by `[REDACTED]`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return url.to_owned();
    };
    if !u.query_pairs().any(|(k, _)| is_secret_header(&k)) {
        return url.to_owned();
    }
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if is_secret_header(&k) {
                "[REDACTED]".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.into()
}

/// Headers as a JSON object, secrets redacted: the secret-looking ones and those named in
/// `hidden`. `Authorization` keeps its scheme so the log still shows which kind of
/// credential was sent.
pub(crate) fn redact_headers_with(headers: &HeaderMap, hidden: &[String]) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        let shown = if name.eq_ignore_ascii_case("authorization") {
            let scheme = value
                .to_str()
                .ok()
                .and_then(|v| v.split_whitespace().next())
                .filter(|s| s.eq_ignore_ascii_case("bearer"));
            match scheme {
                Some(_) => "Bearer [REDACTED]".to_owned(),
                None => "[REDACTED]".to_owned(),
            }
        } else if is_secret_header(name) || hidden.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            "[REDACTED]".to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        match out.get_mut(name) {
            Some(Value::Array(list)) => list.push(Value::String(shown)),
            Some(prev) => *prev = json!([prev.take(), shown]),
            None => {
                out.insert(name.to_owned(), Value::String(shown));
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn secret_headers_are_redacted_and_others_kept() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-abc"));
        h.insert("x-api-key", HeaderValue::from_static("sk-abc"));
        h.insert("set-cookie", HeaderValue::from_static("session=1"));
        h.insert("openai-project", HeaderValue::from_static("proj_1"));
        let v = redact_headers_with(&h, &[]);
        assert_eq!(
            v,
            json!({"authorization": "Bearer [REDACTED]", "x-api-key": "[REDACTED]",
                   "set-cookie": "[REDACTED]", "openai-project": "proj_1"})
        );
    }

    #[test]
    fn long_base64_becomes_a_blob_and_short_or_plain_text_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = BlobSink {
            dir: dir.path().to_owned(),
            stem: "001-x-attempt-1.response".into(),
            n: 0,
            inspector: Some(|b| Some((u32::try_from(b.len()).unwrap(), 1))),
        };
        let image = vec![7u8; 600];
        let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
        let prompt = "a fox ".repeat(100);
        let mut v = json!({
            "data": [{"b64_json": b64}],
            "output_format": "jpeg",
            "prompt": prompt,
            "id": "QUJD",
            "image_url": format!("data:image/webp;base64,{b64}"),
        });
        summarise(&mut v, None, &mut sink);
        assert_eq!(v["prompt"], json!(prompt));
        assert_eq!(v["id"], "QUJD");
        assert_eq!(
            v["data"][0]["b64_json"]["blob"],
            "001-x-attempt-1.response.blob-1.jpg"
        );
        assert_eq!(v["data"][0]["b64_json"]["bytes"], 600);
        assert_eq!(v["data"][0]["b64_json"]["width"], 600);
        assert_eq!(
            v["data"][0]["b64_json"]["sha256"],
            format!("{:x}", Sha256::digest(&image))
        );
        let url = &v["image_url"];
        assert_eq!(url["data_url_prefix"], "data:image/webp;base64,");
        assert!(url["blob"].as_str().unwrap().ends_with(".webp"));
        let saved = std::fs::read(dir.path().join("001-x-attempt-1.response.blob-1.jpg")).unwrap();
        assert_eq!(saved, image);
    }

    #[test]
    fn numbering_continues_after_existing_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("041-images-edits-attempt-1.request.json"), "{}").unwrap();
        let log = PayloadLog::new(dir.path());
        assert_eq!(log.begin("responses", Vec::new()).prefix, "042-responses");
        assert_eq!(log.begin("responses", Vec::new()).prefix, "043-responses");
    }

    #[test]
    fn an_unwritable_folder_only_warns() {
        let file = tempfile::NamedTempFile::new().unwrap();
        // A file where the folder should be: every write fails.
        let log = PayloadLog::new(file.path().join("sub"));
        let entry = log.begin("images-generations", Vec::new());
        entry.response(1, 200, &HeaderMap::new(), Duration::ZERO, b"{}");
    }
}
