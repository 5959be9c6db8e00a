//! Per-container state directories, indexes, file locks and cleanup.
//!
//! # Layout
//!
//! Everything lives under a state root chosen by the caller (Deimos used `/tmp/deimos`,
//! [`DEFAULT_ROOT`]). It is meant to be read by operators with `ls` and `cat`:
//!
//! ```text
//! <root>/mesos/<container-id>/      one directory per container (see ContainerId)
//!     container.json                creation record (pretty JSON, see ContainerRecord): container,
//!                                   executor and task ids, owner, start time, start-time entry
//!                                   name, sandbox; written before the directory appears, so it
//!                                   is the "complete" marker; never changed afterwards
//!     cid                           Docker container id + newline, once known
//!     pid                           watcher process id + newline, once a watcher runs
//!     exit                          exit record (JSON, see ExitRecord); present ⇔ exited
//!     lock.launch lock.wait lock.observe lock.destroy     empty flock(2) files
//!     watcher.log, destroyed, observer.out, observer.err  kept by the containerizer (crate::ecp)
//! <root>/docker/<docker-id>         symlink → ../mesos/<container-id>
//! <root>/start-time/<ISO time>      symlink → ../mesos/<container-id>  (format: timestamp)
//! <root>/creating/                  directories being assembled by a launch (transient)
//! <root>/cleanup                    lock file of `deimos state --rm`
//! ```
//!
//! The layout is lean on purpose: removing a file that holds data, or a directory, frees a
//! block, and on file systems mounted with `discard` every freed block waits for a TRIM, which
//! dominates `deimos state --rm`. Values written once at creation therefore share one file,
//! lock files stay empty (holders are read from `/proc/locks`) and sit beside the other files
//! instead of in a directory of their own. An exited container has three files with data
//! (`container.json`, `cid`, `exit`), plus `pid` and `watcher.log` when a watcher ran.
//!
//! Directories of older layouts (this program's earlier versions and Python Deimos, 5.12) are
//! still listed, read and cleaned: without `container.json`, the values come from the files
//! `mesos-container-id` (complete marker), `eid`, `task-id`, `owner`, `started`, `t` and
//! `sandbox` ([`files::legacy`]), lock files from `lock/<name>`, and exit files may hold a raw
//! `docker wait` integer ([`ExitRecord::parse`]). New directories are always written in the
//! current layout.
//!
//! `container.json`, `cid`, `pid` and `exit` are replaced or created atomically (temp file,
//! fsync, rename, fsync of the directory; D-17) unless the root uses [`Durability::NoSync`]. A
//! launch assembles its directory under `creating/`, takes `lock.launch` there, writes
//! `container.json` and the start-time link, syncs once, and renames the directory into
//! `mesos/` in one step, so a directory in `mesos/` is never half made, is already locked and
//! indexed when it appears. Readers still treat a directory without a `container.json` naming
//! it (nor a legacy `mesos-container-id`) as [`ContainerStatus::Incomplete`] (directories of
//! other tools), and never panic on one.
//!
//! Several agents on one host can share a root: each records its owner string (the agent's
//! work directory, in `container.json`) and filters listings and cleanup with [`Scope::Owner`].
//!
//! # Locking protocol (as in Deimos, 5.13)
//!
//! Lock `<name>` of a container is the file `lock.<name>` in its directory ([`LockName`];
//! `lock/<name>` in directories of older layouts, see [`ContainerDir::lock_path`]).
//!
//! | Who | Locks | Meaning |
//! |---|---|---|
//! | launch | `launch` EX (taken before the directory appears) … until the watcher holds `wait` | hides half-initialised state |
//! | watcher | `wait` EX while the container runs; records `exit` (retrying until it is written, the container kept meanwhile), removes the container, then releases `wait` | `wait` SH succeeding ⇒ the container exited and its exit is recorded |
//! | watcher | `observe` EX until the observer executor of a command task exited | the executor's final status reaches the agent before `wait` returns |
//! | restarting a watcher (`wait`, `recover`) | `launch` EX | one new watcher at a time |
//! | agent calls using the directory (`wait`, `observe`, `destroy`) | `launch` SH ([`ContainerDir::hold`]) for as long as they use it, except while restarting a watcher | the launch finished; the directory stays until they are done |
//! | `wait` | then `observe` SH, then `wait` SH | exit recorded and reported |
//! | `destroy` | `destroy` EX, with a timeout, before `launch` SH | serialises stops |
//! | `containers` | [`ContainerDir::status`] probes `launch` and `wait` with SH NB | live containers |
//! | `state --rm` | `<root>/cleanup` EX NB; per container `wait`, `launch`, `observe` EX NB | one cleanup at a time; never a watched container, nor one an agent call or the watcher still needs |
//!
//! The launch must keep `launch` EX until the watcher holds `wait` EX. In Deimos the
//! launcher took `wait` itself and forked, the child inheriting both locks. A Rust launcher
//! that spawns a separate watcher process should instead let the watcher take `wait` EX,
//! record its pid ([`ContainerDir::record_watcher_pid`]) and signal readiness, and only
//! then drop the `launch` guard. Nobody writes into lock files: `deimos locks` and the
//! "another cleanup is running (pid N)" message read holders from `/proc/locks`
//! ([`read_holder`]).
//!
//! # Cleanup
//!
//! [`StateRoot::exited_before`] lists exited containers started before a cutoff (`deimos
//! state [TIME]`, TIME parsed by [`parse_cutoff`]); [`StateRoot::remove_exited_before`]
//! removes them (`deimos state --rm`), including both index links, plus dangling index links
//! (start-time links only once a minute old) and abandoned `creating/` directories. It never
//! touches a container without an exit record, nor one whose `wait`, `launch` or `observe`
//! lock is held (see the table above). It unlinks `lock.launch` first, while holding it, so a
//! caller that reaches the directory during the removal finds it gone
//! ([`ContainerDir::hold`] returns `None`) instead of using a half-removed directory.

