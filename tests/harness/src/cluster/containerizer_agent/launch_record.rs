//! What a Mesos 1.0 agent hands its external containerizer for one executor
//! run (pure): the command executor's `ExecutorInfo` it makes for a command
//! task (`Slave::getExecutorInfo`), the `containerizer.Launch` record
//! (`Framework::launchExecutor`, `ExternalContainerizerProcess::launch`) and
//! the environment of the ECP calls (`ExternalContainerizerProcess::invoke`,
//! reference §1.7, §1.11).
// `source` and `role` are deprecated in v1 but are what a 1.0 agent sets.
#![allow(deprecated)]

use std::path::Path;

use mesos_proto::containerizer::Launch;
use mesos_proto::mesos;
use mesos_proto::v1::{
    value, CommandInfo, ExecutorId, ExecutorInfo, FrameworkInfo, Resource, TaskInfo,
};
use prost::Message;

/// The agent's `DEFAULT_EXECUTOR_CPUS`.
pub const COMMAND_EXECUTOR_CPUS: f64 = 0.1;
/// The agent's `DEFAULT_EXECUTOR_MEM`, in MB.
pub const COMMAND_EXECUTOR_MEM: f64 = 32.0;

/// Converts between the v1 and the unversioned package: field and enum
/// numbers are the same, so the binary encodings are interchangeable (what
/// Mesos' `devolve` does).
pub fn devolve<From: Message, To: Message + Default>(message: &From) -> To {
    // A message of one package always decodes as the other.
    To::decode(message.encode_to_vec().as_slice()).unwrap_or_default()
}

/// The command executor a 1.0 agent makes for a command task: id and source
/// the task id, the name summarising the command, the task's URIs,
/// environment, user, labels, container, a shutdown grace period
/// of the kill policy's plus 2 s, and `mesos-executor` from `launcher_dir`
/// (`echo '<error>'; exit 1` when it does not exist there), with
/// `cpus:0.1;mem:32`.
pub fn command_executor_info(
    task: &TaskInfo,
    framework: &FrameworkInfo,
    launcher_dir: &Path,
) -> ExecutorInfo {
    let command = task.command.clone().unwrap_or_default();
    let mut executor_command = CommandInfo {
        uris: command.uris.clone(),
        environment: command.environment.clone(),
        user: command.user.clone(),
        ..Default::default()
    };
    let program = launcher_dir.join("mesos-executor");
    match std::fs::canonicalize(&program) {
        Ok(path) => {
            executor_command.shell = Some(false);
            executor_command.value = Some(path.display().to_string());
            executor_command.arguments = vec![
                "mesos-executor".to_owned(),
                format!("--launcher_dir={}", launcher_dir.display()),
            ];
        }
        Err(_) => {
            executor_command.shell = Some(true);
            executor_command.value = Some("echo 'No such file or directory'; exit 1".to_owned());
        }
    }
    let shutdown_grace_period = task
        .kill_policy
        .as_ref()
        .and_then(|policy| policy.grace_period)
        .map(|grace| mesos_proto::v1::DurationInfo {
            nanoseconds: grace.nanoseconds + 2_000_000_000,
        });
    ExecutorInfo {
        executor_id: ExecutorId {
            value: task.task_id.value.clone(),
        },
        framework_id: framework.id.clone(),
        container: task.container.clone(),
        name: Some(format!(
            "Command Executor (Task: {}) {}",
            task.task_id.value,
            command_summary(&command)
        )),
        source: Some(task.task_id.value.clone()),
        command: Some(executor_command),
        labels: task.labels.clone(),
        shutdown_grace_period,
        resources: vec![
            scalar("cpus", COMMAND_EXECUTOR_CPUS),
            scalar("mem", COMMAND_EXECUTOR_MEM),
        ],
        ..Default::default()
    }
}

