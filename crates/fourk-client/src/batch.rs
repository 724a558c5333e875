//! The Batch API: upload a JSONL file (`/files`, purpose `batch`), create, retrieve, cancel
//! and list batches (`/batches`), and read a file's content as a stream of chunks.
//!
//! Uploads and creates go through the client's one send path (retry policy, payload log).
//! Reads (`GET`) change nothing on the server, so a read that failed after it was sent is
//! safe to repeat: the retry policy's attempt and time bounds apply, and such failures are
//! retried as if nothing had been sent.

use std::time::{Duration, Instant};

use bytes::Bytes;
use fourk_api::ErrorClass;
use fourk_api::batch::{Batch, BatchList, CreateBatchRequest, OpenAIFile};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::ClientError;
use crate::error::transport_error;
use crate::payload::{FormPart, Payload};
use crate::retry::{Attempt, Decision, Outcome, ServerHints, retry_after};

/// The MIME type of a batch input file.
const JSONL_MIME: &str = "application/jsonl";

/// A file's content as it arrives: read it with [`FileContent::chunk`] until `None`.
#[derive(Debug)]
pub struct FileContent {
    /// `x-request-id` of the download.
    pub request_id: Option<String>,
    /// `content-length`, when sent.
    pub length: Option<u64>,
    /// `x-fourk-emulator`, present when the file came from fourk's emulator.
    pub emulator: Option<String>,
    url: String,
    started: Instant,
    response: reqwest::Response,
}

impl FileContent {
    /// The next chunk of the body; `None` at the end.
    ///
    /// # Errors
    /// [`ClientError::Transport`] when the connection fails mid-body; download again (reads
    /// are safe to repeat).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        self.response.chunk().await.map_err(|e| {
            transport_error(
                &self.url,
                &e,
                self.started.elapsed(),
                self.request_id.clone(),
                None,
            )
        })
    }
}

fn parse<T: DeserializeOwned>(body: &[u8], what: &str, request_id: Option<&str>) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::InvalidResponse {
        message: format!("body is not {what}: {e}"),
        request_id: request_id.map(str::to_owned),
    })
}

fn request_id_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A path segment from an id the caller passed: ids are `[A-Za-z0-9_-]`, anything else is
/// refused before it can change the URL.
fn segment(id: &str, what: &str) -> Result<String, ClientError> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(id.to_owned())
    } else {
        Err(ClientError::Config(format!(
            "'{id}' is not a valid {what} id (letters, digits, '_' and '-' only)"
        )))
    }
}

impl Client {
    /// `POST /files` with `purpose=batch`: upload a batch input file (JSONL, one request a
    /// line, at most 200 MB). `filename` should end in `.jsonl`.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`]; a refused file is [`ClientError::Api`]
    /// with the line at fault in its message.
    pub async fn upload_batch_file(&self, filename: &str, jsonl: Bytes) -> Result<OpenAIFile, ClientError> {
        let parts = vec![
            FormPart::Text {
                name: "purpose".into(),
                value: "batch".into(),
            },
            FormPart::File {
                name: "file".into(),
                filename: filename.to_owned(),
                mime: JSONL_MIME.into(),
                data: jsonl,
            },
        ];
        let resp = self
            .send_full("files", None, Payload::Multipart(parts.into()))
            .await?;
        parse(&resp.body, "a file object", resp.request_id.as_deref())
    }

