//! `deimos state [TIME]` and `deimos state --rm [TIME]`: finding and removing the state of
//! exited containers.
//!
//! A container qualifies when its start time is before the cutoff and its `exit` record
//! exists. Removal additionally requires its `wait`, `launch` and `observe` locks to be free
//! (taken EX NB and held while removing): a watched container is never touched even if an
//! exit record appeared early, nor one an agent call still uses (`wait`, `observe` and
//! `destroy` hold `launch` shared while they use the directory), nor one whose watcher still
//! waits for the observer executor to report (the agent's `wait` reads the exit after that). All of `<root>/docker/<cid>`, `<root>/mesos/<id>` and the start-time link itself
//! are removed (Deimos left the link dangling, D-11), and dangling index links and abandoned
//! `creating/` directories from earlier runs are removed too. A start-time link is dangling
//! only once it is older than a minute (by its name): a launch creates its link just before its
//! directory appears (see `create`). A missing root or `start-time` directory means "nothing
//! to do" (D-13). Only one cleanup runs at a time: a second one fails at once with
//! [`StateError::CleanupBusy`] (D-12), naming the running one's pid (from `/proc/locks`).
//!
//! Removal time is dominated by what the file system does per freed block (on ext4 mounted
//! with `discard`, a synchronous TRIM each): the layout keeps exited directories down to
//! three files with data (`container.json`, `cid`, `exit`) plus the directory itself.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use super::dir::{remove_path, ContainerDir};
use super::error::StateError;
use super::fsutil::{
    exists_no_follow, remove_dir_all_if_present, remove_file_if_present, sync_dir,
};
use super::id::{check_docker_id, ContainerId};
use super::lock::{acquire, try_lock_existing, Acquire, LockError, LockGuard, LockMode, LockName};
use super::locks_listing::read_holder;
use super::timestamp::StartTimeName;
use super::{files, read_dir_names, Scope, StateRoot};

/// A `creating/` directory older than this whose `launch` lock is free was abandoned by a
/// launch that died; assembling one takes milliseconds. Also the age from which a start-time
/// link without its directory is dangling (younger ones may belong to a launch in progress).
const ABANDONED_CREATION_AGE: Duration = Duration::from_secs(60);

/// Threads removing state directories in parallel (see `remove_all_exited`).
const REMOVAL_THREADS: usize = 8;

/// Below this many entries per thread, extra threads are not worth starting.
const MIN_ENTRIES_PER_THREAD: usize = 64;

/// An exited container found by [`StateRoot::exited_before`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitedEntry {
    /// The container id.
    pub id: ContainerId,
    /// Its state directory.
    pub dir: PathBuf,
    /// Its start-time index link; `None` for directories that were never indexed.
    pub index_link: Option<PathBuf>,
    /// Its start time.
    pub started_at: OffsetDateTime,
}

/// Why `state --rm` left an exited container alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its `wait` lock is held (a watcher, or a waiter reading the exit); retried next run.
    WaitLockHeld,
    /// Its `launch` lock is held: an agent call (`wait`, `observe`, `destroy`) still uses the
    /// directory, or a launch or watcher restart is in progress; retried next run.
    LaunchLockHeld,
    /// Its `observe` lock is held: the watcher waits for the observer executor to report the
    /// task's end, and the agent's `wait` will still read the exit; retried next run.
    ObserveLockHeld,
    /// Its exit record disappeared (removed by someone else meanwhile).
    NoLongerExited,
}

/// A container `state --rm` did not remove, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The container.
    pub entry: ExitedEntry,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Something `state --rm` failed to remove.
#[derive(Debug)]
pub struct CleanupFailure {
    /// The directory or link concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub error: StateError,
}

/// What `state --rm` did. The run failed partly when `failures` is not empty.
#[derive(Debug, Default)]
pub struct CleanupReport {
    /// Containers whose state was removed.
    pub removed: Vec<ExitedEntry>,
    /// Exited containers left alone.
    pub skipped: Vec<SkippedEntry>,
    /// Removals that failed.
    pub failures: Vec<CleanupFailure>,
    /// Index links (start-time or docker) whose container directory no longer existed.
    pub dangling_links_removed: Vec<PathBuf>,
    /// Directories under `creating/` left by launches that died while assembling them.
    pub abandoned_creations_removed: Vec<PathBuf>,
}

/// The result of one pass over the start-time index and `mesos/`.
#[derive(Default)]
struct Scan {
    exited: Vec<ExitedEntry>,
    dangling: Vec<PathBuf>,
}

