//! `fourk mcp`: fourk as an MCP server for coding agents (stdio, the official Rust SDK).
//!
//! Every tool is a thin adapter over `fourk-core` (JSON arguments -> the core's spec -> the
//! core's operation -> a result): the same checks, ledger records and messages as the CLI.
//! Images come back as verified files on disk: their paths, `resource_link`s, a small preview
//! and the numbers, never as base64 of the full picture.
//!
//! - [`params`]: each tool's arguments (JSON Schema from the same fourk-api types).
//! - [`results`]: the image records, links, text and preview of a result, under 100 KB.
//! - [`roots`]: where an agent may read and write.
//! - [`jobs`]: long work on its own task, progress, cancellation, the spending ceiling.
//! - [`tools`]: the tool table and the handlers.

#![warn(missing_docs)]

pub mod http;
pub mod jobs;
pub mod params;
pub mod results;
pub mod roots;
pub mod tools;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use fourk_core::Fourk;
use fourk_core::session::Endpoint;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
    ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _};

/// How the server is started: the endpoint every spending tool uses, the roots, the output
/// folder and the spending ceiling.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where requests go (`--emulator`, `--base-url`, the OPENAI_* variables).
    pub endpoint: Endpoint,
    /// `--root` folders; when given they win over the client's MCP roots.
    pub roots: Vec<PathBuf>,
    /// `--out-dir` (default `fourk-out/` inside the first root).
    pub out_dir: Option<PathBuf>,
    /// `--max-cost`: this server process's ceiling in US dollars.
    pub max_cost: Option<f64>,
}

/// What went wrong in a tool call, said as the CLI says it: the rule ids, the message, the
/// fix and, for sizes, the nearest valid ones. Becomes an `isError: true` result.
#[derive(Debug, Clone)]
pub struct ToolError {
    /// The first rule's id (`path_outside_roots`, `max_cost`, `multiple_of_16`, ...).
    pub rule: String,
    /// Every rule id the message names.
    pub rules: Vec<String>,
    /// The whole message.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// The nearest valid sizes, when a size broke a rule.
    pub suggestions: Vec<String>,
}

impl ToolError {
    /// A local rule broken before anything was sent.
    #[must_use]
    pub fn usage(rule: &str, message: impl Into<String>, fix: &str) -> Self {
        Self {
            rule: rule.to_owned(),
            rules: vec![rule.to_owned()],
            message: message.into(),
            fix: fix.to_owned(),
            suggestions: Vec::new(),
        }
    }

    /// Something that should not happen.
    #[must_use]
    pub fn internal(message: &str) -> Self {
        Self::usage("internal", message, "report it, with the server's stderr")
    }

    /// An error of the core, as the CLI would print it: the rule ids are the `  id: ...`
    /// lines, the fix the `hint:` line, the sizes the `nearest valid sizes:` list.
    #[must_use]
    pub fn from_core(e: &anyhow::Error) -> Self {
        let cancelled = e
            .chain()
            .any(|c| c.downcast_ref::<fourk_core::send::Cancelled>().is_some());
        let message = format!("{e:#}");
        let mut rules = Vec::new();
        let mut fix = String::new();
        let mut suggestions = Vec::new();
        for line in message.lines() {
            let t = line.trim();
            if let Some(h) = t.strip_prefix("hint:") {
                fix = h.trim().to_owned();
                if let Some(list) = h.split("nearest valid sizes:").nth(1) {
                    let list = list.split("(use").next().unwrap_or(list);
                    suggestions = list
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                }
            } else if let Some(f) = t.strip_prefix("fix:") {
                if fix.is_empty() {
                    fix = f.trim().to_owned();
                }
            } else if line.starts_with("  ")
                && let Some((id, _)) = t.split_once(": ")
                && !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                rules.push(id.to_owned());
            }
        }
        let usage = e
            .chain()
            .any(|c| c.downcast_ref::<fourk_core::UsageError>().is_some());
        let rule = if cancelled {
            "cancelled".to_owned()
        } else {
            rules.first().cloned().unwrap_or_else(|| {
                if usage {
                    "usage".to_owned()
                } else {
                    "failed".to_owned()
                }
            })
        };
        if rules.is_empty() {
            rules.push(rule.clone());
        }
        Self {
            rule,
            rules,
            message,
            fix,
            suggestions,
        }
    }

    /// The `isError: true` result.
    #[must_use]
    pub fn result(&self) -> CallToolResult {
        let text = if self.fix.is_empty() || self.message.contains(&self.fix) {
            self.message.clone()
        } else {
            format!("{}\n\nfix: {}", self.message, self.fix)
        };
        let mut r = CallToolResult::error(vec![ContentBlock::text(text)]);
        r.structured_content = Some(serde_json::json!({
            "error": {
                "rule": self.rule,
                "rules": self.rules,
                "message": self.message,
                "fix": self.fix,
                "suggestions": self.suggestions,
            }
        }));
        r
    }
}

/// The server: the core value, the options, the session's budget and jobs (shared by every
/// clone), and the client's roots once asked (one client's: each HTTP session gets its own,
/// see [`Server::for_session`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Server {
    inner: Arc<Inner>,
    /// The client's roots, once listed (cleared when the client says they changed).
    client_roots: Arc<Mutex<Option<Vec<PathBuf>>>>,
}

#[derive(Debug)]
struct Inner {
    fk: Fourk,
    opts: Options,
    /// The `--root` folders, canonical.
    flag_roots: Vec<PathBuf>,
    budget: Mutex<jobs::Budget>,
    jobs: jobs::Jobs,
}

