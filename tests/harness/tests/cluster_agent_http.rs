//! An agent's HTTP endpoints over real HTTP, answered from its book: the
//! `/state` subset, `/files/read`, `/files/download` and `/files/browse`
//! with the agent's JSON and error codes, and the `runs/latest`
//! attachments of the versions that have them.

mod scheduler_client;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use mesos_harness::cluster::agent_http::AgentEndpoints;
use mesos_harness::cluster::sandbox::AgentBook;
use mesos_harness::cluster::simulated::{SimulatedAgent, SimulatedAgentConfig};
use mesos_harness::cluster::RunningAgent;
use mesos_harness::master::AgentSpec;
use mesos_proto::v1::{FrameworkId, FrameworkInfo, TaskState};
use scheduler_client::*;
use serde_json::Value;

struct WorkDir(PathBuf);

impl WorkDir {
    fn new(name: &str) -> Self {
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).expect("random bytes");
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("agent-http-{name}-{suffix}"));
        std::fs::create_dir_all(&path).expect("the work directory is created");
        WorkDir(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn get(endpoints: &AgentEndpoints, path: &str) -> (StatusCode, hyper::HeaderMap, Vec<u8>) {
    let response = request(endpoints.endpoint(), Method::GET, path, &[], Vec::new()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body arrives")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

async fn get_json(endpoints: &AgentEndpoints, path: &str) -> Value {
    let (status, headers, body) = get(endpoints, path).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(headers["Content-Type"], "application/json");
    serde_json::from_slice(&body).expect("JSON")
}

fn framework() -> FrameworkInfo {
    FrameworkInfo {
        id: Some(FrameworkId {
            value: "fw-1".to_owned(),
        }),
        ..framework_info()
    }
}

/// A book with one run of executor `e1` whose stdout holds `hello\n`.
fn book_with_run(work: &WorkDir) -> (AgentBook, PathBuf) {
    let book = AgentBook::new(&work.0, AGENT);
    let sandbox = book
        .new_run(&framework(), "e1", "c1", None)
        .expect("the sandbox is created");
    std::fs::write(sandbox.join("stdout"), "hello\n").expect("stdout is written");
    (book, sandbox)
}

fn encode(path: &Path) -> String {
    path.display().to_string().replace('/', "%2F")
}

#[tokio::test]
async fn state_shows_running_and_completed_executors_with_their_sandboxes_and_offers_point_here() {
    let work = WorkDir::new("state");
    let book = AgentBook::new(&work.0, AGENT);
    let endpoints = AgentEndpoints::start(book.clone(), "127.0.0.1", "1.12.0")
        .await
        .unwrap();
    let master = start().await;
    let spec = AgentSpec {
        port: endpoints.port(),
        ..AgentSpec::new(AGENT, "127.0.0.1")
    };
    master.add_agent(spec).unwrap();
    let mut config = SimulatedAgentConfig::new(book.clone());
    config.run_time = std::time::Duration::from_millis(300);
    let _agent = RunningAgent::start(
        master.attach_agent(AGENT).unwrap(),
        Arc::new(SimulatedAgent::new(config)),
    );

    let (mut subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let offers = subscription.offers().await;
    let url = offers[0].url.clone().unwrap();
    assert_eq!(url.address.port, i32::from(endpoints.port()));
    let call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info("t1", AGENT, 1.0, 128.0)],
    );
    post_call(&master, &subscription.stream_id, &call).await;
    let mut last = None;
    while last != Some(TaskState::TaskRunning) {
        let status = subscription.update().await;
        let ack = acknowledge_call(&framework_id, "t1", AGENT, status.uuid.clone().unwrap());
        post_call(&master, &subscription.stream_id, &ack).await;
        last = Some(status.state());
    }

    let state = get_json(&endpoints, "/slave(1)/state").await;
    assert_eq!(state["id"], AGENT);
    assert_eq!(state["hostname"], "127.0.0.1");
    assert_eq!(state["pid"], format!("slave(1)@{}", endpoints.endpoint()));
    let executor = &state["frameworks"][0]["executors"][0];
    let sandbox = book.latest_run(&framework_id, "t1").unwrap();
    assert_eq!(state["frameworks"][0]["id"], framework_id.as_str());
    assert_eq!(executor["id"], "t1");
    assert_eq!(executor["source"], "t1");
    assert_eq!(
        executor["name"],
        "Command Executor (Task: t1) (Command: sh -c 'true')"
    );
    assert_eq!(executor["directory"], sandbox.display().to_string());
    assert_eq!(
        executor["container"],
        book.executors()[0].container_id.as_str()
    );
    assert_eq!(executor["tasks"][0]["id"], "t1");
    assert_eq!(executor["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(state["completed_frameworks"], serde_json::json!([]));

    let finished = subscription.update().await;
    assert_eq!(finished.state(), TaskState::TaskFinished);
    let ack = acknowledge_call(&framework_id, "t1", AGENT, finished.uuid.unwrap());
    post_call(&master, &subscription.stream_id, &ack).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let state = loop {
        let state = get_json(&endpoints, "/state").await;
        if state["frameworks"] == serde_json::json!([]) {
            break state;
        }
        assert!(tokio::time::Instant::now() < deadline, "{state}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let completed = &state["completed_frameworks"][0]["completed_executors"][0];
    assert_eq!(completed["directory"], sandbox.display().to_string());
    assert_eq!(completed["tasks"], serde_json::json!([]));
    assert_eq!(completed["completed_tasks"][0]["state"], "TASK_FINISHED");
}

#[tokio::test]
async fn files_read_gives_the_size_at_offset_minus_one_and_data_from_an_offset() {
    let work = WorkDir::new("read");
    let (book, sandbox) = book_with_run(&work);
    let endpoints = AgentEndpoints::start(book, "127.0.0.1", "1.12.0")
        .await
        .unwrap();
    let path = encode(&sandbox.join("stdout"));

    let size = get_json(&endpoints, &format!("/files/read?path={path}&offset=-1")).await;
    assert_eq!(size, serde_json::json!({"data": "", "offset": 6}));
    let size = get_json(&endpoints, &format!("/files/read?path={path}")).await;
    assert_eq!(size, serde_json::json!({"data": "", "offset": 6}));
    let part = get_json(
        &endpoints,
        &format!("/files/read?path={path}&offset=1&length=3"),
    )
    .await;
    assert_eq!(part, serde_json::json!({"data": "ell", "offset": 1}));
    let rest = get_json(
        &endpoints,
        &format!("/files/read?path={path}&offset=2&length=-1"),
    )
    .await;
    assert_eq!(rest, serde_json::json!({"data": "llo\n", "offset": 2}));
    let beyond = get_json(&endpoints, &format!("/files/read?path={path}&offset=100")).await;
    assert_eq!(beyond, serde_json::json!({"data": "", "offset": 100}));

    let (status, headers, body) = get(
        &endpoints,
        &format!("/files/read?path={path}&offset=0&jsonp=cb"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["Content-Type"], "text/javascript");
    assert_eq!(body, br#"cb({"data":"hello\n","offset":0});"#);
}

#[tokio::test]
async fn files_errors_have_the_agents_codes_and_texts() {
    let work = WorkDir::new("errors");
    let (book, sandbox) = book_with_run(&work);
    std::fs::write(work.0.join("secret"), "s").unwrap();
    let endpoints = AgentEndpoints::start(book, "127.0.0.1", "1.12.0")
        .await
        .unwrap();
    let stdout = encode(&sandbox.join("stdout"));
    let cases = [
        (
            "/files/read".to_owned(),
            StatusCode::BAD_REQUEST,
            "Expecting 'path=value' in query.\n".to_owned(),
        ),
        (
            format!("/files/read?path={stdout}&offset=abc"),
            StatusCode::BAD_REQUEST,
            "Failed to parse offset: Failed to convert 'abc' to number.\n".to_owned(),
        ),
        (
            format!("/files/read?path={stdout}&length=-2"),
            StatusCode::BAD_REQUEST,
            "Negative length provided: -2.\n".to_owned(),
        ),
        (
            format!("/files/read?path={}", encode(&sandbox)),
            StatusCode::BAD_REQUEST,
            "Cannot read a directory.\n".to_owned(),
        ),
        (
            format!("/files/download?path={}", encode(&sandbox)),
            StatusCode::BAD_REQUEST,
            "Cannot download a directory.\n".to_owned(),
        ),
        (
            format!("/files/read?path={}", encode(&sandbox.join("missing"))),
            StatusCode::NOT_FOUND,
            String::new(),
        ),
        (
            format!("/files/read?path={}", encode(&work.0.join("secret"))),
            StatusCode::NOT_FOUND,
            String::new(),
        ),
        (
            format!("/files/browse?path={}", encode(Path::new("/etc"))),
            StatusCode::NOT_FOUND,
            String::new(),
        ),
    ];
    for (path, expected_status, expected_body) in cases {
        let (status, _, body) = get(&endpoints, &path).await;
        assert_eq!(status, expected_status, "{path}");
        assert_eq!(String::from_utf8_lossy(&body), expected_body, "{path}");
    }

    // A path climbing out of the sandbox to a file that exists is refused.
    let escape = format!(
        "{}%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fsecret",
        encode(&sandbox)
    );
    let (status, _, body) = get(&endpoints, &format!("/files/read?path={escape}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("is inaccessible"));
}

#[tokio::test]
async fn download_sends_the_file_and_browse_lists_the_sandbox() {
    let work = WorkDir::new("download");
    let (book, sandbox) = book_with_run(&work);
    let endpoints = AgentEndpoints::start(book, "127.0.0.1", "1.12.0")
        .await
        .unwrap();

    let (status, headers, body) = get(
        &endpoints,
        &format!("/files/download?path={}", encode(&sandbox.join("stdout"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"hello\n");
    assert_eq!(headers["Content-Type"], "application/octet-stream");
    assert_eq!(
        headers["Content-Disposition"],
        "attachment; filename=stdout"
    );

    let listing = get_json(
        &endpoints,
        &format!("/files/browse?path={}", encode(&sandbox)),
    )
    .await;
    let entry = &listing[0];
    assert_eq!(entry["path"], sandbox.join("stdout").display().to_string());
    assert_eq!(entry["size"], 6);
    assert_eq!(entry["nlink"], 1);
    assert!(
        entry["mode"].as_str().unwrap().starts_with("-rw"),
        "{entry}"
    );
    assert!(entry["mtime"].as_i64().unwrap() > 0);
    assert!(entry["uid"].is_string() && entry["gid"].is_string());
}

#[tokio::test]
async fn runs_latest_is_attached_from_1_4_and_its_virtual_path_from_1_5() {
    let work = WorkDir::new("latest");
    let (book, _) = book_with_run(&work);
    let latest = book.runs_dir("fw-1", "e1").join("latest").join("stdout");
    let real_latest = format!("/files/read?path={}&offset=0", encode(&latest));
    let virtual_latest =
        "/files/read?path=/frameworks/fw-1/executors/e1/runs/latest/stdout&offset=0";
    for (version, real_attached, virtual_attached) in [
        ("1.0.0", false, false),
        ("1.4.0", true, false),
        ("1.5.0", true, true),
        ("1.12.0", true, true),
    ] {
        let endpoints = AgentEndpoints::start(book.clone(), "127.0.0.1", version)
            .await
            .unwrap();
        for (path, attached) in [
            (real_latest.as_str(), real_attached),
            (virtual_latest, virtual_attached),
        ] {
            let (status, _, body) = get(&endpoints, path).await;
            if attached {
                assert_eq!(status, StatusCode::OK, "{version} {path}");
                let read: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(read["data"], "hello\n");
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "{version} {path}");
            }
        }
        endpoints.stop().await;
    }

    // A new run moves latest.
    let second = book.new_run(&framework(), "e1", "c2", None).unwrap();
    std::fs::write(second.join("stdout"), "second\n").unwrap();
    let endpoints = AgentEndpoints::start(book, "127.0.0.1", "1.12.0")
        .await
        .unwrap();
    let read = get_json(&endpoints, virtual_latest).await;
    assert_eq!(read["data"], "second\n");
}

#[tokio::test]
async fn an_agent_version_that_is_not_a_version_is_refused() {
    let work = WorkDir::new("version");
    let error = AgentEndpoints::start(AgentBook::new(&work.0, AGENT), "127.0.0.1", "latest")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("agent version"), "{error}");
}

#[tokio::test]
async fn json_of_a_kilobyte_or_more_is_gzipped_only_for_clients_accepting_gzip() {
    let work = WorkDir::new("gzip");
    let (book, sandbox) = book_with_run(&work);
    let big = "x".repeat(2000);
    std::fs::write(sandbox.join("stdout"), &big).unwrap();
    let endpoints = AgentEndpoints::start(book, "127.0.0.1", "1.12.0")
        .await
        .unwrap();
    let stdout = encode(&sandbox.join("stdout"));
    let fetch = |path: String, gzip: bool| {
        let headers: &'static [(&str, &str)] = if gzip {
            &[("Accept-Encoding", "gzip, deflate")]
        } else {
            &[]
        };
        let address = endpoints.endpoint();
        async move {
            let response = request(address, Method::GET, &path, headers, Vec::new()).await;
            let encoding = response.headers().get("Content-Encoding").cloned();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (encoding, body.to_vec())
        }
    };

    let read = format!("/files/read?path={stdout}&offset=0");
    let (encoding, body) = fetch(read.clone(), true).await;
    assert_eq!(encoding.unwrap(), "gzip");
    let mut json = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(body.as_slice()),
        &mut json,
    )
    .unwrap();
    let document: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(document["data"], big.as_str());

    let (encoding, body) = fetch(read, false).await;
    assert!(encoding.is_none());
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["data"],
        big.as_str()
    );
    // Small bodies and downloads are never compressed.
    let (encoding, _) = fetch(format!("/files/read?path={stdout}&offset=-1"), true).await;
    assert!(encoding.is_none());
    let (encoding, body) = fetch(format!("/files/download?path={stdout}"), true).await;
    assert!(encoding.is_none());
    assert_eq!(body, big.as_bytes());
}
