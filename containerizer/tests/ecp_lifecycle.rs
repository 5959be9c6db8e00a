//! End-to-end: `deimos launch` then `deimos wait`, driven exactly as a Mesos agent drives the
//! binary (see `ecp_support`). What a container sees (image, command, environment, sandbox,
//! ports) and what `wait` reports for each way a container ends.
//!
//! Needs Docker and the local test images: run `scripts/setup` first.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod ecp_support;

use std::fs;
use std::path::PathBuf;

use ecp_support::{
    docker, docker_inspect, free_port_pair, http_get, mem, ports, wait_until, Agent, Setup,
    BUSYBOX, BUSYBOX_EXPOSED,
};
use mesos_proto::containerizer::{Launch, Termination, Wait};
use mesos_proto::ecp::{self, ReadOptions};
use mesos_proto::mesos::{self, task_status::Reason, TaskState};
use std::time::Duration;

/// The `launch` record of a real agent (see tests/fixtures/ecp-launch-record.txt).
const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/ecp-launch-record.bin");

/// Removes a directory tree when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn real_agent_record_launches_and_wait_reports_exit_1_as_status_256() {
    let agent = Agent::new("fixture");
    let launch: Launch = ecp::read_message(&mut &FIXTURE[..], ReadOptions::NON_EMPTY).unwrap();
    let id = launch.container_id.value.clone();
    let sandbox = PathBuf::from(launch.directory.clone().unwrap());
    let top = sandbox.ancestors().nth(8).unwrap().to_path_buf();
    assert!(
        top.to_str()
            .unwrap()
            .starts_with("/tmp/ExternalContainerizerTest_"),
        "{top:?}"
    );
    let _cleanup = RemoveDir(top);
    fs::create_dir_all(&sandbox).unwrap();

    // The record's bytes exactly as the agent wrote them; environment as for any launch.
    agent
        .call(&["launch"])
        .cwd(&sandbox)
        .env("MESOS_DIRECTORY", sandbox.to_str().unwrap())
        .env(
            "MESOS_FRAMEWORK_ID",
            "20140526-015006-16777343-55403-62567-0000",
        )
        .env("MESOS_EXECUTOR_ID", "1")
        .env("MESOS_SLAVE_ID", "20140526-015006-16777343-55403-62567-0")
        .env("MESOS_SLAVE_PID", "slave(1)@127.0.0.1:55403")
        .env("MESOS_CHECKPOINT", "0")
        .input(FIXTURE.to_vec())
        .run()
        .assert_success();

    let wait = Wait {
        container_id: mesos::ContainerId { value: id },
    };
    let termination: Termination = agent
        .call(&["wait"])
        .cwd(&sandbox)
        .input(ecp::encode_record(&wait).unwrap())
        .run()
        .success()
        .record();
    assert_eq!(termination.status, Some(256));
    assert_eq!(termination.killed, Some(false));
    assert!(
        termination.message.as_deref().unwrap_or("").contains("1"),
        "{termination:?}"
    );
    let stdout = fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert_eq!(stdout, "No such file or directory\n");
}

#[test]
fn wait_reports_exit_codes_as_raw_wait_status() {
    let agent = Agent::new("exit-codes");
    let containers: Vec<_> = [0, 1, 3]
        .iter()
        .map(|code| {
            let c = agent.executor(&format!("exit {code}")).build();
            agent.launch_ok(&c);
            (code, c)
        })
        .collect();
    for (code, c) in &containers {
        let termination = agent.wait(c);
        assert_eq!(termination.status, Some(*code << 8), "exit {code}");
        assert_eq!(termination.killed, Some(false));
        assert_eq!(
            termination.message.as_deref(),
            Some(format!("container exited with code {code}").as_str())
        );
        assert_eq!(termination.state, None);
        assert!(termination.reasons.is_empty());
    }
}

#[test]
fn wait_reports_a_signal_as_the_signal_number() {
    let agent = Agent::new("signal");
    let c = agent.executor("sleep 60").build();
    agent.launch_ok(&c);
    let waiting = agent.wait_call(&c).spawn();
    let killed = docker(&["kill", "-s", "KILL", &agent.docker_id(&c.id)]);
    assert!(killed.status.success(), "{killed:?}");
    let termination: Termination = waiting.finish(Duration::from_secs(30)).success().record();
    assert_eq!(termination.status, Some(9));
    assert_eq!(termination.killed, Some(false));
    assert!(
        termination.message.as_deref().unwrap().contains("signal 9"),
        "{termination:?}"
    );
}

