//! The state-independent TaskInfo and ExecutorInfo checks of
//! `src/master/validation.cpp` (`task::internal::validateTask`,
//! `executor::validate`) and `src/common/validation.cpp`, plus the Docker
//! containerizer's `Docker::RunOptions::create` rules (`src/docker/docker.cpp`)
//! that an agent applies after the master accepted the task. Pure functions
//! returning the real error texts; what needs the master's state (duplicate
//! ids, the agent, running executors, offered resources) is in `tasks.rs`.

use mesos_proto::v1::container_info::{self, docker_info};
use mesos_proto::v1::{
    environment, executor_info, secret, volume, CommandInfo, ContainerInfo, DurationInfo,
    ExecutorInfo, Resource, TaskInfo,
};

/// `NAME_MAX`: ids become directory names.
const NAME_MAX: usize = 255;

/// `common::validation::validateID`: ids become directory names.
pub(crate) fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("ID must not be empty".to_owned());
    }
    if id.len() > NAME_MAX {
        return Err(format!("ID must not be greater than {NAME_MAX} characters"));
    }
    if id == "." || id == ".." {
        return Err(format!("'{id}' is disallowed"));
    }
    // `iscntrl` works on bytes: any ASCII control byte is refused.
    if id
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'/' || b == b'\\')
    {
        return Err(format!("'{id}' contains invalid characters"));
    }
    Ok(())
}

fn negative(duration: Option<&DurationInfo>) -> bool {
    duration.is_some_and(|d| d.nanoseconds < 0)
}

/// The TaskInfo checks of `task::internal::validateTask` that come before
/// its resource checks: kill policy and `max_completion_time` (health and
/// check infos are not in our proto subset).
pub(crate) fn validate_task_durations(task: &TaskInfo) -> Result<(), String> {
    let grace = task
        .kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref());
    if negative(grace) {
        return Err("Task's 'kill_policy.grace_period' must be non-negative".to_owned());
    }
    if negative(task.max_completion_time.as_ref()) {
        return Err("Task's `max_completion_time` must be non-negative".to_owned());
    }
    Ok(())
}

/// The TaskInfo checks of `task::internal::validateTask` after its resource
/// checks: CommandInfo and ContainerInfo (resource limits are not in our
/// proto subset).
pub(crate) fn validate_task_infos(task: &TaskInfo) -> Result<(), String> {
    if let Some(command) = &task.command {
        validate_command(command).map_err(|e| format!("Task's `CommandInfo` is invalid: {e}"))?;
    }
    if let Some(container) = &task.container {
        validate_container(container)
            .map_err(|e| format!("Task's `ContainerInfo` is invalid: {e}"))?;
    }
    Ok(())
}

/// `executor::validate` (type, id, shutdown grace period, CommandInfo,
/// ContainerInfo) followed by the LAUNCH-specific rules of
/// `task::internal::validateExecutor` (type CUSTOM, command set). The
/// framework id, resources and compatibility checks that sit between them
/// need the master's state and run in `tasks.rs` between the two halves:
/// this is the first half.
pub(crate) fn validate_executor_info(executor: &ExecutorInfo) -> Result<(), String> {
    let executor_type = executor
        .r#type
        .and_then(|t| executor_info::Type::try_from(t).ok())
        .unwrap_or(executor_info::Type::Unknown);
    match executor_type {
        executor_info::Type::Default => {
            if executor.command.is_some() {
                return Err(
                    "'ExecutorInfo.command' must not be set for 'DEFAULT' executor".to_owned(),
                );
            }
            if let Some(container) = &executor.container {
                if container.r#type != container_info::Type::Mesos as i32 {
                    return Err("'ExecutorInfo.container.type' must be 'MESOS' for \
                                'DEFAULT' executor"
                        .to_owned());
                }
                if container.mesos.as_ref().is_some_and(|m| m.image.is_some()) {
                    return Err("'ExecutorInfo.container.mesos.image' must not be set for \
                                'DEFAULT' executor"
                        .to_owned());
                }
            }
        }
        executor_info::Type::Custom if executor.command.is_none() => {
            return Err("'ExecutorInfo.command' must be set for 'CUSTOM' executor".to_owned());
        }
        executor_info::Type::Custom | executor_info::Type::Unknown => {}
    }
    validate_id(&executor.executor_id.value)?;
    if negative(executor.shutdown_grace_period.as_ref()) {
        return Err("ExecutorInfo's 'shutdown_grace_period' must be non-negative".to_owned());
    }
    if let Some(command) = &executor.command {
        validate_command(command)
            .map_err(|e| format!("Executor's `CommandInfo` is invalid: {e}"))?;
    }
    if let Some(container) = &executor.container {
        validate_container(container)
            .map_err(|e| format!("Executor's `ContainerInfo` is invalid: {e}"))?;
    }
    Ok(())
}

