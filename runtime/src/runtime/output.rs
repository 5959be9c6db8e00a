//! The on-disk layout of a container's captured output in its sandbox, shared by the writer
//! ([`super::logs`]) and by readers (the scheduler's log endpoints and web UI).
//!
//! Each stream has a file, `stdout` or `stderr`. With an output limit, a file that reaches
//! the limit is renamed to `<file>.1` (replacing the previous one) and a new file is started;
//! `<file>.dropped` then holds, in decimal, how many bytes of the stream are no longer on disk
//! (the sum of the replaced `.1` files). So at most about twice the limit per stream is kept,
//! and the latest output is always in `<file>.1` followed by `<file>`.
//!
//! The sandbox is mounted into the container, which can replace any of these files: every
//! open here refuses symbolic links (`O_NOFOLLOW`), so that a planted link never makes the
//! host read or write a file outside the sandbox, and a malformed `.dropped` file counts as 0.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncReadExt;

/// Name of the file receiving a container's standard output.
pub const STDOUT_FILE: &str = "stdout";
/// Name of the file receiving a container's standard error.
pub const STDERR_FILE: &str = "stderr";

/// Suffix of the previous file of a rotated stream (`stdout.1`).
pub const ROTATED_SUFFIX: &str = ".1";
/// Suffix of the file counting the dropped bytes of a stream (`stdout.dropped`).
pub const DROPPED_SUFFIX: &str = ".dropped";

/// `file` with `suffix` appended to its name.
fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The previous file of a stream: `stdout` → `stdout.1`.
pub fn rotated_path(file: &Path) -> PathBuf {
    with_suffix(file, ROTATED_SUFFIX)
}

/// The dropped-bytes counter of a stream: `stdout` → `stdout.dropped`.
pub fn dropped_path(file: &Path) -> PathBuf {
    with_suffix(file, DROPPED_SUFFIX)
}

/// Every file the output of a container may occupy in `dir` (both streams, their rotated
/// files and counters), for resetting a sandbox before a new attempt.
pub fn output_paths(dir: &Path) -> Vec<PathBuf> {
    [STDOUT_FILE, STDERR_FILE]
        .iter()
        .flat_map(|name| {
            let file = dir.join(name);
            [rotated_path(&file), dropped_path(&file), file]
        })
        .collect()
}

/// Opens an output file for reading without following a symbolic link; `None` when it does
/// not exist.
pub async fn open_output(path: &Path) -> io::Result<Option<File>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .await;
    match opened {
        Ok(file) => {
            // A FIFO or device planted by the container is not output.
            if !file.metadata().await?.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a regular file", path.display()),
                ));
            }
            Ok(Some(file))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// The inode of the file now at `path` (without following a link); `None` when there is none.
/// A reader compares it with the inode of its open file to notice a rotation.
pub async fn inode_at(path: &Path) -> io::Result<Option<u64>> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(metadata) => Ok(Some(metadata.ino())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// The inode of an open file.
pub async fn inode_of(file: &File) -> io::Result<u64> {
    Ok(file.metadata().await?.ino())
}

/// How many bytes of the stream written to `file` were dropped by rotation (0 when none, or
/// when the counter is missing or malformed).
pub async fn dropped_bytes(file: &Path) -> u64 {
    let Ok(Some(counter)) = open_output(&dropped_path(file)).await else {
        return 0;
    };
    let mut text = String::new();
    // A counter is a few digits; more is not ours.
    if counter.take(32).read_to_string(&mut text).await.is_err() {
        return 0;
    }
    text.trim().parse().unwrap_or(0)
}

/// How many bytes of the stream written to `file` were ever appended: the dropped ones, those
/// of `<file>.1` and those of `<file>` (what is not a regular file counts as empty). It only
/// grows while one writer appends, rotation included.
pub async fn saved_bytes(file: &Path) -> u64 {
    let mut total = dropped_bytes(file).await;
    for path in [rotated_path(file), file.to_path_buf()] {
        if let Ok(metadata) = tokio::fs::symlink_metadata(&path).await {
            if metadata.is_file() {
                total = total.saturating_add(metadata.len());
            }
        }
    }
    total
}

/// What a reader of a stream starts from: the previous file (when the stream was rotated) and
/// the current one, to be read in that order, and how many bytes came before them.
#[derive(Debug)]
pub struct OutputTail {
    /// `<file>.1`, the output before the current file, when the stream was rotated.
    pub previous: Option<File>,
    /// The current file; `None` when it does not exist (yet).
    pub current: Option<File>,
    /// Bytes of the stream that are no longer on disk (dropped before `previous`).
    pub dropped: u64,
}

/// Opens the latest output of the stream written to `file`: `<file>.1` and `<file>`, as a
/// consistent pair (a rotation between the two opens is detected and the pair opened again).
pub async fn open_tail(file: &Path) -> io::Result<OutputTail> {
    let previous_path = rotated_path(file);
    loop {
        let dropped = dropped_bytes(file).await;
        let current = open_output(file).await?;
        let previous = open_output(&previous_path).await?;
        // The current file is opened first: if `.1` is that same file, a rotation happened in
        // between and `.1` no longer precedes it.
        if let (Some(current), Some(previous)) = (&current, &previous) {
            if inode_of(current).await? == inode_of(previous).await? {
                continue;
            }
        }
        return Ok(OutputTail {
            previous,
            current,
            dropped,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_and_counter_paths_extend_the_file_name() {
        let file = Path::new("/sandbox/stdout");
        assert_eq!(rotated_path(file), Path::new("/sandbox/stdout.1"));
        assert_eq!(dropped_path(file), Path::new("/sandbox/stdout.dropped"));
        assert_eq!(output_paths(Path::new("/s")).len(), 6);
    }

    #[tokio::test]
    async fn dropped_bytes_of_a_missing_or_malformed_counter_is_zero() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stdout");
        assert_eq!(dropped_bytes(&file).await, 0);
        std::fs::write(dropped_path(&file), "garbage").unwrap();
        assert_eq!(dropped_bytes(&file).await, 0);
        std::fs::write(dropped_path(&file), "1234\n").unwrap();
        assert_eq!(dropped_bytes(&file).await, 1234);
    }

    #[tokio::test]
    async fn a_planted_symbolic_link_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "host file").unwrap();
        let file = dir.path().join("stdout");
        std::os::unix::fs::symlink(&secret, &file).unwrap();
        assert!(open_output(&file).await.is_err());
        std::os::unix::fs::symlink(&secret, dropped_path(&file)).unwrap();
        assert_eq!(dropped_bytes(&file).await, 0);
    }

    #[tokio::test]
    async fn open_tail_pairs_the_rotated_file_with_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stdout");
        let tail = open_tail(&file).await.unwrap();
        assert!(tail.previous.is_none() && tail.current.is_none());
        std::fs::write(rotated_path(&file), "old\n").unwrap();
        std::fs::write(&file, "new\n").unwrap();
        std::fs::write(dropped_path(&file), "10").unwrap();
        let tail = open_tail(&file).await.unwrap();
        let mut text = String::new();
        tail.previous
            .unwrap()
            .read_to_string(&mut text)
            .await
            .unwrap();
        tail.current
            .unwrap()
            .read_to_string(&mut text)
            .await
            .unwrap();
        assert_eq!(text, "old\nnew\n");
        assert_eq!(tail.dropped, 10);
    }
}
