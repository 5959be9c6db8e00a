//! The agent's view of its one framework and executor: lifecycle (up, down,
//! recovering), executor phase, the subscription stream, tasks and the
//! record of everything received. No I/O beyond pushing bytes into the
//! subscription's channel; the HTTP server and the timers live in
//! `server.rs` and `mod.rs`.

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::StatusCode;
use mesos_client::is_terminal;
use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::{task_status, TaskId, TaskInfo, TaskState, TaskStatus};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::codec::{event_type_name, frame_event, ContentType};
use super::rules::{CallKind, Rejection};
use super::setup::AgentSetup;
use crate::error::HarnessError;

/// Whether the agent process is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Serving normally.
    Up,
    /// Process gone: nothing listens.
    Down,
    /// Restarted with a checkpointed executor that has not re-subscribed yet:
    /// non-SUBSCRIBE calls get 503.
    Recovering,
}

impl Lifecycle {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lifecycle::Up => "up",
            Lifecycle::Down => "down",
            Lifecycle::Recovering => "recovering",
        }
    }
}

/// The agent's `Executor::state`, plus removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutorPhase {
    /// Launched, never subscribed: non-SUBSCRIBE calls get 403, tasks queue.
    Registering,
    /// Subscribed at least once.
    Running,
    /// SHUTDOWN sent: a SUBSCRIBE is answered with SHUTDOWN and closed.
    Terminating,
    /// Destroyed or never recovered: calls get 400 `Executor cannot be found`.
    Removed,
}

/// The open SUBSCRIBE response stream.
#[derive(Debug)]
struct Subscription {
    id: u64,
    content_type: ContentType,
    sender: UnboundedSender<Bytes>,
    subscribe: call::Subscribe,
}

/// A task the agent has sent to the executor, with the state it believes.
#[derive(Debug, Clone)]
struct TrackedTask {
    task_id: TaskId,
    /// Latest state from an update; `None` while STAGING.
    state: Option<TaskState>,
}

/// What the handler should answer to an admitted call.
#[derive(Debug)]
pub(crate) enum Admission {
    /// 202, empty body.
    Accepted,
    /// 200 with an event stream in this encoding; `subscription_id` is set
    /// when the stream is the executor's live subscription (heartbeats go
    /// there), unset for a SHUTDOWN-and-close answer.
    Stream {
        content_type: ContentType,
        receiver: UnboundedReceiver<Bytes>,
        subscription_id: Option<u64>,
    },
}

/// Everything the fake agent knows and has received.
#[derive(Debug)]
pub(crate) struct AgentState {
    pub(crate) setup: AgentSetup,
    pub(crate) address: SocketAddr,
    pub(crate) lifecycle: Lifecycle,
    framework_known: bool,
    executor: ExecutorPhase,
    subscription: Option<Subscription>,
    next_subscription_id: u64,
    /// Bumped by every restart, so a stale re-registration timer is ignored.
    pub(crate) restart_generation: u64,
    queued_tasks: Vec<TaskInfo>,
    tasks: Vec<TrackedTask>,
    /// (task id, uuid) of updates received and not yet acknowledged.
    pub(crate) unacknowledged: Vec<(TaskId, Vec<u8>)>,
    pub(crate) calls: Vec<Call>,
    pub(crate) updates: Vec<TaskStatus>,
    pub(crate) agent_updates: Vec<TaskStatus>,
    /// Every update processed, in order: UPDATE calls and re-subscriptions'
    /// unacknowledged updates (an update may appear more than once).
    pub(crate) processed: Vec<TaskStatus>,
    pub(crate) rejections: Vec<Rejection>,
}

impl AgentState {
    pub(crate) fn new(setup: AgentSetup, address: SocketAddr) -> Self {
        AgentState {
            setup,
            address,
            lifecycle: Lifecycle::Up,
            framework_known: true,
            executor: ExecutorPhase::Registering,
            subscription: None,
            next_subscription_id: 1,
            restart_generation: 0,
            queued_tasks: Vec::new(),
            tasks: Vec::new(),
            unacknowledged: Vec::new(),
            calls: Vec::new(),
            updates: Vec::new(),
            agent_updates: Vec::new(),
            processed: Vec::new(),
            rejections: Vec::new(),
        }
    }

    /// The SUBSCRIBE of the live subscription, if the stream is still open.
    pub(crate) fn live_subscribe(&self) -> Option<&call::Subscribe> {
        self.subscription
            .as_ref()
            .filter(|s| !s.sender.is_closed())
            .map(|s| &s.subscribe)
    }

