//! Checking a size against a model: every violated rule, each with a stable id and a message
//! that names the limit, plus the nearest valid sizes.

use serde::{Deserialize, Serialize};

use crate::caps::{ModelCaps, SizeRules};
use crate::size::{Size, SizeParseError};

/// Something worth telling the user about a valid request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable id: `experimental_size`, `transparent_preview`.
    pub id: &'static str,
    /// What to expect.
    pub message: String,
}

/// Stable ids of the rules a size or request can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// Not `WIDTHxHEIGHT`, `auto` or a preset.
    Format,
    /// An edge is longer than the model allows.
    MaxEdge,
    /// An edge is not a multiple of 16.
    #[serde(rename = "multiple_of_16")]
    MultipleOf16,
    /// Long edge over short edge is more than 3:1.
    AspectRatio,
    /// Too few pixels.
    MinPixels,
    /// Too many pixels.
    MaxPixels,
    /// A fixed-size model does not offer this size.
    UnsupportedSize,
    /// The model is not in the capability table.
    UnknownModel,
    /// The model is retired.
    Retired,
    /// The prompt is empty or too long.
    Prompt,
    /// `n` is out of range.
    N,
    /// `quality` is not offered by the model.
    Quality,
    /// `output_format` is not offered by the model.
    OutputFormat,
    /// `output_compression` is out of range or used with PNG.
    OutputCompression,
    /// `background` is not possible with these settings.
    Background,
    /// `partial_images` is out of range, or given without streaming.
    PartialImages,
    /// `stream` is not offered by the model.
    Stream,
    /// `moderation` has an unknown value.
    Moderation,
    /// `input_fidelity` is not `high` or `low`.
    InputFidelity,
    /// A field the model does not take.
    UnsupportedParameter,
    /// A field no image endpoint knows.
    UnknownParameter,
    /// A field of the wrong JSON type.
    InvalidType,
    /// A required field is absent.
    MissingField,
    /// The input images of an edit: none, more than 16, too large, or of a type the API
    /// does not read.
    Image,
    /// The mask of an edit: not a PNG, or too large.
    Mask,
    /// A Responses API tool setting that contradicts the rest of the request.
    Tool,
}

impl Rule {
    /// The id as it appears in JSON output.
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Self::Format => "format",
            Self::MaxEdge => "max_edge",
            Self::MultipleOf16 => "multiple_of_16",
            Self::AspectRatio => "aspect_ratio",
            Self::MinPixels => "min_pixels",
            Self::MaxPixels => "max_pixels",
            Self::UnsupportedSize => "unsupported_size",
            Self::UnknownModel => "unknown_model",
            Self::Retired => "retired",
            Self::Prompt => "prompt",
            Self::N => "n",
            Self::Quality => "quality",
            Self::OutputFormat => "output_format",
            Self::OutputCompression => "output_compression",
            Self::Background => "background",
            Self::PartialImages => "partial_images",
            Self::Stream => "stream",
            Self::Moderation => "moderation",
            Self::InputFidelity => "input_fidelity",
            Self::UnsupportedParameter => "unsupported_parameter",
            Self::UnknownParameter => "unknown_parameter",
            Self::InvalidType => "invalid_type",
            Self::MissingField => "missing_field",
            Self::Image => "image",
            Self::Mask => "mask",
            Self::Tool => "tool",
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Violation {
    /// Stable id.
    pub rule: Rule,
    /// The request field at fault (`size`, `quality`, ...).
    #[serde(skip)]
    pub param: String,
    /// What is wrong, naming the limit.
    pub message: String,
}

impl Violation {
    pub(crate) fn new(rule: Rule, param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            rule,
            param: param.into(),
            message: message.into(),
        }
    }
}

/// The verdict on one size for one model, as `fourk size --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SizeVerdict {
    /// The size as given (normalised for parsed sizes: `4k` becomes `3840x2160`).
    pub size: String,
    /// Width, when the size parsed to one.
    pub width: Option<u32>,
    /// Height, when the size parsed to one.
    pub height: Option<u32>,
    /// The model checked against.
    pub model: String,
    /// True when no rule is broken.
    pub valid: bool,
    /// True when the size is valid but above the model's non-experimental limit.
    pub experimental: bool,
    /// Width times height.
    pub pixels: Option<u64>,
    /// Every broken rule.
    pub violations: Vec<Violation>,
    /// The nearest valid sizes, closest aspect ratio first; empty when valid.
    pub suggestions: Vec<String>,
}

