use std::path::{Path, PathBuf};
use std::time::Duration;

use deimos_runtime::spec::{
    labels, Command, NetworkMode, PortMapping, Protocol, DEFAULT_SANDBOX_MOUNT,
};
use mesos_proto::v1::{self, container_info, environment, value};

use super::*;

const SANDBOX: &str = "/var/lib/mesos/slaves/a/frameworks/f/executors/e/runs/r";

/// A policy allowing privileged tasks and host paths under `/srv`.
static PERMISSIVE: std::sync::LazyLock<ContainerPolicy> =
    std::sync::LazyLock::new(|| ContainerPolicy {
        allow_privileged: true,
        host_paths: deimos_runtime::hostpath::AllowedPaths::new([PathBuf::from("/srv")], "test"),
        ..ContainerPolicy::default()
    });

/// The policy without a configuration file.
static DEFAULT_POLICY: std::sync::LazyLock<ContainerPolicy> =
    std::sync::LazyLock::new(ContainerPolicy::default);

fn ctx() -> TaskContext<'static> {
    TaskContext {
        framework_id: "fw-1",
        executor_id: "exec-1",
        agent_id: Some("agent-1"),
        container_id: Some("cid-1"),
        directory: Path::new(SANDBOX),
        policy: &PERMISSIVE,
        cfs_quota: false,
        instance: "instance-1",
    }
}

#[test]
fn the_operator_policy_refuses_privileged_tasks_and_host_paths_by_default() {
    let strict = TaskContext {
        policy: &DEFAULT_POLICY,
        ..ctx()
    };
    let mut info = docker("busybox");
    info.privileged = Some(true);
    let error = plan_task(&task_with(info, shell("true")), &strict).unwrap_err();
    assert!(
        error.to_string().contains("[policy] allow_privileged"),
        "{error}"
    );
    let mut task = task_with(docker("busybox"), shell("true"));
    if let Some(container) = task.container.as_mut() {
        container.volumes = vec![v1::Volume {
            container_path: "/host".into(),
            host_path: Some("/".into()),
            ..v1::Volume::default()
        }];
    }
    let error = plan_task(&task, &strict).unwrap_err();
    assert!(
        error.to_string().contains("host path / is not allowed"),
        "{error}"
    );
    assert!(plan_task(&task_with(docker("busybox"), shell("true")), &strict).is_ok());
}

#[test]
fn policy_refusals_are_their_own_error_and_other_faults_stay_invalid_tasks() {
    let strict = TaskContext {
        policy: &DEFAULT_POLICY,
        ..ctx()
    };
    let mut info = docker("busybox");
    info.privileged = Some(true);
    let error = plan_task(&task_with(info, shell("true")), &strict).unwrap_err();
    assert!(matches!(error, Error::Refused { .. }), "{error:?}");
    let mut info = docker("busybox");
    info.network = Some(v1::container_info::docker_info::Network::User as i32);
    let error = plan_task(&task_with(info, shell("true")), &strict).unwrap_err();
    assert!(matches!(error, Error::InvalidTask { .. }), "{error:?}");
}

#[test]
fn cfs_quota_from_the_configuration_limits_the_cpus_hard() {
    let task = task_with(docker("busybox"), shell("true"));
    let plan = plan_task(&task, &ctx()).unwrap();
    assert_eq!(plan.spec.limits.cpu_quota, None);
    let with_quota = TaskContext {
        cfs_quota: true,
        ..ctx()
    };
    let plan = plan_task(&task, &with_quota).unwrap();
    assert_eq!(plan.spec.limits.cpu_shares, Some(512));
    assert_eq!(plan.spec.limits.cpu_quota, Some(0.5));
}

#[test]
fn memory_below_32_mib_is_raised_to_it_as_mesos_does() {
    let mut task = task_with(docker("busybox"), shell("true"));
    task.resources = vec![scalar("cpus", 0.1), scalar("mem", 4.0)];
    let plan = plan_task(&task, &ctx()).unwrap();
    assert_eq!(plan.spec.limits.memory_bytes, Some(MIN_MEMORY_BYTES));
    assert_eq!(MIN_MEMORY_BYTES, 32 * 1024 * 1024);
}

fn scalar(name: &str, amount: f64) -> v1::Resource {
    v1::Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

fn ports(begin: u64, end: u64) -> v1::Resource {
    v1::Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range { begin, end }],
        }),
        ..Default::default()
    }
}

fn docker(image: &str) -> container_info::DockerInfo {
    container_info::DockerInfo {
        image: image.into(),
        ..Default::default()
    }
}

