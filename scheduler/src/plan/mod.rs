//! The meaning of one run of a task as a container, computed once and backend-neutral: a
//! [`RunPlan`] built by a pure function ([`RunPlan::build`]) from the task, the attempt number
//! of the run and its [`Allocation`].
//!
//! Two thin renderers turn a plan into what a backend hands on: a Docker container
//! specification for the local engine ([`crate::backend::local::spec::container_spec`]) and a
//! Mesos v1 `TaskInfo` for a cluster ([`crate::mesos::task_info::render`]). Every rule that
//! gives a request its meaning lives here, so that both backends run a task alike:
//!
//! - the run id `<task id>.<attempt>` ([`run_id`]): container name, Mesos task id and label;
//! - the command: a `command` runs through the shell and `args` are then ignored (Eremetic);
//!   otherwise `args` are the arguments of the image's ENTRYPOINT; with neither, the image's
//!   default command runs;
//! - the environment, in Eremetic's order: `env`, `masked_env` (in clear: the container needs
//!   the values), `PORT0..PORTn-1` (the host port of requested port i, E-7), `PORT` = `PORT0`,
//!   `MESOS_TASK_ID` = our task id (a later entry wins over an earlier one of the same name);
//! - port mappings for the networks that publish ports (BRIDGE, USER); container port 0 means
//!   "the same as the host port";
//! - labels: the task's, then ours (managed-by, task id, run id, owner, host ports), which
//!   win: a task must not pass for another task or another scheduler's container;
//! - volumes, with sandbox-relative host paths normalised (resolved by the backend);
//! - user, fetch URIs, network, DNS, `volumes_from`, privileged, force pull, resources.

use std::collections::BTreeMap;

use deimos_runtime::spec::labels;

use crate::backend::Allocation;
use crate::task::{sandbox_relative_path, FetchUri, PortProtocol, Task, TaskId, Volume};

#[cfg(test)]
mod agreement_tests;
#[cfg(test)]
mod tests;

/// The value of the [`labels::MANAGED_BY`] label on the scheduler's containers.
pub const MANAGED_BY: &str = "eremetic";

/// Label holding the run's host ports (comma-separated, in request order), so that a restarted
/// scheduler knows which ports a recovered run holds, also in host networking where Docker
/// records no port binding.
pub const HOST_PORTS_LABEL: &str = "io.eremetic.host-ports";

/// The run id of attempt `attempt` of the task `task`: `<task id>.<attempt>`. Unique per run:
/// the attempt number goes up at every launch ([`Task::next_attempt`]).
pub fn run_id(task: &TaskId, attempt: u32) -> String {
    format!("{task}.{attempt}")
}

/// `31000,31001` (empty for no port).
pub fn format_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses [`format_ports`]'s output; `None` when it is malformed.
pub fn parse_ports(text: &str) -> Option<Vec<u16>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',').map(|port| port.parse().ok()).collect()
}

/// Settings of the scheduler instance that shape every plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSettings<'a> {
    /// This scheduler's instance id (the owner label).
    pub instance_id: &'a str,
    /// The Docker network joined by tasks asking for the `USER` network; `None` refuses them.
    pub user_network: Option<&'a str>,
}

/// What a run executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanCommand {
    /// A command line run through the shell (`sh -c`).
    Shell(String),
    /// Arguments for the image's ENTRYPOINT, which stays; empty: the image's default command.
    Entrypoint(Vec<String>),
}

/// One environment variable.
#[derive(Clone, PartialEq, Eq)]
pub struct PlanEnv {
    /// Name.
    pub name: String,
    /// Value, in clear (the container needs it).
    pub value: String,
    /// Whether it came from `masked_env`: never to be shown or logged.
    pub masked: bool,
}

impl std::fmt::Debug for PlanEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.masked {
            crate::task::MASK
        } else {
            &self.value
        };
        write!(f, "{}={value:?}", self.name)
    }
}

/// A published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanPort {
    /// Port on the host.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub protocol: PortProtocol,
}

/// The network a run joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanNetwork {
    /// The default bridge network.
    Bridge,
    /// The host's network stack.
    Host,
    /// No network.
    None,
    /// The configured user-defined network of that name.
    User(String),
}

