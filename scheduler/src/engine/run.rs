//! Launching queued tasks and following runs to their end: the dispatcher loop, start
//! failures and retries, timeouts, kills, and the final state of each run.

use std::pin::pin;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::watch;

use super::{verdict, Change, QueueEntry, RunEnd, RunSlot, Scheduler, StopCause};
use crate::backend::{Allocation, BackendError, Placement, Run, RunOutcome};
use crate::task::{Task, TaskId, TaskState, DEFAULT_MAX_RETRIES};

/// How long the dispatcher sleeps when nothing wakes it (a safety net; every event that can
/// free resources or add work wakes it at once).
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// How often the end of a run is tried to be stored before giving up (about five minutes of
/// back-off in all).
const FINISH_ATTEMPTS: u32 = 15;

/// How often the dispatcher looks again while the backend holds launches back (the free space
/// of the data directory comes back without any event that would wake it).
const BLOCKED_RECHECK: Duration = Duration::from_secs(1);

/// How long a task waits before it is launched again when the backend could not be reached.
const UNREACHABLE_BACKOFF: Duration = Duration::from_secs(5);

/// The outcome of recording `TASK_STAGING` before a launch.
enum Staged {
    /// Recorded: launch it.
    Ready(Box<Task>),
    /// Ended or deleted meanwhile: do not launch.
    Gone,
    /// The store failed: the task stays queued.
    StoreFailed,
}

/// Back-off before relaunching a task whose start failed: 1 s, doubling, at most 60 s.
pub(super) fn retry_backoff(retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(6);
    Duration::from_secs(1u64 << exponent).min(Duration::from_secs(60))
}

