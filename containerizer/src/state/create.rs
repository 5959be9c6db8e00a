//! Creating a container's state directory for a launch.
//!
//! The directory is assembled under `<root>/creating/<unique>/`: empty lock files, the
//! `launch` lock taken there, then `container.json`. Its start-time index link is created
//! before the directory becomes visible too, because `container.json` names it. Then the
//! directory is renamed to `<root>/mesos/<id>` without replacing anything. Readers thus never
//! see a half-made directory, the launch lock is held from the first moment the directory is
//! visible, and a visible directory is always indexed.
//!
//! The index link dangles until the rename: cleanup leaves dangling start-time links alone
//! until they are a minute old (see `cleanup`), and a failed creation removes its link.
//!
//! Durability ([`super::Durability::Fsync`]) costs four fsyncs, of which two wait for a
//! journal commit on ext4: `container.json` (the lock files are empty: no data to sync), the
//! staging directory and `start-time/` (already committed by the first one), and `mesos/`
//! after the rename. When `create_container` returns, the directory and its index link are
//! durable, and a crash before that leaves at most a staging directory and a dangling link,
//! both removed by a later `state --rm`.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::dir::ContainerDir;
use super::error::StateError;
use super::fsutil::{exists_no_follow, rename_no_replace, sync_dir, unique_suffix, write_new};
use super::id::ContainerId;
use super::lock::{acquire, Acquire, LockGuard, LockMode, LockName};
use super::record::ContainerRecord;
use super::timestamp::StartTimeName;
use super::{files, Durability, StateRoot};

/// At most this many containers can be indexed in one millisecond (suffixes `.1` … `.999`).
const MAX_SAME_MILLISECOND: u32 = 1000;

/// What a launch knows when it creates the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewContainer {
    /// The executor id; for command tasks Deimos used the task id.
    pub executor_id: String,
    /// The task id, when the launch runs a task.
    pub task_id: Option<String>,
    /// Owner/scope string (e.g. the agent's `MESOS_WORK_DIRECTORY`), see [`super::Scope`].
    pub owner: Option<String>,
    /// The Mesos sandbox, for watchers started later ([`ContainerDir::sandbox`]).
    pub sandbox: Option<PathBuf>,
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
    /// Creates `<root>/mesos/<id>/` for a launch, with its `container.json`, lock files and
    /// start-time index link, and returns it with `lock.launch` held exclusively.
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
        self.ensure_top_dirs()?;
        let temp = self.creating_dir().join(unique_suffix());
        let staged = match self.stage(&temp, id, new, now) {
            Ok(staged) => staged,
            Err(e) => {
                let _ = fs::remove_dir_all(&temp);
                return Err(e);
            }
        };
        if let Err(e) = rename_no_replace(&temp, &final_path) {
            // Best effort: the launch fails with `e` whatever happens here.
            let _ = fs::remove_file(&staged.start_time_link);
            let _ = fs::remove_dir_all(&temp);
            return Err(match e.kind() {
                io::ErrorKind::AlreadyExists => already_exists(id, final_path),
                _ => StateError::io("move into place", final_path)(e),
            });
        }
        let launch = staged
            .launch
            .relocated(final_path.join(LockName::Launch.file_name()));
        let creating = LaunchingContainer {
            dir: ContainerDir::new(self, id.clone()),
            launch,
        };
        let mesos_dir = self.mesos_dir();
        if let Err(e) = sync_dir(&mesos_dir, self.durability()) {
            // Best effort: the launch fails with `e` whether or not the removal works.
            let _ = creating.discard();
            return Err(StateError::io("sync", mesos_dir)(e));
        }
        Ok(creating)
    }

    /// Creates `mesos/`, `start-time/` and `creating/` when missing (the first launch).
    fn ensure_top_dirs(&self) -> Result<(), StateError> {
        let mut created = false;
        for dir in [self.mesos_dir(), self.start_time_dir(), self.creating_dir()] {
            // A stat is much cheaper than the failing mkdir create_dir_all starts with.
            if !dir.is_dir() {
                fs::create_dir_all(&dir).map_err(StateError::io("create", dir))?;
                created = true;
            }
        }
        if created {
            sync_dir(self.path(), self.durability())
                .map_err(StateError::io("sync", self.path()))?;
        }
        Ok(())
    }

    /// Fills the staging directory `temp`, takes its `launch` lock and creates the start-time
    /// link; everything is durable when it returns. On error the link is removed (the caller
    /// removes `temp`).
    fn stage(
        &self,
        temp: &Path,
        id: &ContainerId,
        new: &NewContainer,
        now: OffsetDateTime,
    ) -> Result<Staged, StateError> {
        fs::create_dir(temp).map_err(StateError::io("create", temp))?;
        for name in LockName::ALL {
            let path = temp.join(name.file_name());
            // Empty: no data to sync; the directory sync makes the entries durable.
            write_new(&path, b"", Durability::NoSync).map_err(StateError::io("create", path))?;
        }
        let launch = acquire(
            &temp.join(LockName::Launch.file_name()),
            LockMode::Exclusive,
            Acquire::NonBlocking,
        )?;
        let entry = self.link_start_time(id, now)?;
        let start_time_link = self.start_time_dir().join(&entry);
        let record = ContainerRecord {
            container_id: id.to_string(),
            executor_id: new.executor_id.clone(),
            task_id: new.task_id.clone(),
            owner: new.owner.clone(),
            started: now,
            start_time_entry: entry,
            sandbox: new.sandbox.clone(),
        };
        match self.write_record(temp, &record) {
            Ok(()) => Ok(Staged {
                launch,
                start_time_link,
            }),
            Err(e) => {
                let _ = fs::remove_file(&start_time_link);
                Err(e)
            }
        }
    }

    /// Writes `container.json` into `temp` and makes `temp` and the start-time index durable.
    fn write_record(&self, temp: &Path, record: &ContainerRecord) -> Result<(), StateError> {
        let durability = self.durability();
        let path = temp.join(files::CONTAINER);
        let text = record.render().map_err(|e| StateError::Unencodable {
            id: record.container_id.clone(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_new(&path, text.as_bytes(), durability).map_err(StateError::io("write", &path))?;
        sync_dir(temp, durability).map_err(StateError::io("sync", temp))?;
        let start_time = self.start_time_dir();
        sync_dir(&start_time, durability).map_err(StateError::io("sync", start_time))
    }

    /// Creates `start-time/<ISO time>[.<n>]` → `../mesos/<id>`, taking the first free name:
    /// a collision is never skipped silently (D-5). Not synced here.
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
                Ok(()) => return Ok(name),
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

/// A staged directory: its `launch` guard and its start-time link.
struct Staged {
    launch: LockGuard,
    start_time_link: PathBuf,
}

fn already_exists(id: &ContainerId, path: PathBuf) -> StateError {
    StateError::AlreadyExists {
        id: id.to_string(),
        path,
    }
}
