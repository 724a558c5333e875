//! `POST /v1/images/edits`: the typed text fields of the multipart body, the input images,
//! and their checks against the capability table.
//!
//! The body is `multipart/form-data`, so every field travels as text: [`EditRequest::form_fields`]
//! gives them in a stable order, and [`EditRequest::from_form_fields`] reads them back the
//! way the API does (the emulator uses it). The images are [`InputImage`]s; reading them from
//! disk is the caller's business, so this crate stays free of IO.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::caps::{Capabilities, ModelCaps};
use crate::check::Warning;
use crate::check::{Rule, Violation};
use crate::options::{self, ImageOptions, Prefix};
use crate::request::ImageRequest;
use crate::size::Size;
use crate::types::{Background, InputFidelity, Moderation, OutputFormat, Quality};

/// Most input images one edit takes (GPT Image models).
pub const MAX_EDIT_IMAGES: usize = 16;

/// Largest input image the API accepts, in bytes ("less than 50MB").
pub const MAX_IMAGE_BYTES: usize = 50 * 1024 * 1024;

/// Largest mask the API accepts, in bytes ("less than 4MB").
pub const MAX_MASK_BYTES: usize = 4 * 1024 * 1024;

/// The text fields of `POST /v1/images/edits`, with every field GPT Image models take there.
///
/// There is no `moderation` field: the edits endpoint does not take one. `None` fields are
/// not sent. `input_fidelity` is for gpt-image-1.5-era models; for gpt-image-2 the API says
/// "omit this parameter", and [`Self::validate`] enforces that from the capability table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditRequest {
    /// Always sent: the default differs by SDK era.
    pub model: String,
    /// What to change. At most 32,000 characters for GPT Image models.
    pub prompt: String,
    /// Output size; the API default for edits is `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Quality tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Background handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Background>,
    /// File format of the result (API default: png).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    /// 0-100, jpeg and webp only (API default: 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_compression: Option<u8>,
    /// Number of images, 1-10; each is billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u8>,
    /// Server-sent events instead of one JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// 0-3 partial images while streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_images: Option<u8>,
    /// How closely to keep the input's features; not for gpt-image-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_fidelity: Option<InputFidelity>,
    /// A hashed end-user id for abuse monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
}

/// One image sent to an edit: its bytes, the name the part carries and its format, which
/// sets the part's MIME type (the API rejects `application/octet-stream`).
///
/// The bytes are shared, so a retried request or a logged copy does not duplicate a 40 MB
/// input.
#[derive(Clone, PartialEq, Eq)]
pub struct InputImage {
    /// The file name sent with the part, e.g. `photo.png`.
    pub filename: String,
    /// PNG, JPEG or WebP; the part's `Content-Type` is [`OutputFormat::mime`] of it.
    pub format: OutputFormat,
    /// The encoded file.
    pub data: Arc<[u8]>,
}

impl std::fmt::Debug for InputImage {
    // A derived Debug would print megabytes of numbers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputImage")
            .field("filename", &self.filename)
            .field("format", &self.format)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl InputImage {
    /// An image from bytes the caller has read.
    #[must_use]
    pub fn new(filename: impl Into<String>, format: OutputFormat, data: impl Into<Arc<[u8]>>) -> Self {
        Self {
            filename: filename.into(),
            format,
            data: data.into(),
        }
    }

    /// The part's MIME type.
    #[must_use]
    pub fn mime(&self) -> &'static str {
        self.format.mime()
    }

    /// The image as a `data:` URL, the form the Responses API's `input_image` and
    /// `input_image_mask` take.
    #[must_use]
    pub fn data_url(&self) -> String {
        use base64::Engine as _;
        let mut s = format!("data:{};base64,", self.mime());
        base64::engine::general_purpose::STANDARD.encode_string(&self.data, &mut s);
        s
    }
}

