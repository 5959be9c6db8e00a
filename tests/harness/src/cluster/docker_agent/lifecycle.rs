//! One task's run under the Docker agent: the executor's side (statuses,
//! kills) and the containerizer's (sandbox, destroy, removal).

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mesos_proto::v1::network_info::{IpAddress, Protocol};
use mesos_proto::v1::{
    framework_info, task_status, value, ContainerId, ContainerStatus, ExecutorInfo, FrameworkInfo,
    NetworkInfo, Resource, TaskInfo, TaskResourceLimitation, TaskState, TaskStatus,
};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{sleep_until, Instant};

use super::options::{self, Inspected, RunContext};
use super::{Control, DockerAgentConfig, TASK_STARTING_SINCE};
use crate::cluster::Uplink;
use crate::common::uuid::{random_uuid, uuid_string};

/// The label on every container this mode creates for a MESOS task (value:
/// the Mesos container id), so tests and operators can find them.
pub const UNIFIED_LABEL: &str = "mesos-harness.unified-container";

/// `DOCKER_INSPECT_DELAY`: between two `docker inspect` attempts.
const INSPECT_DELAY: Duration = Duration::from_millis(500);
/// `DOCKER_INSPECT_TIMEOUT`: how long the executor waits for the inspect
/// after the container exited before it reports without TASK_RUNNING.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The command executor's default kill grace period.
const COMMAND_KILL_GRACE: Duration = Duration::from_secs(3);
/// `MAX_REAP_INTERVAL` + 1 s: taken off the shutdown grace period when an
/// executor kills its task on shutdown.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(2);

/// Which containerizer runs the task.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// The Docker containerizer and the docker executor.
    Docker,
    /// The unified containerizer and the command executor, with this
    /// Docker image.
    Unified(String),
}

/// Everything a task's run needs.
pub(super) struct TaskRun {
    pub config: Arc<DockerAgentConfig>,
    pub uplink: Uplink,
    pub framework: FrameworkInfo,
    pub task: TaskInfo,
    pub executor: ExecutorInfo,
    pub kind: Kind,
    pub shutdown_grace: Duration,
}

/// The role the task's resources are allocated to (the framework's when
/// the master did not say; `role` is the pre-multi-role field).
#[allow(deprecated)]
pub(super) fn allocation_role(framework: &FrameworkInfo, task: &TaskInfo) -> String {
    task.resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
        .or_else(|| framework.roles.first().cloned())
        .or_else(|| framework.role.clone())
        .unwrap_or_else(|| "*".to_owned())
}

/// The run's mutable executor state.
#[derive(Debug, Default)]
struct ExecutorState {
    killed: bool,
    exit: Option<std::io::Result<ExitStatus>>,
    exited_at: Option<Instant>,
    destroy_at: Option<Instant>,
}

impl TaskRun {
    fn framework_id(&self) -> String {
        self.framework.id.clone().unwrap_or_default().value
    }

    fn docker(&self) -> Command {
        let mut command = Command::new(&self.config.docker);
        command
            .arg("-H")
            .arg(format!("unix://{}", self.config.docker_socket))
            .stdin(Stdio::null());
        command
    }

    /// Sends a status for the task, as the executor (`source` EXECUTOR) or
    /// the agent, with the `container_status` the agent adds; records it.
    fn report(
        &self,
        container_id: &str,
        mut status: TaskStatus,
        networks: Vec<NetworkInfo>,
    ) -> Vec<u8> {
        let networks = if networks.is_empty() {
            vec![NetworkInfo {
                ip_addresses: vec![IpAddress {
                    ip_address: Some(self.config.agent_ip.clone()),
                    ..Default::default()
                }],
                ..Default::default()
            }]
        } else {
            networks
        };
        status.container_status = Some(ContainerStatus {
            container_id: Some(ContainerId {
                value: container_id.to_owned(),
                ..Default::default()
            }),
            network_infos: networks,
            ..Default::default()
        });
        status.executor_id = Some(self.executor.executor_id.clone());
        let state = status.state();
        let task_id = &self.task.task_id.value;
        self.config
            .book
            .set_task(&self.framework_id(), task_id, &self.task, state);
        self.uplink.send_status(task_id, status).unwrap_or_default()
    }

