//! Agent restart: disconnection, recovery window, re-subscription.

mod common;

use std::time::Duration;

use common::*;
use hyper::StatusCode;
use mesos_harness::agent::{AgentSetup, ContentType, FakeAgent};
use mesos_proto::v1::executor::{call, event};
use mesos_proto::v1::{task_status, TaskId, TaskState};

#[tokio::test]
async fn disconnect_breaks_the_stream_and_refuses_connections() {
    let agent = start().await;
    let mut stream = subscribe(&agent).await;
    stream.event().await;
    agent.disconnect().await.unwrap();
    // A dying process ends the chunked body without its terminating chunk.
    let end = stream.next().await;
    assert!(
        matches!(end, Some(Err(_))),
        "expected a broken stream, got {end:?}"
    );
    assert!(tokio::net::TcpStream::connect(agent.endpoint())
        .await
        .is_err());
}

#[tokio::test]
async fn resubscription_after_restart_carries_unacknowledged_updates() {
    let agent = start().await;
    let mut stream = subscribe(&agent).await;
    stream.event().await;
    agent.launch(task("t1")).unwrap();
    stream.event().await; // LAUNCH
    let running = status("t1", TaskState::TaskRunning);
    post_call(&agent, &update_call(running.clone()), ContentType::Json).await;

    let pending = agent.pending_acknowledgements();
    assert_eq!(
        pending,
        vec![(running.task_id.clone(), running.uuid.clone().unwrap())]
    );

    agent.disconnect().await.unwrap();
    agent.restart().await.unwrap();
    let resubscribe = call::Subscribe {
        unacknowledged_tasks: Vec::new(),
        unacknowledged_updates: vec![call::Update {
            status: running.clone(),
        }],
    };
    let mut stream = subscribe_with(&agent, ContentType::Json, None, resubscribe.clone()).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(event_type(&stream.event().await), event::Type::Subscribed);
    assert_eq!(agent.wait_subscribed(WAIT).await.unwrap(), resubscribe);

    // The task had an update, so it is not lost; the update can be acked.
    assert!(
        agent.agent_updates().is_empty(),
        "{:?}",
        agent.agent_updates()
    );
    agent
        .acknowledge(TaskId { value: "t1".into() }, running.uuid.unwrap())
        .unwrap();
    assert_eq!(event_type(&stream.event().await), event::Type::Acknowledged);
}

#[tokio::test]
async fn staging_task_missing_from_resubscription_is_lost_as_agent_restarted() {
    let agent = start().await;
    let mut stream = subscribe(&agent).await;
    stream.event().await;
    agent.launch(task("known")).unwrap();
    agent.launch(task("forgotten")).unwrap();
    agent.disconnect().await.unwrap();
    agent.restart().await.unwrap();

    let resubscribe = call::Subscribe {
        unacknowledged_tasks: vec![task("known")],
        unacknowledged_updates: Vec::new(),
    };
    let _stream = subscribe_with(&agent, ContentType::Json, None, resubscribe).await;
    let lost = agent.agent_updates();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].task_id.value, "forgotten");
    assert_eq!(lost[0].state(), TaskState::TaskLost);
    assert_eq!(lost[0].source(), task_status::Source::Agent);
    assert_eq!(lost[0].reason(), task_status::Reason::AgentRestarted);
}

#[tokio::test]
async fn calls_during_recovery_get_503_until_the_executor_resubscribes() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    agent.disconnect().await.unwrap();
    agent.restart().await.unwrap();

    let update = update_call(status("t1", TaskState::TaskRunning));
    let answer = post_call(&agent, &update, ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body, "Agent has not finished recovery");

    let _stream = subscribe(&agent).await;
    let answer = post_call(&agent, &update, ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn executor_missing_the_reregistration_window_is_removed_and_its_tasks_lost() {
    let setup = AgentSetup {
        subscription_backoff_max: Duration::from_millis(100),
        ..setup()
    };
    let agent = FakeAgent::start(setup).await.unwrap();
    let mut stream = subscribe(&agent).await;
    stream.event().await;
    agent.launch(task("t1")).unwrap();
    agent.disconnect().await.unwrap();
    agent.restart().await.unwrap();
    // The window's end shows as the agent's TASK_LOST for the unfinished task.
    let deadline = tokio::time::Instant::now() + WAIT;
    while agent.agent_updates().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let stream = subscribe(&agent).await;
    assert_eq!(stream.status, StatusCode::BAD_REQUEST);
    let lost = agent.agent_updates();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(
        lost[0].reason(),
        task_status::Reason::ExecutorReregistrationTimeout
    );
}

#[tokio::test]
async fn non_checkpointing_framework_is_unknown_after_restart() {
    let setup = AgentSetup {
        checkpoint: false,
        ..setup()
    };
    let agent = FakeAgent::start(setup).await.unwrap();
    let _stream = subscribe(&agent).await;
    agent.disconnect().await.unwrap();
    agent.restart().await.unwrap();
    let stream = subscribe(&agent).await;
    assert_eq!(stream.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        agent.rejections().last().unwrap().message,
        "Framework cannot be found"
    );
}

#[tokio::test]
async fn restart_while_up_and_disconnect_while_down_are_refused() {
    let agent = start().await;
    assert!(agent.restart().await.is_err());
    agent.disconnect().await.unwrap();
    assert!(agent.disconnect().await.is_err());
}
