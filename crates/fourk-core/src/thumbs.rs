//! Thumbnails of images on record, cached by the SHA-256 of the image's bytes: a JPEG per
//! image in one folder, made from the pixels decoded when the image was saved (the save
//! path's [`fourk_imaging::Thumbnail`]) or, for an image saved before, on first view, by
//! the same full verification that proves a file is an intact image. Content addressing
//! makes the cache safe to share between runs and doors: a changed file has another hash,
//! and a name that is not a hash is never looked up.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fourk_imaging::{Expect, Thumbnail};

/// A folder of thumbnails fitting `edge` x `edge`.
#[derive(Debug, Clone)]
pub struct ThumbCache {
    dir: PathBuf,
    edge: u32,
}

/// A thumbnail on disk, and the hash of the image it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumb {
    /// SHA-256 of the image's bytes.
    pub sha256: String,
    /// The JPEG.
    pub path: PathBuf,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ThumbCache {
    /// Thumbnails fitting `edge` in `dir` (created when the first is stored).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, edge: u32) -> Self {
        Self {
            dir: dir.into(),
            edge,
        }
    }

    /// The cache beside a ledger: `<ledger's folder>/thumbs-<edge>/`.
    #[must_use]
    pub fn beside_ledger(ledger: &Path, edge: u32) -> Self {
        let folder = ledger.parent().unwrap_or_else(|| Path::new("."));
        Self::new(folder.join(format!("thumbs-{edge}")), edge)
    }

    /// The long edge of its thumbnails.
    #[must_use]
    pub const fn edge(&self) -> u32 {
        self.edge
    }

    /// The cached thumbnail of the image with this hash, if there is one. Anything but a
    /// lower-case SHA-256 is never looked up.
    #[must_use]
    pub fn cached(&self, sha256: &str) -> Option<PathBuf> {
        if !is_sha256(sha256) {
            return None;
        }
        let p = self.dir.join(format!("{sha256}.jpg"));
        p.is_file().then_some(p)
    }

    /// Store `thumb` (from the save path) as the thumbnail of the image with this hash.
    ///
    /// # Errors
    /// A hash that is not one, or encoding or writing fails.
    pub fn store(&self, sha256: &str, thumb: &Thumbnail) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(is_sha256(sha256), "{sha256:?} is not a SHA-256");
        let jpeg = fourk_imaging::preview::preview_of_thumbnails(&[&thumb.0], self.edge)?;
        let path = self.dir.join(format!("{sha256}.jpg"));
        // Atomic (a reader sees the whole JPEG or none) but not synced: a cache entry lost to a
        // crash is made again on the next view, and the sync was most of the store's time.
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .with_context(|| format!("writing in {}", self.dir.display()))?;
        std::io::Write::write_all(&mut tmp, &jpeg).with_context(|| format!("writing {}", path.display()))?;
        tmp.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The thumbnail of the image file at `image`: from the cache when its hash is there,
    /// else made by verifying it in full (the same decode under limits as every check) and
    /// stored. The caller decides which files may be read; this refuses any that is not an
    /// intact PNG, JPEG or WebP.
    ///
    /// # Errors
    /// The file cannot be read, is not an intact image, or the thumbnail cannot be written.
    pub fn of_file(&self, image: &Path) -> anyhow::Result<Thumb> {
        let bytes = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
        let sha256 = fourk_imaging::verify::sha256_hex(&bytes);
        if let Some(path) = self.cached(&sha256) {
            return Ok(Thumb { sha256, path });
        }
        let report = fourk_imaging::verify_bytes(&bytes, &Expect::default().with_thumbnail(self.edge));
        let thumb = match (report.intact, report.thumbnail) {
            (true, Some(t)) => t,
            _ => anyhow::bail!(
                "{} is not an intact image{}",
                image.display(),
                report.decode_error.map_or_else(String::new, |e| format!(": {e}"))
            ),
        };
        let path = self.store(&sha256, &thumb)?;
        Ok(Thumb { sha256, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, Rgb, RgbImage};

    fn png(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 7])
        }));
        let p = dir.join(name);
        std::fs::write(
            &p,
            fourk_imaging::encode(&img, fourk_api::OutputFormat::Png, None).unwrap(),
        )
        .unwrap();
        p
    }

    #[test]
    fn a_thumbnail_is_made_once_and_found_by_the_images_hash() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ThumbCache::beside_ledger(&dir.path().join("ledger.db"), 256);
        let a = png(dir.path(), "a.png", 1600, 900);
        let t = cache.of_file(&a).unwrap();
        assert!(t.path.starts_with(dir.path().join("thumbs-256")));
        let p = fourk_imaging::probe_file(&t.path).unwrap();
        assert_eq!(
            (p.format, p.width, p.height),
            (fourk_api::OutputFormat::Jpeg, 256, 144)
        );
        assert_eq!(cache.cached(&t.sha256), Some(t.path.clone()));
        // The same bytes under another name: the same thumbnail, not made again.
        let copy = dir.path().join("copy.png");
        std::fs::copy(&a, &copy).unwrap();
        let made = std::fs::metadata(&t.path).unwrap().modified().unwrap();
        assert_eq!(cache.of_file(&copy).unwrap(), t);
        assert_eq!(std::fs::metadata(&t.path).unwrap().modified().unwrap(), made);
    }

    #[test]
    fn what_is_not_an_intact_image_or_a_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ThumbCache::new(dir.path().join("t"), 128);
        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"not an image").unwrap();
        assert!(
            cache
                .of_file(&text)
                .unwrap_err()
                .to_string()
                .contains("not an intact image")
        );
        let a = png(dir.path(), "a.png", 64, 64);
        let bytes = std::fs::read(&a).unwrap();
        let cut = dir.path().join("cut.png");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(cache.of_file(&cut).is_err());
        assert!(cache.cached("../../etc/passwd").is_none());
        assert!(cache.cached(&"A".repeat(64)).is_none());
    }
}
