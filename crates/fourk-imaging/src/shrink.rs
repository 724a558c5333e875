//! Thumbnails from pixels as they are decoded. Each source row is added into the box of the
//! thumbnail pixel it falls in, so an image verified row by row (a 4K PNG from the API) gives
//! its thumbnail without a second decode and without a whole-frame buffer: one row of sums is
//! all it holds.
//!
//! The filter is a box average over the source pixels that map to each thumbnail pixel, which
//! is what a downscale by 4-8x for a preview needs (no ringing, every source pixel counted).

use std::fmt;

use image::{Rgba, RgbaImage};

/// The smallest long edge a thumbnail may be asked for: it bounds each box's area, so that
/// the `u32` sums cannot overflow even for a [`crate::MAX_DIMENSION`] source.
pub const MIN_EDGE: u32 = 16;

/// A small RGBA picture made from the pixels decoded while verifying.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail(pub RgbaImage);

impl fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbnail({}x{})", self.0.width(), self.0.height())
    }
}

/// The size of a thumbnail of a `width` x `height` picture fitting `edge` x `edge`: the ratio
/// kept, never larger than the picture.
#[must_use]
pub fn thumbnail_dims(width: u32, height: u32, edge: u32) -> (u32, u32) {
    let edge = edge.max(1);
    if width <= edge && height <= edge {
        return (width.max(1), height.max(1));
    }
    let scale = f64::from(edge) / f64::from(width.max(height));
    let w = ((f64::from(width) * scale).round() as u32).clamp(1, edge);
    let h = ((f64::from(height) * scale).round() as u32).clamp(1, edge);
    (w, h)
}

/// How the samples of a row are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLayout {
    /// 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    /// 16-bit big-endian samples (PNG's order); otherwise 8-bit.
    pub sixteen: bool,
}

/// Adds rows, top to bottom, into a thumbnail.
#[derive(Debug)]
pub struct RowShrinker {
    width: u32,
    height: u32,
    layout: RowLayout,
    out: RgbaImage,
    /// The thumbnail column of each source column.
    xmap: Vec<u32>,
    /// How many source columns fall in each thumbnail column.
    xcount: Vec<u32>,
    /// Sums of the thumbnail row being filled, RGBA per pixel.
    sums: Vec<u32>,
    /// The thumbnail row being filled, and how many source rows it has had.
    dy: u32,
    rows_in: u32,
    y: u32,
}

impl RowShrinker {
    /// A shrinker for a `width` x `height` picture whose rows are laid out as `layout`, into a
    /// thumbnail fitting `edge` (at least [`MIN_EDGE`]). `None` for an empty picture or a
    /// layout it does not read.
    #[must_use]
    pub fn new(width: u32, height: u32, edge: u32, layout: RowLayout) -> Option<Self> {
        if width == 0 || height == 0 || !(1..=4).contains(&layout.channels) {
            return None;
        }
        let (ow, oh) = thumbnail_dims(width, height, edge.max(MIN_EDGE));
        let xmap: Vec<u32> = (0..width)
            .map(|x| (u64::from(x) * u64::from(ow) / u64::from(width)) as u32)
            .collect();
        let mut xcount = vec![0u32; ow as usize];
        for &d in &xmap {
            xcount[d as usize] += 1;
        }
        Some(Self {
            width,
            height,
            layout,
            out: RgbaImage::new(ow, oh),
            xmap,
            xcount,
            sums: vec![0; ow as usize * 4],
            dy: 0,
            rows_in: 0,
            y: 0,
        })
    }

    /// Add the next row (`width` pixels as laid out; extra bytes are ignored, a short row is
    /// read as far as it goes). Rows past the picture's height are ignored.
    pub fn push_row(&mut self, row: &[u8]) {
        if self.y >= self.height {
            return;
        }
        let dy = (u64::from(self.y) * u64::from(self.out.height()) / u64::from(self.height)) as u32;
        if dy != self.dy {
            self.flush();
            self.dy = dy;
        }
        let sample = if self.layout.sixteen { 2 } else { 1 };
        let step = self.layout.channels * sample;
        let n = (row.len() / step).min(self.width as usize);
        let sums = &mut self.sums;
        let xmap = &self.xmap[..n];
        // The common layouts get their own loops: this runs once per decoded pixel.
        match (self.layout.channels, self.layout.sixteen) {
            (4, false) => {
                for (px, &d) in row.chunks_exact(4).zip(xmap) {
                    let s = &mut sums[d as usize * 4..d as usize * 4 + 4];
                    s[0] += u32::from(px[0]);
                    s[1] += u32::from(px[1]);
                    s[2] += u32::from(px[2]);
                    s[3] += u32::from(px[3]);
                }
            }
            (3, false) => {
                for (px, &d) in row.chunks_exact(3).zip(xmap) {
                    let s = &mut sums[d as usize * 4..d as usize * 4 + 4];
                    s[0] += u32::from(px[0]);
                    s[1] += u32::from(px[1]);
                    s[2] += u32::from(px[2]);
                    s[3] += 255;
                }
            }
            (channels, _) => {
                for (px, &d) in row.chunks_exact(step).zip(xmap) {
                    // The high byte of a 16-bit sample is its 8-bit value.
                    let v = |i: usize| u32::from(px[i * sample]);
                    let (r, g, b, a) = match channels {
                        1 => (v(0), v(0), v(0), 255),
                        2 => (v(0), v(0), v(0), v(1)),
                        3 => (v(0), v(1), v(2), 255),
                        _ => (v(0), v(1), v(2), v(3)),
                    };
                    let s = &mut sums[d as usize * 4..d as usize * 4 + 4];
                    s[0] += r;
                    s[1] += g;
                    s[2] += b;
                    s[3] += a;
                }
            }
        }
        self.rows_in += 1;
        self.y += 1;
    }