    /// The state-dependent part of `Http::executor`, after validation.
    pub(crate) fn admit(&mut self, call: &Call, kind: CallKind) -> Result<Admission, Rejection> {
        if kind == CallKind::Heartbeat {
            // Answered before any lookup: ids may be dummies.
            return Ok(Admission::Accepted);
        }
        let subscribing = matches!(kind, CallKind::Subscribe(_));
        if !subscribing && self.lifecycle == Lifecycle::Recovering {
            let message = "Agent has not finished recovery";
            return Err(Rejection::new(StatusCode::SERVICE_UNAVAILABLE, message));
        }
        if !self.framework_known || call.framework_id.value != self.setup.framework_id {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "Framework cannot be found",
            ));
        }
        if self.executor == ExecutorPhase::Removed
            || call.executor_id.value != self.setup.executor_id
        {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "Executor cannot be found",
            ));
        }
        if self.executor == ExecutorPhase::Registering && !subscribing {
            return Err(Rejection::new(
                StatusCode::FORBIDDEN,
                "Executor is not subscribed",
            ));
        }
        match kind {
            CallKind::Subscribe(content_type) => {
                let subscribe = call.subscribe.clone().unwrap_or_default();
                self.subscribe(subscribe, content_type)
                    .map_err(|e| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
            }
            CallKind::Update => {
                if let Some(update) = &call.update {
                    self.process_update(&update.status);
                    self.updates.push(update.status.clone());
                }
                Ok(Admission::Accepted)
            }
            CallKind::Message | CallKind::Heartbeat => Ok(Admission::Accepted),
            CallKind::Unknown => Err(Rejection::new(StatusCode::NOT_IMPLEMENTED, "")),
        }
    }

    /// `Slave::subscribe`: replaces any open subscription, sends SUBSCRIBED,
    /// then queued LAUNCHes (first subscription) or reconciles the executor's
    /// unacknowledged tasks and updates (re-subscription).
    fn subscribe(
        &mut self,
        subscribe: call::Subscribe,
        content_type: ContentType,
    ) -> Result<Admission, HarnessError> {
        let (sender, receiver) = unbounded_channel();
        if self.executor == ExecutorPhase::Terminating {
            // Answered with SHUTDOWN and closed (the sender drops here).
            let _ = sender.send(frame_event(
                &simple_event(event::Type::Shutdown),
                content_type,
            )?);
            return Ok(Admission::Stream {
                content_type,
                receiver,
                subscription_id: None,
            });
        }
        let subscribed = Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(self.setup.subscribed(self.address)),
            ..Default::default()
        };
        let _ = sender.send(frame_event(&subscribed, content_type)?);
        // Dropping the old sender ends the old stream cleanly.
        self.subscription = None;
        let id = self.next_subscription_id;
        self.next_subscription_id += 1;
        if self.executor == ExecutorPhase::Registering {
            for task in std::mem::take(&mut self.queued_tasks) {
                let _ = sender.send(frame_event(&launch_event(&task), content_type)?);
                self.track_launched(&task);
            }
        } else {
            self.reconcile_resubscription(&subscribe);
        }
        self.executor = ExecutorPhase::Running;
        self.lifecycle = Lifecycle::Up;
        self.subscription = Some(Subscription {
            id,
            content_type,
            sender,
            subscribe,
        });
        Ok(Admission::Stream {
            content_type,
            receiver,
            subscription_id: Some(id),
        })
    }

    /// Tasks the agent believes STAGING that the executor does not list are
    /// lost (REASON_AGENT_RESTARTED); the executor's unacknowledged updates
    /// are processed again (duplicates are fine).
    fn reconcile_resubscription(&mut self, subscribe: &call::Subscribe) {
        let known: Vec<&TaskId> = subscribe
            .unacknowledged_tasks
            .iter()
            .map(|t| &t.task_id)
            .collect();
        let lost: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|t| t.state.is_none() && !known.contains(&&t.task_id))
            .map(|t| t.task_id.clone())
            .collect();
        for task_id in lost {
            self.agent_update(
                task_id,
                "Task launched during agent restart",
                task_status::Reason::AgentRestarted,
            );
        }
        for update in &subscribe.unacknowledged_updates {
            self.process_update(&update.status);
        }
    }

    /// The agent's bookkeeping for one executor update: the task's state
    /// moves on and the update awaits acknowledgement.
    fn process_update(&mut self, status: &TaskStatus) {
        self.processed.push(status.clone());
        let state = TaskState::try_from(status.state).ok();
        if let Some(task) = self.tasks.iter_mut().find(|t| t.task_id == status.task_id) {
            task.state = state;
        }
        if let Some(uuid) = &status.uuid {
            let entry = (status.task_id.clone(), uuid.clone());
            if !self.unacknowledged.contains(&entry) {
                self.unacknowledged.push(entry);
            }
        }
    }

    /// Records a status update the agent itself generates (SOURCE_AGENT,
    /// TASK_LOST, no uuid needed from the executor).
    fn agent_update(&mut self, task_id: TaskId, message: &str, reason: task_status::Reason) {
        if let Some(task) = self.tasks.iter_mut().find(|t| t.task_id == task_id) {
            task.state = Some(TaskState::TaskLost);
        }
        self.agent_updates.push(TaskStatus {
            task_id,
            state: TaskState::TaskLost as i32,
            message: Some(message.to_owned()),
            source: Some(task_status::Source::Agent as i32),
            reason: Some(reason as i32),
            ..Default::default()
        });
    }

    fn track_launched(&mut self, task: &TaskInfo) {
        self.tasks.push(TrackedTask {
            task_id: task.task_id.clone(),
            state: None,
        });
    }

    /// Sends an event on the live subscription.
    pub(crate) fn send(&mut self, event: &Event) -> Result<(), HarnessError> {
        let not_subscribed = || HarnessError::NotSubscribed {
            event_type: event_type_name(event),
        };
        let subscription = self.subscription.as_ref().ok_or_else(not_subscribed)?;
        let record = frame_event(event, subscription.content_type)?;
        if subscription.sender.send(record).is_err() {
            // The executor closed the stream.
            self.subscription = None;
            return Err(not_subscribed());
        }
        Ok(())
    }

    /// LAUNCH: queued until the first subscription, sent right away after it.
    pub(crate) fn launch(&mut self, task: TaskInfo) -> Result<(), HarnessError> {
        if self.executor == ExecutorPhase::Registering {
            self.queued_tasks.push(task);
            return Ok(());
        }
        self.send(&launch_event(&task))?;
        self.track_launched(&task);
        Ok(())
    }

    /// Takes `task_id` out of the LAUNCHes queued for the first
    /// subscription; false if it is not queued there.
    pub(crate) fn remove_queued(&mut self, task_id: &TaskId) -> bool {
        let before = self.queued_tasks.len();
        self.queued_tasks.retain(|t| t.task_id != *task_id);
        self.queued_tasks.len() != before
    }

    /// ACKNOWLEDGED for an update the agent received.
    pub(crate) fn acknowledge(
        &mut self,
        task_id: TaskId,
        uuid: Vec<u8>,
    ) -> Result<(), HarnessError> {
        let entry = (task_id, uuid);
        let Some(index) = self.unacknowledged.iter().position(|e| *e == entry) else {
            return Err(HarnessError::UnknownUpdate {
                task_id: entry.0.value,
                uuid_hex: entry.1.iter().map(|b| format!("{b:02x}")).collect(),
            });
        };
        let (task_id, uuid) = entry;
        self.send(&Event {
            r#type: Some(event::Type::Acknowledged as i32),
            acknowledged: Some(event::Acknowledged { task_id, uuid }),
            ..Default::default()
        })?;
        self.unacknowledged.remove(index);
        Ok(())
    }

    /// SHUTDOWN: sent if subscribed; the executor is terminating either way.
    pub(crate) fn shutdown(&mut self) -> Result<(), HarnessError> {
        let sent = match self.send(&simple_event(event::Type::Shutdown)) {
            Err(HarnessError::NotSubscribed { .. }) => Ok(()),
            other => other,
        };
        self.executor = ExecutorPhase::Terminating;
        sent
    }

    /// One HEARTBEAT on subscription `id`; false once it is no longer live.
    pub(crate) fn heartbeat(&mut self, id: u64) -> bool {
        if self.subscription.as_ref().map(|s| s.id) != Some(id) {
            return false;
        }
        self.send(&simple_event(event::Type::Heartbeat)).is_ok()
    }

    /// The agent process dies: the stream goes with it.
    pub(crate) fn go_down(&mut self) {
        self.lifecycle = Lifecycle::Down;
        self.subscription = None;
    }

    /// The agent process starts again. A checkpointing framework's executor
    /// is recovered and awaited; a non-checkpointing one is forgotten.
    pub(crate) fn come_up(&mut self) {
        self.restart_generation += 1;
        if !self.setup.checkpoint {
            self.framework_known = false;
            self.executor = ExecutorPhase::Removed;
            self.lifecycle = Lifecycle::Up;
        } else if self.executor == ExecutorPhase::Running {
            self.lifecycle = Lifecycle::Recovering;
        } else {
            self.lifecycle = Lifecycle::Up;
        }
    }

    /// The re-registration window of restart `generation` has passed: a
    /// still-missing executor is destroyed and its unfinished tasks are lost.
    pub(crate) fn reregistration_timed_out(&mut self, generation: u64) {
        if generation != self.restart_generation || self.lifecycle != Lifecycle::Recovering {
            return;
        }
        self.lifecycle = Lifecycle::Up;
        self.executor = ExecutorPhase::Removed;
        let unfinished: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|t| !t.state.is_some_and(is_terminal))
            .map(|t| t.task_id.clone())
            .collect();
        for task_id in unfinished {
            self.agent_update(
                task_id,
                "Executor did not re-register within the re-registration timeout",
                task_status::Reason::ExecutorReregistrationTimeout,
            );
        }
    }
}

pub(crate) fn simple_event(event_type: event::Type) -> Event {
    Event {
        r#type: Some(event_type as i32),
        ..Default::default()
    }
}

fn launch_event(task: &TaskInfo) -> Event {
    Event {
        r#type: Some(event::Type::Launch as i32),
        launch: Some(event::Launch { task: task.clone() }),
        ..Default::default()
    }
}
