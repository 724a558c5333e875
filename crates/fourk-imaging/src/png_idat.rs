//! A PNG's pixel rows read straight from its `IDAT` stream: inflated with zlib-rs (through
//! flate2) and unfiltered here, row by row. The input side of [`crate::png_to_jpeg`] and
//! [`crate::resize::png_upscale`], where the rows feed encoders and resamplers on the other
//! core as they arrive.
//!
//! The `png` crate inflates with fdeflate, which on a 4K photograph's stream took 97-108 ms
//! where zlib-rs took 77-87 ms on the same machine (the whole stream, in 256 KiB windows as
//! here); the inflate is the one strictly sequential step of those paths, so its time is their
//! wall time. The header and the chunks before the first `IDAT` are still read by the `png`
//! crate ([`crate::load::png_rows`]), and verification still decodes with it: this is only a
//! faster way to the same pixels. It is at least as strict as the `png` crate: every chunk's
//! CRC through `IEND`, the stream's Adler-32, exactly the rows the header promises and no more
//! data, a filter type 0-4 on every row, no critical chunk after the pixels. Any doubt is
//! `None`, and the caller then decodes with the `png` crate, which reports the error in its
//! own words.

use flate2::{Decompress, FlushDecompress, Status};

/// Inflated bytes held at a time, besides a row's remainder carried to the front.
const WINDOW: usize = 256 * 1024;

/// The type of the chunk at `at` and the offset of the next chunk, unchecked; `None` if its
/// header is cut off.
fn chunk_header(file: &[u8], at: usize) -> Option<([u8; 4], usize)> {
    let header = file.get(at..at.checked_add(8)?)?;
    let len = usize::try_from(u32::from_be_bytes(header[..4].try_into().ok()?)).ok()?;
    Some((
        header[4..].try_into().ok()?,
        at.checked_add(12)?.checked_add(len)?,
    ))
}

/// One chunk at `at`: its type, its data and the offset of the next chunk, its CRC checked;
/// `None` if it is cut off or its CRC fails.
fn chunk(file: &[u8], at: usize) -> Option<([u8; 4], &[u8], usize)> {
    let (_, end) = chunk_header(file, at)?;
    let body = file.get(at + 4..end - 4)?;
    let crc = u32::from_be_bytes(file.get(end - 4..end)?.try_into().ok()?);
    if crc32fast::hash(body) != crc {
        return None;
    }
    Some((body[..4].try_into().ok()?, &body[4..], end))
}

/// The rows of an 8-bit RGB or RGBA PNG that is not interlaced, in order.
pub(crate) struct IdatRows<'a> {
    file: &'a [u8],
    /// The chunk after the last `IDAT` taken.
    next: usize,
    /// What is left of the current `IDAT`'s data.
    input: &'a [u8],
    /// The chunk at `next` is not an `IDAT`.
    idat_done: bool,
    inflater: Decompress,
    /// The zlib stream has ended.
    ended: bool,
    /// Inflated, still filtered bytes: `buf[start..end]` not yet taken.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The previous row, unfiltered (zeros before the first).
    prev: Vec<u8>,
    /// Bytes per pixel (3 or 4).
    bpp: usize,
}

impl<'a> IdatRows<'a> {
    /// The rows of `file` (a whole PNG, signature included) whose rows hold `row_bytes` bytes
    /// at `bpp` bytes per pixel. The chunks before the first `IDAT` are skipped: the `png`
    /// crate has read and checked them. `None` when there is no `IDAT` before `IEND`.
    pub(crate) fn new(file: &'a [u8], row_bytes: usize, bpp: usize) -> Option<Self> {
        // Headers only: the first IDAT's CRC is checked when its data is taken.
        let mut at = 8;
        loop {
            let (kind, next) = chunk_header(file, at)?;
            match &kind {
                b"IDAT" => break,
                b"IEND" => return None,
                _ => at = next,
            }
        }
        Some(Self {
            file,
            next: at,
            input: &[],
            idat_done: false,
            inflater: Decompress::new(true),
            ended: false,
            buf: vec![0; WINDOW.max(2 * (row_bytes + 1))],
            start: 0,
            end: 0,
            prev: vec![0; row_bytes],
            bpp,
        })
    }

    /// The next `IDAT`'s data into `input`; `false` when the next chunk is something else
    /// (left at `next` for [`Self::finish`]).
    fn next_idat(&mut self) -> Option<bool> {
        if self.idat_done {
            return Some(false);
        }
        let (kind, data, next) = chunk(self.file, self.next)?;
        if &kind != b"IDAT" {
            self.idat_done = true;
            return Some(false);
        }
        (self.input, self.next) = (data, next);
        Some(true)
    }

