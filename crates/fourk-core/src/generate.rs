//! A generation: check the spec against the model's rules, send it through the one send
//! path, save atomically, verify, write the sidecar, record.

use fourk_api::Capabilities;

use crate::image_api::{DryRun, Overrides, build_request_with, generate_with};
use crate::route;
use crate::save::ImageSummary;
use crate::send::{self, Recorder};
use crate::spec::GenerateSpec;

/// The dry run of `spec`: every local check, nothing sent, no file written.
///
/// # Errors
/// [`UsageError`](crate::UsageError) naming every broken rule, as a real run would.
pub fn dry_run(spec: &GenerateSpec, caps: &Capabilities) -> anyhow::Result<DryRun> {
    if crate::gemini::is_gemini(caps, &spec.model) {
        return crate::gemini::dry_run_generate(spec, caps);
    }
    let over = if spec.transparency.transparent {
        crate::transparent::first_request(spec, caps)?
    } else {
        Overrides::default()
    };
    let (req, model, warnings) = build_request_with(spec, caps, &over)?;
    let body = match route::for_request(&spec.route, caps, &req, &[], None)? {
        None => serde_json::to_value(&req)?,
        Some(rr) => serde_json::to_value(&rr)?,
    };
    let estimate = send::predict(model, &req.prompt, req.size, req.quality, req.n.unwrap_or(1), &[]);
    Ok(DryRun {
        body,
        estimate,
        warnings,
    })
}

/// The arguments a generation's ledger run records.
#[must_use]
pub fn ledger_args(spec: &GenerateSpec) -> serde_json::Value {
    serde_json::json!({
        "prompt": spec.prompt,
        "model": spec.model,
        "size": spec.size.to_string(),
        "quality": spec.image.quality.map(|q| format!("{q:?}").to_lowercase()),
        "n": spec.n,
        "route": format!("{:?}", spec.route.route).to_lowercase(),
        "transparent": spec.transparency.transparent,
    })
}

/// Generate, save, verify and record. Returns one summary per image and whether all verified.
/// With `--transparent`, the transparency decision runs (see [`super::transparent`]). Every
/// request is on record through `rec` before it is sent.
///
/// # Errors
/// Usage errors before sending; client errors; IO errors while saving.
pub async fn generate(
    spec: &GenerateSpec,
    caps: &Capabilities,
    rec: &Recorder,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    if crate::gemini::is_gemini(caps, &spec.model) {
        return crate::gemini::generate(spec, caps, rec).await;
    }
    if spec.transparency.transparent {
        return crate::transparent::generate(spec, caps, rec).await;
    }
    generate_with(spec, caps, &Overrides::default(), rec).await
}

/// [`generate`] as one ledger run of kind `generate` (with the spec's [`ledger_args`]),
/// followed and stopped by `control`, and closed with its outcome: what every door runs.
///
/// # Errors
/// As [`generate`].
pub async fn generate_recorded(
    spec: &GenerateSpec,
    fk: &crate::Fourk,
    control: crate::send::Control,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let rec = Recorder::new(fk.ledger_path(), "generate", ledger_args(spec)).with_control(control);
    let result = generate(spec, &fk.caps, &rec).await;
    rec.finish(&result);
    result
}