    fn flush(&mut self) {
        if self.rows_in == 0 {
            return;
        }
        for (x, px) in self.sums.chunks_exact_mut(4).enumerate() {
            let count = self.xcount[x] * self.rows_in;
            if count > 0 {
                let avg = |s: u32| ((s + count / 2) / count) as u8;
                self.out.put_pixel(
                    x as u32,
                    self.dy,
                    Rgba([avg(px[0]), avg(px[1]), avg(px[2]), avg(px[3])]),
                );
            }
            px.fill(0);
        }
        self.rows_in = 0;
    }

    /// The thumbnail, once every row was pushed; `None` when rows are missing (a truncated
    /// picture has no thumbnail).
    #[must_use]
    pub fn finish(mut self) -> Option<Thumbnail> {
        self.flush();
        (self.y == self.height).then_some(Thumbnail(self.out))
    }
}

/// A thumbnail of a whole decoded frame of `layout`.
#[must_use]
pub fn shrink_frame(
    pixels: &[u8],
    width: u32,
    height: u32,
    edge: u32,
    layout: RowLayout,
) -> Option<Thumbnail> {
    let mut s = RowShrinker::new(width, height, edge, layout)?;
    let stride = width as usize * layout.channels * if layout.sixteen { 2 } else { 1 };
    for row in pixels.chunks_exact(stride).take(height as usize) {
        s.push_row(row);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RGB: RowLayout = RowLayout {
        channels: 3,
        sixteen: false,
    };

    #[test]
    fn dims_fit_the_edge_and_keep_the_ratio() {
        assert_eq!(thumbnail_dims(3840, 2160, 512), (512, 288));
        assert_eq!(thumbnail_dims(1024, 1536, 512), (341, 512));
        assert_eq!(thumbnail_dims(100, 50, 512), (100, 50));
    }

    #[test]
    fn each_thumbnail_pixel_is_the_average_of_its_box() {
        // 8x4 picture: left half black, right half white, into 4x2: boxes of 2x2.
        let mut px = Vec::new();
        for _ in 0..4 {
            for x in 0..8 {
                let v = if x < 4 { 0 } else { 255 };
                px.extend([v, v, v]);
            }
        }
        let t = shrink_frame(&px, 8, 4, 16, RGB).unwrap();
        assert_eq!(t.0.dimensions(), (8, 4), "never larger than the picture");
        let mut big = Vec::new();
        for y in 0..64u32 {
            for x in 0..64u32 {
                // A checkerboard of single pixels averages to mid grey.
                let v = if (x + y) % 2 == 0 { 0 } else { 254 };
                big.extend([v, 0, 255]);
            }
        }
        let t = shrink_frame(&big, 64, 64, 16, RGB).unwrap();
        assert_eq!(t.0.dimensions(), (16, 16));
        assert!(
            t.0.pixels().all(|p| p.0 == [127, 0, 255, 255]),
            "{:?}",
            t.0.get_pixel(0, 0)
        );
    }

    #[test]
    fn grey_alpha_and_sixteen_bit_rows_are_read() {
        let layout = RowLayout {
            channels: 2,
            sixteen: true,
        };
        // 32x32 of grey 0x80xx with alpha 0x40xx.
        let px: Vec<u8> = (0..32 * 32).flat_map(|_| [0x80, 0x11, 0x40, 0x22]).collect();
        let t = shrink_frame(&px, 32, 32, 16, layout).unwrap();
        assert!(t.0.pixels().all(|p| p.0 == [0x80, 0x80, 0x80, 0x40]));
    }

    #[test]
    fn a_picture_missing_rows_has_no_thumbnail() {
        let mut s = RowShrinker::new(64, 64, 16, RGB).unwrap();
        for _ in 0..63 {
            s.push_row(&[0; 64 * 3]);
        }
        assert!(s.finish().is_none());
        assert!(RowShrinker::new(0, 10, 16, RGB).is_none());
    }
}