fn task_with(docker: container_info::DockerInfo, command: Option<v1::CommandInfo>) -> v1::TaskInfo {
    v1::TaskInfo {
        name: "sleeper".into(),
        task_id: v1::TaskId {
            value: "task-1".into(),
        },
        agent_id: v1::AgentId {
            value: "agent-1".into(),
        },
        resources: vec![scalar("cpus", 0.5), scalar("mem", 64.0)],
        command,
        container: Some(v1::ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(docker),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn shell(line: &str) -> Option<v1::CommandInfo> {
    Some(v1::CommandInfo {
        value: Some(line.into()),
        ..Default::default()
    })
}

fn env_values<'a>(plan: &'a TaskPlan, name: &str) -> Vec<&'a str> {
    plan.spec
        .env
        .iter()
        .filter(|v| v.name == name)
        .map(|v| v.value.as_str())
        .collect()
}

#[test]
fn docker_task_becomes_image_command_limits_and_sandbox() {
    let plan = plan_task(&task_with(docker("busybox:1"), shell("echo hi")), &ctx()).unwrap();
    assert_eq!(plan.task_id, "task-1");
    assert_eq!(plan.spec.image, "busybox:1");
    assert_eq!(plan.spec.command, Command::Shell("echo hi".into()));
    assert_eq!(plan.spec.limits.cpu_shares, Some(512));
    assert_eq!(plan.spec.limits.memory_bytes, Some(64 * 1024 * 1024));
    let sandbox = plan.spec.sandbox.as_ref().unwrap();
    assert_eq!(sandbox.host_dir, PathBuf::from(SANDBOX));
    assert_eq!(sandbox.container_dir, DEFAULT_SANDBOX_MOUNT);
    assert_eq!(
        plan.spec.working_dir.as_deref(),
        Some(DEFAULT_SANDBOX_MOUNT)
    );
    // Mesos' default network for DockerInfo is HOST.
    assert_eq!(plan.spec.network, NetworkMode::Host);
    assert!(!plan.spec.privileged && !plan.spec.force_pull);
    assert_eq!(plan.kill_grace, None);
}

#[test]
fn container_is_named_and_labelled_as_this_executors() {
    let plan = plan_task(&task_with(docker("busybox"), shell("true")), &ctx()).unwrap();
    assert_eq!(plan.spec.name.as_deref(), Some("mesos-cid-1.task-1"));
    let l = &plan.spec.labels;
    assert_eq!(l[labels::MANAGED_BY], MANAGED_BY);
    assert_eq!(l[labels::TASK_ID], "task-1");
    assert_eq!(l[labels::EXECUTOR_ID], "exec-1");
    assert_eq!(l[labels::FRAMEWORK_ID], "fw-1");
    assert_eq!(l[labels::CONTAINER_ID], "cid-1");
    assert_eq!(l[labels::EXECUTOR_INSTANCE], "instance-1");
    assert!(!l.contains_key(labels::OWNER));
}

#[test]
fn task_parameters_cannot_forge_identity_labels() {
    let label = |value: String| v1::Parameter {
        key: "label".into(),
        value,
    };
    let mut info = docker("busybox");
    info.parameters = vec![label(format!("{}=deimos", labels::MANAGED_BY))];
    let error = plan_task(&task_with(info, shell("true")), &ctx()).unwrap_err();
    assert!(error.to_string().contains(labels::MANAGED_BY), "{error}");

    let mut info = docker("busybox");
    info.parameters = vec![label("team=blue".into())];
    let plan = plan_task(&task_with(info, shell("true")), &ctx()).unwrap();
    assert_eq!(plan.spec.labels[labels::MANAGED_BY], MANAGED_BY);
    assert_eq!(plan.spec.labels["team"], "blue");
}

#[test]
fn without_a_container_id_the_executor_id_names_the_container() {
    let mut context = ctx();
    context.container_id = None;
    let plan = plan_task(&task_with(docker("busybox"), shell("true")), &context).unwrap();
    assert_eq!(plan.spec.name.as_deref(), Some("mesos-exec-1.task-1"));
    assert!(!plan.spec.labels.contains_key(labels::CONTAINER_ID));
}

#[test]
fn container_name_replaces_characters_docker_refuses() {
    assert_eq!(
        container_name("c/1", "my task:2@x"),
        "mesos-c_1.my_task_2_x"
    );
    assert_eq!(container_name("a.b", "c-d_e"), "mesos-a.b.c-d_e");
}

#[test]
fn environment_names_this_executor_and_task_env_wins() {
    let command = v1::CommandInfo {
        value: Some("env".into()),
        environment: Some(v1::Environment {
            variables: vec![
                environment::Variable {
                    name: "GREETING".into(),
                    value: Some("hello".into()),
                    ..Default::default()
                },
                environment::Variable {
                    name: "MESOS_SANDBOX".into(),
                    value: Some("/elsewhere".into()),
                    ..Default::default()
                },
            ],
        }),
        ..Default::default()
    };
    let plan = plan_task(&task_with(docker("busybox"), Some(command)), &ctx()).unwrap();
    assert_eq!(env_values(&plan, "MESOS_EXECUTOR_ID"), ["exec-1"]);
    assert_eq!(env_values(&plan, "MESOS_TASK_ID"), ["task-1"]);
    assert_eq!(env_values(&plan, "MESOS_FRAMEWORK_ID"), ["fw-1"]);
    assert_eq!(env_values(&plan, "GREETING"), ["hello"]);
    // Ours first, the task's last: Docker keeps the last one.
    assert_eq!(
        env_values(&plan, "MESOS_SANDBOX"),
        [DEFAULT_SANDBOX_MOUNT, "/elsewhere"]
    );
}

#[test]
fn bridge_network_with_port_mappings_publishes_them() {
    let mut info = docker("busybox");
    info.network = Some(container_info::docker_info::Network::Bridge as i32);
    info.port_mappings = vec![container_info::docker_info::PortMapping {
        host_port: 31000,
        container_port: 80,
        protocol: Some("udp".into()),
    }];
    let mut task = task_with(info, shell("true"));
    task.resources.push(ports(31000, 31000));
    let plan = plan_task(&task, &ctx()).unwrap();
    assert_eq!(plan.spec.network, NetworkMode::Bridge);
    assert_eq!(
        plan.spec.ports,
        [PortMapping {
            host_port: 31000,
            container_port: 80,
            protocol: Protocol::Udp
        }]
    );
    assert_eq!(plan.allocated_ports, [31000]);
    assert!(!plan.pair_with_exposed);
    assert_eq!(env_values(&plan, "PORT0"), ["31000"]);
}

#[test]
fn bridge_network_without_mappings_pairs_allocated_ports_with_exposed_ones() {
    let mut info = docker("busybox");
    info.network = Some(container_info::docker_info::Network::Bridge as i32);
    let mut task = task_with(info, shell("true"));
    task.resources.push(ports(31000, 31001));
    let plan = plan_task(&task, &ctx()).unwrap();
    assert!(plan.pair_with_exposed);
    assert_eq!(plan.allocated_ports, [31000, 31001]);
}

#[test]
fn privileged_force_pull_and_parameters_apply() {
    let mut info = docker("registry:5000/app:2");
    info.privileged = Some(true);
    info.force_pull_image = Some(true);
    info.parameters = vec![v1::Parameter {
        key: "dns".into(),
        value: "10.0.0.2".into(),
    }];
    let plan = plan_task(&task_with(info, shell("true")), &ctx()).unwrap();
    assert!(plan.spec.privileged);
    assert!(plan.spec.force_pull);
    assert_eq!(plan.spec.dns, ["10.0.0.2"]);
    assert_eq!(plan.spec.image, "registry:5000/app:2");
}

#[test]
fn unknown_docker_parameter_fails_naming_the_task_and_option() {
    let mut info = docker("busybox");
    info.parameters = vec![v1::Parameter {
        key: "no-such-flag".into(),
        value: "1".into(),
    }];
    let error = plan_task(&task_with(info, shell("true")), &ctx()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::InvalidTask { .. }), "{message}");
    assert!(
        message.contains("task-1") && message.contains("no-such-flag"),
        "{message}"
    );
}