impl SizeVerdict {
    /// The verdict for people, as `fourk size` prints it: valid (with the pixel count and the
    /// experimental note) or every broken rule by id, and the nearest valid sizes.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.valid {
            s.push_str(&format!("{} is valid for {}", self.size, self.model));
            if let Some(p) = self.pixels {
                s.push_str(&format!(" ({p} pixels)"));
            }
            if self.experimental {
                s.push_str("\nnote: above 2560x1440 the model's output is experimental (results may vary)");
            }
        } else {
            s.push_str(&format!("{} is not valid for {}:", self.size, self.model));
            for x in &self.violations {
                s.push_str(&format!("\n  {}: {}", x.rule.id(), x.message));
            }
            if !self.suggestions.is_empty() {
                s.push_str(&format!("\nnearest valid sizes: {}", self.suggestions.join(", ")));
            }
        }
        s
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio_text(w: u32, h: u32) -> String {
    let (l, s) = (w.max(h), w.min(h));
    format!("{:.2}:1", f64::from(l) / f64::from(s))
}

impl ModelCaps {
    /// Every rule `size` breaks for this model, in a fixed order.
    #[must_use]
    pub fn size_violations(&self, size: Size) -> Vec<Violation> {
        let Some((w, h)) = size.dims() else {
            return Vec::new();
        };
        let label = format!("{w}x{h}");
        let mut out = Vec::new();
        match &self.sizes {
            None => {}
            Some(SizeRules::Fixed { sizes }) if !sizes.contains(&label) => {
                out.push(Violation::new(
                    Rule::UnsupportedSize,
                    "size",
                    format!(
                        "Invalid size '{label}': {} only supports {}, or auto.",
                        self.id,
                        sizes.join(", ")
                    ),
                ));
            }
            Some(SizeRules::Fixed { .. }) => {}
            Some(SizeRules::Flexible {
                max_edge,
                multiple_of,
                max_ratio,
                min_pixels,
                max_pixels,
                ..
            }) => {
                let long = w.max(h);
                let short = w.min(h);
                let pixels = u64::from(w) * u64::from(h);
                if long > *max_edge {
                    out.push(Violation::new(
                        Rule::MaxEdge,
                        "size",
                        format!("Invalid size '{label}'. The longest edge must be at most {max_edge} pixels; this one is {long}."),
                    ));
                }
                if w % multiple_of != 0 || h % multiple_of != 0 {
                    out.push(Violation::new(
                        Rule::MultipleOf16,
                        "size",
                        format!("Invalid size '{label}'. Width and height must both be divisible by {multiple_of}."),
                    ));
                }
                if f64::from(long) > max_ratio * f64::from(short) {
                    out.push(Violation::new(
                        Rule::AspectRatio,
                        "size",
                        format!(
                            "Invalid size '{label}'. The aspect ratio must be between 1:{max_ratio} and {max_ratio}:1; this one is {}.",
                            ratio_text(w, h)
                        ),
                    ));
                }
                if pixels < *min_pixels {
                    out.push(Violation::new(
                        Rule::MinPixels,
                        "size",
                        format!(
                            "Invalid size '{label}'. The image must have at least {} pixels; this one has {}.",
                            thousands(*min_pixels),
                            thousands(pixels)
                        ),
                    ));
                }
                if pixels > *max_pixels {
                    out.push(Violation::new(
                        Rule::MaxPixels,
                        "size",
                        format!(
                            "Invalid size '{label}'. The image may have at most {} pixels (3840x2160); this one has {}.",
                            thousands(*max_pixels),
                            thousands(pixels)
                        ),
                    ));
                }
            }
        }
        out
    }

    /// True when the size is valid and above the non-experimental limit.
    #[must_use]
    pub fn is_experimental(&self, size: Size) -> bool {
        match (&self.sizes, size.pixels()) {
            (
                Some(SizeRules::Flexible {
                    experimental_above_pixels,
                    ..
                }),
                Some(p),
            ) => p > *experimental_above_pixels,
            _ => false,
        }
    }

    /// The full verdict on an already parsed size.
    #[must_use]
    pub fn check_size(&self, size: Size) -> SizeVerdict {
        let violations = self.size_violations(size);
        let valid = violations.is_empty();
        let suggestions = match size.dims() {
            Some((w, h)) if !valid => self.suggest(w, h),
            _ => Vec::new(),
        };
        SizeVerdict {
            size: size.to_string(),
            width: size.dims().map(|d| d.0),
            height: size.dims().map(|d| d.1),
            model: self.id.clone(),
            valid,
            experimental: valid && self.is_experimental(size),
            pixels: size.pixels(),
            violations,
            suggestions,
        }
    }

