//! [`DockerRuntime`]: the [`ContainerRuntime`] backed by the Docker Engine API (bollard).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    CreateImageOptions, EventsOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StatsOptions, StopContainerOptions,
};
use bollard::{ClientVersion, Docker};
use futures::StreamExt;
use nix::sys::signal::Signal;

use super::auth::docker_credentials;
use super::convert;
use super::error::{describe, http_status, RuntimeError};
use super::logs::{write_log_stream_with, LogOptions};
use super::translate::{create_request, pull_reference, update_request};
use super::types::{
    ContainerInfo, ExitStatus, ImageInfo, ImageSource, LabelFilter, ListedContainer, LogTotals,
    UsageStats,
};
use super::ContainerRuntime;
use crate::spec::{ContainerSpec, Limits, RegistryAuth};

/// Timeout for receiving the response headers of an Engine API call. Streaming calls (wait,
/// logs, pulls) send their headers at once, so this bounds only unresponsive engines.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long an exit that looks like an OOM kill waits for the engine's OOM flag.
const OOM_REPORT_SETTLE: Duration = Duration::from_secs(1);

/// How often the flag is looked at meanwhile.
const OOM_REPORT_POLL: Duration = Duration::from_millis(50);

/// The reasons earlier endpoints were passed over, for the log line naming the chosen one.
fn passed_over(refused: &[String]) -> String {
    if refused.is_empty() {
        String::new()
    } else {
        format!("; passed over: {}", refused.join("; "))
    }
}

/// The engine address used when none is configured and `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// A connection to one Docker Engine.
///
/// Cloning is cheap: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    host: String,
}

impl DockerRuntime {
    /// Connects to the engine at `host` (`unix:///path`, `tcp://host:port`, `http://host:port`
    /// or a bare socket path), or when `None` to `DOCKER_HOST` or else the local socket
    /// `/var/run/docker.sock`, and negotiates the API version (one `GET /version` round trip):
    /// bollard's newer default is lowered to the engine's, so that 20.10 engines (API 1.41) and
    /// current ones both work.
    pub async fn connect(host: Option<&str>) -> Result<Self, RuntimeError> {
        let runtime = Self::connect_lazily(host, bollard::API_DEFAULT_VERSION)?;
        let docker =
            runtime
                .docker
                .negotiate_version()
                .await
                .map_err(|error| RuntimeError::Connect {
                    host: runtime.host.clone(),
                    reason: describe(&error),
                })?;
        log::debug!(
            "connected to Docker at {} (API {})",
            runtime.host,
            docker.client_version()
        );
        Ok(Self {
            docker,
            host: runtime.host,
        })
    }

    /// Connects to the first of `hosts` that answers (in order), logging which one was chosen
    /// and why each one before it was not; an empty list means [`DockerRuntime::connect`]
    /// with `None`. Deimos passed such a list to the docker CLI as repeated `-H`.
    pub async fn connect_first(hosts: &[String]) -> Result<Self, RuntimeError> {
        if hosts.is_empty() {
            return Self::connect(None).await;
        }
        let mut refused: Vec<String> = Vec::new();
        for (index, host) in hosts.iter().enumerate() {
            match Self::connect(Some(host)).await {
                Ok(runtime) => {
                    if hosts.len() > 1 {
                        log::info!(
                            "using Docker at {host} (endpoint {} of {}){}",
                            index + 1,
                            hosts.len(),
                            passed_over(&refused)
                        );
                    }
                    return Ok(runtime);
                }
                Err(error) => {
                    log::warn!("Docker endpoint {host} does not answer: {error}");
                    refused.push(error.to_string());
                }
            }
        }
        Err(RuntimeError::Connect {
            host: hosts.join(", "),
            reason: format!("no endpoint answers: {}", refused.join("; ")),
        })
    }

    /// Like [`DockerRuntime::connect`], but uses the given API version (`1.41`) instead of
    /// asking the engine, saving a round trip for short-lived processes. Nothing is sent to
    /// the engine until the first operation.
    pub fn connect_with_api_version(
        host: Option<&str>,
        api_version: &str,
    ) -> Result<Self, RuntimeError> {
        let version = parse_api_version(api_version).ok_or_else(|| RuntimeError::Connect {
            host: resolve_host(host),
            reason: format!("API version {api_version:?} is not <major>.<minor>"),
        })?;
        Self::connect_lazily(host, &version)
    }

