//! The simulated agent mode, for scale: no processes and no containers.
//! Each task "runs" for a configured time on a tokio timer and reports the
//! status updates the chosen real executor would send, in its order and
//! with its sources and messages:
//!
//! - Mesos' command executor (`src/launcher/executor.cpp`): TASK_STARTING,
//!   TASK_RUNNING, then TASK_FINISHED "Command exited with status 0"; a kill
//!   gives TASK_KILLING (only to frameworks with the TASK_KILLING_STATE
//!   capability) then TASK_KILLED "Command terminated with signal
//!   Terminated" (the command's process group gets SIGTERM).
//! - Mesos' docker executor (`src/docker/executor.cpp`): TASK_STARTING,
//!   TASK_RUNNING whose `data` is the `docker inspect` array of the
//!   container (its sandbox mounted at `/mnt/mesos/sandbox`), then
//!   TASK_FINISHED "Container exited with status 0"; a kill gives
//!   TASK_KILLING (same capability rule) then TASK_KILLED "Container exited
//!   with status 143" (`docker run` reports the container's SIGTERM exit).
//!
//! Every update has source SOURCE_EXECUTOR, as the agent marks what an
//! executor sends. A task's run time is [`SimulatedAgentConfig::run_time`]
//! unless its TaskInfo carries the label [`RUN_SECONDS_LABEL`] (seconds,
//! fractions allowed); a label that is not a non-negative number fails the
//! task (TASK_FAILED naming the label).
//!
//! The agent's side is the real agent's (`Slave::killTask`,
//! `Slave::shutdownFramework`): a kill for a task whose executor is gone
//! while the framework still has executors here gets TASK_LOST (TASK_DROPPED
//! for PARTITION_AWARE frameworks), source SOURCE_AGENT, reason
//! REASON_EXECUTOR_TERMINATED, "Cannot find executor"; a kill for a
//! framework with nothing left here is ignored. ShutdownFramework and
//! Shutdown end every task of the framework (of every framework) without
//! updates: the agent drops updates of a terminating framework. An
//! executor terminates once its task's terminal update is acknowledged (the
//! command executor exits then), or at a shutdown.
//!
//! Each run gets a sandbox in the agent's [`AgentBook`] with `stdout`
//! ([`SimulatedAgentConfig::stdout`]) and an empty `stderr`. Per task the
//! mode keeps one small map entry and one tokio task (no thread).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesos_proto::v1::{
    framework_info, task_status, ExecutorId, FrameworkInfo, TaskId, TaskInfo, TaskState, TaskStatus,
};
use tokio::sync::oneshot;

use super::sandbox::AgentBook;
use super::{AgentMode, Uplink};
use crate::common::uuid::{random_uuid, random_uuid_string};
use crate::master::AgentMessage;

/// The TaskInfo label overriding a task's run time, in seconds (e.g. `"2.5"`).
pub const RUN_SECONDS_LABEL: &str = "harness.run_seconds";

/// Where a Docker container's sandbox is mounted (`--sandbox_directory`).
const SANDBOX_MOUNT: &str = "/mnt/mesos/sandbox";

/// Whose updates a simulated task reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorWording {
    /// Mesos' command executor (`mesos-executor`).
    Command,
    /// Mesos' docker executor (`mesos-docker-executor`).
    Docker,
}

impl ExecutorWording {
    /// The message of the terminal update after a normal end.
    fn finished_message(self) -> &'static str {
        match self {
            ExecutorWording::Command => "Command exited with status 0",
            ExecutorWording::Docker => "Container exited with status 0",
        }
    }

    /// The message of TASK_KILLED.
    fn killed_message(self) -> &'static str {
        match self {
            ExecutorWording::Command => "Command terminated with signal Terminated",
            ExecutorWording::Docker => "Container exited with status 143",
        }
    }
}

/// Configuration of a [`SimulatedAgent`].
#[derive(Debug, Clone)]
pub struct SimulatedAgentConfig {
    /// The agent's work directory and book of runs.
    pub book: AgentBook,
    /// How long a task runs unless its [`RUN_SECONDS_LABEL`] says otherwise
    /// (default 5 s).
    pub run_time: Duration,
    /// Whose updates are reported (default the command executor's).
    pub wording: ExecutorWording,
    /// What each task's sandbox `stdout` holds (default empty).
    pub stdout: String,
}

impl SimulatedAgentConfig {
    /// The defaults, for the agent whose book is `book`.
    pub fn new(book: AgentBook) -> Self {
        SimulatedAgentConfig {
            book,
            run_time: Duration::from_secs(5),
            wording: ExecutorWording::Command,
            stdout: String::new(),
        }
    }
}

/// How a running simulated task is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// KillTask or ShutdownExecutor: TASK_KILLING?, TASK_KILLED.
    Kill,
    /// The framework or the agent shuts down: no updates.
    Silent,
}

