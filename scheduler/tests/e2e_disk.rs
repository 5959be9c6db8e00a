//! End to end, with the real service and Docker: a task's output beyond `task_output_limit`
//! is rotated (the newest output stays readable and the API says how much was dropped), and
//! launches wait, with the reason in the task document, while `data_dir` is below
//! `data_dir_min_free`.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::time::Duration;

use e2e_support::{current_state, shell_task, Service, Settings};

/// 5000 numbered lines of 16 bytes: 80,000 bytes, against a 16 KiB limit.
const LINES: &str = "i=0; while [ $i -lt 5000 ]; do printf 'line %010d\\n' $i; i=$((i+1)); done";

#[tokio::test]
async fn output_over_the_limit_keeps_the_newest_lines_and_says_how_much_was_dropped() {
    let service = Service::start(Settings::new().set("task_output_limit", "16KiB")).await;
    let id = service.submit(&shell_task(LINES)).await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;
    let dropped = task["stdout_dropped_bytes"].as_u64().unwrap();
    assert!(dropped > 0, "{task}");
    assert_eq!(task["stderr_dropped_bytes"], 0);

    let response = service.get(&format!("/api/v1/task/{id}/stdout")).await;
    let header = response.headers()["x-eremetic-output-truncated"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(header, dropped.to_string());
    let body = response.text().await.unwrap();
    assert!(
        body.ends_with("line 0000004999\n"),
        "{:?}",
        &body[body.len().saturating_sub(40)..]
    );
    assert!(
        body.len() <= 2 * 16 * 1024,
        "at most two files of the limit: {}",
        body.len()
    );
    assert_eq!(
        dropped + body.len() as u64,
        80_000,
        "every byte kept or counted"
    );
    // Whole lines from a line start: the kept output is an exact tail.
    assert!(body.starts_with("line "), "{:?}", &body[..20]);

    let sandbox = service.data_dir().join("sandboxes").join(&id);
    let current = std::fs::metadata(sandbox.join("stdout")).unwrap().len();
    assert!(current <= 16 * 1024, "{current}");
}

#[tokio::test]
async fn launches_wait_with_a_reason_while_data_dir_is_below_its_free_space_floor() {
    // No file system has 10,000 PiB free.
    let service = Service::start(Settings::new().set("data_dir_min_free", "10000PiB")).await;
    let id = service.submit(&shell_task("echo never")).await;
    let task = service
        .wait_for(&id, "a waiting reason", |task| {
            task["waiting_reason"].is_string()
        })
        .await;
    let reason = task["waiting_reason"].as_str().unwrap();
    let data_dir = service.data_dir();
    let expected = format!("waiting: data_dir {} has ", data_dir.display());
    assert!(reason.starts_with(&expected), "{reason}");
    assert!(
        reason.ends_with("free, below the floor of 10000 PiB (data_dir_min_free)"),
        "{reason}"
    );
    // Several dispatcher rounds later it still waits, and says so in lists too.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let task = service.task(&id).await;
    assert_eq!(current_state(&task), "TASK_QUEUED");
    // The same reason, with the free space of that moment (other processes write to the
    // same file system meanwhile).
    let listed = service.list("?state=queued").await;
    let listed = listed[0]["waiting_reason"].as_str().unwrap_or_default();
    assert!(listed.starts_with(&expected), "{listed}");
    assert!(
        listed.ends_with("free, below the floor of 10000 PiB (data_dir_min_free)"),
        "{listed}"
    );
}
