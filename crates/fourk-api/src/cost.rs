//! Token arithmetic and dollars: what a request is predicted to cost before it is sent, and
//! what the `usage` of a response cost after.

use serde::{Deserialize, Serialize};

use crate::caps::{ModelCaps, Prices, QualityBases, TokenRule};
use crate::response::Usage;
use crate::types::Quality;

/// Output tokens of one image of `width` x `height` with the formula's base `f` (the
/// formula reverse-engineered from OpenAI's pricing calculator, api-contract §12). Integer
/// steps round down and the total rounds up, as the calculator does: with gpt-image-2's bases
/// it reproduces every official per-image figure (1024x1024 high 7024 tokens, 3840x2160
/// high 13342), and with the 2.5 family's the reported ones (1024x1024 medium 439).
#[must_use]
pub fn formula_tokens(width: u32, height: u32, f: u64) -> u64 {
    let (w, h) = (u64::from(width), u64::from(height));
    let (l, s) = (w.max(h), w.min(h));
    let steps = (2 * f * s + l) / (2 * l);
    (f * steps * (2_000_000 + w * h)).div_ceil(4_000_000)
}

/// Output tokens of one gpt-image-2 image (gpt-image-2's bases: low 16, medium 48, high 96).
/// `auto`, and the tiers gpt-image-2 does not have, count as `high`, the upper bound.
#[must_use]
pub fn gpt_image_2_output_tokens(width: u32, height: u32, quality: Quality) -> u64 {
    formula_tokens(width, height, QualityBases::default().of(quality))
}

/// Output tokens one image of this size and quality costs on `model`. `auto` counts as the
/// model's highest quality (`max` for the 2.5 family), the upper bound, since what it
/// resolves to is undocumented.
///
/// `None` when the model has no token rule (retired models).
#[must_use]
pub fn output_tokens(model: &ModelCaps, width: u32, height: u32, quality: Quality) -> Option<u64> {
    let quality = if quality == Quality::Auto {
        model.highest_quality()
    } else {
        quality
    };
    match model.tokens.as_ref()? {
        TokenRule::GptImage2 { bases } => Some(formula_tokens(width, height, bases.of(quality))),
        TokenRule::GeminiTiers => model.gemini.as_ref()?.plan(width, height)?.tokens,
        TokenRule::Table { low, medium, high } => {
            let row = match quality {
                Quality::Low => low,
                Quality::Medium => medium,
                _ => high,
            };
            let idx = match width.cmp(&height) {
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Less => 1,
                std::cmp::Ordering::Greater => 2,
            };
            Some(row[idx])
        }
    }
}

/// Text tokens in a prompt, estimated without a tokenizer: about four characters a token,
/// the usual figure for English under OpenAI's tokenizers. The emulator bills with this too.
#[must_use]
pub fn estimate_text_tokens(prompt: &str) -> u64 {
    (prompt.chars().count() as u64).div_ceil(4).max(1)
}

/// Dollars, with the prices that produced them and whether any part is an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Total in USD.
    pub usd: f64,
    /// Text input part.
    pub text_input_usd: f64,
    /// Image input part.
    pub image_input_usd: f64,
    /// Image output part.
    pub image_output_usd: f64,
    /// True when the prices or the token counts are estimates rather than measured usage at
    /// confirmed prices.
    pub estimate: bool,
}

impl Cost {
    /// Dollars for a recorded `usage` at `prices`. `measured` says whether the usage came from
    /// the API (true) or from a prediction (false).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn from_usage(usage: &Usage, prices: &Prices, measured: bool) -> Self {
        let details = usage.input_tokens_details.unwrap_or_default();
        let (text_in, image_in) = if details.text_tokens + details.image_tokens == usage.input_tokens {
            (details.text_tokens, details.image_tokens)
        } else {
            (
                usage.input_tokens.saturating_sub(details.image_tokens),
                details.image_tokens,
            )
        };
        let per = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        let text_input_usd = per(text_in, prices.text_input);
        let image_input_usd = per(image_in, prices.image_input);
        let image_output_usd = per(usage.output_tokens, prices.image_output);
        Self {
            usd: text_input_usd + image_input_usd + image_output_usd,
            text_input_usd,
            image_input_usd,
            image_output_usd,
            estimate: prices.estimate || !measured,
        }
    }
}

