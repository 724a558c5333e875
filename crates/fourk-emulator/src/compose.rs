//! Pixel work beyond the procedural render: edits that build on their input images (under an
//! optional mask), and the blurred previews that streams send as partial images.

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView as _, Rgba, RgbaImage};

use crate::render::draw_overlay;

/// The decoded inputs of an edit.
#[derive(Debug)]
pub(crate) struct EditInputs {
    /// The input images; the first is the one edited, the others are references.
    pub(crate) images: Vec<DynamicImage>,
    /// The mask, already checked: a PNG with alpha, the size of the first image.
    pub(crate) mask: Option<DynamicImage>,
    /// SHA-256 (hex) of every input's bytes, so different inputs render differently.
    pub(crate) digest: String,
}

/// `img` scaled to cover `width` x `height` and centre-cropped to it (what "resized/cropped
/// to the output size" means for an input whose ratio differs). An image already that size
/// is copied pixel for pixel.
pub(crate) fn fit_cover(img: &DynamicImage, width: u32, height: u32, filter: FilterType) -> RgbaImage {
    let (w, h) = img.dimensions();
    if (w, h) == (width, height) {
        return img.to_rgba8();
    }
    let scale = (f64::from(width) / f64::from(w.max(1))).max(f64::from(height) / f64::from(h.max(1)));
    // Rounded up so the scaled image is never a pixel short of the target.
    let sw = ((f64::from(w) * scale).ceil() as u32).max(width);
    let sh = ((f64::from(h) * scale).ceil() as u32).max(height);
    let scaled = img.resize_exact(sw, sh, filter);
    scaled
        .crop_imm((sw - width) / 2, (sh - height) / 2, width, height)
        .to_rgba8()
}

/// Share of the procedural layer in an edited pixel: enough to see the edit, little enough
/// that the input stays recognisable.
const LAYER_SHARE: f32 = 0.4;

/// The edited picture: the first input fitted to the layer's size, the procedural `layer`
/// blended in, the other inputs as thumbnails along the top, and the prompt banner and label
/// drawn on top. With a mask, only the pixels whose mask alpha is 0 change; every other
/// pixel is the fitted input's own.
///
/// The result is RGBA (keeping the input's alpha) when `transparent`, otherwise RGB with the
/// input's transparent parts filled from the layer.
pub(crate) fn compose_edit(
    inputs: &EditInputs,
    layer: &DynamicImage,
    prompt: &str,
    transparent: bool,
) -> DynamicImage {
    let (width, height) = layer.dimensions();
    let layer = layer.to_rgb8();
    let base = match inputs.images.first() {
        Some(first) => fit_cover(first, width, height, FilterType::Triangle),
        None => RgbaImage::new(width, height),
    };
    let mut original = RgbaImage::new(width, height);
    let mut edited = RgbaImage::new(width, height);
    for (((b, l), o), e) in base
        .pixels()
        .zip(layer.pixels())
        .zip(original.pixels_mut())
        .zip(edited.pixels_mut())
    {
        let a = f32::from(b[3]) / 255.0;
        let mut flat = [0u8; 3];
        let mut mixed = [0u8; 3];
        for c in 0..3 {
            let f = f32::from(b[c]) * a + f32::from(l[c]) * (1.0 - a);
            flat[c] = (f + 0.5) as u8;
            mixed[c] = (f * (1.0 - LAYER_SHARE) + f32::from(l[c]) * LAYER_SHARE + 0.5) as u8;
        }
        if transparent {
            *o = *b;
            *e = Rgba([mixed[0], mixed[1], mixed[2], b[3]]);
        } else {
            *o = Rgba([flat[0], flat[1], flat[2], 255]);
            *e = Rgba([mixed[0], mixed[1], mixed[2], 255]);
        }
    }
    draw_thumbnails(&mut edited, inputs.images.get(1..).unwrap_or_default());
    let mut edited = DynamicImage::ImageRgba8(edited);
    draw_overlay(&mut edited, prompt);
    let mut out = match edited {
        DynamicImage::ImageRgba8(e) => e,
        other => other.to_rgba8(),
    };
    if let Some(mask) = &inputs.mask {
        // Nearest neighbour: a mask pixel is either editable or not, never half.
        let mask = fit_cover(mask, width, height, FilterType::Nearest);
        for ((px, m), o) in out.pixels_mut().zip(mask.pixels()).zip(original.pixels()) {
            if m[3] != 0 {
                *px = *o;
            }
        }
    }
    if transparent {
        DynamicImage::ImageRgba8(out)
    } else {
        DynamicImage::ImageRgba8(out).to_rgb8().into()
    }
}

