//! The marker structure of a baseline JPEG with one scan, for the two places that cut and
//! join entropy-coded data at restart markers: the strip encoders join strips encoded on
//! separate cores into one scan, and verification decodes a restart-marked scan in pieces on
//! separate cores.
//!
//! A restart marker (RSTn) resets the DC predictions and the bit reader, so the data between
//! two of them decodes on its own given the file's tables: a piece of a scan that starts at a
//! restart and holds whole MCU rows is, under the same headers with its own height, a
//! complete JPEG of those rows.

/// Where things are in a baseline (SOF0/SOF1), single-scan JPEG.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Offset of the SOF segment's height field.
    pub sof_height: usize,
    /// Offset of the SOS marker.
    pub sos: usize,
    /// Offset of the first entropy-coded byte (just after the SOS segment).
    pub scan: usize,
    /// The restart interval in MCUs (0: none).
    pub restart_interval: u16,
    pub width: usize,
    pub height: usize,
    /// MCU size in pixels (8 or 16 each way, from the largest sampling factors).
    pub mcu_w: usize,
    pub mcu_h: usize,
}

impl Layout {
    pub fn mcu_cols(&self) -> usize {
        self.width.div_ceil(self.mcu_w)
    }

    pub fn mcu_rows(&self) -> usize {
        self.height.div_ceil(self.mcu_h)
    }
}

/// The header walk up to the SOS segment. `None` for anything but a baseline or extended
/// sequential Huffman JPEG whose first scan follows its frame header (progressive and
/// multi-scan files, and anything malformed, are left to a full decoder).
pub(crate) fn layout(jpeg: &[u8]) -> Option<Layout> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    let mut frame: Option<(usize, usize, usize, usize, usize)> = None;
    let mut restart_interval = 0;
    loop {
        let marker = *jpeg.get(at + 1)?;
        if jpeg[at] != 0xFF {
            return None;
        }
        if marker == 0xFF {
            // A fill byte before a marker.
            at += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        let body = jpeg.get(at + 4..at + 2 + len)?;
        match marker {
            0xC0 | 0xC1 => {
                // P, Y, X, Nf, then Nf x (C, HV, Tq).
                let height = usize::from(u16::from_be_bytes([*body.get(1)?, *body.get(2)?]));
                let width = usize::from(u16::from_be_bytes([*body.get(3)?, *body.get(4)?]));
                let comps = usize::from(*body.get(5)?);
                let mut h_max = 1;
                let mut v_max = 1;
                for c in 0..comps {
                    let hv = *body.get(6 + c * 3 + 1)?;
                    h_max = h_max.max(usize::from(hv >> 4));
                    v_max = v_max.max(usize::from(hv & 0x0F));
                }
                frame = Some((at + 5, width, height, 8 * h_max, 8 * v_max));
            }
            // Other frame types (progressive, lossless, arithmetic): not ours to cut.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDD => restart_interval = u16::from_be_bytes([*body.first()?, *body.get(1)?]),
            0xDA => {
                let (sof_height, width, height, mcu_w, mcu_h) = frame?;
                if width == 0 || height == 0 {
                    return None;
                }
                return Some(Layout {
                    sof_height,
                    sos: at,
                    scan: at + 2 + len,
                    restart_interval,
                    width,
                    height,
                    mcu_w,
                    mcu_h,
                });
            }
            _ => {}
        }
        at += 2 + len;
    }
}

/// The entropy-coded data of `jpeg` (from `layout.scan`) cut at its restart markers: each
/// segment's bytes without the marker, in order. `None` unless the scan is exactly what a
/// restart interval of `layout.restart_interval` MCUs asks for: RST0..RST7 in sequence, one
/// fewer marker than intervals, no empty segment (every MCU takes at least a bit; zune-jpeg
/// takes a piece with no data for a whole one), and EOI as the last marker of the file (zero
/// bytes after it are allowed, as some writers pad). Anything else is left to a full decoder.
pub(crate) fn restart_segments<'a>(jpeg: &'a [u8], layout: &Layout) -> Option<Vec<&'a [u8]>> {
    let interval = usize::from(layout.restart_interval);
    if interval == 0 {
        return None;
    }
    let intervals = (layout.mcu_cols() * layout.mcu_rows()).div_ceil(interval);
    segments(jpeg.get(layout.scan..)?, intervals)
}

