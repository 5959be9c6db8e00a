//! Agents of the fake master becoming unreachable, gone and re-registering,
//! offer timeouts, and reconciliation of their tasks, over real HTTP, with
//! the updates, reasons and messages of `src/master/master.cpp`.

mod scheduler_client;

use std::time::Duration;

use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};
use mesos_harness::HarnessError;
use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::{task_status, TaskState, TaskStatus};
use scheduler_client::*;

const QUIET: Duration = Duration::from_millis(400);

fn update_of(event: &Event) -> &TaskStatus {
    assert_eq!(event.r#type(), event::Type::Update, "{event:?}");
    match &event.update {
        Some(update) => &update.status,
        None => panic!("UPDATE without a status: {event:?}"),
    }
}

/// Launches `t1` and waits for the offer of what it left, so the agent has
/// an outstanding offer; returns the stream, framework id and that offer id.
async fn running_task_and_an_offer(
    master: &FakeMaster,
    info: mesos_proto::v1::FrameworkInfo,
) -> (Subscription, String, String) {
    let (mut subscription, framework_id) = launch_one_as(master, info, "t1").await;
    let offer = subscription.offers().await.remove(0);
    (subscription, framework_id, offer.id.value)
}

#[tokio::test]
async fn unreachable_agent_gives_task_unreachable_then_rescinds_its_offer_then_failure() {
    let master = start_with_agent().await;
    let (mut subscription, _, offer_id) =
        running_task_and_an_offer(&master, partition_aware_framework_info()).await;
    master.mark_unreachable(AGENT).unwrap();

    let update = subscription.event_skipping_heartbeats().await;
    let status = update_of(&update);
    assert_eq!(status.task_id.value, "t1");
    assert_eq!(status.state(), TaskState::TaskUnreachable);
    assert_eq!(status.reason(), task_status::Reason::AgentRemoved);
    assert_eq!(status.source(), task_status::Source::Master);
    assert_eq!(status.message(), "health check timed out");
    assert!(status.unreachable_time.is_some());
    assert!(status.uuid.is_none());
    assert_eq!(status.agent_id.as_ref().unwrap().value, AGENT);

    let rescind = subscription.event_skipping_heartbeats().await;
    assert_eq!(rescind.r#type(), event::Type::Rescind);
    assert_eq!(rescind.rescind.unwrap().offer_id.value, offer_id);

    let failure = subscription.event_skipping_heartbeats().await;
    assert_eq!(failure.r#type(), event::Type::Failure);
    let failure = failure.failure.unwrap();
    assert_eq!(failure.agent_id.unwrap().value, AGENT);
    assert!(failure.executor_id.is_none() && failure.status.is_none());

    assert!(master.offers_outstanding().is_empty());
    let task = master.task("t1").unwrap();
    assert_eq!(task.state, TaskState::TaskUnreachable);
    assert!(task.unreachable);
    // No more offers from the unreachable agent.
    subscription.assert_quiet(QUIET).await;
}

#[tokio::test]
async fn unreachable_agent_gives_task_lost_to_a_framework_that_is_not_partition_aware() {
    let master = start_with_agent().await;
    let (mut subscription, _, _) = running_task_and_an_offer(&master, framework_info()).await;
    master.mark_unreachable(AGENT).unwrap();
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskLost);
    assert_eq!(status.reason(), task_status::Reason::AgentRemoved);
    assert_eq!(status.message(), "health check timed out");
    assert!(status.uuid.is_none());
    assert_eq!(
        subscription.event_skipping_heartbeats().await.r#type(),
        event::Type::Rescind
    );
    assert_eq!(
        subscription.event_skipping_heartbeats().await.r#type(),
        event::Type::Failure
    );
}

#[tokio::test]
async fn reregistered_agent_brings_a_lost_task_back_and_resends_what_it_held() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id, _) =
        running_task_and_an_offer(&master, framework_info()).await;
    let running = master
        .update_task("t1", TaskState::TaskRunning, None, None)
        .unwrap();
    assert_eq!(subscription.update().await.state(), TaskState::TaskRunning);
    let ack = acknowledge_call(&framework_id, "t1", AGENT, running);
    post_call(&master, &subscription.stream_id, &ack).await;

    master.mark_unreachable(AGENT).unwrap();
    assert_eq!(subscription.update().await.state(), TaskState::TaskLost);
    // The executor finishes while the agent is cut off: the agent holds it.
    let finished = master
        .update_task("t1", TaskState::TaskFinished, None, None)
        .unwrap();
    subscription.event_of(event::Type::Failure).await;
    subscription.assert_quiet(QUIET).await;

    master.reregister_agent(AGENT).unwrap();
    let back = subscription.update().await;
    assert_eq!(back.task_id.value, "t1");
    assert_eq!(back.state(), TaskState::TaskFinished);
    assert_eq!(back.reason(), task_status::Reason::AgentReregistered);
    assert_eq!(back.source(), task_status::Source::Master);
    assert_eq!(back.message(), "Unreachable agent re-reregistered");
    assert!(back.uuid.is_none());
    let resent = subscription.update().await;
    assert_eq!(resent.state(), TaskState::TaskFinished);
    assert_eq!(resent.uuid.as_deref(), Some(finished.as_slice()));
    assert!(!subscription.offers().await.is_empty());
    let task = master.task("t1").unwrap();
    assert!(!task.unreachable);
    assert_eq!(task.state, TaskState::TaskFinished);
}

