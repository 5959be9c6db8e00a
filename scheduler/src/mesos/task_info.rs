//! A run plan as a Mesos v1 `TaskInfo`: the cluster's thin renderer of
//! [`crate::plan::RunPlan`], whose meaning (command rules, environment order, port variables,
//! labels) the local backend's container shares.
//!
//! Mesos task ids are run ids, `<task id>.<attempt>` ([`mesos_task_id`]): Mesos wants a task
//! id unique within the framework, and reusing a task's id for a relaunch would let a late
//! update or reconciliation answer about the failed attempt be taken for the new one. The
//! container id label already uses the same run id, so both backends name attempts alike.

use std::time::Duration;

use mesos_proto::v1::{
    command_info, container_info, environment, executor_info, image, network_info, volume, AgentId,
    CommandInfo, ContainerInfo, DurationInfo, Environment, ExecutorId, ExecutorInfo, Image,
    KillPolicy, Label, Labels, NetworkInfo, Parameter, Resource, TaskId as MesosTaskId, TaskInfo,
    Volume,
};

use super::launch_mode::{ExecutorSettings, LaunchMode, MESOS_BRIDGE_NETWORK};
use super::offers::Claim;
use super::MesosError;
use crate::backend::Allocation;
use crate::plan::{run_id, PlanCommand, PlanNetwork, PlanSettings, RunPlan};
use crate::task::{Task, TaskId};

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
    /// How tasks are launched unless their label says otherwise (`launch_mode`).
    pub mode: LaunchMode,
    /// How `deimos-executor` is started, in that mode.
    pub executor: ExecutorSettings,
}

/// The Mesos task id of attempt `attempt` of a task: `<task id>.<attempt>`.
pub fn mesos_task_id(task: &TaskId, attempt: u32) -> String {
    run_id(task, attempt)
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
/// `claim` (see [`super::offers::Leftovers::claim`]) in the task's launch mode: the task's
/// [`RunPlan`] rendered by [`render`], then shaped for the mode ([`render_in_mode`]);
/// `executor` holds the executor's resources in mode `deimos-executor`.
pub fn task_info(
    task: &Task,
    attempt: u32,
    claim: &Claim,
    executor: Option<&Claim>,
    settings: &LaunchSettings,
) -> Result<TaskInfo, MesosError> {
    let invalid = |why: String| MesosError::InvalidTask {
        task: task.id.to_string(),
        why,
    };
    let mode = LaunchMode::of_task(&task.request.labels, settings.mode).map_err(invalid)?;
    mode.check(&task.request).map_err(invalid)?;
    let allocation = Allocation::for_task(&task.request, claim.host_ports.clone());
    let plan_settings = PlanSettings {
        instance_id: &settings.instance_id,
        user_network: settings.user_network.as_deref(),
    };
    let plan = RunPlan::build(task, attempt, &allocation, plan_settings).map_err(|error| {
        MesosError::InvalidTask {
            task: task.id.to_string(),
            why: error.reason(),
        }
    })?;
    let info = render(
        &plan,
        &claim.agent_id,
        claim.resources.clone(),
        settings.kill_grace,
    )?;
    let executor_resources = executor.map(|claim| claim.resources.clone());
    render_in_mode(info, &plan, mode, &settings.executor, executor_resources)
        .map_err(|why| invalid(why.to_owned()))
}

/// Shapes a Docker-mode `TaskInfo` (from [`render`]) for `mode`.
///
/// - `deimos-executor`: the command moves into `data` (`deimos_runtime::mesos::task_data`),
///   the task gets a CUSTOM `ExecutorInfo` (id: the run id; command: `executor.command`, the
///   executor URI fetched first; resources: `executor_resources`); the DOCKER container stays
///   on the task for the executor to read.
/// - `mesos`: the container becomes MESOS with the image as a Docker `Image` (`cached`
///   unless the task forces a pull), joining the CNI network `mesos-bridge` for `BRIDGE` or
///   the `USER` network by name, with the port mappings on that network; `HOST` joins none.
pub fn render_in_mode(
    mut info: TaskInfo,
    plan: &RunPlan,
    mode: LaunchMode,
    executor: &ExecutorSettings,
    executor_resources: Option<Vec<Resource>>,
) -> Result<TaskInfo, &'static str> {
    match mode {
        LaunchMode::Docker => Ok(info),
        LaunchMode::DeimosExecutor => {
            let resources = executor_resources
                .ok_or("launch mode deimos-executor needs the executor's resources")?;
            let command = info
                .command
                .take()
                .ok_or("the task has no command to carry")?;
            info.data = Some(deimos_runtime::mesos::task_data::encode(&command));
            info.executor = Some(ExecutorInfo {
                r#type: Some(executor_info::Type::Custom as i32),
                executor_id: ExecutorId {
                    value: plan.run_id.clone(),
                },
                name: Some("deimos-executor".to_owned()),
                command: Some(CommandInfo {
                    uris: executor
                        .uri
                        .iter()
                        .map(|uri| command_info::Uri {
                            value: uri.clone(),
                            executable: Some(true),
                            extract: Some(false),
                            cache: Some(true),
                            output_file: None,
                        })
                        .collect(),
                    shell: Some(true),
                    value: Some(executor.command.clone()),
                    ..Default::default()
                }),
                resources,
                ..Default::default()
            });
            Ok(info)
        }
        LaunchMode::Mesos => {
            let docker = info
                .container
                .as_ref()
                .and_then(|container| container.docker.clone())
                .ok_or("the task has no container")?;
            let port_mappings: Vec<network_info::PortMapping> = docker
                .port_mappings
                .iter()
                .map(|port| network_info::PortMapping {
                    host_port: port.host_port,
                    container_port: port.container_port,
                    protocol: port.protocol.clone(),
                })
                .collect();
            let network = match &plan.network {
                PlanNetwork::Host => None,
                PlanNetwork::Bridge => Some(MESOS_BRIDGE_NETWORK.to_owned()),
                PlanNetwork::User(name) => Some(name.clone()),
                PlanNetwork::None => {
                    return Err("network NONE is not available in launch mode mesos")
                }
            };
            let volumes = info
                .container
                .take()
                .map(|container| container.volumes)
                .unwrap_or_default();
            info.container = Some(ContainerInfo {
                r#type: container_info::Type::Mesos as i32,
                volumes,
                mesos: Some(container_info::MesosInfo {
                    image: Some(Image {
                        r#type: image::Type::Docker as i32,
                        docker: Some(image::Docker {
                            name: docker.image,
                            config: None,
                        }),
                        cached: Some(!docker.force_pull_image.unwrap_or(false)),
                        appc: None,
                    }),
                }),
                network_infos: network
                    .map(|name| NetworkInfo {
                        name: Some(name),
                        port_mappings,
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            });
            Ok(info)
        }
    }
}

/// The `TaskInfo` of `plan` on agent `agent_id` with the claimed offer `resources` (they
/// keep the offer's role and reservations) and `kill_grace` between the graceful and the
/// forced kill.
///
/// - task id: the run id (at most [`MAX_MESOS_TASK_ID_LEN`] bytes);
/// - container: DOCKER with the image, `force_pull_image`, `privileged`, the network
///   (`USER` joins the plan's network through `network_infos`), the plan's port mappings,
///   parameters `dns` then one `volumes-from` per entry, RW volumes (a relative host path is
///   taken in the sandbox by Mesos, as the plan means);
/// - command: `shell` with the command line, else `shell: false` with the arguments of the
///   image's entrypoint; the user; the fetch URIs;
/// - environment: the plan's (Mesos sets `MESOS_SANDBOX` itself);
/// - labels: the plan's.
pub fn render(
    plan: &RunPlan,
    agent_id: &str,
    resources: Vec<Resource>,
    kill_grace: Duration,
) -> Result<TaskInfo, MesosError> {
    if plan.run_id.len() > MAX_MESOS_TASK_ID_LEN {
        return Err(MesosError::InvalidTask {
            task: plan.task_id.to_string(),
            why: format!(
                "Mesos task id {:?} is {} bytes long, at most {MAX_MESOS_TASK_ID_LEN} allowed",
                plan.run_id,
                plan.run_id.len()
            ),
        });
    }
    Ok(TaskInfo {
        name: plan.task_name.clone(),
        task_id: MesosTaskId {
            value: plan.run_id.clone(),
        },
        agent_id: AgentId {
            value: agent_id.to_owned(),
        },
        resources,
        command: Some(command(plan)),
        container: Some(container(plan)),
        kill_policy: Some(KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: i64::try_from(kill_grace.as_nanos()).unwrap_or(i64::MAX),
            }),
        }),
        labels: Some(Labels {
            labels: plan
                .labels
                .iter()
                .map(|(key, value)| Label {
                    key: key.clone(),
                    value: Some(value.clone()),
                })
                .collect(),
        }),
        ..Default::default()
    })
}

