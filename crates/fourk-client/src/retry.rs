//! One retry policy for every route, as a pure decision function.
//!
//! An image request has no idempotency key, so a resend that reaches the model is a second,
//! billed generation. The policy therefore retries only what cannot have produced an image:
//! connections that never sent the request, and answers the server marks as transient (408,
//! 409, rate limits, 5xx). A failure after the request was sent with no complete answer
//! (read timeout, reset mid-response, truncated body) is *ambiguous*: the image may already
//! be billed, so it is retried only when [`RetryPolicy::retry_ambiguous`] is set.
//!
//! The server's hints win over the status: `retry-after-ms`, then `retry-after` (seconds or
//! an HTTP date) set the delay, and `x-should-retry: true|false` overrides the status logic,
//! as in the official SDKs.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;

/// When and how often to retry. See the module docs for what counts as retryable.
///
/// Defaults (the official SDKs' numbers where they have one): 2 retries (3 attempts),
/// backoff `0.5 s * 2^n` capped at 8 s with up to 25 % jitter, a server-requested wait of at
/// most 60 s, at most 15 minutes from the first send to the last retry, and ambiguous
/// failures not retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default 2.
    pub max_retries: u32,
    /// First backoff delay. Default 500 ms.
    pub base_delay: Duration,
    /// Longest backoff delay. Default 8 s.
    pub max_delay: Duration,
    /// Longest wait a server may ask for with `retry-after`; a longer request is not
    /// retried (the error carries the wait, so the caller can decide). Default 60 s.
    pub max_server_delay: Duration,
    /// No retry starts later than this after the first send. Default 15 min.
    pub max_elapsed: Duration,
    /// Retry failures after the request was sent (may bill twice). Default false.
    pub retry_ambiguous: bool,
    /// A number in `[0, 1)`; the backoff is multiplied by `1 - 0.25 * jitter()`. Default
    /// random; tests inject a constant.
    pub jitter: fn() -> f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_server_delay: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(15 * 60),
            retry_ambiguous: false,
            jitter: fastrand::f64,
        }
    }
}

/// Where the policy stands: how many retries were made and how long since the first send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Retries already made (0 after the first attempt failed).
    pub retries: u32,
    /// Time since the first attempt was sent.
    pub elapsed: Duration,
}

/// What the server said about retrying, from the response headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerHints {
    /// `retry-after-ms`, else `retry-after` (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// `x-should-retry: true|false`.
    pub should_retry: Option<bool>,
}

impl ServerHints {
    /// Read the hints from response headers.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let should_retry = headers
            .get("x-should-retry")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| match v.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            });
        Self {
            retry_after: retry_after(headers),
            should_retry,
        }
    }
}

/// `retry-after-ms` (milliseconds), else `retry-after` (seconds, or an HTTP date).
pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let finite = |v: f64| (v.is_finite() && v >= 0.0).then_some(v);
    if let Some(ms) = get("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(finite)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = get("retry-after")?;
    if let Ok(s) = v.parse::<f64>() {
        return finite(s).map(Duration::from_secs_f64);
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// How one attempt ended, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// No connection could be made: nothing was sent, nothing billed.
    NotSent,
    /// The request was sent but no complete answer came back: possibly billed.
    Ambiguous,
    /// The server answered with an error status.
    Status {
        /// HTTP status.
        status: u16,
        /// `error.code` of the envelope.
        code: Option<&'a str>,
        /// `error.type` of the envelope.
        kind: Option<&'a str>,
        /// Retry headers.
        hints: ServerHints,
    },
}

/// Why a request is retried, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryReason {
    /// The connection failed before anything was sent.
    NotSent,
    /// No complete answer after sending, and the policy retries those.
    Ambiguous,
    /// A transient status (408, 409, 429 rate limit, 5xx).
    Status(u16),
    /// `x-should-retry: true`, whatever the status.
    ServerAsked(u16),
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSent => f.write_str("the connection failed before the request was sent"),
            Self::Ambiguous => f.write_str(
                "no complete answer after the request was sent (retry_ambiguous is set: this may bill twice)",
            ),
            Self::Status(429) => f.write_str("rate limited (HTTP 429)"),
            Self::Status(s) => write!(f, "transient HTTP {s}"),
            Self::ServerAsked(s) => {
                write!(f, "the server asked for a retry (HTTP {s}, x-should-retry: true)")
            }
        }
    }
}

/// The policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then resend.
    Retry(Duration, RetryReason),
    /// Give up and return the error.
    Stop,
}

