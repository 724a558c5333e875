//! The words of rate limiting, shared by the limiter ([`crate::ratelimit`]) and the error
//! messages it leads to ([`crate::error`]): the three counters and how the API writes a reset.

use std::time::Duration;

/// One of the three counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// Requests.
    Requests,
    /// Tokens.
    Tokens,
    /// Images.
    Images,
}

impl Limit {
    /// The word used in header names and in the error `type`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::Images => "images",
        }
    }

    pub(crate) fn abbreviation(self) -> &'static str {
        match self {
            Self::Requests => "RPM",
            Self::Tokens => "TPM",
            Self::Images => "IPM",
        }
    }
}

/// A duration the way the API writes resets: `12ms`, `1.5s`, `6m0s`.
#[must_use]
pub(crate) fn format_reset(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_owned()
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}s")
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_are_written_like_the_api() {
        assert_eq!(format_reset(Duration::from_millis(12)), "12ms");
        assert_eq!(format_reset(Duration::from_millis(1000)), "1s");
        assert_eq!(format_reset(Duration::from_millis(17_280)), "17.28s");
        assert_eq!(format_reset(Duration::from_secs(60)), "1m0s");
        assert_eq!(format_reset(Duration::ZERO), "0s");
    }
}
