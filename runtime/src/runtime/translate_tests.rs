//! Tests of the pure translations: specification → Docker request, Docker response → values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bollard::models::{MountType, PortBinding};

use super::convert;
use super::translate::*;
use super::*;
use crate::spec::{
    self, Command, EnvVar, NetworkMode, PortMapping, Protocol, Sandbox, VolumeMount,
    DEFAULT_SANDBOX_MOUNT,
};

fn full_spec() -> ContainerSpec {
    ContainerSpec {
        name: Some("task-1".into()),
        image: "registry:5000/team/app:2".into(),
        command: Command::Shell("echo hi".into()),
        entrypoint: Some(vec!["/init".into()]),
        env: vec![EnvVar::new("A", "1"), EnvVar::new("B", "2")],
        ports: vec![PortMapping {
            host_port: 31000,
            container_port: 80,
            protocol: Protocol::Tcp,
        }],
        limits: Limits {
            cpu_shares: Some(512),
            cpu_quota: Some(0.5),
            memory_bytes: Some(64 << 20),
        },
        volumes: vec![VolumeMount {
            host_path: "/data".into(),
            container_path: "/mnt/data".into(),
            read_only: true,
        }],
        volumes_from: vec!["helper".into()],
        network: NetworkMode::User("tasks".into()),
        dns: vec!["10.0.0.2".into()],
        extra_hosts: vec!["db:10.0.0.3".into()],
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["MKNOD".into()],
        hostname: Some("worker".into()),
        privileged: true,
        user: Some("1000:1000".into()),
        labels: BTreeMap::from([(spec::labels::TASK_ID.to_owned(), "t1".to_owned())]),
        working_dir: Some("/work".into()),
        sandbox: Some(Sandbox {
            host_dir: "/var/lib/mesos/slaves/s1/runs/2024-01-01T10:00:00".into(),
            container_dir: DEFAULT_SANDBOX_MOUNT.into(),
        }),
        force_pull: false,
        registry_auth: None,
    }
}

#[test]
fn every_field_of_the_spec_reaches_the_create_request() {
    let request = create_request(&full_spec()).unwrap();
    assert_eq!(request.options.name.as_deref(), Some("task-1"));
    let body = request.body;
    assert_eq!(body.image.as_deref(), Some("registry:5000/team/app:2"));
    assert_eq!(
        body.cmd,
        Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
    );
    assert_eq!(body.entrypoint, Some(vec!["/init".into()]));
    assert_eq!(body.env, Some(vec!["A=1".into(), "B=2".into()]));
    assert_eq!(body.exposed_ports, Some(vec!["80/tcp".into()]));
    assert_eq!(body.hostname.as_deref(), Some("worker"));
    assert_eq!(body.user.as_deref(), Some("1000:1000"));
    assert_eq!(body.working_dir.as_deref(), Some("/work"));
    assert_eq!(body.labels.unwrap()["io.deimos.task-id"], "t1");
    let host = body.host_config.unwrap();
    assert_eq!(host.cpu_shares, Some(512));
    assert_eq!(host.cpu_period, Some(100_000));
    assert_eq!(host.cpu_quota, Some(50_000));
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.memory_swap, Some(64 << 20));
    assert_eq!(host.volumes_from, Some(vec!["helper".into()]));
    assert_eq!(host.network_mode.as_deref(), Some("tasks"));
    assert_eq!(host.dns, Some(vec!["10.0.0.2".into()]));
    assert_eq!(host.extra_hosts, Some(vec!["db:10.0.0.3".into()]));
    assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".into()]));
    assert_eq!(host.cap_drop, Some(vec!["MKNOD".into()]));
    assert_eq!(host.privileged, Some(true));
    assert_eq!(
        host.binds, None,
        "bind mounts must not use the Binds syntax"
    );
    let bindings = host.port_bindings.unwrap();
    assert_eq!(
        bindings["80/tcp"],
        Some(vec![PortBinding {
            host_ip: None,
            host_port: Some("31000".into())
        }])
    );
    let mounts = host.mounts.unwrap();
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[0].typ, Some(MountType::BIND));
    assert_eq!(mounts[0].source.as_deref(), Some("/data"));
    assert_eq!(mounts[0].target.as_deref(), Some("/mnt/data"));
    assert_eq!(mounts[0].read_only, Some(true));
}

