//! The interface between the scheduler core and a backend: asynchronous placement and status.
//!
//! A cluster decides placements when offers arrive, launches are only requests, outcomes come
//! back as status updates that must be acknowledged, and kills are fire-and-forget. The
//! interface has that shape for every backend, the local Docker engine included:
//!
//! 1. The core hands the backend the queue's demand in order ([`Backend::offer_demand`]). The
//!    backend answers with [`Placement`]s, at once (the local engine) or later as
//!    [`BackendEvent::Placed`] (offers).
//! 2. The core stores `TASK_STAGING` with the placement and a fresh attempt number, then
//!    calls [`Backend::launch`]; a placement it could not store is given back with
//!    [`Backend::abandon`] (write-ahead: no run exists that the store does not know).
//! 3. What becomes of a run arrives as [`BackendEvent::Status`]. Each may carry an
//!    [`AckToken`]; the core hands it back ([`Backend::acknowledge`]) only after the change is
//!    committed to the store, so an update lost in a crash is delivered again.
//! 4. [`Backend::kill`] returns at once; the core repeats it until a terminal status arrives.
//! 5. After a restart, [`Backend::reconcile`] asks about the runs the store knows; the answers
//!    are status events, and runs the store does not know come as
//!    [`BackendEvent::UnknownRun`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deimos_runtime::runtime::UsageStats;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::{BackendError, OutputDropped, Resources, RunOutcome};
use crate::task::{AgentConstraint, NewTask, Task, TaskId, TaskState};

/// One attempt of a task: the unit a backend places, launches, reports on and kills.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId {
    /// The task.
    pub task: TaskId,
    /// The attempt number (stored with `TASK_STAGING`, never reused).
    pub attempt: u32,
}

impl RunId {
    /// The run of `task`'s attempt `attempt`.
    pub fn new(task: TaskId, attempt: u32) -> RunId {
        RunId { task, attempt }
    }

    /// `<task id>.<attempt>`: the container name and the Mesos task id.
    pub fn name(&self) -> String {
        crate::plan::run_id(&self.task, self.attempt)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.task, self.attempt)
    }
}

/// One queued task as the backend sees it when deciding placements.
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    /// The run a placement would start (the task's next attempt).
    pub run: &'a RunId,
    /// Submission order (lower first).
    pub seq: u64,
    /// What it needs.
    pub needs: &'a Resources,
    /// Agent attributes it requires, all of which must hold.
    pub constraints: &'a [AgentConstraint],
    /// The task's labels (a backend may read placement hints from them, such as the Mesos
    /// launch mode, which decides whether executor resources are needed too).
    pub labels: &'a BTreeMap<String, String>,
    /// Not to be placed before this instant (back-off after a failed attempt).
    pub not_before: Option<Instant>,
}

/// Where a run was placed: its resources are reserved until the run ends or the placement is
/// abandoned.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The run.
    pub run: RunId,
    /// The agent (`local` for the local engine).
    pub agent_id: String,
    /// The agent's host name.
    pub hostname: String,
    /// The agent's HTTP address (`http://host:5051`), when it has one.
    pub agent_address: Option<String>,
    /// The agent's IP address and port (Eremetic's `agent_ip`, `agent_port`), when known.
    pub agent_ip: Option<String>,
    /// The agent's port.
    pub agent_port: Option<u16>,
    /// The framework the run is launched under (Mesos), when there is one.
    pub framework_id: Option<String>,
    /// Host ports, one per requested port mapping, in request order.
    pub host_ports: Vec<u16>,
    /// CPUs reserved.
    pub cpus: f64,
    /// Memory reserved, in MiB.
    pub mem_mib: f64,
    /// The run's sandbox directory, when known before the launch (the local engine).
    pub sandbox: Option<String>,
}

/// An opaque acknowledgement of a status event, handed back with [`Backend::acknowledge`]
/// once the change is stored. Backends encode in it what they need to acknowledge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AckToken(pub String);

