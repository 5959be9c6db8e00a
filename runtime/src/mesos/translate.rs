//! Pure translation of an external containerizer `Launch` message into a [`LaunchPlan`].
//!
//! No I/O happens here: the process environment, the configuration and the working directory
//! are inputs, so every rule is unit-tested with plain values. The rules are documented in the
//! crate README ("How a launch becomes a container").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mesos_proto::containerizer::Launch;
use mesos_proto::mesos::{self, container_info, value};

use super::ports;
use crate::fetch::UriSpec;
use crate::options;
use crate::policy::{ContainerPolicy, PolicyError};
use crate::spec::{
    labels, Command, ContainerSpec, EnvVar, Limits, NetworkMode, PortMapping, Protocol, Sandbox,
    VolumeMount,
};

/// Settings of the configuration that shape a launch.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslateSettings {
    /// `[containers.image] default`: image used when the task names none (or when ignoring).
    pub default_image: Option<String>,
    /// `[containers.image] ignore`: always use the default image.
    pub ignore_image: bool,
    /// `[containers.options] default`: options used when the task gives none.
    pub default_options: Vec<String>,
    /// `[containers.options] append`: options always appended.
    pub append_options: Vec<String>,
    /// `[containers.options] ignore`: ignore the task's options.
    pub ignore_options: bool,
    /// Where the sandbox is mounted inside the container.
    pub sandbox_mount: String,
    /// Working directory inside the container (default: the sandbox mount).
    pub workdir: Option<String>,
    /// Enforce the CPU allocation as a CFS quota in addition to shares.
    pub cfs_quota: bool,
    /// Value of the `io.deimos.owner` label: the agent instance (its work directory).
    pub owner: Option<String>,
    /// Deimos' last resort when no image is named anywhere: an image named after the host's
    /// distribution (`[docker.index]`, `/etc/os-release`).
    pub image_guess: Option<ImageGuess>,
    /// `[policy]`: what the container may ask of the host (checked here as written; the
    /// launcher resolves host paths again right before creating the container).
    pub policy: ContainerPolicy,
}

/// How Deimos guessed an image from the host: `[<index>/][<account>/]<os id>:<os version>`,
/// lower-cased, where account is `account_libmesos` for executor launches and `account` for
/// command tasks (e.g. `libmesos/ubuntu:14.04`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageGuess {
    /// `[docker.index] index`.
    pub index: Option<String>,
    /// `[docker.index] account_libmesos`.
    pub account_libmesos: Option<String>,
    /// `[docker.index] account`.
    pub account: Option<String>,
    /// `ID` and `VERSION_ID` of `/etc/os-release`.
    pub os: (String, String),
}

impl ImageGuess {
    /// The guessed image for a command task or an executor launch.
    pub fn image(&self, command_task: bool) -> String {
        let account = if command_task {
            &self.account
        } else {
            &self.account_libmesos
        };
        let (id, version) = &self.os;
        let name = format!("{id}:{version}").to_lowercase();
        [
            self.index.as_deref(),
            account.as_deref(),
            Some(name.as_str()),
        ]
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("/")
    }
}

/// `ID` and `VERSION_ID` from the text of `/etc/os-release`.
pub fn parse_os_release(text: &str) -> Option<(String, String)> {
    let field = |key: &str| {
        text.lines()
            .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
            .map(|value| value.trim().trim_matches('"').trim_matches('\'').to_owned())
            .find(|value| !value.is_empty())
    };
    Some((field("ID")?, field("VERSION_ID")?))
}

impl Default for TranslateSettings {
    fn default() -> Self {
        Self {
            default_image: None,
            ignore_image: false,
            default_options: Vec::new(),
            append_options: Vec::new(),
            ignore_options: false,
            sandbox_mount: crate::spec::DEFAULT_SANDBOX_MOUNT.into(),
            workdir: None,
            cfs_quota: false,
            owner: None,
            image_guess: None,
            policy: ContainerPolicy::default(),
        }
    }
}

/// Whether the launch runs a command task (an observer executor reports its status) or a
/// custom executor inside the container (it registers with the agent itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchKind {
    /// `Launch.task_info` was set: run the task's command; start an observer executor.
    CommandTask {
        /// The task id (also the executor id Mesos made for it).
        task_id: String,
        /// The task name, exported as `TASK_INFO`.
        task_name: String,
    },
    /// Only `Launch.executor_info`: the executor's command runs inside the container.
    Executor,
}

