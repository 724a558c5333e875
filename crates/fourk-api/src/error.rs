//! The OpenAI error envelope, `{"error": {message, type, param, code}}`, and what each kind of
//! error means for the user.

use serde::{Deserialize, Serialize};

/// The inner object of an error body. `param` and `code` are always present (possibly null),
/// as the API's `Error` schema requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Human-readable text.
    pub message: String,
    /// Category such as `invalid_request_error` or `image_generation_user_error`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The request field at fault.
    #[serde(default)]
    pub param: Option<String>,
    /// Machine-readable code such as `invalid_value` or `insufficient_quota`.
    #[serde(default)]
    pub code: Option<String>,
    /// Azure OpenAI's details (`inner_error`, or `innererror` on some routes): the policy
    /// code and, for a content-filter rejection, `content_filter_results` per category.
    #[serde(default, alias = "innererror", skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<Box<serde_json::Value>>,
}

impl ApiError {
    /// The content-filter categories that were filtered (Azure's
    /// `inner_error.content_filter_results`), as `violence (medium)`.
    #[must_use]
    pub fn filtered_categories(&self) -> Vec<String> {
        let Some(results) = self
            .inner_error
            .as_ref()
            .and_then(|i| i.get("content_filter_results"))
            .and_then(serde_json::Value::as_object)
        else {
            return Vec::new();
        };
        results
            .iter()
            .filter(|(_, r)| r.get("filtered").and_then(serde_json::Value::as_bool) == Some(true))
            .map(
                |(name, r)| match r.get("severity").and_then(serde_json::Value::as_str) {
                    Some(sev) => format!("{name} ({sev})"),
                    None => name.clone(),
                },
            )
            .collect()
    }
}

/// The whole error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ApiError,
}

impl ErrorEnvelope {
    /// Build an envelope.
    #[must_use]
    pub fn new(kind: &str, code: Option<&str>, param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            error: ApiError {
                message: message.into(),
                kind: kind.to_owned(),
                param: param.map(str::to_owned),
                code: code.map(str::to_owned),
                inner_error: None,
            },
        }
    }
}

/// What an API error means, decided from the status and the envelope together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// 400 with a problem in the request (bad size, bad option).
    InvalidRequest,
    /// 400 moderation block: the prompt or the image was rejected by the safety system.
    ModerationBlocked,
    /// 401: wrong, revoked or missing key.
    Authentication,
    /// 403 organisation verification required for this model.
    OrganizationVerification,
    /// 403 otherwise (region, permissions).
    PermissionDenied,
    /// 404 unknown model or resource.
    NotFound,
    /// 429 with `insufficient_quota` or a spend limit: do not retry.
    QuotaExhausted,
    /// 429 rate limited: wait and retry.
    RateLimited,
    /// 5xx.
    Server,
    /// Anything else.
    Other,
}

impl ErrorClass {
    /// Classify a response.
    #[must_use]
    pub fn of(status: u16, error: Option<&ApiError>) -> Self {
        let code = error.and_then(|e| e.code.as_deref()).unwrap_or("");
        let kind = error.map_or("", |e| e.kind.as_str());
        let message = error.map_or("", |e| e.message.as_str());
        match status {
            400 | 403 if code == "API_KEY_INVALID" => Self::Authentication,
            400 if matches!(
                code,
                "moderation_blocked" | "content_policy_violation" | "contentFilter" | "content_filter"
            ) =>
            {
                Self::ModerationBlocked
            }
            400 => Self::InvalidRequest,
            401 => Self::Authentication,
            403 if message.contains("must be verified") => Self::OrganizationVerification,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            429 if matches!(
                code,
                "insufficient_quota" | "credit_balance_exhausted" | "billing_hard_limit_reached"
            ) || kind == "insufficient_quota" =>
            {
                Self::QuotaExhausted
            }
            429 => Self::RateLimited,
            500..=599 => Self::Server,
            _ => Self::Other,
        }
    }

    /// Classify an error that arrived inside a stream (an `error` event, or a
    /// `response.failed`), where there is no HTTP status to go by: the code decides.
    #[must_use]
    pub fn of_code(error: &ApiError) -> Self {
        let code = error.code.as_deref().unwrap_or("");
        match code {
            "moderation_blocked" | "content_policy_violation" | "image_content_policy_violation" => {
                Self::ModerationBlocked
            }
            "insufficient_quota" | "credit_balance_exhausted" | "billing_hard_limit_reached" => {
                Self::QuotaExhausted
            }
            "rate_limit_exceeded" | "slow_down" => Self::RateLimited,
            "server_error" | "internal_error" => Self::Server,
            c if c.starts_with("invalid_")
                || c.starts_with("image_")
                || c.starts_with("unsupported_")
                || c.starts_with("empty_")
                || c.starts_with("failed_to_download") =>
            {
                Self::InvalidRequest
            }
            _ if error.kind == "insufficient_quota" => Self::QuotaExhausted,
            // A stream error event often carries only a type (`server_error`, code null).
            _ if error.kind == "server_error" => Self::Server,
            _ => Self::Other,
        }
    }

