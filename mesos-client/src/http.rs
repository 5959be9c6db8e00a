//! Subscriptions and calls over HTTP.
//!
//! - Calls travel as protobuf (`Content-Type: application/x-protobuf`); SUBSCRIBE asks for a
//!   protobuf stream (`Accept: application/x-protobuf`) and decodes a JSON stream too, should
//!   the other side answer with one.
//! - SUBSCRIBE follows `307` redirects to the leading master when asked to (the `Location`
//!   may be protocol-relative: the scheme is kept); the URL that answered `200` becomes the
//!   subscription's endpoint, which every later call must use.
//! - The stream's connections are kept apart from the calls' (a separate pool that keeps no
//!   idle connection), so that a call never waits behind the long-lived stream.
//! - A `307` on a call means the master lost leadership ([`ClientError::NotLeader`]).

use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use mesos_proto::recordio::{decode_stream, RecordIoCodec, StreamError};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ClientError;
use crate::media::{MediaType, APPLICATION_PROTOBUF};
use crate::redirect::resolve_redirect;

/// Header carrying a scheduler subscription's stream id, required on every later call.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// Longest answer body kept in a [`ClientError::Rejected`].
const MAX_ERROR_BODY: usize = 1024;

/// How requests authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// HTTP Basic with a principal and its secret (frameworks).
    Basic {
        /// The principal.
        principal: String,
        /// Its secret.
        secret: String,
    },
    /// A bearer token (executors: `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`).
    Bearer(String),
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::Basic { principal, .. } => f
                .debug_struct("Basic")
                .field("principal", principal)
                .field("secret", &"********")
                .finish(),
            Authorization::Bearer(_) => f.write_str("Bearer(********)"),
        }
    }
}

