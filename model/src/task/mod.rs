//! The task model: a validated request ([`NewTask`]), the stored record ([`Task`]), states and
//! status history, ids and names.

mod id;
mod state;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use id::{
    generate_name, InvalidTaskId, TaskId, MAX_TASK_ID_LEN, NAME_ALPHABET, TASK_ID_PREFIX,
    TASK_NAME_PREFIX,
};
pub use state::{
    StateFilter, StateGroup, StatusEntry, TaskState, UnknownStateFilter, UnknownTaskState,
};

/// How often a task that failed before it ever ran is relaunched unless the request says
/// otherwise (Eremetic's fixed `maxRetries`).
pub const DEFAULT_MAX_RETRIES: u32 = 5;

/// The user a task runs as when its request names none: Eremetic's, which passed `root` to
/// Mesos for every task (hermit's `ls` shows it, `ls -filter user=root` selects by it).
pub const DEFAULT_USER: &str = "root";

/// What the API shows instead of a `masked_env` value (seven asterisks, as Eremetic).
pub const MASK: &str = "*******";

/// A secret string (a `masked_env` value). `Debug` prints [`MASK`], so that logging a task
/// never leaks it; serialization is transparent because the record must be stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The clear value, for the launch path only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Docker network mode, by the Mesos enum names Eremetic accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Network {
    /// The default bridge network.
    #[default]
    Bridge,
    /// The host's network stack.
    Host,
    /// No network.
    None,
    /// A user-defined network (Mesos `USER`).
    User,
}

impl Network {
    /// The wire name (`BRIDGE`, `HOST`, `NONE`, `USER`).
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Bridge => "BRIDGE",
            Network::Host => "HOST",
            Network::None => "NONE",
            Network::User => "USER",
        }
    }
}

/// Transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    /// TCP (the default when the request leaves `protocol` empty).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl PortProtocol {
    /// The wire name (`tcp`, `udp`).
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
        }
    }
}

/// A requested port mapping; the host port is assigned at launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    /// Port inside the container, 1-65535.
    pub container_port: u16,
    /// Protocol.
    pub protocol: PortProtocol,
}

/// A read-write bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Absolute path inside the container.
    pub container_path: String,
    /// Absolute path on the host, or a path relative to the task's sandbox (as Mesos takes
    /// relative host paths; Eremetic's examples mount fetched files this way).
    pub host_path: String,
}

impl Volume {
    /// Whether the host path is relative, i.e. inside the task's sandbox.
    pub fn in_sandbox(&self) -> bool {
        !self.host_path.starts_with('/')
    }
}

/// A relative `host_path` as a path below the sandbox: empty and `.` segments dropped, `..`
/// applied; an empty result is the sandbox itself. Refused: a path that climbs above the
/// sandbox, an absolute path, and `:` or NUL (which Docker's bind syntax cannot carry).
/// Lexical only: symbolic links inside the sandbox are resolved when the task is launched.
pub fn sandbox_relative_path(text: &str) -> Result<std::path::PathBuf, String> {
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.starts_with('/') {
        return Err(format!("{text:?} is absolute, not relative to the sandbox"));
    }
    if text.contains(':') || text.contains('\0') {
        return Err("must not contain ':' or NUL characters".to_owned());
    }
    let mut parts: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "{text:?} climbs out of the task's sandbox ('..' above it)"
                    ));
                }
            }
            segment => parts.push(segment),
        }
    }
    Ok(parts.iter().collect())
}

/// An exact match on a TEXT attribute of the agent (Mesos) or host (local backend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConstraint {
    /// Attribute name.
    pub attribute_name: String,
    /// Required value.
    pub attribute_value: String,
}

/// A URI fetched into the sandbox before the task starts (Mesos fetcher semantics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchUri {
    /// What to fetch.
    pub uri: String,
    /// Unpack the archive after download.
    pub extract: bool,
    /// Make the file executable.
    pub executable: bool,
    /// Allow the fetcher cache.
    pub cache: bool,
}

/// Archive suffixes that make a v0 `uris` entry extracted (Eremetic's `IsArchive`).
pub const ARCHIVE_SUFFIXES: [&str; 7] = [
    ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip",
];

