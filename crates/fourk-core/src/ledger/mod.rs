//! The run ledger: a SQLite database (`.fourk/ledger.db` by default) that records every run
//! that spends money or writes an image: runs, batch jobs, HTTP attempts (request ids, retry
//! reasons, "possibly billed"), images (path, SHA-256, checks), usage and cost (measured or
//! estimated), and links between images (draft -> final, master -> upscale, image -> cutout).
//!
//! Durability: WAL journal, every multi-row write in one transaction, so a `kill -9` at any
//! moment leaves either the state before or after each write. The schema version is
//! `PRAGMA user_version`, migrated forward on open ([`schema`]).
//!
//! Modules: `schema` (tables and migrations), `record` (writes), `query` (reads for
//! `history`, `cost` and workflows), `jobs` (batch job state), `hook` (the one call a
//! spending command makes after its sidecars are written).

mod hook;
mod jobs;
mod query;
mod record;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use hook::record_delivery;
pub use jobs::{BatchSummary, JobRow, JobState, NewJob};
pub use query::{
    CostBy, CostRow, GalleryFacets, GalleryFilter, GalleryRow, HistoryRow, ImageRecord, parse_since,
};
pub use record::{AttemptOutcome, UsageKey};

/// Id of a row in `runs`.
pub type RunId = i64;
/// Id of a row in `jobs`.
pub type JobId = i64;
/// Id of a row in `attempts`.
pub type AttemptId = i64;
/// Id of a row in `images`.
pub type ImageId = i64;

/// The default place, relative to the working folder.
pub const DEFAULT_PATH: &str = ".fourk/ledger.db";

/// The variable that moves the ledger (the `--ledger` flag wins over it).
pub const ENV: &str = "FOURK_LEDGER";

/// Where the ledger is: `flag` (the CLI's `--ledger`, or a library caller's choice), else
/// `$FOURK_LEDGER`, else `.fourk/ledger.db` in the working folder.
#[must_use]
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os(ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

/// What can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The file cannot be opened or created.
    #[error(
        "cannot open the ledger {}: {source}\n\nhint: pass a writable path with --ledger PATH or FOURK_LEDGER",
        .path.display()
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file was written by a newer fourk.
    #[error(
        "the ledger {} has schema version {found}, newer than this fourk understands ({})\n\nhint: upgrade fourk, or point --ledger at another file",
        .path.display(), schema::VERSION
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// A query failed.
    #[error("ledger {}: {source}", .path.display())]
    Sql {
        /// The file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
}

/// An open ledger: one SQLite connection. Open one per task or thread; SQLite serialises
/// the writers (busy timeout 30 s).
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl Ledger {
    /// Open (creating the file and its folder if needed) and migrate.
    ///
    /// # Errors
    /// [`LedgerError::Open`] when the file cannot be opened, [`LedgerError::TooNew`] when a
    /// newer fourk made it.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| LedgerError::Open {
            path: path.to_path_buf(),
            source: e,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(Box::new(e)))?;
        }
        let mut conn = Connection::open(path).map_err(|e| open_err(Box::new(e)))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| open_err(Box::new(e)))?;
        // WAL: readers never block the writer, and a kill loses at most the transaction in
        // progress. NORMAL sync is durable against process death (the case that matters for
        // a kill -9); only a power cut can lose the last commits, never consistency.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| open_err(Box::new(e)))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::debug!("ledger journal mode is {mode}, not wal");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
            .map_err(|e| open_err(Box::new(e)))?;
        match schema::migrate(&mut conn).map_err(|e| open_err(Box::new(e)))? {
            Ok(_) => Ok(Self {
                conn,
                path: path.to_path_buf(),
            }),
            Err(found) => Err(LedgerError::TooNew {
                path: path.to_path_buf(),
                found,
            }),
        }
    }

    /// Open the ledger at `path` to read it, writing nothing: no file or folder is made, no
    /// migration runs and the connection refuses writes (`PRAGMA query_only`). A ledger that does not exist yet (or
    /// was never written to) reads as an empty one, held in memory under the same path, so a
    /// lookup answers what it would answer in the new ledger a real run makes. For dry runs.
    ///
    /// # Errors
    /// [`LedgerError::Open`] when the file cannot be read, [`LedgerError::TooNew`] when a
    /// newer fourk made it.
    pub fn open_read_only(path: &Path) -> Result<Self, LedgerError> {
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| LedgerError::Open {
            path: path.to_path_buf(),
            source: e,
        };
        let empty = || -> Result<Self, LedgerError> {
            let mut conn = Connection::open_in_memory().map_err(|e| open_err(Box::new(e)))?;
            match schema::migrate(&mut conn).map_err(|e| open_err(Box::new(e)))? {
                Ok(_) => Ok(Self {
                    conn,
                    path: path.to_path_buf(),
                }),
                Err(found) => Err(LedgerError::TooNew {
                    path: path.to_path_buf(),
                    found,
                }),
            }
        };
        if !path.exists() {
            return empty();
        }
        // Not SQLITE_OPEN_READ_ONLY: a read-only connection to a WAL database leaves the
        // `-wal` and `-shm` files behind, which only a read-write connection removes when it
        // closes. So: an existing file opened for reading and writing (never created), with
        // `query_only` refusing every write; read-only only when the file cannot be written.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags | rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .or_else(|_| {
                Connection::open_with_flags(path, flags | rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            })
            .map_err(|e| open_err(Box::new(e)))?;
        conn.busy_timeout(Duration::from_secs(30))
            .and_then(|()| conn.pragma_update(None, "query_only", "ON"))
            .map_err(|e| open_err(Box::new(e)))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| open_err(Box::new(e)))?;
        if found > schema::VERSION {
            return Err(LedgerError::TooNew {
                path: path.to_path_buf(),
                found,
            });
        }
        if found == 0 {
            // An empty file: a real run would make the tables in it.
            return empty();
        }
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, e: rusqlite::Error) -> LedgerError {
        LedgerError::Sql {
            path: self.path.clone(),
            source: e,
        }
    }
}

