//! End to end on a cluster: the real `eremetic` binary with `master` set runs a task submitted
//! over the REST API through the protocol-faithful fake master (subscription, offer, ACCEPT,
//! status updates played as the executor would send them), and the task document, its history
//! and exit code follow; its output is read and followed through the agent's `/files/read`
//! (a real HTTP server plays the agent's files endpoint); a kill over the API reaches the
//! master; a credential file's principal is announced.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode as AxumStatus;
use axum::routing::get;
use axum::{Json, Router};

use e2e_support::{current_state, history, shell_task, Service, Settings};
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};
use mesos_proto::v1::{task_status, TaskState as MesosState};
use reqwest::{Method, StatusCode};

const WAIT: Duration = Duration::from_secs(20);

async fn master() -> FakeMaster {
    master_with_agent(AgentSpec::new("agent-1", "agent-1.example")).await
}

async fn master_with_agent(agent: AgentSpec) -> FakeMaster {
    let setup = MasterSetup {
        allocation_interval: Duration::from_millis(100),
        ..MasterSetup::default()
    };
    let master = FakeMaster::start(setup).await.unwrap();
    master.add_agent(agent).unwrap();
    master
}

/// The files an agent serves, by path.
type Files = Arc<Mutex<HashMap<String, String>>>;

/// `GET /files/read?path&offset&length` as a Mesos agent answers it: the slice as JSON text,
/// 404 for a file it does not have.
async fn files_read(
    State(files): State<Files>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, AxumStatus> {
    let path = query.get("path").cloned().unwrap_or_default();
    let offset: usize = query
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let length: usize = query
        .get("length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let files = files.lock().unwrap();
    let text = files.get(&path).ok_or(AxumStatus::NOT_FOUND)?;
    let start = offset.min(text.len());
    let end = start.saturating_add(length).min(text.len());
    Ok(Json(
        serde_json::json!({"data": &text[start..end], "offset": offset}),
    ))
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

fn settings(master: &FakeMaster) -> Settings {
    Settings::new().set("master", format!("http://{}", master.endpoint()))
}

#[tokio::test]
async fn a_task_submitted_over_rest_runs_on_the_cluster_and_its_document_follows_the_updates() {
    let (files, port) = agent_files().await;
    let mut agent = AgentSpec::new("agent-1", "127.0.0.1");
    agent.port = port;
    let master = master_with_agent(agent).await;
    let service = Service::start(settings(&master)).await;
    let framework_id = master.wait_subscribed(WAIT).await.unwrap();
    let id = service.submit(&shell_task("exit 3")).await;
    let mesos_id = format!("{id}.0");
    master
        .wait_for_task_state(&mesos_id, MesosState::TaskStaging, WAIT)
        .await
        .unwrap();
    let task = service.wait_state(&id, "TASK_STAGING").await;
    assert_eq!(task["agent_id"], "agent-1");
    assert_eq!(task["hostname"], "127.0.0.1");
    assert_eq!(task["agent_port"], port);
    assert_eq!(task["framework_id"], framework_id.as_str());

    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    service.wait_state(&id, "TASK_RUNNING").await;
    // The output is on the agent: read through its files endpoint, and followed.
    let stdout = format!("/frameworks/{framework_id}/executors/{mesos_id}/runs/latest/stdout");
    files
        .lock()
        .unwrap()
        .insert(stdout.clone(), "first line\n".to_owned());
    let response = service.get(&format!("/api/v1/task/{id}/stdout")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "first line\n");
    let follower = service
        .get(&format!("/api/v1/task/{id}/stdout?follow=true"))
        .await;
    assert_eq!(follower.status(), StatusCode::OK);
    files
        .lock()
        .unwrap()
        .insert(stdout.clone(), "first line\nsecond line\n".to_owned());
    master
        .update_task(
            &mesos_id,
            MesosState::TaskFailed,
            Some(task_status::Reason::CommandExecutorFailed),
            Some("Command exited with status 3"),
        )
        .unwrap();
    let task = service.wait_state(&id, "TASK_FAILED").await;
    // The follower ends once the task has ended and the output is drained.
    let followed = tokio::time::timeout(WAIT, follower.text())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(followed, "first line\nsecond line\n");
    assert_eq!(
        history(&task),
        vec!["TASK_QUEUED", "TASK_STAGING", "TASK_RUNNING", "TASK_FAILED"]
    );
    assert_eq!(task["exit_code"], 3);
    assert_eq!(current_state(&task), "TASK_FAILED");
}

#[tokio::test]
async fn a_kill_over_the_api_reaches_the_master_and_a_credential_file_names_the_principal() {
    let master = master().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(&credentials, "eremetic-principal secret-value\n").unwrap();
    let service =
        Service::start(settings(&master).set("credential_file", credentials.display().to_string()))
            .await;
    master.wait_subscribed(WAIT).await.unwrap();
    let subscribe = master
        .calls()
        .into_iter()
        .find_map(|call| call.subscribe)
        .unwrap();
    assert_eq!(
        subscribe.framework_info.principal.as_deref(),
        Some("eremetic-principal")
    );
    assert!(subscribe.framework_info.failover_timeout.unwrap_or(0.0) > 0.0);

    let id = service.submit(&shell_task("sleep 600")).await;
    let mesos_id = format!("{id}.0");
    master
        .wait_for_task_state(&mesos_id, MesosState::TaskStaging, WAIT)
        .await
        .unwrap();
    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    service.wait_state(&id, "TASK_RUNNING").await;
    let response = service
        .send(service.request(Method::POST, &format!("/api/v1/task/{id}/kill")))
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let reached = tokio::time::timeout(WAIT, async {
        while !master.kills().iter().any(|kill| kill.task_id == mesos_id) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "the KILL did not reach the master");
    master
        .update_task(&mesos_id, MesosState::TaskKilled, None, None)
        .unwrap();
    let task = service.wait_state(&id, "TASK_KILLED").await;
    assert_eq!(task["failure_reason"], "killed on request");
}
