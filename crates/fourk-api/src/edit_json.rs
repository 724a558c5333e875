//! `POST /v1/images/edits` with a JSON body (`EditImageBodyJsonParam` in the spec): the input
//! images are referenced instead of uploaded. An [`ImageRef`] is a base64 `data:` URL, an
//! http(s) URL the API downloads, or the id of a file uploaded to `/v1/files`.
//!
//! It is the only form an edit can take in a Batch API input file, where each request is one
//! JSON line. The options are the multipart edit's ([`EditRequest`]) plus `moderation`, which
//! the JSON body takes, and they are checked by the same rules. The images are checked against
//! the multipart limits (1 to 16, each under 50 MB, a PNG mask under 4 MB) and against the
//! spec's limit on the length of an `image_url`.
//!
//! ```
//! use fourk_api::{Capabilities, EditJsonBody, EditRequest, InputImage, OutputFormat};
//!
//! let photo = InputImage::new("photo.png", OutputFormat::Png, b"\x89PNG...".to_vec());
//! let body = EditJsonBody::from_edit(&EditRequest::new("gpt-image-2", "add a hat"), &[photo], None);
//! assert_eq!(
//!     serde_json::to_string(&body.summarised()).unwrap(),
//!     r#"{"model":"gpt-image-2","prompt":"add a hat","images":[{"image_url":"data:image/png;base64,[12 base64 chars]"}]}"#
//! );
//! assert!(body.validate(&Capabilities::builtin()).is_ok());
//! ```

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::caps::{Capabilities, ModelCaps};
use crate::check::Warning;
use crate::check::{Rule, Violation};
use crate::edit::{EditRequest, InputImage, MAX_IMAGE_BYTES, MAX_MASK_BYTES, count_violation};
use crate::options::{self, Prefix};
use crate::request::{ImageRequest, parse_enum, read_body, type_error};
use crate::types::{Moderation, OutputFormat};

/// Longest `image_url` the API takes (`ImageRefParam.image_url` has `maxLength: 20971520` in
/// the spec), so a data URL carries at most about 15 MB of image.
pub const MAX_IMAGE_URL_CHARS: usize = 20_971_520;

/// `ImageRefParam`: one input image of a JSON edit. The spec requires exactly one of
/// `image_url` and `file_id`, so this is an enum; it serializes as `{"image_url": "..."}` or
/// `{"file_id": "..."}`.
///
/// Its `Debug` summarises a data URL (`[N base64 chars]`) instead of printing megabytes.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawImageRef")]
pub enum ImageRef {
    /// An http(s) URL the API downloads, or a base64 `data:` URL.
    Url(String),
    /// The id of a file uploaded to `/v1/files` (purpose `vision` or `user_data`).
    FileId(String),
}

/// The wire shape, for reading; [`ImageRef`] serializes itself so a data URL is not copied.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImageRef {
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
}

impl TryFrom<RawImageRef> for ImageRef {
    type Error = &'static str;

    fn try_from(raw: RawImageRef) -> Result<Self, Self::Error> {
        match (raw.image_url, raw.file_id) {
            (Some(url), None) => Ok(Self::Url(url)),
            (None, Some(id)) => Ok(Self::FileId(id)),
            (Some(_), Some(_)) => Err("an image reference has both image_url and file_id; give exactly one"),
            (None, None) => Err("an image reference needs image_url or file_id"),
        }
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Self::Url(url) => map.serialize_entry("image_url", url)?,
            Self::FileId(id) => map.serialize_entry("file_id", id)?,
        }
        map.end()
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(&summarise_url(url)).finish(),
            Self::FileId(id) => f.debug_tuple("FileId").field(id).finish(),
        }
    }
}

/// `data:image/png;base64,[N base64 chars]` for a base64 data URL; other URLs as they are.
fn summarise_url(url: &str) -> String {
    const MARK: &str = ";base64,";
    match url.find(MARK) {
        Some(at) if is_data_url(url) => {
            let head = &url[..at + MARK.len()];
            format!("{head}[{} base64 chars]", url.len() - head.len())
        }
        _ => url.to_owned(),
    }
}

