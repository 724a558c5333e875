//! Planning a deliverable with numbers: which route to take to an image of a target size and
//! quality, what each route costs in tokens, dollars and time, and why one wins.
//!
//! The rules come from practice with GPT Image 2 (issue 5):
//!
//! | rule | when | consequence |
//! |---|---|---|
//! | [`PlanRule::OneHeroNative`] | one image, no dense text | native render at the target size; a failed candidate costs one more attempt |
//! | [`PlanRule::PreviewsFirst`] | several variants (or prompt tests) | low-quality drafts at a cheap size of the same aspect ratio, approve one, then a single final |
//! | [`PlanRule::TextMasterFirst`] | dense text or UI | approve a master at the largest non-experimental size before the final 4K; upscaling keeps the approved text |
//! | [`PlanRule::TransparencySeparate`] | a transparent result | render on a flat key colour and cut out locally, unless the model documents transparency as supported |
//! | [`PlanRule::CostLatencyBlocker`] | the budget or the time limit rules out the preferred route | test at `medium` and 2K before `high` and 4K |
//! | [`PlanRule::DraftThenFinal`] | the general habit | draft smaller, approve composition, then run the final |
//!
//! Everything here is arithmetic on the capability table (the token formula, prices and the
//! [`LatencyModel`]); nothing is sent.

use serde::Serialize;

use crate::caps::{Capabilities, ModelCaps, ModelError, Prices, SizeRules, TransparentSupport};
use crate::check::Violation;
use crate::cost::{Cost, estimate_text_tokens, output_tokens};
use crate::latency::LatencyModel;
use crate::response::Usage;
use crate::size::Size;
use crate::types::Quality;

/// Drafts aim for about this many pixels: enough to judge composition, and far cheaper than
/// the final (a 1536x864 `low` draft is 120 output tokens against 13,342 for 4K `high`).
pub const DRAFT_PIXELS: u64 = 1_048_576;

/// Seconds a local step (upscale to 4K, chroma-key cutout) takes, as planned: an assumption
/// from fourk-imaging's Lanczos3 upscale of a 2560x1440 master to 3840x2160 on two cores,
/// which finishes in well under a second in a release build.
pub const LOCAL_STEP_SECONDS: f64 = 1.0;

/// The routes the planner compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathId {
    /// Every variant rendered natively at the target size and final quality.
    Native,
    /// Low-quality drafts at a cheap size, then one native final at the target size (an edit
    /// with the approved draft as the reference image).
    DraftsNative,
    /// Low-quality drafts, then a master at the largest non-experimental size at final
    /// quality, upscaled locally to the target.
    DraftsUpscale,
    /// Native render with `background: transparent` (a preview feature on gpt-image-2).
    NativeTransparent,
    /// One `medium` test at the master size, upscaled: the cheap, fast first step when cost
    /// or time is the blocker.
    #[serde(rename = "medium-2k")]
    Medium2k,
}

impl PathId {
    /// The id as printed.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::DraftsNative => "drafts-native",
            Self::DraftsUpscale => "drafts-upscale",
            Self::NativeTransparent => "native-transparent",
            Self::Medium2k => "medium-2k",
        }
    }

    /// One line saying what the route does.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::Native => "native render at the target size",
            Self::DraftsNative => "drafts, then a native final from the approved draft",
            Self::DraftsUpscale => "drafts, then a 2K master at final quality and a local upscale",
            Self::NativeTransparent => "native render with a transparent background (API feature)",
            Self::Medium2k => "a medium-quality 2K test, upscaled locally",
        }
    }
}

/// The practice rules, as stable ids for output and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanRule {
    /// One hero image, a failed candidate tolerable: native at the target.
    OneHeroNative,
    /// Many variants or prompt tests: previews first.
    PreviewsFirst,
    /// Dense text or UI: approve a smaller master before the final 4K.
    TextMasterFirst,
    /// Transparency is handled as its own step.
    TransparencySeparate,
    /// Cost or latency is the blocker: test medium and 2K before high and 4K.
    CostLatencyBlocker,
    /// Draft smaller, approve composition, then run the final.
    DraftThenFinal,
}

/// What one step of a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Low-quality drafts (`fourk draft`).
    Drafts,
    /// A render at the target size from the prompt alone.
    Native,
    /// A render at the target size with a reference image (`fourk final --native`).
    NativeFromReference,
    /// A render at the master size (`fourk final --upscale`).
    Master,
    /// A local resample to the exact target.
    Upscale,
    /// A local chroma-key cutout.
    Cutout,
}

/// One step of a route with its predicted numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// What it does.
    pub kind: StepKind,
    /// Output size.
    pub size: Size,
    /// Quality asked for (`None` for local steps).
    pub quality: Option<Quality>,
    /// Images made.
    pub images: u32,
    /// Requests sent (0 for local steps).
    pub requests: u32,
    /// Predicted input tokens (text, and the reference image of an edit).
    pub input_tokens: u64,
    /// Predicted output tokens.
    pub output_tokens: u64,
    /// Predicted dollars.
    pub usd: f64,
    /// Predicted median seconds.
    pub seconds: f64,
    /// The output size is above the model's non-experimental limit.
    pub experimental: bool,
}

