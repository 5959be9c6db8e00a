//! The scheduler core: accepts tasks, keeps them durably, queues them, launches them on a
//! [`Backend`] when resources allow, follows them to their end and records every state change
//! (store, events, metrics, callbacks). It implements [`TaskService`] for the HTTP layer.
//!
//! Concurrency: every change of a task's record happens under that task's lock (a striped
//! async mutex) as read-modify-write against the store, so status updates, kills and deletes
//! never lose each other's writes (Eremetic's E-26). The queue and the table of runs live
//! behind one short-lived std mutex that is never held across an `.await`.

mod admission;
mod events;
mod outcome;
mod policy;
mod queue;
mod recover;
mod run;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::{broadcast, Notify};

pub use outcome::{verdict, ReportedEnd, RunEnd, StopCause, Verdict};
pub use policy::Policy;
pub use queue::{Queue, QueueEntry};

use crate::backend::{Backend, LogSource, Resources, RunId};
use crate::callback;
use crate::metrics::Metrics;
use crate::service::{
    Accepted, ClusterStatus, DeleteError, KillError, LogLocation, LogStream, ReadError, Submission,
    SubmitError, TaskEvent, TaskService, TaskUsage,
};
use crate::store::{Store, StoreError};
use crate::task::{CallbackStates, StateFilter, Task, TaskId, TaskState};

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most tasks waiting in the queue; further submissions get HTTP 503.
    pub queue_size: usize,
    /// How long a stopped container gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// What tasks may ask of the host.
    pub policy: Policy,
    /// How long a callback is retried before it is abandoned.
    pub callback_retry_period: Duration,
    /// Which status changes are POSTed to a task's `callback_uri` when its request does not
    /// say (`callback_states`).
    pub callback_states: CallbackStates,
    /// How long ended tasks are kept; `None`: until deleted.
    pub retention: Option<Duration>,
    /// Relaunch attempts for tasks whose request does not say (`default_retries`).
    pub default_retries: u32,
    /// How long a run whose agent cannot be reached is waited for before the task is
    /// relaunched as a new attempt (`unreachable_timeout`).
    pub unreachable_timeout: Duration,
}

/// Why the core could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The backend could not start, or could not be asked about the runs of the previous
    /// instance.
    #[error("finding the containers of the previous run: {0}")]
    Backend(String),
}

/// Number of stripes of the per-task lock.
const LOCK_STRIPES: usize = 1024;

/// Capacity of the event broadcast: subscribers further behind get a "lagged" notice.
const EVENT_BUFFER: usize = 4096;

/// The scheduler core. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    backend: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    events: broadcast::Sender<TaskEvent>,
    callbacks: Arc<Notify>,
    config: EngineConfig,
    core: Mutex<Core>,
    wake: Notify,
    locks: Vec<tokio::sync::Mutex<()>>,
    /// Status updates waiting to be applied.
    mailboxes: Mutex<events::Mailboxes>,
}

#[derive(Default)]
struct Core {
    queue: Queue,
    /// Submissions accepted into the queue's capacity but not yet queued (being stored).
    admitting: usize,
    runs: HashMap<TaskId, RunSlot>,
    /// Why the backend holds every launch back right now (shown on queued tasks).
    blocked: Option<String>,
    /// Why the backend is disconnected from its cluster, while it is.
    disconnected: Option<String>,
}

/// A run the backend holds resources for: placed, launching, running or being stopped.
struct RunSlot {
    /// The run.
    run: RunId,
    /// Submission order of the task (for a requeue).
    seq: u64,
    /// When the task was queued, for the launch latency metric (taken at `TASK_RUNNING`;
    /// `None` for runs found again after a restart).
    queued_at: Option<Instant>,
    /// Why the scheduler stops it, if it does.
    cause: StopCause,
    /// Whether the task's timeout is being watched.
    deadline_armed: bool,
    /// Whether kills are being sent until the run ends.
    killing: bool,
    /// Since when the run's agent cannot be reached, and why (cleared by a `Running`
    /// update).
    // Boxed: rare, and the run table holds one slot per active task.
    unreachable_since: Option<Box<(Instant, String)>>,
}

