//! Creating, reading, recording and discarding container state directories on real files.

// Helpers panic like the tests themselves: a panic is the failure report (see clippy.toml).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use deimos::state::{
    format_iso_millis, read_holder, Acquire, ContainerId, ContainerRecord, ContainerStatus,
    Durability, ExitRecord, LockMode, LockName, NewContainer, Scope, StartTimeName, StateError,
    StateRoot,
};
use time::OffsetDateTime;

fn root(dir: &tempfile::TempDir) -> StateRoot {
    StateRoot::new(dir.path()).with_durability(Durability::NoSync)
}

fn id(text: &str) -> ContainerId {
    ContainerId::new(text).unwrap()
}

fn task(owner: Option<&str>) -> NewContainer {
    NewContainer {
        executor_id: "exec-1".into(),
        task_id: Some("task-1".into()),
        owner: owner.map(str::to_owned),
        sandbox: Some("/sandboxes/c1".into()),
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn create_writes_an_operator_readable_layout_with_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let root = StateRoot::new(dir.path());
    assert_eq!(root.durability(), Durability::Fsync);
    let launching = root
        .create_container(&id("c1"), &task(Some("/var/lib/mesos")))
        .unwrap();
    let path = launching.dir().path().to_owned();
    assert_eq!(path, dir.path().join("mesos/c1"));
    // One file with data; empty lock files beside it, no lock directory.
    assert_eq!(
        names(&path),
        [
            "container.json",
            "lock.destroy",
            "lock.launch",
            "lock.observe",
            "lock.wait"
        ]
    );
    for name in LockName::ALL {
        assert_eq!(read(&path.join(name.file_name())), "", "{name:?}");
    }
    let text = read(&path.join("container.json"));
    assert!(
        text.starts_with("{\n  \"container_id\": \"c1\",\n"),
        "{text}"
    );
    let record = ContainerRecord::parse(&text).unwrap();
    assert_eq!(record.executor_id, "exec-1");
    assert_eq!(record.task_id.as_deref(), Some("task-1"));
    assert_eq!(record.owner.as_deref(), Some("/var/lib/mesos"));
    assert_eq!(record.sandbox.as_deref(), Some(Path::new("/sandboxes/c1")));
    let container = launching.dir();
    assert_eq!(container.record().unwrap(), Some(record.clone()));
    assert_eq!(container.executor_id().unwrap().as_deref(), Some("exec-1"));
    assert_eq!(container.task_id().unwrap().as_deref(), Some("task-1"));
    assert_eq!(
        container.owner().unwrap().as_deref(),
        Some("/var/lib/mesos")
    );
    assert_eq!(
        container.sandbox().unwrap().as_deref(),
        Some(Path::new("/sandboxes/c1"))
    );
    let token = container.start_time_token().unwrap().unwrap();
    assert_eq!(token, record.start_time_entry);
    let link = dir.path().join("start-time").join(&token);
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("../mesos/c1"));
    assert_eq!(
        fs::canonicalize(&link).unwrap(),
        fs::canonicalize(&path).unwrap()
    );
    let started = launching.dir().started_at().unwrap().unwrap();
    assert_eq!(started, record.started);
    assert_eq!(StartTimeName::parse(&token).unwrap().time, started);
    assert!(OffsetDateTime::now_utc() - started < time::Duration::seconds(60));
    // Nothing is left behind in the staging directory, and no temp files in the state dir.
    assert!(names(&dir.path().join("creating")).is_empty());
    assert!(
        names(&path).iter().all(|n| !n.starts_with('.')),
        "{:?}",
        names(&path)
    );
}

#[test]
fn launch_lock_is_held_from_the_moment_the_directory_appears() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let launching = root.create_container(&id("c1"), &task(None)).unwrap();
    let container = root.container(&id("c1")).unwrap();
    assert!(container.is_locked_exclusively(LockName::Launch).unwrap());
    assert_eq!(container.status().unwrap(), ContainerStatus::Launching);
    let error = container
        .lock(
            LockName::Launch,
            LockMode::Shared,
            Acquire::Timeout(Duration::from_millis(20)),
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("mesos/c1/lock.launch"),
        "{error}"
    );
    // The holder is known from /proc/locks; nothing is written into the lock file.
    let launch_path = container.lock_path(LockName::Launch);
    assert_eq!(read_holder(&launch_path).unwrap().pid, std::process::id());
    assert_eq!(read(&launch_path), "");
    drop(launching);
    assert_eq!(read_holder(&launch_path), None);
    assert_eq!(container.status().unwrap(), ContainerStatus::Unwatched);
}

