//! Shared pieces of the executor's integration tests: Docker access with cleanup by label, a
//! fake agent, the executor binary spawned as an agent would, and task builders.

#![allow(dead_code, unreachable_pub)]

pub mod cluster;
pub mod files;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deimos_runtime::runtime::{ContainerRuntime, DockerRuntime, LabelFilter};
use deimos_runtime::spec::labels;
use mesos_harness::agent::{AgentSetup, FakeAgent};
use mesos_proto::v1::executor::Call;
use mesos_proto::v1::{
    container_info, value, CommandInfo, ContainerInfo, KillPolicy, Resource, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use tokio::process::{Child, Command};

/// The test image (`scripts/setup` builds it).
pub const IMAGE: &str = "deimos-test/busybox:latest";

/// How long a test waits for something that should happen within seconds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A unique id for this test's framework, so that its containers can be found by label.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Docker, or a failure telling how to get it.
pub async fn docker() -> DockerRuntime {
    DockerRuntime::connect(None).await.unwrap_or_else(|error| {
        panic!("Docker is unreachable ({error}); run scripts/setup to start it and build the test images")
    })
}

/// The executor's containers of one framework.
pub async fn containers_of(docker: &DockerRuntime, framework_id: &str) -> Vec<String> {
    let filters = [
        LabelFilter::equals(labels::MANAGED_BY, "deimos-executor"),
        LabelFilter::equals(labels::FRAMEWORK_ID, framework_id),
    ];
    docker
        .list(&filters)
        .await
        .expect("listing containers")
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Removes every container of a framework when dropped, even when the test failed.
pub struct ContainerGuard {
    framework_id: String,
}

impl ContainerGuard {
    pub fn new(framework_id: &str) -> Self {
        ContainerGuard {
            framework_id: framework_id.to_owned(),
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let framework_id = self.framework_id.clone();
        // Drop cannot await, and may run inside the test's runtime: use a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok(docker) = DockerRuntime::connect(None).await else {
                    return;
                };
                for id in containers_of(&docker, &framework_id).await {
                    let _ = docker.remove(&id).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A fake agent, a sandbox and the executor process running against them.
pub struct Setup {
    pub agent: FakeAgent,
    pub sandbox: tempfile::TempDir,
    pub executor: Child,
    pub framework_id: String,
    pub guard: ContainerGuard,
    /// The directory of the `deimos.cfg` given to the executor, if any.
    pub config_dir: Option<tempfile::TempDir>,
}

impl Setup {
    /// Starts an agent configured by `configure` and spawns the executor with its environment.
    pub async fn start(test: &str, configure: impl FnOnce(&mut AgentSetup)) -> Setup {
        Setup::start_with_env(test, configure, &[]).await
    }

    /// Starts an agent and spawns the executor with the operator's `deimos.cfg` of this text,
    /// given through `$DEIMOS_CONFIG` (the file lives in a directory of its own, next to the
    /// sandbox, removed with the setup).
    pub async fn start_with_config(test: &str, deimos_cfg: &str) -> Setup {
        let dir = tempfile::tempdir().expect("creating the configuration directory");
        let file = dir.path().join("deimos.cfg");
        std::fs::write(&file, deimos_cfg).expect("writing deimos.cfg");
        let file = file.display().to_string();
        let mut setup =
            Setup::start_with_env(test, |_| {}, &[("DEIMOS_CONFIG", file.as_str())]).await;
        setup.config_dir = Some(dir);
        setup
    }

    /// [`Setup::start`] with these variables added to the executor's environment.
    pub async fn start_with_env(
        test: &str,
        configure: impl FnOnce(&mut AgentSetup),
        extra_env: &[(&str, &str)],
    ) -> Setup {
        let framework_id = unique(test);
        let guard = ContainerGuard::new(&framework_id);
        let mut setup = AgentSetup::new(&framework_id, "executor-1", "agent-1", unique("cid"));
        configure(&mut setup);
        let agent = FakeAgent::start(setup)
            .await
            .expect("starting the fake agent");
        let sandbox = tempfile::tempdir().expect("creating the sandbox");
        let mut env = agent.executor_env(sandbox.path());
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let executor = spawn_executor(&env, sandbox.path());
        Setup {
            agent,
            sandbox,
            executor,
            framework_id,
            guard,
            config_dir: None,
        }
    }

    /// The executor's own log (its stderr, as the agent saves it), for failure messages.
    pub fn executor_log(&self) -> String {
        std::fs::read_to_string(self.sandbox.path().join("stderr")).unwrap_or_default()
    }

    /// Waits for the UPDATE of `task` with `state` and returns its status.
    pub async fn update(&self, task: &str, state: TaskState) -> TaskStatus {
        let found = self
            .agent
            .wait_for_call(
                |call| status_of(call).is_some_and(|s| is(s, task, state)),
                PATIENCE,
            )
            .await;
        match found {
            Ok(call) => status_of(&call).cloned().unwrap_or_default(),
            Err(error) => panic!(
                "no {state:?} update for task {task}: {error}\nexecutor log:\n{}",
                self.executor_log()
            ),
        }
    }

    /// Waits for the UPDATE of `task` with `state` and acknowledges it.
    pub async fn acknowledge(&self, task: &str, state: TaskState) -> TaskStatus {
        let status = self.update(task, state).await;
        self.agent
            .acknowledge(
                status.task_id.clone(),
                status.uuid.clone().unwrap_or_default(),
            )
            .expect("acknowledging an update the agent received");
        status
    }

    /// Waits for the executor to exit and returns its exit code.
    pub async fn exit_code(&mut self) -> i32 {
        match tokio::time::timeout(PATIENCE, self.executor.wait()).await {
            Ok(Ok(status)) => status.code().unwrap_or(-1),
            Ok(Err(error)) => panic!("waiting for the executor: {error}"),
            Err(_) => {
                let _ = self.executor.start_kill();
                panic!(
                    "the executor did not exit within {PATIENCE:?}\nexecutor log:\n{}",
                    self.executor_log()
                )
            }
        }
    }

    /// The task states the agent received, in order, for `task`.
    pub fn states(&self, task: &str) -> Vec<TaskState> {
        self.agent
            .updates()
            .iter()
            .filter(|s| s.task_id.value == task)
            .map(TaskStatus::state)
            .collect()
    }
}

fn status_of(call: &Call) -> Option<&TaskStatus> {
    call.update.as_ref().map(|u| &u.status)
}

fn is(status: &TaskStatus, task: &str, state: TaskState) -> bool {
    status.task_id.value == task && status.state() == state
}

/// Spawns the executor as the agent does: its environment only (plus PATH and DOCKER_HOST),
/// the sandbox as working directory, stdout and stderr into the sandbox files.
fn spawn_executor(env: &[(String, String)], sandbox: &Path) -> Child {
    let output = |name: &str| -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.join(name))
            .expect("opening a sandbox output file")
            .into()
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_deimos-executor"));
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(output("stdout"))
        .stderr(output("stderr"))
        .kill_on_drop(true);
    for inherited in ["PATH", "DOCKER_HOST"] {
        if let Ok(value) = std::env::var(inherited) {
            command.env(inherited, value);
        }
    }
    command.spawn().expect("spawning deimos-executor")
}

/// A task running `line` with `sh -c` in the test image.
pub fn shell_task(id: &str, line: &str) -> TaskInfo {
    data_task(
        id,
        &CommandInfo {
            value: Some(line.into()),
            ..Default::default()
        },
    )
}

/// A task of the test image running `command`, carried in `TaskInfo.data` as a scheduler
/// sends it (a master refuses a task with both an executor and a command).
pub fn data_task(id: &str, command: &CommandInfo) -> TaskInfo {
    TaskInfo {
        data: Some(deimos_runtime::mesos::task_data::encode(command)),
        ..image_task(id)
    }
}

/// A task of the test image without command or data (the image's default command).
pub fn image_task(id: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        container: Some(ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(container_info::DockerInfo {
                image: IMAGE.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A kill policy with this grace period.
pub fn grace(duration: Duration) -> KillPolicy {
    KillPolicy {
        grace_period: Some(mesos_proto::v1::DurationInfo {
            nanoseconds: i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX),
        }),
    }
}

/// The `ports` resource of one range.
pub fn ports(begin: u64, end: u64) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range { begin, end }],
        }),
        ..Default::default()
    }
}

pub fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

/// The content of a sandbox file.
pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(dir).join(name)).unwrap_or_default()
}
