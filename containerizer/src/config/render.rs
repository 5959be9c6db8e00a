//! The effective configuration printed as INI (`deimos config`); it parses back to the same
//! [`Config`].

use std::fmt;

use deimos_runtime::config::values::format_array;
use deimos_runtime::size::format_size;

use super::values::format_duration;
use super::{AgentGeneration, Config, HTTP_COMMAND_EXECUTOR_ENV};

impl Config {
    /// The configuration as INI text: every section and key, unset optional keys as comments.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

/// A JSON list, the array syntax [`super::parse_config`] reads back.
fn array(items: &[String]) -> String {
    format_array(items)
}

fn paths(paths: &[std::path::PathBuf]) -> String {
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    array(&paths)
}

fn key(out: &mut fmt::Formatter<'_>, name: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(out, "{name}: {value}")
}

fn optional(
    out: &mut fmt::Formatter<'_>,
    name: &str,
    value: Option<impl fmt::Display>,
    unset: &str,
) -> fmt::Result {
    match value {
        Some(value) => key(out, name, value),
        None => writeln!(out, "; {name}: not set ({unset})"),
    }
}

impl fmt::Display for Config {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str("[docker]\n")?;
        let hosts: Vec<String> = self.docker.hosts.iter().map(ToString::to_string).collect();
        optional(
            out,
            "host",
            (!hosts.is_empty()).then(|| array(&hosts)),
            "DOCKER_HOST, else unix:///var/run/docker.sock",
        )?;

        out.write_str("\n[docker.index]\n")?;
        optional(out, "index", self.index.index.as_ref(), "no registry host")?;
        key(out, "account_libmesos", &self.index.account_libmesos)?;
        optional(out, "account", self.index.account.as_ref(), "no account")?;
        optional(
            out,
            "dockercfg",
            self.index.dockercfg.as_ref().map(|p| p.display()),
            "no credentials file",
        )?;

        out.write_str("\n[containers.image]\n")?;
        optional(
            out,
            "default",
            self.image.default.as_ref(),
            "no default image",
        )?;
        key(out, "ignore", self.image.ignore)?;

        out.write_str("\n[containers.options]\n")?;
        key(out, "default", array(&self.options.default))?;
        key(out, "append", array(&self.options.append))?;
        key(out, "ignore", self.options.ignore)?;

        out.write_str("\n[containers]\n")?;
        key(
            out,
            "stop_grace_period",
            format_duration(self.containers.stop_grace_period),
        )?;
        key(out, "cfs_quota", self.containers.cfs_quota)?;
        key(out, "sandbox_mount", &self.containers.sandbox_mount)?;
        optional(
            out,
            "workdir",
            self.containers.workdir.as_ref(),
            "the sandbox mount",
        )?;

        out.write_str("\n[hooks]\n")?;
        key(out, "onlaunch", array(&self.hooks.onlaunch))?;
        key(out, "ondestroy", array(&self.hooks.ondestroy))?;

        out.write_str("\n[uris]\n")?;
        key(out, "unpack", self.uris.unpack)?;
        key(
            out,
            "allowed_local_paths",
            paths(&self.uris.allowed_local_paths),
        )?;
        key(out, "max_size", format_size(self.uris.max_size))?;
        key(
            out,
            "max_extracted_size",
            format_size(self.uris.max_extracted_size),
        )?;
        // An empty value turns the cache off, and reads back as such.
        let cache_dir = self.uris.cache_dir.as_ref();
        key(
            out,
            "cache_dir",
            cache_dir
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        )?;
        key(out, "cache_size", format_size(self.uris.cache_size))?;

        out.write_str("\n[log]\n")?;
        optional(
            out,
            "console",
            self.log.console,
            "DEBUG if stderr is a terminal, else off",
        )?;
        optional(
            out,
            "syslog",
            self.log.syslog,
            "off if stderr is a terminal, else INFO",
        )?;

        out.write_str("\n[state]\n")?;
        key(out, "root", self.state.root.display())?;

        out.write_str("\n[observer]\n")?;
        key(out, "enabled", self.observer.enabled)?;
        let by_version = format!(
            "by the agent's version: {} when it sets {HTTP_COMMAND_EXECUTOR_ENV} (Mesos 1.0+), \
             else {}",
            array(AgentGeneration::Mesos1.default_observer().argv()),
            array(AgentGeneration::BeforeMesos1.default_observer().argv()),
        );
        optional(
            out,
            "command",
            self.observer.command.as_ref().map(|c| array(c.argv())),
            &by_version,
        )?;

        out.write_str("\n[policy]\n")?;
        key(out, "allow_privileged", self.policy.allow_privileged)?;
        key(
            out,
            "allowed_host_paths",
            paths(&self.policy.allowed_host_paths),
        )?;
        key(out, "allow_volumes_from", self.policy.allow_volumes_from)
    }
}
