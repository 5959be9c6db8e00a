//! The `meta` table: single values of the service itself, by key.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::error::{sqlite, StoreError};

/// The value stored under `key`.
pub(crate) fn load(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
        .map_err(sqlite(path, "reading a meta value"))
}

/// Stores `value` under `key`, replacing an earlier one.
pub(crate) fn save(
    conn: &Connection,
    path: &Path,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut stmt| stmt.execute([key, value]))
    .map_err(sqlite(path, "saving a meta value"))?;
    Ok(())
}

/// Removes the value under `key`; `false` when there was none.
pub(crate) fn clear(conn: &Connection, path: &Path, key: &str) -> Result<bool, StoreError> {
    let removed = conn
        .prepare_cached("DELETE FROM meta WHERE key = ?1")
        .and_then(|mut stmt| stmt.execute([key]))
        .map_err(sqlite(path, "clearing a meta value"))?;
    Ok(removed > 0)
}