impl Scheduler {
    pub(super) async fn dispatch_loop(&self) {
        loop {
            for (entry, allocation) in self.select_launches() {
                let this = self.clone();
                tokio::spawn(async move { this.launch(entry, allocation).await });
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

    fn select_launches(&self) -> Vec<(QueueEntry, Allocation)> {
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
        let free = backend.free();
        let chosen = core
            .queue
            .select(Instant::now(), free, |needs| match backend.place(needs) {
                Placement::Placed(allocation) => Some(allocation),
                Placement::Wait => None,
            });
        let delayed = core.queue.take_delayed();
        if delayed > 0 {
            self.inner.metrics.tasks_delayed.inc_by(delayed);
        }
        for (entry, allocation) in &chosen {
            let (kill, _) = watch::channel(false);
            let slot = RunSlot {
                allocation: allocation.clone(),
                kill,
            };
            core.runs.insert(entry.id.clone(), slot);
        }
        self.inner.metrics.queue_depth.set(core.queue.len() as i64);
        chosen
    }

    /// Gives the resources of a task back and wakes the dispatcher.
    pub(super) fn release(&self, id: &TaskId) {
        if let Some(slot) = self.core().runs.remove(id) {
            self.inner.backend.release(&slot.allocation);
        }
        self.inner.wake.notify_one();
    }

    fn kill_receiver(&self, id: &TaskId) -> Option<watch::Receiver<bool>> {
        self.core().runs.get(id).map(|slot| slot.kill.subscribe())
    }

    async fn launch(&self, entry: QueueEntry, allocation: Allocation) {
        let id = entry.id.clone();
        let task = match self.stage(&id, &allocation).await {
            Staged::Ready(task) => *task,
            Staged::Gone => {
                self.release(&id);
                return;
            }
            Staged::StoreFailed => {
                // The task is still queued in the store: keep it queued here too.
                self.release(&id);
                let mut entry = entry;
                entry.not_before = Some(Instant::now() + UNREACHABLE_BACKOFF);
                self.enqueue(entry);
                return;
            }
        };
        let Some(kill) = self.kill_receiver(&id) else {
            return;
        };
        // The host paths are resolved again right before the launch: a link planted in an
        // allowed directory since the submission must not widen what is mounted.
        let mut task = task;
        match self.inner.config.policy.check(&task.request) {
            Ok(volumes) => task.request.volumes = volumes,
            Err(why) => {
                self.release(&id);
                let reason = format!("refused at launch by the operator's policy: {why}");
                self.end_for_good(&id, TaskState::Failed, reason).await;
                return;
            }
        }
        let started = self
            .inner
            .backend
            .start(&task, task.current_attempt(), &allocation)
            .await;
        match started {
            Err(error) if error.is_unreachable() => {
                // Nothing is wrong with the task: it waits for the engine without using up a
                // retry.
                self.release(&id);
                let reason = format!("waiting for the backend: {error}");
                self.requeue_unchanged(&id, entry.seq, reason).await;
            }
            Err(error) => {
                self.release(&id);
                let reason = format!("the container could not be started: {error}");
                self.fail_or_retry(&id, entry.seq, TaskState::Failed, reason)
                    .await;
            }
            Ok(run) => {
                self.mark_running(&id, &run).await;
                let metrics = &self.inner.metrics;
                metrics
                    .launch_latency
                    .observe(entry.queued_at.elapsed().as_secs_f64());
                metrics.tasks_launched.inc();
                self.supervise(entry.seq, task, run, kill).await;
            }
        }
    }

    /// Records `TASK_STAGING` with the placement; `None` when the task must not run (killed or
    /// deleted meanwhile).
    async fn stage(&self, id: &TaskId, allocation: &Allocation) -> Staged {
        let _guard = self.lock_task(id).await;
        let mut task = match self.read(id).await {
            Ok(Some(task)) if !task.is_terminal() => task,
            Ok(_) => return Staged::Gone,
            Err(error) => {
                tracing::error!(task = %id, "reading a task to launch it: {}", error);
                return Staged::StoreFailed;
            }
        };
        let backend = &self.inner.backend;
        task.agent_id = Some(backend.name().to_owned());
        task.hostname = Some(hostname());
        task.host_ports.clone_from(&allocation.host_ports);
        task.sandbox_path = Some(backend.sandbox_dir(id).display().to_string());
        // The run id is stored with TASK_STAGING, before any container exists: a relaunch
        // (also one after a crash here) can never reuse it.
        task.attempt = Some(task.next_attempt());
        match self.record(&mut task, Change::to(TaskState::Staging)).await {
            Ok(true) => Staged::Ready(Box::new(task)),
            Ok(false) => Staged::Gone,
            Err(error) => {
                tracing::error!(task = %id, "recording TASK_STAGING: {error}");
                Staged::StoreFailed
            }
        }
    }

    pub(super) async fn mark_running(&self, id: &TaskId, run: &Run) {
        let _guard = self.lock_task(id).await;
        let Ok(Some(mut task)) = self.read(id).await else {
            return;
        };
        // A kill that came while the container started keeps the task TERMINATING.
        if matches!(
            task.current_state(),
            Some(TaskState::Running | TaskState::Terminating)
        ) {
            return;
        }
        task.sandbox_path = Some(run.sandbox.display().to_string());
        task.host_ports.clone_from(&run.host_ports);
        if let Err(error) = self.record(&mut task, Change::to(TaskState::Running)).await {
            tracing::error!(task = %id, "recording TASK_RUNNING: {error}");
        }
    }

    /// Follows a run to its end, stopping it on a kill or when its timeout expires, records
    /// the final state, removes the container and gives the resources back.
    pub(super) async fn supervise(
        &self,
        seq: u64,
        task: Task,
        run: Run,
        mut kill: watch::Receiver<bool>,
    ) {
        let deadline = task.request.timeout_secs.and_then(|seconds| {
            let ran_for = (OffsetDateTime::now_utc() - run.started_at)
                .try_into()
                .unwrap_or(Duration::ZERO);
            let left = Duration::from_secs(seconds).saturating_sub(ran_for);
            // A deadline beyond what the clock can hold is no deadline.
            tokio::time::Instant::now()
                .checked_add(left)
                .map(|at| (at, seconds))
        });
        let mut cause = StopCause::None;
        let mut kill_open = true;
        let result = loop {
            let result = self
                .follow(&run, deadline, &mut cause, &mut kill, &mut kill_open)
                .await;
            match result {
                // The engine is restarting or unreachable: the container may well still run,
                // so wait for it again rather than declaring it lost.
                Err(error) if error.is_unreachable() => {
                    tracing::warn!(task = %task.id, "waiting for the Docker engine: {error}");
                    tokio::time::sleep(UNREACHABLE_BACKOFF).await;
                }
                other => break other,
            }
        };
        let id = task.id.clone();
        match result {
            Ok(outcome) => {
                // Recorded first, so that a crash right after loses nothing.
                if self.finish(&task, &outcome, cause).await {
                    self.remove_run(&id, &run).await;
                } else {
                    tracing::error!(task = %id, container = %run.container_id, "the end of the task could not be stored; its container is kept for the next start to read");
                    self.release(&id);
                }
            }
            Err(error) => {
                // The container goes and its resources come back before a retry can be
                // queued: the new run must not meet the old one.
                self.remove_run(&id, &run).await;
                let reason = format!("lost track of the container: {error}");
                self.fail_or_retry(&id, seq, TaskState::Lost, reason).await;
            }
        }
    }

    async fn remove_run(&self, id: &TaskId, run: &Run) {
        if let Err(error) = self.inner.backend.destroy(run).await {
            tracing::warn!(task = %id, container = %run.container_id, "removing the container: {error}");
        }
        self.release(id);
    }

    /// Waits for the run to end, stopping it when the kill switch flips or the deadline
    /// passes (recorded in `cause`).
    async fn follow(
        &self,
        run: &Run,
        deadline: Option<(tokio::time::Instant, u64)>,
        cause: &mut StopCause,
        kill: &mut watch::Receiver<bool>,
        kill_open: &mut bool,
    ) -> Result<RunOutcome, BackendError> {
        let mut wait = pin!(self.inner.backend.wait(run));
        loop {
            let timer = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = &mut wait => return result,
                () = timer, if *cause == StopCause::None => {
                    let seconds = deadline.map_or(0, |(_, seconds)| seconds);
                    *cause = StopCause::TimedOut { seconds };
                    self.stop_in_background(run);
                }
                changed = kill.wait_for(|killed| *killed), if *cause == StopCause::None && *kill_open => {
                    match changed {
                        Ok(_) => {
                            *cause = StopCause::Killed;
                            self.stop_in_background(run);
                        }
                        Err(_) => *kill_open = false,
                    }
                }
            }
        }
    }

    fn stop_in_background(&self, run: &Run) {
        let backend = self.inner.backend.clone();
        let run = run.clone();
        let grace = self.inner.config.kill_grace;
        tokio::spawn(async move {
            // A kill or timeout must not be forgotten because one stop call failed: retry
            // until the container has stopped or is gone.
            let mut delay = Duration::from_secs(1);
            loop {
                match backend.stop(&run, grace).await {
                    Ok(()) => return,
                    Err(error) if error.is_gone() => return,
                    Err(error) => {
                        tracing::warn!(container = %run.container_id, "stopping the container (trying again in {delay:?}): {error}");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            }
        });
    }

    /// Records the end of a run; `false` when it could not be stored (the store keeps failing
    /// or is closed): then the exited container must stay, so that the next start reads its
    /// outcome again instead of declaring the task lost.
    async fn finish(&self, task: &Task, outcome: &RunOutcome, cause: StopCause) -> bool {
        let id = &task.id;
        let verdict = verdict(&RunEnd::Exited(*outcome), cause, task.request.mem);
        let state = verdict.state;
        let dropped = self.inner.backend.output_dropped(id).await;
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=FINISH_ATTEMPTS {
            let recorded = {
                let _guard = self.lock_task(id).await;
                match self.read(id).await {
                    Ok(Some(mut current)) => {
                        current.stdout_dropped_bytes = dropped.stdout;
                        current.stderr_dropped_bytes = dropped.stderr;
                        let change = Change {
                            state,
                            exit_code: verdict.exit_code,
                            reason: verdict.reason.clone(),
                        };
                        let recorded = self.record(&mut current, change).await;
                        recorded.map(|_| ()).map_err(|error| error.to_string())
                    }
                    Ok(None) => {
                        tracing::warn!(task = %id, "the task's record is gone; its end is not recorded");
                        return true;
                    }
                    Err(error) => Err(error.to_string()),
                }
            };
            match recorded {
                Ok(()) => {
                    self.inner.metrics.tasks_terminated_final(state);
                    return true;
                }
                Err(error) => {
                    tracing::error!(task = %id, attempt, "recording {state}: {error}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
        false
    }

    /// Puts a task whose launch did not happen (the backend was unreachable, or eremetic
    /// stopped while launching it) back into the queue (after [`UNREACHABLE_BACKOFF`]) as
    /// `TASK_QUEUED` with `reason`, keeping its retry count (its next launch still gets a new
    /// attempt number: see [`Task::next_attempt`]).
    pub(super) async fn requeue_unchanged(&self, id: &TaskId, seq: u64, reason: String) {
        let _guard = self.lock_task(id).await;
        let Ok(Some(mut task)) = self.read(id).await else {
            return;
        };
        if task.is_terminal() {
            return;
        }
        if task.current_state() == Some(TaskState::Terminating) {
            let change = Change::because(TaskState::Killed, "killed on request before it started");
            if self.record(&mut task, change).await.is_ok() {
                self.inner.metrics.tasks_terminated_final(TaskState::Killed);
            }
            return;
        }
        tracing::warn!(task = %id, "the task waits again: {reason}");
        let change = Change::because(TaskState::Queued, reason);
        match self.record(&mut task, change).await {
            Ok(true) => {
                let not_before = Instant::now() + UNREACHABLE_BACKOFF;
                let entry = self.queue_entry(seq, &task, Some(not_before));
                self.enqueue(entry);
            }
            Ok(false) => {}
            Err(error) => tracing::error!(task = %id, "requeueing: {error}"),
        }
    }

    /// Ends a task that must not run (it can no longer fit after a restart, or the policy
    /// refuses it at launch) in `state` with `reason`, without a retry.
    pub(super) async fn end_for_good(&self, id: &TaskId, state: TaskState, reason: String) {
        let _guard = self.lock_task(id).await;
        let Ok(Some(mut task)) = self.read(id).await else {
            return;
        };
        if task.is_terminal() {
            return;
        }
        tracing::warn!(task = %id, "{state}: {reason}");
        match self.record(&mut task, Change::because(state, reason)).await {
            Ok(_) => self.inner.metrics.tasks_terminated_final(state),
            Err(error) => tracing::error!(task = %id, "recording {state}: {error}"),
        }
    }

    /// Records a failure to start or a lost container, and requeues the task (with back-off)
    /// while it has retries left.
    pub(super) async fn fail_or_retry(
        &self,
        id: &TaskId,
        seq: u64,
        state: TaskState,
        reason: String,
    ) {
        let _guard = self.lock_task(id).await;
        let Ok(Some(mut task)) = self.read(id).await else {
            return;
        };
        if task.is_terminal() {
            return;
        }
        // A task killed while it was being launched or recovered ends as killed.
        let (state, reason) = if task.current_state() == Some(TaskState::Terminating) {
            (TaskState::Killed, format!("killed on request ({reason})"))
        } else {
            (state, reason)
        };
        let retries = task.request.retries.unwrap_or(DEFAULT_MAX_RETRIES);
        let retry = state != TaskState::Killed && task.retry < retries;
        tracing::warn!(task = %id, retry, "{state}: {reason}");
        let mut changes = vec![Change::because(state, reason)];
        if retry {
            task.retry += 1;
            changes.push(Change::to(TaskState::Queued));
        }
        match self.record_all(&mut task, changes).await {
            Ok(true) if retry => {
                self.inner.metrics.tasks_terminated_retry(state);
                let not_before = Instant::now() + retry_backoff(task.retry);
                let entry = self.queue_entry(seq, &task, Some(not_before));
                self.enqueue(entry);
            }
            Ok(true) => self.inner.metrics.tasks_terminated_final(state),
            Ok(false) => {}
            Err(error) => tracing::error!(task = %id, "recording {state}: {error}"),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
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
