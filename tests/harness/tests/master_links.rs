//! Attached agents ([`mesos_harness::master::AgentLink`]): the master sends
//! them what a Mesos master sends an agent (run, kill, acknowledgement,
//! shutdowns) and takes their status updates; an agent re-registering with
//! another master brings its tasks and unacknowledged updates.

mod scheduler_client;

use std::time::Duration;

use mesos_harness::master::{AgentMessage, AgentSpec, FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::{task_status, TaskState, TaskStatus};
use scheduler_client::*;

async fn next_message(link: &mut mesos_harness::master::AgentLink) -> AgentMessage {
    tokio::time::timeout(WAIT, link.recv())
        .await
        .expect("a message from the master in time")
        .expect("the link is open")
}

fn executor_update(state: TaskState) -> TaskStatus {
    TaskStatus {
        state: state as i32,
        source: Some(task_status::Source::Executor as i32),
        ..Default::default()
    }
}

#[tokio::test]
async fn attached_agent_gets_the_launch_and_its_updates_reach_the_framework() {
    let master = start_with_agent().await;
    let mut link = master.attach_agent(AGENT).unwrap();
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;

    let AgentMessage::RunTask { framework, task } = next_message(&mut link).await else {
        panic!("RunTask expected");
    };
    assert_eq!(framework.id.unwrap().value, framework_id);
    assert_eq!(task.task_id.value, "t1");

    let uuid = link
        .send_status("t1", executor_update(TaskState::TaskRunning))
        .unwrap();
    let status = subscription.update().await;
    assert_eq!(status.state(), TaskState::TaskRunning);
    assert_eq!(status.uuid.as_deref(), Some(uuid.as_slice()));
    assert_eq!(status.agent_id.unwrap().value, AGENT);

    let ack = acknowledge_call(&framework_id, "t1", AGENT, uuid.clone());
    post_call(&master, &subscription.stream_id, &ack).await;
    let message = next_message(&mut link).await;
    assert_eq!(
        message,
        AgentMessage::Acknowledged {
            framework_id,
            task_id: "t1".to_owned(),
            uuid
        }
    );
}

#[tokio::test]
async fn kill_goes_to_the_attached_agent_and_is_not_answered_for_it() {
    let setup = MasterSetup {
        auto_complete_kills: true,
        ..fast_setup()
    };
    let master = FakeMaster::start(setup).await.unwrap();
    master
        .add_agent(AgentSpec::new(AGENT, "127.0.0.1"))
        .unwrap();
    let mut link = master.attach_agent(AGENT).unwrap();
    let (mut subscription, framework_id) = launch_one(&master, "t1").await;
    assert!(matches!(
        next_message(&mut link).await,
        AgentMessage::RunTask { .. }
    ));

    post_call(
        &master,
        &subscription.stream_id,
        &kill_call(&framework_id, "t1"),
    )
    .await;
    let message = next_message(&mut link).await;
    assert_eq!(
        message,
        AgentMessage::KillTask {
            framework_id,
            task_id: "t1".to_owned(),
            kill_policy: None
        }
    );
    // The agent decides when the task ends: no simulated TASK_KILLED.
    let updates = subscription
        .updates_within(Duration::from_millis(400))
        .await;
    assert!(updates.is_empty(), "{updates:?}");
    assert_eq!(master.task("t1").unwrap().state, TaskState::TaskStaging);
}

#[tokio::test]
async fn teardown_shuts_the_framework_down_on_its_agents_and_gone_shuts_the_agent_down() {
    let master = start_with_agent().await;
    let mut link = master.attach_agent(AGENT).unwrap();
    let (subscription, framework_id) = launch_one(&master, "t1").await;
    next_message(&mut link).await;

    let message = call::Message {
        agent_id: mesos_proto::v1::AgentId {
            value: AGENT.to_owned(),
        },
        executor_id: mesos_proto::v1::ExecutorId {
            value: "e1".to_owned(),
        },
        data: b"hello".to_vec(),
    };
    let mut call = envelope(&framework_id, call::Type::Message);
    call.message = Some(message);
    post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(
        next_message(&mut link).await,
        AgentMessage::FrameworkMessage {
            framework_id: framework_id.clone(),
            executor_id: "e1".to_owned(),
            data: b"hello".to_vec()
        }
    );

    let teardown = envelope(&framework_id, call::Type::Teardown);
    post_call(&master, &subscription.stream_id, &teardown).await;
    assert_eq!(
        next_message(&mut link).await,
        AgentMessage::ShutdownFramework { framework_id }
    );

    master.mark_gone(AGENT).unwrap();
    assert_eq!(
        next_message(&mut link).await,
        AgentMessage::Shutdown {
            message: "Agent has been marked gone".to_owned()
        }
    );
}

#[tokio::test]
async fn agent_brings_its_tasks_and_unacknowledged_updates_to_a_new_leader() {
    let old = start_with_agent().await;
    let link = old.attach_agent(AGENT).unwrap();
    let (subscription, framework_id) = launch_one(&old, "t1").await;
    let uuid = link
        .send_status("t1", executor_update(TaskState::TaskRunning))
        .unwrap();
    drop(subscription);
    old.stop().await;

    // The new leader knows the agent from the registry only.
    let new = start_with_agent().await;
    new.fail_over();
    let mut reconciling = subscribe_with_id(&new, &framework_id).await;
    let reconcile = reconcile_call(&framework_id, &[("t1", Some(AGENT))]);
    post_call(&new, &reconciling.stream_id, &reconcile).await;
    // Silent for a task on an agent that has not re-registered.
    reconciling.assert_quiet(Duration::from_millis(400)).await;

    let mut link = new.reregister_with(link.reporter()).unwrap();
    // The update the old master never got acknowledged is delivered again.
    let status = reconciling.update().await;
    assert_eq!(status.state(), TaskState::TaskRunning);
    assert_eq!(status.uuid.as_deref(), Some(uuid.as_slice()));
    assert_eq!(new.task("t1").unwrap().state, TaskState::TaskRunning);

    let ack = acknowledge_call(&framework_id, "t1", AGENT, uuid.clone());
    post_call(&new, &reconciling.stream_id, &ack).await;
    assert!(matches!(
        next_message(&mut link).await,
        AgentMessage::Acknowledged { .. }
    ));
}

/// Re-subscribes with a known framework id.
async fn subscribe_with_id(master: &FakeMaster, framework_id: &str) -> Subscription {
    let mut info = framework_info();
    info.id = Some(mesos_proto::v1::FrameworkId {
        value: framework_id.to_owned(),
    });
    let (subscription, id) = subscribe_new(master, info).await;
    assert_eq!(id, framework_id);
    subscription
}