/// One candidate route with its totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Which route.
    pub id: PathId,
    /// What it does, in words.
    pub title: &'static str,
    /// The steps in order.
    pub steps: Vec<Step>,
    /// Input plus output tokens of every step.
    pub tokens: u64,
    /// Dollars of every step.
    pub usd: f64,
    /// Median seconds of every step, in sequence (human approval time not included).
    pub seconds: f64,
    /// Some step renders in the experimental zone.
    pub experimental: bool,
    /// Why this route cannot be used, when it cannot (over budget, over the time limit).
    pub excluded: Option<String>,
    /// Risks and remarks.
    pub notes: Vec<String>,
}

/// What to plan for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    /// Model id or alias.
    pub model: String,
    /// The deliverable's size (explicit, not `auto`).
    pub size: Size,
    /// The deliverable's quality.
    pub quality: Quality,
    /// How many variants to choose among (1 for one hero image).
    pub variants: u32,
    /// The image carries dense text or UI.
    pub text_heavy: bool,
    /// The deliverable needs a transparent background.
    pub transparent: bool,
    /// Dollars the whole route may cost.
    pub budget_usd: Option<f64>,
    /// Seconds the whole route may take.
    pub max_seconds: Option<f64>,
    /// Prompt text tokens (1 when unknown).
    pub prompt_tokens: u64,
}

impl PlanInput {
    /// A plan for one image of `size` at `quality` on `model`, with no limits.
    #[must_use]
    pub fn new(model: impl Into<String>, size: Size, quality: Quality) -> Self {
        Self {
            model: model.into(),
            size,
            quality,
            variants: 1,
            text_heavy: false,
            transparent: false,
            budget_usd: None,
            max_seconds: None,
            prompt_tokens: estimate_text_tokens(""),
        }
    }
}

/// The plan: every candidate, the recommendation and the reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Model id.
    pub model: String,
    /// Target size.
    pub size: Size,
    /// Target quality.
    pub quality: Quality,
    /// Variants asked for.
    pub variants: u32,
    /// Dense text or UI.
    pub text_heavy: bool,
    /// Transparent background wanted.
    pub transparent: bool,
    /// Budget in dollars.
    pub budget_usd: Option<f64>,
    /// Time limit in seconds.
    pub max_seconds: Option<f64>,
    /// The target is above the non-experimental limit (2560x1440 pixels on gpt-image-2).
    pub experimental: bool,
    /// What the experimental zone means, when the target is in it.
    pub experimental_note: Option<String>,
    /// Where drafts render.
    pub draft_size: Size,
    /// Where masters render (the largest non-experimental size of the target's ratio).
    pub master_size: Size,
    /// The prices used.
    pub prices: Prices,
    /// Where the latency numbers come from.
    pub latency_source: String,
    /// Every route considered, recommended first.
    pub candidates: Vec<Candidate>,
    /// The recommended route; `None` when every route breaks a limit.
    pub recommended: Option<PathId>,
    /// The rules that decided, in order.
    pub rules: Vec<PlanRule>,
    /// Why the winner won, one sentence per reason.
    pub why: Vec<String>,
    /// The same deliverable from other providers' models (Gemini's tiers), for comparison:
    /// one image each, its cost, time and how the exact size is reached.
    pub other_providers: Vec<ProviderOption>,
}

/// One deliverable from another provider's model: what it renders natively and how the
/// exact target is reached from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderOption {
    /// The provider (`gemini`).
    pub provider: crate::ProviderKind,
    /// The model.
    pub model: String,
    /// Its request: `aspectRatio` and `imageSize`.
    pub aspect_ratio: String,
    /// The tier.
    pub image_size: String,
    /// The native size of the answer.
    pub native: Size,
    /// How the target is reached: `downscale` (a Lanczos3 cover, sharper than native), or
    /// `upscale` when no tier covers it.
    pub resampled: &'static str,
    /// Target pixels per native pixel.
    pub scale: f64,
    /// Pixels cropped off the native image (width, height) by the cover.
    pub cropped: (u32, u32),
    /// Output tokens per image.
    pub tokens: u64,
    /// Dollars for the variants asked (one image each).
    pub usd: f64,
    /// Median rendering time of one image, from the model's latency entry.
    pub seconds: f64,
    /// Where the tier table comes from.
    pub source: Option<String>,
}

/// Every other provider's active model that can make `target`, priced for `variants`.
fn other_providers(
    caps: &Capabilities,
    target: (u32, u32),
    variants: u32,
    prompt_tokens: u64,
) -> Vec<ProviderOption> {
    caps.models
        .iter()
        .filter(|m| m.status == crate::ModelStatus::Active)
        .filter_map(|m| {
            let g = m.gemini.as_ref()?;
            let p = g.plan(target.0, target.1)?;
            let prices = m.price?;
            let tokens = p.tokens?;
            let usage = crate::Usage::new(prompt_tokens, 0, tokens);
            let one = crate::Cost::from_usage(&usage, &prices, false).usd;
            let seconds =
                m.latency
                    .clone()
                    .unwrap_or_default()
                    .seconds(p.native.0, p.native.1, Quality::High);
            Some(ProviderOption {
                provider: m.providers.first().copied().unwrap_or_default(),
                model: m.id.clone(),
                aspect_ratio: p.aspect_ratio,
                image_size: p.image_size,
                native: Size::new(p.native.0, p.native.1),
                resampled: if p.upscaled { "upscale" } else { "downscale" },
                scale: p.scale,
                cropped: (p.native.0 - p.crop.2, p.native.1 - p.crop.3),
                tokens,
                usd: one * f64::from(variants.max(1)),
                seconds,
                source: g.source.clone(),
            })
        })
        .collect()
}

