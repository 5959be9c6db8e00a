//! Creating the database file, configuring connections and migrating the schema.

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::error::{sqlite, StoreError};

/// Schema migrations; entry `n` brings the schema from version `n` to `n + 1`
/// (`PRAGMA user_version`). Append new entries, never edit applied ones.
pub(crate) const MIGRATIONS: &[&str] = &[
    // Version 1. `seq` is the rowid with AUTOINCREMENT, so submission order is never reused,
    // even after the newest task is deleted, and list scans run in seq order.
    "CREATE TABLE tasks (
         seq      INTEGER PRIMARY KEY AUTOINCREMENT,
         id       TEXT NOT NULL UNIQUE,
         name     TEXT NOT NULL,
         state    TEXT,
         grp      TEXT NOT NULL CHECK (grp IN ('queued', 'active', 'terminated')),
         ended_at INTEGER,
         record   TEXT NOT NULL
     );
     CREATE INDEX tasks_by_group ON tasks (grp, seq);
     CREATE INDEX tasks_by_name ON tasks (name, seq);
     CREATE TABLE idempotency (
         key         TEXT PRIMARY KEY,
         task_id     TEXT NOT NULL,
         fingerprint TEXT NOT NULL
     );
     CREATE INDEX idempotency_by_task ON idempotency (task_id);
     CREATE TABLE callbacks (
         id              INTEGER PRIMARY KEY AUTOINCREMENT,
         task_id         TEXT NOT NULL,
         url             TEXT NOT NULL,
         body            TEXT NOT NULL,
         attempts        INTEGER NOT NULL DEFAULT 0,
         created_at      INTEGER NOT NULL,
         give_up_at      INTEGER NOT NULL,
         next_attempt_at INTEGER NOT NULL,
         last_error      TEXT
     );
     CREATE INDEX callbacks_by_task ON callbacks (task_id, id);",
    // Version 2. Single values of the service itself (e.g. the framework id a Mesos master
    // granted), see `super::meta`.
    "CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the missing parent directories (mode 0700) and the database file (mode 0600), so
/// that SQLite never creates them with the process umask. An existing file is left as it is.
pub(crate) fn create_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StoreError::CreateDir {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                    source: Arc::new(source),
                })?;
        }
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::CreateFile {
            path: path.to_path_buf(),
            source: Arc::new(source),
        }),
    }
}

/// Opens the single write connection: WAL journal, `synchronous=FULL` (a commit has reached
/// the disk when it returns), schema migrated to the latest version.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    create_file(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite(path, "opening"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite(path, "setting the busy timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sqlite(path, "enabling WAL journal mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::WalUnavailable {
            path: path.to_path_buf(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite(path, "setting synchronous=FULL"))?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection (the file must exist and be in WAL mode already).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(sqlite(path, "opening for reading"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite(path, "setting the busy timeout"))?;
    Ok(conn)
}

/// Which migrations a database at `current` needs: the indexes into [`MIGRATIONS`], or the
/// newer version found when the file comes from a newer build.
pub(crate) fn pending_migrations(current: i64) -> Result<std::ops::Range<usize>, i64> {
    let applied = usize::try_from(current).map_err(|_| current)?;
    if applied > MIGRATIONS.len() {
        return Err(current);
    }
    Ok(applied..MIGRATIONS.len())
}

/// Brings the schema to the latest version, one transaction per migration.
fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite(path, "reading the schema version"))?;
    let pending = pending_migrations(current).map_err(|found| StoreError::NewerSchema {
        path: path.to_path_buf(),
        found,
        supported: latest_version(),
    })?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(pending.start) {
        let sql = format!(
            "BEGIN IMMEDIATE; {migration} PRAGMA user_version = {}; COMMIT;",
            index + 1
        );
        if let Err(error) = conn.execute_batch(&sql) {
            // Leave no half-open transaction behind; the rollback's own failure (no
            // transaction open) is irrelevant next to the migration error.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(sqlite(path, "migrating the schema")(error));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_needs_every_migration() {
        assert_eq!(pending_migrations(0), Ok(0..MIGRATIONS.len()));
        assert_eq!(
            pending_migrations(latest_version()),
            Ok(MIGRATIONS.len()..MIGRATIONS.len())
        );
    }

    #[test]
    fn newer_or_negative_schema_is_refused() {
        assert_eq!(
            pending_migrations(latest_version() + 1),
            Err(latest_version() + 1)
        );
        assert_eq!(pending_migrations(-1), Err(-1));
    }
}
