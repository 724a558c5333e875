//! Where an agent may read and write: every input path resolves (symlinks followed) inside a
//! root, every output inside a root or the out dir, with names sanitised as in batch.

use std::path::{Component, Path, PathBuf};

use crate::ToolError;

/// Where the roots came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--root` on the command line.
    Flag,
    /// The client's MCP roots.
    Client,
    /// The working folder (no `--root`, no client roots).
    WorkingFolder,
}

impl Source {
    const fn describe(self) -> &'static str {
        match self {
            Self::Flag => "the --root folders",
            Self::Client => "the client's MCP roots",
            Self::WorkingFolder => "the working folder (no --root and no client roots)",
        }
    }
}

/// The folders in force for one call, canonical, and the output folder.
#[derive(Debug, Clone)]
pub struct Roots {
    /// Canonical folders; never empty.
    pub dirs: Vec<PathBuf>,
    /// Where they came from.
    pub source: Source,
    /// The output folder (`--out-dir`, default `fourk-out/` in the first root), absolute.
    pub out_dir: PathBuf,
}

/// A folder as a root: made absolute and canonical (symlinks followed), by the core's rule.
///
/// # Errors
/// When it does not exist or is not a folder.
pub fn canonical_root(dir: &Path) -> Result<PathBuf, ToolError> {
    fourk_core::roots::canonical_root(dir)
        .map_err(|e| ToolError::usage("root_missing", e.to_string(), e.fix()))
}

/// A `file://` URI as a path (percent-decoded); `None` for other schemes.
#[must_use]
pub fn path_of_file_uri(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    // file://host/path: only the local host is a path here.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return None;
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

/// `path` as a `file://` URI (characters outside the unreserved set and `/` percent-encoded).
#[must_use]
pub fn file_uri(path: &Path) -> String {
    let mut s = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

impl Roots {
    /// Roots from `dirs` (canonical already) with `out_dir` (`None`: `fourk-out/` in the first).
    #[must_use]
    pub fn new(dirs: Vec<PathBuf>, source: Source, out_dir: Option<&Path>) -> Self {
        let first = dirs.first().cloned().unwrap_or_else(|| PathBuf::from("/"));
        let out_dir = match out_dir {
            Some(d) if d.is_absolute() => d.to_path_buf(),
            Some(d) => first.join(d),
            None => first.join("fourk-out"),
        };
        Self {
            dirs,
            source,
            out_dir: lexical(&out_dir),
        }
    }

    fn inside(&self, p: &Path) -> bool {
        fourk_core::roots::within(p, &self.dirs, &self.out_dir)
    }

    fn outside(&self, given: &str, resolved: &Path, what: &str) -> ToolError {
        ToolError::usage(
            "path_outside_roots",
            format!(
                "{what} {given} resolves to {}, outside {}: {}; nothing was read or sent",
                resolved.display(),
                self.source.describe(),
                self.dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "pass a path inside a root (relative paths start at the first root), or start `fourk mcp` with --root FOLDER",
        )
    }

    /// An input file: relative to the first root, resolved with symlinks followed, and inside
    /// a root (or the out dir, where this server's own outputs are).
    ///
    /// # Errors
    /// [`ToolError`] `path_outside_roots`, or `input_missing` when it does not exist.
    pub fn input(&self, given: &str) -> Result<PathBuf, ToolError> {
        let p = Path::new(given);
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dirs[0].join(p)
        };
        let canon = std::fs::canonicalize(&joined).map_err(|e| {
            // Say "outside" before "missing" when the name itself points out of the roots.
            let lex = lexical(&joined);
            if self.inside(&lex) {
                ToolError::usage(
                    "input_missing",
                    format!("cannot read {given} ({}): {e}", joined.display()),
                    "pass an existing file inside a root",
                )
            } else {
                self.outside(given, &lex, "the input")
            }
        })?;
        if self.inside(&canon) {
            Ok(canon)
        } else {
            Err(self.outside(given, &canon, "the input"))
        }
    }

    /// An output path: `None` is the out dir (the core picks a default name inside it);
    /// a relative path is under the out dir; an absolute one must be inside a root. `..` is
    /// refused, the file name is sanitised as batch job names are, and the deepest existing
    /// folder is resolved with symlinks followed, so a link cannot lead out of the roots.
    ///
    /// # Errors
    /// [`ToolError`] `path_outside_roots` or `bad_name`.
    pub fn output(&self, given: Option<&str>) -> Result<PathBuf, ToolError> {
        let Some(given) = given.filter(|g| !g.trim().is_empty()) else {
            std::fs::create_dir_all(&self.out_dir).map_err(|e| {
                ToolError::usage(
                    "out_dir",
                    format!("cannot make the output folder {}: {e}", self.out_dir.display()),
                    "start `fourk mcp` with --out-dir FOLDER inside a root",
                )
            })?;
            let canon = std::fs::canonicalize(&self.out_dir).unwrap_or_else(|_| self.out_dir.clone());
            if !self.inside(&canon) {
                return Err(self.outside(&self.out_dir.display().to_string(), &canon, "the output folder"));
            }
            return Ok(folder(&canon));
        };
        let p = Path::new(given);
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(ToolError::usage(
                "path_outside_roots",
                format!("the output {given} contains `..`; nothing was sent"),
                "name the output inside the out dir (a relative path) or a root (an absolute path)",
            ));
        }
        let is_folder = given.ends_with('/');
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.out_dir.join(p)
        };
        let joined = if is_folder {
            joined
        } else {
            let name = joined
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (stem, ext) = match name.rsplit_once('.') {
                Some((s, e)) if !s.is_empty() => (s.to_owned(), Some(e.to_owned())),
                _ => (name.clone(), None),
            };
            let clean = fourk_core::batch::names::sanitize(&stem).ok_or_else(|| {
                ToolError::usage(
                    "bad_name",
                    format!("the output name {name:?} has nothing usable as a file name"),
                    "name the output with letters, digits, '-', '_' or '.'",
                )
            })?;
            let clean = match ext {
                Some(e) => format!("{clean}.{}", e.to_ascii_lowercase()),
                None => clean,
            };
            joined.with_file_name(clean)
        };
        let resolved = resolve_existing_prefix(&joined);
        if !self.inside(&resolved) {
            return Err(self.outside(given, &resolved, "the output"));
        }
        Ok(if is_folder { folder(&resolved) } else { resolved })
    }
}

