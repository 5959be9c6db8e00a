//! How a task is launched on the agents: the service's `launch_mode`, which a task may override
//! with the label [`LAUNCH_MODE_LABEL`].
//!
//! - [`LaunchMode::Docker`]: a `TaskInfo` with a DOCKER `ContainerInfo`, for Mesos' Docker
//!   containerizer and for agents that run `deimos` as their external containerizer.
//! - [`LaunchMode::DeimosExecutor`]: a CUSTOM executor that starts `deimos-executor` on the
//!   agent (its resources claimed on top of the task's); the task's command travels in
//!   `TaskInfo.data` (`deimos_runtime::mesos::task_data`), since a master refuses a
//!   `TaskInfo` with both an executor and a command; the DOCKER `ContainerInfo` stays on the
//!   task for the executor to read.
//! - [`LaunchMode::Mesos`]: a MESOS `ContainerInfo` with a Docker image, for agents that run
//!   the unified containerizer (`--containerizers=mesos`, docker image provider).

use std::collections::BTreeMap;
use std::fmt;

use crate::task::{Network, NewTask};

/// The task label that chooses a task's launch mode over the service's.
pub const LAUNCH_MODE_LABEL: &str = "eremetic.launch_mode";

/// The CNI network the unified containerizer's tasks join for `BRIDGE` (Mesos' default
/// bridge network's name).
pub const MESOS_BRIDGE_NETWORK: &str = "mesos-bridge";

/// How tasks are launched on the agents. See the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LaunchMode {
    /// A DOCKER `ContainerInfo` (the Docker containerizer, or deimos).
    #[default]
    Docker,
    /// A CUSTOM executor, `deimos-executor`.
    DeimosExecutor,
    /// A MESOS `ContainerInfo` with a Docker image (the unified containerizer).
    Mesos,
}

impl LaunchMode {
    /// Every mode, in the order of the documentation.
    pub const ALL: [LaunchMode; 3] = [
        LaunchMode::Docker,
        LaunchMode::DeimosExecutor,
        LaunchMode::Mesos,
    ];

    /// The configuration name: `docker`, `deimos-executor`, `mesos`.
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchMode::Docker => "docker",
            LaunchMode::DeimosExecutor => "deimos-executor",
            LaunchMode::Mesos => "mesos",
        }
    }

    /// A mode by its configuration name; the error lists the names.
    pub fn parse(text: &str) -> Result<LaunchMode, String> {
        LaunchMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text.trim())
            .ok_or_else(|| {
                format!("{text:?} is not a launch mode: use docker, deimos-executor or mesos")
            })
    }

    /// The mode of a task: its [`LAUNCH_MODE_LABEL`] label, else `default`.
    pub fn of_task(
        labels: &BTreeMap<String, String>,
        default: LaunchMode,
    ) -> Result<LaunchMode, String> {
        match labels.get(LAUNCH_MODE_LABEL) {
            None => Ok(default),
            Some(value) => {
                LaunchMode::parse(value).map_err(|why| format!("labels.{LAUNCH_MODE_LABEL}: {why}"))
            }
        }
    }

    /// Whether the task can be launched this way: the unified containerizer has no
    /// privileged containers, docker run parameters (`dns`, `volumes_from`) or `NONE`
    /// network. The error names the field.
    pub fn check(self, task: &NewTask) -> Result<(), String> {
        if self != LaunchMode::Mesos {
            return Ok(());
        }
        let mut problems = Vec::new();
        if task.privileged {
            problems.push("privileged: not available in launch mode mesos");
        }
        if task.dns.is_some() {
            problems.push("dns: not available in launch mode mesos (a docker run option)");
        }
        if !task.volumes_from.is_empty() {
            problems.push("volumes_from: not available in launch mode mesos (a docker run option)");
        }
        if task.network == Network::None {
            problems.push("network: NONE is not available in launch mode mesos");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

impl fmt::Display for LaunchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How `deimos-executor` is started on the agents.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorSettings {
    /// The command the agent runs (a path on the agent, or the name of the fetched file).
    pub command: String,
    /// Where the agent fetches the executor from first, if it is not installed there.
    pub uri: Option<String>,
    /// CPUs claimed for the executor on top of the task's.
    pub cpus: f64,
    /// Memory (MiB) claimed for the executor on top of the task's.
    pub mem_mib: f64,
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        ExecutorSettings {
            command: "deimos-executor".to_owned(),
            uri: None,
            cpus: 0.1,
            mem_mib: 32.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_named_as_in_the_configuration() {
        for mode in LaunchMode::ALL {
            assert_eq!(LaunchMode::parse(mode.as_str()), Ok(mode));
        }
        let error = LaunchMode::parse("kubernetes").unwrap_err();
        assert!(
            error.contains("docker, deimos-executor or mesos"),
            "{error}"
        );
    }

    #[test]
    fn a_task_label_overrides_the_service_mode_and_a_bad_one_names_the_label() {
        let mut labels = BTreeMap::new();
        assert_eq!(
            LaunchMode::of_task(&labels, LaunchMode::Mesos),
            Ok(LaunchMode::Mesos)
        );
        labels.insert(LAUNCH_MODE_LABEL.to_owned(), "deimos-executor".to_owned());
        assert_eq!(
            LaunchMode::of_task(&labels, LaunchMode::Docker),
            Ok(LaunchMode::DeimosExecutor)
        );
        labels.insert(LAUNCH_MODE_LABEL.to_owned(), "rkt".to_owned());
        let error = LaunchMode::of_task(&labels, LaunchMode::Docker).unwrap_err();
        assert!(
            error.starts_with("labels.eremetic.launch_mode: "),
            "{error}"
        );
    }
}
