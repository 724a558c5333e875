//! Chroma-key background removal for pictures generated on a flat key colour.
//!
//! GPT Image can be asked for a transparent background, but a subject on a flat green (or any
//! flat colour) is often cleaner, and then the key has to come out locally. The steps:
//!
//! 1. **Key**: given, or estimated as the per-channel median of the outer 2% ring, where a
//!    centred subject rarely reaches.
//! 2. **Matte**: alpha from each pixel's distance to the key in YCbCr, chroma at full weight
//!    and luma at half ([`LUMA_WEIGHT`]): shading and soft shadows on the backdrop change luma
//!    far more than chroma, so they still key out, while grey keys still work through luma.
//!    Distances up to `tolerance` are transparent, and alpha ramps to opaque over `feather`.
//! 3. **Unmix and despill**: a partly transparent pixel is a blend `a*F + (1-a)*K`; solving for
//!    `F` removes the backdrop shining through, and any chroma still pointing towards the key
//!    is dropped. Opaque pixels within another `feather` of the key lose key-direction chroma
//!    progressively, which catches the green cast the matte leaves on the subject's rim.
//! 4. **Report** ([`CutoutReport`]) for automated QA: how much is transparent, how soft the
//!    edge is, how much key colour is left on it, and whether the subject touches the frame.
//!
//! Rows are processed in parallel on rayon's pool.

use image::{DynamicImage, RgbaImage};
use rayon::prelude::*;
use serde::Serialize;

use crate::pipeline_error::{PipelineError, buffer_len, try_zeroed};
use crate::resize::as_8bit;

/// A good `tolerance` for generated keys: above their noise and gradient, below any subject.
pub const DEFAULT_TOLERANCE: f32 = 24.0;
/// A good `feather`: wide enough for anti-aliased and slightly blurred edges.
pub const DEFAULT_FEATHER: f32 = 64.0;
/// The weight of squared luma difference in the key distance (so luma counts half as much as
/// chroma per unit).
pub const LUMA_WEIGHT: f32 = 0.25;
/// Largest distance between two 8-bit colours under this metric, rounded up; `tolerance` and
/// `feather` beyond it make no difference and are rejected as mistakes.
pub const MAX_DISTANCE: f32 = 256.0;

/// Keys whose chroma is shorter than this (in 8-bit CbCr units) are treated as grey: there is
/// no hue to despill and no colour cast to score.
const GREY_KEY_CHROMA: f32 = 16.0;
/// Floor on alpha when unmixing, so a nearly invisible pixel does not divide by almost zero.
const MIN_UNMIX_ALPHA: f32 = 0.1;

/// Where the key colour comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeySpec {
    /// The per-channel median of the outer 2% ring of the picture (at least one pixel).
    #[default]
    Auto,
    /// This sRGB colour.
    Color([u8; 3]),
}

/// Numbers for deciding automatically whether a cutout worked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CutoutReport {
    /// The key colour used (estimated for [`KeySpec::Auto`]).
    pub key: [u8; 3],
    /// Fraction of pixels that became fully transparent. Near 0 means the key was wrong or
    /// the backdrop is not flat; near 1 means the subject was keyed out too.
    pub transparent_share: f64,
    /// Fraction of pixels that are partly transparent: the soft edge. Large values mean a
    /// noisy backdrop or a subject close to the key colour.
    pub partial_share: f64,
    /// Mean key-colour cast left along the edge (partly transparent pixels and opaque pixels
    /// next to them), from 0 (none) to 1 (as saturated as the key). Always 0 for a grey key,
    /// which has no hue to leave behind.
    pub halo_score: f64,
    /// Whether any visible pixel lies on the picture's outer row or column, i.e. the subject
    /// is cut by the frame (or the backdrop did not key out there).
    pub touches_border: bool,
}

/// Remove the `key` backdrop from `src`.
///
/// `tolerance` and `feather` are distances in 8-bit YCbCr units (see [`LUMA_WEIGHT`]), each
/// from 0 to [`MAX_DISTANCE`]; [`DEFAULT_TOLERANCE`] and [`DEFAULT_FEATHER`] suit generated
/// pictures. An existing alpha channel in `src` is kept and multiplied with the matte. Fully
/// transparent pixels come out as `[0, 0, 0, 0]`.
///
/// # Errors
/// [`PipelineError::EmptySource`], [`PipelineError::InvalidParameter`] and
/// [`PipelineError::OutOfMemory`].
pub fn cutout(
    src: &DynamicImage,
    key: KeySpec,
    tolerance: f32,
    feather: f32,
) -> Result<(RgbaImage, CutoutReport), PipelineError> {
    let buf = try_zeroed(buffer_len(src.width(), src.height(), 4)?)?;
    let mut dst = RgbaImage::from_raw(src.width(), src.height(), buf).ok_or(PipelineError::OutOfMemory {
        bytes: u64::from(src.width()) * u64::from(src.height()) * 4,
    })?;
    let report = cutout_into(src, &mut dst, key, tolerance, feather)?;
    Ok((dst, report))
}

