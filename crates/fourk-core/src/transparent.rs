//! A transparent PNG or WebP by the best route available (`fourk generate --transparent`).
//!
//! The decision tree, recorded in the sidecar's `transparency` object:
//!
//! 1. Where the model's capability entry allows `background: transparent` (`supported`, or
//!    `preview` as for gpt-image-2) and `--transparent-via` is not `key`, ask for it natively
//!    (with png or webp output) and verify that the file really has an alpha channel with
//!    transparent pixels.
//! 2. Otherwise, or when that request is refused or its check fails (and `--transparent-via`
//!    is not `native`), generate again on a flat key colour chosen to contrast with the
//!    subject (green, unless the prompt mentions green things, then magenta, then blue), with
//!    `background: opaque`, and cut the key out locally ([`fourk_imaging::cutout()`]). The
//!    key-colour original is kept as `<out stem>.key.png`, the cut-out file is verified like
//!    any other output and its [`fourk_imaging::CutoutReport`] goes into the sidecar.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fourk_api::{Background, Capabilities, OutputFormat, TransparentSupport};
use fourk_imaging::{CutoutReport, Expect, KeySpec};
use image::DynamicImage;
use serde::Serialize;

use crate::UsageError;
use crate::image_api::{Overrides, generate_with, out_path, output_format};
use crate::ledger::LinkKind;
use crate::route::Route;
use crate::save::ImageSummary;
use crate::send::Recorder;
use crate::sidecar::{self, Checks};
use crate::spec::GenerateSpec;
pub use crate::spec::TransparentVia;

/// Below this share of fully transparent pixels the key did not come out.
const MIN_TRANSPARENT_SHARE: f64 = 0.01;
/// Above this share nothing of the subject is left.
const MAX_TRANSPARENT_SHARE: f64 = 0.99;

/// What the decision tree did, for the sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct Transparency {
    /// How the delivered file got its transparency: `native` or `chroma_key` (`none` when
    /// every step failed).
    pub method: &'static str,
    /// What was allowed (`--transparent-via`).
    pub allowed: TransparentVia,
    /// The route the requests took: `images.generate` or `responses`.
    pub route: &'static str,
    /// The model's `transparent` capability: `supported`, `preview` or `unsupported`.
    pub model_support: TransparentSupport,
    /// Why the first step was chosen.
    pub why: String,
    /// Each step taken, in order.
    pub steps: Vec<Step>,
    /// Dollars for every request the decision made, when known.
    pub total_cost_usd: Option<f64>,
}

/// One step of the decision.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `native` or `chroma_key`.
    pub method: &'static str,
    /// The file this step produced (relative to the sidecar).
    pub image: Option<String>,
    /// Whether that file passed its checks.
    pub verified: bool,
    /// What happened, in words: the failed checks, or why the next step followed.
    pub outcome: String,
    /// The key colour (`#RRGGBB`), for the chroma-key step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Why that key colour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_reason: Option<String>,
    /// What was appended to the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_suffix: Option<String>,
    /// The key-colour original the cutout was made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_image: Option<String>,
    /// The cutout's QA numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutout: Option<CutoutReport>,
    /// Each QA rule on the cutout and whether it held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub qa: Vec<QaCheck>,
}

impl Step {
    /// A native step: the file it made (if any), whether it verified, and what happened.
    fn native(image: Option<String>, verified: bool, outcome: String) -> Self {
        Self {
            method: "native",
            image,
            verified,
            outcome,
            key: None,
            key_reason: None,
            prompt_suffix: None,
            key_image: None,
            cutout: None,
            qa: Vec::new(),
        }
    }
}

/// One QA rule on a cutout.
#[derive(Debug, Clone, Serialize)]
pub struct QaCheck {
    /// Stable id.
    pub name: &'static str,
    /// Whether it held.
    pub pass: bool,
    /// The rule and the value, in words.
    pub detail: String,
}

/// The first step: native or chroma key, and why.
#[must_use]
pub fn decide(model: &str, support: TransparentSupport, via: TransparentVia, route: Route) -> (bool, String) {
    let route = match route {
        Route::Images => "the Image API",
        Route::Responses => "the Responses API tool",
    };
    match (via, support) {
        (TransparentVia::Key, _) => (false, "--transparent-via key asks for a chroma key".into()),
        (_, TransparentSupport::Unsupported) => (
            false,
            format!("{model} does not support background=transparent; using a chroma key"),
        ),
        (_, TransparentSupport::Preview) => (
            true,
            format!(
                "{model} lists background=transparent as preview: asked for natively through {route} and the alpha channel is verified{}",
                if via == TransparentVia::Auto {
                    ", with a chroma key as the fallback"
                } else {
                    ""
                }
            ),
        ),
        (_, TransparentSupport::Supported) => (
            true,
            format!("{model} supports background=transparent through {route}; the alpha channel is verified"),
        ),
    }
}