impl PlanNetwork {
    /// Whether ports are published (mapped) on this network.
    pub fn publishes_ports(&self) -> bool {
        matches!(self, PlanNetwork::Bridge | PlanNetwork::User(_))
    }
}

/// One run of a task as a container. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Our task id.
    pub task_id: TaskId,
    /// The task's name.
    pub task_name: String,
    /// The attempt number of this run.
    pub attempt: u32,
    /// `<task id>.<attempt>` ([`run_id`]).
    pub run_id: String,
    /// Docker image reference.
    pub image: String,
    /// Pull the image even when present.
    pub force_pull: bool,
    /// What runs.
    pub command: PlanCommand,
    /// The environment, in order.
    pub env: Vec<PlanEnv>,
    /// Host ports of the run, one per requested port, in request order.
    pub host_ports: Vec<u16>,
    /// Published ports (empty on networks that publish none).
    pub ports: Vec<PlanPort>,
    /// Network.
    pub network: PlanNetwork,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Labels: the task's, then ours.
    pub labels: BTreeMap<String, String>,
    /// Read-write bind mounts; a relative host path is normalised and taken inside the
    /// task's sandbox.
    pub volumes: Vec<Volume>,
    /// Containers whose volumes are mounted too (empty names dropped).
    pub volumes_from: Vec<String>,
    /// User inside the container (a name, as the request gives it); `None`: the image's.
    pub user: Option<String>,
    /// URIs fetched into the sandbox before the run starts.
    pub fetch: Vec<FetchUri>,
    /// Run privileged.
    pub privileged: bool,
    /// CPUs.
    pub cpus: f64,
    /// Memory in MiB.
    pub mem_mib: f64,
}

/// Why a task's run cannot be planned. Displayed as `task <id>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The allocation does not hold one host port per requested port.
    PortCount {
        /// The task.
        task: TaskId,
        /// Ports in the request.
        requested: usize,
        /// Host ports in the allocation.
        allocated: usize,
    },
    /// The `USER` network is requested and none is configured.
    NoUserNetwork {
        /// The task.
        task: TaskId,
    },
    /// A sandbox-relative host path is malformed (submission checks it; an edited record may
    /// not).
    Volume {
        /// The task.
        task: TaskId,
        /// Index of the volume in the request.
        index: usize,
        /// Why.
        reason: String,
    },
}

impl PlanError {
    /// The task that cannot be planned.
    pub fn task(&self) -> &TaskId {
        match self {
            PlanError::PortCount { task, .. }
            | PlanError::NoUserNetwork { task }
            | PlanError::Volume { task, .. } => task,
        }
    }

    /// Why, without the task (for errors that name the task themselves).
    pub fn reason(&self) -> String {
        match self {
            PlanError::PortCount {
                requested,
                allocated,
                ..
            } => format!("{requested} ports requested but {allocated} host ports allocated"),
            PlanError::NoUserNetwork { .. } => {
                "the USER network is requested but no user network is configured".to_owned()
            }
            PlanError::Volume { index, reason, .. } => {
                format!("volumes[{index}].host_path: {reason}")
            }
        }
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {}: {}", self.task(), self.reason())
    }
}

impl std::error::Error for PlanError {}

impl RunPlan {
    /// The plan of attempt `attempt` of `task` with `allocation`. Pure.
    pub fn build(
        task: &Task,
        attempt: u32,
        allocation: &Allocation,
        settings: PlanSettings<'_>,
    ) -> Result<RunPlan, PlanError> {
        let request = &task.request;
        let host_ports = &allocation.host_ports;
        if host_ports.len() != request.ports.len() {
            return Err(PlanError::PortCount {
                task: task.id.clone(),
                requested: request.ports.len(),
                allocated: host_ports.len(),
            });
        }
        let network = network(task, settings.user_network)?;
        let run_id = run_id(&task.id, attempt);
        Ok(RunPlan {
            task_id: task.id.clone(),
            task_name: task.name.clone(),
            attempt,
            image: request.image.clone(),
            force_pull: request.force_pull_image,
            command: command(request.command.as_deref(), &request.args),
            env: environment(task, host_ports),
            host_ports: host_ports.clone(),
            ports: if network.publishes_ports() {
                port_mappings(task, host_ports)
            } else {
                Vec::new()
            },
            network,
            dns: request.dns.iter().cloned().collect(),
            labels: run_labels(task, &run_id, settings.instance_id, host_ports),
            volumes: volumes(task)?,
            volumes_from: request
                .volumes_from
                .iter()
                .filter(|name| !name.is_empty())
                .cloned()
                .collect(),
            user: request.user.clone(),
            fetch: request.fetch.clone(),
            privileged: request.privileged,
            cpus: allocation.cpus,
            mem_mib: allocation.mem_mib,
            run_id,
        })
    }
}

