//! A reader of the `/api/v1/events` server-sent-events stream.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{is_terminal, Service};

/// One event of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent).
    pub event: String,
    /// The `data:` lines joined with newlines.
    pub data: String,
}

/// An open event stream.
pub struct EventStream {
    response: reqwest::Response,
    pending: String,
    /// Every byte received so far.
    pub raw: Vec<u8>,
}

impl EventStream {
    /// Opens `GET /api/v1/events` on `service` and checks the response head.
    pub async fn open(service: &Service) -> EventStream {
        // No overall timeout: the stream is read for as long as the test needs it.
        let client = reqwest::Client::new();
        let mut request = client.request(Method::GET, service.url("/api/v1/events"));
        if let Some(header) = service_auth(service) {
            request = request.header("Authorization", header);
        }
        let response = request
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET /api/v1/events failed: {error}"));
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "GET /api/v1/events answered {}",
            response.status()
        );
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "events Content-Type is {content_type:?}, expected text/event-stream"
        );
        EventStream {
            response,
            pending: String::new(),
            raw: Vec::new(),
        }
    }

    /// The next event, or `None` when none arrives before `deadline` or the stream ended.
    pub async fn next(&mut self, deadline: Instant) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .ok()?;
            let bytes = chunk.ok()??;
            self.raw.extend_from_slice(&bytes);
            self.pending
                .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n"));
        }
    }

    /// Parses one complete event out of the pending text; comments (keep-alives) are skipped.
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.pending.find("\n\n")?;
            let block: String = self.pending.drain(..end + 2).collect();
            let mut event = String::new();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    event = value.trim_start().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                }
            }
            if event.is_empty() && data.is_empty() {
                continue;
            }
            if event.is_empty() {
                event = "message".to_owned();
            }
            return Some(SseEvent {
                event,
                data: data.join("\n"),
            });
        }
    }

    /// The `status` events of task `id` (their JSON data) until one with a terminal status,
    /// waiting at most `timeout`. Fails the test if the terminal event does not come.
    pub async fn task_events_until_terminal(&mut self, id: &str, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            let Some(event) = self.next(deadline).await else {
                panic!(
                    "no terminal status event for {id} within {timeout:?}; got {events:?}; raw stream:\n{}",
                    String::from_utf8_lossy(&self.raw)
                );
            };
            if event.event != "status" {
                continue;
            }
            let data: Value = serde_json::from_str(&event.data).unwrap_or_else(|error| {
                panic!("status event data is not JSON ({error}): {}", event.data)
            });
            if data["task_id"] != id {
                continue;
            }
            let terminal = data["status"].as_str().is_some_and(is_terminal);
            events.push(data);
            if terminal {
                return events;
            }
        }
    }
}

fn service_auth(service: &Service) -> Option<String> {
    service.authorization().map(str::to_owned)
}
