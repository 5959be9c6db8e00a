//! Copying a container's output into the `stdout` and `stderr` files of its sandbox, with an
//! optional per-stream limit enforced by rotation (layout in [`super::output`]).
//!
//! Why rotation rather than truncating one file in place: keeping the last N bytes of a single
//! file means copying them to its start on every overflow (or punching holes, which readers
//! following by offset cannot handle), while renaming the full file to `<file>.1` costs
//! nothing, keeps at least `limit` bytes of the newest output readable at all times, bounds
//! the disk use to about twice the limit, and lets a follower holding the old file finish it
//! before moving on to the new one.

use std::io;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use bollard::container::LogOutput;
use futures::{Stream, StreamExt};
use time::OffsetDateTime;
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

use super::error::RuntimeError;
use super::output::{dropped_bytes, dropped_path, rotated_path, STDERR_FILE, STDOUT_FILE};
use super::types::LogTotals;

/// How [`super::ContainerRuntime::stream_logs`] saves a container's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// Resume at this time (whole seconds; after a restart) instead of the beginning.
    pub since: Option<OffsetDateTime>,
    /// Most bytes of one stream's current file; when the next chunk would exceed it, the file
    /// is rotated (see [`super::output`]). `None`: unlimited.
    pub limit: Option<NonZeroU64>,
    /// Bytes at the start of each stream (from `since`) that were saved already and are not
    /// appended again: a stream resumed after the engine went away replays the same output
    /// from the same `since`, and skipping what was saved makes the files exact (`since`
    /// alone has whole-second resolution, so it would repeat or drop output).
    pub skip: StreamBytes,
}

impl LogOptions {
    /// From the beginning (or `since`), without a limit.
    pub fn since(since: Option<OffsetDateTime>) -> LogOptions {
        LogOptions {
            since,
            ..LogOptions::default()
        }
    }
}

/// A byte count for each of a container's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamBytes {
    /// Bytes of stdout.
    pub stdout: u64,
    /// Bytes of stderr.
    pub stderr: u64,
}

impl StreamBytes {
    /// Bytes ever appended to the `stdout` and `stderr` files in `dir`, rotated and dropped
    /// ones included (see [`super::output::saved_bytes`]).
    pub async fn saved_in(dir: &Path) -> StreamBytes {
        StreamBytes {
            stdout: super::output::saved_bytes(&dir.join(STDOUT_FILE)).await,
            stderr: super::output::saved_bytes(&dir.join(STDERR_FILE)).await,
        }
    }

    /// `self - earlier`, stream by stream, never below zero (the files may have been
    /// replaced behind the writer's back).
    pub fn since(self, earlier: StreamBytes) -> StreamBytes {
        StreamBytes {
            stdout: self.stdout.saturating_sub(earlier.stdout),
            stderr: self.stderr.saturating_sub(earlier.stderr),
        }
    }

    /// `self + other`, stream by stream.
    pub fn plus(self, other: StreamBytes) -> StreamBytes {
        StreamBytes {
            stdout: self.stdout.saturating_add(other.stdout),
            stderr: self.stderr.saturating_add(other.stderr),
        }
    }
}

/// Opens `path` for writing without following a symbolic link the container may have planted.
async fn open_for_append(path: &Path, truncate: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).custom_flags(libc::O_NOFOLLOW);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    options.open(path).await
}

/// One output stream's file, opened for appending.
struct OutputFile {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    /// Bytes this stream appended (in every file).
    written: u64,
    /// Bytes still to be skipped at the start of the stream (saved already).
    skip: u64,
    /// Bytes of the stream no longer on disk, as recorded in `<file>.dropped`.
    dropped: u64,
    limit: Option<NonZeroU64>,
}

impl OutputFile {
    async fn open(
        container: &str,
        path: PathBuf,
        limit: Option<NonZeroU64>,
        skip: u64,
    ) -> Result<Self, RuntimeError> {
        let file = open_for_append(&path, false)
            .await
            .map_err(|error| log_file_error(container, &path, error))?;
        let size = file
            .metadata()
            .await
            .map_err(|error| log_file_error(container, &path, error))?
            .len();
        let dropped = dropped_bytes(&path).await;
        Ok(Self {
            path,
            file,
            size,
            written: 0,
            skip,
            dropped,
            limit,
        })
    }

