//! Resampling to an exact size with SIMD convolution, alpha-correct, on every core.
//!
//! The API's largest native output is below 4K, so the last step to 3840x2160 is a local
//! upscale. Three things decide its quality:
//!
//! - **Alpha is premultiplied** during the convolution (fast_image_resize's `MulDiv`, on by
//!   default for RGBA and kept on here explicitly). A straight-alpha filter averages the colour
//!   of fully transparent pixels, usually black, into the edge, and a cut-out gets a dark
//!   fringe.
//! - **The filter** ([`Filter`]), Lanczos3 by default as in Pillow and libvips.
//! - **Optional unsharp masking** ([`upscale`]'s `sharpen`), which restores some of the edge
//!   contrast interpolation spreads out. It also works on premultiplied colour, so it cannot
//!   reintroduce the fringe.
//!
//! fast_image_resize splits each pass over rayon's pool, and the sharpening pass runs bands of
//! rows in parallel, so both cores work.

use std::borrow::Cow;

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage, RgbaImage};
use rayon::prelude::*;

use crate::pipeline_error::{PipelineError, buffer_len, try_zeroed};

/// The largest width or height [`upscale`] and [`crate::fit()`] produce. Well above 4K, and the
/// same as the decoding limit, so a typo such as `38400` fails fast instead of allocating
/// gigabytes.
pub const MAX_OUTPUT_DIMENSION: u32 = 16_384;

/// The strongest `sharpen` amount accepted. Beyond it unsharp masking only adds halos.
pub const MAX_SHARPEN: f32 = 4.0;

/// The convolution filter used for resampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Filter {
    /// Windowed sinc over 3 lobes: the sharpest, with faint ringing on hard edges. The
    /// default, as in Pillow and libvips.
    #[default]
    Lanczos3,
    /// Bicubic with B=0, C=0.5: slightly softer than Lanczos3, less ringing.
    CatmullRom,
    /// Bicubic with B=C=1/3: the softest, with no visible ringing; suits flat illustrations.
    Mitchell,
}

impl Filter {
    /// Its name in flags and sidecars: `lanczos3`, `catmull-rom` or `mitchell`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Lanczos3 => "lanczos3",
            Self::CatmullRom => "catmull-rom",
            Self::Mitchell => "mitchell",
        }
    }

    fn algorithm(self) -> ResizeAlg {
        ResizeAlg::Convolution(match self {
            Self::Lanczos3 => FilterType::Lanczos3,
            Self::CatmullRom => FilterType::CatmullRom,
            Self::Mitchell => FilterType::Mitchell,
        })
    }
}

/// Resample `src` to exactly `width` x `height` (up or down; the aspect ratio is not kept, see
/// [`crate::fit()`] for that), then unsharp-mask it when `sharpen` is `Some(amount)`, with
/// `amount` in `0.0..=`[`MAX_SHARPEN`] (0.5 is a moderate choice).
///
/// The result is RGBA8 when `src` has an alpha channel and RGB8 otherwise; deeper formats are
/// reduced to 8 bits first. To reuse buffers across many images, use [`Upscaler`].
///
/// # Errors
/// [`PipelineError::InvalidSize`], [`PipelineError::EmptySource`],
/// [`PipelineError::InvalidParameter`] for a bad `sharpen`, and
/// [`PipelineError::OutOfMemory`].
pub fn upscale(
    src: &DynamicImage,
    width: u32,
    height: u32,
    filter: Filter,
    sharpen: Option<f32>,
) -> Result<DynamicImage, PipelineError> {
    check_target(width, height)?;
    let mut dst = blank_like(src, width, height)?;
    Upscaler::new().resize_into(src, &mut dst, filter, sharpen)?;
    Ok(dst)
}

/// A reusable resampler: keeps fast_image_resize's internal buffers and the sharpening scratch
/// image between calls, so a batch does not reallocate a 4K frame per image.
#[derive(Debug, Default)]
pub struct Upscaler {
    resizer: Resizer,
    scratch: Option<DynamicImage>,
}

