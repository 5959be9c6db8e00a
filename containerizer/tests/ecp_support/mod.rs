//! Harness of the `deimos` end-to-end tests: runs the binary exactly as a Mesos agent does.
//!
//! - one process per call, `argv[1]` = the subcommand, a process group of its own (the agent
//!   uses a session; a group is what the tests need to kill a call's tree);
//! - exactly one length-prefixed record written on stdin, and stdin KEPT OPEN until the process
//!   has exited (the agent never closes it, so a binary reading to EOF would hang here);
//! - exactly one record read from stdout for `usage`, `wait` and `containers`;
//! - the agent's environment: the test process's environment without any `MESOS_*` or
//!   `LIBPROCESS_*` variable, plus `MESOS_WORK_DIRECTORY` and `MESOS_LIBEXEC_DIRECTORY` for every
//!   call and the launch variables (`MESOS_DIRECTORY`, `MESOS_FRAMEWORK_ID`...) for `launch`;
//! - working directory: the sandbox for calls about a container, the agent's own directory for
//!   `recover`, `containers` and orphans.
//!
//! Every [`Agent`] has its own temporary directory holding its work directory (unique, so its
//! containers carry their own `io.deimos.owner` label), its state root, its libexec directory
//! and its configuration file (passed with `DEIMOS_CONFIG`). Dropping it removes every Docker
//! container labelled with its owner and stops the watchers it left, even when a test fails.
//!
//! These tests need a running Docker Engine and the images `deimos-test/busybox:latest` and
//! `deimos-test/busybox-exposed:latest`; run `scripts/setup` first.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mesos_proto::containerizer::{Containers, Destroy, Launch, Termination, Update, Usage, Wait};
use mesos_proto::ecp::{self, ReadOptions};
use mesos_proto::mesos::{
    self, command_info, environment, value, CommandInfo, Environment, ExecutorInfo, Resource,
    ResourceStatistics, TaskInfo,
};
use prost::Message;

/// The plain test image.
pub const BUSYBOX: &str = "deimos-test/busybox:latest";
/// The test image declaring `EXPOSE 80 443`.
pub const BUSYBOX_EXPOSED: &str = "deimos-test/busybox-exposed:latest";
/// The binary under test.
pub const DEIMOS: &str = env!("CARGO_BIN_EXE_deimos");
/// Longest any single call may take before the test fails.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The agent id the tests' agent pretends to have.
pub const AGENT_ID: &str = "20240101-000000-16777343-5050-1-S0";
/// The framework id of every test task.
pub const FRAMEWORK_ID: &str = "20240101-000000-16777343-5050-1-0000";
/// The agent's libprocess pid.
pub const AGENT_PID: &str = "slave(1)@127.0.0.1:5051";
/// Where the sandbox is mounted inside the container (the default configuration).
pub const SANDBOX_MOUNT: &str = "/mnt/mesos/sandbox";
/// The owner label deimos puts on its containers.
pub const OWNER_LABEL: &str = "io.deimos.owner";

static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// A fresh container id shaped like the agent's (a UUID), unique across tests and runs.
pub fn new_container_id() -> String {
    let serial = SERIAL.fetch_add(1, Ordering::SeqCst) as u64;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let pid = u64::from(std::process::id());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (nanos >> 16) as u32,
        pid & 0xffff,
        serial & 0xfff,
        (nanos >> 4) & 0xfff,
        (nanos.rotate_left(13) ^ (pid << 20) ^ serial) & 0xffff_ffff_ffff
    )
}

// ------------------------------------------------------------------------------------------
// Agent

/// The configuration of one test agent: `(section, key) → value`, rendered as INI.
#[derive(Clone, Debug)]
pub struct Setup {
    test: String,
    settings: BTreeMap<(String, String), String>,
    shared_state_root: Option<PathBuf>,
}

