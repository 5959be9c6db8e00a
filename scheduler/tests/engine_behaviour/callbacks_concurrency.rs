//! Callbacks, concurrency and metrics.

use super::*;

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

/// The statuses of the callbacks in the outbox, in delivery order.
async fn callback_statuses(harness: &Harness) -> Vec<String> {
    drain_outbox(harness)
        .await
        .iter()
        .map(|callback| {
            let body: serde_json::Value = serde_json::from_str(&callback.body).unwrap();
            body["status"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn by_default_only_the_end_is_posted_and_a_retried_attempt_is_not_an_end() {
    let harness = Harness::start(4.0, config()).await;
    harness.fake.script(
        "retried",
        &[Attempt::StartFails, Attempt::Runs(Ending::Exits(0))],
    );
    let extra = r#""callback_uri":"http://127.0.0.1:9/hook","retries":1"#;
    let id = harness.submit(&body("retried", 1.0, extra)).await;
    harness.wait_state(&id, Finished).await;
    assert_eq!(
        history(&harness.task(&id).await),
        vec![Queued, Staging, Failed, Queued, Staging, Running, Finished]
    );
    assert_eq!(callback_statuses(&harness).await, ["TASK_FINISHED"]);

    harness.fake.script("given-up", &[Attempt::StartFails]);
    let extra = r#""callback_uri":"http://127.0.0.1:9/hook","retries":0"#;
    let id = harness.submit(&body("given-up", 1.0, extra)).await;
    harness.wait_state(&id, Failed).await;
    assert_eq!(callback_statuses(&harness).await, ["TASK_FAILED"]);
}

#[tokio::test]
async fn a_server_set_to_all_states_posts_every_change_unless_the_request_says_terminal() {
    let mut all = config();
    all.callback_states = CallbackStates::All;
    let harness = Harness::start(4.0, all).await;
    harness
        .fake
        .script("every", &[Attempt::Runs(Ending::Exits(0))]);
    let id = harness
        .submit(&body(
            "every",
            1.0,
            r#""callback_uri":"http://127.0.0.1:9/hook""#,
        ))
        .await;
    harness.wait_state(&id, Finished).await;
    assert_eq!(
        callback_statuses(&harness).await,
        ["TASK_STAGING", "TASK_RUNNING", "TASK_FINISHED"]
    );
    harness
        .fake
        .script("ends", &[Attempt::Runs(Ending::Exits(0))]);
    let extra = r#""callback_uri":"http://127.0.0.1:9/hook","callback_states":"terminal""#;
    let id = harness.submit(&body("ends", 1.0, extra)).await;
    harness.wait_state(&id, Finished).await;
    assert_eq!(callback_statuses(&harness).await, ["TASK_FINISHED"]);
}

#[tokio::test]
async fn callbacks_are_enqueued_for_every_status_change_a_request_opts_into_without_the_masked_value(
) {
    let harness = Harness::start(4.0, config()).await;
    let extra = r#""callback_uri":"http://127.0.0.1:9/hook","callback_states":"all",
        "masked_env":{"TOKEN":"hunter2-secret"}"#;
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
