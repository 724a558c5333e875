//! Full verification: decode the whole file under limits to prove it is intact, then compare
//! what it is with what was asked for.
//!
//! A probe only reads headers, and a response cut off mid-transfer has a perfect header. So
//! every image is decoded in full before it is called good. PNG, the API's default and the
//! largest output, is decoded row by row into one reused row buffer (the `png` crate's
//! `next_row`), which keeps the extra memory to a few rows instead of a whole frame and costs
//! about one ordinary decode. The SHA-256 of the bytes is computed on a second thread meanwhile.
//!
//! A JPEG's pixels are needed only for a thumbnail. Otherwise its scan is decoded code by code
//! (the entropy check, `jpeg_entropy`: every Huffman code of every block, under rules at
//! least as strict as the decoder's) without the inverse DCT and colour conversion, which
//! cannot fail; whatever that check does not prove is decoded by zune-jpeg in strict mode,
//! whose verdict and message stand. So the verdict is the strict decoder's, at about half the
//! cost.
//!
//! A file this process is making can be verified while it is made, with the same decoders and
//! checks, and the save then skips what was already decoded ([`DecodedPieces`]): the JPEG
//! pieces [`crate::png_to_jpeg`] decodes as it encodes them, and a whole PNG that
//! [`crate::encode_verified`] decodes as it is written (known by its SHA-256, so the save
//! only hashes it).

use std::fmt;
use std::fs;
use std::io::{self, BufRead, Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use fourk_api::{OutputFormat, Size};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::alpha::row_has_transparency;
use crate::error::ImagingError;
use crate::probe::{Probe, png_error, png_has_alpha, png_limits, png_probe, probe_bytes};
use crate::shrink::{RowLayout, RowShrinker, Thumbnail, shrink_frame};

/// The largest width or height that is decoded. The API's largest edge is far below this;
/// anything bigger is hostile or broken, and would need gigabytes to decode.
pub const MAX_DIMENSION: u32 = 16_384;

/// The most memory a decoder may allocate for a frame: enough for an RGBA8 frame at
/// [`MAX_DIMENSION`] squared, so the dimension limit is the one that bites (libwebp, which
/// decodes WebP, allocates one frame for the dimensions already checked against the pixel
/// budget). PNG decoding is streamed and needs only a few rows.
pub const MAX_ALLOC: u64 = MAX_DIMENSION as u64 * MAX_DIMENSION as u64 * 4;

/// Below this size hashing on a second thread costs more than it saves.
const PARALLEL_HASH_MIN_BYTES: usize = 1 << 20;

/// What the image should be. `None` fields are not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Format, compared with the magic bytes.
    pub format: Option<OutputFormat>,
    /// `Some(true)`: there must be an alpha channel and at least one pixel with alpha below the
    /// maximum. `Some(false)`: no pixel may be transparent (an alpha channel that is opaque
    /// everywhere passes).
    pub alpha: Option<bool>,
    /// Not a check: also make a thumbnail fitting this edge from the pixels decoded to
    /// verify (see [`VerifyReport::thumbnail`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<u32>,
}

impl Expect {
    /// Expect the dimensions of `size`; `auto` leaves them unchecked.
    #[must_use]
    pub fn with_size(mut self, size: Size) -> Self {
        let (width, height) = size.dims().unzip();
        self.width = width;
        self.height = height;
        self
    }

    /// Expect this format.
    #[must_use]
    pub fn with_format(mut self, format: OutputFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// Expect transparent pixels (`true`) or none (`false`).
    #[must_use]
    pub fn with_alpha(mut self, alpha: bool) -> Self {
        self.alpha = Some(alpha);
        self
    }

    /// Also make a thumbnail fitting `edge` x `edge` while decoding (at most about one pass
    /// over the pixels more; no second decode).
    #[must_use]
    pub fn with_thumbnail(mut self, edge: u32) -> Self {
        self.thumbnail = Some(edge);
        self
    }
}

/// Which property a [`Check`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckName {
    /// [`Expect::width`].
    Width,
    /// [`Expect::height`].
    Height,
    /// [`Expect::format`].
    Format,
    /// [`Expect::alpha`].
    Alpha,
}

impl CheckName {
    /// The name as it appears in JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Width => "width",
            Self::Height => "height",
            Self::Format => "format",
            Self::Alpha => "alpha",
        }
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets callers write `check.name == "width"`, as they would against the JSON.
impl PartialEq<&str> for CheckName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One expectation compared with the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was compared.
    pub name: CheckName,
    /// What was asked for.
    pub expected: String,
    /// What the file is (`unknown` when the header could not be read).
    pub actual: String,
    /// Whether they agree.
    pub pass: bool,
}

/// The verdict on one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The header, when it could be read.
    pub probe: Option<Probe>,
    /// Every pixel decoded without error.
    pub intact: bool,
    /// Why decoding failed, when it did.
    pub decode_error: Option<String>,
    /// One entry per expectation that was set.
    pub checks: Vec<Check>,
    /// Intact and every check passed.
    pub ok: bool,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Size of the bytes.
    pub bytes: u64,
    /// The thumbnail [`Expect::thumbnail`] asked for, when every pixel decoded.
    #[serde(skip)]
    pub thumbnail: Option<Thumbnail>,
}

