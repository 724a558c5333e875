//! The raw command line (clap). Values with rules are parsed here into their types; the
//! commands turn these into validated requests before any work starts.

use std::net::SocketAddr;
use std::path::PathBuf;

pub mod ledger;
pub mod pipeline;
pub mod workflow;

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
    /// The most pixels any image fourk reads may declare (verify, the pipeline, edit inputs,
    /// sheet and compare cells): a count, or WIDTHxHEIGHT. A larger file is refused before
    /// it is decoded. Default 8192x8192 (64 megapixels).
    #[arg(long, global = true, env = "FOURK_MAX_PIXELS", value_name = "PIXELS", value_parser = parse_max_pixels)]
    pub max_pixels: Option<u64>,
    /// A models file that adds or replaces capability entries (same layout as `fourk models
    /// --toml`). Also accepted after the commands that use it.
    #[arg(long, env = "FOURK_MODELS", value_name = "FILE")]
    pub models_file: Option<PathBuf>,
    /// The run ledger (SQLite) where runs, images and costs are recorded
    /// (default: .fourk/ledger.db in the current folder). Also accepted after the commands
    /// that use it.
    #[arg(long, env = "FOURK_LEDGER", value_name = "PATH")]
    pub ledger: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands that read or write the run ledger (`--ledger`).
const USES_LEDGER: &[&str] = &[
    "generate", "edit", "replay", "history", "cost", "batch", "draft", "final", "deliver", "upscale", "fit",
    "convert", "cutout", "sheet", "compare",
];
/// The commands that consult the capability table (`--models-file`).
const USES_MODELS: &[&str] = &[
    "size", "generate", "edit", "replay", "emulator", "models", "batch", "plan", "draft", "final", "deliver",
];

/// `--ledger` or `--models-file` as a subcommand accepts it: from the command line only (the
/// environment variable is read once, at the top level), visible in the help of the
/// commands that use it.
fn store_arg(id: &'static str, used: bool) -> clap::Arg {
    let (long, value, help) = if id == "ledger" {
        (
            "ledger",
            "PATH",
            "The run ledger (SQLite) where runs, images and costs are recorded (default: \
             $FOURK_LEDGER, else .fourk/ledger.db in the current folder)",
        )
    } else {
        (
            "models-file",
            "FILE",
            "A models file that adds or replaces capability entries (same layout as `fourk \
             models --toml`; default: $FOURK_MODELS)",
        )
    };
    clap::Arg::new(id)
        .long(long)
        .value_name(value)
        .value_parser(clap::value_parser!(PathBuf))
        .help(help)
        .hide(!used)
}

/// Add `--ledger` and `--models-file` to `cmd` and every command under it, shown where
/// `top` (the top-level command's name) uses them.
fn with_store_args(cmd: clap::Command, top: &str) -> clap::Command {
    let cmd = cmd
        .arg(store_arg("ledger", USES_LEDGER.contains(&top)))
        .arg(store_arg("models_file", USES_MODELS.contains(&top)));
    let names: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_owned()).collect();
    names.iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, |sub| with_store_args(sub, top))
    })
}

/// The value of `id` given on the command line at the deepest level that has one.
fn deepest(m: &clap::ArgMatches, id: &str) -> Option<PathBuf> {
    let below = m.subcommand().and_then(|(_, sub)| deepest(sub, id));
    below.or_else(|| {
        m.try_get_one::<PathBuf>(id)
            .ok()
            .flatten()
            .filter(|_| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
            .cloned()
    })
}

/// `fourk --version`: the build's version and how current its capability table is.
fn version() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| {
        format!(
            "{} (capability table checked {})",
            env!("CARGO_PKG_VERSION"),
            fourk_api::NEWEST_CHECK
        )
    })
}

