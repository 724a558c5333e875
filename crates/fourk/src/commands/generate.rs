//! `fourk generate`: check, send, save atomically, verify, record.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fourk_api::{Background, Capabilities, ImageRequest, ModelCaps, OutputFormat, Size, Violation, Warning};

use crate::UsageError;
use crate::cli::{GenerateArgs, Route};
use crate::exit::Exit;
use crate::output::Printer;
use fourk_core::route::{self, ToolOptions};
use fourk_core::save::{ImageSummary, Job};
use fourk_core::send::{self, Outgoing, Recorder};
use fourk_core::session::Session;
use fourk_core::sidecar::SentRequest;

pub use super::transparent::{TransparentArgs, TransparentVia};
pub use fourk_core::save::indexed_path;

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
/// With `--transparent`, the transparency decision runs (see [`super::transparent`]). Every
/// request is on record through `rec` before it is sent.
///
/// # Errors
/// Usage errors before sending; client errors; IO errors while saving.
pub async fn generate(
    args: &GenerateArgs,
    caps: &Capabilities,
    rec: &Recorder,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    if args.transparency.transparent {
        return super::transparent::generate(args, caps, rec).await;
    }
    generate_with(args, caps, &Overrides::default(), rec).await
}

/// One generation request: the user's request with `over` applied.
pub(super) async fn generate_with(
    args: &GenerateArgs,
    caps: &Capabilities,
    over: &Overrides,
    rec: &Recorder,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let (req, model, warnings) = build_request_with(args, caps, over)?;
    for w in &warnings {
        tracing::warn!("{}", w.message);
    }
    let format = req.effective_format();
    let estimate = send::predict(model, &req.prompt, req.size, req.quality, req.n.unwrap_or(1), &[]);
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
                ", counting auto as high"
            } else {
                ""
            }
        );
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
    let key = send::usage_key(
        &req.model,
        req.quality.map(|q| q.as_str()),
        req.size.map(|s| s.to_string()).as_deref(),
        u32::from(req.n.unwrap_or(1)),
    );
    let rr = match args.route.route {
        Route::Images => None,
        Route::Responses => Some(route::build(
            &args.route.spec(),
            caps,
            &req.model,
            &req.prompt,
            tool_options(&req),
            &[],
            None,
        )?),
    };
    let out = rr.as_ref().map_or(Outgoing::Generate(&req), Outgoing::Responses);
    let session = Session::connect(&args.endpoint.spec(), caps).await?;
    let result = send::send(&session.client, rec, job, out, &key, estimate.as_ref(), keep).await;
    session.close().await;
    result
}

pub(super) async fn run(args: &GenerateArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let caps = &fk.caps;
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
                    &args.route.spec(),
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
    let rec = Recorder::new(fk.ledger_path(), "generate", record);
    let result = generate(args, caps, &rec).await;
    rec.finish(&result);
    let (images, all_ok) = result?;
    Ok(crate::output::report(&images, all_ok, args.json))
}
