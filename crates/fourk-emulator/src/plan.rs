//! What one image request will produce, resolved from a validated request: sizes, quality,
//! format, usage, the inputs of an edit and the fault to apply. Every route (generations,
//! edits, the Responses tool; streamed or not) renders through here, so a streamed final image
//! is byte for byte the non-streamed one.
//!
//! Settings the API leaves to the model resolve as follows (the API does not document them):
//! `size: auto` (or no size) is `1024x1024` for generations and, for edits, the standard size
//! (`1024x1024`, `1536x1024`, `1024x1536`) closest to the first input's aspect ratio;
//! `quality: auto` (or none) is `medium`; `background: auto` is `opaque`; `output_format`
//! defaults to `png`.
//!
//! Input image tokens (edits and the Responses tool with an input image) are not published;
//! the emulator bills each input image with the gpt-image-2 output-token formula at the
//! image's own size (scaled down to fit 2048x2048 first, as large inputs are downscaled),
//! at `high` for gpt-image-2 (which always reads inputs at high fidelity) and for
//! `input_fidelity: high`, and at `low` otherwise.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use fourk_api::{Background, ImageRequest, LatencyModel, ModelCaps, OutputFormat, Quality, Usage, cost};
use image::DynamicImage;

use crate::compose::{EditInputs, compose_edit};
use crate::error::EmulatorError;
use crate::faults::{FaultKind, InjectedFault};
use crate::policy;
use crate::render::{on_key, render, render_plain};

/// How the first input image's detail is read, which sets its token count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fidelity {
    Low,
    High,
}

impl Fidelity {
    /// The fidelity a model uses: gpt-image-2 (whose capabilities reject `input_fidelity`)
    /// always reads inputs at high fidelity; other models use what was asked, default low.
    pub(crate) fn resolve(model: &ModelCaps, asked: Option<&str>) -> Self {
        match asked {
            _ if !model.input_fidelity => Self::High,
            Some("high") => Self::High,
            _ => Self::Low,
        }
    }
}

/// Everything needed to render and describe one request.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) prompt: String,
    pub(crate) model: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) quality: Quality,
    pub(crate) format: OutputFormat,
    pub(crate) compression: Option<u8>,
    pub(crate) transparent: bool,
    /// `[fourk:no-alpha]`: asked for transparency, but the pixels come back opaque.
    alpha_dropped: bool,
    /// The flat backdrop colour the prompt asks for (a chroma-key request).
    key_background: Option<[u8; 3]>,
    /// `[fourk:stream-error]`: a stream fails after its partial images.
    pub(crate) stream_error: bool,
    pub(crate) n: u8,
    /// Seconds the real API would take, before `latency_scale`.
    latency_s: f64,
    /// Billed tokens for all `n` images.
    pub(crate) usage: Usage,
    text_tokens: u64,
    image_input_tokens: u64,
    output_tokens_per_image: u64,
    pub(crate) edit: Option<Arc<EditInputs>>,
    pub(crate) fault: Option<InjectedFault>,
    /// Mixed into the render seed so that different routes draw different pictures.
    seed_tag: &'static str,
}

impl Plan {
    /// The settings an answer echoes: what was resolved for this request.
    pub(crate) fn settings(&self) -> fourk_api::ImageSettings {
        fourk_api::ImageSettings {
            background: Some(self.background().to_owned()),
            output_format: Some(self.format.as_str().to_owned()),
            quality: Some(self.quality.as_str().to_owned()),
            size: Some(self.size()),
        }
    }

    /// Resolve a validated request. `edit` carries the decoded inputs of an edit.
    pub(crate) fn resolve(
        req: &ImageRequest,
        model: &ModelCaps,
        edit: Option<Arc<EditInputs>>,
        fidelity: Fidelity,
        fault: Option<InjectedFault>,
    ) -> Self {
        let first = edit.as_ref().and_then(|e| e.images.first());
        let (width, height) = req
            .size
            .and_then(fourk_api::Size::dims)
            .unwrap_or_else(|| first.map_or((1024, 1024), |img| auto_size(img.width(), img.height())));
        let quality = match req.quality {
            None | Some(Quality::Auto) => Quality::Medium,
            Some(q) => q,
        };
        let n = req.n.unwrap_or(1).max(1);
        let output_tokens_per_image = cost::output_tokens(model, width, height, quality).unwrap_or(0);
        let text_tokens = cost::estimate_text_tokens(&req.prompt);
        let image_input_tokens = edit.as_ref().map_or(0, |e| {
            e.images
                .iter()
                .map(|img| input_image_tokens(img.width(), img.height(), fidelity))
                .sum()
        });
        Self {
            prompt: req.prompt.clone(),
            model: model.id.clone(),
            width,
            height,
            quality,
            format: req.effective_format(),
            compression: req.output_compression,
            transparent: req.background == Some(Background::Transparent),
            alpha_dropped: req.prompt.contains(policy::MAGIC_NO_ALPHA),
            key_background: policy::key_background(&req.prompt),
            stream_error: req.prompt.contains(policy::MAGIC_STREAM_ERROR),
            n,
            latency_s: model.latency.as_ref().map_or_else(
                || LatencyModel::default().seconds(width, height, quality),
                |l| l.seconds(width, height, quality),
            ),
            usage: Usage::new(
                text_tokens,
                image_input_tokens,
                output_tokens_per_image * u64::from(n),
            ),
            text_tokens,
            image_input_tokens,
            output_tokens_per_image,
            edit,
            fault: fault.or_else(|| policy::experimental_fault(&req.prompt, model, width, height)),
            seed_tag: "",
        }
    }

