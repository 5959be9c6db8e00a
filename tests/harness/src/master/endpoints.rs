//! The JSON of the leading master's `/state` endpoint
//! (`Master::ReadOnlyHandler::state` in `src/master/readonly_handler.cpp`,
//! with the `json()` writers of `src/common/http.cpp`), as a subset: the
//! master's identity and leader, the registered agents with their
//! resources, and the frameworks with their tasks (active, unreachable,
//! completed) and offers. Field names and shapes are the real ones; fields
//! the fake has no model for (flags, build, roles, quota, executors'
//! details, registration times of agents) are left out. Pure.

use std::time::SystemTime;

use mesos_proto::v1::{value, Attribute, FrameworkInfo, Offer, TaskStatus};
use serde_json::{json, Map, Value};

use super::resources::Resources;
use super::setup::AgentSpec;
use super::state::{Framework, MasterState};
use super::tasks::Task;

/// The `/state` object of a leading master.
pub(crate) fn state_json(state: &MasterState) -> Value {
    let info = state.master_info();
    let pid = info.pid.clone().unwrap_or_default();
    let leader_info = json!({
        "id": info.id,
        "pid": pid,
        "port": info.port,
        "hostname": info.hostname,
    });
    let slaves: Vec<Value> = state
        .agents
        .values()
        .map(|a| agent_json(state, a))
        .collect();
    let frameworks: Vec<Value> = state
        .frameworks
        .iter()
        .map(|f| framework_json(state, f))
        .collect();
    let completed: Vec<Value> = state
        .removed_frameworks
        .iter()
        .map(|id| completed_framework_json(state, id))
        .collect();
    json!({
        "version": state.setup.version,
        "start_time": seconds(state.start_time),
        "elected_time": seconds(state.start_time),
        "id": state.master_id,
        "pid": pid,
        "hostname": state.setup.hostname,
        "activated_slaves": state.agents.len() as f64,
        "deactivated_slaves": 0.0,
        "unreachable_slaves": state.unreachable_agents.len() as f64,
        "leader": pid,
        "leader_info": leader_info,
        "slaves": slaves,
        "recovered_slaves": [],
        "frameworks": frameworks,
        "completed_frameworks": completed,
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    })
}

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `SlaveWriter`: `json(SlaveInfo)` then pid and the resource breakdown.
fn agent_json(state: &MasterState, agent: &AgentSpec) -> Value {
    let total = agent.resources();
    let used = state.resources_in_use(&agent.agent_id);
    let mut offered = Resources::default();
    for offer in state.offers.on_agent(&agent.agent_id) {
        offered.add(&Resources::from_proto(&offer.resources).unwrap_or_default());
    }
    json!({
        "id": agent.agent_id,
        "hostname": agent.hostname,
        "port": agent.port,
        "attributes": attributes_json(&agent.attributes),
        "pid": format!("slave(1)@{}:{}", agent.hostname, agent.port),
        "resources": total.to_state_json(),
        "used_resources": used.to_state_json(),
        "offered_resources": offered.to_state_json(),
        "unreserved_resources": total.to_state_json(),
        "active": true,
        "deactivated": false,
        "version": state.setup.version,
    })
}

/// `json(Attributes)`: name → number (scalar) or string (ranges, set, text).
fn attributes_json(attributes: &[Attribute]) -> Value {
    let mut object = Map::new();
    for attribute in attributes {
        let value = match value::Type::try_from(attribute.r#type) {
            Ok(value::Type::Scalar) => json!(attribute.scalar.map_or(0.0, |s| s.value)),
            Ok(value::Type::Text) => json!(attribute.text.as_ref().map_or("", |t| &t.value)),
            Ok(value::Type::Ranges) => {
                let ranges = attribute.ranges.as_ref().map_or(&[][..], |r| &r.range[..]);
                let text: Vec<String> = ranges
                    .iter()
                    .map(|r| format!("{}-{}", r.begin, r.end))
                    .collect();
                json!(format!("[{}]", text.join(", ")))
            }
            Ok(value::Type::Set) => {
                let items = attribute.set.as_ref().map_or(&[][..], |s| &s.item[..]);
                json!(format!("{{{}}}", items.join(", ")))
            }
            Err(_) => Value::Null,
        };
        object.insert(attribute.name.clone(), value);
    }
    Value::Object(object)
}

