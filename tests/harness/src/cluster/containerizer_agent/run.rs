//! The agent's executor runs and the ECP calls around them: the run and
//! agent state, the calls' environment, the master's messages. A run's
//! life is in [`lifecycle`], the agent's restart in [`recovery`].

mod lifecycle;
mod recovery;

use std::sync::{Arc, Mutex, MutexGuard};

use mesos_proto::v1::{
    task_status, ExecutorInfo, FrameworkInfo, Resource, TaskId, TaskInfo, TaskState,
};
use prost::Message;
use tokio::sync::watch;

use super::ecp::{invoke, EcpCall, EcpOutcome, InvocationLog, SessionHandle};
use super::launch_record::{
    add_resources, call_environment, AgentEnvironment, LaunchVariables, RunDescription,
};
use super::{ContainerizerAgentConfig, Polled};
use crate::agent::FakeAgent;
use crate::cluster::Uplink;
use crate::master::AgentMessage;

/// A state, reason and message the agent holds for an executor's tasks
/// (`Executor::pendingTermination`).
#[derive(Debug, Clone)]
struct Pending {
    state: TaskState,
    reason: task_status::Reason,
    message: String,
}

#[derive(Debug, Default)]
struct RunState {
    tasks: Vec<(TaskInfo, TaskState)>,
    queued: Vec<TaskInfo>,
    registered: bool,
    pending: Option<Pending>,
    wait_session: Option<SessionHandle>,
    destroying: bool,
    terminated: bool,
    generation: u64,
}

/// One executor run (one container).
#[derive(Debug)]
pub(super) struct Run {
    framework: FrameworkInfo,
    executor: ExecutorInfo,
    command_executor: bool,
    container_id: String,
    sandbox: std::path::PathBuf,
    fake: FakeAgent,
    state: Mutex<RunState>,
    destroyed: watch::Sender<bool>,
    ended: watch::Sender<bool>,
}

impl Run {
    fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn framework_id(&self) -> String {
        self.framework.id.clone().unwrap_or_default().value
    }

    fn executor_id(&self) -> &str {
        &self.executor.executor_id.value
    }

    /// The executor's resources plus those of its non-terminal tasks.
    fn resources(&self) -> Vec<Resource> {
        let state = self.lock();
        let live = state
            .tasks
            .iter()
            .filter(|(_, s)| !is_terminal(*s))
            .flat_map(|(t, _)| t.resources.clone())
            .collect::<Vec<_>>();
        add_resources(self.executor.resources.clone(), &live)
    }
}

/// The agent: configuration, ECP call log, runs.
#[derive(Debug)]
pub(super) struct Agent {
    config: ContainerizerAgentConfig,
    pub(super) log: InvocationLog,
    runs: Mutex<Vec<Arc<Run>>>,
    uplink: Mutex<Option<Uplink>>,
    pub(super) polled: Polled,
    pub(super) forwarded: Mutex<Vec<(String, TaskState, std::time::SystemTime)>>,
    generation: Mutex<u64>,
}

/// Resolves once the run has ended (the watch value is not held across the
/// caller's awaits).
async fn wait_ended(ended: &mut watch::Receiver<bool>) {
    let _ = ended.wait_for(|e| *e).await;
}

fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskLost
            | TaskState::TaskError
            | TaskState::TaskDropped
            | TaskState::TaskGone
    )
}

impl Agent {
    pub(super) fn new(config: ContainerizerAgentConfig) -> Agent {
        Agent {
            config,
            log: InvocationLog::default(),
            runs: Mutex::new(Vec::new()),
            uplink: Mutex::new(None),
            polled: Mutex::new(Vec::new()),
            forwarded: Mutex::new(Vec::new()),
            generation: Mutex::new(0),
        }
    }

    fn runs(&self) -> Vec<Arc<Run>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set_uplink(&self, uplink: &Uplink) {
        *self.uplink.lock().unwrap_or_else(|p| p.into_inner()) = Some(uplink.clone());
    }

