//! Client configuration, read from the same variables as the official SDKs, and the provider
//! a request goes to: OpenAI, Azure OpenAI, Google's Gemini API or an OpenAI-compatible
//! gateway, each with its URL shape, key header and variables ([`ProviderOptions::resolve`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fourk_api::ProviderKind;
use secrecy::{ExposeSecret as _, SecretString};

/// The public API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The Gemini API's base URL (the version, `v1beta`, is part of each path).
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The SDKs' default total timeout: a 4K `high` image can take minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The SDKs' default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a token from `--token-command` is used before the command runs again. Entra ID
/// tokens live an hour or more, and `az account get-access-token` caches its own, so running
/// it every few minutes costs little and a token never expires mid-batch.
pub const TOKEN_REFRESH: Duration = Duration::from_secs(300);

/// The Image API paths that Azure OpenAI's deployment URLs carry below
/// `deployments/{deployment}/` (as the official SDK's `AzureOpenAI` client does); every other
/// path (`responses`, `files`, `batches`) stays below the resource.
const DEPLOYMENT_PATHS: [&str; 2] = ["images/generations", "images/edits"];

/// How the key travels with a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Bearer KEY`: OpenAI, most gateways, Azure OpenAI with an Entra ID
    /// token.
    #[default]
    Bearer,
    /// The key alone in this header: Azure OpenAI's `api-key`, Gemini's `x-goog-api-key`.
    Header(String),
    /// No key at all: a gateway that authenticates by its own `--header`s.
    None,
}

/// One extra header sent with every request (`--header NAME:VALUE`). Its value may be a
/// secret, so it is kept as one: payload logs, sidecars and `-vv` output show `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct ExtraHeader {
    /// The header name as given.
    pub name: String,
    /// Its value.
    pub value: SecretString,
}

impl PartialEq for ExtraHeader {
    fn eq(&self, other: &Self) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.value.expose_secret() == other.value.expose_secret()
    }
}

impl Eq for ExtraHeader {}

/// How a provider is reached: where an endpoint's URL is, how the key goes with it, what
/// else every request carries. The client and everything above it (the core's one send path)
/// take it as a value, so OpenAI, Azure OpenAI, Gemini and gateways differ here and in the
/// request mapping, nowhere else. The default is OpenAI's shape: `BASE/images/generations`
/// with a bearer key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Which provider.
    pub kind: ProviderKind,
    /// How the key is sent.
    pub auth: Auth,
    /// Azure OpenAI's deployment URLs: the Image API paths become
    /// `deployments/DEPLOYMENT/PATH`, DEPLOYMENT being [`Self::deployment`] or else the
    /// request's model.
    pub deployment_urls: bool,
    /// The deployment name (Azure OpenAI). On Azure it is also the `model` a request body
    /// carries, as the official SDK sends it. `None`: the model id is the deployment's name.
    pub deployment: Option<String>,
    /// Query parameters on every URL (Azure OpenAI's `api-version`).
    pub query: Vec<(String, String)>,
    /// A path inserted between the base URL and every endpoint path (a gateway that mounts
    /// OpenAI's routes below its own prefix).
    pub path_prefix: Option<String>,
    /// Extra headers on every request (`--header`), values secret.
    pub headers: Vec<ExtraHeader>,
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
        Self::of(ProviderKind::Openai)
    }

    /// `kind` with OpenAI's URL shape and a bearer key; the fields say what differs.
    #[must_use]
    pub fn of(kind: ProviderKind) -> Self {
        Self {
            kind,
            auth: Auth::Bearer,
            deployment_urls: false,
            deployment: None,
            query: Vec::new(),
            path_prefix: None,
            headers: Vec::new(),
        }
    }

    /// Its name, as records show it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The `model` a request body carries for `model`: the deployment name on Azure OpenAI
    /// (what its URL or its v1 API's `model` field names), the model id elsewhere.
    #[must_use]
    pub fn model_for<'a>(&'a self, model: &'a str) -> &'a str {
        match (self.kind, &self.deployment) {
            (ProviderKind::Azure, Some(d)) => d,
            _ => model,
        }
    }

    /// The URL of `path` (`images/generations`) below `base`, for a request of `model`
    /// (which names the deployment on Azure's deployment URLs when none is set).
    #[must_use]
    pub fn url_for(&self, base: &str, path: &str, model: Option<&str>) -> String {
        let path = path.trim_start_matches('/');
        let deployment = self.deployment.as_deref().or(model);
        let path = match deployment {
            Some(d) if self.deployment_urls && DEPLOYMENT_PATHS.contains(&path) => {
                format!("deployments/{d}/{path}")
            }
            _ => path.to_owned(),
        };
        let path = match self.path_prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => format!("{p}/{path}"),
            _ => path,
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

    /// [`Self::url_for`] without a request model.
    #[must_use]
    pub fn url(&self, base: &str, path: &str) -> String {
        self.url_for(base, path, None)
    }

    /// The names of the headers whose values are secrets besides the usual ones: the key's
    /// own header and every `--header`.
    #[must_use]
    pub fn secret_header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.headers.iter().map(|h| h.name.to_ascii_lowercase()).collect();
        if let Auth::Header(h) = &self.auth {
            names.push(h.to_ascii_lowercase());
        }
        names
    }
}

