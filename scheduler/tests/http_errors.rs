//! The one HTTP error type, through the real router in process: malformed task ids are
//! rejected the same way on every task route, and a storage failure answers a generic 500
//! whose kind is counted in the metrics.

#![allow(clippy::unwrap_used)]

// The engine harness (real store, fake backend); this file uses only part of it.
#[allow(dead_code)]
mod engine_support;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use eremetic::backend::Resources;
use eremetic::http::{router, HttpConfig};
use eremetic::metrics::Metrics;
use eremetic::service::{
    Accepted, ClusterStatus, DeleteError, KillError, LogLocation, LogStream, ReadError, Submission,
    SubmitError, TaskEvent, TaskService, TaskUsage,
};
use eremetic::store::StoreError;
use eremetic::task::{StateFilter, Task, TaskId};
use tokio::sync::broadcast;
use tower::ServiceExt;

/// A service whose store always fails with the error `failure` makes.
struct FailingStore {
    failure: fn() -> StoreError,
}

impl FailingStore {
    fn read(&self) -> ReadError {
        ReadError::from((self.failure)())
    }
}

#[async_trait]
impl TaskService for FailingStore {
    async fn submit(&self, _: Submission) -> Result<Accepted, SubmitError> {
        Err(SubmitError::Store((self.failure)().into()))
    }
    async fn get(&self, _: &TaskId) -> Result<Option<Task>, ReadError> {
        Err(self.read())
    }
    async fn list(&self, _: StateFilter, _: Option<&str>) -> Result<Vec<Task>, ReadError> {
        Err(self.read())
    }
    async fn kill(&self, _: &TaskId) -> Result<(), KillError> {
        Err(self.read().into())
    }
    async fn delete(&self, _: &TaskId) -> Result<(), DeleteError> {
        Err(self.read().into())
    }
    fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        broadcast::channel(1).1
    }
    fn cluster(&self) -> ClusterStatus {
        ClusterStatus {
            backend: "none".into(),
            total: NOTHING,
            free: NOTHING,
            queued: 0,
            running: 0,
            view: eremetic::backend::ClusterView::Local(eremetic::backend::view::LocalView {
                docker_host: None,
                instance_id: "test".into(),
                port_range: [31000, 32000],
                user_network: None,
            }),
        }
    }
    async fn usage(&self, _: &TaskId) -> Result<Option<TaskUsage>, ReadError> {
        Err(self.read())
    }
    async fn log_location(
        &self,
        _: &TaskId,
        _: LogStream,
    ) -> Result<Option<LogLocation>, ReadError> {
        Err(self.read())
    }
}

const NOTHING: Resources = Resources {
    cpus: 0.0,
    mem_mib: 0.0,
    ports: 0,
};

