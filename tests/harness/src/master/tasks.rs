//! Tasks: LAUNCH validation, reliable status updates (one outstanding
//! update per task, retried with doubling backoff until acknowledged, as the
//! agent's status update manager does), ACKNOWLEDGE, KILL, RECONCILE
//! (§3.6) and master-generated updates (no uuid).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesos_client::is_terminal;
use mesos_proto::v1::scheduler::{call, event, Event};
use mesos_proto::v1::{
    container_info, framework_info, task_status, AgentId, ExecutorInfo, FrameworkId, FrameworkInfo,
    TaskId, TaskInfo, TaskState, TaskStatus,
};
use tokio::time::Instant;

use super::link::AgentMessage;
use super::resources::Resources;
use super::setup::{Acknowledgement, KillRequest, TaskView};
use super::state::MasterState;
use super::task_table::TaskKey;
use super::validation::{
    docker_run_options, validate_executor_info, validate_id, validate_launch_executor,
    validate_task_durations, validate_task_infos,
};
use crate::common::uuid::random_uuid;

/// A task the master knows.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) info: TaskInfo,
    pub(crate) framework_id: String,
    pub(crate) agent_id: String,
    /// The master's latest state of the task (`Task.state`): what the agent
    /// reported, or what the master set when the agent went.
    pub(crate) state: TaskState,
    /// The agent's latest state of the task (what it reports when it
    /// re-registers; it keeps running while the master thinks it lost).
    pub(crate) agent_state: TaskState,
    /// In the framework's `unreachableTasks`: its agent was removed while
    /// the task was known; reconciliation and implicit reconciliation no
    /// longer report it, its id cannot be reused, and it comes back when
    /// the agent re-registers.
    pub(crate) unreachable: bool,
    /// On an agent not re-registered since this master's failover: the
    /// master does not know the task until the agent comes back.
    pub(crate) unknown_since_failover: bool,
    /// State of the update last forwarded to the framework (what
    /// reconciliation reports, `status_update_state` in Mesos).
    pub(crate) forwarded_state: Option<TaskState>,
    pub(crate) statuses: Vec<TaskStatus>,
    /// Reliable updates not yet acknowledged; the front one is in delivery.
    pending: VecDeque<TaskStatus>,
    next_retry: Option<Instant>,
    backoff: Duration,
    pub(crate) removed: bool,
}

impl Task {
    /// A task just launched: TASK_STAGING, nothing sent yet.
    pub(crate) fn new(
        info: TaskInfo,
        framework_id: &str,
        agent_id: &str,
        backoff: Duration,
    ) -> Task {
        Task {
            info,
            framework_id: framework_id.to_owned(),
            agent_id: agent_id.to_owned(),
            state: TaskState::TaskStaging,
            agent_state: TaskState::TaskStaging,
            unreachable: false,
            unknown_since_failover: false,
            forwarded_state: None,
            statuses: Vec::new(),
            pending: VecDeque::new(),
            next_retry: None,
            backoff,
            removed: false,
        }
    }

    /// When the update in delivery is retried.
    #[cfg(test)]
    pub(crate) fn next_retry_at(&self) -> Option<Instant> {
        self.next_retry
    }

    /// Not forgotten and not in a terminal state: holds resources.
    pub(crate) fn is_live(&self) -> bool {
        !self.removed && !is_terminal(self.state)
    }

    /// The agent drops what it still had to deliver (it was shut down).
    pub(crate) fn clear_pending(&mut self) {
        self.pending.clear();
        self.next_retry = None;
    }

    /// In the master's active tasks (`framework->tasks`).
    pub(crate) fn is_known(&self) -> bool {
        !self.removed && !self.unreachable && !self.unknown_since_failover
    }

    pub(crate) fn view(&self) -> TaskView {
        TaskView {
            task_id: self.info.task_id.value.clone(),
            framework_id: self.framework_id.clone(),
            agent_id: self.agent_id.clone(),
            state: self.state,
            info: self.info.clone(),
            statuses: self.statuses.clone(),
            unacknowledged: self.pending.iter().cloned().collect(),
            removed: self.removed,
            unreachable: self.unreachable,
        }
    }
}

