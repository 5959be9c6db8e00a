//! INI configuration: the Deimos-compatible search path, sections and keys, plus our own.
//!
//! One file is loaded, the first found on the search path ([`load::search_path`]):
//! `$DEIMOS_CONFIG` (must exist when set), `./deimos.cfg` (not when a Mesos agent runs us: the
//! current directory is then the task's sandbox), `~/.deimos`, `/etc/deimos.cfg`,
//! `/usr/etc/deimos.cfg`, `/usr/local/etc/deimos.cfg`. Without a file every key has its
//! default. `etc/deimos.cfg` in the repository documents every section and key.
//!
//! Differences from Deimos (seed behaviour 5.3, sharp edge D-14), on purpose:
//! - keys present in the file are merged one by one over the defaults (Deimos replaced whole
//!   sections), and an unknown section, unknown key or malformed value is an error naming the
//!   file, line, section and key (Deimos silently dropped the section);
//! - `[docker]` configures how we reach the Docker Engine API (`host` only), because there is
//!   no docker CLI to pass options to; `host` may list several endpoints, as Deimos passed
//!   them to the CLI as repeated `-H`: the first that answers is used;
//! - booleans accept `true/false/yes/no/on/off/1/0` in any case (Deimos' own example had
//!   `unpack: True`, which it rejected);
//! - an empty array value means an empty list (Deimos made it `[""]`);
//! - section names and keys are case-insensitive; values are taken literally (no `%(x)s`
//!   interpolation, no quote or backslash processing); a key repeated in a file takes its
//!   last value, as Python's ConfigParser did;
//! - new sections `[containers]` and `[observer]` hold settings Deimos hard-coded, and
//!   `[policy]` what tasks may ask of the host (Deimos passed every docker option through);
//! - without `[observer] command` the observer is chosen by the agent's version
//!   ([`ObserverConfig::command_for`]): `mesos-executor --task_command=<JSON>` under agents
//!   that set `MESOS_HTTP_COMMAND_EXECUTOR` (Mesos 1.0+, whose `mesos-executor` no longer has
//!   `--override`), Deimos' `mesos-executor --override` otherwise;
//! - `[uris]` also says where local files may be fetched from and how large fetches may be.
//!
//! The INI syntax, the file lookup, `[policy]` and `[uris]` are `deimos_runtime::config`,
//! shared with `deimos-executor`. Parsing ([`parse_config`]) is a pure function of the text;
//! [`load`] only finds and reads the file.

mod load;
mod observer;
mod parse;
mod render;
mod template;
mod values;

use std::path::PathBuf;
use std::time::Duration;

pub use deimos_runtime::config::{
    system_search_path, ConfigError, PolicyConfig, UrisConfig, CONFIG_ENV_VAR,
};
pub use load::{load, load_first, search_path, LoadedConfig, SearchEnv};
pub use observer::{AgentGeneration, ObserverConfig, HTTP_COMMAND_EXECUTOR_ENV};
pub use parse::parse_config;
pub use template::{CommandTemplate, Placeholder, PlaceholderUnavailable, PlaceholderValues};
pub use values::{DockerHost, LogLevel};

/// Everything `deimos` can be configured with; [`Default`] is the configuration used when no
/// file is found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `[docker]`: how to reach the Docker Engine.
    pub docker: DockerConfig,
    /// `[docker.index]`: where guessed images come from and registry credentials.
    pub index: IndexConfig,
    /// `[containers.image]`: image selection.
    pub image: ImageConfig,
    /// `[containers.options]`: `docker run` options.
    pub options: OptionsConfig,
    /// `[containers]`: container settings Deimos hard-coded.
    pub containers: ContainersConfig,
    /// `[hooks]`: programs run around a container's life.
    pub hooks: HooksConfig,
    /// `[uris]`: URI fetching.
    pub uris: UrisConfig,
    /// `[log]`: log destinations and levels.
    pub log: LogConfig,
    /// `[state]`: the state directory.
    pub state: StateConfig,
    /// `[observer]`: the program that watches command tasks for the agent.
    pub observer: ObserverConfig,
    /// `[policy]`: what tasks may ask of the host.
    pub policy: PolicyConfig,
}

