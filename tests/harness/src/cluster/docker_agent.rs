//! Agent mode 3: the Mesos agent with `--containerizers=docker,mesos`,
//! driving real Docker through the `docker` CLI as Mesos does
//! (`src/docker/docker.cpp`).
//!
//! - A command task with a DOCKER ContainerInfo runs as the Docker
//!   containerizer and the docker executor run it
//!   (`src/slave/containerizer/docker.cpp`, `src/docker/executor.cpp`):
//!   container `mesos-<container id>`, `docker run` in the foreground with
//!   its output in the sandbox's `stdout`/`stderr`, TASK_STARTING (agents
//!   from 1.5.0 on), TASK_RUNNING with the raw `docker inspect` output as
//!   `data`, a terminal "Container exited with status N", kills through
//!   `docker stop -t <grace>`; the stopped container is removed
//!   `--docker_remove_delay` after the executor exits (the executor stops
//!   itself a fixed 60 s after its terminal update).
//! - A command task with a MESOS ContainerInfo and a Docker image runs as the
//!   unified containerizer and the command executor would
//!   (`src/launcher/executor.cpp`): "Command exited with status N", no
//!   `data`, memory OOM reported by the agent with
//!   REASON_CONTAINER_LIMITATION_MEMORY. **Substitution:** no registry is
//!   reachable, so the image is provisioned from the local Docker engine
//!   and the container is a Docker container (`mesos-unified-<container
//!   id>`, labelled [`UNIFIED_LABEL`]) with the limits, sandbox mount and
//!   environment the Mesos containerizer would give it.
//!
//! Anything else (custom executors, tasks without a container image) is
//! refused with TASK_FAILED from the agent: this mode runs containers only.