impl Upscaler {
    /// A resampler using the best SIMD extensions the CPU has.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// [`upscale`] into a destination the caller owns. Its size is the target size and its
    /// layout must match the source's: `ImageRgba8` when `src` has alpha, else `ImageRgb8`
    /// ([`blank_like`] makes one).
    ///
    /// # Errors
    /// As [`upscale`], plus [`PipelineError::DestinationMismatch`].
    pub fn resize_into(
        &mut self,
        src: &DynamicImage,
        dst: &mut DynamicImage,
        filter: Filter,
        sharpen: Option<f32>,
    ) -> Result<(), PipelineError> {
        let amount = check_sharpen(sharpen)?;
        check_target(dst.width(), dst.height())?;
        let src = as_8bit(src)?;
        check_layout(&src, dst)?;
        if amount == 0.0 {
            return resample(&mut self.resizer, &src, dst, filter, None);
        }
        let mut scratch = match self.scratch.take() {
            Some(s) if same_shape(&s, dst) => s,
            _ => blank_like(&src, dst.width(), dst.height())?,
        };
        resample(&mut self.resizer, &src, &mut scratch, filter, None)?;
        unsharp_into(&scratch, dst, amount);
        self.scratch = Some(scratch);
        Ok(())
    }
}

/// A zeroed image of `width` x `height` in the layout the pipeline produces for `like`:
/// `ImageRgba8` when it has alpha, else `ImageRgb8`.
///
/// # Errors
/// [`PipelineError::InvalidSize`] and [`PipelineError::OutOfMemory`].
pub fn blank_like(like: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, PipelineError> {
    blank(like.color().has_alpha(), width, height)
}

/// A zeroed `ImageRgba8` (with `alpha`) or `ImageRgb8` of `width` x `height`, every page
/// written.
///
/// # Errors
/// As [`blank_like`].
pub fn blank(alpha: bool, width: u32, height: u32) -> Result<DynamicImage, PipelineError> {
    check_target(width, height)?;
    let channels = if alpha { 4 } else { 3 };
    let buf = try_zeroed(buffer_len(width, height, channels)?)?;
    // `from_raw` only fails on a short buffer, which `buffer_len` rules out.
    let img = if alpha {
        RgbaImage::from_raw(width, height, buf).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(width, height, buf).map(DynamicImage::ImageRgb8)
    };
    img.ok_or(PipelineError::OutOfMemory {
        bytes: u64::from(width) * u64::from(height) * u64::from(channels),
    })
}

pub(crate) fn check_target(width: u32, height: u32) -> Result<(), PipelineError> {
    if width == 0 || height == 0 || width > MAX_OUTPUT_DIMENSION || height > MAX_OUTPUT_DIMENSION {
        return Err(PipelineError::InvalidSize {
            width,
            height,
            max: MAX_OUTPUT_DIMENSION,
        });
    }
    Ok(())
}

fn check_sharpen(sharpen: Option<f32>) -> Result<f32, PipelineError> {
    match sharpen {
        None => Ok(0.0),
        Some(a) if (0.0..=MAX_SHARPEN).contains(&a) => Ok(a),
        Some(value) => Err(PipelineError::InvalidParameter {
            name: "sharpen",
            value,
            expected: "a number from 0 to 4",
        }),
    }
}

/// `src` as RGB8 or RGBA8, converting only when it is something else (grey, 16-bit, float).
pub(crate) fn as_8bit(src: &DynamicImage) -> Result<Cow<'_, DynamicImage>, PipelineError> {
    if src.width() == 0 || src.height() == 0 {
        return Err(PipelineError::EmptySource {
            width: src.width(),
            height: src.height(),
        });
    }
    Ok(match src {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => Cow::Borrowed(src),
        other if other.color().has_alpha() => Cow::Owned(DynamicImage::ImageRgba8(other.to_rgba8())),
        other => Cow::Owned(DynamicImage::ImageRgb8(other.to_rgb8())),
    })
}

pub(crate) fn layout_name(img: &DynamicImage) -> &'static str {
    match img {
        DynamicImage::ImageRgb8(_) => "rgb8",
        DynamicImage::ImageRgba8(_) => "rgba8",
        _ => "other",
    }
}

fn same_shape(a: &DynamicImage, b: &DynamicImage) -> bool {
    (a.width(), a.height(), layout_name(a)) == (b.width(), b.height(), layout_name(b))
}