/// A command whose standard output is a bearer token (`--token-command`,
/// `FOURK_TOKEN_COMMAND`), for Entra ID tokens that expire: it runs through `sh -c` when a
/// request needs a key and the last token is older than [`TOKEN_REFRESH`]. Clones share the
/// token.
#[derive(Clone)]
pub struct TokenCommand {
    command: String,
    cached: Arc<Mutex<Option<(SecretString, Instant)>>>,
}

impl std::fmt::Debug for TokenCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCommand")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TokenCommand {
    fn eq(&self, other: &Self) -> bool {
        self.command == other.command
    }
}

impl Eq for TokenCommand {}

impl TokenCommand {
    /// A command to run through `sh -c`.
    #[must_use]
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            cached: Arc::default(),
        }
    }

    /// The command line.
    #[must_use]
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The cached token while it is fresh.
    fn fresh(&self) -> Option<SecretString> {
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cached
            .as_ref()
            .filter(|(_, at)| at.elapsed() < TOKEN_REFRESH)
            .map(|(token, _)| token.clone())
    }

    /// [`Self::token`] from async code: the command, when it has to run, runs on the blocking
    /// pool, not on a runtime worker.
    ///
    /// # Errors
    /// As [`Self::token`].
    pub async fn token_async(&self) -> Result<SecretString, crate::ClientError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.token())
            .await
            .map_err(|e| crate::ClientError::Config(format!("the token command's task failed: {e}")))?
    }

    /// A token: the cached one while it is fresh, else the command's output (trimmed).
    ///
    /// # Errors
    /// [`crate::ClientError::Config`] when the command fails or prints nothing.
    pub fn token(&self) -> Result<SecretString, crate::ClientError> {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((token, at)) = cached.as_ref()
            && at.elapsed() < TOKEN_REFRESH
        {
            return Ok(token.clone());
        }
        let fail = |why: String| {
            crate::ClientError::Config(format!(
                "the token command '{}' (from --token-command or FOURK_TOKEN_COMMAND) {why}; it must print a bearer token, e.g. az account get-access-token --resource https://cognitiveservices.azure.com --query accessToken -o tsv",
                self.command
            ))
        };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| fail(format!("could not start ({e})")))?;
        if !out.status.success() {
            return Err(fail(format!("failed ({})", out.status)));
        }
        let text =
            String::from_utf8(out.stdout).map_err(|_| fail("printed something that is not UTF-8".into()))?;
        let token = text.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(fail("printed no single token".into()));
        }
        let token = SecretString::from(token.to_owned());
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }
}

/// Where and how to call the API.
///
/// The key is a [`SecretString`]: its `Debug` prints `[REDACTED]` and it is only exposed when
/// the key's header is built, which is marked sensitive.
#[derive(Debug, Clone)]
pub struct Config {
    /// `OPENAI_API_KEY` (or the provider's own variable).
    pub api_key: Option<SecretString>,
    /// A command that prints a bearer token, run instead of a fixed key.
    pub token_command: Option<TokenCommand>,
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
            token_command: None,
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

    /// [`Self::endpoint`] for a request of `model` (Azure's deployment URLs name it).
    #[must_use]
    pub fn endpoint_for(&self, path: &str, model: &str) -> String {
        self.provider.url_for(&self.base_url, path, Some(model))
    }

