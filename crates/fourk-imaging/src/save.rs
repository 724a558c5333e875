//! Saving: base64 to bytes, verified, written atomically.
//!
//! A file appears under its final name only complete and synced: bytes go to a temporary file
//! in the target's directory (same filesystem, so the final rename is atomic), are flushed to
//! disk, and only then renamed over the target. An interrupted run leaves at most a hidden
//! `.fourk-*.part` file, never a truncated image that looks finished.
//!
//! [`save_verified`] is the path every generated image takes: bytes that fail verification are
//! still kept (they were paid for), but under `<stem>.rejected.<ext>` so nobody mistakes them
//! for the image that was asked for.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use tempfile::NamedTempFile;

use crate::error::ImagingError;
use crate::verify::{DecodedPieces, Expect, VerifyReport, verify_bytes_decoded};

/// Standard alphabet. The API pads, but padding carries no information, so input without it
/// is accepted too rather than failing an image that was already paid for.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Below this many base64 characters, decoding on two threads costs more than it saves.
const PARALLEL_B64_MIN_CHARS: usize = 1 << 20;

/// What a save does when a file is already at the target name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Replace {
    /// Replace it (the user asked for that, e.g. with `--force`).
    #[default]
    Yes,
    /// Never replace it: the rename is an atomic create-new, and when another process took the
    /// name since it was checked, the bytes go to `<stem>.<random>.<ext>` beside it instead (they
    /// may have been paid for). [`SavedImage::path`] says where.
    No,
}

/// Where [`save_verified`] put the bytes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedImage {
    /// Where the bytes are: the requested path, or its `.rejected` sibling.
    pub path: PathBuf,
    /// Verification failed, so `path` is the `.rejected` sibling.
    pub rejected: bool,
    /// The verification.
    pub report: VerifyReport,
    /// How long the verification took (it ran alongside the write).
    #[serde(skip)]
    pub verify_time: Duration,
    /// How long writing and syncing the temporary file took.
    #[serde(skip)]
    pub write_time: Duration,
}

/// Write `bytes` to `path` atomically, creating parent directories.
///
/// Readers see either the old file or the complete new one, never a partial write.
///
/// # Errors
/// [`ImagingError::Io`] when a directory, the temporary file, the write, the sync or the
/// rename fails; the temporary file is removed in every case.
pub fn save_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImagingError> {
    let tmp = temp_beside(path)?;
    write_synced(tmp.as_file(), bytes, path)?;
    persist(tmp, path)
}

