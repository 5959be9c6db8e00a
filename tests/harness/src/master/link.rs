//! The master ↔ agent channel for agents that really run tasks (the agent
//! modes of [`crate::cluster`]), standing for the libprocess messages a
//! Mesos master and agent exchange (`src/messages/messages.proto`):
//! `RunTaskMessage`, `KillTaskMessage`, `StatusUpdateAcknowledgementMessage`,
//! `FrameworkToExecutorMessage`, `ShutdownExecutorMessage`,
//! `ShutdownFrameworkMessage` and `ShutdownMessage` towards the agent;
//! `StatusUpdateMessage` and `ExitedExecutorMessage` back.
//!
//! An agent attached with [`FakeMaster::attach_agent`](super::FakeMaster::attach_agent)
//! receives [`AgentMessage`]s on its [`AgentLink`] instead of the test
//! playing it: launches, kills (no simulated TASK_KILLED, even with
//! `auto_complete_kills`), acknowledgements, framework messages and
//! shutdowns. Its status updates go through [`AgentLink::send_status`]
//! into the same reliable delivery as [`FakeMaster::send_status`](super::FakeMaster::send_status).
//!
//! The agent's own records (its tasks, their latest states and the updates
//! its status update manager has not had acknowledged) are kept in the
//! master's task table next to the master's view, because the fake models
//! both ends; the link keeps that table alive, so an agent whose master
//! died still holds them and brings them to the next leader
//! ([`FakeMaster::reregister_with`](super::FakeMaster::reregister_with)),
//! as `ReregisterSlaveMessage` carries them.

use std::sync::{Arc, Weak};

use mesos_proto::v1::{FrameworkInfo, KillPolicy, TaskInfo, TaskStatus};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use super::Shared;
use crate::error::HarnessError;

/// A message from the master to an attached agent.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentMessage {
    /// `RunTaskMessage`: run `task` (validated, resources taken; its
    /// `executor`, if any, has `framework_id` set) for `framework`
    /// (`FrameworkInfo` with its id).
    RunTask {
        /// The framework's info as the master holds it.
        framework: Box<FrameworkInfo>,
        /// The task as launched.
        task: Box<TaskInfo>,
    },
    /// `KillTaskMessage`: kill the task; a `kill_policy` from the KILL call
    /// overrides the task's.
    KillTask {
        /// The task's framework.
        framework_id: String,
        /// The task to kill.
        task_id: String,
        /// The KILL call's kill policy.
        kill_policy: Option<KillPolicy>,
    },
    /// `StatusUpdateAcknowledgementMessage`: the scheduler acknowledged the
    /// update with this uuid (the one in delivery; the master's copy of
    /// the status update manager has popped it already).
    Acknowledged {
        /// The task's framework.
        framework_id: String,
        /// The task.
        task_id: String,
        /// The update's uuid.
        uuid: Vec<u8>,
    },
    /// `FrameworkToExecutorMessage` (the scheduler's MESSAGE call).
    FrameworkMessage {
        /// The sending framework.
        framework_id: String,
        /// The executor addressed.
        executor_id: String,
        /// The payload.
        data: Vec<u8>,
    },
    /// `ShutdownExecutorMessage` (the scheduler's SHUTDOWN call).
    ShutdownExecutor {
        /// The executor's framework.
        framework_id: String,
        /// The executor to shut down.
        executor_id: String,
    },
    /// `ShutdownFrameworkMessage`: the framework was removed (TEARDOWN, or
    /// its failover timeout passed); its executors and tasks must go.
    ShutdownFramework {
        /// The removed framework.
        framework_id: String,
    },
    /// `ShutdownMessage`: the agent was marked gone and must stop
    /// (everything it runs is killed; it never re-registers).
    Shutdown {
        /// The master's reason.
        message: String,
    },
}

/// An attached agent's end of the channel to its master: the messages it
/// receives and the [`AgentReporter`] it answers through.
#[derive(Debug)]
pub struct AgentLink {
    reporter: AgentReporter,
    messages: UnboundedReceiver<AgentMessage>,
}

