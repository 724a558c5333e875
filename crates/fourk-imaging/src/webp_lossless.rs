//! Proof that a lossless WebP (VP8L) decodes, without producing its pixels.
//!
//! Verifying a lossless WebP decoded the whole frame with libwebp (about 150 ms at 4K, on one
//! core, after the encoder, which is also single-threaded at the fast efforts) only to drop
//! the pixels. Whether libwebp decodes a VP8L bitstream depends on its entropy coding alone:
//! the prefix codes must be valid and complete, every backward reference must point inside
//! the pixels decoded so far and end inside the frame, and the symbols must come out exactly at
//! the last pixel without reading past the chunk. The inverse transforms, the colour cache's
//! contents and the ARGB output cannot fail. So the main image is walked code by code and
//! nothing is written; only the small sub-images (transform data and the entropy image, whose
//! values choose the prefix codes) are decoded in full.
//!
//! libwebp parses the container first ([`proven`] asks it for the features, as the full decode
//! would), and anything this check does not prove (an incomplete or empty code, a symbol
//! outside its alphabet, a reference out of range, a truncated stream, a repeated transform, a
//! colour cache of 0 or more than 11 bits, an animation, a lossy stream) leaves the verdict to
//! libwebp's full decode: this check only ever says yes where libwebp decodes, never no. Its
//! rules are those of libwebp's decoder (`vp8l_dec.c`, `huffman_utils.c`) and RFC 9649; the
//! tests hold it to libwebp on damaged files.

