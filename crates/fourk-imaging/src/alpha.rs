//! Alpha-channel pixel loops: whether a picture has transparency, and compositing it onto a
//! colour.

use image::{DynamicImage, RgbImage};
use rayon::prelude::*;

/// Whether any pixel is less than opaque, at any depth (16-bit and float alpha included).
/// RGBA8, the common case, is scanned on every core.
#[must_use]
pub fn has_transparency(img: &DynamicImage) -> bool {
    match img {
        DynamicImage::ImageLumaA8(b) => row_has_transparency(b.as_raw(), 2, 1),
        DynamicImage::ImageRgba8(b) => b.as_raw().par_chunks(4).any(|p| p[3] < 255),
        DynamicImage::ImageLumaA16(b) => b.as_raw().chunks_exact(2).any(|p| p[1] != u16::MAX),
        DynamicImage::ImageRgba16(b) => b.as_raw().chunks_exact(4).any(|p| p[3] != u16::MAX),
        DynamicImage::ImageRgba32F(b) => b.as_raw().chunks_exact(4).any(|p| p[3] < 1.0),
        other if other.color().has_alpha() => row_has_transparency(other.to_rgba8().as_raw(), 4, 1),
        _ => false,
    }
}

/// Whether any pixel of a row of big-endian samples has its alpha (the last sample) below
/// the maximum; the maximum is all 0xFF bytes at either depth.
pub(crate) fn row_has_transparency(row: &[u8], pixel_bytes: usize, sample_bytes: usize) -> bool {
    let alpha_at = pixel_bytes - sample_bytes;
    row.chunks_exact(pixel_bytes)
        .any(|px| px[alpha_at..].iter().any(|&b| b != 0xFF))
}

/// `img` composited onto the opaque `color`, as RGB8 (an opaque picture is returned as it is).
#[must_use]
pub fn flatten(img: &DynamicImage, color: [u8; 3]) -> DynamicImage {
    if !img.color().has_alpha() {
        return img.clone();
    }
    let rgba = img.to_rgba8();
    let mut out = RgbImage::new(img.width(), img.height());
    out.par_chunks_mut(3)
        .zip(rgba.as_raw().par_chunks(4))
        .for_each(|(o, p)| {
            let a = u16::from(p[3]);
            for c in 0..3 {
                #[allow(clippy::cast_possible_truncation)]
                let v = ((u16::from(p[c]) * a + u16::from(color[c]) * (255 - a) + 127) / 255) as u8;
                o[c] = v;
            }
        });
    DynamicImage::ImageRgb8(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    #[test]
    fn transparency_is_found_and_flattened_away() {
        let mut img = RgbaImage::from_pixel(4, 4, Rgba([200, 100, 0, 255]));
        assert!(!has_transparency(&DynamicImage::ImageRgba8(img.clone())));
        img.put_pixel(1, 2, Rgba([0, 0, 0, 0]));
        img.put_pixel(2, 2, Rgba([255, 255, 255, 128]));
        let img = DynamicImage::ImageRgba8(img);
        assert!(has_transparency(&img));
        assert!(has_transparency(&DynamicImage::ImageRgba16(img.to_rgba16())));
        let flat = flatten(&img, [0, 0, 255]);
        assert!(!has_transparency(&flat));
        let flat = flat.to_rgb8();
        assert_eq!(flat.get_pixel(1, 2).0, [0, 0, 255]);
        assert_eq!(flat.get_pixel(2, 2).0, [128, 128, 255]);
        assert_eq!(flat.get_pixel(0, 0).0, [200, 100, 0]);
    }
}
