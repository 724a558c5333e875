//! Background removal with a user-supplied ONNX matting or segmentation model, on the CPU.
//!
//! Chroma keying ([`fourk_imaging::cutout()`]) fails on subjects that share the key's colour, hair
//! against a busy backdrop, or pictures never meant for keying. For those, a matting model
//! (MODNet, U²-Net, BiRefNet and the like, exported to ONNX) predicts alpha directly. fourk
//! ships no model and downloads nothing: the user passes a file, and tract (pure Rust) runs it.
//!
//! The contract with the model, which [`MatteModel::predict`] documents in full:
//!
//! - **Input**: the first input, a float tensor of rank 4, either NCHW (`[1, 3, H, W]`) or NHWC
//!   (`[1, H, W, 3]`), RGB in `0..=1`. No mean/std normalisation is applied: a model that needs
//!   it should have it in its graph. `H` and `W` are read from the model; when they are
//!   symbolic, the picture's own size is used, scaled so its long edge is at most
//!   [`DYNAMIC_MAX_EDGE`] and rounded to a multiple of 32.
//! - **Output**: the first output, with exactly one channel (`[1, 1, h, w]`, `[1, h, w, 1]`,
//!   `[1, h, w]` or `[h, w]`), any `h` x `w`. When every value lies in `0..=1` it is alpha as
//!   is; when any value falls outside (a model that ends in logits), the logistic sigmoid is
//!   applied to every value first, and the report says so.
//! - The matte is resized back to the picture's size (bilinear, in floating point) and
//!   multiplied with any alpha the picture already had.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::F32;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbaImage};
use rayon::prelude::*;
use serde::Serialize;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, Tensor, tvec,
};
use tract_onnx::tract_hir::infer::Factoid as _;
use tract_onnx::tract_hir::internal::DimLike as _;

use fourk_imaging::{Filter, PipelineError, upscale};

/// The largest model file [`MatteModel::from_bytes`] is meant for. Matting models are 5 to
/// 400 MB; a file larger than this is not one.
pub const MAX_MODEL_BYTES: u64 = 2 << 30;
/// The long edge used for a model whose input height and width are symbolic.
pub const DYNAMIC_MAX_EDGE: u32 = 1024;
/// The largest input height or width accepted from a model file.
pub const MAX_MODEL_EDGE: usize = 8192;

/// What can go wrong loading or running a matting model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatteError {
    /// The file is not an ONNX model tract can read (not protobuf, unknown operators, a graph
    /// that does not type-check).
    #[error("not a usable ONNX model: {0}")]
    Model(String),
    /// The model's input or output is not shaped like an image matte.
    #[error("the model's {which} is {shape}, but {expected}")]
    Shape {
        /// `input` or `output`.
        which: &'static str,
        /// What the model has.
        shape: String,
        /// What fourk needs, in words.
        expected: &'static str,
    },
    /// Running the model failed.
    #[error("running the model failed: {0}")]
    Run(String),
    /// Resizing or allocating failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Tensor layout of the model's image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[1, 3, H, W]`.
    Nchw,
    /// `[1, H, W, 3]`.
    Nhwc,
}

/// What a run of the model did, for the sidecar and for QA.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatteReport {
    /// The input tensor's shape as run.
    pub input_shape: Vec<usize>,
    /// The input layout.
    pub layout: Layout,
    /// The output tensor's shape.
    pub output_shape: Vec<usize>,
    /// Whether the output had values outside `0..=1`, so the sigmoid was applied.
    pub sigmoid_applied: bool,
    /// Fraction of pixels that became fully transparent.
    pub transparent_share: f64,
    /// Fraction of pixels that are partly transparent.
    pub partial_share: f64,
    /// Whether any visible pixel lies on the picture's outer row or column.
    pub touches_border: bool,
}

/// A parsed ONNX model, ready to run on pictures of any size.
#[derive(Debug)]
pub struct MatteModel {
    model: InferenceModel,
    layout: Layout,
    /// Input height and width when the model fixes them.
    fixed: Option<(usize, usize)>,
}

