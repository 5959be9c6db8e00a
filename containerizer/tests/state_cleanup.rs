//! `state` / `state --rm` on real state roots: what is listed, what is removed, what is not.

// Helpers panic like the tests themselves: a panic is the failure report (see clippy.toml).
#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use deimos::state::{
    acquire, format_iso_millis, seed_exited_containers, Acquire, ContainerDir, ContainerId,
    ContainerStatus, Durability, ExitRecord, LockMode, LockName, NewContainer, Scope, SkipReason,
    StateError, StateRoot,
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
        sandbox: None,
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
        assert!(kept.join("container.json").exists(), "{kept:?}");
    }
    assert_eq!(names(&dir.path().join("start-time")).len(), 3);
    assert_eq!(
        names(&dir.path().join("docker")),
        ["docker-running", "docker-watched"]
    );
}

#[test]
fn remove_leaves_exited_containers_alone_while_a_call_or_the_observer_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    // An agent call (`wait`, `destroy`) using the directory holds `launch` shared.
    let in_use = container(&root, "in-use", None, true);
    let _call = in_use.hold().unwrap().expect("the directory exists");
    // The watcher waits for the observer executor to report: `observe` held exclusively.
    let observed = container(&root, "observed", None, true);
    let _watcher = observed
        .lock(LockName::Observe, LockMode::Exclusive, Acquire::NonBlocking)
        .unwrap();
    container(&root, "done", None, true);
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    assert_eq!(ids(&report.removed), ["done"]);
    let skipped: Vec<(String, SkipReason)> = report
        .skipped
        .iter()
        .map(|s| (s.entry.id.to_string(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            ("in-use".to_owned(), SkipReason::LaunchLockHeld),
            ("observed".to_owned(), SkipReason::ObserveLockHeld)
        ]
    );
    for kept in [in_use.path(), observed.path()] {
        assert!(kept.join("exit").exists(), "{kept:?}");
    }
}

