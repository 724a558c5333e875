//! Large image jobs through OpenAI's Batch API: submit many requests as one JSONL file, let
//! the API run them within 24 hours at half price, then collect, verify and save every image.
//!
//! - [`submit`] checks every request against the capability table, builds the JSONL, uploads
//!   it (`/files`, purpose `batch`), creates the batch (`/batches`) and keeps a manifest
//!   (custom id -> output path and request) in the work folder. A batch runs one endpoint:
//!   its jobs are all generations (`/v1/images/generations`) or all edits
//!   (`/v1/images/edits`, JSON bodies whose images are inline data URLs or uploaded file ids;
//!   see [`BatchRequest`]).
//! - [`status`] and [`wait`] read the batch; [`wait`] polls until it is final, reporting each
//!   change through the event callback.
//! - [`collect`] downloads the output and error files to disk in chunks, reads them line by
//!   line (a 4K image is ~15 MB of base64 on one line; the files can be gigabytes), and saves
//!   each image atomically with verification and a sidecar, costed at Batch API prices. It
//!   can run in a later session: the manifest is found under the output folder, and without
//!   one the requests are read back from the batch's input file. An edit's sidecar records
//!   its body with every data URL summarised (never the base64) and its inline inputs
//!   (size, SHA-256, dimensions), as a multipart edit's does.
//! - [`run`] is all three.
//!
//! The driver never prints: progress is [`BatchEvent`]s for the caller to draw.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use fourk_api::batch::{
    Batch, BatchInputLine, BatchOutputLine, BatchStatus, CreateBatchRequest, ENDPOINT_EDITS,
    ENDPOINT_GENERATIONS, MAX_INPUT_BYTES, MAX_REQUESTS, RequestCounts, batch_prices,
};
use fourk_api::{
    Background, Capabilities, EditJsonBody, ErrorEnvelope, ImageRequest, ImageSource, ImagesResponseRef,
    ModelCaps, OutputFormat, Size, Usage, Violation, Warning,
};
use fourk_client::{Client, RateLimits};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::UsageError;
use crate::save::{self as deliver, Delivery, ImageSummary};
use crate::sidecar::{self, InputRecord, ResponseMeta, SentRequest};

/// Layout version of the manifest. 2: a job's `request` may be an edit (its JSON body with
/// data URLs summarised) with the `inputs` it sent; version 1 manifests (generations only)
/// read the same.
const MANIFEST_VERSION: u32 = 2;
/// Where manifests and downloaded result files live under an output folder.
pub const WORK_DIR_NAME: &str = ".fourk-batch";
/// Download attempts per result file (reads are safe to repeat).
const DOWNLOAD_ATTEMPTS: u32 = 3;

/// One request of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchJob {
    /// Unique in the batch: the caller's stable job id. Results carry it back.
    pub custom_id: String,
    /// The request (`stream` must be unset). Every job of one batch is the same kind.
    pub request: BatchRequest,
    /// Where the image goes; the format's extension is added when it has none, and `n > 1`
    /// numbers the files (`hero-1.png`, ...).
    pub output: PathBuf,
}

impl BatchJob {
    /// A generation job.
    #[must_use]
    pub fn generate(custom_id: impl Into<String>, request: ImageRequest, output: impl Into<PathBuf>) -> Self {
        Self {
            custom_id: custom_id.into(),
            request: BatchRequest::Generate(request),
            output: output.into(),
        }
    }

    /// An edit job: build the body with [`EditJsonBody::from_edit`] to send the input images
    /// inline.
    #[must_use]
    pub fn edit(custom_id: impl Into<String>, request: EditJsonBody, output: impl Into<PathBuf>) -> Self {
        Self {
            custom_id: custom_id.into(),
            request: BatchRequest::Edit(request),
            output: output.into(),
        }
    }
}

/// What one job asks for. A batch runs one endpoint, so [`submit`] refuses jobs of both kinds
/// in one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchRequest {
    /// `POST /v1/images/generations`.
    Generate(ImageRequest),
    /// `POST /v1/images/edits` as JSON: the images are data URLs (which make input lines
    /// large: the whole input file may be at most 200 MB) or ids of uploaded files.
    Edit(EditJsonBody),
}

impl From<ImageRequest> for BatchRequest {
    fn from(r: ImageRequest) -> Self {
        Self::Generate(r)
    }
}

impl From<EditJsonBody> for BatchRequest {
    fn from(r: EditJsonBody) -> Self {
        Self::Edit(r)
    }
}

impl BatchRequest {
    /// The Batch API endpoint this request goes to.
    #[must_use]
    pub fn endpoint(&self) -> &'static str {
        match self {
            Self::Generate(_) => ENDPOINT_GENERATIONS,
            Self::Edit(_) => ENDPOINT_EDITS,
        }
    }

    /// The image model.
    #[must_use]
    pub fn model(&self) -> &str {
        match self {
            Self::Generate(r) => &r.model,
            Self::Edit(r) => &r.edit.model,
        }
    }

    /// Check the request against the capability table (for an edit, its image references too).
    ///
    /// # Errors
    /// Every broken rule.
    pub fn validate<'c>(
        &self,
        caps: &'c Capabilities,
    ) -> Result<(&'c ModelCaps, Vec<Warning>), Vec<Violation>> {
        match self {
            Self::Generate(r) => r.validate(caps),
            Self::Edit(r) => r.validate(caps),
        }
    }

    fn stream(&self) -> bool {
        match self {
            Self::Generate(r) => r.stream == Some(true),
            Self::Edit(r) => r.edit.stream == Some(true),
        }
    }

    fn size(&self) -> Option<Size> {
        match self {
            Self::Generate(r) => r.size,
            Self::Edit(r) => r.edit.size,
        }
    }

    fn effective_format(&self) -> OutputFormat {
        match self {
            Self::Generate(r) => r.effective_format(),
            Self::Edit(r) => r.effective_format(),
        }
    }

    fn background(&self) -> Option<Background> {
        match self {
            Self::Generate(r) => r.background,
            Self::Edit(r) => r.edit.background,
        }
    }

    /// As the manifest keeps it: an edit's data URLs summarised.
    fn summarised(&self) -> Self {
        match self {
            Self::Generate(r) => Self::Generate(r.clone()),
            Self::Edit(r) => Self::Edit(r.summarised()),
        }
    }
}