/// One task the agent runs (small: scale is 100 per agent and more).
#[derive(Debug)]
struct Live {
    executor_id: String,
    /// Present until the task was told to stop or ended.
    stop: Option<oneshot::Sender<Stop>>,
    /// The uuid of its terminal update once sent (the executor exits when
    /// it is acknowledged).
    terminal_uuid: Option<Vec<u8>>,
}

/// Tasks by framework id, then task id.
type Tasks = HashMap<String, HashMap<String, Live>>;

/// An agent that simulates its tasks (see the module documentation).
#[derive(Debug, Clone)]
pub struct SimulatedAgent {
    config: Arc<SimulatedAgentConfig>,
    tasks: Arc<Mutex<Tasks>>,
}

impl SimulatedAgent {
    /// A simulated agent with `config`.
    pub fn new(config: SimulatedAgentConfig) -> Self {
        SimulatedAgent {
            config: Arc::new(config),
            tasks: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The agent's book.
    pub fn book(&self) -> &AgentBook {
        &self.config.book
    }

    /// How many tasks have a live executor here.
    pub fn live_tasks(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run_task(&self, framework: &FrameworkInfo, task: &TaskInfo, uplink: &Uplink) {
        let framework_id = framework.id.clone().unwrap_or_default().value;
        let task_id = task.task_id.value.clone();
        let executor_id = task
            .executor
            .as_ref()
            .map_or_else(|| task_id.clone(), |e| e.executor_id.value.clone());
        let container_id = random_uuid_string();
        let book = &self.config.book;
        let sandbox = match book.new_run(
            framework,
            &executor_id,
            &container_id,
            task.executor.clone(),
        ) {
            Ok(sandbox) => sandbox,
            Err(error) => {
                let message = format!("Failed to create the executor's sandbox: {error}");
                report(
                    uplink,
                    &task_id,
                    agent_status(TaskState::TaskFailed, &message),
                );
                return;
            }
        };
        if let Err(error) = write_output(&sandbox, &self.config.stdout) {
            eprintln!(
                "simulated agent: sandbox files in {}: {error}",
                sandbox.display()
            );
        }
        book.set_task(&framework_id, &executor_id, task, TaskState::TaskStaging);
        let (stop, stopped) = oneshot::channel();
        self.lock().entry(framework_id.clone()).or_default().insert(
            task_id.clone(),
            Live {
                executor_id: executor_id.clone(),
                stop: Some(stop),
                terminal_uuid: None,
            },
        );
        let docker = (self.config.wording == ExecutorWording::Docker).then(|| DockerRun {
            container_id,
            sandbox: sandbox.display().to_string(),
            image: task
                .container
                .as_ref()
                .and_then(|c| c.docker.as_ref())
                .map(|d| d.image.clone())
                .unwrap_or_default(),
        });
        let run = TaskRun {
            agent: self.clone(),
            uplink: uplink.clone(),
            framework_id,
            executor_id,
            // The book holds the TaskInfo; later states name the task by id.
            task: TaskInfo {
                task_id: task.task_id.clone(),
                ..TaskInfo::default()
            },
            run_time: run_time(task, self.config.run_time),
            killing_state: has_capability(
                framework,
                framework_info::capability::Type::TaskKillingState,
            ),
            docker,
        };
        tokio::spawn(run.run(stopped));
    }

    fn kill_task(&self, framework_id: &str, task_id: &str, uplink: &Uplink) {
        let mut tasks = self.lock();
        let Some(framework) = tasks.get_mut(framework_id) else {
            // "no such framework is running": ignored.
            return;
        };
        match framework.get_mut(task_id) {
            Some(live) => {
                if let Some(stop) = live.stop.take() {
                    let _ = stop.send(Stop::Kill);
                }
            }
            None => {
                drop(tasks);
                let partition_aware = self.framework_partition_aware(framework_id);
                let state = if partition_aware {
                    TaskState::TaskDropped
                } else {
                    TaskState::TaskLost
                };
                let mut status = agent_status(state, "Cannot find executor");
                status.reason = Some(task_status::Reason::ExecutorTerminated as i32);
                report(uplink, task_id, status);
            }
        }
    }

    fn framework_partition_aware(&self, framework_id: &str) -> bool {
        self.config
            .book
            .frameworks()
            .iter()
            .find(|f| f.id.as_ref().is_some_and(|id| id.value == framework_id))
            .is_some_and(|f| has_capability(f, framework_info::capability::Type::PartitionAware))
    }

    fn shutdown_executor(&self, framework_id: &str, executor_id: &str) {
        let mut tasks = self.lock();
        let Some(framework) = tasks.get_mut(framework_id) else {
            return;
        };
        for live in framework
            .values_mut()
            .filter(|l| l.executor_id == executor_id)
        {
            if let Some(stop) = live.stop.take() {
                let _ = stop.send(Stop::Kill);
            }
        }
    }

    /// Ends every task of `framework_id` (every framework when `None`)
    /// without updates; their executors terminate.
    fn shutdown_silently(&self, framework_id: Option<&str>) {
        let removed: Vec<(String, HashMap<String, Live>)> = {
            let mut tasks = self.lock();
            match framework_id {
                Some(id) => tasks.remove_entry(id).into_iter().collect(),
                None => tasks.drain().collect(),
            }
        };
        for (framework_id, lives) in removed {
            for (_, mut live) in lives {
                // A task still running marks its executor terminated itself.
                let told = live
                    .stop
                    .take()
                    .is_some_and(|stop| stop.send(Stop::Silent).is_ok());
                if !told {
                    self.config
                        .book
                        .executor_terminated(&framework_id, &live.executor_id);
                }
            }
        }
    }

    fn acknowledged(&self, framework_id: &str, task_id: &str, uuid: &[u8]) {
        let mut tasks = self.lock();
        let Some(framework) = tasks.get_mut(framework_id) else {
            return;
        };
        let done = framework
            .get(task_id)
            .is_some_and(|live| live.terminal_uuid.as_deref() == Some(uuid));
        if !done {
            return;
        }
        let live = framework.remove(task_id);
        if framework.is_empty() {
            tasks.remove(framework_id);
        }
        drop(tasks);
        if let Some(live) = live {
            self.config
                .book
                .executor_terminated(framework_id, &live.executor_id);
        }
    }

    /// Records the uuid of a task's terminal update before it is sent.
    fn set_terminal(&self, framework_id: &str, task_id: &str, uuid: &[u8]) {
        if let Some(live) = self
            .lock()
            .get_mut(framework_id)
            .and_then(|f| f.get_mut(task_id))
        {
            live.stop = None;
            live.terminal_uuid = Some(uuid.to_vec());
        }
    }
}

impl AgentMode for SimulatedAgent {
    fn on_message(&self, message: AgentMessage, uplink: &Uplink) {
        match message {
            AgentMessage::RunTask { framework, task } => self.run_task(&framework, &task, uplink),
            AgentMessage::KillTask {
                framework_id,
                task_id,
                ..
            } => self.kill_task(&framework_id, &task_id, uplink),
            AgentMessage::Acknowledged {
                framework_id,
                task_id,
                uuid,
            } => self.acknowledged(&framework_id, &task_id, &uuid),
            // The command and docker executors ignore framework messages.
            AgentMessage::FrameworkMessage { .. } => {}
            AgentMessage::ShutdownExecutor {
                framework_id,
                executor_id,
            } => self.shutdown_executor(&framework_id, &executor_id),
            AgentMessage::ShutdownFramework { framework_id } => {
                self.shutdown_silently(Some(&framework_id));
            }
            AgentMessage::Shutdown { .. } => self.shutdown_silently(None),
        }
    }
}

/// One simulated task's life, on a tokio task (kept small: no TaskInfo).
struct TaskRun {
    agent: SimulatedAgent,
    uplink: Uplink,
    framework_id: String,
    executor_id: String,
    /// Only the task id (the book has the whole TaskInfo).
    task: TaskInfo,
    run_time: Result<Duration, String>,
    killing_state: bool,
    docker: Option<DockerRun>,
}

/// What the docker executor's TASK_RUNNING describes.
struct DockerRun {
    container_id: String,
    sandbox: String,
    image: String,
}

impl TaskRun {
    async fn run(self, mut stopped: oneshot::Receiver<Stop>) {
        let run_time = match &self.run_time {
            Ok(run_time) => *run_time,
            Err(message) => {
                self.terminal(TaskState::TaskFailed, message);
                return;
            }
        };
        self.update(TaskState::TaskStarting, None, None);
        let data = self.docker.as_ref().map(inspect_document);
        self.update(TaskState::TaskRunning, None, data);
        let stop = tokio::select! {
            () = tokio::time::sleep(run_time) => None,
            stop = &mut stopped => Some(stop.unwrap_or(Stop::Silent)),
        };
        let wording = self.agent.config.wording;
        match stop {
            None => self.terminal(TaskState::TaskFinished, wording.finished_message()),
            Some(Stop::Kill) => {
                if self.killing_state {
                    self.update(TaskState::TaskKilling, None, None);
                }
                self.terminal(TaskState::TaskKilled, wording.killed_message());
            }
            Some(Stop::Silent) => {
                let book = &self.agent.config.book;
                book.set_task(
                    &self.framework_id,
                    &self.executor_id,
                    &self.task,
                    TaskState::TaskKilled,
                );
                book.executor_terminated(&self.framework_id, &self.executor_id);
            }
        }
    }

    fn task_id(&self) -> &str {
        &self.task.task_id.value
    }

    fn update(&self, state: TaskState, message: Option<&str>, data: Option<Vec<u8>>) {
        let mut status = executor_status(self.task_id(), &self.executor_id, state);
        status.message = message.map(str::to_owned);
        status.data = data;
        self.send(state, status);
    }

    fn terminal(&self, state: TaskState, message: &str) {
        let mut status = executor_status(self.task_id(), &self.executor_id, state);
        status.message = Some(message.to_owned());
        let uuid = random_uuid().to_vec();
        status.uuid = Some(uuid.clone());
        self.agent
            .set_terminal(&self.framework_id, self.task_id(), &uuid);
        self.send(state, status);
    }

    fn send(&self, state: TaskState, status: TaskStatus) {
        self.agent
            .config
            .book
            .set_task(&self.framework_id, &self.executor_id, &self.task, state);
        report(&self.uplink, self.task_id(), status);
    }
}

/// A `docker inspect` array for the task's container, as the docker
/// executor puts it in TASK_RUNNING's `data` (the fields readers use: id,
/// name, state, image, and the sandbox mount).
fn inspect_document(docker: &DockerRun) -> Vec<u8> {
    let id: String = random_uuid()
        .iter()
        .chain(random_uuid().iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    let document = serde_json::json!([{
        "Id": id,
        "Name": format!("/mesos-{}", docker.container_id),
        "State": { "Status": "running", "Running": true, "Pid": 0, "ExitCode": 0 },
        "Config": { "Image": docker.image },
        "Mounts": [{
            "Type": "bind",
            "Source": docker.sandbox,
            "Destination": SANDBOX_MOUNT,
            "Mode": "",
            "RW": true,
            "Propagation": "rprivate"
        }],
        "NetworkSettings": { "IPAddress": "" }
    }]);
    document.to_string().into_bytes()
}

/// A task's run time: its [`RUN_SECONDS_LABEL`] or `default`.
fn run_time(task: &TaskInfo, default: Duration) -> Result<Duration, String> {
    let label = task
        .labels
        .iter()
        .flat_map(|l| l.labels.iter())
        .find(|l| l.key == RUN_SECONDS_LABEL);
    let Some(label) = label else {
        return Ok(default);
    };
    let value = label.value.clone().unwrap_or_default();
    value
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| {
            format!("label {RUN_SECONDS_LABEL}: '{value}' is not a non-negative number of seconds")
        })
}

fn has_capability(framework: &FrameworkInfo, wanted: framework_info::capability::Type) -> bool {
    framework
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(wanted as i32))
}

/// An update as an executor sends it (the agent marks it SOURCE_EXECUTOR).
fn executor_status(task_id: &str, executor_id: &str, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.to_owned(),
        },
        state: state as i32,
        source: Some(task_status::Source::Executor as i32),
        executor_id: Some(ExecutorId {
            value: executor_id.to_owned(),
        }),
        ..Default::default()
    }
}