impl VerifyReport {
    /// The checks that failed.
    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.pass)
    }
}

/// Decode `bytes` in full under limits and compare them with `expect`.
///
/// Never fails: a corrupt, truncated, unsupported or oversized image gives a report with
/// `intact == false` and the reason in `decode_error`.
#[must_use]
pub fn verify_bytes(bytes: &[u8], expect: &Expect) -> VerifyReport {
    verify_bytes_decoded(bytes, expect, &DecodedPieces::default())
}

/// [`verify_bytes`] for a JPEG some of whose pieces this process has already checked the same
/// way, as the streamed PNG -> JPEG path does while it encodes ([`crate::png_to_jpeg`]). A
/// restart-marked JPEG is verified in pieces (standalone JPEGs of whole-row runs cut from
/// these bytes); a piece byte-identical to one in `decoded` is not checked again, since the
/// same check of the same bytes has the same outcome. Everything else (the header checks, the
/// hash, every other piece, every other format) is checked from `bytes` as usual, so the
/// report is the one [`verify_bytes`] gives.
///
/// A PNG that [`crate::encode_verified`] decoded while encoding it is one piece, the whole
/// file, known by its SHA-256: when `bytes` hash to it (and the decode looked for what
/// `expect` asks), the report is that decode's, and the only pass over `bytes` is the hash.
#[must_use]
pub fn verify_bytes_decoded(bytes: &[u8], expect: &Expect, decoded: &DecodedPieces) -> VerifyReport {
    let scan = Scan {
        alpha: expect.alpha.is_some(),
        thumbnail: expect.thumbnail,
        decoded,
    };
    if let Some(png) = decoded.png.as_ref().filter(|p| p.scanned_as(scan)) {
        let sha256 = sha256_hex(bytes);
        let inspection = if sha256 == png.sha256 {
            Inspection {
                probe: Some(png.probe.clone()),
                decoded: Ok(png.seen.clone()),
            }
        } else {
            // Not the bytes that were decoded: decode these.
            inspect(bytes, scan)
        };
        return report(bytes.len(), sha256, inspection, expect);
    }
    let (sha256, inspection) = if bytes.len() < PARALLEL_HASH_MIN_BYTES {
        (sha256_hex(bytes), inspect(bytes, scan))
    } else {
        thread::scope(|s| {
            let hasher = s.spawn(|| sha256_hex(bytes));
            let inspection = inspect(bytes, scan);
            let sha256 = hasher
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (sha256, inspection)
        })
    };
    report(bytes.len(), sha256, inspection, expect)
}

/// What of a file (see [`verify_bytes_decoded`]) passed verification's decode in this
/// process. For a JPEG, pieces by their place in the file: piece `i` is the `i`-th standalone
/// JPEG the verifier cuts, byte for byte (made by [`crate::png_to_jpeg`]). For a PNG, the
/// whole file, decoded as it was encoded and known by its SHA-256 (made by
/// [`crate::encode_verified`]). Empty by default.
#[derive(Debug, Default, Clone)]
pub struct DecodedPieces {
    pieces: Vec<Option<Vec<u8>>>,
    png: Option<StreamedPng>,
}

/// A whole PNG decoded while it was written: what the decode found, for the scan it did.
#[derive(Debug, Clone)]
struct StreamedPng {
    /// SHA-256 (lower-case hex) of every byte that arrived.
    sha256: String,
    /// Whether transparency was looked for, and the thumbnail made.
    alpha: bool,
    thumbnail: Option<u32>,
    probe: Probe,
    seen: Seen,
}

impl StreamedPng {
    /// Whether this decode looked for what `scan` looks for.
    fn scanned_as(&self, scan: Scan<'_>) -> bool {
        self.alpha == scan.alpha && self.thumbnail == scan.thumbnail
    }
}

impl DecodedPieces {
    /// Piece `i` recorded as decoded when `pieces[i]` is `Some` (crate-private: only
    /// [`crate::png_to_jpeg`] records, and only pieces that decoded).
    pub(crate) fn from_pieces(pieces: Vec<Option<Vec<u8>>>) -> Self {
        Self { pieces, png: None }
    }

    /// How many pieces are recorded (a whole PNG is one).
    #[must_use]
    pub fn len(&self) -> usize {
        self.pieces.iter().flatten().count() + usize::from(self.png.is_some())
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `piece`, the `index`-th, is the one recorded there.
    pub(crate) fn has(&self, index: usize, piece: &[u8]) -> bool {
        self.pieces.get(index).and_then(Option::as_deref) == Some(piece)
    }
}

/// [`verify_bytes`] on a file's contents.
///
/// # Errors
/// Only [`ImagingError::Io`], when the file cannot be read; a bad image is a report.
pub fn verify_file(path: &Path, expect: &Expect) -> Result<VerifyReport, ImagingError> {
    let bytes = fs::read(path).map_err(|source| ImagingError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })?;
    Ok(verify_bytes(&bytes, expect))
}

/// SHA-256 of `bytes`, lower-case hex (as reports and sidecars write it).
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// What to look for while decoding, besides errors.
#[derive(Debug, Clone, Copy)]
struct Scan<'a> {
    /// Whether any pixel is transparent.
    alpha: bool,
    /// A thumbnail fitting this edge.
    thumbnail: Option<u32>,
    /// JPEG pieces already decoded.
    decoded: &'a DecodedPieces,
}