/// How a run ended (`runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunStatus {
    /// Still going, or stopped by a kill before it could say.
    Running,
    /// Everything it made verified.
    Ok,
    /// It made images, and one did not verify.
    CheckFailed,
    /// It failed.
    Failed,
    /// A batch with jobs that failed, were skipped or are held.
    Partial,
    /// Stopped by Ctrl-C, SIGTERM or a cancelled token.
    Interrupted,
}

impl RunStatus {
    /// The text stored in `runs.status`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Ok => "ok",
            Self::CheckFailed => "check_failed",
            Self::Failed => "failed",
            Self::Partial => "partial",
            Self::Interrupted => "interrupted",
        }
    }

    /// `Ok` when every image verified, else `CheckFailed`.
    #[must_use]
    pub const fn verified(all_ok: bool) -> Self {
        if all_ok { Self::Ok } else { Self::CheckFailed }
    }
}

/// How two images are related.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkKind {
    /// An approved draft and the final rendered from it.
    DraftToFinal,
    /// A master and its local upscale.
    MasterToUpscale,
    /// An image and its cutout (transparent background).
    ImageToCutout,
    /// A failed attempt and the image that shipped instead.
    Fallback,
    /// An image and its `fourk upscale`.
    ImageToUpscale,
    /// An image and its `fourk fit`.
    ImageToFit,
    /// An image and its `fourk convert`.
    ImageToConvert,
    /// An image and a `fourk sheet` it is on.
    ImageToSheet,
    /// An image and a `fourk compare` it is in.
    ImageToCompare,
}

impl LinkKind {
    /// The text stored in `links.kind`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DraftToFinal => "draft->final",
            Self::MasterToUpscale => "master->upscale",
            Self::ImageToCutout => "image->cutout",
            Self::Fallback => "fallback",
            Self::ImageToUpscale => "image->upscale",
            Self::ImageToFit => "image->fit",
            Self::ImageToConvert => "image->convert",
            Self::ImageToSheet => "image->sheet",
            Self::ImageToCompare => "image->compare",
        }
    }

    /// Parse the stored text.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::DraftToFinal,
            Self::MasterToUpscale,
            Self::ImageToCutout,
            Self::Fallback,
            Self::ImageToUpscale,
            Self::ImageToFit,
            Self::ImageToConvert,
            Self::ImageToSheet,
            Self::ImageToCompare,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        f.sort();
        f
    }

    #[test]
    fn a_read_only_ledger_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("ledger.db");
        // Not there: an empty ledger in memory, no file or folder made.
        let l = Ledger::open_read_only(&path).unwrap();
        assert!(l.find_image(1).unwrap().is_none());
        assert_eq!(l.path(), path);
        drop(l);
        assert!(files(dir.path()).is_empty());

        let w = Ledger::open(&path).unwrap();
        let run = w.begin_run("draft", &serde_json::json!({})).unwrap();
        drop(w);
        let before = files(&dir.path().join("sub"));
        let bytes = std::fs::read(&path).unwrap();
        let l = Ledger::open_read_only(&path).unwrap();
        assert_eq!(l.last_run("draft").unwrap(), Some(run));
        assert!(l.begin_run("draft", &serde_json::json!({})).is_err(), "read-only");
        drop(l);
        assert_eq!(files(&dir.path().join("sub")), before, "nothing left beside it");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
