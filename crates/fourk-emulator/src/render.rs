//! The procedural renderer: a deterministic stand-in for a generated photograph.
//!
//! The picture is a sky-like gradient with domain-warped clouds, soft light bands, bokeh
//! circles and a lit, textured "subject" blob, finished with per-pixel film grain. The grain is
//! there on purpose: real outputs are photographic, so their PNGs are large (a 4K PNG is
//! 8-20 MB) and slow to encode, and a flat test image would hide size and timing problems in
//! the client. The prompt is drawn legibly on a banner, and a small label says the picture
//! came from the emulator, so nobody mistakes it for a real output.
//!
//! Everything smooth is evaluated on a grid of 4-6 pixel cells and interpolated; only the
//! grain and the text are per pixel. That keeps 3840x2160 near 160 ms of CPU in release
//! builds, split over up to four threads.

use font8x8::UnicodeFonts;
use image::{DynamicImage, RgbImage, RgbaImage};
use sha2::{Digest, Sha256};

/// The text of the label that marks every image as procedural.
pub const EMULATOR_LABEL: &str = "EMULATOR - procedural image";

/// Entries in the grain table. Rows start at random offsets into it; its period (196 KB of
/// pixels) is longer than deflate's 32 KB window, so PNG cannot find the repetition.
const GRAIN_TABLE: usize = 1 << 16;

/// Standard deviation of the luminance grain, in 8-bit levels. Chosen so that a 3840x2160
/// PNG at the default compression lands in the 8-20 MB range of real outputs.
const GRAIN_LUMA: f32 = 2.6;
/// Standard deviation of the per-channel (chroma) grain.
const GRAIN_CHROMA: f32 = 1.3;

/// Render a deterministic `width` x `height` picture for `prompt`.
///
/// The same `prompt`, size, `seed_extra` and `transparent` always give the same pixels;
/// `seed_extra` carries the other settings (model, quality, image index) so that they change
/// the picture too. With `transparent`, the result is RGBA with a fully transparent background
/// around the subject; otherwise it is RGB.
///
/// # Panics
/// Only when the pixel buffer cannot be allocated, which no size the API accepts comes near.
#[must_use]
pub fn render(prompt: &str, width: u32, height: u32, seed_extra: &str, transparent: bool) -> DynamicImage {
    let mut img = render_plain(prompt, width, height, seed_extra, transparent);
    draw_overlay(&mut img, prompt);
    img
}

/// [`render`] without the prompt banner and the label: the layer an edit blends into its
/// input image before drawing them on top, so they stay legible.
pub(crate) fn render_plain(
    prompt: &str,
    width: u32,
    height: u32,
    seed_extra: &str,
    transparent: bool,
) -> DynamicImage {
    let seed = seed_of(prompt, width, height, seed_extra, transparent);
    let scene = Scene::new(&seed, width, height, transparent);
    let grid = scene.grid();
    if transparent {
        let mut img = RgbaImage::new(width, height);
        scene.fill(&grid, &mut img, 4);
        DynamicImage::ImageRgba8(img)
    } else {
        let mut img = RgbImage::new(width, height);
        scene.fill(&grid, &mut img, 3);
        DynamicImage::ImageRgb8(img)
    }
}

/// Flatten an RGBA picture onto an opaque backdrop of colour `key`: what a model draws when
/// asked for a subject on a flat chroma-key background. Other pixel types come back as RGB.
#[must_use]
pub fn on_key(img: &DynamicImage, key: [u8; 3]) -> DynamicImage {
    let rgba = img.to_rgba8();
    let mut out = RgbImage::new(img.width(), img.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(p[3]);
        for c in 0..3 {
            let v = (u16::from(p[c]) * a + u16::from(key[c]) * (255 - a) + 127) / 255;
            o[c] = u8::try_from(v).unwrap_or(u8::MAX);
        }
    }
    DynamicImage::ImageRgb8(out)
}

