//! Configuration: built-in defaults < YAML file < Eremetic's unprefixed environment names <
//! `EREMETIC_<KEY>` environment variables < command-line flags.
//!
//! - The YAML file is `--config FILE` (which must exist), else `/etc/eremetic/eremetic.yml`
//!   when it exists, else none. Keys are Eremetic's (seed behaviour 4.1) plus ours;
//!   `etc/eremetic.yml` in the repository documents every key.
//! - Every key `k` is also read from `EREMETIC_K` (upper case). Eremetic's own keys are also
//!   read from their unprefixed names (`PORT`, `MASTER`, ...) for compatibility, except those
//!   listed in [`UNPREFIXED_ENV_EXCLUDED`] (`USER`, `NAME`), which shells and container
//!   platforms set for their own purposes. Keys new in this server have only the prefixed name.
//!   An empty variable counts as unset.
//! - Flags are `--kebab-case` ([`Cli`]); secrets have no flag (a command line is visible to
//!   every local user through `ps`).
//!
//! Differences from Eremetic, on purpose (sharp edges E-19, E-25): an unknown key, a YAML
//! syntax error or a bad value stops start-up with a message naming the key and where the value
//! came from (Eremetic ignored them or silently skipped the remaining keys); a malformed
//! `http_credentials` is an error, never an open server; the default port is 8080, not a random
//! one; without credentials or tokens the server listens on 127.0.0.1 unless `address` is set;
//! an empty `address` means "not set" (Eremetic listened on every interface).
//!
//! [`load`] reads the file, the process's host facts and the environment through the function
//! it is given; parsing and resolution are pure.

mod cli;
mod host;
mod keys;
mod layers;
mod master_tls;
mod render;
mod resolve;
mod values;

use std::net::IpAddr;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::task::CallbackStates;

pub use cli::{check_config, Cli, CONFIG_ERROR_EXIT_CODE};
pub use host::HostFacts;
pub use keys::{ENV_PREFIX, UNPREFIXED_ENV_EXCLUDED};
pub use layers::Source;
pub use master_tls::CaFile;
pub use values::{
    format_duration, format_size, human_size, parse_duration, parse_size, DatabaseDriver,
    HttpCredentials, LogFormat, LogLevel, PortRange, SecretString,
};