/// Decode the API's `b64_json` (standard alphabet; padding optional).
///
/// # Errors
/// [`ImagingError::Base64`] for anything that is not base64, including whitespace.
pub fn decode_b64(b64: &str) -> Result<Vec<u8>, ImagingError> {
    let input = b64.as_bytes();
    if input.len() < PARALLEL_B64_MIN_CHARS {
        return B64.decode(input).map_err(|e| ImagingError::Base64(e.to_string()));
    }
    // A 4K PNG is ~24 MB of base64, and decoding it on one core is ~15% of the save path, so
    // two cores split it. Splitting at a multiple of 4 characters keeps both halves aligned to
    // whole 3-byte groups; only the tail may hold padding.
    let split = (input.len() / 2) & !3;
    let (head, tail) = input.split_at(split);
    let head_len = split / 4 * 3;
    let mut out = vec![0u8; head_len + tail.len().div_ceil(4) * 3];
    let (out_head, out_tail) = out.split_at_mut(head_len);
    let (head_res, tail_res) = thread::scope(|s| {
        let t = s.spawn(|| B64.decode_slice(tail, out_tail));
        let h = B64.decode_slice(head, out_head);
        (h, t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    });
    head_res.map_err(|e| ImagingError::Base64(e.to_string()))?;
    let tail_written = tail_res.map_err(|e| {
        // The tail's offsets are relative to the split; report them against the whole input.
        use base64::{DecodeError as E, DecodeSliceError as S};
        let e = match e {
            S::DecodeError(E::InvalidByte(at, b)) => S::DecodeError(E::InvalidByte(at + split, b)),
            S::DecodeError(E::InvalidLastSymbol(at, b)) => {
                S::DecodeError(E::InvalidLastSymbol(at + split, b))
            }
            S::DecodeError(E::InvalidLength(n)) => S::DecodeError(E::InvalidLength(n + split)),
            other => other,
        };
        ImagingError::Base64(e.to_string())
    })?;
    out.truncate(head_len + tail_written);
    Ok(out)
}

/// Decode `b64`, verify it against `expect`, and write it atomically: to `path` when it passes,
/// otherwise to [`rejected_path`]`(path)`. A file already at `path` is left alone when the new
/// image is rejected.
///
/// Verification and the write run in parallel on the decoded bytes, and the bytes are freed
/// before the rename, so peak memory is about the decoded image plus a few rows.
///
/// # Errors
/// [`ImagingError::Base64`] when `b64` does not decode (nothing is written), and
/// [`ImagingError::Io`] when writing fails. A bad image is not an error: check
/// [`SavedImage::rejected`].
pub fn save_verified(path: &Path, b64: &str, expect: &Expect) -> Result<SavedImage, ImagingError> {
    save_bytes_verified(path, decode_b64(b64)?, expect)
}

/// [`save_verified`] with a [`Replace`] policy for a file already at the target name.
///
/// # Errors
/// As [`save_verified`].
pub fn save_verified_as(
    path: &Path,
    b64: &str,
    expect: &Expect,
    replace: Replace,
) -> Result<SavedImage, ImagingError> {
    save_bytes_verified_as(path, decode_b64(b64)?, expect, replace)
}

/// [`save_verified`] for bytes already in memory (an image fourk encoded itself): verified
/// against `expect` while they are written, then renamed to `path` or, when they fail, to
/// [`rejected_path`]`(path)`.
///
/// # Errors
/// [`ImagingError::Io`] when writing fails. A bad image is not an error: check
/// [`SavedImage::rejected`].
pub fn save_bytes_verified(path: &Path, bytes: Vec<u8>, expect: &Expect) -> Result<SavedImage, ImagingError> {
    save_bytes_verified_as(path, bytes, expect, Replace::Yes)
}

/// [`save_bytes_verified`] with a [`Replace`] policy for a file already at the target name.
///
/// # Errors
/// As [`save_bytes_verified`].
pub fn save_bytes_verified_as(
    path: &Path,
    bytes: Vec<u8>,
    expect: &Expect,
    replace: Replace,
) -> Result<SavedImage, ImagingError> {
    save_bytes_verified_decoded(path, bytes, &DecodedPieces::default(), expect, replace)
}

/// [`save_bytes_verified_as`] for a JPEG with pieces already decoded by the verification's
/// decoder (see [`crate::verify_bytes_decoded`]).
///
/// # Errors
/// As [`save_bytes_verified`].
pub fn save_bytes_verified_decoded(
    path: &Path,
    bytes: Vec<u8>,
    decoded: &DecodedPieces,
    expect: &Expect,
    replace: Replace,
) -> Result<SavedImage, ImagingError> {
    let tmp = temp_beside(path)?;
    let ((report, verify_time), (written, write_time)) = thread::scope(|s| {
        let writer = s.spawn(|| {
            let t = Instant::now();
            (write_synced(tmp.as_file(), &bytes, path), t.elapsed())
        });
        let t = Instant::now();
        let report = verify_bytes_decoded(&bytes, expect, decoded);
        let verified = (report, t.elapsed());
        let written = writer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (verified, written)
    });
    drop(bytes);
    written?;
    let rejected = !report.ok;
    let target = if rejected {
        rejected_path(path)
    } else {
        path.to_owned()
    };
    let target = match replace {
        Replace::Yes => {
            persist(tmp, &target)?;
            target
        }
        Replace::No => persist_new(tmp, &target)?,
    };
    Ok(SavedImage {
        path: target,
        rejected,
        report,
        verify_time,
        write_time,
    })
}

/// `dir/x.png` becomes `dir/x.rejected.png`; `dir/x` becomes `dir/x.rejected`.
#[must_use]
pub fn rejected_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.file_stem().unwrap_or_default());
    name.push(".rejected");
    if let Some(ext) = path.extension() {
        name.push(".");
        name.push(ext);
    }
    path.with_file_name(name)
}

