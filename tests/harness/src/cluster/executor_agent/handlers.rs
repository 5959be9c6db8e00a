//! The agent's handling of the master's messages and of its executors'
//! lives (`Slave::run`, `killTask`, `kill`, `shutdownExecutor`,
//! `registerExecutorTimeout`, `shutdownExecutorTimeout`,
//! `executorTerminated`).

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Child;
use tokio::task::JoinHandle;

use super::*;
use crate::common::uuid::{random_uuid, random_uuid_string};

impl Inner {
    /// `RunTaskMessage`: to the executor's live run, or a new run.
    pub(super) async fn run_task(self: &Arc<Self>, framework: FrameworkInfo, task: TaskInfo) {
        let framework_id = framework.id.clone().unwrap_or_default().value;
        let Some(info) = task.executor.clone() else {
            let message = "Failed to launch container: this agent runs only tasks with an \
                           ExecutorInfo (custom executors)";
            let reason = task_status::Reason::ContainerLaunchFailed;
            self.unrun_update(&task, TaskState::TaskFailed, reason, message);
            return;
        };
        {
            let mut state = self.lock();
            if state.shut_down || state.terminating_frameworks.contains(&framework_id) {
                state.note(format!(
                    "ignoring task {} of terminating framework {framework_id}",
                    task.task_id.value
                ));
                return;
            }
            if let Some(run) = state.live_run(&framework_id, &info.executor_id.value) {
                if run.phase == Phase::Terminating {
                    let lost = lost_or_dropped(run.partition_aware());
                    let reason = task_status::Reason::ExecutorTerminated;
                    drop(state);
                    self.unrun_update(&task, lost, reason, "Executor terminating");
                    return;
                }
                run.tasks.push((task.clone(), TaskState::TaskStaging));
                let launched = run.agent.launch(task.clone());
                let executor_id = run.executor_id.clone();
                if let Err(error) = launched {
                    state.note(format!("LAUNCH of {} failed: {error}", task.task_id.value));
                }
                self.config.book.set_task(
                    &framework_id,
                    &executor_id,
                    &task,
                    TaskState::TaskStaging,
                );
                return;
            }
        }
        self.launch_run(framework, info, task).await;
    }

    /// A new executor run: sandbox, executor endpoint, process, timers.
    async fn launch_run(
        self: &Arc<Self>,
        framework: FrameworkInfo,
        info: ExecutorInfo,
        task: TaskInfo,
    ) {
        let container_id = random_uuid_string();
        let book = &self.config.book;
        let executor_id = info.executor_id.value.clone();
        let sandbox =
            match book.new_run(&framework, &executor_id, &container_id, Some(info.clone())) {
                Ok(sandbox) => sandbox,
                Err(error) => {
                    let message =
                        format!("Failed to launch container: cannot create the sandbox: {error}");
                    let reason = task_status::Reason::ContainerLaunchFailed;
                    self.unrun_update(&task, TaskState::TaskFailed, reason, &message);
                    return;
                }
            };
        let setup = self.endpoint_setup(&framework, &info, &container_id);
        let agent = match FakeAgent::start(setup).await {
            Ok(agent) => Arc::new(agent),
            Err(error) => {
                let message = format!("Failed to launch container: no executor endpoint: {error}");
                let reason = task_status::Reason::ContainerLaunchFailed;
                self.unrun_update(&task, TaskState::TaskFailed, reason, &message);
                return;
            }
        };
        let mut run = Run::new(framework, info, container_id.clone(), agent, sandbox);
        run.tasks.push((task.clone(), TaskState::TaskStaging));
        book.set_task(
            &run.framework_id,
            &executor_id,
            &task,
            TaskState::TaskStaging,
        );
        // Queued until the first SUBSCRIBE: cannot fail.
        let _ = run.agent.launch(task);
        match self.spawn_executor(&run) {
            Ok(child) => {
                run.pid = child.id();
                run.forwarder = Some(self.start_forwarder(&container_id, &run.agent));
                let agent = Arc::clone(&run.agent);
                self.lock().runs.push(run);
                self.start_waiter(container_id.clone(), child);
                self.start_registration_timer(container_id, agent);
            }
            Err(reason) => {
                run.pending_termination = Some(Termination {
                    state: TaskState::TaskFailed,
                    reason: task_status::Reason::ContainerLaunchFailed,
                    message: format!("Failed to launch container: {reason}"),
                });
                self.lock().runs.push(run);
                self.executor_terminated(&container_id, -1);
            }
        }
    }