    fn executor_status(&self, state: TaskState, message: Option<String>) -> TaskStatus {
        TaskStatus {
            state: state as i32,
            source: Some(task_status::Source::Executor as i32),
            message,
            ..Default::default()
        }
    }

    /// Runs the task to its end and the executor to its exit.
    pub(super) async fn run(self, mut controls: UnboundedReceiver<Control>) {
        let container_id = uuid_string(&random_uuid());
        let task_id = self.task.task_id.value.clone();
        let book = &self.config.book;
        let sandbox = book.new_run(
            &self.framework,
            &task_id,
            &container_id,
            Some(self.executor.clone()),
        );
        book.set_task(
            &self.framework_id(),
            &task_id,
            &self.task,
            TaskState::TaskStaging,
        );
        let sandbox = match sandbox {
            Ok(sandbox) => sandbox,
            Err(error) => {
                let message = format!("Failed to create the executor's sandbox: {error}");
                self.agent_failure(&container_id, message);
                return;
            }
        };
        if self.config.version >= TASK_STARTING_SINCE {
            let starting = self.executor_status(TaskState::TaskStarting, None);
            self.report(&container_id, starting, Vec::new());
        }
        let name = match &self.kind {
            Kind::Docker => format!("mesos-{container_id}"),
            Kind::Unified(_) => format!("mesos-unified-{container_id}"),
        };
        let role = allocation_role(&self.framework, &self.task);
        let docker_path = self.config.docker.display().to_string();
        let ctx = RunContext {
            docker: &docker_path,
            socket: &self.config.docker_socket,
            name: &name,
            sandbox: &sandbox,
            mapped: &self.config.sandbox_directory,
            role: &role,
            enable_cfs: self.config.cgroups_enable_cfs,
        };
        let argv = match &self.kind {
            Kind::Docker => options::docker_executor_argv(&self.task, &ctx)
                .map_err(|e| format!("Failed to create docker run options: {e}")),
            Kind::Unified(image) => {
                let labels = [(UNIFIED_LABEL.to_owned(), container_id.clone())];
                options::unified_argv(&self.task, image, &ctx, &labels)
                    .map_err(|e| format!("Failed to launch container: {e}"))
            }
        };
        let child = argv.and_then(|argv| {
            spawn_run(&argv, &sandbox).map_err(|e| match self.kind {
                Kind::Docker => format!("Failed to run docker container: {e}"),
                Kind::Unified(_) => format!("Failed to launch container: {e}"),
            })
        });
        let child = match child {
            Ok(child) => child,
            Err(message) => {
                match self.kind {
                    Kind::Docker => {
                        let failed = self.executor_status(TaskState::TaskFailed, Some(message));
                        self.report(&container_id, failed, Vec::new());
                        self.linger(&mut controls, None).await;
                    }
                    Kind::Unified(_) => self.agent_failure(&container_id, message),
                }
                book.executor_terminated(&self.framework_id(), &task_id);
                return;
            }
        };
        self.supervise(child, &container_id, &name, &mut controls)
            .await;
    }

    /// The agent fails the task itself (`REASON_CONTAINER_LAUNCH_FAILED`)
    /// when the container could not be launched.
    fn agent_failure(&self, container_id: &str, message: String) {
        let status = TaskStatus {
            state: TaskState::TaskFailed as i32,
            source: Some(task_status::Source::Agent as i32),
            reason: Some(task_status::Reason::ContainerLaunchFailed as i32),
            message: Some(message),
            ..Default::default()
        };
        self.report(container_id, status, Vec::new());
        self.config
            .book
            .executor_terminated(&self.framework_id(), &self.task.task_id.value);
    }

