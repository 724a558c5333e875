//! The stable fuzz driver, for machines without a nightly toolchain or cargo-fuzz (and for
//! `scripts/fuzz`'s seeds and dictionaries):
//!
//! ```text
//! fourk-fuzz list                                  the targets and what each asserts
//! fourk-fuzz run TARGET SECONDS [--corpus DIR]... [--crashes DIR] [--seed N]
//! fourk-fuzz seeds TARGET DIR                      write the target's seeds into DIR
//! fourk-fuzz dict TARGET FILE                      write its tokens as a libFuzzer dictionary
//! fourk-fuzz replay TARGET FILE...                 run files through the target
//! ```
//!
//! `run` mutates the seeds and the corpus inputs at random (no coverage feedback) for the
//! given time, writes every input that panics with a new message into the crashes folder,
//! and ends with one line: `target=... seconds=... execs=... crashes=...`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: fourk-fuzz list | run TARGET SECONDS [--corpus DIR]... [--crashes DIR] [--seed N] | seeds TARGET DIR | dict TARGET FILE | replay TARGET FILE..."
    );
    ExitCode::from(2)
}

fn target(name: &str) -> Result<&'static fourk_fuzz::Target, ExitCode> {
    fourk_fuzz::target(name).ok_or_else(|| {
        let names: Vec<&str> = fourk_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!(
            "fourk-fuzz: no target '{name}'; the targets are {}",
            names.join(", ")
        );
        ExitCode::from(2)
    })
}

fn hex16(data: &[u8]) -> String {
    Sha256::digest(data)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["list"] => {
            for t in fourk_fuzz::TARGETS {
                println!("{:<20} {}", t.name, t.about);
            }
            Ok(ExitCode::SUCCESS)
        }
        ["seeds", name, dir] => target(name).map(|t| write_seeds(t, Path::new(dir))),
        ["dict", name, file] => target(name).map(|t| write_dict(t, Path::new(file))),
        ["replay", name, files @ ..] => target(name).map(|t| replay(t, files)),
        ["run", name, seconds, rest @ ..] => match seconds.parse::<u64>() {
            Ok(s) => target(name).map(|t| run(t, Duration::from_secs(s), rest)),
            Err(_) => Err(usage()),
        },
        _ => Err(usage()),
    };
    result.unwrap_or_else(|code| code)
}

fn write_seeds(t: &fourk_fuzz::Target, dir: &Path) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("fourk-fuzz: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for seed in (t.seeds)() {
        let path = dir.join(format!("seed-{}", hex16(&seed)));
        if let Err(e) = std::fs::write(&path, &seed) {
            eprintln!("fourk-fuzz: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn write_dict(t: &fourk_fuzz::Target, file: &Path) -> ExitCode {
    let mut text = String::new();
    for token in t.dictionary {
        let escaped: String = token
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' => format!("\\{}", b as char),
                0x20..=0x7e => (b as char).to_string(),
                _ => format!("\\x{b:02X}"),
            })
            .collect();
        text.push_str(&format!("\"{escaped}\"\n"));
    }
    match std::fs::write(file, text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fourk-fuzz: cannot write {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

fn replay(t: &fourk_fuzz::Target, files: &[&str]) -> ExitCode {
    for f in files {
        match std::fs::read(f) {
            Ok(data) => {
                println!("{}: {f} ({} bytes)", t.name, data.len());
                (t.run)(&data);
            }
            Err(e) => {
                eprintln!("fourk-fuzz: cannot read {f}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn corpus_files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn run(t: &fourk_fuzz::Target, time: Duration, rest: &[&str]) -> ExitCode {
    let mut corpus: Vec<Vec<u8>> = (t.seeds)();
    let mut crashes_dir: Option<PathBuf> = None;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        match (*flag, it.next()) {
            ("--corpus", Some(dir)) => corpus.extend(corpus_files(Path::new(dir))),
            ("--crashes", Some(dir)) => crashes_dir = Some(PathBuf::from(dir)),
            ("--seed", Some(n)) => match n.parse() {
                Ok(n) => seed = n,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let max_len = corpus
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .saturating_mul(2)
        .max(4096);
    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{location}: {message}")));
    }));
    println!(
        "fourk-fuzz: stable driver (random mutation, no coverage feedback): {} for {}s, {} corpus inputs, seed {seed}",
        t.name,
        time.as_secs(),
        corpus.len()
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut execs: u64 = 0;
    let mut seen: HashSet<String> = HashSet::new();
    let mut crashes = 0u32;
    // Every corpus input once as it is, then mutations until the time is up.
    let mut queue: Vec<Vec<u8>> = corpus.clone();
    queue.reverse();
    while started.elapsed() < time {
        let input = queue.pop().unwrap_or_else(|| {
            let a = &corpus[rng.usize(0..corpus.len())];
            let b = &corpus[rng.usize(0..corpus.len())];
            fourk_fuzz::mutate::mutate(&mut rng, a, b, t.dictionary, max_len)
        });
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (t.run)(&input)));
        execs += 1;
        match outcome {
            Ok(()) => {
                if rng.u8(0..32) == 0 && corpus.len() < 10_000 {
                    corpus.push(input);
                }
            }
            Err(_) => {
                let message = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
                // The same panic site and first line is the same crash.
                let key = message
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>();
                if seen.insert(key) {
                    crashes += 1;
                    let name = format!("crash-{}", hex16(&input));
                    println!(
                        "fourk-fuzz: {}: CRASH {name} ({} bytes): {message}",
                        t.name,
                        input.len()
                    );
                    if let Some(dir) = &crashes_dir {
                        let _ = std::fs::create_dir_all(dir);
                        let _ = std::fs::write(dir.join(&name), &input);
                    }
                }
            }
        }
    }
    println!(
        "target={} seconds={} execs={execs} crashes={crashes} driver=stable",
        t.name,
        started.elapsed().as_secs()
    );
    if crashes == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
