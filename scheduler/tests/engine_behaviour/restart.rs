//! Recovery after a restart.

use super::*;

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

#[test]
fn restart_while_launching_relaunches_under_a_new_run_id() {
    let dir = tempfile::tempdir().unwrap();
    let sandboxes = dir.path().join("sandboxes");
    let before = runtime();
    let id = before.block_on(async {
        let fake = FakeBackend::new(4.0, 4096.0, (31000, 31009), &sandboxes);
        fake.gate_starts(false);
        let harness = Harness::start_in(dir.path(), fake, config()).await;
        let id = harness.submit(&body("interrupted", 1.0, "")).await;
        let staging = harness.wait_state(&id, Staging).await;
        assert_eq!(staging.attempt, Some(0), "stored before the launch");
        let fake = harness.fake.clone();
        eventually("the launch is under way", || {
            let fake = fake.clone();
            async move { fake.starts_waiting() == 1 }
        })
        .await;
        id
    });
    // The process dies while the backend launches attempt 0.
    drop(before);

    let after = runtime();
    after.block_on(async {
        let fake = FakeBackend::new(4.0, 4096.0, (31000, 31009), &sandboxes);
        let harness = Harness::start_in(dir.path(), fake, config()).await;
        let task = harness.wait_state(&id, Running).await;
        assert_eq!(
            history(&task),
            vec![Queued, Staging, Queued, Staging, Running]
        );
        assert_eq!(task.retry, 0, "an interrupted launch uses no retry");
        assert_eq!(task.attempt, Some(1));
        assert_eq!(harness.fake.start_attempts(&id), vec![1]);
        assert_eq!(harness.fake.run_of(&id).run_id, format!("{id}.1"));
    });
}

/// A record of a version before `Task::attempt`: the field is absent from the stored JSON.
async fn store_old_record(store: &eremetic::store::Store, task: &eremetic::task::Task) {
    let mut json = serde_json::to_value(task).unwrap();
    json.as_object_mut().unwrap().remove("attempt").unwrap();
    let old: eremetic::task::Task = serde_json::from_value(json).unwrap();
    assert_eq!(old.attempt, None);
    store.insert(&old, None).await.unwrap();
}

#[tokio::test]
async fn records_of_older_versions_keep_their_run_and_relaunch_under_a_new_id() {
    let dir = tempfile::tempdir().unwrap();
    let sandboxes = dir.path().join("sandboxes");
    let at = OffsetDateTime::now_utc();
    // Two tasks an older version launched twice (retry 1: runs `.0` and `.1`).
    let old_task = |name: &str, states: &[TaskState]| {
        let request = engine_support::request(&body(name, 1.0, r#""retries":2"#));
        let mut task = eremetic::task::Task::new(
            TaskId::generate([name.len() as u8; 16]),
            name.into(),
            request,
            at,
        );
        for state in [Staging, Failed, Queued] {
            task.push_status(state, at);
        }
        for state in states {
            task.push_status(*state, at);
        }
        task.retry = 1;
        task.agent_id = Some("fake".into());
        task
    };
    let running = old_task("adopted", &[Staging, Running]);
    let staging = old_task("restaged", &[Staging]);
    {
        let store = eremetic::store::Store::open(&dir.path().join("eremetic.db")).unwrap();
        store_old_record(&store, &running).await;
        store_old_record(&store, &staging).await;
        store.close().await;
    }
    let fake = FakeBackend::new(4.0, 4096.0, (31000, 31009), &sandboxes);
    let run = eremetic::backend::Run {
        run_id: format!("{}.1", running.id),
        container_id: "fake-old".into(),
        sandbox: sandboxes.join(running.id.as_str()),
        host_ports: Vec::new(),
        hostname: "fake-host".into(),
        started_at: at,
    };
    fake.add_recovered(RecoveredRun {
        task_id: running.id.clone(),
        attempt: 1,
        run,
        state: RecoveredState::Running,
    });
    let harness = Harness::start_in(dir.path(), fake, config()).await;

    // The old run id `<id>.<retry>` is matched: adopted, not relaunched.
    harness.fake.exit(&running.id, 0);
    let finished = harness.wait_state(&running.id, Finished).await;
    assert!(harness.fake.start_attempts(&running.id).is_empty());
    assert_eq!(finished.current_attempt(), 1);
    // The one caught launching goes on after every number it may have used.
    let relaunched = harness.wait_state(&staging.id, Running).await;
    assert_eq!(harness.fake.start_attempts(&staging.id), vec![2]);
    assert_eq!(relaunched.attempt, Some(2));
    assert_eq!(relaunched.retry, 1);
}
