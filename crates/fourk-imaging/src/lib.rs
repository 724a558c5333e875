//! Local image work for fourk: encoding, atomic saving, header probing and full verification.
//!
//! Every input is treated as untrusted: decoding runs under explicit limits and a truncated or
//! hostile file is an error, never a panic.
//!
//! - [`mod@encode`]: pixels to PNG, JPEG or WebP with the API's `output_compression` meaning.
//! - [`mod@probe`]: what a file's header claims (format from magic bytes, size, alpha), cheaply.
//! - [`mod@verify`]: decode every pixel under limits and compare with an [`Expect`].
//! - [`mod@save`]: base64 to verified bytes on disk, atomically, with rejects set aside.
//!
//! ```
//! use fourk_api::{OutputFormat, Size};
//! use fourk_imaging::{Expect, encode, save_verified};
//! use image::{DynamicImage, RgbImage};
//! # use base64::Engine as _;
//!
//! let png = encode(&DynamicImage::ImageRgb8(RgbImage::new(64, 32)), OutputFormat::Png, None)?;
//! let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
//! let dir = tempfile::tempdir()?;
//! let expect = Expect::default().with_size(Size::new(64, 32)).with_format(OutputFormat::Png);
//!
//! let saved = save_verified(&dir.path().join("cat.png"), &b64, &expect)?;
//! assert!(!saved.rejected && saved.report.intact);
//!
//! // Asked for 4K but got 64x32: kept, but under a name that says so.
//! let saved = save_verified(&dir.path().join("big.png"), &b64, &expect.with_size(Size::new(3840, 2160)))?;
//! assert!(saved.rejected);
//! assert_eq!(saved.path, dir.path().join("big.rejected.png"));
//! assert_eq!(saved.report.failed_checks().next().unwrap().actual, "64");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod encode;
mod encoded;
mod error;
mod jpeg_entropy;
mod jpeg_scan;
mod png_idat;
pub mod probe;
pub mod save;
pub mod shrink;
pub mod verify;
mod webp_lossless;

pub use encode::{EncodeOptions, JpegSubsampling, WEBP_LOSSLESS_LEVEL, encode_with_options};
pub use encode::{PngLevel, encode, encode_with};
pub use encoded::{EncodedFile, encode_verified};
pub use error::ImagingError;
pub use probe::{Probe, probe_bytes, probe_file};
pub use save::{
    Replace, SavedImage, decode_b64, rejected_path, save_atomic, save_bytes_verified, save_bytes_verified_as,
    save_bytes_verified_decoded, save_verified, save_verified_as,
};
pub use shrink::Thumbnail;
pub use verify::{
    Check, CheckName, DecodedPieces, Expect, MAX_ALLOC, MAX_DIMENSION, VerifyReport, verify_bytes,
    verify_bytes_decoded, verify_file,
};

// The local pixel pipeline: decode untrusted input, resample, frame, key out, measure.
pub mod alpha;
pub mod budget;
pub mod cutout;
pub mod fit;
pub mod load;
pub mod metrics;
mod pipeline_error;
pub mod resize;

pub use alpha::{flatten, has_transparency};
pub use cutout::{CutoutReport, DEFAULT_FEATHER, DEFAULT_TOLERANCE, KeySpec, cutout, cutout_into};
pub use fit::{FitMode, Gravity, Pad, fit};
pub use load::{
    LOAD_MAX_ALLOC, LOAD_MAX_DIMENSION, StreamedJpeg, load_bytes, load_file, load_limits, png_to_jpeg,
};
pub use metrics::detail_energy;
pub use pipeline_error::PipelineError;
pub use resize::{
    Filter, MAX_OUTPUT_DIMENSION, MAX_SHARPEN, StreamedUpscale, Upscaler, blank, blank_like, png_upscale,
    upscale,
};

/// The entropy checks beside the full decodes they stand in for, and the PNG row reader beside
/// the `png` crate, for `benches/jpeg_check.rs`, `benches/webp_check.rs` and the `jpeg_check`,
/// `webp_check` and `png_rows` fuzz targets only: not a stable API.
#[doc(hidden)]
pub mod internals {
    /// Standalone JPEGs of whole MCU rows, as verification cuts a restart-marked file.
    #[must_use]
    pub fn jpeg_pieces(jpeg: &[u8], pieces: usize) -> Option<Vec<Vec<u8>>> {
        crate::jpeg_scan::split_rows(jpeg, pieces)
    }

    /// The entropy check of a JPEG (a whole file or a piece).
    #[must_use]
    pub fn jpeg_proven(jpeg: &[u8], scratch: &mut Vec<u8>) -> bool {
        crate::jpeg_entropy::proven(jpeg, crate::verify::jpeg_options(), scratch)
    }

    /// The strict full decode of a JPEG (a whole file or a piece).
    #[must_use]
    pub fn jpeg_decodes(jpeg: &[u8], buf: &mut Vec<u8>) -> bool {
        crate::verify::decode_jpeg_piece(buf, jpeg).is_ok()
    }

    /// The entropy check of a lossless WebP (pixels not needed for a transparency question).
    #[must_use]
    pub fn webp_lossless_proven(webp: &[u8]) -> bool {
        crate::webp_lossless::proven(webp, false)
    }

    /// A PNG's pixels as the pipeline reads an 8-bit RGB or RGBA one ([`crate::png_idat`]);
    /// `None` where it declines (and `image` decodes instead).
    #[must_use]
    pub fn png_rows_pixels(png: &[u8]) -> Option<Vec<u8>> {
        crate::load::png_frame(png, &crate::load::load_limits()).map(image::DynamicImage::into_bytes)
    }

    /// The `png` crate's decode of a PNG, through `image`.
    #[must_use]
    pub fn png_crate_pixels(png: &[u8]) -> Option<Vec<u8>> {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .ok()
            .map(image::DynamicImage::into_bytes)
    }

    /// libwebp's full decode of a WebP, as verification runs it.
    #[must_use]
    pub fn webp_decodes(webp: &[u8]) -> bool {
        webp::Decoder::new(webp).decode().is_some()
    }
}

// Metadata in encoded bytes, contact sheets and side-by-side comparisons.
pub mod compare;
pub mod metadata;
pub mod preview;
pub mod sheet;

pub use compare::{Compared, Comparison, compare, side_by_side};
pub use metadata::{MetaKind, MetadataReport, Provenance};
pub use sheet::{Cell, Line, SheetOptions, contact_sheet, thumbnail};

/// A number from the environment for the damage tests' longer runs (`FOURK_FUZZ_ROUNDS`,
/// `FOURK_FUZZ_SEED`), or `default`.
#[cfg(test)]
fn test_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
