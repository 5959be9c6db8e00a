//! Contract of the durable task store (`eremetic::store::Store`) against real database files:
//! round trips, idempotency, filtering, saves racing deletes, recovery, retention, the callback
//! outbox, durability across a crashed process, and group commit under concurrency.

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use eremetic::outbox::{NewCallback, Outbox};
use eremetic::store::{InsertOutcome, Store, StoreError, META_FRAMEWORK_ID};
use eremetic::task::{StateFilter, Task, TaskId, TaskState};
use time::OffsetDateTime;

/// Environment variable that turns `child_inserts_until_it_aborts` into the crashing writer.
const CHILD_DB_VAR: &str = "EREMETIC_STORE_CHILD_DB";

/// How many acknowledged inserts the crashing child waits for before aborting.
const CHILD_ACKS: usize = 300;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

/// A fresh task id, unique within the process.
fn new_id() -> TaskId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 16];
    random[..8].copy_from_slice(&n.to_be_bytes());
    random[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    TaskId::generate(random)
}

/// A queued task named `name`, submitted at `submitted`, with a secret environment value.
fn queued(name: &str, submitted: i64) -> Task {
    let body = serde_json::json!({
        "image": "busybox", "command": "env", "cpu": 0.1, "mem": 32, "name": name,
        "env": {"PLAIN": "visible"}, "masked_env": {"TOKEN": "hunter2"},
    });
    let request = eremetic::api::parse_v1(&serde_json::to_vec(&body).unwrap()).unwrap();
    Task::new(new_id(), name.to_owned(), request, at(submitted))
}

/// `task` after moving to `state` at `time`.
fn moved(mut task: Task, state: TaskState, time: i64) -> Task {
    task.push_status(state, at(time));
    task
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("eremetic.db")
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&db_path(dir)).unwrap()
}

/// Overwrites the stored record of `id` with text that is not JSON, behind the store's back.
fn damage_record(dir: &tempfile::TempDir, id: &TaskId) {
    let raw = rusqlite::Connection::open(db_path(dir)).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    raw.execute(
        "UPDATE tasks SET record = '{not json' WHERE id = ?1",
        [id.as_str()],
    )
    .unwrap();
}

async fn insert(store: &Store, task: &Task) -> u64 {
    match store.insert(task, None).await.unwrap() {
        InsertOutcome::Inserted { seq } => seq,
        other => panic!("expected an insert, got {other:?}"),
    }
}

fn ids(tasks: &[Task]) -> Vec<&str> {
    tasks.iter().map(|task| task.id.as_str()).collect()
}

fn callback(task: &Task, body: &str, created: i64) -> NewCallback {
    NewCallback {
        task_id: task.id.clone(),
        url: "http://127.0.0.1:9/hook".into(),
        body: body.into(),
        created_at: at(created),
        give_up_at: at(created + 3_600),
    }
}

#[tokio::test]
async fn insert_and_get_round_trip_keeps_masked_env_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let task = queued("round-trip", 100);
    insert(&store, &task).await;
    let stored = store.get(&task.id).await.unwrap().unwrap();
    assert_eq!(stored, task);
    // The launch path needs the clear secret, so the store must keep it.
    assert_eq!(stored.request.masked_env["TOKEN"].expose(), "hunter2");
    assert_eq!(store.get(&new_id()).await.unwrap(), None);
    assert_eq!(store.path(), db_path(&dir));
}