/// [`cutout`] into a destination the caller owns, of the same size as `src`.
///
/// # Errors
/// As [`cutout`], plus [`PipelineError::DestinationMismatch`].
pub fn cutout_into(
    src: &DynamicImage,
    dst: &mut RgbaImage,
    key: KeySpec,
    tolerance: f32,
    feather: f32,
) -> Result<CutoutReport, PipelineError> {
    for (name, value) in [("tolerance", tolerance), ("feather", feather)] {
        if !(0.0..=MAX_DISTANCE).contains(&value) {
            return Err(PipelineError::InvalidParameter {
                name,
                value,
                expected: "a distance from 0 to 256",
            });
        }
    }
    let src = as_8bit(src)?;
    if dst.dimensions() != (src.width(), src.height()) {
        return Err(PipelineError::DestinationMismatch {
            width: src.width(),
            height: src.height(),
            layout: "rgba8",
            actual_width: dst.width(),
            actual_height: dst.height(),
            actual_layout: "rgba8",
        });
    }
    let (w, h) = (src.width() as usize, src.height() as usize);
    let ch = if src.color().has_alpha() { 4 } else { 3 };
    let pixels = src.as_bytes();
    let key = match key {
        KeySpec::Color(c) => c,
        KeySpec::Auto => border_median(pixels, w, h, ch),
    };
    let keyer = Keyer::new(key, tolerance, feather);

    let (transparent, partial) = dst
        .par_chunks_mut(w * 4)
        .zip(pixels.par_chunks(w * ch))
        .map(|(out, row)| keyer.row(row, ch, out))
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));

    let out: &RgbaImage = dst;
    let (halo_sum, edge_count) = (0..h)
        .into_par_iter()
        .map(|y| keyer.edge_row(out, y))
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));

    let n = (w * h) as f64;
    Ok(CutoutReport {
        key,
        transparent_share: transparent as f64 / n,
        partial_share: partial as f64 / n,
        halo_score: if edge_count == 0 {
            0.0
        } else {
            halo_sum / edge_count as f64
        },
        touches_border: touches_border(out),
    })
}

/// Full-range BT.601 YCbCr with Cb and Cr centred on 0, as used by JPEG.
fn ycbcr(r: u8, g: u8, b: u8) -> [f32; 3] {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        -0.168_736 * r - 0.331_264 * g + 0.5 * b,
        0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ]
}

fn rgb(ycc: [f32; 3]) -> [u8; 3] {
    let [y, cb, cr] = ycc;
    let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [
        q(y + 1.402 * cr),
        q(y - 0.344_136 * cb - 0.714_136 * cr),
        q(y + 1.772 * cb),
    ]
}

struct Keyer {
    key: [f32; 3],
    /// Unit vector of the key's chroma, `None` for a grey key.
    hue: Option<[f32; 2]>,
    hue_len: f32,
    tolerance: f32,
    feather: f32,
}

impl Keyer {
    fn new(key: [u8; 3], tolerance: f32, feather: f32) -> Self {
        let key = ycbcr(key[0], key[1], key[2]);
        let hue_len = key[1].hypot(key[2]);
        let hue = (hue_len >= GREY_KEY_CHROMA).then(|| [key[1] / hue_len, key[2] / hue_len]);
        Self {
            key,
            hue,
            hue_len,
            tolerance,
            feather,
        }
    }

    fn distance(&self, p: [f32; 3]) -> f32 {
        let [dy, db, dr] = [p[0] - self.key[0], p[1] - self.key[1], p[2] - self.key[2]];
        (db * db + dr * dr + LUMA_WEIGHT * dy * dy).sqrt()
    }