fn is_data_url(url: &str) -> bool {
    url.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("data:"))
}

fn is_http_url(url: &str) -> bool {
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

/// Where the bytes of an [`ImageRef`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource<'a> {
    /// Inline, in a base64 data URL.
    Data(DataUrl<'a>),
    /// At an http(s) URL, for the API to download.
    Remote(&'a str),
    /// In an uploaded file, by id.
    File(&'a str),
}

/// Why an `image_url` cannot be read. Each message says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageUrlError {
    /// Neither `http(s)://` nor `data:`.
    #[error(
        "it is neither an http(s) URL nor a data URL; send data:image/png;base64,<data> or an https:// address"
    )]
    Scheme,
    /// `data:` without a comma before the payload.
    #[error("it is not a well-formed data URL; write data:image/png;base64,<data>")]
    Malformed,
    /// A data URL whose payload is not marked `;base64`.
    #[error("only base64 data URLs are read; write data:<type>;base64,<data>")]
    NotBase64,
    /// A `;base64` payload that does not decode.
    #[error("the data URL's payload is not valid base64 ({0}); encode the file with standard, padded base64")]
    InvalidBase64(String),
}

/// A base64 `data:` URL, split but not decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DataUrl<'a> {
    mime: &'a str,
    payload: &'a str,
}

impl fmt::Debug for DataUrl<'_> {
    // The payload can be megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataUrl")
            .field("mime", &self.mime)
            .field("base64_chars", &self.payload.len())
            .finish()
    }
}

impl<'a> DataUrl<'a> {
    /// Split `data:<type>[;params];base64,<payload>`.
    ///
    /// # Errors
    /// [`ImageUrlError::Malformed`] without the `data:` prefix or the comma,
    /// [`ImageUrlError::NotBase64`] when the payload is not marked `;base64`.
    pub fn parse(url: &'a str) -> Result<Self, ImageUrlError> {
        if !is_data_url(url) {
            return Err(ImageUrlError::Malformed);
        }
        let (head, payload) = url[5..].split_once(',').ok_or(ImageUrlError::Malformed)?;
        let (mime, encoding) = head.rsplit_once(';').ok_or(ImageUrlError::NotBase64)?;
        if !encoding.trim().eq_ignore_ascii_case("base64") {
            return Err(ImageUrlError::NotBase64);
        }
        let mime = mime.split(';').next().unwrap_or_default().trim();
        Ok(Self { mime, payload })
    }

    /// The media type as written, without parameters (`image/png`).
    #[must_use]
    pub fn mime(&self) -> &'a str {
        self.mime
    }

    /// The image format the media type names (`image/jpg` is read as JPEG, as the API does);
    /// `None` for any other type.
    #[must_use]
    pub fn format(&self) -> Option<OutputFormat> {
        match self.mime.to_ascii_lowercase().as_str() {
            "image/png" => Some(OutputFormat::Png),
            "image/jpeg" | "image/jpg" => Some(OutputFormat::Jpeg),
            "image/webp" => Some(OutputFormat::Webp),
            _ => None,
        }
    }

    /// The decoded size in bytes, from the payload's length alone (exact for valid base64),
    /// so a limit can be checked before anything is decoded.
    #[must_use]
    pub fn decoded_len(&self) -> usize {
        self.payload.trim().trim_end_matches('=').len() * 3 / 4
    }

    /// The payload's bytes.
    ///
    /// # Errors
    /// [`ImageUrlError::InvalidBase64`].
    pub fn decode(&self) -> Result<Vec<u8>, ImageUrlError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.payload.trim())
            .map_err(|e| ImageUrlError::InvalidBase64(e.to_string()))
    }
}

impl ImageRef {
    /// The image inline, as a base64 data URL of its bytes and MIME type.
    #[must_use]
    pub fn inline(image: &InputImage) -> Self {
        Self::Url(image.data_url())
    }

    /// An http(s) URL (or a data URL written by the caller).
    #[must_use]
    pub fn url(url: impl Into<String>) -> Self {
        Self::Url(url.into())
    }

    /// An uploaded file.
    #[must_use]
    pub fn file(id: impl Into<String>) -> Self {
        Self::FileId(id.into())
    }

