//! Contact sheets: many pictures on one canvas, each with a label that can be read at a
//! glance, so drafts are compared by looking rather than by reading file names.
//!
//! Labels are drawn with the public-domain 8x8 bitmap font from the `font8x8` crate, scaled
//! by an integer factor ([`LABEL_SCALE`] by default, so 16 pixels tall) with no smoothing:
//! crisp at any zoom, compiled into the binary, no font file to find at run time. Transparent
//! pictures sit on a checkerboard so their alpha is visible.

use font8x8::UnicodeFonts;
use image::{DynamicImage, Rgb, RgbImage, RgbaImage};
use rayon::prelude::*;

use crate::pipeline_error::PipelineError;
use crate::resize::{Filter, blank, check_target, upscale};

/// Glyph scale for labels: 8x8 glyphs drawn 16x16.
pub const LABEL_SCALE: u32 = 2;
/// The default edge of the square box each picture is fitted into.
pub const DEFAULT_CELL: u32 = 512;
/// Space around and between cells, in pixels.
pub const GAP: u32 = 16;
/// The sheet's background.
pub const BACKGROUND: [u8; 3] = [32, 32, 36];
/// Label text colours.
pub mod colors {
    /// Ordinary text.
    pub const TEXT: [u8; 3] = [235, 235, 235];
    /// Secondary text (sizes, costs).
    pub const DIM: [u8; 3] = [170, 170, 175];
    /// A passing verdict.
    pub const OK: [u8; 3] = [110, 220, 120];
    /// A failing verdict or an error.
    pub const FAIL: [u8; 3] = [255, 105, 97];
}

/// One line of a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text; characters the font lacks are drawn as `?`.
    pub text: String,
    /// sRGB colour.
    pub color: [u8; 3],
}

impl Line {
    /// A line in `color`.
    #[must_use]
    pub fn new(text: impl Into<String>, color: [u8; 3]) -> Self {
        Self {
            text: text.into(),
            color,
        }
    }
}

/// One cell of a sheet: a picture (already a thumbnail, see [`thumbnail`]) or `None` when it
/// could not be read, and its label lines.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The thumbnail.
    pub image: Option<DynamicImage>,
    /// The label, top to bottom.
    pub lines: Vec<Line>,
}

/// Layout of a sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetOptions {
    /// Cells per row (at least 1).
    pub columns: u32,
    /// Edge of the square box each picture is fitted into.
    pub cell: u32,
    /// Whether label lines are drawn under each picture.
    pub labels: bool,
}

impl Default for SheetOptions {
    fn default() -> Self {
        Self {
            columns: 4,
            cell: DEFAULT_CELL,
            labels: true,
        }
    }
}

/// Height of one label line at `scale`, spacing included.
#[must_use]
pub const fn line_height(scale: u32) -> u32 {
    8 * scale + 2 * scale
}

/// Width of `text` in pixels at `scale`.
#[must_use]
pub fn text_width(text: &str, scale: u32) -> u32 {
    u32::try_from(text.chars().count())
        .unwrap_or(u32::MAX)
        .saturating_mul(8 * scale)
}

/// `text` shortened with `...` in the middle so it is at most `max_px` wide at `scale`, keeping
/// the end (a file's extension and number) as well as the start.
#[must_use]
pub fn fit_text(text: &str, max_px: u32, scale: u32) -> String {
    let max_chars = (max_px / (8 * scale)) as usize;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max_chars {
        return text.to_owned();
    }
    if max_chars <= 3 {
        return ".".repeat(max_chars);
    }
    let keep = max_chars - 3;
    let tail = keep / 2;
    let head = keep - tail;
    let mut s: String = chars[..head].iter().collect();
    s.push_str("...");
    s.extend(&chars[chars.len() - tail..]);
    s
}

fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Draw `text` with its top-left corner at `(x, y)`, each font pixel a `scale` x `scale`
/// square. Whatever falls outside `img` is clipped.
pub fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, scale: u32, color: [u8; 3]) {
    let (w, h) = img.dimensions();
    let step = 8u32.saturating_mul(scale);
    for (i, c) in text.chars().enumerate() {
        let gx = x.saturating_add(u32::try_from(i).unwrap_or(u32::MAX).saturating_mul(step));
        if gx >= w || y >= h {
            break;
        }
        for (row, bits) in (0u32..).zip(glyph(c)) {
            for col in 0..8u32 {
                if bits & (1 << col) == 0 {
                    continue;
                }
                let px = gx.saturating_add(col * scale);
                let py = y.saturating_add(row * scale);
                for yy in py..py.saturating_add(scale).min(h) {
                    for xx in px..px.saturating_add(scale).min(w) {
                        img.put_pixel(xx, yy, Rgb(color));
                    }
                }
            }
        }
    }
}

