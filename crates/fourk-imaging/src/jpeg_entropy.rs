//! Proof that a baseline JPEG decodes, without computing its pixels: every Huffman code of
//! every block of its scan is decoded, under rules stricter than the strict decoder's, and the
//! inverse DCT and colour conversion are left out, because they cannot fail. A JPEG decodes to
//! its frame exactly when its headers parse (zune-jpeg reads them, as in a full decode) and
//! its scan holds, for every MCU, codes that exist in its tables, coefficients that stay
//! inside their blocks, restart markers in sequence at every interval, and no bits left over.
//!
//! This is the check of JPEG verification, where a full decode would produce pixels only to
//! drop them. It says "proven" or "not proven", never why: anything it does not prove (damage,
//! or a layout it does not handle: progressive, arithmetic coding, 12-bit, scans that hold
//! some components only) is decoded by zune-jpeg in strict mode, whose verdict and message
//! stand. The rules here are at least as strict as that decoder's, so what is proven here
//! decodes there too (tested on every kind of damage in this module's tests); the reverse is
//! not needed.
//!
//! On a 4K q90 4:4:4 frame in pieces this takes about half the strict decode's time (33 against
//! 70 ms on one core; `cargo bench -p fourk-imaging --bench jpeg_check`).

use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Lookahead of the fast Huffman table, in bits; longer codes take the slow path.
const FAST_BITS: u32 = 10;

/// The most bits one block can take: the longest DC code and its 11 extra bits, then 63
/// coefficients each with the longest code and 10 extra bits.
const MAX_BLOCK_BITS: usize = 16 + 11 + 63 * (16 + 10);

/// Zero bytes after a segment's data, so that a block that runs past the end reads zeros (and
/// is then refused) instead of out of bounds.
const PAD: usize = MAX_BLOCK_BITS / 8 + 8;

/// What a decoded symbol does to the block position (the `adv` of an [`Entry`]).
mod adv {
    /// End of block.
    pub const EOB: u8 = 0;
    /// Sixteen zeros, which a coefficient must follow.
    pub const ZRL: u8 = 17;
    /// A symbol that no valid block holds (a DC size over 11, an AC size over 10, or an end
    /// of run other than EOB and ZRL).
    pub const BAD: u8 = 0xFF;
    /// A valid DC symbol.
    pub const DC: u8 = 1;
}

/// A decoded code: how many bits it takes with its extra bits, and its effect on the block
/// position (see [`adv`]; for an AC coefficient, its zero run plus one).
#[derive(Clone, Copy, Debug)]
struct Entry {
    bits: u8,
    adv: u8,
}

/// One Huffman table, for a DC or an AC class.
#[derive(Debug)]
struct Table {
    /// Indexed by the next [`FAST_BITS`] bits; `bits == 0` means a longer code (or none).
    fast: Vec<Entry>,
    /// For each length 1..=16, the largest code of that length (-1: none), and the index of
    /// the first symbol of that length minus its first code (JPEG Annex F.2.2.3).
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
    dc: bool,
}