#[test]
fn wait_reports_oom_kill_as_killed() {
    let agent = Agent::new("oom");
    let c = agent
        .executor("x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived")
        .resources(vec![mem(8.0)])
        .build();
    agent.launch_ok(&c);
    let termination = agent.wait(&c);
    assert_eq!(termination.killed, Some(true), "{termination:?}");
    assert_eq!(termination.state(), TaskState::TaskFailed);
    assert_eq!(
        termination.reasons,
        vec![Reason::ContainerLimitationMemory as i32]
    );
    assert_eq!(termination.status, Some(9));
    assert!(termination.message.unwrap().contains("out of memory"));
    assert!(!c.sandbox_file("stdout").contains("survived"));
}

#[test]
fn published_port_answers_http_from_the_host() {
    let agent = Agent::new("http");
    let port = free_port_pair();
    let c = agent
        .executor(
            "mkdir -p /www && echo hello-from-httpd > /www/index.html && httpd -f -p 80 -h /www",
        )
        .legacy_container(&format!("docker:///{BUSYBOX_EXPOSED}"), &[])
        .resource(ports(port, port + 999))
        .build();
    agent.launch_ok(&c);
    let mut response = String::new();
    wait_until(
        Duration::from_secs(10),
        "httpd to answer",
        || match http_get(port, "/index.html") {
            Ok(text) => {
                response = text;
                response.contains("hello-from-httpd")
            }
            Err(_) => false,
        },
    );
    assert!(response.starts_with("HTTP/1."), "{response}");
    agent.destroy(&c).assert_success();
}

#[test]
fn d1_port_range_is_not_published_port_by_port() {
    let agent = Agent::new("d1");
    let port = free_port_pair();
    let c = agent
        .executor("env > /mnt/mesos/sandbox/env.txt; exec sleep 60")
        .legacy_container(&format!("docker:///{BUSYBOX_EXPOSED}"), &[])
        .resource(ports(port, port + 999))
        .build();
    agent.launch_ok(&c);
    let bindings = docker_inspect(&agent.docker_id(&c.id), "{{json .HostConfig.PortBindings}}")
        .expect("container exists");
    let bindings: serde_json::Value = serde_json::from_str(&bindings).unwrap();
    let bindings = bindings.as_object().expect("bindings object");
    // 1000 allocated ports, 2 exposed ports: 2 bindings, in order.
    assert_eq!(bindings.len(), 2, "{bindings:?}");
    assert_eq!(bindings["80/tcp"][0]["HostPort"], port.to_string());
    assert_eq!(bindings["443/tcp"][0]["HostPort"], (port + 1).to_string());

    wait_until(Duration::from_secs(10), "the env file", || {
        c.sandbox_file("env.txt").contains("PORTS=")
    });
    let env = c.sandbox_file("env.txt");
    assert!(env.lines().any(|l| l == format!("PORT={port}")), "{env}");
    assert!(env.lines().any(|l| l == format!("PORT0={port}")));
    assert!(env.lines().any(|l| l == format!("PORT999={}", port + 999)));
    let all = env.lines().find_map(|l| l.strip_prefix("PORTS=")).unwrap();
    assert_eq!(all.split(',').count(), 1000);
    agent.destroy(&c).assert_success();
}

#[test]
fn environment_reaches_the_container() {
    let agent = Agent::new("env");
    let c = agent
        .command_task("env")
        .task_name("env-task")
        .env("FOO", "bar baz")
        .env("MESOS_SANDBOX", "/overridden/by/the/task")
        .resource(ports(31000, 31001))
        .build();
    agent.launch_ok(&c);
    let termination = agent.wait(&c);
    assert_eq!(termination.status, Some(0));
    let env = c.sandbox_file("stdout");
    let has = |line: &str| env.lines().any(|l| l == line);
    assert!(has("FOO=bar baz"), "{env}");
    assert!(has("TASK_INFO=env-task"), "{env}");
    assert!(has(&format!("MESOS_TASK_ID={}", c.executor_id)), "{env}");
    assert!(has("PORT=31000") && has("PORT0=31000") && has("PORT1=31001"));
    assert!(has("PORTS=31000,31001"), "{env}");
    // The task's own variables win over ours.
    assert!(has("MESOS_SANDBOX=/overridden/by/the/task"), "{env}");
}

#[test]
fn executor_gets_the_agent_variables_and_the_sandbox_location() {
    let agent = Agent::new("executor-env");
    let c = agent.executor("env").build();
    agent.launch_ok(&c);
    assert_eq!(agent.wait(&c).status, Some(0));
    let env = c.sandbox_file("stdout");
    let has = |line: &str| env.lines().any(|l| l == line);
    assert!(has("MESOS_SANDBOX=/mnt/mesos/sandbox"), "{env}");
    assert!(has("MESOS_DIRECTORY=/mnt/mesos/sandbox"), "{env}");
    assert!(
        has(&format!("MESOS_EXECUTOR_ID={}", c.executor_id)),
        "{env}"
    );
    assert!(has(&format!("MESOS_SLAVE_PID={}", ecp_support::AGENT_PID)));
    assert!(
        has("MESOS_CHECKPOINT=1") && has("LIBPROCESS_PORT=0"),
        "{env}"
    );
    assert!(has("TASK_INFO="), "{env}");
}