    async fn supervise(
        &self,
        mut child: Child,
        container_id: &str,
        name: &str,
        controls: &mut UnboundedReceiver<Control>,
    ) {
        let mut state = ExecutorState::default();
        let mut pending_kill = None;
        // Until `docker inspect` sees the container started (or it exited
        // and the inspect timed out), kills wait: the executor issues them
        // after the inspect.
        let inspected = loop {
            let tick = Instant::now() + INSPECT_DELAY;
            tokio::select! {
                status = child.wait(), if state.exit.is_none() => {
                    state.exit = Some(status);
                    state.exited_at = Some(Instant::now());
                }
                Some(control) = controls.recv() => match control {
                    Control::Kill(grace) => pending_kill = Some(self.kill_grace(grace)),
                    Control::Shutdown => pending_kill = Some(self.shutdown(&mut state)),
                    Control::Acknowledged(_) => {}
                },
                () = sleep_until(tick) => {
                    if let Some(found) = self.inspect(name).await.filter(|(_, i)| i.started) {
                        break Some(found);
                    }
                    if state.exited_at.is_some_and(|t| t.elapsed() >= INSPECT_TIMEOUT) {
                        break None;
                    }
                }
            }
        };
        if let Some((raw, inspected)) = &inspected {
            self.send_running(container_id, raw, inspected);
        }
        if let Some(grace) = pending_kill {
            self.kill(name, grace, &mut state, container_id);
        }
        while state.exit.is_none() {
            let destroy_at = state.destroy_at;
            tokio::select! {
                status = child.wait() => {
                    state.exit = Some(status);
                }
                Some(control) = controls.recv() => match control {
                    Control::Kill(grace) => {
                        let grace = self.kill_grace(grace);
                        self.kill(name, grace, &mut state, container_id);
                    }
                    Control::Shutdown => {
                        let grace = self.shutdown(&mut state);
                        self.kill(name, grace, &mut state, container_id);
                    }
                    Control::Acknowledged(_) => {}
                },
                () = sleep_until(destroy_at.unwrap_or_else(Instant::now)), if destroy_at.is_some() => {
                    // The agent destroys the executor's container.
                    state.destroy_at = None;
                    self.docker_stop(name, self.config.docker_stop_timeout.as_secs_f64());
                }
            }
        }
        self.finish(container_id, name, state, controls).await;
    }

    /// The kill grace: the KILL's or the task's kill policy, else the
    /// executor's default.
    fn kill_grace(&self, policy: Option<Duration>) -> f64 {
        let default = match self.kind {
            Kind::Docker => self.shutdown_grace,
            Kind::Unified(_) => COMMAND_KILL_GRACE,
        };
        policy.unwrap_or(default).as_secs_f64()
    }

    /// The executor's `shutdown`: kill with the shutdown grace less the
    /// reap margin; the agent destroys the container when the shutdown
    /// grace period has passed.
    fn shutdown(&self, state: &mut ExecutorState) -> f64 {
        state
            .destroy_at
            .get_or_insert(Instant::now() + self.shutdown_grace);
        self.shutdown_grace.as_secs_f64() - SHUTDOWN_MARGIN.as_secs_f64()
    }

    fn send_running(&self, container_id: &str, raw: &str, inspected: &Inspected) {
        let mut status = self.executor_status(TaskState::TaskRunning, None);
        let mut networks = Vec::new();
        if let Kind::Docker = self.kind {
            status.data = Some(raw.as_bytes().to_vec());
            if inspected.ip.is_some() || inspected.ip6.is_some() {
                let mut network = self
                    .task
                    .container
                    .as_ref()
                    .and_then(|c| c.network_infos.first().cloned())
                    .unwrap_or_default();
                network.ip_addresses.clear();
                if let Some(ip) = &inspected.ip {
                    network.ip_addresses.push(IpAddress {
                        ip_address: Some(ip.clone()),
                        ..Default::default()
                    });
                }
                if let Some(ip) = &inspected.ip6 {
                    network.ip_addresses.push(IpAddress {
                        ip_address: Some(ip.clone()),
                        protocol: Some(Protocol::IPv6 as i32),
                    });
                }
                networks.push(network);
            }
        }
        self.report(container_id, status, networks);
    }

