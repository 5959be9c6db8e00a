//! The scheduler core over the Mesos backend with a `zk://` master: a real ZooKeeper server
//! holds the election of two fake masters. eremetic subscribes to the leader ZooKeeper names,
//! a task launches there; when the leader leaves, the next master leads and eremetic
//! subscribes to it with the same framework id (a framework failover, as after a real master
//! failover), and a later task launches on the new leader. A change of leader in ZooKeeper
//! alone also ends the stream on the old leader, even while that master still serves it.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod engine_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eremetic::backend::{MesosBackend, MesosConfig};
use eremetic::engine::Scheduler;
use eremetic::mesos::calls::FrameworkSettings;
use eremetic::mesos::client::ClientSettings;
use eremetic::mesos::launch_mode::{ExecutorSettings, LaunchMode};
use eremetic::mesos::task_info::LaunchSettings;
use eremetic::mesos::MasterUrl;
use eremetic::metrics::Metrics;
use eremetic::service::{Submission, TaskService};
use eremetic::store::{Store, META_FRAMEWORK_ID};
use eremetic::task::{Task, TaskId, TaskState};
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup, ZooKeeperElection};
use mesos_harness::zk::ZooKeeperServer;
use mesos_proto::v1::TaskState as MesosState;
use tokio::sync::Notify;
use zookeeper_client::{Acls, Client, CreateMode};

use engine_support::{body, config, history, request, DEADLINE};

/// Mesos' advice: a failover timeout of weeks.
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

fn setup(hostname: &str, election: Option<ZooKeeperElection>) -> MasterSetup {
    MasterSetup {
        hostname: hostname.to_owned(),
        allocation_interval: Duration::from_millis(100),
        status_update_retry_min: Duration::from_millis(500),
        zookeeper: election,
        ..MasterSetup::default()
    }
}

/// A master contending under `/mesos`; its registry knows `agent-1`.
async fn member(zookeeper: &ZooKeeperServer, hostname: &str) -> FakeMaster {
    let election = ZooKeeperElection::new(zookeeper.connect_string(), "/mesos");
    let master = FakeMaster::start(setup(hostname, Some(election)))
        .await
        .unwrap();
    master
        .add_agent(AgentSpec::new("agent-1", "agent-1.example"))
        .unwrap();
    master
}

fn backend(master: &str) -> MesosBackend {
    let mut client = ClientSettings::new(&MasterUrl::parse(master).unwrap());
    client.request_timeout = Duration::from_secs(10);
    MesosBackend::new(
        MesosConfig {
            client,
            framework: FrameworkSettings {
                name: "Eremetic".into(),
                user: "root".into(),
                role: "*".into(),
                checkpoint: true,
                failover_timeout: WEEK,
                principal: None,
                hostname: None,
                webui_url: None,
                partition_aware: true,
            },
            launch: LaunchSettings {
                instance_id: "mesos-zk-test".into(),
                user_network: None,
                kill_grace: Duration::from_secs(3),
                mode: LaunchMode::Docker,
                executor: ExecutorSettings::default(),
            },
            refuse: Duration::from_secs(1),
            framework_id: None,
        },
        Arc::new(Metrics::new()),
    )
    .unwrap()
}

/// A started core over the Mesos backend and a store in `dir`.
struct Framework {
    scheduler: Scheduler,
    store: Store,
}

impl Framework {
    async fn start(dir: &Path, master: &str) -> Framework {
        let store = Store::open(&dir.join("eremetic.db")).unwrap();
        let scheduler = Scheduler::new(
            store.clone(),
            Arc::new(backend(master)),
            Arc::new(Metrics::new()),
            Arc::new(Notify::new()),
            config(),
        );
        scheduler.start().await.unwrap();
        Framework { scheduler, store }
    }

    async fn submit(&self, name: &str) -> TaskId {
        let submission = Submission {
            task: request(&body(name, 0.5, "")),
            idempotency_key: None,
        };
        self.scheduler.submit(submission).await.unwrap().id
    }