/// `img` scaled (Lanczos3, alpha premultiplied) to fit inside a `cell` x `cell` box, keeping
/// its aspect ratio; pictures already smaller are left as they are.
///
/// # Errors
/// [`PipelineError::EmptySource`], [`PipelineError::InvalidSize`] and
/// [`PipelineError::OutOfMemory`].
pub fn thumbnail(img: &DynamicImage, cell: u32) -> Result<DynamicImage, PipelineError> {
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        return Err(PipelineError::EmptySource { width: w, height: h });
    }
    check_target(cell, cell)?;
    if w <= cell && h <= cell {
        return Ok(match img {
            DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img.clone(),
            other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
            other => DynamicImage::ImageRgb8(other.to_rgb8()),
        });
    }
    let scale = f64::from(cell) / f64::from(w.max(h));
    let tw = ((f64::from(w) * scale).round() as u32).clamp(1, cell);
    let th = ((f64::from(h) * scale).round() as u32).clamp(1, cell);
    upscale(img, tw, th, Filter::Lanczos3, None)
}

/// Paint `pic` onto `canvas` with its top-left at `(x, y)`, over a checkerboard where it is
/// transparent.
pub fn paste(canvas: &mut RgbImage, pic: &DynamicImage, x: u32, y: u32) {
    match pic {
        DynamicImage::ImageRgb8(p) => image::imageops::replace(canvas, p, i64::from(x), i64::from(y)),
        other => {
            let p: RgbaImage = other.to_rgba8();
            for (px, py, v) in p.enumerate_pixels() {
                let (cx, cy) = (x + px, y + py);
                if cx >= canvas.width() || cy >= canvas.height() {
                    continue;
                }
                let checker = if ((px / 8) + (py / 8)) % 2 == 0 {
                    200u16
                } else {
                    150
                };
                let a = u16::from(v.0[3]);
                let mix = |c: u8| ((u16::from(c) * a + checker * (255 - a) + 127) / 255) as u8;
                canvas.put_pixel(cx, cy, Rgb([mix(v.0[0]), mix(v.0[1]), mix(v.0[2])]));
            }
        }
    }
}

