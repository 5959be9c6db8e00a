//! Task status updates: what a container outcome means for the task, and the `UPDATE` call
//! carrying it. Pure.
//!
//! End messages use the words of Mesos' executors (`Container exited with status N`,
//! `Container terminated with signal <strsignal description>`), so that schedulers reading
//! them (Eremetic's, ours) find the exit status. An OOM kill is described as Mesos' memory
//! isolator does (`Memory limit exceeded: Requested: 32MB`), with
//! `REASON_CONTAINER_LIMITATION_MEMORY` and the `mem` limitation.

use deimos_runtime::runtime::ExitStatus;
use mesos_proto::v1::executor::{call, Call};
use mesos_proto::v1::{
    task_status, value, ContainerStatus, ExecutorId, FrameworkId, Resource, TaskId,
    TaskResourceLimitation, TaskState, TaskStatus,
};

/// A status to report for a task, before it gets its uuid.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The new state.
    pub state: TaskState,
    /// Why, when Mesos has a reason for it.
    pub reason: Option<task_status::Reason>,
    /// A human-readable explanation.
    pub message: Option<String>,
    /// `TaskStatus.data`: the container's `docker inspect` array on TASK_RUNNING.
    pub data: Option<Vec<u8>>,
    /// `TaskStatus.container_status`: the container's network addresses.
    pub container_status: Option<ContainerStatus>,
    /// `TaskStatus.limitation`: the resource whose limit ended the task.
    pub limitation: Option<TaskResourceLimitation>,
}

impl Report {
    /// A report without reason or message.
    pub fn plain(state: TaskState) -> Self {
        Report {
            state,
            reason: None,
            message: None,
            data: None,
            container_status: None,
            limitation: None,
        }
    }

    /// A report with a message.
    pub fn with_message(state: TaskState, message: impl Into<String>) -> Self {
        Report {
            message: Some(message.into()),
            ..Report::plain(state)
        }
    }

    /// Adds a reason.
    pub fn because(mut self, reason: task_status::Reason) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// The terminal report of a container that ended by itself (`killed` false) or after the
/// executor stopped it (`killed` true); `memory_limit` is the container's memory limit in
/// bytes, when it has one.
///
/// An OOM kill is a failure with `REASON_CONTAINER_LIMITATION_MEMORY` even during a kill: the
/// limit, not the kill, ended the task.
pub fn exit_report(status: &ExitStatus, killed: bool, memory_limit: Option<u64>) -> Report {
    let how = end_message(status);
    if status.oom_killed {
        let requested = memory_limit
            .map(|limit| format!(": Requested: {}", mesos_bytes(limit)))
            .unwrap_or_default();
        let mut report = Report::with_message(
            TaskState::TaskFailed,
            format!("Memory limit exceeded{requested}; {how}"),
        )
        .because(task_status::Reason::ContainerLimitationMemory);
        report.limitation = memory_limit.map(memory_limitation);
        return report;
    }
    let state = if killed {
        TaskState::TaskKilled
    } else if status.exit_code == 0 {
        TaskState::TaskFinished
    } else {
        TaskState::TaskFailed
    };
    Report::with_message(state, how)
}

/// `Container exited with status N`, or `Container terminated with signal <description>`
/// when the exit code says the main process died of a signal (Mesos' `WSTRINGIFY`).
pub fn end_message(status: &ExitStatus) -> String {
    match status.signal {
        Some(signal) => format!(
            "Container terminated with signal {}",
            signal_description(signal)
        ),
        None => format!("Container exited with status {}", status.exit_code),
    }
}

/// What glibc's `strsignal` says of a Linux signal in the C locale (the text Mesos puts in
/// its messages).
pub fn signal_description(signal: i32) -> String {
    const NAMES: [&str; 31] = [
        "Hangup",
        "Interrupt",
        "Quit",
        "Illegal instruction",
        "Trace/breakpoint trap",
        "Aborted",
        "Bus error",
        "Floating point exception",
        "Killed",
        "User defined signal 1",
        "Segmentation fault",
        "User defined signal 2",
        "Broken pipe",
        "Alarm clock",
        "Terminated",
        "Stack fault",
        "Child exited",
        "Continued",
        "Stopped (signal)",
        "Stopped",
        "Stopped (tty input)",
        "Stopped (tty output)",
        "Urgent I/O condition",
        "CPU time limit exceeded",
        "File size limit exceeded",
        "Virtual timer expired",
        "Profiling timer expired",
        "Window changed",
        "I/O possible",
        "Power failure",
        "Bad system call",
    ];
    /// glibc's SIGRTMIN and SIGRTMAX (32 and 33 are taken by the thread library).
    const REALTIME: std::ops::RangeInclusive<i32> = 34..=64;
    match usize::try_from(signal).ok().and_then(|n| n.checked_sub(1)) {
        Some(index) if index < NAMES.len() => NAMES[index].to_owned(),
        _ if REALTIME.contains(&signal) => {
            format!("Real-time signal {}", signal - REALTIME.start())
        }
        _ => format!("Unknown signal {signal}"),
    }
}

/// A byte count as Mesos' `Bytes` prints it: the largest of GB, MB, KB that divides it
/// exactly, else bytes.
fn mesos_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    UNITS
        .iter()
        .find(|(size, _)| bytes > 0 && bytes % size == 0)
        .map_or_else(
            || format!("{bytes}B"),
            |(size, unit)| format!("{}{unit}", bytes / size),
        )
}

