//! The client every sending operation uses: endpoint, retry policy and payload log from an
//! [`Endpoint`], and the in-process emulator when the endpoint asks for it.

use anyhow::Context;
use fourk_api::Capabilities;
use fourk_client::{Client, PayloadLog, ProviderOptions, RetryPolicy, Target};
use secrecy::{ExposeSecret as _, SecretString};

use std::path::PathBuf;
use std::time::Duration;

/// Where requests go and how they are retried and logged: the typed form of the CLI's
/// endpoint flags (`--emulator`, `--base-url`, `--timeout`, `--retries`, `--retry-ambiguous`,
/// `--log-payload`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Start the offline emulator in-process and send requests there (no key needed).
    pub emulator: bool,
    /// API base URL (default: `$OPENAI_BASE_URL`, else `https://api.openai.com/v1`).
    pub base_url: Option<String>,
    /// The API key (default: `$OPENAI_API_KEY`). A door that holds the key itself passes it
    /// here instead of through the process environment; `Debug` never shows it.
    pub api_key: Option<SecretString>,
    /// The provider settings (`--provider`, `--deployment`, `--api-version`, `--header`,
    /// `--path-prefix`, `--token-command`); the environment and the model fill in the rest
    /// when a session connects.
    pub provider: ProviderOptions,
    /// Total time to wait for one request.
    pub timeout: Duration,
    /// Write every request and response (key redacted, images summarised) to this folder.
    pub log_payload: Option<PathBuf>,
    /// Retries of failures that cannot have produced an image.
    pub retries: u32,
    /// Also retry failures after the request was sent (each may be billed again).
    pub retry_ambiguous: bool,
    /// With `emulator`: this running emulator instead of a new one per request, for a door
    /// that lives across calls (see [`SharedEmulator`]).
    pub shared_emulator: Option<SharedEmulator>,
}

/// One in-process emulator kept for a long-lived door (the MCP server, the studio), so that
/// what one call creates there (a Responses API chain, a Batch API batch, uploaded files) is
/// there for the next call, as it is at OpenAI. It stops when the last clone is dropped.
#[derive(Clone)]
pub struct SharedEmulator(std::sync::Arc<fourk_emulator::RunningEmulator>);

impl std::fmt::Debug for SharedEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedEmulator({})", self.0.base_url())
    }
}

impl SharedEmulator {
    /// Start an emulator on a free loopback port, with `caps`.
    ///
    /// # Errors
    /// When it cannot bind.
    pub async fn start(caps: &Capabilities) -> anyhow::Result<Self> {
        Ok(Self(std::sync::Arc::new(spawn_emulator(caps).await?)))
    }

    /// Its base URL (`http://127.0.0.1:PORT/v1`).
    #[must_use]
    pub fn base_url(&self) -> String {
        self.0.base_url()
    }

    /// Its root URL (`http://127.0.0.1:PORT`), below which every provider's routes are.
    #[must_use]
    pub fn root_url(&self) -> String {
        self.0.root_url()
    }
}

/// The default total time for one request: 4K high images can take minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The default number of retries of failures that cannot have produced an image.
pub const DEFAULT_RETRIES: u32 = 2;

impl Default for Endpoint {
    fn default() -> Self {
        Self {
            emulator: false,
            base_url: None,
            api_key: None,
            provider: ProviderOptions::default(),
            timeout: DEFAULT_TIMEOUT,
            log_payload: None,
            retries: DEFAULT_RETRIES,
            retry_ambiguous: false,
            shared_emulator: None,
        }
    }
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Self) -> bool {
        let key = |e: &Self| e.api_key.as_ref().map(|k| k.expose_secret().to_owned());
        self.emulator == other.emulator
            && self.base_url == other.base_url
            && key(self) == key(other)
            && self.provider == other.provider
            && self.timeout == other.timeout
            && self.log_payload == other.log_payload
            && self.retries == other.retries
            && self.retry_ambiguous == other.retry_ambiguous
            && self.shared_emulator.as_ref().map(SharedEmulator::base_url)
                == other.shared_emulator.as_ref().map(SharedEmulator::base_url)
    }
}

impl Eq for Endpoint {}

impl Endpoint {
    /// The in-process emulator with the default timeout and retries.
    #[must_use]
    pub fn emulator() -> Self {
        Self {
            emulator: true,
            ..Self::default()
        }
    }
}

