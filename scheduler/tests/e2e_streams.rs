//! End to end: the streams of the API — `/api/v1/events` reports every state change of a task
//! as it happens, and `?follow=true` streams a task's output while it runs and ends with it.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::sse::EventStream;
use e2e_support::{current_state, history, is_terminal, shell_task, Service, Settings, DEADLINE};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn events_stream_reports_every_state_change_of_a_task() {
    let service = Service::start(Settings::new()).await;
    let mut events = EventStream::open(&service).await;
    let id = service.submit(&shell_task("echo hi; sleep 1")).await;
    let received = events.task_events_until_terminal(&id, DEADLINE).await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;

    let streamed: Vec<&str> = received
        .iter()
        .map(|event| event["status"].as_str().unwrap_or_default())
        .collect();
    let recorded = history(&task);
    assert_eq!(
        streamed, recorded,
        "one event per entry of the status history, in order"
    );
    for event in &received {
        assert_eq!(event["name"], task["name"], "{event}");
        assert!(event["time"].is_i64(), "time is Unix seconds: {event}");
    }
    let last = received.last().unwrap();
    assert_eq!(last["exit_code"], 0, "{last}");
}

#[tokio::test]
async fn failed_task_event_carries_exit_code_and_reason() {
    let service = Service::start(Settings::new()).await;
    let mut events = EventStream::open(&service).await;
    let id = service.submit(&shell_task("exit 7")).await;
    let received = events.task_events_until_terminal(&id, DEADLINE).await;
    let last: &Value = received.last().unwrap();
    assert_eq!(last["status"], "TASK_FAILED", "{last}");
    assert_eq!(last["exit_code"], 7, "{last}");
    assert!(
        last["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains('7')),
        "the event says why the task failed: {last}"
    );
}

#[tokio::test]
async fn follow_streams_output_while_the_task_runs_and_ends_with_it() {
    let service = Service::start(Settings::new()).await;
    let id = service
        .submit(&shell_task(
            "for i in 1 2 3 4 5 6 7 8; do echo line-$i; sleep 0.25; done",
        ))
        .await;
    // Follow from the start, while the task may still be queued.
    let client = reqwest::Client::new();
    let mut response = client
        .get(service.url(&format!("/api/v1/task/{id}/stdout?follow=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "follow answers 200");

    let started = Instant::now();
    let mut body = Vec::new();
    let mut state_at_first_chunk = None;
    loop {
        let left = DEADLINE.saturating_sub(started.elapsed());
        let chunk = match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => break,
            Ok(Err(error)) => panic!("the followed stream broke: {error}\n{}", service.log_tail()),
            Err(_) => {
                let task = service.task(&id).await;
                service.fail(
                    &format!(
                        "the followed stream did not end within {DEADLINE:?}; got {:?}",
                        String::from_utf8_lossy(&body)
                    ),
                    &task,
                );
            }
        };
        if chunk.is_empty() {
            continue;
        }
        if state_at_first_chunk.is_none() {
            state_at_first_chunk = Some(current_state(&service.task(&id).await));
        }
        body.extend_from_slice(&chunk);
    }
    let expected: String = (1..=8).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(
        String::from_utf8_lossy(&body),
        expected,
        "every line, once, in order"
    );
    let first = state_at_first_chunk.unwrap();
    assert!(
        !is_terminal(&first),
        "output arrived while the task ran (it was {first} at the first chunk)"
    );
    let task = service.task(&id).await;
    if !is_terminal(&current_state(&task)) {
        service.fail(
            "the followed stream ends only when the task has ended",
            &task,
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the stream lasted the task's run"
    );
}
