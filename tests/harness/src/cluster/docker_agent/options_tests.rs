use std::path::Path;

use mesos_proto::v1::container_info::DockerInfo;
use mesos_proto::v1::{value, CommandInfo, ContainerInfo, Resource, TaskId, TaskInfo, Volume};

use super::*;

fn scalar_resource(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

fn docker_task(command: CommandInfo, volumes: Vec<Volume>) -> TaskInfo {
    TaskInfo {
        task_id: TaskId { value: "t".into() },
        resources: vec![scalar_resource("cpus", 0.25), scalar_resource("mem", 16.0)],
        command: Some(command),
        container: Some(ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            volumes,
            docker: Some(DockerInfo {
                image: "img".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ctx() -> RunContext<'static> {
    RunContext {
        docker: "docker",
        socket: "/var/run/docker.sock",
        name: "mesos-c1",
        sandbox: Path::new("/w/sandbox"),
        mapped: "/mnt/mesos/sandbox",
        role: "*",
        enable_cfs: false,
    }
}

#[test]
fn docker_run_has_mesos_limits_env_sandbox_and_value_plus_arguments() {
    let command = CommandInfo {
        shell: Some(false),
        value: Some("echo".into()),
        arguments: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let argv = docker_executor_argv(&docker_task(command, Vec::new()), &ctx()).unwrap();
    let expected = "docker -H unix:///var/run/docker.sock run --cpu-shares 256 \
         --memory 33554432 -e MESOS_ALLOCATION_ROLE=* -e MESOS_CONTAINER_NAME=mesos-c1 \
         -e MESOS_SANDBOX=/mnt/mesos/sandbox -v /w/sandbox:/mnt/mesos/sandbox --net host \
         --name mesos-c1 img echo a b";
    assert_eq!(argv.join(" "), expected);
}

#[test]
fn relative_volume_paths_and_shell_without_value_are_refused() {
    let volume = Volume {
        mode: volume::Mode::Rw as i32,
        container_path: "data".into(),
        host_path: Some("cache".into()),
        ..Default::default()
    };
    let task = docker_task(CommandInfo::default(), vec![volume]);
    assert_eq!(
        docker_executor_argv(&task, &ctx()).unwrap_err(),
        "Both host_path 'cache' and container_path 'data' of a volume are relative"
    );
    let task = docker_task(CommandInfo::default(), Vec::new());
    assert_eq!(
        docker_executor_argv(&task, &ctx()).unwrap_err(),
        "Shell specified but no command value provided"
    );
}

#[test]
fn inspect_reads_the_network_mode_address_and_start() {
    let raw = r#"[{"Id":"x","Name":"/n","State":{"Pid":42,"StartedAt":"2024-01-01T00:00:00Z","OOMKilled":true},
        "HostConfig":{"NetworkMode":"bridge"},
        "NetworkSettings":{"IPAddress":"9.9.9.9","Networks":{"bridge":{"IPAddress":"172.17.0.5","GlobalIPv6Address":""}}}}]"#;
    let inspected = parse_inspect(raw).unwrap();
    assert!(inspected.started && inspected.oom_killed);
    assert_eq!(inspected.pid, Some(42));
    assert_eq!(inspected.ip.as_deref(), Some("172.17.0.5"));
    assert_eq!(inspected.ip6, None);
    assert_eq!(parse_inspect("[]").unwrap_err(), "Failed to find container");
}

#[test]
fn wait_statuses_and_byte_sizes_read_as_mesos_prints_them() {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        wstringify(ExitStatus::from_raw(3 << 8)),
        "exited with status 3"
    );
    assert_eq!(
        wstringify(ExitStatus::from_raw(15)),
        "terminated with signal Terminated"
    );
    assert_eq!(bytes_text(64 * 1024 * 1024), "64MB");
    assert_eq!(bytes_text(1536), "1536B");
}
