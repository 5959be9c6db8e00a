//! Errors of the state module.

use std::io;
use std::path::PathBuf;

use super::exit::InvalidExitRecord;
use super::id::InvalidId;
use super::lock::LockError;

/// Something went wrong reading or changing the state root.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted, e.g. `create state directory`, `read`.
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An id is unusable as a file name.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// A lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// `create` found a state directory for this container already.
    #[error("state directory {} for container {id} already exists", path.display())]
    AlreadyExists {
        /// The container id.
        id: String,
        /// Its state directory.
        path: PathBuf,
    },
    /// There is no state directory for this container.
    #[error("no state directory for container {id} (looked for {})", path.display())]
    NotFound {
        /// The container id.
        id: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// No `docker/<id>` index link exists.
    #[error("no container is indexed under docker id {docker_id} (looked for {})", path.display())]
    DockerIdNotFound {
        /// The Docker container id.
        docker_id: String,
        /// The index link looked for.
        path: PathBuf,
    },
    /// A Docker id was recorded already and a different one was given.
    #[error(
        "container {id} already has docker id {existing}, refusing to record {requested} ({})",
        path.display()
    )]
    DockerIdConflict {
        /// The container id.
        id: String,
        /// The recorded docker id.
        existing: String,
        /// The docker id given now.
        requested: String,
        /// The `cid` file or index link concerned.
        path: PathBuf,
    },
    /// A state file or link has content this module does not understand.
    #[error("unexpected content in {}: {reason}", path.display())]
    Corrupt {
        /// The file or link.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The creation record of a new container cannot be written as JSON (a sandbox path
    /// that is not UTF-8).
    #[error("cannot encode the creation record {} of container {id}: {reason}", path.display())]
    Unencodable {
        /// The container id.
        id: String,
        /// The `container.json` file.
        path: PathBuf,
        /// Why encoding failed.
        reason: String,
    },
    /// The `exit` file does not parse.
    #[error("cannot read exit record {}: {source}", path.display())]
    InvalidExit {
        /// The `exit` file.
        path: PathBuf,
        /// The parse error.
        source: InvalidExitRecord,
    },
    /// No free start-time index name was found (more than the allowed launches in one
    /// millisecond).
    #[error("no free start-time index name for container {id} under {}", path.display())]
    StartTimeExhausted {
        /// The container id.
        id: String,
        /// The start-time directory.
        path: PathBuf,
    },
    /// `state --rm` found another cleanup holding the cleanup lock.
    #[error("another `deimos state --rm` is running ({}; lock {})", holder_text(*holder_pid), path.display())]
    CleanupBusy {
        /// The cleanup lock file.
        path: PathBuf,
        /// The pid recorded by the other cleanup, when readable.
        holder_pid: Option<u32>,
    },
}

fn holder_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    }
}

impl StateError {
    /// Builds a closure turning an `io::Error` into [`StateError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| StateError::Io {
            action,
            path,
            source,
        }
    }
}
