//! What a door asks the core to make, as typed values: a generation, an edit, and the
//! options they share. A door builds one (the CLI from its flags, a workflow from its plan)
//! and the core checks it against the capability table before anything is sent.

use std::path::PathBuf;

use fourk_api::{Background, Moderation, OutputFormat, Quality, Size};
use serde::Serialize;

use crate::route::RouteSpec;
use crate::session::Endpoint;

/// Streaming: partial images while the final one renders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream the answer (server-sent events).
    pub stream: bool,
    /// Partial images to ask for while streaming (0-3); each costs extra output tokens.
    pub partials: Option<u8>,
    /// Save each partial image as `<out stem>.partial-K.<ext>`.
    pub keep_partials: bool,
}

/// How a transparent result may get its transparency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransparentVia {
    /// Native where the model allows it, a chroma key when it does not or the check fails.
    #[default]
    Auto,
    /// Native only: fail when the model does not support it or the file has no transparency.
    Native,
    /// A chroma key only: generate on a flat key colour and cut it out locally.
    Key,
}

/// A transparent result, and how (see [`crate::transparent`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transparency {
    /// Deliver a transparent PNG or WebP.
    pub transparent: bool,
    /// How.
    pub transparent_via: TransparentVia,
}

/// The image options a generation and an edit share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageOptions {
    /// Quality tier (`None`: not sent, the API's `auto` applies).
    pub quality: Option<Quality>,
    /// Output format (`None`: from `out`'s extension, else png).
    pub format: Option<OutputFormat>,
    /// `output_compression` for jpeg and webp.
    pub compression: Option<u8>,
    /// Background.
    pub background: Option<Background>,
}

/// One generation: the prompt, the image options, where to save, and how to reach the API.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSpec {
    /// What to draw. Resolution comes from `size`, never from the prompt.
    pub prompt: String,
    /// The image model.
    pub model: String,
    /// Output size.
    pub size: Size,
    /// Quality, format, compression and background.
    pub image: ImageOptions,
    /// Moderation strictness.
    pub moderation: Option<Moderation>,
    /// Number of images; each is billed.
    pub n: Option<u8>,
    /// A hashed end-user id.
    pub safety_identifier: Option<String>,
    /// Where to save (numbered when `n` > 1); `None`: a default name in the working folder;
    /// a folder: a default name inside it (see [`crate::outputs`]).
    pub out: Option<PathBuf>,
    /// Replace files already at the output names (`--force`); otherwise they are refused
    /// before anything is sent.
    pub force: bool,
    /// A transparent result by the best route.
    pub transparency: Transparency,
    /// Streaming.
    pub stream: StreamSpec,
    /// The Image API or the Responses API.
    pub route: RouteSpec,
    /// Where requests go.
    pub endpoint: Endpoint,
}

impl GenerateSpec {
    /// A generation of `prompt` with `model` at `size`, every other option unset, on the
    /// Image API through `endpoint`.
    #[must_use]
    pub fn new(prompt: &str, model: &str, size: Size, endpoint: Endpoint) -> Self {
        Self {
            prompt: prompt.to_owned(),
            model: model.to_owned(),
            size,
            image: ImageOptions::default(),
            moderation: None,
            n: None,
            safety_identifier: None,
            out: None,
            force: false,
            transparency: Transparency::default(),
            stream: StreamSpec::default(),
            route: RouteSpec::default(),
            endpoint,
        }
    }
}

/// One edit: input images (and a mask), the prompt, the image options, where to save.
#[derive(Debug, Clone, PartialEq)]
pub struct EditSpec {
    /// 1-16 input images (PNG, JPEG or WebP).
    pub images: Vec<PathBuf>,
    /// A PNG whose transparent pixels mark where to edit.
    pub mask: Option<PathBuf>,
    /// What to change.
    pub prompt: String,
    /// The image model.
    pub model: String,
    /// Output size (`Size::Auto` is not sent).
    pub size: Size,
    /// Quality, format, compression and background.
    pub image: ImageOptions,
    /// Number of images; each is billed.
    pub n: Option<u8>,
    /// Where to save; `None`: a default name in the working folder; a folder: a default name
    /// inside it (see [`crate::outputs`]).
    pub out: Option<PathBuf>,
    /// Replace files already at the output names (`--force`).
    pub force: bool,
    /// Streaming.
    pub stream: StreamSpec,
    /// The Image API or the Responses API.
    pub route: RouteSpec,
    /// Where requests go.
    pub endpoint: Endpoint,
}

impl EditSpec {
    /// An edit of `images` by `prompt` with `model`, every other option unset, on the Image
    /// API through `endpoint`.
    #[must_use]
    pub fn new(images: Vec<PathBuf>, prompt: &str, model: &str, endpoint: Endpoint) -> Self {
        Self {
            images,
            mask: None,
            prompt: prompt.to_owned(),
            model: model.to_owned(),
            size: Size::Auto,
            image: ImageOptions::default(),
            n: None,
            out: None,
            force: false,
            stream: StreamSpec::default(),
            route: RouteSpec::default(),
            endpoint,
        }
    }
}