    /// The engine this runtime talks to (`unix:///var/run/docker.sock`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The Engine API version in use (`1.41`).
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    fn connect_lazily(host: Option<&str>, version: &ClientVersion) -> Result<Self, RuntimeError> {
        let host = resolve_host(host);
        let connected = if host.starts_with("unix://") {
            Docker::connect_with_unix(&host, REQUEST_TIMEOUT.as_secs(), version)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(&host, REQUEST_TIMEOUT.as_secs(), version)
        } else {
            return Err(RuntimeError::Connect {
                host,
                reason: "unsupported address: use unix:///<socket>, tcp://<host>:<port> or \
                         http://<host>:<port>"
                    .to_owned(),
            });
        };
        match connected {
            Ok(docker) => Ok(Self { docker, host }),
            Err(error) => Err(RuntimeError::Connect {
                host,
                reason: describe(&error),
            }),
        }
    }

    async fn pull(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<(), RuntimeError> {
        let (from_image, tag) = pull_reference(image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag,
            ..Default::default()
        };
        match &auth {
            Some(auth) => log::info!("pulling image {image} as user {}", auth.username),
            None => log::info!("pulling image {image}"),
        }
        let mut progress =
            self.docker
                .create_image(Some(options), None, auth.map(docker_credentials));
        while let Some(step) = progress.next().await {
            step.map_err(|error| pull_error(image, &error))?;
        }
        log::info!("pulled image {image}");
        Ok(())
    }

    /// Waits for the container to stop and returns the exit code the wait call reports.
    /// Inspects a container that has exited, giving the engine time to record an OOM kill.
    ///
    /// containerd reports the OOM kill and the exit as two events from two sources; under load
    /// the engine can see the exit first, and `State.OOMKilled` becomes true only when the OOM
    /// event follows. So for a memory-limited container that ended by SIGKILL without the
    /// flag, the engine's events decide: a SIGKILL sent through the API (a stop or kill) is
    /// no OOM kill, an `oom` event is one; with neither (the events were evicted from the
    /// engine's short buffer, or the OOM event is still on its way) the container is inspected
    /// again for up to [`OOM_REPORT_SETTLE`].
    async fn inspect_exit(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let mut info = self.inspect(id).await?;
        if !convert::might_await_oom_report(&info) {
            return Ok(info);
        }
        match self.kill_evidence(id, &info).await {
            convert::KillEvidence::ThroughTheApi => return Ok(info),
            convert::KillEvidence::OutOfMemory => {
                info.oom_killed = true;
                return Ok(info);
            }
            convert::KillEvidence::Unknown => {}
        }
        let deadline = tokio::time::Instant::now() + OOM_REPORT_SETTLE;
        while convert::might_await_oom_report(&info) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(OOM_REPORT_POLL).await;
            info = self.inspect(id).await?;
        }
        Ok(info)
    }

