//! Hardening of the HTTP layer, end to end over a real socket: malformed `Host` headers are
//! refused before they can reach `Location`, the log endpoints serve the newest output of a
//! task whose output was rotated at its limit (and say how much was dropped) and follow it
//! across rotations, and the usage of a task whose container ends during the call is an
//! answer, not a failure.

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "http_api/fake.rs"]
mod fake;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eremetic::http::{router, serve, HttpConfig};
use eremetic::metrics::Metrics;
use eremetic::service::{
    Accepted, ClusterStatus, DeleteError, KillError, LogLocation, LogStream, ReadError, Submission,
    SubmitError, TaskEvent, TaskService, TaskUsage,
};
use eremetic::task::{StateFilter, Task, TaskId, TaskState};
use fake::Fake;
use futures::StreamExt;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, oneshot};

/// Upper bound for any awaited condition; it only bounds a hang.
const PATIENCE: Duration = Duration::from_secs(20);

/// The fake service, whose usage call ends the task first (as a container that exits while
/// its statistics are read) and then fails as Docker does.
struct ExitingDuringUsage {
    inner: Arc<Fake>,
}

#[async_trait]
impl TaskService for ExitingDuringUsage {
    async fn submit(&self, submission: Submission) -> Result<Accepted, SubmitError> {
        self.inner.submit(submission).await
    }
    async fn get(&self, id: &TaskId) -> Result<Option<Task>, ReadError> {
        self.inner.get(id).await
    }
    async fn list(&self, filter: StateFilter, name: Option<&str>) -> Result<Vec<Task>, ReadError> {
        self.inner.list(filter, name).await
    }
    async fn kill(&self, id: &TaskId) -> Result<(), KillError> {
        self.inner.kill(id).await
    }
    async fn delete(&self, id: &TaskId) -> Result<(), DeleteError> {
        self.inner.delete(id).await
    }
    fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.inner.subscribe()
    }
    fn cluster(&self) -> ClusterStatus {
        self.inner.cluster()
    }
    async fn usage(&self, id: &TaskId) -> Result<Option<TaskUsage>, ReadError> {
        if let Some(task) = self.inner.lock().tasks.get_mut(id) {
            task.push_status(TaskState::Finished, OffsetDateTime::now_utc());
        }
        Err(ReadError(format!(
            "usage of {id}: Docker: container is not running (HTTP 409)"
        )))
    }
    async fn log_location(
        &self,
        id: &TaskId,
        stream: LogStream,
    ) -> Result<Option<LogLocation>, ReadError> {
        self.inner.log_location(id, stream).await
    }
}

struct Server {
    base: String,
    port: u16,
    fake: Arc<Fake>,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start() -> Server {
        let fake = Fake::new();
        let service = Arc::new(ExitingDuringUsage {
            inner: Arc::clone(&fake),
        });
        let config = HttpConfig {
            version: "1.2.3".into(),
            ..HttpConfig::default()
        };
        let app = router(service, Arc::new(Metrics::new()), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, None, async move {
            let _ = stopped.await;
        }));
        Server {
            base: format!("http://127.0.0.1:{port}"),
            port,
            fake,
            client: reqwest::Client::new(),
            _stop: stop,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let request = self.client.get(format!("{}{path}", self.base)).send();
        tokio::time::timeout(PATIENCE, request)
            .await
            .unwrap()
            .unwrap()
    }

    /// Sends `request` as raw bytes (so that no client library normalizes the Host header)
    /// and returns the whole answer.
    async fn raw(&self, request: String) -> String {
        let exchange = async {
            let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .unwrap();
            socket.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            socket.read_to_end(&mut answer).await.unwrap();
            String::from_utf8_lossy(&answer).into_owned()
        };
        tokio::time::timeout(PATIENCE, exchange).await.unwrap()
    }

    fn set_log(&self, id: &TaskId, path: &Path, active: bool) {
        let location = LogLocation::File {
            path: path.to_owned(),
            active,
        };
        self.fake.lock().logs.insert(id.clone(), location);
    }
}

fn valid_v1() -> Value {
    json!({"image": "busybox", "command": "echo hi", "cpu": 0.1, "mem": 32})
}

fn submit_with_host(host: &str) -> String {
    let body = valid_v1().to_string();
    format!(
        "POST /api/v1/task HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The status code and body of a raw answer.
fn status_and_body(answer: &str) -> (u16, &str) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body)
}

#[tokio::test]
async fn malformed_host_headers_are_refused_with_400_and_never_reach_location() {
    let server = Server::start().await;
    for host in [
        "127.0.0.1:1@evil.example",
        "a b",
        "x:y:z",
        "[::1",
        "host:99999",
        "evil.example/path",
    ] {
        let answer = server.raw(submit_with_host(host)).await;
        let (status, body) = status_and_body(&answer);
        assert_eq!(status, 400, "{host}: {answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("location:"),
            "{answer}"
        );
        let document: Value = serde_json::from_str(body).unwrap();
        assert_eq!(document["message"], "Bad Host header", "{host}");
        let error = document["error"].as_str().unwrap();
        assert!(error.contains("is not host[:port]"), "{host}: {error}");
    }
    assert!(server.fake.lock().submissions.is_empty());
    // Well-formed hosts still get their Location.
    let answer = server.raw(submit_with_host("[::1]:8080")).await;
    assert_eq!(status_and_body(&answer).0, 202, "{answer}");
    assert!(
        answer.contains("location: http://[::1]:8080/api/v1/task/"),
        "{answer}"
    );
}