#[test]
fn hold_finds_a_directory_removed_while_it_waited_for_it_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let exited = container(&root, "exited", None, true);
    // What `state --rm` holds while it removes the directory.
    let cleanup = exited
        .lock(LockName::Launch, LockMode::Exclusive, Acquire::NonBlocking)
        .unwrap();
    let lock_inode = std::os::unix::fs::MetadataExt::ino(
        &fs::metadata(exited.path().join("lock.launch")).unwrap(),
    );
    let waiter = {
        let exited = exited.clone();
        std::thread::spawn(move || exited.hold().unwrap().is_none())
    };
    // Until /proc/locks shows this process blocked on the lock (a condition, not a delay).
    let blocked = || {
        let text = fs::read_to_string("/proc/locks").unwrap();
        deimos::state::parse_proc_locks(&text)
            .iter()
            .any(|l| l.blocked && l.inode == lock_inode && l.pid == Some(std::process::id()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !blocked() {
        assert!(
            Instant::now() < deadline,
            "hold() never waited for the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    fs::remove_dir_all(exited.path()).unwrap();
    drop(cleanup);
    assert!(waiter.join().unwrap(), "hold() on a removed directory");
    // Arriving later: the directory is gone; half removed (no lock file): gone too.
    assert!(exited.hold().unwrap().is_none());
    let half = container(&root, "half", None, true);
    fs::remove_file(half.path().join("lock.launch")).unwrap();
    assert!(half.hold().unwrap().is_none());
    assert!(
        !half.path().join("lock.launch").exists(),
        "hold() recreated a lock file"
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
fn young_dangling_start_time_links_are_kept_for_launches_in_progress() {
    // A launch creates its start-time link just before its directory appears.
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    container(&root, "live", None, false);
    let start_time = dir.path().join("start-time");
    let now = OffsetDateTime::now_utc();
    let young = format_iso_millis(now - time::Duration::seconds(5));
    let old = format_iso_millis(now - time::Duration::minutes(2));
    symlink("../mesos/launching", start_time.join(&young)).unwrap();
    symlink("../mesos/died", start_time.join(&old)).unwrap();
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    assert_eq!(report.dangling_links_removed, [start_time.join(&old)]);
    assert!(start_time.join(&young).symlink_metadata().is_ok());
}

/// A directory as earlier versions of this program wrote it: one file per value, lock files
/// with holder lines in `lock/`, both index links.
fn legacy_container(root: &Path, name: &str, started: &str, exit: Option<&str>) -> PathBuf {
    let path = root.join("mesos").join(name);
    fs::create_dir_all(path.join("lock")).unwrap();
    for (file, text) in [
        ("mesos-container-id", name.to_owned()),
        ("eid", format!("exec-{name}")),
        ("task-id", format!("task-{name}")),
        ("owner", "/agent-a".to_owned()),
        ("started", started.to_owned()),
        ("t", started.to_owned()),
        ("cid", format!("docker-{name}")),
        ("sandbox", format!("/sandboxes/{name}")),
        (
            "lock/launch",
            "pid=1\nsince=2024-05-01T12:00:00.200Z".to_owned(),
        ),
        (
            "lock/wait",
            "pid=2\nsince=2024-05-01T12:00:00.300Z".to_owned(),
        ),
        ("lock/observe", String::new()),
        ("lock/destroy", String::new()),
    ] {
        fs::write(path.join(file), format!("{text}\n")).unwrap();
    }
    if let Some(exit) = exit {
        fs::write(path.join("exit"), exit).unwrap();
    }
    for index in ["start-time", "docker"] {
        fs::create_dir_all(root.join(index)).unwrap();
    }
    let target = format!("../mesos/{name}");
    symlink(&target, root.join("start-time").join(started)).unwrap();
    symlink(&target, root.join("docker").join(format!("docker-{name}"))).unwrap();
    path
}

#[test]
fn directories_of_the_older_layout_are_listed_read_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let path = legacy_container(dir.path(), "old", "2024-05-01T12:00:00.123Z", Some("137\n"));
    let old = root.container(&id("old")).unwrap();
    assert!(old.is_complete().unwrap());
    assert_eq!(old.record().unwrap(), None);
    assert_eq!(old.executor_id().unwrap().as_deref(), Some("exec-old"));
    assert_eq!(old.task_id().unwrap().as_deref(), Some("task-old"));
    assert_eq!(old.owner().unwrap().as_deref(), Some("/agent-a"));
    assert_eq!(old.docker_id().unwrap().as_deref(), Some("docker-old"));
    assert_eq!(
        old.sandbox().unwrap().as_deref(),
        Some(Path::new("/sandboxes/old"))
    );
    assert_eq!(
        old.started_at().unwrap().map(format_iso_millis).as_deref(),
        Some("2024-05-01T12:00:00.123Z")
    );
    // Python Deimos' exit files hold the raw `docker wait` output.
    assert_eq!(old.exit().unwrap().unwrap().exit_code, Some(137));
    assert_eq!(old.lock_path(LockName::Wait), path.join("lock/wait"));
    let listed = root.list(&Scope::Owner("/agent-a".into())).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, ContainerStatus::Exited);
    assert_eq!(listed[0].docker_id.as_deref(), Some("docker-old"));
    assert!(listed[0].started_at.is_some());
    let report = root
        .remove_exited_before(later(), &Scope::Owner("/agent-a".into()))
        .unwrap();
    assert_eq!(ids(&report.removed), ["old"]);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for sub in ["mesos", "start-time", "docker"] {
        assert!(names(&dir.path().join(sub)).is_empty(), "{sub} not empty");
    }
}

#[test]
fn an_older_layout_watcher_holding_lock_wait_keeps_its_container() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let running = legacy_container(dir.path(), "running", "2024-05-01T12:00:00.100Z", None);
    // An exit record already written while the old watcher still holds `lock/wait` EX.
    let watched = legacy_container(
        dir.path(),
        "watched",
        "2024-05-01T12:00:00.200Z",
        Some("0\n"),
    );
    let hold = |path: PathBuf| acquire(&path, LockMode::Exclusive, Acquire::NonBlocking).unwrap();
    let _running_watcher = hold(running.join("lock/wait"));
    let _watched_watcher = hold(watched.join("lock/wait"));
    let status = |name: &str| root.container(&id(name)).unwrap().status().unwrap();
    assert_eq!(status("running"), ContainerStatus::Running);
    // The new layout's lock file was not created beside the old one.
    assert!(!running.join("lock.wait").exists());
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    assert!(report.removed.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].reason, SkipReason::WaitLockHeld);
    assert!(running.join("mesos-container-id").exists() && watched.join("exit").exists());
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
    // The pid comes from /proc/locks: the lock file stays empty.
    assert_eq!(fs::read_to_string(root.cleanup_lock_path()).unwrap(), "");
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
    // `lock` names the launch lock file inside the staging directory.
    let make = |name: &str, lock: &str, age_secs: u64| -> PathBuf {
        let path = creating.join(name);
        fs::create_dir_all(path.join(lock).parent().unwrap()).unwrap();
        File::create(path.join(lock)).unwrap();
        let when = SystemTime::now() - Duration::from_secs(age_secs);
        File::open(&path).unwrap().set_modified(when).unwrap();
        path
    };
    let abandoned = make("abandoned", "lock.launch", 3600);
    let fresh = make("fresh", "lock.launch", 0);
    let slow = make("slow", "lock.launch", 3600);
    let slow_legacy = make("slow-legacy", "lock/launch", 3600);
    let hold = |path: PathBuf| acquire(&path, LockMode::Exclusive, Acquire::NonBlocking).unwrap();
    let _slow_launch = hold(slow.join("lock.launch"));
    let _slow_legacy_launch = hold(slow_legacy.join("lock/launch"));
    let report = root.remove_exited_before(later(), &Scope::All).unwrap();
    assert_eq!(
        report.abandoned_creations_removed,
        std::slice::from_ref(&abandoned)
    );
    assert!(!abandoned.exists() && fresh.exists() && slow.exists() && slow_legacy.exists());
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

#[test]
fn seeded_exited_containers_have_the_file_set_of_a_real_exited_container() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let seeded = seed_exited_containers(&root, "seed", 1).unwrap();
    let container = root.container(&seeded[0]).unwrap();
    assert_eq!(
        names(container.path()),
        [
            "cid",
            "container.json",
            "exit",
            "lock.destroy",
            "lock.launch",
            "lock.observe",
            "lock.wait"
        ]
    );
    for name in LockName::ALL {
        let text = fs::read_to_string(container.lock_path(name)).unwrap();
        assert!(text.is_empty(), "{name:?}: {text:?}");
    }
    assert!(container.sandbox().unwrap().is_some());
    assert_eq!(container.status().unwrap(), ContainerStatus::Exited);
    assert_eq!(names(&dir.path().join("start-time")).len(), 1);
    assert_eq!(names(&dir.path().join("docker")).len(), 1);
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
