//! Client configuration, read from the same variables as the official SDKs.

use std::time::Duration;

use secrecy::SecretString;

/// The public API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The SDKs' default total timeout: a 4K `high` image can take minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The SDKs' default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to call the API.
///
/// The key is a [`SecretString`]: its `Debug` prints `[REDACTED]` and it is only exposed when
/// the `Authorization` header is built, which is marked sensitive.
#[derive(Debug, Clone)]
pub struct Config {
    /// `OPENAI_API_KEY`.
    pub api_key: Option<SecretString>,
    /// `OPENAI_BASE_URL`, default [`DEFAULT_BASE_URL`]. This is how the emulator is swapped in.
    pub base_url: String,
    /// `OPENAI_ORG_ID`, sent as `OpenAI-Organization`.
    pub organization: Option<String>,
    /// `OPENAI_PROJECT_ID`, sent as `OpenAI-Project`.
    pub project: Option<String>,
    /// Total time for one request. Default 600 s.
    pub timeout: Duration,
    /// Time to establish a connection. Default 5 s.
    pub connect_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            organization: None,
            project: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl Config {
    /// Read `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID`.
    /// Empty values count as unset.
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Self::from_env`] with an injectable lookup, for tests.
    #[must_use]
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Self {
            api_key: get("OPENAI_API_KEY").map(SecretString::from),
            base_url: get("OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            organization: get("OPENAI_ORG_ID"),
            project: get("OPENAI_PROJECT_ID"),
            ..Self::default()
        }
    }

    /// Replace the base URL.
    #[must_use]
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Replace the key.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// Replace the total timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `base_url` joined with an endpoint path such as `images/generations`.
    #[must_use]
    pub fn endpoint(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sdk_variables_and_hides_the_key() {
        let c = Config::from_lookup(|k| match k {
            "OPENAI_API_KEY" => Some("sk-secret-123".into()),
            "OPENAI_BASE_URL" => Some("http://127.0.0.1:9/v1/".into()),
            "OPENAI_ORG_ID" => Some(String::new()),
            _ => None,
        });
        assert_eq!(
            c.endpoint("images/generations"),
            "http://127.0.0.1:9/v1/images/generations"
        );
        assert_eq!(c.organization, None);
        assert!(!format!("{c:?}").contains("sk-secret-123"));
    }
}