fn check_layout(src: &DynamicImage, dst: &DynamicImage) -> Result<(), PipelineError> {
    let want = if src.color().has_alpha() { "rgba8" } else { "rgb8" };
    let got = layout_name(dst);
    if want != got {
        return Err(PipelineError::DestinationMismatch {
            width: dst.width(),
            height: dst.height(),
            layout: want,
            actual_width: dst.width(),
            actual_height: dst.height(),
            actual_layout: got,
        });
    }
    Ok(())
}

/// Resample the 8-bit `src` (optionally only the `crop` rectangle of it, in source pixels with
/// fractional edges) onto all of `dst`, which has the same layout.
pub(crate) fn resample(
    resizer: &mut Resizer,
    src: &DynamicImage,
    dst: &mut DynamicImage,
    filter: Filter,
    crop: Option<(f64, f64, f64, f64)>,
) -> Result<(), PipelineError> {
    let mut options = ResizeOptions::new()
        .resize_alg(filter.algorithm())
        // The default, spelled out because the absence of a dark fringe depends on it.
        .use_alpha(true);
    if let Some((left, top, width, height)) = crop {
        options = options.crop(left, top, width, height);
    }
    // The typed entry point, for the two layouts fourk resamples: the untyped `resize`
    // instantiates the SIMD kernels of all thirteen pixel types, which multiplied this
    // crate's build time for code that never runs.
    let (sw, sh, dw, dh) = (src.width(), src.height(), dst.width(), dst.height());
    match (src, dst) {
        (DynamicImage::ImageRgba8(s), DynamicImage::ImageRgba8(d)) => {
            let s = TypedImageRef::<U8x4>::from_buffer(sw, sh, s.as_raw())?;
            let mut d = TypedImage::<U8x4>::from_buffer(dw, dh, d)?;
            resizer.resize_typed(&s, &mut d, &options)?;
        }
        (DynamicImage::ImageRgb8(s), DynamicImage::ImageRgb8(d)) => {
            let s = TypedImageRef::<U8x3>::from_buffer(sw, sh, s.as_raw())?;
            let mut d = TypedImage::<U8x3>::from_buffer(dw, dh, d)?;
            resizer.resize_typed(&s, &mut d, &options)?;
        }
        (_, d) => {
            return Err(PipelineError::DestinationMismatch {
                width: dw,
                height: dh,
                layout: if src.color().has_alpha() { "rgba8" } else { "rgb8" },
                actual_width: dw,
                actual_height: dh,
                actual_layout: layout_name(d),
            });
        }
    }
    Ok(())
}

/// Gaussian sigma of the unsharp mask, in output pixels. About the width of the blur a 1.5x
/// to 2x Lanczos upscale leaves on an edge.
const SHARPEN_SIGMA: f32 = 1.0;
/// Kernel radius: 3 sigma holds 99.7% of the weight.
const SHARPEN_RADIUS: usize = 3;
/// Rows per parallel band. Each band blurs its rows plus a margin of `SHARPEN_RADIUS` rows on
/// either side into a private buffer: small bands balance two cores well, large bands waste
/// less on margins; at 32 rows the margin is a sixth.
const BAND_ROWS: usize = 32;

fn kernel() -> [f32; 2 * SHARPEN_RADIUS + 1] {
    let mut k = [0.0f32; 2 * SHARPEN_RADIUS + 1];
    for (i, w) in k.iter_mut().enumerate() {
        let d = i as f32 - SHARPEN_RADIUS as f32;
        *w = (-d * d / (2.0 * SHARPEN_SIGMA * SHARPEN_SIGMA)).exp();
    }
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|w| *w /= sum);
    k
}

