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
