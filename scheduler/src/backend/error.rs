//! Errors of the backends, classified for the scheduler core: a failure to start a task
//! (counts against its retries), a vanished container (the task is lost), or an unreachable
//! Docker engine (nothing is wrong with the task; try again later).

use std::path::PathBuf;

use deimos_runtime::fetch::FetchError;
use deimos_runtime::runtime::RuntimeError;

use crate::task::TaskId;

/// A failure of a backend operation. Messages name the task or run and the cause; they never
/// contain environment values.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The Docker engine could not be reached (connection refused, socket missing, timeout).
    #[error("cannot reach the Docker engine ({operation} {target}): {reason}")]
    Unreachable {
        /// What was being done (`launch`, `wait`, `recover`...).
        operation: &'static str,
        /// The task, run or container concerned.
        target: String,
        /// Why the engine could not be reached.
        reason: String,
    },
    /// The task cannot run on this backend at all (resources beyond the total, unsupported
    /// feature).
    #[error("task {task} cannot run on this backend: {reason}")]
    Inadmissible {
        /// The task.
        task: TaskId,
        /// Which field exceeds which limit.
        reason: String,
    },
    /// A volume's sandbox-relative host path cannot be mounted (it leads out of the sandbox
    /// through a symbolic link, or cannot be created).
    #[error("task {task}: {reason}")]
    SandboxVolume {
        /// The task.
        task: TaskId,
        /// Which volume (`volumes[i].host_path`) and why.
        reason: String,
    },
    /// The allocation does not match the task (an error of the caller).
    #[error("task {task}: {reason}")]
    AllocationMismatch {
        /// The task.
        task: TaskId,
        /// What does not match.
        reason: String,
    },
    /// The sandbox directory or its output files could not be prepared or removed.
    #[error("{target}: {action} {}: {source}", path.display())]
    Sandbox {
        /// The task or run (`task <id>`, `run <id>`).
        target: String,
        /// What was being done (`creating the sandbox`, `removing the sandbox`...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Fetching one of the task's URIs failed (the message names the URI).
    #[error("task {task}: {source}")]
    Fetch {
        /// The task.
        task: TaskId,
        /// The fetch failure, naming the URI.
        source: FetchError,
    },
    /// The image is missing and could not be pulled, or the pull failed.
    #[error("run {run}: {source}")]
    Image {
        /// The run (`<task id>.<attempt>`).
        run: String,
        /// The runtime's error, naming the image.
        source: RuntimeError,
    },
    /// Docker refused to create or start the container.
    #[error("run {run}: starting the container failed: {source}")]
    StartRefused {
        /// The run (`<task id>.<attempt>`).
        run: String,
        /// The runtime's error.
        source: RuntimeError,
    },
    /// The run's container no longer exists (removed behind our back).
    #[error("run {run}: container {container} no longer exists")]
    Gone {
        /// The run (`<task id>.<attempt>`).
        run: String,
        /// The Docker container id.
        container: String,
    },
    /// Another operation on an existing container failed.
    #[error("run {run}: {operation} failed: {source}")]
    Container {
        /// The run (`<task id>.<attempt>`) or container.
        run: String,
        /// The operation (`wait`, `stop`, `destroy`, `inspect`).
        operation: &'static str,
        /// The runtime's error.
        source: RuntimeError,
    },
    /// The data directory could not be prepared.
    #[error("preparing the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Mesos backend could not be set up (a bad master address, an HTTP client that
    /// cannot be built).
    #[error("Mesos backend: {0}")]
    Mesos(#[from] crate::mesos::MesosError),
    /// A query that concerns no single run (listing this instance's containers) failed.
    #[error("{operation} failed: {source}")]
    Query {
        /// What was being done (`listing the containers of this instance`).
        operation: &'static str,
        /// The runtime's error.
        source: RuntimeError,
    },
}

impl BackendError {
    /// Whether the Docker engine could not be reached: the task itself is fine.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, BackendError::Unreachable { .. })
    }

    /// Whether the error is a failure of the task to start (bad image, failed fetch, Docker
    /// refusing the container, inadmissible task): it counts against the task's retries.
    pub fn is_start_failure(&self) -> bool {
        matches!(
            self,
            BackendError::Inadmissible { .. }
                | BackendError::AllocationMismatch { .. }
                | BackendError::Sandbox { .. }
                | BackendError::SandboxVolume { .. }
                | BackendError::Fetch { .. }
                | BackendError::Image { .. }
                | BackendError::StartRefused { .. }
        )
    }

    /// Whether the run's container vanished (the task is lost).
    pub fn is_gone(&self) -> bool {
        matches!(self, BackendError::Gone { .. })
    }

    /// Classifies a runtime error of a launch: unreachable engine, image problem, or refusal.
    pub(crate) fn launch(run: &str, error: RuntimeError) -> BackendError {
        if let Some(reason) = unreachable_reason(&error) {
            return BackendError::Unreachable {
                operation: "launch",
                target: format!("run {run}"),
                reason,
            };
        }
        match error {
            RuntimeError::ImageNotFound { .. } | RuntimeError::PullFailed { .. } => {
                BackendError::Image {
                    run: run.to_owned(),
                    source: error,
                }
            }
            other => BackendError::StartRefused {
                run: run.to_owned(),
                source: other,
            },
        }
    }

    /// Classifies a runtime error of an operation on an existing container.
    pub(crate) fn container(
        operation: &'static str,
        run: &str,
        container: &str,
        error: RuntimeError,
    ) -> BackendError {
        if let Some(reason) = unreachable_reason(&error) {
            return BackendError::Unreachable {
                operation,
                target: format!("run {run}"),
                reason,
            };
        }
        if error.is_no_such_container() {
            return BackendError::Gone {
                run: run.to_owned(),
                container: container.to_owned(),
            };
        }
        BackendError::Container {
            run: run.to_owned(),
            operation,
            source: error,
        }
    }

    /// Classifies a runtime error of a query that concerns no single run (listing containers).
    pub(crate) fn query(operation: &'static str, error: RuntimeError) -> BackendError {
        match unreachable_reason(&error) {
            Some(reason) => BackendError::Unreachable {
                operation,
                target: "containers".to_owned(),
                reason,
            },
            None => BackendError::Query {
                operation,
                source: error,
            },
        }
    }
}

