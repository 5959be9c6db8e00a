//! The SQL of the `tasks` and `idempotency` tables, as functions of a connection.

use std::path::Path;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::error::{sqlite, StoreError};
use super::outbox::{insert_callback, CallbackRow};
use super::rows::TaskRow;
use super::InsertOutcome;
use crate::task::{Task, TaskId, TaskState};

/// Inserts a task and its idempotency key, or returns the task the key already names.
pub(crate) fn insert(
    conn: &Connection,
    path: &Path,
    row: &TaskRow,
    idempotency: Option<(String, String)>,
) -> Result<InsertOutcome, StoreError> {
    if let Some((key, _)) = &idempotency {
        if let Some(existing) = find_key(conn, path, key)? {
            return Ok(existing);
        }
    }
    conn.prepare_cached(
        "INSERT INTO tasks (id, name, state, grp, ended_at, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            row.id,
            row.name,
            row.state,
            row.group,
            row.ended_at,
            row.record
        ])
    })
    .map_err(sqlite(path, "inserting a task"))?;
    let seq = conn.last_insert_rowid();
    if let Some((key, fingerprint)) = &idempotency {
        conn.prepare_cached(
            "INSERT INTO idempotency (key, task_id, fingerprint) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut stmt| stmt.execute(params![key, row.id, fingerprint]))
        .map_err(sqlite(path, "inserting an idempotency key"))?;
    }
    Ok(InsertOutcome::Inserted {
        seq: u64::try_from(seq).unwrap_or(0),
    })
}

/// The task an idempotency key was first used for.
pub(crate) fn find_key(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<InsertOutcome>, StoreError> {
    let found: Option<(String, String)> = conn
        .prepare_cached("SELECT task_id, fingerprint FROM idempotency WHERE key = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sqlite(path, "looking up an idempotency key"))?;
    found
        .map(|(task_id, fingerprint)| {
            let task_id = TaskId::parse(&task_id).map_err(|error| StoreError::Corrupt {
                path: path.to_path_buf(),
                what: format!("task id of idempotency key {key:?}"),
                reason: error.to_string(),
            })?;
            Ok(InsertOutcome::Existing {
                task_id,
                fingerprint,
            })
        })
        .transpose()
}

/// Replaces the record of an existing task and appends its callbacks; `false` (nothing
/// written) when the task does not exist.
pub(crate) fn save(
    conn: &Connection,
    path: &Path,
    row: &TaskRow,
    callbacks: &[CallbackRow],
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE tasks SET name = ?2, state = ?3, grp = ?4, ended_at = ?5, record = ?6
             WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                row.id,
                row.name,
                row.state,
                row.group,
                row.ended_at,
                row.record
            ])
        })
        .map_err(sqlite(path, "updating a task"))?;
    if changed == 0 {
        return Ok(false);
    }
    for callback in callbacks {
        insert_callback(conn, path, callback)?;
    }
    Ok(true)
}

/// Deletes a task and its idempotency keys; `false` when there was no such task.
pub(crate) fn delete(conn: &Connection, path: &Path, id: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM idempotency WHERE task_id = ?1")
        .and_then(|mut stmt| stmt.execute([id]))
        .map_err(sqlite(path, "deleting idempotency keys"))?;
    let deleted = conn
        .prepare_cached("DELETE FROM tasks WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([id]))
        .map_err(sqlite(path, "deleting a task"))?;
    Ok(deleted > 0)
}

/// Deletes at most `limit` terminated tasks (oldest submissions first) that ended before
/// `cutoff` (Unix seconds), with their idempotency keys; returns how many.
pub(crate) fn purge(
    conn: &Connection,
    path: &Path,
    cutoff: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    const SELECTION: &str = "SELECT seq FROM tasks
         WHERE grp = 'terminated' AND ended_at < ?1 ORDER BY seq LIMIT ?2";
    conn.execute(
        &format!(
            "DELETE FROM idempotency WHERE task_id IN
             (SELECT id FROM tasks WHERE seq IN ({SELECTION}))"
        ),
        params![cutoff, limit],
    )
    .map_err(sqlite(path, "purging idempotency keys of ended tasks"))?;
    let deleted = conn
        .execute(
            &format!("DELETE FROM tasks WHERE seq IN ({SELECTION})"),
            params![cutoff, limit],
        )
        .map_err(sqlite(path, "purging ended tasks"))?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

/// The task with this id; a damaged record is an error.
pub(crate) fn get(conn: &Connection, path: &Path, id: &str) -> Result<Option<Task>, StoreError> {
    let record: Option<String> = conn
        .prepare_cached("SELECT record FROM tasks WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)).optional())
        .map_err(sqlite(path, "reading a task"))?;
    record.map(|record| decode(path, id, &record)).transpose()
}

/// The submission sequence number of the task `id`.
pub(crate) fn seq_of(conn: &Connection, path: &Path, id: &str) -> Result<Option<u64>, StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM tasks WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)).optional())
        .map_err(sqlite(path, "reading a task's sequence number"))?;
    Ok(seq.map(|seq| u64::try_from(seq).unwrap_or(0)))
}