impl Setup {
    /// The default test configuration: busybox as default image, 1 s stop grace period, no
    /// console or syslog logging (stderr only carries the one-line error).
    pub fn new(test: &str) -> Setup {
        let mut setup = Setup {
            test: test.to_owned(),
            settings: BTreeMap::new(),
            shared_state_root: None,
        };
        setup = setup
            .set("containers.image", "default", BUSYBOX)
            .set("containers", "stop_grace_period", "1s")
            .set("log", "console", "off")
            .set("log", "syslog", "off");
        setup
    }

    /// Sets a configuration key.
    pub fn set(mut self, section: &str, key: &str, value: &str) -> Setup {
        self.settings
            .insert((section.to_owned(), key.to_owned()), value.to_owned());
        self
    }

    /// Removes a configuration key (it takes its built-in default).
    pub fn unset(mut self, section: &str, key: &str) -> Setup {
        self.settings.remove(&(section.to_owned(), key.to_owned()));
        self
    }

    /// Uses the state root of another agent (two agents on one host).
    pub fn sharing_state_of(mut self, other: &Agent) -> Setup {
        self.shared_state_root = Some(other.state_root.clone());
        self
    }

    fn render(&self, state_root: &Path) -> String {
        let mut sections: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        sections
            .entry("state")
            .or_default()
            .push(("root", state_root.to_str().expect("utf-8 temp path")));
        for ((section, key), value) in &self.settings {
            if section == "state" && key == "root" {
                sections.get_mut("state").expect("state section").clear();
            }
            sections.entry(section).or_default().push((key, value));
        }
        let mut text = String::new();
        for (section, keys) in sections {
            text.push_str(&format!("[{section}]\n"));
            for (key, value) in keys {
                text.push_str(&format!("{key}: {value}\n"));
            }
        }
        text
    }

    /// Creates the agent's directories and configuration file.
    pub fn start(self) -> Agent {
        require_docker();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("deimos-ecp-{}-", self.test))
            .tempdir()
            .expect("create the test's temporary directory");
        let base = tmp.path().to_path_buf();
        let state_root = self
            .shared_state_root
            .clone()
            .unwrap_or_else(|| base.join("state"));
        let work_dir = base.join("work");
        let libexec_dir = base.join("libexec");
        let agent_cwd = base.join("agent-cwd");
        for dir in [&work_dir, &libexec_dir, &agent_cwd] {
            fs::create_dir_all(dir).expect("create agent directories");
        }
        let config_path = base.join("deimos.cfg");
        fs::write(&config_path, self.render(&state_root)).expect("write the configuration");
        Agent {
            tmp,
            test: self.test,
            state_root,
            work_dir,
            libexec_dir,
            agent_cwd,
            config_path,
        }
    }
}

/// One simulated Mesos agent: its own work directory, state root, libexec directory and
/// configuration. Dropping it removes its containers.
pub struct Agent {
    tmp: tempfile::TempDir,
    /// The test's name (for messages).
    pub test: String,
    /// The state root (`[state] root`).
    pub state_root: PathBuf,
    /// `MESOS_WORK_DIRECTORY`: identifies this agent; the owner label of its containers.
    pub work_dir: PathBuf,
    /// `MESOS_LIBEXEC_DIRECTORY` (where `mesos-executor` would live).
    pub libexec_dir: PathBuf,
    /// The agent's own working directory (recover, containers, orphans).
    pub agent_cwd: PathBuf,
    /// The configuration file (`DEIMOS_CONFIG`).
    pub config_path: PathBuf,
}

impl Agent {
    /// An agent with the default test configuration.
    pub fn new(test: &str) -> Agent {
        Setup::new(test).start()
    }