impl RunSlot {
    fn new(run: RunId, seq: u64, queued_at: Option<Instant>, cause: StopCause) -> RunSlot {
        RunSlot {
            run,
            seq,
            queued_at,
            cause,
            deadline_armed: false,
            killing: false,
            unreachable_since: None,
        }
    }
}

/// A status change to record.
struct Change {
    state: TaskState,
    exit_code: Option<i32>,
    reason: Option<String>,
}

impl Change {
    fn to(state: TaskState) -> Change {
        Change {
            state,
            exit_code: None,
            reason: None,
        }
    }

    fn because(state: TaskState, reason: impl Into<String>) -> Change {
        Change {
            state,
            exit_code: None,
            reason: Some(reason.into()),
        }
    }
}

impl Scheduler {
    /// A core over `store` and `backend`. `callbacks` is woken after callbacks are enqueued
    /// (the callback worker's notifier). Call [`Scheduler::start`] to recover and dispatch.
    pub fn new(
        store: Store,
        backend: Arc<dyn Backend>,
        metrics: Arc<Metrics>,
        callbacks: Arc<Notify>,
        config: EngineConfig,
    ) -> Scheduler {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let locks = (0..LOCK_STRIPES)
            .map(|_| tokio::sync::Mutex::new(()))
            .collect();
        Scheduler {
            inner: Arc::new(Inner {
                store,
                backend,
                metrics,
                events,
                callbacks,
                config,
                core: Mutex::new(Core::default()),
                wake: Notify::new(),
                locks,
                mailboxes: Mutex::new(events::Mailboxes::default()),
            }),
        }
    }

    /// Starts the backend and recovers the tasks of a previous run (queued tasks back into
    /// the queue, the backend asked about the others: running ones are followed again,
    /// vanished ones lost and retried), then starts the dispatcher and the retention sweeper
    /// in the background.
    pub async fn start(&self) -> Result<(), StartError> {
        self.init_metrics().await?;
        recover::recover(self).await?;
        let dispatcher = self.clone();
        tokio::spawn(async move { dispatcher.dispatch_loop().await });
        if let Some(retention) = self.inner.config.retention {
            let sweeper = self.clone();
            tokio::spawn(async move { sweeper.retention_loop(retention).await });
        }
        Ok(())
    }

    async fn init_metrics(&self) -> Result<(), crate::store::StoreError> {
        for state in TaskState::ALL {
            self.inner.metrics.tasks_in(state).set(0);
        }
        for (state, count) in self.inner.store.count_by_state().await? {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.inner.metrics.tasks_in(state).set(count);
            if state == TaskState::Running {
                self.inner.metrics.tasks_running.set(count);
            }
        }
        Ok(())
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.inner
            .core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn lock_task(&self, id: &TaskId) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = fnv1a(id.as_str().as_bytes()) as usize % LOCK_STRIPES;
        self.inner.locks[stripe].lock().await
    }

    /// Records a status change of `task` (whose lock the caller holds): history, store (with
    /// the callback in the same transaction), metrics, event. Returns `false` when the task was
    /// deleted meanwhile.
    async fn record(&self, task: &mut Task, change: Change) -> Result<bool, StoreError> {
        self.record_all(task, vec![change]).await
    }