    /// Appends a chunk and flushes it, so that readers of the sandbox see output as it is
    /// produced. With a limit, the file is rotated before a chunk that would not fit; a chunk
    /// larger than the limit is split.
    async fn append(&mut self, container: &str, mut bytes: &[u8]) -> Result<(), RuntimeError> {
        let skipped = usize::try_from(self.skip).map_or(bytes.len(), |skip| skip.min(bytes.len()));
        bytes = &bytes[skipped..];
        self.skip -= skipped as u64;
        while !bytes.is_empty() {
            let take = match self.limit {
                None => bytes.len(),
                Some(limit) => {
                    let room = limit.get().saturating_sub(self.size);
                    if bytes.len() as u64 <= room {
                        bytes.len()
                    } else if self.size > 0 {
                        self.rotate()
                            .await
                            .map_err(|error| log_file_error(container, &self.path, error))?;
                        continue;
                    } else {
                        usize::try_from(limit.get()).unwrap_or(usize::MAX)
                    }
                }
            };
            let (now, rest) = bytes.split_at(take);
            self.file
                .write_all(now)
                .await
                .map_err(|error| log_file_error(container, &self.path, error))?;
            self.size += now.len() as u64;
            self.written += now.len() as u64;
            bytes = rest;
        }
        self.file
            .flush()
            .await
            .map_err(|error| log_file_error(container, &self.path, error))
    }

