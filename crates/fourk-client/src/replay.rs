//! Send a request from the payload log again, to the client's own base URL: reproduce a
//! problem against the emulator, a gateway or the API without the program that sent it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::client::{ApiResponse, Client};
use crate::error::ClientError;
use crate::payload::{FormPart, Payload};

/// Re-send a logged request through `client` (its base URL, key, retry policy and payload
/// log). `path` is a `*.request.json` file, or a payload-log folder, in which case its
/// newest request is sent. Blobs are read back from the files beside the log and checked
/// against their SHA-256; multipart bodies are rebuilt part by part.
///
/// A streamed request comes back whole: the event stream is the body.
///
/// # Errors
/// [`ClientError::Replay`] when the file, a blob, or a digest is wrong; otherwise whatever
/// the call returns.
pub async fn replay(path: impl AsRef<Path>, client: &Client) -> Result<ApiResponse, ClientError> {
    let path = path.as_ref().to_owned();
    let logged = tokio::task::spawn_blocking(move || Logged::load(&path))
        .await
        .map_err(|e| ClientError::Config(format!("replay task failed: {e}")))??;
    logged.send(client).await
}

/// A logged request read back and checked, ready to be sent again: what it is (its path and
/// fields) can be looked at first, to put it on record before it leaves.
#[derive(Debug)]
pub struct Logged {
    endpoint: String,
    payload: Payload,
}

impl Logged {
    /// Read `path` (a `*.request.json` file, or a payload-log folder for its newest request),
    /// blobs restored and their digests checked. Blocking file IO.
    ///
    /// # Errors
    /// [`ClientError::Replay`] when the file, a blob, or a digest is wrong.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        load(path).map(|(endpoint, payload)| Self { endpoint, payload })
    }

    /// The path it is posted to, below the base URL (`images/generations`).
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Its fields as a JSON object: the JSON body, or a multipart body's text fields
    /// (`image` files left out).
    #[must_use]
    pub fn fields(&self) -> Value {
        match &self.payload {
            Payload::Json(body) => serde_json::from_slice(body).unwrap_or(Value::Null),
            Payload::Multipart(parts) => Value::Object(
                parts
                    .iter()
                    .filter_map(|p| match p {
                        FormPart::Text { name, value } => Some((name.clone(), Value::String(value.clone()))),
                        FormPart::File { .. } => None,
                    })
                    .collect(),
            ),
        }
    }

    /// Send it through `client`.
    ///
    /// # Errors
    /// Whatever the call returns.
    pub async fn send(self, client: &Client) -> Result<ApiResponse, ClientError> {
        // The body already carries the model as the provider wants it (Azure: the
        // deployment), which names the deployment in Azure's deployment URLs.
        let model = self.fields()["model"].as_str().map(str::to_owned);
        client
            .send_full(&self.endpoint, model.as_deref(), self.payload)
            .await
    }
}

