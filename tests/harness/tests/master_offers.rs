//! Offers of the fake master: content, ACCEPT/LAUNCH, invalid launches,
//! DECLINE filters, REVIVE, SUPPRESS and RESCIND, over real HTTP.

mod scheduler_client;

use std::time::Duration;

use hyper::StatusCode;
use mesos_harness::master::AgentSpec;
use mesos_proto::v1::scheduler::{call, event};
use mesos_proto::v1::{task_status, value, Attribute, Filters, OfferId, Resource, TaskState};
use scheduler_client::*;

fn resource<'a>(resources: &'a [Resource], name: &str) -> &'a Resource {
    resources
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no {name} resource in {resources:?}"))
}

fn decline_call(
    framework_id: &str,
    offer: &OfferId,
    refuse_seconds: Option<f64>,
) -> mesos_proto::v1::scheduler::Call {
    mesos_proto::v1::scheduler::Call {
        decline: Some(call::Decline {
            offer_ids: vec![offer.clone()],
            filters: refuse_seconds.map(|seconds| Filters {
                refuse_seconds: Some(seconds),
            }),
        }),
        ..envelope(framework_id, call::Type::Decline)
    }
}

#[tokio::test]
async fn agent_resources_are_offered_as_scalars_and_ranges_with_attributes_and_url() {
    let master = start().await;
    let spec = AgentSpec {
        cpus: 2.5,
        mem: 1024.0,
        disk: 0.0,
        ports: vec![(31000, 31009), (32000, 32000)],
        attributes: vec![Attribute {
            name: "rack".into(),
            r#type: value::Type::Text as i32,
            text: Some(value::Text { value: "r1".into() }),
            ..Default::default()
        }],
        ..AgentSpec::new(AGENT, "127.0.0.1")
    };
    master.add_agent(spec).unwrap();
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert_eq!(offer.framework_id.value, framework_id);
    assert_eq!(offer.agent_id.value, AGENT);
    assert_eq!(offer.hostname, "127.0.0.1");
    let url = offer.url.as_ref().unwrap();
    assert_eq!(
        (url.scheme.as_str(), url.path.as_deref()),
        ("http", Some("/slave(1)"))
    );
    assert_eq!(url.address.port, 5051);
    let cpus = resource(&offer.resources, "cpus");
    assert_eq!(cpus.r#type, value::Type::Scalar as i32);
    assert_eq!(cpus.scalar.as_ref().unwrap().value, 2.5);
    let ports = resource(&offer.resources, "ports");
    assert_eq!(ports.r#type, value::Type::Ranges as i32);
    let ranges: Vec<(u64, u64)> = ports
        .ranges
        .as_ref()
        .unwrap()
        .range
        .iter()
        .map(|r| (r.begin, r.end))
        .collect();
    assert_eq!(ranges, vec![(31000, 31009), (32000, 32000)]);
    assert!(offer.resources.iter().all(|r| r.name != "disk"));
    assert_eq!(offer.attributes[0].name, "rack");
    // Not MULTI_ROLE: no allocation info anywhere (MESOS-8237).
    assert!(offer.allocation_info.is_none());
    assert!(offer.resources.iter().all(|r| r.allocation_info.is_none()));
    assert_eq!(master.offers_outstanding(), offers);
}

#[tokio::test]
async fn accepted_launch_stages_the_task_and_uses_the_offer() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info("t1", AGENT, 1.0, 128.0)],
    );
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let task = master.task("t1").unwrap();
    assert_eq!(task.state, TaskState::TaskStaging);
    assert_eq!(task.framework_id, framework_id);
    assert!(master.offers_outstanding().is_empty());
    // The master sends no update for STAGING.
    assert!(master
        .events()
        .iter()
        .all(|(_, e)| e.r#type() != event::Type::Update));
}

#[tokio::test]
async fn launch_beyond_the_offer_gets_task_error_from_the_master_without_uuid() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info("big", AGENT, 64.0, 128.0)],
    );
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskError);
    assert_eq!(status.source(), task_status::Source::Master);
    assert_eq!(status.reason(), task_status::Reason::TaskInvalid);
    assert!(status.uuid.is_none());
    assert!(
        status.message().contains("more than available"),
        "{:?}",
        status.message
    );
    assert!(master.task("big").is_none());
}

#[tokio::test]
async fn second_task_is_checked_against_what_the_first_left() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let tasks = vec![
        task_info("a", AGENT, 3.0, 128.0),
        task_info("b", AGENT, 3.0, 128.0),
    ];
    let call = launch_call(&framework_id, &[&offers[0].id], tasks);
    post_call(&master, &subscription.stream_id, &call).await;
    let status = subscription.update().await;
    assert_eq!(status.task_id.value, "b");
    assert_eq!(status.state(), TaskState::TaskError);
    assert_eq!(master.task("a").unwrap().state, TaskState::TaskStaging);
}

#[tokio::test]
async fn task_with_both_command_and_executor_gets_task_error() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let mut task = task_info("t1", AGENT, 1.0, 64.0);
    task.executor = Some(mesos_proto::v1::ExecutorInfo {
        executor_id: mesos_proto::v1::ExecutorId { value: "e1".into() },
        command: task.command.clone(),
        ..Default::default()
    });
    let call = launch_call(&framework_id, &[&offers[0].id], vec![task]);
    post_call(&master, &subscription.stream_id, &call).await;
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskError);
    assert!(
        status.message().contains("(but not both)"),
        "{:?}",
        status.message
    );
}

