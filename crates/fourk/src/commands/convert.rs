//! `fourk convert`: re-encode as PNG, JPEG or WebP (lossy or lossless), with quality meaning
//! the API's output_compression, metadata carried where the format allows, verified.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use super::pipeline::{self, EncodeArgs, Job};
use crate::exit::Exit;

/// `fourk convert`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  fourk convert hero.png --format webp --quality 80 --out hero.webp\n  fourk convert hero.png --out hero-small.png --png-level best"
)]
pub struct ConvertArgs {
    /// The picture (PNG, JPEG or WebP).
    pub input: PathBuf,
    /// Where to write (the format follows the extension unless --format says otherwise).
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(args: &ConvertArgs) -> anyhow::Result<Exit> {
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
    };
    let (_, exit) = pipeline::deliver(&out, &input.image, &args.encode, enc, job, args.json)?;
    Ok(exit)
}
