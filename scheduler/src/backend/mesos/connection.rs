//! The subscription to the master: SUBSCRIBE to the leader (the configured master, or the one
//! ZooKeeper elected; a new election ends the subscription), the event stream, resubscription
//! with jittered back-off (at most 15 s), and what each event means for the backend and the
//! core.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mesos_client::Backoff;
use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::{MasterInfo, Offer, TaskState as MesosState, TaskStatus};

use super::matching::placements_on;
use super::tokens::{framework_token, status_token};
use super::{AgentAddress, HeldOffer, MesosBackend};
use crate::backend::{BackendEvent, RunEnd, RunId, RunStatus};
use crate::mesos::calls;
use crate::mesos::client::{auth_trouble, tls_trouble, Session, Subscription};
use crate::mesos::master_url::HttpMaster;
use crate::mesos::offers::Leftovers;
use crate::mesos::updates::read_status;
use crate::mesos::MesosError;
use crate::task::TaskState;

/// First delay before resubscribing.
const BACKOFF_INITIAL: Duration = Duration::from_millis(500);

/// Longest delay before resubscribing.
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// Why a SUBSCRIBE failed, a TLS failure or refused credentials first in words (`principal`:
/// the one of `credential_file`, if any).
fn subscribe_failed(error: &MesosError, principal: Option<&str>) -> String {
    let text = error.to_string();
    let words = auth_trouble(error, principal).or_else(|| tls_trouble(&text).map(str::to_owned));
    match words {
        Some(words) => format!("subscribing to the Mesos master: {words} ({text})"),
        None => format!("subscribing to the Mesos master: {text}"),
    }
}

