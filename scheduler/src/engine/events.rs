//! The core's side of the backend's events: placements, status updates (applied per task in
//! arrival order), unknown runs, and the connection to a cluster.

use std::collections::{HashMap, VecDeque};

use tokio::sync::mpsc;

use super::Scheduler;
use crate::backend::{AckToken, BackendEvent, ReportedEnd, RunEnd, RunStatus, StatusUpdate};
use crate::store::META_FRAMEWORK_ID;
use crate::task::TaskState;

/// Status updates applied at the same time at most (by as many workers). Each waits for its
/// task's lock and the store; more would only queue there, holding memory.
const UPDATE_WORKERS: usize = 128;

/// The capacity an emptied mailbox table keeps.
const SHRUNK_CAPACITY: usize = 64;

/// Status updates waiting to be applied, per task in arrival order (one worker at a time
/// applies a task's updates, so a run's updates are applied in the order they came).
#[derive(Default)]
pub(super) struct Mailboxes {
    /// Each task's updates; the front one is being applied or waits in `ready`.
    by_task: HashMap<crate::task::TaskId, VecDeque<StatusUpdate>>,
    /// Tasks whose front update waits for a worker, in the order they became ready.
    ready: VecDeque<crate::task::TaskId>,
    /// Workers running.
    workers: usize,
}

impl Scheduler {
    /// Reads the backend's events until the backend goes away.
    pub(super) async fn event_loop(&self, mut events: mpsc::UnboundedReceiver<BackendEvent>) {
        while let Some(event) = events.recv().await {
            self.on_event(event).await;
        }
        tracing::warn!("the backend stopped reporting events");
    }

    /// Placements, status updates and unknown runs are handed on at once; the connection
    /// events are handled in order before the next event is read (a removed framework's id
    /// must be cleared before the id granted next is stored).
    async fn on_event(&self, event: BackendEvent) {
        match event {
            BackendEvent::Placed(placement) => self.placed_later(placement),
            BackendEvent::Status(update) => self.deliver(update),
            BackendEvent::UnknownRun { run } => {
                let this = self.clone();
                tokio::spawn(async move { this.on_unknown_run(run).await });
            }
            BackendEvent::Connected { framework_id, ack } => {
                self.on_connected(framework_id, ack).await;
            }
            BackendEvent::Disconnected { reason } => {
                tracing::warn!("the backend is disconnected: {reason}");
                self.core().disconnected = Some(reason);
            }
            BackendEvent::FrameworkRemoved { reason } => {
                self.on_framework_removed(reason).await;
            }
        }
    }

    /// Queues a status update in its task's mailbox. A task whose mailbox was empty joins
    /// the ready line, and a worker is started while fewer than [`UPDATE_WORKERS`] run.
    pub(super) fn deliver(&self, update: StatusUpdate) {
        let task = update.run.task.clone();
        let start_worker = {
            let mut mailboxes = self.mailboxes();
            let mailbox = mailboxes.by_task.entry(task.clone()).or_default();
            mailbox.push_back(update);
            if mailbox.len() == 1 {
                mailboxes.ready.push_back(task);
            }
            let start = mailboxes.workers < UPDATE_WORKERS && !mailboxes.ready.is_empty();
            if start {
                mailboxes.workers += 1;
            }
            start
        };
        if start_worker {
            let this = self.clone();
            tokio::spawn(async move { this.apply_ready().await });
        }
    }