/// What decoding saw: whether a transparent pixel was seen (`None`: not looked for), and the
/// thumbnail when asked.
#[derive(Debug, Default, Clone)]
struct Seen {
    transparent: Option<bool>,
    thumbnail: Option<Thumbnail>,
}

/// The result of reading an image: its header, and whether the pixels decoded.
struct Inspection {
    probe: Option<Probe>,
    decoded: Result<Seen, ImagingError>,
}

fn inspect(bytes: &[u8], scan: Scan) -> Inspection {
    let probe = match probe_bytes(bytes) {
        Ok(p) => p,
        Err(e) => {
            return Inspection {
                probe: None,
                decoded: Err(e),
            };
        }
    };
    // Checked before decoding so that no decoder allocates for a hostile header.
    let decoded = check_limits(&probe).and_then(|()| match probe.format {
        OutputFormat::Png => decode_png(bytes, scan),
        OutputFormat::Jpeg => decode_jpeg(bytes, scan.thumbnail, scan.decoded).map(|thumbnail| Seen {
            transparent: scan.alpha.then_some(false),
            thumbnail,
        }),
        OutputFormat::Webp => check_riff_length(bytes).and_then(|()| decode_webp(bytes, scan)),
    });
    Inspection {
        probe: Some(probe),
        decoded,
    }
}

/// The dimension limit and the pixel budget, checked against a header before any decoder
/// allocates for it.
fn check_limits(probe: &Probe) -> Result<(), ImagingError> {
    if probe.width > MAX_DIMENSION || probe.height > MAX_DIMENSION {
        return Err(ImagingError::Limits(format!(
            "{}x{} exceeds the {MAX_DIMENSION}x{MAX_DIMENSION} decoding limit",
            probe.width, probe.height
        )));
    }
    crate::budget::check(
        probe.width,
        probe.height,
        crate::budget::bytes_per_pixel(&probe.color),
    )
}

/// The verification's PNG decoder over `r`, its header read.
fn png_reader<R: BufRead + Seek>(r: R, scan: Scan) -> Result<png::Reader<R>, ImagingError> {
    let mut decoder = png::Decoder::new_with_limits(r, png_limits());
    decoder.set_ignore_text_chunk(true);
    if scan.alpha || scan.thumbnail.is_some() {
        // Turns palette and `tRNS` transparency into real samples we can test and average
        // (and grey below 8 bits into 8).
        decoder.set_transformations(png::Transformations::EXPAND);
    }
    decoder.read_info().map_err(|e| png_error(e, Path::new("")))
}

/// Stream the PNG row by row. Peak memory is the decoder's inflate window plus two rows, and no
/// whole-frame buffer is ever allocated or zeroed, so this is no slower than a normal decode.
fn decode_png(bytes: &[u8], scan: Scan) -> Result<Seen, ImagingError> {
    decode_png_rows(png_reader(Cursor::new(bytes), scan)?, scan)
}

/// The rows of a PNG whose header `reader` has read, to the end of the file.
fn decode_png_rows<R: BufRead + Seek>(mut reader: png::Reader<R>, scan: Scan) -> Result<Seen, ImagingError> {
    let err = |e| png_error(e, Path::new(""));
    let (color, depth) = reader.output_color_type();
    let look_for_alpha = scan.alpha && png_has_alpha(color);
    let sample_bytes = if depth == png::BitDepth::Sixteen { 2 } else { 1 };
    let pixel_bytes = color.samples() * sample_bytes;
    let (width, height) = (reader.info().width, reader.info().height);
    let mut shrinker = scan.thumbnail.and_then(|edge| {
        RowShrinker::new(
            width,
            height,
            edge,
            RowLayout {
                channels: color.samples(),
                sixteen: depth == png::BitDepth::Sixteen,
            },
        )
    });
    // An interlaced PNG's rows come pass by pass, not top to bottom.
    if reader.info().interlaced {
        shrinker = None;
    }
    let mut transparent = false;
    while let Some(row) = reader.next_row().map_err(err)? {
        if look_for_alpha && !transparent {
            transparent = row_has_transparency(row.data(), pixel_bytes, sample_bytes);
        }
        if let Some(s) = shrinker.as_mut() {
            s.push_row(row.data());
        }
    }
    // Reads through to IEND, so a file cut after its last IDAT is caught too, and every
    // remaining chunk's CRC is checked.
    reader.finish().map_err(err)?;
    Ok(Seen {
        transparent: scan.alpha.then_some(transparent),
        thumbnail: shrinker.and_then(RowShrinker::finish),
    })
}

/// The bytes of a file as its encoder writes them, read on another thread: a read waits for
/// the next piece, the file ends when the encoder drops its sender, and every byte that
/// arrives is hashed, so a record names exactly the bytes that were decoded.
struct Arriving {
    pieces: mpsc::Receiver<Vec<u8>>,
    piece: Vec<u8>,
    at: usize,
    read: u64,
    hash: Sha256,
}

impl Read for Arriving {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let have = self.fill_buf()?;
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Arriving {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at == self.piece.len() {
            let Ok(next) = self.pieces.recv() else {
                break;
            };
            self.hash.update(&next);
            (self.piece, self.at) = (next, 0);
        }
        Ok(&self.piece[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
        self.read += n as u64;
    }
}

/// The PNG decoder only asks where it is; a file being written cannot be read out of order.
impl Seek for Arriving {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            SeekFrom::Current(0) => Ok(self.read),
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a file being written is read in order",
            )),
        }
    }
}

