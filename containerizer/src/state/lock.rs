//! flock(2) locks on the files under `<root>/mesos/<id>/lock/` and on `<root>/cleanup`.
//!
//! Every [`acquire`] opens the lock file anew, so each request gets its own open file
//! description and its own mode and wait policy (Deimos cached one handle per path and reused
//! the first request's flags for later ones, D-6). A consequence worth knowing: two guards on
//! the same file in one process conflict exactly like two processes would.
//!
//! Waiting with a timeout polls with non-blocking attempts and short, growing sleeps; no
//! signal (SIGALRM) is involved (D-4), so it is safe in threaded and async programs.
//!
//! Dropping a [`LockGuard`] closes its descriptor, which releases the lock unless a child
//! process inherited the descriptor (then the child keeps holding it, as flock(2) locks belong
//! to the open file description). [`LockGuard::unlock`] releases it for every sharer.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::timestamp::{format_iso_millis, parse_iso};

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once (LOCK_SH).
    Shared,
    /// One holder, no shared holders (LOCK_EX).
    Exclusive,
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        })
    }
}

/// How long to wait for a lock held by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// Wait as long as it takes.
    Blocking,
    /// Fail at once with [`LockError::WouldBlock`].
    NonBlocking,
    /// Wait at most this long, then fail with [`LockError::Timeout`].
    Timeout(Duration),
}

/// A lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Opening or locking the file failed.
    #[error("cannot {action} lock file {}: {source}", path.display())]
    Io {
        /// What was attempted (`open`, `lock`, `unlock`).
        action: &'static str,
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A non-blocking request found the lock held.
    #[error("{mode} lock {} is held by another process", path.display())]
    WouldBlock {
        /// The lock file.
        path: PathBuf,
        /// The mode requested.
        mode: LockMode,
    },
    /// The lock stayed held for the whole timeout.
    #[error("timed out after {waited:?} waiting for a {mode} lock on {}", path.display())]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// The mode requested.
        mode: LockMode,
        /// How long it waited.
        waited: Duration,
    },
}

/// A held lock; released when dropped (see the module docs for inherited descriptors).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
    mode: LockMode,
}

impl LockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mode held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// Records this process as the holder (pid and time) in the lock file, for diagnostics
    /// (`deimos locks`, "another cleanup is running (pid N)"). Only meaningful for exclusive
    /// holders: shared holders would overwrite each other. The content is rewritten in place
    /// under the lock; a lock file cannot be replaced by rename, its inode carries the lock.
    pub fn record_holder(&self) -> Result<(), LockError> {
        let holder = LockHolder {
            pid: std::process::id(),
            since: Some(OffsetDateTime::now_utc()),
        };
        let io_error = |source| LockError::Io {
            action: "write holder into",
            path: self.path.clone(),
            source,
        };
        self.file.set_len(0).map_err(io_error)?;
        self.file
            .write_all_at(holder.render().as_bytes(), 0)
            .map_err(io_error)
    }

    /// Releases the lock now, also for any child process that inherited the descriptor.
    pub fn unlock(self) -> Result<(), LockError> {
        fs2::FileExt::unlock(&self.file).map_err(|source| LockError::Io {
            action: "unlock",
            path: self.path.clone(),
            source,
        })
    }
}

/// Takes a lock on `path`, creating the file (mode 0644) if needed.
pub fn acquire(path: &Path, mode: LockMode, how: Acquire) -> Result<LockGuard, LockError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|source| LockError::Io {
            action: "open",
            path: path.to_owned(),
            source,
        })?;
    lock_open_file(file, path, mode, how)
}

