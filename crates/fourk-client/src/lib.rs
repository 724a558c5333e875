//! The async HTTP client for OpenAI's image endpoints.
//!
//! It reads the official SDKs' variables (`OPENAI_API_KEY`, `OPENAI_BASE_URL`,
//! `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`), keeps the key secret, waits up to 600 s by default
//! (4K `high` can take minutes), and turns error envelopes into typed errors that say what to
//! do. Pointing `OPENAI_BASE_URL` at fourk's emulator needs no special code path.
//!
//! Every route the image API offers is here: generations and edits, each whole or streamed,
//! and the Responses API's image tool, whole or streamed. All of them share one
//! [`RetryPolicy`] (which never resends a request that may already have been billed unless
//! told to) and, when set, one [`PayloadLog`] that [`replay`] can send again.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fourk_client::ClientError> {
//! use fourk_api::{ImageRequest, ImageStreamEvent, Size};
//! use fourk_client::{Client, Config, PayloadLog, RetryPolicy};
//! use futures_util::StreamExt;
//!
//! let client = Client::new(Config::from_env())?
//!     .with_retry_policy(RetryPolicy::default().with_max_retries(3))
//!     .with_payload_log(PayloadLog::new("fourk-payloads"));
//! let mut req = ImageRequest::new("gpt-image-2", "a lighthouse at dawn");
//! req.size = Some(Size::new(3840, 2160));
//! req.partial_images = Some(2);
//! let mut events = client.generate_stream(&req).await?;
//! while let Some(event) = events.next().await {
//!     match event? {
//!         ImageStreamEvent::GenerationPartial(p) => eprintln!("partial {}", p.partial_image_index),
//!         ImageStreamEvent::GenerationCompleted(done) => eprintln!("{} base64 bytes", done.b64_json.len()),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Modules:
//! - `client`: [`Client`] and the single send path;
//! - `retry`: the policy as a pure decision function;
//! - `sse` and `stream`: the SSE decoder and the typed [`EventStream`];
//! - `payload` and `payload_log`: request bodies that can be resent, and their log;
//! - `replay`: sending a logged request again.

mod batch;
mod client;
mod config;
mod error;
mod head;
mod payload;
mod payload_log;
mod replay;
mod retry;
pub mod sse;
mod stream;

pub use batch::FileContent;
pub use client::{ApiResponse, Client};
pub use config::{
    Auth, Config, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, ExtraHeader, GEMINI_BASE_URL,
    Provider, ProviderOptions, Resolved, TOKEN_REFRESH, Target, TokenCommand,
};
pub use error::ClientError;
pub use head::{RateLimits, ResponseHead};
pub use payload_log::{ImageInspector, PayloadLog, redact_url};
pub use replay::{Logged, replay};
pub use retry::{Attempt, Decision, Outcome, RetryPolicy, RetryReason, ServerHints};
pub use stream::{EventStream, StreamEvent};