fn command(command: Option<&str>, args: &[String]) -> PlanCommand {
    match command {
        Some(line) if !line.is_empty() => PlanCommand::Shell(line.to_owned()),
        _ => PlanCommand::Entrypoint(args.to_vec()),
    }
}

fn network(task: &Task, user_network: Option<&str>) -> Result<PlanNetwork, PlanError> {
    use crate::task::Network;
    Ok(match (task.request.network, user_network) {
        (Network::Bridge, _) => PlanNetwork::Bridge,
        (Network::Host, _) => PlanNetwork::Host,
        (Network::None, _) => PlanNetwork::None,
        (Network::User, Some(name)) => PlanNetwork::User(name.to_owned()),
        (Network::User, None) => {
            return Err(PlanError::NoUserNetwork {
                task: task.id.clone(),
            })
        }
    })
}

fn environment(task: &Task, host_ports: &[u16]) -> Vec<PlanEnv> {
    let request = &task.request;
    let var = |name: &str, value: &str, masked: bool| PlanEnv {
        name: name.to_owned(),
        value: value.to_owned(),
        masked,
    };
    let mut env: Vec<PlanEnv> = request
        .env
        .iter()
        .map(|(name, value)| var(name, value, false))
        .collect();
    env.extend(
        request
            .masked_env
            .iter()
            .map(|(name, secret)| var(name, secret.expose(), true)),
    );
    for (index, port) in host_ports.iter().enumerate() {
        env.push(var(&format!("PORT{index}"), &port.to_string(), false));
    }
    if let Some(first) = host_ports.first() {
        env.push(var("PORT", &first.to_string(), false));
    }
    env.push(var("MESOS_TASK_ID", task.id.as_str(), false));
    env
}

fn port_mappings(task: &Task, host_ports: &[u16]) -> Vec<PlanPort> {
    task.request
        .ports
        .iter()
        .zip(host_ports)
        .map(|(request, host_port)| PlanPort {
            host_port: *host_port,
            // 0 asks for the same port inside as outside (Eremetic's rule).
            container_port: match request.container_port {
                0 => *host_port,
                port => port,
            },
            protocol: request.protocol,
        })
        .collect()
}

/// Relative host paths normalised (`./a//b/` → `a/b`, the sandbox itself → `.`), so that
/// renderers can join them to a sandbox without looking at `..` again.
fn volumes(task: &Task) -> Result<Vec<Volume>, PlanError> {
    task.request
        .volumes
        .iter()
        .enumerate()
        .map(|(index, volume)| {
            if !volume.in_sandbox() {
                return Ok(volume.clone());
            }
            let relative =
                sandbox_relative_path(&volume.host_path).map_err(|reason| PlanError::Volume {
                    task: task.id.clone(),
                    index,
                    reason,
                })?;
            let host_path = match relative.to_str() {
                Some("") => ".".to_owned(),
                Some(text) => text.to_owned(),
                // Built from the segments of a `String`: always UTF-8.
                None => relative.display().to_string(),
            };
            Ok(Volume {
                container_path: volume.container_path.clone(),
                host_path,
            })
        })
        .collect()
}

/// The task's labels, then ours, which win.
fn run_labels(
    task: &Task,
    run_id: &str,
    instance_id: &str,
    host_ports: &[u16],
) -> BTreeMap<String, String> {
    let mut all = task.request.labels.clone();
    let ours = [
        (labels::MANAGED_BY, MANAGED_BY.to_owned()),
        (labels::TASK_ID, task.id.to_string()),
        (labels::CONTAINER_ID, run_id.to_owned()),
        (labels::OWNER, instance_id.to_owned()),
        (HOST_PORTS_LABEL, format_ports(host_ports)),
    ];
    for (key, value) in ours {
        all.insert(key.to_owned(), value);
    }
    all
}