#[tokio::test]
async fn reregistered_agent_tells_a_partition_aware_framework_the_running_state() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id, _) =
        running_task_and_an_offer(&master, partition_aware_framework_info()).await;
    let running = master
        .update_task("t1", TaskState::TaskRunning, None, None)
        .unwrap();
    subscription.update().await;
    let ack = acknowledge_call(&framework_id, "t1", AGENT, running);
    post_call(&master, &subscription.stream_id, &ack).await;
    master.mark_unreachable(AGENT).unwrap();
    assert_eq!(
        subscription.update().await.state(),
        TaskState::TaskUnreachable
    );
    master.reregister_agent(AGENT).unwrap();
    let back = subscription.update().await;
    assert_eq!(back.state(), TaskState::TaskRunning);
    assert_eq!(back.reason(), task_status::Reason::AgentReregistered);
    assert_eq!(master.task("t1").unwrap().state, TaskState::TaskRunning);
}

#[tokio::test]
async fn gone_agent_gives_task_gone_by_operator_and_can_never_reregister() {
    let master = start_with_agent().await;
    let (mut subscription, _, _) =
        running_task_and_an_offer(&master, partition_aware_framework_info()).await;
    master.mark_gone(AGENT).unwrap();
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskGoneByOperator);
    assert_eq!(status.reason(), task_status::Reason::AgentRemovedByOperator);
    assert_eq!(status.message(), "Agent has been marked gone");
    assert!(status.unreachable_time.is_none() && status.uuid.is_none());
    assert_eq!(
        subscription.event_skipping_heartbeats().await.r#type(),
        event::Type::Rescind
    );
    assert_eq!(
        subscription.event_skipping_heartbeats().await.r#type(),
        event::Type::Failure
    );
    assert!(master.task("t1").unwrap().removed);
    let refused = master.reregister_agent(AGENT).unwrap_err();
    assert!(
        matches!(&refused, HarnessError::AgentNotApplicable { reason, .. } if reason.contains("gone")),
        "{refused}"
    );
    assert!(master
        .update_task("t1", TaskState::TaskRunning, None, None)
        .is_err());
}

#[tokio::test]
async fn marking_an_unreachable_agent_gone_ends_its_tasks_without_another_failure() {
    let master = start_with_agent().await;
    let (mut subscription, _, _) = running_task_and_an_offer(&master, framework_info()).await;
    master.mark_unreachable(AGENT).unwrap();
    subscription.event_of(event::Type::Failure).await;
    master.mark_gone(AGENT).unwrap();
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskLost);
    assert_eq!(status.reason(), task_status::Reason::AgentRemoved);
    assert_eq!(status.message(), "Agent has been marked gone");
    subscription.assert_quiet(QUIET).await;
    // Again: nothing happens.
    master.mark_gone(AGENT).unwrap();
    assert!(master.mark_unreachable("nobody").is_err());
}

#[tokio::test]
async fn reconciliation_answers_for_unreachable_and_gone_agents_as_the_master_does() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id, _) =
        running_task_and_an_offer(&master, partition_aware_framework_info()).await;
    master.mark_unreachable(AGENT).unwrap();
    subscription.event_of(event::Type::Failure).await;

    // Implicit reconciliation does not report unreachable tasks.
    let implicit = reconcile_call(&framework_id, &[]);
    post_call(&master, &subscription.stream_id, &implicit).await;
    subscription.assert_quiet(QUIET).await;

    let explicit = reconcile_call(&framework_id, &[("t1", Some(AGENT)), ("t1", None)]);
    post_call(&master, &subscription.stream_id, &explicit).await;
    let unreachable = subscription.update().await;
    assert_eq!(unreachable.state(), TaskState::TaskUnreachable);
    assert_eq!(unreachable.message(), "Reconciliation: Task is unreachable");
    assert_eq!(unreachable.reason(), task_status::Reason::Reconciliation);
    assert!(unreachable.unreachable_time.is_some());
    let unknown = subscription.update().await;
    assert_eq!(unknown.state(), TaskState::TaskUnknown);
    assert_eq!(unknown.message(), "Reconciliation: Task is unknown");

    master.mark_gone(AGENT).unwrap();
    assert_eq!(
        subscription.update().await.state(),
        TaskState::TaskGoneByOperator
    );
    let explicit = reconcile_call(&framework_id, &[("t1", Some(AGENT))]);
    post_call(&master, &subscription.stream_id, &explicit).await;
    let gone = subscription.update().await;
    assert_eq!(gone.state(), TaskState::TaskGoneByOperator);
    assert_eq!(gone.message(), "Reconciliation: Task is gone");
}

