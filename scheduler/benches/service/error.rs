//! What can go wrong while benchmarking; every variant names what was being done.

use std::path::PathBuf;

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
    /// An HTTP exchange with the service failed below the HTTP status level.
    #[error("{what}: {source}")]
    Http {
        /// The request, naming method and path.
        what: String,
        /// The client's error.
        source: hyper::Error,
    },
    /// The service answered with an unexpected status or body.
    #[error("{what}: HTTP {status}: {body}")]
    Unexpected {
        /// The request, naming method and path.
        what: String,
        /// The status received.
        status: u16,
        /// The (start of the) body received.
        body: String,
    },
    /// The service did not start, or exited.
    #[error("the eremetic service {what}; its log ({log}): {tail}")]
    Service {
        /// What happened.
        what: String,
        /// Where its stdout and stderr are captured.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },
    /// The Docker engine refused or failed a request (through the deimos runtime).
    #[error("Docker: {what}: {source} (is the engine running? run scripts/setup)")]
    Docker {
        /// The request, naming the container or image.
        what: String,
        /// The runtime's error.
        source: deimos_runtime::runtime::RuntimeError,
    },
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
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

    /// A mapper for `map_err` of HTTP client results.
    pub(crate) fn http(what: impl Into<String>) -> impl FnOnce(hyper::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Http { what, source }
    }

    /// A mapper for `map_err` of Docker runtime results.
    pub(crate) fn docker(
        what: impl Into<String>,
    ) -> impl FnOnce(deimos_runtime::runtime::RuntimeError) -> BenchError {
        let what = what.into();
        move |source| BenchError::Docker { what, source }
    }
}

/// The result type of the benchmark code.
pub(crate) type Result<T> = std::result::Result<T, BenchError>;