    /// A scratch directory of this test (removed with the agent).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        fs::create_dir_all(&dir).expect("create a scratch directory");
        dir
    }

    /// The sandbox the agent makes for a run:
    /// `<work>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<run>`.
    pub fn sandbox_path(&self, executor_id: &str, run: &str) -> PathBuf {
        self.work_dir
            .join("slaves")
            .join(AGENT_ID)
            .join("frameworks")
            .join(FRAMEWORK_ID)
            .join("executors")
            .join(executor_id)
            .join("runs")
            .join(run)
    }

    /// A call of the binary with the agent's base environment, in the agent's directory.
    pub fn call(&self, args: &[&str]) -> Call {
        let mut env: Vec<(String, String)> = vec![
            ("DEIMOS_CONFIG".into(), self.config_path.display().to_string()),
            (
                "MESOS_WORK_DIRECTORY".into(),
                self.work_dir.display().to_string(),
            ),
            (
                "MESOS_LIBEXEC_DIRECTORY".into(),
                self.libexec_dir.display().to_string(),
            ),
        ];
        env.sort();
        Call {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            cwd: self.agent_cwd.clone(),
            env,
            remove_env: Vec::new(),
            input: None,
            close_stdin: false,
        }
    }

    /// The `launch` call for a container, as the agent makes it (sandbox cwd, launch env).
    pub fn launch_call(&self, container: &TestContainer) -> Call {
        let sandbox = container.sandbox.display().to_string();
        self.call(&["launch"])
            .cwd(&container.sandbox)
            .env("MESOS_FRAMEWORK_ID", FRAMEWORK_ID)
            .env("MESOS_EXECUTOR_ID", &container.executor_id)
            .env("MESOS_DIRECTORY", &sandbox)
            .env("MESOS_SLAVE_ID", AGENT_ID)
            .env("MESOS_SLAVE_PID", AGENT_PID)
            .env("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051")
            .env("MESOS_CHECKPOINT", "1")
            .env("MESOS_HTTP_COMMAND_EXECUTOR", "0")
            .env("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs")
            .env("MESOS_RECOVERY_TIMEOUT", "15mins")
            .env("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs")
            .env("LIBPROCESS_PORT", "0")
            .input(ecp::encode_record(&container.launch).expect("encode Launch"))
    }

    /// Runs `launch` and returns how it ended.
    pub fn launch(&self, container: &TestContainer) -> Finished {
        self.launch_call(container).run()
    }

    /// Runs `launch` and fails the test unless it exits 0.
    pub fn launch_ok(&self, container: &TestContainer) -> Finished {
        let finished = self.launch(container);
        finished.assert_success();
        finished
    }

    /// A call about a launched container: sandbox cwd, one record on stdin.
    pub fn container_call<M: Message>(&self, sub: &str, c: &TestContainer, message: &M) -> Call {
        self.call(&[sub])
            .cwd(&c.sandbox)
            .input(ecp::encode_record(message).expect("encode record"))
    }

    /// The `wait` call of a container (cwd = its sandbox).
    pub fn wait_call(&self, c: &TestContainer) -> Call {
        self.container_call("wait", c, &Wait { container_id: c.mesos_id() })
    }

    /// `wait`, which must succeed; its `Termination`.
    pub fn wait(&self, c: &TestContainer) -> Termination {
        self.wait_call(c).run().success().record()
    }

    /// The `destroy` call of a container (cwd = its sandbox).
    pub fn destroy_call(&self, c: &TestContainer) -> Call {
        self.container_call("destroy", c, &Destroy { container_id: c.mesos_id() })
    }

    /// `destroy`, returning how it ended.
    pub fn destroy(&self, c: &TestContainer) -> Finished {
        self.destroy_call(c).run()
    }

    /// The `usage` call of a container.
    pub fn usage_call(&self, c: &TestContainer) -> Call {
        self.container_call("usage", c, &Usage { container_id: c.mesos_id() })
    }

    /// `usage`, which must succeed; its `ResourceStatistics`.
    pub fn usage(&self, c: &TestContainer) -> ResourceStatistics {
        self.usage_call(c).run().success().record()
    }

    /// `update` with new resources.
    pub fn update(&self, c: &TestContainer, resources: Vec<Resource>) -> Finished {
        let update = Update {
            container_id: c.mesos_id(),
            resources,
        };
        self.container_call("update", c, &update).run()
    }

    /// `containers` (agent cwd, no input), which must succeed; the listed ids, sorted.
    pub fn containers(&self) -> Vec<String> {
        let reply: Containers = self.call(&["containers"]).run().success().record();
        let mut ids: Vec<String> = reply.containers.into_iter().map(|c| c.value).collect();
        ids.sort();
        ids
    }

    /// `recover` (agent cwd, no input).
    pub fn recover(&self) -> Finished {
        self.call(&["recover"]).run()
    }

    /// `<state>/mesos/<id>`.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.state_root.join("mesos").join(id)
    }

    /// The pid of the container's current watcher (`<state>/mesos/<id>/pid`).
    pub fn watcher_pid(&self, id: &str) -> i32 {
        let path = self.state_dir(id).join("pid");
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read the watcher pid {}: {e}", path.display()));
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("watcher pid file {} holds {text:?}: {e}", path.display()))
    }

    /// The Docker id recorded for a container.
    pub fn docker_id(&self, id: &str) -> String {
        let path = self.state_dir(id).join("cid");
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// The exit record (JSON) of a container, if written.
    pub fn exit_record(&self, id: &str) -> Option<serde_json::Value> {
        let text = fs::read_to_string(self.state_dir(id).join("exit")).ok()?;
        Some(serde_json::from_str(&text).expect("exit record is JSON"))
    }

    /// Docker containers (running or not) labelled as this agent's.
    pub fn docker_containers(&self) -> Vec<String> {
        docker_ids_with_label(OWNER_LABEL, &self.work_dir.display().to_string())
    }

    /// Asserts that nothing is left of a launch that failed: no state directory, nothing
    /// half-made under `creating/`, no container.
    pub fn assert_nothing_left(&self, id: &str) {
        assert!(
            !self.state_dir(id).exists(),
            "a state directory was left at {}",
            self.state_dir(id).display()
        );
        let creating = self.state_root.join("creating");
        if let Ok(entries) = fs::read_dir(&creating) {
            let left: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            assert!(left.is_empty(), "left under creating/: {left:?}");
        }
        assert_eq!(self.docker_containers(), Vec::<String>::new(), "containers left");
    }

    /// Kills a container's watcher with `signal` and waits until it is gone.
    pub fn kill_watcher(&self, id: &str, signal: nix::sys::signal::Signal) -> i32 {
        let pid = self.watcher_pid(id);
        assert!(is_deimos_watcher(pid, id), "pid {pid} is not the watcher of {id}");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal watcher");
        wait_until(Duration::from_secs(10), "the watcher to die", || {
            !process_alive(pid)
        });
        pid
    }

    /// Writes an executable `mesos-executor` into the libexec directory.
    pub fn install_executor(&self, script: &str) -> PathBuf {
        let path = self.libexec_dir.join("mesos-executor");
        fs::write(&path, script).expect("write mesos-executor");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    // Launch builders.

    /// A launch of a custom executor (no `task_info`) running `command` through the shell,
    /// with 0.5 cpus and 64 MB.
    pub fn executor(&self, command: &str) -> LaunchBuilder<'_> {
        LaunchBuilder::new(self, false, command)
    }

    /// A launch of a command task (`task_info` set, agent-made command executor) running
    /// `command` through the shell, with 0.5 cpus and 64 MB.
    pub fn command_task(&self, command: &str) -> LaunchBuilder<'_> {
        LaunchBuilder::new(self, true, command)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let ids = self.docker_containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let output = docker(&args);
            if !output.status.success() {
                eprintln!(
                    "[{}] cleanup: docker rm -f failed: {}",
                    self.test,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        // Watchers notice the removal and exit; stop any that does not (a test failed while
        // one was blocked), so that no process outlives the test.
        let Ok(entries) = fs::read_dir(self.state_root.join("mesos")) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = fs::read_to_string(entry.path().join("pid"))
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while process_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if process_alive(pid) && is_deimos_watcher(pid, &id) {
                eprintln!("[{}] cleanup: killing watcher {pid} of {id}", self.test);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Launch messages

/// One container of a test: its id, executor id, sandbox and the `Launch` the agent sends.
#[derive(Clone, Debug)]
pub struct TestContainer {
    /// The Mesos container id.
    pub id: String,
    /// The executor id (the task id for command tasks).
    pub executor_id: String,
    /// The sandbox on the host (created like the agent does).
    pub sandbox: PathBuf,
    /// The record written to `launch`.
    pub launch: Launch,
}

impl TestContainer {
    /// The id as a protobuf message.
    pub fn mesos_id(&self) -> mesos::ContainerId {
        mesos::ContainerId {
            value: self.id.clone(),
        }
    }

    /// A file of the sandbox, as text (empty when missing).
    pub fn sandbox_file(&self, name: &str) -> String {
        fs::read_to_string(self.sandbox.join(name)).unwrap_or_default()
    }
}

/// Builds the `Launch` of a [`TestContainer`].
pub struct LaunchBuilder<'a> {
    agent: &'a Agent,
    command_task: bool,
    command: CommandInfo,
    resources: Vec<Resource>,
    task_name: String,
    run_name: Option<String>,
    id: String,
}

impl<'a> LaunchBuilder<'a> {
    fn new(agent: &'a Agent, command_task: bool, command: &str) -> LaunchBuilder<'a> {
        LaunchBuilder {
            agent,
            command_task,
            command: CommandInfo {
                value: Some(command.to_owned()),
                ..CommandInfo::default()
            },
            resources: vec![cpus(0.5), mem(64.0)],
            task_name: format!("{}-task", agent.test),
            run_name: None,
            id: new_container_id(),
        }
    }

    /// Replaces the resources.
    pub fn resources(mut self, resources: Vec<Resource>) -> Self {
        self.resources = resources;
        self
    }

    /// Adds a resource.
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resources.push(resource);
        self
    }

    /// The legacy (Mesos ≤ 0.26) `CommandInfo.container` image URL and options.
    pub fn legacy_container(mut self, image: &str, options: &[&str]) -> Self {
        self.command.container = Some(command_info::ContainerInfo {
            image: image.to_owned(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        });
        self
    }

    /// Adds a variable to `CommandInfo.environment`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.command
            .environment
            .get_or_insert_with(Environment::default)
            .variables
            .push(environment::Variable {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        self
    }

    /// Adds a URI to fetch.
    pub fn uri(mut self, uri: &str) -> Self {
        self.command.uris.push(command_info::Uri {
            value: uri.to_owned(),
            ..command_info::Uri::default()
        });
        self
    }

    /// Edits the command directly.
    pub fn with_command(mut self, edit: impl FnOnce(&mut CommandInfo)) -> Self {
        edit(&mut self.command);
        self
    }

    /// The task name (command tasks; exported as `TASK_INFO`).
    pub fn task_name(mut self, name: &str) -> Self {
        self.task_name = name.to_owned();
        self
    }

    /// The last component of the sandbox path (default: the container id).
    pub fn run_name(mut self, name: &str) -> Self {
        self.run_name = Some(name.to_owned());
        self
    }

    /// Creates the sandbox and returns the container.
    pub fn build(self) -> TestContainer {
        let id = self.id;
        let executor_id = if self.command_task {
            format!("task-{id}")
        } else {
            format!("executor-{id}")
        };
        let run = self.run_name.unwrap_or_else(|| id.clone());
        let sandbox = self.agent.sandbox_path(&executor_id, &run);
        fs::create_dir_all(&sandbox).expect("create the sandbox");
        let framework_id = Some(mesos::FrameworkId {
            value: FRAMEWORK_ID.into(),
        });
        let (task_info, executor_info) = if self.command_task {
            // As the 1.0 agent builds it: the task itself, and the command executor it made.
            let libexec = self.agent.libexec_dir.display().to_string();
            let task = TaskInfo {
                name: self.task_name.clone(),
                task_id: mesos::TaskId {
                    value: executor_id.clone(),
                },
                slave_id: mesos::SlaveId {
                    value: AGENT_ID.into(),
                },
                resources: self.resources.clone(),
                command: Some(self.command.clone()),
                ..TaskInfo::default()
            };
            let mut executor_resources = self.resources.clone();
            executor_resources.extend([cpus(0.1), mem(32.0)]);
            let executor = ExecutorInfo {
                executor_id: mesos::ExecutorId {
                    value: executor_id.clone(),
                },
                framework_id,
                command: CommandInfo {
                    shell: Some(false),
                    value: Some(format!("{libexec}/mesos-executor")),
                    arguments: vec![
                        "mesos-executor".into(),
                        format!("--launcher_dir={libexec}"),
                    ],
                    uris: self.command.uris.clone(),
                    environment: self.command.environment.clone(),
                    ..CommandInfo::default()
                },
                resources: executor_resources,
                name: Some(format!("Command Executor (Task: {executor_id})")),
                source: Some(executor_id.clone()),
                ..ExecutorInfo::default()
            };
            (Some(task), executor)
        } else {
            let executor = ExecutorInfo {
                executor_id: mesos::ExecutorId {
                    value: executor_id.clone(),
                },
                framework_id,
                command: self.command,
                resources: self.resources,
                name: Some(format!("{} executor", self.agent.test)),
                source: Some(self.agent.test.clone()),
                ..ExecutorInfo::default()
            };
            (None, executor)
        };
        let launch = Launch {
            container_id: mesos::ContainerId { value: id.clone() },
            task_info,
            executor_info: Some(executor_info),
            directory: Some(sandbox.display().to_string()),
            user: None,
            slave_id: Some(mesos::SlaveId {
                value: AGENT_ID.into(),
            }),
            slave_pid: Some(AGENT_PID.into()),
            checkpoint: Some(true),
        };
        TestContainer {
            id,
            executor_id,
            sandbox,
            launch,
        }
    }
}

/// A scalar `cpus` resource.
pub fn cpus(amount: f64) -> Resource {
    scalar("cpus", amount)
}

/// A scalar `mem` resource (MB).
pub fn mem(megabytes: f64) -> Resource {
    scalar("mem", megabytes)
}

/// A scalar resource.
pub fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        role: Some("*".into()),
        ..Resource::default()
    }
}

/// A `ports` resource with one inclusive range.
pub fn ports(begin: u16, end: u16) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range {
                begin: u64::from(begin),
                end: u64::from(end),
            }],
        }),
        role: Some("*".into()),
        ..Resource::default()
    }
}

