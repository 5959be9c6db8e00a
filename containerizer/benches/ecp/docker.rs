//! The direct Engine API side of the launch comparison: a long-lived bollard client that
//! creates and starts exactly the container `deimos launch` would create.

use bollard::query_parameters::RemoveContainerOptions;
use bollard::{Docker, API_DEFAULT_VERSION};
use tokio::runtime::Runtime;

use crate::error::{BenchError, Result};

/// How long one Engine API request may take.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A Docker client with its own single-threaded async runtime.
pub(crate) struct DirectDocker {
    runtime: Runtime,
    docker: Docker,
}

impl DirectDocker {
    /// Connects (to `$DOCKER_HOST` when it is a unix socket, else /var/run/docker.sock) and
    /// negotiates the API version once, outside any timed region; checks the test image.
    pub(crate) fn connect(image: &str) -> Result<DirectDocker> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BenchError::io("start the benchmark's async runtime"))?;
        let socket = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| host.starts_with("unix://"))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        let docker = runtime.block_on(async {
            let docker =
                Docker::connect_with_unix(&socket, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
                    .map_err(BenchError::docker(format!("connect to {socket}")))?;
            let docker = docker
                .negotiate_version()
                .await
                .map_err(BenchError::docker(format!(
                    "negotiate the API version with {socket}"
                )))?;
            docker
                .inspect_image(image)
                .await
                .map_err(BenchError::docker(format!(
                    "inspect the test image {image}"
                )))?;
            Ok::<_, BenchError>(docker)
        })?;
        Ok(DirectDocker { runtime, docker })
    }

    /// Creates and starts a container from `request` under `name`; returns its id. This
    /// is the timed part of the direct side.
    pub(crate) fn create_and_start(
        &self,
        name: &str,
        request: deimos::runtime::translate::CreateRequest,
    ) -> Result<String> {
        let mut options = request.options;
        options.name = Some(name.to_owned());
        self.runtime.block_on(async {
            let created = self
                .docker
                .create_container(Some(options), request.body)
                .await
                .map_err(BenchError::docker(format!("create container {name}")))?;
            self.docker
                .start_container(&created.id, None)
                .await
                .map_err(BenchError::docker(format!("start container {name}")))?;
            Ok(created.id)
        })
    }

    /// Removes a container by id or name, killing it first; a missing one is fine.
    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..RemoveContainerOptions::default()
        };
        let removed = self
            .runtime
            .block_on(self.docker.remove_container(id, Some(options)));
        match removed {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(BenchError::docker(format!("remove container {id}"))(error)),
        }
    }
}
