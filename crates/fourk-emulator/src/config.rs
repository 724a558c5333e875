//! What the emulator accepts and how it behaves: its configuration, with no dependency on
//! the request state, so the policy and the handlers can read it without a circle.

use std::path::PathBuf;
use std::time::Duration;

use fourk_api::Capabilities;

use crate::faults::FaultSpec;
use crate::ratelimit::RateLimits;

/// How long one request may take before the emulator answers 408. Matches the official SDKs'
/// default timeout, so a realistic `latency_scale` of 1.0 fits inside it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a `stall` fault keeps quiet unless told otherwise: long enough to trip a
/// client's read timeout, short enough for a test to set its own.
pub const DEFAULT_STALL: Duration = Duration::from_secs(30);

/// How long a client may take to send a request's headers, counted from the moment the
/// connection is ready for a request (so an idle keep-alive connection is closed after it
/// too). A client slower than this is dropped without an answer.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request's whole body may take to arrive, counted from the first read of it. A
/// client slower than this gets `408` and the connection is closed.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How many requests the emulator processes at once (`/health` aside); one more gets `429`
/// with `retry-after`.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;

/// What the emulator accepts and how it behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The models, sizes and options it accepts: pass the same table the client validates
    /// with, so both agree. Default: [`Capabilities::builtin`].
    pub capabilities: Capabilities,
    /// When `Some`, `Authorization: Bearer` must carry exactly this key (otherwise 401
    /// `invalid_api_key`). When `None` (the default), any non-empty key is accepted; a missing
    /// key is still a 401, as on the real API.
    pub require_key: Option<String>,
    /// Multiplier for simulated generation time. 0 (the default) answers as soon as the image
    /// is rendered; 1.0 waits about as long as the real API (about 80 s for 1024x1024
    /// medium, 195 s for high, longer for larger images); 0.01 is a hundredth of that.
    pub latency_scale: f64,
    /// Per-minute allowances, enforced with `429 rate_limit_exceeded` and reported in the
    /// `x-ratelimit-*` headers. Default: [`RateLimits::default`].
    pub rate_limits: RateLimits,
    /// Faults to inject into image requests. Default: none.
    pub faults: FaultSpec,
    /// Seed of the fault draw: the same seed and the same requests in the same order meet
    /// the same faults. `None` (the default) seeds from the clock.
    pub seed: Option<u64>,
    /// How long a `stall` fault sends nothing. Default: [`DEFAULT_STALL`].
    pub stall: Duration,
    /// Answer every image request with the 403 organisation-verification error, as for an
    /// unverified organisation. Default: false.
    pub fail_org_verification: bool,
    /// Prompts containing any of these words (case-insensitive) are rejected by the
    /// emulated safety system. Default: none.
    pub moderation_block_words: Vec<String>,
    /// Append one JSON line per request to this file. Default: no log.
    pub request_log: Option<PathBuf>,
    /// How long a client may take to send a request's headers (and how long an idle
    /// connection is kept). Default: [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// How long a request's whole body may take to arrive. Default:
    /// [`DEFAULT_BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// Requests processed at once (an answer being streamed counts until it ends); more get
    /// `429` with `retry-after: 1`. `/health` is not counted. Default:
    /// [`DEFAULT_MAX_CONCURRENT_REQUESTS`]; 0 is taken as 1.
    pub max_concurrent_requests: usize,
    /// Azure OpenAI deployment names and the model each serves (`--deployment NAME=MODEL`).
    /// A deployment named after a model id needs no entry. Default: none.
    pub deployments: Vec<(String, String)>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            capabilities: Capabilities::builtin(),
            require_key: None,
            latency_scale: 0.0,
            rate_limits: RateLimits::default(),
            faults: FaultSpec::none(),
            seed: None,
            stall: DEFAULT_STALL,
            fail_org_verification: false,
            moderation_block_words: Vec::new(),
            request_log: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            deployments: Vec::new(),
        }
    }
}

/// A `latency_scale` as written on the command line: a finite number, 0 or more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyScale(pub f64);

impl std::str::FromStr for LatencyScale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: f64 = s.trim().parse().map_err(|_| {
            format!("'{s}' is not a number; use for example 0.01 (a hundredth of the real API's time)")
        })?;
        if !v.is_finite() {
            return Err(format!("'{s}' is not a finite number; use for example 0.01"));
        }
        if v < 0.0 {
            return Err(format!(
                "the latency scale is {v}, which is negative; use 0 for no delay"
            ));
        }
        Ok(Self(v))
    }
}
