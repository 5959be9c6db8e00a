//! Merged raw settings → typed [`Config`], with defaults and cross-key rules.

use std::net::IpAddr;
use std::num::NonZeroU64;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::mesos::launch_mode::{ExecutorSettings, LaunchMode};
use crate::mesos::MasterUrl;

use super::host::HostFacts;
use super::layers::{RawValue, Settings, Source};
use super::master_tls;
use super::values::{self as v, split_list};
use super::{Config, ConfigError, MesosSettings, TlsFiles};
use crate::task::{CallbackStates, DEFAULT_MAX_RETRIES};

/// Default `port` (Eremetic's was random; E-25).
pub(crate) const DEFAULT_PORT: u16 = 8080;
/// Default `queue_size` (Eremetic's).
pub(crate) const DEFAULT_QUEUE_SIZE: usize = 100;
/// Default `port_range`.
pub(crate) const DEFAULT_PORT_RANGE: v::PortRange = v::PortRange {
    low: 31000,
    high: 32000,
};
/// Default `kill_grace_period`.
pub(crate) const DEFAULT_KILL_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// Default `unreachable_timeout` (as Marathon's `unreachableInactiveAfterSeconds`).
pub(crate) const DEFAULT_UNREACHABLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default `executor_mem` (MiB).
pub(crate) const DEFAULT_EXECUTOR_MEM: u64 = 32;
/// Default `callback_timeout`.
pub(crate) const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `callback_retry_period`.
pub(crate) const DEFAULT_CALLBACK_RETRY_PERIOD: Duration = Duration::from_secs(3600);
/// Default `task_output_limit`: 1 GiB per stream file (so at most about 4 GiB per task).
pub(crate) const DEFAULT_TASK_OUTPUT_LIMIT: u64 = 1 << 30;
/// Smallest `task_output_limit`: below it, rotation would churn on every few lines.
pub(crate) const MIN_TASK_OUTPUT_LIMIT: u64 = 1 << 10;
/// Default `data_dir_min_free`: 1 GiB. An absolute amount rather than a share of the disk:
/// what must stay free is room for the store to commit (its WAL) and for running tasks to
/// write, which does not grow with the disk, while 5% of a large disk would stop launches
/// with hundreds of GiB free, and 5% of a small one would be less than one task's output.
pub(crate) const DEFAULT_DATA_DIR_MIN_FREE: u64 = 1 << 30;
/// The database file name inside `data_dir`.
pub(crate) const DATABASE_FILE: &str = "eremetic.db";
/// Default `fetch_cache_dir`, under `data_dir`.
pub(crate) const FETCH_CACHE_DIR: &str = "fetch-cache";

/// Typed access to the merged settings; every error names the key and the source.
struct Lookup<'a> {
    settings: &'a Settings,
}

impl Lookup<'_> {
    fn source(&self, key: &'static str) -> Option<&Source> {
        self.settings.get(key).map(|setting| &setting.source)
    }

    fn invalid(&self, key: &'static str, reason: String) -> ConfigError {
        ConfigError::InvalidValue {
            key,
            origin: self.source(key).cloned().unwrap_or(Source::Default),
            reason,
        }
    }

    /// The key's single value parsed by `parse`, `None` when unset.
    fn get<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(setting) = self.settings.get(key) else {
            return Ok(None);
        };
        match &setting.value {
            RawValue::Scalar(text) => parse(text).map(Some).map_err(|r| self.invalid(key, r)),
            RawValue::List(_) => {
                Err(self.invalid(key, "expected a single value, not a list".into()))
            }
        }
    }

    /// The key's items (a YAML list, or a comma-separated value) parsed by `parse`, which is
    /// given the 1-based position for its messages; empty when unset.
    fn list<T>(
        &self,
        key: &'static str,
        parse: impl Fn(&str, usize) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        let items = match self.settings.get(key).map(|setting| &setting.value) {
            None => return Ok(Vec::new()),
            Some(RawValue::Scalar(text)) => split_list(text),
            Some(RawValue::List(items)) => items.clone(),
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| parse(item, index + 1).map_err(|r| self.invalid(key, r)))
            .collect()
    }
}

