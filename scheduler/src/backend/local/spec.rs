//! A task's run as a container specification: the one translation of an Eremetic request into
//! Docker terms (the containerizer's runtime does the rest). Pure.

use std::path::{Path, PathBuf};

use deimos::spec::{
    labels, Command, ContainerSpec, EnvVar, Limits, NetworkMode, PortMapping, Protocol, Sandbox,
    VolumeMount, DEFAULT_SANDBOX_MOUNT,
};

use crate::backend::Allocation;
use crate::task::{Network, PortProtocol, Task};

/// The value of the [`labels::MANAGED_BY`] label on the scheduler's containers.
pub const MANAGED_BY: &str = "eremetic";

/// Label holding the run's host ports (comma-separated, in request order), so that a restarted
/// scheduler knows which ports a recovered run holds, also in host networking where Docker
/// records no port binding.
pub const HOST_PORTS_LABEL: &str = "io.eremetic.host-ports";

/// The run id (and container name) of an attempt: `<task id>.<attempt>`.
pub fn run_id(task: &Task, attempt: u32) -> String {
    format!("{}.{attempt}", task.id)
}

/// The container specification of attempt `attempt` of `task`, with the reserved
/// `allocation`, the task's `sandbox` directory on the host, this scheduler's `instance_id`
/// (the owner label) and the Docker network used for the `USER` network mode.
///
/// Eremetic semantics: a `command` runs as `sh -c <command>` and `args` are then ignored;
/// otherwise `args` are the arguments of the image's ENTRYPOINT (Docker `Cmd` with the
/// entrypoint left alone); with neither, the image's default command runs.
///
/// `USER` without a configured network falls back to the default bridge; the backend refuses
/// such tasks before they get here ([`crate::backend::Backend::admissible`]).
pub fn container_spec(
    task: &Task,
    attempt: u32,
    allocation: &Allocation,
    sandbox: &Path,
    instance_id: &str,
    user_network: Option<&str>,
) -> ContainerSpec {
    let request = &task.request;
    let run = run_id(task, attempt);
    let network = network_mode(request.network, user_network);
    let publishes = matches!(network, NetworkMode::Bridge | NetworkMode::User(_));
    ContainerSpec {
        name: Some(run.clone()),
        image: request.image.clone(),
        command: command(request.command.as_deref(), &request.args),
        entrypoint: None,
        env: environment(task, &allocation.host_ports),
        ports: if publishes {
            port_mappings(task, &allocation.host_ports)
        } else {
            Vec::new()
        },
        limits: Limits::from_allocation(Some(allocation.cpus), Some(allocation.mem_mib), true),
        volumes: request
            .volumes
            .iter()
            .map(|volume| VolumeMount {
                host_path: PathBuf::from(&volume.host_path),
                container_path: volume.container_path.clone(),
                read_only: false,
            })
            .collect(),
        volumes_from: request.volumes_from.clone(),
        network,
        dns: request.dns.iter().cloned().collect(),
        privileged: request.privileged,
        user: request.user.as_deref().map(docker_user),
        labels: container_labels(task, &run, instance_id, &allocation.host_ports),
        sandbox: Some(Sandbox {
            host_dir: sandbox.to_owned(),
            container_dir: DEFAULT_SANDBOX_MOUNT.to_owned(),
        }),
        force_pull: request.force_pull_image,
        ..ContainerSpec::default()
    }
}

/// The Docker `User` of a task's user: `root` is given as uid `0`, which Docker resolves
/// without the image's `/etc/passwd` (images built `FROM scratch` have none, and Docker refuses
/// to start a container whose named user it cannot look up); any other name goes as it is.
fn docker_user(user: &str) -> String {
    match user {
        "root" => "0".to_owned(),
        other => other.to_owned(),
    }
}

fn command(command: Option<&str>, args: &[String]) -> Command {
    match command {
        Some(line) if !line.is_empty() => Command::Shell(line.to_owned()),
        // `Argv` becomes Docker's `Cmd`; with `entrypoint: None` the image's ENTRYPOINT stays
        // and receives these arguments, as Mesos runs `shell: false` commands.
        _ if !args.is_empty() => Command::Argv(args.to_vec()),
        _ => Command::ImageDefault,
    }
}

fn network_mode(network: Network, user_network: Option<&str>) -> NetworkMode {
    match (network, user_network) {
        (Network::Bridge, _) | (Network::User, None) => NetworkMode::Bridge,
        (Network::Host, _) => NetworkMode::Host,
        (Network::None, _) => NetworkMode::None,
        (Network::User, Some(name)) => NetworkMode::User(name.to_owned()),
    }
}

/// Eremetic's order: `env`, then `masked_env` (in clear: the container needs the values),
/// then `PORT0..PORTn-1` (the host port of requested port i; Eremetic numbered them backwards,
/// E-7), `PORT` = `PORT0`, `MESOS_TASK_ID`, `MESOS_SANDBOX`. A later entry wins over an earlier
/// one of the same name.
fn environment(task: &Task, host_ports: &[u16]) -> Vec<EnvVar> {
    let request = &task.request;
    let mut env: Vec<EnvVar> = request
        .env
        .iter()
        .map(|(name, value)| EnvVar::new(name, value))
        .collect();
    env.extend(
        request
            .masked_env
            .iter()
            .map(|(name, secret)| EnvVar::new(name, secret.expose())),
    );
    for (index, port) in host_ports.iter().enumerate() {
        env.push(EnvVar::new(format!("PORT{index}"), port.to_string()));
    }
    if let Some(first) = host_ports.first() {
        env.push(EnvVar::new("PORT", first.to_string()));
    }
    env.push(EnvVar::new("MESOS_TASK_ID", task.id.as_str()));
    env.push(EnvVar::new("MESOS_SANDBOX", DEFAULT_SANDBOX_MOUNT));
    env
}

fn port_mappings(task: &Task, host_ports: &[u16]) -> Vec<PortMapping> {
    task.request
        .ports
        .iter()
        .zip(host_ports)
        .map(|(request, host_port)| PortMapping {
            host_port: *host_port,
            // 0 asks for the same port inside as outside (Eremetic's rule).
            container_port: match request.container_port {
                0 => *host_port,
                port => port,
            },
            protocol: match request.protocol {
                PortProtocol::Tcp => Protocol::Tcp,
                PortProtocol::Udp => Protocol::Udp,
            },
        })
        .collect()
}

/// The task's labels, then ours, which win: a task must not be able to pass for another
/// task or another scheduler's container.
fn container_labels(
    task: &Task,
    run: &str,
    instance_id: &str,
    host_ports: &[u16],
) -> std::collections::BTreeMap<String, String> {
    let mut all = task.request.labels.clone();
    let ours = [
        (labels::MANAGED_BY, MANAGED_BY.to_owned()),
        (labels::TASK_ID, task.id.to_string()),
        (labels::CONTAINER_ID, run.to_owned()),
        (labels::OWNER, instance_id.to_owned()),
        (HOST_PORTS_LABEL, format_ports(host_ports)),
    ];
    for (key, value) in ours {
        all.insert(key.to_owned(), value);
    }
    all
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

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