    /// What the engine's `kill` and `oom` events of the container's last run say about its
    /// SIGKILL. An engine that cannot list them gives no evidence.
    async fn kill_evidence(&self, id: &str, info: &ContainerInfo) -> convert::KillEvidence {
        let Some(started) = info.started_at else {
            return convert::KillEvidence::Unknown;
        };
        let now = time::OffsetDateTime::now_utc();
        let options = EventsOptions {
            since: Some(started.unix_timestamp().to_string()),
            // `until` in the past or present: the engine sends what it has and ends the stream.
            until: Some(format!("{}.{:09}", now.unix_timestamp(), now.nanosecond())),
            filters: Some(HashMap::from([
                ("type".to_owned(), vec!["container".to_owned()]),
                ("container".to_owned(), vec![id.to_owned()]),
                (
                    "event".to_owned(),
                    vec!["kill".to_owned(), "oom".to_owned()],
                ),
            ])),
        };
        let mut events = self.docker.events(Some(options));
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => seen.push(event),
                Err(error) => {
                    log::debug!("listing the events of container {id}: {}", describe(&error));
                    return convert::KillEvidence::Unknown;
                }
            }
        }
        convert::kill_evidence(&seen)
    }

    async fn wait_for_exit_code(&self, id: &str) -> Result<i64, RuntimeError> {
        let mut waiting = self.docker.wait_container(id, None);
        match waiting.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard turns every non-zero exit into this error; a message means the wait
            // itself had trouble (e.g. a failed auto-removal), which does not change the code.
            Some(Err(BollardError::DockerContainerWaitError { error, code })) => {
                if !error.is_empty() {
                    log::warn!("waiting for container {id}: {error}");
                }
                Ok(code)
            }
            Some(Err(error)) => Err(RuntimeError::container("wait", id, error)),
            None => Err(RuntimeError::Docker {
                operation: "wait",
                target: id.to_owned(),
                reason: "the engine closed the wait response without a status".to_owned(),
            }),
        }
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn ensure_image(
        &self,
        image: &str,
        force_pull: bool,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageSource, RuntimeError> {
        if !force_pull {
            match self.docker.inspect_image(image).await {
                Ok(_) => return Ok(ImageSource::Local),
                Err(error) if http_status(&error) == Some(404) => {}
                Err(error) => return Err(image_error("image inspect", image, &error)),
            }
        }
        self.pull(image, auth).await?;
        Ok(ImageSource::Pulled)
    }

    async fn inspect_image(&self, image: &str) -> Result<ImageInfo, RuntimeError> {
        let inspected = self.docker.inspect_image(image).await.map_err(|error| {
            if http_status(&error) == Some(404) {
                RuntimeError::ImageNotFound {
                    image: image.to_owned(),
                    reason: describe(&error),
                }
            } else {
                image_error("image inspect", image, &error)
            }
        })?;
        let keys = inspected
            .config
            .and_then(|config| config.exposed_ports)
            .unwrap_or_default();
        Ok(ImageInfo {
            id: inspected.id.unwrap_or_default(),
            exposed_ports: convert::exposed_ports(&keys),
        })
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let request = create_request(spec)?;
        let created = self
            .docker
            .create_container(Some(request.options), request.body)
            .await
            .map_err(|error| create_error(spec, &error))?;
        for warning in &created.warnings {
            log::warn!(
                "creating container {} from {}: {warning}",
                created.id,
                spec.image
            );
        }
        log::debug!(
            "created container {} ({}) from {}",
            created.id,
            spec.name.as_deref().unwrap_or("unnamed"),
            spec.image
        );
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|error| RuntimeError::container("start", id, error))
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        let code = self.wait_for_exit_code(id).await?;
        // The wait response lacks the OOM flag; the container may already have been removed
        // by someone else, in which case the wait's code is all there is.
        match self.inspect_exit(id).await {
            Ok(info) => Ok(convert::exit_status(
                info.exit_code.unwrap_or(code),
                info.oom_killed,
            )),
            Err(RuntimeError::NoSuchContainer { .. }) => Ok(convert::exit_status(code, false)),
            Err(error) => Err(error),
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let seconds = i32::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0))
            .unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(seconds),
            signal: None,
        };
        // The engine answers only once the container has stopped, up to the grace period.
        let patient = self
            .docker
            .clone()
            .with_timeout(REQUEST_TIMEOUT.saturating_add(grace));
        patient
            .stop_container(id, Some(options))
            .await
            .map_err(|error| RuntimeError::container("stop", id, error))
    }

    async fn kill(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        let options = KillContainerOptions {
            signal: signal.as_str().to_owned(),
        };
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(|error| {
                if http_status(&error) == Some(409) {
                    RuntimeError::NotRunning { id: id.to_owned() }
                } else {
                    RuntimeError::container("kill", id, error)
                }
            })
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if http_status(&error) == Some(404) => Ok(()),
            // 409 here means another removal of the same container is already in progress.
            Err(error) if http_status(&error) == Some(409) => {
                log::debug!("container {id}: {}", describe(&error));
                Ok(())
            }
            Err(error) => Err(RuntimeError::container("remove", id, error)),
        }
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let response = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|error| RuntimeError::container("inspect", id, error))?;
        Ok(convert::container_info(id, response))
    }

    async fn inspect_json(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let response = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|error| RuntimeError::container("inspect", id, error))?;
        // The typed response serialises back under the engine's own keys, without the
        // fields it did not send.
        serde_json::to_value(response).map_err(|error| RuntimeError::Docker {
            operation: "inspect",
            target: id.to_owned(),
            reason: format!("the inspect document cannot be rendered as JSON: {error}"),
        })
    }

    async fn stats(&self, id: &str) -> Result<UsageStats, RuntimeError> {
        let options = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stats = self.docker.stats(id, Some(options));
        match stats.next().await {
            Some(Ok(response)) => Ok(convert::usage_stats(&response)),
            Some(Err(error)) => Err(RuntimeError::container("stats", id, error)),
            None => Err(RuntimeError::Docker {
                operation: "stats",
                target: id.to_owned(),
                reason: "the engine sent no statistics".to_owned(),
            }),
        }
    }

    async fn update_limits(&self, id: &str, limits: &Limits) -> Result<(), RuntimeError> {
        let body = update_request(limits)?;
        self.docker
            .update_container(id, body)
            .await
            .map_err(|error| RuntimeError::container("update", id, error))
    }

    async fn list(&self, filters: &[LabelFilter]) -> Result<Vec<ListedContainer>, RuntimeError> {
        let labels: Vec<String> = filters
            .iter()
            .map(|filter| match &filter.value {
                Some(value) => format!("{}={value}", filter.key),
                None => filter.key.clone(),
            })
            .collect();
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), labels.clone())])),
            ..Default::default()
        };
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| RuntimeError::Docker {
                operation: "list",
                target: format!("containers labelled {}", labels.join(", ")),
                reason: describe(&error),
            })?;
        Ok(containers
            .into_iter()
            .map(convert::listed_container)
            .collect())
    }

    async fn stream_logs(
        &self,
        id: &str,
        dir: &Path,
        options: LogOptions,
    ) -> Result<LogTotals, RuntimeError> {
        let since = match options.since {
            None => 0,
            Some(time) => {
                i32::try_from(time.unix_timestamp()).map_err(|_| RuntimeError::Docker {
                    operation: "logs",
                    target: id.to_owned(),
                    reason: format!("resume time {time} is outside the range the API accepts"),
                })?
            }
        };
        let logs_options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            since,
            ..Default::default()
        };
        let stream = self.docker.logs(id, Some(logs_options));
        write_log_stream_with(id, dir, options, stream).await
    }
}