/// The second half of the executor rules for LAUNCH
/// (`task::internal::validateExecutor` after `executor::internal::validate`).
pub(crate) fn validate_launch_executor(executor: &ExecutorInfo) -> Result<(), String> {
    if executor
        .r#type
        .is_some_and(|t| t != executor_info::Type::Custom as i32)
    {
        return Err("'ExecutorInfo.type' must be 'CUSTOM'".to_owned());
    }
    if executor.command.is_none() {
        return Err("'ExecutorInfo.command' must be set".to_owned());
    }
    Ok(())
}

/// `common::validation::validateCommandInfo`: the environment only.
fn validate_command(command: &CommandInfo) -> Result<(), String> {
    let variables = command.environment.iter().flat_map(|e| &e.variables);
    for variable in variables {
        let name = &variable.name;
        // An unset type reads as the proto default, VALUE.
        let variable_type = variable
            .r#type
            .map_or(Some(environment::variable::Type::Value), |t| {
                environment::variable::Type::try_from(t).ok()
            });
        match variable_type {
            Some(environment::variable::Type::Secret) => {
                let Some(secret) = &variable.secret else {
                    return Err(format!(
                        "Environment variable '{name}' of type 'SECRET' must have a secret set"
                    ));
                };
                if variable.value.is_some() {
                    return Err(format!(
                        "Environment variable '{name}' of type 'SECRET' must not have a value set"
                    ));
                }
                validate_secret(secret).map_err(|e| {
                    format!("Environment variable '{name}' specifies an invalid secret: {e}")
                })?;
                if secret.value.as_ref().is_some_and(|v| v.data.contains(&0)) {
                    return Err(format!(
                        "Environment variable '{name}' specifies a secret containing null \
                         bytes, which is not allowed in the environment"
                    ));
                }
            }
            Some(environment::variable::Type::Value) => {
                if variable.value.is_none() {
                    return Err(format!(
                        "Environment variable '{name}' of type 'VALUE' must have a value set"
                    ));
                }
                if variable.secret.is_some() {
                    return Err(format!(
                        "Environment variable '{name}' of type 'VALUE' must not have a secret set"
                    ));
                }
            }
            // An unknown number is an unknown field to C++, read as UNKNOWN.
            Some(environment::variable::Type::Unknown) | None => {
                return Err("Environment variable of type 'UNKNOWN' is not allowed".to_owned());
            }
        }
    }
    Ok(())
}

fn validate_secret(secret: &mesos_proto::v1::Secret) -> Result<(), String> {
    let secret_type = secret
        .r#type
        .and_then(|t| secret::Type::try_from(t).ok())
        .unwrap_or(secret::Type::Unknown);
    match secret_type {
        secret::Type::Reference => {
            let Some(reference) = &secret.reference else {
                return Err("Secret of type REFERENCE must have the 'reference' field set".into());
            };
            if secret.value.is_some() {
                return Err(format!(
                    "Secret '{}' of type REFERENCE must not have the 'value' field set",
                    reference.name
                ));
            }
        }
        secret::Type::Value => {
            if secret.value.is_none() {
                return Err("Secret of type VALUE must have the 'value' field set".into());
            }
            if secret.reference.is_some() {
                return Err("Secret of type VALUE must not have the 'reference' field set".into());
            }
        }
        secret::Type::Unknown => {}
    }
    Ok(())
}