fn command(plan: &RunPlan) -> CommandInfo {
    let (shell, value, arguments) = match &plan.command {
        PlanCommand::Shell(line) => (true, Some(line.clone()), Vec::new()),
        // No value: the Docker containerizer keeps the image's entrypoint and passes the
        // arguments to it (empty arguments: the image's default command).
        PlanCommand::Entrypoint(args) => (false, None, args.clone()),
    };
    CommandInfo {
        uris: plan
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
            variables: plan
                .env
                .iter()
                .map(|var| environment::Variable {
                    name: var.name.clone(),
                    r#type: Some(environment::variable::Type::Value as i32),
                    value: Some(var.value.clone()),
                    secret: None,
                })
                .collect(),
        }),
        shell: Some(shell),
        value,
        arguments,
        user: plan.user.clone(),
    }
}

fn container(plan: &RunPlan) -> ContainerInfo {
    use container_info::docker_info::Network as DockerNetwork;
    let network = match plan.network {
        PlanNetwork::Bridge => DockerNetwork::Bridge,
        PlanNetwork::Host => DockerNetwork::Host,
        PlanNetwork::None => DockerNetwork::None,
        PlanNetwork::User(_) => DockerNetwork::User,
    };
    let port_mappings = plan
        .ports
        .iter()
        .map(|port| container_info::docker_info::PortMapping {
            host_port: u32::from(port.host_port),
            container_port: u32::from(port.container_port),
            protocol: Some(port.protocol.as_str().to_owned()),
        })
        .collect();
    let parameter = |key: &str, value: &String| Parameter {
        key: key.to_owned(),
        value: value.clone(),
    };
    let parameters: Vec<Parameter> = plan
        .dns
        .iter()
        .map(|dns| parameter("dns", dns))
        .chain(
            plan.volumes_from
                .iter()
                .map(|name| parameter("volumes-from", name)),
        )
        .collect();
    let network_infos = match &plan.network {
        PlanNetwork::User(name) => vec![NetworkInfo {
            name: Some(name.clone()),
            ..Default::default()
        }],
        _ => Vec::new(),
    };
    ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        volumes: plan
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
            image: plan.image.clone(),
            network: Some(network as i32),
            port_mappings,
            privileged: Some(plan.privileged),
            parameters,
            force_pull_image: Some(plan.force_pull),
            ..Default::default()
        }),
        network_infos,
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "task_info_tests.rs"]
mod tests;