/// Options of [`submit`].
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Sent as the batch's metadata (at most 16 pairs).
    pub metadata: BTreeMap<String, String>,
    /// Where the manifest is written. Use `<out_dir>/.fourk-batch` (see [`work_dir`]) so
    /// [`collect`] finds it.
    pub work_dir: PathBuf,
}

impl SubmitOptions {
    /// Options with no metadata and this work folder.
    #[must_use]
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Self {
            metadata: BTreeMap::new(),
            work_dir: work_dir.into(),
        }
    }
}

/// The work folder for an output folder: `<out_dir>/.fourk-batch`.
#[must_use]
pub fn work_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(WORK_DIR_NAME)
}

/// Progress, for the caller to draw (bars on a terminal, plain lines otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BatchEvent {
    /// The input file is uploaded.
    Uploaded {
        /// Its id.
        file_id: String,
        /// Its size.
        bytes: u64,
        /// Requests in it.
        requests: usize,
    },
    /// The batch exists.
    Created {
        /// Its id: keep it for `status` and `collect`.
        batch_id: String,
    },
    /// The batch's status or counts changed.
    Status {
        /// The batch.
        batch_id: String,
        /// Its status.
        status: BatchStatus,
        /// Its counts.
        counts: RequestCounts,
    },
    /// A result file is being downloaded.
    Downloading {
        /// The file.
        file_id: String,
        /// `output` or `error`.
        kind: &'static str,
    },
    /// A result file is on disk.
    Downloaded {
        /// The file.
        file_id: String,
        /// `output` or `error`.
        kind: &'static str,
        /// Its size.
        bytes: u64,
    },
    /// A job's images are saved.
    Saved {
        /// The job.
        custom_id: String,
        /// The first image.
        path: PathBuf,
        /// Whether every image verified.
        verified: bool,
    },
    /// A job failed.
    Failed {
        /// The job.
        custom_id: String,
        /// Why.
        message: String,
    },
}

impl BatchEvent {
    /// Whether it is bad news (a failed job, an image that did not verify): doors show it
    /// as a warning.
    #[must_use]
    pub const fn is_warning(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Saved { verified: false, .. })
    }
}

/// The event as one line, the same in every door (the CLI's stderr, the MCP server's
/// progress and job log).
impl std::fmt::Display for BatchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uploaded {
                file_id,
                bytes,
                requests,
            } => write!(f, "uploaded {requests} request(s) as {file_id} ({bytes} bytes)"),
            Self::Created { batch_id } => write!(f, "batch {batch_id} created"),
            Self::Status {
                batch_id,
                status,
                counts,
            } => write!(
                f,
                "batch {batch_id}: {status}, {} of {} done, {} failed",
                counts.completed + counts.failed,
                counts.total,
                counts.failed
            ),
            Self::Downloading { file_id, kind } => write!(f, "downloading the {kind} file {file_id}"),
            Self::Downloaded { file_id, kind, bytes } => {
                write!(f, "downloaded the {kind} file {file_id} ({bytes} bytes)")
            }
            Self::Saved {
                custom_id,
                path,
                verified: true,
            } => write!(f, "{custom_id}: saved {}", path.display()),
            Self::Saved { custom_id, path, .. } => {
                write!(f, "{custom_id}: {} does not match the request", path.display())
            }
            Self::Failed { custom_id, message } => write!(f, "{custom_id}: {message}"),
        }
    }
}

/// What [`submit`] made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submitted {
    /// The batch.
    pub batch_id: String,
    /// The uploaded input file.
    pub input_file_id: String,
    /// The manifest written.
    pub manifest: PathBuf,
    /// Requests in the batch.
    pub requests: usize,
}

/// One job after [`collect`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobOutcome {
    /// The job.
    pub custom_id: String,
    /// Saved and verified.
    pub ok: bool,
    /// Image files written (`.rejected.` names when verification failed).
    pub paths: Vec<PathBuf>,
    /// Their sidecars.
    pub sidecars: Vec<PathBuf>,
    /// The request's id.
    pub request_id: Option<String>,
    /// HTTP status the request got, when it ran.
    pub status_code: Option<u16>,
    /// Tokens billed.
    pub usage: Option<Usage>,
    /// Dollars at Batch API prices.
    pub cost_usd: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The saved images as the other commands summarise them (for the ledger).
    #[serde(skip)]
    pub images: Vec<ImageSummary>,
}

/// What [`collect`] found and saved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectReport {
    /// The batch.
    pub batch_id: String,
    /// Its final status.
    pub status: BatchStatus,
    /// Its counts.
    pub counts: RequestCounts,
    /// One per job, in manifest (or input file) order.
    pub jobs: Vec<JobOutcome>,
    /// Tokens of the successful requests.
    pub usage: Usage,
    /// Their dollars at Batch API prices.
    pub cost_usd: f64,
    /// True when prices or tokens are estimates.
    pub cost_estimate: bool,
    /// Set when the API says the images came from fourk's emulator.
    pub emulator: bool,
}

impl CollectReport {
    /// Jobs saved and verified.
    #[must_use]
    pub fn succeeded(&self) -> usize {
        self.jobs.iter().filter(|j| j.ok).count()
    }

