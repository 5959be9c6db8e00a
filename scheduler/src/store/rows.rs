//! Pure conversions between the task model and table columns.

use time::OffsetDateTime;

use crate::task::{StateGroup, Task, TaskState};

/// The column values of one `tasks` row, computed from a [`Task`] before it reaches the writer
/// thread (so that JSON encoding does not occupy the single writer).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskRow {
    /// `tasks.id`.
    pub(crate) id: String,
    /// `tasks.name`.
    pub(crate) name: String,
    /// `tasks.state`: the current state, `None` for an empty history.
    pub(crate) state: Option<&'static str>,
    /// `tasks.grp`: the composite group of the current state.
    pub(crate) group: &'static str,
    /// `tasks.ended_at`: Unix seconds of the terminal status, `None` while the task runs.
    pub(crate) ended_at: Option<i64>,
    /// `tasks.record`: the task as JSON.
    pub(crate) record: String,
}

impl TaskRow {
    /// The row for `task`.
    pub(crate) fn from_task(task: &Task) -> Result<TaskRow, serde_json::Error> {
        Ok(TaskRow {
            id: task.id.as_str().to_owned(),
            name: task.name.clone(),
            state: task.current_state().map(TaskState::as_str),
            group: task.group().as_str(),
            ended_at: ended_at(task),
            record: serde_json::to_string(task)?,
        })
    }
}

/// When the task ended: the time of its last status when that status is terminal.
///
/// A task with an empty history counts as terminated (as in Eremetic) but has no end time, so
/// retention never purges it; it stays until deleted.
pub(crate) fn ended_at(task: &Task) -> Option<i64> {
    task.status
        .last()
        .filter(|entry| entry.status.is_terminal())
        .map(|entry| entry.time.unix_timestamp())
}

/// The `grp` column values a list filter selects, in a fixed order.
pub(crate) fn groups_of(filter: crate::task::StateFilter) -> Vec<&'static str> {
    [
        StateGroup::Queued,
        StateGroup::Active,
        StateGroup::Terminated,
    ]
    .into_iter()
    .filter(|group| filter.includes(*group))
    .map(StateGroup::as_str)
    .collect()
}

/// An instant as Unix milliseconds, the unit of every time column of the `callbacks` table
/// (backoff delays can be shorter than a second). Saturates outside the `i64` range.
pub(crate) fn to_millis(time: OffsetDateTime) -> i64 {
    let millis = time.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

/// Unix milliseconds back to an instant; `None` when out of the range `time` supports.
pub(crate) fn from_millis(millis: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{StateFilter, TaskId};

    fn task() -> Task {
        let request = crate::api::parse_v1(
            br#"{"image": "busybox", "command": "true", "cpu": 0.1, "mem": 32}"#,
        )
        .unwrap();
        let at = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        Task::new(TaskId::generate([7; 16]), "n".into(), request, at)
    }

    #[test]
    fn row_of_a_queued_task_has_no_end_time() {
        let row = TaskRow::from_task(&task()).unwrap();
        assert_eq!(row.state, Some("TASK_QUEUED"));
        assert_eq!(row.group, "queued");
        assert_eq!(row.ended_at, None);
        let decoded: Task = serde_json::from_str(&row.record).unwrap();
        assert_eq!(decoded, task());
    }

    #[test]
    fn end_time_is_the_time_of_the_terminal_status() {
        let mut task = task();
        task.push_status(
            TaskState::Running,
            OffsetDateTime::from_unix_timestamp(2_000).unwrap(),
        );
        assert_eq!(TaskRow::from_task(&task).unwrap().group, "active");
        assert_eq!(ended_at(&task), None);
        task.push_status(
            TaskState::Error,
            OffsetDateTime::from_unix_timestamp(3_000).unwrap(),
        );
        let row = TaskRow::from_task(&task).unwrap();
        assert_eq!((row.group, row.ended_at), ("terminated", Some(3_000)));
    }

    #[test]
    fn empty_history_is_terminated_without_end_time() {
        let mut task = task();
        task.status.clear();
        let row = TaskRow::from_task(&task).unwrap();
        assert_eq!(
            (row.state, row.group, row.ended_at),
            (None, "terminated", None)
        );
    }

    #[test]
    fn filter_selects_its_groups() {
        assert_eq!(groups_of(StateFilter::default()), ["queued", "active"]);
        assert_eq!(
            groups_of(StateFilter::ALL),
            ["queued", "active", "terminated"]
        );
        let none = StateFilter {
            queued: false,
            active: false,
            terminated: false,
        };
        assert!(groups_of(none).is_empty());
    }

    #[test]
    fn millis_round_trip_and_saturate() {
        let time = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap();
        assert_eq!(to_millis(time), 1_700_000_000_123);
        assert_eq!(from_millis(1_700_000_000_123), Some(time));
        assert_eq!(from_millis(i64::MAX), None);
    }
}