// ------------------------------------------------------------------------------------------
// Calls

/// One invocation of the binary, before it is started.
#[derive(Clone, Debug)]
pub struct Call {
    args: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    remove_env: Vec<String>,
    input: Option<Vec<u8>>,
    close_stdin: bool,
}

impl Call {
    /// The working directory.
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = dir.to_path_buf();
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, name: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.remove_env.push(name.to_owned());
        self
    }

    /// The bytes written on stdin (exactly these; stdin then stays open).
    pub fn input(mut self, bytes: Vec<u8>) -> Self {
        self.input = Some(bytes);
        self
    }

    /// Closes stdin after writing the input (the agent never does; for truncated records).
    pub fn close_stdin(mut self) -> Self {
        self.close_stdin = true;
        self
    }

    /// Starts the process.
    pub fn spawn(&self) -> Running {
        let mut command = Command::new(DEIMOS);
        command
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (name, _) in std::env::vars() {
            if name.starts_with("MESOS_") || name.starts_with("LIBPROCESS_") {
                command.env_remove(name);
            }
        }
        command.env_remove("DEIMOS_CONFIG");
        for name in &self.remove_env {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(n, v)| (n, v)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DEIMOS}: {e}"));
        let mut stdin = child.stdin.take();
        if let (Some(pipe), Some(bytes)) = (stdin.as_mut(), &self.input) {
            // The process may exit before reading (bad arguments): EPIPE is not our failure.
            let _ = pipe.write_all(bytes).and_then(|()| pipe.flush());
        }
        if self.close_stdin {
            stdin = None;
        }
        let stdout = child.stdout.take().expect("stdout pipe");
        let stderr = child.stderr.take().expect("stderr pipe");
        Running {
            child,
            stdin,
            stdout: Some(std::thread::spawn(move || read_all(stdout))),
            stderr: Some(std::thread::spawn(move || read_all(stderr))),
            args: self.args.clone(),
            started: Instant::now(),
            status: None,
        }
    }

    /// Starts the process and waits for it (at most [`CALL_TIMEOUT`]).
    pub fn run(&self) -> Finished {
        self.spawn().finish(CALL_TIMEOUT)
    }
}