    /// Moves the full file to `<file>.1` (dropping the previous one, whose size is added to
    /// the counter first) and starts an empty file.
    async fn rotate(&mut self) -> io::Result<()> {
        self.file.flush().await?;
        let previous = rotated_path(&self.path);
        let replaced = match tokio::fs::symlink_metadata(&previous).await {
            Ok(metadata) if metadata.is_file() => metadata.len(),
            Ok(_) => 0,
            Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        if replaced > 0 {
            self.dropped += replaced;
            write_counter(&self.path, self.dropped).await?;
        }
        tokio::fs::rename(&self.path, &previous).await?;
        self.file = open_for_append(&self.path, true).await?;
        self.size = 0;
        Ok(())
    }
}

/// Replaces `<file>.dropped` with `count` (written to a temporary file, then renamed, so that
/// a reader never sees half a number).
async fn write_counter(file: &Path, count: u64) -> io::Result<()> {
    let counter = dropped_path(file);
    let mut temporary = counter.clone().into_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    match tokio::fs::remove_file(&temporary).await {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .await?;
    out.write_all(format!("{count}\n").as_bytes()).await?;
    out.flush().await?;
    drop(out);
    tokio::fs::rename(&temporary, &counter).await
}

/// Appends the chunks of a log stream to `dir/stdout` and `dir/stderr` (created if missing)
/// until the stream ends, rotating each at `limit`. Console output (TTY containers) goes to
/// `stdout`; stdin echoes are dropped.
#[cfg(test)]
pub(crate) async fn write_log_stream<S>(
    container: &str,
    dir: &Path,
    limit: Option<NonZeroU64>,
    stream: S,
) -> Result<LogTotals, RuntimeError>
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>>,
{
    let options = LogOptions {
        limit,
        ..LogOptions::default()
    };
    write_log_stream_with(container, dir, options, stream).await
}

/// [`write_log_stream`] with the limit of `options`, first skipping `options.skip` bytes of
/// each stream (`options.since` was applied by whoever opened the stream).
pub(crate) async fn write_log_stream_with<S>(
    container: &str,
    dir: &Path,
    options: LogOptions,
    stream: S,
) -> Result<LogTotals, RuntimeError>
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>>,
{
    let limit = options.limit;
    let stdout_path = dir.join(STDOUT_FILE);
    let mut stdout = OutputFile::open(container, stdout_path, limit, options.skip.stdout).await?;
    let stderr_path = dir.join(STDERR_FILE);
    let mut stderr = OutputFile::open(container, stderr_path, limit, options.skip.stderr).await?;
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
        stdout_dropped_bytes: stdout.dropped,
        stderr_dropped_bytes: stderr.dropped,
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
        let totals = write_log_stream("c1", dir.path(), None, futures::stream::iter(chunks))
            .await
            .unwrap();
        assert_eq!(
            totals,
            LogTotals {
                stdout_bytes: 8,
                stderr_bytes: 5,
                ..LogTotals::default()
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
        let error = write_log_stream("c2", dir.path(), None, futures::stream::iter(chunks))
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
            None,
            futures::stream::empty(),
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/sandbox/stdout"),
            "{error}"
        );
    }

    fn limit(bytes: u64) -> Option<NonZeroU64> {
        NonZeroU64::new(bytes)
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_stream_over_the_limit_is_rotated_keeping_the_newest_output() {
        let dir = tempfile::tempdir().unwrap();
        // Five 4-byte lines with a 10-byte limit: files of two lines each.
        let chunks: Vec<_> = ["aaa\n", "bbb\n", "ccc\n", "ddd\n", "eee\n"]
            .into_iter()
            .map(out)
            .collect();
        let totals = write_log_stream("c4", dir.path(), limit(10), futures::stream::iter(chunks))
            .await
            .unwrap();
        assert_eq!(read(dir.path(), "stdout"), "eee\n");
        assert_eq!(read(dir.path(), "stdout.1"), "ccc\nddd\n");
        assert_eq!(read(dir.path(), "stdout.dropped").trim(), "8");
        assert_eq!(totals.stdout_bytes, 20);
        assert_eq!(totals.stdout_dropped_bytes, 8);
        assert_eq!(totals.stderr_dropped_bytes, 0);
        assert!(!dir.path().join("stderr.1").exists());
    }

    #[tokio::test]
    async fn a_chunk_larger_than_the_limit_is_split_and_only_its_tail_kept() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = vec![err("0123456789abcdefghijXYZ")];
        let totals = write_log_stream("c5", dir.path(), limit(10), futures::stream::iter(chunks))
            .await
            .unwrap();
        assert_eq!(read(dir.path(), "stderr"), "XYZ");
        assert_eq!(read(dir.path(), "stderr.1"), "abcdefghij");
        assert_eq!(totals.stderr_dropped_bytes, 10);
        assert_eq!(totals.stderr_bytes, 23);
    }

    #[tokio::test]
    async fn a_resumed_stream_continues_the_count_of_dropped_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stdout.1"), "12345").unwrap();
        std::fs::write(dir.path().join("stdout"), "67890").unwrap();
        std::fs::write(dir.path().join("stdout.dropped"), "100\n").unwrap();
        let chunks = vec![out("abc")];
        let totals = write_log_stream("c6", dir.path(), limit(6), futures::stream::iter(chunks))
            .await
            .unwrap();
        assert_eq!(read(dir.path(), "stdout.1"), "67890");
        assert_eq!(read(dir.path(), "stdout"), "abc");
        assert_eq!(totals.stdout_dropped_bytes, 105);
    }

    #[tokio::test]
    async fn a_symbolic_link_planted_as_an_output_file_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("host-file");
        std::fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("stdout")).unwrap();
        let error = write_log_stream(
            "c7",
            dir.path(),
            None,
            futures::stream::iter(vec![out("x")]),
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("stdout"), "{error}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }

    #[tokio::test]
    async fn skipped_bytes_of_each_stream_are_not_appended_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stdout"), "one\ntw").unwrap();
        std::fs::write(dir.path().join("stderr"), "e1\n").unwrap();
        // The replay of the whole log after the engine came back.
        let chunks = vec![out("one\n"), err("e1\n"), out("two\n"), err("e2\n")];
        let options = LogOptions {
            skip: StreamBytes {
                stdout: 6,
                stderr: 3,
            },
            ..LogOptions::default()
        };
        let totals =
            write_log_stream_with("c8", dir.path(), options, futures::stream::iter(chunks))
                .await
                .unwrap();
        assert_eq!(read(dir.path(), "stdout"), "one\ntwo\n");
        assert_eq!(read(dir.path(), "stderr"), "e1\ne2\n");
        assert_eq!((totals.stdout_bytes, totals.stderr_bytes), (2, 3));
    }
}
