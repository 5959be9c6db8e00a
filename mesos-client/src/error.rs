//! The one error type of the client.

use std::time::Duration;

/// Everything that can go wrong talking to a master or an agent. Messages name the call, the
/// URL and the cause.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built (TLS roots, an unusable credential, ...).
    #[error("cannot create the HTTP client: {reason}")]
    Setup {
        /// Why.
        reason: String,
    },
    /// The request could not be sent or its answer not read (refused, reset, DNS, TLS, ...).
    #[error("{call} call to {url} failed: {reason}")]
    Connection {
        /// The call type (`SUBSCRIBE`, `UPDATE`, `ACCEPT`, ...).
        call: &'static str,
        /// Where it was sent.
        url: String,
        /// The transport error with its causes.
        reason: String,
    },
    /// No answer within the request timeout.
    #[error("{call} call to {url} was not answered within {waited:?}")]
    Timeout {
        /// The call type.
        call: &'static str,
        /// Where it was sent.
        url: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The call was answered with an unexpected HTTP status.
    #[error("{call} call to {url} was answered with HTTP {status}: {body}")]
    Rejected {
        /// The call type.
        call: &'static str,
        /// Where it was sent.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The answer's body (Mesos puts the reason there), trimmed and bounded.
        body: String,
    },
    /// The master we talk to is not (or no longer) the leader (`307` on a call).
    #[error("{call} call: {url} is not the leading master (redirects to {location:?})")]
    NotLeader {
        /// The call type.
        call: &'static str,
        /// Where it was sent.
        url: String,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// A redirect whose `Location` cannot be turned into a URL.
    #[error("{call} call: {url} redirected to an unusable location {location:?}")]
    BadRedirect {
        /// The call type.
        call: &'static str,
        /// The URL that answered the redirect.
        url: String,
        /// The `Location` header.
        location: String,
    },
    /// More redirects than allowed while looking for the leader.
    #[error("{call} call: gave up after {hops} redirects, last to {url}")]
    TooManyRedirects {
        /// The call type.
        call: &'static str,
        /// The last URL tried.
        url: String,
        /// How many redirects were followed.
        hops: usize,
    },
    /// The SUBSCRIBE answer announced a content type that is not one of the two media types.
    #[error("{url} answered SUBSCRIBE with content type {content_type:?}; expected application/x-protobuf or application/json")]
    UnexpectedContentType {
        /// The endpoint.
        url: String,
        /// The `Content-Type` header as received.
        content_type: String,
    },
    /// The SUBSCRIBE answer lacks the `Mesos-Stream-Id` header the scheduler API requires.
    #[error("the SUBSCRIBE answer from {url} has no valid Mesos-Stream-Id header")]
    MissingStreamId {
        /// The endpoint.
        url: String,
    },
    /// The event stream broke (transport error or bad RecordIO framing).
    #[error("the event stream from {url} broke: {reason}")]
    StreamBroken {
        /// The endpoint.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The event stream was closed by the other side.
    #[error("the event stream from {url} was closed by the other side")]
    StreamClosed {
        /// The endpoint.
        url: String,
    },
    /// No event (not even a heartbeat) arrived in time: the connection is presumed dead.
    #[error("no event from {url} for {waited:?}: connection presumed dead")]
    HeartbeatTimeout {
        /// The endpoint.
        url: String,
        /// How long we waited.
        waited: Duration,
    },
    /// A record of the event stream that is not a valid event.
    #[error("cannot decode an event of the stream from {url} ({encoding}): {reason}")]
    Decode {
        /// The endpoint.
        url: String,
        /// The negotiated media type.
        encoding: &'static str,
        /// Why decoding failed.
        reason: String,
    },
}

impl ClientError {
    /// Whether the same call may succeed when repeated (after a new subscription, once the
    /// leader is known or the agent has recovered): transport failures, timeouts, a broken or
    /// silent stream, a master that lost leadership, 403 (not subscribed: subscribe again),
    /// 503 (recovering, no leader) and other 5xx but 501. Everything else (400, 401, 404, 405,
    /// 406, 415, 501, undecodable events, unusable redirects) says the call itself is wrong.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connection { .. }
            | ClientError::Timeout { .. }
            | ClientError::NotLeader { .. }
            | ClientError::StreamBroken { .. }
            | ClientError::StreamClosed { .. }
            | ClientError::HeartbeatTimeout { .. } => true,
            ClientError::Rejected { status, .. } => {
                *status == 403 || (*status >= 500 && *status != 501)
            }
            ClientError::Setup { .. }
            | ClientError::BadRedirect { .. }
            | ClientError::TooManyRedirects { .. }
            | ClientError::UnexpectedContentType { .. }
            | ClientError::MissingStreamId { .. }
            | ClientError::Decode { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16) -> ClientError {
        ClientError::Rejected {
            call: "UPDATE",
            url: "http://a/api/v1/executor".into(),
            status,
            body: String::new(),
        }
    }

    #[test]
    fn unavailable_forbidden_and_transport_failures_are_transient() {
        for code in [403, 500, 502, 503] {
            assert!(rejected(code).is_transient(), "{code}");
        }
        assert!(ClientError::Connection {
            call: "UPDATE",
            url: "u".into(),
            reason: "connection refused".into()
        }
        .is_transient());
        assert!(ClientError::HeartbeatTimeout {
            url: "u".into(),
            waited: Duration::from_secs(75)
        }
        .is_transient());
    }

    #[test]
    fn malformed_call_answers_are_permanent() {
        for code in [400, 401, 404, 405, 406, 415, 501] {
            assert!(!rejected(code).is_transient(), "{code}");
        }
        assert!(!ClientError::Decode {
            url: "u".into(),
            encoding: "application/x-protobuf",
            reason: "bad".into()
        }
        .is_transient());
    }
}
