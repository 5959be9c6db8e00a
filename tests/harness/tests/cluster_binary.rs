//! The `mesos-harness` program as a real process: it prints the `master`
//! value, a framework subscribes to the leader it finds through that
//! ZooKeeper and is offered the printed agents' resources, and SIGINT stops
//! everything — ZooKeeper, masters and agents stop listening.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod scheduler_client;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hyper::StatusCode;
use mesos_harness::master::ContentType;
use mesos_proto::v1::scheduler::event;
use scheduler_client::*;

const STARTUP: Duration = Duration::from_secs(120);

/// Kills the program if a test fails before it is stopped.
struct Program(Child);

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines printed up to `ready`.
fn read_announcement(program: &mut Program) -> Vec<String> {
    let stdout = program.0.stdout.take().expect("stdout is piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let ready = line == "ready";
            if sender.send(line).is_err() || ready {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = receiver
            .recv_timeout(STARTUP)
            .expect("the program announces the cluster in time");
        if line == "ready" {
            return lines;
        }
        lines.push(line);
    }
}

fn value<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix(prefix))
        .map(|rest| rest.split_once(": ").map_or(rest, |(_, v)| v).trim())
        .collect()
}

/// The leader's address, read from the election as a scheduler's detector does.
async fn leader_address(zookeeper: &str, path: &str) -> SocketAddr {
    let client = zookeeper_client::Client::connect(zookeeper).await.unwrap();
    let children = client.list_children(path).await.unwrap();
    let leader = children
        .iter()
        .filter(|c| c.starts_with("json.info_"))
        .min()
        .expect("a member");
    let (data, _) = client.get_data(&format!("{path}/{leader}")).await.unwrap();
    let info: serde_json::Value = serde_json::from_slice(&data).unwrap();
    let ip = info["address"]["ip"].as_str().unwrap();
    let port = info["address"]["port"].as_u64().unwrap();
    format!("{ip}:{port}").parse().unwrap()
}

fn refused(address: &str) -> bool {
    std::net::TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(1)).is_err()
}

#[tokio::test]
async fn program_prints_the_zookeeper_master_serves_offers_and_stops_everything_on_sigint() {
    let work = std::env::temp_dir().join(format!("cluster-binary-{}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_mesos-harness"))
        .args(["--masters", "2", "--agents", "2", "--work-dir"])
        .arg(&work)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut program = Program(child);
    let lines = read_announcement(&mut program);

    let master = value(&lines, "master:")[0].to_owned();
    let rest = master.strip_prefix("zk://").expect("a zk:// URL");
    let (zookeeper, path) = rest.split_at(rest.find('/').unwrap());
    assert_eq!(path, "/mesos");
    let masters = value(&lines, "master ");
    assert_eq!(masters.len(), 2, "{lines:?}");
    let agents = value(&lines, "agent ");
    assert_eq!(agents.len(), 2, "{lines:?}");

    let leader = leader_address(zookeeper, path).await;
    assert!(
        masters.contains(&format!("http://{leader}").as_str()),
        "{lines:?}"
    );
    let mut subscription = subscribe_with(
        leader,
        ContentType::Json,
        None,
        &[],
        &subscribe_call(framework_info()),
    )
    .await;
    assert_eq!(subscription.status, StatusCode::OK);
    assert_eq!(subscription.event().await.r#type(), event::Type::Subscribed);
    let mut offered_ports = Vec::new();
    while offered_ports.len() < 2 {
        for offer in subscription.offers().await {
            offered_ports.push(offer.url.unwrap().address.port);
        }
    }
    offered_ports.sort_unstable();
    let mut agent_ports: Vec<i32> = agents
        .iter()
        .map(|url| url.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    agent_ports.sort_unstable();
    assert_eq!(offered_ports, agent_ports);
    assert!(
        work.join(lines_agent_id(&lines)).is_dir(),
        "the agent's work directory"
    );
    drop(subscription);

    let pid = program.0.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = program.0.wait();
        (program, status)
    })
    .await
    .unwrap()
    .1
    .unwrap();
    assert!(status.success(), "{status}");
    assert!(refused(zookeeper), "ZooKeeper still listens on {zookeeper}");
    for endpoint in masters.iter().chain(agents.iter()) {
        let address = endpoint.strip_prefix("http://").unwrap();
        assert!(refused(address), "{endpoint} still listens");
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The first agent's id (`agent <id>: <url>`).
fn lines_agent_id(lines: &[String]) -> String {
    let line = lines
        .iter()
        .find_map(|l| l.strip_prefix("agent "))
        .expect("an agent line");
    line.split_once(": ").unwrap().0.to_owned()
}

#[test]
fn program_started_as_mesos_executor_is_the_command_executor() {
    let dir = std::env::temp_dir().join(format!("mesos-harness-launcher-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let executor = dir.join("mesos-executor");
    let _ = std::fs::remove_file(&executor);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mesos-harness"), &executor).unwrap();

    let help = Command::new(&executor).arg("--help").output().unwrap();
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: mesos-executor"), "{text}");

    let refused = Command::new(&executor)
        .arg("--no_such_flag=1")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("unknown flag 'no_such_flag'"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
