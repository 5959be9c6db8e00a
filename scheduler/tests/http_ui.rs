//! The web UI end to end: the real router served on 127.0.0.1:0, a real HTTP client asking
//! for HTML the way a browser does, and the in-memory fake of the `TaskService` (wrapped to
//! report cluster numbers and usage).

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "http_api/fake.rs"]
mod fake;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use eremetic::backend::Resources;
use eremetic::http::{router, serve, HttpConfig};
use eremetic::metrics::Metrics;
use eremetic::service::{
    Accepted, ClusterStatus, DeleteError, KillError, LogLocation, LogStream, ReadError, Submission,
    SubmitError, TaskEvent, TaskService, TaskUsage,
};
use eremetic::task::{StateFilter, Task, TaskId, TaskState};
use fake::Fake;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const SECRET: &str = "hunter2-ui-secret-value";
const HTML_TYPE: &str = "text/html; charset=utf-8";

/// The fake, plus fixed cluster numbers and usage for running tasks.
struct UiFake {
    inner: Arc<Fake>,
}

#[async_trait]
impl TaskService for UiFake {
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
        ClusterStatus {
            backend: "local".into(),
            total: Resources {
                cpus: 8.0,
                mem_mib: 16384.0,
                ports: 1000,
            },
            free: Resources {
                cpus: 5.5,
                mem_mib: 12288.0,
                ports: 997,
            },
            queued: 4,
            running: 3,
            view: eremetic::backend::ClusterView::Local(eremetic::backend::view::LocalView {
                docker_host: None,
                instance_id: "test".into(),
                port_range: [31000, 32000],
                user_network: None,
            }),
        }
    }
    async fn usage(&self, id: &TaskId) -> Result<Option<TaskUsage>, ReadError> {
        let running = self
            .inner
            .get(id)
            .await?
            .is_some_and(|task| task.is_running());
        Ok(running.then_some(TaskUsage {
            cpu_seconds: 1.5,
            memory_bytes: 12 * 1024 * 1024,
            memory_limit_bytes: 128 * 1024 * 1024,
        }))
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
    fake: Arc<Fake>,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    async fn start(config: HttpConfig) -> Server {
        let fake = Fake::new();
        let service = Arc::new(UiFake {
            inner: Arc::clone(&fake),
        });
        let app = router(service, Arc::new(Metrics::new()), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, None, async move {
            let _ = stopped.await;
        }));
        Server {
            base: format!("http://127.0.0.1:{port}"),
            fake,
            client: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET as a browser sends it.
    async fn browse(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header(ACCEPT, BROWSER_ACCEPT)
            .send()
            .await
            .unwrap()
    }

    /// A browser GET that must answer 200 with an HTML page; returns its source.
    async fn page(&self, path: &str) -> String {
        let response = self.browse(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        assert_eq!(response.headers()[CONTENT_TYPE], HTML_TYPE, "GET {path}");
        response.text().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn config() -> HttpConfig {
    HttpConfig {
        version: "9.8.7".into(),
        ..HttpConfig::default()
    }
}

fn full_request() -> Value {
    json!({
        "image": "busybox:latest", "command": "echo hello && sleep 5", "cpu": 0.5, "mem": 64,
        "env": {"GREETING": "hello-env"}, "masked_env": {"API_TOKEN": SECRET},
        "labels": {"team": "ui"}, "ports": [{"container_port": 8080, "protocol": "udp"}],
        "volumes": [{"host_path": "/srv/data", "container_path": "/data"}],
        "callback_uri": "http://hooks.example/done"
    })
}

/// `<tag ... id="id" ...>text<`: the text of the element with this id.
fn element_text<'a>(page: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let open_end = start + page[start..].find('>').unwrap() + 1;
    let close = open_end + page[open_end..].find('<').unwrap();
    &page[open_end..close]
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn index_page_has_the_launch_form_and_a_row_per_listed_task() {
    let server = Server::start(config()).await;
    let running = server
        .fake
        .insert(full_request(), &[TaskState::Staging, TaskState::Running]);
    let queued = server.fake.insert(full_request(), &[]);
    let finished = server
        .fake
        .insert(full_request(), &[TaskState::Running, TaskState::Finished]);
    let page = server.page("/").await;
    for needle in [
        "<form id=\"new-task\"",
        "name=\"image\"",
        "name=\"command\"",
        "name=\"cpu\" type=\"number\" step=\"0.1\" min=\"0\" value=\"1.0\"",
        "name=\"mem\" type=\"number\" step=\"1\" min=\"0\" value=\"128\"",
        "name=\"name\"",
        "name=\"callback_uri\"",
        "id=\"env-rows\"",
        "id=\"masked-env-rows\"",
        "id=\"label-rows\"",
        "id=\"port-rows\"",
        "id=\"volume-rows\"",
        "class=\"add-row\" data-target=\"env-rows\"",
        "class=\"field-error\" data-field=\"image\"",
        "id=\"form-error\"",
        "<button type=\"submit\" id=\"submit-task\"",
        "<form id=\"filter\"",
        "<option value=\"active,queued\" selected>",
        "<table id=\"tasks\">",
    ] {
        assert!(page.contains(needle), "missing {needle}");
    }
    for id in [&running, &queued] {
        assert!(page.contains(&format!("<tr class=\"task\" data-task-id=\"{id}\"")));
    }
    assert!(page.contains("<td class=\"state\" data-state=\"TASK_RUNNING\">TASK_RUNNING</td>"));
    assert!(page.contains("<td class=\"image\">busybox:latest</td>"));
    assert!(
        !page.contains(finished.as_str()),
        "finished task listed by default"
    );

    let terminated = server.page("/?state=terminated").await;
    assert!(terminated.contains(&format!("data-task-id=\"{finished}\"")));
    assert!(!terminated.contains(running.as_str()));
    assert!(terminated.contains("<option value=\"terminated\" selected>"));
    let by_name = server
        .page("/?state=active,queued,terminated&name=other")
        .await;
    assert!(by_name.contains("No tasks match the filter."));
}

#[tokio::test]
async fn clients_that_do_not_ask_for_html_keep_the_api_answers() {
    let server = Server::start(config()).await;
    let id = server.fake.insert(full_request(), &[]);
    let index = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::NO_CONTENT);
    assert!(index.bytes().await.unwrap().is_empty());
    for path in [format!("/task/{id}"), format!("/api/v1/task/{id}")] {
        let response = server.client.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "application/json; charset=UTF-8"
        );
        let document: Value = response.json().await.unwrap();
        assert_eq!(document["id"], id.as_str());
    }
    // v1 never renders HTML, even for a browser.
    let v1 = server.browse(&format!("/api/v1/task/{id}")).await;
    assert_eq!(
        v1.headers()[CONTENT_TYPE],
        "application/json; charset=UTF-8"
    );
    let missing = server
        .client
        .get(server.url("/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()[CONTENT_TYPE],
        "application/json; charset=UTF-8"
    );
}

#[tokio::test]
async fn task_page_shows_fields_history_usage_and_masks_secrets() {
    let server = Server::start(config()).await;
    let id = server
        .fake
        .insert(full_request(), &[TaskState::Staging, TaskState::Running]);
    for path in [format!("/web/task/{id}"), format!("/task/{id}")] {
        let page = server.page(&path).await;
        assert!(!page.contains(SECRET), "secret leaked by {path}");
        assert_eq!(element_text(&page, "task-name"), "fake");
        assert_eq!(element_text(&page, "task-id"), id.as_str());
        assert_eq!(element_text(&page, "state"), "TASK_RUNNING");
        assert_eq!(element_text(&page, "image"), "busybox:latest");
        assert_eq!(
            element_text(&page, "command"),
            "echo hello &amp;&amp; sleep 5"
        );
        assert_eq!(element_text(&page, "cpu"), "0.5");
        assert_eq!(element_text(&page, "mem"), "64");
        assert_eq!(element_text(&page, "exit-code"), "—");
        assert_eq!(
            element_text(&page, "callback-uri"),
            "http://hooks.example/done"
        );
        assert!(page.contains("<tr><th>GREETING</th><td>hello-env</td></tr>"));
        assert!(page.contains("<tr><th>API_TOKEN</th><td>*******</td></tr>"));
        assert!(page.contains("<tr><th>team</th><td>ui</td></tr>"));
        assert!(page.contains("<tr><th>8080/udp</th><td>not assigned</td></tr>"));
        assert!(page.contains("<tr><th>/srv/data</th><td>/data</td></tr>"));
        let history = &page[page.find("<ol id=\"history\">").unwrap()..];
        let history = &history[..history.find("</ol>").unwrap()];
        let states: Vec<&str> = history
            .match_indices("<li data-state=\"")
            .map(|(at, marker)| {
                let rest = &history[at + marker.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        assert_eq!(states, ["TASK_QUEUED", "TASK_STAGING", "TASK_RUNNING"]);
        assert!(
            history.contains("T") && history.contains("Z</time>"),
            "{history}"
        );
        assert!(page.contains("<section id=\"usage\" class=\"usage\">"));
        assert_eq!(element_text(&page, "usage-cpu"), "1.5 s");
        assert_eq!(element_text(&page, "usage-mem"), "12 MiB of 128 MiB");
        assert!(page.contains("id=\"kill\""));
        assert!(!page.contains("id=\"delete\""));
        assert!(page.contains("<pre id=\"stdout\" class=\"log\">"));
        assert!(page.contains("<pre id=\"stderr\" class=\"log\">"));
    }
}

#[tokio::test]
async fn history_times_are_utc_iso_timestamps() {
    let server = Server::start(config()).await;
    let id = server.fake.insert(full_request(), &[]);
    let page = server.page(&format!("/web/task/{id}")).await;
    let at = page.find("<time datetime=\"").unwrap() + "<time datetime=\"".len();
    let stamp = &page[at..at + 20];
    let bytes = stamp.as_bytes();
    assert!(
        bytes[4] == b'-' && bytes[7] == b'-' && bytes[10] == b'T' && bytes[19] == b'Z',
        "{stamp}"
    );
    assert!(stamp[..4].chars().all(|c| c.is_ascii_digit()), "{stamp}");
}

#[tokio::test]
async fn ended_task_page_shows_exit_code_reason_logs_and_only_delete() {
    let server = Server::start(config()).await;
    let id = server
        .fake
        .insert(full_request(), &[TaskState::Running, TaskState::Failed]);
    {
        let mut state = server.fake.lock();
        let task = state.tasks.get_mut(&id).unwrap();
        task.exit_code = Some(3);
        task.failure_reason = Some("exit status 3 <bad>".into());
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stdout");
    std::fs::write(&log, "plain \u{1b}[1;31merror <b>\u{1b}[0m done\n").unwrap();
    server.fake.lock().logs.insert(
        id.clone(),
        LogLocation::File {
            path: log,
            active: false,
        },
    );
    let page = server.page(&format!("/web/task/{id}")).await;
    assert_eq!(element_text(&page, "exit-code"), "3");
    assert_eq!(
        element_text(&page, "failure-reason"),
        "exit status 3 &lt;bad&gt;"
    );
    assert!(page.contains("id=\"delete\""));
    assert!(!page.contains("id=\"kill\""));
    assert!(page.contains("<section id=\"usage\" class=\"usage\" hidden>"));
    assert!(page.contains(
        "<pre id=\"stdout\" class=\"log\">plain <span class=\"ansi-bold ansi-fg-1\">error &lt;b&gt;</span> done\n</pre>"
    ));
}

#[tokio::test]
async fn script_in_task_name_and_command_is_escaped_everywhere() {
    let server = Server::start(config()).await;
    let body = json!({
        "image": "busybox", "cpu": 0.1, "mem": 32,
        "name": "<script>alert('name')</script>",
        "command": "echo \"<script>alert(1)</script>\""
    });
    let response = server
        .client
        .post(server.url("/api/v1/task"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id: String = response.json().await.unwrap();
    let task_page = server.page(&format!("/web/task/{id}")).await;
    let index = server.page("/").await;
    for page in [&task_page, &index] {
        assert!(!page.contains("<script>alert"), "unescaped script");
        assert!(page.contains("&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"));
    }
    assert!(task_page.contains("echo &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"));
    // The title is escaped too.
    assert!(task_page.contains("<title>&lt;script&gt;"));
}

/// Every `href`, `src` and `action` value in a page.
fn urls(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "src=\"", "action=\""] {
        for (at, _) in page.match_indices(attribute) {
            let rest = &page[at + attribute.len()..];
            found.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    found
}

#[tokio::test]
async fn url_prefix_starts_every_generated_link() {
    let server = Server::start(HttpConfig {
        url_prefix: "proxy/eremetic/".into(),
        ..config()
    })
    .await;
    let id = server.fake.insert(full_request(), &[TaskState::Running]);
    for path in [
        "/".to_owned(),
        format!("/web/task/{id}"),
        "/cluster".to_owned(),
    ] {
        let page = server.page(&path).await;
        let links = urls(&page);
        assert!(links.len() >= 5, "{links:?}");
        for link in &links {
            assert!(link.starts_with("/proxy/eremetic/"), "{link} on {path}");
        }
        assert!(page.contains("data-prefix=\"/proxy/eremetic\""));
        assert!(page.contains("class=\"logo\" href=\"/proxy/eremetic/\""));
    }
    let index = server.page("/").await;
    assert!(index.contains(&format!("href=\"/proxy/eremetic/web/task/{id}\"")));
}

#[tokio::test]
async fn unknown_task_and_path_get_html_404_pages_naming_them() {
    let server = Server::start(config()).await;
    let missing = "eremetic-task.does-not-exist";
    for path in [format!("/web/task/{missing}"), format!("/task/{missing}")] {
        let response = server.browse(&path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.headers()[CONTENT_TYPE], HTML_TYPE);
        let page = response.text().await.unwrap();
        assert!(page.contains(missing), "{page}");
        assert!(!page.ends_with("null"), "E-20 stray null");
    }
    let bad = server.browse("/web/task/bad%3Cid%3E").await;
    assert_eq!(bad.status(), StatusCode::NOT_FOUND);
    let page = bad.text().await.unwrap();
    assert!(
        page.contains("bad&lt;id&gt;") && !page.contains("bad<id>"),
        "{page}"
    );
    let unknown = server.browse("/no/such/page").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.headers()[CONTENT_TYPE], HTML_TYPE);
    assert!(unknown.text().await.unwrap().contains("/no/such/page"));
}

#[tokio::test]
async fn browsers_get_an_html_401_with_the_basic_challenge() {
    let server = Server::start(HttpConfig {
        basic: Some(("admin".into(), "pw".into())),
        ..config()
    })
    .await;
    for path in ["/", "/cluster", "/static/eremetic.css"] {
        let response = server.browse(path).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Basic realm=\"Eremetic\""
        );
        assert_eq!(response.headers()[CONTENT_TYPE], HTML_TYPE);
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("Authentication required"));
    }
    let api = server
        .client
        .get(server.url("/api/v1/task"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.headers()[CONTENT_TYPE],
        "application/json; charset=UTF-8"
    );
    let credentials = base64::engine::general_purpose::STANDARD.encode("admin:pw");
    let signed_in = server
        .client
        .get(server.url("/"))
        .header(ACCEPT, BROWSER_ACCEPT)
        .header(AUTHORIZATION, format!("Basic {credentials}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
}

#[tokio::test]
async fn cluster_page_shows_backend_capacity_and_queue() {
    let server = Server::start(config()).await;
    let page = server.page("/cluster").await;
    for (id, value) in [
        ("backend", "local"),
        ("cpus-total", "8"),
        ("cpus-free", "5.5"),
        ("mem-total", "16384"),
        ("mem-free", "12288"),
        ("ports-total", "1000"),
        ("ports-free", "997"),
        ("queue-depth", "4"),
        ("running", "3"),
    ] {
        assert_eq!(element_text(&page, id), value, "#{id}");
    }
}

#[tokio::test]
async fn static_assets_are_embedded_with_types_and_revalidation() {
    let server = Server::start(config()).await;
    for (file, content_type) in [
        ("eremetic.css", "text/css; charset=utf-8"),
        ("eremetic.js", "text/javascript; charset=utf-8"),
        ("ansi.js", "text/javascript; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
    ] {
        let response = server
            .client
            .get(server.url(&format!("/static/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{file}");
        assert_eq!(response.headers()[CONTENT_TYPE], content_type);
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let etag = response.headers()[ETAG].clone();
        assert!(!response.bytes().await.unwrap().is_empty());
        let again = server
            .client
            .get(server.url(&format!("/static/{file}")))
            .header(IF_NONE_MATCH, etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{file}");
    }
    let missing = server
        .client
        .get(server.url("/static/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn usage_json_reports_running_tasks_only() {
    let server = Server::start(config()).await;
    let running = server.fake.insert(full_request(), &[TaskState::Running]);
    let queued = server.fake.insert(full_request(), &[]);
    let get = |id: String| {
        let request = server
            .client
            .get(server.url(&format!("/web/task/{id}/usage")));
        async move { request.send().await.unwrap() }
    };
    let document: Value = get(running.to_string()).await.json().await.unwrap();
    assert_eq!(document["state"], "TASK_RUNNING");
    assert_eq!(document["usage"]["cpu_seconds"], 1.5);
    assert_eq!(document["usage"]["memory_limit_bytes"], 128 * 1024 * 1024);
    let document: Value = get(queued.to_string()).await.json().await.unwrap();
    assert_eq!(document["usage"], Value::Null);
    let missing = get("eremetic-task.nope".into()).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_forbid_inline_scripts_and_foreign_origins() {
    let server = Server::start(config()).await;
    let response = server.browse("/").await;
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>"), "inline script in the page");
    for url in urls(&page) {
        assert!(
            url.starts_with('/') && !url.starts_with("//"),
            "external URL {url}"
        );
    }
}
