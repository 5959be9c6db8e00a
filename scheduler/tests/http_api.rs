//! The HTTP layer end to end: the real router served by `eremetic::http::serve` on
//! 127.0.0.1:0, a real HTTP client, and an in-memory fake of the `TaskService`.

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "http_api/fake.rs"]
mod fake;
#[path = "http_api/harness.rs"]
mod harness;

use std::path::PathBuf;

use eremetic::http::{HttpConfig, TlsFiles};
use eremetic::service::{LogLocation, SubmitError, TaskEvent};
use eremetic::task::{TaskId, TaskState};
use futures::StreamExt;
use harness::{body_json, config, is_json, read_until, valid_v1, within, Server};
use reqwest::header::{LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;

const SECRET: &str = "hunter2-very-secret-value";

// ---------------------------------------------------------------------------------------------
// Submit.

#[tokio::test]
async fn submit_v1_answers_202_with_location_and_json_id() {
    let server = Server::start(HttpConfig {
        url_prefix: "/prefix/".into(),
        ..config()
    })
    .await;
    let response = server.post_json("/api/v1/task", &valid_v1()).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(is_json(response.headers()));
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let text = response.text().await.unwrap();
    assert!(text.ends_with('\n'), "{text:?}");
    let id: String = serde_json::from_str(&text).unwrap();
    assert!(id.starts_with("eremetic-task."), "{id}");
    let host = server.base.trim_start_matches("http://");
    assert_eq!(location, format!("http://{host}/prefix/api/v1/task/{id}"));
    assert_eq!(server.fake.lock().submissions[0].task.image, "busybox");
    server.shutdown().await;
}

#[tokio::test]
async fn submit_v0_accepts_old_field_names_and_warns_deprecated() {
    let server = Server::start(config()).await;
    let body =
        json!({"docker_image": "busybox", "command": "true", "task_cpus": 0.5, "task_mem": 64});
    let response = server
        .client
        .post(server.url("/task"))
        .header("x-forwarded-proto", "https")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["warning"], "299 - 'Deprecated API'");
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let id: String = response.json().await.unwrap();
    assert!(location.starts_with("https://") && location.ends_with(&format!("/task/{id}")));
    let task = server.fake.lock().submissions[0].task.clone();
    assert_eq!((task.cpu, task.mem), (0.5, 64.0));
    let response = server.get(&format!("/task/{id}")).await;
    assert_eq!(response.headers()["warning"], "299 - 'Deprecated API'");
    let document = body_json(response).await;
    assert_eq!(document["task_cpus"], 0.5);
    assert_eq!(document["image"], "busybox");
    server.shutdown().await;
}

