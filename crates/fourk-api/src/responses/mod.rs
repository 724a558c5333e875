//! The Responses API (`POST /v1/responses`) as fourk uses it: a mainline model that calls the
//! `image_generation` tool.
//!
//! - [`request`]: the body, its input items and the tool, checked against the image model's
//!   capabilities with the same rules as the Image API;
//! - [`object`]: the response object and its `image_generation_call` output items;
//! - [`events`]: the typed events of a streamed response.
//!
//! Responses keep open strings for settings and fall back to raw JSON for item and event
//! types this release does not know, so a new item type never breaks a parse.

pub mod events;
pub mod object;
pub mod request;
