//! The typed body of `POST /v1/images/generations`, and its checks against the capability
//! table.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::caps::{Capabilities, ModelCaps};
use crate::check::{Rule, Violation, Warning};
use crate::options::{self, ImageOptions, Prefix};
use crate::size::Size;
use crate::types::{Background, Moderation, OutputFormat, Quality};

/// `POST /v1/images/generations`, with every field GPT Image models take.
///
/// `None` fields are absent from the JSON, so the body says exactly what the user asked for
/// and the model's own defaults apply to the rest. Fields GPT Image models do not take
/// (`response_format`, `style`) do not exist here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRequest {
    /// Always sent: the default differs by endpoint and SDK era.
    pub model: String,
    /// The text to draw. At most 32,000 characters for GPT Image models.
    pub prompt: String,
    /// Output size; `None` lets the API default apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Quality tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Background handling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<Background>,
    /// File format of the result (API default: png).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    /// 0-100, jpeg and webp only (API default: 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_compression: Option<u8>,
    /// Moderation strictness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderation: Option<Moderation>,
    /// Number of images, 1-10; each is billed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u8>,
    /// Server-sent events instead of one JSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// 0-3 partial images while streaming.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_images: Option<u8>,
    /// A hashed end-user id for abuse monitoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
}

impl ImageRequest {
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
            moderation: None,
            n: None,
            stream: None,
            partial_images: None,
            safety_identifier: None,
        }
    }

    /// The format the file will have: `output_format`, or the API default, PNG.
    #[must_use]
    pub fn effective_format(&self) -> OutputFormat {
        self.output_format.unwrap_or(OutputFormat::Png)
    }

    /// Check every option against the model's capabilities; all violations are returned,
    /// not just the first.
    ///
    /// # Errors
    /// The list of broken rules, each naming its field.
    pub fn validate<'c>(
        &self,
        caps: &'c Capabilities,
    ) -> Result<(&'c ModelCaps, Vec<Warning>), Vec<Violation>> {
        options::check(caps, &self.options(), Prefix(""))
    }

    fn options(&self) -> ImageOptions<'_> {
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
            input_fidelity: None,
        }
    }

    /// Read a request body the way the API does: field types first, unknown fields rejected,
    /// then (by the caller) [`Self::validate`]. Used by the emulator, so its errors name the
    /// same fields and rules as fourk's own checks.
    ///
    /// # Errors
    /// The first problem found, naming its field.
    pub fn from_json(body: &Value) -> Result<Self, Violation> {
        read_body(body, &[], |_| None).map(|(_, r)| r)
    }
}

/// The keys every Images API body may carry (generation and JSON edit alike).
const COMMON_KEYS: &[&str] = &[
    "model",
    "prompt",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "n",
    "stream",
    "partial_images",
    "safety_identifier",
    "user",
];

/// Read the part of an Images API body that generations and JSON edits share, the way the
/// API does: the body must be an object; every key must be a common one or one of `extra`
/// (`response_format` and `style` get the API's note that GPT image models return base64,
/// and `hint` may give a better message for another unknown key); then `prompt`, `model` and
/// the options, type by type. Returns the object, for the caller's own fields, and the
/// common fields as a generation request.
pub(crate) fn read_body<'a>(
    body: &'a Value,
    extra: &[&str],
    hint: impl Fn(&str) -> Option<String>,
) -> Result<(&'a Map<String, Value>, ImageRequest), Violation> {
    let obj = body.as_object().ok_or_else(|| {
        Violation::new(
            Rule::InvalidType,
            "body",
            "The request body must be a JSON object.",
        )
    })?;
    for key in obj.keys().map(String::as_str) {
        if COMMON_KEYS.contains(&key) || extra.contains(&key) {
            continue;
        }
        return Err(match key {
            "response_format" | "style" => Violation::new(
                Rule::UnsupportedParameter,
                key,
                format!("Unknown parameter: '{key}'. GPT image models always return base64 (b64_json)."),
            ),
            _ => Violation::new(
                Rule::UnknownParameter,
                key,
                hint(key).unwrap_or_else(|| format!("Unknown parameter: '{key}'.")),
            ),
        });
    }
    let prompt = req_str(obj, "prompt")?.ok_or_else(|| {
        Violation::new(
            Rule::MissingField,
            "prompt",
            "Missing required parameter: 'prompt'.",
        )
    })?;
    let model = req_str(obj, "model")?.unwrap_or_else(|| crate::DEFAULT_MODEL.to_owned());
    let mut r = ImageRequest::new(model, prompt);
    r.size = req_size(obj)?;
    r.quality = parse_enum(obj, "quality", Rule::Quality)?;
    r.background = parse_enum(obj, "background", Rule::Background)?;
    r.output_format = parse_enum(obj, "output_format", Rule::OutputFormat)?;
    r.moderation = parse_enum(obj, "moderation", Rule::Moderation)?;
    r.output_compression = req_small_int(obj, "output_compression", Rule::OutputCompression)?;
    r.n = req_small_int(obj, "n", Rule::N)?;
    r.partial_images = req_small_int(obj, "partial_images", Rule::PartialImages)?;
    r.stream = req_bool(obj, "stream")?;
    r.safety_identifier = match req_str(obj, "safety_identifier")? {
        Some(s) => Some(s),
        None => req_str(obj, "user")?,
    };
    Ok((obj, r))
}

