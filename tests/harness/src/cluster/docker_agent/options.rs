//! The pure half of the Docker agent: the `docker run` command lines the
//! docker executor (`Docker::RunOptions::create` then `Docker::run`,
//! `src/docker/docker.cpp`) and our stand-in for the unified containerizer
//! build, the parts of `docker inspect` the executor reads
//! (`Docker::Container::create`), and the texts of its statuses.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitStatus;

use mesos_proto::v1::container_info::{self, docker_info};
use mesos_proto::v1::{environment, volume, TaskInfo};

use crate::master::docker_run_options;

/// `CPU_SHARES_PER_CPU` (`src/slave/containerizer/mesos/isolators/cgroups/constants.hpp`).
const CPU_SHARES_PER_CPU: f64 = 1024.0;
/// `MIN_CPU_SHARES`.
const MIN_CPU_SHARES: u64 = 2;
/// `MIN_MEMORY`: 32 MB.
pub(crate) const MIN_MEMORY: u64 = 32 * MEGABYTE;
/// `CPU_CFS_PERIOD` in microseconds (100 ms).
const CPU_CFS_PERIOD_US: f64 = 100_000.0;
/// `MIN_CPU_CFS_QUOTA` in microseconds (1 ms).
const MIN_CPU_CFS_QUOTA_US: u64 = 1_000;
const MEGABYTE: u64 = 1024 * 1024;

/// Where and how a container is run: what the agent and executor pass to
/// `Docker::RunOptions::create` besides the TaskInfo.
#[derive(Debug, Clone)]
pub(crate) struct RunContext<'a> {
    /// The `docker` CLI (`--docker`).
    pub docker: &'a str,
    /// The daemon's socket (`--docker_socket`), given with `-H unix://`.
    pub socket: &'a str,
    /// The container's name.
    pub name: &'a str,
    /// The sandbox on the host.
    pub sandbox: &'a Path,
    /// The sandbox inside the container (`--sandbox_directory`).
    pub mapped: &'a str,
    /// The role the task's resources are allocated to.
    pub role: &'a str,
    /// `--cgroups_enable_cfs`.
    pub enable_cfs: bool,
}

/// Sum of the task's scalar resource `name`, or `None` without one
/// (`Resources::cpus()`, `Resources::mem()`).
pub(crate) fn scalar(task: &TaskInfo, name: &str) -> Option<f64> {
    let mut values = task
        .resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
        .peekable();
    values.peek()?;
    Some(values.sum())
}

