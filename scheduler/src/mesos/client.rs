//! HTTP client of the scheduler API (`/api/v1/scheduler`): the SUBSCRIBE stream and the calls.
//!
//! - Everything travels as protobuf (`application/x-protobuf`), events in RecordIO records.
//! - SUBSCRIBE follows `307` redirects to the leading master (`Location` is protocol-relative:
//!   the scheme is kept); the leader that answered becomes the endpoint of every later call.
//! - The `Mesos-Stream-Id` of the subscription is sent with every call ([`Session`]).
//! - Calls go on connections of their own (a separate connection pool from the stream's),
//!   with a request timeout. A `307` on a call means the master lost leadership: the caller
//!   must subscribe again ([`MesosError::NotLeader`]).
//! - Heartbeats: without any event for `missed_heartbeats` × the announced interval,
//!   [`Subscription::next_event`] fails with [`MesosError::HeartbeatTimeout`]; the caller drops
//!   the subscription and subscribes again (with its framework id), with a bounded backoff.
//! - ZooKeeper master detection is not implemented: [`ClientSettings::new`] refuses `zk://`.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use mesos_proto::recordio::{decode_stream, RecordIoCodec, StreamError};
use mesos_proto::v1::scheduler::{event, Call, Event};
use prost::Message;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};

use super::calls::call_name;
use super::master_url::{HttpMaster, MasterUrl};
use super::MesosError;

/// The protobuf media type.
pub const PROTOBUF: &str = "application/x-protobuf";

/// Header carrying the subscription's stream id.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// Mesos' heartbeat interval when SUBSCRIBED does not announce one.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// Longest body kept in a [`MesosError::CallRejected`].
const MAX_ERROR_BODY: usize = 1024;

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

/// How the client reaches the master.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// Any master; non-leaders redirect to the leader.
    pub master: HttpMaster,
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
    /// `master`; a ZooKeeper `master` is refused (not implemented).
    pub fn new(master: &MasterUrl, original: &str) -> Result<ClientSettings, MesosError> {
        match master {
            MasterUrl::Http(http) => Ok(ClientSettings {
                master: http.clone(),
                credentials: None,
                request_timeout: Duration::from_secs(75),
                missed_heartbeats: 5,
                max_redirects: 5,
            }),
            MasterUrl::ZooKeeper(_) => Err(MesosError::ZooKeeperUnsupported {
                value: original.to_owned(),
            }),
        }
    }
}

/// The scheduler API client.
#[derive(Debug, Clone)]
pub struct MesosClient {
    settings: ClientSettings,
    streams: reqwest::Client,
    calls: reqwest::Client,
}

type EventBytes = Pin<Box<dyn Stream<Item = Result<Bytes, StreamError<reqwest::Error>>> + Send>>;

/// A live subscription: the event stream and the [`Session`] to make calls with.
pub struct Subscription {
    events: EventBytes,
    session: Session,
    first_event_timeout: Duration,
    heartbeat_interval: Option<Duration>,
    missed_heartbeats: u32,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("session", &self.session)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish_non_exhaustive()
    }
}

/// What calls need: the leader's endpoint and the subscription's stream id. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Session {
    http: reqwest::Client,
    endpoint: String,
    stream_id: String,
    credentials: Option<Credentials>,
}

