//! What can go wrong while benchmarking; every variant names what was being done.

use std::path::PathBuf;
use std::time::Duration;

/// A failure that makes a measurement meaningless (not a missed target).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// A file system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path or program.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `deimos` subcommand exited unsuccessfully.
    #[error("`deimos {command}` exited with {status}; its stderr ({stderr_path}): {stderr}")]
    Deimos {
        /// The subcommand and its arguments.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// Where its stderr was captured.
        stderr_path: PathBuf,
        /// The captured stderr.
        stderr: String,
    },
    /// A `deimos` subcommand did not exit in time.
    #[error("`deimos {command}` did not exit within {limit:?}; killed it")]
    Hung {
        /// The subcommand and its arguments.
        command: String,
        /// How long it was given.
        limit: Duration,
    },
    /// A protocol record could not be written or read.
    #[error("{what}: {source}")]
    Record {
        /// Which record, in which direction.
        what: String,
        /// The protocol error.
        source: mesos_proto::ecp::EcpError,
    },
    /// The Docker engine refused or failed a request.
    #[error("Docker: {what}: {source} (is the engine running? run scripts/setup)")]
    Docker {
        /// The request, naming the container or image.
        what: String,
        /// The engine's or client's error.
        source: bollard::errors::Error,
    },
    /// The state library failed (seeding state directories).
    #[error("{what}: {source}")]
    State {
        /// What was being done.
        what: String,
        /// The state error.
        source: deimos::state::StateError,
    },
    /// The deimos library refused an input (configuration, launch translation).
    #[error("{what}: {reason}")]
    Library {
        /// What was being done.
        what: String,
        /// The library's error message.
        reason: String,
    },
    /// A result was not what the benchmark checks for.
    #[error("check failed: {0}")]
    Check(String),
}

impl BenchError {
    /// A mapper for `map_err` of I/O results.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }

    /// A mapper for `map_err` of Docker results.
    pub(crate) fn docker(
        what: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Docker { what, source }
    }

    /// A mapper for `map_err` of state library results.
    pub(crate) fn state(
        what: impl Into<String>,
    ) -> impl FnOnce(deimos::state::StateError) -> BenchError {
        let what = what.into();
        move |source| BenchError::State { what, source }
    }

    /// A mapper for `map_err` of protocol record results.
    pub(crate) fn record(
        what: impl Into<String>,
    ) -> impl FnOnce(mesos_proto::ecp::EcpError) -> BenchError {
        let what = what.into();
        move |source| BenchError::Record { what, source }
    }
}

/// The result type of the benchmark code.
pub(crate) type Result<T> = std::result::Result<T, BenchError>;
