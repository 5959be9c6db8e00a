//! Real flock(2) behaviour of the state module's locks, within and across processes.

// Helpers panic like the tests themselves: a panic is the failure report (see clippy.toml).
#![allow(clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use deimos::state::{
    acquire, is_held_exclusively, read_holder, Acquire, ContainerId, Durability, LockAccess,
    LockError, LockMode, LockName, NewContainer, StateRoot,
};

fn lock_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("lock")
}

/// Kills the helper process group (flock(1) and its `sleep`, which inherits the locked
/// descriptor) even when an assertion fails.
struct ChildGuard(Child);

impl ChildGuard {
    fn kill_and_wait(&mut self) {
        let group = Pid::from_raw(i32::try_from(self.0.id()).unwrap());
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill_and_wait();
    }
}

/// `flock(1)` (util-linux) holding `path` in `mode` for 30 s in a separate process.
fn hold_in_other_process(path: &Path, mode: &str) -> ChildGuard {
    let child = Command::new("flock")
        .args([mode, path.to_str().unwrap(), "sleep", "30"])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("flock(1) from util-linux is needed for the cross-process lock tests");
    let guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !held_by_someone(path) {
        assert!(
            Instant::now() < deadline,
            "flock(1) did not take {path:?} within 10 s"
        );
        thread::sleep(Duration::from_millis(10));
    }
    guard
}

fn wait_until_free(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while held_by_someone(path) {
        assert!(
            Instant::now() < deadline,
            "{path:?} still locked 10 s after its holder was killed"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn held_by_someone(path: &Path) -> bool {
    acquire(path, LockMode::Exclusive, Acquire::NonBlocking).is_err()
}

#[test]
fn exclusive_lock_excludes_another_open_file_description() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let _held = acquire(&path, LockMode::Exclusive, Acquire::Blocking).unwrap();
    for mode in [LockMode::Shared, LockMode::Exclusive] {
        match acquire(&path, mode, Acquire::NonBlocking) {
            Err(LockError::WouldBlock { path: p, mode: m }) => {
                assert_eq!((p, m), (path.clone(), mode))
            }
            other => panic!("expected WouldBlock, got {other:?}"),
        }
    }
}

#[test]
fn shared_locks_coexist_and_keep_exclusive_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let first = acquire(&path, LockMode::Shared, Acquire::NonBlocking).unwrap();
    let second = acquire(&path, LockMode::Shared, Acquire::NonBlocking).unwrap();
    assert!(acquire(&path, LockMode::Exclusive, Acquire::NonBlocking).is_err());
    assert!(!is_held_exclusively(&path).unwrap());
    drop((first, second));
    assert!(acquire(&path, LockMode::Exclusive, Acquire::NonBlocking).is_ok());
}

#[test]
fn dropping_the_guard_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let guard = acquire(&path, LockMode::Exclusive, Acquire::Blocking).unwrap();
    assert!(is_held_exclusively(&path).unwrap());
    drop(guard);
    assert!(!is_held_exclusively(&path).unwrap());
    let guard = acquire(&path, LockMode::Exclusive, Acquire::Blocking).unwrap();
    guard.unlock().unwrap();
    assert!(!is_held_exclusively(&path).unwrap());
}

#[test]
fn timeout_gives_up_after_the_limit_without_signals() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let _held = acquire(&path, LockMode::Exclusive, Acquire::Blocking).unwrap();
    let start = Instant::now();
    let error = acquire(
        &path,
        LockMode::Shared,
        Acquire::Timeout(Duration::from_millis(200)),
    )
    .unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(matches!(error, LockError::Timeout { .. }), "{error:?}");
    assert!(
        error.to_string().contains(path.to_str().unwrap()),
        "{error}"
    );
}

#[test]
fn timeout_acquires_once_the_holder_releases() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let held = acquire(&path, LockMode::Exclusive, Acquire::Blocking).unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        drop(held);
    });
    let guard = acquire(
        &path,
        LockMode::Exclusive,
        Acquire::Timeout(Duration::from_secs(10)),
    );
    releaser.join().unwrap();
    assert_eq!(guard.unwrap().mode(), LockMode::Exclusive);
}

#[test]
fn blocking_acquire_waits_for_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let held = acquire(&path, LockMode::Exclusive, Acquire::Blocking).unwrap();
    let waiter_path = path.clone();
    let waiter = thread::spawn(move || {
        let start = Instant::now();
        let _guard = acquire(&waiter_path, LockMode::Shared, Acquire::Blocking).unwrap();
        start.elapsed()
    });
    thread::sleep(Duration::from_millis(150));
    drop(held);
    assert!(waiter.join().unwrap() >= Duration::from_millis(100));
}