/// What an agent holds about its tasks, carried to a new leader when it
/// re-registers (`ReregisterSlaveMessage`: tasks with their latest state,
/// the frameworks they belong to, and the status update manager's
/// unacknowledged updates).
#[derive(Debug, Clone)]
pub(crate) struct AgentRecords {
    tasks: Vec<Task>,
    frameworks: Vec<FrameworkInfo>,
}

impl MasterState {
    /// The records agent `agent_id` holds (see [`AgentRecords`]).
    pub(crate) fn agent_records(&self, agent_id: &str) -> AgentRecords {
        let tasks: Vec<Task> = self
            .tasks
            .on_agent(agent_id)
            .filter(|(_, t)| !t.removed)
            .map(|(_, t)| t.clone())
            .collect();
        let mut frameworks: Vec<FrameworkInfo> = Vec::new();
        for task in &tasks {
            let known = frameworks.iter().any(|f| {
                f.id.as_ref()
                    .is_some_and(|id| id.value == task.framework_id)
            });
            if let Some(framework) = self.framework(&task.framework_id).filter(|_| !known) {
                frameworks.push(framework.info.clone());
            }
        }
        AgentRecords { tasks, frameworks }
    }

    /// Takes in what a re-registering agent reports, as a master that did
    /// not launch its tasks (another leader did): unknown frameworks are
    /// added disconnected (they re-subscribe), tasks not known are added in
    /// the agent's state with its pending updates, unknown until
    /// `reregister_recovered` makes them known.
    pub(crate) fn import_agent_records(&mut self, records: AgentRecords) {
        for info in records.frameworks {
            let Some(id) = info.id.clone().map(|id| id.value) else {
                continue;
            };
            if self.framework(&id).is_some() || self.removed_frameworks.contains(&id) {
                continue;
            }
            self.frameworks.push(super::state::Framework {
                id,
                info,
                connection: None,
                failover_deadline: None,
                suppressed: false,
                filters: std::collections::HashMap::new(),
            });
        }
        for mut task in records.tasks {
            let known = self
                .tasks
                .with_id(&task.info.task_id.value)
                .any(|(_, t)| !t.removed && t.framework_id == task.framework_id);
            if known {
                continue;
            }
            task.state = task.agent_state;
            task.unreachable = false;
            task.unknown_since_failover = true;
            task.forwarded_state = None;
            task.next_retry = None;
            task.backoff = self.setup.status_update_retry_min;
            self.tasks.insert(task);
        }
    }

    /// Resources held by live tasks on `agent_id`, executors counted once:
    /// cached until a task there (or an executor's exit) changes.
    pub(crate) fn resources_in_use(&self, agent_id: &str) -> Resources {
        if let Some(used) = self.tasks.cached_in_use(agent_id) {
            return used;
        }
        let mut used = Resources::default();
        let mut executors = Vec::new();
        for (_, task) in self.tasks.on_agent(agent_id).filter(|(_, t)| t.is_live()) {
            used.add(&Resources::from_proto(&task.info.resources).unwrap_or_default());
            if let Some(executor) = &task.info.executor {
                let exited = self.executor_exited_before(
                    agent_id,
                    &task.framework_id,
                    &executor.executor_id.value,
                );
                if !exited && !executors.contains(&executor.executor_id) {
                    executors.push(executor.executor_id.clone());
                    used.add(&Resources::from_proto(&executor.resources).unwrap_or_default());
                }
            }
        }
        self.tasks.store_in_use(agent_id, used.clone());
        used
    }

    /// One task of a LAUNCH: TASK_ERROR if invalid, else TASK_STAGING (the
    /// master sends no update for STAGING) and its resources are taken.
    pub(crate) fn launch(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        task: TaskInfo,
        remaining: &mut Resources,
        now: Instant,
    ) {
        match self.validate_task(framework_id, agent_id, task.clone(), remaining) {
            Err(message) => {
                let reason = task_status::Reason::TaskInvalid;
                let state = TaskState::TaskError;
                self.master_update(
                    framework_id,
                    &task.task_id,
                    Some(&task.agent_id),
                    state,
                    reason,
                    &message,
                );
            }
            Ok((info, used)) => {
                remaining.subtract(&used);
                let backoff = self.setup.status_update_retry_min;
                let executor = info.executor.clone();
                let key = self
                    .tasks
                    .insert(Task::new(info, framework_id, agent_id, backoff));
                // A task naming an executor that exited starts a new one.
                if let Some(executor) = executor {
                    let id = executor.executor_id.value;
                    let exited = (agent_id.to_owned(), framework_id.to_owned(), id);
                    self.exited_executors.remove(&exited);
                    self.tasks.invalidate(agent_id);
                }
                if self.is_linked(agent_id) {
                    self.run_on_agent(framework_id, key);
                } else {
                    self.run_docker_executor_checks(key, now);
                }
            }
        }
    }

