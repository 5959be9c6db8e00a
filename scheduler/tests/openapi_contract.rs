//! The OpenAPI description (`scheduler/openapi.yaml`) and the server agree:
//! - the server serves the file itself, without credentials;
//! - the description has exactly the routes of the router ([`ROUTES`]);
//! - every operation answers on a live server (real task ids), never 404/405;
//! - every documented status of every operation is reached by a named test ([`REACHED_BY`]),
//!   and every response those tests get conforms to the description (status, required
//!   headers, content type, JSON body schema).
//!
//! scripts/contract complements this with schemathesis' generated requests.

#[path = "e2e_support/mod.rs"]
mod e2e_support;
#[path = "openapi_contract/failing.rs"]
mod failing;
#[path = "openapi_contract/spec.rs"]
mod spec;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use e2e_support::{shell_task, with, Service, Settings, IMAGE};
use eremetic::http::{router, HttpConfig};
use eremetic::metrics::Metrics;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use spec::{Spec, SPEC_YAML};
use tower::ServiceExt;

/// The routes of `eremetic::http::router` (src/http/mod.rs), as (method, path) with the path
/// parameter named as in the description. Keep in step with the router: a route added there
/// must be added here and to the description, and [`every_operation_answers_on_a_live_server_as_documented`]
/// proves each of these answers.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/metrics"),
    ("GET", "/cluster"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/openapi.yaml"),
    ("GET", "/api/v1/version"),
    ("GET", "/api/v1/task"),
    ("POST", "/api/v1/task"),
    ("GET", "/api/v1/task/{taskId}"),
    ("DELETE", "/api/v1/task/{taskId}"),
    ("POST", "/api/v1/task/{taskId}/kill"),
    ("GET", "/api/v1/task/{taskId}/stdout"),
    ("GET", "/api/v1/task/{taskId}/stderr"),
    ("GET", "/version"),
    ("GET", "/task"),
    ("POST", "/task"),
    ("GET", "/task/{taskId}"),
    ("DELETE", "/task/{taskId}"),
    ("POST", "/task/{taskId}/kill"),
    ("GET", "/task/{taskId}/stdout"),
    ("GET", "/task/{taskId}/stderr"),
];

/// The web UI's own pages: HTML (and the page's JSON poll) for browsers, deliberately outside
/// the API description (src/http/ui).
const UI_ROUTES: &[(&str, &str)] = &[
    ("GET", "/web/task/{taskId}"),
    ("GET", "/web/task/{taskId}/usage"),
    ("GET", "/static/{file}"),
];

const LIVE: &str = "every_operation_answers_on_a_live_server_as_documented";
const NO_CREDENTIALS: &str = "secured_operations_answer_401_without_credentials";
const BROKEN: &str = "store_failures_answer_the_documented_500s";
const DESCRIPTION: &str = "served_description_is_the_file_and_needs_no_credentials";

type Reached = &'static [(u16, &'static str)];

const SUBMIT: Reached = &[
    (202, LIVE),
    (400, LIVE),
    (401, NO_CREDENTIALS),
    (403, LIVE),
    (413, LIVE),
    (422, LIVE),
    (500, BROKEN),
    (503, LIVE),
];
const LIST: Reached = &[
    (200, LIVE),
    (401, NO_CREDENTIALS),
    (422, LIVE),
    (500, BROKEN),
];
const GET: Reached = &[
    (200, LIVE),
    (401, NO_CREDENTIALS),
    (404, LIVE),
    (500, BROKEN),
];
const KILL_OR_DELETE: Reached = &[
    (202, LIVE),
    (401, NO_CREDENTIALS),
    (404, LIVE),
    (409, LIVE),
    (500, BROKEN),
];
const OUTPUT: Reached = &[
    (200, LIVE),
    (204, LIVE),
    (400, LIVE),
    (401, NO_CREDENTIALS),
    (404, LIVE),
    (500, BROKEN),
];
const OPEN: Reached = &[(200, LIVE)];

