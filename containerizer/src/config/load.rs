//! Finding and reading the configuration file; the environment is injected ([`SearchEnv`]) so
//! that tests do not depend on the machine.

use std::path::{Path, PathBuf};

use deimos_runtime::config::{read_first, system_search_path, CONFIG_ENV_VAR};

use super::{parse_config, Config, ConfigError};

/// What the search path depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchEnv {
    /// Value of `$DEIMOS_CONFIG`; an empty value counts as unset.
    pub config_file: Option<PathBuf>,
    /// The current directory (for `./deimos.cfg`).
    pub current_dir: PathBuf,
    /// Whether a Mesos agent runs us (`MESOS_WORK_DIRECTORY` is set). The agent runs every
    /// call in the task's sandbox, which the task itself can write to, so `./deimos.cfg` is
    /// then not searched: a task could otherwise plant a configuration (hooks, policy) that
    /// the next call, run as root, would obey.
    pub called_by_agent: bool,
    /// The home directory (for `~/.deimos`); `None` skips that entry.
    pub home: Option<PathBuf>,
    /// Prefix of the system locations (`/` in production, a temporary directory in tests).
    pub system_root: PathBuf,
}

impl SearchEnv {
    /// The environment of this process: `$DEIMOS_CONFIG`, the current directory,
    /// `$MESOS_WORK_DIRECTORY`, `$HOME`.
    pub fn from_process() -> Self {
        let non_empty = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            config_file: non_empty(CONFIG_ENV_VAR),
            current_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            called_by_agent: non_empty("MESOS_WORK_DIRECTORY").is_some(),
            home: non_empty("HOME"),
            system_root: PathBuf::from("/"),
        }
    }
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The effective configuration.
    pub config: Config,
    /// The file it was read from; `None` when no file was found and defaults apply.
    pub source: Option<PathBuf>,
}

/// The files tried in order when `$DEIMOS_CONFIG` is not set: Deimos' search path, without
/// `./deimos.cfg` when an agent runs us (see [`SearchEnv::called_by_agent`]).
pub fn search_path(env: &SearchEnv) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if !env.called_by_agent {
        paths.push(env.current_dir.join("deimos.cfg"));
    }
    if let Some(home) = &env.home {
        paths.push(home.join(".deimos"));
    }
    paths.extend(system_search_path(&env.system_root));
    paths
}

/// Loads the first configuration file found: `$DEIMOS_CONFIG` if set (it must exist), else the
/// first existing entry of [`search_path`]; no file at all gives the defaults.
pub fn load(env: &SearchEnv) -> Result<LoadedConfig, ConfigError> {
    load_first(env.config_file.as_deref(), &search_path(env))
}

/// Loads `config_file` when given (it must exist), else the first existing file of `paths`;
/// no file at all gives the defaults.
pub fn load_first(
    config_file: Option<&Path>,
    paths: &[PathBuf],
) -> Result<LoadedConfig, ConfigError> {
    match read_first(config_file, paths)? {
        Some((path, text)) => Ok(LoadedConfig {
            config: parse_config(&text, &path.display().to_string())?,
            source: Some(path),
        }),
        None => Ok(LoadedConfig {
            config: Config::default(),
            source: None,
        }),
    }
}