mod lifecycle;
mod options;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesos_proto::v1::{
    task_status, value, DurationInfo, ExecutorId, ExecutorInfo, FrameworkInfo, Resource, TaskInfo,
    TaskState, TaskStatus,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::sandbox::AgentBook;
use super::{AgentMode, Uplink};
use crate::master::AgentMessage;

pub use lifecycle::UNIFIED_LABEL;

/// A Mesos agent version, for behaviour that changed between releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentVersion(pub u32, pub u32, pub u32);

/// The built-in executors send TASK_STARTING from this release on.
pub const TASK_STARTING_SINCE: AgentVersion = AgentVersion(1, 5, 0);

/// The agent's flags that matter to this mode, with Mesos' defaults.
#[derive(Debug, Clone)]
pub struct DockerAgentConfig {
    /// `--docker`: the Docker CLI (default `docker`, found on `PATH`).
    pub docker: PathBuf,
    /// `--docker_socket` (default `/var/run/docker.sock`), given to every
    /// command as `-H unix://<socket>`.
    pub docker_socket: String,
    /// The agent's work directory and book of runs.
    pub book: AgentBook,
    /// `--sandbox_directory`: where the sandbox is mounted inside
    /// containers (default `/mnt/mesos/sandbox`).
    pub sandbox_directory: String,
    /// `--docker_stop_timeout`: the grace of `docker stop` when the agent
    /// destroys a container (default 0 s).
    pub docker_stop_timeout: Duration,
    /// `--docker_remove_delay`: how long after its executor exited a
    /// container is removed (default 6 hours).
    pub docker_remove_delay: Duration,
    /// `--executor_shutdown_grace_period` (default 5 s): the docker
    /// executor's default kill grace and the agent's wait before it
    /// destroys an executor's container on shutdown.
    pub executor_shutdown_grace_period: Duration,
    /// How long the docker executor lives after its terminal update (a
    /// fixed 60 s fail-safe in `src/docker/executor.cpp`; the command
    /// executor has the same fail-safe but exits once its terminal update
    /// is acknowledged). A test knob: shorten it to see removal.
    pub executor_stop_delay: Duration,
    /// `--cgroups_enable_cfs` (default false): `--cpu-quota` as well.
    pub cgroups_enable_cfs: bool,
    /// The agent's IP, reported in `container_status` when the container
    /// has no address of its own (host network).
    pub agent_ip: String,
    /// The agent's release (default 1.11.0).
    pub version: AgentVersion,
}

impl DockerAgentConfig {
    /// Mesos' defaults with `book` as the work directory.
    pub fn new(book: AgentBook) -> Self {
        DockerAgentConfig {
            docker: PathBuf::from("docker"),
            docker_socket: "/var/run/docker.sock".to_owned(),
            book,
            sandbox_directory: "/mnt/mesos/sandbox".to_owned(),
            docker_stop_timeout: Duration::ZERO,
            docker_remove_delay: Duration::from_secs(6 * 3600),
            executor_shutdown_grace_period: Duration::from_secs(5),
            executor_stop_delay: Duration::from_secs(60),
            cgroups_enable_cfs: false,
            agent_ip: "127.0.0.1".to_owned(),
            version: AgentVersion(1, 11, 0),
        }
    }
}

/// A request to a task's run from the agent.
#[derive(Debug)]
enum Control {
    /// Kill the task (`KillTaskMessage`) with the KILL's or the task's kill
    /// policy grace, if any.
    Kill(Option<Duration>),
    /// Shut the executor down (`ShutdownExecutorMessage` and the agent's
    /// destroy after the shutdown grace period).
    Shutdown,
    /// The scheduler acknowledged the update with this uuid.
    Acknowledged(Vec<u8>),
}

#[derive(Debug)]
struct RunHandle {
    framework_id: String,
    task_id: String,
    controls: UnboundedSender<Control>,
    /// The task's kill policy grace, if any.
    task_grace: Option<Duration>,
}

/// The Docker containerizer agent mode (see the [module documentation](self)).
#[derive(Debug)]
pub struct DockerAgent {
    config: Arc<DockerAgentConfig>,
    runs: Arc<Mutex<HashMap<String, RunHandle>>>,
}

impl DockerAgent {
    /// An agent running tasks as `config` says.
    pub fn new(config: DockerAgentConfig) -> Self {
        DockerAgent {
            config: Arc::new(config),
            runs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The agent's configuration.
    pub fn config(&self) -> &DockerAgentConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunHandle>> {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run_task(&self, framework: FrameworkInfo, task: TaskInfo, uplink: &Uplink) {
        let framework_id = framework.id.clone().unwrap_or_default().value;
        let task_id = task.task_id.value.clone();
        let executor = executor_info(&framework, &task);
        let kind = match &task.container {
            _ if task.executor.is_some() || task.command.is_none() => None,
            Some(c) if c.r#type == mesos_proto::v1::container_info::Type::Docker as i32 => {
                Some(lifecycle::Kind::Docker)
            }
            Some(c) => options::mesos_docker_image(c).map(lifecycle::Kind::Unified),
            None => None,
        };
        let Some(kind) = kind else {
            let status = TaskStatus {
                state: TaskState::TaskFailed as i32,
                source: Some(task_status::Source::Agent as i32),
                reason: Some(task_status::Reason::ContainerLaunchFailed as i32),
                message: Some(
                    "this Docker agent runs command tasks with a DOCKER container or a MESOS \
                     container with a Docker image only"
                        .to_owned(),
                ),
                ..Default::default()
            };
            let _ = uplink.send_status(&task_id, status);
            return;
        };
        let (controls, receiver) = unbounded_channel();
        let shutdown_grace = executor
            .shutdown_grace_period
            .as_ref()
            .map_or(self.config.executor_shutdown_grace_period, duration);
        let task_grace = task
            .kill_policy
            .as_ref()
            .and_then(|k| k.grace_period.as_ref())
            .map(duration);
        self.lock().insert(
            task_id.clone(),
            RunHandle {
                framework_id,
                task_id,
                controls,
                task_grace,
            },
        );
        let run = lifecycle::TaskRun {
            config: Arc::clone(&self.config),
            uplink: uplink.clone(),
            framework,
            task,
            executor,
            kind,
            shutdown_grace,
        };
        let runs = Arc::clone(&self.runs);
        tokio::spawn(async move {
            let task_id = run.task.task_id.value.clone();
            run.run(receiver).await;
            runs.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&task_id);
        });
    }

    fn send(&self, pick: impl Fn(&RunHandle) -> Option<Control>) {
        for handle in self.lock().values() {
            if let Some(control) = pick(handle) {
                let _ = handle.controls.send(control);
            }
        }
    }
}

impl AgentMode for DockerAgent {
    fn on_message(&self, message: AgentMessage, uplink: &Uplink) {
        match message {
            AgentMessage::RunTask { framework, task } => self.run_task(*framework, *task, uplink),
            AgentMessage::KillTask {
                framework_id,
                task_id,
                kill_policy,
            } => {
                let override_grace = kill_policy
                    .and_then(|k| k.grace_period)
                    .map(|g| duration(&g));
                self.send(|h| {
                    (h.framework_id == framework_id && h.task_id == task_id)
                        .then(|| Control::Kill(override_grace.or(h.task_grace)))
                });
            }
            AgentMessage::Acknowledged {
                framework_id,
                task_id,
                uuid,
            } => self.send(|h| {
                (h.framework_id == framework_id && h.task_id == task_id)
                    .then(|| Control::Acknowledged(uuid.clone()))
            }),
            AgentMessage::ShutdownExecutor {
                framework_id,
                executor_id,
            } => self.send(|h| {
                (h.framework_id == framework_id && h.task_id == executor_id)
                    .then_some(Control::Shutdown)
            }),
            AgentMessage::ShutdownFramework { framework_id } => {
                self.send(|h| (h.framework_id == framework_id).then_some(Control::Shutdown));
            }
            AgentMessage::Shutdown { .. } => self.send(|_| Some(Control::Shutdown)),
            // The docker and command executors ignore framework messages.
            AgentMessage::FrameworkMessage { .. } => {}
        }
    }
}

fn duration(info: &DurationInfo) -> Duration {
    Duration::from_nanos(u64::try_from(info.nanoseconds).unwrap_or(0))
}

/// The command executor's resource allowance (`DEFAULT_EXECUTOR_CPUS`,
/// `DEFAULT_EXECUTOR_MEM`), allocated to `role`.
fn executor_allowance(role: &str) -> Vec<Resource> {
    let scalar = |name: &str, amount: f64| Resource {
        name: name.to_owned(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        allocation_info: Some(mesos_proto::v1::resource::AllocationInfo {
            role: Some(role.to_owned()),
        }),
        ..Default::default()
    };
    vec![scalar("cpus", 0.1), scalar("mem", 32.0)]
}

/// `Slave::getExecutorInfo` for a command task: the executor the agent
/// generates (id = task id, its name, the task's container, the allowance,
/// a shutdown grace of the kill policy's plus 2 s; `source` is deprecated
/// but the agent still sets it).
#[allow(deprecated)]
fn executor_info(framework: &FrameworkInfo, task: &TaskInfo) -> ExecutorInfo {
    if let Some(executor) = &task.executor {
        return executor.clone();
    }
    let command = task.command.clone().unwrap_or_default();
    let shorten = |text: String, open: &str, close: &str| {
        if text.len() > 15 {
            format!("(Command: {open}{}...{close})", truncate(&text, 12))
        } else {
            format!("(Command: {open}{text}{close})")
        }
    };
    let described = match (command.shell.unwrap_or(true), &command.value) {
        (true, None) => "(Command: NO COMMAND)".to_owned(),
        (true, Some(value)) => shorten(value.clone(), "sh -c '", "')"),
        (false, None) => "(Command: NO EXECUTABLE)".to_owned(),
        (false, Some(value)) => {
            let args = format!("{value}, {}", command.arguments.join(", "));
            shorten(args, "[", "])")
        }
    };
    let role = lifecycle::allocation_role(framework, task);
    let grace = task
        .kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref())
        .map(|g| DurationInfo {
            nanoseconds: g.nanoseconds + 2_000_000_000,
        });
    ExecutorInfo {
        executor_id: ExecutorId {
            value: task.task_id.value.clone(),
        },
        framework_id: framework.id.clone(),
        name: Some(format!(
            "Command Executor (Task: {}) {described}",
            task.task_id.value
        )),
        source: Some(task.task_id.value.clone()),
        container: task.container.clone(),
        command: Some(mesos_proto::v1::CommandInfo {
            uris: command.uris.clone(),
            environment: command.environment.clone(),
            shell: Some(false),
            value: Some(format!("{LAUNCHER_DIR}/mesos-executor")),
            arguments: vec![
                "mesos-executor".to_owned(),
                format!("--launcher_dir={LAUNCHER_DIR}"),
            ],
            user: command.user.clone(),
        }),
        labels: task.labels.clone(),
        resources: executor_allowance(&role),
        shutdown_grace_period: grace,
        ..Default::default()
    }
}

/// `--launcher_dir`'s default.
const LAUNCHER_DIR: &str = "/usr/libexec/mesos";

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}
