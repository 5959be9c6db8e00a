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
use eremetic::task::{StateFilter, TaskId, TaskState};
use futures::FutureExt;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;

use engine_support::fake::{Attempt, Ending, FakeBackend};
use engine_support::{body, config, eventually, history, Harness, DEADLINE};

use TaskState::{Failed, Finished, Killed, Lost, Queued, Running, Staging, Terminating};

fn unknown_id() -> TaskId {
    TaskId::generate([7; 16])
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn submitted_task_runs_and_finishes_with_exit_code_zero() {
    let harness = Harness::start(4.0, config()).await;
    let id = harness.submit(&body("ok", 1.0, "")).await;
    harness.wait_state(&id, Running).await;
    harness.fake.exit(&id, 0);
    let task = harness.wait_state(&id, Finished).await;

    assert_eq!(history(&task), vec![Queued, Staging, Running, Finished]);
    assert_eq!(task.exit_code, Some(0));
    assert_eq!(task.failure_reason, None);
    assert_eq!(task.retry, 0);
    assert_eq!(task.agent_id.as_deref(), Some("fake"));
    let run = harness.fake.run_of(&id);
    assert_eq!(
        task.sandbox_path.as_deref(),
        Some(run.sandbox.to_str().unwrap())
    );
    eventually(
        "the container is removed and its resources are given back",
        || {
            let fake = harness.fake.clone();
            let run_id = run.run_id.clone();
            async move { fake.destroyed(&run_id) && fake.free_now().cpus == 4.0 }
        },
    )
    .await;
}

/// Collects the events of `id` until a terminal one (or fails after the deadline).
async fn events_until_terminal(
    events: &mut tokio::sync::broadcast::Receiver<TaskEvent>,
    id: &TaskId,
) -> Vec<TaskEvent> {
    let mut received = Vec::new();
    let collected = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(event) if &event.task_id == id => {
                    let terminal = event.status.is_terminal();
                    received.push(event);
                    if terminal {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(skipped)) => panic!("the test lagged by {skipped} events"),
                Err(RecvError::Closed) => panic!("the event channel closed"),
            }
        }
    })
    .await;
    let statuses: Vec<TaskState> = received.iter().map(|event| event.status).collect();
    assert!(
        collected.is_ok(),
        "no terminal event for {id} within {DEADLINE:?}; received {statuses:?}"
    );
    received
}

#[tokio::test]
async fn events_are_broadcast_for_every_history_entry_in_order() {
    let harness = Harness::start(4.0, config()).await;
    let mut events = harness.scheduler.subscribe();
    let id = harness.submit(&body("evented", 1.0, "")).await;
    harness.wait_state(&id, Running).await;
    harness.fake.exit(&id, 0);
    let received = events_until_terminal(&mut events, &id).await;
    let task = harness.wait_state(&id, Finished).await;

    let statuses: Vec<TaskState> = received.iter().map(|event| event.status).collect();
    assert_eq!(
        statuses,
        history(&task),
        "one event per history entry (the submission's TASK_QUEUED included), in order"
    );
    assert!(received.iter().all(|event| event.name == "evented"));
    assert_eq!(received.last().unwrap().exit_code, Some(0));
}