/// `dst = src + amount * (src - gaussian(src))` on colour channels; alpha is copied. For RGBA
/// the blur is of premultiplied colour, divided by the blurred alpha, so the colour of
/// transparent pixels has no weight (the same reason the resize premultiplies).
///
/// Both passes work on whole rows as `a += w * b` over slices, which the compiler vectorises;
/// a per-pixel loop over taps was about 15x slower than the resize itself.
fn unsharp_into(src: &DynamicImage, dst: &mut DynamicImage, amount: f32) {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let ch = if src.color().has_alpha() { 4 } else { 3 };
    let src = src.as_bytes();
    let dst: &mut [u8] = match dst {
        DynamicImage::ImageRgb8(b) => b,
        DynamicImage::ImageRgba8(b) => b,
        // Layouts are checked by the caller; nothing else reaches here.
        _ => return,
    };
    let k = kernel();
    let stride = w * ch;
    dst.par_chunks_mut(BAND_ROWS * stride).enumerate().for_each_init(
        || (Vec::new(), Vec::new(), vec![0.0f32; stride]),
        |(hbuf, padded, blurred): &mut (Vec<f32>, Vec<f32>, Vec<f32>), (band, out)| {
            let y0 = band * BAND_ROWS;
            let rows = out.len() / stride;
            let first = y0.saturating_sub(SHARPEN_RADIUS);
            let last = (y0 + rows + SHARPEN_RADIUS).min(h);
            hbuf.clear();
            hbuf.resize((last - first) * stride, 0.0);
            for (sy, hrow) in (first..last).zip(hbuf.chunks_exact_mut(stride)) {
                blur_row(&src[sy * stride..][..stride], hrow, padded, ch, &k);
            }
            for (ry, orow) in out.chunks_exact_mut(stride).enumerate() {
                let y = y0 + ry;
                blurred.iter_mut().for_each(|b| *b = 0.0);
                for (i, &wk) in k.iter().enumerate() {
                    let sy = (y + i).saturating_sub(SHARPEN_RADIUS).min(h - 1);
                    let hrow = &hbuf[(sy - first) * stride..][..stride];
                    blurred.iter_mut().zip(hrow).for_each(|(b, &v)| *b += wk * v);
                }
                let srow = &src[y * stride..][..stride];
                let pixels = srow.chunks_exact(ch).zip(blurred.chunks_exact(ch));
                for ((px, b), o) in pixels.zip(orow.chunks_exact_mut(ch)) {
                    let unpremultiply = if ch == 4 {
                        o[3] = px[3];
                        if b[3] <= f32::EPSILON {
                            // No opaque neighbour at all: nothing to sharpen against.
                            o[..3].copy_from_slice(&px[..3]);
                            continue;
                        }
                        255.0 / b[3]
                    } else {
                        1.0
                    };
                    for c in 0..3 {
                        let v = f32::from(px[c]);
                        o[c] = (v + amount * (v - b[c] * unpremultiply))
                            .round()
                            .clamp(0.0, 255.0) as u8;
                    }
                }
            }
        },
    );
}

