//! The local backend behind the asynchronous [`Backend`] interface: placements decided at
//! once against the host's capacity, one task per launch reporting `Running` and the end,
//! kills as background stops, and a run's container removed and its resources given back
//! when the core acknowledges its end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deimos_runtime::runtime::output::dropped_bytes;
use deimos_runtime::runtime::{LabelFilter, UsageStats, STDERR_FILE, STDOUT_FILE};
use deimos_runtime::spec::labels;

use super::spec::MANAGED_BY;
use super::{disk, host_port_is_free, LocalBackend, SANDBOXES_DIR};
use crate::backend::placement::place_in_order;
use crate::backend::view::{ClusterView, LocalView};
use crate::backend::{
    AckToken, Allocation, Backend, BackendError, BackendEvent, Demand, EventSink, KnownRun,
    LogSource, OutputDropped, Placement, RecoveredState, ReportedEnd, Reservation, Resources, Run,
    RunEnd, RunId, RunStatus,
};
use crate::task::{Network, NewTask, Task, TaskId, TaskState};

/// How long a run waits before it is watched again while the Docker engine is unreachable.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(5);

/// A run holding resources of this host.
#[derive(Debug)]
pub(crate) struct LocalRun {
    /// What it holds.
    allocation: Allocation,
    /// Its container, once started.
    container: Option<String>,
    /// The grace period of a kill asked before the container existed.
    kill: Option<Duration>,
}

impl LocalBackend {
    fn sink(&self) -> Option<&EventSink> {
        self.inner.events.get()
    }

    fn report(&self, run: &RunId, status: RunStatus, ack: bool) {
        let ack = ack.then(|| AckToken(run.name()));
        if let Some(sink) = self.sink() {
            sink.status(run.clone(), status, ack);
        }
    }

    /// Starts the run's container and follows it to its end, reporting both.
    async fn launch_and_watch(&self, run: RunId, task: Task, allocation: Allocation) {
        let started = self.start_run(&task, run.attempt, &allocation).await;
        let started = match started {
            Ok(started) => started,
            Err(error) if error.is_unreachable() => {
                let reason = error.to_string();
                return self.report(&run, RunStatus::NotLaunched { reason }, true);
            }
            Err(error) => {
                let end = RunEnd::NotStarted {
                    reason: error.to_string(),
                };
                return self.report(&run, RunStatus::Ended(end), true);
            }
        };
        let kill = {
            let mut runs = self.runs();
            match runs.get_mut(&run.name()) {
                Some(held) => {
                    held.container = Some(started.container_id.clone());
                    held.kill
                }
                // Abandoned meanwhile: nobody waits for this container.
                None => Some(Duration::ZERO),
            }
        };
        if let Some(grace) = kill {
            self.stop_in_background(&started, grace);
        }
        let started_at = started.started_at;
        self.report(&run, RunStatus::Running { started_at }, false);
        self.watch(run, started).await;
    }

    /// Follows a started run to its end and reports it. While the engine is unreachable the
    /// container may well still run, so it is watched again rather than declared lost.
    async fn watch(&self, run: RunId, started: Run) {
        let end = loop {
            match self.wait_run(&started).await {
                Ok(outcome) => break RunEnd::Exited(outcome),
                Err(error) if error.is_unreachable() => {
                    tracing::warn!(run = %run, "waiting for the Docker engine: {error}");
                    tokio::time::sleep(UNREACHABLE_RETRY).await;
                }
                Err(error) => {
                    break RunEnd::Reported(ReportedEnd {
                        state: TaskState::Lost,
                        reason: Some(format!("lost track of the container: {error}")),
                        exit_code: None,
                        memory_limited: false,
                        started: true,
                    })
                }
            }
        };
        self.report(&run, RunStatus::Ended(end), true);
    }

    fn stop_in_background(&self, run: &Run, grace: Duration) {
        let this = self.clone();
        let run = run.clone();
        tokio::spawn(async move {
            if let Err(error) = this.stop_run(&run, grace).await {
                // The core sends the kill again until the run ends.
                tracing::warn!(container = %run.container_id, "stopping the container: {error}");
            }
        });
    }

    /// Removes a container by name (a run this backend does not follow).
    fn remove_in_background(&self, name: String) {
        let this = self.clone();
        tokio::spawn(async move {
            match this.runtime().remove(&name).await {
                Ok(()) => {}
                Err(error) if error.is_no_such_container() => {}
                Err(error) => tracing::warn!(container = %name, "removing a container: {error}"),
            }
        });
    }