/// The engine address to use: the configured one, else `DOCKER_HOST`, else the local socket.
/// A bare absolute path is a Unix socket.
fn resolve_host(host: Option<&str>) -> String {
    let host = match host {
        Some(host) => host.to_owned(),
        None => std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned()),
    };
    if host.starts_with('/') {
        format!("unix://{host}")
    } else {
        host
    }
}

fn parse_api_version(text: &str) -> Option<ClientVersion> {
    let (major, minor) = text.trim().trim_start_matches('v').split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

fn image_error(operation: &'static str, image: &str, error: &BollardError) -> RuntimeError {
    RuntimeError::Docker {
        operation,
        target: image.to_owned(),
        reason: describe(error),
    }
}

/// A failed pull: the registry or engine saying the image does not exist is
/// [`RuntimeError::ImageNotFound`], anything else (network, credentials) a
/// [`RuntimeError::PullFailed`].
fn pull_error(image: &str, error: &BollardError) -> RuntimeError {
    let reason = describe(error);
    let lowered = reason.to_ascii_lowercase();
    let absent = http_status(error) == Some(404)
        || ["manifest unknown", "not found", "does not exist"]
            .iter()
            .any(|phrase| lowered.contains(phrase));
    if absent {
        RuntimeError::ImageNotFound {
            image: image.to_owned(),
            reason,
        }
    } else {
        RuntimeError::PullFailed {
            image: image.to_owned(),
            reason,
        }
    }
}

fn create_error(spec: &ContainerSpec, error: &BollardError) -> RuntimeError {
    let reason = describe(error);
    match (http_status(error), &spec.name) {
        (Some(404), _) if reason.contains("No such image") => RuntimeError::ImageNotFound {
            image: spec.image.clone(),
            reason,
        },
        (Some(409), Some(name)) => RuntimeError::NameConflict {
            name: name.clone(),
            reason,
        },
        _ => RuntimeError::CreateFailed {
            image: spec.image.clone(),
            reason,
        },
    }
}
