//! The embedded default backend: tasks run as containers on the local Docker engine, through
//! the containerizer's runtime library (`deimos_runtime::runtime`), with resources accounted against
//! the host's (or the configured) cpus, memory and host port range.
//!
//! Each task has a sandbox directory `<data_dir>/sandboxes/<task id>`, mounted at
//! `/mnt/mesos/sandbox`, holding the fetched URIs and the container's `stdout` and `stderr`.
//! Containers are named after the run (`<task id>.<attempt>`) and labelled with the task, the
//! run, the owning scheduler instance and the host ports, so that a restarted scheduler finds
//! them again ([`LocalBackend::find_runs`], used by `reconcile`) and never adopts another
//! instance's containers.
//!
//! The container operations are plain async methods (`start_run`, `wait_run`, `stop_run`,
//! `destroy_run`, `find_runs`); [`events`] drives them behind the asynchronous
//! [`crate::backend::Backend`] interface: placements are decided at once against the host's
//! capacity, each launch runs in its own task that reports `Running` and the end as status
//! events, and a run's container is removed and its resources given back when the core
//! acknowledges its end.

mod disk;
pub mod events;
mod host;
mod recover;
pub mod spec;
mod volumes;

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use deimos_runtime::fetch::{fetch_all, CacheOptions, FetchOptions};
use deimos_runtime::hostpath::AllowedPaths;
use deimos_runtime::runtime::lifecycle::{self, EnginePolicy};
use deimos_runtime::runtime::output::output_paths;
use deimos_runtime::runtime::{
    ContainerRuntime, DockerRuntime, LabelFilter, LogOptions, UsageStats, STDERR_FILE, STDOUT_FILE,
};
use deimos_runtime::spec::{labels, ContainerSpec};
use time::OffsetDateTime;

pub use host::host_capacity;

use self::events::LocalRun;
use self::recover::{classify, identify, Found};
use self::spec::{container_spec, MANAGED_BY};
use super::{
    Allocation, Backend, BackendError, Capacity, EventSink, RecoveredRun, Reservation, Resources,
    Run, RunOutcome,
};
use crate::plan::{PlanError, PlanSettings, RunPlan};
use crate::task::{Task, TaskId, Volume};

/// The default host port range handed out to tasks (inclusive).
pub const DEFAULT_PORT_RANGE: (u16, u16) = (31000, 32000);

/// The directory under the data directory holding the task sandboxes.
pub const SANDBOXES_DIR: &str = "sandboxes";

/// Settings of the local backend.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalConfig {
    /// The Docker engine (`unix:///var/run/docker.sock`, `tcp://host:2375`); `None` uses
    /// `DOCKER_HOST` or the local socket.
    pub docker_host: Option<String>,
    /// The data directory; sandboxes live in `<data_dir>/sandboxes/<task id>`.
    pub data_dir: PathBuf,
    /// CPUs tasks may use in total.
    pub cpus: f64,
    /// Memory in MiB tasks may use in total.
    pub mem_mib: f64,
    /// Host ports handed out to tasks (inclusive); [`DEFAULT_PORT_RANGE`] by default.
    pub port_range: (u16, u16),
    /// This scheduler instance, in the owner label of its containers.
    pub instance_id: String,
    /// The Docker network tasks with network `USER` join; `USER` is refused without one.
    pub user_network: Option<String>,
    /// Directories whose files tasks may fetch (`allowed_host_paths`); checked again on the
    /// file the fetch opens, symbolic links followed.
    pub fetch_local_paths: Vec<PathBuf>,
    /// Most bytes of a task's stdout or stderr file before it is rotated (`task_output_limit`);
    /// `None`: unlimited.
    pub output_limit: Option<NonZeroU64>,
    /// Launches wait while the data directory's file system has fewer free bytes than this
    /// (`data_dir_min_free`; 0: no floor).
    pub min_free_bytes: u64,
    /// The fetch cache for URIs marked `cache` (`fetch_cache_dir`, `fetch_cache_size`).
    pub fetch_cache: CacheOptions,
}

