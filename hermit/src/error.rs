//! What can go wrong in `hermit`, and the process exit code of each failure.

use std::io;

/// Exit code of a failure that has no more specific code: the server refused the request
/// (other than 401/403/404), a response could not be read, a waited task failed without an
/// exit code.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error: bad flags or arguments, bad `-filter`, bad task file,
/// bad `EREMETIC_URL` or credentials variables.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the server cannot be reached (connection refused, DNS, TLS, timeout).
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code when the task (or route) does not exist (HTTP 404).
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit code when the server refuses the credentials (HTTP 401 or 403).
pub const EXIT_UNAUTHORIZED: u8 = 5;

/// A failure of a `hermit` command. Each message is one line naming what failed and why.
#[derive(Debug, thiserror::Error)]
pub enum HermitError {
    /// Bad command-line usage (reported by the argument parser or found later).
    #[error("{0}")]
    Usage(String),
    /// `EREMETIC_URL` is not an absolute http(s) URL.
    #[error("EREMETIC_URL {url:?} is not a valid http(s) URL: {reason}")]
    BadUrl {
        /// The value.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The task file could not be read.
    #[error("cannot read task file {path}: {source}")]
    ReadTaskFile {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The task file is not a valid list of tasks.
    #[error("task file {path} is invalid: {reason}")]
    BadTaskFile {
        /// The file.
        path: String,
        /// What is wrong, with the entry concerned.
        reason: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the eremetic server at {url}: {reason}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The transport error, with its causes.
        reason: String,
    },
    /// The request failed after the connection was made (reading the body, a reset).
    #[error("{what} failed: {reason}")]
    Transport {
        /// The operation (`GET /api/v1/task/x`).
        what: String,
        /// The transport error, with its causes.
        reason: String,
    },
    /// The server answered 401 or 403.
    #[error("{what} was refused ({status}): {detail}")]
    Unauthorized {
        /// The operation.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The server's message, or a hint about the credential variables.
        detail: String,
    },
    /// The server answered 404.
    #[error("{what}: not found: {detail}")]
    NotFound {
        /// The operation.
        what: String,
        /// The server's message.
        detail: String,
    },
    /// The server answered another error status.
    #[error("{what} failed with HTTP {status}: {detail}")]
    Server {
        /// The operation.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        detail: String,
    },
    /// A response body is not what the API documents.
    #[error("{what}: unexpected response: {reason}")]
    BadResponse {
        /// The operation.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing to standard output failed.
    #[error("cannot write to standard output: {0}")]
    Output(#[source] io::Error),
    /// A failure of one step of a command that does several (one task of a task file).
    #[error("{context}: {source}")]
    Context {
        /// The step (`tasks[1] (name)`).
        context: String,
        /// What went wrong.
        #[source]
        source: Box<HermitError>,
    },
    /// The async runtime could not be created.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
}

impl HermitError {
    /// The process exit code of this failure (see the module documentation).
    pub fn exit_code(&self) -> u8 {
        match self {
            HermitError::Usage(_)
            | HermitError::BadUrl { .. }
            | HermitError::ReadTaskFile { .. }
            | HermitError::BadTaskFile { .. } => EXIT_USAGE,
            HermitError::Unreachable { .. } => EXIT_UNREACHABLE,
            HermitError::NotFound { .. } => EXIT_NOT_FOUND,
            HermitError::Unauthorized { .. } => EXIT_UNAUTHORIZED,
            HermitError::Transport { .. }
            | HermitError::Server { .. }
            | HermitError::BadResponse { .. }
            | HermitError::Output(_)
            | HermitError::Runtime(_) => EXIT_FAILURE,
            HermitError::Context { source, .. } => source.exit_code(),
        }
    }

    /// This error as the failure of `context`.
    pub fn context(self, context: impl Into<String>) -> HermitError {
        HermitError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The error as the one line `hermit` prints on standard error (without the `hermit: `
    /// prefix): line breaks of server messages are folded into spaces.
    pub fn one_line(&self) -> String {
        one_line(&self.to_string())
    }
}

/// `text` with every run of line breaks (and the blanks around them) folded into one space.
pub fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_kind_has_its_documented_exit_code() {
        let server = |status| HermitError::Server {
            what: "x".into(),
            status,
            detail: String::new(),
        };
        assert_eq!(HermitError::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(server(500).exit_code(), EXIT_FAILURE);
        let unreachable = HermitError::Unreachable {
            url: "u".into(),
            reason: "r".into(),
        };
        assert_eq!(unreachable.exit_code(), EXIT_UNREACHABLE);
        let missing = HermitError::NotFound {
            what: "w".into(),
            detail: "d".into(),
        };
        assert_eq!(missing.exit_code(), EXIT_NOT_FOUND);
        let refused = HermitError::Unauthorized {
            what: "w".into(),
            status: 401,
            detail: "d".into(),
        };
        assert_eq!(refused.exit_code(), EXIT_UNAUTHORIZED);
    }

    #[test]
    fn one_line_folds_line_breaks() {
        assert_eq!(one_line("a\n  b\r\n\nc "), "a b c");
        assert_eq!(one_line("single"), "single");
    }
}