/// `FullFrameworkWriter` (summary fields, then the task lists and offers).
#[allow(deprecated)] // `role`, which single-role frameworks still set
fn framework_json(state: &MasterState, framework: &Framework) -> Value {
    let info = &framework.info;
    let of_framework = || {
        state
            .tasks
            .values()
            .filter(|t| t.framework_id == framework.id)
    };
    let tasks: Vec<Value> = of_framework()
        .filter(|t| t.is_known())
        .map(task_json)
        .collect();
    let unreachable: Vec<Value> = of_framework()
        .filter(|t| !t.removed && t.unreachable)
        .map(task_json)
        .collect();
    let completed: Vec<Value> = of_framework()
        .filter(|t| t.removed)
        .map(task_json)
        .collect();
    let offers: Vec<Value> = state
        .offers
        .values()
        .filter(|o| o.framework_id.value == framework.id)
        .map(offer_json)
        .collect();
    let mut used = Resources::default();
    for task in of_framework().filter(|t| t.is_live() && !t.unreachable) {
        used.add(&Resources::from_proto(&task.info.resources).unwrap_or_default());
    }
    let mut object = json!({
        "id": framework.id,
        "name": info.name,
        "used_resources": used.to_state_json(),
        "capabilities": capability_names(info),
        "hostname": info.hostname.clone().unwrap_or_default(),
        "webui_url": info.webui_url.clone().unwrap_or_default(),
        "active": framework.connection.is_some(),
        "connected": framework.connection.is_some(),
        "recovered": false,
        "user": info.user,
        "failover_timeout": info.failover_timeout.unwrap_or(0.0),
        "checkpoint": info.checkpoint.unwrap_or(false),
        "tasks": tasks,
        "unreachable_tasks": unreachable,
        "completed_tasks": completed,
        "offers": offers,
        "executors": [],
    });
    if let Some(map) = object.as_object_mut() {
        if let Some(principal) = &info.principal {
            map.insert("principal".to_owned(), json!(principal));
        }
        if info.roles.is_empty() {
            let role = info.role.clone().unwrap_or_else(|| "*".to_owned());
            map.insert("role".to_owned(), json!(role));
        } else {
            map.insert("roles".to_owned(), json!(info.roles));
        }
    }
    object
}

/// A removed framework: the fake keeps only its id and its tasks.
fn completed_framework_json(state: &MasterState, id: &str) -> Value {
    let completed: Vec<Value> = state
        .tasks
        .values()
        .filter(|t| t.framework_id == id)
        .map(task_json)
        .collect();
    json!({
        "id": id,
        "active": false,
        "connected": false,
        "tasks": [],
        "unreachable_tasks": [],
        "completed_tasks": completed,
        "offers": [],
        "executors": [],
    })
}

fn capability_names(info: &FrameworkInfo) -> Vec<String> {
    info.capabilities
        .iter()
        .filter_map(|c| c.r#type)
        .filter_map(|t| mesos_proto::v1::framework_info::capability::Type::try_from(t).ok())
        .map(|t| t.as_str_name().to_owned())
        .collect()
}

/// `json(const Task&)`: the master's state, statuses with consecutive
/// duplicates of a state collapsed (as `Master::updateTask` keeps them).
fn task_json(task: &Task) -> Value {
    let mut statuses: Vec<&TaskStatus> = Vec::new();
    for status in &task.statuses {
        if statuses
            .last()
            .is_some_and(|last| last.state == status.state)
        {
            statuses.pop();
        }
        statuses.push(status);
    }
    let statuses: Vec<Value> = statuses.into_iter().map(status_json).collect();
    let role = task
        .info
        .resources
        .first()
        .and_then(|r| r.allocation_info.as_ref())
        .and_then(|a| a.role.clone())
        .unwrap_or_else(|| "*".to_owned());
    let mut object = json!({
        "id": task.info.task_id.value,
        "name": task.info.name,
        "framework_id": task.framework_id,
        "executor_id": task.info.executor.as_ref().map_or("", |e| e.executor_id.value.as_str()),
        "slave_id": task.agent_id,
        "state": task.state.as_str_name(),
        "resources": Resources::from_proto(&task.info.resources).unwrap_or_default().to_state_json(),
        "role": role,
        "statuses": statuses,
    });
    if let (Some(map), Some(labels)) = (object.as_object_mut(), &task.info.labels) {
        map.insert("labels".to_owned(), protobuf_json(labels));
    }
    if let (Some(map), Some(container)) = (object.as_object_mut(), &task.info.container) {
        map.insert("container".to_owned(), protobuf_json(container));
    }
    object
}

/// `json(const TaskStatus&)`.
fn status_json(status: &TaskStatus) -> Value {
    let state = mesos_proto::v1::TaskState::try_from(status.state)
        .map_or("TASK_UNKNOWN", |s| s.as_str_name());
    let mut object = json!({
        "state": state,
        "timestamp": status.timestamp.unwrap_or(0.0),
    });
    if let Some(map) = object.as_object_mut() {
        if let Some(labels) = &status.labels {
            map.insert("labels".to_owned(), protobuf_json(labels));
        }
        if let Some(container_status) = &status.container_status {
            map.insert(
                "container_status".to_owned(),
                protobuf_json(container_status),
            );
        }
        if let Some(healthy) = status.healthy {
            map.insert("healthy".to_owned(), json!(healthy));
        }
    }
    object
}

/// `json(const Offer&)`.
fn offer_json(offer: &Offer) -> Value {
    let resources = Resources::from_proto(&offer.resources).unwrap_or_default();
    json!({
        "id": offer.id.value,
        "framework_id": offer.framework_id.value,
        "slave_id": offer.agent_id.value,
        "resources": resources.to_state_json(),
    })
}

/// A message in protobuf's JSON mapping (`JSON::Protobuf`).
fn protobuf_json<M: serde::Serialize>(message: &M) -> Value {
    mesos_proto::json::to_string(message)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}