    /// Inflate until the window is full, the stream ends or the `IDAT` chunks run out. What
    /// was not taken moves to the front first.
    fn fill(&mut self) -> Option<()> {
        self.buf.copy_within(self.start..self.end, 0);
        (self.start, self.end) = (0, self.end - self.start);
        while self.end < self.buf.len() && !self.ended {
            if self.input.is_empty() && !self.next_idat()? {
                break;
            }
            let (was_in, was_out) = (self.inflater.total_in(), self.inflater.total_out());
            let status = self
                .inflater
                .decompress(self.input, &mut self.buf[self.end..], FlushDecompress::None)
                .ok()?;
            let used = usize::try_from(self.inflater.total_in() - was_in).ok()?;
            let made = usize::try_from(self.inflater.total_out() - was_out).ok()?;
            self.input = self.input.get(used..)?;
            self.end += made;
            if status == Status::StreamEnd {
                self.ended = true;
            } else if used == 0 && made == 0 && !self.input.is_empty() {
                return None;
            }
        }
        Some(())
    }

    /// The next row, unfiltered into `row` (`row_bytes` long); `None` when the stream has no
    /// more rows or is damaged, or the row's filter type is unknown.
    pub(crate) fn read_row(&mut self, row: &mut [u8]) -> Option<()> {
        if row.len() != self.prev.len() {
            return None;
        }
        let stride = row.len() + 1;
        if self.end - self.start < stride {
            self.fill()?;
            if self.end - self.start < stride {
                return None;
            }
        }
        let filtered = &self.buf[self.start..self.start + stride];
        unfilter(filtered[0], self.bpp, &filtered[1..], &self.prev, row)?;
        self.prev.copy_from_slice(row);
        self.start += stride;
        Some(())
    }

    /// After the last row: the stream must end there (no data left over, its Adler-32 right),
    /// with nothing after it in the `IDAT` chunks, and the chunks after them through `IEND`
    /// must be ancillary with good CRCs.
    pub(crate) fn finish(mut self) -> Option<()> {
        if self.start != self.end {
            return None;
        }
        self.fill()?;
        if !self.ended || self.end != 0 || !self.input.is_empty() {
            return None;
        }
        let mut at = self.next;
        loop {
            let (kind, _, next) = chunk(self.file, at)?;
            match &kind {
                b"IEND" => return Some(()),
                // An upper-case first letter: a critical chunk (IDAT, PLTE, IHDR) here.
                [first, ..] if first.is_ascii_uppercase() => return None,
                _ => at = next,
            }
        }
    }
}

/// Undo one row's filter (`kind`, 0-4): `src` is the row as filtered, `prev` the row above
/// unfiltered, `row` receives this row unfiltered. `None` for an unknown filter type.
fn unfilter(kind: u8, bpp: usize, src: &[u8], prev: &[u8], row: &mut [u8]) -> Option<()> {
    match (kind, bpp) {
        (0, _) => row.copy_from_slice(src),
        (1, 3) => sub::<3>(src, row),
        (1, 4) => sub::<4>(src, row),
        (2, _) => {
            for ((out, &s), &up) in row.iter_mut().zip(src).zip(prev) {
                *out = s.wrapping_add(up);
            }
        }
        (3, 3) => average::<3>(src, prev, row),
        (3, 4) => average::<4>(src, prev, row),
        (4, 3) => paeth::<3>(src, prev, row),
        (4, 4) => paeth::<4>(src, prev, row),
        _ => return None,
    }
    Some(())
}

/// The pixels of `src`, `prev` and `row` as `B`-byte arrays, in step.
fn pixels<'r, const B: usize>(
    src: &'r [u8],
    prev: &'r [u8],
    row: &'r mut [u8],
) -> impl Iterator<Item = (&'r [u8; B], &'r [u8; B], &'r mut [u8; B])> {
    src.as_chunks::<B>()
        .0
        .iter()
        .zip(prev.as_chunks::<B>().0)
        .zip(row.as_chunks_mut::<B>().0)
        .map(|((s, up), out)| (s, up, out))
}

fn sub<const B: usize>(src: &[u8], row: &mut [u8]) {
    let mut left = [0u8; B];
    for (s, out) in src.as_chunks::<B>().0.iter().zip(row.as_chunks_mut::<B>().0) {
        for k in 0..B {
            left[k] = s[k].wrapping_add(left[k]);
        }
        *out = left;
    }
}

fn average<const B: usize>(src: &[u8], prev: &[u8], row: &mut [u8]) {
    let mut left = [0u8; B];
    for (s, up, out) in pixels::<B>(src, prev, row) {
        for k in 0..B {
            // The mean of two bytes fits a byte.
            let mean = ((u16::from(left[k]) + u16::from(up[k])) >> 1) as u8;
            left[k] = s[k].wrapping_add(mean);
        }
        *out = left;
    }
}

