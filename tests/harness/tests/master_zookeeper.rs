//! Fake masters contending for leadership in a real ZooKeeper server, as
//! Mesos masters do: ephemeral sequential `json.info_` nodes with the
//! `MasterInfo` JSON, the lowest sequence leads, the others redirect to it,
//! and stopping the leader hands the lead to the next one.

mod scheduler_client;

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use mesos_harness::master::{FakeMaster, MasterSetup, ZooKeeperElection};
use mesos_harness::zk::ZooKeeperServer;
use scheduler_client::*;
use serde_json::Value;
use zookeeper_client::Client;

const WAIT: Duration = Duration::from_secs(30);

async fn start_member(zookeeper: &ZooKeeperServer, hostname: &str) -> FakeMaster {
    let setup = MasterSetup {
        hostname: hostname.to_owned(),
        zookeeper: Some(ZooKeeperElection::new(
            zookeeper.connect_string(),
            "/mesos/prod",
        )),
        ..fast_setup()
    };
    FakeMaster::start(setup)
        .await
        .expect("the fake master starts and joins the election")
}

async fn location(master: &FakeMaster, path: &str) -> (StatusCode, Option<String>) {
    let response = request(master.endpoint(), Method::GET, path, &[], Vec::new()).await;
    let status = response.status();
    let location = response
        .headers()
        .get("Location")
        .map(|v| v.to_str().expect("ASCII Location").to_owned());
    let _ = response.into_body().collect().await;
    (status, location)
}

#[tokio::test]
async fn masters_register_json_info_nodes_and_the_lowest_sequence_leads() {
    let zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    let first = start_member(&zookeeper, "master1.example").await;
    let second = start_member(&zookeeper, "master2.example").await;

    let client = Client::connect(&zookeeper.connect_string()).await.unwrap();
    let mut children = client.list_children("/mesos/prod").await.unwrap();
    children.sort();
    let first_node = first.zookeeper_node().unwrap();
    let second_node = second.zookeeper_node().unwrap();
    assert_eq!(children, vec![first_node.clone(), second_node.clone()]);
    assert!(first_node.starts_with("json.info_") && first_node.len() == 20);
    assert!(first_node < second_node);

    // The node holds MasterInfo as the Mesos contender writes it.
    let (data, stat) = client
        .get_data(&format!("/mesos/prod/{first_node}"))
        .await
        .unwrap();
    assert_ne!(stat.ephemeral_owner, 0, "the node is ephemeral");
    let info: Value = serde_json::from_slice(&data).unwrap();
    let port = first.endpoint().port();
    assert_eq!(info["id"], first.master_id());
    assert_eq!(info["hostname"], "master1.example");
    assert_eq!(info["port"], port);
    assert_eq!(info["ip"], 0x0100_007f, "127.0.0.1 in network byte order");
    assert_eq!(info["pid"], format!("master@127.0.0.1:{port}"));
    assert_eq!(info["version"], "1.12.0");
    assert_eq!(info["address"]["hostname"], "master1.example");
    assert_eq!(info["address"]["ip"], "127.0.0.1");
    assert_eq!(info["address"]["port"], port);
    assert_eq!(info["capabilities"][0]["type"], "AGENT_UPDATE");

    assert!(first.is_leading());
    assert!(!second.is_leading());
    let (status, location) = location(&second, "/master/redirect").await;
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location, Some(format!("//master1.example:{port}")));
}

#[tokio::test]
async fn stopping_the_leader_makes_the_next_member_lead_after_a_failover() {
    let zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    let first = start_member(&zookeeper, "master1.example").await;
    let second = start_member(&zookeeper, "master2.example").await;
    // The replicated registry knows this agent: the new leader recovers it.
    second
        .add_agent(mesos_harness::master::AgentSpec::new(
            "agent-1",
            "127.0.0.1",
        ))
        .unwrap();
    let first_node = first.zookeeper_node().unwrap();

    first.stop().await;
    second
        .wait_leading(WAIT)
        .await
        .expect("the second master leads");
    let client = Client::connect(&zookeeper.connect_string()).await.unwrap();
    let children = client.list_children("/mesos/prod").await.unwrap();
    assert!(!children.contains(&first_node), "{children:?}");
    let (status, location) = location(&second, "/master/redirect").await;
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
    let port = second.endpoint().port();
    assert_eq!(location, Some(format!("//master2.example:{port}")));

    // Recovered as after a failover: the agent is offered only once it re-registers.
    let (mut subscription, _) = subscribe_new(&second, framework_info()).await;
    assert!(second.offers_outstanding().is_empty());
    second.reregister_agent("agent-1").unwrap();
    let offers = subscription.offers().await;
    assert_eq!(offers[0].agent_id.value, "agent-1");
}

#[tokio::test]
async fn without_members_nobody_leads_and_other_children_are_not_members() {
    let zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    let client = Client::connect(&zookeeper.connect_string()).await.unwrap();
    let directory =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    client
        .mkdir("/mesos/prod/log_replicas", &directory)
        .await
        .unwrap();
    let only = start_member(&zookeeper, "master1.example").await;
    assert!(only.is_leading(), "log_replicas is not a member");
    let node = only.zookeeper_node().unwrap();
    client
        .delete(&format!("/mesos/prod/{node}"), None)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while only.is_leading() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = location(&only, "/master/redirect").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
