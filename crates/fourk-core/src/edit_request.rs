//! An edit's inputs and request, shared by the OpenAI-shaped path ([`crate::edit`]), the
//! Gemini path and the batch runner: the input images and mask read and checked locally
//! (format, size, the mask's transparent pixel), the request built and checked against the
//! model's rules, the records of the inputs, and the multipart layout a dry run shows.

use std::path::Path;

use anyhow::Context;
use fourk_api::{
    Background, Capabilities, EditRequest, InputImage, MAX_EDIT_IMAGES, MAX_IMAGE_BYTES, MAX_MASK_BYTES,
    OutputFormat, Size,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::UsageError;
use crate::image_api::{out_path, output_format, rules_error};
use crate::save::Job;
use crate::sidecar::{InputRecord, SentRequest};
use crate::spec::EditSpec;

/// An input file, read, probed and fully decoded.
#[derive(Debug)]
pub struct Loaded {
    /// The bytes to upload, with their file name and format.
    pub image: InputImage,
    /// Width in pixels, from the header.
    pub width: u32,
    /// Height in pixels, from the header.
    pub height: u32,
    /// The format can carry alpha and the file has an alpha channel.
    pub has_alpha: bool,
}

/// Whether a mask marks anything to edit: at least one fully transparent pixel (alpha 0).
/// Decoded under the pipeline's limits, as the file is untrusted.
fn mask_has_clear_pixel(mask: &Loaded) -> anyhow::Result<bool> {
    let img = fourk_imaging::load_bytes(&mask.image.data, &fourk_imaging::load_limits()).map_err(|e| {
        UsageError(format!(
            "mask_decode: the mask {} does not decode ({e}); nothing was sent",
            mask.image.filename
        ))
    })?;
    Ok(match img {
        image::DynamicImage::ImageRgba8(b) => b.pixels().any(|p| p[3] == 0),
        image::DynamicImage::ImageLumaA8(b) => b.pixels().any(|p| p[1] == 0),
        other if other.color().has_alpha() => other.to_rgba16().pixels().any(|p| p[3] == 0),
        _ => false,
    })
}

/// Read one input, refusing files over `limit` before reading them.
/// Read one input (`what` is `image`, `image[]` or `mask`) of less than `limit` bytes,
/// probe it and decode it fully under the pixel budget ([`fourk_imaging::budget`]).
pub(crate) fn load(path: &Path, limit: usize, what: &str) -> anyhow::Result<Loaded> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {what} {}", path.display()))?
        .len();
    if usize::try_from(len).map_or(true, |l| l >= limit) {
        return Err(UsageError(format!(
            "{what} {} is {len} bytes; it must be smaller than {} MB; nothing was sent",
            path.display(),
            limit / (1024 * 1024)
        ))
        .into());
    }
    let data = std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))?;
    let probe = fourk_imaging::probe_bytes(&data).map_err(|e| {
        UsageError(format!(
            "{what} {} is not a PNG, JPEG or WebP image ({e}); nothing was sent",
            path.display()
        ))
    })?;
    // The API would refuse a damaged or enormous file only after the upload: decode it here,
    // under a pixel budget checked from the header before anything is allocated.
    if let Err(e) = fourk_imaging::budget::check(
        probe.width,
        probe.height,
        fourk_imaging::budget::bytes_per_pixel(&probe.color),
    ) {
        return Err(UsageError(format!(
            "input_pixels: {what} {}: {e}; nothing was sent\n\nhint: pass --max-pixels {}x{} if you mean it, or scale the file down first",
            path.display(),
            probe.width,
            probe.height,
        ))
        .into());
    }
    let report = fourk_imaging::verify_bytes(&data, &fourk_imaging::Expect::default());
    if !report.intact {
        return Err(UsageError(format!(
            "input_intact: {what} {} is damaged ({}); nothing was sent\n\nhint: export it again, or check it with `fourk verify {}`",
            path.display(),
            report.decode_error.as_deref().unwrap_or("it does not decode"),
            path.display()
        ))
        .into());
    }
    let filename = path
        .file_name()
        .map_or_else(|| "image".to_owned(), |f| f.to_string_lossy().into_owned());
    Ok(Loaded {
        image: InputImage::new(filename, probe.format, data),
        width: probe.width,
        height: probe.height,
        has_alpha: probe.has_alpha,
    })
}