impl StateRoot {
    /// Exited containers in `scope` started before `cutoff`, oldest first (`deimos state`).
    pub fn exited_before(
        &self,
        cutoff: OffsetDateTime,
        scope: &Scope,
    ) -> Result<Vec<ExitedEntry>, StateError> {
        Ok(self.scan(cutoff, scope)?.exited)
    }

    /// Removes the state of exited containers in `scope` started before `cutoff`
    /// (`deimos state --rm`); see the module docs for what is and is not removed.
    pub fn remove_exited_before(
        &self,
        cutoff: OffsetDateTime,
        scope: &Scope,
    ) -> Result<CleanupReport, StateError> {
        let mut report = CleanupReport::default();
        if !exists_no_follow(self.path()).map_err(StateError::io("inspect", self.path()))? {
            return Ok(report);
        }
        let lock_path = self.cleanup_lock_path();
        let cleanup_lock = match acquire(&lock_path, LockMode::Exclusive, Acquire::NonBlocking) {
            Ok(guard) => guard,
            Err(LockError::WouldBlock { path, .. }) => {
                return Err(StateError::CleanupBusy {
                    holder_pid: read_holder(&path).map(|h| h.pid),
                    path,
                })
            }
            Err(e) => return Err(e.into()),
        };
        let scan = self.scan(cutoff, scope)?;
        let outcomes = self.remove_all_exited(&scan.exited);
        for (entry, outcome) in scan.exited.into_iter().zip(outcomes) {
            match outcome {
                Ok(None) => report.removed.push(entry),
                Ok(Some(reason)) => report.skipped.push(SkippedEntry { entry, reason }),
                Err(error) => report.failures.push(CleanupFailure {
                    path: entry.dir,
                    error,
                }),
            }
        }
        for link in scan.dangling {
            self.remove_if_dangling(&link, &mut report);
        }
        for name in read_dir_names(&self.docker_dir())? {
            self.remove_if_dangling(&self.docker_dir().join(name), &mut report);
        }
        self.remove_abandoned_creations(&mut report)?;
        for dir in [self.mesos_dir(), self.start_time_dir(), self.docker_dir()] {
            if let Err(e) = sync_dir(&dir, self.durability()) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(StateError::io("sync", dir)(e));
                }
            }
        }
        drop(cleanup_lock);
        Ok(report)
    }

    /// Walks the start-time index (then unindexed directories) for exited containers.
    fn scan(&self, cutoff: OffsetDateTime, scope: &Scope) -> Result<Scan, StateError> {
        let mut scan = Scan::default();
        let mut names: Vec<String> = read_dir_names(&self.start_time_dir())?;
        names.sort_unstable();
        let mut indexed = HashSet::with_capacity(names.len());
        let dangling_before = OffsetDateTime::now_utc() - ABANDONED_CREATION_AGE;
        for name in names {
            let link = self.start_time_dir().join(&name);
            let id = match self.index_link_container(&link) {
                Ok(Some(id)) => id,
                // Not our link, or removed meanwhile.
                Ok(None) | Err(_) => continue,
            };
            indexed.insert(id.clone());
            let Some(started) = StartTimeName::parse(&name).map(|n| n.time) else {
                continue;
            };
            let dir = ContainerDir::new(self, id.clone());
            // A weird entry (e.g. `mesos/<id>` being a file) must not stop the whole cleanup.
            match dir.has_exit() {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    if started < dangling_before {
                        if let Ok(false) = exists_no_follow(dir.path()) {
                            scan.dangling.push(link);
                        }
                    }
                    continue;
                }
            }
            if started < cutoff && in_scope(&dir, scope) {
                scan.exited.push(ExitedEntry {
                    id,
                    dir: dir.path().to_owned(),
                    index_link: Some(link),
                    started_at: started,
                });
            }
        }
        self.scan_unindexed(&indexed, cutoff, scope, &mut scan)?;
        Ok(scan)
    }

    /// Exited directories without a start-time link (older tools, D-5), dated by their
    /// recorded start time or, failing that, their start-time entry name.
    fn scan_unindexed(
        &self,
        indexed: &HashSet<ContainerId>,
        cutoff: OffsetDateTime,
        scope: &Scope,
        scan: &mut Scan,
    ) -> Result<(), StateError> {
        let mut unindexed: Vec<ContainerId> = self
            .container_ids()?
            .into_iter()
            .filter(|id| !indexed.contains(id))
            .collect();
        unindexed.sort_unstable();
        for id in unindexed {
            let dir = ContainerDir::new(self, id.clone());
            if !dir.has_exit().unwrap_or(false) {
                continue;
            }
            let started = dir.started_at().ok().flatten().or_else(|| {
                let token = dir.start_time_token().ok().flatten()?;
                StartTimeName::parse(&token).map(|n| n.time)
            });
            match started {
                Some(started) if started < cutoff && in_scope(&dir, scope) => {
                    scan.exited.push(ExitedEntry {
                        id,
                        dir: dir.path().to_owned(),
                        index_link: None,
                        started_at: started,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes every entry, in parallel: unlinking is dominated by file-system latency
    /// (journal, discard), which several threads overlap. Outcomes are in entry order.
    fn remove_all_exited(
        &self,
        entries: &[ExitedEntry],
    ) -> Vec<Result<Option<SkipReason>, StateError>> {
        let threads = REMOVAL_THREADS
            .min(entries.len().div_ceil(MIN_ENTRIES_PER_THREAD))
            .max(1);
        let chunk = entries.len().div_ceil(threads).max(1);
        thread::scope(|scope| {
            let workers: Vec<_> = entries
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|e| self.remove_exited(e))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .zip(entries.chunks(chunk))
                .flat_map(|(worker, part)| {
                    worker.join().unwrap_or_else(|_| {
                        // A panic in a worker is a bug; report its entries as failed, not panic.
                        part.iter()
                            .map(|e| {
                                Err(StateError::Corrupt {
                                    path: e.dir.clone(),
                                    reason: "removal thread panicked".into(),
                                })
                            })
                            .collect()
                    })
                })
                .collect()
        })
    }

    /// Removes one exited container under its `wait`, `launch` and `observe` locks (taken
    /// exclusively without waiting: whoever holds one still needs the directory);
    /// `Some(reason)` if it was skipped.
    fn remove_exited(&self, entry: &ExitedEntry) -> Result<Option<SkipReason>, StateError> {
        let dir = ContainerDir::new(self, entry.id.clone());
        // Opening the current layout's lock first costs nothing extra for current directories.
        let mut layout = Layout::Current;
        let mut wait = try_lock_existing(
            &dir.path().join(LockName::Wait.file_name()),
            LockMode::Exclusive,
        );
        if matches!(wait, Ok(None)) {
            layout = Layout::Legacy;
            wait = try_lock_existing(&dir.legacy_lock_path(LockName::Wait), LockMode::Exclusive);
        }
        let wait = match wait {
            Ok(guard) => guard,
            Err(LockError::WouldBlock { .. }) => return Ok(Some(SkipReason::WaitLockHeld)),
            Err(e) => return Err(e.into()),
        };
        if !dir.has_exit()? {
            return Ok(Some(SkipReason::NoLongerExited));
        }
        let lock_path = |name: LockName| match layout {
            Layout::Current => dir.path().join(name.file_name()),
            Layout::Legacy => dir.legacy_lock_path(name),
        };
        let launch = match try_lock_existing(&lock_path(LockName::Launch), LockMode::Exclusive) {
            Ok(guard) => guard,
            Err(LockError::WouldBlock { .. }) => return Ok(Some(SkipReason::LaunchLockHeld)),
            Err(e) => return Err(e.into()),
        };
        let observe = match try_lock_existing(&lock_path(LockName::Observe), LockMode::Exclusive) {
            Ok(guard) => guard,
            Err(LockError::WouldBlock { .. }) => return Ok(Some(SkipReason::ObserveLockHeld)),
            Err(e) => return Err(e.into()),
        };
        let held = Held {
            launch,
            observe,
            wait,
        };
        if let Some(docker_id) = dir.docker_id()? {
            if check_docker_id(&docker_id).is_ok() {
                self.remove_index_link(&self.docker_dir().join(docker_id), &entry.id)?;
            }
        }
        remove_state_dir(dir.path(), layout, held).map_err(StateError::io("remove", dir.path()))?;
        if let Some(link) = &entry.index_link {
            // The scan read this link and found it pointing here; start-time names are
            // never reused, so it needs no second look.
            remove_path(link)?;
        }
        Ok(None)
    }

    /// Removes an index link whose container directory does not exist (checked again now).
    fn remove_if_dangling(&self, link: &Path, report: &mut CleanupReport) {
        let Ok(Some(id)) = self.index_link_container(link) else {
            return;
        };
        match exists_no_follow(&self.container_path(&id)) {
            Ok(false) => match remove_path(link) {
                Ok(true) => report.dangling_links_removed.push(link.to_owned()),
                Ok(false) => {}
                Err(error) => report.failures.push(CleanupFailure {
                    path: link.to_owned(),
                    error,
                }),
            },
            Ok(true) => {}
            Err(e) => report.failures.push(CleanupFailure {
                path: link.to_owned(),
                error: StateError::io("inspect", self.container_path(&id))(e),
            }),
        }
    }

    /// Removes `creating/` directories of launches that died while assembling them.
    fn remove_abandoned_creations(&self, report: &mut CleanupReport) -> Result<(), StateError> {
        let creating = self.creating_dir();
        for name in read_dir_names(&creating)? {
            let path = creating.join(name);
            if !is_older_than(&path, ABANDONED_CREATION_AGE) {
                continue;
            }
            let launch = path.join(LockName::Launch.file_name());
            let legacy_launch = path
                .join(files::legacy::LOCK_DIR)
                .join(LockName::Launch.legacy_file_name());
            // Held: the launch is alive (just slow); leave it.
            let (Ok(_guard), Ok(_legacy_guard)) = (
                try_lock_existing(&launch, LockMode::Exclusive),
                try_lock_existing(&legacy_launch, LockMode::Exclusive),
            ) else {
                continue;
            };
            match remove_dir_all_if_present(&path) {
                Ok(true) => report.abandoned_creations_removed.push(path),
                Ok(false) => {}
                Err(e) => report.failures.push(CleanupFailure {
                    error: StateError::io("remove", &path)(e),
                    path,
                }),
            }
        }
        Ok(())
    }
}

/// The locks `state --rm` holds (exclusively) on a directory it removes; `None` for lock files
/// a directory of an older layout lacks.
struct Held {
    launch: Option<LockGuard>,
    observe: Option<LockGuard>,
    wait: Option<LockGuard>,
}

/// Which layout a directory being removed has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `container.json` and `lock.<name>` files.
    Current,
    /// One file per value and a `lock/` directory (older versions, Python Deimos).
    Legacy,
}

/// The files with content a state directory of the current layout has; lock files apart.
const CURRENT_FILES: [&str; 5] = [
    files::CONTAINER,
    files::DOCKER_ID,
    files::WATCHER_PID,
    files::EXIT,
    files::WATCHER_LOG,
];

/// Removes a container directory by unlinking the names it is known to hold, which is about
/// a third fewer system calls than a generic recursive removal (no opening and listing of
/// directories); anything unexpected left in it (observer output, files of other tools)
/// falls back to the generic removal.
///
/// `lock.launch` goes first, while the cleanup holds it: an agent call blocked on it then
/// finds it unlinked once it gets it, and a later one does not find it at all; both take that
/// as "the state is gone" ([`ContainerDir::hold`]) instead of using a half-removed directory.
/// The `wait` guard is held while the other files go and released just before that file
/// itself is unlinked, so its inode is freed by the unlink rather than lingering until the
/// descriptor is closed.
fn remove_state_dir(dir: &Path, layout: Layout, held: Held) -> io::Result<()> {
    let Held {
        launch,
        observe,
        wait,
    } = held;
    let lock_path = |name: LockName| match layout {
        Layout::Current => dir.join(name.file_name()),
        Layout::Legacy => dir
            .join(files::legacy::LOCK_DIR)
            .join(name.legacy_file_name()),
    };
    // `ALL` starts with `Launch`.
    for name in LockName::ALL.into_iter().filter(|n| *n != LockName::Wait) {
        remove_file_if_present(&lock_path(name))?;
    }
    drop((launch, observe));
    for name in CURRENT_FILES {
        remove_file_if_present(&dir.join(name))?;
    }
    if layout == Layout::Legacy {
        for name in files::legacy::FILES {
            remove_file_if_present(&dir.join(name))?;
        }
    }
    drop(wait);
    remove_file_if_present(&lock_path(LockName::Wait))?;
    if layout == Layout::Legacy {
        let _ = fs::remove_dir(dir.join(files::legacy::LOCK_DIR));
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => remove_dir_all_if_present(dir).map(|_| ()),
    }
}

/// Whether `dir` is in `scope`; an unreadable owner means "not ours".
fn in_scope(dir: &ContainerDir, scope: &Scope) -> bool {
    match scope {
        Scope::All => true,
        Scope::Owner(_) => dir
            .owner()
            .is_ok_and(|owner| scope.matches(owner.as_deref())),
    }
}

fn is_older_than(path: &Path, age: Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|elapsed| elapsed > age)
}