impl FetchUri {
    /// A fetch entry for a bare `uris` string: extracted when it names an archive, neither
    /// executable nor cached.
    pub fn from_plain_uri(uri: &str) -> FetchUri {
        FetchUri {
            uri: uri.to_owned(),
            extract: ARCHIVE_SUFFIXES.iter().any(|suffix| uri.ends_with(suffix)),
            executable: false,
            cache: false,
        }
    }
}

/// Which status changes of a task are POSTed to its `callback_uri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackStates {
    /// Only the end (`TASK_FINISHED`, `TASK_FAILED`, `TASK_KILLED`, `TASK_LOST`,
    /// `TASK_ERROR`), once: a failed attempt that is retried is not an end. Eremetic's
    /// behaviour; receivers written for it treat any callback as the end of the task.
    #[default]
    Terminal,
    /// Every status change after the submission (queued again, staging, running, ...).
    All,
}

impl CallbackStates {
    /// `terminal` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStates::Terminal => "terminal",
            CallbackStates::All => "all",
        }
    }

    /// Parses `terminal` or `all` (any case); the error says what is accepted.
    pub fn parse(text: &str) -> Result<CallbackStates, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "terminal" => Ok(CallbackStates::Terminal),
            "all" => Ok(CallbackStates::All),
            _ => Err(format!(
                "{text:?} is not a callback state selection (terminal or all)"
            )),
        }
    }
}

impl fmt::Display for CallbackStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated task request, produced by [`crate::api::parse_v1`] or [`crate::api::parse_v0`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// Requested name; `None` means a generated one ([`generate_name`]).
    pub name: Option<String>,
    /// Docker image reference.
    pub image: String,
    /// Shell command line; when set, [`NewTask::args`] are ignored, as in Eremetic.
    pub command: Option<String>,
    /// Arguments for the image entrypoint, used when there is no command.
    pub args: Vec<String>,
    /// CPUs requested (> 0).
    pub cpu: f64,
    /// Memory in MiB (at least [`crate::api::MIN_MEM_MIB`]).
    pub mem: f64,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Secret environment, never shown through the API.
    pub masked_env: BTreeMap<String, Secret>,
    /// Task labels.
    pub labels: BTreeMap<String, String>,
    /// Bind mounts.
    pub volumes: Vec<Volume>,
    /// Containers whose volumes are mounted too.
    pub volumes_from: Vec<String>,
    /// Port mappings.
    pub ports: Vec<PortRequest>,
    /// Network mode.
    pub network: Network,
    /// DNS server (an IP address).
    pub dns: Option<String>,
    /// Placement constraints, all of which must hold.
    pub agent_constraints: Vec<AgentConstraint>,
    /// `http`/`https` URL POSTed when the task ends.
    pub callback_uri: Option<String>,
    /// Which status changes are POSTed to `callback_uri`; `None`: the server's
    /// `callback_states`. Absent from records stored before it existed.
    #[serde(default)]
    pub callback_states: Option<CallbackStates>,
    /// URIs fetched into the sandbox (`uris` entries first, then `fetch`).
    pub fetch: Vec<FetchUri>,
    /// How many of [`NewTask::fetch`] came from `uris` (the rest from `fetch`), so that a
    /// refusal names the field the client wrote.
    #[serde(default)]
    pub uris_count: usize,
    /// Pull the image even when present.
    pub force_pull_image: bool,
    /// Run privileged.
    pub privileged: bool,
    /// User inside the container; requests that name none get [`DEFAULT_USER`] (records stored
    /// before that default may hold `None`: those ran as the image's user).
    pub user: Option<String>,
    /// Wall-clock limit in seconds after which the task is killed; `None`: no limit.
    pub timeout_secs: Option<u64>,
    /// How often a task whose start failed or whose container was lost is relaunched; `None`
    /// means the server's default (`default_retries`, [`DEFAULT_MAX_RETRIES`] unless
    /// configured), which the scheduler fills in when it accepts the task.
    pub retries: Option<u32>,
}

impl NewTask {
    /// The requested name, or `generated` when the request had none.
    pub fn name_or(&self, generated: impl FnOnce() -> String) -> String {
        self.name.clone().unwrap_or_else(generated)
    }
}

