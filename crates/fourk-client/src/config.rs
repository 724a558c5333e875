//! Client configuration, read from the same variables as the official SDKs.

use std::time::Duration;

use secrecy::SecretString;

/// The public API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The SDKs' default total timeout: a 4K `high` image can take minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The SDKs' default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the key travels with a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Bearer KEY`: OpenAI, most gateways, Azure OpenAI with an Entra ID
    /// token.
    #[default]
    Bearer,
    /// The key alone in this header: Azure OpenAI's `api-key`.
    Header(String),
}

/// How a provider is reached: where an endpoint's URL is and how the key goes with it. The
/// client and everything above it (the core's one send path) take it as a value, so OpenAI,
/// Azure OpenAI and gateways differ here and nowhere else. The default is OpenAI's shape:
/// `BASE/images/generations` with a bearer key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Its name, as records show it: `openai`, `azure`, `compatible`.
    pub name: String,
    /// How the key is sent.
    pub auth: Auth,
    /// A deployment: endpoint paths become `deployments/DEPLOYMENT/PATH` (Azure OpenAI's
    /// deployment URLs, below `https://RESOURCE.openai.azure.com/openai`).
    pub deployment: Option<String>,
    /// Query parameters on every URL (Azure OpenAI's `api-version`).
    pub query: Vec<(String, String)>,
}

impl Default for Provider {
    fn default() -> Self {
        Self::openai()
    }
}

impl Provider {
    /// OpenAI's API, and anything that copies its shape.
    #[must_use]
    pub fn openai() -> Self {
        Self {
            name: "openai".to_owned(),
            auth: Auth::Bearer,
            deployment: None,
            query: Vec::new(),
        }
    }

    /// The URL of `path` (`images/generations`) below `base`.
    #[must_use]
    pub fn url(&self, base: &str, path: &str) -> String {
        let path = path.trim_start_matches('/');
        let path = match &self.deployment {
            Some(d) => format!("deployments/{d}/{path}"),
            None => path.to_owned(),
        };
        let url = format!("{}/{path}", base.trim_end_matches('/'));
        if self.query.is_empty() {
            return url;
        }
        match reqwest::Url::parse(&url) {
            Ok(mut u) => {
                u.query_pairs_mut()
                    .extend_pairs(self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                u.into()
            }
            // Not a URL: the send reports it with the base URL named.
            Err(_) => url,
        }
    }
}

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
    /// URL shape and authentication (default: OpenAI's).
    pub provider: Provider,
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
            provider: Provider::openai(),
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

    /// Replace the provider.
    #[must_use]
    pub fn with_provider(mut self, provider: Provider) -> Self {
        self.provider = provider;
        self
    }

    /// The URL of an endpoint path such as `images/generations`: `base_url` joined with it
    /// in the provider's shape.
    #[must_use]
    pub fn endpoint(&self, path: &str) -> String {
        self.provider.url(&self.base_url, path)
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

    #[test]
    fn a_provider_shapes_the_url() {
        let azure = Provider {
            name: "azure".into(),
            auth: Auth::Header("api-key".into()),
            deployment: Some("img2".into()),
            query: vec![("api-version".into(), "2025-04-01-preview".into())],
        };
        assert_eq!(
            azure.url("https://r.openai.azure.com/openai/", "images/edits"),
            "https://r.openai.azure.com/openai/deployments/img2/images/edits?api-version=2025-04-01-preview"
        );
        assert_eq!(
            Provider::openai().url("http://127.0.0.1:9/v1", "/responses"),
            "http://127.0.0.1:9/v1/responses"
        );
    }
}