/// Lay the cells out in rows of `options.columns`, each picture centred in its square box,
/// its label underneath (in [`LABEL_SCALE`], shortened to the box width).
///
/// # Errors
/// [`PipelineError::InvalidParameter`] for zero columns or an empty list,
/// [`PipelineError::InvalidSize`] when the sheet would exceed
/// [`crate::MAX_OUTPUT_DIMENSION`], and [`PipelineError::OutOfMemory`].
pub fn contact_sheet(cells: &[Cell], options: SheetOptions) -> Result<RgbImage, PipelineError> {
    if options.columns == 0 || cells.is_empty() {
        return Err(PipelineError::InvalidParameter {
            name: if cells.is_empty() { "images" } else { "columns" },
            value: 0.0,
            expected: "at least 1",
        });
    }
    check_target(options.cell, options.cell)?;
    let n = u32::try_from(cells.len()).unwrap_or(u32::MAX);
    let cols = options.columns.min(n);
    let rows = n.div_ceil(cols);
    let lines = if options.labels {
        cells.iter().map(|c| c.lines.len()).max().unwrap_or(0) as u32
    } else {
        0
    };
    let label_h = if lines > 0 {
        GAP / 2 + lines * line_height(LABEL_SCALE)
    } else {
        0
    };
    let (cw, ch) = (options.cell, options.cell + label_h);
    let dim = |count: u32, size: u32| u64::from(count) * u64::from(size + GAP) + u64::from(GAP);
    let (w, h) = (dim(cols, cw), dim(rows, ch));
    let (w, h) = (
        u32::try_from(w).unwrap_or(u32::MAX),
        u32::try_from(h).unwrap_or(u32::MAX),
    );
    let DynamicImage::ImageRgb8(mut sheet) = blank(false, w, h)? else {
        // `blank(false, ..)` is always RGB8.
        return Err(PipelineError::OutOfMemory {
            bytes: u64::from(w) * u64::from(h) * 3,
        });
    };
    sheet
        .par_chunks_mut(3)
        .for_each(|p| p.copy_from_slice(&BACKGROUND));
    for (i, cell) in cells.iter().enumerate() {
        let i = i as u32;
        let (x0, y0) = (GAP + (i % cols) * (cw + GAP), GAP + (i / cols) * (ch + GAP));
        match &cell.image {
            Some(pic) => {
                let px = x0 + options.cell.saturating_sub(pic.width()) / 2;
                let py = y0 + options.cell.saturating_sub(pic.height()) / 2;
                paste(&mut sheet, pic, px, py);
            }
            None => {
                let msg = "unreadable";
                let tx = x0 + options.cell.saturating_sub(text_width(msg, LABEL_SCALE)) / 2;
                draw_text(
                    &mut sheet,
                    tx,
                    y0 + options.cell / 2,
                    msg,
                    LABEL_SCALE,
                    colors::FAIL,
                );
            }
        }
        if lines > 0 {
            for (k, line) in cell.lines.iter().enumerate() {
                let text = fit_text(&line.text, options.cell, LABEL_SCALE);
                let ty = y0 + options.cell + GAP / 2 + k as u32 * line_height(LABEL_SCALE);
                draw_text(&mut sheet, x0, ty, &text, LABEL_SCALE, line.color);
            }
        }
    }
    Ok(sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_drawn_where_asked_and_clipped_at_the_edge() {
        let mut img = RgbImage::new(40, 20);
        draw_text(&mut img, 2, 2, "I", 2, [255, 0, 0]);
        let lit: Vec<_> = img.enumerate_pixels().filter(|(_, _, p)| p.0[0] == 255).collect();
        assert!(!lit.is_empty());
        assert!(
            lit.iter()
                .all(|(x, y, _)| (2..18).contains(x) && (2..18).contains(y))
        );
        // Far past the right edge: nothing drawn, no panic.
        draw_text(&mut img, 39, 19, "WWWW", 3, [0, 255, 0]);
        draw_text(&mut img, u32::MAX - 4, 0, "é☃", 2, [0, 255, 0]);
    }

    #[test]
    fn long_names_keep_start_and_end() {
        assert_eq!(fit_text("short.png", 200, 2), "short.png");
        let s = fit_text("a-very-long-draft-name-number-0042.png", 16 * 16, 2);
        assert_eq!(s.chars().count(), 16);
        assert!(
            s.starts_with("a-very") && s.ends_with("42.png") && s.contains("..."),
            "{s}"
        );
    }

    #[test]
    fn thumbnails_fit_the_box_and_keep_the_ratio() {
        let img = DynamicImage::ImageRgb8(RgbImage::new(3840, 2160));
        let t = thumbnail(&img, 512).unwrap();
        assert_eq!((t.width(), t.height()), (512, 288));
        let small = DynamicImage::ImageRgb8(RgbImage::new(100, 50));
        assert_eq!(thumbnail(&small, 512).unwrap().width(), 100);
    }

    #[test]
    fn sheet_has_one_cell_per_picture_in_rows() {
        let red = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 32, Rgb([255, 0, 0])));
        let clear = DynamicImage::ImageRgba8(RgbaImage::new(64, 64));
        let cells = vec![
            Cell {
                image: Some(red),
                lines: vec![Line::new("red.png", colors::TEXT), Line::new("OK", colors::OK)],
            },
            Cell {
                image: Some(clear),
                lines: vec![Line::new("clear.png", colors::TEXT)],
            },
            Cell {
                image: None,
                lines: vec![Line::new("broken.png", colors::FAIL)],
            },
        ];
        let opts = SheetOptions {
            columns: 2,
            cell: 64,
            labels: true,
        };
        let sheet = contact_sheet(&cells, opts).unwrap();
        let label_h = GAP / 2 + 2 * line_height(LABEL_SCALE);
        assert_eq!(sheet.width(), 2 * (64 + GAP) + GAP);
        assert_eq!(sheet.height(), 2 * (64 + label_h + GAP) + GAP);
        // The red picture is centred vertically in its box.
        assert_eq!(sheet.get_pixel(GAP + 10, GAP + 32).0, [255, 0, 0]);
        assert_eq!(sheet.get_pixel(GAP + 10, GAP + 4).0, BACKGROUND);
        // The transparent one shows the checkerboard.
        let x = GAP + 64 + GAP;
        assert_eq!(sheet.get_pixel(x + 1, GAP + 1).0, [200; 3]);
        assert_eq!(sheet.get_pixel(x + 9, GAP + 1).0, [150; 3]);
        // The verdict is drawn in its colour.
        assert!(sheet.pixels().any(|p| p.0 == colors::OK));
        assert!(sheet.pixels().any(|p| p.0 == colors::FAIL));
        let none = contact_sheet(&[], opts);
        assert!(matches!(
            none,
            Err(PipelineError::InvalidParameter { name: "images", .. })
        ));
    }
}