/// The directory a relative bare file name lives in is the current one, spelled `.` because
/// `Path::new("x.png").parent()` is the empty path.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_beside(path: &Path) -> Result<NamedTempFile, ImagingError> {
    if path.file_name().is_none() {
        return Err(ImagingError::Io {
            action: "saving to",
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"),
        });
    }
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(|source| ImagingError::Io {
        action: "creating directory",
        path: dir.to_owned(),
        source,
    })?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".fourk-").suffix(".part");
    // NamedTempFile defaults to 0600, which the rename would carry over to the image; ask for
    // what `File::create` gives instead (0666 less the umask).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir).map_err(|source| ImagingError::Io {
        action: "creating a temporary file in",
        path: dir.to_owned(),
        source,
    })
}

fn write_synced(mut file: &File, bytes: &[u8], target: &Path) -> Result<(), ImagingError> {
    let io = |source| ImagingError::Io {
        action: "writing",
        path: target.to_owned(),
        source,
    };
    file.write_all(bytes).map_err(io)?;
    // Without the sync, a crash soon after the rename can leave an empty file under the final
    // name on filesystems that reorder metadata and data writes.
    file.sync_all().map_err(io)
}

/// Rename `tmp` to `target` only if nothing is there (an atomic create-new); when something
/// is, to `<stem>.<random>.<ext>` beside it. Returns where the file went.
fn persist_new(mut tmp: NamedTempFile, target: &Path) -> Result<PathBuf, ImagingError> {
    let mut name = target.to_owned();
    for _ in 0..16 {
        match tmp.persist_noclobber(&name) {
            Ok(_) => {
                sync_dir(&name);
                return Ok(name);
            }
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                tmp = e.file;
                name = beside(target);
            }
            Err(e) => {
                return Err(ImagingError::Io {
                    action: "renaming a temporary file to",
                    path: name,
                    source: e.error,
                });
            }
        }
    }
    Err(ImagingError::Io {
        action: "finding a free name beside",
        path: target.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
    })
}

/// `dir/x.png` -> `dir/x.<8 hex>.png`.
fn beside(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.file_stem().unwrap_or_default());
    name.push(format!(".{:08x}", fastrand::u32(..)));
    if let Some(ext) = path.extension() {
        name.push(".");
        name.push(ext);
    }
    path.with_file_name(name)
}

fn sync_dir(target: &Path) {
    // Makes the rename itself durable. Best effort: some platforms and filesystems cannot
    // open or sync a directory, and the file is already complete either way.
    #[cfg(unix)]
    if let Ok(dir) = File::open(parent_dir(target)) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = target;
}

