//! Metadata in encoded image bytes: the text chunks fourk writes into PNGs (prompt, model,
//! settings), and provenance (EXIF, XMP, C2PA) carried from a source file into an output of the
//! same format.
//!
//! Text and provenance are checked and sorted before anything is encoded ([`prepare`]). They
//! are then written into encoded bytes after the encoder has run ([`Prepared::insert`],
//! [`embed`]), so the JPEG and WebP encoders stay plain pixel writers and can be swapped
//! without losing metadata; the 8-bit PNG encoder that verifies while it writes
//! ([`crate::encode_verified`]) writes the same chunks itself, at the place `insert` would put
//! them, so the file it decodes is the finished one.
//!
//! The container walks are by hand because they are small and need no decoding; every length
//! read from the input is checked against the bytes that are really there, so a hostile or
//! truncated source gives an error, never a panic or a large allocation.
//!
//! Where provenance lives in each container:
//!
//! | kind | PNG | JPEG | WebP |
//! |---|---|---|---|
//! | EXIF | `eXIf` chunk | APP1 `Exif\0\0` | `EXIF` chunk (and the VP8X flag) |
//! | XMP | `iTXt` with keyword `XML:com.adobe.xmp` | APP1 `http://ns.adobe.com/xap/1.0/` (and extended XMP) | `XMP ` chunk (and the VP8X flag) |
//! | C2PA | `caBX` chunk | APP11 JUMBF (`JP`) | `C2PA` chunk |
//!
//! Blocks are carried only into an output of the same format: moving them between containers
//! is possible for EXIF and XMP but changes their bytes, and a C2PA manifest's hard binding is
//! specific to the container. Whatever is not carried is reported in [`MetadataReport::dropped`]
//! with the reason. A carried C2PA manifest still describes the *source* asset: its hash
//! binding will not match the new pixels, which the report says in its note.

use fourk_api::OutputFormat;
use serde::Serialize;

use crate::error::ImagingError;
use crate::probe::{detect_format, probe_bytes};

/// The PNG keyword of an XMP packet stored in an `iTXt` chunk.
pub const XMP_PNG_KEYWORD: &str = "XML:com.adobe.xmp";
const JPEG_EXIF: &[u8] = b"Exif\0\0";
const JPEG_XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const JPEG_XMP_EXT: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
/// The longest text value [`embed`] writes into one PNG chunk. Prompts are at most a few
/// thousand characters; anything near this is a mistake.
pub const MAX_TEXT_VALUE: usize = 1 << 20;

/// What a metadata block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MetaKind {
    /// EXIF (camera, orientation, dates).
    Exif,
    /// An XMP packet (rights, descriptions, edit history).
    Xmp,
    /// A C2PA manifest store (content credentials), in a JUMBF box.
    C2pa,
    /// PNG text (`tEXt`/`iTXt`) that fourk writes: prompt, model, settings.
    Text,
}

impl MetaKind {
    /// The name used in reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Exif => "exif",
            Self::Xmp => "xmp",
            Self::C2pa => "c2pa",
            Self::Text => "text",
        }
    }
}

/// One provenance block found in a source file, kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    kind: MetaKind,
    format: OutputFormat,
    /// PNG chunk type, WebP FourCC, or the JPEG marker in the first byte.
    tag: [u8; 4],
    payload: Vec<u8>,
}

impl Provenance {
    /// What the block is.
    #[must_use]
    pub const fn kind(&self) -> MetaKind {
        self.kind
    }

    /// The container it came from.
    #[must_use]
    pub const fn format(&self) -> OutputFormat {
        self.format
    }