/// The `mem` resource (in MB, as Mesos counts it) whose limit was reached.
fn memory_limitation(limit: u64) -> TaskResourceLimitation {
    TaskResourceLimitation {
        resources: vec![Resource {
            name: "mem".into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar {
                value: limit as f64 / f64::from(1 << 20),
            }),
            ..Default::default()
        }],
    }
}

/// Whether a state ends a task.
pub use mesos_client::is_terminal;

/// The ids every call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
}

impl Envelope {
    /// A call of `kind` with the envelope's ids.
    pub fn call(&self, kind: call::Type) -> Call {
        Call {
            executor_id: ExecutorId {
                value: self.executor_id.clone(),
            },
            framework_id: FrameworkId {
                value: self.framework_id.clone(),
            },
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    /// The `Call.Update` of `report` for `task_id`, identified by `uuid` (16 bytes of a
    /// version-4 UUID), from `SOURCE_EXECUTOR`.
    pub fn update(&self, task_id: &str, report: &Report, uuid: [u8; 16]) -> call::Update {
        call::Update {
            status: TaskStatus {
                task_id: TaskId {
                    value: task_id.to_owned(),
                },
                state: report.state as i32,
                message: report.message.clone(),
                source: Some(task_status::Source::Executor as i32),
                reason: report.reason.map(|reason| reason as i32),
                data: report.data.clone(),
                container_status: report.container_status.clone(),
                limitation: report.limitation.clone(),
                executor_id: Some(ExecutorId {
                    value: self.executor_id.clone(),
                }),
                uuid: Some(uuid.to_vec()),
                ..Default::default()
            },
        }
    }

    /// The UPDATE call carrying `update`.
    pub fn update_call(&self, update: call::Update) -> Call {
        Call {
            update: Some(update),
            ..self.call(call::Type::Update)
        }
    }
}

/// Makes 16 random bytes a version-4, RFC 4122 variant UUID (what the agent's `UUID::fromBytes`
/// accepts).
pub fn as_uuid_v4(mut bytes: [u8; 16]) -> [u8; 16] {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

#[cfg(test)]
mod tests {
    use deimos_runtime::runtime::exit_status;

    use super::*;

    #[test]
    fn zero_exit_finishes_the_task_in_the_words_of_mesos() {
        let report = exit_report(&exit_status(0, false), false, None);
        assert_eq!(report.state, TaskState::TaskFinished);
        assert_eq!(report.reason, None);
        assert_eq!(
            report.message.as_deref(),
            Some("Container exited with status 0")
        );
    }

    #[test]
    fn nonzero_exit_fails_the_task_naming_the_exit_status() {
        let report = exit_report(&exit_status(3, false), false, None);
        assert_eq!(report.state, TaskState::TaskFailed);
        assert_eq!(
            report.message.as_deref(),
            Some("Container exited with status 3")
        );
    }

    #[test]
    fn death_by_signal_names_the_signal_as_strsignal_does() {
        let report = exit_report(&exit_status(139, false), false, None);
        assert_eq!(report.state, TaskState::TaskFailed);
        assert_eq!(
            report.message.as_deref(),
            Some("Container terminated with signal Segmentation fault")
        );
    }

    #[test]
    fn signal_descriptions_follow_glibc() {
        assert_eq!(signal_description(9), "Killed");
        assert_eq!(signal_description(15), "Terminated");
        assert_eq!(signal_description(1), "Hangup");
        assert_eq!(signal_description(31), "Bad system call");
        assert_eq!(signal_description(34), "Real-time signal 0");
        assert_eq!(signal_description(64), "Real-time signal 30");
        assert_eq!(signal_description(32), "Unknown signal 32");
        assert_eq!(signal_description(0), "Unknown signal 0");
    }

    #[test]
    fn oom_kill_fails_with_the_memory_limitation_reason_even_when_killing() {
        for killed in [false, true] {
            let report = exit_report(&exit_status(137, true), killed, Some(32 << 20));
            assert_eq!(report.state, TaskState::TaskFailed);
            assert_eq!(
                report.reason,
                Some(task_status::Reason::ContainerLimitationMemory)
            );
            assert_eq!(
                report.message.as_deref(),
                Some("Memory limit exceeded: Requested: 32MB; Container terminated with signal Killed")
            );
            let limitation = report.limitation.unwrap_or_default();
            assert_eq!(limitation.resources[0].name, "mem");
            assert_eq!(limitation.resources[0].scalar.map(|s| s.value), Some(32.0));
        }
        let report = exit_report(&exit_status(137, true), false, None);
        assert_eq!(
            report.message.as_deref(),
            Some("Memory limit exceeded; Container terminated with signal Killed")
        );
        assert_eq!(report.limitation, None);
    }

    #[test]
    fn byte_counts_print_as_mesos_prints_them() {
        assert_eq!(mesos_bytes(2 << 30), "2GB");
        assert_eq!(mesos_bytes(1536 << 20), "1536MB");
        assert_eq!(mesos_bytes(3 << 10), "3KB");
        assert_eq!(mesos_bytes(1000), "1000B");
        assert_eq!(mesos_bytes(0), "0B");
    }

    #[test]
    fn exit_after_a_kill_reports_killed_whatever_the_code() {
        for code in [0, 1, 137, 143] {
            let report = exit_report(&exit_status(code, false), true, None);
            assert_eq!(report.state, TaskState::TaskKilled, "{code}");
        }
        let report = exit_report(&exit_status(143, false), true, None);
        assert_eq!(
            report.message.as_deref(),
            Some("Container terminated with signal Terminated")
        );
    }

    #[test]
    fn terminal_states_are_the_final_ones() {
        assert!(is_terminal(TaskState::TaskFinished));
        assert!(is_terminal(TaskState::TaskKilled));
        assert!(is_terminal(TaskState::TaskFailed));
        assert!(!is_terminal(TaskState::TaskRunning));
        assert!(!is_terminal(TaskState::TaskStarting));
        assert!(!is_terminal(TaskState::TaskKilling));
    }

    #[test]
    fn update_comes_from_the_executor_with_its_uuid_and_ids() {
        let envelope = Envelope {
            framework_id: "fw".into(),
            executor_id: "ex".into(),
        };
        let report = Report::with_message(TaskState::TaskFailed, "boom")
            .because(task_status::Reason::ContainerLaunchFailed);
        let call = envelope.update_call(envelope.update("t1", &report, [7; 16]));
        assert_eq!(call.r#type, Some(call::Type::Update as i32));
        assert_eq!(call.framework_id.value, "fw");
        assert_eq!(call.executor_id.value, "ex");
        let status = call.update.map(|u| u.status).unwrap_or_default();
        assert_eq!(status.task_id.value, "t1");
        assert_eq!(status.state(), TaskState::TaskFailed);
        assert_eq!(status.source(), task_status::Source::Executor);
        assert_eq!(status.reason(), task_status::Reason::ContainerLaunchFailed);
        assert_eq!(status.uuid, Some(vec![7; 16]));
        assert_eq!(status.message.as_deref(), Some("boom"));
        assert_eq!(status.executor_id.map(|e| e.value).as_deref(), Some("ex"));
    }

    #[test]
    fn uuid_bytes_get_version_4_and_rfc_4122_variant() {
        let uuid = as_uuid_v4([0xff; 16]);
        assert_eq!(uuid[6] >> 4, 4);
        assert_eq!(uuid[8] >> 6, 0b10);
        let uuid = as_uuid_v4([0; 16]);
        assert_eq!(uuid[6], 0x40);
        assert_eq!(uuid[8], 0x80);
    }
}
