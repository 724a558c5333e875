//! What can go wrong calling the API, with the next step for each.

use std::path::PathBuf;
use std::time::Duration;

use fourk_api::{ApiError, ErrorClass};

/// A failed call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No key configured for the provider.
    #[error("{}", missing_key(*.provider))]
    MissingKey {
        /// The provider that wants one.
        provider: fourk_api::ProviderKind,
    },
    /// The API answered with an error status.
    #[error("{}", api_message(*.status, *.class, .error.as_deref(), .request_id.as_deref(), *.provider))]
    Api {
        /// HTTP status.
        status: u16,
        /// The provider that answered (its hints name its own variables).
        provider: fourk_api::ProviderKind,
        /// What the error means.
        class: ErrorClass,
        /// The parsed envelope, when the body had one.
        error: Option<Box<ApiError>>,
        /// `x-request-id`.
        request_id: Option<String>,
        /// `retry-after` in seconds, when sent.
        retry_after: Option<Duration>,
    },
    /// The request was sent but no complete answer came in time. The API may still have
    /// generated (and billed) the image.
    #[error("no response from {url} within {:.0?} (possibly billed: the request was sent){}\n\nhint: raise --timeout; 4K high images can take several minutes. fourk does not resend it unless --retry-ambiguous is given (that may bill twice)", .elapsed, ids_suffix(.request_id.as_deref(), .client_request_id.as_deref()))]
    Timeout {
        /// The endpoint.
        url: String,
        /// Time waited.
        elapsed: Duration,
        /// `x-request-id`, when the headers had arrived.
        request_id: Option<String>,
        /// The `x-client-request-id` fourk sent with the attempt: the id to quote when no
        /// answer (and so no `x-request-id`) arrived.
        client_request_id: Option<String>,
    },
    /// No connection could be made; nothing was sent, nothing billed.
    #[error(
        "cannot connect to {url}: {message}\n\nhint: check OPENAI_BASE_URL / --base-url, or run offline with --emulator"
    )]
    Connect {
        /// The endpoint.
        url: String,
        /// The transport's words.
        message: String,
    },
    /// The connection failed after the request was sent and before a complete answer came
    /// back (reset mid-response, truncated body or event stream). The API may have generated
    /// and billed the image.
    #[error("request to {url} failed after it was sent: {message} (possibly billed){}\n\nhint: the image may have been generated; check the usage dashboard before sending it again (--retry-ambiguous resends such requests, which may bill twice)", ids_suffix(.request_id.as_deref(), .client_request_id.as_deref()))]
    Transport {
        /// The endpoint.
        url: String,
        /// The transport's words.
        message: String,
        /// `x-request-id`, when the headers had arrived.
        request_id: Option<String>,
        /// The `x-client-request-id` fourk sent with the attempt, when known.
        client_request_id: Option<String>,
    },
    /// The API reported an error inside a stream that had started (an `error` event, or an
    /// event whose data has an `error` key). The generation had begun, so it may be billed.
    #[error("{}", stream_message(*.class, .error, .request_id.as_deref()))]
    Stream {
        /// What the error means.
        class: ErrorClass,
        /// The error as sent.
        error: Box<ApiError>,
        /// `x-request-id`.
        request_id: Option<String>,
    },
    /// A 2xx answer that is not what the API sends.
    #[error("unexpected response from the API: {message}{}", .request_id.as_deref().map(|r| format!(" (request {r})")).unwrap_or_default())]
    InvalidResponse {
        /// What is wrong with it.
        message: String,
        /// `x-request-id`.
        request_id: Option<String>,
    },
    /// The configuration cannot make a client (bad base URL, bad header value).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// A payload-log entry cannot be replayed.
    #[error("cannot replay {}: {message}\n\nhint: pass a *.request.json file written by the payload log, or the log's folder", .path.display())]
    Replay {
        /// The file or folder given.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

fn request_suffix(request_id: Option<&str>) -> String {
    request_id.map(|r| format!(" (request {r})")).unwrap_or_default()
}

/// ` (request req_1)`, or without a server id ` (client request id fourk-…)`.
fn ids_suffix(request_id: Option<&str>, client_request_id: Option<&str>) -> String {
    match (request_id, client_request_id) {
        (Some(r), _) => request_suffix(Some(r)),
        (None, Some(c)) => format!(" (client request id {c})"),
        (None, None) => String::new(),
    }
}

fn stream_message(class: ErrorClass, error: &ApiError, request_id: Option<&str>) -> String {
    let mut s = format!("the API reported an error mid-stream: {}", error.message);
    if let Some(c) = &error.code {
        s.push_str(&format!(" [code: {c}]"));
    }
    s.push_str(" (possibly billed)");
    s.push_str(&request_suffix(request_id));
    s.push_str("\n\nhint: ");
    s.push_str(class.hint());
    s
}

fn api_message(
    status: u16,
    class: ErrorClass,
    error: Option<&ApiError>,
    request_id: Option<&str>,
    provider: fourk_api::ProviderKind,
) -> String {
    let what = match class {
        ErrorClass::InvalidRequest => "the API rejected the request",
        ErrorClass::ModerationBlocked => "blocked by moderation",
        ErrorClass::Authentication => "authentication failed",
        ErrorClass::OrganizationVerification => "organisation verification required",
        ErrorClass::PermissionDenied => "permission denied",
        ErrorClass::NotFound => "not found",
        ErrorClass::QuotaExhausted => "quota exhausted",
        ErrorClass::RateLimited => "rate limited",
        ErrorClass::Server => "server error",
        _ => "API error",
    };
    let mut s = format!("{what} (HTTP {status})");
    if let Some(e) = error {
        s.push_str(": ");
        s.push_str(&e.message);
        let mut extra = Vec::new();
        if let Some(p) = &e.param {
            extra.push(format!("param: {p}"));
        }
        if let Some(c) = &e.code {
            extra.push(format!("code: {c}"));
        }
        let filtered = e.filtered_categories();
        if !filtered.is_empty() {
            extra.push(format!("content filter: {}", filtered.join(", ")));
        }
        if !extra.is_empty() {
            s.push_str(&format!(" [{}]", extra.join(", ")));
        }
    }
    if let Some(r) = request_id {
        s.push_str(&format!(" (request {r})"));
    }
    s.push_str("\n\nhint: ");
    s.push_str(class.hint_for(provider));
    s
}

impl ClientError {
    /// The error class for API errors, in the HTTP status or inside a stream.
    #[must_use]
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::Api { class, .. } | Self::Stream { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// True when the request may have been billed even though no image came back: it left
    /// and no error status came back (a timeout, a reset, a cut stream), or a 2xx answer came
    /// whose body is unusable (the work was done, so it is billed).
    #[must_use]
    pub fn possibly_billed(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::Transport { .. }
                | Self::Stream { .. }
                | Self::InvalidResponse { .. }
        )
    }

    /// The `x-client-request-id` fourk sent with the failed attempt, for failures that may
    /// have been billed without an answer.
    #[must_use]
    pub fn client_request_id(&self) -> Option<&str> {
        match self {
            Self::Timeout {
                client_request_id, ..
            }
            | Self::Transport {
                client_request_id, ..
            } => client_request_id.as_deref(),
            _ => None,
        }
    }

    /// `x-request-id` of the failed call, when the headers had arrived.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { request_id, .. }
            | Self::Timeout { request_id, .. }
            | Self::Transport { request_id, .. }
            | Self::Stream { request_id, .. }
            | Self::InvalidResponse { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// What to set when `provider` has no key.
fn missing_key(provider: fourk_api::ProviderKind) -> &'static str {
    use fourk_api::ProviderKind as P;
    match provider {
        P::Openai => {
            "OPENAI_API_KEY is not set\n\nhint: export OPENAI_API_KEY=sk-..., or run offline with --emulator"
        }
        P::Azure => {
            "no Azure OpenAI credential is set\n\nhint: export AZURE_OPENAI_API_KEY=... (sent as api-key), or AZURE_OPENAI_AD_TOKEN=... (an Entra ID token), or give --token-command 'az account get-access-token --resource https://cognitiveservices.azure.com --query accessToken -o tsv'; or run offline with --emulator"
        }
        P::Gemini => {
            "GEMINI_API_KEY is not set\n\nhint: export GEMINI_API_KEY=... (or GOOGLE_API_KEY), or run offline with --emulator"
        }
        P::Compatible => {
            "the gateway has no key: OPENAI_API_KEY is not set and no --header carries one\n\nhint: export OPENAI_API_KEY=..., or --header 'NAME:${VAR}' with the gateway's own header; or run offline with --emulator"
        }
    }
}

/// A transport error as a typed error: a connect failure sent nothing; anything else
/// happened after the request went out and may have been billed.
pub(crate) fn transport_error(
    url: &str,
    e: &reqwest::Error,
    elapsed: Duration,
    request_id: Option<String>,
    client_request_id: Option<&str>,
) -> ClientError {
    let client_request_id = client_request_id.map(str::to_owned);
    // Walk the source chain: reqwest wraps hyper, which wraps io::Error.
    let mut message = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        message.push_str(": ");
        message.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_connect() {
        ClientError::Connect {
            url: url.to_owned(),
            message,
        }
    } else if e.is_timeout() {
        ClientError::Timeout {
            url: url.to_owned(),
            elapsed,
            request_id,
            client_request_id,
        }
    } else {
        ClientError::Transport {
            url: url.to_owned(),
            message,
            request_id,
            client_request_id,
        }
    }
}
