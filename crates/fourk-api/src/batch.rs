//! The Batch API's wire types: uploaded files (`/v1/files`), batches (`/v1/batches`), the
//! JSONL lines a batch reads and writes, and the rules both ends check.
//!
//! A batch runs the requests of one uploaded JSONL file (one [`BatchInputLine`] a line)
//! asynchronously, within a 24 hour window, at half the price of the live endpoints. Its
//! results are two more files: the output file (one [`BatchOutputLine`] per request that got
//! an answer) and the error file (requests that failed). `/v1/images/generations` and
//! `/v1/images/edits` are both batch endpoints in the published spec (`CreateBatchRequest`).
//!
//! ```
//! use fourk_api::batch::{BatchInputLine, ENDPOINT_GENERATIONS};
//! use fourk_api::ImageRequest;
//!
//! let line = BatchInputLine::post("job-1", ENDPOINT_GENERATIONS, ImageRequest::new("gpt-image-2", "a fox"));
//! assert_eq!(
//!     serde_json::to_string(&line).unwrap(),
//!     r#"{"custom_id":"job-1","method":"POST","url":"/v1/images/generations","body":{"model":"gpt-image-2","prompt":"a fox"}}"#
//! );
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::caps::Prices;

/// `/v1/images/generations`, the endpoint of an image generation batch.
pub const ENDPOINT_GENERATIONS: &str = "/v1/images/generations";
/// `/v1/images/edits`: a batch endpoint in the spec, with JSON bodies that reference their
/// images by URL or file id (there is no multipart in a JSONL line).
pub const ENDPOINT_EDITS: &str = "/v1/images/edits";
/// Every endpoint `CreateBatchRequest.endpoint` accepts in the published spec.
pub const SPEC_ENDPOINTS: [&str; 8] = [
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    ENDPOINT_GENERATIONS,
    ENDPOINT_EDITS,
    "/v1/videos",
];
/// The only completion window the API offers.
pub const COMPLETION_WINDOW: &str = "24h";
/// Most requests one batch input file may hold.
pub const MAX_REQUESTS: usize = 50_000;
/// Largest batch input file, in bytes.
pub const MAX_INPUT_BYTES: u64 = 200 * 1024 * 1024;
/// Batch API prices are this fraction of the live prices (api-contract §12: -50 %).
pub const BATCH_PRICE_FACTOR: f64 = 0.5;

/// The model's live prices, discounted to what the Batch API charges.
#[must_use]
pub fn batch_prices(live: &Prices) -> Prices {
    Prices {
        text_input: live.text_input * BATCH_PRICE_FACTOR,
        cached_text_input: live.cached_text_input * BATCH_PRICE_FACTOR,
        image_input: live.image_input * BATCH_PRICE_FACTOR,
        cached_image_input: live.cached_image_input * BATCH_PRICE_FACTOR,
        image_output: live.image_output * BATCH_PRICE_FACTOR,
        estimate: live.estimate,
    }
}

/// `Batch.status`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// The input file is being checked.
    Validating,
    /// The input file failed validation (`errors` says why); nothing ran.
    Failed,
    /// Requests are running.
    InProgress,
    /// Every request ran; the result files are being written.
    Finalizing,
    /// Done; `output_file_id` and/or `error_file_id` are set.
    Completed,
    /// The 24 hour window passed; finished requests are in the output file.
    Expired,
    /// Cancel was asked for; running requests are finishing.
    Cancelling,
    /// Cancelled; finished requests are in the output file.
    Cancelled,
    /// A status this version does not know.
    #[serde(untagged)]
    Other(String),
}

impl BatchStatus {
    /// The wire name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Validating => "validating",
            Self::Failed => "failed",
            Self::InProgress => "in_progress",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        }
    }

    /// True once the batch will not change again: its result files (if any) are final.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Completed | Self::Expired | Self::Cancelled
        )
    }
}

impl fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Batch.request_counts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Requests in the batch.
    pub total: u64,
    /// Requests answered successfully.
    pub completed: u64,
    /// Requests that failed.
    pub failed: u64,
}

/// One entry of `Batch.errors.data`: why the input file was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchError {
    /// A code such as `duplicate_custom_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The field at fault.
    #[serde(default)]
    pub param: Option<String>,
    /// The 1-based line of the input file.
    #[serde(default)]
    pub line: Option<u64>,
}

