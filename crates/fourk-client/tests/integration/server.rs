//! A scripted HTTP/1.1 server on 127.0.0.1:0: each accepted connection plays the next
//! [`Act`] and records the request it read. Answers close their connection, so every
//! attempt of the client arrives on a new one and is counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }

    /// The parts of a multipart body: (name, filename, content type, bytes).
    pub fn parts(&self) -> Vec<Part> {
        let ct = self.header("content-type").expect("a content type");
        let boundary = ct
            .split("boundary=")
            .nth(1)
            .expect("a multipart boundary")
            .trim_matches('"');
        let delim = format!("--{boundary}");
        let mut out = Vec::new();
        let body = &self.body[..];
        let mut starts: Vec<usize> = Vec::new();
        let mut i = 0;
        while let Some(p) = find(&body[i..], delim.as_bytes()) {
            starts.push(i + p);
            i += p + delim.len();
        }
        for w in starts.windows(2) {
            let chunk = &body[w[0] + delim.len()..w[1]];
            let chunk = chunk.strip_prefix(b"\r\n").unwrap_or(chunk);
            let chunk = chunk.strip_suffix(b"\r\n").unwrap_or(chunk);
            let split = find(chunk, b"\r\n\r\n").expect("part headers end");
            let head = String::from_utf8_lossy(&chunk[..split]).to_string();
            let data = chunk[split + 4..].to_vec();
            let attr = |key: &str| {
                head.split(&format!("{key}=\""))
                    .nth(1)
                    .map(|rest| rest.split('"').next().unwrap_or("").to_owned())
            };
            let content_type = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Content-Type: ")
                        .or_else(|| l.strip_prefix("content-type: "))
                })
                .map(str::to_owned);
            out.push(Part {
                name: attr(" name").or_else(|| attr("name")).unwrap_or_default(),
                filename: attr("filename"),
                content_type,
                data,
            });
        }
        out
    }
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the server does on one connection.
#[derive(Debug)]
pub enum Act {
    /// Read the request, write these bytes, close.
    Reply(Vec<u8>),
    /// Read the request, close without answering (the request was sent; no response).
    Reset,
    /// Read the request, write each piece after its delay, close.
    Pieces(Vec<(u64, Vec<u8>)>),
    /// Read the request, write these bytes, then wait up to 5 s for the client to close the
    /// connection; report whether it did.
    HoldUntilEof(Vec<u8>, oneshot::Sender<bool>),
}

/// A running script.
#[derive(Debug)]
pub struct Server {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Captured>>>,
}

impl Server {
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn request(&self, i: usize) -> Captured {
        self.requests.lock().unwrap()[i].clone()
    }
}

pub async fn serve(acts: Vec<Act>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        for act in acts {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            // Connections are played one at a time, in order: the client retries serially.
            play(sock, act, seen).await;
        }
        // The script is over: the listener is dropped and further connections are refused.
    });
    Server { url, requests }
}

async fn read_request(sock: &mut TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().expect("a numeric content-length"))
        .expect("the client sends a content-length (no chunked bodies)");
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Captured {
        method,
        path,
        headers,
        body,
    })
}

async fn play(mut sock: TcpStream, act: Act, seen: Arc<Mutex<Vec<Captured>>>) {
    let Some(req) = read_request(&mut sock).await else {
        return;
    };
    seen.lock().unwrap().push(req);
    match act {
        Act::Reply(bytes) => {
            let _ = sock.write_all(&bytes).await;
        }
        Act::Reset => {}
        Act::Pieces(pieces) => {
            for (delay, bytes) in pieces {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                if sock.write_all(&bytes).await.is_err() {
                    return;
                }
                let _ = sock.flush().await;
            }
        }
        Act::HoldUntilEof(bytes, done) => {
            let _ = sock.write_all(&bytes).await;
            let mut tmp = [0u8; 1024];
            let eof = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => return true,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .unwrap_or(false);
            let _ = done.send(eof);
        }
    }
    let _ = sock.shutdown().await;
}

/// A complete response with a JSON body.
pub fn json(status: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-request-id: req_test\r\n{extra_headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The head of an event stream (the body follows until the connection closes).
pub fn sse_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-request-id: req_stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n".to_vec()
}

/// One SSE event.
pub fn event(name: Option<&str>, data: &str) -> String {
    match name {
        Some(n) => format!("event: {n}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// A whole event stream in one piece.
pub fn sse(body: &str) -> Vec<u8> {
    let mut v = sse_head();
    v.extend_from_slice(body.as_bytes());
    v
}

/// An error envelope.
pub fn envelope(kind: &str, code: Option<&str>, message: &str) -> String {
    serde_json::to_string(&fourk_api::ErrorEnvelope::new(kind, code, None, message)).unwrap()
}

/// An ImagesResponse with one image of base64 `b64`.
pub fn images_body(b64: &str) -> String {
    serde_json::json!({
        "created": 1,
        "data": [{"b64_json": b64}],
        "output_format": "png",
        "size": "1024x1024",
        "usage": {"input_tokens": 5, "output_tokens": 196, "total_tokens": 201}
    })
    .to_string()
}

/// A client for a test server, with a fixed key and a policy without jitter.
pub fn client(url: &str) -> fourk_client::Client {
    fourk_client::Client::new(
        fourk_client::Config::default()
            .with_base_url(url)
            .with_api_key(KEY),
    )
    .unwrap()
    .with_retry_policy(fourk_client::RetryPolicy::default().with_jitter(|| 0.0))
}

/// The key every test client sends; no file or message may contain it.
pub const KEY: &str = "sk-test-SECRET-0123456789";
