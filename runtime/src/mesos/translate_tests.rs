use std::collections::BTreeMap;
use std::path::Path;

use mesos_proto::containerizer::Launch;
use mesos_proto::ecp::{self, ReadOptions};
use mesos_proto::mesos::{
    self, command_info, container_info, container_info::docker_info, value, CommandInfo,
    ContainerInfo, Environment, ExecutorInfo, Resource, TaskInfo,
};

use super::*;
use crate::policy::ContainerPolicy;

const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/ecp-launch-record.bin");

fn fixture() -> Launch {
    ecp::read_message(&mut &FIXTURE[..], ReadOptions::NON_EMPTY).unwrap()
}

fn plan(
    launch: &Launch,
    settings: &TranslateSettings,
    env: &[(&str, &str)],
) -> Result<LaunchPlan, TranslateError> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    plan_launch(
        launch,
        LaunchContext {
            settings,
            env: &env,
            cwd: Path::new("/agent/cwd"),
        },
    )
}

fn with_image(image: &str) -> TranslateSettings {
    TranslateSettings {
        default_image: Some(image.into()),
        ..TranslateSettings::default()
    }
}

fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Resource::default()
    }
}

fn ports(begin: u64, end: u64) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range { begin, end }],
        }),
        ..Resource::default()
    }
}

fn command_task(command: CommandInfo, container: Option<ContainerInfo>) -> Launch {
    Launch {
        container_id: mesos::ContainerId {
            value: "c-1".into(),
        },
        task_info: Some(TaskInfo {
            name: "my task".into(),
            task_id: mesos::TaskId {
                value: "task-7".into(),
            },
            resources: vec![
                scalar("cpus", 0.5),
                scalar("mem", 64.0),
                ports(31000, 31001),
            ],
            command: Some(command),
            container,
            ..TaskInfo::default()
        }),
        executor_info: Some(ExecutorInfo {
            executor_id: mesos::ExecutorId {
                value: "task-7".into(),
            },
            framework_id: Some(mesos::FrameworkId {
                value: "fw-1".into(),
            }),
            ..ExecutorInfo::default()
        }),
        directory: Some(
            "/var/lib/mesos/slaves/s/frameworks/f/executors/task-7/runs/2024-01-01T00:00:00".into(),
        ),
        ..Launch::default()
    }
}

fn shell(line: &str) -> CommandInfo {
    CommandInfo {
        value: Some(line.into()),
        ..CommandInfo::default()
    }
}

/// A command with the legacy (Mesos 0.19) `CommandInfo.container` image URL and options.
fn legacy(image_url: &str, options: &[&str], line: &str) -> CommandInfo {
    CommandInfo {
        container: Some(command_info::ContainerInfo {
            image: image_url.into(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        }),
        ..shell(line)
    }
}

/// Plans a command task with default settings.
fn plan_task(command: CommandInfo) -> Result<LaunchPlan, TranslateError> {
    plan(
        &command_task(command, None),
        &TranslateSettings::default(),
        &[],
    )
}

/// Settings whose policy allows privileged containers and host paths under `/srv`.
fn permissive() -> TranslateSettings {
    TranslateSettings {
        policy: ContainerPolicy {
            allow_privileged: true,
            host_paths: crate::hostpath::AllowedPaths::new(["/srv".into()], "test"),
            ..ContainerPolicy::default()
        },
        ..TranslateSettings::default()
    }
}

fn env_value<'a>(plan: &'a LaunchPlan, name: &str) -> Option<&'a str> {
    plan.spec
        .env
        .iter()
        .rev()
        .find(|v| v.name == name)
        .map(|v| v.value.as_str())
}