#[test]
fn status_follows_the_watcher_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let (container, launch) = root
        .create_container(&id("c1"), &task(None))
        .unwrap()
        .into_parts();
    let wait = container
        .lock(LockName::Wait, LockMode::Exclusive, Acquire::NonBlocking)
        .unwrap();
    container.record_watcher_pid(4242).unwrap();
    drop(launch);
    assert_eq!(container.status().unwrap(), ContainerStatus::Running);
    assert_eq!(container.watcher_pid().unwrap(), Some(4242));
    // A waiter cannot take `wait` SH while the watcher runs...
    assert!(container
        .lock(LockName::Wait, LockMode::Shared, Acquire::NonBlocking)
        .is_err());
    container.record_exit(&ExitRecord::with_code(3)).unwrap();
    drop(wait);
    // ...and taking it means "exited".
    let _exited = container
        .lock(LockName::Wait, LockMode::Shared, Acquire::NonBlocking)
        .unwrap();
    assert_eq!(container.status().unwrap(), ContainerStatus::Exited);
    let exit = container.exit().unwrap().unwrap();
    assert_eq!(exit.exit_code, Some(3));
    assert_eq!(exit.wait_status(), Some(3 << 8));
}

#[test]
fn create_refuses_an_existing_container_and_leaves_it_intact() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    drop(root.create_container(&id("c1"), &task(None)).unwrap());
    let error = root.create_container(&id("c1"), &task(None)).unwrap_err();
    assert!(
        matches!(error, StateError::AlreadyExists { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("c1"), "{error}");
    assert_eq!(names(&dir.path().join("start-time")).len(), 1);
    assert!(root.container(&id("c1")).unwrap().is_complete().unwrap());
}

#[test]
fn create_refuses_to_replace_an_empty_directory_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    fs::create_dir_all(dir.path().join("mesos/c1")).unwrap();
    let error = root.create_container(&id("c1"), &task(None)).unwrap_err();
    assert!(
        matches!(error, StateError::AlreadyExists { .. }),
        "{error:?}"
    );
    let creating = dir.path().join("creating");
    assert!(!creating.exists() || names(&creating).is_empty());
    assert!(names(&dir.path().join("mesos/c1")).is_empty());
    let start_time = dir.path().join("start-time");
    assert!(!start_time.exists() || names(&start_time).is_empty());
}

#[test]
fn concurrent_launches_of_one_container_leave_one_directory_and_one_link() {
    // Launches racing past the existence check lose at the rename, and must then remove the
    // start-time link they made.
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let winners = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for n in 0..50 {
                    match root.create_container(&id(&format!("c{n}")), &task(None)) {
                        Ok(_) => {
                            winners.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(StateError::AlreadyExists { .. }) => {}
                        Err(other) => panic!("{other}"),
                    }
                }
            });
        }
    });
    assert_eq!(winners.into_inner(), 50);
    assert_eq!(names(&dir.path().join("mesos")).len(), 50);
    assert_eq!(names(&dir.path().join("start-time")).len(), 50);
    assert!(names(&dir.path().join("creating")).is_empty());
}

#[test]
fn create_refuses_a_sandbox_path_json_cannot_hold_and_leaves_nothing() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let new = NewContainer {
        sandbox: Some(OsStr::from_bytes(b"/sandboxes/\xff").into()),
        ..task(None)
    };
    let error = root.create_container(&id("c1"), &new).unwrap_err();
    assert!(matches!(error, StateError::Unencodable { .. }), "{error:?}");
    assert!(error.to_string().contains("container c1"), "{error}");
    assert!(names(&dir.path().join("mesos")).is_empty());
    assert!(names(&dir.path().join("start-time")).is_empty());
    assert!(names(&dir.path().join("creating")).is_empty());
}

