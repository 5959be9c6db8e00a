//! The parts of a task document `hermit` reads, state names, and the outcome of a waited task.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::EXIT_FAILURE;
use eremetic_model::task::TaskState;

/// One status history entry as sent by the server (states kept as text: a server may send
/// states this client does not know).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusView {
    /// Unix seconds.
    #[serde(default)]
    pub time: i64,
    /// The state name (`TASK_RUNNING`).
    #[serde(default)]
    pub status: String,
}

/// The fields of a v1 task document that `hermit` shows; missing keys (an older server)
/// take their empty value.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Task name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Shell command.
    pub command: String,
    /// Entrypoint arguments.
    #[serde(deserialize_with = "null_as_default")]
    pub args: Vec<String>,
    /// User.
    pub user: String,
    /// CPUs.
    pub cpu: f64,
    /// Memory in MiB.
    pub mem: f64,
    /// Environment.
    #[serde(deserialize_with = "null_as_default")]
    pub env: BTreeMap<String, String>,
    /// Secret environment (values masked by the server).
    #[serde(deserialize_with = "null_as_default")]
    pub masked_env: BTreeMap<String, String>,
    /// Status history, oldest first.
    #[serde(deserialize_with = "null_as_default")]
    pub status: Vec<StatusView>,
    /// Host running the task.
    pub hostname: String,
    /// Exit code, once known.
    pub exit_code: Option<i32>,
    /// Why the task failed, once known.
    pub failure_reason: Option<String>,
}

/// `null` (Go's nil list or map) read as the empty value.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A task document: the parsed view and the raw JSON (printed by `--output json`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDocument {
    /// What `hermit` reads of it.
    pub view: TaskView,
    /// The document as the server sent it.
    pub raw: Value,
}

impl TaskDocument {
    /// Parses a document from the server's JSON.
    pub fn from_value(raw: Value) -> Result<TaskDocument, serde_json::Error> {
        let view = TaskView::deserialize(&raw)?;
        Ok(TaskDocument { view, raw })
    }
}

impl AsRef<TaskView> for TaskView {
    fn as_ref(&self) -> &TaskView {
        self
    }
}

impl AsRef<TaskView> for TaskDocument {
    fn as_ref(&self) -> &TaskView {
        &self.view
    }
}

impl TaskView {
    /// The current state name, `None` with an empty history.
    pub fn current(&self) -> Option<&str> {
        self.status.last().map(|entry| entry.status.as_str())
    }

    /// Unix seconds of the last status change (0 with an empty history).
    pub fn last_updated(&self) -> i64 {
        self.status.last().map_or(0, |entry| entry.time)
    }

    /// Whether the task can no longer change (a terminal state of this server).
    pub fn is_terminal(&self) -> bool {
        self.current()
            .and_then(|name| name.parse::<TaskState>().ok())
            .is_some_and(TaskState::is_terminal)
    }

    /// The state as Eremetic's hermit shows it (see [`short_state`]).
    pub fn short_state(&self) -> &'static str {
        short_state(self.current())
    }
}

/// Eremetic's short, lower-case state name (`running`, `finished`...), with `terminating` for
/// `TASK_TERMINATING` (Eremetic's hermit showed `unknown`, E-28); `unknown` for a state this
/// client does not know or an empty history.
pub fn short_state(name: Option<&str>) -> &'static str {
    match name.and_then(|name| name.parse::<TaskState>().ok()) {
        Some(TaskState::Queued) => "queued",
        Some(TaskState::Staging) => "staging",
        Some(TaskState::Starting) => "starting",
        Some(TaskState::Running) => "running",
        Some(TaskState::Finished) => "finished",
        Some(TaskState::Failed) => "failed",
        Some(TaskState::Killed) => "killed",
        Some(TaskState::Lost) => "lost",
        Some(TaskState::Error) => "error",
        Some(TaskState::Terminating) => "terminating",
        None => "unknown",
    }
}

/// The state named by a `status=` filter: a short name or a full one (`running`,
/// `TASK_RUNNING`, case-insensitive).
pub(super) fn parse_state(text: &str) -> Option<TaskState> {
    let upper = text.to_ascii_uppercase();
    let full = if upper.starts_with("TASK_") {
        upper
    } else {
        format!("TASK_{upper}")
    };
    full.parse().ok()
}

