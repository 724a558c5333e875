//! Injected faults: what can go wrong between a client and the real API, on demand and
//! repeatably.
//!
//! A [`FaultSpec`] gives each [`FaultKind`] a probability. For every request to an image
//! route (`POST /v1/images/generations`, `/v1/images/edits`, `/v1/responses`), in the order
//! the requests arrive, the emulator draws from one PRNG: with `seed` set, the same sequence
//! of requests meets the same sequence of faults.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// `429` `rate_limit_exceeded`, with `retry-after`: retry later.
    RateLimit,
    /// `429` `insufficient_quota`: the account is out of credit; retrying does not help.
    Quota,
    /// `500` `server_error`.
    ServerError,
    /// `503` `server_is_overloaded`.
    Unavailable,
    /// The connection is closed before any byte of the answer.
    Reset,
    /// The status line, headers and part of the body are sent, then the connection is cut
    /// (JSON answers keep their full `content-length`; event streams stop mid-event).
    Truncate,
    /// No byte for the configured stall time, then the normal answer.
    Stall,
    /// A valid image of another size than the one asked for (half of each edge); the
    /// body still names the requested size.
    WrongSize,
    /// Broken image data: alternately base64 that does not decode, and valid base64 of
    /// the image's first half (a truncated file).
    Corrupt,
}

impl FaultKind {
    /// Every kind, in documentation order.
    pub const ALL: &'static [Self] = &[
        Self::RateLimit,
        Self::Quota,
        Self::ServerError,
        Self::Unavailable,
        Self::Reset,
        Self::Truncate,
        Self::Stall,
        Self::WrongSize,
        Self::Corrupt,
    ];

    /// The name used in `--faults` and in the request log.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RateLimit => "429",
            Self::Quota => "quota",
            Self::ServerError => "500",
            Self::Unavailable => "503",
            Self::Reset => "reset",
            Self::Truncate => "truncate",
            Self::Stall => "stall",
            Self::WrongSize => "wrong-size",
            Self::Corrupt => "corrupt",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| FaultSpecError::UnknownKind(s.to_owned()))
    }
}

/// Why a fault list does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultSpecError {
    /// Not one of the kinds.
    #[error(
        "unknown fault kind '{0}'; the kinds are 429, quota, 500, 503, reset, truncate, stall, wrong-size, corrupt"
    )]
    UnknownKind(String),
    /// An entry without `:probability`.
    #[error("fault '{0}' has no probability; write it as KIND:PROBABILITY, for example 500:0.1")]
    MissingProbability(String),
    /// The probability is not a number.
    #[error("the probability of fault '{kind}' is '{value}', which is not a number; use a value from 0 to 1")]
    NotANumber {
        /// The kind.
        kind: FaultKind,
        /// What was written.
        value: String,
    },
    /// The probability is outside 0-1.
    #[error("the probability of fault '{kind}' is {value}; it must be from 0 to 1")]
    OutOfRange {
        /// The kind.
        kind: FaultKind,
        /// The value.
        value: f64,
    },
    /// The same kind twice.
    #[error("fault '{0}' is listed twice; give each kind once")]
    Duplicate(FaultKind),
    /// The probabilities add up to more than 1.
    #[error("the fault probabilities add up to {0}, more than 1; lower some of them")]
    SumAboveOne(f64),
}

/// Which faults to inject, each with its probability per request, for example
/// `"429:0.1,reset:0.05"`. The default injects nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    entries: Vec<(FaultKind, f64)>,
}

impl FaultSpec {
    /// No faults.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Add `kind` with `probability` (0-1).
    ///
    /// # Errors
    /// A probability outside 0-1, a kind already present, or a total above 1.
    pub fn with(mut self, kind: FaultKind, probability: f64) -> Result<Self, FaultSpecError> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(FaultSpecError::OutOfRange {
                kind,
                value: probability,
            });
        }
        if self.entries.iter().any(|(k, _)| *k == kind) {
            return Err(FaultSpecError::Duplicate(kind));
        }
        let sum = self.entries.iter().map(|(_, p)| p).sum::<f64>() + probability;
        // A little slack for decimal fractions such as 0.1 + 0.2 + 0.7.
        if sum > 1.0 + 1e-9 {
            return Err(FaultSpecError::SumAboveOne(sum));
        }
        self.entries.push((kind, probability));
        Ok(self)
    }

    /// Every `(kind, probability)`, in the order given.
    #[must_use]
    pub fn entries(&self) -> &[(FaultKind, f64)] {
        &self.entries
    }

    /// True when nothing is injected.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(|(_, p)| *p <= 0.0)
    }

    /// The fault for a uniform draw `u` in [0, 1): the kinds take consecutive slices of the
    /// unit interval in the order given.
    fn pick(&self, u: f64) -> Option<FaultKind> {
        let mut edge = 0.0;
        for (kind, p) in &self.entries {
            edge += p;
            if u < edge {
                return Some(*kind);
            }
        }
        None
    }
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = Self::none();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kind, p) = entry
                .split_once(':')
                .ok_or_else(|| FaultSpecError::MissingProbability(entry.to_owned()))?;
            let kind: FaultKind = kind.parse()?;
            let p: f64 = p.trim().parse().map_err(|_| FaultSpecError::NotANumber {
                kind,
                value: p.trim().to_owned(),
            })?;
            spec = spec.with(kind, p)?;
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, p)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{kind}:{p}")?;
        }
        Ok(())
    }
}