/// The tasks whose group is one of `groups` and, when given, whose name is `name`, in seq
/// order, each with its seq. Damaged records are skipped with a warning.
pub(crate) fn list(
    conn: &Connection,
    path: &Path,
    groups: &[&str],
    name: Option<&str>,
) -> Result<Vec<(u64, Task)>, StoreError> {
    list_page(conn, path, groups, name, 0, i64::MAX)
}

/// As [`list`], only tasks whose seq is greater than `after`, at most `limit` of them.
pub(crate) fn list_page(
    conn: &Connection,
    path: &Path,
    groups: &[&str],
    name: Option<&str>,
    after: u64,
    limit: i64,
) -> Result<Vec<(u64, Task)>, StoreError> {
    list_page_scanned(conn, path, groups, name, after, limit).map(|(tasks, _)| tasks)
}

/// As [`list_page`], also the seq of the last record looked at (`None` when there was none),
/// which is where the next page starts even when damaged records at the end were skipped.
pub(crate) fn list_page_scanned(
    conn: &Connection,
    path: &Path,
    groups: &[&str],
    name: Option<&str>,
    after: u64,
    limit: i64,
) -> Result<super::ScannedPage, StoreError> {
    use rusqlite::types::Value;
    if groups.is_empty() {
        return Ok((Vec::new(), None));
    }
    let placeholders = vec!["?"; groups.len()].join(", ");
    let name_clause = if name.is_some() { " AND name = ?" } else { "" };
    let sql = format!(
        "SELECT seq, id, record FROM tasks WHERE grp IN ({placeholders}){name_clause} \
         AND seq > ? ORDER BY seq LIMIT ?"
    );
    let mut values: Vec<Value> = groups
        .iter()
        .map(|group| Value::Text((*group).to_owned()))
        .collect();
    values.extend(name.map(|name| Value::Text(name.to_owned())));
    values.push(Value::Integer(i64::try_from(after).unwrap_or(i64::MAX)));
    values.push(Value::Integer(limit));
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(sqlite(path, "listing tasks"))?;
    let rows = stmt
        .query_map(params_from_iter(values), read_listed)
        .map_err(sqlite(path, "listing tasks"))?;
    let mut tasks = Vec::new();
    let mut last = None;
    for row in rows {
        let (seq, id, record) = row.map_err(sqlite(path, "listing tasks"))?;
        let seq = u64::try_from(seq).unwrap_or(0);
        last = Some(seq);
        match decode(path, &id, &record) {
            Ok(task) => tasks.push((seq, task)),
            Err(error) => tracing::warn!("skipping a task in the list: {error}"),
        }
    }
    Ok((tasks, last))
}

/// The columns `list` selects.
fn read_listed(row: &Row<'_>) -> rusqlite::Result<(i64, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// How many tasks are in each current state (tasks with an empty history are not counted).
pub(crate) fn count_by_state(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<(TaskState, u64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT state, COUNT(*) FROM tasks WHERE state IS NOT NULL GROUP BY state ORDER BY state",
        )
        .map_err(sqlite(path, "counting tasks by state"))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(sqlite(path, "counting tasks by state"))?;
    let mut counts = Vec::new();
    for row in rows {
        let (state, count) = row.map_err(sqlite(path, "counting tasks by state"))?;
        match state.parse::<TaskState>() {
            Ok(state) => counts.push((state, u64::try_from(count).unwrap_or(0))),
            Err(error) => tracing::warn!(
                "database {}: not counting {count} tasks: {error}",
                path.display()
            ),
        }
    }
    Ok(counts)
}

/// Decodes a stored record and checks that it belongs to the row's id.
pub(crate) fn decode(path: &Path, id: &str, record: &str) -> Result<Task, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        what: format!("record of task {id}"),
        reason,
    };
    let task: Task = serde_json::from_str(record).map_err(|error| corrupt(error.to_string()))?;
    if task.id.as_str() != id {
        return Err(corrupt(format!("it holds task {}", task.id)));
    }
    Ok(task)
}