impl Plan {
    /// The candidate with this id.
    #[must_use]
    pub fn candidate(&self, id: PathId) -> Option<&Candidate> {
        self.candidates.iter().find(|c| c.id == id)
    }

    /// The recommended candidate.
    #[must_use]
    pub fn winner(&self) -> Option<&Candidate> {
        self.recommended.and_then(|id| self.candidate(id))
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Unknown or retired model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The target is `auto`.
    #[error("plan needs an explicit target size, not auto\n\nhint: pass --size 4k or --size WIDTHxHEIGHT")]
    AutoSize,
    /// The target breaks a size rule.
    #[error("{size} is not a valid size for {model}: {}{}", joined(.violations), size_hint(.suggestions))]
    Size {
        /// The size.
        size: Size,
        /// The model.
        model: String,
        /// Broken rules.
        violations: Vec<Violation>,
        /// Nearest valid sizes.
        suggestions: Vec<String>,
    },
    /// The model does not offer this quality.
    #[error(
        "{model} does not offer quality {quality}; it offers {offered}\n\nhint: use --quality with one of those"
    )]
    Quality {
        /// The model.
        model: String,
        /// Asked for.
        quality: Quality,
        /// Offered, comma separated.
        offered: String,
    },
    /// The model has no token rule or prices.
    #[error(
        "{model} has no token rule or prices in the capability table, so nothing can be predicted\n\nhint: add [model.tokens] and [model.price] in a models file (FOURK_MODELS)"
    )]
    NoPrices {
        /// The model.
        model: String,
    },
    /// No variants.
    #[error("--variants must be at least 1")]
    NoVariants,
}

fn joined(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.rule.id(), v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn size_hint(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(
            "\n\nhint: nearest valid sizes: {} (use --size)",
            suggestions.join(", ")
        )
    }
}