    async fn wait_state(&self, id: &TaskId, state: TaskState) -> Task {
        let reached = tokio::time::timeout(DEADLINE, async {
            loop {
                let task = self.scheduler.get(id).await.unwrap().unwrap();
                if task.current_state() == Some(state) {
                    return task;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        match reached {
            Ok(task) => task,
            Err(_) => {
                let task = self.scheduler.get(id).await.unwrap().unwrap();
                panic!("{id} did not reach {state}: {:?}", history(&task))
            }
        }
    }

    /// Submits a task, has `master` launch it and its executor finish it.
    async fn run_to_finished(&self, master: &FakeMaster, name: &str) -> Task {
        let id = self.submit(name).await;
        let mesos_id = format!("{id}.0");
        master
            .wait_for_task_state(&mesos_id, MesosState::TaskStaging, DEADLINE)
            .await
            .unwrap_or_else(|error| panic!("{mesos_id} was not launched: {error}"));
        master
            .update_task(&mesos_id, MesosState::TaskRunning, None, None)
            .unwrap();
        self.wait_state(&id, TaskState::Running).await;
        master
            .update_task(&mesos_id, MesosState::TaskFinished, None, None)
            .unwrap();
        self.wait_state(&id, TaskState::Finished).await
    }
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let reached = tokio::time::timeout(DEADLINE, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{what} did not happen within {DEADLINE:?}");
}

#[tokio::test]
async fn eremetic_follows_the_zookeeper_leader_through_a_master_failover() {
    let zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    let first = member(&zookeeper, "master1.example").await;
    let second = member(&zookeeper, "master2.example").await;
    assert!(first.is_leading() && !second.is_leading());

    let dir = tempfile::tempdir().unwrap();
    let url = format!("zk://{}/mesos", zookeeper.connect_string());
    let framework = Framework::start(dir.path(), &url).await;
    let framework_id = first.wait_subscribed(DEADLINE).await.unwrap();
    let task = framework.run_to_finished(&first, "before").await;
    assert_eq!(task.agent_id.as_deref(), Some("agent-1"));
    assert!(second.connected_frameworks().is_empty());

    // The leader leaves the election; the second master leads, recovering its registry.
    first.stop().await;
    second.wait_leading(DEADLINE).await.unwrap();
    let resubscribed = second.wait_subscribed(DEADLINE).await.unwrap();
    assert_eq!(
        resubscribed, framework_id,
        "a failover, not a new framework"
    );
    assert_eq!(
        framework.store.meta_load(META_FRAMEWORK_ID).await.unwrap(),
        Some(framework_id)
    );
    // The agent re-registers with the new leader, whose offers launch the next task.
    second.reregister_agent("agent-1").unwrap();
    let task = framework.run_to_finished(&second, "after").await;
    assert_eq!(task.agent_id.as_deref(), Some("agent-1"));
}

/// `MasterInfo` JSON of a master serving at `master`'s address.
fn master_info(master: &FakeMaster, hostname: &str) -> Vec<u8> {
    let address = master.endpoint();
    serde_json::json!({
        "id": master.master_id(),
        "ip": 16_777_343u32,
        "port": address.port(),
        "pid": format!("master@{address}"),
        "hostname": hostname,
        "version": "1.12.0",
        "address": {"hostname": hostname, "ip": address.ip().to_string(), "port": address.port()},
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_new_leader_in_zookeeper_ends_the_subscription_to_the_old_one() {
    let zookeeper = ZooKeeperServer::start().await.expect("ZooKeeper runs");
    // Two masters that both serve (neither reads ZooKeeper): only the election, written
    // here, says which one leads.
    let old = FakeMaster::start(setup("old.example", None)).await.unwrap();
    let new = FakeMaster::start(setup("new.example", None)).await.unwrap();
    let client = Client::connect(&zookeeper.connect_string()).await.unwrap();
    let directory = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir("/mesos", &directory).await.unwrap();
    let member = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let (_, old_sequence) = client
        .create(
            "/mesos/json.info_",
            &master_info(&old, "old.example"),
            &member,
        )
        .await
        .unwrap();
    client
        .create(
            "/mesos/json.info_",
            &master_info(&new, "new.example"),
            &member,
        )
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let url = format!("zk://{}/mesos", zookeeper.connect_string());
    let _framework = Framework::start(dir.path(), &url).await;
    let framework_id = old.wait_subscribed(DEADLINE).await.unwrap();
    assert!(new.connected_frameworks().is_empty());

    client
        .delete(&format!("/mesos/json.info_{old_sequence}"), None)
        .await
        .unwrap();
    assert_eq!(new.wait_subscribed(DEADLINE).await.unwrap(), framework_id);
    eventually("the stream on the old leader to close", || {
        old.connected_frameworks().is_empty()
    })
    .await;
}
