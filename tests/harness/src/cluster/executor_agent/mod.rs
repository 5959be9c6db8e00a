//! Agent mode 2: a Mesos (1.x) agent running custom executors, such as
//! `deimos-executor`, as real processes over the v1 executor HTTP API.
//!
//! The first task for an (framework, executor id) creates a run (a
//! container id, a sandbox in the agent's [`AgentBook`]), starts one
//! [`FakeAgent`] serving `/api/v1/executor` for it (so each executor has an
//! agent endpoint of its own, where a real agent has one for all) and
//! spawns `ExecutorInfo.command` as the Mesos containerizer's posix
//! launcher does (see [`process`]); later tasks go to that executor,
//! queued until it subscribes. Executor updates are forwarded to the
//! master once per uuid (the status update manager's de-duplication: a
//! re-subscription re-sends unacknowledged updates); the master's
//! acknowledgements, kills, framework messages and shutdowns go to the
//! executor. A shut down executor is SIGKILLed (its process group) after
//! the shutdown grace period (`ExecutorInfo.shutdown_grace_period`, else
//! [`ExecutorAgentConfig::executor_shutdown_grace_period`]); one that does
//! not subscribe within the registration timeout is destroyed. When the
//! process ends the master hears `ExitedExecutorMessage` and every task not
//! yet terminal gets the agent's TASK_FAILED (`Slave::executorTerminated`).
//!
//! [`ExecutorAgent::restart`] restarts the agent process: every executor's
//! connection drops, nothing listens for a while (messages from the master
//! are lost, as they are to a dead process; an acknowledgement lost so is
//! re-sent as the status update manager re-sends its pending update), then
//! checkpointing frameworks' executors re-subscribe.
//!
//! Only local URIs (`file://`, absolute paths) are fetched; place other
//! binaries on the machine and name them in the command.

mod process;
mod runs;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesos_proto::v1::executor::{event, Event};
use mesos_proto::v1::{
    task_status, ExecutorInfo, FrameworkInfo, KillPolicy, TaskId, TaskInfo, TaskState, TaskStatus,
};
use tokio::sync::{mpsc, watch};

use super::sandbox::AgentBook;
use super::{AgentMode, Uplink};
use crate::agent::{AgentSetup, FakeAgent};
use crate::error::HarnessError;
use crate::master::AgentMessage;
use runs::{Phase, Run, Termination};

