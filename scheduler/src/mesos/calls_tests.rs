use mesos_client::CallName;
use mesos_proto::v1::{AgentId, TaskState as MesosState};
use serde_json::{json, Value};

use super::*;
use crate::mesos::test_support::*;
use crate::task::TaskId;

fn settings() -> FrameworkSettings {
    FrameworkSettings {
        name: "Eremetic".into(),
        user: "root".into(),
        role: "eremetic".into(),
        checkpoint: true,
        failover_timeout: Duration::from_secs(2_592_000),
        principal: Some("eremetic".into()),
        hostname: None,
        webui_url: Some("http://eremetic:8000".into()),
        partition_aware: true,
    }
}

fn as_json(call: &Call) -> Value {
    let text = mesos_proto::json::to_string(call).expect("encodable call");
    serde_json::from_str(&text).expect("valid json")
}

fn status(uuid: Option<Vec<u8>>, agent: Option<&str>) -> TaskStatus {
    TaskStatus {
        task_id: MesosTaskId {
            value: "t.0".into(),
        },
        state: MesosState::TaskRunning as i32,
        uuid,
        agent_id: agent.map(|value| AgentId {
            value: value.into(),
        }),
        ..Default::default()
    }
}

#[test]
fn first_subscribe_has_no_framework_id_and_declares_capabilities() {
    let call = subscribe(&settings(), None);
    assert_eq!(call.call_name(), "SUBSCRIBE");
    assert_eq!(
        as_json(&call),
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": "Eremetic", "failover_timeout": 2592000.0,
            "checkpoint": true, "role": "eremetic", "principal": "eremetic",
            "webui_url": "http://eremetic:8000",
            "capabilities": [{"type": "TASK_KILLING_STATE"}, {"type": "PARTITION_AWARE"}]}}})
    );
}

#[test]
fn resubscribe_sets_the_id_in_envelope_and_framework_info() {
    let mut settings = settings();
    settings.partition_aware = false;
    let call = subscribe(&settings, Some("fw-1"));
    let json = as_json(&call);
    assert_eq!(json["framework_id"], json!({"value": "fw-1"}));
    assert_eq!(
        json["subscribe"]["framework_info"]["id"],
        json!({"value": "fw-1"})
    );
    assert_eq!(
        json["subscribe"]["framework_info"]["capabilities"],
        json!([{"type": "TASK_KILLING_STATE"}])
    );
}

#[test]
fn accept_launches_tasks_with_a_refuse_filter() {
    let info = TaskInfo {
        name: "t".into(),
        task_id: MesosTaskId {
            value: "t.0".into(),
        },
        agent_id: AgentId { value: "a1".into() },
        ..Default::default()
    };
    let call = accept(
        "fw-1",
        vec![OfferId { value: "o1".into() }],
        vec![info],
        Duration::from_secs(10),
    );
    let json = as_json(&call);
    assert_eq!(json["type"], "ACCEPT");
    assert_eq!(json["accept"]["offer_ids"], json!([{"value": "o1"}]));
    assert_eq!(json["accept"]["operations"][0]["type"], "LAUNCH");
    assert_eq!(
        json["accept"]["operations"][0]["launch"]["task_infos"][0]["task_id"],
        json!({"value": "t.0"})
    );
    assert_eq!(json["accept"]["filters"], json!({"refuse_seconds": 10.0}));
}

#[test]
fn decline_caps_the_refuse_filter_at_one_year() {
    let call = decline(
        "fw-1",
        vec![OfferId { value: "o1".into() }],
        Duration::from_secs(10 * 31_536_000),
    );
    assert_eq!(
        as_json(&call),
        json!({"framework_id": {"value": "fw-1"}, "type": "DECLINE", "decline": {
            "offer_ids": [{"value": "o1"}], "filters": {"refuse_seconds": 31536000.0}}})
    );
}

#[test]
fn kill_names_task_agent_and_grace() {
    let call = kill("fw-1", "t.0", Some("a1"), Some(Duration::from_secs(3)));
    assert_eq!(
        as_json(&call)["kill"],
        json!({"task_id": {"value": "t.0"}, "agent_id": {"value": "a1"},
               "kill_policy": {"grace_period": {"nanoseconds": 3000000000u64}}})
    );
    let bare = kill("fw-1", "t.0", None, None);
    assert_eq!(as_json(&bare)["kill"], json!({"task_id": {"value": "t.0"}}));
}

#[test]
fn acknowledge_only_updates_with_a_uuid_and_an_agent() {
    let uuid = vec![7u8; 16];
    let call = acknowledge("fw-1", &status(Some(uuid.clone()), Some("a1"))).expect("ack");
    let ack = call.acknowledge.expect("acknowledge body");
    assert_eq!(
        (ack.uuid, ack.agent_id.value, ack.task_id.value),
        (uuid, "a1".into(), "t.0".into())
    );
    assert_eq!(acknowledge("fw-1", &status(None, Some("a1"))), None);
    assert_eq!(
        acknowledge("fw-1", &status(Some(vec![1; 36]), Some("a1"))),
        None
    );
    assert_eq!(acknowledge("fw-1", &status(Some(vec![1; 16]), None)), None);
}

#[test]
fn reconcile_targets_skip_queued_terminal_and_unplaced_tasks() {
    let mut running = task(request(0.1, 32.0));
    running.push_status(TaskState::Staging, at(1));
    running.push_status(TaskState::Running, at(2));
    running.agent_id = Some("a1".into());
    running.retry = 2;
    let queued = task(request(0.1, 32.0));
    let mut queued_killed = task(request(0.1, 32.0));
    queued_killed.push_status(TaskState::Terminating, at(3));
    let mut finished = running.clone();
    finished.push_status(TaskState::Finished, at(4));
    let mut terminating = running.clone();
    terminating.id = TaskId::parse("eremetic-task.other").expect("id");
    terminating.retry = 0;
    terminating.push_status(TaskState::Terminating, at(4));
    let targets = reconcile_targets([&running, &queued, &queued_killed, &finished, &terminating]);
    assert_eq!(
        targets,
        vec![
            ReconcileTarget {
                mesos_task_id: format!("{}.2", running.id),
                agent_id: "a1".into()
            },
            ReconcileTarget {
                mesos_task_id: "eremetic-task.other.0".into(),
                agent_id: "a1".into()
            },
        ]
    );
}

#[test]
fn explicit_reconcile_is_never_implicit() {
    assert_eq!(reconcile("fw-1", &[]), None);
    let call = reconcile(
        "fw-1",
        &[ReconcileTarget {
            mesos_task_id: "t.0".into(),
            agent_id: "a1".into(),
        }],
    )
    .expect("call");
    assert_eq!(
        as_json(&call)["reconcile"],
        json!({"tasks": [{"task_id": {"value": "t.0"}, "agent_id": {"value": "a1"}}]})
    );
    let implicit = reconcile_all("fw-1");
    assert_eq!(implicit.call_name(), "RECONCILE");
    assert_eq!(implicit.reconcile.map(|r| r.tasks.len()), Some(0));
}

#[test]
fn revive_suppress_and_teardown() {
    assert_eq!(
        as_json(&revive("fw-1", &[])),
        json!({"framework_id": {"value": "fw-1"}, "type": "REVIVE"})
    );
    assert_eq!(
        as_json(&suppress("fw-1", &["eremetic".to_owned()]))["suppress"],
        json!({"roles": ["eremetic"]})
    );
    assert_eq!(
        as_json(&teardown("fw-1")),
        json!({"framework_id": {"value": "fw-1"}, "type": "TEARDOWN"})
    );
}
