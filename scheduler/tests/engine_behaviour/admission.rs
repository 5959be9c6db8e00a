//! Admission (queue size, resources, policy), queue order and idempotency.

use super::*;

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
async fn abandoned_submission_neither_leaks_queue_capacity_nor_strands_its_task() {
    // An HTTP client that disconnects while its task is being stored drops the submit future.
    let mut settings = config();
    settings.queue_size = 1;
    let harness = Harness::start(4.0, settings).await;
    let abandoned_body = body("abandoned", 1.0, "");
    let mut abandoned = 0;
    while abandoned == 0 {
        // The first poll stops at the store write (a commit with fsync on another thread);
        // in the rare case it completed already, the task is simply accepted: try again.
        match harness.try_submit(&abandoned_body, None).now_or_never() {
            None => abandoned += 1,
            Some(result) => {
                result.unwrap();
            }
        }
    }
    let all = StateFilter::parse(Some("queued,active,terminated")).unwrap();
    let scheduler = harness.scheduler.clone();
    let id = {
        let stored = || {
            let scheduler = scheduler.clone();
            async move { scheduler.list(all, Some("abandoned")).await.unwrap() }
        };
        eventually("the abandoned task to be committed", || {
            let stored = stored();
            async move { !stored.await.is_empty() }
        })
        .await;
        stored().await.last().unwrap().id.clone()
    };

    // The queue holds at most one task and none waits: a new submission must be accepted.
    let accepted = harness.try_submit(&body("next", 1.0, ""), None).await;
    assert!(accepted.is_ok(), "queue capacity leaked: {accepted:?}");
    // The stored task must not stay TASK_QUEUED forever.
    harness
        .wait_until_within(&id, "TASK_RUNNING", Duration::from_secs(5), |task| {
            task.current_state() == Some(Running)
        })
        .await;
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

    let shared = tempfile::tempdir().unwrap();
    let inside = shared.path().join("x");
    std::fs::create_dir(&inside).unwrap();
    let mut permissive = config();
    permissive.policy = Policy {
        allowed_host_paths: vec![shared.path().to_path_buf()],
        allow_privileged: true,
        allow_volumes_from: true,
    };
    let allowed = Harness::start(4.0, permissive).await;
    let mount = format!(
        r#""privileged":true,"volumes":[{{"host_path":"{}","container_path":"/x"}}]"#,
        inside.display()
    );
    allowed.submit(&body("allowed", 1.0, &mount)).await;
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
async fn retried_submission_gets_its_task_even_when_the_queue_is_full() {
    let mut settings = config();
    settings.queue_size = 1;
    let harness = Harness::start(4.0, settings).await;
    harness.fake.hold(true);
    let request = body("retried", 1.0, "");
    let first = harness.try_submit(&request, Some("key-3")).await.unwrap();
    // The queue is full with the task itself; the client's retry must not be told 503.
    let again = harness.try_submit(&request, Some("key-3")).await;
    assert_eq!(
        again.map(|accepted| (accepted.id, accepted.created)),
        Ok((first.id, false))
    );
}

#[tokio::test]
async fn reused_idempotency_key_with_another_request_is_a_conflict_even_when_the_queue_is_full() {
    let mut settings = config();
    settings.queue_size = 1;
    let harness = Harness::start(4.0, settings).await;
    harness.fake.hold(true);
    let first = harness
        .try_submit(&body("first", 1.0, ""), Some("key-4"))
        .await
        .unwrap();
    assert_eq!(
        harness
            .try_submit(&body("different", 1.0, ""), Some("key-4"))
            .await,
        Err(SubmitError::IdempotencyConflict {
            key: "key-4".to_owned(),
            existing: first.id,
        })
    );
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

#[tokio::test]
async fn launches_wait_with_the_reason_while_the_backend_holds_them_back_and_resume_after() {
    let harness = Harness::start(4.0, config()).await;
    let reason = "waiting: data_dir /x has 512 MiB free, below the floor of 1 GiB";
    harness.fake.block_launches(Some(reason));
    let id = harness.submit(&body("blocked", 1.0, "")).await;
    let task = harness
        .wait_until(&id, "a waiting reason", |task| {
            task.waiting_reason.is_some()
        })
        .await;
    assert_eq!(task.waiting_reason.as_deref(), Some(reason));
    assert_eq!(task.current_state(), Some(Queued));
    let all = StateFilter::parse(Some("queued")).unwrap();
    let listed = harness.scheduler.list(all, None).await.unwrap();
    assert_eq!(listed[0].waiting_reason.as_deref(), Some(reason));
    let page = harness.scheduler.list_page(all, None, 0, 10).await.unwrap();
    assert_eq!(page[0].1.waiting_reason.as_deref(), Some(reason));
    // Still waiting after several dispatcher rounds; the reason is never stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(harness.task(&id).await.current_state(), Some(Queued));
    let stored = harness.store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.waiting_reason, None);

    // Space comes back without any event that would wake the dispatcher.
    harness.fake.block_launches(None);
    let task = harness.wait_state(&id, Running).await;
    assert_eq!(task.waiting_reason, None);
}
