//! A container description independent of Mesos protobuf, REST bodies and Docker.
//!
//! Every front end (the external containerizer's `launch`, the scheduler's REST API, the
//! executor) translates its input into a [`ContainerSpec`] with pure functions; only
//! [`crate::runtime`] turns a spec into Docker Engine API calls.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Label keys put on every container this crate creates, so that it can be found again after a
/// crash of whoever created it (containerizer, scheduler or executor).
pub mod labels {
    /// Marks a container as created by this stack; the value names the creator
    /// (`deimos`, `eremetic`, `deimos-executor`).
    pub const MANAGED_BY: &str = "io.deimos.managed-by";
    /// The Mesos container id (or the scheduler's task run id).
    pub const CONTAINER_ID: &str = "io.deimos.container-id";
    /// The Mesos task id, when the container runs a task.
    pub const TASK_ID: &str = "io.deimos.task-id";
    /// The Mesos executor id.
    pub const EXECUTOR_ID: &str = "io.deimos.executor-id";
    /// The Mesos framework id.
    pub const FRAMEWORK_ID: &str = "io.deimos.framework-id";
    /// The process instance of `deimos-executor` that runs the container (a random id per
    /// executor process): its watchdog removes the instance's containers when it dies.
    pub const EXECUTOR_INSTANCE: &str = "io.deimos.executor-instance";
    /// Identifies the agent instance (its work directory) or scheduler instance that owns the
    /// container, so that two agents on one host never adopt each other's containers.
    pub const OWNER: &str = "io.deimos.owner";
}

/// Where the mesos sandbox is mounted inside a container unless configured otherwise.
pub const DEFAULT_SANDBOX_MOUNT: &str = "/mnt/mesos/sandbox";

/// Everything needed to create and start one container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    /// Docker container name; `None` lets Docker pick one.
    pub name: Option<String>,
    /// Image reference as Docker understands it (`busybox:latest`, `registry:5000/a/b:tag`).
    pub image: String,
    /// What to run.
    pub command: Command,
    /// Replaces the image's entrypoint when set (an empty list clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Environment, in order; a later entry with the same name wins.
    pub env: Vec<EnvVar>,
    /// Published ports.
    pub ports: Vec<PortMapping>,
    /// CPU and memory limits.
    pub limits: Limits,
    /// Bind mounts from the host.
    pub volumes: Vec<VolumeMount>,
    /// Containers whose volumes are mounted too (`docker run --volumes-from`).
    pub volumes_from: Vec<String>,
    /// Network mode.
    pub network: NetworkMode,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Extra `/etc/hosts` entries as `host:ip`.
    pub extra_hosts: Vec<String>,
    /// Linux capabilities to add.
    pub cap_add: Vec<String>,
    /// Linux capabilities to drop.
    pub cap_drop: Vec<String>,
    /// Container host name.
    pub hostname: Option<String>,
    /// Run privileged.
    pub privileged: bool,
    /// User (name, uid or uid:gid) inside the container.
    pub user: Option<String>,
    /// Container labels (including the identifying ones of [`labels`]).
    pub labels: BTreeMap<String, String>,
    /// Working directory inside the container.
    pub working_dir: Option<String>,
    /// The task sandbox: a host directory mounted into the container, also where the
    /// container's stdout and stderr are written.
    pub sandbox: Option<Sandbox>,
    /// Pull the image even when it is present locally.
    pub force_pull: bool,
    /// Credentials for pulling the image.
    pub registry_auth: Option<RegistryAuth>,
}

/// What a container runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Command {
    /// The image's default command (and entrypoint unless overridden).
    #[default]
    ImageDefault,
    /// A shell command line, run as `sh -c <line>`.
    Shell(String),
    /// An argument vector, executed directly (`argv[0]` is the program).
    Argv(Vec<String>),
}

impl Command {
    /// The argument vector handed to Docker as `Cmd`, `None` for the image default.
    pub fn to_argv(&self) -> Option<Vec<String>> {
        match self {
            Command::ImageDefault => None,
            Command::Shell(line) => Some(vec!["sh".into(), "-c".into(), line.clone()]),
            Command::Argv(argv) => Some(argv.clone()),
        }
    }
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Variable value. Never log it: it may be a secret.
    pub value: String,
}

impl EnvVar {
    /// Builds a variable.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The name Docker uses (`tcp`, `udp`, `sctp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// Parses `tcp`, `udp` or `sctp` (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

/// One published port: `host_port` on the host forwards to `container_port` in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortMapping {
    /// Port on the host; 0 lets Docker choose.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// Resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// CPU shares (relative weight; Docker's default is 1024 = one CPU's worth).
    pub cpu_shares: Option<u64>,
    /// Hard CPU limit in CPUs, enforced as a CFS quota.
    pub cpu_quota: Option<f64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
}

