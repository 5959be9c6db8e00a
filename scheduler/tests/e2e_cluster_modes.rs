//! End to end on a harness cluster with real agents of every kind: the real `eremetic` binary
//! with `master` set to the `zk://` election of two masters in a real ZooKeeper, and three
//! agents told apart by the attribute `kind` — Mesos' Docker containerizer (`kind:docker`, also
//! the unified containerizer for MESOS tasks), a Mesos agent running `deimos-executor` as a
//! custom executor (`kind:executor`) and a Mesos 1.0 agent running the real `deimos` as its
//! external containerizer (`kind:deimos`), all on the real Docker engine. Each test places its
//! tasks with `agent_constraints` and chooses the launch mode with the `eremetic.launch_mode`
//! label, and checks what a user sees through the REST API: the document (agent, framework,
//! exit code, failure reason, host ports), the output read from the agent, kills.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod cluster_support;
mod e2e_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e_support::{current_state, docker, shell_task, with, Service, Settings, DEADLINE};
use mesos_harness::cluster::containerizer_agent::{ContainerizerAgent, ContainerizerAgentConfig};
use mesos_harness::cluster::docker_agent::{DockerAgent, DockerAgentConfig, UNIFIED_LABEL};
use mesos_harness::cluster::executor_agent::{ExecutorAgent, ExecutorAgentConfig};
use mesos_harness::cluster::sandbox::AgentBook;
use mesos_harness::cluster::{Cluster, ClusterSetup};
use mesos_harness::master::{AgentSpec, MasterSetup};
use mesos_proto::v1::{value, Attribute};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The Docker containerizer agent (`kind:docker`).
const DOCKER_AGENT: &str = "docker-agent";
/// The custom-executor agent running `deimos-executor` (`kind:executor`).
const EXECUTOR_AGENT: &str = "executor-agent";
/// The external containerizer agent running `deimos` (`kind:deimos`).
const DEIMOS_AGENT: &str = "deimos-agent";

/// The agents' address: their `/files` and `/state` endpoints listen there.
const AGENT_HOST: &str = "127.0.0.1";

/// A task's shell command that prints `first`, waits (up to 30 s) for the file `go` in its
/// sandbox, then prints `second`: the test decides when it goes on, not a timer.
const WAIT_FOR_GO: &str = "echo first; i=0; \
     while [ ! -e \"$MESOS_SANDBOX/go\" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
     echo second";

/// A command that needs far more than the 32 MiB a test task gets: `tail` keeps the
/// newline-free input in memory.
const OUT_OF_MEMORY: &str = "head -c 512m /dev/zero | tail";

/// The cluster with its three agents and eremetic subscribed to it; dropping it removes every
/// container the agents made.
struct ModesCluster {
    service: Service,
    /// Kept for its masters, ZooKeeper and agents' endpoints.
    _cluster: Cluster,
    docker_book: AgentBook,
    executor_book: AgentBook,
    deimos_book: AgentBook,
    /// Each agent's endpoint port (`agent_port` in the documents), by agent id.
    endpoint_ports: BTreeMap<&'static str, u16>,
    _dir: tempfile::TempDir,
}

impl ModesCluster {
    /// Starts ZooKeeper, two masters, the three agents (the Docker agent offering
    /// `docker_ports`, when given, instead of the default range) and eremetic.
    async fn start(docker_ports: Option<Vec<(u64, u64)>>) -> ModesCluster {
        e2e_support::docker::require_docker();
        let dir = tempfile::Builder::new()
            .prefix("eremetic-modes-")
            .tempdir()
            .unwrap();
        let mut setup = ClusterSetup::new(dir.path().join("agents"));
        setup.masters = 2;
        setup.master = MasterSetup {
            allocation_interval: Duration::from_millis(100),
            ..MasterSetup::default()
        };
        let cluster = Cluster::start(setup).await.unwrap();

        let mut spec = agent_spec(DOCKER_AGENT, "docker");
        if let Some(ports) = docker_ports {
            spec.ports = ports;
        }
        let docker_view = cluster
            .add_agent(spec, |book| {
                Arc::new(DockerAgent::new(DockerAgentConfig {
                    // `--docker_remove_delay=0`, and the docker executor's 60 s fail-safe
                    // shortened, so that ended containers are removed while the test looks.
                    docker_remove_delay: Duration::ZERO,
                    executor_stop_delay: Duration::from_millis(300),
                    ..DockerAgentConfig::new(book)
                }))
            })
            .await
            .unwrap();

        let executor_view = cluster
            .add_agent(agent_spec(EXECUTOR_AGENT, "executor"), |book| {
                let mut config = ExecutorAgentConfig::new(book);
                config.hostname = AGENT_HOST.to_owned();
                if let Ok(host) = std::env::var("DOCKER_HOST") {
                    config
                        .executor_environment_variables
                        .push(("DOCKER_HOST".to_owned(), host));
                }
                Arc::new(ExecutorAgent::new(config))
            })
            .await
            .unwrap();

        let deimos_view = add_deimos_agent(&cluster, dir.path()).await;

        let settings = Settings::new().set("master", cluster.master_url()).set(
            "executor_command",
            cluster_support::deimos_executor().display().to_string(),
        );
        let service = Service::start(settings).await;
        let endpoint_ports = BTreeMap::from([
            (DOCKER_AGENT, docker_view.endpoint.port()),
            (EXECUTOR_AGENT, executor_view.endpoint.port()),
            (DEIMOS_AGENT, deimos_view.endpoint.port()),
        ]);
        ModesCluster {
            service,
            _cluster: cluster,
            docker_book: docker_view.book,
            executor_book: executor_view.book,
            deimos_book: deimos_view.book,
            endpoint_ports,
            _dir: dir,
        }
    }