/// The configuration file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/eremetic/eremetic.yml";

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The YAML file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// `address`: IP address to listen on.
    pub address: IpAddr,
    /// `port`: TCP port to listen on (0: the system picks one).
    pub port: u16,
    /// `url_prefix`: path prefix of generated URLs (`Location`, UI links) for a reverse proxy
    /// that strips it before forwarding; routes are not prefixed (`""` or `/x`).
    pub url_prefix: String,
    /// `http_credentials`: HTTP Basic auth.
    pub http_credentials: Option<HttpCredentials>,
    /// `bearer_tokens`: accepted `Authorization: Bearer` tokens.
    pub bearer_tokens: Vec<SecretString>,
    /// `tls_cert` and `tls_key`: serve HTTPS with these PEM files.
    pub tls: Option<TlsFiles>,
    /// `allowed_hosts`: the host names requests may be addressed to (lower case; IP addresses
    /// and `localhost` always pass). Empty: any name when `address` is not loopback or
    /// credentials are configured, none otherwise (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// `loglevel`.
    pub loglevel: LogLevel,
    /// `logformat`.
    pub logformat: LogFormat,
    /// `data_dir`: absolute directory of the database and the task sandboxes.
    pub data_dir: PathBuf,
    /// `database_driver`: always SQLite.
    pub database_driver: DatabaseDriver,
    /// `database`: the SQLite file (relative values are taken relative to `data_dir`).
    pub database: PathBuf,
    /// `retention`: terminal tasks older than this are deleted; `None` keeps them until
    /// deleted through the API.
    pub retention: Option<Duration>,
    /// `task_output_limit`: most bytes kept per output stream file of a task; beyond it the
    /// file is rotated (about twice this is kept per stream). `None`: unlimited.
    pub task_output_limit: Option<NonZeroU64>,
    /// `data_dir_min_free`: launches wait while `data_dir`'s file system has fewer free bytes
    /// than this (0: no floor).
    pub data_dir_min_free: u64,
    /// `fetch_cache_dir`: where URIs a task fetches with `cache` are kept between tasks
    /// (default `<data_dir>/fetch-cache`).
    pub fetch_cache_dir: PathBuf,
    /// `fetch_cache_size`: most bytes the fetch cache may hold; least recently used files are
    /// evicted (default 2 GiB).
    pub fetch_cache_size: u64,
    /// `queue_size`: capacity of the queue of tasks waiting for resources (≥ 1).
    pub queue_size: usize,
    /// `docker_host`: Docker Engine endpoint; `None` is the Docker client default
    /// (`DOCKER_HOST`, else `unix:///var/run/docker.sock`).
    pub docker_host: Option<String>,
    /// `cpus`: CPUs the local backend may hand to tasks (a task asking for more is refused).
    pub cpus: f64,
    /// `mem`: MiB of memory the local backend may hand to tasks (0: launch nothing).
    pub mem: u64,
    /// `port_range`: host ports allocated to tasks.
    pub port_range: PortRange,
    /// `user_network`: Docker network used for tasks asking for network `USER`.
    pub user_network: Option<String>,
    /// `default_retries`: relaunches after TASK_LOST or a failure to start, unless the request
    /// says otherwise.
    pub default_retries: u32,
    /// `kill_grace_period`: time between SIGTERM and SIGKILL when a task is killed.
    pub kill_grace_period: Duration,
    /// `unreachable_timeout`: how long a task whose Mesos agent cannot be reached is waited
    /// for before it is relaunched.
    pub unreachable_timeout: Duration,
    /// `launch_mode`: how tasks are launched on Mesos agents (a task's
    /// `eremetic.launch_mode` label may override it).
    pub launch_mode: crate::mesos::launch_mode::LaunchMode,
    /// `executor_command`: the command that starts `deimos-executor` on an agent.
    pub executor_command: String,
    /// `executor_uri`: where agents fetch `deimos-executor` from before starting it.
    pub executor_uri: Option<String>,
    /// `executor_cpus`: CPUs claimed for the executor on top of each task's.
    pub executor_cpus: f64,
    /// `executor_mem`: memory (MiB) claimed for the executor on top of each task's.
    pub executor_mem: u64,
    /// `instance_id`: owner label put on this instance's containers.
    pub instance_id: String,
    /// `allowed_host_paths`: absolute host directories tasks may bind-mount (with everything
    /// below them); empty: none.
    pub allowed_host_paths: Vec<PathBuf>,
    /// `allow_privileged`: whether tasks may ask for privileged containers.
    pub allow_privileged: bool,
    /// `allow_volumes_from`: whether tasks may mount other containers' volumes.
    pub allow_volumes_from: bool,
    /// `callback_secret`: HMAC-SHA256 key signing callbacks; `None`: unsigned.
    pub callback_secret: Option<SecretString>,
    /// `callback_timeout`: timeout of one callback request.
    pub callback_timeout: Duration,
    /// `callback_retry_period`: how long a failing callback is retried.
    pub callback_retry_period: Duration,
    /// `callback_states`: which status changes are POSTed to a task's `callback_uri` unless
    /// its request says (`terminal`, Eremetic's behaviour, or `all`).
    pub callback_states: CallbackStates,
    /// `master`: the Mesos master to run tasks on; `None` runs them on the local Docker
    /// engine.
    pub master: Option<crate::mesos::MasterUrl>,
    /// Eremetic's Mesos framework settings: used with `master`, ignored by the local backend.
    pub mesos: MesosSettings,
}

