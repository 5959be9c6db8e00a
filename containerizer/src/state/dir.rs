//! One container's state directory, `<root>/mesos/<id>/`: reading, recording, status, removal.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::error::StateError;
use super::exit::ExitRecord;
use super::fsutil::{
    exists_no_follow, read_optional, remove_dir_all_if_present, remove_file_if_present, sync_dir,
    write_atomic,
};
use super::id::{check_docker_id, ContainerId};
use super::lock::{
    acquire, is_held_exclusively, lock_existing, Acquire, LockError, LockGuard, LockMode, LockName,
};
use super::record::ContainerRecord;
use super::timestamp::parse_iso;
use super::{files, StateRoot};

/// What a state directory says about its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerStatus {
    /// The directory lacks a `container.json` naming it (made by another tool, or being
    /// removed); do not treat it as a container.
    Incomplete,
    /// A launch holds `lock.launch` exclusively.
    Launching,
    /// A watcher holds `lock.wait` exclusively: the container runs and is watched.
    Running,
    /// No exit record and nobody holds `launch` or `wait`: the launch or its watcher died
    /// (e.g. a Deimos CID timeout, D-3, or a host restart); `recover` decides what to do.
    Unwatched,
    /// The `exit` record is present.
    Exited,
}

/// A handle on `<root>/mesos/<id>/`. Cheap to clone; holds no file open.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    root: StateRoot,
    id: ContainerId,
    path: PathBuf,
}

impl ContainerDir {
    pub(crate) fn new(root: &StateRoot, id: ContainerId) -> ContainerDir {
        let path = root.container_path(&id);
        ContainerDir {
            root: root.clone(),
            id,
            path,
        }
    }

    /// The container id.
    pub fn id(&self) -> &ContainerId {
        &self.id
    }

    /// `<root>/mesos/<id>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of a file in this directory (see [`files`]).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The lock file of `name`: `lock.<name>`, or `lock/<name>` in a directory of an older
    /// version that has that file (and not the new one).
    pub fn lock_path(&self, name: LockName) -> PathBuf {
        let current = self.path.join(name.file_name());
        if !current.exists() {
            let legacy = self.legacy_lock_path(name);
            if legacy.exists() {
                return legacy;
            }
        }
        current
    }

    /// `lock/<name>`, where older versions kept lock files.
    pub(crate) fn legacy_lock_path(&self, name: LockName) -> PathBuf {
        self.path
            .join(files::legacy::LOCK_DIR)
            .join(name.legacy_file_name())
    }

    /// Takes one of this container's locks; each call is independent (see [`super::lock`]).
    pub fn lock(
        &self,
        name: LockName,
        mode: LockMode,
        how: Acquire,
    ) -> Result<LockGuard, LockError> {
        acquire(&self.lock_path(name), mode, how)
    }

    /// Takes `launch` shared and returns the guard, to be kept for as long as the caller uses
    /// the directory (`wait`, `observe`, `destroy`): it waits for a launch in progress, and
    /// while it is held `state --rm` leaves the directory alone (it needs `launch`
    /// exclusively). `Ok(None)` when the directory is gone or being removed (see
    /// [`Self::lock_if_present`]).
    pub fn hold(&self) -> Result<Option<LockGuard>, StateError> {
        self.lock_if_present(LockName::Launch, LockMode::Shared, Acquire::Blocking)
    }

    /// Takes one of this container's locks unless the directory is gone or being removed by
    /// `state --rm`: `Ok(None)` when the lock file is missing, or was unlinked while this
    /// process waited for the lock. Never creates the lock file in a directory of the current
    /// layout (lock files are made before the directory appears, so a missing one means a
    /// cleanup is removing it); directories of older layouts, which created lock files on
    /// demand, get it created.
    pub fn lock_if_present(
        &self,
        name: LockName,
        mode: LockMode,
        how: Acquire,
    ) -> Result<Option<LockGuard>, StateError> {
        let path = self.lock_path(name);
        let guard = match lock_existing(&path, mode, how)? {
            Some(guard) => guard,
            None if self.is_legacy_complete()? => acquire(&path, mode, how)?,
            None => return Ok(None),
        };
        if guard.is_unlinked()? {
            return Ok(None);
        }
        Ok(Some(guard))
    }