#[tokio::test]
async fn reconciliation_says_lost_with_the_same_messages_to_other_frameworks() {
    let master = start_with_agent().await;
    master
        .add_agent(AgentSpec::new("agent-2", "127.0.0.2"))
        .unwrap();
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    subscription.offers().await;
    master.mark_unreachable(AGENT).unwrap();
    master.mark_gone("agent-2").unwrap();
    let call = reconcile_call(
        &framework_id,
        &[("a", Some(AGENT)), ("b", Some("agent-2")), ("c", None)],
    );
    post_call(&master, &subscription.stream_id, &call).await;
    let messages: Vec<(TaskState, String)> = [
        subscription.update().await,
        subscription.update().await,
        subscription.update().await,
    ]
    .into_iter()
    .map(|s| (s.state(), s.message().to_owned()))
    .collect();
    assert_eq!(
        messages,
        vec![
            (
                TaskState::TaskLost,
                "Reconciliation: Task is unreachable".into()
            ),
            (TaskState::TaskLost, "Reconciliation: Task is gone".into()),
            (
                TaskState::TaskLost,
                "Reconciliation: Task is unknown".into()
            ),
        ]
    );
}

#[tokio::test]
async fn launch_reusing_the_id_of_an_unreachable_task_gets_task_error() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id, _) =
        running_task_and_an_offer(&master, partition_aware_framework_info()).await;
    master.mark_unreachable(AGENT).unwrap();
    subscription.event_of(event::Type::Failure).await;
    master
        .add_agent(AgentSpec::new("agent-2", "127.0.0.2"))
        .unwrap();
    let offers = subscription.offers().await;
    let call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info("t1", "agent-2", 1.0, 64.0)],
    );
    post_call(&master, &subscription.stream_id, &call).await;
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskError);
    assert_eq!(status.reason(), task_status::Reason::TaskInvalid);
    assert_eq!(
        status.message(),
        "Task reuses the ID of an unreachable task: t1"
    );
}

#[tokio::test]
async fn offer_not_used_within_the_offer_timeout_is_rescinded_and_offered_again() {
    let setup = MasterSetup {
        offer_timeout: Some(Duration::from_millis(300)),
        ..fast_setup()
    };
    let master = FakeMaster::start(setup).await.unwrap();
    master
        .add_agent(AgentSpec::new(AGENT, "127.0.0.1"))
        .unwrap();
    let (mut subscription, _) = subscribe_new(&master, framework_info()).await;
    let first = subscription.offers().await.remove(0);
    let rescind = subscription.event_skipping_heartbeats().await;
    assert_eq!(rescind.r#type(), event::Type::Rescind);
    assert_eq!(rescind.rescind.unwrap().offer_id, first.id);
    let again = subscription.offers().await.remove(0);
    assert_ne!(again.id, first.id);
    assert_eq!(again.resources, first.resources);
}

#[tokio::test]
async fn offers_never_time_out_by_default() {
    let master = start_with_agent().await;
    let (mut subscription, _) = subscribe_new(&master, framework_info()).await;
    subscription.offers().await;
    subscription.assert_quiet(Duration::from_millis(800)).await;
    assert_eq!(master.offers_outstanding().len(), 1);
}

/// `used_resources.cpus` of the first agent in `/master/state`.
async fn used_cpus(master: &FakeMaster) -> f64 {
    use http_body_util::BodyExt;
    let response = request(
        master.endpoint(),
        hyper::Method::GET,
        "/master/state",
        &[],
        Vec::new(),
    )
    .await;
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let state: serde_json::Value = serde_json::from_slice(&body).expect("JSON state");
    state["slaves"][0]["used_resources"]["cpus"]
        .as_f64()
        .expect("a cpus amount")
}

#[tokio::test]
async fn exited_executor_gives_failure_with_its_status_and_frees_its_resources() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let mut task = task_info("t1", AGENT, 1.0, 128.0);
    task.command = None;
    task.executor = Some(mesos_proto::v1::ExecutorInfo {
        executor_id: mesos_proto::v1::ExecutorId { value: "e1".into() },
        command: Some(mesos_proto::v1::CommandInfo {
            value: Some("run-executor".into()),
            ..Default::default()
        }),
        resources: vec![scalar("cpus", 0.5), scalar("mem", 32.0)],
        ..Default::default()
    });
    let call = launch_call(&framework_id, &[&offers[0].id], vec![task]);
    post_call(&master, &subscription.stream_id, &call).await;
    master
        .wait_for_task_state("t1", TaskState::TaskStaging, WAIT)
        .await
        .unwrap();

    assert_eq!(used_cpus(&master).await, 1.5);
    master.executor_exited(AGENT, "e1", 9).unwrap();
    assert_eq!(used_cpus(&master).await, 1.0);
    let failure = subscription.event_of(event::Type::Failure).await;
    let failure = failure.failure.unwrap();
    assert_eq!(failure.agent_id.unwrap().value, AGENT);
    assert_eq!(failure.executor_id.unwrap().value, "e1");
    assert_eq!(failure.status, Some(9));
    // The master ignores a second exit of the same executor, and command
    // tasks have no executor it tracks.
    assert!(master.executor_exited(AGENT, "e1", 9).is_err());
    assert!(master.executor_exited(AGENT, "t1", 0).is_err());
}

