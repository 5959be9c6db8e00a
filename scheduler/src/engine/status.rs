//! Applying a run's status updates to its task: `TASK_RUNNING`, the end (judged by
//! [`super::verdict`]), a launch that did not happen, and a run the backend does not know.
//!
//! Every update is checked against the task's stored attempt: an update of an older run (a
//! duplicate, or one that arrives after a relaunch) changes nothing, and an older run that
//! still runs is killed. Each handler says whether the update may be acknowledged: `true`
//! once its change is stored or when there was nothing to store.

use std::time::Duration;

use time::OffsetDateTime;

use super::{verdict, Change, RunEnd, Scheduler, StopCause};
use crate::backend::RunId;
use crate::task::{Task, TaskState};

/// How often the end of a run is tried to be stored before giving up (about five minutes of
/// back-off in all).
const FINISH_ATTEMPTS: u32 = 15;

/// Whether the task's current attempt reached `TASK_RUNNING` (its history since the latest
/// `TASK_STAGING` has it).
fn ran_since_staging(task: &Task) -> bool {
    task.status
        .iter()
        .rev()
        .take_while(|entry| entry.status != TaskState::Staging)
        .any(|entry| entry.status == TaskState::Running)
}

/// What an update means for the stored task.
enum Relevance {
    /// The task's current run: apply it.
    Current(Box<Task>),
    /// A run of a task that ended, was deleted, or was relaunched since: nothing to store.
    Stale,
    /// The store could not be read.
    Unreadable,
}

impl Scheduler {
    async fn relevance(&self, run: &RunId) -> Relevance {
        match self.read(&run.task).await {
            Ok(Some(task)) => {
                let alive = !task.is_terminal();
                let current = alive
                    && task.current_attempt() == run.attempt
                    && task.current_state() != Some(TaskState::Queued);
                if current {
                    Relevance::Current(Box::new(task))
                } else {
                    Relevance::Stale
                }
            }
            Ok(None) => Relevance::Stale,
            Err(error) => {
                tracing::error!(run = %run, "reading the task of a status update: {error}");
                Relevance::Unreadable
            }
        }
    }

    /// `TASK_RUNNING`: recorded once; the timeout starts counting at `started_at`.
    pub(super) async fn on_running(&self, run: &RunId, started_at: OffsetDateTime) -> bool {
        let _guard = self.lock_task(&run.task).await;
        let mut task = match self.relevance(run).await {
            Relevance::Current(task) => *task,
            Relevance::Stale => {
                // Its task ended, was deleted or was relaunched: it must not run on.
                tracing::warn!(run = %run, "stopping a run that is no longer its task's");
                self.inner.backend.kill(run, self.inner.config.kill_grace);
                return true;
            }
            Relevance::Unreadable => return false,
        };
        if let Some(slot) = self
            .core()
            .runs
            .get_mut(&run.task)
            .filter(|slot| slot.run == *run)
        {
            if slot.unreachable_since.take().is_some() {
                tracing::info!(run = %run, "the run's agent is reachable again");
            }
        }
        // A kill that came while the container started keeps the task TERMINATING (the kill
        // is being sent until the run ends); a duplicate changes nothing.
        if task.current_state() == Some(TaskState::Staging) {
            if let Err(error) = self.record(&mut task, Change::to(TaskState::Running)).await {
                tracing::error!(task = %task.id, "recording TASK_RUNNING: {error}");
                return false;
            }
            let queued_at = self
                .core()
                .runs
                .get_mut(&run.task)
                .filter(|slot| slot.run == *run)
                .and_then(|slot| slot.queued_at.take());
            let metrics = &self.inner.metrics;
            if let Some(queued_at) = queued_at {
                metrics
                    .launch_latency
                    .observe(queued_at.elapsed().as_secs_f64());
            }
            metrics.tasks_launched.inc();
        }
        self.arm_deadline(&task, run, started_at);
        true
    }

