//! `/v1/files`: uploads (`multipart/form-data`, `purpose` and `file`), file objects and their
//! content, as the Batch API uses them. Files live on disk in a temporary folder owned by the
//! emulator (a batch's output file holds every image as base64: gigabytes for 4K batches),
//! and content is streamed back in chunks.

use std::io::{self, BufRead as _};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fourk_api::ErrorEnvelope;
use fourk_api::batch::{FilePurpose, MAX_INPUT_BYTES, OpenAIFile, parse_input_line};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::EmulatorError;
use crate::images::unix_now;
use crate::state::EmulatorState;
pub(crate) use crate::stores::FileStore;

/// Largest upload of any purpose (the API's limit).
pub(crate) const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// The multipart body: the file at its limit plus the text fields.
pub(crate) const MAX_UPLOAD_BODY: usize = MAX_FILE_BYTES as usize + 1024 * 1024;
/// Batch input files expire after 30 days unless told otherwise.
const BATCH_FILE_TTL: i64 = 30 * 24 * 3600;
/// Purposes `CreateFileRequest.purpose` accepts.
const UPLOAD_PURPOSES: [&str; 6] = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"];
/// Content is streamed in chunks of this size.
const CHUNK: usize = 256 * 1024;

/// An error of the files and batches routes, in the API's envelope.
#[derive(Debug)]
pub(crate) struct ApiFailure {
    status: StatusCode,
    envelope: ErrorEnvelope,
}

impl ApiFailure {
    pub(crate) fn invalid(code: Option<&str>, param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            envelope: ErrorEnvelope::new("invalid_request_error", code, param, message),
        }
    }

    pub(crate) fn not_found(param: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            envelope: ErrorEnvelope::new("invalid_request_error", None, Some(param), message),
        }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            envelope: ErrorEnvelope::new("invalid_request_error", None, None, message),
        }
    }

    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "emulator internal error (files/batches)");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            envelope: ErrorEnvelope::new(
                "server_error",
                None,
                None,
                "The server had an error while processing your request. Sorry about that!",
            ),
        }
    }
}

impl From<EmulatorError> for ApiFailure {
    fn from(e: EmulatorError) -> Self {
        Self {
            status: e.status(),
            envelope: e.envelope(),
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.status, Json(self.envelope)).into_response()
    }
}

/// The file object for a file of `bytes` bytes created now.
pub(crate) fn file_object(
    id: String,
    bytes: u64,
    filename: String,
    purpose: FilePurpose,
    ttl: Option<i64>,
) -> OpenAIFile {
    let now = unix_now();
    OpenAIFile {
        id,
        object: "file".into(),
        bytes,
        created_at: now,
        expires_at: ttl.map(|t| now + t),
        filename,
        purpose,
        status: "processed".into(),
        status_details: None,
    }
}

fn no_such_file(id: &str) -> ApiFailure {
    ApiFailure::not_found("file_id", format!("No such File object: {id}"))
}

/// `POST /v1/files`.
pub(crate) async fn create_file(
    State(state): State<Arc<EmulatorState>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match upload(&state, multipart).await {
        Ok(f) => Json(f).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn upload(
    state: &EmulatorState,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<OpenAIFile, ApiFailure> {
    let mut multipart = multipart.map_err(|e| {
        ApiFailure::invalid(
            None,
            None,
            format!("The body must be multipart/form-data with the fields 'file' and 'purpose' ({e})."),
        )
    })?;
    // The API's file ids use a dash: `file-abc123`.
    let id = state.object_id("file").replacen('_', "-", 1);
    let path = state.batch.files.new_path(&id).map_err(ApiFailure::internal)?;
    let mut purpose = None;
    let mut file: Option<(String, u64)> = None;
    let mut ttl = None;
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        ApiFailure::invalid(None, None, format!("The multipart body could not be read: {e}"))
    };
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "purpose" => purpose = Some(field.text().await.map_err(multipart_error)?),
            "expires_after[seconds]" => {
                let text = field.text().await.map_err(multipart_error)?;
                let secs: i64 = text.trim().parse().map_err(|_| {
                    ApiFailure::invalid(
                        Some("invalid_value"),
                        Some("expires_after[seconds]"),
                        "expires_after[seconds] must be an integer between 3600 and 2592000.",
                    )
                })?;
                if !(3600..=2_592_000).contains(&secs) {
                    return Err(ApiFailure::invalid(
                        Some("invalid_value"),
                        Some("expires_after[seconds]"),
                        format!(
                            "expires_after[seconds] is {secs}; it must be between 3600 (1 hour) and 2592000 (30 days)."
                        ),
                    ));
                }
                ttl = Some(secs);
            }
            "expires_after[anchor]" => {
                let text = field.text().await.map_err(multipart_error)?;
                if text != "created_at" {
                    return Err(ApiFailure::invalid(
                        Some("invalid_value"),
                        Some("expires_after[anchor]"),
                        format!("Invalid expires_after[anchor] '{text}': the only anchor is 'created_at'."),
                    ));
                }
            }
            "file" => {
                let filename = field.file_name().unwrap_or("upload").to_owned();
                // Written to a temporary file beside its final path as it arrives, and renamed
                // into place only once whole: a refused or broken upload leaves nothing behind.
                let temp = state.batch.files.temp_file(&path).map_err(ApiFailure::internal)?;
                let writer = temp.reopen().map_err(ApiFailure::internal)?;
                let mut out =
                    tokio::io::BufWriter::with_capacity(CHUNK * 4, tokio::fs::File::from_std(writer));
                let mut len = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    len += chunk.len() as u64;
                    if len > MAX_FILE_BYTES {
                        return Err(ApiFailure::invalid(
                            Some("file_too_large"),
                            Some("file"),
                            format!(
                                "The file is larger than {MAX_FILE_BYTES} bytes, the largest upload the API takes."
                            ),
                        ));
                    }
                    out.write_all(&chunk).await.map_err(ApiFailure::internal)?;
                }
                out.flush().await.map_err(ApiFailure::internal)?;
                drop(out);
                temp.persist(&path).map_err(ApiFailure::internal)?;
                file = Some((filename, len));
            }
            other => {
                return Err(ApiFailure::invalid(
                    Some("unknown_parameter"),
                    Some(other),
                    format!("Unknown parameter: '{other}'."),
                ));
            }
        }
    }
    let result = check_upload(purpose, file, ttl, &path).await;
    match result {
        Ok((filename, len, purpose, ttl)) => Ok(state
            .batch
            .files
            .insert(file_object(id, len, filename, purpose, ttl), path)),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(e)
        }
    }
}

