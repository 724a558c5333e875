//! Encoding for delivery: the file with its metadata, and as much of its verification as can
//! be done while it is encoded (see [`encode_verified`]).
//!
//! Apart from `encode` and `verify` so that neither needs the other: this module drives both.

use std::sync::mpsc;

use fourk_api::OutputFormat;
use image::DynamicImage;

use crate::encode::{
    Deflater, EncodeOptions, ExtraChunk, encode_error, encode_png, encode_with_options, png_pixels,
};
use crate::error::ImagingError;
use crate::metadata::{MetadataReport, Prepared};
use crate::verify::{DecodedPieces, Expect, verify_png_arriving};

/// An image encoded for delivery: the file's bytes with its metadata written in, what of it
/// the verification's decoder has already decoded, and what happened to the metadata.
#[derive(Debug)]
pub struct EncodedFile {
    /// The finished file.
    pub bytes: Vec<u8>,
    /// For [`crate::save_bytes_verified_decoded`].
    pub decoded: DecodedPieces,
    /// Which metadata was written and which dropped.
    pub metadata: MetadataReport,
}

/// Encode `img` as `format` with `metadata` (prepared for `format`) written in, ready to be
/// saved with [`crate::save_bytes_verified_decoded`] for `expect`. An 8-bit PNG is verified
/// while it is encoded (a thread decodes it as it is written), so the save only hashes it;
/// other files get their metadata inserted after encoding and are decoded when saved.
///
/// # Errors
/// [`ImagingError::Encode`] when the encoder fails, the image is too large for the format,
/// `metadata` was prepared for another format, or a block does not fit its container.
pub fn encode_verified(
    img: &DynamicImage,
    format: OutputFormat,
    compression: Option<u8>,
    options: &EncodeOptions,
    metadata: Prepared<'_>,
    expect: &Expect,
) -> Result<EncodedFile, ImagingError> {
    if metadata.format() != format {
        return Err(encode_error(
            format.as_str(),
            format!("metadata was prepared for {}", metadata.format()),
        ));
    }
    if format == OutputFormat::Png && png_pixels(img).is_some() {
        let (bytes, decoded) = encode_png_verified(img, options, &metadata.png_chunks(), expect)?;
        return Ok(EncodedFile {
            bytes,
            decoded,
            metadata: metadata.into_report(),
        });
    }
    let bytes = encode_with_options(img, format, compression, options)?;
    let (bytes, report) = metadata.insert(bytes)?;
    Ok(EncodedFile {
        bytes,
        decoded: DecodedPieces::default(),
        metadata: report,
    })
}