/// Builds the configuration from merged settings. `env` is read for the `data_dir` default
/// (`STATE_DIRECTORY`, `XDG_DATA_HOME`, `HOME`).
pub(crate) fn resolve(
    settings: &Settings,
    host: &HostFacts,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let lookup = Lookup { settings };
    let master = resolve_master(&lookup)?;
    let http_credentials = lookup.get("http_credentials", v::parse_credentials)?;
    let bearer_tokens = lookup.list("bearer_tokens", v::parse_bearer_token)?;
    let open = http_credentials.is_none() && bearer_tokens.is_empty();
    let data_dir = match lookup.get("data_dir", v::parse_absolute_path)? {
        Some(dir) => dir,
        None => default_data_dir(host.uid, env)?,
    };
    let database = lookup
        .get("database", parse_database_path)?
        .map_or_else(|| data_dir.join(DATABASE_FILE), |path| data_dir.join(path));
    Ok(Config {
        config_file: None,
        address: lookup
            .get("address", v::parse_address)?
            .unwrap_or_else(|| default_address(open)),
        port: lookup.get("port", v::parse_port)?.unwrap_or(DEFAULT_PORT),
        url_prefix: lookup
            .get("url_prefix", v::parse_url_prefix)?
            .unwrap_or_default(),
        http_credentials,
        bearer_tokens,
        tls: resolve_tls(&lookup)?,
        allowed_hosts: lookup.list("allowed_hosts", v::parse_host_name)?,
        loglevel: lookup
            .get("loglevel", v::parse_log_level)?
            .unwrap_or(v::LogLevel::Info),
        logformat: lookup
            .get("logformat", v::parse_log_format)?
            .unwrap_or(v::LogFormat::Text),
        instance_id: lookup
            .get("instance_id", parse_instance_id)?
            .unwrap_or_else(|| format!("eremetic:{}", data_dir.display())),
        database_driver: lookup
            .get("database_driver", v::parse_database_driver)?
            .unwrap_or(v::DatabaseDriver::Sqlite),
        database,
        retention: lookup.get("retention", v::parse_positive_duration)?,
        task_output_limit: lookup
            .get("task_output_limit", parse_output_limit)?
            .unwrap_or(NonZeroU64::new(DEFAULT_TASK_OUTPUT_LIMIT)),
        data_dir_min_free: lookup
            .get("data_dir_min_free", v::parse_size)?
            .unwrap_or(DEFAULT_DATA_DIR_MIN_FREE),
        fetch_cache_dir: lookup
            .get("fetch_cache_dir", parse_host_path)?
            .unwrap_or_else(|| data_dir.join(FETCH_CACHE_DIR)),
        fetch_cache_size: lookup
            .get(
                "fetch_cache_size",
                deimos_runtime::size::parse_positive_size,
            )?
            .unwrap_or(deimos_runtime::fetch::DEFAULT_CACHE_SIZE),
        data_dir,
        queue_size: lookup
            .get("queue_size", |t| v::parse_integer_at_least(t, 1))?
            .unwrap_or(DEFAULT_QUEUE_SIZE),
        docker_host: lookup.get("docker_host", v::parse_docker_host)?,
        cpus: match lookup.get("cpus", v::parse_cpus)? {
            Some(cpus) => cpus,
            None => default_from_host("cpus", host.cpus.map(|n| n as f64), "no CPU count")?,
        },
        mem: match lookup.get("mem", |t| v::parse_integer_at_least(t, 0))? {
            Some(mem) => mem,
            None => default_from_host("mem", host.mem_mib, "/proc/meminfo has no MemTotal")?,
        },
        port_range: lookup
            .get("port_range", v::parse_port_range)?
            .unwrap_or(DEFAULT_PORT_RANGE),
        user_network: lookup.get("user_network", parse_network_name)?,
        default_retries: lookup
            .get("default_retries", |t| v::parse_integer_at_least(t, 0))?
            .unwrap_or(DEFAULT_MAX_RETRIES),
        kill_grace_period: lookup
            .get("kill_grace_period", v::parse_duration)?
            .unwrap_or(DEFAULT_KILL_GRACE_PERIOD),
        unreachable_timeout: lookup
            .get("unreachable_timeout", v::parse_duration)?
            .unwrap_or(DEFAULT_UNREACHABLE_TIMEOUT),
        launch_mode: lookup
            .get("launch_mode", LaunchMode::parse)?
            .unwrap_or_default(),
        executor_command: lookup
            .get("executor_command", v::parse_non_empty)?
            .unwrap_or_else(|| ExecutorSettings::default().command),
        executor_uri: lookup.get("executor_uri", v::parse_non_empty)?,
        executor_cpus: lookup
            .get("executor_cpus", v::parse_cpus)?
            .unwrap_or_else(|| ExecutorSettings::default().cpus),
        executor_mem: lookup
            .get("executor_mem", |t| v::parse_integer_at_least(t, 0))?
            .unwrap_or(DEFAULT_EXECUTOR_MEM),
        allowed_host_paths: lookup.list("allowed_host_paths", |t, _| parse_host_path(t))?,
        allow_privileged: lookup
            .get("allow_privileged", v::parse_bool)?
            .unwrap_or(false),
        allow_volumes_from: lookup
            .get("allow_volumes_from", v::parse_bool)?
            .unwrap_or(false),
        callback_secret: lookup.get("callback_secret", |t| {
            v::parse_non_empty(t).map(v::SecretString::new)
        })?,
        callback_timeout: lookup
            .get("callback_timeout", v::parse_positive_duration)?
            .unwrap_or(DEFAULT_CALLBACK_TIMEOUT),
        callback_retry_period: lookup
            .get("callback_retry_period", v::parse_duration)?
            .unwrap_or(DEFAULT_CALLBACK_RETRY_PERIOD),
        callback_states: lookup
            .get("callback_states", CallbackStates::parse)?
            .unwrap_or_default(),
        master,
        mesos: resolve_mesos(&lookup)?,
    })
}

