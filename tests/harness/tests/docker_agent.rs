//! The Docker agent mode with real Docker (`deimos-test/busybox`, never
//! pulled): a fake master, the agent attached to it and a scheduler that
//! launches DOCKER and MESOS (Docker image) tasks and reads their updates.

mod scheduler_client;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mesos_harness::cluster::docker_agent::{DockerAgent, DockerAgentConfig, UNIFIED_LABEL};
use mesos_harness::cluster::sandbox::AgentBook;
use mesos_harness::cluster::RunningAgent;
use mesos_harness::master::FakeMaster;
use mesos_proto::v1::container_info::{docker_info, DockerInfo, MesosInfo};
use mesos_proto::v1::{
    environment, framework_info, image, task_status, CommandInfo, ContainerInfo, DurationInfo,
    Environment, FrameworkInfo, Image, KillPolicy, Parameter, TaskInfo, TaskState, TaskStatus,
};
use scheduler_client::*;

const IMAGE: &str = "deimos-test/busybox";
const TEST_LABEL: &str = "mesos-harness-test";
const LONG: Duration = Duration::from_secs(30);

/// A master with the Docker agent attached, a subscribed framework, and
/// the containers to remove when the test ends.
struct Cluster {
    master: FakeMaster,
    _agent: RunningAgent,
    book: AgentBook,
    subscription: Subscription,
    framework_id: String,
    work_dir: PathBuf,
    run_label: String,
}

impl Cluster {
    async fn start(name: &str, info: FrameworkInfo) -> Cluster {
        let master = start_with_agent().await;
        let run_label = format!("{name}-{}", std::process::id());
        let work_dir = std::env::temp_dir().join(format!("docker-agent-{run_label}"));
        let book = AgentBook::new(&work_dir, AGENT);
        let config = DockerAgentConfig {
            docker_remove_delay: Duration::ZERO,
            executor_stop_delay: Duration::from_millis(300),
            ..DockerAgentConfig::new(book.clone())
        };
        let link = master.attach_agent(AGENT).expect("the agent attaches");
        let agent = RunningAgent::start(link, Arc::new(DockerAgent::new(config)));
        let (subscription, framework_id) = subscribe_new(&master, info).await;
        Cluster {
            master,
            _agent: agent,
            book,
            subscription,
            framework_id,
            work_dir,
            run_label,
        }
    }

    async fn launch(&mut self, task: TaskInfo) {
        let offers = self.subscription.offers().await;
        let call = launch_call(&self.framework_id, &[&offers[0].id], vec![task]);
        let answer = post_call(&self.master, &self.subscription.stream_id, &call).await;
        assert_eq!(answer.status.as_u16(), 202, "{}", answer.body);
    }

    /// The next update, acknowledged.
    async fn update(&mut self) -> TaskStatus {
        let status = tokio::time::timeout(LONG, self.subscription.update())
            .await
            .expect("an update in time");
        let ack = acknowledge_call(
            &self.framework_id,
            &status.task_id.value,
            AGENT,
            status.uuid.clone().expect("updates carry a uuid"),
        );
        post_call(&self.master, &self.subscription.stream_id, &ack).await;
        status
    }

    async fn kill(&self, task: &str) {
        post_call(
            &self.master,
            &self.subscription.stream_id,
            &kill_call(&self.framework_id, task),
        )
        .await;
    }

    fn sandbox(&self, task: &str) -> PathBuf {
        self.book
            .latest_run(&self.framework_id, task)
            .expect("the task has a run")
    }

    fn container_id(&self, task: &str) -> String {
        let run = self
            .book
            .executors()
            .into_iter()
            .rev()
            .find(|e| e.executor_id == task);
        run.expect("the task has a run").container_id
    }

    /// A DOCKER task labelled for cleanup.
    fn docker_task(&self, id: &str, command: &str, cpus: f64, mem: f64) -> TaskInfo {
        let mut task = task_info(id, AGENT, cpus, mem);
        task.command = Some(CommandInfo {
            value: Some(command.to_owned()),
            ..Default::default()
        });
        task.container = Some(ContainerInfo {
            r#type: mesos_proto::v1::container_info::Type::Docker as i32,
            docker: Some(DockerInfo {
                image: IMAGE.to_owned(),
                network: Some(docker_info::Network::Bridge as i32),
                parameters: vec![Parameter {
                    key: "label".to_owned(),
                    value: format!("{TEST_LABEL}={}", self.run_label),
                }],
                ..Default::default()
            }),
            ..Default::default()
        });
        task
    }

