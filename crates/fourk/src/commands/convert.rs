//! `fourk convert`: re-encode as PNG, JPEG or WebP (lossy or lossless), with quality meaning
//! the API's output_compression, metadata carried where the format allows, verified.

use std::time::Instant;

use serde_json::json;

use super::pipeline::{self, Job};
use crate::cli::pipeline::ConvertArgs;
use crate::exit::Exit;
use tokio_util::sync::CancellationToken;

pub(super) fn run(args: &ConvertArgs, cancel: CancellationToken) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let input = pipeline::read_input(&args.input)?;
    let enc = args.encode.resolve(&args.out, input.record.format)?;
    let out = pipeline::with_extension(&args.out, enc.format);
    let job = Job {
        operation: "convert",
        inputs: vec![input.record.clone()],
        parameters: json!({
            "from": input.record.format,
            "to": enc.format,
            "flatten": args.encode.flatten.map(|[r, g, b]| format!("#{r:02x}{g:02x}{b:02x}")),
        }),
        provenance: &input.provenance,
        input_text: &input.text,
        source: input.source.clone(),
        report: None,
        timings: [("decode", input.decode_ms)].into(),
        started,
        cancel,
    };
    let (_, exit) = pipeline::deliver(&out, &input.image, &args.encode, enc, job, args.json)?;
    Ok(exit)
}