/// The reference images, small and framed, in a row along the top-left.
fn draw_thumbnails(canvas: &mut RgbaImage, refs: &[DynamicImage]) {
    if refs.is_empty() {
        return;
    }
    let (w, h) = canvas.dimensions();
    let short = w.min(h);
    let margin = short / 24;
    let gap = (short / 96).max(2);
    let count = u32::try_from(refs.len()).unwrap_or(u32::MAX);
    let room = w.saturating_sub(2 * margin) / count;
    let side = (short / 6).min(room.saturating_sub(gap));
    let border = (side / 40).max(2);
    if side <= 2 * border + 4 {
        return;
    }
    for (i, r) in refs.iter().enumerate() {
        let x0 = margin + u32::try_from(i).unwrap_or(0) * (side + gap);
        let thumb = fit_cover(r, side - 2 * border, side - 2 * border, FilterType::Triangle);
        for y in 0..side {
            for x in 0..side {
                let (cx, cy) = (x0 + x, margin + y);
                if cx >= w || cy >= h {
                    continue;
                }
                let inner = x >= border && y >= border && x < side - border && y < side - border;
                let px = if inner {
                    let p = thumb.get_pixel(x - border, y - border);
                    Rgba([p[0], p[1], p[2], 255])
                } else {
                    Rgba([248, 246, 238, 255])
                };
                canvas.put_pixel(cx, cy, px);
            }
        }
    }
}

/// Partial image `index` of `count` (0-based) for the final picture `img`: downscaled and
/// scaled back up, coarsest first. Each step halves the downscale factor (the last partial
/// is an eighth of the resolution, the one before a sixteenth, ...), so every partial shows
/// more detail than the one before and less than the final image.
pub(crate) fn preview(img: &DynamicImage, index: u8, count: u8) -> DynamicImage {
    let steps_left = u32::from(count.saturating_sub(1).saturating_sub(index));
    let divisor = 8u32 << steps_left.min(4);
    let (w, h) = img.dimensions();
    let small = img.thumbnail_exact((w / divisor).max(1), (h / divisor).max(1));
    small.resize_exact(w, h, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    fn checker(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            if (x / 8 + y / 8) % 2 == 0 {
                image::Rgb([250, 20, 20])
            } else {
                image::Rgb([20, 20, 250])
            }
        }))
    }

    #[test]
    fn cover_keeps_same_size_inputs_and_crops_others() {
        let img = checker(64, 32);
        assert_eq!(fit_cover(&img, 64, 32, FilterType::Triangle), img.to_rgba8());
        let out = fit_cover(&img, 40, 40, FilterType::Triangle);
        assert_eq!(out.dimensions(), (40, 40));
    }

    #[test]
    fn a_mask_limits_the_edit_to_its_transparent_pixels() {
        let base = checker(128, 128);
        let mask = RgbaImage::from_fn(128, 128, |x, _| Rgba([0, 0, 0, if x < 64 { 0 } else { 255 }]));
        let inputs = EditInputs {
            images: vec![base.clone()],
            mask: Some(DynamicImage::ImageRgba8(mask)),
            digest: String::new(),
        };
        let layer = DynamicImage::ImageRgb8(RgbImage::from_pixel(128, 128, image::Rgb([0, 255, 0])));
        let out = compose_edit(&inputs, &layer, "x", false).to_rgb8();
        let base = base.to_rgb8();
        for y in 0..128 {
            for x in 64..128 {
                assert_eq!(
                    out.get_pixel(x, y),
                    base.get_pixel(x, y),
                    "({x},{y}) outside the mask"
                );
            }
        }
        let changed = (0..128)
            .flat_map(|y| (0..64).map(move |x| (x, y)))
            .filter(|&(x, y)| out.get_pixel(x, y) != base.get_pixel(x, y))
            .count();
        assert!(changed > 64 * 128 * 9 / 10, "{changed}");
    }

    #[test]
    fn previews_gain_detail_step_by_step() {
        let img = crate::render::render("detail", 512, 512, "", false);
        let energy = |d: &DynamicImage| {
            let g = d.to_luma8();
            g.as_raw()
                .windows(2)
                .map(|w| u64::from(w[0].abs_diff(w[1])))
                .sum::<u64>()
        };
        let e: Vec<u64> = (0..3).map(|i| energy(&preview(&img, i, 3))).collect();
        assert!(e[0] < e[1] && e[1] < e[2] && e[2] < energy(&img), "{e:?}");
        assert_eq!(preview(&img, 0, 1).dimensions(), (512, 512));
    }
}