    /// The payload's length in bytes (without the container's framing).
    #[must_use]
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload (without the container's framing).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// A block for `format` built from a payload, as it would be found in a file of that
    /// format. For PNG XMP, `payload` is the XMP packet itself; for JPEG EXIF and XMP it is the
    /// segment body including its `Exif\0\0` or namespace prefix; for JPEG C2PA it is the
    /// APP11 body (starting with `JP`).
    #[must_use]
    pub fn new(kind: MetaKind, format: OutputFormat, payload: Vec<u8>) -> Self {
        let (tag, payload) = match (format, kind) {
            (OutputFormat::Png, MetaKind::Exif) => (*b"eXIf", payload),
            (OutputFormat::Png, MetaKind::Xmp) => (*b"iTXt", itxt_payload(XMP_PNG_KEYWORD, &payload)),
            (OutputFormat::Png, MetaKind::C2pa) => (*b"caBX", payload),
            (OutputFormat::Png, MetaKind::Text) => (*b"tEXt", payload),
            (OutputFormat::Jpeg, MetaKind::C2pa) => ([0xEB, 0, 0, 0], payload),
            (OutputFormat::Jpeg, _) => ([0xE1, 0, 0, 0], payload),
            (OutputFormat::Webp, MetaKind::Exif) => (*b"EXIF", payload),
            (OutputFormat::Webp, MetaKind::Xmp) => (*b"XMP ", payload),
            (OutputFormat::Webp, _) => (*b"C2PA", payload),
        };
        Self {
            kind,
            format,
            tag,
            payload,
        }
    }
}

/// A block written into the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Carried {
    /// What it is.
    pub kind: MetaKind,
    /// Payload bytes.
    pub bytes: usize,
    /// What a reader should know about it, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A block that could not be written into the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// What it is.
    pub kind: MetaKind,
    /// Why it was left out.
    pub reason: String,
}

/// What [`embed`] did with the metadata it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetadataReport {
    /// Text keys written as PNG `tEXt`/`iTXt` chunks.
    pub text: Vec<String>,
    /// Provenance blocks written into the output.
    pub carried: Vec<Carried>,
    /// Blocks (and text) left out, with the reason.
    pub dropped: Vec<Dropped>,
}

/// The provenance blocks in an encoded PNG, JPEG or WebP, in file order.
///
/// # Errors
/// [`ImagingError::Unsupported`] for another format and [`ImagingError::Decode`] when the
/// container structure is truncated or malformed before the image data.
pub fn extract(bytes: &[u8]) -> Result<Vec<Provenance>, ImagingError> {
    match detect_format(bytes.get(..16).unwrap_or(bytes))? {
        OutputFormat::Png => Ok(png_chunks(bytes)?
            .into_iter()
            .filter_map(|c| {
                let kind = match &c.tag {
                    b"eXIf" => MetaKind::Exif,
                    b"caBX" => MetaKind::C2pa,
                    b"iTXt" if itxt_keyword(c.data) == Some(XMP_PNG_KEYWORD.as_bytes()) => MetaKind::Xmp,
                    _ => return None,
                };
                Some(Provenance {
                    kind,
                    format: OutputFormat::Png,
                    tag: c.tag,
                    payload: c.data.to_vec(),
                })
            })
            .collect()),
        OutputFormat::Jpeg => Ok(jpeg_segments(bytes)?
            .into_iter()
            .filter_map(|(marker, data)| {
                let kind = match marker {
                    0xE1 if data.starts_with(JPEG_EXIF) => MetaKind::Exif,
                    0xE1 if data.starts_with(JPEG_XMP) || data.starts_with(JPEG_XMP_EXT) => MetaKind::Xmp,
                    // JUMBF in APP11 starts with the common identifier "JP"; C2PA is what
                    // puts JUMBF in JPEGs.
                    0xEB if data.starts_with(b"JP") => MetaKind::C2pa,
                    _ => return None,
                };
                Some(Provenance {
                    kind,
                    format: OutputFormat::Jpeg,
                    tag: [marker, 0, 0, 0],
                    payload: data.to_vec(),
                })
            })
            .collect()),
        OutputFormat::Webp => Ok(riff_chunks(bytes)?
            .into_iter()
            .filter_map(|(tag, data)| {
                let kind = match &tag {
                    b"EXIF" => MetaKind::Exif,
                    b"XMP " => MetaKind::Xmp,
                    b"C2PA" => MetaKind::C2pa,
                    _ => return None,
                };
                Some(Provenance {
                    kind,
                    format: OutputFormat::Webp,
                    tag,
                    payload: data.to_vec(),
                })
            })
            .collect()),
    }
}