/// `Batch.errors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchErrors {
    /// Always `list`.
    #[serde(default)]
    pub object: String,
    /// The errors.
    #[serde(default)]
    pub data: Vec<BatchError>,
}

/// `Batch.usage.input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchInputDetails {
    /// Tokens read from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// `Batch.usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutputDetails {
    /// Reasoning tokens (0 for images).
    #[serde(default)]
    pub reasoning_tokens: u64,
}

/// `Batch.usage`: the tokens of every request, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Input split.
    #[serde(default)]
    pub input_tokens_details: BatchInputDetails,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Output split.
    #[serde(default)]
    pub output_tokens_details: BatchOutputDetails,
    /// Input plus output.
    #[serde(default)]
    pub total_tokens: u64,
}

/// The batch object (`POST /v1/batches`, `GET /v1/batches/{id}`, cancel).
///
/// Timestamps that are not set yet are absent (the API sends them as `null`; both read the
/// same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// `batch_...`.
    pub id: String,
    /// Always `batch`.
    pub object: String,
    /// The endpoint every request goes to, such as `/v1/images/generations`.
    pub endpoint: String,
    /// The model, when the API reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why validation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<BatchErrors>,
    /// The uploaded JSONL.
    pub input_file_id: String,
    /// `24h`.
    pub completion_window: String,
    /// Where the batch is.
    pub status: BatchStatus,
    /// Answers of successful requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file_id: Option<String>,
    /// Answers of failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_file_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// When processing started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress_at: Option<i64>,
    /// When the window closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// When finalizing started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizing_at: Option<i64>,
    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    /// When validation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<i64>,
    /// When it expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<i64>,
    /// When cancel was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelling_at: Option<i64>,
    /// When it was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<i64>,
    /// Progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_counts: Option<RequestCounts>,
    /// Tokens so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<BatchUsage>,
    /// Up to 16 key-value pairs given at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Batch {
    /// `request_counts`, or zeros.
    #[must_use]
    pub fn counts(&self) -> RequestCounts {
        self.request_counts.unwrap_or_default()
    }
}

/// `GET /v1/batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchList {
    /// Always `list`.
    pub object: String,
    /// Newest first.
    pub data: Vec<Batch>,
    /// Id of the first batch of this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_id: Option<String>,
    /// Id of the last batch of this page: pass it as `after` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
    /// More pages follow.
    pub has_more: bool,
}

/// `file_expires_after` / `output_expires_after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiresAfter {
    /// Always `created_at`.
    pub anchor: String,
    /// 3600 to 2592000.
    pub seconds: u64,
}

/// The body of `POST /v1/batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBatchRequest {
    /// An uploaded file with purpose `batch`.
    pub input_file_id: String,
    /// One of [`SPEC_ENDPOINTS`].
    pub endpoint: String,
    /// [`COMPLETION_WINDOW`].
    pub completion_window: String,
    /// Up to 16 pairs, keys up to 64 characters, values up to 512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// When the result files expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_expires_after: Option<ExpiresAfter>,
}

impl CreateBatchRequest {
    /// A request for `endpoint` over `input_file_id`, in the 24 hour window.
    #[must_use]
    pub fn new(input_file_id: impl Into<String>, endpoint: impl Into<String>) -> Self {
        Self {
            input_file_id: input_file_id.into(),
            endpoint: endpoint.into(),
            completion_window: COMPLETION_WINDOW.to_owned(),
            metadata: None,
            output_expires_after: None,
        }
    }
}

/// `OpenAIFile.purpose`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilePurpose {
    /// A batch input file.
    Batch,
    /// A batch's output or error file.
    BatchOutput,
    /// Anything else (`assistants`, `fine-tune`, `vision`, `user_data`, ...).
    #[serde(untagged)]
    Other(String),
}

impl FilePurpose {
    /// The wire name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Batch => "batch",
            Self::BatchOutput => "batch_output",
            Self::Other(s) => s,
        }
    }
}