/// `tls_cert` and `tls_key` (both exist as files when loaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Eremetic's Mesos framework keys; `None` means not set (defaults apply with `master`). The
/// local Docker backend uses none of them; `messenger_address` and `messenger_port` (libprocess
/// only) are accepted and ignored by both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MesosSettings {
    /// `name`: framework name.
    pub name: Option<String>,
    /// `user`: framework user.
    pub user: Option<String>,
    /// `checkpoint`: framework checkpointing.
    pub checkpoint: Option<bool>,
    /// `failover_timeout`.
    pub failover_timeout: Option<Duration>,
    /// `framework_id`.
    pub framework_id: Option<String>,
    /// `credential_file`: `principal secret` file.
    pub credential_file: Option<PathBuf>,
    /// `master_scheme`: the scheme of masters whose address names none (ZooKeeper leaders,
    /// `host:port`).
    pub master_scheme: Option<crate::mesos::master_url::Scheme>,
    /// `master_ca_file`: the CA certificates trusted for `https://` masters, read and checked.
    pub master_ca_file: Option<CaFile>,
    /// `messenger_address`: advertised libprocess address.
    pub messenger_address: Option<String>,
    /// `messenger_port`: libprocess port.
    pub messenger_port: Option<u16>,
}

impl MesosSettings {
    /// Names of the keys that are set (and therefore ignored).
    pub fn set_keys(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("user", self.user.is_some()),
            ("checkpoint", self.checkpoint.is_some()),
            ("failover_timeout", self.failover_timeout.is_some()),
            ("framework_id", self.framework_id.is_some()),
            ("credential_file", self.credential_file.is_some()),
            ("master_scheme", self.master_scheme.is_some()),
            ("master_ca_file", self.master_ca_file.is_some()),
            ("messenger_address", self.messenger_address.is_some()),
            ("messenger_port", self.messenger_port.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

impl Config {
    /// Whether requests must authenticate (credentials or tokens configured).
    pub fn auth_required(&self) -> bool {
        self.http_credentials.is_some() || !self.bearer_tokens.is_empty()
    }

    /// Warnings to log at start: an API open to the network without authentication,
    /// credentials sent without TLS, Eremetic's Mesos settings that are ignored.
    pub fn startup_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let exposed = !self.address.is_loopback();
        if exposed && !self.auth_required() {
            let names = if self.allowed_hosts.is_empty() {
                "addressed by any host name (set allowed_hosts to restrict the names)".to_owned()
            } else {
                format!("addressed to {}", self.allowed_hosts.join(", "))
            };
            warnings.push(format!(
                "address {}: the API is open: it accepts requests from the network without \
                 authentication, {names}; set http_credentials or bearer_tokens, or listen on \
                 127.0.0.1",
                self.address
            ));
        }
        if exposed && self.auth_required() && self.tls.is_none() {
            warnings.push(format!(
                "address {}: credentials travel unencrypted over the network; set tls_cert \
                 and tls_key or put a TLS proxy in front",
                self.address
            ));
        }
        let set = self.mesos.set_keys();
        if self.master.is_none() && !set.is_empty() {
            warnings.push(format!(
                "{} set: these are Eremetic's Mesos framework settings, ignored by the local \
                 Docker backend",
                set.join(", ")
            ));
        }
        if let Some(warning) = self.unused_ca_file() {
            warnings.push(warning);
        }
        let libprocess: Vec<&str> = set
            .iter()
            .copied()
            .filter(|key| key.starts_with("messenger_"))
            .collect();
        if self.master.is_some() && !libprocess.is_empty() {
            warnings.push(format!(
                "{} set: libprocess settings of Eremetic's driver, ignored (eremetic talks to \
                 the master over its HTTP API)",
                libprocess.join(", ")
            ));
        }
        warnings
    }
}

impl Config {
    /// A warning when `master_ca_file` is set but the master is reached over plain HTTP.
    fn unused_ca_file(&self) -> Option<String> {
        use crate::mesos::master_url::Scheme;
        let ca = self.mesos.master_ca_file.as_ref()?;
        let https = match self.master.as_ref()? {
            crate::mesos::MasterUrl::Http(http) => http.scheme == Scheme::Https,
            crate::mesos::MasterUrl::ZooKeeper(_) => {
                self.mesos.master_scheme == Some(Scheme::Https)
            }
        };
        (!https).then(|| {
            format!(
                "master_ca_file {} is set but the master is reached over plain HTTP (use an \
                 https:// master, or master_scheme: https with a zk:// master): the file is \
                 not used",
                ca.path.display()
            )
        })
    }
}

/// A configuration that cannot be used; every message names the key (or file) and where the
/// value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that does not exist.
    #[error("configuration file {path} (from flag --config) does not exist")]
    FileMissing {
        /// The path given.
        path: PathBuf,
    },
    /// The configuration file exists but cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("configuration file {path} is not valid YAML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file's top level is not a mapping of keys to values.
    #[error("configuration file {path}: the top level must be a mapping of `key: value` lines")]
    NotAMapping {
        /// The file.
        path: PathBuf,
    },
    /// The file has a key this server does not know.
    #[error("configuration file {path}: unknown key {key:?}{hint}; valid keys: {valid}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key as written.
        key: String,
        /// ` (did you mean x?)` or empty.
        hint: String,
        /// Every valid key, comma-separated.
        valid: String,
    },
    /// A value that does not fit its key.
    #[error("{key} from {origin}: {reason}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// Where the value came from.
        origin: Source,
        /// What is wrong with it.
        reason: String,
    },
    /// Only one of `tls_cert` and `tls_key` is set.
    #[error(
        "{set} is set (from {origin}) but {missing} is not: set both to serve HTTPS, or neither"
    )]
    TlsHalfConfigured {
        /// The key that is set.
        set: &'static str,
        /// Where it was set.
        origin: Source,
        /// The key that is missing.
        missing: &'static str,
    },
    /// A default that depends on the host could not be determined.
    #[error("cannot determine the default of {key}: {why}; set {key} explicitly")]
    NoDefault {
        /// The key.
        key: &'static str,
        /// Why.
        why: String,
    },
}

