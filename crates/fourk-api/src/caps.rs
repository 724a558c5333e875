//! The model capability table: which sizes, qualities, formats and options each model takes,
//! and what its tokens cost. Kept as data (`data/models.toml`, embedded) so that a user file can
//! add a model that appeared after this release.

use serde::{Deserialize, Serialize};

/// The built-in table, embedded at compile time.
pub const BUILTIN_MODELS_TOML: &str = include_str!("../data/models.toml");

/// The newest `checked` date (`YYYY-MM-DD`) among the built-in table's entries: how current
/// the facts this build carries are (`fourk --version` names it). Read from `data/models.toml`
/// by the build script.
pub const NEWEST_CHECK: &str = env!("FOURK_NEWEST_CHECK");

/// The model fourk uses when none is named.
pub const DEFAULT_MODEL: &str = "gpt-image-2";

/// Whether a model can still be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Callable.
    Active,
    /// Shut down; every request fails.
    Retired,
}

/// How far a model supports `background: transparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransparentSupport {
    /// Documented and supported.
    Supported,
    /// Accepted, but documented as preview: verify the alpha channel of what comes back.
    Preview,
    /// Rejected.
    Unsupported,
}

/// Which sizes a model takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SizeRules {
    /// Any `WIDTHxHEIGHT` inside these limits.
    Flexible {
        /// Longest edge, in pixels.
        max_edge: u32,
        /// Both edges must be multiples of this.
        multiple_of: u32,
        /// Long edge divided by short edge may not exceed this.
        max_ratio: f64,
        /// Fewest pixels.
        min_pixels: u64,
        /// Most pixels.
        max_pixels: u64,
        /// Above this many pixels the output is experimental.
        experimental_above_pixels: u64,
    },
    /// Only these sizes (plus `auto`).
    Fixed {
        /// `WxH` strings.
        sizes: Vec<String>,
    },
}

/// How output tokens are counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TokenRule {
    /// The gpt-image-2 formula (see [`crate::cost::formula_tokens`]) with the model's
    /// per-quality bases.
    #[serde(rename = "gpt-image-2")]
    GptImage2 {
        /// The formula's `f` per quality (default: gpt-image-2's).
        #[serde(default)]
        bases: QualityBases,
    },
    /// Gemini: fixed tokens per image at the tier that makes the size (`[model.gemini]`).
    GeminiTiers,
    /// Fixed tokens per quality, for square, portrait and landscape sizes.
    Table {
        /// `low` quality: square, portrait, landscape.
        low: [u64; 3],
        /// `medium` quality.
        medium: [u64; 3],
        /// `high` quality.
        high: [u64; 3],
    },
}

/// The token formula's base `f` per quality. gpt-image-2's are low 16, medium 48, high 96;
/// the 2.5 family's low 16, medium 24, high 48, xhigh 64, max 96.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityBases {
    /// `low`.
    pub low: u64,
    /// `medium`.
    pub medium: u64,
    /// `high`.
    pub high: u64,
    /// `xhigh`, where the model has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xhigh: Option<u64>,
    /// `max`, where the model has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

impl Default for QualityBases {
    fn default() -> Self {
        Self {
            low: 16,
            medium: 48,
            high: 96,
            xhigh: None,
            max: None,
        }
    }
}

impl QualityBases {
    /// The base of `quality`; `auto`, and a tier the model lacks, count as the highest one
    /// it has (an upper bound).
    #[must_use]
    pub fn of(&self, quality: crate::types::Quality) -> u64 {
        use crate::types::Quality;
        let top = self.max.or(self.xhigh).unwrap_or(self.high);
        match quality {
            Quality::Low => self.low,
            Quality::Medium => self.medium,
            Quality::High => self.high,
            Quality::Xhigh => self.xhigh.unwrap_or(top),
            Quality::Max | Quality::Auto => top,
        }
    }
}

/// USD per one million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    /// Text input.
    pub text_input: f64,
    /// Cached text input.
    pub cached_text_input: f64,
    /// Image input (edits, reference images).
    pub image_input: f64,
    /// Cached image input.
    pub cached_image_input: f64,
    /// Image output.
    pub image_output: f64,
    /// True when no first-party source confirms these numbers.
    #[serde(default)]
    pub estimate: bool,
}

