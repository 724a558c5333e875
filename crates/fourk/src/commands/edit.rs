//! `fourk edit`: the flags become an [`fourk_core::spec::EditSpec`]; the core checks the
//! inputs, sends, saves, verifies and records; this module prints (the multipart layout for
//! `--dry-run`, paths or JSON).

use fourk_api::InputImage;
use fourk_core::edit::{build_request, edit, load_inputs, records};
use fourk_core::route::for_request;
use fourk_core::route::{self, Route};
use fourk_core::send::Recorder;
use fourk_core::sidecar::InputRecord;
use serde::Serialize;

use crate::cli::EditArgs;
use crate::exit::Exit;
use crate::output::Printer;

/// What `--dry-run` prints: the multipart layout, never the bytes.
#[derive(Debug, Serialize)]
struct Layout<'a> {
    method: &'static str,
    endpoint: &'static str,
    content_type: &'static str,
    fields: Vec<Field>,
    files: &'a [InputRecord],
}

#[derive(Debug, Serialize)]
struct Field {
    name: &'static str,
    value: String,
}

pub(super) async fn run(args: &EditArgs, fk: &fourk_core::Fourk) -> anyhow::Result<Exit> {
    let caps = &fk.caps;
    let spec = args.spec();
    if args.dry_run {
        let (loaded, mask) = load_inputs(&spec)?;
        let (req, _) = build_request(&spec, caps, loaded.len())?;
        let files = records(&loaded, mask.as_ref());
        match spec.route.route {
            Route::Images => Printer.json(&Layout {
                method: "POST",
                endpoint: "images/edits",
                content_type: "multipart/form-data",
                fields: req
                    .form_fields()
                    .into_iter()
                    .map(|(name, value)| Field { name, value })
                    .collect(),
                files: &files,
            }),
            Route::Responses => {
                let images: Vec<InputImage> = loaded.into_iter().map(|l| l.image).collect();
                if let Some(rr) =
                    for_request(&spec.route, caps, &req, &images, mask.as_ref().map(|m| &m.image))?
                {
                    Printer.json(&route::summarised(&rr));
                }
            }
        }
        return Ok(Exit::Success);
    }
    let record = serde_json::json!({
        "inputs": args.inputs,
        "mask": args.mask,
        "model": args.model,
        "route": format!("{:?}", spec.route.route).to_lowercase(),
    });
    let rec = Recorder::new(fk.ledger_path(), "edit", record);
    let result = edit(&spec, caps, &rec).await;
    rec.finish(&result);
    let (images, all_ok) = result?;
    Ok(crate::output::report(&images, all_ok, args.json))
}