fn paeth<const B: usize>(src: &[u8], prev: &[u8], row: &mut [u8]) {
    let (mut left, mut up_left) = ([0u8; B], [0u8; B]);
    for (s, up, out) in pixels::<B>(src, prev, row) {
        for k in 0..B {
            let (a, b, c) = (i16::from(left[k]), i16::from(up[k]), i16::from(up_left[k]));
            let (pa, pb, pc) = ((b - c).abs(), (a - c).abs(), (a + b - 2 * c).abs());
            let predictor = if pa <= pb && pa <= pc {
                left[k]
            } else if pb <= pc {
                up[k]
            } else {
                up_left[k]
            };
            left[k] = s[k].wrapping_add(predictor);
        }
        *out = left;
        up_left = *up;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `width`x`height` smooth-with-noise pixels written with `filter`.
    fn png_with(filter: png::Filter, color: png::ColorType, width: u32, height: u32) -> Vec<u8> {
        let channels = if color == png::ColorType::Rgba { 4 } else { 3 };
        let mut seed = 0x9E37_79B9_u32;
        let pixels: Vec<u8> = (0..width * height * channels)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                // Smooth with a little noise, so that every filter has work to do.
                ((i / channels % width) as u8).wrapping_add((seed % 7) as u8)
            })
            .collect();
        let mut file = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut file, width, height);
            encoder.set_color(color);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_filter(filter);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(&pixels).unwrap();
        }
        file
    }

    /// The pixels as the `png` crate decodes them, `None` if it refuses the file.
    fn png_crate(file: &[u8]) -> Option<Vec<u8>> {
        let mut reader = png::Decoder::new(std::io::Cursor::new(file)).read_info().ok()?;
        let mut out = vec![0; reader.output_buffer_size()?];
        reader.next_frame(&mut out).ok()?;
        reader.finish().ok()?;
        Some(out)
    }

    /// The pixels as [`IdatRows`] reads them, as if the header said `width`x`height`.
    fn rows_of(file: &[u8], width: usize, height: usize, bpp: usize) -> Option<Vec<u8>> {
        let row_bytes = width * bpp;
        let mut rows = IdatRows::new(file, row_bytes, bpp)?;
        let mut out = vec![0u8; height * row_bytes];
        for row in out.chunks_exact_mut(row_bytes) {
            rows.read_row(row)?;
        }
        rows.finish()?;
        Some(out)
    }

    /// The pixels as the pipeline reads them: the `png` crate's header read, then
    /// [`IdatRows`] ([`crate::load::png_rows`]).
    fn pipeline_rows(file: &[u8]) -> Option<Vec<u8>> {
        let crate::load::PngRows {
            mut reader,
            width,
            height,
            channels,
        } = crate::load::png_rows(file)?;
        let row_bytes = width as usize * channels;
        let mut out = vec![0u8; height as usize * row_bytes];
        for row in out.chunks_exact_mut(row_bytes) {
            reader.read_row(row)?;
        }
        reader.finish()?;
        Some(out)
    }

    #[test]
    fn every_filter_gives_the_png_crates_pixels() {
        use png::Filter;
        for color in [png::ColorType::Rgb, png::ColorType::Rgba] {
            let bpp = if color == png::ColorType::Rgba { 4 } else { 3 };
            // Rows that cross the window at odd offsets, and rows a quarter of it.
            for (width, height) in [(1, 1), (37, 29), (4099, 97), (16_000, 9)] {
                for filter in [
                    Filter::NoFilter,
                    Filter::Sub,
                    Filter::Up,
                    Filter::Avg,
                    Filter::Paeth,
                    Filter::Adaptive,
                ] {
                    let file = png_with(filter, color, width, height);
                    let rows = pipeline_rows(&file);
                    assert!(rows.is_some(), "{color:?} {width}x{height} {filter:?}");
                    assert!(rows == png_crate(&file), "{color:?} {width}x{height} {filter:?}");
                    assert!(rows_of(&file, width as usize, height as usize, bpp) == rows);
                }
            }
        }
    }

    #[test]
    fn the_pipelines_decode_reads_these_rows_within_its_limits() {
        for color in [png::ColorType::Rgb, png::ColorType::Rgba] {
            let file = png_with(png::Filter::Paeth, color, 300, 200);
            let ours = crate::load::load_bytes(&file, &crate::load::load_limits()).unwrap();
            let image = image::load_from_memory(&file).unwrap();
            assert_eq!(ours.color(), image.color());
            assert_eq!(ours.as_bytes(), image.as_bytes());
            // Over the caller's limits: declined here, and image's decode says why.
            let mut small = crate::load::load_limits();
            small.max_alloc = Some(1000);
            let err = crate::load::load_bytes(&file, &small).unwrap_err();
            assert!(err.to_string().contains("limit"), "{err}");
        }
    }

    #[test]
    fn wrong_lengths_and_unknown_filters_are_refused() {
        let file = png_with(png::Filter::Adaptive, png::ColorType::Rgb, 300, 200);
        assert!(rows_of(&file, 300, 200, 3).is_some());
        // More or fewer rows than the stream holds.
        assert!(rows_of(&file, 300, 201, 3).is_none());
        assert!(rows_of(&file, 300, 199, 3).is_none());
        // Cut short, or with no IDAT at all.
        assert!(rows_of(&file[..file.len() - 20], 300, 200, 3).is_none());
        let mut bare = file[..33].to_vec();
        bare.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
        assert!(IdatRows::new(&bare, 900, 3).is_none());
        // An unknown filter type on a row.
        let mut row = [0u8; 3];
        assert!(unfilter(5, 3, &[1, 2, 3], &[0; 3], &mut row).is_none());
    }

    #[test]
    fn a_critical_chunk_after_the_pixels_is_refused() {
        let file = png_with(png::Filter::Sub, png::ColorType::Rgb, 64, 64);
        let iend = file.len() - 12;
        let with = |kind: &[u8; 4]| {
            let mut out = file[..iend].to_vec();
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(kind);
            out.push(7);
            let crc = crc32fast::hash(&out[out.len() - 5..]);
            out.extend_from_slice(&crc.to_be_bytes());
            out.extend_from_slice(&file[iend..]);
            out
        };
        assert!(rows_of(&with(b"teXt"), 64, 64, 3).is_some());
        assert!(rows_of(&with(b"PLTE"), 64, 64, 3).is_none());
        assert!(rows_of(&with(b"IDAT"), 64, 64, 3).is_none());
    }

    /// `file` with a `tEXt` chunk before and after the pixels.
    fn with_text(file: &[u8]) -> Vec<u8> {
        let text = |out: &mut Vec<u8>| {
            let body = b"tEXtComment\0made by the png_idat tests";
            out.extend_from_slice(&(body.len() as u32 - 4).to_be_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(&crc32fast::hash(body).to_be_bytes());
        };
        let mut out = file[..33].to_vec();
        text(&mut out);
        out.extend_from_slice(&file[33..file.len() - 12]);
        text(&mut out);
        out.extend_from_slice(&file[file.len() - 12..]);
        out
    }

    /// The chunks of `file`: where each starts and ends.
    fn chunks(file: &[u8]) -> Vec<(usize, usize)> {
        let mut at = 8;
        let mut out = Vec::new();
        while at + 12 <= file.len() {
            let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            out.push((at, at + 12 + len));
            at += 12 + len;
        }
        out
    }

    /// Damage anywhere, half the time with the damaged chunk's CRC made right again so that
    /// the damage reaches the header, the inflater and the filters: whatever is read here is
    /// what the `png` crate decodes from the same bytes, so the fast path never accepts a file
    /// the usual path refuses, nor reads other pixels. FOURK_FUZZ_ROUNDS scales the cases.
    #[test]
    fn damage_is_refused_or_read_as_the_png_crate_reads_it() {
        let rounds = usize::try_from(crate::test_env("FOURK_FUZZ_ROUNDS", 1)).unwrap();
        let (mut read, mut refused) = (0, 0);
        let mut seed = 0x2545_F491_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for color in [png::ColorType::Rgb, png::ColorType::Rgba] {
            for filter in [png::Filter::Adaptive, png::Filter::Paeth] {
                let file = with_text(&png_with(filter, color, 61, 47));
                assert!(pipeline_rows(&file).is_some());
                let layout = chunks(&file);
                for _ in 0..500 * rounds {
                    let mut bad = file.clone();
                    let at = next(bad.len());
                    match next(3) {
                        0 => bad[at] ^= 1 << next(8),
                        1 => bad[at] = next(256) as u8,
                        _ => bad.truncate(at),
                    }
                    if bad.len() == file.len() && next(2) == 0 {
                        // The CRC over the chunk's type and data, when the damage is there.
                        if let Some(&(start, end)) = layout
                            .iter()
                            .find(|&&(start, end)| (start + 4..end - 4).contains(&at))
                        {
                            let crc = crc32fast::hash(&bad[start + 4..end - 4]);
                            bad[end - 4..end].copy_from_slice(&crc.to_be_bytes());
                        }
                    }
                    match pipeline_rows(&bad) {
                        Some(pixels) => {
                            assert_eq!(Some(pixels), png_crate(&bad));
                            read += 1;
                        }
                        None => refused += 1,
                    }
                }
            }
        }
        // Most damage is refused; damage inside a text chunk whose CRC was made right is read.
        // The test fails if either outcome never happens.
        assert!(refused > 0 && read > 0, "read {read}, refused {refused}");
    }
}
