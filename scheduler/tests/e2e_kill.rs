//! End to end: how tasks are stopped — a kill of a running task, a kill of a queued task, the
//! task timeout and the kernel's OOM killer — and the state and reason each one ends with.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{docker, history, shell_task, with, Service, Settings};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn killed_running_task_ends_as_task_killed() {
    let service = Service::start(Settings::new()).await;
    let id = service.submit(&shell_task("sleep 30")).await;
    service.wait_state(&id, "TASK_RUNNING").await;
    let killed_at = Instant::now();
    service.kill_task(&id).await;
    let task = service.wait_end(&id, "TASK_KILLED").await;
    let took = killed_at.elapsed();
    if took > Duration::from_secs(10) {
        service.fail(
            &format!("the kill took {took:?} with a 1 s grace period"),
            &task,
        );
    }
    let states = history(&task);
    let terminating = states.iter().position(|state| state == "TASK_TERMINATING");
    if terminating.is_none_or(|index| index + 2 != states.len()) {
        service.fail("history must end TASK_TERMINATING, TASK_KILLED", &task);
    }
    for container in docker::containers_of_task(&id) {
        assert!(
            !docker::is_running(&container),
            "container {container} of the killed task still runs"
        );
    }
    let response = service
        .send(service.request(Method::POST, &format!("/api/v1/task/{id}/kill")))
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a second kill of an ended task: {text}"
    );
    assert!(
        text.contains("TASK_KILLED") || text.contains("dead"),
        "409 says why: {text}"
    );
}

#[tokio::test]
async fn e9_killed_queued_task_ends_killed_at_once_without_a_container() {
    let service = Service::start(Settings::new().set("cpus", "0.2")).await;
    let blocker = service
        .submit(&with(shell_task("sleep 30"), json!({"cpu": 0.2})))
        .await;
    service.wait_state(&blocker, "TASK_RUNNING").await;
    let queued = service
        .submit(&with(shell_task("echo never"), json!({"cpu": 0.2})))
        .await;
    service.wait_state(&queued, "TASK_QUEUED").await;
    let response = service.get(&format!("/api/v1/task/{queued}/stdout")).await;
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "stdout of a task that has not started"
    );

    let killed_at = Instant::now();
    service.kill_task(&queued).await;
    let task = service.wait_terminal(&queued).await;
    let took = killed_at.elapsed();
    if history(&task).last().map(String::as_str) != Some("TASK_KILLED") {
        service.fail("a killed queued task ends TASK_KILLED", &task);
    }
    if took > Duration::from_secs(2) {
        service.fail(
            &format!("E-9: the queued kill took {took:?}, not at once"),
            &task,
        );
    }
    if history(&task).iter().any(|state| state == "TASK_RUNNING") {
        service.fail("a task killed in the queue never runs", &task);
    }
    assert!(
        docker::containers_of_task(&queued).is_empty(),
        "no container was created for the killed queued task"
    );
    let blocker_task = service.task(&blocker).await;
    if history(&blocker_task).last().map(String::as_str) != Some("TASK_RUNNING") {
        service.fail("the other task is untouched by the kill", &blocker_task);
    }
    service.kill_task(&blocker).await;
    service.wait_end(&blocker, "TASK_KILLED").await;
}

#[tokio::test]
async fn timeout_fails_the_task_with_a_timeout_reason() {
    let service = Service::start(Settings::new()).await;
    let id = service
        .submit(&with(shell_task("sleep 30"), json!({"timeout": 1})))
        .await;
    let submitted = Instant::now();
    let task = service.wait_end(&id, "TASK_FAILED").await;
    let reason = task["failure_reason"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(reason.contains("timeout") || reason.contains("timed out")) {
        service.fail("the failure_reason must mention the timeout", &task);
    }
    if submitted.elapsed() > Duration::from_secs(15) {
        service.fail(
            "a 1 s timeout must stop the task well before its 30 s sleep",
            &task,
        );
    }
}

#[tokio::test]
async fn oom_fails_the_task_with_a_memory_reason() {
    let service = Service::start(Settings::new()).await;
    // The shell keeps a 200 MB string in memory: far over the 8 MiB limit.
    let command = r#"x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived"#;
    let id = service
        .submit(&with(shell_task(command), json!({"mem": 8})))
        .await;
    let task = service.wait_end(&id, "TASK_FAILED").await;
    let reason = task["failure_reason"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !reason.contains("memory") {
        service.fail(
            "the failure_reason must say the task ran out of memory",
            &task,
        );
    }
    assert!(
        !service.output(&id, "stdout").await.contains("survived"),
        "the command must not have survived its allocation"
    );
}