    /// A worker: applies the front update of the next ready task, then puts the task back at
    /// the end of the line while it has more; ends when no task is ready.
    async fn apply_ready(&self) {
        loop {
            // The update stays in the mailbox while it is applied, so that updates arriving
            // meanwhile queue behind it instead of making the task ready a second time.
            let next = {
                let mut mailboxes = self.mailboxes();
                let next = loop {
                    let Some(task) = mailboxes.ready.pop_front() else {
                        break None;
                    };
                    let front = mailboxes.by_task.get(&task).and_then(VecDeque::front);
                    if let Some(update) = front.cloned() {
                        break Some((task, update));
                    }
                };
                if next.is_none() {
                    mailboxes.workers -= 1;
                }
                next
            };
            let Some((task, update)) = next else {
                return;
            };
            self.apply(update).await;
            let mut mailboxes = self.mailboxes();
            let Some(mailbox) = mailboxes.by_task.get_mut(&task) else {
                continue;
            };
            mailbox.pop_front();
            if mailbox.is_empty() {
                mailboxes.by_task.remove(&task);
                if mailboxes.by_task.is_empty() {
                    // A burst of updates (100,000 tasks starting) must not keep its table.
                    mailboxes.by_task.shrink_to(SHRUNK_CAPACITY);
                    mailboxes.ready.shrink_to(SHRUNK_CAPACITY);
                }
            } else {
                mailboxes.ready.push_back(task);
            }
        }
    }

    fn mailboxes(&self) -> std::sync::MutexGuard<'_, Mailboxes> {
        self.inner
            .mailboxes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one status update, then hands its acknowledgement back when the change is
    /// stored (or there was nothing to store).
    async fn apply(&self, update: StatusUpdate) {
        let StatusUpdate { run, status, ack } = update;
        let stored = match status {
            RunStatus::Running { started_at } => self.on_running(&run, started_at).await,
            RunStatus::Ended(end) => self.on_end(&run, end).await,
            RunStatus::NotLaunched { reason } => self.on_not_launched(&run, reason).await,
            RunStatus::Unknown => self.on_unknown(&run).await,
            RunStatus::Unreachable { reason } => self.on_unreachable(&run, reason),
        };
        match (stored, ack) {
            (true, Some(ack)) => {
                self.inner.backend.acknowledge(ack);
                // An acknowledged end may give resources back.
                self.inner.wake.notify_one();
            }
            (false, Some(_)) => {
                tracing::error!(run = %run, "the update could not be stored; it is not acknowledged, so the backend reports it again");
            }
            (_, None) => {}
        }
    }

    /// A run the core did not ask about: killed unless it is the current run of a task that
    /// has not ended.
    async fn on_unknown_run(&self, run: crate::backend::RunId) {
        let keep = match self.read(&run.task).await {
            Ok(Some(task)) => !task.is_terminal() && task.current_attempt() == run.attempt,
            Ok(None) => false,
            Err(error) => {
                // Unsure: leave it; the backend reports it again at the next reconciliation.
                tracing::warn!(run = %run, "reading the task of a run found: {error}");
                true
            }
        };
        if !keep {
            tracing::info!(run = %run, "removing a run of a task that ended, was deleted or was relaunched");
            self.inner.backend.kill(&run, std::time::Duration::ZERO);
        }
    }

    /// Stores the framework id the cluster granted before acknowledging it.
    async fn on_connected(&self, framework_id: String, ack: Option<AckToken>) {
        self.core().disconnected = None;
        match self
            .inner
            .store
            .meta_save(META_FRAMEWORK_ID, &framework_id)
            .await
        {
            Ok(()) => {
                tracing::info!(framework_id, "connected to the cluster");
                if let Some(ack) = ack {
                    self.inner.backend.acknowledge(ack);
                }
            }
            Err(error) => {
                tracing::error!(framework_id, "storing the framework id: {error}");
            }
        }
        self.inner.wake.notify_one();
    }

    /// The cluster removed the framework: its id is forgotten and every run it had ends as
    /// lost (retried while the task has retries left).
    async fn on_framework_removed(&self, reason: String) {
        tracing::error!("the cluster removed the framework: {reason}");
        if let Err(error) = self.inner.store.meta_clear(META_FRAMEWORK_ID).await {
            tracing::error!("forgetting the framework id: {error}");
        }
        let runs: Vec<_> = self
            .core()
            .runs
            .values()
            .map(|slot| slot.run.clone())
            .collect();
        for run in runs {
            let end = RunEnd::Reported(ReportedEnd {
                state: TaskState::Lost,
                reason: Some(format!("the cluster removed the framework: {reason}")),
                exit_code: None,
                memory_limited: false,
                started: false,
            });
            self.deliver(StatusUpdate {
                run,
                status: RunStatus::Ended(end),
                ack: None,
            });
        }
    }
}