/// Run `f`, turning a panic inside the runtime (a malformed graph it did not foresee) into an
/// error: model files are untrusted input too.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, MatteError>) -> Result<T, MatteError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(MatteError::Model(format!(
                "the ONNX runtime failed while {what}: {msg}"
            )))
        }
    }
}

fn shape_string(dims: &[String]) -> String {
    format!("[{}]", dims.join(", "))
}

impl MatteModel {
    /// Parse an ONNX model from its bytes and check that its first input looks like an image.
    ///
    /// # Errors
    /// [`MatteError::Model`] for anything tract cannot read, and [`MatteError::Shape`] when the
    /// first input is not a rank-4 tensor with 3 channels first or last.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MatteError> {
        guarded("reading the model", || {
            let model = tract_onnx::onnx()
                .model_for_read(&mut Cursor::new(bytes))
                .map_err(|e| MatteError::Model(format!("{e:#}")))?;
            let fact = model
                .input_fact(0)
                .map_err(|_| MatteError::Model("the graph has no input".into()))?;
            let dims: Vec<Option<usize>> = fact
                .shape
                .dims()
                .map(|d| d.concretize().and_then(|d| d.to_usize().ok()))
                .collect();
            let shown: Vec<String> = dims
                .iter()
                .map(|d| d.map_or_else(|| "?".to_owned(), |v| v.to_string()))
                .collect();
            let bad = || MatteError::Shape {
                which: "input",
                shape: shape_string(&shown),
                expected: "fourk needs an image input of [1, 3, H, W] (NCHW) or [1, H, W, 3] (NHWC)",
            };
            if fact.shape.is_open() || dims.len() != 4 || dims[0].is_some_and(|n| n != 1) {
                return Err(bad());
            }
            let (layout, h, w) = match (dims[1], dims[3]) {
                (Some(3), _) => (Layout::Nchw, dims[2], dims[3]),
                (_, Some(3)) => (Layout::Nhwc, dims[1], dims[2]),
                _ => return Err(bad()),
            };
            let fixed = match (h, w) {
                (Some(h), Some(w))
                    if (1..=MAX_MODEL_EDGE).contains(&h) && (1..=MAX_MODEL_EDGE).contains(&w) =>
                {
                    Some((h, w))
                }
                (Some(_), Some(_)) => return Err(bad()),
                _ => None,
            };
            Ok(Self { model, layout, fixed })
        })
    }

    /// The input layout.
    #[must_use]
    pub const fn layout(&self) -> Layout {
        self.layout
    }

    /// The input height and width the model fixes, if it does.
    #[must_use]
    pub const fn fixed_size(&self) -> Option<(usize, usize)> {
        self.fixed
    }

    /// The input size used for a `width` x `height` picture: the model's own, or for symbolic
    /// sizes the picture's, scaled to a long edge of at most [`DYNAMIC_MAX_EDGE`] and rounded
    /// to a multiple of 32.
    #[must_use]
    pub fn input_size(&self, width: u32, height: u32) -> (usize, usize) {
        if let Some(hw) = self.fixed {
            return hw;
        }
        let long = width.max(height).max(1);
        let scale = (f64::from(DYNAMIC_MAX_EDGE) / f64::from(long)).min(1.0);
        let round = |v: u32| (((f64::from(v) * scale / 32.0).round() as usize).max(1)) * 32;
        (round(height), round(width))
    }

    /// Predict the alpha of `src` and apply it: the result has `src`'s colour and size, and
    /// alpha = the model's matte times any alpha `src` had.
    ///
    /// # Errors
    /// [`MatteError::Model`] when the graph cannot be specialised to the input size,
    /// [`MatteError::Run`] when running fails, [`MatteError::Shape`] when the output does not
    /// have exactly one channel, and [`MatteError::Pipeline`] for resizing and allocation.
    pub fn predict(&self, src: &DynamicImage) -> Result<(RgbaImage, MatteReport), MatteError> {
        let (sw, sh) = (src.width(), src.height());
        if sw == 0 || sh == 0 {
            return Err(PipelineError::EmptySource {
                width: sw,
                height: sh,
            }
            .into());
        }
        let (mh, mw) = self.input_size(sw, sh);
        let input_shape = match self.layout {
            Layout::Nchw => vec![1, 3, mh, mw],
            Layout::Nhwc => vec![1, mh, mw, 3],
        };
        let tensor = self.input_tensor(src, mw, mh, &input_shape)?;
        let (matte, output_shape, sigmoid_applied) = guarded("running the model", || {
            let plan = self
                .model
                .clone()
                .with_input_fact(0, InferenceFact::dt_shape(DatumType::F32, input_shape.clone()))
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .map_err(|e| MatteError::Model(format!("{e:#}")))?;
            let out = plan
                .run(tvec!(tensor.into()))
                .map_err(|e| MatteError::Run(format!("{e:#}")))?;
            let out = out
                .into_iter()
                .next()
                .ok_or_else(|| MatteError::Run("the model returned no output".into()))?;
            let shape = out.shape().to_vec();
            let (oh, ow) = matte_dims(&shape).ok_or_else(|| MatteError::Shape {
                which: "output",
                shape: shape_string(&shape.iter().map(ToString::to_string).collect::<Vec<_>>()),
                expected: "fourk needs one channel: [1, 1, h, w], [1, h, w, 1], [1, h, w] or [h, w]",
            })?;
            let values = out
                .cast_to::<f32>()
                .map_err(|e| MatteError::Run(format!("the output is not numeric: {e:#}")))?;
            let values = values
                .as_slice::<f32>()
                .map_err(|e| MatteError::Run(format!("{e:#}")))?
                .to_vec();
            let (values, sigmoid) = to_alpha(values);
            Ok(((values, ow, oh), shape, sigmoid))
        })?;
        let alpha = resize_matte(&matte.0, matte.1, matte.2, sw, sh)?;
        let out = apply(src, &alpha)?;
        let n = f64::from(sw) * f64::from(sh);
        let (transparent, partial) = out
            .as_raw()
            .par_chunks(4)
            .map(|p| (usize::from(p[3] == 0), usize::from(p[3] > 0 && p[3] < 255)))
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let report = MatteReport {
            input_shape,
            layout: self.layout,
            output_shape,
            sigmoid_applied,
            transparent_share: transparent as f64 / n,
            partial_share: partial as f64 / n,
            touches_border: touches_border(&out),
        };
        Ok((out, report))
    }

    fn input_tensor(
        &self,
        src: &DynamicImage,
        mw: usize,
        mh: usize,
        shape: &[usize],
    ) -> Result<Tensor, MatteError> {
        // `fixed` and `input_size` keep both edges within MAX_MODEL_EDGE, so these fit.
        let (w32, h32) = (mw as u32, mh as u32);
        let rgb = DynamicImage::ImageRgb8(src.to_rgb8());
        let scaled = if (w32, h32) == (src.width(), src.height()) {
            rgb
        } else {
            upscale(&rgb, w32, h32, Filter::Lanczos3, None)?
        };
        let px = scaled.as_bytes();
        let plane = mw * mh;
        let mut data = vec![0f32; plane * 3];
        match self.layout {
            Layout::Nhwc => data
                .iter_mut()
                .zip(px)
                .for_each(|(d, &v)| *d = f32::from(v) / 255.0),
            Layout::Nchw => {
                for (i, p) in px.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        data[c * plane + i] = f32::from(p[c]) / 255.0;
                    }
                }
            }
        }
        Tensor::from_shape(shape, &data).map_err(|e| MatteError::Run(format!("{e:#}")))
    }
}

