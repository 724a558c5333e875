//! Images and thumbnails. Only files under a root (or the output folder), with symlinks
//! followed, that are intact PNG, JPEG or WebP images are ever served: a ledger copied from
//! elsewhere cannot expose other paths, and a path given in a request is resolved and checked
//! before anything is read.
//!
//! - `GET /file/{id}`: the image with this ledger id (`?download=1` as an attachment). When
//!   its bytes still have the hash the ledger recorded for a verified image they are served
//!   as they are; otherwise they are verified in full first.
//! - `GET /thumb/{id}`: its thumbnail from the cache (by SHA-256), made on first view for
//!   images saved before the studio kept one.
//! - `GET /raw?path=P`: a file the ledger does not list (a contact sheet, a partial image),
//!   verified in full.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fourk_api::OutputFormat;
use fourk_imaging::Expect;
use serde::Deserialize;

use crate::Studio;

pub(crate) fn routes() -> Router<Studio> {
    Router::new()
        .route("/file/{id}", get(file))
        .route("/thumb/{id}", get(thumb))
        .route("/raw", get(raw))
}

/// A refusal in plain text (boxed where it is an error value: a response is large).
fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

const fn mime(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Png => "image/png",
        OutputFormat::Jpeg => "image/jpeg",
        OutputFormat::Webp => "image/webp",
    }
}

/// Bytes that are an intact image, with their type; `None` otherwise.
fn intact(bytes: &[u8], known_sha: Option<&str>) -> Option<OutputFormat> {
    let probe = fourk_imaging::probe_bytes(bytes).ok()?;
    if let Some(sha) = known_sha
        && fourk_imaging::verify::sha256_hex(bytes) == sha
    {
        return Some(probe.format);
    }
    let report = fourk_imaging::verify_bytes(bytes, &Expect::default());
    report.intact.then_some(probe.format)
}

fn image_response(bytes: Vec<u8>, format: OutputFormat, download: Option<&Path>) -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, mime(format)),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        bytes,
    )
        .into_response();
    if let Some(name) = download.and_then(Path::file_name) {
        // Only the plain characters of the name: the header cannot carry the rest safely.
        let safe: String = name
            .to_string_lossy()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    r
}

impl Studio {
    /// The ledger's image `id` with its path resolved inside the roots.
    fn image_on_record(&self, id: i64) -> Result<(fourk_core::ledger::ImageRecord, PathBuf), Box<Response>> {
        let Some(ledger) = self.ledger() else {
            return Err(Box::new(refuse(
                StatusCode::NOT_FOUND,
                "nothing is on record yet",
            )));
        };
        let rec = ledger.find_image(id).ok().flatten().ok_or_else(|| {
            Box::new(refuse(
                StatusCode::NOT_FOUND,
                &format!("no image {id} in the ledger"),
            ))
        })?;
        let path = self.inside(&rec.path).ok_or_else(|| {
            Box::new(refuse(
                StatusCode::FORBIDDEN,
                &format!(
                    "image {id} is not under the studio's roots (or is gone); start `fourk studio` with --root FOLDER to show it"
                ),
            ))
        })?;
        Ok((rec, path))
    }
}

#[derive(Debug, Deserialize)]
struct FileQuery {
    #[serde(default)]
    download: Option<String>,
}

async fn file(
    State(studio): State<Studio>,
    UrlPath(id): UrlPath<i64>,
    Query(q): Query<FileQuery>,
) -> Response {
    let (rec, path) = match studio.image_on_record(id) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let download = q.download.is_some().then_some(path.as_path());
    let known = rec.verified.then_some(rec.sha256);
    let read = path.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&read).ok()?;
        let format = intact(&bytes, known.as_deref())?;
        Some((bytes, format))
    })
    .await
    .ok()
    .flatten();
    match checked {
        Some((bytes, format)) => image_response(bytes, format, download),
        None => refuse(
            StatusCode::NOT_FOUND,
            &format!("image {id} is not an intact image on disk any more"),
        ),
    }
}

async fn thumb(State(studio): State<Studio>, UrlPath(id): UrlPath<i64>) -> Response {
    let (rec, path) = match studio.image_on_record(id) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let cache = studio.inner.thumbs.clone();
    let made = tokio::task::spawn_blocking(move || {
        let thumb = match cache.cached(&rec.sha256) {
            Some(t) => t,
            None => cache.of_file(&path).ok()?.path,
        };
        std::fs::read(thumb).ok()
    })
    .await
    .ok()
    .flatten();
    match made {
        Some(jpeg) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                // A thumbnail's address names the image's id; the bytes behind an id change
                // only when the file is rewritten, so the browser may keep it for a while.
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            jpeg,
        )
            .into_response(),
        None => refuse(
            StatusCode::NOT_FOUND,
            &format!("image {id} is not an intact image on disk any more"),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct RawQuery {
    path: String,
}

async fn raw(State(studio): State<Studio>, Query(q): Query<RawQuery>) -> Response {
    let Some(path) = studio.inside(Path::new(&q.path)) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "that path is not under the studio's roots; start `fourk studio` with --root FOLDER to show it",
        );
    };
    let read = path.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&read).ok()?;
        let format = intact(&bytes, None)?;
        Some((bytes, format))
    })
    .await
    .ok()
    .flatten();
    match checked {
        Some((bytes, format)) => image_response(bytes, format, None),
        None => refuse(
            StatusCode::NOT_FOUND,
            "that file is not an intact PNG, JPEG or WebP image",
        ),
    }
}
