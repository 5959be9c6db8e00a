//! The two sides of a pair and the memory readings: a task launched through the real
//! executor binary against the fake agent, and the same container created and started
//! directly through `deimos_runtime`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use deimos_executor::task::{plan_task, TaskContext};
use deimos_executor::watchdog::WATCHDOG_ARG;
use deimos_runtime::mesos::task_data;
use deimos_runtime::policy::ContainerPolicy;
use deimos_runtime::runtime::{ContainerRuntime, DockerRuntime, LabelFilter};
use deimos_runtime::spec::labels;
use mesos_harness::agent::{AgentSetup, FakeAgent};
use mesos_proto::v1::executor::Call;
use mesos_proto::v1::{
    container_info, value, CommandInfo, ContainerInfo, DurationInfo, KillPolicy, Resource, TaskId,
    TaskInfo, TaskState,
};
use tokio::process::{Child, Command};

/// The test image (`scripts/setup` builds it).
const IMAGE: &str = "deimos-test/busybox:latest";
/// How long one step may take before the measurement is given up.
const PATIENCE: Duration = Duration::from_secs(60);
const EXECUTOR_ID: &str = "executor-1";
const AGENT_ID: &str = "agent-1";

/// One launch through the executor.
pub(crate) struct ExecutorRun {
    /// From sending LAUNCH to receiving the TASK_RUNNING update.
    pub(crate) to_running: Duration,
    /// The executor's VmRSS while the task runs.
    pub(crate) executor_rss_kib: u64,
    /// Its watchdog's VmRSS at the same time.
    pub(crate) watchdog_rss_kib: u64,
}

/// A long-running task of the test image, its command in `TaskInfo.data`.
fn task() -> TaskInfo {
    let scalar = |name: &str, amount: f64| Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    };
    let command = CommandInfo {
        value: Some("sleep 300".into()),
        ..Default::default()
    };
    TaskInfo {
        name: "bench".into(),
        task_id: TaskId { value: "t1".into() },
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        container: Some(ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(container_info::DockerInfo {
                image: IMAGE.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        data: Some(task_data::encode(&command)),
        ..Default::default()
    }
}

fn unique(prefix: &str, pair: usize) -> String {
    format!("bench-{prefix}-{}-{pair}", std::process::id())
}

/// LAUNCH → TASK_RUNNING through the executor binary, then both processes' memory; the task
/// is killed and the executor's exit awaited afterwards (not timed).
pub(crate) async fn through_executor(
    docker: &DockerRuntime,
    pair: usize,
) -> Result<ExecutorRun, String> {
    let framework_id = unique("executor", pair);
    let setup = AgentSetup::new(&framework_id, EXECUTOR_ID, AGENT_ID, unique("cid", pair));
    let agent = FakeAgent::start(setup)
        .await
        .map_err(|error| format!("starting the fake agent: {error}"))?;
    let sandbox = tempfile::tempdir().map_err(|error| format!("creating a sandbox: {error}"))?;
    let mut executor = spawn_executor(&agent.executor_env(sandbox.path()), sandbox.path())?;
    let measured = measure_executor(docker, &agent, &executor, &framework_id).await;
    let ended = end_executor(&agent, &mut executor).await;
    remove_containers(docker, &framework_id).await;
    let log = std::fs::read_to_string(sandbox.path().join("stderr")).unwrap_or_default();
    let run = measured.map_err(|error| format!("{error}\nexecutor log:\n{log}"))?;
    ended.map_err(|error| format!("{error}\nexecutor log:\n{log}"))?;
    Ok(run)
}

async fn measure_executor(
    docker: &DockerRuntime,
    agent: &FakeAgent,
    executor: &Child,
    framework_id: &str,
) -> Result<ExecutorRun, String> {
    agent
        .wait_subscribed(PATIENCE)
        .await
        .map_err(|error| format!("the executor did not subscribe: {error}"))?;
    let start = Instant::now();
    agent
        .launch(task())
        .map_err(|error| format!("LAUNCH: {error}"))?;
    agent
        .wait_for_call(|call| is_update(call, TaskState::TaskRunning), PATIENCE)
        .await
        .map_err(|error| format!("no TASK_RUNNING: {error}"))?;
    let to_running = start.elapsed();
    let executor_pid = executor.id().ok_or("the executor has exited")?;
    let executor_rss_kib = vm_rss_kib(executor_pid)?;
    let instance = executor_instance(docker, framework_id).await?;
    let watchdog = watchdog_pid(&instance)?;
    Ok(ExecutorRun {
        to_running,
        executor_rss_kib,
        watchdog_rss_kib: vm_rss_kib(watchdog)?,
    })
}

/// Kills the task, acknowledges every update and waits for the executor to exit (SIGKILL
/// should it not within [`PATIENCE`]).
async fn end_executor(agent: &FakeAgent, executor: &mut Child) -> Result<(), String> {
    // No grace: `sleep` as the container's first process ignores SIGTERM.
    let no_grace = KillPolicy {
        grace_period: Some(DurationInfo { nanoseconds: 0 }),
    };
    let _ = agent.kill_with_policy(TaskId { value: "t1".into() }, Some(no_grace));
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        for (task_id, uuid) in agent.pending_acknowledgements() {
            let _ = agent.acknowledge(task_id, uuid);
        }
        match executor.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("the executor exited with {status}")),
            Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(error) => return Err(format!("waiting for the executor: {error}")),
        }
    }
    let _ = executor.start_kill();
    Err(format!("the executor did not exit within {PATIENCE:?}"))
}