/// `common::validation::validateContainerInfo`: volumes, and DOCKER needs
/// `docker` without a `name` parameter.
fn validate_container(container: &ContainerInfo) -> Result<(), String> {
    for volume in &container.volumes {
        validate_volume(volume).map_err(|e| format!("Invalid volume: {e}"))?;
    }
    if container.r#type == container_info::Type::Docker as i32 {
        let Some(docker) = &container.docker else {
            return Err("DockerInfo 'docker' is not set for DOCKER typed ContainerInfo".into());
        };
        if docker.parameters.iter().any(|p| p.key == "name") {
            return Err("Parameter in DockerInfo must not be 'name'".into());
        }
    }
    Ok(())
}

fn validate_volume(volume: &mesos_proto::v1::Volume) -> Result<(), String> {
    let set = [
        volume.host_path.is_some(),
        volume.image.is_some(),
        volume.source.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        return Err("Only one of them should be set: 'host_path', 'image' and 'source'".into());
    }
    let Some(source) = &volume.source else {
        return Ok(());
    };
    let source_type = source
        .r#type
        .and_then(|t| volume::source::Type::try_from(t).ok())
        .unwrap_or(volume::source::Type::Unknown);
    let (present, message) = match source_type {
        volume::source::Type::DockerVolume => (
            source.docker_volume.is_some(),
            "'source.docker_volume' is not set for DOCKER_VOLUME volume",
        ),
        volume::source::Type::HostPath => (
            source.host_path.is_some(),
            "'source.host_path' is not set for HOST_PATH volume",
        ),
        volume::source::Type::SandboxPath => (
            source.sandbox_path.is_some(),
            "'source.sandbox_path' is not set for SANDBOX_PATH volume",
        ),
        volume::source::Type::Secret => (
            source.secret.is_some(),
            "'source.secret' is not set for SECRET volume",
        ),
        volume::source::Type::Unknown => (false, "'source.type' is unknown"),
    };
    if present {
        Ok(())
    } else {
        Err(message.to_owned())
    }
}