/// The end of a run a cluster reported: a terminal state with what the report says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedEnd {
    /// Our terminal state for the reported one (`TASK_LOST` also stands for Mesos' DROPPED,
    /// GONE, GONE_BY_OPERATOR and UNKNOWN).
    pub state: TaskState,
    /// The report's reason and message in words, when it has any.
    pub reason: Option<String>,
    /// The command's exit code, when the report says it.
    pub exit_code: Option<i32>,
    /// The container was killed for exceeding its memory limit.
    pub memory_limited: bool,
    /// The run had reached `TASK_RUNNING` before it ended.
    pub started: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// An exit observed on this machine.
    Exited(RunOutcome),
    /// A terminal state a cluster reported.
    Reported(ReportedEnd),
    /// The container could not be started (sandbox, fetch, image, create or start failed);
    /// the command never ran.
    NotStarted {
        /// What failed, in words.
        reason: String,
    },
}

/// What became of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    /// The container runs.
    Running {
        /// When it started (a timeout counts from here).
        started_at: OffsetDateTime,
    },
    /// The run ended.
    Ended(RunEnd),
    /// The launch did not happen because the backend could not reach what runs containers
    /// (the Docker engine, the master): nothing is wrong with the task, it waits again
    /// without using up a retry.
    NotLaunched {
        /// Why, in words.
        reason: String,
    },
    /// The backend has no trace of the run (an answer to [`Backend::reconcile`]): it never
    /// started, or it vanished while nobody watched.
    Unknown,
    /// The run's agent cannot be reached: the run may still be running and come back. The
    /// core waits `unreachable_timeout` for a `Running` update, then relaunches the task as
    /// a new attempt (and stops the old run should it come back).
    Unreachable {
        /// Why, in words.
        reason: String,
    },
}

/// A status change of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The run.
    pub run: RunId,
    /// What became of it.
    pub status: RunStatus,
    /// To hand back once the change is stored; `None` when nothing waits for it.
    pub ack: Option<AckToken>,
}

/// Something a backend reports to the core.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendEvent {
    /// A queued run was placed (a backend whose placements come later than
    /// [`Backend::offer_demand`] returns).
    Placed(Placement),
    /// A run's status changed.
    Status(StatusUpdate),
    /// The backend found a run the core did not ask about (an older attempt, a run of a task
    /// that ended or was deleted): the core decides whether it is killed.
    UnknownRun {
        /// The run.
        run: RunId,
    },
    /// The backend is connected to its cluster under this framework id, which the core
    /// stores before acknowledging.
    Connected {
        /// The framework id to use from now on.
        framework_id: String,
        /// To hand back once the id is stored.
        ack: Option<AckToken>,
    },
    /// The backend lost its cluster; it reconnects by itself.
    Disconnected {
        /// Why, in words.
        reason: String,
    },
    /// The cluster removed the framework: its runs are gone and the stored framework id
    /// must not be used again.
    FrameworkRemoved {
        /// Why, in words.
        reason: String,
    },
}

/// Where a backend sends its events. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSink {
    sender: mpsc::UnboundedSender<BackendEvent>,
}

impl EventSink {
    /// A sink and the receiving end the core reads.
    pub fn channel() -> (EventSink, mpsc::UnboundedReceiver<BackendEvent>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (EventSink { sender }, receiver)
    }

    /// Sends an event; dropped silently when the core has stopped.
    pub fn send(&self, event: BackendEvent) {
        let _ = self.sender.send(event);
    }

    /// Sends a status change.
    pub fn status(&self, run: RunId, status: RunStatus, ack: Option<AckToken>) {
        self.send(BackendEvent::Status(StatusUpdate { run, status, ack }));
    }
}

/// A run the store knows to be launching, running or being stopped, for
/// [`Backend::reconcile`] after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownRun {
    /// The run.
    pub run: RunId,
    /// Its stored state (`TASK_STAGING`, `TASK_RUNNING` or `TASK_TERMINATING`).
    pub state: TaskState,
    /// What it holds: CPUs, memory and the stored host ports.
    pub cpus: f64,
    /// Memory in MiB.
    pub mem_mib: f64,
    /// Host ports, in request order.
    pub host_ports: Vec<u16>,
    /// The agent it was placed on.
    pub agent_id: Option<String>,
}

/// Where a task's output can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// A directory on this machine holding `stdout` and `stderr`.
    LocalSandbox(PathBuf),
    /// A sandbox on a Mesos agent, read through the agent's `/files` API.
    Agent {
        /// The agent's HTTP address (`http://host:5051`).
        url: String,
        /// The sandbox directory on the agent.
        path: String,
    },
}

