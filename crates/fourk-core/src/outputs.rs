//! Where a run writes, decided and checked once, before anything is sent or computed.
//!
//! One rule for every command that writes a file:
//! - `--out` naming an existing folder, or ending in `/`, writes inside it under the default
//!   name; a name without an extension takes the format's (and says so on stderr); an
//!   extension fourk does not write is refused.
//! - Default names can never collide: `PREFIX-YYYYMMDD-HHMMSS-mmm-XXXX.EXT` (UTC time to the
//!   millisecond and four random hex digits, drawn again while any file of the run would
//!   exist), and the image's final rename is an atomic create-new
//!   ([`fourk_imaging::Replace::No`]).
//! - [`check`] runs before the request: no file the run would write (the image, its sidecar,
//!   `-n` numbered files, `.master`, `.key`, `.rejected` and partial images) may exist unless
//!   the user passed `--force`; every folder exists or can be made, is writable (probed with a
//!   temporary file) and has room for the worst-case image.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fourk_api::OutputFormat;

use crate::UsageError;

/// Whether `out` names a folder: it ends in a path separator or is an existing folder.
#[must_use]
pub fn names_folder(out: &Path) -> bool {
    let s = out.as_os_str().to_string_lossy();
    s.ends_with('/') || s.ends_with(std::path::MAIN_SEPARATOR) || out.is_dir()
}

/// Time since the Unix epoch by the system clock (zero for a clock set before it).
#[must_use]
pub fn since_epoch() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// A default file name no other run picks: `PREFIX-YYYYMMDD-HHMMSS-mmm-XXXX.EXT` (UTC).
#[must_use]
pub fn default_name(prefix: &str, ext: &str) -> String {
    let now = since_epoch();
    let secs = now.as_secs();
    let (y, m, d) = civil(i64::try_from(secs / 86_400).unwrap_or(0));
    let t = secs % 86_400;
    format!(
        "{prefix}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{:03}-{:04x}.{ext}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        now.subsec_millis(),
        fastrand::u16(..)
    )
}

/// The civil date (year, month, day) of a day number counted from 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The path a run writes its (first) image to, from `--out` and the output format.
///
/// `None`: a default name in the working folder. A folder (existing, or ending in `/`): a
/// default name inside it. No extension: the format's, said on stderr. `files` gives every
/// file the run would write for a path; a default name is drawn again while any of them
/// exists.
///
/// # Errors
/// [`UsageError`] for an extension fourk does not write.
pub fn resolve(
    out: Option<&Path>,
    prefix: &str,
    format: OutputFormat,
    files: impl Fn(&Path) -> Vec<PathBuf>,
) -> anyhow::Result<PathBuf> {
    let folder = match out {
        None => None,
        Some(p) if names_folder(p) => Some(p),
        Some(p) => {
            return match p.extension().and_then(|e| e.to_str()) {
                None => {
                    let named = p.with_extension(format.extension());
                    tracing::info!(
                        "--out {} has no extension: writing {} ({format})",
                        p.display(),
                        named.display()
                    );
                    Ok(named)
                }
                Some(ext) if OutputFormat::from_extension(ext).is_none() => Err(UsageError(format!(
                    "--out {} has the extension .{ext}, which fourk does not write; nothing was sent or written\n\nhint: name it .png, .jpg or .webp (or drop the extension and fourk adds the format's)",
                    p.display()
                ))
                .into()),
                Some(_) => Ok(p.to_path_buf()),
            };
        }
    };
    let mut path = PathBuf::new();
    for _ in 0..64 {
        let name = default_name(prefix, format.extension());
        path = folder.map_or_else(|| PathBuf::from(&name), |f| f.join(&name));
        if !files(&path).iter().any(|f| f.exists()) {
            break;
        }
    }
    Ok(path)
}

/// The files one saved image may leave: the image, its sidecar, its `.rejected` name and
/// that one's sidecar.
#[must_use]
pub fn image_files(image: &Path) -> Vec<PathBuf> {
    let rejected = fourk_imaging::rejected_path(image);
    vec![
        crate::sidecar::path_for(image),
        crate::sidecar::path_for(&rejected),
        image.to_path_buf(),
        rejected,
    ]
}

