//! Errors of the harness API (test-side misuse or I/O failures of the fake agent).

use std::time::Duration;

use thiserror::Error;

/// What went wrong when driving the fake agent or master from a test.
#[derive(Debug, Error)]
pub enum HarnessError {
    /// A test certificate or a TLS server configuration could not be made.
    #[error("TLS set-up of a fake server failed: {reason}")]
    Tls {
        /// What failed.
        reason: String,
    },
    /// Binding the listening socket failed.
    #[error("fake server could not listen on {address}: {source}")]
    Bind {
        /// The address tried.
        address: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An event could not be encoded or framed.
    #[error("fake agent could not encode the {event_type} event: {reason}")]
    EncodeEvent {
        /// Event type name (e.g. `LAUNCH`).
        event_type: String,
        /// Why encoding failed.
        reason: String,
    },
    /// The operation needs a subscribed executor and there is none.
    #[error("cannot send the {event_type} event: the executor has no open subscription")]
    NotSubscribed {
        /// Event type name.
        event_type: String,
    },
    /// `acknowledge` named an update the agent never received.
    #[error(
        "cannot acknowledge task {task_id}: the agent received no update with uuid {uuid_hex}"
    )]
    UnknownUpdate {
        /// Task id given.
        task_id: String,
        /// The uuid given, hex-encoded.
        uuid_hex: String,
    },
    /// A waiting method gave up.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout used.
        timeout: Duration,
    },
    /// `restart` was called while the agent was up, or `disconnect` while down.
    #[error("cannot {operation}: the fake agent is {state}")]
    WrongState {
        /// The operation attempted.
        operation: &'static str,
        /// The agent's current state.
        state: &'static str,
    },
    /// `add_agent` was given an agent id the master already has.
    #[error("cannot add agent {agent_id}: the fake master already has an agent with that id")]
    DuplicateAgent {
        /// The agent id given.
        agent_id: String,
    },
    /// `rescind` named an offer that is not outstanding.
    #[error("cannot rescind offer {offer_id}: it is not outstanding")]
    UnknownOffer {
        /// The offer id given.
        offer_id: String,
    },
    /// A status update for a task could not be generated.
    #[error("cannot send a status update for task {task_id}: {reason}")]
    InvalidTaskUpdate {
        /// The task id given.
        task_id: String,
        /// Why the agent would not send it.
        reason: String,
    },
    /// An agent operation (unreachable, gone, re-register) named an agent
    /// the master does not know, or one in a state it does not apply to.
    #[error("cannot {operation} agent {agent_id}: {reason}")]
    AgentNotApplicable {
        /// The operation attempted.
        operation: &'static str,
        /// The agent id given.
        agent_id: String,
        /// Why it does not apply.
        reason: String,
    },
    /// The operation needs a framework with an open subscription stream.
    #[error("framework {framework_id} has no open subscription stream")]
    FrameworkNotConnected {
        /// The framework id concerned (`<any>` when none is connected).
        framework_id: String,
    },
    /// ZooKeeper is not installed where the harness looks for it.
    #[error(
        "ZooKeeper is not installed: {missing} not found (run scripts/setup, which installs \
         Debian's zookeeper package and a Java runtime)"
    )]
    ZooKeeperMissing {
        /// The file or program that is missing.
        missing: String,
    },
    /// The private ZooKeeper server did not start or did not answer.
    #[error("the test ZooKeeper server {what}")]
    ZooKeeperServer {
        /// What failed, with the end of its log when there is one.
        what: String,
    },
    /// A ZooKeeper operation of the fake master failed.
    #[error("ZooKeeper {connect}: {operation}: {source}")]
    ZooKeeper {
        /// The connect string of the ensemble.
        connect: String,
        /// The operation and its path.
        operation: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A harness setting (agent version, cluster size, mode name...) has
    /// a value it cannot use.
    #[error("invalid {setting}: {reason}")]
    InvalidSetting {
        /// The setting (or command-line flag) concerned.
        setting: &'static str,
        /// Why the value is refused.
        reason: String,
    },
}