    fn endpoint_setup(
        &self,
        framework: &FrameworkInfo,
        info: &ExecutorInfo,
        container_id: &str,
    ) -> AgentSetup {
        let config = &self.config;
        let grace = shutdown_grace(info, config.executor_shutdown_grace_period);
        AgentSetup {
            checkpoint: framework.checkpoint.unwrap_or(false),
            framework_user: framework.user.clone(),
            framework_name: framework.name.clone(),
            hostname: config.hostname.clone(),
            executor_command: info.command.clone(),
            recovery_timeout: config.recovery_timeout,
            subscription_backoff_max: config.executor_reregistration_timeout,
            shutdown_grace_period: grace,
            heartbeat_interval: config.heartbeat_interval,
            sets_mesos_sandbox: true,
            ..AgentSetup::new(
                framework.id.clone().unwrap_or_default().value,
                info.executor_id.value.clone(),
                config.book.agent_id(),
                container_id,
            )
        }
    }

    /// Fetches the URIs and starts the process (the containerizer's launch).
    fn spawn_executor(&self, run: &Run) -> Result<Child, String> {
        let command = run
            .info
            .command
            .as_ref()
            .ok_or("the ExecutorInfo has no command")?;
        process::fetch_uris(&command.uris, &run.sandbox)?;
        let env = process::executor_environment(
            std::env::var("LIBPROCESS_IP").ok().as_deref(),
            &self.config.executor_environment_variables,
            &run.agent.executor_env(&run.sandbox),
            Some(command),
        );
        let invocation = process::invocation(command, &run.sandbox)?;
        process::spawn(&invocation, &env, &run.sandbox)
    }

