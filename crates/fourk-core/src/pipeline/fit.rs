//! `fit`: make a picture exactly the target size without distorting it, by cover (scale and
//! crop), contain (scale and pad) or crop (no scaling).

use std::path::PathBuf;
use std::time::Instant;

use fourk_api::Size;
use fourk_imaging::{FitMode, Gravity, Pad};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Encode, Job, Summary};

/// A fit to an exact frame.
#[derive(Debug, Clone)]
pub struct FitSpec {
    /// The picture (PNG, JPEG or WebP).
    pub input: PathBuf,
    /// The exact frame (`auto` is refused).
    pub to: Size,
    /// Cover, contain or crop (with the padding of the last two).
    pub mode: FitMode,
    /// What to keep when cropping, where to sit when padding.
    pub gravity: Gravity,
    /// Where to write.
    pub out: PathBuf,
    /// How the output is written.
    pub encode: Encode,
}

/// Fit `spec.input` to `spec.to`.
///
/// # Errors
/// [`crate::UsageError`] for `auto` and bad parameters, decoding and I/O errors, and
/// [`crate::send::Cancelled`].
pub fn fit(spec: &FitSpec, cancel: &CancellationToken) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (w, h) = super::exact(spec.to, "fit", "the exact frame")?;
    let (enc, out) = super::output(
        &spec.out,
        &spec.encode,
        super::input_header(&spec.input).0,
        Some((w, h)),
        Some((w, h)),
        "fit",
    )?;
    let input = super::read_input(&spec.input)?;
    let t = Instant::now();
    let img = fourk_imaging::fit(&input.image, w, h, spec.mode, spec.gravity)
        .map_err(|e| super::pipeline_error(e, &format!("cannot fit to {w}x{h}")))?;
    let process = super::ms(t);
    let gravity = match spec.gravity {
        Gravity::Point(x, y) => json!([x, y]),
        g => json!(g.name()),
    };
    let pad = match spec.mode {
        FitMode::Contain(Pad::Color([r, g, b])) | FitMode::Crop(Pad::Color([r, g, b])) => {
            json!(format!("#{r:02x}{g:02x}{b:02x}"))
        }
        FitMode::Contain(_) | FitMode::Crop(_) => json!("transparent"),
        _ => json!(null),
    };
    let job = Job::of_input(
        "fit",
        &input,
        json!({
            "to": format!("{w}x{h}"),
            "from": format!("{}x{}", input.image.width(), input.image.height()),
            "mode": spec.mode.name(),
            "gravity": gravity,
            "pad": pad,
            "filter": "lanczos3",
        }),
        Some(process),
        started,
        cancel,
    );
    super::deliver(&out, &img, &spec.encode, enc, job)
}