#[test]
fn d6_each_lock_request_keeps_its_own_mode_and_wait_policy() {
    // D-6: Deimos reused the first request's flags for later requests on the same path.
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let shared = acquire(&path, LockMode::Shared, Acquire::NonBlocking).unwrap();
    assert_eq!(shared.mode(), LockMode::Shared);
    let exclusive = acquire(
        &path,
        LockMode::Exclusive,
        Acquire::Timeout(Duration::from_millis(50)),
    );
    assert!(matches!(
        exclusive,
        Err(LockError::Timeout {
            mode: LockMode::Exclusive,
            ..
        })
    ));
    drop(shared);
    let exclusive = acquire(&path, LockMode::Exclusive, Acquire::NonBlocking).unwrap();
    assert_eq!(exclusive.mode(), LockMode::Exclusive);
}

#[test]
fn taking_a_lock_writes_nothing_into_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let guard = acquire(&path, LockMode::Exclusive, Acquire::Blocking).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    assert_eq!(read_holder(&path).unwrap().pid, std::process::id());
    drop(guard);
    assert_eq!(read_holder(&path), None);
}

#[test]
fn read_holder_names_the_exclusive_holder_of_another_process_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    std::fs::write(&path, "").unwrap();
    let mut exclusive = hold_in_other_process(&path, "-x");
    assert_eq!(read_holder(&path).unwrap().pid, exclusive.0.id());
    exclusive.kill_and_wait();
    // flock(1) shares its lock with the `sleep` it forks; the lock goes when that one is gone
    // too, which can be a moment after flock itself was reaped.
    wait_until_free(&path);
    let _shared = hold_in_other_process(&path, "-s");
    assert_eq!(read_holder(&path), None);
    assert_eq!(read_holder(&dir.path().join("missing")), None);
}

#[test]
fn lock_held_by_another_process_blocks_us_until_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    std::fs::write(&path, "").unwrap();
    let mut holder = hold_in_other_process(&path, "-x");
    assert!(is_held_exclusively(&path).unwrap());
    assert!(matches!(
        acquire(&path, LockMode::Shared, Acquire::NonBlocking),
        Err(LockError::WouldBlock { .. })
    ));
    holder.kill_and_wait();
    let guard = acquire(
        &path,
        LockMode::Exclusive,
        Acquire::Timeout(Duration::from_secs(5)),
    );
    assert!(guard.is_ok(), "{guard:?}");
}

#[test]
fn shared_lock_of_another_process_allows_our_shared_lock_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    std::fs::write(&path, "").unwrap();
    let _holder = hold_in_other_process(&path, "-s");
    assert!(!is_held_exclusively(&path).unwrap());
    assert!(acquire(&path, LockMode::Shared, Acquire::NonBlocking).is_ok());
    assert!(acquire(&path, LockMode::Exclusive, Acquire::NonBlocking).is_err());
}

#[test]
fn our_exclusive_lock_is_seen_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_file(&dir);
    let _guard = acquire(&path, LockMode::Exclusive, Acquire::Blocking).unwrap();
    let status = Command::new("flock")
        .args(["-n", "-s", path.to_str().unwrap(), "true"])
        .status()
        .expect("flock(1) from util-linux is needed for the cross-process lock tests");
    assert_eq!(
        status.code(),
        Some(1),
        "flock -n should fail while we hold the lock"
    );
}

#[test]
fn lock_listing_reports_our_write_lock_on_the_wait_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = StateRoot::new(dir.path()).with_durability(Durability::NoSync);
    let id = ContainerId::new("listed").unwrap();
    let (container, launch) = root
        .create_container(&id, &NewContainer::default())
        .unwrap()
        .into_parts();
    drop(launch);
    let _wait = container
        .lock(LockName::Wait, LockMode::Exclusive, Acquire::NonBlocking)
        .unwrap();
    let entries = root.lock_listing().unwrap();
    let wait_path = container.lock_path(LockName::Wait);
    let ours: Vec<_> = entries.iter().filter(|e| e.path == wait_path).collect();
    assert_eq!(ours.len(), 1, "{entries:?}");
    assert_eq!(ours[0].pid, Some(std::process::id()));
    assert_eq!(ours[0].access, LockAccess::Write);
    assert!(!ours[0].blocked);
    assert!(entries.iter().all(|e| e.path.starts_with(dir.path())));
}
