use std::collections::BTreeMap;

use deimos_runtime::spec::labels;
use mesos_proto::v1::container_info::docker_info::Network as DockerNetwork;

use super::*;
use crate::mesos::launch_mode::{ExecutorSettings, LaunchMode};
use crate::mesos::offers::Leftovers;
use crate::mesos::test_support::*;
use crate::plan::{HOST_PORTS_LABEL, MANAGED_BY};
use crate::task::Network;
use crate::task::{FetchUri, PortProtocol, PortRequest, Secret, Volume as TaskVolume};

fn settings() -> LaunchSettings {
    LaunchSettings {
        instance_id: "eremetic:/var/lib/eremetic".into(),
        user_network: Some("backend-net".into()),
        kill_grace: Duration::from_secs(10),
        mode: LaunchMode::Docker,
        executor: ExecutorSettings::default(),
    }
}

fn claim_for(task: &Task) -> Claim {
    let offer = offer(vec![
        scalar("cpus", 2.0),
        scalar("mem", 1024.0),
        ports(&[(31000, 31010)]),
    ]);
    Leftovers::new(&offer, "*")
        .claim(&task.request, at(0))
        .expect("task fits the test offer")
}

fn build(task: &Task) -> TaskInfo {
    task_info(task, 2, &claim_for(task), None, &settings()).expect("task info")
}

