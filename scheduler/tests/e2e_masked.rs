//! End to end: `masked_env` values reach the container but never leave the service — not in
//! any API response (get, list, v0, errors, events, metrics), not in its log, not in callbacks
//! (E-1) — and neither a kill nor a relaunch destroys them (E-2).

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use e2e_support::receiver::Receiver;
use e2e_support::sse::EventStream;
use e2e_support::{
    contains_bytes, docker, history, shell_task, unique_name, with, Service, Settings, DEADLINE,
};
use reqwest::Method;
use serde_json::json;

const MASK: &str = "*******";

/// Every body the API answers for `id`, v1 and v0, as raw bytes with a description.
async fn api_answers(service: &Service, id: &str) -> Vec<(String, Vec<u8>)> {
    let paths = [
        format!("/api/v1/task/{id}"),
        "/api/v1/task?state=queued,active,terminated".to_owned(),
        format!("/task/{id}"),
        "/task?state=queued,active,terminated".to_owned(),
        "/metrics".to_owned(),
        format!("/api/v1/task/{id}/stderr"),
    ];
    let mut answers = Vec::new();
    for path in paths {
        let response = service.get(&path).await;
        let mut raw = format!("{:?}", response.headers()).into_bytes();
        raw.extend_from_slice(&response.bytes().await.unwrap());
        answers.push((format!("GET {path}"), raw));
    }
    answers
}

fn assert_absent(secret: &str, place: &str, bytes: &[u8]) {
    assert!(
        !contains_bytes(bytes, secret.as_bytes()),
        "the masked value leaked into {place}:\n{}",
        String::from_utf8_lossy(bytes)
    );
}

#[tokio::test]
async fn masked_env_values_never_leave_the_service() {
    let secret = unique_name("masked-value");
    let settings = Settings::new().set("callback_secret", "signing-key");
    let service = Service::start(settings).await;
    let receiver = Receiver::start().await;
    let mut events = EventStream::open(&service).await;

    let body = with(
        shell_task("echo \"token=$SECRET_TOKEN plain=$PLAIN\""),
        json!({
            "masked_env": {"SECRET_TOKEN": secret},
            "env": {"PLAIN": "visible"},
            "callback_uri": receiver.url(),
        }),
    );
    let id = service.submit(&body).await;
    events.task_events_until_terminal(&id, DEADLINE).await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;
    assert_eq!(
        service.output(&id, "stdout").await,
        format!("token={secret} plain=visible\n"),
        "the container got the masked value in its environment"
    );
    if task["masked_env"]["SECRET_TOKEN"] != MASK || task["env"]["PLAIN"] != "visible" {
        service.fail(
            "the document shows the key with the mask, the plain env in clear",
            &task,
        );
    }

    // A refused request that carries the secret must not echo it in its error.
    let refused = with(
        body.clone(),
        json!({"cpu": 0, "masked_env": {"SECRET_TOKEN": secret, "PLAIN": secret}}),
    );
    let response = service.post_json("/api/v1/task", &refused).await;
    assert!(response.status().is_client_error());
    assert_absent(
        &secret,
        "a validation error",
        &response.bytes().await.unwrap(),
    );

    // A kill goes through the same paths as the secret (E-2).
    let sleeper = with(
        shell_task("sleep 30"),
        json!({"masked_env": {"SECRET_TOKEN": secret}, "callback_uri": receiver.url()}),
    );
    let killed = service.submit(&sleeper).await;
    service.wait_state(&killed, "TASK_RUNNING").await;
    service.kill_task(&killed).await;
    service.wait_end(&killed, "TASK_KILLED").await;
    events.task_events_until_terminal(&killed, DEADLINE).await;

    receiver
        .wait_until(DEADLINE, |received| {
            received.iter().any(|request| {
                let body = request.json();
                body["task_id"] == killed.as_str() && body["status"] == "TASK_KILLED"
            })
        })
        .await
        .expect("the kill's callback arrives");
    for task_id in [&id, &killed] {
        for (place, bytes) in api_answers(&service, task_id).await {
            assert_absent(&secret, &place, &bytes);
        }
    }
    for request in receiver.received() {
        assert_absent(&secret, "a callback", &request.raw);
    }
    assert_absent(&secret, "the events stream", &events.raw);
    assert_absent(&secret, "the service log", &service.log_bytes());
    assert!(
        !service.log_bytes().is_empty(),
        "the service log was captured (debug level)"
    );
}

#[tokio::test]
async fn e2_relaunched_task_still_gets_its_masked_env_values() {
    let secret = unique_name("relaunch-secret");
    let mut service = Service::start(Settings::new()).await;
    let body = with(
        shell_task("echo \"token=$SECRET_TOKEN\"; sleep 2"),
        json!({"masked_env": {"SECRET_TOKEN": secret}, "retries": 1}),
    );
    // A kill of another task with the same secret first: it must not replace the stored
    // values by the mask (E-2).
    let other = service
        .submit(&with(
            shell_task("sleep 30"),
            json!({"masked_env": {"SECRET_TOKEN": secret}}),
        ))
        .await;
    service.wait_state(&other, "TASK_RUNNING").await;
    service.kill_task(&other).await;
    service.wait_end(&other, "TASK_KILLED").await;

    // Then a relaunch: the first run is lost with its container while the service is down.
    let id = service.submit(&body).await;
    service.wait_state(&id, "TASK_RUNNING").await;
    service.kill_9();
    for container in docker::containers_of_task(&id) {
        docker::remove(&container);
    }
    service.restart().await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;
    if !history(&task).iter().any(|state| state == "TASK_LOST") || task["retry"] != 1 {
        service.fail("the task was lost with its container and relaunched", &task);
    }
    let stdout = service.output(&id, "stdout").await;
    assert!(
        stdout.contains(&format!("token={secret}")) && !stdout.contains(MASK),
        "E-2: the relaunch got the real value, not the mask: {stdout:?}"
    );
    let response = service
        .send(service.request(Method::GET, &format!("/api/v1/task/{id}")))
        .await;
    assert_absent(
        &secret,
        "the task document",
        &response.bytes().await.unwrap(),
    );
}
