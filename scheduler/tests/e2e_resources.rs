//! End to end: the resources a task gets and the limits of the server — host ports reachable
//! and exposed as `PORT0..N` in request order, host paths mounted only when the operator
//! allows them, `privileged` refused by default, tasks larger than the server refused at
//! submit, and a full queue answered with 503.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{shell_task, with, Service, Settings};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// GET `http://127.0.0.1:<port>/index.html` until it answers (the server in the container may
/// take a moment to listen).
async fn fetch_from_task(service: &Service, id: &str, port: u64) -> String {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/index.html");
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(&url).send().await {
            if response.status() == StatusCode::OK {
                return response.text().await.unwrap();
            }
        }
        if started.elapsed() > Duration::from_secs(15) {
            let task = service.task(id).await;
            service.fail(&format!("{url} did not answer within 15 s"), &task);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn host_port(task: &Value, index: usize) -> u64 {
    task["ports"][index]["host_port"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn e7_ports_are_reachable_and_port0_is_the_first_requested_port() {
    let service = Service::start(Settings::new()).await;
    let command = "mkdir -p /w0 /w1; \
        echo \"port0=$PORT0 port1=$PORT1\" > /w0/index.html; \
        echo second > /w1/index.html; \
        httpd -p 8081 -h /w1; exec httpd -f -p 8080 -h /w0";
    let body = with(
        shell_task(command),
        json!({"ports": [{"container_port": 8080}, {"container_port": 8081, "protocol": "tcp"}]}),
    );
    let id = service.submit(&body).await;
    let task = service.wait_state(&id, "TASK_RUNNING").await;
    let (first, second) = (host_port(&task, 0), host_port(&task, 1));
    if !(31000..=32000).contains(&first) || !(31000..=32000).contains(&second) || first == second {
        service.fail(
            "two distinct host ports from the default range 31000-32000",
            &task,
        );
    }
    if task["ports"][0]["container_port"] != 8080 || task["ports"][1]["container_port"] != 8081 {
        service.fail("ports keep the requested order", &task);
    }
    let page = fetch_from_task(&service, &id, first).await;
    assert_eq!(
        page.trim(),
        format!("port0={first} port1={second}"),
        "E-7: PORT0 is the host port of the first requested port, PORT1 of the second"
    );
    assert_eq!(
        fetch_from_task(&service, &id, second).await.trim(),
        "second"
    );
    service.kill_task(&id).await;
    service.wait_end(&id, "TASK_KILLED").await;
}

#[tokio::test]
async fn container_port_zero_means_the_same_port_as_the_host_port() {
    let service = Service::start(Settings::new()).await;
    let command = "mkdir -p /w; echo same-port > /w/index.html; exec httpd -f -p $PORT0 -h /w";
    let body = with(
        shell_task(command),
        json!({"ports": [{"container_port": 0}]}),
    );
    let id = service.submit(&body).await;
    let task = service.wait_state(&id, "TASK_RUNNING").await;
    let port = host_port(&task, 0);
    if port == 0 {
        service.fail("a host port is assigned", &task);
    }
    assert_eq!(
        fetch_from_task(&service, &id, port).await.trim(),
        "same-port"
    );
    service.kill_task(&id).await;
    service.wait_end(&id, "TASK_KILLED").await;
}

#[tokio::test]
async fn host_paths_are_mounted_only_when_the_operator_allows_them() {
    let shared = tempfile::tempdir().unwrap();
    let allowed = shared.path().join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::write(allowed.join("in.txt"), "from the host\n").unwrap();
    // A link planted in an allowed directory must not lead outside it.
    std::os::unix::fs::symlink("/etc", allowed.join("escape")).unwrap();
    let settings = Settings::new().set("allowed_host_paths", allowed.to_str().unwrap());
    let service = Service::start(settings).await;

    let forbidden = [
        "/etc".to_owned(),
        shared.path().to_str().unwrap().to_owned(),
        format!("{}/../", allowed.to_str().unwrap()),
        format!("{}/escape", allowed.to_str().unwrap()),
    ];
    for host_path in forbidden {
        let body = with(
            shell_task("true"),
            json!({"volumes": [{"container_path": "/data", "host_path": host_path}]}),
        );
        let response = service.post_json("/api/v1/task", &body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
            "mounting {host_path} outside the allowed paths: {status} {text}"
        );
        assert!(
            text.contains("host_path") || text.contains(&host_path),
            "names it: {text}"
        );
    }

    let body = with(
        shell_task("cat /data/in.txt; echo written > /data/out.txt"),
        json!({"volumes": [{"container_path": "/data", "host_path": allowed.to_str().unwrap()}]}),
    );
    let id = service.submit(&body).await;
    service.wait_end(&id, "TASK_FINISHED").await;
    assert_eq!(service.output(&id, "stdout").await, "from the host\n");
    assert_eq!(
        std::fs::read_to_string(allowed.join("out.txt")).unwrap(),
        "written\n",
        "the bind mount is writable"
    );
}

#[tokio::test]
async fn privileged_tasks_and_host_paths_are_forbidden_by_default() {
    let service = Service::start(Settings::new()).await;
    let requests = [
        (
            with(shell_task("true"), json!({"privileged": true})),
            "privileged",
        ),
        (
            with(
                shell_task("true"),
                json!({"volumes": [{"container_path": "/data", "host_path": "/tmp"}]}),
            ),
            "/tmp",
        ),
    ];
    for (body, needle) in requests {
        let response = service.post_json("/api/v1/task", &body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {text}");
        assert!(text.contains(needle), "the 403 names {needle}: {text}");
    }
    assert!(service
        .list("?state=queued,active,terminated")
        .await
        .is_empty());
}

#[tokio::test]
async fn local_files_to_fetch_are_forbidden_unless_allowed_and_foreign_file_urls_are_invalid() {
    let service = Service::start(Settings::new()).await;
    let cases = [
        (
            json!({"uris": ["/etc/shadow"]}),
            StatusCode::FORBIDDEN,
            "uris[0]",
        ),
        (
            json!({"fetch": [{"uri": "file:///proc/self/environ"}]}),
            StatusCode::FORBIDDEN,
            "fetch[0].uri",
        ),
        (
            json!({"fetch": [{"uri": "file://otherhost/x"}]}),
            StatusCode::BAD_REQUEST,
            "fetch[0].uri",
        ),
    ];
    for (fields, expected, field) in cases {
        let body = with(shell_task("true"), fields);
        let response = service.post_json("/api/v1/task", &body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected, "{body}: {text}");
        assert!(text.contains(field), "the answer names {field}: {text}");
    }
    assert!(service
        .list("?state=queued,active,terminated")
        .await
        .is_empty());
}

#[tokio::test]
async fn e5_task_larger_than_the_server_is_refused_at_submit() {
    let service = Service::start(Settings::new().set("cpus", "1").set("mem", "256")).await;
    for (body, field) in [
        (with(shell_task("true"), json!({"cpu": 2})), "cpu"),
        (with(shell_task("true"), json!({"mem": 1024})), "mem"),
    ] {
        let response = service.post_json("/api/v1/task", &body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {text}");
        assert!(text.contains(field), "the refusal names {field}: {text}");
    }
    // A task that fits still runs: the refused ones left nothing behind in the queue.
    let id = service.submit(&shell_task("echo fits")).await;
    service.wait_end(&id, "TASK_FINISHED").await;
}

#[tokio::test]
async fn full_queue_answers_503_with_retry_after() {
    let settings = Settings::new().set("cpus", "0.2").set("queue_size", "2");
    let service = Service::start(settings).await;
    let small = |command: &str| with(shell_task(command), json!({"cpu": 0.2}));
    let blocker = service.submit(&small("sleep 30")).await;
    service.wait_state(&blocker, "TASK_RUNNING").await;
    let first = service.submit(&small("echo first")).await;
    let second = service.submit(&small("echo second")).await;

    let response = service
        .post_json("/api/v1/task", &small("echo third"))
        .await;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let document: Value = response.json().await.unwrap();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "third queued task: {document}"
    );
    assert!(
        retry_after
            .as_deref()
            .is_some_and(|value| value.parse::<u64>().is_ok()),
        "503 carries Retry-After in seconds, got {retry_after:?}"
    );
    assert_eq!(document["error"], "task queue is full", "{document}");
    assert_eq!(document["message"], "Unable to schedule task", "{document}");
    let queued = service.list("?state=queued").await;
    assert_eq!(
        queued.len(),
        2,
        "the refused task was not stored: {queued:?}"
    );

    service.kill_task(&blocker).await;
    service.wait_end(&first, "TASK_FINISHED").await;
    service.wait_end(&second, "TASK_FINISHED").await;
    let later = service.submit(&small("echo later")).await;
    service.wait_end(&later, "TASK_FINISHED").await;
}
