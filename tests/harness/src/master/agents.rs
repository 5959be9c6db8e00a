//! Agents leaving and coming back, as `Master::markUnreachable` /
//! `_markUnreachable`, `Master::markGone`, `Master::__removeSlave` and
//! `Master::__reregisterSlave` (`src/master/master.cpp`) do it: the tasks'
//! master-generated updates (no uuid), RESCIND of the agent's offers,
//! FAILURE events, and the tasks returning on re-registration.

use mesos_client::is_terminal;
use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::{framework_info, task_status, AgentId, TaskState, TaskStatus, TimeInfo};
use tokio::time::Instant;

use super::link::AgentMessage;
use super::setup::AgentSpec;
use super::state::MasterState;
use super::task_table::TaskKey;
use super::tasks::{unix_seconds, update_event, Task};

/// The message `SlaveObserver` gives when it marks an agent unreachable.
const UNREACHABLE_MESSAGE: &str = "health check timed out";
/// `Master::markGone`'s message.
const GONE_MESSAGE: &str = "Agent has been marked gone";
/// `__reregisterSlave`'s message for an agent that was unreachable (the
/// doubled "re-re" is the master's).
const REREGISTERED_MESSAGE: &str = "Unreachable agent re-reregistered";

/// Why an agent operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentRefusal {
    /// The master never had this agent.
    Unknown,
    /// The agent is in a state the operation does not apply to.
    WrongState(&'static str),
    /// No running custom executor with that id on the agent.
    NoSuchExecutor,
}

/// How a removed agent's tasks end for one framework (`__removeSlave`).
struct Removal<'a> {
    message: &'a str,
    /// `Some` when the agent became unreachable, `None` when gone.
    unreachable_time: Option<TimeInfo>,
}

impl MasterState {
    /// Whether the agent is registered (its offers, acknowledgements and
    /// status updates flow).
    pub(crate) fn agent_registered(&self, agent_id: &str) -> bool {
        self.agents.contains(agent_id)
    }

    /// When the agent was marked unreachable, if it is.
    pub(crate) fn unreachable_since(&self, agent_id: &str) -> Option<TimeInfo> {
        self.unreachable_agents.get(agent_id).map(|(_, time)| *time)
    }