/// Check that `size` is explicit and valid for `model`.
///
/// # Errors
/// [`PlanError::AutoSize`] and [`PlanError::Size`].
pub fn check_target(model: &ModelCaps, size: Size) -> Result<(u32, u32), PlanError> {
    let Some((w, h)) = size.dims() else {
        return Err(PlanError::AutoSize);
    };
    let v = model.check_size(size);
    if v.valid {
        Ok((w, h))
    } else {
        Err(PlanError::Size {
            size,
            model: model.id.clone(),
            violations: v.violations,
            suggestions: v.suggestions,
        })
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Valid sizes with exactly the ratio `w:h`, smallest first: every multiple of the reduced
/// ratio that lands on the model's grid.
fn exact_ratio_sizes(model: &ModelCaps, w: u32, h: u32) -> Vec<(u32, u32)> {
    let Some(SizeRules::Flexible {
        multiple_of,
        max_edge,
        ..
    }) = &model.sizes
    else {
        return Vec::new();
    };
    let g = gcd(w, h).max(1);
    let (rw, rh) = (w / g, h / g);
    // The smallest k with rw*k and rh*k both multiples of the grid.
    let m = *multiple_of;
    let kw = m / gcd(rw, m);
    let kh = m / gcd(rh, m);
    let step = kw / gcd(kw, kh) * kh;
    let mut out = Vec::new();
    let mut k = step;
    while rw.saturating_mul(k) <= *max_edge && rh.saturating_mul(k) <= *max_edge {
        let (a, b) = (rw * k, rh * k);
        if model.size_violations(Size::new(a, b)).is_empty() {
            out.push((a, b));
        }
        k += step;
    }
    out
}

fn pixels((w, h): (u32, u32)) -> u64 {
    u64::from(w) * u64::from(h)
}

/// The size drafts render at: the target's aspect ratio at about [`DRAFT_PIXELS`] (never
/// more than the target, never below the model's minimum). An exact-ratio size is preferred;
/// when the ratio has no small exact multiple on the grid (3840x2144, say), the nearest valid
/// size to the scaled-down target is used. Fixed-size models get their size closest in ratio.
#[must_use]
pub fn draft_size(model: &ModelCaps, w: u32, h: u32) -> (u32, u32) {
    let target = pixels((w, h));
    if target <= DRAFT_PIXELS {
        return first_valid(model, w, h).unwrap_or((w, h));
    }
    let exact = exact_ratio_sizes(model, w, h);
    if let Some(&s) = exact.iter().find(|s| pixels(**s) >= DRAFT_PIXELS)
        && pixels(s) * 2 <= DRAFT_PIXELS * 3
        && pixels(s) <= target
    {
        return s;
    }
    #[allow(clippy::cast_precision_loss)]
    let k = (DRAFT_PIXELS as f64 / target as f64).sqrt();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (sw, sh) = (
        (f64::from(w) * k).round() as u32,
        (f64::from(h) * k).round() as u32,
    );
    first_valid(model, sw.max(1), sh.max(1)).unwrap_or((w, h))
}

/// `w`x`h` when valid, else the model's first suggestion for it.
fn first_valid(model: &ModelCaps, w: u32, h: u32) -> Option<(u32, u32)> {
    if model.size_violations(Size::new(w, h)).is_empty() {
        return Some((w, h));
    }
    model
        .suggest(w, h)
        .first()
        .and_then(|s| s.parse::<Size>().ok())
        .and_then(Size::dims)
}

/// The size a master renders at before a local upscale: the target itself when it is not
/// experimental, else the largest non-experimental valid size with the target's ratio (an
/// exact multiple when one exists, else the grid size nearest below the scaled target).
#[must_use]
pub fn master_size(model: &ModelCaps, w: u32, h: u32) -> (u32, u32) {
    let Some(SizeRules::Flexible {
        experimental_above_pixels,
        multiple_of,
        ..
    }) = &model.sizes
    else {
        return (w, h);
    };
    if pixels((w, h)) <= *experimental_above_pixels {
        return (w, h);
    }
    let limit = *experimental_above_pixels;
    // An exact multiple of the ratio, unless the grid makes it much smaller than the limit.
    if let Some(&s) = exact_ratio_sizes(model, w, h)
        .iter()
        .rev()
        .find(|s| pixels(**s) <= limit)
        && pixels(s) * 5 >= limit * 4
    {
        return s;
    }
    #[allow(clippy::cast_precision_loss)]
    let k = (limit as f64 / pixels((w, h)) as f64).sqrt();
    let m = f64::from(*multiple_of);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let floor = |v: u32| ((f64::from(v) * k / m).floor() * m) as u32;
    let (mut a, mut b) = (floor(w), floor(h));
    // Floor snapping keeps the pixels under the limit; step down until every rule holds.
    while a > *multiple_of && b > *multiple_of && !model.size_violations(Size::new(a, b)).is_empty() {
        if a >= b {
            a -= multiple_of;
        } else {
            b -= multiple_of;
        }
    }
    (a, b)
}

/// Dollars and tokens of one request shape.
struct Priced {
    input_tokens: u64,
    output_tokens: u64,
    usd: f64,
}

/// Input tokens of a reference image of `w`x`h`, as OpenAI does not publish them: the output
/// formula at `high` at the image's size fitted into 2048x2048 (gpt-image-2 reads inputs at
/// high fidelity). The emulator bills edits the same way. An estimate.
#[must_use]
pub fn reference_image_tokens(w: u32, h: u32) -> u64 {
    let long = w.max(h).max(1);
    let (w, h) = if long > 2048 {
        let s = 2048.0 / f64::from(long);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        (
            ((f64::from(w) * s).round() as u32).max(1),
            ((f64::from(h) * s).round() as u32).max(1),
        )
    } else {
        (w.max(1), h.max(1))
    };
    crate::cost::gpt_image_2_output_tokens(w, h, Quality::High)
}

struct Ctx<'a> {
    model: &'a ModelCaps,
    prices: Prices,
    latency: LatencyModel,
    prompt_tokens: u64,
}

impl Ctx<'_> {
    fn price(&self, (w, h): (u32, u32), q: Quality, images: u32, reference: Option<(u32, u32)>) -> Priced {
        let per = output_tokens(self.model, w, h, q).unwrap_or(0);
        let image_in = reference.map_or(0, |(a, b)| reference_image_tokens(a, b));
        let requests = self.requests(images);
        let usage = Usage::new(
            self.prompt_tokens * u64::from(requests),
            image_in,
            per * u64::from(images),
        );
        let c = Cost::from_usage(&usage, &self.prices, false);
        Priced {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            usd: c.usd,
        }
    }

    fn requests(&self, images: u32) -> u32 {
        images.div_ceil(u32::from(self.model.max_n.max(1))).max(1)
    }

    fn remote(
        &self,
        kind: StepKind,
        dims: (u32, u32),
        q: Quality,
        images: u32,
        reference: Option<(u32, u32)>,
    ) -> Step {
        let p = self.price(dims, q, images, reference);
        let requests = self.requests(images);
        Step {
            kind,
            size: Size::new(dims.0, dims.1),
            quality: Some(q),
            images,
            requests,
            input_tokens: p.input_tokens,
            output_tokens: p.output_tokens,
            usd: p.usd,
            seconds: f64::from(requests) * self.latency.seconds(dims.0, dims.1, q),
            experimental: self.model.is_experimental(Size::new(dims.0, dims.1)),
        }
    }

    fn local(kind: StepKind, dims: (u32, u32)) -> Step {
        Step {
            kind,
            size: Size::new(dims.0, dims.1),
            quality: None,
            images: 1,
            requests: 0,
            input_tokens: 0,
            output_tokens: 0,
            usd: 0.0,
            seconds: LOCAL_STEP_SECONDS,
            experimental: false,
        }
    }
}

fn candidate(id: PathId, steps: Vec<Step>, notes: Vec<String>) -> Candidate {
    Candidate {
        id,
        title: id.title(),
        tokens: steps.iter().map(|s| s.input_tokens + s.output_tokens).sum(),
        usd: steps.iter().map(|s| s.usd).sum(),
        seconds: steps.iter().map(|s| s.seconds).sum(),
        experimental: steps.iter().any(|s| s.experimental),
        steps,
        excluded: None,
        notes,
    }
}

