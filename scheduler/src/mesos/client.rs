//! The scheduler API (`/api/v1/scheduler`) over the shared `mesos-client`: what is specific
//! to a framework on top of the generic subscription and calls.
//!
//! - SUBSCRIBE follows `307` redirects to the leading master; the leader that answered
//!   becomes the endpoint of every later call ([`Session`]), which carries the subscription's
//!   `Mesos-Stream-Id` (a SUBSCRIBE answer without one is refused).
//! - Heartbeats: until SUBSCRIBED the request timeout bounds the wait for an event; from then
//!   on, `missed_heartbeats` × the announced interval without any event fails
//!   [`Subscription::next_event`] with a heartbeat timeout; the caller drops the subscription
//!   and subscribes again (with its framework id), with a jittered back-off
//!   ([`mesos_client::Backoff`]).
//! - A `307` on a call means the master lost leadership: the caller must subscribe again.
//! - With a `zk://` master, [`MesosClient::leader`] asks a [`MasterDetector`] (started on
//!   first use) for the leading master, and [`MesosClient::leader_changed`] returns when
//!   another master leads, or none: the caller then drops its subscription and subscribes to
//!   the new leader.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use mesos_client::{heartbeat_interval, DEFAULT_HEARTBEAT_INTERVAL};
use mesos_client::{Authorization, CallName, Client, ClientConfig, ClientError};
use mesos_proto::v1::scheduler::{event, Call, Event};
use prost::Message;

use super::detector::MasterDetector;
use super::master_url::{HttpMaster, MasterUrl};
use super::MesosError;

/// Basic credentials of the framework's principal.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Principal.
    pub principal: String,
    /// Secret (a secret containing `:` never authenticates with Mesos).
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("principal", &self.principal)
            .field("secret", &crate::task::MASK)
            .finish()
    }
}

impl Credentials {
    /// Eremetic's `credential_file`: exactly two whitespace-separated fields, the principal
    /// and the secret. The error says what is wrong without quoting the secret.
    pub fn parse_file(text: &str) -> Result<Credentials, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            [principal, secret] => Ok(Credentials {
                principal: (*principal).to_owned(),
                secret: (*secret).to_owned(),
            }),
            _ => Err(format!(
                "expected two whitespace-separated fields (principal and secret), found {}",
                fields.len()
            )),
        }
    }
}

/// How the client reaches the master.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// Any master (non-leaders redirect to the leader), or the ZooKeeper election of the
    /// masters.
    pub master: MasterUrl,
    /// Sent as `Authorization: Basic` on every request when set.
    pub credentials: Option<Credentials>,
    /// Timeout of a call, and of the SUBSCRIBE answer and its first event.
    pub request_timeout: Duration,
    /// Heartbeat intervals without any event after which the connection is presumed dead.
    pub missed_heartbeats: u32,
    /// Redirects followed by SUBSCRIBE.
    pub max_redirects: usize,
}

impl ClientSettings {
    /// Defaults recommended by the Mesos docs (75 s request timeout, 5 missed heartbeats) for
    /// `master`.
    pub fn new(master: &MasterUrl) -> ClientSettings {
        ClientSettings {
            master: master.clone(),
            credentials: None,
            request_timeout: Duration::from_secs(75),
            missed_heartbeats: 5,
            max_redirects: 5,
        }
    }
}

/// The scheduler API client.
#[derive(Debug, Clone)]
pub struct MesosClient {
    settings: ClientSettings,
    client: Client,
    /// The ZooKeeper detector of a `zk://` master, started by the first [`MesosClient::leader`].
    detector: Arc<OnceLock<MasterDetector>>,
}

/// A live subscription: the event stream and the [`Session`] to make calls with.
#[derive(Debug)]
pub struct Subscription {
    events: mesos_client::Subscription<Event>,
    session: Session,
    missed_heartbeats: u32,
}

/// What calls need: the leader's endpoint and the subscription's stream id. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Session {
    client: Client,
    endpoint: String,
    stream_id: String,
}

impl MesosClient {
    /// A client for `settings`.
    pub fn new(settings: ClientSettings) -> Result<MesosClient, MesosError> {
        let config = ClientConfig {
            connect_timeout: settings.request_timeout,
            request_timeout: settings.request_timeout,
            authorization: settings
                .credentials
                .as_ref()
                .map(|credentials| Authorization::Basic {
                    principal: credentials.principal.clone(),
                    secret: credentials.secret.clone(),
                }),
            max_redirects: settings.max_redirects,
        };
        Ok(MesosClient {
            client: Client::new(config)?,
            settings,
            detector: Arc::new(OnceLock::new()),
        })
    }

