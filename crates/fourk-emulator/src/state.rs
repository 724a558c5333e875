//! Configuration and the state shared by every request: the capability table, the key, the
//! rate-limit counters, request ids and the render slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use fourk_api::Capabilities;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::{EmulatorError, mask_key};
use crate::ratelimit::{RateLimiter, RateLimits};

/// How long one request may take before the emulator answers 408. Matches the official SDKs'
/// default timeout, so a realistic `latency_scale` of 1.0 fits inside it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

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
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            capabilities: Capabilities::builtin(),
            require_key: None,
            latency_scale: 0.0,
        }
    }
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
    ids: AtomicU64,
    id_key: [u8; 32],
}

impl EmulatorState {
    /// State with default rate limits ([`RateLimits::default`]) and request timeout
    /// ([`DEFAULT_REQUEST_TIMEOUT`]).
    #[must_use]
    pub fn new(config: EmulatorConfig) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(now.as_nanos().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        // Two emulators started in the same nanosecond still get different ids.
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        h.update(INSTANCES.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let slots = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            config,
            limiter: RateLimiter::new(RateLimits::default()),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            renders: Arc::new(Semaphore::new(slots)),
            ids: AtomicU64::new(0),
            id_key: h.finalize().into(),
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
        let mut id = String::with_capacity(36);
        id.push_str("req_");
        for b in &digest[..16] {
            id.push_str(&format!("{b:02x}"));
        }
        id
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
}

/// Compare digests, so the time taken says nothing about how much of the key matched.
fn same_key(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
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
