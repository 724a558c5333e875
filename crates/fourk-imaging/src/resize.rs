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

/// A reusable resampler: keeps the sharpening scratch image between calls, so a batch does not
/// reallocate a 4K frame per image.
#[derive(Debug, Default)]
pub struct Upscaler {
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
            return resample_bands(&src, dst, filter);
        }
        let mut scratch = match self.scratch.take() {
            Some(s) if same_shape(&s, dst) => s,
            _ => blank_like(&src, dst.width(), dst.height())?,
        };
        resample_bands(&src, &mut scratch, filter)?;
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

/// How many bands of output rows [`upscale`] resamples, each on its own, unless that would make
/// them shorter than [`MIN_BAND_ROWS`]. Bands let the resampling start while a PNG input is
/// still inflating ([`png_upscale`]); every band recomputes the horizontal filter weights
/// (about 0.3 ms at 4K), so a dozen is enough to keep the work after the last row short.
const BANDS: u32 = 12;
const MIN_BAND_ROWS: u32 = 64;

/// A band of output rows, `top..bottom`, and the source rows its filter windows reach,
/// `first..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Band {
    top: u32,
    bottom: u32,
    first: u32,
    end: u32,
}

/// The bands of a resample from `src_height` to `dst_height` rows. They depend on the sizes
/// only, so a picture resampled from memory and the same picture resampled while its rows
/// arrive come out identical.
fn bands(src_height: u32, dst_height: u32) -> Vec<Band> {
    let rows = dst_height.div_ceil(BANDS).max(MIN_BAND_ROWS);
    let scale = f64::from(src_height) / f64::from(dst_height);
    // The widest filter's support (Lanczos3: 3 source rows), stretched when shrinking as
    // fast_image_resize stretches it, and a row more: the window of an output row never
    // reaches past its band's source rows, so no window is clipped except at the picture's
    // own edges, where the whole-picture resample clips it too.
    let reach = 3.0 * scale.max(1.0) + 1.0;
    (0..dst_height)
        .step_by(rows as usize)
        .map(|top| {
            let bottom = (top + rows).min(dst_height);
            let first = ((f64::from(top) + 0.5) * scale - reach).floor().max(0.0);
            let end = ((f64::from(bottom) - 0.5) * scale + reach)
                .ceil()
                .min(f64::from(src_height));
            Band {
                top,
                bottom,
                // Both within 0..=src_height by the clamps above.
                first: first as u32,
                end: end as u32,
            }
        })
        .collect()
}

/// The picture sizes of a banded resample and its pixel layout.
#[derive(Debug, Clone, Copy)]
struct Frames {
    src: (u32, u32),
    dst: (u32, u32),
    alpha: bool,
    filter: Filter,
}

impl Frames {
    fn channels(self) -> usize {
        if self.alpha { 4 } else { 3 }
    }
}

/// Resample one band: `src` holds the source rows `band.first..band.end`, `dst` receives the
/// output rows `band.top..band.bottom`. The crop puts each output row's centre where the
/// whole-picture resample puts it.
fn resample_band(
    resizer: &mut Resizer,
    frames: Frames,
    band: Band,
    src: &[u8],
    dst: &mut [u8],
) -> Result<(), PipelineError> {
    let ((sw, sh), (dw, dh)) = (frames.src, frames.dst);
    let scale = f64::from(sh) / f64::from(dh);
    let view = band.end - band.first;
    let top = f64::from(band.top) * scale - f64::from(band.first);
    // The last band's crop ends at the picture's bottom; rounding must not push it past.
    let height = (f64::from(band.bottom - band.top) * scale).min(f64::from(view) - top);
    let options = ResizeOptions::new()
        .resize_alg(frames.filter.algorithm())
        // The default, spelled out because the absence of a dark fringe depends on it.
        .use_alpha(true)
        .crop(0.0, top, f64::from(sw), height);
    let rows = band.bottom - band.top;
    if frames.alpha {
        let s = TypedImageRef::<U8x4>::from_buffer(sw, view, src)?;
        let mut d = TypedImage::<U8x4>::from_buffer(dw, rows, dst)?;
        resizer.resize_typed(&s, &mut d, &options)?;
    } else {
        let s = TypedImageRef::<U8x3>::from_buffer(sw, view, src)?;
        let mut d = TypedImage::<U8x3>::from_buffer(dw, rows, dst)?;
        resizer.resize_typed(&s, &mut d, &options)?;
    }
    Ok(())
}