    /// The end of the run: judged, recorded (with a requeue when another attempt may
    /// follow), then the run is forgotten. Storing is retried for a while: an end that
    /// cannot be stored is not acknowledged, so the backend keeps it for the next start.
    pub(super) async fn on_end(&self, run: &RunId, end: RunEnd) -> bool {
        let dropped = self.inner.backend.output_dropped(&run.task).await;
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=FINISH_ATTEMPTS {
            match self.record_end(run, &end, dropped).await {
                Ok(()) => {
                    self.forget_run(run);
                    return true;
                }
                Err(error) => {
                    tracing::error!(run = %run, attempt, "recording the end of the run: {error}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
        tracing::error!(run = %run, "the end of the run could not be stored; the backend keeps it for the next start to read");
        self.forget_run(run);
        false
    }

    async fn record_end(
        &self,
        run: &RunId,
        end: &RunEnd,
        dropped: crate::backend::OutputDropped,
    ) -> Result<(), String> {
        let _guard = self.lock_task(&run.task).await;
        let mut task = match self.relevance(run).await {
            Relevance::Current(task) => *task,
            // A duplicate end, or the end of an older run: already recorded or irrelevant.
            Relevance::Stale => return Ok(()),
            Relevance::Unreadable => return Err("the store could not be read".to_owned()),
        };
        let cause = match self.core().runs.get(&run.task) {
            Some(slot) if slot.run == *run && slot.cause != StopCause::None => slot.cause,
            // Killed before a restart: the kill is what ended it.
            _ if task.current_state() == Some(TaskState::Terminating) => StopCause::Killed,
            _ => StopCause::None,
        };
        // Whether the run had started is best known from the store: a backend that restarted
        // (or missed the update) may not know it.
        let ran = ran_since_staging(&task);
        let end = match end {
            RunEnd::Reported(report) if ran && !report.started => {
                RunEnd::Reported(crate::backend::ReportedEnd {
                    started: true,
                    ..report.clone()
                })
            }
            other => other.clone(),
        };
        let judged = verdict(&end, cause, task.request.mem);
        task.stdout_dropped_bytes = dropped.stdout;
        task.stderr_dropped_bytes = dropped.stderr;
        let changes = Self::ending_changes(
            &mut task,
            judged.state,
            judged.exit_code,
            judged.reason,
            judged.retryable,
        );
        let state = changes[0].state;
        let requeued = changes.len() > 1;
        if state != TaskState::Finished {
            let reason = changes[0].reason.as_deref().unwrap_or_default();
            tracing::warn!(task = %task.id, retry = requeued, "{state}: {reason}");
        }
        match self.record_all(&mut task, changes).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(error) => return Err(error.to_string()),
        }
        if requeued {
            self.inner.metrics.tasks_terminated_retry(state);
            let seq = self.seq_of(&task.id).await;
            let not_before = std::time::Instant::now() + super::run::retry_backoff(task.retry);
            let entry = self.queue_entry(seq, &task, Some(not_before));
            self.enqueue(entry);
        } else {
            self.inner.metrics.tasks_terminated_final(state);
        }
        Ok(())
    }

    /// Why a started task waits, in words: its agent cannot be reached (until it comes back
    /// or `unreachable_timeout` ends the run).
    pub(super) fn unreachable_reason(&self, id: &crate::task::TaskId) -> Option<String> {
        let core = self.core();
        let (since, why) = core.runs.get(id)?.unreachable_since.as_deref()?;
        let timeout = self.inner.config.unreachable_timeout;
        Some(unreachable_words(since.elapsed(), timeout, why))
    }

    /// The run's agent cannot be reached: wait `unreachable_timeout` for it to come back, then
    /// end the run as lost (a new attempt follows while the task has retries left; the old
    /// run is stopped should it report again).
    pub(super) fn on_unreachable(&self, run: &RunId, reason: String) -> bool {
        let timeout = self.inner.config.unreachable_timeout;
        {
            let mut core = self.core();
            let Some(slot) = core.runs.get_mut(&run.task).filter(|slot| slot.run == *run) else {
                return true;
            };
            if slot.unreachable_since.is_some() {
                return true;
            }
            slot.unreachable_since = Some(Box::new((std::time::Instant::now(), reason.clone())));
        }
        tracing::warn!(run = %run, "the run's agent cannot be reached ({reason}); waiting {timeout:?} for it");
        let this = self.clone();
        let run = run.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let still = this
                .core()
                .runs
                .get(&run.task)
                .is_some_and(|slot| slot.run == run && slot.unreachable_since.is_some());
            if !still {
                return;
            }
            let end = RunEnd::Reported(crate::backend::ReportedEnd {
                state: TaskState::Lost,
                reason: Some(format!(
                    "its agent could not be reached for {} s (unreachable_timeout): {reason}",
                    timeout.as_secs()
                )),
                exit_code: None,
                memory_limited: false,
                started: true,
            });
            this.deliver(crate::backend::StatusUpdate {
                run,
                status: crate::backend::RunStatus::Ended(end),
                ack: None,
            });
        });
        true
    }

    /// The launch did not happen (the backend could not reach its engine or cluster): the
    /// task waits again without using up a retry.
    pub(super) async fn on_not_launched(&self, run: &RunId, reason: String) -> bool {
        self.requeue_run(run, format!("waiting for the backend: {reason}"))
            .await
    }

    /// The backend knows nothing of the run: a task that was still being launched waits
    /// again; one that ran is lost (and retried while it has retries left).
    pub(super) async fn on_unknown(&self, run: &RunId) -> bool {
        let staging = {
            let _guard = self.lock_task(&run.task).await;
            match self.relevance(run).await {
                Relevance::Current(task) => task.current_state() == Some(TaskState::Staging),
                Relevance::Stale => {
                    self.forget_run(run);
                    return true;
                }
                Relevance::Unreadable => return false,
            }
        };
        if staging {
            // Stopped while pulling the image or fetching URIs: no container was started,
            // nothing ran.
            return self
                .requeue_run(run, "eremetic restarted while launching it".to_owned())
                .await;
        }
        let end = RunEnd::Reported(crate::backend::ReportedEnd {
            state: TaskState::Lost,
            reason: Some("its container vanished while eremetic was not running".to_owned()),
            exit_code: None,
            memory_limited: false,
            started: true,
        });
        self.on_end(run, end).await
    }

    /// The task's submission order: from its run slot, else from the store.
    async fn seq_of(&self, id: &crate::task::TaskId) -> u64 {
        let slot = self.core().runs.get(id).map(|slot| slot.seq);
        match slot {
            Some(seq) => seq,
            None => match self.inner.store.seq_of(id).await {
                Ok(Some(seq)) => seq,
                _ => u64::MAX,
            },
        }
    }

    async fn requeue_run(&self, run: &RunId, reason: String) -> bool {
        let stored = {
            let _guard = self.lock_task(&run.task).await;
            match self.relevance(run).await {
                Relevance::Current(task) => {
                    let mut task = *task;
                    let seq = self.seq_of(&task.id).await;
                    self.requeue_unchanged_locked(&mut task, seq, reason).await;
                    true
                }
                Relevance::Stale => true,
                Relevance::Unreadable => false,
            }
        };
        self.forget_run(run);
        stored
    }
}

/// "its agent cannot be reached (why) for 2 s; it is relaunched when unreachable_timeout
/// (300 s) ends unless the agent comes back".
pub(super) fn unreachable_words(waited: Duration, timeout: Duration, why: &str) -> String {
    format!(
        "its agent cannot be reached ({why}) for {} s; it is relaunched when \
         unreachable_timeout ({} s) ends unless the agent comes back",
        waited.as_secs(),
        timeout.as_secs()
    )
}
