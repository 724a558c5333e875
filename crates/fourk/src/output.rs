//! One place that writes to stdout (data only) and sets up logging on stderr.

use std::io::{self, IsTerminal as _, Write};

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
        // Colour only for a person at a terminal, and never with NO_COLOR set.
        .with_ansi(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
        .with_target(verbose >= 1)
        .without_time()
        .try_init();
}

/// Print the image summaries of a sending command (paths, or `--json`) and pick the exit
/// code: success when every image verified.
#[must_use]
pub fn report(images: &[fourk_core::save::ImageSummary], all_ok: bool, json: bool) -> crate::exit::Exit {
    let p = Printer;
    if json {
        if images.len() == 1 {
            p.json(&images[0]);
        } else {
            p.json(&images);
        }
    } else {
        for img in images {
            p.line(&img.path.display().to_string());
        }
        if let Some(first) = images.first() {
            let cost = first.cost.map_or(String::new(), |c| {
                format!(", ${:.3}{}", c.usd, if c.estimate { " (estimate)" } else { "" })
            });
            tracing::info!(
                "{} image(s), {}{cost}; sidecar {}",
                images.len(),
                if all_ok { "verified" } else { "NOT verified" },
                first.sidecar.display()
            );
        }
    }
    if all_ok {
        crate::exit::Exit::Success
    } else {
        crate::exit::Exit::CheckFailed
    }
}