/// Bytes to keep free for one image of `dims` (the largest the API answers when unknown):
/// a raw RGBA frame, which no PNG, JPEG or WebP of it exceeds by much, plus its sidecar. A
/// hostile size counts no more than the pixel budget's frame (larger files are refused).
#[must_use]
pub fn worst_image_bytes(dims: Option<(u32, u32)>) -> u64 {
    let (w, h) = dims.unwrap_or((3840, 2160));
    (u64::from(w) * u64::from(h) * 4).min(fourk_imaging::budget::max_frame_bytes()) + (1 << 20)
}

/// Check before anything is sent or computed that the run can write `files`: none exists
/// (unless `force`), and each folder exists or can be made, is writable and has room for
/// `worst_bytes`.
///
/// # Errors
/// [`UsageError`] naming the path, the rule and the fix.
pub fn check(files: &[PathBuf], force: bool, worst_bytes: u64) -> anyhow::Result<()> {
    check_files(files, force, worst_bytes, false)
}

/// [`check`] for a dry run: the same rules and the same messages, but a folder that does not
/// exist yet is not made: the nearest folder that exists is probed instead (writable, with
/// room). Nothing is left behind (the writability probe is a temporary file, removed).
///
/// # Errors
/// [`UsageError`] naming the path, the rule and the fix, as [`check`] would.
pub fn check_dry(files: &[PathBuf], force: bool, worst_bytes: u64) -> anyhow::Result<()> {
    check_files(files, force, worst_bytes, true)
}

fn check_files(files: &[PathBuf], force: bool, worst_bytes: u64, dry: bool) -> anyhow::Result<()> {
    let mut existing = Vec::new();
    for f in files {
        match std::fs::metadata(f) {
            Ok(m) if m.is_dir() => {
                return Err(UsageError(format!(
                    "{} is a folder, and this run would write a file there; nothing was sent or written\n\nhint: choose another --out (or end it in / to write inside the folder)",
                    f.display()
                ))
                .into());
            }
            Ok(_) => existing.push(f),
            Err(_) => {}
        }
    }
    if !existing.is_empty() && !force {
        let list: Vec<String> = existing.iter().map(|p| format!("  {}", p.display())).collect();
        return Err(UsageError(format!(
            "this run would replace {} existing file(s), and fourk never replaces a file unless told to; nothing was sent or written:\n{}\n\nhint: pass --force to replace them, or choose another --out",
            existing.len(),
            list.join("\n")
        ))
        .into());
    }
    let folders: BTreeSet<PathBuf> = files.iter().map(|f| parent(f).to_path_buf()).collect();
    for dir in &folders {
        probe_folder(dir, worst_bytes, dry)?;
    }
    Ok(())
}

/// The folder a path lives in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The nearest folder of `dir` (itself or an ancestor) that exists.
fn nearest_existing(dir: &Path) -> PathBuf {
    dir.ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| a.is_dir())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

