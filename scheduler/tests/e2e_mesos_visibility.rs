//! What an operator sees of a cluster, end to end with the real `eremetic` binary and the
//! protocol-faithful fake master: `GET /cluster` (JSON and the UI page) with the leading master,
//! framework id, connection state and the agents seen in offers; the Mesos metrics (launches,
//! acknowledgement latency, reconnects); a master served over TLS, trusted through
//! `master_ca_file` and refused in words without it; and a cluster task's output on its page
//! and followed live, read through the agent's `/files/read` as the agent writes it (raw bytes
//! in the JSON string, whatever their encoding).

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode as AxumStatus;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use e2e_support::{shell_task, Service, Settings};
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};
use mesos_harness::tls::TestCa;
use mesos_proto::v1::{value, Attribute, TaskState as MesosState};
use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn setup() -> MasterSetup {
    MasterSetup {
        allocation_interval: Duration::from_millis(100),
        hostname: "master-1.example".to_owned(),
        ..MasterSetup::default()
    }
}

/// An agent on 127.0.0.1 (its files endpoint at `port`) with the attribute rack=a.
fn agent(port: u16) -> AgentSpec {
    let mut agent = AgentSpec::new("agent-1", "127.0.0.1");
    agent.port = port;
    agent.attributes = vec![Attribute {
        name: "rack".to_owned(),
        r#type: value::Type::Text as i32,
        text: Some(value::Text {
            value: "a".to_owned(),
        }),
        ..Default::default()
    }];
    agent
}

/// The files an agent serves, by path, as bytes.
type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// How much one `/files/read` answer holds at most here: small, so that answers end inside
/// multi-byte characters.
const AGENT_READ_MAX: usize = 5;

/// stout's JSON string writer: quotes, backslashes and control characters escaped, every other
/// byte written as it is (UTF-8 or not).
fn stout_json_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &byte in bytes {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0..=0x1f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
    out
}