/// A key colour that contrasts with the subject: green, unless the prompt mentions green
/// things; then magenta, unless it mentions magenta things; then blue.
#[must_use]
pub fn choose_key(prompt: &str) -> ([u8; 3], &'static str, String) {
    const GREENS: &[&str] = &[
        "green", "grass", "leaf", "leaves", "foliage", "tree", "forest", "jungle", "plant", "fern", "moss",
        "frog", "lime", "emerald", "jade", "mint", "olive", "cactus", "lettuce", "broccoli", "cucumber",
        "avocado", "meadow", "lawn", "shrub", "bush", "ivy", "herb", "pea", "kiwi", "turtle", "lizard",
        "dragon",
    ];
    const MAGENTAS: &[&str] = &[
        "magenta", "pink", "purple", "violet", "fuchsia", "lavender", "orchid", "lilac", "plum", "flamingo",
        "rose", "berry",
    ];
    let words: Vec<String> = prompt
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mentions = |list: &[&str]| {
        words
            .iter()
            .find(|w| {
                let w = w.as_str();
                list.iter().any(|g| *g == w || w.strip_suffix('s') == Some(*g))
            })
            .cloned()
    };
    match (mentions(GREENS), mentions(MAGENTAS)) {
        (None, _) => ([0, 255, 0], "green", "green contrasts with the subject".into()),
        (Some(g), None) => (
            [255, 0, 255],
            "magenta",
            format!("the prompt mentions '{g}', so magenta rather than green"),
        ),
        (Some(g), Some(m)) => (
            [0, 0, 255],
            "blue",
            format!("the prompt mentions '{g}' and '{m}', so blue rather than green or magenta"),
        ),
    }
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02X}{:02X}{:02X}", c[0], c[1], c[2])
}

/// The prompt suffix asking for a flat key backdrop.
#[must_use]
pub fn key_suffix(key: [u8; 3], name: &str) -> String {
    let h = hex(key);
    format!(
        "\n\nPlace the subject on a perfectly flat, uniform chroma-key background of solid {h} ({name}), edge to edge, with no shadows, gradients, reflections, texture or vignette on it. Keep the whole subject inside the frame with a margin, and use no {name} ({h}) anywhere on the subject."
    )
}

/// `hero.png` -> `hero.key.png`.
fn key_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
    out.with_file_name(format!("{stem}.key.png"))
}

fn file_name(p: &Path) -> Option<String> {
    p.file_name().map(|f| f.to_string_lossy().into_owned())
}

/// The checked format and path of the delivered file.
fn target(spec: &GenerateSpec) -> anyhow::Result<(OutputFormat, PathBuf)> {
    if spec.n.is_some_and(|n| n > 1) {
        return Err(UsageError(
            "transparent_n: --transparent makes one image per run (a fallback regenerates it); nothing was sent\n\nhint: drop -n, and run the command once per image".into(),
        )
        .into());
    }
    let format = output_format(spec.image.format, spec.out.as_deref())?.unwrap_or(OutputFormat::Png);
    if format == OutputFormat::Jpeg {
        return Err(UsageError(
            "transparent_format: --transparent needs png or webp output; JPEG has no alpha channel; nothing was sent\n\nhint: use --format png (or webp), or an --out name ending in .png".into(),
        )
        .into());
    }
    let out = out_path(spec.out.as_deref(), format, 1)?;
    Ok((format, out))
}

fn support(spec: &GenerateSpec, caps: &Capabilities) -> anyhow::Result<TransparentSupport> {
    Ok(caps
        .model(&spec.model)
        .map_err(|e| UsageError(format!("{e}; nothing was sent")))?
        .transparent)
}

/// The overrides of a native request.
fn native(format: OutputFormat, out: &Path) -> Overrides {
    Overrides {
        prompt: None,
        background: Some(Background::Transparent),
        format: Some(format),
        out: Some(out.to_path_buf()),
    }
}

/// The overrides of a key-colour request, with the key, its name and why.
fn keyed(spec: &GenerateSpec, out: &Path) -> (Overrides, [u8; 3], &'static str, String) {
    let (key, name, why) = choose_key(&spec.prompt);
    let over = Overrides {
        prompt: Some(format!("{}{}", spec.prompt, key_suffix(key, name))),
        background: Some(Background::Opaque),
        format: Some(OutputFormat::Png),
        out: Some(key_path(out)),
    };
    (over, key, name, why)
}

