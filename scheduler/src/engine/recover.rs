//! Start-up recovery: nothing is lost across a restart, also after `kill -9`.
//!
//! Queued tasks go back into the queue in submission order; tasks that were launching or
//! running are matched with the containers the backend finds by their labels and followed to
//! their end; a task whose container vanished ends as `TASK_LOST` and is retried while it has
//! retries left; containers of tasks that ended or were deleted are removed.

use std::collections::HashMap;

use tokio::sync::watch;

use super::{RunSlot, Scheduler, StartError};
use crate::backend::{Allocation, RecoveredRun};
use crate::task::{Task, TaskId, TaskState};

pub(super) async fn recover(scheduler: &Scheduler) -> Result<(), StartError> {
    let unfinished = scheduler.inner.store.unfinished().await?;
    let found = scheduler
        .inner
        .backend
        .recover()
        .await
        .map_err(|error| StartError::Backend(error.to_string()))?;
    let mut runs = latest_runs(scheduler, found).await;
    let (mut queued, mut adopted, mut lost) = (0usize, 0usize, 0usize);
    for (seq, task) in unfinished {
        match task.current_state() {
            None | Some(TaskState::Queued) => {
                // The operator may have shrunk the server since: a task that can no longer
                // ever run would hold the head of the queue forever.
                if let Err(why) = scheduler.inner.backend.admissible(&task.request) {
                    let reason = format!("can no longer run on this server after a restart: {why}");
                    scheduler
                        .end_for_good(&task.id, TaskState::Error, reason)
                        .await;
                    continue;
                }
                let entry = scheduler.queue_entry(seq, &task, None);
                scheduler.enqueue(entry);
                queued += 1;
            }
            Some(_) => match runs.remove(&task.id) {
                Some(run) if run.attempt == task.current_attempt() => {
                    adopt(scheduler, seq, task, run).await;
                    adopted += 1;
                }
                None if task.current_state() == Some(TaskState::Staging) => {
                    // Stopped while pulling the image or fetching URIs: no container was
                    // started, nothing ran; it waits again without using up a retry.
                    scheduler
                        .requeue_unchanged(
                            &task.id,
                            seq,
                            "eremetic restarted while launching it".to_owned(),
                        )
                        .await;
                    queued += 1;
                }
                stale => {
                    if let Some(stale) = stale {
                        remove_container(scheduler, &stale).await;
                    }
                    let reason = "its container vanished while eremetic was not running";
                    scheduler
                        .fail_or_retry(&task.id, seq, TaskState::Lost, reason.to_owned())
                        .await;
                    lost += 1;
                }
            },
        }
    }
    for orphan in runs.into_values() {
        tracing::info!(task = %orphan.task_id, "removing the container of a task that ended or was deleted");
        remove_container(scheduler, &orphan).await;
    }
    tracing::info!(
        queued,
        adopted,
        lost,
        "recovered the tasks of the previous run"
    );
    Ok(())
}

/// Keeps the newest attempt of each task, removing the containers of older ones.
async fn latest_runs(
    scheduler: &Scheduler,
    found: Vec<RecoveredRun>,
) -> HashMap<TaskId, RecoveredRun> {
    let mut latest: HashMap<TaskId, RecoveredRun> = HashMap::new();
    for run in found {
        let older = match latest.get(&run.task_id) {
            Some(kept) if kept.attempt >= run.attempt => Some(run),
            _ => latest.insert(run.task_id.clone(), run),
        };
        if let Some(older) = older {
            remove_container(scheduler, &older).await;
        }
    }
    latest
}

async fn remove_container(scheduler: &Scheduler, run: &RecoveredRun) {
    if let Err(error) = scheduler.inner.backend.destroy(&run.run).await {
        tracing::warn!(container = %run.run.container_id, "removing a leftover container: {error}");
    }
}

/// Takes over a run that survived the restart: its resources are marked used, and it is
/// followed (a kill asked before the restart is carried out).
async fn adopt(scheduler: &Scheduler, seq: u64, task: Task, found: RecoveredRun) {
    let allocation = Allocation {
        cpus: task.request.cpu,
        mem_mib: task.request.mem,
        host_ports: found.run.host_ports.clone(),
    };
    scheduler.inner.backend.adopt(&allocation);
    let terminating = task.current_state() == Some(TaskState::Terminating);
    let (kill, receiver) = watch::channel(terminating);
    scheduler
        .core()
        .runs
        .insert(task.id.clone(), RunSlot { allocation, kill });
    if !terminating {
        scheduler.mark_running(&task.id, &found.run).await;
    }
    let follower = scheduler.clone();
    tokio::spawn(async move {
        follower.supervise(seq, task, found.run, receiver).await;
    });
}