impl AgentLink {
    /// Creates the channel and registers its sending end for `agent_id`
    /// (replacing an older link of the same agent).
    pub(super) fn attach(shared: &Arc<Shared>, agent_id: &str) -> AgentLink {
        let (sender, messages) = unbounded_channel();
        shared
            .lock()
            .links
            .insert(agent_id.to_owned(), LinkSender(sender));
        AgentLink {
            reporter: AgentReporter {
                agent_id: agent_id.to_owned(),
                shared: Arc::clone(shared),
            },
            messages,
        }
    }

    /// The agent's id.
    pub fn agent_id(&self) -> &str {
        &self.reporter.agent_id
    }

    /// The reporting half (cloneable).
    pub fn reporter(&self) -> &AgentReporter {
        &self.reporter
    }

    /// Splits the link into its reporting half and its message stream.
    pub fn into_parts(self) -> (AgentReporter, UnboundedReceiver<AgentMessage>) {
        (self.reporter, self.messages)
    }

    /// The next message from the master; `None` once the master dropped
    /// this link (another link replaced it, or the master's state is gone).
    pub async fn recv(&mut self) -> Option<AgentMessage> {
        self.messages.recv().await
    }

    /// The next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<AgentMessage> {
        self.messages.try_recv().ok()
    }

    /// See [`AgentReporter::send_status`].
    pub fn send_status(&self, task_id: &str, status: TaskStatus) -> Result<Vec<u8>, HarnessError> {
        self.reporter.send_status(task_id, status)
    }

    /// See [`AgentReporter::executor_exited`].
    pub fn executor_exited(&self, executor_id: &str, status: i32) -> Result<(), HarnessError> {
        self.reporter.executor_exited(executor_id, status)
    }
}

/// What an attached agent sends its master (cloneable; bound to the master
/// it was attached to).
#[derive(Debug, Clone)]
pub struct AgentReporter {
    agent_id: String,
    /// Strong on purpose: the agent's records live in this table (see the
    /// module documentation), and an agent outlives a dead master.
    shared: Arc<Shared>,
}

impl AgentReporter {
    /// The agent's id.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// `StatusUpdateMessage`: a status update for `task_id` generated on
    /// this agent, delivered reliably (its `uuid` is kept if set, so an
    /// executor's update keeps the executor's uuid). `agent_id`,
    /// `executor_id` and `timestamp` are filled in when unset. Returns the
    /// uuid.
    pub fn send_status(&self, task_id: &str, status: TaskStatus) -> Result<Vec<u8>, HarnessError> {
        let result = self
            .shared
            .lock()
            .agent_update(task_id, status, Instant::now());
        self.shared.notify();
        result.map_err(|reason| HarnessError::InvalidTaskUpdate {
            task_id: task_id.to_owned(),
            reason,
        })
    }

    /// `ExitedExecutorMessage`: custom executor `executor_id` exited with
    /// wait status `status` (see [`FakeMaster::executor_exited`](super::FakeMaster::executor_exited)).
    pub fn executor_exited(&self, executor_id: &str, status: i32) -> Result<(), HarnessError> {
        let result = self
            .shared
            .lock()
            .executor_exited(&self.agent_id, executor_id, status);
        self.shared.notify();
        result.map_err(|refusal| HarnessError::AgentNotApplicable {
            operation: "report an exited executor on",
            agent_id: self.agent_id.clone(),
            reason: format!("{refusal:?}"),
        })
    }

    /// The agent's records to carry to another master: its tasks not yet
    /// forgotten (latest state, statuses, unacknowledged updates) and the
    /// frameworks they belong to.
    pub(super) fn records(&self) -> super::tasks::AgentRecords {
        self.shared.lock().agent_records(&self.agent_id)
    }

    /// The master state this reporter belongs to, to tell masters apart.
    pub(super) fn master(&self) -> Weak<Shared> {
        Arc::downgrade(&self.shared)
    }
}

/// The master's sending end of a link.
#[derive(Debug)]
pub(crate) struct LinkSender(UnboundedSender<AgentMessage>);

impl LinkSender {
    /// Sends; a link whose agent went away is simply not listened to.
    pub(crate) fn send(&self, message: AgentMessage) {
        let _ = self.0.send(message);
    }
}
