//! What fourk keeps of a response's head: the status, ids, timing and rate-limit headers,
//! for a whole answer ([`crate::ApiResponse`]) and a streamed one ([`crate::EventStream`]).

use std::time::Duration;

use reqwest::header::HeaderMap;

/// The `x-ratelimit-*` headers of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RateLimits {
    /// `x-ratelimit-limit-requests`.
    pub limit_requests: Option<u64>,
    /// `x-ratelimit-remaining-requests`.
    pub remaining_requests: Option<u64>,
    /// `x-ratelimit-reset-requests`, as sent (`1s`, `12ms`).
    pub reset_requests: Option<String>,
    /// `x-ratelimit-limit-tokens`.
    pub limit_tokens: Option<u64>,
    /// `x-ratelimit-remaining-tokens`.
    pub remaining_tokens: Option<u64>,
    /// `x-ratelimit-reset-tokens`.
    pub reset_tokens: Option<String>,
}

/// The status line and headers of an answer, before (or without) its body.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// HTTP status.
    pub status: u16,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// The `x-client-request-id` fourk sent with the attempt that started this answer.
    pub client_request_id: String,
    /// `openai-processing-ms`.
    pub processing_ms: Option<u64>,
    /// `x-fourk-emulator`, present when the answer came from fourk's emulator.
    pub emulator: Option<String>,
    /// Rate-limit headers.
    pub rate_limits: RateLimits,
    /// All headers.
    pub headers: HeaderMap,
    /// Time from sending the last attempt to its headers.
    pub elapsed: Duration,
    /// Attempts made, retries included.
    pub attempts: u32,
}