    /// What state the agent is in, for refusals.
    fn agent_state_name(&self, agent_id: &str) -> Option<&'static str> {
        if self.agent_registered(agent_id) {
            Some("registered")
        } else if self.unreachable_since(agent_id).is_some() {
            Some("unreachable")
        } else if self.gone_agents.contains(agent_id) {
            Some("gone")
        } else if self.recovered_agents.contains(agent_id) {
            Some("recovered")
        } else {
            None
        }
    }

    /// `Master::markUnreachable` then `_markUnreachable` for a registered
    /// agent: `__removeSlave` with the observer's message and the time.
    pub(crate) fn mark_unreachable(&mut self, agent_id: &str) -> Result<(), AgentRefusal> {
        match self.agent_state_name(agent_id) {
            Some("registered") => {}
            // Only the re-registration timeout marks a recovered agent unreachable.
            Some(state) => return Err(AgentRefusal::WrongState(state)),
            None => return Err(AgentRefusal::Unknown),
        }
        let time = TimeInfo {
            nanoseconds: (unix_seconds() * 1e9) as i64,
        };
        let spec = self.remove_registered(agent_id);
        self.unreachable_agents
            .insert(agent_id.to_owned(), (spec, time));
        let removal = Removal {
            message: UNREACHABLE_MESSAGE,
            unreachable_time: Some(time),
        };
        self.remove_slave(agent_id, &removal);
        Ok(())
    }

    /// `Master::markGone`: a registered agent is removed as by
    /// `__removeSlave` (no unreachable time); an unreachable one has its
    /// unreachable tasks ended (TASK_GONE_BY_OPERATOR, or TASK_LOST for
    /// frameworks that are not PARTITION_AWARE) and nothing else is sent.
    /// Marking a gone agent gone again does nothing (as the operator API's
    /// MARK_AGENT_GONE answers 200 then).
    pub(crate) fn mark_gone(&mut self, agent_id: &str) -> Result<(), AgentRefusal> {
        match self.agent_state_name(agent_id) {
            Some("registered") => {
                let message = GONE_MESSAGE.to_owned();
                self.to_agent(agent_id, AgentMessage::Shutdown { message });
                self.remove_registered(agent_id);
                self.gone_agents.insert(agent_id.to_owned());
                let removal = Removal {
                    message: GONE_MESSAGE,
                    unreachable_time: None,
                };
                self.remove_slave(agent_id, &removal);
            }
            Some("unreachable") => {
                self.unreachable_agents.remove(agent_id);
                self.gone_agents.insert(agent_id.to_owned());
                self.end_unreachable_tasks(agent_id);
            }
            // The master has no task metadata for it (MESOS-9739): nothing is sent.
            Some("recovered") => {
                self.recovered_agents.remove(agent_id);
                self.gone_agents.insert(agent_id.to_owned());
                for key in self.tasks.keys_on_agent(agent_id, |_| true) {
                    self.tasks[key].clear_pending();
                }
            }
            Some(_) => {}
            None => return Err(AgentRefusal::Unknown),
        }
        Ok(())
    }

    /// `Master::__reregisterSlave` for an unreachable agent: every task it
    /// still runs (those of removed frameworks excepted) comes back, each
    /// announced by a master update in the agent's state of the task
    /// (REASON_AGENT_REREGISTERED) to PARTITION_AWARE frameworks and others
    /// alike; then the agent re-sends its unacknowledged updates and its
    /// free resources are offered again. A gone agent is refused (the
    /// master shuts it down), a registered one is not re-registering.
    pub(crate) fn reregister_agent(
        &mut self,
        agent_id: &str,
        now: Instant,
    ) -> Result<(), AgentRefusal> {
        match self.agent_state_name(agent_id) {
            Some("unreachable") => {}
            Some("recovered") => {
                self.reregister_recovered(agent_id, now);
                return Ok(());
            }
            Some(state) => return Err(AgentRefusal::WrongState(state)),
            None => return Err(AgentRefusal::Unknown),
        }
        let Some((spec, _)) = self.unreachable_agents.remove(agent_id) else {
            return Err(AgentRefusal::Unknown);
        };
        self.agents.insert(agent_id.to_owned(), spec);
        let returning = self.tasks.keys_on_agent(agent_id, |t| !t.removed);
        for &i in &returning {
            let task = &mut self.tasks[i];
            task.unreachable = false;
            task.unknown_since_failover = false;
            task.state = task.agent_state;
            let latest = task.statuses.last();
            let status = TaskStatus {
                task_id: task.info.task_id.clone(),
                state: task.agent_state as i32,
                message: Some(REREGISTERED_MESSAGE.to_owned()),
                source: Some(task_status::Source::Master as i32),
                reason: Some(task_status::Reason::AgentReregistered as i32),
                agent_id: Some(AgentId {
                    value: agent_id.to_owned(),
                }),
                executor_id: task.info.executor.as_ref().map(|e| e.executor_id.clone()),
                timestamp: Some(unix_seconds()),
                healthy: latest.and_then(|s| s.healthy),
                container_status: latest.and_then(|s| s.container_status.clone()),
                ..Default::default()
            };
            let framework_id = task.framework_id.clone();
            self.send_event(&framework_id, update_event(status));
        }
        // The agent's status update manager flushes what it still holds.
        for &i in &returning {
            self.forward_head(i, now);
        }
        self.allocate(now);
        Ok(())
    }

    /// This master becomes the leader after a failover: subscription
    /// streams end (schedulers must re-subscribe), outstanding offers are
    /// gone, and every registered agent is only known from the registry
    /// (`slaves.recovered`): the master does not know its tasks until it
    /// re-registers, stays silent when asked to reconcile them, and marks it
    /// unreachable after `agent_reregister_timeout`. Unreachable and gone
    /// agents stay so. (The frameworks stay known here, disconnected with
    /// their failover timeouts running; a real new leader learns them back
    /// from their re-subscription.)
    pub(crate) fn master_failover(&mut self, now: Instant) {
        self.drop_all_connections(now);
        self.offers.clear();
        for (agent_id, spec) in self.agents.drain() {
            for key in self.tasks.keys_on_agent(&agent_id, |t| !t.removed) {
                self.tasks[key].unknown_since_failover = true;
            }
            self.recovered_agents.insert(agent_id, spec);
        }
        self.reregister_deadline = Some(now + self.setup.agent_reregister_timeout);
    }

    /// `Master::__reregisterSlave` for an agent recovered from the
    /// registry: its tasks become known without any update; it re-sends
    /// what it holds and its free resources are offered.
    fn reregister_recovered(&mut self, agent_id: &str, now: Instant) {
        let Some(spec) = self.recovered_agents.remove(agent_id) else {
            return;
        };
        self.agents.insert(agent_id.to_owned(), spec);
        let returning = self.tasks.keys_on_agent(agent_id, |t| !t.removed);
        for &i in &returning {
            let task = &mut self.tasks[i];
            task.unknown_since_failover = false;
            task.state = task.agent_state;
        }
        for &i in &returning {
            self.forward_head(i, now);
        }
        self.allocate(now);
    }

    /// `Master::recoveredSlavesTimeout`: agents still not re-registered are
    /// marked unreachable "during master failover": only FAILURE (the
    /// master knows none of their tasks), no task updates, no offers.
    pub(crate) fn recovered_agents_timeout(&mut self) {
        self.reregister_deadline = None;
        let time = TimeInfo {
            nanoseconds: (unix_seconds() * 1e9) as i64,
        };
        for (agent_id, agent) in self.recovered_agents.drain() {
            self.unreachable_agents
                .insert(agent_id.clone(), (agent, time));
            self.send_failure_to_all(&agent_id);
        }
    }

    /// `Master::sendSlaveLost`: FAILURE with the agent id to every
    /// connected framework.
    fn send_failure_to_all(&mut self, agent_id: &str) {
        let connected: Vec<String> = self
            .frameworks
            .iter()
            .filter(|f| f.connection.is_some())
            .map(|f| f.id.clone())
            .collect();
        for framework_id in connected {
            let failure = Event {
                r#type: Some(event::Type::Failure as i32),
                failure: Some(event::Failure {
                    agent_id: Some(AgentId {
                        value: agent_id.to_owned(),
                    }),
                    executor_id: None,
                    status: None,
                }),
                ..Default::default()
            };
            self.send_event(&framework_id, failure);
        }
    }

    /// Whether the executor exited and no task started it again.
    pub(crate) fn executor_exited_before(
        &self,
        agent_id: &str,
        framework_id: &str,
        executor_id: &str,
    ) -> bool {
        let executor = (
            agent_id.to_owned(),
            framework_id.to_owned(),
            executor_id.to_owned(),
        );
        self.exited_executors.contains(&executor)
    }

    /// `Master::exitedExecutor`: the agent reports that a custom executor
    /// the master tracks exited with wait `status`; the master forgets it
    /// (its resources are free) and sends FAILURE (agent, executor, status)
    /// to its framework if connected. Exits the master would ignore (agent
    /// not registered, executor unknown or already gone) are refused.
    pub(crate) fn executor_exited(
        &mut self,
        agent_id: &str,
        executor_id: &str,
        status: i32,
    ) -> Result<(), AgentRefusal> {
        match self.agent_state_name(agent_id) {
            Some("registered") => {}
            Some(state) => return Err(AgentRefusal::WrongState(state)),
            None => return Err(AgentRefusal::Unknown),
        }
        let running = self.tasks.on_agent(agent_id).map(|(_, t)| t).find(|t| {
            t.is_live()
                && t.info
                    .executor
                    .as_ref()
                    .is_some_and(|e| e.executor_id.value == executor_id)
                && !self.executor_exited_before(agent_id, &t.framework_id, executor_id)
        });
        let Some(task) = running else {
            return Err(AgentRefusal::NoSuchExecutor);
        };
        let framework_id = task.framework_id.clone();
        self.exited_executors.insert((
            agent_id.to_owned(),
            framework_id.clone(),
            executor_id.to_owned(),
        ));
        self.tasks.invalidate(agent_id);
        let failure = Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure {
                agent_id: Some(AgentId {
                    value: agent_id.to_owned(),
                }),
                executor_id: Some(mesos_proto::v1::ExecutorId {
                    value: executor_id.to_owned(),
                }),
                status: Some(status),
            }),
            ..Default::default()
        };
        self.send_event(&framework_id, failure);
        Ok(())
    }

    /// Removes a registered agent (the caller checked it is).
    fn remove_registered(&mut self, agent_id: &str) -> AgentSpec {
        let removed = self.agents.remove(agent_id);
        removed.unwrap_or_else(|| AgentSpec::new(agent_id, agent_id))
    }

    /// `Master::__removeSlave` after the agent left the allocator: an update
    /// per task the master tracks there (terminal ones not yet acknowledged
    /// included), the agent's offers rescinded, then FAILURE (`LostSlave`)
    /// to every connected framework.
    fn remove_slave(&mut self, agent_id: &str, removal: &Removal<'_>) {
        let on_agent = self.tasks.keys_on_agent(agent_id, Task::is_known);
        for i in on_agent {
            let partition_aware = self.is_partition_aware(&self.tasks[i].framework_id);
            let (state, reason, unreachable) = match (partition_aware, removal.unreachable_time) {
                (false, _) => (TaskState::TaskLost, task_status::Reason::AgentRemoved, true),
                (true, Some(_)) => (
                    TaskState::TaskUnreachable,
                    task_status::Reason::AgentRemoved,
                    true,
                ),
                (true, None) => (
                    TaskState::TaskGoneByOperator,
                    task_status::Reason::AgentRemovedByOperator,
                    false,
                ),
            };
            let status = self.removal_status(i, state, reason, removal);
            let task = &mut self.tasks[i];
            // `updateTask` keeps a terminal state.
            if !is_terminal(task.state) {
                task.state = state;
            }
            if unreachable {
                task.unreachable = true;
            } else {
                task.removed = true;
            }
            if removal.unreachable_time.is_none() {
                // A gone agent is shut down: nothing it held is re-sent.
                task.clear_pending();
            }
            let framework_id = task.framework_id.clone();
            self.send_event(&framework_id, update_event(status));
            if !unreachable {
                self.note_removed(i);
            }
        }
        let offers: Vec<String> = self
            .offers
            .on_agent(agent_id)
            .map(|o| o.id.value.clone())
            .collect();
        for offer_id in offers {
            self.rescind(&offer_id);
        }
        self.send_failure_to_all(agent_id);
    }

    /// `Master::markGone` for an agent already unreachable: its unreachable
    /// tasks end and become completed; no FAILURE (sent when it left).
    fn end_unreachable_tasks(&mut self, agent_id: &str) {
        let held = self
            .tasks
            .keys_on_agent(agent_id, |task| !task.removed && task.unreachable);
        let removal = Removal {
            message: GONE_MESSAGE,
            unreachable_time: None,
        };
        for i in held {
            let (state, reason) = if self.is_partition_aware(&self.tasks[i].framework_id) {
                let reason = task_status::Reason::AgentRemovedByOperator;
                (TaskState::TaskGoneByOperator, reason)
            } else {
                (TaskState::TaskLost, task_status::Reason::AgentRemoved)
            };
            let status = self.removal_status(i, state, reason, &removal);
            let task = &mut self.tasks[i];
            if !is_terminal(task.state) {
                task.state = state;
            }
            task.unreachable = false;
            task.removed = true;
            task.clear_pending();
            let framework_id = task.framework_id.clone();
            self.send_event(&framework_id, update_event(status));
            self.note_removed(i);
        }
    }

    /// `protobuf::createStatusUpdate` as `__removeSlave` calls it: source
    /// MASTER, no uuid, the executor id, the unreachable time if any.
    fn removal_status(
        &self,
        index: TaskKey,
        state: TaskState,
        reason: task_status::Reason,
        removal: &Removal<'_>,
    ) -> TaskStatus {
        let task = &self.tasks[index];
        TaskStatus {
            task_id: task.info.task_id.clone(),
            state: state as i32,
            message: Some(removal.message.to_owned()),
            source: Some(task_status::Source::Master as i32),
            reason: Some(reason as i32),
            agent_id: Some(AgentId {
                value: task.agent_id.clone(),
            }),
            executor_id: task.info.executor.as_ref().map(|e| e.executor_id.clone()),
            timestamp: Some(unix_seconds()),
            unreachable_time: removal.unreachable_time,
            ..Default::default()
        }
    }

    fn is_partition_aware(&self, framework_id: &str) -> bool {
        self.framework(framework_id)
            .is_some_and(|f| f.has_capability(framework_info::capability::Type::PartitionAware))
    }
}
