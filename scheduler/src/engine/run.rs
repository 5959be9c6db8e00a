//! Placing and launching queued tasks: the dispatcher loop hands the queue to the backend as
//! demand, stores `TASK_STAGING` for each placement before the launch (write-ahead), and
//! stops runs on a kill or when their timeout expires, repeating the kill until the run ends.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::{Change, QueueEntry, RunSlot, Scheduler, StopCause};
use crate::backend::{Placement, RunId};
use crate::task::{Task, TaskId, TaskState, DEFAULT_MAX_RETRIES};

/// How long the dispatcher sleeps when nothing wakes it (a safety net; every event that can
/// free resources or add work wakes it at once).
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// How often the dispatcher looks again while the backend holds launches back (the free space
/// of the data directory comes back without any event that would wake it).
const BLOCKED_RECHECK: Duration = Duration::from_secs(1);

/// How long a task waits before it is launched again when the backend could not be reached.
pub(super) const UNREACHABLE_BACKOFF: Duration = Duration::from_secs(5);

/// How long after a kill it is sent again while the run has not ended: the grace period plus
/// this.
const KILL_RESEND_AFTER_GRACE: Duration = Duration::from_secs(5);

/// The outcome of recording `TASK_STAGING` before a launch.
enum Staged {
    /// Recorded: launch it.
    Ready(Box<Task>),
    /// Ended, deleted or relaunched meanwhile: do not launch.
    Gone,
    /// The store failed: the task stays queued.
    StoreFailed,
}

/// Dispatch rounds longer than this are followed by a rest as long as the round.
const PACE_ABOVE: Duration = Duration::from_millis(1);
/// The longest rest after a dispatch round.
const PACE_MAX: Duration = Duration::from_millis(50);

/// Back-off before relaunching a task whose start failed: 1 s, doubling, at most 60 s.
pub(super) fn retry_backoff(retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(6);
    Duration::from_secs(1u64 << exponent).min(Duration::from_secs(60))
}

