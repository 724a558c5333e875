//! Tool results for images: `structuredContent` with one record per image, a `resource_link`
//! per image, one line of text with the paths and the cost, and one small preview, kept
//! under [`MAX_RESULT_BYTES`] whatever the number and size of the images.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock, Resource};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use fourk_core::save::ImageSummary;
use fourk_imaging::Thumbnail;

use crate::roots::file_uri;

/// The whole result's bound (JSON as sent), the promise to clients.
pub const MAX_RESULT_BYTES: usize = 100 * 1024;

/// The preview's long edge in pixels.
pub const PREVIEW_EDGE: u32 = 512;

/// Most image records listed in one result (a batch of hundreds lists the first ones and
/// says how many more there are; `history` pages the rest).
pub const MAX_RECORDS: usize = 100;

/// What the emulator's images are, said in every result made with it.
pub const EMULATOR_NOTE: &str =
    "made by fourk's offline emulator: the image is a procedural placeholder, not a render by OpenAI";

/// One image on disk.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImageRecord {
    /// Absolute path.
    pub path: String,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// `png`, `jpeg` or `webp`.
    pub format: Option<String>,
    /// File size.
    pub bytes: Option<u64>,
    /// SHA-256 of the file.
    pub sha256: Option<String>,
    /// Re-read after saving and matched to the request (size, format, alpha, full decode).
    pub verified: bool,
    /// The JSON sidecar (request, response ids, usage, cost, checks).
    pub sidecar: Option<String>,
    /// The run ledger's id (what `final` takes as `draft`; `fourk://image/{id}`).
    pub ledger_id: Option<i64>,
    /// What the image is in a workflow (`draft`, `master`, `final`, `sheet`, `native`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A background job, as a call with `job: true` answers at once.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JobRef {
    /// Pass it to `status`.
    pub id: String,
    /// `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// The tool that runs.
    pub tool: String,
}

/// The structured result of every tool that makes or reads images.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ImagesResult {
    /// The images, in order (at most 100 listed; see `more_images`).
    pub images: Vec<ImageRecord>,
    /// Images made but not listed (the result stays small).
    #[serde(skip_serializing_if = "is_zero")]
    pub more_images: usize,
    /// Every listed image verified.
    pub all_verified: bool,
    /// Token usage, as the API reported it (summed over requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    /// Dollars for this call (measured usage x the table's prices; estimated when the usage
    /// is predicted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// True when any part of `cost_usd` is an estimate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cost_is_estimate: bool,
    /// `x-request-id` of each request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
    /// The job, for background calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobRef>,
    /// The dry run: the exact request(s) and the estimate; nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Value>,
    /// The operation's own report (workflow steps, compare metrics, batch counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    /// What to do next, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Set when the images come from the offline emulator (procedural placeholders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulator_note: Option<String>,
    /// Thumbnails made while the images were verified, one per listed image when the core
    /// made them (then the preview decodes nothing again).
    #[serde(skip)]
    #[schemars(skip)]
    pub thumbnails: Vec<Arc<Thumbnail>>,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
const fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ImageRecord {
    /// The record of an image the core just saved: everything from its summary (size and
    /// hash as written and verified), nothing read again.
    #[must_use]
    pub fn of_summary(s: &ImageSummary) -> Self {
        let abs = |p: &Path| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        if s.sha256.is_empty() {
            return Self::of_file(&s.path, s.verified, Some(&s.sidecar), s.ledger_id);
        }
        Self {
            path: abs(&s.path),
            width: s.width,
            height: s.height,
            format: s.format.clone(),
            bytes: Some(s.bytes),
            sha256: Some(s.sha256.clone()),
            verified: s.verified,
            sidecar: Some(abs(&s.sidecar)),
            ledger_id: s.ledger_id,
            role: None,
        }
    }

    /// A record of the file at `path`: size and hash read from the disk, the rest given.
    #[must_use]
    pub fn of_file(path: &Path, verified: bool, sidecar: Option<&Path>, ledger_id: Option<i64>) -> Self {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let probe = fourk_imaging::probe_file(&abs).ok();
        let (bytes, sha256) = match std::fs::read(&abs) {
            Ok(b) => {
                use sha2::Digest as _;
                (
                    Some(b.len() as u64),
                    Some(format!("{:x}", sha2::Sha256::digest(&b))),
                )
            }
            Err(_) => (None, None),
        };
        Self {
            path: abs.display().to_string(),
            width: probe.as_ref().map(|p| p.width),
            height: probe.as_ref().map(|p| p.height),
            format: probe.as_ref().map(|p| p.format.as_str().to_owned()),
            bytes,
            sha256,
            verified,
            sidecar: sidecar.filter(|s| s.exists()).map(|s| {
                std::path::absolute(s)
                    .unwrap_or_else(|_| s.to_path_buf())
                    .display()
                    .to_string()
            }),
            ledger_id,
            role: None,
        }
    }

    /// With a workflow role.
    #[must_use]
    pub fn role(mut self, role: &str) -> Self {
        self.role = Some(role.to_owned());
        self
    }

    fn mime(&self) -> &'static str {
        match self.format.as_deref() {
            Some("jpeg") => "image/jpeg",
            Some("webp") => "image/webp",
            _ => "image/png",
        }
    }
}

