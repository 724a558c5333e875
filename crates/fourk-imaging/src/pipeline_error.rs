//! Errors of the local pixel pipeline (load, resize, fit, cutout, metrics).
//!
//! Kept apart from [`ImagingError`] because those variants describe bytes and files, while
//! most failures here are a caller's parameter out of range. Decoding failures are still
//! [`ImagingError`]s, wrapped, so a caller matches on one type per cause.

use crate::error::ImagingError;

/// Everything that can go wrong in [`mod@crate::load`], [`mod@crate::resize`], [`mod@crate::fit`],
/// [`mod@crate::cutout`] and [`mod@crate::metrics`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Reading or decoding the input failed: garbage, truncated, unsupported, over the limits
    /// or an I/O error. The inner error says which.
    #[error(transparent)]
    Imaging(#[from] ImagingError),
    /// A requested output size is zero or larger than the pipeline accepts.
    #[error("invalid target size {width}x{height}: each side must be between 1 and {max} pixels")]
    InvalidSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// The largest side accepted.
        max: u32,
    },
    /// The source image has no pixels.
    #[error("the source image is empty ({width}x{height})")]
    EmptySource {
        /// Source width.
        width: u32,
        /// Source height.
        height: u32,
    },
    /// A numeric parameter is out of its range or not finite.
    #[error("invalid {name} {value}: expected {expected}")]
    InvalidParameter {
        /// The parameter, as named in the API (`sharpen`, `tolerance`, ...).
        name: &'static str,
        /// What was passed.
        value: f32,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// A crop rectangle reaches outside the image.
    #[error(
        "crop {w}x{h} at ({x}, {y}) does not fit in the {width}x{height} image",
        x = crop.0, y = crop.1, w = crop.2, h = crop.3
    )]
    CropOutOfBounds {
        /// The rectangle asked for: `(x, y, width, height)`.
        crop: (u32, u32, u32, u32),
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// A destination buffer given by the caller has the wrong size or layout.
    #[error(
        "destination is {actual_width}x{actual_height} {actual_layout}, expected \
         {width}x{height} {layout}"
    )]
    DestinationMismatch {
        /// Width the operation produces.
        width: u32,
        /// Height the operation produces.
        height: u32,
        /// Pixel layout the operation produces (`rgb8`, `rgba8`).
        layout: &'static str,
        /// The destination's width.
        actual_width: u32,
        /// The destination's height.
        actual_height: u32,
        /// The destination's pixel layout.
        actual_layout: &'static str,
    },
    /// A pixel buffer could not be allocated.
    #[error("cannot allocate {bytes} bytes for pixels")]
    OutOfMemory {
        /// The size of the failed allocation.
        bytes: u64,
    },
    /// The resampler rejected its input. Pixel layouts are matched before it runs, so this
    /// is a bug in fourk.
    #[error("resampling failed: {0}")]
    Resize(#[from] fast_image_resize::ResizeError),
    /// A pixel buffer did not match its stated size. Buffers are sized before the resampler
    /// sees them, so this is a bug in fourk.
    #[error("resampling failed: {0}")]
    Buffer(#[from] fast_image_resize::ImageBufferError),
}

/// A zeroed buffer of `len` bytes, or [`PipelineError::OutOfMemory`] instead of an abort:
/// sizes here come from untrusted headers and caller parameters.
pub(crate) fn try_zeroed(len: usize) -> Result<Vec<u8>, PipelineError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| PipelineError::OutOfMemory { bytes: len as u64 })?;
    v.resize(len, 0);
    Ok(v)
}

/// `width * height * channels` as `usize`, or [`PipelineError::OutOfMemory`] when it
/// overflows (only possible on 32-bit targets).
pub(crate) fn buffer_len(width: u32, height: u32, channels: u8) -> Result<usize, PipelineError> {
    let bytes = u64::from(width) * u64::from(height) * u64::from(channels);
    usize::try_from(bytes).map_err(|_| PipelineError::OutOfMemory { bytes })
}