    /// Mix `tag` into the render seed.
    pub(crate) fn with_seed_tag(mut self, tag: &'static str) -> Self {
        self.seed_tag = tag;
        self
    }

    /// The usage of image `i` alone, for stream events: the input is billed with the first
    /// image, so the events of a request add up to its non-streamed `usage`.
    pub(crate) fn image_usage(&self, i: u8) -> Usage {
        let (text, image) = if i == 0 {
            (self.text_tokens, self.image_input_tokens)
        } else {
            (0, 0)
        };
        Usage::new(text, image, self.output_tokens_per_image)
    }

    /// The text and image input tokens.
    pub(crate) fn input_tokens(&self) -> (u64, u64) {
        (self.text_tokens, self.image_input_tokens)
    }

    /// `WxH` as the answer reports it: always the size asked for, even under a
    /// `wrong-size` fault.
    pub(crate) fn size(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }

    /// `transparent` or `opaque`.
    pub(crate) fn background(&self) -> &'static str {
        if self.transparent { "transparent" } else { "opaque" }
    }

    fn fault(&self, kind: FaultKind) -> Option<InjectedFault> {
        self.fault.filter(|f| f.kind == kind)
    }

    /// The pixels of image `i`: the procedural picture, or for an edit the input with the
    /// procedural layer blended in. A `wrong-size` fault halves both edges.
    pub(crate) fn render(&self, i: u8) -> DynamicImage {
        let (w, h) = match self.fault(FaultKind::WrongSize) {
            Some(_) => ((self.width / 2).max(16), (self.height / 2).max(16)),
            None => (self.width, self.height),
        };
        // The format is not part of the seed: a PNG and a JPEG of the same request show
        // the same picture.
        let mut extra = format!("{}|{}|{i}", self.model, self.quality);
        if !self.seed_tag.is_empty() {
            extra.push('|');
            extra.push_str(self.seed_tag);
        }
        let transparent = self.transparent && !self.alpha_dropped;
        match &self.edit {
            // A model asked for a flat chroma-key backdrop paints exactly that colour
            // around the subject (soft edges blend into it), and no transparency.
            None if !transparent && self.key_background.is_some() => {
                let key = self.key_background.unwrap_or_default();
                let mut img = on_key(&render_plain(&self.prompt, w, h, &extra, true), key);
                crate::render::draw_overlay(&mut img, &self.prompt);
                img
            }
            None => render(&self.prompt, w, h, &extra, transparent),
            Some(inputs) => {
                extra.push_str("|edit:");
                extra.push_str(&inputs.digest);
                let layer = render_plain(&self.prompt, w, h, &extra, false);
                compose_edit(inputs, &layer, &self.prompt, transparent)
            }
        }
    }

    /// Encode `img` in the requested format, as base64.
    pub(crate) fn encode(&self, img: &DynamicImage) -> Result<String, EmulatorError> {
        Ok(base64::engine::general_purpose::STANDARD.encode(self.encode_bytes(img)?))
    }

    fn encode_bytes(&self, img: &DynamicImage) -> Result<Vec<u8>, EmulatorError> {
        fourk_imaging::encode(img, self.format, self.compression)
            .map_err(|e| EmulatorError::Internal(e.to_string()))
    }

    /// The final image as the answer carries it: encoded, base64, and broken on purpose
    /// under a `corrupt` fault. Returns the base64 and the encoded bytes (before any
    /// corruption).
    pub(crate) fn finish(&self, img: &DynamicImage) -> Result<(String, Vec<u8>), EmulatorError> {
        let bytes = self.encode_bytes(img)?;
        let engine = base64::engine::general_purpose::STANDARD;
        let b64 = match self.fault(FaultKind::Corrupt) {
            None => engine.encode(&bytes),
            Some(f) if f.variant % 2 == 0 => {
                // Characters outside the base64 alphabet, in the middle of the data.
                let mut s = engine.encode(&bytes);
                let mid = s.len() / 2;
                s.replace_range(mid..(mid + 4).min(s.len()), "*!*!");
                s
            }
            Some(_) => engine.encode(&bytes[..bytes.len() / 2]),
        };
        Ok((b64, bytes))
    }

    /// Render and finish every image; runs on a blocking thread.
    pub(crate) fn render_all(&self) -> Result<Vec<String>, EmulatorError> {
        (0..self.n)
            .map(|i| self.finish(&self.render(i)).map(|(b64, _)| b64))
            .collect()
    }

    /// How long the real API would take, before `latency_scale`: the model's render-time
    /// model (`[model.latency]` in the capability table, the numbers `fourk plan` uses), about
    /// 80 s for 1024x1024 medium and 195 s for high on gpt-image-2.
    pub(crate) fn modelled_latency(&self) -> Duration {
        Duration::from_secs_f64(self.latency_s)
    }

    /// [`Self::modelled_latency`] times `scale`, at most a day: a larger wait only ever ends
    /// at the request timeout, and a bounded one can be split into stream milestones
    /// without overflowing.
    pub(crate) fn scaled_latency(&self, scale: f64) -> Duration {
        const CAP: Duration = Duration::from_secs(24 * 60 * 60);
        if scale <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(self.modelled_latency().as_secs_f64() * scale).map_or(CAP, |d| d.min(CAP))
    }
}