/// Horizontal pass of the separable Gaussian, edge pixels repeated. RGBA rows come out
/// premultiplied (colour scaled by alpha / 255) with alpha in the fourth slot. `padded` is
/// scratch: the row as f32 with `SHARPEN_RADIUS` repeated pixels on each side, so the taps
/// need no bounds logic.
fn blur_row(src: &[u8], out: &mut [f32], padded: &mut Vec<f32>, ch: usize, k: &[f32]) {
    let w = src.len() / ch;
    padded.clear();
    padded.reserve((w + 2 * SHARPEN_RADIUS) * ch);
    let push = |padded: &mut Vec<f32>, p: &[u8]| {
        if ch == 4 {
            let a = f32::from(p[3]) / 255.0;
            padded.extend_from_slice(&[
                f32::from(p[0]) * a,
                f32::from(p[1]) * a,
                f32::from(p[2]) * a,
                f32::from(p[3]),
            ]);
        } else {
            padded.extend(p.iter().map(|&v| f32::from(v)));
        }
    };
    let (head, tail) = (&src[..ch], &src[(w - 1) * ch..]);
    (0..SHARPEN_RADIUS).for_each(|_| push(padded, head));
    src.chunks_exact(ch).for_each(|p| push(padded, p));
    (0..SHARPEN_RADIUS).for_each(|_| push(padded, tail));
    out.iter_mut().for_each(|v| *v = 0.0);
    for (i, &wk) in k.iter().enumerate() {
        let taps = &padded[i * ch..][..w * ch];
        out.iter_mut().zip(taps).for_each(|(o, &v)| *o += wk * v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba};

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 90])
        }))
    }

    #[test]
    fn reaches_the_exact_target_for_every_filter() {
        for filter in [Filter::Lanczos3, Filter::CatmullRom, Filter::Mitchell] {
            for sharpen in [None, Some(0.6)] {
                let out = upscale(&gradient(64, 36), 97, 55, filter, sharpen).unwrap();
                assert_eq!((out.width(), out.height()), (97, 55), "{filter:?}");
                assert!(matches!(out, DynamicImage::ImageRgb8(_)));
            }
        }
    }

    #[test]
    fn zero_and_oversized_targets_are_parameter_errors() {
        for (w, h) in [(0, 10), (10, 0), (MAX_OUTPUT_DIMENSION + 1, 10)] {
            let r = upscale(&gradient(8, 8), w, h, Filter::default(), None);
            assert!(matches!(r, Err(PipelineError::InvalidSize { .. })), "{w}x{h}");
        }
    }

    #[test]
    fn bad_sharpen_amounts_are_rejected() {
        for bad in [-0.1, MAX_SHARPEN + 0.1, f32::NAN, f32::INFINITY] {
            let r = upscale(&gradient(8, 8), 16, 16, Filter::default(), Some(bad));
            assert!(
                matches!(r, Err(PipelineError::InvalidParameter { name: "sharpen", .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_flat_image_stays_flat_even_when_sharpened() {
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(20, 20, Rgb([40, 120, 200])));
        let out = upscale(&flat, 37, 29, Filter::Lanczos3, Some(2.0)).unwrap();
        assert!(out.to_rgb8().pixels().all(|p| p.0 == [40, 120, 200]));
    }

    #[test]
    fn sharpening_raises_edge_contrast() {
        let edge = DynamicImage::ImageRgb8(RgbImage::from_fn(32, 8, |x, _| {
            if x < 16 { Rgb([60; 3]) } else { Rgb([190; 3]) }
        }));
        let soft = upscale(&edge, 64, 16, Filter::Mitchell, None).unwrap().to_rgb8();
        let sharp = upscale(&edge, 64, 16, Filter::Mitchell, Some(1.0))
            .unwrap()
            .to_rgb8();
        let swing = |img: &RgbImage| {
            let row: Vec<i32> = (0..64).map(|x| i32::from(img.get_pixel(x, 8).0[0])).collect();
            row.iter().max().unwrap() - row.iter().min().unwrap()
        };
        assert!(swing(&sharp) > swing(&soft));
    }

    #[test]
    fn destination_layout_must_match() {
        let mut dst = DynamicImage::ImageRgba8(RgbaImage::new(16, 16));
        let r = Upscaler::new().resize_into(&gradient(8, 8), &mut dst, Filter::default(), None);
        assert!(matches!(
            r,
            Err(PipelineError::DestinationMismatch {
                layout: "rgb8",
                actual_layout: "rgba8",
                ..
            })
        ));
    }

    #[test]
    fn an_upscaler_reuses_its_buffers_across_sizes() {
        let mut up = Upscaler::new();
        for (w, h) in [(40, 30), (40, 30), (50, 20)] {
            let mut dst = blank_like(&gradient(1, 1), w, h).unwrap();
            up.resize_into(&gradient(20, 10), &mut dst, Filter::CatmullRom, Some(0.5))
                .unwrap();
            assert_eq!((dst.width(), dst.height()), (w, h));
        }
    }

    #[test]
    fn grey_sources_come_out_as_rgb8() {
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(10, 10, image::Luma([77])));
        let out = upscale(&grey, 20, 20, Filter::default(), None).unwrap();
        assert_eq!(out.to_rgb8().get_pixel(10, 10).0, [77; 3]);
    }

    #[test]
    fn transparent_pixels_colour_does_not_leak_when_sharpening() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(24, 24, |x, y| {
            if (8..16).contains(&x) && (8..16).contains(&y) {
                Rgba([255, 255, 255, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        }));
        let out = upscale(&img, 48, 48, Filter::Lanczos3, Some(1.0))
            .unwrap()
            .to_rgba8();
        for p in out.pixels().filter(|p| p.0[3] > 16) {
            assert!(p.0[..3].iter().all(|&c| c >= 240), "{p:?}");
        }
    }
}
