//! Wire types and rules for OpenAI's GPT Image models, with no IO.
//!
//! This crate owns what a request may contain and what it costs: the [`Size`] contract, the
//! model [`Capabilities`] table (embedded data, overridable), the typed bodies of every route
//! ([`ImageRequest`] for generations, [`EditRequest`] and [`InputImage`] for multipart edits,
//! [`EditJsonBody`] and [`ImageRef`] for JSON edits (the form a Batch API line takes),
//! [`ResponsesRequest`] for the Responses API's image tool), the response, stream-event and
//! error bodies, and token and dollar arithmetic. The client, the emulator and the CLI all
//! validate with it, so they agree. All three routes share one set of option checks.
//!
//! ```
//! use fourk_api::{Capabilities, Size};
//!
//! let caps = Capabilities::builtin();
//! let model = caps.model("gpt-image-2").unwrap();
//! let verdict = model.check_size("1920x1080".parse::<Size>().unwrap());
//! assert!(!verdict.valid);
//! assert_eq!(verdict.violations[0].rule.id(), "multiple_of_16");
//! assert_eq!(verdict.suggestions[0], "1920x1088");
//! ```

pub mod batch;
mod caps;
mod check;
pub mod cost;
mod edit;
mod edit_json;
mod error;
pub mod gemini;
pub mod latency;
mod options;
pub mod plan;
mod provider;
mod request;
mod response;
pub mod responses;
pub mod routes;
mod size;
mod stream;
mod types;

pub use caps::{
    BUILTIN_MODELS_TOML, Capabilities, CapsParseError, DEFAULT_MODEL, ModelCaps, ModelError, ModelStatus,
    NEWEST_CHECK, Prices, QualityBases, SizeRules, TokenRule, TransparentSupport,
};
pub use check::Warning;
pub use check::{Rule, SizeVerdict, Violation};
pub use cost::Cost;
pub use edit::{EditRequest, InputImage, MAX_EDIT_IMAGES, MAX_IMAGE_BYTES, MAX_MASK_BYTES};
pub use edit_json::{DataUrl, EditJsonBody, ImageRef, ImageSource, ImageUrlError, MAX_IMAGE_URL_CHARS};
pub use error::{ApiError, ErrorClass, ErrorEnvelope};
pub use latency::LatencyModel;
pub use provider::{ProviderKind, ProviderParseError};
pub use request::{ImageRequest, json_kind};
pub use response::{
    ImageData, ImageDataRef, ImageSettings, ImagesResponse, ImagesResponseRef, InputTokensDetails,
    OutputTokensDetails, Usage,
};
pub use responses::events::{
    ErrorEvent, ImageGenCallEvent, ImageGenPartialImage, OutputItemEvent, ResponseEvent, ResponseStreamEvent,
};
pub use responses::object::{
    CallError, ImageGenCall, IncompleteDetails, ModerationDetails, OutputItem, ResponseError,
    ResponseInputDetails, ResponseObject, ResponseOutputDetails, ResponseUsage, ToolUsage,
};
pub use responses::request::{
    ContentPart, HostedTool, ImageGenTool, ImageMask, InputImagePart, InputItem, InputMessage,
    ResponsesRequest, Tool, ToolChoice, ToolChoiceMode,
};
pub use routes::{ImageEndpoint, RouteLabel};
pub use size::{PRESETS, Size, SizeParseError};
pub use stream::{CompletedImage, ImageStreamEvent, PartialImage};
pub use types::{
    Background, ImageDetail, InputFidelity, Moderation, OutputFormat, Quality, Role, ToolAction,
};