/// Draw the prompt banner and the emulator label onto an RGB8 or RGBA8 image (other pixel
/// types are left alone: the emulator only makes these two).
pub(crate) fn draw_overlay(img: &mut DynamicImage, prompt: &str) {
    let (width, height) = (img.width() as usize, img.height() as usize);
    let (buf, channels): (&mut [u8], usize) = match img {
        DynamicImage::ImageRgb8(b) => (&mut **b, 3),
        DynamicImage::ImageRgba8(b) => (&mut **b, 4),
        _ => return,
    };
    let mut canvas = Canvas {
        buf,
        width,
        height,
        channels,
    };
    draw_text(&mut canvas, prompt);
}

fn seed_of(prompt: &str, width: u32, height: u32, seed_extra: &str, transparent: bool) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"fourk-emulator render v1\0");
    h.update(prompt.as_bytes());
    h.update([0]);
    h.update(seed_extra.as_bytes());
    h.update([0]);
    h.update(width.to_le_bytes());
    h.update(height.to_le_bytes());
    h.update([u8::from(transparent)]);
    h.finalize().into()
}

fn threads() -> usize {
    // Four at most: more only add contention when several requests render at once.
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

// ---------------------------------------------------------------------------------------
// Noise and colour helpers.

/// SplitMix64: a tiny, well-mixed generator for scene parameters.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn hash2(ix: i32, iy: i32, seed: u32) -> u32 {
    let mut h = (ix as u32).wrapping_mul(0x8DA6_B343)
        ^ (iy as u32).wrapping_mul(0xD816_3841)
        ^ seed.wrapping_mul(0xCB1A_B31F);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^ (h >> 15)
}

#[inline]
fn lattice(ix: i32, iy: i32, seed: u32) -> f32 {
    (hash2(ix, iy, seed) >> 8) as f32 / (1u32 << 24) as f32
}

/// Value noise in [0, 1) with smoothstep interpolation.
#[inline]
fn value_noise(x: f32, y: f32, seed: u32) -> f32 {
    let (ix, iy) = (fast_floor(x), fast_floor(y));
    let (fx, fy) = (x - ix as f32, y - iy as f32);
    let sx = fx * fx * (3.0 - 2.0 * fx);
    let sy = fy * fy * (3.0 - 2.0 * fy);
    let a = lattice(ix, iy, seed);
    let b = lattice(ix + 1, iy, seed);
    let c = lattice(ix, iy + 1, seed);
    let d = lattice(ix + 1, iy + 1, seed);
    lerp(lerp(a, b, sx), lerp(c, d, sx), sy)
}

/// Fractal sum of `octaves` layers of value noise, normalised to [0, 1).
fn fbm(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
    for o in 0..octaves {
        sum += amp * value_noise(x * freq, y * freq, seed.wrapping_add(o * 0x9E37));
        norm += amp;
        amp *= 0.5;
        freq *= 2.03;
    }
    sum / norm
}

/// `floor` without the libm call it becomes on targets without SSE4.1.
#[inline]
fn fast_floor(x: f32) -> i32 {
    let i = x as i32;
    if (i as f32) > x { i - 1 } else { i }
}

#[inline]
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

#[inline]
fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [lerp(a[0], b[0], t), lerp(a[1], b[1], t), lerp(a[2], b[2], t)]
}

#[inline]
fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// HSV (all in [0, 1], hue wrapping) to RGB in [0, 1].
fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h.rem_euclid(1.0) * 6.0;
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r + m, g + m, b + m]
}

// ---------------------------------------------------------------------------------------
// The scene.

struct Band {
    cos: f32,
    sin: f32,
    offset: f32,
    width: f32,
    color: [f32; 3],
    opacity: f32,
}

struct Circle {
    x: f32,
    y: f32,
    r: f32,
    softness: f32,
    color: [f32; 3],
    opacity: f32,
}

struct Subject {
    x: f32,
    y: f32,
    r: f32,
    color: [f32; 3],
    accent: [f32; 3],
}

