//! End to end: malformed requests (E-17, E-31, E-20, E-22) get a 4xx whose body names the
//! problem, never a 5xx, create nothing, and leave the server healthy.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use e2e_support::{Service, Settings, IMAGE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// One malformed request and what the answer must be.
struct Case {
    what: &'static str,
    method: Method,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<Vec<u8>>,
    status: u16,
    /// Lowercase fragments the answer's body must all contain.
    needles: Vec<&'static str>,
}

/// A valid v1 submit body with the members of `patch` replaced (`"$remove"` removes one).
fn v1(patch: Value) -> Vec<u8> {
    let mut body = json!({"image": IMAGE, "cpu": 0.1, "mem": 32, "command": "true"});
    let object = body.as_object_mut().unwrap();
    for (key, value) in patch.as_object().unwrap() {
        if value == "$remove" {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
    serde_json::to_vec(&body).unwrap()
}

fn submit(what: &'static str, body: Vec<u8>, status: u16, needles: &[&'static str]) -> Case {
    Case {
        what,
        method: Method::POST,
        path: "/api/v1/task",
        headers: vec![("Content-Type", "application/json")],
        body: Some(body),
        status,
        needles: needles.to_vec(),
    }
}

fn bad(what: &'static str, patch: Value, needles: &[&'static str]) -> Case {
    submit(what, v1(patch), 400, needles)
}

