//! The contract between the HTTP layer and the scheduler core.
//!
//! [`TaskService`] is everything the REST API needs from the scheduler: submit, read, list,
//! kill and delete tasks, follow their state changes and find their log files. The core
//! ([`crate::engine::Scheduler`]) implements it against the store and a backend; the HTTP
//! layer depends only on this trait, so that its handlers are testable without Docker.

use std::path::PathBuf;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::store::{StoreError, StoreErrorKind};
use crate::task::{NewTask, StateFilter, Task, TaskId, TaskState};

/// A failure of the task store behind a service call, with its typed cause kept: the message
/// says only the kind in plain words (it may reach clients), [`std::error::Error::source`]
/// is the [`StoreError`] with the database path, the operation and the SQLite error (for
/// logs), and [`StoreFailure::kind`] tells a full disk from a corrupt database (for metrics).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.kind().describe())]
pub struct StoreFailure(#[source] pub StoreError);

impl StoreFailure {
    /// The kind of the underlying store error.
    pub fn kind(&self) -> StoreErrorKind {
        self.0.kind()
    }
}

impl From<StoreError> for StoreFailure {
    fn from(error: StoreError) -> Self {
        StoreFailure(error)
    }
}

/// Equal when of the same kind with the same detail (store errors hold I/O errors, which have
/// no equality of their own).
impl PartialEq for StoreFailure {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.0.to_string() == other.0.to_string()
    }
}

/// A validated request and the client's `Idempotency-Key`, if any.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The validated request.
    pub task: NewTask,
    /// The `Idempotency-Key` header: a retried POST with the same key returns the task the first
    /// POST created instead of creating a second one.
    pub idempotency_key: Option<String>,
}

/// The outcome of an accepted submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The task's id.
    pub id: TaskId,
    /// `false` when an earlier submission with the same idempotency key created the task.
    pub created: bool,
}

/// Why a submission was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    /// The queue holds `capacity` tasks already (HTTP 503).
    #[error("task queue is full ({capacity} tasks queued)")]
    QueueFull {
        /// The configured `queue_size`.
        capacity: usize,
    },
    /// The operator's policy forbids the request (HTTP 403); the text names the field and rule.
    #[error("{0}")]
    Forbidden(String),
    /// The task can never run with this server's resources (HTTP 422); the text says why.
    #[error("{0}")]
    Unsatisfiable(String),
    /// The idempotency key was used before for a different request (HTTP 422).
    #[error("idempotency key {key:?} was already used for a different request (task {existing})")]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The task the first request created.
        existing: TaskId,
    },
    /// The task store failed (HTTP 500).
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// The server could not store or queue the task for another reason (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// Why a kill was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KillError {
    /// No task has this id (HTTP 404).
    #[error("no task with id {0}")]
    NotFound(TaskId),
    /// The task has already ended (HTTP 409).
    #[error("task {id} has already ended ({state}); you can not kill that which is already dead")]
    AlreadyTerminal {
        /// The task.
        id: TaskId,
        /// Its final state.
        state: TaskState,
    },
    /// The task store failed (HTTP 500).
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// The kill could not be recorded or sent for another reason (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// Why a delete was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeleteError {
    /// No task has this id (HTTP 404).
    #[error("no task with id {0}")]
    NotFound(TaskId),
    /// The task has not ended; kill it first (HTTP 409).
    #[error("Cannot delete the task [{id}]. As it is still {state}; kill it first.")]
    NotTerminal {
        /// The task.
        id: TaskId,
        /// Its current state.
        state: TaskState,
    },
    /// The task store failed (HTTP 500).
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// The record could not be deleted for another reason (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// A read failed (HTTP 500).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    /// The task store failed.
    #[error(transparent)]
    Store(#[from] StoreFailure),
    /// Another source failed (the backend's usage statistics, say); the text says what.
    #[error("{0}")]
    Other(String),
}

/// A [`ReadError::Other`] with this text. `ReadError` was a tuple struct of its message; this
/// constructor keeps `ReadError(text)` working in existing [`TaskService`] implementations.
#[allow(non_snake_case)]
pub fn ReadError(message: String) -> ReadError {
    ReadError::Other(message)
}

impl From<StoreError> for ReadError {
    fn from(error: StoreError) -> Self {
        ReadError::Store(StoreFailure(error))
    }
}

impl From<ReadError> for KillError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Store(failure) => KillError::Store(failure),
            ReadError::Other(message) => KillError::Internal(message),
        }
    }
}

