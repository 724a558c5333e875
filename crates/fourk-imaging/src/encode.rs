//! Encoding pixels to PNG, JPEG and WebP with the API's meaning of `output_compression`:
//! 0-100, where 100 (the default) is the best quality. For JPEG and WebP it is the encoder's
//! quality; PNG is always lossless.
//!
//! The encoders are chosen for speed on large frames (a 4K frame is 25-33 MB of pixels):
//!
//! - PNG: rows are filtered adaptively (per row, the filter with the smallest sum of absolute
//!   differences, as libpng and Pillow do) and the filtered stream is deflated in chunks on all
//!   cores, pigz-style: each chunk is primed with the 32 KiB that precede it and ends on a
//!   sync flush, so the chunks join into one ordinary zlib stream. Any PNG decoder reads the
//!   result; it is within a few bytes per chunk of a single-threaded encode at the same level.
//!   [`crate::encode_verified`] also decodes the PNG on another thread as its chunks are written
//!   (chunks of rows are taken in order, so the decode trails the encoder closely), which
//!   takes the verification's decode off the time after the encode.
//!   [`PngLevel::Fast`] is fdeflate (a fixed PNG-tuned Huffman code and zero runs, about
//!   500 MB/s on one core) fed by a second thread that filters the rows: the two stages take
//!   about the same time, so a 4K frame encodes in about the time of either.
//! - JPEG: `jpeg-encoder` (AVX2 kernels chosen at run time), baseline, standard tables.
//! - WebP: libwebp's advanced configuration; lossless uses a lighter effort than libwebp's
//!   default (see [`WEBP_LOSSLESS_METHOD`]), which is several times faster for a fraction of a
//!   percent in size.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use flate2::{Compress, Compression, FlushCompress, Status};
use fourk_api::OutputFormat;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageEncoder};
use rayon::prelude::*;

use crate::error::ImagingError;
use crate::jpeg_scan;

/// How hard the PNG encoder works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PngLevel {
    /// Fastest, larger files: fdeflate's PNG-tuned fast mode, fed by a thread that filters
    /// the rows (it outruns zlib level 1 on both cores and compresses better).
    Fast,
    /// A balance: zlib level 4 on every core, within a fraction of a percent of level 6's
    /// size (zlib-rs levels 4-6 share one strategy) for less time.
    #[default]
    Default,
    /// Smallest files, slowest: zlib level 9 on every core.
    Best,
}

impl PngLevel {
    /// Its name in flags and sidecars: `fast`, `default` or `best`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Default => "default",
            Self::Best => "best",
        }
    }

    /// The zlib level this effort corresponds to (for `Fast`, the level fdeflate stands in for).
    #[must_use]
    pub fn zlib_level(self) -> u8 {
        match self {
            Self::Fast => 1,
            Self::Default => 4,
            Self::Best => 9,
        }
    }
}

/// Chroma subsampling of a JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JpegSubsampling {
    /// 4:2:0 below quality 90 and 4:4:4 from 90 up: full colour resolution where the quality
    /// asked for is high enough to show it.
    #[default]
    Auto,
    /// Always 4:2:0 (half the chroma resolution in both directions; libjpeg's default).
    Half,
    /// Always 4:4:4 (full chroma resolution).
    Full,
}

/// libwebp's lossless `method` (0-6) used unless [`EncodeOptions::webp_method`] says otherwise.
/// With [`WEBP_LOSSLESS_QUALITY`] it is about 5x faster than libwebp's default (`-m 4 -q 75`)
/// on photographs for files under 0.5% larger.
pub const WEBP_LOSSLESS_METHOD: u8 = 2;
/// libwebp's lossless `quality` (effort, 0-100) used by default; see [`WEBP_LOSSLESS_METHOD`].
pub const WEBP_LOSSLESS_QUALITY: u8 = 25;
/// libwebp's lossy `method` (0-6) used by default: libwebp's and `cwebp`'s own default.
pub const WEBP_LOSSY_METHOD: u8 = 4;

/// Encoder settings beyond the API's `output_compression`. `Default` is what [`encode`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EncodeOptions {
    /// PNG effort.
    pub png_level: PngLevel,
    /// A zlib level (0-9) for the parallel deflate that overrides [`EncodeOptions::png_level`].
    pub png_zlib_level: Option<u8>,
    /// JPEG chroma subsampling.
    pub jpeg_subsampling: JpegSubsampling,
    /// libwebp's `method` (0 fastest - 6 smallest); `None` is [`WEBP_LOSSY_METHOD`] for lossy
    /// and [`WEBP_LOSSLESS_METHOD`] for lossless.
    pub webp_method: Option<u8>,
    /// libwebp's lossless effort (0-100); `None` is [`WEBP_LOSSLESS_QUALITY`].
    pub webp_lossless_effort: Option<u8>,
}

impl EncodeOptions {
    /// The defaults with a PNG effort level.
    #[must_use]
    pub fn with_png_level(mut self, level: PngLevel) -> Self {
        self.png_level = level;
        self
    }

    /// The defaults with an explicit zlib level (clamped to 0-9) for PNG.
    #[must_use]
    pub fn with_png_zlib_level(mut self, level: u8) -> Self {
        self.png_zlib_level = Some(level.min(9));
        self
    }

    /// With a JPEG chroma subsampling.
    #[must_use]
    pub fn with_jpeg_subsampling(mut self, subsampling: JpegSubsampling) -> Self {
        self.jpeg_subsampling = subsampling;
        self
    }

    /// With libwebp's `method` (clamped to 0-6).
    #[must_use]
    pub fn with_webp_method(mut self, method: u8) -> Self {
        self.webp_method = Some(method.min(6));
        self
    }

    /// With libwebp's lossless effort (clamped to 0-100).
    #[must_use]
    pub fn with_webp_lossless_effort(mut self, effort: u8) -> Self {
        self.webp_lossless_effort = Some(effort.min(100));
        self
    }

    /// With one of libwebp's lossless presets, 0 (fastest) to 9 (smallest; clamped), the
    /// levels of `cwebp -lossless -z N`: each sets the lossless method and effort together.
    /// [`WEBP_LOSSLESS_LEVEL`] is the default.
    #[must_use]
    pub fn with_webp_lossless_level(self, level: u8) -> Self {
        let (method, effort) = WEBP_LOSSLESS_PRESETS[usize::from(level.min(9))];
        self.with_webp_method(method).with_webp_lossless_effort(effort)
    }
}

/// libwebp's lossless presets (`WebPConfigLosslessPreset`, `cwebp -z 0..9`): (method, effort).
const WEBP_LOSSLESS_PRESETS: [(u8, u8); 10] = [
    (0, 0),
    (1, 20),
    (2, 25),
    (3, 30),
    (3, 50),
    (4, 50),
    (4, 75),
    (4, 90),
    (5, 90),
    (6, 100),
];

/// The lossless preset fourk uses by default: level 2, which is [`WEBP_LOSSLESS_METHOD`] and
/// [`WEBP_LOSSLESS_QUALITY`].
pub const WEBP_LOSSLESS_LEVEL: u8 = 2;

