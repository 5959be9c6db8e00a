//! How the end of a run becomes a task state, an exit code, a reason in plain words and
//! whether another attempt may follow. Pure.
//!
//! A run ends in one of three ways, and one function judges them all ([`verdict`]):
//! - [`RunEnd::Exited`]: an exit observed on this machine (the local backend);
//! - [`RunEnd::Reported`]: a terminal state a cluster reported (a Mesos status update, read by
//!   `mesos::updates::reported_end`), with its reason, message and exit code when known;
//! - [`RunEnd::NotStarted`]: the container could not be started (the command never ran).

use crate::backend::RunOutcome;
pub use crate::backend::{ReportedEnd, RunEnd};
use crate::task::TaskState;

/// Why the scheduler stopped a run, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// The run ended by itself.
    None,
    /// A client killed the task.
    Killed,
    /// The task's `timeout` expired.
    TimedOut {
        /// The timeout in seconds.
        seconds: u64,
    },
}

/// The final state, exit code and reason of a run, and whether another attempt may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Terminal state.
    pub state: TaskState,
    /// The command's exit code.
    pub exit_code: Option<i32>,
    /// Why it did not finish successfully.
    pub reason: Option<String>,
    /// The run ended without the command having had its chance (lost, dropped, or failed
    /// before it ran): a new attempt may follow while the task has retries left. A command
    /// that ran and failed, a kill, a timeout and an invalid task are final.
    pub retryable: bool,
}

/// Judges the end of a run. In order: a kill on request wins over everything
/// (`TASK_KILLED`), then a timeout (`TASK_FAILED`, timeout reason), then the memory limit
/// (`TASK_FAILED`, memory reason), then what the end itself says: exit code 0 or a reported
/// `TASK_FINISHED` finish; another exit code fails with it; a reported state keeps its
/// meaning with the report's reason.
pub fn verdict(end: &RunEnd, cause: StopCause, mem_mib: f64) -> Verdict {
    let exit_code = match end {
        RunEnd::Exited(outcome) => Some(outcome.exit_code),
        RunEnd::Reported(report) => report.exit_code,
        RunEnd::NotStarted { .. } => None,
    };
    let final_with = |state: TaskState, reason: Option<String>| Verdict {
        state,
        exit_code,
        reason,
        retryable: false,
    };
    match cause {
        StopCause::Killed => {
            return final_with(TaskState::Killed, Some("killed on request".to_owned()))
        }
        StopCause::TimedOut { seconds } => {
            return final_with(
                TaskState::Failed,
                Some(format!(
                    "timed out: still running after the task's timeout of {seconds} s, so it \
                     was stopped"
                )),
            )
        }
        StopCause::None => {}
    }
    let memory_limited = match end {
        RunEnd::Exited(outcome) => outcome.oom_killed,
        RunEnd::Reported(report) => report.memory_limited,
        RunEnd::NotStarted { .. } => false,
    };
    if memory_limited {
        let code = exit_code.map_or_else(String::new, |code| format!(" (exit code {code})"));
        return final_with(
            TaskState::Failed,
            Some(format!(
                "out of memory: the container exceeded its memory limit of {mem_mib} MiB and \
                 was killed by the kernel{code}"
            )),
        );
    }
    match end {
        RunEnd::Exited(outcome) => exited(outcome),
        RunEnd::Reported(report) => reported(report),
        // The command never ran: another attempt may work.
        RunEnd::NotStarted { reason } => Verdict {
            state: TaskState::Failed,
            exit_code: None,
            reason: Some(format!("the container could not be started: {reason}")),
            retryable: true,
        },
    }
}

fn exited(outcome: &RunOutcome) -> Verdict {
    let reason = match (outcome.exit_code, outcome.signal) {
        (0, _) => None,
        (code, Some(signal)) => Some(format!(
            "the command was killed by signal {signal} (exit code {code})"
        )),
        (code, None) => Some(format!("the command exited with code {code}")),
    };
    Verdict {
        state: if reason.is_none() {
            TaskState::Finished
        } else {
            TaskState::Failed
        },
        exit_code: Some(outcome.exit_code),
        reason,
        retryable: false,
    }
}

fn reported(report: &ReportedEnd) -> Verdict {
    let verdict = |state: TaskState, reason: Option<String>, retryable: bool| Verdict {
        state,
        exit_code: report.exit_code,
        reason,
        retryable,
    };
    let said = report.reason.clone();
    match report.state {
        TaskState::Finished => Verdict {
            exit_code: Some(report.exit_code.unwrap_or(0)),
            ..verdict(TaskState::Finished, None, false)
        },
        // The command ran and failed: its exit code says why, the report adds detail.
        TaskState::Failed if report.started => {
            let reason = match (report.exit_code, said) {
                (Some(code), Some(said)) => format!("the command exited with code {code}: {said}"),
                (Some(code), None) => format!("the command exited with code {code}"),
                (None, Some(said)) => said,
                (None, None) => "the task failed (Mesos gave no reason)".to_owned(),
            };
            verdict(TaskState::Failed, Some(reason), false)
        }
        // Failed before it ran (fetch, image, container launch): another attempt may work.
        TaskState::Failed => verdict(
            TaskState::Failed,
            Some(prefixed("the task failed before it started", said)),
            true,
        ),
        TaskState::Killed => verdict(
            TaskState::Killed,
            Some(prefixed("killed by Mesos, not on request", said)),
            false,
        ),
        TaskState::Error => verdict(
            TaskState::Error,
            Some(prefixed("Mesos refused the task", said)),
            false,
        ),
        // Lost, dropped, gone, unknown: the run is definitely not running; relaunching is safe.
        TaskState::Lost => verdict(
            TaskState::Lost,
            Some(prefixed("the task was lost", said)),
            true,
        ),
        // Not terminal: callers pass terminal states only. Judge it as lost rather than
        // leave a run without an end.
        other => verdict(
            TaskState::Lost,
            Some(prefixed(
                &format!("the run ended in the non-terminal state {other}"),
                said,
            )),
            true,
        ),
    }
}

/// `"<what>: <said>"`, or `what` alone.
fn prefixed(what: &str, said: Option<String>) -> String {
    match said {
        Some(said) => format!("{what}: {said}"),
        None => what.to_owned(),
    }
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
