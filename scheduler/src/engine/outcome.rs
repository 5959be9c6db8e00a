//! How a finished run becomes a task state and a human-readable reason. Pure.

use crate::backend::RunOutcome;
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

/// The final state, exit code and reason of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Terminal state.
    pub state: TaskState,
    /// The command's exit code.
    pub exit_code: Option<i32>,
    /// Why it did not finish successfully.
    pub reason: Option<String>,
}

/// Classifies a finished run: a kill wins over everything (`TASK_KILLED`), then a timeout
/// (`TASK_FAILED`, timeout reason), then the OOM killer (`TASK_FAILED`, memory reason), then the
/// exit code (0 → `TASK_FINISHED`, else `TASK_FAILED`).
pub fn verdict(outcome: &RunOutcome, cause: StopCause, mem_mib: f64) -> Verdict {
    let exit_code = Some(outcome.exit_code);
    let failed = |reason: String| Verdict {
        state: TaskState::Failed,
        exit_code,
        reason: Some(reason),
    };
    match cause {
        StopCause::Killed => Verdict {
            state: TaskState::Killed,
            exit_code,
            reason: Some("killed on request".to_owned()),
        },
        StopCause::TimedOut { seconds } => failed(format!(
            "timed out: still running after the task's timeout of {seconds} s, so it was stopped"
        )),
        StopCause::None if outcome.oom_killed => failed(format!(
            "out of memory: the container exceeded its memory limit of {mem_mib} MiB and was \
             killed by the kernel (exit code {})",
            outcome.exit_code
        )),
        StopCause::None if outcome.exit_code == 0 => Verdict {
            state: TaskState::Finished,
            exit_code,
            reason: None,
        },
        StopCause::None => match outcome.signal {
            Some(signal) => failed(format!(
                "the command was killed by signal {signal} (exit code {})",
                outcome.exit_code
            )),
            None => failed(format!(
                "the command exited with code {}",
                outcome.exit_code
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(exit_code: i32, oom_killed: bool, signal: Option<i32>) -> RunOutcome {
        RunOutcome {
            exit_code,
            oom_killed,
            signal,
        }
    }

    #[test]
    fn exit_zero_finishes_and_nonzero_fails_with_the_code() {
        let done = verdict(&outcome(0, false, None), StopCause::None, 64.0);
        assert_eq!(done.state, TaskState::Finished);
        assert_eq!(done.reason, None);
        let failed = verdict(&outcome(3, false, None), StopCause::None, 64.0);
        assert_eq!(failed.state, TaskState::Failed);
        assert_eq!(failed.exit_code, Some(3));
        assert_eq!(
            failed.reason.as_deref(),
            Some("the command exited with code 3")
        );
    }

    #[test]
    fn oom_kill_fails_with_a_memory_reason() {
        let oom = verdict(&outcome(137, true, Some(9)), StopCause::None, 8.0);
        assert_eq!(oom.state, TaskState::Failed);
        assert!(oom.reason.unwrap().contains("memory limit of 8 MiB"));
    }

    #[test]
    fn kill_wins_over_exit_code_and_timeout_fails_with_its_reason() {
        let killed = verdict(&outcome(143, false, Some(15)), StopCause::Killed, 64.0);
        assert_eq!(killed.state, TaskState::Killed);
        let timed_out = verdict(
            &outcome(137, false, Some(9)),
            StopCause::TimedOut { seconds: 5 },
            64.0,
        );
        assert_eq!(timed_out.state, TaskState::Failed);
        assert!(timed_out.reason.unwrap().contains("timeout of 5 s"));
    }
}