    /// Where the bytes are.
    ///
    /// # Errors
    /// When `image_url` is neither an http(s) URL nor a well-formed base64 data URL.
    pub fn source(&self) -> Result<ImageSource<'_>, ImageUrlError> {
        match self {
            Self::FileId(id) => Ok(ImageSource::File(id)),
            Self::Url(url) if is_data_url(url) => DataUrl::parse(url).map(ImageSource::Data),
            Self::Url(url) if is_http_url(url) => Ok(ImageSource::Remote(url)),
            Self::Url(_) => Err(ImageUrlError::Scheme),
        }
    }

    /// The reference with a data URL's payload replaced by its length, for records and logs.
    #[must_use]
    pub fn summarised(&self) -> Self {
        match self {
            Self::Url(url) => Self::Url(summarise_url(url)),
            Self::FileId(id) => Self::FileId(id.clone()),
        }
    }

    /// The field that holds the reference, under `at` (`images[0]`, `mask`).
    fn param(&self, at: &str) -> String {
        match self {
            Self::Url(_) => format!("{at}.image_url"),
            Self::FileId(_) => format!("{at}.file_id"),
        }
    }

    /// The rules on one reference: a readable `image_url` no longer than the spec allows,
    /// a data URL of an accepted type under the size limit, a non-empty `file_id`. A URL
    /// or file is not fetched, so only inline images are checked for size and type.
    fn violation(&self, at: &str, mask: bool) -> Option<Violation> {
        let param = self.param(at);
        let rule = if mask { Rule::Mask } else { Rule::Image };
        let url = match self {
            Self::FileId(id) => {
                return id.trim().is_empty().then(|| {
                    Violation::new(
                        rule,
                        &param,
                        format!("'{param}' is empty; give the id of an uploaded file (file-...)."),
                    )
                });
            }
            Self::Url(url) => url,
        };
        if url.len() > MAX_IMAGE_URL_CHARS {
            return Some(Violation::new(
                rule,
                &param,
                format!(
                    "'{param}' is {} characters; the API takes at most {MAX_IMAGE_URL_CHARS} (about 15 MB of image as a data URL). Send a smaller or more compressed image (JPEG or WebP), or upload it to /v1/files and reference its file_id.",
                    url.len()
                ),
            ));
        }
        let data = match self.source() {
            Ok(ImageSource::Data(data)) => data,
            Ok(_) => return None,
            Err(e) => return Some(Violation::new(rule, &param, format!("'{param}': {e}."))),
        };
        let format = data.format();
        if mask && format != Some(OutputFormat::Png) {
            return Some(Violation::new(
                Rule::Mask,
                &param,
                format!(
                    "The mask is '{}'; it must be a PNG (data:image/png;base64,...) whose transparent pixels mark the area to edit.",
                    data.mime()
                ),
            ));
        }
        if format.is_none() {
            return Some(Violation::new(
                Rule::Image,
                &param,
                format!(
                    "'{param}' is '{}'; input images must be image/png, image/jpeg or image/webp.",
                    data.mime()
                ),
            ));
        }
        let (limit, limit_text) = if mask {
            (MAX_MASK_BYTES, "4 MB")
        } else {
            (MAX_IMAGE_BYTES, "50 MB")
        };
        let bytes = data.decoded_len();
        (bytes >= limit).then(|| {
            Violation::new(
                rule,
                &param,
                format!("'{param}' holds {bytes} bytes; it must be smaller than {limit_text}."),
            )
        })
    }
}

/// The JSON body of `POST /v1/images/edits` (`EditImageBodyJsonParam`), with every field GPT
/// Image models take there.
///
/// `None` fields are absent from the JSON. Like the other bodies, the end-user id is sent as
/// `safety_identifier`; [`Self::from_json`] also reads the spec's older name, `user`. The
/// spec lists only the three 2025 sizes and qualities up to `high`; the capability table
/// decides, as for the other routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditJsonBody {
    /// The options, exactly those of the multipart edit (model, prompt, size, quality, ...),
    /// serialized inline as top-level fields of the body.
    #[serde(flatten)]
    pub edit: EditRequest,
    /// The input images, 1 to 16; the first is the one edited.
    pub images: Vec<ImageRef>,
    /// A PNG whose transparent pixels mark where to edit the first image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<ImageRef>,
    /// Moderation strictness (the JSON body takes it; the multipart form does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<Moderation>,
}

