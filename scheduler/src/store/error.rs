//! The store's error type.

use std::path::PathBuf;
use std::sync::Arc;

/// A failure of the task store. Every variant names the database file and what was being done.
///
/// The error is `Clone` (sources are shared) because one failed group commit answers every
/// request of the batch with the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The directory that should hold the database could not be created.
    #[error("creating directory {dir} for database {path}: {source}")]
    CreateDir {
        /// The database file.
        path: PathBuf,
        /// The directory that could not be created.
        dir: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The database file could not be created with owner-only permissions.
    #[error("creating database file {path} (mode 0600): {source}")]
    CreateFile {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// An SQLite call failed.
    #[error("database {path}: {operation} failed: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What the store was doing (`"inserting task"`, `"committing"`, ...).
        operation: &'static str,
        /// The SQLite error.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The database was written by a newer version of this program.
    #[error(
        "database {path} has schema version {found}, newer than the {supported} this program \
         supports; upgrade eremetic or point it at another database"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// SQLite refused to switch the database to write-ahead logging.
    #[error("database {path}: could not enable WAL journal mode (SQLite kept {mode:?})")]
    WalUnavailable {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// A task could not be serialized for storage.
    #[error("database {path}: serializing task {task_id} failed: {source}")]
    Encode {
        /// The database file.
        path: PathBuf,
        /// The task.
        task_id: String,
        /// Why.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// A stored value could not be decoded (a damaged row).
    #[error("database {path}: {what} is corrupt: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which row and column (`"record of task eremetic-task.…"`).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The writer thread could not be started.
    #[error("database {path}: starting the writer thread failed: {source}")]
    SpawnWriter {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The store was closed (or its writer thread stopped) before the request was answered.
    #[error("database {path}: {operation} failed: the store is closed")]
    Closed {
        /// The database file.
        path: PathBuf,
        /// What the request was.
        operation: &'static str,
    },
    /// A blocking read could not run to completion on the blocking thread pool.
    #[error("database {path}: {operation} failed: the read was aborted: {reason}")]
    ReadAborted {
        /// The database file.
        path: PathBuf,
        /// What the read was.
        operation: &'static str,
        /// Why (the join error).
        reason: String,
    },
}

/// Adds the database path and the operation to an SQLite error.
pub(crate) fn sqlite<'a>(
    path: &'a std::path::Path,
    operation: &'static str,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        operation,
        source: Arc::new(source),
    }
}

/// What kind of failure a [`StoreError`] is, for metrics labels and operators: a full disk
/// needs space, a corrupt database needs a restore, a closed store a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The file system is full (SQLite's `SQLITE_FULL`, or `ENOSPC`).
    DiskFull,
    /// The database file or a stored value is damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`, an
    /// undecodable row, a schema from a newer version).
    DatabaseCorrupt,
    /// The store was closed or its writer thread stopped.
    StoreClosed,
    /// Any other failure of the database or its files.
    Database,
}

impl StoreErrorKind {
    /// The metrics label value (`disk_full`, `database_corrupt`, `store_closed`, `database`).
    pub fn label(self) -> &'static str {
        match self {
            StoreErrorKind::DiskFull => "disk_full",
            StoreErrorKind::DatabaseCorrupt => "database_corrupt",
            StoreErrorKind::StoreClosed => "store_closed",
            StoreErrorKind::Database => "database",
        }
    }

    /// The kind in plain words, safe to show to clients (no paths, no SQLite text).
    pub fn describe(self) -> &'static str {
        match self {
            StoreErrorKind::DiskFull => "the task store's disk is full",
            StoreErrorKind::DatabaseCorrupt => "the task store's database is corrupt",
            StoreErrorKind::StoreClosed => "the task store is closed",
            StoreErrorKind::Database => "the task store failed",
        }
    }
}

impl StoreError {
    /// The kind of this failure, read from the typed cause.
    pub fn kind(&self) -> StoreErrorKind {
        use rusqlite::ErrorCode;
        let io_kind = |error: &std::io::Error| {
            if error.kind() == std::io::ErrorKind::StorageFull {
                StoreErrorKind::DiskFull
            } else {
                StoreErrorKind::Database
            }
        };
        match self {
            StoreError::CreateDir { source, .. }
            | StoreError::CreateFile { source, .. }
            | StoreError::SpawnWriter { source, .. } => io_kind(source),
            StoreError::Sqlite { source, .. } => match source.sqlite_error_code() {
                Some(ErrorCode::DiskFull) => StoreErrorKind::DiskFull,
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                    StoreErrorKind::DatabaseCorrupt
                }
                _ => StoreErrorKind::Database,
            },
            StoreError::Corrupt { .. } | StoreError::NewerSchema { .. } => {
                StoreErrorKind::DatabaseCorrupt
            }
            StoreError::Closed { .. } => StoreErrorKind::StoreClosed,
            StoreError::WalUnavailable { .. }
            | StoreError::Encode { .. }
            | StoreError::ReadAborted { .. } => StoreErrorKind::Database,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: std::os::raw::c_int) -> StoreError {
        StoreError::Sqlite {
            path: PathBuf::from("/data/eremetic.db"),
            operation: "committing",
            source: Arc::new(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            )),
        }
    }

    #[test]
    fn full_disk_and_corrupt_database_are_distinct_kinds() {
        let full = sqlite_failure(rusqlite::ffi::SQLITE_FULL);
        let corrupt = sqlite_failure(rusqlite::ffi::SQLITE_CORRUPT);
        assert_eq!(full.kind(), StoreErrorKind::DiskFull);
        assert_eq!(corrupt.kind(), StoreErrorKind::DatabaseCorrupt);
        assert_eq!(
            sqlite_failure(rusqlite::ffi::SQLITE_NOTADB).kind(),
            StoreErrorKind::DatabaseCorrupt
        );
        assert_eq!(
            sqlite_failure(rusqlite::ffi::SQLITE_BUSY).kind(),
            StoreErrorKind::Database
        );
        let enospc = StoreError::CreateFile {
            path: PathBuf::from("/data/eremetic.db"),
            source: Arc::new(std::io::Error::from_raw_os_error(28)),
        };
        assert_eq!(enospc.kind(), StoreErrorKind::DiskFull);
        let closed = StoreError::Closed {
            path: PathBuf::from("/data/eremetic.db"),
            operation: "inserting task",
        };
        assert_eq!(closed.kind().label(), "store_closed");
    }
}
