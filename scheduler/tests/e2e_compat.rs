//! End to end: what teams running Eremetic rely on, against the real `eremetic` binary and the
//! real Docker engine: serving the API under a DNS name in their network, the data directory's
//! mode, tasks running as `root` by default, Eremetic's port documents and relative volume
//! paths inside the sandbox.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use e2e_support::{shell_task, with, Service, Settings};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// `GET /api/v1/task` addressed to `host` (the connection still goes to 127.0.0.1).
async fn list_as(service: &Service, host: &str) -> StatusCode {
    let request = service
        .raw(Method::GET, "/api/v1/task")
        .header("Host", format!("{host}:{}", service.port()));
    service.send(request).await.status()
}

#[tokio::test]
async fn an_open_server_on_a_network_address_answers_its_dns_names_and_allowed_hosts_limit_them() {
    // The default: loopback only, names refused (DNS rebinding).
    let local = Service::start(Settings::new()).await;
    assert_eq!(
        list_as(&local, "eremetic.corp.example").await,
        StatusCode::FORBIDDEN
    );

    // The operator listens on the network: the team reaches it under its DNS name.
    let network = Service::start(Settings::new().set("address", "0.0.0.0")).await;
    assert_eq!(
        list_as(&network, "eremetic.corp.example").await,
        StatusCode::OK,
        "{}",
        network.log_tail()
    );
    let log = String::from_utf8_lossy(&network.log_bytes()).into_owned();
    assert!(
        log.contains("the API is open") && log.contains("allowed_hosts"),
        "a warning at start says the API is open:\n{log}"
    );

    // allowed_hosts restricts the names, and addresses still work.
    let restricted = Service::start(
        Settings::new()
            .set("address", "0.0.0.0")
            .set("allowed_hosts", "eremetic.corp.example, other.corp.example"),
    )
    .await;
    assert_eq!(
        list_as(&restricted, "EREMETIC.corp.example").await,
        StatusCode::OK
    );
    assert_eq!(
        list_as(&restricted, "attacker.example").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(list_as(&restricted, "127.0.0.1").await, StatusCode::OK);
}

#[tokio::test]
async fn a_task_without_user_runs_as_root_and_shows_root() {
    let service = Service::start(Settings::new()).await;
    // hermit `run` always sends one port with container_port 0.
    let id = service
        .submit(&with(
            shell_task("id -u; echo \"port $PORT0\""),
            json!({"ports": [{"container_port": 0, "protocol": "tcp"}]}),
        ))
        .await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;
    assert_eq!(task["user"], "root", "{task}");
    let host_port = task["ports"][0]["host_port"].as_u64().unwrap();
    assert_ne!(host_port, 0, "{task}");
    assert_eq!(
        task["ports"][0]["container_port"].as_u64(),
        Some(host_port),
        "container_port 0 is reported as the host port, as Eremetic: {task}"
    );
    assert_eq!(
        service.output(&id, "stdout").await,
        format!("0\nport {host_port}\n")
    );
}

#[tokio::test]
async fn a_relative_host_path_is_mounted_from_the_task_s_sandbox() {
    let service = Service::start(Settings::new()).await;
    let id = service
        .submit(&with(
            shell_task("echo kept > /work/out && ls -d /work"),
            json!({"volumes": [{"host_path": "./results//sub", "container_path": "/work"}]}),
        ))
        .await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;
    let sandbox = std::path::PathBuf::from(task["sandbox_path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(sandbox.join("results/sub/out")).unwrap(),
        "kept\n",
        "the container wrote into <sandbox>/results/sub"
    );
    assert_eq!(
        task["volumes"][0]["host_path"], "./results//sub",
        "the document shows the request"
    );

    let response = service
        .post_json(
            "/api/v1/task",
            &with(
                shell_task("true"),
                json!({"volumes": [{"host_path": "../../etc", "container_path": "/etc2"}]}),
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = response.text().await.unwrap();
    assert!(error.contains("volumes[0].host_path"), "{error}");
}

#[tokio::test]
async fn an_existing_data_dir_of_mode_0755_is_set_to_0700_at_start_with_a_log_line() {
    use std::os::unix::fs::PermissionsExt;
    let mut service = Service::start(Settings::new()).await;
    service.terminate().await;
    let data_dir = service.data_dir();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    service.restart().await;
    let mode = std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "{}", service.log_tail());
    let log = String::from_utf8_lossy(&service.log_bytes()).into_owned();
    assert!(
        log.contains("had mode 0755") && log.contains("set it to 0700"),
        "a log line says the mode was changed:\n{log}"
    );
    // The service works on the tightened directory.
    let id = service.submit(&shell_task("echo fine")).await;
    service.wait_end(&id, "TASK_FINISHED").await;
}