fn is_update(call: &Call, state: TaskState) -> bool {
    call.update
        .as_ref()
        .is_some_and(|update| update.status.state() == state)
}

/// The same container as the executor starts (the executor's own translation), created and
/// started through `deimos_runtime` (image present); returns the time of that launch.
pub(crate) async fn direct(docker: &DockerRuntime, pair: usize) -> Result<Duration, String> {
    let framework_id = unique("direct", pair);
    let container_id = unique("direct-cid", pair);
    let sandbox = tempfile::tempdir().map_err(|error| format!("creating a sandbox: {error}"))?;
    let policy = ContainerPolicy::default();
    let context = TaskContext {
        framework_id: &framework_id,
        executor_id: EXECUTOR_ID,
        agent_id: Some(AGENT_ID),
        container_id: Some(&container_id),
        directory: sandbox.path(),
        policy: &policy,
        cfs_quota: false,
        instance: "bench-direct",
    };
    let plan = plan_task(&task(), &context).map_err(|error| error.to_string())?;
    let start = Instant::now();
    let launched = docker.launch(&plan.spec).await;
    let elapsed = start.elapsed();
    remove_containers(docker, &framework_id).await;
    launched.map_err(|error| format!("direct launch: {error}"))?;
    Ok(elapsed)
}

async fn remove_containers(docker: &DockerRuntime, framework_id: &str) {
    let filter = [LabelFilter::equals(labels::FRAMEWORK_ID, framework_id)];
    for container in docker.list(&filter).await.unwrap_or_default() {
        if let Err(error) = docker.remove(&container.id).await {
            eprintln!("bench: removing {}: {error}", container.id);
        }
    }
}

/// The executor instance id its container is labelled with.
async fn executor_instance(docker: &DockerRuntime, framework_id: &str) -> Result<String, String> {
    let filter = [LabelFilter::equals(labels::FRAMEWORK_ID, framework_id)];
    let listed = docker
        .list(&filter)
        .await
        .map_err(|error| format!("listing the task's container: {error}"))?;
    listed
        .iter()
        .find_map(|container| container.labels.get(labels::EXECUTOR_INSTANCE).cloned())
        .ok_or_else(|| "the task's container has no executor instance label".into())
}

/// The watchdog process of an executor instance: `deimos-executor watchdog <instance>`.
fn watchdog_pid(instance: &str) -> Result<u32, String> {
    let entries = std::fs::read_dir("/proc").map_err(|error| format!("reading /proc: {error}"))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
        if args.len() >= 3
            && args[0].ends_with(b"deimos-executor")
            && args[1] == WATCHDOG_ARG.as_bytes()
            && args[2] == instance.as_bytes()
        {
            return Ok(pid);
        }
    }
    Err(format!(
        "no watchdog process for executor instance {instance}"
    ))
}

/// `VmRSS` of a process, in KiB, from `/proc/<pid>/status`.
fn vm_rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(|error| format!("reading {path}: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path} has no VmRSS line"))
}

/// Spawns the executor as an agent does: its environment only (plus PATH and DOCKER_HOST),
/// the sandbox as working directory, stdout and stderr into the sandbox files.
fn spawn_executor(env: &[(String, String)], sandbox: &Path) -> Result<Child, String> {
    let output = |name: &str| -> Result<Stdio, String> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.join(name))
            .map(Stdio::from)
            .map_err(|error| format!("opening the sandbox's {name}: {error}"))
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_deimos-executor"));
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(output("stdout")?)
        .stderr(output("stderr")?)
        .kill_on_drop(true);
    for inherited in ["PATH", "DOCKER_HOST"] {
        if let Ok(value) = std::env::var(inherited) {
            command.env(inherited, value);
        }
    }
    command
        .spawn()
        .map_err(|error| format!("spawning deimos-executor: {error}"))
}
