//! `/v1/batches`: create, retrieve, cancel and list batches, each processed by a background
//! task through the same checks and renderer as the live endpoint: `POST
//! /v1/images/generations`, or `POST /v1/images/edits` with each line's body the JSON edit
//! (`EditImageBodyJsonParam`: images as data URLs or uploaded `file_id`s, as the live JSON
//! edit reads them). Every line's `url` must be the batch's endpoint.
//!
//! A batch moves `validating` -> `in_progress` -> `finalizing` -> `completed` (or `failed`
//! when the input file breaks a rule, listed in `errors` with line numbers; or `cancelling`
//! -> `cancelled` after a cancel). Every request that ran is one line of the output file
//! (2xx answers, with `usage` in the body) or of the error file (error answers, with the
//! live endpoint's status and envelope); requests a cancel stopped are in the error file with
//! `error.code: batch_cancelled`. `request_counts`, `usage` and the timestamps follow.
//!
//! Faults (`--faults`) are drawn once per request, as for live requests: `429`, `quota`,
//! `500`, `503`, `reset` and `truncate` become that request's error line (a batch worker has
//! no connection to cut, so `reset` and `truncate` are a 500), `stall` delays it by the stall
//! time, and `wrong-size` and `corrupt` damage its image. `latency_scale` applies per
//! request; up to eight requests of a batch run at once (rendering bounded by the render slots). The live rate limits do
//! not apply (the Batch API has its own queue). With a request log, each request is one line
//! with method `BATCH` and the batch endpoint as its route.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use fourk_api::batch::{
    Batch, BatchErrors, BatchInputLine, BatchLineError, BatchList, BatchOutputLine, BatchResponse,
    BatchStatus, BatchUsage, COMPLETION_WINDOW, CreateBatchRequest, ENDPOINT_EDITS, ENDPOINT_GENERATIONS,
    FilePurpose, RequestCounts, SPEC_ENDPOINTS, check_input_file,
};
use fourk_api::{ImageRequest, ImagesResponse};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::error::EmulatorError;
use crate::faults::FaultKind;
use crate::files::{ApiFailure, FileStore, file_object};
use crate::generate::{plan_generation, read_request};
use crate::images::{render_json, unix_now};
use crate::reqlog::Entry as LogEntry;
use crate::state::{EmulatorState, RequestContext};
use crate::stores::BatchEntry;

/// The completion window, in seconds.
const WINDOW_SECS: i64 = 24 * 3600;
/// Most validation problems reported in `errors`.
const MAX_REPORTED_PROBLEMS: usize = 100;
/// Requests of one batch in flight at once. Rendering is still bounded by the render slots;
/// this lets the simulated latency of several requests overlap, while bounding the memory
/// of finished answers waiting to be written (a 4K answer is ~15 MB of base64).
const LINES_IN_FLIGHT: usize = 8;

fn no_such_batch(id: &str) -> ApiFailure {
    ApiFailure::not_found("batch_id", format!("No batch found with id '{id}'."))
}

/// `POST /v1/batches`.
pub(crate) async fn create_batch(
    State(state): State<Arc<EmulatorState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match create(&state, body) {
        Ok(b) => Json(b).into_response(),
        Err(e) => e.into_response(),
    }
}