fn full_disk() -> StoreError {
    StoreError::CreateFile {
        path: PathBuf::from("/srv/eremetic/eremetic.db"),
        source: Arc::new(std::io::Error::from_raw_os_error(28)),
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt {
        path: PathBuf::from("/srv/eremetic/eremetic.db"),
        what: "record of task eremetic-task.x".into(),
        reason: "expected value at line 1".into(),
    }
}

fn app(failure: fn() -> StoreError, metrics: Arc<Metrics>) -> axum::Router {
    let config = HttpConfig {
        version: "0.0.0-test".into(),
        ..HttpConfig::default()
    };
    router(Arc::new(FailingStore { failure }), metrics, config)
}

async fn call(app: &axum::Router, method: &str, uri: &str, accept: &str) -> (u16, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

const BAD: &str = "not%20an%20id";
const JSON: &str = "application/json";
const HTML: &str = "text/html";

#[tokio::test]
async fn malformed_task_ids_are_404_on_every_task_route_before_the_service_is_asked() {
    // The service fails every call: a 404 proves the id was refused before it.
    let app = app(corrupt, Arc::new(Metrics::new()));
    let document = "{\"error\":\"no task with id \\\"not an id\\\": ";
    let bare = "\"no task with id \\\"not an id\\\": ";
    for prefix in ["/api/v1", ""] {
        for (method, suffix, accept, start) in [
            ("GET", "", JSON, document),
            ("GET", "/stdout", JSON, document),
            ("GET", "/stderr", JSON, document),
            ("POST", "/kill", JSON, bare),
            ("DELETE", "", JSON, bare),
        ] {
            let uri = format!("{prefix}/task/{BAD}{suffix}");
            let (status, body) = call(&app, method, &uri, accept).await;
            assert_eq!(status, 404, "{method} {uri}: {body}");
            assert!(body.starts_with(start), "{method} {uri}: {body}");
        }
    }
    let (status, body) = call(&app, "GET", &format!("/web/task/{BAD}/usage"), JSON).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.starts_with(document), "{body}");
    for uri in [format!("/web/task/{BAD}"), format!("/task/{BAD}")] {
        let (status, body) = call(&app, "GET", &uri, HTML).await;
        assert_eq!(status, 404, "{uri}: {body}");
        assert!(
            body.contains("No task with id not an id: "),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn storage_failures_answer_a_generic_500_and_are_counted_by_kind() {
    let metrics = Arc::new(Metrics::new());
    let id = "eremetic-task.0123456789abcdef0123456789abcdef";
    let disk = app(full_disk, Arc::clone(&metrics));
    let (status, body) = call(&disk, "GET", &format!("/api/v1/task/{id}"), JSON).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "{\"error\":\"the task store's disk is full\",\"message\":\"Unable to read the task\"}\n"
    );
    let (status, body) = call(&disk, "POST", &format!("/api/v1/task/{id}/kill"), JSON).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "\"the task store's disk is full\"\n")
    );
    let broken = app(corrupt, Arc::clone(&metrics));
    let (status, body) = call(&broken, "GET", "/api/v1/task", JSON).await;
    assert_eq!(status, 500);
    assert!(
        !body.contains("/srv/eremetic") && !body.contains("line 1"),
        "{body}"
    );
    let (_, exposition) = call(&broken, "GET", "/metrics", "text/plain").await;
    let count = |kind: &str| {
        let wanted = format!("eremetic_http_internal_errors_total{{kind=\"{kind}\"}} ");
        exposition
            .lines()
            .find_map(|line| line.strip_prefix(&wanted))
            .unwrap_or_else(|| panic!("no {wanted} in {exposition}"))
            .to_owned()
    };
    assert_eq!(count("disk_full"), "2");
    assert_eq!(count("database_corrupt"), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_in_the_real_store_is_a_500_counted_as_database_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let fake = engine_support::fake::FakeBackend::new(
        1.0,
        4096.0,
        (31000, 31009),
        &dir.path().join("sandboxes"),
    );
    let harness =
        engine_support::Harness::start_in(dir.path(), fake, engine_support::config()).await;
    let id = harness
        .submit(&engine_support::body("victim", 0.5, ""))
        .await;
    harness.scheduler.kill(&id).await.unwrap();
    harness
        .wait_state(&id, eremetic::task::TaskState::Killed)
        .await;
    // Damage the stored record behind the scheduler's back, as a bad disk would.
    let database = rusqlite::Connection::open(dir.path().join("eremetic.db")).unwrap();
    let changed = database
        .execute(
            "UPDATE tasks SET record = '{not json' WHERE id = ?1",
            [id.as_str()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let app = router(
        Arc::new(harness.scheduler.clone()),
        Arc::clone(&harness.metrics),
        HttpConfig::default(),
    );
    let (status, body) = call(&app, "GET", &format!("/api/v1/task/{id}"), JSON).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "{\"error\":\"the task store's database is corrupt\",\"message\":\"Unable to read the task\"}\n"
    );
    let (status, body) = call(&app, "DELETE", &format!("/api/v1/task/{id}"), JSON).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "\"the task store's database is corrupt\"\n")
    );
    let (_, exposition) = call(&app, "GET", "/metrics", "text/plain").await;
    assert!(
        exposition.contains("eremetic_http_internal_errors_total{kind=\"database_corrupt\"} 2"),
        "{exposition}"
    );
}