/// Alphabet sizes and limits of the format (RFC 9649, libwebp's `format_constants.h`).
const NUM_LITERAL_CODES: u32 = 256;
const NUM_LENGTH_CODES: u32 = 24;
const NUM_DISTANCE_CODES: usize = 40;
const CODE_LENGTH_CODES: usize = 19;
const MAX_CODE_LENGTH: usize = 15;
const MAX_CACHE_BITS: u32 = 11;
/// libwebp's code length when a repeat comes before any non-zero length.
const DEFAULT_CODE_LENGTH: u8 = 8;
const CODE_LENGTH_ORDER: [usize; CODE_LENGTH_CODES] =
    [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
/// The near-neighbour distances of plane codes 1-120, as (dx, dy) (RFC 9649, 4.2.2).
#[rustfmt::skip]
const DISTANCE_MAP: [(i8, i8); 120] = [
    (0, 1),  (1, 0),  (1, 1),  (-1, 1), (0, 2),  (2, 0),  (1, 2),  (-1, 2),
    (2, 1),  (-2, 1), (2, 2),  (-2, 2), (0, 3),  (3, 0),  (1, 3),  (-1, 3),
    (3, 1),  (-3, 1), (2, 3),  (-2, 3), (3, 2),  (-3, 2), (0, 4),  (4, 0),
    (1, 4),  (-1, 4), (4, 1),  (-4, 1), (3, 3),  (-3, 3), (2, 4),  (-2, 4),
    (4, 2),  (-4, 2), (0, 5),  (3, 4),  (-3, 4), (4, 3),  (-4, 3), (5, 0),
    (1, 5),  (-1, 5), (5, 1),  (-5, 1), (2, 5),  (-2, 5), (5, 2),  (-5, 2),
    (4, 4),  (-4, 4), (3, 5),  (-3, 5), (5, 3),  (-5, 3), (0, 6),  (6, 0),
    (1, 6),  (-1, 6), (6, 1),  (-6, 1), (2, 6),  (-2, 6), (6, 2),  (-6, 2),
    (4, 5),  (-4, 5), (5, 4),  (-5, 4), (3, 6),  (-3, 6), (6, 3),  (-6, 3),
    (0, 7),  (7, 0),  (1, 7),  (-1, 7), (5, 5),  (-5, 5), (7, 1),  (-7, 1),
    (4, 6),  (-4, 6), (6, 4),  (-6, 4), (2, 7),  (-2, 7), (7, 2),  (-7, 2),
    (3, 7),  (-3, 7), (7, 3),  (-7, 3), (5, 6),  (-5, 6), (6, 5),  (-6, 5),
    (8, 0),  (4, 7),  (-4, 7), (7, 4),  (-7, 4), (8, 1),  (8, 2),  (6, 6),
    (-6, 6), (8, 3),  (5, 7),  (-5, 7), (7, 5),  (-7, 5), (8, 4),  (6, 7),
    (-6, 7), (7, 6),  (-7, 6), (8, 5),  (7, 7),  (-7, 7), (8, 6),  (8, 7),
];

/// Whether `webp` (a whole WebP file) is a still lossless image that libwebp decodes, proven
/// without producing its pixels. `false` means "not proven": the caller decodes it. Also
/// `false`, before any work, when `transparency` is asked and the picture has an alpha
/// channel: only its pixels tell whether one is transparent.
pub(crate) fn proven(webp: &[u8], transparency: bool) -> bool {
    let Some(features) = webp::BitstreamFeatures::new(webp) else {
        return false;
    };
    if features.has_animation()
        || !matches!(features.format(), Some(webp::BitstreamFormat::Lossless))
        || (transparency && features.has_alpha())
    {
        return false;
    }
    let Some(chunk) = vp8l_chunk(webp) else {
        return false;
    };
    check(chunk, (features.width(), features.height())).is_some()
}

/// The payload of the first `VP8L` chunk of a RIFF WebP file, when the file holds all the
/// RIFF size says (libwebp's full decode calls a shorter file truncated, while its feature
/// parse does not) and the chunks up to it lie inside that size.
fn vp8l_chunk(webp: &[u8]) -> Option<&[u8]> {
    if webp.get(..4)? != b"RIFF" || webp.get(8..12)? != b"WEBP" {
        return None;
    }
    let riff = u32::from_le_bytes(webp.get(4..8)?.try_into().ok()?) as usize + 8;
    let webp = webp.get(..riff)?;
    let mut at = 12;
    while let Some(header) = webp.get(at..at + 8) {
        let size = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
        let payload = webp.get(at + 8..at + 8 + size)?;
        match &header[..4] {
            b"VP8L" => return Some(payload),
            // What libwebp stops at before a VP8L chunk (with its features saying lossless,
            // these do not come first; refused to be sure).
            b"VP8 " | b"ALPH" | b"ANIM" | b"ANMF" => return None,
            _ => at += 8 + size + (size & 1),
        }
    }
    None
}

/// A little-endian bit reader over the chunk, as VP8L reads it: least significant bit first.
/// Reading past the end yields zero bits, counted: the stream is proven only if it did not.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to load (past `data.len()` once zeros are loaded).
    pos: usize,
    val: u64,
    nbits: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut bits = Self {
            data,
            pos: 0,
            val: 0,
            nbits: 0,
        };
        bits.refill();
        bits
    }

    /// At least 32 bits in `val` after this (nothing VP8L reads at once is longer).
    #[inline]
    fn refill(&mut self) {
        if self.nbits >= 32 {
            return;
        }
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.val |= u64::from_le_bytes(word) << self.nbits;
            let bytes = (63 - self.nbits) / 8;
            self.pos += bytes as usize;
            self.nbits += bytes * 8;
        } else {
            while self.nbits <= 56 {
                let byte = self.data.get(self.pos).copied().unwrap_or(0);
                self.val |= u64::from(byte) << self.nbits;
                self.pos += 1;
                self.nbits += 8;
            }
        }
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.val >>= n;
        self.nbits -= n;
    }

    /// `n` <= 24 bits.
    #[inline]
    fn read(&mut self, n: u32) -> u32 {
        self.refill();
        let v = (self.val & ((1 << n) - 1)) as u32;
        self.consume(n);
        v
    }

    /// Whether more bits were consumed than the chunk holds.
    fn overrun(&self) -> bool {
        self.pos * 8 - self.nbits as usize > self.data.len() * 8
    }
}

