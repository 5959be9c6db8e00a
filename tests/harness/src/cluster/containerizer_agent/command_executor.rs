//! A stand-in for Mesos 1.0's command executor (`mesos-executor`,
//! `1.0.0:src/launcher/executor.cpp`) speaking the v1 HTTP executor API, as
//! the 1.0 command executor does when the agent runs with
//! `--http_command_executor` (`MESOS_HTTP_COMMAND_EXECUTOR=1`).
//!
//! Like the real one it: accepts only its 1.0 flags (`--rootfs`,
//! `--sandbox_directory`, `--working_directory`, `--user`, `--task_command`,
//! `--launcher_dir`, `--help`; 1.0 removed `--override`, so Deimos' old
//! observer command line is refused); needs `MESOS_FRAMEWORK_ID` and
//! `MESOS_EXECUTOR_ID`; subscribes and repeats the SUBSCRIBE every second
//! until SUBSCRIBED; runs the one task's command (`--task_command`, a JSON
//! `CommandInfo`, overrides the task's) as a child in a process group of its
//! own with the executor's standard streams; reports `TASK_RUNNING` once it
//! is forked; on KILL sends SIGTERM to the child's process group
//! (`TASK_KILLING` first when the framework has that capability) and SIGKILL
//! after the kill policy's grace period (3 s without one); on SHUTDOWN the
//! same with the shutdown grace period less 2 s; when the child ends,
//! `TASK_FINISHED` for exit 0, else `TASK_KILLED` if it was killed, else
//! `TASK_FAILED`, with the message `Command exited with status N` /
//! `Command terminated with signal <name>`, then exits 1 s later.
//!
//! Not modelled (refused with a message): `--rootfs`, `--sandbox_directory`,
//! `--user` (1.0 runs the command through `mesos-containerizer launch`, which
//! chroots and switches user; here the command is executed directly) and the
//! libprocess (non-HTTP) executor protocol.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use mesos_client::http::{Client, ClientConfig, Subscription};
use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::{
    framework_info, task_status, CommandInfo, ExecutorId, FrameworkId, FrameworkInfo, KillPolicy,
    TaskId, TaskInfo, TaskState, TaskStatus,
};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use prost::Message as _;
use tokio::process::Child;
use tokio::time::{sleep_until, Instant};

use crate::common::uuid::random_uuid;

/// The flags `mesos-executor` 1.0 knows (stout flags: `--name=value`).
const FLAGS: [&str; 7] = [
    "rootfs",
    "sandbox_directory",
    "working_directory",
    "user",
    "task_command",
    "launcher_dir",
    "help",
];

/// The 1.0 kill grace period without a kill policy.
const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);
/// libprocess' `MAX_REAP_INTERVAL` plus the second the executor keeps to send
/// `TASK_KILLED` before the agent destroys the container.
const SHUTDOWN_BUFFER: Duration = Duration::from_secs(2);

/// The parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorFlags {
    /// `--task_command`: a JSON `CommandInfo` run instead of the task's.
    pub task_command: Option<String>,
    /// `--working_directory`.
    pub working_directory: Option<String>,
    /// `--help`.
    pub help: bool,
}

/// Parses `mesos-executor`'s arguments (without the program name) as stout
/// does: every argument must be a known `--name=value` flag.
pub fn parse_flags(args: &[String]) -> Result<ExecutorFlags, String> {
    let mut flags = ExecutorFlags::default();
    for arg in args {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("Failed to load flags: unexpected argument '{arg}'"));
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag, None),
        };
        if !FLAGS.contains(&name) {
            return Err(format!("Failed to load unknown flag '{name}'"));
        }
        match (name, value) {
            ("help", None) => flags.help = true,
            ("task_command", Some(v)) => flags.task_command = Some(v),
            ("working_directory", Some(v)) => flags.working_directory = Some(v),
            ("launcher_dir", Some(_)) => {}
            (name @ ("rootfs" | "sandbox_directory" | "user"), Some(_)) => {
                return Err(format!(
                    "--{name} is not supported by the harness's mesos-executor \
                     (it runs the command directly, without mesos-containerizer)"
                ))
            }
            (name, _) => return Err(format!("Failed to load flag '{name}': missing value")),
        }
    }
    Ok(flags)
}

/// What the executor needs from its environment.
#[derive(Debug, Clone)]
struct Settings {
    framework_id: String,
    executor_id: String,
    agent_endpoint: String,
    shutdown_grace: Duration,
    checkpoint: bool,
    recovery_timeout: Duration,
}