/// The docker executor's `docker run` argument vector for a DOCKER command
/// task (program first), or the error it puts after "Failed to create
/// docker run options: ".
pub(crate) fn docker_executor_argv(
    task: &TaskInfo,
    ctx: &RunContext<'_>,
) -> Result<Vec<String>, String> {
    let container = task
        .container
        .as_ref()
        .ok_or("No docker info found in container info")?;
    let docker = container
        .docker
        .as_ref()
        .ok_or("No docker info found in container info")?;
    let command = task.command.clone().unwrap_or_default();

    let mut argv = docker_prefix(ctx);
    if docker.privileged == Some(true) {
        argv.push("--privileged".to_owned());
    }
    argv.extend(limit_args(task, ctx.enable_cfs));

    let mut env = BTreeMap::new();
    for variable in command.environment.iter().flat_map(|e| &e.variables) {
        let value = match variable.r#type() {
            environment::variable::Type::Secret => String::new(),
            _ => variable.value.clone().unwrap_or_default(),
        };
        env.insert(variable.name.clone(), value);
    }
    env.insert("MESOS_SANDBOX".to_owned(), ctx.mapped.to_owned());
    env.insert("MESOS_CONTAINER_NAME".to_owned(), ctx.name.to_owned());
    env.insert("MESOS_ALLOCATION_ROLE".to_owned(), ctx.role.to_owned());
    push_env(&mut argv, &env);

    let (volumes, volume_driver) = volume_args(container, ctx)?;
    for volume in volumes {
        argv.extend(["-v".to_owned(), volume]);
    }
    if let Some(driver) = volume_driver {
        argv.push(format!("--volume-driver={driver}"));
    }

    // Network, hostname and port rules are the master model's.
    docker_run_options(container, &task.resources)?;
    let mut network = network_name(container);
    let mut additional = Vec::new();
    let mut network_given = false;
    for parameter in &docker.parameters {
        if !network_given && (parameter.key == "net" || parameter.key == "network") {
            network = parameter.value.clone();
            network_given = true;
        } else {
            additional.push(format!("--{}={}", parameter.key, parameter.value));
        }
    }
    argv.extend(["--net".to_owned(), network]);
    if let Some(hostname) = &container.hostname {
        argv.extend(["--hostname".to_owned(), hostname.clone()]);
    }
    for mapping in &docker.port_mappings {
        let mut text = format!("{}:{}", mapping.host_port, mapping.container_port);
        if let Some(protocol) = &mapping.protocol {
            text.push('/');
            text.push_str(&protocol.to_lowercase());
        }
        argv.extend(["-p".to_owned(), text]);
    }

    let shell = command.shell.unwrap_or(true);
    let mut arguments = Vec::new();
    if shell {
        let Some(value) = &command.value else {
            return Err("Shell specified but no command value provided".to_owned());
        };
        argv.extend(["--entrypoint".to_owned(), "/bin/sh".to_owned()]);
        arguments.extend(["-c".to_owned(), value.clone()]);
    } else {
        arguments.extend(command.value.clone());
        arguments.extend(command.arguments.iter().cloned());
    }
    argv.extend(["--name".to_owned(), ctx.name.to_owned()]);
    argv.extend(additional);
    argv.push(docker.image.clone());
    argv.extend(arguments);
    Ok(argv)
}

/// The `docker run` argument vector standing for the unified containerizer
/// running a MESOS task with a Docker image under the command executor: the
/// cgroups limits of the task plus the command executor's allowance, the
/// sandbox at `ctx.mapped` as working directory, host network; a shell
/// command runs as `/bin/sh -c`, otherwise `value` with `arguments[1..]`
/// (the command executor execs `value` with `arguments` as argv). `labels`
/// mark the container as the harness's.
pub(crate) fn unified_argv(
    task: &TaskInfo,
    image: &str,
    ctx: &RunContext<'_>,
    labels: &[(String, String)],
) -> Result<Vec<String>, String> {
    let command = task.command.clone().unwrap_or_default();
    let mut argv = docker_prefix(ctx);
    let mut with_allowance = task.clone();
    with_allowance
        .resources
        .extend(super::executor_allowance(ctx.role));
    argv.extend(limit_args(&with_allowance, ctx.enable_cfs));
    let mut env = BTreeMap::new();
    for variable in command.environment.iter().flat_map(|e| &e.variables) {
        env.insert(
            variable.name.clone(),
            variable.value.clone().unwrap_or_default(),
        );
    }
    env.insert("MESOS_SANDBOX".to_owned(), ctx.mapped.to_owned());
    push_env(&mut argv, &env);
    argv.extend([
        "-v".to_owned(),
        format!("{}:{}", ctx.sandbox.display(), ctx.mapped),
        "-w".to_owned(),
        ctx.mapped.to_owned(),
        "--net".to_owned(),
        "host".to_owned(),
    ]);
    for (key, value) in labels {
        argv.extend(["--label".to_owned(), format!("{key}={value}")]);
    }
    argv.extend(["--name".to_owned(), ctx.name.to_owned()]);
    let mut arguments = Vec::new();
    if command.shell.unwrap_or(true) {
        let Some(value) = &command.value else {
            return Err("Shell specified but no command value provided".to_owned());
        };
        argv.extend(["--entrypoint".to_owned(), "/bin/sh".to_owned()]);
        arguments.extend(["-c".to_owned(), value.clone()]);
    } else if let Some(value) = &command.value {
        argv.extend(["--entrypoint".to_owned(), value.clone()]);
        arguments.extend(command.arguments.iter().skip(1).cloned());
    }
    argv.push(image.to_owned());
    argv.extend(arguments);
    Ok(argv)
}

