//! The master's frameworks and their subscriptions: admission of calls after
//! the state-independent rules, SUBSCRIBE (new, failover, removed), event
//! delivery, heartbeats, disconnection and failover timeouts, TEARDOWN.
//! Offers are in `offers.rs`, tasks and status updates in `tasks.rs`.
//! No I/O beyond pushing bytes into subscription channels; time comes in as
//! `now` from the ticker in `mod.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{framework_info, Address, FrameworkId, FrameworkInfo, MasterInfo, TimeInfo};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use super::index::{DueQueue, Keyed, OfferBook};
use super::link::{AgentMessage, LinkSender};
use super::offers::OfferFilter;
use super::rules::{Checked, RequestHead};
use super::setup::{Acknowledgement, AgentSpec, KillRequest, Leadership, MasterSetup};
use super::task_table::{TaskKey, TaskTable};
use crate::common::codec::{frame_payload, ContentType};
use crate::common::http::Rejection;
use crate::common::uuid::{random_uuid, uuid_string};

/// An open SUBSCRIBE response stream.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream_id: String,
    content_type: ContentType,
    sender: UnboundedSender<Bytes>,
    next_heartbeat: Instant,
}

/// A framework the master knows (connected or within its failover timeout).
#[derive(Debug)]
pub(crate) struct Framework {
    pub(crate) id: String,
    pub(crate) info: FrameworkInfo,
    pub(crate) connection: Option<Connection>,
    /// While disconnected: when the framework is removed (`None`: never).
    pub(crate) failover_deadline: Option<Instant>,
    pub(crate) suppressed: bool,
    /// Refuse filters by agent id.
    pub(crate) filters: HashMap<String, Vec<OfferFilter>>,
}

impl Framework {
    /// The role offers are allocated to: the first of `roles` for a
    /// MULTI_ROLE framework, else the (deprecated) `role`, default `*`.
    pub(crate) fn role(&self) -> String {
        framework_role(&self.info)
    }

    /// Whether the framework declared `capability`.
    pub(crate) fn has_capability(&self, capability: framework_info::capability::Type) -> bool {
        self.info
            .capabilities
            .iter()
            .any(|c| c.r#type == Some(capability as i32))
    }
}

/// What the handler answers to an admitted call.
#[derive(Debug)]
pub(crate) enum Admission {
    /// 202, empty body.
    Accepted,
    /// 200 with an event stream in this encoding and this `Mesos-Stream-Id`.
    Stream {
        content_type: ContentType,
        stream_id: String,
        receiver: UnboundedReceiver<Bytes>,
    },
}

/// Everything the fake master knows and has received.
#[derive(Debug)]
pub(crate) struct MasterState {
    pub(crate) setup: MasterSetup,
    pub(crate) address: SocketAddr,
    pub(crate) master_id: String,
    pub(crate) leadership: Leadership,
    /// When the master started (`/state`'s `start_time`; it is elected then).
    pub(crate) start_time: std::time::SystemTime,
    pub(crate) frameworks: Vec<Framework>,
    pub(crate) removed_frameworks: Vec<String>,
    next_framework: u64,
    /// Registered agents, by id, in registration order.
    pub(crate) agents: Keyed<AgentSpec>,
    /// Agents marked unreachable, with the time they were (`slaves.unreachable`).
    pub(crate) unreachable_agents: Keyed<(AgentSpec, TimeInfo)>,
    /// Agents known from the registry after a failover that have not
    /// re-registered yet (`slaves.recovered`).
    pub(crate) recovered_agents: Keyed<AgentSpec>,
    /// When the recovered agents still missing are marked unreachable.
    pub(crate) reregister_deadline: Option<Instant>,
    /// Ids of agents marked gone (`slaves.gone`).
    pub(crate) gone_agents: HashSet<String>,
    /// Executors (agent, framework, executor id) that exited while their
    /// tasks are still known: no longer running, no longer holding resources.
    pub(crate) exited_executors: HashSet<(String, String, String)>,
    pub(crate) offers: OfferBook,
    /// When outstanding offers are rescinded (`--offer_timeout`), by offer
    /// id; entries of offers gone meanwhile are skipped when due.
    pub(crate) offer_deadlines: DueQueue<String>,
    pub(crate) next_offer: u64,
    pub(crate) next_allocation: Instant,
    pub(crate) tasks: TaskTable,
    /// When each task's update in delivery is retried; an entry counts
    /// only while it matches the task's `next_retry`.
    pub(crate) retries: DueQueue<TaskKey>,
    /// Without [`MasterSetup::record_history`]: each framework's removed
    /// tasks still remembered, oldest first (bounded by
    /// [`MasterSetup::max_completed_tasks_per_framework`]).
    pub(crate) completed: HashMap<String, VecDeque<TaskKey>>,
    pub(crate) calls: Vec<Call>,
    pub(crate) rejections: Vec<Rejection>,
    pub(crate) events: Vec<(String, Event)>,
    pub(crate) kills: Vec<KillRequest>,
    pub(crate) acknowledgements: Vec<Acknowledgement>,
    pub(crate) messages: Vec<call::Message>,
    pub(crate) shutdowns: Vec<call::Shutdown>,
    /// Agents that run their tasks themselves ([`super::link`]), by id.
    pub(crate) links: std::collections::HashMap<String, LinkSender>,
}

impl MasterState {
    pub(crate) fn new(setup: MasterSetup, address: SocketAddr, now: Instant) -> Self {
        let master_id = setup
            .master_id
            .clone()
            .unwrap_or_else(|| uuid_string(&random_uuid()));
        MasterState {
            setup,
            address,
            master_id,
            leadership: Leadership::Leading,
            start_time: std::time::SystemTime::now(),
            frameworks: Vec::new(),
            removed_frameworks: Vec::new(),
            next_framework: 0,
            agents: Keyed::default(),
            unreachable_agents: Keyed::default(),
            recovered_agents: Keyed::default(),
            reregister_deadline: None,
            gone_agents: HashSet::new(),
            exited_executors: HashSet::new(),
            offers: OfferBook::default(),
            offer_deadlines: DueQueue::default(),
            next_offer: 0,
            next_allocation: now,
            tasks: TaskTable::default(),
            retries: DueQueue::default(),
            completed: HashMap::new(),
            calls: Vec::new(),
            rejections: Vec::new(),
            events: Vec::new(),
            kills: Vec::new(),
            acknowledgements: Vec::new(),
            messages: Vec::new(),
            shutdowns: Vec::new(),
            links: std::collections::HashMap::new(),
        }
    }