impl MesosClient {
    /// A client for `settings`.
    pub fn new(settings: ClientSettings) -> Result<MesosClient, MesosError> {
        let connect = settings.request_timeout;
        // The stream's client has no overall timeout (the stream lives for days) and keeps
        // no idle connection, so that a call never waits behind the stream.
        let streams = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(MesosError::ClientSetup)?;
        let calls = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect)
            .timeout(settings.request_timeout)
            .build()
            .map_err(MesosError::ClientSetup)?;
        Ok(MesosClient {
            settings,
            streams,
            calls,
        })
    }

    /// Sends SUBSCRIBE (following redirects to the leader) and returns the subscription once
    /// the master accepted it; the first event (SUBSCRIBED or ERROR) is read with
    /// [`Subscription::next_event`].
    pub async fn subscribe(&self, call: &Call) -> Result<Subscription, MesosError> {
        let name = call_name(call);
        let body = call.encode_to_vec();
        let mut url = self.settings.master.scheduler_endpoint();
        for _ in 0..=self.settings.max_redirects {
            let request = with_auth(
                self.streams
                    .post(&url)
                    .header(CONTENT_TYPE, PROTOBUF)
                    .header(ACCEPT, PROTOBUF)
                    .body(body.clone()),
                self.settings.credentials.as_ref(),
            );
            let response = tokio::time::timeout(self.settings.request_timeout, request.send())
                .await
                .map_err(|_| MesosError::Stream {
                    url: url.clone(),
                    why: format!(
                        "no answer to SUBSCRIBE within {:?}",
                        self.settings.request_timeout
                    ),
                })?
                .map_err(|source| MesosError::Http {
                    call: name,
                    url: url.clone(),
                    source,
                })?;
            match response.status() {
                StatusCode::OK => return self.subscription(url, response),
                StatusCode::TEMPORARY_REDIRECT => url = redirect_target(name, &url, &response)?,
                _ => return Err(rejected(name, url, response).await),
            }
        }
        Err(MesosError::TooManyRedirects {
            call: name,
            url,
            hops: self.settings.max_redirects,
        })
    }

    fn subscription(
        &self,
        url: String,
        response: reqwest::Response,
    ) -> Result<Subscription, MesosError> {
        let stream_id = response
            .headers()
            .get(STREAM_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .ok_or_else(|| MesosError::MissingStreamId { url: url.clone() })?
            .to_owned();
        Ok(Subscription {
            events: Box::pin(decode_stream(response.bytes_stream(), RecordIoCodec::new())),
            session: Session {
                http: self.calls.clone(),
                endpoint: url,
                stream_id,
                credentials: self.settings.credentials.clone(),
            },
            first_event_timeout: self.settings.request_timeout,
            heartbeat_interval: None,
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
        match self.heartbeat_interval {
            Some(interval) => interval.saturating_mul(self.missed_heartbeats),
            None => self.first_event_timeout,
        }
    }

    /// The next event. SUBSCRIBED sets the heartbeat interval used for the timeout.
    pub async fn next_event(&mut self) -> Result<Event, MesosError> {
        let url = &self.session.endpoint;
        let waited = self.event_timeout();
        let record = tokio::time::timeout(waited, self.events.next())
            .await
            .map_err(|_| MesosError::HeartbeatTimeout {
                url: url.clone(),
                waited,
            })?
            .ok_or_else(|| MesosError::StreamClosed { url: url.clone() })?
            .map_err(|error| MesosError::Stream {
                url: url.clone(),
                why: error.to_string(),
            })?;
        let event = Event::decode(record).map_err(|source| MesosError::Decode {
            url: url.clone(),
            source,
        })?;
        if event.r#type == Some(event::Type::Subscribed as i32) {
            self.heartbeat_interval =
                Some(heartbeat_interval(event.subscribed.as_ref().and_then(
                    |subscribed| subscribed.heartbeat_interval_seconds,
                )));
        }
        Ok(event)
    }
}

/// The announced heartbeat interval, or Mesos' default when absent or not a positive number.
pub fn heartbeat_interval(seconds: Option<f64>) -> Duration {
    seconds
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL)
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
        let name = call_name(call);
        let stream_id = HeaderValue::from_str(&self.stream_id)
            .map_err(|_| MesosError::NotSubscribed { call: name })?;
        let request = with_auth(
            self.http
                .post(&self.endpoint)
                .header(CONTENT_TYPE, PROTOBUF)
                .header(STREAM_ID_HEADER, stream_id)
                .body(call.encode_to_vec()),
            self.credentials.as_ref(),
        );
        let response = request.send().await.map_err(|source| MesosError::Http {
            call: name,
            url: self.endpoint.clone(),
            source,
        })?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::OK => Ok(()),
            StatusCode::TEMPORARY_REDIRECT => Err(MesosError::NotLeader {
                call: name,
                url: self.endpoint.clone(),
                location: location(&response),
            }),
            _ => Err(rejected(name, self.endpoint.clone(), response).await),
        }
    }
}

