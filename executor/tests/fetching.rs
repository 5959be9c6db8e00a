//! The URIs of a task's command are fetched into the sandbox by the `deimos-executor` binary
//! (real Docker, the fake agent, a real HTTP server on port 0, the operator's `deimos.cfg`
//! through `$DEIMOS_CONFIG`): extracted, made executable, owned by the task's user; what the
//! operator's `[uris]` limits refuse ends the task TASK_FAILED naming the URI and the reason;
//! a URI marked `cache` is downloaded once for the tasks of several executors.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::files::{tar_gz, FileServer};
use common::{containers_of, data_task, docker, read, Setup, PATIENCE};
use mesos_proto::v1::{command_info, task_status, CommandInfo, TaskState, TaskStatus};

/// The task's user: a numeric `uid:gid`, which needs no account on the host or in the image.
const TASK_UID: u32 = 4242;

fn uri(value: &str, extract: bool, executable: bool) -> command_info::Uri {
    command_info::Uri {
        value: value.into(),
        extract: Some(extract),
        executable: Some(executable),
        ..Default::default()
    }
}

fn command_with(line: &str, uris: Vec<command_info::Uri>) -> CommandInfo {
    CommandInfo {
        value: Some(line.into()),
        uris,
        ..Default::default()
    }
}

/// Runs one task whose fetch must fail and returns its TASK_FAILED status, after checking
/// that nothing else was reported, no container was created and the executor exited 0.
async fn failed_fetch(mut setup: Setup, command: CommandInfo) -> TaskStatus {
    let docker = docker().await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    setup
        .agent
        .launch(data_task("t1", &command))
        .expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    let failed = setup.acknowledge("t1", TaskState::TaskFailed).await;
    assert_eq!(
        setup.states("t1"),
        [TaskState::TaskStarting, TaskState::TaskFailed]
    );
    assert_eq!(
        failed.reason(),
        task_status::Reason::ContainerLaunchFailed,
        "{failed:?}"
    );
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    assert!(containers_of(&docker, &setup.framework_id).await.is_empty());
    failed
}

#[tokio::test]
async fn http_uris_are_fetched_extracted_and_made_executable_for_the_task_user() {
    let script = b"#!/bin/sh\necho the fetched script ran\n".to_vec();
    let archive = tar_gz(&[("bundle/data.txt", b"from the archive\n")]);
    let server = FileServer::start(vec![
        ("/tools/hello.sh", script),
        ("/bundle.tar.gz", archive),
    ])
    .await;
    let mut setup = Setup::start_with_config("fetch", "[uris]\nunpack: yes\n").await;
    // The agent gives the sandbox to the task's user; here other users may enter it.
    let sandbox = setup.sandbox.path().to_owned();
    std::fs::set_permissions(&sandbox, std::fs::Permissions::from_mode(0o755)).unwrap();
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    let mut command = command_with(
        "./hello.sh && cat bundle/data.txt && id -u",
        vec![
            uri(&server.url("/tools/hello.sh"), false, true),
            uri(&server.url("/bundle.tar.gz"), true, false),
        ],
    );
    command.user = Some(format!("{TASK_UID}:{TASK_UID}"));
    setup
        .agent
        .launch(data_task("t1", &command))
        .expect("LAUNCH");

    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    let finished = setup.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    let stdout = read(&sandbox, "stdout");
    assert!(
        stdout.contains("the fetched script ran")
            && stdout.contains("from the archive")
            && stdout.contains(&TASK_UID.to_string()),
        "{finished:?}\nstdout: {stdout}\nexecutor log:\n{}",
        setup.executor_log()
    );
    let script = std::fs::metadata(sandbox.join("hello.sh")).unwrap();
    assert_eq!(script.mode() & 0o777, 0o755);
    let data = std::fs::metadata(sandbox.join("bundle/data.txt")).unwrap();
    for fetched in [&script, &data] {
        assert_eq!((fetched.uid(), fetched.gid()), (TASK_UID, TASK_UID));
    }
    // The archive itself is kept next to what it unpacked to, as Mesos' fetcher does.
    assert!(sandbox.join("bundle.tar.gz").is_file());
}

#[tokio::test]
async fn a_download_larger_than_max_size_fails_the_task_naming_the_uri_and_the_limit() {
    let server = FileServer::start(vec![("/big.bin", vec![7u8; 4096])]).await;
    let setup = Setup::start_with_config("fetchbig", "[uris]\nmax_size: 1KiB\n").await;
    let sandbox = setup.sandbox.path().to_owned();
    let url = server.url("/big.bin");
    let failed = failed_fetch(setup, command_with("true", vec![uri(&url, false, false)])).await;
    assert!(
        failed.message().contains(&url) && failed.message().contains("exceeds the limit of 1 KiB"),
        "{failed:?}"
    );
    assert!(!sandbox.join("big.bin").exists());
}

