use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::*;
use crate::task::{Network, NewTask, PortRequest, Secret};

fn request() -> NewTask {
    let body = br#"{"image": "deimos-test/busybox:latest", "cpu": 0.5, "mem": 64}"#;
    crate::api::parse_v1(body).unwrap()
}

fn task(request: NewTask) -> Task {
    let at = OffsetDateTime::UNIX_EPOCH;
    Task::new(TaskId::generate([7; 16]), "t".into(), request, at)
}

fn settings(user_network: Option<&str>) -> PlanSettings<'_> {
    PlanSettings {
        instance_id: "eremetic:/data",
        user_network,
    }
}

fn plan(request: NewTask, host_ports: Vec<u16>) -> Result<RunPlan, PlanError> {
    let allocation = Allocation::for_task(&request, host_ports);
    RunPlan::build(&task(request), 4, &allocation, settings(Some("net")))
}

#[test]
fn port_labels_round_trip() {
    assert_eq!(format_ports(&[]), "");
    assert_eq!(parse_ports(""), Some(vec![]));
    assert_eq!(
        parse_ports(&format_ports(&[1, 65535])),
        Some(vec![1, 65535])
    );
    assert_eq!(parse_ports("1,x"), None);
    assert_eq!(parse_ports("70000"), None);
}

#[test]
fn run_id_is_the_task_id_and_the_attempt() {
    let plan = plan(request(), vec![]).unwrap();
    assert_eq!(plan.run_id, format!("{}.4", plan.task_id));
    assert_eq!(plan.attempt, 4);
}

#[test]
fn masked_values_are_in_the_plan_in_clear_and_marked_and_debug_hides_them() {
    let mut req = request();
    req.env = BTreeMap::from([("PLAIN".into(), "seen".into())]);
    req.masked_env = BTreeMap::from([("TOKEN".into(), Secret::new("hunter2"))]);
    let plan = plan(req, vec![]).unwrap();
    let token = plan.env.iter().find(|var| var.name == "TOKEN").unwrap();
    assert!(token.masked && token.value == "hunter2");
    assert!(
        !plan
            .env
            .iter()
            .find(|var| var.name == "PLAIN")
            .unwrap()
            .masked
    );
    let shown = format!("{plan:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("seen"),
        "{shown}"
    );
}

#[test]
fn a_wrong_port_count_a_missing_user_network_and_a_climbing_volume_are_refused() {
    let mut req = request();
    req.ports = vec![PortRequest {
        container_port: 80,
        protocol: PortProtocol::Tcp,
    }];
    let error = plan(req, vec![]).unwrap_err();
    assert_eq!(
        error.reason(),
        "1 ports requested but 0 host ports allocated"
    );
    assert!(
        error.to_string().starts_with("task eremetic-task."),
        "{error}"
    );

    let mut req = request();
    req.network = Network::User;
    let allocation = Allocation::for_task(&req, vec![]);
    let error = RunPlan::build(&task(req), 0, &allocation, settings(None)).unwrap_err();
    assert!(matches!(error, PlanError::NoUserNetwork { .. }), "{error}");

    let mut req = request();
    req.volumes = vec![
        Volume {
            container_path: "/a".into(),
            host_path: "/abs".into(),
        },
        Volume {
            container_path: "/b".into(),
            host_path: "x/../../etc".into(),
        },
    ];
    let error = plan(req, vec![]).unwrap_err();
    assert!(
        error.reason().starts_with("volumes[1].host_path: "),
        "{error}"
    );
}

#[test]
fn relative_volumes_are_normalised_and_empty_volumes_from_dropped() {
    let mut req = request();
    req.volumes = vec![
        Volume {
            container_path: "/a".into(),
            host_path: "./a//b/".into(),
        },
        Volume {
            container_path: "/s".into(),
            host_path: ".".into(),
        },
    ];
    req.volumes_from = vec!["store".into(), String::new()];
    let plan = plan(req, vec![]).unwrap();
    let hosts: Vec<&str> = plan.volumes.iter().map(|v| v.host_path.as_str()).collect();
    assert_eq!(hosts, vec!["a/b", "."]);
    assert_eq!(plan.volumes_from, vec!["store".to_owned()]);
}