/// The file object (`POST /v1/files`, `GET /v1/files/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAIFile {
    /// `file-...`.
    pub id: String,
    /// Always `file`.
    pub object: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// When it will be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The name it was uploaded under.
    pub filename: String,
    /// What it is for.
    pub purpose: FilePurpose,
    /// Deprecated: `uploaded`, `processed` or `error`.
    #[serde(default)]
    pub status: String,
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<String>,
}

/// One line of a batch input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchInputLine<B = Value> {
    /// The caller's id for the request; unique in the file. Answers carry it back.
    pub custom_id: String,
    /// Always `POST`.
    pub method: String,
    /// The batch's endpoint.
    pub url: String,
    /// The request body the endpoint takes.
    pub body: B,
}

impl<B> BatchInputLine<B> {
    /// A `POST` line.
    #[must_use]
    pub fn post(custom_id: impl Into<String>, url: impl Into<String>, body: B) -> Self {
        Self {
            custom_id: custom_id.into(),
            method: "POST".to_owned(),
            url: url.into(),
            body,
        }
    }
}

/// `response` of an output line: what the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse<B = Value> {
    /// The HTTP status the live endpoint would have sent.
    pub status_code: u16,
    /// The request's id.
    pub request_id: String,
    /// The body: an `ImagesResponse` on success, an error envelope otherwise.
    pub body: B,
}

/// `error` of an output line: a request that got no answer at all (expired, cancelled,
/// refused before it ran).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLineError {
    /// Such as `batch_expired` or `batch_cancelled`.
    pub code: String,
    /// What happened.
    pub message: String,
}

/// One line of a batch output or error file.
///
/// Read big files with `B` chosen per line: [`serde::de::IgnoredAny`] first to learn the
/// status cheaply, then a borrowed body type ([`crate::ImagesResponseRef`]) so a 4K image's
/// base64 is not copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutputLine<B = Value> {
    /// `batch_req_...`.
    pub id: String,
    /// The input line's `custom_id`.
    pub custom_id: String,
    /// The answer, when the request ran.
    pub response: Option<BatchResponse<B>>,
    /// Why it did not run.
    pub error: Option<BatchLineError>,
}

impl<B> BatchOutputLine<B> {
    /// True when the request ran and answered 2xx.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self
                .response
                .as_ref()
                .is_some_and(|r| (200..300).contains(&r.status_code))
    }
}

/// Why one line of an input file is refused, in the shape of `Batch.errors.data[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// The API-style code: `invalid_json_line`, `missing_required_parameter`,
    /// `invalid_method`, `invalid_url`, `mismatched_endpoint`, `duplicate_custom_id`.
    pub code: &'static str,
    /// The field at fault.
    pub param: Option<&'static str>,
    /// 1-based line number.
    pub line: u64,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl LineProblem {
    /// As an entry of `Batch.errors.data`.
    #[must_use]
    pub fn to_batch_error(&self) -> BatchError {
        BatchError {
            code: Some(self.code.to_owned()),
            message: Some(self.message.clone()),
            param: self.param.map(str::to_owned),
            line: Some(self.line),
        }
    }
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} [{}]", self.line, self.message, self.code)
    }
}

