//! The schema and its migrations. `PRAGMA user_version` holds the version; each migration
//! runs in the transaction that bumps it, so a kill mid-migration leaves the old version.

use rusqlite::Connection;

/// The version this build writes. A database with a higher version was made by a newer
/// fourk and is refused rather than guessed at.
pub const VERSION: i64 = 2;

/// `strftime` for "now" in UTC with milliseconds; sorts as text.
pub const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

const V1: &str = "
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    args          TEXT NOT NULL,
    started_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    finished_at   TEXT,
    status        TEXT NOT NULL DEFAULT 'running',
    fourk_version TEXT NOT NULL,
    pid           INTEGER
);
CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    job_key    TEXT NOT NULL UNIQUE,
    batch_key  TEXT NOT NULL,
    first_run  INTEGER NOT NULL REFERENCES runs(id),
    last_run   INTEGER NOT NULL REFERENCES runs(id),
    line       INTEGER,
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN
                 ('pending','running','succeeded','failed','possibly_billed','skipped')),
    output     TEXT,
    error      TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX jobs_batch ON jobs(batch_key);
CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs(id),
    job_id          INTEGER REFERENCES jobs(id),
    route           TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('sent','ok','failed','interrupted')),
    started_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    finished_at     TEXT,
    http_status     INTEGER,
    request_id      TEXT,
    retry_reason    TEXT,
    possibly_billed INTEGER NOT NULL DEFAULT 0,
    error           TEXT
);
CREATE INDEX attempts_job ON attempts(job_id);
CREATE TABLE images (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    job_id      INTEGER REFERENCES jobs(id),
    attempt_id  INTEGER REFERENCES attempts(id),
    path        TEXT NOT NULL,
    sidecar     TEXT,
    sha256      TEXT NOT NULL,
    width       INTEGER,
    height      INTEGER,
    format      TEXT,
    verified    INTEGER NOT NULL,
    checks      TEXT NOT NULL,
    model       TEXT,
    quality     TEXT,
    size        TEXT,
    prompt      TEXT,
    route       TEXT,
    request_id  TEXT,
    response_id TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX images_path ON images(path);
CREATE TABLE usage (
    id                 INTEGER PRIMARY KEY,
    run_id             INTEGER NOT NULL REFERENCES runs(id),
    attempt_id         INTEGER REFERENCES attempts(id),
    model              TEXT NOT NULL,
    quality            TEXT NOT NULL,
    size               TEXT NOT NULL,
    images             INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    image_input_tokens INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    usd                REAL NOT NULL,
    measured           INTEGER NOT NULL,
    estimate           INTEGER NOT NULL,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX usage_created ON usage(created_at);
CREATE TABLE links (
    id         INTEGER PRIMARY KEY,
    from_image INTEGER NOT NULL REFERENCES images(id),
    to_image   INTEGER NOT NULL REFERENCES images(id),
    kind       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    UNIQUE (from_image, to_image, kind)
);
";

/// Version 2: the provider each attempt went to (`openai`, `azure`, `gemini`, `compatible`,
/// or `local` for a step done on this machine); remote attempts recorded before it were all
/// OpenAI's shape.
const V2: &str = "ALTER TABLE attempts ADD COLUMN provider TEXT NOT NULL DEFAULT 'openai';
UPDATE attempts SET provider = 'local' WHERE route LIKE 'local.%';";

/// Migrations in order: `MIGRATIONS[i]` takes version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2];

/// Bring the database to [`VERSION`]. Returns the version found, or `Err(found)` when the
/// file is newer than this build.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Result<i64, i64>> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Ok(Err(found));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited for the write lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i64::try_from(i).unwrap_or(i64::MAX) {
            tx.commit()?;
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap_or(VERSION))?;
        tx.commit()?;
    }
    Ok(Ok(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_an_empty_database_once() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut c).unwrap(), Ok(0));
        assert_eq!(migrate(&mut c).unwrap(), Ok(VERSION));
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, VERSION);
    }

    #[test]
    fn refuses_a_newer_database() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", VERSION + 1).unwrap();
        assert_eq!(migrate(&mut c).unwrap(), Err(VERSION + 1));
    }
}
