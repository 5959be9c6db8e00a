//! Task status updates: what a container outcome means for the task, and the `UPDATE` call
//! carrying it. Pure.

use deimos_runtime::runtime::ExitStatus;
use mesos_proto::v1::executor::{call, Call};
use mesos_proto::v1::{task_status, ExecutorId, FrameworkId, TaskId, TaskState, TaskStatus};

/// A status to report for a task, before it gets its uuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The new state.
    pub state: TaskState,
    /// Why, when Mesos has a reason for it.
    pub reason: Option<task_status::Reason>,
    /// A human-readable explanation.
    pub message: Option<String>,
}

impl Report {
    /// A report without reason or message.
    pub fn plain(state: TaskState) -> Self {
        Report {
            state,
            reason: None,
            message: None,
        }
    }

    /// A report with a message.
    pub fn with_message(state: TaskState, message: impl Into<String>) -> Self {
        Report {
            state,
            reason: None,
            message: Some(message.into()),
        }
    }

    /// Adds a reason.
    pub fn because(mut self, reason: task_status::Reason) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// The terminal report of a container that ended by itself (`killed` false) or after the
/// executor stopped it (`killed` true).
///
/// An OOM kill is a failure with `REASON_CONTAINER_LIMITATION_MEMORY` even during a kill: the
/// limit, not the kill, ended the task.
pub fn exit_report(status: &ExitStatus, killed: bool) -> Report {
    let code = status.exit_code;
    if status.oom_killed {
        return Report::with_message(
            TaskState::TaskFailed,
            format!("container exceeded its memory limit and was OOM-killed (exit code {code})"),
        )
        .because(task_status::Reason::ContainerLimitationMemory);
    }
    let how = match status.signal {
        Some(signal) => format!("container was terminated by signal {signal} (exit code {code})"),
        None => format!("container exited with code {code}"),
    };
    if killed {
        Report::with_message(TaskState::TaskKilled, format!("task killed: {how}"))
    } else if code == 0 {
        Report::with_message(TaskState::TaskFinished, how)
    } else {
        Report::with_message(TaskState::TaskFailed, how)
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
    fn zero_exit_finishes_the_task() {
        let report = exit_report(&exit_status(0, false), false);
        assert_eq!(report.state, TaskState::TaskFinished);
        assert_eq!(report.reason, None);
    }

    #[test]
    fn nonzero_exit_fails_the_task_naming_the_exit_code() {
        let report = exit_report(&exit_status(3, false), false);
        assert_eq!(report.state, TaskState::TaskFailed);
        assert_eq!(
            report.message.as_deref(),
            Some("container exited with code 3")
        );
    }

    #[test]
    fn death_by_signal_names_signal_and_exit_code() {
        let report = exit_report(&exit_status(139, false), false);
        assert_eq!(report.state, TaskState::TaskFailed);
        let message = report.message.unwrap_or_default();
        assert!(
            message.contains("signal 11") && message.contains("139"),
            "{message}"
        );
    }

    #[test]
    fn oom_kill_fails_with_the_memory_limitation_reason_even_when_killing() {
        for killed in [false, true] {
            let report = exit_report(&exit_status(137, true), killed);
            assert_eq!(report.state, TaskState::TaskFailed);
            assert_eq!(
                report.reason,
                Some(task_status::Reason::ContainerLimitationMemory)
            );
            assert!(report.message.unwrap_or_default().contains("137"));
        }
    }

    #[test]
    fn exit_after_a_kill_reports_killed_whatever_the_code() {
        for code in [0, 1, 137, 143] {
            let report = exit_report(&exit_status(code, false), true);
            assert_eq!(report.state, TaskState::TaskKilled, "{code}");
        }
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