/// A task as the scheduler stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Task id.
    pub id: TaskId,
    /// Task name (requested or generated; not unique).
    pub name: String,
    /// The validated request.
    pub request: NewTask,
    /// Append-only status history; the last entry is the current state.
    pub status: Vec<StatusEntry>,
    /// How many times the task was relaunched after failing.
    pub retry: u32,
    /// The attempt number of the task's latest launch, the suffix of its run id
    /// (`<task id>.<attempt>`): set when `TASK_STAGING` is recorded, before the backend is
    /// asked to launch, and one higher at every launch, so that no two runs of a task share an
    /// id (a relaunch that uses no retry, after an unreachable engine or a restart while
    /// launching, gets a new one too). `None` before the first launch and in records of
    /// versions before it existed, whose runs were numbered by [`Task::retry`] (see
    /// [`Task::current_attempt`], [`Task::next_attempt`]).
    #[serde(default)]
    pub attempt: Option<u32>,
    /// Mesos framework id (Mesos backend only).
    pub framework_id: Option<String>,
    /// Agent id (Mesos) or backend instance that runs the task.
    pub agent_id: Option<String>,
    /// Host name of the machine that runs the task.
    pub hostname: Option<String>,
    /// IP address of the agent.
    pub agent_ip: Option<String>,
    /// Port of the agent's HTTP API.
    pub agent_port: Option<u16>,
    /// Host ports assigned at launch, in the order of [`NewTask::ports`].
    pub host_ports: Vec<u16>,
    /// Sandbox directory holding `stdout` and `stderr`.
    pub sandbox_path: Option<String>,
    /// Exit status of the command, once known.
    pub exit_code: Option<i32>,
    /// Why the task failed, was lost or errored, once known.
    pub failure_reason: Option<String>,
    /// Bytes of the task's stdout dropped because it exceeded the output limit (recorded when
    /// the task ends; absent in records of older versions: 0).
    #[serde(default)]
    pub stdout_dropped_bytes: u64,
    /// Bytes of the task's stderr dropped because it exceeded the output limit.
    #[serde(default)]
    pub stderr_dropped_bytes: u64,
    /// Why a queued task is not being launched now, in words (for example the data directory
    /// is below its free-space floor). Filled in by the scheduler when it answers; never
    /// stored, since it describes the present moment.
    #[serde(skip)]
    pub waiting_reason: Option<String>,
}

impl Task {
    /// A freshly submitted task: status history `[TASK_QUEUED at now]`, nothing placed yet.
    pub fn new(id: TaskId, name: String, request: NewTask, now: OffsetDateTime) -> Task {
        Task {
            id,
            name,
            request,
            status: vec![StatusEntry::new(TaskState::Queued, now)],
            retry: 0,
            attempt: None,
            framework_id: None,
            agent_id: None,
            hostname: None,
            agent_ip: None,
            agent_port: None,
            host_ports: Vec::new(),
            sandbox_path: None,
            exit_code: None,
            failure_reason: None,
            stdout_dropped_bytes: 0,
            stderr_dropped_bytes: 0,
            waiting_reason: None,
        }
    }

    /// The attempt number of the latest launch (the run that is staging, running or ran
    /// last). Records of older versions numbered runs by the retry count.
    pub fn current_attempt(&self) -> u32 {
        self.attempt.unwrap_or(self.retry)
    }

    /// The attempt number of the next launch: one past the latest. A record of an older
    /// version that was ever staged may have used every number up to its retry count (the
    /// same number was launched again after an unreachable engine), so it goes on after it;
    /// one never staged has used none.
    pub fn next_attempt(&self) -> u32 {
        match self.attempt {
            // 2^32 launches of one task would take centuries of back-off; saturating keeps
            // the arithmetic total.
            Some(latest) => latest.saturating_add(1),
            None if self.was_staged() => self.retry.saturating_add(1),
            None => 0,
        }
    }

    /// Whether the task was ever handed to a backend (any state past the queue was recorded).
    fn was_staged(&self) -> bool {
        self.status
            .iter()
            .any(|entry| !matches!(entry.status, TaskState::Queued))
    }

    /// The current state: the last history entry (`None` for an empty history).
    pub fn current_state(&self) -> Option<TaskState> {
        self.status.last().map(|entry| entry.status)
    }

    /// Appends a state to the history.
    pub fn push_status(&mut self, status: TaskState, at: OffsetDateTime) {
        self.status.push(StatusEntry::new(status, at));
    }

    /// The composite group of the current state.
    pub fn group(&self) -> StateGroup {
        StateGroup::of(self.current_state())
    }