/// Every documented status of every operation and the test that reaches it.
const REACHED_BY: &[(&str, &str, Reached)] = &[
    (
        "GET",
        "/",
        &[
            (200, LIVE),
            (204, LIVE),
            (400, LIVE),
            (401, NO_CREDENTIALS),
            (500, BROKEN),
        ],
    ),
    ("GET", "/metrics", &[(200, LIVE), (401, NO_CREDENTIALS)]),
    ("GET", "/cluster", &[(200, LIVE), (401, NO_CREDENTIALS)]),
    (
        "GET",
        "/api/v1/events",
        &[(200, LIVE), (401, NO_CREDENTIALS)],
    ),
    ("GET", "/api/v1/openapi.yaml", &[(200, DESCRIPTION)]),
    ("GET", "/api/v1/version", OPEN),
    ("GET", "/version", OPEN),
    ("GET", "/api/v1/task", LIST),
    ("GET", "/task", LIST),
    ("POST", "/api/v1/task", SUBMIT),
    ("POST", "/task", SUBMIT),
    ("GET", "/api/v1/task/{taskId}", GET),
    ("GET", "/task/{taskId}", GET),
    ("DELETE", "/api/v1/task/{taskId}", KILL_OR_DELETE),
    ("DELETE", "/task/{taskId}", KILL_OR_DELETE),
    ("POST", "/api/v1/task/{taskId}/kill", KILL_OR_DELETE),
    ("POST", "/task/{taskId}/kill", KILL_OR_DELETE),
    ("GET", "/api/v1/task/{taskId}/stdout", OUTPUT),
    ("GET", "/api/v1/task/{taskId}/stderr", OUTPUT),
    ("GET", "/task/{taskId}/stdout", OUTPUT),
    ("GET", "/task/{taskId}/stderr", OUTPUT),
];

/// The statuses [`REACHED_BY`] attributes to `test`.
fn claimed_by(test: &str) -> BTreeSet<(String, String, u16)> {
    REACHED_BY
        .iter()
        .flat_map(|(method, path, reached)| {
            reached
                .iter()
                .filter(|(_, by)| *by == test)
                .map(|(status, _)| ((*method).to_owned(), (*path).to_owned(), *status))
        })
        .collect()
}

/// Fails with every claimed status that `reached` lacks.
fn assert_reaches_its_claims(test: &str, reached: &BTreeSet<(String, String, u16)>) {
    let missing: Vec<_> = claimed_by(test).difference(reached).cloned().collect();
    assert!(
        missing.is_empty(),
        "{test} is named in REACHED_BY for statuses it did not reach: {missing:?}"
    );
}

const TOKEN: &str = "contract-token";

fn unknown_id() -> &'static str {
    "eremetic-task.00000000-0000-4000-8000-000000000000"
}

/// Sends requests to a live service and checks every answer against the description.
struct Probe<'a> {
    service: &'a Service,
    spec: &'a Spec,
    reached: BTreeSet<(String, String, u16)>,
}