#[test]
fn sandbox_path_with_colons_is_mounted_verbatim_as_a_bind_mount() {
    let host = create_request(&full_spec())
        .unwrap()
        .body
        .host_config
        .unwrap();
    let sandbox = &host.mounts.unwrap()[1];
    assert_eq!(sandbox.typ, Some(MountType::BIND));
    assert_eq!(
        sandbox.source.as_deref(),
        Some("/var/lib/mesos/slaves/s1/runs/2024-01-01T10:00:00")
    );
    assert_eq!(sandbox.target.as_deref(), Some(DEFAULT_SANDBOX_MOUNT));
    assert_eq!(sandbox.read_only, None);
}

#[test]
fn minimal_spec_leaves_docker_defaults_alone() {
    let spec = ContainerSpec {
        image: "busybox".into(),
        ..Default::default()
    };
    let request = create_request(&spec).unwrap();
    assert_eq!(request.options.name, None);
    let body = request.body;
    assert_eq!((body.cmd, body.entrypoint, body.env), (None, None, None));
    assert_eq!((body.exposed_ports, body.labels), (None, None));
    let host = body.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("bridge"));
    assert_eq!(
        (host.cpu_shares, host.cpu_quota, host.cpu_period),
        (None, None, None)
    );
    assert_eq!((host.memory, host.memory_swap), (None, None));
    assert_eq!(
        (host.mounts, host.port_bindings, host.privileged),
        (None, None, None)
    );
}

#[test]
fn empty_entrypoint_is_sent_to_clear_the_image_entrypoint() {
    let spec = ContainerSpec {
        image: "i".into(),
        entrypoint: Some(vec![]),
        ..Default::default()
    };
    assert_eq!(create_request(&spec).unwrap().body.entrypoint, Some(vec![]));
}

#[test]
fn ports_are_keyed_by_protocol_and_share_container_ports() {
    let mapping = |host_port, container_port, protocol| PortMapping {
        host_port,
        container_port,
        protocol,
    };
    let (exposed, bindings) = port_maps(&[
        mapping(31000, 53, Protocol::Udp),
        mapping(31001, 53, Protocol::Tcp),
        mapping(31002, 80, Protocol::Tcp),
        mapping(31003, 80, Protocol::Tcp),
        mapping(0, 9000, Protocol::Sctp),
    ]);
    assert_eq!(exposed, ["53/udp", "53/tcp", "80/tcp", "9000/sctp"]);
    let host_ports = |key: &str| -> Vec<String> {
        bindings[key]
            .clone()
            .unwrap()
            .into_iter()
            .map(|b| b.host_port.unwrap())
            .collect()
    };
    assert_eq!(host_ports("53/udp"), ["31000"]);
    assert_eq!(host_ports("53/tcp"), ["31001"]);
    assert_eq!(host_ports("80/tcp"), ["31002", "31003"]);
    assert_eq!(
        host_ports("9000/sctp"),
        [""],
        "host port 0 lets Docker choose"
    );
}

#[test]
fn later_env_duplicates_win() {
    let env = vec![
        EnvVar::new("A", "1"),
        EnvVar::new("B", "2"),
        EnvVar::new("A", "3"),
        EnvVar::new("C", "x=y"),
    ];
    assert_eq!(env_entries(&env).unwrap(), ["B=2", "A=3", "C=x=y"]);
}

