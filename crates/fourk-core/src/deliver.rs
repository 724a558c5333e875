//! The one-command deliverable (`fourk deliver`). A native attempt at the target size,
//! verified; on failure, mismatch or timeout, the fallback: a master at the largest
//! non-experimental size of the target's ratio, verified, upscaled locally to the exact
//! target, verified again. The shipped file's sidecar and the ledger say which path produced
//! it and what each step cost; `--max-cost` refuses before anything is sent when the
//! predicted worst case (native attempt plus fallback) is over it.
//!
//! [`deliver`] takes a [`DeliverSpec`] and returns a [`DeliverReport`]; it never prints.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fourk_api::plan::{check_target, master_size};
use fourk_api::{Capabilities, ModelCaps, OutputFormat, Quality, Size};
use serde::Serialize;
use serde_json::json;

use crate::UsageError;
use crate::ledger::RunStatus;
use crate::ledger::{AttemptOutcome, LinkKind};
use crate::send::{self, Control};
use crate::session::Endpoint;
use crate::workflow::{self, PlannedStep, Record, Render, StepReport, WorkflowDryRun};

/// One deliverable: what to draw, the exact target, the ceilings, and how to reach the API.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverSpec {
    /// What to draw.
    pub prompt: String,
    /// The image model.
    pub model: String,
    /// The exact target size.
    pub size: Size,
    /// Quality of the native attempt and of the fallback master.
    pub quality: Quality,
    /// Refuse before anything is sent when the predicted worst case (native plus fallback)
    /// is over this many dollars.
    pub max_cost: Option<f64>,
    /// Give the native attempt this long before falling back (it stays possibly billed).
    pub timeout: Option<Duration>,
    /// Output format (`None`: from `out`'s extension, else png).
    pub format: Option<OutputFormat>,
    /// Where to save; `None`: a default name in the working folder.
    pub out: Option<PathBuf>,
    /// Replace files already at the deliverable's or the fallback master's names.
    pub force: bool,
    /// Where requests go.
    pub endpoint: Endpoint,
}

/// A predicted request of one image at `(w, h)`.
fn predict(model: &ModelCaps, prompt: &str, (w, h): (u32, u32), q: Quality) -> Option<send::Estimate> {
    send::predict(
        model,
        prompt,
        Some(Size::Exact { width: w, height: h }),
        Some(q),
        1,
        &[],
    )
}

/// What a delivery did (the CLI's `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct DeliverReport {
    /// The shipped file, when one verified.
    pub shipped: Option<PathBuf>,
    /// `native`, `master+upscale` or `master`.
    pub shipped_by: Option<&'static str>,
    /// Its ledger id.
    pub id: Option<crate::ledger::ImageId>,
    /// `WIDTHxHEIGHT` of the target.
    pub target: String,
    /// `WIDTHxHEIGHT` of the fallback master.
    pub master_size: String,
    /// The shipped file verified.
    pub verified: bool,
    /// Each step with its file, dollars and time.
    pub steps: Vec<StepReport>,
    /// Dollars in all.
    pub usd: f64,
    /// Some of `usd` is estimated.
    pub estimate: bool,
    /// The worst case predicted before sending (native plus fallback).
    pub predicted_worst_usd: Option<f64>,
}

/// Why the native attempt did not ship.
enum NativeMiss {
    /// Saved, but did not verify (the file is under its `.rejected.` name).
    Rejected(StepReport, Option<crate::ledger::ImageId>),
    /// Failed or timed out.
    Failed(StepReport),
}

/// What a delivery is, checked before anything is sent or written: shared by [`deliver`] and
/// [`dry_run`].
struct Prepared<'c> {
    model: &'c ModelCaps,
    /// The exact target.
    target: (u32, u32),
    /// The fallback master's size.
    master: (u32, u32),
    /// The native attempt's estimate.
    native_p: Option<send::Estimate>,
    /// Native attempt plus fallback, in dollars.
    worst: Option<f64>,
    /// The deliverable's path.
    out: PathBuf,
}

