use super::*;

fn exited(exit_code: i32, oom_killed: bool, signal: Option<i32>) -> RunEnd {
    RunEnd::Exited(RunOutcome {
        exit_code,
        oom_killed,
        signal,
    })
}

fn reported(state: TaskState, exit_code: Option<i32>, reason: Option<&str>) -> ReportedEnd {
    ReportedEnd {
        state,
        reason: reason.map(str::to_owned),
        exit_code,
        memory_limited: false,
        started: true,
    }
}

fn judge(end: &RunEnd) -> Verdict {
    verdict(end, StopCause::None, 64.0)
}

#[test]
fn exit_zero_finishes_and_nonzero_fails_with_the_code() {
    let done = judge(&exited(0, false, None));
    assert_eq!(done.state, TaskState::Finished);
    assert_eq!(done.reason, None);
    let failed = judge(&exited(3, false, None));
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.exit_code, Some(3));
    assert_eq!(
        failed.reason.as_deref(),
        Some("the command exited with code 3")
    );
    assert!(!failed.retryable, "a command that ran and failed is final");
    let signalled = judge(&exited(143, false, Some(15)));
    assert_eq!(
        signalled.reason.as_deref(),
        Some("the command was killed by signal 15 (exit code 143)")
    );
}

#[test]
fn oom_kill_fails_with_a_memory_reason() {
    let oom = verdict(&exited(137, true, Some(9)), StopCause::None, 8.0);
    assert_eq!(oom.state, TaskState::Failed);
    assert_eq!(
        oom.reason.as_deref(),
        Some(
            "out of memory: the container exceeded its memory limit of 8 MiB and was killed \
             by the kernel (exit code 137)"
        )
    );
}

#[test]
fn kill_wins_over_exit_code_and_timeout_fails_with_its_reason() {
    let killed = verdict(&exited(143, false, Some(15)), StopCause::Killed, 64.0);
    assert_eq!(killed.state, TaskState::Killed);
    assert_eq!(killed.reason.as_deref(), Some("killed on request"));
    let timed_out = verdict(
        &exited(137, false, Some(9)),
        StopCause::TimedOut { seconds: 5 },
        64.0,
    );
    assert_eq!(timed_out.state, TaskState::Failed);
    assert!(timed_out.reason.unwrap().contains("timeout of 5 s"));
    assert!(!timed_out.retryable);
}

#[test]
fn local_exits_and_cluster_reports_of_the_same_end_agree() {
    let cases: [(RunEnd, RunEnd, StopCause); 4] = [
        (
            exited(0, false, None),
            RunEnd::Reported(reported(TaskState::Finished, None, None)),
            StopCause::None,
        ),
        (
            exited(3, false, None),
            RunEnd::Reported(reported(TaskState::Failed, Some(3), None)),
            StopCause::None,
        ),
        (
            exited(137, true, Some(9)),
            RunEnd::Reported(ReportedEnd {
                memory_limited: true,
                ..reported(TaskState::Failed, Some(137), Some("OOM"))
            }),
            StopCause::None,
        ),
        (
            exited(143, false, Some(15)),
            RunEnd::Reported(reported(TaskState::Killed, Some(143), None)),
            StopCause::Killed,
        ),
    ];
    for (local, cluster, cause) in cases {
        let (a, b) = (verdict(&local, cause, 32.0), verdict(&cluster, cause, 32.0));
        assert_eq!(
            (a.state, a.exit_code, &a.reason, a.retryable),
            (b.state, b.exit_code, &b.reason, b.retryable),
            "{local:?} / {cluster:?}"
        );
    }
}

#[test]
fn a_reported_failure_keeps_the_exit_code_and_the_report_s_words() {
    let failed = judge(&RunEnd::Reported(reported(
        TaskState::Failed,
        Some(2),
        Some("Container exited with status 2"),
    )));
    assert_eq!(failed.exit_code, Some(2));
    assert_eq!(
        failed.reason.as_deref(),
        Some("the command exited with code 2: Container exited with status 2")
    );
    let silent = judge(&RunEnd::Reported(reported(TaskState::Failed, None, None)));
    assert_eq!(
        silent.reason.as_deref(),
        Some("the task failed (Mesos gave no reason)")
    );
}

#[test]
fn lost_runs_and_failures_before_running_may_be_retried_the_rest_is_final() {
    let lost = judge(&RunEnd::Reported(reported(
        TaskState::Lost,
        None,
        Some("the task was dropped before it started (TASK_DROPPED)"),
    )));
    assert_eq!(lost.state, TaskState::Lost);
    assert!(lost.retryable);
    assert_eq!(
        lost.reason.as_deref(),
        Some("the task was lost: the task was dropped before it started (TASK_DROPPED)")
    );
    let before_running = judge(&RunEnd::Reported(ReportedEnd {
        started: false,
        ..reported(
            TaskState::Failed,
            None,
            Some("Failed to fetch all URIs for container"),
        )
    }));
    assert!(before_running.retryable);
    assert!(before_running
        .reason
        .unwrap()
        .starts_with("the task failed before it started: Failed to fetch"));
    let refused = judge(&RunEnd::Reported(reported(
        TaskState::Error,
        None,
        Some("Task uses more resources than offered"),
    )));
    assert_eq!(refused.state, TaskState::Error);
    assert!(!refused.retryable, "an invalid task does not become valid");
    let killed_by_mesos = judge(&RunEnd::Reported(reported(
        TaskState::Killed,
        Some(137),
        Some("the container was preempted (REASON_CONTAINER_PREEMPTED)"),
    )));
    assert_eq!(killed_by_mesos.state, TaskState::Killed);
    assert!(killed_by_mesos
        .reason
        .unwrap()
        .starts_with("killed by Mesos, not on request"));
}

#[test]
fn a_finished_report_without_an_exit_code_finishes_with_zero() {
    let done = judge(&RunEnd::Reported(reported(TaskState::Finished, None, None)));
    assert_eq!(done.state, TaskState::Finished);
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.reason, None);
}

#[test]
fn a_non_terminal_report_is_judged_lost_rather_than_left_without_an_end() {
    let odd = judge(&RunEnd::Reported(reported(TaskState::Running, None, None)));
    assert_eq!(odd.state, TaskState::Lost);
    assert!(odd.retryable);
}
