use std::path::PathBuf;
use std::time::Duration;

use deimos_runtime::runtime::exit_status;
use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::{
    self, container_info, framework_info, task_status, KillPolicy, TaskInfo, TaskState, TaskStatus,
};

use super::*;
use crate::env::Recovery;

/// Subscription, acknowledgements and re-subscription.
mod connection;

const BACKOFF: Duration = Duration::from_secs(2);
const RECOVERY: Duration = Duration::from_secs(900);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn settings(checkpoint: bool) -> Settings {
    Settings {
        agent_endpoint: "127.0.0.1:5051".into(),
        framework_id: "fw".into(),
        executor_id: "ex".into(),
        agent_id: Some("agent".into()),
        directory: PathBuf::from("/sandbox"),
        sandbox: PathBuf::from("/sandbox"),
        recovery: checkpoint.then_some(Recovery {
            timeout: RECOVERY,
            backoff_max: BACKOFF,
        }),
        shutdown_grace_period: SHUTDOWN_GRACE,
        authentication_token: None,
        operator: Default::default(),
    }
}

fn machine_with(checkpoint: bool) -> Machine {
    let mut counter = 0u8;
    Machine::new(
        settings(checkpoint),
        "instance-1".into(),
        Box::new(move || {
            counter = counter.wrapping_add(1);
            [counter; 16]
        }),
    )
}

/// A machine past SUBSCRIBED (checkpointing).
fn subscribed() -> Machine {
    let mut machine = machine_with(true);
    machine.start();
    machine.handle(subscribed_event(&[]));
    machine
}