impl EditJsonBody {
    /// A body with only the model, the prompt and the images.
    #[must_use]
    pub fn new(model: impl Into<String>, prompt: impl Into<String>, images: Vec<ImageRef>) -> Self {
        Self {
            edit: EditRequest::new(model, prompt),
            images,
            mask: None,
            moderation: None,
        }
    }

    /// The JSON form of a multipart edit: the same options, and the images and mask inline
    /// as base64 data URLs of their bytes and MIME types.
    #[must_use]
    pub fn from_edit(req: &EditRequest, images: &[InputImage], mask: Option<&InputImage>) -> Self {
        Self {
            edit: req.clone(),
            images: images.iter().map(ImageRef::inline).collect(),
            mask: mask.map(ImageRef::inline),
            moderation: None,
        }
    }

    /// The format the file will have: `output_format`, or the API default, PNG.
    #[must_use]
    pub fn effective_format(&self) -> OutputFormat {
        self.edit.effective_format()
    }

    /// The body with every data URL's payload replaced by its length: what a sidecar or a
    /// log records (the bytes are in the input files, not in the record).
    #[must_use]
    pub fn summarised(&self) -> Self {
        Self {
            edit: self.edit.clone(),
            images: self.images.iter().map(ImageRef::summarised).collect(),
            mask: self.mask.as_ref().map(ImageRef::summarised),
            moderation: self.moderation,
        }
    }

    /// Check every option with the rules and messages of [`EditRequest::validate`], and the
    /// images: 1 to 16, each reference readable (see [`ImageRef`]), inline images of an
    /// accepted type under 50 MB, an inline mask a PNG under 4 MB, no `image_url` longer
    /// than [`MAX_IMAGE_URL_CHARS`]. All violations are returned, not just the first.
    ///
    /// # Errors
    /// The list of broken rules, each naming its field (`images[2].image_url`, `mask.file_id`).
    pub fn validate<'c>(
        &self,
        caps: &'c Capabilities,
    ) -> Result<(&'c ModelCaps, Vec<Warning>), Vec<Violation>> {
        let mut images: Vec<Violation> = count_violation(self.images.len(), "images").into_iter().collect();
        for (i, r) in self.images.iter().enumerate() {
            images.extend(r.violation(&format!("images[{i}]"), false));
        }
        if let Some(m) = &self.mask {
            images.extend(m.violation("mask", true));
        }
        match options::check(caps, &self.edit.options(), Prefix("")) {
            Ok(ok) if images.is_empty() => Ok(ok),
            Ok(_) => Err(images),
            Err(mut errs) => {
                errs.extend(images);
                Err(errs)
            }
        }
    }

    /// Read a body the way the API does: field types first, unknown fields rejected (the
    /// multipart field `image` among them, with a note on `images`), each image reference
    /// an object with exactly one of `image_url` and `file_id`; then (by the caller)
    /// [`Self::validate`]. Used by the emulator, so its errors name the same fields and rules
    /// as fourk's own checks.
    ///
    /// # Errors
    /// The first problem found, naming its field.
    pub fn from_json(body: &Value) -> Result<Self, Violation> {
        let (obj, common) = read_body(body, &["images", "mask", "input_fidelity"], |key| {
            matches!(key, "image" | "image[]").then(|| {
                format!(
                    "Unknown parameter: '{key}'. A JSON edit lists its inputs as 'images': [{{\"image_url\": ...}} or {{\"file_id\": ...}}]; '{key}' is a field of the multipart form."
                )
            })
        })?;
        let images = match obj.get("images") {
            None | Some(Value::Null) => return Err(missing("images")),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| ref_from_json(v, &format!("images[{i}]"), Rule::Image))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => return Err(type_error("images", "an array", other)),
        };
        let mask = match obj.get("mask") {
            None | Some(Value::Null) => None,
            Some(v) => Some(ref_from_json(v, "mask", Rule::Mask)?),
        };
        let moderation = common.moderation;
        let mut edit = EditRequest::from_generation(common);
        edit.input_fidelity = parse_enum(obj, "input_fidelity", Rule::InputFidelity)?;
        Ok(Self {
            edit,
            images,
            mask,
            moderation,
        })
    }

    /// What the edit is planned, checked and billed as: a generation with the same options
    /// and `moderation`.
    #[must_use]
    pub fn generation_request(&self) -> ImageRequest {
        self.edit.generation_request(self.moderation)
    }
}