#[test]
fn launch_in_an_occupied_millisecond_gets_a_suffixed_start_time_entry() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    // Occupy every millisecond from now until 3 s after the links are made, so whenever the
    // launch happens, its plain name collides (D-5: Deimos then skipped the link silently).
    // The range grows until it is 3 s ahead of the clock: a loaded machine that takes longer
    // to make the links only makes more of them.
    let start_time = dir.path().join("start-time");
    fs::create_dir_all(&start_time).unwrap();
    let base = OffsetDateTime::now_utc();
    let mut occupied = 0;
    let mut wanted = 3000;
    while occupied < wanted {
        while occupied < wanted {
            let name = format_iso_millis(base + time::Duration::milliseconds(occupied));
            symlink("../mesos/other", start_time.join(name)).unwrap();
            occupied += 1;
        }
        let elapsed = (OffsetDateTime::now_utc() - base).whole_milliseconds();
        wanted = i64::try_from(elapsed).unwrap() + 3000;
        assert!(
            occupied < 600_000,
            "making a symbolic link takes over a millisecond here; the test cannot occupy the clock"
        );
    }
    let launching = root.create_container(&id("c1"), &task(None)).unwrap();
    let token = launching.dir().start_time_token().unwrap().unwrap();
    assert!(token.ends_with("Z.1"), "{token}");
    assert_eq!(StartTimeName::parse(&token).unwrap().sequence, 1);
    assert_eq!(
        fs::read_link(start_time.join(&token)).unwrap(),
        Path::new("../mesos/c1")
    );
}

#[test]
fn concurrent_launches_are_all_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let root = &root;
            scope.spawn(move || {
                for n in 0..50 {
                    drop(
                        root.create_container(&id(&format!("c{thread}-{n}")), &task(None))
                            .unwrap(),
                    );
                }
            });
        }
    });
    let links = names(&dir.path().join("start-time"));
    assert_eq!(links.len(), 200);
    let mut targets: Vec<_> = links
        .iter()
        .map(|n| fs::read_link(dir.path().join("start-time").join(n)).unwrap())
        .collect();
    targets.sort();
    targets.dedup();
    assert_eq!(targets.len(), 200);
    for n in &links {
        assert!(StartTimeName::parse(n).is_some(), "{n}");
    }
}

#[test]
fn docker_id_is_recorded_indexed_and_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let (container, _launch) = root
        .create_container(&id("c1"), &task(None))
        .unwrap()
        .into_parts();
    let docker_id = "ab".repeat(32);
    container.record_docker_id(&docker_id).unwrap();
    container.record_docker_id(&docker_id).unwrap();
    assert_eq!(read(&container.file("cid")), format!("{docker_id}\n"));
    assert_eq!(
        fs::read_link(dir.path().join("docker").join(&docker_id)).unwrap(),
        Path::new("../mesos/c1")
    );
    let found = root.container_by_docker_id(&docker_id).unwrap();
    assert_eq!(found.id(), &id("c1"));
    let conflict = container.record_docker_id("cd").unwrap_err();
    assert!(
        matches!(conflict, StateError::DockerIdConflict { .. }),
        "{conflict:?}"
    );
    assert!(matches!(
        root.container_by_docker_id("ef").unwrap_err(),
        StateError::DockerIdNotFound { .. }
    ));
    assert!(matches!(
        container.record_docker_id("../x").unwrap_err(),
        StateError::InvalidId(_)
    ));
}

#[test]
fn docker_index_link_of_another_container_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let (first, _a) = root
        .create_container(&id("c1"), &task(None))
        .unwrap()
        .into_parts();
    let (second, _b) = root
        .create_container(&id("c2"), &task(None))
        .unwrap()
        .into_parts();
    first.record_docker_id("d1").unwrap();
    let error = second.record_docker_id("d1").unwrap_err();
    assert!(error.to_string().contains("../mesos/c1"), "{error}");
    assert_eq!(root.container_by_docker_id("d1").unwrap().id(), &id("c1"));
}

#[test]
fn missing_container_lookup_names_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let error = root(&dir).container(&id("nope")).unwrap_err();
    assert!(matches!(error, StateError::NotFound { .. }));
    assert!(error.to_string().contains("nope"), "{error}");
}

#[test]
fn discard_removes_the_directory_and_both_index_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let launching = root.create_container(&id("c1"), &task(None)).unwrap();
    launching.dir().record_docker_id("d1").unwrap();
    let kept = root.create_container(&id("c2"), &task(None)).unwrap();
    launching.discard().unwrap();
    assert!(!dir.path().join("mesos/c1").exists());
    assert!(names(&dir.path().join("docker")).is_empty());
    assert_eq!(names(&dir.path().join("start-time")).len(), 1);
    assert!(kept.dir().path().exists());
    // Discarding a directory another tool half-made is fine too.
    fs::create_dir_all(dir.path().join("mesos/half")).unwrap();
    root.container(&id("half")).unwrap().discard().unwrap();
    assert!(!dir.path().join("mesos/half").exists());
}