/// The usage a request is predicted to produce: `n` images of this size and quality.
#[must_use]
pub fn predict_usage(
    model: &ModelCaps,
    prompt: &str,
    width: u32,
    height: u32,
    quality: Quality,
    n: u8,
) -> Option<Usage> {
    let out = output_tokens(model, width, height, quality)? * u64::from(n.max(1));
    let text = estimate_text_tokens(prompt);
    Some(Usage::new(text, 0, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_reproduces_the_published_table() {
        use Quality::{High, Low, Medium};
        let t = gpt_image_2_output_tokens;
        assert_eq!(
            [t(1024, 1024, Low), t(1024, 1024, Medium), t(1024, 1024, High)],
            [196, 1756, 7024]
        );
        assert_eq!(
            [t(1536, 1024, Low), t(1536, 1024, Medium), t(1536, 1024, High)],
            [158, 1372, 5488]
        );
        assert_eq!(t(2048, 2048, High), 14272);
        assert_eq!(t(2560, 1440, High), 7370);
        assert_eq!(
            [t(3840, 2160, Low), t(3840, 2160, Medium), t(3840, 2160, High)],
            [371, 3336, 13342]
        );
        assert_eq!(t(2160, 3840, High), 13342);
        assert_eq!(t(2880, 2880, High), 23719);
        assert_eq!(t(3840, 1280, High), 5311);
    }

    #[test]
    fn each_model_counts_with_its_own_bases() {
        use Quality::{Auto, High, Low, Max, Medium, Xhigh};
        let caps = crate::Capabilities::builtin();
        let tokens = |id: &str, w, h, q| output_tokens(caps.model(id).unwrap(), w, h, q).unwrap();
        for id in ["gpt-image-2.5-flare", "gpt-image-2.5-sunburst-2026-09-08"] {
            assert_eq!(
                [Low, Medium, High, Xhigh, Max].map(|q| tokens(id, 1024, 1024, q)),
                [196, 439, 1756, 3122, 7024],
                "{id}"
            );
            // `auto` is the highest quality the model has: max.
            assert_eq!(tokens(id, 1024, 1024, Auto), 7024, "{id}");
        }
        // gpt-image-2 is unchanged, and its `auto` is high.
        assert_eq!(tokens("gpt-image-2", 3840, 2160, High), 13_342);
        assert_eq!(tokens("gpt-image-2", 3840, 2160, Auto), 13_342);
        assert_eq!(tokens("gpt-image-2", 1024, 1024, Medium), 1756);
        // 2.6: the upper bound of the only report (low and medium 4x 2.5's).
        assert_eq!(tokens("gpt-image-2.6-flare", 1024, 1024, Low), 781);
        assert_eq!(tokens("gpt-image-2.6-flare", 1024, 1024, Medium), 1756);
        assert_eq!(tokens("gpt-image-2.6-flare", 1024, 1024, High), 1756);
    }

    #[test]
    fn the_formula_rounds_as_the_calculator() {
        // The steps round down: 1024x1024 at f=24 is (49152 + 1024) / 2048 = 24.5 -> 24 steps
        // (half-up would give 25 and 476 tokens, not the reported 439); the total rounds up
        // (438.99 -> 439).
        assert_eq!(formula_tokens(1024, 1024, 24), 439);
        assert_eq!(formula_tokens(1024, 1024, 64), 3122);
    }

    #[test]
    fn dollars_match_the_published_per_image_prices() {
        let caps = crate::Capabilities::builtin();
        let m = caps.model("gpt-image-2").unwrap();
        let p = m.price.unwrap();
        let u = Usage::new(0, 0, 7024);
        let c = Cost::from_usage(&u, &p, true);
        assert!((c.usd - 0.211).abs() < 0.001, "{}", c.usd);
        assert!(!c.estimate);
        let u = Usage::new(0, 0, 13342);
        assert!((Cost::from_usage(&u, &p, true).usd - 0.400).abs() < 0.001);
        assert!(Cost::from_usage(&u, &p, false).estimate);
    }
}