    /// Records several status changes of `task` in one store transaction (a failed attempt
    /// and its requeue must not be split by a crash).
    async fn record_all(&self, task: &mut Task, changes: Vec<Change>) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut callbacks = Vec::new();
        let mut applied = Vec::with_capacity(changes.len());
        let last = changes.len().saturating_sub(1);
        let posted = task
            .request
            .callback_states
            .unwrap_or(self.inner.config.callback_states);
        for (index, change) in changes.into_iter().enumerate() {
            let previous = task.current_state();
            task.push_status(change.state, now);
            if change.exit_code.is_some() {
                task.exit_code = change.exit_code;
            }
            // A reason explains the current state; a task that runs or finishes after an
            // earlier failed attempt no longer has one.
            if change.reason.is_some()
                || matches!(change.state, TaskState::Running | TaskState::Finished)
            {
                task.failure_reason.clone_from(&change.reason);
            }
            // In `terminal` mode (Eremetic's), only the end is posted: a terminal state that
            // is not the batch's last change is a failed attempt requeued in the same
            // transaction, which a receiver must not take for the end.
            let wanted = match posted {
                CallbackStates::All => true,
                CallbackStates::Terminal => index == last && change.state.is_terminal(),
            };
            if let (true, Some(url)) = (wanted, &task.request.callback_uri) {
                callbacks.push(callback::new_callback(
                    url,
                    &task.id,
                    change.state,
                    now,
                    task.exit_code,
                    change.reason.as_deref(),
                    self.inner.config.callback_retry_period,
                ));
            }
            applied.push((previous, change.state, task.exit_code, change.reason));
        }
        let has_callbacks = !callbacks.is_empty();
        let saved = self.inner.store.save(task, callbacks).await?;
        if !saved {
            return Ok(false);
        }
        if has_callbacks {
            self.inner.callbacks.notify_one();
        }
        for (previous, state, exit_code, reason) in applied {
            self.count_transition(previous, state);
            let _ = self.inner.events.send(TaskEvent {
                task_id: task.id.clone(),
                name: task.name.clone(),
                status: state,
                time: now,
                exit_code,
                reason,
            });
        }
        Ok(true)
    }

    fn count_transition(&self, from: Option<TaskState>, to: TaskState) {
        let metrics = &self.inner.metrics;
        if let Some(from) = from {
            metrics.tasks_in(from).dec();
            if from == TaskState::Running {
                metrics.tasks_running.dec();
            }
        }
        metrics.tasks_in(to).inc();
        if to == TaskState::Running {
            metrics.tasks_running.inc();
        }
    }

    fn queue_entry(&self, seq: u64, task: &Task, not_before: Option<Instant>) -> QueueEntry {
        QueueEntry {
            seq,
            run: RunId::new(task.id.clone(), task.next_attempt()),
            needs: Resources::of(&task.request),
            constraints: Arc::from(task.request.agent_constraints.clone()),
            labels: Arc::new(task.request.labels.clone()),
            queued_at: Instant::now(),
            not_before,
        }
    }

    fn enqueue(&self, entry: QueueEntry) {
        let depth = {
            let mut core = self.core();
            core.queue.push(entry);
            core.queue.len()
        };
        self.inner.metrics.queue_depth.set(depth as i64);
        self.inner.wake.notify_one();
    }

    /// Adds what describes the present moment to a task read for a client: why it waits, if
    /// it is queued while launches are held back or its agent cannot be reached, and its
    /// dropped output while it runs.
    async fn annotate(&self, task: &mut Task) {
        if task.current_state() == Some(TaskState::Queued) {
            task.waiting_reason = self
                .waiting_reason()
                .or_else(|| self.inner.backend.waiting_reason(&task.id));
        } else if !task.is_terminal() {
            task.waiting_reason = self.unreachable_reason(&task.id);
            if task.sandbox_path.is_some() {
                let dropped = self.inner.backend.output_dropped(&task.id).await;
                task.stdout_dropped_bytes = dropped.stdout;
                task.stderr_dropped_bytes = dropped.stderr;
            }
        }
    }

    /// [`Scheduler::annotate`] for a page of tasks: only the waiting reason (reading output
    /// counters for every task of a long list would cost a file read each).
    fn annotate_waiting<'a>(&self, tasks: impl IntoIterator<Item = &'a mut Task>) {
        let reason = self.waiting_reason();
        for task in tasks {
            if task.current_state() == Some(TaskState::Queued) {
                task.waiting_reason = reason
                    .clone()
                    .or_else(|| self.inner.backend.waiting_reason(&task.id));
            } else if !task.is_terminal() {
                task.waiting_reason = self.unreachable_reason(&task.id);
            }
        }
    }

    /// Why every queued task waits right now, if something holds all launches back.
    fn waiting_reason(&self) -> Option<String> {
        let core = self.core();
        match (&core.disconnected, &core.blocked) {
            (Some(why), _) => Some(format!("the backend is disconnected: {why}")),
            (None, blocked) => blocked.clone(),
        }
    }

    async fn read(&self, id: &TaskId) -> Result<Option<Task>, ReadError> {
        self.inner.store.get(id).await.map_err(ReadError::from)
    }
}

