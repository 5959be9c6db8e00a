//! Status updates: a v1 `TaskStatus` read into our task model.
//!
//! Fixes of Eremetic (E-12): the Mesos reason and message are kept as a readable reason; the
//! states added by partition awareness and TASK_KILLING are mapped to our states with a reason
//! saying what Mesos meant; the exit code is captured when the message or the data says it.

use mesos_proto::v1::{task_status, TaskState as MesosState, TaskStatus};
use time::OffsetDateTime;

use super::task_info::parse_mesos_task_id;
use super::MesosError;
use crate::engine::ReportedEnd;
use crate::task::{TaskId, TaskState};

/// Where the Docker executor mounts the sandbox inside the container.
pub const SANDBOX_MOUNT: &str = "/mnt/mesos/sandbox";

/// What one status update says about a task.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// The Mesos task id.
    pub mesos_task_id: String,
    /// Our task, when the Mesos task id is one of ours.
    pub task_id: Option<TaskId>,
    /// The attempt, when the Mesos task id carries one.
    pub attempt: Option<u32>,
    /// The Mesos state as sent.
    pub mesos_state: MesosState,
    /// Our state; `None` for TASK_UNREACHABLE, which leaves the task's state alone (the task
    /// may still be running and come back; [`StatusChange::reason`] says so).
    pub state: Option<TaskState>,
    /// Why, in words, with the Mesos reason name and message (for anything but a plain
    /// staging, starting, running or finished update).
    pub reason: Option<String>,
    /// Exit status of the command, when the update says it.
    pub exit_code: Option<i32>,
    /// The container was killed for exceeding its memory limit
    /// (`REASON_CONTAINER_LIMITATION_MEMORY`).
    pub memory_limited: bool,
    /// Agent of the task.
    pub agent_id: Option<String>,
    /// Executor of the task.
    pub executor_id: Option<String>,
    /// The task's sandbox directory on the agent (from the Docker executor's data).
    pub sandbox_path: Option<String>,
    /// IP addresses of the container.
    pub container_ips: Vec<String>,
    /// When Mesos generated the update.
    pub timestamp: Option<OffsetDateTime>,
    /// The answer to a reconciliation (master-generated, never acknowledged).
    pub from_reconciliation: bool,
    /// The update's uuid: present when it must be acknowledged.
    pub uuid: Option<Vec<u8>>,
}

/// Reads a status update. Fails only on a state number unknown to the protocol.
pub fn read_status(status: &TaskStatus) -> Result<StatusChange, MesosError> {
    let mesos_task_id = status.task_id.value.clone();
    let mesos_state =
        MesosState::try_from(status.state).map_err(|_| MesosError::InvalidUpdate {
            task: mesos_task_id.clone(),
            why: format!("unknown task state number {}", status.state),
        })?;
    let (task_id, attempt) = match parse_mesos_task_id(&mesos_task_id) {
        Some((task, attempt)) => (Some(task), attempt),
        None => (None, None),
    };
    let state = our_state(mesos_state);
    let inspect = status.data.as_deref().and_then(docker_inspect);
    let exit_code = status
        .message
        .as_deref()
        .and_then(exit_code_in_message)
        .or_else(|| {
            inspect
                .as_ref()
                .filter(|_| state.is_some_and(TaskState::is_terminal))
                .and_then(|inspect| inspect.exit_code)
        })
        .or((mesos_state == MesosState::TaskFinished).then_some(0));
    Ok(StatusChange {
        mesos_task_id,
        task_id,
        attempt,
        mesos_state,
        state,
        reason: describe(status, mesos_state),
        exit_code,
        memory_limited: status.reason
            == Some(task_status::Reason::ContainerLimitationMemory as i32),
        agent_id: status.agent_id.as_ref().map(|agent| agent.value.clone()),
        executor_id: status.executor_id.as_ref().map(|id| id.value.clone()),
        sandbox_path: inspect.and_then(|inspect| inspect.sandbox),
        container_ips: status
            .container_status
            .iter()
            .flat_map(|container| &container.network_infos)
            .flat_map(|network| &network.ip_addresses)
            .filter_map(|address| address.ip_address.clone())
            .collect(),
        timestamp: status.timestamp.and_then(|seconds| {
            OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9) as i128).ok()
        }),
        from_reconciliation: status.reason == Some(task_status::Reason::Reconciliation as i32),
        uuid: status.uuid.clone(),
    })
}