    fn start_forwarder(self: &Arc<Self>, container_id: &str, agent: &FakeAgent) -> JoinHandle<()> {
        let inner = Arc::clone(self);
        let container_id = container_id.to_owned();
        let mut changes = agent.changes();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                inner.forward(&container_id);
                inner.notify();
            }
        })
    }

    /// Forwards the run's new executor updates to the master.
    pub(super) fn forward(&self, container_id: &str) {
        let mut state = self.lock();
        let Some(run) = state
            .runs
            .iter_mut()
            .find(|r| r.container_id == container_id)
        else {
            return;
        };
        if run.phase == Phase::Terminated {
            return;
        }
        let updates = run.take_new_updates();
        self.send_all(&mut state, container_id, &updates);
    }

    /// Sends `updates` of run `container_id` to the master and records the
    /// tasks' states in the book.
    fn send_all(&self, state: &mut State, container_id: &str, updates: &[TaskStatus]) {
        let uplink = state.uplink.clone();
        let Some(run) = state.runs.iter().find(|r| r.container_id == container_id) else {
            return;
        };
        let mut notes = Vec::new();
        for status in updates {
            if let Some((task, _)) = run.tasks.iter().find(|(t, _)| t.task_id == status.task_id) {
                let book = &self.config.book;
                book.set_task(&run.framework_id, &run.executor_id, task, status.state());
            }
            let Some(uplink) = &uplink else {
                notes.push("no master to send an update to".to_owned());
                continue;
            };
            if let Err(error) = uplink.send_status(&status.task_id.value, status.clone()) {
                notes.push(format!("the master refused an update: {error}"));
            }
        }
        state.notes.extend(notes);
    }

    fn start_waiter(self: &Arc<Self>, container_id: String, mut child: Child) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => status.into_raw(),
                Err(_) => -1,
            };
            // A dead agent reaps nothing: the exit is handled once it is up.
            let mut up = inner.up.subscribe();
            let _ = up.wait_for(|up| *up).await;
            inner.executor_terminated(&container_id, status);
            inner.notify();
        });
    }

    /// `registerExecutorTimeout`: a run still registering is destroyed;
    /// its tasks fail with REASON_EXECUTOR_REGISTRATION_TIMEOUT.
    fn start_registration_timer(self: &Arc<Self>, container_id: String, agent: Arc<FakeAgent>) {
        let inner = Arc::clone(self);
        let timeout = self.config.executor_registration_timeout;
        tokio::spawn(async move {
            let subscribed = agent.wait_subscribed(timeout).await.is_ok();
            let mut state = inner.lock();
            let Some(run) = state
                .runs
                .iter_mut()
                .find(|r| r.container_id == container_id)
            else {
                return;
            };
            if run.phase != Phase::Registering {
                return;
            }
            if subscribed {
                run.phase = Phase::Running;
                return;
            }
            run.phase = Phase::Terminating;
            run.pending_termination = Some(Termination {
                state: TaskState::TaskFailed,
                reason: task_status::Reason::ExecutorRegistrationTimeout,
                message: format!(
                    "Executor did not register within {}",
                    crate::agent::stout_duration(timeout)
                ),
            });
            if let Some(pid) = run.pid {
                process::destroy(pid);
            }
        });
    }

    /// `Slave::executorTerminated`: the executor's last updates, the
    /// master's `ExitedExecutorMessage`, TASK_FAILED (or the pending
    /// termination) for every task not terminal unless its framework is
    /// terminating; the run is completed in the book.
    pub(super) fn executor_terminated(&self, container_id: &str, status: i32) {
        let mut state = self.lock();
        let uplink = state.uplink.clone();
        let terminating = state.terminating_frameworks.clone();
        let Some(run) = state
            .runs
            .iter_mut()
            .find(|r| r.container_id == container_id)
        else {
            return;
        };
        if run.phase == Phase::Terminated {
            return;
        }
        let last = run.take_new_updates();
        run.phase = Phase::Terminated;
        run.exit_status = Some(status);
        if let Some(forwarder) = run.forwarder.take() {
            forwarder.abort();
        }
        if let Some(pid) = run.pid {
            // The container is destroyed: what the executor left in its
            // process group goes with it.
            process::destroy(pid);
        }
        let report = !run.forgotten;
        let mut generated = Vec::new();
        if report && !terminating.contains(&run.framework_id) {
            generated = run.terminated_updates();
            for update in &generated {
                run.record(update);
            }
        }
        let (framework_id, executor_id) = (run.framework_id.clone(), run.executor_id.clone());
        let agent = Arc::clone(&run.agent);
        self.send_all(&mut state, container_id, &last);
        if report {
            if let Some(uplink) = &uplink {
                if let Err(error) = uplink.executor_exited(&executor_id, status) {
                    state.note(format!(
                        "the master ignored the exit of {executor_id}: {error}"
                    ));
                }
            }
        }
        self.send_all(&mut state, container_id, &generated);
        self.config
            .book
            .executor_terminated(&framework_id, &executor_id);
        drop(state);
        tokio::spawn(async move {
            // The endpoint of a terminated executor answers no more.
            let _ = agent.disconnect().await;
        });
    }

    /// `KillTaskMessage`.
    pub(super) fn kill_task(&self, framework_id: &str, task_id: &str, policy: Option<KillPolicy>) {
        let mut state = self.lock();
        let found = state
            .run_of_task(framework_id, task_id)
            .filter(|r| r.phase != Phase::Terminated);
        let Some(run) = found else {
            let partition_aware = state
                .run_of_task(framework_id, task_id)
                .is_some_and(|r| r.partition_aware());
            drop(state);
            self.cannot_find_executor(framework_id, task_id, partition_aware);
            return;
        };
        if run.phase == Phase::Terminating {
            state.note(format!(
                "ignoring kill of {task_id}: its executor is terminating"
            ));
            return;
        }
        let id = TaskId {
            value: task_id.to_owned(),
        };
        if run.agent.remove_queued(&id) {
            let status = TaskStatus {
                task_id: id,
                state: TaskState::TaskKilled as i32,
                message: Some("Killed before delivery to the executor".to_owned()),
                reason: Some(task_status::Reason::TaskKilledDuringLaunch as i32),
                ..Default::default()
            };
            let status = run.generated_update(status);
            run.record(&status);
            let container_id = run.container_id.clone();
            self.send_all(&mut state, &container_id, &[status]);
            return;
        }
        if let Err(error) = run.agent.kill_with_policy(id, policy) {
            state.note(format!("KILL of {task_id} not delivered: {error}"));
        }
    }

    /// `Slave::killTask` without an executor: TASK_LOST (TASK_DROPPED for
    /// partition-aware frameworks), "Cannot find executor".
    fn cannot_find_executor(&self, framework_id: &str, task_id: &str, partition_aware: bool) {
        let status = TaskStatus {
            task_id: TaskId {
                value: task_id.to_owned(),
            },
            state: lost_or_dropped(partition_aware) as i32,
            message: Some("Cannot find executor".to_owned()),
            reason: Some(task_status::Reason::ExecutorTerminated as i32),
            source: Some(task_status::Source::Agent as i32),
            uuid: Some(random_uuid().to_vec()),
            ..Default::default()
        };
        self.send_generated(framework_id, status);
    }

    /// An agent-generated update for a task no run holds.
    fn unrun_update(
        &self,
        task: &TaskInfo,
        state: TaskState,
        reason: task_status::Reason,
        message: &str,
    ) {
        let status = TaskStatus {
            task_id: task.task_id.clone(),
            state: state as i32,
            message: Some(message.to_owned()),
            reason: Some(reason as i32),
            source: Some(task_status::Source::Agent as i32),
            uuid: Some(random_uuid().to_vec()),
            ..Default::default()
        };
        self.send_generated("", status);
    }

    fn send_generated(&self, framework_id: &str, status: TaskStatus) {
        let mut state = self.lock();
        let Some(uplink) = state.uplink.clone() else {
            return;
        };
        if let Err(error) = uplink.send_status(&status.task_id.value, status.clone()) {
            state.note(format!(
                "the master refused an update of framework {framework_id}: {error}"
            ));
        }
    }

    /// `StatusUpdateAcknowledgementMessage`: ACKNOWLEDGED to the executor
    /// (not for the agent's own updates).
    pub(super) fn acknowledged(&self, framework_id: &str, task_id: &str, uuid: Vec<u8>) {
        let agent = {
            let mut state = self.lock();
            match state.run_of_task(framework_id, task_id) {
                Some(run) if run.generated.contains(&uuid) => return,
                Some(run) => Arc::clone(&run.agent),
                None => {
                    state.note(format!("acknowledgement for unknown task {task_id}"));
                    return;
                }
            }
        };
        let id = TaskId {
            value: task_id.to_owned(),
        };
        if let Err(error) = agent.acknowledge(id, uuid) {
            self.lock()
                .note(format!("ACKNOWLEDGED for {task_id} not delivered: {error}"));
        }
    }

    /// `FrameworkToExecutorMessage`: MESSAGE to a subscribed executor.
    pub(super) fn framework_message(&self, framework_id: &str, executor_id: &str, data: Vec<u8>) {
        let mut state = self.lock();
        let Some(run) = state.live_run(framework_id, executor_id) else {
            state.note(format!(
                "dropping a message for unknown executor {executor_id}"
            ));
            return;
        };
        let event = Event {
            r#type: Some(event::Type::Message as i32),
            message: Some(event::Message { data }),
            ..Default::default()
        };
        if let Err(error) = run.agent.send(event) {
            state.note(format!("dropping a message for {executor_id}: {error}"));
        }
    }

    /// `ShutdownExecutorMessage`.
    pub(super) fn shutdown_executor(self: &Arc<Self>, framework_id: &str, executor_id: &str) {
        self.shutdown_where(|r| r.framework_id == framework_id && r.executor_id == executor_id);
    }

    /// `_shutdownExecutor` for every registering or running run matching:
    /// SHUTDOWN, then SIGKILL after the grace period if still alive.
    pub(super) fn shutdown_where(self: &Arc<Self>, matches: impl Fn(&Run) -> bool) {
        let mut state = self.lock();
        let mut notes = Vec::new();
        for run in state.runs.iter_mut().filter(|r| matches(r)) {
            if !matches!(run.phase, Phase::Registering | Phase::Running) {
                continue;
            }
            run.phase = Phase::Terminating;
            if let Err(error) = run.agent.shutdown() {
                notes.push(format!(
                    "SHUTDOWN of {} not delivered: {error}",
                    run.executor_id
                ));
            }
            let grace = shutdown_grace(&run.info, self.config.executor_shutdown_grace_period);
            self.start_shutdown_timer(run.container_id.clone(), grace);
        }
        state.notes.extend(notes);
    }

    /// `shutdownExecutorTimeout`: destroys a run still terminating.
    fn start_shutdown_timer(self: &Arc<Self>, container_id: String, grace: Duration) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let mut state = inner.lock();
            let run = state.runs.iter().find(|r| r.container_id == container_id);
            let Some(run) = run.filter(|r| r.phase == Phase::Terminating) else {
                return;
            };
            let (pid, executor_id) = (run.pid, run.executor_id.clone());
            if let Some(pid) = pid {
                process::destroy(pid);
            }
            state.note(format!(
                "killing executor {executor_id} after the shutdown grace period"
            ));
        });
    }

    /// The executor endpoints of runs not terminated.
    pub(super) fn live_agents(&self) -> Vec<Arc<FakeAgent>> {
        let state = self.lock();
        state
            .runs
            .iter()
            .filter(|r| r.phase != Phase::Terminated)
            .map(|r| Arc::clone(&r.agent))
            .collect()
    }

    /// After a restart: executors of frameworks that do not checkpoint are
    /// not recovered (destroyed as orphans, nothing reported); updates
    /// whose acknowledgement was lost are re-sent.
    pub(super) fn recover(&self) {
        let mut state = self.lock();
        for run in state
            .runs
            .iter_mut()
            .filter(|r| r.phase != Phase::Terminated)
        {
            if !run.framework.checkpoint.unwrap_or(false) {
                run.forgotten = true;
                if let Some(pid) = run.pid {
                    process::destroy(pid);
                }
            }
        }
        let lost = std::mem::take(&mut state.lost_acknowledgements);
        let uplink = state.uplink.clone();
        for (framework_id, task_id, uuid) in lost {
            let pending = state
                .run_of_task(&framework_id, &task_id)
                .and_then(|r| r.forwarded_with(&uuid).cloned());
            let (Some(status), Some(uplink)) = (pending, &uplink) else {
                continue;
            };
            if let Err(error) = uplink.send_status(&task_id, status) {
                state.note(format!("re-sending an update of {task_id} failed: {error}"));
            }
        }
    }
}

/// `ExecutorInfo.shutdown_grace_period` if set, else the agent's flag.
fn shutdown_grace(info: &ExecutorInfo, default: Duration) -> Duration {
    info.shutdown_grace_period.as_ref().map_or(default, |d| {
        Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0))
    })
}

/// TASK_DROPPED for partition-aware frameworks, TASK_LOST otherwise.
fn lost_or_dropped(partition_aware: bool) -> TaskState {
    if partition_aware {
        TaskState::TaskDropped
    } else {
        TaskState::TaskLost
    }
}