/// Every check of a delivery: the model, the target, the predicted worst case against
/// `--max-cost`, the format, the output names free ([`crate::outputs::check`], or
/// [`crate::outputs::check_dry`] when `dry`).
fn prepare<'c>(spec: &DeliverSpec, caps: &'c Capabilities, dry: bool) -> anyhow::Result<Prepared<'c>> {
    let model = caps.model(&spec.model).map_err(|e| UsageError(e.to_string()))?;
    let target = check_target(model, spec.size).map_err(|e| UsageError(format!("cannot deliver: {e}")))?;
    let master = master_size(model, target.0, target.1);
    let native_p = predict(model, &spec.prompt, target, spec.quality);
    let master_p = predict(model, &spec.prompt, master, spec.quality);
    let worst = native_p
        .as_ref()
        .zip(master_p.as_ref())
        .map(|(a, b)| a.cost.usd + b.cost.usd);
    if let Some(max) = spec.max_cost {
        let Some(worst) = worst else {
            return Err(UsageError(format!(
                "--max-cost needs a prediction, and {} has no prices in the capability table\n\nhint: add [model.price] in a models file (FOURK_MODELS), or drop --max-cost",
                model.id
            ))
            .into());
        };
        if worst > max {
            return Err(UsageError(format!(
                "the predicted worst case is ${worst:.3} (native {}x{} {} ${:.3}, fallback master {}x{} ${:.3}), over --max-cost ${max:.3}; nothing was sent\n\nhint: raise --max-cost, lower --quality, or see `fourk plan --size {}x{} --quality {}`",
                target.0,
                target.1,
                spec.quality,
                native_p.as_ref().map_or(0.0, |p| p.cost.usd),
                master.0,
                master.1,
                master_p.as_ref().map_or(0.0, |p| p.cost.usd),
                target.0,
                target.1,
                spec.quality
            ))
            .into());
        }
    }
    let format =
        crate::image_api::output_format(spec.format, spec.out.as_deref())?.unwrap_or(OutputFormat::Png);
    let files = |o: &Path| {
        let mut f = crate::outputs::image_files(o);
        f.extend(crate::outputs::image_files(&workflow::with_suffix(o, "master")));
        f
    };
    let out = crate::outputs::resolve(spec.out.as_deref(), "fourk", format, files)?;
    let worst_bytes = 2 * crate::outputs::worst_image_bytes(Some(target));
    if dry {
        crate::outputs::check_dry(&files(&out), spec.force, worst_bytes)?;
    } else {
        crate::outputs::check(&files(&out), spec.force, worst_bytes)?;
    }
    Ok(Prepared {
        model,
        target,
        master,
        native_p,
        worst,
        out,
    })
}

impl Prepared<'_> {
    /// The native attempt: one image at the target.
    fn native<'a>(&'a self, spec: &'a DeliverSpec) -> Render<'a> {
        Render {
            force: spec.force,
            ..Render::image(
                &self.model.id,
                &spec.prompt,
                self.target,
                spec.quality,
                spec.format,
                &self.out,
            )
        }
    }

    /// The fallback master is upscaled (it is smaller than the target).
    fn upscaling(&self) -> bool {
        self.master != self.target
    }

    /// Where the fallback master saves: `NAME.master.EXT` when it is upscaled, else the
    /// deliverable's path.
    fn master_out(&self) -> PathBuf {
        if self.upscaling() {
            workflow::with_suffix(&self.out, "master")
        } else {
            self.out.clone()
        }
    }

    /// The fallback master, saved to `out` ([`Self::master_out`]).
    fn master<'a>(&'a self, spec: &'a DeliverSpec, out: &'a Path) -> Render<'a> {
        Render {
            force: spec.force,
            ..Render::image(
                &self.model.id,
                &spec.prompt,
                self.master,
                spec.quality,
                spec.format,
                out,
            )
        }
    }
}

