//! End to end: tasks submitted through the v1 and v0 APIs run in real containers to their end;
//! their output, exit code and history are readable; ended tasks can be deleted, others not;
//! unknown ids answer 404; an idempotency key makes a retried POST return the same task; a
//! task that cannot start is retried, then ends terminal with a reason.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::path::PathBuf;
use std::time::Duration;

use e2e_support::{current_state, history, shell_task, with, Service, Settings, IMAGE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn v1_task_runs_to_finished_and_stdout_is_readable() {
    let service = Service::start(Settings::new()).await;
    let body = shell_task("echo hello from eremetic");
    let response = service.post_json("/api/v1/task", &body).await;
    let location = header(&response, "location");
    let content_type = header(&response, "content-type");
    let id = service.accepted_id(response, &body).await;
    assert!(id.starts_with("eremetic-task."), "task id {id:?}");
    assert!(
        location.ends_with(&format!("/api/v1/task/{id}")),
        "Location {location:?} does not point at the task {id}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "Content-Type {content_type:?}"
    );

    let task = service.wait_end(&id, "TASK_FINISHED").await;
    let states = history(&task);
    if states.first().map(String::as_str) != Some("TASK_QUEUED")
        || !states.iter().any(|state| state == "TASK_RUNNING")
    {
        service.fail("history must start QUEUED and pass through RUNNING", &task);
    }
    if task["exit_code"] != 0 || !task["failure_reason"].is_null() {
        service.fail(
            "a finished task has exit code 0 and no failure reason",
            &task,
        );
    }
    let sandbox = task["sandbox_path"].as_str().unwrap_or_default();
    if !sandbox.contains(&id) {
        service.fail("sandbox_path must name the task's sandbox", &task);
    }
    assert_eq!(service.output(&id, "stdout").await, "hello from eremetic\n");
    assert_eq!(service.output(&id, "stderr").await, "");

    let active: Vec<Value> = service.list("").await;
    assert!(
        active.iter().all(|task| task["id"] != id.as_str()),
        "a finished task is not listed by default (active,queued): {active:?}"
    );
    let ended = service.list("?state=terminated").await;
    assert!(
        ended.iter().any(|task| task["id"] == id.as_str()),
        "state=terminated lists the finished task: {ended:?}"
    );
}

#[tokio::test]
async fn v0_task_runs_to_finished_with_deprecation_header() {
    let service = Service::start(Settings::new()).await;
    let body = json!({
        "docker_image": IMAGE, "command": "echo v0 says hi", "task_cpus": 0.1, "task_mem": 32
    });
    let response = service.post_json("/task", &body).await;
    let warning = header(&response, "warning");
    let location = header(&response, "location");
    let id = service.accepted_id(response, &body).await;
    assert_eq!(
        warning, "299 - 'Deprecated API'",
        "v0 submit deprecation header"
    );
    assert!(
        location.ends_with(&format!("/task/{id}")) && !location.contains("/api/v1/"),
        "v0 Location {location:?}"
    );

    service.wait_end(&id, "TASK_FINISHED").await;
    let response = service.get(&format!("/task/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "warning"), "299 - 'Deprecated API'");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["task_cpus"], 0.1, "v0 document: {document}");
    assert_eq!(document["task_mem"], 32.0, "v0 document: {document}");
    assert_eq!(document["image"], IMAGE, "v0 document: {document}");
    assert!(
        document.get("cpu").is_none(),
        "v0 document has no v1 keys: {document}"
    );

    let response = service.get(&format!("/task/{id}/stdout")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "warning"), "299 - 'Deprecated API'");
    assert_eq!(response.text().await.unwrap(), "v0 says hi\n");
}

#[tokio::test]
async fn failing_task_ends_as_task_failed_with_its_exit_code() {
    let service = Service::start(Settings::new()).await;
    let id = service
        .submit(&shell_task("echo about to fail; echo oops >&2; exit 3"))
        .await;
    let task = service.wait_end(&id, "TASK_FAILED").await;
    if task["exit_code"] != 3 {
        service.fail("exit_code must be the command's exit status 3", &task);
    }
    let reason = task["failure_reason"].as_str().unwrap_or_default();
    if !reason.contains('3') {
        service.fail("failure_reason must mention the exit code", &task);
    }
    if task["retry"] != 0 {
        service.fail("a command that ran and failed is not relaunched", &task);
    }
    assert_eq!(service.output(&id, "stdout").await, "about to fail\n");
    assert_eq!(service.output(&id, "stderr").await, "oops\n");
}

#[tokio::test]
async fn e24_only_ended_tasks_can_be_deleted() {
    let service = Service::start(Settings::new().set("cpus", "0.2")).await;
    let blocker = service
        .submit(&with(shell_task("sleep 30"), json!({"cpu": 0.2})))
        .await;
    service.wait_state(&blocker, "TASK_RUNNING").await;
    let queued = service
        .submit(&with(shell_task("echo never"), json!({"cpu": 0.2})))
        .await;
    service.wait_state(&queued, "TASK_QUEUED").await;

    for (id, state) in [(&blocker, "running"), (&queued, "queued")] {
        let response = service
            .send(service.request(Method::DELETE, &format!("/api/v1/task/{id}")))
            .await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "DELETE of a {state} task: {text}"
        );
        assert!(text.contains(id.as_str()), "the 409 names the task: {text}");
    }

    service.kill_task(&queued).await;
    service.wait_end(&queued, "TASK_KILLED").await;
    service.kill_task(&blocker).await;
    service.wait_end(&blocker, "TASK_KILLED").await;
    for id in [&queued, &blocker] {
        let path = format!("/api/v1/task/{id}");
        let response = service.send(service.request(Method::DELETE, &path)).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "DELETE of an ended task"
        );
        let response = service.get(&path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET after DELETE");
        let response = service.send(service.request(Method::DELETE, &path)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "second DELETE");
    }
}

#[tokio::test]
async fn e3_unknown_task_ids_answer_404() {
    let service = Service::start(Settings::new()).await;
    let id = "eremetic-task.00000000-0000-4000-8000-000000000000";
    let requests = [
        (Method::GET, format!("/api/v1/task/{id}")),
        (Method::POST, format!("/api/v1/task/{id}/kill")),
        (Method::DELETE, format!("/api/v1/task/{id}")),
        (Method::GET, format!("/api/v1/task/{id}/stdout")),
        (Method::GET, format!("/api/v1/task/{id}/stderr")),
        (Method::GET, format!("/task/{id}")),
        (Method::POST, format!("/task/{id}/kill")),
        (Method::DELETE, format!("/task/{id}")),
        (Method::GET, format!("/task/{id}/stdout")),
    ];
    for (method, path) in requests {
        let response = service.send(service.request(method.clone(), &path)).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {text}");
        assert!(
            text.contains(id),
            "{method} {path}: the 404 names the id: {text}"
        );
    }
}

#[tokio::test]
async fn idempotency_key_makes_a_retried_submit_return_the_same_task() {
    let service = Service::start(Settings::new()).await;
    let body = with(shell_task("echo once"), json!({"name": "idempotent-job"}));
    let submit = || async {
        let request = service
            .request(Method::POST, "/api/v1/task")
            .header("Idempotency-Key", "retry-me-1")
            .json(&body);
        service.send(request).await
    };
    let first = service.accepted_id(submit().await, &body).await;
    let second = service.accepted_id(submit().await, &body).await;
    assert_eq!(
        first, second,
        "a retried POST with the same key returns the first task"
    );
    let named = service
        .list("?state=queued,active,terminated&name=idempotent-job")
        .await;
    assert_eq!(named.len(), 1, "exactly one task was created: {named:?}");

    let other = with(shell_task("echo other"), json!({"name": "idempotent-job"}));
    let request = service
        .request(Method::POST, "/api/v1/task")
        .header("Idempotency-Key", "retry-me-1")
        .json(&other);
    let response = service.send(request).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "same key, different request: {text}"
    );
    assert!(
        text.contains("retry-me-1"),
        "the error names the key: {text}"
    );
    service.wait_end(&first, "TASK_FINISHED").await;
}