fn settings(env: &HashMap<String, String>) -> Result<Settings, String> {
    let need = |name: &str| {
        env.get(name)
            .cloned()
            .ok_or_else(|| format!("Expecting '{name}' to be set in the environment"))
    };
    if env.get("MESOS_HTTP_COMMAND_EXECUTOR").map(String::as_str) != Some("1") {
        return Err(
            "the harness's mesos-executor speaks only the HTTP executor API: \
             MESOS_HTTP_COMMAND_EXECUTOR must be 1 (agent --http_command_executor)"
                .to_owned(),
        );
    }
    let duration = |name: &str, default: Duration| match env.get(name) {
        Some(value) => parse_stout_duration(value)
            .ok_or_else(|| format!("Failed to parse value '{value}' of '{name}': not a duration")),
        None => Ok(default),
    };
    Ok(Settings {
        framework_id: need("MESOS_FRAMEWORK_ID")?,
        executor_id: need("MESOS_EXECUTOR_ID")?,
        agent_endpoint: need("MESOS_AGENT_ENDPOINT")?,
        shutdown_grace: duration(
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
            Duration::from_secs(5),
        )?,
        checkpoint: env.get("MESOS_CHECKPOINT").map(String::as_str) == Some("1"),
        recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", Duration::from_secs(15 * 60))?,
    })
}

/// Parses a stout duration (`5secs`, `250ms`, `1.5mins`).
pub fn parse_stout_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86_400.0,
        "weeks" => 604_800.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * seconds).ok()
}

/// `WSTRINGIFY` of a wait status, prefixed with `Command ` as the command
/// executor reports it.
pub fn command_message(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Command exited with status {code}"),
        (None, Some(signal)) => format!("Command terminated with signal {}", strsignal(signal)),
        (None, None) => "Command exited with status -1".to_owned(),
    }
}

/// glibc's `strsignal` texts of the signals a task usually dies of.
fn strsignal(signal: i32) -> String {
    let name = match signal {
        1 => "Hangup",
        2 => "Interrupt",
        3 => "Quit",
        4 => "Illegal instruction",
        6 => "Aborted",
        7 => "Bus error",
        8 => "Floating point exception",
        9 => "Killed",
        10 => "User defined signal 1",
        11 => "Segmentation fault",
        12 => "User defined signal 2",
        13 => "Broken pipe",
        14 => "Alarm clock",
        15 => "Terminated",
        _ => return format!("Unknown signal {signal}"),
    };
    name.to_owned()
}

/// `mesos-executor`'s `main`: returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let flags = match parse_flags(args) {
        Ok(flags) => flags,
        Err(error) => {
            eprintln!("{error}\n\nUsage: mesos-executor [options]");
            return 1;
        }
    };
    if flags.help {
        println!("Usage: mesos-executor [options]");
        return 0;
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = match settings(&env) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return 1;
        }
    };
    match runtime.block_on(Executor::new(settings, flags).run()) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("{error}");
            1
        }
    }
}

/// The executor's state (`CommandExecutor` in executor.cpp).
struct Executor {
    settings: Settings,
    flags: ExecutorFlags,
    client: Client,
    url: String,
    framework: Option<FrameworkInfo>,
    task: Option<TaskInfo>,
    task_id: Option<TaskId>,
    kill_policy: Option<KillPolicy>,
    child: Option<Child>,
    pgid: Option<Pid>,
    killed: bool,
    kill_started: Option<Instant>,
    escalation: Option<Instant>,
    unacknowledged: Vec<call::Update>,
}

impl Executor {
    fn new(settings: Settings, flags: ExecutorFlags) -> Executor {
        let url = format!("http://{}/api/v1/executor", settings.agent_endpoint);
        let client = Client::new(ClientConfig::default()).unwrap_or_else(|_| {
            // Only TLS or credential set-up can fail, and neither is used.
            unreachable_client()
        });
        Executor {
            settings,
            flags,
            client,
            url,
            framework: None,
            task: None,
            task_id: None,
            kill_policy: None,
            child: None,
            pgid: None,
            killed: false,
            kill_started: None,
            escalation: None,
            unacknowledged: Vec::new(),
        }
    }

