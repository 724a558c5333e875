//! `fourk generate`: check, send, save atomically, verify, record.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fourk_api::{
    Background, Capabilities, Cost, ImageRequest, ModelCaps, OutputFormat, Size, Violation, Warning,
};

use super::deliver::{self, ImageSummary, Job};
use super::route::{self, ToolOptions};
use super::session::Session;
use crate::UsageError;
use crate::cli::{GenerateArgs, Route};
use crate::exit::Exit;
use crate::output::Printer;
use crate::sidecar::SentRequest;

pub use super::deliver::indexed_path;
pub use super::transparent::{TransparentArgs, TransparentVia};

/// What one request of a `--transparent` run changes in the user's request: the prompt (a
/// key-colour suffix), the background, the format and the output path.
#[derive(Debug, Clone, Default)]
pub(super) struct Overrides {
    pub(super) prompt: Option<String>,
    pub(super) background: Option<Background>,
    pub(super) format: Option<OutputFormat>,
    pub(super) out: Option<PathBuf>,
}

/// Build the request from the arguments and check it against the model's rules.
///
/// # Errors
/// [`UsageError`] naming every broken rule, with size suggestions.
pub fn build_request<'c>(
    args: &GenerateArgs,
    caps: &'c Capabilities,
) -> anyhow::Result<(ImageRequest, &'c ModelCaps, Vec<Warning>)> {
    build_request_with(args, caps, &Overrides::default())
}

fn build_request_with<'c>(
    args: &GenerateArgs,
    caps: &'c Capabilities,
    over: &Overrides,
) -> anyhow::Result<(ImageRequest, &'c ModelCaps, Vec<Warning>)> {
    let out = over.out.as_deref().or(args.out.as_deref());
    let format = output_format(over.format.or(args.format), out)?;
    let mut req = ImageRequest::new(&args.model, over.prompt.as_deref().unwrap_or(&args.prompt));
    req.size = Some(args.size);
    req.quality = args.quality;
    req.output_format = format;
    req.output_compression = args.compression;
    req.background = over.background.or(args.background);
    req.moderation = args.moderation;
    req.n = args.n;
    req.safety_identifier.clone_from(&args.safety_identifier);
    if args.stream.stream {
        req.stream = Some(true);
        req.partial_images = args.stream.partials;
    }
    match req.validate(caps) {
        Ok((model, warnings)) => Ok((req, model, warnings)),
        Err(violations) => Err(rules_error(&args.model, &violations, caps, args.size)),
    }
}

/// The output format from `--format` and `--out`'s extension, which must agree.
///
/// # Errors
/// [`UsageError`] when they disagree.
pub fn output_format(flag: Option<OutputFormat>, out: Option<&Path>) -> anyhow::Result<Option<OutputFormat>> {
    let from_out = out
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

/// The Image API request as the tool options of the Responses API.
fn tool_options(req: &ImageRequest) -> ToolOptions {
    ToolOptions {
        size: req.size,
        quality: req.quality,
        output_format: req.output_format,
        output_compression: req.output_compression,
        background: req.background,
        moderation: req.moderation,
        partial_images: req.partial_images,
        n: req.n,
        stream: req.stream == Some(true),
    }
}

/// `fourk-<unix seconds>.<ext>` in the current folder.
#[must_use]
pub fn default_out(format: OutputFormat) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from(format!("fourk-{secs}.{}", format.extension()))
}

/// Generate, save, verify and record. Returns one summary per image and whether all verified.
/// With `--transparent`, the transparency decision runs (see [`super::transparent`]).
///
/// # Errors
/// Usage errors before sending; client errors; IO errors while saving.
pub async fn generate(args: &GenerateArgs, caps: &Capabilities) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    if args.transparency.transparent {
        return super::transparent::generate(args, caps).await;
    }
    generate_with(args, caps, &Overrides::default()).await
}

