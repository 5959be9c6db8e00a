//! Invariants of the master's indexes, on a `MasterState` driven directly
//! (no server): what the cached resources in use, the retry timers and the
//! bounded completed tasks must keep true.

use std::net::SocketAddr;
use std::time::Duration;

use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::{task_status, AgentId, CommandInfo, TaskId, TaskInfo, TaskState, TaskStatus};
use tokio::time::Instant;

use super::resources::Resources;
use super::setup::{AgentSpec, MasterSetup};
use super::state::MasterState;

const FRAMEWORK: &str = "framework-1";
const AGENT: &str = "agent-1";

fn state(setup: MasterSetup) -> (MasterState, Instant) {
    let now = Instant::now();
    let address = SocketAddr::from(([127, 0, 0, 1], 5050));
    let mut state = MasterState::new(setup, address, now);
    state.add_agent(AgentSpec::new(AGENT, "127.0.0.1"), now);
    (state, now)
}

fn task(id: &str) -> TaskInfo {
    let mut resources = Resources::scalar("cpus", 1.0);
    resources.add(&Resources::scalar("mem", 64.0));
    TaskInfo {
        name: id.to_owned(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: AGENT.into(),
        },
        resources: resources.to_proto("*"),
        command: Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn launch(state: &mut MasterState, id: &str, now: Instant) {
    let mut remaining = state.available(state.agents.get(AGENT).expect("agent"));
    state.launch(FRAMEWORK, AGENT, task(id), &mut remaining, now);
    assert!(state.tasks.with_id(id).next().is_some(), "{id} launched");
}

fn update(state: &mut MasterState, id: &str, to: TaskState, now: Instant) -> Vec<u8> {
    let status = TaskStatus {
        state: to as i32,
        source: Some(task_status::Source::Executor as i32),
        ..Default::default()
    };
    state
        .agent_update(id, status, now)
        .expect("update accepted")
}

fn acknowledge(state: &mut MasterState, id: &str, uuid: Vec<u8>, now: Instant) {
    let ack = call::Acknowledge {
        agent_id: AgentId {
            value: AGENT.into(),
        },
        task_id: TaskId { value: id.into() },
        uuid,
    };
    state.acknowledge(FRAMEWORK, &ack, now);
}

fn cpus_in_use(state: &MasterState) -> f64 {
    state.resources_in_use(AGENT).scalar_amount("cpus")
}

#[test]
fn a_task_ending_frees_its_agents_resources_at_once() {
    let (mut state, now) = state(MasterSetup::default());
    launch(&mut state, "t1", now);
    launch(&mut state, "t2", now);
    assert_eq!(cpus_in_use(&state), 2.0);
    update(&mut state, "t1", TaskState::TaskRunning, now);
    assert_eq!(cpus_in_use(&state), 2.0);
    update(&mut state, "t1", TaskState::TaskFinished, now);
    assert_eq!(cpus_in_use(&state), 1.0);
    let free = state.available(state.agents.get(AGENT).expect("agent"));
    assert_eq!(free.scalar_amount("cpus"), 3.0);
}

#[test]
fn a_forgotten_task_leaves_every_index_and_its_agents_resources() {
    let setup = MasterSetup {
        record_history: false,
        max_completed_tasks_per_framework: 1,
        ..MasterSetup::default()
    };
    let (mut state, now) = state(setup);
    for id in ["t1", "t2", "t3"] {
        launch(&mut state, id, now);
    }
    for id in ["t1", "t2"] {
        let uuid = update(&mut state, id, TaskState::TaskFailed, now);
        acknowledge(&mut state, id, uuid, now);
    }
    // t1 was forgotten when t2 became the one completed task remembered.
    assert!(state.tasks.with_id("t1").next().is_none());
    let (_, t2) = state.tasks.with_id("t2").next().expect("t2 remembered");
    assert!(t2.removed);
    let on_agent: Vec<&str> = state
        .tasks
        .on_agent(AGENT)
        .map(|(_, t)| t.info.task_id.value.as_str())
        .collect();
    assert_eq!(on_agent, ["t2", "t3"]);
    assert_eq!(state.tasks.len(), 2);
    assert_eq!(cpus_in_use(&state), 1.0);
    // The id of a forgotten task can be used again.
    launch(&mut state, "t1", now);
    assert_eq!(cpus_in_use(&state), 2.0);
}

#[test]
fn removed_tasks_are_all_kept_with_history() {
    let setup = MasterSetup {
        max_completed_tasks_per_framework: 1,
        ..MasterSetup::default()
    };
    let (mut state, now) = state(setup);
    for id in ["t1", "t2"] {
        launch(&mut state, id, now);
        let uuid = update(&mut state, id, TaskState::TaskFinished, now);
        acknowledge(&mut state, id, uuid, now);
    }
    assert_eq!(state.tasks.len(), 2);
    assert!(state.tasks.values().all(|t| t.removed));
}

#[test]
fn only_the_latest_status_is_kept_without_history() {
    let setup = MasterSetup {
        record_history: false,
        ..MasterSetup::default()
    };
    let (mut state, now) = state(setup);
    launch(&mut state, "t1", now);
    update(&mut state, "t1", TaskState::TaskStarting, now);
    update(&mut state, "t1", TaskState::TaskRunning, now);
    let (_, task) = state.tasks.with_id("t1").next().expect("t1");
    let states: Vec<i32> = task.statuses.iter().map(|s| s.state).collect();
    assert_eq!(states, [TaskState::TaskRunning as i32]);
    // Both updates still wait for their acknowledgement.
    assert_eq!(task.view().unacknowledged.len(), 2);
}

#[test]
fn an_update_is_retried_when_its_timer_is_due_and_not_before() {
    let setup = MasterSetup {
        status_update_retry_min: Duration::from_secs(10),
        ..MasterSetup::default()
    };
    let (mut state, now) = state(setup);
    launch(&mut state, "t1", now);
    launch(&mut state, "t2", now);
    update(&mut state, "t1", TaskState::TaskRunning, now);
    let later = now + Duration::from_secs(3);
    update(&mut state, "t2", TaskState::TaskRunning, later);
    let backoff = |state: &MasterState, id: &str| {
        let (_, task) = state.tasks.with_id(id).next().expect("task");
        task.next_retry_at()
    };
    assert_eq!(backoff(&state, "t1"), Some(now + Duration::from_secs(10)));
    state.retry_updates(now + Duration::from_millis(9_999));
    assert_eq!(backoff(&state, "t1"), Some(now + Duration::from_secs(10)));
    // t1 is due, t2 is not: only t1 is re-sent, its interval doubled.
    let first_due = now + Duration::from_secs(10);
    state.retry_updates(first_due);
    assert_eq!(
        backoff(&state, "t1"),
        Some(first_due + Duration::from_secs(20))
    );
    assert_eq!(backoff(&state, "t2"), Some(later + Duration::from_secs(10)));
    let second_due = later + Duration::from_secs(10);
    state.retry_updates(second_due);
    assert_eq!(
        backoff(&state, "t2"),
        Some(second_due + Duration::from_secs(20))
    );
    assert_eq!(
        backoff(&state, "t1"),
        Some(first_due + Duration::from_secs(20))
    );
    // An acknowledged update's timer no longer fires.
    let uuid = state
        .tasks
        .with_id("t1")
        .next()
        .expect("t1")
        .1
        .view()
        .unacknowledged[0]
        .uuid
        .clone()
        .expect("uuid");
    acknowledge(&mut state, "t1", uuid, now);
    assert_eq!(backoff(&state, "t1"), None);
    assert_eq!(state.retries.len(), 1);
}

#[test]
fn removing_a_framework_forgets_its_oldest_removed_tasks_beyond_the_bound() {
    let setup = MasterSetup {
        record_history: false,
        max_completed_tasks_per_framework: 1,
        ..MasterSetup::default()
    };
    let (mut state, now) = state(setup);
    for id in ["t1", "t2", "t3"] {
        launch(&mut state, id, now);
    }
    // The last launched is the first removed: removing t1 forgets it.
    let uuid = update(&mut state, "t3", TaskState::TaskFinished, now);
    acknowledge(&mut state, "t3", uuid, now);
    state.kill_tasks_of_removed_framework(FRAMEWORK);
    let remembered: Vec<&str> = state
        .tasks
        .values()
        .map(|t| t.info.task_id.value.as_str())
        .collect();
    assert_eq!(remembered, ["t2"]);
    assert!(state.tasks.values().all(|t| t.removed));
    assert_eq!(cpus_in_use(&state), 0.0);
}
