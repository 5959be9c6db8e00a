//! The `deimos-executor` binary against a fake agent and the real Docker engine.

mod common;

use std::time::Duration;

use common::{containers_of, docker, grace, read, shell_task, Setup, PATIENCE};
use mesos_proto::v1::{container_info, task_status, TaskId, TaskState};

fn task_id(id: &str) -> TaskId {
    TaskId { value: id.into() }
}

#[tokio::test]
async fn finished_task_reports_starting_running_finished_and_executor_exits_zero() {
    let docker = docker().await;
    let mut setup = Setup::start("finish", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    setup
        .agent
        .launch(shell_task(
            "t1",
            "echo hello from the task; echo oops >&2; sleep 1",
        ))
        .expect("LAUNCH");

    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    let finished = setup.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(finished.message(), "Container exited with status 0");

    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    assert_eq!(
        setup.states("t1"),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    for status in setup.agent.updates() {
        assert_eq!(status.source(), task_status::Source::Executor);
    }
    assert!(
        setup.agent.rejections().is_empty(),
        "{:?}",
        setup.agent.rejections()
    );
    let sandbox = setup.sandbox.path();
    assert!(read(sandbox, "stdout").contains("hello from the task"));
    assert!(read(sandbox, "stderr").contains("oops"));
    assert!(
        containers_of(&docker, &setup.framework_id).await.is_empty(),
        "the finished task's container was not removed"
    );
}

#[tokio::test]
async fn failing_command_reports_task_failed_with_its_exit_code() {
    let mut setup = Setup::start("fail", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    setup
        .agent
        .launch(shell_task("t1", "exit 3"))
        .expect("LAUNCH");

    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    let failed = setup.acknowledge("t1", TaskState::TaskFailed).await;
    assert_eq!(failed.message(), "Container exited with status 3");
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
}

#[tokio::test]
async fn kill_stops_the_container_and_reports_task_killed() {
    let docker = docker().await;
    let mut setup = Setup::start("kill", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    setup
        .agent
        .launch(shell_task("t1", "sleep 300"))
        .expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;

    setup
        .agent
        .kill_with_policy(task_id("t1"), Some(grace(Duration::from_secs(1))))
        .expect("KILL");
    let killed = setup.acknowledge("t1", TaskState::TaskKilled).await;
    // `sleep` as the container's first process ignores SIGTERM: SIGKILL after the grace.
    assert_eq!(
        killed.message(),
        "Container terminated with signal Killed",
        "{killed:?}"
    );

    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    assert!(containers_of(&docker, &setup.framework_id).await.is_empty());
}

#[tokio::test]
async fn agent_restart_is_survived_by_resubscribing_with_the_unacknowledged_update() {
    let mut setup = Setup::start("restart", |agent| {
        agent.subscription_backoff_max = Duration::from_secs(2);
    })
    .await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    setup
        .agent
        .launch(shell_task("t1", "sleep 5"))
        .expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    let running = setup.update("t1", TaskState::TaskRunning).await;

    setup.agent.disconnect().await.expect("agent going down");
    tokio::time::sleep(Duration::from_millis(700)).await;
    setup.agent.restart().await.expect("agent coming back");

    let subscribe = setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("re-SUBSCRIBE");
    let resent: Vec<_> = subscribe
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.uuid.clone())
        .collect();
    assert_eq!(
        resent,
        std::slice::from_ref(&running.uuid),
        "{}",
        setup.executor_log()
    );
    assert!(
        subscribe.unacknowledged_tasks.is_empty(),
        "the task had an acknowledged update: {subscribe:?}"
    );
    assert!(
        setup.agent.agent_updates().is_empty(),
        "the agent declared tasks lost: {:?}",
        setup.agent.agent_updates()
    );

    setup
        .agent
        .acknowledge(task_id("t1"), running.uuid.clone().unwrap_or_default())
        .expect("acknowledging the re-sent update");
    setup.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
}

#[tokio::test]
async fn shutdown_stops_the_container_reports_killed_and_exits() {
    let docker = docker().await;
    let mut setup = Setup::start("shutdown", |agent| {
        agent.shutdown_grace_period = Duration::from_secs(3);
    })
    .await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    setup
        .agent
        .launch(shell_task("t1", "sleep 300"))
        .expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    assert_eq!(containers_of(&docker, &setup.framework_id).await.len(), 1);

    setup.agent.shutdown().expect("SHUTDOWN");
    setup.acknowledge("t1", TaskState::TaskKilled).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    assert!(containers_of(&docker, &setup.framework_id).await.is_empty());
}

#[tokio::test]
async fn lost_agent_without_checkpointing_stops_the_task_and_exits_with_code_3() {
    let docker = docker().await;
    let mut setup = Setup::start("nocheckpoint", |agent| {
        agent.checkpoint = false;
        agent.shutdown_grace_period = Duration::from_secs(2);
    })
    .await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    setup
        .agent
        .launch(shell_task("t1", "sleep 300"))
        .expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;

    setup.agent.disconnect().await.expect("agent going down");
    assert_eq!(setup.exit_code().await, 3, "{}", setup.executor_log());
    assert!(containers_of(&docker, &setup.framework_id).await.is_empty());
}

#[tokio::test]
async fn out_of_memory_task_fails_with_the_memory_limitation_reason() {
    let mut setup = Setup::start("oom", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    // 32 MiB allowed (common::shell_task); `tail` keeps the newline-free input in memory.
    setup
        .agent
        .launch(shell_task("t1", "head -c 512m /dev/zero | tail"))
        .expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    let failed = setup.acknowledge("t1", TaskState::TaskFailed).await;
    assert_eq!(
        failed.reason(),
        task_status::Reason::ContainerLimitationMemory,
        "{failed:?}"
    );
    assert_eq!(
        failed.message(),
        "Memory limit exceeded: Requested: 32MB; Container terminated with signal Killed"
    );
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
}

#[tokio::test]
async fn running_update_carries_docker_inspect_and_the_containers_address() {
    let docker = docker().await;
    let mut setup = Setup::start("inspect", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    let mut task = shell_task("t1", "sleep 300");
    if let Some(info) = task.container.as_mut().and_then(|c| c.docker.as_mut()) {
        info.network = Some(container_info::docker_info::Network::Bridge as i32);
    }
    setup.agent.launch(task).expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    let running = setup.acknowledge("t1", TaskState::TaskRunning).await;

    // `data` is what `docker inspect` prints: an array with the one container.
    let data: serde_json::Value =
        serde_json::from_slice(running.data()).expect("TASK_RUNNING data is JSON");
    let documents = data.as_array().expect("a JSON array");
    assert_eq!(documents.len(), 1, "{data}");
    let document = &documents[0];
    let ids = containers_of(&docker, &setup.framework_id).await;
    assert_eq!(document["Id"].as_str(), ids.first().map(String::as_str));
    let sandbox_mount = document["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|mount| mount["Destination"] == "/mnt/mesos/sandbox")
        .and_then(|mount| mount["Source"].as_str());
    let sandbox = setup.sandbox.path().display().to_string();
    assert_eq!(sandbox_mount, Some(sandbox.as_str()), "{document}");

    // The address Docker gave the container on its network, as Mesos reports it.
    let expected = document["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .filter(|address| !address.is_empty())
        .expect("an address on the bridge network");
    let status = running.container_status.clone().unwrap_or_default();
    let reported: Vec<_> = status
        .network_infos
        .iter()
        .flat_map(|info| &info.ip_addresses)
        .filter_map(|ip| ip.ip_address.as_deref())
        .collect();
    assert_eq!(reported, [expected], "{running:?}");

    setup
        .agent
        .kill_with_policy(task_id("t1"), Some(grace(Duration::from_secs(1))))
        .expect("KILL");
    setup.acknowledge("t1", TaskState::TaskKilled).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
}