fn env(info: &TaskInfo) -> Vec<(String, String)> {
    info.command
        .as_ref()
        .and_then(|command| command.environment.as_ref())
        .map(|environment| {
            environment
                .variables
                .iter()
                .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn docker(info: &TaskInfo) -> &container_info::DockerInfo {
    info.container
        .as_ref()
        .and_then(|container| container.docker.as_ref())
        .expect("docker info")
}

fn full_task() -> Task {
    let mut request = request(0.5, 128.0);
    request.command = Some("echo $PORT0".into());
    request.args = vec!["ignored".into()];
    request.env = BTreeMap::from([("B".into(), "2".into()), ("A".into(), "1".into())]);
    request.masked_env = BTreeMap::from([("TOKEN".into(), Secret::new("hunter2"))]);
    request.labels = BTreeMap::from([
        ("team".into(), "data".into()),
        (labels::TASK_ID.into(), "forged".into()),
    ]);
    request.ports = vec![
        PortRequest {
            container_port: 80,
            protocol: PortProtocol::Tcp,
        },
        PortRequest {
            container_port: 0,
            protocol: PortProtocol::Udp,
        },
    ];
    request.volumes = vec![TaskVolume {
        container_path: "/data".into(),
        host_path: "/srv/data".into(),
    }];
    request.volumes_from = vec!["store".into(), String::new()];
    request.dns = Some("10.0.0.53".into());
    request.fetch = vec![FetchUri::from_plain_uri("http://x/a.tar.gz")];
    request.force_pull_image = true;
    request.privileged = true;
    request.user = Some("nobody".into());
    task(request)
}

#[test]
fn mesos_task_id_is_the_run_id_and_parses_back() {
    let task = full_task();
    let id = mesos_task_id(&task.id, 3);
    assert_eq!(id, format!("{}.3", task.id));
    assert_eq!(parse_mesos_task_id(&id), Some((task.id.clone(), Some(3))));
}

#[test]
fn eremetic_style_ids_without_attempt_parse_whole() {
    let legacy = "eremetic-task.0b0c0d0e-0000-4000-8000-000000000001";
    let (task, attempt) = parse_mesos_task_id(legacy).expect("valid");
    assert_eq!((task.as_str(), attempt), (legacy, None));
    assert_eq!(parse_mesos_task_id("a/b"), None);
}

#[test]
fn identity_resources_and_kill_policy() {
    let task = full_task();
    let info = build(&task);
    assert_eq!(info.name, "job");
    assert_eq!(info.task_id.value, format!("{}.2", task.id));
    assert_eq!(info.agent_id.value, "agent-1");
    let names: Vec<&str> = info.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["cpus", "mem", "ports"]);
    let grace = info.kill_policy.and_then(|policy| policy.grace_period);
    assert_eq!(grace.map(|g| g.nanoseconds), Some(10_000_000_000));
    assert!(info.executor.is_none());
}

#[test]
fn docker_container_carries_image_network_ports_parameters_and_volumes() {
    let info = build(&full_task());
    let container = info.container.as_ref().expect("container");
    assert_eq!(container.r#type(), container_info::Type::Docker);
    let docker = docker(&info);
    assert_eq!(docker.image, "busybox:latest");
    assert_eq!(docker.network(), DockerNetwork::Bridge);
    assert_eq!(
        (docker.privileged, docker.force_pull_image),
        (Some(true), Some(true))
    );
    let mappings: Vec<(u32, u32, Option<&str>)> = docker
        .port_mappings
        .iter()
        .map(|m| (m.host_port, m.container_port, m.protocol.as_deref()))
        .collect();
    assert_eq!(
        mappings,
        vec![(31000, 80, Some("tcp")), (31001, 31001, Some("udp"))]
    );
    let parameters: Vec<(&str, &str)> = docker
        .parameters
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        parameters,
        vec![("dns", "10.0.0.53"), ("volumes-from", "store")]
    );
    assert_eq!(container.volumes.len(), 1);
    assert_eq!(container.volumes[0].mode(), volume::Mode::Rw);
    assert_eq!(container.volumes[0].container_path, "/data");
    assert_eq!(container.volumes[0].host_path.as_deref(), Some("/srv/data"));
    assert!(container.network_infos.is_empty());
}

#[test]
fn environment_follows_the_local_backend_order() {
    let task = full_task();
    let pairs = env(&build(&task));
    let expected: Vec<(String, String)> = [
        ("A", "1"),
        ("B", "2"),
        ("TOKEN", "hunter2"),
        ("PORT0", "31000"),
        ("PORT1", "31001"),
        ("PORT", "31000"),
        ("MESOS_TASK_ID", task.id.as_str()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(pairs, expected);
}

#[test]
fn shell_command_wins_over_args_and_carries_user_and_uris() {
    let info = build(&full_task());
    let command = info.command.expect("command");
    assert_eq!(command.shell, Some(true));
    assert_eq!(command.value.as_deref(), Some("echo $PORT0"));
    assert!(command.arguments.is_empty());
    assert_eq!(command.user.as_deref(), Some("nobody"));
    assert_eq!(command.uris.len(), 1);
    assert_eq!(command.uris[0].value, "http://x/a.tar.gz");
    assert_eq!(
        (
            command.uris[0].extract,
            command.uris[0].executable,
            command.uris[0].cache
        ),
        (Some(true), Some(false), Some(false))
    );
}

#[test]
fn without_command_args_go_to_the_entrypoint_without_shell() {
    let mut request = request(0.1, 32.0);
    request.args = vec!["--verbose".into(), "run".into()];
    let info = build(&task(request));
    let command = info.command.expect("command");
    assert_eq!(command.shell, Some(false));
    assert_eq!(command.value, None);
    assert_eq!(command.arguments, vec!["--verbose", "run"]);
    assert_eq!(command.user, None);
}

#[test]
fn our_labels_win_over_the_task_labels() {
    let task = full_task();
    let info = build(&task);
    let labels: BTreeMap<String, String> = info
        .labels
        .expect("labels")
        .labels
        .into_iter()
        .map(|label| (label.key, label.value.unwrap_or_default()))
        .collect();
    assert_eq!(labels["team"], "data");
    assert_eq!(labels[labels::TASK_ID], task.id.as_str());
    assert_eq!(labels[labels::CONTAINER_ID], format!("{}.2", task.id));
    assert_eq!(labels[labels::MANAGED_BY], MANAGED_BY);
    assert_eq!(labels[labels::OWNER], "eremetic:/var/lib/eremetic");
    assert_eq!(labels[HOST_PORTS_LABEL], "31000,31001");
}

#[test]
fn host_network_claims_ports_without_mappings() {
    let mut request = request(0.1, 32.0);
    request.network = Network::Host;
    request.ports = vec![PortRequest {
        container_port: 8080,
        protocol: PortProtocol::Tcp,
    }];
    let info = build(&task(request));
    assert_eq!(docker(&info).network(), DockerNetwork::Host);
    assert!(docker(&info).port_mappings.is_empty());
    assert!(env(&info).contains(&("PORT0".to_owned(), "31000".to_owned())));
}

#[test]
fn user_network_joins_the_configured_network() {
    let mut request = request(0.1, 32.0);
    request.network = Network::User;
    let task = task(request);
    let info = build(&task);
    assert_eq!(docker(&info).network(), DockerNetwork::User);
    let container = info.container.expect("container");
    assert_eq!(
        container.network_infos[0].name.as_deref(),
        Some("backend-net")
    );
    let mut no_network = settings();
    no_network.user_network = None;
    let message = task_info(&task, 0, &claim_for(&task), None, &no_network)
        .expect_err("no user network")
        .to_string();
    assert!(
        message.contains(task.id.as_str()) && message.contains("USER"),
        "{message}"
    );
}

#[test]
fn a_claim_with_the_wrong_number_of_ports_is_refused() {
    let task = full_task();
    let mut claim = claim_for(&task);
    claim.host_ports.pop();
    let message = task_info(&task, 0, &claim, None, &settings())
        .expect_err("port count")
        .to_string();
    assert!(message.contains("2 ports requested but 1"), "{message}");
}

#[test]
fn an_overlong_mesos_task_id_is_refused() {
    let mut task = full_task();
    task.id = TaskId::parse(&"a".repeat(254)).expect("254 bytes is a valid task id");
    let claim = claim_for(&task);
    let message = task_info(&task, 10, &claim, None, &settings())
        .expect_err("too long")
        .to_string();
    assert!(message.contains("at most 255"), "{message}");
}

fn in_mode(task: &Task, mode: LaunchMode) -> Result<TaskInfo, MesosError> {
    let settings = LaunchSettings {
        mode,
        executor: ExecutorSettings {
            command: "/usr/local/bin/deimos-executor".into(),
            uri: Some("http://repo.example/deimos-executor".into()),
            cpus: 0.1,
            mem_mib: 32.0,
        },
        ..settings()
    };
    let executor_claim = (mode == LaunchMode::DeimosExecutor).then(|| claim_for(task));
    task_info(
        task,
        2,
        &claim_for(task),
        executor_claim.as_ref(),
        &settings,
    )
}

#[test]
fn deimos_executor_mode_carries_the_command_in_data_and_a_custom_executor() {
    let task = full_task();
    let docker_info = build(&task);
    let info = in_mode(&task, LaunchMode::DeimosExecutor).expect("task info");
    assert!(
        info.command.is_none(),
        "a master refuses command and executor together"
    );
    let carried =
        deimos_runtime::mesos::task_data::decode(info.data.as_deref().unwrap_or_default())
            .expect("data decodes");
    assert_eq!(
        Some(carried),
        docker_info.command,
        "the same command as in docker mode"
    );
    assert_eq!(
        info.container, docker_info.container,
        "the DOCKER container stays"
    );
    let executor = info.executor.expect("an executor");
    assert_eq!(executor.r#type, Some(executor_info::Type::Custom as i32));
    assert_eq!(executor.executor_id.value, info.task_id.value);
    let command = executor.command.expect("executor command");
    assert_eq!(
        command.value.as_deref(),
        Some("/usr/local/bin/deimos-executor")
    );
    assert_eq!(command.uris[0].value, "http://repo.example/deimos-executor");
    assert_eq!(command.uris[0].executable, Some(true));
    assert!(
        !executor.resources.is_empty(),
        "the executor's own resources"
    );
}

/// The full task without what only Docker can do.
fn unified_task() -> Task {
    let mut task = full_task();
    task.request.privileged = false;
    task.request.dns = None;
    task.request.volumes_from.clear();
    task
}

#[test]
fn mesos_mode_uses_a_mesos_container_with_a_docker_image_on_the_bridge_network() {
    let task = unified_task();
    let info = in_mode(&task, LaunchMode::Mesos).expect("task info");
    let container = info.container.expect("container");
    assert_eq!(container.r#type, container_info::Type::Mesos as i32);
    assert!(container.docker.is_none());
    let image = container
        .mesos
        .and_then(|mesos| mesos.image)
        .expect("an image");
    assert_eq!(image.r#type, image::Type::Docker as i32);
    assert_eq!(
        image.docker.map(|docker| docker.name),
        Some(task.request.image.clone())
    );
    assert_eq!(
        image.cached,
        Some(!task.request.force_pull_image),
        "a forced pull is not cached"
    );
    let network = &container.network_infos[0];
    assert_eq!(network.name.as_deref(), Some(MESOS_BRIDGE_NETWORK));
    assert_eq!(
        network.port_mappings.len(),
        task.request.ports.len(),
        "the port mappings go onto the network"
    );
    assert!(info.command.is_some(), "a command task");
}

#[test]
fn mesos_mode_refuses_what_the_unified_containerizer_cannot_do_naming_the_field() {
    let mut task = unified_task();
    task.request.privileged = true;
    let message = in_mode(&task, LaunchMode::Mesos).unwrap_err().to_string();
    assert!(
        message.contains("privileged: not available in launch mode mesos"),
        "{message}"
    );
}

#[test]
fn a_task_label_chooses_its_launch_mode() {
    let mut task = unified_task();
    task.request.labels.insert(
        crate::mesos::launch_mode::LAUNCH_MODE_LABEL.to_owned(),
        "mesos".to_owned(),
    );
    let info = task_info(&task, 2, &claim_for(&task), None, &settings()).expect("task info");
    let container = info.container.expect("container");
    assert_eq!(container.r#type, container_info::Type::Mesos as i32);
}