#[test]
fn volumes_are_mounted_with_relative_host_paths_inside_the_sandbox() {
    let mut task = task_with(docker("busybox"), shell("true"));
    if let Some(container) = task.container.as_mut() {
        container.volumes = vec![
            v1::Volume {
                mode: v1::volume::Mode::Ro as i32,
                container_path: "/data".into(),
                host_path: Some("/srv/data".into()),
                ..Default::default()
            },
            v1::Volume {
                mode: v1::volume::Mode::Rw as i32,
                container_path: "cache".into(),
                host_path: Some("cache".into()),
                ..Default::default()
            },
        ];
    }
    let plan = plan_task(&task, &ctx()).unwrap();
    let volumes = &plan.spec.volumes;
    assert_eq!(volumes.len(), 2);
    assert_eq!(volumes[0].host_path, PathBuf::from("/srv/data"));
    assert_eq!(volumes[0].container_path, "/data");
    assert!(volumes[0].read_only);
    assert_eq!(volumes[1].host_path, Path::new(SANDBOX).join("cache"));
    assert_eq!(
        volumes[1].container_path,
        format!("{DEFAULT_SANDBOX_MOUNT}/cache")
    );
    assert!(!volumes[1].read_only);
}

#[test]
fn user_network_needs_a_network_name() {
    let mut info = docker("busybox");
    info.network = Some(container_info::docker_info::Network::User as i32);
    let mut task = task_with(info.clone(), shell("true"));
    let error = plan_task(&task, &ctx()).unwrap_err();
    assert!(error.to_string().contains("network"), "{error}");
    if let Some(container) = task.container.as_mut() {
        container.network_infos = vec![v1::NetworkInfo {
            name: Some("tasks".into()),
            ..Default::default()
        }];
    }
    let plan = plan_task(&task, &ctx()).unwrap();
    assert_eq!(plan.spec.network, NetworkMode::User("tasks".into()));
}