async fn check_upload(
    purpose: Option<String>,
    file: Option<(String, u64)>,
    ttl: Option<i64>,
    path: &std::path::Path,
) -> Result<(String, u64, FilePurpose, Option<i64>), ApiFailure> {
    let purpose = purpose.ok_or_else(|| {
        ApiFailure::invalid(
            Some("missing_required_parameter"),
            Some("purpose"),
            "Missing required parameter: 'purpose'.",
        )
    })?;
    if !UPLOAD_PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiFailure::invalid(
            Some("invalid_value"),
            Some("purpose"),
            format!(
                "Invalid value for 'purpose': '{purpose}'. Supported values are: {}.",
                UPLOAD_PURPOSES.join(", ")
            ),
        ));
    }
    let (filename, len) = file.ok_or_else(|| {
        ApiFailure::invalid(
            Some("missing_required_parameter"),
            Some("file"),
            "Missing required parameter: 'file'.",
        )
    })?;
    if purpose != "batch" {
        let purpose: FilePurpose = serde_json::from_value(json!(purpose)).map_err(ApiFailure::internal)?;
        return Ok((filename, len, purpose, ttl));
    }
    if !filename.to_ascii_lowercase().ends_with(".jsonl") {
        return Err(ApiFailure::invalid(
            Some("invalid_file_format"),
            Some("file"),
            format!("Invalid file format for Batch API: '{filename}'. Must be .jsonl"),
        ));
    }
    if len > MAX_INPUT_BYTES {
        return Err(ApiFailure::invalid(
            Some("file_too_large"),
            Some("file"),
            format!(
                "A batch input file may be at most {MAX_INPUT_BYTES} bytes; this one is {len}. Split the requests into several batches."
            ),
        ));
    }
    let path = path.to_path_buf();
    let problem = tokio::task::spawn_blocking(move || first_shape_problem(&path))
        .await
        .map_err(ApiFailure::internal)?
        .map_err(ApiFailure::internal)?;
    if let Some(p) = problem {
        return Err(ApiFailure::invalid(
            Some("invalid_file_format"),
            Some("file"),
            format!("Invalid batch input file: {p}"),
        ));
    }
    Ok((
        filename,
        len,
        FilePurpose::Batch,
        Some(ttl.unwrap_or(BATCH_FILE_TTL)),
    ))
}

/// The first line of a batch input file that is not a request object, read line by line.
/// Endpoint and duplicate checks wait for the batch, as on the API: only it knows the
/// endpoint.
fn first_shape_problem(path: &std::path::Path) -> io::Result<Option<fourk_api::batch::LineProblem>> {
    let reader = io::BufReader::new(std::fs::File::open(path)?);
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let Ok(text) = std::str::from_utf8(&line) else {
            return Ok(Some(fourk_api::batch::LineProblem {
                code: "invalid_json_line",
                param: None,
                line: i as u64 + 1,
                message: "This line is not UTF-8 text.".into(),
            }));
        };
        if text.trim().is_empty() {
            continue;
        }
        if let Err(p) = parse_input_line(text, i as u64 + 1, None) {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// `GET /v1/files/{id}`.
pub(crate) async fn retrieve_file(
    State(state): State<Arc<EmulatorState>>,
    Path(id): Path<String>,
) -> Response {
    match state.batch.files.get(&id) {
        Some(f) => Json(f.meta).into_response(),
        None => no_such_file(&id).into_response(),
    }
}

/// `DELETE /v1/files/{id}`.
pub(crate) async fn delete_file(State(state): State<Arc<EmulatorState>>, Path(id): Path<String>) -> Response {
    match state.batch.files.remove(&id) {
        Some(f) => {
            let _ = tokio::fs::remove_file(&f.path).await;
            Json(json!({"id": id, "object": "file", "deleted": true})).into_response()
        }
        None => no_such_file(&id).into_response(),
    }
}

/// `GET /v1/files/{id}/content`: the bytes, streamed from disk.
pub(crate) async fn file_content(
    State(state): State<Arc<EmulatorState>>,
    Path(id): Path<String>,
) -> Response {
    let Some(f) = state.batch.files.get(&id) else {
        return no_such_file(&id).into_response();
    };
    let file = match tokio::fs::File::open(&f.path).await {
        Ok(file) => file,
        Err(e) => return ApiFailure::internal(e).into_response(),
    };
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, io::Error>(axum::body::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(f.meta.bytes));
    response
}
