//! Header-only probing: what an image file claims to be, read from its first bytes.
//!
//! The format comes from the magic bytes, never from the file name, because the API may return
//! a format other than the one asked for and users rename files. Only headers are parsed (PNG
//! up to the first `IDAT`, JPEG up to the `SOF` marker, WebP's RIFF chunk headers), so probing a
//! 20 MB file costs microseconds. A probe proves nothing about the pixel data; see
//! [`crate::verify`] for that.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use fourk_api::OutputFormat;
use image::ImageDecoder;
use image::codecs::webp::WebPDecoder;
use serde::Serialize;

use crate::error::ImagingError;

/// What an image's header says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The format, from the magic bytes.
    pub format: OutputFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether decoded pixels carry an alpha channel (for PNG, a `tRNS` chunk counts). Says
    /// nothing about whether any pixel is actually transparent.
    pub has_alpha: bool,
    /// The pixel layout a decoder produces, named like `image::ColorType` in lower case:
    /// `l8`, `la8`, `rgb8`, `rgba8`, `l16`, `la16`, `rgb16`, `rgba16`.
    pub color: String,
    /// Bits per sample as stored in the file (PNG 1-16, JPEG 8 or 12, WebP 8).
    pub bit_depth: u8,
}

/// Probe an image held in memory.
///
/// # Errors
/// [`ImagingError::Unsupported`] when the magic bytes are not PNG, JPEG or WebP, and
/// [`ImagingError::Decode`] when the header is truncated or malformed.
pub fn probe_bytes(bytes: &[u8]) -> Result<Probe, ImagingError> {
    probe_reader(Cursor::new(bytes), Path::new(""))
}

/// Probe an image file, reading only its header.
///
/// # Errors
/// [`ImagingError::Io`] when the file cannot be opened or read, otherwise as [`probe_bytes`].
pub fn probe_file(path: &Path) -> Result<Probe, ImagingError> {
    let file = File::open(path).map_err(|source| ImagingError::Io {
        action: "opening",
        path: path.to_owned(),
        source,
    })?;
    // Small buffer: the headers we need sit in the first few hundred bytes, and WebP's chunk
    // walk seeks, which discards the buffer each time.
    probe_reader(BufReader::with_capacity(8 * 1024, file), path)
}

/// The format of an image from its magic bytes alone (the first 16 are enough), as `image`
/// detects it; nothing else is read or checked.
///
/// # Errors
/// [`ImagingError::Unsupported`] for another or an unknown format, [`ImagingError::Decode`]
/// for no bytes.
pub fn detect_format(head: &[u8]) -> Result<OutputFormat, ImagingError> {
    match image::guess_format(head) {
        Ok(image::ImageFormat::Png) => Ok(OutputFormat::Png),
        Ok(image::ImageFormat::Jpeg) => Ok(OutputFormat::Jpeg),
        Ok(image::ImageFormat::WebP) => Ok(OutputFormat::Webp),
        Ok(other) => Err(ImagingError::Unsupported(format!(
            "{} (only png, jpeg and webp are produced by the API)",
            other.extensions_str().first().copied().unwrap_or("unknown")
        ))),
        Err(_) if head.is_empty() => Err(ImagingError::Decode("the data is empty".into())),
        Err(_) => Err(ImagingError::Unsupported(
            "unrecognised magic bytes (not png, jpeg or webp)".into(),
        )),
    }
}

/// `origin` names the file in IO errors; it is empty for in-memory data, where the only IO
/// error possible is running out of bytes, which is reported as a decode error.
fn probe_reader<R: BufRead + Seek>(mut r: R, origin: &Path) -> Result<Probe, ImagingError> {
    let mut head = [0u8; 16];
    let n = read_up_to(&mut r, &mut head).map_err(|e| io_error(e, origin))?;
    let format = detect_format(&head[..n])?;
    r.seek(SeekFrom::Start(0)).map_err(|e| io_error(e, origin))?;
    let probe = match format {
        OutputFormat::Png => probe_png(r, origin),
        OutputFormat::Jpeg => probe_jpeg(r, origin),
        OutputFormat::Webp => probe_webp(r, origin),
    }?;
    // image-webp can report a malformed lossless (VP8L) header as 0 pixels wide (found by the
    // `image` fuzz target), and no format has empty images: a zero edge is a broken header.
    if probe.width == 0 || probe.height == 0 {
        return Err(ImagingError::Decode(format!(
            "invalid {} header: {}x{} (an edge of 0 pixels)",
            probe.format, probe.width, probe.height
        )));
    }
    Ok(probe)
}