    /// `_killTask`: TASK_KILLING once (frameworks that understand it), then
    /// `docker stop -t <grace>` (a negative grace makes `docker stop` fail,
    /// so nothing is stopped).
    fn kill(&self, name: &str, grace: f64, state: &mut ExecutorState, container_id: &str) {
        if state.exit.is_some() {
            return;
        }
        if !state.killed {
            state.killed = true;
            let capable = self.framework.capabilities.iter().any(|c| {
                c.r#type == Some(framework_info::capability::Type::TaskKillingState as i32)
            });
            if capable {
                let killing = self.executor_status(TaskState::TaskKilling, None);
                self.report(container_id, killing, Vec::new());
            }
        }
        self.docker_stop(name, grace);
    }

    fn docker_stop(&self, name: &str, grace_secs: f64) {
        // `Docker::stop` truncates the duration to whole seconds.
        let secs = grace_secs.trunc() as i64;
        if secs < 0 {
            return;
        }
        let mut command = self.docker();
        command
            .args(["stop", "-t", &secs.to_string(), name])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        tokio::spawn(async move {
            let _ = command.status().await;
        });
    }

    /// `docker inspect --type=container <name>`: the raw output and what
    /// the executor reads from it, once it parses.
    async fn inspect(&self, name: &str) -> Option<(String, Inspected)> {
        let output = self
            .docker()
            .args(["inspect", "--type=container", name])
            .stderr(Stdio::null())
            .output()
            .await
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let raw = String::from_utf8_lossy(&output.stdout).into_owned();
        let inspected = options::parse_inspect(&raw).ok()?;
        Some((raw, inspected))
    }