/// The uncompressed text of a PNG's `tEXt` and `iTXt` chunks, as `(keyword, text)`, in file
/// order; XMP packets and compressed chunks are skipped. Empty for other formats.
///
/// # Errors
/// [`ImagingError::Decode`] when the PNG's chunk structure is malformed.
pub fn png_text(bytes: &[u8]) -> Result<Vec<(String, String)>, ImagingError> {
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for c in png_chunks(bytes)? {
        match &c.tag {
            b"tEXt" => {
                if let Some(nul) = c.data.iter().position(|&b| b == 0) {
                    out.push((latin1(&c.data[..nul]), latin1(&c.data[nul + 1..])));
                }
            }
            b"iTXt" => {
                if let Some((key, text)) = parse_itxt(c.data)
                    && key != XMP_PNG_KEYWORD
                {
                    out.push((key, text));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Whether `key` may be a PNG text keyword as fourk writes them: 1 to 79 printable ASCII
/// characters, without leading, trailing or doubled spaces (the PNG rules, narrowed from
/// Latin-1 to ASCII so that keys survive any terminal).
///
/// # Errors
/// A sentence naming the rule that `key` breaks.
pub fn check_text_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 79 {
        return Err(format!(
            "text key '{key}' must be 1 to 79 characters long (PNG keyword rule)"
        ));
    }
    if !key.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Err(format!(
            "text key '{key}' must be printable ASCII (PNG keyword rule)"
        ));
    }
    if key.starts_with(' ') || key.ends_with(' ') || key.contains("  ") {
        return Err(format!(
            "text key '{key}' must not start or end with a space or contain two in a row (PNG keyword rule)"
        ));
    }
    Ok(())
}

/// Write `text` (PNG only) and the `provenance` blocks whose container is `format` into the
/// encoded image `out`, which must be a `format` file produced by an encoder. Anything that
/// cannot be written is listed in the report's `dropped` with the reason.
///
/// Text goes in `tEXt` chunks when it is printable ASCII and in uncompressed `iTXt` (UTF-8)
/// otherwise; keys must pass [`check_text_key`]. Every new chunk is placed before the first
/// `IDAT` in PNG, after `SOI` and any `APP0` in JPEG, and after the image data in WebP (which
/// becomes the extended format, `VP8X`, with its flags set, when it was a simple file).
///
/// # Errors
/// [`ImagingError::Encode`] when `out` is not a well-formed `format` file, a key breaks the
/// keyword rule or a value is longer than [`MAX_TEXT_VALUE`], or a block is too large for
/// its container.
pub fn embed(
    out: Vec<u8>,
    format: OutputFormat,
    provenance: &[Provenance],
    text: &[(String, String)],
) -> Result<(Vec<u8>, MetadataReport), ImagingError> {
    prepare(format, provenance, text)?.insert(out)
}

/// The metadata [`embed`] writes, checked and ready before the image is encoded: the PNG
/// encoder that verifies as it writes ([`crate::encode_verified`]) puts these chunks in
/// itself, where [`embed`] would insert them, so the file it decodes is the finished one.
#[derive(Debug)]
pub struct Prepared<'a> {
    format: OutputFormat,
    /// Provenance blocks for this format.
    keep: Vec<&'a Provenance>,
    /// Text chunks (PNG only): type and data.
    text_chunks: Vec<([u8; 4], Vec<u8>)>,
    report: MetadataReport,
}

/// Check `text` and sort `provenance` for an output in `format`, as [`embed`] does.
///
/// # Errors
/// [`ImagingError::Encode`] when a key breaks the keyword rule or a value is longer than
/// [`MAX_TEXT_VALUE`].
pub fn prepare<'a>(
    format: OutputFormat,
    provenance: &'a [Provenance],
    text: &[(String, String)],
) -> Result<Prepared<'a>, ImagingError> {
    let mut report = MetadataReport::default();
    let mut keep = Vec::new();
    for p in provenance {
        if p.format == format {
            keep.push(p);
            report.carried.push(Carried {
                kind: p.kind,
                bytes: p.payload.len(),
                note: (p.kind == MetaKind::C2pa).then(|| {
                    "the manifest describes the source file; its hash binding will not match the \
                     new pixels, so validators will flag it until the output is signed again"
                        .to_owned()
                }),
            });
        } else {
            report.dropped.push(Dropped {
                kind: p.kind,
                reason: format!(
                    "the source is {} and the output is {}; {} is carried only between files of \
                     the same format",
                    p.format,
                    format,
                    p.kind.as_str()
                ),
            });
        }
    }
    let mut text_chunks = Vec::new();
    if !text.is_empty() {
        if format == OutputFormat::Png {
            for (key, value) in text {
                check_text_key(key).map_err(|message| ImagingError::Encode {
                    format: "png",
                    message,
                })?;
                if value.len() > MAX_TEXT_VALUE {
                    return Err(ImagingError::Encode {
                        format: "png",
                        message: format!(
                            "text '{key}' is {} bytes, more than the {MAX_TEXT_VALUE} allowed",
                            value.len()
                        ),
                    });
                }
                text_chunks.push(text_chunk(key, value));
                report.text.push(key.clone());
            }
        } else {
            report.dropped.push(Dropped {
                kind: MetaKind::Text,
                reason: format!(
                    "{format} has no text chunks; the prompt, model and settings are in the sidecar"
                ),
            });
        }
    }
    Ok(Prepared {
        format,
        keep,
        text_chunks,
        report,
    })
}

