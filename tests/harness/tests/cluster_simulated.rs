//! The simulated agent mode attached to a real fake master over HTTP: the
//! updates Mesos' command and docker executors send, in order, with their
//! sources and messages; kills with and without TASK_KILLING_STATE; a
//! framework's shutdown; the runs recorded in the agent's book.

mod scheduler_client;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use mesos_harness::cluster::sandbox::AgentBook;
use mesos_harness::cluster::simulated::{
    ExecutorWording, SimulatedAgent, SimulatedAgentConfig, RUN_SECONDS_LABEL,
};
use mesos_harness::cluster::RunningAgent;
use mesos_harness::master::{AgentSpec, FakeMaster};
use mesos_proto::v1::{
    framework_info, task_status, FrameworkInfo, Label, Labels, TaskInfo, TaskState, TaskStatus,
};
use scheduler_client::*;

/// A scratch work directory, removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(name: &str) -> Self {
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).expect("random bytes");
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("sim-{name}-{suffix}"));
        std::fs::create_dir_all(&path).expect("the work directory is created");
        WorkDir(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Setup {
    master: FakeMaster,
    agent: SimulatedAgent,
    _running: RunningAgent,
    _work: WorkDir,
}

async fn setup(name: &str, configure: impl FnOnce(&mut SimulatedAgentConfig)) -> Setup {
    let work = WorkDir::new(name);
    let master = start().await;
    master
        .add_agent(AgentSpec::new(AGENT, "127.0.0.1"))
        .expect("the agent is added");
    let mut config = SimulatedAgentConfig::new(AgentBook::new(&work.0, AGENT));
    configure(&mut config);
    let agent = SimulatedAgent::new(config);
    let running = RunningAgent::start(
        master.attach_agent(AGENT).expect("the agent attaches"),
        Arc::new(agent.clone()),
    );
    Setup {
        master,
        agent,
        _running: running,
        _work: work,
    }
}

fn with_run_seconds(mut task: TaskInfo, seconds: &str) -> TaskInfo {
    task.labels = Some(Labels {
        labels: vec![Label {
            key: RUN_SECONDS_LABEL.to_owned(),
            value: Some(seconds.to_owned()),
        }],
    });
    task
}

/// Subscribes with `info` and launches `task` on the first offer.
async fn launch(
    master: &FakeMaster,
    info: FrameworkInfo,
    task: TaskInfo,
) -> (Subscription, String) {
    let (mut subscription, framework_id) = subscribe_new(master, info).await;
    let offers = subscription.offers().await;
    let call = launch_call(&framework_id, &[&offers[0].id], vec![task]);
    let answer = post_call(master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    (subscription, framework_id)
}

/// The next update, acknowledged.
async fn acknowledged_update(
    master: &FakeMaster,
    subscription: &mut Subscription,
    framework_id: &str,
) -> TaskStatus {
    let status = subscription.update().await;
    let uuid = status.uuid.clone().expect("an agent's update has a uuid");
    let ack = acknowledge_call(framework_id, &status.task_id.value, AGENT, uuid);
    post_call(master, &subscription.stream_id, &ack).await;
    status
}

fn killing_framework_info() -> FrameworkInfo {
    FrameworkInfo {
        capabilities: vec![framework_info::Capability {
            r#type: Some(framework_info::capability::Type::TaskKillingState as i32),
        }],
        ..framework_info()
    }
}

async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn command_task_reports_starting_running_then_finished_and_its_executor_ends_on_the_ack() {
    let s = setup("command", |c| c.stdout = "hello\n".to_owned()).await;
    let task = with_run_seconds(task_info("t1", AGENT, 1.0, 128.0), "0.2");
    let (mut subscription, framework_id) = launch(&s.master, framework_info(), task).await;

    let mut states = Vec::new();
    for _ in 0..3 {
        let status = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
        assert_eq!(status.source(), task_status::Source::Executor);
        assert_eq!(status.executor_id.as_ref().unwrap().value, "t1");
        states.push((status.state(), status.message.clone()));
    }
    assert_eq!(
        states,
        vec![
            (TaskState::TaskStarting, None),
            (TaskState::TaskRunning, None),
            (
                TaskState::TaskFinished,
                Some("Command exited with status 0".to_owned())
            ),
        ]
    );

    // The command executor exits once its terminal update is acknowledged.
    let book = s.agent.book().clone();
    wait_for("the executor to terminate", || {
        book.executors().first().is_some_and(|e| e.terminated)
    })
    .await;
    let run = &book.executors()[0];
    assert_eq!(run.executor_id, "t1");
    assert_eq!(run.tasks[0].1, TaskState::TaskFinished);
    assert_eq!(
        std::fs::read_to_string(run.directory.join("stdout")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(run.directory.join("stderr")).unwrap(),
        ""
    );
    assert_eq!(s.agent.live_tasks(), 0);
}

#[tokio::test]
async fn kill_reports_killing_only_to_frameworks_with_the_capability() {
    let s = setup("kill", |_| {}).await;
    for (info, task_id, killing) in [
        (killing_framework_info(), "with-killing", true),
        (framework_info(), "without-killing", false),
    ] {
        let task = with_run_seconds(task_info(task_id, AGENT, 1.0, 128.0), "60");
        let (mut subscription, framework_id) = launch(&s.master, info, task).await;
        for expected in [TaskState::TaskStarting, TaskState::TaskRunning] {
            let status = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
            assert_eq!(status.state(), expected);
        }
        post_call(
            &s.master,
            &subscription.stream_id,
            &kill_call(&framework_id, task_id),
        )
        .await;
        let mut status = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
        if killing {
            assert_eq!(status.state(), TaskState::TaskKilling);
            assert_eq!(status.source(), task_status::Source::Executor);
            status = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
        }
        assert_eq!(status.state(), TaskState::TaskKilled, "{task_id}");
        assert_eq!(status.source(), task_status::Source::Executor);
        assert_eq!(
            status.message.as_deref(),
            Some("Command terminated with signal Terminated")
        );
    }
}

#[tokio::test]
async fn docker_task_reports_the_inspect_document_with_its_sandbox_mount() {
    let s = setup("docker", |c| c.wording = ExecutorWording::Docker).await;
    let task = with_run_seconds(task_info("d1", AGENT, 1.0, 128.0), "0.1");
    let (mut subscription, framework_id) = launch(&s.master, framework_info(), task).await;

    let starting = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
    assert_eq!(starting.state(), TaskState::TaskStarting);
    assert!(starting.data.is_none());
    let running = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
    assert_eq!(running.state(), TaskState::TaskRunning);
    let inspect: serde_json::Value =
        serde_json::from_slice(running.data.as_deref().unwrap()).unwrap();
    let sandbox = s.agent.book().latest_run(&framework_id, "d1").unwrap();
    let container = s.agent.book().executors()[0].container_id.clone();
    assert_eq!(inspect[0]["Name"], format!("/mesos-{container}"));
    assert_eq!(
        inspect[0]["Mounts"][0]["Source"],
        sandbox.display().to_string()
    );
    assert_eq!(inspect[0]["Mounts"][0]["Destination"], "/mnt/mesos/sandbox");
    let finished = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
    assert_eq!(finished.state(), TaskState::TaskFinished);
    assert_eq!(
        finished.message.as_deref(),
        Some("Container exited with status 0")
    );
}

#[tokio::test]
async fn teardown_ends_the_frameworks_tasks_without_updates() {
    let s = setup("teardown", |_| {}).await;
    let task = with_run_seconds(task_info("t1", AGENT, 1.0, 128.0), "60");
    let (mut subscription, framework_id) = launch(&s.master, framework_info(), task).await;
    for _ in 0..2 {
        acknowledged_update(&s.master, &mut subscription, &framework_id).await;
    }
    let teardown = envelope(
        &framework_id,
        mesos_proto::v1::scheduler::call::Type::Teardown,
    );
    post_call(&s.master, &subscription.stream_id, &teardown).await;

    let book = s.agent.book().clone();
    wait_for("the executor to terminate", || {
        book.executors().first().is_some_and(|e| e.terminated)
    })
    .await;
    assert_eq!(book.executors()[0].tasks[0].1, TaskState::TaskKilled);
    assert_eq!(s.agent.live_tasks(), 0);
    let forwarded = s.master.task("t1").unwrap().statuses;
    assert_eq!(
        forwarded.len(),
        2,
        "no update after the shutdown: {forwarded:?}"
    );
}

#[tokio::test]
async fn run_seconds_label_that_is_not_a_number_fails_the_task_naming_the_label() {
    let s = setup("label", |_| {}).await;
    let task = with_run_seconds(task_info("t1", AGENT, 1.0, 128.0), "soon");
    let (mut subscription, framework_id) = launch(&s.master, framework_info(), task).await;
    let status = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
    assert_eq!(status.state(), TaskState::TaskFailed);
    let message = status.message.unwrap();
    assert!(
        message.contains(RUN_SECONDS_LABEL) && message.contains("soon"),
        "{message}"
    );
}

#[tokio::test]
async fn shutdown_of_a_docker_tasks_executor_kills_it_with_the_docker_executors_message() {
    let s = setup("shutdown", |c| c.wording = ExecutorWording::Docker).await;
    let task = with_run_seconds(task_info("d1", AGENT, 1.0, 128.0), "60");
    let (mut subscription, framework_id) = launch(&s.master, killing_framework_info(), task).await;
    for _ in 0..2 {
        acknowledged_update(&s.master, &mut subscription, &framework_id).await;
    }
    let mut shutdown = envelope(
        &framework_id,
        mesos_proto::v1::scheduler::call::Type::Shutdown,
    );
    shutdown.shutdown = Some(mesos_proto::v1::scheduler::call::Shutdown {
        executor_id: mesos_proto::v1::ExecutorId {
            value: "d1".to_owned(),
        },
        agent_id: mesos_proto::v1::AgentId {
            value: AGENT.to_owned(),
        },
    });
    post_call(&s.master, &subscription.stream_id, &shutdown).await;
    let killing = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
    assert_eq!(killing.state(), TaskState::TaskKilling);
    let killed = acknowledged_update(&s.master, &mut subscription, &framework_id).await;
    assert_eq!(killed.state(), TaskState::TaskKilled);
    assert_eq!(
        killed.message.as_deref(),
        Some("Container exited with status 143")
    );
}