#[tokio::test]
async fn submit_validation_error_is_400_naming_every_field() {
    let server = Server::start(config()).await;
    let response = server
        .post_json("/api/v1/task", &json!({"cpu": 0, "mem": 32}))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(is_json(response.headers()));
    let document = body_json(response).await;
    assert_eq!(
        document["message"],
        "Unable to parse body into a valid request."
    );
    let fields: Vec<&str> = document["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"image") && fields.contains(&"cpu"),
        "{fields:?}"
    );
    let response = server
        .client
        .post(server.url("/api/v1/task"))
        .body("{\"image\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body_json(response).await["error"]
        .as_str()
        .unwrap()
        .contains("line 1"));
    assert!(server.fake.lock().submissions.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn submit_body_over_one_mebibyte_is_413_naming_the_limit() {
    let server = Server::start(config()).await;
    let mut body = valid_v1();
    body["labels"] = json!({"big": "x".repeat(1024 * 1024)});
    let response = server.post_json("/api/v1/task", &body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let document = body_json(response).await;
    assert!(
        document["error"].as_str().unwrap().contains("1048576"),
        "{document}"
    );
    // Without Content-Length (chunked), the limit is enforced while reading.
    let chunks =
        futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let response = server
        .client
        .post(server.url("/api/v1/task"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.shutdown().await;
}

#[tokio::test]
async fn a_413_closes_its_connection_so_the_client_s_next_request_is_not_lost() {
    let server = Server::start(config()).await;
    let mut big = valid_v1();
    big["labels"] = json!({"big": "x".repeat(2 * 1024 * 1024)});
    for round in 0..20 {
        let response = server.post_json("/api/v1/task", &big).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            response.headers()[reqwest::header::CONNECTION],
            "close",
            "round {round}"
        );
        let next = server.get("/api/v1/version").await;
        assert_eq!(next.status(), StatusCode::OK, "round {round}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn submit_when_queue_full_is_503_with_retry_after() {
    let server = Server::start(config()).await;
    server.fake.lock().submit_error = Some(SubmitError::QueueFull { capacity: 1 });
    let response = server.post_json("/api/v1/task", &valid_v1()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[RETRY_AFTER], "1");
    assert_eq!(
        response.text().await.unwrap(),
        "{\"error\":\"task queue is full\",\"message\":\"Unable to schedule task\"}\n"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn submit_refusals_map_to_403_422_and_500() {
    let server = Server::start(config()).await;
    let cases = [
        (
            SubmitError::Forbidden("privileged: not allowed by policy".into()),
            StatusCode::FORBIDDEN,
        ),
        (
            SubmitError::Unsatisfiable("mem: 1 TiB exceeds the host".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            SubmitError::Internal("disk full".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ];
    for (error, status) in cases {
        let text = error.to_string();
        server.fake.lock().submit_error = Some(error);
        let response = server.post_json("/api/v1/task", &valid_v1()).await;
        assert_eq!(response.status(), status);
        assert_eq!(body_json(response).await["error"], text);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn submit_passes_the_idempotency_key_through() {
    let server = Server::start(config()).await;
    let send = |key: String| {
        server
            .client
            .post(server.url("/api/v1/task"))
            .header("idempotency-key", key)
            .body(valid_v1().to_string())
            .send()
    };
    let first: String = send("retry-1".into()).await.unwrap().json().await.unwrap();
    let second = send("retry-1".into()).await.unwrap();
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    assert_eq!(second.json::<String>().await.unwrap(), first);
    let submissions = server.fake.lock().submissions.clone();
    assert_eq!(submissions[0].idempotency_key.as_deref(), Some("retry-1"));
    let too_long = send("k".repeat(256)).await.unwrap();
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.fake.lock().submissions.len(), 2);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Read, list, kill, delete.

#[tokio::test]
async fn get_unknown_or_invalid_task_id_is_404_error_document() {
    let server = Server::start(config()).await;
    for path in [
        "/api/v1/task/eremetic-task.nope",
        "/api/v1/task/bad%20id",
        "/task/eremetic-task.nope",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(is_json(response.headers()));
        assert_eq!(body_json(response).await["message"], "Task not found");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn get_returns_the_v1_document() {
    let server = Server::start(config()).await;
    let id = server.fake.insert(valid_v1(), &[TaskState::Running]);
    let response = server.get(&format!("/api/v1/task/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("warning").is_none());
    let document = body_json(response).await;
    assert_eq!(document["id"], id.as_str());
    assert_eq!(document["cpu"], 0.1);
    assert_eq!(document["status"][1]["status"], "TASK_RUNNING");
    server.shutdown().await;
}

#[tokio::test]
async fn lists_longer_than_a_page_arrive_whole_and_in_order() {
    let server = Server::start(config()).await;
    // 500 tasks make a page: cross two page boundaries, and hit one exactly.
    for count in [1001usize, 499] {
        let ids: Vec<String> = (0..count)
            .map(|_| server.fake.insert(valid_v1(), &[]).to_string())
            .collect();
        let listed = body_json(server.get("/api/v1/task?state=queued").await).await;
        let listed: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        let tail = &listed[listed.len() - count..];
        assert_eq!(tail, ids.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let listed = body_json(server.get("/task?state=queued").await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1500);
    server.shutdown().await;
}

#[tokio::test]
async fn list_defaults_to_active_and_queued_and_filters_by_state_and_name() {
    let server = Server::start(config()).await;
    let empty = server.get("/api/v1/task").await;
    assert_eq!(empty.text().await.unwrap(), "[]\n");
    let queued = server.fake.insert(valid_v1(), &[]);
    let running = server.fake.insert(valid_v1(), &[TaskState::Running]);
    let finished = server
        .fake
        .insert(valid_v1(), &[TaskState::Running, TaskState::Finished]);
    let ids = |documents: Value| -> Vec<String> {
        documents
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = ids(body_json(server.get("/api/v1/task").await).await);
    assert_eq!(listed, vec![queued.to_string(), running.to_string()]);
    let listed = ids(body_json(server.get("/api/v1/task?state=terminated").await).await);
    assert_eq!(listed, vec![finished.to_string()]);
    let listed = ids(body_json(
        server
            .get("/task?state=queued,active,terminated&name=fake")
            .await,
    )
    .await);
    assert_eq!(listed.len(), 3);
    let listed = ids(body_json(server.get("/api/v1/task?name=other").await).await);
    assert!(listed.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn list_with_unknown_state_token_or_key_is_422() {
    let server = Server::start(config()).await;
    for query in ["state=running", "limit=3"] {
        let response = server.get(&format!("/api/v1/task?{query}")).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        assert_eq!(
            body_json(response).await["message"],
            "Unable to parse query params"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn kill_answers_202_404_and_409() {
    let server = Server::start(config()).await;
    let running = server.fake.insert(valid_v1(), &[TaskState::Running]);
    let response = server
        .client
        .post(server.url(&format!("/api/v1/task/{running}/kill")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.text().await.unwrap(), "\"\"\n");
    let again = server
        .client
        .post(server.url(&format!("/task/{running}/kill")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again
        .json::<String>()
        .await
        .unwrap()
        .contains("already dead"));
    let unknown = server
        .client
        .post(server.url("/api/v1/task/eremetic-task.x/kill"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    server.shutdown().await;
}

#[tokio::test]
async fn delete_answers_202_404_and_409() {
    let server = Server::start(config()).await;
    let running = server.fake.insert(valid_v1(), &[TaskState::Running]);
    let finished = server.fake.insert(valid_v1(), &[TaskState::Finished]);
    let delete = |id: String| {
        server
            .client
            .delete(server.url(&format!("/api/v1/task/{id}")))
            .send()
    };
    let response = delete(running.to_string()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response
        .json::<String>()
        .await
        .unwrap()
        .contains("kill it first"));
    let response = delete(finished.to_string()).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.text().await.unwrap(), "\"\"\n");
    assert_eq!(
        delete(finished.to_string()).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    server.shutdown().await;
}

#[tokio::test]
async fn masked_env_value_never_appears_in_responses() {
    let server = Server::start(config()).await;
    let mut body = valid_v1();
    body["masked_env"] = json!({"API_TOKEN": SECRET});
    let id: String = server
        .post_json("/api/v1/task", &body)
        .await
        .json()
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for path in [
        format!("/api/v1/task/{id}"),
        format!("/task/{id}"),
        "/api/v1/task".to_owned(),
        "/task?state=queued".to_owned(),
    ] {
        let text = server.get(&path).await.text().await.unwrap();
        assert!(
            text.contains("API_TOKEN") && text.contains("*******"),
            "{path}: {text}"
        );
        bodies.push(text);
    }
    // A rejected request with the secret does not echo it either.
    body["cpu"] = json!(-1);
    bodies.push(
        server
            .post_json("/api/v1/task", &body)
            .await
            .text()
            .await
            .unwrap(),
    );
    for text in bodies {
        assert!(!text.contains(SECRET), "{text}");
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Auth.

fn secured() -> HttpConfig {
    HttpConfig {
        basic: Some(("admin".into(), "pa:ss".into())),
        bearer_tokens: vec!["tok-1".into()],
        ..config()
    }
}

#[tokio::test]
async fn requests_without_credentials_are_401_with_a_challenge() {
    let server = Server::start(secured()).await;
    for path in [
        "/api/v1/task",
        "/metrics",
        "/no/such/path",
        "/api/v1/events",
        "/",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenges: Vec<_> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(
            challenges,
            ["Basic realm=\"Eremetic\"", "Bearer realm=\"Eremetic\""]
        );
        assert!(is_json(response.headers()));
        assert_eq!(
            body_json(response).await["message"],
            "Authentication required"
        );
    }
    let post = server.post_json("/api/v1/task", &valid_v1()).await;
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    assert!(server.fake.lock().submissions.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_401_and_never_echoed() {
    let server = Server::start(secured()).await;
    let wrong_password = server
        .client
        .get(server.url("/api/v1/task"))
        .basic_auth("admin", Some("guess-me"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert!(!wrong_password.text().await.unwrap().contains("guess-me"));
    let wrong_token = server
        .client
        .get(server.url("/api/v1/task"))
        .bearer_auth("tok-2")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), StatusCode::UNAUTHORIZED);
    server.shutdown().await;
}

#[tokio::test]
async fn basic_credentials_and_bearer_tokens_are_accepted_and_version_is_open() {
    let server = Server::start(secured()).await;
    let basic = server
        .client
        .get(server.url("/api/v1/task"))
        .basic_auth("admin", Some("pa:ss"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
    let bearer = server
        .client
        .get(server.url("/metrics"))
        .bearer_auth("tok-1")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    for path in ["/api/v1/version", "/version"] {
        let response = server.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=UTF-8"
        );
        assert_eq!(response.text().await.unwrap(), "\"1.2.3\"\n");
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Other routes.

#[tokio::test]
async fn unknown_paths_are_404_json_and_trailing_slashes_redirect() {
    let server = Server::start(config()).await;
    let response = server.get("/nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(is_json(response.headers()));
    assert_eq!(body_json(response).await["message"], "Not found");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(server.url("/api/v1/task/?state=queued"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()[LOCATION], "/api/v1/task?state=queued");
    let response = server
        .client
        .put(server.url("/api/v1/task"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(server.get("/").await.status(), StatusCode::NO_CONTENT);
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_by_eremetic_route_name() {
    let server = Server::start(config()).await;
    server.post_json("/api/v1/task", &valid_v1()).await;
    server.get("/version").await;
    server.get("/nope").await;
    let text = server.get("/metrics").await.text().await.unwrap();
    for expected in [
        "route=\"AddTask\",method=\"POST\",status=\"202\"",
        "route=\"Version\",method=\"GET\",status=\"200\"",
        "route=\"NotFound\",method=\"GET\",status=\"404\"",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    assert!(server
        .metrics
        .render()
        .contains("eremetic_http_request_duration_seconds"));
    server.shutdown().await;
}

#[tokio::test]
async fn events_stream_delivers_broadcast_status_changes() {
    let server = Server::start(config()).await;
    let response = server.get("/api/v1/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // The handler subscribed before answering, so this event reaches the stream.
    server
        .fake
        .events
        .send(TaskEvent {
            task_id: TaskId::parse("eremetic-task.42").unwrap(),
            name: "job".into(),
            status: TaskState::Finished,
            time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            exit_code: Some(0),
            reason: None,
        })
        .unwrap();
    let mut stream = Box::pin(response.bytes_stream());
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "eremetic-task.42").await;
    read_until(&mut stream, &mut seen, "\n\n").await;
    assert!(seen.contains("event: status"), "{seen}");
    let data = seen
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap();
    let data: Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["status"], "TASK_FINISHED");
    assert_eq!(data["time"], 1_700_000_000);
    assert_eq!(data["exit_code"], 0);
    drop(stream);
    // Shutdown ends the endless stream instead of waiting for it.
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Logs.

fn log_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("stdout");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn logs_are_204_before_start_404_for_unknown_and_the_file_after() {
    let server = Server::start(config()).await;
    let id = server.fake.insert(valid_v1(), &[]);
    let response = server.get(&format!("/api/v1/task/{id}/stdout")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server
            .get("/api/v1/task/eremetic-task.none/stderr")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(&dir, "hello\n");
    server.fake.lock().logs.insert(
        id.clone(),
        LogLocation::File {
            path: path.clone(),
            active: false,
        },
    );
    let response = server.get(&format!("/task/{id}/stdout")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=UTF-8"
    );
    assert_eq!(response.headers()["warning"], "299 - 'Deprecated API'");
    assert_eq!(response.text().await.unwrap(), "hello\n");
    std::fs::remove_file(&path).unwrap();
    let missing = server.get(&format!("/api/v1/task/{id}/stdout")).await;
    assert_eq!(missing.status(), StatusCode::OK);
    assert_eq!(missing.text().await.unwrap(), "");
    let bad = server
        .get(&format!("/api/v1/task/{id}/stdout?tail=3"))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    server.shutdown().await;
}

#[tokio::test]
async fn follow_logs_streams_appended_bytes_until_the_task_is_inactive() {
    use std::io::Write;
    let server = Server::start(config()).await;
    let id = server.fake.insert(valid_v1(), &[TaskState::Running]);
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(&dir, "first\n");
    server.fake.lock().logs.insert(
        id.clone(),
        LogLocation::File {
            path: path.clone(),
            active: true,
        },
    );
    let response = server
        .get(&format!("/api/v1/task/{id}/stdout?follow=true"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Box::pin(response.bytes_stream());
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "first\n").await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"second\n").unwrap();
    read_until(&mut stream, &mut seen, "second\n").await;
    // Written just before the task stops: still delivered, then the stream ends.
    file.write_all(b"third\n").unwrap();
    server.fake.lock().logs.insert(
        id.clone(),
        LogLocation::File {
            path,
            active: false,
        },
    );
    within(async {
        while let Some(chunk) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    })
    .await;
    assert_eq!(seen, "first\nsecond\nthird\n");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// TLS.

#[tokio::test]
async fn tls_serving_works_with_a_self_signed_certificate() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, generated.cert.pem()).unwrap();
    std::fs::write(&files.key, generated.signing_key.serialize_pem()).unwrap();
    let root = reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let server = Server::start_with(config(), Some(files), "https", client).await;
    let version = server.get("/api/v1/version").await;
    assert_eq!(version.text().await.unwrap(), "\"1.2.3\"\n");
    let accepted = server.post_json("/api/v1/task", &valid_v1()).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert!(accepted.headers()[LOCATION]
        .to_str()
        .unwrap()
        .starts_with("https://localhost:"));
    server.shutdown().await;
}

#[tokio::test]
async fn tls_load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("missing-cert.pem"),
        key: dir.path().join("key.pem"),
    };
    let error = eremetic::http::load_tls(&files).unwrap_err().to_string();
    assert!(error.contains("missing-cert.pem"), "{error}");
    std::fs::write(&files.cert, "not a certificate").unwrap();
    let error = eremetic::http::load_tls(&files).unwrap_err().to_string();
    assert!(
        error.contains("missing-cert.pem") && error.contains("no CERTIFICATE"),
        "{error}"
    );
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&files.cert, generated.cert.pem()).unwrap();
    std::fs::write(&files.key, "garbage").unwrap();
    let error = eremetic::http::load_tls(&files).unwrap_err().to_string();
    assert!(error.contains("key.pem"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// hermit (Eremetic's CLI) sends every key of its Go request struct, without Content-Type, and
// reads raw bodies; it must keep working unchanged.

#[tokio::test]
async fn hermit_requests_work_unchanged() {
    let server = Server::start(config()).await;
    let hermit_run = json!({
        "cpu": 0.1, "mem": 128, "image": "busybox", "command": "echo hi", "args": null,
        "volumes": null, "volumes_from": null,
        "ports": [{"container_port": 8080, "host_port": 0, "protocol": "tcp"}],
        "name": "", "network": "BRIDGE", "dns": "", "env": {"A": "b"}, "masked_env": null,
        "labels": null, "agent_constraints": null, "callback_uri": "", "fetch": null,
        "force_pull_image": false, "privileged": false
    });
    let response = server.post_json("/api/v1/task", &hermit_run).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id: String = response.json().await.unwrap();
    let listed = body_json(server.get("/api/v1/task").await).await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(
        body_json(server.get(&format!("/api/v1/task/{id}")).await).await["env"]["A"],
        "b"
    );
    let kill = server
        .client
        .post(server.url(&format!("/api/v1/task/{id}/kill")))
        .send()
        .await;
    assert_eq!(kill.unwrap().status(), StatusCode::ACCEPTED);
    let version = server.get("/api/v1/version").await.text().await.unwrap();
    assert_eq!(version, "\"1.2.3\"\n");
    server.shutdown().await;
}

#[tokio::test]
async fn events_tell_a_lagging_client_how_many_it_missed_and_continue() {
    let server = Server::start(config()).await;
    let response = server.get("/api/v1/events").await;
    let event = |n: i64| TaskEvent {
        task_id: TaskId::parse(&format!("eremetic-task.{n}")).unwrap(),
        name: "job".into(),
        status: TaskState::Running,
        time: OffsetDateTime::from_unix_timestamp(n).unwrap(),
        exit_code: None,
        reason: None,
    };
    // The test runtime has one thread: the server cannot read while this loop runs, so the
    // subscription (capacity 16) overflows by 4.
    for n in 0..20 {
        server.fake.events.send(event(n)).unwrap();
    }
    let mut stream = Box::pin(response.bytes_stream());
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "eremetic-task.19\"").await;
    assert!(
        seen.contains("event: lagged\ndata: {\"skipped\":4}\n"),
        "{seen}"
    );
    assert!(!seen.contains("eremetic-task.3\""), "{seen}");
    assert!(seen.contains("eremetic-task.4\""), "{seen}");
    drop(stream);
    server.shutdown().await;
}

#[tokio::test]
async fn follow_logs_of_a_queued_task_waits_for_its_output_or_its_end() {
    let server = Server::start(config()).await;
    let starts = server.fake.insert(valid_v1(), &[]);
    let response = server
        .get(&format!("/api/v1/task/{starts}/stdout?follow=true"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(&dir, "ran and ended\n");
    server.fake.lock().logs.insert(
        starts.clone(),
        LogLocation::File {
            path,
            active: false,
        },
    );
    let text = within(response.text()).await.unwrap();
    assert_eq!(text, "ran and ended\n");

    let killed = server.fake.insert(valid_v1(), &[]);
    let response = server
        .get(&format!("/api/v1/task/{killed}/stdout?follow=1"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    server
        .fake
        .lock()
        .tasks
        .get_mut(&killed)
        .unwrap()
        .push_status(TaskState::Killed, OffsetDateTime::now_utc());
    assert_eq!(within(response.text()).await.unwrap(), "");
    server.shutdown().await;
}
