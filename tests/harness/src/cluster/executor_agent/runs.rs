//! One executor run as the agent's `Executor` struct keeps it: state,
//! tasks with their latest states, the updates its status update manager
//! has taken (de-duplicated by uuid), and the status updates the agent
//! generates itself (`Slave::sendExecutorTerminatedStatusUpdate`,
//! `Slave::kill`, `Slave::killTask`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use mesos_proto::v1::{
    network_info, task_status, ContainerId, ContainerStatus, ExecutorInfo, FrameworkInfo,
    NetworkInfo, TaskInfo, TaskState, TaskStatus,
};
use tokio::task::JoinHandle;

use crate::agent::FakeAgent;
use crate::common::uuid::random_uuid;

/// `Executor::State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Launched, not subscribed yet.
    Registering,
    /// Subscribed.
    Running,
    /// SHUTDOWN sent (or destroyed), waiting for the process to end.
    Terminating,
    /// The process ended; the run is completed.
    Terminated,
}

/// A `ContainerTermination` the agent decided before the process ended
/// (`Executor::pendingTermination`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Termination {
    pub(super) state: TaskState,
    pub(super) reason: task_status::Reason,
    pub(super) message: String,
}

/// The agent's record of one executor run.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) framework: FrameworkInfo,
    pub(super) framework_id: String,
    pub(super) executor_id: String,
    pub(super) container_id: String,
    pub(super) info: ExecutorInfo,
    pub(super) agent: Arc<FakeAgent>,
    pub(super) sandbox: PathBuf,
    pub(super) pid: Option<u32>,
    pub(super) phase: Phase,
    /// Tasks given to the executor (queued or delivered), latest state.
    pub(super) tasks: Vec<(TaskInfo, TaskState)>,
    pub(super) pending_termination: Option<Termination>,
    /// Every update forwarded to the master, in order (its uuid is set).
    pub(super) forwarded: Vec<TaskStatus>,
    uuids: HashSet<Vec<u8>>,
    /// Uuids of the updates the agent generated (no executor to tell).
    pub(super) generated: HashSet<Vec<u8>>,
    processed_seen: usize,
    agent_updates_seen: usize,
    /// The restarted agent did not recover it (framework not checkpointing).
    pub(super) forgotten: bool,
    pub(super) forwarder: Option<JoinHandle<()>>,
    /// The wait status once terminated (`-1` when unknown).
    pub(super) exit_status: Option<i32>,
}

impl Run {
    /// A run just launched (no process yet).
    pub(super) fn new(
        framework: FrameworkInfo,
        info: ExecutorInfo,
        container_id: String,
        agent: Arc<FakeAgent>,
        sandbox: PathBuf,
    ) -> Run {
        Run {
            framework_id: framework.id.clone().unwrap_or_default().value,
            framework,
            executor_id: info.executor_id.value.clone(),
            container_id,
            info,
            agent,
            sandbox,
            pid: None,
            phase: Phase::Registering,
            tasks: Vec::new(),
            pending_termination: None,
            forwarded: Vec::new(),
            uuids: HashSet::new(),
            generated: HashSet::new(),
            processed_seen: 0,
            agent_updates_seen: 0,
            forgotten: false,
            forwarder: None,
            exit_status: None,
        }
    }

    /// Whether the run holds `task_id`.
    pub(super) fn has_task(&self, task_id: &str) -> bool {
        self.tasks.iter().any(|(t, _)| t.task_id.value == task_id)
    }

    /// Whether the framework is PARTITION_AWARE (TASK_DROPPED rather than
    /// TASK_LOST for tasks that never ran).
    pub(super) fn partition_aware(&self) -> bool {
        partition_aware(&self.framework)
    }

    /// The updates its fake agent processed (executor UPDATE calls,
    /// re-subscriptions' unacknowledged updates, and the agent's own
    /// updates after a restart) that were not forwarded yet, ready to
    /// forward: duplicates by uuid dropped, executor id and container
    /// status filled in as `Slave::statusUpdate` and `_statusUpdate` do.
    /// The tasks' states move on.
    pub(super) fn take_new_updates(&mut self) -> Vec<TaskStatus> {
        let processed = self.agent.processed_updates();
        let mut out = Vec::new();
        for status in processed.into_iter().skip(self.processed_seen) {
            self.processed_seen += 1;
            let Some(uuid) = status.uuid.clone() else {
                continue;
            };
            if !self.uuids.insert(uuid) {
                continue;
            }
            out.push(self.executor_update(status));
        }
        let generated = self.agent.agent_updates();
        for status in generated.into_iter().skip(self.agent_updates_seen) {
            self.agent_updates_seen += 1;
            out.push(self.generated_update(status));
        }
        for status in &out {
            self.record(status);
        }
        out
    }

    fn executor_update(&self, mut status: TaskStatus) -> TaskStatus {
        status.source = Some(task_status::Source::Executor as i32);
        status.executor_id = Some(self.info.executor_id.clone());
        let container = status
            .container_status
            .get_or_insert_with(ContainerStatus::default);
        // The containerizer's status merged in: its container id and
        // executor pid; the agent's IP when the executor named no network.
        container.container_id = Some(ContainerId {
            value: self.container_id.clone(),
            parent: None,
        });
        container.executor_pid = self.pid.or(container.executor_pid);
        if container.network_infos.is_empty() {
            container.network_infos.push(NetworkInfo {
                ip_addresses: vec![network_info::IpAddress {
                    protocol: None,
                    ip_address: Some(self.agent.endpoint().ip().to_string()),
                }],
                ..Default::default()
            });
        }
        status
    }