/// Everything `launch` needs, derived from the message without I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    /// The Mesos container id.
    pub container_id: String,
    /// Executor id (the task id for command tasks).
    pub executor_id: String,
    /// Framework id, when known.
    pub framework_id: Option<String>,
    /// Command task or executor launch.
    pub kind: LaunchKind,
    /// The Mesos sandbox on the host.
    pub sandbox_dir: PathBuf,
    /// The container to create. Port publishing may still be completed by
    /// [`LaunchPlan::pair_with_exposed`] once the image's exposed ports are known.
    pub spec: ContainerSpec,
    /// URIs to fetch into the sandbox before the container starts.
    pub uris: Vec<UriSpec>,
    /// The `Launch`'s `user` (the framework's user, sent by an agent with `--switch_user`;
    /// Deimos ignored it) when neither the command nor a `-u` option names one. It is a host
    /// account: the launcher runs the container as its uid:gid when it exists on this host
    /// ([`LaunchPlan::apply_switch_user`]).
    pub switch_user: Option<String>,
    /// Host ports Mesos allocated to the container.
    pub allocated_ports: Vec<u16>,
    /// True when no explicit mapping was given, so allocated ports are paired with the image's
    /// exposed ports (bridge and user networks only).
    pub pair_with_exposed: bool,
}

impl LaunchPlan {
    /// Runs the container as the host account of [`LaunchPlan::switch_user`], numerically
    /// (`uid:gid`, so it works whatever users the image knows). An account unknown on this
    /// host is logged and not applied: the container keeps the image's user, as with Deimos.
    pub fn apply_switch_user(&mut self) {
        let Some(user) = &self.switch_user else {
            return;
        };
        match crate::fetch::FileOwner::for_user(user) {
            Ok(Some(owner)) => {
                let gid = owner.gid.map(|g| format!(":{g}")).unwrap_or_default();
                self.spec.user = Some(format!("{}{gid}", owner.uid));
            }
            Ok(None) => log::warn!(
                "the agent asks to run as user {user:?}, which does not exist on this host; \
                 the container runs as its image's user"
            ),
            Err(error) => log::warn!("not running as the agent's user {user:?}: {error}"),
        }
    }

    /// Publishes allocated ports paired with the image's exposed ports, when the plan asks for it.
    pub fn apply_exposed_ports(&mut self, exposed: &[(u16, Protocol)]) {
        if self.pair_with_exposed {
            self.spec.ports = ports::pair_with_exposed(&self.allocated_ports, exposed);
        }
    }
}

