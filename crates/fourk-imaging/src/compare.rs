//! Side-by-side comparison of two renders of the same scene, with numbers: is the native 4K
//! worth its price over a 2K master upscaled?
//!
//! Both pictures are brought to a common size (the larger one's; the smaller is resampled
//! with Lanczos3, and when the aspect ratios differ it is fitted by cover-and-crop instead of
//! being stretched), then the same rectangle is cut from both at 100%. On that rectangle:
//!
//! - [`crate::detail_energy`] of each, and B's as a fraction of A's: interpolation cannot
//!   make detail, so an upscale scores well below a native render;
//! - PSNR over RGB and SSIM over luma (8x8 windows, the usual constants): how far B is from
//!   A pixel for pixel. With different renders of the same prompt these are low whatever the
//!   quality; they mean most when B is derived from A (or both from one master).

use image::{DynamicImage, Rgb, RgbImage};
use rayon::prelude::*;
use serde::Serialize;

use crate::fit::{FitMode, Gravity, fit};
use crate::metrics::detail_energy;
use crate::pipeline_error::PipelineError;
use crate::resize::{Filter, upscale};
use crate::sheet::{GAP, LABEL_SCALE, Line, draw_text, fit_text, line_height};

/// The default crop edge: a 1024x1024 window from the centre (smaller pictures are used
/// whole).
pub const DEFAULT_CROP: u32 = 1024;
/// Aspect ratios closer than this (relative) count as equal, so a resample instead of a crop.
const SAME_RATIO: f64 = 0.005;

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The picture's own width.
    pub width: u32,
    /// The picture's own height.
    pub height: u32,
    /// How it was brought to the common size: `none`, `resampled` or `cover` (scaled and
    /// cropped because the aspect ratio differed).
    pub scaled: &'static str,
    /// Mean absolute Laplacian of luma on the crop.
    pub detail_energy: f64,
}

/// The numbers behind a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Picture A.
    pub a: Side,
    /// Picture B.
    pub b: Side,
    /// The size both were compared at.
    pub common_width: u32,
    /// The size both were compared at.
    pub common_height: u32,
    /// The rectangle compared, `[x, y, width, height]` at the common size.
    pub crop: [u32; 4],
    /// B's detail energy as a fraction of A's (`null` when A is flat).
    pub detail_ratio: Option<f64>,
    /// PSNR of B against A over RGB, in dB (`null` when identical).
    pub psnr_db: Option<f64>,
    /// Mean SSIM of luma over 8x8 windows, from -1 to 1 (1 is identical).
    pub ssim: f64,
    /// Whether the crops are pixel-identical.
    pub identical: bool,
    /// What was done to make them comparable, in words.
    pub notes: Vec<String>,
}

/// The comparison and the two crops.
#[derive(Debug, Clone)]
pub struct Compared {
    /// The numbers.
    pub report: Comparison,
    /// A's crop.
    pub a: RgbImage,
    /// B's crop.
    pub b: RgbImage,
}

fn ratio(w: u32, h: u32) -> f64 {
    f64::from(w) / f64::from(h)
}

