//! Agent mode 1: a Mesos 1.0 agent started with `--isolation=external
//! --containerizer_path=<ECP>` (e.g. the real `deimos` binary), following
//! `1.0.0:src/slave/slave.cpp` and the external containerizer
//! (`f6a0e72c5^:src/slave/containerizer/external_containerizer.cpp`);
//! reference §1.7–1.11.
//!
//! For each RunTask: a container id (UUID), the sandbox through the
//! [`AgentBook`], `launch` with the record the real agent writes (a command
//! task: `task_info` and the agent-made command executor; a task with its own
//! executor: the legacy form without `task_info`), the registration timer,
//! `wait` in the background. Executors register over the v1 HTTP executor API
//! (one [`FakeAgent`] per executor; the agent runs with
//! `--http_command_executor`, so its command executor, the stand-in
//! `mesos-executor` of [`command_executor`] installed in `launcher_dir`, does
//! too). On registration `update` with the executor's and the queued tasks'
//! resources, then the tasks go to the executor. Before a terminal update is
//! forwarded, `update` with the remaining resources. A kill goes to the
//! executor (or, before it registered, becomes `TASK_KILLED` "Unregistered
//! executor"). `destroy` on the registration timeout and after the shutdown
//! grace period; when `destroy` exits the `wait` session is SIGKILLed and the
//! termination is the `wait` process's own wait status. When the executor
//! terminates, its non-terminal tasks get the state, reason and message of
//! §1.8. `usage` on demand ([`ContainerizerAgent::usage`]) and, if
//! configured, on an interval. [`ContainerizerAgent::restart`] plays an agent
//! restart: `recover`, `containers`, `wait` again for the latest runs of
//! checkpointing frameworks, `wait` + `destroy` for orphans.

pub mod command_executor;
pub mod ecp;
pub mod launch_record;
mod run;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesos_proto::mesos::ResourceStatistics;

pub use ecp::{Invocation, InvocationLog};
use run::Agent;

use super::sandbox::AgentBook;
use super::{AgentMode, Uplink};
use crate::master::AgentMessage;

/// How the agent is set up (its flags, with Mesos 1.0's defaults).
#[derive(Debug, Clone)]
pub struct ContainerizerAgentConfig {
    /// `--containerizer_path`: the ECP (shell-parsed, as the agent runs it).
    pub containerizer_path: PathBuf,
    /// The ECP's configuration file, given to it as `DEIMOS_CONFIG` in the
    /// agent's environment (`None`: the ECP finds its own).
    pub containerizer_config: Option<PathBuf>,
    /// Further variables of the agent's own environment (every ECP call
    /// inherits the agent's environment).
    pub environment: Vec<(String, String)>,
    /// The agent's `--work_dir` and book of executor runs.
    pub book: AgentBook,
    /// `--launcher_dir` (`MESOS_LIBEXEC_DIRECTORY`), where `mesos-executor`
    /// lives.
    pub launcher_dir: PathBuf,
    /// The agent's own working directory (cwd of `recover`, `containers`
    /// and calls about orphans).
    pub agent_cwd: PathBuf,
    /// `--executor_registration_timeout` (1.0: 1 min).
    pub executor_registration_timeout: Duration,
    /// `--executor_shutdown_grace_period` (1.0: 5 s).
    pub executor_shutdown_grace_period: Duration,
    /// How long recovered executors have to re-subscribe (1.0: fixed 2 s).
    pub executor_reregistration_timeout: Duration,
    /// `--recovery_timeout` (1.0: 15 min).
    pub recovery_timeout: Duration,
    /// `--switch_user` (1.0: true): `Launch.user` is set.
    pub switch_user: bool,
    /// Calls `usage` for every live container this often (`None`, the real
    /// agent's behaviour without QoS modules: only on demand).
    pub usage_interval: Option<Duration>,
}

impl ContainerizerAgentConfig {
    /// A configuration with Mesos 1.0's defaults.
    pub fn new(
        containerizer_path: impl Into<PathBuf>,
        book: AgentBook,
        launcher_dir: impl Into<PathBuf>,
        agent_cwd: impl Into<PathBuf>,
    ) -> Self {
        ContainerizerAgentConfig {
            containerizer_path: containerizer_path.into(),
            containerizer_config: None,
            environment: Vec::new(),
            book,
            launcher_dir: launcher_dir.into(),
            agent_cwd: agent_cwd.into(),
            executor_registration_timeout: Duration::from_secs(60),
            executor_shutdown_grace_period: Duration::from_secs(5),
            executor_reregistration_timeout: Duration::from_secs(2),
            recovery_timeout: Duration::from_secs(15 * 60),
            switch_user: true,
            usage_interval: None,
        }
    }
}

/// The external containerizer agent (see the module documentation).
#[derive(Debug, Clone)]
pub struct ContainerizerAgent {
    agent: Arc<Agent>,
    messages: tokio::sync::mpsc::UnboundedSender<AgentMessage>,
}

impl ContainerizerAgent {
    /// An agent with `config` (call within a tokio runtime: the master's
    /// messages are handled in order by a task of its own). Call
    /// [`ContainerizerAgent::start`] before attaching it: a real agent
    /// recovers before it registers.
    pub fn new(config: ContainerizerAgentConfig) -> Self {
        let agent = Arc::new(Agent::new(config));
        let (messages, mut queue) = tokio::sync::mpsc::unbounded_channel::<AgentMessage>();
        let handler = Arc::clone(&agent);
        tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                // Long work (launch, registration, waits) is spawned inside.
                Arc::clone(&handler).handle(message).await;
            }
        });
        ContainerizerAgent { agent, messages }
    }

    /// The agent's start: `recover`, then `containers`; every container
    /// listed is an orphan on a first start (`wait` + `destroy`). Fails when
    /// either call fails (the real agent exits).
    pub async fn start(&self) -> Result<(), String> {
        self.agent.recover().await
    }

    /// Plays an agent restart: the executors' connections drop, the agent
    /// forgets its running `wait` calls (their processes keep running, as
    /// nobody kills them), then recovers as [`ContainerizerAgent::start`],
    /// resuming the latest runs of checkpointing frameworks that the ECP
    /// still lists (`wait` again, re-subscription within the
    /// re-registration timeout) and destroying the other listed containers.
    pub async fn restart(&self) -> Result<(), String> {
        self.agent.go_down().await;
        self.agent.recover().await
    }

    /// Every ECP call made so far, in start order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.agent.log.all()
    }

    /// The container ids of the runs of `executor_id`, oldest first.
    pub fn containers_of(&self, executor_id: &str) -> Vec<String> {
        self.agent.containers_of(executor_id)
    }

    /// `usage` for a live container, as `/monitor/statistics` asks for it.
    pub async fn usage(&self, container_id: &str) -> Result<ResourceStatistics, String> {
        self.agent.usage(container_id).await
    }

    /// Every status update forwarded to the master: task id, state and when.
    pub fn forwarded(&self) -> Vec<(String, mesos_proto::v1::TaskState, std::time::SystemTime)> {
        self.agent
            .forwarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The statistics the `usage` polling last collected, by container id.
    pub fn polled_usage(&self) -> Vec<(String, ResourceStatistics)> {
        self.agent
            .polled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl AgentMode for ContainerizerAgent {
    fn on_message(&self, message: AgentMessage, uplink: &Uplink) {
        self.agent.set_uplink(uplink);
        // The queue lives as long as the agent.
        let _ = self.messages.send(message);
    }
}

/// Shared by the mode and its runs: statistics collected by polling.
pub(crate) type Polled = Mutex<Vec<(String, ResourceStatistics)>>;
