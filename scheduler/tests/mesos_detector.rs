//! The ZooKeeper master detector against a real ZooKeeper server: the leader is the lowest
//! `json.info_` member, other children are ignored, leader changes and the loss of every
//! member are followed, a missing path waits for the first master, and bad data or an
//! unreachable ensemble are errors in words naming the ensemble and path.

use std::time::Duration;

use eremetic::mesos::detector::{Detection, MasterDetector};
use eremetic::mesos::master_url::{MasterUrl, ZkTarget};
use mesos_harness::zk::ZooKeeperServer;
use zookeeper_client::{Acls, Client, CreateMode};

const WAIT: Duration = Duration::from_secs(30);

fn target(connect: &str, path: &str) -> ZkTarget {
    match MasterUrl::parse(&format!("zk://{connect}{path}")).expect("a zk:// URL") {
        MasterUrl::ZooKeeper(target) => target,
        other => panic!("{other:?}"),
    }
}

fn master_info(ip: &str, port: u16, hostname: &str) -> Vec<u8> {
    serde_json::json!({
        "id": format!("master-{port}"),
        "ip": 16_777_343u32,
        "port": port,
        "pid": format!("master@{ip}:{port}"),
        "hostname": hostname,
        "version": "1.12.0",
        "address": {"hostname": hostname, "ip": ip, "port": port},
        "capabilities": [{"type": "AGENT_UPDATE"}],
    })
    .to_string()
    .into_bytes()
}

/// Joins the election as a master would: an ephemeral sequential node under `path`.
async fn join(client: &Client, path: &str, data: &[u8]) -> String {
    let options = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let (_, sequence) = client
        .create(&format!("{path}/json.info_"), data, &options)
        .await
        .expect("a member node");
    format!("{path}/json.info_{sequence}")
}

async fn mkdir(client: &Client, path: &str) {
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(path, &options).await.expect("the path");
}

async fn wait_for(
    detector: &MasterDetector,
    what: &str,
    check: impl FnMut(&Detection) -> bool,
) -> Detection {
    tokio::time::timeout(WAIT, detector.wait_for(check))
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}: {:?}", detector.current()))
}

fn leader_url(detection: &Detection) -> Option<String> {
    detection.leader().map(|master| master.base_url())
}

#[tokio::test]
async fn the_lowest_json_info_member_leads_and_leader_changes_are_followed() {
    let zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    let client = Client::connect(&zookeeper.connect_string()).await.unwrap();
    mkdir(&client, "/mesos/prod/log_replicas").await;
    let first = join(
        &client,
        "/mesos/prod",
        &master_info("127.0.0.1", 5050, "m1"),
    )
    .await;
    let _second = join(
        &client,
        "/mesos/prod",
        &master_info("127.0.0.2", 5051, "m2"),
    )
    .await;

    let detector = MasterDetector::start(target(&zookeeper.connect_string(), "/mesos/prod"));
    let leader = tokio::time::timeout(WAIT, detector.leader()).await.unwrap();
    assert_eq!(leader.base_url(), "http://127.0.0.1:5050");
    assert_eq!(
        leader.scheduler_endpoint(),
        "http://127.0.0.1:5050/api/v1/scheduler"
    );

    client.delete(&first, None).await.unwrap();
    let detection = wait_for(&detector, "new leader", |d| {
        leader_url(d).as_deref() == Some("http://127.0.0.2:5051")
    })
    .await;
    assert!(matches!(detection, Detection::Leader(_)));
    // `changed_from` returns at once for a master that no longer leads.
    tokio::time::timeout(WAIT, detector.changed_from(&leader))
        .await
        .unwrap();
}