/// Encode `img` as a PNG and verify it while it is encoded: a second thread decodes the bytes
/// as the encoder writes them, with the decoder, limits and scan that [`crate::verify_bytes`]
/// uses for `expect`, and hashes them. `chunks` (text and provenance from
/// [`crate::metadata::Prepared`]) go before the image data, where
/// [`crate::metadata::embed`] would put them, so the bytes decoded are the finished file.
///
/// Returns the PNG and the record to pass to [`crate::save_bytes_verified_decoded`], which
/// then only hashes the file to confirm it is the one decoded. The record is empty (and the
/// file is verified in full when saved) when a row failed to decode. Only for frames the
/// parallel encoder writes ([`png_pixels`]).
///
/// # Errors
/// [`ImagingError::Encode`] when the encoder fails or a chunk is too large.
fn encode_png_verified(
    img: &DynamicImage,
    options: &EncodeOptions,
    chunks: &[ExtraChunk<'_>],
    expect: &Expect,
) -> Result<(Vec<u8>, DecodedPieces), ImagingError> {
    let (tap, arriving) = mpsc::channel();
    std::thread::scope(|s| {
        let verifier = s.spawn(|| verify_png_arriving(arriving, expect));
        // The encoder owns the sending end: the file ends for the verifier when it returns,
        // whether it finished or failed.
        let png = encode_png(img, Deflater::of(options), chunks, Some(tap));
        let decoded = verifier
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((png?, decoded))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::PngLevel;
    use crate::encode::tests::{photo, sample};
    use image::RgbaImage;

    /// The frames and settings a PNG is verified while encoded with: every colour type the
    /// parallel encoder writes, both deflaters, one core and two, and a frame big enough for
    /// several chunks of rows and several IDAT chunks.
    fn verified_png_cases() -> Vec<(DynamicImage, EncodeOptions, usize)> {
        let big = photo(1200, 900);
        let rgba = RgbaImage::from_fn(700, 500, |x, y| {
            let p = big.get_pixel(x, y);
            image::Rgba([p[0], p[1], p[2], if x < 20 && y < 10 { 0 } else { 255 }])
        });
        let frames = [
            DynamicImage::ImageRgb8(big.clone()),
            DynamicImage::ImageRgba8(rgba),
            DynamicImage::ImageRgb8(big).grayscale(),
            sample(),
        ];
        let mut cases = Vec::new();
        for img in frames {
            for options in [
                EncodeOptions::default(),
                EncodeOptions::default().with_png_level(PngLevel::Fast),
            ] {
                for threads in [1, 2] {
                    cases.push((img.clone(), options, threads));
                }
            }
        }
        cases
    }

    #[test]
    fn a_png_verified_while_encoded_is_the_file_encode_and_embed_write() {
        let text = [("prompt".to_owned(), "a lighthouse at dusk".to_owned())];
        let xmp = crate::Provenance::new(
            crate::MetaKind::Xmp,
            OutputFormat::Png,
            b"<x:xmpmeta>fourk</x:xmpmeta>".to_vec(),
        );
        let provenance = [xmp];
        for (img, options, threads) in verified_png_cases() {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let expect = Expect {
                width: Some(img.width()),
                height: Some(img.height()),
                format: Some(OutputFormat::Png),
                alpha: Some(crate::has_transparency(&img)),
                thumbnail: None,
            };
            let prepared = || crate::metadata::prepare(OutputFormat::Png, &provenance, &text).unwrap();
            let file = pool
                .install(|| encode_verified(&img, OutputFormat::Png, None, &options, prepared(), &expect))
                .unwrap();
            let plain = pool
                .install(|| encode_with_options(&img, OutputFormat::Png, None, &options))
                .unwrap();
            let (embedded, report) = prepared().insert(plain).unwrap();
            let case = format!("{:?} {options:?} on {threads} cores", img.color());
            assert!(file.bytes == embedded, "{case}: not the bytes of encode + embed");
            assert_eq!(file.metadata, report, "{case}");
            assert_eq!(
                file.decoded.len(),
                1,
                "{case}: the PNG was decoded as it was written"
            );
            // The record stands in for the decode: the report is the full verification's.
            let full = crate::verify_bytes(&file.bytes, &expect);
            assert!(full.ok, "{case}: {full:?}");
            assert_eq!(
                crate::verify_bytes_decoded(&file.bytes, &expect, &file.decoded),
                full,
                "{case}"
            );
        }
    }

    #[test]
    fn a_record_of_a_streamed_decode_covers_only_its_own_bytes_and_scan() {
        let img = DynamicImage::ImageRgb8(photo(900, 700));
        let expect = Expect::default().with_format(OutputFormat::Png).with_alpha(false);
        let prepared = crate::metadata::prepare(OutputFormat::Png, &[], &[]).unwrap();
        let file = encode_verified(
            &img,
            OutputFormat::Png,
            None,
            &EncodeOptions::default(),
            prepared,
            &expect,
        )
        .unwrap();
        assert_eq!(file.decoded.len(), 1);
        // One byte changed in the image data: decoded again, and found broken.
        let mut broken = file.bytes.clone();
        let mid = broken.len() / 2;
        broken[mid] ^= 0x55;
        let report = crate::verify_bytes_decoded(&broken, &expect, &file.decoded);
        assert!(!report.ok && !report.intact, "{report:?}");
        assert_eq!(report, crate::verify_bytes(&broken, &expect));
        // Asked for a thumbnail the streamed decode did not make: decoded again, with it.
        let with_thumb = expect.with_thumbnail(64);
        let report = crate::verify_bytes_decoded(&file.bytes, &with_thumb, &file.decoded);
        assert!(report.ok && report.thumbnail.is_some(), "{report:?}");
        assert_eq!(report, crate::verify_bytes(&file.bytes, &with_thumb));
    }

    #[test]
    fn sixteen_bit_and_other_formats_are_encoded_then_verified_when_saved() {
        let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(40, 30, |x, y| {
            image::Rgb([x as u16 * 1000, y as u16 * 2000, 7])
        }));
        for (img, format, q) in [
            (deep, OutputFormat::Png, None),
            (sample(), OutputFormat::Jpeg, Some(90)),
            (sample(), OutputFormat::Webp, Some(80)),
        ] {
            let prepared = crate::metadata::prepare(format, &[], &[]).unwrap();
            let expect = Expect::default().with_format(format);
            let file =
                encode_verified(&img, format, q, &EncodeOptions::default(), prepared, &expect).unwrap();
            assert!(file.decoded.is_empty(), "{format}");
            assert!(crate::verify_bytes_decoded(&file.bytes, &expect, &file.decoded).ok);
        }
        let for_jpeg = crate::metadata::prepare(OutputFormat::Jpeg, &[], &[]).unwrap();
        let err = encode_verified(
            &sample(),
            OutputFormat::Png,
            None,
            &EncodeOptions::default(),
            for_jpeg,
            &Expect::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("prepared for jpeg"), "{err}");
    }
}
