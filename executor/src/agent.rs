//! The agent's executor API (mesos-protocol.md §2) through the shared `mesos-client`:
//! SUBSCRIBE opens a long-lived RecordIO stream of events; every other call goes on a
//! connection of its own and is answered `202 Accepted`. Calls travel as protobuf; a JSON
//! event stream is decoded too, should an agent answer with one.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use mesos_client::{Authorization, CallName, Client, ClientConfig, ClientError};
use mesos_proto::v1::executor::{Call, Event};
use prost::Message;

use crate::env::Settings;
use crate::error::Error;

/// Time allowed to connect to the agent.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a non-streaming call (UPDATE), and for the answer to SUBSCRIBE.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The events of one subscription, in order; ends when the agent closes the stream, after the
/// first error otherwise.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Error>> + Send>>;

/// Whether a failed call may succeed when repeated (after a new subscription, or once the
/// agent has recovered): see [`ClientError::is_transient`]. Errors that are not the agent's
/// answer are permanent.
pub fn is_transient(error: &Error) -> bool {
    match error {
        Error::Agent(error) => error.is_transient(),
        _ => false,
    }
}

/// A client of one agent's executor API.
#[derive(Debug, Clone)]
pub struct AgentClient {
    client: Client,
    url: String,
}

impl AgentClient {
    /// A client for the agent of `settings` (`MESOS_AGENT_ENDPOINT`, authentication token).
    pub fn new(settings: &Settings) -> Result<AgentClient, Error> {
        let config = ClientConfig {
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: CALL_TIMEOUT,
            authorization: settings
                .authentication_token
                .clone()
                .map(Authorization::Bearer),
            // The executor API has no leader: an agent never redirects.
            max_redirects: 0,
        };
        let client = Client::new(config).map_err(|error| match error {
            ClientError::Setup { reason } if settings.authentication_token.is_some() => {
                Error::InvalidVariable {
                    name: "MESOS_EXECUTOR_AUTHENTICATION_TOKEN",
                    value: "<redacted>".into(),
                    reason,
                }
            }
            other => Error::Agent(other),
        })?;
        Ok(AgentClient {
            client,
            url: settings.executor_url(),
        })
    }

    /// The executor API URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends SUBSCRIBE and returns the event stream once the agent answered `200 OK`.
    pub async fn subscribe(&self, call: &Call) -> Result<EventStream, Error> {
        let subscription = self
            .client
            .subscribe::<Event>(&self.url, call.call_name(), call.encode_to_vec(), None)
            .await?;
        Ok(Box::pin(
            subscription
                .into_events()
                .map(|event| event.map_err(Error::Agent)),
        ))
    }

    /// Sends a non-streaming call (UPDATE, MESSAGE) and expects `202 Accepted`.
    pub async fn send(&self, call: &Call) -> Result<(), Error> {
        self.client
            .call(&self.url, call.call_name(), call.encode_to_vec(), None)
            .await
            .map_err(Error::Agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_answers_keep_their_transience_and_other_errors_are_permanent() {
        let unavailable = Error::Agent(ClientError::Rejected {
            call: "UPDATE",
            url: "http://a/api/v1/executor".into(),
            status: 503,
            body: String::new(),
        });
        assert!(is_transient(&unavailable));
        let malformed = Error::Agent(ClientError::Rejected {
            call: "UPDATE",
            url: "http://a/api/v1/executor".into(),
            status: 400,
            body: String::new(),
        });
        assert!(!is_transient(&malformed));
        assert!(!is_transient(&Error::MissingVariable {
            name: "MESOS_FRAMEWORK_ID"
        }));
    }
}
