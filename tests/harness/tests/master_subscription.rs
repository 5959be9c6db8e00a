//! SUBSCRIBE streams of the fake master: first event, stream ids, encodings,
//! heartbeats, failover, removal and teardown, over real HTTP.

mod scheduler_client;

use std::time::{Duration, Instant};

use hyper::StatusCode;
use mesos_harness::master::{ContentType, FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::{call, event};
use mesos_proto::v1::{FrameworkId, FrameworkInfo, TaskState};
use scheduler_client::*;

#[tokio::test]
async fn subscribed_is_the_first_event_and_carries_id_interval_and_master_info() {
    let master = start().await;
    let mut subscription = subscribe_with(
        master.endpoint(),
        ContentType::Json,
        None,
        &[],
        &subscribe_call(framework_info()),
    )
    .await;
    assert_eq!(subscription.status, StatusCode::OK);
    assert_eq!(subscription.headers["Content-Type"], "application/json");
    assert_eq!(
        subscription.stream_id.len(),
        36,
        "{}",
        subscription.stream_id
    );
    let first = subscription.event().await;
    assert_eq!(first.r#type(), event::Type::Subscribed);
    let subscribed = first.subscribed.unwrap();
    assert!(subscribed
        .framework_id
        .value
        .starts_with(&format!("{}-", master.master_id())));
    assert_eq!(subscribed.heartbeat_interval_seconds, Some(0.2));
    let master_info = subscribed.master_info.unwrap();
    assert_eq!(master_info.port, u32::from(master.endpoint().port()));
    // 127.0.0.1 in network byte order read as a little-endian uint32.
    assert_eq!(master_info.ip, 16_777_343);
}

#[tokio::test]
async fn protobuf_request_without_accept_gets_a_json_stream() {
    let master = start().await;
    let mut subscription = subscribe_with(
        master.endpoint(),
        ContentType::Protobuf,
        None,
        &[],
        &subscribe_call(framework_info()),
    )
    .await;
    // A protobuf request still gets JSON when Accept allows it (none here).
    assert_eq!(subscription.content_type, ContentType::Json);
    let first = subscription.event().await;
    assert_eq!(first.r#type(), event::Type::Subscribed);
}

#[tokio::test]
async fn stream_is_protobuf_when_json_is_not_acceptable() {
    let master = start().await;
    let mut subscription = subscribe_with(
        master.endpoint(),
        ContentType::Json,
        Some("application/x-protobuf"),
        &[],
        &subscribe_call(framework_info()),
    )
    .await;
    assert_eq!(
        subscription.headers["Content-Type"],
        "application/x-protobuf"
    );
    let first = subscription.event().await;
    assert_eq!(first.r#type(), event::Type::Subscribed);
}

#[tokio::test]
async fn heartbeats_follow_subscribed_at_the_announced_interval() {
    let master = start().await;
    let (mut subscription, _) = subscribe_new(&master, framework_info()).await;
    let started = Instant::now();
    // One at once, then one per interval.
    for _ in 0..3 {
        assert_eq!(subscription.event().await.r#type(), event::Type::Heartbeat);
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(380), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn every_subscription_gets_a_fresh_stream_id() {
    let master = start().await;
    let (first, framework_id) = subscribe_new(&master, framework_info()).await;
    let info = FrameworkInfo {
        id: Some(FrameworkId {
            value: framework_id.clone(),
        }),
        ..framework_info()
    };
    let (second, again) = subscribe_new(&master, info).await;
    assert_eq!(again, framework_id);
    assert_ne!(first.stream_id, second.stream_id);
    // The old stream id is no longer valid.
    let call = envelope(&framework_id, call::Type::Revive);
    let answer = post_call(&master, &first.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn resubscription_fails_the_old_stream_over() {
    let master = start().await;
    let (mut old, framework_id) = subscribe_new(&master, framework_info()).await;
    let info = FrameworkInfo {
        id: Some(FrameworkId {
            value: framework_id.clone(),
        }),
        ..framework_info()
    };
    let (_new, _) = subscribe_new(&master, info).await;
    let error = old.event_skipping_heartbeats().await;
    assert_eq!(error.r#type(), event::Type::Error);
    assert_eq!(error.error.unwrap().message, "Framework failed over");
    assert!(old.next().await.is_none(), "the old stream must end");
}

#[tokio::test]
async fn failover_within_the_timeout_keeps_tasks() {
    let master = start_with_agent().await;
    let (_subscription, framework_id) = launch_one(&master, "t1").await;
    master.disconnect_framework().unwrap();
    let info = FrameworkInfo {
        id: Some(FrameworkId {
            value: framework_id.clone(),
        }),
        ..framework_info()
    };
    let (mut subscription, again) = subscribe_new(&master, info).await;
    assert_eq!(again, framework_id);
    let task = master.task("t1").unwrap();
    assert_eq!(task.state, TaskState::TaskStaging);
    assert!(!task.removed);
    // The task's resources stay in use: the new offer lacks its cpu.
    let offers = subscription.offers().await;
    let cpus = offers[0]
        .resources
        .iter()
        .find(|r| r.name == "cpus")
        .unwrap();
    assert_eq!(cpus.scalar.as_ref().unwrap().value, 3.0);
}

#[tokio::test]
async fn closing_the_stream_disconnects_the_framework() {
    let master = start().await;
    let (subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    drop(subscription);
    let deadline = Instant::now() + WAIT;
    while !master.connected_frameworks().is_empty() {
        assert!(Instant::now() < deadline, "still connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let call = envelope(&framework_id, call::Type::Revive);
    let answer = post_call(&master, "any", &call).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn expired_failover_timeout_removes_the_framework_and_kills_its_tasks() {
    let master = start_with_agent().await;
    let info = FrameworkInfo {
        failover_timeout: Some(0.0),
        ..framework_info()
    };
    let (mut subscription, framework_id) = subscribe_new(&master, info.clone()).await;
    let offers = subscription.offers().await;
    let call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info("t1", AGENT, 1.0, 64.0)],
    );
    post_call(&master, &subscription.stream_id, &call).await;
    master.disconnect_framework().unwrap();
    let task = master
        .wait_for_task_state("t1", TaskState::TaskKilled, WAIT)
        .await
        .unwrap();
    assert!(task.removed);
    let info = FrameworkInfo {
        id: Some(FrameworkId {
            value: framework_id,
        }),
        ..info
    };
    let mut again = subscribe_with(
        master.endpoint(),
        ContentType::Json,
        None,
        &[],
        &subscribe_call(info),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    let error = again.event().await;
    assert_eq!(error.error.unwrap().message, "Framework has been removed");
    assert!(again.next().await.is_none());
}

#[tokio::test]
async fn teardown_removes_the_framework_and_ends_its_stream() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    let call = envelope(&framework_id, call::Type::Teardown);
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    while subscription.next().await.is_some() {}
    assert!(master.task("t1").unwrap().removed);
    let answer = post_call(
        &master,
        &subscription.stream_id,
        &envelope(&framework_id, call::Type::Revive),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, "Framework cannot be found");
}

#[tokio::test]
async fn subscribing_with_an_id_unknown_to_this_master_keeps_that_id() {
    // After a master failover the new leader accepts the old framework id.
    let master = FakeMaster::start(MasterSetup::default()).await.unwrap();
    let info = FrameworkInfo {
        id: Some(FrameworkId {
            value: "from-old-leader-0001".into(),
        }),
        ..framework_info()
    };
    let (_subscription, id) = subscribe_new(&master, info).await;
    assert_eq!(id, "from-old-leader-0001");
}

#[tokio::test]
async fn losing_leadership_drops_the_stream() {
    let master = start().await;
    let (mut subscription, _) = subscribe_new(&master, framework_info()).await;
    master.set_leader(None);
    while let Some(event) = subscription.next().await {
        assert_eq!(event.r#type(), event::Type::Heartbeat);
    }
    assert!(master.connected_frameworks().is_empty());
}