/// The entropy-coded data after SOS (`data`, through EOI and whatever follows) cut into
/// `intervals` restart segments under the rules of [`restart_segments`].
pub(crate) fn segments(data: &[u8], intervals: usize) -> Option<Vec<&[u8]>> {
    let mut segments = Vec::with_capacity(intervals);
    let mut start = 0;
    let mut from = 0;
    while let Some(i) = memchr::memchr(0xFF, &data[from..]).map(|i| from + i) {
        let next = *data.get(i + 1)?;
        match next {
            0x00 => from = i + 2,
            0xD0..=0xD7 => {
                if usize::from(next - 0xD0) != segments.len() % 8 || i == start {
                    return None;
                }
                segments.push(&data[start..i]);
                start = i + 2;
                from = start;
            }
            0xD9 => {
                if data[i + 2..].iter().any(|&b| b != 0) || i == start {
                    return None;
                }
                segments.push(&data[start..i]);
                return (segments.len() == intervals).then_some(segments);
            }
            _ => return None,
        }
    }
    None
}

/// Append `data` (entropy-coded bytes) to `out`, adding `shift` to the number of every
/// restart marker in it (mod 8).
pub(crate) fn push_renumbered(out: &mut Vec<u8>, data: &[u8], shift: usize) {
    let mut from = 0;
    while let Some(i) = memchr::memchr(0xFF, &data[from..]).map(|i| from + i) {
        out.extend_from_slice(&data[from..=i]);
        match data.get(i + 1) {
            Some(&next @ 0xD0..=0xD7) => {
                out.push(0xD0 + ((usize::from(next - 0xD0) + shift) % 8) as u8);
                from = i + 2;
            }
            Some(&next) => {
                out.push(next);
                from = i + 2;
            }
            None => from = i + 1,
        }
    }
    out.extend_from_slice(&data[from..]);
}

/// A restart marker's two bytes: RST(`index` mod 8).
pub(crate) fn rst(index: usize) -> [u8; 2] {
    [0xFF, 0xD0 + (index % 8) as u8]
}

/// A DRI segment for `interval` MCUs.
pub(crate) fn dri(interval: u16) -> [u8; 6] {
    let [hi, lo] = interval.to_be_bytes();
    [0xFF, 0xDD, 0x00, 0x04, hi, lo]
}

/// The most header bytes (everything before the scan) [`split_rows`] copies into each piece.
const MAX_PIECE_HEADER: usize = 256 * 1024;