    /// Matte, unmix and despill one row; returns (transparent, partial) pixel counts.
    fn row(&self, row: &[u8], ch: usize, out: &mut [u8]) -> (usize, usize) {
        let (mut transparent, mut partial) = (0, 0);
        for (px, o) in row.chunks_exact(ch).zip(out.chunks_exact_mut(4)) {
            let c = ycbcr(px[0], px[1], px[2]);
            let d = self.distance(c);
            let matte = if d <= self.tolerance {
                0.0
            } else if d >= self.tolerance + self.feather {
                1.0
            } else {
                let t = (d - self.tolerance) / self.feather;
                t * t * (3.0 - 2.0 * t)
            };
            let src_alpha = if ch == 4 { f32::from(px[3]) / 255.0 } else { 1.0 };
            let a = (matte * src_alpha * 255.0).round() as u8;
            if a == 0 {
                o.copy_from_slice(&[0; 4]);
                transparent += 1;
                continue;
            }
            let fg = if matte < 1.0 {
                partial += usize::from(a < 255);
                self.unmix(c, matte)
            } else {
                self.despill_opaque(c, d)
            };
            let [r, g, b] = rgb(fg);
            o.copy_from_slice(&[r, g, b, a]);
        }
        (transparent, partial)
    }

    /// Solve `c = a*F + (1-a)*K` for `F`, then drop chroma pointing towards the key.
    fn unmix(&self, c: [f32; 3], a: f32) -> [f32; 3] {
        let a = a.max(MIN_UNMIX_ALPHA);
        let mut f = [0.0; 3];
        for i in 0..3 {
            f[i] = (c[i] - (1.0 - a) * self.key[i]) / a;
        }
        f[0] = f[0].clamp(0.0, 255.0);
        if let Some(hue) = self.hue {
            let along = f[1] * hue[0] + f[2] * hue[1];
            if along > 0.0 {
                f[1] -= along * hue[0];
                f[2] -= along * hue[1];
            }
        }
        f
    }

    /// Opaque pixels whose colour is within another `feather` of the matte's ramp lose
    /// key-direction chroma in proportion to how close they are.
    fn despill_opaque(&self, mut c: [f32; 3], d: f32) -> [f32; 3] {
        let Some(hue) = self.hue else { return c };
        let start = self.tolerance + self.feather;
        if self.feather <= 0.0 || d >= start + self.feather {
            return c;
        }
        let strength = 1.0 - (d - start) / self.feather;
        let along = c[1] * hue[0] + c[2] * hue[1];
        if along > 0.0 {
            c[1] -= strength * along * hue[0];
            c[2] -= strength * along * hue[1];
        }
        c
    }

    /// Sum of key cast and count of edge pixels in row `y`: partly transparent pixels, and
    /// opaque ones with a 4-neighbour that is not.
    fn edge_row(&self, img: &RgbaImage, y: usize) -> (f64, usize) {
        let Some(hue) = self.hue else { return (0.0, 0) };
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw = img.as_raw();
        let alpha = |x: usize, y: usize| raw[(y * w + x) * 4 + 3];
        let (mut sum, mut n) = (0.0, 0);
        for x in 0..w {
            let a = alpha(x, y);
            let edge = match a {
                0 => false,
                255 => {
                    (x > 0 && alpha(x - 1, y) < 255)
                        || (x + 1 < w && alpha(x + 1, y) < 255)
                        || (y > 0 && alpha(x, y - 1) < 255)
                        || (y + 1 < h && alpha(x, y + 1) < 255)
                }
                _ => true,
            };
            if edge {
                let p = &raw[(y * w + x) * 4..][..3];
                let c = ycbcr(p[0], p[1], p[2]);
                let along = c[1] * hue[0] + c[2] * hue[1];
                sum += f64::from((along / self.hue_len).clamp(0.0, 1.0));
                n += 1;
            }
        }
        (sum, n)
    }
}

/// Per-channel median of the outer ring, 2% of the shorter side thick (at least 1 pixel).
fn border_median(pixels: &[u8], w: usize, h: usize, ch: usize) -> [u8; 3] {
    let ring = (w.min(h) * 2).div_ceil(100).max(1);
    let mut hist = [[0u32; 256]; 3];
    let mut count = 0u64;
    for y in 0..h {
        let whole_row = y < ring || y + ring >= h;
        let xs: Box<dyn Iterator<Item = usize>> = if whole_row {
            Box::new(0..w)
        } else {
            Box::new((0..ring.min(w)).chain(w.saturating_sub(ring).max(ring)..w))
        };
        for x in xs {
            let p = &pixels[(y * w + x) * ch..][..3];
            for c in 0..3 {
                hist[c][usize::from(p[c])] += 1;
            }
            count += 1;
        }
    }
    let half = count.div_ceil(2);
    hist.map(|channel| {
        let mut seen = 0u64;
        channel
            .iter()
            .position(|&n| {
                seen += u64::from(n);
                seen >= half
            })
            .map_or(0, |v| v as u8)
    })
}

