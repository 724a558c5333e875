//! Per-minute request, token and image counters, reported in the `x-ratelimit-*` headers.
//!
//! Windows are fixed minutes counted from the emulator's start, which is simpler than the
//! API's rolling buckets but honest: `remaining` is what is really left, and `reset` is how
//! long until the counter is back to its full allowance (`0s` when nothing is used).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};

use crate::error::EmulatorError;
use crate::quota::{Limit, format_reset};

const WINDOW: Duration = Duration::from_secs(60);

/// Per-minute allowances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per minute (default 500).
    pub requests_per_minute: u64,
    /// Tokens per minute, input plus predicted output (default 4,000,000).
    pub tokens_per_minute: u64,
    /// Images per minute (default 500).
    pub images_per_minute: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            requests_per_minute: 500,
            tokens_per_minute: 4_000_000,
            images_per_minute: 500,
        }
    }
}

/// A per-minute allowance as written on the command line: `N/min` (`N/m` and a bare `N`
/// mean the same), with N at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerMinute(pub u64);

impl std::str::FromStr for PerMinute {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (n, unit) = t.split_once('/').unwrap_or((t, "min"));
        let unit = unit.trim();
        if !["min", "m", "minute"].contains(&unit) {
            return Err(format!(
                "'{s}' has the unit '/{unit}'; allowances are per minute: write N/min, for example 60/min"
            ));
        }
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a count per minute; write N/min, for example 60/min"))?;
        if n == 0 {
            return Err("a rate limit of 0/min would refuse every request; use at least 1/min".into());
        }
        Ok(Self(n))
    }
}

#[derive(Debug, Default)]
struct Window {
    index: u64,
    used: [u64; 3],
}

/// The counters of one emulator.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: RateLimits,
    start: Instant,
    window: Mutex<Window>,
}

/// What the headers report after a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    limits: [u64; 3],
    used: [u64; 3],
    reset: Duration,
}

impl RateLimiter {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            start: Instant::now(),
            window: Mutex::new(Window::default()),
        }
    }

    fn allowances(&self) -> [u64; 3] {
        [
            self.limits.requests_per_minute,
            self.limits.tokens_per_minute,
            self.limits.images_per_minute,
        ]
    }

    /// The current window, reset if a new minute began, and the time left in it.
    fn with_window<T>(&self, f: impl FnOnce(&mut Window, Duration) -> T) -> T {
        let elapsed = self.start.elapsed();
        let index = elapsed.as_secs() / WINDOW.as_secs();
        let into = elapsed.as_nanos() % WINDOW.as_nanos();
        let left = WINDOW - Duration::from_nanos(u64::try_from(into).unwrap_or_default());
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if w.index != index {
            *w = Window { index, used: [0; 3] };
        }
        f(&mut w, left)
    }

    /// Take `amounts` (requests, tokens, images) if all fit; otherwise take nothing.
    pub(crate) fn acquire(&self, amounts: [u64; 3]) -> Result<(), EmulatorError> {
        let allowed = self.allowances();
        self.with_window(|w, left| {
            for (i, limit) in [Limit::Requests, Limit::Tokens, Limit::Images]
                .into_iter()
                .enumerate()
            {
                if amounts[i] > 0 && w.used[i] + amounts[i] > allowed[i] {
                    return Err(EmulatorError::RateLimited {
                        limit,
                        allowed: allowed[i],
                        used: w.used[i],
                        requested: amounts[i],
                        retry_after: left,
                    });
                }
            }
            for (u, a) in w.used.iter_mut().zip(amounts) {
                *u += a;
            }
            Ok(())
        })
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let limits = self.allowances();
        self.with_window(|w, left| Snapshot {
            limits,
            used: w.used,
            reset: left,
        })
    }
}

impl Snapshot {
    /// Add `x-ratelimit-{limit,remaining,reset}-{requests,tokens,images}`.
    pub(crate) fn write(&self, headers: &mut HeaderMap) {
        for (i, limit) in [Limit::Requests, Limit::Tokens, Limit::Images]
            .into_iter()
            .enumerate()
        {
            let name = limit.name();
            let remaining = self.limits[i].saturating_sub(self.used[i]);
            let reset = if self.used[i] == 0 {
                Duration::ZERO
            } else {
                self.reset
            };
            for (key, value) in [
                (format!("x-ratelimit-limit-{name}"), self.limits[i].to_string()),
                (format!("x-ratelimit-remaining-{name}"), remaining.to_string()),
                (format!("x-ratelimit-reset-{name}"), format_reset(reset)),
            ] {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::try_from(key),
                    HeaderValue::try_from(value),
                ) {
                    headers.insert(k, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_minute_parses_and_explains() {
        assert_eq!("60/min".parse::<PerMinute>(), Ok(PerMinute(60)));
        assert_eq!(" 5 ".parse::<PerMinute>(), Ok(PerMinute(5)));
        assert!("5/s".parse::<PerMinute>().unwrap_err().contains("per minute"));
        assert!(
            "many/min"
                .parse::<PerMinute>()
                .unwrap_err()
                .contains("not a count")
        );
        assert!("0/min".parse::<PerMinute>().unwrap_err().contains("at least 1"));
    }

    #[test]
    fn acquire_is_all_or_nothing() {
        let l = RateLimiter::new(RateLimits {
            requests_per_minute: 2,
            tokens_per_minute: 100,
            images_per_minute: 5,
        });
        l.acquire([1, 0, 0]).unwrap();
        let e = l.acquire([0, 101, 1]).unwrap_err();
        assert!(matches!(
            e,
            EmulatorError::RateLimited {
                limit: Limit::Tokens,
                ..
            }
        ));
        l.acquire([1, 100, 5]).unwrap();
        let e = l.acquire([1, 0, 0]).unwrap_err();
        assert!(matches!(
            e,
            EmulatorError::RateLimited {
                limit: Limit::Requests,
                used: 2,
                ..
            }
        ));
        let mut h = HeaderMap::new();
        l.snapshot().write(&mut h);
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert_eq!(h["x-ratelimit-remaining-images"], "0");
        assert_eq!(h["x-ratelimit-limit-tokens"], "100");
    }
}