fn persist(tmp: NamedTempFile, target: &Path) -> Result<(), ImagingError> {
    tmp.persist(target).map_err(|e| ImagingError::Io {
        action: "renaming a temporary file to",
        path: target.to_owned(),
        source: e.error,
    })?;
    sync_dir(target);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_no_keeps_an_existing_file_and_saves_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.png");
        std::fs::write(&target, b"theirs").unwrap();
        let png = crate::encode(
            &image::DynamicImage::new_rgb8(4, 4),
            fourk_api::OutputFormat::Png,
            None,
        )
        .unwrap();
        let saved = save_bytes_verified_as(&target, png.clone(), &Expect::default(), Replace::No).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"theirs");
        assert_ne!(saved.path, target);
        assert_eq!(saved.path.parent(), target.parent());
        assert_eq!(std::fs::read(&saved.path).unwrap(), png);
        let fresh = dir.path().join("y.png");
        let saved = save_bytes_verified_as(&fresh, png, &Expect::default(), Replace::No).unwrap();
        assert_eq!(saved.path, fresh);
    }
    use crate::encode::encode;
    use fourk_api::{OutputFormat, Size};
    use image::{DynamicImage, Rgb, RgbImage};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 3])));
        encode(&img, OutputFormat::Png, None).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Names in `dir`, sorted, so tests can assert nothing else (no temp file) is there.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn save_atomic_creates_dirs_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/x.bin");
        save_atomic(&path, b"first").unwrap();
        save_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(listing(&dir.path().join("a/b")), ["x.bin"]);
    }

    #[cfg(unix)]
    #[test]
    fn saved_files_are_not_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        save_atomic(&path, b"x").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        // The umask may remove group/other bits, but not all of a 0600 default would remain.
        assert_eq!(mode & 0o600, 0o600);
        let umask_probe = dir.path().join("plain");
        File::create(&umask_probe).unwrap();
        assert_eq!(
            mode & 0o777,
            fs::metadata(&umask_probe).unwrap().permissions().mode() & 0o777
        );
    }

    #[test]
    fn save_atomic_to_a_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("taken")).unwrap();
        let err = save_atomic(&dir.path().join("taken"), b"x").unwrap_err();
        assert!(matches!(err, ImagingError::Io { .. }), "{err}");
        assert_eq!(listing(dir.path()), ["taken"]);
    }

    #[test]
    fn decode_b64_accepts_padded_and_unpadded_and_rejects_garbage() {
        assert_eq!(decode_b64("QUJD").unwrap(), b"ABC");
        assert_eq!(decode_b64("QUI=").unwrap(), b"AB");
        assert_eq!(decode_b64("QUI").unwrap(), b"AB");
        assert_eq!(decode_b64("").unwrap(), b"");
        for bad in ["QU*D", "QUJD\n", "Q", "data:image/png;base64,QUJD", "QU-_"] {
            assert!(matches!(decode_b64(bad), Err(ImagingError::Base64(_))), "{bad}");
        }
    }

    #[test]
    fn parallel_b64_decode_matches_the_plain_engine() {
        let data: Vec<u8> = (0..PARALLEL_B64_MIN_CHARS + 5)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for len in [data.len(), data.len() - 1, data.len() - 2] {
            let enc = b64(&data[..len]);
            assert!(enc.len() >= PARALLEL_B64_MIN_CHARS);
            assert_eq!(decode_b64(&enc).unwrap(), &data[..len], "{len}");
            assert_eq!(decode_b64(enc.trim_end_matches('=')).unwrap(), &data[..len]);
        }
        let mut enc = b64(&data).into_bytes();
        let at = enc.len() - 100;
        enc[at] = b'!';
        let err = decode_b64(std::str::from_utf8(&enc).unwrap()).unwrap_err();
        assert!(err.to_string().contains(&at.to_string()), "{err}");
        let mut enc = b64(&data);
        enc.insert(10, '=');
        assert!(decode_b64(&enc).is_err());
    }

    #[test]
    fn save_verified_writes_a_passing_image_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/x.png");
        let bytes = png(32, 16);
        let expect = Expect::default()
            .with_size(Size::new(32, 16))
            .with_format(OutputFormat::Png);
        let saved = save_verified(&path, &b64(&bytes), &expect).unwrap();
        assert!(!saved.rejected && saved.report.ok);
        assert_eq!(saved.path, path);
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(listing(&dir.path().join("out")), ["x.png"]);
    }

    #[test]
    fn mismatching_image_goes_to_rejected_name_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let bytes = png(32, 16);
        let expect = Expect::default().with_size(Size::new(3840, 2160));
        let saved = save_verified(&path, &b64(&bytes), &expect).unwrap();
        assert!(saved.rejected && !saved.report.ok && saved.report.intact);
        assert_eq!(saved.path, dir.path().join("x.rejected.png"));
        assert_eq!(fs::read(&saved.path).unwrap(), bytes);
        assert_eq!(listing(dir.path()), ["x.rejected.png"]);
    }

    #[test]
    fn corrupt_image_is_rejected_and_an_existing_good_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        fs::write(&path, b"previous").unwrap();
        let bytes = png(64, 64);
        let truncated = &bytes[..bytes.len() / 2];
        let saved = save_verified(&path, &b64(truncated), &Expect::default()).unwrap();
        assert!(saved.rejected && !saved.report.intact);
        assert_eq!(fs::read(&path).unwrap(), b"previous");
        assert_eq!(fs::read(&saved.path).unwrap(), truncated);
        assert_eq!(listing(dir.path()), ["x.png", "x.rejected.png"]);
    }

    #[test]
    fn bad_base64_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let err = save_verified(&path, "not base64!", &Expect::default()).unwrap_err();
        assert!(matches!(err, ImagingError::Base64(_)));
        assert!(listing(dir.path()).is_empty());
    }

    #[test]
    fn rejected_path_keeps_directory_and_extension() {
        assert_eq!(
            rejected_path(Path::new("a/b/x.png")),
            Path::new("a/b/x.rejected.png")
        );
        assert_eq!(
            rejected_path(Path::new("x.tar.webp")),
            Path::new("x.tar.rejected.webp")
        );
        assert_eq!(rejected_path(Path::new("noext")), Path::new("noext.rejected"));
    }

    #[test]
    fn bare_file_name_saves_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("x.png")), Path::new("."));
        assert_eq!(parent_dir(Path::new("d/x.png")), Path::new("d"));
    }
}