/// Make the plan.
///
/// # Errors
/// An unknown or retired model, an invalid or `auto` target, a quality the model does not
/// offer, a model without prices, or zero variants.
#[allow(clippy::too_many_lines)]
pub fn plan(caps: &Capabilities, input: &PlanInput) -> Result<Plan, PlanError> {
    let model = caps.model(&input.model)?;
    let target = check_target(model, input.size)?;
    if !model.qualities.iter().any(|q| q == input.quality.as_str()) {
        return Err(PlanError::Quality {
            model: model.id.clone(),
            quality: input.quality,
            offered: model.qualities.join(", "),
        });
    }
    if input.variants == 0 {
        return Err(PlanError::NoVariants);
    }
    let (Some(prices), Some(_)) = (model.price, model.tokens.as_ref()) else {
        return Err(PlanError::NoPrices {
            model: model.id.clone(),
        });
    };
    let ctx = Ctx {
        model,
        prices,
        latency: model.latency.clone().unwrap_or_default(),
        prompt_tokens: input.prompt_tokens.max(1),
    };
    let q = input.quality;
    let n = input.variants;
    let draft = draft_size(model, target.0, target.1);
    let master = master_size(model, target.0, target.1);
    let experimental = model.is_experimental(input.size);
    let upscale_applies = master != target;
    let alpha = model.transparent;
    // With a transparent deliverable, every route renders opaque on a key colour and cuts
    // out locally, unless the model documents transparency as supported.
    let cutout = input.transparent && alpha != TransparentSupport::Supported;
    let finish = |mut steps: Vec<Step>| {
        if cutout {
            steps.push(Ctx::local(StepKind::Cutout, target));
        }
        steps
    };
    let mut notes_exp = Vec::new();
    if experimental {
        notes_exp.push(format!(
            "renders {}x{} in the experimental zone above {}: results vary more, and a failed candidate means paying again",
            target.0,
            target.1,
            master_label(master)
        ));
    }

    let mut cands = Vec::new();
    cands.push(candidate(
        PathId::Native,
        finish(vec![ctx.remote(StepKind::Native, target, q, n, None)]),
        notes_exp.clone(),
    ));
    cands.push(candidate(
        PathId::DraftsNative,
        finish(vec![
            ctx.remote(StepKind::Drafts, draft, Quality::Low, n, None),
            ctx.remote(StepKind::NativeFromReference, target, q, 1, Some(draft)),
        ]),
        {
            let mut v = notes_exp.clone();
            v.push(
                "the reference image's input tokens are an estimate (OpenAI does not publish them)".into(),
            );
            v
        },
    ));
    if upscale_applies {
        cands.push(candidate(
            PathId::DraftsUpscale,
            finish(vec![
                ctx.remote(StepKind::Drafts, draft, Quality::Low, n, None),
                ctx.remote(StepKind::Master, master, q, 1, None),
                Ctx::local(StepKind::Upscale, target),
            ]),
            vec![format!(
                "the last step from {} to {}x{} is a local Lanczos3 upscale: no new detail, no experimental-zone risk",
                master_label(master),
                target.0,
                target.1
            )],
        ));
    }
    if input.transparent && alpha != TransparentSupport::Unsupported {
        cands.push(candidate(
            PathId::NativeTransparent,
            vec![ctx.remote(StepKind::Native, target, q, n, None)],
            match alpha {
                TransparentSupport::Preview => vec![format!(
                    "{} documents background: transparent as a preview: the alpha channel of what comes back must be verified, and may be missing",
                    model.id
                )],
                _ => Vec::new(),
            },
        ));
    }

    let mut rules = Vec::new();
    let mut why = Vec::new();
    // The route the practice rules prefer, before limits.
    let preferred = if input.text_heavy {
        rules.push(PlanRule::TextMasterFirst);
        if upscale_applies {
            why.push(format!(
                "dense text or UI: approve a {} master at final quality before the final {}x{}; the upscale keeps the approved lettering, where a native re-render would redraw it",
                master_label(master),
                target.0,
                target.1
            ));
            PathId::DraftsUpscale
        } else {
            why.push(format!(
                "dense text or UI: the target {}x{} is not above {}, so the approved draft goes straight to a final at the target",
                target.0,
                target.1,
                master_label(master)
            ));
            PathId::DraftsNative
        }
    } else if n > 1 {
        rules.push(PlanRule::PreviewsFirst);
        why.push(format!(
            "{n} variants: previews first; {n} low drafts at {}x{} cost ${:.3} against ${:.3} for {n} finals",
            draft.0, draft.1, cands[1].steps[0].usd, cands[0].steps[0].usd
        ));
        PathId::DraftsNative
    } else {
        rules.push(PlanRule::OneHeroNative);
        why.push(if experimental {
            "one hero image: native at the target is the cheapest and fastest route when a failed candidate is tolerable; `fourk deliver` falls back to master + upscale when it is not".to_owned()
        } else {
            "one image at a non-experimental size: a native render at the target is the cheapest and fastest route".to_owned()
        });
        PathId::Native
    };
    let mut preferred = preferred;
    if input.transparent {
        rules.push(PlanRule::TransparencySeparate);
        match alpha {
            TransparentSupport::Supported => {
                if preferred == PathId::Native {
                    preferred = PathId::NativeTransparent;
                }
                why.push(format!(
                    "{} supports transparent backgrounds, so the API makes the alpha channel",
                    model.id
                ));
            }
            TransparentSupport::Preview => why.push(format!(
                "transparency as its own step: {}'s transparent background is a preview, so the route renders on a flat key colour and cuts out locally (verified for alpha)",
                model.id
            )),
            TransparentSupport::Unsupported => why.push(format!(
                "transparency as its own step: {} has no transparent background, so the route renders on a flat key colour and cuts out locally",
                model.id
            )),
        }
    }

    // Limits.
    let over = |c: &Candidate| -> Option<String> {
        let mut r = Vec::new();
        if let Some(b) = input.budget_usd
            && c.usd > b + 1e-9
        {
            r.push(format!("over budget: ${:.3} > ${b:.3}", c.usd));
        }
        if let Some(t) = input.max_seconds
            && c.seconds > t
        {
            r.push(format!("over the time limit: {:.0} s > {t:.0} s", c.seconds));
        }
        (!r.is_empty()).then(|| r.join("; "))
    };
    for c in &mut cands {
        c.excluded = over(c);
    }
    let fits = |cands: &[Candidate], id: PathId| cands.iter().any(|c| c.id == id && c.excluded.is_none());
    let recommended = if fits(&cands, preferred) {
        Some(preferred)
    } else {
        rules.push(PlanRule::CostLatencyBlocker);
        let mut test = vec![ctx.remote(StepKind::Master, master, Quality::Medium, 1, None)];
        if upscale_applies {
            test.push(Ctx::local(StepKind::Upscale, target));
        }
        let mut c = candidate(
            PathId::Medium2k,
            finish(test),
            vec![format!(
                "a test, not the deliverable: check it, then run the high-quality route once the budget or deadline allows (`fourk plan --quality {q}`)"
            )],
        );
        c.excluded = over(&c);
        cands.push(c);
        let blocker = if input.budget_usd.is_some() && input.max_seconds.is_some() {
            "cost or time"
        } else if input.budget_usd.is_some() {
            "cost"
        } else {
            "time"
        };
        let reason = cands
            .iter()
            .find(|c| c.id == preferred)
            .and_then(|c| c.excluded.clone())
            .unwrap_or_default();
        why.push(format!(
            "{blocker} is the blocker ({} is {reason}): test at medium and {} before {q} and {}x{}",
            preferred.as_str(),
            master_label(master),
            target.0,
            target.1
        ));
        if fits(&cands, PathId::Medium2k) {
            Some(PathId::Medium2k)
        } else {
            why.push(
                "no route fits the limits; raise --budget or the time limit, or lower --quality or --size"
                    .into(),
            );
            None
        }
    };
    if !input.text_heavy && n == 1 && recommended == Some(PathId::Native) && upscale_applies {
        rules.push(PlanRule::DraftThenFinal);
        why.push(format!(
            "to approve composition first instead, drafts-native adds ${:.3} for the draft",
            cands
                .iter()
                .find(|c| c.id == PathId::DraftsNative)
                .map_or(0.0, |c| c.usd - cands[0].usd)
        ));
    }
    if let Some(w) = recommended.and_then(|id| cands.iter().find(|c| c.id == id)) {
        why.push(format!(
            "{}: {} tokens, ${:.3}{}, about {} of rendering",
            w.id.as_str(),
            w.tokens,
            w.usd,
            if prices.estimate {
                " (estimated prices)"
            } else {
                ""
            },
            human_seconds(w.seconds)
        ));
    }
    // Recommended first, then cheapest first.
    cands.sort_by(|a, b| {
        (Some(b.id) == recommended)
            .cmp(&(Some(a.id) == recommended))
            .then(a.usd.total_cmp(&b.usd))
    });
    let other_providers = other_providers(caps, target, n, input.prompt_tokens);
    Ok(Plan {
        other_providers,
        model: model.id.clone(),
        size: input.size,
        quality: q,
        variants: n,
        text_heavy: input.text_heavy,
        transparent: input.transparent,
        budget_usd: input.budget_usd,
        max_seconds: input.max_seconds,
        experimental,
        experimental_note: experimental.then(|| {
            format!(
                "{}x{} is above {} pixels ({}): {} flags this size as experimental",
                target.0,
                target.1,
                match &model.sizes {
                    Some(SizeRules::Flexible {
                        experimental_above_pixels,
                        ..
                    }) => experimental_above_pixels.to_string(),
                    _ => "-".into(),
                },
                master_label(master),
                model.id
            )
        }),
        draft_size: Size::new(draft.0, draft.1),
        master_size: Size::new(master.0, master.1),
        prices,
        latency_source: ctx.latency.source.clone(),
        candidates: cands,
        recommended,
        rules,
        why,
    })
}