fn subscribed_event(capabilities: &[framework_info::capability::Type]) -> Input {
    Input::Event(Box::new(Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            framework_info: v1::FrameworkInfo {
                capabilities: capabilities
                    .iter()
                    .map(|c| framework_info::Capability {
                        r#type: Some(*c as i32),
                    })
                    .collect(),
                ..Default::default()
            },
            agent_info: v1::AgentInfo {
                id: Some(v1::AgentId {
                    value: "agent-9".into(),
                }),
                ..Default::default()
            },
            container_id: Some(v1::ContainerId {
                value: "cid".into(),
                parent: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

fn task(id: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        command: Some(v1::CommandInfo {
            value: Some("sleep 1".into()),
            ..Default::default()
        }),
        container: Some(v1::ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(container_info::DockerInfo {
                image: "busybox".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn with_grace(mut info: TaskInfo, grace: Duration) -> TaskInfo {
    info.kill_policy = Some(policy(grace));
    info
}

fn policy(grace: Duration) -> KillPolicy {
    KillPolicy {
        grace_period: Some(v1::DurationInfo {
            nanoseconds: i64::try_from(grace.as_nanos()).unwrap(),
        }),
    }
}

fn launch(info: TaskInfo) -> Input {
    Input::Event(Box::new(Event {
        r#type: Some(event::Type::Launch as i32),
        launch: Some(event::Launch { task: info }),
        ..Default::default()
    }))
}

fn kill(id: &str, kill_policy: Option<KillPolicy>) -> Input {
    Input::Event(Box::new(Event {
        r#type: Some(event::Type::Kill as i32),
        kill: Some(event::Kill {
            task_id: v1::TaskId { value: id.into() },
            kill_policy,
        }),
        ..Default::default()
    }))
}

fn ack(status: &TaskStatus) -> Input {
    Input::Event(Box::new(Event {
        r#type: Some(event::Type::Acknowledged as i32),
        acknowledged: Some(event::Acknowledged {
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().unwrap_or_default(),
        }),
        ..Default::default()
    }))
}

fn simple(kind: event::Type) -> Input {
    Input::Event(Box::new(Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }))
}

fn container(id: &str, outcome: ContainerOutcome) -> Input {
    Input::Container {
        task_id: id.into(),
        outcome,
    }
}

fn started(id: &str) -> Input {
    container(
        id,
        ContainerOutcome::Started {
            container: format!("docker-{id}"),
            inspect: None,
        },
    )
}

fn exited(id: &str, code: i64) -> Input {
    container(id, ContainerOutcome::Exited(exit_status(code, false)))
}

/// The statuses of the UPDATE calls among `actions`.
fn sent(actions: &[Action]) -> Vec<TaskStatus> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send(call) => call.update.as_ref().map(|u| u.status.clone()),
            _ => None,
        })
        .collect()
}

fn states(statuses: &[TaskStatus]) -> Vec<TaskState> {
    statuses.iter().map(TaskStatus::state).collect()
}

fn one(actions: &[Action]) -> TaskStatus {
    let statuses = sent(actions);
    assert_eq!(statuses.len(), 1, "expected one update in {actions:?}");
    statuses[0].clone()
}

fn stops(actions: &[Action]) -> Vec<(String, Duration)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Stop {
                container, grace, ..
            } => Some((container.clone(), *grace)),
            _ => None,
        })
        .collect()
}

fn exit_of(actions: &[Action]) -> Option<ExitReason> {
    actions.iter().find_map(|action| match action {
        Action::Exit(reason) => Some(reason.clone()),
        _ => None,
    })
}

fn subscribe_of(actions: &[Action]) -> Option<call::Subscribe> {
    actions.iter().find_map(|action| match action {
        Action::Subscribe(call) => call.subscribe.clone(),
        _ => None,
    })
}

/// Launch, start and acknowledge STARTING and RUNNING; returns the machine.
fn running(id: &str) -> Machine {
    let mut machine = subscribed();
    let starting = one(&machine.handle(launch(task(id))));
    machine.handle(ack(&starting));
    let running = one(&machine.handle(started(id)));
    machine.handle(ack(&running));
    machine
}

fn disconnected() -> Input {
    Input::Disconnected {
        reason: "stream ended".into(),
    }
}

// ----- task life cycle ---------------------------------------------------------------------

#[test]
fn launch_reports_starting_and_launches_the_planned_container() {
    let mut machine = subscribed();
    let actions = machine.handle(launch(task("t")));
    let status = one(&actions);
    assert_eq!(status.state(), TaskState::TaskStarting);
    assert_eq!(status.task_id.value, "t");
    let plan = actions
        .iter()
        .find_map(|a| match a {
            Action::Launch(plan) => Some(plan.clone()),
            _ => None,
        })
        .expect("a launch action");
    assert_eq!(plan.task_id, "t");
    assert_eq!(plan.spec.image, "busybox");
    // Identity from SUBSCRIBED.
    assert_eq!(plan.spec.name.as_deref(), Some("mesos-cid.t"));
    assert_eq!(
        plan.spec.labels[deimos_runtime::spec::labels::CONTAINER_ID].as_str(),
        "cid"
    );
}

#[test]
fn started_container_reports_running() {
    let mut machine = subscribed();
    machine.handle(launch(task("t")));
    assert_eq!(
        one(&machine.handle(started("t"))).state(),
        TaskState::TaskRunning
    );
}

#[test]
fn every_update_has_a_fresh_v4_uuid_from_the_executor() {
    let mut machine = subscribed();
    let mut statuses = sent(&machine.handle(launch(task("t"))));
    statuses.extend(sent(&machine.handle(started("t"))));
    statuses.extend(sent(&machine.handle(exited("t", 0))));
    assert_eq!(
        states(&statuses),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    let mut uuids: Vec<Vec<u8>> = statuses.iter().map(|s| s.uuid.clone().unwrap()).collect();
    for (status, uuid) in statuses.iter().zip(&uuids) {
        assert_eq!(status.source(), task_status::Source::Executor);
        assert_eq!(status.executor_id.as_ref().unwrap().value, "ex");
        assert_eq!(uuid.len(), 16);
        assert_eq!(uuid[6] >> 4, 4);
    }
    uuids.dedup();
    assert_eq!(uuids.len(), 3);
}

#[test]
fn finished_task_exits_only_after_its_terminal_update_is_acknowledged() {
    let mut machine = running("t");
    let actions = machine.handle(exited("t", 0));
    let finished = one(&actions);
    assert_eq!(finished.state(), TaskState::TaskFinished);
    assert_eq!(exit_of(&actions), None);
    assert_eq!(
        exit_of(&machine.handle(ack(&finished))),
        Some(ExitReason::Completed)
    );
    assert!(machine.handle(simple(event::Type::Heartbeat)).is_empty());
}

#[test]
fn terminal_acknowledged_before_earlier_updates_waits_for_them() {
    let mut machine = subscribed();
    let starting = one(&machine.handle(launch(task("t"))));
    let running = one(&machine.handle(started("t")));
    let finished = one(&machine.handle(exited("t", 0)));
    assert_eq!(exit_of(&machine.handle(ack(&finished))), None);
    assert_eq!(exit_of(&machine.handle(ack(&starting))), None);
    assert!(machine.is_unacknowledged(running.uuid.as_deref().unwrap()));
    assert_eq!(
        exit_of(&machine.handle(ack(&running))),
        Some(ExitReason::Completed)
    );
}

#[test]
fn failing_exit_reports_failed_with_the_exit_code() {
    let mut machine = running("t");
    let status = one(&machine.handle(exited("t", 3)));
    assert_eq!(status.state(), TaskState::TaskFailed);
    assert_eq!(status.message(), "Container exited with status 3");
}

#[test]
fn running_update_carries_the_inspect_array_and_the_containers_address() {
    let mut machine = subscribed();
    machine.handle(launch(task("t")));
    let document = serde_json::json!({
        "Id": "docker-t",
        "HostConfig": { "NetworkMode": "bridge" },
        "NetworkSettings": { "Networks": { "bridge": { "IPAddress": "172.17.0.9" } } },
    });
    let status = one(&machine.handle(container(
        "t",
        ContainerOutcome::Started {
            container: "docker-t".into(),
            inspect: Some(Box::new(document.clone())),
        },
    )));
    assert_eq!(status.state(), TaskState::TaskRunning);
    let data: serde_json::Value = serde_json::from_slice(status.data()).unwrap();
    assert_eq!(data, serde_json::json!([document]));
    let networks = status.container_status.unwrap_or_default().network_infos;
    assert_eq!(
        networks[0].ip_addresses[0].ip_address.as_deref(),
        Some("172.17.0.9")
    );
}

#[test]
fn oom_kill_names_the_tasks_memory_limit() {
    let mut machine = subscribed();
    let mut info = task("t");
    info.resources = vec![v1::Resource {
        name: "mem".into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value: 64.0 }),
        ..Default::default()
    }];
    machine.handle(launch(info));
    machine.handle(started("t"));
    let status = one(&machine.handle(container(
        "t",
        ContainerOutcome::Exited(exit_status(137, true)),
    )));
    assert_eq!(
        status.message(),
        "Memory limit exceeded: Requested: 64MB; Container terminated with signal Killed"
    );
    let limitation = status.limitation.unwrap_or_default();
    assert_eq!(limitation.resources[0].scalar.map(|s| s.value), Some(64.0));
}

#[test]
fn oom_kill_reports_failed_with_the_memory_limitation_reason() {
    let mut machine = running("t");
    let status = one(&machine.handle(container(
        "t",
        ContainerOutcome::Exited(exit_status(137, true)),
    )));
    assert_eq!(status.state(), TaskState::TaskFailed);
    assert_eq!(
        status.reason(),
        task_status::Reason::ContainerLimitationMemory
    );
}

#[test]
fn launch_failure_reports_failed_with_the_launch_reason() {
    let mut machine = subscribed();
    machine.handle(launch(task("t")));
    let status = one(&machine.handle(container(
        "t",
        ContainerOutcome::LaunchFailed {
            reason: "image busybox not found".into(),
        },
    )));
    assert_eq!(status.state(), TaskState::TaskFailed);
    assert_eq!(status.reason(), task_status::Reason::ContainerLaunchFailed);
    assert!(status.message().contains("image busybox not found"));
}

#[test]
fn a_launch_refused_by_the_operator_policy_is_a_task_error_naming_the_reason() {
    let mut machine = subscribed();
    machine.handle(launch(task("t")));
    let reason = "task t refused by the operator's policy: volume /data: host path \
                  /srv/link resolves to /etc, outside [policy] allowed_host_paths";
    let status = one(&machine.handle(container(
        "t",
        ContainerOutcome::Refused {
            reason: reason.into(),
        },
    )));
    assert_eq!(status.state(), TaskState::TaskError);
    assert_eq!(status.reason(), task_status::Reason::TaskUnauthorized);
    assert_eq!(status.message(), reason);
}

#[test]
fn lost_container_reports_failed() {
    let mut machine = running("t");
    let status = one(&machine.handle(container(
        "t",
        ContainerOutcome::Lost {
            reason: "Docker wait failed".into(),
        },
    )));
    assert_eq!(status.state(), TaskState::TaskFailed);
    assert!(status.message().contains("Docker wait failed"));
}

#[test]
fn invalid_task_fails_without_launching() {
    let mut machine = subscribed();
    let mut info = task("t");
    info.container = None;
    let actions = machine.handle(launch(info));
    let status = one(&actions);
    assert_eq!(status.state(), TaskState::TaskError);
    assert_eq!(status.reason(), task_status::Reason::TaskInvalid);
    assert!(status.message().contains("Docker image"), "{status:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Launch(_))));
    assert_eq!(
        exit_of(&machine.handle(ack(&status))),
        Some(ExitReason::Completed)
    );
}

#[test]
fn malformed_task_data_is_a_task_error_and_nothing_is_launched() {
    let mut machine = subscribed();
    let mut info = task("t");
    info.command = None;
    info.data = Some(b"deimos-task-data v7\n".to_vec());
    let actions = machine.handle(launch(info));
    let status = one(&actions);
    assert_eq!(status.state(), TaskState::TaskError);
    assert_eq!(status.reason(), task_status::Reason::TaskInvalid);
    assert!(
        status.message().contains("task data format version 7"),
        "{status:?}"
    );
    assert!(!actions.iter().any(|a| matches!(a, Action::Launch(_))));
}

#[test]
fn duplicate_launch_is_ignored() {
    let mut machine = subscribed();
    machine.handle(launch(task("t")));
    assert!(machine.handle(launch(task("t"))).is_empty());
}

#[test]
fn launch_group_launches_every_task() {
    let mut machine = subscribed();
    let actions = machine.handle(Input::Event(Box::new(Event {
        r#type: Some(event::Type::LaunchGroup as i32),
        launch_group: Some(event::LaunchGroup {
            task_group: v1::TaskGroupInfo {
                tasks: vec![task("a"), task("b")],
            },
        }),
        ..Default::default()
    })));
    let launched = actions
        .iter()
        .filter(|a| matches!(a, Action::Launch(_)))
        .count();
    assert_eq!(launched, 2);
    assert_eq!(sent(&actions).len(), 2);
}

#[test]
fn executor_exits_only_when_every_task_is_done_and_acknowledged() {
    let mut machine = subscribed();
    for id in ["a", "b"] {
        let starting = one(&machine.handle(launch(task(id))));
        machine.handle(ack(&starting));
        let running = one(&machine.handle(started(id)));
        machine.handle(ack(&running));
    }
    let a_done = one(&machine.handle(exited("a", 0)));
    assert_eq!(exit_of(&machine.handle(ack(&a_done))), None);
    let b_done = one(&machine.handle(exited("b", 1)));
    assert_eq!(
        exit_of(&machine.handle(ack(&b_done))),
        Some(ExitReason::Completed)
    );
}

#[test]
fn framework_messages_errors_and_heartbeats_change_nothing() {
    let mut machine = subscribed();
    for kind in [
        event::Type::Message,
        event::Type::Error,
        event::Type::Heartbeat,
        event::Type::Unknown,
    ] {
        assert!(machine.handle(simple(kind)).is_empty(), "{kind:?}");
    }
}

#[test]
fn acknowledgement_of_an_unknown_uuid_is_ignored() {
    let mut machine = running("t");
    let bogus = TaskStatus {
        uuid: Some(vec![0xaa; 16]),
        ..Default::default()
    };
    assert!(machine.handle(ack(&bogus)).is_empty());
}

// ----- kill ----------------------------------------------------------------------------------

#[test]
fn kill_stops_the_container_and_reports_killed() {
    let mut machine = running("t");
    let actions = machine.handle(kill("t", None));
    assert_eq!(stops(&actions), [("docker-t".to_owned(), SHUTDOWN_GRACE)]);
    assert!(sent(&actions).is_empty());
    let status = one(&machine.handle(exited("t", 143)));
    assert_eq!(status.state(), TaskState::TaskKilled);
    assert_eq!(
        exit_of(&machine.handle(ack(&status))),
        Some(ExitReason::Completed)
    );
}

#[test]
fn kill_grace_comes_from_the_kill_then_the_task_then_the_shutdown_grace() {
    let mut machine = subscribed();
    machine.handle(launch(with_grace(task("t"), Duration::from_secs(7))));
    machine.handle(started("t"));
    let actions = machine.handle(kill("t", None));
    assert_eq!(stops(&actions)[0].1, Duration::from_secs(7));

    let mut machine = subscribed();
    machine.handle(launch(with_grace(task("t"), Duration::from_secs(7))));
    machine.handle(started("t"));
    let actions = machine.handle(kill("t", Some(policy(Duration::from_secs(1)))));
    assert_eq!(stops(&actions)[0].1, Duration::from_secs(1));
}

#[test]
fn kill_with_shorter_grace_escalates_and_longer_is_ignored() {
    let mut machine = running("t");
    machine.handle(kill("t", Some(policy(Duration::from_secs(10)))));
    let actions = machine.handle(kill("t", Some(policy(Duration::from_secs(30)))));
    assert!(stops(&actions).is_empty());
    let actions = machine.handle(kill("t", Some(policy(Duration::ZERO))));
    assert_eq!(stops(&actions), [("docker-t".to_owned(), Duration::ZERO)]);
}

#[test]
fn kill_during_launch_stops_the_container_once_started_without_running() {
    let mut machine = subscribed();
    machine.handle(launch(task("t")));
    assert!(machine.handle(kill("t", None)).is_empty());
    let actions = machine.handle(started("t"));
    assert!(sent(&actions).is_empty(), "no TASK_RUNNING: {actions:?}");
    assert_eq!(stops(&actions), [("docker-t".to_owned(), SHUTDOWN_GRACE)]);
    assert_eq!(
        one(&machine.handle(exited("t", 137))).state(),
        TaskState::TaskKilled
    );
}

#[test]
fn kill_during_a_failing_launch_reports_killed_during_launch() {
    let mut machine = subscribed();
    machine.handle(launch(task("t")));
    machine.handle(kill("t", None));
    let status = one(&machine.handle(container(
        "t",
        ContainerOutcome::LaunchFailed {
            reason: "pull failed".into(),
        },
    )));
    assert_eq!(status.state(), TaskState::TaskKilled);
    assert_eq!(status.reason(), task_status::Reason::TaskKilledDuringLaunch);
}

#[test]
fn kill_of_unknown_or_finished_task_is_ignored() {
    let mut machine = running("t");
    assert!(machine.handle(kill("other", None)).is_empty());
    machine.handle(exited("t", 0));
    assert!(machine.handle(kill("t", None)).is_empty());
}

#[test]
fn task_killing_state_capability_reports_killing_first() {
    let mut machine = machine_with(true);
    machine.start();
    machine.handle(subscribed_event(&[
        framework_info::capability::Type::TaskKillingState,
    ]));
    machine.handle(launch(task("t")));
    machine.handle(started("t"));
    let actions = machine.handle(kill("t", None));
    assert_eq!(one(&actions).state(), TaskState::TaskKilling);
    assert_eq!(stops(&actions).len(), 1);
}

#[test]
fn oom_during_kill_still_reports_the_memory_limitation() {
    let mut machine = running("t");
    machine.handle(kill("t", None));
    let status = one(&machine.handle(container(
        "t",
        ContainerOutcome::Exited(exit_status(137, true)),
    )));
    assert_eq!(status.state(), TaskState::TaskFailed);
}

// ----- shutdown ------------------------------------------------------------------------------

#[test]
fn shutdown_without_tasks_exits_at_once() {
    let mut machine = subscribed();
    let actions = machine.handle(simple(event::Type::Shutdown));
    assert_eq!(actions[0], Action::StartShutdownTimer(SHUTDOWN_GRACE));
    assert_eq!(exit_of(&actions), Some(ExitReason::Shutdown));
}

#[test]
fn shutdown_stops_containers_within_the_grace_period_and_exits_after_acks() {
    let mut machine = subscribed();
    machine.handle(launch(with_grace(task("long"), Duration::from_secs(60))));
    machine.handle(started("long"));
    machine.handle(launch(with_grace(task("short"), Duration::from_secs(1))));
    machine.handle(started("short"));
    let actions = machine.handle(simple(event::Type::Shutdown));
    let cap = SHUTDOWN_GRACE - SHUTDOWN_REPORT_MARGIN;
    assert_eq!(
        stops(&actions),
        [
            ("docker-long".to_owned(), cap),
            ("docker-short".to_owned(), Duration::from_secs(1))
        ]
    );
    let long = one(&machine.handle(exited("long", 143)));
    let short = one(&machine.handle(exited("short", 143)));
    assert_eq!(long.state(), TaskState::TaskKilled);
    assert_eq!(short.state(), TaskState::TaskKilled);
    // Earlier updates are still unacknowledged: acknowledge everything.
    let pending: Vec<TaskStatus> = machine
        .subscribe_call()
        .subscribe
        .unwrap()
        .unacknowledged_updates
        .into_iter()
        .map(|u| u.status)
        .collect();
    let mut last = Vec::new();
    for status in &pending {
        last = machine.handle(ack(status));
    }
    assert_eq!(exit_of(&last), Some(ExitReason::Shutdown));
}

#[test]
fn shutdown_deadline_exits_with_updates_outstanding() {
    let mut machine = running("t");
    machine.handle(simple(event::Type::Shutdown));
    assert_eq!(
        exit_of(&machine.handle(Input::ShutdownDeadline)),
        Some(ExitReason::Shutdown)
    );
}

#[test]
fn launch_during_shutdown_is_ignored() {
    let mut machine = running("t");
    machine.handle(simple(event::Type::Shutdown));
    assert!(machine.handle(launch(task("late"))).is_empty());
}

#[test]
fn disconnection_during_shutdown_does_not_resubscribe() {
    let mut machine = running("t");
    machine.handle(simple(event::Type::Shutdown));
    assert!(machine.handle(disconnected()).is_empty());
    machine.handle(exited("t", 143));
    assert_eq!(
        exit_of(&machine.handle(Input::ShutdownDeadline)),
        Some(ExitReason::Shutdown)
    );
}

#[test]
fn subscribe_call_carries_the_envelope_ids() {
    let mut machine = subscribed();
    let call: Call = machine.subscribe_call();
    assert_eq!(call.framework_id.value, "fw");
    assert_eq!(call.executor_id.value, "ex");
}
