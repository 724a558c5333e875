//! What every CLI test needs: the binary with a clean environment, its JSON output and
//! sidecars, and a `fourk emulator` child process on 127.0.0.1 port 0 with a request log.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

/// The `fourk` binary with nothing from the caller's environment that would change what it
/// does (key, base URL, organisation, models file, log level), no progress bars, and the run
/// ledger in the temporary folder, out of the source tree (tests about the ledger pass
/// `--ledger` or set `FOURK_LEDGER` themselves).
pub fn fourk() -> Command {
    let mut c = Command::cargo_bin("fourk").unwrap();
    c.env("FOURK_LEDGER", std::env::temp_dir().join("fourk-tests-ledger.db"))
        .env("FOURK_NO_PROGRESS", "1");
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "FOURK_MODELS",
        "RUST_LOG",
        "FOURK_PROVIDER",
        "FOURK_TOKEN_COMMAND",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_AD_TOKEN",
        "OPENAI_API_VERSION",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
    ] {
        c.env_remove(var);
    }
    c
}

/// [`fourk`] with a key and an API address where nothing listens: a command that must send
/// nothing fails with a connection error, naming `127.0.0.1:9`, if it sends anything.
pub fn fourk_unsent() -> Command {
    let mut c = fourk();
    c.env("OPENAI_API_KEY", "sk-test-unsent")
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
    c
}

/// Stdout as JSON; on failure the panic shows both streams.
pub fn json_stdout(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The sidecar written next to `image` (`IMAGE.json`).
pub fn sidecar(image: &Path) -> Value {
    let mut p = image.as_os_str().to_owned();
    p.push(".json");
    let p = PathBuf::from(p);
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// Width and height of an image file, decoded.
pub fn dims(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

/// SHA-256 of some bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// A `fourk emulator` child on 127.0.0.1 port 0 with its own flags and a request log;
/// killed on drop.
pub struct Emulator {
    child: Child,
    /// The API base, `http://127.0.0.1:PORT/v1`.
    pub base: String,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Emulator {
    /// Start one whose request log is `dir/requests.jsonl`.
    pub fn start_in(dir: &Path, flags: &[&str]) -> Self {
        Self::spawn(dir.join("requests.jsonl"), flags, None)
    }

    /// Start one whose request log lives in a temporary folder of its own.
    pub fn start(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn(dir.path().join("requests.jsonl"), flags, Some(dir))
    }

    fn spawn(log: PathBuf, flags: &[&str], dir: Option<tempfile::TempDir>) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fourk"))
            .args(["-q", "emulator", "--addr", "127.0.0.1:0", "--request-log"])
            .arg(&log)
            .args(flags)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().strip_prefix("listening on ").expect(&line).to_owned();
        Self {
            child,
            base: format!("{addr}/v1"),
            log,
            _dir: dir,
        }
    }

    /// Every line of the request log so far.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The logged POST requests (the image routes, not the file and batch reads).
    pub fn posts(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|v| v["method"] == "POST")
            .collect()
    }

    /// Wait (up to 10 s) until the log has `n` POST requests, and return them.
    pub fn wait_for_posts(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let r = self.posts();
            if r.len() >= n || start.elapsed() > Duration::from_secs(10) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the process now (as a crash or a Ctrl-C would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
    }
}