/// A response: status, headers, body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl Probe<'_> {
    /// Sends `method` to `template` with `{taskId}` replaced by `id`, adjusted by `adjust`,
    /// checks the answer against the description and records the status reached.
    async fn send(
        &mut self,
        method: &str,
        template: &str,
        id: &str,
        adjust: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Answer {
        let path = template.replace("{taskId}", id);
        let verb = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let response = self
            .service
            .send(adjust(self.service.request(verb, &path)))
            .await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let streaming = headers
            .get("content-type")
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        // An event stream never ends: only its head is checked.
        let body = if streaming {
            Vec::new()
        } else {
            response
                .bytes()
                .await
                .map(|bytes| bytes.to_vec())
                .unwrap_or_default()
        };
        if let Err(problem) = self
            .spec
            .check_response(method, template, status, &headers, &body)
        {
            panic!(
                "{problem}\nrequest: {method} {path}\nbody: {}\n{}",
                String::from_utf8_lossy(&body),
                self.service.log_tail()
            );
        }
        self.reached
            .insert((method.to_owned(), template.to_owned(), status));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn expect(
        &mut self,
        status: u16,
        method: &str,
        template: &str,
        id: &str,
        adjust: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Answer {
        let answer = self.send(method, template, id, adjust).await;
        assert_eq!(
            answer.status,
            status,
            "{method} {template} ({id}): {}",
            String::from_utf8_lossy(&answer.body)
        );
        answer
    }
}

fn body(value: Value) -> impl FnOnce(RequestBuilder) -> RequestBuilder {
    move |builder| builder.json(&value)
}

fn plain(builder: RequestBuilder) -> RequestBuilder {
    builder
}

/// The v0 form of a v1 request.
fn v0(request: &Value) -> Value {
    let mut task = request.as_object().cloned().unwrap_or_default();
    for (new, old) in [
        ("cpu", "task_cpus"),
        ("mem", "task_mem"),
        ("image", "docker_image"),
    ] {
        if let Some(value) = task.remove(new) {
            task.insert(old.to_owned(), value);
        }
    }
    Value::Object(task)
}

async fn service_with_token(queue_size: usize) -> Service {
    let settings = Settings::new()
        .set("cpus", "1")
        .set("queue_size", queue_size.to_string())
        .set("bearer_tokens", TOKEN)
        .set("http_credentials", "admin:s3cret");
    let mut service = Service::start(settings).await;
    service.use_authorization(format!("Bearer {TOKEN}"));
    service
}

#[test]
fn description_covers_exactly_the_routes_of_the_router() {
    let spec = Spec::load();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    let operations = spec.operations();
    for (method, path) in UI_ROUTES {
        let route = ((*method).to_owned(), (*path).to_owned());
        assert!(
            !operations.contains(&route) && !routes.contains(&route),
            "{method} {path} is a web UI page, not an API operation"
        );
    }
    let undocumented: Vec<_> = routes.difference(&operations).collect();
    let unrouted: Vec<_> = operations.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}; operations the router lacks: {unrouted:?}"
    );
}