/// 127.0.0.1 when nothing protects the API, else every interface.
fn default_address(open: bool) -> IpAddr {
    if open {
        IpAddr::from([127, 0, 0, 1])
    } else {
        IpAddr::from([0, 0, 0, 0])
    }
}

fn default_from_host<T>(key: &'static str, value: Option<T>, why: &str) -> Result<T, ConfigError> {
    value.ok_or_else(|| ConfigError::NoDefault {
        key,
        why: why.to_owned(),
    })
}

/// `$STATE_DIRECTORY` (systemd; the first of its colon-separated paths), else
/// `/var/lib/eremetic` for root, else `$XDG_DATA_HOME/eremetic`, else
/// `$HOME/.local/share/eremetic`.
pub(crate) fn default_data_dir(
    uid: u32,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    let absolute = |name: &str| {
        env(name)
            .and_then(|value| value.split(':').next().map(PathBuf::from))
            .filter(|path| path.is_absolute())
    };
    if let Some(dir) = absolute("STATE_DIRECTORY") {
        return Ok(dir);
    }
    if uid == 0 {
        return Ok(PathBuf::from("/var/lib/eremetic"));
    }
    if let Some(dir) = absolute("XDG_DATA_HOME") {
        return Ok(dir.join("eremetic"));
    }
    if let Some(home) = absolute("HOME") {
        return Ok(home.join(".local/share/eremetic"));
    }
    Err(ConfigError::NoDefault {
        key: "data_dir",
        why: "neither STATE_DIRECTORY, XDG_DATA_HOME nor HOME is set to an absolute path, and \
              the process is not root"
            .to_owned(),
    })
}

/// `unlimited`, or a size of at least [`MIN_TASK_OUTPUT_LIMIT`].
fn parse_output_limit(text: &str) -> Result<Option<NonZeroU64>, String> {
    if text.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let bytes = v::parse_size(text).map_err(|reason| format!("{reason}, or unlimited"))?;
    if bytes < MIN_TASK_OUTPUT_LIMIT {
        return Err(format!(
            "must be at least {} (or unlimited), got {text:?}",
            v::format_size(MIN_TASK_OUTPUT_LIMIT)
        ));
    }
    Ok(NonZeroU64::new(bytes))
}

/// A database path; Eremetic's ZooKeeper URLs are refused.
fn parse_database_path(text: &str) -> Result<PathBuf, String> {
    if text.starts_with("zk://") {
        return Err(format!(
            "{text:?} is a ZooKeeper URL for Eremetic's zk driver; this server stores tasks in \
             an SQLite file: give a file path"
        ));
    }
    Ok(PathBuf::from(text))
}