    /// `RunTaskMessage` of the task just staged to its attached agent.
    fn run_on_agent(&self, framework_id: &str, key: TaskKey) {
        let (Some(task), Some(framework)) = (self.tasks.get(key), self.framework(framework_id))
        else {
            return;
        };
        let agent_id = &task.agent_id;
        let message = AgentMessage::RunTask {
            framework: Box::new(framework.info.clone()),
            task: Box::new(task.info.clone()),
        };
        self.to_agent(agent_id, message);
    }

    /// The agents run the Docker containerizer (`--containerizers=docker,mesos`):
    /// a command task with a DOCKER ContainerInfo goes to the docker
    /// executor, which sends TASK_STARTING and, when
    /// `Docker::RunOptions::create` refuses the container, TASK_FAILED
    /// "Failed to create docker run options: ..." (`src/docker/executor.cpp`,
    /// `DockerExecutorProcess::launchTask`; no reason set), both reliable.
    fn run_docker_executor_checks(&mut self, key: TaskKey, now: Instant) {
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let Some(container) = &task.info.container else {
            return;
        };
        let docker = container.r#type == container_info::Type::Docker as i32;
        if !docker || task.info.command.is_none() {
            return;
        }
        let Err(error) = docker_run_options(container, &task.info.resources) else {
            return;
        };
        let task_id = task.info.task_id.value.clone();
        let starting = executor_status(TaskState::TaskStarting);
        let failed = TaskStatus {
            message: Some(format!("Failed to create docker run options: {error}")),
            ..executor_status(TaskState::TaskFailed)
        };
        // The task was just staged on a registered agent: both are accepted.
        let _ = self.agent_update(&task_id, starting, now);
        let _ = self.agent_update(&task_id, failed, now);
    }

    /// `validation::task::validate` in its order: `validateTask` (id,
    /// unique id incl. unreachable tasks, agent, then the stateless field
    /// checks of `validation.rs`), `validateExecutor` (command xor executor,
    /// executor rules, framework id, resources, compatibility with a running
    /// executor, total against the offer). Returns the TaskInfo with the
    /// executor's `framework_id` filled in (as `Master::accept` does before
    /// validating) and the resources it takes.
    fn validate_task(
        &self,
        framework_id: &str,
        agent_id: &str,
        mut task: TaskInfo,
        remaining: &Resources,
    ) -> Result<(TaskInfo, Resources), String> {
        let task_id = task.task_id.value.clone();
        validate_id(&task_id)?;
        let same_id = |(_, t): &(TaskKey, &Task)| {
            !t.removed && !t.unknown_since_failover && t.framework_id == framework_id
        };
        match self.tasks.with_id(&task_id).find(same_id) {
            Some((_, t)) if t.unreachable => {
                return Err(format!(
                    "Task reuses the ID of an unreachable task: {task_id}"
                ));
            }
            Some(_) => return Err(format!("Task has duplicate ID: {task_id}")),
            None => {}
        }
        if task.agent_id.value != agent_id {
            return Err(format!(
                "Task uses invalid agent {} while agent {agent_id} is expected",
                task.agent_id.value
            ));
        }
        validate_task_durations(&task)?;
        if task.resources.is_empty() {
            return Err("Task uses no resources".to_owned());
        }
        let mut needed = Resources::from_proto(&task.resources)
            .map_err(|reason| format!("Task uses invalid resources: {reason}"))?;
        validate_task_infos(&task)?;
        if task.executor.is_some() == task.command.is_some() {
            return Err(
                "Task should have at least one (but not both) of CommandInfo or \
                        ExecutorInfo present"
                    .to_owned(),
            );
        }
        if let Some(executor) = &mut task.executor {
            if executor.framework_id.is_none() {
                executor.framework_id = Some(FrameworkId {
                    value: framework_id.to_owned(),
                });
            }
            let running = self.validate_executor(framework_id, agent_id, executor)?;
            if !running {
                let executor_resources = Resources::from_proto(&executor.resources)
                    .map_err(|reason| format!("Executor uses invalid resources: {reason}"))?;
                needed.add(&executor_resources);
            }
        }
        if !remaining.contains(&needed) {
            return Err(format!(
                "Total resources {needed} required by task and its executor is more than \
                 available {remaining}"
            ));
        }
        Ok((task, needed))
    }

