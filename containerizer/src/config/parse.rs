//! From INI text to [`Config`]: a pure function, no I/O.

use ini::{Ini, ParseOption};

use super::values::{
    parse_array, parse_bool, parse_container_path, parse_docker_host, parse_duration,
    parse_host_dirs, parse_level, parse_non_empty, parse_size, parse_state_root,
};
use super::{CommandTemplate, Config, ConfigError};

/// Every section and its keys, in the order `deimos config` prints them.
pub(super) const SECTIONS: &[(&str, &[&str])] = &[
    ("docker", &["host"]),
    (
        "docker.index",
        &["index", "account_libmesos", "account", "dockercfg"],
    ),
    ("containers.image", &["default", "ignore"]),
    ("containers.options", &["default", "append", "ignore"]),
    (
        "containers",
        &["stop_grace_period", "cfs_quota", "sandbox_mount", "workdir"],
    ),
    ("hooks", &["onlaunch", "ondestroy"]),
    (
        "uris",
        &[
            "unpack",
            "allowed_local_paths",
            "max_size",
            "max_extracted_size",
        ],
    ),
    ("log", &["console", "syslog"]),
    ("state", &["root"]),
    ("observer", &["enabled", "command"]),
    (
        "policy",
        &[
            "allow_privileged",
            "allowed_host_paths",
            "allow_volumes_from",
        ],
    ),
];

/// Why one key could not be applied.
enum KeyProblem {
    Unknown,
    Invalid(String),
}

impl From<String> for KeyProblem {
    fn from(reason: String) -> Self {
        Self::Invalid(reason)
    }
}

/// Parses configuration text; `file` names it in error messages. Keys present override the
/// defaults one by one.
pub fn parse_config(text: &str, file: &str) -> Result<Config, ConfigError> {
    let option = ParseOption {
        // Values are literal: JSON arrays need their quotes and backslashes.
        enabled_quote: false,
        enabled_escape: false,
        // ConfigParser continuation lines, so long arrays can span lines.
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    };
    let ini = Ini::load_from_str_opt(text, option).map_err(|err| ConfigError::Syntax {
        file: file.to_owned(),
        line: err.line,
        column: err.col,
        message: err.msg.to_string(),
    })?;
    let mut config = Config::default();
    for (section, properties) in ini.iter() {
        let Some(section) = section else {
            if let Some((key, _)) = properties.iter().next() {
                return Err(ConfigError::KeyOutsideSection {
                    file: file.to_owned(),
                    key: key.to_owned(),
                });
            }
            continue;
        };
        let section = section.trim().to_ascii_lowercase();
        let Some((name, keys)) = SECTIONS.iter().find(|(name, _)| *name == section) else {
            let known: Vec<String> = SECTIONS
                .iter()
                .map(|(name, _)| format!("[{name}]"))
                .collect();
            return Err(ConfigError::UnknownSection {
                file: file.to_owned(),
                section,
                known: known.join(", "),
            });
        };
        for (key, raw) in properties.iter() {
            let key = key.trim().to_ascii_lowercase();
            apply_key(&mut config, name, &key, raw).map_err(|problem| match problem {
                KeyProblem::Unknown => unknown_key(file, name, keys, &key),
                KeyProblem::Invalid(reason) => invalid(file, name, &key, reason),
            })?;
        }
    }
    check_consistency(&config, file)?;
    Ok(config)
}

fn unknown_key(file: &str, section: &str, keys: &[&str], key: &str) -> ConfigError {
    let hint = if section == "docker" {
        " (Deimos passed [docker] keys to the docker CLI as options; deimos talks to the \
         Docker Engine API and only needs its address)"
    } else {
        ""
    };
    ConfigError::UnknownKey {
        file: file.to_owned(),
        section: section.to_owned(),
        key: key.to_owned(),
        hint: hint.to_owned(),
        supported: keys.join(", "),
    }
}

fn invalid(file: &str, section: &str, key: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        file: file.to_owned(),
        section: section.to_owned(),
        key: key.to_owned(),
        reason,
    }
}

