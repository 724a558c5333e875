//! Each tool's arguments, as JSON: the CLI's flags under the same names (`--dry-run` is
//! `dry_run`), with the same value types from fourk-api (their JSON Schemas derive from the
//! same types), plus what only a server needs (`background`, `preview`, `max_cost_usd`).
//! `crates/fourk/tests/mcp_params.rs` checks every tool's names against the CLI's flags.

use fourk_api::{Background, Moderation, OutputFormat, Quality, Size};
// The core's and the imaging crate's own option types: one definition, one schema.
pub use fourk_core::ledger::CostBy;
pub use fourk_core::spec::TransparentVia;
pub use fourk_imaging::{Filter, PngLevel};
use schemars::JsonSchema;
use serde::Deserialize;

fn default_model() -> String {
    fourk_api::DEFAULT_MODEL.to_owned()
}

fn default_4k() -> Size {
    Size::new(3840, 2160)
}

fn yes() -> bool {
    true
}

/// `background` on an image tool: `true` runs the call as a job (the answer is a job id at
/// once; `status` reports it), or the image's background (`transparent`, `opaque`, `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BackgroundArg {
    /// `true`: run as a background job; `false`: wait for the result.
    Job(bool),
    /// The image's background.
    Image(Background),
}

/// What every tool that makes files shares.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct Common {
    /// Return the exact request(s) and the estimate; send nothing, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Run as a background job: the answer is `{job: {id}}` at once, and `status` gives the
    /// same result this call would have returned. Use it for 4K renders (minutes).
    #[serde(default)]
    pub job: bool,
    /// Include one small preview (JPEG, long edge 512 px; a contact sheet for several images)
    /// in the result. Default true.
    #[serde(default)]
    pub preview: Option<bool>,
    /// Refuse before sending when this call's estimate is above this many US dollars.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
}

/// `check_size`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CheckSize {
    /// The size to check: WIDTHxHEIGHT, `auto` or a preset (4k, 2k, square, ...).
    pub size: String,
    /// The model whose rules apply.
    #[serde(default = "default_model")]
    pub model: String,
}

/// The API route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The Image API (/v1/images/generations, /v1/images/edits).
    #[default]
    Images,
    /// The Responses API with the image_generation tool (one image per request).
    Responses,
}