fn replay_error(path: &Path, message: impl Into<String>) -> ClientError {
    ClientError::Replay {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The newest `*.request.json` of a folder, by call number then attempt.
fn newest_request(dir: &Path) -> Result<PathBuf, ClientError> {
    let entries = std::fs::read_dir(dir).map_err(|e| replay_error(dir, e.to_string()))?;
    let key = |name: &str| -> Option<(u32, u32)> {
        let stem = name.strip_suffix(".request.json")?;
        let number = stem.split('-').next()?.parse().ok()?;
        let attempt = stem.rsplit("-attempt-").next()?.parse().ok()?;
        Some((number, attempt))
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            key(&name).map(|k| (k, e.path()))
        })
        .max_by_key(|(k, _)| *k)
        .map(|(_, p)| p)
        .ok_or_else(|| replay_error(dir, "the folder has no *.request.json file"))
}

fn load(path: &Path) -> Result<(String, Payload), ClientError> {
    let file = if path.is_dir() {
        newest_request(path)?
    } else {
        path.to_owned()
    };
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    let text = std::fs::read(&file).map_err(|e| replay_error(&file, e.to_string()))?;
    let doc: Value =
        serde_json::from_slice(&text).map_err(|e| replay_error(&file, format!("not JSON: {e}")))?;
    let endpoint = doc["path"]
        .as_str()
        .ok_or_else(|| replay_error(&file, "no \"path\" field"))?
        .to_owned();
    let payload = if let Some(body) = doc.get("body") {
        let mut body = body.clone();
        restore(&mut body, dir, &file)?;
        Payload::Json(serde_json::to_vec(&body).unwrap_or_default().into())
    } else if let Some(fields) = doc["multipart"].as_array() {
        let parts = fields
            .iter()
            .map(|f| part(f, dir, &file))
            .collect::<Result<Vec<_>, _>>()?;
        Payload::Multipart(parts.into())
    } else {
        return Err(replay_error(&file, "neither \"body\" nor \"multipart\""));
    };
    Ok((endpoint, payload))
}

fn part(field: &Value, dir: &Path, file: &Path) -> Result<FormPart, ClientError> {
    let name = field["name"]
        .as_str()
        .ok_or_else(|| replay_error(file, "a multipart field has no name"))?
        .to_owned();
    if let Some(value) = field["value"].as_str() {
        return Ok(FormPart::Text {
            name,
            value: value.to_owned(),
        });
    }
    let summary = &field["file"];
    let data = read_blob(summary, dir, file)?;
    let text = |key: &str| summary[key].as_str().map(str::to_owned);
    Ok(FormPart::File {
        name,
        filename: text("filename").unwrap_or_else(|| "image".to_owned()),
        mime: text("content_type").unwrap_or_else(|| "application/octet-stream".to_owned()),
        data: data.into(),
    })
}

fn is_blob(map: &serde_json::Map<String, Value>) -> bool {
    map.get("blob").is_some_and(Value::is_string) && map.get("sha256").is_some_and(Value::is_string)
}

/// Read a blob named by a summary and check its digest.
fn read_blob(summary: &Value, dir: &Path, file: &Path) -> Result<Vec<u8>, ClientError> {
    let name = summary["blob"]
        .as_str()
        .ok_or_else(|| replay_error(file, "a file part has no blob"))?;
    // Blob names are plain file names beside the log; anything else is not ours.
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(replay_error(
            file,
            format!("blob name '{name}' is not a file name"),
        ));
    }
    let data = std::fs::read(dir.join(name)).map_err(|e| replay_error(file, format!("blob {name}: {e}")))?;
    let want = summary["sha256"].as_str().unwrap_or_default();
    let got = format!("{:x}", Sha256::digest(&data));
    if got != want {
        return Err(replay_error(
            file,
            format!("blob {name} changed since it was logged (sha256 {got}, logged {want})"),
        ));
    }
    Ok(data)
}

/// Put the base64 strings back where the log summarised them.
fn restore(v: &mut Value, dir: &Path, file: &Path) -> Result<(), ClientError> {
    match v {
        Value::Object(map) if is_blob(map) => {
            let data = read_blob(v, dir, file)?;
            let mut s = v["data_url_prefix"].as_str().unwrap_or_default().to_owned();
            base64::engine::general_purpose::STANDARD.encode_string(&data, &mut s);
            *v = Value::String(s);
        }
        Value::Object(map) => {
            for (_, item) in map.iter_mut() {
                restore(item, dir, file)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                restore(item, dir, file)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_request_is_chosen_by_number_then_attempt() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "009-images-generations-attempt-1.request.json",
            "010-responses-attempt-1.request.json",
            "010-responses-attempt-2.request.json",
            "010-responses-attempt-2.response.json",
            "1000-images-edits-attempt-1.request.json",
        ] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let got = newest_request(dir.path()).unwrap();
        assert!(
            got.ends_with("1000-images-edits-attempt-1.request.json"),
            "{got:?}"
        );
    }

    #[test]
    fn a_changed_blob_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.png"), b"new").unwrap();
        let summary = serde_json::json!({"blob": "b.png", "sha256": "00", "bytes": 3});
        let err = read_blob(&summary, dir.path(), Path::new("x.request.json")).unwrap_err();
        assert!(err.to_string().contains("changed since it was logged"), "{err}");
        let evil = serde_json::json!({"blob": "../etc/passwd", "sha256": "00"});
        assert!(read_blob(&evil, dir.path(), Path::new("x")).is_err());
    }
}