#[tokio::test]
async fn e8_task_that_cannot_start_is_retried_then_ends_terminal_with_a_reason() {
    let service = Service::start(Settings::new()).await;
    let body = json!({
        "image": "deimos-test/no-such-image:latest", "command": "true",
        "cpu": 0.1, "mem": 32, "retries": 1
    });
    let id = service.submit(&body).await;
    let task = service.wait_terminal(&id).await;
    let state = current_state(&task);
    if state != "TASK_ERROR" && state != "TASK_FAILED" {
        service.fail(
            "a task whose image does not exist ends ERROR or FAILED",
            &task,
        );
    }
    if task["failure_reason"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        service.fail("a task that could not start has a failure_reason", &task);
    }
    let queued = history(&task)
        .iter()
        .filter(|state| *state == "TASK_QUEUED")
        .count();
    if task["retry"] != 1 || queued != 2 {
        service.fail("with retries 1 the launch is attempted twice", &task);
    }

    let active = service.list("?state=active,queued").await;
    assert!(
        active.iter().all(|task| task["id"] != id.as_str()),
        "E-8: the ended task is not listed as active: {active:?}"
    );
    let ended = service.list("?state=terminated").await;
    assert!(ended.iter().any(|task| task["id"] == id.as_str()));
    let response = service
        .send(service.request(Method::POST, &format!("/api/v1/task/{id}/kill")))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "kill of an ended task"
    );
}