/// Height and width of a one-channel output shape.
fn matte_dims(shape: &[usize]) -> Option<(usize, usize)> {
    let (h, w) = match shape {
        [1, 1, h, w] | [1, h, w, 1] | [1, h, w] | [h, w] => (*h, *w),
        _ => return None,
    };
    (h > 0 && w > 0 && h <= MAX_MODEL_EDGE && w <= MAX_MODEL_EDGE).then_some((h, w))
}

/// Values as alpha in `0..=1`: as they are when they all lie in that range, else through the
/// logistic sigmoid (a model ending in logits). NaN counts as transparent.
fn to_alpha(mut v: Vec<f32>) -> (Vec<f32>, bool) {
    // A little slack: float models often overshoot 1.0 by rounding.
    const SLACK: f32 = 1e-3;
    let outside = v
        .iter()
        .any(|&x| x.is_finite() && !(-SLACK..=1.0 + SLACK).contains(&x));
    for x in &mut v {
        *x = if x.is_nan() {
            0.0
        } else if outside {
            1.0 / (1.0 + (-*x).exp())
        } else {
            x.clamp(0.0, 1.0)
        };
    }
    (v, outside)
}

/// Bilinear resize of the float matte to the picture's size, then quantised to 8 bits.
fn resize_matte(values: &[f32], w: usize, h: usize, tw: u32, th: u32) -> Result<Vec<u8>, PipelineError> {
    let (w32, h32) = (w as u32, h as u32);
    let resized: Vec<f32> = if (w32, h32) == (tw, th) {
        values.to_vec()
    } else {
        // Typed, so only the F32 kernels are compiled (the untyped `resize` builds all
        // thirteen pixel types).
        let pixels: Vec<F32> = values.iter().map(|&v| F32::new(v)).collect();
        let src = TypedImageRef::<F32>::new(w32, h32, &pixels).map_err(|_| PipelineError::EmptySource {
            width: w32,
            height: h32,
        })?;
        let mut dst = TypedImage::<F32>::new(tw, th);
        Resizer::new().resize_typed(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )?;
        dst.pixels().iter().map(|p| p.0).collect()
    };
    Ok(resized
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect())
}