/// Takes a lock on an already open file.
pub(crate) fn lock_open_file(
    file: File,
    path: &Path,
    mode: LockMode,
    how: Acquire,
) -> Result<LockGuard, LockError> {
    let locked = match how {
        Acquire::Blocking => lock_blocking(&file, mode),
        Acquire::NonBlocking => try_lock(&file, mode),
        Acquire::Timeout(limit) => lock_polling(&file, mode, limit),
    };
    match locked {
        Ok(true) => Ok(LockGuard {
            file,
            path: path.to_owned(),
            mode,
        }),
        Ok(false) => Err(match how {
            Acquire::Timeout(waited) => LockError::Timeout {
                path: path.to_owned(),
                mode,
                waited,
            },
            _ => LockError::WouldBlock {
                path: path.to_owned(),
                mode,
            },
        }),
        Err(source) => Err(LockError::Io {
            action: "lock",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether someone holds an exclusive lock on `path`: a shared non-blocking attempt fails.
/// A missing file counts as "not held". Never creates the file.
pub fn is_held_exclusively(path: &Path) -> Result<bool, LockError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(LockError::Io {
                action: "open",
                path: path.to_owned(),
                source,
            })
        }
    };
    let held = !try_lock(&file, LockMode::Shared).map_err(|source| LockError::Io {
        action: "lock",
        path: path.to_owned(),
        source,
    })?;
    // Dropping `file` releases the probe's shared lock.
    Ok(held)
}

/// `Ok(false)` when the lock is held elsewhere.
fn try_lock(file: &File, mode: LockMode) -> io::Result<bool> {
    // Fully qualified: std's inherent `File::try_lock_shared` (Rust 1.89+) would shadow fs2.
    let result = match mode {
        LockMode::Shared => fs2::FileExt::try_lock_shared(file),
        LockMode::Exclusive => fs2::FileExt::try_lock_exclusive(file),
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

fn lock_blocking(file: &File, mode: LockMode) -> io::Result<bool> {
    loop {
        let result = match mode {
            LockMode::Shared => fs2::FileExt::lock_shared(file),
            LockMode::Exclusive => fs2::FileExt::lock_exclusive(file),
        };
        match result {
            Ok(()) => return Ok(true),
            // A signal interrupted the wait: keep waiting (Deimos did the same on EINTR).
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn lock_polling(file: &File, mode: LockMode, limit: Duration) -> io::Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if try_lock(file, mode)? {
            return Ok(true);
        }
        let elapsed = start.elapsed();
        if elapsed >= limit {
            return Ok(false);
        }
        thread::sleep(pause.min(limit - elapsed));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Who last recorded itself as the exclusive holder of a lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// When it took the lock, if recorded.
    pub since: Option<OffsetDateTime>,
}

impl LockHolder {
    /// The lock file content: `pid=<pid>` and `since=<ISO time>` lines.
    pub fn render(&self) -> String {
        match self.since {
            Some(t) => format!("pid={}\nsince={}\n", self.pid, format_iso_millis(t)),
            None => format!("pid={}\n", self.pid),
        }
    }

    /// Parses lock file content; `None` when there is no valid `pid=` line (empty file,
    /// a Deimos lock file holding only a time).
    pub fn parse(text: &str) -> Option<LockHolder> {
        let mut pid = None;
        let mut since = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", value)) => pid = value.trim().parse().ok(),
                Some(("since", value)) => since = parse_iso(value.trim()),
                _ => {}
            }
        }
        pid.map(|pid| LockHolder { pid, since })
    }
}

/// Reads the holder recorded in a lock file; `None` if absent or unreadable (diagnostics only).
pub fn read_holder(path: &Path) -> Option<LockHolder> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    LockHolder::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn holder_round_trips_through_lock_file_text() {
        let holder = LockHolder {
            pid: 4242,
            since: Some(datetime!(2024-05-01 12:00:00.5 UTC)),
        };
        assert_eq!(
            holder.render(),
            "pid=4242\nsince=2024-05-01T12:00:00.500Z\n"
        );
        assert_eq!(LockHolder::parse(&holder.render()), Some(holder));
    }

    #[test]
    fn holder_parse_ignores_files_without_pid() {
        assert_eq!(LockHolder::parse(""), None);
        assert_eq!(LockHolder::parse("2024-05-01T12:00:00.500Z\n"), None);
        assert_eq!(LockHolder::parse("pid=abc\n"), None);
    }
}

/// The per-container lock files under `<root>/mesos/<id>/lock/` (see the module docs of
/// [`crate::state`] for who holds which, and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockName {
    /// `lock/launch`: EX while a launch initialises the directory; SH by readers waiting for it.
    Launch,
    /// `lock/wait`: EX by the watcher while the container runs; SH by waiters (⇒ "exited").
    Wait,
    /// `lock/observe`: EX by the launch watcher of a command task until its observer exits.
    Observe,
    /// `lock/destroy`: EX while a destroy stops the container.
    Destroy,
}

impl LockName {
    /// Every lock, in the order they are created.
    pub const ALL: [LockName; 4] = [
        LockName::Launch,
        LockName::Wait,
        LockName::Observe,
        LockName::Destroy,
    ];

    /// The lock file's name inside `lock/`.
    pub fn file_name(self) -> &'static str {
        match self {
            LockName::Launch => "launch",
            LockName::Wait => "wait",
            LockName::Observe => "observe",
            LockName::Destroy => "destroy",
        }
    }
}

impl LockGuard {
    /// The same guard, reporting `path` (used when the directory holding it was renamed).
    pub(crate) fn relocated(self, path: PathBuf) -> LockGuard {
        LockGuard { path, ..self }
    }
}

/// Takes a lock without waiting, on a lock file that must already exist: `Ok(None)` when the
/// file is missing (directories of older tools). Never creates the file, so it cannot race
/// with the removal of the directory holding it.
pub(crate) fn try_lock_existing(
    path: &Path,
    mode: LockMode,
) -> Result<Option<LockGuard>, LockError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LockError::Io {
                action: "open",
                path: path.to_owned(),
                source,
            })
        }
    };
    lock_open_file(file, path, mode, Acquire::NonBlocking).map(Some)
}