#[tokio::test]
async fn reused_idempotency_key_returns_the_existing_task_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first = queued("first", 100);
    let key = Some(("key-1".to_owned(), "fingerprint-a".to_owned()));
    assert!(matches!(
        store.insert(&first, key.clone()).await.unwrap(),
        InsertOutcome::Inserted { .. }
    ));
    let retry = queued("retry", 101);
    let other_fingerprint = Some(("key-1".to_owned(), "fingerprint-b".to_owned()));
    assert_eq!(
        store.insert(&retry, other_fingerprint).await.unwrap(),
        InsertOutcome::Existing {
            task_id: first.id.clone(),
            fingerprint: "fingerprint-a".into()
        }
    );
    assert_eq!(store.get(&retry.id).await.unwrap(), None);
    assert_eq!(
        ids(&store.list(StateFilter::ALL, None).await.unwrap()),
        [first.id.as_str()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_with_one_key_create_one_task() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut handles = Vec::new();
    for n in 0..32 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let key = Some(("shared".to_owned(), "same".to_owned()));
            store.insert(&queued("dup", n), key).await.unwrap()
        }));
    }
    let mut inserted = 0;
    for handle in handles {
        if let InsertOutcome::Inserted { .. } = handle.await.unwrap() {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);
    assert_eq!(store.list(StateFilter::ALL, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn list_pages_continue_after_the_last_position_until_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let tasks: Vec<Task> = (0..5).map(|n| queued("paged", 100 + n)).collect();
    for task in &tasks {
        insert(&store, task).await;
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .list_page(StateFilter::default(), Some("paged"), after, 2)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        assert!(page.iter().all(|(seq, _)| *seq > after));
        after = page.last().unwrap().0;
        seen.extend(page.into_iter().map(|(_, task)| task.id.to_string()));
    }
    let expected: Vec<String> = tasks.iter().map(|task| task.id.to_string()).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn list_filters_by_group_and_name_in_submission_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = queued("alpha", 100);
    let b = queued("beta", 101);
    let c = queued("alpha", 102);
    let d = queued("alpha", 103);
    for task in [&a, &b, &c, &d] {
        insert(&store, task).await;
    }
    let c = moved(c, TaskState::Running, 110);
    let d = moved(d, TaskState::Finished, 111);
    assert!(store.save(&c, Vec::new()).await.unwrap());
    assert!(store.save(&d, Vec::new()).await.unwrap());

    let default = store.list(StateFilter::default(), None).await.unwrap();
    assert_eq!(ids(&default), [a.id.as_str(), b.id.as_str(), c.id.as_str()]);
    let all_alpha = store.list(StateFilter::ALL, Some("alpha")).await.unwrap();
    assert_eq!(
        ids(&all_alpha),
        [a.id.as_str(), c.id.as_str(), d.id.as_str()]
    );
    let terminated = StateFilter::parse(Some("terminated")).unwrap();
    assert_eq!(
        ids(&store.list(terminated, None).await.unwrap()),
        [d.id.as_str()]
    );
    let active = StateFilter::parse(Some("active")).unwrap();
    assert_eq!(
        ids(&store.list(active, Some("beta")).await.unwrap()),
        Vec::<&str>::new()
    );
    assert_eq!(store.list(StateFilter::ALL, None).await.unwrap()[2], c);
}

#[tokio::test]
async fn save_of_a_deleted_task_returns_false_and_queues_no_callback() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let task = queued("gone", 100);
    insert(&store, &task).await;
    assert!(store.delete(&task.id).await.unwrap());
    assert!(!store.delete(&task.id).await.unwrap());
    let ended = moved(task.clone(), TaskState::Killed, 105);
    let saved = store
        .save(&ended, vec![callback(&task, "killed", 105)])
        .await
        .unwrap();
    assert!(!saved);
    assert_eq!(store.get(&task.id).await.unwrap(), None);
    assert_eq!(store.due(at(10_000), 10).await.unwrap(), Vec::new());
}

#[tokio::test]
async fn delete_frees_the_idempotency_key_of_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first = queued("first", 100);
    let key = || Some(("key".to_owned(), "fp".to_owned()));
    store.insert(&first, key()).await.unwrap();
    assert!(store.delete(&first.id).await.unwrap());
    let second = queued("second", 101);
    assert!(matches!(
        store.insert(&second, key()).await.unwrap(),
        InsertOutcome::Inserted { .. }
    ));
}

#[tokio::test]
async fn seq_is_never_reused_after_deleting_the_newest_task() {
    let dir = tempfile::tempdir().unwrap();
    let first = queued("a", 100);
    let second = queued("b", 101);
    let store = open(&dir);
    let seq_a = insert(&store, &first).await;
    assert!(store.delete(&first.id).await.unwrap());
    store.close().await;
    let store = open(&dir);
    assert!(insert(&store, &second).await > seq_a);
}

