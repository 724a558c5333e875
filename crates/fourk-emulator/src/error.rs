//! Every way a request can fail, each rendered as the real API's status code and error
//! envelope. Internal details are logged, never sent.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fourk_api::{ErrorEnvelope, Rule, Violation};

use crate::ratelimit::{Limit, format_reset};

/// Where to get a key, as the real API's 401 messages say.
const KEYS_URL: &str = "https://platform.openai.com/account/api-keys";

/// An error response of the emulator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// No `Authorization: Bearer` header, or an empty key.
    #[error("no API key provided")]
    MissingKey,
    /// A key other than the configured one.
    #[error("incorrect API key provided: {masked}")]
    InvalidKey {
        /// The key with all but its prefix and last four characters starred out.
        masked: String,
    },
    /// The body is not JSON.
    #[error("the request body is not valid JSON")]
    InvalidJson,
    /// The body could not be read (too large, or the connection failed).
    #[error("the request body could not be read: {message}")]
    Body {
        /// The status axum chose (413 for an oversized body).
        status: StatusCode,
        /// What went wrong.
        message: String,
    },
    /// The request broke a rule of `fourk_api` (types, parameters, size, options).
    #[error("{}", .violation.message)]
    Invalid {
        /// The first broken rule.
        violation: Violation,
        /// The model asked for, for model errors.
        model: String,
    },
    /// `stream: true`, which this emulator version does not serve.
    #[error("streaming is not implemented in this emulator version")]
    StreamingNotImplemented,
    /// A per-minute limit is used up.
    #[error("rate limit reached for {} per minute", .limit.name())]
    RateLimited {
        /// Which counter.
        limit: Limit,
        /// Its per-minute allowance.
        allowed: u64,
        /// Used so far in this window.
        used: u64,
        /// What this request needed.
        requested: u64,
        /// Until the window resets.
        retry_after: Duration,
    },
    /// No such route.
    #[error("invalid URL ({method} {path})")]
    NotFound {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// A known route with the wrong method.
    #[error("invalid method for URL ({method} {path})")]
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// The request took longer than the emulator's request timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// A bug or a failed encoder; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EmulatorError {
    /// The HTTP status the real API uses for this error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidJson | Self::StreamingNotImplemented => StatusCode::BAD_REQUEST,
            Self::Body { status, .. } => *status,
            Self::Invalid { violation, .. } => match violation.rule {
                Rule::Retired | Rule::UnknownModel => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            },
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body the real API sends: `{"error": {message, type, param, code}}`.
    #[must_use]
    pub fn envelope(&self) -> ErrorEnvelope {
        const INVALID: &str = "invalid_request_error";
        match self {
            Self::MissingKey => ErrorEnvelope::new(
                INVALID,
                None,
                None,
                format!(
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from {KEYS_URL}."
                ),
            ),
            Self::InvalidKey { masked } => ErrorEnvelope::new(
                INVALID,
                Some("invalid_api_key"),
                None,
                format!("Incorrect API key provided: {masked}. You can find your API key at {KEYS_URL}."),
            ),
            Self::InvalidJson => ErrorEnvelope::new(
                INVALID,
                None,
                None,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
            ),
            Self::Body { message, .. } => ErrorEnvelope::new(INVALID, None, None, message.clone()),
            Self::Invalid { violation, model } => violation_envelope(violation, model),
            Self::StreamingNotImplemented => ErrorEnvelope::new(
                INVALID,
                Some("unsupported_value"),
                Some("stream"),
                "Streaming (`stream: true`) is not implemented in this version of the fourk emulator. Omit `stream` or set it to false.",
            ),
            Self::RateLimited {
                limit,
                allowed,
                used,
                requested,
                retry_after,
            } => ErrorEnvelope::new(
                limit.name(),
                Some("rate_limit_exceeded"),
                None,
                format!(
                    "Rate limit reached for {} per min ({}) in the fourk emulator: Limit {allowed}, Used {used}, Requested {requested}. Please try again in {}.",
                    limit.name(),
                    limit.abbreviation(),
                    format_reset(*retry_after)
                ),
            ),
            Self::NotFound { method, path } => {
                ErrorEnvelope::new(INVALID, None, None, format!("Invalid URL ({method} {path})"))
            }
            Self::MethodNotAllowed { method, path } => ErrorEnvelope::new(
                INVALID,
                None,
                None,
                format!("Invalid method for URL ({method} {path})"),
            ),
            Self::Timeout(after) => ErrorEnvelope::new(
                "server_error",
                Some("timeout"),
                None,
                format!("Request timed out after {} s.", after.as_secs_f64()),
            ),
            Self::Internal(_) => ErrorEnvelope::new(
                "server_error",
                None,
                None,
                "The server had an error while processing your request. Sorry about that!",
            ),
        }
    }
}

