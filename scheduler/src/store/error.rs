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