fn docker_prefix(ctx: &RunContext<'_>) -> Vec<String> {
    vec![
        ctx.docker.to_owned(),
        "-H".to_owned(),
        format!("unix://{}", ctx.socket),
        "run".to_owned(),
    ]
}

fn push_env(argv: &mut Vec<String>, env: &BTreeMap<String, String>) {
    for (key, value) in env {
        argv.extend(["-e".to_owned(), format!("{key}={value}")]);
    }
}

/// `--cpu-shares`, `--cpu-quota` (with CFS) and `--memory` from the
/// task's requests (no limits in our proto subset).
fn limit_args(task: &TaskInfo, enable_cfs: bool) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(cpus) = scalar(task, "cpus") {
        let shares = ((CPU_SHARES_PER_CPU * cpus) as u64).max(MIN_CPU_SHARES);
        args.extend(["--cpu-shares".to_owned(), shares.to_string()]);
        if enable_cfs {
            let quota = ((CPU_CFS_PERIOD_US * cpus) as u64).max(MIN_CPU_CFS_QUOTA_US);
            args.extend(["--cpu-quota".to_owned(), quota.to_string()]);
        }
    }
    if let Some(mem) = scalar(task, "mem") {
        let bytes = (mem as u64 * MEGABYTE).max(MIN_MEMORY);
        args.extend(["--memory".to_owned(), bytes.to_string()]);
    }
    args
}

/// The volume options (`-v` values) and the volume driver
/// (`DockerInfo.volume_driver` is deprecated but still honoured).
#[allow(deprecated)]
fn volume_args(
    container: &mesos_proto::v1::ContainerInfo,
    ctx: &RunContext<'_>,
) -> Result<(Vec<String>, Option<String>), String> {
    let docker = container.docker.clone().unwrap_or_default();
    let mut volumes = Vec::new();
    let mut driver: Option<String> = None;
    for volume in &container.volumes {
        let container_path = &volume.container_path;
        let mut config = if container_path.starts_with('/') {
            container_path.clone()
        } else {
            format!("{}/{container_path}", ctx.mapped)
        };
        if let Some(host_path) = &volume.host_path {
            let host_absolute = host_path.starts_with('/');
            if !host_absolute && !container_path.starts_with('/') {
                return Err(format!(
                    "Both host_path '{host_path}' and container_path '{container_path}' \
                     of a volume are relative"
                ));
            }
            config = if !host_absolute && docker.volume_driver.is_none() {
                format!("{}/{host_path}:{config}", ctx.sandbox.display())
            } else {
                format!("{host_path}:{config}")
            };
        } else if let Some(source) = &volume.source {
            if source.r#type() != volume::source::Type::DockerVolume {
                continue; // only DOCKER_VOLUME sources reach docker
            }
            let docker_volume = source.docker_volume.clone().unwrap_or_default();
            config = format!("{}:{config}", docker_volume.name);
            if let Some(current) = docker_volume.driver {
                if driver.as_ref().is_some_and(|d| *d != current) {
                    return Err("Only one volume driver is supported".to_owned());
                }
                driver = Some(current);
            }
        } else {
            return Err("Host path or volume source is required".to_owned());
        }
        config.push_str(match volume::Mode::try_from(volume.mode) {
            Ok(volume::Mode::Rw) => ":rw",
            Ok(volume::Mode::Ro) => ":ro",
            Err(_) => return Err("Unsupported volume mode".to_owned()),
        });
        volumes.push(config);
    }
    volumes.push(format!("{}:{}", ctx.sandbox.display(), ctx.mapped));
    if let Some(wanted) = &docker.volume_driver {
        if driver.as_ref().is_some_and(|d| d != wanted) {
            return Err("Only one volume driver per task is supported".to_owned());
        }
        driver = Some(wanted.clone());
    }
    Ok((volumes, driver))
}