fn master_label((w, h): (u32, u32)) -> String {
    format!("{w}x{h}")
}

/// `95 s`, `4 min 26 s`.
#[must_use]
pub fn human_seconds(s: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = s.round().max(0.0) as u64;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Capabilities {
        Capabilities::builtin()
    }

    fn gpt2() -> ModelCaps {
        caps().model("gpt-image-2").unwrap().clone()
    }

    #[test]
    fn draft_and_master_sizes_keep_the_ratio() {
        let m = gpt2();
        let table = [
            ((3840, 2160), (1536, 864), (2560, 1440)),
            ((2160, 3840), (864, 1536), (1440, 2560)),
            ((2560, 1440), (1536, 864), (2560, 1440)),
            ((2048, 2048), (1024, 1024), (1920, 1920)),
            ((1024, 1024), (1024, 1024), (1024, 1024)),
            ((3840, 1280), (1776, 592), (3312, 1104)),
            ((2880, 2880), (1024, 1024), (1920, 1920)),
        ];
        for (t, d, ms) in table {
            assert_eq!(draft_size(&m, t.0, t.1), d, "draft for {t:?}");
            assert_eq!(master_size(&m, t.0, t.1), ms, "master for {t:?}");
            for s in [d, ms] {
                assert!(m.check_size(Size::new(s.0, s.1)).valid, "{s:?}");
                assert!(!m.is_experimental(Size::new(s.0, s.1)), "{s:?}");
            }
        }
        // No small exact multiple on the grid: nearest valid size, ratio within a percent.
        let (w, h) = draft_size(&m, 3840, 2144);
        assert!(m.check_size(Size::new(w, h)).valid);
        let r = (f64::from(w) / f64::from(h)) / (3840.0 / 2144.0);
        assert!((r - 1.0).abs() < 0.02, "{w}x{h}");
        let (w, h) = master_size(&m, 3840, 2144);
        assert!(m.check_size(Size::new(w, h)).valid && !m.is_experimental(Size::new(w, h)));
        // Fixed-size models draft at their own sizes.
        let mini = crate::caps::tests::legacy()
            .model("gpt-image-1-mini")
            .unwrap()
            .clone();
        assert_eq!(draft_size(&mini, 1536, 1024), (1536, 1024));
        assert_eq!(master_size(&mini, 1536, 1024), (1536, 1024));
    }

    struct Case {
        name: &'static str,
        size: (u32, u32),
        quality: Quality,
        variants: u32,
        text: bool,
        transparent: bool,
        budget: Option<f64>,
        max_s: Option<f64>,
        want: Option<PathId>,
        rules: &'static [PlanRule],
    }

    #[test]
    fn practice_rules_pick_the_route() {
        use PathId::{DraftsNative, DraftsUpscale, Medium2k, Native};
        use PlanRule::{
            CostLatencyBlocker, OneHeroNative, PreviewsFirst, TextMasterFirst, TransparencySeparate,
        };
        let c = |name, size, quality, variants, text, transparent, budget, max_s, want, rules| Case {
            name,
            size,
            quality,
            variants,
            text,
            transparent,
            budget,
            max_s,
            want,
            rules,
        };
        let q = Quality::High;
        let cases = [
            c(
                "one hero 4k",
                (3840, 2160),
                q,
                1,
                false,
                false,
                None,
                None,
                Some(Native),
                &[OneHeroNative, PlanRule::DraftThenFinal][..],
            ),
            c(
                "one image 2k",
                (2560, 1440),
                q,
                1,
                false,
                false,
                None,
                None,
                Some(Native),
                &[OneHeroNative][..],
            ),
            c(
                "many variants",
                (3840, 2160),
                q,
                6,
                false,
                false,
                None,
                None,
                Some(DraftsNative),
                &[PreviewsFirst][..],
            ),
            c(
                "dense text 4k",
                (3840, 2160),
                q,
                1,
                true,
                false,
                None,
                None,
                Some(DraftsUpscale),
                &[TextMasterFirst][..],
            ),
            c(
                "dense text variants",
                (3840, 2160),
                q,
                4,
                true,
                false,
                None,
                None,
                Some(DraftsUpscale),
                &[TextMasterFirst][..],
            ),
            c(
                "dense text at 2k",
                (2560, 1440),
                q,
                1,
                true,
                false,
                None,
                None,
                Some(DraftsNative),
                &[TextMasterFirst][..],
            ),
            c(
                "transparent preview",
                (3840, 2160),
                q,
                1,
                false,
                true,
                None,
                None,
                Some(Native),
                &[OneHeroNative, TransparencySeparate, PlanRule::DraftThenFinal][..],
            ),
            c(
                "budget blocks 4k high",
                (3840, 2160),
                q,
                1,
                false,
                false,
                Some(0.30),
                None,
                Some(Medium2k),
                &[OneHeroNative, CostLatencyBlocker][..],
            ),
            c(
                "deadline blocks",
                (3840, 2160),
                q,
                1,
                false,
                false,
                None,
                Some(120.0),
                Some(Medium2k),
                &[OneHeroNative, CostLatencyBlocker][..],
            ),
            c(
                "nothing fits",
                (3840, 2160),
                q,
                1,
                false,
                false,
                Some(0.001),
                None,
                None,
                &[OneHeroNative, CostLatencyBlocker][..],
            ),
            c(
                "budget fits",
                (3840, 2160),
                q,
                1,
                false,
                false,
                Some(0.41),
                None,
                Some(Native),
                &[OneHeroNative, PlanRule::DraftThenFinal][..],
            ),
        ];
        for case in cases {
            let mut input = PlanInput::new("gpt-image-2", Size::new(case.size.0, case.size.1), case.quality);
            input.variants = case.variants;
            input.text_heavy = case.text;
            input.transparent = case.transparent;
            input.budget_usd = case.budget;
            input.max_seconds = case.max_s;
            let p = plan(&caps(), &input).unwrap();
            assert_eq!(p.recommended, case.want, "{}: {:#?}", case.name, p.why);
            assert_eq!(p.rules, case.rules, "{}", case.name);
            if let Some(w) = p.winner() {
                assert_eq!(p.candidates[0].id, w.id, "{}: winner first", case.name);
                assert!(w.excluded.is_none(), "{}", case.name);
            }
            assert!(!p.why.is_empty());
        }
    }

    #[test]
    fn numbers_come_from_the_formula_prices_and_latency() {
        let mut input = PlanInput::new("gpt-image-2", Size::new(3840, 2160), Quality::High);
        input.variants = 4;
        let p = plan(&caps(), &input).unwrap();
        assert!(p.experimental);
        assert!(p.experimental_note.as_deref().unwrap().contains("experimental"));
        let native = p.candidate(PathId::Native).unwrap();
        assert_eq!(native.steps[0].output_tokens, 4 * 13_342);
        assert_eq!(native.steps[0].requests, 1);
        assert!((native.steps[0].usd - (4.0 * 13_342.0 * 30.0 + 5.0) / 1e6).abs() < 1e-9);
        assert!(native.experimental);
        let up = p.candidate(PathId::DraftsUpscale).unwrap();
        assert_eq!(up.steps[0].size, Size::new(1536, 864));
        assert_eq!(up.steps[0].output_tokens, 4 * 120);
        assert_eq!(up.steps[1].size, Size::new(2560, 1440));
        assert_eq!(up.steps[1].output_tokens, 7370);
        assert_eq!(up.steps[2].kind, StepKind::Upscale);
        assert!(!up.experimental);
        let lat = LatencyModel::default();
        let want = lat.seconds(1536, 864, Quality::Low)
            + lat.seconds(2560, 1440, Quality::High)
            + LOCAL_STEP_SECONDS;
        assert!((up.seconds - want).abs() < 1e-9);
        let dn = p.candidate(PathId::DraftsNative).unwrap();
        assert_eq!(dn.steps[1].input_tokens, 1 + reference_image_tokens(1536, 864));
        assert!(dn.usd < native.usd);
        // The user's table wins: a models file with other prices moves the dollars.
        let mut user = caps();
        for m in &mut user.models {
            if m.id == "gpt-image-2" {
                m.price.as_mut().unwrap().image_output = 60.0;
            }
        }
        let p2 = plan(&user, &input).unwrap();
        assert!(p2.candidate(PathId::Native).unwrap().usd > 1.9 * native.usd);
    }

    #[test]
    fn transparency_routes() {
        let mut input = PlanInput::new("gpt-image-2", Size::new(3840, 2160), Quality::High);
        input.transparent = true;
        let p = plan(&caps(), &input).unwrap();
        let nt = p.candidate(PathId::NativeTransparent).unwrap();
        assert!(nt.notes[0].contains("preview"));
        let native = p.candidate(PathId::Native).unwrap();
        assert_eq!(native.steps.last().unwrap().kind, StepKind::Cutout);
        // A model with supported transparency makes the alpha natively.
        let mut input = PlanInput::new("gpt-image-2.5-sunburst", Size::new(3840, 2160), Quality::High);
        input.transparent = true;
        let p = plan(&caps(), &input).unwrap();
        assert_eq!(p.recommended, Some(PathId::NativeTransparent));
        assert!(
            p.candidates
                .iter()
                .all(|c| c.steps.iter().all(|s| s.kind != StepKind::Cutout))
        );
    }

    #[test]
    fn bad_input_names_the_rule() {
        let c = caps();
        let e = plan(
            &c,
            &PlanInput::new("gpt-image-2", Size::new(1920, 1080), Quality::High),
        )
        .unwrap_err();
        assert!(e.to_string().contains("multiple_of_16"), "{e}");
        assert!(e.to_string().contains("1920x1088"), "{e}");
        assert_eq!(
            plan(&c, &PlanInput::new("gpt-image-2", Size::Auto, Quality::High)),
            Err(PlanError::AutoSize)
        );
        assert!(matches!(
            plan(
                &c,
                &PlanInput::new("gpt-image-2", Size::new(1024, 1024), Quality::Max)
            ),
            Err(PlanError::Quality { .. })
        ));
        assert!(matches!(
            plan(
                &c,
                &PlanInput::new("dall-e-3", Size::new(1024, 1024), Quality::High)
            ),
            Err(PlanError::Model(_))
        ));
        let mut i = PlanInput::new("gpt-image-2", Size::new(1024, 1024), Quality::High);
        i.variants = 0;
        assert_eq!(plan(&c, &i), Err(PlanError::NoVariants));
    }
}