/// How the API names a JSON value's type in its "Invalid type" messages: `null`,
/// `a boolean`, `a number`, `a string`, `an array`, `an object`.
#[must_use]
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn type_error(field: &str, want: &str, got: &Value) -> Violation {
    Violation::new(
        Rule::InvalidType,
        field,
        format!(
            "Invalid type for '{field}': expected {want}, but got {} instead.",
            json_kind(got)
        ),
    )
}

pub(crate) fn req_str(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, Violation> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(type_error(field, "a string", other)),
    }
}

/// `size` read the way the API does: absent, null, or `WIDTHxHEIGHT` / `auto`.
pub(crate) fn req_size(obj: &Map<String, Value>) -> Result<Option<Size>, Violation> {
    match req_str(obj, "size")? {
        None => Ok(None),
        Some(s) => Size::parse_wire(&s).map(Some).map_err(|_| {
            Violation::new(
                Rule::Format,
                "size",
                format!("Invalid size '{s}'. Expected WIDTHxHEIGHT, for example '1824x1024'."),
            )
        }),
    }
}

pub(crate) fn req_bool(obj: &Map<String, Value>, field: &'static str) -> Result<Option<bool>, Violation> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(type_error(field, "a boolean", other)),
    }
}

pub(crate) fn req_small_int(
    obj: &Map<String, Value>,
    field: &'static str,
    rule: Rule,
) -> Result<Option<u8>, Violation> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) => u8::try_from(v).map(Some).map_err(|_| {
                Violation::new(
                    rule,
                    field,
                    format!("Invalid value for '{field}': {v} is out of range."),
                )
            }),
            None => Err(type_error(field, "an integer", &Value::Number(n.clone()))),
        },
        Some(other) => Err(type_error(field, "an integer", other)),
    }
}

pub(crate) fn parse_enum<T: std::str::FromStr>(
    obj: &Map<String, Value>,
    field: &'static str,
    rule: Rule,
) -> Result<Option<T>, Violation>
where
    T::Err: std::fmt::Display,
{
    match req_str(obj, field)? {
        None => Ok(None),
        Some(s) => s
            .parse::<T>()
            .map(Some)
            .map_err(|e| Violation::new(rule, field, format!("Invalid value for '{field}': {e}."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Capabilities {
        Capabilities::builtin()
    }

    #[test]
    fn none_fields_are_absent() {
        let r = ImageRequest::new("gpt-image-2", "a fox");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"model":"gpt-image-2","prompt":"a fox"}"#
        );
    }

    #[test]
    fn full_request_serializes_every_field() {
        let mut r = ImageRequest::new("gpt-image-2", "a fox");
        r.size = Some(Size::new(3840, 2160));
        r.quality = Some(Quality::High);
        r.output_format = Some(OutputFormat::Webp);
        r.output_compression = Some(80);
        r.background = Some(Background::Opaque);
        r.moderation = Some(Moderation::Low);
        r.n = Some(2);
        r.stream = Some(true);
        r.partial_images = Some(2);
        r.safety_identifier = Some("u-1".into());
        let v: Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["size"], "3840x2160");
        assert_eq!(v.as_object().unwrap().len(), 12);
        assert_eq!(ImageRequest::from_json(&v).unwrap(), r);
        assert!(r.validate(&caps()).is_ok());
    }

    #[test]
    fn every_option_rule_is_checked() {
        let caps = caps();
        let mut r = ImageRequest::new("gpt-image-2", "x".repeat(32_001));
        r.n = Some(11);
        r.output_compression = Some(50);
        r.partial_images = Some(4);
        r.quality = Some(Quality::Max);
        r.size = Some(Size::new(1000, 1000));
        let errs = r.validate(&caps).unwrap_err();
        let ids: Vec<_> = errs.iter().map(|e| e.rule.id()).collect();
        assert_eq!(
            ids,
            [
                "prompt",
                "multiple_of_16",
                "n",
                "quality",
                "output_compression",
                "partial_images"
            ]
        );

        let mut r = ImageRequest::new("gpt-image-2", "logo");
        r.background = Some(Background::Transparent);
        r.output_format = Some(OutputFormat::Jpeg);
        let errs = r.validate(&caps).unwrap_err();
        assert_eq!(errs[0].rule, Rule::Background);

        r.output_format = Some(OutputFormat::Png);
        let (_, warnings) = r.validate(&caps).unwrap();
        assert_eq!(warnings[0].id, "transparent_preview");

        let r = ImageRequest::new("dall-e-3", "x");
        assert_eq!(r.validate(&caps).unwrap_err()[0].rule, Rule::Retired);
    }

    #[test]
    fn from_json_rejects_like_the_api() {
        let bad = |v: Value| ImageRequest::from_json(&v).unwrap_err();
        assert_eq!(
            bad(serde_json::json!({"model":"gpt-image-2"})).rule,
            Rule::MissingField
        );
        let e = bad(serde_json::json!({"prompt":"x","size":"9:16"}));
        assert_eq!(
            (e.param.as_str(), e.message.as_str()),
            (
                "size",
                "Invalid size '9:16'. Expected WIDTHxHEIGHT, for example '1824x1024'."
            )
        );
        assert_eq!(
            bad(serde_json::json!({"prompt":"x","n":"2"})).rule,
            Rule::InvalidType
        );
        assert_eq!(
            bad(serde_json::json!({"prompt":"x","response_format":"url"})).rule,
            Rule::UnsupportedParameter
        );
        assert_eq!(
            bad(serde_json::json!({"prompt":"x","colour":"red"})).rule,
            Rule::UnknownParameter
        );
    }
}