    fn unified_task(&self, id: &str, command: &str, mem: f64) -> TaskInfo {
        let mut task = task_info(id, AGENT, 0.5, mem);
        task.command = Some(CommandInfo {
            value: Some(command.to_owned()),
            ..Default::default()
        });
        task.container = Some(ContainerInfo {
            r#type: mesos_proto::v1::container_info::Type::Mesos as i32,
            mesos: Some(MesosInfo {
                image: Some(Image {
                    r#type: image::Type::Docker as i32,
                    docker: Some(image::Docker {
                        name: IMAGE.to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        });
        task
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut names = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label={TEST_LABEL}={}", self.run_label),
        ]);
        for run in self.book.executors() {
            let filter = format!("label={UNIFIED_LABEL}={}", run.container_id);
            names.push_str(&docker(&["ps", "-aq", "--filter", &filter]));
        }
        for id in names.split_whitespace() {
            docker(&["rm", "-f", "-v", id]);
        }
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

fn docker(args: &[&str]) -> String {
    let output = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn inspect(name: &str) -> Option<serde_json::Value> {
    let text = docker(&["inspect", "--type=container", name]);
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.as_array()?.first().cloned()
}

fn killing_capable() -> FrameworkInfo {
    FrameworkInfo {
        capabilities: vec![framework_info::Capability {
            r#type: Some(framework_info::capability::Type::TaskKillingState as i32),
        }],
        ..framework_info()
    }
}

#[tokio::test]
async fn docker_task_runs_named_limited_with_its_sandbox_and_env_and_fails_with_its_exit_status() {
    let mut cluster = Cluster::start("docker-run", framework_info()).await;
    let mut task = cluster.docker_task(
        "t1",
        "echo $FOO; echo $MESOS_SANDBOX > $MESOS_SANDBOX/written; sleep 1; exit 3",
        0.5,
        64.0,
    );
    task.command.as_mut().unwrap().environment = Some(Environment {
        variables: vec![environment::Variable {
            name: "FOO".to_owned(),
            value: Some("bar".to_owned()),
            ..Default::default()
        }],
    });
    cluster.launch(task).await;

    let starting = cluster.update().await;
    assert_eq!(starting.state(), TaskState::TaskStarting);
    assert_eq!(starting.source(), task_status::Source::Executor);
    let container_id = cluster.container_id("t1");
    let name = format!("mesos-{container_id}");

    let running = cluster.update().await;
    assert_eq!(running.state(), TaskState::TaskRunning);
    let data: serde_json::Value = serde_json::from_slice(running.data.as_ref().unwrap()).unwrap();
    let container = &data[0];
    assert_eq!(container["Name"], format!("/{name}"));
    assert_eq!(container["HostConfig"]["CpuShares"], 512);
    assert_eq!(container["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert_eq!(
        container["Config"]["Entrypoint"],
        serde_json::json!(["/bin/sh"])
    );
    let env: Vec<String> = serde_json::from_value(container["Config"]["Env"].clone()).unwrap();
    for wanted in [
        "FOO=bar",
        "MESOS_SANDBOX=/mnt/mesos/sandbox",
        &format!("MESOS_CONTAINER_NAME={name}"),
    ] {
        assert!(env.iter().any(|e| e == wanted), "{wanted} not in {env:?}");
    }
    let container_status = running.container_status.clone().unwrap();
    assert_eq!(container_status.container_id.unwrap().value, container_id);
    let bridge_ip = container["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap();
    assert_eq!(
        container_status.network_infos[0].ip_addresses[0]
            .ip_address
            .as_deref(),
        Some(bridge_ip)
    );
    let limits = inspect(&name).unwrap();
    assert_eq!(limits["HostConfig"]["CpuShares"], 512);

    let failed = cluster.update().await;
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(failed.message(), "Container exited with status 3");
    let sandbox = cluster.sandbox("t1");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("written")).unwrap(),
        "/mnt/mesos/sandbox\n"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
        "bar\n"
    );

    // The executor stops, then the container is removed (remove delay 0).
    let deadline = tokio::time::Instant::now() + LONG;
    while inspect(&name).is_some() {
        assert!(tokio::time::Instant::now() < deadline, "{name} not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(cluster.book.executors()[0].terminated);
}

#[tokio::test]
async fn docker_task_killed_goes_killing_then_killed_after_docker_stop() {
    let mut cluster = Cluster::start("docker-kill", killing_capable()).await;
    let mut task = cluster.docker_task("k1", "sleep 30", 0.1, 32.0);
    task.kill_policy = Some(KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: 1_000_000_000,
        }),
    });
    cluster.launch(task).await;
    assert_eq!(cluster.update().await.state(), TaskState::TaskStarting);
    assert_eq!(cluster.update().await.state(), TaskState::TaskRunning);
    cluster.kill("k1").await;
    assert_eq!(cluster.update().await.state(), TaskState::TaskKilling);
    let killed = cluster.update().await;
    assert_eq!(killed.state(), TaskState::TaskKilled);
    // `sleep` as PID 1 ignores SIGTERM: docker stop kills it after 1 s.
    assert_eq!(killed.message(), "Container exited with status 137");
}

#[tokio::test]
async fn docker_task_over_its_memory_fails_with_the_oom_exit_status() {
    let mut cluster = Cluster::start("docker-oom", framework_info()).await;
    let mut task = cluster.docker_task("m1", "tail /dev/zero", 0.1, 32.0);
    task.container
        .as_mut()
        .unwrap()
        .docker
        .as_mut()
        .unwrap()
        .parameters
        .push(Parameter {
            key: "memory-swap".to_owned(),
            value: "32m".to_owned(),
        });
    cluster.launch(task).await;
    assert_eq!(cluster.update().await.state(), TaskState::TaskStarting);
    assert_eq!(cluster.update().await.state(), TaskState::TaskRunning);
    let failed = cluster.update().await;
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(failed.message(), "Container exited with status 137");
    assert_eq!(failed.reason, None);
}

#[tokio::test]
async fn mesos_container_with_docker_image_reports_as_the_command_executor() {
    let mut cluster = Cluster::start("unified-run", framework_info()).await;
    let task = cluster.unified_task("u1", "echo $MESOS_SANDBOX; pwd > written; exit 3", 64.0);
    cluster.launch(task).await;
    assert_eq!(cluster.update().await.state(), TaskState::TaskStarting);
    let running = cluster.update().await;
    assert_eq!(running.state(), TaskState::TaskRunning);
    assert_eq!(running.data, None);
    let failed = cluster.update().await;
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(failed.message(), "Command exited with status 3");
    let sandbox = cluster.sandbox("u1");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
        "/mnt/mesos/sandbox\n"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("written")).unwrap(),
        "/mnt/mesos/sandbox\n"
    );
}

#[tokio::test]
async fn mesos_container_over_its_memory_is_failed_by_the_agent_with_the_memory_limitation() {
    let mut cluster = Cluster::start("unified-oom", framework_info()).await;
    let task = cluster.unified_task("u2", "tail /dev/zero", 32.0);
    cluster.launch(task).await;
    assert_eq!(cluster.update().await.state(), TaskState::TaskStarting);
    assert_eq!(cluster.update().await.state(), TaskState::TaskRunning);
    let failed = cluster.update().await;
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(failed.source(), task_status::Source::Agent);
    assert_eq!(
        failed.reason(),
        task_status::Reason::ContainerLimitationMemory
    );
    // 32 MB for the task plus the command executor's 32 MB.
    assert_eq!(failed.message(), "Memory limit exceeded: Requested: 64MB ");
}

#[tokio::test]
async fn teardown_shuts_the_docker_executor_down_and_its_container_stops() {
    let mut cluster = Cluster::start("docker-teardown", framework_info()).await;
    cluster
        .launch(cluster.docker_task("s1", "sleep 60", 0.1, 32.0))
        .await;
    assert_eq!(cluster.update().await.state(), TaskState::TaskStarting);
    assert_eq!(cluster.update().await.state(), TaskState::TaskRunning);
    let name = format!("mesos-{}", cluster.container_id("s1"));
    let teardown = envelope(
        &cluster.framework_id,
        mesos_proto::v1::scheduler::call::Type::Teardown,
    );
    post_call(&cluster.master, &cluster.subscription.stream_id, &teardown).await;
    // Shutdown grace 5 s: the executor stops it with `docker stop -t 3`.
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let running = inspect(&name).is_some_and(|c| c["State"]["Running"] == true);
        if !running {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} still running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