#[test]
fn d17_exit_record_is_replaced_atomically_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let root = StateRoot::new(dir.path());
    let (container, _launch) = root
        .create_container(&id("c1"), &task(None))
        .unwrap()
        .into_parts();
    assert_eq!(container.exit().unwrap(), None);
    assert!(!container.has_exit().unwrap());
    let record = ExitRecord {
        exit_code: Some(137),
        signal: Some(9),
        oom_killed: true,
        destroyed: false,
        message: "out of memory".into(),
        finished_at: Some(OffsetDateTime::now_utc()),
    };
    container.record_exit(&ExitRecord::with_code(1)).unwrap();
    container.record_exit(&record).unwrap();
    let read_back = container.exit().unwrap().unwrap();
    assert!(read_back.oom_killed);
    assert_eq!(read_back.message, "out of memory");
    assert!(read(&container.file("exit")).contains("\"oom_killed\": true"));
    assert!(names(container.path()).iter().all(|n| !n.starts_with('.')));
}

#[test]
fn half_made_and_garbage_directories_read_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    let mesos = dir.path().join("mesos");
    fs::create_dir_all(mesos.join("empty")).unwrap();
    fs::create_dir_all(mesos.join("garbage")).unwrap();
    fs::write(mesos.join("garbage/mesos-container-id"), "garbage\n").unwrap();
    fs::write(mesos.join("garbage/exit"), "not a number").unwrap();
    fs::write(mesos.join("garbage/pid"), "x").unwrap();
    fs::write(mesos.join("garbage/started"), "yesterday").unwrap();
    fs::create_dir_all(mesos.join("bad-record")).unwrap();
    fs::write(mesos.join("bad-record/container.json"), "bad-record\n").unwrap();
    fs::write(mesos.join("bad-record/exit"), "0").unwrap();
    fs::write(mesos.join("stray-file"), "").unwrap();
    let list = root.list(&Scope::All).unwrap();
    let statuses: Vec<_> = list.iter().map(|s| (s.id.as_str(), s.status)).collect();
    assert_eq!(
        statuses,
        [
            ("bad-record", ContainerStatus::Incomplete),
            ("empty", ContainerStatus::Incomplete),
            ("garbage", ContainerStatus::Exited)
        ]
    );
    let bad_record = root.container(&id("bad-record")).unwrap();
    let error = bad_record.record().unwrap_err();
    assert!(matches!(error, StateError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("container.json"), "{error}");
    assert!(bad_record.executor_id().is_err());
    let garbage = root.container(&id("garbage")).unwrap();
    assert!(matches!(
        garbage.exit(),
        Err(StateError::InvalidExit { .. })
    ));
    assert!(matches!(
        garbage.watcher_pid(),
        Err(StateError::Corrupt { .. })
    ));
    assert!(matches!(
        garbage.started_at(),
        Err(StateError::Corrupt { .. })
    ));
    let empty = root.container(&id("empty")).unwrap();
    assert_eq!(empty.executor_id().unwrap(), None);
    assert!(!empty.is_locked_exclusively(LockName::Wait).unwrap());
}

#[test]
fn list_filters_by_owner_so_agents_do_not_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let root = root(&dir);
    drop(
        root.create_container(&id("a1"), &task(Some("/agent-a")))
            .unwrap(),
    );
    drop(
        root.create_container(&id("b1"), &task(Some("/agent-b")))
            .unwrap(),
    );
    drop(root.create_container(&id("none"), &task(None)).unwrap());
    let ids = |scope: Scope| -> Vec<String> {
        root.list(&scope)
            .unwrap()
            .into_iter()
            .map(|s| s.id.to_string())
            .collect()
    };
    assert_eq!(ids(Scope::Owner("/agent-a".into())), ["a1"]);
    assert_eq!(ids(Scope::Owner("/agent-b".into())), ["b1"]);
    assert_eq!(ids(Scope::All), ["a1", "b1", "none"]);
}

#[test]
fn listing_a_missing_root_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let root = StateRoot::new(dir.path().join("does-not-exist"));
    assert!(root.list(&Scope::All).unwrap().is_empty());
    assert!(root.lock_listing().unwrap().is_empty());
}