/// `generate`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Generate {
    /// What to draw. Resolution comes from `size`, never from words like "4K".
    pub prompt: String,
    /// The image model.
    #[serde(default = "default_model")]
    pub model: String,
    /// Output size (default 4k = 3840x2160).
    #[serde(default = "default_4k")]
    pub size: Size,
    /// Quality tier (not sent when omitted: the API's `auto` applies).
    #[serde(default)]
    pub quality: Option<Quality>,
    /// Output format (default: from `out`'s extension, else png).
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// output_compression 0-100 for jpeg and webp.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub compression: Option<u8>,
    /// `true`/`false`: run as a background job or not (see `job`); `transparent`, `opaque`
    /// or `auto`: the image's background.
    #[serde(default)]
    pub background: Option<BackgroundArg>,
    /// Moderation strictness: low or auto.
    #[serde(default)]
    pub moderation: Option<Moderation>,
    /// Number of images (1-10); each is billed.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub n: Option<u8>,
    /// A hashed end-user id for abuse monitoring.
    #[serde(default)]
    pub safety_identifier: Option<String>,
    /// Where to save: a name under the out dir, or an absolute path inside a root; a folder
    /// (ending in /) gets the default name inside it. Default: the out dir.
    #[serde(default)]
    pub out: Option<String>,
    /// Replace files already at the output names; otherwise the call is refused before
    /// anything is sent.
    #[serde(default)]
    pub force: bool,
    /// Deliver a transparent PNG or WebP by the best route.
    #[serde(default)]
    pub transparent: bool,
    /// How `transparent` gets its transparency.
    #[serde(default)]
    pub transparent_via: TransparentVia,
    /// Stream the answer; partial images arrive as progress.
    #[serde(default)]
    pub stream: bool,
    /// Partial images to ask for while streaming (0-3; each costs extra output tokens).
    #[serde(default)]
    #[schemars(range(max = 3))]
    pub partials: Option<u8>,
    /// Save each partial image beside the output.
    #[serde(default)]
    pub keep_partials: bool,
    /// The Image API or the Responses API.
    #[serde(default)]
    pub route: Route,
    /// With route responses: the mainline model that calls the image tool.
    #[serde(default)]
    pub responses_model: Option<String>,
    /// With route responses: continue from this response id.
    #[serde(default)]
    pub previous_response: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `edit`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Edit {
    /// 1-16 input images (PNG, JPEG or WebP), paths inside a root.
    #[schemars(length(min = 1, max = 16))]
    pub images: Vec<String>,
    /// A PNG as large as the first image whose transparent pixels mark where to edit.
    #[serde(default)]
    pub mask: Option<String>,
    /// What to change.
    pub prompt: String,
    /// The image model.
    #[serde(default = "default_model")]
    pub model: String,
    /// Output size (default: auto, not sent).
    #[serde(default)]
    pub size: Option<Size>,
    /// Quality tier.
    #[serde(default)]
    pub quality: Option<Quality>,
    /// Output format.
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// output_compression 0-100 for jpeg and webp.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub compression: Option<u8>,
    /// `true`/`false`: run as a background job or not; or the image's background.
    #[serde(default)]
    pub background: Option<BackgroundArg>,
    /// Number of images (1-10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub n: Option<u8>,
    /// Where to save (see `generate`).
    #[serde(default)]
    pub out: Option<String>,
    /// Replace files already at the output names.
    #[serde(default)]
    pub force: bool,
    /// Stream the answer.
    #[serde(default)]
    pub stream: bool,
    /// Partial images while streaming (0-3).
    #[serde(default)]
    #[schemars(range(max = 3))]
    pub partials: Option<u8>,
    /// Save each partial image.
    #[serde(default)]
    pub keep_partials: bool,
    /// The Image API or the Responses API.
    #[serde(default)]
    pub route: Route,
    /// With route responses: the mainline model.
    #[serde(default)]
    pub responses_model: Option<String>,
    /// With route responses: continue from this response id.
    #[serde(default)]
    pub previous_response: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `draft`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Draft {
    /// What to draw.
    pub prompt: String,
    /// How many drafts (1-10).
    #[serde(default = "four")]
    #[schemars(range(min = 1, max = 10))]
    pub n: u32,
    /// The final's size; drafts are about 1 MP at its aspect ratio.
    #[serde(default = "default_4k")]
    pub size: Size,
    /// Draft quality (default low: drafts are for choosing).
    #[serde(default = "low")]
    pub quality: Quality,
    /// The image model.
    #[serde(default = "default_model")]
    pub model: String,
    /// Output format.
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// Where to save (numbered -1, -2...); default: the out dir.
    #[serde(default)]
    pub out: Option<String>,
    /// Replace files already at the output names.
    #[serde(default)]
    pub force: bool,
    /// Skip the contact sheet.
    #[serde(default)]
    pub no_sheet: bool,
    /// The Image API (one request for all drafts) or the Responses API (one per draft,
    /// continuable in `final`).
    #[serde(default)]
    pub route: Route,
    /// `true`: run as a background job.
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

fn four() -> u32 {
    4
}

fn low() -> Quality {
    Quality::Low
}

fn high() -> Quality {
    Quality::High
}

/// How `final` renders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FinalMode {
    /// Render the final size natively from the draft.
    #[default]
    Native,
    /// Render the largest non-experimental master and upscale it locally to the exact size.
    Upscale,
}

/// `final`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Final {
    /// The approved draft: its ledger id (from `draft` or `history`) or its path.
    pub draft: String,
    /// native, or upscale (a master and a local upscale).
    #[serde(default)]
    pub mode: FinalMode,
    /// The final's quality.
    #[serde(default = "high")]
    pub quality: Quality,
    /// The final's size (default: the size the draft was made for).
    #[serde(default)]
    pub size: Option<Size>,
    /// A new prompt (default: the draft's).
    #[serde(default)]
    pub prompt: Option<String>,
    /// Where to save.
    #[serde(default)]
    pub out: Option<String>,
    /// Replace files already at the output names.
    #[serde(default)]
    pub force: bool,
    /// `true`: run as a background job.
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `deliver`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Deliver {
    /// What to draw.
    pub prompt: String,
    /// The deliverable's exact size.
    #[serde(default = "default_4k")]
    pub size: Size,
    /// Quality.
    #[serde(default = "high")]
    pub quality: Quality,
    /// The image model.
    #[serde(default = "default_model")]
    pub model: String,
    /// Refuse before sending when the predicted worst case (native + fallback master) is
    /// above this many dollars.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    /// Give the native attempt this many seconds before falling back.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Output format.
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// Where to save.
    #[serde(default)]
    pub out: Option<String>,
    /// Replace files already at the output names.
    #[serde(default)]
    pub force: bool,
    /// `true`: run as a background job.
    #[serde(default)]
    pub background: Option<bool>,
    /// Return the requests and the estimate; send nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Run as a background job.
    #[serde(default)]
    pub job: bool,
    /// Include a small preview.
    #[serde(default)]
    pub preview: Option<bool>,
}

/// How a batch is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Requests from this machine, as many at once as `concurrency` and the rate limits allow.
    #[default]
    Local,
    /// OpenAI's Batch API: one upload, processed within 24 hours at batch prices (half).
    BatchApi,
}