impl StatusChange {
    /// The end of a run this update reports, for [`crate::engine::verdict`]; `None` unless
    /// its state ends the task. `started`: the run had reached `TASK_RUNNING` before (a
    /// failure before that may be retried).
    pub fn reported_end(&self, started: bool) -> Option<ReportedEnd> {
        let state = self.state.filter(|state| state.is_terminal())?;
        Some(ReportedEnd {
            state,
            reason: self.reason.clone(),
            exit_code: self.exit_code,
            memory_limited: self.memory_limited,
            started,
        })
    }
}

/// Our state for a Mesos state. The partition-aware states mean: DROPPED never started,
/// GONE / GONE_BY_OPERATOR definitely not running, UNKNOWN not known to the master: all
/// LOST for us (a relaunch is safe); UNREACHABLE may still run: no change.
pub fn our_state(state: MesosState) -> Option<TaskState> {
    Some(match state {
        MesosState::TaskStaging => TaskState::Staging,
        MesosState::TaskStarting => TaskState::Starting,
        MesosState::TaskRunning => TaskState::Running,
        MesosState::TaskKilling => TaskState::Terminating,
        MesosState::TaskFinished => TaskState::Finished,
        MesosState::TaskFailed => TaskState::Failed,
        MesosState::TaskKilled => TaskState::Killed,
        MesosState::TaskError => TaskState::Error,
        MesosState::TaskLost
        | MesosState::TaskDropped
        | MesosState::TaskGone
        | MesosState::TaskGoneByOperator
        | MesosState::TaskUnknown => TaskState::Lost,
        MesosState::TaskUnreachable => return None,
    })
}

/// What a state added after Eremetic means, in words.
fn state_meaning(state: MesosState) -> Option<&'static str> {
    Some(match state {
        MesosState::TaskKilling => "Mesos is killing the task (TASK_KILLING)",
        MesosState::TaskDropped => "the task was dropped before it started (TASK_DROPPED)",
        MesosState::TaskUnreachable => {
            "the task's agent is unreachable; the task may still be running (TASK_UNREACHABLE)"
        }
        MesosState::TaskGone => "the task is gone: it is not running on its agent (TASK_GONE)",
        MesosState::TaskGoneByOperator => {
            "an operator marked the task's agent as gone (TASK_GONE_BY_OPERATOR)"
        }
        MesosState::TaskUnknown => "Mesos has no record of the task (TASK_UNKNOWN)",
        _ => return None,
    })
}