    /// The master to subscribe to: the configured one, or the leader the ZooKeeper detector
    /// knows (waiting while no master leads).
    pub async fn leader(&self) -> HttpMaster {
        match &self.settings.master {
            MasterUrl::Http(master) => master.clone(),
            MasterUrl::ZooKeeper(target) => {
                let detector = self
                    .detector
                    .get_or_init(|| MasterDetector::start(target.clone()));
                detector.leader().await
            }
        }
    }

    /// Returns when `master` no longer leads according to ZooKeeper; never for an HTTP
    /// master (its redirects name the leader).
    pub async fn leader_changed(&self, master: &HttpMaster) {
        match self.detector.get() {
            Some(detector) => detector.changed_from(master).await,
            None => std::future::pending().await,
        }
    }

    /// Sends SUBSCRIBE to [`MesosClient::leader`]; see [`MesosClient::subscribe_to`].
    pub async fn subscribe(&self, call: &Call) -> Result<Subscription, MesosError> {
        let master = self.leader().await;
        self.subscribe_to(&master, call).await
    }

    /// Sends SUBSCRIBE to `master` (following redirects to the leader) and returns the
    /// subscription once the master accepted it; the first event (SUBSCRIBED or ERROR) is
    /// read with [`Subscription::next_event`].
    pub async fn subscribe_to(
        &self,
        master: &HttpMaster,
        call: &Call,
    ) -> Result<Subscription, MesosError> {
        let events = self
            .client
            .subscribe::<Event>(
                &master.scheduler_endpoint(),
                call.call_name(),
                call.encode_to_vec(),
                Some(self.settings.request_timeout),
            )
            .await?;
        let session = Session {
            client: self.client.clone(),
            endpoint: events.endpoint().to_owned(),
            stream_id: events.require_stream_id()?.to_owned(),
        };
        Ok(Subscription {
            events,
            session,
            missed_heartbeats: self.settings.missed_heartbeats.max(1),
        })
    }
}

impl Subscription {
    /// The session for calls on this subscription.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// How long [`Subscription::next_event`] waits: the request timeout until SUBSCRIBED, then
    /// `missed_heartbeats` × the announced heartbeat interval.
    pub fn event_timeout(&self) -> Duration {
        self.events
            .event_timeout()
            .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL)
    }

    /// The next event. SUBSCRIBED sets the heartbeat interval used for the timeout.
    pub async fn next_event(&mut self) -> Result<Event, MesosError> {
        let event = self.events.next_event().await?;
        if event.r#type == Some(event::Type::Subscribed as i32) {
            let interval = heartbeat_interval(
                event
                    .subscribed
                    .as_ref()
                    .and_then(|subscribed| subscribed.heartbeat_interval_seconds),
            );
            self.events
                .set_event_timeout(Some(interval.saturating_mul(self.missed_heartbeats)));
        }
        Ok(event)
    }
}

impl Session {
    /// The leading master's scheduler endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The subscription's `Mesos-Stream-Id`.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Sends a call (not SUBSCRIBE); success is the master's `202 Accepted`.
    pub async fn call(&self, call: &Call) -> Result<(), MesosError> {
        self.client
            .call(
                &self.endpoint,
                call.call_name(),
                call.encode_to_vec(),
                Some(&self.stream_id),
            )
            .await
            .map_err(MesosError::from)
    }
}

impl From<ClientError> for MesosError {
    fn from(error: ClientError) -> Self {
        MesosError::Client(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_file_has_exactly_a_principal_and_a_secret() {
        let credentials = Credentials::parse_file("eremetic  s3cret\n").unwrap();
        assert_eq!(credentials.principal, "eremetic");
        assert_eq!(credentials.secret, "s3cret");
        for bad in ["", "only-one", "one two three"] {
            let error = Credentials::parse_file(bad).unwrap_err();
            assert!(error.contains("two whitespace-separated fields"), "{error}");
            assert!(!error.contains("two three"), "{error}");
        }
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let credentials = Credentials {
            principal: "p".into(),
            secret: "s3cret".into(),
        };
        assert!(!format!("{credentials:?}").contains("s3cret"));
    }
}
