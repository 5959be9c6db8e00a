//! Tasks on the fake master: reliable status updates with acknowledgement
//! and retry, KILL, and reconciliation (§3.6), over real HTTP.

mod scheduler_client;

use std::time::{Duration, Instant};

use hyper::StatusCode;
use mesos_harness::master::{FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::{task_status, TaskState};
use scheduler_client::*;

#[tokio::test]
async fn status_update_carries_a_uuid_and_is_retried_until_acknowledged() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    let uuid = master
        .update_task("t1", TaskState::TaskRunning, None, Some("started"))
        .unwrap();
    let first = subscription.update().await;
    assert_eq!(first.state(), TaskState::TaskRunning);
    assert_eq!(first.uuid.as_deref(), Some(uuid.as_slice()));
    assert_eq!(first.uuid.as_ref().unwrap().len(), 16);
    assert_eq!(first.source(), task_status::Source::Executor);
    assert_eq!(first.agent_id.as_ref().unwrap().value, AGENT);
    assert!(first.timestamp.is_some());
    // Not acknowledged: the same update comes again after the retry interval.
    let started = Instant::now();
    let retried = subscription.update().await;
    assert_eq!(retried.uuid, first.uuid);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    let ack = acknowledge_call(&framework_id, "t1", AGENT, uuid.clone());
    let answer = post_call(&master, &subscription.stream_id, &ack).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(master.acknowledgements()[0].matched);
    assert!(master.task("t1").unwrap().unacknowledged.is_empty());
    let later = subscription
        .updates_within(Duration::from_millis(600))
        .await;
    assert!(later.is_empty(), "no retry after the ack: {later:?}");
}

#[tokio::test]
async fn next_update_waits_for_the_acknowledgement_of_the_previous_one() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    let running = master
        .update_task("t1", TaskState::TaskRunning, None, None)
        .unwrap();
    master
        .update_task("t1", TaskState::TaskFinished, None, None)
        .unwrap();
    // The master's view is the latest state already.
    assert_eq!(master.task("t1").unwrap().state, TaskState::TaskFinished);
    assert_eq!(subscription.update().await.state(), TaskState::TaskRunning);
    assert_eq!(
        subscription.update().await.state(),
        TaskState::TaskRunning,
        "retry, not FINISHED"
    );
    let ack = acknowledge_call(&framework_id, "t1", AGENT, running);
    post_call(&master, &subscription.stream_id, &ack).await;
    let finished = subscription.update().await;
    assert_eq!(finished.state(), TaskState::TaskFinished);
    let ack = acknowledge_call(&framework_id, "t1", AGENT, finished.uuid.unwrap());
    post_call(&master, &subscription.stream_id, &ack).await;
    // Terminal update acknowledged: the master forgets the task.
    assert!(master.task("t1").unwrap().removed);
}

#[tokio::test]
async fn acknowledgement_with_another_uuid_is_accepted_and_ignored() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    master
        .update_task("t1", TaskState::TaskRunning, None, None)
        .unwrap();
    subscription.update().await;
    let mut other = vec![0u8; 16];
    other[6] = 0x40;
    let ack = acknowledge_call(&framework_id, "t1", AGENT, other);
    let answer = post_call(&master, &subscription.stream_id, &ack).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(!master.acknowledgements()[0].matched);
    assert_eq!(master.task("t1").unwrap().unacknowledged.len(), 1);
}

#[tokio::test]
async fn updates_after_a_terminal_state_or_for_unknown_tasks_are_refused() {
    let master = start_with_agent().await;
    let (_subscription, _) = launch_one(&master, "t1").await;
    master
        .update_task("t1", TaskState::TaskFailed, None, None)
        .unwrap();
    assert!(master
        .update_task("t1", TaskState::TaskRunning, None, None)
        .is_err());
    assert!(master
        .update_task("nope", TaskState::TaskRunning, None, None)
        .is_err());
    assert!(master
        .update_task("t1", TaskState::TaskStaging, None, None)
        .is_err());
}

#[tokio::test]
async fn kill_is_forwarded_and_the_task_is_killed_when_the_test_says_so() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    let answer = post_call(
        &master,
        &subscription.stream_id,
        &kill_call(&framework_id, "t1"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let kills = master.kills();
    assert_eq!(
        (kills[0].task_id.as_str(), kills[0].agent_id.as_str()),
        ("t1", AGENT)
    );
    assert_eq!(master.task("t1").unwrap().state, TaskState::TaskStaging);
    master
        .update_task("t1", TaskState::TaskKilled, None, Some("killed by test"))
        .unwrap();
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskKilled);
    assert!(status.uuid.is_some());
}

