//! Creating a container's state directory for a launch.
//!
//! The directory is assembled under `<root>/creating/<unique>/`, its `launch` lock taken
//! there, and then renamed to `<root>/mesos/<id>` without replacing anything. Readers thus
//! never see a half-made directory, and the launch lock is held from the first moment the
//! directory is visible. The start-time index link is created afterwards (its target must
//! exist, or cleanup would take it for a dangling link).

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use time::OffsetDateTime;

use super::dir::{started_text, ContainerDir};
use super::error::StateError;
use super::fsutil::{
    exists_no_follow, rename_no_replace, sync_dir, unique_suffix, write_atomic, write_new,
};
use super::id::ContainerId;
use super::lock::{acquire, Acquire, LockGuard, LockMode, LockName};
use super::timestamp::StartTimeName;
use super::{files, StateRoot};

/// At most this many containers can be indexed in one millisecond (suffixes `.1` … `.999`).
const MAX_SAME_MILLISECOND: u32 = 1000;

/// What a launch knows when it creates the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewContainer {
    /// The executor id (`eid`); for command tasks Deimos used the task id.
    pub executor_id: String,
    /// The task id, when the launch runs a task.
    pub task_id: Option<String>,
    /// Owner/scope string (e.g. the agent's `MESOS_WORK_DIRECTORY`), see [`super::Scope`].
    pub owner: Option<String>,
}

/// A freshly created state directory whose `launch` lock is held exclusively.
#[derive(Debug)]
pub struct LaunchingContainer {
    dir: ContainerDir,
    launch: LockGuard,
}

impl LaunchingContainer {
    /// The state directory.
    pub fn dir(&self) -> &ContainerDir {
        &self.dir
    }

    /// Splits into the directory and the `launch` guard; drop the guard once the watcher
    /// holds `wait` (see the protocol in [`crate::state`]).
    pub fn into_parts(self) -> (ContainerDir, LockGuard) {
        (self.dir, self.launch)
    }

    /// Removes everything this launch created (a failed launch), then releases `launch`.
    pub fn discard(self) -> Result<(), StateError> {
        let LaunchingContainer { dir, launch } = self;
        let result = dir.discard();
        drop(launch);
        result
    }
}

impl StateRoot {
    /// Creates `<root>/mesos/<id>/` for a launch, with its files, lock files and start-time
    /// index link, and returns it with `lock/launch` held exclusively.
    /// [`StateError::AlreadyExists`] if the container has a directory already.
    pub fn create_container(
        &self,
        id: &ContainerId,
        new: &NewContainer,
    ) -> Result<LaunchingContainer, StateError> {
        let now = OffsetDateTime::now_utc();
        let final_path = self.container_path(id);
        if exists_no_follow(&final_path).map_err(StateError::io("inspect", &final_path))? {
            return Err(already_exists(id, final_path));
        }
        for dir in [self.mesos_dir(), self.start_time_dir(), self.creating_dir()] {
            // A stat is much cheaper than the failing mkdir create_dir_all starts with.
            if !dir.is_dir() {
                fs::create_dir_all(&dir).map_err(StateError::io("create", dir))?;
            }
        }
        let temp = self.creating_dir().join(unique_suffix());
        let launch = match self.assemble(&temp, id, new, now) {
            Ok(guard) => guard,
            Err(e) => {
                let _ = fs::remove_dir_all(&temp);
                return Err(e);
            }
        };
        if let Err(e) = rename_no_replace(&temp, &final_path) {
            let _ = fs::remove_dir_all(&temp);
            return Err(match e.kind() {
                io::ErrorKind::AlreadyExists => already_exists(id, final_path),
                _ => StateError::io("move into place", final_path)(e),
            });
        }
        let launch = launch.relocated(self.lock_path_of(id, LockName::Launch));
        let creating = LaunchingContainer {
            dir: ContainerDir::new(self, id.clone()),
            launch,
        };
        match self.finish_creation(&creating.dir, now) {
            Ok(()) => Ok(creating),
            Err(e) => {
                // Best effort: the launch fails with `e` whether or not the removal works.
                let _ = creating.discard();
                Err(e)
            }
        }
    }