/// `dst`'s pixel bytes cut at the bands' output rows.
fn band_outputs<'a>(dst: &'a mut [u8], plan: &[Band], stride: usize) -> Vec<&'a mut [u8]> {
    let mut rest = dst;
    plan.iter()
        .map(|band| {
            let (head, tail) =
                std::mem::take(&mut rest).split_at_mut((band.bottom - band.top) as usize * stride);
            rest = tail;
            head
        })
        .collect()
}

/// Resample the whole 8-bit `src` onto `dst` (same layout) band by band, bands in parallel.
fn resample_bands(src: &DynamicImage, dst: &mut DynamicImage, filter: Filter) -> Result<(), PipelineError> {
    let frames = Frames {
        src: (src.width(), src.height()),
        dst: (dst.width(), dst.height()),
        alpha: src.color().has_alpha(),
        filter,
    };
    let src = src.as_bytes();
    let dst: &mut [u8] = match dst {
        DynamicImage::ImageRgb8(b) => b,
        DynamicImage::ImageRgba8(b) => b,
        // Layouts are checked by the caller; nothing else reaches here.
        other => {
            return Err(PipelineError::DestinationMismatch {
                width: other.width(),
                height: other.height(),
                layout: if frames.alpha { "rgba8" } else { "rgb8" },
                actual_width: other.width(),
                actual_height: other.height(),
                actual_layout: layout_name(other),
            });
        }
    };
    let plan = bands(frames.src.1, frames.dst.1);
    let (src_stride, dst_stride) = (
        frames.src.0 as usize * frames.channels(),
        frames.dst.0 as usize * frames.channels(),
    );
    band_outputs(dst, &plan, dst_stride)
        .into_par_iter()
        .zip(plan.par_iter())
        .try_for_each_init(Resizer::new, |resizer, (out, band)| {
            let rows = &src[band.first as usize * src_stride..band.end as usize * src_stride];
            resample_band(resizer, frames, *band, rows, out)
        })
}

/// An upscale made while its PNG input inflated: [`png_upscale`]'s result.
#[derive(Debug)]
pub struct StreamedUpscale {
    /// The resampled (and sharpened) picture.
    pub image: DynamicImage,
    /// The input's width and height.
    pub source: (u32, u32),
    /// How long resampling went on after the input's last row was inflated: the part of it
    /// that decoding did not hide.
    pub after_decode: std::time::Duration,
}

