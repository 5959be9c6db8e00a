//! One attempt of a task as a Mesos v1 `TaskInfo`, with the semantics of the local backend's
//! container ([`crate::backend::local::spec`]): same command rules, environment order, port
//! variables and labels.
//!
//! Mesos task ids are run ids, `<task id>.<attempt>` ([`mesos_task_id`]): Mesos wants a task
//! id unique within the framework, and reusing a task's id for a relaunch would let a late
//! update or reconciliation answer about the failed attempt be taken for the new one. The
//! container id label already uses the same run id, so both backends name attempts alike.

use std::collections::BTreeMap;
use std::time::Duration;

use deimos::spec::labels;
use mesos_proto::v1::{
    command_info, container_info, environment, volume, AgentId, CommandInfo, ContainerInfo,
    DurationInfo, Environment, KillPolicy, Label, Labels, NetworkInfo, Parameter,
    TaskId as MesosTaskId, TaskInfo, Volume,
};

use super::offers::Claim;
use super::MesosError;
use crate::backend::local::spec::{format_ports, HOST_PORTS_LABEL, MANAGED_BY};
use crate::task::{Network, Task, TaskId};

/// Longest Mesos task id (it becomes a directory name on the agent: NAME_MAX).
pub const MAX_MESOS_TASK_ID_LEN: usize = 255;

/// Framework-wide settings that shape every `TaskInfo`.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSettings {
    /// This scheduler's instance id (the owner label).
    pub instance_id: String,
    /// The Docker network joined by tasks asking for the `USER` network; `None` refuses them.
    pub user_network: Option<String>,
    /// Time between the graceful and the forced kill (the task's kill policy).
    pub kill_grace: Duration,
}

/// The Mesos task id of attempt `attempt` of a task: `<task id>.<attempt>`.
pub fn mesos_task_id(task: &TaskId, attempt: u32) -> String {
    format!("{task}.{attempt}")
}

/// Our task id and attempt from a Mesos task id. An id without a numeric `.N` suffix (as
/// Eremetic used, e.g. `eremetic-task.<uuid>`) is taken whole, with no attempt. `None` when
/// it is not a valid task id at all.
pub fn parse_mesos_task_id(value: &str) -> Option<(TaskId, Option<u32>)> {
    if let Some((task, attempt)) = value.rsplit_once('.') {
        if !attempt.is_empty() && attempt.bytes().all(|b| b.is_ascii_digit()) {
            if let (Ok(task), Ok(attempt)) = (TaskId::parse(task), attempt.parse::<u32>()) {
                return Some((task, Some(attempt)));
            }
        }
    }
    TaskId::parse(value).ok().map(|task| (task, None))
}

/// The `TaskInfo` launching attempt `attempt` of `task` with the resources and host ports of
/// `claim` (see [`super::offers::Leftovers::claim`]).
///
/// - container: DOCKER with the image, `force_pull_image`, `privileged`, the network
///   (`USER` joins [`LaunchSettings::user_network`] through `network_infos`), port mappings
///   for BRIDGE and USER networks (container port 0 means "same as the host port"),
///   parameters `dns` then one `volumes-from` per entry, RW volumes;
/// - command: `shell` with the command line when there is one (args are then ignored, as in
///   Eremetic), else `shell: false` with `args` as arguments of the image's entrypoint;
///   the user when the request names one; the fetch URIs;
/// - environment, in the local backend's order: `env`, `masked_env` (in clear: the container
///   needs the values), `PORT0..PORTn-1` in request order, `PORT` = `PORT0`, `MESOS_TASK_ID`
///   = our task id (Mesos sets `MESOS_SANDBOX` itself);
/// - labels: the task's, then ours (managed-by, task id, run id, owner, host ports), which win;
/// - resources: the claimed offer resources (they keep the offer's role and reservations);
/// - kill policy: [`LaunchSettings::kill_grace`].
pub fn task_info(
    task: &Task,
    attempt: u32,
    claim: &Claim,
    settings: &LaunchSettings,
) -> Result<TaskInfo, MesosError> {
    let invalid = |why: String| MesosError::InvalidTask {
        task: task.id.to_string(),
        why,
    };
    let request = &task.request;
    let run_id = mesos_task_id(&task.id, attempt);
    if run_id.len() > MAX_MESOS_TASK_ID_LEN {
        return Err(invalid(format!(
            "Mesos task id {run_id:?} is {} bytes long, at most {MAX_MESOS_TASK_ID_LEN} allowed",
            run_id.len()
        )));
    }
    if claim.host_ports.len() != request.ports.len() {
        return Err(invalid(format!(
            "{} ports requested but {} host ports claimed",
            request.ports.len(),
            claim.host_ports.len()
        )));
    }
    if request.network == Network::User && settings.user_network.is_none() {
        return Err(invalid(
            "the USER network is requested but no user network is configured".to_owned(),
        ));
    }
    Ok(TaskInfo {
        name: task.name.clone(),
        task_id: MesosTaskId {
            value: run_id.clone(),
        },
        agent_id: AgentId {
            value: claim.agent_id.clone(),
        },
        resources: claim.resources.clone(),
        command: Some(command(task, &claim.host_ports)),
        container: Some(container(task, &claim.host_ports, settings)),
        kill_policy: Some(KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: i64::try_from(settings.kill_grace.as_nanos()).unwrap_or(i64::MAX),
            }),
        }),
        labels: Some(task_labels(task, &run_id, settings, &claim.host_ports)),
        ..Default::default()
    })
}