/// The `--net` value of a container `docker_run_options` accepted.
fn network_name(container: &mesos_proto::v1::ContainerInfo) -> String {
    let docker = container.docker.clone().unwrap_or_default();
    match docker.network() {
        docker_info::Network::Host => "host".to_owned(),
        docker_info::Network::Bridge => "bridge".to_owned(),
        docker_info::Network::None => "none".to_owned(),
        docker_info::Network::User => container
            .network_infos
            .first()
            .and_then(|n| n.name.clone())
            .unwrap_or_default(),
    }
}

/// The Docker image of a MESOS container, if it has one.
pub(crate) fn mesos_docker_image(container: &mesos_proto::v1::ContainerInfo) -> Option<String> {
    if container.r#type != container_info::Type::Mesos as i32 {
        return None;
    }
    let image = container.mesos.as_ref()?.image.as_ref()?;
    image.docker.as_ref().map(|d| d.name.clone())
}

/// What the docker executor reads from `docker inspect`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Inspected {
    /// `State.StartedAt` is not Docker's zero time.
    pub started: bool,
    /// `State.Pid` when not 0.
    pub pid: Option<u32>,
    /// The IPv4 address on the container's network mode, when not empty.
    pub ip: Option<String>,
    /// The global IPv6 address there, when not empty.
    pub ip6: Option<String>,
    /// `State.OOMKilled`.
    pub oom_killed: bool,
}

/// Parses `docker inspect` output (an array of exactly one container).
pub(crate) fn parse_inspect(output: &str) -> Result<Inspected, String> {
    let parsed: serde_json::Value =
        serde_json::from_str(output).map_err(|e| format!("Failed to parse JSON: {e}"))?;
    let [container] = parsed.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err("Failed to find container".to_owned());
    };
    let state = container
        .get("State")
        .ok_or("Unable to find State in container")?;
    let pid = state
        .get("Pid")
        .and_then(serde_json::Value::as_u64)
        .ok_or("Unable to find Pid in State")?;
    let started_at = state
        .get("StartedAt")
        .and_then(serde_json::Value::as_str)
        .ok_or("Unable to find StartedAt in State")?;
    let text = |value: Option<&serde_json::Value>| {
        value
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mode = container
        .pointer("/HostConfig/NetworkMode")
        .and_then(|m| m.as_str());
    let (ip, ip6) = match mode.and_then(|m| container.pointer("/NetworkSettings/Networks")?.get(m))
    {
        Some(network) => (
            text(network.get("IPAddress")),
            text(network.get("GlobalIPv6Address")),
        ),
        None => (text(container.pointer("/NetworkSettings/IPAddress")), None),
    };
    Ok(Inspected {
        started: started_at != "0001-01-01T00:00:00Z",
        pid: u32::try_from(pid).ok().filter(|p| *p != 0),
        ip,
        ip6,
        oom_killed: state
            .get("OOMKilled")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    })
}

/// `WSTRINGIFY`: "exited with status N" or "terminated with signal NAME".
pub(crate) fn wstringify(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("terminated with signal {}", signal_name(signal)),
        (None, None) => "wait status unknown".to_owned(),
    }
}

/// glibc's `strsignal` for the signals a CLI process can die of here.
fn signal_name(signal: i32) -> String {
    match signal {
        1 => "Hangup".to_owned(),
        2 => "Interrupt".to_owned(),
        3 => "Quit".to_owned(),
        6 => "Aborted".to_owned(),
        9 => "Killed".to_owned(),
        11 => "Segmentation fault".to_owned(),
        13 => "Broken pipe".to_owned(),
        15 => "Terminated".to_owned(),
        other => format!("Unknown signal {other}"),
    }
}

/// `Bytes`' output operator: the largest unit that divides evenly.
pub(crate) fn bytes_text(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    for (size, unit) in UNITS {
        if bytes != 0 && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