/// [`upscale`] straight from PNG bytes, the same pixels: rows inflated on one core are
/// resampled band by band on the others as soon as a band's source rows are in, so the resize
/// runs while the PNG decodes and no frame of the input is ever held (a band's rows are).
///
/// `None` whenever this path does not apply or anything goes wrong, and the caller decodes
/// and upscales as usual (which then reports any error in its own words): not an 8-bit RGB or
/// RGBA PNG, interlaced, with a `tRNS` colour key, over the pixel budget, a decoding error, or
/// a bad size or `sharpen`.
#[must_use]
pub fn png_upscale(
    bytes: &[u8],
    width: u32,
    height: u32,
    filter: Filter,
    sharpen: Option<f32>,
) -> Option<StreamedUpscale> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    let crate::load::PngRows {
        mut reader,
        width: sw,
        height: sh,
        channels,
    } = crate::load::png_rows(bytes)?;
    check_target(width, height).ok()?;
    let amount = check_sharpen(sharpen).ok()?;
    let frames = Frames {
        src: (sw, sh),
        dst: (width, height),
        alpha: channels == 4,
        filter,
    };
    let mut image = lazy_blank(frames.alpha, width, height).ok()?;
    let plan = bands(sh, height);
    let src_stride = sw as usize * channels;
    let outs = band_outputs(image_bytes(&mut image)?, &plan, width as usize * channels);
    let failed = AtomicBool::new(false);
    // Source row buffers and resizers handed back by finished bands.
    let spare: Mutex<Vec<(Vec<u8>, Resizer)>> = Mutex::new(Vec::new());
    let take = || {
        spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    };
    let decoded = rayon::scope(|scope| {
        // The rows of the band being read, from its `first`; `next` is the next row to read.
        let (mut rows, mut resizer) = take();
        rows.clear();
        for (i, (band, out)) in plan.iter().zip(outs).enumerate() {
            let have = rows.len();
            rows.resize((band.end - band.first) as usize * src_stride, 0);
            for row in rows[have..].chunks_exact_mut(src_stride) {
                reader.read_row(row)?;
            }
            let mut next = band.end;
            // The next band's buffer starts with the rows both bands need.
            let (mut following, spare_resizer) = take();
            following.clear();
            if let Some(after) = plan.get(i + 1) {
                let from = (after.first.max(band.first) - band.first) as usize * src_stride;
                following.extend_from_slice(&rows[from.min(rows.len())..]);
                // Rows no band needs (never, at the reaches above; kept for safety).
                if next < after.first {
                    let mut skip = vec![0; src_stride];
                    while next < after.first {
                        reader.read_row(&mut skip)?;
                        next += 1;
                    }
                }
            }
            let (band, failed, spare) = (*band, &failed, &spare);
            let mut resizer = std::mem::replace(&mut resizer, spare_resizer);
            let done = std::mem::replace(&mut rows, following);
            scope.spawn(move |_| {
                if resample_band(&mut resizer, frames, band, &done, out).is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                spare
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((done, resizer));
            });
        }
        Some(std::time::Instant::now())
    });
    let decoded = decoded?;
    let after_decode = decoded.elapsed();
    // Through IEND, every remaining chunk's CRC checked.
    reader.finish()?;
    if failed.into_inner() {
        return None;
    }
    if amount > 0.0 {
        let mut sharp = blank(frames.alpha, width, height).ok()?;
        unsharp_into(&image, &mut sharp, amount);
        image = sharp;
    }
    Some(StreamedUpscale {
        image,
        source: (sw, sh),
        after_decode,
    })
}

/// [`blank`] from zeroed memory as the allocator hands it out: a fresh mapping is zero already
/// and is not written here, so its pages are touched first by whoever fills them.
fn lazy_blank(alpha: bool, width: u32, height: u32) -> Result<DynamicImage, PipelineError> {
    check_target(width, height)?;
    let channels = if alpha { 4 } else { 3 };
    let len = buffer_len(width, height, channels)?;
    let buf = bytemuck::allocation::try_zeroed_vec(len)
        .map_err(|()| PipelineError::OutOfMemory { bytes: len as u64 })?;
    let img = if alpha {
        RgbaImage::from_raw(width, height, buf).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(width, height, buf).map(DynamicImage::ImageRgb8)
    };
    img.ok_or(PipelineError::OutOfMemory { bytes: len as u64 })
}

