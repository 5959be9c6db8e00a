//! Where tasks run: the [`Backend`] interface (asynchronous placement and status, see
//! [`interface`]) and its embedded default, [`LocalBackend`], which runs tasks on the local
//! Docker engine through the containerizer's runtime library.
//!
//! Resource accounting is part of the backend because only the backend knows what it has:
//! placements reserve cpus, memory and host ports for one run until its end is acknowledged.

pub mod capacity;
mod error;
pub mod interface;
pub mod local;
pub mod mesos;
pub mod placement;
pub mod view;

use std::path::PathBuf;

use deimos_runtime::runtime::ExitStatus;
use time::OffsetDateTime;

pub use self::mesos::{MesosBackend, MesosConfig};
pub use capacity::Capacity;
pub use error::BackendError;
pub use interface::{
    AckToken, Backend, BackendEvent, Demand, EventSink, KnownRun, LogSource, Placement,
    ReportedEnd, RunEnd, RunId, RunStatus, StatusUpdate,
};
pub use local::{host_capacity, LocalBackend, LocalConfig};
pub use view::ClusterView;

use crate::task::{NewTask, TaskId};

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

/// Resources reserved for one run by a placement (or re-reserved for a run found again after a
/// restart).
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

/// The answer of [`Capacity::place`]: reserved, or not enough free now.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// The resources are reserved.
    Reserved(Allocation),
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

/// The state of a run found again by [`LocalBackend::find_runs`].
#[derive(Debug, Clone, PartialEq)]
pub enum RecoveredState {
    /// Still running: follow it with [`LocalBackend::wait_run`].
    Running,
    /// It ended while nobody watched. [`LocalBackend::wait_run`] still saves its output and returns
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
