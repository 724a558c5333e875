//! The state shared by every request (its configuration is in `config`): the capability
//! table, the key, the rate-limit counters, request ids, the render slots, the fault draw, the
//! request log and the stored responses.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

pub use crate::config::{DEFAULT_REQUEST_TIMEOUT, EmulatorConfig};
use crate::error::{EmulatorError, mask_key};
use crate::faults::{FaultDraw, InjectedFault};
use crate::ratelimit::{RateLimiter, RateLimits};
use crate::reqlog::RequestLog;
use crate::store::ResponseStore;

/// The path a request arrived on, before an adapter (Azure's, google-genai's `/v1` alias)
/// rewrote it; the request log shows it.
#[derive(Debug, Clone)]
pub(crate) struct ArrivedOn(pub(crate) String);

/// What the router's outer layer knows about one request, shared with its handler.
#[derive(Debug)]
pub(crate) struct RequestContext {
    /// The `x-request-id` the answer will carry.
    pub(crate) id: String,
    /// The fault drawn for this request, when it is one a handler applies (`wrong-size`,
    /// `corrupt`).
    pub(crate) fault: Option<InjectedFault>,
    prompt_sha256: OnceLock<String>,
}

impl RequestContext {
    pub(crate) fn new(id: String, fault: Option<InjectedFault>) -> Self {
        Self {
            id,
            fault,
            prompt_sha256: OnceLock::new(),
        }
    }

    /// Record the prompt for the request log (only its digest is kept).
    pub(crate) fn set_prompt(&self, prompt: &str) {
        let _ = self.prompt_sha256.set(hex(&Sha256::digest(prompt.as_bytes())));
    }

    pub(crate) fn prompt_sha256(&self) -> Option<&str> {
        self.prompt_sha256.get().map(String::as_str)
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The state behind [`crate::app`]: configuration plus counters.
#[derive(Debug)]
pub struct EmulatorState {
    pub(crate) config: EmulatorConfig,
    pub(crate) limiter: RateLimiter,
    pub(crate) request_timeout: Duration,
    /// Rendering a 4K image takes a few hundred megabytes of memory traffic and every core it
    /// is given; more concurrent renders than cores only queue inside the OS.
    pub(crate) renders: Arc<Semaphore>,
    /// One permit per request in progress ([`EmulatorConfig::max_concurrent_requests`]).
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) max_in_flight: usize,
    pub(crate) faults: FaultDraw,
    pub(crate) request_log: Option<RequestLog>,
    pub(crate) responses: ResponseStore,
    /// Uploaded files and batches (`/v1/files`, `/v1/batches`).
    pub(crate) batch: crate::stores::BatchApi,
    ids: AtomicU64,
    id_key: [u8; 32],
}

impl EmulatorState {
    /// State with the configured rate limits and the default request timeout
    /// ([`DEFAULT_REQUEST_TIMEOUT`]). A request log that cannot be opened is reported with
    /// `tracing` and left out; use [`EmulatorState::try_new`] to get the error instead.
    #[must_use]
    pub fn new(config: EmulatorConfig) -> Self {
        let log = config.request_log.as_deref().and_then(|path| {
            RequestLog::open(path)
                .inspect_err(
                    |e| tracing::error!(path = %path.display(), error = %e, "request log not opened"),
                )
                .ok()
        });
        Self::with_log(config, log)
    }