    /// `executor::internal::validate` then the LAUNCH rules of
    /// `task::internal::validateExecutor`. True when the executor is already
    /// running on the agent (its resources are then not needed).
    fn validate_executor(
        &self,
        framework_id: &str,
        agent_id: &str,
        executor: &ExecutorInfo,
    ) -> Result<bool, String> {
        validate_executor_info(executor)?;
        if let Some(id) = executor
            .framework_id
            .as_ref()
            .filter(|id| id.value != framework_id)
        {
            return Err(format!(
                "ExecutorInfo has an invalid FrameworkID (Actual: {} vs Expected: {framework_id})",
                id.value
            ));
        }
        Resources::from_proto(&executor.resources)
            .map_err(|reason| format!("Executor uses invalid resources: {reason}"))?;
        let existing = self.tasks.on_agent(agent_id).find_map(|(_, t)| {
            let info = t.info.executor.as_ref()?;
            let same = t.is_live()
                && t.framework_id == framework_id
                && info.executor_id == executor.executor_id;
            same.then_some(info)
        });
        let exited =
            self.executor_exited_before(agent_id, framework_id, &executor.executor_id.value);
        let existing = existing.filter(|_| !exited);
        if let Some(info) = existing.filter(|info| *info != executor) {
            // The master prints both with protobuf's `DebugString`; this
            // prints Rust's debug form between the same separators.
            let rule = "-".repeat(60);
            return Err(format!(
                "ExecutorInfo is not compatible with existing ExecutorInfo with same \
                 ExecutorID.\n{rule}\nExisting ExecutorInfo:\n{info:?}\n{rule}\n\
                 ExecutorInfo:\n{executor:?}\n{rule}\n"
            ));
        }
        validate_launch_executor(executor)?;
        Ok(existing.is_some())
    }

