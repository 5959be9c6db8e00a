//! Errors of the Docker runtime and their classification from bollard errors.

use std::path::PathBuf;

/// A failure of a Docker runtime operation.
///
/// Messages name the image, container, file or field concerned and the cause. They never contain
/// environment values or registry passwords: only variable names and user names.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The Docker Engine could not be reached or its API version could not be negotiated.
    #[error("cannot connect to the Docker Engine at {host}: {reason}")]
    Connect {
        /// The host as configured (`unix:///var/run/docker.sock`, `tcp://host:2375`...).
        host: String,
        /// Why the connection failed.
        reason: String,
    },
    /// The image is neither present locally nor available from its registry.
    #[error("image {image} not found: {reason}")]
    ImageNotFound {
        /// The image reference.
        image: String,
        /// What Docker or the registry said.
        reason: String,
    },
    /// Pulling the image failed for another reason than its absence (network, credentials...).
    #[error("pulling image {image} failed: {reason}")]
    PullFailed {
        /// The image reference.
        image: String,
        /// Why the pull failed.
        reason: String,
    },
    /// Docker refused to create the container.
    #[error("creating a container from image {image} failed: {reason}")]
    CreateFailed {
        /// The image reference.
        image: String,
        /// Why the creation failed.
        reason: String,
    },
    /// A container with the requested name already exists (for instance one created by an
    /// earlier attempt whose response was lost).
    #[error("a container named {name} already exists: {reason}")]
    NameConflict {
        /// The requested container name.
        name: String,
        /// What Docker said.
        reason: String,
    },
    /// The container does not exist (HTTP 404); callers usually treat it as "already gone".
    #[error("no such container: {id}")]
    NoSuchContainer {
        /// The container id or name that was looked up.
        id: String,
    },
    /// The container specification cannot be expressed as a Docker request.
    #[error("invalid container specification: {field}: {reason}")]
    InvalidSpec {
        /// The offending field of the specification (`env`, `limits.cpu_quota`...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A registry credentials file could not be read or parsed.
    #[error("cannot read registry credentials from {path}: {reason}")]
    DockerConfig {
        /// The credentials file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// Writing a container's output into the sandbox failed.
    #[error("cannot write the output of container {container} to {path}: {reason}")]
    LogFile {
        /// The container whose output was being written.
        container: String,
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The container is not running (HTTP 409 to a kill), so it cannot receive a signal.
    #[error("container {id} is not running")]
    NotRunning {
        /// The container id or name.
        id: String,
    },
    /// Any other failure of a Docker Engine API call.
    #[error("Docker {operation} of {target} failed: {reason}")]
    Docker {
        /// The operation (`start`, `wait`, `inspect`...).
        operation: &'static str,
        /// The container or image concerned.
        target: String,
        /// Why it failed.
        reason: String,
    },
}

impl RuntimeError {
    /// Whether the error says the container does not exist, which callers treat as
    /// "already gone".
    pub fn is_no_such_container(&self) -> bool {
        matches!(self, RuntimeError::NoSuchContainer { .. })
    }

    /// The error of a container operation: 404 becomes [`RuntimeError::NoSuchContainer`],
    /// anything else [`RuntimeError::Docker`].
    pub(crate) fn container(
        operation: &'static str,
        id: &str,
        error: bollard::errors::Error,
    ) -> Self {
        if http_status(&error) == Some(404) {
            RuntimeError::NoSuchContainer { id: id.to_owned() }
        } else {
            RuntimeError::Docker {
                operation,
                target: id.to_owned(),
                reason: describe(&error),
            }
        }
    }
}

/// The HTTP status of an error response of the Engine, if the error is one.
pub(crate) fn http_status(error: &bollard::errors::Error) -> Option<u16> {
    match error {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A one-line description of a bollard error: the Engine's own message when there is one.
pub(crate) fn describe(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            format!("{} (HTTP {status_code})", message.trim())
        }
        bollard::errors::Error::DockerStreamError { error } => error.trim().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn http_404_on_a_container_means_no_such_container() {
        let error =
            RuntimeError::container("inspect", "abc", server_error(404, "No such container"));
        assert!(error.is_no_such_container());
        assert_eq!(error.to_string(), "no such container: abc");
    }

    #[test]
    fn other_failures_name_operation_container_and_cause() {
        let error = RuntimeError::container("kill", "abc", server_error(409, "is not running"));
        assert!(!error.is_no_such_container());
        assert_eq!(
            error.to_string(),
            "Docker kill of abc failed: is not running (HTTP 409)"
        );
    }
}