    /// The verdict on text that may not even parse as a size.
    #[must_use]
    pub fn check_size_str(&self, text: &str, model: &str) -> SizeVerdict {
        let mut verdict = match text.parse::<Size>() {
            Ok(size) => self.check_size(size),
            Err(err) => {
                let suggestions = match &err {
                    SizeParseError::AspectRatio { ratio, .. } => self.suggest_for_ratio(ratio.0, ratio.1),
                    _ => Vec::new(),
                };
                SizeVerdict {
                    size: text.to_owned(),
                    width: None,
                    height: None,
                    model: self.id.clone(),
                    valid: false,
                    experimental: false,
                    pixels: None,
                    violations: vec![Violation::new(Rule::Format, "size", err.to_string())],
                    suggestions,
                }
            }
        };
        model.clone_into(&mut verdict.model);
        verdict
    }

    fn is_valid(&self, w: u32, h: u32) -> bool {
        self.size_violations(Size::new(w, h)).is_empty()
    }

    /// Up to four valid sizes near `w`x`h`, keeping its aspect ratio as closely as possible.
    ///
    /// The first suggestion is the requested size snapped to the grid (rounded to the nearest
    /// multiple when it already fits, floored when it had to shrink to fit, ceiled when it had
    /// to grow); the rest are the neighbours on the grid, closest aspect ratio first.
    #[must_use]
    pub fn suggest(&self, w: u32, h: u32) -> Vec<String> {
        match &self.sizes {
            None => Vec::new(),
            Some(SizeRules::Fixed { sizes }) => {
                let want = (f64::from(w) / f64::from(h)).ln();
                let mut v: Vec<(f64, &String)> = sizes
                    .iter()
                    .filter_map(|s| {
                        let (a, b) = s.parse::<Size>().ok()?.dims()?;
                        Some((((f64::from(a) / f64::from(b)).ln() - want).abs(), s))
                    })
                    .collect();
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v.into_iter().map(|(_, s)| s.clone()).take(4).collect()
            }
            Some(SizeRules::Flexible {
                max_edge,
                multiple_of,
                max_ratio,
                min_pixels,
                max_pixels,
                ..
            }) => {
                let m = f64::from(*multiple_of);
                // Clamp the ratio first: keep the long edge, grow the short one.
                let (mut fw, mut fh) = (f64::from(w), f64::from(h));
                if fw.max(fh) > max_ratio * fw.min(fh) {
                    if fw >= fh {
                        fh = fw / max_ratio;
                    } else {
                        fw = fh / max_ratio;
                    }
                }
                // Then scale into the edge and pixel limits, keeping the ratio.
                let mut k = 1.0_f64;
                let long = fw.max(fh);
                if long > f64::from(*max_edge) {
                    k = f64::from(*max_edge) / long;
                }
                let area = fw * fh * k * k;
                #[allow(clippy::cast_precision_loss)]
                if area > *max_pixels as f64 {
                    k *= (*max_pixels as f64 / area).sqrt();
                }
                #[allow(clippy::cast_precision_loss)]
                if area < *min_pixels as f64 {
                    k *= (*min_pixels as f64 / area).sqrt();
                }
                let (tw, th) = (fw * k, fh * k);
                let snap = |v: f64| -> f64 {
                    if k < 1.0 {
                        (v / m).floor() * m
                    } else if k > 1.0 {
                        (v / m).ceil() * m
                    } else {
                        // Round half up, so 1080 becomes 1088, not 1072.
                        (v / m + 0.5).floor() * m
                    }
                };
                let want = (f64::from(w) / f64::from(h)).ln();
                let to_u32 = |v: f64| -> Option<u32> {
                    if v >= m && v <= f64::from(u32::MAX) {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Some(v as u32)
                    } else {
                        None
                    }
                };
                let mut primary: Option<(u32, u32)> = None;
                if let (Some(a), Some(b)) = (to_u32(snap(tw)), to_u32(snap(th)))
                    && self.is_valid(a, b)
                {
                    primary = Some((a, b));
                }
                let mut cands: Vec<(u32, u32)> = Vec::new();
                let base_w = (tw / m).floor() * m;
                let base_h = (th / m).floor() * m;
                for dw in -2..=3 {
                    for dh in -2..=3 {
                        let cw = base_w + f64::from(dw) * m;
                        let ch = base_h + f64::from(dh) * m;
                        if let (Some(a), Some(b)) = (to_u32(cw), to_u32(ch)) {
                            cands.push((a, b));
                        }
                    }
                }
                cands.retain(|&(a, b)| self.is_valid(a, b) && Some((a, b)) != primary);
                cands.sort_by(|&(a1, b1), &(a2, b2)| {
                    let r1 = ((f64::from(a1) / f64::from(b1)).ln() - want).abs();
                    let r2 = ((f64::from(a2) / f64::from(b2)).ln() - want).abs();
                    let d1 = (f64::from(a1) - tw).abs() + (f64::from(b1) - th).abs();
                    let d2 = (f64::from(a2) - tw).abs() + (f64::from(b2) - th).abs();
                    // Nearest on the grid first; among equally near sizes, the closer ratio.
                    d1.total_cmp(&d2)
                        .then(r1.total_cmp(&r2))
                        .then((a2, b2).cmp(&(a1, b1)))
                });
                cands.dedup();
                primary
                    .into_iter()
                    .chain(cands)
                    .take(4)
                    .map(|(a, b)| format!("{a}x{b}"))
                    .collect()
            }
        }
    }

