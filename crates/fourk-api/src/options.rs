//! The image options that generations, edits and the Responses API's `image_generation` tool
//! share, and the one set of checks all three run against the capability table.
//!
//! Each request type lends its fields to an [`ImageOptions`] view and gets back the same
//! violations with the same messages, so a rule fixed here is fixed on every route.

use crate::caps::{Capabilities, ModelCaps, TransparentSupport};
use crate::check::{Rule, Violation, Warning};
use crate::size::Size;
use crate::types::{Background, InputFidelity, OutputFormat, Quality};

/// A borrowed view of the options one request carries. `None` means "not sent".
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ImageOptions<'a> {
    /// The image model.
    pub model: &'a str,
    /// The prompt, for routes that carry one (the Responses tool takes it from the input).
    pub prompt: Option<&'a str>,
    pub size: Option<Size>,
    pub quality: Option<Quality>,
    pub background: Option<Background>,
    pub output_format: Option<OutputFormat>,
    pub output_compression: Option<u8>,
    pub n: Option<u8>,
    /// Whether the request streams (the `stream` field, or the Responses request's).
    pub stream: bool,
    pub partial_images: Option<u8>,
    pub input_fidelity: Option<InputFidelity>,
}

/// Where the options live in the body: `""` for the Image API, `tools[0].` for a tool, so
/// violations name the field the user has to change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefix<'a>(pub &'a str);

impl Prefix<'_> {
    fn param(self, field: &str) -> String {
        format!("{}{field}", self.0)
    }
}

/// The model's entry, or the violation that says why there is none.
pub(crate) fn resolve_model<'c>(
    caps: &'c Capabilities,
    model: &str,
    prefix: Prefix<'_>,
) -> Result<&'c ModelCaps, Violation> {
    let m = caps.model(model).map_err(|e| {
        Violation::new(
            if e.rule() == "retired" {
                Rule::Retired
            } else {
                Rule::UnknownModel
            },
            prefix.param("model"),
            e.to_string(),
        )
    })?;
    // OpenAI's request shapes are for the models OpenAI-shaped providers serve.
    if !m.providers.iter().any(|p| p.speaks_openai()) {
        let home = m.providers.first().copied().unwrap_or_default();
        return Err(Violation::new(
            Rule::UnknownModel,
            prefix.param("model"),
            format!(
                "The model `{model}` is served by the {home} provider, not by OpenAI's image endpoints; `fourk generate` and `fourk edit` with --model {model} send it there (drafts, finals and batches of {home} models are not supported yet)"
            ),
        ));
    }
    Ok(m)
}

/// Check every option against the model; all violations are returned, not just the first.
pub(crate) fn check<'c>(
    caps: &'c Capabilities,
    o: &ImageOptions<'_>,
    prefix: Prefix<'_>,
) -> Result<(&'c ModelCaps, Vec<Warning>), Vec<Violation>> {
    let model = resolve_model(caps, o.model, prefix).map_err(|v| vec![v])?;
    let mut errs = Vec::new();
    let mut warnings = Vec::new();
    if let Some(prompt) = o.prompt {
        let chars = prompt.chars().count();
        if prompt.trim().is_empty() {
            errs.push(Violation::new(
                Rule::Prompt,
                prefix.param("prompt"),
                "The prompt is empty; describe the image to generate.",
            ));
        } else if chars > model.max_prompt_chars {
            errs.push(Violation::new(
                Rule::Prompt,
                prefix.param("prompt"),
                format!(
                    "The prompt is {chars} characters; {} takes at most {}.",
                    model.id, model.max_prompt_chars
                ),
            ));
        }
    }
    if let Some(size) = o.size {
        errs.extend(model.size_violations(size).into_iter().map(|mut v| {
            v.param = prefix.param(&v.param);
            v
        }));
        if model.is_experimental(size) && errs.is_empty() {
            warnings.push(Warning {
                id: "experimental_size",
                message: format!(
                    "{size} is above 2560x1440: {} documents outputs this large as experimental (results may vary).",
                    model.id
                ),
            });
        }
    }
    if let Some(n) = o.n
        && (n < 1 || n > model.max_n)
    {
        errs.push(Violation::new(
            Rule::N,
            prefix.param("n"),
            format!("n is {n}; it must be between 1 and {}.", model.max_n),
        ));
    }
    if let Some(q) = o.quality
        && !model.qualities.iter().any(|x| x == q.as_str())
    {
        errs.push(Violation::new(
            Rule::Quality,
            prefix.param("quality"),
            format!(
                "{} does not take quality '{q}'; it takes {}.",
                model.id,
                model.qualities.join(", ")
            ),
        ));
    }
    let format = o.output_format.unwrap_or(OutputFormat::Png);
    if !model.formats.iter().any(|x| x == format.as_str()) {
        errs.push(Violation::new(
            Rule::OutputFormat,
            prefix.param("output_format"),
            format!(
                "{} does not produce '{format}'; it produces {}.",
                model.id,
                model.formats.join(", ")
            ),
        ));
    }
    if let Some(c) = o.output_compression {
        if c > 100 {
            errs.push(Violation::new(
                Rule::OutputCompression,
                prefix.param("output_compression"),
                format!("output_compression is {c}; it must be between 0 and 100."),
            ));
        } else if format == OutputFormat::Png {
            errs.push(Violation::new(
                Rule::OutputCompression,
                prefix.param("output_compression"),
                "output_compression applies only to jpeg and webp output; PNG is lossless. Choose --format jpeg or webp, or drop --compression.",
            ));
        }
    }
    if o.background == Some(Background::Transparent) {
        if format == OutputFormat::Jpeg {
            errs.push(Violation::new(
                Rule::Background,
                prefix.param("background"),
                "A transparent background needs png or webp output; JPEG has no alpha channel.",
            ));
        }
        match model.transparent {
            TransparentSupport::Unsupported => errs.push(Violation::new(
                Rule::Background,
                prefix.param("background"),
                format!("{} does not support transparent backgrounds.", model.id),
            )),
            TransparentSupport::Preview => warnings.push(Warning {
                id: "transparent_preview",
                message: format!(
                    "Transparent backgrounds are in preview for {}: fourk checks the returned alpha channel.",
                    model.id
                ),
            }),
            TransparentSupport::Supported => {}
        }
    }
    if o.stream && !model.streaming {
        errs.push(Violation::new(
            Rule::Stream,
            "stream",
            format!("{} does not stream.", model.id),
        ));
    }
    if let Some(p) = o.partial_images {
        if p > 3 {
            errs.push(Violation::new(
                Rule::PartialImages,
                prefix.param("partial_images"),
                format!("partial_images is {p}; it must be between 0 and 3."),
            ));
        } else if !o.stream {
            errs.push(Violation::new(
                Rule::PartialImages,
                prefix.param("partial_images"),
                "partial_images only applies to streamed requests; set stream to true.",
            ));
        }
    }
    if o.input_fidelity.is_some() && !model.input_fidelity {
        errs.push(Violation::new(
            Rule::UnsupportedParameter,
            prefix.param("input_fidelity"),
            format!("{} does not take input_fidelity; omit this parameter.", model.id),
        ));
    }
    if errs.is_empty() {
        Ok((model, warnings))
    } else {
        Err(errs)
    }
}
