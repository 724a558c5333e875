//! Encoding pixels to PNG, JPEG and WebP with the API's meaning of `output_compression`:
//! 0-100, where 100 (the default) is the best quality. For JPEG and WebP it is the encoder's
//! quality; PNG is always lossless.

use fourk_api::OutputFormat;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ExtendedColorType, ImageEncoder};

use crate::error::ImagingError;

/// How hard the PNG encoder works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PngLevel {
    /// Fastest, larger files (fdeflate's fast mode).
    Fast,
    /// A balance close to zlib level 6.
    #[default]
    Default,
    /// Smallest files, slowest.
    Best,
}

/// Encode `img` as `format`. `compression` follows the API (`None` means 100). JPEG drops
/// alpha; PNG and WebP keep it when the image has it.
///
/// # Errors
/// [`ImagingError::Encode`] when the encoder fails.
pub fn encode(
    img: &DynamicImage,
    format: OutputFormat,
    compression: Option<u8>,
) -> Result<Vec<u8>, ImagingError> {
    encode_with(img, format, compression, PngLevel::Default)
}

/// [`encode`] with a PNG effort level.
///
/// # Errors
/// [`ImagingError::Encode`] when the encoder fails.
pub fn encode_with(
    img: &DynamicImage,
    format: OutputFormat,
    compression: Option<u8>,
    png_level: PngLevel,
) -> Result<Vec<u8>, ImagingError> {
    let quality = compression.unwrap_or(100).min(100);
    let err = |format: &'static str| {
        move |e: image::ImageError| ImagingError::Encode {
            format,
            message: e.to_string(),
        }
    };
    let mut out = Vec::new();
    match format {
        OutputFormat::Png => {
            let (ct, ft) = match png_level {
                PngLevel::Fast => (CompressionType::Fast, FilterType::Adaptive),
                PngLevel::Default => (CompressionType::Default, FilterType::Adaptive),
                PngLevel::Best => (CompressionType::Best, FilterType::Adaptive),
            };
            let enc = PngEncoder::new_with_quality(&mut out, ct, ft);
            let (buf, color) = raw(img);
            enc.write_image(buf, img.width(), img.height(), color)
                .map_err(err("png"))?;
        }
        OutputFormat::Jpeg => {
            let rgb;
            let src: &[u8] = if let DynamicImage::ImageRgb8(b) = img {
                b.as_raw()
            } else {
                rgb = img.to_rgb8();
                rgb.as_raw()
            };
            let enc = JpegEncoder::new_with_quality(&mut out, quality.max(1));
            enc.write_image(src, img.width(), img.height(), ExtendedColorType::Rgb8)
                .map_err(err("jpeg"))?;
        }
        OutputFormat::Webp => {
            let rgba;
            let encoder = match img {
                DynamicImage::ImageRgb8(b) => webp::Encoder::from_rgb(b.as_raw(), img.width(), img.height()),
                DynamicImage::ImageRgba8(b) => {
                    webp::Encoder::from_rgba(b.as_raw(), img.width(), img.height())
                }
                _ => {
                    rgba = img.to_rgba8();
                    webp::Encoder::from_rgba(rgba.as_raw(), img.width(), img.height())
                }
            };
            let mem = if compression.is_none() {
                encoder.encode_lossless()
            } else {
                encoder.encode(f32::from(quality))
            };
            out.extend_from_slice(&mem);
            if out.is_empty() {
                return Err(ImagingError::Encode {
                    format: "webp",
                    message: "libwebp returned no data".into(),
                });
            }
        }
    }
    Ok(out)
}

fn raw(img: &DynamicImage) -> (&[u8], ExtendedColorType) {
    match img {
        DynamicImage::ImageRgba8(b) => (b.as_raw(), ExtendedColorType::Rgba8),
        DynamicImage::ImageLuma8(b) => (b.as_raw(), ExtendedColorType::L8),
        DynamicImage::ImageLumaA8(b) => (b.as_raw(), ExtendedColorType::La8),
        DynamicImage::ImageRgb8(b) => (b.as_raw(), ExtendedColorType::Rgb8),
        // Deeper formats are never produced by fourk's renderers; callers convert first.
        other => (other.as_bytes(), other.color().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, RgbaImage};

    fn sample() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| {
            Rgb([(x * 4) as u8, (y * 5) as u8, 128])
        }))
    }

    #[test]
    fn every_format_round_trips_to_the_same_dimensions() {
        for (fmt, c) in [
            (OutputFormat::Png, None),
            (OutputFormat::Jpeg, Some(80)),
            (OutputFormat::Webp, Some(80)),
            (OutputFormat::Webp, None),
        ] {
            let bytes = encode(&sample(), fmt, c).unwrap();
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!((img.width(), img.height()), (64, 48), "{fmt}");
        }
    }

    #[test]
    fn alpha_survives_png_and_webp() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(32, 32, |x, _| {
            image::Rgba([9, 9, 9, (x * 8) as u8])
        }));
        for fmt in [OutputFormat::Png, OutputFormat::Webp] {
            let back = image::load_from_memory(&encode(&img, fmt, None).unwrap()).unwrap();
            assert!(back.color().has_alpha(), "{fmt}");
        }
    }

    #[test]
    fn lower_compression_means_smaller_jpeg() {
        let hi = encode(&sample(), OutputFormat::Jpeg, Some(95)).unwrap();
        let lo = encode(&sample(), OutputFormat::Jpeg, Some(20)).unwrap();
        assert!(lo.len() < hi.len());
    }
}