/// The first request the decision would send, for `--dry-run`.
///
/// # Errors
/// As [`generate`] before anything is sent.
pub fn first_request(spec: &GenerateSpec, caps: &Capabilities) -> anyhow::Result<Overrides> {
    let (format, out) = target(spec)?;
    let support = support(spec, caps)?;
    let via = spec.transparency.transparent_via;
    check_native_allowed(&spec.model, support, via)?;
    let (go_native, _) = decide(&spec.model, support, via, spec.route.route);
    Ok(if go_native {
        native(format, &out)
    } else {
        keyed(spec, &out).0
    })
}

fn check_native_allowed(model: &str, support: TransparentSupport, via: TransparentVia) -> anyhow::Result<()> {
    if via == TransparentVia::Native && support == TransparentSupport::Unsupported {
        return Err(UsageError(format!(
            "transparent_native: {model} does not support background=transparent; nothing was sent\n\nhint: use --transparent-via auto or key to cut a chroma key out locally"
        ))
        .into());
    }
    Ok(())
}

/// Whether the API refused the transparent background itself (so a chroma key may work).
fn refused_background(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|c| c.downcast_ref::<fourk_client::ClientError>())
        .any(|c| match c {
            fourk_client::ClientError::Api {
                status: 400,
                error: Some(e),
                ..
            } => e.param.as_deref().is_some_and(|p| p.contains("background")),
            _ => false,
        })
}

/// Add the `transparency` record to an image's sidecar.
fn annotate(summary: &ImageSummary, record: &Transparency) -> anyhow::Result<()> {
    sidecar::annotate(&summary.sidecar, "transparency", record)
}

/// The failed checks of a summary's sidecar, in words.
fn failed_checks(summary: &ImageSummary) -> String {
    let read = || -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary.sidecar).ok()?).ok()?;
        let details = &v["checks"]["details"];
        let mut out: Vec<String> = details["checks"]
            .as_array()?
            .iter()
            .filter(|c| c["pass"] == false)
            .map(|c| {
                format!(
                    "{}: expected {}, got {}",
                    c["name"].as_str().unwrap_or("?"),
                    c["expected"].as_str().unwrap_or("?"),
                    c["actual"].as_str().unwrap_or("?")
                )
            })
            .collect();
        if let Some(e) = details["decode_error"].as_str() {
            out.push(format!("corrupt image: {e}"));
        }
        Some(out.join("; "))
    };
    read()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "the file did not verify".into())
}

