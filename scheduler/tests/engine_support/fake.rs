//! An in-memory [`Backend`]: real resource accounting ([`Capacity`]), scripted attempts per
//! task name (start succeeds, start fails, container exits with a code, is OOM-killed,
//! vanishes, or runs until the test or a stop ends it), a switch that makes the backend
//! unreachable, a switch that holds every placement back, a record of every call, and the
//! runs `recover()` reports.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use deimos_runtime::runtime::RuntimeError;
use eremetic::backend::{
    Allocation, Backend, BackendError, Capacity, Placement, RecoveredRun, RecoveredState,
    Resources, Run, RunOutcome,
};
use eremetic::task::{NewTask, Task, TaskId};
use time::OffsetDateTime;
use tokio::sync::watch;

/// How one attempt of a task behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The start fails with a start failure (image not found).
    StartFails,
    /// The container starts and then behaves as said.
    Runs(Ending),
}

/// How a started container ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It runs until [`FakeBackend::end`] or a stop ends it.
    OnCommand,
    /// It exits at once with this code.
    Exits(i32),
    /// The kernel's OOM killer kills it at once.
    OutOfMemory,
    /// Its container disappears: `wait` fails with a "gone" error.
    Vanishes,
}

/// The result of a run as `wait` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Exited(RunOutcome),
    Vanished,
}

/// A call the scheduler made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// `start` of attempt `attempt`; `started` is whether it returned a run.
    Start {
        task: TaskId,
        attempt: u32,
        started: bool,
        /// The task as the backend received it (its secrets in clear).
        request_seen: Box<Task>,
    },
    /// `stop` of a run.
    Stop { run_id: String },
    /// `destroy` of a run.
    Destroy { run_id: String },
    /// `remove_sandbox` of a task.
    RemoveSandbox { task: TaskId },
}

struct State {
    capacity: Capacity,
    held: bool,
    blocker: Option<String>,
    unreachable: bool,
    scripts: HashMap<String, VecDeque<Attempt>>,
    endings: HashMap<String, watch::Sender<Option<End>>>,
    latest_run: HashMap<TaskId, Run>,
    calls: Vec<Call>,
    recovered: Vec<RecoveredRun>,
    starts_waiting: usize,
}

/// The fake backend. Share it with `Arc`; the test keeps a clone to steer it.
pub(crate) struct FakeBackend {
    state: Mutex<State>,
    /// `start` waits while this is `false` (see [`FakeBackend::gate_starts`]).
    starts_open: watch::Sender<bool>,
    /// `destroy` waits while this is `false` (see [`FakeBackend::gate_destroys`]).
    destroys_open: watch::Sender<bool>,
    sandboxes: PathBuf,
}

/// Exit code and signal of a container stopped with SIGTERM.
const STOPPED: RunOutcome = RunOutcome {
    exit_code: 143,
    oom_killed: false,
    signal: Some(15),
};

impl FakeBackend {
    /// A backend with `cpus` CPUs, `mem_mib` MiB and host ports `ports` (inclusive), keeping
    /// sandboxes under `sandboxes`.
    pub(crate) fn new(cpus: f64, mem_mib: f64, ports: (u16, u16), sandboxes: &Path) -> Self {
        FakeBackend {
            state: Mutex::new(State {
                capacity: Capacity::new(cpus, mem_mib, ports),
                held: false,
                blocker: None,
                unreachable: false,
                scripts: HashMap::new(),
                endings: HashMap::new(),
                latest_run: HashMap::new(),
                calls: Vec::new(),
                recovered: Vec::new(),
                starts_waiting: 0,
            }),
            starts_open: watch::channel(true).0,
            destroys_open: watch::channel(true).0,
            sandboxes: sandboxes.to_path_buf(),
        }
    }

    /// While closed, every `start` waits (the task stays in TASK_STAGING) until it is opened.
    pub(crate) fn gate_starts(&self, open: bool) {
        self.starts_open.send_replace(open);
    }

    /// While closed, every `destroy` waits (a slow container removal) until it is opened.
    pub(crate) fn gate_destroys(&self, open: bool) {
        self.destroys_open.send_replace(open);
    }