struct Scene {
    width: u32,
    height: u32,
    transparent: bool,
    seed: u32,
    grain_seed: u64,
    /// Pixels to scene units: 1.0 is the short edge, so shapes stay round at any ratio.
    inv_short: f32,
    /// Grid step in pixels: every feature is soft, so about 360 samples across the short
    /// edge are enough; 4 px minimum keeps small images cheap, 6 px maximum keeps 4K sharp.
    step: usize,
    sky_top: [f32; 3],
    sky_bottom: [f32; 3],
    cloud: [f32; 3],
    bands: Vec<Band>,
    circles: Vec<Circle>,
    subject: Subject,
}

/// The smooth part of the picture, sampled every `step` pixels: RGB in 0-255 and alpha in
/// 0-1, one row of `cols` cells after another.
struct Grid {
    step: usize,
    cols: usize,
    cells: Vec<[f32; 4]>,
}

impl Scene {
    fn new(seed: &[u8; 32], width: u32, height: u32, transparent: bool) -> Self {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let mut rng = Rng(word(0));
        let short = width.min(height).max(1) as f32;
        let (ew, eh) = (width as f32 / short, height as f32 / short);
        let hue = rng.unit();
        let sky_top = hsv(
            hue + rng.range(-0.04, 0.04),
            rng.range(0.45, 0.75),
            rng.range(0.25, 0.5),
        );
        let sky_bottom = hsv(
            hue + rng.range(0.05, 0.15),
            rng.range(0.25, 0.5),
            rng.range(0.75, 0.95),
        );
        let cloud = hsv(hue - 0.05, rng.range(0.05, 0.2), rng.range(0.85, 1.0));
        let bands = (0..3)
            .map(|_| {
                // Within about 0.6 rad of horizontal or vertical. Built from a square root
                // rather than sin/cos, whose libm results may differ between platforms and
                // would break the checksum test.
                let t = rng.range(-0.68, 0.68);
                let norm = (1.0 + t * t).sqrt();
                let (cos, sin) = if rng.unit() < 0.5 {
                    (1.0 / norm, t / norm)
                } else {
                    (-t / norm, 1.0 / norm)
                };
                Band {
                    cos,
                    sin,
                    offset: rng.range(0.1, ew.max(eh) * 0.9),
                    width: rng.range(0.03, 0.12),
                    color: hsv(
                        hue + 0.5 + rng.range(-0.1, 0.1),
                        rng.range(0.3, 0.7),
                        rng.range(0.7, 1.0),
                    ),
                    opacity: rng.range(0.15, 0.4),
                }
            })
            .collect();
        let circles = (0..7)
            .map(|_| Circle {
                x: rng.range(0.0, ew),
                y: rng.range(0.0, eh),
                r: rng.range(0.04, 0.22),
                softness: rng.range(0.2, 0.9),
                color: hsv(
                    hue + rng.range(-0.2, 0.6),
                    rng.range(0.2, 0.6),
                    rng.range(0.8, 1.0),
                ),
                opacity: rng.range(0.2, 0.55),
            })
            .collect();
        let subject = Subject {
            x: ew * rng.range(0.4, 0.6),
            y: eh * rng.range(0.4, 0.48),
            r: rng.range(0.3, 0.36),
            color: hsv(
                hue + 0.45 + rng.range(-0.08, 0.08),
                rng.range(0.55, 0.8),
                rng.range(0.7, 0.9),
            ),
            accent: hsv(hue + 0.3, rng.range(0.3, 0.6), rng.range(0.5, 0.8)),
        };
        Self {
            width,
            height,
            transparent,
            seed: word(8) as u32,
            grain_seed: word(16),
            inv_short: 1.0 / short,
            step: (width.min(height) as usize / 360).clamp(4, 6),
            sky_top,
            sky_bottom,
            cloud,
            bands,
            circles,
            subject,
        }
    }