/// Encode `img` as `format`. `compression` follows the API (`None` means 100). JPEG drops
/// alpha; PNG and WebP keep it when the image has it. WebP without `compression` is lossless.
///
/// # Errors
/// [`ImagingError::Encode`] when the encoder fails.
pub fn encode(
    img: &DynamicImage,
    format: OutputFormat,
    compression: Option<u8>,
) -> Result<Vec<u8>, ImagingError> {
    encode_with_options(img, format, compression, &EncodeOptions::default())
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
    encode_with_options(
        img,
        format,
        compression,
        &EncodeOptions::default().with_png_level(png_level),
    )
}

/// [`encode`] with every encoder setting.
///
/// # Errors
/// [`ImagingError::Encode`] when the encoder fails or the image is too large for the format.
pub fn encode_with_options(
    img: &DynamicImage,
    format: OutputFormat,
    compression: Option<u8>,
    options: &EncodeOptions,
) -> Result<Vec<u8>, ImagingError> {
    let quality = compression.unwrap_or(100).min(100);
    match format {
        OutputFormat::Png => encode_png(img, Deflater::of(options), &[], None),
        OutputFormat::Jpeg => encode_jpeg(img, jpeg_quality(compression), options.jpeg_subsampling),
        OutputFormat::Webp => encode_webp(img, compression.map(|_| quality), options),
    }
}

/// The JPEG quality `output_compression` means: 100 when not given, at least 1.
pub(crate) fn jpeg_quality(compression: Option<u8>) -> u8 {
    compression.unwrap_or(100).clamp(1, 100)
}

pub(crate) fn encode_error(format: &'static str, message: impl ToString) -> ImagingError {
    ImagingError::Encode {
        format,
        message: message.to_string(),
    }
}

// --- PNG ------------------------------------------------------------------------------------

/// Below this many bytes of pixels, one deflate stream on one core is as fast as splitting.
const PNG_PARALLEL_MIN_BYTES: usize = 512 * 1024;
/// Deflate's window: each chunk is primed with this much of the stream before it.
const DEFLATE_WINDOW: usize = 32 * 1024;
/// Compressed bytes per IDAT chunk (libpng writes 8 KiB; larger is fewer CRCs, same meaning).
const IDAT_MAX: usize = 1 << 20;

/// How the filtered rows are compressed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Deflater {
    /// zlib at this level, in chunks on every core.
    Zlib(u8),
    /// fdeflate, with filtering on a second thread.
    Fast,
}

impl Deflater {
    pub(crate) fn of(options: &EncodeOptions) -> Self {
        match (options.png_zlib_level, options.png_level) {
            (Some(level), _) => Self::Zlib(level.min(9)),
            (None, PngLevel::Fast) => Self::Fast,
            (None, level) => Self::Zlib(level.zlib_level()),
        }
    }
}

/// An ancillary chunk to write before the image data: its type and its data.
pub(crate) type ExtraChunk<'a> = ([u8; 4], &'a [u8]);

/// The pixels of a frame the parallel PNG encoder writes (8-bit grey or colour, with or
/// without alpha), with its PNG colour type and channel count. `None` for 16-bit and float
/// frames, which fourk's renderers never produce: image-rs writes them (converting floats)
/// on one core.
pub(crate) fn png_pixels(img: &DynamicImage) -> Option<(&[u8], u8, usize)> {
    Some(match img {
        DynamicImage::ImageLuma8(b) => (b.as_raw().as_slice(), 0, 1),
        DynamicImage::ImageRgb8(b) => (b.as_raw().as_slice(), 2, 3),
        DynamicImage::ImageLumaA8(b) => (b.as_raw().as_slice(), 4, 2),
        DynamicImage::ImageRgba8(b) => (b.as_raw().as_slice(), 6, 4),
        _ => return None,
    })
}

/// Encode a PNG with `chunks` after `IHDR`. With a `tap`, every byte of the file is also sent
/// there, in order, as soon as the chunk holding it is complete (see
/// [`crate::encode_verified`]).
pub(crate) fn encode_png(
    img: &DynamicImage,
    deflater: Deflater,
    chunks: &[ExtraChunk<'_>],
    tap: Option<mpsc::Sender<Vec<u8>>>,
) -> Result<Vec<u8>, ImagingError> {
    let Some((buf, color_type, channels)) = png_pixels(img) else {
        let level = match deflater {
            Deflater::Zlib(level) => level,
            Deflater::Fast => 1,
        };
        if !chunks.is_empty() || tap.is_some() {
            return Err(encode_error(
                "png",
                "16-bit and float frames are written without chunks or a tap",
            ));
        }
        return encode_png_fallback(img, level);
    };
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        return Err(encode_error(
            "png",
            "a PNG needs a width and height of at least 1",
        ));
    }
    let stride = w as usize * channels;
    let total = (stride + 1) * h as usize;
    let header = |capacity: usize| {
        let mut png = Vec::with_capacity(capacity);
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = [0u8; 13];
        ihdr[..4].copy_from_slice(&w.to_be_bytes());
        ihdr[4..8].copy_from_slice(&h.to_be_bytes());
        ihdr[8] = 8; // bit depth
        ihdr[9] = color_type;
        // compression 0 (deflate), filter method 0 (adaptive), interlace 0 (none)
        write_chunk(&mut png, *b"IHDR", &ihdr)?;
        for (kind, data) in chunks {
            write_chunk(&mut png, *kind, data)?;
        }
        Ok::<_, ImagingError>(IdatWriter::new(png, tap))
    };
    // Compressed straight into the PNG: no second copy of the stream. Photographs compress to
    // about half; the bound is for data that does not compress, plus the chunk headers and
    // the text and provenance chunks (given here, or inserted in place later by
    // `metadata::embed`). Capacity that is never written costs no memory.
    let room = 64 * 1024 + chunks.iter().map(|(_, d)| d.len() + 12).sum::<usize>();
    let mut idat = header(total + total / 64 + room)?;
    match deflater {
        Deflater::Zlib(level) => {
            deflate_filtered(buf, stride, channels, h as usize, level, |part| idat.append(part))?;
        }
        Deflater::Fast => {
            // fdeflate writes 8 bytes at a time; the chunk framing takes them 64 KiB at once.
            let mut writer = std::io::BufWriter::with_capacity(64 * 1024, &mut idat);
            deflate_fast(buf, stride, channels, h as usize, &mut writer)?;
            writer.flush().map_err(|e| encode_error("png", e))?;
        }
    }
    Ok(idat.finish())
}

/// Frames a zlib stream as `IDAT` chunks of at most [`IDAT_MAX`] bytes, written straight
/// into the PNG being built: each chunk's length and CRC are filled in when it is full.
struct IdatWriter {
    png: Vec<u8>,
    /// Where the open chunk's length field is, when one is open.
    open: Option<usize>,
    /// Where complete chunks are sent as they close (see [`crate::encode_verified`]).
    tap: Option<mpsc::Sender<Vec<u8>>>,
    /// How much of `png` went to the tap.
    sent: usize,
}

impl IdatWriter {
    fn new(png: Vec<u8>, tap: Option<mpsc::Sender<Vec<u8>>>) -> Self {
        Self {
            png,
            open: None,
            tap,
            sent: 0,
        }
    }

    /// Send what the tap has not had yet: only complete chunks, since an open chunk's length
    /// is written when it closes.
    fn send(&mut self) {
        if let Some(tap) = &self.tap {
            // A verifier that stopped (the file failed to decode) no longer listens; the
            // file is then verified in full when it is saved.
            if tap.send(self.png[self.sent..].to_vec()).is_err() {
                self.tap = None;
            }
            self.sent = self.png.len();
        }
    }

