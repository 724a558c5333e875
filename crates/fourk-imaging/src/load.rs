//! Decoding an untrusted file or buffer into pixels for the local pipeline.
//!
//! Everything the pipeline reads may come from anywhere (a user's folder, an API response
//! that was cut off), so decoding runs under explicit [`image::Limits`] and every failure is an
//! error value. PNG and WebP go through `image` with those limits, except 8-bit RGB and RGBA
//! PNGs, whose rows are read by [`crate::png_idat`] (the same pixels, sooner). JPEG goes through
//! zune-jpeg in strict mode, because `image` runs it leniently and fills a truncated scan with
//! grey instead of failing.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, RgbImage};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::error::ImagingError;
use crate::pipeline_error::{PipelineError, try_zeroed};

/// The largest width or height [`load_limits`] lets through. Four times the largest edge the
/// API produces, so any real input passes and a hostile header cannot ask for a huge canvas.
pub const LOAD_MAX_DIMENSION: u32 = 16_384;

/// The most memory [`load_limits`] lets one decode allocate, whatever the pixel budget: an
/// RGBA8 frame at [`LOAD_MAX_DIMENSION`] squared (1 GiB).
pub const LOAD_MAX_ALLOC: u64 = LOAD_MAX_DIMENSION as u64 * LOAD_MAX_DIMENSION as u64 * 4;

/// The limits [`load_bytes`] and [`load_file`] are usually called with: at most
/// [`LOAD_MAX_DIMENSION`] on each side, and the decoder's allocations held to the pixel
/// budget's frame (see [`crate::budget`]; the header is checked against it before that).
#[must_use]
pub fn load_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(LOAD_MAX_DIMENSION);
    limits.max_image_height = Some(LOAD_MAX_DIMENSION);
    // A little over one frame: decoders allocate the frame and a few rows.
    limits.max_alloc =
        Some(crate::budget::max_frame_bytes().saturating_mul(5) / 4).map(|b| b.min(LOAD_MAX_ALLOC));
    limits
}

/// Decode PNG, JPEG or WebP bytes under `limits`. The format comes from the magic bytes.
///
/// # Errors
/// [`PipelineError::Imaging`] wrapping [`ImagingError::Unsupported`] for another format,
/// [`ImagingError::Limits`] when the image is larger than `limits`, and
/// [`ImagingError::Decode`] for empty, garbage or truncated data.
pub fn load_bytes(bytes: &[u8], limits: &image::Limits) -> Result<DynamicImage, PipelineError> {
    let format = sniff(bytes)?;
    // The declared frame against the pixel budget, before any decoder allocates.
    let probe = crate::probe::probe_bytes(bytes)?;
    crate::budget::check(
        probe.width,
        probe.height,
        crate::budget::bytes_per_pixel(&probe.color),
    )?;
    if format == ImageFormat::Jpeg {
        return load_jpeg(bytes, limits);
    }
    if format == ImageFormat::Png
        && let Some(image) = png_frame(bytes, limits)
    {
        return Ok(image);
    }
    if format == ImageFormat::Png && !has_png_end(bytes) {
        // `image` stops reading after the last row, so a file cut inside its final chunks
        // decodes; verification calls that file broken, and so does the pipeline.
        return Err(ImagingError::Decode("invalid PNG: no IEND chunk (truncated)".into()).into());
    }
    if format == ImageFormat::WebP && !has_whole_riff(bytes) {
        // The VP8 decoder can finish without the last byte or two of its chunk; the RIFF
        // header says how long the file is meant to be.
        return Err(ImagingError::Decode(
            "invalid WebP: shorter than its RIFF header says (truncated)".into(),
        )
        .into());
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits.clone());
    Ok(reader.decode().map_err(from_image_error)?)
}

