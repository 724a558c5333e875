//! Fitting an image into an exact frame without distortion: fill and crop, fit and pad, or
//! crop without scaling.
//!
//! The API produces 1536x1024, 1024x1536 or 1024x1024; a 16:9 4K frame from any of them needs
//! either a crop or padding, and [`Gravity`] says which part of the picture matters.
//! [`FitMode::Cover`] crops in the source and resamples once (fast_image_resize's source
//! crop), which is sharper and cheaper than resampling the whole picture and then cutting.

use fast_image_resize::Resizer;
use image::{DynamicImage, Rgb, Rgba};

use crate::pipeline_error::PipelineError;
use crate::resize::{Filter, as_8bit, blank, check_target, resample};

/// How the source is made to fill the `width` x `height` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FitMode {
    /// Scale until the frame is covered, then crop the overflow at the [`Gravity`]. No
    /// padding, some of the picture is lost.
    #[default]
    Cover,
    /// Scale until the whole picture fits, then pad the rest of the frame. Nothing is lost.
    Contain(Pad),
    /// No scaling: cut a frame-sized window at the [`Gravity`]. Where the source is smaller
    /// than the frame the rest is padded.
    Crop(Pad),
}

/// What fills the frame where the picture does not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pad {
    /// Fully transparent; the result is RGBA8 whenever any padding is added.
    #[default]
    Transparent,
    /// An opaque colour.
    Color([u8; 3]),
}

impl FitMode {
    /// Its name in flags and sidecars: `cover`, `contain` or `crop`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cover => "cover",
            Self::Contain(_) => "contain",
            Self::Crop(_) => "crop",
        }
    }
}

/// Which part of the picture is kept when cropping, and where it sits when padding.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Gravity {
    /// The middle.
    #[default]
    Center,
    /// The top edge, centred horizontally.
    Top,
    /// The bottom edge, centred horizontally.
    Bottom,
    /// The left edge, centred vertically.
    Left,
    /// The right edge, centred vertically.
    Right,
    /// A focal point in the source, as fractions of its width and height (`(0.5, 0.5)` is the
    /// centre): the kept window is centred on it as far as the picture's edges allow. When
    /// padding, the point is the fraction of the spare room that goes before the picture.
    Point(f32, f32),
}

/// Where a window of `win` starts along an axis of length `len`, in source coordinates.
#[derive(Debug, Clone, Copy)]
enum Anchor {
    /// Fraction of the slack (`len - win`) before the window.
    Slack(f64),
    /// Centre the window on this fraction of `len`, clamped so it stays inside.
    Focal(f64),
}

impl Anchor {
    fn origin(self, len: f64, win: f64) -> f64 {
        let slack = len - win;
        match self {
            Self::Slack(f) => f * slack,
            Self::Focal(f) if slack >= 0.0 => (f * len - win / 2.0).clamp(0.0, slack),
            // Window wider than the source (padding): fall back to the slack meaning.
            Self::Focal(f) => f * slack,
        }
    }
}

impl Gravity {
    /// Its name in flags and sidecars: `center`, `top`, `bottom`, `left`, `right` or
    /// `point`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Center => "center",
            Self::Top => "top",
            Self::Bottom => "bottom",
            Self::Left => "left",
            Self::Right => "right",
            Self::Point(..) => "point",
        }
    }

    fn anchors(self) -> Result<(Anchor, Anchor), PipelineError> {
        use Anchor::{Focal, Slack};
        Ok(match self {
            Self::Center => (Slack(0.5), Slack(0.5)),
            Self::Top => (Slack(0.5), Slack(0.0)),
            Self::Bottom => (Slack(0.5), Slack(1.0)),
            Self::Left => (Slack(0.0), Slack(0.5)),
            Self::Right => (Slack(1.0), Slack(0.5)),
            Self::Point(x, y) => {
                for (name, v) in [("gravity x", x), ("gravity y", y)] {
                    if !(0.0..=1.0).contains(&v) {
                        return Err(PipelineError::InvalidParameter {
                            name,
                            value: v,
                            expected: "a fraction from 0 to 1",
                        });
                    }
                }
                (Focal(f64::from(x)), Focal(f64::from(y)))
            }
        })
    }
}

