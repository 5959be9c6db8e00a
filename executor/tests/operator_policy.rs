//! The operator's `[policy]` of `deimos.cfg` (given through `$DEIMOS_CONFIG`) is enforced by
//! the `deimos-executor` binary (real Docker, the fake agent): privileged containers,
//! `--volumes-from` and host paths outside `allowed_host_paths` (as written, or once resolved)
//! are TASK_ERROR with REASON_TASK_UNAUTHORIZED and a message naming the key; nothing starts.

mod common;

use common::{containers_of, docker, read, shell_task, Setup, PATIENCE};
use mesos_proto::v1::{task_status, Parameter, TaskInfo, TaskState, Volume};

fn with_volume(mut task: TaskInfo, host_path: &str, container_path: &str) -> TaskInfo {
    if let Some(container) = task.container.as_mut() {
        container.volumes.push(Volume {
            container_path: container_path.into(),
            host_path: Some(host_path.into()),
            mode: mesos_proto::v1::volume::Mode::Ro as i32,
            ..Default::default()
        });
    }
    task
}

fn privileged(mut task: TaskInfo) -> TaskInfo {
    if let Some(docker) = task.container.as_mut().and_then(|c| c.docker.as_mut()) {
        docker.privileged = Some(true);
    }
    task
}

fn volumes_from(mut task: TaskInfo, container: &str) -> TaskInfo {
    if let Some(docker) = task.container.as_mut().and_then(|c| c.docker.as_mut()) {
        docker.parameters.push(Parameter {
            key: "volumes-from".into(),
            value: container.into(),
        });
    }
    task
}

#[tokio::test]
async fn refused_tasks_are_task_errors_naming_the_key_and_nothing_starts() {
    let docker = docker().await;
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    // Under the allowed directory as written, outside it once resolved.
    std::fs::create_dir_all(allowed.join("sub")).unwrap();
    std::os::unix::fs::symlink(&outside, allowed.join("sub/escape")).unwrap();
    let config = format!(
        "[policy]\nallowed_host_paths: [\"{}\"]\n",
        allowed.display()
    );
    let mut setup = Setup::start_with_config("policy", &config).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    let link = allowed.join("sub/escape").display().to_string();
    let refused = [
        (
            "privileged",
            privileged(shell_task("privileged", "true")),
            "[policy] allow_privileged".to_owned(),
        ),
        (
            "volumes-from",
            volumes_from(shell_task("volumes-from", "true"), "some-container"),
            "[policy] allow_volumes_from".to_owned(),
        ),
        (
            "outside",
            with_volume(
                shell_task("outside", "true"),
                &outside.display().to_string(),
                "/data",
            ),
            "[policy] allowed_host_paths".to_owned(),
        ),
        (
            "link",
            with_volume(shell_task("link", "true"), &link, "/data"),
            "[policy] allowed_host_paths".to_owned(),
        ),
    ];
    // All launched before any is acknowledged: the executor stays until every task ended.
    for (_, task, _) in &refused {
        setup.agent.launch(task.clone()).expect("LAUNCH");
    }
    for (id, _, key) in &refused {
        let error = setup.acknowledge(id, TaskState::TaskError).await;
        assert_eq!(
            error.reason(),
            task_status::Reason::TaskUnauthorized,
            "{id}: {error:?}"
        );
        assert!(
            error.message().contains(key) && error.message().contains("operator's policy"),
            "{id}: {error:?}"
        );
        assert!(
            !setup.states(id).contains(&TaskState::TaskRunning),
            "{id}: {:?}",
            setup.states(id)
        );
    }
    // The task refused only once its host path was resolved had said TASK_STARTING first.
    for (task_id, uuid) in setup.agent.pending_acknowledgements() {
        setup
            .agent
            .acknowledge(task_id, uuid)
            .expect("acknowledging");
    }
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    assert!(containers_of(&docker, &setup.framework_id).await.is_empty());
}

#[tokio::test]
async fn a_host_path_under_allowed_host_paths_is_mounted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("greeting"), "hello from the host\n").unwrap();
    let config = format!(
        "[policy]\nallowed_host_paths: [\"{}\"]\n",
        dir.path().display()
    );
    let mut setup = Setup::start_with_config("policyok", &config).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    let task = with_volume(
        shell_task("t1", "cat /data/greeting"),
        &dir.path().display().to_string(),
        "/data",
    );
    setup.agent.launch(task).expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    setup.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    assert!(read(setup.sandbox.path(), "stdout").contains("hello from the host"));
}