impl Cli {
    /// The command line's definition. `--ledger` and `--models-file` are accepted before
    /// the command (scripts pass them first) and after any command, as they always were;
    /// the help of a command lists them only when it uses them.
    #[must_use]
    pub fn definition() -> clap::Command {
        let mut cmd = <Self as clap::CommandFactory>::command().version(version());
        let names: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_owned()).collect();
        for name in &names {
            cmd = cmd.mut_subcommand(name, |sub| with_store_args(sub, name));
        }
        cmd
    }

    /// Parse `args` against [`Cli::definition`]: a value given after the command wins over
    /// one given before it, which wins over the environment.
    ///
    /// # Errors
    /// clap's error (usage, `--help`, `--version`).
    pub fn parse_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Self, clap::Error> {
        let matches = Self::definition().try_get_matches_from(args)?;
        let mut cli = <Self as clap::FromArgMatches>::from_arg_matches(&matches)?;
        if let Some((_, sub)) = matches.subcommand() {
            if let Some(l) = deepest(sub, "ledger") {
                cli.ledger = Some(l);
            }
            if let Some(m) = deepest(sub, "models_file") {
                cli.models_file = Some(m);
            }
        }
        Ok(cli)
    }
}

/// `--max-pixels`: a pixel count, or `WIDTHxHEIGHT`.
///
/// # Errors
/// A message naming the accepted forms.
pub(crate) fn parse_max_pixels(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid pixel budget '{s}': expected a pixel count (67108864) or WIDTHxHEIGHT (8192x8192)")
    };
    let n = match s.trim().split_once(['x', 'X']) {
        Some((w, h)) => {
            let w: u64 = w.trim().parse().map_err(|_| bad())?;
            let h: u64 = h.trim().parse().map_err(|_| bad())?;
            w.checked_mul(h).ok_or_else(bad)?
        }
        None => s.trim().parse().map_err(|_| bad())?,
    };
    if n == 0 {
        return Err(format!("{} (it must be at least 1)", bad()));
    }
    Ok(n)
}

/// A request timeout in whole seconds, at least 1: a zero timeout gives up on every request
/// before its answer can come, and a request that was sent may still be billed.
///
/// # Errors
/// A message naming the rule and a value that works.
pub(crate) fn parse_request_timeout(s: &str) -> Result<u64, String> {
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number of seconds; for example 600 (the default)"))?;
    if v == 0 {
        return Err(
            "0 would give up on every request before its answer comes (and a request that was sent may still be billed); give at least 1 second, for example 600 (the default)"
                .into(),
        );
    }
    Ok(v)
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a size against a model's rules, offline. Exits 0 when valid, 1 when not.
    Size(SizeArgs),
    /// Generate images (POST /v1/images/generations), save atomically, verify, write sidecars.
    Generate(Box<GenerateArgs>),
    /// Edit images (POST /v1/images/edits): same checks, saving and sidecars as generate.
    Edit(Box<EditArgs>),
    /// Send a request from a --log-payload folder again and print the answer's status.
    Replay(ReplayArgs),
    /// Verify image files: intact (full decode), and as expected. Exits 0 when all pass.
    Verify(VerifyArgs),
    /// Read image headers only: format, size, colour type, bit depth (no decode; see verify).
    Probe(ProbeArgs),
    /// Run the offline emulator of the OpenAI image endpoints on loopback.
    Emulator(EmulatorArgs),
    /// List the models fourk knows and what they accept.
    Models(ModelsArgs),
    /// Resample a picture to an exact size (4k, 2k, WxH): Lanczos3, alpha-correct, verified.
    Upscale(Box<pipeline::UpscaleArgs>),
    /// Make a picture exactly a size without distortion: cover (crop), contain (pad) or crop.
    Fit(Box<pipeline::FitArgs>),
    /// Re-encode as PNG, JPEG or WebP; provenance metadata carried where the format allows.
    Convert(Box<pipeline::ConvertArgs>),
    /// Remove a flat key-colour backdrop (or run an ONNX matting model), with a QA report.
    Cutout(Box<pipeline::CutoutArgs>),
    /// A labelled contact sheet of drafts or variants.
    Sheet(Box<pipeline::SheetArgs>),
    /// Two pictures side by side at 100%, with detail numbers (native vs upscale).
    Compare(Box<pipeline::CompareArgs>),
    /// What was made, newest first, from the run ledger.
    History(ledger::HistoryArgs),
    /// What it cost: recorded usage summed (estimates marked), optionally grouped.
    Cost(ledger::CostArgs),
    /// Many images from a JSONL or CSV file: bounded adaptive concurrency, a cost ceiling,
    /// resume after any crash, and a final report.
    Batch(Box<ledger::BatchArgs>),
    /// Compare the routes to a deliverable (native, drafts first, 2K master + upscale,
    /// transparency) with predicted tokens, dollars and time, offline; recommend one.
    Plan(Box<workflow::PlanArgs>),
    /// Cheap drafts with the target's aspect ratio, a contact sheet, ids in the ledger.
    Draft(Box<workflow::DraftArgs>),
    /// Turn an approved draft into the final: native re-render from it, or 2K master + upscale.
    Final(Box<workflow::FinalArgs>),
    /// One command to a verified deliverable: native attempt, and on failure, mismatch or
    /// timeout a 2K master + local upscale; records which path shipped and each step's cost.
    Deliver(Box<workflow::DeliverArgs>),
    /// Serve fourk to coding agents over MCP (stdio): verified files, paths and previews,
    /// never megabytes of base64; the same checks, ledger and messages as these commands.
    Mcp(Box<McpArgs>),
    /// Serve the local review page: gallery, make (size check, estimate, generate, draft),
    /// review drafts and make the final, each image with its sidecar, and cost.
    Studio(Box<StudioArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) to stdout.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to stdout, or write one page per command to a folder.
    Man(ManArgs),
}