/// The most lookup entries (4 bytes each) the check builds before it leaves a stream to libwebp.
const MAX_TABLE_ENTRIES: usize = 1 << 22;

/// Root table bits of a prefix code's lookup (longer codes go through a second level).
const ROOT_BITS: u32 = 8;
const ROOT_MASK: u64 = (1 << ROOT_BITS) - 1;
/// A root entry that points to a second-level table.
const LINK: u32 = 1 << 31;

/// A canonical prefix code as lookup tables: entries are `symbol << 16 | length` (the length
/// in the low byte, so that it is the shift as it comes: the bits of a symbol are read one
/// dependent load after another, and this is the critical path), or for a root entry of codes
/// longer than [`ROOT_BITS`], `LINK | offset << 8 | table_bits`; a second-level entry's length
/// counts the root bits too.
struct Code {
    table: Vec<u32>,
    /// A single symbol, read with no bits: the walk skips it.
    trivial: bool,
}

impl Code {
    /// The code of these lengths, if libwebp builds it: lengths <= 15, at least one symbol,
    /// and either a single symbol (read with no bits) or a complete code.
    fn new(lengths: &[u8]) -> Option<Self> {
        let mut count = [0u32; MAX_CODE_LENGTH + 1];
        for &len in lengths {
            count[usize::from(len)] += 1;
        }
        let used = lengths.len() as u32 - count[0];
        if used == 0 {
            return None;
        }
        if used == 1 {
            let symbol = lengths.iter().position(|&l| l > 0)? as u32;
            return Some(Self {
                table: vec![symbol << 16; 1 << ROOT_BITS],
                trivial: true,
            });
        }
        let kraft: u32 = (1..=MAX_CODE_LENGTH)
            .map(|l| count[l] << (MAX_CODE_LENGTH - l))
            .sum();
        if kraft != 1 << MAX_CODE_LENGTH {
            return None;
        }
        // Canonical codes: by length, then symbol; stored bit-reversed, as read.
        let mut next = [0u32; MAX_CODE_LENGTH + 2];
        let mut code = 0;
        for len in 1..=MAX_CODE_LENGTH {
            code = (code + count[len - 1] * u32::from(len > 1)) << 1;
            next[len] = code;
        }
        let reversed = |code: u32, len: u32| code.reverse_bits() >> (32 - len);
        // Second-level table sizes: the longest code under each root prefix.
        let mut longest = [0u32; 1 << ROOT_BITS];
        let mut codes = Vec::with_capacity(used as usize);
        for (symbol, &len) in lengths.iter().enumerate() {
            if len == 0 {
                continue;
            }
            let len = u32::from(len);
            let rev = reversed(next[len as usize], len);
            next[len as usize] += 1;
            if len > ROOT_BITS {
                let prefix = (rev as u64 & ROOT_MASK) as usize;
                longest[prefix] = longest[prefix].max(len - ROOT_BITS);
            }
            codes.push((symbol as u32, len, rev));
        }
        let mut offsets = [0u32; 1 << ROOT_BITS];
        let mut size = 1u32 << ROOT_BITS;
        for (offset, &bits) in offsets.iter_mut().zip(&longest) {
            if bits > 0 {
                *offset = size;
                size += 1 << bits;
            }
        }
        let mut table = vec![0u32; size as usize];
        for (prefix, (&offset, &bits)) in offsets.iter().zip(&longest).enumerate() {
            if bits > 0 {
                table[prefix] = LINK | offset << 8 | bits;
            }
        }
        for (symbol, len, rev) in codes {
            if len <= ROOT_BITS {
                let mut at = rev as usize;
                while at < 1 << ROOT_BITS {
                    table[at] = symbol << 16 | len;
                    at += 1 << len;
                }
            } else {
                let prefix = (rev as u64 & ROOT_MASK) as usize;
                let (offset, bits) = (offsets[prefix] as usize, longest[prefix]);
                let sub = len - ROOT_BITS;
                let mut at = (rev >> ROOT_BITS) as usize;
                while at < 1 << bits {
                    table[offset + at] = symbol << 16 | len;
                    at += 1 << sub;
                }
            }
        }
        Some(Self {
            table,
            trivial: false,
        })
    }

