//! Running the router on a socket: [`serve`] with a caller's shutdown signal, or [`spawn`] in
//! the background with a handle.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

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
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
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
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{addr}/v1")
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