    /// Colour (0-1) and coverage of the subject at scene point `(u, v)`.
    fn subject_at(&self, u: f32, v: f32) -> ([f32; 3], f32) {
        let s = &self.subject;
        let (dx, dy) = ((u - s.x) / s.r, (v - s.y) / s.r);
        let d = (dx * dx + dy * dy).sqrt();
        // Wobble the outline with noise of the direction, which avoids an atan2 per sample.
        let (nx, ny) = if d > 1e-6 { (dx / d, dy / d) } else { (0.0, 0.0) };
        let wobble = 1.0 + 0.12 * (fbm(nx * 1.7 + 5.0, ny * 1.7 + 5.0, self.seed ^ 0x51, 3) - 0.5);
        let e = d / wobble;
        // An edge a little wider than a grid cell, so interpolation cannot show the cells.
        let feather = (1.5 * self.step as f32 * self.inv_short / s.r).max(0.002);
        let coverage = smoothstep(1.0, 1.0 - feather, e);
        if coverage <= 0.0 {
            return ([0.0; 3], 0.0);
        }
        let e = e.min(1.0);
        let nz = (1.0 - e * e).sqrt();
        let (lx, ly, lz) = (-0.45_f32, -0.55_f32, 0.70_f32);
        let (px, py) = (dx / wobble, dy / wobble);
        let diffuse = (px * lx + py * ly + nz * lz).max(0.0);
        let spec = diffuse.powi(24) * 0.6;
        let tex = fbm(u * 9.0, v * 9.0, self.seed ^ 0x7E, 4);
        let streak = fbm(u * 2.5 + tex, v * 14.0, self.seed ^ 0x3C, 3);
        let base = mix(s.color, s.accent, smoothstep(0.35, 0.75, streak));
        let shade = (0.18 + 0.82 * diffuse) * (0.8 + 0.4 * tex);
        let rim = smoothstep(0.7, 1.0, e) * 0.15;
        let c = [
            base[0] * shade + spec + rim * s.accent[0],
            base[1] * shade + spec + rim * s.accent[1],
            base[2] * shade + spec + rim * s.accent[2],
        ];
        (c, coverage)
    }

    /// Background colour (0-1) at scene point `(u, v)`; `t` is the vertical position 0-1.
    fn background_at(&self, u: f32, v: f32, t: f32) -> [f32; 3] {
        let q = fbm(u * 1.5, v * 1.5, self.seed ^ 0x11, 3);
        let mut c = mix(
            self.sky_top,
            self.sky_bottom,
            smoothstep(0.0, 1.0, t + (q - 0.5) * 0.35),
        );
        let clouds = fbm(u * 3.0 + q * 1.8, v * 3.0 - q * 1.8, self.seed ^ 0x22, 5);
        c = mix(c, self.cloud, smoothstep(0.45, 0.8, clouds) * 0.7);
        for b in &self.bands {
            let d = (u * b.cos + v * b.sin - b.offset + (q - 0.5) * 0.25) / b.width;
            let k = 1.0 / (1.0 + d * d);
            c = mix(c, b.color, k * k * b.opacity);
        }
        for ci in &self.circles {
            let (dx, dy) = (u - ci.x, v - ci.y);
            let d = (dx * dx + dy * dy).sqrt() / ci.r;
            let k = smoothstep(1.0, 1.0 - ci.softness, d) * ci.opacity;
            // Screen blend, like out-of-focus highlights.
            c = [
                1.0 - (1.0 - c[0]) * (1.0 - ci.color[0] * k),
                1.0 - (1.0 - c[1]) * (1.0 - ci.color[1] * k),
                1.0 - (1.0 - c[2]) * (1.0 - ci.color[2] * k),
            ];
        }
        // A soft contact shadow under the subject.
        let s = &self.subject;
        let (sx, sy) = ((u - s.x) / (s.r * 1.1), (v - (s.y + s.r * 0.95)) / (s.r * 0.25));
        let shadow = smoothstep(1.0, 0.0, (sx * sx + sy * sy).sqrt()) * 0.45;
        c.map(|x| x * (1.0 - shadow))
    }

