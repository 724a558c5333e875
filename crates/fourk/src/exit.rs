//! Exit codes, documented in the README. Scripts branch on these, so they never change meaning.

use std::process::ExitCode;

/// Why fourk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything worked and every image verified.
    Success = 0,
    /// A check failed: invalid size (`fourk size`), a file that does not verify, or a
    /// generated image that does not match the request (kept as `*.rejected.*`).
    CheckFailed = 1,
    /// Bad arguments or a request that breaks a model rule; nothing was sent.
    Usage = 2,
    /// The API rejected the request (4xx other than rate limits), or answered nonsense.
    Api = 3,
    /// No connection (nothing was sent) or the connection broke.
    Network = 4,
    /// No answer in time; the request may have been billed.
    Timeout = 5,
    /// Rate limited or out of quota.
    RateLimited = 6,
    /// A local file could not be read or written.
    Io = 7,
    /// Interrupted by Ctrl-C.
    Interrupted = 130,
    /// Stopped by SIGTERM.
    Terminated = 143,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}