/// Read the images and the mask and check every local rule; each failure names its rule.
///
/// # Errors
/// [`UsageError`] for a broken rule (nothing is sent), IO errors for unreadable files.
pub fn load_inputs(spec: &EditSpec) -> anyhow::Result<(Vec<Loaded>, Option<Loaded>)> {
    let paths = &spec.images;
    if paths.len() > MAX_EDIT_IMAGES {
        return Err(UsageError(format!(
            "image: an edit takes 1 to {MAX_EDIT_IMAGES} input images; got {}; nothing was sent\n\nhint: the last argument is the prompt",
            paths.len()
        ))
        .into());
    }
    let images = paths
        .iter()
        .map(|p| load(Path::new(p), MAX_IMAGE_BYTES, "image"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mask = spec
        .mask
        .as_deref()
        .map(|p| load(p, MAX_MASK_BYTES, "mask"))
        .transpose()?;
    let inputs: Vec<InputImage> = images.iter().map(|l| l.image.clone()).collect();
    let mut errs: Vec<String> = EditRequest::check_inputs(&inputs, mask.as_ref().map(|m| &m.image))
        .into_iter()
        .map(|v| format!("{}: {}", v.rule.id(), v.message))
        .collect();
    if let (Some(m), Some(first)) = (&mask, images.first()) {
        if m.image.format == OutputFormat::Png && !m.has_alpha {
            errs.push(format!(
                "mask_alpha: the mask {} has no alpha channel; its transparent pixels mark the area to edit\n    fix: save the mask as an RGBA PNG and make the area to edit fully transparent (alpha 0)",
                m.image.filename
            ));
        } else if m.image.format == OutputFormat::Png && !mask_has_clear_pixel(m)? {
            errs.push(format!(
                "mask_transparent: the mask {} has an alpha channel but no fully transparent pixel (alpha 0), so it marks nothing to edit\n    fix: make the area to edit fully transparent (alpha 0), or drop --mask to edit the whole image",
                m.image.filename
            ));
        }
        if (m.width, m.height) != (first.width, first.height) {
            errs.push(format!(
                "mask_dimensions: the mask {} is {}x{}, the first image {} is {}x{}; they must match\n    fix: resize the mask to {}x{}",
                m.image.filename, m.width, m.height, first.image.filename, first.width, first.height, first.width, first.height
            ));
        }
    }
    if errs.is_empty() {
        Ok((images, mask))
    } else {
        Err(UsageError(format!(
            "the inputs break {} rule(s); nothing was sent:\n  {}",
            errs.len(),
            errs.join("\n  ")
        ))
        .into())
    }
}

/// Build and check the edit request.
///
/// # Errors
/// [`UsageError`] naming every broken rule.
pub fn build_request(
    spec: &EditSpec,
    caps: &Capabilities,
    image_count: usize,
) -> anyhow::Result<(EditRequest, Job)> {
    let format = output_format(spec.image.format, spec.out.as_deref())?;
    let mut req = EditRequest::new(&spec.model, &spec.prompt);
    req.size = (spec.size != Size::Auto).then_some(spec.size);
    req.quality = spec.image.quality;
    req.output_format = format;
    req.output_compression = spec.image.compression;
    req.background = spec.image.background;
    req.n = spec.n;
    if spec.stream.stream {
        req.stream = Some(true);
        req.partial_images = spec.stream.partials;
    }
    let (model, warnings) = req
        .validate(caps, image_count)
        .map_err(|v| rules_error(&spec.model, &v, caps, spec.size))?;
    for w in &warnings {
        tracing::warn!("{}", w.message);
    }
    let format = req.effective_format();
    let job = Job {
        route: fourk_api::RouteLabel::ImagesEdit,
        stream: spec.stream.stream,
        endpoint: String::new(),
        provider: crate::sidecar::ProviderRecord::default(),
        model: req.model.clone(),
        price: model.price,
        request: SentRequest::Edit(req.clone()),
        inputs: Vec::new(),
        warnings,
        dims: req.size.and_then(Size::dims),
        format,
        transparent: req.background == Some(Background::Transparent),
        base: out_path(spec.out.as_deref(), format, usize::from(req.n.unwrap_or(1)))?,
        force: spec.force,
    };
    Ok((req, job))
}

fn record(part: &'static str, l: &Loaded) -> InputRecord {
    InputRecord {
        part,
        filename: l.image.filename.clone(),
        content_type: l.image.mime(),
        bytes: l.image.data.len(),
        sha256: format!("{:x}", Sha256::digest(&l.image.data)),
        width: l.width,
        height: l.height,
    }
}

/// The file parts as sent: `image` for one input, `image[]` for several, then `mask`.
pub fn records(images: &[Loaded], mask: Option<&Loaded>) -> Vec<InputRecord> {
    let part = if images.len() == 1 { "image" } else { "image[]" };
    images
        .iter()
        .map(|l| record(part, l))
        .chain(mask.map(|m| record("mask", m)))
        .collect()
}

/// The multipart layout a dry run of an Image API edit shows: fields and file parts, never
/// the bytes.
#[derive(Debug, Serialize)]
struct Layout<'a> {
    method: &'static str,
    endpoint: &'static str,
    content_type: &'static str,
    fields: Vec<Field>,
    files: &'a [InputRecord],
}

#[derive(Debug, Serialize)]
struct Field {
    name: &'static str,
    value: String,
}

/// The multipart layout of an Image API edit as a dry run shows it (fields and file parts,
/// never the bytes); the batch runner's dry run shows its edits the same way.
pub(crate) fn multipart_layout(
    req: &EditRequest,
    files: &[InputRecord],
) -> serde_json::Result<serde_json::Value> {
    serde_json::to_value(Layout {
        method: "POST",
        endpoint: "images/edits",
        content_type: "multipart/form-data",
        fields: req
            .form_fields()
            .into_iter()
            .map(|(name, value)| Field { name, value })
            .collect(),
        files,
    })
}