impl Table {
    /// From a DHT table's sixteen counts and its symbols. `None` when the counts overflow the
    /// code space.
    fn new(counts: &[u8; 16], symbols: &[u8], dc: bool) -> Option<Self> {
        let mut table = Self {
            fast: vec![Entry { bits: 0, adv: 0 }; 1 << FAST_BITS],
            max_code: [-1; 17],
            offset: [0; 17],
            symbols: symbols.to_vec(),
            dc,
        };
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = usize::from(counts[len as usize - 1]);
            if n > 0 {
                table.offset[len as usize] = k as i32 - code as i32;
                for _ in 0..n {
                    // The codes of a length must fit in it, short of all ones (Annex C;
                    // libjpeg refuses such a table the same way).
                    if code >= (1 << len) - 1 {
                        return None;
                    }
                    let symbol = *symbols.get(k)?;
                    if len <= FAST_BITS {
                        let entry = table.entry(len, symbol);
                        let shift = FAST_BITS - len;
                        let first = (code << shift) as usize;
                        table.fast[first..first + (1 << shift)].fill(entry);
                    }
                    code += 1;
                    k += 1;
                }
                table.max_code[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Some(table)
    }

    /// The entry for `symbol` under a code of `len` bits.
    fn entry(&self, len: u32, symbol: u8) -> Entry {
        let size = symbol & 0x0F;
        let run = symbol >> 4;
        let adv = if self.dc {
            if symbol <= 11 { adv::DC } else { adv::BAD }
        } else if size == 0 {
            match run {
                0 => adv::EOB,
                15 => adv::ZRL,
                _ => adv::BAD,
            }
        } else if size <= 10 {
            run + 1
        } else {
            adv::BAD
        };
        let extra = if self.dc { symbol.min(11) } else { size };
        Entry {
            bits: len as u8 + extra,
            adv,
        }
    }

    /// The code at the front of `bits` (left-aligned, at least 16 valid bits). `None`: no code
    /// of this table starts there.
    #[inline]
    fn decode(&self, bits: u64) -> Option<Entry> {
        let entry = self.fast[(bits >> (64 - FAST_BITS)) as usize];
        if entry.bits != 0 {
            return Some(entry);
        }
        self.slow((bits >> 48) as u32)
    }

    #[cold]
    fn slow(&self, peek: u32) -> Option<Entry> {
        for len in FAST_BITS + 1..=16 {
            let code = (peek >> (16 - len)) as i32;
            if code <= self.max_code[len as usize] {
                let symbol = *self.symbols.get((self.offset[len as usize] + code) as usize)?;
                return Some(self.entry(len, symbol));
            }
        }
        None
    }
}

/// A component of the scan: its tables and how many blocks it has in an MCU.
#[derive(Debug)]
struct ScanComponent {
    dc: usize,
    ac: usize,
    blocks: usize,
}

/// Whether `jpeg` (a whole file or a piece) is proven to decode with the strict decoder's
/// `options` (see the module documentation). `scratch` is a buffer reused between calls.
pub(crate) fn proven(jpeg: &[u8], options: DecoderOptions, scratch: &mut Vec<u8>) -> bool {
    // The headers as the full decode reads them, so that what it would refuse there (limits,
    // tables, sampling) is refused here too.
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    if decoder.decode_headers().is_err() {
        return false;
    }
    scan_proven(jpeg, scratch).unwrap_or(false)
}

/// A frame's width, height and components (id, H, V, quantisation table).
type Frame = (usize, usize, Vec<(u8, usize, usize, usize)>);

/// The marker walk and the scan; `None` for anything not proven.
fn scan_proven(jpeg: &[u8], scratch: &mut Vec<u8>) -> Option<bool> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut tables: [[Option<Table>; 4]; 2] = Default::default();
    let mut quant = [false; 4];
    let mut frame: Option<Frame> = None;
    let mut interval = 0usize;
    let mut at = 2;
    loop {
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        let body = jpeg.get(at + 4..(at + 2 + len).max(at + 4))?;
        match marker {
            0xDB => {
                let mut rest = body;
                while let [pq_tq, tail @ ..] = rest {
                    let size = if pq_tq >> 4 == 0 { 64 } else { 128 };
                    *quant.get_mut(usize::from(pq_tq & 0x0F))? = true;
                    rest = tail.get(size..)?;
                }
            }
            0xC4 => {
                let mut rest = body;
                while let [tc_th, tail @ ..] = rest {
                    let counts: &[u8; 16] = tail.get(..16)?.try_into().ok()?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = tail.get(16..16 + n)?;
                    let class = usize::from(tc_th >> 4);
                    let slot = tables.get_mut(class)?.get_mut(usize::from(tc_th & 0x0F))?;
                    *slot = Some(Table::new(counts, symbols, class == 0)?);
                    rest = &tail[16 + n..];
                }
            }
            0xC0 | 0xC1 => {
                let [8, y0, y1, x0, x1, nf, comps @ ..] = body else {
                    return None;
                };
                let (height, width) = (
                    usize::from(u16::from_be_bytes([*y0, *y1])),
                    usize::from(u16::from_be_bytes([*x0, *x1])),
                );
                if width == 0 || height == 0 || !matches!(nf, 1 | 3) || comps.len() != 3 * usize::from(*nf) {
                    return None;
                }
                let comps = comps
                    .chunks_exact(3)
                    .map(|c| {
                        (
                            c[0],
                            usize::from(c[1] >> 4),
                            usize::from(c[1] & 0x0F),
                            usize::from(c[2]),
                        )
                    })
                    .collect::<Vec<_>>();
                // The samplings fourk's encoders and nearly every other writer use: grey at
                // 1x1, colour with luma at 1 or 2 each way and chroma at 1x1 (4:4:4, 4:2:2,
                // 4:4:0, 4:2:0). Others are left to the decoder. So is a second frame header.
                let (&(_, luma_h, luma_v, _), chroma) = comps.split_first()?;
                let usual = if chroma.is_empty() {
                    (luma_h, luma_v) == (1, 1)
                } else {
                    (1..=2).contains(&luma_h)
                        && (1..=2).contains(&luma_v)
                        && chroma.iter().all(|&(_, h, v, _)| (h, v) == (1, 1))
                };
                if !usual || frame.is_some() {
                    return None;
                }
                frame = Some((width, height, comps));
            }
            0xDD => interval = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?])),
            0xDA => {
                let (width, height, comps) = frame.as_ref()?;
                let [ns, rest @ ..] = body else { return None };
                let ns = usize::from(*ns);
                // Every component, in frame order, then Ss = 0, Se = 63, Ah = Al = 0.
                if ns != comps.len() || rest.len() != 2 * ns + 3 || rest[2 * ns..] != [0, 63, 0] {
                    return None;
                }
                let (h_max, v_max) = comps.iter().fold((1, 1), |(h, v), c| (h.max(c.1), v.max(c.2)));
                let mut scan = Vec::with_capacity(ns);
                for (sel, &(id, h, v, tq)) in rest.chunks_exact(2).zip(comps) {
                    let (dc, ac) = (usize::from(sel[1] >> 4), usize::from(sel[1] & 0x0F));
                    if sel[0] != id
                        || !*quant.get(tq)?
                        || tables[0].get(dc)?.is_none()
                        || tables[1].get(ac)?.is_none()
                    {
                        return None;
                    }
                    // A scan of one component has one block per MCU (Annex A.2.2).
                    let blocks = if ns == 1 { 1 } else { h * v };
                    scan.push(ScanComponent { dc, ac, blocks });
                }
                let mcus = if ns == 1 {
                    width.div_ceil(8) * height.div_ceil(8)
                } else {
                    width.div_ceil(8 * h_max) * height.div_ceil(8 * v_max)
                };
                let [dc, ac] = &tables;
                let scan = Scan {
                    dc,
                    ac,
                    components: &scan,
                };
                return Some(segments_proven(
                    jpeg.get(at + 2 + len..)?,
                    mcus,
                    interval,
                    &scan,
                    scratch,
                ));
            }
            // Other frames (progressive, lossless, arithmetic coding), arithmetic tables, a
            // line count after the scan, or a marker without a length: not proven here.
            0xC2..=0xCF | 0xD0..=0xD9 | 0xDC | 0x01 => return None,
            _ => {}
        }
        at += 2 + len;
    }
}

