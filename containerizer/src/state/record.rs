//! `container.json`: what a launch knows when it creates the state directory, in one file.
//!
//! Written once, atomically, before the directory becomes visible (so its presence, naming the
//! directory's container id, is the "complete" marker), and never changed afterwards. Pretty
//! JSON so that operators can read it with `cat`:
//!
//! ```text
//! {
//!   "container_id": "0d4b9bd4-7a0c-4a2b-9d0e-3c1b2a0f9e11",
//!   "executor_id": "task-1",
//!   "task_id": "task-1",
//!   "owner": "/var/lib/mesos",
//!   "started": "2024-05-01T12:00:00.123Z",
//!   "start_time_entry": "2024-05-01T12:00:00.123Z",
//!   "sandbox": "/var/lib/mesos/slaves/.../runs/0d4b9bd4-..."
//! }
//! ```
//!
//! One file instead of one file per value: every file with data costs a block, and removing
//! it costs a block discard on file systems mounted with `discard` (`deimos state --rm`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::timestamp::{format_iso_millis, parse_iso};

/// The creation record of a container (`container.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The Mesos container id; must equal the directory's name.
    pub container_id: String,
    /// The executor id; for command tasks Deimos used the task id.
    pub executor_id: String,
    /// The task id, when the launch runs a task.
    #[serde(default)]
    pub task_id: Option<String>,
    /// Owner/scope string (e.g. the agent's `MESOS_WORK_DIRECTORY`), see [`super::Scope`].
    #[serde(default)]
    pub owner: Option<String>,
    /// When the state directory was created.
    #[serde(with = "iso")]
    pub started: OffsetDateTime,
    /// The name of this container's entry in `<root>/start-time/`.
    pub start_time_entry: String,
    /// The Mesos sandbox of the container, when known.
    #[serde(default)]
    pub sandbox: Option<PathBuf>,
}

impl ContainerRecord {
    /// The file content (pretty JSON plus a newline). Fails only for a sandbox path that is
    /// not UTF-8, which JSON cannot hold.
    pub fn render(&self) -> Result<String, serde_json::Error> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// Parses `container.json` content.
    pub fn parse(text: &str) -> Result<ContainerRecord, serde_json::Error> {
        serde_json::from_str(text)
    }
}

mod iso {
    use super::{format_iso_millis, parse_iso};
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub(super) fn serialize<S: Serializer>(
        value: &OffsetDateTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_iso_millis(*value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_iso(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("started {text:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn record() -> ContainerRecord {
        ContainerRecord {
            container_id: "c1".into(),
            executor_id: "exec-1".into(),
            task_id: Some("task-1".into()),
            owner: Some("/var/lib/mesos".into()),
            started: datetime!(2024-05-01 12:00:00.123 UTC),
            start_time_entry: "2024-05-01T12:00:00.123Z.1".into(),
            sandbox: Some("/sandboxes/c1".into()),
        }
    }

    #[test]
    fn record_round_trips_through_readable_json() {
        let text = record().render().unwrap();
        assert!(
            text.starts_with("{\n  \"container_id\": \"c1\",\n"),
            "{text}"
        );
        assert!(
            text.contains("\"started\": \"2024-05-01T12:00:00.123Z\""),
            "{text}"
        );
        assert!(text.ends_with("}\n"), "{text}");
        assert_eq!(ContainerRecord::parse(&text).unwrap(), record());
    }

    #[test]
    fn optional_fields_may_be_null_or_missing() {
        let text = r#"{"container_id": "c1", "executor_id": "e", "task_id": null,
            "started": "2024-05-01T12:00:00.123Z", "start_time_entry": "x"}"#;
        let parsed = ContainerRecord::parse(text).unwrap();
        assert_eq!(
            (parsed.task_id, parsed.owner, parsed.sandbox),
            (None, None, None)
        );
    }

    #[test]
    fn garbage_records_are_errors_not_panics() {
        for text in [
            "",
            "c1\n",
            "{}",
            r#"{"container_id": "c1", "executor_id": "e", "started": "yesterday", "start_time_entry": "x"}"#,
        ] {
            assert!(ContainerRecord::parse(text).is_err(), "{text:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_non_utf8_sandbox_cannot_be_rendered() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let mut bad = record();
        bad.sandbox = Some(PathBuf::from(OsStr::from_bytes(b"/sandboxes/\xff")));
        assert!(bad.render().is_err());
    }
}