/// Runs tasks on the local Docker engine. See the [module documentation](self). Cheap to
/// clone (launches run in tasks of their own holding a clone).
#[derive(Clone)]
pub struct LocalBackend {
    inner: Arc<Inner>,
}

struct Inner {
    config: LocalConfig,
    runtime: Arc<dyn ContainerRuntime>,
    capacity: Mutex<Capacity>,
    hostname: String,
    fetch: FetchOptions,
    /// Runs holding resources (placed, launching, running, or ended and not yet
    /// acknowledged), by run name (`<task id>.<attempt>`).
    runs: Mutex<HashMap<String, LocalRun>>,
    /// Where events go once the core started the backend.
    events: OnceLock<EventSink>,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("config", &self.inner.config)
            .field("hostname", &self.inner.hostname)
            .finish_non_exhaustive()
    }
}

impl LocalBackend {
    /// Connects to the Docker engine of `config` (negotiating the API version) and prepares the
    /// sandbox directory.
    pub async fn connect(config: LocalConfig) -> Result<LocalBackend, BackendError> {
        let runtime = DockerRuntime::connect(config.docker_host.as_deref())
            .await
            .map_err(|error| BackendError::query("connecting", error))?;
        let sandboxes = config.data_dir.join(SANDBOXES_DIR);
        tokio::fs::create_dir_all(&sandboxes)
            .await
            .map_err(|source| BackendError::DataDir {
                path: sandboxes,
                source,
            })?;
        Ok(LocalBackend::with_runtime(config, Arc::new(runtime)))
    }