/// The tables and components of the scan.
struct Scan<'a> {
    dc: &'a [Option<Table>; 4],
    ac: &'a [Option<Table>; 4],
    components: &'a [ScanComponent],
}

/// The entropy-coded data after SOS through EOI: `mcus` MCUs in segments of `interval` (0: one
/// segment), cut as verification cuts pieces (`jpeg_scan::segments`: RSTn in sequence, none
/// empty, EOI last with only zero bytes after it).
fn segments_proven(
    data: &[u8],
    mcus: usize,
    interval: usize,
    scan: &Scan<'_>,
    scratch: &mut Vec<u8>,
) -> bool {
    let interval = if interval == 0 { mcus } else { interval };
    let Some(segments) = crate::jpeg_scan::segments(data, mcus.div_ceil(interval)) else {
        return false;
    };
    segments
        .iter()
        .enumerate()
        .all(|(i, segment)| segment_proven(segment, interval.min(mcus - i * interval), scan, scratch))
}

/// One restart segment (stuffed bytes as in the file, no marker) holds exactly `mcus` MCUs,
/// padded to its last byte with one bits.
fn segment_proven(stuffed: &[u8], mcus: usize, scan: &Scan<'_>, buf: &mut Vec<u8>) -> bool {
    // Unstuffed (every 0xFF is followed by a 0x00 here: the caller found no marker).
    buf.clear();
    buf.reserve(stuffed.len() + PAD);
    let mut from = 0;
    while let Some(i) = memchr::memchr(0xFF, &stuffed[from..]).map(|i| from + i) {
        buf.extend_from_slice(&stuffed[from..=i]);
        from = i + 2;
    }
    buf.extend_from_slice(&stuffed[from.min(stuffed.len())..]);
    let bits = buf.len() * 8;
    buf.resize(buf.len() + PAD, 0);
    let mut reader = Reader {
        data: buf,
        at: 0,
        bits: 0,
        count: 0,
    };
    for _ in 0..mcus {
        for c in scan.components {
            let (Some(dc), Some(ac)) = (&scan.dc[c.dc], &scan.ac[c.ac]) else {
                return false;
            };
            for _ in 0..c.blocks {
                if block(&mut reader, dc, ac).is_none() || reader.consumed() > bits {
                    return false;
                }
            }
        }
    }
    // Fewer than eight bits left, all ones.
    let left = bits - reader.consumed();
    left < 8 && (left == 0 || buf[bits / 8 - 1] & ((1u8 << left) - 1) == (1u8 << left) - 1)
}

