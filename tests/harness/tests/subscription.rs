//! The SUBSCRIBE event stream: encodings, framing, ordering, heartbeats.

mod common;

use std::time::Duration;

use common::*;
use hyper::StatusCode;
use mesos_harness::agent::{AgentSetup, ContentType, FakeAgent};
use mesos_proto::v1::executor::{call, event, Event};
use mesos_proto::v1::{TaskId, TaskState};
use prost::Message as _;

fn assert_subscribed_for_setup(event: &Event, agent: &FakeAgent) {
    assert_eq!(event_type(event), event::Type::Subscribed);
    let subscribed = event.subscribed.as_ref().expect("SUBSCRIBED payload");
    assert_eq!(subscribed.executor_info.executor_id.value, EXECUTOR);
    assert_eq!(
        subscribed
            .framework_info
            .id
            .as_ref()
            .expect("framework id")
            .value,
        FRAMEWORK
    );
    assert_eq!(subscribed.framework_info.checkpoint, Some(true));
    assert_eq!(
        subscribed.agent_info.id.as_ref().expect("agent id").value,
        AGENT
    );
    assert_eq!(
        subscribed.agent_info.port,
        Some(i32::from(agent.endpoint().port()))
    );
    assert_eq!(
        subscribed
            .container_id
            .as_ref()
            .expect("container id")
            .value,
        CONTAINER
    );
}

#[tokio::test]
async fn subscribe_without_accept_streams_json_records_starting_with_subscribed() {
    let agent = start().await;
    let mut stream = subscribe(&agent).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["Content-Type"], "application/json");
    assert_eq!(stream.headers["Transfer-Encoding"], "chunked");
    let payload = stream.raw_record().await;
    let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(json["type"], "SUBSCRIBED");
    // Mesos' JSON output spells out explicit proto defaults.
    assert_eq!(
        json["subscribed"]["framework_info"]["failover_timeout"],
        0.0
    );
    let event: Event = mesos_proto::json::from_slice(&payload).unwrap();
    assert_subscribed_for_setup(&event, &agent);
}

#[tokio::test]
async fn subscribe_accepting_only_protobuf_streams_protobuf_records_starting_with_subscribed() {
    let agent = start().await;
    let mut stream = subscribe_with(
        &agent,
        ContentType::Protobuf,
        Some("application/x-protobuf"),
        call::Subscribe::default(),
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["Content-Type"], "application/x-protobuf");
    let payload = stream.raw_record().await;
    let event = Event::decode(payload).unwrap();
    assert_subscribed_for_setup(&event, &agent);
}

#[tokio::test]
async fn wait_subscribed_returns_the_subscribe_call() {
    let agent = start().await;
    let subscribe = call::Subscribe {
        unacknowledged_tasks: vec![task("t1")],
        unacknowledged_updates: Vec::new(),
    };
    let _stream = subscribe_with(&agent, ContentType::Json, None, subscribe.clone()).await;
    assert_eq!(agent.wait_subscribed(WAIT).await.unwrap(), subscribe);
}

#[tokio::test]
async fn pushed_events_arrive_in_order() {
    let agent = start().await;
    let mut stream = subscribe_with(
        &agent,
        ContentType::Protobuf,
        Some("application/x-protobuf"),
        call::Subscribe::default(),
    )
    .await;
    assert_eq!(event_type(&stream.event().await), event::Type::Subscribed);

    agent.launch(task("t1")).unwrap();
    agent.kill(TaskId { value: "t1".into() }).unwrap();
    agent
        .send(Event {
            r#type: Some(event::Type::Message as i32),
            message: Some(event::Message {
                data: b"hi".to_vec(),
            }),
            ..Default::default()
        })
        .unwrap();
    agent
        .send(Event {
            r#type: Some(event::Type::Error as i32),
            error: Some(event::Error {
                message: "boom".into(),
            }),
            ..Default::default()
        })
        .unwrap();
    agent.shutdown().unwrap();

    let launch = stream.event().await;
    assert_eq!(launch.launch.unwrap().task.task_id.value, "t1");
    let kill = stream.event().await;
    assert_eq!(kill.kill.unwrap().task_id.value, "t1");
    assert_eq!(stream.event().await.message.unwrap().data, b"hi");
    assert_eq!(stream.event().await.error.unwrap().message, "boom");
    assert_eq!(event_type(&stream.event().await), event::Type::Shutdown);
}

#[tokio::test]
async fn tasks_launched_before_the_first_subscribe_follow_subscribed() {
    let agent = start().await;
    agent.launch(task("early")).unwrap();
    let mut stream = subscribe(&agent).await;
    assert_eq!(event_type(&stream.event().await), event::Type::Subscribed);
    let launch = stream.event().await;
    assert_eq!(event_type(&launch), event::Type::Launch);
    assert_eq!(launch.launch.unwrap().task.task_id.value, "early");
}

#[tokio::test]
async fn sending_without_a_subscription_fails() {
    let agent = start().await;
    assert!(agent.kill(TaskId { value: "t1".into() }).is_err());
}

#[tokio::test]
async fn acknowledge_sends_acknowledged_for_a_received_update() {
    let agent = start().await;
    let mut stream = subscribe(&agent).await;
    stream.event().await; // SUBSCRIBED
    let running = status("t1", TaskState::TaskRunning);
    let uuid = running.uuid.clone().unwrap();
    let answer = post_call(&agent, &update_call(running), ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);

    agent
        .acknowledge(TaskId { value: "t1".into() }, uuid.clone())
        .unwrap();
    let ack = stream.event().await.acknowledged.unwrap();
    assert_eq!(ack.task_id.value, "t1");
    assert_eq!(ack.uuid, uuid);
    // Acknowledged once: a second acknowledgement names no pending update.
    assert!(agent
        .acknowledge(TaskId { value: "t1".into() }, uuid)
        .is_err());
}

#[tokio::test]
async fn acknowledging_an_update_never_received_fails() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    let err = agent
        .acknowledge(TaskId { value: "t1".into() }, uuid_v4())
        .unwrap_err();
    assert!(err.to_string().contains("received no update"), "{err}");
}

#[tokio::test]
async fn a_new_subscribe_ends_the_previous_stream_cleanly() {
    let agent = start().await;
    let mut first = subscribe(&agent).await;
    first.event().await;
    let mut second = subscribe(&agent).await;
    assert_eq!(event_type(&second.event().await), event::Type::Subscribed);
    assert!(
        first.next().await.is_none(),
        "old stream should end without error"
    );
    agent.kill(TaskId { value: "t1".into() }).unwrap();
    assert_eq!(event_type(&second.event().await), event::Type::Kill);
}

#[tokio::test]
async fn subscribe_after_shutdown_gets_shutdown_and_the_stream_closes() {
    let agent = start().await;
    agent.shutdown().unwrap(); // before the executor ever subscribed
    let mut stream = subscribe(&agent).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(event_type(&stream.event().await), event::Type::Shutdown);
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn heartbeats_arrive_at_the_configured_interval() {
    let setup = AgentSetup {
        heartbeat_interval: Duration::from_millis(100),
        ..setup()
    };
    let agent = FakeAgent::start(setup).await.unwrap();
    let mut stream = subscribe(&agent).await;
    assert_eq!(event_type(&stream.event().await), event::Type::Subscribed);
    assert_eq!(event_type(&stream.event().await), event::Type::Heartbeat);
    assert_eq!(event_type(&stream.event().await), event::Type::Heartbeat);
}

#[tokio::test]
async fn wait_for_call_times_out_when_no_call_matches() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    let err = agent
        .wait_for_call(
            |c| c.r#type() == call::Type::Update,
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}
