//! Kill and delete.

use super::*;

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
