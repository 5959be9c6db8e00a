//! TaskInfo validation of the fake master over real HTTP: the checks of
//! `validation::task::validate` in their order with the master's texts
//! (TASK_ERROR, REASON_TASK_INVALID, no uuid), and the docker executor's
//! refusal of run options it cannot build (TASK_STARTING, TASK_FAILED).

mod scheduler_client;

use mesos_proto::v1::container_info::{docker_info, DockerInfo};
use mesos_proto::v1::{
    container_info, task_status, value, ContainerInfo, DurationInfo, ExecutorId, ExecutorInfo,
    KillPolicy, NetworkInfo, Resource, TaskInfo, TaskState,
};
use scheduler_client::*;

/// Launches `tasks` on the first offer and returns the UPDATEs that follow
/// (one per task expected; `count` of them).
async fn launch_and_collect(
    tasks: Vec<TaskInfo>,
    count: usize,
) -> Vec<mesos_proto::v1::TaskStatus> {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let call = launch_call(&framework_id, &[&offers[0].id], tasks);
    post_call(&master, &subscription.stream_id, &call).await;
    let mut statuses = Vec::new();
    for _ in 0..count {
        statuses.push(subscription.update().await);
    }
    statuses
}

/// The single TASK_ERROR the master sends for one invalid task.
async fn task_error(task: TaskInfo) -> String {
    let status = launch_and_collect(vec![task], 1).await.remove(0);
    assert_eq!(status.state(), TaskState::TaskError);
    assert_eq!(status.reason(), task_status::Reason::TaskInvalid);
    assert_eq!(status.source(), task_status::Source::Master);
    assert!(status.uuid.is_none());
    status.message().to_owned()
}

fn ports(begin: u64, end: u64) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range { begin, end }],
        }),
        ..Default::default()
    }
}

fn docker_task(id: &str, network: docker_info::Network, host_port: Option<u32>) -> TaskInfo {
    let mut task = task_info(id, AGENT, 0.5, 64.0);
    task.container = Some(ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        docker: Some(DockerInfo {
            image: "busybox".into(),
            network: Some(network as i32),
            port_mappings: host_port
                .map(|p| docker_info::PortMapping {
                    host_port: p,
                    container_port: 80,
                    protocol: None,
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    });
    task
}

#[tokio::test]
async fn negative_kill_grace_period_is_invalid() {
    let mut task = task_info("t", AGENT, 1.0, 64.0);
    task.kill_policy = Some(KillPolicy {
        grace_period: Some(DurationInfo { nanoseconds: -1 }),
    });
    assert_eq!(
        task_error(task).await,
        "Task's 'kill_policy.grace_period' must be non-negative"
    );
}

#[tokio::test]
async fn task_id_with_a_slash_is_invalid() {
    let task = task_info("a/b", AGENT, 1.0, 64.0);
    assert_eq!(task_error(task).await, "'a/b' contains invalid characters");
}

#[tokio::test]
async fn task_naming_another_agent_is_invalid() {
    let task = task_info("t", "elsewhere", 1.0, 64.0);
    assert_eq!(
        task_error(task).await,
        format!("Task uses invalid agent elsewhere while agent {AGENT} is expected")
    );
}

#[tokio::test]
async fn task_with_neither_command_nor_executor_is_invalid() {
    let mut task = task_info("t", AGENT, 1.0, 64.0);
    task.command = None;
    assert_eq!(
        task_error(task).await,
        "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
    );
}

#[tokio::test]
async fn custom_executor_without_command_is_invalid() {
    let mut task = task_info("t", AGENT, 1.0, 64.0);
    task.command = None;
    task.executor = Some(ExecutorInfo {
        r#type: Some(mesos_proto::v1::executor_info::Type::Custom as i32),
        executor_id: ExecutorId { value: "e".into() },
        ..Default::default()
    });
    assert_eq!(
        task_error(task).await,
        "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
    );
}

#[tokio::test]
async fn docker_container_without_docker_info_is_invalid() {
    let mut task = docker_task("t", docker_info::Network::Bridge, None);
    if let Some(container) = &mut task.container {
        container.docker = None;
    }
    assert_eq!(
        task_error(task).await,
        "Task's `ContainerInfo` is invalid: DockerInfo 'docker' is not set for DOCKER typed \
         ContainerInfo"
    );
}

#[tokio::test]
async fn duplicate_task_ids_in_one_accept_fail_the_second() {
    let statuses = launch_and_collect(
        vec![
            task_info("a", AGENT, 1.0, 64.0),
            task_info("a", AGENT, 1.0, 64.0),
        ],
        1,
    )
    .await;
    assert_eq!(statuses[0].state(), TaskState::TaskError);
    assert_eq!(statuses[0].message(), "Task has duplicate ID: a");
}

#[tokio::test]
async fn task_id_of_a_live_task_cannot_be_reused() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    let offers = subscription.offers().await;
    let call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info("t1", AGENT, 1.0, 64.0)],
    );
    post_call(&master, &subscription.stream_id, &call).await;
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskError);
    assert_eq!(status.message(), "Task has duplicate ID: t1");
}

#[tokio::test]
async fn docker_executor_fails_a_user_network_task_without_network_infos() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let task = docker_task("t", docker_info::Network::User, None);
    let call = launch_call(&framework_id, &[&offers[0].id], vec![task]);
    post_call(&master, &subscription.stream_id, &call).await;
    let starting = subscription.update().await;
    assert_eq!(starting.state(), TaskState::TaskStarting);
    let uuid = starting.uuid.clone().unwrap();
    let ack = acknowledge_call(&framework_id, "t", AGENT, uuid);
    post_call(&master, &subscription.stream_id, &ack).await;
    let failed = subscription.update().await;
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(failed.source(), task_status::Source::Executor);
    assert_eq!(
        failed.message(),
        "Failed to create docker run options: No network info found in container info"
    );
    assert!(failed.reason.is_none());
}

#[tokio::test]
async fn docker_port_mapping_outside_the_task_ports_fails_in_the_docker_executor() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let mut task = docker_task("t", docker_info::Network::Bridge, Some(31005));
    task.resources.push(ports(31000, 31001));
    let call = launch_call(&framework_id, &[&offers[0].id], vec![task]);
    post_call(&master, &subscription.stream_id, &call).await;
    let starting = subscription.update().await;
    let ack = acknowledge_call(&framework_id, "t", AGENT, starting.uuid.unwrap());
    post_call(&master, &subscription.stream_id, &ack).await;
    let failed = subscription.update().await;
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(
        failed.message(),
        "Failed to create docker run options: Port [31005] not included in resources"
    );
}

#[tokio::test]
async fn valid_docker_task_with_a_user_network_stays_staging() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let mut task = docker_task("t", docker_info::Network::User, Some(31000));
    task.resources.push(ports(31000, 31000));
    if let Some(container) = &mut task.container {
        container.network_infos = vec![NetworkInfo {
            name: Some("net-a".into()),
            ..Default::default()
        }];
    }
    let call = launch_call(&framework_id, &[&offers[0].id], vec![task]);
    post_call(&master, &subscription.stream_id, &call).await;
    subscription
        .assert_quiet(std::time::Duration::from_millis(300))
        .await;
    assert_eq!(master.task("t").unwrap().state, TaskState::TaskStaging);
}
