//! The durable task store: SQLite (bundled) in WAL mode with `synchronous=FULL`.
//!
//! Every write goes through one writer thread that applies all requests waiting for it in one
//! transaction (group commit): one fsync is shared by up to 512 requests,
//! and each caller is answered only after that commit returned, so an acknowledged write
//! survives a crash or power loss. Reads use a small pool of read-only connections on tokio's
//! blocking pool; WAL lets them run beside the writer.
//!
//! Tables (schema version in `PRAGMA user_version`, see `schema::MIGRATIONS`): `tasks` (the
//! task as JSON plus the columns queries filter on: submission order `seq`, `name`, `state`,
//! composite group `grp`, `ended_at`), `idempotency` (client keys → task), `callbacks` (the
//! outbox, see [`crate::outbox::Outbox`]), `meta` (single values of the service, by key:
//! [`Store::meta_load`], [`Store::meta_save`], [`Store::meta_clear`]).

mod error;
mod meta;
mod outbox;
mod queries;
mod reader;
mod rows;
mod schema;
mod writer;

use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::Connection;
use time::OffsetDateTime;
use tokio::sync::oneshot;

pub use error::{StoreError, StoreErrorKind};

use crate::outbox::NewCallback;
use crate::task::{StateFilter, Task, TaskId, TaskState};
use outbox::CallbackRow;
use reader::ReadPool;
use rows::TaskRow;
use writer::Message;

/// Key of the framework id a Mesos master granted (kept across restarts so that the service
/// keeps its tasks; cleared when the master removed the framework).
pub const META_FRAMEWORK_ID: &str = "mesos.framework_id";

/// How many ended tasks one purge transaction deletes, so that retention never holds the
/// writer (and the submissions queued behind it) for long.
const PURGE_CHUNK: i64 = 1_000;

/// A page of tasks with their sequence numbers, and the sequence number of the last record
/// read (where the next page starts; `None` when there was no record left).
pub type ScannedPage = (Vec<(u64, Task)>, Option<u64>);

/// How many unfinished tasks one page of [`Store::unfinished`] reads.
pub const UNFINISHED_PAGE: usize = 1_000;

/// What [`Store::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The task was stored with this submission sequence number.
    Inserted {
        /// Position in submission order (strictly increasing, never reused).
        seq: u64,
    },
    /// The idempotency key was used before; nothing was stored. The caller compares
    /// `fingerprint` with its request's to tell a retry from a conflicting reuse of the key.
    Existing {
        /// The task the first request with this key created.
        task_id: TaskId,
        /// The fingerprint stored with the key by the first request.
        fingerprint: String,
    },
}