    /// RGB (0-255) and alpha (0-1) at pixel `(x, y)`.
    fn sample(&self, x: f32, y: f32) -> [f32; 4] {
        let (u, v) = (x * self.inv_short, y * self.inv_short);
        let (subject, coverage) = self.subject_at(u, v);
        let rgb = if self.transparent {
            subject
        } else {
            let t = y / self.height.max(1) as f32;
            let bg = self.background_at(u, v, t);
            let mut c = mix(bg, subject, coverage);
            let (cx, cy) = (
                x / self.width.max(1) as f32 - 0.5,
                y / self.height.max(1) as f32 - 0.5,
            );
            let vignette = 1.0 - 0.35 * smoothstep(0.3, 0.75, (cx * cx + cy * cy).sqrt());
            c = c.map(|k| k * vignette);
            c
        };
        let alpha = if self.transparent { coverage } else { 1.0 };
        [
            rgb[0].clamp(0.0, 1.0) * 255.0,
            rgb[1].clamp(0.0, 1.0) * 255.0,
            rgb[2].clamp(0.0, 1.0) * 255.0,
            alpha,
        ]
    }

    fn grid(&self) -> Grid {
        let step = self.step;
        // One extra cell past the last pixel on each axis, so interpolation never runs off.
        let cols = self.width as usize / step + 2;
        let rows = self.height as usize / step + 2;
        let mut cells = vec![[0.0_f32; 4]; cols * rows];
        let per = rows.div_ceil(threads()).max(1);
        std::thread::scope(|scope| {
            for (k, chunk) in cells.chunks_mut(per * cols).enumerate() {
                scope.spawn(move || {
                    for (i, cell) in chunk.iter_mut().enumerate() {
                        let row = k * per + i / cols;
                        let col = i % cols;
                        *cell = self.sample((col * step) as f32, (row * step) as f32);
                    }
                });
            }
        });
        Grid { step, cols, cells }
    }

    /// Grain offsets per pixel for R, G and B: a shared luminance part (a sum of four uniform
    /// bytes, roughly Gaussian) plus a smaller per-channel part.
    fn grain_table(&self) -> Vec<[f32; 3]> {
        // Four bytes summed have a standard deviation of 147.8; one byte of 73.9.
        let luma_scale = GRAIN_LUMA / 147.8;
        let chroma_scale = GRAIN_CHROMA / 73.9;
        (0..GRAIN_TABLE as u64)
            .map(|i| {
                let b = mix64(self.grain_seed ^ i).to_le_bytes();
                let luma = (f32::from(b[0]) + f32::from(b[1]) + f32::from(b[2]) + f32::from(b[3]) - 510.0)
                    * luma_scale;
                [0, 1, 2].map(|c| luma + (f32::from(b[4 + c]) - 127.5) * chroma_scale)
            })
            .collect()
    }

    /// Interpolate the grid to every pixel and add grain.
    fn fill(&self, grid: &Grid, buf: &mut [u8], channels: usize) {
        if channels == 4 {
            self.fill_n::<4>(grid, buf);
        } else {
            self.fill_n::<3>(grid, buf);
        }
    }

