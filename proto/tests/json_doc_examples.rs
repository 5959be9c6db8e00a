//! The JSON examples of the Mesos scheduler and executor HTTP API documents
//! (typed out in `tests/fixtures/json`, see the README there) decode into
//! the typed `Call` / `Event` messages, with the right key fields.

// Helpers of this test crate may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use mesos_proto::json;
use mesos_proto::v1::executor as exec;
use mesos_proto::v1::scheduler as sched;
use mesos_proto::v1::{offer, task_status, value, TaskState};

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!("fixtures/json/", $path))
    };
}

fn sched_call(text: &str) -> sched::Call {
    json::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn sched_event(text: &str) -> sched::Event {
    json::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn exec_call(text: &str) -> exec::Call {
    json::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn exec_event(text: &str) -> exec::Event {
    json::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const FID: &str = "12220-3440-12532-2345";

// ---------------------------------------------------------------- scheduler

#[test]
fn scheduler_doc_subscribe_decodes_and_ignores_force() {
    let call = sched_call(fixture!("scheduler/call-subscribe.json"));
    assert_eq!(call.r#type(), sched::call::Type::Subscribe);
    assert!(call.framework_id.is_none());
    let info = &call.subscribe.as_ref().unwrap().framework_info;
    assert_eq!(info.user, "foo");
    assert_eq!(info.name, "Example HTTP Framework");
    assert!(info.id.is_none());
}

#[test]
fn scheduler_doc_redirect_subscribe_decodes_with_misplaced_framework_info_ignored() {
    let call = sched_call(fixture!("scheduler/call-subscribe-redirect.json"));
    assert_eq!(call.r#type(), sched::call::Type::Subscribe);
    assert!(call.subscribe.is_none());
}

#[test]
fn scheduler_doc_teardown_decodes() {
    let call = sched_call(fixture!("scheduler/call-teardown.json"));
    assert_eq!(call.r#type(), sched::call::Type::Teardown);
    assert_eq!(call.framework_id.unwrap().value, FID);
}

#[test]
fn scheduler_doc_accept_decodes_launch_and_filters() {
    let call = sched_call(fixture!("scheduler/call-accept.json"));
    assert_eq!(call.r#type(), sched::call::Type::Accept);
    assert_eq!(call.framework_id.as_ref().unwrap().value, FID);
    let accept = call.accept.as_ref().unwrap();
    assert_eq!(accept.offer_ids.len(), 2);
    assert_eq!(accept.offer_ids[0].value, "12220-3440-12532-O12");
    assert_eq!(accept.filters.as_ref().unwrap().refuse_seconds(), 5.0);
    let op = &accept.operations[0];
    assert_eq!(op.r#type(), offer::operation::Type::Launch);
    let task = &op.launch.as_ref().unwrap().task_infos[0];
    assert_eq!(task.name, "My Task");
    assert_eq!(task.task_id.value, "12220-3440-12532-my-task");
    assert_eq!(task.agent_id.value, "12220-3440-12532-S1233");
    let executor = task.executor.as_ref().unwrap();
    assert_eq!(executor.executor_id.value, "12214-23523-my-executor");
    let command = executor.command.as_ref().unwrap();
    assert_eq!((command.shell(), command.value()), (true, "sleep 1000"));
    assert_eq!(task.resources.len(), 2);
    let cpus = &task.resources[0];
    assert_eq!(
        (cpus.name.as_str(), cpus.r#type()),
        ("cpus", value::Type::Scalar)
    );
    assert_eq!(cpus.scalar.as_ref().unwrap().value, 1.0);
    assert_eq!(cpus.allocation_info.as_ref().unwrap().role(), "engineering");
    assert_eq!(task.resources[1].scalar.as_ref().unwrap().value, 128.0);
}

#[test]
fn scheduler_doc_decline_decodes() {
    let call = sched_call(fixture!("scheduler/call-decline.json"));
    assert_eq!(call.r#type(), sched::call::Type::Decline);
    let decline = call.decline.unwrap();
    let ids: Vec<_> = decline.offer_ids.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(ids, ["12220-3440-12532-O12", "12220-3440-12532-O13"]);
    assert_eq!(decline.filters.unwrap().refuse_seconds(), 5.0);
}

#[test]
fn scheduler_doc_revive_decodes() {
    let call = sched_call(fixture!("scheduler/call-revive.json"));
    assert_eq!(call.r#type(), sched::call::Type::Revive);
    assert_eq!(call.framework_id.unwrap().value, FID);
}

#[test]
fn scheduler_doc_kill_decodes() {
    let call = sched_call(fixture!("scheduler/call-kill.json"));
    assert_eq!(call.r#type(), sched::call::Type::Kill);
    let kill = call.kill.unwrap();
    assert_eq!(kill.task_id.value, "12220-3440-12532-my-task");
    assert_eq!(kill.agent_id.unwrap().value, "12220-3440-12532-S1233");
}

#[test]
fn scheduler_doc_shutdown_decodes() {
    let call = sched_call(fixture!("scheduler/call-shutdown.json"));
    assert_eq!(call.r#type(), sched::call::Type::Shutdown);
    let shutdown = call.shutdown.unwrap();
    assert_eq!(shutdown.executor_id.value, "123450-2340-1232-my-executor");
    assert_eq!(shutdown.agent_id.value, "12220-3440-12532-S1233");
}

#[test]
fn scheduler_doc_acknowledge_decodes_its_non_uuid_sample() {
    let call = sched_call(fixture!("scheduler/call-acknowledge.json"));
    assert_eq!(call.r#type(), sched::call::Type::Acknowledge);
    let ack = call.acknowledge.unwrap();
    assert_eq!(ack.agent_id.value, "12220-3440-12532-S1233");
    assert_eq!(ack.task_id.value, "12220-3440-12532-my-task");
    // 22 unpadded base64 characters: 16 bytes, but of text, not an RFC 4122 UUID.
    assert_eq!(ack.uuid.len(), 16);
}

#[test]
fn scheduler_doc_reconcile_decodes() {
    let call = sched_call(fixture!("scheduler/call-reconcile.json"));
    assert_eq!(call.r#type(), sched::call::Type::Reconcile);
    let tasks = call.reconcile.unwrap().tasks;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_id.value, "312325");
    assert_eq!(tasks[0].agent_id.as_ref().unwrap().value, "123535");
}

#[test]
fn scheduler_doc_message_decodes_base64_data() {
    let call = sched_call(fixture!("scheduler/call-message.json"));
    assert_eq!(call.r#type(), sched::call::Type::Message);
    let message = call.message.unwrap();
    assert_eq!(message.executor_id.value, "my-framework-executor");
    assert_eq!(message.data.len(), 15); // 20 base64 characters
}

#[test]
fn scheduler_doc_request_decodes_with_misplaced_requests_ignored() {
    let call = sched_call(fixture!("scheduler/call-request.json"));
    assert_eq!(call.r#type(), sched::call::Type::Request);
    assert_eq!(call.framework_id.unwrap().value, FID);
    assert!(call.request.is_none());
}

#[test]
fn scheduler_doc_subscribed_event_decodes() {
    let event = sched_event(fixture!("scheduler/event-subscribed.json"));
    assert_eq!(event.r#type(), sched::event::Type::Subscribed);
    let subscribed = event.subscribed.unwrap();
    assert_eq!(subscribed.framework_id.value, FID);
    assert_eq!(subscribed.heartbeat_interval_seconds(), 15.0);
}

#[test]
fn scheduler_doc_offers_event_decodes() {
    let event = sched_event(fixture!("scheduler/event-offers.json"));
    assert_eq!(event.r#type(), sched::event::Type::Offers);
    let offers = event.offers.unwrap().offers;
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert_eq!(offer.id.value, "12214-23523-O235235");
    assert_eq!(offer.framework_id.value, "12124-235325-32425");
    assert_eq!(offer.agent_id.value, "12325-23523-S23523");
    assert_eq!(offer.hostname, "agent.host");
    assert_eq!(offer.resources.len(), 3);
    let ports = offer.resources[2].ranges.as_ref().unwrap();
    assert_eq!((ports.range[0].begin, ports.range[0].end), (31000, 32000));
    assert_eq!(offer.attributes[0].text.as_ref().unwrap().value, "r1");
    assert!(offer.executor_ids.is_empty());
}

#[test]
fn scheduler_doc_rescind_event_decodes() {
    let event = sched_event(fixture!("scheduler/event-rescind.json"));
    assert_eq!(event.r#type(), sched::event::Type::Rescind);
    assert_eq!(event.rescind.unwrap().offer_id.value, "12214-23523-O235235");
}

#[test]
fn scheduler_doc_update_event_decodes_and_ignores_bytes_key() {
    let event = sched_event(fixture!("scheduler/event-update.json"));
    assert_eq!(event.r#type(), sched::event::Type::Update);
    let status = event.update.unwrap().status;
    assert_eq!(status.task_id.value, "12344-my-task");
    assert_eq!(status.state(), TaskState::TaskRunning);
    assert_eq!(status.source(), task_status::Source::Executor);
    assert_eq!(status.uuid.as_ref().unwrap().len(), 18); // 24 base64 chars of text
    assert!(status.data.is_none());
}

#[test]
fn scheduler_doc_message_event_decodes() {
    let event = sched_event(fixture!("scheduler/event-message.json"));
    assert_eq!(event.r#type(), sched::event::Type::Message);
    let message = event.message.unwrap();
    assert_eq!(message.agent_id.value, "12214-23523-S235235");
    assert_eq!(message.executor_id.value, "12214-23523-my-executor");
    assert!(!message.data.is_empty());
}

#[test]
fn scheduler_doc_failure_event_decodes() {
    let event = sched_event(fixture!("scheduler/event-failure.json"));
    assert_eq!(event.r#type(), sched::event::Type::Failure);
    let failure = event.failure.unwrap();
    assert_eq!(failure.agent_id.unwrap().value, "12214-23523-S235235");
    assert_eq!(
        failure.executor_id.unwrap().value,
        "12214-23523-my-executor"
    );
    assert_eq!(failure.status, Some(1));
}

#[test]
fn scheduler_doc_error_event_decodes() {
    let event = sched_event(fixture!("scheduler/event-error.json"));
    assert_eq!(event.r#type(), sched::event::Type::Error);
    assert_eq!(event.error.unwrap().message, "Framework is not authorized");
}

#[test]
fn scheduler_doc_error_event_as_printed_is_rejected_because_message_is_an_object() {
    let err = json::from_str::<sched::Event>(
        r#"{"type": "ERROR", "message": "Framework is not authorized"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("expected a map"), "{err}");
}

#[test]
fn scheduler_doc_heartbeat_event_decodes() {
    let event = sched_event(fixture!("scheduler/event-heartbeat.json"));
    assert_eq!(event.r#type(), sched::event::Type::Heartbeat);
}

#[test]
fn reference_subscribe_shape_decodes() {
    let call = sched_call(fixture!("scheduler/reference-call-subscribe.json"));
    let info = call.subscribe.unwrap().framework_info;
    assert_eq!(info.failover_timeout(), 604_800.0);
    assert!(info.checkpoint());
    assert_eq!(info.principal(), "p");
    assert_eq!(
        info.capabilities[0].r#type(),
        mesos_proto::v1::framework_info::capability::Type::PartitionAware
    );
}

#[test]
fn reference_accept_shape_decodes_docker_container() {
    use mesos_proto::v1::container_info;
    let call = sched_call(fixture!("scheduler/reference-call-accept-docker.json"));
    let accept = call.accept.unwrap();
    assert_eq!(accept.filters.unwrap().refuse_seconds(), 60.0);
    let task = &accept.operations[0].launch.as_ref().unwrap().task_infos[0];
    assert_eq!(task.command.as_ref().unwrap().value(), "echo hi");
    let container = task.container.as_ref().unwrap();
    assert_eq!(container.r#type(), container_info::Type::Docker);
    let docker = container.docker.as_ref().unwrap();
    assert_eq!(docker.image, "busybox");
    assert_eq!(
        docker.network(),
        container_info::docker_info::Network::Bridge
    );
}

#[test]
fn reference_acknowledge_shape_decodes_a_real_uuid() {
    let call = sched_call(fixture!("scheduler/reference-call-acknowledge.json"));
    let uuid = call.acknowledge.unwrap().uuid;
    assert_eq!(uuid.len(), 16);
    assert_eq!(uuid[6] >> 4, 4, "version 4");
}

// ----------------------------------------------------------------- executor

const EID: &str = "387aa966-8fc5-4428-a794-5a868a60d3eb";
const TID: &str = "d40f3f3e-bbe3-44af-a230-4cb1eae72f67";

#[test]
fn executor_doc_subscribe_decodes_unacknowledged_tasks_and_updates() {
    let call = exec_call(fixture!("executor/call-subscribe.json"));
    assert_eq!(call.r#type(), exec::call::Type::Subscribe);
    assert_eq!(call.executor_id.value, EID);
    assert_eq!(
        call.framework_id.value,
        "49154f1b-8cf6-4421-bf13-8bd11dccd1f1"
    );
    let subscribe = call.subscribe.unwrap();
    let task = &subscribe.unacknowledged_tasks[0];
    assert_eq!(task.name, "dummy-task");
    assert_eq!(task.task_id.value, TID);
    assert_eq!(task.agent_id.value, "f1c9cdc5-195e-41a7-a0d7-adaa9af07f81");
    let command = task.command.as_ref().unwrap();
    assert_eq!(command.value(), "ls");
    assert_eq!(command.arguments, ["-l", "/tmp"]);
    let update = &subscribe.unacknowledged_updates[0];
    assert_eq!(update.status.state(), TaskState::TaskRunning);
    assert_eq!(update.status.source(), task_status::Source::Executor);
    assert_eq!(update.status.task_id.value, TID);
    // base64 of the textual uuid plus a newline: 37 bytes, not 16.
    assert_eq!(
        update.status.uuid.as_deref(),
        Some(&b"d40f3f3e-bbe3-44af-a230-4cb1eae72f67\n"[..])
    );
}

#[test]
fn executor_doc_update_decodes() {
    let call = exec_call(fixture!("executor/call-update.json"));
    assert_eq!(call.r#type(), exec::call::Type::Update);
    assert_eq!(
        call.framework_id.value,
        "9aaa9d0d-e00d-444f-bfbd-23dd197939a0-0000"
    );
    let status = call.update.unwrap().status;
    assert_eq!(status.executor_id.as_ref().unwrap().value, EID);
    assert_eq!(status.task_id.value, "66724cec-2609-4fa0-8d93-c5fb2099d0f8");
    assert_eq!(status.state(), TaskState::TaskRunning);
}

#[test]
fn executor_doc_message_decodes_with_misplaced_data_ignored() {
    let call = exec_call(fixture!("executor/call-message.json"));
    assert_eq!(call.r#type(), exec::call::Type::Message);
    assert_eq!(call.executor_id.value, EID);
    assert!(call.message.is_none());
}

#[test]
fn executor_doc_subscribed_event_decodes_and_ignores_agent_extras() {
    let event = exec_event(fixture!("executor/event-subscribed.json"));
    assert_eq!(event.r#type(), exec::event::Type::Subscribed);
    let subscribed = event.subscribed.unwrap();
    assert_eq!(subscribed.executor_info.executor_id.value, EID);
    assert_eq!(
        subscribed.executor_info.command.as_ref().unwrap().value(),
        "/path/to/executor"
    );
    assert_eq!(subscribed.framework_info.user, "foo");
    assert_eq!(subscribed.framework_info.name, "my_framework");
    assert_eq!(subscribed.agent_info.port(), 5051);
    assert_eq!(
        subscribed.agent_info.hostname, "",
        "`host` is not a proto field"
    );
}

#[test]
fn executor_doc_launch_event_decodes_and_ignores_framework_info() {
    let event = exec_event(fixture!("executor/event-launch.json"));
    assert_eq!(event.r#type(), exec::event::Type::Launch);
    let task = event.launch.unwrap().task;
    assert_eq!(task.task_id.value, TID);
    let command = task.command.unwrap();
    assert_eq!(command.value(), "sleep");
    assert_eq!(command.arguments, ["100"]);
}

#[test]
fn executor_doc_kill_event_decodes() {
    let event = exec_event(fixture!("executor/event-kill.json"));
    assert_eq!(event.r#type(), exec::event::Type::Kill);
    assert_eq!(event.kill.unwrap().task_id.value, TID);
}

#[test]
fn executor_doc_acknowledged_event_decodes() {
    let event = exec_event(fixture!("executor/event-acknowledged.json"));
    assert_eq!(event.r#type(), exec::event::Type::Acknowledged);
    let ack = event.acknowledged.unwrap();
    assert_eq!(ack.task_id.value, TID);
    assert_eq!(ack.uuid.len(), 37);
}

#[test]
fn executor_doc_message_event_decodes() {
    let event = exec_event(fixture!("executor/event-message.json"));
    assert_eq!(event.r#type(), exec::event::Type::Message);
    assert_eq!(event.message.unwrap().data, b"sample data");
}

#[test]
fn executor_doc_shutdown_event_decodes() {
    let event = exec_event(fixture!("executor/event-shutdown.json"));
    assert_eq!(event.r#type(), exec::event::Type::Shutdown);
}

#[test]
fn executor_doc_error_event_decodes() {
    let event = exec_event(fixture!("executor/event-error.json"));
    assert_eq!(event.r#type(), exec::event::Type::Error);
    assert_eq!(event.error.unwrap().message, "Unrecoverable error");
}

#[test]
fn every_fixture_re_serializes_and_decodes_to_the_same_message() {
    macro_rules! check {
        ($ty:ty, [$($path:literal),* $(,)?]) => {$(
            let first: $ty = json::from_str(fixture!($path)).unwrap();
            let again: $ty = json::from_str(&json::to_string(&first).unwrap()).unwrap();
            assert_eq!(first, again, "{}", $path);
        )*};
    }
    check!(
        sched::Call,
        [
            "scheduler/call-subscribe.json",
            "scheduler/call-subscribe-redirect.json",
            "scheduler/call-teardown.json",
            "scheduler/call-accept.json",
            "scheduler/call-decline.json",
            "scheduler/call-revive.json",
            "scheduler/call-kill.json",
            "scheduler/call-shutdown.json",
            "scheduler/call-acknowledge.json",
            "scheduler/call-reconcile.json",
            "scheduler/call-message.json",
            "scheduler/call-request.json",
            "scheduler/reference-call-subscribe.json",
            "scheduler/reference-call-accept-docker.json",
            "scheduler/reference-call-acknowledge.json",
        ]
    );
    check!(
        sched::Event,
        [
            "scheduler/event-subscribed.json",
            "scheduler/event-offers.json",
            "scheduler/event-rescind.json",
            "scheduler/event-update.json",
            "scheduler/event-message.json",
            "scheduler/event-failure.json",
            "scheduler/event-error.json",
            "scheduler/event-heartbeat.json",
        ]
    );
    check!(
        exec::Call,
        [
            "executor/call-subscribe.json",
            "executor/call-update.json",
            "executor/call-message.json",
        ]
    );
    check!(
        exec::Event,
        [
            "executor/event-subscribed.json",
            "executor/event-launch.json",
            "executor/event-kill.json",
            "executor/event-acknowledged.json",
            "executor/event-message.json",
            "executor/event-shutdown.json",
            "executor/event-error.json",
        ]
    );
}