/// `fourk studio`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example: fourk studio --emulator --open    (stdout's first line is the address to open, with its token)"
)]
pub struct StudioArgs {
    /// Where to listen. 127.0.0.1:0 picks a free port; a non-loopback address needs
    /// --allow-remote.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub addr: std::net::SocketAddr,
    /// Listen on a non-loopback --addr (anyone who can reach it and has the token can spend
    /// money and see your images).
    #[arg(long)]
    pub allow_remote: bool,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// A folder whose images may be shown (repeatable; default: the working folder). Images
    /// on record elsewhere are listed but never served.
    #[arg(long = "root", value_name = "DIR")]
    pub roots: Vec<PathBuf>,
    /// Where images made from the page go (default: fourk-out/ in the first root).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// The spending ceiling in US dollars for everything started from the page: each
    /// estimate, with those of work in flight, is checked before anything is sent.
    #[arg(long, value_name = "USD", value_parser = parse_max_cost)]
    pub max_cost: Option<f64>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

/// `fourk mcp`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (Claude Code): claude mcp add fourk -- fourk mcp --root ~/work/site --max-cost 5"
)]
pub struct McpArgs {
    /// A folder the agent may read from and write to (repeatable). Given, it wins over the
    /// client's MCP roots; absent, the client's roots apply, else the working folder.
    #[arg(long = "root", value_name = "DIR")]
    pub roots: Vec<PathBuf>,
    /// Where images go when a call names no `out` (default: fourk-out/ in the first root).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// This server process's spending ceiling in US dollars: every call's estimate, with the
    /// estimates of calls in flight, is checked against it before anything is sent.
    #[arg(long, value_name = "USD", value_parser = parse_max_cost)]
    pub max_cost: Option<f64>,
    /// Serve the streamable HTTP transport on this loopback address instead of stdio
    /// (127.0.0.1:0 picks a free port). stdout's first line is `mcp on URL`, the second the
    /// `Authorization: Bearer TOKEN` header clients must send (FOURK_MCP_TOKEN fixes the token).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

fn parse_max_cost(s: &str) -> Result<f64, String> {
    match s.trim().trim_start_matches('$').parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "invalid ceiling '{s}': expected US dollars, for example 5 or 0.50"
        )),
    }
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