/// An update the agent generates itself (SOURCE_AGENT).
fn agent_status(state: TaskState, message: &str) -> TaskStatus {
    TaskStatus {
        state: state as i32,
        source: Some(task_status::Source::Agent as i32),
        message: Some(message.to_owned()),
        ..Default::default()
    }
}

fn report(uplink: &Uplink, task_id: &str, mut status: TaskStatus) {
    status.task_id = TaskId {
        value: task_id.to_owned(),
    };
    if let Err(error) = uplink.send_status(task_id, status) {
        eprintln!("simulated agent {}: {error}", uplink.agent_id());
    }
}

/// The sandbox's `stdout` (with `stdout`) and empty `stderr`.
fn write_output(sandbox: &Path, stdout: &str) -> std::io::Result<()> {
    std::fs::write(sandbox.join("stdout"), stdout)?;
    std::fs::write(sandbox.join("stderr"), "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{Label, Labels};

    fn task_with_label(value: Option<&str>) -> TaskInfo {
        TaskInfo {
            labels: Some(Labels {
                labels: vec![Label {
                    key: RUN_SECONDS_LABEL.to_owned(),
                    value: value.map(str::to_owned),
                }],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn run_time_comes_from_the_label_or_the_default() {
        let default = Duration::from_secs(5);
        assert_eq!(run_time(&TaskInfo::default(), default), Ok(default));
        let task = task_with_label(Some("2.5"));
        assert_eq!(run_time(&task, default), Ok(Duration::from_millis(2500)));
    }

    #[test]
    fn run_time_label_that_is_not_seconds_names_the_label() {
        for bad in [Some("-1"), Some("soon"), None, Some("NaN")] {
            let error = run_time(&task_with_label(bad), Duration::ZERO).unwrap_err();
            assert!(error.contains(RUN_SECONDS_LABEL), "{error}");
        }
    }
}