/// One model's entry in the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCaps {
    /// The model id sent on the wire.
    pub id: String,
    /// Other ids (dated snapshots, siblings) that share these capabilities.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Active or retired.
    pub status: ModelStatus,
    /// For retired models: what happened, shown to the user.
    #[serde(default)]
    pub retired: Option<String>,
    /// Accepted `quality` values.
    #[serde(default)]
    pub qualities: Vec<String>,
    /// Accepted `output_format` values.
    #[serde(default)]
    pub formats: Vec<String>,
    /// Support for `background: transparent`.
    #[serde(default = "unsupported")]
    pub transparent: TransparentSupport,
    /// Whether `stream: true` is accepted.
    #[serde(default)]
    pub streaming: bool,
    /// Whether `input_fidelity` may be sent on edits.
    #[serde(default)]
    pub input_fidelity: bool,
    /// Longest prompt in characters.
    #[serde(default = "default_prompt_chars")]
    pub max_prompt_chars: usize,
    /// Largest `n`.
    #[serde(default = "default_max_n")]
    pub max_n: u8,
    /// Size rules (absent for retired models).
    #[serde(default)]
    pub sizes: Option<SizeRules>,
    /// Token counting (absent for retired models).
    #[serde(default)]
    pub tokens: Option<TokenRule>,
    /// Prices (absent for retired models).
    #[serde(default)]
    pub price: Option<Prices>,
    /// Render-time model, used by `fourk plan` (absent: [`crate::LatencyModel::default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<crate::latency::LatencyModel>,
    /// Where the entry's facts come from (a document or SDK version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When they were last checked against it, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<String>,
    /// What no source fourk could read confirms (shown as unknown; never sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<String>,
    /// The providers that serve it (default: OpenAI, Azure OpenAI and compatible gateways,
    /// which all speak OpenAI's image endpoints).
    #[serde(default = "openai_shaped")]
    pub providers: Vec<crate::ProviderKind>,
    /// Gemini's tiers (ratios and native sizes), for Gemini models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemini: Option<crate::gemini::GeminiCaps>,
}

fn openai_shaped() -> Vec<crate::ProviderKind> {
    use crate::ProviderKind as P;
    vec![P::Openai, P::Azure, P::Compatible]
}

fn unsupported() -> TransparentSupport {
    TransparentSupport::Unsupported
}
fn default_prompt_chars() -> usize {
    32_000
}
fn default_max_n() -> u8 {
    10
}

impl ModelCaps {
    /// The highest quality the model accepts, which `auto` is counted as in estimates.
    #[must_use]
    pub fn highest_quality(&self) -> crate::types::Quality {
        use crate::types::Quality;
        [
            Quality::Max,
            Quality::Xhigh,
            Quality::High,
            Quality::Medium,
            Quality::Low,
        ]
        .into_iter()
        .find(|q| self.qualities.iter().any(|a| a == q.as_str()))
        .unwrap_or(Quality::High)
    }

    /// The provider that must serve the model when none is named: its first provider, when
    /// OpenAI's API does not serve it (Gemini's models); `None` when OpenAI's does.
    #[must_use]
    pub fn home_provider(&self) -> Option<crate::ProviderKind> {
        if self.providers.contains(&crate::ProviderKind::Openai) {
            None
        } else {
            self.providers.first().copied()
        }
    }

    /// Whether `provider` serves the model. A compatible gateway may serve anything: a user
    /// models file names its models (and what they take) when they differ.
    #[must_use]
    pub fn served_by(&self, provider: crate::ProviderKind) -> bool {
        provider == crate::ProviderKind::Compatible || self.providers.contains(&provider)
    }

    /// True for the id or one of its aliases.
    #[must_use]
    pub fn answers_to(&self, model: &str) -> bool {
        self.id == model || self.aliases.iter().any(|a| a == model)
    }
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// One entry per model family.
    #[serde(rename = "model")]
    pub models: Vec<ModelCaps>,
}

/// Why a model cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Not in the table.
    #[error(
        "unknown model '{model}'; known models: {known}\n\nhint: a model newer than this fourk can be described in a models file: set FOURK_MODELS=/path/to/models.toml (same layout as `fourk models --toml`)"
    )]
    Unknown {
        /// The id asked for.
        model: String,
        /// Known active ids, comma separated.
        known: String,
    },
    /// In the table, but retired.
    #[error("model '{model}' is retired: {note}\n\nhint: use --model gpt-image-2")]
    Retired {
        /// The id asked for.
        model: String,
        /// What happened to it.
        note: String,
    },
}

impl ModelError {
    /// A stable id for machine-readable output.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Unknown { .. } => "unknown_model",
            Self::Retired { .. } => "retired",
        }
    }

    /// The rule violation of `model` it stands for, as size checks and API errors report it.
    #[must_use]
    pub fn violation(&self) -> crate::Violation {
        crate::Violation {
            rule: match self {
                Self::Unknown { .. } => crate::Rule::UnknownModel,
                Self::Retired { .. } => crate::Rule::Retired,
            },
            param: "model".into(),
            message: self.to_string(),
        }
    }
}

/// A models file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid models table: {0}")]
pub struct CapsParseError(toml::de::Error);

impl Capabilities {
    /// The table that ships with fourk.
    ///
    /// # Panics
    /// Never in a release: a test parses the embedded table.
    #[must_use]
    pub fn builtin() -> Self {
        Self::from_toml(BUILTIN_MODELS_TOML).expect("the embedded models.toml parses")
    }

    /// Parse a table in the `models.toml` layout.
    ///
    /// # Errors
    /// When the text is not a valid table.
    pub fn from_toml(text: &str) -> Result<Self, CapsParseError> {
        toml::from_str(text).map_err(CapsParseError)
    }

