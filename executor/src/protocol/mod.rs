//! The executor's protocol logic as a pure state machine: agent events, container outcomes and
//! timer expiries go in ([`Input`]), [`Action`]s come out (calls to send, containers to start
//! or stop, timers to set, exit). No I/O: the `run` module executes the actions.
//!
//! Rules (mesos-protocol.md §4):
//! - every update has a fresh uuid, `SOURCE_EXECUTOR`, and is kept until ACKNOWLEDGED; a task
//!   is "unacknowledged" until any of its updates is acknowledged; both lists go into every
//!   SUBSCRIBE, and updates made while no subscription is open are sent after SUBSCRIBED;
//! - LAUNCH → TASK_STARTING, container started → TASK_RUNNING, container ended → a terminal
//!   state; KILL → stop with the grace of the kill's policy, else the task's, else
//!   `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` (TASK_KILLING first when the framework has the
//!   TASK_KILLING_STATE capability) → TASK_KILLED;
//! - SHUTDOWN → stop every container within the shutdown grace period, TASK_KILLED each, exit
//!   when they are acknowledged or the grace period is over;
//! - a lost subscription with checkpointing → re-subscribe with random backoff until
//!   `MESOS_RECOVERY_TIMEOUT`; without (or once that expires) → stop everything and exit;
//! - exit once every task's terminal update is acknowledged.

pub mod running;
pub mod status;

use std::collections::BTreeMap;
use std::time::Duration;

use deimos_runtime::runtime::ExitStatus;
use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::{framework_info, task_status, TaskInfo, TaskState};

use crate::env::Settings;
use crate::task::{duration_of, plan_task, TaskContext, TaskPlan};
use running::running_report;
use status::{exit_report, is_terminal, Envelope, Report};

/// How long the first subscription may take to succeed when the framework does not checkpoint
/// (the agent's default `--executor_registration_timeout`; it destroys us after that anyway).
pub const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest wait between SUBSCRIBE attempts when the environment gives none (no checkpointing).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Part of the shutdown grace period kept free to report the kills before the agent destroys
/// the executor.
pub const SHUTDOWN_REPORT_MARGIN: Duration = Duration::from_secs(1);

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An event of the subscription stream (boxed: events are large).
    Event(Box<Event>),
    /// A SUBSCRIBE attempt failed before a stream was open. `permanent` when retrying cannot
    /// help (the agent refused the call with a 4xx status).
    SubscribeFailed {
        /// Whether retrying is pointless.
        permanent: bool,
        /// What went wrong.
        reason: String,
    },
    /// The subscription stream ended or broke.
    Disconnected {
        /// What went wrong.
        reason: String,
    },
    /// The backoff delay of a [`Action::ScheduleSubscribe`] has elapsed.
    SubscribeDue,
    /// The timer of [`Action::StartRecoveryTimer`] expired.
    RecoveryTimedOut,
    /// The timer of [`Action::StartShutdownTimer`] expired.
    ShutdownDeadline,
    /// News about a task's container.
    Container {
        /// The task.
        task_id: String,
        /// What happened.
        outcome: ContainerOutcome,
    },
}

/// What happened to a task's container.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerOutcome {
    /// The container runs.
    Started {
        /// Its Docker id.
        container: String,
        /// Its `docker inspect` document, when it could be read (boxed: it is large).
        inspect: Option<Box<serde_json::Value>>,
    },
    /// It could not be started (fetch, pull, create or start failed); nothing runs.
    LaunchFailed {
        /// Why.
        reason: String,
    },
    /// The operator's policy refused it right before it was to be created (a host path that,
    /// resolved, lies outside the allowed directories); nothing runs.
    Refused {
        /// Why, naming the key of `deimos.cfg` concerned.
        reason: String,
    },
    /// It has stopped.
    Exited(ExitStatus),
    /// The executor lost track of it (waiting failed); it has been removed.
    Lost {
        /// Why.
        reason: String,
    },
}