/// The rules of `Docker::RunOptions::create` that a DOCKER command task can
/// break (network mode, hostname, port mappings), checked by the docker
/// executor on the agent after the master accepted the task; the error
/// text is the one it puts after "Failed to create docker run options: ".
/// `resources` are the task's plus the executor's, as the docker executor
/// passes them.
pub(crate) fn docker_run_options(
    container: &ContainerInfo,
    resources: &[Resource],
) -> Result<(), String> {
    let Some(docker) = &container.docker else {
        return Ok(()); // refused by the master already
    };
    // No network given: the Linux default, HOST.
    let network = docker
        .network
        .map_or(Some(docker_info::Network::Host), |n| {
            docker_info::Network::try_from(n).ok()
        });
    let network_name = match network {
        Some(docker_info::Network::Host) => "host".to_owned(),
        Some(docker_info::Network::Bridge) => "bridge".to_owned(),
        Some(docker_info::Network::None) => "none".to_owned(),
        Some(docker_info::Network::User) => match container.network_infos.as_slice() {
            [] => return Err("No network info found in container info".to_owned()),
            [only] => match &only.name {
                Some(name) => name.clone(),
                None => return Err("No network name found in network info".to_owned()),
            },
            _ => return Err("Only a single network can be defined in Docker run".to_owned()),
        },
        // `stringify` of an enum the agent does not know prints its number.
        None => {
            let number = docker.network.unwrap_or_default();
            return Err(format!("Unsupported Network mode: {number}"));
        }
    };
    if container.hostname.is_some() && network_name == "host" {
        return Err("Unable to set hostname with host network mode".to_owned());
    }
    if docker.port_mappings.is_empty() {
        return Ok(());
    }
    if network_name == "host" || network_name == "none" {
        return Err(
            "Port mappings are only supported for bridge and user-defined networks".to_owned(),
        );
    }
    let port_ranges: Vec<(u64, u64)> = resources
        .iter()
        .filter(|r| r.name == "ports")
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|ranges| ranges.range.iter().map(|r| (r.begin, r.end)))
        .collect();
    if port_ranges.is_empty() {
        return Err("Port mappings require port resources".to_owned());
    }
    for mapping in &docker.port_mappings {
        let port = u64::from(mapping.host_port);
        if !port_ranges.iter().any(|&(b, e)| b <= port && port <= e) {
            return Err(format!("Port [{port}] not included in resources"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::container_info::DockerInfo;
    use mesos_proto::v1::{value, KillPolicy, NetworkInfo, Parameter, TaskId};

    fn docker(network: Option<docker_info::Network>, host_ports: &[u32]) -> ContainerInfo {
        ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(DockerInfo {
                image: "busybox".into(),
                network: network.map(|n| n as i32),
                port_mappings: host_ports
                    .iter()
                    .map(|&p| docker_info::PortMapping {
                        host_port: p,
                        container_port: 80,
                        protocol: None,
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ports(begin: u64, end: u64) -> Resource {
        Resource {
            name: "ports".into(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(value::Ranges {
                range: vec![value::Range { begin, end }],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ids_that_cannot_be_directory_names_are_invalid() {
        assert!(validate_id("task-1").is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb", "a\u{7f}b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"x".repeat(256)).is_err());
    }

    #[test]
    fn negative_kill_grace_period_is_refused_before_missing_resources() {
        let task = TaskInfo {
            task_id: TaskId { value: "t".into() },
            kill_policy: Some(KillPolicy {
                grace_period: Some(DurationInfo { nanoseconds: -1 }),
            }),
            ..Default::default()
        };
        assert_eq!(
            validate_task_durations(&task).unwrap_err(),
            "Task's 'kill_policy.grace_period' must be non-negative"
        );
    }

    #[test]
    fn docker_container_without_docker_info_or_with_a_name_parameter_is_invalid() {
        let mut container = docker(None, &[]);
        container
            .docker
            .as_mut()
            .unwrap()
            .parameters
            .push(Parameter {
                key: "name".into(),
                value: "x".into(),
            });
        assert_eq!(
            validate_container(&container).unwrap_err(),
            "Parameter in DockerInfo must not be 'name'"
        );
        container.docker = None;
        assert_eq!(
            validate_container(&container).unwrap_err(),
            "DockerInfo 'docker' is not set for DOCKER typed ContainerInfo"
        );
    }

    #[test]
    fn user_network_needs_exactly_one_named_network() {
        let mut container = docker(Some(docker_info::Network::User), &[]);
        assert_eq!(
            docker_run_options(&container, &[]).unwrap_err(),
            "No network info found in container info"
        );
        container.network_infos = vec![NetworkInfo::default()];
        assert_eq!(
            docker_run_options(&container, &[]).unwrap_err(),
            "No network name found in network info"
        );
        container.network_infos.push(NetworkInfo::default());
        assert_eq!(
            docker_run_options(&container, &[]).unwrap_err(),
            "Only a single network can be defined in Docker run"
        );
        container.network_infos = vec![NetworkInfo {
            name: Some("net-a".into()),
            ..Default::default()
        }];
        assert!(docker_run_options(&container, &[]).is_ok());
    }

    #[test]
    fn port_mappings_need_bridge_or_user_network_and_declared_host_ports() {
        let host = docker(None, &[31000]);
        assert_eq!(
            docker_run_options(&host, &[ports(31000, 31000)]).unwrap_err(),
            "Port mappings are only supported for bridge and user-defined networks"
        );
        let bridge = docker(Some(docker_info::Network::Bridge), &[31001]);
        assert_eq!(
            docker_run_options(&bridge, &[]).unwrap_err(),
            "Port mappings require port resources"
        );
        assert_eq!(
            docker_run_options(&bridge, &[ports(31000, 31000)]).unwrap_err(),
            "Port [31001] not included in resources"
        );
        assert!(docker_run_options(&bridge, &[ports(31000, 31005)]).is_ok());
    }

    #[test]
    fn value_variable_without_value_is_invalid() {
        let command = CommandInfo {
            environment: Some(mesos_proto::v1::Environment {
                variables: vec![environment::Variable {
                    name: "A".into(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        assert_eq!(
            validate_command(&command).unwrap_err(),
            "Environment variable 'A' of type 'VALUE' must have a value set"
        );
    }
}
