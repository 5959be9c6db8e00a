//! The agent's executor runs and the ECP calls around them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesos_proto::containerizer::{Containers, Destroy, Termination, Update, Usage, Wait};
use mesos_proto::mesos::{self, ResourceStatistics};
use mesos_proto::v1::executor::call;
use mesos_proto::v1::{
    task_status, ExecutorInfo, FrameworkInfo, KillPolicy, Resource, TaskId, TaskInfo, TaskState,
    TaskStatus,
};
use prost::Message;
use tokio::sync::watch;

use super::ecp::{invoke, EcpCall, EcpOutcome, InvocationLog, SessionHandle};
use super::launch_record::{
    add_resources, call_environment, command_executor_info, devolve, launch_record,
    AgentEnvironment, LaunchVariables, RunDescription,
};
use super::uuid::{random_uuid, random_uuid_string};
use super::{ContainerizerAgentConfig, Polled};
use crate::agent::{stout_duration, AgentSetup, FakeAgent};
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

    async fn run_task(self: Arc<Self>, framework: FrameworkInfo, task: TaskInfo) {
        let command_executor = task.executor.is_none();
        let executor = match &task.executor {
            Some(executor) => executor.clone(),
            None => command_executor_info(&task, &framework, &self.config.launcher_dir),
        };
        let container_id = random_uuid_string();
        let sandbox = match self.config.book.new_run(
            &framework,
            &executor.executor_id.value,
            &container_id,
            Some(executor.clone()),
        ) {
            Ok(sandbox) => sandbox,
            Err(error) => {
                self.send(
                    &framework,
                    &task,
                    &executor,
                    TaskState::TaskFailed,
                    task_status::Reason::ContainerLaunchFailed,
                    &format!("Failed to create executor directory: {error}"),
                );
                return;
            }
        };
        let framework_id = framework.id.clone().unwrap_or_default().value;
        self.config.book.set_task(
            &framework_id,
            &executor.executor_id.value,
            &task,
            TaskState::TaskStaging,
        );
        let grace = executor
            .shutdown_grace_period
            .as_ref()
            .map_or(self.config.executor_shutdown_grace_period, |d| {
                Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0))
            });
        let mut setup = AgentSetup::new(
            &framework_id,
            &executor.executor_id.value,
            self.agent_id(),
            &container_id,
        );
        setup.checkpoint = framework.checkpoint.unwrap_or(false);
        setup.framework_user = framework.user.clone();
        setup.framework_name = framework.name.clone();
        setup.executor_command = executor.command.clone();
        setup.shutdown_grace_period = grace;
        setup.sets_mesos_sandbox = false;
        let fake = match FakeAgent::start(setup).await {
            Ok(fake) => fake,
            Err(error) => {
                self.send(
                    &framework,
                    &task,
                    &executor,
                    TaskState::TaskFailed,
                    task_status::Reason::ContainerLaunchFailed,
                    &format!("Failed to launch container: {error}"),
                );
                return;
            }
        };
        let (destroyed, _) = watch::channel(false);
        let (ended, _) = watch::channel(false);
        let run = Arc::new(Run {
            framework,
            executor,
            command_executor,
            container_id,
            sandbox,
            fake,
            state: Mutex::new(RunState {
                tasks: vec![(task.clone(), TaskState::TaskStaging)],
                queued: vec![task.clone()],
                generation: self.generation(),
                ..RunState::default()
            }),
            destroyed,
            ended,
        });
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&run));
        tokio::spawn(async move { self.launch(run, &task, grace).await });
    }

    async fn launch(self: Arc<Self>, run: Arc<Run>, task: &TaskInfo, grace: Duration) {
        let endpoint = run.fake.endpoint().to_string();
        let agent_pid = format!("slave(1)@{endpoint}");
        let agent_id = self.agent_id();
        let description = RunDescription {
            container_id: &run.container_id,
            framework: &run.framework,
            task,
            executor: &run.executor,
            command_executor: run.command_executor,
            directory: &run.sandbox,
            agent_id: &agent_id,
            agent_pid: &agent_pid,
            switch_user: self.config.switch_user,
        };
        let vars = LaunchVariables {
            agent_endpoint: &endpoint,
            http_command_executor: true,
            shutdown_grace_period: stout_duration(grace),
            recovery_timeout: stout_duration(self.config.recovery_timeout),
            subscription_backoff_max: "2secs".to_owned(),
        };
        let record = launch_record(&description);
        let env = self.env(Some((&description, &vars)));
        let registration = tokio::time::Instant::now() + self.config.executor_registration_timeout;
        let call = EcpCall {
            subcommand: "launch",
            container_id: Some(run.container_id.clone()),
            input: Some(mesos_proto::ecp::encode_record(&record).unwrap_or_default()),
            sandbox: Some(run.sandbox.clone()),
            agent_cwd: self.config.agent_cwd.clone(),
            env,
            reads_output: false,
        };
        let launched = match invoke(&self.config.containerizer_path, call, &self.log) {
            Ok((_, outcome)) => match outcome.await {
                Ok(Ok(outcome)) if outcome.status.success() => Ok(()),
                Ok(Ok(outcome)) => Err(format!("launch exited with {}", outcome.status)),
                Ok(Err(error)) => Err(error.to_string()),
                Err(error) => Err(error.to_string()),
            },
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = launched {
            // The EC forgets the container: no further calls reach the ECP.
            let message = format!("Failed to launch container: {error}");
            self.fail_run(
                &run,
                TaskState::TaskFailed,
                task_status::Reason::ContainerLaunchFailed,
                &message,
            );
            return;
        }
        Arc::clone(&self).start_wait(Arc::clone(&run), true);
        Arc::clone(&self).start_usage_polling(Arc::clone(&run));
        tokio::spawn(Arc::clone(&self).forward_updates(Arc::clone(&run)));
        self.register(run, registration).await;
    }

    /// Waits for the executor's registration until `deadline`.
    async fn register(self: Arc<Self>, run: Arc<Run>, deadline: tokio::time::Instant) {
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut ended = run.ended.subscribe();
        let subscribed = tokio::select! {
            subscribed = run.fake.wait_subscribed(timeout) => subscribed.is_ok(),
            () = wait_ended(&mut ended) => return,
        };
        if !subscribed {
            let message = format!(
                "Executor did not register within {}",
                stout_duration(self.config.executor_registration_timeout)
            );
            run.lock().pending = Some(Pending {
                state: TaskState::TaskFailed,
                reason: task_status::Reason::ExecutorRegistrationTimeout,
                message,
            });
            self.destroy(&run).await;
            return;
        }
        let queued = {
            let mut state = run.lock();
            state.registered = true;
            std::mem::take(&mut state.queued)
        };
        if queued.is_empty() {
            // Every task was killed before delivery: nothing to run.
            Arc::clone(&self).shutdown_executor(Arc::clone(&run));
            return;
        }
        self.update_resources(&run).await;
        for task in queued {
            if let Err(error) = run.fake.launch(task) {
                eprintln!("containerizer agent: LAUNCH to the executor failed: {error}");
            }
        }
    }

    /// `update` with the run's current resources; a failure destroys the
    /// container (its tasks become TASK_LOST).
    async fn update_resources(&self, run: &Run) {
        let update = Update {
            container_id: mesos::ContainerId {
                value: run.container_id.clone(),
            },
            resources: run.resources().iter().map(devolve).collect(),
        };
        if let Err(error) = self
            .call_to_end(
                "update",
                Some(run),
                Some(&run.container_id),
                Some(&update),
                false,
            )
            .await
        {
            run.lock().pending = Some(Pending {
                state: TaskState::TaskLost,
                reason: task_status::Reason::ContainerUpdateFailed,
                message: format!("Failed to update resources of container: {error}"),
            });
            self.destroy(run).await;
        }
    }

    /// Forwards the executor's updates: terminal ones after an `update`.
    async fn forward_updates(self: Arc<Self>, run: Arc<Run>) {
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut ended = run.ended.subscribe();
        loop {
            let known = seen.clone();
            let next = run.fake.wait_for_call(
                move |c| {
                    c.r#type == Some(call::Type::Update as i32)
                        && c.update.as_ref().is_some_and(|u| {
                            !known.contains(u.status.uuid.as_deref().unwrap_or_default())
                        })
                },
                Duration::from_secs(3600),
            );
            let call = tokio::select! {
                call = next => match call { Ok(call) => call, Err(_) => continue },
                () = wait_ended(&mut ended) => return,
            };
            let Some(update) = call.update else { continue };
            let status = update.status;
            seen.insert(status.uuid.clone().unwrap_or_default());
            self.forward(&run, status).await;
        }
    }

    async fn forward(&self, run: &Run, status: TaskStatus) {
        let state = status.state();
        let task = {
            let mut guard = run.lock();
            let entry = guard
                .tasks
                .iter_mut()
                .find(|(t, _)| t.task_id == status.task_id);
            entry.map(|entry| {
                entry.1 = state;
                entry.0.clone()
            })
        };
        if let Some(task) = &task {
            self.config
                .book
                .set_task(&run.framework_id(), run.executor_id(), task, state);
        }
        if is_terminal(state) {
            self.update_resources(run).await;
        }
        self.forwarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((
                status.task_id.value.clone(),
                state,
                std::time::SystemTime::now(),
            ));
        if let Some(uplink) = self.uplink() {
            if let Err(error) = uplink.send_status(&status.task_id.value, status.clone()) {
                eprintln!("containerizer agent: forwarding an update failed: {error}");
            }
        }
    }

    /// An update the agent generates (SOURCE_SLAVE) for a task of `run`.
    async fn agent_update(
        &self,
        run: &Run,
        task_id: &TaskId,
        state: TaskState,
        reason: task_status::Reason,
        message: &str,
    ) {
        let status = TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            source: Some(task_status::Source::Agent as i32),
            reason: Some(reason as i32),
            message: Some(message.to_owned()),
            executor_id: Some(run.executor.executor_id.clone()),
            uuid: Some(random_uuid().to_vec()),
            ..Default::default()
        };
        self.forward(run, status).await;
    }

    fn send(
        &self,
        framework: &FrameworkInfo,
        task: &TaskInfo,
        executor: &ExecutorInfo,
        state: TaskState,
        reason: task_status::Reason,
        message: &str,
    ) {
        let _ = framework;
        let status = TaskStatus {
            task_id: task.task_id.clone(),
            state: state as i32,
            source: Some(task_status::Source::Agent as i32),
            reason: Some(reason as i32),
            message: Some(message.to_owned()),
            executor_id: Some(executor.executor_id.clone()),
            uuid: Some(random_uuid().to_vec()),
            ..Default::default()
        };
        if let Some(uplink) = self.uplink() {
            let _ = uplink.send_status(&task.task_id.value, status);
        }
    }

    /// A run whose container never came up: its tasks fail, it is gone.
    fn fail_run(&self, run: &Run, state: TaskState, reason: task_status::Reason, message: &str) {
        let tasks: Vec<TaskInfo> = {
            let mut guard = run.lock();
            guard.terminated = true;
            guard
                .tasks
                .iter_mut()
                .filter(|(_, s)| !is_terminal(*s))
                .map(|(t, s)| {
                    *s = state;
                    t.clone()
                })
                .collect()
        };
        for task in tasks {
            self.config
                .book
                .set_task(&run.framework_id(), run.executor_id(), &task, state);
            self.send(&run.framework, &task, &run.executor, state, reason, message);
        }
        self.config
            .book
            .executor_terminated(&run.framework_id(), run.executor_id());
        run.ended.send_replace(true);
    }

    async fn kill_task(self: Arc<Self>, task_id: &str, kill_policy: Option<KillPolicy>) {
        let Some(run) = self.runs().into_iter().rev().find(|r| {
            r.lock()
                .tasks
                .iter()
                .any(|(t, _)| t.task_id.value == task_id)
        }) else {
            return;
        };
        let id = TaskId {
            value: task_id.to_owned(),
        };
        let unregistered = {
            let mut state = run.lock();
            let queued = state.queued.iter().any(|t| t.task_id == id);
            state.queued.retain(|t| t.task_id != id);
            !state.registered && queued && !state.terminated
        };
        if unregistered {
            self.agent_update(
                &run,
                &id,
                TaskState::TaskKilled,
                task_status::Reason::ExecutorUnregistered,
                "Unregistered executor",
            )
            .await;
            return;
        }
        if let Err(error) = run.fake.kill_with_policy(id, kill_policy) {
            eprintln!("containerizer agent: KILL to the executor failed: {error}");
        }
    }

    /// SHUTDOWN to the executor; `destroy` once the grace period passed.
    fn shutdown_executor(self: Arc<Self>, run: Arc<Run>) {
        let _ = run.fake.shutdown();
        let grace = run
            .executor
            .shutdown_grace_period
            .as_ref()
            .map_or(self.config.executor_shutdown_grace_period, |d| {
                Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0))
            });
        tokio::spawn(async move {
            let mut ended = run.ended.subscribe();
            tokio::select! {
                () = tokio::time::sleep(grace) => self.destroy(&run).await,
                () = wait_ended(&mut ended) => {}
            }
        });
    }

    /// `destroy`, then SIGKILL of the `wait` session (at most one destroy).
    async fn destroy(&self, run: &Run) {
        {
            let mut state = run.lock();
            if state.destroying || state.terminated {
                return;
            }
            state.destroying = true;
        }
        let destroy = Destroy {
            container_id: mesos::ContainerId {
                value: run.container_id.clone(),
            },
        };
        if let Err(error) = self
            .call_to_end(
                "destroy",
                Some(run),
                Some(&run.container_id),
                Some(&destroy),
                false,
            )
            .await
        {
            eprintln!("containerizer agent: {error}");
        }
        if let Some(session) = run.lock().wait_session {
            session.kill();
        }
        run.destroyed.send_replace(true);
    }

    /// Starts `wait` for `run` and handles its termination.
    fn start_wait(self: Arc<Self>, run: Arc<Run>, with_sandbox: bool) {
        tokio::spawn(async move {
            let wait = Wait {
                container_id: mesos::ContainerId {
                    value: run.container_id.clone(),
                },
            };
            let generation = self.generation();
            let started = self
                .call(
                    "wait",
                    with_sandbox.then_some(run.as_ref()),
                    Some(&run.container_id),
                    Some(&wait),
                    true,
                )
                .await;
            let outcome = match started {
                Ok((session, outcome)) => {
                    run.lock().wait_session = Some(session);
                    outcome.await.ok().and_then(Result::ok)
                }
                Err(_) => None,
            };
            if self.generation() != generation {
                return; // the agent restarted meanwhile: nobody is listening
            }
            let termination = if run.lock().destroying {
                let mut destroyed = run.destroyed.subscribe();
                let _ = destroyed.wait_for(|d| *d).await;
                // Whatever `wait` wrote is discarded.
                outcome.map(|o| Termination {
                    status: Some(std::os::unix::process::ExitStatusExt::into_raw(o.status)),
                    ..Default::default()
                })
            } else {
                outcome.and_then(|o| match o.status.success() {
                    true => o
                        .output
                        .and_then(|b| Termination::decode(b.as_slice()).ok()),
                    false => None,
                })
            };
            self.executor_terminated(&run, termination).await;
        });
    }

    /// The executor terminated: its live tasks get §1.8's update.
    async fn executor_terminated(&self, run: &Run, termination: Option<Termination>) {
        let pending = {
            let mut state = run.lock();
            state.terminated = true;
            state.pending.clone()
        };
        let state = termination
            .as_ref()
            .and_then(|t| t.state)
            .and_then(|s| TaskState::try_from(s).ok())
            .or(pending.as_ref().map(|p| p.state))
            .unwrap_or(TaskState::TaskFailed);
        let reason = termination
            .as_ref()
            .and_then(|t| t.reasons.first().copied())
            .and_then(|r| task_status::Reason::try_from(r).ok())
            .or(pending.as_ref().map(|p| p.reason))
            .unwrap_or(task_status::Reason::ExecutorTerminated);
        let mut messages: Vec<String> = pending.iter().map(|p| p.message.clone()).collect();
        match &termination {
            None => messages.push("Abnormal executor termination".to_owned()),
            Some(t) => messages.extend(t.message.clone()),
        }
        let message = match messages.is_empty() {
            true => "Executor terminated".to_owned(),
            false => messages.join("; "),
        };
        let live: Vec<TaskId> = run
            .lock()
            .tasks
            .iter()
            .filter(|(_, s)| !is_terminal(*s))
            .map(|(t, _)| t.task_id.clone())
            .collect();
        for task_id in live {
            self.agent_update(run, &task_id, state, reason, &message)
                .await;
        }
        if !run.command_executor {
            let status = termination.and_then(|t| t.status).unwrap_or(-1);
            if let Some(uplink) = self.uplink() {
                let _ = uplink.executor_exited(run.executor_id(), status);
            }
        }
        self.config
            .book
            .executor_terminated(&run.framework_id(), run.executor_id());
        run.ended.send_replace(true);
    }

    fn start_usage_polling(self: Arc<Self>, run: Arc<Run>) {
        let Some(interval) = self.config.usage_interval else {
            return;
        };
        tokio::spawn(async move {
            let mut ended = run.ended.subscribe();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = wait_ended(&mut ended) => return,
                }
                if let Ok(statistics) = self.usage(&run.container_id).await {
                    self.polled
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((run.container_id.clone(), statistics));
                }
            }
        });
    }

    pub(super) async fn usage(&self, container_id: &str) -> Result<ResourceStatistics, String> {
        let run = self
            .runs()
            .into_iter()
            .find(|r| r.container_id == container_id)
            .ok_or_else(|| format!("usage: unknown container {container_id}"))?;
        let usage = Usage {
            container_id: mesos::ContainerId {
                value: container_id.to_owned(),
            },
        };
        let outcome = self
            .call_to_end("usage", Some(&run), Some(container_id), Some(&usage), true)
            .await?;
        let bytes = outcome
            .output
            .ok_or("usage: no ResourceStatistics record")?;
        ResourceStatistics::decode(bytes.as_slice()).map_err(|e| format!("usage: {e}"))
    }

    /// The agent process dies: executors lose their connection; running
    /// `wait` calls are forgotten (not killed).
    pub(super) async fn go_down(&self) {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        for run in self.runs() {
            if !run.lock().terminated {
                let _ = run.fake.disconnect().await;
            }
        }
    }

    /// `recover`, `containers`, then resume or destroy what is listed.
    pub(super) async fn recover(self: &Arc<Self>) -> Result<(), String> {
        self.call_to_end::<Wait>("recover", None, None, None, false)
            .await?;
        let outcome = self
            .call_to_end::<Wait>("containers", None, None, None, true)
            .await?;
        let listed = outcome
            .output
            .ok_or("containers wrote no record")
            .and_then(|b| {
                Containers::decode(b.as_slice()).map_err(|_| "containers wrote an invalid record")
            })?;
        let runs = self.runs();
        let mut orphans = Vec::new();
        for id in listed.containers.iter().map(|c| c.value.clone()) {
            let run = runs
                .iter()
                .find(|r| r.container_id == id && !r.lock().terminated);
            let latest = run.filter(|r| {
                self.config
                    .book
                    .latest_run(&r.framework_id(), r.executor_id())
                    .as_deref()
                    == Some(r.sandbox.as_path())
            });
            match latest {
                Some(run) if run.framework.checkpoint.unwrap_or(false) => {
                    self.resume(Arc::clone(run)).await;
                }
                _ => orphans.push(id),
            }
        }
        let mut waits = Vec::new();
        for id in orphans {
            waits.push(self.destroy_orphan(id).await);
        }
        for wait in waits.into_iter().flatten() {
            let _ = wait.await;
        }
        Ok(())
    }

    async fn resume(self: &Arc<Self>, run: Arc<Run>) {
        run.lock().generation = self.generation();
        if run.fake.restart().await.is_err() {
            return;
        }
        Arc::clone(self).start_wait(Arc::clone(&run), true);
        let agent = Arc::clone(self);
        let timeout = self.config.executor_reregistration_timeout;
        tokio::spawn(async move {
            if run.fake.wait_subscribed(timeout).await.is_err() {
                run.lock().pending = Some(Pending {
                    state: TaskState::TaskLost,
                    reason: task_status::Reason::ExecutorReregistrationTimeout,
                    message: "Executor did not reregister".to_owned(),
                });
                agent.destroy(&run).await;
            }
        });
    }

    /// `wait` and, concurrently, `destroy` for an orphan (no sandbox); the
    /// `wait` session is SIGKILLed once `destroy` exits.
    async fn destroy_orphan(
        &self,
        id: String,
    ) -> Option<tokio::task::JoinHandle<std::io::Result<EcpOutcome>>> {
        let container_id = mesos::ContainerId { value: id.clone() };
        let wait = Wait {
            container_id: container_id.clone(),
        };
        let (session, waiting) = self
            .call("wait", None, Some(&id), Some(&wait), true)
            .await
            .ok()?;
        let destroy = Destroy { container_id };
        let _ = self
            .call_to_end("destroy", None, Some(&id), Some(&destroy), false)
            .await;
        session.kill();
        Some(waiting)
    }
}