impl EditRequest {
    /// A request with only the model and the prompt.
    #[must_use]
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            prompt: prompt.into(),
            size: None,
            quality: None,
            background: None,
            output_format: None,
            output_compression: None,
            n: None,
            stream: None,
            partial_images: None,
            input_fidelity: None,
            safety_identifier: None,
        }
    }

    /// An edit with a generation request's model, prompt and options. The generation's
    /// `moderation` has no field in an edit and is left to the caller.
    pub(crate) fn from_generation(r: ImageRequest) -> Self {
        Self {
            model: r.model,
            prompt: r.prompt,
            size: r.size,
            quality: r.quality,
            background: r.background,
            output_format: r.output_format,
            output_compression: r.output_compression,
            n: r.n,
            stream: r.stream,
            partial_images: r.partial_images,
            input_fidelity: None,
            safety_identifier: r.safety_identifier,
        }
    }

    /// The generation request with this edit's model, prompt and options, and `moderation`
    /// (which only the JSON edit body carries): the image an edit produces is planned,
    /// checked and billed like a generation of the same options.
    #[must_use]
    pub fn generation_request(&self, moderation: Option<Moderation>) -> ImageRequest {
        ImageRequest {
            model: self.model.clone(),
            prompt: self.prompt.clone(),
            size: self.size,
            quality: self.quality,
            background: self.background,
            output_format: self.output_format,
            output_compression: self.output_compression,
            moderation,
            n: self.n,
            stream: self.stream,
            partial_images: self.partial_images,
            safety_identifier: self.safety_identifier.clone(),
        }
    }

    /// The format the file will have: `output_format`, or the API default, PNG.
    #[must_use]
    pub fn effective_format(&self) -> OutputFormat {
        self.output_format.unwrap_or(OutputFormat::Png)
    }

    pub(crate) fn options(&self) -> ImageOptions<'_> {
        ImageOptions {
            model: &self.model,
            prompt: Some(&self.prompt),
            size: self.size,
            quality: self.quality,
            background: self.background,
            output_format: self.output_format,
            output_compression: self.output_compression,
            n: self.n,
            stream: self.stream == Some(true),
            partial_images: self.partial_images,
            input_fidelity: self.input_fidelity,
        }
    }

    /// Check every option against the model's capabilities, with the same rules and
    /// messages as [`crate::ImageRequest::validate`], plus the number of input images
    /// (1 to 16) and `input_fidelity` (rejected where the table says the model does not
    /// take it). All violations are returned, not just the first.
    ///
    /// # Errors
    /// The list of broken rules, each naming its field.
    pub fn validate<'c>(
        &self,
        caps: &'c Capabilities,
        image_count: usize,
    ) -> Result<(&'c ModelCaps, Vec<Warning>), Vec<Violation>> {
        let count = count_violation(image_count, "image");
        match (options::check(caps, &self.options(), Prefix("")), count) {
            (Ok(ok), None) => Ok(ok),
            (Ok(_), Some(v)) => Err(vec![v]),
            (Err(mut errs), Some(v)) => {
                errs.push(v);
                Err(errs)
            }
            (Err(errs), None) => Err(errs),
        }
    }

    /// Check the input files themselves: each image under 50 MB, the mask a PNG under 4 MB.
    /// (That the mask has the first image's dimensions needs a decoder; the caller checks it.)
    #[must_use]
    pub fn check_inputs(images: &[InputImage], mask: Option<&InputImage>) -> Vec<Violation> {
        let mut errs = Vec::new();
        for img in images {
            if img.data.len() >= MAX_IMAGE_BYTES {
                errs.push(Violation::new(
                    Rule::Image,
                    "image",
                    format!(
                        "{} is {} bytes; each input image must be smaller than 50 MB.",
                        img.filename,
                        img.data.len()
                    ),
                ));
            }
        }
        if let Some(m) = mask {
            if m.format != OutputFormat::Png {
                errs.push(Violation::new(
                    Rule::Mask,
                    "mask",
                    format!(
                        "The mask {} is {}; it must be a PNG whose transparent pixels mark the area to edit.",
                        m.filename, m.format
                    ),
                ));
            }
            if m.data.len() >= MAX_MASK_BYTES {
                errs.push(Violation::new(
                    Rule::Mask,
                    "mask",
                    format!(
                        "The mask {} is {} bytes; it must be smaller than 4 MB.",
                        m.filename,
                        m.data.len()
                    ),
                ));
            }
        }
        errs
    }

    /// The multipart text fields as `(name, value)` pairs, in a stable order (the order of
    /// the struct's fields). Booleans are `true`/`false`, numbers are decimal, and `None`
    /// fields are absent.
    #[must_use]
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("model", self.model.clone()), ("prompt", self.prompt.clone())];
        let mut push = |name: &'static str, value: Option<String>| {
            if let Some(v) = value {
                out.push((name, v));
            }
        };
        push("size", self.size.map(|s| s.to_string()));
        push("quality", self.quality.map(|q| q.as_str().to_owned()));
        push("background", self.background.map(|b| b.as_str().to_owned()));
        push("output_format", self.output_format.map(|f| f.as_str().to_owned()));
        push(
            "output_compression",
            self.output_compression.map(|c| c.to_string()),
        );
        push("n", self.n.map(|n| n.to_string()));
        push("stream", self.stream.map(|b| b.to_string()));
        push("partial_images", self.partial_images.map(|p| p.to_string()));
        push(
            "input_fidelity",
            self.input_fidelity.map(|f| f.as_str().to_owned()),
        );
        push("safety_identifier", self.safety_identifier.clone());
        out
    }

    /// Read the text fields of a multipart edit the way the API does: unknown fields
    /// rejected (`moderation` among them: edits do not take it), each value parsed to its
    /// type. The image parts are not text fields and are not passed here.
    ///
    /// # Errors
    /// The first problem found, naming its field.
    pub fn from_form_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Violation> {
        let mut r = Self::new(String::new(), String::new());
        let mut model = None;
        let mut prompt = None;
        for (name, value) in fields {
            match name {
                "model" => model = Some(value.to_owned()),
                "prompt" => prompt = Some(value.to_owned()),
                "size" => {
                    r.size = Some(Size::parse_wire(value).map_err(|_| {
                        Violation::new(
                            Rule::Format,
                            "size",
                            format!(
                                "Invalid size '{value}'. Expected WIDTHxHEIGHT, for example '1824x1024'."
                            ),
                        )
                    })?);
                }
                "quality" => r.quality = Some(parse_text(name, value, Rule::Quality)?),
                "background" => r.background = Some(parse_text(name, value, Rule::Background)?),
                "output_format" => {
                    r.output_format = Some(parse_text(name, value, Rule::OutputFormat)?);
                }
                "input_fidelity" => {
                    r.input_fidelity = Some(parse_text(name, value, Rule::UnsupportedParameter)?);
                }
                "output_compression" => {
                    r.output_compression = Some(parse_int(name, value, Rule::OutputCompression)?);
                }
                "n" => r.n = Some(parse_int(name, value, Rule::N)?),
                "partial_images" => {
                    r.partial_images = Some(parse_int(name, value, Rule::PartialImages)?);
                }
                "stream" => {
                    r.stream = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(Violation::new(
                                Rule::InvalidType,
                                "stream",
                                format!("Invalid value for 'stream': expected true or false, got '{value}'."),
                            ));
                        }
                    });
                }
                "safety_identifier" | "user" => {
                    if r.safety_identifier.is_none() || name == "safety_identifier" {
                        r.safety_identifier = Some(value.to_owned());
                    }
                }
                "response_format" | "style" | "moderation" => {
                    return Err(Violation::new(
                        Rule::UnsupportedParameter,
                        name,
                        format!("Unknown parameter: '{name}'. The edits endpoint does not take it."),
                    ));
                }
                _ => {
                    return Err(Violation::new(
                        Rule::UnknownParameter,
                        name,
                        format!("Unknown parameter: '{name}'."),
                    ));
                }
            }
        }
        r.prompt = prompt.ok_or_else(|| {
            Violation::new(
                Rule::MissingField,
                "prompt",
                "Missing required parameter: 'prompt'.",
            )
        })?;
        r.model = model.unwrap_or_else(|| crate::DEFAULT_MODEL.to_owned());
        Ok(r)
    }
}

