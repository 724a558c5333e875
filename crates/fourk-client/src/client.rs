//! The HTTP client for the Image API.

use std::time::{Duration, Instant};

use bytes::Bytes;
use fourk_api::{ErrorClass, ErrorEnvelope, ImageRequest, ImagesResponseRef};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::error::ClientError;

/// The `x-ratelimit-*` headers of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RateLimits {
    /// `x-ratelimit-limit-requests`.
    pub limit_requests: Option<u64>,
    /// `x-ratelimit-remaining-requests`.
    pub remaining_requests: Option<u64>,
    /// `x-ratelimit-reset-requests`, as sent (`1s`, `12ms`).
    pub reset_requests: Option<String>,
    /// `x-ratelimit-limit-tokens`.
    pub limit_tokens: Option<u64>,
    /// `x-ratelimit-remaining-tokens`.
    pub remaining_tokens: Option<u64>,
    /// `x-ratelimit-reset-tokens`.
    pub reset_tokens: Option<String>,
}

/// A successful answer: the raw body (parsed on demand, so the base64 is not copied) and the
/// metadata a sidecar records.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// `openai-processing-ms`.
    pub processing_ms: Option<u64>,
    /// `x-fourk-emulator`, present when the answer came from fourk's emulator.
    pub emulator: Option<String>,
    /// Rate-limit headers.
    pub rate_limits: RateLimits,
    /// Wall time from sending to the last byte.
    pub elapsed: Duration,
    /// The body.
    pub body: Bytes,
}

impl ApiResponse {
    /// Parse the body as an `ImagesResponse`, borrowing the base64 strings.
    ///
    /// # Errors
    /// [`ClientError::InvalidResponse`] when the body is not an `ImagesResponse`.
    pub fn images(&self) -> Result<ImagesResponseRef<'_>, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::InvalidResponse {
            message: format!("body is not an ImagesResponse: {e}"),
            request_id: self.request_id.clone(),
        })
    }
}

/// A client for the OpenAI image endpoints (or anything that speaks them, like the emulator).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Config,
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    header_str(h, name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = v.max(0.0) as u64;
            n
        })
}

/// `retry-after-ms`, then `retry-after` in seconds or as an HTTP date.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = header_str(h, "retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    let v = header_str(h, "retry-after")?;
    if let Ok(s) = v.trim().parse::<f64>() {
        return Some(Duration::from_secs_f64(s.max(0.0)));
    }
    let when = httpdate::parse_http_date(v.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

impl Client {
    /// Build a client.
    ///
    /// # Errors
    /// [`ClientError::Config`] when the TLS backend or headers cannot be set up.
    pub fn new(config: Config) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        if let Some(org) = &config.organization {
            headers.insert(
                "OpenAI-Organization",
                HeaderValue::from_str(org).map_err(|e| ClientError::Config(format!("OPENAI_ORG_ID: {e}")))?,
            );
        }
        if let Some(project) = &config.project {
            headers.insert(
                "OpenAI-Project",
                HeaderValue::from_str(project)
                    .map_err(|e| ClientError::Config(format!("OPENAI_PROJECT_ID: {e}")))?,
            );
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("fourk/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn auth(&self) -> Result<HeaderValue, ClientError> {
        let key = self.config.api_key.as_ref().ok_or(ClientError::MissingKey)?;
        let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).map_err(|_| {
            ClientError::Config("OPENAI_API_KEY contains characters not allowed in a header".into())
        })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// `POST /images/generations` with a JSON body. No retries: an image request has no
    /// idempotency key, so a resend may be billed twice.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn generate(&self, request: &ImageRequest) -> Result<ApiResponse, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Config(e.to_string()))?;
        self.post_json("images/generations", body).await
    }

    /// POST a JSON body to an endpoint below the base URL.
    ///
    /// # Errors
    /// Every failure as a typed [`ClientError`].
    pub async fn post_json(&self, path: &str, body: Vec<u8>) -> Result<ApiResponse, ClientError> {
        let url = self.config.endpoint(path);
        let auth = self.auth()?;
        let start = Instant::now();
        tracing::debug!(%url, bytes = body.len(), "sending request");
        let sent = self
            .http
            .post(&url)
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Err(transport_error(&url, &e, start.elapsed())),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let request_id = header_str(&headers, "x-request-id");
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(transport_error(&url, &e, start.elapsed())),
        };
        let elapsed = start.elapsed();
        tracing::debug!(
            status,
            ?request_id,
            bytes = body.len(),
            ?elapsed,
            "response received"
        );
        if !(200..300).contains(&status) {
            let error = serde_json::from_slice::<ErrorEnvelope>(&body)
                .ok()
                .map(|e| Box::new(e.error));
            return Err(ClientError::Api {
                status,
                class: ErrorClass::of(status, error.as_deref()),
                error,
                request_id,
                retry_after: retry_after(&headers),
            });
        }
        Ok(ApiResponse {
            status,
            processing_ms: header_u64(&headers, "openai-processing-ms"),
            emulator: header_str(&headers, "x-fourk-emulator"),
            rate_limits: RateLimits {
                limit_requests: header_u64(&headers, "x-ratelimit-limit-requests"),
                remaining_requests: header_u64(&headers, "x-ratelimit-remaining-requests"),
                reset_requests: header_str(&headers, "x-ratelimit-reset-requests"),
                limit_tokens: header_u64(&headers, "x-ratelimit-limit-tokens"),
                remaining_tokens: header_u64(&headers, "x-ratelimit-remaining-tokens"),
                reset_tokens: header_str(&headers, "x-ratelimit-reset-tokens"),
            },
            request_id,
            elapsed,
            body,
        })
    }
}

fn transport_error(url: &str, e: &reqwest::Error, elapsed: Duration) -> ClientError {
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
        }
    } else {
        ClientError::Transport {
            url: url.to_owned(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prefers_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }
}