#[test]
fn real_agent_record_becomes_an_executor_launch() {
    let plan = plan(
        &fixture(),
        &with_image("deimos-test/busybox:latest"),
        &[("MESOS_SLAVE_ID", "s-0")],
    )
    .unwrap();
    assert_eq!(plan.container_id, "435253ab-d246-47be-a350-35420465d868");
    assert_eq!(plan.kind, LaunchKind::Executor);
    assert_eq!(plan.executor_id, "1");
    assert_eq!(
        plan.framework_id.as_deref(),
        Some("20140526-015006-16777343-55403-62567-0000")
    );
    assert!(plan
        .sandbox_dir
        .ends_with("runs/435253ab-d246-47be-a350-35420465d868"));
    assert_eq!(plan.spec.image, "deimos-test/busybox:latest");
    assert_eq!(
        plan.spec.command,
        Command::Shell("echo 'No such file or directory'; exit 1".into())
    );
    assert_eq!(plan.spec.limits.cpu_shares, Some(2048));
    assert_eq!(plan.spec.limits.memory_bytes, Some(1024 * 1024 * 1024));
    assert_eq!(plan.allocated_ports.len(), 1001);
    assert!(
        plan.pair_with_exposed,
        "no explicit mappings: pair with the image's exposed ports"
    );
    assert!(
        plan.spec.ports.is_empty(),
        "nothing published before the image is inspected"
    );
    assert_eq!(env_value(&plan, "PORT0"), Some("31000"));
    assert_eq!(env_value(&plan, "PORT1000"), Some("32000"));
    assert_eq!(env_value(&plan, "MESOS_SLAVE_ID"), Some("s-0"));
    assert_eq!(env_value(&plan, "LIBPROCESS_PORT"), Some("0"));
    assert_eq!(
        env_value(&plan, "MESOS_SANDBOX"),
        Some("/mnt/mesos/sandbox")
    );
    assert_eq!(
        plan.spec
            .labels
            .get(labels::CONTAINER_ID)
            .map(String::as_str),
        Some(plan.container_id.as_str())
    );
    assert_eq!(
        plan.spec.name.as_deref(),
        Some("mesos-435253ab-d246-47be-a350-35420465d868")
    );
}

#[test]
fn large_port_range_is_paired_not_published_port_by_port() {
    let mut plan = plan(&fixture(), &with_image("img"), &[]).unwrap();
    plan.apply_exposed_ports(&[(443, Protocol::Tcp), (80, Protocol::Tcp)]);
    let published: Vec<(u16, u16)> = plan
        .spec
        .ports
        .iter()
        .map(|p| (p.host_port, p.container_port))
        .collect();
    assert_eq!(published, vec![(31000, 80), (31001, 443)]);
}

#[test]
fn command_task_runs_the_task_command_with_task_env() {
    let launch = command_task(shell("echo hi"), None);
    let plan = plan(&launch, &with_image("busybox"), &[]).unwrap();
    assert_eq!(
        plan.kind,
        LaunchKind::CommandTask {
            task_id: "task-7".into(),
            task_name: "my task".into()
        }
    );
    assert_eq!(plan.spec.command, Command::Shell("echo hi".into()));
    assert_eq!(env_value(&plan, "TASK_INFO"), Some("my task"));
    assert_eq!(env_value(&plan, "MESOS_TASK_ID"), Some("task-7"));
    assert_eq!(env_value(&plan, "PORT"), Some("31000"));
    assert_eq!(env_value(&plan, "PORTS"), Some("31000,31001"));
    assert_eq!(plan.spec.limits.cpu_shares, Some(512));
    assert_eq!(
        plan.spec.labels.get(labels::TASK_ID).map(String::as_str),
        Some("task-7")
    );
    assert_eq!(
        plan.spec
            .labels
            .get(labels::FRAMEWORK_ID)
            .map(String::as_str),
        Some("fw-1")
    );
}

#[test]
fn sandbox_with_colon_is_mounted_at_the_configured_point() {
    let plan = plan(
        &command_task(shell("true"), None),
        &with_image("busybox"),
        &[],
    )
    .unwrap();
    let sandbox = plan.spec.sandbox.as_ref().unwrap();
    assert!(sandbox
        .host_dir
        .to_string_lossy()
        .contains("2024-01-01T00:00:00"));
    assert_eq!(sandbox.container_dir, "/mnt/mesos/sandbox");
    assert_eq!(plan.spec.working_dir.as_deref(), Some("/mnt/mesos/sandbox"));
}

#[test]
fn shell_false_executes_value_with_arguments_after_argv0() {
    let command = CommandInfo {
        shell: Some(false),
        value: Some("/bin/echo".into()),
        arguments: vec!["echo".into(), "a b".into(), "c".into()],
        ..CommandInfo::default()
    };
    let plan = plan(&command_task(command, None), &with_image("busybox"), &[]).unwrap();
    assert_eq!(
        plan.spec.command,
        Command::Argv(vec!["/bin/echo".into(), "a b".into(), "c".into()])
    );
}

#[test]
fn empty_command_uses_the_image_default() {
    let plan = plan(
        &command_task(CommandInfo::default(), None),
        &with_image("busybox"),
        &[],
    )
    .unwrap();
    assert_eq!(plan.spec.command, Command::ImageDefault);
}

