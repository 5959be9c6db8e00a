//! The `Termination` reply of `wait`, readable by every agent with the external containerizer
//! (Mesos 0.19 to 1.0).

use mesos_proto::containerizer::Termination;
use mesos_proto::mesos::{task_status::Reason, TaskState};

use crate::state::ExitRecord;

/// Builds the reply for an exit record:
/// - `status`: the raw wait(2) status (exit code << 8, or the signal number); absent when the
///   exit could not be observed (the agent reports -1 then);
/// - `message`: always set;
/// - `killed` (the ≤ 0.25 field, ignored by later agents): true when the container was
///   OOM-killed or destroyed;
/// - for an OOM kill also `state` = TASK_FAILED and `reasons` =
///   [REASON_CONTAINER_LIMITATION_MEMORY] (0.26+).
pub fn termination_of(exit: &ExitRecord) -> Termination {
    let mut termination = Termination {
        status: exit.wait_status(),
        message: Some(message_of(exit)),
        killed: Some(exit.oom_killed || exit.destroyed),
        ..Termination::default()
    };
    if exit.oom_killed {
        termination.set_state(TaskState::TaskFailed);
        termination.reasons = vec![Reason::ContainerLimitationMemory as i32];
    }
    termination
}

fn message_of(exit: &ExitRecord) -> String {
    if !exit.message.is_empty() {
        return exit.message.clone();
    }
    let how = match (exit.signal, exit.exit_code) {
        (Some(signal), _) => format!("container was killed by signal {signal}"),
        (None, Some(code)) => format!("container exited with code {code}"),
        (None, None) => "container ended; its exit status is unknown".to_owned(),
    };
    match (exit.oom_killed, exit.destroyed) {
        (true, _) => format!("{how}: out of memory (killed by the OOM killer)"),
        (false, true) => format!("{how}: destroyed"),
        (false, false) => how,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_becomes_a_raw_wait_status() {
        let termination = termination_of(&ExitRecord::with_code(3));
        assert_eq!(termination.status, Some(3 << 8));
        assert_eq!(
            termination.message.as_deref(),
            Some("container exited with code 3")
        );
        assert_eq!(termination.killed, Some(false));
        assert_eq!(termination.state, None);
    }

    #[test]
    fn signal_is_reported_as_the_signal_number() {
        let exit = ExitRecord {
            signal: Some(9),
            exit_code: Some(137),
            ..ExitRecord::with_code(0)
        };
        assert_eq!(termination_of(&exit).status, Some(9));
    }

    #[test]
    fn oom_kill_is_killed_failed_with_memory_reason() {
        let exit = ExitRecord {
            oom_killed: true,
            signal: Some(9),
            ..ExitRecord::with_code(137)
        };
        let termination = termination_of(&exit);
        assert_eq!(termination.killed, Some(true));
        assert_eq!(termination.state(), TaskState::TaskFailed);
        assert_eq!(
            termination.reasons,
            vec![Reason::ContainerLimitationMemory as i32]
        );
        assert!(termination.message.unwrap().contains("out of memory"));
    }

    #[test]
    fn destroyed_container_is_reported_killed() {
        let exit = ExitRecord {
            destroyed: true,
            ..ExitRecord::with_code(143)
        };
        let termination = termination_of(&exit);
        assert_eq!(termination.killed, Some(true));
        assert!(termination.message.unwrap().ends_with("destroyed"));
    }

    #[test]
    fn unknown_exit_has_no_status_but_a_message() {
        let exit = ExitRecord {
            exit_code: None,
            ..ExitRecord::with_code(0)
        };
        let termination = termination_of(&exit);
        assert_eq!(termination.status, None);
        assert!(termination.message.unwrap().contains("unknown"));
    }
}
