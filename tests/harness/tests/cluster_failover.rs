//! A whole cluster — masters elected in a real ZooKeeper, simulated agents
//! attached to the leader and following it — driven by a scheduler over
//! HTTP: a leader stopped (frameworks re-subscribe to the next one,
//! reconciliation is silent for agents not yet re-registered, tasks come
//! back with re-registration and unacknowledged updates are delivered), an
//! agent withheld past the re-registration timeout, an agent partitioned,
//! healed and marked gone, with the updates a Mesos master sends.

mod scheduler_client;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use mesos_harness::cluster::simulated::{SimulatedAgent, SimulatedAgentConfig};
use mesos_harness::cluster::{Cluster, ClusterSetup, Reregistration};
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::event;
use mesos_proto::v1::{task_status, FrameworkId, FrameworkInfo, TaskState, TaskStatus};
use scheduler_client::*;

const LONG: Duration = Duration::from_secs(30);

struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn work_dir(name: &str) -> WorkDir {
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random).expect("random bytes");
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    WorkDir(std::env::temp_dir().join(format!("cluster-{name}-{suffix}")))
}

/// Two masters and agent-1 running tasks for 60 s unless killed.
async fn cluster(work: &WorkDir, reregister_timeout: Duration) -> Cluster {
    let mut setup = ClusterSetup::new(&work.0);
    setup.masters = 2;
    setup.master = MasterSetup {
        agent_reregister_timeout: reregister_timeout,
        ..fast_setup()
    };
    let cluster = Cluster::start(setup).await.expect("the cluster starts");
    cluster
        .add_agent(AgentSpec::new(AGENT, "127.0.0.1"), |book| {
            let mut config = SimulatedAgentConfig::new(book);
            config.run_time = Duration::from_secs(60);
            Arc::new(SimulatedAgent::new(config))
        })
        .await
        .expect("the agent joins");
    cluster
}

async fn leader(cluster: &Cluster) -> Arc<FakeMaster> {
    cluster.wait_leader(LONG).await.expect("a master leads")
}