/// FNV-1a: a stable, dependency-free hash for lock striping.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[async_trait]
impl TaskService for Scheduler {
    async fn submit(&self, submission: Submission) -> Result<Accepted, SubmitError> {
        let mut request = submission.task;
        // What gets stored (and mounted) are the resolved host paths.
        request.volumes = self
            .inner
            .config
            .policy
            .check(&request)
            .map_err(SubmitError::Forbidden)?;
        self.inner
            .backend
            .admissible(&request)
            .map_err(SubmitError::Unsatisfiable)?;
        let capacity = self.inner.config.queue_size;
        let reserved = {
            let mut core = self.core();
            let free = core.queue.len() + core.admitting < capacity;
            if free {
                core.admitting += 1;
            }
            free
        };
        if !reserved {
            // A client retrying with its idempotency key gets its task, full queue or not.
            if let Some(earlier) = self
                .earlier_submission(&submission.idempotency_key, &request)
                .await
            {
                return earlier;
            }
            self.inner.metrics.submissions_queue_full.inc();
            return Err(SubmitError::QueueFull { capacity });
        }
        // Storing and queueing run to completion even when the client goes away meanwhile
        // (the HTTP server drops the handler): a committed task must reach the queue, and the
        // slot reserved above must be given back.
        let this = self.clone();
        let key = submission.idempotency_key;
        tokio::spawn(async move { this.admit(request, key).await })
            .await
            .map_err(|error| SubmitError::Internal(format!("admitting the task: {error}")))?
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, ReadError> {
        let Some(mut task) = self.read(id).await? else {
            return Ok(None);
        };
        self.annotate(&mut task).await;
        Ok(Some(task))
    }

    async fn list(&self, filter: StateFilter, name: Option<&str>) -> Result<Vec<Task>, ReadError> {
        let mut tasks = self
            .inner
            .store
            .list(filter, name)
            .await
            .map_err(ReadError::from)?;
        self.annotate_waiting(&mut tasks);
        Ok(tasks)
    }

    async fn list_page(
        &self,
        filter: StateFilter,
        name: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Task)>, ReadError> {
        let mut page = self
            .inner
            .store
            .list_page(filter, name, after, limit)
            .await
            .map_err(ReadError::from)?;
        self.annotate_waiting(page.iter_mut().map(|(_, task)| task));
        Ok(page)
    }

    async fn kill(&self, id: &TaskId) -> Result<(), KillError> {
        let _guard = self.lock_task(id).await;
        let mut task = self
            .read(id)
            .await
            .map_err(KillError::from)?
            .ok_or_else(|| KillError::NotFound(id.clone()))?;
        let state = task.current_state().unwrap_or(TaskState::Lost);
        if task.is_terminal() {
            return Err(KillError::AlreadyTerminal {
                id: id.clone(),
                state,
            });
        }
        let was_queued = {
            let mut core = self.core();
            let removed = core.queue.remove(id);
            self.inner.metrics.queue_depth.set(core.queue.len() as i64);
            removed
        };
        if was_queued || state == TaskState::Queued {
            // Never launched: it ends now (Eremetic waited for the next offer, E-9).
            let change = Change::because(TaskState::Killed, "killed on request before it started");
            self.record(&mut task, change)
                .await
                .map_err(|error| KillError::Store(error.into()))?;
            self.inner.metrics.tasks_terminated_final(TaskState::Killed);
            return Ok(());
        }
        if state != TaskState::Terminating {
            self.record(&mut task, Change::to(TaskState::Terminating))
                .await
                .map_err(|error| KillError::Store(error.into()))?;
        }
        self.stop_run(id, StopCause::Killed);
        Ok(())
    }

    async fn delete(&self, id: &TaskId) -> Result<(), DeleteError> {
        let _guard = self.lock_task(id).await;
        let task = self
            .read(id)
            .await
            .map_err(DeleteError::from)?
            .ok_or_else(|| DeleteError::NotFound(id.clone()))?;
        if !task.is_terminal() {
            return Err(DeleteError::NotTerminal {
                id: id.clone(),
                state: task.current_state().unwrap_or(TaskState::Queued),
            });
        }
        let deleted = self
            .inner
            .store
            .delete(id)
            .await
            .map_err(|error| DeleteError::Store(error.into()))?;
        if !deleted {
            return Err(DeleteError::NotFound(id.clone()));
        }
        if let Some(state) = task.current_state() {
            self.inner.metrics.tasks_in(state).dec();
        }
        if let Err(error) = self.inner.backend.remove_sandbox(id).await {
            tracing::warn!(task = %id, "removing the sandbox of a deleted task: {error}");
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.inner.events.subscribe()
    }

    fn cluster(&self) -> ClusterStatus {
        let backend = &self.inner.backend;
        let (queued, running) = {
            let core = self.core();
            (core.queue.len(), core.runs.len())
        };
        ClusterStatus {
            backend: backend.name().to_owned(),
            total: backend.total(),
            free: backend.free(),
            queued,
            running,
            view: backend.cluster_view(),
        }
    }

    async fn usage(&self, id: &TaskId) -> Result<Option<TaskUsage>, ReadError> {
        let Some(task) = self.read(id).await? else {
            return Ok(None);
        };
        if !matches!(
            task.current_state(),
            Some(TaskState::Running | TaskState::Terminating)
        ) {
            return Ok(None);
        }
        let run = RunId::new(task.id.clone(), task.current_attempt());
        match self.inner.backend.usage(&run).await {
            Ok(stats) => Ok(stats.map(|stats| TaskUsage {
                cpu_seconds: stats.cpu_total_ns as f64 / 1e9,
                memory_bytes: stats.memory_usage_bytes,
                memory_limit_bytes: stats.memory_limit_bytes,
            })),
            Err(error) => Err(ReadError::Other(error.to_string())),
        }
    }

    async fn log_location(
        &self,
        id: &TaskId,
        stream: LogStream,
    ) -> Result<Option<LogLocation>, ReadError> {
        let Some(task) = self.read(id).await? else {
            return Ok(None);
        };
        let active = !task.is_terminal();
        Ok(Some(match self.inner.backend.log_source(&task) {
            None => LogLocation::NotStarted,
            Some(LogSource::LocalSandbox(sandbox)) => LogLocation::File {
                path: sandbox.join(stream.file_name()),
                active,
            },
            Some(LogSource::Agent { url, path }) => LogLocation::Agent {
                url,
                path: format!("{}/{}", path.trim_end_matches('/'), stream.file_name()),
                active,
            },
        }))
    }
}

impl Scheduler {
    /// Removes the sandboxes of tasks that are no longer stored.
    async fn remove_orphan_sandboxes(&self) {
        let backend = &self.inner.backend;
        let tasks = match backend.sandboxes().await {
            Ok(tasks) => tasks,
            Err(error) => {
                tracing::warn!("{error}");
                return;
            }
        };
        for id in tasks {
            if let Ok(None) = self.inner.store.get(&id).await {
                if let Err(error) = backend.remove_sandbox(&id).await {
                    tracing::warn!(task = %id, "{error}");
                }
            }
        }
    }

    async fn retention_loop(&self, retention: Duration) {
        // Sweep often enough for short retention periods, at most every ten minutes.
        let period = retention.clamp(Duration::from_secs(1), Duration::from_secs(600));
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let cutoff = OffsetDateTime::now_utc() - retention;
            match self.inner.store.purge_ended_before(cutoff).await {
                Ok(0) => {}
                Ok(purged) => {
                    tracing::info!(
                        purged,
                        "deleted ended tasks older than the retention period"
                    );
                    if let Err(error) = self.init_metrics().await {
                        tracing::warn!("recounting tasks after retention: {error}");
                    }
                    self.remove_orphan_sandboxes().await;
                }
                Err(error) => tracing::warn!("applying the retention period: {error}"),
            }
        }
    }
}