    /// Entries of `other` replace entries with the same id; new ids are added.
    #[must_use]
    pub fn merged_with(mut self, other: Self) -> Self {
        for m in other.models {
            self.models.retain(|old| old.id != m.id);
            self.models.push(m);
        }
        self
    }
    /// The verdict on the size string `size` for `model`; an unknown or retired model is a
    /// verdict too (invalid, with the model's rule), so every door reports it the same way.
    #[must_use]
    pub fn verdict(&self, size: &str, model: &str) -> crate::SizeVerdict {
        match self.model(model) {
            Ok(m) => m.check_size_str(size, model),
            Err(e) => crate::SizeVerdict {
                size: size.to_owned(),
                width: None,
                height: None,
                model: model.to_owned(),
                valid: false,
                experimental: false,
                pixels: None,
                violations: vec![e.violation()],
                suggestions: Vec::new(),
            },
        }
    }

    /// The entry for a model id or alias, if it is active.
    ///
    /// # Errors
    /// Unknown or retired models, with a message that says what to use instead.
    pub fn model(&self, model: &str) -> Result<&ModelCaps, ModelError> {
        // User entries come last and win, so search from the end.
        match self.models.iter().rev().find(|m| m.answers_to(model)) {
            Some(m) if m.status == ModelStatus::Retired => Err(ModelError::Retired {
                model: model.to_owned(),
                note: m.retired.clone().unwrap_or_else(|| "no longer served".into()),
            }),
            Some(m) => Ok(m),
            None => Err(ModelError::Unknown {
                model: model.to_owned(),
                known: self
                    .models
                    .iter()
                    .filter(|m| m.status == ModelStatus::Active)
                    .flat_map(|m| std::iter::once(&m.id).chain(&m.aliases))
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The built-in table plus the models retired on 2026-12-01 as they were (fixed sizes,
    /// the per-quality token table, `input_fidelity`).
    pub(crate) fn legacy() -> Capabilities {
        Capabilities::builtin().merged_with(
            Capabilities::from_toml(include_str!("../tests/fixtures/legacy-models.toml")).unwrap(),
        )
    }

    #[test]
    fn newest_check_is_the_latest_date_in_the_parsed_table() {
        let caps = Capabilities::builtin();
        let newest = caps.models.iter().filter_map(|m| m.checked.as_deref()).max();
        assert_eq!(Some(NEWEST_CHECK), newest);
    }

    #[test]
    fn builtin_table_parses_and_knows_the_families() {
        let caps = Capabilities::builtin();
        for id in [
            "gpt-image-2",
            "gpt-image-2-2026-04-21",
            "gpt-image-2.5-sunburst",
            "gpt-image-2.5-sunburst-2026-09-08",
            "gpt-image-2.5-flare",
            "gpt-image-2.5-flare-2026-09-08",
            "gpt-image-2.6-flare",
            "gpt-image-2.6-sunburst",
        ] {
            let m = caps.model(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(m.source.is_some() && m.checked.is_some(), "{id} names its source");
        }
        // 2.6 is its own entry, not an alias of 2.5.
        assert_eq!(
            caps.model("gpt-image-2.6-flare").unwrap().id,
            "gpt-image-2.6-flare"
        );
        assert_eq!(
            caps.model("gpt-image-2.5-flare").unwrap().highest_quality(),
            crate::types::Quality::Max
        );
        assert_eq!(
            caps.model("gpt-image-2").unwrap().highest_quality(),
            crate::types::Quality::High
        );
        for id in [
            "gpt-image-1.5",
            "gpt-image-1-mini",
            "chatgpt-image-latest",
            "gpt-image-1",
            "dall-e-2",
            "dall-e-3",
        ] {
            let e = caps.model(id).unwrap_err();
            assert!(matches!(e, ModelError::Retired { .. }), "{id}");
        }
        let e = caps.model("gpt-image-1.5").unwrap_err().to_string();
        assert!(e.contains("shut down on December 1, 2026"), "{e}");
        // The legacy fixture brings them back for the tests that need their rules.
        assert!(legacy().model("gpt-image-1-mini").is_ok());
        assert!(legacy().model("chatgpt-image-latest").is_ok());
        assert!(matches!(
            caps.model("gpt-image-9"),
            Err(ModelError::Unknown { .. })
        ));
        let m = caps.model("gpt-image-2").unwrap();
        assert_eq!(m.transparent, TransparentSupport::Preview);
        assert!(!m.input_fidelity);
    }

    #[test]
    fn user_table_overrides_and_adds() {
        let user = Capabilities::from_toml(
            r#"
[[model]]
id = "gpt-image-3"
status = "active"
qualities = ["low"]
formats = ["png"]
[model.sizes]
kind = "fixed"
sizes = ["1024x1024"]
"#,
        )
        .unwrap();
        let caps = Capabilities::builtin().merged_with(user);
        assert_eq!(caps.model("gpt-image-3").unwrap().qualities, ["low"]);
        assert!(caps.model("gpt-image-2").is_ok());
    }
}