fn touches_border(img: &RgbaImage) -> bool {
    let (w, h) = img.dimensions();
    let visible = |x: u32, y: u32| img.get_pixel(x, y).0[3] > 0;
    (0..w).any(|x| visible(x, 0) || visible(x, h - 1)) || (0..h).any(|y| visible(0, y) || visible(w - 1, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    const GREEN: [u8; 3] = [0, 177, 64];

    /// A red-orange disc of radius 30 on green, anti-aliased over about one pixel, with a
    /// little deterministic noise on the backdrop.
    fn subject_on_green(w: u32, h: u32) -> DynamicImage {
        let (cx, cy, r) = (w as f32 / 2.0, h as f32 / 2.0, 30.0);
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let d = (x as f32 + 0.5 - cx).hypot(y as f32 + 0.5 - cy);
            let cover = (r + 0.5 - d).clamp(0.0, 1.0);
            let noise = ((x * 31 + y * 17) % 7) as f32 - 3.0;
            let fg = [230.0, 90.0, 40.0];
            let mut px = [0u8; 3];
            for i in 0..3 {
                let bg = f32::from(GREEN[i]) + noise;
                px[i] = (cover * fg[i] + (1.0 - cover) * bg).round().clamp(0.0, 255.0) as u8;
            }
            Rgb(px)
        }))
    }

    #[test]
    fn auto_key_finds_the_backdrop() {
        let (_, report) = cutout(
            &subject_on_green(100, 80),
            KeySpec::Auto,
            DEFAULT_TOLERANCE,
            DEFAULT_FEATHER,
        )
        .unwrap();
        for (got, want) in report.key.iter().zip(GREEN) {
            assert!(got.abs_diff(want) <= 3, "{:?}", report.key);
        }
    }

    #[test]
    fn backdrop_goes_subject_stays_edges_lose_their_green() {
        let (out, report) = cutout(
            &subject_on_green(100, 80),
            KeySpec::Auto,
            DEFAULT_TOLERANCE,
            DEFAULT_FEATHER,
        )
        .unwrap();
        assert_eq!(out.get_pixel(2, 2).0, [0; 4]);
        assert_eq!(out.get_pixel(50, 40).0, [230, 90, 40, 255]);
        let disc = std::f64::consts::PI * 30.0 * 30.0 / (100.0 * 80.0);
        assert!(
            (report.transparent_share - (1.0 - disc)).abs() < 0.03,
            "{report:?}"
        );
        assert!(report.partial_share < 0.05, "{report:?}");
        assert!(report.halo_score < 0.05, "{report:?}");
        assert!(!report.touches_border);
        // No visible pixel is greener than it is red: the cast is gone.
        for p in out.pixels().filter(|p| p.0[3] > 0) {
            assert!(p.0[1] <= p.0[0], "{p:?}");
        }
    }

    #[test]
    fn a_subject_cut_by_the_frame_is_reported() {
        let img = subject_on_green(60, 50);
        let (_, report) = cutout(&img, KeySpec::Color(GREEN), 24.0, 64.0).unwrap();
        assert!(report.touches_border);
    }

    #[test]
    fn a_wrong_key_keys_out_nothing() {
        let (_, report) = cutout(
            &subject_on_green(100, 80),
            KeySpec::Color([0, 0, 255]),
            24.0,
            64.0,
        )
        .unwrap();
        assert!(report.transparent_share < 0.01, "{report:?}");
    }

    #[test]
    fn zero_feather_gives_a_hard_matte() {
        let (out, report) = cutout(&subject_on_green(100, 80), KeySpec::Color(GREEN), 40.0, 0.0).unwrap();
        assert_eq!(report.partial_share, 0.0);
        assert!(out.pixels().all(|p| p.0[3] == 0 || p.0[3] == 255));
    }

    #[test]
    fn bad_parameters_and_destinations_are_errors() {
        let img = subject_on_green(20, 20);
        for (t, f, name) in [
            (-1.0, 1.0, "tolerance"),
            (1.0, f32::NAN, "feather"),
            (300.0, 1.0, "tolerance"),
        ] {
            let r = cutout(&img, KeySpec::Auto, t, f);
            assert!(matches!(r, Err(PipelineError::InvalidParameter { name: n, .. }) if n == name));
        }
        let mut small = RgbaImage::new(10, 10);
        let r = cutout_into(&img, &mut small, KeySpec::Auto, 24.0, 64.0);
        assert!(matches!(r, Err(PipelineError::DestinationMismatch { .. })));
    }

    #[test]
    fn ycbcr_round_trips() {
        for c in [
            [0, 0, 0],
            [255, 255, 255],
            [0, 177, 64],
            [230, 90, 40],
            [12, 200, 250],
        ] {
            assert_eq!(rgb(ycbcr(c[0], c[1], c[2])), c);
        }
    }
}