impl Prepared<'_> {
    /// The format it was prepared for.
    #[must_use]
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// The PNG chunks to write before the image data, in order (none for other formats).
    pub(crate) fn png_chunks(&self) -> Vec<([u8; 4], &[u8])> {
        if self.format != OutputFormat::Png {
            return Vec::new();
        }
        let mut chunks: Vec<([u8; 4], &[u8])> =
            self.text_chunks.iter().map(|(t, d)| (*t, d.as_slice())).collect();
        chunks.extend(self.keep.iter().map(|p| (p.tag, p.payload.as_slice())));
        chunks
    }

    /// Write this metadata into `out`, a file of the prepared format produced by an encoder
    /// (see [`embed`]).
    ///
    /// # Errors
    /// [`ImagingError::Encode`] when `out` is not a well-formed file of that format or a
    /// block is too large for its container.
    pub fn insert(self, out: Vec<u8>) -> Result<(Vec<u8>, MetadataReport), ImagingError> {
        let format = self.format;
        if self.keep.is_empty() && self.text_chunks.is_empty() {
            return Ok((out, self.report));
        }
        let bad = |message: String| ImagingError::Encode {
            format: format.as_str(),
            message,
        };
        let bytes = match format {
            OutputFormat::Png => insert_png(out, &self.png_chunks()).map_err(|e| bad(e.to_string()))?,
            OutputFormat::Jpeg => insert_jpeg(out, &self.keep).map_err(|e| bad(e.to_string()))?,
            OutputFormat::Webp => insert_webp(&out, &self.keep).map_err(|e| bad(e.to_string()))?,
        };
        Ok((bytes, self.report))
    }

    /// The report, for metadata already written (by [`crate::encode_verified`]).
    pub(crate) fn into_report(self) -> MetadataReport {
        self.report
    }
}

// --- PNG ------------------------------------------------------------------------------------

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

struct PngChunk<'a> {
    /// Offset of the chunk's length field.
    start: usize,
    tag: [u8; 4],
    data: &'a [u8],
}

fn decode_error(what: &str) -> ImagingError {
    ImagingError::Decode(what.to_owned())
}