    /// Whether this is a complete directory of an older layout (no `container.json`, and a
    /// `mesos-container-id` naming it).
    fn is_legacy_complete(&self) -> Result<bool, StateError> {
        let record = self.file(files::CONTAINER);
        if exists_no_follow(&record).map_err(StateError::io("check", record))? {
            return Ok(false);
        }
        Ok(self.read(files::legacy::MESOS_CONTAINER_ID)?.as_deref() == Some(self.id.as_str()))
    }

    /// Whether someone holds `name` exclusively (a non-blocking shared attempt fails).
    pub fn is_locked_exclusively(&self, name: LockName) -> Result<bool, LockError> {
        is_held_exclusively(&self.lock_path(name))
    }

    fn read(&self, name: &str) -> Result<Option<String>, StateError> {
        let path = self.file(name);
        read_optional(&path).map_err(StateError::io("read", path))
    }

    fn write(&self, name: &str, contents: &str) -> Result<(), StateError> {
        let path = self.file(name);
        write_atomic(&path, contents.as_bytes(), self.root.durability())
            .map_err(StateError::io("write", path))
    }

    /// The creation record (`container.json`); `None` when the directory has none (made by
    /// an older version, or by another tool). [`StateError::Corrupt`] when it does not parse.
    pub fn record(&self) -> Result<Option<ContainerRecord>, StateError> {
        let path = self.file(files::CONTAINER);
        match self.read(files::CONTAINER)? {
            None => Ok(None),
            Some(text) => {
                ContainerRecord::parse(&text)
                    .map(Some)
                    .map_err(|e| StateError::Corrupt {
                        path,
                        reason: format!("not a container record: {e}"),
                    })
            }
        }
    }

    /// One value of the creation record, or of the legacy file `legacy_name` in directories
    /// without `container.json`.
    fn created_value<T>(
        &self,
        from_record: impl FnOnce(ContainerRecord) -> Option<T>,
        legacy_name: &str,
        from_legacy: impl FnOnce(String) -> Result<T, StateError>,
    ) -> Result<Option<T>, StateError> {
        match self.record()? {
            Some(record) => Ok(from_record(record)),
            None => self.read(legacy_name)?.map(from_legacy).transpose(),
        }
    }

    /// Whether the directory is complete: its `container.json` (or, in directories of older
    /// versions, its `mesos-container-id` file) names this container. An unreadable record
    /// counts as incomplete.
    pub fn is_complete(&self) -> Result<bool, StateError> {
        match self.record() {
            Ok(Some(record)) => Ok(record.container_id == self.id.as_str()),
            Err(StateError::Corrupt { .. }) => Ok(false),
            Err(e) => Err(e),
            Ok(None) => {
                Ok(self.read(files::legacy::MESOS_CONTAINER_ID)?.as_deref()
                    == Some(self.id.as_str()))
            }
        }
    }

    /// The executor id.
    pub fn executor_id(&self) -> Result<Option<String>, StateError> {
        self.created_value(|r| Some(r.executor_id), files::legacy::EXECUTOR_ID, Ok)
    }

    /// The task id, when known.
    pub fn task_id(&self) -> Result<Option<String>, StateError> {
        self.created_value(|r| r.task_id, files::legacy::TASK_ID, Ok)
    }

    /// The owner/scope string, e.g. the agent's work directory.
    pub fn owner(&self) -> Result<Option<String>, StateError> {
        self.created_value(|r| r.owner, files::legacy::OWNER, Ok)
    }