mod cleanup;
mod create;
mod dir;
mod error;
mod exit;
mod fsutil;
mod id;
mod lock;
mod locks_listing;
mod record;
#[cfg(any(test, feature = "test-util"))]
mod testing;
mod timestamp;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use cleanup::{CleanupFailure, CleanupReport, ExitedEntry, SkipReason, SkippedEntry};
pub use create::{LaunchingContainer, NewContainer};
pub use dir::{ContainerDir, ContainerStatus, ContainerSummary};
pub use error::StateError;
pub use exit::{ExitRecord, InvalidExitRecord};
pub use fsutil::Durability;
pub use id::{
    check_docker_id, check_path_component, ContainerId, IdRejection, InvalidId, MAX_ID_BYTES,
};
pub use lock::{
    acquire, is_held_exclusively, Acquire, LockError, LockGuard, LockHolder, LockMode, LockName,
};
pub use locks_listing::{
    exclusive_holder, join_locks, parse_proc_locks, read_holder, LockAccess, LockEntry, LockFileId,
    ProcLock,
};
pub use record::ContainerRecord;
#[cfg(any(test, feature = "test-util"))]
pub use testing::seed_exited_containers;
pub use timestamp::{
    format_iso_millis, parse_cutoff, parse_iso, InvalidTimestamp, StartTimeName, CUTOFF_FORMAT,
};

/// Deimos' state root.
pub const DEFAULT_ROOT: &str = "/tmp/deimos";

/// Names of the files in a container's state directory (lock files: [`LockName::file_name`]).
pub mod files {
    /// The creation record ([`super::ContainerRecord`]); written before the directory becomes
    /// visible, so it is the "complete" marker.
    pub const CONTAINER: &str = "container.json";
    /// The Docker container id.
    pub const DOCKER_ID: &str = "cid";
    /// The watcher's pid.
    pub const WATCHER_PID: &str = "pid";
    /// The exit record.
    pub const EXIT: &str = "exit";
    /// The watcher's log (its stderr), appended to by the containerizer's watcher.
    pub const WATCHER_LOG: &str = "watcher.log";

