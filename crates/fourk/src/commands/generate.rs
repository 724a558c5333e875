//! `fourk generate`: check, send, save atomically, verify, record.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use fourk_api::{
    Background, Capabilities, Cost, ImageRequest, ModelCaps, OutputFormat, Size, Usage, Warning,
};
use fourk_client::{Client, Config};
use fourk_imaging::Expect;
use serde::Serialize;

use crate::UsageError;
use crate::cli::{EndpointArgs, GenerateArgs};
use crate::exit::Exit;
use crate::output::Printer;
use crate::sidecar::{self, Checks, ResponseMeta, Sidecar};

/// The key the in-process emulator is called with when the user has none; it is not a secret.
const EMULATOR_KEY: &str = "sk-fourk-emulator";

/// What `--json` prints for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    /// Where the bytes are (a `.rejected.` name when verification failed).
    pub path: PathBuf,
    /// Actual width.
    pub width: Option<u32>,
    /// Actual height.
    pub height: Option<u32>,
    /// Actual format.
    pub format: Option<String>,
    /// True when the file matched the request and decoded fully.
    pub verified: bool,
    /// The sidecar's path.
    pub sidecar: PathBuf,
    /// Tokens for the whole request.
    pub usage: Option<Usage>,
    /// Dollars for the whole request.
    pub cost: Option<Cost>,
    /// Where the image came from: `openai` or `emulator`.
    pub source: &'static str,
}

/// Build the request from the arguments and check it against the model's rules.
///
/// # Errors
/// [`UsageError`] naming every broken rule, with size suggestions.
pub fn build_request<'c>(
    args: &GenerateArgs,
    caps: &'c Capabilities,
) -> anyhow::Result<(ImageRequest, &'c ModelCaps, Vec<Warning>)> {
    let from_out = args
        .out
        .as_deref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .and_then(OutputFormat::from_extension);
    if let (Some(flag), Some(ext)) = (args.format, from_out)
        && flag != ext
    {
        return Err(UsageError(format!(
            "--format {flag} does not match the extension of --out ({})\n\nhint: name the file .{} or drop --format",
            args.out.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
            flag.extension()
        ))
        .into());
    }
    let mut req = ImageRequest::new(&args.model, &args.prompt);
    req.size = Some(args.size);
    req.quality = args.quality;
    req.output_format = args.format.or(from_out);
    req.output_compression = args.compression;
    req.background = args.background;
    req.moderation = args.moderation;
    req.n = args.n;
    req.safety_identifier.clone_from(&args.safety_identifier);
    match req.validate(caps) {
        Ok((model, warnings)) => Ok((req, model, warnings)),
        Err(violations) => {
            let mut msg = format!(
                "the request breaks {} rule(s) of {}; nothing was sent:",
                violations.len(),
                args.model
            );
            for v in &violations {
                msg.push_str(&format!("\n  {}: {}", v.rule.id(), v.message));
            }
            if violations.iter().any(|v| v.param == "size")
                && let (Ok(m), Some((w, h))) = (caps.model(&args.model), args.size.dims())
            {
                let s = m.suggest(w, h);
                if !s.is_empty() {
                    msg.push_str(&format!(
                        "\n\nhint: nearest valid sizes: {} (use --size)",
                        s.join(", ")
                    ));
                }
            }
            Err(UsageError(msg).into())
        }
    }
}

fn default_out(format: OutputFormat) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from(format!("fourk-{secs}.{}", format.extension()))
}

/// The path for image `i` of `n`: `hero.png`, or `hero-1.png`, `hero-2.png`...
#[must_use]
pub fn indexed_path(base: &Path, i: usize, n: usize, format: OutputFormat) -> PathBuf {
    let base = if base.extension().is_none() {
        base.with_extension(format.extension())
    } else {
        base.to_path_buf()
    };
    if n <= 1 {
        return base;
    }
    let stem = base.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
    let ext = base
        .extension()
        .and_then(|s| s.to_str())
        .unwrap_or(format.extension());
    base.with_file_name(format!("{stem}-{}.{ext}", i + 1))
}

/// A client for the chosen endpoint, and the in-process emulator when one was started.
async fn connect(
    endpoint: &EndpointArgs,
    caps: &Capabilities,
) -> anyhow::Result<(Client, Option<fourk_emulator::RunningEmulator>)> {
    let mut config = Config::from_env().with_timeout(std::time::Duration::from_secs(endpoint.timeout));
    let mut emulator = None;
    if endpoint.emulator {
        let running = fourk_emulator::spawn(
            ([127, 0, 0, 1], 0).into(),
            fourk_emulator::EmulatorConfig {
                capabilities: caps.clone(),
                ..Default::default()
            },
        )
        .await
        .context("starting the in-process emulator")?;
        tracing::info!(
            "using the offline emulator at {}: images are rendered procedurally, not by OpenAI",
            running.base_url()
        );
        config = config.with_base_url(running.base_url());
        if config.api_key.is_none() {
            config = config.with_api_key(EMULATOR_KEY);
        }
        emulator = Some(running);
    } else if let Some(url) = &endpoint.base_url {
        config = config.with_base_url(url.clone());
    }
    Ok((Client::new(config)?, emulator))
}

