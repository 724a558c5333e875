//! The send gate of the worker loop: bounded, adaptive concurrency plus pacing from the
//! `x-ratelimit-*` headers, so a rate limit is approached and not hammered.
//!
//! - Concurrency is additive-increase / multiplicative-decrease between 1 and the
//!   `--concurrency` ceiling: a 429 or 503 halves it, a run of successes adds one.
//! - Pacing spreads what is left of the allowance over the time until it resets:
//!   after each answer the gap between sends becomes `reset / (remaining - in_flight)`
//!   (for requests, and for tokens with the job's estimate), so the last request of a
//!   window goes out just before the window ends, and nothing is sent once nothing is left.
//! - `retry-after` on a 429 pauses every worker, not just the one that was refused.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fourk_client::RateLimits;
use tokio::sync::Notify;

/// The gate. Share it with an `Arc`.
#[derive(Debug)]
pub struct Governor {
    max: usize,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    next_send: Instant,
    last_send: Instant,
    gap: Duration,
    paused_until: Instant,
    successes: usize,
    rate_limited: u64,
}

/// A send slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    gov: Arc<Governor>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut s = self.gov.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.gov.wake.notify_waiters();
    }
}

/// `1s`, `12ms`, `6m0s`, `1h2m3.5s`, `0.5s`: the durations of `x-ratelimit-reset-*`.
#[must_use]
pub fn parse_reset(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" | "" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_end..];
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total))
}

impl Governor {
    /// A gate allowing at most `max` requests in flight (at least 1).
    #[must_use]
    pub fn new(max: usize) -> Arc<Self> {
        let now = Instant::now();
        let max = max.max(1);
        Arc::new(Self {
            max,
            state: Mutex::new(State {
                limit: max,
                in_flight: 0,
                next_send: now,
                last_send: now,
                gap: Duration::ZERO,
                paused_until: now,
                successes: 0,
                rate_limited: 0,
            }),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for a slot: fewer than the current limit in flight, no pause, and the pacing
    /// gap since the previous send.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                let ready_at = s.next_send.max(s.paused_until);
                if s.in_flight < s.limit && ready_at <= now {
                    s.in_flight += 1;
                    s.last_send = now;
                    s.next_send = now + s.gap;
                    return Slot {
                        gov: Arc::clone(self),
                    };
                }
                (ready_at > now).then(|| ready_at - now)
            };
            match wait {
                // Waiting for time: a freed slot or new headers may also change the answer.
                Some(d) => {
                    let _ = tokio::time::timeout(d, notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// An answer arrived: adopt its rate-limit headers (`est_tokens`: what the next request
    /// is expected to use) and count a success.
    pub fn on_success(&self, rl: &RateLimits, est_tokens: u64) {
        {
            let mut s = self.lock();
            let others = u64::try_from(s.in_flight).unwrap_or(u64::MAX);
            let mut gap = Duration::ZERO;
            if let (Some(left), Some(reset)) = (
                rl.remaining_requests,
                rl.reset_requests.as_deref().and_then(parse_reset),
            ) {
                let usable = left.saturating_sub(others);
                gap = gap.max(if usable == 0 {
                    reset
                } else {
                    reset.div_f64(usable as f64)
                });
            }
            if let (Some(left), Some(reset)) = (
                rl.remaining_tokens,
                rl.reset_tokens.as_deref().and_then(parse_reset),
            ) {
                let need = est_tokens.saturating_mul(others + 1).max(1);
                gap = gap.max(if left < need {
                    reset
                } else {
                    reset.mul_f64(est_tokens as f64 / left as f64)
                });
            }
            s.gap = gap.min(Duration::from_secs(60));
            // The new gap counts from the last send, not from the next one.
            s.next_send = s.next_send.max(s.last_send + s.gap);
            s.successes += 1;
            if s.successes >= s.limit && s.limit < self.max {
                s.limit += 1;
                s.successes = 0;
            }
        }
        self.wake.notify_waiters();
    }

    /// The server said slow down (429 rate limit or 503): halve the concurrency and pause
    /// every worker for `retry_after` (or a second).
    pub fn on_slow_down(&self, retry_after: Option<Duration>, was_rate_limit: bool) {
        let mut s = self.lock();
        s.limit = (s.limit / 2).max(1);
        s.successes = 0;
        if was_rate_limit {
            s.rate_limited += 1;
        }
        let until = Instant::now()
            + retry_after
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(120));
        s.paused_until = s.paused_until.max(until);
    }

    /// The current concurrency limit.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// 429 rate-limit answers seen.
    #[must_use]
    pub fn rate_limited(&self) -> u64 {
        self.lock().rate_limited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations_parse_like_the_api_sends_them() {
        let ms = |s| parse_reset(s).map(|d| d.as_millis());
        assert_eq!(ms("1s"), Some(1000));
        assert_eq!(ms("12ms"), Some(12));
        assert_eq!(ms("6m0s"), Some(360_000));
        assert_eq!(ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(ms("0.5s"), Some(500));
        assert_eq!(ms("0s"), Some(0));
        assert_eq!(ms("7"), Some(7000));
        assert_eq!(ms(""), None);
        assert_eq!(ms("soon"), None);
        assert_eq!(ms("5d"), None);
    }

    fn rl(left: u64, reset: &str) -> RateLimits {
        RateLimits {
            limit_requests: Some(60),
            remaining_requests: Some(left),
            reset_requests: Some(reset.into()),
            ..RateLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn paces_the_remaining_allowance_over_the_window() {
        let g = Governor::new(4);
        let slot = g.acquire().await;
        drop(slot);
        g.on_success(&rl(10, "10s"), 0);
        let t0 = tokio::time::Instant::now();
        let a = g.acquire().await;
        let b = g.acquire().await;
        // One second between sends: 10 left over 10 s.
        assert!(t0.elapsed() >= Duration::from_millis(999), "{:?}", t0.elapsed());
        drop((a, b));
        g.on_success(&rl(0, "5s"), 0);
        let t1 = tokio::time::Instant::now();
        let _c = g.acquire().await;
        assert!(
            t1.elapsed() >= Duration::from_millis(4999),
            "nothing left: wait for the reset"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_down_halves_and_pauses_everyone() {
        let g = Governor::new(8);
        g.on_slow_down(Some(Duration::from_secs(3)), true);
        assert_eq!(g.limit(), 4);
        assert_eq!(g.rate_limited(), 1);
        let t0 = tokio::time::Instant::now();
        let _s = g.acquire().await;
        assert!(t0.elapsed() >= Duration::from_secs(3));
        for _ in 0..4 {
            g.on_success(&RateLimits::default(), 0);
        }
        assert_eq!(g.limit(), 5, "successes grow it back one at a time");
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_flight() {
        let g = Governor::new(2);
        let a = g.acquire().await;
        let _b = g.acquire().await;
        let g2 = Arc::clone(&g);
        let third = tokio::spawn(async move { g2.acquire().await });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!third.is_finished());
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .unwrap()
            .unwrap();
    }
}