    /// How many `start` calls are waiting at the closed gate.
    pub(crate) fn starts_waiting(&self) -> usize {
        self.state().starts_waiting
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The attempts of the task named `name`, in order; after the last one (or without a
    /// script) every attempt is `Runs(OnCommand)`.
    pub(crate) fn script(&self, name: &str, attempts: &[Attempt]) {
        self.state()
            .scripts
            .insert(name.to_owned(), attempts.iter().copied().collect());
    }

    /// While set, every `place` answers `Wait` (nothing launches).
    pub(crate) fn hold(&self, held: bool) {
        self.state().held = held;
    }

    /// While set, every `start` fails as if the engine could not be reached.
    pub(crate) fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    /// A run that `recover()` reports; `wait` on it follows the usual controls.
    pub(crate) fn add_recovered(&self, recovered: RecoveredRun) {
        let mut state = self.state();
        let end = match recovered.state {
            RecoveredState::Running => None,
            RecoveredState::Exited(outcome) => Some(End::Exited(outcome)),
        };
        let (sender, _) = watch::channel(end);
        state.endings.insert(recovered.run.run_id.clone(), sender);
        state
            .latest_run
            .insert(recovered.task_id.clone(), recovered.run.clone());
        state.recovered.push(recovered);
    }

    /// Makes the latest run of `task` exit with `code`.
    pub(crate) fn exit(&self, task: &TaskId, code: i32) {
        let outcome = RunOutcome {
            exit_code: code,
            oom_killed: false,
            signal: None,
        };
        self.end(task, End::Exited(outcome));
    }

    fn end(&self, task: &TaskId, end: End) {
        let state = self.state();
        let run = state
            .latest_run
            .get(task)
            .unwrap_or_else(|| panic!("task {task} has no run to end"));
        let sender = &state.endings[&run.run_id];
        sender.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(end);
            }
            first
        });
    }

    /// The latest run of `task`.
    pub(crate) fn run_of(&self, task: &TaskId) -> Run {
        self.state()
            .latest_run
            .get(task)
            .cloned()
            .unwrap_or_else(|| panic!("task {task} never started"))
    }

    /// Every call so far, in order.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// `start` calls for `task` (failed ones included).
    pub(crate) fn start_attempts(&self, task: &TaskId) -> Vec<u32> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Start {
                    task: started,
                    attempt,
                    ..
                } if &started == task => Some(attempt),
                _ => None,
            })
            .collect()
    }

    /// The tasks whose containers started, in the order they started.
    pub(crate) fn started_order(&self) -> Vec<TaskId> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Start {
                    task,
                    started: true,
                    ..
                } => Some(task),
                _ => None,
            })
            .collect()
    }

    /// Whether `stop` was called for `run_id`.
    pub(crate) fn stopped(&self, run_id: &str) -> bool {
        self.calls()
            .iter()
            .any(|call| matches!(call, Call::Stop { run_id: stopped } if stopped == run_id))
    }

    /// Whether `destroy` was called for `run_id`.
    pub(crate) fn destroyed(&self, run_id: &str) -> bool {
        self.calls()
            .iter()
            .any(|call| matches!(call, Call::Destroy { run_id: gone } if gone == run_id))
    }

    /// Holds every launch back with `reason` (as a full data directory does), or lets them go
    /// again with `None`, without waking the scheduler.
    pub(crate) fn block_launches(&self, reason: Option<&str>) {
        self.state().blocker = reason.map(str::to_owned);
    }

    /// What is free now.
    pub(crate) fn free_now(&self) -> Resources {
        self.state().capacity.free()
    }

    fn next_attempt(state: &mut State, name: &str) -> Attempt {
        state
            .scripts
            .get_mut(name)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Attempt::Runs(Ending::OnCommand))
    }

    fn new_run(&self, task: &Task, attempt: u32, allocation: &Allocation) -> Run {
        let run_id = format!("{}.{attempt}", task.id);
        Run {
            container_id: format!("fake-{run_id}"),
            run_id,
            sandbox: self.sandbox_dir(&task.id),
            host_ports: allocation.host_ports.clone(),
            hostname: "fake-host".to_owned(),
            started_at: OffsetDateTime::now_utc(),
        }
    }
}

