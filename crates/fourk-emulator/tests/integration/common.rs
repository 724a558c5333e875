//! Starting an emulator and calling it: JSON and multipart requests, event streams, raw
//! bodies for the fault tests, and small images to upload.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use fourk_emulator::{EmulatorConfig, RunningEmulator, spawn};
use futures_util::StreamExt as _;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

/// The only address tests bind: loopback, any free port.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub const KEY: &str = "sk-test-emulator-0000";

pub async fn start(config: EmulatorConfig) -> RunningEmulator {
    spawn(loopback(), config).await.expect("bind 127.0.0.1:0")
}

pub fn client() -> reqwest::Client {
    // No proxy: a proxy from the environment must never see (or break) loopback calls.
    reqwest::Client::builder().no_proxy().build().expect("client")
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("valid base64")
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> &Value {
        &self.body["error"]
    }

    /// The decoded bytes of `data[i]`.
    pub fn image_bytes(&self, i: usize) -> Vec<u8> {
        unb64(self.body["data"][i]["b64_json"].as_str().expect("b64_json"))
    }
}

async fn into_reply(r: reqwest::Response) -> Reply {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    Reply {
        status,
        headers,
        body,
    }
}

/// POST a JSON body to `/images/generations` under `base`, with `key` as the bearer.
pub async fn generate(base: &str, key: Option<&str>, body: &Value) -> Reply {
    let mut req = client().post(format!("{base}/images/generations")).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    into_reply(req.send().await.expect("request")).await
}

/// POST raw bytes as JSON.
pub async fn generate_raw(base: &str, body: &'static str) -> Reply {
    let r = client()
        .post(format!("{base}/images/generations"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    into_reply(r).await
}

pub async fn get(base: &str, path: &str, key: Option<&str>) -> Reply {
    let mut req = client().get(format!("{base}{path}"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    into_reply(req.send().await.expect("request")).await
}

/// POST JSON to `path` under `base` with the test key.
pub async fn post_json(base: &str, path: &str, body: &Value) -> Reply {
    let r = client()
        .post(format!("{base}{path}"))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .expect("request");
    into_reply(r).await
}

/// `data:<mime>;base64,<bytes>`, the inline form of a JSON edit's image.
pub fn data_url(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", b64(bytes))
}

/// Upload `bytes` to `/files` with `purpose`; returns the file object.
pub async fn upload_file(base: &str, purpose: &str, filename: &str, bytes: Vec<u8>) -> Reply {
    let form = Form::new()
        .text("purpose", purpose.to_owned())
        .part("file", Part::bytes(bytes).file_name(filename.to_owned()));
    let r = client()
        .post(format!("{base}/files"))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    into_reply(r).await
}

/// A multipart form for `/images/edits`, built field by field.
#[derive(Default)]
#[must_use]
pub struct EditForm {
    parts: Vec<(String, Part)>,
}

impl EditForm {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.parts.push((name.to_owned(), Part::text(value.to_owned())));
        self
    }

    /// A file part with an explicit MIME type.
    pub fn file(mut self, name: &str, bytes: Vec<u8>, mime: &str) -> Self {
        let part = Part::bytes(bytes)
            .file_name("upload")
            .mime_str(mime)
            .expect("mime");
        self.parts.push((name.to_owned(), part));
        self
    }

    /// A file part without a Content-Type (what a client sends for unknown bytes).
    pub fn untyped_file(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.parts
            .push((name.to_owned(), Part::bytes(bytes).file_name("upload.bin")));
        self
    }

    fn build(self) -> Form {
        self.parts
            .into_iter()
            .fold(Form::new(), |f, (name, part)| f.part(name, part))
    }
}

/// POST a form to `/images/edits` with the test key.
pub async fn edit(base: &str, form: EditForm) -> Reply {
    let r = client()
        .post(format!("{base}/images/edits"))
        .bearer_auth(KEY)
        .multipart(form.build())
        .send()
        .await
        .expect("request");
    into_reply(r).await
}

/// One server-sent event.
#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// A streamed answer: status, headers and its events (or, for an error status, the JSON
/// error body as the only event named `http-error`).
pub struct Stream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub events: Vec<Event>,
    pub raw: String,
}

/// Parse `event:`/`data:` frames; each frame must have both and end with a blank line.
pub fn parse_sse(text: &str) -> Vec<Event> {
    assert!(
        text.ends_with("\n\n"),
        "stream does not end with a complete frame"
    );
    text.split_terminator("\n\n")
        .map(|frame| {
            let mut name = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    assert_ne!(v, "[DONE]", "the emulator does not send [DONE]");
                    data = Some(serde_json::from_str(v).unwrap_or_else(|e| panic!("data is not JSON ({e})")));
                } else {
                    panic!("unexpected line in frame: {line:.80}");
                }
            }
            let name = name.expect("event: line");
            let data: Value = data.expect("data: line");
            if name != "error" {
                assert_eq!(data["type"], name.as_str(), "event name and data type agree");
            }
            Event { name, data }
        })
        .collect()
}