#[test]
fn legacy_container_image_url_and_options_apply() {
    let command = legacy(
        "docker:///deimos-test/busybox:latest",
        &["-e", "A=1", "--privileged", "-m", "1g"],
        "env",
    );
    let plan = plan(&command_task(command, None), &permissive(), &[]).unwrap();
    assert_eq!(plan.spec.image, "deimos-test/busybox:latest");
    assert_eq!(env_value(&plan, "A"), Some("1"));
    assert!(plan.spec.privileged);
    assert_eq!(
        plan.spec.limits.memory_bytes,
        Some(64 * 1024 * 1024),
        "the Mesos allocation wins over -m"
    );
}

#[test]
fn legacy_options_argv_after_double_slash_replaces_the_command() {
    let command = legacy(
        "docker://busybox",
        &["-w", "/tmp", "//", "ls", "-l"],
        "ignored",
    );
    let plan = plan_task(command).unwrap();
    assert_eq!(plan.spec.image, "busybox");
    assert_eq!(plan.spec.working_dir.as_deref(), Some("/tmp"));
    assert_eq!(
        plan.spec.command,
        Command::Argv(vec!["ls".into(), "-l".into()])
    );
}

#[test]
fn unknown_docker_option_is_rejected_with_its_name() {
    let command = legacy("docker:///busybox", &["--frobnicate"], "true");
    let error = plan_task(command).unwrap_err();
    assert!(error.to_string().contains("--frobnicate"), "{error}");
}

#[test]
fn non_docker_image_url_is_rejected() {
    let command = legacy("appc://x", &[], "true");
    let error = plan_task(command).unwrap_err();
    assert_eq!(error, TranslateError::ImageUrl("appc://x".into()));
}

fn docker_container(docker: container_info::DockerInfo) -> ContainerInfo {
    ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        docker: Some(docker),
        ..ContainerInfo::default()
    }
}

#[test]
fn docker_info_sets_image_network_ports_privileged_parameters_and_volumes() {
    let mut container = docker_container(container_info::DockerInfo {
        image: "deimos-test/busybox-exposed:latest".into(),
        network: Some(docker_info::Network::Bridge as i32),
        port_mappings: vec![docker_info::PortMapping {
            host_port: 31000,
            container_port: 80,
            protocol: Some("udp".into()),
        }],
        privileged: Some(true),
        parameters: vec![mesos::Parameter {
            key: "dns".into(),
            value: "10.0.0.2".into(),
        }],
        force_pull_image: Some(true),
        ..container_info::DockerInfo::default()
    });
    container.volumes = vec![
        mesos::Volume {
            container_path: "/data".into(),
            host_path: Some("/srv/data".into()),
            mode: mesos::volume::Mode::Ro as i32,
            ..mesos::Volume::default()
        },
        mesos::Volume {
            container_path: "cache".into(),
            host_path: Some("cache".into()),
            mode: mesos::volume::Mode::Rw as i32,
            ..mesos::Volume::default()
        },
    ];
    let launch = command_task(shell("true"), Some(container));
    let plan = plan(&launch, &permissive(), &[]).unwrap();
    assert_eq!(plan.spec.image, "deimos-test/busybox-exposed:latest");
    assert_eq!(plan.spec.network, NetworkMode::Bridge);
    assert_eq!(
        plan.spec.ports,
        vec![PortMapping {
            host_port: 31000,
            container_port: 80,
            protocol: Protocol::Udp
        }]
    );
    assert!(!plan.pair_with_exposed, "explicit mappings are not paired");
    assert!(plan.spec.privileged && plan.spec.force_pull);
    assert_eq!(plan.spec.dns, vec!["10.0.0.2".to_string()]);
    assert_eq!(plan.spec.volumes[0].container_path, "/data");
    assert!(plan.spec.volumes[0].read_only);
    assert_eq!(
        plan.spec.volumes[1].container_path,
        "/mnt/mesos/sandbox/cache"
    );
    assert!(plan.spec.volumes[1]
        .host_path
        .starts_with(&plan.sandbox_dir));
}

#[test]
fn docker_info_without_network_defaults_to_host_as_mesos_does() {
    let container = docker_container(container_info::DockerInfo {
        image: "busybox".into(),
        ..Default::default()
    });
    let plan = plan(
        &command_task(shell("true"), Some(container)),
        &TranslateSettings::default(),
        &[],
    )
    .unwrap();
    assert_eq!(plan.spec.network, NetworkMode::Host);
    assert!(!plan.pair_with_exposed, "host networking publishes nothing");
}