fn parse_instance_id(text: &str) -> Result<String, String> {
    let id = v::parse_non_empty(text)?;
    if id.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(id)
}

/// A Docker network name: `[A-Za-z0-9][A-Za-z0-9_.-]*`.
fn parse_network_name(text: &str) -> Result<String, String> {
    let valid = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        return Err(format!(
            "{text:?} is not a Docker network name (letters, digits, '_', '.', '-')"
        ));
    }
    Ok(text.to_owned())
}

/// An absolute host directory without `..` (which would escape the allowed tree).
fn parse_host_path(text: &str) -> Result<PathBuf, String> {
    let path = v::parse_absolute_path(text)?;
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{text:?} must not contain '..'"));
    }
    Ok(path.components().collect())
}

fn resolve_tls(lookup: &Lookup<'_>) -> Result<Option<TlsFiles>, ConfigError> {
    let existing_file = |text: &str| {
        let path = PathBuf::from(text);
        if Path::new(text).is_file() {
            Ok(path)
        } else {
            Err(format!("{text:?} does not exist or is not a file"))
        }
    };
    let cert = lookup.get("tls_cert", existing_file)?;
    let key = lookup.get("tls_key", existing_file)?;
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(half_tls(lookup, "tls_cert", "tls_key")),
        (None, Some(_)) => Err(half_tls(lookup, "tls_key", "tls_cert")),
    }
}

fn half_tls(lookup: &Lookup<'_>, set: &'static str, missing: &'static str) -> ConfigError {
    ConfigError::TlsHalfConfigured {
        set,
        origin: lookup.source(set).cloned().unwrap_or(Source::Default),
        missing,
    }
}

/// `master`: an HTTP master (`http://host:5050`, `host:port`) or a ZooKeeper election
/// (`zk://[user:password@]host:port,.../path`).
/// `master_scheme` applies to a bare `host:port` and must agree with an explicit scheme.
fn resolve_master(lookup: &Lookup<'_>) -> Result<Option<MasterUrl>, ConfigError> {
    let scheme = lookup.get("master_scheme", master_tls::parse_scheme)?;
    let parsed = lookup.get("master", |value| {
        MasterUrl::parse(value)
            .map(|master| (master, value.contains("://")))
            .map_err(|error| error.to_string())
    })?;
    let Some((master, explicit)) = parsed else {
        return Ok(None);
    };
    master_tls::apply_scheme(master, explicit, scheme)
        .map(Some)
        .map_err(|why| lookup.invalid("master_scheme", why))
}

fn resolve_mesos(lookup: &Lookup<'_>) -> Result<MesosSettings, ConfigError> {
    Ok(MesosSettings {
        name: lookup.get("name", v::parse_non_empty)?,
        user: lookup.get("user", v::parse_non_empty)?,
        checkpoint: lookup.get("checkpoint", v::parse_bool)?,
        failover_timeout: lookup.get("failover_timeout", parse_failover_timeout)?,
        framework_id: lookup.get("framework_id", v::parse_non_empty)?,
        credential_file: lookup.get("credential_file", |t| Ok(PathBuf::from(t)))?,
        master_scheme: lookup.get("master_scheme", master_tls::parse_scheme)?,
        master_ca_file: lookup.get("master_ca_file", master_tls::read_ca_file)?,
        messenger_address: lookup.get("messenger_address", v::parse_non_empty)?,
        messenger_port: lookup.get("messenger_port", v::parse_port)?,
    })
}

/// A failover timeout of 0 would have the master kill every task the moment the connection
/// drops: refused.
fn parse_failover_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_seconds(text)?;
    if timeout.is_zero() {
        return Err(
            "0 would have the master kill every task as soon as eremetic disconnects; use \
             days or weeks"
                .to_owned(),
        );
    }
    Ok(timeout)
}

/// Eremetic's `failover_timeout` is a number of seconds, possibly fractional; our duration
/// syntax is accepted too.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    v::parse_duration(text).or_else(|reason| {
        text.trim()
            .parse::<f64>()
            .ok()
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .ok_or(reason)
    })
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
pub(super) mod tests;
