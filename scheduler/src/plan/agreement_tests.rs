//! The two renderings of one plan agree field by field: the local container specification
//! and the Mesos `TaskInfo`, for a table of tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use deimos_runtime::spec::{Command, ContainerSpec, Limits, NetworkMode, Protocol};
use mesos_proto::v1::container_info::docker_info::Network as DockerNetwork;
use mesos_proto::v1::{value, AgentId, FrameworkId, Offer, OfferId, Resource, TaskInfo};
use time::OffsetDateTime;

use super::*;
use crate::backend::local::spec::{container_spec, docker_user, fetch_uris};
use crate::mesos::launch_mode::{ExecutorSettings, LaunchMode};
use crate::mesos::offers::Leftovers;
use crate::mesos::task_info::{task_info, LaunchSettings};
use crate::task::{Network, NewTask, PortRequest, Secret};

const INSTANCE: &str = "eremetic:/var/lib/eremetic";
const USER_NETWORK: &str = "tasks-net";

fn request() -> NewTask {
    let body = br#"{"image": "deimos-test/busybox:latest", "cpu": 0.25, "mem": 48}"#;
    crate::api::parse_v1(body).expect("valid request")
}

fn port(container_port: u16, protocol: PortProtocol) -> PortRequest {
    PortRequest {
        container_port,
        protocol,
    }
}

fn volume(container_path: &str, host_path: &str) -> Volume {
    Volume {
        container_path: container_path.into(),
        host_path: host_path.into(),
    }
}

/// The table: every field that the plan gives a meaning.
fn table() -> Vec<(&'static str, NewTask)> {
    let minimal = request();
    let mut full = request();
    full.command = Some("echo $PORT0 > out".into());
    full.args = vec!["ignored".into()];
    full.env = BTreeMap::from([("B".into(), "2".into()), ("A".into(), "1".into())]);
    full.masked_env = BTreeMap::from([("TOKEN".into(), Secret::new("hunter2"))]);
    full.labels = BTreeMap::from([
        ("team".into(), "data".into()),
        (labels::OWNER.into(), "forged".into()),
    ]);
    full.ports = vec![port(80, PortProtocol::Tcp), port(0, PortProtocol::Udp)];
    full.volumes = vec![volume("/srv", "/srv/data"), volume("/in", "./fetched//in/")];
    full.volumes_from = vec!["store".into()];
    full.dns = Some("10.0.0.53".into());
    full.fetch = vec![
        FetchUri::from_plain_uri("http://x/a.tar.gz"),
        FetchUri {
            uri: "http://x/tool".into(),
            extract: false,
            executable: true,
            cache: true,
        },
    ];
    full.user = Some("nobody".into());
    full.privileged = true;
    full.force_pull_image = true;
    let mut args_on_host = request();
    args_on_host.args = vec!["--verbose".into(), "run".into()];
    args_on_host.network = Network::Host;
    args_on_host.ports = vec![port(8080, PortProtocol::Tcp)];
    let mut user_network = request();
    user_network.network = Network::User;
    user_network.ports = vec![port(0, PortProtocol::Tcp)];
    user_network.volumes = vec![volume("/sandbox", ".")];
    let mut no_network_old_record = request();
    no_network_old_record.network = Network::None;
    no_network_old_record.user = None;
    no_network_old_record.command = Some(String::new());
    vec![
        ("minimal, default user root", minimal),
        ("everything", full),
        ("args on the host network", args_on_host),
        ("user network", user_network),
        ("no network, record without user", no_network_old_record),
    ]
}

fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

fn offer() -> Offer {
    let ports = Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range {
                begin: 31000,
                end: 31010,
            }],
        }),
        ..Default::default()
    };
    Offer {
        id: OfferId { value: "o".into() },
        framework_id: FrameworkId { value: "f".into() },
        agent_id: AgentId {
            value: "agent-1".into(),
        },
        hostname: "agent1".into(),
        resources: vec![scalar("cpus", 4.0), scalar("mem", 4096.0), ports],
        ..Default::default()
    }
}