    /// [`EmulatorState::new`], failing when the request log cannot be opened.
    ///
    /// # Errors
    /// The error opening `config.request_log`, with the path in its message.
    pub fn try_new(config: EmulatorConfig) -> io::Result<Self> {
        let log = match config.request_log.as_deref() {
            Some(path) => Some(RequestLog::open(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open the request log {}: {e}", path.display()),
                )
            })?),
            None => None,
        };
        Ok(Self::with_log(config, log))
    }

    fn with_log(config: EmulatorConfig, request_log: Option<RequestLog>) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(now.as_nanos().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        // Two emulators started in the same nanosecond still get different ids.
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        h.update(INSTANCES.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let id_key: [u8; 32] = h.finalize().into();
        let slots = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let seed = config.seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&id_key[..8]);
            u64::from_le_bytes(b)
        });
        let max_in_flight = config.max_concurrent_requests.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            limiter: RateLimiter::new(config.rate_limits),
            faults: FaultDraw::new(config.faults.clone(), seed),
            request_log,
            responses: ResponseStore::default(),
            batch: crate::stores::BatchApi::default(),
            config,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            renders: Arc::new(Semaphore::new(slots)),
            ids: AtomicU64::new(0),
            id_key,
        }
    }

    /// Replace the per-minute allowances.
    #[must_use]
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.limiter = RateLimiter::new(limits);
        self
    }

    /// Replace the request timeout.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &EmulatorConfig {
        &self.config
    }

    /// A fresh `req_` id: 32 hex digits, unique per request and per emulator run.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut h = Sha256::new();
        h.update(self.id_key);
        h.update(n.to_le_bytes());
        let digest = h.finalize();
        format!("req_{}", hex(&digest[..16]))
    }

    /// A fresh object id such as `resp_…` or `ig_…`: the prefix, then 48 hex digits (the
    /// length of the API's response ids), unique per emulator run.
    pub(crate) fn object_id(&self, prefix: &str) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut h = Sha256::new();
        h.update(self.id_key);
        h.update(prefix.as_bytes());
        h.update(n.to_le_bytes());
        format!("{prefix}_{}", hex(&h.finalize()[..24]))
    }

    /// Check `Authorization: Bearer <key>` the way the API does.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), EmulatorError> {
        let key = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|k| !k.is_empty());
        match (key, &self.config.require_key) {
            (None, _) => Err(EmulatorError::MissingKey),
            (Some(got), Some(want)) if !same_key(got, want) => Err(EmulatorError::InvalidKey {
                masked: mask_key(got),
            }),
            _ => Ok(()),
        }
    }

    /// How every image endpoint wraps its own work (the key was checked before, by the
    /// router): the work, then the rate-limit headers on whatever came out, success or error.
    pub(crate) async fn answer(
        &self,
        work: impl Future<Output = Result<Response, EmulatorError>>,
    ) -> Response {
        let mut response = work.await.unwrap_or_else(IntoResponse::into_response);
        self.limiter.snapshot().write(response.headers_mut());
        response
    }
}

/// Compare digests, so the time taken says nothing about how much of the key matched.
fn same_key(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// The JSON body of an image request: one request counted against the rate limit, then the
/// body read (its limit and read errors as the API words them) and parsed.
pub(crate) fn json_request(
    state: &EmulatorState,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<serde_json::Value, EmulatorError> {
    state.limiter.acquire([1, 0, 0])?;
    let bytes = body.map_err(|r| EmulatorError::Body {
        status: r.status(),
        message: r.body_text(),
    })?;
    serde_json::from_slice(&bytes).map_err(|_| EmulatorError::InvalidJson)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_shaped_like_the_api() {
        let s = EmulatorState::new(EmulatorConfig::default());
        let a = s.next_request_id();
        let b = s.next_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("req_"));
        assert!(
            a[4..]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let s = EmulatorState::new(EmulatorConfig {
            require_key: Some("sk-good".into()),
            ..EmulatorConfig::default()
        });
        let mut h = HeaderMap::new();
        assert_eq!(s.authorize(&h), Err(EmulatorError::MissingKey));
        h.insert(AUTHORIZATION, "bearer sk-good".parse().unwrap());
        assert_eq!(s.authorize(&h), Ok(()));
        h.insert(AUTHORIZATION, "Bearer sk-bad".parse().unwrap());
        assert!(matches!(s.authorize(&h), Err(EmulatorError::InvalidKey { .. })));
        h.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(s.authorize(&h), Err(EmulatorError::MissingKey));
    }
}