/// Standalone JPEGs of whole-row runs of restart segments, at most `pieces` of them, for
/// decoding on separate cores: each has `jpeg`'s headers with its own height, its segments
/// renumbered from RST0, and EOI. `None` when the scan cannot be cut that way (no restart
/// interval, an interval that is not whole MCU rows, a single interval, or a scan whose
/// markers are not in order): then decode the file whole.
pub(crate) fn split_rows(jpeg: &[u8], pieces: usize) -> Option<Vec<Vec<u8>>> {
    let layout = layout(jpeg)?;
    let interval = usize::from(layout.restart_interval);
    let cols = layout.mcu_cols();
    if interval == 0 || interval % cols != 0 {
        return None;
    }
    // Every piece carries a copy of the headers: a file whose headers (metadata segments,
    // mostly) are large is decoded whole rather than copied that many times.
    if layout.scan > MAX_PIECE_HEADER {
        return None;
    }
    let segments = restart_segments(jpeg, &layout)?;
    if segments.len() < 2 || pieces < 2 {
        return None;
    }
    let rows_per_segment = interval / cols * layout.mcu_h;
    let per_piece = segments.len().div_ceil(pieces.min(segments.len()));
    let header = &jpeg[..layout.scan];
    let mut out = Vec::new();
    for (p, group) in segments.chunks(per_piece).enumerate() {
        let top = p * per_piece * rows_per_segment;
        let height = (layout.height - top).min(group.len() * rows_per_segment);
        let mut piece = Vec::with_capacity(header.len() + group.iter().map(|s| s.len() + 2).sum::<usize>());
        piece.extend_from_slice(header);
        let h = u16::try_from(height).ok()?;
        piece[layout.sof_height..layout.sof_height + 2].copy_from_slice(&h.to_be_bytes());
        for (k, segment) in group.iter().enumerate() {
            if k > 0 {
                piece.extend_from_slice(&rst(k - 1));
            }
            piece.extend_from_slice(segment);
        }
        piece.extend_from_slice(&[0xFF, 0xD9]);
        out.push(piece);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncodeOptions;
    use crate::encode::{JpegSubsampling, encode_with_options};
    use crate::verify::{Expect, verify_bytes};
    use fourk_api::OutputFormat;
    use image::{DynamicImage, RgbImage};

    fn photo(w: u32, h: u32) -> DynamicImage {
        let mut rng = fastrand::Rng::with_seed(7);
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let n = rng.u8(..32);
            image::Rgb([(x % 251) as u8 ^ n, (y % 241) as u8, ((x + y) % 239) as u8 ^ n])
        }))
    }

    /// `threads` strips, as the encoder writes them on that many cores.
    fn striped(img: &DynamicImage, quality: u8, subsampling: JpegSubsampling, threads: usize) -> Vec<u8> {
        let options = EncodeOptions::default().with_jpeg_subsampling(subsampling);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| encode_with_options(img, OutputFormat::Jpeg, Some(quality), &options))
            .unwrap()
    }

    fn pixels(jpeg: &[u8]) -> Vec<u8> {
        image::load_from_memory(jpeg).unwrap().to_rgb8().into_raw()
    }

    #[test]
    fn pieces_decode_to_the_rows_of_the_whole() {
        // Odd sizes so that the last MCU row is partial, both MCU heights, more pieces than
        // the encoder's strips and fewer.
        let img = photo(1001, 517);
        for (quality, subsampling) in [(80, JpegSubsampling::Half), (90, JpegSubsampling::Full)] {
            let jpeg = striped(&img, quality, subsampling, 3);
            let whole = pixels(&jpeg);
            for pieces in [2, 3, 5] {
                let split = split_rows(&jpeg, pieces).expect("a striped JPEG splits");
                assert!(split.len() >= 2 && split.len() <= pieces, "{}", split.len());
                let joined: Vec<u8> = split.iter().flat_map(|p| pixels(p)).collect();
                assert_eq!(joined.len(), whole.len());
                // 4:2:0 chroma is interpolated across rows, so the rows next to a cut
                // differ a little; at 4:4:4 every pixel is the same.
                if subsampling == JpegSubsampling::Full {
                    assert!(joined == whole, "q{quality}, {pieces} pieces: other pixels");
                }
            }
        }
    }

    #[test]
    fn scans_that_cannot_be_cut_are_left_whole() {
        let img = photo(640, 480);
        // One core: one scan, no restart markers.
        let single = striped(&img, 90, JpegSubsampling::Full, 1);
        assert!(layout(&single).is_some());
        assert_eq!(split_rows(&single, 4), None);
        let jpeg = striped(&img, 90, JpegSubsampling::Full, 2);
        assert!(split_rows(&jpeg, 2).is_some());
        assert_eq!(split_rows(&jpeg, 1), None);
        let l = layout(&jpeg).unwrap();
        // A restart marker out of sequence.
        let data_at = l.scan;
        let first_rst = data_at
            + jpeg[data_at..]
                .windows(2)
                .position(|w| w == [0xFF, 0xD0])
                .unwrap();
        let mut wrong = jpeg.clone();
        wrong[first_rst + 1] = 0xD3;
        assert_eq!(split_rows(&wrong, 2), None);
        // A marker gone: one interval short.
        let mut short = jpeg.clone();
        short.drain(first_rst..first_rst + 2);
        assert_eq!(split_rows(&short, 2), None);
        // An empty segment (the data between two markers cut out), first and last.
        let second_rst = first_rst
            + 2
            + jpeg[first_rst + 2..]
                .windows(2)
                .position(|w| w == [0xFF, 0xD1])
                .unwrap();
        let mut empty = jpeg.clone();
        empty.drain(first_rst + 2..second_rst);
        assert_eq!(split_rows(&empty, 2), None);
        let mut empty = jpeg.clone();
        empty.drain(data_at..first_rst);
        assert_eq!(split_rows(&empty, 2), None);
        let end = jpeg.len() - 2;
        let last_rst = (data_at..end)
            .rev()
            .find(|&i| jpeg[i] == 0xFF && (0xD0..=0xD7).contains(&jpeg[i + 1]))
            .unwrap();
        let mut empty = jpeg.clone();
        empty.drain(last_rst + 2..end);
        assert_eq!(split_rows(&empty, 2), None);
        // Data after the end marker.
        let mut tail = jpeg.clone();
        tail.extend_from_slice(&[0xFF, 0xD8]);
        assert_eq!(split_rows(&tail, 2), None);
        // Zero padding after it is allowed.
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        assert!(split_rows(&padded, 2).is_some());
        // Headers too large to copy into every piece (a big metadata segment).
        let mut big = jpeg[..2].to_vec();
        for _ in 0..5 {
            big.extend_from_slice(&[0xFF, 0xE2, 0xFF, 0xFF]);
            big.extend(std::iter::repeat_n(0u8, 0xFFFD));
        }
        big.extend_from_slice(&jpeg[2..]);
        assert!(layout(&big).is_some());
        assert_eq!(split_rows(&big, 2), None);
        // Not a JPEG, or a progressive one.
        assert!(layout(b"\x89PNG\r\n\x1a\n").is_none());
        let mut progressive = jpeg.clone();
        let sof = l.sof_height - 5;
        progressive[sof + 1] = 0xC2;
        assert!(layout(&progressive).is_none());
    }

    #[test]
    fn pieces_give_the_verdict_of_the_whole_decode() {
        let img = photo(1280, 720);
        let jpeg = striped(&img, 90, JpegSubsampling::Full, 2);
        let with = |threads: usize, bytes: &[u8]| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| verify_bytes(bytes, &Expect::default()))
        };
        assert!(split_rows(&jpeg, 2).is_some());
        assert!(with(2, &jpeg).intact);
        let l = layout(&jpeg).unwrap();
        let spots = [l.scan + 100, (l.scan + jpeg.len()) / 2, jpeg.len() - 200];
        let mut damaged = Vec::new();
        for at in spots {
            // Bytes cut out: the segment runs short and the decoder resyncs at the next
            // restart, in one decode as in pieces.
            let mut cut = jpeg.clone();
            cut.drain(at..at + 64);
            damaged.push((format!("cut at {at}"), cut, None));
            // Runs of one bits (no code of the standard tables is that long; zune-jpeg decodes
            // through them).
            let mut ones = jpeg.clone();
            ones[at..at + 64].copy_from_slice(&[0xFE; 64]);
            damaged.push((format!("ones at {at}"), ones, None));
            // A stray marker: the pieces cannot be cut, and the whole decode refuses it.
            let mut stray = jpeg.clone();
            stray[at..at + 2].copy_from_slice(&[0xFF, 0xC4]);
            damaged.push((format!("marker at {at}"), stray, Some(false)));
        }
        damaged.push(("cut short".into(), jpeg[..jpeg.len() / 2].to_vec(), Some(false)));
        for (what, bytes, intact) in damaged {
            let (pieces, whole) = (with(2, &bytes), with(1, &bytes));
            assert_eq!(
                pieces.intact, whole.intact,
                "{what}: {:?} / {:?}",
                pieces.decode_error, whole.decode_error
            );
            if let Some(intact) = intact {
                assert_eq!(pieces.intact, intact, "{what}");
            }
        }
    }
}
