//! The HTTP client of the agent's executor API (mesos-protocol.md §2): SUBSCRIBE opens a
//! long-lived RecordIO stream of events; every other call goes on a connection of its own and
//! is answered `202 Accepted`.
//!
//! Calls are sent as protobuf (`Content-Type: application/x-protobuf`) and SUBSCRIBE asks for
//! a protobuf stream (`Accept: application/x-protobuf`); a JSON stream is decoded too, should
//! an agent answer with one.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use mesos_proto::recordio::{decode_stream, RecordIoCodec};
use mesos_proto::v1::executor::{call, Call, Event};
use prost::Message;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;

use crate::env::Settings;
use crate::error::Error;

/// `Content-Type` of protobuf calls and streams.
pub const APPLICATION_PROTOBUF: &str = "application/x-protobuf";
/// `Content-Type` of JSON calls and streams.
pub const APPLICATION_JSON: &str = "application/json";

/// Time allowed to connect to the agent.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a non-streaming call (UPDATE) to be answered.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The events of one subscription, in order; ends when the agent closes the stream, after the
/// first error otherwise.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Error>> + Send>>;

/// The encoding of an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` header names (parameters after `;` are ignored).
    pub fn from_content_type(value: &str) -> Option<Encoding> {
        let mime = value.split(';').next().unwrap_or_default().trim();
        if mime.eq_ignore_ascii_case(APPLICATION_PROTOBUF) {
            Some(Encoding::Protobuf)
        } else if mime.eq_ignore_ascii_case(APPLICATION_JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Encoding::Protobuf => APPLICATION_PROTOBUF,
            Encoding::Json => APPLICATION_JSON,
        }
    }
}

/// Decodes one RecordIO payload of an event stream.
pub fn decode_event(payload: &[u8], encoding: Encoding) -> Result<Event, String> {
    match encoding {
        Encoding::Protobuf => Event::decode(payload).map_err(|error| error.to_string()),
        Encoding::Json => mesos_proto::json::from_slice(payload).map_err(|error| error.to_string()),
    }
}

/// Whether a failed call may succeed when repeated (after a new subscription, or once the
/// agent has recovered): transport errors, 403 (not subscribed), 503 (agent recovering) and
/// other 5xx. Everything else (400, 401, 404, 405, 406, 415, 501, undecodable streams) says
/// the call itself is wrong.
pub fn is_transient(error: &Error) -> bool {
    match error {
        Error::AgentConnection { .. } => true,
        Error::AgentStatus { status, .. } => {
            *status == StatusCode::FORBIDDEN.as_u16()
                || (*status >= 500 && *status != StatusCode::NOT_IMPLEMENTED.as_u16())
        }
        _ => false,
    }
}

/// The name of a call's type, for messages.
pub fn call_name(call: &Call) -> &'static str {
    match call.r#type.and_then(|t| call::Type::try_from(t).ok()) {
        Some(call::Type::Subscribe) => "SUBSCRIBE",
        Some(call::Type::Update) => "UPDATE",
        Some(call::Type::Message) => "MESSAGE",
        Some(call::Type::Heartbeat) => "HEARTBEAT",
        Some(call::Type::Unknown) | None => "UNKNOWN",
    }
}

/// A client of one agent's executor API.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    url: String,
    authorization: Option<HeaderValue>,
}