/// Why the engine was unreachable, if the error says so.
///
/// The runtime reports failed connections as [`RuntimeError::Connect`], but a request that
/// fails on an established client (the engine went away) arrives as a generic Docker or create
/// failure. Those carry the engine's answer with its HTTP status (`... (HTTP 500)`) whenever
/// the engine answered, so a message without a status means no answer came: the engine is
/// unreachable.
fn unreachable_reason(error: &RuntimeError) -> Option<String> {
    match error {
        RuntimeError::Connect { host, reason } => Some(format!("{host}: {reason}")),
        RuntimeError::Docker { reason, .. } | RuntimeError::CreateFailed { reason, .. }
            if !reason.contains("(HTTP ") =>
        {
            Some(reason.clone())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(reason: &str) -> RuntimeError {
        RuntimeError::Docker {
            operation: "start",
            target: "c1".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn errors_without_an_engine_answer_mean_unreachable() {
        let error = BackendError::launch(
            "t.1",
            docker("error trying to connect: No such file or directory"),
        );
        assert!(
            error.is_unreachable() && !error.is_start_failure(),
            "{error}"
        );
        let connect = RuntimeError::Connect {
            host: "unix:///nope.sock".into(),
            reason: "refused".into(),
        };
        let error = BackendError::container("wait", "t.1", "c1", connect);
        assert!(error.is_unreachable());
        assert!(error.to_string().contains("unix:///nope.sock"), "{error}");
    }

    #[test]
    fn engine_refusals_and_image_problems_are_start_failures() {
        let refused = BackendError::launch("t.1", docker("port is already allocated (HTTP 500)"));
        assert!(matches!(refused, BackendError::StartRefused { .. }));
        assert!(refused.is_start_failure());
        assert!(refused.to_string().contains("run t.1"), "{refused}");
        let missing = RuntimeError::ImageNotFound {
            image: "nope:1".into(),
            reason: "manifest unknown".into(),
        };
        let error = BackendError::launch("t.2", missing);
        assert!(matches!(error, BackendError::Image { .. }) && error.is_start_failure());
        assert!(error.to_string().contains("nope:1"), "{error}");
        // A registry-side pull failure is not the engine being unreachable.
        let pull = RuntimeError::PullFailed {
            image: "x".into(),
            reason: "dial tcp: lookup registry: no such host".into(),
        };
        assert!(BackendError::launch("t.3", pull).is_start_failure());
    }

    #[test]
    fn missing_container_means_gone() {
        let error = BackendError::container(
            "wait",
            "t.1",
            "c1",
            RuntimeError::NoSuchContainer { id: "c1".into() },
        );
        assert!(error.is_gone());
        assert_eq!(error.to_string(), "run t.1: container c1 no longer exists");
    }
}