/// Label pairs of a metric sample.
type Labels<'a> = &'a [(&'a str, &'a str)];

/// The value of the sample of `name` whose labels include every pair of `labels`.
fn metric(text: &str, name: &str, labels: Labels<'_>) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_count_submissions_states_and_requests() {
    let service = Service::start(Settings::new()).await;
    let finished = service.submit(&shell_task("true")).await;
    let failed = service.submit(&shell_task("exit 1")).await;
    service.wait_end(&finished, "TASK_FINISHED").await;
    service.wait_end(&failed, "TASK_FAILED").await;

    let response = service.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let expectations: [(&str, Labels<'_>, f64); 7] = [
        ("eremetic_submissions_total", &[], 2.0),
        ("scheduler_tasks_created", &[], 2.0),
        ("eremetic_tasks", &[("state", "TASK_FINISHED")], 1.0),
        ("eremetic_tasks", &[("state", "TASK_FAILED")], 1.0),
        ("eremetic_tasks", &[("state", "TASK_RUNNING")], 0.0),
        ("eremetic_queue_depth", &[], 0.0),
        (
            "scheduler_tasks_terminated",
            &[("status", "TASK_FINISHED"), ("sequence", "final")],
            1.0,
        ),
    ];
    for (name, labels, expected) in expectations {
        assert_eq!(
            metric(&text, name, labels),
            Some(expected),
            "{name}{labels:?} in /metrics:\n{text}"
        );
    }
    let submits = metric(
        &text,
        "eremetic_http_request_duration_seconds_count",
        &[("route", "AddTask"), ("method", "POST"), ("status", "202")],
    );
    assert_eq!(
        submits,
        Some(2.0),
        "the HTTP histogram counts the submissions:\n{text}"
    );
}

#[tokio::test]
async fn ended_tasks_and_their_sandboxes_are_deleted_after_the_retention_period() {
    let service = Service::start(Settings::new().set("retention", "1s")).await;
    let id = service.submit(&shell_task("echo kept for a second")).await;
    let task = service.wait_end(&id, "TASK_FINISHED").await;
    let sandbox = PathBuf::from(task["sandbox_path"].as_str().unwrap_or_default());
    assert!(sandbox.is_dir(), "sandbox {sandbox:?} of a finished task");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = service.get(&format!("/api/v1/task/{id}")).await.status();
        if status == 404 && !sandbox.exists() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "task {id} still there (HTTP {status}) or sandbox {sandbox:?} left 30 s after it \
                 ended with retention 1s\n{}",
                service.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