impl From<ReadError> for DeleteError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Store(failure) => DeleteError::Store(failure),
            ReadError::Other(message) => DeleteError::Internal(message),
        }
    }
}

/// One state change of a task, as broadcast to `/api/v1/events` subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvent {
    /// The task.
    pub task_id: TaskId,
    /// The task's name.
    pub name: String,
    /// The new state.
    pub status: TaskState,
    /// When the scheduler recorded it.
    pub time: OffsetDateTime,
    /// The command's exit code, when known.
    pub exit_code: Option<i32>,
    /// Why the task failed, was lost or errored, when known.
    pub reason: Option<String>,
}

/// Which captured output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output (file `stdout` in the sandbox).
    Stdout,
    /// Standard error (file `stderr` in the sandbox).
    Stderr,
}

impl LogStream {
    /// The file name in the sandbox (`stdout`, `stderr`).
    pub fn file_name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// Where a task's output is, for the log endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLocation {
    /// The task has not started yet: no output so far (HTTP 204 without `follow`).
    NotStarted,
    /// The output file (it may not exist yet when the container has written nothing).
    File {
        /// Absolute path of the file.
        path: PathBuf,
        /// Whether the task can still write to it (a follower keeps reading while true).
        active: bool,
    },
    /// The output file is on a Mesos agent, served by its `/files` API.
    Agent {
        /// The agent's HTTP address (`http://host:5051`).
        url: String,
        /// Absolute path of the file on the agent.
        path: String,
        /// Whether the task can still write to it.
        active: bool,
    },
}

/// The backend's resources and the queue, for the cluster overview.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterStatus {
    /// The backend's name (`local`).
    pub backend: String,
    /// Everything the backend has.
    pub total: crate::backend::Resources,
    /// What is free now.
    pub free: crate::backend::Resources,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// Tasks holding resources (launching, running or stopping).
    pub running: usize,
    /// What the backend shows beyond its capacity (engine, or master, connection, agents).
    pub view: crate::backend::ClusterView,
}

/// Resource usage of a running task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskUsage {
    /// CPU time used so far, in seconds.
    pub cpu_seconds: f64,
    /// Memory in use, in bytes.
    pub memory_bytes: u64,
    /// The memory limit, in bytes.
    pub memory_limit_bytes: u64,
}

/// What the REST API needs from the scheduler core.
#[async_trait]
pub trait TaskService: Send + Sync + 'static {
    /// Validated request → durably stored, queued task. Returns only after the task is
    /// committed to disk.
    async fn submit(&self, submission: Submission) -> Result<Accepted, SubmitError>;

    /// The task with this id, `None` when there is none.
    async fn get(&self, id: &TaskId) -> Result<Option<Task>, ReadError>;

    /// The tasks whose current state matches `filter` and, when given, whose name is `name`,
    /// oldest submission first.
    async fn list(&self, filter: StateFilter, name: Option<&str>) -> Result<Vec<Task>, ReadError>;

    /// One page of [`TaskService::list`]: the matching tasks submitted after position `after`
    /// (0: from the start), at most `limit`, each with its position (pass the last one as the
    /// next `after`). Lets a long list be sent without holding it in memory.
    async fn list_page(
        &self,
        filter: StateFilter,
        name: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Task)>, ReadError> {
        let tasks = self.list(filter, name).await?;
        let skip = usize::try_from(after).unwrap_or(usize::MAX);
        Ok((1u64..).zip(tasks).skip(skip).take(limit).collect())
    }

    /// Kills a task: a queued task ends as `TASK_KILLED` at once; a running one is stopped with
    /// the grace period and ends as `TASK_KILLED` when its container has stopped.
    async fn kill(&self, id: &TaskId) -> Result<(), KillError>;

    /// Deletes the record of a task that has ended.
    async fn delete(&self, id: &TaskId) -> Result<(), DeleteError>;

    /// State changes from now on. A receiver that falls behind gets
    /// [`broadcast::error::RecvError::Lagged`].
    fn subscribe(&self) -> broadcast::Receiver<TaskEvent>;

    /// The backend's capacity and usage and the queue depth.
    fn cluster(&self) -> ClusterStatus;

    /// Resource usage of a task while it runs; `None` when it is not running (or unknown).
    async fn usage(&self, id: &TaskId) -> Result<Option<TaskUsage>, ReadError>;

    /// Where a task's output stream is; `None` when there is no such task.
    async fn log_location(
        &self,
        id: &TaskId,
        stream: LogStream,
    ) -> Result<Option<LogLocation>, ReadError>;
}