fn image_bytes(image: &mut DynamicImage) -> Option<&mut [u8]> {
    match image {
        DynamicImage::ImageRgb8(b) => Some(b),
        DynamicImage::ImageRgba8(b) => Some(b),
        _ => None,
    }
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

    fn noise(w: u32, h: u32, alpha: bool, seed: u64) -> DynamicImage {
        let mut rng = fastrand::Rng::with_seed(seed);
        // Smooth gradients with noise on top: edges and flats for every filter lobe.
        let mut px = move |x: u32, y: u32| {
            let base = ((x * 7 + y * 3) % 256) as u8;
            [base, rng.u8(..), base.wrapping_mul(3), rng.u8(200..)]
        };
        if alpha {
            DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| Rgba(px(x, y))))
        } else {
            DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
                let [r, g, b, _] = px(x, y);
                Rgb([r, g, b])
            }))
        }
    }

    fn png_of(img: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    /// Sizes with one band, with many, up, down and by uneven factors.
    const SHAPES: [((u32, u32), (u32, u32)); 6] = [
        ((64, 36), (97, 55)),
        ((160, 90), (240, 135)),
        ((120, 300), (181, 1024)),
        ((256, 900), (128, 300)),
        ((90, 1000), (91, 1000)),
        ((333, 777), (500, 1777)),
    ];

    #[test]
    fn bands_cover_every_output_row_and_reach_every_window() {
        for ((_, sh), (_, dh)) in SHAPES {
            let plan = bands(sh, dh);
            assert_eq!(plan.first().unwrap().top, 0);
            assert_eq!(plan.last().unwrap().bottom, dh);
            assert!(plan.windows(2).all(|w| w[0].bottom == w[1].top));
            assert!(plan.windows(2).all(|w| w[1].first <= w[0].end));
            let scale = f64::from(sh) / f64::from(dh);
            let radius = 3.0 * scale.max(1.0);
            for band in &plan {
                for y in band.top..band.bottom {
                    let centre = (f64::from(y) + 0.5) * scale;
                    let lo = (centre - radius).floor().max(0.0) as u32;
                    let hi = ((centre + radius).ceil() as u32).min(sh);
                    assert!(band.first <= lo && hi <= band.end, "{sh}->{dh} row {y}: {band:?}");
                }
            }
        }
    }

    #[test]
    fn banded_resampling_matches_one_whole_picture_pass() {
        // The bands' crops reproduce the whole-picture filter windows. What may differ is the
        // weights' fixed-point scale: fast_image_resize picks it from the largest weight of
        // the call, which near the picture's clipped edges is larger than inside, so a band
        // away from the edges keeps a bit more precision; both passes round to 8 bits, so
        // that shows as a level or two here and there (three after dividing by alpha), never as
        // a seam.
        for ((sw, sh), (dw, dh)) in SHAPES {
            for alpha in [false, true] {
                for filter in [Filter::Lanczos3, Filter::CatmullRom, Filter::Mitchell] {
                    let src = noise(sw, sh, alpha, u64::from(sw * dh));
                    let mut whole = blank_like(&src, dw, dh).unwrap();
                    resample(&mut Resizer::new(), &src, &mut whole, filter, None).unwrap();
                    let mut banded = blank_like(&src, dw, dh).unwrap();
                    resample_bands(&src, &mut banded, filter).unwrap();
                    let pairs = whole.as_bytes().iter().zip(banded.as_bytes());
                    let diffs: Vec<u8> = pairs.map(|(a, b)| a.abs_diff(*b)).collect();
                    let worst = diffs.iter().max().copied().unwrap_or(0);
                    let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
                    let case = format!("{sw}x{sh}->{dw}x{dh} alpha {alpha} {filter:?}");
                    assert!(worst <= 3 && mean < 0.1, "{case}: worst {worst}, mean {mean}");
                }
            }
        }
    }

    #[test]
    fn png_upscale_gives_the_pixels_of_upscale_from_memory() {
        for ((sw, sh), (dw, dh)) in SHAPES {
            for alpha in [false, true] {
                for sharpen in [None, Some(0.7)] {
                    let src = noise(sw, sh, alpha, u64::from(sh * dw));
                    let png = png_of(&src);
                    let streamed = png_upscale(&png, dw, dh, Filter::Lanczos3, sharpen).unwrap();
                    let expected = upscale(&src, dw, dh, Filter::Lanczos3, sharpen).unwrap();
                    assert_eq!(streamed.source, (sw, sh));
                    assert_eq!(layout_name(&streamed.image), layout_name(&expected));
                    assert!(
                        streamed.image.as_bytes() == expected.as_bytes(),
                        "{sw}x{sh}->{dw}x{dh} alpha {alpha} sharpen {sharpen:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn png_upscale_leaves_other_inputs_to_the_usual_path() {
        let rgb = noise(80, 60, false, 1);
        let png = png_of(&rgb);
        let grey = png_of(&DynamicImage::ImageLuma8(rgb.to_luma8()));
        let deep = png_of(&DynamicImage::ImageRgb16(rgb.to_rgb16()));
        let mut jpeg = Vec::new();
        rgb.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        // IDAT damaged inside (its CRC fails) and cut short.
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        let mut damaged = png.clone();
        damaged[idat + 40] ^= 0x55;
        let cut = png[..png.len() - 20].to_vec();
        for (name, bytes) in [
            ("grey", &grey),
            ("16-bit", &deep),
            ("jpeg", &jpeg),
            ("damaged", &damaged),
            ("cut", &cut),
        ] {
            assert!(
                png_upscale(bytes, 120, 90, Filter::Lanczos3, None).is_none(),
                "{name}"
            );
        }
        assert!(png_upscale(&png, 0, 90, Filter::Lanczos3, None).is_none());
        assert!(png_upscale(&png, 120, 90, Filter::Lanczos3, Some(9.0)).is_none());
        assert!(png_upscale(&png, 120, 90, Filter::Lanczos3, None).is_some());
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