impl Limits {
    /// Shares for a number of CPUs, as Mesos and Deimos compute them (`cpus × 1024`).
    pub fn shares_for_cpus(cpus: f64) -> u64 {
        // Docker rejects shares below 2.
        ((cpus * 1024.0) as u64).max(2)
    }

    /// The limits for a Mesos-style allocation: `cpus` CPUs (shares, and a CFS quota when
    /// `cfs_quota` is set) and `mem_mb` megabytes of memory.
    pub fn from_allocation(cpus: Option<f64>, mem_mb: Option<f64>, cfs_quota: bool) -> Self {
        let cpus = cpus.filter(|c| *c > 0.0);
        Limits {
            cpu_shares: cpus.map(Self::shares_for_cpus),
            cpu_quota: if cfs_quota { cpus } else { None },
            memory_bytes: mem_mb
                .filter(|m| *m > 0.0)
                .map(|m| (m * 1024.0 * 1024.0) as u64),
        }
    }
}

/// A bind mount from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// Absolute path on the host (may contain `:`).
    pub host_path: PathBuf,
    /// Absolute path inside the container.
    pub container_path: String,
    /// Mount read-only.
    pub read_only: bool,
}

/// Container network mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Docker's default bridge network.
    #[default]
    Bridge,
    /// The host's network stack.
    Host,
    /// No network.
    None,
    /// A user-defined Docker network, by name.
    User(String),
    /// Another container's network stack (`container:<name|id>`).
    Container(String),
}

impl NetworkMode {
    /// The value of Docker's `HostConfig.NetworkMode`.
    pub fn as_docker(&self) -> String {
        match self {
            NetworkMode::Bridge => "bridge".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::None => "none".into(),
            NetworkMode::User(name) => name.clone(),
            NetworkMode::Container(target) => format!("container:{target}"),
        }
    }

    /// Parses a `--net` value: `bridge`, `host`, `none`, `container:<x>` or a network name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" => None,
            "bridge" | "default" => Some(NetworkMode::Bridge),
            "host" => Some(NetworkMode::Host),
            "none" => Some(NetworkMode::None),
            other => match other.strip_prefix("container:") {
                Some("") => None,
                Some(target) => Some(NetworkMode::Container(target.into())),
                None => Some(NetworkMode::User(other.into())),
            },
        }
    }
}

/// The task sandbox directory and where the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// Directory on the host (may contain `:`).
    pub host_dir: PathBuf,
    /// Mount point inside the container (e.g. [`DEFAULT_SANDBOX_MOUNT`]).
    pub container_dir: String,
}

/// Registry credentials for an image pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or token. Never log it.
    pub password: String,
    /// Registry server address, e.g. `registry.example.com:5000`.
    pub server: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_command_runs_through_sh_c() {
        let argv = Command::Shell("echo hi; exit 3".into()).to_argv();
        assert_eq!(
            argv,
            Some(vec!["sh".into(), "-c".into(), "echo hi; exit 3".into()])
        );
        assert_eq!(Command::ImageDefault.to_argv(), None);
    }

    #[test]
    fn allocation_maps_cpus_to_shares_and_optional_quota() {
        let limits = Limits::from_allocation(Some(2.0), Some(1024.0), false);
        assert_eq!(limits.cpu_shares, Some(2048));
        assert_eq!(limits.cpu_quota, None);
        assert_eq!(limits.memory_bytes, Some(1024 * 1024 * 1024));
        let limits = Limits::from_allocation(Some(0.5), None, true);
        assert_eq!(limits.cpu_shares, Some(512));
        assert_eq!(limits.cpu_quota, Some(0.5));
        assert_eq!(limits.memory_bytes, None);
    }

    #[test]
    fn tiny_cpu_allocation_still_gives_valid_shares() {
        assert_eq!(Limits::shares_for_cpus(0.001), 2);
    }

    #[test]
    fn network_mode_parses_docker_values() {
        assert_eq!(NetworkMode::parse("host"), Some(NetworkMode::Host));
        assert_eq!(
            NetworkMode::parse("container:abc"),
            Some(NetworkMode::Container("abc".into()))
        );
        assert_eq!(
            NetworkMode::parse("mynet"),
            Some(NetworkMode::User("mynet".into()))
        );
        assert_eq!(NetworkMode::parse("container:"), None);
        assert_eq!(NetworkMode::User("mynet".into()).as_docker(), "mynet");
    }
}