/// Configuration of an [`ExecutorAgent`] (the agent's flags that matter
/// here, with Mesos' defaults).
#[derive(Debug, Clone)]
pub struct ExecutorAgentConfig {
    /// The agent's work directory and book of runs.
    pub book: AgentBook,
    /// `AgentInfo.hostname` given to executors.
    pub hostname: String,
    /// `--executor_shutdown_grace_period` (5 s).
    pub executor_shutdown_grace_period: Duration,
    /// `--executor_registration_timeout` (1 min).
    pub executor_registration_timeout: Duration,
    /// `--executor_reregistration_timeout` (2 s): the executors' window to
    /// re-subscribe after a restart, given to them as
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX`.
    pub executor_reregistration_timeout: Duration,
    /// `--recovery_timeout` (15 min), `MESOS_RECOVERY_TIMEOUT`.
    pub recovery_timeout: Duration,
    /// `--executor_environment_variables`: added to every executor's
    /// environment (below the `MESOS_*` variables), e.g. `DOCKER_HOST`.
    pub executor_environment_variables: Vec<(String, String)>,
    /// Interval of HEARTBEAT events to executors (30 min in Mesos 1.8+).
    pub heartbeat_interval: Duration,
}

impl ExecutorAgentConfig {
    /// Mesos' defaults for an agent keeping its runs in `book`.
    pub fn new(book: AgentBook) -> Self {
        ExecutorAgentConfig {
            book,
            hostname: "localhost".to_owned(),
            executor_shutdown_grace_period: Duration::from_secs(5),
            executor_registration_timeout: Duration::from_secs(60),
            executor_reregistration_timeout: Duration::from_secs(2),
            recovery_timeout: Duration::from_secs(15 * 60),
            executor_environment_variables: Vec::new(),
            heartbeat_interval: Duration::from_secs(30 * 60),
        }
    }
}

/// The custom-executor agent mode (see the module documentation).
#[derive(Debug, Clone)]
pub struct ExecutorAgent {
    inner: Arc<Inner>,
    messages: mpsc::UnboundedSender<(AgentMessage, Uplink)>,
}

#[derive(Debug)]
struct Inner {
    config: ExecutorAgentConfig,
    state: Mutex<State>,
    /// Bumped after every change, for waiters.
    changed: watch::Sender<()>,
    /// Whether the agent process is up.
    up: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct State {
    uplink: Option<Uplink>,
    runs: Vec<Run>,
    terminating_frameworks: HashSet<String>,
    shut_down: bool,
    /// (framework, task, uuid) of acknowledgements lost while down.
    lost_acknowledgements: Vec<(String, String, Vec<u8>)>,
    notes: Vec<String>,
}

impl State {
    fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn live_run(&mut self, framework_id: &str, executor_id: &str) -> Option<&mut Run> {
        self.runs.iter_mut().rev().find(|r| {
            r.framework_id == framework_id
                && r.executor_id == executor_id
                && r.phase != Phase::Terminated
        })
    }

    fn run_of_task(&mut self, framework_id: &str, task_id: &str) -> Option<&mut Run> {
        self.runs
            .iter_mut()
            .rev()
            .find(|r| r.framework_id == framework_id && r.has_task(task_id))
    }
}

impl ExecutorAgent {
    /// An agent with this configuration (call inside a tokio runtime: its
    /// message worker is spawned here).
    pub fn new(config: ExecutorAgentConfig) -> Self {
        let (changed, _) = watch::channel(());
        let (up, _) = watch::channel(true);
        let inner = Arc::new(Inner {
            config,
            state: Mutex::new(State::default()),
            changed,
            up,
        });
        let (messages, receiver) = mpsc::unbounded_channel();
        tokio::spawn(worker(Arc::clone(&inner), receiver));
        ExecutorAgent { inner, messages }
    }

    /// The agent's book of runs.
    pub fn book(&self) -> &AgentBook {
        &self.inner.config.book
    }

    /// The pid of the newest run's executor process of `executor_id`.
    pub fn executor_pid(&self, framework_id: &str, executor_id: &str) -> Option<u32> {
        let state = self.inner.lock();
        newest(&state, framework_id, executor_id).and_then(|r| r.pid)
    }

    /// The executor endpoint's updates not yet acknowledged, of the newest
    /// run of `executor_id`.
    pub fn unacknowledged(&self, framework_id: &str, executor_id: &str) -> Vec<(TaskId, Vec<u8>)> {
        let agent = {
            let state = self.inner.lock();
            newest(&state, framework_id, executor_id).map(|r| Arc::clone(&r.agent))
        };
        agent
            .map(|a| a.pending_acknowledgements())
            .unwrap_or_default()
    }

    /// Every update forwarded to the master, in order, over all runs.
    pub fn forwarded(&self) -> Vec<TaskStatus> {
        let state = self.inner.lock();
        state
            .runs
            .iter()
            .flat_map(|r| r.forwarded.clone())
            .collect()
    }

    /// What the agent would have logged: messages ignored, reports the
    /// master refused, failures.
    pub fn notes(&self) -> Vec<String> {
        self.inner.lock().notes.clone()
    }

    /// Waits until the newest run of `executor_id` has terminated and
    /// returns its wait status (`-1` when unknown, as the agent reports).
    pub async fn wait_terminated(
        &self,
        framework_id: &str,
        executor_id: &str,
        timeout: Duration,
    ) -> Result<i32, HarnessError> {
        let mut changed = self.inner.changed.subscribe();
        let wait = async {
            loop {
                let status = {
                    let state = self.inner.lock();
                    newest(&state, framework_id, executor_id).and_then(|r| r.exit_status)
                };
                if let Some(status) = status {
                    return status;
                }
                let _ = changed.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| HarnessError::Timeout {
                what: format!("executor {executor_id} to terminate"),
                timeout,
            })
    }

    /// Restarts the agent process: every executor connection drops and
    /// nothing listens for `downtime`; then the agent recovers its
    /// checkpointing frameworks' executors (they re-subscribe within the
    /// re-registration timeout) and destroys the others, and its status
    /// update manager re-sends updates whose acknowledgement was lost.
    pub async fn restart(&self, downtime: Duration) -> Result<(), HarnessError> {
        self.inner.up.send_replace(false);
        let agents = self.inner.live_agents();
        for agent in &agents {
            agent.disconnect().await?;
        }
        tokio::time::sleep(downtime).await;
        for agent in &agents {
            agent.restart().await?;
        }
        self.inner.recover();
        self.inner.up.send_replace(true);
        self.inner.notify();
        Ok(())
    }
}

impl AgentMode for ExecutorAgent {
    fn on_message(&self, message: AgentMessage, uplink: &Uplink) {
        // Handled in order by the worker; it only stops with the runtime.
        let _ = self.messages.send((message, uplink.clone()));
    }
}

fn newest<'a>(state: &'a State, framework_id: &str, executor_id: &str) -> Option<&'a Run> {
    state
        .runs
        .iter()
        .rev()
        .find(|r| r.framework_id == framework_id && r.executor_id == executor_id)
}

async fn worker(inner: Arc<Inner>, mut receiver: mpsc::UnboundedReceiver<(AgentMessage, Uplink)>) {
    while let Some((message, uplink)) = receiver.recv().await {
        inner.lock().uplink = Some(uplink);
        if !*inner.up.borrow() {
            inner
                .lock()
                .note(format!("agent down, message lost: {message:?}"));
            if let AgentMessage::Acknowledged {
                framework_id,
                task_id,
                uuid,
            } = message
            {
                let lost = (framework_id, task_id, uuid);
                inner.lock().lost_acknowledgements.push(lost);
            }
            continue;
        }
        inner.handle(message).await;
        inner.notify();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self) {
        self.changed.send_replace(());
    }

    async fn handle(self: &Arc<Self>, message: AgentMessage) {
        match message {
            AgentMessage::RunTask { framework, task } => self.run_task(*framework, *task).await,
            AgentMessage::KillTask {
                framework_id,
                task_id,
                kill_policy,
            } => self.kill_task(&framework_id, &task_id, kill_policy),
            AgentMessage::Acknowledged {
                framework_id,
                task_id,
                uuid,
            } => self.acknowledged(&framework_id, &task_id, uuid),
            AgentMessage::FrameworkMessage {
                framework_id,
                executor_id,
                data,
            } => self.framework_message(&framework_id, &executor_id, data),
            AgentMessage::ShutdownExecutor {
                framework_id,
                executor_id,
            } => self.shutdown_executor(&framework_id, &executor_id),
            AgentMessage::ShutdownFramework { framework_id } => {
                self.lock()
                    .terminating_frameworks
                    .insert(framework_id.clone());
                self.shutdown_where(|r| r.framework_id == framework_id);
            }
            AgentMessage::Shutdown { message } => {
                let mut state = self.lock();
                state.shut_down = true;
                state.note(format!("agent shutting down: {message}"));
                let frameworks: Vec<String> =
                    state.runs.iter().map(|r| r.framework_id.clone()).collect();
                state.terminating_frameworks.extend(frameworks);
                drop(state);
                self.shutdown_where(|_| true);
            }
        }
    }
}

mod handlers;