/// Loads the configuration of this process: the YAML file chosen by `cli` (or
/// [`DEFAULT_CONFIG_FILE`]), the environment read through `env`, then the flags. Host facts
/// (CPUs, memory, user id) are detected from the running system.
pub fn load(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    load_with(
        cli,
        env,
        &HostFacts::detect(),
        Path::new(DEFAULT_CONFIG_FILE),
    )
}

/// [`load`] with the host facts and the default file given (for tests).
pub fn load_with(
    cli: &Cli,
    env: &dyn Fn(&str) -> Option<String>,
    host: &HostFacts,
    default_file: &Path,
) -> Result<Config, ConfigError> {
    let (config_file, mut settings) = match choose_file(cli.config.as_deref(), default_file)? {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let settings = layers::parse_yaml(&text, &path)?;
            (Some(path), settings)
        }
        None => (None, layers::Settings::new()),
    };
    settings.extend(layers::from_env(env));
    settings.extend(layers::from_flags(cli.flag_values()));
    let mut config = resolve::resolve(&settings, host, env)?;
    config.config_file = config_file;
    Ok(config)
}

/// `--config FILE` (must exist), else the default file when it exists.
fn choose_file(flag: Option<&Path>, default_file: &Path) -> Result<Option<PathBuf>, ConfigError> {
    match flag {
        Some(path) if path.exists() => Ok(Some(path.to_owned())),
        Some(path) => Err(ConfigError::FileMissing {
            path: path.to_owned(),
        }),
        None => Ok(default_file.exists().then(|| default_file.to_owned())),
    }
}