    /// Answers a reconciliation from the containers of this instance.
    async fn answer(&self, known: Vec<KnownRun>) -> Result<(), BackendError> {
        let filters = [
            LabelFilter::equals(labels::MANAGED_BY, MANAGED_BY),
            LabelFilter::equals(labels::OWNER, self.inner.config.instance_id.as_str()),
        ];
        let listed = self.runtime().list(&filters).await.map_err(|error| {
            BackendError::query("listing the containers of this instance", error)
        })?;
        let mut found: BTreeMap<String, Run> = BTreeMap::new();
        let mut states = BTreeMap::new();
        let mut strays = Vec::new();
        let wanted: std::collections::HashSet<String> =
            known.iter().map(|run| run.run.name()).collect();
        for container in listed {
            match self.recover_one(&container.id, &container.labels).await? {
                Some(recovered) if wanted.contains(&recovered.run.run_id) => {
                    states.insert(recovered.run.run_id.clone(), recovered.state);
                    found.insert(recovered.run.run_id.clone(), recovered.run);
                }
                Some(recovered) => strays.push(RunId::new(recovered.task_id, recovered.attempt)),
                None => {}
            }
        }
        for run in known {
            let name = run.run.name();
            let (Some(started), Some(state)) = (found.remove(&name), states.remove(&name)) else {
                self.report(&run.run, RunStatus::Unknown, false);
                continue;
            };
            let allocation = Allocation {
                cpus: run.cpus,
                mem_mib: run.mem_mib,
                host_ports: started.host_ports.clone(),
            };
            self.adopt(&allocation);
            self.runs().insert(
                name,
                LocalRun {
                    allocation,
                    container: Some(started.container_id.clone()),
                    kill: None,
                },
            );
            if state == RecoveredState::Running {
                let started_at = started.started_at;
                self.report(&run.run, RunStatus::Running { started_at }, false);
            }
            let this = self.clone();
            tokio::spawn(async move { this.watch(run.run, started).await });
        }
        if let Some(sink) = self.sink() {
            for run in strays {
                sink.send(BackendEvent::UnknownRun { run });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn admissible(&self, task: &NewTask) -> Result<(), String> {
        let mut problems = self.capacity().exceeded(&Resources::of(task));
        if task.network == Network::User && self.inner.config.user_network.is_none() {
            problems.push(
                "network: USER needs a Docker network, and none is configured for this \
                 backend (setting user_network)"
                    .to_owned(),
            );
        }
        // Constraints match agent attributes (Mesos); this host has none, so a constrained
        // task would wait forever (Eremetic's head-of-line blocking, E-5): refuse it now.
        for constraint in &task.agent_constraints {
            problems.push(format!(
                "agent_constraints: {}={} can never match: the local backend has no agent \
                 attributes",
                constraint.attribute_name, constraint.attribute_value
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn free(&self) -> Resources {
        self.capacity().free()
    }

    fn cluster_view(&self) -> ClusterView {
        let config = &self.inner.config;
        ClusterView::Local(LocalView {
            docker_host: config.docker_host.clone(),
            instance_id: config.instance_id.clone(),
            port_range: [config.port_range.0, config.port_range.1],
            user_network: config.user_network.clone(),
        })
    }

    fn launch_blocker(&self) -> Option<String> {
        let floor = self.inner.config.min_free_bytes;
        if floor == 0 {
            return None;
        }
        let data_dir = &self.inner.config.data_dir;
        disk::floor_reason(data_dir, disk::free_bytes(data_dir), floor)
    }

    async fn output_dropped(&self, task: &TaskId) -> OutputDropped {
        let sandbox = self.sandbox_dir(task);
        OutputDropped {
            stdout: dropped_bytes(&sandbox.join(STDOUT_FILE)).await,
            stderr: dropped_bytes(&sandbox.join(STDERR_FILE)).await,
        }
    }

    fn total(&self) -> Resources {
        let capacity = self.capacity();
        Resources {
            cpus: capacity.total_cpus(),
            mem_mib: capacity.total_mem_mib(),
            ports: capacity.total_ports(),
        }
    }

    async fn usage(&self, run: &RunId) -> Result<Option<UsageStats>, BackendError> {
        self.usage_of(&run.name()).await
    }

    async fn sandboxes(&self) -> Result<Vec<TaskId>, BackendError> {
        let dir = self.inner.config.data_dir.join(SANDBOXES_DIR);
        let listing_error = |source| BackendError::Sandbox {
            target: "every task".to_owned(),
            action: "listing the sandboxes",
            path: dir.clone(),
            source,
        };
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(listing_error)?;
        let mut tasks = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(listing_error)? {
            // Anything that is not named like a task is not ours to judge.
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|name| TaskId::parse(name).ok())
            {
                tasks.push(id);
            }
        }
        Ok(tasks)
    }

    async fn remove_sandbox(&self, task: &TaskId) -> Result<(), BackendError> {
        let path = self.sandbox_dir(task);
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BackendError::Sandbox {
                target: format!("task {task}"),
                action: "removing the sandbox",
                path,
                source,
            }),
        }
    }

    async fn start(
        &self,
        events: EventSink,
        _framework_id: Option<String>,
    ) -> Result<(), BackendError> {
        // Started once; a second start keeps reporting to the first core.
        let _ = self.inner.events.set(events);
        Ok(())
    }

    fn offer_demand(&self, demand: &mut dyn Iterator<Item = Demand<'_>>) -> Vec<Placement> {
        let mut runs = self.runs();
        let mut capacity = self.capacity();
        let free = capacity.free();
        let chosen = place_in_order(
            demand,
            Instant::now(),
            free,
            |run| runs.contains_key(&run.name()),
            // A port of the range may be held by something else on this host (another
            // service, another eremetic instance): Docker would refuse to publish it.
            |wanted| match capacity.place_with(wanted.needs, host_port_is_free) {
                Reservation::Reserved(allocation) => Some(allocation),
                Reservation::Wait => None,
            },
        );
        drop(capacity);
        chosen
            .into_iter()
            .map(|(run, allocation)| {
                let placement = Placement {
                    run: run.clone(),
                    agent_id: self.name().to_owned(),
                    hostname: self.inner.hostname.clone(),
                    agent_address: None,
                    agent_ip: None,
                    agent_port: None,
                    framework_id: None,
                    host_ports: allocation.host_ports.clone(),
                    cpus: allocation.cpus,
                    mem_mib: allocation.mem_mib,
                    sandbox: Some(self.sandbox_dir(&run.task).display().to_string()),
                };
                let held = LocalRun {
                    allocation,
                    container: None,
                    kill: None,
                };
                runs.insert(run.name(), held);
                placement
            })
            .collect()
    }

    fn launch(&self, placement: Placement, task: Task) {
        let allocation = match self.runs().get(&placement.run.name()) {
            Some(held) => held.allocation.clone(),
            None => {
                tracing::warn!(run = %placement.run, "launch of a placement that is not held");
                return;
            }
        };
        let this = self.clone();
        tokio::spawn(async move {
            this.launch_and_watch(placement.run, task, allocation).await;
        });
    }

    fn abandon(&self, placement: Placement) {
        let held = self.runs().remove(&placement.run.name());
        if let Some(held) = held {
            self.release(&held.allocation);
        }
    }

    fn kill(&self, run: &RunId, grace: Duration) {
        let name = run.name();
        let container = {
            let mut runs = self.runs();
            match runs.get_mut(&name) {
                Some(held) => {
                    held.kill = Some(grace);
                    match &held.container {
                        Some(container) => Some(container.clone()),
                        // Still launching: the launch stops it once the container exists.
                        None => return,
                    }
                }
                None => None,
            }
        };
        match container {
            Some(container_id) => {
                let stop = Run {
                    run_id: name,
                    container_id,
                    sandbox: self.sandbox_dir(&run.task),
                    host_ports: Vec::new(),
                    hostname: self.inner.hostname.clone(),
                    started_at: time::OffsetDateTime::now_utc(),
                };
                self.stop_in_background(&stop, grace);
            }
            // Not followed by this backend: a leftover of an earlier instance or attempt.
            None => self.remove_in_background(name),
        }
    }

    fn acknowledge(&self, ack: AckToken) {
        let Some(held) = self.runs().remove(&ack.0) else {
            return;
        };
        // The resources come back at once (an exited container holds none); the container
        // goes in the background, named after its run so a relaunch never meets it.
        self.release(&held.allocation);
        if let Some(container) = held.container {
            self.remove_in_background(container);
        } else {
            self.remove_in_background(ack.0);
        }
    }

    async fn reconcile(&self, runs: Vec<KnownRun>) -> Result<(), BackendError> {
        self.answer(runs).await
    }

    fn log_source(&self, task: &Task) -> Option<LogSource> {
        task.sandbox_path
            .as_ref()
            .map(|path| LogSource::LocalSandbox(path.into()))
    }
}