impl RetryPolicy {
    /// Never retry.
    #[must_use]
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Replace the number of retries.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Retry failures after the request was sent (read timeouts, resets, truncated
    /// bodies). Each such retry may bill a second image.
    #[must_use]
    pub fn with_retry_ambiguous(mut self, yes: bool) -> Self {
        self.retry_ambiguous = yes;
        self
    }

    /// Replace the backoff's first and longest delay.
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max;
        self
    }

    /// Replace the bound on the total time.
    #[must_use]
    pub fn with_max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = d;
        self
    }

    /// Replace the jitter source (a function returning a number in `[0, 1)`).
    #[must_use]
    pub fn with_jitter(mut self, jitter: fn() -> f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether a status with this envelope is transient, before any server hint.
    #[must_use]
    pub fn retryable_status(status: u16, code: Option<&str>, kind: Option<&str>) -> bool {
        match status {
            408 | 409 | 500..=599 => true,
            // Rate limits pass; quota and credit exhaustion do not, whatever the code says
            // about the type. Unknown 429 codes are treated as permanent: a wrong "yes"
            // hammers a closed account, a wrong "no" costs one manual rerun.
            429 => {
                matches!(code, None | Some("rate_limit_exceeded" | "slow_down"))
                    && kind != Some("insufficient_quota")
            }
            _ => false,
        }
    }

    /// The backoff before retry number `retries + 1`, without server hints.
    #[must_use]
    pub fn backoff(&self, retries: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retries.min(31)))
            .min(self.max_delay);
        let j = (self.jitter)().clamp(0.0, 1.0);
        exp.mul_f64(1.0 - 0.25 * j)
    }

    /// Decide what to do after a failed attempt. Pure: the same inputs (and jitter) give
    /// the same answer.
    #[must_use]
    pub fn decide(&self, attempt: Attempt, outcome: &Outcome<'_>) -> Decision {
        if attempt.retries >= self.max_retries {
            return Decision::Stop;
        }
        let (reason, hint) = match *outcome {
            Outcome::NotSent => (RetryReason::NotSent, None),
            Outcome::Ambiguous if self.retry_ambiguous => (RetryReason::Ambiguous, None),
            Outcome::Ambiguous => return Decision::Stop,
            Outcome::Status {
                status,
                code,
                kind,
                hints,
            } => {
                let reason = match hints.should_retry {
                    Some(false) => return Decision::Stop,
                    Some(true) => RetryReason::ServerAsked(status),
                    None if Self::retryable_status(status, code, kind) => RetryReason::Status(status),
                    None => return Decision::Stop,
                };
                (reason, hints.retry_after)
            }
        };
        let delay = match hint {
            Some(d) if d > self.max_server_delay => return Decision::Stop,
            Some(d) => d,
            None => self.backoff(attempt.retries),
        };
        if attempt.elapsed.saturating_add(delay) > self.max_elapsed {
            return Decision::Stop;
        }
        Decision::Retry(delay, reason)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn fixed() -> RetryPolicy {
        RetryPolicy::default().with_jitter(|| 0.0)
    }

    fn first() -> Attempt {
        Attempt {
            retries: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn status(status: u16, code: Option<&str>) -> Outcome<'_> {
        Outcome::Status {
            status,
            code,
            kind: None,
            hints: ServerHints::default(),
        }
    }

    /// Compress a sorted list of statuses into `a-b` ranges.
    fn ranges(v: &[u16]) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < v.len() {
            let mut j = i;
            while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
                j += 1;
            }
            out.push(if i == j {
                v[i].to_string()
            } else {
                format!("{}-{}", v[i], v[j])
            });
            i = j + 1;
        }
        out.join(" ")
    }

    /// The frozen table: every status 400-599 with each code that matters, retried or not.
    /// A change here is a change of billing behaviour; update it on purpose.
    #[test]
    fn frozen_retry_table() {
        let p = fixed();
        let codes = [
            None,
            Some("rate_limit_exceeded"),
            Some("slow_down"),
            Some("insufficient_quota"),
            Some("credit_balance_exhausted"),
            Some("moderation_blocked"),
            Some("invalid_value"),
        ];
        let table: Vec<String> = codes
            .iter()
            .map(|code| {
                let retried: Vec<u16> = (400..=599)
                    .filter(|s| matches!(p.decide(first(), &status(*s, *code)), Decision::Retry(..)))
                    .collect();
                format!("{}: {}", code.unwrap_or("-"), ranges(&retried))
            })
            .collect();
        assert_eq!(
            table,
            [
                "-: 408-409 429 500-599",
                "rate_limit_exceeded: 408-409 429 500-599",
                "slow_down: 408-409 429 500-599",
                "insufficient_quota: 408-409 500-599",
                "credit_balance_exhausted: 408-409 500-599",
                "moderation_blocked: 408-409 500-599",
                "invalid_value: 408-409 500-599",
            ]
        );
        // The permanent statuses, spelled out.
        for s in [400, 401, 403, 404, 422] {
            assert_eq!(p.decide(first(), &status(s, None)), Decision::Stop, "{s}");
        }
        // A 429 whose type says quota is permanent even without a code.
        let quota = Outcome::Status {
            status: 429,
            code: None,
            kind: Some("insufficient_quota"),
            hints: ServerHints::default(),
        };
        assert_eq!(p.decide(first(), &quota), Decision::Stop);
    }

    #[test]
    fn connection_failures_retry_and_ambiguous_ones_only_when_asked() {
        let p = fixed();
        assert_eq!(
            p.decide(first(), &Outcome::NotSent),
            Decision::Retry(Duration::from_millis(500), RetryReason::NotSent)
        );
        assert_eq!(p.decide(first(), &Outcome::Ambiguous), Decision::Stop);
        assert_eq!(
            p.clone()
                .with_retry_ambiguous(true)
                .decide(first(), &Outcome::Ambiguous),
            Decision::Retry(Duration::from_millis(500), RetryReason::Ambiguous)
        );
    }

    #[test]
    fn backoff_doubles_caps_at_8s_and_jitters_down_by_a_quarter() {
        let p = fixed().with_max_retries(10);
        let delays: Vec<u64> = (0..6)
            .map(|n| {
                let Decision::Retry(d, _) = p.decide(
                    Attempt {
                        retries: n,
                        elapsed: Duration::ZERO,
                    },
                    &Outcome::NotSent,
                ) else {
                    panic!("retry {n} refused")
                };
                u64::try_from(d.as_millis()).unwrap()
            })
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 8000]);
        let max_jitter = p.with_jitter(|| 0.999_999);
        let d = max_jitter.backoff(3);
        assert!(
            d > Duration::from_millis(3000) && d <= Duration::from_millis(3001),
            "{d:?}"
        );
    }

    #[test]
    fn attempts_and_total_time_are_bounded() {
        let p = fixed();
        let third = Attempt {
            retries: 2,
            elapsed: Duration::ZERO,
        };
        assert_eq!(p.decide(third, &Outcome::NotSent), Decision::Stop);
        let late = Attempt {
            retries: 0,
            elapsed: Duration::from_secs(15 * 60),
        };
        assert_eq!(p.decide(late, &Outcome::NotSent), Decision::Stop);
        assert_eq!(
            RetryPolicy::none().decide(first(), &Outcome::NotSent),
            Decision::Stop
        );
    }

    #[test]
    fn server_hints_set_the_delay_and_override_the_status() {
        let p = fixed();
        let with = |status: u16, retry_after: Option<u64>, should: Option<bool>| Outcome::Status {
            status,
            code: None,
            kind: None,
            hints: ServerHints {
                retry_after: retry_after.map(Duration::from_millis),
                should_retry: should,
            },
        };
        assert_eq!(
            p.decide(first(), &with(429, Some(1500), None)),
            Decision::Retry(Duration::from_millis(1500), RetryReason::Status(429))
        );
        assert_eq!(p.decide(first(), &with(503, None, Some(false))), Decision::Stop);
        assert_eq!(
            p.decide(first(), &with(400, None, Some(true))),
            Decision::Retry(Duration::from_millis(500), RetryReason::ServerAsked(400))
        );
        // Longer than the policy will wait: give up and let the caller see retry_after.
        assert_eq!(p.decide(first(), &with(429, Some(61_000), None)), Decision::Stop);
    }

    #[test]
    fn hints_are_read_from_headers_in_priority_order() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(
            ServerHints::from_headers(&h).retry_after,
            Some(Duration::from_secs(3))
        );
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        assert_eq!(
            ServerHints::from_headers(&h),
            ServerHints {
                retry_after: Some(Duration::from_millis(250)),
                should_retry: Some(false)
            }
        );
        let mut h = HeaderMap::new();
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        h.insert("retry-after", HeaderValue::from_str(&soon).unwrap());
        let d = ServerHints::from_headers(&h).retry_after.unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(ServerHints::from_headers(&h).retry_after, None);
    }
}
