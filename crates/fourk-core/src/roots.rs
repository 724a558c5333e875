//! Where a door that serves others (the MCP server, the studio) may read and write: its root
//! folders, made canonical once, and the one test of whether a resolved path lies within
//! them. Each door resolves the paths it is given (relative to its first root, symlinks
//! followed) and says in its own terms what it refuses; the rule is this one.

use std::fmt;
use std::path::{Path, PathBuf};

/// A folder that cannot be a root.
#[derive(Debug)]
pub struct RootError {
    /// The folder as given.
    pub dir: PathBuf,
    /// Why: it cannot be resolved (missing, no permission), or it is not a folder.
    pub cause: Option<std::io::Error>,
}

impl fmt::Display for RootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(e) => write!(f, "the root {} cannot be used: {e}", self.dir.display()),
            None => write!(f, "the root {} is not a folder", self.dir.display()),
        }
    }
}

impl std::error::Error for RootError {}

impl RootError {
    /// How to get past it.
    #[must_use]
    pub const fn fix(&self) -> &'static str {
        "pass an existing folder to --root"
    }
}

/// A folder as a root: absolute and canonical (symlinks followed).
///
/// # Errors
/// [`RootError`] when it does not exist or is not a folder.
pub fn canonical_root(dir: &Path) -> Result<PathBuf, RootError> {
    let c = std::fs::canonicalize(dir).map_err(|e| RootError {
        dir: dir.to_path_buf(),
        cause: Some(e),
    })?;
    if !c.is_dir() {
        return Err(RootError {
            dir: dir.to_path_buf(),
            cause: None,
        });
    }
    Ok(c)
}

/// Whether `path` (already resolved: canonical, or lexically clean) lies within one of `roots`
/// or within `out_dir` (where the door's own outputs go).
#[must_use]
pub fn within(path: &Path, roots: &[PathBuf], out_dir: &Path) -> bool {
    roots.iter().any(|r| path.starts_with(r)) || path.starts_with(out_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_canonical_folders_and_within_is_by_components() {
        let dir = tempfile::tempdir().unwrap();
        let root = canonical_root(dir.path()).unwrap();
        assert!(root.is_absolute());
        let file = root.join("f.txt");
        std::fs::write(&file, "x").unwrap();
        let e = canonical_root(&file).unwrap_err();
        assert!(e.to_string().contains("is not a folder") && e.fix().contains("--root"));
        assert!(
            canonical_root(&root.join("missing"))
                .unwrap_err()
                .to_string()
                .contains("cannot be used")
        );
        let out = root.join("out");
        assert!(within(&file, std::slice::from_ref(&root), &out));
        // A sibling whose name starts with the root's is not within it.
        let sibling = PathBuf::from(format!("{}-other/x.png", root.display()));
        assert!(!within(&sibling, std::slice::from_ref(&root), &out));
        assert!(within(
            Path::new("/elsewhere/out/x.png"),
            &[root],
            Path::new("/elsewhere/out")
        ));
    }
}
