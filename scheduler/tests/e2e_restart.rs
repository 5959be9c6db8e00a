//! End to end: restarts of the service lose nothing (E-4). After SIGTERM or `kill -9`, queued
//! tasks are still queued and run afterwards, a running container is found again and followed
//! to its end, a task that ended while the service was down is recorded with its exit code,
//! and a task whose container vanished ends TASK_LOST and is retried when it may be.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::time::Duration;

use e2e_support::{current_state, docker, history, shell_task, with, Service, Settings};
use serde_json::json;

#[derive(Debug, Clone, Copy)]
enum Stop {
    Term,
    Kill9,
}

async fn stop(service: &mut Service, how: Stop) {
    match how {
        Stop::Term => {
            let status = service.terminate().await;
            assert!(
                status.success(),
                "SIGTERM must shut the service down cleanly, it exited with {status}\n{}",
                service.log_tail()
            );
        }
        Stop::Kill9 => service.kill_9(),
    }
}

/// A blocker holds all CPUs while two tasks wait in the queue; the service is stopped and
/// started again; the blocker is followed to its end (not relaunched) and the queued tasks
/// run after it.
async fn queued_and_running_tasks_survive(how: Stop) {
    let mut service = Service::start(Settings::new().set("cpus", "0.2")).await;
    let small = |command: &str| with(shell_task(command), json!({"cpu": 0.2}));
    // 5 s: long enough to still run after the stop and the restart.
    let blocker = service.submit(&small("sleep 5; echo blocker-done")).await;
    service.wait_state(&blocker, "TASK_RUNNING").await;
    let first = service.submit(&small("echo queued-1")).await;
    let second = service.submit(&small("echo queued-2")).await;
    service.wait_state(&first, "TASK_QUEUED").await;
    service.wait_state(&second, "TASK_QUEUED").await;

    stop(&mut service, how).await;
    let containers = docker::containers_of_task(&blocker);
    assert_eq!(
        containers.len(),
        1,
        "the blocker's container outlives the service"
    );
    assert!(
        docker::is_running(&containers[0]),
        "{how:?} of the service must not stop the task's container"
    );

    service.restart().await;
    let task = service.task(&blocker).await;
    if current_state(&task) != "TASK_RUNNING" {
        service.fail("after the restart the blocker is still running", &task);
    }
    let queued: Vec<String> = service
        .list("?state=queued")
        .await
        .iter()
        .filter_map(|task| task["id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        queued.contains(&first) && queued.contains(&second),
        "E-4: both queued tasks are still queued after {how:?} (the adopted container holds \
         the CPUs): {queued:?}\n{}",
        service.log_tail()
    );

    let task = service.wait_end(&blocker, "TASK_FINISHED").await;
    let runs = history(&task)
        .iter()
        .filter(|state| *state == "TASK_RUNNING")
        .count();
    if task["exit_code"] != 0 || task["retry"] != 0 || runs != 1 {
        service.fail(
            "the running task is followed to its end, not relaunched",
            &task,
        );
    }
    assert_eq!(service.output(&blocker, "stdout").await, "blocker-done\n");
    for (id, text) in [(&first, "queued-1\n"), (&second, "queued-2\n")] {
        service.wait_end(id, "TASK_FINISHED").await;
        assert_eq!(service.output(id, "stdout").await, text);
    }
}

#[tokio::test]
async fn e4_queued_and_running_tasks_survive_sigterm() {
    queued_and_running_tasks_survive(Stop::Term).await;
}

#[tokio::test]
async fn e4_queued_and_running_tasks_survive_kill_9() {
    queued_and_running_tasks_survive(Stop::Kill9).await;
}

#[tokio::test]
async fn task_that_ended_while_the_service_was_down_is_recorded_with_its_exit_code() {
    let mut service = Service::start(Settings::new()).await;
    let id = service
        .submit(&shell_task("sleep 1; echo done while down; exit 4"))
        .await;
    service.wait_state(&id, "TASK_RUNNING").await;
    service.kill_9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    service.restart().await;
    let task = service.wait_end(&id, "TASK_FAILED").await;
    if task["exit_code"] != 4 {
        service.fail(
            "the exit code of the container that ended meanwhile is kept",
            &task,
        );
    }
    assert_eq!(service.output(&id, "stdout").await, "done while down\n");
}

/// Starts a task, kills the service with `kill -9`, removes the task's container behind its
/// back and starts the service again.
async fn vanish_while_down(retries: u32, command: &str) -> (Service, String) {
    let mut service = Service::start(Settings::new()).await;
    let id = service
        .submit(&with(shell_task(command), json!({"retries": retries})))
        .await;
    service.wait_state(&id, "TASK_RUNNING").await;
    service.kill_9();
    let containers = docker::containers_of_task(&id);
    assert_eq!(containers.len(), 1, "one container runs the task");
    docker::remove(&containers[0]);
    service.restart().await;
    (service, id)
}

#[tokio::test]
async fn e4_vanished_container_ends_lost_and_is_retried() {
    let (service, id) = vanish_while_down(1, "sleep 2; echo attempt-done").await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;
    let states = history(&task);
    let lost = states.iter().position(|state| state == "TASK_LOST");
    let relaunched = lost.and_then(|at| {
        states[at..]
            .iter()
            .position(|state| state == "TASK_RUNNING")
    });
    if relaunched.is_none() || task["retry"] != 1 {
        service.fail("the vanished run is TASK_LOST, then relaunched once", &task);
    }
    assert!(service.output(&id, "stdout").await.contains("attempt-done"));
}

#[tokio::test]
async fn vanished_container_without_retries_stays_lost() {
    let (service, id) = vanish_while_down(0, "sleep 30").await;
    let task = service.wait_end(&id, "TASK_LOST").await;
    if task["failure_reason"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        service.fail("a lost task says why", &task);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let task = service.task(&id).await;
    if current_state(&task) != "TASK_LOST" || task["retry"] != 0 {
        service.fail("with retries 0 the task stays TASK_LOST", &task);
    }
    assert!(
        docker::containers_of_task(&id).is_empty(),
        "no new container was started for the lost task"
    );
}