/// `(Command: sh -c '<value, cut at 12 characters + ... when over 15>')` or
/// `(Command: [<value, arguments...>])`, as the executor's name has it.
fn command_summary(command: &CommandInfo) -> String {
    let cut = |text: &str| match text.chars().count() > 15 {
        true => (text.chars().take(12).collect::<String>(), "..."),
        false => (text.to_owned(), ""),
    };
    match (command.shell.unwrap_or(true), &command.value) {
        (true, None) => "(Command: NO COMMAND)".to_owned(),
        (false, None) => "(Command: NO EXECUTABLE)".to_owned(),
        (true, Some(value)) => {
            let (text, more) = cut(value);
            format!("(Command: sh -c '{text}{more}')")
        }
        (false, Some(value)) => {
            let (text, more) = cut(&format!("{value}, {}", command.arguments.join(", ")));
            format!("(Command: [{text}{more}])")
        }
    }
}

/// A scalar resource with the default role.
pub fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.to_owned(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        role: Some("*".to_owned()),
        ..Default::default()
    }
}

/// `Resources` addition: scalars of the same name and role are summed,
/// ranges of the same name and role joined, anything else appended.
pub fn add_resources(mut total: Vec<Resource>, more: &[Resource]) -> Vec<Resource> {
    for resource in more {
        let role = |r: &Resource| r.role.clone().unwrap_or_else(|| "*".to_owned());
        let same = total.iter_mut().find(|r| {
            r.name == resource.name && role(r) == role(resource) && r.r#type == resource.r#type
        });
        match (same, resource.scalar.as_ref(), resource.ranges.as_ref()) {
            (Some(existing), Some(amount), _) => {
                if let Some(scalar) = existing.scalar.as_mut() {
                    scalar.value += amount.value;
                }
            }
            (Some(existing), None, Some(ranges)) => {
                if let Some(into) = existing.ranges.as_mut() {
                    into.range.extend(ranges.range.iter().cloned());
                }
            }
            _ => total.push(resource.clone()),
        }
    }
    total
}

/// Everything the agent knows about one executor run when it launches it.
#[derive(Debug, Clone)]
pub struct RunDescription<'a> {
    /// The run's container id.
    pub container_id: &'a str,
    /// The framework (with its id).
    pub framework: &'a FrameworkInfo,
    /// The first task.
    pub task: &'a TaskInfo,
    /// The executor (made by the agent for a command task).
    pub executor: &'a ExecutorInfo,
    /// Whether the executor is the agent's command executor.
    pub command_executor: bool,
    /// The sandbox directory.
    pub directory: &'a Path,
    /// The agent's id.
    pub agent_id: &'a str,
    /// The agent's libprocess pid (`slave(1)@ip:port`).
    pub agent_pid: &'a str,
    /// Agent `--switch_user`.
    pub switch_user: bool,
}

/// The `Launch` record: `task_info` only for a command task; the executor's
/// resources plus the task's; `user` (with `--switch_user`) the executor
/// command's user, else the framework's.
pub fn launch_record(run: &RunDescription<'_>) -> Launch {
    let mut executor = run.executor.clone();
    executor.resources = add_resources(executor.resources, &run.task.resources);
    let user = run.switch_user.then(|| {
        executor
            .command
            .as_ref()
            .and_then(|c| c.user.clone())
            .unwrap_or_else(|| run.framework.user.clone())
    });
    Launch {
        container_id: mesos::ContainerId {
            value: run.container_id.to_owned(),
        },
        task_info: run.command_executor.then(|| devolve(run.task)),
        executor_info: Some(devolve(&executor)),
        directory: Some(run.directory.display().to_string()),
        user,
        slave_id: Some(mesos::SlaveId {
            value: run.agent_id.to_owned(),
        }),
        slave_pid: Some(run.agent_pid.to_owned()),
        checkpoint: Some(run.framework.checkpoint.unwrap_or(false)),
    }
}