/// Every chunk up to and including `IEND` (or the end of the data when there is none after
/// the image data: the decoder, not this walk, decides whether that is fatal).
fn png_chunks(bytes: &[u8]) -> Result<Vec<PngChunk<'_>>, ImagingError> {
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(decode_error("invalid PNG: bad signature"));
    }
    let mut at = PNG_SIGNATURE.len();
    let mut out = Vec::new();
    while at < bytes.len() {
        let head = bytes
            .get(at..at + 8)
            .ok_or_else(|| decode_error("invalid PNG: truncated chunk header"))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let tag = [head[4], head[5], head[6], head[7]];
        let end = (at + 8)
            .checked_add(len)
            .and_then(|e| e.checked_add(4))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                decode_error(&format!(
                    "invalid PNG: chunk {} claims {len} bytes past the end of the file (truncated)",
                    String::from_utf8_lossy(&tag)
                ))
            })?;
        out.push(PngChunk {
            start: at,
            tag,
            data: &bytes[at + 8..at + 8 + len],
        });
        at = end;
        if &tag == b"IEND" {
            break;
        }
    }
    Ok(out)
}

/// Insert `chunks` before the first `IDAT`, in place: the image data moves up by the size of
/// the new chunks (no second copy of a 4K file; fourk's encoders leave room for this).
fn insert_png(mut out: Vec<u8>, chunks: &[([u8; 4], &[u8])]) -> Result<Vec<u8>, ImagingError> {
    let at = png_chunks(&out)?
        .iter()
        .find(|c| &c.tag == b"IDAT")
        .map(|c| c.start)
        .ok_or_else(|| decode_error("invalid PNG: no IDAT chunk"))?;
    let extra: usize = chunks.iter().map(|(_, d)| d.len() + 12).sum();
    let mut v = Vec::with_capacity(extra);
    for (tag, data) in chunks {
        let len = u32::try_from(data.len()).map_err(|_| decode_error("chunk larger than 4 GiB"))?;
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(tag);
        v.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(tag);
        crc.update(data);
        v.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    out.splice(at..at, v);
    Ok(out)
}

fn text_chunk(key: &str, value: &str) -> ([u8; 4], Vec<u8>) {
    // tEXt is Latin-1 without control characters other than newline; ASCII is a safe subset.
    if value.bytes().all(|b| b == b'\n' || (0x20..=0x7E).contains(&b)) {
        let mut d = Vec::with_capacity(key.len() + 1 + value.len());
        d.extend_from_slice(key.as_bytes());
        d.push(0);
        d.extend_from_slice(value.as_bytes());
        (*b"tEXt", d)
    } else {
        (*b"iTXt", itxt_payload(key, value.as_bytes()))
    }
}

/// An uncompressed `iTXt` body: keyword, NUL, compression flag 0, method 0, empty language
/// tag, NUL, empty translated keyword, NUL, UTF-8 text.
fn itxt_payload(key: &str, text: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(key.len() + 5 + text.len());
    d.extend_from_slice(key.as_bytes());
    d.extend_from_slice(&[0, 0, 0, 0, 0]);
    d.extend_from_slice(text);
    d
}

fn itxt_keyword(data: &[u8]) -> Option<&[u8]> {
    data.iter().position(|&b| b == 0).map(|n| &data[..n])
}

fn parse_itxt(data: &[u8]) -> Option<(String, String)> {
    let nul = data.iter().position(|&b| b == 0)?;
    let key = latin1(&data[..nul]);
    let rest = data.get(nul + 1..)?;
    let (&compressed, rest) = rest.split_first()?;
    if compressed != 0 {
        return None;
    }
    let rest = rest.get(1..)?;
    let lang_end = rest.iter().position(|&b| b == 0)?;
    let rest = &rest[lang_end + 1..];
    let tk_end = rest.iter().position(|&b| b == 0)?;
    let text = String::from_utf8_lossy(&rest[tk_end + 1..]).into_owned();
    Some((key, text))
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

// --- JPEG -----------------------------------------------------------------------------------

/// `(marker, body)` of every segment with a length, from `SOI` up to the first `SOS`.
fn jpeg_segments(bytes: &[u8]) -> Result<Vec<(u8, &[u8])>, ImagingError> {
    let bad = |what: &str| decode_error(&format!("invalid JPEG: {what}"));
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(bad("missing SOI marker"));
    }
    let mut at = 2;
    let mut out = Vec::new();
    loop {
        if bytes.get(at) != Some(&0xFF) {
            return Err(bad("expected a marker (truncated or corrupt header)"));
        }
        at += 1;
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at).ok_or_else(|| bad("truncated marker"))?;
        at += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => return Ok(out),
            _ => {}
        }
        let len = bytes
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| bad("truncated segment length"))?;
        if len < 2 {
            return Err(bad("segment length below 2"));
        }
        let body = bytes
            .get(at + 2..at + len)
            .ok_or_else(|| bad("segment runs past the end of the file (truncated)"))?;
        out.push((marker, body));
        at += len;
    }
}