/// Make `src` exactly `width` x `height` without distorting it, resampling with Lanczos3.
///
/// The result is RGBA8 when `src` has alpha or transparent padding was added, and RGB8
/// otherwise.
///
/// # Errors
/// [`PipelineError::InvalidSize`], [`PipelineError::EmptySource`],
/// [`PipelineError::InvalidParameter`] for a [`Gravity::Point`] outside `0..=1`, and
/// [`PipelineError::OutOfMemory`].
pub fn fit(
    src: &DynamicImage,
    width: u32,
    height: u32,
    mode: FitMode,
    gravity: Gravity,
) -> Result<DynamicImage, PipelineError> {
    check_target(width, height)?;
    let src = as_8bit(src)?;
    let (ax, ay) = gravity.anchors()?;
    let (sw, sh) = (f64::from(src.width()), f64::from(src.height()));
    let (tw, th) = (f64::from(width), f64::from(height));
    let alpha = src.color().has_alpha();
    match mode {
        FitMode::Cover => {
            // The largest source window with the frame's aspect ratio.
            let scale = (tw / sw).max(th / sh);
            let (cw, ch) = ((tw / scale).min(sw), (th / scale).min(sh));
            let crop = (ax.origin(sw, cw), ay.origin(sh, ch), cw, ch);
            let mut dst = blank(alpha, width, height)?;
            resample(&mut Resizer::new(), &src, &mut dst, Filter::Lanczos3, Some(crop))?;
            Ok(dst)
        }
        FitMode::Contain(pad) => {
            let scale = (tw / sw).min(th / sh);
            // Rounded, but never zero nor past the frame, whatever the aspect ratio.
            let w = ((sw * scale).round() as u32).clamp(1, width);
            let h = ((sh * scale).round() as u32).clamp(1, height);
            let mut scaled = blank(alpha, w, h)?;
            resample(&mut Resizer::new(), &src, &mut scaled, Filter::Lanczos3, None)?;
            // Origins of the frame relative to the picture, so negative where padded.
            let x = ax.origin(f64::from(w), tw).round() as i64;
            let y = ay.origin(f64::from(h), th).round() as i64;
            compose(&scaled, width, height, x, y, pad)
        }
        FitMode::Crop(pad) => {
            let x = ax.origin(sw, tw).round() as i64;
            let y = ay.origin(sh, th).round() as i64;
            compose(&src, width, height, x, y, pad)
        }
    }
}

