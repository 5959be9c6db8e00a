//! The callback body and the outbox row the core enqueues (pure).

use std::time::Duration;

use serde::Serialize;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::outbox::NewCallback;
use crate::task::{TaskId, TaskState};

/// The wire shape of a callback body. Field order is Eremetic's, then ours.
#[derive(Serialize)]
struct Body<'a> {
    time: i64,
    status: &'static str,
    task_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// The JSON body of a callback: Eremetic's
/// `{"time":<unix seconds>,"status":"<TASK_...>","task_id":"<id>"}`, plus `"exit_code"` and
/// `"reason"` when known.
///
/// Nothing else of the task is included, in particular no environment: a masked value can
/// never reach a receiver through a callback.
pub fn payload(
    task_id: &TaskId,
    status: TaskState,
    time: OffsetDateTime,
    exit_code: Option<i32>,
    reason: Option<&str>,
) -> String {
    let body = Body {
        time: time.unix_timestamp(),
        status: status.as_str(),
        task_id: task_id.as_str(),
        exit_code,
        reason,
    };
    // A struct of integers and strings always serializes; the fallback is never taken but
    // keeps this function total.
    serde_json::to_string(&body).unwrap_or_default()
}

/// The outbox row for a status change of `task_id` to `status` at `time`: the body from
/// [`payload`], created at `time`, abandoned if still undelivered `retry_period` later.
pub fn new_callback(
    url: &str,
    task_id: &TaskId,
    status: TaskState,
    time: OffsetDateTime,
    exit_code: Option<i32>,
    reason: Option<&str>,
    retry_period: Duration,
) -> NewCallback {
    NewCallback {
        task_id: task_id.clone(),
        url: url.to_owned(),
        body: payload(task_id, status, time, exit_code, reason),
        created_at: time,
        give_up_at: saturating_add(time, retry_period),
    }
}

/// `time + period`, or the latest representable instant when that overflows (a huge
/// configured retry period means "never give up", not a panic).
fn saturating_add(time: OffsetDateTime, period: Duration) -> OffsetDateTime {
    time::Duration::try_from(period)
        .ok()
        .and_then(|period| time.checked_add(period))
        .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> TaskId {
        TaskId::parse("eremetic-task.1").unwrap()
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    #[test]
    fn payload_has_eremetic_shape_without_optional_fields() {
        let body = payload(&id(), TaskState::Running, at(1_700_000_000), None, None);
        assert_eq!(
            body,
            r#"{"time":1700000000,"status":"TASK_RUNNING","task_id":"eremetic-task.1"}"#
        );
    }

    #[test]
    fn payload_adds_exit_code_and_reason_when_known() {
        let body = payload(
            &id(),
            TaskState::Failed,
            at(1_700_000_001),
            Some(137),
            Some("container ran out of memory (limit 64 MiB) \"quoted\""),
        );
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["time"], 1_700_000_001);
        assert_eq!(value["status"], "TASK_FAILED");
        assert_eq!(value["task_id"], "eremetic-task.1");
        assert_eq!(value["exit_code"], 137);
        assert_eq!(
            value["reason"],
            "container ran out of memory (limit 64 MiB) \"quoted\""
        );
        assert_eq!(value.as_object().unwrap().len(), 5);
    }

    #[test]
    fn payload_time_is_whole_seconds() {
        let time = at(1_700_000_000) + time::Duration::milliseconds(999);
        let body = payload(&id(), TaskState::Finished, time, Some(0), None);
        assert!(body.starts_with(r#"{"time":1700000000,"#), "{body}");
        assert!(body.ends_with(r#""exit_code":0}"#), "{body}");
    }

    #[test]
    fn new_callback_gives_up_after_the_retry_period() {
        let callback = new_callback(
            "http://receiver.example/hook",
            &id(),
            TaskState::Finished,
            at(1_000),
            Some(0),
            None,
            Duration::from_secs(3600),
        );
        assert_eq!(callback.task_id, id());
        assert_eq!(callback.url, "http://receiver.example/hook");
        assert_eq!(callback.created_at, at(1_000));
        assert_eq!(callback.give_up_at, at(4_600));
        assert_eq!(
            callback.body,
            payload(&id(), TaskState::Finished, at(1_000), Some(0), None)
        );
    }

    #[test]
    fn new_callback_saturates_a_huge_retry_period() {
        let callback = new_callback(
            "http://r/",
            &id(),
            TaskState::Lost,
            at(1_000),
            None,
            None,
            Duration::MAX,
        );
        assert_eq!(callback.give_up_at, PrimitiveDateTime::MAX.assume_utc());
    }
}
