//! RECONCILE (§3.6): the master's answers about the tasks a framework
//! names (or all it knows), from its task table.

use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::{framework_info, task_status, AgentId, TaskState, TaskStatus};

use super::state::MasterState;
use super::tasks::{unix_seconds, update_event, Task};

impl MasterState {
    /// `Master::reconcile` (§3.6): implicit for an empty list (the tasks
    /// the master knows, not the unreachable ones), else one answer per
    /// listed task following the six cases of `Master::reconcile`.
    pub(crate) fn reconcile(&mut self, framework_id: &str, reconcile: &call::Reconcile) {
        let partition_aware = self
            .framework(framework_id)
            .is_some_and(|f| f.has_capability(framework_info::capability::Type::PartitionAware));
        let mut answers = Vec::new();
        if reconcile.tasks.is_empty() {
            for task in self
                .tasks
                .values()
                .filter(|t| t.is_known() && t.framework_id == framework_id)
            {
                answers.push(latest_state_status(task));
            }
        }
        for wanted in &reconcile.tasks {
            let known = self
                .tasks
                .with_id(&wanted.task_id.value)
                .find(|(_, t)| t.is_known() && t.framework_id == framework_id);
            if let Some((_, task)) = known {
                answers.push(latest_state_status(task));
                continue;
            }
            let agent = wanted.agent_id.as_ref().map(|id| id.value.as_str());
            // Case (2): the task may be on an agent that has not re-registered
            // since the failover (any of them when no agent is named): no answer.
            let maybe_recovered = match agent {
                Some(id) => self.recovered_agents.contains(id),
                None => !self.recovered_agents.is_empty(),
            };
            if maybe_recovered {
                continue;
            }
            answers.push(self.unknown_task_answer(wanted, agent, partition_aware));
        }
        for status in answers {
            self.send_event(framework_id, update_event(status));
        }
    }

    /// Cases (3) to (6) of `Master::reconcile` (TASK_LOST instead of the
    /// partition-aware states for other frameworks).
    fn unknown_task_answer(
        &self,
        wanted: &call::reconcile::Task,
        agent: Option<&str>,
        partition_aware: bool,
    ) -> TaskStatus {
        let registered = agent.is_some_and(|id| self.agent_registered(id));
        let unreachable_since = agent.and_then(|id| self.unreachable_since(id));
        let gone = agent.is_some_and(|id| self.gone_agents.contains(id));
        let (state, message, unreachable_time) = if registered {
            let message = "Reconciliation: Task is unknown to the agent";
            (TaskState::TaskGone, message, None)
        } else if let Some(time) = unreachable_since {
            let message = "Reconciliation: Task is unreachable";
            (TaskState::TaskUnreachable, message, Some(time))
        } else if gone {
            let message = "Reconciliation: Task is gone";
            (TaskState::TaskGoneByOperator, message, None)
        } else {
            (
                TaskState::TaskUnknown,
                "Reconciliation: Task is unknown",
                None,
            )
        };
        let state = if partition_aware {
            state
        } else {
            TaskState::TaskLost
        };
        TaskStatus {
            task_id: wanted.task_id.clone(),
            state: state as i32,
            message: Some(message.to_owned()),
            source: Some(task_status::Source::Master as i32),
            reason: Some(task_status::Reason::Reconciliation as i32),
            agent_id: wanted.agent_id.clone(),
            timestamp: Some(unix_seconds()),
            unreachable_time,
            ..Default::default()
        }
    }
}

/// The reconciliation answer for a known task: the state of the update
/// last forwarded (else the task's state), from the master, no uuid.
fn latest_state_status(task: &Task) -> TaskStatus {
    let latest = task.statuses.last();
    TaskStatus {
        task_id: task.info.task_id.clone(),
        state: task.forwarded_state.unwrap_or(task.state) as i32,
        message: Some("Reconciliation: Latest task state".to_owned()),
        source: Some(task_status::Source::Master as i32),
        reason: Some(task_status::Reason::Reconciliation as i32),
        agent_id: Some(AgentId {
            value: task.agent_id.clone(),
        }),
        executor_id: task.info.executor.as_ref().map(|e| e.executor_id.clone()),
        timestamp: Some(unix_seconds()),
        healthy: latest.and_then(|s| s.healthy),
        labels: latest.and_then(|s| s.labels.clone()),
        container_status: latest.and_then(|s| s.container_status.clone()),
        ..Default::default()
    }
}
