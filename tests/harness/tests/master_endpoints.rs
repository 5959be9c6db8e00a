//! The fake master's `/master/state` (subset) and `/master/redirect`, and
//! redirects naming the leader by host name, over real HTTP.

mod scheduler_client;

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use mesos_harness::master::{FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::event;
use scheduler_client::*;
use serde_json::Value;

struct Got {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

async fn get(master: &FakeMaster, path: &str) -> Got {
    let response = request(master.endpoint(), Method::GET, path, &[], Vec::new()).await;
    let status = response.status();
    let location = response
        .headers()
        .get("Location")
        .map(|v| v.to_str().expect("ASCII Location").to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a complete body")
        .to_bytes();
    Got {
        status,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn start_named(hostname: &str) -> FakeMaster {
    let setup = MasterSetup {
        hostname: hostname.to_owned(),
        ..fast_setup()
    };
    FakeMaster::start(setup)
        .await
        .expect("the fake master starts")
}

#[tokio::test]
async fn state_lists_leader_agents_and_frameworks_with_their_tasks() {
    let master = start_with_agent().await;
    master
        .add_agent(mesos_harness::master::AgentSpec::new(
            "agent-2",
            "127.0.0.2",
        ))
        .unwrap();
    let (mut subscription, framework_id) =
        launch_one_as(&master, partition_aware_framework_info(), "t1").await;
    master.mark_unreachable("agent-2").unwrap();
    subscription.event_of(event::Type::Failure).await;

    let got = get(&master, "/master/state").await;
    assert_eq!(got.status, StatusCode::OK);
    let state: Value = serde_json::from_str(&got.body).unwrap();
    let pid = format!("master@{}", master.endpoint());
    assert_eq!(state["id"], master.master_id());
    assert_eq!(state["leader"], pid);
    assert_eq!(state["leader_info"]["pid"], pid);
    assert_eq!(state["leader_info"]["port"], master.endpoint().port());
    assert_eq!(state["activated_slaves"], 1.0);
    assert_eq!(state["unreachable_slaves"], 1.0);

    let slaves = state["slaves"].as_array().unwrap();
    assert_eq!(slaves.len(), 1);
    assert_eq!(slaves[0]["id"], AGENT);
    assert_eq!(slaves[0]["resources"]["cpus"], 4.0);
    assert_eq!(slaves[0]["resources"]["ports"], "[31000-32000]");
    assert_eq!(slaves[0]["used_resources"]["cpus"], 1.0);

    let framework = &state["frameworks"][0];
    assert_eq!(framework["id"], framework_id);
    assert_eq!(framework["connected"], true);
    assert_eq!(framework["capabilities"][0], "PARTITION_AWARE");
    let task = &framework["tasks"][0];
    assert_eq!(task["id"], "t1");
    assert_eq!(task["state"], "TASK_STAGING");
    assert_eq!(task["slave_id"], AGENT);
    assert_eq!(task["resources"]["mem"], 128.0);
    assert_eq!(framework["unreachable_tasks"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn state_shows_tasks_of_an_unreachable_agent_as_unreachable_tasks() {
    let master = start_with_agent().await;
    let (mut subscription, _) =
        launch_one_as(&master, partition_aware_framework_info(), "t1").await;
    master.mark_unreachable(AGENT).unwrap();
    subscription.event_of(event::Type::Failure).await;
    let state: Value = serde_json::from_str(&get(&master, "/state").await.body).unwrap();
    let framework = &state["frameworks"][0];
    assert_eq!(framework["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(framework["unreachable_tasks"][0]["id"], "t1");
    assert_eq!(
        framework["unreachable_tasks"][0]["state"],
        "TASK_UNREACHABLE"
    );
    assert_eq!(state["slaves"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn redirect_of_the_leader_names_itself_by_host_name() {
    let master = start_named("master1.example").await;
    let got = get(&master, "/master/redirect").await;
    assert_eq!(got.status, StatusCode::TEMPORARY_REDIRECT);
    let expected = format!("//master1.example:{}", master.endpoint().port());
    assert_eq!(got.location.as_deref(), Some(expected.as_str()));
    let got = get(&master, "/redirect").await;
    assert_eq!(got.location.as_deref(), Some(expected.as_str()));
    // Below /redirect: 404, against redirect loops.
    assert_eq!(
        get(&master, "/master/redirect/x").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn follower_redirects_state_and_scheduler_calls_to_the_leader_host_name() {
    let master = start_named("master2.example").await;
    let leader = "127.0.0.1:5050".parse().unwrap();
    master.set_leader_named("master1.example", leader);
    let got = get(&master, "/master/redirect").await;
    assert_eq!(got.location.as_deref(), Some("//master1.example:5050"));
    let got = get(&master, "/master/state").await;
    assert_eq!(got.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        got.location.as_deref(),
        Some("//master1.example:5050/master/state")
    );
    let answer = post_raw(&master, &[("Content-Type", "application/json")], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        answer.headers.get("Location").unwrap(),
        "//master1.example:5050/api/v1/scheduler"
    );
}

#[tokio::test]
async fn without_a_leader_redirect_and_state_get_503() {
    let master = start().await;
    master.set_leader(None);
    for path in ["/master/redirect", "/master/state"] {
        let got = get(&master, path).await;
        assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(got.body, "No leader elected");
    }
}