#[tokio::test]
async fn unfinished_returns_queued_and_active_tasks_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let running = queued("running", 100);
    let done = queued("done", 101);
    let waiting = queued("waiting", 102);
    let killing = queued("killing", 103);
    let mut seqs = Vec::new();
    for task in [&running, &done, &waiting, &killing] {
        seqs.push(insert(&store, task).await);
    }
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]));
    let running = moved(running, TaskState::Running, 110);
    let killing = moved(
        moved(killing, TaskState::Running, 110),
        TaskState::Terminating,
        111,
    );
    store.save(&running, Vec::new()).await.unwrap();
    store.save(&killing, Vec::new()).await.unwrap();
    store
        .save(&moved(done, TaskState::Failed, 112), Vec::new())
        .await
        .unwrap();

    let unfinished = store.unfinished().await.unwrap();
    assert_eq!(
        unfinished,
        vec![(seqs[0], running), (seqs[2], waiting), (seqs[3], killing)]
    );
}

#[tokio::test]
async fn count_by_state_counts_current_states() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in 0..3 {
        insert(&store, &queued("q", n)).await;
    }
    let task = queued("r", 10);
    insert(&store, &task).await;
    store
        .save(&moved(task, TaskState::Running, 11), Vec::new())
        .await
        .unwrap();
    let mut counts = store.count_by_state().await.unwrap();
    counts.sort();
    assert_eq!(counts, [(TaskState::Queued, 3), (TaskState::Running, 1)]);
}

#[tokio::test]
async fn purge_deletes_only_tasks_that_ended_before_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let old = queued("old", 100);
    let recent = queued("recent", 100);
    let boundary = queued("boundary", 100);
    let active = queued("active", 100);
    let waiting = queued("waiting", 100);
    for task in [&old, &recent, &boundary, &active, &waiting] {
        insert(&store, task).await;
    }
    let old = moved(old, TaskState::Finished, 500);
    let recent = moved(recent, TaskState::Failed, 2_000);
    let boundary = moved(boundary, TaskState::Killed, 1_000);
    let active = moved(active, TaskState::Running, 200);
    for task in [&old, &recent, &boundary, &active] {
        store.save(task, Vec::new()).await.unwrap();
    }

    assert_eq!(store.purge_ended_before(at(1_000)).await.unwrap(), 1);
    assert_eq!(store.get(&old.id).await.unwrap(), None);
    for kept in [&recent, &boundary, &active, &waiting] {
        assert!(
            store.get(&kept.id).await.unwrap().is_some(),
            "{}",
            kept.name
        );
    }
    assert_eq!(store.purge_ended_before(at(1_000)).await.unwrap(), 0);
}

#[tokio::test]
async fn purge_removes_more_tasks_than_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut handles = Vec::new();
    for n in 0..2_500 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let task = queued("bulk", n);
            store
                .insert(&task, Some((format!("k{n}"), "fp".into())))
                .await
                .unwrap();
            store
                .save(&moved(task, TaskState::Finished, 100), Vec::new())
                .await
                .unwrap();
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(store.purge_ended_before(at(101)).await.unwrap(), 2_500);
    assert!(store.list(StateFilter::ALL, None).await.unwrap().is_empty());
    // The keys went with their tasks.
    let reused = store
        .insert(&queued("again", 1), Some(("k7".into(), "fp".into())))
        .await
        .unwrap();
    assert!(matches!(reused, InsertOutcome::Inserted { .. }));
}