/// `"<state meaning>: <reason in words> (REASON_X): <message>"`, skipping absent parts; `None`
/// for plain progress updates.
fn describe(status: &TaskStatus, state: MesosState) -> Option<String> {
    let plain = matches!(
        state,
        MesosState::TaskStaging
            | MesosState::TaskStarting
            | MesosState::TaskRunning
            | MesosState::TaskFinished
    );
    if plain {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    parts.extend(state_meaning(state).map(str::to_owned));
    if let Some(reason) = status
        .reason
        .and_then(|reason| task_status::Reason::try_from(reason).ok())
    {
        parts.push(format!(
            "{} ({})",
            reason_words(reason, status),
            reason.as_str_name()
        ));
    }
    parts.extend(
        status
            .message
            .as_deref()
            .map(str::trim)
            .filter(|message| !message.is_empty())
            .map(str::to_owned),
    );
    (!parts.is_empty()).then(|| parts.join(": "))
}

fn reason_words(reason: task_status::Reason, status: &TaskStatus) -> String {
    use task_status::Reason as R;
    let words = match reason {
        R::ContainerLimitationMemory => {
            return match memory_limit_mib(status) {
                Some(limit) => format!("container ran out of memory (limit {limit} MiB)"),
                None => "container ran out of memory".to_owned(),
            }
        }
        R::CommandExecutorFailed => "the command executor failed",
        R::ExecutorTerminated => "the executor terminated",
        R::ExecutorUnregistered => "the executor unregistered",
        R::FrameworkRemoved => "the framework was removed",
        R::GcError => "garbage collection failed on the agent",
        R::InvalidFrameworkid => "invalid framework id",
        R::InvalidOffers => "the offers used to launch the task were invalid",
        R::MasterDisconnected => "the master disconnected",
        R::Reconciliation => "reconciliation",
        R::AgentDisconnected => "the agent disconnected",
        R::AgentRemoved => "the agent was removed",
        R::AgentRestarted => "the agent restarted",
        R::AgentUnknown => "the agent is unknown",
        R::TaskInvalid => "the task description is invalid",
        R::TaskUnauthorized => "the task is not authorized",
        R::TaskUnknown => "the task is unknown",
        R::ContainerPreempted => "the container was preempted",
        R::ResourcesUnknown => "the task's resources are unknown",
        R::ContainerLimitation => "the container exceeded a resource limit",
        R::ContainerLimitationDisk => "the container exceeded its disk quota",
        R::ContainerLaunchFailed => "the container could not be launched",
        R::ContainerUpdateFailed => "the container could not be updated",
        R::ExecutorRegistrationTimeout => "the executor did not register in time",
        R::ExecutorReregistrationTimeout => "the executor did not re-register in time",
        R::TaskGroupInvalid => "the task group is invalid",
        R::TaskGroupUnauthorized => "the task group is not authorized",
        R::IoSwitchboardExited => "the I/O switchboard exited",
        R::TaskCheckStatusUpdated => "the task's check status changed",
        R::TaskHealthCheckStatusUpdated => "the task's health changed",
        R::TaskKilledDuringLaunch => "the task was killed during its launch",
        R::AgentRemovedByOperator => "an operator removed the agent",
        R::AgentReregistered => "the agent re-registered",
        R::MaxCompletionTimeReached => "the task reached its maximum completion time",
        R::AgentDraining => "the agent is draining",
    };
    words.to_owned()
}

/// The memory limit a limitation update names, in MiB.
fn memory_limit_mib(status: &TaskStatus) -> Option<f64> {
    status
        .limitation
        .as_ref()?
        .resources
        .iter()
        .find(|resource| resource.name == "mem")
        .and_then(|resource| resource.scalar.as_ref())
        .map(|scalar| scalar.value)
}

/// The exit status stated by an executor message: `... exited with status N` (command and
/// Docker executors), or `128 + n` for `... terminated with signal <name>`.
pub fn exit_code_in_message(message: &str) -> Option<i32> {
    if let Some((_, rest)) = message.split_once("exited with status ") {
        let digits: String = rest
            .chars()
            .enumerate()
            .take_while(|(index, c)| c.is_ascii_digit() || (*index == 0 && *c == '-'))
            .map(|(_, c)| c)
            .collect();
        return digits.parse().ok();
    }
    let (_, rest) = message.split_once("terminated with signal ")?;
    let name = rest.trim_end_matches(['.', '\n', ' ']);
    signal_number(name).map(|signal| 128 + signal)
}

/// Signal numbers (Linux) by `strsignal` description or `SIG` name.
fn signal_number(name: &str) -> Option<i32> {
    const SIGNALS: [(i32, &str, &str); 15] = [
        (1, "Hangup", "SIGHUP"),
        (2, "Interrupt", "SIGINT"),
        (3, "Quit", "SIGQUIT"),
        (4, "Illegal instruction", "SIGILL"),
        (5, "Trace/breakpoint trap", "SIGTRAP"),
        (6, "Aborted", "SIGABRT"),
        (7, "Bus error", "SIGBUS"),
        (8, "Floating point exception", "SIGFPE"),
        (9, "Killed", "SIGKILL"),
        (10, "User defined signal 1", "SIGUSR1"),
        (11, "Segmentation fault", "SIGSEGV"),
        (12, "User defined signal 2", "SIGUSR2"),
        (13, "Broken pipe", "SIGPIPE"),
        (14, "Alarm clock", "SIGALRM"),
        (15, "Terminated", "SIGTERM"),
    ];
    SIGNALS
        .iter()
        .find(|(_, words, short)| name.starts_with(words) || name.starts_with(short))
        .map(|(number, _, _)| *number)
}

/// What the Docker executor's `data` (a `docker inspect` array) tells.
#[derive(Debug, Clone, PartialEq)]
struct Inspect {
    sandbox: Option<String>,
    exit_code: Option<i32>,
}

fn docker_inspect(data: &[u8]) -> Option<Inspect> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    let container = value.as_array()?.first()?;
    let sandbox = container["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|mount| mount["Destination"] == SANDBOX_MOUNT)
        .and_then(|mount| mount["Source"].as_str())
        .map(str::to_owned);
    let state = &container["State"];
    let exit_code = (state["Running"] == false)
        .then(|| state["ExitCode"].as_i64())
        .flatten()
        .and_then(|code| i32::try_from(code).ok());
    Some(Inspect { sandbox, exit_code })
}

#[cfg(test)]
#[path = "updates_tests.rs"]
mod tests;
