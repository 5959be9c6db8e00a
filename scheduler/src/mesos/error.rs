//! The one error type of the Mesos protocol layer.

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
    /// Talking to the master failed: not reachable, a refused call, a master that is not the
    /// leader, a broken, silent or undecodable event stream.
    #[error("Mesos master: {0}")]
    Client(#[source] mesos_client::ClientError),
}
