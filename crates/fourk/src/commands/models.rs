//! `fourk models`: the capability table in use.

use fourk_api::{Capabilities, ModelStatus, SizeRules};

use crate::cli::ModelsArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) fn run(args: &ModelsArgs, caps: &Capabilities) -> anyhow::Result<Exit> {
    let p = Printer;
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
                format!(
                    "{}{aliases}: sizes {sizes}; quality {}; formats {}",
                    m.id,
                    m.qualities.join("/"),
                    m.formats.join("/")
                )
            }
        };
        p.line(&line);
    }
    Ok(Exit::Success)
}