    fn fill_n<const CH: usize>(&self, grid: &Grid, buf: &mut [u8]) {
        let width = self.width as usize;
        if width == 0 || self.height == 0 {
            return;
        }
        let grain = self.grain_table();
        let grain = &grain;
        let step = grid.step;
        let inv_step = 1.0 / step as f32;
        let row_bytes = width * CH;
        let rows = self.height as usize;
        let per = rows.div_ceil(threads()).max(1);
        std::thread::scope(|scope| {
            for (k, chunk) in buf.chunks_mut(per * row_bytes).enumerate() {
                scope.spawn(move || {
                    let mut line = vec![[0.0_f32; 4]; grid.cols];
                    for (i, out) in chunk.chunks_mut(row_bytes).enumerate() {
                        let y = k * per + i;
                        let j = y / step;
                        let fy = (y - j * step) as f32 * inv_step;
                        let top = &grid.cells[j * grid.cols..(j + 1) * grid.cols];
                        let bottom = &grid.cells[(j + 1) * grid.cols..(j + 2) * grid.cols];
                        for ((l, a), b) in line.iter_mut().zip(top).zip(bottom) {
                            for c in 0..4 {
                                l[c] = lerp(a[c], b[c], fy);
                            }
                        }
                        let mut g =
                            (mix64(self.grain_seed.rotate_left(17) ^ y as u64) as usize) % GRAIN_TABLE;
                        // One grid cell's span of pixels at a time: its two ends are loaded once.
                        for (span, ends) in out.chunks_mut(step * CH).zip(line.windows(2)) {
                            let (a, b) = (ends[0], ends[1]);
                            let d = [b[0] - a[0], b[1] - a[1], b[2] - a[2], b[3] - a[3]];
                            for (s, px) in span.chunks_exact_mut(CH).enumerate() {
                                let fx = s as f32 * inv_step;
                                let noise = grain[g];
                                g = (g + 1) % GRAIN_TABLE;
                                let alpha = a[3] + d[3] * fx;
                                if CH == 4 && alpha <= 0.0 {
                                    px.fill(0);
                                    continue;
                                }
                                for c in 0..3 {
                                    // `as u8` saturates, so this rounds and clamps without a
                                    // libm call.
                                    px[c] = (a[c] + d[c] * fx + noise[c] + 0.5) as u8;
                                }
                                if CH == 4 {
                                    px[3] = (alpha * 255.0 + 0.5) as u8;
                                }
                            }
                        }
                    }
                });
            }
        });
    }
}

// ---------------------------------------------------------------------------------------
// Text.

/// A rectangle in pixels; parts outside the canvas are clipped.
#[derive(Clone, Copy)]
struct Rect {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

struct Canvas<'a> {
    buf: &'a mut [u8],
    width: usize,
    height: usize,
    channels: usize,
}

impl Canvas<'_> {
    /// Blend `color` over a rectangle with `opacity`, raising alpha to at least `min_alpha`.
    fn shade_rect(&mut self, r: Rect, color: [u8; 3], opacity: f32, min_alpha: u8) {
        let (x1, y1) = ((r.x + r.w).min(self.width), (r.y + r.h).min(self.height));
        let x0 = r.x.min(x1);
        for y in r.y.min(y1)..y1 {
            let row =
                &mut self.buf[(y * self.width + x0) * self.channels..(y * self.width + x1) * self.channels];
            for px in row.chunks_exact_mut(self.channels) {
                for c in 0..3 {
                    px[c] = (lerp(f32::from(px[c]), f32::from(color[c]), opacity) + 0.5) as u8;
                }
                if self.channels == 4 {
                    px[3] = px[3].max(min_alpha);
                }
            }
        }
    }

    fn fill_rect(&mut self, r: Rect, color: [u8; 3]) {
        self.shade_rect(r, color, 1.0, 255);
    }

    /// Draw one 8x8 glyph scaled by `scale`, with a drop shadow.
    fn glyph(&mut self, ch: char, x: usize, y: usize, scale: usize, color: [u8; 3]) {
        let bits = glyph_bits(ch);
        let shadow = (scale / 3).max(1);
        for (dx, col) in [(shadow, [0, 0, 0]), (0, color)] {
            for (r, row) in bits.iter().enumerate() {
                for b in 0..8 {
                    if row & (1 << b) != 0 {
                        self.fill_rect(
                            Rect {
                                x: x + b * scale + dx,
                                y: y + r * scale + dx,
                                w: scale,
                                h: scale,
                            },
                            col,
                        );
                    }
                }
            }
        }
    }

    fn text(&mut self, line: &str, x: usize, y: usize, scale: usize, color: [u8; 3]) {
        for (i, ch) in line.chars().enumerate() {
            self.glyph(ch, x + i * 8 * scale, y, scale, color);
        }
    }
}

