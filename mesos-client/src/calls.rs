//! Names of calls for messages, terminal task states and heartbeat intervals.

use std::time::Duration;

use mesos_proto::v1::{executor, scheduler, TaskState};

/// Mesos' heartbeat interval when SUBSCRIBED does not announce one.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// A call message whose type has a name (`SUBSCRIBE`, `UPDATE`, ...), for logs and errors.
pub trait CallName {
    /// The name of the call's type, `UNKNOWN` when unset or not known to us.
    fn call_name(&self) -> &'static str;
}

impl CallName for scheduler::Call {
    fn call_name(&self) -> &'static str {
        self.r#type
            .and_then(|kind| scheduler::call::Type::try_from(kind).ok())
            .map_or("UNKNOWN", |kind| kind.as_str_name())
    }
}

impl CallName for executor::Call {
    fn call_name(&self) -> &'static str {
        self.r#type
            .and_then(|kind| executor::call::Type::try_from(kind).ok())
            .map_or("UNKNOWN", |kind| kind.as_str_name())
    }
}

/// Whether a state ends a task (Mesos' `isTerminalState`): `TASK_UNREACHABLE` is not
/// terminal (the task may come back), `TASK_LOST` is.
pub fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

/// The heartbeat interval a SUBSCRIBED event announces (`heartbeat_interval_seconds`), or
/// Mesos' default when absent or not a positive number.
pub fn heartbeat_interval(seconds: Option<f64>) -> Duration {
    seconds
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_names_follow_the_type_of_either_api() {
        let update = executor::Call {
            r#type: Some(executor::call::Type::Update as i32),
            ..Default::default()
        };
        assert_eq!(update.call_name(), "UPDATE");
        assert_eq!(executor::Call::default().call_name(), "UNKNOWN");
        let accept = scheduler::Call {
            r#type: Some(scheduler::call::Type::Accept as i32),
            ..Default::default()
        };
        assert_eq!(accept.call_name(), "ACCEPT");
        let unknown = scheduler::Call {
            r#type: Some(9999),
            ..Default::default()
        };
        assert_eq!(unknown.call_name(), "UNKNOWN");
    }

    #[test]
    fn lost_is_terminal_and_unreachable_is_not() {
        for state in [
            TaskState::TaskFinished,
            TaskState::TaskFailed,
            TaskState::TaskKilled,
            TaskState::TaskError,
            TaskState::TaskLost,
            TaskState::TaskDropped,
            TaskState::TaskGone,
            TaskState::TaskGoneByOperator,
        ] {
            assert!(is_terminal(state), "{state:?}");
        }
        for state in [
            TaskState::TaskStaging,
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskKilling,
            TaskState::TaskUnreachable,
            TaskState::TaskUnknown,
        ] {
            assert!(!is_terminal(state), "{state:?}");
        }
    }

    #[test]
    fn heartbeat_interval_defaults_to_fifteen_seconds() {
        assert_eq!(heartbeat_interval(Some(2.5)), Duration::from_millis(2500));
        assert_eq!(heartbeat_interval(None), DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(heartbeat_interval(Some(0.0)), DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(heartbeat_interval(Some(-3.0)), DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(
            heartbeat_interval(Some(f64::NAN)),
            DEFAULT_HEARTBEAT_INTERVAL
        );
    }
}