fn with_auth(
    request: reqwest::RequestBuilder,
    credentials: Option<&Credentials>,
) -> reqwest::RequestBuilder {
    match credentials {
        Some(credentials) => request.basic_auth(&credentials.principal, Some(&credentials.secret)),
        None => request,
    }
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn redirect_target(
    call: &'static str,
    url: &str,
    response: &reqwest::Response,
) -> Result<String, MesosError> {
    let location = location(response).ok_or_else(|| MesosError::NotLeader {
        call,
        url: url.to_owned(),
        location: None,
    })?;
    resolve_redirect(url, &location).ok_or_else(|| MesosError::BadRedirect {
        call,
        url: url.to_owned(),
        location,
    })
}

/// Where a `307` from `current` points: a protocol-relative `//host:port/path` keeps the
/// current scheme; a location without a path (1.0's `/redirect`, the docs' bare
/// `host:port`) keeps the current path; absolute URLs and absolute paths are used as given.
pub fn resolve_redirect(current: &str, location: &str) -> Option<String> {
    let base = Url::parse(current).ok()?;
    let location = location.trim();
    if location.is_empty() {
        return None;
    }
    let normalized = if location.contains("://") || location.starts_with('/') {
        location.to_owned()
    } else {
        format!("//{location}")
    };
    let mut target = base.join(&normalized).ok()?;
    target.host_str()?;
    if target.path() == "/" {
        target.set_path(base.path());
    }
    Some(target.to_string())
}

async fn rejected(call: &'static str, url: String, response: reqwest::Response) -> MesosError {
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap_or_default();
    if body.len() > MAX_ERROR_BODY {
        let mut cut = MAX_ERROR_BODY;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    MesosError::CallRejected {
        call,
        url,
        status,
        body: body.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_relative_location_keeps_the_scheme() {
        assert_eq!(
            resolve_redirect(
                "https://m1:5050/api/v1/scheduler",
                "//m2:5050/api/v1/scheduler"
            )
            .as_deref(),
            Some("https://m2:5050/api/v1/scheduler")
        );
    }

    #[test]
    fn location_without_path_keeps_the_current_path() {
        let current = "http://m1:5050/master/api/v1/scheduler";
        assert_eq!(
            resolve_redirect(current, "//m2:5051").as_deref(),
            Some("http://m2:5051/master/api/v1/scheduler")
        );
        assert_eq!(
            resolve_redirect(current, "m3:5050").as_deref(),
            Some("http://m3:5050/master/api/v1/scheduler")
        );
    }

    #[test]
    fn absolute_locations_are_used_as_given() {
        let current = "http://m1:5050/api/v1/scheduler";
        assert_eq!(
            resolve_redirect(current, "https://m2:5050/api/v1/scheduler").as_deref(),
            Some("https://m2:5050/api/v1/scheduler")
        );
        assert_eq!(
            resolve_redirect(current, "/master/api/v1/scheduler").as_deref(),
            Some("http://m1:5050/master/api/v1/scheduler")
        );
        assert_eq!(resolve_redirect(current, ""), None);
        assert_eq!(resolve_redirect("not a url", "//m2:5050"), None);
    }

    #[test]
    fn heartbeat_interval_defaults_to_fifteen_seconds() {
        assert_eq!(heartbeat_interval(Some(2.5)), Duration::from_millis(2500));
        assert_eq!(heartbeat_interval(None), DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(heartbeat_interval(Some(0.0)), DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(
            heartbeat_interval(Some(f64::NAN)),
            DEFAULT_HEARTBEAT_INTERVAL
        );
    }

    #[test]
    fn zookeeper_masters_are_refused_by_the_client() {
        let value = "zk://zk1:2181/mesos";
        let master = MasterUrl::parse(value).expect("valid zk url");
        let message = ClientSettings::new(&master, value)
            .expect_err("zk unsupported")
            .to_string();
        assert!(
            message.contains(value) && message.contains("ZooKeeper"),
            "{message}"
        );
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
