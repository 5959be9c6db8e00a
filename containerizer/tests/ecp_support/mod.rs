//! Harness of the `deimos` end-to-end tests: runs the binary exactly as a Mesos agent does.
//!
//! - one process per call, `argv[1]` = the subcommand, in a session of its own (the agent's
//!   child calls setsid(2); here util-linux `setsid` does it, which execs the binary in place
//!   since the child is not a group leader), killable as the agent kills it ([`Running::kill`]);
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

// Each test file uses part of the harness.
#![allow(dead_code, unreachable_pub, unused_imports)]

mod call;
mod host;
mod launch;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mesos_proto::containerizer::{Containers, Destroy, Termination, Update, Usage, Wait};
use mesos_proto::ecp;
use mesos_proto::mesos::{Resource, ResourceStatistics};
use prost::Message;

pub use call::{Call, Finished, Running};
pub use host::{
    docker, docker_ids_with_label, docker_inspect, free_port_pair, http_get, is_deimos_watcher,
    process_alive, require_docker, tar_gz, wait_for_docker_exit, wait_until, HttpServer, Reply,
};
pub use launch::{cpus, mem, ports, scalar, LaunchBuilder, TestContainer};

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

    /// Uses this directory as the state root (e.g. a file system the test controls).
    pub fn state_root_at(mut self, root: &Path) -> Setup {
        self.shared_state_root = Some(root.to_path_buf());
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
            (
                "DEIMOS_CONFIG".into(),
                self.config_path.display().to_string(),
            ),
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
        Call::new(args, &self.agent_cwd, env)
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

    /// Runs `launch` and fails the test unless it exits 0 and wrote nothing on stdout (nobody
    /// reads it: more than a pipe buffer would block).
    pub fn launch_ok(&self, container: &TestContainer) -> Finished {
        let finished = self.launch(container);
        finished.assert_success();
        finished.assert_no_output();
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
        self.container_call(
            "wait",
            c,
            &Wait {
                container_id: c.mesos_id(),
            },
        )
    }

    /// `wait`, which must succeed; its `Termination`.
    pub fn wait(&self, c: &TestContainer) -> Termination {
        self.wait_call(c).run().success().record()
    }

    /// The `destroy` call of a container (cwd = its sandbox).
    pub fn destroy_call(&self, c: &TestContainer) -> Call {
        self.container_call(
            "destroy",
            c,
            &Destroy {
                container_id: c.mesos_id(),
            },
        )
    }

    /// `destroy`, returning how it ended (nothing may be written on stdout).
    pub fn destroy(&self, c: &TestContainer) -> Finished {
        let finished = self.destroy_call(c).run();
        finished.assert_no_output();
        finished
    }

    /// The `usage` call of a container.
    pub fn usage_call(&self, c: &TestContainer) -> Call {
        self.container_call(
            "usage",
            c,
            &Usage {
                container_id: c.mesos_id(),
            },
        )
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
        let finished = self.container_call("update", c, &update).run();
        finished.assert_no_output();
        finished
    }

    /// `containers` (agent cwd, no input), which must succeed; the listed ids, sorted.
    pub fn containers(&self) -> Vec<String> {
        let reply: Containers = self.call(&["containers"]).run().success().record();
        let mut ids: Vec<String> = reply.containers.into_iter().map(|c| c.value).collect();
        ids.sort();
        ids
    }

    /// `recover` (agent cwd, no input; nothing may be written on stdout).
    pub fn recover(&self) -> Finished {
        let finished = self.call(&["recover"]).run();
        finished.assert_no_output();
        finished
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
        assert_eq!(
            self.docker_containers(),
            Vec::<String>::new(),
            "containers left"
        );
    }

    /// Kills a container's watcher with `signal` and waits until it is gone.
    pub fn kill_watcher(&self, id: &str, signal: nix::sys::signal::Signal) -> i32 {
        let pid = self.watcher_pid(id);
        assert!(
            is_deimos_watcher(pid, id),
            "pid {pid} is not the watcher of {id}"
        );
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
