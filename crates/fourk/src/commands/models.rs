//! `fourk models`: the capability table in use.

use fourk_api::{Capabilities, ModelStatus, SizeRules};

use crate::cli::ModelsArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) fn run(args: &ModelsArgs, caps: &Capabilities) -> anyhow::Result<Exit> {
    let p = Printer;
    if args.check {
        return check(args, caps);
    }
    if args.toml {
        p.line(&toml::to_string_pretty(caps)?);
        return Ok(Exit::Success);
    }
    if args.json {
        p.json(caps);
        return Ok(Exit::Success);
    }
    for m in &caps.models {
        let aliases = if m.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also {})", m.aliases.join(", "))
        };
        let line = match m.status {
            ModelStatus::Retired => format!("{}: retired: {}", m.id, m.retired.as_deref().unwrap_or("")),
            ModelStatus::Active => {
                let sizes = match &m.sizes {
                    Some(SizeRules::Flexible {
                        max_edge,
                        multiple_of,
                        max_ratio,
                        min_pixels,
                        max_pixels,
                        ..
                    }) => {
                        format!(
                            "any WxH, edges multiples of {multiple_of}, long edge <= {max_edge}, ratio <= {max_ratio}:1, {min_pixels}-{max_pixels} pixels"
                        )
                    }
                    Some(SizeRules::Fixed { sizes }) => sizes.join(", "),
                    None => "-".into(),
                };
                let unknown = if m.unverified.is_empty() {
                    String::new()
                } else {
                    format!("; unknown (unverified, never sent): {}", m.unverified.join(", "))
                };
                format!(
                    "{}{aliases}: sizes {sizes}; quality {}; formats {}{unknown}",
                    m.id,
                    m.qualities.join("/"),
                    m.formats.join("/")
                )
            }
        };
        p.line(&line);
        if m.status == ModelStatus::Active {
            p.line(&format!(
                "  providers: {}",
                m.providers
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(g) = &m.gemini {
            // The tier table: what each imageSize is at the widescreen and square ratios.
            let at = |ratio: &str| {
                g.tiers
                    .iter()
                    .filter_map(|t| g.native(ratio, t).map(|(w, h)| format!("{t} {w}x{h}")))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            p.line(&format!(
                "  tiers {} at {} ratios ({}); 16:9: {}; 1:1: {}; fourk asks for the smallest tier covering --size and fits it exactly",
                g.tiers.join("/"),
                g.sizes.len(),
                g.sizes.keys().cloned().collect::<Vec<_>>().join(" "),
                at("16:9"),
                at("1:1")
            ));
        }
        p.line(&format!(
            "  source: {} (checked {})",
            m.source.as_deref().unwrap_or("unknown"),
            m.checked.as_deref().unwrap_or("never")
        ));
    }
    Ok(Exit::Success)
}

/// `fourk models --check`: the entries checked too long ago.
fn check(args: &ModelsArgs, caps: &Capabilities) -> anyhow::Result<Exit> {
    use fourk_core::models::{STALE_AFTER_DAYS, day_number, stale, today};
    let today = match &args.today {
        Some(d) => day_number(d).ok_or_else(|| {
            crate::UsageError(format!(
                "--today {d} is not a date\n\nhint: write it as YYYY-MM-DD"
            ))
        })?,
        None => today(),
    };
    let old = stale(caps, today);
    let p = Printer;
    if args.json {
        p.json(&old);
    } else {
        for s in &old {
            p.line(&match (&s.checked, s.age_days) {
                (Some(c), Some(days)) => format!("{}: checked {c}, {days} days ago", s.id),
                (Some(c), None) => format!("{}: checked '{c}', not a YYYY-MM-DD date", s.id),
                _ => format!("{}: never checked", s.id),
            });
        }
    }
    if old.is_empty() {
        tracing::info!("every entry was checked within {STALE_AFTER_DAYS} days");
        Ok(Exit::Success)
    } else {
        tracing::warn!(
            "{} entr{} checked more than {STALE_AFTER_DAYS} days ago: check them against their source and update `checked` (or a models file)",
            old.len(),
            if old.len() == 1 { "y was" } else { "ies were" }
        );
        Ok(Exit::CheckFailed)
    }
}