    /// The next symbol (the reader holds at least 15 bits: [`Bits::refill`] first).
    #[inline]
    fn read(&self, bits: &mut Bits<'_>) -> u32 {
        let mut entry = self.table[(bits.val & ROOT_MASK) as usize];
        if entry & LINK != 0 {
            let sub = (bits.val >> ROOT_BITS) & ((1 << (entry & 0xff)) - 1);
            entry = self.table[((entry & !LINK) >> 8) as usize + sub as usize];
        }
        // The length is in the low byte and the rest of that byte's word is the symbol above
        // bit 16: a wrapping shift by the entry is a shift by the length.
        bits.val = bits.val.wrapping_shr(entry);
        bits.nbits -= entry & 0xff;
        entry >> 16
    }
}

/// The five codes of a prefix-code group: green (with lengths and cache indices), red, blue,
/// alpha, distance.
struct Group {
    green: Code,
    red: Code,
    blue: Code,
    alpha: Code,
    distance: Code,
}

/// Read one prefix code of `alphabet` symbols (RFC 9649, 3.7.2.1; libwebp `ReadHuffmanCode`).
fn read_code(bits: &mut Bits<'_>, alphabet: usize, lengths: &mut Vec<u8>) -> Option<Code> {
    lengths.clear();
    lengths.resize(alphabet, 0);
    if bits.read(1) == 1 {
        let two = bits.read(1) == 1;
        let first = if bits.read(1) == 1 {
            bits.read(8)
        } else {
            bits.read(1)
        };
        *lengths.get_mut(first as usize)? = 1;
        if two {
            *lengths.get_mut(bits.read(8) as usize)? = 1;
        }
    } else {
        let mut length_lengths = [0u8; CODE_LENGTH_CODES];
        let n = bits.read(4) as usize + 4;
        for &symbol in &CODE_LENGTH_ORDER[..n] {
            length_lengths[symbol] = bits.read(3) as u8;
        }
        let length_code = Code::new(&length_lengths)?;
        let mut max_symbol = if bits.read(1) == 1 {
            let width = 2 + 2 * bits.read(3);
            let max = 2 + bits.read(width) as usize;
            if max > alphabet {
                return None;
            }
            max
        } else {
            alphabet
        };
        let (mut symbol, mut previous) = (0, DEFAULT_CODE_LENGTH);
        while symbol < alphabet {
            if max_symbol == 0 {
                break;
            }
            max_symbol -= 1;
            bits.refill();
            let len = length_code.read(bits) as u8;
            if len < 16 {
                lengths[symbol] = len;
                symbol += 1;
                if len != 0 {
                    previous = len;
                }
            } else {
                let (extra, offset, value) = match len {
                    16 => (2, 3, previous),
                    17 => (3, 3, 0),
                    _ => (7, 11, 0),
                };
                let repeat = bits.read(extra) as usize + offset;
                if symbol + repeat > alphabet {
                    return None;
                }
                lengths[symbol..symbol + repeat].fill(value);
                symbol += repeat;
            }
        }
    }
    if bits.overrun() {
        return None;
    }
    Code::new(lengths)
}

fn read_group(bits: &mut Bits<'_>, cache_bits: u32, lengths: &mut Vec<u8>) -> Option<Group> {
    let cache = if cache_bits > 0 { 1 << cache_bits } else { 0 };
    let green = (NUM_LITERAL_CODES + NUM_LENGTH_CODES) as usize + cache;
    Some(Group {
        green: read_code(bits, green, lengths)?,
        red: read_code(bits, 256, lengths)?,
        blue: read_code(bits, 256, lengths)?,
        alpha: read_code(bits, 256, lengths)?,
        distance: read_code(bits, NUM_DISTANCE_CODES, lengths)?,
    })
}