/// Fails the master over and re-subscribes the framework under its id.
async fn fail_over_and_resubscribe(
    master: &FakeMaster,
    old: Subscription,
    framework_id: &str,
) -> Subscription {
    master.fail_over();
    drop(old);
    let info = mesos_proto::v1::FrameworkInfo {
        id: Some(mesos_proto::v1::FrameworkId {
            value: framework_id.to_owned(),
        }),
        ..framework_info()
    };
    let (subscription, id) = subscribe_new(master, info).await;
    assert_eq!(id, framework_id);
    subscription
}

#[tokio::test]
async fn after_failover_reconciliation_is_silent_until_the_agent_reregisters() {
    let master = start_with_agent().await;
    let (old, framework_id) = launch_one(&master, "t1").await;
    let mut subscription = fail_over_and_resubscribe(&master, old, &framework_id).await;
    let stream = subscription.stream_id.clone();
    let explicit = reconcile_call(&framework_id, &[("t1", Some(AGENT)), ("x", None)]);
    post_call(&master, &stream, &explicit).await;
    post_call(&master, &stream, &reconcile_call(&framework_id, &[])).await;
    // No answers, and no offers from the agent that has not re-registered.
    subscription.assert_quiet(QUIET).await;

    master.reregister_agent(AGENT).unwrap();
    // A recovered agent comes back silently; its free resources are offered.
    assert!(!subscription.offers().await.is_empty());
    post_call(&master, &stream, &reconcile_call(&framework_id, &[])).await;
    let known = subscription.update().await;
    assert_eq!(known.task_id.value, "t1");
    assert_eq!(known.state(), TaskState::TaskStaging);
    assert_eq!(known.message(), "Reconciliation: Latest task state");
}

#[tokio::test]
async fn agent_missing_after_the_reregister_timeout_is_unreachable_with_failure_only() {
    let setup = MasterSetup {
        agent_reregister_timeout: Duration::from_millis(300),
        ..fast_setup()
    };
    let master = FakeMaster::start(setup).await.unwrap();
    master
        .add_agent(AgentSpec::new(AGENT, "127.0.0.1"))
        .unwrap();
    let (old, framework_id) = launch_one(&master, "t1").await;
    let mut subscription = fail_over_and_resubscribe(&master, old, &framework_id).await;
    // The master knows none of the agent's tasks: FAILURE is all it sends.
    let failure = subscription.event_skipping_heartbeats().await;
    assert_eq!(failure.r#type(), event::Type::Failure, "{failure:?}");
    let stream = subscription.stream_id.clone();
    let explicit = reconcile_call(&framework_id, &[("t1", Some(AGENT))]);
    post_call(&master, &stream, &explicit).await;
    let answer = subscription.update().await;
    assert_eq!(answer.state(), TaskState::TaskLost);
    assert_eq!(answer.message(), "Reconciliation: Task is unreachable");

    master.reregister_agent(AGENT).unwrap();
    let back = subscription.update().await;
    assert_eq!(back.task_id.value, "t1");
    assert_eq!(back.state(), TaskState::TaskStaging);
    assert_eq!(back.message(), "Unreachable agent re-reregistered");
}