    /// An update the agent generates about one of this run's tasks
    /// (SOURCE_AGENT, a fresh uuid, the executor's id).
    pub(super) fn generated_update(&mut self, mut status: TaskStatus) -> TaskStatus {
        let uuid = random_uuid().to_vec();
        self.generated.insert(uuid.clone());
        self.uuids.insert(uuid.clone());
        status.uuid = Some(uuid);
        status.source = Some(task_status::Source::Agent as i32);
        status.executor_id = Some(self.info.executor_id.clone());
        status
    }

    /// Notes a forwarded update: the task's latest state moves on.
    pub(super) fn record(&mut self, status: &TaskStatus) {
        if let Some(entry) = self
            .tasks
            .iter_mut()
            .find(|(t, _)| t.task_id == status.task_id)
        {
            entry.1 = status.state();
        }
        self.forwarded.push(status.clone());
    }

    /// `Slave::executorTerminated`: one update per task not yet terminal
    /// (`sendExecutorTerminatedStatusUpdate`): the pending termination's
    /// state, reason and message, else TASK_FAILED,
    /// REASON_EXECUTOR_TERMINATED, "Executor terminated".
    pub(super) fn terminated_updates(&mut self) -> Vec<TaskStatus> {
        let termination = self
            .pending_termination
            .clone()
            .unwrap_or_else(|| Termination {
                state: TaskState::TaskFailed,
                reason: task_status::Reason::ExecutorTerminated,
                message: "Executor terminated".to_owned(),
            });
        let live: Vec<TaskInfo> = self
            .tasks
            .iter()
            .filter(|(_, state)| !is_terminal(*state))
            .map(|(task, _)| task.clone())
            .collect();
        live.into_iter()
            .map(|task| {
                let status = TaskStatus {
                    task_id: task.task_id,
                    state: termination.state as i32,
                    message: Some(termination.message.clone()),
                    reason: Some(termination.reason as i32),
                    ..Default::default()
                };
                self.generated_update(status)
            })
            .collect()
    }

    /// The forwarded update with this uuid.
    pub(super) fn forwarded_with(&self, uuid: &[u8]) -> Option<&TaskStatus> {
        self.forwarded
            .iter()
            .find(|s| s.uuid.as_deref() == Some(uuid))
    }
}

/// Whether `framework` has the PARTITION_AWARE capability.
pub(super) fn partition_aware(framework: &FrameworkInfo) -> bool {
    use mesos_proto::v1::framework_info::capability::Type;
    framework
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(Type::PartitionAware as i32))
}

/// Mesos' terminal task states.
pub(super) fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentSetup;
    use mesos_proto::v1::{ExecutorId, TaskId};

    async fn run_with_tasks(states: &[(&str, TaskState)]) -> Run {
        let agent = FakeAgent::start(AgentSetup::new("f", "e", "a", "c"))
            .await
            .unwrap();
        let info = ExecutorInfo {
            executor_id: ExecutorId { value: "e".into() },
            ..Default::default()
        };
        let mut run = Run::new(
            FrameworkInfo::default(),
            info,
            "c".into(),
            Arc::new(agent),
            PathBuf::from("/s"),
        );
        for (id, state) in states {
            let task = TaskInfo {
                task_id: TaskId {
                    value: (*id).into(),
                },
                ..Default::default()
            };
            run.tasks.push((task, *state));
        }
        run
    }

    #[tokio::test]
    async fn executor_termination_fails_only_live_tasks_as_the_agent_does() {
        let mut run = run_with_tasks(&[
            ("done", TaskState::TaskFinished),
            ("running", TaskState::TaskRunning),
            ("queued", TaskState::TaskStaging),
        ])
        .await;
        let updates = run.terminated_updates();
        let ids: Vec<&str> = updates.iter().map(|s| s.task_id.value.as_str()).collect();
        assert_eq!(ids, ["running", "queued"]);
        for status in &updates {
            assert_eq!(status.state(), TaskState::TaskFailed);
            assert_eq!(status.source(), task_status::Source::Agent);
            assert_eq!(status.reason(), task_status::Reason::ExecutorTerminated);
            assert_eq!(status.message(), "Executor terminated");
            assert_eq!(status.executor_id.as_ref().unwrap().value, "e");
            assert_eq!(status.uuid.as_ref().unwrap().len(), 16);
        }
    }

    #[tokio::test]
    async fn pending_termination_decides_state_reason_and_message() {
        let mut run = run_with_tasks(&[("t", TaskState::TaskStaging)]).await;
        run.pending_termination = Some(Termination {
            state: TaskState::TaskFailed,
            reason: task_status::Reason::ExecutorRegistrationTimeout,
            message: "Executor did not register within 1mins".into(),
        });
        let updates = run.terminated_updates();
        assert_eq!(
            updates[0].reason(),
            task_status::Reason::ExecutorRegistrationTimeout
        );
        assert_eq!(
            updates[0].message(),
            "Executor did not register within 1mins"
        );
    }
}