/// Run the decision tree (see the module docs). Returns the delivered image's summary and
/// whether it verified.
///
/// # Errors
/// Usage errors before sending, client errors that a chroma key cannot avoid, IO errors.
pub async fn generate(
    spec: &GenerateSpec,
    caps: &Capabilities,
    rec: &Recorder,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let (format, out) = target(spec)?;
    // The delivered file and the key-colour one a fallback writes, checked before the first
    // request.
    let files: Vec<PathBuf> = crate::outputs::image_files(&out)
        .into_iter()
        .chain(crate::outputs::image_files(&key_path(&out)))
        .collect();
    let dims = spec.size.dims();
    crate::outputs::check(&files, spec.force, 2 * crate::outputs::worst_image_bytes(dims))?;
    let support = support(spec, caps)?;
    let via = spec.transparency.transparent_via;
    check_native_allowed(&spec.model, support, via)?;
    let (go_native, why) = decide(&spec.model, support, via, spec.route.route);
    tracing::info!("--transparent: {why}");
    let mut record = Transparency {
        method: "none",
        allowed: via,
        route: match spec.route.route {
            Route::Images => "images.generate",
            Route::Responses => "responses",
        },
        model_support: support,
        why,
        steps: Vec::new(),
        total_cost_usd: None,
    };
    let add_cost = |total: Option<f64>, s: &ImageSummary| match (total, s.cost) {
        (t, None) => t,
        (t, Some(c)) => Some(t.unwrap_or(0.0) + c.usd),
    };
    let mut total = None;
    if go_native {
        match generate_with(spec, caps, &native(format, &out), rec).await {
            Ok((images, ok)) => {
                let first = images.first().context("the native request returned no image")?;
                total = add_cost(total, first);
                let outcome = if ok {
                    "the file has an alpha channel with transparent pixels".to_owned()
                } else {
                    failed_checks(first)
                };
                record
                    .steps
                    .push(Step::native(file_name(&first.path), ok, outcome));
                if ok || via == TransparentVia::Native {
                    if ok {
                        record.method = "native";
                    } else {
                        tracing::error!(
                            "the native transparent image failed its checks ({}); --transparent-via native allows no fallback",
                            record.steps[0].outcome
                        );
                    }
                    record.total_cost_usd = total;
                    annotate(first, &record)?;
                    return Ok((images, ok));
                }
                tracing::warn!(
                    "the native transparent image failed its checks ({}); kept as {}; generating on a key colour instead",
                    record.steps[0].outcome,
                    first.path.display()
                );
            }
            Err(e) if via == TransparentVia::Auto && refused_background(&e) => {
                tracing::warn!(
                    "the API refused background=transparent ({e:#}); generating on a key colour instead"
                );
                record
                    .steps
                    .push(Step::native(None, false, format!("refused: {e:#}")));
            }
            Err(e) => return Err(e),
        }
    }
    let (over, key, name, key_reason) = keyed(spec, &out);
    let suffix = key_suffix(key, name);
    tracing::info!("generating on a flat {name} ({}) key: {key_reason}", hex(key));
    let (images, ok) = generate_with(spec, caps, &over, rec).await?;
    let keyed_img = images
        .first()
        .context("the key-colour request returned no image")?;
    total = add_cost(total, keyed_img);
    let mut step = Step {
        method: "chroma_key",
        image: None,
        verified: false,
        outcome: String::new(),
        key: Some(hex(key)),
        key_reason: Some(key_reason),
        prompt_suffix: Some(suffix),
        key_image: file_name(&keyed_img.path),
        cutout: None,
        qa: Vec::new(),
    };
    if !ok {
        step.outcome = format!(
            "the key-colour image failed its checks ({}); no cutout made",
            failed_checks(keyed_img)
        );
        tracing::error!("{}", step.outcome);
        record.steps.push(step);
        record.total_cost_usd = total;
        annotate(keyed_img, &record)?;
        return Ok((images, false));
    }
    let mut summary = cut_out(keyed_img, key, format, spec.image.compression, &out, &mut step)?;
    if step.verified {
        record.method = "chroma_key";
    }
    record.steps.push(step);
    record.total_cost_usd = total;
    let ok = summary.verified;
    finish_sidecar(keyed_img, &summary, &record)?;
    rec.derived(keyed_img, &mut summary, LinkKind::ImageToCutout);
    Ok((vec![summary], ok))
}

/// Cut the key out of the saved key-colour image, encode, verify and save the result under
/// `out` (or its `.rejected.` name). Fills `step` and returns the summary (its sidecar path
/// is set, the file is written by [`finish_sidecar`]).
fn cut_out(
    keyed: &ImageSummary,
    key: [u8; 3],
    format: OutputFormat,
    compression: Option<u8>,
    out: &Path,
    step: &mut Step,
) -> anyhow::Result<ImageSummary> {
    let img = fourk_imaging::load_file(&keyed.path, &fourk_imaging::load_limits())
        .with_context(|| format!("reading the key-colour image {}", keyed.path.display()))?;
    let (rgba, report) = fourk_imaging::cutout(
        &img,
        KeySpec::Color(key),
        fourk_imaging::DEFAULT_TOLERANCE,
        fourk_imaging::DEFAULT_FEATHER,
    )
    .context("cutting out the key colour")?;
    let (w, h) = rgba.dimensions();
    let bytes = fourk_imaging::encode(&DynamicImage::ImageRgba8(rgba), format, compression)
        .context("encoding the cutout")?;
    let expect = Expect {
        width: Some(w),
        height: Some(h),
        format: Some(format),
        alpha: Some(true),
        thumbnail: None,
    };
    let verify = fourk_imaging::verify_bytes(&bytes, &expect);
    step.qa = vec![
        QaCheck {
            name: "key_removed",
            pass: report.transparent_share >= MIN_TRANSPARENT_SHARE,
            detail: format!(
                "at least {:.0}% of pixels transparent; got {:.1}%",
                MIN_TRANSPARENT_SHARE * 100.0,
                report.transparent_share * 100.0
            ),
        },
        QaCheck {
            name: "subject_kept",
            pass: report.transparent_share <= MAX_TRANSPARENT_SHARE,
            detail: format!(
                "at most {:.0}% of pixels transparent; got {:.1}%",
                MAX_TRANSPARENT_SHARE * 100.0,
                report.transparent_share * 100.0
            ),
        },
    ];
    let qa_ok = step.qa.iter().all(|q| q.pass);
    let ok = verify.ok && qa_ok;
    let path = if ok {
        out.to_path_buf()
    } else {
        fourk_imaging::rejected_path(out)
    };
    fourk_imaging::save_atomic(&path, &bytes).with_context(|| format!("saving {}", path.display()))?;
    step.cutout = Some(report);
    step.image = file_name(&path);
    step.verified = ok;
    step.outcome = if ok {
        format!(
            "cut out: {:.1}% transparent, {:.1}% soft edge, halo {:.3}",
            report.transparent_share * 100.0,
            report.partial_share * 100.0,
            report.halo_score
        )
    } else {
        let mut why: Vec<String> = verify
            .failed_checks()
            .map(|c| format!("{}: expected {}, got {}", c.name, c.expected, c.actual))
            .collect();
        why.extend(
            step.qa
                .iter()
                .filter(|q| !q.pass)
                .map(|q| format!("{}: {}", q.name, q.detail)),
        );
        format!(
            "the cutout failed its checks ({}); kept as {}",
            why.join("; "),
            path.display()
        )
    };
    if ok {
        tracing::info!("{}", step.outcome);
    } else {
        tracing::error!("{}", step.outcome);
    }
    let checks = Checks::from_report(Some((w, h)), format, verify);
    Ok(ImageSummary {
        sidecar: sidecar::path_for(&path),
        path,
        width: checks.actual_width,
        height: checks.actual_height,
        format: checks.actual_format.clone(),
        verified: ok,
        usage: keyed.usage,
        cost: keyed.cost,
        source: keyed.source,
        ledger_id: None,
        attempt_id: None,
        sha256: checks.sha256.clone(),
        bytes: checks.bytes,
        request_id: keyed.request_id.clone(),
        thumbnail: None,
    })
}