/// Read and check one input line's shape: a JSON object with a string `custom_id`,
/// `method: "POST"`, a string `url` and an object `body`. `endpoint`, when known, is the
/// batch's endpoint every `url` must equal.
///
/// # Errors
/// The first problem, with its line number.
pub fn parse_input_line(
    text: &str,
    line: u64,
    endpoint: Option<&str>,
) -> Result<BatchInputLine, LineProblem> {
    let problem = |code, param, message: String| LineProblem {
        code,
        param,
        line,
        message,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        problem(
            "invalid_json_line",
            None,
            format!("This line is not parseable as valid JSON ({e}). Write one JSON object per line."),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(problem(
            "invalid_json_line",
            None,
            "This line is not a JSON object. Write one {\"custom_id\", \"method\", \"url\", \"body\"} object per line.".into(),
        ));
    };
    let mut string = |field: &'static str| match obj.remove(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(problem(
            "missing_required_parameter",
            Some(field),
            format!("Missing required parameter: '{field}'."),
        )),
        Some(_) => Err(problem(
            "invalid_type",
            Some(field),
            format!("Invalid type for '{field}': expected a string."),
        )),
    };
    let custom_id = string("custom_id")?;
    let method = string("method")?;
    let url = string("url")?;
    if method != "POST" {
        return Err(problem(
            "invalid_method",
            Some("method"),
            format!("Invalid method '{method}': every batch request is a POST. Set \"method\": \"POST\"."),
        ));
    }
    if !SPEC_ENDPOINTS.contains(&url.as_str()) {
        return Err(problem(
            "invalid_url",
            Some("url"),
            format!(
                "Invalid URL '{url}': the batch endpoints are {}.",
                SPEC_ENDPOINTS.join(", ")
            ),
        ));
    }
    if let Some(ep) = endpoint
        && url != ep
    {
        return Err(problem(
            "mismatched_endpoint",
            Some("url"),
            format!(
                "The URL '{url}' does not match the batch's endpoint '{ep}'. Every line must use the batch's endpoint."
            ),
        ));
    }
    let body = match obj.remove("body") {
        Some(b @ Value::Object(_)) => b,
        None | Some(Value::Null) => {
            return Err(problem(
                "missing_required_parameter",
                Some("body"),
                "Missing required parameter: 'body'.".into(),
            ));
        }
        Some(_) => {
            return Err(problem(
                "invalid_type",
                Some("body"),
                "Invalid type for 'body': expected an object (the endpoint's request body).".into(),
            ));
        }
    };
    Ok(BatchInputLine {
        custom_id,
        method,
        url,
        body,
    })
}

