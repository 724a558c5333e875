//! Writes: runs, attempts, images with their usage, links. Each public function is one
//! transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fourk_api::{Cost, Usage};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::schema::NOW;
use super::{AttemptId, ImageId, JobId, Ledger, LedgerError, LinkKind, RunId, RunStatus};
use crate::save::ImageSummary;

/// How one HTTP request ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// An answer with an image came back.
    pub ok: bool,
    /// The HTTP status, when one arrived.
    pub http_status: Option<u16>,
    /// `x-request-id`, when the headers arrived.
    pub request_id: Option<String>,
    /// Why this attempt is retried (`None`: not retried).
    pub retry_reason: Option<String>,
    /// The request was sent and no complete answer came back: it may have been billed.
    pub possibly_billed: bool,
    /// The error, in the words shown to the user.
    pub error: Option<String>,
}

impl AttemptOutcome {
    /// The outcome of a failed call, from the client's error (found anywhere in the chain).
    #[must_use]
    pub fn from_error(err: &anyhow::Error) -> Self {
        let client = err
            .chain()
            .find_map(|c| c.downcast_ref::<fourk_client::ClientError>());
        let mut o = client.map_or_else(Self::default, Self::from_client);
        o.error = Some(format!("{err:#}"));
        o
    }

    /// The outcome of a failed call.
    #[must_use]
    pub fn from_client(err: &fourk_client::ClientError) -> Self {
        let http_status = match err {
            fourk_client::ClientError::Api { status, .. } => Some(*status),
            _ => None,
        };
        Self {
            ok: false,
            http_status,
            request_id: err.request_id().map(str::to_owned),
            retry_reason: None,
            possibly_billed: err.possibly_billed(),
            error: Some(err.to_string()),
        }
    }
}

/// What a usage row is about, for `fourk cost --by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageKey {
    /// The image model.
    pub model: String,
    /// The quality asked for (`auto` when not sent).
    pub quality: String,
    /// `WIDTHxHEIGHT` or `auto`.
    pub size: String,
    /// Images the request asked for.
    pub images: u32,
}

pub(super) fn usd_row(
    tx: &Connection,
    run: RunId,
    attempt: Option<AttemptId>,
    key: &UsageKey,
    usage: &Usage,
    cost: &Cost,
    measured: bool,
) -> rusqlite::Result<()> {
    let image_in = usage.input_tokens_details.map_or(0, |d| d.image_tokens);
    tx.execute(
        "INSERT INTO usage (run_id, attempt_id, model, quality, size, images, input_tokens,
             image_input_tokens, output_tokens, usd, measured, estimate)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            run,
            attempt,
            key.model,
            key.quality,
            key.size,
            key.images,
            i64::try_from(usage.input_tokens).unwrap_or(i64::MAX),
            i64::try_from(image_in).unwrap_or(i64::MAX),
            i64::try_from(usage.output_tokens).unwrap_or(i64::MAX),
            cost.usd,
            measured,
            cost.estimate || !measured,
        ],
    )?;
    Ok(())
}

pub(super) fn finish_attempt_tx(
    tx: &Connection,
    attempt: AttemptId,
    o: &AttemptOutcome,
) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "UPDATE attempts SET state = ?2, finished_at = {NOW}, http_status = ?3, request_id = ?4,
                 retry_reason = ?5, possibly_billed = ?6, error = ?7 WHERE id = ?1"
        ),
        params![
            attempt,
            if o.ok { "ok" } else { "failed" },
            o.http_status,
            o.request_id,
            o.retry_reason,
            o.possibly_billed,
            o.error,
        ],
    )?;
    Ok(())
}

/// The fields of one image row, read from its sidecar when it can be read.
pub(super) struct ImageFields {
    sha256: String,
    checks: Value,
    model: Option<String>,
    quality: Option<String>,
    size: Option<String>,
    prompt: Option<String>,
    route: Option<String>,
    request_id: Option<String>,
    response_id: Option<String>,
    images_in_request: u32,
}

fn str_at(v: &Value, ptr: &str) -> Option<String> {
    v.pointer(ptr).and_then(Value::as_str).map(str::to_owned)
}

