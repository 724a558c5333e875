//! `fourk size`: the verdict on one size, offline.

use fourk_api::{Capabilities, SizeVerdict};

use crate::cli::SizeArgs;
use crate::exit::Exit;
use crate::output::Printer;

/// The verdict for a size string against a model; an unknown or retired model is a verdict too.
#[must_use]
pub fn verdict(caps: &Capabilities, size: &str, model: &str) -> SizeVerdict {
    match caps.model(model) {
        Ok(m) => m.check_size_str(size, model),
        Err(e) => SizeVerdict {
            size: size.to_owned(),
            width: None,
            height: None,
            model: model.to_owned(),
            valid: false,
            experimental: false,
            pixels: None,
            violations: vec![e.violation()],
            suggestions: Vec::new(),
        },
    }
}

/// Render a verdict for people.
#[must_use]
pub fn human(v: &SizeVerdict) -> String {
    let mut s = String::new();
    if v.valid {
        s.push_str(&format!("{} is valid for {}", v.size, v.model));
        if let Some(p) = v.pixels {
            s.push_str(&format!(" ({p} pixels)"));
        }
        if v.experimental {
            s.push_str("\nnote: above 2560x1440 the model's output is experimental (results may vary)");
        }
    } else {
        s.push_str(&format!("{} is not valid for {}:", v.size, v.model));
        for x in &v.violations {
            s.push_str(&format!("\n  {}: {}", x.rule.id(), x.message));
        }
        if !v.suggestions.is_empty() {
            s.push_str(&format!("\nnearest valid sizes: {}", v.suggestions.join(", ")));
        }
    }
    s
}

pub(super) fn run(args: &SizeArgs, caps: &Capabilities) -> Exit {
    let v = verdict(caps, &args.size, &args.model);
    let p = Printer;
    if args.json {
        p.json(&v);
    } else {
        p.line(&human(&v));
    }
    if v.valid { Exit::Success } else { Exit::CheckFailed }
}