/// An MCP error result: `isError: true`, the message as the CLI says it, and the rule ids
/// (and nearest sizes, when the size broke a rule) as structured content.
#[must_use]
pub fn error_result(message: &str, rules: &[String], suggestions: &[String]) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(message.to_owned())]);
    r.structured_content = Some(serde_json::json!({
        "error": message,
        "rules": rules,
        "suggestions": suggestions,
    }));
    r
}

/// A successful result with `value` as structured content and `text` for people.
#[must_use]
pub fn plain_result<T: Serialize>(value: &T, text: String) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = serde_json::to_value(value).ok();
    r
}

/// The paths (at most a few, then a count) and the cost, in one line.
fn summary_line(r: &ImagesResult) -> String {
    if let Some(job) = &r.job {
        return format!(
            "job {} ({}) is {}; call status with job={} for progress and the result",
            job.id, job.tool, job.state, job.id
        );
    }
    if r.dry_run.is_some() {
        return format!(
            "dry run: nothing was sent; estimate {}",
            r.cost_usd.map_or_else(
                || "unknown (no prices for this model)".to_owned(),
                |c| format!("${c:.3}")
            )
        );
    }
    let shown: Vec<String> = r
        .images
        .iter()
        .take(5)
        .map(|i| {
            format!(
                "{} ({}x{} {}{})",
                i.path,
                i.width.unwrap_or(0),
                i.height.unwrap_or(0),
                i.format.as_deref().unwrap_or("?"),
                if i.verified {
                    ", verified"
                } else {
                    ", NOT verified"
                }
            )
        })
        .collect();
    let more = r.images.len().saturating_sub(5) + r.more_images;
    let mut s = if shown.is_empty() {
        "no image".to_owned()
    } else {
        shown.join("; ")
    };
    if more > 0 {
        s.push_str(&format!("; and {more} more"));
    }
    if let Some(c) = r.cost_usd {
        s.push_str(&format!(
            "; cost ${c:.3}{}",
            if r.cost_is_estimate { " (estimate)" } else { "" }
        ));
    }
    if let Some(n) = &r.emulator_note {
        s.push_str(&format!(". Note: {n}"));
    }
    s
}

/// The MCP result of `r`: structured content, one `resource_link` per listed image, the
/// text line, and, when `preview`, one preview image (a contact sheet for several).
/// Shrinks what it lists until the JSON fits [`MAX_RESULT_BYTES`].
#[must_use]
pub fn images_result(mut r: ImagesResult, preview: bool) -> CallToolResult {
    if r.images.len() > MAX_RECORDS {
        r.more_images += r.images.len() - MAX_RECORDS;
        r.images.truncate(MAX_RECORDS);
    }
    let pic = if preview && r.dry_run.is_none() {
        let paths: Vec<PathBuf> = r
            .images
            .iter()
            .filter(|i| i.role.as_deref() != Some("sheet"))
            .map(|i| PathBuf::from(&i.path))
            .collect();
        let paths = if paths.is_empty() {
            r.images.iter().map(|i| PathBuf::from(&i.path)).collect()
        } else {
            paths
        };
        let made = if r.thumbnails.len() >= r.images.len() && !r.images.is_empty() {
            let thumbs: Vec<&image::RgbaImage> =
                r.thumbnails.iter().take(r.images.len()).map(|t| &t.0).collect();
            fourk_imaging::preview::preview_of_thumbnails(&thumbs, PREVIEW_EDGE)
        } else {
            fourk_imaging::preview::preview_jpeg(&paths, PREVIEW_EDGE)
        };
        match made {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::debug!("no preview: {e}");
                None
            }
        }
    } else {
        None
    };
    loop {
        let mut content: Vec<ContentBlock> = vec![ContentBlock::text(summary_line(&r))];
        for i in &r.images {
            let name = Path::new(&i.path)
                .file_name()
                .map_or_else(|| i.path.clone(), |n| n.to_string_lossy().into_owned());
            let mut link = Resource::new(file_uri(Path::new(&i.path)), name).with_mime_type(i.mime());
            if let Some(b) = i.bytes {
                link = link.with_size(b);
            }
            content.push(ContentBlock::resource_link(link));
        }
        if let Some(p) = &pic {
            content.push(ContentBlock::image(
                base64::engine::general_purpose::STANDARD.encode(p),
                "image/jpeg",
            ));
        }
        let mut result = CallToolResult::success(content);
        result.structured_content = serde_json::to_value(&r).ok();
        let size = serde_json::to_vec(&result).map_or(usize::MAX, |v| v.len());
        if size <= MAX_RESULT_BYTES || r.images.len() <= 1 {
            return result;
        }
        // Too big (hundreds of long paths): list fewer, count the rest.
        let keep = r.images.len() / 2;
        r.more_images += r.images.len() - keep;
        r.images.truncate(keep);
    }
}