    /// The Mesos sandbox recorded at creation, when known.
    pub fn sandbox(&self) -> Result<Option<PathBuf>, StateError> {
        self.created_value(|r| r.sandbox, files::legacy::SANDBOX, |s| Ok(s.into()))
    }

    /// The Docker container id (`cid`), once recorded.
    pub fn docker_id(&self) -> Result<Option<String>, StateError> {
        self.read(files::DOCKER_ID)
    }

    /// The start-time index entry name, e.g. `2024-05-01T12:00:00.123Z.1`.
    pub fn start_time_token(&self) -> Result<Option<String>, StateError> {
        self.created_value(
            |r| Some(r.start_time_entry),
            files::legacy::START_TIME_TOKEN,
            Ok,
        )
    }

    /// When the state directory was created.
    pub fn started_at(&self) -> Result<Option<OffsetDateTime>, StateError> {
        let path = self.file(files::legacy::STARTED);
        self.created_value(
            |r| Some(r.started),
            files::legacy::STARTED,
            |text| {
                parse_iso(&text).ok_or_else(|| StateError::Corrupt {
                    path,
                    reason: format!("{text:?} is not a YYYY-MM-DDTHH:MM:SS.mmmZ time"),
                })
            },
        )
    }

    /// The watcher's process id (`pid`), once recorded.
    pub fn watcher_pid(&self) -> Result<Option<u32>, StateError> {
        let path = self.file(files::WATCHER_PID);
        match self.read(files::WATCHER_PID)? {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| StateError::Corrupt {
                    path,
                    reason: format!("{text:?} is not a process id"),
                }),
        }
    }

    /// Whether the `exit` record exists (one stat; does not parse it).
    pub fn has_exit(&self) -> Result<bool, StateError> {
        let path = self.file(files::EXIT);
        exists_no_follow(&path).map_err(StateError::io("check", path))
    }

    /// The exit record; `None` while the container has not exited.
    pub fn exit(&self) -> Result<Option<ExitRecord>, StateError> {
        let path = self.file(files::EXIT);
        match self.read(files::EXIT)? {
            None => Ok(None),
            Some(text) => ExitRecord::parse(&text)
                .map(Some)
                .map_err(|source| StateError::InvalidExit { path, source }),
        }
    }

    /// Records how the container ended (atomically replacing any earlier record). The
    /// watcher does this while holding `wait` exclusively, then releases `wait`.
    pub fn record_exit(&self, record: &ExitRecord) -> Result<(), StateError> {
        self.write(files::EXIT, &record.render())
    }

    /// Records the watcher's process id.
    pub fn record_watcher_pid(&self, pid: u32) -> Result<(), StateError> {
        self.write(files::WATCHER_PID, &format!("{pid}\n"))
    }

    /// Records the Docker container id in `cid` and creates the index link
    /// `<root>/docker/<docker-id>` → `../mesos/<id>`. Recording the same id again is a no-op;
    /// a different one is refused.
    pub fn record_docker_id(&self, docker_id: &str) -> Result<(), StateError> {
        check_docker_id(docker_id)?;
        match self.docker_id()? {
            Some(existing) if existing != docker_id => {
                return Err(StateError::DockerIdConflict {
                    id: self.id.to_string(),
                    existing,
                    requested: docker_id.to_owned(),
                    path: self.file(files::DOCKER_ID),
                })
            }
            Some(_) => {}
            None => self.write(files::DOCKER_ID, &format!("{docker_id}\n"))?,
        }
        let docker_dir = self.root.docker_dir();
        if !docker_dir.is_dir() {
            fs::create_dir_all(&docker_dir).map_err(StateError::io("create", &docker_dir))?;
        }
        let link = docker_dir.join(docker_id);
        match symlink(self.root.index_target(&self.id), &link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !self.root.index_link_points_to(&link, &self.id) {
                    let target = fs::read_link(&link).unwrap_or_default();
                    return Err(StateError::DockerIdConflict {
                        id: self.id.to_string(),
                        existing: format!("(index link to {})", target.display()),
                        requested: docker_id.to_owned(),
                        path: link,
                    });
                }
            }
            Err(e) => return Err(StateError::io("create index link", link)(e)),
        }
        sync_dir(&docker_dir, self.root.durability()).map_err(StateError::io("sync", docker_dir))
    }

    /// The container's status; see [`ContainerStatus`]. Reads and lock probes are ordered so
    /// that a concurrent launch or exit cannot make a live container look unwatched: `launch`
    /// is released only after `wait` is taken, and `exit` is written before `wait` is released.
    pub fn status(&self) -> Result<ContainerStatus, StateError> {
        self.status_given(self.is_complete()?)
    }

    /// [`Self::status`] when completeness is known already.
    fn status_given(&self, complete: bool) -> Result<ContainerStatus, StateError> {
        if !complete {
            return Ok(ContainerStatus::Incomplete);
        }
        if self.has_exit()? {
            return Ok(ContainerStatus::Exited);
        }
        if self.is_locked_exclusively(LockName::Launch)? {
            return Ok(ContainerStatus::Launching);
        }
        if self.is_locked_exclusively(LockName::Wait)? {
            return Ok(ContainerStatus::Running);
        }
        // The watcher may have recorded the exit and released `wait` since the first check.
        if self.has_exit()? {
            return Ok(ContainerStatus::Exited);
        }
        Ok(ContainerStatus::Unwatched)
    }

    /// Removes the directory and its index links (a failed launch, or a cleanup). Links are
    /// removed only when they point to this container. Missing pieces are not errors.
    pub fn discard(self) -> Result<(), StateError> {
        if let Ok(Some(docker_id)) = self.docker_id() {
            if check_docker_id(&docker_id).is_ok() {
                self.root
                    .remove_index_link(&self.root.docker_dir().join(docker_id), &self.id)?;
            }
        }
        if let Ok(Some(token)) = self.start_time_token() {
            if !token.is_empty() && !token.contains('/') {
                self.root
                    .remove_index_link(&self.root.start_time_dir().join(token), &self.id)?;
            }
        }
        remove_dir_all_if_present(&self.path).map_err(StateError::io("remove", &self.path))?;
        let mesos_dir = self.root.mesos_dir();
        sync_dir(&mesos_dir, self.root.durability()).map_err(StateError::io("sync", mesos_dir))
    }

    /// A one-line description of this container for listings.
    pub fn summary(&self) -> Result<ContainerSummary, StateError> {
        // One read of `container.json` for everything it holds.
        let (complete, owner, started_at) = match self.record() {
            Ok(Some(record)) => (
                record.container_id == self.id.as_str(),
                record.owner,
                Some(record.started),
            ),
            Ok(None) => (
                self.is_complete()?,
                self.owner()?,
                self.started_at().unwrap_or(None),
            ),
            Err(StateError::Corrupt { .. }) => (false, None, None),
            Err(e) => return Err(e),
        };
        Ok(ContainerSummary {
            id: self.id.clone(),
            path: self.path.clone(),
            status: self.status_given(complete)?,
            owner,
            docker_id: self.docker_id()?,
            started_at,
        })
    }
}

/// One entry of [`StateRoot::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// The container id.
    pub id: ContainerId,
    /// Its state directory.
    pub path: PathBuf,
    /// Its status.
    pub status: ContainerStatus,
    /// Its owner/scope string, if recorded.
    pub owner: Option<String>,
    /// Its Docker id, if recorded.
    pub docker_id: Option<String>,
    /// When its state directory was created (`None` if missing or unreadable).
    pub started_at: Option<OffsetDateTime>,
}

/// Removes a path if it exists; reports errors with the path.
pub(crate) fn remove_path(path: &Path) -> Result<bool, StateError> {
    remove_file_if_present(path).map_err(StateError::io("remove", path))
}