/// Compare `a` and `b` on `crop` (`(x, y, width, height)` at the common size; `None` for a
/// [`DEFAULT_CROP`] square from the centre).
///
/// # Errors
/// [`PipelineError::CropOutOfBounds`] for a crop outside the common size or smaller than 3x3,
/// [`PipelineError::EmptySource`] and [`PipelineError::OutOfMemory`].
pub fn compare(
    a: &DynamicImage,
    b: &DynamicImage,
    crop: Option<(u32, u32, u32, u32)>,
) -> Result<Compared, PipelineError> {
    for img in [a, b] {
        if img.width() == 0 || img.height() == 0 {
            return Err(PipelineError::EmptySource {
                width: img.width(),
                height: img.height(),
            });
        }
    }
    let area = |i: &DynamicImage| u64::from(i.width()) * u64::from(i.height());
    let (cw, ch) = if area(b) > area(a) {
        (b.width(), b.height())
    } else {
        (a.width(), a.height())
    };
    let (x, y, w, h) = crop.unwrap_or_else(|| {
        let (w, h) = (DEFAULT_CROP.min(cw), DEFAULT_CROP.min(ch));
        ((cw - w) / 2, (ch - h) / 2, w, h)
    });
    let fits = u64::from(x) + u64::from(w) <= u64::from(cw) && u64::from(y) + u64::from(h) <= u64::from(ch);
    if !fits || w < 3 || h < 3 {
        return Err(PipelineError::CropOutOfBounds {
            crop: (x, y, w, h),
            width: cw,
            height: ch,
        });
    }
    let mut notes = Vec::new();
    // The crop of one side at the common size. A side already at that size is cropped as it
    // is (no full-frame copy: two 8192x8192 inputs stay within their own frames' memory);
    // another is brought to the common size first.
    let mut bring = |img: &DynamicImage, name: &str| -> Result<(RgbImage, &'static str), PipelineError> {
        if (img.width(), img.height()) == (cw, ch) {
            return Ok((img.crop_imm(x, y, w, h).to_rgb8(), "none"));
        }
        let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
        let same = (ratio(img.width(), img.height()) / ratio(cw, ch) - 1.0).abs() < SAME_RATIO;
        let (out, how) = if same {
            (upscale(&rgb, cw, ch, Filter::Lanczos3, None)?, "resampled")
        } else {
            (fit(&rgb, cw, ch, FitMode::Cover, Gravity::Center)?, "cover")
        };
        drop(rgb);
        notes.push(format!(
            "{name} is {}x{} and was {} to {cw}x{ch} (Lanczos3{}) to compare at the same size",
            img.width(),
            img.height(),
            if same {
                "resampled"
            } else {
                "scaled and centre-cropped"
            },
            if same { "" } else { ", aspect ratios differ" },
        ));
        Ok((out.crop_imm(x, y, w, h).to_rgb8(), how))
    };
    let (crop_a, scaled_a) = bring(a, "A")?;
    let (crop_b, scaled_b) = bring(b, "B")?;
    let (ea, eb) = rayon::join(
        || detail_energy(&DynamicImage::ImageRgb8(crop_a.clone()), None),
        || detail_energy(&DynamicImage::ImageRgb8(crop_b.clone()), None),
    );
    let (ea, eb) = (ea?, eb?);
    let mse = mse(&crop_a, &crop_b);
    let report = Comparison {
        a: Side {
            width: a.width(),
            height: a.height(),
            scaled: scaled_a,
            detail_energy: ea,
        },
        b: Side {
            width: b.width(),
            height: b.height(),
            scaled: scaled_b,
            detail_energy: eb,
        },
        common_width: cw,
        common_height: ch,
        crop: [x, y, w, h],
        detail_ratio: (ea > 0.0).then(|| eb / ea),
        psnr_db: (mse > 0.0).then(|| 10.0 * (255.0 * 255.0 / mse).log10()),
        ssim: ssim(&crop_a, &crop_b),
        identical: mse == 0.0,
        notes,
    };
    Ok(Compared {
        report,
        a: crop_a,
        b: crop_b,
    })
}

/// Mean squared error over every RGB sample.
fn mse(a: &RgbImage, b: &RgbImage) -> f64 {
    let sum: u64 = a
        .as_raw()
        .par_chunks(1 << 16)
        .zip(b.as_raw().par_chunks(1 << 16))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(&p, &q)| {
                    let d = i64::from(p) - i64::from(q);
                    (d * d) as u64
                })
                .sum::<u64>()
        })
        .sum();
    sum as f64 / a.as_raw().len().max(1) as f64
}

fn luma(p: &Rgb<u8>) -> f64 {
    0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2])
}

/// Mean SSIM over non-overlapping 8x8 windows of luma (partial windows at the edges are
/// left out; an image under 8x8 is one window of its own size).
fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
    let (w, h) = a.dimensions();
    let win = 8.min(w).min(h);
    let (nx, ny) = (w / win, h / win);
    let sum: f64 = (0..ny)
        .into_par_iter()
        .map(|wy| {
            (0..nx)
                .map(|wx| {
                    let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
                    for y in wy * win..(wy + 1) * win {
                        for x in wx * win..(wx + 1) * win {
                            let (p, q) = (luma(a.get_pixel(x, y)), luma(b.get_pixel(x, y)));
                            sa += p;
                            sb += q;
                            saa += p * p;
                            sbb += q * q;
                            sab += p * q;
                        }
                    }
                    let n = f64::from(win * win);
                    let (ma, mb) = (sa / n, sb / n);
                    let (va, vb, cov) = (saa / n - ma * ma, sbb / n - mb * mb, sab / n - ma * mb);
                    ((2.0 * ma * mb + C1) * (2.0 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2))
                })
                .sum::<f64>()
        })
        .sum();
    sum / f64::from(nx * ny)
}

