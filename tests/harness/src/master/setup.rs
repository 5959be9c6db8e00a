//! Configuration of a [`FakeMaster`](super::FakeMaster), the agents it
//! offers, and the views of its state handed to tests.

use std::collections::BTreeMap;
use std::time::Duration;

use mesos_proto::v1::{Attribute, KillPolicy, TaskInfo, TaskState, TaskStatus};

use super::resources::Resources;
use super::zk::ZooKeeperElection;
use crate::tls::ServerIdentity;

/// Configuration of a [`FakeMaster`](super::FakeMaster). Defaults are Mesos'.
#[derive(Debug, Clone)]
pub struct MasterSetup {
    /// `MasterInfo.id` and the prefix of framework and offer ids; a random
    /// UUID when `None`.
    pub master_id: Option<String>,
    /// `MasterInfo.hostname` (also the host of redirects made to this
    /// master by others: they use the leader's socket address instead).
    pub hostname: String,
    /// `MasterInfo.version`.
    pub version: String,
    /// Interval of HEARTBEAT events (`DEFAULT_HEARTBEAT_INTERVAL`, 15 s).
    pub heartbeat_interval: Duration,
    /// How often the allocator runs (`--allocation_interval`, 1 s): offers
    /// for resources that became free or whose filter expired go out then.
    pub allocation_interval: Duration,
    /// First retry of an unacknowledged status update (agent's
    /// `STATUS_UPDATE_RETRY_INTERVAL_MIN`, 10 s); doubled on every retry.
    pub status_update_retry_min: Duration,
    /// Cap of the retry interval (`STATUS_UPDATE_RETRY_INTERVAL_MAX`, 10 min).
    pub status_update_retry_max: Duration,
    /// When true, a KILL of a live task is answered by its (simulated)
    /// executor at once with TASK_KILLED (SOURCE_EXECUTOR, reliable). When
    /// false (default), the kill is only recorded ([`KillRequest`]) and the
    /// test decides what the task does.
    pub auto_complete_kills: bool,
    /// `--agent_reregister_timeout` (10 min): after
    /// [`FakeMaster::fail_over`](super::FakeMaster::fail_over), agents that have not re-registered
    /// within it are marked unreachable.
    pub agent_reregister_timeout: Duration,
    /// `--offer_timeout`: an offer outstanding this long is rescinded
    /// (RESCIND) and its resources offered again. `None` (Mesos' default):
    /// offers never time out.
    pub offer_timeout: Option<Duration>,
    /// `--authenticate_http_frameworks` with the Basic authenticator and
    /// these credentials (principal → secret): `Some` makes every request to
    /// the scheduler endpoint need `Authorization: Basic` with one of them
    /// (401 with `WWW-Authenticate: Basic realm="mesos-master-scheduler"`
    /// otherwise), and the authenticated principal must match
    /// `FrameworkInfo.principal`. `None` (default): no authentication.
    pub http_framework_credentials: Option<BTreeMap<String, String>>,
    /// `--zk`: contend for leadership in ZooKeeper (an ephemeral sequential
    /// `json.info_` node with this master's `MasterInfo` JSON under the
    /// path). The master then leads, redirects or answers 503 as the
    /// election says (do not also call `set_leader`), and a master that
    /// comes to lead after start-up recovers as after
    /// [`FakeMaster::fail_over`](super::FakeMaster::fail_over): its agents
    /// stand for the replicated registry's and must re-register. `None`
    /// (default): the master leads alone.
    pub zookeeper: Option<ZooKeeperElection>,
    /// Serve HTTPS with this identity (a certificate made by a
    /// [`TestCa`](crate::tls::TestCa)) instead of plain HTTP. `None`
    /// (default): plain HTTP.
    pub tls: Option<ServerIdentity>,
    /// Keep everything received and sent for test assertions (default
    /// true). When false, as for a master holding a large cluster: the
    /// master keeps no calls, rejections, events, kills, acknowledgements,
    /// framework messages or shutdowns (`FakeMaster::calls`, `rejections`,
    /// `events`, `kills`, `acknowledgements`, `framework_messages` and
    /// `shutdowns` return nothing; `wait_for_call` never finds one); a
    /// task keeps only its latest status (`TaskView::statuses` and the
    /// `statuses` of `/state` hold at most one); and removed tasks (terminal
    /// and acknowledged, of a removed framework, or of a gone agent) are
    /// remembered only up to [`MasterSetup::max_completed_tasks_per_framework`]
    /// per framework, the oldest forgotten first, as Mesos bounds its
    /// completed tasks (`FakeMaster::tasks` and `task` no longer show the
    /// forgotten ones).
    pub record_history: bool,
    /// `--max_completed_tasks_per_framework` (1000): how many removed tasks
    /// of each framework are remembered when `record_history` is false
    /// (with it, all are).
    pub max_completed_tasks_per_framework: usize,
}