fn create(state: &Arc<EmulatorState>, body: Result<Bytes, BytesRejection>) -> Result<Batch, ApiFailure> {
    let bytes = body.map_err(|r| ApiFailure::invalid(None, None, r.body_text()))?;
    let json: Value =
        serde_json::from_slice(&bytes).map_err(|_| ApiFailure::from(EmulatorError::InvalidJson))?;
    for field in ["input_file_id", "endpoint", "completion_window"] {
        if json.get(field).is_none_or(Value::is_null) {
            return Err(ApiFailure::invalid(
                Some("missing_required_parameter"),
                Some(field),
                format!("Missing required parameter: '{field}'."),
            ));
        }
    }
    let req: CreateBatchRequest = serde_json::from_value(json).map_err(|e| {
        ApiFailure::invalid(Some("invalid_type"), None, format!("Invalid batch request: {e}."))
    })?;
    if !SPEC_ENDPOINTS.contains(&req.endpoint.as_str()) {
        return Err(ApiFailure::invalid(
            Some("invalid_value"),
            Some("endpoint"),
            format!(
                "Invalid value for 'endpoint': '{}'. Supported values are: {}.",
                req.endpoint,
                SPEC_ENDPOINTS.join(", ")
            ),
        ));
    }
    if req.endpoint != ENDPOINT_GENERATIONS && req.endpoint != ENDPOINT_EDITS {
        return Err(ApiFailure::invalid(
            Some("unsupported_value"),
            Some("endpoint"),
            format!(
                "The fourk emulator runs batches for {ENDPOINT_GENERATIONS} and {ENDPOINT_EDITS} only; '{}' is a batch endpoint of the API but is not emulated.",
                req.endpoint
            ),
        ));
    }
    if req.completion_window != COMPLETION_WINDOW {
        return Err(ApiFailure::invalid(
            Some("invalid_value"),
            Some("completion_window"),
            format!(
                "Invalid value for 'completion_window': '{}'. Supported values are: '{COMPLETION_WINDOW}'.",
                req.completion_window
            ),
        ));
    }
    if let Some(m) = &req.metadata {
        if m.len() > 16 {
            return Err(ApiFailure::invalid(
                Some("invalid_value"),
                Some("metadata"),
                format!("metadata has {} pairs; at most 16 are allowed.", m.len()),
            ));
        }
        if let Some((k, _)) = m
            .iter()
            .find(|(k, v)| k.chars().count() > 64 || v.chars().count() > 512)
        {
            return Err(ApiFailure::invalid(
                Some("invalid_value"),
                Some("metadata"),
                format!("metadata '{k}': keys are at most 64 characters and values at most 512."),
            ));
        }
    }
    let file = state.batch.files.get(&req.input_file_id).ok_or_else(|| {
        ApiFailure::not_found(
            "input_file_id",
            format!("No such File object: {}", req.input_file_id),
        )
    })?;
    if file.meta.purpose != FilePurpose::Batch {
        return Err(ApiFailure::invalid(
            Some("invalid_value"),
            Some("input_file_id"),
            format!(
                "The file {} has purpose '{}'; a batch reads files uploaded with purpose 'batch'.",
                req.input_file_id,
                file.meta.purpose.as_str()
            ),
        ));
    }
    let now = unix_now();
    let id = state.object_id("batch");
    let batch = Batch {
        id: id.clone(),
        object: "batch".into(),
        endpoint: req.endpoint,
        model: None,
        errors: None,
        input_file_id: req.input_file_id,
        completion_window: req.completion_window,
        status: BatchStatus::Validating,
        output_file_id: None,
        error_file_id: None,
        created_at: now,
        in_progress_at: None,
        expires_at: Some(now + WINDOW_SECS),
        finalizing_at: None,
        completed_at: None,
        failed_at: None,
        expired_at: None,
        cancelling_at: None,
        cancelled_at: None,
        request_counts: Some(RequestCounts::default()),
        usage: None,
        metadata: req.metadata,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    state
        .batch
        .batches
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            id.clone(),
            BatchEntry {
                batch: batch.clone(),
                cancel,
            },
        );
    state
        .batch
        .order
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(id.clone());
    let task_state = Arc::clone(state);
    tokio::spawn(async move {
        if let Err(e) = process(&task_state, &id, file.path).await {
            tracing::error!(batch = %id, error = %e, "batch processing failed");
            let now = unix_now();
            task_state.batch.update(&id, |b| {
                b.status = BatchStatus::Failed;
                b.failed_at = Some(now);
                b.errors = Some(BatchErrors {
                    object: "list".into(),
                    data: vec![fourk_api::batch::BatchError {
                        code: Some("server_error".into()),
                        message: Some("The batch could not be processed.".into()),
                        param: None,
                        line: None,
                    }],
                });
            });
        }
    });
    Ok(batch)
}

/// `GET /v1/batches/{id}`.
pub(crate) async fn retrieve_batch(
    State(state): State<Arc<EmulatorState>>,
    Path(id): Path<String>,
) -> Response {
    match state.batch.get(&id) {
        Some(b) => Json(b).into_response(),
        None => no_such_batch(&id).into_response(),
    }
}

