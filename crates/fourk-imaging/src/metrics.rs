//! Image measurements that turn "does this look sharp" into a number.
//!
//! [`detail_energy`] answers the question behind every 4K claim: was this rendered at 4K, or
//! is it a 2K picture upscaled? Interpolation cannot create frequencies the source did not
//! have, so an upscale has markedly less fine-scale energy than a native render of the same
//! scene. Compare crops of the same region, since the score depends on content.

use image::DynamicImage;
use rayon::prelude::*;

use crate::pipeline_error::{PipelineError, try_zeroed};
use crate::resize::as_8bit;

/// Mean absolute 4-neighbour Laplacian of luma (BT.601 weights, 0-255 scale) over `crop`
/// (`(x, y, width, height)`, or the whole image for `None`). The outermost row and column of
/// the region are used only as neighbours.
///
/// A flat region scores 0, fine texture or noise tens. The value is only meaningful relative
/// to another image of the same scene: an upscale typically scores well below a native render.
///
/// # Errors
/// [`PipelineError::EmptySource`], [`PipelineError::CropOutOfBounds`] (also for a crop
/// smaller than 3x3, which has no interior) and [`PipelineError::OutOfMemory`].
pub fn detail_energy(img: &DynamicImage, crop: Option<(u32, u32, u32, u32)>) -> Result<f64, PipelineError> {
    let img = as_8bit(img)?;
    let (iw, ih) = (img.width(), img.height());
    let (x0, y0, w, h) = crop.unwrap_or((0, 0, iw, ih));
    let fits = u64::from(x0) + u64::from(w) <= u64::from(iw) && u64::from(y0) + u64::from(h) <= u64::from(ih);
    if !fits || w < 3 || h < 3 {
        return Err(PipelineError::CropOutOfBounds {
            crop: (x0, y0, w, h),
            width: iw,
            height: ih,
        });
    }
    let ch = if img.color().has_alpha() { 4 } else { 3 };
    let (x0, y0, w, h) = (x0 as usize, y0 as usize, w as usize, h as usize);
    let stride = iw as usize * ch;
    let src = img.as_bytes();

    let mut luma = try_zeroed(w * h)?;
    luma.par_chunks_mut(w).enumerate().for_each(|(ry, out)| {
        let row = &src[(y0 + ry) * stride + x0 * ch..][..w * ch];
        for (l, p) in out.iter_mut().zip(row.chunks_exact(ch)) {
            // Integer BT.601 (77 + 150 + 29 = 256), exact enough for a relative score.
            let v = 77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]);
            *l = ((v + 128) >> 8) as u8;
        }
    });

    let total: u64 = (1..h - 1)
        .into_par_iter()
        .map(|y| {
            let (up, mid, down) = (&luma[(y - 1) * w..], &luma[y * w..], &luma[(y + 1) * w..]);
            (1..w - 1)
                .map(|x| {
                    let around =
                        i32::from(up[x]) + i32::from(down[x]) + i32::from(mid[x - 1]) + i32::from(mid[x + 1]);
                    u64::from((around - 4 * i32::from(mid[x])).unsigned_abs())
                })
                .sum::<u64>()
        })
        .sum();
    Ok(total as f64 / ((w - 2) * (h - 2)) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn texture(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 7919 + y * 104_729) ^ (x * y)) % 251;
            Rgb([v as u8, (v * 3 % 251) as u8, 128])
        }))
    }

    #[test]
    fn flat_scores_zero_and_blur_scores_lower() {
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(32, 32, Rgb([90; 3])));
        assert_eq!(detail_energy(&flat, None).unwrap(), 0.0);
        let sharp = texture(96, 64);
        let blurred = sharp.blur(1.5);
        let (s, b) = (
            detail_energy(&sharp, None).unwrap(),
            detail_energy(&blurred, None).unwrap(),
        );
        assert!(b < s / 3.0, "sharp {s} blurred {b}");
    }

    #[test]
    fn crops_measure_only_their_region() {
        let mut img = RgbImage::from_pixel(64, 64, Rgb([10; 3]));
        for (x, y, p) in texture(32, 64).to_rgb8().enumerate_pixels() {
            img.put_pixel(x + 32, y, *p);
        }
        let img = DynamicImage::ImageRgb8(img);
        assert_eq!(detail_energy(&img, Some((0, 0, 30, 64))).unwrap(), 0.0);
        assert!(detail_energy(&img, Some((34, 0, 30, 64))).unwrap() > 10.0);
    }

    #[test]
    fn crops_outside_the_image_are_errors() {
        let img = texture(20, 20);
        for crop in [(10, 10, 11, 5), (0, 0, 2, 20), (u32::MAX, 0, 5, 5)] {
            let r = detail_energy(&img, Some(crop));
            assert!(
                matches!(r, Err(PipelineError::CropOutOfBounds { .. })),
                "{crop:?}"
            );
        }
    }
}