/// `GET /files/read?path&offset&length` as a Mesos agent answers it (`offset=-1`: the size),
/// at most [`AGENT_READ_MAX`] bytes at a time; 404 for a file it does not have.
async fn files_read(
    State(files): State<Files>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AxumStatus> {
    let path = query.get("path").cloned().unwrap_or_default();
    let offset: i64 = query
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let length: usize = query
        .get("length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let files = files.lock().unwrap();
    let bytes = files.get(&path).ok_or(AxumStatus::NOT_FOUND)?;
    let (data, offset) = if offset < 0 {
        (&[][..], bytes.len())
    } else {
        let start = usize::try_from(offset).unwrap().min(bytes.len());
        let end = start
            .saturating_add(length.min(AGENT_READ_MAX))
            .min(bytes.len());
        (&bytes[start..end], start)
    };
    let mut body = b"{\"data\":".to_vec();
    body.extend(stout_json_string(data));
    body.extend(format!(",\"offset\":{offset}}}").as_bytes());
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap())
}

/// A real HTTP server playing an agent's files endpoint, on a port of its own.
async fn agent_files() -> (Files, u16) {
    let files: Files = Arc::default();
    let router = Router::new()
        .route("/files/read", get(files_read))
        .with_state(files.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (files, port)
}

async fn json(service: &Service, path: &str) -> Value {
    let response = service.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

async fn metrics(service: &Service) -> String {
    service.get("/metrics").await.text().await.unwrap()
}

/// The value of the series `name` (exact, labels included) in the exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let reached = tokio::time::timeout(WAIT, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{what} did not happen within {WAIT:?}");
}

#[tokio::test]
async fn cluster_shows_the_leader_framework_connection_and_agents_and_metrics_count_the_work() {
    let master = FakeMaster::start(setup()).await.unwrap();
    master.add_agent(agent(5051)).unwrap();
    let service =
        Service::start(Settings::new().set("master", format!("http://{}", master.endpoint())))
            .await;
    let framework_id = master.wait_subscribed(WAIT).await.unwrap();
    let id = service.submit(&shell_task("sleep 60")).await;
    let mesos_id = format!("{id}.0");
    master
        .wait_for_task_state(&mesos_id, MesosState::TaskStaging, WAIT)
        .await
        .unwrap();
    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    service.wait_state(&id, "TASK_RUNNING").await;

    let cluster = json(&service, "/cluster").await;
    assert_eq!(cluster["backend"], "mesos", "{cluster}");
    let mesos = &cluster["mesos"];
    assert_eq!(mesos["master"], format!("http://{}", master.endpoint()));
    assert_eq!(mesos["framework_id"], framework_id.as_str());
    assert_eq!(mesos["connection"]["state"], "connected");
    assert!(mesos["connection"]["since"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let leader = &mesos["leader"];
    assert_eq!(leader["address"], format!("http://{}", master.endpoint()));
    assert_eq!(leader["hostname"], "master-1.example");
    assert_eq!(leader["id"], master.master_id().as_str());
    assert_eq!(leader["source"], "subscribed");
    let agents = mesos["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{cluster}");
    assert_eq!(agents[0]["agent_id"], "agent-1");
    assert_eq!(agents[0]["hostname"], "127.0.0.1");
    assert_eq!(agents[0]["attributes"]["rack"], "a");
    assert_eq!(agents[0]["resources"]["cpus"], 4.0);
    assert_eq!(agents[0]["resources"]["ports"], "[31000-32000]");
    assert_eq!(agents[0]["runs"], 1);

    // The same on the UI's cluster page.
    let page = service
        .send(
            service
                .request(reqwest::Method::GET, "/cluster")
                .header(ACCEPT, "text/html"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"connection\">connected<"), "{page}");
    assert!(page.contains("data-agent-id=\"agent-1\""), "{page}");
    assert!(page.contains("rack: a"), "{page}");

    // One launch; the RUNNING update acknowledged after its commit, timed.
    let text = metrics(&service).await;
    assert_eq!(
        series(&text, "eremetic_mesos_launches_total"),
        Some(1.0),
        "{text}"
    );
    let acks = series(
        &text,
        "eremetic_mesos_acknowledgement_latency_seconds_count",
    );
    assert!(acks.is_some_and(|count| count >= 1.0), "{text}");
    assert_eq!(
        series(&text, "eremetic_mesos_reconnects_total"),
        Some(0.0),
        "{text}"
    );

    // The master drops the subscription: eremetic says so, subscribes again and counts it.
    master.disconnect_framework().unwrap();
    eventually("a reconnection", async || {
        let text = metrics(&service).await;
        series(&text, "eremetic_mesos_reconnects_total") == Some(1.0)
    })
    .await;
    let cluster = json(&service, "/cluster").await;
    let connection = &cluster["mesos"]["connection"];
    assert_eq!(connection["state"], "connected", "{cluster}");
    let error = connection["last_error"].as_str().unwrap();
    assert!(error.contains("subscription"), "{error}");
    assert!(connection["last_error_at"].is_string(), "{cluster}");
    assert_eq!(cluster["mesos"]["framework_id"], framework_id.as_str());
}

#[tokio::test]
async fn a_cluster_task_s_output_is_on_its_page_and_followed_live_through_the_agent() {
    let (files, port) = agent_files().await;
    let master = FakeMaster::start(setup()).await.unwrap();
    master.add_agent(agent(port)).unwrap();
    let service =
        Service::start(Settings::new().set("master", format!("http://{}", master.endpoint())))
            .await;
    let framework_id = master.wait_subscribed(WAIT).await.unwrap();
    let id = service.submit(&shell_task("echo")).await;
    let mesos_id = format!("{id}.0");
    master
        .wait_for_task_state(&mesos_id, MesosState::TaskStaging, WAIT)
        .await
        .unwrap();
    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    service.wait_state(&id, "TASK_RUNNING").await;
    let stdout = format!("/frameworks/{framework_id}/executors/{mesos_id}/runs/latest/stdout");
    let first = "café crème: première ligne\n";
    files
        .lock()
        .unwrap()
        .insert(stdout.clone(), first.as_bytes().to_vec());

    // What the task page's script reads: the output from its start, followed until the end.
    let follower = service
        .get(&format!("/api/v1/task/{id}/stdout?follow=true"))
        .await;
    assert_eq!(follower.status(), StatusCode::OK);
    let all = format!("{first}déjà vu ✓\n");
    files
        .lock()
        .unwrap()
        .insert(stdout.clone(), all.as_bytes().to_vec());
    master
        .update_task(&mesos_id, MesosState::TaskFinished, None, None)
        .unwrap();
    service.wait_state(&id, "TASK_FINISHED").await;
    let followed = tokio::time::timeout(WAIT, follower.text())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(followed, all);

    // The page of the ended task shows the output itself, read from the agent.
    let page = service
        .get(&format!("/web/task/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("déjà vu ✓"), "{page}");
    assert!(page.contains("café crème"), "{page}");
}

/// A master serving HTTPS with a certificate for 127.0.0.1 signed by `ca`.
async fn tls_master(ca: &TestCa) -> FakeMaster {
    let identity = ca.server_identity(&["127.0.0.1", "localhost"]).unwrap();
    let master = FakeMaster::start(MasterSetup {
        tls: Some(identity),
        ..setup()
    })
    .await
    .unwrap();
    master.add_agent(agent(5051)).unwrap();
    master
}

#[tokio::test]
async fn a_tls_master_is_trusted_through_master_ca_file_and_a_task_runs_there() {
    let ca = TestCa::generate("eremetic test CA").unwrap();
    let master = tls_master(&ca).await;
    assert!(master.scheduler_url().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let settings = Settings::new()
        .set("master", format!("https://{}", master.endpoint()))
        .set("master_ca_file", ca_file.display().to_string());
    let service = Service::start(settings).await;
    master.wait_subscribed(WAIT).await.unwrap();
    let id = service.submit(&shell_task("true")).await;
    let mesos_id = format!("{id}.0");
    master
        .wait_for_task_state(&mesos_id, MesosState::TaskStaging, WAIT)
        .await
        .unwrap();
    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    master
        .update_task(&mesos_id, MesosState::TaskFinished, None, None)
        .unwrap();
    service.wait_state(&id, "TASK_FINISHED").await;
    let cluster = json(&service, "/cluster").await;
    assert_eq!(
        cluster["mesos"]["leader"]["address"],
        format!("https://{}", master.endpoint())
    );
}

#[tokio::test]
async fn a_tls_master_signed_by_another_ca_is_refused_with_the_reason_in_words() {
    let ca = TestCa::generate("the masters' CA").unwrap();
    let master = tls_master(&ca).await;
    let other = TestCa::generate("some other CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other_file = dir.path().join("other.pem");
    std::fs::write(&other_file, other.cert_pem()).unwrap();
    let https = format!("https://{}", master.endpoint());
    for settings in [
        // The system's trust store does not know the test CA either.
        Settings::new().set("master", https.clone()),
        Settings::new()
            .set("master", https.clone())
            .set("master_ca_file", other_file.display().to_string()),
    ] {
        let service = Service::start(settings).await;
        let mut error = String::new();
        eventually("a refused subscription", async || {
            let cluster = json(&service, "/cluster").await;
            let connection = &cluster["mesos"]["connection"];
            error = connection["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            connection["state"] == "disconnected" && !error.is_empty()
        })
        .await;
        assert!(
            error.contains("the master's TLS certificate is not trusted"),
            "{error}"
        );
        assert!(
            service
                .log_tail()
                .contains("TLS certificate is not trusted"),
            "{}",
            service.log_tail()
        );
    }
    assert!(master.connected_frameworks().is_empty());
}