impl MesosBackend {
    /// Subscribes, follows the stream, and subscribes again whenever it ends; forever.
    pub(super) async fn connection_loop(&self) {
        let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
        loop {
            let leader = self.inner.client.leader().await;
            let framework_id = self.state().framework_id.clone();
            let call = calls::subscribe(&self.inner.config.framework, framework_id.as_deref());
            let reason = match self.inner.client.subscribe_to(&leader, &call).await {
                Ok(mut subscription) => {
                    backoff.reset();
                    self.follow_leader(&leader, &mut subscription).await
                }
                Err(error) => {
                    let principal = self.inner.config.framework.principal.as_deref();
                    subscribe_failed(&error, principal)
                }
            };
            self.disconnected(reason);
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = self.inner.reconnect.notified() => {}
            }
        }
    }

    /// Follows the stream while `leader` leads (ZooKeeper may elect another: the stream on
    /// the old leader is then dropped); returns why it ended.
    async fn follow_leader(&self, leader: &HttpMaster, subscription: &mut Subscription) -> String {
        tokio::select! {
            reason = self.follow(subscription) => reason,
            () = self.inner.client.leader_changed(leader) => format!(
                "the Mesos master {} no longer leads",
                leader.base_url()
            ),
        }
    }

    /// Reads events until the stream ends; returns why it ended.
    async fn follow(&self, subscription: &mut Subscription) -> String {
        loop {
            let event = match subscription.next_event().await {
                Ok(event) => event,
                Err(error) => {
                    return format!("the subscription to the Mesos master broke: {error}")
                }
            };
            if let Some(reason) = self.on_event(event, subscription.session()) {
                return reason;
            }
        }
    }

    /// Handles one event; `Some(reason)` ends the subscription.
    fn on_event(&self, event: Event, session: &Session) -> Option<String> {
        match event
            .r#type
            .and_then(|kind| event::Type::try_from(kind).ok())
        {
            Some(event::Type::Subscribed) => {
                let subscribed = event.subscribed?;
                let info = subscribed.master_info.as_ref();
                self.subscribed(subscribed.framework_id.value.clone(), info, session);
            }
            Some(event::Type::Offers) => {
                let offers = event.offers.map(|offers| offers.offers).unwrap_or_default();
                self.offered(offers);
            }
            Some(event::Type::Rescind) => {
                if let Some(rescind) = event.rescind {
                    self.forget_offers(HashSet::from([rescind.offer_id.value]));
                }
            }
            Some(event::Type::Update) => {
                if let Some(update) = event.update {
                    self.updated(update.status);
                }
            }
            Some(event::Type::Error) => {
                let message = event.error.map(|error| error.message).unwrap_or_default();
                return Some(self.refused(message));
            }
            Some(event::Type::Failure) => {
                if let Some(failure) = event.failure {
                    let agent = failure.agent_id.map(|agent| agent.value);
                    let executor = failure.executor_id.map(|executor| executor.value);
                    tracing::warn!(?agent, ?executor, status = ?failure.status, "Mesos reports a failure");
                }
            }
            _ => {}
        }
        None
    }

    fn subscribed(&self, framework_id: String, info: Option<&MasterInfo>, session: &Session) {
        let metrics = &self.inner.metrics;
        metrics
            .mesos_subscriptions
            .get_or_create(&crate::metrics::OutcomeLabels {
                outcome: "subscribed".to_owned(),
            })
            .inc();
        metrics.mesos_connected.set(1);
        tracing::info!(
            framework_id,
            master = session.endpoint(),
            "subscribed to the Mesos master"
        );
        let mut state = self.state();
        if state.view.subscribed(session.endpoint(), info) {
            metrics.mesos_reconnects.inc();
        }
        let same = state.framework_id.as_deref() == Some(framework_id.as_str());
        state.id_stored = same && state.id_stored;
        state.framework_id = Some(framework_id.clone());
        state.session = Some(session.clone());
        state.suppressed = false;
        self.start_reconciliation(&mut state);
        if !state.demand.is_empty() {
            state.last_revive = None;
            self.steer_offers(&mut state, true);
        }
        drop(state);
        if let Some(sink) = self.sink() {
            sink.send(BackendEvent::Connected {
                ack: Some(framework_token(&framework_id)),
                framework_id,
            });
        }
    }

    fn offered(&self, offers: Vec<Offer>) {
        self.inner
            .metrics
            .mesos_offers("received", offers.len() as u64);
        let role = self.inner.config.framework.role.clone();
        let placements = {
            let mut state = self.state();
            for offer in offers {
                let mut agent_url = None;
                if let Some(url) = &offer.url {
                    let host = url
                        .address
                        .hostname
                        .clone()
                        .or_else(|| url.address.ip.clone())
                        .unwrap_or_else(|| offer.hostname.clone());
                    let port = u16::try_from(url.address.port).ok();
                    let address = AgentAddress {
                        url: format!("{}://{host}:{}", url.scheme, url.address.port),
                        ip: url.address.ip.clone(),
                        port,
                    };
                    agent_url = Some(address.url.clone());
                    state.agents.insert(offer.agent_id.value.clone(), address);
                }
                state.view.offered(&offer, agent_url);
                state.offers.push(HeldOffer {
                    leftovers: Leftovers::new(&offer, &role),
                    outstanding: HashSet::new(),
                    ready: Vec::new(),
                    received: std::time::Instant::now(),
                });
            }
            self.match_offers(&mut state)
        };
        if let Some(sink) = self.sink() {
            for placement in placements {
                sink.send(BackendEvent::Placed(placement));
            }
        }
    }

    /// Offers that can no longer be used: their placements are forgotten (their launch
    /// reports that it did not happen).
    fn forget_offers(&self, offer_ids: HashSet<String>) {
        let mut state = self.state();
        for run in placements_on(&state, &offer_ids) {
            state.unplace(&run);
        }
        state
            .offers
            .retain(|held| !offer_ids.contains(held.leftovers.offer_id()));
    }

    fn updated(&self, status: TaskStatus) {
        let received = Instant::now();
        let state = MesosState::try_from(status.state).map_or_else(
            |_| "UNKNOWN".to_owned(),
            |state| state.as_str_name().to_owned(),
        );
        self.inner
            .metrics
            .mesos_updates
            .get_or_create(&crate::metrics::StateLabels { state })
            .inc();
        let change = match read_status(&status) {
            Ok(change) => change,
            Err(error) => {
                tracing::warn!("an update the backend cannot read: {error}");
                return self.acknowledge_now(&status, received);
            }
        };
        let (Some(task), Some(attempt)) = (change.task_id.clone(), change.attempt) else {
            tracing::info!(
                task = change.mesos_task_id,
                "an update of a task that is not ours"
            );
            return self.acknowledge_now(&status, received);
        };
        let run = RunId::new(task, attempt);
        let name = run.name();
        let known = {
            let mut state = self.state();
            if state.unanswered.remove(&name) {
                let left = state.unanswered.len() as i64;
                self.inner.metrics.mesos_reconcile_unanswered.set(left);
            }
            state.launched.contains_key(&name)
        };
        let sink = self.sink();
        if !known {
            if change.state.is_some_and(|state| !state.is_terminal()) {
                if let Some(sink) = sink {
                    sink.send(BackendEvent::UnknownRun { run });
                }
            }
            return self.acknowledge_now(&status, received);
        }
        let token = match (&change.agent_id, &change.uuid) {
            (Some(agent), Some(uuid)) => {
                Some(status_token(agent, &name, uuid, self.inner.epoch, received))
            }
            _ => None,
        };
        let reported = match change.state {
            Some(TaskState::Running) => {
                if let Some(run) = self.state().launched.get_mut(&name) {
                    run.running = true;
                }
                let started_at = change
                    .timestamp
                    .unwrap_or_else(time::OffsetDateTime::now_utc);
                RunStatus::Running { started_at }
            }
            Some(state) if state.is_terminal() => {
                let started = {
                    let removed = self.state().launched.remove(&name);
                    removed.is_some_and(|run| run.running)
                };
                match change.reported_end(started) {
                    Some(end) => RunStatus::Ended(RunEnd::Reported(end)),
                    None => return self.acknowledge_now(&status, received),
                }
            }
            // The agent cannot be reached: the run may come back.
            None if change.mesos_state == MesosState::TaskUnreachable => {
                self.acknowledge_now(&status, received);
                let reason = change
                    .reason
                    .clone()
                    .unwrap_or_else(|| "TASK_UNREACHABLE".to_owned());
                if let Some(sink) = sink {
                    sink.status(run, RunStatus::Unreachable { reason }, None);
                }
                return;
            }
            // Staging, starting, killing: nothing the core records.
            _ => return self.acknowledge_now(&status, received),
        };
        if let Some(sink) = sink {
            sink.status(run, reported, token);
        }
    }

    /// Acknowledges an update (received at `received`) that carries nothing to store.
    fn acknowledge_now(&self, status: &TaskStatus, received: Instant) {
        let state = self.state();
        if let Some(call) = state
            .framework_id
            .as_deref()
            .and_then(|framework_id| calls::acknowledge(framework_id, status))
        {
            state.send_acknowledge(call, Some(received));
        }
    }

    /// An ERROR event ends the subscription; "removed" means the framework is gone for good.
    fn refused(&self, message: String) -> String {
        if message.contains("removed") {
            let mut state = self.state();
            state.framework_id = None;
            state.id_stored = false;
            state.launched.clear();
            drop(state);
            if let Some(sink) = self.sink() {
                sink.send(BackendEvent::FrameworkRemoved {
                    reason: message.clone(),
                });
            }
            self.inner.reconnect.notify_one();
        }
        format!("the Mesos master ended the subscription: {message}")
    }

    fn disconnected(&self, reason: String) {
        tracing::warn!("{reason}");
        let metrics = &self.inner.metrics;
        metrics.mesos_connected.set(0);
        metrics
            .mesos_subscriptions
            .get_or_create(&crate::metrics::OutcomeLabels {
                outcome: "failed".to_owned(),
            })
            .inc();
        {
            let mut state = self.state();
            state.view.disconnected(&reason);
            state.session = None;
            let offer_ids: HashSet<String> = state
                .offers
                .iter()
                .map(|held| held.leftovers.offer_id().to_owned())
                .collect();
            for run in placements_on(&state, &offer_ids) {
                state.unplace(&run);
            }
            state.offers.clear();
        }
        if let Some(sink) = self.sink() {
            sink.send(BackendEvent::Disconnected { reason });
        }
    }
}
