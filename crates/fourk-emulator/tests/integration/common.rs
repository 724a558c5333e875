//! Starting an emulator and calling it.

use std::net::SocketAddr;

use base64::Engine as _;
use fourk_emulator::{EmulatorConfig, RunningEmulator, spawn};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
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
        let b64 = self.body["data"][i]["b64_json"].as_str().expect("b64_json");
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("valid base64")
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