pub(super) fn fields_of(img: &ImageSummary) -> ImageFields {
    let car: Value = std::fs::read(&img.sidecar)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let sha256 = str_at(&car, "/checks/sha256").unwrap_or_else(|| file_sha256(&img.path));
    let mut checks = car.get("checks").cloned().unwrap_or(Value::Null);
    if let Some(o) = checks.as_object_mut() {
        // The full verify report is in the sidecar; the ledger keeps the verdicts.
        o.remove("details");
    }
    // The Responses route nests the image options under the tool.
    let req_field = |name: &str| {
        str_at(&car, &format!("/request/{name}")).or_else(|| {
            car.pointer("/request/tools")
                .and_then(Value::as_array)
                .and_then(|t| t.first())
                .and_then(|t| t.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    };
    let n = car
        .pointer("/request/n")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1);
    ImageFields {
        sha256,
        checks,
        model: str_at(&car, "/model"),
        quality: req_field("quality").or_else(|| str_at(&car, "/response/quality")),
        size: req_field("size").or_else(|| str_at(&car, "/response/size")),
        prompt: str_at(&car, "/request/prompt").or_else(|| {
            car.pointer("/request/input")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        route: str_at(&car, "/route"),
        request_id: str_at(&car, "/response/request_id"),
        response_id: str_at(&car, "/responses/response_id"),
        images_in_request: n,
    }
}

/// The rows of [`Ledger::record_summaries_for`], inside the caller's transaction.
pub(super) fn summaries_tx(
    tx: &Connection,
    run: RunId,
    job: Option<JobId>,
    attempt: Option<AttemptId>,
    images: &[ImageSummary],
    fields: &[ImageFields],
) -> rusqlite::Result<Vec<ImageId>> {
    // One attempt and one usage row per request: the usage covers all its images.
    let mut attempts: BTreeMap<Option<String>, AttemptId> = BTreeMap::new();
    let mut ids = Vec::with_capacity(images.len());
    for (img, f) in images.iter().zip(fields) {
        let attempt_id = if let Some(&a) = attempts.get(&f.request_id) {
            a
        } else {
            let a = if let Some(a) = attempt.filter(|_| attempts.is_empty()) {
                a
            } else {
                tx.execute(
                    "INSERT INTO attempts (run_id, job_id, route, provider, state) VALUES (?1, ?2, ?3, CASE WHEN ?3 LIKE 'local.%' THEN 'local' ELSE 'openai' END, 'sent')",
                    params![run, job, f.route.as_deref().unwrap_or("unknown")],
                )?;
                tx.last_insert_rowid()
            };
            finish_attempt_tx(
                tx,
                a,
                &AttemptOutcome {
                    ok: true,
                    http_status: Some(200),
                    request_id: f.request_id.clone(),
                    ..AttemptOutcome::default()
                },
            )?;
            if let (Some(u), Some(c)) = (img.usage, img.cost) {
                // The measured usage replaces the estimate written when it was sent.
                tx.execute("DELETE FROM usage WHERE attempt_id = ?1", [a])?;
                let key = UsageKey {
                    model: f.model.clone().unwrap_or_else(|| "unknown".into()),
                    quality: f.quality.clone().unwrap_or_else(|| "auto".into()),
                    size: f.size.clone().unwrap_or_else(|| "auto".into()),
                    images: f.images_in_request,
                };
                usd_row(tx, run, Some(a), &key, &u, &c, true)?;
            }
            attempts.insert(f.request_id.clone(), a);
            a
        };
        ids.push(image_row_tx(tx, run, job, attempt_id, img, f)?);
    }
    Ok(ids)
}

/// A run of `kind` with `args`, begun inside the caller's transaction (or connection).
fn begin_run_tx(tx: &Connection, kind: &str, args: &Value) -> rusqlite::Result<RunId> {
    tx.execute(
        "INSERT INTO runs (kind, args, fourk_version, pid) VALUES (?1, ?2, ?3, ?4)",
        params![
            kind,
            args.to_string(),
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// One image row.
pub(super) fn image_row_tx(
    tx: &Connection,
    run: RunId,
    job: Option<JobId>,
    attempt_id: impl Into<Option<AttemptId>>,
    img: &ImageSummary,
    f: &ImageFields,
) -> rusqlite::Result<ImageId> {
    tx.execute(
        "INSERT INTO images (run_id, job_id, attempt_id, path, sidecar, sha256, width, height,
                 format, verified, checks, model, quality, size, prompt, route, request_id, response_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        params![
            run,
            job,
            attempt_id.into(),
            absolute(&img.path),
            absolute(&img.sidecar),
            f.sha256,
            img.width,
            img.height,
            img.format,
            img.verified,
            f.checks.to_string(),
            f.model,
            f.quality,
            f.size,
            f.prompt,
            f.route,
            f.request_id,
            f.response_id,
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn file_sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    std::fs::read(path).map_or_else(|_| String::new(), |b| format!("{:x}", Sha256::digest(&b)))
}

impl Ledger {
    /// Start a run of `kind` (`generate`, `batch`, `draft`, ...) with its arguments.
    ///
    /// # Errors
    /// SQL errors.
    pub fn begin_run(&self, kind: &str, args: &Value) -> Result<RunId, LedgerError> {
        begin_run_tx(&self.conn, kind, args).map_err(|e| self.sql(e))
    }

    /// Close a run with its status.
    ///
    /// # Errors
    /// SQL errors.
    pub fn finish_run(&self, run: RunId, status: RunStatus) -> Result<(), LedgerError> {
        self.conn
            .execute(
                &format!("UPDATE runs SET status = ?2, finished_at = {NOW} WHERE id = ?1"),
                params![run, status.as_str()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Record the saved images of requests: per distinct request an `ok` attempt (unless
    /// `attempt` names the one already open) and a usage row, and per image a row with its
    /// path, SHA-256 and checks read from its sidecar. One transaction; returns the image
    /// ids in order.
    ///
    /// # Errors
    /// SQL errors.
    pub fn record_summaries(
        &self,
        run: RunId,
        job: Option<JobId>,
        images: &[ImageSummary],
    ) -> Result<Vec<ImageId>, LedgerError> {
        self.record_summaries_for(run, job, None, images)
    }

    /// As [`Ledger::record_summaries`], closing the already open `attempt` as `ok`.
    ///
    /// # Errors
    /// SQL errors.
    pub fn record_summaries_for(
        &self,
        run: RunId,
        job: Option<JobId>,
        attempt: Option<AttemptId>,
        images: &[ImageSummary],
    ) -> Result<Vec<ImageId>, LedgerError> {
        let fields: Vec<ImageFields> = images.iter().map(fields_of).collect();
        self.write(|tx| summaries_tx(tx, run, job, attempt, images, &fields))
    }

    /// Record that a request is about to leave, with what it is predicted to cost: a run
    /// (begun here when `run` is `None`), an attempt in state `sent` and, when an estimate is
    /// given, an estimated usage row, all in one transaction. A kill at any later moment
    /// leaves the request on record as possibly billed at its estimate; the answer replaces
    /// the estimate with the measured usage ([`Ledger::attempt_answered`]). A batch job's
    /// attempt names its `job`, which becomes `running` in the same transaction.
    ///
    /// # Errors
    /// SQL errors.
    pub fn attempt_sending(
        &self,
        run: Option<RunId>,
        begin: Option<(&str, &Value)>,
        job: Option<JobId>,
        route: &str,
        provider: &str,
        estimate: Option<(&UsageKey, &Usage, &Cost)>,
    ) -> Result<(RunId, AttemptId), LedgerError> {
        self.write(|tx| {
            let run = match (run, begin) {
                (Some(r), _) => r,
                (None, Some((kind, args))) => begin_run_tx(tx, kind, args)?,
                (None, None) => return Err(rusqlite::Error::InvalidParameterName("run".into())),
            };
            tx.execute(
                "INSERT INTO attempts (run_id, job_id, route, provider, state, possibly_billed) VALUES (?1, ?2, ?3, ?4, 'sent', 1)",
                params![run, job, route, provider],
            )?;
            let attempt = tx.last_insert_rowid();
            if let Some((key, usage, cost)) = estimate {
                usd_row(tx, run, Some(attempt), key, usage, cost, false)?;
            }
            if let Some(job) = job {
                tx.execute(
                    &format!("UPDATE jobs SET state = 'running', updated_at = {NOW} WHERE id = ?1"),
                    [job],
                )?;
            }
            Ok((run, attempt))
        })
    }

    /// An answer to an open attempt arrived: the attempt is `ok` at the HTTP level, and its
    /// usage, when the answer reported one, replaces the estimate. What happens to the image
    /// afterwards (decode, verify, save) cannot make the request unbilled.
    ///
    /// # Errors
    /// SQL errors.
    pub fn attempt_answered(
        &self,
        run: RunId,
        attempt: AttemptId,
        request_id: Option<&str>,
        measured: Option<(&UsageKey, &Usage, &Cost)>,
    ) -> Result<(), LedgerError> {
        self.write(|tx| {
            finish_attempt_tx(
                tx,
                attempt,
                &AttemptOutcome {
                    ok: true,
                    http_status: Some(200),
                    request_id: request_id.map(str::to_owned),
                    ..AttemptOutcome::default()
                },
            )?;
            if let Some((key, usage, cost)) = measured {
                tx.execute("DELETE FROM usage WHERE attempt_id = ?1", [attempt])?;
                usd_row(tx, run, Some(attempt), key, usage, cost, true)?;
            }
            Ok(())
        })
    }

    /// An open attempt failed. When it cannot have been billed (it never left, or the API
    /// answered with an error), its estimate is removed; otherwise the estimate stays as the
    /// cost on record.
    ///
    /// # Errors
    /// SQL errors.
    pub fn attempt_failed(&self, attempt: AttemptId, outcome: &AttemptOutcome) -> Result<(), LedgerError> {
        self.write(|tx| {
            finish_attempt_tx(tx, attempt, outcome)?;
            if !outcome.possibly_billed {
                tx.execute("DELETE FROM usage WHERE attempt_id = ?1", [attempt])?;
            }
            Ok(())
        })
    }

    /// After an answer: the image could not be saved or verified. The attempt keeps its
    /// state and measured usage; the error is added to it.
    ///
    /// # Errors
    /// SQL errors.
    pub fn attempt_note(&self, attempt: AttemptId, error: &str) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE attempts SET error = ?2 WHERE id = ?1",
                params![attempt, error],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Open attempts of `run` (sent, no outcome yet) become `interrupted` and possibly
    /// billed, keeping their estimates. Returns their ids.
    ///
    /// # Errors
    /// SQL errors.
    pub fn interrupt_run_attempts(&self, run: RunId, why: &str) -> Result<Vec<AttemptId>, LedgerError> {
        self.write(|tx| {
            let ids: Vec<AttemptId> = tx
                .prepare("SELECT id FROM attempts WHERE run_id = ?1 AND state = 'sent' ORDER BY id")?
                .query_map([run], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for a in &ids {
                tx.execute(
                    &format!(
                        "UPDATE attempts SET state = 'interrupted', possibly_billed = 1, finished_at = {NOW},
                             error = ?2 WHERE id = ?1"
                    ),
                    params![a, why],
                )?;
            }
            Ok(ids)
        })
    }

    /// The process `pid` is stopping (Ctrl-C, SIGTERM) with requests in flight: each of its
    /// running runs' open attempts outside batch jobs (a batch resumes its own) becomes
    /// `interrupted` and possibly billed, keeping its estimate, and those runs are closed as
    /// `interrupted`. Returns `(attempt, run, request id)` for each.
    ///
    /// # Errors
    /// SQL errors.
    pub fn interrupt_process(
        &self,
        pid: u32,
        why: &str,
    ) -> Result<Vec<(AttemptId, RunId, Option<String>)>, LedgerError> {
        self.write(|tx| {
            let runs: Vec<RunId> = tx
                .prepare("SELECT id FROM runs WHERE pid = ?1 AND status = 'running' ORDER BY id")?
                .query_map([pid], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut hit = Vec::new();
            for run in runs {
                let open: Vec<(AttemptId, Option<String>)> = tx
                    .prepare(
                        "SELECT id, request_id FROM attempts
                         WHERE run_id = ?1 AND state = 'sent' AND job_id IS NULL ORDER BY id",
                    )?
                    .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (a, rid) in open {
                    tx.execute(
                        &format!(
                            "UPDATE attempts SET state = 'interrupted', possibly_billed = 1,
                                 finished_at = {NOW}, error = ?2 WHERE id = ?1"
                        ),
                        params![a, why],
                    )?;
                    hit.push((a, run, rid));
                }
                if !tx
                    .prepare("SELECT 1 FROM jobs WHERE last_run = ?1 LIMIT 1")?
                    .exists([run])?
                {
                    tx.execute(
                        &format!("UPDATE runs SET status = 'interrupted', finished_at = {NOW} WHERE id = ?1"),
                        [run],
                    )?;
                }
            }
            Ok(hit)
        })
    }

    /// Image rows for images saved from an attempt already on record (its usage included):
    /// one transaction; the ids in order.
    ///
    /// # Errors
    /// SQL errors.
    pub fn record_attempt_images(
        &self,
        run: RunId,
        job: Option<JobId>,
        attempt: AttemptId,
        images: &[ImageSummary],
    ) -> Result<Vec<ImageId>, LedgerError> {
        let fields: Vec<ImageFields> = images.iter().map(fields_of).collect();
        self.write(|tx| {
            images
                .iter()
                .zip(&fields)
                .map(|(img, f)| image_row_tx(tx, run, job, attempt, img, f))
                .collect()
        })
    }

    /// A local command's output (no request, no cost): a run of `kind` with `args`, the
    /// image row (route `route`, no attempt), a `link` from every input the ledger knows with
    /// the same SHA-256, and the run closed by the output's verdict. One transaction; the
    /// output's id.
    ///
    /// # Errors
    /// SQL errors.
    pub fn record_local(
        &self,
        kind: &str,
        args: &Value,
        route: &str,
        output: &ImageSummary,
        inputs: &[(PathBuf, String)],
        link: LinkKind,
    ) -> Result<ImageId, LedgerError> {
        let mut fields = fields_of(output);
        fields.route = Some(route.to_owned());
        let known: Vec<ImageId> = inputs
            .iter()
            .filter_map(|(path, sha)| {
                self.find_image_by_path(path)
                    .ok()
                    .flatten()
                    .filter(|r| &r.sha256 == sha)
                    .map(|r| r.id)
            })
            .collect();
        self.write(|tx| {
            let run = begin_run_tx(tx, kind, args)?;
            let id = image_row_tx(tx, run, None, None, output, &fields)?;
            for from in &known {
                tx.execute(
                    "INSERT OR IGNORE INTO links (from_image, to_image, kind) VALUES (?1, ?2, ?3)",
                    params![from, id, link.as_str()],
                )?;
            }
            tx.execute(
                &format!("UPDATE runs SET status = ?2, finished_at = {NOW} WHERE id = ?1"),
                params![run, RunStatus::verified(output.verified).as_str()],
            )?;
            Ok(id)
        })
    }

    /// Link two images (idempotent).
    ///
    /// # Errors
    /// SQL errors, including unknown image ids.
    pub fn link(&self, from: ImageId, to: ImageId, kind: LinkKind) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO links (from_image, to_image, kind) VALUES (?1, ?2, ?3)",
                params![from, to, kind.as_str()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Run `f` in one immediate transaction (takes the write lock up front, so two writers
    /// wait on the busy timeout instead of failing mid-transaction). Rolled back on error;
    /// a kill before COMMIT leaves nothing of it.
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.sql(e))?;
        match f(&self.conn) {
            Ok(v) => {
                if let Err(e) = self.conn.execute_batch("COMMIT") {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(self.sql(e));
                }
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(self.sql(e))
            }
        }
    }

    /// The id of the run that is most recent of `kind`, if any.
    ///
    /// # Errors
    /// SQL errors.
    pub fn last_run(&self, kind: &str) -> Result<Option<RunId>, LedgerError> {
        self.conn
            .query_row(
                "SELECT id FROM runs WHERE kind = ?1 ORDER BY id DESC LIMIT 1",
                [kind],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}

/// Paths are stored absolute so that `history` run from elsewhere still finds the files.
pub(super) fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .to_string_lossy()
        .into_owned()
}