fn glyph_bits(ch: char) -> [u8; 8] {
    let ch = if ch.is_control() { ' ' } else { ch };
    font8x8::BASIC_FONTS
        .get(ch)
        .or_else(|| font8x8::LATIN_FONTS.get(ch))
        .or_else(|| font8x8::GREEK_FONTS.get(ch))
        .or_else(|| font8x8::BOX_FONTS.get(ch))
        .or_else(|| font8x8::BLOCK_FONTS.get(ch))
        .or_else(|| font8x8::HIRAGANA_FONTS.get(ch))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Wrap `text` into at most `max_lines` lines of at most `cols` characters, breaking long
/// words and ending with `...` when the text does not fit.
fn wrap(text: &str, cols: usize, max_lines: usize) -> Vec<String> {
    let cols = cols.max(4);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut truncated = false;
    'words: for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while !word.is_empty() {
            let used = cur.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= cols {
                if gap == 1 {
                    cur.push(' ');
                }
                cur.extend(word.drain(..));
            } else if used == 0 {
                cur.extend(word.drain(..cols));
            } else {
                if lines.len() + 1 == max_lines {
                    truncated = true;
                    break 'words;
                }
                lines.push(std::mem::take(&mut cur));
                continue;
            }
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    if truncated || lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            let keep = cols - 3;
            if last.chars().count() > keep {
                let cut: String = last.chars().take(keep).collect();
                // Drop a word cut in half rather than show a fragment of it.
                *last = match cut.rfind(' ') {
                    Some(i) if i > 0 => cut[..i].to_owned(),
                    _ => cut,
                };
            }
            last.push_str("...");
        }
    }
    lines
}