    fn append(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let start = *self.open.get_or_insert_with(|| {
                let at = self.png.len();
                self.png.extend_from_slice(&[0, 0, 0, 0]);
                self.png.extend_from_slice(b"IDAT");
                at
            });
            let used = self.png.len() - start - 8;
            let take = data.len().min(IDAT_MAX - used);
            self.png.extend_from_slice(&data[..take]);
            data = &data[take..];
            if used + take == IDAT_MAX {
                self.close();
            }
        }
    }

    /// Fill in the open chunk's length and CRC (over its type and data).
    fn close(&mut self) {
        if let Some(start) = self.open.take() {
            let len = self.png.len() - start - 8;
            let len32 = u32::try_from(len).expect("IDAT chunks are at most 1 MiB");
            self.png[start..start + 4].copy_from_slice(&len32.to_be_bytes());
            let crc = crc32fast::hash(&self.png[start + 4..]);
            self.png.extend_from_slice(&crc.to_be_bytes());
            self.send();
        }
    }

    /// Close the image data and end the file with `IEND`.
    fn finish(mut self) -> Vec<u8> {
        self.close();
        write_chunk(&mut self.png, *b"IEND", &[]).expect("IEND is empty");
        self.send();
        self.png
    }
}

impl std::io::Write for IdatWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.append(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn encode_png_fallback(img: &DynamicImage, level: u8) -> Result<Vec<u8>, ImagingError> {
    let converted;
    let img = match img {
        DynamicImage::ImageRgb32F(_) => {
            converted = DynamicImage::ImageRgb16(img.to_rgb16());
            &converted
        }
        DynamicImage::ImageRgba32F(_) => {
            converted = DynamicImage::ImageRgba16(img.to_rgba16());
            &converted
        }
        other => other,
    };
    let ct = match level {
        0..=2 => CompressionType::Fast,
        3..=7 => CompressionType::Default,
        _ => CompressionType::Best,
    };
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, ct, FilterType::Adaptive)
        .write_image(img.as_bytes(), img.width(), img.height(), img.color().into())
        .map_err(|e| encode_error("png", e))?;
    Ok(out)
}