fn apply_key(config: &mut Config, section: &str, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match section {
        "docker" => apply_docker(config, key, raw),
        "docker.index" => apply_index(config, key, raw),
        "containers.image" => apply_image(config, key, raw),
        "containers.options" => apply_options(config, key, raw),
        "containers" => apply_containers(config, key, raw),
        "hooks" => apply_hooks(config, key, raw),
        "uris" => apply_uris(config, key, raw),
        "log" => apply_log(config, key, raw),
        "state" => apply_state(config, key, raw),
        "observer" => apply_observer(config, key, raw),
        "policy" => apply_policy(config, key, raw),
        _ => Err(KeyProblem::Unknown),
    }
}

fn apply_docker(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match key {
        "host" => {
            // Deimos passed each element to the docker CLI as `-H`; the first endpoint that
            // answers is used (see `ecp::context`).
            config.docker.hosts = parse_array(raw)?
                .iter()
                .map(|host| parse_docker_host(host))
                .collect::<Result<_, _>>()?;
        }
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_index(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    let index = &mut config.index;
    match key {
        "index" => index.index = Some(parse_non_empty(raw)?),
        "account_libmesos" => index.account_libmesos = parse_non_empty(raw)?,
        "account" => index.account = Some(parse_non_empty(raw)?),
        "dockercfg" => index.dockercfg = Some(parse_non_empty(raw)?.into()),
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_image(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match key {
        "default" => config.image.default = Some(parse_non_empty(raw)?),
        "ignore" => config.image.ignore = parse_bool(raw)?,
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_options(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match key {
        "default" => config.options.default = parse_array(raw)?,
        "append" => config.options.append = parse_array(raw)?,
        "ignore" => config.options.ignore = parse_bool(raw)?,
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_containers(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    let containers = &mut config.containers;
    match key {
        "stop_grace_period" => containers.stop_grace_period = parse_duration(raw)?,
        "cfs_quota" => containers.cfs_quota = parse_bool(raw)?,
        "sandbox_mount" => containers.sandbox_mount = parse_container_path(raw)?,
        "workdir" => containers.workdir = Some(parse_container_path(raw)?),
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_hooks(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match key {
        "onlaunch" => config.hooks.onlaunch = parse_array(raw)?,
        "ondestroy" => config.hooks.ondestroy = parse_array(raw)?,
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_uris(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match key {
        "unpack" => config.uris.unpack = parse_bool(raw)?,
        "allowed_local_paths" => config.uris.allowed_local_paths = parse_host_dirs(raw)?,
        "max_size" => config.uris.max_size = parse_size(raw)?,
        "max_extracted_size" => config.uris.max_extracted_size = parse_size(raw)?,
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_log(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match key {
        "console" => config.log.console = Some(parse_level(raw)?),
        "syslog" => config.log.syslog = Some(parse_level(raw)?),
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_state(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match key {
        "root" => config.state.root = parse_state_root(raw)?,
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_observer(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match key {
        "enabled" => config.observer.enabled = parse_bool(raw)?,
        "command" => {
            config.observer.command = CommandTemplate::new(parse_array(raw)?)
                .map_err(|reason| format!("{reason} (set enabled: false to run no observer)"))?
        }
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

fn apply_policy(config: &mut Config, key: &str, raw: &str) -> Result<(), KeyProblem> {
    let policy = &mut config.policy;
    match key {
        "allow_privileged" => policy.allow_privileged = parse_bool(raw)?,
        "allowed_host_paths" => policy.allowed_host_paths = parse_host_dirs(raw)?,
        "allow_volumes_from" => policy.allow_volumes_from = parse_bool(raw)?,
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

/// Rules that involve several keys.
fn check_consistency(config: &Config, file: &str) -> Result<(), ConfigError> {
    if config.image.ignore && config.image.default.is_none() {
        return Err(invalid(
            file,
            "containers.image",
            "ignore",
            "is true, so the task's image is ignored, but no default image is set".to_owned(),
        ));
    }
    Ok(())
}