/// How a waited task ended: the line `hermit` prints and the exit code it exits with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `<id> finished (exit code 0)`, `<id> failed: <reason>`...
    pub line: String,
    /// The task's exit code when it has one in 0-255 (0 for `finished` without one),
    /// otherwise [`EXIT_FAILURE`].
    pub exit_code: u8,
}

/// The outcome of a task in a terminal state.
pub fn outcome(task: &TaskView) -> Outcome {
    let state = task.short_state();
    let code = task.exit_code.and_then(|code| u8::try_from(code).ok());
    let exit_code = match (state, code) {
        ("finished", None) => 0,
        // A failure reported with status 0 must still fail the caller.
        (state, Some(0)) if state != "finished" => EXIT_FAILURE,
        (_, Some(code)) => code,
        (_, None) => EXIT_FAILURE,
    };
    let mut line = format!("{} {state}", task.id);
    if let Some(code) = task.exit_code {
        line.push_str(&format!(" (exit code {code})"));
    }
    if let Some(reason) = task.failure_reason.as_deref().filter(|r| !r.is_empty()) {
        line.push_str(&format!(": {reason}"));
    }
    Outcome { line, exit_code }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(state: &str, exit_code: Option<i32>, reason: Option<&str>) -> TaskView {
        TaskView {
            id: "t".into(),
            status: vec![StatusView {
                time: 1,
                status: state.into(),
            }],
            exit_code,
            failure_reason: reason.map(str::to_owned),
            ..TaskView::default()
        }
    }

    #[test]
    fn short_state_names_follow_eremetic_and_know_terminating() {
        assert_eq!(short_state(Some("TASK_RUNNING")), "running");
        assert_eq!(short_state(Some("TASK_QUEUED")), "queued");
        assert_eq!(short_state(Some("TASK_TERMINATING")), "terminating");
        assert_eq!(short_state(Some("TASK_DROPPED")), "unknown");
        assert_eq!(short_state(None), "unknown");
    }

    #[test]
    fn filter_states_accept_short_and_full_names() {
        assert_eq!(parse_state("running"), Some(TaskState::Running));
        assert_eq!(parse_state("TASK_FINISHED"), Some(TaskState::Finished));
        assert_eq!(parse_state("Terminating"), Some(TaskState::Terminating));
        assert_eq!(parse_state("done"), None);
    }

    #[test]
    fn outcome_passes_the_task_exit_code_through() {
        let failed = outcome(&view("TASK_FAILED", Some(3), None));
        assert_eq!(failed.exit_code, 3);
        assert_eq!(failed.line, "t failed (exit code 3)");
        let finished = outcome(&view("TASK_FINISHED", Some(0), None));
        assert_eq!(
            (finished.exit_code, finished.line.as_str()),
            (0, "t finished (exit code 0)")
        );
        assert_eq!(outcome(&view("TASK_FINISHED", None, None)).exit_code, 0);
    }

    #[test]
    fn outcome_without_exit_code_fails_with_1_and_the_reason() {
        let killed = outcome(&view("TASK_KILLED", None, None));
        assert_eq!((killed.exit_code, killed.line.as_str()), (1, "t killed"));
        let oom = outcome(&view("TASK_FAILED", None, Some("out of memory")));
        assert_eq!(
            (oom.exit_code, oom.line.as_str()),
            (1, "t failed: out of memory")
        );
        assert_eq!(outcome(&view("TASK_FAILED", Some(0), None)).exit_code, 1);
        assert_eq!(outcome(&view("TASK_FAILED", Some(300), None)).exit_code, 1);
    }

    #[test]
    fn documents_from_older_servers_parse_with_defaults() {
        // Eremetic sends Go's nil lists and maps as `null`, and has no `exit_code`.
        let doc = TaskDocument::from_value(json!({
            "id": "x", "task_cpus": 1, "status": [{"time": 5, "status": "TASK_LOST"}],
            "env": null, "args": null
        }))
        .unwrap();
        assert!(doc.view.env.is_empty() && doc.view.exit_code.is_none());
        assert!(TaskDocument::from_value(json!({"id": 5})).is_err());
        assert!(doc.view.is_terminal());
        assert_eq!(doc.view.last_updated(), 5);
        assert_eq!(doc.raw["id"], "x");
    }
}
