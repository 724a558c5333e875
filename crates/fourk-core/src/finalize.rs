//! Turn an approved draft into the deliverable (`fourk final`), so composition carries over.
//! [`finalize`] takes a [`FinalSpec`] and returns a [`FinalReport`]; it never prints.
//!
//! `--native` re-renders at the target size as an edit with the draft as the reference image
//! (or, for a Responses API draft, as a continuation with `previous_response_id`).
//! `--upscale` renders a master at the largest non-experimental size of the target's ratio
//! (2560x1440 for 4K) the same way, then upscales it locally to the exact target. Every file
//! is verified and the chain (draft -> final, master -> upscale) is recorded in the ledger.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fourk_api::plan::{check_target, master_size};
use fourk_api::{Capabilities, ModelCaps, OutputFormat, Size};
use serde::Serialize;
use serde_json::{Value, json};

use crate::UsageError;
use crate::ledger::RunStatus;
use crate::ledger::{ImageId, Ledger, LinkKind};
use crate::send::Control;
use crate::session::Endpoint;
use crate::workflow::{self, PlannedStep, Record, Render, StepReport, WorkflowDryRun};

/// A final from an approved draft.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalSpec {
    /// The draft: a ledger id or its file.
    pub draft: String,
    /// Render a master at the largest non-experimental size and upscale it locally (else a
    /// native render at the target).
    pub upscale: bool,
    /// The final's quality.
    pub quality: fourk_api::Quality,
    /// The target (`None`: the one the draft was made for).
    pub size: Option<Size>,
    /// A prompt (`None`: the draft's).
    pub prompt: Option<String>,
    /// Where to save; `None`: a default name in the working folder.
    pub out: Option<PathBuf>,
    /// Replace files already at the final's or the master's names.
    pub force: bool,
    /// Where requests go.
    pub endpoint: Endpoint,
}

/// What is known about a draft.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Ledger id, when recorded.
    pub id: Option<ImageId>,
    /// The file.
    pub path: PathBuf,
    /// Its prompt.
    pub prompt: Option<String>,
    /// Its model.
    pub model: Option<String>,
    /// Responses API response id, for `previous_response_id`.
    pub response_id: Option<String>,
    /// The target it was drafted for.
    pub target: Option<Size>,
    /// Whether it verified.
    pub verified: bool,
}

/// The user's text of a Responses API request as the sidecar records it: the `input_text`
/// parts of its `input` messages (or a plain string `input`).
fn responses_prompt(car: &Value) -> Option<String> {
    let input = car.pointer("/request/input")?;
    if let Some(s) = input.as_str() {
        return Some(s.to_owned());
    }
    let text: Vec<&str> = input
        .as_array()?
        .iter()
        .filter_map(|item| item.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("input_text"))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect();
    (!text.is_empty()).then(|| text.join("\n"))
}

fn str_at(v: &Value, ptr: &str) -> Option<String> {
    v.pointer(ptr).and_then(Value::as_str).map(str::to_owned)
}

/// Find a draft by ledger id or path in `ledger` (`None`: the ledger cannot be opened); the
/// sidecar fills in what the ledger lacks. Reads only: a real run passes its
/// [`Record::ledger`], a dry run a [`Ledger::open_read_only`].
///
/// # Errors
/// [`UsageError`] when the id is unknown or the file is missing.
pub fn find_draft(ledger: Option<&Ledger>, which: &str) -> anyhow::Result<Draft> {
    let rec = if let Ok(id) = which.trim().trim_start_matches('#').parse::<ImageId>() {
        let Some(ledger) = ledger else {
            return Err(UsageError(format!(
                "draft {id} is a ledger id, but the ledger cannot be opened\n\nhint: pass the draft's file instead, or --ledger PATH"
            ))
            .into());
        };
        Some(ledger.find_image(id)?.ok_or_else(|| {
            UsageError(format!(
                "no image {id} in the ledger {}\n\nhint: `fourk history` lists the ids; or pass the draft's file",
                ledger.path().display()
            ))
        })?)
    } else {
        ledger.and_then(|l| l.find_image_by_path(Path::new(which)).ok().flatten())
    };
    let path = rec
        .as_ref()
        .map_or_else(|| PathBuf::from(which), |r| r.path.clone());
    if !path.is_file() {
        return Err(UsageError(format!(
            "the draft {} is not there any more\n\nhint: pass the id of another draft, or its file",
            path.display()
        ))
        .into());
    }
    let car = workflow::read_sidecar(&path).unwrap_or(Value::Null);
    let prompt = rec
        .as_ref()
        .and_then(|r| r.prompt.clone())
        .or_else(|| str_at(&car, "/request/prompt"))
        .or_else(|| responses_prompt(&car));
    let verified = rec.as_ref().map_or_else(
        || {
            car.pointer("/checks/verified")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        },
        |r| r.verified,
    );
    Ok(Draft {
        id: rec.as_ref().map(|r| r.id),
        prompt,
        model: rec
            .as_ref()
            .and_then(|r| r.model.clone())
            .or_else(|| str_at(&car, "/model")),
        response_id: rec
            .as_ref()
            .and_then(|r| r.response_id.clone())
            .or_else(|| str_at(&car, "/responses/response_id")),
        target: str_at(&car, "/workflow/target").and_then(|s| s.parse().ok()),
        verified,
        path,
    })
}