    fn lock_path_of(&self, id: &ContainerId, name: LockName) -> std::path::PathBuf {
        self.container_path(id)
            .join(files::LOCK_DIR)
            .join(name.file_name())
    }

    /// Fills the temporary directory and takes its `launch` lock.
    fn assemble(
        &self,
        temp: &Path,
        id: &ContainerId,
        new: &NewContainer,
        now: OffsetDateTime,
    ) -> Result<LockGuard, StateError> {
        let durability = self.durability();
        let lock_dir = temp.join(files::LOCK_DIR);
        fs::create_dir(temp).map_err(StateError::io("create", temp))?;
        fs::create_dir(&lock_dir).map_err(StateError::io("create", &lock_dir))?;
        for name in LockName::ALL {
            let path = lock_dir.join(name.file_name());
            // Empty lock files hold no data worth an fsync; the directory sync covers them.
            write_new(&path, b"", super::Durability::NoSync)
                .map_err(StateError::io("create", path))?;
        }
        let launch = acquire(
            &lock_dir.join(LockName::Launch.file_name()),
            LockMode::Exclusive,
            Acquire::NonBlocking,
        )?;
        launch.record_holder()?;
        let mut contents = vec![
            (files::MESOS_CONTAINER_ID, format!("{id}\n")),
            (files::EXECUTOR_ID, format!("{}\n", new.executor_id)),
            (files::STARTED, started_text(now)),
        ];
        if let Some(task_id) = &new.task_id {
            contents.push((files::TASK_ID, format!("{task_id}\n")));
        }
        if let Some(owner) = &new.owner {
            contents.push((files::OWNER, format!("{owner}\n")));
        }
        for (name, text) in contents {
            let path = temp.join(name);
            write_new(&path, text.as_bytes(), durability).map_err(StateError::io("write", path))?;
        }
        sync_dir(&lock_dir, durability).map_err(StateError::io("sync", &lock_dir))?;
        sync_dir(temp, durability).map_err(StateError::io("sync", temp))?;
        Ok(launch)
    }

    /// After the rename: makes it durable, indexes the start time and records the `t` token.
    fn finish_creation(&self, dir: &ContainerDir, now: OffsetDateTime) -> Result<(), StateError> {
        let mesos_dir = self.mesos_dir();
        sync_dir(&mesos_dir, self.durability()).map_err(StateError::io("sync", mesos_dir))?;
        let name = self.link_start_time(dir.id(), now)?;
        let token = dir.file(files::START_TIME_TOKEN);
        let written = write_atomic(&token, format!("{name}\n").as_bytes(), self.durability())
            .map_err(StateError::io("write", token));
        if written.is_err() {
            // Without `t`, discard could not find the link; remove it here.
            let _ = fs::remove_file(self.start_time_dir().join(&name));
        }
        written
    }

    /// Creates `start-time/<ISO time>[.<n>]` → `../mesos/<id>`, taking the first free name:
    /// a collision is never skipped silently (D-5).
    fn link_start_time(&self, id: &ContainerId, now: OffsetDateTime) -> Result<String, StateError> {
        let dir = self.start_time_dir();
        let target = self.index_target(id);
        for sequence in 0..MAX_SAME_MILLISECOND {
            let name = StartTimeName {
                time: now,
                sequence,
            }
            .file_name();
            let link = dir.join(&name);
            match symlink(&target, &link) {
                Ok(()) => {
                    sync_dir(&dir, self.durability()).map_err(StateError::io("sync", &dir))?;
                    return Ok(name);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StateError::io("create index link", link)(e)),
            }
        }
        Err(StateError::StartTimeExhausted {
            id: id.to_string(),
            path: dir,
        })
    }
}

fn already_exists(id: &ContainerId, path: std::path::PathBuf) -> StateError {
    StateError::AlreadyExists {
        id: id.to_string(),
        path,
    }
}