/// Why a `Launch` message cannot be turned into a container.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TranslateError {
    /// A field the translation needs is absent.
    #[error("launch message has no {0}")]
    Missing(&'static str),
    /// A legacy image URL that is not `docker:///name` or `docker://name`.
    #[error("image URL {0:?} is not a docker:// URL (expected docker:///name:tag)")]
    ImageUrl(String),
    /// No image from the task, the configuration, the agent or the host.
    #[error(
        "no container image: the task names none, neither [containers.image] default \
         nor MESOS_DEFAULT_CONTAINER_IMAGE is set, and /etc/os-release gives no guess"
    )]
    NoImage,
    /// A malformed resource.
    #[error("resource {name:?}: {reason}")]
    Resource {
        /// Resource name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A docker-run option or DockerInfo parameter that cannot be applied.
    #[error("container option: {0}")]
    Option(String),
    /// A volume that cannot be mounted.
    #[error("volume {container_path:?}: {reason}")]
    Volume {
        /// The volume's container path.
        container_path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A port mapping that cannot be published.
    #[error("port mapping {host_port}->{container_port}: {reason}")]
    PortMapping {
        /// Host port as given.
        host_port: u32,
        /// Container port as given.
        container_port: u32,
        /// What is wrong with it.
        reason: String,
    },
    /// A user network without a name.
    #[error("network USER needs a network name in ContainerInfo.network_infos")]
    UserNetworkName,
    /// The operator's policy refuses what the container asks of the host.
    #[error("refused by the operator's policy: {0}")]
    Policy(#[from] PolicyError),
}

/// The inputs of a translation besides the message itself.
#[derive(Debug, Clone, Copy)]
pub struct LaunchContext<'a> {
    /// Configuration settings.
    pub settings: &'a TranslateSettings,
    /// The process environment (the agent's environment plus the `MESOS_*` variables).
    pub env: &'a BTreeMap<String, String>,
    /// The working directory the agent started us in (the sandbox).
    pub cwd: &'a Path,
}

/// `MESOS_*` and libprocess variables an executor running inside the container needs.
const EXECUTOR_ENV: &[&str] = &[
    "MESOS_FRAMEWORK_ID",
    "MESOS_EXECUTOR_ID",
    "MESOS_SLAVE_ID",
    "MESOS_AGENT_ID",
    "MESOS_SLAVE_PID",
    "MESOS_AGENT_ENDPOINT",
    "MESOS_CHECKPOINT",
    "MESOS_HTTP_COMMAND_EXECUTOR",
    "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
    "MESOS_RECOVERY_TIMEOUT",
    "MESOS_SUBSCRIPTION_BACKOFF_MAX",
    "MESOS_EXECUTOR_AUTHENTICATION_TOKEN",
    "LIBPROCESS_IP",
];

/// Translates a `Launch` into a plan. Pure.
pub fn plan_launch(launch: &Launch, ctx: LaunchContext<'_>) -> Result<LaunchPlan, TranslateError> {
    let container_id = launch.container_id.value.clone();
    if container_id.is_empty() {
        return Err(TranslateError::Missing("container_id"));
    }
    let executor = launch.executor_info.as_ref();
    let task = launch.task_info.as_ref();

    let (kind, command, resources, container, executor_id) = match task {
        Some(task) => {
            let task_id = task.task_id.value.clone();
            if task_id.is_empty() {
                return Err(TranslateError::Missing("task_info.task_id"));
            }
            let command = task
                .command
                .as_ref()
                .ok_or(TranslateError::Missing("task_info.command"))?;
            let kind = LaunchKind::CommandTask {
                task_id: task_id.clone(),
                task_name: task.name.clone(),
            };
            (
                kind,
                command,
                &task.resources,
                task.container.as_ref(),
                task_id,
            )
        }
        None => {
            let executor = executor.ok_or(TranslateError::Missing("task_info or executor_info"))?;
            let command = &executor.command;
            let executor_id = executor.executor_id.value.clone();
            (
                LaunchKind::Executor,
                command,
                &executor.resources,
                executor.container.as_ref(),
                executor_id,
            )
        }
    };
    let framework_id = executor
        .and_then(|e| e.framework_id.as_ref())
        .map(|f| f.value.clone())
        .or_else(|| ctx.env.get("MESOS_FRAMEWORK_ID").cloned());
    let sandbox_dir = launch
        .directory
        .clone()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| ctx.env.get("MESOS_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| ctx.cwd.to_path_buf());

    let settings = ctx.settings;
    let mut spec = ContainerSpec {
        name: Some(format!("mesos-{container_id}")),
        image: select_image(command, container, settings, ctx.env, task.is_some())?,
        command: command_of(command),
        user: command.user.clone().filter(|u| !u.is_empty()),
        sandbox: Some(Sandbox {
            host_dir: sandbox_dir.clone(),
            container_dir: settings.sandbox_mount.clone(),
        }),
        working_dir: Some(
            settings
                .workdir
                .clone()
                .unwrap_or_else(|| settings.sandbox_mount.clone()),
        ),
        ..ContainerSpec::default()
    };

    let allocation = Allocation::from_resources(resources)?;
    spec.env = environment(&kind, command, &allocation.ports, settings, ctx.env);
    apply_container_info(&mut spec, container, &sandbox_dir, &settings.sandbox_mount)?;
    // Options come after the environment so that `-e` flags override; the Mesos allocation
    // comes after the options so that it wins over `-c`/`-m` (as Deimos' flag order made it);
    // identity labels come last so that nothing can forge them.
    spec = apply_options(spec, command, container, settings)?;
    let allocated = Limits::from_allocation(allocation.cpus, allocation.mem_mb, settings.cfs_quota);
    spec.limits = Limits {
        cpu_shares: allocated.cpu_shares.or(spec.limits.cpu_shares),
        cpu_quota: allocated.cpu_quota.or(spec.limits.cpu_quota),
        memory_bytes: allocated.memory_bytes.or(spec.limits.memory_bytes),
    };
    let identity = identity_labels(
        &container_id,
        &kind,
        &executor_id,
        framework_id.as_deref(),
        settings,
    );
    spec.labels.extend(identity);
    settings.policy.check(&spec)?;
    // Neither the command nor a `-u` option names a user: the agent's (--switch_user).
    let switch_user = launch
        .user
        .clone()
        .filter(|u| !u.is_empty() && spec.user.is_none());
    let explicit_ports = !spec.ports.is_empty();
    let publishable = matches!(spec.network, NetworkMode::Bridge | NetworkMode::User(_));
    Ok(LaunchPlan {
        container_id,
        executor_id,
        framework_id,
        kind,
        sandbox_dir,
        uris: command.uris.iter().map(uri_spec).collect(),
        switch_user,
        pair_with_exposed: !explicit_ports && publishable && !allocation.ports.is_empty(),
        allocated_ports: allocation.ports,
        spec,
    })
}

/// cpus, mem and ports of a resource list (summed over roles).
#[derive(Debug, Default)]
struct Allocation {
    cpus: Option<f64>,
    mem_mb: Option<f64>,
    ports: Vec<u16>,
}

impl Allocation {
    fn from_resources(resources: &[mesos::Resource]) -> Result<Self, TranslateError> {
        let mut allocation = Allocation::default();
        let mut ranges = Vec::new();
        for resource in resources {
            let scalar = resource.scalar.as_ref().map(|s| s.value);
            match resource.name.as_str() {
                "cpus" => *allocation.cpus.get_or_insert(0.0) += scalar.unwrap_or(0.0),
                "mem" => *allocation.mem_mb.get_or_insert(0.0) += scalar.unwrap_or(0.0),
                "ports" => {
                    let list = resource
                        .ranges
                        .as_ref()
                        .map(|r| r.range.as_slice())
                        .unwrap_or(&[]);
                    ranges.extend(list.iter().map(|r: &value::Range| (r.begin, r.end)));
                }
                _ => {}
            }
        }
        allocation.ports =
            ports::expand_ranges(&ranges).map_err(|reason| TranslateError::Resource {
                name: "ports".into(),
                reason,
            })?;
        Ok(allocation)
    }
}

/// The image: the task's (unless ignored), else the configured default, else the agent's
/// `--default_container_image` (D-15: Deimos guessed one from /etc/os-release instead).
fn select_image(
    command: &mesos::CommandInfo,
    container: Option<&mesos::ContainerInfo>,
    settings: &TranslateSettings,
    env: &BTreeMap<String, String>,
    command_task: bool,
) -> Result<String, TranslateError> {
    let from_task = if settings.ignore_image {
        None
    } else {
        task_image(command, container)?
    };
    from_task
        .or_else(|| settings.default_image.clone().filter(|i| !i.is_empty()))
        .or_else(|| {
            env.get("MESOS_DEFAULT_CONTAINER_IMAGE")
                .cloned()
                .filter(|i| !i.is_empty())
        })
        .map(|image| image_from_url(&image).map(str::to_owned).unwrap_or(image))
        .or_else(|| {
            settings
                .image_guess
                .as_ref()
                .map(|guess| guess.image(command_task))
        })
        .ok_or(TranslateError::NoImage)
}

fn task_image(
    command: &mesos::CommandInfo,
    container: Option<&mesos::ContainerInfo>,
) -> Result<Option<String>, TranslateError> {
    if let Some(info) = container {
        if let Some(docker) = &info.docker {
            if !docker.image.is_empty() {
                return Ok(Some(docker.image.clone()));
            }
        }
        let mesos_image = info
            .mesos
            .as_ref()
            .and_then(|m| m.image.as_ref())
            .and_then(|i| i.docker.as_ref());
        if let Some(image) = mesos_image.filter(|d| !d.name.is_empty()) {
            return Ok(Some(image.name.clone()));
        }
    }
    match command.container.as_ref().map(|c| c.image.as_str()) {
        None | Some("") => Ok(None),
        Some(url) => match image_from_url(url) {
            Some("") => Ok(None),
            Some(image) => Ok(Some(image.to_owned())),
            None => Err(TranslateError::ImageUrl(url.to_owned())),
        },
    }
}

/// `docker:///name:tag` or `docker://name:tag` → `name:tag`; `None` for other schemes.
fn image_from_url(url: &str) -> Option<&str> {
    url.strip_prefix("docker:///")
        .or_else(|| url.strip_prefix("docker://"))
}

/// `shell` (default true) runs `sh -c value`; otherwise `value` is executed with
/// `arguments[1..]` (Mesos' `arguments` include argv\[0\], which Docker cannot set separately).
fn command_of(command: &mesos::CommandInfo) -> Command {
    let value = command.value.clone().unwrap_or_default();
    if command.shell() {
        if value.is_empty() {
            Command::ImageDefault
        } else {
            Command::Shell(value)
        }
    } else if value.is_empty() {
        if command.arguments.is_empty() {
            Command::ImageDefault
        } else {
            Command::Argv(command.arguments.clone())
        }
    } else {
        let mut argv = vec![value];
        argv.extend(command.arguments.iter().skip(1).cloned());
        Command::Argv(argv)
    }
}

fn apply_container_info(
    spec: &mut ContainerSpec,
    container: Option<&mesos::ContainerInfo>,
    sandbox_dir: &Path,
    sandbox_mount: &str,
) -> Result<(), TranslateError> {
    let Some(info) = container else {
        return Ok(());
    };
    spec.hostname = info.hostname.clone().filter(|h| !h.is_empty());
    for volume in &info.volumes {
        spec.volumes
            .push(volume_mount(volume, sandbox_dir, sandbox_mount)?);
    }
    let Some(docker) = &info.docker else {
        return Ok(());
    };
    spec.network = match docker.network() {
        container_info::docker_info::Network::Host => NetworkMode::Host,
        container_info::docker_info::Network::Bridge => NetworkMode::Bridge,
        container_info::docker_info::Network::None => NetworkMode::None,
        container_info::docker_info::Network::User => {
            let name = info
                .network_infos
                .iter()
                .find_map(|n| n.name.clone())
                .filter(|n| !n.is_empty());
            NetworkMode::User(name.ok_or(TranslateError::UserNetworkName)?)
        }
    };
    spec.privileged = docker.privileged();
    spec.force_pull = docker.force_pull_image();
    for mapping in &docker.port_mappings {
        spec.ports.push(port_mapping(mapping)?);
    }
    Ok(())
}

fn port_mapping(
    mapping: &container_info::docker_info::PortMapping,
) -> Result<PortMapping, TranslateError> {
    let fail = |reason: &str| TranslateError::PortMapping {
        host_port: mapping.host_port,
        container_port: mapping.container_port,
        reason: reason.into(),
    };
    let host_port = u16::try_from(mapping.host_port).map_err(|_| fail("host port above 65535"))?;
    let container_port = u16::try_from(mapping.container_port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| fail("container port must be 1-65535"))?;
    let protocol = match mapping.protocol.as_deref() {
        None | Some("") => Protocol::Tcp,
        Some(text) => {
            Protocol::parse(text).ok_or_else(|| fail("protocol must be tcp, udp or sctp"))?
        }
    };
    Ok(PortMapping {
        host_port,
        container_port,
        protocol,
    })
}

/// Mesos volume semantics: a relative `host_path` is inside the sandbox, a relative
/// `container_path` is under the sandbox mount.
fn volume_mount(
    volume: &mesos::Volume,
    sandbox_dir: &Path,
    sandbox_mount: &str,
) -> Result<VolumeMount, TranslateError> {
    let container_path = volume.container_path.clone();
    let fail = |reason: &str| TranslateError::Volume {
        container_path: container_path.clone(),
        reason: reason.into(),
    };
    if container_path.is_empty() {
        return Err(fail("container_path is empty"));
    }
    let host = volume
        .host_path
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| fail("only host-path volumes are supported (no host_path given)"))?;
    let host_path = if Path::new(&host).is_absolute() {
        PathBuf::from(&host)
    } else {
        sandbox_dir.join(&host)
    };
    if host.split('/').any(|part| part == "..") {
        return Err(fail("host_path must not contain '..'"));
    }
    let target = if container_path.starts_with('/') {
        container_path.clone()
    } else {
        format!("{}/{}", sandbox_mount.trim_end_matches('/'), container_path)
    };
    Ok(VolumeMount {
        host_path,
        container_path: target,
        read_only: volume.mode() == mesos::volume::Mode::Ro,
    })
}

/// Legacy `CommandInfo.container.options` (with the configured default/append/ignore policy)
/// and `DockerInfo.parameters`, both docker-run flags.
fn apply_options(
    spec: ContainerSpec,
    command: &mesos::CommandInfo,
    container: Option<&mesos::ContainerInfo>,
    settings: &TranslateSettings,
) -> Result<ContainerSpec, TranslateError> {
    let task_options = command
        .container
        .as_ref()
        .map(|c| c.options.as_slice())
        .unwrap_or(&[]);
    let (flags, argv) = options::effective_options(
        task_options,
        &settings.default_options,
        &settings.append_options,
        settings.ignore_options,
    );
    let option_error = |e: options::OptionsError| TranslateError::Option(e.to_string());
    let mut parsed = options::parse_options(&flags).map_err(option_error)?;
    if let Some(docker) = container.and_then(|c| c.docker.as_ref()) {
        let parameters: Vec<(String, String)> = docker
            .parameters
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        parsed.extend(options::parse_parameters(&parameters).map_err(option_error)?);
    }
    for (option, reason) in options::ignored_options(&parsed) {
        log::info!("ignoring docker option {option}: {reason}");
    }
    let mut spec = options::apply_options(spec, &parsed);
    if let Some(argv) = argv {
        spec.command = options::command_from_argv(argv);
    }
    Ok(spec)
}

fn environment(
    kind: &LaunchKind,
    command: &mesos::CommandInfo,
    allocated_ports: &[u16],
    settings: &TranslateSettings,
    env: &BTreeMap<String, String>,
) -> Vec<EnvVar> {
    let mut vars = Vec::new();
    let mut pass = |name: &str| {
        if let Some(value) = env.get(name) {
            vars.push(EnvVar::new(name, value.clone()));
        }
    };
    match kind {
        LaunchKind::CommandTask { task_id, task_name } => {
            pass("MESOS_FRAMEWORK_ID");
            pass("MESOS_SLAVE_ID");
            pass("MESOS_AGENT_ID");
            vars.push(EnvVar::new("MESOS_TASK_ID", task_id.clone()));
            vars.push(EnvVar::new("MESOS_EXECUTOR_ID", task_id.clone()));
            vars.push(EnvVar::new("TASK_INFO", task_name.clone()));
        }
        LaunchKind::Executor => {
            EXECUTOR_ENV.iter().for_each(|name| pass(name));
            vars.push(EnvVar::new("LIBPROCESS_PORT", "0"));
            vars.push(EnvVar::new("TASK_INFO", ""));
        }
    }
    vars.push(EnvVar::new("MESOS_SANDBOX", settings.sandbox_mount.clone()));
    vars.push(EnvVar::new(
        "MESOS_DIRECTORY",
        settings.sandbox_mount.clone(),
    ));
    vars.extend(ports::port_env(allocated_ports));
    // The task's own variables come last so that they win over ours.
    if let Some(environment) = &command.environment {
        for variable in &environment.variables {
            vars.push(EnvVar::new(variable.name.clone(), variable.value.clone()));
        }
    }
    vars
}

fn identity_labels(
    container_id: &str,
    kind: &LaunchKind,
    executor_id: &str,
    framework_id: Option<&str>,
    settings: &TranslateSettings,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    map.insert(labels::MANAGED_BY.into(), "deimos".into());
    map.insert(labels::CONTAINER_ID.into(), container_id.into());
    map.insert(labels::EXECUTOR_ID.into(), executor_id.into());
    if let LaunchKind::CommandTask { task_id, .. } = kind {
        map.insert(labels::TASK_ID.into(), task_id.clone());
    }
    if let Some(framework) = framework_id {
        map.insert(labels::FRAMEWORK_ID.into(), framework.into());
    }
    if let Some(owner) = &settings.owner {
        map.insert(labels::OWNER.into(), owner.clone());
    }
    map
}

fn uri_spec(uri: &mesos::command_info::Uri) -> UriSpec {
    UriSpec {
        value: uri.value.clone(),
        executable: uri.executable(),
        extract: uri.extract(),
        output_file: uri.output_file.clone().filter(|f| !f.is_empty()),
        cache: uri.cache(),
    }
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