/// The image options generate and edit share.
#[derive(Debug, Clone, Args)]
pub struct ImageOptionArgs {
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
}

impl ImageOptionArgs {
    /// The core's image options.
    #[must_use]
    pub fn spec(&self) -> fourk_core::spec::ImageOptions {
        fourk_core::spec::ImageOptions {
            quality: self.quality,
            format: self.format,
            compression: self.compression,
            background: self.background,
        }
    }
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
    #[command(flatten)]
    pub image: ImageOptionArgs,
    /// Moderation strictness: low or auto.
    #[arg(long)]
    pub moderation: Option<Moderation>,
    /// Number of images (1-10); each is billed.
    #[arg(short, long)]
    pub n: Option<u8>,
    /// A hashed end-user id for abuse monitoring.
    #[arg(long, value_name = "ID")]
    pub safety_identifier: Option<String>,
    /// Where to save; with -n above 1, `-1`, `-2`... are added before the extension. A folder
    /// (existing, or ending in /) gets the default name inside it; a name without an
    /// extension gets the format's. Default: fourk-<UTC time>-<random>.<ext> here.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Replace files already at the output names (the image, its sidecar, numbered and
    /// partial images). Without it, fourk refuses before anything is sent.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary (path, width, height, format, verified, sidecar, usage, cost).
    #[arg(long)]
    pub json: bool,
    /// Print the exact JSON body that would be sent, and stop: no key, no network.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub transparency: TransparentArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub route: RouteArgs,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

impl GenerateArgs {
    /// The core's generation spec.
    #[must_use]
    pub fn spec(&self) -> fourk_core::spec::GenerateSpec {
        fourk_core::spec::GenerateSpec {
            prompt: self.prompt.clone(),
            model: self.model.clone(),
            size: self.size,
            image: self.image.spec(),
            moderation: self.moderation,
            n: self.n,
            safety_identifier: self.safety_identifier.clone(),
            out: self.out.clone(),
            force: self.force,
            transparency: fourk_core::spec::Transparency {
                transparent: self.transparency.transparent,
                transparent_via: self.transparency.transparent_via.into(),
            },
            stream: self.stream.spec(),
            route: self.route.spec(),
            endpoint: self.endpoint.spec(),
        }
    }
}

/// How `--transparent` may get its transparency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransparentVia {
    /// Native where the model allows it, a chroma key when it does not or the check fails.
    Auto,
    /// Native only: fail when the model does not support it or the file has no transparency.
    Native,
    /// A chroma key only: generate on a flat key colour and cut it out locally.
    Key,
}

impl From<TransparentVia> for fourk_core::spec::TransparentVia {
    fn from(v: TransparentVia) -> Self {
        match v {
            TransparentVia::Auto => Self::Auto,
            TransparentVia::Native => Self::Native,
            TransparentVia::Key => Self::Key,
        }
    }
}

/// `--transparent` and how.
#[derive(Debug, Clone, Args)]
pub struct TransparentArgs {
    /// Deliver a transparent PNG (or WebP): natively where the model allows it, verified to
    /// have transparent pixels; otherwise, or when that fails, generated on a flat key colour
    /// and cut out locally. The decision is recorded in the sidecar (`transparency`).
    #[arg(long, conflicts_with = "background")]
    pub transparent: bool,
    /// With --transparent: auto (native, chroma key as the fallback), native (no fallback)
    /// or key (chroma key only).
    #[arg(long, value_enum, default_value_t = TransparentVia::Auto, requires = "transparent", value_name = "HOW")]
    pub transparent_via: TransparentVia,
}