fn apply(src: &DynamicImage, alpha: &[u8]) -> Result<RgbaImage, PipelineError> {
    let (w, h) = (src.width(), src.height());
    let len = usize::try_from(u64::from(w) * u64::from(h) * 4).map_err(|_| PipelineError::OutOfMemory {
        bytes: u64::from(w) * u64::from(h) * 4,
    })?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| PipelineError::OutOfMemory { bytes: len as u64 })?;
    buf.resize(len, 0);
    let rgba = src.to_rgba8();
    buf.par_chunks_mut(4)
        .zip(rgba.as_raw().par_chunks(4))
        .zip(alpha.par_iter())
        .for_each(|((o, p), &m)| {
            let a = (u16::from(p[3]) * u16::from(m) + 127) / 255;
            if a > 0 {
                o.copy_from_slice(&[p[0], p[1], p[2], a as u8]);
            }
        });
    RgbaImage::from_raw(w, h, buf).ok_or(PipelineError::OutOfMemory {
        bytes: u64::from(w) * u64::from(h) * 4,
    })
}

fn touches_border(img: &RgbaImage) -> bool {
    let (w, h) = img.dimensions();
    let visible = |x: u32, y: u32| img.get_pixel(x, y).0[3] > 0;
    (0..w).any(|x| visible(x, 0) || visible(x, h - 1)) || (0..h).any(|y| visible(0, y) || visible(w - 1, y))
}

#[cfg(test)]
#[path = "../tests/support/onnx.rs"]
mod onnx_fixture;