    fn envelope(&self, kind: call::Type) -> Call {
        Call {
            framework_id: FrameworkId {
                value: self.settings.framework_id.clone(),
            },
            executor_id: ExecutorId {
                value: self.settings.executor_id.clone(),
            },
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    async fn subscribe(&self) -> Option<Subscription<Event>> {
        let call = Call {
            subscribe: Some(call::Subscribe {
                unacknowledged_tasks: self.task.iter().cloned().collect(),
                unacknowledged_updates: self.unacknowledged.clone(),
            }),
            ..self.envelope(call::Type::Subscribe)
        };
        match self
            .client
            .subscribe(&self.url, "SUBSCRIBE", call.encode_to_vec(), None)
            .await
        {
            Ok(subscription) => Some(subscription),
            Err(error) => {
                eprintln!("SUBSCRIBE failed: {error}");
                None
            }
        }
    }

    /// The event loop; returns when the task's end was reported (or the
    /// agent could not be reached again within the recovery timeout).
    async fn run(mut self) -> Result<(), String> {
        let mut connection: Option<Subscription<Event>> = None;
        let mut disconnected_since = Instant::now();
        loop {
            if connection.is_none() {
                if disconnected_since.elapsed() > self.settings.recovery_timeout {
                    return Err("the agent did not come back within the recovery timeout".into());
                }
                connection = self.subscribe().await;
                if connection.is_none() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            let Some(subscription) = connection.as_mut() else {
                continue;
            };
            let escalation = self.escalation;
            tokio::select! {
                event = subscription.next_event() => match event {
                    Ok(event) => self.received(event).await,
                    Err(error) => {
                        eprintln!("disconnected from the agent: {error}");
                        connection = None;
                        disconnected_since = Instant::now();
                        if !self.settings.checkpoint {
                            // Without checkpointing the executor library
                            // gives up at once: the executor shuts down.
                            self.shutdown();
                        }
                    }
                },
                status = wait_child(&mut self.child) => {
                    return self.reaped(status).await;
                }
                () = sleep_until(escalation.unwrap_or_else(Instant::now)), if escalation.is_some() => {
                    self.escalation = None;
                    self.signal(Signal::SIGKILL);
                }
            }
        }
    }

    async fn received(&mut self, event: Event) {
        match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
            Some(event::Type::Subscribed) => {
                self.framework = event.subscribed.map(|s| s.framework_info);
            }
            Some(event::Type::Launch) => {
                if let Some(launch) = event.launch {
                    self.launch(launch.task).await;
                }
            }
            Some(event::Type::Kill) => {
                if let Some(kill) = event.kill {
                    let grace = kill
                        .kill_policy
                        .as_ref()
                        .or(self.kill_policy.as_ref())
                        .and_then(|p| p.grace_period.as_ref())
                        .map_or(DEFAULT_KILL_GRACE, |d| {
                            Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0))
                        });
                    self.kill(grace).await;
                }
            }
            Some(event::Type::Acknowledged) => {
                if let Some(ack) = event.acknowledged {
                    self.unacknowledged
                        .retain(|u| u.status.uuid.as_deref() != Some(ack.uuid.as_slice()));
                    self.task = None;
                }
            }
            Some(event::Type::Shutdown) => self.shutdown(),
            Some(event::Type::Error) => {
                eprintln!(
                    "Error: {}",
                    event.error.map(|e| e.message).unwrap_or_default()
                );
            }
            _ => {}
        }
    }

    async fn launch(&mut self, task: TaskInfo) {
        if self.task_id.is_some() {
            let message = "Attempted to run multiple tasks using a \"command\" executor";
            self.update(&task.task_id, TaskState::TaskFailed, Some(message))
                .await;
            return;
        }
        self.task_id = Some(task.task_id.clone());
        self.kill_policy = task.kill_policy;
        let command = match &self.flags.task_command {
            Some(json) => match mesos_proto::json::from_str::<CommandInfo>(json) {
                Ok(command) => command,
                Err(error) => {
                    eprintln!("Failed to parse JSON: {error}");
                    std::process::exit(1);
                }
            },
            None => task.command.clone().unwrap_or_default(),
        };
        self.task = Some(task.clone());
        let mut process = if command.shell.unwrap_or(true) {
            let mut process = tokio::process::Command::new("sh");
            process
                .arg("-c")
                .arg(command.value.clone().unwrap_or_default());
            process
        } else {
            let mut process =
                tokio::process::Command::new(command.value.clone().unwrap_or_default());
            if let Some((first, rest)) = command.arguments.split_first() {
                process.arg0(first).args(rest);
            }
            process
        };
        if let Some(dir) = &self.flags.working_directory {
            process.current_dir(dir);
        }
        // In a process group of its own, so that a kill reaches its whole tree.
        process.process_group(0);
        match process.spawn() {
            Ok(child) => {
                self.pgid = child
                    .id()
                    .and_then(|p| i32::try_from(p).ok())
                    .map(Pid::from_raw);
                self.child = Some(child);
                self.update(&task.task_id, TaskState::TaskRunning, None)
                    .await;
            }
            Err(error) => {
                // 1.0 aborts the executor when the launch helper cannot start.
                eprintln!("Failed to launch the command: {error}");
                std::process::exit(1);
            }
        }
    }

