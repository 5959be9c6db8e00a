//! Docker Engine API driver (bollard): the only code that talks to Docker.
//!
//! [`ContainerRuntime`] is the interface the rest of the stack (containerizer subcommands, the
//! scheduler's local backend, the executor) depends on, as `Arc<dyn ContainerRuntime>`;
//! [`DockerRuntime`] implements it against a Docker Engine, and tests elsewhere can substitute
//! a fake. A [`ContainerSpec`] becomes a Docker request through the pure
//! [`translate::create_request`].
//!
//! Secrets: environment values and registry passwords never appear in log lines or error
//! messages; only variable names and user names do.

mod auth;
mod convert;
mod docker;
mod error;
pub mod lifecycle;
pub(crate) mod logs;
pub mod output;
pub mod translate;
mod types;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;

pub use auth::{load_registry_auth, parse_docker_config, registry_of_image};
pub use convert::exit_status;
pub use docker::{DockerRuntime, DEFAULT_DOCKER_HOST};
pub use error::RuntimeError;
pub use logs::{LogOptions, StreamBytes};
pub use output::{STDERR_FILE, STDOUT_FILE};
pub use types::{
    ContainerInfo, ContainerState, ExitStatus, ExposedPort, ImageInfo, ImageSource, LabelFilter,
    ListedContainer, LogTotals, UsageStats,
};

use crate::spec::{ContainerSpec, Limits, RegistryAuth};

/// The container operations the stack needs, object-safe so that it can be shared as
/// `Arc<dyn ContainerRuntime>`.
///
/// Container arguments (`id`) accept a Docker id or a container name. Operations on a missing
/// container fail with [`RuntimeError::NoSuchContainer`], except [`ContainerRuntime::remove`],
/// for which a missing container is success.
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Makes sure `image` is present: pulls it when it is missing or when `force_pull` is set,
    /// with `auth` when given.
    async fn ensure_image(
        &self,
        image: &str,
        force_pull: bool,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageSource, RuntimeError>;

    /// Inspects a local image (for its exposed ports); [`RuntimeError::ImageNotFound`] when it
    /// is not present.
    async fn inspect_image(&self, image: &str) -> Result<ImageInfo, RuntimeError>;

    /// Creates a container (without pulling) and returns its Docker id;
    /// [`RuntimeError::ImageNotFound`] when the image is not present.
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;

    /// Starts a created container. Starting a running container is success.
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;

    /// Waits until the container is not running and reports how it ended. A container that
    /// was created but never started counts as not running: start it first.
    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError>;

    /// Sends SIGTERM (or the image's stop signal), then SIGKILL after `grace`; returns once the
    /// container has stopped. Stopping a stopped container is success.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;

    /// Sends `signal` to the container's main process; [`RuntimeError::NotRunning`] when it is
    /// not running.
    async fn kill(&self, id: &str, signal: Signal) -> Result<(), RuntimeError>;

    /// Removes the container, killing it if needed, with its anonymous volumes. Removing a
    /// container that does not exist (or is already being removed) is success.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;

    /// Inspects a container.
    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError>;

    /// The container's `docker inspect` document (one JSON object, the engine's
    /// `GET /containers/{id}/json`), as a Mesos Docker executor sends it in `TaskStatus.data`.
    ///
    /// The default builds the document from [`ContainerRuntime::inspect`], with the fields
    /// that carries (`Id`, `Name`, `Config.Image`, `Config.Labels`, `State`); an engine-backed
    /// runtime gives the engine's own document.
    async fn inspect_json(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        Ok(convert::inspect_document(&self.inspect(id).await?))
    }

    /// One-shot resource usage of a container (for usage reports when cgroups cannot be read).
    async fn stats(&self, id: &str) -> Result<UsageStats, RuntimeError>;

    /// Changes the CPU and memory limits of a container; limits left `None` are kept.
    async fn update_limits(&self, id: &str, limits: &Limits) -> Result<(), RuntimeError>;

    /// Lists the containers, stopped ones included, that match every label filter (for finding
    /// containers again after a crash by the labels of [`crate::spec::labels`]).
    async fn list(&self, filters: &[LabelFilter]) -> Result<Vec<ListedContainer>, RuntimeError>;

    /// Appends the container's stdout and stderr to the files [`STDOUT_FILE`] and
    /// [`STDERR_FILE`] in `dir` as output is produced, from `options.since` (whole seconds; to
    /// resume after a restart) or from the beginning, rotating each file at `options.limit`
    /// (see [`output`]); returns when the container's output ends, that is when it has
    /// stopped. Start the container first: for a container that is not running the engine
    /// sends the output so far and ends the stream at once. Non-TTY containers only keep the
    /// two streams apart.
    async fn stream_logs(
        &self,
        id: &str,
        dir: &Path,
        options: LogOptions,
    ) -> Result<LogTotals, RuntimeError>;

    /// Creates and starts a container with the fewest round trips: the image is pulled only
    /// when the creation reports it missing (or first, when `spec.force_pull` is set), so a
    /// launch of a present image costs exactly a create and a start. A container that fails
    /// to start is removed. Returns the Docker id.
    async fn launch(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let auth = spec.registry_auth.as_ref();
        if spec.force_pull {
            self.ensure_image(&spec.image, true, auth).await?;
        }
        let id = match self.create(spec).await {
            Err(RuntimeError::ImageNotFound { .. }) if !spec.force_pull => {
                self.ensure_image(&spec.image, true, auth).await?;
                self.create(spec).await?
            }
            created => created?,
        };
        if let Err(error) = self.start(&id).await {
            if let Err(cleanup) = self.remove(&id).await {
                log::warn!("removing container {id} that failed to start: {cleanup}");
            }
            return Err(error);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod launch_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod translate_tests;
