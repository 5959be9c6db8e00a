//! Task states, the composite groups used by the list filter, and status history entries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The state of a task, serialized by its Mesos (or Eremetic-only) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting in the scheduler's queue (Eremetic-only state).
    #[serde(rename = "TASK_QUEUED")]
    Queued,
    /// Handed to a backend; the container is being created.
    #[serde(rename = "TASK_STAGING")]
    Staging,
    /// The container is starting.
    #[serde(rename = "TASK_STARTING")]
    Starting,
    /// The container runs.
    #[serde(rename = "TASK_RUNNING")]
    Running,
    /// The command exited with status 0.
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    /// The command exited with a non-zero status (or could not start).
    #[serde(rename = "TASK_FAILED")]
    Failed,
    /// The task was killed on request.
    #[serde(rename = "TASK_KILLED")]
    Killed,
    /// The task's fate is unknown (its agent or container disappeared).
    #[serde(rename = "TASK_LOST")]
    Lost,
    /// The task could not be launched at all (invalid task, backend error).
    #[serde(rename = "TASK_ERROR")]
    Error,
    /// A kill was requested and has not completed yet (Eremetic-only state).
    #[serde(rename = "TASK_TERMINATING")]
    Terminating,
}

impl TaskState {
    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; 10] = [
        TaskState::Queued,
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Killed,
        TaskState::Lost,
        TaskState::Error,
        TaskState::Terminating,
    ];

    /// The wire name (`TASK_RUNNING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "TASK_QUEUED",
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Lost => "TASK_LOST",
            TaskState::Error => "TASK_ERROR",
            TaskState::Terminating => "TASK_TERMINATING",
        }
    }

    /// Whether no further transition can happen: FINISHED, FAILED, KILLED, LOST and ERROR.
    ///
    /// Eremetic treats `TASK_ERROR` as active (sharp edge E-8: such tasks are listed as active
    /// forever, stay killable and never fire the callback); here it is terminal.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished
                | TaskState::Failed
                | TaskState::Killed
                | TaskState::Lost
                | TaskState::Error
        )
    }

    /// The composite group this state belongs to.
    pub fn group(self) -> StateGroup {
        match self {
            TaskState::Queued => StateGroup::Queued,
            _ if self.is_terminal() => StateGroup::Terminated,
            _ => StateGroup::Active,
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the [`TaskState`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task state {0:?}")]
pub struct UnknownTaskState(pub String);

impl FromStr for TaskState {
    type Err = UnknownTaskState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownTaskState(text.to_owned()))
    }
}

/// The composite states of the list filter (`GET /api/v1/task?state=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateGroup {
    /// Current state `TASK_QUEUED`.
    Queued,
    /// Current state STAGING, STARTING, RUNNING or TERMINATING.
    Active,
    /// Current state terminal (see [`TaskState::is_terminal`]) or no state at all.
    Terminated,
}

impl StateGroup {
    /// The filter token (`queued`, `active`, `terminated`).
    pub fn as_str(self) -> &'static str {
        match self {
            StateGroup::Queued => "queued",
            StateGroup::Active => "active",
            StateGroup::Terminated => "terminated",
        }
    }

    /// The group of a task whose current state is `current` (`None`: empty history, which
    /// Eremetic counts as terminated).
    pub fn of(current: Option<TaskState>) -> StateGroup {
        current.map_or(StateGroup::Terminated, TaskState::group)
    }
}

/// A `state` filter token that is not `queued`, `active` or `terminated`.
///
/// Eremetic silently matches nothing for such a token; a typo then lists no task at all, so the
/// reimplementation reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown state filter {0:?}: expected a comma-separated list of queued, active, terminated"
)]
pub struct UnknownStateFilter(pub String);

/// The set of composite states a task list is filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFilter {
    /// Include queued tasks.
    pub queued: bool,
    /// Include active tasks.
    pub active: bool,
    /// Include terminated tasks.
    pub terminated: bool,
}

impl Default for StateFilter {
    /// `active,queued`, Eremetic's default.
    fn default() -> Self {
        StateFilter {
            queued: true,
            active: true,
            terminated: false,
        }
    }
}

impl StateFilter {
    /// Every group.
    pub const ALL: StateFilter = StateFilter {
        queued: true,
        active: true,
        terminated: true,
    };