#[test]
fn task_without_docker_image_is_invalid() {
    let mut task = task_with(docker(""), shell("true"));
    let error = plan_task(&task, &ctx()).unwrap_err();
    assert!(
        error.to_string().contains("task-1") && error.to_string().contains("Docker image"),
        "{error}"
    );
    task.container = None;
    assert!(plan_task(&task, &ctx()).is_err());
}

#[test]
fn mesos_container_with_docker_image_is_accepted() {
    let mut task = task_with(docker("unused"), shell("true"));
    task.container = Some(v1::ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        mesos: Some(container_info::MesosInfo {
            image: Some(v1::Image {
                r#type: v1::image::Type::Docker as i32,
                docker: Some(v1::image::Docker {
                    name: "alpine:3".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    });
    let plan = plan_task(&task, &ctx()).unwrap();
    assert_eq!(plan.spec.image, "alpine:3");
}

#[test]
fn task_without_command_runs_the_image_default() {
    let plan = plan_task(&task_with(docker("busybox"), None), &ctx()).unwrap();
    assert_eq!(plan.spec.command, Command::ImageDefault);
}

#[test]
fn non_shell_command_is_executed_with_its_arguments() {
    let command = v1::CommandInfo {
        shell: Some(false),
        value: Some("/bin/echo".into()),
        arguments: vec!["echo".into(), "a b".into()],
        ..Default::default()
    };
    let plan = plan_task(&task_with(docker("busybox"), Some(command)), &ctx()).unwrap();
    assert_eq!(
        plan.spec.command,
        Command::Argv(vec!["/bin/echo".into(), "a b".into()])
    );
}

#[test]
fn command_uris_are_planned_for_fetching() {
    let command = v1::CommandInfo {
        value: Some("true".into()),
        uris: vec![v1::command_info::Uri {
            value: "http://example.invalid/tool.tgz".into(),
            executable: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    };
    let plan = plan_task(&task_with(docker("busybox"), Some(command)), &ctx()).unwrap();
    assert_eq!(plan.uris.len(), 1);
    assert_eq!(plan.uris[0].value, "http://example.invalid/tool.tgz");
    assert!(plan.uris[0].executable);
}

#[test]
fn kill_policy_grace_period_is_kept() {
    let mut task = task_with(docker("busybox"), shell("true"));
    task.kill_policy = Some(v1::KillPolicy {
        grace_period: Some(v1::DurationInfo {
            nanoseconds: 1_500_000_000,
        }),
    });
    let plan = plan_task(&task, &ctx()).unwrap();
    assert_eq!(plan.kill_grace, Some(Duration::from_millis(1500)));
}

#[test]
fn negative_durations_count_as_zero() {
    assert_eq!(
        duration_of(&v1::DurationInfo { nanoseconds: -5 }),
        Duration::ZERO
    );
}

#[test]
fn empty_task_id_is_invalid() {
    let mut task = task_with(docker("busybox"), shell("true"));
    task.task_id.value.clear();
    assert!(matches!(
        plan_task(&task, &ctx()),
        Err(Error::InvalidTask { .. })
    ));
}

/// The task of [`task_with`] with `command` carried in `TaskInfo.data`, as a scheduler sends it.
fn task_with_data(command: &v1::CommandInfo) -> v1::TaskInfo {
    let mut task = task_with(docker("busybox"), None);
    task.data = Some(deimos_runtime::mesos::task_data::encode(command));
    task
}

fn secret_variable(name: &str, secret: v1::Secret) -> v1::environment::Variable {
    v1::environment::Variable {
        name: name.into(),
        r#type: Some(environment::variable::Type::Secret as i32),
        secret: Some(secret),
        ..Default::default()
    }
}

fn secret_value(data: &[u8]) -> v1::Secret {
    v1::Secret {
        r#type: Some(v1::secret::Type::Value as i32),
        value: Some(v1::secret::Value {
            data: data.to_vec(),
        }),
        ..Default::default()
    }
}

#[test]
fn command_in_task_data_runs_exactly_as_the_same_command_in_the_task() {
    let command = v1::CommandInfo {
        shell: Some(false),
        value: Some("/bin/app".into()),
        arguments: vec!["app".into(), "--port".into(), "8080".into()],
        user: Some("nobody".into()),
        environment: Some(v1::Environment {
            variables: vec![v1::environment::Variable {
                name: "PORT0".into(),
                value: Some("31000".into()),
                ..Default::default()
            }],
        }),
        uris: vec![v1::command_info::Uri {
            value: "http://example.invalid/app.tgz".into(),
            extract: Some(true),
            ..Default::default()
        }],
    };
    let from_data = plan_task(&task_with_data(&command), &ctx()).unwrap();
    let from_command = plan_task(&task_with(docker("busybox"), Some(command)), &ctx()).unwrap();
    assert_eq!(from_data, from_command);
    assert_eq!(
        from_data.spec.command,
        Command::Argv(vec!["/bin/app".into(), "--port".into(), "8080".into()])
    );
    assert_eq!(from_data.spec.user.as_deref(), Some("nobody"));
    assert_eq!(env_values(&from_data, "PORT0"), ["31000"]);
    assert_eq!(from_data.uris[0].value, "http://example.invalid/app.tgz");
}

#[test]
fn secret_values_in_task_data_reach_the_container_as_plain_variables() {
    let command = v1::CommandInfo {
        value: Some("env".into()),
        environment: Some(v1::Environment {
            variables: vec![secret_variable("TOKEN", secret_value(b"s3cret"))],
        }),
        ..Default::default()
    };
    let plan = plan_task(&task_with_data(&command), &ctx()).unwrap();
    assert_eq!(env_values(&plan, "TOKEN"), ["s3cret"]);
}

#[test]
fn secrets_by_reference_or_not_utf8_are_refused_naming_the_variable() {
    let reference = v1::Secret {
        r#type: Some(v1::secret::Type::Reference as i32),
        reference: Some(v1::secret::Reference {
            name: "vault/token".into(),
            key: None,
        }),
        ..Default::default()
    };
    for (secret, why) in [
        (reference, "only secrets given by value"),
        (secret_value(&[0xff, 0xfe]), "not UTF-8"),
    ] {
        let command = v1::CommandInfo {
            environment: Some(v1::Environment {
                variables: vec![secret_variable("TOKEN", secret)],
            }),
            ..Default::default()
        };
        let message = plan_task(&task_with_data(&command), &ctx())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("environment variable TOKEN") && message.contains(why),
            "{message}"
        );
    }
}

#[test]
fn malformed_or_unknown_version_task_data_is_refused_with_the_reason() {
    let mut task = task_with(docker("busybox"), None);
    task.data = Some(b"echo hello".to_vec());
    let error = plan_task(&task, &ctx()).unwrap_err();
    assert!(matches!(error, Error::TaskData { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("task task-1: TaskInfo.data is not deimos task data"),
        "{message}"
    );

    task.data = Some(b"deimos-task-data v9\n".to_vec());
    let message = plan_task(&task, &ctx()).unwrap_err().to_string();
    assert!(
        message.contains("version 9") && message.contains("only version 1"),
        "{message}"
    );
}

#[test]
fn task_data_and_a_task_command_together_are_refused() {
    let mut task = task_with_data(&v1::CommandInfo::default());
    task.command = shell("true");
    let message = plan_task(&task, &ctx()).unwrap_err().to_string();
    assert!(
        message.contains("both TaskInfo.command and TaskInfo.data"),
        "{message}"
    );
}

#[test]
fn empty_task_data_counts_as_none() {
    let mut task = task_with(docker("busybox"), None);
    task.data = Some(Vec::new());
    let plan = plan_task(&task, &ctx()).unwrap();
    assert_eq!(plan.spec.command, Command::ImageDefault);
}