/// Verify a PNG as its encoder writes it (the pieces arriving here, see [`Arriving`]), as
/// [`verify_bytes`] verifies a whole file for `expect`: the header checked against the same
/// limits, every row decoded with the same decoder and scan, through `IEND`. The record names
/// the bytes by their SHA-256; it is empty when anything failed, so the file is then verified
/// in full when saved and the report gives the reason in the usual words.
///
/// The probe is read from this decoder's header, which is the probe's own reading for the
/// 8-bit grey and colour PNGs fourk writes (no palette, no `tRNS`); other files are not
/// recorded.
pub(crate) fn verify_png_arriving(pieces: mpsc::Receiver<Vec<u8>>, expect: &Expect) -> DecodedPieces {
    let none = DecodedPieces::default();
    let scan = Scan {
        alpha: expect.alpha.is_some(),
        thumbnail: expect.thumbnail,
        decoded: &none,
    };
    let mut file = Arriving {
        pieces,
        piece: Vec::new(),
        at: 0,
        read: 0,
        hash: Sha256::new(),
    };
    let decoded = png_reader(&mut file, scan).and_then(|reader| {
        let info = reader.info();
        let plain = info.bit_depth == png::BitDepth::Eight
            && info.color_type != png::ColorType::Indexed
            && info.trns.is_none();
        if !plain {
            return Err(ImagingError::Unsupported(
                "only 8-bit grey and colour PNGs are verified as they are written".into(),
            ));
        }
        let probe = png_probe(&reader);
        check_limits(&probe)?;
        Ok((probe, decode_png_rows(reader, scan)?))
    });
    let Ok((probe, seen)) = decoded else {
        return none;
    };
    // Anything after IEND is hashed too: the record names every byte written.
    if io::copy(&mut file, &mut io::sink()).is_err() {
        return none;
    }
    DecodedPieces {
        pieces: Vec::new(),
        png: Some(StreamedPng {
            sha256: format!("{:x}", file.hash.finalize()),
            alpha: scan.alpha,
            thumbnail: scan.thumbnail,
            probe,
            seen,
        }),
    }
}

/// How many pieces per core a restart-marked JPEG is verified in (see [`decode_jpeg`]): as
/// many as the JPEG encoders cut strips, so that a strip is a piece.
const JPEG_PIECES_PER_CORE: usize = crate::encode::JPEG_STRIPS_PER_CORE;

/// The standalone JPEGs a restart-marked JPEG is verified in, on this rayon pool (`None`:
/// decoded whole).
pub(crate) fn jpeg_pieces(jpeg: &[u8]) -> Option<Vec<Vec<u8>>> {
    crate::jpeg_scan::split_rows(jpeg, rayon::current_num_threads() * JPEG_PIECES_PER_CORE)
}

/// The strict decoder settings of JPEG verification.
pub(crate) fn jpeg_options() -> DecoderOptions {
    let max = MAX_DIMENSION as usize;
    DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(max)
        .set_max_height(max)
}

/// One piece (see [`jpeg_pieces`]) checked: proven by the entropy check, or else decoded
/// strictly into `buf` (reused between pieces), whose error is the verdict.
pub(crate) fn check_jpeg_piece(buf: &mut Vec<u8>, piece: &[u8]) -> Result<(), ImagingError> {
    if crate::jpeg_entropy::proven(piece, jpeg_options(), buf) {
        return Ok(());
    }
    decode_jpeg_piece(buf, piece)
}

/// Decode one piece (see [`jpeg_pieces`]) strictly into `buf`, reused between pieces.
pub(crate) fn decode_jpeg_piece(buf: &mut Vec<u8>, piece: &[u8]) -> Result<(), ImagingError> {
    let invalid = |e: zune_jpeg::errors::DecodeErrors| ImagingError::Decode(format!("invalid JPEG: {e}"));
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(piece), jpeg_options());
    decoder.decode_headers().map_err(invalid)?;
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| ImagingError::Decode("invalid JPEG: no frame size".into()))?;
    buf.resize(size, 0);
    decoder.decode_into(&mut buf[..size]).map_err(invalid)
}