/// A handle to the task store; clones share the same database, writer thread and readers.
///
/// Use it from inside a tokio runtime (reads run on its blocking pool). The writer thread
/// stops after [`Store::close`] or when the last handle is dropped, in both cases after
/// applying every write queued before.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: Arc<Path>,
    writer: Sender<Message>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<ReadPool>,
    /// One permit per read connection: a read waits for a connection here, asynchronously,
    /// instead of on a blocking-pool thread (a burst of reads would start hundreds).
    read_permits: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating when missing) the database at `path`: missing parent directories are
    /// created with mode 0700 and the file with mode 0600; the schema is migrated to the
    /// current version; the writer thread and the read connections are started.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = schema::open_writer(path)?;
        // Readers open after the writer so that the file is already in WAL mode.
        let readers = Arc::new(ReadPool::open(path, reader::READERS)?);
        let (sender, inbox) = mpsc::channel();
        let thread = writer::spawn(conn, path.to_path_buf(), inbox)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: Arc::from(path),
                writer: sender,
                writer_thread: Mutex::new(Some(thread)),
                readers,
                read_permits: tokio::sync::Semaphore::new(reader::READERS),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stores a new task and, when given, its idempotency key `(key, request fingerprint)`,
    /// in one transaction; returns once committed to disk. When the key exists already,
    /// nothing is stored and [`InsertOutcome::Existing`] names the earlier task.
    pub async fn insert(
        &self,
        task: &Task,
        idempotency: Option<(String, String)>,
    ) -> Result<InsertOutcome, StoreError> {
        let row = self.row_of(task)?;
        self.write("inserting a task", move |conn, path| {
            queries::insert(conn, path, &row, idempotency)
        })
        .await
    }

    /// Replaces the stored record of an existing task and queues `callbacks` for delivery,
    /// atomically; returns once committed. `false` (nothing written) when the task does not
    /// exist any more.
    pub async fn save(&self, task: &Task, callbacks: Vec<NewCallback>) -> Result<bool, StoreError> {
        let row = self.row_of(task)?;
        let callbacks: Vec<CallbackRow> = callbacks.into_iter().map(CallbackRow::from).collect();
        self.write("saving a task", move |conn, path| {
            queries::save(conn, path, &row, &callbacks)
        })
        .await
    }

    /// The task with this id; an error when its stored record is damaged.
    pub async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        // The semaphore is never closed.
        let _permit = self.inner.read_permits.acquire().await;
        // A point read by primary key in WAL mode never waits for the writer and takes tens
        // of microseconds: cheaper on the caller's thread than two thread hand-offs, which
        // were most of the cost of applying a status update.
        self.inner
            .readers
            .with(|conn| queries::get(conn, &self.inner.path, id.as_str()))
    }

    /// The submission sequence number of a task (its place in the queue); `None` when it
    /// does not exist.
    pub async fn seq_of(&self, id: &TaskId) -> Result<Option<u64>, StoreError> {
        let id = id.as_str().to_owned();
        self.read("reading a task's sequence number", move |conn, path| {
            queries::seq_of(conn, path, &id)
        })
        .await
    }

    /// The task an idempotency key was first used for, as [`InsertOutcome::Existing`]; `None`
    /// when the key is unused.
    pub async fn find_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<InsertOutcome>, StoreError> {
        let key = key.to_owned();
        self.read("looking up an idempotency key", move |conn, path| {
            queries::find_key(conn, path, &key)
        })
        .await
    }

    /// One page of [`Store::list`]: the tasks after submission number `after` (0: from the
    /// start), at most `limit`, each with its submission number (pass the last one as the next
    /// `after`).
    pub async fn list_page(
        &self,
        filter: StateFilter,
        name: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Task)>, StoreError> {
        let groups = rows::groups_of(filter);
        let name = name.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("listing tasks", move |conn, path| {
            queries::list_page(conn, path, &groups, name.as_deref(), after, limit)
        })
        .await
    }

    /// The tasks whose current state is in `filter` and, when given, whose name is `name`,
    /// in submission order. A damaged record is skipped with a warning in the log.
    pub async fn list(
        &self,
        filter: StateFilter,
        name: Option<&str>,
    ) -> Result<Vec<Task>, StoreError> {
        let groups = rows::groups_of(filter);
        let name = name.map(str::to_owned);
        let listed = self
            .read("listing tasks", move |conn, path| {
                queries::list(conn, path, &groups, name.as_deref())
            })
            .await?;
        Ok(listed.into_iter().map(|(_, task)| task).collect())
    }

    /// Deletes a task and its idempotency keys (its pending callbacks stay: they carry their
    /// own body). `false` when there was no such task.
    pub async fn delete(&self, id: &TaskId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.write("deleting a task", move |conn, path| {
            queries::delete(conn, path, &id)
        })
        .await
    }

    /// Every task that has not ended (queued or active) with its submission sequence number,
    /// in submission order: what a restarted scheduler must recover. Damaged records are
    /// skipped with a warning.
    pub async fn unfinished(&self) -> Result<Vec<(u64, Task)>, StoreError> {
        let mut all = Vec::new();
        let mut after = 0;
        while let (page, Some(last)) = self.unfinished_page(after, UNFINISHED_PAGE).await? {
            all.extend(page);
            after = last;
        }
        Ok(all)
    }

    /// As [`Store::unfinished`], one page: the tasks among the next `limit` records whose
    /// sequence number is greater than `after`, and the sequence number of the last record
    /// read (where the next page starts; `None` after the last page). A restart reads its
    /// tasks page by page, so that 100,000 of them are never all in memory at once.
    pub async fn unfinished_page(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<ScannedPage, StoreError> {
        let groups = rows::groups_of(StateFilter {
            queued: true,
            active: true,
            terminated: false,
        });
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("reading unfinished tasks", move |conn, path| {
            queries::list_page_scanned(conn, path, &groups, None, after, limit)
        })
        .await
    }

    /// The service value stored under `key` (e.g. [`META_FRAMEWORK_ID`]).
    pub async fn meta_load(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read("reading a meta value", move |conn, path| {
            meta::load(conn, path, &key)
        })
        .await
    }

    /// Stores `value` under `key`, replacing an earlier one; returns once committed to disk.
    pub async fn meta_save(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write("saving a meta value", move |conn, path| {
            meta::save(conn, path, &key, &value)
        })
        .await
    }

    /// Removes the value under `key`; returns once committed. `false` when there was none.
    pub async fn meta_clear(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write("clearing a meta value", move |conn, path| {
            meta::clear(conn, path, &key)
        })
        .await
    }

    /// How many tasks are in each current state (states without tasks are absent; tasks
    /// with an empty status history are not counted).
    pub async fn count_by_state(&self) -> Result<Vec<(TaskState, u64)>, StoreError> {
        self.read("counting tasks by state", queries::count_by_state)
            .await
    }

    /// Retention: deletes the ended tasks whose terminal status is older than `cutoff`
    /// (whole seconds), with their idempotency keys; returns how many. Runs as several small
    /// transactions so that submissions are not held up.
    pub async fn purge_ended_before(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        let cutoff = cutoff.unix_timestamp();
        let mut total = 0;
        loop {
            let deleted = self
                .write("purging ended tasks", move |conn, path| {
                    queries::purge(conn, path, cutoff, PURGE_CHUNK)
                })
                .await?;
            total += deleted;
            if deleted < PURGE_CHUNK.unsigned_abs() {
                return Ok(total);
            }
        }
    }

    /// Stops the writer thread after it applied every write queued before, and waits for
    /// it. Writes through other handles fail with [`StoreError::Closed`] afterwards; reads
    /// keep working until the last handle is dropped.
    pub async fn close(self) {
        let (signal, stopped) = oneshot::channel();
        if self.inner.writer.send(Message::Close(Some(signal))).is_ok() {
            // An error means the thread stopped already, which is what is awaited.
            let _ = stopped.await;
        }
    }

    /// The row of `task`, encoded on the caller's thread rather than the writer's.
    fn row_of(&self, task: &Task) -> Result<TaskRow, StoreError> {
        TaskRow::from_task(task).map_err(|source| StoreError::Encode {
            path: self.inner.path.to_path_buf(),
            task_id: task.id.to_string(),
            source: Arc::new(source),
        })
    }

    /// Queues `work` for the writer thread and waits until its group has been committed.
    async fn write<T, F>(&self, operation: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let closed = || StoreError::Closed {
            path: self.inner.path.to_path_buf(),
            operation,
        };
        let (reply, outcome) = oneshot::channel();
        let path = Arc::clone(&self.inner.path);
        let job = writer::job(move |conn: &Connection| work(conn, &path), reply);
        self.inner
            .writer
            .send(Message::Write(job))
            .map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    /// Runs `read` on a read connection on the blocking thread pool.
    async fn read<T, F>(&self, operation: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.inner.readers);
        let path = Arc::clone(&self.inner.path);
        // The semaphore is never closed.
        let _permit = self.inner.read_permits.acquire().await;
        tokio::task::spawn_blocking(move || readers.with(|conn| read(conn, &path)))
            .await
            .map_err(|error| StoreError::ReadAborted {
                path: self.inner.path.to_path_buf(),
                operation,
                reason: error.to_string(),
            })?
    }
}

impl Drop for Inner {
    /// The last handle is gone: let the writer finish what is queued, then wait for it so
    /// that the database file is closed when the drop returns.
    fn drop(&mut self) {
        if self.writer.send(Message::Close(None)).is_err() {
            return; // Stopped already (closed, or the thread died).
        }
        let thread = self
            .writer_thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!(
                    "database {}: the writer thread panicked",
                    self.path.display()
                );
            }
        }
    }
}