/// Something to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open a subscription with this SUBSCRIBE call (replacing any previous one).
    Subscribe(Call),
    /// Wait a random delay up to `backoff_max`, then feed [`Input::SubscribeDue`].
    ScheduleSubscribe {
        /// The longest delay.
        backoff_max: Duration,
    },
    /// Send this call (UPDATE) on a connection of its own.
    Send(Call),
    /// Fetch, create and start a task's container; report [`ContainerOutcome::Started`] or
    /// [`ContainerOutcome::LaunchFailed`] or [`ContainerOutcome::Refused`], then
    /// [`ContainerOutcome::Exited`] or [`ContainerOutcome::Lost`].
    Launch(Box<TaskPlan>),
    /// Stop a running container: SIGTERM, SIGKILL after `grace`. Repeating it with a shorter
    /// grace escalates.
    Stop {
        /// The task.
        task_id: String,
        /// Its Docker id.
        container: String,
        /// Time between SIGTERM and SIGKILL.
        grace: Duration,
    },
    /// Feed [`Input::RecoveryTimedOut`] after this long (unless cancelled).
    StartRecoveryTimer(Duration),
    /// Forget the recovery timer.
    CancelRecoveryTimer,
    /// Feed [`Input::ShutdownDeadline`] after this long.
    StartShutdownTimer(Duration),
    /// Terminate the executor. Always the last action.
    Exit(ExitReason),
}

/// Why the executor exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Every task ended and the agent acknowledged its terminal update.
    Completed,
    /// The agent said SHUTDOWN.
    Shutdown,
    /// The agent was lost: without checkpointing, or past the recovery timeout.
    AgentLost {
        /// The last connection problem.
        reason: String,
    },
    /// The agent refused the subscription.
    SubscribeRejected {
        /// The agent's answer.
        reason: String,
    },
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Launch requested; no container yet.
    Launching,
    /// The container runs.
    Running,
    /// A stop was sent.
    Stopping,
    /// The terminal update is made.
    Done,
}

#[derive(Debug, Clone)]
struct Task {
    info: TaskInfo,
    phase: Phase,
    container: Option<String>,
    /// Any of its updates was acknowledged.
    acknowledged: bool,
    /// Stop requested, with this grace (applied once the container exists).
    kill: Option<Duration>,
    /// The task's own kill policy.
    kill_grace: Option<Duration>,
    /// The container's memory limit in bytes, for the report of an OOM kill.
    memory_limit: Option<u64>,
}

#[derive(Debug, Clone)]
struct Pending {
    task_id: String,
    update: call::Update,
    uuid: Vec<u8>,
    /// Already handed to the agent (in an UPDATE or a SUBSCRIBE) on the current or a past
    /// subscription attempt; new ones wait for SUBSCRIBED.
    delivered: bool,
}

/// Connection to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// A SUBSCRIBE is in flight or due; no SUBSCRIBED yet.
    Connecting,
    /// SUBSCRIBED received on the current stream.
    Subscribed,
    /// Given up on the agent: nothing can be sent any more.
    Lost,
}

/// What the executor is doing overall.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Normal,
    ShuttingDown,
    /// Stopping the containers before exiting for this reason.
    Abandoning(ExitReason),
    Exited,
}

/// The executor's protocol state. See the [module documentation](self).
pub struct Machine {
    envelope: Envelope,
    settings: Settings,
    instance: String,
    uuids: Box<dyn FnMut() -> [u8; 16] + Send>,
    link: Link,
    mode: Mode,
    tasks: BTreeMap<String, Task>,
    /// Unacknowledged updates, oldest first.
    pending: Vec<Pending>,
    recovery_timer: bool,
    container_id: Option<String>,
    agent_id: Option<String>,
    killing_state: bool,
    last_problem: String,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("link", &self.link)
            .field("mode", &self.mode)
            .field("tasks", &self.tasks.keys().collect::<Vec<_>>())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine for the executor described by `settings`, whose containers are labelled
    /// with the process `instance` id; `uuids` gives 16 random bytes per call (made into a
    /// version-4 UUID here).
    pub fn new(
        settings: Settings,
        instance: String,
        uuids: Box<dyn FnMut() -> [u8; 16] + Send>,
    ) -> Machine {
        Machine {
            instance,
            envelope: Envelope {
                framework_id: settings.framework_id.clone(),
                executor_id: settings.executor_id.clone(),
            },
            agent_id: settings.agent_id.clone(),
            settings,
            uuids,
            link: Link::Connecting,
            mode: Mode::Normal,
            tasks: BTreeMap::new(),
            pending: Vec::new(),
            recovery_timer: false,
            container_id: None,
            killing_state: false,
            last_problem: String::new(),
        }
    }

