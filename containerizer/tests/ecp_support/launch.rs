//! The `Launch` messages of the tests: a [`TestContainer`] and its builder, resources.

use std::fs;
use std::path::PathBuf;

use mesos_proto::containerizer::Launch;
use mesos_proto::mesos::{
    self, command_info, environment, value, CommandInfo, Environment, ExecutorInfo, Resource,
    TaskInfo,
};

use super::{new_container_id, Agent, AGENT_ID, AGENT_PID, FRAMEWORK_ID};

/// One container of a test: its id, executor id, sandbox and the `Launch` the agent sends.
#[derive(Clone, Debug)]
pub struct TestContainer {
    /// The Mesos container id.
    pub id: String,
    /// The executor id (the task id for command tasks).
    pub executor_id: String,
    /// The sandbox on the host (created like the agent does).
    pub sandbox: PathBuf,
    /// The record written to `launch`.
    pub launch: Launch,
}

impl TestContainer {
    /// The id as a protobuf message.
    pub fn mesos_id(&self) -> mesos::ContainerId {
        mesos::ContainerId {
            value: self.id.clone(),
        }
    }

    /// A file of the sandbox, as text (empty when missing).
    pub fn sandbox_file(&self, name: &str) -> String {
        fs::read_to_string(self.sandbox.join(name)).unwrap_or_default()
    }
}

/// Builds the `Launch` of a [`TestContainer`].
pub struct LaunchBuilder<'a> {
    agent: &'a Agent,
    command_task: bool,
    command: CommandInfo,
    resources: Vec<Resource>,
    task_name: String,
    run_name: Option<String>,
    id: String,
}

impl<'a> LaunchBuilder<'a> {
    pub(super) fn new(agent: &'a Agent, command_task: bool, command: &str) -> LaunchBuilder<'a> {
        LaunchBuilder {
            agent,
            command_task,
            command: CommandInfo {
                value: Some(command.to_owned()),
                ..CommandInfo::default()
            },
            resources: vec![cpus(0.5), mem(64.0)],
            task_name: format!("{}-task", agent.test),
            run_name: None,
            id: new_container_id(),
        }
    }

    /// Replaces the resources.
    pub fn resources(mut self, resources: Vec<Resource>) -> Self {
        self.resources = resources;
        self
    }

    /// Adds a resource.
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resources.push(resource);
        self
    }

    /// The legacy (Mesos ≤ 0.26) `CommandInfo.container` image URL and options.
    pub fn legacy_container(mut self, image: &str, options: &[&str]) -> Self {
        self.command.container = Some(command_info::ContainerInfo {
            image: image.to_owned(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        });
        self
    }

    /// Adds a variable to `CommandInfo.environment`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.command
            .environment
            .get_or_insert_with(Environment::default)
            .variables
            .push(environment::Variable {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        self
    }

    /// Adds a URI to fetch.
    pub fn uri(mut self, uri: &str) -> Self {
        self.command.uris.push(command_info::Uri {
            value: uri.to_owned(),
            ..command_info::Uri::default()
        });
        self
    }

    /// Edits the command directly.
    pub fn with_command(mut self, edit: impl FnOnce(&mut CommandInfo)) -> Self {
        edit(&mut self.command);
        self
    }

    /// The task name (command tasks; exported as `TASK_INFO`).
    pub fn task_name(mut self, name: &str) -> Self {
        self.task_name = name.to_owned();
        self
    }

    /// The last component of the sandbox path (default: the container id).
    pub fn run_name(mut self, name: &str) -> Self {
        self.run_name = Some(name.to_owned());
        self
    }

    /// Creates the sandbox and returns the container.
    pub fn build(self) -> TestContainer {
        let id = self.id;
        let executor_id = if self.command_task {
            format!("task-{id}")
        } else {
            format!("executor-{id}")
        };
        let run = self.run_name.unwrap_or_else(|| id.clone());
        let sandbox = self.agent.sandbox_path(&executor_id, &run);
        fs::create_dir_all(&sandbox).expect("create the sandbox");
        let framework_id = Some(mesos::FrameworkId {
            value: FRAMEWORK_ID.into(),
        });
        let (task_info, executor_info) = if self.command_task {
            // As the 1.0 agent builds it: the task itself, and the command executor it made.
            let libexec = self.agent.libexec_dir.display().to_string();
            let task = TaskInfo {
                name: self.task_name.clone(),
                task_id: mesos::TaskId {
                    value: executor_id.clone(),
                },
                slave_id: mesos::SlaveId {
                    value: AGENT_ID.into(),
                },
                resources: self.resources.clone(),
                command: Some(self.command.clone()),
                ..TaskInfo::default()
            };
            let mut executor_resources = self.resources.clone();
            executor_resources.extend([cpus(0.1), mem(32.0)]);
            let executor = ExecutorInfo {
                executor_id: mesos::ExecutorId {
                    value: executor_id.clone(),
                },
                framework_id,
                command: CommandInfo {
                    shell: Some(false),
                    value: Some(format!("{libexec}/mesos-executor")),
                    arguments: vec!["mesos-executor".into(), format!("--launcher_dir={libexec}")],
                    uris: self.command.uris.clone(),
                    environment: self.command.environment.clone(),
                    ..CommandInfo::default()
                },
                resources: executor_resources,
                name: Some(format!("Command Executor (Task: {executor_id})")),
                source: Some(executor_id.clone()),
                ..ExecutorInfo::default()
            };
            (Some(task), executor)
        } else {
            let executor = ExecutorInfo {
                executor_id: mesos::ExecutorId {
                    value: executor_id.clone(),
                },
                framework_id,
                command: self.command,
                resources: self.resources,
                name: Some(format!("{} executor", self.agent.test)),
                source: Some(self.agent.test.clone()),
                ..ExecutorInfo::default()
            };
            (None, executor)
        };
        let launch = Launch {
            container_id: mesos::ContainerId { value: id.clone() },
            task_info,
            executor_info: Some(executor_info),
            directory: Some(sandbox.display().to_string()),
            user: None,
            slave_id: Some(mesos::SlaveId {
                value: AGENT_ID.into(),
            }),
            slave_pid: Some(AGENT_PID.into()),
            checkpoint: Some(true),
        };
        TestContainer {
            id,
            executor_id,
            sandbox,
            launch,
        }
    }
}

/// A scalar `cpus` resource.
pub fn cpus(amount: f64) -> Resource {
    scalar("cpus", amount)
}

/// A scalar `mem` resource (MB).
pub fn mem(megabytes: f64) -> Resource {
    scalar("mem", megabytes)
}

/// A scalar resource.
pub fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        role: Some("*".into()),
        ..Resource::default()
    }
}

/// A `ports` resource with one inclusive range.
pub fn ports(begin: u16, end: u16) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range {
                begin: u64::from(begin),
                end: u64::from(end),
            }],
        }),
        role: Some("*".into()),
        ..Resource::default()
    }
}