/// Map a `fourk_api` violation to the API's `type`, `code` and `param`.
fn violation_envelope(v: &Violation, model: &str) -> ErrorEnvelope {
    // fourk_api messages may end with a CLI hint after a blank line; the API has none.
    let message = v.message.split("\n\n").next().unwrap_or_default();
    let param = (v.param != "body").then_some(v.param.as_str());
    match v.rule {
        Rule::Format
        | Rule::MaxEdge
        | Rule::MultipleOf16
        | Rule::AspectRatio
        | Rule::MinPixels
        | Rule::MaxPixels
        | Rule::UnsupportedSize => ErrorEnvelope::new(
            "image_generation_user_error",
            Some("invalid_value"),
            Some("size"),
            message,
        ),
        Rule::UnknownParameter | Rule::UnsupportedParameter => {
            ErrorEnvelope::new("invalid_request_error", Some("unknown_parameter"), param, message)
        }
        Rule::InvalidType => {
            ErrorEnvelope::new("invalid_request_error", Some("invalid_type"), param, message)
        }
        Rule::MissingField => ErrorEnvelope::new(
            "invalid_request_error",
            Some("missing_required_parameter"),
            param,
            message,
        ),
        Rule::UnknownModel => ErrorEnvelope::new(
            "invalid_request_error",
            Some("model_not_found"),
            Some("model"),
            format!("The model `{model}` does not exist or you do not have access to it."),
        ),
        Rule::Retired => ErrorEnvelope::new(
            "invalid_request_error",
            Some("model_not_found"),
            Some("model"),
            format!(
                "The model `{model}` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations"
            ),
        ),
        _ => ErrorEnvelope::new("invalid_request_error", Some("invalid_value"), param, message),
    }
}

impl IntoResponse for EmulatorError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "emulator internal error");
        }
        let mut response = (self.status(), axum::Json(self.envelope())).into_response();
        if let Self::RateLimited { retry_after, .. } = &self {
            let headers = response.headers_mut();
            let secs = retry_after.as_secs_f64().ceil().max(1.0);
            if let Ok(v) = HeaderValue::from_str(&format!("{secs}")) {
                headers.insert("retry-after", v);
            }
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_millis().to_string()) {
                headers.insert("retry-after-ms", v);
            }
        }
        response
    }
}

/// Star out a key the way the API does: the `sk-…-` prefix and the last four characters stay.
#[must_use]
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let prefix = ["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-"]
        .iter()
        .find(|p| key.starts_with(**p))
        .map_or(0, |p| p.chars().count());
    if chars.len() <= prefix + 4 {
        return chars
            .iter()
            .enumerate()
            .map(|(i, c)| if i < prefix { *c } else { '*' })
            .collect();
    }
    let tail = chars.len() - 4;
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < prefix || i >= tail { *c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_like_the_api() {
        assert_eq!(mask_key("sk-abcdefgh1234"), "sk-********1234");
        assert_eq!(mask_key("sk-proj-abcdWXYZ"), "sk-proj-****WXYZ");
        assert_eq!(mask_key("sk-ab"), "sk-**");
        assert_eq!(mask_key("hunter2hunter2"), "**********ter2");
    }

    #[test]
    fn size_violations_are_image_generation_user_errors() {
        let caps = fourk_api::Capabilities::builtin();
        let mut r = fourk_api::ImageRequest::new("gpt-image-2", "x");
        r.size = Some(fourk_api::Size::new(1920, 1080));
        let v = r.validate(&caps).unwrap_err().remove(0);
        let e = EmulatorError::Invalid {
            violation: v,
            model: "gpt-image-2".into(),
        };
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let env = e.envelope().error;
        assert_eq!(env.kind, "image_generation_user_error");
        assert_eq!(env.code.as_deref(), Some("invalid_value"));
        assert_eq!(env.param.as_deref(), Some("size"));
        assert_eq!(
            env.message,
            "Invalid size '1920x1080'. Width and height must both be divisible by 16."
        );
    }
}
