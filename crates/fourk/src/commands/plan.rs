//! `fourk plan`: the practice rules applied to a target, with predicted tokens, dollars and
//! time for every route, offline. The arithmetic is `fourk_api::plan`; this module parses the
//! flags and prints.

use clap::Args;
use fourk_api::plan::{Plan, PlanInput, human_seconds, plan};
use fourk_api::{Capabilities, Quality, Size};

use crate::UsageError;
use crate::exit::Exit;
use crate::output::Printer;

/// Dollars on the command line: a finite amount of zero or more.
///
/// # Errors
/// A message naming the rule.
pub fn parse_usd(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_start_matches('$');
    let v: f64 = t
        .parse()
        .map_err(|_| format!("'{s}' is not an amount of dollars; write it like 0.50"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("'{s}' must be a finite amount of 0 or more dollars"));
    }
    Ok(v)
}

/// Seconds on the command line: finite and above zero.
///
/// # Errors
/// A message naming the rule.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("'{s}' must be a finite number of seconds above 0"));
    }
    Ok(v)
}

/// `fourk plan`.
#[derive(Debug, Args)]
#[command(after_help = "Example: fourk plan --size 4k --quality high --variants 6 --budget 1.50")]
pub struct PlanArgs {
    /// The deliverable's size: WIDTHxHEIGHT or a preset (4k=3840x2160, 2k=2560x1440, ...).
    #[arg(long, short)]
    pub size: Size,
    /// The deliverable's quality.
    #[arg(long, default_value = "high")]
    pub quality: Quality,
    /// The image model.
    #[arg(long, short, default_value = fourk_api::DEFAULT_MODEL)]
    pub model: String,
    /// Variants to choose among (or prompt tests); 1 means one hero image.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub variants: u32,
    /// The image carries dense text or UI: approve a smaller master before the final.
    #[arg(long)]
    pub text_heavy: bool,
    /// The deliverable needs a transparent background.
    #[arg(long)]
    pub transparent: bool,
    /// Rule out routes predicted to cost more than this many dollars.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub budget: Option<f64>,
    /// Rule out routes predicted to take longer than this (median rendering time, approval
    /// not included).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub max_time: Option<f64>,
    /// Print the whole plan as one JSON object.
    #[arg(long)]
    pub json: bool,
}

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