/// `p` with a trailing separator, so the core reads it as a folder.
fn folder(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    if !s.to_string_lossy().ends_with('/') {
        s.push("/");
    }
    PathBuf::from(s)
}

/// `.` and `..` folded without touching the disk.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The deepest existing ancestor canonicalised (symlinks followed), the rest appended.
fn resolve_existing_prefix(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (
            existing.file_name().map(std::ffi::OsStr::to_os_string),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return lexical(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dir: &Path) -> Roots {
        Roots::new(vec![std::fs::canonicalize(dir).unwrap()], Source::Flag, None)
    }

    #[test]
    fn inputs_must_resolve_inside_a_root_even_through_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("in.png"), b"x").unwrap();
        std::fs::write(other.path().join("secret.png"), b"x").unwrap();
        let r = roots(root.path());
        assert!(r.input("in.png").unwrap().ends_with("in.png"));
        let abs = other.path().join("secret.png");
        let e = r.input(abs.to_str().unwrap()).unwrap_err();
        assert_eq!(e.rule, "path_outside_roots", "{e:?}");
        assert!(e.fix.contains("--root"));
        std::os::unix::fs::symlink(&abs, root.path().join("link.png")).unwrap();
        assert_eq!(r.input("link.png").unwrap_err().rule, "path_outside_roots");
        assert_eq!(r.input("../x.png").unwrap_err().rule, "path_outside_roots");
        assert_eq!(r.input("missing.png").unwrap_err().rule, "input_missing");
    }

    #[test]
    fn outputs_stay_under_the_out_dir_or_a_root() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let r = roots(root.path());
        let d = r.output(None).unwrap();
        assert!(d.to_string_lossy().ends_with("fourk-out/"), "{}", d.display());
        let o = r.output(Some("hero shot!.PNG")).unwrap();
        assert_eq!(o.file_name().unwrap(), "hero shot.png");
        assert!(o.starts_with(std::fs::canonicalize(root.path()).unwrap().join("fourk-out")));
        assert_eq!(
            r.output(Some("../up.png")).unwrap_err().rule,
            "path_outside_roots"
        );
        let outside = other.path().join("x.png");
        assert_eq!(
            r.output(Some(outside.to_str().unwrap())).unwrap_err().rule,
            "path_outside_roots"
        );
        std::os::unix::fs::symlink(other.path(), root.path().join("escape")).unwrap();
        let via_link = root.path().join("escape/x.png");
        assert_eq!(
            r.output(Some(via_link.to_str().unwrap())).unwrap_err().rule,
            "path_outside_roots"
        );
        // A folder (where the core then picks the default file name) is held to the same
        // rule: the name it adds has no separator, so the folder decides where it lands.
        let folder = format!("{}/", root.path().join("escape").display());
        assert_eq!(r.output(Some(&folder)).unwrap_err().rule, "path_outside_roots");
        // So is the out dir itself, when a link leads it out of the roots.
        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(other.path(), linked.path().join("fourk-out")).unwrap();
        let r = roots(linked.path());
        assert_eq!(r.output(None).unwrap_err().rule, "path_outside_roots");
        assert_eq!(r.output(Some("sub/")).unwrap_err().rule, "path_outside_roots");
        assert_eq!(r.output(Some("x.png")).unwrap_err().rule, "path_outside_roots");
    }

    #[test]
    fn file_uris_round_trip() {
        let p = Path::new("/tmp/a b/ü.png");
        assert_eq!(path_of_file_uri(&file_uri(p)).unwrap(), p);
        assert_eq!(path_of_file_uri("file:///x/y").unwrap(), Path::new("/x/y"));
        assert!(path_of_file_uri("https://x/y").is_none());
    }
}