/// A length or distance from its prefix symbol and extra bits (libwebp `GetCopyDistance`).
#[inline]
fn prefix_value(symbol: u32, bits: &mut Bits<'_>) -> usize {
    if symbol < 4 {
        return symbol as usize + 1;
    }
    let extra = (symbol - 2) >> 1;
    let offset = (2 + (symbol & 1)) << extra;
    bits.refill();
    (offset + bits.read(extra) + 1) as usize
}

/// A distance code to a distance in pixels for a picture `width` wide.
#[inline]
fn distance(code: usize, width: usize) -> usize {
    if code > DISTANCE_MAP.len() {
        return code - DISTANCE_MAP.len();
    }
    let (dx, dy) = DISTANCE_MAP[code - 1];
    let d = i64::from(dy) * width as i64 + i64::from(dx);
    // Only possible for pictures narrower than the neighbourhood.
    d.max(1) as usize
}

/// The colour cache size in bits: 0 for none, else 1-11.
fn cache_bits(bits: &mut Bits<'_>) -> Option<u32> {
    if bits.read(1) == 0 {
        return Some(0);
    }
    let n = bits.read(4);
    (1..=MAX_CACHE_BITS).contains(&n).then_some(n)
}

fn subsample(size: usize, bits: u32) -> usize {
    (size + (1 << bits) - 1) >> bits
}

/// Decode a sub-image (transform data or the entropy image) in full: `width * height` ARGB.
fn sub_image(bits: &mut Bits<'_>, width: usize, height: usize, lengths: &mut Vec<u8>) -> Option<Vec<u32>> {
    let cache_bits = cache_bits(bits)?;
    let group = read_group(bits, cache_bits, lengths)?;
    let total = width.checked_mul(height)?;
    let mut pixels: Vec<u32> = Vec::with_capacity(total);
    let mut cache = vec![0u32; 1 << cache_bits];
    let mut cached = 0;
    let shift = 32 - cache_bits;
    while pixels.len() < total {
        bits.refill();
        let green = group.green.read(bits);
        if green < NUM_LITERAL_CODES {
            let red = group.red.read(bits);
            bits.refill();
            let blue = group.blue.read(bits);
            let alpha = group.alpha.read(bits);
            pixels.push(alpha << 24 | red << 16 | green << 8 | blue);
        } else if green < NUM_LITERAL_CODES + NUM_LENGTH_CODES {
            let length = prefix_value(green - NUM_LITERAL_CODES, bits);
            bits.refill();
            let code = prefix_value(group.distance.read(bits), bits);
            let dist = distance(code, width);
            if dist > pixels.len() || length > total - pixels.len() {
                return None;
            }
            for _ in 0..length {
                pixels.push(pixels[pixels.len() - dist]);
            }
        } else {
            // Every pixel before this one goes into the cache first, in order.
            for &p in &pixels[cached..] {
                cache[(p.wrapping_mul(0x1e35_a7bd) >> shift) as usize] = p;
            }
            cached = pixels.len();
            let key = (green - NUM_LITERAL_CODES - NUM_LENGTH_CODES) as usize;
            pixels.push(*cache.get(key)?);
        }
        if bits.overrun() {
            return None;
        }
    }
    Some(pixels)
}

