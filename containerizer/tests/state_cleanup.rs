//! `state` / `state --rm` on real state roots: what is listed, what is removed, what is not.

// Helpers panic like the tests themselves: a panic is the failure report (see clippy.toml).
#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use deimos::state::{
    acquire, seed_exited_containers, Acquire, ContainerDir, ContainerId, Durability, ExitRecord,
    LockMode, LockName, NewContainer, Scope, SkipReason, StateError, StateRoot,
};
use time::OffsetDateTime;

fn root(dir: &tempfile::TempDir) -> StateRoot {
    StateRoot::new(dir.path()).with_durability(Durability::NoSync)
}

fn id(text: &str) -> ContainerId {
    ContainerId::new(text).unwrap()
}

fn later() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(1)
}

fn names(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }
        Err(_) => Vec::new(),
    }
}

/// A container whose launch finished; `exited` decides whether it has an exit record.
fn container(root: &StateRoot, name: &str, owner: Option<&str>, exited: bool) -> ContainerDir {
    let new = NewContainer {
        executor_id: format!("exec-{name}"),
        task_id: None,
        owner: owner.map(str::to_owned),
    };
    let (dir, _launch) = root.create_container(&id(name), &new).unwrap().into_parts();
    dir.record_docker_id(&format!("docker-{name}")).unwrap();
    if exited {
        dir.record_exit(&ExitRecord::with_code(0)).unwrap();
    }
    dir
}

fn ids(entries: &[deimos::state::ExitedEntry]) -> Vec<String> {
    entries.iter().map(|e| e.id.to_string()).collect()
}

#[test]
fn missing_root_or_start_time_dir_lists_and_removes_nothing() {
    // D-13: Deimos crashed with a traceback here.
    let dir = tempfile::tempdir().unwrap();
    let missing = StateRoot::new(dir.path().join("nope"));
    assert!(missing
        .exited_before(later(), &Scope::All)
        .unwrap()
        .is_empty());
    let report = missing.remove_exited_before(later(), &Scope::All).unwrap();
    assert!(report.removed.is_empty() && report.failures.is_empty());
    assert!(
        !dir.path().join("nope").exists(),
        "cleanup must not create the root"
    );
    let empty = root(&dir);
    assert!(empty
        .exited_before(later(), &Scope::All)
        .unwrap()
        .is_empty());
    let report = empty.remove_exited_before(later(), &Scope::All).unwrap();
    assert!(report.removed.is_empty() && report.failures.is_empty());
}

#[test]
fn lists_exited_containers_started_before_the_cutoff_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    container(&root, "old-exited", None, true);
    container(&root, "running", None, false);
    container(&root, "new-exited", None, true);
    let listed = root.exited_before(later(), &Scope::All).unwrap();
    assert_eq!(ids(&listed), ["old-exited", "new-exited"]);
    let link = listed[0].index_link.as_ref().unwrap();
    assert!(link.starts_with(dir.path().join("start-time")));
    assert!(root.exited_before(before, &Scope::All).unwrap().is_empty());
}

#[test]
fn remove_deletes_directory_and_both_index_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    container(&root, "done", None, true);
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    assert_eq!(ids(&report.removed), ["done"]);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // D-11: the start-time link itself is gone too, nothing dangles.
    assert!(names(&dir.path().join("mesos")).is_empty());
    assert!(names(&dir.path().join("start-time")).is_empty());
    assert!(names(&dir.path().join("docker")).is_empty());
    assert!(report.dangling_links_removed.is_empty());
}

#[test]
fn remove_never_touches_running_or_watched_containers() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let running = container(&root, "running", None, false);
    // An exit record already written while the watcher still holds `wait` EX.
    let watched = container(&root, "watched", None, true);
    let _watcher = watched
        .lock(LockName::Wait, LockMode::Exclusive, Acquire::NonBlocking)
        .unwrap();
    let launching = root
        .create_container(&id("launching"), &NewContainer::default())
        .unwrap();
    container(&root, "done", None, true);
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    assert_eq!(ids(&report.removed), ["done"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].entry.id, id("watched"));
    assert_eq!(report.skipped[0].reason, SkipReason::WaitLockHeld);
    for kept in [running.path(), watched.path(), launching.dir().path()] {
        assert!(kept.join("mesos-container-id").exists(), "{kept:?}");
    }
    assert_eq!(names(&dir.path().join("start-time")).len(), 3);
    assert_eq!(
        names(&dir.path().join("docker")),
        ["docker-running", "docker-watched"]
    );
}

#[test]
fn remove_clears_dangling_links_left_by_older_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let live = container(&root, "live", None, false);
    let start_time = dir.path().join("start-time");
    symlink("../mesos/gone", start_time.join("2015-01-01T00:00:00.000Z")).unwrap();
    symlink("../mesos/gone", dir.path().join("docker/d-gone")).unwrap();
    symlink("/elsewhere", start_time.join("foreign")).unwrap();
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    let mut dangling = report.dangling_links_removed.clone();
    dangling.sort();
    assert_eq!(
        dangling,
        [
            dir.path().join("docker/d-gone"),
            start_time.join("2015-01-01T00:00:00.000Z")
        ]
    );
    assert!(live.path().exists());
    assert_eq!(names(&dir.path().join("docker")), ["docker-live"]);
    // Links this module did not write are left alone.
    assert!(start_time.join("foreign").symlink_metadata().is_ok());
}

#[test]
fn remove_also_finds_exited_directories_without_a_start_time_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let unindexed = container(&root, "unindexed", None, true);
    let token = unindexed.start_time_token().unwrap().unwrap();
    fs::remove_file(dir.path().join("start-time").join(token)).unwrap();
    assert_eq!(
        ids(&root.exited_before(later(), &Scope::All).unwrap()),
        ["unindexed"]
    );
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    assert_eq!(ids(&report.removed), ["unindexed"]);
    assert!(!unindexed.path().exists());
    assert!(names(&dir.path().join("docker")).is_empty());
}

