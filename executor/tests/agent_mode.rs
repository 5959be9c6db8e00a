//! The `deimos-executor` binary started by the harness's custom-executor agent (agent mode 2)
//! from a task a scheduler launched through a fake master, with real Docker: what the
//! scheduler receives (issue 13's Done-when through a Mesos-like agent).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::cluster::{executor_id, Cluster, Scheduler};
use common::{containers_of, data_task, docker, grace, image_task, ports, shell_task, PATIENCE};
use mesos_proto::v1::{environment, task_status, CommandInfo, Environment, TaskState};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The documented bound within which a killed executor's containers are gone.
const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn command_env_and_ports_arrive_and_exit_zero_is_finished_with_inspect_data() {
    let cluster = Cluster::start(|_| {}).await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    let command = CommandInfo {
        shell: Some(false),
        value: Some("/bin/sh".into()),
        arguments: vec![
            "sh".into(),
            "-c".into(),
            "echo \"greeting=$GREETING port=$PORT0\"; sleep 1".into(),
        ],
        environment: Some(Environment {
            variables: vec![environment::Variable {
                name: "GREETING".into(),
                value: Some("hello through the agent".into()),
                ..Default::default()
            }],
        }),
        ..Default::default()
    };
    let mut task = data_task("t1", &command);
    task.resources.push(ports(31005, 31005));
    scheduler.launch(task).await;

    scheduler.acknowledge("t1", TaskState::TaskStarting).await;
    let running = scheduler.acknowledge("t1", TaskState::TaskRunning).await;
    let inspect: serde_json::Value =
        serde_json::from_slice(running.data()).expect("TASK_RUNNING data is docker inspect JSON");
    assert_eq!(inspect.as_array().map(Vec::len), Some(1), "{inspect}");
    assert!(inspect[0]["Id"].is_string(), "{inspect}");
    let finished = scheduler.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(finished.message(), "Container exited with status 0");
    assert_eq!(finished.source(), task_status::Source::Executor);

    let framework = scheduler.framework_id.clone();
    let executor = executor_id("t1");
    let status = cluster
        .agent
        .wait_terminated(&framework, &executor, PATIENCE)
        .await
        .expect("the executor exits after its task");
    assert_eq!(status, 0, "{}", cluster.executor_log(&framework, &executor));
    assert_eq!(
        scheduler.states("t1"),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    let sandbox = cluster
        .agent
        .book()
        .latest_run(&framework, &executor)
        .expect("the run's sandbox");
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
    assert!(
        stdout.contains("greeting=hello through the agent port=31005"),
        "stdout: {stdout}"
    );
    let docker = docker().await;
    assert!(containers_of(&docker, &framework).await.is_empty());
}

#[tokio::test]
async fn exit_three_is_task_failed_with_the_containers_status() {
    let cluster = Cluster::start(|_| {}).await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    scheduler.launch(shell_task("t1", "exit 3")).await;
    scheduler.acknowledge("t1", TaskState::TaskStarting).await;
    scheduler.acknowledge("t1", TaskState::TaskRunning).await;
    let failed = scheduler.acknowledge("t1", TaskState::TaskFailed).await;
    assert_eq!(failed.message(), "Container exited with status 3");
}

#[tokio::test]
async fn out_of_memory_is_task_failed_with_the_memory_limitation_reason() {
    let cluster = Cluster::start(|_| {}).await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    // 32 MiB allowed (common::shell_task); `tail` keeps the newline-free input in memory.
    let task = shell_task("t1", "head -c 512m /dev/zero | tail");
    scheduler.launch(task).await;
    scheduler.acknowledge("t1", TaskState::TaskStarting).await;
    scheduler.acknowledge("t1", TaskState::TaskRunning).await;
    let failed = scheduler.acknowledge("t1", TaskState::TaskFailed).await;
    assert_eq!(
        failed.reason(),
        task_status::Reason::ContainerLimitationMemory,
        "{failed:?}"
    );
}

#[tokio::test]
async fn kill_through_the_master_is_task_killed_and_removes_the_container() {
    let cluster = Cluster::start(|_| {}).await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    let mut task = shell_task("t1", "sleep 300");
    task.kill_policy = Some(grace(Duration::from_secs(1)));
    scheduler.launch(task).await;
    scheduler.acknowledge("t1", TaskState::TaskStarting).await;
    scheduler.acknowledge("t1", TaskState::TaskRunning).await;

    scheduler.kill("t1").await;
    scheduler.acknowledge("t1", TaskState::TaskKilled).await;
    let framework = scheduler.framework_id.clone();
    let status = cluster
        .agent
        .wait_terminated(&framework, &executor_id("t1"), PATIENCE)
        .await
        .expect("the executor exits");
    assert_eq!(status, 0);
    let docker = docker().await;
    assert!(containers_of(&docker, &framework).await.is_empty());
}

#[tokio::test]
async fn malformed_task_data_is_task_error() {
    let cluster = Cluster::start(|_| {}).await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    let mut task = image_task("t1");
    task.data = Some(b"deimos-task-data v2\n\x0a\x00".to_vec());
    scheduler.launch(task).await;
    let error = scheduler.acknowledge("t1", TaskState::TaskError).await;
    assert!(
        error.message().contains("task data format version 2"),
        "{error:?}"
    );
    assert_eq!(scheduler.states("t1"), [TaskState::TaskError]);
}

#[tokio::test]
async fn agent_restart_mid_task_loses_and_duplicates_nothing() {
    // The executor's back-off is capped by this window (MESOS_SUBSCRIPTION_BACKOFF_MAX); a
    // wider one than Mesos' 2 s keeps the test independent of the machine's load.
    let cluster = Cluster::start(|config| {
        config.executor_reregistration_timeout = Duration::from_secs(5);
    })
    .await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    scheduler.launch(shell_task("t1", "sleep 2")).await;
    scheduler.acknowledge("t1", TaskState::TaskStarting).await;
    scheduler.acknowledge("t1", TaskState::TaskRunning).await;
    let framework = scheduler.framework_id.clone();
    let executor = executor_id("t1");
    // The acknowledgements reached the executor before the agent goes down.
    let acked_at = Instant::now();
    while !cluster
        .agent
        .unacknowledged(&framework, &executor)
        .is_empty()
    {
        assert!(
            acked_at.elapsed() < PATIENCE,
            "acknowledgements not delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Down for longer than the task has left: its end happens while nobody listens.
    cluster
        .agent
        .restart(Duration::from_secs(3))
        .await
        .expect("restarting the agent");
    let finished = scheduler.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(finished.message(), "Container exited with status 0");
    let status = cluster
        .agent
        .wait_terminated(&framework, &executor, PATIENCE)
        .await
        .expect("the executor exits");
    assert_eq!(status, 0, "{}", cluster.executor_log(&framework, &executor));
    scheduler.drain(Duration::from_millis(300)).await;

    assert_eq!(
        scheduler.states("t1"),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    let forwarded = cluster.agent.forwarded();
    let uuids: HashSet<_> = forwarded.iter().map(|s| s.uuid.clone()).collect();
    assert_eq!(uuids.len(), forwarded.len(), "{forwarded:?}");
}

#[tokio::test]
async fn sigkilled_executor_leaves_no_container_and_the_agent_fails_its_task() {
    let docker = docker().await;
    let cluster = Cluster::start(|_| {}).await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    scheduler.launch(shell_task("t1", "sleep 300")).await;
    scheduler.acknowledge("t1", TaskState::TaskStarting).await;
    scheduler.acknowledge("t1", TaskState::TaskRunning).await;
    let framework = scheduler.framework_id.clone();
    let executor = executor_id("t1");
    assert_eq!(containers_of(&docker, &framework).await.len(), 1);

    let pid = cluster
        .agent
        .executor_pid(&framework, &executor)
        .expect("the executor runs");
    let pid = Pid::from_raw(i32::try_from(pid).expect("a pid"));
    kill(pid, Signal::SIGKILL).expect("SIGKILL the executor");
    let killed_at = Instant::now();

    let failed = scheduler.acknowledge("t1", TaskState::TaskFailed).await;
    assert_eq!(failed.source(), task_status::Source::Agent, "{failed:?}");
    assert_eq!(failed.reason(), task_status::Reason::ExecutorTerminated);
    assert_eq!(failed.message(), "Executor terminated");
    let status = cluster
        .agent
        .wait_terminated(&framework, &executor, PATIENCE)
        .await
        .expect("the agent saw the exit");
    assert_eq!(status, 9, "the raw wait status of a SIGKILL");
    loop {
        let left = containers_of(&docker, &framework).await;
        if left.is_empty() {
            break;
        }
        assert!(
            killed_at.elapsed() < BOUND,
            "the container {left:?} still exists {BOUND:?} after the executor died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An executor that never subscribes and ignores SIGTERM.
fn stubborn_executor(task: &mut mesos_proto::v1::TaskInfo, grace_period: Duration) {
    let info = task.executor.get_or_insert_with(Default::default);
    info.command = Some(CommandInfo {
        value: Some("trap '' TERM; sleep 300".into()),
        ..Default::default()
    });
    info.shutdown_grace_period = grace(grace_period).grace_period;
}

#[tokio::test]
async fn executor_ignoring_shutdown_is_killed_after_the_grace_period() {
    let cluster = Cluster::start(|config| {
        config.executor_registration_timeout = Duration::from_secs(300);
    })
    .await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    let task = shell_task("t1", "true");
    scheduler
        .launch_with(task, |t| stubborn_executor(t, Duration::from_secs(1)))
        .await;
    let framework = scheduler.framework_id.clone();
    let executor = executor_id("t1");
    let started = Instant::now();
    while cluster.agent.executor_pid(&framework, &executor).is_none() {
        assert!(started.elapsed() < PATIENCE, "the executor was not started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let asked = Instant::now();
    scheduler.shutdown(&executor).await;
    let status = cluster
        .agent
        .wait_terminated(&framework, &executor, PATIENCE)
        .await
        .expect("the agent kills the executor");
    assert_eq!(status, 9, "SIGKILL, not the executor's own exit");
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "killed before the grace period"
    );
    let failed = scheduler.acknowledge("t1", TaskState::TaskFailed).await;
    assert_eq!(failed.reason(), task_status::Reason::ExecutorTerminated);
    assert_eq!(failed.message(), "Executor terminated");
}

#[tokio::test]
async fn executor_not_subscribing_in_time_is_destroyed_and_its_task_fails() {
    let cluster = Cluster::start(|config| {
        config.executor_registration_timeout = Duration::from_secs(1);
    })
    .await;
    let mut scheduler = Scheduler::subscribe(&cluster).await;
    let task = shell_task("t1", "true");
    scheduler
        .launch_with(task, |t| stubborn_executor(t, Duration::from_secs(5)))
        .await;
    let failed = scheduler.acknowledge("t1", TaskState::TaskFailed).await;
    assert_eq!(failed.source(), task_status::Source::Agent);
    assert_eq!(
        failed.reason(),
        task_status::Reason::ExecutorRegistrationTimeout
    );
    assert_eq!(failed.message(), "Executor did not register within 1secs");
    let framework = scheduler.framework_id.clone();
    let status = cluster
        .agent
        .wait_terminated(&framework, &executor_id("t1"), PATIENCE)
        .await
        .expect("destroyed");
    assert_eq!(status, 9);
}
