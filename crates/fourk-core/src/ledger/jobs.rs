//! Batch job state: a job has a stable key (see `batch::jobs`), survives across runs of the
//! same batch, and moves pending -> running -> succeeded | failed | possibly_billed |
//! skipped. Its success and its images are one transaction.

use rusqlite::{OptionalExtension, params};

use super::record;
use super::schema::NOW;
use super::{AttemptId, ImageId, JobId, Ledger, LedgerError, RunId};
use crate::save::ImageSummary;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Not attempted yet.
    Pending,
    /// A request is (or was, before a crash) in flight.
    Running,
    /// Verified on disk and recorded.
    Succeeded,
    /// Failed without an image; a rerun tries again.
    Failed,
    /// The request was sent and no complete answer came back: it may have been billed.
    /// Held until a rerun with `--retry-ambiguous`.
    PossiblyBilled,
    /// Not started (budget ceiling); a rerun tries again.
    Skipped,
}

impl JobState {
    /// The text stored in `jobs.state`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::PossiblyBilled => "possibly_billed",
            Self::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "possibly_billed" => Self::PossiblyBilled,
            "skipped" => Self::Skipped,
            _ => Self::Pending,
        }
    }
}

/// A job to register.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The stable key.
    pub job_key: String,
    /// The line in the jobs file (1-based), for messages.
    pub line: Option<u32>,
    /// The output name.
    pub name: String,
    /// The normalised spec, as JSON.
    pub spec: String,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// Row id.
    pub id: JobId,
    /// The stable key.
    pub job_key: String,
    /// Where it stands.
    pub state: JobState,
    /// The main output path, once succeeded.
    pub output: Option<String>,
    /// The last error.
    pub error: Option<String>,
}

/// A `jobs` row selected as `id, job_key, state, output, error`.
fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        job_key: r.get(1)?,
        state: JobState::parse(&r.get::<_, String>(2)?),
        output: r.get(3)?,
        error: r.get(4)?,
    })
}

