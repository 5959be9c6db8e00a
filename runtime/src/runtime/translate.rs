//! Pure translation of a [`ContainerSpec`] (and limit updates) into Docker Engine API requests.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, HostConfig, Mount, MountType, PortBinding, PortMap,
};
use bollard::query_parameters::CreateContainerOptions;

use super::error::RuntimeError;
use crate::spec::{ContainerSpec, EnvVar, Limits, PortMapping};

/// The CFS period used for CPU quotas, in microseconds (Docker's and the kernel's default).
pub const CPU_PERIOD_MICROS: i64 = 100_000;

/// The smallest CFS quota the kernel accepts, in microseconds.
const MIN_CPU_QUOTA_MICROS: i64 = 1_000;

/// A container creation request: query options (the name) and body.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    /// Query parameters of `POST /containers/create`.
    pub options: CreateContainerOptions,
    /// Request body.
    pub body: ContainerCreateBody,
}

/// Translates a specification into a container creation request.
///
/// Bind mounts (volumes and the sandbox) use `HostConfig.Mounts`, never `Binds`: the `Binds`
/// syntax `src:dst:mode` cannot express a host path containing `:`, which Mesos sandbox paths
/// may contain. Unlike `Binds`, `Mounts` does not create a missing host directory; the caller
/// creates the sandbox and volume sources first.
pub fn create_request(spec: &ContainerSpec) -> Result<CreateRequest, RuntimeError> {
    let (exposed_ports, port_bindings) = port_maps(&spec.ports);
    let host_config = HostConfig {
        port_bindings: non_empty_map(port_bindings),
        mounts: non_empty(mounts(spec)),
        volumes_from: non_empty(spec.volumes_from.clone()),
        network_mode: Some(spec.network.as_docker()),
        dns: non_empty(spec.dns.clone()),
        extra_hosts: non_empty(spec.extra_hosts.clone()),
        cap_add: non_empty(spec.cap_add.clone()),
        cap_drop: non_empty(spec.cap_drop.clone()),
        privileged: spec.privileged.then_some(true),
        ..limits_host_config(&spec.limits)?
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.to_argv(),
        entrypoint: spec.entrypoint.clone(),
        env: non_empty(env_entries(&spec.env)?),
        exposed_ports: non_empty(exposed_ports),
        hostname: spec.hostname.clone(),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        labels: (!spec.labels.is_empty()).then(|| to_hash_map(&spec.labels)),
        host_config: Some(host_config),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: spec.name.clone(),
        ..Default::default()
    };
    Ok(CreateRequest { options, body })
}

/// Translates new limits of a running container into an update request. Limits left `None`
/// are not changed.
pub fn update_request(limits: &Limits) -> Result<ContainerUpdateBody, RuntimeError> {
    let host = limits_host_config(limits)?;
    Ok(ContainerUpdateBody {
        cpu_shares: host.cpu_shares,
        cpu_period: host.cpu_period,
        cpu_quota: host.cpu_quota,
        memory: host.memory,
        memory_swap: host.memory_swap,
        ..Default::default()
    })
}

/// The resource part of a host configuration.
///
/// `MemorySwap` is set equal to `Memory` so that swap cannot extend the limit: Docker's
/// `MemorySwap` is memory plus swap, and leaving it unset would allow as much swap again as
/// memory. On hosts without swap accounting Docker ignores it with a warning.
fn limits_host_config(limits: &Limits) -> Result<HostConfig, RuntimeError> {
    let memory = limits
        .memory_bytes
        .map(|bytes| {
            i64::try_from(bytes).map_err(|_| RuntimeError::InvalidSpec {
                field: "limits.memory_bytes",
                reason: format!("{bytes} bytes exceeds the largest limit Docker accepts"),
            })
        })
        .transpose()?;
    let cpu_shares = limits
        .cpu_shares
        .map(|shares| {
            i64::try_from(shares).map_err(|_| RuntimeError::InvalidSpec {
                field: "limits.cpu_shares",
                reason: format!("{shares} shares exceeds the largest weight Docker accepts"),
            })
        })
        .transpose()?;
    let cpu_quota = limits.cpu_quota.map(cpu_quota_micros).transpose()?;
    Ok(HostConfig {
        cpu_shares,
        cpu_period: cpu_quota.map(|_| CPU_PERIOD_MICROS),
        cpu_quota,
        memory,
        memory_swap: memory,
        ..Default::default()
    })
}