fn missing(field: &str) -> Violation {
    Violation::new(
        Rule::MissingField,
        field,
        format!("Missing required parameter: '{field}'."),
    )
}

/// One `ImageRefParam` at `at` (`images[0]`, `mask`): an object with exactly one of
/// `image_url` and `file_id`, both strings, nothing else (`additionalProperties: false`).
fn ref_from_json(v: &Value, at: &str, rule: Rule) -> Result<ImageRef, Violation> {
    let obj: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| type_error(at, "an object with 'image_url' or 'file_id'", v))?;
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "image_url" | "file_id"))
    {
        let param = format!("{at}.{key}");
        return Err(Violation::new(
            Rule::UnknownParameter,
            &param,
            format!("Unknown parameter: '{param}'. An image reference has 'image_url' or 'file_id'."),
        ));
    }
    let string = |key: &str| match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(type_error(&format!("{at}.{key}"), "a string", other)),
    };
    match (string("image_url")?, string("file_id")?) {
        (Some(url), None) => Ok(ImageRef::Url(url)),
        (None, Some(id)) => Ok(ImageRef::FileId(id)),
        (Some(_), Some(_)) => Err(Violation::new(
            rule,
            at,
            format!("'{at}' has both 'image_url' and 'file_id'; give exactly one."),
        )),
        (None, None) => Err(Violation::new(
            Rule::MissingField,
            at,
            format!("Missing required parameter: '{at}' needs 'image_url' or 'file_id'."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size::Size;
    use crate::types::{Background, InputFidelity, Quality};
    use serde_json::json;

    fn png(bytes: usize) -> InputImage {
        InputImage::new("a.png", OutputFormat::Png, vec![7u8; bytes])
    }

    fn full() -> EditJsonBody {
        let mut req = EditRequest::new("gpt-image-1.5", "make it night");
        req.size = Some(Size::new(1536, 1024));
        req.quality = Some(Quality::High);
        req.background = Some(Background::Opaque);
        req.output_format = Some(OutputFormat::Webp);
        req.output_compression = Some(80);
        req.n = Some(2);
        req.stream = Some(true);
        req.partial_images = Some(1);
        req.input_fidelity = Some(InputFidelity::High);
        req.safety_identifier = Some("u-1".into());
        let mut body = EditJsonBody::from_edit(&req, &[png(10), png(20)], Some(&png(5)));
        body.moderation = Some(Moderation::Low);
        body
    }

    #[test]
    fn none_fields_are_absent_and_refs_have_one_key() {
        let body = EditJsonBody::new("gpt-image-2", "add a hat", vec![ImageRef::file("file-1")]);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"model":"gpt-image-2","prompt":"add a hat","images":[{"file_id":"file-1"}]}"#
        );
        let url = ImageRef::url("https://example.com/a.png");
        assert_eq!(
            serde_json::to_string(&url).unwrap(),
            r#"{"image_url":"https://example.com/a.png"}"#
        );
        assert!(serde_json::from_str::<ImageRef>(r#"{"image_url":"x","file_id":"y"}"#).is_err());
        assert!(serde_json::from_str::<ImageRef>(r#"{"url":"x"}"#).is_err());
        assert!(serde_json::from_str::<ImageRef>("{}").is_err());
    }

    #[test]
    fn from_edit_keeps_every_option_and_inlines_the_images() {
        let body = full();
        assert_eq!(body.images[0], ImageRef::Url(png(10).data_url()));
        assert_eq!(body.mask, Some(ImageRef::Url(png(5).data_url())));
        let mut back = body.edit.clone();
        assert_eq!(back.input_fidelity, Some(InputFidelity::High));
        back.stream = None;
        assert_eq!(
            back.form_fields().len(),
            11,
            "every option but stream carried over"
        );
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 15, "every field is serialized");
        assert_eq!(EditJsonBody::from_json(&v).unwrap(), body);
        assert_eq!(serde_json::from_value::<EditJsonBody>(v).unwrap(), body);
        assert!(body.validate(&crate::caps::tests::legacy()).is_ok());
    }

    #[test]
    fn from_json_rejects_like_the_api() {
        let bad = |v: Value| EditJsonBody::from_json(&v).unwrap_err();
        let ok = json!([{"file_id": "file-1"}]);
        let e = bad(json!({"prompt": "x"}));
        assert_eq!((e.rule, e.param.as_str()), (Rule::MissingField, "images"));
        let e = bad(json!({"prompt": "x", "images": ok, "image": "a.png"}));
        assert_eq!((e.rule, e.param.as_str()), (Rule::UnknownParameter, "image"));
        assert!(e.message.contains("'images'"), "{}", e.message);
        let e = bad(json!({"prompt": "x", "images": {"file_id": "f"}}));
        assert_eq!((e.rule, e.param.as_str()), (Rule::InvalidType, "images"));
        let e = bad(json!({"prompt": "x", "images": [{"file_id": "f", "detail": "high"}]}));
        assert_eq!(
            (e.rule, e.param.as_str()),
            (Rule::UnknownParameter, "images[0].detail")
        );
        let e = bad(json!({"prompt": "x", "images": [{"file_id": "f"}, {"image_url": "u", "file_id": "f"}]}));
        assert_eq!((e.rule, e.param.as_str()), (Rule::Image, "images[1]"));
        let e = bad(json!({"prompt": "x", "images": [{}]}));
        assert_eq!((e.rule, e.param.as_str()), (Rule::MissingField, "images[0]"));
        let e = bad(json!({"prompt": "x", "images": [{"image_url": 3}]}));
        assert_eq!(
            (e.rule, e.param.as_str()),
            (Rule::InvalidType, "images[0].image_url")
        );
        let e = bad(json!({"prompt": "x", "images": ok, "mask": "m.png"}));
        assert_eq!((e.rule, e.param.as_str()), (Rule::InvalidType, "mask"));
        let e = bad(json!({"prompt": "x", "images": ok, "input_fidelity": "medium"}));
        assert_eq!(
            (e.rule, e.param.as_str()),
            (Rule::InputFidelity, "input_fidelity")
        );
        let e = bad(json!({"prompt": "x", "images": ok, "response_format": "url"}));
        assert_eq!(e.rule, Rule::UnsupportedParameter);
        let body = EditJsonBody::from_json(
            &json!({"prompt": "x", "images": ok, "user": "u-2", "moderation": "low"}),
        )
        .unwrap();
        assert_eq!(body.edit.safety_identifier.as_deref(), Some("u-2"));
        assert_eq!(body.edit.model, crate::DEFAULT_MODEL);
        assert_eq!(body.moderation, Some(Moderation::Low));
    }

    #[test]
    fn validate_shares_the_option_rules_and_checks_each_reference() {
        let caps = Capabilities::builtin();
        let mut body = EditJsonBody::new("gpt-image-2", "x", Vec::new());
        body.edit.input_fidelity = Some(InputFidelity::Low);
        let errs = body.validate(&caps).unwrap_err();
        let got: Vec<_> = errs.iter().map(|e| (e.rule.id(), e.param.as_str())).collect();
        assert_eq!(
            got,
            [("unsupported_parameter", "input_fidelity"), ("image", "images")]
        );

        let gif = ImageRef::url("data:image/gif;base64,R0lG");
        let jpeg_mask = ImageRef::inline(&InputImage::new("m.jpg", OutputFormat::Jpeg, vec![1u8; 3]));
        let mut body = EditJsonBody::new(
            "gpt-image-2",
            "x",
            vec![
                ImageRef::url("https://example.com/a.png"),
                ImageRef::file("file-1"),
                gif,
                ImageRef::url("ftp://example.com/a.png"),
                ImageRef::url("data:image/png,abc"),
                ImageRef::file(" "),
                ImageRef::url(format!(
                    "data:image/png;base64,{}",
                    "A".repeat(MAX_IMAGE_URL_CHARS)
                )),
            ],
        );
        body.mask = Some(jpeg_mask);
        let errs = body.validate(&caps).unwrap_err();
        let got: Vec<_> = errs.iter().map(|e| (e.rule.id(), e.param.as_str())).collect();
        assert_eq!(
            got,
            [
                ("image", "images[2].image_url"),
                ("image", "images[3].image_url"),
                ("image", "images[4].image_url"),
                ("image", "images[5].file_id"),
                ("image", "images[6].image_url"),
                ("mask", "mask.image_url"),
            ]
        );
        assert!(errs[1].message.contains("https://"), "{}", errs[1].message);
        assert!(errs[2].message.contains(";base64,"), "{}", errs[2].message);
        assert!(errs[4].message.contains("file_id"), "{}", errs[4].message);
        assert!(errs[5].message.contains("PNG"), "{}", errs[5].message);

        let big_mask = EditJsonBody::from_edit(
            &EditRequest::new("gpt-image-2", "x"),
            &[png(1)],
            Some(&png(MAX_MASK_BYTES)),
        );
        let errs = big_mask.validate(&caps).unwrap_err();
        assert_eq!(
            (errs[0].rule, errs[0].param.as_str()),
            (Rule::Mask, "mask.image_url")
        );
        assert!(errs[0].message.contains("4 MB"), "{}", errs[0].message);
        let seventeen = EditJsonBody::new("gpt-image-2", "x", vec![ImageRef::file("f"); 17]);
        assert_eq!(seventeen.validate(&caps).unwrap_err()[0].param, "images");
    }

    #[test]
    fn data_urls_split_measure_and_decode() {
        let d = DataUrl::parse("DATA:image/JPG;name=a.jpg;base64,YWJjZA==").unwrap();
        assert_eq!((d.mime(), d.format()), ("image/JPG", Some(OutputFormat::Jpeg)));
        assert_eq!(d.decoded_len(), 4);
        assert_eq!(d.decode().unwrap(), b"abcd");
        for n in 0..10 {
            let img = png(n);
            let url = img.data_url();
            let d = DataUrl::parse(&url).unwrap();
            assert_eq!(d.decoded_len(), n, "exact for valid base64");
        }
        assert_eq!(
            DataUrl::parse("data:image/png;base64").unwrap_err(),
            ImageUrlError::Malformed
        );
        assert_eq!(
            DataUrl::parse("data:image/png,abc").unwrap_err(),
            ImageUrlError::NotBase64
        );
        assert!(matches!(
            DataUrl::parse("data:image/png;base64,@@@").unwrap().decode(),
            Err(ImageUrlError::InvalidBase64(_))
        ));
        assert!(matches!(
            ImageRef::url("HTTPS://x/a.png").source(),
            Ok(ImageSource::Remote(_))
        ));
        assert_eq!(
            ImageRef::url("file:///a.png").source(),
            Err(ImageUrlError::Scheme)
        );
    }

    #[test]
    fn summaries_and_debug_never_carry_the_payload() {
        let body = full();
        let short = body.summarised();
        assert_eq!(
            short.images[0],
            ImageRef::Url("data:image/png;base64,[16 base64 chars]".into())
        );
        assert_eq!(
            short.mask,
            Some(ImageRef::Url("data:image/png;base64,[8 base64 chars]".into()))
        );
        assert_eq!(short.edit, body.edit);
        let debug = format!("{:?}", ImageRef::inline(&png(3000)));
        assert_eq!(debug, r#"Url("data:image/png;base64,[4000 base64 chars]")"#);
        let d = DataUrl::parse("data:image/png;base64,QUJD").unwrap();
        assert_eq!(
            format!("{d:?}"),
            r#"DataUrl { mime: "image/png", base64_chars: 4 }"#
        );
    }
}
