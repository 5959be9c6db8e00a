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
    Config(#[from] deimos_runtime::config::ConfigError),
    /// A task cannot be turned into a container.
    #[error("task {task_id} cannot be run as a container: {reason}")]
    InvalidTask {
        /// The task.
        task_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The operator's policy (`[policy]` of `deimos.cfg`) refuses what the task asks of the
    /// host; the message names the key that would allow it.
    #[error("task {task_id} refused by the operator's policy: {source}")]
    Refused {
        /// The task.
        task_id: String,
        /// What is refused.
        source: deimos_runtime::policy::PolicyError,
    },
    /// The command in a task's `TaskInfo.data` cannot be read.
    #[error("task {task_id}: {source}")]
    TaskData {
        /// The task.
        task_id: String,
        /// What is wrong with the data.
        source: deimos_runtime::mesos::task_data::TaskDataError,
    },
    /// A call to the agent failed: not reachable, refused, an undecodable or broken event
    /// stream.
    #[error("agent: {0}")]
    Agent(#[from] mesos_client::ClientError),
    /// The watchdog that removes the containers should the executor die could not be
    /// started.
    #[error("starting the watchdog process: {reason}")]
    Watchdog {
        /// What went wrong.
        reason: String,
    },
    /// The Docker engine could not be used.
    #[error("Docker: {0}")]
    Docker(#[from] deimos_runtime::runtime::RuntimeError),
    /// The task's URIs could not be fetched into the sandbox.
    #[error("fetching the URIs of task {task_id}: {source}")]
    Fetch {
        /// The task.
        task_id: String,
        /// The fetch failure.
        source: deimos_runtime::fetch::FetchError,
    },
}