/// An 8-bit RGB or RGBA PNG read row by row ([`png_rows`]: zlib-rs and fourk's unfiltering
/// instead of the `png` crate's fdeflate, the same pixels), within `limits`. `None` for
/// anything else and on any fault, and [`load_bytes`] decodes through `image`, which reports
/// the error.
pub(crate) fn png_frame(bytes: &[u8], limits: &image::Limits) -> Option<DynamicImage> {
    let PngRows {
        mut reader,
        width,
        height,
        channels,
    } = png_rows(bytes)?;
    let row_bytes = usize::try_from(width).ok()?.checked_mul(channels)?;
    let len = row_bytes.checked_mul(usize::try_from(height).ok()?)?;
    if len == 0 {
        return None;
    }
    let within = width <= limits.max_image_width.unwrap_or(u32::MAX)
        && height <= limits.max_image_height.unwrap_or(u32::MAX)
        && limits.max_alloc.is_none_or(|max| len as u64 <= max);
    if !within {
        return None;
    }
    // Zeroed as the allocator hands it out (a fresh mapping is not written twice).
    let mut pixels: Vec<u8> = bytemuck::allocation::try_zeroed_vec(len).ok()?;
    for row in pixels.chunks_exact_mut(row_bytes) {
        reader.read_row(row)?;
    }
    reader.finish()?;
    if channels == 4 {
        image::RgbaImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
    }
}

/// [`load_bytes`] on a file's contents.
///
/// # Errors
/// [`ImagingError::Io`] when the file cannot be read, otherwise as [`load_bytes`].
pub fn load_file(path: &Path, limits: &image::Limits) -> Result<DynamicImage, PipelineError> {
    let bytes = std::fs::read(path).map_err(|source| ImagingError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })?;
    load_bytes(&bytes, limits)
}

/// A JPEG written by [`png_to_jpeg`], with the pieces of it already decoded by the
/// verification's decoder (pass both to [`crate::save_bytes_verified_decoded`]).
#[derive(Debug)]
pub struct StreamedJpeg {
    /// The JPEG file.
    pub bytes: Vec<u8>,
    /// Its pieces that passed the verification decode while the PNG was read.
    pub decoded: crate::DecodedPieces,
    /// The picture's width.
    pub width: u32,
    /// The picture's height.
    pub height: u32,
}