/// What a final did (the CLI's `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct FinalReport {
    /// The draft's ledger id.
    pub draft: Option<ImageId>,
    /// The draft's file.
    pub draft_path: PathBuf,
    /// `native` or `upscale`.
    pub mode: &'static str,
    /// `WIDTHxHEIGHT`.
    pub target: String,
    /// The final file, when it verified.
    pub shipped: Option<PathBuf>,
    /// Its ledger id.
    pub id: Option<ImageId>,
    /// The final verified.
    pub verified: bool,
    /// Each step.
    pub steps: Vec<StepReport>,
    /// Dollars in all.
    pub usd: f64,
    /// Some of `usd` is estimated.
    pub estimate: bool,
    /// The last file written (the final, or the master or its rejected name when a step
    /// failed).
    #[serde(skip)]
    pub path: PathBuf,
}

impl FinalReport {
    /// The files the steps wrote with their roles, as every door lists them: the last file
    /// written first, as `final`, then each other step's under its step's name (`master`,
    /// `native`, `upscale`).
    #[must_use]
    pub fn files(&self) -> Vec<(&'static str, &StepReport)> {
        let mut files: Vec<(&'static str, &StepReport)> = self
            .steps
            .iter()
            .filter_map(|s| {
                let path = s.path.as_ref()?;
                Some((if *path == self.path { "final" } else { s.step }, s))
            })
            .collect();
        files.sort_by_key(|(role, _)| *role != "final");
        files
    }
}

/// What a final is, checked before anything is sent or written: shared by [`finalize`] and
/// [`dry_run`].
struct Prepared<'c> {
    draft: Draft,
    model: &'c ModelCaps,
    target: (u32, u32),
    prompt: String,
    format: OutputFormat,
    /// The final's path.
    out: PathBuf,
    /// What the render makes: the target, or the master.
    render_dims: (u32, u32),
    /// A master is rendered and upscaled to the target.
    upscaling: bool,
    /// Where the render saves: the final, or the master.
    render_out: PathBuf,
}

