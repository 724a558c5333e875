//! `fourk mcp --http ADDR`: the streamable HTTP transport, on loopback only, behind a bearer
//! token. The token is printed once at start (or taken from `FOURK_MCP_TOKEN`); requests
//! without it get 401 before the MCP layer sees them. rmcp then checks the `Host` header
//! (loopback names only: a DNS-rebinding page cannot reach the server) and refuses every
//! request that carries an `Origin` (a browser page), since MCP clients send none.
//!
//! Each HTTP session is [`Server::for_session`]: the same budget, jobs and emulator, its own
//! client roots.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq as _;
use tokio_util::sync::CancellationToken;

use crate::Server;

/// The path the MCP endpoint is served on.
pub const MCP_PATH: &str = "/mcp";

/// The environment variable that fixes the token (otherwise a new random one each start).
pub const TOKEN_VAR: &str = "FOURK_MCP_TOKEN";

/// Where the server listens, once bound.
#[derive(Debug, Clone)]
pub struct Listening {
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    /// The bearer token clients must send.
    pub token: String,
}

/// A new random token: 32 bytes from the operating system, hex.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn random_token() -> anyhow::Result<String> {
    fourk_core::secret::random_token(32)
}

/// Refuse an address that is not loopback: the server spends the user's money on request.
///
/// # Errors
/// A usage error naming the fix.
pub fn check_addr(addr: SocketAddr) -> anyhow::Result<()> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(fourk_core::UsageError(format!(
            "--http {addr} is not a loopback address; fourk mcp serves agents on this machine only\n\nhint: pass --http 127.0.0.1:0 (a free port) or 127.0.0.1:PORT"
        ))
        .into())
    }
}

async fn bearer(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.as_bytes()))) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            format!(
                "missing or wrong bearer token: send `Authorization: Bearer TOKEN` with the token `fourk mcp --http` printed (or start it with {TOKEN_VAR} set)\n"
            ),
        )
            .into_response()
    }
}

impl Server {
    /// Serve the streamable HTTP transport on `addr` (loopback) until `stop` is cancelled;
    /// `ready` hears the URL and token once the socket is bound.
    ///
    /// # Errors
    /// A non-loopback address, a port that cannot be bound, a server failure.
    pub async fn serve_http(
        self,
        addr: SocketAddr,
        token: String,
        stop: CancellationToken,
        ready: impl FnOnce(&Listening),
    ) -> anyhow::Result<()> {
        check_addr(addr)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--http)"))?;
        let local = listener.local_addr()?;
        let config = StreamableHttpServerConfig::default()
            .with_cancellation_token(stop.child_token())
            .enforce_origin_validation();
        let sessions = self.clone();
        let service = StreamableHttpService::new(
            move || Ok(sessions.for_session()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let app =
            axum::Router::new()
                .nest_service(MCP_PATH, service)
                .layer(axum::middleware::from_fn_with_state(
                    Arc::<str>::from(token.as_str()),
                    bearer,
                ));
        ready(&Listening {
            url: format!("http://{local}{MCP_PATH}"),
            token,
        });
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        self.inner.jobs.cancel_all();
        result.context("the MCP HTTP server failed")
    }
}
