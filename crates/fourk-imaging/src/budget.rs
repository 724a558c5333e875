//! The pixel budget every decode is held to.
//!
//! A file's header can declare any size: a 1 MB PNG may claim 16000x16000 RGBA, which would
//! need a gigabyte to decode. Before any decoder allocates, the declared width x height is
//! checked against the budget (default 64 megapixels, 8192x8192: more than every provider's
//! largest answer, Gemini's 5504x3072 included), and the frame's bytes (width x height x
//! channels x bytes per sample) against the budget's RGBA8 frame. Over it, the file is refused
//! with [`ImagingError::Limits`] naming both numbers and how to raise the budget.
//!
//! The budget is one setting per process ([`set_max_pixels`]); the CLI sets it from
//! `--max-pixels` or `FOURK_MAX_PIXELS`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ImagingError;

/// The default budget: 64 megapixels (8192x8192).
pub const DEFAULT_MAX_PIXELS: u64 = 64 * 1024 * 1024;

static MAX_PIXELS: AtomicU64 = AtomicU64::new(DEFAULT_MAX_PIXELS);

/// Set the budget for every later decode in this process (at least one pixel).
pub fn set_max_pixels(pixels: u64) {
    MAX_PIXELS.store(pixels.max(1), Ordering::Relaxed);
}

/// The budget in pixels.
#[must_use]
pub fn max_pixels() -> u64 {
    MAX_PIXELS.load(Ordering::Relaxed)
}

/// The most bytes one decoded frame may take: the budget as RGBA8.
#[must_use]
pub fn max_frame_bytes() -> u64 {
    max_pixels().saturating_mul(4)
}

/// Check a declared `width` x `height` frame of `bytes_per_pixel` against the budget.
///
/// # Errors
/// [`ImagingError::Limits`] naming the size, the budget and the fix.
pub fn check(width: u32, height: u32, bytes_per_pixel: u64) -> Result<(), ImagingError> {
    let pixels = u64::from(width) * u64::from(height);
    let max = max_pixels();
    let frame = pixels.saturating_mul(bytes_per_pixel.max(1));
    if pixels > max || frame > max_frame_bytes() {
        return Err(ImagingError::Limits(format!(
            "{width}x{height} ({}, a {} frame) is over the decoding budget of {} ({}); nothing was decoded (raise it with --max-pixels or FOURK_MAX_PIXELS, or scale the file down with another tool)",
            count(pixels, "pixels"),
            count(frame, "bytes"),
            count(max, "pixels"),
            count(max_frame_bytes(), "bytes"),
        )));
    }
    Ok(())
}

/// Bytes per decoded pixel for a probe's colour name (`rgba16` is 8).
#[must_use]
pub fn bytes_per_pixel(color: &str) -> u64 {
    let channels = match color.trim_end_matches(|c: char| c.is_ascii_digit()) {
        "l" => 1,
        "la" => 2,
        "rgb" => 3,
        _ => 4,
    };
    let depth = if color.ends_with("16") { 2 } else { 1 };
    channels * depth
}

/// `12288 pixels`, or `67.1 million pixels` from a million up.
#[allow(clippy::cast_precision_loss)]
fn count(n: u64, unit: &str) -> String {
    if n >= 1_000_000 {
        format!("{:.1} million {unit}", n as f64 / 1e6)
    } else {
        format!("{n} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_count_their_bytes() {
        assert_eq!(bytes_per_pixel("l8"), 1);
        assert_eq!(bytes_per_pixel("rgb8"), 3);
        assert_eq!(bytes_per_pixel("rgba8"), 4);
        assert_eq!(bytes_per_pixel("rgba16"), 8);
        assert_eq!(bytes_per_pixel("la16"), 4);
    }

    #[test]
    fn the_default_budget_takes_8192_squared_rgba8_and_nothing_larger() {
        // Uses the default: no test in this crate changes the process-wide budget.
        check(8192, 8192, 4).unwrap();
        let e = check(16_000, 16_000, 4).unwrap_err().to_string();
        assert!(e.contains("16000x16000") && e.contains("--max-pixels"), "{e}");
        assert!(
            check(8192, 8192, 8).is_err(),
            "16-bit RGBA at 8192x8192 is twice the frame"
        );
        assert!(check(3840, 2160, 8).is_ok());
    }
}
