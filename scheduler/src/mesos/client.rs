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
use super::master_url::{HttpMaster, MasterUrl, Scheme};
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
    /// The scheme of the leaders a ZooKeeper election announces (`master_scheme`; their
    /// `MasterInfo` names none).
    pub detected_scheme: Scheme,
    /// PEM CA certificates trusted for `https://` masters instead of the system's trust
    /// store (`master_ca_file`).
    pub ca_certificates: Option<Vec<u8>>,
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
            detected_scheme: Scheme::Http,
            ca_certificates: None,
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
        let client = match &settings.ca_certificates {
            Some(pem) => Client::with_root_certificates(config, pem)?,
            None => Client::new(config)?,
        };
        Ok(MesosClient {
            client,
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
                self.with_detected_scheme(detector.leader().await)
            }
        }
    }

    /// The leader ZooKeeper names now, when the master is a `zk://` election and one leads.
    pub fn detected_leader(&self) -> Option<HttpMaster> {
        let detection = self.detector.get()?.current();
        detection
            .leader()
            .map(|master| self.with_detected_scheme(master.clone()))
    }

    /// A detected leader reached with `master_scheme` (the detector knows no scheme).
    fn with_detected_scheme(&self, master: HttpMaster) -> HttpMaster {
        HttpMaster {
            scheme: self.settings.detected_scheme,
            ..master
        }
    }

    /// Returns when `master` no longer leads according to ZooKeeper; never for an HTTP
    /// master (its redirects name the leader).
    pub async fn leader_changed(&self, master: &HttpMaster) {
        match self.detector.get() {
            Some(detector) => {
                // As the detector announces it: over plain HTTP.
                let detected = HttpMaster {
                    scheme: Scheme::Http,
                    ..master.clone()
                };
                detector.changed_from(&detected).await;
            }
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

/// What a TLS failure named in `error` (a client error's text, with its causes) means, in
/// words; `None` when it is not one.
pub fn tls_trouble(error: &str) -> Option<&'static str> {
    let untrusted = "the master's TLS certificate is not trusted";
    if error.contains("invalid peer certificate: UnknownIssuer") {
        Some(
            "the master's TLS certificate is not trusted: no trusted CA signed it (set \
             master_ca_file to the PEM file of the CA that signs the masters' certificates)",
        )
    } else if error.contains("certificate not valid for name") || error.contains("NotValidForName")
    {
        Some(
            "the master's TLS certificate is not trusted: it does not name the host eremetic \
             reaches the master at",
        )
    } else if error.contains("certificate expired")
        || error.contains("invalid peer certificate: Expired")
    {
        Some("the master's TLS certificate is not trusted: it has expired")
    } else if error.contains("invalid peer certificate") {
        Some(untrusted)
    } else if error.contains("received corrupt message") {
        Some("the master does not speak TLS on that port (is it an http:// master?)")
    } else {
        None
    }
}

/// What a refused authentication means, in words: the master answered 401 to `error`'s call.
/// `principal` is the one of `credential_file`, if any. `None` for other errors.
pub fn auth_trouble(error: &MesosError, principal: Option<&str>) -> Option<String> {
    match error {
        MesosError::Client(ClientError::Rejected { status: 401, .. }) => Some(match principal {
            Some(principal) => format!(
                "the master refused the credentials of principal {principal:?} (HTTP 401: \
                 check the secret in credential_file against the master's credentials)"
            ),
            None => "the master requires credentials and none were sent (HTTP 401: set \
                     credential_file to a file holding the principal and its secret)"
                .to_owned(),
        }),
        _ => None,
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
    fn tls_failures_are_put_in_words() {
        let unknown = "SUBSCRIBE call to https://m:5050/api/v1/scheduler failed: error sending \
                       request: client error (Connect): invalid peer certificate: UnknownIssuer";
        assert!(
            tls_trouble(unknown).is_some_and(
                |words| words.contains("not trusted") && words.contains("master_ca_file")
            )
        );
        let name = "invalid peer certificate: certificate not valid for name \"m\"; certificate \
                    is only valid for x";
        assert!(tls_trouble(name).is_some_and(|words| words.contains("does not name the host")));
        let plain = "client error (Connect): received corrupt message of type InvalidContentType";
        assert!(tls_trouble(plain).is_some_and(|words| words.contains("does not speak TLS")));
        assert_eq!(tls_trouble("connection refused"), None);
    }

    #[test]
    fn a_refused_authentication_is_put_in_words() {
        let refused = |status| {
            MesosError::Client(ClientError::Rejected {
                call: "SUBSCRIBE",
                url: "http://m:5050/api/v1/scheduler".into(),
                status,
                body: "401 Unauthorized.".into(),
            })
        };
        let words = auth_trouble(&refused(401), Some("eremetic")).unwrap();
        assert!(
            words.contains("refused the credentials of principal \"eremetic\"")
                && words.contains("credential_file"),
            "{words}"
        );
        let words = auth_trouble(&refused(401), None).unwrap();
        assert!(words.contains("set credential_file"), "{words}");
        assert_eq!(auth_trouble(&refused(400), Some("eremetic")), None);
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