/// Check the VP8L bitstream `chunk` of a `width` x `height` picture; `Some` when proven.
fn check(chunk: &[u8], (width, height): (u32, u32)) -> Option<()> {
    let mut bits = Bits::new(chunk);
    if bits.read(8) != 0x2f {
        return None;
    }
    let w = bits.read(14) as usize + 1;
    let h = bits.read(14) as usize + 1;
    let _alpha = bits.read(1);
    if bits.read(3) != 0 || (w, h) != (width as usize, height as usize) {
        return None;
    }
    let mut lengths = Vec::new();
    // Transforms, each at most once; colour indexing packs pixels and narrows the picture.
    let (mut xsize, mut seen) = (w, 0u8);
    while bits.read(1) == 1 {
        let kind = bits.read(2);
        if seen & (1 << kind) != 0 {
            return None;
        }
        seen |= 1 << kind;
        match kind {
            0 | 1 => {
                let b = bits.read(3) + 2;
                sub_image(&mut bits, subsample(xsize, b), subsample(h, b), &mut lengths)?;
            }
            3 => {
                let colours = bits.read(8) as usize + 1;
                let b = match colours {
                    17.. => 0,
                    5..=16 => 1,
                    3..=4 => 2,
                    _ => 3,
                };
                sub_image(&mut bits, colours, 1, &mut lengths)?;
                xsize = subsample(xsize, b);
            }
            _ => {}
        }
    }
    let cache_bits = cache_bits(&mut bits)?;
    // The entropy image: which group of codes each tile of pixels uses.
    let (tiles, tile_bits, tiles_wide) = if bits.read(1) == 1 {
        let b = bits.read(3) + 2;
        let wide = subsample(xsize, b);
        let image = sub_image(&mut bits, wide, subsample(h, b), &mut lengths)?;
        let tiles: Vec<u32> = image.iter().map(|p| (p >> 8) & 0xffff).collect();
        (tiles, b, wide)
    } else {
        (vec![0], 31, 1)
    };
    let count = tiles.iter().max().map_or(1, |&m| m as usize + 1);
    let mut groups = Vec::with_capacity(count);
    let mut entries = 0;
    for _ in 0..count {
        let group = read_group(&mut bits, cache_bits, &mut lengths)?;
        entries += [
            &group.green,
            &group.red,
            &group.blue,
            &group.alpha,
            &group.distance,
        ]
        .iter()
        .map(|c| c.table.len())
        .sum::<usize>();
        // Hostile streams can ask for 65,536 groups of deep tables; libwebp decides those.
        if entries > MAX_TABLE_ENTRIES {
            return None;
        }
        groups.push(group);
    }
    entropy_walk(&mut bits, &groups, &tiles, (tile_bits, tiles_wide), (xsize, h))?;
    (!bits.overrun()).then_some(())
}

/// Walk every code of the main image: each symbol in its alphabet, each backward reference
/// inside what precedes it and inside the picture, the last code ending at the last pixel.
fn entropy_walk(
    reader: &mut Bits<'_>,
    groups: &[Group],
    tiles: &[u32],
    (tile_bits, tiles_wide): (u32, usize),
    (width, height): (usize, usize),
) -> Option<()> {
    let total = width.checked_mul(height)?;
    let group_at =
        |x: usize, y: usize| &groups[tiles[(y >> tile_bits) * tiles_wide + (x >> tile_bits)] as usize];
    let tile_mask = if tile_bits >= 31 {
        usize::MAX
    } else {
        (1 << tile_bits) - 1
    };
    // A copy the compiler keeps in registers, written back at the end.
    let mut bits = *reader;
    let (mut pos, mut x, mut y) = (0usize, 0usize, 0usize);
    let mut group = group_at(0, 0);
    while pos < total {
        if x & tile_mask == 0 {
            group = group_at(x, y);
        }
        bits.refill();
        let green = group.green.read(&mut bits);
        if green < NUM_LITERAL_CODES {
            // Single-symbol codes take no bits (the alpha of an opaque picture): skipped, so
            // that they add no load to the chain of dependent reads.
            if !group.red.trivial {
                group.red.read(&mut bits);
            }
            bits.refill();
            if !group.blue.trivial {
                group.blue.read(&mut bits);
            }
            if !group.alpha.trivial {
                group.alpha.read(&mut bits);
            }
            pos += 1;
            x += 1;
        } else if green < NUM_LITERAL_CODES + NUM_LENGTH_CODES {
            let length = prefix_value(green - NUM_LITERAL_CODES, &mut bits);
            bits.refill();
            let code = prefix_value(group.distance.read(&mut bits), &mut bits);
            if distance(code, width) > pos || length > total - pos {
                return None;
            }
            pos += length;
            x += length;
            while x >= width {
                x -= width;
                y += 1;
            }
            if pos < total {
                group = group_at(x, y);
            }
            continue;
        } else {
            // A colour cache index: any index of the alphabet is a pixel.
            pos += 1;
            x += 1;
        }
        if x == width {
            x = 0;
            y += 1;
            if bits.overrun() {
                return None;
            }
        }
    }
    *reader = bits;
    Some(())
}

