//! No container outlives its executor: the real `deimos-executor` binary is SIGKILLed with a
//! task running, and its watchdog removes the container (real Docker, the fake agent).

mod common;

use std::time::{Duration, Instant};

use common::{containers_of, docker, shell_task, ContainerGuard, Setup, IMAGE, PATIENCE};
use deimos_executor::task::MANAGED_BY;
use deimos_executor::watchdog;
use deimos_runtime::runtime::ContainerRuntime;
use deimos_runtime::spec::{labels, Command, ContainerSpec};
use mesos_proto::v1::TaskState;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The documented bound: the containers of a killed executor are gone within this time.
const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn sigkilled_executor_leaves_no_container_running() {
    let docker = docker().await;
    let mut setup = Setup::start("sigkill", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    setup
        .agent
        .launch(shell_task("t1", "sleep 300"))
        .expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    assert_eq!(containers_of(&docker, &setup.framework_id).await.len(), 1);

    let pid = setup.executor.id().expect("the executor runs");
    let pid = Pid::from_raw(i32::try_from(pid).expect("a pid"));
    kill(pid, Signal::SIGKILL).expect("SIGKILL the executor");
    let status = setup.executor.wait().await.expect("reaping the executor");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );

    let killed_at = Instant::now();
    loop {
        let left = containers_of(&docker, &setup.framework_id).await;
        if left.is_empty() {
            break;
        }
        assert!(
            killed_at.elapsed() < BOUND,
            "the container {left:?} still exists {BOUND:?} after the executor died\nexecutor log:\n{}",
            setup.executor_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The watchdog says what it did once the removal is done: give it a moment to write.
    let removed_at = Instant::now();
    while !setup.executor_log().contains("watchdog: the executor") {
        assert!(
            removed_at.elapsed() < BOUND,
            "the watchdog did not report the removal\nexecutor log:\n{}",
            setup.executor_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sweep_removes_only_the_containers_of_its_instance() {
    let docker = docker().await;
    let framework_id = common::unique("sweep");
    let _guard = ContainerGuard::new(&framework_id);
    let create = |instance: &str| ContainerSpec {
        name: Some(format!("{framework_id}-{instance}")),
        image: IMAGE.into(),
        command: Command::Shell("sleep 300".into()),
        labels: [
            (labels::MANAGED_BY, MANAGED_BY),
            (labels::FRAMEWORK_ID, framework_id.as_str()),
            (labels::EXECUTOR_INSTANCE, instance),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect(),
        ..Default::default()
    };
    let mine = docker.launch(&create("mine")).await.expect("launching");
    let other = docker.launch(&create("other")).await.expect("launching");

    assert_eq!(watchdog::sweep(&docker, "mine").await.expect("sweeping"), 1);
    let left = containers_of(&docker, &framework_id).await;
    assert!(!left.contains(&mine), "{left:?}");
    assert!(left.contains(&other), "{left:?}");
    assert_eq!(watchdog::sweep(&docker, "mine").await.expect("sweeping"), 0);
}