/// The CFS quota, in microseconds per [`CPU_PERIOD_MICROS`], that limits a container to `cpus`
/// CPUs; raised to the kernel's minimum of 1000 µs for tiny allocations.
pub fn cpu_quota_micros(cpus: f64) -> Result<i64, RuntimeError> {
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(RuntimeError::InvalidSpec {
            field: "limits.cpu_quota",
            reason: format!("{cpus} CPUs is not a positive number"),
        });
    }
    let quota = (cpus * CPU_PERIOD_MICROS as f64).round();
    if quota >= i64::MAX as f64 {
        return Err(RuntimeError::InvalidSpec {
            field: "limits.cpu_quota",
            reason: format!("{cpus} CPUs exceeds the largest quota Docker accepts"),
        });
    }
    Ok((quota as i64).max(MIN_CPU_QUOTA_MICROS))
}

/// `NAME=value` entries; when a name repeats, only its last occurrence is kept (in the position
/// of that last occurrence), so that Docker does not see conflicting definitions.
///
/// Errors name the variable, never its value (values may be secrets).
pub fn env_entries(env: &[EnvVar]) -> Result<Vec<String>, RuntimeError> {
    let mut last_index: HashMap<&str, usize> = HashMap::new();
    for (index, var) in env.iter().enumerate() {
        if var.name.is_empty() || var.name.contains('=') || var.name.contains('\0') {
            return Err(RuntimeError::InvalidSpec {
                field: "env",
                reason: format!(
                    "variable name {:?} is empty or contains `=` or NUL",
                    var.name
                ),
            });
        }
        if var.value.contains('\0') {
            return Err(RuntimeError::InvalidSpec {
                field: "env",
                reason: format!("the value of variable {} contains NUL", var.name),
            });
        }
        last_index.insert(var.name.as_str(), index);
    }
    Ok(env
        .iter()
        .enumerate()
        .filter(|(index, var)| last_index.get(var.name.as_str()) == Some(index))
        .map(|(_, var)| format!("{}={}", var.name, var.value))
        .collect())
}

/// The `ExposedPorts` keys and `PortBindings` of the published ports (`80/tcp`, `53/udp`).
/// Several host ports may forward to one container port. Host port 0 lets Docker choose.
pub fn port_maps(ports: &[PortMapping]) -> (Vec<String>, PortMap) {
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings = PortMap::new();
    for mapping in ports {
        let key = format!("{}/{}", mapping.container_port, mapping.protocol.as_str());
        let host_port = match mapping.host_port {
            0 => String::new(),
            port => port.to_string(),
        };
        let binding = PortBinding {
            host_ip: None,
            host_port: Some(host_port),
        };
        match bindings.get_mut(&key) {
            Some(Some(list)) => list.push(binding),
            _ => {
                exposed.push(key.clone());
                bindings.insert(key, Some(vec![binding]));
            }
        }
    }
    (exposed, bindings)
}

/// Bind mounts of the volumes, then of the sandbox.
pub fn mounts(spec: &ContainerSpec) -> Vec<Mount> {
    let volumes = spec.volumes.iter().map(|volume| {
        bind_mount(
            &volume.host_path.to_string_lossy(),
            &volume.container_path,
            volume.read_only,
        )
    });
    let sandbox = spec.sandbox.iter().map(|sandbox| {
        bind_mount(
            &sandbox.host_dir.to_string_lossy(),
            &sandbox.container_dir,
            false,
        )
    });
    volumes.chain(sandbox).collect()
}

fn bind_mount(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountType::BIND),
        source: Some(source.to_owned()),
        target: Some(target.to_owned()),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// Splits an image reference into the `fromImage` and `tag` parameters of a pull.
///
/// A missing tag means `latest`: Docker would otherwise pull every tag of the repository.
/// A digest reference (`name@sha256:...`) is passed whole, without a tag.
pub fn pull_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_owned(), None);
    }
    let last_slash = image.rfind('/').map_or(0, |index| index + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let split = last_slash + colon;
            (
                image[..split].to_owned(),
                Some(image[split + 1..].to_owned()),
            )
        }
        None => (image.to_owned(), Some("latest".to_owned())),
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn non_empty_map<K, V>(map: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

fn to_hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}