    /// Every secret a log must not show: the key, the token command's current token, and the
    /// values of the `--header`s.
    #[must_use]
    pub fn secrets(&self) -> Vec<SecretString> {
        let mut out: Vec<SecretString> = self.api_key.iter().cloned().collect();
        if let Some(t) = &self.token_command
            && let Some((token, _)) = t
                .cached
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
        {
            out.push(token.clone());
        }
        out.extend(self.provider.headers.iter().map(|h| h.value.clone()));
        out
    }
}

/// The provider settings a user gives (`--provider`, `--deployment`, `--api-version`,
/// `--header`, `--path-prefix`, `--token-command`), before the environment fills in the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderOptions {
    /// `--provider` (default: `FOURK_PROVIDER`, else chosen from the model and the
    /// environment).
    pub kind: Option<ProviderKind>,
    /// `--deployment`: Azure OpenAI's deployment name (default: the model id).
    pub deployment: Option<String>,
    /// `--api-version` (default: `OPENAI_API_VERSION`; Azure OpenAI only).
    pub api_version: Option<String>,
    /// `--header NAME:VALUE`, as given; `${VAR}` in a value is read from the environment.
    pub headers: Vec<String>,
    /// `--path-prefix`.
    pub path_prefix: Option<String>,
    /// `--token-command` (default: `FOURK_TOKEN_COMMAND`).
    pub token_command: Option<String>,
}

/// Where a request goes before the provider's shape is applied.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The base URL given with `--base-url`, if any (else the provider's variable).
    Url(Option<&'a str>),
    /// fourk's emulator at this root (`http://127.0.0.1:PORT`), which serves every provider's
    /// routes; `key` is used when the provider's variable is unset.
    Emulator {
        /// The emulator's root URL.
        root: &'a str,
        /// The key to send when the user has none.
        key: &'a str,
    },
}

/// A provider chosen and configured.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The configuration to build a [`crate::Client`] with.
    pub config: Config,
    /// Why this provider: `--provider`, `FOURK_PROVIDER`, the model, a variable.
    pub why: String,
    /// Other providers' variables that are also set, so the choice deserves a line on stderr.
    pub also_set: Vec<&'static str>,
}

impl Resolved {
    /// The line that says which provider was chosen and why, when other providers'
    /// variables are set too; `None` when the choice is the only one.
    #[must_use]
    pub fn notice(&self) -> Option<String> {
        (!self.also_set.is_empty()).then(|| {
            format!(
                "provider {} ({}); also set: {} (choose with --provider or FOURK_PROVIDER)",
                self.config.provider.kind,
                self.why,
                self.also_set.join(", ")
            )
        })
    }
}

/// Each provider's variables, to tell the user which others are set.
const PROVIDER_VARS: [(ProviderKind, &[&str]); 3] = [
    (ProviderKind::Openai, &["OPENAI_API_KEY"]),
    (
        ProviderKind::Azure,
        &[
            "AZURE_OPENAI_ENDPOINT",
            "AZURE_OPENAI_API_KEY",
            "AZURE_OPENAI_AD_TOKEN",
        ],
    ),
    (ProviderKind::Gemini, &["GEMINI_API_KEY", "GOOGLE_API_KEY"]),
];

/// Whether `url` is OpenAI's own API (so a base URL there is `openai`, elsewhere `compatible`).
fn is_openai_host(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.host_str() == Some("api.openai.com"))
}

/// `${VAR}` in `value` replaced by the variable's value.
fn expand(
    value: &str,
    name: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<String, crate::ClientError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            crate::ClientError::Config(format!("--header {name}: '${{' without a closing '}}'"))
        })?;
        let var = &after[..end];
        let v = get(var).ok_or_else(|| {
            crate::ClientError::Config(format!(
                "--header {name} reads ${{{var}}}, which is not set; export {var}=... first"
            ))
        })?;
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `NAME:VALUE` as an [`ExtraHeader`].
fn parse_header(spec: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<ExtraHeader, crate::ClientError> {
    let (name, value) = spec.split_once(':').ok_or_else(|| {
        crate::ClientError::Config(format!(
            "--header '{}' has no ':'; write NAME:VALUE, e.g. --header 'X-Gateway-Key:${{GATEWAY_KEY}}' (single quotes keep the variable out of shell history)",
            spec.split(':').next().unwrap_or_default()
        ))
    })?;
    let name = name.trim();
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| crate::ClientError::Config(format!("--header: '{name}' is not a valid header name")))?;
    let value = expand(value.trim(), name, get)?;
    reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
        crate::ClientError::Config(format!(
            "--header {name}: the value has characters a header cannot carry"
        ))
    })?;
    Ok(ExtraHeader {
        name: name.to_owned(),
        value: SecretString::from(value),
    })
}

