//! An edit: read and check the input images and mask locally, send them as multipart (or to
//! the Responses API) through the one send path, then save, verify and record like a
//! generation.

use fourk_api::{Capabilities, InputImage};

use crate::edit_request::{build_request, load_inputs, multipart_layout, records};
use crate::image_api::{DryRun, check_outputs};
use crate::route;
use crate::save::{ImageSummary, Job};
use crate::send::{self, Outgoing, Recorder};
use crate::session::Session;
use crate::spec::EditSpec;

/// The dry run of `spec`: the inputs read and checked, the request built; the body as it
/// would leave (the multipart layout with file parts summarised, or the Responses request
/// with image blobs summarised), and its estimate. Nothing is sent.
///
/// # Errors
/// [`UsageError`](crate::UsageError) naming every broken rule, as a real run would.
pub fn dry_run(spec: &EditSpec, caps: &Capabilities) -> anyhow::Result<DryRun> {
    if crate::gemini::is_gemini(caps, &spec.model) {
        return crate::gemini::dry_run_edit(spec, caps);
    }
    let (loaded, mask) = load_inputs(spec)?;
    let (req, job) = build_request(spec, caps, loaded.len())?;
    let files = records(&loaded, mask.as_ref());
    let dims: Vec<(u32, u32)> = loaded.iter().map(|l| (l.width, l.height)).collect();
    let estimate = caps
        .model(&req.model)
        .ok()
        .and_then(|m| send::predict(m, &req.prompt, req.size, req.quality, req.n.unwrap_or(1), &dims));
    let body = match spec.route.route {
        crate::route::Route::Images => multipart_layout(&req, &files)?,
        crate::route::Route::Responses => {
            let images: Vec<InputImage> = loaded.into_iter().map(|l| l.image).collect();
            match crate::route::for_request(
                &spec.route,
                caps,
                &req,
                &images,
                mask.as_ref().map(|m| &m.image),
            )? {
                Some(rr) => serde_json::to_value(crate::route::summarised(&rr))?,
                None => serde_json::Value::Null,
            }
        }
    };
    Ok(DryRun {
        body,
        estimate,
        warnings: job.warnings,
    })
}

/// The arguments an edit's ledger run records.
#[must_use]
pub fn ledger_args(spec: &EditSpec) -> serde_json::Value {
    serde_json::json!({
        "inputs": spec.images,
        "mask": spec.mask,
        "model": spec.model,
        "prompt": spec.prompt,
        "route": format!("{:?}", spec.route.route).to_lowercase(),
    })
}

/// [`edit`] as one ledger run of kind `edit` (with the spec's [`ledger_args`]), followed and
/// stopped by `control`, and closed with its outcome: what every door runs.
///
/// # Errors
/// As [`edit`].
pub async fn edit_recorded(
    spec: &EditSpec,
    fk: &crate::Fourk,
    control: crate::send::Control,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    let rec = Recorder::new(fk.ledger_path(), "edit", ledger_args(spec)).with_control(control);
    let result = edit(spec, &fk.caps, &rec).await;
    rec.finish(&result);
    result
}

/// Edit, save, verify and record. Returns one summary per image and whether all verified.
/// The request is on record through `rec` before it is sent.
///
/// # Errors
/// Usage errors before sending; client errors; IO errors while saving.
pub async fn edit(
    spec: &EditSpec,
    caps: &Capabilities,
    rec: &Recorder,
) -> anyhow::Result<(Vec<ImageSummary>, bool)> {
    if crate::gemini::is_gemini(caps, &spec.model) {
        return crate::gemini::edit(spec, caps, rec).await;
    }
    let (loaded, mask) = load_inputs(spec)?;
    let (req, job) = build_request(spec, caps, loaded.len())?;
    let dims: Vec<(u32, u32)> = loaded.iter().map(|l| (l.width, l.height)).collect();
    let model = caps.model(&req.model).ok();
    let estimate =
        model.and_then(|m| send::predict(m, &req.prompt, req.size, req.quality, req.n.unwrap_or(1), &dims));
    if let (Some(m), Some((w, h))) = (model, req.size.and_then(fourk_api::Size::dims)) {
        send::warn_short_timeout(m, w, h, req.quality, spec.endpoint.timeout);
    }
    let key = send::usage_key(
        &req.model,
        req.quality.map(|q| q.as_str()),
        req.size.map(|s| s.to_string()).as_deref(),
        u32::from(req.n.unwrap_or(1)),
    );
    let job = Job {
        inputs: records(&loaded, mask.as_ref()),
        ..job
    };
    let partials = spec
        .stream
        .keep_partials
        .then_some(spec.stream.partials.unwrap_or(0));
    check_outputs(&job, usize::from(req.n.unwrap_or(1)), partials)?;
    let images: Vec<InputImage> = loaded.into_iter().map(|l| l.image).collect();
    let mask = mask.map(|m| m.image);
    let base = job.base.clone();
    let keep = spec.stream.keep_partials.then_some((base.as_path(), job.format));
    let rr = route::for_request(&spec.route, caps, &req, &images, mask.as_ref())?;
    let out = rr.as_ref().map_or(
        Outgoing::Edit {
            request: &req,
            images: &images,
            mask: mask.as_ref(),
        },
        Outgoing::Responses,
    );
    let session = Session::connect(&spec.endpoint, caps).await?;
    let result = send::send(&session.client, rec, job, out, &key, estimate.as_ref(), keep).await;
    session.close().await;
    result
}