async fn into_stream(r: reqwest::Response) -> Stream {
    let status = r.status();
    let headers = r.headers().clone();
    let raw = r.text().await.expect("body");
    let events = if status.is_success() {
        parse_sse(&raw)
    } else {
        vec![Event {
            name: "http-error".into(),
            data: serde_json::from_str(&raw).expect("error JSON"),
        }]
    };
    Stream {
        status,
        headers,
        events,
        raw,
    }
}

/// POST JSON to `path` and read the answer as an event stream.
pub async fn post_stream(base: &str, path: &str, body: &Value) -> Stream {
    let r = client()
        .post(format!("{base}{path}"))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .expect("request");
    into_stream(r).await
}

/// POST an edit form and read the answer as an event stream.
pub async fn edit_stream(base: &str, form: EditForm) -> Stream {
    let r = client()
        .post(format!("{base}/images/edits"))
        .bearer_auth(KEY)
        .multipart(form.build())
        .send()
        .await
        .expect("request");
    into_stream(r).await
}

/// What a client saw of an answer that may break: the status and headers (if any arrived),
/// the bytes read, and whether reading failed.
pub struct Raw {
    pub status: Option<StatusCode>,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    pub body_error: bool,
}

/// POST JSON and read whatever comes, chunk by chunk, without panicking on failure.
pub async fn post_raw(
    base: &str,
    path: &str,
    body: &Value,
    timeout: Option<Duration>,
) -> Result<Raw, reqwest::Error> {
    let mut req = client().post(format!("{base}{path}")).bearer_auth(KEY).json(body);
    if let Some(t) = timeout {
        req = req.timeout(t);
    }
    let r = req.send().await?;
    let status = Some(r.status());
    let headers = r.headers().clone();
    let mut stream = r.bytes_stream();
    let mut bytes = Vec::new();
    let mut body_error = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => bytes.extend_from_slice(&c),
            Err(_) => {
                body_error = true;
                break;
            }
        }
    }
    Ok(Raw {
        status,
        headers,
        bytes,
        body_error,
    })
}

// ---------------------------------------------------------------------------------------
// Images to upload.

/// A smooth, colourful RGB picture with some edges: easy to recognise after an edit.
pub fn photo(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let r = (x * 255 / w.max(1)) as u8;
        let g = (y * 255 / h.max(1)) as u8;
        let b = if (x / 64 + y / 64) % 2 == 0 { 40 } else { 210 };
        Rgb([r, g, b])
    }))
}

pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

pub fn png(img: &DynamicImage) -> Vec<u8> {
    encode(img, ImageFormat::Png)
}

/// An RGBA mask whose left `transparent_cols` columns are fully transparent.
pub fn mask(w: u32, h: u32, transparent_cols: u32) -> Vec<u8> {
    png(&DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, _| {
        Rgba([0, 0, 0, if x < transparent_cols { 0 } else { 255 }])
    })))
}

pub fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("decodes")
}

/// Mean absolute difference per channel of two same-size images.
pub fn mean_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// Sum of absolute differences between horizontal neighbours: how much fine detail an
/// image has.
pub fn detail(img: &DynamicImage) -> u64 {
    let g = img.to_luma8();
    g.rows()
        .map(|row| {
            let px: Vec<u8> = row.map(|p| p[0]).collect();
            px.windows(2).map(|w| u64::from(w[0].abs_diff(w[1]))).sum::<u64>()
        })
        .sum()
}
