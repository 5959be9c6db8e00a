//! The simulated cluster's agents: attached to the fake master, they count the tasks the
//! master hands them and the acknowledgements it forwards, and send the executor's status
//! updates when the benchmark says so. They cost next to nothing, so what is measured is
//! eremetic (and the fake master's share of the two cores, reported with the figures).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use mesos_harness::cluster::{AgentMode, Uplink};
use mesos_harness::master::AgentMessage;
use mesos_proto::v1::{task_status, TaskState, TaskStatus};
use tokio::sync::Notify;

/// What every agent adds to.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Tasks received (`RunTask`).
    pub(crate) launched: AtomicU64,
    /// Acknowledgements forwarded by the master.
    pub(crate) acknowledged: AtomicU64,
    /// When the first and the latest task arrived.
    launch_times: Mutex<Option<(Instant, Instant)>>,
    /// Woken on every count.
    pub(crate) changed: Notify,
}

impl Counters {
    fn record_launch(&self) {
        let now = Instant::now();
        let mut times = self
            .launch_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let first = times.map_or(now, |(first, _)| first);
        *times = Some((first, now));
        drop(times);
        self.launched.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// When the first and the latest task arrived, and forgets them (for the next phase).
    pub(crate) fn take_launch_times(&self) -> Option<(Instant, Instant)> {
        self.launch_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// One agent.
#[derive(Debug)]
pub(crate) struct BenchAgent {
    counters: Arc<Counters>,
    /// Send TASK_RUNNING as soon as a task arrives (else hold it until `finish_held`).
    run_at_once: Arc<AtomicBool>,
    held: Mutex<Vec<String>>,
}

impl BenchAgent {
    pub(crate) fn new(counters: Arc<Counters>, run_at_once: Arc<AtomicBool>) -> Self {
        BenchAgent {
            counters,
            run_at_once,
            held: Mutex::new(Vec::new()),
        }
    }

    /// Sends TASK_RUNNING then TASK_FINISHED for every task held; returns how many updates.
    pub(crate) fn finish_held(&self, uplink: &Uplink) -> u64 {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(PoisonError::into_inner));
        let mut sent = 0;
        for task_id in held {
            for state in [TaskState::TaskRunning, TaskState::TaskFinished] {
                if uplink.send_status(&task_id, executor_update(state)).is_ok() {
                    sent += 1;
                }
            }
        }
        sent
    }
}

impl AgentMode for BenchAgent {
    fn on_message(&self, message: AgentMessage, uplink: &Uplink) {
        match message {
            AgentMessage::RunTask { task, .. } => {
                let task_id = task.task_id.value;
                if self.run_at_once.load(Ordering::Relaxed) {
                    let _ = uplink.send_status(&task_id, executor_update(TaskState::TaskRunning));
                } else {
                    self.held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(task_id);
                }
                self.counters.record_launch();
            }
            AgentMessage::Acknowledged { .. } => {
                self.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
                self.counters.changed.notify_waiters();
            }
            AgentMessage::KillTask { task_id, .. } => {
                let _ = uplink.send_status(&task_id, executor_update(TaskState::TaskKilled));
            }
            _ => {}
        }
    }
}

/// An update as an executor sends it (the master fills in the rest).
fn executor_update(state: TaskState) -> TaskStatus {
    TaskStatus {
        state: state as i32,
        source: Some(task_status::Source::Executor as i32),
        ..Default::default()
    }
}
