//! Plain values returned by the runtime operations, independent of bollard's models.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::spec::{Limits, Protocol};

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code Docker reports (`128 + n` when the main process died of signal `n`).
    pub exit_code: i64,
    /// The kernel's OOM killer killed a process of the container (`State.OOMKilled`).
    pub oom_killed: bool,
    /// The signal that killed the main process, when determinable.
    ///
    /// Docker only reports an exit code, so this is inferred: SIGKILL after an OOM kill, otherwise
    /// `exit_code - 128` for codes 129..=192 (the shell convention Docker follows for processes
    /// that died of a signal). A process that itself calls `exit(137)` is indistinguishable from
    /// one killed by SIGKILL.
    pub signal: Option<i32>,
}

/// Where an image came from when it was ensured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// The image was already present and no pull was forced.
    Local,
    /// The image was pulled from its registry.
    Pulled,
}

/// A port an image declares with `EXPOSE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExposedPort {
    /// Port number inside the container.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// What the runtime needs to know about a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id (`sha256:...`).
    pub id: String,
    /// The ports the image exposes, sorted by number (then protocol), for pairing allocated host
    /// ports with them.
    pub exposed_ports: Vec<ExposedPort>,
}

/// Docker's lifecycle state of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Being restarted by a restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited.
    Exited,
    /// Dead (a removal failed half-way).
    Dead,
    /// A state this crate does not know (newer engines may add some).
    Unknown,
}

impl ContainerState {
    /// Parses Docker's state names (`created`, `running`, `exited`...); unknown names give
    /// [`ContainerState::Unknown`].
    pub fn from_docker(name: &str) -> Self {
        match name {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            _ => ContainerState::Unknown,
        }
    }

    /// Docker's name of the state (`unknown` for [`ContainerState::Unknown`]).
    pub fn as_docker(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Unknown => "unknown",
        }
    }

    /// Whether the container's process may still be alive.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }
}

/// The result of inspecting a container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    /// Full Docker id.
    pub id: String,
    /// Container name without Docker's leading `/`.
    pub name: String,
    /// The image reference the container was created from.
    pub image: String,
    /// Lifecycle state.
    pub state: ContainerState,
    /// Whether the main process is running.
    pub running: bool,
    /// Host PID of the main process while it runs.
    pub pid: Option<u32>,
    /// Exit code once the container has exited.
    pub exit_code: Option<i64>,
    /// Whether the OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// When the container was last started.
    pub started_at: Option<OffsetDateTime>,
    /// When the container last finished.
    pub finished_at: Option<OffsetDateTime>,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// The limits currently applied (as changed by updates).
    pub limits: Limits,
}

/// A container found by a label query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContainer {
    /// Full Docker id.
    pub id: String,
    /// Names without Docker's leading `/`.
    pub names: Vec<String>,
    /// Image reference.
    pub image: String,
    /// Lifecycle state.
    pub state: ContainerState,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
}

/// A label condition of a container query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    /// Label key.
    pub key: String,
    /// Required value; `None` only requires the label to be present.
    pub value: Option<String>,
}

impl LabelFilter {
    /// Requires label `key` to have `value`.
    pub fn equals(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// Requires label `key` to be present, with any value.
    pub fn present(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: None,
        }
    }
}

/// One-shot resource usage of a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageStats {
    /// Total CPU time consumed, in nanoseconds.
    pub cpu_total_ns: u64,
    /// CPU time in user mode, in nanoseconds.
    pub cpu_user_ns: u64,
    /// CPU time in kernel mode, in nanoseconds.
    pub cpu_system_ns: u64,
    /// CFS periods elapsed.
    pub cpu_periods: u64,
    /// CFS periods in which the container was throttled.
    pub cpu_throttled_periods: u64,
    /// Total time the container was throttled, in nanoseconds.
    pub cpu_throttled_ns: u64,
    /// Memory in use, in bytes (including page cache).
    pub memory_usage_bytes: u64,
    /// Memory limit, in bytes (the host's memory when unlimited).
    pub memory_limit_bytes: u64,
    /// Anonymous memory (RSS), in bytes, when the engine reports it.
    pub memory_rss_bytes: Option<u64>,
    /// Page cache, in bytes, when the engine reports it.
    pub memory_cache_bytes: Option<u64>,
}

/// How many bytes of output a log stream wrote, and how many of them were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogTotals {
    /// Bytes appended to `stdout`.
    pub stdout_bytes: u64,
    /// Bytes appended to `stderr`.
    pub stderr_bytes: u64,
    /// Bytes of stdout no longer on disk because the stream was rotated at its limit.
    pub stdout_dropped_bytes: u64,
    /// Bytes of stderr no longer on disk because the stream was rotated at its limit.
    pub stderr_dropped_bytes: u64,
}