/// Write the delivered file's sidecar: the key-colour request's record (what was sent and
/// answered), with this file's name and checks and the `transparency` record.
fn finish_sidecar(keyed: &ImageSummary, summary: &ImageSummary, record: &Transparency) -> anyhow::Result<()> {
    let mut car = sidecar::parse_object(
        &std::fs::read(&keyed.sidecar).with_context(|| format!("reading {}", keyed.sidecar.display()))?,
    )
    .with_context(|| format!("reading {}", keyed.sidecar.display()))?;
    let format = summary
        .format
        .as_deref()
        .and_then(OutputFormat::from_extension)
        .unwrap_or(OutputFormat::Png);
    let expect = Expect {
        width: summary.width,
        height: summary.height,
        format: Some(format),
        alpha: Some(true),
        thumbnail: None,
    };
    let report = fourk_imaging::verify_file(&summary.path, &expect)
        .with_context(|| format!("re-reading {}", summary.path.display()))?;
    let mut checks = serde_json::to_value(Checks::from_report(
        summary.width.zip(summary.height),
        format,
        report,
    ))?;
    // The cutout's QA is part of what "verified" means for this file.
    checks["verified"] = summary.verified.into();
    car.insert(
        "image".into(),
        file_name(&summary.path).unwrap_or_default().into(),
    );
    car.insert("checks".into(), checks);
    car.insert(
        "derived_from".into(),
        file_name(&keyed.path).unwrap_or_default().into(),
    );
    car.insert("transparency".into(), serde_json::to_value(record)?);
    let mut json = serde_json::to_vec_pretty(&car)?;
    json.push(b'\n');
    fourk_imaging::save_atomic(&summary.sidecar, &json)
        .with_context(|| format!("writing {}", summary.sidecar.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_follows_the_capability_and_the_flag() {
        use TransparentSupport as S;
        use TransparentVia as V;
        let d = |s, v| decide("m", s, v, Route::Images).0;
        assert!(d(S::Preview, V::Auto));
        assert!(d(S::Supported, V::Native));
        assert!(!d(S::Unsupported, V::Auto));
        assert!(!d(S::Supported, V::Key));
        assert!(
            decide("gpt-image-2", S::Preview, V::Auto, Route::Responses)
                .1
                .contains("preview")
        );
        assert!(check_native_allowed("m", S::Unsupported, V::Native).is_err());
        assert!(check_native_allowed("m", S::Unsupported, V::Auto).is_ok());
    }

    #[test]
    fn the_key_contrasts_with_the_subject() {
        assert_eq!(choose_key("a red fox").0, [0, 255, 0]);
        assert_eq!(choose_key("a frog on a Leaf").0, [255, 0, 255]);
        assert!(choose_key("green apples").2.contains("'green'"));
        assert_eq!(choose_key("pink flamingos in the grass").0, [0, 0, 255]);
        assert_eq!(choose_key("greenhouse-free, peace").0, [0, 255, 0]);
        let s = key_suffix([0, 255, 0], "green");
        assert!(s.contains("chroma-key background of solid #00FF00"));
        assert_eq!(
            key_path(Path::new("out/hero.webp")),
            Path::new("out/hero.key.png")
        );
    }
}