fn route(
    what: &'static str,
    method: Method,
    path: &'static str,
    status: u16,
    needles: &[&'static str],
) -> Case {
    Case {
        what,
        method,
        path,
        headers: Vec::new(),
        body: None,
        status,
        needles: needles.to_vec(),
    }
}

fn oversized_body() -> Vec<u8> {
    let padding = "x".repeat(1024 * 1024 + 10);
    serde_json::to_vec(&json!({"image": IMAGE, "cpu": 0.1, "mem": 32, "command": padding})).unwrap()
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        submit(
            "truncated JSON",
            br#"{"image": "#.to_vec(),
            400,
            &["invalid json", "line 1, column"],
        ),
        submit(
            "not JSON",
            b"not json".to_vec(),
            400,
            &["invalid json at line 1, column"],
        ),
        submit(
            "bad JSON on line 3",
            b"{\n  \"image\": \"x\",\n  oops\n}".to_vec(),
            400,
            &["line 3, column 3"],
        ),
        submit("empty body", Vec::new(), 400, &["body", "invalid json"]),
        submit(
            "invalid UTF-8",
            b"{\"image\": \"\xff\xfe\"}".to_vec(),
            400,
            &["body", "line 1"],
        ),
        submit("array body", b"[1, 2]".to_vec(), 400, &["body", "object"]),
        submit(
            "empty object",
            b"{}".to_vec(),
            400,
            &["image", "cpu", "mem", "required"],
        ),
        bad(
            "missing image",
            json!({"image": "$remove"}),
            &["image", "required"],
        ),
        bad("empty image", json!({"image": ""}), &["image", "required"]),
        bad(
            "image with blanks",
            json!({"image": "bad image"}),
            &["image", "not a docker image reference"],
        ),
        bad(
            "image with a path traversal",
            json!({"image": "../../etc/passwd"}),
            &["image", "not a docker image reference"],
        ),
        bad(
            "image with markup",
            json!({"image": "<script>alert(1)</script>"}),
            &["image", "not a docker image reference"],
        ),
        bad(
            "image name of 300 kb",
            json!({"image": "a".repeat(300_000)}),
            &["image", "at most 255"],
        ),
        bad(
            "image not a string",
            json!({"image": 42}),
            &["image", "string"],
        ),
        bad("cpu zero", json!({"cpu": 0}), &["cpu", "greater than 0"]),
        bad(
            "cpu negative",
            json!({"cpu": -1}),
            &["cpu", "greater than 0"],
        ),
        bad("cpu a string", json!({"cpu": "1"}), &["cpu", "number"]),
        bad(
            "cpu missing",
            json!({"cpu": "$remove"}),
            &["cpu", "required"],
        ),
        bad("mem too small", json!({"mem": 1}), &["mem", "at least 6"]),
        bad(
            "mem missing",
            json!({"mem": "$remove"}),
            &["mem", "required"],
        ),
        bad("mem a string", json!({"mem": "32"}), &["mem", "number"]),
        bad(
            "unknown network",
            json!({"network": "OVERLAY"}),
            &["network", "overlay"],
        ),
        bad(
            "port negative",
            json!({"ports": [{"container_port": -1}]}),
            &["ports[0].container_port", "between 0 and 65535"],
        ),
        bad(
            "port too large",
            json!({"ports": [{"container_port": 70000}]}),
            &["ports[0].container_port", "65535"],
        ),
        bad(
            "port a string",
            json!({"ports": [{"container_port": "80"}]}),
            &["ports[0].container_port", "integer"],
        ),
        bad(
            "unknown port protocol",
            json!({"ports": [{"container_port": 80, "protocol": "sctp"}]}),
            &["ports[0].protocol", "sctp"],
        ),
        bad(
            "ports not an array",
            json!({"ports": "80"}),
            &["ports", "array"],
        ),
        bad(
            "port without container_port",
            json!({"ports": [{}]}),
            &["ports[0].container_port", "required"],
        ),
        bad(
            "relative host path climbing out of the sandbox",
            json!({"volumes": [{"container_path": "/data", "host_path": "sub/../../dir"}]}),
            &["volumes[0].host_path", "sandbox", "sub/../../dir"],
        ),
        bad(
            "relative container path",
            json!({"volumes": [{"container_path": "data", "host_path": "/srv"}]}),
            &["volumes[0].container_path", "absolute"],
        ),
        bad(
            "volume without host path",
            json!({"volumes": [{"container_path": "/data"}]}),
            &["volumes[0].host_path", "required"],
        ),
        bad(
            "env value not a string",
            json!({"env": {"A": 1}}),
            &["env.a", "string"],
        ),
        bad(
            "env not an object",
            json!({"env": "A=1"}),
            &["env", "object"],
        ),
        bad(
            "args not an array",
            json!({"args": "echo"}),
            &["args", "array"],
        ),
        bad(
            "args element not a string",
            json!({"args": [1]}),
            &["args[0]", "string"],
        ),
        bad(
            "timeout negative",
            json!({"timeout": -1}),
            &["timeout", "negative"],
        ),
        bad(
            "timeout beyond the integer range",
            json!({"timeout": 1e30}),
            &["timeout", "too large"],
        ),
        submit(
            "timeout of 2^64",
            br#"{"image": "deimos-test/busybox:latest", "cpu": 0.1, "mem": 32, "timeout": 18446744073709551616}"#
                .to_vec(),
            400,
            &["timeout", "too large"],
        ),
        bad(
            "timeout a string",
            json!({"timeout": "10"}),
            &["timeout", "integer"],
        ),
        bad(
            "retries negative",
            json!({"retries": -1}),
            &["retries", "negative"],
        ),
        bad(
            "retries too many",
            json!({"retries": 1000}),
            &["retries", "100"],
        ),
        bad(
            "dns not an IP",
            json!({"dns": "not-an-ip"}),
            &["dns", "not-an-ip"],
        ),
        bad(
            "callback not http",
            json!({"callback_uri": "ftp://example.com/cb"}),
            &["callback_uri", "ftp://"],
        ),
        bad(
            "masked env key also in env",
            json!({"env": {"TOKEN": "a"}, "masked_env": {"TOKEN": "b"}}),
            &["masked_env.token"],
        ),
        bad(
            "privileged not a boolean",
            json!({"privileged": "yes"}),
            &["privileged", "boolean"],
        ),
        bad("user with blanks", json!({"user": "bad user"}), &["user"]),
        bad(
            "name with control character",
            json!({"name": "a\u{7}b"}),
            &["name", "control"],
        ),
        bad(
            "empty fetch uri",
            json!({"fetch": [{"uri": ""}]}),
            &["fetch[0].uri", "required"],
        ),
        bad(
            "empty label name",
            json!({"labels": {"": "x"}}),
            &["labels", "empty"],
        ),
        submit(
            "body over 1 MiB (E-31)",
            oversized_body(),
            413,
            &["body", "1048576"],
        ),
        Case {
            what: "v0 without docker_image",
            path: "/task",
            ..submit(
                "",
                br#"{"task_cpus": 0.1, "task_mem": 32}"#.to_vec(),
                400,
                &["docker_image", "required"],
            )
        },
        Case {
            what: "v0 task_cpus zero",
            path: "/task",
            ..submit(
                "",
                format!(r#"{{"docker_image": "{IMAGE}", "task_cpus": 0, "task_mem": 32}}"#)
                    .into_bytes(),
                400,
                &["task_cpus"],
            )
        },
        Case {
            what: "v0 docker_image with a path traversal",
            path: "/task",
            ..submit(
                "",
                br#"{"docker_image": "../../etc/passwd", "task_cpus": 0.1, "task_mem": 32}"#
                    .to_vec(),
                400,
                &["docker_image", "not a docker image reference"],
            )
        },
        Case {
            what: "empty Idempotency-Key",
            headers: vec![
                ("Content-Type", "application/json"),
                ("Idempotency-Key", " "),
            ],
            ..submit("", v1(json!({})), 400, &["idempotency-key"])
        },
        route(
            "bad state filter",
            Method::GET,
            "/api/v1/task?state=running",
            422,
            &["running", "queued, active, terminated"],
        ),
        route(
            "unknown list parameter",
            Method::GET,
            "/api/v1/task?colour=red",
            422,
            &["colour"],
        ),
        route(
            "bad task id",
            Method::GET,
            "/api/v1/task/bad%20id",
            404,
            &["bad id"],
        ),
        route(
            "bad task id on kill",
            Method::POST,
            "/api/v1/task/a%2Fb/kill",
            404,
            &["a/b"],
        ),
        route(
            "unknown task",
            Method::GET,
            "/api/v1/task/eremetic-task.00000000-0000-4000-8000-000000000000",
            404,
            &["eremetic-task.00000000-0000-4000-8000-000000000000"],
        ),
        route(
            "bad follow flag",
            Method::GET,
            "/api/v1/task/eremetic-task.00000000-0000-4000-8000-000000000000/stdout?follow=maybe",
            400,
            &["follow", "maybe"],
        ),
        route(
            "unknown route (E-20)",
            Method::GET,
            "/api/v1/nope",
            404,
            &["/api/v1/nope"],
        ),
        route(
            "wrong method on the task list",
            Method::PUT,
            "/api/v1/task",
            405,
            &["put"],
        ),
        route(
            "wrong method on the version",
            Method::DELETE,
            "/api/v1/version",
            405,
            &["delete"],
        ),
        route(
            "wrong method on kill",
            Method::GET,
            "/api/v1/task/eremetic-task.x/kill",
            405,
            &["get"],
        ),
    ];
    for case in &mut cases {
        if case.method == Method::POST && case.body.is_none() {
            case.body = Some(Vec::new());
        }
    }
    cases
}

#[tokio::test]
async fn e17_malformed_requests_get_a_4xx_naming_the_problem() {
    let service = Service::start(Settings::new()).await;
    let cases = cases();
    assert!(cases.len() >= 30, "at least 30 malformed requests");
    let mut failures = Vec::new();
    for case in &cases {
        let mut request = service.request(case.method.clone(), case.path);
        for (name, value) in &case.headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = &case.body {
            request = request.body(body.clone());
        }
        let response = service.send(request).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let lower = text.to_lowercase();
        let missing: Vec<&str> = case
            .needles
            .iter()
            .copied()
            .filter(|needle| !lower.contains(needle))
            .collect();
        if status != case.status || !missing.is_empty() {
            failures.push(format!(
                "{} ({} {}): expected {} naming {:?}, got {status} {text}",
                case.what, case.method, case.path, case.status, missing
            ));
        }
    }
    let response = service.get("/api/v1/version").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the server is still healthy"
    );
    let all = service.list("?state=queued,active,terminated").await;
    assert!(
        all.is_empty(),
        "no malformed request created a task: {all:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} malformed requests were not answered as expected:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn e22_list_with_an_empty_state_filter_lists_queued_and_active_tasks() {
    let service = Service::start(Settings::new()).await;
    let id = service
        .submit(&json!({"image": IMAGE, "cpu": 0.1, "mem": 32, "command": "true"}))
        .await;
    service.wait_end(&id, "TASK_FINISHED").await;
    assert!(
        service.list("?state=").await.is_empty(),
        "state= means active,queued"
    );
    assert_eq!(
        service.list("?state=queued,active,terminated").await.len(),
        1
    );
    assert_eq!(
        service.list("?state=TERMINATED").await.len(),
        1,
        "tokens ignore case"
    );
}