/// The draft looked up in `ledger` and every check of a final: the draft verified, its
/// model, the target, the prompt, the format, the output names free ([`crate::outputs::check`],
/// or [`crate::outputs::check_dry`] when `dry`).
fn prepare<'c>(
    spec: &FinalSpec,
    caps: &'c Capabilities,
    ledger: Option<&Ledger>,
    dry: bool,
) -> anyhow::Result<Prepared<'c>> {
    let draft = find_draft(ledger, &spec.draft)?;
    if !draft.verified {
        return Err(UsageError(format!(
            "the draft {} did not verify, so it is no reference for a final\n\nhint: pick another draft (`fourk history`), or run `fourk verify {}`",
            draft.path.display(),
            draft.path.display()
        ))
        .into());
    }
    let model_id = draft
        .model
        .clone()
        .unwrap_or_else(|| fourk_api::DEFAULT_MODEL.to_owned());
    let model = caps.model(&model_id).map_err(|e| UsageError(e.to_string()))?;
    let Some(size) = spec.size.or(draft.target) else {
        return Err(UsageError(format!(
            "the draft {} does not say which size it was drafted for\n\nhint: pass --size 4k (or WIDTHxHEIGHT)",
            draft.path.display()
        ))
        .into());
    };
    let target = check_target(model, size).map_err(|e| UsageError(format!("cannot make the final: {e}")))?;
    let Some(prompt) = spec.prompt.clone().or_else(|| draft.prompt.clone()) else {
        return Err(UsageError("the draft's prompt is not recorded\n\nhint: pass --prompt".into()).into());
    };
    let format = fourk_imaging::probe_file(&draft.path).map_or(OutputFormat::Png, |p| p.format);
    let format = crate::image_api::output_format(None, spec.out.as_deref())?.unwrap_or(format);
    let master_too = spec.upscale;
    let files = |o: &Path| {
        let mut f = crate::outputs::image_files(o);
        if master_too {
            f.extend(crate::outputs::image_files(&workflow::with_suffix(o, "master")));
        }
        f
    };
    let out = crate::outputs::resolve(spec.out.as_deref(), "fourk-final", format, files)?;
    let worst = 2 * crate::outputs::worst_image_bytes(size.dims());
    if dry {
        crate::outputs::check_dry(&files(&out), spec.force, worst)?;
    } else {
        crate::outputs::check(&files(&out), spec.force, worst)?;
    }
    let render_dims = if spec.upscale {
        master_size(model, target.0, target.1)
    } else {
        target
    };
    let upscaling = spec.upscale && render_dims != target;
    let render_out = if upscaling {
        workflow::with_suffix(&out, "master")
    } else {
        out.clone()
    };
    Ok(Prepared {
        draft,
        model,
        target,
        prompt,
        format,
        out,
        render_dims,
        upscaling,
        render_out,
    })
}

impl Prepared<'_> {
    /// The render of the final (native) or of its master: an edit of the draft, or a
    /// continuation of a Responses API draft.
    fn render<'a>(&'a self, spec: &FinalSpec) -> Render<'a> {
        let draft = &self.draft;
        Render {
            force: spec.force,
            previous_response: draft.response_id.as_deref(),
            responses: draft.response_id.is_some(),
            reference: draft.response_id.is_none().then_some(draft.path.as_path()),
            ..Render::image(
                &self.model.id,
                &self.prompt,
                self.render_dims,
                spec.quality,
                spec.out.is_none().then_some(self.format),
                &self.render_out,
            )
        }
    }

    /// The step the render is: `master` when it is upscaled, else `native`.
    fn step(&self) -> &'static str {
        if self.upscaling { "master" } else { "native" }
    }
}

/// The dry run of a final: the draft looked up in the ledger without writing to it, the same
/// checks as [`finalize`], the render's exact request and estimate (native, or a master and
/// its local upscale). Nothing is sent, no file is written, no ledger row is added.
///
/// # Errors
/// The [`UsageError`] the real run would stop with (unknown or unverified draft, no size or
/// prompt, output names taken); a ledger newer than this fourk.
pub fn dry_run(spec: &FinalSpec, fk: &crate::Fourk) -> anyhow::Result<WorkflowDryRun> {
    let caps = &fk.caps;
    let mut notes = Vec::new();
    let ledger = match Ledger::open_read_only(fk.ledger_path()) {
        Ok(l) => Some(l),
        Err(e) => {
            notes.push(format!(
                "the ledger is not available, so the run would not be recorded: {e}"
            ));
            None
        }
    };
    let p = prepare(spec, caps, ledger.as_ref(), true)?;
    drop(ledger);
    if spec.upscale && !p.upscaling {
        notes.push(format!(
            "{}x{} is not above the experimental limit, so the master is the final: no upscale",
            p.target.0, p.target.1
        ));
    }
    let r = p.render(spec);
    let dry = workflow::dry_run(&r, &spec.endpoint, caps)?;
    let mut steps = vec![PlannedStep::request(p.step(), &r, dry, &mut notes)];
    if p.upscaling {
        steps.push(PlannedStep::local("upscale", p.target, p.out.clone()));
    }
    let total = workflow::total_usd(&steps);
    Ok(WorkflowDryRun {
        steps,
        total_usd: total,
        worst_usd: total,
        notes: workflow::dedup(notes),
    })
}

