//! The task's command reaches the `deimos-executor` binary in `TaskInfo.data` (real Docker, the
//! fake agent): what the data says runs; data that cannot be read is a TASK_ERROR.

mod common;

use common::{containers_of, data_task, docker, image_task, ports, read, Setup, PATIENCE};
use mesos_proto::v1::{environment, secret, CommandInfo, Environment, Secret, TaskState};

fn variable(name: &str, value: &str) -> environment::Variable {
    environment::Variable {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn command_environment_secrets_and_ports_from_task_data_arrive_and_run() {
    let mut setup = Setup::start("taskdata", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    let secret = environment::Variable {
        name: "TOKEN".into(),
        r#type: Some(environment::variable::Type::Secret as i32),
        secret: Some(Secret {
            r#type: Some(secret::Type::Value as i32),
            value: Some(secret::Value {
                data: b"s3cret".to_vec(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let command = CommandInfo {
        shell: Some(false),
        value: Some("/bin/sh".into()),
        arguments: vec![
            "sh".into(),
            "-c".into(),
            "echo \"greeting=$GREETING token=$TOKEN port=$PORT0\"".into(),
        ],
        environment: Some(Environment {
            variables: vec![variable("GREETING", "hello from data"), secret],
        }),
        ..Default::default()
    };
    let mut task = data_task("t1", &command);
    task.resources.push(ports(31005, 31005));
    setup.agent.launch(task).expect("LAUNCH");

    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    setup.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    let stdout = read(setup.sandbox.path(), "stdout");
    assert!(
        stdout.contains("greeting=hello from data token=s3cret port=31005"),
        "stdout: {stdout}\nexecutor log:\n{}",
        setup.executor_log()
    );
}

#[tokio::test]
async fn task_without_data_runs_the_image_default_command() {
    let mut setup = Setup::start("nodata", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    // The test image's default command is busybox `sh`, which ends at once on a closed stdin.
    setup.agent.launch(image_task("t1")).expect("LAUNCH");
    setup.acknowledge("t1", TaskState::TaskStarting).await;
    setup.acknowledge("t1", TaskState::TaskRunning).await;
    setup.acknowledge("t1", TaskState::TaskFinished).await;
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
}

#[tokio::test]
async fn malformed_task_data_is_a_task_error_and_no_container_starts() {
    let docker = docker().await;
    let mut setup = Setup::start("baddata", |_| {}).await;
    setup
        .agent
        .wait_subscribed(PATIENCE)
        .await
        .expect("SUBSCRIBE");
    let mut task = image_task("t1");
    task.data = Some(b"deimos-task-data v2\n\x0a\x00".to_vec());
    setup.agent.launch(task).expect("LAUNCH");

    let error = setup.acknowledge("t1", TaskState::TaskError).await;
    assert!(
        error.message().contains("task data format version 2")
            && error.message().contains("only version 1"),
        "{error:?}"
    );
    assert_eq!(setup.states("t1"), [TaskState::TaskError]);
    assert_eq!(setup.exit_code().await, 0, "{}", setup.executor_log());
    assert!(containers_of(&docker, &setup.framework_id).await.is_empty());
    assert!(
        setup.agent.rejections().is_empty(),
        "{:?}",
        setup.agent.rejections()
    );
}
