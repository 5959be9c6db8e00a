//! `GET /api/v1/events`: task state changes as server-sent events (new in this project).
//!
//! Each change is an `event: status` whose data is
//! `{"task_id","name","status","time","exit_code","reason"}` (`time` in Unix seconds). A client
//! that reads too slowly to keep up gets an `event: lagged` with `{"skipped": n}` and then the
//! changes that follow. Comments are sent every 15 s to keep idle connections open.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::serve::ConnectionInfo;
use super::AppState;
use crate::service::TaskEvent;

/// Interval of keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The data of an `event: status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct StatusEventDocument {
    /// The task.
    pub(crate) task_id: String,
    /// Its name.
    pub(crate) name: String,
    /// The new state (`TASK_RUNNING`...).
    pub(crate) status: &'static str,
    /// When it was recorded, in Unix seconds.
    pub(crate) time: i64,
    /// The exit code, when known.
    pub(crate) exit_code: Option<i32>,
    /// Why the task failed, when known.
    pub(crate) reason: Option<String>,
}

impl From<&TaskEvent> for StatusEventDocument {
    fn from(event: &TaskEvent) -> Self {
        StatusEventDocument {
            task_id: event.task_id.to_string(),
            name: event.name.clone(),
            status: event.status.as_str(),
            time: event.time.unix_timestamp(),
            exit_code: event.exit_code,
            reason: event.reason.clone(),
        }
    }
}

/// The data of an `event: lagged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct LaggedDocument {
    /// How many changes this client missed.
    pub(crate) skipped: u64,
}

/// The SSE event for one broadcast outcome; `None` when the broadcast is closed.
pub(crate) fn sse_event(received: Result<TaskEvent, RecvError>) -> Option<Event> {
    let event = match received {
        Ok(change) => Event::default()
            .event("status")
            .json_data(StatusEventDocument::from(&change)),
        Err(RecvError::Lagged(skipped)) => Event::default()
            .event("lagged")
            .json_data(LaggedDocument { skipped }),
        Err(RecvError::Closed) => return None,
    };
    // Serializing these plain documents cannot fail; a comment keeps the stream valid if it did.
    Some(event.unwrap_or_else(|_| Event::default().comment("event could not be serialized")))
}

struct Subscription {
    receiver: Receiver<TaskEvent>,
    connection: Option<ConnectionInfo>,
}

impl Subscription {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Subscription)> {
        let received = match &mut self.connection {
            Some(connection) => tokio::select! {
                received = self.receiver.recv() => received,
                () = connection.shutting_down() => return None,
            },
            None => self.receiver.recv().await,
        };
        sse_event(received).map(|event| (Ok(event), self))
    }
}

/// `GET /api/v1/events`. Subscribes before answering, so every change after the response
/// headers is delivered.
pub(crate) async fn events(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectionInfo>>,
) -> Response {
    let subscription = Subscription {
        receiver: state.service.subscribe(),
        connection: connection.map(|Extension(info)| info),
    };
    let stream = futures::stream::unfold(subscription, Subscription::next);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{TaskId, TaskState};
    use time::OffsetDateTime;

    #[test]
    fn status_event_data_uses_unix_seconds_and_state_names() {
        let event = TaskEvent {
            task_id: TaskId::parse("eremetic-task.1").unwrap(),
            name: "job".into(),
            status: TaskState::Failed,
            time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            exit_code: Some(3),
            reason: Some("exit status 3".into()),
        };
        let value = serde_json::to_value(StatusEventDocument::from(&event)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "task_id": "eremetic-task.1", "name": "job", "status": "TASK_FAILED",
                "time": 1_700_000_000, "exit_code": 3, "reason": "exit status 3"
            })
        );
    }

    #[tokio::test]
    async fn server_shutdown_ends_the_subscription() {
        let (sender, receiver) = tokio::sync::broadcast::channel::<TaskEvent>(4);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let subscription = Subscription {
            receiver,
            connection: Some(ConnectionInfo::new(false, stopping)),
        };
        stop.send(true).unwrap();
        assert!(subscription.next().await.is_none());
        drop(sender);
    }

    #[test]
    fn a_closed_broadcast_ends_the_stream() {
        assert!(sse_event(Err(RecvError::Closed)).is_none());
        assert!(sse_event(Err(RecvError::Lagged(4))).is_some());
    }
}