fn write_chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) -> Result<(), ImagingError> {
    let len = u32::try_from(data.len())
        .ok()
        .filter(|&len| len <= 0x7FFF_FFFF)
        .ok_or_else(|| encode_error("png", "a PNG chunk holds less than 2 GiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    Ok(())
}

/// Filter every row and deflate the result as one zlib stream, handed to `sink` in pieces (one
/// per chunk of rows) in order, each as soon as it and every piece before it are done.
fn deflate_filtered(
    buf: &[u8],
    stride: usize,
    bpp: usize,
    height: usize,
    level: u8,
    mut sink: impl FnMut(&[u8]) + Send,
) -> Result<(), ImagingError> {
    let total = (stride + 1) * height;
    let threads = rayon::current_num_threads().max(1);
    // Several chunks per core, so that a core slowed by other work (the verifier of
    // `encode_verified`, another process) does not hold up the end, and each chunk is
    // passed on soon after the one before. On a 4K frame, 8 per core cost 109 bytes over 4.
    let chunks = if total < PNG_PARALLEL_MIN_BYTES || threads == 1 {
        1
    } else {
        (threads * 8)
            .min(total / (PNG_PARALLEL_MIN_BYTES / 2))
            .clamp(1, height)
    };
    let rows_per_chunk = height.div_ceil(chunks);
    let ranges: Vec<(usize, usize)> = (0..height)
        .step_by(rows_per_chunk)
        .map(|start| (start, (start + rows_per_chunk).min(height)))
        .collect();
    let (n, last) = (ranges.len(), ranges.len() - 1);
    let deflate = |i: usize| {
        let (start, end) = ranges[i];
        deflate_rows(buf, stride, bpp, start, end, level, i == last)
    };
    let mut adler = 1u32;
    let mut put = |i: usize, (data, part_adler, part_len): DeflatedChunk| {
        adler = adler32_combine(adler, part_adler, part_len);
        if i == 0 {
            sink(&zlib_header(level));
        }
        sink(&data);
        if i == last {
            sink(&adler.to_be_bytes());
        }
    };
    if last == 0 {
        put(0, deflate(0)?);
        return Ok(());
    }

    // Each core takes the next chunk in order, so chunks finish roughly in order and each is
    // passed on (and freed) soon after it is done. The pieces are put in order on a second
    // thread; the cores stay in this thread's rayon pool.
    let next = AtomicUsize::new(0);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<DeflatedChunk, ImagingError>)>();
    std::thread::scope(|s| {
        let assembler = s.spawn(move || {
            let mut waiting = std::collections::BTreeMap::new();
            let mut want = 0;
            for (i, part) in done_rx {
                waiting.insert(i, part);
                while let Some(part) = waiting.remove(&want) {
                    put(want, part?);
                    want += 1;
                }
            }
            if want == n {
                Ok(())
            } else {
                Err(encode_error("png", "a chunk of rows was not compressed"))
            }
        });
        (0..threads.min(n))
            .into_par_iter()
            .for_each_with(done_tx, |done, _| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    // Stops early when the assembler returned (a chunk failed).
                    if i >= n || done.send((i, deflate(i))).is_err() {
                        break;
                    }
                }
            });
        assembler
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Filter every row and compress the result with fdeflate into one zlib stream, written to
/// `out`. Above
/// [`PNG_PARALLEL_MIN_BYTES`], a second thread filters batches of rows while this one
/// compresses the batch before: on a 4K frame each stage takes about 50 ms on one core.
fn deflate_fast(
    buf: &[u8],
    stride: usize,
    bpp: usize,
    height: usize,
    out: impl std::io::Write,
) -> Result<(), ImagingError> {
    let ioerr = |e: std::io::Error| encode_error("png", e);
    let total = (stride + 1) * height;
    let row = |y: usize| &buf[y * stride..(y + 1) * stride];
    let zero = vec![0u8; stride];
    let prior = |y: usize| if y == 0 { zero.as_slice() } else { row(y - 1) };
    let batch_rows = (256 * 1024 / (stride + 1)).max(1);
    let filter_batch = |scratch: &mut FilterScratch, start: usize, out: &mut Vec<u8>| {
        out.clear();
        for y in start..(start + batch_rows).min(height) {
            scratch.filter_into(row(y), prior(y), bpp, out);
        }
    };
    let mut z = fdeflate::Compressor::new(out).map_err(ioerr)?;

    if total < PNG_PARALLEL_MIN_BYTES || rayon::current_num_threads() < 2 {
        let mut scratch = FilterScratch::new(stride);
        let mut batch = Vec::with_capacity(batch_rows.min(height) * (stride + 1));
        for start in (0..height).step_by(batch_rows) {
            filter_batch(&mut scratch, start, &mut batch);
            z.write_data(&batch).map_err(ioerr)?;
        }
        return z.finish().map(drop).map_err(ioerr);
    }

    // Three buffers circulate: one being filtered, one queued, one being compressed.
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(1);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..3 {
        empty_tx
            .send(Vec::with_capacity(batch_rows * (stride + 1)))
            .expect("the receiver is alive");
    }
    let written = std::thread::scope(|s| {
        s.spawn(move || {
            let mut scratch = FilterScratch::new(stride);
            for start in (0..height).step_by(batch_rows) {
                // Either channel closes only when the compressor stopped early.
                let Ok(mut batch) = empty_rx.recv() else {
                    return;
                };
                filter_batch(&mut scratch, start, &mut batch);
                if full_tx.send(batch).is_err() {
                    return;
                }
            }
        });
        for batch in full_rx {
            z.write_data(&batch)?;
            // The filter thread may already have stopped; the buffer is then simply dropped.
            let _ = empty_tx.send(batch);
        }
        Ok::<(), std::io::Error>(())
    });
    written.map_err(ioerr)?;
    z.finish().map(drop).map_err(ioerr)
}

/// The two zlib header bytes (CMF, FLG) for a 32 KiB window at `level`.
fn zlib_header(level: u8) -> [u8; 2] {
    let flevel: u16 = match level {
        0 | 1 => 0,
        2..=5 => 1,
        6 => 2,
        _ => 3,
    };
    let cmf: u16 = 0x78;
    let mut flg = flevel << 6;
    flg += 31 - ((cmf << 8) + flg) % 31;
    [cmf as u8, flg as u8]
}

/// Filter rows `start..end` and deflate them (raw deflate, no zlib framing). The stream is
/// primed with the filtered bytes before `start` and ends with a sync flush, or with the final
/// block when `last`. Returns the deflate bytes and the Adler-32 and length of the filtered
/// bytes.
/// One deflated row chunk: compressed bytes, its Adler-32, and the uncompressed length.
type DeflatedChunk = (Vec<u8>, u32, usize);

fn deflate_rows(
    buf: &[u8],
    stride: usize,
    bpp: usize,
    start: usize,
    end: usize,
    level: u8,
    last: bool,
) -> Result<DeflatedChunk, ImagingError> {
    let zerr = |e: flate2::CompressError| encode_error("png", e);
    let row = |y: usize| &buf[y * stride..(y + 1) * stride];
    let zero = vec![0u8; stride];
    let prior = |y: usize| if y == 0 { zero.as_slice() } else { row(y - 1) };
    let mut scratch = FilterScratch::new(stride);

    let mut z = Compress::new(Compression::new(u32::from(level)), false);
    if start > 0 {
        // The same bytes the previous chunk ends with: filtering is a function of a row and
        // the one above it, so the tail is recomputed here rather than waited for.
        let rows_back = DEFLATE_WINDOW.div_ceil(stride + 1).min(start);
        let mut dict = Vec::with_capacity(rows_back * (stride + 1));
        for y in start - rows_back..start {
            scratch.filter_into(row(y), prior(y), bpp, &mut dict);
        }
        let from = dict.len().saturating_sub(DEFLATE_WINDOW);
        z.set_dictionary(&dict[from..]).map_err(zerr)?;
    }

    // Filter a batch of rows at a time and feed it through, so the filtered copy of the
    // image never exists in full.
    let batch_rows = (256 * 1024 / (stride + 1)).max(1);
    let raw_len = (end - start) * (stride + 1);
    let mut out = Vec::with_capacity(raw_len / 2 + 4096);
    let mut adler = simd_adler32::Adler32::new();
    let mut filtered = Vec::with_capacity(batch_rows.min(end - start) * (stride + 1));
    let mut y = start;
    while y < end {
        filtered.clear();
        let batch_end = (y + batch_rows).min(end);
        for yy in y..batch_end {
            scratch.filter_into(row(yy), prior(yy), bpp, &mut filtered);
        }
        adler.write(&filtered);
        compress_all(&mut z, &filtered, &mut out, FlushCompress::None).map_err(zerr)?;
        y = batch_end;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    compress_all(&mut z, &[], &mut out, flush).map_err(zerr)?;
    Ok((out, adler.finish(), raw_len))
}

/// Run `z` over all of `input` with `flush`, growing `out` as needed, until the input is
/// consumed and (for a flush) the flushed output is complete.
fn compress_all(
    z: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> Result<(), flate2::CompressError> {
    loop {
        if out.capacity() - out.len() < 64 * 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before_in = z.total_in();
        let status = z.compress_vec(input, out, flush)?;
        let used = usize::try_from(z.total_in() - before_in).expect("consumed fits in memory");
        input = &input[used..];
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(()),
            // Input consumed and deflate stopped with room to spare: everything (including
            // a requested sync flush) is out. `Finish` only ends at `StreamEnd`.
            Status::Ok | Status::BufError
                if input.is_empty() && room_left && !matches!(flush, FlushCompress::Finish) =>
            {
                return Ok(());
            }
            Status::Ok | Status::BufError => {}
        }
    }
}

/// Per-row adaptive filter selection: try all five PNG filters and keep the one whose output
/// has the smallest sum of absolute values (read as signed bytes), the heuristic the PNG
/// specification recommends and libpng and Pillow use.
struct FilterScratch {
    candidates: [Vec<u8>; 5],
}

impl FilterScratch {
    fn new(stride: usize) -> Self {
        Self {
            candidates: std::array::from_fn(|_| vec![0u8; stride]),
        }
    }

    fn filter_into(&mut self, cur: &[u8], prev: &[u8], bpp: usize, out: &mut Vec<u8>) {
        let [none, sub, up, avg, paeth] = &mut self.candidates;
        none.copy_from_slice(cur);
        filter_sub(cur, bpp, sub);
        filter_up(cur, prev, up);
        filter_avg(cur, prev, bpp, avg);
        filter_paeth(cur, prev, bpp, paeth);
        let mut best = 0;
        let mut best_score = u64::MAX;
        for (i, c) in self.candidates.iter().enumerate() {
            let score = abs_sum(c);
            if score < best_score {
                best = i;
                best_score = score;
            }
        }
        out.push(best as u8);
        out.extend_from_slice(&self.candidates[best]);
    }
}

fn abs_sum(v: &[u8]) -> u64 {
    // Per 64-byte block in u32 so the loop vectorises; blocks cannot overflow.
    v.chunks(64)
        .map(|c| {
            u64::from(
                c.iter()
                    .map(|&b| u32::from((b as i8).unsigned_abs()))
                    .sum::<u32>(),
            )
        })
        .sum()
}

fn filter_sub(cur: &[u8], bpp: usize, out: &mut [u8]) {
    out[..bpp].copy_from_slice(&cur[..bpp]);
    for ((o, &c), &a) in out[bpp..].iter_mut().zip(&cur[bpp..]).zip(cur) {
        *o = c.wrapping_sub(a);
    }
}

fn filter_up(cur: &[u8], prev: &[u8], out: &mut [u8]) {
    for ((o, &c), &b) in out.iter_mut().zip(cur).zip(prev) {
        *o = c.wrapping_sub(b);
    }
}

fn filter_avg(cur: &[u8], prev: &[u8], bpp: usize, out: &mut [u8]) {
    for i in 0..bpp {
        out[i] = cur[i].wrapping_sub(prev[i] >> 1);
    }
    let n = cur.len();
    for (((o, &c), &a), &b) in out[bpp..n]
        .iter_mut()
        .zip(&cur[bpp..])
        .zip(&cur[..n - bpp])
        .zip(&prev[bpp..])
    {
        *o = c.wrapping_sub(((u16::from(a) + u16::from(b)) >> 1) as u8);
    }
}

fn filter_paeth(cur: &[u8], prev: &[u8], bpp: usize, out: &mut [u8]) {
    for i in 0..bpp {
        // a = c = 0, so the predictor is b.
        out[i] = cur[i].wrapping_sub(prev[i]);
    }
    let n = cur.len();
    for ((((o, &x), &a), &b), &c) in out[bpp..n]
        .iter_mut()
        .zip(&cur[bpp..])
        .zip(&cur[..n - bpp])
        .zip(&prev[bpp..])
        .zip(&prev[..n - bpp])
    {
        *o = x.wrapping_sub(paeth(a, b, c));
    }
}

#[inline]
fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let (ia, ib, ic) = (i16::from(a), i16::from(b), i16::from(c));
    let p = ia + ib - ic;
    let (pa, pb, pc) = ((p - ia).abs(), (p - ib).abs(), (p - ic).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Adler-32 of `A ++ B` from the checksums of `A` and `B` and the length of `B` (zlib's
/// `adler32_combine`).
fn adler32_combine(a: u32, b: u32, len_b: usize) -> u32 {
    const BASE: u64 = 65521;
    let rem = (len_b as u64) % BASE;
    let (a1, a2) = (u64::from(a & 0xffff), u64::from(a >> 16));
    let (b1, b2) = (u64::from(b & 0xffff), u64::from(b >> 16));
    let s1 = (a1 + b1 + BASE - 1) % BASE;
    let s2 = (rem * a1 + a2 + b2 + BASE - rem) % BASE;
    (s1 | (s2 << 16)) as u32
}

// --- JPEG -----------------------------------------------------------------------------------

/// Below this many pixel rows, one JPEG scan on one core is as fast as splitting.
const JPEG_PARALLEL_MIN_ROWS: usize = 256;

/// JPEG strips per core: small enough that a core has several to share out, and that
/// verification (which decodes them as pieces, see verify's `decode_jpeg`) and the streamed
/// PNG -> JPEG path ([`crate::png_to_jpeg`]) hold a few strips in memory rather than a frame.
pub(crate) const JPEG_STRIPS_PER_CORE: usize = 8;

fn encode_jpeg(
    img: &DynamicImage,
    quality: u8,
    subsampling: JpegSubsampling,
) -> Result<Vec<u8>, ImagingError> {
    let converted;
    let (data, channels): (&[u8], usize) = match img {
        DynamicImage::ImageRgb8(b) => (b.as_raw(), 3),
        // The alpha channel is ignored by the encoder: JPEG has none.
        DynamicImage::ImageRgba8(b) => (b.as_raw(), 4),
        _ => {
            converted = img.to_rgb8();
            (converted.as_raw(), 3)
        }
    };
    let plan = JpegPlan::new(img.width(), img.height(), channels, quality, subsampling)?;
    if !plan.split() {
        return plan.encode_strip(&mut StripState::default(), data, (0, plan.rows));
    }
    let parts = plan
        .strips()
        .par_iter()
        .map_init(StripState::default, |state, &strip| {
            plan.encode_strip(state, plan.pixels(data, strip), strip)
        })
        .collect::<Result<Vec<_>, _>>()?;
    plan.join(&parts)
}

/// An encoder's state kept from one strip to the next on a core: libjpeg-turbo's compressor,
/// and its output buffer at the worst-case size, so that every strip on a core is written
/// into the same memory (left to grow on its own, libjpeg-turbo allocates and copies a
/// fresh buffer per strip, and a fresh page costs more than the bytes written into it).
#[cfg(feature = "turbojpeg")]
#[derive(Default)]
pub(crate) struct StripState {
    compressor: Option<turbojpeg::Compressor>,
    out: Vec<u8>,
}
/// An encoder's state kept from one strip to the next on a core (none for jpeg-encoder).
#[cfg(not(feature = "turbojpeg"))]
pub(crate) type StripState = ();

/// How a JPEG is cut into strips of whole MCU rows, encoded strip by strip (on every core at
/// once) and joined into one scan with a restart marker between strips, so that each strip's
/// entropy-coded data is exactly what one encoder would have written for those rows after a
/// restart: the pixels decode identically to a single scan, and verification can decode the
/// strips on separate cores again (`jpeg_scan::split_rows`). The same plan serves a frame in
/// memory ([`encode_jpeg`]) and rows as a PNG decodes ([`crate::png_to_jpeg`]), so both
/// write the same bytes.
///
/// jpeg-encoder restarts at every MCU row of a strip (the join renumbers its markers), about
/// two bytes per MCU row; libjpeg-turbo writes no restart markers of its own, so its restart
/// interval is one strip (a DRI segment added by the join), at most 65535 MCUs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JpegPlan {
    quality: u8,
    sampling: jpeg_encoder::SamplingFactor,
    width: u16,
    height: u16,
    /// 3 (RGB) or 4 (RGBA, alpha ignored).
    channels: usize,
    mcu_h: usize,
    mcu_cols: usize,
    /// Pixel rows.
    pub rows: usize,
    /// MCU rows per strip (0: one scan, no strips).
    per_strip: usize,
}

impl JpegPlan {
    /// The plan for a `width` x `height` frame of `channels` (3 or 4) bytes per pixel on this
    /// rayon pool.
    pub(crate) fn new(
        width: u32,
        height: u32,
        channels: usize,
        quality: u8,
        subsampling: JpegSubsampling,
    ) -> Result<Self, ImagingError> {
        use jpeg_encoder::SamplingFactor;
        let too_big = || {
            encode_error(
                "jpeg",
                format!("{width}x{height} is outside JPEG's 1-65535 pixels per side; resize first"),
            )
        };
        let w16 = u16::try_from(width).ok().filter(|&v| v > 0).ok_or_else(too_big)?;
        let h16 = u16::try_from(height)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(too_big)?;
        let (sampling, mcu_w, mcu_h) = match subsampling {
            JpegSubsampling::Auto if quality < 90 => (SamplingFactor::F_2_2, 16, 16),
            JpegSubsampling::Auto | JpegSubsampling::Full => (SamplingFactor::F_1_1, 8, 8),
            JpegSubsampling::Half => (SamplingFactor::F_2_2, 16, 16),
        };
        let threads = rayon::current_num_threads();
        let rows = usize::from(h16);
        let mcu_rows = rows.div_ceil(mcu_h);
        let mcu_cols = usize::from(w16).div_ceil(mcu_w);
        let per_strip = if threads >= 2 && rows >= JPEG_PARALLEL_MIN_ROWS {
            mcu_rows
                .div_ceil(threads * JPEG_STRIPS_PER_CORE)
                .min(usize::from(u16::MAX) / mcu_cols)
                .max(1)
        } else {
            0
        };
        Ok(Self {
            quality,
            sampling,
            width: w16,
            height: h16,
            channels,
            mcu_h,
            mcu_cols,
            rows,
            per_strip,
        })
    }

    /// Whether the frame is cut into strips (else it is one scan, encoded whole).
    pub(crate) fn split(&self) -> bool {
        self.per_strip > 0
    }

    /// Bytes per pixel row.
    pub(crate) fn row_bytes(&self) -> usize {
        usize::from(self.width) * self.channels
    }

    /// The strips, as pixel rows `(top, bottom)`.
    pub(crate) fn strips(&self) -> Vec<(usize, usize)> {
        if !self.split() {
            return vec![(0, self.rows)];
        }
        (0..self.rows.div_ceil(self.mcu_h))
            .step_by(self.per_strip)
            .map(|first| {
                (
                    first * self.mcu_h,
                    ((first + self.per_strip) * self.mcu_h).min(self.rows),
                )
            })
            .collect()
    }

    /// A strip's pixels in a whole frame.
    pub(crate) fn pixels<'a>(&self, frame: &'a [u8], (top, bottom): (usize, usize)) -> &'a [u8] {
        &frame[top * self.row_bytes()..bottom * self.row_bytes()]
    }

    /// Encode one strip (`pixels` are its rows) as a JPEG of its own; a split plan's strips
    /// restart as the join expects.
    pub(crate) fn encode_strip(
        &self,
        state: &mut StripState,
        pixels: &[u8],
        (top, bottom): (usize, usize),
    ) -> Result<Vec<u8>, ImagingError> {
        let height = u16::try_from(bottom - top).map_err(|_| encode_error("jpeg", "strip too tall"))?;
        #[cfg(feature = "turbojpeg")]
        {
            let half = self.sampling == jpeg_encoder::SamplingFactor::F_2_2;
            encode_jpeg_turbo(
                state,
                pixels,
                u32::from(self.width),
                usize::from(height),
                self.channels,
                self.quality,
                half,
            )
        }
        #[cfg(not(feature = "turbojpeg"))]
        {
            let () = *state;
            let mut out = Vec::with_capacity(pixels.len() / 8);
            let mut enc = jpeg_encoder::Encoder::new(&mut out, self.quality);
            enc.set_sampling_factor(self.sampling);
            if self.split() {
                let interval = u16::try_from(self.mcu_cols).map_err(|_| encode_error("jpeg", "too wide"))?;
                enc.set_restart_interval(interval);
            }
            let color = if self.channels == 4 {
                jpeg_encoder::ColorType::Rgba
            } else {
                jpeg_encoder::ColorType::Rgb
            };
            enc.encode(pixels, self.width, height, color)
                .map_err(|e| encode_error("jpeg", e))?;
            Ok(out)
        }
    }

    /// Join the strips' JPEGs, in order, into one.
    pub(crate) fn join(&self, parts: &[Vec<u8>]) -> Result<Vec<u8>, ImagingError> {
        let strips = self.strips();
        let firsts: Vec<usize> = if cfg!(feature = "turbojpeg") {
            (0..strips.len()).collect()
        } else {
            strips.iter().map(|&(top, _)| top / self.mcu_h).collect()
        };
        join_jpeg_strips(parts, &firsts, self.height, self.added_restart_interval()?)
    }

    /// One strip's JPEG (`part`, of pixel rows `top..bottom`) as the verifier cuts it out of
    /// the joined file (`verify::jpeg_pieces`): the joined file's headers with the strip's
    /// height, its scan data with markers numbered from RST0, EOI. A split plan's strips are
    /// exactly the verifier's pieces, so the streamed path can decode each piece as soon as
    /// its strip is encoded (see `verify::DecodedPieces`).
    pub(crate) fn piece(&self, part: &[u8], (top, bottom): (usize, usize)) -> Result<Vec<u8>, ImagingError> {
        let height = u16::try_from(bottom - top).map_err(|_| encode_error("jpeg", "strip too tall"))?;
        join_jpeg_strips(
            std::slice::from_ref(&part),
            &[0],
            height,
            self.added_restart_interval()?,
        )
    }

    /// The DRI segment's interval the join adds: libjpeg-turbo's strips carry none (one
    /// interval per strip), jpeg-encoder's their own.
    fn added_restart_interval(&self) -> Result<Option<u16>, ImagingError> {
        if cfg!(feature = "turbojpeg") {
            u16::try_from(self.per_strip * self.mcu_cols)
                .map(Some)
                .map_err(|_| encode_error("jpeg", "restart interval over 65535 MCUs"))
        } else {
            Ok(None)
        }
    }
}

/// libjpeg-turbo (the `turbojpeg` feature): one scan, baseline, the standard tables scaled to
/// `quality`, as `vips jpegsave` and `cjpeg` write it. The state's compressor is made on
/// first use and kept for the next strip, with its output buffer.
#[cfg(feature = "turbojpeg")]
fn encode_jpeg_turbo(
    state: &mut StripState,
    data: &[u8],
    width: u32,
    height: usize,
    channels: usize,
    quality: u8,
    half_chroma: bool,
) -> Result<Vec<u8>, ImagingError> {
    let err = |e: turbojpeg::Error| encode_error("jpeg", format!("libjpeg-turbo: {e}"));
    let c = match &mut state.compressor {
        Some(c) => c,
        None => state
            .compressor
            .insert(turbojpeg::Compressor::new().map_err(err)?),
    };
    c.set_quality(i32::from(quality)).map_err(err)?;
    c.set_subsamp(if half_chroma {
        turbojpeg::Subsamp::Sub2x2
    } else {
        turbojpeg::Subsamp::None
    })
    .map_err(err)?;
    let width = width as usize;
    let image = turbojpeg::Image {
        pixels: data,
        width,
        pitch: width * channels,
        height,
        // RGBX: the fourth byte (alpha) is skipped; JPEG has no alpha.
        format: if channels == 4 {
            turbojpeg::PixelFormat::RGBX
        } else {
            turbojpeg::PixelFormat::RGB
        },
    };
    let bound = c.buf_len(width, height).map_err(err)?;
    if state.out.len() < bound {
        // Zeroed by the allocator (fresh pages), not written here: only the pages the
        // encoder writes are ever touched.
        state.out = vec![0; bound];
    }
    let len = c.compress_to_slice(image, &mut state.out).map_err(err)?;
    Ok(state.out[..len].to_vec())
}

/// Join strips, each a baseline JPEG of whole MCU rows that starts at a restart, into one
/// scan: the first strip's headers with the whole height (and a DRI segment for
/// `add_restart_interval` when the strips carry none), every strip's scan data in order with a
/// restart marker between strips, and one EOI. `firsts[i]` is the number of restart intervals
/// before strip `i`: its own markers RSTk become RST(k + firsts[i] mod 8), so the numbers run
/// RST0..RST7 repeating through the file.
fn join_jpeg_strips(
    parts: &[impl AsRef<[u8]>],
    firsts: &[usize],
    height: u16,
    add_restart_interval: Option<u16>,
) -> Result<Vec<u8>, ImagingError> {
    let broken = || encode_error("jpeg", "a strip is not the baseline JPEG the join expects");
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.as_ref().len()).sum::<usize>() + 8);
    for (i, (part, &first)) in parts.iter().zip(firsts).enumerate() {
        let part = part.as_ref();
        let layout = jpeg_scan::layout(part).ok_or_else(broken)?;
        let end = part
            .len()
            .checked_sub(2)
            .filter(|&e| e >= layout.scan)
            .ok_or_else(broken)?;
        if part[end..] != [0xFF, 0xD9] {
            return Err(broken());
        }
        if i == 0 {
            out.extend_from_slice(&part[..layout.sos]);
            out[layout.sof_height..layout.sof_height + 2].copy_from_slice(&height.to_be_bytes());
            if let Some(interval) = add_restart_interval {
                out.extend_from_slice(&jpeg_scan::dri(interval));
            }
            out.extend_from_slice(&part[layout.sos..layout.scan]);
        } else {
            // The restart that ends the previous strip.
            out.extend_from_slice(&jpeg_scan::rst(first - 1));
        }
        jpeg_scan::push_renumbered(&mut out, &part[layout.scan..end], first);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

// --- WebP -----------------------------------------------------------------------------------

fn encode_webp(
    img: &DynamicImage,
    lossy_quality: Option<u8>,
    options: &EncodeOptions,
) -> Result<Vec<u8>, ImagingError> {
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 || w > 16383 || h > 16383 {
        return Err(encode_error(
            "webp",
            format!("{w}x{h} is outside WebP's 1-16383 pixels per side; resize first"),
        ));
    }
    let converted;
    let encoder = match img {
        DynamicImage::ImageRgb8(b) => webp::Encoder::from_rgb(b.as_raw(), w, h),
        DynamicImage::ImageRgba8(b) => webp::Encoder::from_rgba(b.as_raw(), w, h),
        _ if img.color().has_alpha() => {
            converted = img.to_rgba8().into_raw();
            webp::Encoder::from_rgba(&converted, w, h)
        }
        _ => {
            converted = img.to_rgb8().into_raw();
            webp::Encoder::from_rgb(&converted, w, h)
        }
    };
    let mut config = webp::WebPConfig::new()
        .map_err(|()| encode_error("webp", "libwebp rejected its own default configuration"))?;
    match lossy_quality {
        Some(q) => {
            config.lossless = 0;
            config.quality = f32::from(q);
            config.method = i32::from(options.webp_method.unwrap_or(WEBP_LOSSY_METHOD).min(6));
            config.alpha_compression = 1;
        }
        None => {
            config.lossless = 1;
            config.quality = f32::from(
                options
                    .webp_lossless_effort
                    .unwrap_or(WEBP_LOSSLESS_QUALITY)
                    .min(100),
            );
            config.method = i32::from(options.webp_method.unwrap_or(WEBP_LOSSLESS_METHOD).min(6));
            // Keep the colour under fully transparent pixels, so lossless means lossless.
            config.exact = 1;
        }
    }
    // libwebp's own threads: for lossy, the analysis pass and the alpha plane run beside the
    // main encode; for lossless, candidate configurations are tried in parallel. The bytes
    // are the same as with one thread.
    config.thread_level = 1;
    let mem = encoder
        .encode_advanced(&config)
        .map_err(|e| encode_error("webp", format!("libwebp: {e:?}")))?;
    if mem.is_empty() {
        return Err(encode_error("webp", "libwebp returned no data"));
    }
    let mut out = Vec::with_capacity(mem.len());
    out.write_all(&mem).expect("writing to a Vec cannot fail");
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::{ExtendedColorType, Rgb, RgbImage, RgbaImage};

    pub(crate) fn sample() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| {
            Rgb([(x * 4) as u8, (y * 5) as u8, 128])
        }))
    }

    /// Smooth gradients plus deterministic noise: compressible, but not trivially.
    pub(crate) fn photo(w: u32, h: u32) -> RgbImage {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        RgbImage::from_fn(w, h, |x, y| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let n = (s % 9) as u8;
            Rgb([
                ((x / 3 + y / 5) as u8).wrapping_add(n),
                ((x * y / 97) as u8).wrapping_add(n / 2),
                (200 - (y % 150) as u8).wrapping_add(n),
            ])
        })
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

    #[test]
    fn parallel_png_is_lossless_at_every_level_and_colour_type() {
        // 700x400 RGB is 840 KB of pixels: above the threshold, so it is split into chunks.
        let rgb = photo(700, 400);
        let rgba = RgbaImage::from_fn(700, 400, |x, y| {
            let p = rgb.get_pixel(x, y).0;
            image::Rgba([p[0], p[1], p[2], ((x + y) % 256) as u8])
        });
        let images = [
            DynamicImage::ImageRgb8(rgb.clone()),
            DynamicImage::ImageRgba8(rgba),
            DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(rgb.clone()).to_luma8()),
            DynamicImage::ImageLumaA8(DynamicImage::ImageRgb8(rgb).to_luma_alpha8()),
            DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(70, 9, |x, y| {
                Rgb([(x * 900) as u16, (y * 7000) as u16, (x * y * 31) as u16])
            })),
        ];
        for img in &images {
            for level in [PngLevel::Fast, PngLevel::Default, PngLevel::Best] {
                let bytes = encode_with(img, OutputFormat::Png, None, level).unwrap();
                let back = image::load_from_memory(&bytes).unwrap();
                assert_eq!(back.color(), img.color(), "{level:?}");
                assert_eq!(back.as_bytes(), img.as_bytes(), "{level:?} {:?}", img.color());
                let report = crate::verify::verify_bytes(&bytes, &crate::verify::Expect::default());
                assert!(report.ok, "{level:?} {:?}: {report:?}", img.color());
            }
            for z in [0, 1, 6] {
                let opts = EncodeOptions::default().with_png_zlib_level(z);
                let bytes = encode_with_options(img, OutputFormat::Png, None, &opts).unwrap();
                let back = image::load_from_memory(&bytes).unwrap();
                assert_eq!(back.as_bytes(), img.as_bytes(), "zlib {z} {:?}", img.color());
            }
        }
    }

    #[test]
    fn png_levels_order_sizes() {
        let img = DynamicImage::ImageRgb8(photo(800, 600));
        let size = |l| encode_with(&img, OutputFormat::Png, None, l).unwrap().len();
        let (fast, default, best) = (
            size(PngLevel::Fast),
            size(PngLevel::Default),
            size(PngLevel::Best),
        );
        assert!(best <= default && default < fast, "{best} {default} {fast}");
    }

    #[test]
    fn parallel_png_stays_close_to_a_single_stream() {
        // The same rows as one zlib stream on one core (image-rs, same level and filter
        // heuristic); splitting costs a few bytes per chunk, not a percent.
        let img = DynamicImage::ImageRgb8(photo(1024, 768));
        let ours = encode(&img, OutputFormat::Png, None).unwrap().len();
        let mut single = Vec::new();
        PngEncoder::new_with_quality(&mut single, CompressionType::Default, FilterType::Adaptive)
            .write_image(img.as_bytes(), 1024, 768, ExtendedColorType::Rgb8)
            .unwrap();
        assert!(
            (ours as f64) < single.len() as f64 * 1.02,
            "{ours} vs {}",
            single.len()
        );
    }

    #[test]
    fn tiny_and_one_row_pngs_round_trip() {
        for (w, h) in [(1, 1), (1, 300), (5000, 1), (3, 2)] {
            let img = DynamicImage::ImageRgb8(photo(w, h));
            for level in [PngLevel::Fast, PngLevel::Default] {
                let bytes = encode_with(&img, OutputFormat::Png, None, level).unwrap();
                let back = image::load_from_memory(&bytes).unwrap();
                assert_eq!(back.as_bytes(), img.as_bytes(), "{w}x{h} {level:?}");
            }
        }
        let empty = DynamicImage::ImageRgb8(RgbImage::new(0, 5));
        assert!(encode(&empty, OutputFormat::Png, None).is_err());
    }

    #[test]
    fn fast_png_is_the_same_with_and_without_a_filter_thread() {
        // On one core the rows are filtered and compressed in turn; on more, a second thread
        // filters. The batches are the same, so the bytes must be.
        let img = DynamicImage::ImageRgb8(photo(900, 700));
        let fast = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| encode_with(&img, OutputFormat::Png, None, PngLevel::Fast).unwrap())
        };
        let (one, two) = (fast(1), fast(2));
        assert_eq!(one, two);
        let back = image::load_from_memory(&two).unwrap();
        assert_eq!(back.as_bytes(), img.as_bytes());
    }

    #[test]
    fn idat_writer_frames_full_chunks_with_their_crcs() {
        let data: Vec<u8> = (0..IDAT_MAX * 5 / 2).map(|i| (i * 7 % 251) as u8).collect();
        let (tap, tapped) = mpsc::channel();
        let mut w = IdatWriter::new(b"head".to_vec(), Some(tap));
        for piece in data.chunks(12_345) {
            w.append(piece);
        }
        let png = w.finish();
        assert_eq!(&png[..4], b"head");
        let (mut at, mut joined, mut lens, mut ends) = (4, Vec::new(), Vec::new(), Vec::new());
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let body = &png[at + 8..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32fast::hash(&png[at + 4..at + 8 + len]));
            at += 12 + len;
            ends.push(at);
            if kind == b"IEND" {
                assert_eq!(len, 0);
                break;
            }
            assert_eq!(kind, b"IDAT");
            joined.extend_from_slice(body);
            lens.push(len);
        }
        assert_eq!(at, png.len(), "IEND ends the file");
        assert_eq!(lens, [IDAT_MAX, IDAT_MAX, IDAT_MAX / 2]);
        assert_eq!(joined, data);
        // The tap had every byte, in order, in pieces that end where chunks end.
        let mut seen = 0;
        let mut sent = Vec::new();
        for piece in tapped.try_iter() {
            seen += piece.len();
            assert!(ends.contains(&seen), "a piece ends inside a chunk, at {seen}");
            sent.extend_from_slice(&piece);
        }
        assert_eq!(sent, png);
    }

    #[test]
    fn adler_combine_matches_a_direct_checksum() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = simd_adler32::adler32(&data.as_slice());
        for split in [0, 1, 65_521, 100_000, 200_000] {
            let (a, b) = data.split_at(split);
            let combined = adler32_combine(simd_adler32::adler32(&a), simd_adler32::adler32(&b), b.len());
            assert_eq!(combined, whole, "split at {split}");
        }
    }

    #[test]
    fn parallel_jpeg_strips_decode_like_one_scan() {
        // Odd sizes, both subsamplings and three strips, so strip boundaries fall on restart
        // numbers that are not multiples of eight and the last MCU row is partial.
        let img = DynamicImage::ImageRgb8(photo(1001, 517));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for (quality, subsampling) in [(80, JpegSubsampling::Auto), (95, JpegSubsampling::Auto)] {
            let joined = pool.install(|| encode_jpeg(&img, quality, subsampling)).unwrap();
            let single = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| encode_jpeg(&img, quality, subsampling))
                .unwrap();
            assert_ne!(joined, single, "the parallel path ran");
            let a = image::load_from_memory(&joined).unwrap().to_rgb8();
            let b = image::load_from_memory(&single).unwrap().to_rgb8();
            assert_eq!(a.dimensions(), (1001, 517));
            assert!(a == b, "q{quality}: the joined strips decode to other pixels");
            // A restart per MCU row costs a few bytes a row, not more.
            let rows = if quality < 90 {
                517usize.div_ceil(16)
            } else {
                517usize.div_ceil(8)
            };
            assert!(
                joined.len() <= single.len() + rows * 4,
                "{} vs {}",
                joined.len(),
                single.len()
            );
            // The markers are in order, RST0..RST7 repeating: jpeg-encoder's one per MCU row
            // boundary, libjpeg-turbo's strips one between strips.
            let scan = jpeg_scan::layout(&joined).unwrap().scan;
            let rows = if cfg!(feature = "turbojpeg") {
                rows.div_ceil(rows.div_ceil(3 * JPEG_STRIPS_PER_CORE))
            } else {
                rows
            };
            let markers: Vec<u8> = joined[scan..]
                .windows(2)
                .filter(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
                .map(|w| w[1] - 0xD0)
                .collect();
            assert_eq!(markers.len(), rows - 1);
            assert!(markers.iter().enumerate().all(|(i, &m)| usize::from(m) == i % 8));
        }
    }

    #[test]
    fn jpeg_subsampling_options_decode_and_half_is_smaller() {
        let img = DynamicImage::ImageRgb8(photo(256, 128));
        let full = encode_with_options(
            &img,
            OutputFormat::Jpeg,
            Some(90),
            &EncodeOptions::default().with_jpeg_subsampling(JpegSubsampling::Full),
        )
        .unwrap();
        let half = encode_with_options(
            &img,
            OutputFormat::Jpeg,
            Some(90),
            &EncodeOptions::default().with_jpeg_subsampling(JpegSubsampling::Half),
        )
        .unwrap();
        for bytes in [&full, &half] {
            let back = image::load_from_memory(bytes).unwrap();
            assert_eq!((back.width(), back.height()), (256, 128));
            let report = crate::verify::verify_bytes(bytes, &crate::verify::Expect::default());
            assert!(report.ok, "{report:?}");
        }
        assert!(half.len() < full.len());
        // JPEG from an RGBA frame drops the alpha channel and still decodes.
        let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
        let back = image::load_from_memory(&encode(&rgba, OutputFormat::Jpeg, Some(80)).unwrap()).unwrap();
        assert!(!back.color().has_alpha());
    }

    #[test]
    fn webp_lossless_is_exact_at_every_method_and_keeps_alpha() {
        let rgba = RgbaImage::from_fn(96, 64, |x, y| {
            image::Rgba([
                (x * 2) as u8,
                (y * 3) as u8,
                ((x ^ y) * 5) as u8,
                (x * 2 + 40) as u8,
            ])
        });
        let img = DynamicImage::ImageRgba8(rgba);
        for method in [0, WEBP_LOSSLESS_METHOD, 6] {
            let opts = EncodeOptions::default().with_webp_method(method);
            let bytes = encode_with_options(&img, OutputFormat::Webp, None, &opts).unwrap();
            let back = image::load_from_memory(&bytes).unwrap();
            assert!(back.color().has_alpha());
            assert_eq!(back.to_rgba8().as_raw(), img.as_bytes(), "method {method}");
            assert!(
                crate::verify::verify_bytes(&bytes, &crate::verify::Expect::default()).ok,
                "method {method}"
            );
        }
        let lossy = encode(&img, OutputFormat::Webp, Some(80)).unwrap();
        assert!(image::load_from_memory(&lossy).unwrap().color().has_alpha());
    }

    #[test]
    fn webp_lossless_effort_orders_sizes() {
        let img = DynamicImage::ImageRgb8(photo(300, 200));
        let size = |effort: u8, method: u8| {
            let opts = EncodeOptions::default()
                .with_webp_lossless_effort(effort)
                .with_webp_method(method);
            encode_with_options(&img, OutputFormat::Webp, None, &opts)
                .unwrap()
                .len()
        };
        assert!(size(100, 6) <= size(0, 0));
    }
}
