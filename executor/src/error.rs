//! The one error type of the executor.

/// Everything that can go wrong in the executor. Messages name the variable, task, call,
/// URL or container concerned and the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A variable of the executor environment is absent.
    #[error("environment variable {name} is not set (a Mesos agent sets it for every executor)")]
    MissingVariable {
        /// The variable.
        name: &'static str,
    },
    /// A variable of the executor environment cannot be parsed.
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    InvalidVariable {
        /// The variable.
        name: &'static str,
        /// Its value as found.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The operator's configuration (`deimos.cfg`) could not be loaded.
    #[error("{0}")]
    Config(#[from] deimos::config::ConfigError),
    /// A task cannot be turned into a container.
    #[error("task {task_id} cannot be run as a container: {reason}")]
    InvalidTask {
        /// The task.
        task_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The agent could not be reached, or the connection broke during a call.
    #[error("{call} call to the agent at {url} failed: {reason}")]
    AgentConnection {
        /// The call type (`SUBSCRIBE`, `UPDATE`, ...).
        call: &'static str,
        /// The executor API URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The agent answered a call with an unexpected HTTP status.
    #[error("{call} call to the agent at {url} was answered with HTTP {status}: {body}")]
    AgentStatus {
        /// The call type.
        call: &'static str,
        /// The executor API URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The response body (the agent's reason), trimmed.
        body: String,
    },
    /// The subscription stream carried something that is not an `Event`.
    #[error("cannot decode an event of the subscription stream from {url} ({encoding}): {reason}")]
    EventDecode {
        /// The executor API URL.
        url: String,
        /// The negotiated encoding (`application/x-protobuf` or `application/json`).
        encoding: &'static str,
        /// Why decoding failed.
        reason: String,
    },
    /// The SUBSCRIBE response announced a content type we did not ask for.
    #[error("the agent at {url} answered SUBSCRIBE with content type {content_type:?}; expected application/x-protobuf or application/json")]
    UnexpectedContentType {
        /// The executor API URL.
        url: String,
        /// The `Content-Type` header as received.
        content_type: String,
    },
    /// The Docker engine could not be used.
    #[error("Docker: {0}")]
    Docker(#[from] deimos::runtime::RuntimeError),
    /// The task's URIs could not be fetched into the sandbox.
    #[error("fetching the URIs of task {task_id}: {source}")]
    Fetch {
        /// The task.
        task_id: String,
        /// The fetch failure.
        source: deimos::fetch::FetchError,
    },
}