/// Insert `blocks` as APPn segments after `SOI` and any `APP0`, in place.
fn insert_jpeg(mut out: Vec<u8>, blocks: &[&Provenance]) -> Result<Vec<u8>, ImagingError> {
    jpeg_segments(&out)?;
    // Keep JFIF's APP0 first, as its spec asks; EXIF readers accept APP1 right after it.
    let mut at = 2;
    while out.get(at..at + 2) == Some(&[0xFF, 0xE0][..]) {
        let len = out
            .get(at + 2..at + 4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| decode_error("invalid JPEG: truncated APP0"))?;
        at += 2 + len;
    }
    let mut v = Vec::with_capacity(blocks.iter().map(|p| p.payload.len() + 4).sum::<usize>());
    for p in blocks {
        let len = u16::try_from(p.payload.len() + 2)
            .map_err(|_| decode_error("a JPEG segment holds at most 65533 bytes"))?;
        v.extend_from_slice(&[0xFF, p.tag[0]]);
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&p.payload);
    }
    let at = at.min(out.len());
    out.splice(at..at, v);
    Ok(out)
}

// --- WebP -----------------------------------------------------------------------------------

const VP8X_ICC: u8 = 0x20;
const VP8X_ALPHA: u8 = 0x10;
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

/// `(fourcc, data)` of one chunk inside a RIFF container.
type RiffChunk<'a> = ([u8; 4], &'a [u8]);

/// `(fourcc, data)` of every chunk inside the RIFF container.
fn riff_chunks(bytes: &[u8]) -> Result<Vec<RiffChunk<'_>>, ImagingError> {
    let bad = |what: &str| decode_error(&format!("invalid WebP: {what}"));
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return Err(bad("not a RIFF WEBP container"));
    }
    let riff_len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let end = riff_len
        .checked_add(8)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("shorter than its RIFF header says (truncated)"))?;
    let mut at = 12;
    let mut out = Vec::new();
    while at + 8 <= end {
        let tag = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]) as usize;
        let data = bytes
            .get(at + 8..)
            .and_then(|rest| rest.get(..len))
            .filter(|_| at + 8 + len <= end)
            .ok_or_else(|| bad("a chunk runs past the end of the container (truncated)"))?;
        out.push((tag, data));
        at += 8 + len + (len & 1);
    }
    Ok(out)
}