fn start_failure(run_id: &str, image: &str) -> BackendError {
    BackendError::Image {
        run: run_id.to_owned(),
        source: RuntimeError::ImageNotFound {
            image: image.to_owned(),
            reason: "manifest unknown (scripted by the test)".to_owned(),
        },
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn admissible(&self, task: &NewTask) -> Result<(), String> {
        let problems = self.state().capacity.exceeded(&Resources::of(task));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn place(&self, needs: &Resources) -> Placement {
        let mut state = self.state();
        if state.held {
            return Placement::Wait;
        }
        state.capacity.place(needs)
    }

    fn free(&self) -> Resources {
        self.state().capacity.free()
    }

    fn launch_blocker(&self) -> Option<String> {
        self.state().blocker.clone()
    }

    fn total(&self) -> Resources {
        let state = self.state();
        Resources {
            cpus: state.capacity.total_cpus(),
            mem_mib: state.capacity.total_mem_mib(),
            ports: state.capacity.total_ports(),
        }
    }

    fn adopt(&self, allocation: &Allocation) {
        self.state().capacity.adopt(allocation);
    }

    fn release(&self, allocation: &Allocation) {
        self.state().capacity.release(allocation);
    }

    async fn start(
        &self,
        task: &Task,
        attempt: u32,
        allocation: &Allocation,
    ) -> Result<Run, BackendError> {
        let mut gate = self.starts_open.subscribe();
        if !*gate.borrow() {
            self.state().starts_waiting += 1;
            // The sender lives as long as the backend, so this only returns once opened.
            let _ = gate.wait_for(|open| *open).await;
            self.state().starts_waiting -= 1;
        }
        let run = self.new_run(task, attempt, allocation);
        let mut state = self.state();
        let record = |started: bool| Call::Start {
            task: task.id.clone(),
            attempt,
            started,
            request_seen: Box::new(task.clone()),
        };
        if state.unreachable {
            state.calls.push(record(false));
            return Err(BackendError::Unreachable {
                operation: "launch",
                target: format!("run {}", run.run_id),
                reason: "connection refused (scripted by the test)".to_owned(),
            });
        }
        let ending = match Self::next_attempt(&mut state, &task.name) {
            Attempt::StartFails => {
                state.calls.push(record(false));
                return Err(start_failure(&run.run_id, &task.request.image));
            }
            Attempt::Runs(ending) => ending,
        };
        state.calls.push(record(true));
        let end = match ending {
            Ending::OnCommand => None,
            Ending::Exits(code) => Some(End::Exited(RunOutcome {
                exit_code: code,
                oom_killed: false,
                signal: None,
            })),
            Ending::OutOfMemory => Some(End::Exited(RunOutcome {
                exit_code: 137,
                oom_killed: true,
                signal: Some(9),
            })),
            Ending::Vanishes => Some(End::Vanished),
        };
        let (sender, _) = watch::channel(end);
        state.endings.insert(run.run_id.clone(), sender);
        state.latest_run.insert(task.id.clone(), run.clone());
        Ok(run)
    }

    async fn wait(&self, run: &Run) -> Result<RunOutcome, BackendError> {
        let mut ending = match self.state().endings.get(&run.run_id) {
            Some(sender) => sender.subscribe(),
            None => {
                return Err(BackendError::Gone {
                    run: run.run_id.clone(),
                    container: run.container_id.clone(),
                })
            }
        };
        let end = match ending.wait_for(Option::is_some).await {
            Ok(end) => *end,
            // The sender lives in the backend's table as long as the backend: never taken.
            Err(_) => Some(End::Vanished),
        };
        match end {
            Some(End::Exited(outcome)) => Ok(outcome),
            _ => Err(BackendError::Gone {
                run: run.run_id.clone(),
                container: run.container_id.clone(),
            }),
        }
    }

    async fn stop(&self, run: &Run, _grace: Duration) -> Result<(), BackendError> {
        let mut state = self.state();
        state.calls.push(Call::Stop {
            run_id: run.run_id.clone(),
        });
        if let Some(sender) = state.endings.get(&run.run_id) {
            sender.send_if_modified(|current| {
                let first = current.is_none();
                if first {
                    *current = Some(End::Exited(STOPPED));
                }
                first
            });
        }
        Ok(())
    }

    async fn destroy(&self, run: &Run) -> Result<(), BackendError> {
        let mut gate = self.destroys_open.subscribe();
        // The sender lives as long as the backend, so this only returns once opened.
        let _ = gate.wait_for(|open| *open).await;
        self.state().calls.push(Call::Destroy {
            run_id: run.run_id.clone(),
        });
        Ok(())
    }

    async fn recover(&self) -> Result<Vec<RecoveredRun>, BackendError> {
        Ok(self.state().recovered.clone())
    }

    fn sandbox_dir(&self, task: &TaskId) -> PathBuf {
        self.sandboxes.join(task.as_str())
    }

    async fn remove_sandbox(&self, task: &TaskId) -> Result<(), BackendError> {
        self.state()
            .calls
            .push(Call::RemoveSandbox { task: task.clone() });
        Ok(())
    }
}