/// Generate, save, verify and record. Returns one summary per image and whether all verified.
///
/// # Errors
/// Usage errors before sending; client errors; IO errors while saving.
pub async fn generate(args: &GenerateArgs, caps: &Capabilities) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let (req, model, warnings) = build_request(args, caps)?;
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
    let (client, emulator) = connect(&args.endpoint, caps).await?;
    let endpoint = client.config().endpoint("images/generations");
    let resp = client.generate(&req).await?;
    let parsed = resp.images()?;
    let images: Vec<_> = parsed.data.iter().filter_map(|d| d.b64_json.as_deref()).collect();
    if images.is_empty() {
        return Err(fourk_client::ClientError::InvalidResponse {
            message: "no b64_json image in data[]".into(),
            request_id: resp.request_id.clone(),
        }
        .into());
    }
    let usage = parsed.usage;
    let cost = match (usage, model.price) {
        (Some(u), Some(p)) => Some(Cost::from_usage(&u, &p, true)),
        _ => None,
    };
    let (w, h) = match req.size.and_then(Size::dims) {
        Some(d) => (Some(d.0), Some(d.1)),
        None => (None, None),
    };
    let expect = Expect {
        width: w,
        height: h,
        format: Some(format),
        alpha: (req.background == Some(Background::Transparent)).then_some(true),
    };
    let base = args.out.clone().unwrap_or_else(|| default_out(format));
    let meta = ResponseMeta {
        created: parsed.created,
        request_id: resp.request_id.clone(),
        processing_ms: resp.processing_ms,
        elapsed_ms: resp.elapsed.as_millis(),
        background: parsed.background.as_deref().map(str::to_owned),
        output_format: parsed.output_format.as_deref().map(str::to_owned),
        quality: parsed.quality.as_deref().map(str::to_owned),
        size: parsed.size.as_deref().map(str::to_owned),
        rate_limits: resp.rate_limits.clone(),
        emulator: resp.emulator.clone(),
    };
    let mut out = Vec::new();
    let mut all_ok = true;
    for (i, b64) in images.iter().enumerate() {
        let path = indexed_path(&base, i, images.len(), format);
        let saved = fourk_imaging::save_verified(&path, b64, &expect)
            .with_context(|| format!("saving image {} of {} to {}", i + 1, images.len(), path.display()))?;
        if saved.rejected {
            all_ok = false;
            let failed: Vec<String> = saved
                .report
                .checks
                .iter()
                .filter(|c| !c.pass)
                .map(|c| format!("{}: requested {}, got {}", c.name, c.expected, c.actual))
                .chain(
                    saved
                        .report
                        .decode_error
                        .iter()
                        .map(|e| format!("corrupt image: {e}")),
                )
                .collect();
            tracing::error!(
                "image {} does not match the request ({}); kept as {} (request {})",
                i + 1,
                failed.join("; "),
                saved.path.display(),
                resp.request_id.as_deref().unwrap_or("unknown")
            );
        }
        let checks = Checks::from_report(&req, saved.report);
        let car = Sidecar {
            sidecar_version: sidecar::SIDECAR_VERSION,
            fourk_version: env!("CARGO_PKG_VERSION"),
            image: saved
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            index: i,
            route: "images.generate",
            endpoint: endpoint.clone(),
            model: req.model.clone(),
            request: req.clone(),
            response: meta.clone(),
            usage,
            cost,
            checks: checks.clone(),
            warnings: warnings.clone(),
        };
        let sidecar_path = sidecar::write(&saved.path, &car)?;
        out.push(ImageSummary {
            path: saved.path,
            width: checks.actual_width,
            height: checks.actual_height,
            format: checks.actual_format,
            verified: checks.verified,
            sidecar: sidecar_path,
            usage,
            cost,
            source: if resp.emulator.is_some() {
                "emulator"
            } else {
                "openai"
            },
        });
    }
    drop(parsed);
    if let Some(e) = emulator {
        if let Err(err) = e.shutdown().await {
            tracing::debug!("emulator shutdown: {err}");
        }
    }
    Ok((out, all_ok))
}

pub(super) async fn run(args: &GenerateArgs, caps: &Capabilities) -> anyhow::Result<Exit> {
    let p = Printer;
    if args.dry_run {
        let (req, _, warnings) = build_request(args, caps)?;
        for w in &warnings {
            tracing::warn!("{}", w.message);
        }
        p.line(&serde_json::to_string(&req)?);
        return Ok(Exit::Success);
    }
    let (images, all_ok) = generate(args, caps).await?;
    if args.json {
        if images.len() == 1 {
            p.json(&images[0]);
        } else {
            p.json(&images);
        }
    } else {
        for img in &images {
            p.line(&img.path.display().to_string());
        }
        if let Some(first) = images.first() {
            let cost = first.cost.map_or(String::new(), |c| {
                format!(", ${:.3}{}", c.usd, if c.estimate { " (estimate)" } else { "" })
            });
            tracing::info!(
                "{} image(s), {}{cost}; sidecar {}",
                images.len(),
                if all_ok { "verified" } else { "NOT verified" },
                first.sidecar.display()
            );
        }
    }
    Ok(if all_ok { Exit::Success } else { Exit::CheckFailed })
}