    /// Parses the `state` query value: a comma-separated list of `queued`, `active` and
    /// `terminated` (ASCII case-insensitive, blanks around tokens ignored, empty tokens
    /// skipped).
    ///
    /// An absent or empty value gives the default `active,queued`, as Eremetic does (E-22: its
    /// swagger claims an empty value means "all"; pass all three tokens for that).
    pub fn parse(value: Option<&str>) -> Result<StateFilter, UnknownStateFilter> {
        let tokens: Vec<&str> = value
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .collect();
        if tokens.is_empty() {
            return Ok(StateFilter::default());
        }
        let mut filter = StateFilter {
            queued: false,
            active: false,
            terminated: false,
        };
        for token in tokens {
            match token.to_ascii_lowercase().as_str() {
                "queued" => filter.queued = true,
                "active" => filter.active = true,
                "terminated" => filter.terminated = true,
                _ => return Err(UnknownStateFilter(token.to_owned())),
            }
        }
        Ok(filter)
    }

    /// Whether the filter includes `group`.
    pub fn includes(self, group: StateGroup) -> bool {
        match group {
            StateGroup::Queued => self.queued,
            StateGroup::Active => self.active,
            StateGroup::Terminated => self.terminated,
        }
    }

    /// Whether a task whose current state is `current` passes the filter.
    pub fn matches(self, current: Option<TaskState>) -> bool {
        self.includes(StateGroup::of(current))
    }
}

/// One entry of a task's append-only status history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEntry {
    /// When the scheduler recorded the state; serialized as whole Unix seconds, as Eremetic.
    #[serde(with = "time::serde::timestamp")]
    pub time: OffsetDateTime,
    /// The state entered.
    pub status: TaskState,
}

impl StatusEntry {
    /// An entry for `status` recorded at `time`.
    pub fn new(status: TaskState, time: OffsetDateTime) -> Self {
        StatusEntry { time, status }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_by_their_exact_names() {
        for state in TaskState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), state);
            assert_eq!(state.as_str().parse::<TaskState>().unwrap(), state);
        }
        assert!("TASK_DROPPED".parse::<TaskState>().is_err());
    }

    #[test]
    fn task_error_is_terminal_unlike_eremetic() {
        assert!(TaskState::Error.is_terminal());
        assert_eq!(TaskState::Error.group(), StateGroup::Terminated);
    }

    #[test]
    fn groups_partition_the_states() {
        use TaskState::*;
        let groups: Vec<_> = TaskState::ALL.iter().map(|s| (s, s.group())).collect();
        for (state, group) in groups {
            let expected = match state {
                Queued => StateGroup::Queued,
                Staging | Starting | Running | Terminating => StateGroup::Active,
                Finished | Failed | Killed | Lost | Error => StateGroup::Terminated,
            };
            assert_eq!(group, expected, "{state}");
        }
        assert_eq!(StateGroup::of(None), StateGroup::Terminated);
    }

    #[test]
    fn filter_defaults_to_active_and_queued() {
        for value in [None, Some(""), Some(" , ")] {
            let filter = StateFilter::parse(value).unwrap();
            assert_eq!(filter, StateFilter::default());
            assert!(filter.matches(Some(TaskState::Queued)));
            assert!(filter.matches(Some(TaskState::Running)));
            assert!(!filter.matches(Some(TaskState::Finished)));
            assert!(!filter.matches(None));
        }
    }

    #[test]
    fn filter_parses_lists_and_rejects_unknown_tokens() {
        let filter = StateFilter::parse(Some("terminated")).unwrap();
        assert!(filter.matches(Some(TaskState::Error)));
        assert!(filter.matches(None));
        assert!(!filter.matches(Some(TaskState::Terminating)));
        assert_eq!(
            StateFilter::parse(Some("active, Queued,TERMINATED")).unwrap(),
            StateFilter::ALL
        );
        assert_eq!(
            StateFilter::parse(Some("active,finished")),
            Err(UnknownStateFilter("finished".into()))
        );
    }

    #[test]
    fn status_entry_time_is_unix_seconds() {
        let time = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let entry = StatusEntry::new(TaskState::Running, time);
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(json, r#"{"time":1700000000,"status":"TASK_RUNNING"}"#);
        assert_eq!(serde_json::from_str::<StatusEntry>(&json).unwrap(), entry);
    }
}