    /// A backend over a given runtime (a fake one in tests). The sandbox directory is created
    /// when the first task starts.
    pub fn with_runtime(config: LocalConfig, runtime: Arc<dyn ContainerRuntime>) -> LocalBackend {
        let fetch = FetchOptions {
            local_files: AllowedPaths::new(config.fetch_local_paths.clone(), "allowed_host_paths"),
            cache: Some(config.fetch_cache.clone()),
            ..FetchOptions::default()
        };
        LocalBackend {
            inner: Arc::new(Inner {
                capacity: Mutex::new(Capacity::new(
                    config.cpus,
                    config.mem_mib,
                    config.port_range,
                )),
                config,
                runtime,
                hostname: host::hostname(),
                fetch,
                runs: Mutex::new(HashMap::new()),
                events: OnceLock::new(),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &LocalConfig {
        &self.inner.config
    }

    fn capacity(&self) -> MutexGuard<'_, Capacity> {
        // The accounting stays consistent even if a holder panicked: every update is a
        // single assignment sequence without awaits.
        self.inner
            .capacity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn runs(&self) -> MutexGuard<'_, HashMap<String, LocalRun>> {
        self.inner
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn runtime(&self) -> &dyn ContainerRuntime {
        self.inner.runtime.as_ref()
    }

    async fn prepare_sandbox(&self, task: &Task, sandbox: &Path) -> Result<(), BackendError> {
        tokio::fs::create_dir_all(sandbox)
            .await
            .map_err(|source| BackendError::Sandbox {
                target: format!("task {}", task.id),
                action: "creating the sandbox",
                path: sandbox.to_owned(),
                source,
            })?;
        // A new attempt starts with empty output files (the previous attempt's output would
        // otherwise be shown as this one's).
        reset_output_files(&format!("task {}", task.id), sandbox).await
    }

    async fn fetch_uris(&self, plan: &RunPlan, sandbox: &Path) -> Result<(), BackendError> {
        if plan.fetch.is_empty() {
            return Ok(());
        }
        // The task's user keeps its cached files apart from other users'.
        let options = FetchOptions {
            user: plan.user.clone(),
            ..self.inner.fetch.clone()
        };
        fetch_all(&spec::fetch_uris(plan), sandbox, &options)
            .await
            .map(|_| ())
            .map_err(|source| BackendError::Fetch {
                task: plan.task_id.clone(),
                source,
            })
    }

    /// Creates and starts the container. A container already named after the run is a
    /// leftover of a launch interrupted by a crash (the attempt never reported running):
    /// it is removed and the launch repeated once.
    async fn launch(&self, run: &str, spec: &ContainerSpec) -> Result<String, BackendError> {
        let launched = lifecycle::launch_replacing_leftover(self.runtime(), spec)
            .await
            .map_err(|error| BackendError::launch(run, error))?;
        if launched.replaced_leftover.is_some() {
            tracing::warn!(run, "removed a leftover container of an interrupted launch");
        }
        Ok(launched.id)
    }

    /// Removes what is left of earlier attempts of `task` before `run` launches: a launch cut
    /// short by an unreachable engine may have left a container, which, named after its own
    /// run, [`Self::launch`]'s name-conflict rule does not catch (each launch has its own run
    /// id). Containers of ended runs are removed by the engine already: usually none is found.
    async fn remove_earlier_attempts(&self, task: &TaskId, run: &str) -> Result<(), BackendError> {
        let filters = [
            LabelFilter::equals(labels::MANAGED_BY, MANAGED_BY),
            LabelFilter::equals(labels::OWNER, self.inner.config.instance_id.as_str()),
            LabelFilter::equals(labels::TASK_ID, task.as_str()),
        ];
        let listed = self
            .runtime()
            .list(&filters)
            .await
            .map_err(|error| BackendError::launch(run, error))?;
        for container in listed {
            if container
                .labels
                .get(labels::CONTAINER_ID)
                .map(String::as_str)
                == Some(run)
            {
                continue;
            }
            tracing::warn!(
                run,
                container = %container.id,
                "removing a leftover container of an earlier attempt"
            );
            // The core may be removing it too (an acknowledged end): gone is as good.
            match self.runtime().remove(&container.id).await {
                Err(error) if !error.is_no_such_container() => {
                    return Err(BackendError::launch(run, error));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The run found in one listed container, or `None` when there is nothing to report.
    async fn recover_one(
        &self,
        container: &str,
        container_labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<RecoveredRun>, BackendError> {
        let identity = match identify(container_labels) {
            Ok(identity) => identity,
            Err(reason) => {
                tracing::warn!(container, "ignoring a container of this instance: {reason}");
                return Ok(None);
            }
        };
        let info = match self.runtime().inspect(container).await {
            Ok(info) => info,
            Err(error) if error.is_no_such_container() => return Ok(None),
            Err(error) => {
                return Err(BackendError::container(
                    "inspect",
                    &identity.run_id,
                    container,
                    error,
                ))
            }
        };
        let state = match classify(&info) {
            Found::Report(state) => state,
            Found::Ignore => return Ok(None),
            Found::RemoveUnstarted => {
                tracing::info!(run = %identity.run_id, "removing a container that never started");
                self.runtime().remove(container).await.map_err(|error| {
                    BackendError::container("destroy", &identity.run_id, container, error)
                })?;
                return Ok(None);
            }
        };
        let run = Run {
            run_id: identity.run_id,
            container_id: info.id,
            sandbox: self.sandbox_dir(&identity.task_id),
            host_ports: identity.host_ports,
            hostname: self.inner.hostname.clone(),
            started_at: info.started_at.unwrap_or_else(OffsetDateTime::now_utc),
        };
        Ok(Some(RecoveredRun {
            task_id: identity.task_id,
            attempt: identity.attempt,
            run,
            state,
        }))
    }
}

/// Replaces the output files of a sandbox (`stdout`, `stderr`, their rotated files and
/// counters) by empty `stdout` and `stderr` files. They are removed and created anew rather
/// than truncated: the container can plant a symbolic link in its sandbox, and truncating
/// through it would empty a host file; a follower also sees the new file as a new file.
async fn reset_output_files(target: &str, sandbox: &Path) -> Result<(), BackendError> {
    let failed = |action: &'static str, path: &Path| {
        let (target, path) = (target.to_owned(), path.to_owned());
        move |source| BackendError::Sandbox {
            target,
            action,
            path,
            source,
        }
    };
    for path in output_paths(sandbox) {
        match tokio::fs::remove_file(&path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(failed("emptying", &path)(error));
            }
            _ => {}
        }
    }
    for name in [STDOUT_FILE, STDERR_FILE] {
        let path = sandbox.join(name);
        tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(failed("emptying", &path))?;
    }
    Ok(())
}

/// Whether nothing on this host listens on `port` (TCP) or holds it (UDP): probed by binding
/// it on all interfaces for a moment.
fn host_port_is_free(port: u16) -> bool {
    let any = std::net::Ipv4Addr::UNSPECIFIED;
    std::net::TcpListener::bind((any, port)).is_ok()
        && std::net::UdpSocket::bind((any, port)).is_ok()
}

impl LocalBackend {
    /// Reserves `needs` if they are free now (skipping host ports something else on this
    /// host holds).
    pub fn place(&self, needs: &Resources) -> Reservation {
        // A port of the range may be held by something else on this host (another service,
        // another eremetic instance): Docker would refuse to publish it at start.
        self.capacity().place_with(needs, host_port_is_free)
    }

    /// Marks the resources of a run found again after a restart as used.
    pub fn adopt(&self, allocation: &Allocation) {
        self.capacity().adopt(allocation);
    }

    /// Gives back the resources of a run that ended or never started; release each
    /// allocation exactly once.
    pub fn release(&self, allocation: &Allocation) {
        self.capacity().release(allocation);
    }

    /// Starts attempt `attempt` of `task` with the reserved `allocation`: prepares the
    /// sandbox, fetches the task's URIs into it, creates and starts the container (pulling
    /// the image when it is missing).
    pub async fn start_run(
        &self,
        task: &Task,
        attempt: u32,
        allocation: &Allocation,
    ) -> Result<Run, BackendError> {
        self.admissible(&task.request)
            .map_err(|reason| BackendError::Inadmissible {
                task: task.id.clone(),
                reason,
            })?;
        if allocation.host_ports.len() != task.request.ports.len() {
            return Err(BackendError::AllocationMismatch {
                task: task.id.clone(),
                reason: format!(
                    "{} ports requested, but the allocation holds {} host ports",
                    task.request.ports.len(),
                    allocation.host_ports.len()
                ),
            });
        }
        let settings = PlanSettings {
            instance_id: &self.inner.config.instance_id,
            user_network: self.inner.config.user_network.as_deref(),
        };
        let mut plan = RunPlan::build(task, attempt, allocation, settings).map_err(|error| {
            let (task, reason) = (task.id.clone(), error.reason());
            match error {
                PlanError::PortCount { .. } => BackendError::AllocationMismatch { task, reason },
                PlanError::NoUserNetwork { .. } => BackendError::Inadmissible { task, reason },
                PlanError::Volume { .. } => BackendError::SandboxVolume { task, reason },
            }
        })?;
        let sandbox = self.sandbox_dir(&task.id);
        self.prepare_sandbox(task, &sandbox).await?;
        self.fetch_uris(&plan, &sandbox).await?;
        // Relative host paths are resolved after the fetch, which may have put them there.
        if plan.volumes.iter().any(Volume::in_sandbox) {
            plan.volumes =
                volumes::resolve_in_sandbox(&plan.volumes, &sandbox).map_err(|reason| {
                    BackendError::SandboxVolume {
                        task: task.id.clone(),
                        reason,
                    }
                })?;
        }
        let spec = container_spec(&plan, &sandbox);
        let run = plan.run_id;
        if attempt > 0 {
            self.remove_earlier_attempts(&task.id, &run).await?;
        }
        let container_id = self.launch(&run, &spec).await?;
        Ok(Run {
            run_id: run,
            container_id,
            sandbox,
            host_ports: allocation.host_ports.clone(),
            hostname: self.inner.hostname.clone(),
            started_at: OffsetDateTime::now_utc(),
        })
    }

    /// Waits for the run to end while saving its output into the sandbox; returns once the
    /// container has stopped and its output is saved (also for a run found again).
    ///
    /// Saves the output by replaying the container's whole log into emptied `stdout` and
    /// `stderr` files while waiting. Replaying from the start rather than resuming at
    /// `started_at` or at the old files' end makes an adopted run's files exact: Docker's
    /// `since` has whole-second resolution, so resuming would repeat or drop output.
    pub async fn wait_run(&self, run: &Run) -> Result<RunOutcome, BackendError> {
        reset_output_files(&format!("run {}", run.run_id), &run.sandbox).await?;
        let container = run.container_id.as_str();
        let options = LogOptions {
            limit: self.inner.config.output_limit,
            ..LogOptions::default()
        };
        // Rides out a Docker restart for a while; a run whose engine stays away fails the
        // wait, and the engine decides what becomes of the task.
        let end = lifecycle::run_to_exit(
            self.runtime(),
            container,
            &run.sandbox,
            options,
            &EnginePolicy::default(),
        )
        .await;
        let status = end
            .exit
            .map_err(|error| BackendError::container("wait", &run.run_id, container, error))?;
        if let Err(error) = end.output {
            // The outcome matters more than the output: report it anyway.
            tracing::warn!(run = %run.run_id, "saving the output of the run failed: {error}");
        }
        Ok(RunOutcome::from(status))
    }

    /// Asks the run to stop: SIGTERM, then SIGKILL after `grace`; returns once it stopped.
    pub async fn stop_run(&self, run: &Run, grace: Duration) -> Result<(), BackendError> {
        match self.runtime().stop(&run.container_id, grace).await {
            Ok(()) => Ok(()),
            // Nothing left to stop; `wait` reports the run as gone.
            Err(error) if error.is_no_such_container() => Ok(()),
            Err(error) => Err(BackendError::container(
                "stop",
                &run.run_id,
                &run.container_id,
                error,
            )),
        }
    }

    /// Removes the run's container (the sandbox stays).
    pub async fn destroy_run(&self, run: &Run) -> Result<(), BackendError> {
        self.runtime()
            .remove(&run.container_id)
            .await
            .map_err(|error| {
                BackendError::container("destroy", &run.run_id, &run.container_id, error)
            })
    }

    /// The runs of this instance that still exist (running or exited), found by their
    /// labels.
    pub async fn find_runs(&self) -> Result<Vec<RecoveredRun>, BackendError> {
        let filters = [
            LabelFilter::equals(labels::MANAGED_BY, MANAGED_BY),
            LabelFilter::equals(labels::OWNER, self.inner.config.instance_id.as_str()),
        ];
        let listed = self.runtime().list(&filters).await.map_err(|error| {
            BackendError::query("listing the containers of this instance", error)
        })?;
        let mut recovered = Vec::new();
        for container in listed {
            if let Some(run) = self.recover_one(&container.id, &container.labels).await? {
                recovered.push(run);
            }
        }
        Ok(recovered)
    }

    /// Resource usage of the container `run_id` while it exists; `None` when it is gone or
    /// stopped.
    pub async fn usage_of(&self, run_id: &str) -> Result<Option<UsageStats>, BackendError> {
        let error = match self.runtime().stats(run_id).await {
            Ok(stats) => return Ok(Some(stats)),
            Err(error) if error.is_no_such_container() => return Ok(None),
            Err(error) => error,
        };
        // The container may have stopped (or been removed) during the call: then there is
        // simply no usage any more, which is not a failure.
        match self.runtime().inspect(run_id).await {
            Ok(info) if !info.state.is_active() => Ok(None),
            Err(gone) if gone.is_no_such_container() => Ok(None),
            _ => Err(BackendError::container("usage", run_id, run_id, error)),
        }
    }

    /// The task's sandbox directory.
    pub fn sandbox_dir(&self, task: &TaskId) -> PathBuf {
        // Task ids contain no `/` and are never `.` or `..`, so this stays inside.
        self.inner
            .config
            .data_dir
            .join(SANDBOXES_DIR)
            .join(task.as_str())
    }
}

#[cfg(test)]
mod tests;