#[cfg(test)]
mod tests {
    use fourk_api::OutputFormat;
    use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;
    use crate::encode::{EncodeOptions, encode_with_options};

    fn libwebp_decodes(bytes: &[u8]) -> bool {
        webp::Decoder::new(bytes).decode().is_some()
    }

    /// Pictures that make libwebp use every part of the format: photographic noise (prediction,
    /// cross-colour, backward references, many code groups), a few colours (colour indexing
    /// with packed pixels), flat areas (long references, the colour cache), alpha, and widths
    /// below the distance map's neighbourhood.
    fn pictures() -> Vec<DynamicImage> {
        let mut rng = fastrand::Rng::with_seed(17);
        let photo = |w: u32, h: u32, rng: &mut fastrand::Rng| {
            RgbImage::from_fn(w, h, |x, y| {
                let base = ((x * 3 + y * 5) % 200) as u8;
                Rgb([
                    base.wrapping_add(rng.u8(..16)),
                    base / 2 + rng.u8(..8),
                    255 - base,
                ])
            })
        };
        vec![
            DynamicImage::ImageRgb8(photo(300, 200, &mut rng)),
            DynamicImage::ImageRgb8(photo(1, 1, &mut rng)),
            DynamicImage::ImageRgb8(photo(3, 40, &mut rng)),
            DynamicImage::ImageRgb8(photo(17, 5, &mut rng)),
            DynamicImage::ImageRgb8(RgbImage::from_fn(120, 90, |x, y| {
                Rgb([[0, 255][((x / 7 + y / 5) % 2) as usize], 40, 40])
            })),
            DynamicImage::ImageRgb8(RgbImage::from_fn(150, 60, |x, y| {
                let c = ((x / 9) * 37 + (y / 4) * 11) % 13;
                Rgb([(c * 19) as u8, (c * 7) as u8, 90])
            })),
            DynamicImage::ImageRgb8(RgbImage::from_pixel(256, 64, Rgb([10, 200, 30]))),
            DynamicImage::ImageRgba8(RgbaImage::from_fn(200, 120, |x, y| {
                let a = if x < 50 { 0 } else { ((x + y) % 256) as u8 };
                Rgba([(x % 256) as u8, (y * 2 % 256) as u8, rng.u8(..), a])
            })),
        ]
    }

