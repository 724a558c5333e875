//! `fourk plan`: the practice rules applied to a target, with predicted tokens, dollars and
//! time for every route, offline. The arithmetic is `fourk_api::plan`; this module parses the
//! flags and prints.

use fourk_api::Capabilities;
use fourk_api::plan::{Plan, PlanInput, human_seconds, plan};

use crate::UsageError;
use crate::cli::workflow::PlanArgs;
use crate::exit::Exit;
use crate::output::Printer;

/// The plan the arguments ask for.
///
/// # Errors
/// [`UsageError`] for an unknown model, an invalid size or quality.
pub fn make(args: &PlanArgs, caps: &Capabilities) -> anyhow::Result<Plan> {
    let mut input = PlanInput::new(&args.model, args.size, args.quality);
    input.variants = args.variants;
    input.text_heavy = args.text_heavy;
    input.transparent = args.transparent;
    input.budget_usd = args.budget;
    input.max_seconds = args.max_time;
    plan(caps, &input).map_err(|e| UsageError(format!("cannot plan: {e}")).into())
}

/// The plan as text, one line of data per row.
#[must_use]
pub fn render_text(p: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!(
        "plan: {} {} on {}, {} variant{}{}{}",
        p.size,
        p.quality,
        p.model,
        p.variants,
        if p.variants == 1 { "" } else { "s" },
        if p.text_heavy { ", dense text" } else { "" },
        if p.transparent { ", transparent" } else { "" },
    ));
    if let Some(note) = &p.experimental_note {
        out.push(format!("EXPERIMENTAL: {note}"));
    }
    match p.winner() {
        Some(w) => out.push(format!("recommended: {} ({})", w.id.as_str(), w.title)),
        None => out.push("recommended: none (no route fits the limits)".into()),
    }
    for why in &p.why {
        out.push(format!("  why: {why}"));
    }
    out.push(String::new());
    out.push(format!(
        "{:<2}{:<20} {:>9} {:>9} {:>12}  {}",
        "", "route", "tokens", "dollars", "time", "status"
    ));
    for c in &p.candidates {
        let mark = if Some(c.id) == p.recommended { "*" } else { " " };
        let status = match (&c.excluded, c.experimental) {
            (Some(why), _) => format!("excluded: {why}"),
            (None, true) => "ok, experimental size".into(),
            (None, false) => "ok".into(),
        };
        out.push(format!(
            "{mark} {:<20} {:>9} {:>9} {:>12}  {status}",
            c.id.as_str(),
            c.tokens,
            format!("${:.3}", c.usd),
            human_seconds(c.seconds)
        ));
        for s in &c.steps {
            let what = match s.quality {
                Some(q) => format!(
                    "{} x{} {} {} ({} out + {} in tokens, ${:.3})",
                    step_name(s.kind),
                    s.images,
                    s.size,
                    q,
                    s.output_tokens,
                    s.input_tokens,
                    s.usd
                ),
                None => format!("{} to {} (local)", step_name(s.kind), s.size),
            };
            out.push(format!(
                "      {what}, {}{}",
                human_seconds(s.seconds),
                if s.experimental { ", experimental" } else { "" }
            ));
        }
        for n in &c.notes {
            out.push(format!("      note: {n}"));
        }
    }
    if !p.other_providers.is_empty() {
        out.push(String::new());
        out.push(
            "other providers (one image per variant; the exact size is made locally from a tier):".into(),
        );
        for o in &p.other_providers {
            out.push(format!(
                "  {:<30} ${:.3}  {:>10}  {} at {} = {} native, {} x{:.2} to {}, {}x{} px cropped",
                format!("{}/{}", o.provider, o.model),
                o.usd,
                human_seconds(o.seconds),
                o.image_size,
                o.aspect_ratio,
                o.native,
                o.resampled,
                o.scale,
                p.size,
                o.cropped.0,
                o.cropped.1
            ));
        }
    }
    out.push(String::new());
    out.push(format!(
        "prices: ${}/M image output, ${}/M image input, ${}/M text input{}",
        p.prices.image_output,
        p.prices.image_input,
        p.prices.text_input,
        if p.prices.estimate { " (estimated)" } else { "" }
    ));
    out.push(format!("latency: {}", p.latency_source));
    out
}

fn step_name(kind: fourk_api::plan::StepKind) -> &'static str {
    use fourk_api::plan::StepKind;
    match kind {
        StepKind::Drafts => "drafts",
        StepKind::Native => "native",
        StepKind::NativeFromReference => "native from draft",
        StepKind::Master => "master",
        StepKind::Upscale => "upscale",
        StepKind::Cutout => "key-colour cutout",
    }
}

pub(super) fn run(args: &PlanArgs, caps: &Capabilities) -> anyhow::Result<Exit> {
    let p = make(args, caps)?;
    let printer = Printer;
    if args.json {
        printer.json(&p);
    } else {
        for line in render_text(&p) {
            printer.line(&line);
        }
    }
    if p.recommended.is_some() {
        Ok(Exit::Success)
    } else {
        tracing::error!("no route fits --budget / --max-time; the plan shows what each would need");
        Ok(Exit::CheckFailed)
    }
}