#[tokio::test]
async fn without_members_there_is_no_leader_until_one_joins() {
    let zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    let client = Client::connect(&zookeeper.connect_string()).await.unwrap();
    let detector = MasterDetector::start(target(&zookeeper.connect_string(), "/mesos"));

    // No path yet: no master has joined.
    let detection = wait_for(&detector, "no leader", |d| {
        matches!(d, Detection::NoLeader(_))
    })
    .await;
    let Detection::NoLeader(why) = detection else {
        unreachable!()
    };
    assert!(
        why.contains("does not exist") && why.contains("/mesos"),
        "{why}"
    );

    mkdir(&client, "/mesos").await;
    let detection = wait_for(
        &detector,
        "empty election",
        |d| matches!(d, Detection::NoLeader(why) if why.contains("no master")),
    )
    .await;
    let Detection::NoLeader(why) = detection else {
        unreachable!()
    };
    let port = zookeeper.port();
    assert!(why.contains(&format!("127.0.0.1:{port}/mesos")), "{why}");

    let only = join(&client, "/mesos", &master_info("127.0.0.1", 5050, "m1")).await;
    let leader = tokio::time::timeout(WAIT, detector.leader()).await.unwrap();
    assert_eq!(leader.base_url(), "http://127.0.0.1:5050");

    client.delete(&only, None).await.unwrap();
    tokio::time::timeout(WAIT, detector.changed_from(&leader))
        .await
        .unwrap();
    assert!(
        matches!(detector.current(), Detection::NoLeader(_)),
        "{:?}",
        detector.current()
    );
}

#[tokio::test]
async fn a_leader_with_bad_data_is_an_error_naming_the_node_until_the_election_changes() {
    let zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    let client = Client::connect(&zookeeper.connect_string()).await.unwrap();
    mkdir(&client, "/mesos").await;
    let bad = join(&client, "/mesos", b"{not json").await;
    let detector = MasterDetector::start(target(&zookeeper.connect_string(), "/mesos"));
    let detection = wait_for(&detector, "a failure", |d| {
        matches!(d, Detection::Failed(_))
    })
    .await;
    let Detection::Failed(why) = detection else {
        unreachable!()
    };
    let node = bad.trim_start_matches("/mesos/");
    assert!(
        why.contains(node) && why.contains("not MasterInfo JSON") && why.contains("/mesos"),
        "{why}"
    );

    join(&client, "/mesos", &master_info("127.0.0.1", 5050, "m1")).await;
    client.delete(&bad, None).await.unwrap();
    let leader = tokio::time::timeout(WAIT, detector.leader()).await.unwrap();
    assert_eq!(leader.base_url(), "http://127.0.0.1:5050");
}

#[tokio::test]
async fn an_unreachable_ensemble_is_an_error_naming_it() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let detector = MasterDetector::start(target(&format!("127.0.0.1:{port}"), "/mesos"));
    let detection = wait_for(&detector, "a failure", |d| {
        matches!(d, Detection::Failed(_))
    })
    .await;
    let Detection::Failed(why) = detection else {
        unreachable!()
    };
    assert!(
        why.contains(&format!("ZooKeeper 127.0.0.1:{port}/mesos"))
            && why.contains("cannot open a session"),
        "{why}"
    );
}

#[tokio::test]
async fn a_connection_loss_keeps_the_leader_and_later_changes_are_still_followed() {
    let mut zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    let client = Client::connect(&zookeeper.connect_string()).await.unwrap();
    mkdir(&client, "/mesos").await;
    let first = join(&client, "/mesos", &master_info("127.0.0.1", 5050, "m1")).await;
    join(&client, "/mesos", &master_info("127.0.0.2", 5051, "m2")).await;
    let detector = MasterDetector::start(target(&zookeeper.connect_string(), "/mesos"));
    let leader = tokio::time::timeout(WAIT, detector.leader()).await.unwrap();
    assert_eq!(leader.base_url(), "http://127.0.0.1:5050");

    // The server goes away and comes back within the sessions' timeout.
    zookeeper.restart().await.expect("ZooKeeper restarts");
    assert_eq!(detector.current(), Detection::Leader(leader.clone()));

    // The watch was set again on reconnection: the next change is seen.
    tokio::time::timeout(WAIT, async {
        loop {
            match client.delete(&first, None).await {
                Ok(()) => return,
                // The test's own client may still be reconnecting.
                Err(zookeeper_client::Error::ConnectionLoss) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("deleting {first}: {error}"),
            }
        }
    })
    .await
    .unwrap();
    wait_for(&detector, "the next leader", |d| {
        leader_url(d).as_deref() == Some("http://127.0.0.2:5051")
    })
    .await;
}