#[tokio::test]
async fn non_zero_exit_fails_with_the_code_and_is_not_retried_after_it_ran() {
    let harness = Harness::start(4.0, config()).await;
    harness
        .fake
        .script("exit3", &[Attempt::Runs(Ending::Exits(3))]);
    let id = harness.submit(&body("exit3", 1.0, r#""retries":3"#)).await;
    let task = harness.wait_state(&id, Failed).await;

    assert_eq!(history(&task), vec![Queued, Staging, Running, Failed]);
    assert_eq!(task.exit_code, Some(3));
    let reason = task.failure_reason.unwrap();
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert_eq!(
        task.retry, 0,
        "a task that ran is not retried (E-10 semantics)"
    );
    assert_eq!(harness.fake.start_attempts(&id), vec![0]);
}

#[tokio::test]
async fn out_of_memory_kill_fails_with_a_memory_reason_and_is_not_retried() {
    let harness = Harness::start(4.0, config()).await;
    harness
        .fake
        .script("hog", &[Attempt::Runs(Ending::OutOfMemory)]);
    let id = harness.submit(&body("hog", 1.0, r#""retries":3"#)).await;
    let task = harness.wait_state(&id, Failed).await;

    assert_eq!(history(&task), vec![Queued, Staging, Running, Failed]);
    assert_eq!(task.exit_code, Some(137));
    let reason = task.failure_reason.unwrap();
    assert!(reason.contains("memory"), "{reason}");
    assert!(
        reason.contains("32 MiB"),
        "the reason names the limit: {reason}"
    );
    assert_eq!(task.retry, 0);
    assert_eq!(harness.fake.start_attempts(&id), vec![0]);
}

#[tokio::test]
async fn start_failure_is_retried_with_back_off_until_retries_are_used_up() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.script(
        "broken",
        &[
            Attempt::StartFails,
            Attempt::StartFails,
            Attempt::StartFails,
        ],
    );
    let id = harness.submit(&body("broken", 1.0, r#""retries":2"#)).await;
    let task = harness
        .wait_until(&id, "FAILED for good", |task| {
            task.retry == 2 && task.current_state() == Some(Failed)
        })
        .await;

    assert_eq!(
        history(&task),
        vec![Queued, Staging, Failed, Queued, Staging, Failed, Queued, Staging, Failed]
    );
    let reason = task.failure_reason.unwrap();
    assert!(reason.contains("could not be started"), "{reason}");
    assert_eq!(harness.fake.start_attempts(&id), vec![0, 1, 2]);
    // Back-off is at least a second between attempts: the retries do not follow at once.
    let times: Vec<OffsetDateTime> = task.status.iter().map(|entry| entry.time).collect();
    assert!(
        times[4] - times[2] >= time::Duration::milliseconds(900),
        "{times:?}"
    );
    assert_eq!(
        harness.fake.free_now().cpus,
        4.0,
        "every failed start released"
    );
    assert!(harness.fake.started_order().is_empty());
}

#[tokio::test]
async fn task_that_runs_after_a_failed_start_finishes_without_a_stale_failure_reason() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.script("flaky", &[Attempt::StartFails]);
    let id = harness.submit(&body("flaky", 1.0, r#""retries":1"#)).await;
    harness.wait_state(&id, Running).await;
    harness.fake.exit(&id, 0);
    let task = harness.wait_state(&id, Finished).await;

    assert_eq!(
        history(&task),
        vec![Queued, Staging, Failed, Queued, Staging, Running, Finished]
    );
    assert_eq!(task.retry, 1);
    assert_eq!(harness.fake.start_attempts(&id), vec![0, 1]);
    assert_eq!(
        task.failure_reason, None,
        "a FINISHED task must not show the reason of an earlier failed attempt"
    );
}

#[tokio::test]
async fn container_that_vanishes_while_running_is_lost_and_retried() {
    let harness = Harness::start(4.0, config()).await;
    harness
        .fake
        .script("ghost", &[Attempt::Runs(Ending::Vanishes)]);
    let id = harness.submit(&body("ghost", 1.0, r#""retries":1"#)).await;
    harness
        .wait_until(&id, "the relaunch running", |task| {
            task.retry == 1 && task.current_state() == Some(Running)
        })
        .await;
    harness.fake.exit(&id, 0);
    let task = harness.wait_state(&id, Finished).await;
    assert_eq!(
        history(&task),
        vec![Queued, Staging, Running, Lost, Queued, Staging, Running, Finished]
    );
    assert_eq!(harness.fake.start_attempts(&id), vec![0, 1]);
}

#[tokio::test]
async fn unreachable_backend_requeues_without_using_a_retry_until_it_answers() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.set_unreachable(true);
    let id = harness
        .submit(&body("patient", 1.0, r#""retries":0"#))
        .await;
    let waiting = harness
        .wait_until(&id, "back in the queue", |task| {
            history(task) == vec![Queued, Staging, Queued]
        })
        .await;
    assert_eq!(waiting.retry, 0);
    assert_eq!(harness.fake.start_attempts(&id), vec![0]);

    harness.fake.set_unreachable(false);
    harness.wait_state(&id, Running).await;
    harness.fake.exit(&id, 0);
    let task = harness.wait_state(&id, Finished).await;
    assert_eq!(
        history(&task),
        vec![Queued, Staging, Queued, Staging, Running, Finished]
    );
    assert_eq!(task.retry, 0, "waiting for the backend uses no retry");
    assert_eq!(
        harness.fake.start_attempts(&id),
        vec![0, 0],
        "the same attempt is launched again"
    );
}

#[tokio::test]
async fn timeout_stops_the_task_and_fails_it_with_a_timeout_reason() {
    let harness = Harness::start(4.0, config()).await;
    let id = harness
        .submit(&body("sleeper", 1.0, r#""timeout":1"#))
        .await;
    let task = harness.wait_state(&id, Failed).await;

    assert_eq!(history(&task), vec![Queued, Staging, Running, Failed]);
    let reason = task.failure_reason.unwrap();
    assert!(
        reason.contains("timed out") && reason.contains("1 s"),
        "{reason}"
    );
    let run = harness.fake.run_of(&id);
    assert!(harness.fake.stopped(&run.run_id), "stop() was called");
    assert_eq!(task.retry, 0, "a timeout is not retried");
}

// ---------------------------------------------------------------------------------------------
// Kill and delete
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn e9_kill_of_a_queued_task_ends_it_at_once_and_it_never_starts() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.hold(true);
    let id = harness.submit(&body("waiting", 1.0, "")).await;
    assert_eq!(harness.metrics.queue_depth.get(), 1);

    harness.scheduler.kill(&id).await.unwrap();
    let task = harness.task(&id).await;
    assert_eq!(history(&task), vec![Queued, Killed], "KILLED at once");
    assert_eq!(
        harness.metrics.queue_depth.get(),
        0,
        "removed from the queue"
    );

    harness.fake.hold(false);
    let later = harness.submit(&body("later", 1.0, "")).await;
    harness.wait_state(&later, Running).await;
    assert!(harness.fake.start_attempts(&id).is_empty(), "never started");
    assert_eq!(history(&harness.task(&id).await), vec![Queued, Killed]);
}

#[tokio::test]
async fn kill_of_a_running_task_terminates_then_kills_it_once_stopped() {
    let harness = Harness::start(4.0, config()).await;
    let id = harness.submit(&body("victim", 1.0, "")).await;
    harness.wait_state(&id, Running).await;
    harness.scheduler.kill(&id).await.unwrap();
    let task = harness.wait_state(&id, Killed).await;

    assert_eq!(
        history(&task),
        vec![Queued, Staging, Running, Terminating, Killed]
    );
    let run = harness.fake.run_of(&id);
    assert!(harness.fake.stopped(&run.run_id));
    eventually(
        "the container is removed and its resources are given back",
        || {
            let fake = harness.fake.clone();
            let run_id = run.run_id.clone();
            async move { fake.destroyed(&run_id) && fake.free_now().cpus == 4.0 }
        },
    )
    .await;
}

#[tokio::test]
async fn kill_while_the_container_is_starting_ends_killed_without_running() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.gate_starts(false);
    let id = harness.submit(&body("starting", 1.0, "")).await;
    harness.wait_state(&id, Staging).await;
    let fake = harness.fake.clone();
    eventually("the start to be under way", || {
        let fake = fake.clone();
        async move { fake.starts_waiting() == 1 }
    })
    .await;
    harness.scheduler.kill(&id).await.unwrap();
    assert_eq!(harness.task(&id).await.current_state(), Some(Terminating));

    harness.fake.gate_starts(true);
    let task = harness.wait_state(&id, Killed).await;
    assert_eq!(history(&task), vec![Queued, Staging, Terminating, Killed]);
    let run = harness.fake.run_of(&id);
    assert!(
        harness.fake.stopped(&run.run_id),
        "the started container is stopped"
    );
    eventually(
        "the container is removed and its resources are given back",
        || {
            let fake = harness.fake.clone();
            let run_id = run.run_id.clone();
            async move { fake.destroyed(&run_id) && fake.free_now().cpus == 4.0 }
        },
    )
    .await;
}

#[tokio::test]
async fn kill_during_retry_back_off_ends_the_task_and_it_is_not_relaunched() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.script("backing-off", &[Attempt::StartFails]);
    let id = harness
        .submit(&body("backing-off", 1.0, r#""retries":1"#))
        .await;
    harness
        .wait_until(&id, "queued for a retry", |task| {
            history(task) == vec![Queued, Staging, Failed, Queued]
        })
        .await;
    harness.scheduler.kill(&id).await.unwrap();
    assert_eq!(
        history(&harness.task(&id).await),
        vec![Queued, Staging, Failed, Queued, Killed]
    );
    // Longer than the first back-off (1 s): a leftover queue entry would be launched by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(harness.fake.start_attempts(&id), vec![0]);
    assert_eq!(harness.metrics.queue_depth.get(), 0);
}

#[tokio::test]
async fn kill_of_an_ended_or_unknown_task_is_refused() {
    let harness = Harness::start(4.0, config()).await;
    harness
        .fake
        .script("quick", &[Attempt::Runs(Ending::Exits(0))]);
    let id = harness.submit(&body("quick", 1.0, "")).await;
    harness.wait_state(&id, Finished).await;

    assert_eq!(
        harness.scheduler.kill(&id).await,
        Err(KillError::AlreadyTerminal {
            id: id.clone(),
            state: Finished
        })
    );
    assert_eq!(history(&harness.task(&id).await).last(), Some(&Finished));
    let unknown = unknown_id();
    assert_eq!(
        harness.scheduler.kill(&unknown).await,
        Err(KillError::NotFound(unknown))
    );
}

#[tokio::test]
async fn e2_kill_keeps_the_masked_env_value_stored_in_clear() {
    let harness = Harness::start(4.0, config()).await;
    let secret = r#""masked_env":{"TOKEN":"hunter2-secret"}"#;
    let running = harness.submit(&body("running", 1.0, secret)).await;
    harness.wait_state(&running, Running).await;
    harness.scheduler.kill(&running).await.unwrap();
    harness.wait_state(&running, Killed).await;
    harness.fake.hold(true);
    let queued = harness.submit(&body("queued", 1.0, secret)).await;
    harness.scheduler.kill(&queued).await.unwrap();

    for id in [&running, &queued] {
        let stored = harness.store.get(id).await.unwrap().unwrap();
        let value = stored.request.masked_env.get("TOKEN").map(|s| s.expose());
        assert_eq!(value, Some("hunter2-secret"), "task {id} after the kill");
    }
}

#[tokio::test]
async fn delete_refuses_unknown_and_unfinished_tasks_and_removes_ended_ones() {
    let harness = Harness::start(1.0, config()).await;
    let running = harness.submit(&body("running", 1.0, "")).await;
    harness.wait_state(&running, Running).await;
    let queued = harness.submit(&body("queued", 1.0, "")).await;

    // E-24: only ended tasks can be deleted.
    for (id, state) in [(&running, Running), (&queued, Queued)] {
        assert_eq!(
            harness.scheduler.delete(id).await,
            Err(DeleteError::NotTerminal {
                id: id.clone(),
                state
            })
        );
    }
    // E-3: an unknown id is not found.
    let unknown = unknown_id();
    assert_eq!(
        harness.scheduler.delete(&unknown).await,
        Err(DeleteError::NotFound(unknown))
    );

    harness.fake.exit(&running, 0);
    harness.wait_state(&running, Finished).await;
    harness.scheduler.delete(&running).await.unwrap();
    assert_eq!(harness.scheduler.get(&running).await.unwrap(), None);
    assert_eq!(
        harness.scheduler.delete(&running).await,
        Err(DeleteError::NotFound(running.clone()))
    );
    // The queued task got the freed CPU.
    harness.wait_state(&queued, Running).await;
}

#[tokio::test]
async fn e6_deleting_a_killed_queued_task_leaves_no_phantom_queue_entry() {
    let harness = Harness::start(1.0, config()).await;
    let blocker = harness.submit(&body("blocker", 1.0, "")).await;
    harness.wait_state(&blocker, Running).await;
    let doomed = harness.submit(&body("doomed", 1.0, "")).await;
    let next = harness.submit(&body("next", 1.0, "")).await;
    assert_eq!(harness.metrics.queue_depth.get(), 2);

    harness.scheduler.kill(&doomed).await.unwrap();
    harness.scheduler.delete(&doomed).await.unwrap();
    assert_eq!(harness.metrics.queue_depth.get(), 1);

    harness.fake.exit(&blocker, 0);
    harness.wait_state(&next, Running).await;
    assert_eq!(harness.metrics.queue_depth.get(), 0);
    assert_eq!(harness.fake.started_order(), vec![blocker, next]);
    assert!(harness.fake.start_attempts(&doomed).is_empty());
    assert_eq!(harness.scheduler.get(&doomed).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Admission
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn full_queue_refuses_submissions_with_the_queue_size() {
    let mut settings = config();
    settings.queue_size = 2;
    let harness = Harness::start(4.0, settings).await;
    harness.fake.hold(true);
    let first = harness.submit(&body("a", 1.0, "")).await;
    harness.submit(&body("b", 1.0, "")).await;

    assert_eq!(
        harness.try_submit(&body("c", 1.0, ""), None).await,
        Err(SubmitError::QueueFull { capacity: 2 })
    );
    // A kill frees a place in the queue.
    harness.scheduler.kill(&first).await.unwrap();
    harness.submit(&body("d", 1.0, "")).await;
    assert_eq!(harness.metrics.submissions_queue_full.get(), 1);
}

#[tokio::test]
async fn tasks_that_can_never_fit_are_refused_as_unsatisfiable() {
    let harness = Harness::start(4.0, config()).await;
    let too_many_cpus = harness.try_submit(&body("huge", 16.0, ""), None).await;
    match too_many_cpus {
        Err(SubmitError::Unsatisfiable(reason)) => assert!(reason.contains("cpu"), "{reason}"),
        other => panic!("expected Unsatisfiable, got {other:?}"),
    }
    let ports: Vec<String> = (0..11)
        .map(|n| format!(r#"{{"container_port":{}}}"#, 8000 + n))
        .collect();
    let too_many_ports = format!(r#""ports":[{}]"#, ports.join(","));
    match harness
        .try_submit(&body("ports", 1.0, &too_many_ports), None)
        .await
    {
        Err(SubmitError::Unsatisfiable(reason)) => assert!(reason.contains("ports"), "{reason}"),
        other => panic!("expected Unsatisfiable, got {other:?}"),
    }
    let listed = harness
        .scheduler
        .list(
            StateFilter::parse(Some("queued,active,terminated")).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert!(listed.is_empty(), "refused tasks are not stored");
}

#[tokio::test]
async fn policy_forbids_privileged_tasks_and_host_paths() {
    let harness = Harness::start(4.0, config()).await;
    match harness
        .try_submit(&body("root", 1.0, r#""privileged":true"#), None)
        .await
    {
        Err(SubmitError::Forbidden(reason)) => {
            assert!(reason.starts_with("privileged"), "{reason}")
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let mount = r#""volumes":[{"host_path":"/etc","container_path":"/host-etc"}]"#;
    match harness.try_submit(&body("mount", 1.0, mount), None).await {
        Err(SubmitError::Forbidden(reason)) => {
            assert!(reason.contains("volumes[0].host_path"), "{reason}")
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }

    let mut permissive = config();
    permissive.policy = Policy {
        allowed_host_paths: vec!["/srv".into()],
        allow_privileged: true,
    };
    let allowed = Harness::start(4.0, permissive).await;
    let mount = r#""privileged":true,"volumes":[{"host_path":"/srv/x","container_path":"/x"}]"#;
    allowed.submit(&body("allowed", 1.0, mount)).await;
}

// ---------------------------------------------------------------------------------------------
// Queue order
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn e5_small_task_does_not_overtake_a_waiting_large_one() {
    let harness = Harness::start(2.0, config()).await;
    let holder = harness.submit(&body("holder", 1.0, "")).await;
    harness.wait_state(&holder, Running).await;
    let large = harness.submit(&body("large", 2.0, "")).await;
    let small = harness.submit(&body("small", 1.0, "")).await;
    // Gives a core without the reservation time to start the small task on the free CPU.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(harness.task(&small).await.current_state(), Some(Queued));

    harness.fake.exit(&holder, 0);
    harness.wait_state(&large, Running).await;
    assert_eq!(harness.task(&small).await.current_state(), Some(Queued));
    harness.fake.exit(&large, 0);
    harness.wait_state(&small, Running).await;
    assert_eq!(harness.fake.started_order(), vec![holder, large, small]);
}

#[tokio::test]
async fn task_waiting_for_a_port_does_not_block_a_later_task_without_ports() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeBackend::new(4.0, 4096.0, (31000, 31000), &dir.path().join("sandboxes"));
    let harness = Harness::start_in(dir.path(), fake, config()).await;
    let port = r#""ports":[{"container_port":80}]"#;
    let first = harness.submit(&body("port1", 1.0, port)).await;
    let task = harness.wait_state(&first, Running).await;
    assert_eq!(task.host_ports, vec![31000]);
    let second = harness.submit(&body("port2", 1.0, port)).await;
    let plain = harness.submit(&body("plain", 1.0, "")).await;

    harness.wait_state(&plain, Running).await;
    assert_eq!(harness.task(&second).await.current_state(), Some(Queued));
    harness.fake.exit(&first, 0);
    let task = harness.wait_state(&second, Running).await;
    assert_eq!(task.host_ports, vec![31000], "the port was given back");
}

// ---------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn same_idempotency_key_and_request_returns_the_same_task() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.hold(true);
    let request = body("once", 1.0, "");
    let first = harness.try_submit(&request, Some("key-1")).await.unwrap();
    let again = harness.try_submit(&request, Some("key-1")).await.unwrap();

    assert!(first.created);
    assert!(!again.created);
    assert_eq!(again.id, first.id);
    assert_eq!(harness.metrics.queue_depth.get(), 1, "queued once");
    let listed = harness
        .scheduler
        .list(StateFilter::parse(None).unwrap(), Some("once"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn same_idempotency_key_with_another_request_is_a_conflict() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.hold(true);
    let first = harness
        .try_submit(&body("one", 1.0, ""), Some("key-2"))
        .await
        .unwrap();
    assert_eq!(
        harness
            .try_submit(&body("two", 1.0, ""), Some("key-2"))
            .await,
        Err(SubmitError::IdempotencyConflict {
            key: "key-2".to_owned(),
            existing: first.id,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Ids of the tasks of the restart test.
struct Restarted {
    running: TaskId,
    exited_while_down: TaskId,
    queued: TaskId,
    lost_retried: TaskId,
    lost_for_good: TaskId,
}

#[test]
fn e4_restart_relaunches_queued_tasks_follows_running_ones_and_retries_lost_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sandboxes = dir.path().join("sandboxes");

    // Before the restart: three tasks running, one queued behind them.
    let before = runtime();
    let (ids, (running_run, exited_run)) = before.block_on(async {
        let fake = FakeBackend::new(4.0, 4096.0, (31000, 31009), &sandboxes);
        let harness = Harness::start_in(dir.path(), fake, config()).await;
        let running = harness.submit(&body("survivor", 1.0, "")).await;
        let exited_while_down = harness.submit(&body("exited", 1.0, "")).await;
        let lost_retried = harness.submit(&body("lost1", 1.0, r#""retries":1"#)).await;
        let lost_for_good = harness.submit(&body("lost0", 1.0, r#""retries":0"#)).await;
        for id in [&running, &exited_while_down, &lost_retried, &lost_for_good] {
            harness.wait_state(id, Running).await;
        }
        let queued = harness.submit(&body("waiting", 1.0, "")).await;
        assert_eq!(harness.task(&queued).await.current_state(), Some(Queued));
        let runs = (
            harness.fake.run_of(&running),
            harness.fake.run_of(&exited_while_down),
        );
        let ids = Restarted {
            running,
            exited_while_down,
            queued,
            lost_retried,
            lost_for_good,
        };
        (ids, runs)
    });
    // The process "dies": every task of the old scheduler is dropped with its runtime.
    drop(before);

    // After: only the survivor's container is found again.
    let after = runtime();
    after.block_on(async {
        let fake = FakeBackend::new(4.0, 4096.0, (31000, 31009), &sandboxes);
        fake.add_recovered(RecoveredRun {
            task_id: ids.running.clone(),
            attempt: 0,
            run: running_run,
            state: RecoveredState::Running,
        });
        let exited = RunOutcome {
            exit_code: 2,
            oom_killed: false,
            signal: None,
        };
        fake.add_recovered(RecoveredRun {
            task_id: ids.exited_while_down.clone(),
            attempt: 0,
            run: exited_run,
            state: RecoveredState::Exited(exited),
        });
        let harness = Harness::start_in(dir.path(), fake, config()).await;

        let queued = harness.wait_state(&ids.queued, Running).await;
        assert_eq!(history(&queued), vec![Queued, Staging, Running]);

        let lost = harness.wait_state(&ids.lost_for_good, Lost).await;
        assert_eq!(history(&lost), vec![Queued, Staging, Running, Lost]);
        let reason = lost.failure_reason.unwrap();
        assert!(reason.contains("vanished"), "{reason}");

        let retried = harness
            .wait_until(&ids.lost_retried, "relaunched after being lost", |task| {
                task.retry == 1 && task.current_state() == Some(Running)
            })
            .await;
        assert_eq!(
            history(&retried),
            vec![Queued, Staging, Running, Lost, Queued, Staging, Running]
        );
        assert_eq!(harness.fake.start_attempts(&ids.lost_retried), vec![1]);

        // The survivor is followed to its end, not launched again.
        assert_eq!(
            harness.task(&ids.running).await.current_state(),
            Some(Running)
        );
        harness.fake.exit(&ids.running, 0);
        let survivor = harness.wait_state(&ids.running, Finished).await;
        assert_eq!(history(&survivor), vec![Queued, Staging, Running, Finished]);
        assert_eq!(survivor.exit_code, Some(0));
        assert!(harness.fake.start_attempts(&ids.running).is_empty());
        assert_eq!(harness.fake.start_attempts(&ids.queued), vec![0]);

        // A container that exited while the service was down gets its end recorded.
        let exited = harness.wait_state(&ids.exited_while_down, Failed).await;
        assert_eq!(history(&exited), vec![Queued, Staging, Running, Failed]);
        assert_eq!(exited.exit_code, Some(2));
        assert!(harness
            .fake
            .start_attempts(&ids.exited_while_down)
            .is_empty());
        // The gauges start from the store's counts and follow every change since.
        assert_gauges_match_the_store(&harness).await;
    });
}

// ---------------------------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------------------------

/// Takes every pending callback out of the outbox, in delivery order.
async fn drain_outbox(harness: &Harness) -> Vec<eremetic::outbox::PendingCallback> {
    let far_future = OffsetDateTime::now_utc() + time::Duration::days(1);
    let mut drained = Vec::new();
    loop {
        let due = harness.store.due(far_future, 100).await.unwrap();
        if due.is_empty() {
            return drained;
        }
        for callback in due {
            harness.store.delivered(callback.id).await.unwrap();
            drained.push(callback);
        }
    }
}

#[tokio::test]
async fn callbacks_are_enqueued_for_every_status_change_without_the_masked_value() {
    let harness = Harness::start(4.0, config()).await;
    let extra =
        r#""callback_uri":"http://127.0.0.1:9/hook","masked_env":{"TOKEN":"hunter2-secret"}"#;
    let id = harness.submit(&body("called", 1.0, extra)).await;
    harness.wait_state(&id, Running).await;
    harness.fake.exit(&id, 0);
    harness.wait_state(&id, Finished).await;

    let callbacks = drain_outbox(&harness).await;
    let statuses: Vec<String> = callbacks
        .iter()
        .map(|callback| {
            assert_eq!(callback.task_id, id);
            assert_eq!(callback.url, "http://127.0.0.1:9/hook");
            assert!(!callback.body.contains("hunter2"), "{}", callback.body);
            let body: serde_json::Value = serde_json::from_str(&callback.body).unwrap();
            assert_eq!(body["task_id"], id.as_str());
            body["status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(statuses, ["TASK_STAGING", "TASK_RUNNING", "TASK_FINISHED"]);
    assert!(
        harness.callbacks.notified().now_or_never().is_some(),
        "the callback worker was woken"
    );
}

#[tokio::test]
async fn task_without_callback_uri_enqueues_no_callback() {
    let harness = Harness::start(4.0, config()).await;
    harness
        .fake
        .script("silent", &[Attempt::Runs(Ending::Exits(0))]);
    let id = harness.submit(&body("silent", 1.0, "")).await;
    harness.wait_state(&id, Finished).await;
    assert!(drain_outbox(&harness).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Concurrency and metrics
// ---------------------------------------------------------------------------------------------

/// Whether a history is a well-formed lifecycle without retries that ends in `end`: starts
/// QUEUED, every step is a legal transition, and only the last entry is terminal.
fn well_formed(states: &[TaskState], end: TaskState) -> bool {
    let legal = |from: TaskState, to: TaskState| match from {
        Queued => matches!(to, Staging | Killed),
        Staging => matches!(to, Running | Terminating | Failed | Lost | Killed),
        Running => matches!(to, Terminating | Finished | Failed | Lost),
        Terminating => matches!(to, Killed),
        _ => false,
    };
    states.first() == Some(&Queued)
        && states.last() == Some(&end)
        && states.windows(2).all(|pair| legal(pair[0], pair[1]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e26_concurrent_submissions_and_kills_end_in_consistent_states() {
    let harness = Arc::new(Harness::start(2.0, config()).await);
    let mut workers = Vec::new();
    for n in 0..50 {
        let harness = harness.clone();
        workers.push(tokio::spawn(async move {
            let id = harness.submit(&body(&format!("c{n}"), 0.1, "")).await;
            for _ in 0..(n % 7) {
                tokio::task::yield_now().await;
            }
            harness.scheduler.kill(&id).await.unwrap();
            id
        }));
    }
    let mut ids = Vec::new();
    for worker in workers {
        ids.push(worker.await.unwrap());
    }
    for id in &ids {
        let task = harness.wait_state(id, Killed).await;
        let states = history(&task);
        assert!(well_formed(&states, Killed), "task {id}: {states:?}");
    }
    let fake = harness.fake.clone();
    eventually("every run removed and every resource given back", || {
        let fake = fake.clone();
        let ids = ids.clone();
        async move {
            let all_destroyed = ids.iter().all(|id| {
                !fake.started_order().contains(id) || fake.destroyed(&fake.run_of(id).run_id)
            });
            all_destroyed && fake.free_now().cpus == 2.0
        }
    })
    .await;
    assert_eq!(harness.metrics.tasks_in(Killed).get(), 50);
    for state in [Queued, Staging, Running, Terminating] {
        assert_eq!(harness.metrics.tasks_in(state).get(), 0, "{state}");
    }
    assert_eq!(harness.metrics.queue_depth.get(), 0);
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

#[tokio::test]
async fn task_gauges_match_the_store_counts_after_a_mix_of_runs() {
    let harness = Harness::start(3.0, config()).await;
    harness
        .fake
        .script("fails", &[Attempt::Runs(Ending::Exits(1))]);
    harness
        .fake
        .script("finishes", &[Attempt::Runs(Ending::Exits(0))]);
    let failed = harness.submit(&body("fails", 1.0, "")).await;
    let finished = harness.submit(&body("finishes", 1.0, "")).await;
    let deleted = harness
        .submit(&body("deleted", 1.0, r#""retries":0"#))
        .await;
    harness.wait_state(&failed, Failed).await;
    harness.wait_state(&finished, Finished).await;
    harness.wait_state(&deleted, Running).await;
    harness.scheduler.kill(&deleted).await.unwrap();
    harness.wait_state(&deleted, Killed).await;
    harness.scheduler.delete(&deleted).await.unwrap();
    let running = harness.submit(&body("runs", 1.0, "")).await;
    let stopping = harness.submit(&body("stopping", 1.0, "")).await;
    harness.wait_state(&running, Running).await;
    harness.wait_state(&stopping, Running).await;
    harness.fake.hold(true);
    let queued = harness.submit(&body("queued", 1.0, "")).await;
    let killed = harness.submit(&body("killed", 1.0, "")).await;
    harness.scheduler.kill(&killed).await.unwrap();
    assert_eq!(harness.task(&queued).await.current_state(), Some(Queued));

    let counts = assert_gauges_match_the_store(&harness).await;
    assert_eq!(counts.get(&Running), Some(&2));
    assert_eq!(harness.metrics.tasks_running.get(), 2);
    assert_eq!(harness.metrics.queue_depth.get(), 1);
    let rendered = harness.metrics.render();
    assert!(
        rendered.contains(r#"eremetic_tasks{state="TASK_RUNNING"} 2"#),
        "{rendered}"
    );
}
