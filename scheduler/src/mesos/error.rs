//! The one error type of the Mesos protocol layer.

use std::time::Duration;

/// Everything that can go wrong while talking Mesos: a bad `master` value, a task that cannot
/// become a `TaskInfo`, an update we cannot read, or a call the master refused.
#[derive(Debug, thiserror::Error)]
pub enum MesosError {
    /// A `master` configuration value that is not `host:port`, `http(s)://host:port` or
    /// `zk://[user:password@]host:port,.../path`.
    #[error("invalid Mesos master {value:?}: {why}")]
    InvalidMaster {
        /// The value as configured.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// ZooKeeper data of a leading master that cannot be read as a `MasterInfo`.
    #[error("invalid master information in ZooKeeper node {node:?}: {why}")]
    InvalidMasterInfo {
        /// The znode name (`json.info_0000000012`).
        node: String,
        /// What is wrong with it.
        why: String,
    },
    /// The master is configured as a ZooKeeper URL, which the HTTP client cannot use directly.
    #[error(
        "Mesos master {value:?} is a ZooKeeper URL: ZooKeeper leader detection is not \
         implemented yet; configure http://<master>:5050 (any master redirects to the leader)"
    )]
    ZooKeeperUnsupported {
        /// The value as configured.
        value: String,
    },
    /// A task that cannot be expressed as a Mesos `TaskInfo`.
    #[error("task {task}: cannot build its Mesos TaskInfo: {why}")]
    InvalidTask {
        /// The task id.
        task: String,
        /// Why.
        why: String,
    },
    /// A status update that cannot be understood.
    #[error("status update for Mesos task {task:?}: {why}")]
    InvalidUpdate {
        /// The Mesos task id of the update.
        task: String,
        /// Why.
        why: String,
    },
    /// The HTTP request of a call could not be made or its answer could not be read.
    #[error("Mesos {call} call to {url} failed: {source}")]
    Http {
        /// The call type (`SUBSCRIBE`, `ACCEPT`, ...).
        call: &'static str,
        /// Where it was sent.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The master answered a call with an unexpected status.
    #[error("Mesos {call} call to {url} was answered {status}: {body}")]
    CallRejected {
        /// The call type.
        call: &'static str,
        /// Where it was sent.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The answer's body (Mesos puts the reason there), possibly empty.
        body: String,
    },
    /// The master we talk to is not (or no longer) the leader.
    #[error("Mesos {call} call: {url} is not the leading master (redirects to {location:?})")]
    NotLeader {
        /// The call type.
        call: &'static str,
        /// Where it was sent.
        url: String,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// More redirects than allowed while looking for the leader.
    #[error("Mesos {call} call: gave up after {hops} redirects, last to {url}")]
    TooManyRedirects {
        /// The call type.
        call: &'static str,
        /// The last URL tried.
        url: String,
        /// How many redirects were followed.
        hops: usize,
    },
    /// The SUBSCRIBE answer lacks the `Mesos-Stream-Id` header.
    #[error("Mesos SUBSCRIBE answer from {url} has no valid Mesos-Stream-Id header")]
    MissingStreamId {
        /// The master's URL.
        url: String,
    },
    /// The event stream broke (transport error or bad RecordIO framing).
    #[error("Mesos event stream from {url} broke: {why}")]
    Stream {
        /// The master's URL.
        url: String,
        /// What happened.
        why: String,
    },
    /// The event stream ended.
    #[error("Mesos event stream from {url} was closed by the master")]
    StreamClosed {
        /// The master's URL.
        url: String,
    },
    /// No event (not even a heartbeat) arrived in time: the connection is presumed dead.
    #[error("no event from the Mesos master at {url} for {waited:?}: connection presumed dead")]
    HeartbeatTimeout {
        /// The master's URL.
        url: String,
        /// How long we waited.
        waited: Duration,
    },
    /// An event that is not a valid protobuf `Event`.
    #[error("undecodable event from the Mesos master at {url}: {source}")]
    Decode {
        /// The master's URL.
        url: String,
        /// The decoding error.
        #[source]
        source: prost::DecodeError,
    },
    /// The HTTP client could not be built (TLS roots, ...).
    #[error("cannot create the HTTP client for the Mesos master: {0}")]
    ClientSetup(#[source] reqwest::Error),
    /// A redirect whose `Location` cannot be turned into a URL.
    #[error("Mesos {call} call: master {url} redirected to an unusable location {location:?}")]
    BadRedirect {
        /// The call type.
        call: &'static str,
        /// The URL that answered the redirect.
        url: String,
        /// The `Location` header.
        location: String,
    },
    /// A call was made before the subscription gave a framework id and stream id.
    #[error("Mesos {call} call: not subscribed (no Mesos-Stream-Id yet)")]
    NotSubscribed {
        /// The call type.
        call: &'static str,
    },
}