    pub(crate) fn framework(&self, id: &str) -> Option<&Framework> {
        self.frameworks.iter().find(|f| f.id == id)
    }

    pub(crate) fn framework_mut(&mut self, id: &str) -> Option<&mut Framework> {
        self.frameworks.iter_mut().find(|f| f.id == id)
    }

    /// The state-dependent part of `Master::Http::scheduler`.
    pub(crate) fn admit(
        &mut self,
        call: &Call,
        checked: Checked,
        head: RequestHead<'_>,
        now: Instant,
    ) -> Result<Admission, Rejection> {
        let call_type = match checked {
            Checked::Subscribe(content_type) => {
                let mut subscribe = call.subscribe.clone().unwrap_or_default();
                // An authenticated framework without a principal gets its own.
                let info = &mut subscribe.framework_info;
                if let (Some(principal), None) = (head.principal, &info.principal) {
                    info.principal = Some(principal.to_owned());
                }
                return Ok(self.subscribe(subscribe, content_type, now));
            }
            Checked::Other(call_type) => call_type,
        };
        let stream_id = head.stream_id;
        let framework_id = call.framework_id.clone().unwrap_or_default().value;
        let Some(framework) = self.framework(&framework_id) else {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "Framework cannot be found",
            ));
        };
        if let Some(principal) = head.principal {
            let declared = framework.info.principal.as_deref().unwrap_or("");
            if principal != declared {
                let message = super::auth::principal_mismatch(principal, declared);
                return Err(Rejection::new(StatusCode::BAD_REQUEST, message));
            }
        }
        let Some(connection) = &framework.connection else {
            return Err(Rejection::new(
                StatusCode::FORBIDDEN,
                "Framework is not subscribed",
            ));
        };
        let Some(stream_id) = stream_id else {
            let message = "All non-subscribe calls should include the 'Mesos-Stream-Id' header";
            return Err(Rejection::new(StatusCode::BAD_REQUEST, message));
        };
        if stream_id != connection.stream_id.as_bytes() {
            let message = format!(
                "The stream ID '{}' included in this request didn't match the stream ID \
                 currently associated with framework ID {framework_id}",
                String::from_utf8_lossy(stream_id)
            );
            return Err(Rejection::new(StatusCode::BAD_REQUEST, message));
        }
        self.dispatch(&framework_id, call, call_type, now)
    }

    fn dispatch(
        &mut self,
        framework_id: &str,
        call: &Call,
        call_type: call::Type,
        now: Instant,
    ) -> Result<Admission, Rejection> {
        match call_type {
            call::Type::Teardown => self.remove_framework(framework_id),
            call::Type::Accept => {
                if let Some(accept) = &call.accept {
                    self.accept(framework_id, accept, now);
                }
            }
            call::Type::Decline => {
                if let Some(decline) = &call.decline {
                    self.decline(framework_id, decline, now);
                }
            }
            call::Type::Revive => {
                let roles = call.revive.clone().unwrap_or_default().roles;
                self.revive(framework_id, &roles, now);
            }
            call::Type::Suppress => {
                let roles = call.suppress.clone().unwrap_or_default().roles;
                self.suppress(framework_id, &roles);
            }
            call::Type::Kill => {
                if let Some(kill) = &call.kill {
                    self.kill(framework_id, kill, now);
                }
            }
            call::Type::Acknowledge => {
                if let Some(acknowledge) = &call.acknowledge {
                    self.acknowledge(framework_id, acknowledge, now);
                }
            }
            call::Type::Reconcile => {
                if let Some(reconcile) = &call.reconcile {
                    self.reconcile(framework_id, reconcile);
                }
            }
            call::Type::Message => {
                if let Some(message) = &call.message {
                    self.to_agent(
                        &message.agent_id.value,
                        AgentMessage::FrameworkMessage {
                            framework_id: framework_id.to_owned(),
                            executor_id: message.executor_id.value.clone(),
                            data: message.data.clone(),
                        },
                    );
                }
                if self.setup.record_history {
                    self.messages.extend(call.message.clone());
                }
            }
            call::Type::Shutdown => {
                if let Some(shutdown) = &call.shutdown {
                    self.to_agent(
                        &shutdown.agent_id.value,
                        AgentMessage::ShutdownExecutor {
                            framework_id: framework_id.to_owned(),
                            executor_id: shutdown.executor_id.value.clone(),
                        },
                    );
                }
                if self.setup.record_history {
                    self.shutdowns.extend(call.shutdown.clone());
                }
            }
            // The default allocator ignores requests; there are no inverse offers.
            call::Type::Request
            | call::Type::AcceptInverseOffers
            | call::Type::DeclineInverseOffers => {}
            call::Type::Unknown
            | call::Type::Subscribe
            | call::Type::AcknowledgeOperationStatus
            | call::Type::ReconcileOperations
            | call::Type::UpdateFramework => {
                return Err(Rejection::new(StatusCode::NOT_IMPLEMENTED, ""));
            }
        }
        Ok(Admission::Accepted)
    }

    /// `Master::subscribe`: a new framework, a failover of a known one, or an
    /// ERROR for an invalid or removed one.
    fn subscribe(
        &mut self,
        subscribe: call::Subscribe,
        content_type: ContentType,
        now: Instant,
    ) -> Admission {
        let (sender, receiver) = unbounded_channel();
        let stream_id = uuid_string(&random_uuid());
        let stream = Admission::Stream {
            content_type,
            stream_id: stream_id.clone(),
            receiver,
        };
        let mut info = subscribe.framework_info;
        let requested_id = info.id.clone().map(|id| id.value);
        let refusal = validate_framework_info(&info).err().or_else(|| {
            requested_id
                .as_ref()
                .filter(|id| self.removed_frameworks.contains(id))
                .map(|_| "Framework has been removed".to_owned())
        });
        if let Some(message) = refusal {
            // Sent, then the stream ends as the sender drops.
            let _ = send_on(&sender, content_type, &error_event(&message));
            return stream;
        }
        let id = requested_id.unwrap_or_else(|| self.new_framework_id());
        info.id = Some(FrameworkId { value: id.clone() });
        let connection = Connection {
            stream_id,
            content_type,
            sender,
            next_heartbeat: now + self.setup.heartbeat_interval,
        };
        let suppressed = subscribe.suppressed_roles.contains(&framework_role(&info));
        if self.framework(&id).is_some() {
            self.fail_over(&id, info, connection, suppressed);
        } else {
            self.frameworks.push(Framework {
                id: id.clone(),
                info,
                connection: Some(connection),
                failover_deadline: None,
                suppressed,
                filters: HashMap::new(),
            });
        }
        let subscribed = Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId { value: id.clone() },
                heartbeat_interval_seconds: Some(self.setup.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.master_info()),
            }),
            ..Default::default()
        };
        self.send_event(&id, subscribed);
        // The heartbeater sends its first HEARTBEAT as soon as it starts.
        self.send_event(&id, simple_event(event::Type::Heartbeat));
        self.allocate(now);
        stream
    }

    /// `Master::failoverFramework`: the old stream gets ERROR and is closed,
    /// the framework's offers are removed (they are re-offered), its tasks
    /// stay.
    fn fail_over(
        &mut self,
        id: &str,
        info: FrameworkInfo,
        connection: Connection,
        suppressed: bool,
    ) {
        let failed_over = error_event("Framework failed over");
        self.send_event(id, failed_over);
        self.remove_offers_of(id);
        if let Some(framework) = self.framework_mut(id) {
            framework.info = info;
            framework.connection = Some(connection);
            framework.failover_deadline = None;
            framework.suppressed = suppressed;
        }
    }

    fn new_framework_id(&mut self) -> String {
        let id = format!("{}-{:04}", self.master_id, self.next_framework);
        self.next_framework += 1;
        id
    }

    /// This master's `MasterInfo` (IPv4 `ip` in network byte order).
    pub(crate) fn master_info(&self) -> MasterInfo {
        let ip = match self.address.ip() {
            std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
            std::net::IpAddr::V6(_) => 0,
        };
        MasterInfo {
            id: self.master_id.clone(),
            ip,
            port: u32::from(self.address.port()),
            pid: Some(format!("master@{}", self.address)),
            hostname: Some(self.setup.hostname.clone()),
            version: Some(self.setup.version.clone()),
            address: Some(Address {
                hostname: Some(self.setup.hostname.clone()),
                ip: Some(self.address.ip().to_string()),
                port: i32::from(self.address.port()),
            }),
        }
    }

    /// Sends `event` to framework `id` if connected; a closed stream
    /// disconnects the framework. Every event sent is recorded (with
    /// [`MasterSetup::record_history`]).
    pub(crate) fn send_event(&mut self, id: &str, event: Event) -> bool {
        let Some(framework) = self.framework_mut(id) else {
            return false;
        };
        let Some(connection) = &framework.connection else {
            return false;
        };
        if send_on(&connection.sender, connection.content_type, &event).is_err() {
            return false;
        }
        if self.setup.record_history {
            self.events.push((id.to_owned(), event));
        }
        true
    }

    /// Periodic work: closed streams, heartbeats, failover timeouts,
    /// status update retries and allocation.
    pub(crate) fn tick(&mut self, now: Instant) {
        let interval = self.setup.heartbeat_interval;
        let mut closed = Vec::new();
        let mut heartbeat_due = Vec::new();
        let mut expired = Vec::new();
        for framework in &mut self.frameworks {
            match &mut framework.connection {
                Some(connection) if connection.sender.is_closed() => {
                    closed.push(framework.id.clone())
                }
                Some(connection) if connection.next_heartbeat <= now => {
                    connection.next_heartbeat = now + interval;
                    heartbeat_due.push(framework.id.clone());
                }
                Some(_) => {}
                None if framework.failover_deadline.is_some_and(|d| d <= now) => {
                    expired.push(framework.id.clone());
                }
                None => {}
            }
        }
        for id in closed {
            self.disconnect(&id, now);
        }
        for id in heartbeat_due {
            self.send_event(&id, simple_event(event::Type::Heartbeat));
        }
        for id in expired {
            self.remove_framework(&id);
        }
        self.retry_updates(now);
        self.expire_offers(now);
        if self.reregister_deadline.is_some_and(|at| at <= now) {
            self.recovered_agents_timeout();
        }
        if self.next_allocation <= now {
            self.allocate(now);
        }
    }

    /// The stream of framework `id` ended (or was dropped): the framework is
    /// disconnected, its offers are removed and its failover timeout starts.
    pub(crate) fn disconnect(&mut self, id: &str, now: Instant) {
        self.remove_offers_of(id);
        if let Some(framework) = self.framework_mut(id) {
            // Dropping the connection's sender ends the response body.
            framework.connection = None;
            let timeout = framework.info.failover_timeout.unwrap_or(0.0);
            let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
            // A timeout too large for the clock never expires.
            framework.failover_deadline = now.checked_add(timeout);
        }
    }

    /// `Master::removeFramework` (TEARDOWN or failover timeout): offers go,
    /// tasks are killed and forgotten, the stream closes, and the id can no
    /// longer subscribe.
    pub(crate) fn remove_framework(&mut self, id: &str) {
        self.remove_offers_of(id);
        // `Master::removeFramework` tells every agent running its tasks.
        let mut agents: Vec<String> = self
            .tasks
            .values()
            .filter(|t| t.framework_id == id && !t.removed)
            .map(|t| t.agent_id.clone())
            .collect();
        agents.sort();
        agents.dedup();
        for agent_id in agents {
            let framework_id = id.to_owned();
            self.to_agent(&agent_id, AgentMessage::ShutdownFramework { framework_id });
        }
        self.kill_tasks_of_removed_framework(id);
        self.frameworks.retain(|f| f.id != id);
        self.removed_frameworks.push(id.to_owned());
    }

    /// Sends `message` to the agent if it is attached and registered (the
    /// master does not talk to agents it holds unreachable).
    pub(crate) fn to_agent(&self, agent_id: &str, message: AgentMessage) {
        if !self.agents.contains(agent_id) {
            return;
        }
        if let Some(link) = self.links.get(agent_id) {
            link.send(message);
        }
    }

    /// Whether the agent runs its tasks itself (attached through a link).
    pub(crate) fn is_linked(&self, agent_id: &str) -> bool {
        self.links.contains_key(agent_id)
    }

    /// Drops every subscription stream (the master loses leadership and,
    /// as a real master does, its process ends).
    pub(crate) fn drop_all_connections(&mut self, now: Instant) {
        let ids: Vec<String> = self.frameworks.iter().map(|f| f.id.clone()).collect();
        for id in ids {
            if self.framework(&id).is_some_and(|f| f.connection.is_some()) {
                self.disconnect(&id, now);
            }
        }
    }
}

