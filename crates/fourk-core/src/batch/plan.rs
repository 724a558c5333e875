//! A batch as asked for ([`BatchSpec`]) turned into a checked [`Plan`]: every job parsed,
//! normalised and checked against the model rules before anything is sent; and the lock that
//! keeps two runs out of one output folder.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fourk_api::Capabilities;
use fourk_client::RetryPolicy;
use sha2::{Digest, Sha256};

use super::{Defaults, Plan, jobs, runner};
use crate::UsageError;

/// What a door asks of a batch.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    /// The jobs file (JSONL or CSV).
    pub jobs: PathBuf,
    /// Where the images go.
    pub out_dir: PathBuf,
    /// What a job that does not say gets.
    pub defaults: Defaults,
    /// Most requests in flight.
    pub concurrency: usize,
    /// Ceiling for the whole batch in USD (earlier runs of it included).
    pub max_cost: Option<f64>,
    /// Retry (and resume) requests that may have been billed.
    pub retry_ambiguous: bool,
    /// The retry policy for each job's requests.
    pub policy: RetryPolicy,
    /// `local` or `batch-api`, for the ledger's run row.
    pub via: &'static str,
    /// Replace files already at a new job's output names (`--force`); otherwise they are
    /// refused before anything is sent. A job this batch finished earlier is never redone.
    pub force: bool,
}

/// Build the plan.
///
/// # Errors
/// [`UsageError`] naming every problem of every line (syntax, unknown or bad fields, model
/// rules, name collisions) together, in line order, before anything is sent.
pub fn plan(spec: &BatchSpec, caps: &Capabilities) -> anyhow::Result<Plan> {
    let (jobs, mut problems) = jobs::load(&spec.jobs, &spec.out_dir, &spec.defaults).map_err(|e| {
        UsageError(format!(
            "the jobs file {} cannot be used; nothing was sent:\n  {}",
            spec.jobs.display(),
            e.replace('\n', "\n  ")
        ))
    })?;
    // The model rules of every job that parsed, so one run names every problem of every line.
    problems.extend(
        jobs.iter()
            .filter_map(|j| runner::build(caps, j).err().map(|e| (j.line, e.to_string()))),
    );
    if !problems.is_empty() {
        problems.sort_by_key(|(line, _)| *line);
        let lines: std::collections::BTreeSet<u32> = problems.iter().map(|(l, _)| *l).collect();
        return Err(UsageError(format!(
            "the jobs file {} has {} problem(s) on {} line(s); nothing was sent:\n  {}",
            spec.jobs.display(),
            problems.len(),
            lines.len(),
            problems
                .iter()
                .map(|(l, e)| format!("line {l}: {}", e.replace('\n', "\n    ")))
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
        .into());
    }
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut h = Sha256::new();
    h.update(abs(&spec.jobs).to_string_lossy().as_bytes());
    h.update(b"\0");
    h.update(abs(&spec.out_dir).to_string_lossy().as_bytes());
    Ok(Plan {
        jobs,
        out_dir: spec.out_dir.clone(),
        concurrency: spec.concurrency,
        max_cost: spec.max_cost,
        retry_ambiguous: spec.retry_ambiguous,
        policy: spec.policy.clone(),
        batch_key: format!("{:x}", h.finalize()),
        force: spec.force,
        args: serde_json::json!({
            "jobs": abs(&spec.jobs),
            "out": abs(&spec.out_dir),
            "concurrency": spec.concurrency,
            "max_cost": spec.max_cost,
            "retry_ambiguous": spec.retry_ambiguous,
            "via": spec.via,
        }),
    })
}

/// Hold the output folder for this run: a second batch into the same folder would send the
/// same jobs again and pay twice. The lock dies with the process (even `kill -9`), so once
/// it is held, any `.fourk-*.part` temp file left in the folder belongs to a run that was
/// killed mid-write, and is removed. Keep the returned file open while the batch runs.
///
/// # Errors
/// [`UsageError`] when another run holds the folder; I/O errors.
pub fn lock_output(out: &Path) -> anyhow::Result<std::fs::File> {
    let path = out.join(".fourk-batch.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(UsageError(format!(
                "another fourk batch is running into {}; nothing was sent\n\nhint: wait for it to finish (or stop it), then run this command again to resume; or choose another --out",
                out.display()
            ))
            .into());
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(anyhow::Error::new(e).context(format!("locking {}", path.display())));
        }
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".fourk-")
            && name.ends_with(".part")
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            "removed {removed} unfinished temp file(s) an interrupted run left in {}",
            out.display()
        );
    }
    Ok(file)
}
