//! The JSON record written next to every image (`<image>.json`): what was asked, what came
//! back, what it cost, and the proof that the file is what was asked for.

use std::path::{Path, PathBuf};

use fourk_api::{Cost, EditRequest, ImageRequest, OutputFormat, ResponsesRequest, Usage, Warning};
use fourk_client::RateLimits;
use fourk_imaging::VerifyReport;
use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning.
pub const SIDECAR_VERSION: u32 = 1;

/// The response metadata worth keeping.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseMeta {
    /// `created`, unix seconds.
    pub created: i64,
    /// `x-request-id`: quote it to OpenAI support.
    pub request_id: Option<String>,
    /// `openai-processing-ms`.
    pub processing_ms: Option<u64>,
    /// Wall time from send to last byte, in milliseconds.
    pub elapsed_ms: u128,
    /// Resolved settings echoed by the API (background, format, quality, size; a setting
    /// the answer does not echo is left out).
    #[serde(flatten)]
    pub settings: fourk_api::ImageSettings,
    /// Rate-limit headers.
    pub rate_limits: RateLimits,
    /// Set when the image came from fourk's offline emulator (procedurally rendered).
    pub emulator: Option<String>,
}

/// The checks on the saved file.
#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    /// Requested width, when the size was explicit.
    pub requested_width: Option<u32>,
    /// Requested height.
    pub requested_height: Option<u32>,
    /// Requested format.
    pub requested_format: String,
    /// The file's width.
    pub actual_width: Option<u32>,
    /// The file's height.
    pub actual_height: Option<u32>,
    /// The file's format, from its bytes.
    pub actual_format: Option<String>,
    /// Whether the file has an alpha channel.
    pub actual_alpha: Option<bool>,
    /// SHA-256 of the file.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// Fully decoded without error.
    pub intact: bool,
    /// Intact and every expectation met.
    pub verified: bool,
    /// Each comparison.
    pub details: VerifyReport,
}

impl Checks {
    /// Summarise a verification report against what was requested: the explicit size, when
    /// there was one, and the format.
    #[must_use]
    pub fn from_report(dims: Option<(u32, u32)>, format: OutputFormat, report: VerifyReport) -> Self {
        Self {
            requested_width: dims.map(|d| d.0),
            requested_height: dims.map(|d| d.1),
            requested_format: format.as_str().to_owned(),
            actual_width: report.probe.as_ref().map(|p| p.width),
            actual_height: report.probe.as_ref().map(|p| p.height),
            actual_format: report.probe.as_ref().map(|p| p.format.as_str().to_owned()),
            actual_alpha: report.probe.as_ref().map(|p| p.has_alpha),
            sha256: report.sha256.clone(),
            bytes: report.bytes,
            intact: report.intact,
            verified: report.ok,
            details: report,
        }
    }
}

/// The request body as sent, by route. Input images are summarised, never embedded.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SentRequest {
    /// `images.generate`: the JSON body.
    Generate(ImageRequest),
    /// `images.edit`: the multipart text fields (the files are in [`Sidecar::inputs`]).
    Edit(EditRequest),
    /// `responses`: the JSON body, with input images' data URLs replaced by a summary.
    Responses(Box<ResponsesRequest>),
    /// `gemini.generate`: the `generateContent` body, inline images summarised.
    Gemini(Box<fourk_api::gemini::GenerateContentRequest>),
}

/// One input image of an edit, as sent.
#[derive(Debug, Clone, Serialize)]
pub struct InputRecord {
    /// `image`, `image[]` or `mask`.
    pub part: &'static str,
    /// The file name sent.
    pub filename: String,
    /// The MIME type sent.
    pub content_type: &'static str,
    /// Bytes.
    pub bytes: usize,
    /// SHA-256 of the bytes.
    pub sha256: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// What the Responses API adds: the ids needed to continue the conversation.
#[derive(Debug, Clone, Serialize)]
pub struct ResponsesMeta {
    /// The response id; pass it as `--previous-response` to build on this image.
    pub response_id: String,
    /// The `image_generation_call` item's id.
    pub image_call_id: String,
    /// The prompt the mainline model actually gave the image tool.
    pub revised_prompt: Option<String>,
    /// The response this one continued from.
    pub previous_response_id: Option<String>,
    /// The mainline model.
    pub model: String,
}

/// Which provider a request went to, as a sidecar records it: the name, and what chose its
/// URL (an Azure deployment and API version) and the names (never the values) of the extra
/// headers it carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecord {
    /// `openai`, `azure`, `gemini` or `compatible`.
    pub name: fourk_api::ProviderKind,
    /// The Azure OpenAI deployment, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The `api-version` sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The names of the `--header`s sent (their values are secrets and never recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
}

