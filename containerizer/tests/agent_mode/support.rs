//! One agent of the external containerizer mode attached to a fake master, with its own
//! work directory, state root, launcher directory and deimos configuration; dropping it
//! removes the Docker containers its deimos labelled with its work directory.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mesos_harness::cluster::containerizer_agent::launch_record::{launch_record, RunDescription};
use mesos_harness::cluster::containerizer_agent::{ContainerizerAgent, ContainerizerAgentConfig};
use mesos_harness::cluster::sandbox::AgentBook;
use mesos_harness::cluster::RunningAgent;
use mesos_harness::master::FakeMaster;
use mesos_proto::v1::{
    CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, TaskInfo, TaskState,
    TaskStatus,
};

use crate::scheduler_client::*;

pub const DEIMOS: &str = env!("CARGO_BIN_EXE_deimos");
pub const BUSYBOX: &str = "deimos-test/busybox:latest";

pub struct Cluster {
    pub master: FakeMaster,
    pub agent: ContainerizerAgent,
    /// Keeps the agent fed with the master's messages.
    _running: RunningAgent,
    pub book: AgentBook,
    /// deimos' configuration file (given to every ECP call as `DEIMOS_CONFIG`).
    pub config_file: PathBuf,
    /// The agent's `--launcher_dir`.
    pub libexec: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    pub async fn start(edit: impl FnOnce(&mut ContainerizerAgentConfig)) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("deimos-agent-mode-")
            .tempdir()
            .unwrap();
        let base = tmp.path().to_path_buf();
        let (work, libexec, cwd, state) = (
            base.join("work"),
            base.join("libexec"),
            base.join("agent-cwd"),
            base.join("state"),
        );
        for dir in [&work, &libexec, &cwd] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::os::unix::fs::symlink(
            std::env::current_exe().unwrap(),
            libexec.join("mesos-executor"),
        )
        .unwrap();
        let config_file = base.join("deimos.cfg");
        std::fs::write(
            &config_file,
            format!(
                "[state]\nroot: {}\n[containers.image]\ndefault: {BUSYBOX}\n[containers]\n\
                 stop_grace_period: 1s\n[log]\nconsole: off\nsyslog: off\n",
                state.display()
            ),
        )
        .unwrap();
        let book = AgentBook::new(&work, AGENT);
        let mut config = ContainerizerAgentConfig::new(DEIMOS, book.clone(), &libexec, &cwd);
        config.containerizer_config = Some(config_file.clone());
        edit(&mut config);
        let master = start_with_agent().await;
        let agent = ContainerizerAgent::new(config);
        agent.start().await.unwrap();
        let link = master.attach_agent(AGENT).unwrap();
        let running = RunningAgent::start(link, Arc::new(agent.clone()));
        Cluster {
            master,
            agent,
            _running: running,
            book,
            config_file,
            libexec,
            _tmp: tmp,
        }
    }

    pub fn work_dir(&self) -> PathBuf {
        self.book.work_dir()
    }

    /// Docker containers deimos made for this agent (running or not).
    pub fn containers(&self) -> Vec<String> {
        let owner = format!("label=io.deimos.owner={}", self.work_dir().display());
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", &owner])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// Subscribes `info` and launches `tasks` on the first offer.
    pub async fn launch(
        &self,
        info: FrameworkInfo,
        tasks: Vec<TaskInfo>,
    ) -> (Subscription, String) {
        let (mut subscription, framework_id) = subscribe_new(&self.master, info).await;
        let offers = subscription.offers().await;
        let call = launch_call(&framework_id, &[&offers[0].id], tasks);
        let answer = post_call(&self.master, &subscription.stream_id, &call).await;
        assert_eq!(
            answer.status,
            hyper::StatusCode::ACCEPTED,
            "{}",
            answer.body
        );
        (subscription, framework_id)
    }

    /// The next update, acknowledged.
    pub async fn next_update(
        &self,
        subscription: &mut Subscription,
        framework_id: &str,
    ) -> TaskStatus {
        let status = subscription.update().await;
        if let Some(uuid) = status.uuid.clone() {
            let ack = acknowledge_call(framework_id, &status.task_id.value, AGENT, uuid);
            post_call(&self.master, &subscription.stream_id, &ack).await;
        }
        status
    }

    /// Updates until one in `state` (acknowledging each).
    pub async fn update_in(
        &self,
        subscription: &mut Subscription,
        framework_id: &str,
        state: TaskState,
    ) -> TaskStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {state:?} in time"
            );
            let status = self.next_update(subscription, framework_id).await;
            if status.state() == state {
                return status;
            }
            assert!(
                !is_terminal(status.state()),
                "unexpected terminal update {status:?} while waiting for {state:?}"
            );
        }
    }

    /// Runs `deimos launch` as this agent would, but outside its records: a container with
    /// its own executor (`sleep 600`, no observer) that only the ECP knows about. Returns the
    /// container id once `launch` succeeded.
    pub fn launch_behind_the_agents_back(&self, container_id: &str) -> String {
        let framework = FrameworkInfo {
            id: Some(FrameworkId {
                value: "fw-unknown".to_owned(),
            }),
            ..framework_info()
        };
        let mut task = task_info("t-unknown", AGENT, 0.5, 32.0);
        task.command = None;
        let executor = ExecutorInfo {
            executor_id: ExecutorId {
                value: "exec-unknown".to_owned(),
            },
            command: Some(CommandInfo {
                value: Some("sleep 600".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sandbox = self._tmp.path().join("unknown-sandbox");
        std::fs::create_dir_all(&sandbox).unwrap();
        let record = launch_record(&RunDescription {
            container_id,
            framework: &framework,
            task: &task,
            executor: &executor,
            command_executor: false,
            directory: &sandbox,
            agent_id: AGENT,
            agent_pid: "slave(1)@127.0.0.1:5051",
            switch_user: false,
        });
        let mut child = Command::new(DEIMOS)
            .arg("launch")
            .current_dir(&sandbox)
            .env("DEIMOS_CONFIG", &self.config_file)
            .env("MESOS_WORK_DIRECTORY", self.work_dir())
            .env("MESOS_LIBEXEC_DIRECTORY", &self.libexec)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let input = mesos_proto::ecp::encode_record(&record).unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "deimos launch failed: {status}");
        container_id.to_owned()
    }

    pub fn sandbox_of(&self, framework_id: &str, executor_id: &str) -> PathBuf {
        self.book.latest_run(framework_id, executor_id).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in self.containers() {
            let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        }
    }
}

pub fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskLost
    )
}

/// A command task (1 cpu, 64 MB) running `command` in the default image.
pub fn command_task(id: &str, command: &str) -> TaskInfo {
    let mut task = task_info(id, AGENT, 1.0, 64.0);
    task.command = Some(mesos_proto::v1::CommandInfo {
        value: Some(command.to_owned()),
        ..Default::default()
    });
    task
}

/// Polls `condition` for up to `timeout`.
pub async fn eventually(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