/// Both renderings of attempt 3 of `task`, with the host ports the Mesos claim chose (the
/// local allocation holds the same ones).
fn render_both(task: &Task) -> (ContainerSpec, PathBuf, TaskInfo) {
    let claim = Leftovers::new(&offer(), "*")
        .claim(&task.request, OffsetDateTime::UNIX_EPOCH)
        .expect("the task fits the offer");
    let launch = LaunchSettings {
        instance_id: INSTANCE.into(),
        user_network: Some(USER_NETWORK.into()),
        kill_grace: Duration::from_secs(3),
        mode: LaunchMode::Docker,
        executor: ExecutorSettings::default(),
    };
    let info = task_info(task, 3, &claim, None, &launch).expect("task info");
    let allocation = Allocation::for_task(&task.request, claim.host_ports.clone());
    let settings = PlanSettings {
        instance_id: INSTANCE,
        user_network: Some(USER_NETWORK),
    };
    let plan = RunPlan::build(task, 3, &allocation, settings).expect("plan");
    let sandbox = Path::new("/data/sandboxes").join(task.id.as_str());
    (container_spec(&plan, &sandbox), sandbox, info)
}

fn mesos_scalar(info: &TaskInfo, name: &str) -> f64 {
    info.resources
        .iter()
        .filter(|resource| resource.name == name)
        .filter_map(|resource| resource.scalar.as_ref())
        .map(|scalar| scalar.value)
        .sum()
}

