//! One request to the OpenAI-shaped image endpoints (the Image API or the Responses API's
//! image tool), and what every provider's path shares: the request built from a spec and
//! checked against the model's rules, the output names and the checks before anything is
//! sent, and the dry run's shape. [`crate::generate`] and [`crate::edit`] choose the path
//! (OpenAI-shaped, Gemini, the transparency decision); the paths build on this module.

use std::path::{Path, PathBuf};

use fourk_api::{Background, Capabilities, ImageRequest, ModelCaps, OutputFormat, Size, Violation, Warning};

use crate::UsageError;
use crate::route;
use crate::save::{ImageSummary, Job, indexed_path};
use crate::send::{self, Outgoing, Recorder};
use crate::session::Session;
use crate::sidecar::SentRequest;
use crate::spec::GenerateSpec;

/// What one request of a `--transparent` run changes in the user's request: the prompt (a
/// key-colour suffix), the background, the format and the output path.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The prompt to send instead of the user's.
    pub prompt: Option<String>,
    /// The background to send instead.
    pub background: Option<Background>,
    /// The output format to send instead.
    pub format: Option<OutputFormat>,
    /// Where to save instead.
    pub out: Option<PathBuf>,
}

/// Build the request from the arguments and check it against the model's rules.
///
/// # Errors
/// [`UsageError`] naming every broken rule, with size suggestions.
pub fn build_request<'c>(
    spec: &GenerateSpec,
    caps: &'c Capabilities,
) -> anyhow::Result<(ImageRequest, &'c ModelCaps, Vec<Warning>)> {
    build_request_with(spec, caps, &Overrides::default())
}

/// [`build_request`] with `over` applied (one request of a `--transparent` run).
///
/// # Errors
/// [`UsageError`] naming every broken rule, with size suggestions.
pub fn build_request_with<'c>(
    spec: &GenerateSpec,
    caps: &'c Capabilities,
    over: &Overrides,
) -> anyhow::Result<(ImageRequest, &'c ModelCaps, Vec<Warning>)> {
    let out = over.out.as_deref().or(spec.out.as_deref());
    let format = output_format(over.format.or(spec.image.format), out)?;
    let mut req = ImageRequest::new(&spec.model, over.prompt.as_deref().unwrap_or(&spec.prompt));
    req.size = Some(spec.size);
    req.quality = spec.image.quality;
    req.output_format = format;
    req.output_compression = spec.image.compression;
    req.background = over.background.or(spec.image.background);
    req.moderation = spec.moderation;
    req.n = spec.n;
    req.safety_identifier.clone_from(&spec.safety_identifier);
    if spec.stream.stream {
        req.stream = Some(true);
        req.partial_images = spec.stream.partials;
    }
    match req.validate(caps) {
        Ok((model, warnings)) => Ok((req, model, warnings)),
        Err(violations) => Err(rules_error(&spec.model, &violations, caps, spec.size)),
    }
}

/// The output format from `--format` and `--out`'s extension, which must agree.
///
/// # Errors
/// [`UsageError`] when they disagree.
pub fn output_format(flag: Option<OutputFormat>, out: Option<&Path>) -> anyhow::Result<Option<OutputFormat>> {
    let from_out = out
        .filter(|p| !crate::outputs::names_folder(p))
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .and_then(OutputFormat::from_extension);
    if let (Some(flag), Some(ext)) = (flag, from_out)
        && flag != ext
    {
        return Err(UsageError(format!(
            "--format {flag} does not match the extension of --out ({})\n\nhint: name the file .{} or drop --format",
            out.map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
            flag.extension()
        ))
        .into());
    }
    Ok(flag.or(from_out))
}

/// A [`UsageError`] listing every broken rule, with size suggestions when the size is wrong.
pub fn rules_error(model: &str, violations: &[Violation], caps: &Capabilities, size: Size) -> anyhow::Error {
    let mut msg = format!(
        "the request breaks {} rule(s) of {model}; nothing was sent:",
        violations.len(),
    );
    for v in violations {
        msg.push_str(&format!("\n  {}: {}", v.rule.id(), v.message));
    }
    if violations.iter().any(|v| v.param == "size")
        && let (Ok(m), Some((w, h))) = (caps.model(model), size.dims())
    {
        let s = m.suggest(w, h);
        if !s.is_empty() {
            msg.push_str(&format!(
                "\n\nhint: nearest valid sizes: {} (use --size)",
                s.join(", ")
            ));
        }
    }
    UsageError(msg).into()
}