#[tokio::test]
async fn usage_of_a_task_whose_container_exits_during_the_call_is_200_with_the_final_state() {
    let server = Server::start().await;
    let id = server.fake.insert(valid_v1(), &[TaskState::Running]);
    let response = server.get(&format!("/web/task/{id}/usage")).await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["state"], "TASK_FINISHED");
    assert_eq!(document["usage"], Value::Null);
}

/// Reads `stream` into `seen` until it contains `wanted`.
async fn read_until<S>(stream: &mut S, seen: &mut String, wanted: &str)
where
    S: futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    let reading = async {
        while !seen.contains(wanted) {
            let chunk = stream.next().await.expect("stream ended early").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(PATIENCE, reading).await.unwrap();
}

fn write(path: PathBuf, text: &str) -> PathBuf {
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn log_endpoint_serves_the_newest_output_and_says_how_much_was_dropped() {
    let server = Server::start().await;
    let id = server.fake.insert(valid_v1(), &[TaskState::Finished]);
    let dir = tempfile::tempdir().unwrap();
    let stdout = write(dir.path().join("stdout"), "line 3\n");
    write(dir.path().join("stdout.1"), "line 2\n");
    write(dir.path().join("stdout.dropped"), "7\n");
    server.set_log(&id, &stdout, false);
    for path in [
        format!("/api/v1/task/{id}/stdout"),
        format!("/task/{id}/stdout"),
    ] {
        let response = server.get(&path).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-eremetic-output-truncated"], "7");
        assert_eq!(response.text().await.unwrap(), "line 2\nline 3\n");
    }
    // Nothing dropped: no header, the whole output.
    std::fs::remove_file(dir.path().join("stdout.dropped")).unwrap();
    let response = server.get(&format!("/api/v1/task/{id}/stdout")).await;
    assert!(response
        .headers()
        .get("x-eremetic-output-truncated")
        .is_none());
    assert_eq!(response.text().await.unwrap(), "line 2\nline 3\n");
}

#[tokio::test]
async fn log_endpoint_never_serves_a_host_file_linked_into_the_sandbox() {
    let server = Server::start().await;
    let id = server.fake.insert(valid_v1(), &[TaskState::Finished]);
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path().join("host-secret"), "root:x:0:0\n");
    let stdout = dir.path().join("stdout");
    std::os::unix::fs::symlink(&secret, &stdout).unwrap();
    server.set_log(&id, &stdout, false);
    let response = server.get(&format!("/api/v1/task/{id}/stdout")).await;
    assert_eq!(response.status(), 500);
    assert!(!response.text().await.unwrap().contains("root:x"));
}

#[tokio::test]
async fn follow_mode_keeps_streaming_across_a_rotation_of_the_output() {
    let server = Server::start().await;
    let id = server.fake.insert(valid_v1(), &[TaskState::Running]);
    let dir = tempfile::tempdir().unwrap();
    let stdout = write(dir.path().join("stdout"), "one\n");
    server.set_log(&id, &stdout, true);
    let response = server
        .get(&format!("/api/v1/task/{id}/stdout?follow=true"))
        .await;
    let mut stream = Box::pin(response.bytes_stream());
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "one\n").await;
    // The writer finishes the file, rotates it, and goes on in a new one — twice.
    let append = |text: &str| {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&stdout)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    };
    append("two\n");
    std::fs::rename(&stdout, dir.path().join("stdout.1")).unwrap();
    write(stdout.clone(), "three\n");
    read_until(&mut stream, &mut seen, "three\n").await;
    std::fs::rename(&stdout, dir.path().join("stdout.1")).unwrap();
    write(stdout.clone(), "four\n");
    server.set_log(&id, &stdout, false);
    let rest = async {
        while let Some(chunk) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    };
    tokio::time::timeout(PATIENCE, rest).await.unwrap();
    assert_eq!(seen, "one\ntwo\nthree\nfour\n");
}

#[tokio::test]
async fn task_page_shows_why_a_task_waits_and_how_much_output_was_dropped() {
    let server = Server::start().await;
    let waiting = server.fake.insert(valid_v1(), &[]);
    let reason = "waiting: data_dir /x has 512 MiB free, below the floor of 1 GiB";
    let ended = server.fake.insert(valid_v1(), &[TaskState::Finished]);
    {
        let mut state = server.fake.lock();
        state.tasks.get_mut(&waiting).unwrap().waiting_reason = Some(reason.into());
        state.tasks.get_mut(&ended).unwrap().stdout_dropped_bytes = 4096;
    }
    let page = |id: TaskId| {
        let request = server
            .client
            .get(format!("{}/web/task/{id}", server.base))
            .send();
        async move { request.await.unwrap().text().await.unwrap() }
    };
    let html = page(waiting.clone()).await;
    assert!(html.contains("id=\"waiting-reason\""), "{html}");
    assert!(html.contains("below the floor of 1 GiB"));
    let html = page(ended).await;
    assert!(
        html.contains("4096 bytes of stdout (over the output limit)"),
        "{html}"
    );
    assert!(!html.contains("waiting-reason"));
    // The JSON document carries the same.
    let document: Value = server
        .get(&format!("/api/v1/task/{waiting}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(document["waiting_reason"], reason);
    assert_eq!(document["stdout_dropped_bytes"], 0);
}