    /// Jobs that failed or are missing.
    #[must_use]
    pub fn failed(&self) -> usize {
        self.jobs.len() - self.succeeded()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    batch_id: String,
    input_file_id: String,
    endpoint: String,
    jobs: Vec<ManifestJob>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestJob {
    custom_id: String,
    output: PathBuf,
    request: ManifestRequest,
    /// An edit's inline input images, as its sidecars record them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<ManifestInput>,
}

/// A job's request as the manifest keeps it. An edit's body has its data URLs summarised:
/// the manifest is a record, not a second copy of the inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum ManifestRequest {
    // First: an `ImageRequest` would also read an edit body (it ignores `images`), while an
    // edit body needs `images`, which a generation does not have.
    Edit(EditJsonBody),
    Generate(ImageRequest),
}

impl ManifestRequest {
    fn of(r: &BatchRequest) -> Self {
        match r.summarised() {
            BatchRequest::Generate(r) => Self::Generate(r),
            BatchRequest::Edit(r) => Self::Edit(r),
        }
    }

    fn request(&self) -> BatchRequest {
        match self {
            Self::Generate(r) => BatchRequest::Generate(r.clone()),
            Self::Edit(r) => BatchRequest::Edit(r.clone()),
        }
    }

    fn model(&self) -> &str {
        match self {
            Self::Generate(r) => &r.model,
            Self::Edit(r) => &r.edit.model,
        }
    }
}

fn part_rule(part: &str) -> &'static str {
    if part == "mask" { "mask" } else { "image" }
}

/// [`InputRecord`], in a form the manifest can read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestInput {
    /// `images` or `mask`: the field of the JSON body.
    part: String,
    /// Where the image sat in the body (`images[0]`, `mask`): a JSON edit sends no file names.
    filename: String,
    content_type: String,
    bytes: usize,
    sha256: String,
    width: u32,
    height: u32,
}

impl ManifestInput {
    fn record(&self) -> InputRecord {
        let content_type = [OutputFormat::Png, OutputFormat::Jpeg, OutputFormat::Webp]
            .into_iter()
            .map(OutputFormat::mime)
            .find(|m| *m == self.content_type)
            .unwrap_or("application/octet-stream");
        InputRecord {
            part: if self.part == "mask" { "mask" } else { "images" },
            filename: self.filename.clone(),
            content_type,
            bytes: self.bytes,
            sha256: self.sha256.clone(),
            width: self.width,
            height: self.height,
        }
    }
}

/// The inline images of an edit, decoded to be checked and described: each a readable PNG,
/// JPEG or WebP of the type its data URL names, the mask with alpha and the first image's
/// size (the rules the API applies after reading the files). Images given by URL or file id
/// are not here to read, so they have no record.
/// Problems come with the id of the rule they break (`image`, `mask`).
fn edit_inputs(body: &EditJsonBody) -> Result<Vec<ManifestInput>, Vec<(&'static str, String)>> {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let refs = body
        .images
        .iter()
        .enumerate()
        .map(|(i, r)| ("images", format!("images[{i}]"), r))
        .chain(body.mask.iter().map(|m| ("mask", "mask".to_owned(), m)));
    let mut first: Option<(u32, u32)> = None;
    for (part, at, r) in refs {
        let Ok(ImageSource::Data(data)) = r.source() else {
            continue;
        };
        let bytes = match data.decode() {
            Ok(b) => b,
            Err(e) => {
                problems.push((part_rule(part), format!("{at}.image_url: {e}")));
                continue;
            }
        };
        let probe = match fourk_imaging::probe_bytes(&bytes) {
            Ok(p) => p,
            Err(e) => {
                problems.push((
                    part_rule(part),
                    format!("{at}.image_url does not hold a readable PNG, JPEG or WebP image ({e})"),
                ));
                continue;
            }
        };
        if data.format() != Some(probe.format) {
            problems.push((
                part_rule(part),
                format!(
                    "{at}.image_url says {} but holds a {}; write data:{};base64,... instead",
                    data.mime(),
                    probe.format,
                    probe.format.mime()
                ),
            ));
        }
        let dims = (probe.width, probe.height);
        if part == "images" && first.is_none() {
            first = Some(dims);
        }
        if part == "mask" {
            if !probe.has_alpha {
                problems.push((
                    "mask",
                    "mask has no alpha channel; use an RGBA PNG whose transparent pixels mark the area to edit"
                        .to_owned(),
                ));
            }
            if let Some(image) = first
                && image != dims
            {
                problems.push((
                    "mask",
                    format!(
                        "mask is {}x{} but the first image is {}x{}; give the mask the first image's size",
                        dims.0, dims.1, image.0, image.1
                    ),
                ));
            }
        }
        records.push(ManifestInput {
            part: part.to_owned(),
            filename: at,
            content_type: probe.format.mime().to_owned(),
            bytes: bytes.len(),
            sha256: format!("{:x}", Sha256::digest(&bytes)),
            width: probe.width,
            height: probe.height,
        });
    }
    if problems.is_empty() {
        Ok(records)
    } else {
        Err(problems)
    }
}

fn manifest_path(work_dir: &Path, batch_id: &str) -> PathBuf {
    work_dir.join(format!("{batch_id}.manifest.json"))
}