/// The dry run of a delivery: the same checks as [`deliver`] (the `--max-cost` refusal
/// included), the native request and the fallback's master request with their estimates,
/// the local upscale, and the worst case (native attempt plus fallback). Nothing is sent, no
/// file is written, no ledger row is added.
///
/// # Errors
/// The [`UsageError`] the real run would stop with.
pub fn dry_run(spec: &DeliverSpec, fk: &crate::Fourk) -> anyhow::Result<WorkflowDryRun> {
    let caps = &fk.caps;
    let p = prepare(spec, caps, true)?;
    let mut notes = Vec::new();
    let native = p.native(spec);
    let dry = workflow::dry_run(&native, &spec.endpoint, caps)?;
    let native_step = PlannedStep::request("native", &native, dry, &mut notes);
    let total = native_step.estimate_usd;
    let master_out = p.master_out();
    let master = p.master(spec, &master_out);
    let dry = workflow::dry_run(&master, &spec.endpoint, caps)?;
    let mut steps = vec![
        native_step,
        PlannedStep::request("master", &master, dry, &mut notes),
    ];
    notes.push(format!(
        "the master{} runs only when the native {}x{} attempt fails, times out or does not verify",
        if p.upscaling() { " and the upscale" } else { "" },
        p.target.0,
        p.target.1
    ));
    if p.upscaling() {
        steps.push(PlannedStep::local("upscale", p.target, p.out.clone()));
    }
    if let (Some(max), Some(worst)) = (spec.max_cost, p.worst) {
        notes.push(format!(
            "the predicted worst case ${worst:.3} is within --max-cost ${max:.3}"
        ));
    }
    if spec.out.is_none() {
        notes.push("the default file name is drawn again when the run starts".into());
    }
    Ok(WorkflowDryRun {
        steps,
        total_usd: total,
        worst_usd: p.worst,
        notes: workflow::dedup(notes),
    })
}