#[tokio::test]
async fn kill_completes_by_itself_when_the_setup_asks_for_it() {
    let setup = MasterSetup {
        auto_complete_kills: true,
        ..fast_setup()
    };
    let master = FakeMaster::start(setup).await.unwrap();
    master
        .add_agent(mesos_harness::master::AgentSpec::new(AGENT, "127.0.0.1"))
        .unwrap();
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    post_call(
        &master,
        &subscription.stream_id,
        &kill_call(&framework_id, "t1"),
    )
    .await;
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskKilled);
    assert_eq!(status.source(), task_status::Source::Executor);
}

#[tokio::test]
async fn kill_of_an_unknown_task_is_answered_by_reconciliation() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    post_call(
        &master,
        &subscription.stream_id,
        &kill_call(&framework_id, "ghost"),
    )
    .await;
    let status = subscription.update().await;
    assert_eq!(status.task_id.value, "ghost");
    assert_eq!(status.state(), TaskState::TaskLost);
    assert_eq!(status.reason(), task_status::Reason::Reconciliation);
    assert!(master.kills().is_empty());
}

#[tokio::test]
async fn explicit_reconciliation_reports_the_latest_state_and_lost_for_unknown_tasks() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    let call = reconcile_call(
        &framework_id,
        &[("t1", Some(AGENT)), ("ghost", Some(AGENT))],
    );
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let known = subscription.update().await;
    assert_eq!(
        (known.task_id.value.as_str(), known.state()),
        ("t1", TaskState::TaskStaging)
    );
    assert_eq!(known.source(), task_status::Source::Master);
    assert_eq!(known.reason(), task_status::Reason::Reconciliation);
    assert_eq!(known.message(), "Reconciliation: Latest task state");
    assert!(known.uuid.is_none());
    let unknown = subscription.update().await;
    assert_eq!(
        (unknown.task_id.value.as_str(), unknown.state()),
        ("ghost", TaskState::TaskLost)
    );
    // Case (3) of `Master::reconcile`: the agent is registered.
    assert_eq!(
        unknown.message(),
        "Reconciliation: Task is unknown to the agent"
    );
    assert!(unknown.uuid.is_none());
}

#[tokio::test]
async fn explicit_reconciliation_of_a_partition_aware_framework_says_gone_or_unknown() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) =
        subscribe_new(&master, partition_aware_framework_info()).await;
    let call = reconcile_call(
        &framework_id,
        &[("a", Some(AGENT)), ("b", Some("other")), ("c", None)],
    );
    post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(subscription.update().await.state(), TaskState::TaskGone);
    assert_eq!(subscription.update().await.state(), TaskState::TaskUnknown);
    assert_eq!(subscription.update().await.state(), TaskState::TaskUnknown);
}

#[tokio::test]
async fn implicit_reconciliation_reports_every_known_task_and_nothing_else() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    let running = master
        .update_task("t1", TaskState::TaskRunning, None, None)
        .unwrap();
    subscription.update().await;
    post_call(
        &master,
        &subscription.stream_id,
        &acknowledge_call(&framework_id, "t1", AGENT, running),
    )
    .await;
    let answer = post_call(
        &master,
        &subscription.stream_id,
        &reconcile_call(&framework_id, &[]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let statuses = subscription
        .updates_within(Duration::from_millis(300))
        .await;
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let status = &statuses[0];
    assert_eq!(
        (status.task_id.value.as_str(), status.state()),
        ("t1", TaskState::TaskRunning)
    );
    assert_eq!(status.reason(), task_status::Reason::Reconciliation);
}

#[tokio::test]
async fn reconciliation_reports_the_update_in_delivery_not_a_held_back_one() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    master
        .update_task("t1", TaskState::TaskRunning, None, None)
        .unwrap();
    master
        .update_task("t1", TaskState::TaskFinished, None, None)
        .unwrap();
    subscription.update().await;
    post_call(
        &master,
        &subscription.stream_id,
        &reconcile_call(&framework_id, &[("t1", None)]),
    )
    .await;
    loop {
        let status = subscription.update().await;
        if status.reason() == task_status::Reason::Reconciliation {
            assert_eq!(status.state(), TaskState::TaskRunning);
            break;
        }
    }
}

#[tokio::test]
async fn message_and_shutdown_calls_are_recorded() {
    let master = start_with_agent().await;
    let (subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let message = mesos_proto::v1::scheduler::Call {
        message: Some(call::Message {
            agent_id: mesos_proto::v1::AgentId {
                value: AGENT.into(),
            },
            executor_id: mesos_proto::v1::ExecutorId { value: "e1".into() },
            data: b"hello".to_vec(),
        }),
        ..envelope(&framework_id, call::Type::Message)
    };
    let answer = post_call(&master, &subscription.stream_id, &message).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(master.framework_messages()[0].data, b"hello");
    assert_eq!(master.calls().last().unwrap().r#type(), call::Type::Message);
}