fn assert_agree(case: &str, task: &Task, spec: &ContainerSpec, sandbox: &Path, info: &TaskInfo) {
    let command = info.command.as_ref().expect("command");
    let container = info.container.as_ref().expect("container");
    let docker = container.docker.as_ref().expect("docker");

    // Identity and image.
    assert_eq!(
        spec.name.as_deref(),
        Some(info.task_id.value.as_str()),
        "{case}: run id"
    );
    assert_eq!(info.task_id.value, format!("{}.3", task.id), "{case}");
    assert_eq!(spec.image, docker.image, "{case}: image");
    assert_eq!(
        Some(spec.force_pull),
        docker.force_pull_image,
        "{case}: force pull"
    );
    assert_eq!(
        Some(spec.privileged),
        docker.privileged,
        "{case}: privileged"
    );

    // Command, shell, args.
    let mesos_command = match (command.shell, &command.value) {
        (Some(true), Some(line)) => Command::Shell(line.clone()),
        (Some(false), None) if command.arguments.is_empty() => Command::ImageDefault,
        (Some(false), None) => Command::Argv(command.arguments.clone()),
        other => panic!("{case}: unexpected Mesos command {other:?}"),
    };
    assert_eq!(spec.command, mesos_command, "{case}: command");
    assert_eq!(
        spec.entrypoint, None,
        "{case}: the image's entrypoint stays"
    );

    // Environment (masked values and PORTn included); the local engine adds what a Mesos
    // agent sets itself.
    let mut mesos_env: Vec<(String, String)> = command
        .environment
        .iter()
        .flat_map(|environment| &environment.variables)
        .map(|var| (var.name.clone(), var.value.clone().unwrap_or_default()))
        .collect();
    mesos_env.push(("MESOS_SANDBOX".into(), "/mnt/mesos/sandbox".into()));
    let local_env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|var| (var.name.clone(), var.value.clone()))
        .collect();
    assert_eq!(local_env, mesos_env, "{case}: environment");
    for (name, secret) in &task.request.masked_env {
        assert!(
            local_env.contains(&(name.clone(), secret.expose().to_owned())),
            "{case}: masked {name} in clear"
        );
    }

    // Ports.
    let local_ports: Vec<(u32, u32, &str)> = spec
        .ports
        .iter()
        .map(|mapping| {
            let protocol = match mapping.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            };
            (
                u32::from(mapping.host_port),
                u32::from(mapping.container_port),
                protocol,
            )
        })
        .collect();
    let mesos_ports: Vec<(u32, u32, &str)> = docker
        .port_mappings
        .iter()
        .map(|m| {
            (
                m.host_port,
                m.container_port,
                m.protocol.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(local_ports, mesos_ports, "{case}: port mappings");

    // Labels (ours win in both).
    let mesos_labels: BTreeMap<String, String> = info
        .labels
        .iter()
        .flat_map(|labels| &labels.labels)
        .map(|label| (label.key.clone(), label.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(spec.labels, mesos_labels, "{case}: labels");
    assert_eq!(
        spec.labels[labels::OWNER],
        INSTANCE,
        "{case}: our owner label wins"
    );

    // Volumes: a relative host path is the same place in the sandbox.
    assert_eq!(
        spec.volumes.len(),
        container.volumes.len(),
        "{case}: volumes"
    );
    for (local, mesos) in spec.volumes.iter().zip(&container.volumes) {
        assert_eq!(local.container_path, mesos.container_path, "{case}");
        assert!(
            !local.read_only && mesos.mode() == volume_mode_rw(),
            "{case}"
        );
        let host = mesos.host_path.as_deref().expect("host path");
        let expected = if host.starts_with('/') {
            PathBuf::from(host)
        } else {
            sandbox.join(host)
        };
        assert_eq!(local.host_path, expected, "{case}: host path of {host}");
    }
    let parameters = |key: &str| -> Vec<String> {
        docker
            .parameters
            .iter()
            .filter(|parameter| parameter.key == key)
            .map(|parameter| parameter.value.clone())
            .collect()
    };
    assert_eq!(spec.volumes_from, parameters("volumes-from"), "{case}");
    assert_eq!(spec.dns, parameters("dns"), "{case}: dns");

    // User: the same user, root given to Docker as uid 0.
    assert_eq!(
        spec.user,
        command.user.as_deref().map(docker_user),
        "{case}: user"
    );

    // Network.
    let network_name = container
        .network_infos
        .first()
        .and_then(|network| network.name.clone());
    let mesos_network = match (docker.network(), network_name) {
        (DockerNetwork::Bridge, None) => NetworkMode::Bridge,
        (DockerNetwork::Host, None) => NetworkMode::Host,
        (DockerNetwork::None, None) => NetworkMode::None,
        (DockerNetwork::User, Some(name)) => NetworkMode::User(name),
        other => panic!("{case}: unexpected Mesos network {other:?}"),
    };
    assert_eq!(spec.network, mesos_network, "{case}: network");

    // Resources.
    let (cpus, mem) = (mesos_scalar(info, "cpus"), mesos_scalar(info, "mem"));
    assert_eq!((cpus, mem), (task.request.cpu, task.request.mem), "{case}");
    assert_eq!(
        spec.limits,
        Limits::from_allocation(Some(cpus), Some(mem), true),
        "{case}: limits"
    );
}

fn volume_mode_rw() -> mesos_proto::v1::volume::Mode {
    mesos_proto::v1::volume::Mode::Rw
}

#[test]
fn local_and_mesos_renderings_agree_field_by_field() {
    for (index, (case, request)) in table().into_iter().enumerate() {
        let id = TaskId::generate([index as u8; 16]);
        let task = Task::new(
            id,
            format!("task {index}"),
            request,
            OffsetDateTime::UNIX_EPOCH,
        );
        let (spec, sandbox, info) = render_both(&task);
        assert_agree(case, &task, &spec, &sandbox, &info);
        assert_eq!(info.name, task.name, "{case}: the Mesos task name");
    }
}

#[test]
fn fetch_uris_agree_and_the_default_user_is_root_in_both() {
    let (_, full) = table().swap_remove(1);
    let task = Task::new(
        TaskId::generate([9; 16]),
        "f".into(),
        full,
        OffsetDateTime::UNIX_EPOCH,
    );
    let (_, _, info) = render_both(&task);
    let allocation = Allocation::for_task(&task.request, info_host_ports(&info));
    let settings = PlanSettings {
        instance_id: INSTANCE,
        user_network: Some(USER_NETWORK),
    };
    let plan = RunPlan::build(&task, 3, &allocation, settings).unwrap();
    let local: Vec<(String, bool, bool)> = fetch_uris(&plan)
        .into_iter()
        .map(|uri| (uri.value, uri.executable, uri.extract))
        .collect();
    let mesos: Vec<(String, bool, bool)> = info
        .command
        .as_ref()
        .unwrap()
        .uris
        .iter()
        .map(|uri| {
            (
                uri.value.clone(),
                uri.executable.unwrap_or(false),
                uri.extract.unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(local, mesos);
    assert_eq!(local.len(), 2);

    let (_, minimal) = table().swap_remove(0);
    let task = Task::new(
        TaskId::generate([8; 16]),
        "m".into(),
        minimal,
        OffsetDateTime::UNIX_EPOCH,
    );
    let (spec, _, info) = render_both(&task);
    assert_eq!(info.command.unwrap().user.as_deref(), Some("root"));
    assert_eq!(spec.user.as_deref(), Some("0"));
}

fn info_host_ports(info: &TaskInfo) -> Vec<u16> {
    info.labels
        .iter()
        .flat_map(|labels| &labels.labels)
        .find(|label| label.key == HOST_PORTS_LABEL)
        .and_then(|label| parse_ports(label.value.as_deref().unwrap_or("")))
        .expect("host ports label")
}