#[tokio::test]
async fn outbox_delivers_only_the_oldest_callback_of_each_task() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let one = queued("one", 100);
    let two = queued("two", 100);
    insert(&store, &one).await;
    insert(&store, &two).await;
    let one_running = moved(one.clone(), TaskState::Running, 101);
    store
        .save(&one_running, vec![callback(&one, "one-running", 101)])
        .await
        .unwrap();
    store
        .save(
            &moved(two.clone(), TaskState::Running, 102),
            vec![callback(&two, "two-running", 102)],
        )
        .await
        .unwrap();
    store
        .save(
            &moved(one_running, TaskState::Finished, 103),
            vec![callback(&one, "one-finished", 103)],
        )
        .await
        .unwrap();

    let due = store.due(at(200), 10).await.unwrap();
    let bodies: Vec<&str> = due.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(bodies, ["one-running", "two-running"]);
    assert_eq!(due[0].task_id, one.id);
    assert_eq!((due[0].attempts, due[0].created_at), (0, at(101)));
    assert_eq!(
        (due[0].next_attempt_at, due[0].give_up_at),
        (at(101), at(3_701))
    );
    assert_eq!(store.due(at(200), 1).await.unwrap().len(), 1);
    // Nothing is due before its time.
    assert_eq!(store.due(at(100), 10).await.unwrap(), Vec::new());

    store.delivered(due[0].id).await.unwrap();
    let bodies: Vec<String> = store
        .due(at(200), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(bodies, ["two-running", "one-finished"]);
}

#[tokio::test]
async fn retry_at_postpones_a_callback_and_holds_back_the_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let task = queued("retry", 100);
    insert(&store, &task).await;
    let callbacks = vec![
        callback(&task, "first", 101),
        callback(&task, "second", 102),
    ];
    store.save(&task, callbacks).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(at(101)));

    let first = store.due(at(200), 10).await.unwrap().remove(0);
    let later = at(500) + time::Duration::milliseconds(250);
    store
        .retry_at(first.id, 1, later, "connection refused")
        .await
        .unwrap();
    assert_eq!(store.due(at(500), 10).await.unwrap(), Vec::new());
    // The second callback waits behind the first, so it does not make anything due sooner.
    assert_eq!(store.next_due().await.unwrap(), Some(later));
    let retried = store.due(later, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (first.id, 1));
    assert_eq!(retried[0].next_attempt_at, later);

    store.abandon(first.id, "gave up").await.unwrap();
    let remaining = store.due(later, 10).await.unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].body, "second");
    store.delivered(remaining[0].id).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), None);
}

#[tokio::test]
async fn pending_callbacks_survive_deletion_of_their_task_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let task = queued("cb", 100);
    {
        let store = open(&dir);
        insert(&store, &task).await;
        let ended = moved(task.clone(), TaskState::Finished, 101);
        store
            .save(&ended, vec![callback(&task, "finished", 101)])
            .await
            .unwrap();
        store.delete(&task.id).await.unwrap();
        store.close().await;
    }
    let store = open(&dir);
    let due = store.due(at(200), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].task_id.clone(), due[0].body.as_str()),
        (task.id, "finished")
    );
}

#[tokio::test]
async fn corrupt_record_fails_its_get_but_not_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let good = queued("good", 100);
    let bad = queued("bad", 101);
    insert(&store, &good).await;
    insert(&store, &bad).await;
    damage_record(&dir, &bad.id);

    let error = store.get(&bad.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(bad.id.as_str()) && message.contains("eremetic.db"),
        "{message}"
    );
    assert_eq!(store.get(&good.id).await.unwrap(), Some(good.clone()));
    assert_eq!(
        ids(&store.list(StateFilter::ALL, None).await.unwrap()),
        [good.id.as_str()]
    );
    assert_eq!(store.unfinished().await.unwrap().len(), 1);
}

