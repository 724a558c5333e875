//! How long one image takes to render, as data next to the prices (`[model.latency]` in
//! `data/models.toml`, overridable with `FOURK_MODELS` like every other entry).
//!
//! The numbers are reports, not guarantees: OpenAI publishes no latency figures. The built-in
//! entry for gpt-image-2 uses api-contract §13 (source W10): 1024x1024 `medium` about 80 s,
//! `high` a median of 195 s with a p95 near 280 s, 2048x2048 `high` 200-250 s. `low` (20 s)
//! and the 2.5 family's higher tiers (260 s) are assumptions. Time grows slowly with pixels:
//! `seconds = base[quality] * (pixels / 1024^2) ^ pixel_exponent`, which gives 2048x2048
//! high about 240 s. The emulator's `--latency` model uses the same numbers.

use serde::{Deserialize, Serialize};

use crate::types::Quality;

/// Pixels of the reference size the base times are quoted for (1024x1024).
pub const REFERENCE_PIXELS: f64 = 1_048_576.0;

/// A model's render-time model: seconds per request at 1024x1024 by quality, scaled by pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyModel {
    /// Median seconds at 1024x1024, `low`.
    pub low_s: f64,
    /// Median seconds at 1024x1024, `medium` (and `auto`, which the API resolves unseen).
    pub medium_s: f64,
    /// Median seconds at 1024x1024, `high`.
    pub high_s: f64,
    /// Median seconds at 1024x1024, `xhigh` and `max` (2.5 family).
    #[serde(default = "default_xhigh")]
    pub xhigh_s: f64,
    /// How time grows with pixels: `(pixels / 1024^2) ^ pixel_exponent`.
    pub pixel_exponent: f64,
    /// p95 over median, for timeouts: a wait shorter than this times the median gives up on
    /// requests that would have finished.
    #[serde(default = "default_p95")]
    pub p95_factor: f64,
    /// Where the numbers come from, shown by `fourk plan`.
    #[serde(default)]
    pub source: String,
}

fn default_xhigh() -> f64 {
    260.0
}
fn default_p95() -> f64 {
    1.45
}

impl Default for LatencyModel {
    /// The gpt-image-2 figures of api-contract §13, used for models without a `[model.latency]`.
    fn default() -> Self {
        Self {
            low_s: 20.0,
            medium_s: 80.0,
            high_s: 195.0,
            xhigh_s: default_xhigh(),
            pixel_exponent: 0.15,
            p95_factor: default_p95(),
            source: "api-contract §13 (W10): 1024x1024 medium ~80 s, high median 195 s (p95 ~280 s), \
                     2048x2048 high 200-250 s; low 20 s is an assumption"
                .into(),
        }
    }
}

impl LatencyModel {
    /// Median seconds for one request of this size and quality (`n` images render in parallel
    /// within one request, so `n` does not change it).
    #[must_use]
    pub fn seconds(&self, width: u32, height: u32, quality: Quality) -> f64 {
        let base = match quality {
            Quality::Low => self.low_s,
            Quality::Medium | Quality::Auto => self.medium_s,
            Quality::High => self.high_s,
            Quality::Xhigh | Quality::Max => self.xhigh_s,
        };
        let pixels = f64::from(width) * f64::from(height);
        base * (pixels / REFERENCE_PIXELS).powf(self.pixel_exponent)
    }

    /// The p95 seconds: a sensible timeout for one request.
    #[must_use]
    pub fn p95_seconds(&self, width: u32, height: u32, quality: Quality) -> f64 {
        self.seconds(width, height, quality) * self.p95_factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_reported_figures() {
        let m = LatencyModel::default();
        assert!((m.seconds(1024, 1024, Quality::Medium) - 80.0).abs() < 1e-9);
        assert!((m.seconds(1024, 1024, Quality::High) - 195.0).abs() < 1e-9);
        let sq = m.seconds(2048, 2048, Quality::High);
        assert!((200.0..=250.0).contains(&sq), "{sq}");
        assert!((m.p95_seconds(1024, 1024, Quality::High) - 282.75).abs() < 0.01);
        assert!(m.seconds(3840, 2160, Quality::High) > m.seconds(2560, 1440, Quality::High));
        assert!(m.seconds(3840, 2160, Quality::Low) < m.seconds(1024, 1024, Quality::Medium));
    }
}