/// A `width` x `height` window of `pic` whose top-left corner is at `(x, y)` in the picture's
/// coordinates; whatever falls outside the picture is `pad`.
fn compose(
    pic: &DynamicImage,
    width: u32,
    height: u32,
    x: i64,
    y: i64,
    pad: Pad,
) -> Result<DynamicImage, PipelineError> {
    let covered = x >= 0
        && y >= 0
        && x + i64::from(width) <= i64::from(pic.width())
        && y + i64::from(height) <= i64::from(pic.height());
    if covered {
        // Both are non-negative and within u32 by the check above.
        return Ok(pic.crop_imm(x as u32, y as u32, width, height));
    }
    let alpha = pic.color().has_alpha() || pad == Pad::Transparent;
    let mut out = blank(alpha, width, height)?;
    match (&mut out, pad) {
        (DynamicImage::ImageRgba8(o), Pad::Color([r, g, b])) => {
            o.pixels_mut().for_each(|p| *p = Rgba([r, g, b, 255]));
        }
        (DynamicImage::ImageRgb8(o), Pad::Color(c)) => o.pixels_mut().for_each(|p| *p = Rgb(c)),
        // A zeroed RGBA buffer is already transparent.
        _ => {}
    }
    match (&mut out, pic) {
        (DynamicImage::ImageRgba8(o), DynamicImage::ImageRgba8(p)) => {
            image::imageops::replace(o, p, -x, -y);
        }
        (DynamicImage::ImageRgb8(o), DynamicImage::ImageRgb8(p)) => {
            image::imageops::replace(o, p, -x, -y);
        }
        (DynamicImage::ImageRgba8(o), p) => {
            image::imageops::replace(o, &p.to_rgba8(), -x, -y);
        }
        // `alpha` is false only for an RGB8 picture, handled above.
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{RgbImage, RgbaImage};

    /// Left half red, right half blue; top quarter has green in the blue channel's place.
    fn halves(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let g = if y < h / 4 { 255 } else { 0 };
            if x < w / 2 {
                Rgb([255, g, 0])
            } else {
                Rgb([0, g, 255])
            }
        }))
    }

    #[test]
    fn every_mode_reaches_the_exact_frame() {
        for mode in [
            FitMode::Cover,
            FitMode::Contain(Pad::Transparent),
            FitMode::Contain(Pad::Color([1, 2, 3])),
            FitMode::Crop(Pad::Transparent),
        ] {
            for gravity in [Gravity::Center, Gravity::Top, Gravity::Point(0.9, 0.1)] {
                for (w, h) in [(160, 90), (50, 200), (64, 64)] {
                    let out = fit(&halves(120, 80), w, h, mode, gravity).unwrap();
                    assert_eq!((out.width(), out.height()), (w, h), "{mode:?} {gravity:?}");
                }
            }
        }
    }

    #[test]
    fn cover_keeps_the_side_the_gravity_names() {
        // 2:1 into 1:1 keeps half the width.
        let src = halves(200, 100);
        let left = fit(&src, 50, 50, FitMode::Cover, Gravity::Left)
            .unwrap()
            .to_rgb8();
        let right = fit(&src, 50, 50, FitMode::Cover, Gravity::Right)
            .unwrap()
            .to_rgb8();
        assert!(left.pixels().all(|p| p.0[0] > 200 && p.0[2] < 50));
        assert!(right.pixels().all(|p| p.0[2] > 200 && p.0[0] < 50));
    }

    #[test]
    fn a_focal_point_is_kept_in_view() {
        // A white dot near the right edge must survive a square crop.
        let mut src = RgbImage::new(300, 100);
        src.put_pixel(280, 50, Rgb([255; 3]));
        let out = fit(
            &DynamicImage::ImageRgb8(src),
            100,
            100,
            FitMode::Crop(Pad::Transparent),
            Gravity::Point(280.0 / 300.0, 0.5),
        )
        .unwrap()
        .to_rgb8();
        assert!(out.pixels().any(|p| p.0 == [255; 3]));
    }

    #[test]
    fn contain_pads_with_transparency_or_the_colour() {
        let src = halves(200, 100);
        let clear = fit(
            &src,
            100,
            100,
            FitMode::Contain(Pad::Transparent),
            Gravity::Center,
        )
        .unwrap();
        let DynamicImage::ImageRgba8(clear) = clear else {
            panic!("expected rgba8")
        };
        assert_eq!(clear.get_pixel(50, 5).0[3], 0, "band above the picture");
        assert_eq!(clear.get_pixel(50, 50).0[3], 255, "picture");

        let grey = fit(
            &src,
            100,
            100,
            FitMode::Contain(Pad::Color([9, 9, 9])),
            Gravity::Top,
        )
        .unwrap();
        let DynamicImage::ImageRgb8(grey) = grey else {
            panic!("expected rgb8")
        };
        // Gravity top: the picture sits at the top, the padding is below.
        assert_eq!(grey.get_pixel(50, 95).0, [9, 9, 9]);
        assert_ne!(grey.get_pixel(50, 5).0, [9, 9, 9]);
    }

    #[test]
    fn crop_does_not_scale() {
        let src = halves(120, 80);
        let out = fit(&src, 40, 20, FitMode::Crop(Pad::Transparent), Gravity::Top).unwrap();
        let direct = src.crop_imm(40, 0, 40, 20);
        assert_eq!(out.to_rgb8(), direct.to_rgb8());
    }

    #[test]
    fn crop_larger_than_the_source_pads_around_it() {
        let src = DynamicImage::ImageRgba8(RgbaImage::from_pixel(10, 10, Rgba([5, 6, 7, 255])));
        let out = fit(&src, 30, 30, FitMode::Crop(Pad::Transparent), Gravity::Center)
            .unwrap()
            .to_rgba8();
        assert_eq!(out.get_pixel(15, 15).0, [5, 6, 7, 255]);
        assert_eq!(out.get_pixel(2, 2).0[3], 0);
    }

    #[test]
    fn a_point_outside_the_picture_is_rejected() {
        let r = fit(&halves(10, 10), 5, 5, FitMode::Cover, Gravity::Point(1.5, 0.5));
        assert!(matches!(
            r,
            Err(PipelineError::InvalidParameter {
                name: "gravity x",
                ..
            })
        ));
        let r = fit(
            &halves(10, 10),
            5,
            5,
            FitMode::Cover,
            Gravity::Point(0.5, f32::NAN),
        );
        assert!(matches!(
            r,
            Err(PipelineError::InvalidParameter {
                name: "gravity y",
                ..
            })
        ));
    }
}