impl ProviderRecord {
    /// The record of a client's provider.
    #[must_use]
    pub fn of(config: &fourk_client::Config) -> Self {
        let p = &config.provider;
        Self {
            name: p.kind,
            deployment: p.deployment.clone(),
            api_version: p
                .query
                .iter()
                .find(|(k, _)| k == "api-version")
                .map(|(_, v)| v.clone()),
            headers: p.headers.iter().map(|h| h.name.clone()).collect(),
        }
    }
}

/// The whole sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct Sidecar {
    /// Layout version.
    pub sidecar_version: u32,
    /// The fourk that wrote it.
    pub fourk_version: &'static str,
    /// The image this describes (file name, relative to the sidecar).
    pub image: String,
    /// Which index of a multi-image response this is (0-based).
    pub index: usize,
    /// `images.generate`, `images.edit` or `responses`.
    pub route: fourk_api::RouteLabel,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// Attempts made, retries included (1 when the first attempt succeeded).
    pub attempts: u32,
    /// The endpoint called (no credentials are ever part of it).
    pub endpoint: String,
    /// The provider it went to, and how (deployment, API version, extra header names).
    pub provider: ProviderRecord,
    /// The model.
    pub model: String,
    /// The request body as sent (the key is a header and is never recorded).
    pub request: SentRequest,
    /// The input images of an edit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputRecord>,
    /// Response metadata.
    pub response: ResponseMeta,
    /// Set on the `responses` route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responses: Option<ResponsesMeta>,
    /// Tokens billed for the whole request (all `n` images), as reported by the API; on the
    /// `responses` route, `tool_usage.image_gen`.
    pub usage: Option<Usage>,
    /// Dollars for the whole request, from `usage` and the price table.
    pub cost: Option<Cost>,
    /// Proof that the file is what was asked for.
    pub checks: Checks,
    /// Warnings raised before sending (experimental size, preview features).
    pub warnings: Vec<Warning>,
}

/// `hero.png` -> `hero.png.json`.
#[must_use]
pub fn path_for(image: &Path) -> PathBuf {
    let mut s = image.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Write the sidecar atomically next to the image.
///
/// # Errors
/// When it cannot be serialised or written.
pub fn write(image: &Path, sidecar: &Sidecar) -> anyhow::Result<PathBuf> {
    let path = path_for(image);
    let mut json = serde_json::to_vec_pretty(sidecar)?;
    json.push(b'\n');
    fourk_imaging::save_atomic(&path, &json)?;
    Ok(path)
}

/// Add (or replace) one top-level `key` in an existing sidecar file, atomically: for records
/// known only after the image was saved and checked (such as `transparency`).
///
/// # Errors
/// When the sidecar cannot be read, parsed, serialised or written.
pub fn annotate(sidecar: &Path, key: &str, value: &impl Serialize) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let text = std::fs::read(sidecar).with_context(|| format!("reading {}", sidecar.display()))?;
    let json = annotated(&text, key, value).with_context(|| format!("reading {}", sidecar.display()))?;
    fourk_imaging::save_atomic(sidecar, &json).with_context(|| format!("writing {}", sidecar.display()))?;
    Ok(())
}

/// The sidecar `text` with the top-level `key` added (or replaced): what [`annotate`] writes.
///
/// # Errors
/// When `text` is not a sidecar's JSON, or `value` cannot be serialised.
pub fn annotated(text: &[u8], key: &str, value: &impl Serialize) -> anyhow::Result<Vec<u8>> {
    let mut car = parse_object(text)?;
    car.insert(key.to_owned(), serde_json::to_value(value)?);
    let mut json = serde_json::to_vec_pretty(&car)?;
    json.push(b'\n');
    Ok(json)
}

/// A sidecar's text as its top-level object, for code that adds keys to it. Indexing a
/// `serde_json::Value` to add a key panics unless it is an object (or null), and a sidecar
/// file can hold anything, so writers go through this.
///
/// # Errors
/// When `text` is not JSON, or is JSON but not an object.
pub fn parse_object(text: &[u8]) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice(text)? {
        serde_json::Value::Object(map) => Ok(map),
        other => anyhow::bail!(
            "not a sidecar: {} where a JSON object belongs",
            fourk_api::json_kind(&other)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sidecar_that_is_not_an_object_is_an_error_not_a_panic() {
        for text in [&b"7"[..], b"\"prompt\"", b"[]", b"null", b"true"] {
            let err = annotated(text, "transparency", &1).unwrap_err();
            assert!(err.to_string().contains("not a sidecar"), "{err}");
        }
        let out = annotated(br#"{"a": 1}"#, "b", &2).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            serde_json::json!({"a": 1, "b": 2})
        );
    }
}