#[test]
fn invalid_env_name_is_rejected_without_revealing_values() {
    let error = env_entries(&[EnvVar::new("A=B", "hunter2")]).unwrap_err();
    assert!(error.to_string().contains("A=B"), "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    let error = env_entries(&[EnvVar::new("TOKEN", "hun\0ter2")]).unwrap_err();
    assert!(
        error.to_string().contains("TOKEN") && !error.to_string().contains("hun"),
        "{error}"
    );
    assert!(env_entries(&[EnvVar::new("", "v")]).is_err());
}

#[test]
fn cpu_quota_is_cpus_times_the_100ms_period() {
    assert_eq!(cpu_quota_micros(1.0).unwrap(), 100_000);
    assert_eq!(cpu_quota_micros(2.5).unwrap(), 250_000);
    assert_eq!(cpu_quota_micros(0.1).unwrap(), 10_000);
    assert_eq!(
        cpu_quota_micros(0.001).unwrap(),
        1_000,
        "raised to the kernel minimum"
    );
    assert!(cpu_quota_micros(0.0).is_err());
    assert!(cpu_quota_micros(-1.0).is_err());
    assert!(cpu_quota_micros(f64::NAN).is_err());
    assert!(cpu_quota_micros(f64::INFINITY).is_err());
}

#[test]
fn oversized_memory_limit_is_an_invalid_spec() {
    let spec = ContainerSpec {
        image: "i".into(),
        limits: Limits {
            memory_bytes: Some(u64::MAX),
            ..Default::default()
        },
        ..Default::default()
    };
    let error = create_request(&spec).unwrap_err();
    assert!(error.to_string().contains("limits.memory_bytes"), "{error}");
}

#[test]
fn update_sets_memory_swap_with_memory_and_keeps_unset_limits() {
    let body = update_request(&Limits {
        memory_bytes: Some(32 << 20),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (body.memory, body.memory_swap),
        (Some(32 << 20), Some(32 << 20))
    );
    assert_eq!(
        (body.cpu_shares, body.cpu_quota, body.cpu_period),
        (None, None, None)
    );
    let body = update_request(&Limits {
        cpu_quota: Some(2.0),
        cpu_shares: Some(2048),
        memory_bytes: None,
    })
    .unwrap();
    assert_eq!(
        (body.cpu_quota, body.cpu_period, body.cpu_shares),
        (Some(200_000), Some(100_000), Some(2048))
    );
    assert_eq!(body.memory, None);
}

#[test]
fn pull_reference_defaults_the_tag_to_latest() {
    let split = |image| pull_reference(image);
    assert_eq!(split("busybox"), ("busybox".into(), Some("latest".into())));
    assert_eq!(
        split("busybox:1.36"),
        ("busybox".into(), Some("1.36".into()))
    );
    assert_eq!(
        split("registry:5000/a/b"),
        ("registry:5000/a/b".into(), Some("latest".into()))
    );
    assert_eq!(
        split("registry:5000/a/b:v2"),
        ("registry:5000/a/b".into(), Some("v2".into()))
    );
    assert_eq!(split("a/b@sha256:abc"), ("a/b@sha256:abc".into(), None));
}

#[test]
fn exposed_ports_sort_numerically_not_lexically() {
    let keys: Vec<String> = [
        "8080/tcp",
        "443/tcp",
        "80/tcp",
        "53/udp",
        "9",
        "bogus/tcp",
        "1/quic",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    let ports = convert::exposed_ports(&keys);
    let expected = [
        (9, Protocol::Tcp),
        (53, Protocol::Udp),
        (80, Protocol::Tcp),
        (443, Protocol::Tcp),
        (8080, Protocol::Tcp),
    ];
    let actual: Vec<(u16, Protocol)> = ports.iter().map(|p| (p.port, p.protocol)).collect();
    assert_eq!(actual, expected);
}

#[test]
fn exit_status_infers_signals_from_shell_style_codes() {
    assert_eq!(
        exit_status(0, false),
        ExitStatus {
            exit_code: 0,
            oom_killed: false,
            signal: None
        }
    );
    assert_eq!(exit_status(3, false).signal, None);
    assert_eq!(exit_status(128, false).signal, None);
    assert_eq!(exit_status(137, false).signal, Some(9));
    assert_eq!(exit_status(143, false).signal, Some(15));
    assert_eq!(exit_status(255, false).signal, None);
    assert_eq!(
        exit_status(137, true),
        ExitStatus {
            exit_code: 137,
            oom_killed: true,
            signal: Some(9)
        }
    );
}

#[test]
fn docker_zero_time_means_never() {
    assert_eq!(convert::docker_time(Some("0001-01-01T00:00:00Z")), None);
    assert_eq!(convert::docker_time(None), None);
    assert_eq!(convert::docker_time(Some("yesterday")), None);
    let time = convert::docker_time(Some("2024-05-01T12:30:45.123456789Z")).unwrap();
    assert_eq!(time.unix_timestamp(), 1_714_566_645);
}

#[test]
fn inspected_limits_convert_quota_back_to_cpus() {
    let host = bollard::models::HostConfig {
        cpu_shares: Some(0),
        cpu_quota: Some(150_000),
        cpu_period: Some(100_000),
        memory: Some(8 << 20),
        ..Default::default()
    };
    let limits = convert::limits_of(&host);
    assert_eq!(
        limits,
        Limits {
            cpu_shares: None,
            cpu_quota: Some(1.5),
            memory_bytes: Some(8 << 20)
        }
    );
}

#[test]
fn usage_stats_read_cgroup_v1_and_v2_memory_keys() {
    let stats: bollard::models::ContainerStatsResponse = serde_json::from_value(serde_json::json!({
        "cpu_stats": {
            "cpu_usage": {"total_usage": 300, "usage_in_usermode": 200, "usage_in_kernelmode": 100},
            "throttling_data": {"periods": 10, "throttled_periods": 2, "throttled_time": 5000}
        },
        "memory_stats": {"usage": 4096, "limit": 8192, "stats": {"rss": 1024, "cache": 2048}}
    }))
    .unwrap();
    let usage = convert::usage_stats(&stats);
    assert_eq!(
        (usage.cpu_total_ns, usage.cpu_user_ns, usage.cpu_system_ns),
        (300, 200, 100)
    );
    assert_eq!(
        (
            usage.cpu_periods,
            usage.cpu_throttled_periods,
            usage.cpu_throttled_ns
        ),
        (10, 2, 5000)
    );
    assert_eq!(
        (usage.memory_usage_bytes, usage.memory_limit_bytes),
        (4096, 8192)
    );
    assert_eq!(
        (usage.memory_rss_bytes, usage.memory_cache_bytes),
        (Some(1024), Some(2048))
    );
    let v2: bollard::models::ContainerStatsResponse = serde_json::from_value(serde_json::json!({
        "memory_stats": {"usage": 1, "limit": 2, "stats": {"anon": 7, "file": 8}}
    }))
    .unwrap();
    let usage = convert::usage_stats(&v2);
    assert_eq!(
        (usage.memory_rss_bytes, usage.memory_cache_bytes),
        (Some(7), Some(8))
    );
}

#[test]
fn inspect_response_converts_state_labels_and_times() {
    let response: bollard::models::ContainerInspectResponse =
        serde_json::from_value(serde_json::json!({
            "Id": "abc123",
            "Name": "/task-1",
            "State": {
                "Status": "exited", "Running": false, "Pid": 0, "ExitCode": 137,
                "OOMKilled": true, "StartedAt": "2024-05-01T12:30:45Z",
                "FinishedAt": "2024-05-01T12:31:45Z"
            },
            "Config": {"Image": "busybox", "Labels": {"io.deimos.task-id": "t1"}},
            "HostConfig": {"Memory": 8388608, "CpuShares": 1024}
        }))
        .unwrap();
    let info = convert::container_info("task-1", response);
    assert_eq!(
        (info.id.as_str(), info.name.as_str(), info.image.as_str()),
        ("abc123", "task-1", "busybox")
    );
    assert_eq!(
        (info.state, info.running, info.pid),
        (ContainerState::Exited, false, None)
    );
    assert_eq!((info.exit_code, info.oom_killed), (Some(137), true));
    assert_eq!(
        info.finished_at.unwrap().unix_timestamp() - info.started_at.unwrap().unix_timestamp(),
        60
    );
    assert_eq!(info.labels["io.deimos.task-id"], "t1");
    assert_eq!(
        info.limits,
        Limits {
            cpu_shares: Some(1024),
            cpu_quota: None,
            memory_bytes: Some(8 << 20)
        }
    );
}

#[test]
fn running_container_has_no_exit_code() {
    let response: bollard::models::ContainerInspectResponse =
        serde_json::from_value(serde_json::json!({
            "Id": "abc", "State": {"Status": "running", "Running": true, "Pid": 4242, "ExitCode": 0}
        }))
        .unwrap();
    let info = convert::container_info("abc", response);
    assert_eq!(
        (info.running, info.pid, info.exit_code),
        (true, Some(4242), None)
    );
}

#[test]
fn volume_host_path_with_colon_and_space_is_passed_verbatim() {
    let spec = ContainerSpec {
        image: "i".into(),
        volumes: vec![VolumeMount {
            host_path: PathBuf::from("/a:b/c d"),
            container_path: "/x".into(),
            read_only: false,
        }],
        ..Default::default()
    };
    let mounts = mounts(&spec);
    assert_eq!(mounts[0].source.as_deref(), Some("/a:b/c d"));
    assert_eq!(mounts[0].read_only, None);
}
