//! Lifecycle: runs to their end, failures and retries, lost containers, an unreachable backend,
//! timeouts.

use super::*;

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
async fn a_lost_run_holds_its_resources_until_removed_while_the_relaunch_runs_and_stays_killable() {
    let harness = Harness::start(4.0, config()).await;
    harness
        .fake
        .script("slow-rm", &[Attempt::Runs(Ending::Vanishes)]);
    // Removing the vanished container takes longer than the retry back-off (1 s).
    harness.fake.gate_destroys(false);
    let id = harness
        .submit(&body("slow-rm", 1.0, r#""retries":1"#))
        .await;
    let old_run = format!("{id}.0");
    let new_run = format!("{id}.1");
    // Runs are separate units of the backend (a new run id per attempt): the relaunch does
    // not wait for the old container's removal, and the two never share resources.
    harness
        .wait_until(&id, "the relaunch running", |task| {
            task.retry == 1 && task.current_state() == Some(Running)
        })
        .await;
    assert!(!harness.fake.destroyed(&old_run));
    assert_eq!(
        harness.fake.free_now().cpus,
        2.0,
        "the old run keeps its CPU until its container is removed"
    );
    harness.fake.gate_destroys(true);
    let fake = harness.fake.clone();
    eventually("the old container is removed", || {
        let fake = fake.clone();
        let old_run = old_run.clone();
        async move { fake.destroyed(&old_run) }
    })
    .await;
    assert!(!harness.fake.destroyed(&new_run));

    // The relaunched run must still be the task's run: killable, and its resources held.
    assert_eq!(
        harness.fake.free_now().cpus,
        3.0,
        "the relaunch holds 1 CPU"
    );
    harness.scheduler.kill(&id).await.unwrap();
    let task = harness
        .wait_until_within(&id, "TASK_KILLED", Duration::from_secs(5), |task| {
            task.current_state() == Some(Killed)
        })
        .await;
    assert_eq!(
        history(&task),
        vec![
            Queued,
            Staging,
            Running,
            Lost,
            Queued,
            Staging,
            Running,
            Terminating,
            Killed
        ]
    );
    assert!(harness.fake.stopped(&format!("{id}.1")));
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
        vec![0, 1],
        "the relaunch gets a run id of its own"
    );
    assert_eq!(task.attempt, Some(1));
}

#[tokio::test]
async fn run_ids_are_unique_across_requeues_and_retries() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.set_unreachable(true);
    harness.fake.script("mixed", &[Attempt::StartFails]);
    let id = harness.submit(&body("mixed", 1.0, r#""retries":1"#)).await;
    harness
        .wait_until(&id, "back in the queue", |task| {
            history(task) == vec![Queued, Staging, Queued]
        })
        .await;
    harness.fake.set_unreachable(false);
    let running = harness.wait_state(&id, Running).await;
    assert_eq!(
        history(&running),
        vec![Queued, Staging, Queued, Staging, Failed, Queued, Staging, Running]
    );
    assert_eq!(running.retry, 1, "only the failed start used a retry");
    assert_eq!(running.attempt, Some(2), "stored with the run");
    assert_eq!(harness.fake.start_attempts(&id), vec![0, 1, 2]);
    assert_eq!(harness.fake.run_of(&id).run_id, format!("{id}.2"));
    harness.fake.exit(&id, 0);
    harness.wait_state(&id, Finished).await;
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
