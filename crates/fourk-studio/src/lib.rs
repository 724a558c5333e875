//! `fourk studio`: the local review page for the draft -> approve -> final way of working,
//! served on loopback by the core library (issue 15).
//!
//! - [`guard`]: what every request passes before a page sees it: the `Host` header
//!   (loopback names with the studio's port, against DNS rebinding), the token (exchanged on
//!   first visit for an HttpOnly, SameSite=Strict cookie named after the port, then a
//!   redirect that takes it out of the address bar), a same-origin check on requests that
//!   change state, and the security headers of every answer.
//! - `pages`: the server-rendered pages (gallery, make, review, image, cost), maud templates,
//!   so every value from the ledger or a sidecar is escaped.
//! - `api`: what the pages' script calls: the size check and estimate, work started as the
//!   core's [`fourk_core::jobs`] (it runs on the server: a reloaded or closed page loses
//!   nothing), their progress as server-sent events, cancellation.
//! - `files`: images and thumbnails, only files under a root that are intact images.
//! - `assets`: the stylesheet and the script, embedded in the binary (no CDN, no network).

mod api;
mod assets;
mod files;
pub mod guard;
mod pages;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use fourk_core::Fourk;
use fourk_core::jobs::{Budget, Jobs};
use fourk_core::session::Endpoint;
use fourk_core::thumbs::ThumbCache;
use tokio_util::sync::CancellationToken;

pub use api::Outcome;

/// The long edge of the gallery's thumbnails, in pixels (sharp at 2x on a 192 px card).
pub const THUMB_EDGE: u32 = 384;

/// What `fourk studio` was started with.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How requests reach the API (or the emulator).
    pub endpoint: Endpoint,
    /// The folders whose images may be served (default: the working folder).
    pub roots: Vec<PathBuf>,
    /// Where made images go (default: `fourk-out/` in the first root).
    pub out_dir: Option<PathBuf>,
    /// The ceiling in dollars for everything started from the page.
    pub max_cost: Option<f64>,
}

/// The studio: the core value, its options, its jobs and budget.
#[derive(Debug, Clone)]
pub struct Studio {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fk: Fourk,
    opts: Options,
    /// Canonical roots; never empty.
    roots: Vec<PathBuf>,
    /// Where made images go, absolute.
    out_dir: PathBuf,
    budget: Mutex<Budget>,
    jobs: Jobs<Outcome>,
    thumbs: ThumbCache,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Refuse an address other than a loopback one unless the user said so.
///
/// # Errors
/// [`fourk_core::UsageError`] naming the flag.
pub fn check_addr(addr: SocketAddr, allow_remote: bool) -> Result<(), fourk_core::UsageError> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if allow_remote && addr.ip().is_unspecified() {
        return Err(fourk_core::UsageError(format!(
            "--addr {addr} listens on every interface, and the studio answers only to the Host it was started on (against DNS rebinding)\n\nhint: name the one address to serve on, for example --addr 192.168.1.10:{} --allow-remote",
            addr.port()
        )));
    }
    if allow_remote {
        return Ok(());
    }
    Err(fourk_core::UsageError(format!(
        "--addr {addr} is not a loopback address: the studio spends money and serves your images, so it listens on 127.0.0.1 by default\n\nhint: use --addr 127.0.0.1:0 (any free port), or add --allow-remote if you really mean to serve it on {}",
        addr.ip()
    )))
}

/// A folder as a root (the core's rule), or the usage error naming the flag.
fn canonical_root(dir: &Path) -> anyhow::Result<PathBuf> {
    fourk_core::roots::canonical_root(dir)
        .map_err(|e| fourk_core::UsageError(format!("{e}\n\nhint: {}", e.fix())).into())
}

impl Studio {
    /// A studio over `fk` with `opts`. With the emulator, one is started for the studio's
    /// life (a batch or a Responses chain made by one action is there for the next).
    ///
    /// # Errors
    /// A root that is not a folder, or the emulator cannot start.
    pub async fn new(fk: Fourk, mut opts: Options) -> anyhow::Result<Self> {
        let mut roots = opts
            .roots
            .iter()
            .map(|r| canonical_root(r))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if roots.is_empty() {
            roots.push(canonical_root(&std::env::current_dir()?)?);
        }
        let out_dir = match &opts.out_dir {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => std::env::current_dir()?.join(d),
            None => roots[0].join("fourk-out"),
        };
        std::fs::create_dir_all(&out_dir).map_err(|e| {
            fourk_core::UsageError(format!(
                "cannot make the output folder {}: {e}\n\nhint: pass a writable folder to --out-dir",
                out_dir.display()
            ))
        })?;
        let out_dir = std::fs::canonicalize(&out_dir)?;
        if opts.endpoint.emulator && opts.endpoint.shared_emulator.is_none() {
            opts.endpoint.shared_emulator = Some(fourk_core::session::SharedEmulator::start(&fk.caps).await?);
        }
        let thumbs = ThumbCache::beside_ledger(fk.ledger_path(), THUMB_EDGE);
        Ok(Self {
            inner: Arc::new(Inner {
                budget: Mutex::new(Budget::new(opts.max_cost)),
                jobs: Jobs::default(),
                fk,
                opts,
                roots,
                out_dir,
                thumbs,
            }),
        })
    }

    /// The canonical roots whose images may be served.
    #[must_use]
    pub fn roots(&self) -> &[PathBuf] {
        &self.inner.roots
    }

    /// Where made images go.
    #[must_use]
    pub fn out_dir(&self) -> &Path {
        &self.inner.out_dir
    }

    /// The app for a listener on `port` with `token`: the pages, the API and the files,
    /// behind the [`guard`].
    pub fn app(&self, port: u16, token: &str) -> Router {
        self.app_with(guard::Guard::new(port, token))
    }

    /// The app behind `guard`.
    fn app_with(&self, guard: guard::Guard) -> Router {
        pages::routes()
            .merge(api::routes())
            .merge(files::routes())
            .merge(assets::routes())
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(guard, guard::check))
    }

    /// Serve on `listener` until `stop` is cancelled; running jobs are cancelled then (a
    /// request already sent is still saved and recorded before the process ends).
    ///
    /// # Errors
    /// When the listener fails.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        token: &str,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        let mut guard = guard::Guard::new(addr.port(), token);
        if !addr.ip().is_loopback() {
            // --allow-remote: the address it was started on is a Host it answers to.
            guard = guard.also_answering(&addr.to_string());
        }
        let app = self.app_with(guard);
        let jobs = self.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await?;
        jobs.inner.jobs.cancel_all();
        Ok(())
    }

    /// Whether requests go to the offline emulator.
    fn emulated(&self) -> bool {
        self.inner.opts.endpoint.emulator
    }

    /// `path` (absolute, or relative to the first root) resolved with symlinks followed, when
    /// it is inside a root or the output folder.
    fn inside(&self, path: &Path) -> Option<PathBuf> {
        let p = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.inner.roots[0].join(path)
        };
        let c = std::fs::canonicalize(p).ok()?;
        fourk_core::roots::within(&c, &self.inner.roots, &self.inner.out_dir).then_some(c)
    }

    /// The ledger, read-only (`None` before anything was recorded).
    fn ledger(&self) -> Option<fourk_core::ledger::Ledger> {
        let path = self.inner.fk.ledger_path();
        if !path.exists() {
            return None;
        }
        fourk_core::ledger::Ledger::open_read_only(path)
            .map_err(|e| tracing::warn!("the ledger {} cannot be read: {e}", path.display()))
            .ok()
    }
}