#[tokio::test]
async fn an_archive_unpacking_beyond_max_extracted_size_fails_the_task_and_leaves_nothing() {
    let archive = tar_gz(&[("huge/zeros", &[0u8; 64 * 1024][..])]);
    let server = FileServer::start(vec![("/huge.tar.gz", archive)]).await;
    let setup = Setup::start_with_config("fetchbomb", "[uris]\nmax_extracted_size: 16KiB\n").await;
    let sandbox = setup.sandbox.path().to_owned();
    let url = server.url("/huge.tar.gz");
    let failed = failed_fetch(setup, command_with("true", vec![uri(&url, true, false)])).await;
    assert!(
        failed.message().contains(&url) && failed.message().contains("exceeds the limit of 16 KiB"),
        "{failed:?}"
    );
    assert!(!sandbox.join("huge").exists());
}

#[tokio::test]
async fn a_local_file_outside_allowed_local_paths_fails_the_task_naming_the_key() {
    let files = tempfile::tempdir().unwrap();
    let allowed = files.path().join("allowed");
    let secret = files.path().join("secret.txt");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(&secret, "not for tasks").unwrap();
    let config = format!("[uris]\nallowed_local_paths: [\"{}\"]\n", allowed.display());
    let setup = Setup::start_with_config("fetchlocal", &config).await;
    let sandbox = setup.sandbox.path().to_owned();
    let value = secret.display().to_string();
    let failed = failed_fetch(setup, command_with("true", vec![uri(&value, false, false)])).await;
    assert!(
        failed.message().contains(&value)
            && failed.message().contains("[uris] allowed_local_paths"),
        "{failed:?}"
    );
    assert!(!sandbox.join("secret.txt").exists());
}

#[tokio::test]
async fn a_local_file_under_allowed_local_paths_is_copied_into_the_sandbox() {
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("input.txt"), "local input\n").unwrap();
    let config = format!(
        "[uris]\nallowed_local_paths: [\"{}\"]\n",
        files.path().display()
    );
    let mut setup = Setup::start_with_config("fetchlocalok", &config).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    let url = format!("file://{}", files.path().join("input.txt").display());
    let command = command_with("cat input.txt", vec![uri(&url, false, false)]);
    setup
        .agent
        .launch(data_task("t1", &command))
        .expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    setup.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    assert!(read(setup.sandbox.path(), "stdout").contains("local input"));
}

#[tokio::test]
async fn a_cached_uri_is_downloaded_once_for_the_tasks_of_two_executors() {
    let server = FileServer::start(vec![(
        "/tools/greet.sh",
        b"#!/bin/sh\necho cached greeting\n".to_vec(),
    )])
    .await;
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("fetch");
    let config = format!(
        "[uris]\ncache_dir: {}\ncache_size: 1MiB\n",
        cache_dir.display()
    );
    let mut command = command_with(
        "./greet.sh && id -u",
        vec![command_info::Uri {
            cache: Some(true),
            ..uri(&server.url("/tools/greet.sh"), false, true)
        }],
    );
    command.user = Some(format!("{TASK_UID}:{TASK_UID}"));
    for test in ["fetchcache1", "fetchcache2"] {
        let mut setup = Setup::start_with_config(test, &config).await;
        let sandbox = setup.sandbox.path().to_owned();
        std::fs::set_permissions(&sandbox, std::fs::Permissions::from_mode(0o755)).unwrap();
        setup
            .agent
            .wait_subscribed(PATIENCE)
            .await
            .expect("SUBSCRIBE");
        setup
            .agent
            .launch(data_task("t1", &command))
            .expect("LAUNCH");
        setup.acknowledge("t1", TaskState::TaskStarting).await;
        setup.acknowledge("t1", TaskState::TaskRunning).await;
        let finished = setup.acknowledge("t1", TaskState::TaskFinished).await;
        assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
        let stdout = read(&sandbox, "stdout");
        assert!(
            stdout.contains("cached greeting") && stdout.contains(&TASK_UID.to_string()),
            "{finished:?}\nstdout: {stdout}\nexecutor log:\n{}",
            setup.executor_log()
        );
        // The sandbox copy is the task user's and executable; the cached file stays ours.
        let script = std::fs::metadata(sandbox.join("greet.sh")).unwrap();
        assert_eq!(script.mode() & 0o777, 0o755);
        assert_eq!((script.uid(), script.gid()), (TASK_UID, TASK_UID));
    }
    assert_eq!(
        server.requests(),
        1,
        "the second task's copy came from the cache"
    );
    let user_dir = cache_dir.join(format!("user-{TASK_UID}%3A{TASK_UID}"));
    let cached: Vec<_> = std::fs::read_dir(&user_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".lock"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
}