impl AgentClient {
    /// A client for the agent of `settings` (`MESOS_AGENT_ENDPOINT`, authentication token).
    pub fn new(settings: &Settings) -> Result<AgentClient, Error> {
        let url = settings.executor_url();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|error| Error::AgentConnection {
                call: "any",
                url: url.clone(),
                reason: format!("cannot build the HTTP client: {error}"),
            })?;
        let authorization = match &settings.authentication_token {
            Some(token) => Some(
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map(|mut value| {
                        value.set_sensitive(true);
                        value
                    })
                    .map_err(|_| Error::InvalidVariable {
                        name: "MESOS_EXECUTOR_AUTHENTICATION_TOKEN",
                        value: "<redacted>".into(),
                        reason: "not usable in an HTTP header".into(),
                    })?,
            ),
            None => None,
        };
        Ok(AgentClient {
            http,
            url,
            authorization,
        })
    }

    /// The executor API URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn post(&self, call: &Call) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, APPLICATION_PROTOBUF)
            .body(call.encode_to_vec());
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request
    }

    /// Sends SUBSCRIBE and returns the event stream once the agent answered `200 OK`.
    pub async fn subscribe(&self, call: &Call) -> Result<EventStream, Error> {
        let name = call_name(call);
        let response = self
            .post(call)
            .header(ACCEPT, APPLICATION_PROTOBUF)
            .send()
            .await
            .map_err(|error| self.connection_error(name, &error))?;
        if response.status() != StatusCode::OK {
            return Err(self.status_error(name, response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let encoding = Encoding::from_content_type(&content_type).ok_or_else(|| {
            Error::UnexpectedContentType {
                url: self.url.clone(),
                content_type: content_type.clone(),
            }
        })?;
        let url = self.url.clone();
        let records = decode_stream(response.bytes_stream(), RecordIoCodec::new());
        let events = records.map(move |record| {
            let payload = record.map_err(|error| Error::AgentConnection {
                call: "SUBSCRIBE",
                url: url.clone(),
                reason: format!("the event stream broke: {error}"),
            })?;
            decode_event(&payload, encoding).map_err(|reason| Error::EventDecode {
                url: url.clone(),
                encoding: encoding.mime(),
                reason,
            })
        });
        Ok(Box::pin(events))
    }

    /// Sends a non-streaming call (UPDATE, MESSAGE) and expects `202 Accepted`.
    pub async fn send(&self, call: &Call) -> Result<(), Error> {
        let name = call_name(call);
        let response = self
            .post(call)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|error| self.connection_error(name, &error))?;
        if response.status() == StatusCode::ACCEPTED {
            Ok(())
        } else {
            Err(self.status_error(name, response).await)
        }
    }

    fn connection_error(&self, call: &'static str, error: &reqwest::Error) -> Error {
        // reqwest's Display omits the cause ("error sending request"): include the chain.
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::AgentConnection {
            call,
            url: self.url.clone(),
            reason,
        }
    }

    async fn status_error(&self, call: &'static str, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Error::AgentStatus {
            call,
            url: self.url.clone(),
            status,
            body: body.trim().chars().take(512).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::executor::event;

    use super::*;

    fn status(status: u16) -> Error {
        Error::AgentStatus {
            call: "UPDATE",
            url: "http://a/api/v1/executor".into(),
            status,
            body: String::new(),
        }
    }

    #[test]
    fn content_types_name_their_encoding() {
        assert_eq!(
            Encoding::from_content_type("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type("text/plain"), None);
        assert_eq!(Encoding::from_content_type(""), None);
    }

    #[test]
    fn events_decode_from_protobuf_and_json() {
        let event = Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        };
        let binary = event.encode_to_vec();
        assert_eq!(decode_event(&binary, Encoding::Protobuf), Ok(event.clone()));
        assert_eq!(
            decode_event(br#"{"type":"HEARTBEAT"}"#, Encoding::Json),
            Ok(event)
        );
        assert!(decode_event(b"{not json", Encoding::Json).is_err());
        assert!(decode_event(&[0xff, 0xff, 0xff], Encoding::Protobuf).is_err());
    }

    #[test]
    fn unavailable_forbidden_and_transport_failures_are_transient() {
        for code in [403, 500, 502, 503] {
            assert!(is_transient(&status(code)), "{code}");
        }
        assert!(is_transient(&Error::AgentConnection {
            call: "UPDATE",
            url: "u".into(),
            reason: "connection refused".into()
        }));
    }

    #[test]
    fn malformed_call_answers_are_permanent() {
        for code in [400, 401, 404, 405, 406, 415, 501] {
            assert!(!is_transient(&status(code)), "{code}");
        }
        assert!(!is_transient(&Error::EventDecode {
            url: "u".into(),
            encoding: APPLICATION_PROTOBUF,
            reason: "bad".into()
        }));
    }

    #[test]
    fn call_names_follow_the_type() {
        let call = Call {
            r#type: Some(call::Type::Update as i32),
            ..Default::default()
        };
        assert_eq!(call_name(&call), "UPDATE");
        assert_eq!(call_name(&Call::default()), "UNKNOWN");
    }
}