    /// A status update generated by the master (no uuid, not retried).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn master_update(
        &mut self,
        framework_id: &str,
        task_id: &TaskId,
        agent_id: Option<&AgentId>,
        state: TaskState,
        reason: task_status::Reason,
        message: &str,
    ) {
        let status = TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message: Some(message.to_owned()),
            source: Some(task_status::Source::Master as i32),
            reason: Some(reason as i32),
            agent_id: agent_id.cloned(),
            timestamp: Some(unix_seconds()),
            ..Default::default()
        };
        self.send_event(framework_id, update_event(status));
    }

    /// A status update from the agent or executor of task `task_id`:
    /// queued, and delivered (then retried) once every earlier update is
    /// acknowledged. Returns the update's uuid.
    pub(crate) fn agent_update(
        &mut self,
        task_id: &str,
        mut status: TaskStatus,
        now: Instant,
    ) -> Result<Vec<u8>, String> {
        let index = self
            .tasks
            .with_id(task_id)
            .find(|(_, t)| !t.removed)
            .map(|(key, _)| key)
            .ok_or_else(|| format!("the master knows no live task {task_id}"))?;
        if self.gone_agents.contains(&self.tasks[index].agent_id) {
            return Err(format!(
                "its agent {} was marked gone and shut down",
                self.tasks[index].agent_id
            ));
        }
        let keep_statuses = self.setup.record_history;
        let task = &mut self.tasks[index];
        let state = TaskState::try_from(status.state)
            .map_err(|_| format!("{} is not a TaskState number", status.state))?;
        if state == TaskState::TaskStaging {
            return Err("TASK_STAGING is set by the master, agents never send it".to_owned());
        }
        if is_terminal(task.agent_state) {
            return Err(format!(
                "task {task_id} is already {}: no update follows a terminal one",
                task.agent_state.as_str_name()
            ));
        }
        status.task_id = task.info.task_id.clone();
        status.agent_id = Some(AgentId {
            value: task.agent_id.clone(),
        });
        if status.executor_id.is_none() {
            status.executor_id = task.info.executor.as_ref().map(|e| e.executor_id.clone());
        }
        status.timestamp = status.timestamp.or(Some(unix_seconds()));
        let uuid = status
            .uuid
            .get_or_insert_with(|| random_uuid().to_vec())
            .clone();
        task.agent_state = state;
        if !keep_statuses {
            task.statuses.clear();
        }
        // Exact capacities: a TaskStatus is some 300 bytes and a task rarely
        // holds more than one or two (a first push would reserve four).
        task.statuses.reserve_exact(1);
        task.statuses.push(status.clone());
        task.pending.reserve_exact(1);
        task.pending.push_back(status);
        let first = task.pending.len() == 1;
        let agent_id = task.agent_id.clone();
        // The master learns the state only when it receives the update.
        if self.agent_registered(&agent_id) {
            self.tasks[index].state = state;
            if first {
                self.forward_head(index, now);
            }
        }
        Ok(uuid)
    }

    /// Sends the front pending update of task `index` and schedules a retry.
    pub(crate) fn forward_head(&mut self, index: TaskKey, now: Instant) {
        let task = &mut self.tasks[index];
        let Some(head) = task.pending.front().cloned() else {
            return;
        };
        task.forwarded_state = TaskState::try_from(head.state).ok();
        let at = now + task.backoff;
        let previous = task.next_retry.replace(at);
        let framework_id = task.framework_id.clone();
        if let Some(previous) = previous {
            self.retries.remove(previous, &index);
        }
        self.retries.push(at, index);
        self.send_event(&framework_id, update_event(head));
    }

    /// Re-sends updates whose retry is due, doubling the interval up to the
    /// maximum: costs the number of timers due, not of tasks (a timer whose
    /// task no longer waits for it is skipped).
    pub(crate) fn retry_updates(&mut self, now: Instant) {
        let max = self.setup.status_update_retry_max;
        for (at, index) in self.retries.pop_due(now) {
            let Some(task) = self.tasks.get(index) else {
                continue;
            };
            if task.removed || task.next_retry != Some(at) {
                continue;
            }
            if !self.agent_registered(&task.agent_id) {
                // The agent keeps the update; it is re-sent on re-registration.
                self.tasks[index].next_retry = None;
                continue;
            }
            let task = &mut self.tasks[index];
            task.backoff = (task.backoff * 2).min(max);
            self.forward_head(index, now);
        }
    }

    /// ACKNOWLEDGE: forwarded to the agent, which pops the update if the
    /// uuid is the one in delivery (and ignores it otherwise); the master
    /// forgets a task once its terminal update is acknowledged.
    pub(crate) fn acknowledge(
        &mut self,
        framework_id: &str,
        ack: &call::Acknowledge,
        now: Instant,
    ) {
        let index = self.tasks.with_id(&ack.task_id.value).find(|(_, t)| {
            !t.removed
                && t.framework_id == framework_id
                && t.agent_id == ack.agent_id.value
                // The master drops acknowledgements for agents not registered.
                && self.agent_registered(&t.agent_id)
                && t.pending.front().and_then(|s| s.uuid.as_ref()) == Some(&ack.uuid)
        });
        let index = index.map(|(key, _)| key);
        if self.setup.record_history {
            self.acknowledgements.push(Acknowledgement {
                task_id: ack.task_id.value.clone(),
                agent_id: ack.agent_id.value.clone(),
                uuid: ack.uuid.clone(),
                matched: index.is_some(),
            });
        }
        let Some(index) = index else {
            return;
        };
        let task = &mut self.tasks[index];
        let acked = task.pending.pop_front();
        if task.pending.is_empty() {
            task.pending.shrink_to_fit();
        }
        let message = AgentMessage::Acknowledged {
            framework_id: framework_id.to_owned(),
            task_id: ack.task_id.value.clone(),
            uuid: ack.uuid.clone(),
        };
        let agent_id = task.agent_id.clone();
        self.to_agent(&agent_id, message);
        let task = &mut self.tasks[index];
        let retry = task.next_retry.take();
        task.backoff = self.setup.status_update_retry_min;
        let terminal = acked
            .and_then(|s| TaskState::try_from(s.state).ok())
            .is_some_and(is_terminal);
        let more = !task.pending.is_empty();
        if terminal {
            task.removed = true;
        }
        if let Some(at) = retry {
            self.retries.remove(at, &index);
        }
        if terminal {
            self.note_removed(index);
        } else if more {
            self.forward_head(index, now);
        }
    }

    /// `Master::kill`: unknown tasks are reconciled instead; a kill naming
    /// another agent is ignored; otherwise it goes to the agent.
    pub(crate) fn kill(&mut self, framework_id: &str, kill: &call::Kill, now: Instant) {
        let known = self
            .tasks
            .with_id(&kill.task_id.value)
            .find(|(_, t)| t.is_known() && t.framework_id == framework_id);
        let Some((_, task)) = known else {
            let reconcile = call::Reconcile {
                tasks: vec![call::reconcile::Task {
                    task_id: kill.task_id.clone(),
                    agent_id: kill.agent_id.clone(),
                }],
            };
            self.reconcile(framework_id, &reconcile);
            return;
        };
        if kill
            .agent_id
            .as_ref()
            .is_some_and(|a| a.value != task.agent_id)
        {
            return;
        }
        let live = !is_terminal(task.state);
        let agent_id = task.agent_id.clone();
        if self.setup.record_history {
            self.kills.push(KillRequest {
                task_id: kill.task_id.value.clone(),
                agent_id: agent_id.clone(),
                kill_policy: kill.kill_policy,
            });
        }
        if self.is_linked(&agent_id) {
            let message = AgentMessage::KillTask {
                framework_id: framework_id.to_owned(),
                task_id: kill.task_id.value.clone(),
                kill_policy: kill.kill_policy,
            };
            self.to_agent(&agent_id, message);
            return;
        }
        if !(self.setup.auto_complete_kills && live) {
            return;
        }
        let killing_state = self
            .framework(framework_id)
            .is_some_and(|f| f.has_capability(framework_info::capability::Type::TaskKillingState));
        let task_id = kill.task_id.value.clone();
        if killing_state {
            let _ = self.agent_update(&task_id, executor_status(TaskState::TaskKilling), now);
        }
        let _ = self.agent_update(&task_id, executor_status(TaskState::TaskKilled), now);
    }

    /// The framework is removed: its agents kill its tasks and the master
    /// forgets them (nothing is delivered any more).
    pub(crate) fn kill_tasks_of_removed_framework(&mut self, framework_id: &str) {
        let of_framework: Vec<TaskKey> = self
            .tasks
            .keys()
            .into_iter()
            .filter(|&key| self.tasks[key].framework_id == framework_id)
            .collect();
        for key in of_framework {
            // Removing one may forget an older removed one of the list.
            let Some(task) = self.tasks.get_mut(key) else {
                continue;
            };
            if !is_terminal(task.state) {
                task.state = TaskState::TaskKilled;
            }
            task.clear_pending();
            let newly_removed = !task.removed;
            task.removed = true;
            if newly_removed {
                self.note_removed(key);
            }
        }
    }

    /// Task `key` was just removed: without [`MasterSetup::record_history`]
    /// it joins its framework's completed tasks, and the oldest beyond
    /// `max_completed_tasks_per_framework` are forgotten (as the bounded
    /// `completedTasks` of a Mesos framework).
    ///
    /// [`MasterSetup::record_history`]: super::MasterSetup::record_history
    pub(crate) fn note_removed(&mut self, key: TaskKey) {
        if self.setup.record_history {
            return;
        }
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let completed = self.completed.entry(task.framework_id.clone()).or_default();
        completed.push_back(key);
        while completed.len() > self.setup.max_completed_tasks_per_framework {
            if let Some(oldest) = completed.pop_front() {
                self.tasks.remove(oldest);
            }
        }
    }
}

fn executor_status(state: TaskState) -> TaskStatus {
    TaskStatus {
        state: state as i32,
        source: Some(task_status::Source::Executor as i32),
        ..Default::default()
    }
}

pub(crate) fn update_event(status: TaskStatus) -> Event {
    Event {
        r#type: Some(event::Type::Update as i32),
        update: Some(event::Update { status }),
        ..Default::default()
    }
}

pub(crate) fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_is_terminal_and_unreachable_is_not() {
        assert!(is_terminal(TaskState::TaskLost));
        assert!(!is_terminal(TaskState::TaskUnreachable));
        assert!(!is_terminal(TaskState::TaskStaging));
    }
}