/// The role offers are allocated to: the first of `roles` (MULTI_ROLE),
/// else the deprecated `role` (which single-role frameworks still use),
/// default `*`.
#[allow(deprecated)]
fn framework_role(info: &FrameworkInfo) -> String {
    info.roles
        .first()
        .cloned()
        .or_else(|| info.role.clone())
        .unwrap_or_else(|| "*".to_owned())
}

/// `validation::framework::validate`, as far as a one-shot framework can
/// trip it: role fields consistent with MULTI_ROLE, valid id.
#[allow(deprecated)] // `role` is what MULTI_ROLE frameworks must not set
fn validate_framework_info(info: &FrameworkInfo) -> Result<(), String> {
    let multi_role = info
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(framework_info::capability::Type::MultiRole as i32));
    if !multi_role && !info.roles.is_empty() {
        return Err(
            "'FrameworkInfo.roles' is set but the framework does not have the \
                    MULTI_ROLE capability"
                .to_owned(),
        );
    }
    if multi_role && info.role.is_some() {
        return Err(
            "'FrameworkInfo.role' must not be set when the framework has the \
                    MULTI_ROLE capability"
                .to_owned(),
        );
    }
    if let Some(id) = &info.id {
        super::validation::validate_id(&id.value)
            .map_err(|reason| format!("'FrameworkInfo.id' is invalid: {reason}"))?;
    }
    Ok(())
}

fn send_on(
    sender: &UnboundedSender<Bytes>,
    content_type: ContentType,
    event: &Event,
) -> Result<(), ()> {
    // Encoding generated messages cannot fail; a failure drops the event.
    let record = frame_payload(event, content_type).map_err(|_| ())?;
    sender.send(record).map_err(|_| ())
}

pub(crate) fn simple_event(event_type: event::Type) -> Event {
    Event {
        r#type: Some(event_type as i32),
        ..Default::default()
    }
}

pub(crate) fn error_event(message: &str) -> Event {
    Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(event::Error {
            message: message.to_owned(),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_without_multi_role_are_invalid() {
        let info = FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            roles: vec!["a".into()],
            ..Default::default()
        };
        assert!(validate_framework_info(&info).is_err());
    }
}