    /// `POST /batches`.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn create_batch(&self, request: &CreateBatchRequest) -> Result<Batch, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Config(e.to_string()))?;
        let resp = self.post_json("batches", body).await?;
        parse(&resp.body, "a batch object", resp.request_id.as_deref())
    }

    /// `GET /batches/{id}`.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`]; an unknown id is a 404
    /// [`ClientError::Api`].
    pub async fn retrieve_batch(&self, batch_id: &str) -> Result<Batch, ClientError> {
        let path = format!("batches/{}", segment(batch_id, "batch")?);
        let (body, rid) = self.get_body(&path, &[]).await?;
        parse(&body, "a batch object", rid.as_deref())
    }

    /// `POST /batches/{id}/cancel`: the batch goes to `cancelling`, then `cancelled` with
    /// the results finished so far.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn cancel_batch(&self, batch_id: &str) -> Result<Batch, ClientError> {
        let path = format!("batches/{}/cancel", segment(batch_id, "batch")?);
        let resp = self.post_json(&path, b"{}".to_vec()).await?;
        parse(&resp.body, "a batch object", resp.request_id.as_deref())
    }

    /// `GET /batches?after=&limit=`: one page, newest first.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn list_batches(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<BatchList, ClientError> {
        let mut query = Vec::new();
        if let Some(a) = after {
            query.push(("after", segment(a, "batch")?));
        }
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        let (body, rid) = self.get_body("batches", &query).await?;
        parse(&body, "a list of batches", rid.as_deref())
    }

    /// `GET /files/{id}`.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn retrieve_file(&self, file_id: &str) -> Result<OpenAIFile, ClientError> {
        let path = format!("files/{}", segment(file_id, "file")?);
        let (body, rid) = self.get_body(&path, &[]).await?;
        parse(&body, "a file object", rid.as_deref())
    }

    /// `GET /files/{id}/content`, as a stream of chunks: a batch's output file holds every
    /// image as base64 and can be gigabytes, so it is never held whole in memory here.
    ///
    /// # Errors
    /// Failures before the body starts, as typed [`ClientError`]s.
    pub async fn file_content(&self, file_id: &str) -> Result<FileContent, ClientError> {
        let path = format!("files/{}/content", segment(file_id, "file")?);
        let (response, url, started) = self.get_with_retry(&path, &[]).await?;
        Ok(FileContent {
            request_id: request_id_of(response.headers()),
            length: response.content_length(),
            emulator: response
                .headers()
                .get("x-fourk-emulator")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            url,
            started,
            response,
        })
    }

    async fn get_body(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(Bytes, Option<String>), ClientError> {
        let (response, url, started) = self.get_with_retry(path, query).await?;
        let rid = request_id_of(response.headers());
        // A body cut short is a failed read like any other; the caller may read again.
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&url, &e, started.elapsed(), rid.clone(), None))?;
        Ok((body, rid))
    }

    /// A `GET` with the retry policy: returns once a 2xx status line and headers are in.
    async fn get_with_retry(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(reqwest::Response, String, Instant), ClientError> {
        let auth = self.auth().await?;
        let url = self.config().endpoint(path);
        let policy = self.retry_policy();
        let first = Instant::now();
        let mut retries = 0u32;
        loop {
            let started = Instant::now();
            tracing::debug!(%url, attempt = retries + 1, "GET");
            let mut get = self.http().get(&url).query(query);
            for (name, value) in &auth {
                get = get.header(name.clone(), value.clone());
            }
            let sent = get.send().await;
            let (error, hints, status) = match sent {
                Ok(resp) if resp.status().is_success() => return Ok((resp, url, started)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let body = resp.bytes().await.unwrap_or_default();
                    let error = crate::client::error_of(&body);
                    let err = ClientError::Api {
                        status,
                        provider: self.config().provider.kind,
                        class: ErrorClass::of(status, error.as_deref()),
                        error,
                        request_id: request_id_of(&headers),
                        retry_after: retry_after(&headers),
                    };
                    (err, ServerHints::from_headers(&headers), Some(status))
                }
                Err(e) => (
                    transport_error(&url, &e, started.elapsed(), None, None),
                    ServerHints::default(),
                    None,
                ),
            };
            let (code, kind) = match &error {
                ClientError::Api { error: Some(e), .. } => (e.code.clone(), Some(e.kind.clone())),
                _ => (None, None),
            };
            // Reads are idempotent: a transport failure is as safe to repeat as one that
            // never reached the server.
            let outcome = match status {
                Some(status) => Outcome::Status {
                    status,
                    code: code.as_deref(),
                    kind: kind.as_deref(),
                    hints,
                },
                None => Outcome::NotSent,
            };
            match policy.decide(
                Attempt {
                    retries,
                    elapsed: first.elapsed(),
                },
                &outcome,
            ) {
                Decision::Retry(delay, reason) => {
                    tracing::info!(%url, next_in_ms = millis(delay), %reason, "retrying GET");
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
                Decision::Stop => return Err(error),
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(segment("batch_abc-1", "batch").unwrap(), "batch_abc-1");
        for bad in ["", "../models", "a/b", "a?b", "a b"] {
            assert!(segment(bad, "batch").is_err(), "{bad}");
        }
    }
}
