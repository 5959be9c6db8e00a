use mesos_proto::v1::{
    network_info, AgentId, ContainerStatus, NetworkInfo, TaskId as MesosTaskId,
    TaskResourceLimitation,
};

use super::*;
use crate::mesos::test_support::scalar;

const TASK: &str = "eremetic-task.0b0c0d0e-0000-4000-8000-000000000001";

fn status(state: MesosState) -> TaskStatus {
    TaskStatus {
        task_id: MesosTaskId {
            value: format!("{TASK}.1"),
        },
        state: state as i32,
        ..Default::default()
    }
}

fn read(status: &TaskStatus) -> StatusChange {
    read_status(status).expect("readable status")
}

#[test]
fn every_mesos_state_maps_to_one_of_ours() {
    let expected = [
        (MesosState::TaskStaging, Some(TaskState::Staging)),
        (MesosState::TaskStarting, Some(TaskState::Starting)),
        (MesosState::TaskRunning, Some(TaskState::Running)),
        (MesosState::TaskKilling, Some(TaskState::Terminating)),
        (MesosState::TaskFinished, Some(TaskState::Finished)),
        (MesosState::TaskFailed, Some(TaskState::Failed)),
        (MesosState::TaskKilled, Some(TaskState::Killed)),
        (MesosState::TaskError, Some(TaskState::Error)),
        (MesosState::TaskLost, Some(TaskState::Lost)),
        (MesosState::TaskDropped, Some(TaskState::Lost)),
        (MesosState::TaskUnreachable, None),
        (MesosState::TaskGone, Some(TaskState::Lost)),
        (MesosState::TaskGoneByOperator, Some(TaskState::Lost)),
        (MesosState::TaskUnknown, Some(TaskState::Lost)),
    ];
    for (mesos, ours) in expected {
        assert_eq!(read(&status(mesos)).state, ours, "{mesos:?}");
    }
}

#[test]
fn newer_states_carry_a_readable_reason() {
    for (state, fragment) in [
        (MesosState::TaskKilling, "TASK_KILLING"),
        (MesosState::TaskDropped, "dropped before it started"),
        (MesosState::TaskUnreachable, "may still be running"),
        (MesosState::TaskGone, "TASK_GONE"),
        (MesosState::TaskGoneByOperator, "operator"),
        (MesosState::TaskUnknown, "no record"),
    ] {
        let reason = read(&status(state)).reason.expect("reason");
        assert!(reason.contains(fragment), "{state:?}: {reason}");
    }
}

#[test]
fn plain_progress_updates_have_no_reason() {
    let mut running = status(MesosState::TaskRunning);
    running.message = Some("started".into());
    assert_eq!(read(&running).reason, None);
}

#[test]
fn task_id_and_attempt_come_from_the_mesos_task_id() {
    let change = read(&status(MesosState::TaskRunning));
    assert_eq!(change.task_id.as_ref().map(TaskId::as_str), Some(TASK));
    assert_eq!(change.attempt, Some(1));
    let mut foreign = status(MesosState::TaskRunning);
    foreign.task_id.value = "not/ours".into();
    let change = read(&foreign);
    assert_eq!((change.task_id, change.attempt), (None, None));
    assert_eq!(change.mesos_task_id, "not/ours");
}

#[test]
fn failure_reason_names_the_mesos_reason_and_message() {
    let mut failed = status(MesosState::TaskFailed);
    failed.reason = Some(task_status::Reason::ContainerLaunchFailed as i32);
    failed.message = Some("Failed to pull image".into());
    assert_eq!(
        read(&failed).reason.as_deref(),
        Some(
            "the container could not be launched (REASON_CONTAINER_LAUNCH_FAILED): \
             Failed to pull image"
        )
    );
}

#[test]
fn oom_reason_names_the_memory_limit() {
    let mut failed = status(MesosState::TaskFailed);
    failed.reason = Some(task_status::Reason::ContainerLimitationMemory as i32);
    failed.limitation = Some(TaskResourceLimitation {
        resources: vec![scalar("mem", 64.0)],
    });
    let reason = read(&failed).reason.expect("reason");
    assert!(
        reason.starts_with("container ran out of memory (limit 64 MiB)"),
        "{reason}"
    );
}

#[test]
fn exit_code_from_message() {
    assert_eq!(
        exit_code_in_message("Command exited with status 3"),
        Some(3)
    );
    assert_eq!(
        exit_code_in_message("Container exited with status 137"),
        Some(137)
    );
    assert_eq!(
        exit_code_in_message("Command terminated with signal Killed"),
        Some(137)
    );
    assert_eq!(
        exit_code_in_message("Command terminated with signal SIGTERM"),
        Some(143)
    );
    assert_eq!(
        exit_code_in_message("Command terminated with signal Odd"),
        None
    );
    assert_eq!(exit_code_in_message("Executor terminated"), None);
    let mut failed = status(MesosState::TaskFailed);
    failed.message = Some("Command exited with status 2".into());
    assert_eq!(read(&failed).exit_code, Some(2));
}