fn probe_folder(dir: &Path, worst_bytes: u64, dry: bool) -> anyhow::Result<()> {
    // A regular file where a folder must be: say which one, rather than "Not a directory".
    let mut at = PathBuf::new();
    for c in dir.components() {
        at.push(c);
        if matches!(c, Component::Normal(_)) && at.is_file() {
            return Err(UsageError(format!(
                "cannot write into {}: {} is a file, not a folder; nothing was sent or written\n\nhint: choose another --out",
                dir.display(),
                at.display()
            ))
            .into());
        }
    }
    let cannot_make = |e: &dyn std::fmt::Display| {
        UsageError(format!(
            "cannot make the output folder {}: {}; nothing was sent or written\n\nhint: choose another --out, or create the folder first",
            dir.display(),
            e
        ))
    };
    // A dry run makes no folder: it probes the nearest one that exists, where the real run
    // would make the rest.
    let probed = if dry {
        nearest_existing(dir)
    } else {
        std::fs::create_dir_all(dir).map_err(|e| cannot_make(&e))?;
        dir.to_path_buf()
    };
    tempfile::Builder::new()
        .prefix(".fourk-probe-")
        .tempfile_in(&probed)
        .map_err(|e| {
            if probed.as_path() == dir {
                UsageError(format!(
                    "the output folder {} is not writable: {}; nothing was sent or written\n\nhint: choose another --out, or fix the folder's permissions",
                    dir.display(),
                    e
                ))
            } else {
                cannot_make(&e)
            }
        })?;
    if let Ok(free) = fs4::available_space(&probed)
        && free < worst_bytes
    {
        return Err(UsageError(format!(
            "the output folder {} has {} free, and this run may write up to {}; nothing was sent or written\n\nhint: free some space, or choose another --out",
            dir.display(),
            mb(free),
            mb(worst_bytes)
        ))
        .into());
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss)]
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_791), (2026, 12, 4));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(-1), (1969, 12, 31));
    }

    #[test]
    fn default_names_differ_and_carry_the_extension() {
        let names: BTreeSet<String> = (0..200).map(|_| default_name("fourk", "png")).collect();
        assert!(names.len() > 190, "names repeat: {}", names.len());
        let n = names.iter().next().unwrap();
        assert!(n.starts_with("fourk-") && n.ends_with(".png"), "{n}");
        assert_eq!(n.len(), "fourk-20261204-011500-123-abcd.png".len(), "{n}");
    }

    #[test]
    fn folders_and_missing_extensions_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let inside = resolve(Some(d), "fourk", OutputFormat::Webp, image_files).unwrap();
        assert_eq!(inside.parent(), Some(d));
        assert_eq!(inside.extension().unwrap(), "webp");
        let slash = d.join("new").to_string_lossy().into_owned() + "/";
        let inside = resolve(Some(Path::new(&slash)), "fourk", OutputFormat::Png, image_files).unwrap();
        assert_eq!(inside.parent(), Some(d.join("new").as_path()));
        let named = resolve(Some(&d.join("hero")), "fourk", OutputFormat::Jpeg, image_files).unwrap();
        assert_eq!(named, d.join("hero.jpg"));
        let err = resolve(Some(&d.join("hero.gif")), "fourk", OutputFormat::Png, image_files).unwrap_err();
        assert!(err.to_string().contains(".gif"), "{err}");
    }

    #[test]
    fn existing_files_are_refused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.png");
        std::fs::write(crate::sidecar::path_for(&img), b"{}").unwrap();
        let err = check(&image_files(&img), false, 1).unwrap_err();
        assert!(
            err.to_string().contains("a.png.json") && err.to_string().contains("--force"),
            "{err}"
        );
        check(&image_files(&img), true, 1).unwrap();
    }

    #[test]
    fn a_file_in_place_of_a_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = check(&image_files(&file.join("sub/a.png")), false, 1).unwrap_err();
        assert!(err.to_string().contains("is a file, not a folder"), "{err}");
    }

    #[test]
    fn the_dry_check_makes_no_folder_and_says_what_check_says() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("new/deeper/a.png");
        check_dry(&image_files(&img), false, 1).unwrap();
        assert!(!dir.path().join("new").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let old = dir.path().join("b.png");
        std::fs::write(&old, b"x").unwrap();
        let real = check(&image_files(&old), false, 1).unwrap_err().to_string();
        let dry = check_dry(&image_files(&old), false, 1).unwrap_err().to_string();
        assert_eq!(real, dry);
        let real = check(&image_files(&img), false, u64::MAX)
            .unwrap_err()
            .to_string();
        let dry = check_dry(&image_files(&img), false, u64::MAX)
            .unwrap_err()
            .to_string();
        assert_eq!(real, dry);
    }

    #[test]
    fn a_folder_without_room_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = check(&image_files(&dir.path().join("a.png")), false, u64::MAX).unwrap_err();
        assert!(err.to_string().contains("free"), "{err}");
    }
}