/// An in-process emulator on a free loopback port, with `caps`.
async fn spawn_emulator(caps: &Capabilities) -> anyhow::Result<fourk_emulator::RunningEmulator> {
    let running = fourk_emulator::spawn(
        ([127, 0, 0, 1], 0).into(),
        fourk_emulator::EmulatorConfig {
            capabilities: caps.clone(),
            ..Default::default()
        },
    )
    .await
    .context("starting the in-process emulator")?;
    tracing::info!(
        "using the offline emulator at {}: images are rendered procedurally, not by OpenAI",
        running.base_url()
    );
    Ok(running)
}

/// The key the in-process emulator is called with when the user has none; it is not a secret.
const EMULATOR_KEY: &str = "sk-fourk-emulator";

/// Width and height from an image's header, for the payload log's blob summaries.
fn inspect(bytes: &[u8]) -> Option<(u32, u32)> {
    fourk_imaging::probe_bytes(bytes)
        .ok()
        .map(|p| (p.width, p.height))
}

/// The retry policy the endpoint asks for.
#[must_use]
pub fn retry_policy(endpoint: &Endpoint) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(endpoint.retries)
        .with_retry_ambiguous(endpoint.retry_ambiguous)
}

/// A connected client and, with `--emulator`, the emulator it talks to. Shut the emulator
/// down with [`Session::close`] once the answer is read.
#[derive(Debug)]
pub struct Session {
    /// The client.
    pub client: Client,
    emulator: Option<fourk_emulator::RunningEmulator>,
}

impl Session {
    /// Build the client for the chosen endpoint, starting the emulator when asked.
    ///
    /// # Errors
    /// When the emulator cannot start or the configuration cannot make a client.
    pub async fn connect(endpoint: &Endpoint, caps: &Capabilities) -> anyhow::Result<Self> {
        Self::connect_for(endpoint, caps, None).await
    }

    /// [`Self::connect`] for requests of `model`: a model only one provider serves (Gemini's)
    /// chooses that provider when none is named. The choice, and why, goes to the log (on
    /// stderr at the default level when other providers' variables are set too).
    ///
    /// # Errors
    /// When the emulator cannot start or the configuration cannot make a client (a missing
    /// variable is named).
    pub async fn connect_for(
        endpoint: &Endpoint,
        caps: &Capabilities,
        model: Option<&str>,
    ) -> anyhow::Result<Self> {
        let model_kind = model
            .and_then(|m| caps.model(m).ok())
            .and_then(fourk_api::ModelCaps::home_provider);
        let mut emulator = None;
        let root;
        let target = if endpoint.emulator {
            root = match &endpoint.shared_emulator {
                Some(shared) => shared.root_url(),
                None => {
                    let running = spawn_emulator(caps).await?;
                    let url = running.root_url();
                    emulator = Some(running);
                    url
                }
            };
            Target::Emulator {
                root: &root,
                key: EMULATOR_KEY,
            }
        } else {
            Target::Url(endpoint.base_url.as_deref())
        };
        let mut resolved = endpoint
            .provider
            .resolve(target, model_kind, |k| std::env::var(k).ok())?;
        if let Some(key) = &endpoint.api_key {
            resolved.config.api_key = Some(key.clone());
        }
        match resolved.notice() {
            Some(line) => tracing::info!("{line}"),
            None => tracing::debug!("provider {} ({})", resolved.config.provider.kind, resolved.why),
        }
        let config = resolved.config.with_timeout(endpoint.timeout);
        let mut client = Client::new(config)?.with_retry_policy(retry_policy(endpoint));
        if let Some(dir) = &endpoint.log_payload {
            tracing::info!("logging requests and responses to {}", dir.display());
            client = client.with_payload_log(PayloadLog::new(dir).with_inspector(inspect));
        }
        Ok(Self { client, emulator })
    }

    /// The provider the session sends to.
    #[must_use]
    pub fn provider(&self) -> fourk_api::ProviderKind {
        self.client.config().provider.kind
    }

    /// Stop the in-process emulator, if any.
    pub async fn close(self) {
        if let Some(e) = self.emulator
            && let Err(err) = e.shutdown().await
        {
            tracing::debug!("emulator shutdown: {err}");
        }
    }
}
