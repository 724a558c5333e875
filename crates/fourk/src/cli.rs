//! The raw command line (clap). Values with rules are parsed here into their types; the
//! commands turn these into validated requests before any work starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fourk_api::{Background, Moderation, OutputFormat, Quality, Size};

const SIZE_HELP: &str = "WIDTHxHEIGHT (edges multiples of 16), `auto`, or a preset: 4k=3840x2160, \
4k-portrait=2160x3840, 2k=2560x1440, 2k-portrait=1440x2560, square=2048x2048, or a standard size \
1024x1024, 1536x1024, 1024x1536";

/// Verified high-resolution images (up to 3840x2160) with OpenAI's GPT Image models.
///
/// Resolution comes from the `size` field, never from the prompt: "4K" in a prompt does
/// nothing. fourk checks the size before any money is spent, saves atomically, re-reads the
/// file and proves it matches the request, and records everything in a sidecar.
#[derive(Debug, Parser)]
#[command(name = "fourk", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// More logging on stderr (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// A models file that adds or replaces capability entries (same layout as `fourk models --toml`).
    #[arg(long, global = true, env = "FOURK_MODELS", value_name = "FILE")]
    pub models_file: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a size against a model's rules, offline. Exits 0 when valid, 1 when not.
    Size(SizeArgs),
    /// Generate images (POST /v1/images/generations), save atomically, verify, write sidecars.
    Generate(Box<GenerateArgs>),
    /// Verify image files: intact (full decode), and as expected. Exits 0 when all pass.
    Verify(VerifyArgs),
    /// Run the offline emulator of the OpenAI image endpoints on loopback.
    Emulator(EmulatorArgs),
    /// List the models fourk knows and what they accept.
    Models(ModelsArgs),
}

/// `fourk size`.
#[derive(Debug, Args)]
pub struct SizeArgs {
    /// The size to check.
    #[arg(help = SIZE_HELP)]
    pub size: String,
    /// The model whose rules apply.
    #[arg(long, short, default_value = fourk_api::DEFAULT_MODEL)]
    pub model: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `fourk generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to draw. Resolution comes from --size, not from words like "4K".
    pub prompt: String,
    /// The image model.
    #[arg(long, short, default_value = fourk_api::DEFAULT_MODEL)]
    pub model: String,
    /// Output size.
    #[arg(long, short, default_value = "4k", help = SIZE_HELP)]
    pub size: Size,
    /// Quality tier (not sent when omitted: the API's `auto` applies).
    #[arg(long)]
    pub quality: Option<Quality>,
    /// Output format (default: from --out's extension, else png).
    #[arg(long)]
    pub format: Option<OutputFormat>,
    /// output_compression 0-100 for jpeg and webp (100 = best quality).
    #[arg(long, value_name = "0-100")]
    pub compression: Option<u8>,
    /// Background: transparent (png/webp), opaque or auto.
    #[arg(long)]
    pub background: Option<Background>,
    /// Moderation strictness: low or auto.
    #[arg(long)]
    pub moderation: Option<Moderation>,
    /// Number of images (1-10); each is billed.
    #[arg(short, long)]
    pub n: Option<u8>,
    /// A hashed end-user id for abuse monitoring.
    #[arg(long, value_name = "ID")]
    pub safety_identifier: Option<String>,
    /// Where to save; with -n above 1, `-1`, `-2`... are added before the extension.
    /// Default: fourk-<time>.<ext> in the current folder.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Print a JSON summary (path, width, height, format, verified, sidecar, usage, cost).
    #[arg(long)]
    pub json: bool,
    /// Print the exact JSON body that would be sent, and stop: no key, no network.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

/// Where requests go.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Start the offline emulator in-process and send the request there (no key needed).
    #[arg(long, conflicts_with = "base_url")]
    pub emulator: bool,
    /// API base URL (default: $OPENAI_BASE_URL, else https://api.openai.com/v1).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Total time to wait for one request, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
}

/// `fourk verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Image files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Expected WIDTHxHEIGHT (presets accepted).
    #[arg(long, value_name = "SIZE")]
    pub expect: Option<Size>,
    /// Expected format.
    #[arg(long)]
    pub format: Option<OutputFormat>,
    /// Require an alpha channel with transparent pixels.
    #[arg(long)]
    pub alpha: bool,
    /// Print a JSON array of reports.
    #[arg(long)]
    pub json: bool,
}

/// `fourk emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port). Loopback by default.
    #[arg(long, default_value_t = fourk_emulator::DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Accept only this bearer key (by default any non-empty key is accepted).
    #[arg(long, value_name = "KEY", env = "FOURK_EMULATOR_KEY", hide_env_values = true)]
    pub require_key: Option<String>,
    /// Inject faults into image requests: comma-separated KIND:PROBABILITY with kinds 429,
    /// quota, 500, 503, reset, truncate, stall, wrong-size, corrupt (e.g. `500:0.1,reset:0.05`).
    #[arg(long, value_name = "KIND:P,...")]
    pub faults: Option<fourk_emulator::FaultSpec>,
    /// Seed the fault draw so the same requests meet the same faults (default: from the clock).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// How long a `stall` fault sends nothing, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub stall_ms: u64,
    /// Scale the simulated generation time (1.0 is about as slow as the real API; 0 answers at once).
    #[arg(long, value_name = "SCALE", default_value = "0")]
    pub latency: fourk_emulator::LatencyScale,
    /// Requests allowed per minute, enforced with 429 and honest x-ratelimit-* headers (default 500/min).
    #[arg(long, value_name = "N/min")]
    pub rate_limit: Option<fourk_emulator::PerMinute>,
    /// Answer every image request with the 403 organisation-verification error.
    #[arg(long)]
    pub fail_org_verification: bool,
    /// Reject prompts containing any of these words (case-insensitive) as a moderation block.
    #[arg(long, value_name = "WORD,...", value_delimiter = ',')]
    pub moderation_block_words: Vec<String>,
    /// Append one JSON line per request received to this file.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
}

/// `fourk models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print the whole table as TOML (a starting point for a models file).
    #[arg(long, conflicts_with = "json")]
    pub toml: bool,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}