    /// Whether the OOM killer ended the container. Docker can record the OOM kill a moment
    /// after the exit (two events from containerd), so a container that died of SIGKILL is
    /// looked at again for up to a second before it counts as not OOM-killed (unless the
    /// agent killed it: `may_follow` is false).
    async fn oom_killed(&self, name: &str, may_follow: bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let oom = self.inspect(name).await.is_some_and(|(_, i)| i.oom_killed);
            if oom || !may_follow || tokio::time::Instant::now() >= deadline {
                return oom;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The terminal update, the executor's exit and the container's end.
    async fn finish(
        &self,
        container_id: &str,
        name: &str,
        state: ExecutorState,
        controls: &mut UnboundedReceiver<Control>,
    ) {
        let exit = state
            .exit
            .unwrap_or_else(|| Err(std::io::ErrorKind::Other.into()));
        match &self.kind {
            Kind::Docker => {
                let (task_state, message) = match &exit {
                    Err(error) => (
                        TaskState::TaskFailed,
                        format!("Failed to run docker container: {error}"),
                    ),
                    Ok(status) => (
                        terminal_state(state.killed, status.success()),
                        format!("Container {}", options::wstringify(*status)),
                    ),
                };
                let status = self.executor_status(task_state, Some(message));
                self.report(container_id, status, Vec::new());
                // The docker executor stops itself after its fail-safe
                // delay, acknowledged or not.
                self.linger(controls, None).await;
                self.executor_exited();
                self.remove_later(name.to_owned(), self.config.docker_remove_delay);
            }
            Kind::Unified(_) => {
                // A SIGKILL the agent sent itself (a kill) needs no wait for the OOM flag.
                let sigkilled = matches!(&exit, Ok(status) if status.code() == Some(128 + 9));
                if self.oom_killed(name, sigkilled && !state.killed).await {
                    self.report(container_id, self.memory_limitation(), Vec::new());
                } else {
                    let status = self.command_terminal(&exit, state.killed);
                    let uuid = self.report(container_id, status, Vec::new());
                    self.linger(controls, Some(uuid)).await;
                }
                self.executor_exited();
                // The Mesos containerizer leaves no container behind.
                self.remove_later(name.to_owned(), Duration::ZERO);
            }
        }
    }

    /// The command executor's terminal update. Docker reports a process
    /// killed by a signal as exit code 128 + signal; after our kill that is
    /// what the command executor sees as "terminated with signal".
    fn command_terminal(&self, exit: &std::io::Result<ExitStatus>, killed: bool) -> TaskStatus {
        use std::os::unix::process::ExitStatusExt;
        let (task_state, message) = match exit {
            Err(error) => (
                TaskState::TaskFailed,
                format!("Failed to get exit status for Command: {error}"),
            ),
            Ok(status) => {
                let shown = match status.code() {
                    Some(code) if killed && code > 128 => ExitStatus::from_raw(code - 128),
                    _ => *status,
                };
                (
                    terminal_state(killed, status.success()),
                    format!("Command {}", options::wstringify(shown)),
                )
            }
        };
        self.executor_status(task_state, Some(message))
    }

    /// The agent's TASK_FAILED after the memory isolator saw an OOM: the
    /// limit is the task's memory plus the executor's allowance; the cgroup
    /// is gone by the time Docker reports it, so the maximum usage and
    /// statistics cannot be read and are left out, as the isolator does
    /// when those reads fail (and the limited resources carry 0 MB).
    fn memory_limitation(&self) -> TaskStatus {
        let mem = options::scalar(&self.task, "mem").unwrap_or(0.0) + 32.0;
        let limit = (mem as u64 * 1024 * 1024).max(options::MIN_MEMORY);
        TaskStatus {
            state: TaskState::TaskFailed as i32,
            source: Some(task_status::Source::Agent as i32),
            reason: Some(task_status::Reason::ContainerLimitationMemory as i32),
            message: Some(format!(
                "Memory limit exceeded: Requested: {} ",
                options::bytes_text(limit)
            )),
            limitation: Some(TaskResourceLimitation {
                resources: vec![Resource {
                    name: "mem".to_owned(),
                    r#type: value::Type::Scalar as i32,
                    scalar: Some(value::Scalar { value: 0.0 }),
                    allocation_info: Some(mesos_proto::v1::resource::AllocationInfo {
                        role: Some("*".to_owned()),
                    }),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }
    }

    /// Waits until the executor exits after its terminal update: the
    /// fail-safe delay, the acknowledgement of `terminal` (command
    /// executor), or a shutdown.
    async fn linger(&self, controls: &mut UnboundedReceiver<Control>, terminal: Option<Vec<u8>>) {
        let deadline = Instant::now() + self.config.executor_stop_delay;
        loop {
            tokio::select! {
                () = sleep_until(deadline) => return,
                control = controls.recv() => match control {
                    None | Some(Control::Shutdown) => return,
                    Some(Control::Acknowledged(uuid)) if Some(&uuid) == terminal.as_ref() => return,
                    Some(_) => {}
                },
            }
        }
    }

    fn executor_exited(&self) {
        self.config
            .book
            .executor_terminated(&self.framework_id(), &self.task.task_id.value);
    }

    /// `docker rm -f -v <name>` after `delay`.
    fn remove_later(&self, name: String, delay: Duration) {
        let mut command = self.docker();
        command
            .args(["rm", "-f", "-v", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = command.status().await;
        });
    }
}

fn terminal_state(killed: bool, success: bool) -> TaskState {
    if killed {
        TaskState::TaskKilled
    } else if success {
        TaskState::TaskFinished
    } else {
        TaskState::TaskFailed
    }
}

/// Starts `docker run` with its output in the sandbox's `stdout` and
/// `stderr`.
fn spawn_run(argv: &[String], sandbox: &std::path::Path) -> Result<Child, String> {
    let open = |file: &str| -> Result<std::fs::File, String> {
        let path: PathBuf = sandbox.join(file);
        std::fs::File::create(&path)
            .map_err(|e| format!("Failed to create '{}': {e}", path.display()))
    };
    let (program, args) = argv.split_first().ok_or("empty docker command")?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(open("stdout")?)
        .stderr(open("stderr")?)
        .spawn()
        .map_err(|e| format!("Failed to create subprocess '{program}': {e}"))
}
