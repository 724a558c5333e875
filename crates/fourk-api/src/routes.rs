//! The image endpoints and the route labels, shared by the client (the paths it posts to),
//! the emulator (the paths it serves), and the core's sidecars and ledger (the labels they
//! record), so the three cannot drift apart.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An image endpoint of the API, below its `/v1` base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageEndpoint {
    /// `POST /v1/images/generations`.
    Generations,
    /// `POST /v1/images/edits`.
    Edits,
    /// `POST /v1/responses` (the `image_generation` tool).
    Responses,
}

impl ImageEndpoint {
    /// The path below the base URL, as a client joins it: `images/generations`.
    #[must_use]
    pub const fn path(self) -> &'static str {
        match self {
            Self::Generations => "images/generations",
            Self::Edits => "images/edits",
            Self::Responses => "responses",
        }
    }

    /// The path a server routes: `/v1/images/generations`.
    #[must_use]
    pub const fn v1(self) -> &'static str {
        match self {
            Self::Generations => "/v1/images/generations",
            Self::Edits => "/v1/images/edits",
            Self::Responses => "/v1/responses",
        }
    }

    /// The endpoint a path names, with or without the `/v1/` prefix (`images/edits`,
    /// `/v1/responses`); `None` for other paths.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        let p = path.trim_start_matches('/');
        let p = p.strip_prefix("v1/").unwrap_or(p);
        [Self::Generations, Self::Edits, Self::Responses]
            .into_iter()
            .find(|e| e.path() == p)
    }

    /// The label a request to it is recorded under.
    #[must_use]
    pub const fn label(self) -> RouteLabel {
        match self {
            Self::Generations => RouteLabel::ImagesGenerate,
            Self::Edits => RouteLabel::ImagesEdit,
            Self::Responses => RouteLabel::Responses,
        }
    }
}

/// What made an image, as sidecars (`route`) and the ledger (`attempts.route`,
/// `images.route`) record it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteLabel {
    /// The Image API's generations: `images.generate`.
    ImagesGenerate,
    /// The Image API's edits: `images.edit`.
    ImagesEdit,
    /// The Responses API's image tool: `responses`.
    Responses,
    /// A line of a Batch API batch: `batch`.
    Batch,
    /// A local upscale of a master: `local.upscale`.
    LocalUpscale,
    /// Gemini's `generateContent`: `gemini.generate`.
    GeminiGenerate,
    /// A label this build does not know (a ledger written by a newer fourk).
    Other(String),
}

impl RouteLabel {
    /// The recorded text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::ImagesGenerate => "images.generate",
            Self::ImagesEdit => "images.edit",
            Self::Responses => "responses",
            Self::Batch => "batch",
            Self::LocalUpscale => "local.upscale",
            Self::GeminiGenerate => "gemini.generate",
            Self::Other(s) => s,
        }
    }

    /// Parse the recorded text; unknown text is kept as [`RouteLabel::Other`].
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "images.generate" => Self::ImagesGenerate,
            "images.edit" => Self::ImagesEdit,
            "responses" => Self::Responses,
            "batch" => Self::Batch,
            "local.upscale" => Self::LocalUpscale,
            "gemini.generate" => Self::GeminiGenerate,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for RouteLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RouteLabel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RouteLabel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_as_their_recorded_text() {
        for l in [
            RouteLabel::ImagesGenerate,
            RouteLabel::ImagesEdit,
            RouteLabel::Responses,
            RouteLabel::Batch,
            RouteLabel::LocalUpscale,
            RouteLabel::Other("images.variation".into()),
        ] {
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(json, format!("\"{}\"", l.as_str()));
            assert_eq!(serde_json::from_str::<RouteLabel>(&json).unwrap(), l);
        }
        assert_eq!(
            ImageEndpoint::Edits.v1(),
            format!("/v1/{}", ImageEndpoint::Edits.path())
        );
        assert_eq!(ImageEndpoint::Responses.label(), RouteLabel::Responses);
    }
}