fn command(task: &Task, host_ports: &[u16]) -> CommandInfo {
    let request = &task.request;
    let (shell, value, arguments) = match request.command.as_deref() {
        Some(line) if !line.is_empty() => (true, Some(line.to_owned()), Vec::new()),
        // No value: the Docker containerizer keeps the image's entrypoint and passes the
        // arguments to it (empty arguments: the image's default command).
        _ => (false, None, request.args.clone()),
    };
    CommandInfo {
        uris: request
            .fetch
            .iter()
            .map(|uri| command_info::Uri {
                value: uri.uri.clone(),
                executable: Some(uri.executable),
                extract: Some(uri.extract),
                cache: Some(uri.cache),
                output_file: None,
            })
            .collect(),
        environment: Some(Environment {
            variables: environment(task, host_ports),
        }),
        shell: Some(shell),
        value,
        arguments,
        user: request.user.clone(),
    }
}

fn variable(name: impl Into<String>, value: impl Into<String>) -> environment::Variable {
    environment::Variable {
        name: name.into(),
        r#type: Some(environment::variable::Type::Value as i32),
        value: Some(value.into()),
        secret: None,
    }
}

fn environment(task: &Task, host_ports: &[u16]) -> Vec<environment::Variable> {
    let request = &task.request;
    let mut variables: Vec<environment::Variable> = request
        .env
        .iter()
        .map(|(name, value)| variable(name, value))
        .collect();
    variables.extend(
        request
            .masked_env
            .iter()
            .map(|(name, secret)| variable(name, secret.expose())),
    );
    for (index, port) in host_ports.iter().enumerate() {
        variables.push(variable(format!("PORT{index}"), port.to_string()));
    }
    if let Some(first) = host_ports.first() {
        variables.push(variable("PORT", first.to_string()));
    }
    variables.push(variable("MESOS_TASK_ID", task.id.as_str()));
    variables
}

fn container(task: &Task, host_ports: &[u16], settings: &LaunchSettings) -> ContainerInfo {
    use container_info::docker_info::Network as DockerNetwork;
    let request = &task.request;
    let network = match request.network {
        Network::Bridge => DockerNetwork::Bridge,
        Network::Host => DockerNetwork::Host,
        Network::None => DockerNetwork::None,
        Network::User => DockerNetwork::User,
    };
    let publishes = matches!(request.network, Network::Bridge | Network::User);
    let port_mappings = if publishes {
        request
            .ports
            .iter()
            .zip(host_ports)
            .map(
                |(port, host_port)| container_info::docker_info::PortMapping {
                    host_port: u32::from(*host_port),
                    container_port: u32::from(match port.container_port {
                        0 => *host_port,
                        other => other,
                    }),
                    protocol: Some(port.protocol.as_str().to_owned()),
                },
            )
            .collect()
    } else {
        Vec::new()
    };
    let mut parameters: Vec<Parameter> = request
        .dns
        .iter()
        .map(|dns| Parameter {
            key: "dns".into(),
            value: dns.clone(),
        })
        .collect();
    parameters.extend(
        request
            .volumes_from
            .iter()
            .filter(|name| !name.is_empty())
            .map(|name| Parameter {
                key: "volumes-from".into(),
                value: name.clone(),
            }),
    );
    let network_infos = match (request.network, &settings.user_network) {
        (Network::User, Some(name)) => vec![NetworkInfo {
            name: Some(name.clone()),
            ..Default::default()
        }],
        _ => Vec::new(),
    };
    ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        volumes: request
            .volumes
            .iter()
            .map(|mount| Volume {
                mode: volume::Mode::Rw as i32,
                container_path: mount.container_path.clone(),
                host_path: Some(mount.host_path.clone()),
                ..Default::default()
            })
            .collect(),
        docker: Some(container_info::DockerInfo {
            image: request.image.clone(),
            network: Some(network as i32),
            port_mappings,
            privileged: Some(request.privileged),
            parameters,
            force_pull_image: Some(request.force_pull_image),
            ..Default::default()
        }),
        network_infos,
        ..Default::default()
    }
}

/// The task's labels, then ours, which win (a task must not pass for another one).
fn task_labels(task: &Task, run_id: &str, settings: &LaunchSettings, ports: &[u16]) -> Labels {
    let mut all: BTreeMap<String, String> = task.request.labels.clone();
    for (key, value) in [
        (labels::MANAGED_BY, MANAGED_BY.to_owned()),
        (labels::TASK_ID, task.id.to_string()),
        (labels::CONTAINER_ID, run_id.to_owned()),
        (labels::OWNER, settings.instance_id.clone()),
        (HOST_PORTS_LABEL, format_ports(ports)),
    ] {
        all.insert(key.to_owned(), value);
    }
    Labels {
        labels: all
            .into_iter()
            .map(|(key, value)| Label {
                key,
                value: Some(value),
            })
            .collect(),
    }
}

#[cfg(test)]
#[path = "task_info_tests.rs"]
mod tests;
