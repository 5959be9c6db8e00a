//! Start-up: the backend is started and asked about the runs of the previous instance, so
//! that nothing is lost across a restart, also after `kill -9`.
//!
//! Queued tasks go back into the queue in submission order. Tasks that were launching,
//! running or being stopped keep a run slot and are handed to [`Backend::reconcile`]: its
//! answers (status events) follow them to their end; a task whose run vanished ends as
//! `TASK_LOST` and is retried while it has retries left; one that was still launching waits
//! again. Runs the backend finds that are not the current run of a task are removed.
//!
//! [`Backend::reconcile`]: crate::backend::Backend::reconcile

use super::{RunSlot, Scheduler, StartError, StopCause};
use crate::backend::{EventSink, KnownRun, RunId};
use crate::store::{META_FRAMEWORK_ID, UNFINISHED_PAGE};
use crate::task::TaskState;

pub(super) async fn recover(scheduler: &Scheduler) -> Result<(), StartError> {
    let framework_id = scheduler.inner.store.meta_load(META_FRAMEWORK_ID).await?;
    let (sink, events) = EventSink::channel();
    let backend = &scheduler.inner.backend;
    backend
        .start(sink, framework_id)
        .await
        .map_err(|error| StartError::Backend(error.to_string()))?;
    let listener = scheduler.clone();
    tokio::spawn(async move { listener.event_loop(events).await });

    let mut known = Vec::new();
    let mut terminating = Vec::new();
    let mut queued = 0usize;
    // Page by page: the documents of 100,000 tasks are never in memory at once, only what
    // the queue and the run slots keep of them.
    let mut after = 0;
    loop {
        let (page, last) = scheduler
            .inner
            .store
            .unfinished_page(after, UNFINISHED_PAGE)
            .await?;
        let Some(last) = last else { break };
        after = last;
        for (seq, task) in page {
            match task.current_state() {
                None | Some(TaskState::Queued) => {
                    // The operator may have shrunk the server since: a task that can no longer
                    // ever run would hold the head of the queue forever.
                    if let Err(why) = backend.admissible(&task.request) {
                        let reason =
                            format!("can no longer run on this server after a restart: {why}");
                        scheduler
                            .end_for_good(&task.id, TaskState::Error, reason)
                            .await;
                        continue;
                    }
                    let entry = scheduler.queue_entry(seq, &task, None);
                    scheduler.enqueue(entry);
                    queued += 1;
                }
                Some(state) => {
                    let run = RunId::new(task.id.clone(), task.current_attempt());
                    let cause = if state == TaskState::Terminating {
                        terminating.push(task.id.clone());
                        StopCause::Killed
                    } else {
                        StopCause::None
                    };
                    scheduler
                        .core()
                        .runs
                        .insert(task.id.clone(), RunSlot::new(run.clone(), seq, None, cause));
                    known.push(KnownRun {
                        run,
                        state,
                        cpus: task.request.cpu,
                        mem_mib: task.request.mem,
                        host_ports: task.host_ports.clone(),
                        agent_id: task.agent_id.clone(),
                    });
                }
            }
        }
    }
    let asked = known.len();
    backend
        .reconcile(known)
        .await
        .map_err(|error| StartError::Backend(error.to_string()))?;
    // A kill asked before the restart is carried out.
    for id in terminating {
        scheduler.stop_run(&id, StopCause::Killed);
    }
    tracing::info!(
        queued,
        asked,
        "recovered the tasks of the previous run; the backend answers for the active ones"
    );
    Ok(())
}