/// A bit reader over unstuffed data followed by [`PAD`] zero bytes.
struct Reader<'a> {
    data: &'a [u8],
    /// The next byte to load.
    at: usize,
    /// Loaded bits, left-aligned, and how many there are.
    bits: u64,
    count: u32,
}

impl Reader<'_> {
    /// Bits taken so far.
    fn consumed(&self) -> usize {
        self.at * 8 - self.count as usize
    }

    /// The next code of `table`, taken with its extra bits.
    #[inline]
    fn take(&mut self, table: &Table) -> Option<Entry> {
        if self.count < 32 {
            let word = self.data.get(self.at..self.at + 4)?;
            let word = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            self.bits |= u64::from(word) << (32 - self.count);
            self.at += 4;
            self.count += 32;
        }
        let entry = table.decode(self.bits)?;
        // At most 16 + 11 bits, and at least 32 are loaded.
        self.bits <<= entry.bits;
        self.count -= u32::from(entry.bits);
        Some(entry)
    }
}

/// One block taken from `reader`; `None` for a code that is not in its table, a symbol no
/// block holds, or coefficients past the block's end.
#[inline]
fn block(reader: &mut Reader<'_>, dc: &Table, ac: &Table) -> Option<()> {
    if reader.take(dc)?.adv != adv::DC {
        return None;
    }
    let mut k = 1;
    while k < 64 {
        match reader.take(ac)?.adv {
            adv::EOB => break,
            adv::ZRL => {
                k += 16;
                if k > 63 {
                    return None;
                }
            }
            adv::BAD => return None,
            run => {
                k += usize::from(run);
                if k > 64 {
                    return None;
                }
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncodeOptions;
    use crate::encode::{JpegSubsampling, encode_with_options};
    use fourk_api::OutputFormat;
    use image::{DynamicImage, GrayImage, RgbImage};

    fn photo(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut rng = fastrand::Rng::with_seed(seed);
        RgbImage::from_fn(w, h, |x, y| {
            let n = rng.u8(..48);
            image::Rgb([
                (x % 251) as u8 ^ n,
                (y * 3 % 241) as u8,
                ((x + y) % 239) as u8 ^ (n / 2),
            ])
        })
    }

    /// fourk's encoder (strips on `threads` cores, so restart markers when more than one).
    fn fourk_jpeg(img: &RgbImage, quality: u8, subsampling: JpegSubsampling, threads: usize) -> Vec<u8> {
        let options = EncodeOptions::default().with_jpeg_subsampling(subsampling);
        let img = DynamicImage::ImageRgb8(img.clone());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| encode_with_options(&img, OutputFormat::Jpeg, Some(quality), &options))
            .unwrap()
    }

    /// `image`'s own encoder: another writer, and grey (a scan of one component).
    fn image_jpeg(img: &DynamicImage, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, quality,
        ))
        .unwrap();
        out
    }

    fn decodes(jpeg: &[u8]) -> bool {
        crate::verify::decode_jpeg_piece(&mut Vec::new(), jpeg).is_ok()
    }

    fn proves(jpeg: &[u8]) -> bool {
        proven(jpeg, crate::verify::jpeg_options(), &mut Vec::new())
    }

    /// JPEGs of every shape fourk writes or meets: sizes that leave partial MCUs, both
    /// subsamplings, low to top quality, one and several strips, grey and another encoder.
    fn samples() -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (w, h) in [(64, 64), (333, 197), (1001, 67)] {
            let img = photo(w, h, u64::from(w));
            for quality in [30, 90, 100] {
                for subsampling in [JpegSubsampling::Full, JpegSubsampling::Half] {
                    for threads in [1, 3] {
                        out.push((
                            format!("{w}x{h} q{quality} {subsampling:?} {threads} strips"),
                            fourk_jpeg(&img, quality, subsampling, threads),
                        ));
                    }
                }
            }
            out.push((
                format!("{w}x{h} image q85"),
                image_jpeg(&DynamicImage::ImageRgb8(img.clone()), 85),
            ));
            let grey =
                DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| image::Luma([(x ^ y) as u8])));
            out.push((format!("{w}x{h} grey image q75"), image_jpeg(&grey, 75)));
        }
        out
    }

    #[test]
    fn every_intact_jpeg_and_piece_is_proven() {
        for (what, jpeg) in samples() {
            assert!(decodes(&jpeg), "{what}: the sample itself");
            assert!(proves(&jpeg), "{what}");
            for (i, piece) in crate::jpeg_scan::split_rows(&jpeg, 4)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                assert!(proves(piece), "{what}: piece {i}");
            }
        }
    }

    /// The property verification rests on: whatever is proven, the strict decoder decodes.
    /// Damage of every kind at many places; much is refused, and what is not (a changed bit
    /// inside a coefficient's value is still a valid JPEG) must decode. 60 rounds per sample
    /// here; `FOURK_FUZZ_ROUNDS` and `FOURK_FUZZ_SEED` make it a long run
    /// (`scripts/fuzz-jpeg-check`).
    #[test]
    fn nothing_the_strict_decoder_refuses_is_proven() {
        let mut rng = fastrand::Rng::with_seed(crate::test_env("FOURK_FUZZ_SEED", 17));
        let rounds = crate::test_env("FOURK_FUZZ_ROUNDS", 60);
        let (mut tried, mut proven_damaged, mut refused_by_decoder) = (0, 0, 0);
        for (what, jpeg) in samples() {
            let scan = crate::jpeg_scan::layout(&jpeg).unwrap().scan;
            for round in 0..rounds {
                let mut bad = jpeg.clone();
                let at = rng.usize(scan..bad.len() - 2);
                let kind = round % 6;
                match kind {
                    0 => bad[at] ^= 1 << rng.u8(..8),
                    1 => bad[at] = rng.u8(..),
                    2 => bad.truncate(at),
                    3 => drop(bad.drain(at..(at + rng.usize(1..9)).min(jpeg.len() - 2))),
                    4 => bad.insert(at, rng.u8(..)),
                    // Header damage: anywhere before the scan.
                    _ => bad[rng.usize(2..scan)] ^= 1 << rng.u8(..8),
                }
                tried += 1;
                let ok = decodes(&bad);
                refused_by_decoder += usize::from(!ok);
                if proves(&bad) {
                    proven_damaged += 1;
                    assert!(
                        ok,
                        "{what}, damage {kind} at {at}: proven but the decoder refuses it"
                    );
                }
            }
        }
        // The test has teeth: the decoder refuses much of the damage, and the check passes
        // some (the harmless kind) without which the assertion above would never run.
        assert!(refused_by_decoder > tried / 5, "{refused_by_decoder} of {tried}");
        assert!(
            proven_damaged > 0 && proven_damaged < tried / 2,
            "{proven_damaged} of {tried}"
        );
    }

    #[test]
    fn damage_the_decoder_lets_through_is_not_proven() {
        let jpeg = fourk_jpeg(&photo(640, 480, 3), 90, JpegSubsampling::Full, 3);
        let l = crate::jpeg_scan::layout(&jpeg).unwrap();
        let mid = (l.scan + jpeg.len()) / 2;
        // Bytes cut out of a segment: the decoder resyncs at the next restart marker.
        let mut cut = jpeg.clone();
        cut.drain(mid..mid + 64);
        // A run of one bits, which no code of the tables is.
        let mut ones = jpeg.clone();
        ones[mid..mid + 64].fill(0xFE);
        // A restart marker out of turn, a stray marker, data after the end.
        let rst = l.scan + jpeg[l.scan..].windows(2).position(|w| w == [0xFF, 0xD1]).unwrap();
        let mut renumbered = jpeg.clone();
        renumbered[rst + 1] = 0xD2;
        let mut stray = jpeg.clone();
        stray[mid..mid + 2].copy_from_slice(&[0xFF, 0xC4]);
        let mut tail = jpeg.clone();
        tail.extend_from_slice(&[0x12, 0x34]);
        for (what, bad) in [
            ("cut", cut),
            ("ones", ones),
            ("rst", renumbered),
            ("stray", stray),
            ("tail", tail),
        ] {
            assert!(!proves(&bad), "{what}");
        }
        // Zero bytes after the end are padding, as for the decoder.
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0, 0]);
        assert!(proves(&padded));
    }

    #[test]
    fn layouts_left_to_the_decoder() {
        let jpeg = fourk_jpeg(&photo(128, 64, 5), 90, JpegSubsampling::Full, 1);
        let sof = crate::jpeg_scan::layout(&jpeg).unwrap().sof_height - 5;
        assert_eq!(jpeg[sof..sof + 2], [0xFF, 0xC0]);
        // Progressive, lossless and arithmetic-coded frames.
        for marker in [0xC2, 0xC3, 0xC9] {
            let mut other = jpeg.clone();
            other[sof + 1] = marker;
            assert!(!proves(&other), "{marker:x}");
        }
        // Samplings other than the usual four (chroma at 2x1; luma at 3x1), and a second frame
        // header.
        for (at, hv) in [(sof + 13 + 1, 0x21), (sof + 10 + 1, 0x31)] {
            let mut other = jpeg.clone();
            other[at] = hv;
            assert!(!proves(&other), "{hv:x}");
        }
        let len = usize::from(u16::from_be_bytes([jpeg[sof + 2], jpeg[sof + 3]]));
        let mut twice = jpeg[..sof + 2 + len].to_vec();
        twice.extend_from_slice(&jpeg[sof..]);
        assert!(!proves(&twice));
        // Not a JPEG at all, or only its start.
        assert!(!proves(b"\x89PNG\r\n\x1a\n"));
        assert!(!proves(&jpeg[..100]));
    }

    #[test]
    fn tables_that_overflow_their_code_space_are_refused() {
        // Three codes of one bit; two of one bit, or one and two of two (all ones reserved).
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(Table::new(&counts, &[0, 1, 2], true).is_none());
        counts[0] = 2;
        assert!(Table::new(&counts, &[0, 1], true).is_none());
        counts[0] = 1;
        counts[1] = 2;
        assert!(Table::new(&counts, &[0, 1, 2], true).is_none());
        counts[1] = 1;
        counts[2] = 1;
        let t = Table::new(&counts, &[0, 1, 2], true).unwrap();
        // "0" -> 0, "10" -> 1, "110" -> 2 (each with as many extra bits), "111..." -> none.
        assert_eq!(t.decode(0).unwrap().bits, 1);
        assert_eq!(t.decode(0b10 << 62).unwrap().bits, 2 + 1);
        assert_eq!(t.decode(0b110 << 61).unwrap().bits, 3 + 2);
        assert!(t.decode(u64::MAX).is_none());
        // Longer codes than the fast table, through the slow path.
        let mut counts = [0u8; 16];
        counts[12] = 2;
        let t = Table::new(&counts, &[0x01, 0x00], false).unwrap();
        let e = t.decode(1u64 << (63 - 12)).unwrap();
        assert_eq!((e.bits, e.adv), (13, adv::EOB));
        let e = t.decode(0).unwrap();
        assert_eq!((e.bits, e.adv), (14, 1));
    }
}
