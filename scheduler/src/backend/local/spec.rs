//! A run plan as a Docker container specification: the local backend's thin renderer of
//! [`RunPlan`] (the meaning of the task is in [`crate::plan`]; the containerizer's runtime does
//! the rest). Pure.

use std::path::Path;

use deimos_runtime::fetch::UriSpec;
use deimos_runtime::spec::{
    Command, ContainerSpec, EnvVar, Limits, NetworkMode, PortMapping, Protocol, Sandbox,
    VolumeMount, DEFAULT_SANDBOX_MOUNT,
};

pub use crate::plan::{format_ports, parse_ports, HOST_PORTS_LABEL, MANAGED_BY};
use crate::plan::{PlanCommand, PlanNetwork, RunPlan};
use crate::task::PortProtocol;

/// The container specification of `plan`, with the task's `sandbox` directory on the host
/// (mounted at [`DEFAULT_SANDBOX_MOUNT`]).
///
/// What the local engine adds to the plan, as a Mesos agent would: `MESOS_SANDBOX` at the end
/// of the environment; sandbox-relative host paths joined to `sandbox` (the backend resolves
/// their links first, see `volumes`); the container named after the run; `root` given as
/// uid 0 (see [`docker_user`]).
pub fn container_spec(plan: &RunPlan, sandbox: &Path) -> ContainerSpec {
    let mut env: Vec<EnvVar> = plan
        .env
        .iter()
        .map(|var| EnvVar::new(&var.name, &var.value))
        .collect();
    env.push(EnvVar::new("MESOS_SANDBOX", DEFAULT_SANDBOX_MOUNT));
    ContainerSpec {
        name: Some(plan.run_id.clone()),
        image: plan.image.clone(),
        command: command(&plan.command),
        entrypoint: None,
        env,
        ports: plan
            .ports
            .iter()
            .map(|port| PortMapping {
                host_port: port.host_port,
                container_port: port.container_port,
                protocol: match port.protocol {
                    PortProtocol::Tcp => Protocol::Tcp,
                    PortProtocol::Udp => Protocol::Udp,
                },
            })
            .collect(),
        limits: Limits::from_allocation(Some(plan.cpus), Some(plan.mem_mib), true),
        volumes: plan
            .volumes
            .iter()
            .map(|volume| VolumeMount {
                // Normalised by the plan: a relative path has no `..` left.
                host_path: if volume.in_sandbox() {
                    sandbox.join(&volume.host_path)
                } else {
                    volume.host_path.clone().into()
                },
                container_path: volume.container_path.clone(),
                read_only: false,
            })
            .collect(),
        volumes_from: plan.volumes_from.clone(),
        network: match &plan.network {
            PlanNetwork::Bridge => NetworkMode::Bridge,
            PlanNetwork::Host => NetworkMode::Host,
            PlanNetwork::None => NetworkMode::None,
            PlanNetwork::User(name) => NetworkMode::User(name.clone()),
        },
        dns: plan.dns.clone(),
        privileged: plan.privileged,
        user: plan.user.as_deref().map(docker_user),
        labels: plan.labels.clone(),
        sandbox: Some(Sandbox {
            host_dir: sandbox.to_owned(),
            container_dir: DEFAULT_SANDBOX_MOUNT.to_owned(),
        }),
        force_pull: plan.force_pull,
        ..ContainerSpec::default()
    }
}

/// The plan's fetch URIs for `deimos_runtime::fetch` (into the sandbox, before the container
/// starts; `cache` URIs through the backend's fetch cache).
pub fn fetch_uris(plan: &RunPlan) -> Vec<UriSpec> {
    plan.fetch
        .iter()
        .map(|uri| UriSpec {
            value: uri.uri.clone(),
            executable: uri.executable,
            extract: uri.extract,
            output_file: None,
            cache: uri.cache,
        })
        .collect()
}

/// The Docker `User` of a task's user: `root` is given as uid `0`, which Docker resolves
/// without the image's `/etc/passwd` (images built `FROM scratch` have none, and Docker refuses
/// to start a container whose named user it cannot look up); any other name goes as it is.
pub fn docker_user(user: &str) -> String {
    match user {
        "root" => "0".to_owned(),
        other => other.to_owned(),
    }
}

fn command(command: &PlanCommand) -> Command {
    match command {
        PlanCommand::Shell(line) => Command::Shell(line.clone()),
        PlanCommand::Entrypoint(args) if args.is_empty() => Command::ImageDefault,
        // `Argv` becomes Docker's `Cmd`; with `entrypoint: None` the image's ENTRYPOINT stays
        // and receives these arguments, as Mesos runs `shell: false` commands.
        PlanCommand::Entrypoint(args) => Command::Argv(args.clone()),
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