impl Scheduler {
    pub(super) async fn dispatch_loop(&self) {
        loop {
            let round = Instant::now();
            for (entry, placement) in self.offer_demand() {
                let this = self.clone();
                tokio::spawn(async move { this.launch(entry, placement).await });
            }
            // A round holds the core lock for a time that grows with the queue; while
            // submissions keep waking the loop, rest as long as the round took, so that
            // dispatching takes at most about half of the time (submissions batch up meanwhile).
            let took = round.elapsed();
            if took > PACE_ABOVE {
                tokio::time::sleep(took.min(PACE_MAX)).await;
            }
            let now = Instant::now();
            let (next, blocked) = {
                let core = self.core();
                (core.queue.next_wakeup(now), core.blocked.is_some())
            };
            let idle = if blocked {
                BLOCKED_RECHECK
            } else {
                IDLE_RECHECK
            };
            let sleep = next.map_or(idle, |at| at - now).min(idle);
            tokio::select! {
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Hands the queue to the backend and takes the placements it decided at once.
    fn offer_demand(&self) -> Vec<(QueueEntry, Placement)> {
        let backend = &self.inner.backend;
        if self.core().queue.is_empty() {
            return Vec::new();
        }
        // Asked without the core lock: it may read the file system.
        let blocker = backend.launch_blocker();
        let mut core = self.core();
        if core.blocked != blocker {
            match &blocker {
                Some(reason) => tracing::warn!("launches wait: {reason}"),
                None => tracing::info!("launches resume: the backend no longer holds them back"),
            }
            core.blocked.clone_from(&blocker);
        }
        if blocker.is_some() || core.queue.is_empty() {
            return Vec::new();
        }
        let offered = core.queue.offer(|demand| backend.offer_demand(demand));
        let delayed = core.queue.take_delayed();
        if delayed > 0 {
            self.inner.metrics.tasks_delayed.inc_by(delayed);
        }
        for (entry, placement) in &offered.placed {
            let slot = RunSlot::new(
                placement.run.clone(),
                entry.seq,
                Some(entry.queued_at),
                StopCause::None,
            );
            core.runs.insert(entry.id().clone(), slot);
        }
        self.inner.metrics.queue_depth.set(core.queue.len() as i64);
        drop(core);
        for stale in offered.stale {
            backend.abandon(stale);
        }
        offered.placed
    }

    /// A placement the backend reported later than the demand was offered (offers).
    pub(super) fn placed_later(&self, placement: Placement) {
        let entry = {
            let mut core = self.core();
            let entry = core.queue.take_placed(&placement.run);
            if let Some(entry) = &entry {
                let slot = RunSlot::new(
                    placement.run.clone(),
                    entry.seq,
                    Some(entry.queued_at),
                    StopCause::None,
                );
                core.runs.insert(entry.id().clone(), slot);
                self.inner.metrics.queue_depth.set(core.queue.len() as i64);
            }
            entry
        };
        match entry {
            Some(entry) => {
                let this = self.clone();
                tokio::spawn(async move { this.launch(entry, placement).await });
            }
            // Killed or relaunched meanwhile.
            None => self.inner.backend.abandon(placement),
        }
    }

    /// Forgets the run slot of a task (its run ended or never launched) and wakes the
    /// dispatcher: resources may be free again.
    pub(super) fn forget_run(&self, run: &RunId) {
        {
            let mut core = self.core();
            if core
                .runs
                .get(&run.task)
                .is_some_and(|slot| slot.run == *run)
            {
                core.runs.remove(&run.task);
            }
        }
        self.inner.wake.notify_one();
    }

    /// Gives a placement back and forgets its slot.
    fn abandon(&self, placement: Placement) {
        let run = placement.run.clone();
        self.inner.backend.abandon(placement);
        self.forget_run(&run);
    }

    async fn launch(&self, entry: QueueEntry, placement: Placement) {
        let id = entry.id().clone();
        let task = match self.stage(&placement).await {
            Staged::Ready(task) => *task,
            Staged::Gone => {
                self.abandon(placement);
                return;
            }
            Staged::StoreFailed => {
                // The task is still queued in the store: keep it queued here too.
                self.abandon(placement);
                let mut entry = entry;
                entry.not_before = Some(Instant::now() + UNREACHABLE_BACKOFF);
                self.enqueue(entry);
                return;
            }
        };
        // The host paths are resolved again right before the launch: a link planted in an
        // allowed directory since the submission must not widen what is mounted.
        let mut task = task;
        match self.inner.config.policy.check(&task.request) {
            Ok(volumes) => task.request.volumes = volumes,
            Err(why) => {
                self.abandon(placement);
                let reason = format!("refused at launch by the operator's policy: {why}");
                self.end_for_good(&id, TaskState::Failed, reason).await;
                return;
            }
        }
        let killed = self
            .core()
            .runs
            .get(&id)
            .is_none_or(|slot| slot.run != placement.run || slot.cause == StopCause::Killed);
        if killed {
            // Killed while it was being staged: it never starts.
            self.abandon(placement);
            let change = Change::because(TaskState::Killed, "killed on request before it started");
            self.record_unless_ended(&id, change).await;
            return;
        }
        self.inner.backend.launch(placement, task);
    }

    /// Records `TASK_STAGING` with the placement and the run's attempt number before anything
    /// is launched: a relaunch (also one after a crash right here) can never reuse the number.
    async fn stage(&self, placement: &Placement) -> Staged {
        let id = &placement.run.task;
        let _guard = self.lock_task(id).await;
        let mut task = match self.read(id).await {
            Ok(Some(task)) if !task.is_terminal() => task,
            Ok(_) => return Staged::Gone,
            Err(error) => {
                tracing::error!(task = %id, "reading a task to launch it: {}", error);
                return Staged::StoreFailed;
            }
        };
        if task.next_attempt() != placement.run.attempt
            || task.current_state() != Some(TaskState::Queued)
        {
            // Placed for an attempt that is no longer the next one (a stale placement).
            return Staged::Gone;
        }
        task.agent_id = Some(placement.agent_id.clone());
        task.hostname = Some(placement.hostname.clone());
        task.agent_ip.clone_from(&placement.agent_ip);
        task.agent_port = placement.agent_port;
        task.framework_id.clone_from(&placement.framework_id);
        task.host_ports.clone_from(&placement.host_ports);
        task.sandbox_path.clone_from(&placement.sandbox);
        task.attempt = Some(placement.run.attempt);
        match self.record(&mut task, Change::to(TaskState::Staging)).await {
            Ok(true) => Staged::Ready(Box::new(task)),
            Ok(false) => Staged::Gone,
            Err(error) => {
                tracing::error!(task = %id, "recording TASK_STAGING: {error}");
                Staged::StoreFailed
            }
        }
    }

    /// Stops the task's run for `cause` (a kill wins over a timeout): the backend is asked at
    /// once, and again every grace period plus a few seconds until the run ends.
    pub(super) fn stop_run(&self, id: &TaskId, cause: StopCause) {
        let (run, resend) = {
            let mut core = self.core();
            let Some(slot) = core.runs.get_mut(id) else {
                return;
            };
            if slot.cause == StopCause::None || cause == StopCause::Killed {
                slot.cause = cause;
            }
            let resend = !slot.killing;
            slot.killing = true;
            (slot.run.clone(), resend)
        };
        let grace = self.inner.config.kill_grace;
        self.inner.backend.kill(&run, grace);
        if resend {
            let this = self.clone();
            tokio::spawn(async move { this.resend_kill(run, grace).await });
        }
    }

    /// Repeats a kill until the run's slot is gone (its end was recorded): a backend may lose
    /// a kill (an agent restarting, a master failing over).
    async fn resend_kill(&self, run: RunId, grace: Duration) {
        let every = grace.saturating_add(KILL_RESEND_AFTER_GRACE);
        loop {
            tokio::time::sleep(every).await;
            let running = self
                .core()
                .runs
                .get(&run.task)
                .is_some_and(|slot| slot.run == run);
            if !running {
                return;
            }
            tracing::info!(run = %run, "the run has not ended yet: sending the kill again");
            self.inner.backend.kill(&run, grace);
        }
    }

    /// Watches the task's timeout, counted from `started_at`: when it expires the run is
    /// stopped and ends as failed.
    pub(super) fn arm_deadline(&self, task: &Task, run: &RunId, started_at: OffsetDateTime) {
        let Some(seconds) = task.request.timeout_secs else {
            return;
        };
        {
            let mut core = self.core();
            match core.runs.get_mut(&run.task) {
                Some(slot) if slot.run == *run && !slot.deadline_armed => {
                    slot.deadline_armed = true;
                }
                _ => return,
            }
        }
        let ran_for = (OffsetDateTime::now_utc() - started_at)
            .try_into()
            .unwrap_or(Duration::ZERO);
        let left = Duration::from_secs(seconds).saturating_sub(ran_for);
        // A deadline beyond what the clock can hold is no deadline.
        let Some(at) = tokio::time::Instant::now().checked_add(left) else {
            return;
        };
        let this = self.clone();
        let run = run.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let current = this
                .core()
                .runs
                .get(&run.task)
                .is_some_and(|slot| slot.run == run);
            if current {
                this.stop_run(&run.task, StopCause::TimedOut { seconds });
            }
        });
    }

    /// Records `change` unless the task ended or was deleted meanwhile.
    async fn record_unless_ended(&self, id: &TaskId, change: Change) {
        let _guard = self.lock_task(id).await;
        let Ok(Some(mut task)) = self.read(id).await else {
            return;
        };
        if task.is_terminal() {
            return;
        }
        let state = change.state;
        match self.record(&mut task, change).await {
            Ok(true) if state.is_terminal() => self.inner.metrics.tasks_terminated_final(state),
            Ok(_) => {}
            Err(error) => tracing::error!(task = %id, "recording {state}: {error}"),
        }
    }

    /// Puts a task whose launch did not happen (the backend was unreachable, or eremetic
    /// stopped while launching it) back into the queue (after [`UNREACHABLE_BACKOFF`]) as
    /// `TASK_QUEUED` with `reason`, keeping its retry count (its next launch still gets a new
    /// attempt number: see [`Task::next_attempt`]). The caller holds the task's lock.
    pub(super) async fn requeue_unchanged_locked(&self, task: &mut Task, seq: u64, reason: String) {
        let id = task.id.clone();
        if task.current_state() == Some(TaskState::Terminating) {
            let change = Change::because(TaskState::Killed, "killed on request before it started");
            if self.record(task, change).await.is_ok() {
                self.inner.metrics.tasks_terminated_final(TaskState::Killed);
            }
            return;
        }
        tracing::warn!(task = %id, "the task waits again: {reason}");
        let change = Change::because(TaskState::Queued, reason);
        match self.record(task, change).await {
            Ok(true) => {
                let not_before = Instant::now() + UNREACHABLE_BACKOFF;
                let entry = self.queue_entry(seq, task, Some(not_before));
                self.enqueue(entry);
            }
            Ok(false) => {}
            Err(error) => tracing::error!(task = %id, "requeueing: {error}"),
        }
    }

    /// Ends a task that must not run (it can no longer fit after a restart, or the policy
    /// refuses it at launch) in `state` with `reason`, without a retry.
    pub(super) async fn end_for_good(&self, id: &TaskId, state: TaskState, reason: String) {
        tracing::warn!(task = %id, "{state}: {reason}");
        self.record_unless_ended(id, Change::because(state, reason))
            .await;
    }

    /// The changes that end an attempt in `state` with `reason`: the end alone, or the end
    /// and `TASK_QUEUED` when `retryable` and the task has retries left (then the retry count
    /// goes up). A task killed while it was being launched or recovered ends as killed.
    pub(super) fn ending_changes(
        task: &mut Task,
        state: TaskState,
        exit_code: Option<i32>,
        reason: Option<String>,
        retryable: bool,
    ) -> Vec<Change> {
        let (state, reason) =
            if task.current_state() == Some(TaskState::Terminating) && state != TaskState::Killed {
                let why = reason.map_or_else(
                    || "killed on request".to_owned(),
                    |reason| format!("killed on request ({reason})"),
                );
                (TaskState::Killed, Some(why))
            } else {
                (state, reason)
            };
        let retries = task.request.retries.unwrap_or(DEFAULT_MAX_RETRIES);
        let retry = retryable && state != TaskState::Killed && task.retry < retries;
        let mut changes = vec![Change {
            state,
            exit_code,
            reason,
        }];
        if retry {
            task.retry += 1;
            changes.push(Change::to(TaskState::Queued));
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_backoff_doubles_from_one_second_up_to_a_minute() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_backoff(n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
