//! End to end: callbacks (E-11). The end of a task (with `callback_states: all`, every status
//! change after submission) is POSTed to the task's `callback_uri`, signed with HMAC-SHA256 when a secret is configured, retried with backoff
//! while the receiver fails or is down, and still delivered after a `kill -9` of the service.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::time::Duration;

use e2e_support::receiver::{Received, Receiver};
use e2e_support::{free_port, history, shell_task, with, Service, Settings, DEADLINE};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "callback-signing-secret";

/// `sha256=<hex hmac>` of `body` with [`SECRET`].
fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn has_status(received: &[Received], status: &str) -> bool {
    received
        .iter()
        .any(|request| request.answered == 200 && request.json()["status"] == status)
}

async fn received_finished(service: &Service, receiver: &Receiver, id: &str) -> Vec<Received> {
    match receiver
        .wait_until(DEADLINE, |received| has_status(received, "TASK_FINISHED"))
        .await
    {
        Some(received) => received,
        None => {
            let task = service.task(id).await;
            let bodies: Vec<String> = receiver
                .received()
                .iter()
                .map(|request| String::from_utf8_lossy(&request.body).into_owned())
                .collect();
            service.fail(
                &format!(
                    "no TASK_FINISHED callback acknowledged within {DEADLINE:?}; got {bodies:?}"
                ),
                &task,
            );
        }
    }
}

#[tokio::test]
async fn callbacks_post_only_the_end_by_default_as_eremetic_did() {
    let service = Service::start(Settings::new()).await;
    let receiver = Receiver::start().await;
    let id = service
        .submit(&with(
            shell_task("echo hi"),
            json!({"callback_uri": receiver.url()}),
        ))
        .await;
    service.wait_end(&id, "TASK_FINISHED").await;
    let received = received_finished(&service, &receiver, &id).await;
    // Callbacks of one task arrive in order: anything before the end would be here by now.
    let statuses: Vec<Value> = received
        .iter()
        .map(|request| request.json()["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("TASK_FINISHED")]);
}

#[tokio::test]
async fn e11_callbacks_are_signed_and_sent_for_every_status_change_with_callback_states_all() {
    let service = Service::start(
        Settings::new()
            .set("callback_secret", SECRET)
            .set("callback_states", "all"),
    )
    .await;
    let receiver = Receiver::start().await;
    let id = service
        .submit(&with(
            shell_task("echo hi"),
            json!({"callback_uri": receiver.url()}),
        ))
        .await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;
    let received = received_finished(&service, &receiver, &id).await;

    for request in &received {
        assert!(
            request.request_line.starts_with("POST /callback "),
            "callback request line {:?}",
            request.request_line
        );
        let content_type = request.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "Content-Type {content_type:?}"
        );
        assert_eq!(
            request.header("x-eremetic-signature"),
            Some(signature(&request.body).as_str()),
            "the signature is sha256=<hex HMAC-SHA256(secret, body)> of {}",
            String::from_utf8_lossy(&request.body)
        );
        let body = request.json();
        assert_eq!(body["task_id"], id.as_str(), "{body}");
        assert!(body["time"].is_i64(), "time is Unix seconds: {body}");
    }
    let finished: Value = received
        .iter()
        .map(Received::json)
        .find(|body| body["status"] == "TASK_FINISHED")
        .unwrap();
    assert_eq!(
        finished["exit_code"], 0,
        "the final callback carries the exit code: {finished}"
    );

    let statuses: Vec<Value> = received
        .iter()
        .map(|request| request.json()["status"].clone())
        .collect();
    for state in history(&task).iter().skip(1) {
        assert!(
            statuses.iter().any(|status| status == state.as_str()),
            "a callback for the status change to {state}; received {statuses:?}"
        );
    }
}

#[tokio::test]
async fn e11_failed_callbacks_are_retried_until_the_receiver_accepts_them() {
    let service = Service::start(Settings::new().set("callback_secret", SECRET)).await;
    let receiver = Receiver::start_on(0, 2).await;
    let id = service
        .submit(&with(
            shell_task("echo hi"),
            json!({"callback_uri": receiver.url()}),
        ))
        .await;
    service.wait_end(&id, "TASK_FINISHED").await;
    let received = received_finished(&service, &receiver, &id).await;
    let refused: Vec<&Received> = received
        .iter()
        .filter(|request| request.answered == 500)
        .collect();
    assert_eq!(refused.len(), 2, "the first two callbacks were refused");
    for failed in refused {
        let body = failed.json();
        assert!(
            received
                .iter()
                .any(|request| request.answered == 200 && request.json() == body),
            "the refused callback {body} was sent again and accepted"
        );
    }
}

#[tokio::test]
async fn e11_callbacks_reach_a_receiver_that_was_down_at_first() {
    let service = Service::start(Settings::new().set("callback_secret", SECRET)).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/callback");
    let id = service
        .submit(&with(shell_task("echo hi"), json!({"callback_uri": url})))
        .await;
    service.wait_end(&id, "TASK_FINISHED").await;
    // Deliveries fail (connection refused) for a while before the receiver comes up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let receiver = Receiver::start_on(port, 0).await;
    let received = received_finished(&service, &receiver, &id).await;
    for request in &received {
        assert_eq!(
            request.header("x-eremetic-signature"),
            Some(signature(&request.body).as_str())
        );
    }
}

#[tokio::test]
async fn pending_callbacks_are_delivered_after_a_kill_9_of_the_service() {
    let mut service = Service::start(Settings::new().set("callback_secret", SECRET)).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/callback");
    let id = service
        .submit(&with(shell_task("echo hi"), json!({"callback_uri": url})))
        .await;
    service.wait_end(&id, "TASK_FINISHED").await;
    service.kill_9();
    let receiver = Receiver::start_on(port, 0).await;
    service.restart().await;
    received_finished(&service, &receiver, &id).await;
}