/// Render the final from the draft (native, or master + local upscale), verify, annotate
/// and record every step with the draft -> final and master -> upscale links.
///
/// Steps (`native` or `master`, then `upscale`) are reported to `control`, which can stop
/// the work.
///
/// # Errors
/// [`UsageError`] before anything is sent (unknown or unverified draft, no size or prompt);
/// the render's failure; [`crate::send::Cancelled`].
#[allow(clippy::too_many_lines)]
pub async fn finalize(spec: &FinalSpec, fk: &crate::Fourk, control: &Control) -> anyhow::Result<FinalReport> {
    let caps = &fk.caps;
    let mode = if spec.upscale { "upscale" } else { "native" };
    let record = Record::begin(
        fk.ledger_path(),
        "final",
        &json!({"draft": spec.draft, "mode": mode, "quality": spec.quality, "size": spec.size}),
        control,
    );
    let fail = |e: anyhow::Error| -> anyhow::Result<FinalReport> { Err(record.fail(e)) };
    let prepared = prepare(spec, caps, record.ledger().as_deref(), false);
    let p = match prepared {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (draft, model, target, prompt, out) = (&p.draft, p.model, p.target, &p.prompt, &p.out);
    let upscaling = p.upscaling;
    let from =
        json!({"id": draft.id, "path": draft.path.display().to_string(), "response_id": draft.response_id});
    if spec.upscale && !upscaling {
        tracing::info!(
            "{}x{} is not above the experimental limit, so the master is the final: no upscale",
            target.0,
            target.1
        );
    }
    let r = p.render(spec);
    let started = Instant::now();
    if let Err(e) = record.step(p.step()) {
        return fail(e.into());
    }
    let (images, ok) = match workflow::render(&r, &spec.endpoint, caps, &record).await {
        Ok(v) => v,
        // The send path has a failed request on record already.
        Err(e) => return fail(e),
    };
    let Some(first) = images.first() else {
        return fail(anyhow::anyhow!("no image came back"));
    };
    let step = if upscaling { "master" } else { "native-from-draft" };
    let wf = json!({"command": "final", "mode": mode, "step": step, "from_draft": from,
        "target": format!("{}x{}", target.0, target.1)});
    if let Err(e) = crate::sidecar::annotate(&first.sidecar, "workflow", &wf) {
        tracing::warn!("{e:#}");
    }
    let ids = record.images(&images);
    let rendered_id = ids.first().copied();
    record.link(draft.id, rendered_id, LinkKind::DraftToFinal);
    let mut steps = vec![StepReport::saved(
        step,
        first,
        rendered_id,
        started.elapsed().as_secs_f64(),
    )];
    let mut shipped = (first.path.clone(), rendered_id, ok);
    if upscaling && ok {
        if let Err(e) = record.step("upscale") {
            return fail(e.into());
        }
        let t = Instant::now();
        let wf = json!({"command": "final", "mode": mode, "step": "upscale", "from_draft": from,
            "master": first.path.display().to_string(), "target": format!("{}x{}", target.0, target.1)});
        let up = match workflow::upscale(&first.path, target, out, &model.id, prompt, spec.quality, wf).await
        {
            Ok(u) => u,
            Err(e) => return fail(e),
        };
        let up_ids = record.images(std::slice::from_ref(&up));
        record.link(rendered_id, up_ids.first().copied(), LinkKind::MasterToUpscale);
        steps.push(StepReport::saved(
            "upscale",
            &up,
            up_ids.first().copied(),
            t.elapsed().as_secs_f64(),
        ));
        shipped = (up.path.clone(), up_ids.first().copied(), up.verified);
    } else if upscaling {
        tracing::error!(
            "the master {} did not verify; nothing was upscaled",
            first.path.display()
        );
    }
    let verified = shipped.2;
    record.finish(RunStatus::verified(verified));
    let usd = steps.iter().map(|s| s.usd).sum();
    let report = FinalReport {
        draft: draft.id,
        draft_path: draft.path.clone(),
        mode,
        target: format!("{}x{}", target.0, target.1),
        shipped: verified.then(|| shipped.0.clone()),
        id: shipped.1,
        verified,
        estimate: steps.iter().any(|s| s.estimate),
        steps,
        usd,
        path: shipped.0.clone(),
    };
    tracing::info!(
        "final {} ({mode}), ${:.3}{}: {}",
        if verified { "verified" } else { "NOT verified" },
        report.usd,
        if report.estimate { " (estimate)" } else { "" },
        shipped.0.display()
    );
    Ok(report)
}