/// Where a request's (first) image goes: `--out` resolved by the rule of [`crate::outputs`],
/// or a default `fourk-...` name that no other run picks.
///
/// # Errors
/// [`UsageError`] for an extension fourk does not write.
pub fn out_path(out: Option<&Path>, format: OutputFormat, n: usize) -> anyhow::Result<PathBuf> {
    crate::outputs::resolve(out, "fourk", format, |base| request_files(base, n, format, None))
}

/// Every file one request may write: each image with its sidecar and `.rejected` names, and
/// the kept partial images.
#[must_use]
pub fn request_files(base: &Path, n: usize, format: OutputFormat, partials: Option<u8>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (0..n)
        .flat_map(|i| crate::outputs::image_files(&indexed_path(base, i, n, format)))
        .collect();
    files.extend((0..u32::from(partials.unwrap_or(0))).map(|k| crate::save::partial_path(base, k, format)));
    files
}

/// [`crate::outputs::check`] for the files of `job` before it is sent.
///
/// # Errors
/// [`UsageError`] naming the path, the rule and the fix.
pub fn check_outputs(job: &Job, n: usize, partials: Option<u8>) -> anyhow::Result<()> {
    let files = request_files(&job.base, n, job.format, partials);
    let worst = crate::outputs::worst_image_bytes(job.dims) * n as u64;
    crate::outputs::check(&files, job.force, worst)
}

/// What a dry run of a generation shows: the exact body that would be sent (the Image API
/// request, or the Responses API request), its estimate, and the checks' warnings. With
/// `--transparent`, the first request the transparency decision would send.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The body, as JSON, exactly as it would leave (image blobs summarised for edits).
    pub body: serde_json::Value,
    /// The predicted usage and dollars (`None` without prices or a token rule).
    pub estimate: Option<send::Estimate>,
    /// What the checks warned about (experimental sizes, options the API ignores).
    pub warnings: Vec<Warning>,
}

/// One generation request: the user's request with `over` applied.
pub async fn generate_with(
    spec: &GenerateSpec,
    caps: &Capabilities,
    over: &Overrides,
    rec: &Recorder,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let (req, model, warnings) = build_request_with(spec, caps, over)?;
    for w in &warnings {
        tracing::warn!("{}", w.message);
    }
    let format = req.effective_format();
    let estimate = send::predict(model, &req.prompt, req.size, req.quality, req.n.unwrap_or(1), &[]);
    if let Some((w, h)) = req.size.and_then(Size::dims) {
        send::warn_short_timeout(model, w, h, req.quality, spec.endpoint.timeout);
    }
    let job = Job {
        route: fourk_api::RouteLabel::ImagesGenerate,
        stream: spec.stream.stream,
        endpoint: String::new(),
        provider: crate::sidecar::ProviderRecord::default(),
        model: req.model.clone(),
        price: model.price,
        request: SentRequest::Generate(req.clone()),
        inputs: Vec::new(),
        warnings,
        dims: req.size.and_then(Size::dims),
        format,
        transparent: req.background == Some(Background::Transparent),
        base: out_path(
            over.out.as_deref().or(spec.out.as_deref()),
            format,
            usize::from(req.n.unwrap_or(1)),
        )?,
        force: spec.force,
    };
    let partials = spec
        .stream
        .keep_partials
        .then_some(spec.stream.partials.unwrap_or(0));
    check_outputs(&job, usize::from(req.n.unwrap_or(1)), partials)?;
    if let (Some(e), Some((w, h))) = (&estimate, req.size.and_then(Size::dims)) {
        tracing::info!(
            "requesting {} x {w}x{h} {} from {} (estimated {} output tokens, ~${:.3}{})",
            req.n.unwrap_or(1),
            req.quality
                .map_or("auto quality".to_owned(), |q| format!("{q} quality")),
            req.model,
            e.usage.output_tokens,
            e.cost.usd,
            if req.quality.is_none() {
                format!(", counting auto as {}", model.highest_quality())
            } else {
                String::new()
            }
        );
    }
    let base = job.base.clone();
    let keep = spec.stream.keep_partials.then_some((base.as_path(), format));
    let key = send::usage_key(
        &req.model,
        req.quality.map(|q| q.as_str()),
        req.size.map(|s| s.to_string()).as_deref(),
        u32::from(req.n.unwrap_or(1)),
    );
    let rr = route::for_request(&spec.route, caps, &req, &[], None)?;
    let out = rr.as_ref().map_or(Outgoing::Generate(&req), Outgoing::Responses);
    let session = Session::connect(&spec.endpoint, caps).await?;
    let result = send::send(&session.client, rec, job, out, &key, estimate.as_ref(), keep).await;
    session.close().await;
    result
}
