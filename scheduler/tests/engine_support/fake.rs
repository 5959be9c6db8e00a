//! An in-memory [`Backend`] with the local engine's shape: placements decided at once against
//! real resource accounting ([`Capacity`]), scripted attempts per task name (start succeeds,
//! start fails, container exits with a code, is OOM-killed, vanishes, or runs until the test
//! or a stop ends it) reported as status events, a switch that makes the backend unreachable,
//! a switch that holds every placement back, a record of every call, and the runs a
//! reconciliation finds.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deimos_runtime::runtime::RuntimeError;
use eremetic::backend::placement::place_in_order;
use eremetic::backend::{
    AckToken, Allocation, Backend, BackendError, BackendEvent, Capacity, Demand, EventSink,
    KnownRun, LogSource, Placement, RecoveredRun, RecoveredState, ReportedEnd, Reservation,
    Resources, Run, RunEnd, RunId, RunOutcome, RunStatus,
};
use eremetic::task::{NewTask, Task, TaskId, TaskState};
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
    /// Runs holding resources, by run name, with a kill asked before the start.
    held_runs: HashMap<String, (Allocation, Option<Duration>)>,
}

/// The fake backend. Share it with `Arc`; the test keeps a clone to steer it.
pub(crate) struct FakeBackend {
    shared: Arc<Shared>,
}

struct Shared {
    events: OnceLock<EventSink>,
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
            shared: Arc::new(Shared {
                events: OnceLock::new(),
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
                    held_runs: HashMap::new(),
                }),
                starts_open: watch::channel(true).0,
                destroys_open: watch::channel(true).0,
                sandboxes: sandboxes.to_path_buf(),
            }),
        }
    }

    /// While closed, every launch waits (the task stays in TASK_STAGING) until it is opened.
    pub(crate) fn gate_starts(&self, open: bool) {
        self.shared.starts_open.send_replace(open);
    }

    /// While closed, every container removal (after an acknowledged end, or of a run found
    /// that is not the task's) waits until it is opened; the run's resources stay held.
    pub(crate) fn gate_destroys(&self, open: bool) {
        self.shared.destroys_open.send_replace(open);
    }

    /// How many launches are waiting at the closed gate.
    pub(crate) fn starts_waiting(&self) -> usize {
        self.state().starts_waiting
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }

    /// The attempts of the task named `name`, in order; after the last one (or without a
    /// script) every attempt is `Runs(OnCommand)`.
    pub(crate) fn script(&self, name: &str, attempts: &[Attempt]) {
        self.state()
            .scripts
            .insert(name.to_owned(), attempts.iter().copied().collect());
    }

    /// While set, no demand is placed (nothing launches).
    pub(crate) fn hold(&self, held: bool) {
        self.state().held = held;
    }

    /// While set, every launch fails as if the engine could not be reached.
    pub(crate) fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    /// A run a reconciliation finds; it ends under the usual controls.
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

    fn sandbox_dir(&self, task: &TaskId) -> PathBuf {
        self.shared.sandboxes.join(task.as_str())
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

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn report(&self, run: &RunId, status: RunStatus, ack: bool) {
        let ack = ack.then(|| AckToken(run.name()));
        if let Some(sink) = self.events.get() {
            sink.status(run.clone(), status, ack);
        }
    }

    /// Ends a run with a stop, or remembers the kill for when its start completes.
    fn stop(&self, run_id: &str, grace: Duration) {
        let mut state = self.state();
        let started = state.endings.contains_key(run_id);
        if let Some((_, kill)) = state.held_runs.get_mut(run_id) {
            if !started {
                *kill = Some(grace);
                return;
            }
        }
        state.calls.push(Call::Stop {
            run_id: run_id.to_owned(),
        });
        if let Some(sender) = state.endings.get(run_id) {
            sender.send_if_modified(|current| {
                let first = current.is_none();
                if first {
                    *current = Some(End::Exited(STOPPED));
                }
                first
            });
        }
    }

    /// Removes a container after the gate, then gives its resources back.
    async fn destroy(&self, run_id: String) {
        let mut gate = self.destroys_open.subscribe();
        // The sender lives as long as the backend, so this only returns once opened.
        let _ = gate.wait_for(|open| *open).await;
        let mut state = self.state();
        state.calls.push(Call::Destroy {
            run_id: run_id.clone(),
        });
        if let Some((allocation, _)) = state.held_runs.remove(&run_id) {
            state.capacity.release(&allocation);
        }
    }

    /// Waits for the run's scripted end and reports it.
    async fn watch(&self, run: RunId) {
        let run_id = run.name();
        let ending = self
            .state()
            .endings
            .get(&run_id)
            .map(watch::Sender::subscribe);
        let end = match ending {
            Some(mut ending) => match ending.wait_for(Option::is_some).await {
                Ok(end) => *end,
                // The sender lives in the backend's table as long as the backend.
                Err(_) => Some(End::Vanished),
            },
            None => Some(End::Vanished),
        };
        let end = match end {
            Some(End::Exited(outcome)) => RunEnd::Exited(outcome),
            _ => RunEnd::Reported(ReportedEnd {
                state: TaskState::Lost,
                reason: Some(format!(
                    "lost track of the container: container fake-{run_id} of run {run_id} is gone"
                )),
                exit_code: None,
                memory_limited: false,
                started: true,
            }),
        };
        self.report(&run, RunStatus::Ended(end), true);
    }
}