fn probe_png<R: BufRead + Seek>(r: R, origin: &Path) -> Result<Probe, ImagingError> {
    let mut decoder = png::Decoder::new_with_limits(r, png_limits());
    // Text chunks are not needed and a hostile zTXt would otherwise be inflated here.
    decoder.set_ignore_text_chunk(true);
    // EXPAND makes `output_color_type` report what `image` and our verifier produce: palette
    // becomes RGB(A), low bit depths become 8 and `tRNS` becomes an alpha channel.
    decoder.set_transformations(png::Transformations::EXPAND);
    let reader = decoder.read_info().map_err(|e| png_error(e, origin))?;
    Ok(png_probe(&reader))
}

/// What a PNG reader set up as [`probe_png`]'s is (limits, text ignored, `EXPAND`) read from
/// the header: the probe of that file.
pub(crate) fn png_probe<R: BufRead + Seek>(reader: &png::Reader<R>) -> Probe {
    let info = reader.info();
    let (color_type, depth) = reader.output_color_type();
    Probe {
        format: OutputFormat::Png,
        width: info.width,
        height: info.height,
        has_alpha: png_has_alpha(color_type),
        color: png_color_name(color_type, depth).to_owned(),
        bit_depth: info.bit_depth as u8,
    }
}

fn probe_webp<R: BufRead + Seek>(r: R, origin: &Path) -> Result<Probe, ImagingError> {
    // `WebPDecoder::new` parses the RIFF header and seeks over the chunks without reading the
    // bitstreams, so it is header-only (unlike image's JPEG decoder, which reads everything).
    let decoder = WebPDecoder::new(r).map_err(|e| image_error(e, origin))?;
    let (width, height) = decoder.dimensions();
    let has_alpha = decoder.color_type().has_alpha();
    Ok(Probe {
        format: OutputFormat::Webp,
        width,
        height,
        has_alpha,
        color: if has_alpha { "rgba8" } else { "rgb8" }.to_owned(),
        bit_depth: 8,
    })
}

/// Walk JPEG marker segments up to the first start-of-frame. Parsed by hand because image's
/// JPEG decoder copies the whole input into memory before reading the header.
fn probe_jpeg<R: Read>(mut r: R, origin: &Path) -> Result<Probe, ImagingError> {
    let bad = |what: &str| ImagingError::Decode(format!("invalid JPEG header: {what}"));
    let byte = |r: &mut R| -> Result<u8, ImagingError> {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).map_err(|e| io_error(e, origin))?;
        Ok(b[0])
    };
    if byte(&mut r)? != 0xFF || byte(&mut r)? != 0xD8 {
        return Err(bad("missing SOI marker"));
    }
    loop {
        if byte(&mut r)? != 0xFF {
            return Err(bad("expected a marker"));
        }
        // Any number of 0xFF fill bytes may precede the marker code.
        let mut marker = byte(&mut r)?;
        while marker == 0xFF {
            marker = byte(&mut r)?;
        }
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return Err(bad("end of image before any frame header")),
            0xDA => return Err(bad("scan data before any frame header")),
            _ => {}
        }
        let mut len = [0u8; 2];
        r.read_exact(&mut len).map_err(|e| io_error(e, origin))?;
        let len = u16::from_be_bytes(len);
        if len < 2 {
            return Err(bad("segment length below 2"));
        }
        let body_len = u64::from(len - 2);
        // SOF0-SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let mut sof = [0u8; 6];
            if body_len < 6 {
                return Err(bad("frame header too short"));
            }
            r.read_exact(&mut sof).map_err(|e| io_error(e, origin))?;
            let precision = sof[0];
            let height = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
            let width = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
            let components = sof[5];
            if width == 0 || height == 0 {
                // Height 0 means "given later in a DNL marker", which no decoder we use supports.
                return Err(bad("zero width or height"));
            }
            let color = match components {
                1 => "l8",
                // YCbCr and CMYK/YCCK are all converted to RGB by the decoder.
                3 | 4 => "rgb8",
                n => return Err(bad(&format!("{n} colour components"))),
            };
            return Ok(Probe {
                format: OutputFormat::Jpeg,
                width,
                height,
                has_alpha: false,
                color: color.to_owned(),
                bit_depth: precision,
            });
        }
        io::copy(&mut (&mut r).take(body_len), &mut io::sink())
            .map_err(|e| io_error(e, origin))
            .and_then(|copied| {
                if copied == body_len {
                    Ok(())
                } else {
                    Err(ImagingError::Decode("truncated JPEG header".into()))
                }
            })?;
    }
}