impl Ledger {
    /// Register the jobs of a batch run (new ones as pending, known ones keep their state)
    /// and return their rows in the same order. One transaction.
    ///
    /// # Errors
    /// SQL errors.
    pub fn upsert_jobs(
        &self,
        run: RunId,
        batch_key: &str,
        jobs: &[NewJob],
    ) -> Result<Vec<JobRow>, LedgerError> {
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO jobs (job_key, batch_key, first_run, last_run, line, name, spec, state)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, 'pending')
                 ON CONFLICT (job_key) DO UPDATE SET last_run = excluded.last_run, line = excluded.line",
            )?;
            let mut select =
                tx.prepare_cached("SELECT id, job_key, state, output, error FROM jobs WHERE job_key = ?1")?;
            let mut rows = Vec::with_capacity(jobs.len());
            for j in jobs {
                insert.execute(params![j.job_key, batch_key, run, j.line, j.name, j.spec])?;
                rows.push(select.query_row([&j.job_key], job_row)?);
            }
            Ok(rows)
        })
    }

    /// Set a job's state (and its last error).
    ///
    /// # Errors
    /// SQL errors.
    pub fn set_job_state(&self, job: JobId, state: JobState, error: Option<&str>) -> Result<(), LedgerError> {
        self.conn
            .execute(
                &format!("UPDATE jobs SET state = ?2, error = ?3, updated_at = {NOW} WHERE id = ?1"),
                params![job, state.as_str(), error],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// A job's success: the attempt closed, the images and usage recorded, the job marked
    /// succeeded with its main output. One transaction.
    ///
    /// # Errors
    /// SQL errors.
    pub fn record_job_success(
        &self,
        run: RunId,
        job: JobId,
        attempt: Option<AttemptId>,
        images: &[ImageSummary],
    ) -> Result<Vec<ImageId>, LedgerError> {
        let fields: Vec<_> = images.iter().map(record::fields_of).collect();
        let output = images.first().map(|i| record::absolute(&i.path));
        self.write(|tx| {
            let ids = record::summaries_tx(tx, run, Some(job), attempt, images, &fields)?;
            succeeded_tx(tx, job, output.as_deref())?;
            Ok(ids)
        })
    }

    /// After a crash: close every attempt of these jobs still marked `sent` as
    /// `interrupted` (possibly billed, with an estimated usage row from `estimate`), and
    /// return the ids of the jobs that had one. One transaction.
    ///
    /// # Errors
    /// SQL errors.
    pub fn interrupt_open_attempts(
        &self,
        jobs: &[JobId],
        estimate: impl Fn(JobId) -> Option<(super::UsageKey, fourk_api::Usage, fourk_api::Cost)>,
    ) -> Result<Vec<JobId>, LedgerError> {
        self.write(|tx| {
            let mut open = tx.prepare_cached("SELECT id, run_id FROM attempts WHERE job_id = ?1 AND state = 'sent'")?;
            let mut hit = Vec::new();
            for &job in jobs {
                let rows: Vec<(AttemptId, RunId)> = open
                    .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                if rows.is_empty() {
                    continue;
                }
                for (a, run) in rows {
                    tx.execute(
                        &format!(
                            "UPDATE attempts SET state = 'interrupted', possibly_billed = 1, finished_at = {NOW},
                                 error = 'fourk stopped while the request was in flight' WHERE id = ?1"
                        ),
                        [a],
                    )?;
                    // Attempts are written with their estimate before they are sent; only
                    // ledgers from before that lack one.
                    let has_usage: bool = tx.query_row(
                        "SELECT EXISTS (SELECT 1 FROM usage WHERE attempt_id = ?1)",
                        [a],
                        |r| r.get(0),
                    )?;
                    if !has_usage && let Some((key, usage, cost)) = estimate(job) {
                        super::record::usd_row(tx, run, Some(a), &key, &usage, &cost, false)?;
                    }
                }
                hit.push(job);
            }
            Ok(hit)
        })
    }

    /// Dollars already recorded against these jobs: (measured, estimated).
    ///
    /// # Errors
    /// SQL errors.
    pub fn job_spend(&self, jobs: &[JobId]) -> Result<(f64, f64), LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(CASE WHEN u.measured = 1 THEN u.usd END), 0),
                        COALESCE(SUM(CASE WHEN u.measured = 0 THEN u.usd END), 0)
                 FROM usage u JOIN attempts a ON a.id = u.attempt_id WHERE a.job_id = ?1",
            )
            .map_err(|e| self.sql(e))?;
        let (mut m, mut e) = (0.0, 0.0);
        for &j in jobs {
            let (jm, je): (f64, f64) = stmt
                .query_row([j], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|err| self.sql(err))?;
            m += jm;
            e += je;
        }
        Ok((m, e))
    }

    /// Attempts recorded for a job (any state).
    ///
    /// # Errors
    /// SQL errors.
    pub fn job_attempts(&self, job: JobId) -> Result<u32, LedgerError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM attempts WHERE job_id = ?1", [job], |r| {
                r.get(0)
            })
            .map_err(|e| self.sql(e))
    }

    /// The job with this key, if registered.
    ///
    /// # Errors
    /// SQL errors.
    pub fn find_job(&self, job_key: &str) -> Result<Option<JobRow>, LedgerError> {
        self.conn
            .query_row(
                "SELECT id, job_key, state, output, error FROM jobs WHERE job_key = ?1",
                [job_key],
                job_row,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}

impl Ledger {
    /// The images saved from a job's answered attempt (its usage is already measured, see
    /// [`Ledger::attempt_answered`]), and the job's end: `succeeded` with its main output,
    /// or `failed` with `rejected` (the images did not verify; the error is also set on the
    /// attempt). One transaction.
    ///
    /// # Errors
    /// SQL errors.
    pub fn record_job_images(
        &self,
        run: RunId,
        job: JobId,
        attempt: AttemptId,
        images: &[ImageSummary],
        rejected: Option<&str>,
    ) -> Result<Vec<ImageId>, LedgerError> {
        let fields: Vec<_> = images.iter().map(record::fields_of).collect();
        let output = images.first().map(|i| record::absolute(&i.path));
        self.write(|tx| {
            let ids = images
                .iter()
                .zip(&fields)
                .map(|(img, f)| record::image_row_tx(tx, run, Some(job), attempt, img, f))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if let Some(error) = rejected {
                tx.execute(
                    "UPDATE attempts SET error = ?2 WHERE id = ?1",
                    params![attempt, error],
                )?;
                tx.execute(
                    &format!(
                        "UPDATE jobs SET state = 'failed', error = ?2, updated_at = {NOW} WHERE id = ?1"
                    ),
                    params![job, error],
                )?;
            } else {
                succeeded_tx(tx, job, output.as_deref())?;
            }
            Ok(ids)
        })
    }

    /// The attempt of a job still marked `sent` (in flight, or cut off by a crash).
    ///
    /// # Errors
    /// SQL errors.
    pub fn open_attempt(&self, job: JobId) -> Result<Option<AttemptId>, LedgerError> {
        self.conn
            .query_row(
                "SELECT id FROM attempts WHERE job_id = ?1 AND state = 'sent' ORDER BY id DESC LIMIT 1",
                [job],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}

/// Mark `job` succeeded with its main `output`, inside the caller's transaction.
fn succeeded_tx(tx: &rusqlite::Connection, job: JobId, output: Option<&str>) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "UPDATE jobs SET state = 'succeeded', output = ?2, error = NULL, updated_at = {NOW} WHERE id = ?1"
        ),
        params![job, output],
    )?;
    Ok(())
}