#[test]
fn sandbox_is_mounted_and_outputs_are_captured_separately() {
    let agent = Agent::new("sandbox");
    let c = agent
        .executor(
            "echo inside > /mnt/mesos/sandbox/from-container; pwd; echo to-stdout; \
             echo to-stderr >&2",
        )
        .build();
    agent.launch_ok(&c);
    assert_eq!(agent.wait(&c).status, Some(0));
    assert_eq!(c.sandbox_file("from-container"), "inside\n");
    assert_eq!(c.sandbox_file("stdout"), "/mnt/mesos/sandbox\nto-stdout\n");
    assert_eq!(c.sandbox_file("stderr"), "to-stderr\n");
}

#[test]
fn sandbox_path_with_colon_is_mounted() {
    let agent = Agent::new("colon");
    let c = agent
        .executor("echo colon-ok > /mnt/mesos/sandbox/written")
        .run_name("2024-01-01T00:00:00.000")
        .build();
    assert!(c.sandbox.to_str().unwrap().contains(':'));
    agent.launch_ok(&c);
    assert_eq!(agent.wait(&c).status, Some(0));
    assert_eq!(c.sandbox_file("written"), "colon-ok\n");
}

#[test]
fn d15_default_container_image_from_agent_is_used() {
    let agent = Setup::new("d15")
        .unset("containers.image", "default")
        .start();
    let c = agent.executor("exec sleep 60").build();
    agent
        .launch_call(&c)
        .env("MESOS_DEFAULT_CONTAINER_IMAGE", BUSYBOX_EXPOSED)
        .run()
        .assert_success();
    let image = docker_inspect(&agent.docker_id(&c.id), "{{.Config.Image}}");
    assert_eq!(image.as_deref(), Some(BUSYBOX_EXPOSED));
    agent.destroy(&c).assert_success();

    // The configured default wins over the agent's.
    let agent = Agent::new("d15-config-first");
    let c = agent.executor("exec sleep 60").build();
    agent
        .launch_call(&c)
        .env("MESOS_DEFAULT_CONTAINER_IMAGE", BUSYBOX_EXPOSED)
        .run()
        .assert_success();
    let image = docker_inspect(&agent.docker_id(&c.id), "{{.Config.Image}}");
    assert_eq!(image.as_deref(), Some(BUSYBOX));
    agent.destroy(&c).assert_success();
}

#[test]
fn task_image_wins_over_the_configured_default() {
    let agent = Agent::new("task-image");
    let c = agent
        .executor("exec sleep 60")
        .legacy_container(&format!("docker:///{BUSYBOX_EXPOSED}"), &[])
        .build();
    agent.launch_ok(&c);
    let image = docker_inspect(&agent.docker_id(&c.id), "{{.Config.Image}}");
    assert_eq!(image.as_deref(), Some(BUSYBOX_EXPOSED));
    assert_ne!(image.as_deref(), Some(BUSYBOX));
    agent.destroy(&c).assert_success();
}

#[test]
fn d7_shell_false_runs_arguments_without_a_shell() {
    let agent = Agent::new("d7");
    let c = agent
        .executor("")
        .with_command(|command| {
            command.shell = Some(false);
            command.value = Some("/bin/echo".into());
            command.arguments = vec!["echo".into(), "a  $HOME  b".into(), "c".into()];
        })
        .build();
    agent.launch_ok(&c);
    assert_eq!(agent.wait(&c).status, Some(0));
    // No shell: the double spaces and `$HOME` survive as given.
    assert_eq!(c.sandbox_file("stdout"), "a  $HOME  b c\n");
}

/// Removes a Docker container when dropped (whatever the test's outcome).
struct RemoveContainer(String);

impl Drop for RemoveContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

#[test]
fn a_leftover_container_holding_the_name_is_replaced_by_the_launch() {
    let agent = Agent::new("leftover");
    let c = agent.executor("echo fresh").build();
    // What an interrupted launch of this container id left behind: a created container
    // holding its name, whose state directory is gone.
    let name = format!("mesos-{}", c.id);
    let _cleanup = RemoveContainer(name.clone());
    let created = docker(&["create", "--name", &name, BUSYBOX, "true"]);
    assert!(created.status.success(), "{created:?}");
    let leftover = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    agent.launch_ok(&c);
    let termination = agent.wait(&c);
    assert_eq!(termination.status, Some(0));
    assert!(
        docker_inspect(&leftover, "{{.Id}}").is_none(),
        "leftover kept"
    );
    assert_eq!(c.sandbox_file("stdout"), "fresh\n");
}