/// `POST /v1/batches/{id}/cancel`.
pub(crate) async fn cancel_batch(
    State(state): State<Arc<EmulatorState>>,
    Path(id): Path<String>,
) -> Response {
    let mut map = state.batch.batches.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(entry) = map.get_mut(&id) else {
        return no_such_batch(&id).into_response();
    };
    match entry.batch.status {
        BatchStatus::Validating | BatchStatus::InProgress => {
            entry.cancel.store(true, Ordering::Relaxed);
            entry.batch.status = BatchStatus::Cancelling;
            entry.batch.cancelling_at = Some(unix_now());
            Json(entry.batch.clone()).into_response()
        }
        BatchStatus::Cancelling | BatchStatus::Cancelled => Json(entry.batch.clone()).into_response(),
        ref other => ApiFailure::conflict(format!(
            "Cannot cancel a batch with status '{other}'; only validating or in_progress batches can be cancelled."
        ))
        .into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/batches?after=&limit=`: newest first, 1-100 a page (default 20).
pub(crate) async fn list_batches(
    State(state): State<Arc<EmulatorState>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return ApiFailure::invalid(Some("invalid_value"), None, "Invalid query string.").into_response();
    };
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return ApiFailure::invalid(
                Some("invalid_value"),
                Some("limit"),
                "Invalid value for 'limit': it must be an integer from 1 to 100.",
            )
            .into_response();
        }
    };
    let order: Vec<String> = state
        .batch
        .order
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .rev()
        .cloned()
        .collect();
    let start = match &q.after {
        None => 0,
        Some(after) => match order.iter().position(|id| id == after) {
            Some(i) => i + 1,
            None => return no_such_batch(after).into_response(),
        },
    };
    let page: Vec<Batch> = order
        .iter()
        .skip(start)
        .take(limit)
        .filter_map(|id| state.batch.get(id))
        .collect();
    let has_more = start + page.len() < order.len();
    Json(BatchList {
        object: "list".into(),
        first_id: page.first().map(|b| b.id.clone()),
        last_id: page.last().map(|b| b.id.clone()),
        data: page,
        has_more,
    })
    .into_response()
}

/// A result file being written: its path, its handle, its lines.
struct ResultFile {
    path: std::path::PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    lines: u64,
    bytes: u64,
}

impl ResultFile {
    async fn create(files: &FileStore, id: &str) -> std::io::Result<Self> {
        let path = files.new_path(id)?;
        let file = tokio::io::BufWriter::new(tokio::fs::File::create(&path).await?);
        Ok(Self {
            path,
            file,
            lines: 0,
            bytes: 0,
        })
    }

    async fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.file.write_all(line).await?;
        self.file.write_all(b"\n").await?;
        self.lines += 1;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Register the file when it has lines; remove it otherwise.
    async fn finish(
        mut self,
        state: &EmulatorState,
        id: String,
        name: String,
    ) -> std::io::Result<Option<String>> {
        self.file.flush().await?;
        drop(self.file);
        if self.lines == 0 {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Ok(None);
        }
        let meta = file_object(id.clone(), self.bytes, name, FilePurpose::BatchOutput, None);
        state.batch.files.insert(meta, self.path);
        Ok(Some(id))
    }
}

/// One request's result line and whether it succeeded.
struct LineResult {
    json: Vec<u8>,
    ok: bool,
    usage: Option<fourk_api::Usage>,
}

async fn process(state: &Arc<EmulatorState>, id: &str, input: std::path::PathBuf) -> std::io::Result<()> {
    let api = &state.batch;
    let endpoint = api.get(id).map(|b| b.endpoint).unwrap_or_default();
    let text = tokio::fs::read_to_string(&input).await?;
    let lines = match check_input_file(&text, Some(&endpoint), MAX_REPORTED_PROBLEMS) {
        Ok(lines) => lines,
        Err(problems) => {
            let now = unix_now();
            api.update(id, |b| {
                b.status = BatchStatus::Failed;
                b.failed_at = Some(now);
                b.errors = Some(BatchErrors {
                    object: "list".into(),
                    data: problems
                        .iter()
                        .map(fourk_api::batch::LineProblem::to_batch_error)
                        .collect(),
                });
            });
            return Ok(());
        }
    };
    drop(text);
    let total = lines.len() as u64;
    let now = unix_now();
    if api.cancelled(id) {
        api.update(id, |b| {
            b.status = BatchStatus::Cancelled;
            b.cancelled_at = Some(now);
        });
        return Ok(());
    }
    api.update(id, |b| {
        b.status = BatchStatus::InProgress;
        b.in_progress_at = Some(now);
        b.request_counts = Some(RequestCounts {
            total,
            completed: 0,
            failed: 0,
        });
        b.model = lines
            .first()
            .and_then(|l| l.body.get("model"))
            .and_then(Value::as_str)
            .map(str::to_owned);
    });
    let output_id = state.object_id("file").replacen('_', "-", 1);
    let error_id = state.object_id("file").replacen('_', "-", 1);
    let mut output = ResultFile::create(&api.files, &output_id).await?;
    let mut errors = ResultFile::create(&api.files, &error_id).await?;
    let mut usage = BatchUsage::default();
    let mut counts = RequestCounts {
        total,
        completed: 0,
        failed: 0,
    };
    let mut results = futures_util::stream::iter(lines)
        .map(|line| {
            let state = Arc::clone(state);
            let id = id.to_owned();
            async move {
                if state.batch.cancelled(&id) {
                    return cancelled_line(&state, &line.custom_id);
                }
                run_line(&state, line).await
            }
        })
        .buffer_unordered(LINES_IN_FLIGHT);
    while let Some(r) = results.next().await {
        let r = r?;
        if r.ok {
            output.write_line(&r.json).await?;
            counts.completed += 1;
        } else {
            errors.write_line(&r.json).await?;
            counts.failed += 1;
        }
        if let Some(u) = r.usage {
            usage.input_tokens += u.input_tokens;
            usage.output_tokens += u.output_tokens;
            usage.total_tokens += u.total_tokens;
        }
        api.update(id, |b| {
            b.request_counts = Some(counts);
            b.usage = Some(usage);
        });
    }
    drop(results);
    let cancelled = api.cancelled(id);
    if !cancelled {
        api.update(id, |b| {
            b.status = BatchStatus::Finalizing;
            b.finalizing_at = Some(unix_now());
        });
    }
    let output_id = output
        .finish(state, output_id, format!("{id}_output.jsonl"))
        .await?;
    let error_id = errors
        .finish(state, error_id, format!("{id}_error.jsonl"))
        .await?;
    let now = unix_now();
    api.update(id, |b| {
        b.output_file_id = output_id;
        b.error_file_id = error_id;
        if cancelled {
            b.status = BatchStatus::Cancelled;
            b.cancelled_at = Some(now);
        } else {
            b.status = BatchStatus::Completed;
            b.completed_at = Some(now);
        }
    });
    Ok(())
}

fn cancelled_line(state: &EmulatorState, custom_id: &str) -> std::io::Result<LineResult> {
    let line: BatchOutputLine = BatchOutputLine {
        id: state.object_id("batch_req"),
        custom_id: custom_id.to_owned(),
        response: None,
        error: Some(BatchLineError {
            code: "batch_cancelled".into(),
            message: "This request was not run: the batch was cancelled.".into(),
        }),
    };
    Ok(LineResult {
        json: serde_json::to_vec(&line)?,
        ok: false,
        usage: None,
    })
}

fn millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Run one request the way the live endpoint would, as an output line.
async fn run_line(state: &Arc<EmulatorState>, line: BatchInputLine) -> std::io::Result<LineResult> {
    let arrived = millis_now();
    let request_id = state.next_request_id();
    let fault = state.faults.next();
    let ctx = RequestContext::new(request_id.clone(), fault);
    let answer = answer_line(state, &ctx, &line.url, &line.body).await;
    let (status, body, usage) = match answer {
        Ok(resp) => {
            let usage = resp.usage;
            (200u16, serde_json::to_value(resp)?, usage)
        }
        Err(e) => (e.status().as_u16(), e.body(), None),
    };
    if let Some(log) = &state.request_log {
        log.write(&LogEntry {
            ts_ms: arrived,
            method: "BATCH",
            route: &line.url,
            prompt_sha256: ctx.prompt_sha256(),
            status: Some(status),
            request_id: &request_id,
            client_request_id: None,
            fault: fault.map(|f| f.kind.name()),
        });
    }
    let out = BatchOutputLine {
        id: state.object_id("batch_req"),
        custom_id: line.custom_id,
        response: Some(BatchResponse {
            status_code: status,
            request_id,
            body,
        }),
        error: None,
    };
    Ok(LineResult {
        json: serde_json::to_vec(&out)?,
        ok: (200..300).contains(&status),
        usage,
    })
}

/// Streaming has no place in a batch: the answer is a line of the output file.
fn refuse_stream(req: &ImageRequest) -> Result<(), EmulatorError> {
    if req.stream == Some(true) {
        return Err(EmulatorError::BadRequest {
            code: Some("invalid_value"),
            param: Some("stream".into()),
            message: "Streaming is not supported in a batch: results are written to the output file. Remove 'stream'.".into(),
        });
    }
    Ok(())
}

/// One line, through the live endpoint's reading, checks and renderer. `url` is the line's
/// endpoint, which batch validation has made equal to the batch's.
async fn answer_line(
    state: &Arc<EmulatorState>,
    ctx: &RequestContext,
    url: &str,
    body: &Value,
) -> Result<ImagesResponse, EmulatorError> {
    match ctx.fault.map(|f| f.kind) {
        Some(FaultKind::RateLimit) => return Err(EmulatorError::InjectedRateLimit),
        Some(FaultKind::Quota) => return Err(EmulatorError::InsufficientQuota),
        Some(FaultKind::ServerError | FaultKind::Reset | FaultKind::Truncate) => {
            return Err(EmulatorError::InjectedServerError);
        }
        Some(FaultKind::Unavailable) => return Err(EmulatorError::Overloaded),
        Some(FaultKind::Stall) => tokio::time::sleep(state.config.stall).await,
        _ => {}
    }
    let plan = if url == ENDPOINT_EDITS {
        let edit = crate::edits::read_json(body)?;
        ctx.set_prompt(&edit.req.prompt);
        refuse_stream(&edit.req)?;
        crate::edits::plan_json(state, ctx, edit).await?
    } else {
        let req = read_request(body)?;
        ctx.set_prompt(&req.prompt);
        refuse_stream(&req)?;
        plan_generation(state, ctx, &req)?
    };
    render_json(state, plan).await
}