#[cfg(test)]
mod tests {
    use super::onnx_fixture::{conv_model, conv_model_with};
    use super::*;
    use image::{Rgb, RgbImage};

    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Left third red, middle grey, right third green.
    fn bands(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, _| {
            if x < w / 3 {
                Rgb([255, 0, 0])
            } else if x < 2 * w / 3 {
                Rgb([128, 128, 128])
            } else {
                Rgb([0, 255, 0])
            }
        }))
    }

    #[test]
    fn alpha_follows_the_model_function_with_and_without_a_final_sigmoid() {
        // alpha = sigmoid(8 R - 8 G), as the graph computes it or as fourk finishes it.
        for with_sigmoid in [true, false] {
            let model =
                MatteModel::from_bytes(&conv_model(&[8.0, -8.0, 0.0], 0.0, 48, 48, with_sigmoid)).unwrap();
            assert_eq!(model.layout(), Layout::Nchw);
            assert_eq!(model.fixed_size(), Some((48, 48)));
            let (out, report) = model.predict(&bands(48, 48)).unwrap();
            assert_eq!(report.sigmoid_applied, !with_sigmoid);
            assert_eq!(report.output_shape, [1, 1, 48, 48]);
            for (x, want) in [(5, sigmoid(8.0)), (24, sigmoid(0.0)), (44, sigmoid(-8.0))] {
                let a = f32::from(out.get_pixel(x, 10).0[3]);
                assert!((a - want * 255.0).abs() <= 1.0, "x {x}: {a} vs {}", want * 255.0);
            }
            assert_eq!(out.get_pixel(5, 10).0[..3], [255, 0, 0]);
        }
    }

    #[test]
    fn a_picture_of_another_size_is_resized_there_and_back() {
        let model = MatteModel::from_bytes(&conv_model(&[8.0, -8.0, 0.0], 0.0, 32, 32, true)).unwrap();
        let (out, report) = model.predict(&bands(300, 120)).unwrap();
        assert_eq!(out.dimensions(), (300, 120));
        assert_eq!(report.input_shape, [1, 3, 32, 32]);
        assert!(out.get_pixel(20, 60).0[3] >= 250);
        assert!(out.get_pixel(280, 60).0[3] <= 5);
        let mid = i32::from(out.get_pixel(150, 60).0[3]);
        assert!((mid - 128).abs() <= 3, "{mid}");
        assert!(report.touches_border);
    }

    #[test]
    fn symbolic_sizes_use_the_picture_size() {
        let bytes = conv_model_with(&[0.0, 0.0, 0.0], 5.0, None, true);
        let model = MatteModel::from_bytes(&bytes).unwrap();
        assert_eq!(model.fixed_size(), None);
        assert_eq!(model.input_size(2000, 1000), (512, 1024));
        let (out, report) = model.predict(&bands(64, 40)).unwrap();
        assert_eq!(report.input_shape, [1, 3, 32, 64]);
        // sigmoid(5) = 0.9933: 253 everywhere.
        assert!(out.pixels().all(|p| p.0[3] == 253), "{:?}", out.get_pixel(0, 0));
    }

    #[test]
    fn garbage_and_wrong_shapes_are_clear_errors() {
        for junk in [&b""[..], b"not a model at all", &[0xFF; 64]] {
            assert!(matches!(MatteModel::from_bytes(junk), Err(MatteError::Model(_))));
        }
        let good = conv_model(&[1.0, 0.0, 0.0], 0.0, 16, 16, true);
        for cut in [good.len() / 3, good.len() - 3] {
            assert!(MatteModel::from_bytes(&good[..cut]).is_err());
        }
        // A single-channel input is not an image fourk can feed.
        let grey = onnx_fixture::model_with_input(&[1, 1, 16, 16]);
        let e = MatteModel::from_bytes(&grey).unwrap_err();
        assert!(matches!(e, MatteError::Shape { which: "input", .. }), "{e}");
        assert!(e.to_string().contains("[1, 1, 16, 16]"), "{e}");
    }

    #[test]
    fn to_alpha_keeps_unit_values_and_squashes_logits() {
        assert_eq!(to_alpha(vec![0.0, 0.5, 1.0]), (vec![0.0, 0.5, 1.0], false));
        let (v, s) = to_alpha(vec![-4.0, 0.0, f32::NAN]);
        assert!(s);
        assert!((v[0] - sigmoid(-4.0)).abs() < 1e-6 && v[1] == 0.5 && v[2] == 0.0);
    }
}
