//! Reads: images by id or path (for workflows), the history list and cost sums.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::{AttemptId, ImageId, JobId, Ledger, LedgerError, LinkKind, RunId};

/// One recorded image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRecord {
    /// Its id (what `fourk final ID` takes).
    pub id: ImageId,
    /// The run that made it.
    pub run_id: RunId,
    /// The batch job, if any.
    pub job_id: Option<JobId>,
    /// The attempt that produced it.
    pub attempt_id: Option<AttemptId>,
    /// Absolute path at the time it was saved.
    pub path: PathBuf,
    /// Its sidecar.
    pub sidecar: Option<PathBuf>,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// `png`, `jpeg` or `webp`.
    pub format: Option<String>,
    /// Matched the request and decoded fully.
    pub verified: bool,
    /// The model.
    pub model: Option<String>,
    /// Quality asked for.
    pub quality: Option<String>,
    /// Size asked for.
    pub size: Option<String>,
    /// The prompt.
    pub prompt: Option<String>,
    /// `images.generate`, `images.edit` or `responses`.
    pub route: Option<String>,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// The Responses API response id (for `previous_response_id`).
    pub response_id: Option<String>,
    /// The checks summary from the sidecar.
    pub checks: Value,
    /// When it was recorded (UTC).
    pub created_at: String,
}

const IMAGE_COLS: &str =
    "id, run_id, job_id, attempt_id, path, sidecar, sha256, width, height, format, verified,
    checks, model, quality, size, prompt, route, request_id, response_id, created_at";

fn image_row(r: &Row<'_>) -> rusqlite::Result<ImageRecord> {
    Ok(ImageRecord {
        id: r.get(0)?,
        run_id: r.get(1)?,
        job_id: r.get(2)?,
        attempt_id: r.get(3)?,
        path: PathBuf::from(r.get::<_, String>(4)?),
        sidecar: r.get::<_, Option<String>>(5)?.map(PathBuf::from),
        sha256: r.get(6)?,
        width: r.get(7)?,
        height: r.get(8)?,
        format: r.get(9)?,
        verified: r.get(10)?,
        checks: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or(Value::Null),
        model: r.get(12)?,
        quality: r.get(13)?,
        size: r.get(14)?,
        prompt: r.get(15)?,
        route: r.get(16)?,
        request_id: r.get(17)?,
        response_id: r.get(18)?,
        created_at: r.get(19)?,
    })
}

/// One line of `fourk history`: an image, or a request that failed after it was sent.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// `image` or `possibly_billed`.
    pub entry: &'static str,
    /// The image id (`None` for a failed request).
    pub image_id: Option<ImageId>,
    /// The run.
    pub run_id: RunId,
    /// The command that ran (`generate`, `batch`, ...).
    pub command: String,
    /// When (UTC).
    pub time: String,
    /// The file.
    pub path: Option<PathBuf>,
    /// `WIDTHxHEIGHT` of the file.
    pub dimensions: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// Quality asked for.
    pub quality: Option<String>,
    /// Verified on disk.
    pub verified: Option<bool>,
    /// `x-request-id`.
    pub request_id: Option<String>,
    /// Dollars: this image's share of its request's usage.
    pub usd: Option<f64>,
    /// True when `usd` is an estimate (predicted usage, or estimated prices).
    pub estimate: bool,
}

/// How `fourk cost` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum CostBy {
    /// The image model.
    Model,
    /// The quality asked for.
    Quality,
    /// The size asked for.
    Size,
    /// The UTC day.
    Day,
}

/// One group of `fourk cost`.
#[derive(Debug, Clone, Serialize)]
pub struct CostRow {
    /// The group (`all` without `--by`).
    pub key: String,
    /// Requests with recorded usage.
    pub requests: u64,
    /// Images those requests asked for.
    pub images: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Dollars in total (measured + estimated).
    pub usd: f64,
    /// Dollars from usage the API reported.
    pub measured_usd: f64,
    /// Dollars from predicted usage (requests that may have been billed with no answer)
    /// or estimated prices.
    pub estimated_usd: f64,
}