impl Default for MasterSetup {
    fn default() -> Self {
        MasterSetup {
            master_id: None,
            hostname: "127.0.0.1".to_owned(),
            version: "1.12.0".to_owned(),
            heartbeat_interval: Duration::from_secs(15),
            allocation_interval: Duration::from_secs(1),
            status_update_retry_min: Duration::from_secs(10),
            status_update_retry_max: Duration::from_secs(600),
            auto_complete_kills: false,
            agent_reregister_timeout: Duration::from_secs(600),
            offer_timeout: None,
            http_framework_credentials: None,
            zookeeper: None,
            tls: None,
            record_history: true,
            max_completed_tasks_per_framework: 1000,
        }
    }
}

/// A scripted agent whose unused resources the master offers.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// `AgentID.value`.
    pub agent_id: String,
    /// `Offer.hostname`.
    pub hostname: String,
    /// The agent's HTTP port, announced in `Offer.url` (default 5051).
    pub port: u16,
    /// `cpus` (SCALAR).
    pub cpus: f64,
    /// `mem` in MB (SCALAR).
    pub mem: f64,
    /// `disk` in MB (SCALAR); not offered when 0.
    pub disk: f64,
    /// `ports` (RANGES, inclusive); not offered when empty.
    pub ports: Vec<(u64, u64)>,
    /// `Offer.attributes`.
    pub attributes: Vec<Attribute>,
}

impl AgentSpec {
    /// An agent with 4 cpus, 4096 MB mem, 10240 MB disk and ports
    /// 31000-32000 (the agent's default port range).
    pub fn new(agent_id: impl Into<String>, hostname: impl Into<String>) -> Self {
        AgentSpec {
            agent_id: agent_id.into(),
            hostname: hostname.into(),
            port: 5051,
            cpus: 4.0,
            mem: 4096.0,
            disk: 10240.0,
            ports: vec![(31000, 32000)],
            attributes: Vec::new(),
        }
    }

    /// The agent's total resources.
    pub(crate) fn resources(&self) -> Resources {
        let mut total = Resources::scalar("cpus", self.cpus);
        total.add(&Resources::scalar("mem", self.mem));
        total.add(&Resources::scalar("disk", self.disk));
        total.add(&Resources::ranges("ports", &self.ports));
        total
    }
}

/// The master's view of one task, for test assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// `TaskID.value`.
    pub task_id: String,
    /// The framework that launched it.
    pub framework_id: String,
    /// The agent it runs on.
    pub agent_id: String,
    /// Latest state (TASK_STAGING after the launch).
    pub state: TaskState,
    /// The TaskInfo as launched (executor `framework_id` filled in).
    pub info: TaskInfo,
    /// Every status the agent/executor generated for it, in order.
    pub statuses: Vec<TaskStatus>,
    /// Updates generated and not yet acknowledged (the first one is the one
    /// being delivered and retried).
    pub unacknowledged: Vec<TaskStatus>,
    /// True once the master forgot the task (terminal update acknowledged,
    /// or framework removed): reconciliation no longer knows it.
    pub removed: bool,
    /// True while the master holds the task as unreachable: its agent was
    /// marked unreachable (or gone, for a framework that is not
    /// PARTITION_AWARE) and has not re-registered.
    pub unreachable: bool,
}

/// A KILL the master forwarded to the task's agent.
#[derive(Debug, Clone, PartialEq)]
pub struct KillRequest {
    /// The task to kill.
    pub task_id: String,
    /// The task's agent.
    pub agent_id: String,
    /// The KILL call's kill policy (overrides the task's).
    pub kill_policy: Option<KillPolicy>,
}

/// An ACKNOWLEDGE the master received and forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// `task_id` of the call.
    pub task_id: String,
    /// `agent_id` of the call.
    pub agent_id: String,
    /// `uuid` of the call.
    pub uuid: Vec<u8>,
    /// Whether it acknowledged the update being delivered for that task
    /// (others are logged and ignored by the agent, as in Mesos).
    pub matched: bool,
}

/// Which master leads, as this master believes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Leadership {
    /// This master leads and serves the API.
    Leading,
    /// Another master leads: requests are redirected there, by the
    /// `hostname` of its MasterInfo and its port.
    Other {
        /// `MasterInfo.hostname` of the leader.
        hostname: String,
        /// The leader's socket address (its port is `MasterInfo.port`).
        address: std::net::SocketAddr,
    },
    /// No leader elected: 503.
    None,
}
