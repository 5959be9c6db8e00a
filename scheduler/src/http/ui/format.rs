//! How the pages show times, durations and quantities. `static/eremetic.js` formats the same
//! way for values it updates live.

use time::{OffsetDateTime, UtcOffset};

use crate::task::{StatusEntry, Task, TaskState};

/// A time in UTC as `YYYY-MM-DDTHH:MM:SSZ` (fix of E-30: Eremetic used the server's zone).
pub(crate) fn utc(time: OffsetDateTime) -> String {
    let time = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// A duration in whole seconds, as its two largest units (`42s`, `3m 05s`, `2h 10m`, `4d 3h`).
pub(crate) fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs:02}s")
    } else {
        format!("{secs}s")
    }
}

/// A number with at most two decimals and no trailing zeros (`4`, `1.5`, `0.25`).
pub(crate) fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Bytes in MiB with at most one decimal (`12.5 MiB`).
pub(crate) fn mebibytes(bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let text = format!("{mib:.1}");
    format!("{} MiB", text.trim_end_matches(".0"))
}

/// The times the task list shows, in Unix seconds: submitted, first running, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeline {
    /// When the task was submitted (its first history entry).
    pub(crate) submitted: Option<i64>,
    /// When it first reached `TASK_RUNNING`.
    pub(crate) started: Option<i64>,
    /// When it reached its terminal state.
    pub(crate) ended: Option<i64>,
}

impl Timeline {
    /// The timeline of a task's history.
    pub(crate) fn of(task: &Task) -> Timeline {
        let at = |entry: &StatusEntry| entry.time.unix_timestamp();
        Timeline {
            submitted: task.status.first().map(at),
            started: task
                .status
                .iter()
                .find(|entry| entry.status == TaskState::Running)
                .map(at),
            ended: task
                .status
                .last()
                .filter(|entry| entry.status.is_terminal())
                .map(at),
        }
    }

    /// Time since submission.
    pub(crate) fn age(&self, now: i64) -> Option<String> {
        self.submitted.map(|submitted| duration(now - submitted))
    }

    /// Time from first running until the end (or now while it runs).
    pub(crate) fn run_time(&self, now: i64) -> Option<String> {
        self.started
            .map(|started| duration(self.ended.unwrap_or(now) - started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_are_iso_formatted_whatever_the_offset() {
        let time = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap()
            .to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
        assert_eq!(utc(time), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(185), "3m 05s");
        assert_eq!(duration(7_800), "2h 10m");
        assert_eq!(duration(97_200), "1d 3h");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn numbers_drop_trailing_zeros() {
        assert_eq!(number(4.0), "4");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(-0.001), "0");
        assert_eq!(mebibytes(128 * 1024 * 1024), "128 MiB");
        assert_eq!(mebibytes(1_572_864), "1.5 MiB");
    }
}