    /// Submits `command` in launch mode `mode`, constrained to the agent of kind `kind`.
    async fn submit(&self, mode: &str, kind: &str, command: &str) -> String {
        self.submit_task(placed(shell_task(command), mode, kind))
            .await
    }

    async fn submit_task(&self, body: Value) -> String {
        self.service.submit(&body).await
    }

    /// The container id of the run of Mesos task (command executor) `mesos_id` on the Docker
    /// agent.
    fn docker_container_id(&self, mesos_id: &str) -> String {
        let record = self
            .docker_book
            .executors()
            .into_iter()
            .rev()
            .find(|record| record.executor_id == mesos_id);
        record
            .unwrap_or_else(|| panic!("the Docker agent has no run of {mesos_id}"))
            .container_id
    }

    /// Waits until `what` has no container left (`containers` lists them).
    async fn wait_no_container(&self, what: &str, containers: impl Fn() -> Vec<String>) {
        let started = Instant::now();
        loop {
            let left = containers();
            if left.is_empty() {
                return;
            }
            if started.elapsed() > DEADLINE {
                panic!(
                    "{what} still has containers {left:?} after {DEADLINE:?}\n{}",
                    self.service.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for ModesCluster {
    fn drop(&mut self) {
        for record in self.docker_book.executors() {
            remove_quietly(&format!("mesos-{}", record.container_id));
            docker::remove_labelled(UNIFIED_LABEL, &record.container_id);
        }
        let frameworks: BTreeSet<String> = self
            .executor_book
            .executors()
            .into_iter()
            .map(|record| record.framework_id)
            .collect();
        for framework in frameworks {
            docker::remove_labelled("io.deimos.framework-id", &framework);
        }
        let owner = self.deimos_book.work_dir().display().to_string();
        docker::remove_labelled("io.deimos.owner", &owner);
    }
}

/// Agent `agent_id` on [`AGENT_HOST`] with the attribute `kind:<kind>`.
fn agent_spec(agent_id: &str, kind: &str) -> AgentSpec {
    let mut spec = AgentSpec::new(agent_id, AGENT_HOST);
    spec.attributes = vec![Attribute {
        name: "kind".to_owned(),
        r#type: value::Type::Text as i32,
        text: Some(value::Text {
            value: kind.to_owned(),
        }),
        ..Default::default()
    }];
    spec
}

/// Adds the Mesos 1.0 agent running the real `deimos` as its external containerizer, with
/// the harness's `mesos-executor` in its launcher directory, and lets it recover (a fresh
/// agent finds nothing) before any task can reach it.
async fn add_deimos_agent(cluster: &Cluster, dir: &Path) -> mesos_harness::cluster::AgentView {
    let launcher = cluster_support::launcher_dir(dir);
    let agent_cwd = dir.join("deimos-agent-cwd");
    std::fs::create_dir_all(&agent_cwd).unwrap();
    let config_file = dir.join("deimos.cfg");
    std::fs::write(
        &config_file,
        format!(
            "[state]\nroot: {}\n[containers.image]\ndefault: {}\n[containers]\n\
             stop_grace_period: 1s\n[log]\nconsole: off\nsyslog: off\n",
            dir.join("deimos-state").display(),
            e2e_support::IMAGE,
        ),
    )
    .unwrap();
    let made: Arc<Mutex<Option<ContainerizerAgent>>> = Arc::default();
    let slot = Arc::clone(&made);
    let view = cluster
        .add_agent(agent_spec(DEIMOS_AGENT, "deimos"), move |book| {
            let mut config =
                ContainerizerAgentConfig::new(cluster_support::deimos(), book, launcher, agent_cwd);
            config.containerizer_config = Some(config_file);
            let agent = ContainerizerAgent::new(config);
            *slot.lock().unwrap() = Some(agent.clone());
            Arc::new(agent)
        })
        .await
        .unwrap();
    let agent = made.lock().unwrap().take().unwrap();
    agent.start().await.unwrap();
    view
}

/// `task` in launch mode `mode`, constrained to the agent with the attribute `kind:<kind>`.
fn placed(task: Value, mode: &str, kind: &str) -> Value {
    with(
        task,
        json!({
            "labels": {"eremetic.launch_mode": mode},
            "agent_constraints": [{"attribute_name": "kind", "attribute_value": kind}],
        }),
    )
}

/// `docker rm -f name`, ignoring a container that is not there.
fn remove_quietly(name: &str) {
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", name])
        .output();
}

/// Containers (running or not) named exactly `name`.
fn named(name: &str) -> Vec<String> {
    let filter = format!("name=^/{name}$");
    docker::docker(&["ps", "-aq", "--filter", &filter])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Whether `output` has the line `line`.
fn has_line(output: &str, line: &str) -> bool {
    output.lines().any(|l| l == line)
}

#[tokio::test]
async fn a_task_finishes_in_every_launch_mode_with_its_agent_in_the_document_and_its_output_read_from_the_agent(
) {
    let modes = ModesCluster::start(None).await;
    let runs = [
        ("docker", "docker", DOCKER_AGENT),
        ("docker", "deimos", DEIMOS_AGENT),
        ("deimos-executor", "executor", EXECUTOR_AGENT),
        ("mesos", "docker", DOCKER_AGENT),
    ];
    let mut submitted = Vec::new();
    for (mode, kind, agent) in runs {
        let line = format!("hello-{mode}-on-{kind}");
        let id = modes.submit(mode, kind, &format!("echo {line}")).await;
        submitted.push((id, line, agent));
    }
    let mut framework_ids = Vec::new();
    for (id, line, agent) in &submitted {
        let task = modes.service.wait_end(id, "TASK_FINISHED").await;
        assert_eq!(task["agent_id"], *agent, "{line}: {task}");
        assert_eq!(task["hostname"], AGENT_HOST, "{line}: {task}");
        assert_eq!(task["agent_ip"], AGENT_HOST, "{line}: {task}");
        assert_eq!(
            task["agent_port"], modes.endpoint_ports[agent],
            "{line}: {task}"
        );
        let framework_id = task["framework_id"].as_str().unwrap_or_default().to_owned();
        assert!(!framework_id.is_empty(), "{line}: {task}");
        framework_ids.push(framework_id);
        let output = modes.service.output(id, "stdout").await;
        assert!(has_line(&output, line), "{line}: stdout {output:?}");
    }
    framework_ids.dedup();
    assert_eq!(framework_ids.len(), 1, "one framework: {framework_ids:?}");
}

#[tokio::test]
async fn output_is_followed_from_the_agent_while_the_task_runs_until_it_ends() {
    let modes = ModesCluster::start(None).await;
    let id = modes.submit("docker", "docker", WAIT_FOR_GO).await;
    let task = modes.service.wait_state(&id, "TASK_RUNNING").await;
    let framework_id = task["framework_id"].as_str().unwrap().to_owned();

    let mut follower = modes
        .service
        .get(&format!("/api/v1/task/{id}/stdout?follow=true"))
        .await;
    assert_eq!(follower.status(), StatusCode::OK);
    let mut followed = String::new();
    while !has_line(&followed, "first") {
        let chunk = tokio::time::timeout(DEADLINE, follower.chunk())
            .await
            .expect("the first line is followed in time")
            .unwrap()
            .expect("the follow stream stays open while the task runs");
        followed.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The task waits for `go`: it still runs, and its output so far was followed.
    let task = modes.service.task(&id).await;
    assert_eq!(current_state(&task), "TASK_RUNNING", "{task}");

    let sandbox = modes
        .docker_book
        .latest_run(&framework_id, &format!("{id}.0"))
        .expect("the run's sandbox on the Docker agent");
    std::fs::write(sandbox.join("go"), "").unwrap();
    while let Some(chunk) = tokio::time::timeout(DEADLINE, follower.chunk())
        .await
        .expect("the follow stream ends once the task has ended")
        .unwrap()
    {
        followed.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first = followed.find("first\n").unwrap();
    let second = followed.find("second\n");
    assert!(second.is_some_and(|second| second > first), "{followed:?}");
    modes.service.wait_end(&id, "TASK_FINISHED").await;
}

#[tokio::test]
async fn exit_code_three_reaches_the_document_in_docker_mode() {
    let modes = ModesCluster::start(None).await;
    let id = modes.submit("docker", "docker", "exit 3").await;
    let task = modes.service.wait_end(&id, "TASK_FAILED").await;
    assert_eq!(task["exit_code"], 3, "{task}");
    let reason = task["failure_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("exited with code 3"),
        "failure reason {reason:?}: {task}"
    );
}

#[tokio::test]
async fn out_of_memory_reaches_the_document_through_deimos_executor_and_the_unified_containerizer()
{
    let modes = ModesCluster::start(None).await;
    let through_executor = modes
        .submit("deimos-executor", "executor", OUT_OF_MEMORY)
        .await;
    let unified = modes.submit("mesos", "docker", OUT_OF_MEMORY).await;
    for id in [through_executor, unified] {
        let task = modes.service.wait_end(&id, "TASK_FAILED").await;
        let reason = task["failure_reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("out of memory"),
            "failure reason {reason:?}: {task}"
        );
    }
}

#[tokio::test]
async fn a_kill_over_rest_ends_running_tasks_killed_on_the_docker_and_executor_agents_leaving_no_container(
) {
    let modes = ModesCluster::start(None).await;
    let on_docker = modes.submit("docker", "docker", "sleep 300").await;
    let on_executor = modes
        .submit("deimos-executor", "executor", "sleep 300")
        .await;
    let docker_task = modes.service.wait_state(&on_docker, "TASK_RUNNING").await;
    let executor_task = modes.service.wait_state(&on_executor, "TASK_RUNNING").await;
    let docker_container = format!(
        "mesos-{}",
        modes.docker_container_id(&format!("{on_docker}.0"))
    );
    assert_eq!(named(&docker_container).len(), 1, "{docker_task}");
    let framework = executor_task["framework_id"].as_str().unwrap().to_owned();
    let executor_id = format!("{on_executor}.0");
    let executor_containers = || {
        docker::labelled("io.deimos.executor-id", &executor_id)
            .into_iter()
            .filter(|id| docker::labelled("io.deimos.framework-id", &framework).contains(id))
            .collect::<Vec<_>>()
    };
    assert_eq!(executor_containers().len(), 1, "{executor_task}");

    modes.service.kill_task(&on_docker).await;
    modes.service.kill_task(&on_executor).await;
    modes.service.wait_end(&on_docker, "TASK_KILLED").await;
    modes.service.wait_end(&on_executor, "TASK_KILLED").await;
    modes
        .wait_no_container("the Docker agent's killed task", || {
            named(&docker_container)
        })
        .await;
    modes
        .wait_no_container("the executor agent's killed task", executor_containers)
        .await;
}

/// Three ports free on this machine when asked, as single-port ranges (a port range the
/// agent offers must be free for `docker run -p` to bind it).
fn free_port_ranges() -> Vec<(u64, u64)> {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut ports: Vec<u64> = listeners
        .iter()
        .map(|listener| u64::from(listener.local_addr().unwrap().port()))
        .collect();
    ports.sort_unstable();
    ports.into_iter().map(|port| (port, port)).collect()
}

#[tokio::test]
async fn a_task_asking_a_port_gets_one_of_its_constrained_agents_ports_mapped_into_the_container() {
    let offered = free_port_ranges();
    let modes = ModesCluster::start(Some(offered.clone())).await;
    let command = format!("echo port=$PORT0; {WAIT_FOR_GO}");
    let body = with(
        placed(shell_task(&command), "docker", "docker"),
        json!({"ports": [{"container_port": 8080, "protocol": "tcp"}]}),
    );
    let id = modes.submit_task(body).await;
    let task = modes.service.wait_state(&id, "TASK_RUNNING").await;
    assert_eq!(task["agent_id"], DOCKER_AGENT, "{task}");
    let host_port = task["ports"][0]["host_port"].as_u64().unwrap_or_default();
    assert!(
        offered
            .iter()
            .any(|&(low, high)| (low..=high).contains(&host_port)),
        "host port {host_port} is not among the agent's {offered:?}: {task}"
    );

    let mesos_id = format!("{id}.0");
    let container = format!("mesos-{}", modes.docker_container_id(&mesos_id));
    let bindings = docker::docker(&[
        "inspect",
        "--format",
        "{{json .HostConfig.PortBindings}}",
        &container,
    ]);
    let bindings: Value = serde_json::from_str(bindings.trim()).unwrap();
    assert_eq!(
        bindings["8080/tcp"][0]["HostPort"],
        host_port.to_string(),
        "{bindings}"
    );

    let framework_id = task["framework_id"].as_str().unwrap();
    let sandbox = modes
        .docker_book
        .latest_run(framework_id, &mesos_id)
        .unwrap();
    std::fs::write(sandbox.join("go"), "").unwrap();
    modes.service.wait_end(&id, "TASK_FINISHED").await;
    let output = modes.service.output(&id, "stdout").await;
    assert!(
        has_line(&output, &format!("port={host_port}")),
        "stdout {output:?}"
    );
    // The other agents would have fitted the task, but its constraint names the Docker agent.
    assert!(modes.deimos_book.executors().is_empty());
    assert!(modes.executor_book.executors().is_empty());
}
