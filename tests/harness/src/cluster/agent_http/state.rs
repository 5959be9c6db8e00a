//! The agent's `/state` document (`src/slave/http.cpp`'s state writers),
//! the subset read by schedulers and tools, built from its [`AgentBook`].

use std::collections::BTreeMap;

use mesos_proto::v1::{value, ExecutorInfo, FrameworkInfo, Resource, TaskInfo, TaskState};
use serde_json::{json, Value};

use crate::cluster::sandbox::{AgentBook, ExecutorRecord};

/// Who the agent is, for the document's top level.
#[derive(Debug, Clone)]
pub(crate) struct AgentIdentity {
    pub(crate) hostname: String,
    pub(crate) address: std::net::SocketAddr,
    pub(crate) version: String,
}

/// The `/state` document: a framework is completed once every executor
/// run it had here has terminated; executors terminated are its
/// `completed_executors`; terminal tasks are listed in `completed_tasks`.
pub(crate) fn state(book: &AgentBook, identity: &AgentIdentity) -> Value {
    let runs = book.executors();
    let mut frameworks = Vec::new();
    let mut completed_frameworks = Vec::new();
    for framework in book.frameworks() {
        let id = framework.id.clone().unwrap_or_default().value;
        let own: Vec<&ExecutorRecord> = runs.iter().filter(|r| r.framework_id == id).collect();
        let (done, live): (Vec<_>, Vec<_>) = own.into_iter().partition(|r| r.terminated);
        let executors: Vec<Value> = live.iter().map(|r| executor(r, book)).collect();
        let completed: Vec<Value> = done.iter().map(|r| executor(r, book)).collect();
        let document = framework_document(&framework, executors, completed);
        if live.is_empty() {
            completed_frameworks.push(document);
        } else {
            frameworks.push(document);
        }
    }
    json!({
        "version": identity.version,
        "id": book.agent_id(),
        "pid": format!("slave(1)@{}", identity.address),
        "hostname": identity.hostname,
        "frameworks": frameworks,
        "completed_frameworks": completed_frameworks,
    })
}

fn framework_document(
    framework: &FrameworkInfo,
    executors: Vec<Value>,
    completed_executors: Vec<Value>,
) -> Value {
    json!({
        "id": framework.id.clone().unwrap_or_default().value,
        "name": framework.name,
        "user": framework.user,
        "failover_timeout": framework.failover_timeout.unwrap_or(0.0),
        "checkpoint": framework.checkpoint.unwrap_or(false),
        "hostname": framework.hostname.clone().unwrap_or_default(),
        "executors": executors,
        "completed_executors": completed_executors,
    })
}

fn executor(run: &ExecutorRecord, book: &AgentBook) -> Value {
    let (name, source) = match &run.info {
        // `source` is deprecated in the schema, still in the agent's JSON.
        #[allow(deprecated)]
        Some(info) => (
            info.name.clone().unwrap_or_default(),
            info.source.clone().unwrap_or_default(),
        ),
        None => command_executor_name(run),
    };
    let agent_id = book.agent_id();
    let (terminal, live): (Vec<_>, Vec<_>) =
        run.tasks.iter().partition(|(_, state)| is_terminal(*state));
    let task = |(info, state): &&(TaskInfo, TaskState)| task(info, *state, run, &agent_id);
    let mut resources: Vec<&Resource> = run.tasks.iter().flat_map(|(t, _)| &t.resources).collect();
    resources.extend(run.info.iter().flat_map(|i: &ExecutorInfo| &i.resources));
    json!({
        "id": run.executor_id,
        "name": name,
        "source": source,
        "container": run.container_id,
        "directory": run.directory.display().to_string(),
        "resources": scalars(resources),
        "tasks": live.iter().map(task).collect::<Vec<_>>(),
        "queued_tasks": [],
        "completed_tasks": terminal.iter().map(task).collect::<Vec<_>>(),
    })
}

/// The name and source the agent gives the command executor of a task
/// (`Slave::getExecutorInfo`).
fn command_executor_name(run: &ExecutorRecord) -> (String, String) {
    let Some((task, _)) = run.tasks.first() else {
        return (String::new(), run.executor_id.clone());
    };
    let mut name = format!("(Task: {}) ", task.task_id.value);
    let command = task.command.clone().unwrap_or_default();
    let abbreviate = |text: String| -> String {
        if text.chars().count() > 15 {
            format!("{}...", text.chars().take(12).collect::<String>())
        } else {
            text
        }
    };
    match (command.shell.unwrap_or(true), command.value) {
        (true, None) => name.push_str("(Command: NO COMMAND)"),
        (true, Some(value)) => {
            name.push_str(&format!("(Command: sh -c '{}')", abbreviate(value)));
        }
        (false, None) => name.push_str("(Command: NO EXECUTABLE)"),
        (false, Some(value)) => {
            let args = format!("{value}, {}", command.arguments.join(", "));
            name.push_str(&format!("(Command: [{}])", abbreviate(args)));
        }
    }
    (
        format!("Command Executor {name}"),
        task.task_id.value.clone(),
    )
}

fn task(info: &TaskInfo, state: TaskState, run: &ExecutorRecord, agent_id: &str) -> Value {
    json!({
        "id": info.task_id.value,
        "name": info.name,
        "framework_id": run.framework_id,
        // Command tasks have no executor id of their own.
        "executor_id": info.executor.as_ref().map(|e| e.executor_id.value.clone()).unwrap_or_default(),
        "slave_id": agent_id,
        "state": state.as_str_name(),
        "resources": scalars(info.resources.iter().collect()),
        "statuses": [],
    })
}

/// Scalar resources summed by name (`model(Resources)`: cpus, mem, disk...).
fn scalars(resources: Vec<&Resource>) -> Value {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for resource in resources {
        if resource.r#type == value::Type::Scalar as i32 {
            let amount = resource.scalar.as_ref().map_or(0.0, |s| s.value);
            *sums.entry(resource.name.clone()).or_default() += amount;
        }
    }
    json!(sums)
}

fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}