    /// Whether the task has ended (an empty history counts as ended, as in Eremetic).
    pub fn is_terminal(&self) -> bool {
        self.group() == StateGroup::Terminated
    }

    /// Whether the current state is `TASK_RUNNING`.
    pub fn is_running(&self) -> bool {
        self.current_state() == Some(TaskState::Running)
    }

    /// Whether the task ever reached `TASK_RUNNING`.
    pub fn was_running(&self) -> bool {
        self.status
            .iter()
            .any(|entry| entry.status == TaskState::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> NewTask {
        NewTask {
            name: None,
            image: "busybox".into(),
            command: Some("true".into()),
            args: Vec::new(),
            cpu: 0.1,
            mem: 32.0,
            env: BTreeMap::new(),
            masked_env: BTreeMap::from([("TOKEN".into(), Secret::new("hunter2"))]),
            labels: BTreeMap::new(),
            volumes: Vec::new(),
            volumes_from: Vec::new(),
            ports: Vec::new(),
            network: Network::Bridge,
            dns: None,
            agent_constraints: Vec::new(),
            callback_uri: None,
            callback_states: None,
            fetch: Vec::new(),
            uris_count: 0,
            force_pull_image: false,
            privileged: false,
            user: None,
            timeout_secs: None,
            retries: None,
        }
    }

    #[test]
    fn debug_output_masks_secrets() {
        let text = format!("{:?}", request());
        assert!(!text.contains("hunter2"));
        assert!(text.contains(MASK));
    }

    #[test]
    fn new_task_is_queued_and_history_drives_the_state() {
        let t0 = OffsetDateTime::from_unix_timestamp(100).unwrap();
        let mut task = Task::new(TaskId::generate([1; 16]), "n".into(), request(), t0);
        assert_eq!(task.current_state(), Some(TaskState::Queued));
        assert_eq!(task.group(), StateGroup::Queued);
        task.push_status(TaskState::Running, t0);
        assert!(task.is_running() && task.was_running() && !task.is_terminal());
        task.push_status(TaskState::Error, t0);
        assert!(task.is_terminal() && task.was_running() && !task.is_running());
        task.status.clear();
        assert!(task.is_terminal());
    }

    #[test]
    fn attempts_go_up_at_every_launch_and_old_records_continue_after_their_retry_count() {
        let t0 = OffsetDateTime::from_unix_timestamp(100).unwrap();
        let mut task = Task::new(TaskId::generate([1; 16]), "n".into(), request(), t0);
        assert_eq!((task.current_attempt(), task.next_attempt()), (0, 0));
        task.attempt = Some(task.next_attempt());
        task.push_status(TaskState::Staging, t0);
        assert_eq!((task.current_attempt(), task.next_attempt()), (0, 1));
        task.attempt = Some(7);
        task.retry = 2;
        assert_eq!((task.current_attempt(), task.next_attempt()), (7, 8));
        // An old record: staged, retried twice, its runs named by the retry count.
        task.attempt = None;
        assert_eq!((task.current_attempt(), task.next_attempt()), (2, 3));
        // An old record that never left the queue used no run id.
        task.status.truncate(1);
        task.retry = 0;
        assert_eq!((task.current_attempt(), task.next_attempt()), (0, 0));
    }

    #[test]
    fn relative_host_paths_stay_below_the_sandbox() {
        let ok = |text: &str| sandbox_relative_path(text).unwrap();
        assert_eq!(ok("data"), std::path::Path::new("data"));
        assert_eq!(ok("./a//b/../c/"), std::path::Path::new("a/c"));
        assert_eq!(ok("."), std::path::Path::new(""));
        for bad in [
            "..",
            "../etc",
            "a/../../b",
            "a/b/../../..",
            "",
            "/abs",
            "a:b",
        ] {
            assert!(sandbox_relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plain_uris_are_extracted_when_archives() {
        assert!(FetchUri::from_plain_uri("http://x/a.tar.gz").extract);
        assert!(FetchUri::from_plain_uri("http://x/a.zip").extract);
        assert!(!FetchUri::from_plain_uri("http://x/a.sh").extract);
    }

    #[test]
    fn name_or_prefers_the_requested_name() {
        let mut req = request();
        assert_eq!(
            req.name_or(|| generate_name([0; 8])),
            "Eremetic task bbbbbbbb"
        );
        req.name = Some("mine".into());
        assert_eq!(req.name_or(|| unreachable!()), "mine");
    }
}