/// JPEG is decoded with zune-jpeg directly, in strict mode: `image` runs it leniently, which
/// fills a truncated scan with grey and calls it success, exactly the damage we look for.
fn decode_jpeg(
    bytes: &[u8],
    thumbnail: Option<u32>,
    decoded: &DecodedPieces,
) -> Result<Option<Thumbnail>, ImagingError> {
    // A cut inside the last scan can still decode cleanly, but then the end-of-image marker is
    // gone. Zero bytes after it are padding some writers add, not damage.
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if !bytes[..end].ends_with(&[0xFF, 0xD9]) {
        return Err(ImagingError::Decode(
            "invalid JPEG: no end-of-image marker (truncated)".into(),
        ));
    }
    let decode = |jpeg: &[u8]| {
        let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(jpeg), jpeg_options());
        let pixels = decoder
            .decode()
            .map_err(|e| ImagingError::Decode(format!("invalid JPEG: {e}")))?;
        let shape = decoder
            .dimensions()
            .zip(decoder.output_colorspace().map(|c| c.num_components()));
        Ok::<_, ImagingError>((shape, pixels))
    };
    // A scan with restart markers at MCU row boundaries (what fourk's encoders write) is
    // checked in pieces of whole rows on every core, each as the whole file would be (the
    // entropy check, or else the strict decode). The pieces are small and each core checks its
    // pieces with one buffer, so the check touches a few megabytes of fresh memory rather than
    // a whole frame (on a virtual machine, first-touching memory costs about as much as
    // decoding into it). Files cut otherwise, and thumbnails (one frame), are checked whole.
    let threads = rayon::current_num_threads();
    if thumbnail.is_none()
        && threads >= 2
        && let Some(pieces) = jpeg_pieces(bytes)
    {
        return pieces
            .par_iter()
            .enumerate()
            .filter(|&(i, piece)| !decoded.has(i, piece))
            .try_for_each_init(Vec::new, |buf, (_, piece)| check_jpeg_piece(buf, piece))
            .map(|()| None);
    }
    // Without a thumbnail the pixels are not needed: the entropy check proves the file
    // decodes, or the full decode gives the verdict.
    if thumbnail.is_none() && crate::jpeg_entropy::proven(bytes, jpeg_options(), &mut Vec::new()) {
        return Ok(None);
    }
    let (shape, pixels) = decode(bytes)?;
    Ok(thumbnail.and_then(|edge| {
        let ((w, h), channels) = shape?;
        shrink_frame(
            &pixels,
            u32::try_from(w).ok()?,
            u32::try_from(h).ok()?,
            edge,
            RowLayout {
                channels,
                sixteen: false,
            },
        )
    }))
}

/// The VP8 decoder, like libvpx, reads zeros past the end of a short partition, so a cut
/// WebP can decode "successfully". The RIFF header states the file length; hold it to that.
/// Bytes after the RIFF chunk are ignored, as every decoder does.
fn check_riff_length(bytes: &[u8]) -> Result<(), ImagingError> {
    let declared = bytes
        .get(4..8)
        .map(|s| u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])) + 8)
        .ok_or_else(|| ImagingError::Decode("invalid WebP: no RIFF header".into()))?;
    let present = bytes.len() as u64;
    if present < declared {
        return Err(ImagingError::Decode(format!(
            "invalid WebP: the RIFF header declares {declared} bytes but only {present} are \
             present (truncated)"
        )));
    }
    Ok(())
}

/// WebP is decoded by libwebp, the library that encoded it: four times faster than image's
/// pure-Rust decoder on a 4K frame (lossy 4K: about 50 ms against 200), and it refuses what
/// that decoder refused (a cut bitstream, a broken header). Animations are not images the API
/// returns and are refused too.
///
/// A lossless WebP whose pixels nobody needs (no thumbnail, and no transparency question an
/// alpha channel leaves open) is proven by its entropy coding instead
/// ([`crate::webp_lossless`]), in well under half the decode's time; what that does not
/// prove is decoded.
fn decode_webp(bytes: &[u8], scan: Scan) -> Result<Seen, ImagingError> {
    if scan.thumbnail.is_none() && crate::webp_lossless::proven(bytes, scan.alpha) {
        return Ok(Seen {
            transparent: scan.alpha.then_some(false),
            thumbnail: None,
        });
    }
    let img = webp::Decoder::new(bytes).decode().ok_or_else(|| {
        ImagingError::Decode("invalid WebP: libwebp cannot decode it (corrupt, truncated or animated)".into())
    })?;
    let channels = if img.is_alpha() { 4 } else { 3 };
    let transparent = scan
        .alpha
        .then(|| img.is_alpha() && row_has_transparency(&img, 4, 1));
    let thumbnail = scan.thumbnail.and_then(|edge| {
        shrink_frame(
            &img,
            img.width(),
            img.height(),
            edge,
            RowLayout {
                channels,
                sixteen: false,
            },
        )
    });
    Ok(Seen {
        transparent,
        thumbnail,
    })
}

