//! Where tasks run: the [`Backend`] trait and its embedded default, [`LocalBackend`], which runs
//! tasks on the local Docker engine through the containerizer's runtime library.
//!
//! The trait is shaped like Nomad's task driver interface (admit, place, start, wait, stop,
//! destroy, recover) so that the scheduler core sees every backend the same way and a Mesos
//! backend can implement it later. Resource accounting is part of the backend because only the
//! backend knows what it has: [`Backend::place`] reserves cpus, memory and host ports for one
//! run, [`Backend::release`] gives them back, [`Backend::adopt`] re-reserves what a run found
//! again after a restart ([`Backend::recover`]) holds.

pub mod capacity;
mod error;
pub mod local;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use deimos_runtime::runtime::{ExitStatus, UsageStats};
use time::OffsetDateTime;

pub use capacity::Capacity;
pub use error::BackendError;
pub use local::{host_capacity, LocalBackend, LocalConfig};

use crate::task::{NewTask, Task, TaskId};

/// What a task needs from a backend to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resources {
    /// CPUs.
    pub cpus: f64,
    /// Memory in MiB.
    pub mem_mib: f64,
    /// Number of host ports.
    pub ports: usize,
}

impl Resources {
    /// What a validated request needs: its cpus, its memory and one host port per requested
    /// port mapping.
    pub fn of(task: &NewTask) -> Resources {
        Resources {
            cpus: task.cpu,
            mem_mib: task.mem,
            ports: task.ports.len(),
        }
    }
}

/// Resources reserved for one run by [`Backend::place`] (or re-reserved by [`Backend::adopt`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// CPUs.
    pub cpus: f64,
    /// Memory in MiB.
    pub mem_mib: f64,
    /// Host ports, one per requested port mapping, in request order.
    pub host_ports: Vec<u16>,
}

impl Allocation {
    /// The allocation a run of `task` holds with the given host ports: what a recovered run
    /// holds, for [`Backend::adopt`].
    pub fn for_task(task: &NewTask, host_ports: Vec<u16>) -> Allocation {
        Allocation {
            cpus: task.cpu,
            mem_mib: task.mem,
            host_ports,
        }
    }
}

/// The answer of [`Backend::place`].
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// The resources are reserved; start the run with them.
    Placed(Allocation),
    /// Not enough free resources now; try again after a release.
    Wait,
}

/// One started attempt of a task: a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `<task id>.<attempt>`, also the Docker container name.
    pub run_id: String,
    /// The Docker container id.
    pub container_id: String,
    /// The task's sandbox directory on the host (holds `stdout`, `stderr` and fetched files).
    pub sandbox: PathBuf,
    /// Host ports of the run, in the order of the task's requested ports.
    pub host_ports: Vec<u16>,
    /// Name of the host the container runs on.
    pub hostname: String,
    /// When the container started.
    pub started_at: OffsetDateTime,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// Exit code of the main process (`128 + n` when it died of signal `n`).
    pub exit_code: i32,
    /// The kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// The signal that killed the main process, when known.
    pub signal: Option<i32>,
}

impl From<ExitStatus> for RunOutcome {
    fn from(status: ExitStatus) -> RunOutcome {
        let exit_code = i32::try_from(status.exit_code).unwrap_or(if status.exit_code < 0 {
            i32::MIN
        } else {
            i32::MAX
        });
        RunOutcome {
            exit_code,
            oom_killed: status.oom_killed,
            signal: status.signal,
        }
    }
}

/// Bytes of a task's output dropped because a stream exceeded the output limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputDropped {
    /// Bytes of stdout no longer kept.
    pub stdout: u64,
    /// Bytes of stderr no longer kept.
    pub stderr: u64,
}

/// The state of a run found again by [`Backend::recover`].
#[derive(Debug, Clone, PartialEq)]
pub enum RecoveredState {
    /// Still running: follow it with [`Backend::wait`].
    Running,
    /// It ended while nobody watched. [`Backend::wait`] still saves its output and returns
    /// the same outcome.
    Exited(RunOutcome),
}

/// A run of a previous instance of the service, found again by its container labels.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredRun {
    /// The task.
    pub task_id: TaskId,
    /// The attempt number of the run.
    pub attempt: u32,
    /// The run.
    pub run: Run,
    /// Whether it still runs.
    pub state: RecoveredState,
}

/// A place that runs task containers (the local Docker engine, later a Mesos cluster).
///
/// Resource methods (`admissible`, `place`, `adopt`, `release`, `free`) are synchronous and
/// cheap: the scheduler calls them while deciding what to launch.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Short name for logs and the task document (`local`).
    fn name(&self) -> &'static str;

    /// Whether the task could EVER run here (it needs no more than the backend's total
    /// resources, and only features it supports). The error names the field and the limit.
    fn admissible(&self, task: &NewTask) -> Result<(), String>;

    /// Reserves `needs` if they are free now.
    fn place(&self, needs: &Resources) -> Placement;

    /// Everything the backend has (free or not), for the cluster overview.
    fn total(&self) -> Resources;

    /// Resource usage of a task's run while its container exists; `None` when it has none
    /// (or the backend cannot tell).
    async fn usage(&self, _run_id: &str) -> Result<Option<UsageStats>, BackendError> {
        Ok(None)
    }

    /// What is free now (for the scheduler's view of which queued tasks could start).
    fn free(&self) -> Resources;

    /// Why no task may be launched now although resources may be free (for example, the data
    /// directory is below its free-space floor), in words; `None` when launches may go on.
    /// The dispatcher asks before every launch round, so it must be cheap.
    fn launch_blocker(&self) -> Option<String> {
        None
    }

    /// How much of the task's output was dropped by the output limit so far.
    async fn output_dropped(&self, _task: &TaskId) -> OutputDropped {
        OutputDropped::default()
    }

    /// Marks the resources of a recovered run as used.
    fn adopt(&self, allocation: &Allocation);

    /// Gives back the resources of a run that ended (or never started). Release each
    /// allocation exactly once: its ports may be handed out again right after.
    fn release(&self, allocation: &Allocation);

    /// Starts attempt `attempt` of `task` with the reserved `allocation`: prepares the
    /// sandbox, fetches the task's URIs into it, creates and starts the container (pulling the
    /// image when it is missing).
    async fn start(
        &self,
        task: &Task,
        attempt: u32,
        allocation: &Allocation,
    ) -> Result<Run, BackendError>;

    /// Waits for the run to end while saving its output into the sandbox; returns once the
    /// container has stopped and its output is saved. Also for adopted runs.
    async fn wait(&self, run: &Run) -> Result<RunOutcome, BackendError>;

    /// Asks the run to stop: SIGTERM, then SIGKILL after `grace`. Returns once it has stopped.
    async fn stop(&self, run: &Run, grace: Duration) -> Result<(), BackendError>;

    /// Removes the run's container (the sandbox stays).
    async fn destroy(&self, run: &Run) -> Result<(), BackendError>;

    /// The runs of this instance that still exist (running or exited), found by their labels.
    async fn recover(&self) -> Result<Vec<RecoveredRun>, BackendError>;

    /// The task's sandbox directory.
    fn sandbox_dir(&self, task: &TaskId) -> PathBuf;

    /// The tasks that have a sandbox directory (to remove those of purged tasks). Backends
    /// without local sandboxes have none.
    async fn sandboxes(&self) -> Result<Vec<TaskId>, BackendError> {
        Ok(Vec::new())
    }

    /// Deletes the task's sandbox directory (success when it does not exist).
    async fn remove_sandbox(&self, task: &TaskId) -> Result<(), BackendError>;
}