fn insert_webp(out: &[u8], blocks: &[&Provenance]) -> Result<Vec<u8>, ImagingError> {
    let chunks = riff_chunks(out)?;
    let probe = probe_bytes(out)?;
    let mut flags = 0u8;
    let mut body: Vec<([u8; 4], &[u8])> = Vec::new();
    for (tag, data) in &chunks {
        if tag == b"VP8X" {
            flags = data.first().copied().unwrap_or(0);
        } else {
            body.push((*tag, *data));
        }
    }
    if probe.has_alpha {
        flags |= VP8X_ALPHA;
    }
    if chunks.iter().any(|(t, _)| t == b"ICCP") {
        flags |= VP8X_ICC;
    }
    for p in blocks {
        match p.kind {
            MetaKind::Exif => flags |= VP8X_EXIF,
            MetaKind::Xmp => flags |= VP8X_XMP,
            _ => {}
        }
        body.push((p.tag, p.payload.as_slice()));
    }
    let (w, h) = (probe.width.saturating_sub(1), probe.height.saturating_sub(1));
    let mut vp8x = [0u8; 10];
    vp8x[0] = flags;
    vp8x[4..7].copy_from_slice(&w.to_le_bytes()[..3]);
    vp8x[7..10].copy_from_slice(&h.to_le_bytes()[..3]);

    let mut v =
        Vec::with_capacity(out.len() + 18 + blocks.iter().map(|p| p.payload.len() + 9).sum::<usize>());
    v.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    for (tag, data) in std::iter::once((*b"VP8X", &vp8x[..])).chain(body) {
        let len = u32::try_from(data.len()).map_err(|_| decode_error("chunk larger than 4 GiB"))?;
        v.extend_from_slice(&tag);
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(data);
        if data.len() % 2 == 1 {
            v.push(0);
        }
    }
    let riff_len = u32::try_from(v.len() - 8).map_err(|_| decode_error("WebP larger than 4 GiB"))?;
    v[4..8].copy_from_slice(&riff_len.to_le_bytes());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;
    use crate::verify::{Expect, verify_bytes};
    use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};

    fn rgb() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(40, 30, |x, y| {
            Rgb([(x * 6) as u8, (y * 8) as u8, 77])
        }))
    }

    fn rgba() -> DynamicImage {
        DynamicImage::ImageRgba8(RgbaImage::from_fn(40, 30, |x, _| {
            Rgba([200, 10, 10, (x * 6) as u8])
        }))
    }

    /// A minimal big-endian TIFF header: what EXIF payloads start with.
    const TIFF: &[u8] = b"MM\0\x2a\0\0\0\x08\0\0";
    const XMP: &[u8] = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF/></x:xmpmeta>";

    fn blocks(format: OutputFormat) -> Vec<Provenance> {
        let exif = match format {
            OutputFormat::Jpeg => [JPEG_EXIF, TIFF].concat(),
            _ => TIFF.to_vec(),
        };
        let xmp = match format {
            OutputFormat::Jpeg => [JPEG_XMP, XMP].concat(),
            _ => XMP.to_vec(),
        };
        let c2pa = match format {
            OutputFormat::Jpeg => b"JP\x02\x11\0\0\0\x01\0\0\0\x10jumbc2pa".to_vec(),
            _ => b"\0\0\0\x10jumbc2pa".to_vec(),
        };
        vec![
            Provenance::new(MetaKind::Exif, format, exif),
            Provenance::new(MetaKind::Xmp, format, xmp),
            Provenance::new(MetaKind::C2pa, format, c2pa),
        ]
    }

    #[test]
    fn every_format_carries_exif_xmp_and_c2pa_and_still_verifies() {
        for (format, q, img) in [
            (OutputFormat::Png, None, rgb()),
            (OutputFormat::Png, None, rgba()),
            (OutputFormat::Jpeg, Some(80), rgb()),
            (OutputFormat::Webp, Some(80), rgb()),
            (OutputFormat::Webp, None, rgb()),
            (OutputFormat::Webp, Some(80), rgba()),
            (OutputFormat::Webp, None, rgba()),
        ] {
            let plain = encode(&img, format, q).unwrap();
            assert!(extract(&plain).unwrap().is_empty(), "{format}");
            let src = blocks(format);
            let (with, report) = embed(plain.clone(), format, &src, &[]).unwrap();
            assert_eq!(report.carried.len(), 3, "{format}");
            assert!(report.dropped.is_empty());
            assert_eq!(extract(&with).unwrap(), src, "{format}");
            let expect = Expect::default()
                .with_format(format)
                .with_alpha(img.color().has_alpha());
            let v = verify_bytes(&with, &expect);
            assert!(v.ok, "{format} {q:?}: {v:?}");
            let back = image::load_from_memory(&with).unwrap();
            assert_eq!((back.width(), back.height()), (40, 30));
            assert_eq!(
                back.color().has_alpha(),
                img.color().has_alpha(),
                "{format} {q:?}"
            );
            // Carrying again from the carried file gives the same blocks, once each.
            let (again, _) = embed(plain.clone(), format, &extract(&with).unwrap(), &[]).unwrap();
            assert_eq!(again, with);
        }
    }

    #[test]
    fn webp_extended_header_flags_say_what_is_inside() {
        let plain = encode(&rgb(), OutputFormat::Webp, Some(80)).unwrap();
        let (with, _) = embed(
            plain.clone(),
            OutputFormat::Webp,
            &blocks(OutputFormat::Webp),
            &[],
        )
        .unwrap();
        let chunks = riff_chunks(&with).unwrap();
        assert_eq!(&chunks[0].0, b"VP8X");
        let flags = chunks[0].1[0];
        assert_eq!(flags & (VP8X_EXIF | VP8X_XMP), VP8X_EXIF | VP8X_XMP);
        assert_eq!(flags & VP8X_ALPHA, 0);
        assert_eq!(&chunks[0].1[4..7], &[39, 0, 0]);
        assert_eq!(&chunks[0].1[7..10], &[29, 0, 0]);
    }

    #[test]
    fn another_format_drops_with_a_reason() {
        let jpeg = encode(&rgb(), OutputFormat::Jpeg, Some(80)).unwrap();
        let text = [("prompt".to_owned(), "a fox".to_owned())];
        let (out, report) = embed(
            jpeg.clone(),
            OutputFormat::Jpeg,
            &blocks(OutputFormat::Png),
            &text,
        )
        .unwrap();
        assert_eq!(out, jpeg);
        assert!(report.carried.is_empty());
        assert_eq!(report.dropped.len(), 4);
        assert!(
            report.dropped[0]
                .reason
                .contains("source is png and the output is jpeg")
        );
        assert_eq!(report.dropped[3].kind, MetaKind::Text);
    }

    #[test]
    fn png_text_is_written_as_text_or_itxt_and_read_back() {
        let png = encode(&rgb(), OutputFormat::Png, None).unwrap();
        let text = vec![
            ("prompt".to_owned(), "a red fox\nin snow".to_owned()),
            ("model".to_owned(), "gpt-image-2".to_owned()),
            ("caption".to_owned(), "Füchse — 狐".to_owned()),
        ];
        let (out, report) = embed(png.clone(), OutputFormat::Png, &[], &text).unwrap();
        assert_eq!(report.text, ["prompt", "model", "caption"]);
        assert_eq!(png_text(&out).unwrap(), text);
        // The png crate, an independent reader, agrees.
        let dec = png::Decoder::new(std::io::Cursor::new(&out));
        let reader = dec.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.uncompressed_latin1_text[0].keyword, "prompt");
        assert_eq!(info.utf8_text[0].get_text().unwrap(), "Füchse — 狐");
        assert!(verify_bytes(&out, &Expect::default()).ok);
    }

    #[test]
    fn bad_keys_and_values_are_refused() {
        let png = encode(&rgb(), OutputFormat::Png, None).unwrap();
        for key in ["", " lead", "two  spaces", "tab\t", &"k".repeat(80)] {
            let r = embed(
                png.clone(),
                OutputFormat::Png,
                &[],
                &[(key.to_owned(), "v".to_owned())],
            );
            assert!(matches!(r, Err(ImagingError::Encode { .. })), "{key:?}");
        }
        let huge = "x".repeat(MAX_TEXT_VALUE + 1);
        assert!(embed(png.clone(), OutputFormat::Png, &[], &[("k".to_owned(), huge)]).is_err());
    }

    #[test]
    fn truncated_and_hostile_containers_are_errors_not_panics() {
        for format in [OutputFormat::Png, OutputFormat::Jpeg, OutputFormat::Webp] {
            let plain = encode(&rgb(), format, Some(80)).unwrap();
            let (with, _) = embed(plain.clone(), format, &blocks(format), &[]).unwrap();
            for cut in 0..with.len().min(400) {
                let _ = extract(&with[..cut]);
                let _ = png_text(&with[..cut]);
            }
        }
        // A PNG chunk that claims 4 GiB.
        let mut png = encode(&rgb(), OutputFormat::Png, None).unwrap();
        png[33..37].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(extract(&png), Err(ImagingError::Decode(_))));
        // A RIFF that claims more than there is.
        let mut webp = encode(&rgb(), OutputFormat::Webp, Some(80)).unwrap();
        webp[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(extract(&webp), Err(ImagingError::Decode(_))));
        assert!(matches!(extract(b"GIF89a"), Err(ImagingError::Unsupported(_))));
    }
}