/// Fill `buf` as far as the reader allows; short only at end of input.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The limit on the PNG decoder's own buffers (row buffers, metadata chunks); output buffers
/// are the caller's and bounded separately.
pub(crate) fn png_limits() -> png::Limits {
    png::Limits {
        bytes: 64 * 1024 * 1024,
    }
}

pub(crate) fn png_has_alpha(color: png::ColorType) -> bool {
    matches!(color, png::ColorType::GrayscaleAlpha | png::ColorType::Rgba)
}

fn png_color_name(color: png::ColorType, depth: png::BitDepth) -> &'static str {
    let wide = depth == png::BitDepth::Sixteen;
    match (color, wide) {
        (png::ColorType::Grayscale, false) => "l8",
        (png::ColorType::Grayscale, true) => "l16",
        (png::ColorType::GrayscaleAlpha, false) => "la8",
        (png::ColorType::GrayscaleAlpha, true) => "la16",
        (png::ColorType::Rgb | png::ColorType::Indexed, false) => "rgb8",
        (png::ColorType::Rgb | png::ColorType::Indexed, true) => "rgb16",
        (png::ColorType::Rgba, false) => "rgba8",
        (png::ColorType::Rgba, true) => "rgba16",
    }
}

/// Running out of input is a property of the data (truncation), not an IO failure.
pub(crate) fn io_error(e: io::Error, origin: &Path) -> ImagingError {
    if e.kind() == io::ErrorKind::UnexpectedEof || origin.as_os_str().is_empty() {
        ImagingError::Decode(format!("truncated image data: {e}"))
    } else {
        ImagingError::Io {
            action: "reading",
            path: origin.to_owned(),
            source: e,
        }
    }
}

pub(crate) fn png_error(e: png::DecodingError, origin: &Path) -> ImagingError {
    match e {
        png::DecodingError::IoError(e) => io_error(e, origin),
        png::DecodingError::LimitsExceeded => {
            ImagingError::Limits("the PNG decoder's memory limit was exceeded".into())
        }
        other => ImagingError::Decode(format!("invalid PNG: {other}")),
    }
}