/// `[docker]` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DockerConfig {
    /// `host`: the Docker Engine endpoints, tried in order (the first that answers is used);
    /// empty means the Docker client default (`DOCKER_HOST`, else
    /// `unix:///var/run/docker.sock`).
    pub hosts: Vec<DockerHost>,
}

/// `[docker.index]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexConfig {
    /// `index`: registry host put in front of guessed image names.
    pub index: Option<String>,
    /// `account_libmesos`: account of guessed images for executor launches (`libmesos`).
    pub account_libmesos: String,
    /// `account`: account of guessed images for command launches.
    pub account: Option<String>,
    /// `dockercfg`: a `.dockercfg` file with registry credentials.
    pub dockercfg: Option<PathBuf>,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            index: None,
            account_libmesos: "libmesos".to_owned(),
            account: None,
            dockercfg: None,
        }
    }
}

/// `[containers.image]` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageConfig {
    /// `default`: image (a `docker:///name` URL or a plain reference) used when the task names
    /// none, or always when `ignore` is set.
    pub default: Option<String>,
    /// `ignore`: ignore the task's image and always use `default` (which must then be set).
    pub ignore: bool,
}

/// `[containers.options]` section: `docker run` style options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptionsConfig {
    /// `default`: options used when the task gives none (or always, when `ignore` is set).
    pub default: Vec<String>,
    /// `append`: options always added after the task's (or the default) options.
    pub append: Vec<String>,
    /// `ignore`: ignore the task's options and use `default`.
    pub ignore: bool,
}

/// `[containers]` section (ours).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainersConfig {
    /// `stop_grace_period`: how long a stopped container gets between SIGTERM and SIGKILL.
    pub stop_grace_period: Duration,
    /// `cfs_quota`: also enforce the CPU share as a hard CFS quota (not only relative shares).
    pub cfs_quota: bool,
    /// `sandbox_mount`: where the task sandbox is mounted inside the container.
    pub sandbox_mount: String,
    /// `workdir`: the container's working directory; `None` means [`Self::sandbox_mount`].
    pub workdir: Option<String>,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        Self {
            stop_grace_period: Duration::from_secs(10),
            cfs_quota: false,
            sandbox_mount: crate::spec::DEFAULT_SANDBOX_MOUNT.to_owned(),
            workdir: None,
        }
    }
}

impl ContainersConfig {
    /// The working directory containers start in: `workdir`, else the sandbox mount.
    pub fn effective_workdir(&self) -> &str {
        self.workdir.as_deref().unwrap_or(&self.sandbox_mount)
    }
}

/// `[hooks]` section: argv of programs to start; empty means no hook.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HooksConfig {
    /// `onlaunch`: started just before the container starts.
    pub onlaunch: Vec<String>,
    /// `ondestroy`: started after the container has exited.
    pub ondestroy: Vec<String>,
}

/// `[log]` section; `None` means "not configured": the default then depends on whether
/// stderr is a terminal (see [`LogConfig::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LogConfig {
    /// `console`: level of messages written to stderr.
    pub console: Option<LogLevel>,
    /// `syslog`: level of messages sent to syslog (facility daemon).
    pub syslog: Option<LogLevel>,
}

impl LogConfig {
    /// The levels in effect: unset `console` is DEBUG when stderr is a terminal, else off;
    /// unset `syslog` is off when stderr is a terminal, else INFO. Returns `(console, syslog)`.
    pub fn resolve(&self, stderr_is_terminal: bool) -> (LogLevel, LogLevel) {
        let (console, syslog) = if stderr_is_terminal {
            (LogLevel::Debug, LogLevel::Off)
        } else {
            (LogLevel::Off, LogLevel::Info)
        };
        (
            self.console.unwrap_or(console),
            self.syslog.unwrap_or(syslog),
        )
    }
}

/// `[state]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// `root`: absolute directory holding per-container state; never contains `:`.
    pub root: PathBuf,
}

/// The state root used when none is configured.
pub const DEFAULT_STATE_ROOT: &str = "/tmp/deimos";

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from(DEFAULT_STATE_ROOT),
        }
    }
}

#[cfg(test)]
mod tests;