/// A PNG straight to JPEG without a frame in memory: rows decoded on one core are encoded in
/// strips on the others as each strip fills (the strip plan of
/// [`crate::encode`](mod@crate::encode)), so decoding and encoding overlap and a few strips of
/// memory stand in for the whole frame. The bytes are those [`crate::encode_with_options`]
/// writes for the decoded frame with the same `compression` and `options` on the same pool.
///
/// Each strip, once encoded, is also checked as the piece verification will cut from the
/// joined file (the same bytes, the same check: the entropy check, or else the strict
/// decoder), while the PNG is still inflating on the other core; the pieces that pass are
/// returned with the bytes, so that verifying the file does not check them a second time
/// ([`crate::verify_bytes_decoded`]). A piece that fails is simply not among them:
/// verification then checks it again and reports the error.
///
/// `None` whenever this path does not apply or anything goes wrong, and the caller decodes
/// and encodes as usual (which then reports any error in its own words): not an 8-bit RGB or
/// RGBA PNG, interlaced, with a `tRNS` colour key, a frame too small to split or a single
/// core, over the pixel budget or [`LOAD_MAX_DIMENSION`], a decoding error, and a transparent
/// pixel (JPEG has no alpha: the usual path refuses it or flattens it).
#[must_use]
pub fn png_to_jpeg(
    bytes: &[u8],
    compression: Option<u8>,
    options: &crate::EncodeOptions,
) -> Option<StreamedJpeg> {
    use std::sync::{Mutex, OnceLock};

    use crate::encode::{JpegPlan, StripState};

    let PngRows {
        mut reader,
        width,
        height,
        channels,
    } = png_rows(bytes)?;
    let quality = crate::encode::jpeg_quality(compression);
    let plan = JpegPlan::new(width, height, channels, quality, options.jpeg_subsampling).ok()?;
    if !plan.split() {
        return None;
    }
    let strips = plan.strips();
    let row_bytes = plan.row_bytes();
    /// A strip's JPEG, and its piece when that decoded.
    struct Encoded {
        part: Result<Vec<u8>, ImagingError>,
        piece: Option<Vec<u8>>,
    }
    let done: Vec<OnceLock<Encoded>> = strips.iter().map(|_| OnceLock::new()).collect();
    // Strip buffers and encoder states handed back by the encoders (after decoding their
    // piece into the buffer), for the decoder to fill and the next encoder to use again.
    let spare: Mutex<Vec<(Vec<u8>, StripState)>> = Mutex::new(Vec::new());
    let decoded = rayon::scope(|scope| {
        for (i, &(top, bottom)) in strips.iter().enumerate() {
            let (mut buf, mut state) = spare
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop()
                .unwrap_or_default();
            buf.resize((bottom - top) * row_bytes, 0);
            for row in buf.chunks_exact_mut(row_bytes) {
                reader.read_row(row)?;
                if channels == 4 && crate::alpha::row_has_transparency(row, 4, 1) {
                    return None;
                }
            }
            let (plan, done, spare) = (&plan, &done, &spare);
            scope.spawn(move |_| {
                let part = plan.encode_strip(&mut state, &buf, (top, bottom));
                let piece = part
                    .as_ref()
                    .ok()
                    .and_then(|part| plan.piece(part, (top, bottom)).ok())
                    .filter(|piece| crate::verify::check_jpeg_piece(&mut buf, piece).is_ok());
                let _ = done[i].set(Encoded { part, piece });
                spare
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((buf, state));
            });
        }
        Some(())
    });
    decoded?;
    // Through IEND, every remaining chunk's CRC checked.
    reader.finish()?;
    let (mut parts, mut pieces) = (Vec::with_capacity(done.len()), Vec::with_capacity(done.len()));
    for strip in done {
        let Encoded { part, piece } = strip.into_inner()?;
        parts.push(part.ok()?);
        pieces.push(piece);
    }
    Some(StreamedJpeg {
        bytes: plan.join(&parts).ok()?,
        decoded: crate::DecodedPieces::from_pieces(pieces),
        width,
        height,
    })
}

/// A PNG whose rows can be read one by one straight into an RGB8 or RGBA8 frame's layout.
pub(crate) struct PngRows<'a> {
    /// The rows, from the first `IDAT` on ([`crate::png_idat`]).
    pub(crate) reader: crate::png_idat::IdatRows<'a>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// 3 (RGB) or 4 (RGBA).
    pub(crate) channels: usize,
}

/// The row reader of an 8-bit RGB or RGBA PNG that is not interlaced and has no `tRNS` colour
/// key (rows are then the decoded frame's rows as they are), within [`LOAD_MAX_DIMENSION`] and
/// the pixel budget and ending with `IEND`; `None` for anything else, which the caller decodes
/// as usual. The `png` crate reads the header and the chunks before the pixels (so what it
/// refuses there is refused), [`crate::png_idat`] the pixels.
pub(crate) fn png_rows(bytes: &[u8]) -> Option<PngRows<'_>> {
    if sniff(bytes).ok()? != ImageFormat::Png || !has_png_end(bytes) {
        return None;
    }
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), crate::probe::png_limits());
    decoder.set_ignore_text_chunk(true);
    let reader = decoder.read_info().ok()?;
    let info = reader.info();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        _ => return None,
    };
    if info.interlaced || info.bit_depth != png::BitDepth::Eight || info.trns.is_some() {
        return None;
    }
    let (width, height) = (info.width, info.height);
    if width > LOAD_MAX_DIMENSION || height > LOAD_MAX_DIMENSION {
        return None;
    }
    // Before any pixel is inflated (the header and the chunks before the first IDAT only).
    crate::budget::check(width, height, u64::try_from(channels).ok()?).ok()?;
    let row_bytes = usize::try_from(width).ok()?.checked_mul(channels)?;
    Some(PngRows {
        reader: crate::png_idat::IdatRows::new(bytes, row_bytes, channels)?,
        width,
        height,
        channels,
    })
}

