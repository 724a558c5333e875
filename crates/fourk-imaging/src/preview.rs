//! Small previews for doors that show a picture inline (the MCP server's tool results, the
//! studio): one JPEG whose long edge is at most `edge` pixels, transparent areas over a
//! checkerboard; several pictures become one contact sheet of that size.

use std::path::Path;

use image::{DynamicImage, Rgb, RgbImage, RgbaImage};

use fourk_api::OutputFormat;

use crate::{PipelineError, load_file, load_limits, sheet::paste, thumbnail};

/// JPEG quality of previews: small, and plenty for a look.
pub const PREVIEW_QUALITY: u8 = 80;

/// `img` as a preview: scaled to fit `edge` x `edge`, alpha over a checkerboard, JPEG.
///
/// # Errors
/// [`PipelineError`] when scaling or encoding fails.
pub fn preview_of(img: &DynamicImage, edge: u32) -> Result<Vec<u8>, PipelineError> {
    let t = thumbnail(img, edge)?;
    let mut canvas = RgbImage::from_pixel(t.width(), t.height(), Rgb([255, 255, 255]));
    paste(&mut canvas, &t, 0, 0);
    Ok(crate::encode(
        &DynamicImage::ImageRgb8(canvas),
        OutputFormat::Jpeg,
        Some(PREVIEW_QUALITY),
    )?)
}

/// One preview of `paths`: the picture itself for one, a grid of thumbnails (about square,
/// in order, on a grey ground) for several. Each file is decoded under the pixel budget,
/// one at a time.
///
/// # Errors
/// [`PipelineError`] when a file cannot be decoded, or there is none.
pub fn preview_jpeg(paths: &[impl AsRef<Path>], edge: u32) -> Result<Vec<u8>, PipelineError> {
    let limits = load_limits();
    preview_grid(paths.len(), edge, |i| load_file(paths[i].as_ref(), &limits))
}

/// [`preview_jpeg`] of pictures already in memory: the thumbnails made while the images were
/// verified ([`crate::Thumbnail`]), so nothing is decoded again.
///
/// # Errors
/// [`PipelineError`] when there is no picture or encoding fails.
pub fn preview_of_thumbnails(thumbs: &[&RgbaImage], edge: u32) -> Result<Vec<u8>, PipelineError> {
    preview_grid(thumbs.len(), edge, |i| {
        Ok(DynamicImage::ImageRgba8(thumbs[i].clone()))
    })
}

/// The preview of `n` pictures that `picture(i)` gives, one at a time.
fn preview_grid(
    n: usize,
    edge: u32,
    picture: impl Fn(usize) -> Result<DynamicImage, PipelineError>,
) -> Result<Vec<u8>, PipelineError> {
    match n {
        0 => Err(PipelineError::EmptySource { width: 0, height: 0 }),
        1 => preview_of(&picture(0)?, edge),
        many => {
            let n = u32::try_from(many).unwrap_or(u32::MAX);
            let cols = (f64::from(n).sqrt().ceil() as u32).max(1);
            let rows = n.div_ceil(cols);
            let cell = (edge / cols).max(16);
            let gap = 2;
            let mut canvas = RgbImage::from_pixel(cols * cell, rows * cell, Rgb([64, 64, 64]));
            for i in 0..many {
                let t = thumbnail(&picture(i)?, cell - 2 * gap)?;
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                let (x, y) = ((i % cols) * cell, (i / cols) * cell);
                paste(
                    &mut canvas,
                    &t,
                    x + (cell - t.width()) / 2,
                    y + (cell - t.height()) / 2,
                );
            }
            Ok(crate::encode(
                &DynamicImage::ImageRgb8(canvas),
                OutputFormat::Jpeg,
                Some(PREVIEW_QUALITY),
            )?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, w: u32, h: u32) -> std::path::PathBuf {
        let img = image::RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, 128])
        });
        let p = dir.join(name);
        img.save(&p).unwrap();
        p
    }

    #[test]
    fn previews_fit_the_edge_and_are_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let big = write(dir.path(), "big.png", 1600, 900);
        let one = preview_jpeg(&[&big], 512).unwrap();
        let p = crate::probe_bytes(&one).unwrap();
        assert_eq!((p.format, p.width, p.height), (OutputFormat::Jpeg, 512, 288));
        let files: Vec<_> = (0..10)
            .map(|i| write(dir.path(), &format!("{i}.png"), 300, 200))
            .collect();
        let sheet = preview_jpeg(&files, 512).unwrap();
        let p = crate::probe_bytes(&sheet).unwrap();
        assert!(p.width <= 512 && p.height <= 512, "{}x{}", p.width, p.height);
        assert!(sheet.len() < 100_000);
        let none: &[&Path] = &[];
        assert!(preview_jpeg(none, 512).is_err());
    }

    #[test]
    fn the_thumbnail_made_while_verifying_previews_like_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let big = write(dir.path(), "big.png", 1600, 900);
        let bytes = std::fs::read(&big).unwrap();
        let report = crate::verify_bytes(&bytes, &crate::Expect::default().with_thumbnail(512));
        let thumb = report.thumbnail.expect("a thumbnail while verifying");
        assert_eq!(thumb.0.dimensions(), (512, 288));
        let from_thumb = preview_of_thumbnails(&[&thumb.0], 512).unwrap();
        let from_file = preview_jpeg(&[&big], 512).unwrap();
        let (a, b) = (
            image::load_from_memory(&from_thumb).unwrap().to_rgb8(),
            image::load_from_memory(&from_file).unwrap().to_rgb8(),
        );
        assert_eq!(a.dimensions(), b.dimensions());
        // Box filter and Lanczos differ a little; the pictures are the same.
        let diff: f64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.as_raw().len() as f64;
        assert!(diff < 12.0, "mean difference {diff}");
        let sheet = preview_of_thumbnails(&[&thumb.0, &thumb.0, &thumb.0], 512).unwrap();
        assert!(crate::probe_bytes(&sheet).unwrap().width <= 512);
    }
}
