//! flock(2) locks on the files `<root>/mesos/<id>/lock.<name>` and on `<root>/cleanup`.
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
//!
//! Lock files stay empty: who holds a lock is read from `/proc/locks` (see
//! [`super::read_holder`] and `deimos locks`), so taking a lock never writes file data (data
//! blocks make removing a state directory slower, see [`crate::state`]).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

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

    /// Whether the locked file has been unlinked since it was opened: its directory was
    /// removed (by `deimos state --rm`) while this process waited for the lock.
    pub fn is_unlinked(&self) -> Result<bool, LockError> {
        use std::os::unix::fs::MetadataExt;
        self.file
            .metadata()
            .map(|meta| meta.nlink() == 0)
            .map_err(|source| LockError::Io {
                action: "inspect",
                path: self.path.clone(),
                source,
            })
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

/// The process holding a lock exclusively, as `/proc/locks` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder {
    /// The holder's process id (in our pid namespace).
    pub pid: u32,
}

/// The per-container lock files `<root>/mesos/<id>/lock.<name>` (see the module docs of
/// [`crate::state`] for who holds which, and why). Directories made by older versions keep
/// them as `lock/<name>`; [`crate::state::ContainerDir::lock_path`] finds either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockName {
    /// `lock.launch`: EX while a launch initialises the directory (or a watcher is restarted)
    /// and while `state --rm` removes it; SH by every agent call for as long as it uses the
    /// directory ([`crate::state::ContainerDir::hold`]).
    Launch,
    /// `lock.wait`: EX by the watcher while the container runs; SH by waiters (⇒ "exited").
    Wait,
    /// `lock.observe`: EX by the watcher until the observer executor of a command task has
    /// reported (also taken EX NB by `state --rm`: never removed while held).
    Observe,
    /// `lock.destroy`: EX while a destroy stops the container.
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

    /// The lock file's name in the container's directory, e.g. `lock.wait`.
    pub fn file_name(self) -> &'static str {
        match self {
            LockName::Launch => "lock.launch",
            LockName::Wait => "lock.wait",
            LockName::Observe => "lock.observe",
            LockName::Destroy => "lock.destroy",
        }
    }

    /// The lock file's name inside the `lock/` directory of older layouts, e.g. `wait`.
    pub fn legacy_file_name(self) -> &'static str {
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
    lock_existing(path, mode, Acquire::NonBlocking)
}

/// Takes a lock on a lock file that must already exist: `Ok(None)` when the file is missing.
/// Never creates the file (see [`try_lock_existing`]).
pub(crate) fn lock_existing(
    path: &Path,
    mode: LockMode,
    how: Acquire,
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
    lock_open_file(file, path, mode, how).map(Some)
}
