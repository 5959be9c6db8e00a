//! The crate's error type and the process exit codes the `deimos` binary maps it to.

use crate::cli::UsageError;
use crate::config::ConfigError;
use crate::ecp::translate::TranslateError;
use crate::fetch::FetchError;
use crate::runtime::RuntimeError;
use crate::state::{InvalidId, InvalidTimestamp, LockError, StateError};

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: bad or missing command-line arguments.
pub const EXIT_USAGE: i32 = 1;
/// Exit code: a handled error (bad input, Docker failure, busy lock, unknown container...).
pub const EXIT_HANDLED: i32 = 4;
/// Exit code: an unexpected failure.
pub const EXIT_UNEXPECTED: i32 = 8;
/// Exit code: the configuration could not be loaded.
pub const EXIT_CONFIG: i32 = 16;

/// Everything that can go wrong in a `deimos` subcommand.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The input record could not be read or decoded, or the output record not written.
    #[error("{0}")]
    Record(#[from] mesos_proto::ecp::EcpError),
    /// A request record that decodes but cannot be acted on.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The `Launch` message cannot become a container.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// A container id that cannot be used.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// A time argument that cannot be parsed.
    #[error(transparent)]
    Timestamp(#[from] InvalidTimestamp),
    /// The state directory could not be read or changed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Docker refused or failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A URI could not be fetched into the sandbox.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The container is not known to this containerizer.
    #[error("unknown container {0}: no state directory")]
    UnknownContainer(String),
    /// The watcher process could not be started or did not get ready.
    #[error("cannot start the watcher: {0}")]
    Watcher(String),
    /// Another `deimos state --rm` holds the cleanup lock.
    #[error("another `deimos state --rm` is running{}", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    CleanupBusy {
        /// The pid recorded in the lock file, if readable.
        holder: Option<u32>,
    },
    /// Some state directories could not be removed.
    #[error("{0} state directories could not be removed")]
    CleanupFailed(usize),
    /// An I/O failure outside the state directory (sandbox, stdout, processes).
    #[error("cannot {action}: {source}")]
    Io {
        /// What was attempted.
        action: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Any of the above, about one container.
    #[error("container {id}: {source}")]
    Container {
        /// The Mesos container id.
        id: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// Anything else: a bug or an unexpected environment.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Config(_) => EXIT_CONFIG,
            Error::Internal(_) => EXIT_UNEXPECTED,
            Error::Container { source, .. } => source.exit_code(),
            _ => EXIT_HANDLED,
        }
    }

    /// An I/O error with what was being attempted.
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}

/// Runs `work` and attributes its error to container `id` (so the one-line error message
/// names the container).
pub fn in_container<T>(id: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    work().map_err(|source| match source {
        already @ Error::Container { .. } => already,
        source => Error::Container {
            id: id.to_owned(),
            source: Box::new(source),
        },
    })
}

/// Result alias of this crate's subcommands.
pub type Result<T, E = Error> = std::result::Result<T, E>;