#[test]
fn finished_means_exit_zero_and_running_has_no_exit_code() {
    assert_eq!(read(&status(MesosState::TaskFinished)).exit_code, Some(0));
    assert_eq!(read(&status(MesosState::TaskRunning)).exit_code, None);
}

#[test]
fn docker_inspect_data_gives_sandbox_and_final_exit_code() {
    let data = br#"[{"State":{"Running":false,"ExitCode":4},
        "Mounts":[{"Source":"/tmp/x","Destination":"/x"},
                  {"Source":"/var/lib/mesos/slaves/a/frameworks/f/executors/e/runs/r",
                   "Destination":"/mnt/mesos/sandbox"}]}]"#;
    let mut failed = status(MesosState::TaskFailed);
    failed.data = Some(data.to_vec());
    let change = read(&failed);
    assert_eq!(
        change.sandbox_path.as_deref(),
        Some("/var/lib/mesos/slaves/a/frameworks/f/executors/e/runs/r")
    );
    assert_eq!(change.exit_code, Some(4));
    let mut running = status(MesosState::TaskRunning);
    running.data = Some(data.to_vec());
    assert_eq!(read(&running).exit_code, None, "not terminal: no exit code");
    let mut garbage = status(MesosState::TaskRunning);
    garbage.data = Some(b"not json".to_vec());
    assert_eq!(read(&garbage).sandbox_path, None);
}

#[test]
fn agent_executor_ips_timestamp_uuid_and_reconciliation_are_captured() {
    let mut update = status(MesosState::TaskRunning);
    update.agent_id = Some(AgentId { value: "a1".into() });
    update.timestamp = Some(1_700_000_000.5);
    update.uuid = Some(vec![9; 16]);
    update.container_status = Some(ContainerStatus {
        network_infos: vec![NetworkInfo {
            ip_addresses: vec![network_info::IpAddress {
                protocol: None,
                ip_address: Some("172.17.0.2".into()),
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let change = read(&update);
    assert_eq!(change.agent_id.as_deref(), Some("a1"));
    assert_eq!(change.container_ips, vec!["172.17.0.2".to_owned()]);
    assert_eq!(
        change.timestamp.map(|t| t.unix_timestamp_nanos()),
        Some(1_700_000_000_500_000_000)
    );
    assert_eq!(change.uuid, Some(vec![9; 16]));
    assert!(!change.from_reconciliation);
    let mut reconciled = status(MesosState::TaskLost);
    reconciled.reason = Some(task_status::Reason::Reconciliation as i32);
    assert!(read(&reconciled).from_reconciliation);
}

#[test]
fn unknown_state_number_is_an_error_naming_the_task() {
    let mut odd = status(MesosState::TaskRunning);
    odd.state = 42;
    let message = read_status(&odd).expect_err("unknown state").to_string();
    assert!(
        message.contains(TASK) && message.contains("42"),
        "{message}"
    );
}

#[test]
fn terminal_updates_become_reported_ends_judged_like_local_exits() {
    use crate::engine::{verdict, RunEnd, StopCause};
    let judge = |status: &TaskStatus, started: bool| {
        let end = read(status).reported_end(started).expect("terminal");
        verdict(&RunEnd::Reported(end), StopCause::None, 64.0)
    };
    // The Docker executor's words for a command that exited with 3.
    let mut failed = status(MesosState::TaskFailed);
    failed.message = Some("Container exited with status 3".into());
    let verdict_of_failure = judge(&failed, true);
    assert_eq!(
        (verdict_of_failure.state, verdict_of_failure.exit_code),
        (TaskState::Failed, Some(3))
    );
    assert!(!verdict_of_failure.retryable);
    // Killed by the kernel for its memory.
    let mut oom = status(MesosState::TaskFailed);
    oom.reason = Some(task_status::Reason::ContainerLimitationMemory as i32);
    let verdict_of_oom = judge(&oom, true);
    assert!(
        verdict_of_oom
            .reason
            .as_deref()
            .is_some_and(|reason| reason.starts_with("out of memory")),
        "{verdict_of_oom:?}"
    );
    // Dropped before it started: lost, and another attempt may follow.
    let verdict_of_drop = judge(&status(MesosState::TaskDropped), false);
    assert_eq!(verdict_of_drop.state, TaskState::Lost);
    assert!(verdict_of_drop.retryable);
}

#[test]
fn progress_and_unreachable_updates_report_no_end() {
    for state in [
        MesosState::TaskStaging,
        MesosState::TaskRunning,
        MesosState::TaskKilling,
        MesosState::TaskUnreachable,
    ] {
        assert_eq!(read(&status(state)).reported_end(true), None, "{state:?}");
    }
}
