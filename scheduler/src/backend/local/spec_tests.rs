use std::collections::BTreeMap;
use std::path::Path;

use deimos_runtime::spec::labels;
use time::OffsetDateTime;

use super::*;
use crate::backend::Allocation;
use crate::plan::PlanSettings;
use crate::task::{Network, NewTask, PortRequest, Secret, Task, TaskId, Volume};

/// A minimal valid request, parsed as a client would send it.
fn request() -> NewTask {
    let body = br#"{"image": "deimos-test/busybox:latest", "cpu": 0.5, "mem": 64}"#;
    crate::api::parse_v1(body).unwrap()
}

fn task(request: NewTask) -> Task {
    let at = OffsetDateTime::UNIX_EPOCH;
    Task::new(TaskId::generate([7; 16]), "t".into(), request, at)
}

fn allocation(host_ports: Vec<u16>) -> Allocation {
    Allocation {
        cpus: 0.5,
        mem_mib: 64.0,
        host_ports,
    }
}

/// The plan of attempt `attempt` rendered with the sandbox `sandbox`.
fn render(
    request: NewTask,
    attempt: u32,
    host_ports: Vec<u16>,
    sandbox: &str,
    user_network: Option<&str>,
) -> ContainerSpec {
    let settings = PlanSettings {
        instance_id: "eremetic:/data",
        user_network,
    };
    let plan = RunPlan::build(&task(request), attempt, &allocation(host_ports), settings)
        .expect("a plannable task");
    container_spec(&plan, Path::new(sandbox))
}

fn spec_of(request: NewTask, host_ports: Vec<u16>) -> ContainerSpec {
    render(
        request,
        2,
        host_ports,
        "/data/sandboxes/x",
        Some("tasks-net"),
    )
}

fn env_of(spec: &ContainerSpec) -> Vec<(String, String)> {
    spec.env
        .iter()
        .map(|var| (var.name.clone(), var.value.clone()))
        .collect()
}

fn port(container_port: u16, protocol: PortProtocol) -> PortRequest {
    PortRequest {
        container_port,
        protocol,
    }
}

#[test]
fn command_runs_through_the_shell_and_drops_args() {
    let mut req = request();
    req.command = Some("echo hi".into());
    req.args = vec!["ignored".into()];
    let spec = spec_of(req, vec![]);
    assert_eq!(spec.command, Command::Shell("echo hi".into()));
    assert_eq!(spec.entrypoint, None);
}

#[test]
fn args_without_command_go_to_the_image_entrypoint() {
    let mut req = request();
    req.args = vec!["--flag".into(), "value".into()];
    let spec = spec_of(req, vec![]);
    assert_eq!(
        spec.command,
        Command::Argv(vec!["--flag".into(), "value".into()])
    );
    assert_eq!(spec.entrypoint, None, "the image's entrypoint must stay");
    assert_eq!(spec_of(request(), vec![]).command, Command::ImageDefault);
}

#[test]
fn env_order_is_env_masked_ports_task_id_sandbox() {
    let mut req = request();
    req.env = BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]);
    req.masked_env = BTreeMap::from([("SECRET".into(), Secret::new("hunter2"))]);
    req.ports = vec![port(80, PortProtocol::Tcp), port(53, PortProtocol::Udp)];
    let spec = spec_of(req, vec![31005, 31009]);
    let id = TaskId::generate([7; 16]).to_string();
    let expected: Vec<(String, String)> = [
        ("A", "1"),
        ("B", "2"),
        ("SECRET", "hunter2"),
        ("PORT0", "31005"),
        ("PORT1", "31009"),
        ("PORT", "31005"),
        ("MESOS_TASK_ID", id.as_str()),
        ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    assert_eq!(env_of(&spec), expected);
}

#[test]
fn port0_is_the_first_requested_port_not_the_last() {
    let mut req = request();
    req.ports = vec![port(8080, PortProtocol::Tcp), port(9090, PortProtocol::Udp)];
    let spec = spec_of(req, vec![31000, 31001]);
    assert_eq!(
        spec.ports,
        vec![
            PortMapping {
                host_port: 31000,
                container_port: 8080,
                protocol: Protocol::Tcp
            },
            PortMapping {
                host_port: 31001,
                container_port: 9090,
                protocol: Protocol::Udp
            },
        ]
    );
    assert!(env_of(&spec).contains(&("PORT0".into(), "31000".into())));
}

#[test]
fn no_ports_means_no_port_variables() {
    let spec = spec_of(request(), vec![]);
    assert!(spec.ports.is_empty());
    assert!(!env_of(&spec)
        .iter()
        .any(|(name, _)| name.starts_with("PORT")));
}

#[test]
fn host_network_exports_ports_without_mappings() {
    let mut req = request();
    req.network = Network::Host;
    req.ports = vec![port(8080, PortProtocol::Tcp)];
    let spec = spec_of(req, vec![31000]);
    assert_eq!(spec.network, NetworkMode::Host);
    assert!(spec.ports.is_empty());
    assert!(env_of(&spec).contains(&("PORT0".into(), "31000".into())));
    assert!(env_of(&spec).contains(&("PORT".into(), "31000".into())));
}