/// `fourk edit`.
///
/// The last positional argument is the prompt; every one before it is an input image.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk edit room.png lamp.png \"put the lamp on the table\" --out room2.png")]
pub struct EditArgs {
    /// 1-16 input images (PNG, JPEG or WebP, each under 50 MB), then the prompt as the LAST
    /// argument: `fourk edit a.png b.png "put b on a"`.
    #[arg(required = true, num_args = 2.., value_name = "IMAGE... PROMPT")]
    pub inputs: Vec<String>,
    /// A PNG whose transparent pixels mark where to edit: under 4 MB, with an alpha channel,
    /// the same width and height as the first image. Checked before anything is sent.
    #[arg(long, value_name = "MASK.png")]
    pub mask: Option<PathBuf>,
    /// The image model.
    #[arg(long, short, default_value = fourk_api::DEFAULT_MODEL)]
    pub model: String,
    /// Output size.
    #[arg(long, short, default_value = "auto", help = SIZE_HELP)]
    pub size: Size,
    #[command(flatten)]
    pub image: ImageOptionArgs,
    /// Number of images (1-10); each is billed.
    #[arg(short, long)]
    pub n: Option<u8>,
    /// Where to save; with -n above 1, `-1`, `-2`... are added before the extension. A folder
    /// (existing, or ending in /) gets the default name inside it; a name without an
    /// extension gets the format's. Default: fourk-<UTC time>-<random>.<ext> here.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Replace files already at the output names (the image, its sidecar, numbered and
    /// partial images). Without it, fourk refuses before anything is sent.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary (path, width, height, format, verified, sidecar, usage, cost).
    #[arg(long)]
    pub json: bool,
    /// Print the multipart layout that would be sent (fields, parts, file names, MIME types,
    /// sizes, SHA-256; never the bytes), and stop: no key, no network.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub route: RouteArgs,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

impl EditArgs {
    /// The input image paths (every positional but the last).
    #[must_use]
    pub fn images(&self) -> &[String] {
        self.inputs.split_last().map_or(&[], |(_, rest)| rest)
    }

    /// The prompt (the last positional).
    #[must_use]
    pub fn prompt(&self) -> &str {
        self.inputs.last().map_or("", String::as_str)
    }

    /// The core's edit spec.
    #[must_use]
    pub fn spec(&self) -> fourk_core::spec::EditSpec {
        fourk_core::spec::EditSpec {
            images: self.images().iter().map(PathBuf::from).collect(),
            mask: self.mask.clone(),
            prompt: self.prompt().to_owned(),
            model: self.model.clone(),
            size: self.size,
            image: self.image.spec(),
            n: self.n,
            out: self.out.clone(),
            force: self.force,
            stream: self.stream.spec(),
            route: self.route.spec(),
            endpoint: self.endpoint.spec(),
        }
    }
}

/// Streaming: partial images while the final one renders.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Stream the answer (server-sent events), logging progress on stderr.
    #[arg(long)]
    pub stream: bool,
    /// Partial images to ask for while streaming (0-3); each costs 100 extra output tokens.
    #[arg(long, value_name = "0-3", requires = "stream", value_parser = clap::value_parser!(u8).range(0..=3))]
    pub partials: Option<u8>,
    /// Save each partial image as `<out stem>.partial-K.<ext>` (K from 0).
    #[arg(long, requires = "stream")]
    pub keep_partials: bool,
}

impl StreamArgs {
    /// The core's streaming spec.
    #[must_use]
    pub fn spec(&self) -> fourk_core::spec::StreamSpec {
        fourk_core::spec::StreamSpec {
            stream: self.stream,
            partials: self.partials,
            keep_partials: self.keep_partials,
        }
    }
}

/// Which API produces the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Route {
    /// The Image API: /v1/images/generations or /v1/images/edits.
    Images,
    /// The Responses API with the image_generation tool forced (one image per request).
    Responses,
}

impl From<Route> for fourk_core::route::Route {
    fn from(r: Route) -> Self {
        match r {
            Route::Images => Self::Images,
            Route::Responses => Self::Responses,
        }
    }
}