impl Ledger {
    /// The image with this id.
    ///
    /// # Errors
    /// SQL errors.
    pub fn find_image(&self, id: ImageId) -> Result<Option<ImageRecord>, LedgerError> {
        self.conn
            .query_row(
                &format!("SELECT {IMAGE_COLS} FROM images WHERE id = ?1"),
                [id],
                image_row,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// The newest image recorded at this path (made absolute).
    ///
    /// # Errors
    /// SQL errors.
    pub fn find_image_by_path(&self, path: &Path) -> Result<Option<ImageRecord>, LedgerError> {
        let p = super::record::absolute(path);
        self.conn
            .query_row(
                &format!("SELECT {IMAGE_COLS} FROM images WHERE path = ?1 ORDER BY id DESC LIMIT 1"),
                [p],
                image_row,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Every image of a run, in order.
    ///
    /// # Errors
    /// SQL errors.
    pub fn images_of_run(&self, run: RunId) -> Result<Vec<ImageRecord>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {IMAGE_COLS} FROM images WHERE run_id = ?1 ORDER BY id"
            ))
            .map_err(|e| self.sql(e))?;
        stmt.query_map([run], image_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.sql(e))
    }

    /// The links that start at an image: what was made from it.
    ///
    /// # Errors
    /// SQL errors.
    pub fn links_from(&self, image: ImageId) -> Result<Vec<(ImageId, LinkKind)>, LedgerError> {
        self.links(
            "SELECT to_image, kind FROM links WHERE from_image = ?1 ORDER BY id",
            image,
        )
    }

    /// The links that end at an image: what it was made from.
    ///
    /// # Errors
    /// SQL errors.
    pub fn links_to(&self, image: ImageId) -> Result<Vec<(ImageId, LinkKind)>, LedgerError> {
        self.links(
            "SELECT from_image, kind FROM links WHERE to_image = ?1 ORDER BY id",
            image,
        )
    }

    fn links(&self, sql: &str, image: ImageId) -> Result<Vec<(ImageId, LinkKind)>, LedgerError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
        let rows: Vec<(ImageId, String)> = stmt
            .query_map([image], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, k)| LinkKind::parse(&k).map(|k| (id, k)))
            .collect())
    }

    /// The newest `limit` history entries, newest first.
    ///
    /// # Errors
    /// SQL errors.
    pub fn history(&self, limit: u32) -> Result<Vec<HistoryRow>, LedgerError> {
        // An image's share of its request's dollars: usage is per request, images per row.
        let sql = "
            SELECT 'image', i.id, i.run_id, r.kind, i.created_at, i.path, i.width, i.height, i.model,
                   i.quality, i.verified, i.request_id,
                   (SELECT SUM(u.usd) FROM usage u WHERE u.attempt_id = i.attempt_id)
                     / MAX(1, (SELECT COUNT(*) FROM images j WHERE j.attempt_id = i.attempt_id)),
                   COALESCE((SELECT MAX(u.estimate) FROM usage u WHERE u.attempt_id = i.attempt_id), 0)
            FROM images i JOIN runs r ON r.id = i.run_id
            UNION ALL
            SELECT 'possibly_billed', NULL, a.run_id, r.kind, COALESCE(a.finished_at, a.started_at), NULL,
                   NULL, NULL, u.model, u.quality, NULL, a.request_id,
                   (SELECT SUM(v.usd) FROM usage v WHERE v.attempt_id = a.id), 1
            FROM attempts a JOIN runs r ON r.id = a.run_id
                 LEFT JOIN usage u ON u.attempt_id = a.id
            WHERE a.possibly_billed = 1 AND a.state != 'ok'
            ORDER BY 5 DESC, 2 DESC
            LIMIT ?1";
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
        stmt.query_map(params![limit], |r| {
            let w: Option<u32> = r.get(6)?;
            let h: Option<u32> = r.get(7)?;
            let entry: String = r.get(0)?;
            Ok(HistoryRow {
                entry: if entry == "image" {
                    "image"
                } else {
                    "possibly_billed"
                },
                image_id: r.get(1)?,
                run_id: r.get(2)?,
                command: r.get(3)?,
                time: r.get(4)?,
                path: r.get::<_, Option<String>>(5)?.map(PathBuf::from),
                dimensions: w.zip(h).map(|(w, h)| format!("{w}x{h}")),
                model: r.get(8)?,
                quality: r.get(9)?,
                verified: r.get(10)?,
                request_id: r.get(11)?,
                usd: r.get(12)?,
                estimate: r.get(13)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.sql(e))
    }

    /// Dollars and tokens since `since` (an ISO date or time prefix, UTC), grouped.
    ///
    /// # Errors
    /// SQL errors.
    pub fn cost(&self, since: Option<&str>, by: Option<CostBy>) -> Result<Vec<CostRow>, LedgerError> {
        let key = match by {
            None => "'all'",
            Some(CostBy::Model) => "model",
            Some(CostBy::Quality) => "quality",
            Some(CostBy::Size) => "size",
            Some(CostBy::Day) => "substr(created_at, 1, 10)",
        };
        let sql = format!(
            "SELECT {key} AS k, COUNT(*), SUM(images), SUM(input_tokens), SUM(output_tokens), SUM(usd),
                    COALESCE(SUM(CASE WHEN estimate = 0 THEN usd END), 0),
                    COALESCE(SUM(CASE WHEN estimate = 1 THEN usd END), 0)
             FROM usage WHERE created_at >= ?1 GROUP BY k ORDER BY k"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        stmt.query_map([since.unwrap_or("")], |r| {
            let u = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
            Ok(CostRow {
                key: r.get(0)?,
                requests: u(1)?,
                images: u(2)?,
                input_tokens: u(3)?,
                output_tokens: u(4)?,
                usd: r.get(5)?,
                measured_usd: r.get(6)?,
                estimated_usd: r.get(7)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.sql(e))
    }
}

/// Which images a gallery shows (`None`: any).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct GalleryFilter {
    /// The command that made them (`generate`, `draft`, `final`, `upscale`, ...).
    pub command: Option<String>,
    /// The file's `WIDTHxHEIGHT`.
    pub size: Option<String>,
    /// Recorded on or after this ISO date or time prefix (UTC; see [`parse_since`]).
    pub since: Option<String>,
}

/// One image of a gallery: its record, the command that made it and its dollars.
#[derive(Debug, Clone, Serialize)]
pub struct GalleryRow {
    /// The image.
    #[serde(flatten)]
    pub image: ImageRecord,
    /// The command that made it.
    pub command: String,
    /// This image's share of its request's dollars (`None` for local work).
    pub usd: Option<f64>,
    /// True when `usd` is an estimate.
    pub estimate: bool,
}

/// What a gallery can be filtered by: the commands and file sizes on record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GalleryFacets {
    /// Commands, sorted.
    pub commands: Vec<String>,
    /// `WIDTHxHEIGHT` of the files, most pixels first.
    pub sizes: Vec<String>,
}

impl Ledger {
    /// The newest `limit` images that pass `filter`, newest first, with the command that
    /// made each and its share of its request's dollars.
    ///
    /// # Errors
    /// SQL errors.
    pub fn gallery(&self, filter: &GalleryFilter, limit: u32) -> Result<Vec<GalleryRow>, LedgerError> {
        let cols = IMAGE_COLS
            .split(',')
            .map(|c| format!("i.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols}, r.kind,
                    (SELECT SUM(u.usd) FROM usage u WHERE u.attempt_id = i.attempt_id)
                      / MAX(1, (SELECT COUNT(*) FROM images j WHERE j.attempt_id = i.attempt_id)),
                    COALESCE((SELECT MAX(u.estimate) FROM usage u WHERE u.attempt_id = i.attempt_id), 0)
             FROM images i JOIN runs r ON r.id = i.run_id
             WHERE (?1 IS NULL OR r.kind = ?1)
               AND (?2 IS NULL OR (i.width || 'x' || i.height) = ?2)
               AND (?3 IS NULL OR i.created_at >= ?3)
             ORDER BY i.created_at DESC, i.id DESC
             LIMIT ?4"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        stmt.query_map(params![filter.command, filter.size, filter.since, limit], |r| {
            Ok(GalleryRow {
                image: image_row(r)?,
                command: r.get(20)?,
                usd: r.get(21)?,
                estimate: r.get(22)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.sql(e))
    }

    /// The commands and sizes a gallery can be filtered by.
    ///
    /// # Errors
    /// SQL errors.
    pub fn gallery_facets(&self) -> Result<GalleryFacets, LedgerError> {
        let list = |sql: &str| -> Result<Vec<String>, LedgerError> {
            let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
            stmt.query_map([], |r| r.get::<_, String>(0))
                .and_then(Iterator::collect)
                .map_err(|e| self.sql(e))
        };
        Ok(GalleryFacets {
            commands: list("SELECT DISTINCT r.kind FROM images i JOIN runs r ON r.id = i.run_id ORDER BY 1")?,
            sizes: list(
                "SELECT w || 'x' || h FROM (SELECT DISTINCT width AS w, height AS h FROM images
                 WHERE width IS NOT NULL AND height IS NOT NULL) ORDER BY w * h DESC, w DESC",
            )?,
        })
    }
}

/// Accept `YYYY-MM-DD`, optionally followed by `THH`, `THH:MM` or `THH:MM:SS` (UTC); the
/// ledger stores times as ISO text, so a valid prefix compares correctly.
/// # Errors
/// A message naming the expected form.
pub fn parse_since(s: &str) -> Result<String, String> {
    let bad = || {
        format!("'{s}' is not a date; write YYYY-MM-DD (UTC), for example 2026-01-31, optionally with THH:MM")
    };
    let shape = |t: &str, pat: &str| {
        t.len() == pat.len()
            && t.bytes()
                .zip(pat.bytes())
                .all(|(c, p)| if p == b'9' { c.is_ascii_digit() } else { c == p })
    };
    let t = s.trim().replace(' ', "T");
    let ok = [
        "9999-99-99",
        "9999-99-99T99",
        "9999-99-99T99:99",
        "9999-99-99T99:99:99",
    ]
    .iter()
    .any(|p| shape(&t, p));
    if !ok {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|v| v.parse::<u32>().ok()).unwrap_or(99);
    if !(1..=12).contains(&num(5..7)) || !(1..=31).contains(&num(8..10)) {
        return Err(bad());
    }
    if t.len() > 10 && num(11..13) > 23 {
        return Err(bad());
    }
    Ok(t)
}