/// One batch as the studio's Batches page shows it: its jobs by state, its spend, and its
/// newest run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchSummary {
    /// The batch's key (the jobs file and the output folder).
    pub batch_key: String,
    /// The jobs file, from the newest run's arguments.
    pub jobs_file: Option<String>,
    /// The output folder.
    pub out: Option<String>,
    /// Jobs in all.
    pub total: u64,
    /// Jobs by state.
    pub succeeded: u64,
    /// Failed jobs.
    pub failed: u64,
    /// Jobs being worked on.
    pub running: u64,
    /// Jobs not started.
    pub pending: u64,
    /// Jobs whose request may have been billed without an image.
    pub possibly_billed: u64,
    /// Skipped jobs.
    pub skipped: u64,
    /// Dollars of every attempt of its jobs (measured and estimated).
    pub usd: f64,
    /// True when part of `usd` is an estimate.
    pub estimate: bool,
    /// The newest run of the batch.
    pub run_id: RunId,
    /// Its status (`running`, `ok`, `failed`, ...).
    pub run_status: String,
    /// When it started (UTC).
    pub run_started_at: String,
    /// Seconds since it started.
    pub run_elapsed_s: f64,
    /// The last change of any job (UTC).
    pub updated_at: String,
}

impl BatchSummary {
    /// Jobs that are over (succeeded, failed, possibly billed or skipped).
    #[must_use]
    pub const fn done(&self) -> u64 {
        self.succeeded + self.failed + self.possibly_billed + self.skipped
    }

    /// Seconds until the rest is done at the newest run's pace, while it runs.
    #[must_use]
    pub fn eta_s(&self) -> Option<f64> {
        let done = self.done();
        if self.run_status != "running" || done == 0 || done >= self.total {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let per_job = self.run_elapsed_s / done as f64;
        #[allow(clippy::cast_precision_loss)]
        Some(per_job * (self.total - done) as f64)
    }
}

impl Ledger {
    /// The newest `limit` batches (local runs of `fourk batch`), most recently changed first.
    ///
    /// # Errors
    /// SQL errors.
    pub fn batches(&self, limit: u32) -> Result<Vec<BatchSummary>, LedgerError> {
        let sql = "
            SELECT b.batch_key, b.total, b.succeeded, b.failed, b.running, b.pending, b.billed,
                   b.skipped, b.updated, r.id, r.status, r.started_at, r.args,
                   (julianday(COALESCE(r.finished_at, strftime('%Y-%m-%dT%H:%M:%fZ','now')))
                     - julianday(r.started_at)) * 86400.0,
                   COALESCE((SELECT SUM(u.usd) FROM usage u JOIN attempts a ON a.id = u.attempt_id
                             JOIN jobs j ON j.id = a.job_id WHERE j.batch_key = b.batch_key), 0),
                   COALESCE((SELECT MAX(u.estimate) FROM usage u JOIN attempts a ON a.id = u.attempt_id
                             JOIN jobs j ON j.id = a.job_id WHERE j.batch_key = b.batch_key), 0)
            FROM (SELECT batch_key, COUNT(*) AS total,
                         SUM(state = 'succeeded') AS succeeded, SUM(state = 'failed') AS failed,
                         SUM(state = 'running') AS running, SUM(state = 'pending') AS pending,
                         SUM(state = 'possibly_billed') AS billed, SUM(state = 'skipped') AS skipped,
                         MAX(updated_at) AS updated, MAX(last_run) AS last_run
                  FROM jobs GROUP BY batch_key) b
            JOIN runs r ON r.id = b.last_run
            ORDER BY b.updated DESC
            LIMIT ?1";
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
        stmt.query_map([limit], |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
            let args: serde_json::Value =
                serde_json::from_str(&r.get::<_, String>(12)?).unwrap_or(serde_json::Value::Null);
            let text = |k: &str| args.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            Ok(BatchSummary {
                batch_key: r.get(0)?,
                jobs_file: text("jobs"),
                out: text("out"),
                total: n(1)?,
                succeeded: n(2)?,
                failed: n(3)?,
                running: n(4)?,
                pending: n(5)?,
                possibly_billed: n(6)?,
                skipped: n(7)?,
                updated_at: r.get(8)?,
                run_id: r.get(9)?,
                run_status: r.get(10)?,
                run_started_at: r.get(11)?,
                run_elapsed_s: r.get(13)?,
                usd: r.get(14)?,
                estimate: r.get(15)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.sql(e))
    }
}