/// A fault drawn for one request. `variant` is a second draw that picks between the forms a
/// fault can take (which corruption).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InjectedFault {
    pub(crate) kind: FaultKind,
    pub(crate) variant: u64,
}

/// The per-emulator draw: one SplitMix64 stream, two numbers per request.
#[derive(Debug)]
pub(crate) struct FaultDraw {
    spec: FaultSpec,
    state: Mutex<u64>,
}

impl FaultDraw {
    pub(crate) fn new(spec: FaultSpec, seed: u64) -> Self {
        Self {
            spec,
            state: Mutex::new(seed),
        }
    }

    /// The fault for the next request, if any. Both numbers are drawn under one lock, so
    /// concurrent requests take whole pairs and the sequence depends only on arrival order.
    pub(crate) fn next(&self) -> Option<InjectedFault> {
        if self.spec.is_empty() {
            return None;
        }
        let (a, b) = {
            // A poisoned lock only means a panic elsewhere; the state is a plain integer.
            let mut s = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (splitmix(&mut s), splitmix(&mut s))
        };
        // 53 random bits make a uniform double in [0, 1).
        #[allow(clippy::cast_precision_loss)]
        let u = (a >> 11) as f64 / (1u64 << 53) as f64;
        self.spec.pick(u).map(|kind| InjectedFault { kind, variant: b })
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An answer whose body fails before its first byte: hyper then closes the connection
/// without writing the status line, so the client sees the connection drop (an integration
/// test checks this from reqwest).
pub(crate) fn reset_response() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "injected fault: reset",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    response
}

/// Send the head and the first half of `response`'s body, then fail, which cuts the
/// connection. A JSON answer keeps the `content-length` of its whole body, so the client can
/// tell that bytes are missing; an event stream is chunked and ends without its terminator.
pub(crate) async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(error = %e, "body failed before it could be truncated");
            return reset_response();
        }
    };
    let event_stream = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if event_stream {
        parts.headers.remove(CONTENT_LENGTH);
    } else {
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    }
    let head = bytes.slice(..bytes.len() / 2);
    let stream = futures_util::stream::iter([
        Ok(head),
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "injected fault: truncate",
        )),
    ]);
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_each_mistake_has_its_message() {
        let s: FaultSpec = "429:0.1, reset:0.05,wrong-size:0.25".parse().unwrap();
        assert_eq!(
            s.entries(),
            &[
                (FaultKind::RateLimit, 0.1),
                (FaultKind::Reset, 0.05),
                (FaultKind::WrongSize, 0.25)
            ]
        );
        assert_eq!(s.to_string(), "429:0.1,reset:0.05,wrong-size:0.25");
        assert!("".parse::<FaultSpec>().unwrap().is_empty());
        let err = |t: &str| t.parse::<FaultSpec>().unwrap_err();
        assert!(matches!(err("teapot:0.1"), FaultSpecError::UnknownKind(_)));
        assert!(matches!(err("500"), FaultSpecError::MissingProbability(_)));
        assert!(matches!(err("500:often"), FaultSpecError::NotANumber { .. }));
        assert!(matches!(err("500:1.5"), FaultSpecError::OutOfRange { .. }));
        assert!(matches!(err("500:0.1,500:0.2"), FaultSpecError::Duplicate(_)));
        assert!(matches!(err("500:0.6,503:0.6"), FaultSpecError::SumAboveOne(_)));
        assert!(err("teapot:0.1").to_string().contains("wrong-size"));
    }

    #[test]
    fn the_draw_is_repeatable_and_follows_the_probabilities() {
        let spec: FaultSpec = "500:0.25,corrupt:0.25".parse().unwrap();
        let a = FaultDraw::new(spec.clone(), 7);
        let b = FaultDraw::new(spec.clone(), 7);
        let xs: Vec<_> = (0..200).map(|_| a.next()).collect();
        let ys: Vec<_> = (0..200).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        let c = FaultDraw::new(spec, 8);
        let zs: Vec<_> = (0..200).map(|_| c.next()).collect();
        assert_ne!(xs, zs);
        let count = |k| xs.iter().flatten().filter(|f| f.kind == k).count();
        for k in [FaultKind::ServerError, FaultKind::Corrupt] {
            assert!((25..=75).contains(&count(k)), "{k}: {}", count(k));
        }
        assert!(FaultDraw::new(FaultSpec::none(), 1).next().is_none());
    }
}