pub(crate) fn image_error(e: image::ImageError, origin: &Path) -> ImagingError {
    match e {
        image::ImageError::IoError(e) => io_error(e, origin),
        image::ImageError::Limits(l) => ImagingError::Limits(l.to_string()),
        image::ImageError::Unsupported(u) => ImagingError::Unsupported(u.to_string()),
        other => ImagingError::Decode(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;
    use image::{DynamicImage, GrayImage, Rgb, RgbImage, RgbaImage};

    fn rgb(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([x as u8, y as u8, (x ^ y) as u8])
        }))
    }

    #[test]
    fn png_rgb_and_rgba() {
        let p = probe_bytes(&encode(&rgb(40, 30), OutputFormat::Png, None).unwrap()).unwrap();
        assert_eq!(
            p,
            Probe {
                format: OutputFormat::Png,
                width: 40,
                height: 30,
                has_alpha: false,
                color: "rgb8".into(),
                bit_depth: 8,
            }
        );
        let rgba = DynamicImage::ImageRgba8(RgbaImage::new(7, 9));
        let p = probe_bytes(&encode(&rgba, OutputFormat::Png, None).unwrap()).unwrap();
        assert_eq!(
            (p.width, p.height, p.has_alpha, p.color.as_str()),
            (7, 9, true, "rgba8")
        );
    }

    #[test]
    fn png_with_trns_counts_as_alpha() {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 4, 4);
            enc.set_color(png::ColorType::Indexed);
            enc.set_depth(png::BitDepth::Two);
            enc.set_palette(vec![0, 0, 0, 255, 255, 255]);
            enc.set_trns(vec![0, 255]);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[0b0001_0001; 4]).unwrap();
        }
        let p = probe_bytes(&out).unwrap();
        assert_eq!((p.has_alpha, p.color.as_str(), p.bit_depth), (true, "rgba8", 2));
    }

    #[test]
    fn jpeg_rgb_and_gray() {
        let p = probe_bytes(&encode(&rgb(33, 17), OutputFormat::Jpeg, Some(80)).unwrap()).unwrap();
        assert_eq!(
            (
                p.format,
                p.width,
                p.height,
                p.has_alpha,
                p.color.as_str(),
                p.bit_depth
            ),
            (OutputFormat::Jpeg, 33, 17, false, "rgb8", 8)
        );
        let gray = DynamicImage::ImageLuma8(GrayImage::new(5, 6));
        let mut out = Vec::new();
        gray.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        let p = probe_bytes(&out).unwrap();
        assert_eq!((p.width, p.height, p.color.as_str()), (5, 6, "l8"));
    }

    #[test]
    fn a_zero_edge_is_a_broken_header() {
        // A malformed VP8L header that image-webp reports as 0 pixels wide.
        let bytes = b"RIFF2\0\0\0WEBPVP8L&\0\0\0/\xff\xff\xd0\x0b";
        let err = probe_bytes(bytes).unwrap_err();
        assert!(err.to_string().contains("an edge of 0 pixels"), "{err}");
    }

    #[test]
    fn webp_lossy_and_lossless_with_alpha() {
        let p = probe_bytes(&encode(&rgb(64, 32), OutputFormat::Webp, Some(70)).unwrap()).unwrap();
        assert_eq!(
            (p.format, p.width, p.height, p.has_alpha, p.color.as_str()),
            (OutputFormat::Webp, 64, 32, false, "rgb8")
        );
        let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(10, 12, |x, _| {
            image::Rgba([1, 2, 3, (x * 20) as u8])
        }));
        for c in [None, Some(80)] {
            let p = probe_bytes(&encode(&rgba, OutputFormat::Webp, c).unwrap()).unwrap();
            assert_eq!((p.width, p.height, p.has_alpha), (10, 12, true), "{c:?}");
        }
    }

    #[test]
    fn format_comes_from_magic_not_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("really-a-png.jpg");
        std::fs::write(&path, encode(&rgb(8, 8), OutputFormat::Png, None).unwrap()).unwrap();
        assert_eq!(probe_file(&path).unwrap().format, OutputFormat::Png);
    }

    #[test]
    fn probe_reads_only_the_header() {
        // A PNG cut right after its first IDAT chunk header still probes: pixel data is unread.
        let png = encode(&rgb(300, 200), OutputFormat::Png, None).unwrap();
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        let p = probe_bytes(&png[..idat + 4]).unwrap();
        assert_eq!((p.width, p.height), (300, 200));
        let jpg = encode(&rgb(300, 200), OutputFormat::Jpeg, Some(90)).unwrap();
        let sos = jpg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        assert_eq!(probe_bytes(&jpg[..sos]).unwrap().width, 300);
    }

    #[test]
    fn unsupported_and_empty_inputs_are_errors() {
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert!(matches!(probe_bytes(gif), Err(ImagingError::Unsupported(m)) if m.contains("gif")));
        assert!(matches!(
            probe_bytes(b"hello world, no image"),
            Err(ImagingError::Unsupported(_))
        ));
        assert!(matches!(probe_bytes(&[]), Err(ImagingError::Decode(_))));
        assert!(matches!(
            probe_bytes(&[0xFF, 0xD8, 0xFF]),
            Err(ImagingError::Decode(_))
        ));
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = probe_file(Path::new("/nonexistent/fourk/x.png")).unwrap_err();
        assert!(
            matches!(
                err,
                ImagingError::Io {
                    action: "opening",
                    ..
                }
            ),
            "{err}"
        );
    }
}