/// One generation request: the user's request with `over` applied.
pub(super) async fn generate_with(
    args: &GenerateArgs,
    caps: &Capabilities,
    over: &Overrides,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let (req, model, warnings) = build_request_with(args, caps, over)?;
    for w in &warnings {
        tracing::warn!("{}", w.message);
    }
    let format = req.effective_format();
    if let (Some(p), Some((w, h))) = (model.price, req.size.and_then(Size::dims)) {
        let q = req.quality.unwrap_or(fourk_api::Quality::Auto);
        if let Some(u) = fourk_api::cost::predict_usage(model, &req.prompt, w, h, q, req.n.unwrap_or(1)) {
            let c = Cost::from_usage(&u, &p, false);
            tracing::info!(
                "requesting {} x {w}x{h} {} from {} (estimated {} output tokens, ~${:.3}{})",
                req.n.unwrap_or(1),
                req.quality
                    .map_or("auto quality".to_owned(), |q| format!("{q} quality")),
                req.model,
                u.output_tokens,
                c.usd,
                if req.quality.is_none() {
                    ", counting auto as high"
                } else {
                    ""
                }
            );
        }
    }
    let job = Job {
        route: "images.generate",
        stream: args.stream.stream,
        endpoint: String::new(),
        model: req.model.clone(),
        price: model.price,
        request: SentRequest::Generate(req.clone()),
        inputs: Vec::new(),
        warnings,
        dims: req.size.and_then(Size::dims),
        format,
        transparent: req.background == Some(Background::Transparent),
        base: over
            .out
            .clone()
            .or_else(|| args.out.clone())
            .unwrap_or_else(|| default_out(format)),
    };
    let base = job.base.clone();
    let keep = args.stream.keep_partials.then_some((base.as_path(), format));
    let session = Session::connect(&args.endpoint, caps).await?;
    let client = &session.client;
    let result = async {
        match args.route.route {
            Route::Images if args.stream.stream => {
                let job = Job {
                    endpoint: client.config().endpoint("images/generations"),
                    ..job
                };
                let events = client.generate_stream(&req).await?;
                deliver::save_image_stream(&job, events, keep).await
            }
            Route::Images => {
                let job = Job {
                    endpoint: client.config().endpoint("images/generations"),
                    ..job
                };
                let resp = client.generate(&req).await?;
                deliver::save_images_response(&job, &resp)
            }
            Route::Responses => {
                let rr = route::build(
                    &args.route,
                    caps,
                    &req.model,
                    &req.prompt,
                    tool_options(&req),
                    &[],
                    None,
                )?;
                deliver::via_responses(client, job, &rr, keep).await
            }
        }
    }
    .await;
    session.close().await;
    result
}

pub(super) async fn run(args: &GenerateArgs, caps: &Capabilities) -> anyhow::Result<Exit> {
    if args.dry_run {
        // With --transparent, the first request the decision would send.
        let over = if args.transparency.transparent {
            super::transparent::first_request(args, caps)?
        } else {
            Overrides::default()
        };
        let (req, _, warnings) = build_request_with(args, caps, &over)?;
        for w in &warnings {
            tracing::warn!("{}", w.message);
        }
        let body = match args.route.route {
            Route::Images => serde_json::to_string(&req)?,
            Route::Responses => {
                let rr = route::build(
                    &args.route,
                    caps,
                    &req.model,
                    &req.prompt,
                    tool_options(&req),
                    &[],
                    None,
                )?;
                serde_json::to_string(&rr)?
            }
        };
        Printer.line(&body);
        return Ok(Exit::Success);
    }
    let record = serde_json::json!({
        "prompt": args.prompt,
        "model": args.model,
        "size": args.size.to_string(),
        "quality": args.quality.map(|q| format!("{q:?}").to_lowercase()),
        "n": args.n,
        "route": format!("{:?}", args.route.route).to_lowercase(),
        "transparent": args.transparency.transparent,
    });
    let (images, all_ok) = crate::ledger::record_outcome("generate", &record, generate(args, caps).await)?;
    Ok(deliver::report(&images, all_ok, args.json))
}