#[test]
fn network_modes_map_to_docker_modes() {
    let mode = |network, user: Option<&str>| {
        let mut req = request();
        req.network = network;
        render(req, 1, vec![], "/s", user).network
    };
    assert_eq!(mode(Network::Bridge, None), NetworkMode::Bridge);
    assert_eq!(mode(Network::None, None), NetworkMode::None);
    assert_eq!(
        mode(Network::User, Some("tasks-net")),
        NetworkMode::User("tasks-net".into())
    );
}

#[test]
fn resources_volumes_and_options_are_carried_over() {
    let mut req = request();
    req.volumes = vec![Volume {
        container_path: "/data".into(),
        host_path: "/srv/data".into(),
    }];
    req.volumes_from = vec!["other".into()];
    req.dns = Some("10.0.0.2".into());
    req.privileged = true;
    req.user = Some("nobody".into());
    req.force_pull_image = true;
    let spec = spec_of(req, vec![]);
    assert_eq!(spec.image, "deimos-test/busybox:latest");
    assert_eq!(
        spec.limits,
        Limits::from_allocation(Some(0.5), Some(64.0), true)
    );
    assert_eq!(spec.limits.memory_bytes, Some(64 * 1024 * 1024));
    assert_eq!(
        spec.volumes,
        vec![VolumeMount {
            host_path: "/srv/data".into(),
            container_path: "/data".into(),
            read_only: false
        }]
    );
    assert_eq!(spec.volumes_from, vec!["other".to_owned()]);
    assert_eq!(spec.dns, vec!["10.0.0.2".to_owned()]);
    assert!(spec.privileged && spec.force_pull);
    assert_eq!(spec.user.as_deref(), Some("nobody"));
    assert_eq!(
        spec.sandbox,
        Some(Sandbox {
            host_dir: "/data/sandboxes/x".into(),
            container_dir: DEFAULT_SANDBOX_MOUNT.into()
        })
    );
}

#[test]
fn container_is_named_and_labelled_after_the_run_and_our_labels_win() {
    let mut req = request();
    req.labels = BTreeMap::from([
        ("team".into(), "data".into()),
        (labels::OWNER.into(), "forged".into()),
        (labels::MANAGED_BY.into(), "forged".into()),
    ]);
    req.ports = vec![port(80, PortProtocol::Tcp), port(81, PortProtocol::Tcp)];
    let spec = spec_of(req, vec![31000, 31001]);
    let id = TaskId::generate([7; 16]).to_string();
    let run = format!("{id}.2");
    assert_eq!(spec.name.as_deref(), Some(run.as_str()));
    let label = |key: &str| spec.labels.get(key).map(String::as_str);
    assert_eq!(label("team"), Some("data"));
    assert_eq!(label(labels::MANAGED_BY), Some("eremetic"));
    assert_eq!(label(labels::OWNER), Some("eremetic:/data"));
    assert_eq!(label(labels::TASK_ID), Some(id.as_str()));
    assert_eq!(label(labels::CONTAINER_ID), Some(run.as_str()));
    assert_eq!(label(HOST_PORTS_LABEL), Some("31000,31001"));
}

#[test]
fn root_runs_as_uid_0_so_images_without_a_passwd_file_start() {
    let mut req = request();
    req.user = Some("root".into());
    assert_eq!(spec_of(req.clone(), vec![]).user.as_deref(), Some("0"));
    req.user = Some("root:wheel".into());
    assert_eq!(
        spec_of(req.clone(), vec![]).user.as_deref(),
        Some("root:wheel")
    );
    req.user = None;
    assert_eq!(spec_of(req, vec![]).user, None, "records from before");
}

#[test]
fn sandbox_relative_volumes_are_mounted_from_the_sandbox() {
    let mut req = request();
    req.volumes = vec![Volume {
        container_path: "/in".into(),
        host_path: "./data//in/".into(),
    }];
    let spec = spec_of(req, vec![]);
    assert_eq!(
        spec.volumes[0].host_path,
        Path::new("/data/sandboxes/x/data/in")
    );
}

#[test]
fn fetch_uris_go_to_the_fetcher_as_requested() {
    let mut req = request();
    req.fetch = vec![crate::task::FetchUri {
        uri: "http://x/tool".into(),
        extract: false,
        executable: true,
        cache: true,
    }];
    let settings = PlanSettings {
        instance_id: "i",
        user_network: None,
    };
    let plan = RunPlan::build(&task(req), 0, &allocation(vec![]), settings).unwrap();
    let uris = fetch_uris(&plan);
    assert_eq!(uris.len(), 1);
    assert_eq!(
        (
            uris[0].value.as_str(),
            uris[0].executable,
            uris[0].extract,
            uris[0].cache
        ),
        ("http://x/tool", true, false, true)
    );
}