#[tokio::test]
async fn accept_of_an_unknown_offer_loses_the_tasks() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    subscription.offers().await;
    let bogus = OfferId {
        value: "no-such-offer".into(),
    };
    let call = launch_call(
        &framework_id,
        &[&bogus],
        vec![task_info("t1", AGENT, 1.0, 64.0)],
    );
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskLost);
    assert_eq!(status.reason(), task_status::Reason::InvalidOffers);
    assert_eq!(status.source(), task_status::Source::Master);
    assert!(status.uuid.is_none());
    assert!(
        status
            .message()
            .contains("Offer no-such-offer is no longer valid"),
        "{:?}",
        status.message
    );
}

#[tokio::test]
async fn accept_of_an_unknown_offer_drops_the_tasks_of_a_partition_aware_framework() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) =
        subscribe_new(&master, partition_aware_framework_info()).await;
    subscription.offers().await;
    let bogus = OfferId {
        value: "gone".into(),
    };
    let call = launch_call(
        &framework_id,
        &[&bogus],
        vec![task_info("t1", AGENT, 1.0, 64.0)],
    );
    post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(subscription.update().await.state(), TaskState::TaskDropped);
}

#[tokio::test]
async fn declined_resources_are_not_offered_until_the_filter_expires() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let call = decline_call(&framework_id, &offers[0].id, Some(0.6));
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(master.offers_outstanding().is_empty());
    // Allocation runs every 100 ms; the filter holds for 600 ms.
    subscription.assert_quiet(Duration::from_millis(400)).await;
    let again = subscription.offers().await;
    assert_eq!(again[0].agent_id.value, AGENT);
    assert_ne!(again[0].id, offers[0].id);
}

#[tokio::test]
async fn decline_without_filters_refuses_for_the_default_five_seconds() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    post_call(
        &master,
        &subscription.stream_id,
        &decline_call(&framework_id, &offers[0].id, None),
    )
    .await;
    subscription.assert_quiet(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn revive_clears_filters_and_suppress_stops_offers() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    post_call(
        &master,
        &subscription.stream_id,
        &decline_call(&framework_id, &offers[0].id, Some(3600.0)),
    )
    .await;
    let answer = post_call(
        &master,
        &subscription.stream_id,
        &envelope(&framework_id, call::Type::Revive),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let revived = subscription.offers().await;
    assert_eq!(revived.len(), 1);
    let suppress = envelope(&framework_id, call::Type::Suppress);
    post_call(&master, &subscription.stream_id, &suppress).await;
    post_call(
        &master,
        &subscription.stream_id,
        &decline_call(&framework_id, &revived[0].id, Some(0.0)),
    )
    .await;
    subscription.assert_quiet(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn rescinded_offer_is_announced_and_no_longer_usable() {
    let master = start_with_agent().await;
    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    master.rescind(&offers[0].id.value).unwrap();
    let rescind = subscription.event_of(event::Type::Rescind).await;
    assert_eq!(rescind.rescind.unwrap().offer_id, offers[0].id);
    let call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info("t1", AGENT, 1.0, 64.0)],
    );
    post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(subscription.update().await.state(), TaskState::TaskLost);
    assert!(master.rescind("no-such-offer").is_err());
}

#[tokio::test]
async fn resources_of_a_finished_task_are_offered_again() {
    let master = start_with_agent().await;
    let (mut subscription, _) = launch_one(&master, "t1").await;
    let rest = subscription.offers().await;
    assert_eq!(
        resource(&rest[0].resources, "cpus")
            .scalar
            .as_ref()
            .unwrap()
            .value,
        3.0
    );
    master
        .update_task("t1", TaskState::TaskFinished, None, None)
        .unwrap();
    subscription.update().await;
    // The outstanding offer holds 3 cpus; the freed one comes in a new offer.
    let freed = subscription.offers().await;
    assert_eq!(
        resource(&freed[0].resources, "cpus")
            .scalar
            .as_ref()
            .unwrap()
            .value,
        1.0
    );
}

#[tokio::test]
async fn multi_role_framework_gets_allocation_info_naming_its_role() {
    let master = start_with_agent().await;
    let info = mesos_proto::v1::FrameworkInfo {
        roles: vec!["dev".into()],
        capabilities: vec![mesos_proto::v1::framework_info::Capability {
            r#type: Some(mesos_proto::v1::framework_info::capability::Type::MultiRole as i32),
        }],
        ..framework_info()
    };
    let (mut subscription, _) = subscribe_new(&master, info).await;
    let offer = subscription.offers().await.remove(0);
    let role =
        |a: Option<&mesos_proto::v1::resource::AllocationInfo>| a.and_then(|a| a.role.clone());
    assert_eq!(role(offer.allocation_info.as_ref()).as_deref(), Some("dev"));
    assert!(offer
        .resources
        .iter()
        .all(|r| role(r.allocation_info.as_ref()).as_deref() == Some("dev")));
}