/// A place that runs task containers: the local Docker engine, or a Mesos cluster. See the
/// [module documentation](self) for the protocol between the core and a backend.
///
/// Synchronous methods are cheap and never block on I/O for long: the core calls them while
/// deciding what to do.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Short name for logs and the cluster overview (`local`).
    fn name(&self) -> &'static str;

    /// Whether the task could EVER run here (it needs no more than the backend's total
    /// resources, and only features it supports). The error names the field and the limit.
    fn admissible(&self, task: &NewTask) -> Result<(), String>;

    /// Everything the backend has (free or not), for the cluster overview.
    fn total(&self) -> Resources;

    /// What is free now, for the cluster overview.
    fn free(&self) -> Resources;

    /// What the cluster overview shows of this backend beyond its capacity: the local
    /// engine's settings, or the Mesos master, connection and agents. Cheap: no I/O.
    fn cluster_view(&self) -> super::ClusterView;

    /// Why no task may be launched now although resources may be free (for example, the data
    /// directory is below its free-space floor), in words; `None` when launches may go on.
    /// The dispatcher asks before every round, so it must be cheap.
    fn launch_blocker(&self) -> Option<String> {
        None
    }

    /// Starts reporting: from now on events go to `events`. `framework_id` is the one stored
    /// by an earlier [`BackendEvent::Connected`], if any.
    async fn start(
        &self,
        events: EventSink,
        framework_id: Option<String>,
    ) -> Result<(), BackendError>;

    /// The queue's demand, oldest first (a lazy walk of the queue: stop reading when nothing
    /// more can be placed). Replaces any earlier demand. Runs already placed and not yet
    /// launched or abandoned may appear again and must not be placed twice. Returns the
    /// placements decided now; later ones come as [`BackendEvent::Placed`].
    fn offer_demand(&self, demand: &mut dyn Iterator<Item = Demand<'_>>) -> Vec<Placement>;

    /// Launches a placed run of `task` (whose `TASK_STAGING` is stored). Returns at once; the
    /// outcome comes as status events.
    fn launch(&self, placement: Placement, task: Task);

    /// Gives back a placement that will not be launched.
    fn abandon(&self, placement: Placement);

    /// Asks the run to stop: SIGTERM, then SIGKILL after `grace`. Returns at once; the core
    /// repeats it until a terminal status arrives. A run the backend does not follow (an
    /// [`BackendEvent::UnknownRun`]) is removed.
    fn kill(&self, run: &RunId, grace: Duration);

    /// Hands back the token of a status event whose change is stored.
    fn acknowledge(&self, ack: AckToken);

    /// Asks what became of runs the store knows after a restart. Returns once the backend has
    /// the question (an error when it cannot even ask); answers come as status events, and
    /// runs found that are not in `runs` as [`BackendEvent::UnknownRun`].
    async fn reconcile(&self, runs: Vec<KnownRun>) -> Result<(), BackendError>;

    /// Resource usage of a run while its container exists; `None` when it has none (or the
    /// backend cannot tell).
    async fn usage(&self, _run: &RunId) -> Result<Option<UsageStats>, BackendError> {
        Ok(None)
    }

    /// Why a queued task has not been placed yet, in words, when the backend knows something
    /// more specific than "waiting" (for example, which agents' offers do not fit it and why).
    fn waiting_reason(&self, _task: &TaskId) -> Option<String> {
        None
    }

    /// How much of the task's output was dropped by the output limit so far.
    async fn output_dropped(&self, _task: &TaskId) -> OutputDropped {
        OutputDropped::default()
    }

    /// Where the task's output is, once it was placed; `None` before.
    fn log_source(&self, task: &Task) -> Option<LogSource>;

    /// The tasks that have a sandbox directory on this machine (to remove those of purged
    /// tasks). Backends without local sandboxes have none.
    async fn sandboxes(&self) -> Result<Vec<TaskId>, BackendError> {
        Ok(Vec::new())
    }

    /// Deletes the task's sandbox directory on this machine (success when there is none).
    async fn remove_sandbox(&self, _task: &TaskId) -> Result<(), BackendError> {
        Ok(())
    }
}