    fn uplink(&self) -> Option<Uplink> {
        self.uplink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn containers_of(&self, executor_id: &str) -> Vec<String> {
        self.runs()
            .iter()
            .filter(|r| r.executor_id() == executor_id)
            .map(|r| r.container_id.clone())
            .collect()
    }

    fn agent_id(&self) -> String {
        self.config.book.agent_id()
    }

    /// The agent's own environment, the base of every call's.
    fn base_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| !k.starts_with("MESOS_") && !k.starts_with("LIBPROCESS_"))
            .collect();
        if let Some(config) = &self.config.containerizer_config {
            env.retain(|(k, _)| k != "DEIMOS_CONFIG");
            env.push(("DEIMOS_CONFIG".to_owned(), config.display().to_string()));
        }
        for (name, value) in &self.config.environment {
            env.retain(|(k, _)| k != name);
            env.push((name.clone(), value.clone()));
        }
        env
    }

    fn env(
        &self,
        launch: Option<(&RunDescription<'_>, &LaunchVariables<'_>)>,
    ) -> Vec<(String, String)> {
        let base = self.base_env();
        let work_dir = self.config.book.work_dir();
        let agent = AgentEnvironment {
            launcher_dir: &self.config.launcher_dir,
            work_dir: &work_dir,
            base: &base,
        };
        call_environment(&agent, launch)
    }

    /// Runs one ECP call to its end.
    async fn call<M: Message>(
        &self,
        subcommand: &'static str,
        run: Option<&Run>,
        container_id: Option<&str>,
        input: Option<&M>,
        reads_output: bool,
    ) -> Result<
        (
            SessionHandle,
            tokio::task::JoinHandle<std::io::Result<EcpOutcome>>,
        ),
        String,
    > {
        let call = EcpCall {
            subcommand,
            container_id: container_id.map(str::to_owned),
            input: input.map(|m| {
                let mut record = (m.encoded_len() as u32).to_ne_bytes().to_vec();
                record.extend(m.encode_to_vec());
                record
            }),
            sandbox: run.map(|r| r.sandbox.clone()),
            agent_cwd: self.config.agent_cwd.clone(),
            env: self.env(None),
            reads_output,
        };
        invoke(&self.config.containerizer_path, call, &self.log).map_err(|e| {
            format!(
                "cannot run {}: {e}",
                self.config.containerizer_path.display()
            )
        })
    }

    async fn call_to_end<M: Message>(
        &self,
        subcommand: &'static str,
        run: Option<&Run>,
        container_id: Option<&str>,
        input: Option<&M>,
        reads_output: bool,
    ) -> Result<EcpOutcome, String> {
        let (_, outcome) = self
            .call(subcommand, run, container_id, input, reads_output)
            .await?;
        let outcome = outcome
            .await
            .map_err(|e| format!("{subcommand}: {e}"))?
            .map_err(|e| format!("{subcommand}: {e}"))?;
        if outcome.status.success() {
            Ok(outcome)
        } else {
            Err(format!("{subcommand} failed: {}", outcome.status))
        }
    }

    /// Handles one message from the master (returns at once).
    pub(super) async fn handle(self: Arc<Self>, message: AgentMessage) {
        match message {
            AgentMessage::RunTask { framework, task } => self.run_task(*framework, *task).await,
            AgentMessage::KillTask {
                task_id,
                kill_policy,
                ..
            } => self.kill_task(&task_id, kill_policy).await,
            AgentMessage::Acknowledged { task_id, uuid, .. } => {
                for run in self.runs() {
                    if run
                        .lock()
                        .tasks
                        .iter()
                        .any(|(t, _)| t.task_id.value == task_id)
                    {
                        // Agent-generated updates are unknown to the executor.
                        let _ = run.fake.acknowledge(
                            TaskId {
                                value: task_id.clone(),
                            },
                            uuid.clone(),
                        );
                    }
                }
            }
            AgentMessage::FrameworkMessage { .. } => {}
            AgentMessage::ShutdownExecutor { executor_id, .. } => {
                for run in self.runs() {
                    if run.executor_id() == executor_id {
                        Arc::clone(&self).shutdown_executor(run);
                    }
                }
            }
            AgentMessage::ShutdownFramework { framework_id } => {
                for run in self.runs() {
                    if run.framework_id() == framework_id {
                        Arc::clone(&self).shutdown_executor(run);
                    }
                }
            }
            AgentMessage::Shutdown { .. } => {
                for run in self.runs() {
                    Arc::clone(&self).shutdown_executor(run);
                }
            }
        }
    }
}
