//! One place that writes to stdout (data only) and sets up logging on stderr.

use std::io::{self, Write};

/// Writes data to stdout. A closed pipe (`fourk size ... | head`) is not an error.
#[derive(Debug, Default)]
pub struct Printer;

impl Printer {
    /// Write one line of data.
    pub fn line(&self, s: &str) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{s}").and_then(|()| out.flush());
    }

    /// Write a JSON value, pretty-printed, as one document.
    pub fn json<T: serde::Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => self.line(&s),
            Err(e) => tracing::error!("cannot serialise output: {e}"),
        }
    }
}

/// Log to stderr: warnings and info by default, `-v` debug, `-vv` trace, `-q` errors only.
/// `RUST_LOG` overrides.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let default = if verbose >= 2 {
        level.to_owned()
    } else {
        format!("warn,fourk={level},fourk_client={level},fourk_emulator={level},fourk_imaging={level}")
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(verbose >= 1)
        .without_time()
        .try_init();
}
