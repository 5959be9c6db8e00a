//! The whole service wired together: store, local Docker backend, scheduler core, callback
//! worker and HTTP server, from a loaded [`Config`] until SIGTERM or SIGINT ([`run`]) or until
//! the embedding program says so ([`serve`]).
//!
//! Shutdown stops accepting requests and lets open ones finish; running containers are left
//! running: the next start adopts them by their labels.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deimos_runtime::fetch::CacheOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::{Backend, LocalBackend, LocalConfig, MesosBackend, MesosConfig};
use crate::callback::CallbackWorker;
use crate::config::Config;
use crate::engine::{EngineConfig, Policy, Scheduler};
use crate::http::{self, HostNames, HttpConfig, TlsFiles};
use crate::mesos::calls::FrameworkSettings;
use crate::mesos::client::{ClientSettings, Credentials};
use crate::mesos::launch_mode::ExecutorSettings;
use crate::mesos::master_url::Scheme;
use crate::mesos::task_info::LaunchSettings;
use crate::mesos::MasterUrl;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::service::TaskService;
use crate::store::Store;

/// Why the service could not start or stopped with an error (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory cannot be used.
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
    /// The task store could not be opened.
    #[error("opening the task store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The Docker engine could not be reached.
    #[error("connecting to the Docker engine: {0}")]
    Backend(#[from] crate::backend::BackendError),
    /// The Mesos backend's settings cannot be used (the credential file).
    #[error("{0}")]
    MesosSettings(String),
    /// Recovering the previous run failed.
    #[error("recovering the tasks of the previous run: {0}")]
    Recover(#[from] crate::engine::StartError),
    /// The callback worker could not be built.
    #[error("setting up callbacks: {0}")]
    Callback(#[from] crate::callback::CallbackError),
    /// The listening socket could not be bound.
    #[error("listening on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Runs the service until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), ServerError> {
    start(config, None, None).await
}

/// Runs the service on `listener` (already bound: `config.address` and `config.port` are not
/// used) until `shutdown` resolves, without touching signal handlers: the service embedded in
/// another program, such as the end-to-end tests of its clients (`hermit`).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    start(config, Some(listener), Some(Box::pin(shutdown))).await
}

/// What stops a running service.
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// [`run`] (no listener, no shutdown: both from the configuration and the signals, bound and
/// installed at the moment they always were) and [`serve`].
async fn start(
    config: Config,
    listener: Option<TcpListener>,
    shutdown: Option<Shutdown>,
) -> Result<(), ServerError> {
    for warning in config.startup_warnings() {
        tracing::warn!("{warning}");
    }
    // Before anything is stored in it: it must be closed to other users.
    if let Some(tightened) = crate::data_dir::prepare(&config.data_dir)? {
        tracing::warn!("{tightened}");
    }
    let metrics = Arc::new(Metrics::new());
    let store = Store::open(&config.database)?;
    let backend: Arc<dyn Backend> = match &config.master {
        Some(master) => Arc::new(MesosBackend::new(
            mesos_config(&config, master)?,
            metrics.clone(),
        )?),
        None => Arc::new(LocalBackend::connect(local_config(&config)).await?),
    };
    let outbox: Arc<dyn Outbox> = Arc::new(store.clone());
    let secret = config
        .callback_secret
        .as_ref()
        .map(|secret| secret.expose().as_bytes().to_vec());
    let worker = CallbackWorker::new(outbox, secret, config.callback_timeout, metrics.clone())?;
    let scheduler = Scheduler::new(
        store.clone(),
        backend,
        metrics.clone(),
        worker.notifier(),
        engine_config(&config),
    );
    scheduler.start().await?;
    let (stop, stopped) = watch::channel(false);
    let worker_stopped = wait_for(stopped.clone());
    let callbacks = tokio::spawn(worker.run(worker_stopped));
    let address = SocketAddr::new(config.address, config.port);
    let listener = match listener {
        Some(listener) => listener,
        None => TcpListener::bind(address)
            .await
            .map_err(|source| ServerError::Bind { address, source })?,
    };
    let bound = listener.local_addr().unwrap_or(address);
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        address = %bound,
        database = %config.database.display(),
        data_dir = %config.data_dir.display(),
        "eremetic {} listening on {scheme}://{bound}",
        env!("CARGO_PKG_VERSION")
    );
    let service: Arc<dyn TaskService> = Arc::new(scheduler);
    let router = http::router(service, metrics, http_config(&config));
    let tls = config.tls.as_ref().map(|files| TlsFiles {
        cert: files.cert.clone(),
        key: files.key.clone(),
    });
    let signals = match shutdown {
        Some(shutdown) => shutdown,
        None => Box::pin(shutdown_signal().map_err(ServerError::Signals)?),
    };
    let served = http::serve(listener, router, tls, async move {
        signals.await;
        tracing::info!(
            "shutting down: running containers keep running and are adopted on the next start"
        );
        let _ = stop.send(true);
    })
    .await;
    let _ = callbacks.await;
    store.close().await;
    served.map_err(ServerError::from)
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

fn local_config(config: &Config) -> LocalConfig {
    LocalConfig {
        docker_host: config.docker_host.clone(),
        data_dir: config.data_dir.clone(),
        cpus: config.cpus,
        mem_mib: config.mem as f64,
        port_range: (config.port_range.low, config.port_range.high),
        instance_id: config.instance_id.clone(),
        user_network: config.user_network.clone(),
        fetch_local_paths: config.allowed_host_paths.clone(),
        output_limit: config.task_output_limit,
        min_free_bytes: config.data_dir_min_free,
        fetch_cache: CacheOptions {
            dir: config.fetch_cache_dir.clone(),
            max_size: config.fetch_cache_size,
            setting: "fetch_cache_dir",
        },
    }
}

/// Mesos' advice for the failover timeout: long enough to outlast any restart.
const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long declined offers' resources are not offered again while tasks wait.
const DECLINE_REFUSE: Duration = Duration::from_secs(5);

fn mesos_config(config: &Config, master: &MasterUrl) -> Result<MesosConfig, ServerError> {
    let mesos = &config.mesos;
    let credentials = match &mesos.credential_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                ServerError::MesosSettings(format!(
                    "credential_file {}: cannot read it: {error}",
                    path.display()
                ))
            })?;
            Some(Credentials::parse_file(&text).map_err(|why| {
                ServerError::MesosSettings(format!("credential_file {}: {why}", path.display()))
            })?)
        }
    };
    let mut client = ClientSettings::new(master);
    let principal = credentials
        .as_ref()
        .map(|credentials| credentials.principal.clone());
    client.credentials = credentials;
    client.detected_scheme = mesos.master_scheme.unwrap_or(Scheme::Http);
    client.ca_certificates = mesos.master_ca_file.as_ref().map(|ca| ca.pem.clone());
    Ok(MesosConfig {
        client,
        framework: FrameworkSettings {
            name: mesos.name.clone().unwrap_or_else(|| "Eremetic".to_owned()),
            user: mesos.user.clone().unwrap_or_else(|| "root".to_owned()),
            role: "*".to_owned(),
            checkpoint: mesos.checkpoint.unwrap_or(true),
            failover_timeout: mesos.failover_timeout.unwrap_or(DEFAULT_FAILOVER_TIMEOUT),
            principal,
            hostname: None,
            webui_url: None,
            partition_aware: true,
        },
        launch: LaunchSettings {
            instance_id: config.instance_id.clone(),
            user_network: config.user_network.clone(),
            kill_grace: config.kill_grace_period,
            mode: config.launch_mode,
            executor: ExecutorSettings {
                command: config.executor_command.clone(),
                uri: config.executor_uri.clone(),
                cpus: config.executor_cpus,
                mem_mib: config.executor_mem as f64,
            },
        },
        refuse: DECLINE_REFUSE,
        framework_id: mesos.framework_id.clone(),
    })
}

fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        queue_size: config.queue_size,
        kill_grace: config.kill_grace_period,
        policy: Policy {
            allowed_host_paths: config.allowed_host_paths.clone(),
            allow_privileged: config.allow_privileged,
            allow_volumes_from: config.allow_volumes_from,
        },
        callback_retry_period: config.callback_retry_period,
        callback_states: config.callback_states,
        retention: config.retention,
        default_retries: config.default_retries,
        unreachable_timeout: config.unreachable_timeout,
    }
}

fn http_config(config: &Config) -> HttpConfig {
    HttpConfig {
        url_prefix: config.url_prefix.clone(),
        basic: config.http_credentials.as_ref().map(|credentials| {
            (
                credentials.user.clone(),
                credentials.password.expose().to_owned(),
            )
        }),
        bearer_tokens: config
            .bearer_tokens
            .iter()
            .map(|token| token.expose().to_owned())
            .collect(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        host_names: host_names(config),
    }
}

/// The host names to answer: `allowed_hosts` when set; otherwise any name when the operator
/// listens on a non-loopback address (a team serving eremetic in its network under a DNS name,
/// as Eremetic commonly is; the start-up warning says the API is open); otherwise names only
/// with credentials (the DNS-rebinding guard of the default loopback listener).
fn host_names(config: &Config) -> HostNames {
    if !config.allowed_hosts.is_empty() {
        HostNames::Only(config.allowed_hosts.clone())
    } else if !config.address.is_loopback() {
        HostNames::Any
    } else {
        HostNames::UnlessOpen
    }
}
