//! `cutout`: remove a flat key-colour backdrop (soft matte, despill, QA report), or run a
//! user-supplied ONNX matting model with `--model`.

use std::path::PathBuf;
use std::time::Instant;

use fourk_api::OutputFormat;
use fourk_imaging::KeySpec;
use fourk_matte::{MAX_MODEL_BYTES, MatteError, MatteModel};
use image::DynamicImage;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Encode, Job, Summary};
use crate::UsageError;

/// How the background is removed.
#[derive(Debug, Clone, PartialEq)]
pub enum CutoutMethod {
    /// A chroma key on a flat backdrop.
    Key {
        /// The backdrop colour, or estimated from the border.
        key: KeySpec,
        /// Colour distance (YCbCr units) up to which pixels become fully transparent.
        tolerance: f32,
        /// Width of the soft ramp beyond the tolerance.
        feather: f32,
    },
    /// A user-supplied ONNX matting or segmentation model.
    Model(PathBuf),
}

/// A background removal.
#[derive(Debug, Clone)]
pub struct CutoutSpec {
    /// The picture (PNG, JPEG or WebP).
    pub input: PathBuf,
    /// Chroma key or model.
    pub method: CutoutMethod,
    /// Where to write: PNG or WebP.
    pub out: PathBuf,
    /// How the output is written (`flatten` is refused).
    pub encode: Encode,
}

/// Below this share of transparent pixels the key was probably wrong.
const LOW_TRANSPARENT_SHARE: f64 = 0.01;
/// Above this halo score the edges visibly keep the key colour.
const HIGH_HALO: f64 = 0.15;

fn model_error(e: MatteError, model: &std::path::Path) -> anyhow::Error {
    let hint = "\n\nhint: --model needs an ONNX matting or segmentation model with one image input, [1, 3, H, W] or [1, H, W, 3] float RGB in 0..1, and a one-channel output";
    match e {
        MatteError::Pipeline(p) => super::pipeline_error(p, "cannot apply the matte"),
        e @ MatteError::Run(_) => anyhow::Error::new(e).context(format!("cannot run {}", model.display())),
        e => UsageError(format!(
            "cannot use {} as a matting model: {e}{hint}",
            model.display()
        ))
        .into(),
    }
}

fn run_model(
    path: &std::path::Path,
    img: &DynamicImage,
) -> anyhow::Result<(DynamicImage, serde_json::Value)> {
    let bytes = super::read_limited(path, MAX_MODEL_BYTES)?;
    // A malformed graph can make the runtime panic; that is caught and reported as an error,
    // so the panic message itself only goes to the debug log.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| tracing::debug!("ONNX runtime panic: {info}")));
    let result = MatteModel::from_bytes(&bytes).and_then(|m| m.predict(img));
    std::panic::set_hook(hook);
    let (out, report) = result.map_err(|e| model_error(e, path))?;
    let value = serde_json::to_value(&report)?;
    if report.transparent_share < LOW_TRANSPARENT_SHARE {
        tracing::warn!(
            "the model left almost every pixel visible; check that it is a matting model and that it expects RGB in 0..1"
        );
    }
    Ok((DynamicImage::ImageRgba8(out), value))
}

/// Cut the background out of `spec.input`.
///
/// # Errors
/// [`UsageError`] for a format without alpha, `flatten` or an unusable model, decoding and
/// I/O errors, and [`crate::send::Cancelled`].
pub fn cutout(spec: &CutoutSpec, cancel: &CancellationToken) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (enc, out) = super::output(
        &spec.out,
        &spec.encode,
        OutputFormat::Png,
        None,
        super::input_header(&spec.input).1,
        "cutout",
    )?;
    if enc.format == OutputFormat::Jpeg {
        return Err(UsageError(
            "a cutout needs an alpha channel and JPEG has none\n\nhint: name the output .png or .webp".into(),
        )
        .into());
    }
    if spec.encode.flatten.is_some() {
        return Err(UsageError(
            "--flatten would undo the cutout by painting its transparent pixels\n\nhint: drop --flatten"
                .into(),
        )
        .into());
    }
    let input = super::read_input(&spec.input)?;
    let t = Instant::now();
    let (img, report, parameters) = match &spec.method {
        CutoutMethod::Model(model) => {
            let (img, report) = run_model(model, &input.image)?;
            let sha = super::read_limited(model, MAX_MODEL_BYTES)
                .map(|b| format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&b)))
                .unwrap_or_default();
            (
                img,
                report,
                json!({ "method": "onnx", "model": model, "model_sha256": sha }),
            )
        }
        &CutoutMethod::Key {
            key,
            tolerance,
            feather,
        } => {
            let (img, report) = fourk_imaging::cutout(&input.image, key, tolerance, feather)
                .map_err(|e| super::pipeline_error(e, "cannot cut out"))?;
            if report.transparent_share < LOW_TRANSPARENT_SHARE {
                let [r, g, b] = report.key;
                tracing::warn!(
                    "almost nothing was keyed out with key #{r:02x}{g:02x}{b:02x}; pass the backdrop colour with --key #RRGGBB or raise --tolerance"
                );
            }
            if report.halo_score > HIGH_HALO {
                tracing::warn!(
                    "edges keep some key colour (halo {:.2}); try a larger --feather",
                    report.halo_score
                );
            }
            if report.touches_border {
                tracing::warn!(
                    "the subject touches the picture's edge (or the backdrop did not key out there)"
                );
            }
            let [r, g, b] = report.key;
            let params = json!({
                "method": "chroma-key",
                "key": match key { KeySpec::Auto => "auto".to_owned(), _ => format!("#{r:02x}{g:02x}{b:02x}") },
                "tolerance": tolerance,
                "feather": feather,
            });
            (
                DynamicImage::ImageRgba8(img),
                serde_json::to_value(report)?,
                params,
            )
        }
    };
    let process = super::ms(t);
    let mut job = Job::of_input("cutout", &input, parameters, Some(process), started, cancel);
    job.report = Some(report);
    super::deliver(&out, &img, &spec.encode, enc, job)
}