/// The two crops next to each other on a dark canvas, each headed by its label lines.
///
/// # Errors
/// [`PipelineError::InvalidSize`] when the canvas would exceed
/// [`crate::MAX_OUTPUT_DIMENSION`], and [`PipelineError::OutOfMemory`].
pub fn side_by_side(
    a: &RgbImage,
    b: &RgbImage,
    label_a: &[Line],
    label_b: &[Line],
) -> Result<RgbImage, PipelineError> {
    let lines = label_a.len().max(label_b.len()) as u32;
    let head = if lines > 0 {
        lines * line_height(LABEL_SCALE) + GAP / 2
    } else {
        0
    };
    let (w, h) = (
        a.width() + b.width() + 3 * GAP,
        a.height().max(b.height()) + head + 2 * GAP,
    );
    let DynamicImage::ImageRgb8(mut canvas) = crate::resize::blank(false, w, h)? else {
        return Err(PipelineError::OutOfMemory {
            bytes: u64::from(w) * u64::from(h) * 3,
        });
    };
    canvas
        .par_chunks_mut(3)
        .for_each(|p| p.copy_from_slice(&crate::sheet::BACKGROUND));
    for (x0, pic, label) in [(GAP, a, label_a), (2 * GAP + a.width(), b, label_b)] {
        for (k, line) in label.iter().enumerate() {
            let text = fit_text(&line.text, pic.width(), LABEL_SCALE);
            draw_text(
                &mut canvas,
                x0,
                GAP + k as u32 * line_height(LABEL_SCALE),
                &text,
                LABEL_SCALE,
                line.color,
            );
        }
        image::imageops::replace(&mut canvas, pic, i64::from(x0), i64::from(GAP + head));
    }
    Ok(canvas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::colors;

    fn texture(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 7919 + y * 104_729) ^ (x * y)) % 251;
            Rgb([v as u8, (v * 3 % 251) as u8, 128])
        }))
    }

    #[test]
    fn identical_pictures_compare_as_identical() {
        let a = texture(64, 48);
        let c = compare(&a, &a, None).unwrap();
        assert!(c.report.identical);
        assert_eq!(c.report.psnr_db, None);
        assert!((c.report.ssim - 1.0).abs() < 1e-9);
        assert_eq!(c.report.detail_ratio, Some(1.0));
        assert_eq!(c.report.crop, [0, 0, 64, 48]);
        assert!(c.report.notes.is_empty());
    }

    #[test]
    fn an_upscale_has_less_detail_than_the_native_picture() {
        let native = texture(400, 224);
        let master = native.resize_exact(200, 112, image::imageops::FilterType::Triangle);
        let c = compare(&native, &master, Some((100, 50, 200, 120))).unwrap();
        let r = &c.report;
        assert_eq!((r.common_width, r.common_height), (400, 224));
        assert_eq!(r.b.scaled, "resampled");
        assert_eq!(r.a.scaled, "none");
        assert!(r.detail_ratio.unwrap() < 0.6, "{r:?}");
        assert!(r.psnr_db.unwrap() < 30.0);
        assert!(r.ssim < 0.9);
        assert!(r.notes[0].contains("B is 200x112"), "{:?}", r.notes);
        assert_eq!(c.a.dimensions(), (200, 120));
    }

    #[test]
    fn another_aspect_ratio_is_cropped_not_stretched() {
        let c = compare(&texture(160, 90), &texture(64, 64), None).unwrap();
        assert_eq!(c.report.b.scaled, "cover");
        assert!(c.report.notes[0].contains("aspect ratios differ"));
    }

    #[test]
    fn crops_outside_are_errors() {
        let r = compare(&texture(50, 50), &texture(50, 50), Some((40, 40, 20, 20)));
        assert!(matches!(r, Err(PipelineError::CropOutOfBounds { .. })));
    }

    #[test]
    fn side_by_side_places_both_crops_under_their_labels() {
        let a = RgbImage::from_pixel(40, 30, Rgb([255, 0, 0]));
        let b = RgbImage::from_pixel(40, 30, Rgb([0, 0, 255]));
        let la = [Line::new("A", colors::TEXT)];
        let out = side_by_side(&a, &b, &la, &la).unwrap();
        let head = line_height(LABEL_SCALE) + GAP / 2;
        assert_eq!(out.dimensions(), (80 + 3 * GAP, 30 + head + 2 * GAP));
        assert_eq!(out.get_pixel(GAP + 5, GAP + head + 5).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(2 * GAP + 45, GAP + head + 5).0, [0, 0, 255]);
    }
}
