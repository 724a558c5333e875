//! The emulator's stores of uploaded files and batches: plain data behind locks, with no
//! dependency on the request state or the handlers.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use fourk_api::batch::{Batch, OpenAIFile};

/// A stored file: its object and where its bytes are.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub(crate) meta: OpenAIFile,
    pub(crate) path: PathBuf,
}

/// The files, their folder created on first use and removed with the emulator.
#[derive(Debug, Default)]
pub(crate) struct FileStore {
    dir: Mutex<Option<tempfile::TempDir>>,
    files: Mutex<HashMap<String, StoredFile>>,
}

impl FileStore {
    /// A path in the store's folder for a new file.
    pub(crate) fn new_path(&self, id: &str) -> io::Result<PathBuf> {
        let mut dir = self.dir.lock().unwrap_or_else(PoisonError::into_inner);
        if dir.is_none() {
            *dir = Some(
                tempfile::Builder::new()
                    .prefix("fourk-emulator-files-")
                    .tempdir()?,
            );
        }
        let base = dir.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default();
        Ok(base.join(id))
    }

    /// A temporary file in the folder of `path` (one of [`FileStore::new_path`]), deleted when
    /// dropped unless persisted to `path`.
    pub(crate) fn temp_file(&self, path: &std::path::Path) -> io::Result<tempfile::NamedTempFile> {
        let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
        tempfile::Builder::new().prefix(".upload-").tempfile_in(dir)
    }

    /// Register a file whose bytes are at `path`.
    pub(crate) fn insert(&self, meta: OpenAIFile, path: PathBuf) -> OpenAIFile {
        let stored = StoredFile {
            meta: meta.clone(),
            path,
        };
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(meta.id.clone(), stored);
        meta
    }

    pub(crate) fn get(&self, id: &str) -> Option<StoredFile> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub(crate) fn remove(&self, id: &str) -> Option<StoredFile> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }
}

/// The files and batches of one emulator.
#[derive(Debug, Default)]
pub(crate) struct BatchApi {
    pub(crate) files: FileStore,
    pub(crate) batches: Mutex<BTreeMap<String, BatchEntry>>,
    /// Creation order, for listing newest first.
    pub(crate) order: Mutex<Vec<String>>,
}

#[derive(Debug)]
pub(crate) struct BatchEntry {
    pub(crate) batch: Batch,
    pub(crate) cancel: Arc<AtomicBool>,
}

impl BatchApi {
    pub(crate) fn get(&self, id: &str) -> Option<Batch> {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .map(|e| e.batch.clone())
    }

    pub(crate) fn update(&self, id: &str, f: impl FnOnce(&mut Batch)) -> Option<Batch> {
        let mut map = self.batches.lock().unwrap_or_else(PoisonError::into_inner);
        let e = map.get_mut(id)?;
        f(&mut e.batch);
        Some(e.batch.clone())
    }

    pub(crate) fn cancelled(&self, id: &str) -> bool {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .is_some_and(|e| e.cancel.load(Ordering::Relaxed))
    }
}