impl Authorization {
    fn header(&self) -> Result<HeaderValue, ClientError> {
        use base64::Engine as _;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let text = match self {
            Authorization::Basic { principal, secret } => {
                format!(
                    "Basic {}",
                    encode(format!("{principal}:{secret}").as_bytes())
                )
            }
            Authorization::Bearer(token) => format!("Bearer {token}"),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| ClientError::Setup {
            reason: "the credentials contain characters not allowed in an HTTP header".into(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Timeouts and credentials of a [`Client`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for a call's answer, and for a SUBSCRIBE's answer (its headers).
    pub request_timeout: Duration,
    /// Sent on every request when set.
    pub authorization: Option<Authorization>,
    /// Redirects a SUBSCRIBE follows (0: none are followed, a `307` is an error).
    pub max_redirects: usize,
}

impl Default for ClientConfig {
    /// 10 s to connect, 75 s for an answer (the request timeout the Mesos docs use), up to 5
    /// redirects, no credentials.
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(75),
            authorization: None,
            max_redirects: 5,
        }
    }
}

/// An HTTP client for one API: opens subscriptions and sends calls.
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    authorization: Option<HeaderValue>,
    streams: reqwest::Client,
    calls: reqwest::Client,
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<Bytes, StreamError<reqwest::Error>>> + Send>>;

/// A live subscription: the endpoint that accepted it, its stream id (scheduler API) and its
/// events, decoded as `E`.
pub struct Subscription<E> {
    endpoint: String,
    stream_id: Option<String>,
    media_type: MediaType,
    records: RecordStream,
    event_timeout: Option<Duration>,
    event: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("endpoint", &self.endpoint)
            .field("stream_id", &self.stream_id)
            .field("media_type", &self.media_type)
            .field("event_timeout", &self.event_timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with `config`; fails when the credentials cannot be sent in a header or the
    /// TLS set-up fails.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        Client::build(config, |builder| builder)
    }

    /// A client with `config` that trusts only the CA certificates in `pem` (one or more PEM
    /// certificates) for `https://` URLs, instead of the built-in trust store.
    #[cfg(feature = "tls")]
    pub fn with_root_certificates(config: ClientConfig, pem: &[u8]) -> Result<Client, ClientError> {
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|error| ClientError::Setup {
                reason: format!("reading the CA certificates: {}", error_chain(&error)),
            })?;
        if certificates.is_empty() {
            return Err(ClientError::Setup {
                reason: "the CA certificates hold no PEM certificate".to_owned(),
            });
        }
        Client::build(config, move |builder| {
            certificates.iter().cloned().fold(
                builder.tls_built_in_root_certs(false),
                |builder, certificate| builder.add_root_certificate(certificate),
            )
        })
    }

    /// Both HTTP clients, with `tls` applied to their builders.
    fn build(
        config: ClientConfig,
        tls: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Client, ClientError> {
        let setup = |error: reqwest::Error| ClientError::Setup {
            reason: error_chain(&error),
        };
        let streams = tls(reqwest::Client::builder())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(0)
            .no_proxy()
            .build()
            .map_err(setup)?;
        let calls = tls(reqwest::Client::builder())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .no_proxy()
            .build()
            .map_err(setup)?;
        let authorization = config
            .authorization
            .as_ref()
            .map(Authorization::header)
            .transpose()?;
        Ok(Client {
            config,
            authorization,
            streams,
            calls,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// POSTs SUBSCRIBE (`body`, a protobuf call named `call` in messages) to `url`, follows
    /// up to `max_redirects` redirects, and returns the subscription once a `200 OK` with a
    /// known content type arrived. The subscription starts with `first_event_timeout` as its
    /// event timeout (see [`Subscription::set_event_timeout`]).
    pub async fn subscribe<E>(
        &self,
        url: &str,
        call: &'static str,
        body: Vec<u8>,
        first_event_timeout: Option<Duration>,
    ) -> Result<Subscription<E>, ClientError> {
        let body = Bytes::from(body);
        let mut url = url.to_owned();
        for _ in 0..=self.config.max_redirects {
            let request = self
                .authorized(self.streams.post(&url))
                .header(CONTENT_TYPE, APPLICATION_PROTOBUF)
                .header(ACCEPT, APPLICATION_PROTOBUF)
                .body(body.clone());
            let waited = self.config.request_timeout;
            let response = tokio::time::timeout(waited, request.send())
                .await
                .map_err(|_| ClientError::Timeout {
                    call,
                    url: url.clone(),
                    waited,
                })?
                .map_err(|error| connection_error(call, &url, &error))?;
            match response.status() {
                StatusCode::OK => return subscription(url, response, first_event_timeout),
                StatusCode::TEMPORARY_REDIRECT => url = redirect_target(call, &url, &response)?,
                _ => return Err(rejected(call, url, response).await),
            }
        }
        Err(ClientError::TooManyRedirects {
            call,
            url,
            hops: self.config.max_redirects,
        })
    }

    /// POSTs a call other than SUBSCRIBE (`body`, protobuf) to `endpoint`, with the
    /// subscription's stream id when it has one; success is `202 Accepted` (or `200 OK`).
    pub async fn call(
        &self,
        endpoint: &str,
        call: &'static str,
        body: Vec<u8>,
        stream_id: Option<&str>,
    ) -> Result<(), ClientError> {
        let mut request = self
            .authorized(self.calls.post(endpoint))
            .header(CONTENT_TYPE, APPLICATION_PROTOBUF)
            .body(body);
        if let Some(stream_id) = stream_id {
            let value = HeaderValue::from_str(stream_id).map_err(|_| ClientError::Setup {
                reason: format!("stream id {stream_id:?} is not a valid header value"),
            })?;
            request = request.header(STREAM_ID_HEADER, value);
        }
        let response = request.send().await.map_err(|error| {
            if error.is_timeout() {
                ClientError::Timeout {
                    call,
                    url: endpoint.to_owned(),
                    waited: self.config.request_timeout,
                }
            } else {
                connection_error(call, endpoint, &error)
            }
        })?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::OK => Ok(()),
            StatusCode::TEMPORARY_REDIRECT => Err(ClientError::NotLeader {
                call,
                url: endpoint.to_owned(),
                location: location(&response),
            }),
            _ => Err(rejected(call, endpoint.to_owned(), response).await),
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.authorization {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }
}

fn subscription<E>(
    endpoint: String,
    response: reqwest::Response,
    first_event_timeout: Option<Duration>,
) -> Result<Subscription<E>, ClientError> {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let media_type = MediaType::from_content_type(&content_type).ok_or_else(|| {
        ClientError::UnexpectedContentType {
            url: endpoint.clone(),
            content_type,
        }
    })?;
    let stream_id = response
        .headers()
        .get(STREAM_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .map(str::to_owned);
    Ok(Subscription {
        endpoint,
        stream_id,
        media_type,
        records: Box::pin(decode_stream(response.bytes_stream(), RecordIoCodec::new())),
        event_timeout: first_event_timeout,
        event: PhantomData,
    })
}

impl<E> Subscription<E>
where
    E: prost::Message + Default + DeserializeOwned,
{
    /// The endpoint that accepted the subscription (the leader, after redirects).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The `Mesos-Stream-Id` of the answer, if it had one.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// The stream id, required (scheduler API): its absence is an error.
    pub fn require_stream_id(&self) -> Result<&str, ClientError> {
        self.stream_id()
            .ok_or_else(|| ClientError::MissingStreamId {
                url: self.endpoint.clone(),
            })
    }

    /// The media type of the events.
    pub fn media_type(&self) -> MediaType {
        self.media_type
    }

    /// How long [`Subscription::next_event`] waits for an event, if at all.
    pub fn event_timeout(&self) -> Option<Duration> {
        self.event_timeout
    }

    /// Sets the watchdog: with `Some(t)`, a silence of `t` (no event, not even a heartbeat)
    /// ends the subscription with [`ClientError::HeartbeatTimeout`].
    pub fn set_event_timeout(&mut self, timeout: Option<Duration>) {
        self.event_timeout = timeout;
    }

    /// The next event; [`ClientError::StreamClosed`] when the other side ended the stream.
    pub async fn next_event(&mut self) -> Result<E, ClientError> {
        let next = self.records.next();
        let record = match self.event_timeout {
            Some(waited) => tokio::time::timeout(waited, next).await.map_err(|_| {
                ClientError::HeartbeatTimeout {
                    url: self.endpoint.clone(),
                    waited,
                }
            })?,
            None => next.await,
        };
        let payload = record
            .ok_or_else(|| ClientError::StreamClosed {
                url: self.endpoint.clone(),
            })?
            .map_err(|error| ClientError::StreamBroken {
                url: self.endpoint.clone(),
                reason: error.to_string(),
            })?;
        self.media_type
            .decode(&payload)
            .map_err(|reason| ClientError::Decode {
                url: self.endpoint.clone(),
                encoding: self.media_type.mime(),
                reason,
            })
    }

    /// The events as a stream that ends when the other side closes it, and after the first
    /// error otherwise.
    pub fn into_events(self) -> impl Stream<Item = Result<E, ClientError>> + Send + 'static
    where
        E: Send + 'static,
    {
        futures::stream::unfold(Some(self), |state| async move {
            let mut subscription = state?;
            match subscription.next_event().await {
                Ok(event) => Some((Ok(event), Some(subscription))),
                Err(ClientError::StreamClosed { .. }) => None,
                Err(error) => Some((Err(error), None)),
            }
        })
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
) -> Result<String, ClientError> {
    let location = location(response).ok_or_else(|| ClientError::NotLeader {
        call,
        url: url.to_owned(),
        location: None,
    })?;
    resolve_redirect(url, &location).ok_or_else(|| ClientError::BadRedirect {
        call,
        url: url.to_owned(),
        location,
    })
}

async fn rejected(call: &'static str, url: String, response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap_or_default();
    if body.len() > MAX_ERROR_BODY {
        let mut cut = MAX_ERROR_BODY;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    ClientError::Rejected {
        call,
        url,
        status,
        body: body.trim().to_owned(),
    }
}

fn connection_error(call: &'static str, url: &str, error: &reqwest::Error) -> ClientError {
    ClientError::Connection {
        call,
        url: url.to_owned(),
        reason: error_chain(error),
    }
}

/// reqwest's `Display` omits the cause ("error sending request"): the whole chain.
fn error_chain(error: &reqwest::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}