/// An Azure OpenAI resource URL without what fourk adds itself (`/openai`, `/openai/v1`).
fn azure_resource(url: &str) -> String {
    let mut u = url.trim().trim_end_matches('/').to_owned();
    for tail in ["/openai/v1", "/openai"] {
        if u.ends_with(tail) {
            u.truncate(u.len() - tail.len());
        }
    }
    u
}

impl ProviderOptions {
    /// Choose the provider and configure the client for it. `model_kind` is the provider
    /// the capability table names for the request's model (Gemini's models choose Gemini).
    /// `get` reads the environment (injectable for tests); empty values count as unset.
    ///
    /// The choice: `--provider`, else `FOURK_PROVIDER`, else the model's provider when it is
    /// not OpenAI's shape, else `--emulator` (OpenAI's shape), else a base URL (`openai` at
    /// api.openai.com, `compatible` elsewhere), else `OPENAI_API_KEY`, else
    /// `AZURE_OPENAI_ENDPOINT`, else `GEMINI_API_KEY`/`GOOGLE_API_KEY`, else `openai`.
    ///
    /// # Errors
    /// [`crate::ClientError::Config`] naming the flag or variable to set.
    pub fn resolve(
        &self,
        target: Target<'_>,
        model_kind: Option<ProviderKind>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, crate::ClientError> {
        let get = move |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let get: &dyn Fn(&str) -> Option<String> = &get;
        let from_env = get("FOURK_PROVIDER")
            .map(|v| {
                v.parse::<ProviderKind>()
                    .map_err(|e| crate::ClientError::Config(format!("FOURK_PROVIDER: {e}")))
            })
            .transpose()?;
        let base_flag = match target {
            Target::Url(u) => u,
            Target::Emulator { .. } => None,
        };
        let (kind, why) = if let Some(k) = self.kind {
            (k, "--provider".to_owned())
        } else if let Some(k) = from_env {
            (k, "FOURK_PROVIDER".to_owned())
        } else if let Some(k) = model_kind.filter(|k| !k.speaks_openai()) {
            (k, format!("the model is served by {k}"))
        } else if matches!(target, Target::Emulator { .. }) {
            (ProviderKind::Openai, "--emulator".to_owned())
        } else if let Some((u, from)) = base_flag
            .map(|u| (u.to_owned(), "--base-url"))
            .or_else(|| get("OPENAI_BASE_URL").map(|u| (u, "OPENAI_BASE_URL")))
        {
            let k = if is_openai_host(&u) {
                ProviderKind::Openai
            } else {
                ProviderKind::Compatible
            };
            (k, from.to_owned())
        } else if get("OPENAI_API_KEY").is_some() {
            (ProviderKind::Openai, "OPENAI_API_KEY".to_owned())
        } else if get("AZURE_OPENAI_ENDPOINT").is_some() {
            (ProviderKind::Azure, "AZURE_OPENAI_ENDPOINT".to_owned())
        } else if get("GEMINI_API_KEY").is_some() || get("GOOGLE_API_KEY").is_some() {
            (ProviderKind::Gemini, "GEMINI_API_KEY".to_owned())
        } else {
            (ProviderKind::Openai, "the default".to_owned())
        };
        let also_set: Vec<&'static str> = PROVIDER_VARS
            .iter()
            .filter(|(k, _)| *k != kind)
            .flat_map(|(_, vars)| vars.iter().copied())
            .filter(|v| get(v).is_some())
            .collect();

        let mut config = Config::from_lookup(get);
        let mut provider = Provider::of(kind);
        provider.headers = self
            .headers
            .iter()
            .map(|h| parse_header(h, get))
            .collect::<Result<_, _>>()?;
        provider.path_prefix.clone_from(&self.path_prefix);
        let token_command = self.token_command.clone().or_else(|| get("FOURK_TOKEN_COMMAND"));
        let emulator_key = match target {
            Target::Emulator { key, .. } => Some(SecretString::from(key.to_owned())),
            Target::Url(_) => None,
        };
        let root = |path: &str| match target {
            Target::Emulator { root, .. } => Some(format!("{}{path}", root.trim_end_matches('/'))),
            Target::Url(_) => None,
        };
        match kind {
            ProviderKind::Openai | ProviderKind::Compatible => {
                if let Some(url) = root("/v1").or_else(|| base_flag.map(str::to_owned)) {
                    config.base_url = url;
                } else if kind == ProviderKind::Compatible && get("OPENAI_BASE_URL").is_none() {
                    return Err(crate::ClientError::Config(
                        "the compatible provider needs the gateway's URL: --base-url URL or OPENAI_BASE_URL"
                            .into(),
                    ));
                }
                if config.api_key.is_none() {
                    config.api_key = emulator_key;
                }
                if config.api_key.is_none() && token_command.is_none() && !provider.headers.is_empty() {
                    provider.auth = Auth::None;
                }
            }
            ProviderKind::Azure => {
                let endpoint = root("")
                    .or_else(|| base_flag.map(str::to_owned))
                    .or_else(|| get("AZURE_OPENAI_ENDPOINT"))
                    .ok_or_else(|| {
                        crate::ClientError::Config(
                            "Azure OpenAI needs its resource URL: export AZURE_OPENAI_ENDPOINT=https://RESOURCE.openai.azure.com (or --base-url)".into(),
                        )
                    })?;
                let resource = azure_resource(&endpoint);
                let version = self.api_version.clone().or_else(|| get("OPENAI_API_VERSION"));
                match version.as_deref() {
                    None | Some("v1") => config.base_url = format!("{resource}/openai/v1"),
                    Some(v @ ("preview" | "latest")) => {
                        config.base_url = format!("{resource}/openai/v1");
                        provider.query.push(("api-version".into(), v.to_owned()));
                    }
                    Some(v) => {
                        config.base_url = format!("{resource}/openai");
                        provider.deployment_urls = true;
                        provider.query.push(("api-version".into(), v.to_owned()));
                    }
                }
                provider.deployment.clone_from(&self.deployment);
                config.api_key = None;
                config.organization = None;
                config.project = None;
                if token_command.is_some() {
                    provider.auth = Auth::Bearer;
                } else if let Some(key) = get("AZURE_OPENAI_API_KEY") {
                    provider.auth = Auth::Header("api-key".into());
                    config.api_key = Some(SecretString::from(key));
                } else if let Some(token) = get("AZURE_OPENAI_AD_TOKEN") {
                    config.api_key = Some(SecretString::from(token));
                } else if let Some(key) = emulator_key {
                    provider.auth = Auth::Header("api-key".into());
                    config.api_key = Some(key);
                }
            }
            ProviderKind::Gemini => {
                config.base_url = root("")
                    .or_else(|| base_flag.map(str::to_owned))
                    .or_else(|| get("GOOGLE_GEMINI_BASE_URL"))
                    .unwrap_or_else(|| GEMINI_BASE_URL.to_owned());
                config.organization = None;
                config.project = None;
                provider.auth = Auth::Header("x-goog-api-key".into());
                // As google-genai: GOOGLE_API_KEY wins when both are set.
                config.api_key = get("GOOGLE_API_KEY")
                    .or_else(|| get("GEMINI_API_KEY"))
                    .map(SecretString::from)
                    .or(emulator_key);
                if self.token_command.is_some() {
                    return Err(crate::ClientError::Config(
                        "--token-command gives a bearer token; the Gemini API takes a key in x-goog-api-key (GEMINI_API_KEY)".into(),
                    ));
                }
            }
        }
        if kind != ProviderKind::Gemini {
            config.token_command = token_command.map(TokenCommand::new);
        }
        if self.deployment.is_some() && kind != ProviderKind::Azure {
            return Err(crate::ClientError::Config(format!(
                "--deployment names an Azure OpenAI deployment; the provider is {kind} ({why}); add --provider azure"
            )));
        }
        config.provider = provider;
        Ok(Resolved {
            config,
            why,
            also_set,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

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
            auth: Auth::Header("api-key".into()),
            deployment_urls: true,
            deployment: Some("img2".into()),
            query: vec![("api-version".into(), "2025-04-01-preview".into())],
            ..Provider::of(ProviderKind::Azure)
        };
        assert_eq!(
            azure.url("https://r.openai.azure.com/openai/", "images/edits"),
            "https://r.openai.azure.com/openai/deployments/img2/images/edits?api-version=2025-04-01-preview"
        );
        assert_eq!(
            azure.url("https://r.openai.azure.com/openai", "responses"),
            "https://r.openai.azure.com/openai/responses?api-version=2025-04-01-preview",
            "only the Image API paths go below a deployment"
        );
        assert_eq!(
            Provider::openai().url("http://127.0.0.1:9/v1", "/responses"),
            "http://127.0.0.1:9/v1/responses"
        );
        let gateway = Provider {
            path_prefix: Some("/openai/".into()),
            ..Provider::of(ProviderKind::Compatible)
        };
        assert_eq!(
            gateway.url("http://gw:4000/", "images/generations"),
            "http://gw:4000/openai/images/generations"
        );
    }

    #[test]
    fn azure_takes_both_url_shapes_and_its_own_key_header() {
        let vars = [
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/"),
            ("AZURE_OPENAI_API_KEY", "azure-secret"),
        ];
        let opts = ProviderOptions {
            kind: Some(ProviderKind::Azure),
            deployment: Some("img-eu".into()),
            ..ProviderOptions::default()
        };
        let r = opts.resolve(Target::Url(None), None, env(&vars)).unwrap();
        assert_eq!(r.config.base_url, "https://res.openai.azure.com/openai/v1");
        assert_eq!(
            r.config.endpoint_for("images/generations", "gpt-image-2"),
            "https://res.openai.azure.com/openai/v1/images/generations"
        );
        assert_eq!(r.config.provider.model_for("gpt-image-2"), "img-eu");
        assert_eq!(r.config.provider.auth, Auth::Header("api-key".into()));
        assert_eq!(r.config.api_key.as_ref().unwrap().expose_secret(), "azure-secret");

        let dated = ProviderOptions {
            api_version: Some("2025-04-01-preview".into()),
            ..opts.clone()
        };
        let r = dated.resolve(Target::Url(None), None, env(&vars)).unwrap();
        assert_eq!(
            r.config.endpoint_for("images/generations", "gpt-image-2"),
            "https://res.openai.azure.com/openai/deployments/img-eu/images/generations?api-version=2025-04-01-preview"
        );
        // Without --deployment the model id names the deployment.
        let r = ProviderOptions {
            deployment: None,
            ..dated
        }
        .resolve(Target::Url(None), None, env(&vars))
        .unwrap();
        assert_eq!(
            r.config.endpoint_for("images/edits", "gpt-image-2"),
            "https://res.openai.azure.com/openai/deployments/gpt-image-2/images/edits?api-version=2025-04-01-preview"
        );
        assert_eq!(r.config.provider.model_for("gpt-image-2"), "gpt-image-2");
    }

    #[test]
    fn an_entra_token_goes_as_a_bearer_and_a_missing_endpoint_names_its_variable() {
        let r = ProviderOptions::default()
            .resolve(
                Target::Url(None),
                None,
                env(&[
                    ("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com"),
                    ("AZURE_OPENAI_AD_TOKEN", "eyJ"),
                ]),
            )
            .unwrap();
        assert_eq!(r.config.provider.kind, ProviderKind::Azure);
        assert_eq!(r.why, "AZURE_OPENAI_ENDPOINT");
        assert_eq!(r.config.provider.auth, Auth::Bearer);
        let e = ProviderOptions {
            kind: Some(ProviderKind::Azure),
            ..ProviderOptions::default()
        }
        .resolve(Target::Url(None), None, env(&[]))
        .unwrap_err();
        assert!(e.to_string().contains("AZURE_OPENAI_ENDPOINT"), "{e}");
    }

    #[test]
    fn the_choice_is_explained_when_several_providers_are_set() {
        let vars = [
            ("OPENAI_API_KEY", "sk-1"),
            ("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com"),
            ("GEMINI_API_KEY", "g-1"),
        ];
        let r = ProviderOptions::default()
            .resolve(Target::Url(None), None, env(&vars))
            .unwrap();
        assert_eq!(r.config.provider.kind, ProviderKind::Openai);
        let notice = r.notice().unwrap();
        assert!(notice.contains("provider openai (OPENAI_API_KEY)"), "{notice}");
        assert!(
            notice.contains("AZURE_OPENAI_ENDPOINT") && notice.contains("GEMINI_API_KEY"),
            "{notice}"
        );
        let r = ProviderOptions::default()
            .resolve(Target::Url(None), Some(ProviderKind::Gemini), env(&vars))
            .unwrap();
        assert_eq!(r.config.provider.kind, ProviderKind::Gemini);
        assert_eq!(r.config.provider.auth, Auth::Header("x-goog-api-key".into()));
        assert_eq!(r.config.base_url, GEMINI_BASE_URL);
        let only = ProviderOptions::default()
            .resolve(Target::Url(None), None, env(&[("OPENAI_API_KEY", "sk-1")]))
            .unwrap();
        assert_eq!(only.notice(), None);
    }

    #[test]
    fn a_gateway_gets_its_headers_from_the_environment() {
        let opts = ProviderOptions {
            headers: vec!["X-Gateway-Key:${GW_KEY}".into(), "X-Team: imaging".into()],
            ..ProviderOptions::default()
        };
        let r = opts
            .resolve(
                Target::Url(Some("http://127.0.0.1:4000/v1")),
                None,
                env(&[("GW_KEY", "gw-secret")]),
            )
            .unwrap();
        assert_eq!(r.config.provider.kind, ProviderKind::Compatible);
        assert_eq!(
            r.config.provider.auth,
            Auth::None,
            "no key: the headers authenticate"
        );
        assert_eq!(r.config.provider.headers[0].value.expose_secret(), "gw-secret");
        assert_eq!(r.config.provider.headers[1].value.expose_secret(), "imaging");
        assert!(
            r.config
                .secrets()
                .iter()
                .any(|s| s.expose_secret() == "gw-secret")
        );
        let e = opts
            .resolve(Target::Url(Some("http://127.0.0.1:4000/v1")), None, env(&[]))
            .unwrap_err();
        assert!(e.to_string().contains("GW_KEY"), "{e}");
        let e = ProviderOptions {
            headers: vec!["X-Bad".into()],
            ..ProviderOptions::default()
        }
        .resolve(Target::Url(None), None, env(&[]))
        .unwrap_err();
        assert!(e.to_string().contains("NAME:VALUE"), "{e}");
    }

    #[test]
    fn the_emulator_serves_every_provider_at_its_root() {
        let t = Target::Emulator {
            root: "http://127.0.0.1:7",
            key: "sk-fourk-emulator",
        };
        let az = ProviderOptions {
            kind: Some(ProviderKind::Azure),
            api_version: Some("2025-04-01-preview".into()),
            ..ProviderOptions::default()
        }
        .resolve(t, None, env(&[]))
        .unwrap();
        assert_eq!(az.config.base_url, "http://127.0.0.1:7/openai");
        assert_eq!(az.config.provider.auth, Auth::Header("api-key".into()));
        let oa = ProviderOptions::default().resolve(t, None, env(&[])).unwrap();
        assert_eq!(oa.config.base_url, "http://127.0.0.1:7/v1");
        assert_eq!(
            oa.config.api_key.as_ref().unwrap().expose_secret(),
            "sk-fourk-emulator"
        );
    }

    #[test]
    fn a_token_command_is_run_and_its_token_kept() {
        let dir = std::env::temp_dir().join(format!("fourk-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let count = dir.join("count");
        let cmd = TokenCommand::new(format!("echo x >> '{}'; echo tok-123", count.display()));
        assert_eq!(cmd.token().unwrap().expose_secret(), "tok-123");
        assert_eq!(cmd.clone().token().unwrap().expose_secret(), "tok-123");
        assert_eq!(
            std::fs::read_to_string(&count).unwrap().lines().count(),
            1,
            "cached"
        );
        let e = TokenCommand::new("exit 3").token().unwrap_err();
        assert!(e.to_string().contains("--token-command"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
