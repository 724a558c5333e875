//! What a request sends, kept in a form that can be sent again: retries rebuild the
//! multipart form from it (a `reqwest` form is consumed by sending), the payload log
//! summarises it, and replay reconstructs it.

use std::sync::Arc;

use bytes::Bytes;
use fourk_api::{EditRequest, InputImage};
use reqwest::multipart::{Form, Part};

use crate::error::ClientError;

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub(crate) enum FormPart {
    /// A text field.
    Text { name: String, value: String },
    /// A file.
    File {
        name: String,
        filename: String,
        mime: String,
        data: Bytes,
    },
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// `application/json`.
    Json(Bytes),
    /// `multipart/form-data`.
    Multipart(Arc<[FormPart]>),
}

impl Payload {
    /// The parts of an edit: the text fields in [`EditRequest::form_fields`] order, then the
    /// images (`image` for one, repeated `image[]` for several, as the official SDK sends
    /// them), then the mask.
    pub(crate) fn edit(request: &EditRequest, images: &[InputImage], mask: Option<&InputImage>) -> Self {
        let mut parts: Vec<FormPart> = request
            .form_fields()
            .into_iter()
            .map(|(name, value)| FormPart::Text {
                name: name.to_owned(),
                value,
            })
            .collect();
        let image_name = if images.len() == 1 { "image" } else { "image[]" };
        let file = |name: &str, img: &InputImage| FormPart::File {
            name: name.to_owned(),
            filename: img.filename.clone(),
            mime: img.mime().to_owned(),
            // Shares the caller's allocation: no copy per attempt.
            data: Bytes::from_owner(Arc::clone(&img.data)),
        };
        parts.extend(images.iter().map(|img| file(image_name, img)));
        parts.extend(mask.map(|m| file("mask", m)));
        Self::Multipart(parts.into())
    }
}

/// Build a fresh form for one attempt. File parts carry their length, so the body has a
/// `Content-Length` instead of chunked encoding.
pub(crate) fn form(parts: &[FormPart]) -> Result<Form, ClientError> {
    let mut form = Form::new();
    for p in parts {
        form = match p {
            FormPart::Text { name, value } => form.text(name.clone(), value.clone()),
            FormPart::File {
                name,
                filename,
                mime,
                data,
            } => {
                let len = data.len() as u64;
                let part = Part::stream_with_length(reqwest::Body::from(data.clone()), len)
                    .file_name(filename.clone())
                    .mime_str(mime)
                    .map_err(|e| ClientError::Config(format!("MIME type '{mime}': {e}")))?;
                form.part(name.clone(), part)
            }
        };
    }
    Ok(form)
}