/// The route and its options.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The API to call.
    #[arg(long, value_enum, default_value_t = Route::Images)]
    pub route: Route,
    /// With --route responses: the mainline model that calls the image tool.
    #[arg(long, value_name = "MODEL", default_value = fourk_core::route::DEFAULT_RESPONSES_MODEL)]
    pub responses_model: String,
    /// With --route responses: continue from this response id (`response.response_id` in a
    /// sidecar), so the image can build on the earlier one.
    #[arg(long, value_name = "ID")]
    pub previous_response: Option<String>,
}

impl RouteArgs {
    /// The core's route value.
    #[must_use]
    pub fn spec(&self) -> fourk_core::route::RouteSpec {
        fourk_core::route::RouteSpec {
            route: self.route.into(),
            responses_model: self.responses_model.clone(),
            previous_response: self.previous_response.clone(),
        }
    }
}

/// `fourk replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A `*.request.json` file from --log-payload, or the folder (its newest request is sent).
    #[arg(value_name = "DIR_OR_FILE")]
    pub path: PathBuf,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

/// Where requests go.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Total time to wait for one request, in seconds (at least 1).
    #[arg(long, default_value_t = 600, value_name = "SECONDS", value_parser = parse_request_timeout)]
    pub timeout: u64,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Which endpoint: the in-process emulator or a base URL (shared by every sending command).
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Start the offline emulator in-process and send the request there (no key needed).
    #[arg(long, conflicts_with = "base_url")]
    pub emulator: bool,
    /// API base URL (default: $OPENAI_BASE_URL, else https://api.openai.com/v1); with
    /// --provider azure the resource URL (default: $AZURE_OPENAI_ENDPOINT), with gemini the
    /// API's root.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// Which provider and how to reach it (shared by every sending command).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Provider")]
pub struct ProviderArgs {
    /// openai, azure, gemini or compatible (default: $FOURK_PROVIDER, else the model's
    /// provider, else from the variables set: OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT,
    /// GEMINI_API_KEY).
    #[arg(long, value_name = "NAME", value_parser = parse_provider)]
    pub provider: Option<fourk_api::ProviderKind>,
    /// Azure OpenAI deployment name (default: the model id).
    #[arg(long, value_name = "NAME")]
    pub deployment: Option<String>,
    /// Azure OpenAI api-version: a dated one (2025-04-01-preview) uses the
    /// /openai/deployments/NAME/... URLs, none or v1 the /openai/v1/... API (default:
    /// $OPENAI_API_VERSION).
    #[arg(long, value_name = "VERSION")]
    pub api_version: Option<String>,
    /// Send this header with every request, NAME:VALUE; ${VAR} in VALUE is read from the
    /// environment (single-quote it so no secret sits in shell history). Repeatable. Values
    /// are redacted in every log and record.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// A path between the base URL and every endpoint (a gateway's own prefix).
    #[arg(long, value_name = "PATH")]
    pub path_prefix: Option<String>,
    /// A command that prints a bearer token (an Entra ID token for Azure OpenAI), run again
    /// every 5 minutes (default: $FOURK_TOKEN_COMMAND).
    #[arg(long, value_name = "COMMAND")]
    pub token_command: Option<String>,
}

fn parse_provider(s: &str) -> Result<fourk_api::ProviderKind, String> {
    s.parse()
        .map_err(|e: fourk_api::ProviderParseError| e.to_string())
}

impl ProviderArgs {
    /// The client's provider options.
    #[must_use]
    pub fn options(&self) -> fourk_client::ProviderOptions {
        fourk_client::ProviderOptions {
            kind: self.provider,
            deployment: self.deployment.clone(),
            api_version: self.api_version.clone(),
            headers: self.headers.clone(),
            path_prefix: self.path_prefix.clone(),
            token_command: self.token_command.clone(),
        }
    }
}