fn sniff(bytes: &[u8]) -> Result<ImageFormat, ImagingError> {
    if bytes.is_empty() {
        return Err(ImagingError::Decode("the data is empty".into()));
    }
    match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) => Ok(f),
        Ok(other) => Err(ImagingError::Unsupported(format!(
            "{} (the pipeline reads png, jpeg and webp)",
            other.extensions_str().first().copied().unwrap_or("unknown")
        ))),
        Err(_) => Err(ImagingError::Unsupported(
            "unrecognised magic bytes (not png, jpeg or webp)".into(),
        )),
    }
}

/// Whether a complete `IEND` chunk (empty, with its fixed CRC) sits in the last 4 KiB; some
/// writers append a little padding after it, which is harmless.
fn has_png_end(bytes: &[u8]) -> bool {
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    bytes[bytes.len().saturating_sub(4096)..]
        .windows(IEND.len())
        .any(|w| w == IEND)
}

fn has_whole_riff(bytes: &[u8]) -> bool {
    bytes
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|size| u64::from(u32::from_le_bytes(size)) + 8 <= bytes.len() as u64)
}

fn from_image_error(e: image::ImageError) -> ImagingError {
    match e {
        image::ImageError::Limits(l) => ImagingError::Limits(l.to_string()),
        image::ImageError::Unsupported(u) => ImagingError::Unsupported(u.to_string()),
        // In-memory input: the only I/O error possible is running out of bytes.
        other => ImagingError::Decode(other.to_string()),
    }
}

