//! Copying a container's output into the `stdout` and `stderr` files of its sandbox.

use std::path::{Path, PathBuf};

use bollard::container::LogOutput;
use futures::{Stream, StreamExt};
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

use super::error::RuntimeError;
use super::types::LogTotals;

/// Name of the file receiving a container's standard output.
pub const STDOUT_FILE: &str = "stdout";
/// Name of the file receiving a container's standard error.
pub const STDERR_FILE: &str = "stderr";

/// One output file, opened for appending.
struct OutputFile {
    path: PathBuf,
    file: File,
    written: u64,
}

impl OutputFile {
    async fn open(container: &str, path: PathBuf) -> Result<Self, RuntimeError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|error| log_file_error(container, &path, error))?;
        Ok(Self {
            path,
            file,
            written: 0,
        })
    }

    /// Appends a chunk and flushes it, so that readers of the sandbox see output as it is
    /// produced.
    async fn append(&mut self, container: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|error| log_file_error(container, &self.path, error))?;
        self.file
            .flush()
            .await
            .map_err(|error| log_file_error(container, &self.path, error))?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Appends the chunks of a log stream to `dir/stdout` and `dir/stderr` (created if missing)
/// until the stream ends. Console output (TTY containers) goes to `stdout`; stdin echoes are
/// dropped.
pub(crate) async fn write_log_stream<S>(
    container: &str,
    dir: &Path,
    stream: S,
) -> Result<LogTotals, RuntimeError>
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>>,
{
    let mut stdout = OutputFile::open(container, dir.join(STDOUT_FILE)).await?;
    let mut stderr = OutputFile::open(container, dir.join(STDERR_FILE)).await?;
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        match chunk.map_err(|error| RuntimeError::container("logs", container, error))? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                stdout.append(container, &message).await?;
            }
            LogOutput::StdErr { message } => stderr.append(container, &message).await?,
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(LogTotals {
        stdout_bytes: stdout.written,
        stderr_bytes: stderr.written,
    })
}

fn log_file_error(container: &str, path: &Path, error: std::io::Error) -> RuntimeError {
    RuntimeError::LogFile {
        container: container.to_owned(),
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &str) -> Result<LogOutput, bollard::errors::Error> {
        Ok(LogOutput::StdOut {
            message: text.as_bytes().to_vec().into(),
        })
    }

    fn err(text: &str) -> Result<LogOutput, bollard::errors::Error> {
        Ok(LogOutput::StdErr {
            message: text.as_bytes().to_vec().into(),
        })
    }

    #[tokio::test]
    async fn log_stream_is_split_into_appended_stdout_and_stderr_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stdout"), "earlier\n").unwrap();
        let chunks = vec![out("one\n"), err("oops\n"), out("two\n")];
        let totals = write_log_stream("c1", dir.path(), futures::stream::iter(chunks))
            .await
            .unwrap();
        assert_eq!(
            totals,
            LogTotals {
                stdout_bytes: 8,
                stderr_bytes: 5
            }
        );
        let stdout = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
        assert_eq!(stdout, "earlier\none\ntwo\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stderr")).unwrap(),
            "oops\n"
        );
    }

    #[tokio::test]
    async fn log_stream_error_for_missing_container_is_no_such_container() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = vec![
            out("partial\n"),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message: "No such container: c2".into(),
            }),
        ];
        let error = write_log_stream("c2", dir.path(), futures::stream::iter(chunks))
            .await
            .unwrap_err();
        assert!(error.is_no_such_container(), "{error}");
        let stdout = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
        assert_eq!(stdout, "partial\n");
    }

    #[tokio::test]
    async fn unwritable_sandbox_names_the_file() {
        let error = write_log_stream(
            "c3",
            Path::new("/nonexistent/sandbox"),
            futures::stream::empty(),
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/sandbox/stdout"),
            "{error}"
        );
    }
}