impl FakeBackend {
    /// The scripted launch of a placed run: the gate, the script, then `Running` and the end.
    async fn launch_scripted(&self, run: RunId, task: Task, allocation: Allocation) {
        let mut gate = self.shared.starts_open.subscribe();
        if !*gate.borrow() {
            self.state().starts_waiting += 1;
            // The sender lives as long as the backend, so this only returns once opened.
            let _ = gate.wait_for(|open| *open).await;
            self.state().starts_waiting -= 1;
        }
        let started = self.new_run(&task, run.attempt, &allocation);
        let record = |started: bool| Call::Start {
            task: task.id.clone(),
            attempt: run.attempt,
            started,
            request_seen: Box::new(task.clone()),
        };
        let kill = {
            let mut state = self.state();
            if state.unreachable {
                state.calls.push(record(false));
                drop(state);
                let reason = BackendError::Unreachable {
                    operation: "launch",
                    target: format!("run {}", started.run_id),
                    reason: "connection refused (scripted by the test)".to_owned(),
                }
                .to_string();
                return self
                    .shared
                    .report(&run, RunStatus::NotLaunched { reason }, true);
            }
            let ending = match Self::next_attempt(&mut state, &task.name) {
                Attempt::StartFails => {
                    state.calls.push(record(false));
                    drop(state);
                    let reason = start_failure(&started.run_id, &task.request.image).to_string();
                    let end = RunEnd::NotStarted { reason };
                    return self.shared.report(&run, RunStatus::Ended(end), true);
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
            state.endings.insert(started.run_id.clone(), sender);
            state.latest_run.insert(task.id.clone(), started.clone());
            state
                .held_runs
                .get(&started.run_id)
                .and_then(|(_, kill)| *kill)
        };
        if let Some(grace) = kill {
            self.shared.stop(&started.run_id, grace);
        }
        let started_at = started.started_at;
        self.shared
            .report(&run, RunStatus::Running { started_at }, false);
        self.shared.watch(run).await;
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

    fn free(&self) -> Resources {
        self.state().capacity.free()
    }

    fn cluster_view(&self) -> eremetic::backend::ClusterView {
        eremetic::backend::ClusterView::Local(eremetic::backend::view::LocalView {
            docker_host: None,
            instance_id: "test".into(),
            port_range: [31000, 32000],
            user_network: None,
        })
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

    async fn start(
        &self,
        events: EventSink,
        _framework_id: Option<String>,
    ) -> Result<(), BackendError> {
        let _ = self.shared.events.set(events);
        Ok(())
    }

    fn offer_demand(&self, demand: &mut dyn Iterator<Item = Demand<'_>>) -> Vec<Placement> {
        let mut state = self.state();
        if state.held {
            return Vec::new();
        }
        let state = &mut *state;
        let free = state.capacity.free();
        let held_runs = &state.held_runs;
        let capacity = &mut state.capacity;
        let chosen = place_in_order(
            demand,
            Instant::now(),
            free,
            |run| held_runs.contains_key(&run.name()),
            |wanted| match capacity.place(wanted.needs) {
                Reservation::Reserved(allocation) => Some(allocation),
                Reservation::Wait => None,
            },
        );
        let mut placements = Vec::new();
        for (run, allocation) in chosen {
            placements.push(Placement {
                run: run.clone(),
                agent_id: "fake".to_owned(),
                hostname: "fake-host".to_owned(),
                agent_address: None,
                agent_ip: None,
                agent_port: None,
                framework_id: None,
                host_ports: allocation.host_ports.clone(),
                cpus: allocation.cpus,
                mem_mib: allocation.mem_mib,
                sandbox: Some(self.sandbox_dir(&run.task).display().to_string()),
            });
            state.held_runs.insert(run.name(), (allocation, None));
        }
        placements
    }

    fn launch(&self, placement: Placement, task: Task) {
        let allocation = self
            .state()
            .held_runs
            .get(&placement.run.name())
            .map(|(allocation, _)| allocation.clone())
            .unwrap_or_else(|| panic!("launch of {} that is not held", placement.run));
        let this = FakeBackend {
            shared: self.shared.clone(),
        };
        tokio::spawn(async move {
            this.launch_scripted(placement.run, task, allocation).await;
        });
    }

    fn abandon(&self, placement: Placement) {
        let mut state = self.state();
        if let Some((allocation, _)) = state.held_runs.remove(&placement.run.name()) {
            state.capacity.release(&allocation);
        }
    }

    fn kill(&self, run: &RunId, grace: Duration) {
        let run_id = run.name();
        let known = {
            let state = self.state();
            state.held_runs.contains_key(&run_id) || state.endings.contains_key(&run_id)
        };
        if known {
            self.shared.stop(&run_id, grace);
        } else {
            // A run this backend does not follow: its container is removed.
            let shared = self.shared.clone();
            tokio::spawn(async move { shared.destroy(run_id).await });
        }
    }

    fn acknowledge(&self, ack: AckToken) {
        let shared = self.shared.clone();
        tokio::spawn(async move { shared.destroy(ack.0).await });
    }

    async fn reconcile(&self, runs: Vec<KnownRun>) -> Result<(), BackendError> {
        let mut found: HashMap<String, RecoveredRun> = self
            .state()
            .recovered
            .iter()
            .map(|recovered| (recovered.run.run_id.clone(), recovered.clone()))
            .collect();
        for known in runs {
            let Some(recovered) = found.remove(&known.run.name()) else {
                self.shared.report(&known.run, RunStatus::Unknown, false);
                continue;
            };
            let allocation = Allocation {
                cpus: known.cpus,
                mem_mib: known.mem_mib,
                host_ports: recovered.run.host_ports.clone(),
            };
            {
                let mut state = self.state();
                state.capacity.adopt(&allocation);
                state.held_runs.insert(known.run.name(), (allocation, None));
            }
            if recovered.state == RecoveredState::Running {
                let started_at = recovered.run.started_at;
                self.shared
                    .report(&known.run, RunStatus::Running { started_at }, false);
            }
            let shared = self.shared.clone();
            tokio::spawn(async move { shared.watch(known.run).await });
        }
        if let Some(sink) = self.shared.events.get() {
            for stray in found.into_values() {
                let run = RunId::new(stray.task_id, stray.attempt);
                sink.send(BackendEvent::UnknownRun { run });
            }
        }
        Ok(())
    }

    fn log_source(&self, task: &Task) -> Option<LogSource> {
        task.sandbox_path
            .as_ref()
            .map(|path| LogSource::LocalSandbox(path.into()))
    }

    async fn remove_sandbox(&self, task: &TaskId) -> Result<(), BackendError> {
        self.state()
            .calls
            .push(Call::RemoveSandbox { task: task.clone() });
        Ok(())
    }
}
