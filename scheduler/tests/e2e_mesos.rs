//! End to end on a cluster: the real `eremetic` binary with `master` set runs a task submitted
//! over the REST API through the protocol-faithful fake master (subscription, offer, ACCEPT,
//! status updates played as the executor would send them), and the task document, its history
//! and exit code follow; its output is read and followed through the agent's `/files/read`
//! (the harness agent's endpoints serve the run's sandbox); a kill over the API reaches the
//! master; a credential file's principal is announced.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::time::Duration;

use e2e_support::{current_state, history, shell_task, Service, Settings};
use mesos_harness::cluster::agent_http::AgentEndpoints;
use mesos_harness::cluster::sandbox::AgentBook;
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

/// The harness agent's HTTP endpoints (`/files/*` as a Mesos 1.12 agent answers them) over
/// the work directory `dir`: its book records the runs whose sandboxes the files are read from.
async fn agent_files(dir: &std::path::Path) -> (AgentBook, AgentEndpoints) {
    let book = AgentBook::new(dir, "agent-1");
    let endpoints = AgentEndpoints::start(book.clone(), "127.0.0.1", "1.12.0")
        .await
        .unwrap();
    (book, endpoints)
}

fn settings(master: &FakeMaster) -> Settings {
    Settings::new().set("master", format!("http://{}", master.endpoint()))
}

#[tokio::test]
async fn a_task_submitted_over_rest_runs_on_the_cluster_and_its_document_follows_the_updates() {
    let work = tempfile::tempdir().unwrap();
    let (book, endpoints) = agent_files(work.path()).await;
    let port = endpoints.port();
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
    // The output is on the agent, in the run's sandbox: read through its files endpoint
    // (`/frameworks/<fw>/executors/<task>/runs/latest/stdout`), and followed.
    let framework = mesos_proto::v1::FrameworkInfo {
        id: Some(mesos_proto::v1::FrameworkId {
            value: framework_id.clone(),
        }),
        ..Default::default()
    };
    let sandbox = book.new_run(&framework, &mesos_id, "c1", None).unwrap();
    let stdout = sandbox.join("stdout");
    std::fs::write(&stdout, "first line\n").unwrap();
    let response = service.get(&format!("/api/v1/task/{id}/stdout")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "first line\n");
    let follower = service
        .get(&format!("/api/v1/task/{id}/stdout?follow=true"))
        .await;
    assert_eq!(follower.status(), StatusCode::OK);
    std::fs::write(&stdout, "first line\nsecond line\n").unwrap();
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
