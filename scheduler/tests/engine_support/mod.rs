//! Harness of the scheduler core's behaviour tests: a real SQLite store in a temporary
//! directory, the in-memory [`fake::FakeBackend`], and a started [`Scheduler`] driven through
//! the [`TaskService`] trait. Waiting is by polling with a generous deadline; no test asserts
//! on how long something took.

pub(crate) mod fake;
pub(crate) mod scripted;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eremetic::api::parse_v1;
use eremetic::engine::{EngineConfig, Policy, Scheduler};
use eremetic::metrics::Metrics;
use eremetic::service::{Accepted, Submission, SubmitError, TaskService};
use eremetic::store::Store;
use eremetic::task::{CallbackStates, NewTask, Task, TaskId, TaskState};
use tokio::sync::Notify;

use fake::FakeBackend;

/// How long a test waits for a condition before it fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(15);

/// Interval between two polls.
const POLL: Duration = Duration::from_millis(10);

/// The core's settings for the tests: a queue of 100, no retention, 1 default retry.
pub(crate) fn config() -> EngineConfig {
    EngineConfig {
        queue_size: 100,
        kill_grace: Duration::from_secs(1),
        policy: Policy::default(),
        callback_retry_period: Duration::from_secs(3600),
        callback_states: CallbackStates::default(),
        retention: None,
        default_retries: 1,
        unreachable_timeout: Duration::from_secs(300),
    }
}

/// A v1 request body: `name`, `cpu`, 32 MiB, plus `extra` members (`"k":v,...` or empty).
pub(crate) fn body(name: &str, cpu: f64, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    format!(r#"{{"name":"{name}","image":"busybox","command":"true","cpu":{cpu},"mem":32{extra}}}"#)
}

/// The validated request of a body.
pub(crate) fn request(body: &str) -> NewTask {
    parse_v1(body.as_bytes()).unwrap_or_else(|errors| panic!("invalid request {body}: {errors}"))
}

/// The states of a task's history, in order.
pub(crate) fn history(task: &Task) -> Vec<TaskState> {
    task.status.iter().map(|entry| entry.status).collect()
}

/// A started scheduler over a store and a fake backend.
pub(crate) struct Harness {
    pub(crate) scheduler: Scheduler,
    pub(crate) store: Store,
    pub(crate) fake: Arc<FakeBackend>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) callbacks: Arc<Notify>,
    /// Keeps the temporary directory (when the harness made it) until the harness is dropped.
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    /// A scheduler with a fresh store and a fake of `cpus` CPUs, 4096 MiB and 10 host ports.
    pub(crate) async fn start(cpus: f64, config: EngineConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("temp dir: {error}"));
        let fake = FakeBackend::new(cpus, 4096.0, (31000, 31009), &dir.path().join("sandboxes"));
        let mut harness = Harness::start_in(dir.path(), fake, config).await;
        harness._dir = Some(dir);
        harness
    }

    /// A scheduler over the store `eremetic.db` in `dir` (created or reopened) and `fake`.
    pub(crate) async fn start_in(dir: &Path, fake: FakeBackend, config: EngineConfig) -> Harness {
        let store = Store::open(&dir.join("eremetic.db"))
            .unwrap_or_else(|error| panic!("opening the store: {error}"));
        let fake = Arc::new(fake);
        let metrics = Arc::new(Metrics::new());
        let callbacks = Arc::new(Notify::new());
        let scheduler = Scheduler::new(
            store.clone(),
            fake.clone(),
            metrics.clone(),
            callbacks.clone(),
            config,
        );
        scheduler
            .start()
            .await
            .unwrap_or_else(|error| panic!("starting the scheduler: {error}"));
        Harness {
            scheduler,
            store,
            fake,
            metrics,
            callbacks,
            _dir: None,
        }
    }

    /// Submits `body` with an optional idempotency key.
    pub(crate) async fn try_submit(
        &self,
        body: &str,
        key: Option<&str>,
    ) -> Result<Accepted, SubmitError> {
        let submission = Submission {
            task: request(body),
            idempotency_key: key.map(str::to_owned),
        };
        self.scheduler.submit(submission).await
    }

    /// Submits `body`, which must be accepted; returns the new task's id.
    pub(crate) async fn submit(&self, body: &str) -> TaskId {
        let accepted = self
            .try_submit(body, None)
            .await
            .unwrap_or_else(|error| panic!("submitting {body}: {error}"));
        assert!(accepted.created, "a submission without key creates a task");
        accepted.id
    }

    /// The task as the service reports it; it must exist.
    pub(crate) async fn task(&self, id: &TaskId) -> Task {
        self.scheduler
            .get(id)
            .await
            .unwrap_or_else(|error| panic!("reading {id}: {error}"))
            .unwrap_or_else(|| panic!("task {id} does not exist"))
    }

    /// Polls the task until `done` holds; fails with its history after [`DEADLINE`].
    pub(crate) async fn wait_until(
        &self,
        id: &TaskId,
        what: &str,
        done: impl Fn(&Task) -> bool,
    ) -> Task {
        self.wait_until_within(id, what, DEADLINE, done).await
    }

    /// Polls the task until `done` holds; fails with its history after `deadline`.
    pub(crate) async fn wait_until_within(
        &self,
        id: &TaskId,
        what: &str,
        deadline: Duration,
        done: impl Fn(&Task) -> bool,
    ) -> Task {
        let mut last = None;
        let reached = tokio::time::timeout(deadline, async {
            loop {
                let task = self.task(id).await;
                if done(&task) {
                    return task;
                }
                last = Some(task);
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        reached.unwrap_or_else(|_| {
            let seen = last.map(|task| (history(&task), task.failure_reason));
            panic!("task {id} did not reach {what} within {deadline:?}; last seen: {seen:?}")
        })
    }

    /// Polls the task until its current state is `state`.
    pub(crate) async fn wait_state(&self, id: &TaskId, state: TaskState) -> Task {
        self.wait_until(id, state.as_str(), |task| {
            task.current_state() == Some(state)
        })
        .await
    }
}

/// Polls `check` until it holds; fails naming `what` after [`DEADLINE`].
pub(crate) async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let reached = tokio::time::timeout(DEADLINE, async {
        while !check().await {
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{what} did not happen within {DEADLINE:?}");
}
