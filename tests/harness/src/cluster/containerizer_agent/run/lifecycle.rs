//! An executor run's life: launch, registration, updates, kill, shutdown,
//! `destroy`, `wait` and the executor's termination, `usage`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesos_proto::containerizer::{Destroy, Termination, Update, Usage, Wait};
use mesos_proto::mesos::{self, ResourceStatistics};
use mesos_proto::v1::executor::call;
use mesos_proto::v1::{
    task_status, ExecutorInfo, FrameworkInfo, KillPolicy, TaskId, TaskInfo, TaskState, TaskStatus,
};
use prost::Message;
use tokio::sync::watch;

use super::super::ecp::{invoke, EcpCall};
use super::super::launch_record::{
    command_executor_info, devolve, launch_record, LaunchVariables, RunDescription,
};
use super::{is_terminal, wait_ended, Agent, Pending, Run, RunState};
use crate::agent::{stout_duration, AgentSetup, FakeAgent};
use crate::common::uuid::{random_uuid, random_uuid_string};

impl Agent {
    pub(super) async fn run_task(self: Arc<Self>, framework: FrameworkInfo, task: TaskInfo) {
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

    pub(super) async fn kill_task(self: Arc<Self>, task_id: &str, kill_policy: Option<KillPolicy>) {
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
    pub(super) fn shutdown_executor(self: Arc<Self>, run: Arc<Run>) {
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
    pub(super) async fn destroy(&self, run: &Run) {
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
    pub(super) fn start_wait(self: Arc<Self>, run: Arc<Run>, with_sandbox: bool) {
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

    pub(in crate::cluster::containerizer_agent) async fn usage(
        &self,
        container_id: &str,
    ) -> Result<ResourceStatistics, String> {
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
}