/// Deliver: refuse over the ceiling before sending, try native, fall back to a master and a
/// local upscale; every step saved, verified, on record and in the report.
///
/// Steps (`native`, then `master` and `upscale` on the fallback) are reported to `control`,
/// which can stop the work (a cancelled native attempt does not fall back).
///
/// # Errors
/// [`UsageError`] before anything is sent (model, target, ceiling); the fallback master's
/// failure; [`send::Cancelled`]. A failed native attempt is a fallback, not an error.
#[allow(clippy::too_many_lines)]
pub async fn deliver(
    spec: &DeliverSpec,
    fk: &crate::Fourk,
    control: &Control,
) -> anyhow::Result<DeliverReport> {
    let caps = &fk.caps;
    let p = prepare(spec, caps, false)?;
    let (model, target, master, worst) = (p.model, p.target, p.master, p.worst);
    let (native_p, out) = (&p.native_p, &p.out);
    let endpoint = spec.endpoint.clone();
    let record = Record::begin(
        fk.ledger_path(),
        "deliver",
        &json!({"prompt": spec.prompt, "model": model.id, "size": format!("{}x{}", target.0, target.1),
            "quality": spec.quality, "max_cost": spec.max_cost, "timeout": spec.timeout.map(|t| t.as_secs_f64())}),
        control,
    );
    let target_label = format!("{}x{}", target.0, target.1);

    // 1. The native attempt.
    let t = Instant::now();
    record.step("native").map_err(|e| record.fail(e.into()))?;
    let native = p.native(spec);
    let attempt = workflow::render(&native, &endpoint, caps, &record);
    let result = match spec.timeout {
        Some(s) => tokio::time::timeout(s, attempt).await.ok(),
        None => Some(attempt.await),
    };
    let miss = match result {
        Some(Ok((images, true))) if !images.is_empty() => {
            let img = &images[0];
            let wf = json!({"command": "deliver", "shipped_by": "native", "target": target_label,
                "steps": [{"step": "native", "usd": img.cost.map(|c| c.usd)}]});
            if let Err(e) = crate::sidecar::annotate(&img.sidecar, "workflow", &wf) {
                tracing::warn!("{e:#}");
            }
            let ids = record.images(&images);
            let step = StepReport::saved("native", img, ids.first().copied(), t.elapsed().as_secs_f64());
            record.finish(RunStatus::Ok);
            return Ok(DeliverReport {
                shipped: Some(img.path.clone()),
                shipped_by: Some("native"),
                id: ids.first().copied(),
                target: target_label,
                master_size: format!("{}x{}", master.0, master.1),
                verified: true,
                usd: step.usd,
                estimate: step.estimate,
                steps: vec![step],
                predicted_worst_usd: worst,
            });
        }
        Some(Ok((images, _))) => {
            let ids = record.images(&images);
            let mut step = match images.first() {
                Some(img) => {
                    StepReport::saved("native", img, ids.first().copied(), t.elapsed().as_secs_f64())
                }
                None => StepReport {
                    step: "native",
                    path: None,
                    id: None,
                    verified: false,
                    usd: 0.0,
                    estimate: false,
                    seconds: t.elapsed().as_secs_f64(),
                    error: None,
                },
            };
            let why = images
                .first()
                .and_then(|i| workflow::read_sidecar(&i.path))
                .map(|c| describe_failed_checks(&c))
                .unwrap_or_else(|| "it did not verify".into());
            tracing::warn!(
                "the native {target_label} attempt does not match the request ({why}); falling back to a {}x{} master and a local upscale",
                master.0,
                master.1
            );
            step.error = Some(format!("verification failed: {why}"));
            if let Some(img) = images.first() {
                let wf =
                    json!({"command": "deliver", "step": "native", "shipped": false, "error": step.error});
                if let Err(e) = crate::sidecar::annotate(&img.sidecar, "workflow", &wf) {
                    tracing::warn!("{e:#}");
                }
            }
            NativeMiss::Rejected(step, ids.first().copied())
        }
        Some(Err(e))
            if e.downcast_ref::<UsageError>().is_some()
                || e.chain().any(|c| c.downcast_ref::<send::Cancelled>().is_some()) =>
        {
            return Err(record.fail(e));
        }
        Some(Err(e)) => {
            tracing::warn!(
                "the native {target_label} attempt failed ({e:#}); falling back to a {}x{} master and a local upscale",
                master.0,
                master.1
            );
            // The send path has the request on record, with its estimate when possibly billed.
            let billed = AttemptOutcome::from_error(&e).possibly_billed;
            NativeMiss::Failed(StepReport {
                step: "native",
                path: None,
                id: None,
                verified: false,
                usd: if billed {
                    native_p.as_ref().map_or(0.0, |p| p.cost.usd)
                } else {
                    0.0
                },
                estimate: billed,
                seconds: t.elapsed().as_secs_f64(),
                error: Some(format!("{e:#}")),
            })
        }
        None => {
            let secs = spec.timeout.unwrap_or_default().as_secs_f64();
            let msg = format!("the native attempt timed out after {secs} s (it may still be billed)");
            tracing::warn!(
                "{msg}; falling back to a {}x{} master and a local upscale",
                master.0,
                master.1
            );
            // The request is on record since it was sent, with its estimate: given up on,
            // it stays possibly billed.
            record.recorder().abandon(&msg);
            NativeMiss::Failed(StepReport {
                step: "native",
                path: None,
                id: None,
                verified: false,
                usd: native_p.as_ref().map_or(0.0, |p| p.cost.usd),
                estimate: true,
                seconds: t.elapsed().as_secs_f64(),
                error: Some(msg),
            })
        }
    };
    let (native_step, native_id) = match miss {
        NativeMiss::Rejected(s, id) => (s, id),
        NativeMiss::Failed(s) => (s, None),
    };

    // 2. The fallback: master, then a local upscale.
    let upscaling = p.upscaling();
    let master_out = p.master_out();
    let t = Instant::now();
    record.step("master").map_err(|e| record.fail(e.into()))?;
    let r = p.master(spec, &master_out);
    let (images, master_ok) = match workflow::render(&r, &endpoint, caps, &record).await {
        Ok(v) => v,
        Err(e) => return Err(record.fail(e.context("the fallback master failed too"))),
    };
    let Some(m) = images.first() else {
        record.finish(RunStatus::Failed);
        return Err(anyhow::anyhow!("the fallback master came back without an image"));
    };
    let master_ids = record.images(&images);
    let master_id = master_ids.first().copied();
    let master_step = StepReport::saved("master", m, master_id, t.elapsed().as_secs_f64());
    let mut steps = vec![native_step, master_step];
    let (shipped, shipped_id, verified) = if !master_ok {
        tracing::error!(
            "the fallback master {} did not verify either; nothing ships",
            m.path.display()
        );
        (None, None, false)
    } else if upscaling {
        let t = Instant::now();
        record.step("upscale").map_err(|e| record.fail(e.into()))?;
        let up = match workflow::upscale(
            &m.path,
            target,
            out,
            &model.id,
            &spec.prompt,
            spec.quality,
            json!({"command": "deliver", "step": "upscale"}),
        )
        .await
        {
            Ok(u) => u,
            Err(e) => {
                record.finish(RunStatus::Failed);
                return Err(e);
            }
        };
        let up_ids = record.images(std::slice::from_ref(&up));
        let up_id = up_ids.first().copied();
        record.link(master_id, up_id, LinkKind::MasterToUpscale);
        steps.push(StepReport::saved(
            "upscale",
            &up,
            up_id,
            t.elapsed().as_secs_f64(),
        ));
        (up.verified.then(|| up.path.clone()), up_id, up.verified)
    } else {
        (Some(m.path.clone()), master_id, true)
    };
    record.link(native_id, shipped_id, LinkKind::Fallback);
    let shipped_by = if upscaling { "master+upscale" } else { "master" };
    let usd: f64 = steps.iter().map(|s| s.usd).sum();
    let estimate = steps.iter().any(|s| s.estimate);
    if let Some(path) = &shipped {
        let wf = json!({"command": "deliver", "shipped_by": shipped_by, "target": target_label,
            "master": m.path.display().to_string(), "steps": steps, "usd": usd, "estimate": estimate});
        if let Err(e) = crate::sidecar::annotate(&crate::sidecar::path_for(path), "workflow", &wf) {
            tracing::warn!("{e:#}");
        }
        if upscaling {
            let wf = json!({"command": "deliver", "step": "master", "shipped": false, "upscaled_to": path.display().to_string()});
            if let Err(e) = crate::sidecar::annotate(&m.sidecar, "workflow", &wf) {
                tracing::warn!("{e:#}");
            }
        }
    }
    record.finish(RunStatus::verified(verified));
    Ok(DeliverReport {
        shipped,
        shipped_by: verified.then_some(shipped_by),
        id: shipped_id,
        target: target_label,
        master_size: format!("{}x{}", master.0, master.1),
        verified,
        steps,
        usd,
        estimate,
        predicted_worst_usd: worst,
    })
}

/// The failed checks of a sidecar, in words.
fn describe_failed_checks(car: &serde_json::Value) -> String {
    let details = car.pointer("/checks/details");
    let mut parts: Vec<String> = details
        .and_then(|d| d.get("checks"))
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter(|c| c.get("pass").and_then(serde_json::Value::as_bool) == Some(false))
                .map(|c| {
                    format!(
                        "{}: requested {}, got {}",
                        c.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
                        c.get("expected").and_then(|v| v.as_str()).unwrap_or("?"),
                        c.get("actual").and_then(|v| v.as_str()).unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(e) = details
        .and_then(|d| d.get("decode_error"))
        .and_then(|v| v.as_str())
    {
        parts.push(format!("corrupt image: {e}"));
    }
    if parts.is_empty() {
        "it did not verify".into()
    } else {
        parts.join("; ")
    }
}
