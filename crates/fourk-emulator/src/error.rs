//! Every way a request can fail, each rendered as the real API's status code and error
//! envelope. Internal details are logged, never sent.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fourk_api::{ErrorEnvelope, Rule, Violation};

use crate::quota::{Limit, format_reset};

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
    /// A request that breaks a rule of an endpoint the emulator reads itself (the edit
    /// form, the Responses body): `code` and `param` as the API sends them.
    #[error("{message}")]
    BadRequest {
        /// The API's `code`, such as `invalid_value` or `missing_required_parameter`.
        code: Option<&'static str>,
        /// The request field at fault.
        param: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An uploaded file whose part `Content-Type` is not an accepted image type.
    #[error("unsupported mimetype '{mime}' for '{param}'")]
    UnsupportedMimetype {
        /// `image` or `mask`.
        param: String,
        /// The part's type (`application/octet-stream` when it had none).
        mime: String,
        /// What `param` accepts, as the API lists it: `'image/jpeg', 'image/png', and 'image/webp'`.
        allowed: &'static str,
    },
    /// An uploaded file at or over its size limit.
    #[error("'{param}' is {bytes} bytes or more; the limit is {limit}")]
    FileTooLarge {
        /// `image` or `mask`.
        param: String,
        /// Bytes read when the limit was hit.
        bytes: u64,
        /// The limit in bytes (files must be smaller).
        limit: u64,
    },
    /// An input image whose bytes do not decode as the type it claims.
    #[error("'{param}' is not a valid {format} image: {detail}")]
    UndecodableImage {
        /// Which input.
        param: String,
        /// The claimed type (`png`, `jpeg`, `webp`).
        format: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// A mask that breaks one of the mask rules.
    #[error("invalid mask: {0}")]
    Mask(MaskProblem),
    /// A parameter the model does not take (such as `input_fidelity` on gpt-image-2).
    #[error("'{param}' is not supported with {model}")]
    UnsupportedParameter {
        /// The parameter.
        param: String,
        /// The model.
        model: String,
    },
    /// Something the real API offers that the emulator does not (file ids, image URLs to
    /// download, other tools).
    #[error("{feature} is not supported by the fourk emulator")]
    NotEmulated {
        /// The request field that asked for it.
        param: String,
        /// What it is.
        feature: String,
    },
    /// An input image given by http(s) URL: the API would download it; the emulator works
    /// offline and cannot.
    #[error("'{param}' is a URL; the offline emulator cannot download it")]
    UrlNotFetched {
        /// The request field that holds the URL (`images[0].image_url`).
        param: String,
    },
    /// The organisation is not verified for this model (403), on demand.
    #[error("organization not verified for {model}")]
    OrganizationNotVerified {
        /// The image model asked for.
        model: String,
    },
    /// The safety system rejected the prompt (400 `moderation_blocked`), on demand.
    #[error("rejected by the safety system")]
    ModerationBlocked {
        /// The request id, which the message quotes like the API's.
        request_id: String,
    },
    /// `previous_response_id` names no stored response (404).
    #[error("previous response '{id}' not found")]
    PreviousResponseNotFound {
        /// The id asked for.
        id: String,
    },
    /// An injected `429 rate_limit_exceeded` fault.
    #[error("injected fault: rate limit")]
    InjectedRateLimit,
    /// An injected `429 insufficient_quota` fault.
    #[error("injected fault: insufficient quota")]
    InsufficientQuota,
    /// An injected `500` fault.
    #[error("injected fault: server error")]
    InjectedServerError,
    /// An injected `503` fault.
    #[error("injected fault: overloaded")]
    Overloaded,
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
    /// The body is larger than its route takes (413).
    #[error("the request body is larger than {limit} bytes, the limit of {route}")]
    BodyTooLarge {
        /// The route, such as `POST /v1/images/generations`.
        route: String,
        /// Its limit in bytes.
        limit: u64,
        /// What to do instead, as one sentence.
        hint: &'static str,
    },
    /// The body did not arrive within the body read timeout (408).
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(Duration),
    /// As many requests as the emulator processes at once are in progress (429).
    #[error("{0} requests are already in progress")]
    Busy(usize),
    /// The request took longer than the emulator's request timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// Azure OpenAI: the deployment name serves no model.
    #[error("the deployment does not exist")]
    DeploymentNotFound,
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
            Self::InvalidJson
            | Self::BadRequest { .. }
            | Self::UnsupportedMimetype { .. }
            | Self::FileTooLarge { .. }
            | Self::UndecodableImage { .. }
            | Self::Mask(_)
            | Self::UnsupportedParameter { .. }
            | Self::NotEmulated { .. }
            | Self::UrlNotFetched { .. }
            | Self::ModerationBlocked { .. } => StatusCode::BAD_REQUEST,
            Self::OrganizationNotVerified { .. } => StatusCode::FORBIDDEN,
            Self::PreviousResponseNotFound { .. } => StatusCode::NOT_FOUND,
            Self::InjectedRateLimit | Self::InsufficientQuota => StatusCode::TOO_MANY_REQUESTS,
            Self::InjectedServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Body { status, .. } => *status,
            Self::Invalid { violation, .. } => match violation.rule {
                Rule::Retired | Rule::UnknownModel => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            },
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound { .. } | Self::DeploymentNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout(_) | Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body the real API sends: `{"error": {message, type, param, code}}`.
    #[must_use]
    pub fn envelope(&self) -> ErrorEnvelope {
        const INVALID: &str = "invalid_request_error";
        match self {
            Self::DeploymentNotFound => ErrorEnvelope::new(
                INVALID,
                Some("DeploymentNotFound"),
                None,
                "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again. (fourk emulator: name a model id, or map the name with `fourk emulator --deployment NAME=MODEL`.)",
            ),
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
            Self::BadRequest { code, param, message } => {
                ErrorEnvelope::new(INVALID, *code, param.as_deref(), message.clone())
            }
            // The API's code for this is not documented; `invalid_value` is assumed.
            Self::UnsupportedMimetype { param, mime, allowed } => ErrorEnvelope::new(
                INVALID,
                Some("invalid_value"),
                Some(param),
                format!(
                    "Invalid file '{param}': unsupported mimetype ('{mime}'). Supported file formats are {allowed}."
                ),
            ),
            Self::FileTooLarge { param, limit, .. } => ErrorEnvelope::new(
                INVALID,
                Some("invalid_value"),
                Some(param),
                format!(
                    "Invalid file '{param}': the file is too large. Each file must be smaller than {} MB.",
                    limit / (1024 * 1024)
                ),
            ),
            Self::UndecodableImage { param, format, .. } => ErrorEnvelope::new(
                INVALID,
                Some("invalid_image"),
                Some(param),
                format!(
                    "Invalid file '{param}': the file could not be read as a {format} image. Send a complete PNG, JPEG or WebP file whose type matches its content."
                ),
            ),
            Self::Mask(problem) => {
                ErrorEnvelope::new(INVALID, Some("invalid_value"), Some("mask"), problem.to_string())
            }
            Self::UnsupportedParameter { param, model } => ErrorEnvelope::new(
                INVALID,
                Some("unsupported_parameter"),
                Some(param),
                format!(
                    "Unsupported parameter: '{param}' is not supported with {model}. Omit this parameter."
                ),
            ),
            Self::NotEmulated { param, feature } => ErrorEnvelope::new(
                INVALID,
                Some("unsupported_value"),
                Some(param),
                format!(
                    "{feature} is not supported by the fourk emulator, which works offline. Send the image inline as a base64 data URL (data:image/png;base64,...)."
                ),
            ),
            Self::UrlNotFetched { param } => ErrorEnvelope::new(
                INVALID,
                Some("unsupported_value"),
                Some(param),
                format!(
                    "The fourk emulator works offline and cannot download the image at '{param}'. Send the image inline as a base64 data URL (data:image/png;base64,...), or upload it (POST /v1/files with purpose 'vision') and reference it by file_id."
                ),
            ),
            Self::OrganizationNotVerified { model } => ErrorEnvelope::new(
                INVALID,
                None,
                None,
                format!(
                    "Your organization must be verified to use the model '{model}'. Please go to: https://platform.openai.com/settings/organization/general and click on Verify Organization. If you just verified, it can take up to 15 minutes for access to propagate."
                ),
            ),
            Self::ModerationBlocked { request_id } => ErrorEnvelope::new(
                "image_generation_user_error",
                Some("moderation_blocked"),
                None,
                format!(
                    "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID {request_id}."
                ),
            ),
            Self::PreviousResponseNotFound { id } => ErrorEnvelope::new(
                INVALID,
                Some("previous_response_not_found"),
                Some("previous_response_id"),
                format!("Previous response with id '{id}' not found."),
            ),
            Self::InjectedRateLimit => ErrorEnvelope::new(
                "requests",
                Some("rate_limit_exceeded"),
                None,
                "Rate limit reached for requests per min (RPM) in the fourk emulator (injected fault). Please try again in 1s.",
            ),
            Self::InsufficientQuota => ErrorEnvelope::new(
                "insufficient_quota",
                Some("insufficient_quota"),
                None,
                "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            ),
            Self::InjectedServerError => ErrorEnvelope::new(
                "server_error",
                None,
                None,
                "The server had an error while processing your request. Sorry about that!",
            ),
            Self::Overloaded => ErrorEnvelope::new(
                "service_unavailable_error",
                Some("server_is_overloaded"),
                None,
                "The server is overloaded or not ready yet.",
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
            // The API's codes for these three are not documented; they are assumed.
            Self::BodyTooLarge { route, limit, hint } => ErrorEnvelope::new(
                INVALID,
                Some("request_too_large"),
                None,
                format!(
                    "The request body is larger than {limit} bytes ({}), the largest {route} takes. {hint}",
                    human_bytes(*limit)
                ),
            ),
            Self::BodyTimeout(after) => ErrorEnvelope::new(
                INVALID,
                Some("request_timeout"),
                None,
                format!(
                    "The request body did not arrive within {} s (the fourk emulator's body read timeout). Send the whole body without pausing, or raise the limit with --body-timeout-ms (body_read_timeout).",
                    after.as_secs_f64()
                ),
            ),
            Self::Busy(limit) => ErrorEnvelope::new(
                "requests",
                Some("rate_limit_exceeded"),
                None,
                format!(
                    "Too many concurrent requests: the fourk emulator is already processing {limit}, its limit (--max-concurrent-requests, max_concurrent_requests). Please try again in 1s."
                ),
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

/// A byte count as people read it: `1 MiB`, `805 MiB`, `1.5 GiB`.
fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= 1024 * MIB {
        format!("{:.1} GiB", n as f64 / (1024 * MIB) as f64)
    } else if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else {
        format!("{} KiB", n.div_ceil(1024))
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

impl EmulatorError {
    /// The whole error body as JSON: the envelope, plus `moderation_details` for a
    /// moderation block (as the API's image errors carry).
    #[must_use]
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::to_value(self.envelope()).unwrap_or_default();
        if let (Self::ModerationBlocked { .. }, Some(error)) = (self, body.get_mut("error")) {
            error["moderation_details"] = serde_json::to_value(moderation_details()).unwrap_or_default();
        }
        body
    }

    /// How long a client should wait before retrying, for the errors that say so.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::InjectedRateLimit | Self::Busy(_) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

/// The `moderation_details` of an on-demand moderation block: the input was flagged, in a
/// category that says it was the emulator's doing.
pub(crate) fn moderation_details() -> fourk_api::ModerationDetails {
    fourk_api::ModerationDetails {
        categories: vec!["fourk-emulator-test".to_owned()],
        moderation_stage: Some("input".to_owned()),
    }
}

impl IntoResponse for EmulatorError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "emulator internal error");
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let Some(retry_after) = self.retry_after() {
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

/// Which mask rule was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaskProblem {
    /// The mask part is not a PNG (by type or by content).
    #[error("Invalid mask: the mask must be a PNG file.")]
    NotPng,
    /// 4 MB or more.
    #[error("Invalid mask: the mask is {bytes} bytes or more; it must be smaller than 4 MB.")]
    TooLarge {
        /// Bytes read when the limit was hit.
        bytes: u64,
    },
    /// No alpha channel, so no transparent area to mark the edit.
    #[error(
        "Invalid mask: the mask has no alpha channel. Use an RGBA (or grey + alpha) PNG whose fully transparent pixels (alpha 0) mark the area to edit."
    )]
    NoAlpha,
    /// Not the size of the (first) image.
    #[error(
        "Invalid mask: the mask is {}x{} but the image is {}x{}; the mask must have the same dimensions as the (first) image.",
        .mask.0, .mask.1, .image.0, .image.1
    )]
    SizeMismatch {
        /// Mask width and height.
        mask: (u32, u32),
        /// First image width and height.
        image: (u32, u32),
    },
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