    /// The first actions: subscribe, bounded by the recovery timeout (or the registration
    /// timeout without checkpointing).
    pub fn start(&mut self) -> Vec<Action> {
        self.recovery_timer = true;
        vec![
            Action::StartRecoveryTimer(self.reconnect_window()),
            Action::Subscribe(self.subscribe_call()),
        ]
    }

    /// Handles one input.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        if self.mode == Mode::Exited {
            return Vec::new();
        }
        let mut actions = match input {
            Input::Event(event) => self.on_event(*event),
            Input::SubscribeFailed { permanent, reason } => {
                self.on_subscribe_failed(permanent, reason)
            }
            Input::Disconnected { reason } => self.on_disconnected(reason),
            Input::SubscribeDue => self.on_subscribe_due(),
            Input::RecoveryTimedOut => self.on_recovery_timeout(),
            Input::ShutdownDeadline => self.on_shutdown_deadline(),
            Input::Container { task_id, outcome } => self.on_container(&task_id, outcome),
        };
        actions.extend(self.exit_if_done());
        actions
    }

    /// The SUBSCRIBE call for the current state: every unacknowledged task and update.
    pub fn subscribe_call(&mut self) -> Call {
        let subscribe = call::Subscribe {
            unacknowledged_tasks: self
                .tasks
                .values()
                .filter(|task| !task.acknowledged)
                .map(|task| task.info.clone())
                .collect(),
            unacknowledged_updates: self.pending.iter().map(|p| p.update.clone()).collect(),
        };
        for pending in &mut self.pending {
            pending.delivered = true;
        }
        Call {
            subscribe: Some(subscribe),
            ..self.envelope.call(call::Type::Subscribe)
        }
    }

    /// Whether an update with this uuid is still unacknowledged.
    pub fn is_unacknowledged(&self, uuid: &[u8]) -> bool {
        self.pending.iter().any(|p| p.uuid == uuid)
    }

    fn reconnect_window(&self) -> Duration {
        self.settings
            .recovery
            .map_or(REGISTRATION_TIMEOUT, |recovery| recovery.timeout)
    }

    fn backoff_max(&self) -> Duration {
        self.settings
            .recovery
            .map_or(DEFAULT_BACKOFF_MAX, |recovery| recovery.backoff_max)
    }

    // ----- agent events -------------------------------------------------------------------

    fn on_event(&mut self, event: Event) -> Vec<Action> {
        use event::Type;
        match event.r#type.and_then(|t| Type::try_from(t).ok()) {
            Some(Type::Subscribed) => self.on_subscribed(event.subscribed),
            Some(Type::Launch) => match event.launch {
                Some(launch) => self.on_launch(launch.task),
                None => malformed("LAUNCH without launch"),
            },
            Some(Type::LaunchGroup) => match event.launch_group {
                Some(group) => group
                    .task_group
                    .tasks
                    .into_iter()
                    .flat_map(|task| self.on_launch(task))
                    .collect(),
                None => malformed("LAUNCH_GROUP without launch_group"),
            },
            Some(Type::Kill) => match event.kill {
                Some(kill) => self.on_kill(&kill.task_id.value, kill.kill_policy),
                None => malformed("KILL without kill"),
            },
            Some(Type::Acknowledged) => match event.acknowledged {
                Some(ack) => self.on_acknowledged(&ack.task_id.value, &ack.uuid),
                None => malformed("ACKNOWLEDGED without acknowledged"),
            },
            Some(Type::Shutdown) => self.on_shutdown(),
            Some(Type::Message) => {
                let size = event.message.map_or(0, |m| m.data.len());
                log::info!("ignoring a {size}-byte framework message: this executor takes none");
                Vec::new()
            }
            Some(Type::Error) => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                log::warn!("the agent reported an error: {message}");
                Vec::new()
            }
            Some(Type::Heartbeat) => Vec::new(),
            Some(Type::Unknown) | None => {
                log::warn!("ignoring an event of unknown type {:?}", event.r#type);
                Vec::new()
            }
        }
    }

    fn on_subscribed(&mut self, subscribed: Option<event::Subscribed>) -> Vec<Action> {
        if self.link == Link::Lost {
            return Vec::new();
        }
        self.link = Link::Subscribed;
        if let Some(subscribed) = subscribed {
            self.container_id = subscribed.container_id.map(|c| c.value);
            if let Some(agent) = subscribed.agent_info.id {
                self.agent_id = Some(agent.value);
            }
            self.killing_state = subscribed
                .framework_info
                .capabilities
                .iter()
                .any(|c| c.r#type() == framework_info::capability::Type::TaskKillingState);
        }
        let mut actions = Vec::new();
        if std::mem::take(&mut self.recovery_timer) {
            actions.push(Action::CancelRecoveryTimer);
        }
        // Updates made after the SUBSCRIBE call was built have not reached the agent yet.
        for pending in self.pending.iter_mut().filter(|p| !p.delivered) {
            pending.delivered = true;
            actions.push(Action::Send(
                self.envelope.update_call(pending.update.clone()),
            ));
        }
        actions
    }

    fn on_launch(&mut self, info: TaskInfo) -> Vec<Action> {
        let task_id = info.task_id.value.clone();
        if self.tasks.contains_key(&task_id) {
            log::warn!("ignoring a second LAUNCH of task {task_id}");
            return Vec::new();
        }
        if self.mode != Mode::Normal {
            log::warn!("ignoring LAUNCH of task {task_id}: the executor is shutting down");
            return Vec::new();
        }
        let context = TaskContext {
            framework_id: &self.settings.framework_id,
            executor_id: &self.settings.executor_id,
            agent_id: self.agent_id.as_deref(),
            container_id: self.container_id.as_deref(),
            directory: &self.settings.directory,
            policy: &self.settings.operator.policy,
            cfs_quota: self.settings.operator.cfs_quota,
            instance: &self.instance,
        };
        let planned = plan_task(&info, &context);
        self.tasks.insert(
            task_id.clone(),
            Task {
                info,
                phase: Phase::Launching,
                container: None,
                acknowledged: false,
                kill: None,
                kill_grace: None,
                memory_limit: None,
            },
        );
        match planned {
            Ok(plan) => {
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.kill_grace = plan.kill_grace;
                    task.memory_limit = plan.spec.limits.memory_bytes;
                }
                let mut actions = self.report(&task_id, Report::plain(TaskState::TaskStarting));
                actions.push(Action::Launch(Box::new(plan)));
                actions
            }
            // The task description is at fault, not its run: TASK_ERROR, as a master
            // reports an invalid task, or one its authorizer refuses.
            Err(error) => {
                let reason = match error {
                    crate::Error::Refused { .. } => task_status::Reason::TaskUnauthorized,
                    _ => task_status::Reason::TaskInvalid,
                };
                self.finish(
                    &task_id,
                    Report::with_message(TaskState::TaskError, error.to_string()).because(reason),
                )
            }
        }
    }

    fn on_kill(
        &mut self,
        task_id: &str,
        policy: Option<mesos_proto::v1::KillPolicy>,
    ) -> Vec<Action> {
        let default_grace = self.settings.shutdown_grace_period;
        let Some(task) = self.tasks.get_mut(task_id) else {
            log::warn!("ignoring KILL of unknown task {task_id}");
            return Vec::new();
        };
        let grace = policy
            .and_then(|p| p.grace_period)
            .map(|g| duration_of(&g))
            .or(task.kill_grace)
            .unwrap_or(default_grace);
        self.stop_task(task_id, grace)
    }

    fn on_acknowledged(&mut self, task_id: &str, uuid: &[u8]) -> Vec<Action> {
        let Some(index) = self.pending.iter().position(|p| p.uuid == uuid) else {
            log::warn!("ignoring ACKNOWLEDGED of task {task_id} for an unknown update");
            return Vec::new();
        };
        let acked = self.pending.remove(index);
        if let Some(task) = self.tasks.get_mut(&acked.task_id) {
            task.acknowledged = true;
        }
        Vec::new()
    }

    fn on_shutdown(&mut self) -> Vec<Action> {
        if self.mode != Mode::Normal {
            return Vec::new();
        }
        self.mode = Mode::ShuttingDown;
        let deadline = self.settings.shutdown_grace_period;
        let cap = deadline.saturating_sub(SHUTDOWN_REPORT_MARGIN);
        let mut actions = vec![Action::StartShutdownTimer(deadline)];
        let live: Vec<(String, Option<Duration>)> = self
            .tasks
            .iter()
            .filter(|(_, task)| task.phase != Phase::Done)
            .map(|(id, task)| (id.clone(), task.kill_grace))
            .collect();
        for (task_id, own_grace) in live {
            let grace = own_grace.map_or(cap, |g| g.min(cap));
            actions.extend(self.stop_task(&task_id, grace));
        }
        actions
    }

    // ----- connection ----------------------------------------------------------------------

    fn on_subscribe_failed(&mut self, permanent: bool, reason: String) -> Vec<Action> {
        if self.link == Link::Lost {
            return Vec::new();
        }
        log::warn!("subscribing to the agent failed: {reason}");
        if permanent {
            return self.abandon(ExitReason::SubscribeRejected { reason });
        }
        self.last_problem = reason;
        self.link = Link::Connecting;
        vec![Action::ScheduleSubscribe {
            backoff_max: self.backoff_max(),
        }]
    }

    fn on_disconnected(&mut self, reason: String) -> Vec<Action> {
        if self.link == Link::Lost {
            return Vec::new();
        }
        log::warn!("lost the subscription to the agent: {reason}");
        if self.mode == Mode::ShuttingDown {
            // The agent destroys us after the grace period anyway; keep stopping the
            // containers and exit at the deadline.
            self.link = Link::Lost;
            return Vec::new();
        }
        if self.settings.recovery.is_none() {
            return self.abandon(ExitReason::AgentLost {
                reason: format!("{reason} (the framework does not checkpoint)"),
            });
        }
        self.last_problem = reason;
        self.link = Link::Connecting;
        let mut actions = Vec::new();
        if !self.recovery_timer {
            self.recovery_timer = true;
            actions.push(Action::StartRecoveryTimer(self.reconnect_window()));
        }
        actions.push(Action::ScheduleSubscribe {
            backoff_max: self.backoff_max(),
        });
        actions
    }

    fn on_subscribe_due(&mut self) -> Vec<Action> {
        if self.link != Link::Connecting {
            return Vec::new();
        }
        vec![Action::Subscribe(self.subscribe_call())]
    }

    fn on_recovery_timeout(&mut self) -> Vec<Action> {
        if !std::mem::take(&mut self.recovery_timer) || self.link != Link::Connecting {
            return Vec::new();
        }
        let window = self.reconnect_window();
        let reason = format!(
            "no subscription to the agent within {window:?}; last problem: {}",
            self.last_problem
        );
        self.abandon(ExitReason::AgentLost { reason })
    }

    fn on_shutdown_deadline(&mut self) -> Vec<Action> {
        if self.mode != Mode::ShuttingDown {
            return Vec::new();
        }
        log::warn!("shutdown grace period over: exiting with tasks or updates outstanding");
        self.mode = Mode::Exited;
        vec![Action::Exit(ExitReason::Shutdown)]
    }

    /// Gives up on the agent: stop every container, then exit for `reason`.
    fn abandon(&mut self, reason: ExitReason) -> Vec<Action> {
        self.link = Link::Lost;
        self.mode = Mode::Abandoning(reason);
        let grace = self.settings.shutdown_grace_period;
        let live: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, task)| task.phase != Phase::Done)
            .map(|(id, _)| id.clone())
            .collect();
        live.iter()
            .flat_map(|task_id| self.stop_task(task_id, grace))
            .collect()
    }

    // ----- containers ----------------------------------------------------------------------

    fn on_container(&mut self, task_id: &str, outcome: ContainerOutcome) -> Vec<Action> {
        let Some(task) = self.tasks.get_mut(task_id) else {
            log::warn!("ignoring container news of unknown task {task_id}");
            return Vec::new();
        };
        if task.phase == Phase::Done {
            return Vec::new();
        }
        let killed = task.kill.is_some();
        match outcome {
            ContainerOutcome::Started { container, inspect } => {
                task.container = Some(container.clone());
                if let Some(grace) = task.kill {
                    task.phase = Phase::Stopping;
                    let task_id = task_id.to_owned();
                    return vec![Action::Stop {
                        task_id,
                        container,
                        grace,
                    }];
                }
                task.phase = Phase::Running;
                let network = task
                    .info
                    .container
                    .as_ref()
                    .and_then(|container| container.network_infos.first());
                let report = running_report(inspect.as_deref(), network);
                self.report(task_id, report)
            }
            ContainerOutcome::LaunchFailed { reason } if killed => self.finish(
                task_id,
                Report::with_message(
                    TaskState::TaskKilled,
                    format!("task killed during launch; the launch failed: {reason}"),
                )
                .because(task_status::Reason::TaskKilledDuringLaunch),
            ),
            ContainerOutcome::LaunchFailed { reason } => self.finish(
                task_id,
                Report::with_message(
                    TaskState::TaskFailed,
                    format!("launching the container failed: {reason}"),
                )
                .because(task_status::Reason::ContainerLaunchFailed),
            ),
            ContainerOutcome::Refused { reason } if killed => self.finish(
                task_id,
                Report::with_message(
                    TaskState::TaskKilled,
                    format!("task killed during launch; the launch was refused: {reason}"),
                )
                .because(task_status::Reason::TaskKilledDuringLaunch),
            ),
            ContainerOutcome::Refused { reason } => self.finish(
                task_id,
                Report::with_message(TaskState::TaskError, reason)
                    .because(task_status::Reason::TaskUnauthorized),
            ),
            ContainerOutcome::Exited(status) => {
                let report = exit_report(&status, killed, task.memory_limit);
                self.finish(task_id, report)
            }
            ContainerOutcome::Lost { reason } => self.finish(
                task_id,
                Report::with_message(
                    TaskState::TaskFailed,
                    format!("lost track of the container: {reason}"),
                ),
            ),
        }
    }

    /// Requests the stop of a task's container (now if it runs, once started otherwise).
    fn stop_task(&mut self, task_id: &str, grace: Duration) -> Vec<Action> {
        let killing_state = self.killing_state;
        let Some(task) = self.tasks.get_mut(task_id) else {
            return Vec::new();
        };
        let first = task.kill.is_none();
        let shorter = task.kill.is_none_or(|old| grace < old);
        match task.phase {
            Phase::Done => return Vec::new(),
            Phase::Launching => {
                task.kill = Some(task.kill.map_or(grace, |old| old.min(grace)));
                return Vec::new();
            }
            Phase::Running | Phase::Stopping if !shorter => return Vec::new(),
            Phase::Running | Phase::Stopping => {}
        }
        task.kill = Some(grace);
        task.phase = Phase::Stopping;
        let Some(container) = task.container.clone() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if first && killing_state {
            actions.extend(self.report(task_id, Report::plain(TaskState::TaskKilling)));
        }
        actions.push(Action::Stop {
            task_id: task_id.to_owned(),
            container,
            grace,
        });
        actions
    }

    /// Reports the terminal state of a task.
    fn finish(&mut self, task_id: &str, report: Report) -> Vec<Action> {
        debug_assert!(is_terminal(report.state));
        if let Some(task) = self.tasks.get_mut(task_id) {
            task.phase = Phase::Done;
        }
        self.report(task_id, report)
    }

    /// Makes an update, keeps it until acknowledged, and sends it when subscribed.
    fn report(&mut self, task_id: &str, report: Report) -> Vec<Action> {
        let uuid = status::as_uuid_v4((self.uuids)());
        let update = self.envelope.update(task_id, &report, uuid);
        let subscribed = self.link == Link::Subscribed;
        self.pending.push(Pending {
            task_id: task_id.to_owned(),
            update: update.clone(),
            uuid: uuid.to_vec(),
            delivered: subscribed,
        });
        if subscribed {
            vec![Action::Send(self.envelope.update_call(update))]
        } else {
            Vec::new()
        }
    }

    // ----- exit ----------------------------------------------------------------------------

    fn exit_if_done(&mut self) -> Option<Action> {
        let all_done = self.tasks.values().all(|task| task.phase == Phase::Done);
        let reason = match &self.mode {
            Mode::Normal if !self.tasks.is_empty() && all_done && self.pending.is_empty() => {
                ExitReason::Completed
            }
            Mode::ShuttingDown if all_done && self.pending.is_empty() => ExitReason::Shutdown,
            Mode::Abandoning(reason) if all_done => reason.clone(),
            _ => return None,
        };
        self.mode = Mode::Exited;
        Some(Action::Exit(reason))
    }
}

fn malformed(what: &str) -> Vec<Action> {
    log::warn!("ignoring a malformed event: {what}");
    Vec::new()
}

#[cfg(test)]
mod tests;