#[test]
fn image_falls_back_to_config_then_agent_default_then_fails() {
    let launch = command_task(shell("true"), None);
    assert_eq!(
        plan(
            &launch,
            &with_image("from-config"),
            &[("MESOS_DEFAULT_CONTAINER_IMAGE", "agent")]
        )
        .unwrap()
        .spec
        .image,
        "from-config"
    );
    assert_eq!(
        plan(
            &launch,
            &TranslateSettings::default(),
            &[("MESOS_DEFAULT_CONTAINER_IMAGE", "agent")]
        )
        .unwrap()
        .spec
        .image,
        "agent"
    );
    assert_eq!(
        plan(&launch, &TranslateSettings::default(), &[]).unwrap_err(),
        TranslateError::NoImage
    );
}

#[test]
fn ignore_image_setting_uses_the_default_image() {
    let container = docker_container(container_info::DockerInfo {
        image: "task-image".into(),
        ..Default::default()
    });
    let settings = TranslateSettings {
        ignore_image: true,
        ..with_image("forced")
    };
    let plan = plan(
        &command_task(shell("true"), Some(container)),
        &settings,
        &[],
    )
    .unwrap();
    assert_eq!(plan.spec.image, "forced");
}

#[test]
fn task_environment_wins_over_generated_variables() {
    let command = CommandInfo {
        environment: Some(Environment {
            variables: vec![mesos::environment::Variable {
                name: "PORT".into(),
                value: "9".into(),
            }],
        }),
        ..shell("true")
    };
    let plan = plan(&command_task(command, None), &with_image("busybox"), &[]).unwrap();
    assert_eq!(env_value(&plan, "PORT"), Some("9"));
}

#[test]
fn identity_labels_cannot_be_overridden_by_options() {
    let container = docker_container(container_info::DockerInfo {
        image: "busybox".into(),
        parameters: vec![mesos::Parameter {
            key: "label".into(),
            value: "team=a".into(),
        }],
        ..Default::default()
    });
    let settings = TranslateSettings {
        owner: Some("/var/lib/mesos".into()),
        ..TranslateSettings::default()
    };
    let plan = plan(
        &command_task(shell("true"), Some(container)),
        &settings,
        &[],
    )
    .unwrap();
    assert_eq!(plan.spec.labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        plan.spec.labels.get(labels::OWNER).map(String::as_str),
        Some("/var/lib/mesos")
    );
    assert_eq!(
        plan.spec.labels.get(labels::MANAGED_BY).map(String::as_str),
        Some("deimos")
    );
}

#[test]
fn uris_are_carried_with_their_flags() {
    let command = CommandInfo {
        uris: vec![
            command_info::Uri {
                value: "http://127.0.0.1/a.tgz".into(),
                executable: Some(false),
                extract: None,
                output_file: Some("b.tgz".into()),
                ..Default::default()
            },
            command_info::Uri {
                value: "http://127.0.0.1/tool".into(),
                cache: Some(true),
                ..Default::default()
            },
        ],
        ..shell("true")
    };
    let plan = plan(&command_task(command, None), &with_image("busybox"), &[]).unwrap();
    assert_eq!(plan.uris.len(), 2);
    assert!(plan.uris[0].extract, "extract defaults to true");
    assert_eq!(plan.uris[0].output_file.as_deref(), Some("b.tgz"));
    assert!(!plan.uris[0].cache, "cache defaults to false");
    assert!(plan.uris[1].cache);
}

#[test]
fn missing_container_id_and_missing_command_are_named() {
    let mut launch = command_task(shell("true"), None);
    launch.container_id.value.clear();
    assert_eq!(
        plan(&launch, &with_image("i"), &[]).unwrap_err(),
        TranslateError::Missing("container_id")
    );
    let mut launch = command_task(shell("true"), None);
    launch.task_info.as_mut().unwrap().command = None;
    assert_eq!(
        plan(&launch, &with_image("i"), &[]).unwrap_err(),
        TranslateError::Missing("task_info.command")
    );
}

#[test]
fn user_network_needs_a_name() {
    let container = docker_container(container_info::DockerInfo {
        image: "busybox".into(),
        network: Some(docker_info::Network::User as i32),
        ..Default::default()
    });
    let error = plan(
        &command_task(shell("true"), Some(container)),
        &TranslateSettings::default(),
        &[],
    )
    .unwrap_err();
    assert_eq!(error, TranslateError::UserNetworkName);
}