/// Check a whole input file the way batch validation does: every line's shape, every `url`
/// equal to `endpoint`, `custom_id`s unique, at most [`MAX_REQUESTS`] requests, at least one.
/// Blank lines are skipped. Returns the lines, or every problem found (up to `max_problems`).
///
/// # Errors
/// The problems, each with its line number.
pub fn check_input_file(
    text: &str,
    endpoint: Option<&str>,
    max_problems: usize,
) -> Result<Vec<BatchInputLine>, Vec<LineProblem>> {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line_no = i as u64 + 1;
        match parse_input_line(raw, line_no, endpoint) {
            Ok(l) => {
                if seen.insert(l.custom_id.clone()) {
                    lines.push(l);
                } else {
                    problems.push(LineProblem {
                        code: "duplicate_custom_id",
                        param: Some("custom_id"),
                        line: line_no,
                        message: format!(
                            "The custom_id '{}' is a duplicate of another request's. The custom_id must be unique for each request in a batch.",
                            l.custom_id
                        ),
                    });
                }
            }
            Err(p) => problems.push(p),
        }
        if problems.len() >= max_problems {
            break;
        }
    }
    if problems.is_empty() && lines.is_empty() {
        problems.push(LineProblem {
            code: "empty_file",
            param: None,
            line: 1,
            message: "The input file has no requests. Write one request per line.".into(),
        });
    }
    if problems.is_empty() && lines.len() > MAX_REQUESTS {
        problems.push(LineProblem {
            code: "too_many_requests",
            param: None,
            line: MAX_REQUESTS as u64 + 1,
            message: format!(
                "The input file has {} requests; a batch takes at most {MAX_REQUESTS}. Split it into several batches.",
                lines.len()
            ),
        });
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImageRequest, ImagesResponseRef};

    #[test]
    fn statuses_round_trip_and_keep_unknown_ones() {
        for s in [
            "validating",
            "failed",
            "in_progress",
            "finalizing",
            "completed",
            "expired",
            "cancelling",
            "cancelled",
        ] {
            let st: BatchStatus = serde_json::from_value(Value::String(s.into())).unwrap();
            assert_eq!(st.as_str(), s);
            assert_eq!(serde_json::to_value(&st).unwrap(), s);
        }
        let st: BatchStatus = serde_json::from_str(r#""paused""#).unwrap();
        assert_eq!(st, BatchStatus::Other("paused".into()));
        assert!(!st.is_terminal());
        assert!(BatchStatus::Cancelled.is_terminal());
        assert!(!BatchStatus::Cancelling.is_terminal());
    }

    #[test]
    fn reads_the_api_example_with_nulls() {
        let b: Batch = serde_json::from_str(
            r#"{"id":"batch_abc123","object":"batch","endpoint":"/v1/images/generations","errors":null,
            "input_file_id":"file-abc123","completion_window":"24h","status":"completed",
            "output_file_id":"file-cvaTdG","error_file_id":"file-HOWS94","created_at":1711471533,
            "in_progress_at":1711471538,"expires_at":1711557933,"finalizing_at":1711493133,
            "completed_at":1711493163,"failed_at":null,"expired_at":null,"cancelling_at":null,
            "cancelled_at":null,"request_counts":{"total":100,"completed":95,"failed":5},
            "metadata":{"customer_id":"user_123456789"}}"#,
        )
        .unwrap();
        assert_eq!(b.status, BatchStatus::Completed);
        assert_eq!(b.counts().failed, 5);
        assert_eq!(b.failed_at, None);
        let back = serde_json::to_value(&b).unwrap();
        assert!(back.get("failed_at").is_none(), "unset fields are absent");
    }

    #[test]
    fn output_lines_read_status_first_then_borrow_the_body() {
        let line = r#"{"id":"batch_req_1","custom_id":"a","response":{"status_code":200,"request_id":"req_1","body":{"created":1,"data":[{"b64_json":"QUJD"}]}},"error":null}"#;
        let head: BatchOutputLine<serde::de::IgnoredAny> = serde_json::from_str(line).unwrap();
        assert!(head.succeeded());
        let full: BatchOutputLine<ImagesResponseRef<'_>> = serde_json::from_str(line).unwrap();
        let body = full.response.unwrap().body;
        assert!(matches!(
            body.data[0].b64_json,
            Some(std::borrow::Cow::Borrowed("QUJD"))
        ));
        let failed = r#"{"id":"batch_req_2","custom_id":"b","response":{"status_code":400,"request_id":"req_2","body":{"error":{"message":"bad","type":"invalid_request_error","param":"size","code":null}}},"error":null}"#;
        let head: BatchOutputLine<serde::de::IgnoredAny> = serde_json::from_str(failed).unwrap();
        assert!(!head.succeeded());
    }

    #[test]
    fn input_files_are_checked_like_batch_validation() {
        let ok = BatchInputLine::post("a", ENDPOINT_GENERATIONS, ImageRequest::new("gpt-image-2", "x"));
        let ok = serde_json::to_string(&ok).unwrap();
        let text = format!(
            "{ok}\n\n{ok}\nnot json\n{{\"custom_id\":\"c\",\"method\":\"GET\",\"url\":\"/v1/images/generations\",\"body\":{{}}}}\n{{\"custom_id\":\"d\",\"method\":\"POST\",\"url\":\"/v1/images/edits\",\"body\":{{}}}}\n{{\"custom_id\":\"e\",\"method\":\"POST\",\"url\":\"/v1/images/generations\"}}\n"
        );
        let problems = check_input_file(&text, Some(ENDPOINT_GENERATIONS), 100).unwrap_err();
        let got: Vec<_> = problems.iter().map(|p| (p.line, p.code)).collect();
        assert_eq!(
            got,
            [
                (3, "duplicate_custom_id"),
                (4, "invalid_json_line"),
                (5, "invalid_method"),
                (6, "mismatched_endpoint"),
                (7, "missing_required_parameter"),
            ]
        );
        assert!(problems[0].to_string().starts_with("line 3: The custom_id 'a'"));
        assert_eq!(check_input_file(&ok, None, 10).unwrap().len(), 1);
        assert_eq!(
            check_input_file("\n", None, 10).unwrap_err()[0].code,
            "empty_file"
        );
    }

    #[test]
    fn batch_prices_are_half() {
        let caps = crate::Capabilities::builtin();
        let live = caps.model("gpt-image-2").unwrap().price.unwrap();
        let half = batch_prices(&live);
        assert!((half.image_output - live.image_output / 2.0).abs() < 1e-12);
        let u = crate::Usage::new(0, 0, 13342);
        let c = crate::Cost::from_usage(&u, &half, true);
        assert!((c.usd - 0.200).abs() < 0.001, "{}", c.usd);
    }

    #[test]
    fn create_request_omits_unset_fields() {
        let r = CreateBatchRequest::new("file-1", ENDPOINT_GENERATIONS);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"input_file_id":"file-1","endpoint":"/v1/images/generations","completion_window":"24h"}"#
        );
    }
}