/// Launches t1 on the leader; returns the stream, the framework id and the
/// RUNNING update (STARTING acknowledged, RUNNING not).
async fn launch_t1(master: &FakeMaster) -> (Subscription, String, TaskStatus) {
    let (mut subscription, framework_id) = subscribe_new(master, framework_info()).await;
    let offers = subscription.offers().await;
    assert_eq!(offers[0].agent_id.value, AGENT);
    let call = launch_call(
        &framework_id,
        &[&offers[0].id],
        vec![task_info("t1", AGENT, 1.0, 128.0)],
    );
    let answer = post_call(master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let starting = subscription.update().await;
    assert_eq!(starting.state(), TaskState::TaskStarting);
    acknowledge(master, &subscription, &framework_id, &starting).await;
    let running = subscription.update().await;
    assert_eq!(running.state(), TaskState::TaskRunning);
    (subscription, framework_id, running)
}

async fn acknowledge(
    master: &FakeMaster,
    subscription: &Subscription,
    framework_id: &str,
    status: &TaskStatus,
) {
    let uuid = status.uuid.clone().expect("the update has a uuid");
    let ack = acknowledge_call(framework_id, &status.task_id.value, AGENT, uuid);
    post_call(master, &subscription.stream_id, &ack).await;
}

async fn resubscribe(master: &FakeMaster, framework_id: &str) -> Subscription {
    let info = FrameworkInfo {
        id: Some(FrameworkId {
            value: framework_id.to_owned(),
        }),
        ..framework_info()
    };
    let (subscription, id) = subscribe_new(master, info).await;
    assert_eq!(id, framework_id);
    subscription
}

#[tokio::test]
async fn leader_stopped_reconciliation_is_silent_until_the_agent_reregisters_and_its_updates_return(
) {
    let work = work_dir("failover");
    let cluster = cluster(&work, Duration::from_secs(600)).await;
    cluster
        .set_reregistration(AGENT, Reregistration::Withheld)
        .unwrap();
    let old = leader(&cluster).await;
    let old_endpoint = old.endpoint();
    let (subscription, framework_id, running) = launch_t1(&old).await;
    drop((subscription, old));

    cluster.stop_leader().await.unwrap();
    let new = leader(&cluster).await;
    assert_ne!(new.endpoint(), old_endpoint);
    let mut subscription = resubscribe(&new, &framework_id).await;
    let reconcile = reconcile_call(&framework_id, &[("t1", Some(AGENT))]);
    post_call(&new, &subscription.stream_id, &reconcile).await;
    subscription.assert_quiet(Duration::from_millis(500)).await;

    cluster.reregister_now(AGENT).unwrap();
    // The RUNNING update the old leader never had acknowledged.
    let again = subscription.update().await;
    assert_eq!(again.state(), TaskState::TaskRunning);
    assert_eq!(again.uuid, running.uuid);
    acknowledge(&new, &subscription, &framework_id, &again).await;
    post_call(&new, &subscription.stream_id, &reconcile).await;
    let answer = subscription.update().await;
    assert_eq!(answer.state(), TaskState::TaskRunning);
    assert_eq!(answer.reason(), task_status::Reason::Reconciliation);

    // The agent now takes orders from the new leader.
    post_call(
        &new,
        &subscription.stream_id,
        &kill_call(&framework_id, "t1"),
    )
    .await;
    let killed = subscription.update().await;
    assert_eq!(killed.state(), TaskState::TaskKilled);
    assert_eq!(killed.source(), task_status::Source::Executor);
    drop(new);
    cluster.stop().await;
}

#[tokio::test]
async fn agents_follow_a_new_leader_by_themselves_and_a_withheld_one_is_lost_after_the_timeout() {
    let work = work_dir("follow");
    let cluster = cluster(&work, Duration::from_secs(1)).await;
    cluster
        .add_agent(AgentSpec::new("agent-2", "127.0.0.1"), |book| {
            Arc::new(SimulatedAgent::new(SimulatedAgentConfig::new(book)))
        })
        .await
        .unwrap();
    cluster
        .set_reregistration("agent-2", Reregistration::Withheld)
        .unwrap();
    let old = leader(&cluster).await;
    let (subscription, framework_id, _) = launch_t1(&old).await;
    drop((subscription, old));

    cluster.stop_leader().await.unwrap();
    let new = leader(&cluster).await;
    // agent-1 re-registers promptly: its task is known again.
    new.wait_for_task_state("t1", TaskState::TaskRunning, LONG)
        .await
        .unwrap();
    let mut subscription = resubscribe(&new, &framework_id).await;
    // agent-2 never came back: after agent_reregister_timeout, FAILURE only.
    let failure = subscription.event_of(event::Type::Failure).await;
    let failure = failure.failure.unwrap();
    assert_eq!(failure.agent_id.unwrap().value, "agent-2");
    assert!(failure.executor_id.is_none());
    drop(new);
    cluster.stop().await;
}

#[tokio::test]
async fn partitioned_agent_is_lost_healed_back_and_marked_gone_with_the_masters_updates() {
    let work = work_dir("partition");
    let cluster = cluster(&work, Duration::from_secs(600)).await;
    let master = leader(&cluster).await;
    let (mut subscription, framework_id, running) = launch_t1(&master).await;
    acknowledge(&master, &subscription, &framework_id, &running).await;

    cluster.partition_agent(AGENT).unwrap();
    let lost = subscription.update().await;
    assert_eq!(lost.state(), TaskState::TaskLost);
    assert_eq!(lost.source(), task_status::Source::Master);
    assert_eq!(lost.reason(), task_status::Reason::AgentRemoved);
    assert_eq!(lost.message.as_deref(), Some("health check timed out"));
    assert!(lost.uuid.is_none());
    // Then FAILURE (a RESCIND of an offer made meanwhile may come first).
    let failure = loop {
        let event = subscription.event_skipping_heartbeats().await;
        if event.r#type() != event::Type::Rescind {
            break event;
        }
    };
    assert_eq!(failure.r#type(), event::Type::Failure, "{failure:?}");
    assert_eq!(failure.failure.unwrap().agent_id.unwrap().value, AGENT);

    cluster.heal_agent(AGENT).unwrap();
    let back = subscription.update().await;
    assert_eq!(back.state(), TaskState::TaskRunning);
    assert_eq!(back.source(), task_status::Source::Master);
    assert_eq!(back.reason(), task_status::Reason::AgentReregistered);
    let error = cluster.heal_agent(AGENT).unwrap_err();
    assert!(error.to_string().contains("not partitioned"), "{error}");

    cluster.mark_gone(AGENT).unwrap();
    let gone = subscription.update().await;
    assert_eq!(gone.state(), TaskState::TaskLost);
    assert_eq!(gone.message.as_deref(), Some("Agent has been marked gone"));
    // The agent was shut down: its task ended without further updates.
    let book = cluster.agent(AGENT).unwrap().book;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !book.executors()[0].terminated {
        assert!(tokio::time::Instant::now() < deadline, "the executor ends");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(book.executors()[0].tasks[0].1, TaskState::TaskKilled);
    // The agent process exited: its endpoints are gone.
    let endpoint = cluster.agent(AGENT).unwrap().endpoint;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(endpoint).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{endpoint} still listens"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = cluster.reregister_now(AGENT).unwrap_err();
    assert!(error.to_string().contains("marked gone"), "{error}");
    drop(master);
    cluster.stop().await;
}

#[tokio::test]
async fn master_url_names_the_zookeeper_election() {
    let work = work_dir("url");
    let cluster = cluster(&work, Duration::from_secs(600)).await;
    assert_eq!(
        cluster.master_url(),
        format!("zk://127.0.0.1:{}/mesos", cluster.zookeeper().port())
    );
    assert_eq!(cluster.masters().len(), 2);
    let agent = cluster.agent(AGENT).unwrap();
    assert_eq!(agent.book.work_dir(), work.0.join(AGENT));
    cluster.stop().await;
}