/// The payload log and the retry policy (shared by every sending command).
#[derive(Debug, Clone, Args)]
pub struct DeliveryArgs {
    /// Write every request and response (key redacted, images as separate files) to DIR;
    /// `fourk replay DIR` sends the newest one again.
    #[arg(long, value_name = "DIR")]
    pub log_payload: Option<PathBuf>,
    /// Retries of failures that cannot have produced an image (connect errors, 429, 5xx).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub retries: u32,
    /// Also retry failures after the request was sent (timeouts, resets); each such retry
    /// may be billed again.
    #[arg(long)]
    pub retry_ambiguous: bool,
}

impl ConnectArgs {
    /// The core's endpoint value with `timeout` and `delivery`.
    #[must_use]
    pub fn endpoint(
        &self,
        timeout: std::time::Duration,
        delivery: &DeliveryArgs,
    ) -> fourk_core::session::Endpoint {
        fourk_core::session::Endpoint {
            emulator: self.emulator,
            base_url: self.base_url.clone(),
            api_key: None,
            provider: self.provider.options(),
            timeout,
            log_payload: delivery.log_payload.clone(),
            retries: delivery.retries,
            retry_ambiguous: delivery.retry_ambiguous,
            shared_emulator: None,
        }
    }
}

impl EndpointArgs {
    /// The core's endpoint value.
    #[must_use]
    pub fn spec(&self) -> fourk_core::session::Endpoint {
        self.connect
            .endpoint(std::time::Duration::from_secs(self.timeout), &self.delivery)
    }
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

/// `fourk probe`.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk probe shots/*.png --json")]
pub struct ProbeArgs {
    /// Image files (PNG, JPEG, WebP; the format comes from the magic bytes, not the name).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print a JSON array, one object per file (an unreadable file has `error`).
    #[arg(long)]
    pub json: bool,
}

/// `fourk completions`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  fourk completions bash > ~/.local/share/bash-completion/completions/fourk
  fourk completions zsh > ~/.zfunc/_fourk      (with fpath+=(~/.zfunc) before compinit)
  fourk completions fish > ~/.config/fish/completions/fourk.fish
  fourk completions powershell >> $PROFILE")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `fourk man`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  fourk man | man -l -
  fourk man --out-dir ~/.local/share/man/man1    (fourk.1 and fourk-COMMAND.1 for each command)")]
pub struct ManArgs {
    /// Write fourk.1 and one fourk-COMMAND.1 per command into this folder (created if
    /// missing; existing pages of the same names are replaced) instead of printing fourk.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
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
    /// Drop a client that takes longer than this to send a request's headers (also closes
    /// idle keep-alive connections), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: u64,
    /// Answer 408 and close the connection when a request's whole body takes longer than
    /// this to arrive, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_ms: u64,
    /// Requests processed at once; more get 429 with retry-after (/health is not counted).
    #[arg(long, value_name = "N", default_value_t = fourk_emulator::DEFAULT_MAX_CONCURRENT_REQUESTS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_concurrent_requests: usize,
    /// An Azure OpenAI deployment name and the model it serves, NAME=MODEL (repeatable); a
    /// deployment named after a model id needs none.
    #[arg(long = "deployment", value_name = "NAME=MODEL", value_parser = parse_deployment)]
    pub deployments: Vec<(String, String)>,
}

fn parse_deployment(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, model)) if !name.trim().is_empty() && !model.trim().is_empty() => {
            Ok((name.trim().to_owned(), model.trim().to_owned()))
        }
        _ => Err(format!(
            "'{s}' is not NAME=MODEL; write e.g. --deployment img-eu=gpt-image-2"
        )),
    }
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
    /// List the entries whose facts were checked more than 90 days ago (or never) against
    /// their source; exits 1 when there are any. Never part of a normal run.
    #[arg(long, conflicts_with = "toml")]
    pub check: bool,
    /// The date `--check` counts from (default: today), YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "check", hide = true)]
    pub today: Option<String>,
}