#[test]
fn second_cleanup_fails_cleanly_naming_the_running_ones_pid() {
    // D-12: Deimos crashed with a NameError instead.
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    container(&root, "done", None, true);
    let other = acquire(
        &root.cleanup_lock_path(),
        LockMode::Exclusive,
        Acquire::NonBlocking,
    )
    .unwrap();
    other.record_holder().unwrap();
    let error = root.remove_exited_before(later(), &Scope::All).unwrap_err();
    match &error {
        StateError::CleanupBusy { holder_pid, .. } => {
            assert_eq!(*holder_pid, Some(std::process::id()))
        }
        other => panic!("expected CleanupBusy, got {other:?}"),
    }
    let pid = std::process::id();
    assert!(
        error.to_string().starts_with(&format!(
            "another `deimos state --rm` is running (pid {pid}"
        )),
        "{error}"
    );
    assert!(dir.path().join("mesos/done").exists());
    drop(other);
    assert_eq!(
        root.remove_exited_before(later(), &Scope::All)
            .unwrap()
            .removed
            .len(),
        1
    );
}

#[test]
fn cleanup_with_an_owner_scope_leaves_other_agents_containers() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    container(&root, "mine", Some("/agent-a"), true);
    container(&root, "theirs", Some("/agent-b"), true);
    container(&root, "unowned", None, true);
    let scope = Scope::Owner("/agent-a".into());
    assert_eq!(ids(&root.exited_before(later(), &scope).unwrap()), ["mine"]);
    let report = root.remove_exited_before(later(), &scope).unwrap();
    assert_eq!(ids(&report.removed), ["mine"]);
    assert_eq!(names(&dir.path().join("mesos")), ["theirs", "unowned"]);
    assert_eq!(
        names(&dir.path().join("docker")),
        ["docker-theirs", "docker-unowned"]
    );
}

#[test]
fn cleanup_removes_abandoned_creations_but_not_fresh_or_locked_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let creating = dir.path().join("creating");
    let make = |name: &str, age_secs: u64| -> PathBuf {
        let path = creating.join(name);
        fs::create_dir_all(path.join("lock")).unwrap();
        File::create(path.join("lock/launch")).unwrap();
        let when = SystemTime::now() - Duration::from_secs(age_secs);
        File::open(&path).unwrap().set_modified(when).unwrap();
        path
    };
    let abandoned = make("abandoned", 3600);
    let fresh = make("fresh", 0);
    let slow = make("slow", 3600);
    let _slow_launch = acquire(
        &slow.join("lock/launch"),
        LockMode::Exclusive,
        Acquire::NonBlocking,
    )
    .unwrap();
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    assert_eq!(
        report.abandoned_creations_removed,
        std::slice::from_ref(&abandoned)
    );
    assert!(!abandoned.exists() && fresh.exists() && slow.exists());
}

#[test]
fn launches_running_during_cleanup_are_neither_removed_nor_broken() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    seed_exited_containers(&root, "old", 500).unwrap();
    let done = AtomicBool::new(false);
    let launched = std::thread::scope(|scope| {
        let launcher = scope.spawn(|| {
            let mut launched = Vec::new();
            let mut n = 0;
            // Keep launching until cleanup has finished, and at least 50 times.
            while !done.load(Ordering::SeqCst) || n < 50 {
                let dir = container(&root, &format!("new-{n}"), None, false);
                launched.push(dir);
                n += 1;
            }
            launched
        });
        let report = root.remove_exited_before(later(), &Scope::All).unwrap();
        done.store(true, Ordering::SeqCst);
        assert_eq!(report.removed.len(), 500);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        launcher.join().unwrap()
    });
    for dir in &launched {
        assert!(dir.is_complete().unwrap(), "{:?}", dir.path());
        let token = dir.start_time_token().unwrap().unwrap();
        let link = dir.path().join("../../start-time").join(token);
        assert_eq!(
            fs::read_link(link).unwrap(),
            Path::new("../mesos").join(dir.id().as_str())
        );
        assert_eq!(
            root.container_by_docker_id(&format!("docker-{}", dir.id()))
                .unwrap()
                .id(),
            dir.id()
        );
    }
    assert_eq!(names(&dir.path().join("mesos")).len(), launched.len());
    assert_eq!(names(&dir.path().join("start-time")).len(), launched.len());
}

/// Seeding 10,000 directories costs a minute on a loaded ext4 VM disk (file creation is
/// slow there) and is not what this test checks, so it uses tmpfs when the host has one.
fn bulk_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

#[test]
fn ten_thousand_exited_directories_are_all_removed() {
    let dir = bulk_tempdir();
    let root = root(&dir);
    let seeding = Instant::now();
    let seeded = seed_exited_containers(&root, "bulk", 10_000).unwrap();
    eprintln!("seeded 10000 exited containers in {:?}", seeding.elapsed());
    let removal = Instant::now();
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    eprintln!(
        "state --rm of 10000 exited containers took {:?}",
        removal.elapsed()
    );
    assert!(report.failures.is_empty(), "{:?}", &report.failures[..1]);
    assert!(report.skipped.is_empty());
    let mut removed: Vec<ContainerId> = report.removed.into_iter().map(|e| e.id).collect();
    removed.sort();
    let mut seeded = seeded;
    seeded.sort();
    assert_eq!(removed, seeded);
    for sub in ["mesos", "start-time", "docker", "creating"] {
        assert!(names(&dir.path().join(sub)).is_empty(), "{sub} not empty");
    }
}
