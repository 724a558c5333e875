//! Which service answers a request. A provider decides the URL shape, how the key travels and
//! how the request and response are mapped; the model capability table says which providers
//! serve each model (`providers = [...]` in `models.toml`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A provider of image models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI's API (`https://api.openai.com/v1`, `Authorization: Bearer`).
    #[default]
    Openai,
    /// Azure OpenAI: `https://RESOURCE.openai.azure.com/openai`, the key in `api-key` (or an
    /// Entra ID bearer token), a deployment name and an `api-version`.
    Azure,
    /// Google's Gemini API: `POST /v1beta/models/{model}:generateContent`, the key in
    /// `x-goog-api-key`.
    Gemini,
    /// An OpenAI-compatible gateway (LiteLLM, routers, in-house proxies): OpenAI's shape at
    /// another base URL, with its own headers; what it answers is verified, not trusted.
    Compatible,
}

impl ProviderKind {
    /// Every provider, in the order `--provider` lists them.
    pub const ALL: [Self; 4] = [Self::Openai, Self::Azure, Self::Gemini, Self::Compatible];

    /// The name used on the command line, in records and in `models.toml`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Azure => "azure",
            Self::Gemini => "gemini",
            Self::Compatible => "compatible",
        }
    }

    /// Whether it speaks OpenAI's image endpoints (request and response bodies), whatever the
    /// URL and the key's header.
    #[must_use]
    pub const fn speaks_openai(self) -> bool {
        !matches!(self, Self::Gemini)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is not one of [`ProviderKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider '{0}': use openai, azure, gemini or compatible")]
pub struct ProviderParseError(pub String);

impl FromStr for ProviderKind {
    type Err = ProviderParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ProviderParseError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_name_the_choices() {
        for p in ProviderKind::ALL {
            assert_eq!(p.as_str().parse::<ProviderKind>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!("Azure".parse::<ProviderKind>().unwrap(), ProviderKind::Azure);
        let e = "bedrock".parse::<ProviderKind>().unwrap_err();
        assert!(e.to_string().contains("openai, azure, gemini or compatible"));
    }
}