    /// [`Self::hint`] in the words of `provider`: its own variables and places.
    #[must_use]
    pub fn hint_for(self, provider: crate::ProviderKind) -> &'static str {
        use crate::ProviderKind as P;
        match (self, provider) {
            (Self::Authentication, P::Azure) => {
                "check AZURE_OPENAI_API_KEY (sent as api-key) or the Entra ID token (AZURE_OPENAI_AD_TOKEN, --token-command), and that AZURE_OPENAI_ENDPOINT is this key's resource; or run offline with --emulator"
            }
            (Self::NotFound, P::Azure) => {
                "check --deployment (default: the model id) and --api-version / OPENAI_API_VERSION against the resource's deployments (AZURE_OPENAI_ENDPOINT)"
            }
            (Self::ModerationBlocked, P::Azure) => {
                "Azure's content filter rejected the prompt or image (the categories are in the error's inner_error.content_filter_results): rephrase it, or ask the resource's owner about its content filter configuration"
            }
            (Self::Authentication | Self::PermissionDenied, P::Gemini) => {
                "check GEMINI_API_KEY (or GOOGLE_API_KEY; sent as x-goog-api-key); or run offline with --emulator"
            }
            (Self::NotFound, P::Gemini) => {
                "check --model against the Gemini API's image models (fourk models --provider gemini)"
            }
            (Self::Authentication, P::Compatible) => {
                "check the gateway's key: OPENAI_API_KEY, or the --header that carries it"
            }
            (Self::NotFound, P::Compatible) => {
                "check --model, the gateway's base URL (--base-url / OPENAI_BASE_URL) and --path-prefix"
            }
            _ => self.hint(),
        }
    }

    /// What the user should do next, one line.
    #[must_use]
    pub fn hint(self) -> &'static str {
        match self {
            Self::InvalidRequest => "fix the named parameter; `fourk size SIZE` checks a size offline",
            Self::ModerationBlocked => {
                "the safety system rejected the prompt or image: rephrase it; --moderation low relaxes filtering where policy allows"
            }
            Self::Authentication => {
                "check OPENAI_API_KEY (and OPENAI_ORG_ID / OPENAI_PROJECT_ID if set); or run offline with --emulator"
            }
            Self::OrganizationVerification => {
                "verify your organisation at https://platform.openai.com/settings/organization/general (access can take 15 minutes to propagate)"
            }
            Self::PermissionDenied => {
                "this key or project may not use this model or endpoint; check the project's permissions"
            }
            Self::NotFound => "check --model and the base URL (OPENAI_BASE_URL / --base-url)",
            Self::QuotaExhausted => {
                "the account is out of credit or hit its spend limit: add credit or raise the limit; retrying will not help"
            }
            Self::RateLimited => "rate limited: wait and retry, or lower --concurrency",
            Self::Server => "the server failed; retry later",
            Self::Other => "see the message above",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_null_param_and_code() {
        let e = ErrorEnvelope::new("server_error", None, None, "boom");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#
        );
    }

    #[test]
    fn stream_errors_are_classified_by_code() {
        let of = |code: &str| ErrorClass::of_code(&ErrorEnvelope::new("x", Some(code), None, "m").error);
        assert_eq!(of("moderation_blocked"), ErrorClass::ModerationBlocked);
        assert_eq!(
            of("image_content_policy_violation"),
            ErrorClass::ModerationBlocked
        );
        assert_eq!(of("rate_limit_exceeded"), ErrorClass::RateLimited);
        assert_eq!(of("server_error"), ErrorClass::Server);
        assert_eq!(of("invalid_base64_image"), ErrorClass::InvalidRequest);
        assert_eq!(of("image_too_large"), ErrorClass::InvalidRequest);
        assert_eq!(of("mystery"), ErrorClass::Other);
    }

    #[test]
    fn quota_is_not_rate_limit() {
        let q = ErrorEnvelope::new(
            "insufficient_quota",
            Some("insufficient_quota"),
            None,
            "You exceeded your current quota",
        );
        assert_eq!(ErrorClass::of(429, Some(&q.error)), ErrorClass::QuotaExhausted);
        let r = ErrorEnvelope::new(
            "requests",
            Some("rate_limit_exceeded"),
            None,
            "Rate limit reached",
        );
        assert_eq!(ErrorClass::of(429, Some(&r.error)), ErrorClass::RateLimited);
        let v = ErrorEnvelope::new(
            "invalid_request_error",
            None,
            None,
            "Your organization must be verified to use the model 'gpt-image-2'.",
        );
        assert_eq!(
            ErrorClass::of(403, Some(&v.error)),
            ErrorClass::OrganizationVerification
        );
    }
}