/// What the server tells the agent about the way of working, in a few lines.
pub const INSTRUCTIONS: &str = "fourk makes verified high-resolution images (up to 3840x2160) with OpenAI's GPT Image models and returns them as files: absolute paths, resource links and a small preview, never the full image as base64.
Way of working: 1) check_size (only the size field sets the resolution; '4K' in a prompt does nothing); 2) plan for the cost and time of each route; 3) draft several cheap low-quality drafts and look at the sheet; 4) final with the approved draft's ledger id (mode native, or upscale: a 2K master upscaled locally), or deliver for one call with a fallback.
Every spending tool takes dry_run (the exact request and the estimate, nothing sent) and max_cost_usd; the server may also have a session ceiling. 4K renders take minutes: pass job: true (or background: true) and poll status. Files never overwrite existing ones unless force is true. history and cost read the ledger.";

impl Server {
    /// A server over `fk` with `opts`. With `--emulator`, one emulator is started for the
    /// server's life, so that a Responses API chain, a Batch API batch or an uploaded file
    /// made by one call is there for the next, as at OpenAI.
    ///
    /// # Errors
    /// When a `--root` folder does not exist, or the emulator cannot start.
    pub async fn new(fk: Fourk, mut opts: Options) -> anyhow::Result<Self> {
        let flag_roots = opts
            .roots
            .iter()
            .map(|r| {
                roots::canonical_root(r).map_err(|e| anyhow::Error::new(fourk_core::UsageError(e.message)))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if opts.endpoint.emulator && opts.endpoint.shared_emulator.is_none() {
            opts.endpoint.shared_emulator = Some(fourk_core::session::SharedEmulator::start(&fk.caps).await?);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                budget: Mutex::new(jobs::Budget::new(opts.max_cost)),
                fk,
                opts,
                flag_roots,
                jobs: jobs::Jobs::default(),
            }),
            client_roots: Arc::default(),
        })
    }

    /// The same server for another client (an HTTP session): the same budget, jobs and
    /// emulator, its own client roots.
    #[must_use]
    pub fn for_session(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            client_roots: Arc::default(),
        }
    }

    /// Serve on stdin/stdout until the client closes the connection.
    ///
    /// # Errors
    /// When the transport fails.
    pub async fn serve_stdio(self) -> anyhow::Result<()> {
        let jobs = self.clone();
        let running = self.serve(rmcp::transport::stdio()).await?;
        running.waiting().await?;
        jobs.inner.jobs.cancel_all();
        Ok(())
    }

    /// The roots in force for a call: `--root`, else the client's MCP roots, else the
    /// working folder.
    // MCP roots are deprecated by SEP-2577 (2026-07-28) but are what handshake-era clients
    // (Claude Code, Codex) offer; this server speaks those versions.
    #[allow(deprecated)]
    async fn roots(&self, ctx: &RequestContext<RoleServer>) -> roots::Roots {
        let out_dir = self.inner.opts.out_dir.as_deref();
        if !self.inner.flag_roots.is_empty() {
            return roots::Roots::new(self.inner.flag_roots.clone(), roots::Source::Flag, out_dir);
        }
        let cached = self
            .client_roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let client = match cached {
            Some(c) => c,
            None => {
                let listed = if ctx.client_capabilities().and_then(|c| c.roots).is_some() {
                    match tokio::time::timeout(std::time::Duration::from_secs(5), ctx.peer.list_roots()).await
                    {
                        Ok(Ok(r)) => r
                            .roots
                            .iter()
                            .filter_map(|r| roots::path_of_file_uri(&r.uri))
                            .filter_map(|p| roots::canonical_root(&p).ok())
                            .collect(),
                        Ok(Err(e)) => {
                            tracing::warn!("the client's roots could not be listed: {e}");
                            Vec::new()
                        }
                        Err(_) => {
                            tracing::warn!("the client did not list its roots within 5 s");
                            Vec::new()
                        }
                    }
                } else {
                    Vec::new()
                };
                *self.client_roots.lock().unwrap_or_else(PoisonError::into_inner) = Some(listed.clone());
                listed
            }
        };
        if client.is_empty() {
            let cwd = std::env::current_dir()
                .and_then(std::fs::canonicalize)
                .unwrap_or_else(|_| PathBuf::from("."));
            roots::Roots::new(vec![cwd], roots::Source::WorkingFolder, out_dir)
        } else {
            roots::Roots::new(client, roots::Source::Client, out_dir)
        }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(
            Implementation::new("fourk", env!("CARGO_PKG_VERSION")).with_title("fourk: verified 4K images"),
        )
        .with_instructions(INSTRUCTIONS)
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        // The handshake-era versions: the server asks the client for its roots with a
        // request of its own, which the 2026-07-28 revision replaced.
        std::borrow::Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::definitions()))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::definitions().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let result = tools::call(self, &request.name, args, context).await;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(tools::recent_resources(self)))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let t = ResourceTemplate::new("fourk://image/{id}", "fourk-image")
            .with_title("An image in fourk's run ledger")
            .with_description("Metadata (path, size, format, verified, cost, prompt, sidecar) as JSON, and a small JPEG preview")
            .with_mime_type("application/json");
        Ok(ListResourceTemplatesResult::with_all_items(vec![t]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let contents: Vec<ResourceContents> = tools::read_image_resource(self, &request.uri)
            .map_err(|e| ErrorData::resource_not_found(e.message, None))?;
        Ok(ReadResourceResult::new(contents).into())
    }

    async fn on_roots_list_changed(&self, _context: rmcp::service::NotificationContext<RoleServer>) {
        *self.client_roots.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}
