//! From INI text to [`Config`]: a pure function, no I/O.

use deimos_runtime::config::values::{parse_array, parse_bool};
use deimos_runtime::config::{parse_ini, IniEntry, KeyProblem, PolicyConfig, UrisConfig};

use super::values::{
    parse_container_path, parse_docker_host, parse_duration, parse_level, parse_non_empty,
    parse_state_root,
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
    (UrisConfig::SECTION, UrisConfig::KEYS),
    ("log", &["console", "syslog"]),
    ("state", &["root"]),
    ("observer", &["enabled", "command"]),
    (PolicyConfig::SECTION, PolicyConfig::KEYS),
];

/// Parses configuration text; `file` names it in error messages. Keys present override the
/// defaults one by one; section names and keys are case-insensitive.
pub fn parse_config(text: &str, file: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    // Where `[containers.image] ignore` was set, for the rule that involves two keys.
    let mut ignore_line = None;
    for section in parse_ini(text, file)? {
        let name = section.name.to_ascii_lowercase();
        let Some((name, keys)) = SECTIONS.iter().find(|(known, _)| *known == name) else {
            let known: Vec<String> = SECTIONS
                .iter()
                .map(|(name, _)| format!("[{name}]"))
                .collect();
            return Err(ConfigError::UnknownSection {
                file: file.to_owned(),
                line: section.line,
                section: name,
                known: known.join(", "),
            });
        };
        for entry in &section.entries {
            let key = entry.key.to_ascii_lowercase();
            apply_key(&mut config, name, &key, &entry.value)
                .map_err(|problem| key_error(file, name, keys, entry, problem))?;
            if (*name, key.as_str()) == ("containers.image", "ignore") {
                ignore_line = Some(entry.line);
            }
        }
    }
    check_consistency(&config, file, ignore_line)?;
    Ok(config)
}

fn key_error(
    file: &str,
    section: &str,
    keys: &[&str],
    entry: &IniEntry,
    problem: KeyProblem,
) -> ConfigError {
    let hint = if section == "docker" {
        " (Deimos passed [docker] keys to the docker CLI as options; deimos talks to the \
         Docker Engine API and only needs its address)"
    } else {
        ""
    };
    ConfigError::for_entry(file, section, keys, entry, problem, hint)
}

fn apply_key(config: &mut Config, section: &str, key: &str, raw: &str) -> Result<(), KeyProblem> {
    match section {
        "docker" => apply_docker(config, key, raw),
        "docker.index" => apply_index(config, key, raw),
        "containers.image" => apply_image(config, key, raw),
        "containers.options" => apply_options(config, key, raw),
        "containers" => apply_containers(config, key, raw),
        "hooks" => apply_hooks(config, key, raw),
        UrisConfig::SECTION => config.uris.apply(key, raw),
        "log" => apply_log(config, key, raw),
        "state" => apply_state(config, key, raw),
        "observer" => apply_observer(config, key, raw),
        PolicyConfig::SECTION => config.policy.apply(key, raw),
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
            config.observer.command =
                Some(CommandTemplate::new(parse_array(raw)?).map_err(|reason| {
                    format!("{reason} (set enabled: false to run no observer)")
                })?)
        }
        _ => return Err(KeyProblem::Unknown),
    }
    Ok(())
}

/// Rules that involve several keys.
fn check_consistency(
    config: &Config,
    file: &str,
    ignore_line: Option<usize>,
) -> Result<(), ConfigError> {
    if let (true, None, Some(line)) = (config.image.ignore, &config.image.default, ignore_line) {
        return Err(ConfigError::InvalidValue {
            file: file.to_owned(),
            line,
            section: "containers.image".to_owned(),
            key: "ignore".to_owned(),
            reason: "is true, so the task's image is ignored, but no default image is set"
                .to_owned(),
        });
    }
    Ok(())
}