#[tokio::test]
async fn unfinished_pages_go_past_a_page_of_damaged_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first = queued("first", 100);
    let bad = queued("bad", 101);
    let last = queued("last", 102);
    for task in [&first, &bad, &last] {
        insert(&store, task).await;
    }
    damage_record(&dir, &bad.id);

    // Pages of one record: the second holds only the damaged one, and still says where the
    // third starts.
    let mut seen = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    while let (page, Some(next)) = store.unfinished_page(after, 1).await.unwrap() {
        seen.extend(page.into_iter().map(|(_, task)| task.id.to_string()));
        after = next;
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, [first.id.to_string(), last.id.to_string()]);
    assert_eq!(store.unfinished().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_record_of_an_older_version_without_attempt_loads_and_its_next_run_id_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut task = moved(queued("old", 100), TaskState::Staging, 101);
    task.retry = 3;
    task.attempt = Some(3);
    insert(&store, &task).await;
    // What an older version wrote: the same record without the field.
    let mut json = serde_json::to_value(&task).unwrap();
    json.as_object_mut().unwrap().remove("attempt").unwrap();
    let raw = rusqlite::Connection::open(db_path(&dir)).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    raw.execute(
        "UPDATE tasks SET record = ?1 WHERE id = ?2",
        [json.to_string().as_str(), task.id.as_str()],
    )
    .unwrap();
    drop(raw);

    let loaded = store.get(&task.id).await.unwrap().unwrap();
    assert_eq!(loaded.attempt, None);
    assert_eq!(
        loaded.current_attempt(),
        3,
        "its run was named by the retry count"
    );
    assert_eq!(loaded.next_attempt(), 4);
    // Saved again by this version, the field is written and read back.
    let mut saved = loaded;
    saved.attempt = Some(saved.next_attempt());
    assert!(store.save(&saved, Vec::new()).await.unwrap());
    assert_eq!(store.get(&task.id).await.unwrap().unwrap().attempt, Some(4));
}

#[tokio::test]
async fn database_is_created_0600_inside_new_0700_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("nested").join("eremetic.db");
    let store = Store::open(&path).unwrap();
    insert(&store, &queued("perm", 1)).await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&dir.path().join("data").join("nested")), 0o700);
    assert_eq!(mode(&path.with_extension("db-wal")), 0o600);
}

#[tokio::test]
async fn database_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    open(&dir).close().await;
    let raw = rusqlite::Connection::open(db_path(&dir)).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    match Store::open(&db_path(&dir)) {
        Err(StoreError::NewerSchema { found: 99, .. }) => {}
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[tokio::test]
async fn meta_values_are_saved_replaced_cleared_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(store.meta_load(META_FRAMEWORK_ID).await.unwrap(), None);
    store.meta_save(META_FRAMEWORK_ID, "fw-1").await.unwrap();
    store.meta_save(META_FRAMEWORK_ID, "fw-2").await.unwrap();
    store.meta_save("other", "x").await.unwrap();
    // Dropped without close: an acknowledged save is on disk.
    drop(store);
    let store = open(&dir);
    assert_eq!(
        store.meta_load(META_FRAMEWORK_ID).await.unwrap().as_deref(),
        Some("fw-2")
    );
    assert!(store.meta_clear(META_FRAMEWORK_ID).await.unwrap());
    assert!(!store.meta_clear(META_FRAMEWORK_ID).await.unwrap());
    assert_eq!(store.meta_load(META_FRAMEWORK_ID).await.unwrap(), None);
    assert_eq!(
        store.meta_load("other").await.unwrap().as_deref(),
        Some("x")
    );
    store.close().await;
}

#[tokio::test]
async fn a_database_of_the_first_schema_gains_the_meta_table_and_keeps_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let task = queued("from version 1", 1);
    let store = open(&dir);
    insert(&store, &task).await;
    store.close().await;
    // Take the file back to schema version 1, as the previous release left it.
    let raw = rusqlite::Connection::open(db_path(&dir)).unwrap();
    raw.execute_batch("DROP TABLE meta; PRAGMA user_version = 1;")
        .unwrap();
    drop(raw);
    let store = open(&dir);
    assert_eq!(store.get(&task.id).await.unwrap(), Some(task));
    store.meta_save(META_FRAMEWORK_ID, "fw-9").await.unwrap();
    assert_eq!(
        store.meta_load(META_FRAMEWORK_ID).await.unwrap().as_deref(),
        Some("fw-9")
    );
    store.close().await;
}

#[tokio::test]
async fn writes_after_close_fail_with_closed_and_reads_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let task = queued("closing", 1);
    insert(&store, &task).await;
    let other_handle = store.clone();
    store.close().await;
    let error = other_handle
        .insert(&queued("late", 2), None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Closed { .. }), "{error}");
    assert_eq!(other_handle.get(&task.id).await.unwrap(), Some(task));
}

