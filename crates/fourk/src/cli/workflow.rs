//! The flags of `fourk plan`, `fourk draft`, `fourk final` and `fourk deliver`, with the
//! parsers of their values.

use std::path::PathBuf;

use clap::Args;
use fourk_api::{OutputFormat, Quality, Size};

use super::{EndpointArgs, Route};

/// `fourk draft`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example: fourk draft \"a lighthouse at dusk\" -n 6 --size 4k\n         \
                  then: fourk final ID --native   (ID from the first column)"
)]
pub struct DraftArgs {
    /// What to draw.
    pub prompt: String,
    /// Drafts to make (1-10; one request on the Images API, one request each on the
    /// Responses API).
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub n: u32,
    /// The final's size; drafts keep its aspect ratio at about one megapixel (4k drafts at
    /// 1536x864).
    #[arg(long, short, default_value = "4k")]
    pub size: Size,
    /// Draft quality.
    #[arg(long, default_value = "low")]
    pub quality: Quality,
    /// The image model.
    #[arg(long, short, default_value = fourk_api::DEFAULT_MODEL)]
    pub model: String,
    /// Output format (default: from --out's extension, else png).
    #[arg(long)]
    pub format: Option<OutputFormat>,
    /// Base path of the drafts (`-1`, `-2`... are added); a folder gets the default name
    /// inside it. Default: fourk-draft-<UTC time>-<random>.png.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Replace files already at the output names. Without it, fourk refuses before anything
    /// is sent.
    #[arg(long)]
    pub force: bool,
    /// Skip the contact sheet.
    #[arg(long)]
    pub no_sheet: bool,
    /// The API to call; Responses API drafts are continued by `fourk final` with
    /// `previous_response_id`.
    #[arg(long, value_enum, default_value_t = Route::Images)]
    pub route: Route,
    /// Print a JSON summary (ids, paths, sheet, cost).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

/// `fourk final`.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk final 12 --upscale --quality high")]
pub struct FinalArgs {
    /// The approved draft: its ledger id (first column of `fourk draft`, or `fourk history`),
    /// or its file.
    pub draft: String,
    /// Re-render natively at the target size from the draft (the default).
    #[arg(long, conflicts_with = "upscale")]
    pub native: bool,
    /// Render a 2K master from the draft at final quality and upscale it locally.
    #[arg(long)]
    pub upscale: bool,
    /// Final quality.
    #[arg(long, default_value = "high")]
    pub quality: Quality,
    /// The final's size (default: the target the draft was made for).
    #[arg(long, short)]
    pub size: Option<Size>,
    /// The prompt (default: the draft's).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Where to save the final (a folder gets the default name inside it). Default:
    /// fourk-final-<UTC time>-<random>.<draft's format>.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Replace files already at the output names. Without it, fourk refuses before anything
    /// is sent.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary (draft, mode, steps with costs, shipped file).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

/// Dollars on the command line: a finite amount of zero or more.
///
/// # Errors
/// A message naming the rule.
pub(crate) fn parse_usd(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_start_matches('$');
    let v: f64 = t
        .parse()
        .map_err(|_| format!("'{s}' is not an amount of dollars; write it like 0.50"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("'{s}' must be a finite amount of 0 or more dollars"));
    }
    Ok(v)
}

/// Seconds on the command line: finite and above zero.
///
/// # Errors
/// A message naming the rule.
pub(crate) fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("'{s}' must be a finite number of seconds above 0"));
    }
    Ok(v)
}

/// `fourk plan`.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk plan --size 4k --quality high --variants 6 --budget 1.50")]
pub struct PlanArgs {
    /// The deliverable's size: WIDTHxHEIGHT or a preset (4k=3840x2160, 2k=2560x1440, ...).
    #[arg(long, short)]
    pub size: Size,
    /// The deliverable's quality.
    #[arg(long, default_value = "high")]
    pub quality: Quality,
    /// The image model.
    #[arg(long, short, default_value = fourk_api::DEFAULT_MODEL)]
    pub model: String,
    /// Variants to choose among (or prompt tests); 1 means one hero image.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub variants: u32,
    /// The image carries dense text or UI: approve a smaller master before the final.
    #[arg(long)]
    pub text_heavy: bool,
    /// The deliverable needs a transparent background.
    #[arg(long)]
    pub transparent: bool,
    /// Rule out routes predicted to cost more than this many dollars.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub budget: Option<f64>,
    /// Rule out routes predicted to take longer than this (median rendering time, approval
    /// not included).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub max_time: Option<f64>,
    /// Print the whole plan as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `fourk deliver`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example: fourk deliver \"a lighthouse at dusk\" --size 4k --max-cost 1.00 --timeout 420"
)]
pub struct DeliverArgs {
    /// What to draw.
    pub prompt: String,
    /// The deliverable's size.
    #[arg(long, short, default_value = "4k")]
    pub size: Size,
    /// Quality of the native attempt and of the fallback master.
    #[arg(long, default_value = "high")]
    pub quality: Quality,
    /// The image model.
    #[arg(long, short, default_value = fourk_api::DEFAULT_MODEL)]
    pub model: String,
    /// Refuse, before sending anything, when the predicted worst case (native attempt plus
    /// fallback master) costs more than this many dollars.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_cost: Option<f64>,
    /// Give the native attempt this many seconds, then fall back (it may still be billed).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// Output format (default: from --out's extension, else png).
    #[arg(long)]
    pub format: Option<OutputFormat>,
    /// Where to save the deliverable (a folder gets the default name inside it). Default:
    /// fourk-<UTC time>-<random>.png.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Replace files already at the output names. Without it, fourk refuses before anything
    /// is sent.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary: the shipped file, which path produced it, each step's cost.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
    /// Total time to wait for any one request, in seconds (the native attempt also stops at
    /// --timeout).
    #[arg(long, default_value_t = 600, value_name = "SECONDS", value_parser = super::parse_request_timeout)]
    pub request_timeout: u64,
    #[command(flatten)]
    pub delivery: super::DeliveryArgs,
}
