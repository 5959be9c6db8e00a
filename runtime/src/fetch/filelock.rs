//! flock(2) locks on the fetch cache's lock files, taken with non-blocking attempts and short
//! asynchronous sleeps in between, so that a fetch waiting for a lock can still be cancelled by
//! its deadline (and no thread is blocked meanwhile).
//!
//! Each acquisition opens the file anew: two locks on one file in one process conflict exactly
//! like two processes would, which is what de-duplicates concurrent fetches in one service.
//! A lock file may be removed by whoever holds it exclusively (eviction does, with the entry);
//! a waiter that then gets a lock on the removed file notices that the path now names another
//! file (or none) and tries again on the current one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

/// Shortest and longest pause between two attempts to take a held lock.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// Shared (`LOCK_SH`) or exclusive (`LOCK_EX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Shared,
    Exclusive,
}

/// A held lock, released when dropped (its descriptor is closed).
#[derive(Debug)]
pub(super) struct FileLock {
    _file: File,
}

/// Takes the lock on `path` (created when missing, mode 0600), waiting as long as it is held.
pub(super) async fn lock(path: &Path, mode: Mode) -> io::Result<FileLock> {
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(lock) = try_lock(path, mode)? {
            return Ok(lock);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// Takes the lock on `path` if nobody holds it in a conflicting mode; `Ok(None)` otherwise.
pub(super) fn try_lock(path: &Path, mode: Mode) -> io::Result<Option<FileLock>> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)?;
        // Fully qualified: std's inherent `File::try_lock*` (Rust 1.89+) would shadow fs2.
        let locked = match mode {
            Mode::Shared => fs2::FileExt::try_lock_shared(&file),
            Mode::Exclusive => fs2::FileExt::try_lock_exclusive(&file),
        };
        match locked {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => {
                return Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if still_named(&file, path)? {
            return Ok(Some(FileLock { _file: file }));
        }
        // The holder before us removed the file: lock the one the path names now.
    }
}

/// Whether `path` still names the open `file` (same device and inode).
fn still_named(file: &File, path: &Path) -> io::Result<bool> {
    let opened = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(current) => Ok(current.dev() == opened.dev() && current.ino() == opened.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_everyone_and_shared_holders_share() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = try_lock(&path, Mode::Shared).unwrap().expect("free lock");
        assert!(try_lock(&path, Mode::Shared).unwrap().is_some());
        assert!(try_lock(&path, Mode::Exclusive).unwrap().is_none());
        drop(first);
        let exclusive = try_lock(&path, Mode::Exclusive).unwrap().expect("released");
        assert!(try_lock(&path, Mode::Shared).unwrap().is_none());
        drop(exclusive);
        assert!(try_lock(&path, Mode::Shared).unwrap().is_some());
    }

    #[tokio::test]
    async fn a_waiter_on_a_removed_lock_file_locks_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let holder = try_lock(&path, Mode::Exclusive).unwrap().unwrap();
        let waiter = tokio::spawn({
            let path = path.clone();
            async move { lock(&path, Mode::Exclusive).await.unwrap() }
        });
        tokio::task::yield_now().await;
        // The holder removes the file it locked (as eviction does), then releases it.
        std::fs::remove_file(&path).unwrap();
        drop(holder);
        let got = waiter.await.unwrap();
        assert!(path.exists(), "the waiter locked a file the path names");
        assert!(try_lock(&path, Mode::Exclusive).unwrap().is_none());
        drop(got);
    }
}