/// The agent-side settings that shape the ECP's environment.
#[derive(Debug, Clone)]
pub struct AgentEnvironment<'a> {
    /// Agent `--launcher_dir` (`MESOS_LIBEXEC_DIRECTORY`).
    pub launcher_dir: &'a Path,
    /// Agent `--work_dir` (`MESOS_WORK_DIRECTORY`).
    pub work_dir: &'a Path,
    /// The agent's own environment (the base of every call's).
    pub base: &'a [(String, String)],
}

/// The launch-only variables (§1.11), given the executor's agent endpoint.
#[derive(Debug, Clone)]
pub struct LaunchVariables<'a> {
    /// `ip:port` of the agent's executor API.
    pub agent_endpoint: &'a str,
    /// `--http_command_executor`.
    pub http_command_executor: bool,
    /// The executor's shutdown grace period as a stout duration.
    pub shutdown_grace_period: String,
    /// `--recovery_timeout` as a stout duration.
    pub recovery_timeout: String,
    /// The subscription back-off maximum (`2secs` in 1.0).
    pub subscription_backoff_max: String,
}

/// The environment of an ECP call: the agent's, with
/// `MESOS_LIBEXEC_DIRECTORY` and `MESOS_WORK_DIRECTORY` overwritten; for
/// `launch` also the executor variables, which do NOT overwrite a variable
/// the agent's environment already has (`std::map::insert`).
pub fn call_environment(
    agent: &AgentEnvironment<'_>,
    launch: Option<(&RunDescription<'_>, &LaunchVariables<'_>)>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = agent
        .base
        .iter()
        .filter(|(k, _)| k != "MESOS_LIBEXEC_DIRECTORY" && k != "MESOS_WORK_DIRECTORY")
        .cloned()
        .collect();
    env.push((
        "MESOS_LIBEXEC_DIRECTORY".to_owned(),
        agent.launcher_dir.display().to_string(),
    ));
    env.push((
        "MESOS_WORK_DIRECTORY".to_owned(),
        agent.work_dir.display().to_string(),
    ));
    let Some((run, vars)) = launch else {
        return env;
    };
    let checkpoint = run.framework.checkpoint.unwrap_or(false);
    let mut extra = vec![
        (
            "MESOS_FRAMEWORK_ID",
            run.framework.id.clone().unwrap_or_default().value,
        ),
        ("MESOS_EXECUTOR_ID", run.executor.executor_id.value.clone()),
        ("MESOS_DIRECTORY", run.directory.display().to_string()),
        ("MESOS_SLAVE_ID", run.agent_id.to_owned()),
        ("MESOS_SLAVE_PID", run.agent_pid.to_owned()),
        ("MESOS_AGENT_ENDPOINT", vars.agent_endpoint.to_owned()),
        (
            "MESOS_CHECKPOINT",
            if checkpoint { "1" } else { "0" }.to_owned(),
        ),
        (
            "MESOS_HTTP_COMMAND_EXECUTOR",
            if vars.http_command_executor { "1" } else { "0" }.to_owned(),
        ),
        (
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
            vars.shutdown_grace_period.clone(),
        ),
    ];
    if checkpoint {
        extra.push(("MESOS_RECOVERY_TIMEOUT", vars.recovery_timeout.clone()));
        extra.push((
            "MESOS_SUBSCRIPTION_BACKOFF_MAX",
            vars.subscription_backoff_max.clone(),
        ));
    }
    extra.push(("LIBPROCESS_PORT", "0".to_owned()));
    extra.push((
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
    ));
    for (name, value) in extra {
        if !env.iter().any(|(k, _)| k == name) {
            env.push((name.to_owned(), value));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{FrameworkId, TaskId};

    fn framework(checkpoint: bool) -> FrameworkInfo {
        FrameworkInfo {
            user: "root".to_owned(),
            id: Some(FrameworkId {
                value: "fw".to_owned(),
            }),
            checkpoint: Some(checkpoint),
            ..Default::default()
        }
    }

    fn command_task(command: &str) -> TaskInfo {
        TaskInfo {
            name: "t".to_owned(),
            task_id: TaskId {
                value: "t1".to_owned(),
            },
            resources: vec![scalar("cpus", 1.0), scalar("mem", 128.0)],
            command: Some(CommandInfo {
                value: Some(command.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn command_executor_is_named_and_sized_as_the_1_0_agent_does() {
        let info = command_executor_info(
            &command_task("while true ; do sleep 1; done"),
            &framework(false),
            Path::new("/nonexistent"),
        );
        assert_eq!(
            info.name.as_deref(),
            Some("Command Executor (Task: t1) (Command: sh -c 'while true ;...')")
        );
        assert_eq!(info.executor_id.value, "t1");
        assert_eq!(info.source.as_deref(), Some("t1"));
        let command = info.command.unwrap();
        assert_eq!(
            command.value.as_deref(),
            Some("echo 'No such file or directory'; exit 1")
        );
        assert_eq!(
            info.resources,
            vec![scalar("cpus", 0.1), scalar("mem", 32.0)]
        );
    }

    #[test]
    fn launch_of_a_command_task_carries_the_task_and_summed_resources() {
        let task = command_task("echo hi");
        let fw = framework(true);
        let executor = command_executor_info(&task, &fw, Path::new("/nonexistent"));
        let run = RunDescription {
            container_id: "c",
            framework: &fw,
            task: &task,
            executor: &executor,
            command_executor: true,
            directory: Path::new("/w/sandbox"),
            agent_id: "a",
            agent_pid: "slave(1)@127.0.0.1:5051",
            switch_user: true,
        };
        let launch = launch_record(&run);
        assert_eq!(launch.task_info.unwrap().task_id.value, "t1");
        let resources = launch.executor_info.unwrap().resources;
        assert_eq!(resources.len(), 2);
        assert!((resources[0].scalar.as_ref().unwrap().value - 1.1).abs() < 1e-9);
        assert_eq!(resources[1].scalar.as_ref().unwrap().value, 160.0);
        assert_eq!(launch.user.as_deref(), Some("root"));
        assert_eq!(launch.checkpoint, Some(true));
    }

    #[test]
    fn launch_variables_do_not_overwrite_the_agents_environment() {
        let task = command_task("true");
        let fw = framework(false);
        let executor = command_executor_info(&task, &fw, Path::new("/x"));
        let run = RunDescription {
            container_id: "c",
            framework: &fw,
            task: &task,
            executor: &executor,
            command_executor: true,
            directory: Path::new("/s"),
            agent_id: "a",
            agent_pid: "p",
            switch_user: false,
        };
        let base = vec![
            ("PATH".to_owned(), "/agent/bin".to_owned()),
            ("MESOS_WORK_DIRECTORY".to_owned(), "/old".to_owned()),
        ];
        let agent = AgentEnvironment {
            launcher_dir: Path::new("/libexec"),
            work_dir: Path::new("/work"),
            base: &base,
        };
        let vars = LaunchVariables {
            agent_endpoint: "127.0.0.1:1",
            http_command_executor: true,
            shutdown_grace_period: "5secs".to_owned(),
            recovery_timeout: "15mins".to_owned(),
            subscription_backoff_max: "2secs".to_owned(),
        };
        let env = call_environment(&agent, Some((&run, &vars)));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/agent/bin"));
        assert_eq!(get("MESOS_WORK_DIRECTORY"), Some("/work"));
        assert_eq!(get("MESOS_CHECKPOINT"), Some("0"));
        assert_eq!(get("MESOS_RECOVERY_TIMEOUT"), None);
        assert_eq!(get("MESOS_SANDBOX"), None);
        assert_eq!(get("LIBPROCESS_PORT"), Some("0"));
        assert!(call_environment(&agent, None)
            .iter()
            .all(|(k, _)| k != "MESOS_FRAMEWORK_ID"));
    }
}