    async fn kill(&mut self, grace: Duration) {
        if self.killed {
            // Retries may only shorten the escalation.
            let start = self.kill_started.unwrap_or_else(Instant::now);
            if let Some(at) = self.escalation {
                if start + grace < at {
                    self.escalation = Some((start + grace).max(Instant::now()));
                }
            }
            return;
        }
        let Some(task_id) = self.task_id.clone() else {
            return;
        };
        if self.child.is_none() {
            return;
        }
        if self.framework_can(framework_info::capability::Type::TaskKillingState) {
            self.update(&task_id, TaskState::TaskKilling, None).await;
        }
        self.signal(Signal::SIGTERM);
        self.kill_started = Some(Instant::now());
        self.escalation = Some(Instant::now() + grace);
        self.killed = true;
    }

    fn shutdown(&mut self) {
        let grace = self.settings.shutdown_grace.saturating_sub(SHUTDOWN_BUFFER);
        if self.child.is_none() {
            std::process::exit(0);
        }
        if self.killed {
            return;
        }
        self.signal(Signal::SIGTERM);
        self.kill_started = Some(Instant::now());
        self.escalation = Some(Instant::now() + grace);
        self.killed = true;
    }

    fn framework_can(&self, capability: framework_info::capability::Type) -> bool {
        self.framework.as_ref().is_some_and(|f| {
            f.capabilities
                .iter()
                .any(|c| c.r#type == Some(capability as i32))
        })
    }

    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            if let Err(error) = killpg(pgid, signal) {
                eprintln!("Failed to signal the process group {pgid}: {error}");
            }
        }
    }

    async fn reaped(&mut self, status: std::io::Result<ExitStatus>) -> Result<(), String> {
        self.child = None;
        let (state, message) = match status {
            Ok(status) if status.code() == Some(0) => {
                (TaskState::TaskFinished, command_message(status))
            }
            Ok(status) if self.killed => (TaskState::TaskKilled, command_message(status)),
            Ok(status) => (TaskState::TaskFailed, command_message(status)),
            Err(error) => (
                TaskState::TaskFailed,
                format!("Failed to get exit status for Command: {error}"),
            ),
        };
        let task_id = self.task_id.clone().unwrap_or_default();
        self.update(&task_id, state, Some(&message)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }

    async fn update(&mut self, task_id: &TaskId, state: TaskState, message: Option<&str>) {
        let status = TaskStatus {
            task_id: task_id.clone(),
            executor_id: Some(ExecutorId {
                value: self.settings.executor_id.clone(),
            }),
            state: state as i32,
            source: Some(task_status::Source::Executor as i32),
            uuid: Some(random_uuid().to_vec()),
            message: message.map(str::to_owned),
            ..Default::default()
        };
        let update = call::Update { status };
        self.unacknowledged.push(update.clone());
        let call = Call {
            update: Some(update),
            ..self.envelope(call::Type::Update)
        };
        if let Err(error) = self
            .client
            .call(&self.url, "UPDATE", call.encode_to_vec(), None)
            .await
        {
            // Kept unacknowledged: the next SUBSCRIBE carries it.
            eprintln!("UPDATE failed: {error}");
        }
    }
}

/// Waits for the child if there is one; never resolves otherwise.
async fn wait_child(child: &mut Option<Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

fn unreachable_client() -> Client {
    eprintln!("cannot build the HTTP client");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn override_flag_of_older_mesos_is_refused_as_1_0_does() {
        let error = parse_flags(&args(&["--override", "/bin/deimos", "observe", "x"])).unwrap_err();
        assert_eq!(error, "Failed to load unknown flag 'override'");
    }

    #[test]
    fn task_command_and_launcher_dir_are_accepted() {
        let flags = parse_flags(&args(&[
            "--launcher_dir=/usr/libexec/mesos",
            "--task_command={\"value\":\"true\"}",
        ]))
        .unwrap();
        assert_eq!(flags.task_command.as_deref(), Some("{\"value\":\"true\"}"));
    }

    #[test]
    fn wait_statuses_are_worded_as_wstringify() {
        assert_eq!(
            command_message(ExitStatus::from_raw(3 << 8)),
            "Command exited with status 3"
        );
        assert_eq!(
            command_message(ExitStatus::from_raw(15)),
            "Command terminated with signal Terminated"
        );
        assert_eq!(
            command_message(ExitStatus::from_raw(9)),
            "Command terminated with signal Killed"
        );
    }

    #[test]
    fn stout_durations_parse() {
        assert_eq!(parse_stout_duration("5secs"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_stout_duration("250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_stout_duration("15mins"),
            Some(Duration::from_secs(900))
        );
        assert_eq!(parse_stout_duration("5"), None);
        assert_eq!(parse_stout_duration("five secs"), None);
    }
}