/// The standard size closest in aspect ratio to `w` x `h`.
fn auto_size(w: u32, h: u32) -> (u32, u32) {
    let ratio = f64::from(w.max(1)) / f64::from(h.max(1));
    [(1024, 1024), (1536, 1024), (1024, 1536)]
        .into_iter()
        .min_by(|a, b| {
            let d = |(x, y): (u32, u32)| (f64::from(x) / f64::from(y)).ln() - ratio.ln();
            d(*a).abs().total_cmp(&d(*b).abs())
        })
        .unwrap_or((1024, 1024))
}

/// Tokens billed for one input image (see the module docs).
pub(crate) fn input_image_tokens(w: u32, h: u32, fidelity: Fidelity) -> u64 {
    let long = w.max(h).max(1);
    let (w, h) = if long > 2048 {
        let scale = 2048.0 / f64::from(long);
        (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        )
    } else {
        (w.max(1), h.max(1))
    };
    let quality = match fidelity {
        Fidelity::High => Quality::High,
        Fidelity::Low => Quality::Low,
    };
    cost::gpt_image_2_output_tokens(w, h, quality)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_settings_resolve_to_documented_values() {
        let caps = fourk_api::Capabilities::builtin();
        let model = caps.model("gpt-image-2").unwrap();
        let mut req = ImageRequest::new("gpt-image-2", "a fox");
        req.size = Some(fourk_api::Size::Auto);
        req.quality = Some(Quality::Auto);
        req.n = Some(2);
        let plan = Plan::resolve(&req, model, None, Fidelity::High, None);
        assert_eq!(
            (plan.width, plan.height, plan.quality),
            (1024, 1024, Quality::Medium)
        );
        assert_eq!(plan.usage.output_tokens, 2 * 1756);
        assert_eq!(plan.usage.input_tokens, cost::estimate_text_tokens("a fox"));
        assert!(!plan.transparent);
        assert_eq!(plan.modelled_latency().as_secs(), 80);
        let total: u64 = (0..2).map(|i| plan.image_usage(i).total_tokens).sum();
        assert_eq!(total, plan.usage.total_tokens);
    }

    #[test]
    fn edit_sizes_and_input_tokens() {
        assert_eq!(auto_size(800, 600), (1536, 1024));
        assert_eq!(auto_size(600, 900), (1024, 1536));
        assert_eq!(auto_size(500, 520), (1024, 1024));
        assert_eq!(input_image_tokens(1024, 1024, Fidelity::High), 7024);
        assert_eq!(input_image_tokens(1024, 1024, Fidelity::Low), 196);
        assert_eq!(
            input_image_tokens(4096, 4096, Fidelity::High),
            input_image_tokens(2048, 2048, Fidelity::High)
        );
        assert!(input_image_tokens(1, 1, Fidelity::Low) > 0);
    }
}
