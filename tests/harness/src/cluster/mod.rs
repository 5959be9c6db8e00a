//! Agents that run tasks themselves, fed by a [`FakeMaster`] through an
//! [`AgentLink`]: the [`AgentMode`] decides how (real processes and
//! containers, or a simulation), [`RunningAgent`] pumps the master's
//! messages into it and moves the agent to another master when it
//! re-registers (after a failover).

pub mod agent_http;
pub mod cli;
// The task names the module after its type: `cluster::cluster::Cluster`,
// re-exported as `cluster::Cluster`.
#[allow(clippy::module_inception)]
pub mod cluster;
pub mod containerizer_agent;
pub mod docker_agent;
pub mod executor_agent;
pub mod sandbox;
pub mod simulated;

pub use cluster::{AgentView, Cluster, ClusterSetup, Reregistration};

use std::sync::{Arc, RwLock};

use mesos_proto::v1::TaskStatus;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::error::HarnessError;
use crate::master::{AgentLink, AgentMessage, AgentReporter, FakeMaster};

/// How an agent runs what its master sends it (one implementation per agent
/// mode: external containerizer, custom executor, Docker containerizer,
/// simulated).
pub trait AgentMode: Send + Sync + 'static {
    /// One message from the master, in the order the master sent them.
    /// Must return quickly: long work (containers, processes, timers) is
    /// spawned, and reports go through `uplink` (a clone may be kept).
    fn on_message(&self, message: AgentMessage, uplink: &Uplink);
}

/// The agent's way to its current master; re-registration with another
/// master swaps it for every clone.
#[derive(Debug, Clone)]
pub struct Uplink(Arc<RwLock<AgentReporter>>);

impl Uplink {
    fn new(reporter: AgentReporter) -> Self {
        Uplink(Arc::new(RwLock::new(reporter)))
    }

    fn reporter(&self) -> AgentReporter {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, reporter: AgentReporter) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = reporter;
    }

    /// The agent's id.
    pub fn agent_id(&self) -> String {
        self.reporter().agent_id().to_owned()
    }

    /// A status update to the current master (see
    /// [`AgentReporter::send_status`]).
    pub fn send_status(&self, task_id: &str, status: TaskStatus) -> Result<Vec<u8>, HarnessError> {
        self.reporter().send_status(task_id, status)
    }

    /// A custom executor exited (see [`AgentReporter::executor_exited`]).
    pub fn executor_exited(&self, executor_id: &str, status: i32) -> Result<(), HarnessError> {
        self.reporter().executor_exited(executor_id, status)
    }
}

/// An agent attached to a master, its mode fed with the master's messages.
pub struct RunningAgent {
    uplink: Uplink,
    mode: Arc<dyn AgentMode>,
    pump: JoinHandle<()>,
}

impl std::fmt::Debug for RunningAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningAgent")
            .field("uplink", &self.uplink)
            .finish_non_exhaustive()
    }
}

impl RunningAgent {
    /// Starts feeding `mode` with the messages of `link`.
    pub fn start(link: AgentLink, mode: Arc<dyn AgentMode>) -> RunningAgent {
        let (reporter, messages) = link.into_parts();
        let uplink = Uplink::new(reporter);
        let pump = spawn_pump(messages, Arc::clone(&mode), uplink.clone());
        RunningAgent { uplink, mode, pump }
    }

    /// The agent's uplink (what its mode reports through).
    pub fn uplink(&self) -> &Uplink {
        &self.uplink
    }

    /// The agent re-registers with `master` (e.g. the new leader), bringing
    /// its tasks and unacknowledged updates
    /// ([`FakeMaster::reregister_with`]); later messages come from there.
    pub fn reregister_with(&mut self, master: &FakeMaster) -> Result<(), HarnessError> {
        let link = master.reregister_with(&self.uplink.reporter())?;
        let (reporter, messages) = link.into_parts();
        self.pump.abort();
        self.uplink.replace(reporter);
        self.pump = spawn_pump(messages, Arc::clone(&self.mode), self.uplink.clone());
        Ok(())
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

fn spawn_pump(
    mut messages: UnboundedReceiver<AgentMessage>,
    mode: Arc<dyn AgentMode>,
    uplink: Uplink,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            mode.on_message(message, &uplink);
        }
    })
}