    /// Files of directories made by older versions (and by Python Deimos), still read when a
    /// directory has no `container.json`.
    pub mod legacy {
        /// The container id + newline; the old "complete" marker.
        pub const MESOS_CONTAINER_ID: &str = "mesos-container-id";
        /// The executor id.
        pub const EXECUTOR_ID: &str = "eid";
        /// The task id.
        pub const TASK_ID: &str = "task-id";
        /// The owner/scope string.
        pub const OWNER: &str = "owner";
        /// The creation time.
        pub const STARTED: &str = "started";
        /// The start-time index entry name.
        pub const START_TIME_TOKEN: &str = "t";
        /// The sandbox path (written by the containerizer's launch).
        pub const SANDBOX: &str = "sandbox";
        /// The directory of lock files (`lock/launch`, ...).
        pub const LOCK_DIR: &str = "lock";
        /// Every legacy file name above except the lock directory.
        pub const FILES: [&str; 7] = [
            MESOS_CONTAINER_ID,
            EXECUTOR_ID,
            TASK_ID,
            OWNER,
            STARTED,
            START_TIME_TOKEN,
            SANDBOX,
        ];
    }
}

/// Which containers an operation considers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every container under the root.
    #[default]
    All,
    /// Only containers whose recorded owner is exactly this string.
    Owner(String),
}

impl Scope {
    /// Whether a container with this recorded owner is in scope.
    pub fn matches(&self, owner: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Owner(wanted) => owner == Some(wanted.as_str()),
        }
    }
}

/// A state root: the directory holding `mesos/`, `docker/`, `start-time/`, `cleanup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRoot {
    root: PathBuf,
    durability: Durability,
}

impl StateRoot {
    /// A root at `path` with fsync'ed writes. Nothing is created until a launch needs it.
    pub fn new(path: impl Into<PathBuf>) -> StateRoot {
        StateRoot {
            root: path.into(),
            durability: Durability::Fsync,
        }
    }