    /// Sizes for an aspect ratio such as `16:9`: the largest valid, the largest
    /// non-experimental, and one near a megapixel.
    #[must_use]
    pub fn suggest_for_ratio(&self, a: u32, b: u32) -> Vec<String> {
        let Some(SizeRules::Flexible {
            max_edge,
            multiple_of,
            experimental_above_pixels,
            max_pixels,
            ..
        }) = &self.sizes
        else {
            return self.suggest(a.max(1), b.max(1));
        };
        let r = f64::from(a) / f64::from(b);
        let mut out: Vec<String> = Vec::new();
        #[allow(clippy::cast_precision_loss)]
        for budget in [*max_pixels as f64, *experimental_above_pixels as f64, 1_048_576.0] {
            // Largest size of ratio r within the pixel budget and the edge limit.
            let mut h = (budget / r).sqrt();
            let mut w = h * r;
            let long = w.max(h);
            if long > f64::from(*max_edge) {
                let k = f64::from(*max_edge) / long;
                w *= k;
                h *= k;
            }
            let m = f64::from(*multiple_of);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let (sw, sh) = (((w / m).floor() * m) as u32, ((h / m).floor() * m) as u32);
            if sw == 0 || sh == 0 {
                continue;
            }
            let pick = if self.is_valid(sw, sh) {
                Some(format!("{sw}x{sh}"))
            } else {
                self.suggest(sw, sh).into_iter().next()
            };
            if let Some(p) = pick
                && !out.contains(&p)
            {
                out.push(p);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Capabilities;

    fn gpt2() -> ModelCaps {
        Capabilities::builtin().model("gpt-image-2").unwrap().clone()
    }

    fn rules(v: &SizeVerdict) -> Vec<&'static str> {
        v.violations.iter().map(|x| x.rule.id()).collect()
    }

    #[test]
    fn the_4k_sizes_are_valid_and_experimental() {
        let m = gpt2();
        for s in ["3840x2160", "2160x3840", "2880x2880", "3504x2336", "3840x1280"] {
            let v = m.check_size(s.parse().unwrap());
            assert!(v.valid, "{s}: {:?}", v.violations);
            assert!(v.experimental, "{s}");
        }
        let v = m.check_size("2560x1440".parse().unwrap());
        assert!(v.valid && !v.experimental);
        assert!(m.check_size(Size::Auto).valid);
    }

    #[test]
    fn each_rule_has_its_id() {
        let m = gpt2();
        let c = |s: &str| rules(&m.check_size(s.parse().unwrap()));
        assert_eq!(c("4096x2160"), ["max_edge", "max_pixels"]);
        assert_eq!(c("3856x1296"), ["max_edge"]);
        assert_eq!(c("1792x936"), ["multiple_of_16"]);
        assert_eq!(c("3840x1088"), ["aspect_ratio"]);
        assert_eq!(c("832x784"), ["min_pixels"]);
        assert_eq!(c("3840x2560"), ["max_pixels"]);
        assert_eq!(c("4000x1000"), ["max_edge", "multiple_of_16", "aspect_ratio"]);
        let v = m.check_size_str("16:9", "gpt-image-2");
        assert_eq!(rules(&v), ["format"]);
        assert_eq!(v.suggestions[0], "3840x2160");
        let mini = crate::caps::tests::legacy()
            .model("gpt-image-1-mini")
            .unwrap()
            .clone();
        let v = mini.check_size("3840x2160".parse().unwrap());
        assert_eq!(rules(&v), ["unsupported_size"]);
        assert_eq!(v.suggestions[0], "1536x1024");
    }

    #[test]
    fn suggestions_from_the_issue() {
        let m = gpt2();
        assert_eq!(m.suggest(1920, 1080)[..2], ["1920x1088", "1920x1072"]);
        assert_eq!(m.suggest(4096, 2160)[0], "3840x2016");
        assert!(m.suggest(4096, 2160).contains(&"3840x2032".to_owned()));
    }

    #[test]
    fn messages_name_the_limit() {
        let m = gpt2();
        let v = m.check_size("3840x2560".parse().unwrap());
        assert!(
            v.violations[0].message.contains("8,294,400"),
            "{}",
            v.violations[0].message
        );
        let v = m.check_size("1792x936".parse().unwrap());
        assert_eq!(
            v.violations[0].message,
            "Invalid size '1792x936'. Width and height must both be divisible by 16."
        );
    }
}