#[test]
fn every_documented_status_names_a_test_that_reaches_it() {
    let spec = Spec::load();
    let mut table = BTreeSet::new();
    for (method, path, reached) in REACHED_BY {
        for (status, _) in reached.iter() {
            assert!(
                table.insert(((*method).to_owned(), (*path).to_owned(), *status)),
                "REACHED_BY lists {method} {path} {status} twice"
            );
        }
    }
    let documented = spec.documented_statuses();
    let unclaimed: Vec<_> = documented.difference(&table).collect();
    let undocumented: Vec<_> = table.difference(&documented).collect();
    assert!(
        unclaimed.is_empty() && undocumented.is_empty(),
        "documented statuses no test reaches: {unclaimed:?}; REACHED_BY statuses openapi.yaml lacks: {undocumented:?}"
    );
    let source = include_str!("openapi_contract.rs");
    for test in [LIVE, NO_CREDENTIALS, BROKEN, DESCRIPTION] {
        assert!(
            source.contains(&format!("async fn {test}()")),
            "REACHED_BY names {test}, which is not a test of this file"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_description_is_the_file_and_needs_no_credentials() {
    let service = service_with_token(4).await;
    let on_disk = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("read scheduler/openapi.yaml");
    assert_eq!(on_disk, SPEC_YAML);
    let response = service
        .send(service.raw(Method::GET, "/api/v1/openapi.yaml"))
        .await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the description");
    Spec::load()
        .check_response(
            "GET",
            "/api/v1/openapi.yaml",
            status,
            &headers,
            text.as_bytes(),
        )
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/yaml");
    assert!(
        text == on_disk,
        "the served description differs from scheduler/openapi.yaml"
    );
    let mut reached = BTreeSet::new();
    reached.insert(("GET".to_owned(), "/api/v1/openapi.yaml".to_owned(), status));
    assert_reaches_its_claims(DESCRIPTION, &reached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_operations_answer_401_without_credentials() {
    let service = service_with_token(4).await;
    let spec = Spec::load();
    let mut reached = BTreeSet::new();
    for (method, template) in spec.operations() {
        let path = template.replace("{taskId}", unknown_id());
        let verb = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = service.raw(verb, &path);
        if method == "POST" && !template.ends_with("/kill") {
            request = request.json(&shell_task("true"));
        }
        let response = service.send(request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let streaming = headers
            .get("content-type")
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        let body = if streaming {
            Vec::new()
        } else {
            response
                .bytes()
                .await
                .map(|bytes| bytes.to_vec())
                .unwrap_or_default()
        };
        if let Err(problem) = spec.check_response(&method, &template, status, &headers, &body) {
            panic!("{problem}: {}", String::from_utf8_lossy(&body));
        }
        if spec.is_secured(&method, &template) {
            assert_eq!(status, 401, "{method} {path} without credentials");
            let challenges: Vec<_> = headers.get_all("www-authenticate").iter().collect();
            assert_eq!(challenges.len(), 2, "{method} {path}: {challenges:?}");
        } else {
            assert_eq!(status, 200, "{method} {path} is open");
        }
        reached.insert((method, template, status));
    }
    let response = service
        .send(
            service
                .raw(Method::GET, "/api/v1/task")
                .header("Accept", "text/html"),
        )
        .await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let page = response.bytes().await.unwrap_or_default();
    spec.check_response("GET", "/api/v1/task", status, &headers, &page)
        .unwrap();
    assert_eq!(status, 401);
    assert!(headers["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    assert_reaches_its_claims(NO_CREDENTIALS, &reached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failures_answer_the_documented_500s() {
    let spec = Spec::load();
    let app = router(
        Arc::new(failing::BrokenStore::new()),
        Arc::new(Metrics::new()),
        HttpConfig {
            version: "0.0.0-test".to_owned(),
            ..HttpConfig::default()
        },
    );
    let mut reached = BTreeSet::new();
    for (method, template) in spec.operations() {
        if !spec.statuses(&method, &template).contains(&500) {
            continue;
        }
        let path = template.replace("{taskId}", unknown_id());
        let body = if method == "POST" && !template.ends_with("/kill") {
            let task = shell_task("true");
            let task = if template.starts_with("/api/v1") {
                task
            } else {
                v0(&task)
            };
            Body::from(task.to_string())
        } else {
            Body::empty()
        };
        let request = axum::http::Request::builder()
            .method(method.as_str())
            .uri(&path)
            .header("content-type", "application/json")
            // The index reads the store only to render its page for browsers.
            .header(
                "accept",
                if template == "/" {
                    "text/html"
                } else {
                    "application/json"
                },
            )
            .body(body)
            .expect("a valid request");
        let response = app
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("read the body");
        spec.check_response(&method, &template, status, &headers, &bytes)
            .unwrap();
        assert_eq!(
            status,
            500,
            "{method} {path}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains(failing::STORE_FAILURE) || template == "/",
            "{method} {path}: the 500 names the store error: {text}"
        );
        reached.insert((method, template, status));
    }
    assert_reaches_its_claims(BROKEN, &reached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_on_a_live_server_as_documented() {
    let service = service_with_token(1).await;
    let spec = Spec::load();
    let mut probe = Probe {
        service: &service,
        spec: &spec,
        reached: BTreeSet::new(),
    };
    // A finished task with output, then a running one holding the only CPU, so that later
    // tasks stay queued.
    let finished = service
        .submit(&shell_task("echo to-stdout; echo to-stderr >&2"))
        .await;
    service.wait_end(&finished, "TASK_FINISHED").await;
    let blocker = service
        .submit(&with(shell_task("sleep 300"), json!({"cpu": 1})))
        .await;
    service.wait_state(&blocker, "TASK_RUNNING").await;

    every_operation_answers(&mut probe, &finished, &blocker).await;
    submissions_reach_their_statuses(&mut probe).await;
    task_routes_reach_their_statuses(&mut probe, &finished, &blocker).await;
    documents_carry_every_documented_key(&mut probe, &finished).await;

    service.kill_task(&blocker).await;
    assert_reaches_its_claims(LIVE, &probe.reached);
}

/// Every operation of the description, with real task ids: never 404 or 405.
async fn every_operation_answers(probe: &mut Probe<'_>, finished: &str, blocker: &str) {
    for (method, template) in probe.spec.operations() {
        // Kill the ended task (409) and delete the running one (409): both leave them in place.
        let id = if method == "DELETE" {
            blocker
        } else {
            finished
        };
        let answer = probe.send(&method, &template, id, plain).await;
        assert!(
            answer.status != 404 && answer.status != 405,
            "{method} {template} with task {id} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
}

async fn submissions_reach_their_statuses(probe: &mut Probe<'_>) {
    for collection in ["/api/v1/task", "/task"] {
        let convert = |task: Value| {
            if collection == "/task" {
                v0(&task)
            } else {
                task
            }
        };
        let queued = probe
            .expect(
                202,
                "POST",
                collection,
                "",
                body(convert(shell_task("true"))),
            )
            .await;
        let id = queued.json().as_str().expect("the id").to_owned();
        let location = queued.headers["location"].to_str().expect("ASCII location");
        assert!(
            location.ends_with(&format!("{collection}/{id}")),
            "{location}"
        );
        // The queue (size 1) now holds it.
        let full = probe
            .expect(
                503,
                "POST",
                collection,
                "",
                body(convert(shell_task("true"))),
            )
            .await;
        assert_eq!(full.headers["retry-after"], "1");
        probe
            .expect(400, "POST", collection, "", body(json!({})))
            .await;
        probe
            .expect(400, "POST", collection, "", |builder| {
                builder
                    .header("Idempotency-Key", "")
                    .json(&shell_task("true"))
            })
            .await;
        let privileged = with(shell_task("true"), json!({"privileged": true}));
        probe
            .expect(403, "POST", collection, "", body(convert(privileged)))
            .await;
        let huge = "x".repeat(1_100_000);
        probe
            .expect(
                413,
                "POST",
                collection,
                "",
                body(convert(with(shell_task(&huge), json!({})))),
            )
            .await;
        let greedy = with(shell_task("true"), json!({"cpu": 64}));
        probe
            .expect(422, "POST", collection, "", body(convert(greedy)))
            .await;
        // Kill and delete the queued task: the queue is free for the next round.
        let kill = format!("{collection}/{{taskId}}/kill");
        probe.expect(202, "POST", &kill, &id, plain).await;
        let item = format!("{collection}/{{taskId}}");
        probe.expect(202, "DELETE", &item, &id, plain).await;
    }
    // Reusing an Idempotency-Key for another request.
    let keyed = |command: &str| {
        let task = shell_task(command);
        move |builder: RequestBuilder| {
            builder
                .header("Idempotency-Key", "contract-key")
                .json(&task)
        }
    };
    let first = probe
        .expect(202, "POST", "/api/v1/task", "", keyed("true"))
        .await;
    let id = first.json().as_str().expect("the id").to_owned();
    let again = probe
        .expect(202, "POST", "/api/v1/task", "", keyed("true"))
        .await;
    assert_eq!(
        again.json(),
        first.json(),
        "the same request gets the same task"
    );
    // Only with the queue free again: while it is full, the server answers any request under
    // a known key with the earlier task, without comparing the requests (reported).
    probe
        .expect(202, "POST", "/api/v1/task/{taskId}/kill", &id, plain)
        .await;
    let conflict = probe
        .expect(422, "POST", "/api/v1/task", "", keyed("false"))
        .await;
    assert!(conflict.json()["error"].is_string());
}

async fn task_routes_reach_their_statuses(probe: &mut Probe<'_>, finished: &str, blocker: &str) {
    for prefix in ["/api/v1", ""] {
        let collection = format!("{prefix}/task");
        let item = format!("{prefix}/task/{{taskId}}");
        let kill = format!("{prefix}/task/{{taskId}}/kill");
        probe
            .expect(200, "GET", &collection, "", |b| {
                b.query(&[("state", "queued,active,terminated")])
            })
            .await;
        probe
            .expect(422, "GET", &collection, "", |b| {
                b.query(&[("state", "finished")])
            })
            .await;
        probe
            .expect(422, "GET", &collection, "", |b| b.query(&[("limit", "1")]))
            .await;
        probe.expect(200, "GET", &item, finished, plain).await;
        probe.expect(404, "GET", &item, unknown_id(), plain).await;
        probe
            .expect(404, "GET", &item, "not%20an%20id", plain)
            .await;
        probe.expect(404, "POST", &kill, unknown_id(), plain).await;
        probe.expect(409, "POST", &kill, finished, plain).await;
        probe
            .expect(404, "DELETE", &item, unknown_id(), plain)
            .await;
        probe.expect(409, "DELETE", &item, blocker, plain).await;
        let queued = probe
            .expect(202, "POST", "/api/v1/task", "", body(shell_task("true")))
            .await
            .json()
            .as_str()
            .expect("the id")
            .to_owned();
        for (stream, text) in [("stdout", "to-stdout\n"), ("stderr", "to-stderr\n")] {
            let output = format!("{prefix}/task/{{taskId}}/{stream}");
            let answer = probe.expect(200, "GET", &output, finished, plain).await;
            assert_eq!(String::from_utf8_lossy(&answer.body), text);
            probe.expect(204, "GET", &output, &queued, plain).await;
            probe
                .expect(400, "GET", &output, finished, |b| {
                    b.query(&[("follow", "maybe")])
                })
                .await;
            probe.expect(404, "GET", &output, unknown_id(), plain).await;
        }
        probe.expect(202, "POST", &kill, &queued, plain).await;
    }
    probe.expect(200, "GET", "/api/v1/version", "", plain).await;
    probe.expect(200, "GET", "/version", "", plain).await;
    probe.expect(200, "GET", "/metrics", "", plain).await;
    // In local mode too, never a 404: the local engine described.
    let cluster = probe.expect(200, "GET", "/cluster", "", plain).await.json();
    assert_eq!(cluster["backend"], "local", "{cluster}");
    assert!(cluster["local"]["instance_id"].is_string(), "{cluster}");
    probe.expect(204, "GET", "/", "", plain).await;
    probe.expect(200, "GET", "/api/v1/events", "", plain).await;
    browsers_get_the_documented_pages(probe, finished).await;
}

/// The routes that answer HTML to clients whose `Accept` names `text/html`.
async fn browsers_get_the_documented_pages(probe: &mut Probe<'_>, finished: &str) {
    let html = |builder: RequestBuilder| builder.header("Accept", "text/html");
    let page = probe.expect(200, "GET", "/", "", html).await;
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    probe
        .expect(400, "GET", "/", "", |b| {
            html(b.query(&[("state", "finished")]))
        })
        .await;
    let page = probe
        .expect(200, "GET", "/task/{taskId}", finished, html)
        .await;
    assert!(String::from_utf8_lossy(&page.body).contains(finished));
    let missing = probe
        .expect(404, "GET", "/task/{taskId}", unknown_id(), html)
        .await;
    assert!(missing.headers["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
}

/// Task documents have exactly the documented keys (the schemas forbid others and require all).
async fn documents_carry_every_documented_key(probe: &mut Probe<'_>, finished: &str) {
    for (template, schema) in [
        ("/api/v1/task/{taskId}", "TaskV1"),
        ("/task/{taskId}", "TaskV0"),
    ] {
        let document = probe
            .expect(200, "GET", template, finished, plain)
            .await
            .json();
        let keys: BTreeSet<&str> = document
            .as_object()
            .expect("a task document is an object")
            .keys()
            .map(String::as_str)
            .collect();
        let documented: BTreeSet<&str> = probe.spec.schema(schema)["properties"]
            .as_object()
            .expect("the schema has properties")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, documented, "{schema} keys");
        assert_eq!(document["image"], IMAGE);
    }
}