fn load_jpeg(bytes: &[u8], limits: &image::Limits) -> Result<DynamicImage, PipelineError> {
    // A cut inside the last scan can still decode cleanly in strict mode, but then the
    // end-of-image marker is gone. Zero bytes after it are padding some writers add.
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if !bytes[..end].ends_with(&[0xFF, 0xD9]) {
        return Err(ImagingError::Decode("invalid JPEG: no end-of-image marker (truncated)".into()).into());
    }
    let max_w = limits.max_image_width.unwrap_or(u32::MAX);
    let max_h = limits.max_image_height.unwrap_or(u32::MAX);
    // zune's own size cap is lifted to JPEG's maximum so that an oversized frame is reported
    // as a limit (below) rather than as corrupt data.
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let bad = |e: zune_jpeg::errors::DecodeErrors| ImagingError::Decode(format!("invalid JPEG: {e}"));
    decoder.decode_headers().map_err(bad)?;
    let (width, height) = decoder.dimensions().unwrap_or((0, 0));
    // JPEG sizes are 16-bit, so these conversions cannot fail.
    let (width, height) = (
        u32::try_from(width).unwrap_or(u32::MAX),
        u32::try_from(height).unwrap_or(u32::MAX),
    );
    if width > max_w || height > max_h {
        return Err(ImagingError::Limits(format!(
            "{width}x{height} is larger than the allowed {max_w}x{max_h}"
        ))
        .into());
    }
    let len = decoder
        .output_buffer_size()
        .ok_or_else(|| ImagingError::Decode("invalid JPEG: no frame header".into()))?;
    if limits.max_alloc.is_some_and(|max| len as u64 > max) {
        return Err(ImagingError::Limits(format!(
            "decoding needs {len} bytes, more than the allowed {}",
            limits.max_alloc.unwrap_or_default()
        ))
        .into());
    }
    let mut pixels = try_zeroed(len)?;
    decoder.decode_into(&mut pixels).map_err(bad)?;
    RgbImage::from_raw(width, height, pixels)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| ImagingError::Decode("invalid JPEG: frame size mismatch".into()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;
    use fourk_api::OutputFormat;
    use image::{Rgb, RgbaImage};

    fn photo(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7 + y) as u8, (y * 3) as u8, (x ^ y) as u8])
        }))
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn streamed_png_to_jpeg_writes_the_bytes_of_decode_then_encode() {
        use crate::{EncodeOptions, JpegSubsampling, encode_with_options};
        let rgb = photo(1001, 517);
        let rgba = DynamicImage::ImageRgba8(rgb.to_rgba8());
        for img in [&rgb, &rgba] {
            let png = encode(img, OutputFormat::Png, None).unwrap();
            for threads in [2, 3] {
                for (compression, subsampling) in [
                    (Some(90), JpegSubsampling::Auto),
                    (Some(75), JpegSubsampling::Auto),
                    (Some(95), JpegSubsampling::Half),
                    (None, JpegSubsampling::Full),
                ] {
                    let options = EncodeOptions::default().with_jpeg_subsampling(subsampling);
                    let what = format!(
                        "{:?} {threads} cores {compression:?} {subsampling:?}",
                        img.color()
                    );
                    pool(threads).install(|| {
                        let streamed =
                            png_to_jpeg(&png, compression, &options).expect("an 8-bit opaque PNG streams");
                        let decoded = load_bytes(&png, &load_limits()).unwrap();
                        let usual =
                            encode_with_options(&decoded, OutputFormat::Jpeg, compression, &options).unwrap();
                        assert!(streamed.bytes == usual, "{what}: other bytes");
                        // Every piece verification cuts from the file was decoded while
                        // streaming, so verifying decodes none again, with the same verdict.
                        let pieces = crate::verify::jpeg_pieces(&streamed.bytes).unwrap();
                        assert_eq!(streamed.decoded.len(), pieces.len(), "{what}");
                        for (i, piece) in pieces.iter().enumerate() {
                            assert!(streamed.decoded.has(i, piece), "{what}: piece {i}");
                        }
                        let expect = crate::Expect::default();
                        let report = crate::verify_bytes_decoded(&streamed.bytes, &expect, &streamed.decoded);
                        assert!(report.ok, "{what}: {report:?}");
                        assert_eq!(report, crate::verify_bytes(&streamed.bytes, &expect), "{what}");
                    });
                }
            }
        }
    }

    #[test]
    fn pieces_decoded_while_streaming_stand_only_for_their_exact_bytes() {
        use crate::{Expect, verify_bytes, verify_bytes_decoded};
        let png = encode(&photo(1280, 720), OutputFormat::Png, None).unwrap();
        pool(2).install(|| {
            let streamed = png_to_jpeg(&png, Some(90), &crate::EncodeOptions::default()).unwrap();
            let expect = Expect::default();
            let jpeg = &streamed.bytes;
            // Damage inside the fourth restart segment that leaves the file cut into pieces
            // as before: bytes cut out, or runs of one bits.
            let layout = crate::jpeg_scan::layout(jpeg).unwrap();
            let segment = crate::jpeg_scan::restart_segments(jpeg, &layout).unwrap()[3];
            let at = segment.as_ptr() as usize - jpeg.as_ptr() as usize + segment.len() / 2;
            let mut cut = jpeg.clone();
            cut.drain(at..at + 16);
            let mut ones = jpeg.clone();
            ones[at..at + 16].copy_from_slice(&[0xFE; 16]);
            for damaged in [cut, ones] {
                let pieces = crate::verify::jpeg_pieces(&damaged).unwrap();
                let changed: Vec<usize> = (0..pieces.len())
                    .filter(|&i| !streamed.decoded.has(i, &pieces[i]))
                    .collect();
                // The pieces decoded while streaming vouch for the others only: the changed
                // one is decoded, and the verdict is that of a verification from scratch.
                assert_eq!(changed.len(), 1, "{changed:?}");
                let report = verify_bytes_decoded(&damaged, &expect, &streamed.decoded);
                assert_eq!(report, verify_bytes(&damaged, &expect));
            }
        });
    }

    #[test]
    fn pngs_the_stream_does_not_take_are_left_to_the_usual_path() {
        let options = crate::EncodeOptions::default();
        let stream = |png: &[u8], threads| pool(threads).install(|| png_to_jpeg(png, Some(90), &options));
        let big = photo(640, 480);
        let png = encode(&big, OutputFormat::Png, None).unwrap();
        assert!(stream(&png, 2).is_some());
        // One core, or too few rows to split: one scan, as the usual path writes it.
        assert!(stream(&png, 1).is_none());
        assert!(stream(&encode(&photo(640, 200), OutputFormat::Png, None).unwrap(), 2).is_none());
        // A transparent pixel anywhere (the last row here): the usual path refuses or flattens.
        let mut clear = big.to_rgba8();
        clear.put_pixel(639, 479, image::Rgba([1, 2, 3, 0]));
        let clear = encode(&DynamicImage::ImageRgba8(clear), OutputFormat::Png, None).unwrap();
        assert!(stream(&clear, 2).is_none());
        // 16-bit, grey, JPEG input.
        let wide = DynamicImage::ImageRgb16(big.to_rgb16());
        assert!(stream(&encode(&wide, OutputFormat::Png, None).unwrap(), 2).is_none());
        let grey = DynamicImage::ImageLuma8(big.to_luma8());
        assert!(stream(&encode(&grey, OutputFormat::Png, None).unwrap(), 2).is_none());
        assert!(stream(&encode(&big, OutputFormat::Jpeg, Some(90)).unwrap(), 2).is_none());
        // Damaged: cut short, or a flipped bit in the pixel data (its chunk's CRC fails).
        assert!(stream(&png[..png.len() / 2], 2).is_none());
        let mut flipped = png.clone();
        let at = png.len() * 3 / 4;
        flipped[at] ^= 0x10;
        assert!(stream(&flipped, 2).is_none());
    }

    #[test]
    fn every_format_loads_with_its_dimensions() {
        for (fmt, q) in [
            (OutputFormat::Png, None),
            (OutputFormat::Jpeg, Some(90)),
            (OutputFormat::Webp, Some(80)),
            (OutputFormat::Webp, None),
        ] {
            let bytes = encode(&photo(97, 41), fmt, q).unwrap();
            let img = load_bytes(&bytes, &load_limits()).unwrap();
            assert_eq!((img.width(), img.height()), (97, 41), "{fmt}");
        }
    }

    #[test]
    fn alpha_is_kept() {
        let rgba = DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 4])));
        let bytes = encode(&rgba, OutputFormat::Png, None).unwrap();
        let img = load_bytes(&bytes, &load_limits()).unwrap();
        assert_eq!(img.to_rgba8().get_pixel(3, 3).0, [1, 2, 3, 4]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for (fmt, q) in [
            (OutputFormat::Png, None),
            (OutputFormat::Jpeg, Some(90)),
            (OutputFormat::Webp, Some(80)),
        ] {
            let bytes = encode(&photo(64, 48), fmt, q).unwrap();
            // Every cut short of the full length: headers, mid-scan, just before the end.
            for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
                let r = load_bytes(&bytes[..cut], &load_limits());
                assert!(r.is_err(), "{fmt} cut at {cut} of {} decoded", bytes.len());
            }
        }
    }

    #[test]
    fn garbage_and_other_formats_are_rejected_by_cause() {
        let r = load_bytes(b"definitely not an image", &load_limits());
        assert!(matches!(
            r,
            Err(PipelineError::Imaging(ImagingError::Unsupported(_)))
        ));
        let r = load_bytes(b"GIF89a\x01\x00\x01\x00", &load_limits());
        assert!(matches!(
            r,
            Err(PipelineError::Imaging(ImagingError::Unsupported(_)))
        ));
        let r = load_bytes(b"", &load_limits());
        assert!(matches!(r, Err(PipelineError::Imaging(ImagingError::Decode(_)))));
    }

    #[test]
    fn limits_are_enforced_for_every_format() {
        let mut small = load_limits();
        small.max_image_width = Some(32);
        for (fmt, q) in [
            (OutputFormat::Png, None),
            (OutputFormat::Jpeg, Some(90)),
            (OutputFormat::Webp, Some(80)),
        ] {
            let bytes = encode(&photo(64, 16), fmt, q).unwrap();
            let r = load_bytes(&bytes, &small);
            assert!(
                matches!(r, Err(PipelineError::Imaging(ImagingError::Limits(_)))),
                "{fmt}: {r:?}"
            );
        }
    }
}
