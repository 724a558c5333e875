//! The flags of `fourk batch`, `fourk history` and `fourk cost`, with the parsers of their
//! values.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use fourk_api::{OutputFormat, Quality, Size};

use super::EndpointArgs;

/// How the batch is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// Requests from this machine, as many at once as --concurrency and the rate limits allow.
    Local,
    /// OpenAI's Batch API: one upload, processed within 24 hours at batch prices.
    BatchApi,
}

/// `fourk batch`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "JOBS is JSONL (one object a line) or CSV (a header row). Keys: prompt (required), size, \
quality, format, name, model, images (reference images: the job becomes an edit; in CSV separate them \
with ';'), mask, background, compression, moderation, n, provider (openai, azure, gemini or compatible; a \
Gemini model goes to Gemini by itself).\n\nRun the same command again to resume: jobs \
that succeeded are never requested again; jobs cut off mid-request are held as possibly billed until \
--retry-ambiguous. Exit status: 0 when every job succeeded, 1 when any failed, was skipped or is held."
)]
pub struct BatchArgs {
    /// Later sessions of a `--via batch-api` job.
    #[command(subcommand)]
    pub action: Option<BatchAction>,
    /// The jobs file (.jsonl or .csv).
    #[arg(required = true, value_name = "JOBS")]
    pub jobs: Option<PathBuf>,
    /// Most requests in flight at once (lowered automatically on 429/503, raised again on success).
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Ceiling in USD for the whole batch, earlier runs included: no request starts that could
    /// pass it, counting requests in flight at their estimate.
    #[arg(long, value_name = "USD", value_parser = parse_ceiling)]
    pub max_cost: Option<f64>,
    /// Output folder (created if needed). Names come from each job's `name`, sanitised.
    #[arg(long, short, default_value = "fourk-batch", value_name = "DIR")]
    pub out: PathBuf,
    /// Let a new job replace a file already at its output name. Without it, fourk refuses
    /// before anything is sent; a job this batch finished earlier is never redone.
    #[arg(long)]
    pub force: bool,
    /// Print the final report as JSON on stdout (default: the saved paths, one a line).
    #[arg(long)]
    pub json: bool,
    /// The model for jobs that do not name one.
    #[arg(long, short, default_value = fourk_api::DEFAULT_MODEL)]
    pub model: String,
    /// The size for jobs that do not set one.
    #[arg(long, short, default_value = "4k")]
    pub size: Size,
    /// The quality for jobs that do not set one (not sent when omitted: `auto`, estimated as the model's highest quality).
    #[arg(long)]
    pub quality: Option<Quality>,
    /// The format for jobs that do not set one.
    #[arg(long, default_value = "png")]
    pub format: OutputFormat,
    /// How to send: from this machine, or through OpenAI's Batch API.
    #[arg(long, value_enum, default_value_t = Via::Local)]
    pub via: Via,
    /// With --via batch-api: seconds between status checks while the batch runs (the
    /// in-process --emulator is checked every 0.2 s).
    #[arg(long, default_value_t = 30.0, value_name = "SECS", value_parser = parse_secs)]
    pub poll: f64,
    /// With --via batch-api: return once the batch is created (its status on stdout); save
    /// the images later with `fourk batch collect ID`.
    #[arg(long)]
    pub no_wait: bool,
    /// No progress bars, even on a terminal (also FOURK_NO_PROGRESS=1 or NO_COLOR).
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

/// `fourk batch status|collect`.
#[derive(Debug, Subcommand)]
pub enum BatchAction {
    /// Show a Batch API job's progress.
    Status {
        /// The batch id (`batch_...`).
        id: String,
        /// Print the batch object as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Download, verify and save a finished Batch API job's images.
    Collect {
        /// The batch id (`batch_...`).
        id: String,
        /// Output folder.
        #[arg(long, short, default_value = "fourk-batch", value_name = "DIR")]
        out: PathBuf,
        /// Print the report as JSON on stdout (default: the saved paths, one a line).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
}

pub(crate) fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0 and 3600; write one such as 30"
        )),
    }
}

pub(crate) fn parse_ceiling(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_start_matches('$')
        .parse()
        .map_err(|_| format!("'{s}' is not an amount in USD; write a number such as 2.50"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("--max-cost must be more than 0 USD; got {s}"));
    }
    Ok(v)
}

/// `fourk cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Only usage recorded on or after this UTC date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM).
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    pub since: Option<String>,
    /// Group by model, quality, size or day.
    #[arg(long, value_enum)]
    pub by: Option<CostByArg>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--by`: how `fourk cost` groups (the core's [`CostBy`](fourk_core::ledger::CostBy)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostByArg {
    /// The image model.
    Model,
    /// The quality asked for.
    Quality,
    /// The size asked for.
    Size,
    /// The UTC day.
    Day,
}

/// `--since` (see [`fourk_core::ledger::parse_since`]).
pub(crate) fn parse_since(s: &str) -> Result<String, String> {
    fourk_core::ledger::parse_since(s)
}

/// `fourk history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Entries to show, newest first.
    #[arg(long, short = 'n', default_value_t = 20, value_name = "N")]
    pub limit: u32,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}
