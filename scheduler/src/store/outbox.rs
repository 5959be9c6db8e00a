//! The `callbacks` table: the durable outbox the callback worker drains
//! ([`crate::outbox::Outbox`]). Every time column holds Unix milliseconds.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{params, Connection, Row};
use time::OffsetDateTime;

use super::error::{sqlite, StoreError};
use super::rows::{from_millis, to_millis};
use super::Store;
use crate::outbox::{NewCallback, Outbox, OutboxError, PendingCallback};
use crate::task::TaskId;

/// The column values of a new `callbacks` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallbackRow {
    task_id: String,
    url: String,
    body: String,
    created_at: i64,
    give_up_at: i64,
}

impl From<NewCallback> for CallbackRow {
    fn from(callback: NewCallback) -> Self {
        CallbackRow {
            task_id: callback.task_id.as_str().to_owned(),
            url: callback.url,
            body: callback.body,
            created_at: to_millis(callback.created_at),
            give_up_at: to_millis(callback.give_up_at),
        }
    }
}

/// Appends a callback, due at once (`next_attempt_at` = `created_at`).
pub(crate) fn insert_callback(
    conn: &Connection,
    path: &Path,
    row: &CallbackRow,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO callbacks (task_id, url, body, attempts, created_at, give_up_at,
                                next_attempt_at)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?4)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            row.task_id,
            row.url,
            row.body,
            row.created_at,
            row.give_up_at
        ])
    })
    .map_err(sqlite(path, "queueing a callback"))?;
    Ok(())
}

/// The rows eligible for delivery: the oldest pending callback of each task (a task's later
/// callbacks wait until the older ones are delivered or abandoned).
const HEADS: &str = "SELECT MIN(id) FROM callbacks GROUP BY task_id";

/// Due callbacks, oldest first, at most `limit`.
fn due(
    conn: &Connection,
    path: &Path,
    now: i64,
    limit: i64,
) -> Result<Vec<PendingCallback>, StoreError> {
    let sql = format!(
        "SELECT id, task_id, url, body, attempts, created_at, give_up_at, next_attempt_at
         FROM callbacks WHERE id IN ({HEADS}) AND next_attempt_at <= ?1
         ORDER BY id LIMIT ?2"
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(sqlite(path, "reading due callbacks"))?;
    let rows = stmt
        .query_map(params![now, limit], read_callback)
        .map_err(sqlite(path, "reading due callbacks"))?;
    let mut due = Vec::new();
    for row in rows {
        let raw = row.map_err(sqlite(path, "reading due callbacks"))?;
        due.push(raw.decode(path)?);
    }
    Ok(due)
}

/// The earliest `next_attempt_at` among the callbacks [`due`] can return.
fn next_due(conn: &Connection, path: &Path) -> Result<Option<OffsetDateTime>, StoreError> {
    let millis: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT MIN(next_attempt_at) FROM callbacks WHERE id IN ({HEADS})"
        ))
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(sqlite(path, "reading the next callback time"))?;
    millis
        .map(|millis| {
            from_millis(millis).ok_or_else(|| StoreError::Corrupt {
                path: path.to_path_buf(),
                what: "next_attempt_at of a callback".into(),
                reason: format!("{millis} ms is outside the supported time range"),
            })
        })
        .transpose()
}

/// A `callbacks` row as stored.
struct RawCallback {
    id: i64,
    task_id: String,
    url: String,
    body: String,
    attempts: i64,
    created_at: i64,
    give_up_at: i64,
    next_attempt_at: i64,
}

fn read_callback(row: &Row<'_>) -> rusqlite::Result<RawCallback> {
    Ok(RawCallback {
        id: row.get(0)?,
        task_id: row.get(1)?,
        url: row.get(2)?,
        body: row.get(3)?,
        attempts: row.get(4)?,
        created_at: row.get(5)?,
        give_up_at: row.get(6)?,
        next_attempt_at: row.get(7)?,
    })
}

impl RawCallback {
    fn decode(self, path: &Path) -> Result<PendingCallback, StoreError> {
        let id = self.id;
        let corrupt = |column: &str, reason: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            what: format!("{column} of callback {id}"),
            reason,
        };
        let time = |column: &str, millis: i64| {
            from_millis(millis).ok_or_else(|| {
                corrupt(
                    column,
                    format!("{millis} ms is outside the supported time range"),
                )
            })
        };
        Ok(PendingCallback {
            id,
            task_id: TaskId::parse(&self.task_id)
                .map_err(|error| corrupt("task_id", error.to_string()))?,
            url: self.url,
            body: self.body,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt("attempts", format!("{} is not a count", self.attempts)))?,
            created_at: time("created_at", self.created_at)?,
            give_up_at: time("give_up_at", self.give_up_at)?,
            next_attempt_at: time("next_attempt_at", self.next_attempt_at)?,
        })
    }
}

/// Removes a callback (delivered or abandoned).
fn remove(conn: &Connection, path: &Path, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM callbacks WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([id]))
        .map_err(sqlite(path, "removing a callback"))?;
    Ok(())
}

/// Records a failed attempt.
fn reschedule(
    conn: &Connection,
    path: &Path,
    id: i64,
    attempts: u32,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE callbacks SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE id = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![id, attempts, next_attempt_at, error]))
    .map_err(sqlite(path, "rescheduling a callback"))?;
    Ok(())
}

fn outbox_error(error: StoreError) -> OutboxError {
    OutboxError(error.to_string())
}

#[async_trait]
impl Outbox for Store {
    async fn due(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PendingCallback>, OutboxError> {
        let now = to_millis(now);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("reading due callbacks", move |conn, path| {
            due(conn, path, now, limit)
        })
        .await
        .map_err(outbox_error)
    }

    /// The earliest `next_attempt_at` among the callbacks that can be delivered now or later:
    /// a callback queued behind an older one of the same task is not counted, so that a worker
    /// sleeping until this instant does not wake up for a callback [`Outbox::due`] withholds.
    async fn next_due(&self) -> Result<Option<OffsetDateTime>, OutboxError> {
        self.read("reading the next callback time", next_due)
            .await
            .map_err(outbox_error)
    }

    async fn delivered(&self, id: i64) -> Result<(), OutboxError> {
        self.write("removing a delivered callback", move |conn, path| {
            remove(conn, path, id)
        })
        .await
        .map_err(outbox_error)
    }

    async fn retry_at(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), OutboxError> {
        let next = to_millis(next_attempt_at);
        let error = error.to_owned();
        self.write("rescheduling a callback", move |conn, path| {
            reschedule(conn, path, id, attempts, next, &error)
        })
        .await
        .map_err(outbox_error)
    }

    async fn abandon(&self, id: i64, error: &str) -> Result<(), OutboxError> {
        tracing::debug!("abandoning callback {id}: {error}");
        self.write("removing an abandoned callback", move |conn, path| {
            remove(conn, path, id)
        })
        .await
        .map_err(outbox_error)
    }
}