fn read_all(mut pipe: impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    bytes
}

/// A started call. Its stdin stays open until it has exited.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    args: Vec<String>,
    started: Instant,
    status: Option<ExitStatus>,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// True once the process has exited (it is reaped then).
    pub fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_some()
    }

    /// Waits for the process to exit, at most `timeout`; a test failure otherwise (the process
    /// group is killed first).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        while !self.has_exited() {
            if Instant::now() > deadline {
                self.kill_group();
                let finished = self.collect();
                panic!(
                    "`deimos {}` did not finish within {timeout:?}; stderr: {}",
                    finished.args.join(" "),
                    finished.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.collect()
    }

    /// SIGKILLs the process group (as the agent kills a `wait` tree) and reaps it.
    pub fn kill(mut self) -> Finished {
        self.kill_group();
        self.collect()
    }

    fn kill_group(&mut self) {
        let group = nix::unistd::Pid::from_raw(-self.pid());
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        if self.status.is_none() {
            self.status = Some(self.child.wait().expect("reap"));
        }
    }

    fn collect(mut self) -> Finished {
        let status = match self.status {
            Some(status) => status,
            None => self.child.wait().expect("reap"),
        };
        drop(self.stdin.take());
        let join = |handle: Option<JoinHandle<Vec<u8>>>| {
            handle
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default()
        };
        Finished {
            status,
            stdout: join(self.stdout.take()),
            stderr: String::from_utf8_lossy(&join(self.stderr.take())).into_owned(),
            args: self.args.clone(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.status.is_none() {
            // A test failed while this call ran: do not leave it behind.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-self.pid()),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.child.wait();
        }
    }
}

/// A call that ended.
#[derive(Debug)]
pub struct Finished {
    /// Its raw status.
    pub status: ExitStatus,
    /// Everything it wrote on stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote on stderr.
    pub stderr: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// How long it ran (from spawn to reaping).
    pub elapsed: Duration,
}

impl Finished {
    /// The exit code; `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Fails the test unless the call exited 0.
    pub fn assert_success(&self) {
        assert_eq!(
            self.code(),
            Some(0),
            "`deimos {}` failed ({}); stderr: {}",
            self.args.join(" "),
            self.status,
            self.stderr
        );
    }

    /// [`Finished::assert_success`], returning self.
    pub fn success(self) -> Finished {
        self.assert_success();
        self
    }

    /// Fails the test unless the call exited with `code` and wrote exactly one non-empty line
    /// on stderr; returns that line.
    pub fn error_line(&self, code: i32) -> &str {
        assert_eq!(
            self.code(),
            Some(code),
            "`deimos {}`: expected exit {code}, got {}; stderr: {}",
            self.args.join(" "),
            self.status,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "`deimos {}`: expected one line on stderr, got {:?}",
            self.args.join(" "),
            self.stderr
        );
        assert!(!lines[0].trim().is_empty(), "empty error line");
        lines[0]
    }

    /// The one record on stdout (an empty record is a default message).
    pub fn record<M: Message + Default>(&self) -> M {
        let mut reader = &self.stdout[..];
        ecp::read_message(&mut reader, ReadOptions::ALLOW_EMPTY).unwrap_or_else(|e| {
            panic!(
                "`deimos {}` wrote no valid record ({e}); stdout {:?}, stderr: {}",
                self.args.join(" "),
                self.stdout,
                self.stderr
            )
        })
    }

    /// The signal that killed the call, if any.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

// ------------------------------------------------------------------------------------------
// Docker, processes, waiting

/// Fails the test (with a hint) unless Docker answers and the test images exist.
pub fn require_docker() {
    for image in [BUSYBOX, BUSYBOX_EXPOSED] {
        let output = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", image])
            .output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "Docker image {image} is missing or Docker is unreachable ({}); run scripts/setup",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => panic!("cannot run the docker CLI ({error}); run scripts/setup"),
        }
    }
}

/// Runs the docker CLI.
pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// `docker inspect -f <format> <id>`, trimmed; `None` when the container does not exist.
pub fn docker_inspect(id: &str, format: &str) -> Option<String> {
    let output = docker(&["inspect", "--type", "container", "-f", format, id]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Ids of the containers (any state) carrying `label=value`.
pub fn docker_ids_with_label(label: &str, value: &str) -> Vec<String> {
    let filter = format!("label={label}={value}");
    let output = docker(&["ps", "-aq", "--no-trunc", "--filter", &filter]);
    assert!(
        output.status.success(),
        "docker ps failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// True while `pid` runs (a zombie counts as dead: it holds no locks any more).
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// True when `pid` is `deimos watch <id>`.
pub fn is_deimos_watcher(pid: i32, id: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            args.len() >= 3 && args[1] == b"watch" && args[2] == id.as_bytes()
        })
        .unwrap_or(false)
}

/// Polls `condition` every 20 ms; fails the test after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until Docker reports the container as no longer running.
pub fn wait_for_docker_exit(docker_id: &str) {
    wait_until(Duration::from_secs(30), "the container to exit", || {
        docker_inspect(docker_id, "{{.State.Running}}").as_deref() != Some("true")
    });
}

/// A host port `p` such that `p` and `p + 1` are free now, and `p + 999` is a valid port.
/// Starts from a per-process pseudo-random point below the ephemeral range, so parallel tests
/// rarely probe the same ports.
pub fn free_port_pair() -> u16 {
    let seed = (std::process::id() as usize * 7919 + SERIAL.fetch_add(1, Ordering::SeqCst) * 104_729)
        % 8000;
    for offset in 0..8000usize {
        let port = 20_000 + ((seed + offset * 2) % 8000) as u16;
        let first = TcpListener::bind(("0.0.0.0", port));
        let second = TcpListener::bind(("0.0.0.0", port + 1));
        if first.is_ok() && second.is_ok() {
            return port;
        }
    }
    panic!("no free pair of ports between 20000 and 28000");
}

/// GET `path` from `127.0.0.1:port`; the whole response (status line, headers, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

// ------------------------------------------------------------------------------------------
// A tiny HTTP server for URI fetching

/// What the server answers for a path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// 200 with this body, after a delay.
    Slow(Duration, Vec<u8>),
}

/// An HTTP/1.0 server on 127.0.0.1 answering GETs from a fixed table (unknown paths: 404).
pub struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts the server.
    pub fn start(routes: Vec<(&str, Reply)>) -> HttpServer {
        let routes: Arc<BTreeMap<String, Reply>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_owned(), r))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the HTTP server");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let routes = routes.clone();
                        std::thread::spawn(move || serve(stream, &routes));
                    }
                }
            })
        };
        HttpServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, routes: &BTreeMap<String, Reply>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let target = text.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    let (status, body) = match routes.get(path).cloned() {
        Some(Reply::Body(body)) => (200, body),
        Some(Reply::Status(status)) => (status, Vec::new()),
        Some(Reply::Slow(delay, body)) => {
            std::thread::sleep(delay);
            (200, body)
        }
        None => (404, Vec::new()),
    };
    let head = format!(
        "HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// A gzip-compressed tar archive of regular files.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, name, *data)
            .expect("append to tar");
    }
    builder
        .into_inner()
        .and_then(|encoder| encoder.finish())
        .expect("finish tar.gz")
}