/// The prompt on a banner across the lower third, and the emulator label under it.
fn draw_text(canvas: &mut Canvas<'_>, prompt: &str) {
    let (w, h) = (canvas.width, canvas.height);
    let short = w.min(h);
    if short < 64 {
        return;
    }
    let scale = (short / 150).max(2);
    let label_scale = (scale / 3).max(1);
    let margin = short / 24;
    let banner_w = w - 2 * margin;
    let pad = 2 * scale;
    let cols = banner_w.saturating_sub(2 * pad) / (8 * scale);
    let lines = wrap(prompt, cols, 3);
    let line_h = 10 * scale;
    let banner_h = lines.len() * line_h + 2 * pad;
    let label_h = 8 * label_scale + 2 * label_scale;
    let bottom_room = margin + label_h + scale;
    let banner_y = (h * 78 / 100)
        .saturating_sub(banner_h / 2)
        .min(h.saturating_sub(banner_h + bottom_room));
    if !lines.is_empty() {
        let banner = Rect {
            x: margin,
            y: banner_y,
            w: banner_w,
            h: banner_h,
        };
        canvas.shade_rect(banner, [12, 12, 16], 0.62, 215);
        for (i, line) in lines.iter().enumerate() {
            let text_w = line.chars().count() * 8 * scale;
            let x = margin + banner_w.saturating_sub(text_w) / 2;
            canvas.text(
                line,
                x,
                banner_y + pad + i * line_h + scale,
                scale,
                [248, 246, 238],
            );
        }
    }
    let label_w = EMULATOR_LABEL.len() * 8 * label_scale + 2 * label_scale;
    let label_x = (margin + banner_w).saturating_sub(label_w);
    let label_y = banner_y + banner_h + scale / 2;
    let label = Rect {
        x: label_x,
        y: label_y,
        w: label_w,
        h: label_h,
    };
    canvas.fill_rect(label, [0, 0, 0]);
    canvas.text(
        EMULATOR_LABEL,
        label_x + label_scale,
        label_y + label_scale,
        label_scale,
        [255, 214, 64],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_size_and_deterministic() {
        for (w, h) in [(1024, 1024), (1536, 1024), (656, 1968), (100, 37), (1, 1), (0, 0)] {
            let a = render("a red fox in the snow", w, h, "gpt-image-2|medium|0", false);
            assert_eq!((a.width(), a.height()), (w, h));
            let b = render("a red fox in the snow", w, h, "gpt-image-2|medium|0", false);
            assert!(a == b, "{w}x{h} not deterministic");
        }
        let a = render("a", 256, 256, "x", false);
        let b = render("b", 256, 256, "x", false);
        let c = render("a", 256, 256, "y", false);
        assert!(a != b && a != c);
    }

    fn checksum(img: &DynamicImage) -> String {
        Sha256::digest(img.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Freezes the pixels: a change to the renderer changes these on purpose, and then the
    /// new values are pasted here. Set `FOURK_EMULATOR_SAVE=dir` to write the images.
    #[test]
    fn checksums_are_frozen() {
        let cases = [
            (
                render("a red fox in the snow", 320, 180, "gpt-image-2|medium|0", false),
                "b5cef6d29693e97b9343c0a4467ff652a7de792dd33bdd43603f707cedc885ea",
            ),
            (
                render("a sticker of a cat", 180, 320, "gpt-image-2|high|0", true),
                "fafb14741ad1e4e46a9694f10c6aaf04e6b0006b0dcd9ddd20ed021eb40f3623",
            ),
        ];
        for (i, (img, want)) in cases.iter().enumerate() {
            if let Some(dir) = std::env::var_os("FOURK_EMULATOR_SAVE") {
                let path = std::path::Path::new(&dir).join(format!("render-{i}.png"));
                img.save(&path).unwrap();
            }
            assert_eq!(&checksum(img), want, "case {i}");
        }
    }

    #[test]
    fn not_flat_and_has_grain() {
        let img = render("texture check", 512, 512, "", false).to_rgb8();
        let lum: Vec<f64> = img
            .pixels()
            .map(|p| f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2]))
            .collect();
        let mean = lum.iter().sum::<f64>() / lum.len() as f64;
        let var = lum.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / lum.len() as f64;
        assert!(var.sqrt() > 20.0, "too flat: sd {}", var.sqrt());
        // Neighbouring pixels differ: fine texture, not just gradients.
        let diffs = img
            .as_raw()
            .chunks_exact(3)
            .zip(img.as_raw().chunks_exact(3).skip(1))
            .filter(|(a, b)| a != b)
            .count();
        assert!(diffs > 512 * 512 * 9 / 10, "{diffs}");
    }

    #[test]
    fn transparent_has_clear_background_and_opaque_subject() {
        let img = render("a logo", 1024, 1024, "", true);
        assert!(img.color().has_alpha());
        let img = img.to_rgba8();
        assert_eq!(img.get_pixel(0, 0)[3], 0);
        assert_eq!(img.get_pixel(1023, 0)[3], 0);
        let clear = img.pixels().filter(|p| p[3] == 0).count();
        let solid = img.pixels().filter(|p| p[3] == 255).count();
        assert!(clear > 1024 * 1024 / 5, "{clear}");
        assert!(solid > 1024 * 1024 / 5, "{solid}");
    }

    #[test]
    fn prompt_and_label_are_drawn() {
        // The label's yellow appears nowhere else in a dark-banner render.
        let img = render("hello world", 1024, 1024, "", false).to_rgb8();
        let yellow = img.pixels().filter(|p| p.0 == [255, 214, 64]).count();
        assert!(yellow > 100, "{yellow}");
        let white = img.pixels().filter(|p| p.0 == [248, 246, 238]).count();
        assert!(white > 1000, "{white}");
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc", 6, 3), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4, 3), ["abcd", "efgh", "ij"]);
        let w = wrap(&"word ".repeat(100), 10, 2);
        assert_eq!(w.len(), 2);
        assert!(w[1].ends_with("..."), "{w:?}");
        assert_eq!(wrap("crashing below, warm light", 20, 1), ["crashing below,..."]);
        assert!(wrap("   ", 10, 3).is_empty());
    }
}