    fn samples() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for picture in pictures() {
            for level in [0, 1, 3, 6, 9] {
                let options = EncodeOptions::default().with_webp_lossless_level(level);
                out.push(encode_with_options(&picture, OutputFormat::Webp, None, &options).unwrap());
            }
        }
        out
    }

    #[test]
    fn every_lossless_webp_fourk_writes_is_proven() {
        for (i, sample) in samples().iter().enumerate() {
            assert!(libwebp_decodes(sample), "sample {i}");
            assert!(proven(sample, false), "sample {i} not proven");
        }
    }

    #[test]
    fn transparency_questions_and_lossy_pictures_are_left_to_the_decoder() {
        let samples = samples();
        let with_alpha = samples.last().unwrap();
        assert!(!proven(with_alpha, true));
        assert!(proven(with_alpha, false));
        // An opaque picture has no alpha channel to ask about.
        assert!(proven(&samples[0], true));
        let lossy = crate::encode(&pictures()[0], OutputFormat::Webp, Some(80)).unwrap();
        assert!(!proven(&lossy, false));
        assert!(!proven(b"RIFF\x04\x00\x00\x00WEBP", false));
    }

    #[test]
    fn a_cut_stream_is_not_proven() {
        let mut refused = 0;
        for sample in samples() {
            let start = sample.windows(4).position(|w| w == b"VP8L").unwrap() + 8;
            for cut in [1, 2, 9, (sample.len() - start) / 2] {
                let Some(keep) = sample.len().checked_sub(cut).filter(|&k| k > start) else {
                    continue;
                };
                // The RIFF and chunk sizes follow the cut, so that only the bitstream is
                // short: the check itself must notice.
                let mut short = sample[..keep].to_vec();
                let riff = (keep - 8) as u32;
                short[4..8].copy_from_slice(&riff.to_le_bytes());
                short[start - 4..start].copy_from_slice(&((keep - start) as u32).to_le_bytes());
                if proven(&short, false) {
                    // Only a cut of the chunk's pad byte leaves the bitstream whole.
                    assert!(libwebp_decodes(&short), "a cut libwebp refuses was proven");
                } else {
                    refused += 1;
                }
            }
        }
        assert!(refused >= 100, "{refused}");
    }

    /// What the check proves, libwebp decodes: thousands of damaged files (bit flips, byte
    /// changes, cuts with consistent sizes, insertions, deletions). Rounds and seed from
    /// FOURK_FUZZ_ROUNDS / FOURK_FUZZ_SEED for longer runs.
    #[test]
    fn whatever_is_proven_libwebp_decodes() {
        let rounds = crate::test_env("FOURK_FUZZ_ROUNDS", 60);
        let seed = crate::test_env("FOURK_FUZZ_SEED", 7);
        let mut rng = fastrand::Rng::with_seed(seed);
        let samples = samples();
        let (mut proven_count, mut refused, mut total) = (0, 0, 0);
        for _ in 0..rounds {
            for sample in &samples {
                let mut bytes = sample.clone();
                // Past the RIFF and chunk headers: the bitstream is what is under test.
                let start = bytes.windows(4).position(|w| w == b"VP8L").unwrap() + 8;
                let at = rng.usize(start..bytes.len());
                match rng.u8(..5) {
                    0 => bytes[at] ^= 1 << rng.u8(..8),
                    1 => bytes[at] = rng.u8(..),
                    2 => bytes.truncate(at.max(start + 1)),
                    3 => bytes.insert(at, rng.u8(..)),
                    _ => {
                        bytes.remove(at);
                    }
                }
                let riff = (bytes.len() - 8) as u32;
                bytes[4..8].copy_from_slice(&riff.to_le_bytes());
                let chunk = (bytes.len() - start) as u32;
                bytes[start - 4..start].copy_from_slice(&chunk.to_le_bytes());
                total += 1;
                let decodes = libwebp_decodes(&bytes);
                if proven(&bytes, false) {
                    proven_count += 1;
                    assert!(decodes, "proven but libwebp refuses it (seed {seed})");
                }
                if !decodes {
                    refused += 1;
                }
            }
        }
        // The damage must exercise both sides, or the test proves nothing.
        assert!(proven_count > total / 20, "{proven_count} of {total} proven");
        assert!(refused > total / 5, "{refused} of {total} refused by libwebp");
    }

    #[test]
    fn codes_libwebp_refuses_are_not_built() {
        // Empty, incomplete, over-subscribed.
        assert!(Code::new(&[0, 0, 0]).is_none());
        assert!(Code::new(&[1, 2, 0]).is_none());
        assert!(Code::new(&[1, 1, 1]).is_none());
        // A single symbol is read with no bits, whatever its length.
        assert!(Code::new(&[0, 7, 0]).is_some());
        assert!(Code::new(&[1, 2, 2]).is_some());
        // Second-level tables: 2 codes of 1 and 2 bits, then a tail of 15-bit codes.
        let mut lengths = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15];
        assert!(Code::new(&lengths).is_some());
        lengths.push(15);
        assert!(Code::new(&lengths).is_none());
    }
}
