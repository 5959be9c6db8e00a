//! Behaviour of the scheduler core (`eremetic::engine::Scheduler`) through the `TaskService`
//! trait, over the real SQLite store and an in-memory fake backend: the lifecycle of a task,
//! failures and retries, kills and deletes, timeouts, admission, queue order, idempotency,
//! recovery after a restart, callbacks, concurrency and metrics. Tests named with an `e<n>`
//! prove that Eremetic's sharp edge E-n (seed behaviour document, section 7) is fixed.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod engine_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use eremetic::backend::{RecoveredRun, RecoveredState, RunOutcome};
use eremetic::engine::Policy;
use eremetic::outbox::Outbox;
use eremetic::service::{DeleteError, KillError, SubmitError, TaskEvent, TaskService};
use eremetic::task::{CallbackStates, StateFilter, TaskId, TaskState};
use futures::FutureExt;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;

use engine_support::fake::{Attempt, Ending, FakeBackend};
use engine_support::{body, config, eventually, history, Harness, DEADLINE};

use TaskState::{Failed, Finished, Killed, Lost, Queued, Running, Staging, Terminating};

fn unknown_id() -> TaskId {
    TaskId::generate([7; 16])
}

/// Every `eremetic_tasks{state}` gauge equals the store's count of tasks in that state.
async fn assert_gauges_match_the_store(harness: &Harness) -> HashMap<TaskState, u64> {
    let counts: HashMap<TaskState, u64> = harness
        .store
        .count_by_state()
        .await
        .unwrap()
        .into_iter()
        .collect();
    for state in TaskState::ALL {
        let stored = counts.get(&state).copied().unwrap_or(0);
        let gauge = harness.metrics.tasks_in(state).get();
        assert_eq!(
            gauge,
            i64::try_from(stored).unwrap(),
            "eremetic_tasks{{state=\"{state}\"}}"
        );
    }
    counts
}

#[path = "engine_behaviour/admission.rs"]
mod admission;
#[path = "engine_behaviour/asynchronous.rs"]
mod asynchronous;
#[path = "engine_behaviour/callbacks_concurrency.rs"]
mod callbacks_concurrency;
#[path = "engine_behaviour/kill_delete.rs"]
mod kill_delete;
#[path = "engine_behaviour/lifecycle.rs"]
mod lifecycle;
#[path = "engine_behaviour/restart.rs"]
mod restart;