/// A later call about a Batch API batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchAction {
    /// The batch's status and counts.
    Status,
    /// Download, verify and save a finished batch's images into `out`.
    Collect,
}

/// `batch`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Batch {
    /// The jobs file (JSONL or CSV) inside a root: one job per line with `prompt` and
    /// optionally `name`, `size`, `quality`, `format`, `model`. Required unless `action`.
    #[serde(default)]
    pub jobs: Option<String>,
    /// `local` (default) or `batch-api` (OpenAI's Batch API: half price, within 24 hours).
    #[serde(default)]
    pub via: Via,
    /// With `via: batch-api`: seconds between status checks while waiting (default 30).
    #[serde(default)]
    #[schemars(range(min = 0.1, max = 3600.0))]
    pub poll: Option<f64>,
    /// With `via: batch-api`: return once the batch is created, with its id; follow it with
    /// `action: status` and save it with `action: collect`.
    #[serde(default)]
    pub no_wait: bool,
    /// `status` or `collect` a Batch API batch named by `batch_id` (then `jobs` is not used).
    #[serde(default)]
    pub action: Option<BatchAction>,
    /// The Batch API batch (`batch_...`) for `action`.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// Most requests in flight (1-64).
    #[serde(default = "four_u8")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: u8,
    /// Ceiling for the whole batch in US dollars (earlier runs of it included).
    #[serde(default)]
    pub max_cost: Option<f64>,
    /// The output folder (default: the out dir).
    #[serde(default)]
    pub out: Option<String>,
    /// Replace files already at a new job's output names.
    #[serde(default)]
    pub force: bool,
    /// Default model of jobs that do not say.
    #[serde(default = "default_model")]
    pub model: String,
    /// Default size of jobs that do not say.
    #[serde(default = "default_4k")]
    pub size: Size,
    /// Default quality.
    #[serde(default)]
    pub quality: Option<Quality>,
    /// Default format.
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// `true`: run as a background job.
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

fn four_u8() -> u8 {
    4
}

/// `status`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Status {
    /// The job id a background call returned; omit to list this server's jobs.
    #[serde(default)]
    pub job: Option<String>,
    /// Include a preview when the job is done.
    #[serde(default)]
    pub preview: Option<bool>,
}

/// The output encoding the pipeline tools share.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct Encode {
    /// Output format (default: from `out`'s extension, else the input's).
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// 0-100: JPEG or lossy WebP quality.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub quality: Option<u8>,
    /// PNG effort: fast, default or best.
    #[serde(default)]
    pub png_level: Option<PngLevel>,
    /// Lossless WebP effort, 0 (fastest) to 9 (smallest), as `cwebp -z` (default 2).
    #[serde(default)]
    #[schemars(range(max = 9))]
    pub webp_effort: Option<u8>,
    /// Lossless WebP.
    #[serde(default)]
    pub lossless: bool,
    /// Composite transparent pixels onto this colour (#RRGGBB) first.
    #[serde(default)]
    pub flatten: Option<String>,
    /// PNG text entries, KEY=VALUE each.
    #[serde(default)]
    pub meta: Vec<String>,
    /// Replace a file already at the output's name.
    #[serde(default)]
    pub force: bool,
    /// Include a small preview of the output. Default true.
    #[serde(default)]
    pub preview: Option<bool>,
}

/// `upscale`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Upscale {
    /// The picture (inside a root).
    pub input: String,
    /// The exact output size (WxH or a preset such as 4k).
    pub to: Size,
    /// Where to write (default: the out dir).
    #[serde(default)]
    pub out: Option<String>,
    /// The resampling filter.
    #[serde(default)]
    pub filter: Filter,
    /// Unsharp-mask strength after resampling, 0-4.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 4.0))]
    pub sharpen: Option<f32>,
    /// Allow a change of aspect ratio.
    #[serde(default)]
    pub stretch: bool,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub encode: Encode,
}