    /// The same root with another durability setting.
    pub fn with_durability(self, durability: Durability) -> StateRoot {
        StateRoot { durability, ..self }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The durability setting.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// `<root>/mesos`.
    pub fn mesos_dir(&self) -> PathBuf {
        self.root.join("mesos")
    }

    /// `<root>/docker`.
    pub fn docker_dir(&self) -> PathBuf {
        self.root.join("docker")
    }

    /// `<root>/start-time`.
    pub fn start_time_dir(&self) -> PathBuf {
        self.root.join("start-time")
    }

    /// `<root>/creating`.
    pub fn creating_dir(&self) -> PathBuf {
        self.root.join("creating")
    }

    /// `<root>/cleanup`.
    pub fn cleanup_lock_path(&self) -> PathBuf {
        self.root.join("cleanup")
    }

    /// `<root>/mesos/<id>` (whether or not it exists).
    pub fn container_path(&self, id: &ContainerId) -> PathBuf {
        self.mesos_dir().join(id.as_str())
    }

    /// The state directory of `id`; [`StateError::NotFound`] if there is none.
    pub fn container(&self, id: &ContainerId) -> Result<ContainerDir, StateError> {
        let path = self.container_path(id);
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Ok(ContainerDir::new(self, id.clone())),
            Ok(_) => Err(StateError::NotFound {
                id: id.to_string(),
                path,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StateError::NotFound {
                id: id.to_string(),
                path,
            }),
            Err(e) => Err(StateError::io("inspect", path)(e)),
        }
    }

    /// The state directory indexed under `docker/<docker_id>`.
    pub fn container_by_docker_id(&self, docker_id: &str) -> Result<ContainerDir, StateError> {
        check_docker_id(docker_id)?;
        let link = self.docker_dir().join(docker_id);
        let id = match self.index_link_container(&link) {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Err(StateError::Corrupt {
                    path: link,
                    reason: "index link does not point to ../mesos/<container-id>".into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::DockerIdNotFound {
                    docker_id: docker_id.to_owned(),
                    path: link,
                })
            }
            Err(e) => return Err(StateError::io("read index link", link)(e)),
        };
        self.container(&id)
    }

    /// Every container directory in scope with its status, sorted by id. Entries whose
    /// names are not valid ids are ignored; a missing root gives an empty list.
    pub fn list(&self, scope: &Scope) -> Result<Vec<ContainerSummary>, StateError> {
        let mut summaries = Vec::new();
        for id in self.container_ids()? {
            let dir = ContainerDir::new(self, id);
            match dir.summary() {
                Ok(summary) if scope.matches(summary.owner.as_deref()) => summaries.push(summary),
                Ok(_) => {}
                // Removed by a concurrent cleanup or discard while we looked.
                Err(_) if !dir.path().exists() => {}
                Err(e) => return Err(e),
            }
        }
        summaries.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(summaries)
    }

    /// The ids of the directories under `mesos/` (unsorted; other files and invalid names
    /// skipped).
    pub(crate) fn container_ids(&self) -> Result<Vec<ContainerId>, StateError> {
        Ok(read_dir_names_where(&self.mesos_dir(), |t| t.is_dir())?
            .into_iter()
            .filter_map(|name| ContainerId::new(name).ok())
            .collect())
    }

    /// What an index link to `id` contains: `../mesos/<id>`.
    pub(crate) fn index_target(&self, id: &ContainerId) -> PathBuf {
        Path::new("../mesos").join(id.as_str())
    }

    /// The container an index link points to; `Ok(None)` for links of another shape.
    pub(crate) fn index_link_container(&self, link: &Path) -> io::Result<Option<ContainerId>> {
        let target = fs::read_link(link)?;
        Ok(container_of_index_target(&target))
    }

    /// Whether the index link at `link` points to `id`.
    pub(crate) fn index_link_points_to(&self, link: &Path, id: &ContainerId) -> bool {
        matches!(self.index_link_container(link), Ok(Some(found)) if &found == id)
    }

    /// Removes an index link if it points to `id`.
    pub(crate) fn remove_index_link(
        &self,
        link: &Path,
        id: &ContainerId,
    ) -> Result<(), StateError> {
        if self.index_link_points_to(link, id) {
            dir::remove_path(link)?;
        }
        Ok(())
    }
}

/// The container id in an index link target `../mesos/<id>`; pure.
pub(crate) fn container_of_index_target(target: &Path) -> Option<ContainerId> {
    let name = target.strip_prefix("../mesos").ok()?.to_str()?;
    ContainerId::new(name).ok()
}

/// File names in `dir`; a missing directory has none.
pub(crate) fn read_dir_names(dir: &Path) -> Result<Vec<String>, StateError> {
    read_dir_names_where(dir, |_| true)
}

/// Names in `dir` whose file type (not following symlinks) passes `keep`.
fn read_dir_names_where(
    dir: &Path,
    keep: impl Fn(fs::FileType) -> bool,
) -> Result<Vec<String>, StateError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StateError::io("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StateError::io("list", dir))?;
        match entry.file_type() {
            Ok(file_type) if keep(file_type) => {}
            // Vanished meanwhile, or filtered out.
            _ => continue,
        }
        // Names that are not UTF-8 cannot be ids or ISO times written by this module.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_targets_name_their_container() {
        let id = ContainerId::new("abc").unwrap();
        let root = StateRoot::new("/r");
        assert_eq!(container_of_index_target(&root.index_target(&id)), Some(id));
        assert_eq!(container_of_index_target(Path::new("/r/mesos/abc")), None);
        assert_eq!(container_of_index_target(Path::new("../mesos/a/b")), None);
        assert_eq!(container_of_index_target(Path::new("../mesos")), None);
    }

    #[test]
    fn scope_all_matches_everything_and_owner_matches_exactly() {
        assert!(Scope::All.matches(None));
        let scope = Scope::Owner("/var/lib/mesos-a".into());
        assert!(scope.matches(Some("/var/lib/mesos-a")));
        assert!(!scope.matches(Some("/var/lib/mesos-b")));
        assert!(!scope.matches(None));
    }
}
