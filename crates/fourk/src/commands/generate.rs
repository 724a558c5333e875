//! `fourk generate`: the flags become a [`GenerateSpec`]; the core checks, sends, saves,
//! verifies and records; this module prints (the body for `--dry-run`, paths or JSON).

use fourk_core::generate::{Overrides, build_request_with, generate};
use fourk_core::route::for_request;
use fourk_core::send::Recorder;

use crate::cli::GenerateArgs;
use crate::exit::Exit;
use crate::output::Printer;

pub(super) async fn run(args: &GenerateArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let caps = &fk.caps;
    let spec = args.spec();
    if args.dry_run {
        // With --transparent, the first request the decision would send.
        let over = if spec.transparency.transparent {
            fourk_core::transparent::first_request(&spec, caps)?
        } else {
            Overrides::default()
        };
        let (req, _, warnings) = build_request_with(&spec, caps, &over)?;
        for w in &warnings {
            tracing::warn!("{}", w.message);
        }
        let body = match for_request(&spec.route, caps, &req, &[], None)? {
            None => serde_json::to_string(&req)?,
            Some(rr) => serde_json::to_string(&rr)?,
        };
        Printer.line(&body);
        return Ok(Exit::Success);
    }
    let record = serde_json::json!({
        "prompt": spec.prompt,
        "model": spec.model,
        "size": spec.size.to_string(),
        "quality": spec.image.quality.map(|q| format!("{q:?}").to_lowercase()),
        "n": spec.n,
        "route": format!("{:?}", spec.route.route).to_lowercase(),
        "transparent": spec.transparency.transparent,
    });
    let rec = Recorder::new(fk.ledger_path(), "generate", record);
    let result = generate(&spec, caps, &rec).await;
    rec.finish(&result);
    let (images, all_ok) = result?;
    Ok(crate::output::report(&images, all_ok, args.json))
}