/// How `fit` fills the frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FitMode {
    /// Scale to cover the frame, crop the rest.
    #[default]
    Cover,
    /// Scale to fit inside, pad the rest.
    Contain,
    /// Crop to the frame without scaling, pad if smaller.
    Crop,
}

/// `fit`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Fit {
    /// The picture.
    pub input: String,
    /// The exact frame.
    pub to: Size,
    /// cover, contain or crop.
    #[serde(default)]
    pub mode: FitMode,
    /// What to keep or where to sit: center, top, bottom, left, right, or x,y fractions.
    #[serde(default)]
    pub gravity: Option<String>,
    /// Padding for contain and crop: transparent or #RRGGBB.
    #[serde(default)]
    pub pad: Option<String>,
    /// Where to write.
    #[serde(default)]
    pub out: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub encode: Encode,
}

/// `convert`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Convert {
    /// The picture.
    pub input: String,
    /// Where to write; the format follows the extension unless `format` says otherwise.
    #[serde(default)]
    pub out: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub encode: Encode,
}

/// `cutout`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Cutout {
    /// The picture, generated on a flat key colour.
    pub input: String,
    /// Where to write: PNG or WebP.
    #[serde(default)]
    pub out: Option<String>,
    /// The key colour: auto (from the border) or #RRGGBB.
    #[serde(default)]
    pub key: Option<String>,
    /// Colour distance up to which pixels become fully transparent.
    #[serde(default)]
    pub tolerance: Option<f32>,
    /// Width of the soft ramp beyond the tolerance.
    #[serde(default)]
    pub feather: Option<f32>,
    /// A user ONNX matting model (inside a root) instead of the chroma key.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub encode: Encode,
}

/// `sheet`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Sheet {
    /// The pictures, in sheet order.
    #[schemars(length(min = 1))]
    pub images: Vec<String>,
    /// Where to write the sheet.
    #[serde(default)]
    pub out: Option<String>,
    /// Pictures per row (1-64).
    #[serde(default)]
    #[schemars(range(min = 1, max = 64))]
    pub columns: Option<u32>,
    /// Label each picture.
    #[serde(default = "yes")]
    pub labels: bool,
    /// Edge of each cell in pixels (64-4096).
    #[serde(default)]
    #[schemars(range(min = 64, max = 4096))]
    pub cell: Option<u32>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub encode: Encode,
}

/// `compare`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Compare {
    /// The reference picture (for example the native 4K render).
    pub a: String,
    /// The picture compared with it.
    pub b: String,
    /// Where to write the side-by-side picture.
    #[serde(default)]
    pub out: Option<String>,
    /// The region compared: x,y,width,height (default a 1024x1024 square from the centre).
    #[serde(default)]
    pub crop: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub encode: Encode,
}

/// `verify`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Verify {
    /// The files to check (inside a root).
    #[schemars(length(min = 1))]
    pub paths: Vec<String>,
    /// Expected size, WxH or a preset.
    #[serde(default)]
    pub expect: Option<Size>,
    /// Expected format.
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// Require an alpha channel.
    #[serde(default)]
    pub alpha: bool,
}

/// `plan`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Plan {
    /// The deliverable's size.
    #[serde(default = "default_4k")]
    pub size: Size,
    /// Quality.
    #[serde(default = "high")]
    pub quality: Quality,
    /// The image model.
    #[serde(default = "default_model")]
    pub model: String,
    /// How many variants are wanted.
    #[serde(default = "one")]
    pub variants: u32,
    /// Dense text in the image.
    #[serde(default)]
    pub text_heavy: bool,
    /// A transparent result.
    #[serde(default)]
    pub transparent: bool,
    /// Budget in US dollars.
    #[serde(default)]
    pub budget: Option<f64>,
    /// Longest acceptable time in seconds.
    #[serde(default)]
    pub max_time: Option<f64>,
}

fn one() -> u32 {
    1
}

/// `history`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct History {
    /// Rows per page (1-200).
    #[serde(default = "twenty")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
    /// Rows to skip (the `next_offset` of the previous page).
    #[serde(default)]
    pub offset: u32,
}

fn twenty() -> u32 {
    20
}

/// `cost`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Cost {
    /// Only usage since this UTC date or time (YYYY-MM-DD or YYYY-MM-DD HH:MM).
    #[serde(default)]
    pub since: Option<String>,
    /// Group by model, quality, size or day.
    #[serde(default)]
    pub by: Option<CostBy>,
    /// Groups per page (1-200).
    #[serde(default = "fifty")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
    /// Groups to skip.
    #[serde(default)]
    pub offset: u32,
}

fn fifty() -> u32 {
    50
}