/// Check the jobs, build the JSONL, upload it and create the batch. Returns once the batch
/// exists; nothing is sent when a job breaks a rule.
///
/// # Errors
/// [`UsageError`] naming every broken rule (with the job's custom id); client errors.
pub async fn submit(
    client: &Client,
    caps: &Capabilities,
    jobs: &[BatchJob],
    opts: &SubmitOptions,
    on_event: &mut (dyn FnMut(&BatchEvent) + Send),
) -> anyhow::Result<Submitted> {
    let Prepared {
        jsonl,
        endpoint,
        inputs,
    } = prepare(caps, jobs)?;
    let bytes = jsonl.len() as u64;
    let file = client
        .upload_batch_file("fourk-batch.jsonl", jsonl.into())
        .await
        .context("uploading the batch input file")?;
    on_event(&BatchEvent::Uploaded {
        file_id: file.id.clone(),
        bytes,
        requests: jobs.len(),
    });
    let mut create = CreateBatchRequest::new(file.id.clone(), endpoint);
    if !opts.metadata.is_empty() {
        create.metadata = Some(opts.metadata.clone());
    }
    let batch = client
        .create_batch(&create)
        .await
        .with_context(|| format!("creating the batch for input file {}", file.id))?;
    on_event(&BatchEvent::Created {
        batch_id: batch.id.clone(),
    });
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        batch_id: batch.id.clone(),
        input_file_id: file.id.clone(),
        endpoint: endpoint.to_owned(),
        jobs: jobs
            .iter()
            .zip(inputs)
            .map(|(j, inputs)| ManifestJob {
                custom_id: j.custom_id.clone(),
                output: absolute(&j.output),
                request: ManifestRequest::of(&j.request),
                inputs,
            })
            .collect(),
    };
    std::fs::create_dir_all(&opts.work_dir)
        .with_context(|| format!("creating {}", opts.work_dir.display()))?;
    let path = manifest_path(&opts.work_dir, &batch.id);
    let mut json = serde_json::to_vec_pretty(&manifest)?;
    json.push(b'\n');
    fourk_imaging::save_atomic(&path, &json).with_context(|| {
        format!(
            "writing the manifest of batch {} (the batch was created; collect it with `fourk batch collect {}`)",
            batch.id, batch.id
        )
    })?;
    Ok(Submitted {
        batch_id: batch.id,
        input_file_id: file.id,
        manifest: path,
        requests: jobs.len(),
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// What [`prepare`] made of the jobs.
struct Prepared {
    jsonl: Vec<u8>,
    /// The one endpoint of every job.
    endpoint: &'static str,
    /// Per job, in order: an edit's inline inputs.
    inputs: Vec<Vec<ManifestInput>>,
}

/// The JSONL of the jobs, after checking each against the rules, and what the manifest
/// records about edit inputs.
fn prepare(caps: &Capabilities, jobs: &[BatchJob]) -> anyhow::Result<Prepared> {
    let Some(first) = jobs.first() else {
        return Err(UsageError("no jobs to submit; nothing was sent".into()).into());
    };
    if jobs.len() > MAX_REQUESTS {
        return Err(UsageError(format!(
            "{} jobs, but one batch takes at most {MAX_REQUESTS}; nothing was sent\n\nhint: split the jobs into several batches",
            jobs.len()
        ))
        .into());
    }
    let endpoint = first.request.endpoint();
    let edits = jobs
        .iter()
        .filter(|j| matches!(j.request, BatchRequest::Edit(_)))
        .count();
    if edits != 0 && edits != jobs.len() {
        let example = |edit: bool| {
            jobs.iter()
                .find(|j| matches!(j.request, BatchRequest::Edit(_)) == edit)
                .map_or("", |j| j.custom_id.as_str())
        };
        return Err(UsageError(format!(
            "the jobs mix {} generation(s) (e.g. {}) and {edits} edit(s) (e.g. {}), but a batch runs one endpoint ({ENDPOINT_GENERATIONS} or {ENDPOINT_EDITS}); nothing was sent\n\nhint: split them into two batches: submit the generations and the edits separately",
            jobs.len() - edits,
            example(false),
            example(true)
        ))
        .into());
    }
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut inputs = Vec::with_capacity(jobs.len());
    for job in jobs {
        if job.custom_id.is_empty() {
            problems.push("a job has an empty custom id".to_owned());
        } else if !seen.insert(job.custom_id.as_str()) {
            problems.push(format!(
                "{}: the custom id is used twice; ids must be unique",
                job.custom_id
            ));
        }
        if job.request.stream() {
            problems.push(format!(
                "{}: stream is set; a batch writes results to a file, so drop stream",
                job.custom_id
            ));
        }
        if let Err(violations) = job.request.validate(caps) {
            for v in violations {
                problems.push(format!("{}: {} [{}]", job.custom_id, v.message, v.rule.id()));
            }
        }
        inputs.push(match &job.request {
            BatchRequest::Generate(_) => Vec::new(),
            BatchRequest::Edit(body) => edit_inputs(body).unwrap_or_else(|errs| {
                problems.extend(
                    errs.into_iter()
                        .map(|(rule, e)| format!("{}: {e} [{rule}]", job.custom_id)),
                );
                Vec::new()
            }),
        });
    }
    if !problems.is_empty() {
        return Err(UsageError(format!(
            "{} problem(s) in the jobs; nothing was sent:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
        .into());
    }
    Ok(Prepared {
        jsonl: jsonl(jobs, endpoint, MAX_INPUT_BYTES)?,
        endpoint,
        inputs,
    })
}

/// The input file's lines, refused as soon as they pass `limit` bytes.
fn jsonl(jobs: &[BatchJob], endpoint: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let written = match &job.request {
            BatchRequest::Generate(r) => {
                serde_json::to_writer(&mut out, &BatchInputLine::post(&job.custom_id, endpoint, r))
            }
            BatchRequest::Edit(r) => {
                serde_json::to_writer(&mut out, &BatchInputLine::post(&job.custom_id, endpoint, r))
            }
        };
        written?;
        out.push(b'\n');
        // Checked as the file grows: inline edit inputs make lines megabytes long, and a
        // batch over the limit should not first be built in memory whole.
        if out.len() as u64 > limit {
            let split = if i == 0 {
                "this one request is larger than a whole input file may be".to_owned()
            } else {
                format!("split the jobs into batches of at most {i}")
            };
            let by_id = if endpoint == ENDPOINT_EDITS {
                "; data URLs make edit lines large: upload the input images (purpose vision) and reference them by file_id"
            } else {
                ""
            };
            return Err(UsageError(format!(
                "the batch input file would be more than {limit} bytes (the API's limit) by job {} of {} ({}); nothing was sent\n\nhint: {split}{by_id}",
                i + 1,
                jobs.len(),
                job.custom_id,
            ))
            .into());
        }
    }
    Ok(out)
}

/// The batch as the API reports it now.
///
/// # Errors
/// Client errors (an unknown id is a 404).
pub async fn status(client: &Client, batch_id: &str) -> anyhow::Result<Batch> {
    client
        .retrieve_batch(batch_id)
        .await
        .with_context(|| format!("reading batch {batch_id}"))
}

/// Poll every `every` until the batch is final (`completed`, `failed`, `expired`,
/// `cancelled`), with a [`BatchEvent::Status`] whenever the status or counts change.
///
/// # Errors
/// Client errors after the retry policy gave up.
pub async fn wait(
    client: &Client,
    batch_id: &str,
    every: Duration,
    on_event: &mut (dyn FnMut(&BatchEvent) + Send),
) -> anyhow::Result<Batch> {
    let mut last: Option<(BatchStatus, RequestCounts)> = None;
    loop {
        let batch = status(client, batch_id).await?;
        let now = (batch.status.clone(), batch.counts());
        if last.as_ref() != Some(&now) {
            on_event(&BatchEvent::Status {
                batch_id: batch_id.to_owned(),
                status: now.0.clone(),
                counts: now.1,
            });
            last = Some(now);
        }
        if batch.status.is_terminal() {
            return Ok(batch);
        }
        tokio::time::sleep(every).await;
    }
}

/// [`submit`], [`wait`] and [`collect`] into `out_dir`.
///
/// # Errors
/// As those three.
pub async fn run(
    client: &Client,
    caps: &Capabilities,
    jobs: &[BatchJob],
    opts: &SubmitOptions,
    every: Duration,
    out_dir: &Path,
    on_event: &mut (dyn FnMut(&BatchEvent) + Send),
) -> anyhow::Result<CollectReport> {
    let submitted = submit(client, caps, jobs, opts, on_event).await?;
    wait(client, &submitted.batch_id, every, on_event).await?;
    collect_with(
        client,
        caps,
        &submitted.batch_id,
        out_dir,
        Some(&submitted.manifest),
        on_event,
    )
    .await
}

/// Download a final batch's result files and save every image under `out_dir` (or where
/// the manifest says). Idempotent: collecting twice gives the same files.
///
/// # Errors
/// [`UsageError`] when the batch is not final yet; client and IO errors.
pub async fn collect(
    client: &Client,
    caps: &Capabilities,
    batch_id: &str,
    out_dir: &Path,
    on_event: &mut (dyn FnMut(&BatchEvent) + Send),
) -> anyhow::Result<CollectReport> {
    collect_with(client, caps, batch_id, out_dir, None, on_event).await
}

/// The jobs to save, by custom id, in order.
struct Plan {
    order: Vec<String>,
    jobs: HashMap<String, ManifestJob>,
}

async fn load_plan(
    client: &Client,
    batch: &Batch,
    out_dir: &Path,
    manifest: Option<&Path>,
) -> anyhow::Result<Plan> {
    let candidates = [
        manifest.map(Path::to_path_buf),
        Some(manifest_path(&work_dir(out_dir), &batch.id)),
    ];
    for path in candidates.into_iter().flatten() {
        if path.is_file() {
            let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            return manifest_plan(&text).with_context(|| format!("reading the manifest {}", path.display()));
        }
    }
    tracing::info!(
        "no manifest for batch {} under {}; reading its requests from input file {}",
        batch.id,
        work_dir(out_dir).display(),
        batch.input_file_id
    );
    let dest = work_dir(out_dir).join(&batch.id).join("input.jsonl");
    download(client, &batch.input_file_id, &dest).await?;
    let reader = std::io::BufReader::new(
        std::fs::File::open(&dest).with_context(|| format!("opening {}", dest.display()))?,
    );
    let mut plan = Plan {
        order: Vec::new(),
        jobs: HashMap::new(),
    };
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", dest.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let job = input_line_job(&line, out_dir)
            .with_context(|| format!("line {} of the batch's input file {}", i + 1, dest.display()))?;
        plan.order.push(job.custom_id.clone());
        plan.jobs.insert(job.custom_id.clone(), job);
    }
    Ok(plan)
}

fn manifest_plan(text: &[u8]) -> anyhow::Result<Plan> {
    let m: Manifest = serde_json::from_slice(text)?;
    let order = m.jobs.iter().map(|j| j.custom_id.clone()).collect();
    let jobs = m.jobs.into_iter().map(|j| (j.custom_id.clone(), j)).collect();
    Ok(Plan { order, jobs })
}

/// One job as [`collect`] reads it back from a manifest or from a line of the batch's input
/// file: what it saves, where, and the input records its sidecars get.
#[derive(Debug, Clone)]
pub struct ManifestEntry {
    /// The job's custom id.
    pub custom_id: String,
    /// Where its images go (without the extension).
    pub output: PathBuf,
    /// The request's model.
    pub model: String,
    /// The requested size.
    pub size: Option<Size>,
    /// The format of the images it saves.
    pub format: OutputFormat,
    /// An edit's inline inputs, as its sidecars record them.
    pub inputs: Vec<InputRecord>,
}

impl ManifestEntry {
    fn of(job: &ManifestJob) -> Self {
        let request = job.request.request();
        Self {
            custom_id: job.custom_id.clone(),
            output: job.output.clone(),
            model: request.model().to_owned(),
            size: request.size(),
            format: request.effective_format(),
            inputs: job.inputs.iter().map(ManifestInput::record).collect(),
        }
    }
}

/// The jobs of a manifest's text, in order, as [`collect`] reads them.
///
/// # Errors
/// When `text` is not a manifest.
pub fn read_manifest(text: &[u8]) -> anyhow::Result<Vec<ManifestEntry>> {
    let plan = manifest_plan(text)?;
    Ok(plan
        .order
        .iter()
        .filter_map(|id| plan.jobs.get(id))
        .map(ManifestEntry::of)
        .collect())
}

/// A job read back from one line of a batch's input file, as [`collect`] does without a
/// manifest; its output is in `out_dir`.
///
/// # Errors
/// When `line` is not a batch request line for a generation or an edit.
pub fn read_input_line(line: &str, out_dir: &Path) -> anyhow::Result<ManifestEntry> {
    input_line_job(line, out_dir).map(|j| ManifestEntry::of(&j))
}

/// A job read back from a line of the batch's input file: a generation, or (by its `url`)
/// an edit, whose inline inputs are described and whose data URLs are then summarised.
fn input_line_job(line: &str, out_dir: &Path) -> anyhow::Result<ManifestJob> {
    let l: BatchInputLine = serde_json::from_str(line).context("not a batch request line")?;
    let (request, inputs) = if l.url == ENDPOINT_EDITS {
        let body = EditJsonBody::from_json(&l.body)
            .map_err(|v| anyhow::anyhow!("not an image edit: {} [{}]", v.message, v.rule.id()))?;
        // The input file was accepted by the API; an input that cannot be described is only
        // missing from the sidecar, not a reason to leave the result unsaved.
        let inputs = edit_inputs(&body).unwrap_or_else(|problems| {
            let problems: Vec<String> = problems.into_iter().map(|(_, p)| p).collect();
            tracing::warn!("{}: inputs not recorded: {}", l.custom_id, problems.join("; "));
            Vec::new()
        });
        (ManifestRequest::Edit(body.summarised()), inputs)
    } else {
        let body: ImageRequest = serde_json::from_value(l.body).context("not an image generation request")?;
        (ManifestRequest::Generate(body), Vec::new())
    };
    Ok(ManifestJob {
        output: out_dir.join(safe_name(&l.custom_id)),
        custom_id: l.custom_id,
        request,
        inputs,
    })
}

/// A file name from a custom id: letters, digits, `-`, `_` and `.` kept, anything else `_`,
/// no leading dot, so no id can name a path outside the output folder.
#[must_use]
pub fn safe_name(custom_id: &str) -> String {
    let s: String = custom_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() { "job".to_owned() } else { s }
}

async fn collect_with(
    client: &Client,
    caps: &Capabilities,
    batch_id: &str,
    out_dir: &Path,
    manifest: Option<&Path>,
    on_event: &mut (dyn FnMut(&BatchEvent) + Send),
) -> anyhow::Result<CollectReport> {
    let batch = status(client, batch_id).await?;
    if !batch.status.is_terminal() {
        let c = batch.counts();
        return Err(UsageError(format!(
            "batch {batch_id} is still {} ({} of {} requests done, {} failed); nothing to collect yet\n\nhint: check again later with `fourk batch status {batch_id}`",
            batch.status,
            c.completed + c.failed,
            c.total,
            c.failed
        ))
        .into());
    }
    let plan = load_plan(client, &batch, out_dir, manifest).await?;
    let mut report = CollectReport {
        batch_id: batch_id.to_owned(),
        status: batch.status.clone(),
        counts: batch.counts(),
        jobs: Vec::new(),
        usage: Usage::default(),
        cost_usd: 0.0,
        cost_estimate: false,
        emulator: false,
    };
    let mut outcomes: HashMap<String, JobOutcome> = HashMap::new();
    let dir = work_dir(out_dir).join(batch_id);
    for (kind, file_id) in [("output", &batch.output_file_id), ("error", &batch.error_file_id)] {
        let Some(file_id) = file_id else { continue };
        on_event(&BatchEvent::Downloading {
            file_id: file_id.clone(),
            kind,
        });
        let dest = dir.join(format!("{kind}.jsonl"));
        let got = download(client, file_id, &dest).await?;
        report.emulator |= got.emulator;
        on_event(&BatchEvent::Downloaded {
            file_id: file_id.clone(),
            kind,
            bytes: got.bytes,
        });
        read_results(
            client,
            caps,
            batch_id,
            &dest,
            &plan,
            got.emulator,
            &mut outcomes,
            on_event,
        )?;
    }
    let why_missing = match (&batch.status, &batch.errors) {
        (BatchStatus::Failed, Some(errors)) => format!(
            "the batch failed validation: {}",
            errors
                .data
                .iter()
                .map(|e| match e.line {
                    Some(l) => format!("line {l}: {}", e.message.as_deref().unwrap_or("invalid")),
                    None => e.message.clone().unwrap_or_default(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
        (status, _) => format!("not in the batch's result files (batch {status})"),
    };
    for id in &plan.order {
        let outcome = outcomes.remove(id).unwrap_or_else(|| {
            on_event(&BatchEvent::Failed {
                custom_id: id.clone(),
                message: why_missing.clone(),
            });
            JobOutcome {
                custom_id: id.clone(),
                ok: false,
                paths: Vec::new(),
                sidecars: Vec::new(),
                request_id: None,
                status_code: None,
                usage: None,
                cost_usd: None,
                error: Some(why_missing.clone()),
                images: Vec::new(),
            }
        });
        report.jobs.push(outcome);
    }
    // Results for ids the plan does not know (a manifest from another submit) are still
    // reported.
    let mut extra: Vec<JobOutcome> = outcomes.into_values().collect();
    extra.sort_by(|a, b| a.custom_id.cmp(&b.custom_id));
    report.jobs.extend(extra);
    for j in &report.jobs {
        if let Some(u) = j.usage {
            report.usage.input_tokens += u.input_tokens;
            report.usage.output_tokens += u.output_tokens;
            report.usage.total_tokens += u.total_tokens;
        }
        report.cost_usd += j.cost_usd.unwrap_or(0.0);
    }
    report.cost_estimate = report.jobs.iter().any(|j| j.usage.is_some())
        && plan.jobs.values().any(|j| {
            caps.model(j.request.model())
                .ok()
                .and_then(|m| m.price)
                .is_none_or(|p| p.estimate)
        });
    Ok(report)
}

struct Downloaded {
    bytes: u64,
    emulator: bool,
}

/// Stream a file's content to `dest` (through `dest.part`, renamed when complete). A file
/// already there with the size the API reports is not downloaded again.
async fn download(client: &Client, file_id: &str, dest: &Path) -> anyhow::Result<Downloaded> {
    let meta = client
        .retrieve_file(file_id)
        .await
        .with_context(|| format!("reading file {file_id}"))?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let marker = dest.with_extension("emulator");
    if std::fs::metadata(dest).is_ok_and(|m| m.len() == meta.bytes) {
        return Ok(Downloaded {
            bytes: meta.bytes,
            emulator: marker.exists(),
        });
    }
    let part = dest.with_extension("jsonl.part");
    let mut last_error = None;
    for attempt in 1..=DOWNLOAD_ATTEMPTS {
        match download_once(client, file_id, &part).await {
            Ok((bytes, emulator)) => {
                tokio::fs::rename(&part, dest)
                    .await
                    .with_context(|| format!("renaming {} to {}", part.display(), dest.display()))?;
                if emulator {
                    fourk_imaging::save_atomic(
                        &marker,
                        b"procedural; images are rendered locally, not by OpenAI\n",
                    )?;
                }
                return Ok(Downloaded { bytes, emulator });
            }
            Err(e) => {
                tracing::warn!(
                    "downloading file {file_id} (attempt {attempt} of {DOWNLOAD_ATTEMPTS}) failed: {e:#}"
                );
                last_error = Some(e);
            }
        }
    }
    let _ = tokio::fs::remove_file(&part).await;
    Err(last_error
        .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
        .context(format!("downloading file {file_id} to {}", dest.display())))
}

async fn download_once(client: &Client, file_id: &str, part: &Path) -> anyhow::Result<(u64, bool)> {
    let mut content = client.file_content(file_id).await?;
    let mut out = tokio::io::BufWriter::new(
        tokio::fs::File::create(part)
            .await
            .with_context(|| format!("creating {}", part.display()))?,
    );
    let mut bytes = 0u64;
    while let Some(chunk) = content.chunk().await? {
        bytes += chunk.len() as u64;
        out.write_all(&chunk)
            .await
            .with_context(|| format!("writing {}", part.display()))?;
    }
    out.flush().await?;
    out.into_inner().sync_all().await?;
    if let Some(len) = content.length
        && len != bytes
    {
        bail!("the download ended after {bytes} of {len} bytes");
    }
    Ok((bytes, content.emulator.is_some()))
}

/// Read a result file line by line, saving each successful image.
#[allow(clippy::too_many_arguments)]
fn read_results(
    client: &Client,
    caps: &Capabilities,
    batch_id: &str,
    path: &Path,
    plan: &Plan,
    emulator: bool,
    outcomes: &mut HashMap<String, JobOutcome>,
    on_event: &mut (dyn FnMut(&BatchEvent) + Send),
) -> anyhow::Result<()> {
    let mut reader = std::io::BufReader::new(
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
    );
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let outcome = match one_result(client, caps, batch_id, &buf, plan, emulator) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("line {line_no} of {}: {e:#}", path.display());
                continue;
            }
        };
        match &outcome.error {
            None => on_event(&BatchEvent::Saved {
                custom_id: outcome.custom_id.clone(),
                path: outcome.paths.first().cloned().unwrap_or_default(),
                verified: outcome.ok,
            }),
            Some(message) => on_event(&BatchEvent::Failed {
                custom_id: outcome.custom_id.clone(),
                message: message.clone(),
            }),
        }
        outcomes.insert(outcome.custom_id.clone(), outcome);
    }
    Ok(())
}

fn failed(
    custom_id: String,
    request_id: Option<String>,
    status_code: Option<u16>,
    error: String,
) -> JobOutcome {
    JobOutcome {
        custom_id,
        ok: false,
        paths: Vec::new(),
        sidecars: Vec::new(),
        request_id,
        status_code,
        usage: None,
        cost_usd: None,
        error: Some(error),
        images: Vec::new(),
    }
}

/// One result line: an image saved, or the failure it reports.
fn one_result(
    client: &Client,
    caps: &Capabilities,
    batch_id: &str,
    line: &[u8],
    plan: &Plan,
    emulator: bool,
) -> anyhow::Result<JobOutcome> {
    let head: BatchOutputLine<serde::de::IgnoredAny> =
        serde_json::from_slice(line).context("not a batch output line")?;
    let request_id = head.response.as_ref().map(|r| r.request_id.clone());
    let status_code = head.response.as_ref().map(|r| r.status_code);
    if !head.succeeded() {
        let full: BatchOutputLine<serde_json::Value> = serde_json::from_slice(line)?;
        let message = match (&full.response, &full.error) {
            (_, Some(e)) => format!("{} [{}]", e.message, e.code),
            (Some(r), None) => match serde_json::from_value::<ErrorEnvelope>(r.body.clone()) {
                Ok(env) => format!(
                    "HTTP {}: {}{}",
                    r.status_code,
                    env.error.message,
                    env.error.code.map(|c| format!(" [{c}]")).unwrap_or_default()
                ),
                Err(_) => format!("HTTP {}", r.status_code),
            },
            (None, None) => "no response and no error".to_owned(),
        };
        return Ok(failed(head.custom_id, request_id, status_code, message));
    }
    let Some(job) = plan.jobs.get(&head.custom_id) else {
        return Ok(failed(
            head.custom_id,
            request_id,
            status_code,
            "a result for a custom id this batch's manifest does not list; nothing saved".into(),
        ));
    };
    let full: BatchOutputLine<ImagesResponseRef<'_>> =
        serde_json::from_slice(line).context("the answer is not an images response")?;
    let Some(resp) = full.response else {
        unreachable!("succeeded() checked the response")
    };
    let body = resp.body;
    let request = job.request.request();
    let model = caps.model(request.model()).ok();
    let price = model.and_then(|m| m.price).map(|p| batch_prices(&p));
    let warnings = request.validate(caps).map(|(_, w)| w).unwrap_or_default();
    let djob = deliver::Job {
        route: fourk_api::RouteLabel::Batch,
        stream: false,
        endpoint: fourk_client::redact_url(&client.config().endpoint(&format!("batches/{batch_id}"))),
        provider: crate::sidecar::ProviderRecord::of(client.config()),
        model: request.model().to_owned(),
        price,
        request: match &request {
            BatchRequest::Generate(r) => SentRequest::Generate(r.clone()),
            // The multipart edit's fields for now; replaced by the JSON body once written.
            BatchRequest::Edit(r) => SentRequest::Edit(r.edit.clone()),
        },
        inputs: job.inputs.iter().map(ManifestInput::record).collect(),
        warnings,
        dims: request.size().and_then(Size::dims),
        format: request.effective_format(),
        transparent: request.background() == Some(Background::Transparent),
        base: job.output.clone(),
        // The batch's own files: collecting again rewrites them (the submission checked that
        // nothing else was at these names).
        force: true,
    };
    let delivery = Delivery {
        meta: ResponseMeta {
            created: body.created,
            request_id: Some(resp.request_id.clone()),
            processing_ms: None,
            elapsed_ms: 0,
            settings: body.settings.clone(),
            rate_limits: RateLimits::default(),
            emulator: emulator.then(|| fourk_emulator::EMULATOR_HEADER_VALUE.to_owned()),
        },
        usage: body.usage,
        attempts: 1,
        responses: None,
    };
    let images: Vec<&str> = body.data.iter().filter_map(|d| d.b64_json.as_deref()).collect();
    if images.is_empty() {
        return Ok(failed(
            head.custom_id,
            request_id,
            status_code,
            "the answer holds no image (no b64_json in data[])".into(),
        ));
    }
    if let Some(parent) = job.output.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let (summaries, all_ok) = deliver::save_all(&djob, &delivery, &images, None)?;
    if let BatchRequest::Edit(sent) = &request {
        // `SentRequest` has no JSON-edit form and sidecar.rs is not this module's to change,
        // so the body as sent (data URLs summarised; `moderation` and the image references
        // included) replaces the multipart-shaped record.
        for s in &summaries {
            sidecar::annotate(&s.sidecar, "request", sent)?;
        }
    }
    let cost = summaries.first().and_then(|s| s.cost);
    Ok(JobOutcome {
        custom_id: head.custom_id,
        ok: all_ok,
        paths: summaries.iter().map(|s| s.path.clone()).collect(),
        sidecars: summaries.iter().map(|s| s.sidecar.clone()).collect(),
        request_id,
        status_code,
        usage: body.usage,
        cost_usd: cost.map(|c| c.usd),
        error: (!all_ok)
            .then(|| "the image does not match the request (kept under a .rejected. name)".to_owned()),
        images: summaries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_stay_in_the_folder() {
        assert_eq!(safe_name("hero-1"), "hero-1");
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name("..."), "job");
        assert_eq!(safe_name("a/b\\c d"), "a_b_c_d");
    }

    #[test]
    fn the_input_file_limit_is_checked_as_lines_are_written() {
        let job = |id: &str| BatchJob::generate(id, ImageRequest::new("gpt-image-2", "x"), "a.png");
        let jobs = [job("a"), job("b"), job("c")];
        let one = jsonl(&jobs[..1], ENDPOINT_GENERATIONS, u64::MAX).unwrap().len() as u64;
        assert!(jsonl(&jobs, ENDPOINT_GENERATIONS, 3 * one).is_ok());
        let e = format!(
            "{:#}",
            jsonl(&jobs, ENDPOINT_GENERATIONS, 2 * one + 1).unwrap_err()
        );
        assert!(e.contains("by job 3 of 3 (c)"), "{e}");
        assert!(
            e.contains("hint: split the jobs into batches of at most 2"),
            "{e}"
        );
        assert!(!e.contains("file_id"), "{e}");

        let png = fourk_api::InputImage::new("a.png", OutputFormat::Png, vec![0x89, b'P', b'N', b'G']);
        let body = EditJsonBody::from_edit(&fourk_api::EditRequest::new("gpt-image-2", "x"), &[png], None);
        let edits = [BatchJob::edit("big", body, "big.png")];
        let e = format!("{:#}", jsonl(&edits, ENDPOINT_EDITS, 10).unwrap_err());
        assert!(
            e.contains("this one request is larger than a whole input file may be"),
            "{e}"
        );
        assert!(e.contains("reference them by file_id"), "{e}");
    }

    #[test]
    fn bad_jobs_are_refused_before_anything_is_sent() {
        let caps = Capabilities::builtin();
        let mut bad = ImageRequest::new("gpt-image-2", "x");
        bad.size = Some(fourk_api::Size::new(1000, 1000));
        let jobs = [
            BatchJob::generate("a", ImageRequest::new("gpt-image-2", "x"), "a.png"),
            BatchJob::generate("a", bad, "b.png"),
        ];
        let e = prepare(&caps, &jobs).err().unwrap().to_string();
        assert!(e.contains("a: the custom id is used twice"), "{e}");
        assert!(e.contains("[multiple_of_16]"), "{e}");
        let ok = prepare(&caps, &jobs[..1]).ok().unwrap();
        assert_eq!(ok.endpoint, ENDPOINT_GENERATIONS);
        assert_eq!(
            String::from_utf8(ok.jsonl).unwrap(),
            "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/images/generations\",\"body\":{\"model\":\"gpt-image-2\",\"prompt\":\"x\"}}\n"
        );
    }
}