#[tokio::test]
async fn acknowledged_writes_are_readable_after_dropping_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let task = queued("durable", 1);
    let store = open(&dir);
    insert(&store, &task).await;
    let ended = moved(task, TaskState::Finished, 2);
    assert!(store.save(&ended, Vec::new()).await.unwrap());
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.get(&ended.id).await.unwrap(), Some(ended));
}

/// The crashing half of `acknowledged_inserts_survive_an_abort_of_the_writing_process`: run
/// only by that test (it sets [`CHILD_DB_VAR`]); prints `acked <id>` after each acknowledged
/// insert and aborts the process while other inserts are still in flight.
#[test]
#[ignore = "run as a child process by acknowledged_inserts_survive_an_abort_of_the_writing_process"]
fn child_inserts_until_it_aborts() {
    let path = PathBuf::from(std::env::var_os(CHILD_DB_VAR).expect("EREMETIC_STORE_CHILD_DB"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Store::open(&path).unwrap();
        let acked = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for worker in 0..16 {
            let (store, acked) = (store.clone(), Arc::clone(&acked));
            handles.push(tokio::spawn(async move {
                for n in 0.. {
                    let task = queued(&format!("w{worker}"), n);
                    store.insert(&task, None).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "acked {}", task.id).unwrap();
                    out.flush().unwrap();
                    if acked.fetch_add(1, Ordering::SeqCst) + 1 >= CHILD_ACKS {
                        std::process::abort();
                    }
                }
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_inserts_survive_an_abort_of_the_writing_process() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_inserts_until_it_aborts",
            "--nocapture",
        ])
        .env(CHILD_DB_VAR, db_path(&dir))
        .output()
        .unwrap();
    assert!(!output.status.success(), "the child should have aborted");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let acked: Vec<TaskId> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("acked "))
        .map(|id| TaskId::parse(id).unwrap())
        .collect();
    assert!(
        acked.len() >= CHILD_ACKS,
        "child acknowledged only {} inserts; stderr: {}",
        acked.len(),
        String::from_utf8_lossy(&output.stderr)
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open(&dir);
        let stored: HashSet<TaskId> = store
            .list(StateFilter::ALL, None)
            .await
            .unwrap()
            .into_iter()
            .map(|task| task.id)
            .collect();
        let missing: Vec<&TaskId> = acked.iter().filter(|id| !stored.contains(*id)).collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_get_distinct_increasing_seqs_and_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut handles = Vec::new();
    for client in 0..64 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..10 {
                let task = queued(&format!("client-{client}"), n);
                seqs.push((insert(&store, &task).await, task.id));
            }
            seqs
        }));
    }
    let mut by_seq = Vec::new();
    for handle in handles {
        let seqs = handle.await.unwrap();
        // Each client's own inserts were acknowledged in order, so their seqs increase.
        assert!(seqs.windows(2).all(|pair| pair[0].0 < pair[1].0));
        by_seq.extend(seqs);
    }
    by_seq.sort();
    let distinct: HashSet<u64> = by_seq.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(distinct.len(), 640);
    let listed = store.list(StateFilter::ALL, None).await.unwrap();
    let expected: Vec<&str> = by_seq.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids(&listed), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_one_group_completes_without_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut handles = Vec::new();
    for n in 0..2_000 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let task = queued("burst", n);
            insert(&store, &task).await;
            // Mixed traffic: a save and a read in the same groups as other inserts.
            let running = moved(task, TaskState::Running, n + 1);
            assert!(store.save(&running, Vec::new()).await.unwrap());
            store.get(&running.id).await.unwrap().unwrap()
        }));
    }
    for handle in handles {
        assert!(handle.await.unwrap().is_running());
    }
    let active = StateFilter::parse(Some("active")).unwrap();
    assert_eq!(
        store.list(active, Some("burst")).await.unwrap().len(),
        2_000
    );
    store.close().await;
}