#[test]
fn d15_guessed_image_is_the_last_resort_after_config_and_agent_default() {
    let guess = ImageGuess {
        index: Some("registry:5000".into()),
        account_libmesos: Some("libmesos".into()),
        account: None,
        os: ("Ubuntu".into(), "14.04".into()),
    };
    let settings = TranslateSettings {
        image_guess: Some(guess),
        ..TranslateSettings::default()
    };
    let launch = command_task(shell("true"), None);
    assert_eq!(
        plan(&launch, &settings, &[]).unwrap().spec.image,
        "registry:5000/ubuntu:14.04"
    );
    assert_eq!(
        plan(&fixture(), &settings, &[]).unwrap().spec.image,
        "registry:5000/libmesos/ubuntu:14.04"
    );
    assert_eq!(
        plan(
            &launch,
            &settings,
            &[("MESOS_DEFAULT_CONTAINER_IMAGE", "agent")]
        )
        .unwrap()
        .spec
        .image,
        "agent"
    );
}

#[test]
fn os_release_id_and_version_are_read_unquoted() {
    let text = "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\nID_LIKE=x\n";
    assert_eq!(parse_os_release(text), Some(("debian".into(), "12".into())));
    assert_eq!(parse_os_release("ID=arch\n"), None);
}

#[test]
fn default_policy_refuses_privileged_and_host_paths_from_options_and_docker_info() {
    for options in [
        &["--privileged"][..],
        &["-v", "/:/host"],
        &["--volumes-from", "db"],
    ] {
        let error = plan_task(legacy("docker:///busybox", options, "true")).unwrap_err();
        assert!(
            matches!(error, TranslateError::Policy(_)),
            "{options:?}: {error}"
        );
        assert!(error.to_string().contains("[policy]"), "{error}");
    }
    let privileged = docker_container(container_info::DockerInfo {
        image: "busybox".into(),
        privileged: Some(true),
        ..Default::default()
    });
    let error = plan(
        &command_task(shell("true"), Some(privileged)),
        &TranslateSettings::default(),
        &[],
    )
    .unwrap_err();
    assert!(error.to_string().contains("allow_privileged"), "{error}");
    let volume = |host: &str| {
        let mut container = docker_container(container_info::DockerInfo {
            image: "busybox".into(),
            ..Default::default()
        });
        container.volumes = vec![mesos::Volume {
            container_path: "/data".into(),
            host_path: Some(host.into()),
            ..mesos::Volume::default()
        }];
        plan(
            &command_task(shell("true"), Some(container)),
            &TranslateSettings::default(),
            &[],
        )
    };
    let error = volume("/srv/data").unwrap_err().to_string();
    assert!(
        error.contains("host path /srv/data is not allowed"),
        "{error}"
    );
    assert!(
        volume("cache").is_ok(),
        "a volume inside the sandbox is always allowed"
    );
}

#[test]
fn launch_user_applies_when_the_command_names_none() {
    // The real agent's record carries `user: "till"` (the framework user, --switch_user).
    let mut from_launch = plan(&fixture(), &with_image("img"), &[]).unwrap();
    assert_eq!(from_launch.switch_user.as_deref(), Some("till"));
    assert_eq!(
        from_launch.spec.user, None,
        "resolved on the host by the launcher"
    );
    from_launch.switch_user = Some("root".into());
    from_launch.apply_switch_user();
    assert_eq!(
        from_launch.spec.user.as_deref(),
        Some("0:0"),
        "root exists on every host"
    );
    from_launch.spec.user = None;
    from_launch.switch_user = Some("no-such-user-deimos-test".into());
    from_launch.apply_switch_user();
    assert_eq!(
        from_launch.spec.user, None,
        "unknown on this host: the image's user"
    );
    let mut named = fixture();
    if let Some(executor) = named.executor_info.as_mut() {
        executor.command.user = Some("alice".into());
    }
    let own = plan(&named, &with_image("img"), &[]).unwrap();
    assert_eq!(own.spec.user.as_deref(), Some("alice"));
    assert_eq!(own.switch_user, None);
    let mut option = command_task(legacy("docker:///busybox", &["-u", "bob"], "true"), None);
    option.user = Some("till".into());
    let by_option = plan(&option, &TranslateSettings::default(), &[]).unwrap();
    assert_eq!(by_option.spec.user.as_deref(), Some("bob"), "-u still wins");
    assert_eq!(by_option.switch_user, None);
    let none = plan(&command_task(shell("true"), None), &with_image("img"), &[]);
    assert_eq!(none.map(|p| p.spec.user), Ok(None));
}
