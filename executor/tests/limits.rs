//! The task's cpus and mem become the container's limits, as Mesos' Docker containerizer sets
//! them (real Docker, the fake agent, the `deimos-executor` binary; the container inspected
//! through the engine): shares of 1024 per CPU, a CFS quota of cpus × 100 ms per 100 ms period
//! when `deimos.cfg` says `[containers] cfs_quota: on` (the agent's `--cgroups_enable_cfs`),
//! memory at least 32 MiB, and swap off (`MemorySwap` equal to `Memory`).

mod common;

use std::time::Duration;

use common::{containers_of, docker, grace, shell_task, Setup, PATIENCE};
use deimos_runtime::runtime::{ContainerRuntime, DockerRuntime};
use mesos_proto::v1::{value, Resource, TaskId, TaskInfo, TaskState};

fn with_resources(mut task: TaskInfo, cpus: f64, mem_mb: f64) -> TaskInfo {
    let scalar = |name: &str, amount: f64| Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    };
    task.resources = vec![scalar("cpus", cpus), scalar("mem", mem_mb)];
    task
}

/// The resource fields of the running task's `HostConfig`, as the engine reports them.
struct HostLimits {
    cpu_shares: i64,
    cpu_quota: i64,
    cpu_period: i64,
    memory: i64,
    memory_swap: i64,
}

/// Runs `task` (a long sleep) until TASK_RUNNING, reads its container's limits from the
/// engine, then kills it and waits for the executor to end.
async fn limits_of_running(mut setup: Setup, task: TaskInfo) -> HostLimits {
    let docker = docker().await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    let id = task.task_id.value.clone();
    setup.agent.launch(task).expect("LAUNCH");
    setup.acknowledge(&id, TaskState::TaskStarting).await;
    setup.acknowledge(&id, TaskState::TaskRunning).await;
    let containers = containers_of(&docker, &setup.framework_id).await;
    assert_eq!(containers.len(), 1, "{containers:?}");
    let limits = host_limits(&docker, &containers[0]).await;
    setup
        .agent
        .kill_with_policy(TaskId { value: id.clone() }, Some(grace(Duration::ZERO)))
        .expect("KILL");
    setup.acknowledge(&id, TaskState::TaskKilled).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    limits
}

async fn host_limits(docker: &DockerRuntime, container: &str) -> HostLimits {
    let document = docker.inspect_json(container).await.expect("inspecting");
    let host = &document["HostConfig"];
    let field = |name: &str| {
        host[name]
            .as_i64()
            .unwrap_or_else(|| panic!("HostConfig.{name} missing: {host}"))
    };
    HostLimits {
        cpu_shares: field("CpuShares"),
        cpu_quota: field("CpuQuota"),
        cpu_period: field("CpuPeriod"),
        memory: field("Memory"),
        memory_swap: field("MemorySwap"),
    }
}

/// `MemorySwap` equal to `Memory`: no swap beyond the limit. An engine without swap
/// accounting drops the setting (with a warning) and reports -1.
fn assert_swap_off(limits: &HostLimits) {
    assert!(
        limits.memory_swap == limits.memory || limits.memory_swap == -1,
        "MemorySwap {} with Memory {}",
        limits.memory_swap,
        limits.memory
    );
}

#[tokio::test]
async fn cpus_and_mem_become_shares_a_cfs_quota_and_memory_without_swap() {
    let setup = Setup::start_with_config("limits", "[containers]\ncfs_quota: on\n").await;
    let task = with_resources(shell_task("t1", "sleep 300"), 0.5, 64.0);
    let limits = limits_of_running(setup, task).await;
    assert_eq!(limits.cpu_shares, 512);
    assert_eq!((limits.cpu_quota, limits.cpu_period), (50_000, 100_000));
    assert_eq!(limits.memory, 64 << 20);
    assert_swap_off(&limits);
}

#[tokio::test]
async fn without_cfs_quota_only_shares_limit_the_cpu_and_small_memory_is_raised_to_32_mib() {
    let setup = Setup::start_with_config("limitsmin", "[containers]\ncfs_quota: off\n").await;
    let task = with_resources(shell_task("t1", "sleep 300"), 0.25, 8.0);
    let limits = limits_of_running(setup, task).await;
    assert_eq!(limits.cpu_shares, 256);
    assert_eq!(limits.cpu_quota, 0);
    assert_eq!(limits.memory, 32 << 20);
    assert_swap_off(&limits);
}