/// The rule on the number of input images (1 to 16), shared by the multipart and JSON
/// edits; `param` is the field that carries them (`image`, `images`).
pub(crate) fn count_violation(image_count: usize, param: &str) -> Option<Violation> {
    (!(1..=MAX_EDIT_IMAGES).contains(&image_count)).then(|| {
        Violation::new(
            Rule::Image,
            param,
            format!("An edit takes 1 to {MAX_EDIT_IMAGES} input images; got {image_count}."),
        )
    })
}

fn parse_text<T: std::str::FromStr>(field: &str, value: &str, rule: Rule) -> Result<T, Violation>
where
    T::Err: std::fmt::Display,
{
    value
        .parse::<T>()
        .map_err(|e| Violation::new(rule, field, format!("Invalid value for '{field}': {e}.")))
}

fn parse_int(field: &str, value: &str, rule: Rule) -> Result<u8, Violation> {
    let n: i64 = value.trim().parse().map_err(|_| {
        Violation::new(
            Rule::InvalidType,
            field,
            format!("Invalid type for '{field}': expected an integer, but got '{value}' instead."),
        )
    })?;
    u8::try_from(n).map_err(|_| {
        Violation::new(
            rule,
            field,
            format!("Invalid value for '{field}': {n} is out of range."),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in table plus gpt-image-1.5 as it was (it took `input_fidelity`).
    fn caps() -> Capabilities {
        crate::caps::tests::legacy()
    }

    fn full() -> EditRequest {
        let mut r = EditRequest::new("gpt-image-1.5", "make it night");
        r.size = Some(Size::new(1536, 1024));
        r.quality = Some(Quality::High);
        r.background = Some(Background::Opaque);
        r.output_format = Some(OutputFormat::Webp);
        r.output_compression = Some(80);
        r.n = Some(2);
        r.stream = Some(true);
        r.partial_images = Some(1);
        r.input_fidelity = Some(InputFidelity::High);
        r.safety_identifier = Some("u-1".into());
        r
    }

    #[test]
    fn none_fields_are_absent_in_json_and_in_the_form() {
        let r = EditRequest::new("gpt-image-2", "add a hat");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"model":"gpt-image-2","prompt":"add a hat"}"#
        );
        assert_eq!(
            r.form_fields(),
            [
                ("model", "gpt-image-2".to_owned()),
                ("prompt", "add a hat".to_owned())
            ]
        );
    }

    #[test]
    fn form_fields_are_in_a_stable_order_with_text_booleans() {
        let r = full();
        let names: Vec<_> = r.form_fields().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "model",
                "prompt",
                "size",
                "quality",
                "background",
                "output_format",
                "output_compression",
                "n",
                "stream",
                "partial_images",
                "input_fidelity",
                "safety_identifier"
            ]
        );
        let fields = r.form_fields();
        let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("stream"), Some("true"));
        assert_eq!(get("size"), Some("1536x1024"));
        assert_eq!(get("output_compression"), Some("80"));
    }

    #[test]
    fn form_fields_cover_every_serialized_field_and_read_back() {
        // Guards against a field added to the struct but not to the form.
        let r = full();
        let json = serde_json::to_value(&r).unwrap();
        let mut json_keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        let mut form_keys: Vec<_> = r.form_fields().iter().map(|(n, _)| (*n).to_owned()).collect();
        json_keys.sort();
        form_keys.sort();
        assert_eq!(json_keys, form_keys);
        let fields = r.form_fields();
        let back = EditRequest::from_form_fields(fields.iter().map(|(n, v)| (*n, v.as_str()))).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn from_form_fields_rejects_like_the_api() {
        let e = EditRequest::from_form_fields([("prompt", "x"), ("moderation", "low")]).unwrap_err();
        assert_eq!(
            (e.rule, e.param.as_str()),
            (Rule::UnsupportedParameter, "moderation")
        );
        let e = EditRequest::from_form_fields([("prompt", "x"), ("n", "two")]).unwrap_err();
        assert_eq!(e.rule, Rule::InvalidType);
        let e = EditRequest::from_form_fields([("model", "gpt-image-2")]).unwrap_err();
        assert_eq!(e.rule, Rule::MissingField);
        let e = EditRequest::from_form_fields([("prompt", "x"), ("stream", "yes")]).unwrap_err();
        assert_eq!(e.rule, Rule::InvalidType);
    }

    #[test]
    fn validate_shares_the_generation_rules_and_adds_image_count_and_fidelity() {
        let caps = caps();
        assert!(full().validate(&caps, 3).is_ok());

        let mut r = EditRequest::new("gpt-image-2", "x");
        r.input_fidelity = Some(InputFidelity::Low);
        r.output_compression = Some(50);
        let errs = r.validate(&caps, 17).unwrap_err();
        let got: Vec<_> = errs.iter().map(|e| (e.rule.id(), e.param.as_str())).collect();
        assert_eq!(
            got,
            [
                ("output_compression", "output_compression"),
                ("unsupported_parameter", "input_fidelity"),
                ("image", "image"),
            ]
        );
        assert!(
            errs[1].message.contains("omit this parameter"),
            "{}",
            errs[1].message
        );

        let errs = EditRequest::new("gpt-image-2", "x")
            .validate(&caps, 0)
            .unwrap_err();
        assert_eq!(errs[0].rule, Rule::Image);

        let mut r = EditRequest::new("gpt-image-2", "x");
        r.size = Some(Size::new(3840, 2160));
        let (_, warnings) = r.validate(&caps, 16).unwrap();
        assert_eq!(warnings[0].id, "experimental_size");
    }

    #[test]
    fn inputs_are_checked_for_size_and_mask_format() {
        let small = InputImage::new("a.png", OutputFormat::Png, vec![0u8; 10]);
        let jpeg_mask = InputImage::new("m.jpg", OutputFormat::Jpeg, vec![0u8; 10]);
        assert!(EditRequest::check_inputs(std::slice::from_ref(&small), Some(&small)).is_empty());
        let errs = EditRequest::check_inputs(&[small], Some(&jpeg_mask));
        assert_eq!(errs[0].rule, Rule::Mask);
    }

    #[test]
    fn input_image_debug_is_short_and_data_url_is_exact() {
        let img = InputImage::new("a.png", OutputFormat::Png, b"abc".to_vec());
        assert_eq!(
            format!("{img:?}"),
            r#"InputImage { filename: "a.png", format: Png, bytes: 3 }"#
        );
        assert_eq!(img.data_url(), "data:image/png;base64,YWJj");
    }
}