fn report(len: usize, sha256: String, inspection: Inspection, expect: &Expect) -> VerifyReport {
    let Inspection { probe, decoded } = inspection;
    let (
        intact,
        decode_error,
        Seen {
            transparent,
            thumbnail,
        },
    ) = match decoded {
        Ok(seen) => (true, None, seen),
        Err(e) => (false, Some(e.to_string()), Seen::default()),
    };
    let unknown = || "unknown".to_owned();
    let mut checks = Vec::new();
    let mut dimension = |name, expected: Option<u32>, actual: Option<u32>| {
        if let Some(expected) = expected {
            checks.push(Check {
                name,
                expected: expected.to_string(),
                actual: actual.map_or_else(unknown, |a| a.to_string()),
                pass: actual == Some(expected),
            });
        }
    };
    dimension(CheckName::Width, expect.width, probe.as_ref().map(|p| p.width));
    dimension(CheckName::Height, expect.height, probe.as_ref().map(|p| p.height));
    if let Some(expected) = expect.format {
        let actual = probe.as_ref().map(|p| p.format);
        checks.push(Check {
            name: CheckName::Format,
            expected: expected.to_string(),
            actual: actual.map_or_else(unknown, |a| a.to_string()),
            pass: actual == Some(expected),
        });
    }
    if let Some(expected) = expect.alpha {
        let has_channel = probe.as_ref().is_some_and(|p| p.has_alpha);
        let actual = match transparent {
            Some(true) => "transparent pixels",
            Some(false) if has_channel => "alpha channel, every pixel opaque",
            Some(false) => "no alpha channel",
            None => "unknown (not decoded)",
        };
        checks.push(Check {
            name: CheckName::Alpha,
            expected: if expected {
                "transparent pixels"
            } else {
                "no transparent pixels"
            }
            .to_owned(),
            actual: actual.to_owned(),
            pass: transparent == Some(expected),
        });
    }
    let ok = intact && checks.iter().all(|c| c.pass);
    VerifyReport {
        probe,
        intact,
        decode_error,
        checks,
        ok,
        sha256,
        bytes: len as u64,
        thumbnail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;
    use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};

    fn rgb(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7) as u8, (y * 3) as u8, (x ^ y) as u8])
        }))
    }

    fn rgba(w: u32, h: u32, alpha: impl Fn(u32, u32) -> u8) -> DynamicImage {
        DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
            Rgba([(x * 5) as u8, (y * 9) as u8, 77, alpha(x, y)])
        }))
    }

    fn check<'a>(r: &'a VerifyReport, name: &str) -> &'a Check {
        r.checks.iter().find(|c| c.name == name).unwrap()
    }

    /// What `verify_png_arriving` records for `bytes` sent in pieces of `piece` bytes, the
    /// sender dropped after `send` of them (all when `None`).
    fn arriving(bytes: &[u8], piece: usize, send: Option<usize>, expect: &Expect) -> DecodedPieces {
        let (tx, rx) = mpsc::channel();
        for p in bytes.chunks(piece).take(send.unwrap_or(usize::MAX)) {
            tx.send(p.to_vec()).unwrap();
        }
        drop(tx);
        verify_png_arriving(rx, expect)
    }

    #[test]
    fn a_png_verified_as_it_arrives_is_recorded_only_when_every_row_decodes() {
        let png = encode(&rgb(300, 200), OutputFormat::Png, None).unwrap();
        let expect = Expect::default().with_alpha(false);
        // Whole: recorded under the file's own SHA-256, and the save's report is the full one.
        let good = arriving(&png, 1000, None, &expect);
        assert_eq!(good.len(), 1);
        assert_eq!(good.png.as_ref().unwrap().sha256, sha256_hex(&png));
        assert_eq!(
            verify_bytes_decoded(&png, &expect, &good),
            verify_bytes(&png, &expect)
        );
        // Cut off (the encoder stopped) anywhere before the end: nothing recorded.
        let quarter = png.len().div_ceil(4);
        for sent in 0..4 {
            assert!(
                arriving(&png, quarter, Some(sent), &expect).is_empty(),
                "{sent} of 4"
            );
        }
        // Image data that does not inflate, under a correct CRC, so only the decode can tell.
        let mut bad = png.clone();
        let idat = bad.windows(4).position(|w| w == b"IDAT").unwrap();
        let len = u32::from_be_bytes(bad[idat - 4..idat].try_into().unwrap()) as usize;
        for b in &mut bad[idat + 4 + len / 2..idat + 4 + len / 2 + 64] {
            *b = 0xFF;
        }
        let crc = crc32fast::hash(&bad[idat..idat + 4 + len]);
        bad[idat + 4 + len..idat + 8 + len].copy_from_slice(&crc.to_be_bytes());
        assert!(!verify_bytes(&bad, &expect).intact, "the damage is real");
        assert!(arriving(&bad, 1000, None, &expect).is_empty());
        // 16-bit is not recorded (the probe would read it differently); the save decodes it.
        let deep = encode(
            &DynamicImage::ImageRgb16(rgb(30, 20).to_rgb16()),
            OutputFormat::Png,
            None,
        )
        .unwrap();
        assert!(arriving(&deep, 100, None, &expect).is_empty());
    }

    #[test]
    fn intact_images_of_every_format_pass_matching_expectations() {
        for (fmt, c) in [
            (OutputFormat::Png, None),
            (OutputFormat::Jpeg, Some(85)),
            (OutputFormat::Webp, Some(85)),
            (OutputFormat::Webp, None),
        ] {
            let bytes = encode(&rgb(96, 64), fmt, c).unwrap();
            let expect = Expect::default()
                .with_size(Size::new(96, 64))
                .with_format(fmt)
                .with_alpha(false);
            let r = verify_bytes(&bytes, &expect);
            assert!(r.ok && r.intact, "{fmt}: {r:?}");
            assert_eq!(r.checks.len(), 4);
            assert_eq!(r.bytes, bytes.len() as u64);
            assert_eq!(r.probe.unwrap().format, fmt);
        }
    }

    #[test]
    fn sha256_is_of_the_bytes() {
        let r = verify_bytes(b"abc", &Expect::default());
        assert_eq!(
            r.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!r.intact && !r.ok);
    }

    #[test]
    fn parallel_hash_matches_sequential() {
        let big = vec![7u8; PARALLEL_HASH_MIN_BYTES + 3];
        assert_eq!(verify_bytes(&big, &Expect::default()).sha256, sha256_hex(&big));
    }

    #[test]
    fn wrong_width_and_format_name_expected_and_actual() {
        let bytes = encode(&rgb(40, 20), OutputFormat::Png, None).unwrap();
        let expect = Expect {
            width: Some(41),
            height: Some(20),
            format: Some(OutputFormat::Jpeg),
            alpha: None,
            thumbnail: None,
        };
        let r = verify_bytes(&bytes, &expect);
        assert!(r.intact && !r.ok);
        let w = check(&r, "width");
        assert_eq!(
            (w.expected.as_str(), w.actual.as_str(), w.pass),
            ("41", "40", false)
        );
        let f = check(&r, "format");
        assert_eq!(
            (f.expected.as_str(), f.actual.as_str(), f.pass),
            ("jpeg", "png", false)
        );
        assert!(check(&r, "height").pass);
        let failed: Vec<_> = r.failed_checks().map(|c| c.name).collect();
        assert_eq!(failed, [CheckName::Width, CheckName::Format]);
    }

    #[test]
    fn alpha_true_needs_a_transparent_pixel_not_just_a_channel() {
        let opaque = encode(&rgba(16, 16, |_, _| 255), OutputFormat::Png, None).unwrap();
        let r = verify_bytes(&opaque, &Expect::default().with_alpha(true));
        assert!(r.intact && !r.ok);
        assert_eq!(check(&r, "alpha").actual, "alpha channel, every pixel opaque");
        // ...and an opaque alpha channel counts as "no transparent pixels".
        assert!(verify_bytes(&opaque, &Expect::default().with_alpha(false)).ok);

        // One transparent pixel in the last row is enough.
        let one = rgba(16, 16, |x, y| if (x, y) == (15, 15) { 254 } else { 255 });
        for (fmt, c) in [(OutputFormat::Png, None), (OutputFormat::Webp, None)] {
            let bytes = encode(&one, fmt, c).unwrap();
            let r = verify_bytes(&bytes, &Expect::default().with_alpha(true));
            assert!(r.ok, "{fmt}: {r:?}");
            assert!(!verify_bytes(&bytes, &Expect::default().with_alpha(false)).ok);
        }

        let no_channel = encode(&rgb(8, 8), OutputFormat::Png, None).unwrap();
        let r = verify_bytes(&no_channel, &Expect::default().with_alpha(true));
        assert_eq!(check(&r, "alpha").actual, "no alpha channel");
        assert!(!r.ok);
    }

    #[test]
    fn alpha_in_sixteen_bit_and_palette_pngs() {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 2, 1);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Sixteen);
            let mut w = enc.write_header().unwrap();
            // Second pixel's alpha is 0xFFFE: transparent only when read at 16 bits.
            w.write_image_data(&[0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFE])
                .unwrap();
        }
        assert!(verify_bytes(&out, &Expect::default().with_alpha(true)).ok);

        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 2, 1);
            enc.set_color(png::ColorType::Indexed);
            enc.set_palette(vec![0, 0, 0, 9, 9, 9]);
            enc.set_trns(vec![255, 0]);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[0, 1]).unwrap();
        }
        assert!(verify_bytes(&out, &Expect::default().with_alpha(true)).ok);
    }

    /// The `png` encoder cannot interlace, so build an Adam7 RGBA8 PNG by hand, with stored
    /// (uncompressed) deflate blocks.
    fn interlaced_rgba_png(w: u32, h: u32, px: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
        fn crc32(data: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 == 1 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut raw = Vec::new();
        for (x0, y0, dx, dy) in [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ] {
            if x0 >= w {
                continue;
            }
            for y in (y0..h).step_by(dy) {
                raw.push(0);
                for x in (x0..w).step_by(dx) {
                    raw.extend_from_slice(&px(x, y));
                }
            }
        }
        let mut z = vec![0x78, 0x01];
        let blocks: Vec<_> = raw.chunks(65_535).collect();
        for (i, block) in blocks.iter().enumerate() {
            z.push(u8::from(i + 1 == blocks.len()));
            let len = block.len() as u16;
            z.extend_from_slice(&len.to_le_bytes());
            z.extend_from_slice(&(!len).to_le_bytes());
            z.extend_from_slice(block);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in &raw {
            a = (a + u32::from(byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 1]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &z);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn interlaced_png_is_verified() {
        let spot = |x, y| [x as u8, y as u8, 0, if (x, y) == (5, 3) { 7 } else { 255 }];
        let bytes = interlaced_rgba_png(9, 7, spot);
        // Sanity: `image` decodes our hand-made file to the same pixels.
        let back = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(back.get_pixel(5, 3).0, [5, 3, 0, 7]);
        let expect = Expect::default().with_size(Size::new(9, 7)).with_alpha(true);
        let r = verify_bytes(&bytes, &expect);
        assert!(r.ok, "{r:?}");
        let opaque = interlaced_rgba_png(9, 7, |x, y| [x as u8, y as u8, 0, 255]);
        assert!(!verify_bytes(&opaque, &expect).ok);
    }

    #[test]
    fn png_cut_before_iend_is_not_intact() {
        let bytes = encode(&rgb(64, 64), OutputFormat::Png, None).unwrap();
        let r = verify_bytes(&bytes[..bytes.len() - 12], &Expect::default());
        assert!(r.probe.is_some() && !r.intact && !r.ok, "{r:?}");
    }

    #[test]
    fn flipped_bit_in_pixel_data_is_not_intact() {
        let mut bytes = encode(&rgb(64, 64), OutputFormat::Png, None).unwrap();
        let idat = bytes.windows(4).position(|w| w == b"IDAT").unwrap();
        bytes[idat + 20] ^= 0x10;
        let r = verify_bytes(&bytes, &Expect::default());
        assert!(!r.intact, "{r:?}");
        assert!(r.decode_error.unwrap().contains("PNG"));
    }

    #[test]
    fn jpeg_without_end_marker_is_not_intact() {
        let bytes = encode(&rgb(64, 64), OutputFormat::Jpeg, Some(90)).unwrap();
        assert!(verify_bytes(&bytes, &Expect::default()).intact);
        // Padding after the marker is tolerated; losing the marker is not.
        let padded = [&bytes[..], &[0, 0, 0]].concat();
        assert!(verify_bytes(&padded, &Expect::default()).intact);
        let r = verify_bytes(&bytes[..bytes.len() - 2], &Expect::default());
        assert!(!r.intact);
        assert!(r.decode_error.unwrap().contains("end-of-image"));
    }

    #[test]
    fn webp_shorter_than_its_riff_header_says_is_not_intact() {
        let bytes = encode(&rgb(64, 64), OutputFormat::Webp, Some(60)).unwrap();
        let r = verify_bytes(&bytes[..bytes.len() - 1], &Expect::default());
        assert!(!r.intact);
        assert!(r.decode_error.unwrap().contains("RIFF"));
        let trailing = [&bytes[..], b"junk"].concat();
        assert!(verify_bytes(&trailing, &Expect::default()).intact);
    }

    #[test]
    fn oversized_header_is_refused_before_decoding() {
        // A valid IHDR claiming 20000x20000, then one tiny IDAT: a decoder that trusted the
        // header would allocate 1.2 GB here.
        let mut out = Vec::new();
        {
            let enc = png::Encoder::new(&mut out, 20_000, 20_000);
            let mut w = enc.write_header().unwrap();
            w.write_chunk(png::chunk::IDAT, &[0x78, 0x01]).unwrap();
        }
        let r = verify_bytes(&out, &Expect::default().with_size(Size::new(20_000, 20_000)));
        assert!(!r.intact && !r.ok);
        assert!(r.decode_error.as_deref().unwrap().contains("limit"));
        assert!(check(&r, "width").pass, "the header is still reported");
    }

    #[test]
    fn unreadable_header_gives_unknown_actuals() {
        let r = verify_bytes(b"not an image", &Expect::default().with_size(Size::new(1, 1)));
        assert!(r.probe.is_none() && !r.intact && !r.ok);
        assert_eq!(check(&r, "width").actual, "unknown");
    }

    #[test]
    fn verify_file_reads_and_only_errs_on_io() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.webp");
        fs::write(&good, encode(&rgb(10, 10), OutputFormat::Webp, Some(50)).unwrap()).unwrap();
        let r = verify_file(&good, &Expect::default().with_format(OutputFormat::Webp)).unwrap();
        assert!(r.ok);
        let bad = dir.path().join("b.png");
        fs::write(&bad, b"\x89PNG\r\n\x1a\n garbage").unwrap();
        assert!(!verify_file(&bad, &Expect::default()).unwrap().intact);
        assert!(matches!(
            verify_file(&dir.path().join("missing.png"), &Expect::default()),
            Err(ImagingError::Io { .. })
        ));
    }

    #[test]
    fn report_serialises_with_check_names_as_strings() {
        let bytes = encode(&rgb(4, 4), OutputFormat::Png, None).unwrap();
        let r = verify_bytes(&bytes, &Expect::default().with_size(Size::new(4, 5)));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["checks"][1]["name"], "height");
        assert_eq!(json["checks"][1]["actual"], "4");
        assert_eq!(json["probe"]["format"], "png");
        assert_eq!(json["ok"], false);
    }

    #[test]
    fn a_thumbnail_is_made_while_verifying_every_format_and_not_from_a_truncated_file() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(640, 320, |x, _| {
            if x < 320 {
                Rgb([250, 10, 10])
            } else {
                Rgb([10, 10, 250])
            }
        }));
        for format in [OutputFormat::Png, OutputFormat::Jpeg, OutputFormat::Webp] {
            let bytes = encode(&img, format, Some(95)).unwrap();
            let r = verify_bytes(&bytes, &Expect::default().with_thumbnail(64));
            let t = r.thumbnail.unwrap_or_else(|| panic!("{format}: no thumbnail"));
            assert_eq!(t.0.dimensions(), (64, 32), "{format}");
            let (left, right) = (t.0.get_pixel(8, 16), t.0.get_pixel(56, 16));
            assert!(left[0] > 200 && left[2] < 60, "{format}: {left:?}");
            assert!(right[2] > 200 && right[0] < 60, "{format}: {right:?}");
            assert!(verify_bytes(&bytes, &Expect::default()).thumbnail.is_none());
            let cut = verify_bytes(&bytes[..bytes.len() / 2], &Expect::default().with_thumbnail(64));
            assert!(!cut.intact && cut.thumbnail.is_none(), "{format}");
        }
    }
}
