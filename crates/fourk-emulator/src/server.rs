//! Running the router on a socket: [`serve`] with a caller's shutdown signal, or [`spawn`] in
//! the background with a handle.
//!
//! The accept loop is hyper's HTTP/1 connection builder rather than `axum::serve`, which sets
//! no timer and so has no header read timeout: a client that never finishes its headers (or
//! an idle keep-alive connection) is dropped after `header_read_timeout`. Graceful shutdown
//! is hyper-util's: stop accepting, close idle connections, let requests in flight finish.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::app;
use crate::state::{EmulatorConfig, EmulatorState};

/// Where the emulator listens unless told otherwise: loopback only, since it accepts any key.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8089);

/// Serve on `listener` until `shutdown` completes, then stop accepting and finish the
/// requests in flight (graceful shutdown).
///
/// # Errors
/// When the request log cannot be opened, or the listener fails.
pub async fn serve(
    listener: TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let state = Arc::new(EmulatorState::try_new(config)?);
    serve_state(listener, state, shutdown).await
}

async fn serve_state(
    listener: TcpListener,
    state: Arc<EmulatorState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_read_timeout);
    let router = app(state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Events of a stream go out as they are written.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Timeouts, resets and clients that leave mid-request end up here.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// After a failed accept: a connection that failed on its way in is skipped; anything else
/// (such as running out of file descriptors) is logged and waited out for a second, as
/// `axum::serve` does.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Bind `addr` (port 0 picks a free port) and serve in a background task.
///
/// # Errors
/// When the request log cannot be opened or the address cannot be bound.
pub async fn spawn(addr: SocketAddr, config: EmulatorConfig) -> io::Result<RunningEmulator> {
    let state = Arc::new(EmulatorState::try_new(config)?);
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_state(listener, state, async move {
        // A dropped sender also means stop.
        let _ = stopped.await;
    }));
    tracing::info!(%addr, "fourk emulator listening; images are procedural, not from OpenAI");
    Ok(RunningEmulator {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

/// A running emulator. Dropping it starts a graceful shutdown in the background;
/// [`RunningEmulator::shutdown`] waits for it to finish.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningEmulator {
    /// The bound address (with the real port when 0 was asked for).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give a client, such as `http://127.0.0.1:8089/v1`. An unspecified
    /// bind address (`0.0.0.0`, `::`) is reported as loopback, which reaches it.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.root_url())
    }

    /// The root URL, such as `http://127.0.0.1:8089`: Azure OpenAI clients take it as their
    /// endpoint (`/openai/...` below it), Gemini clients as their base URL (`/v1beta/...`).
    #[must_use]
    pub fn root_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{addr}")
    }

    /// Stop accepting connections and wait for the requests in flight to finish.
    ///
    /// # Errors
    /// When the server failed, or its task panicked.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
