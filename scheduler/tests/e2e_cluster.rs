//! End to end on a whole harness cluster: the real `eremetic` binary with `master` set to the
//! cluster's `zk://` election runs a task on a simulated agent; the leading master stops while
//! the task runs, eremetic follows the next leader through ZooKeeper, the agent re-registers
//! there and the task's end reaches eremetic; its output is read from the agent's sandbox
//! through the agent's `/files` endpoints.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::sync::Arc;
use std::time::Duration;

use e2e_support::{current_state, shell_task, Service, Settings};
use mesos_harness::cluster::simulated::{SimulatedAgent, SimulatedAgentConfig};
use mesos_harness::cluster::{Cluster, ClusterSetup};
use mesos_harness::master::{AgentSpec, MasterSetup};
use reqwest::StatusCode;

#[tokio::test]
async fn a_task_finishes_on_a_simulated_cluster_across_a_leader_failover_and_its_output_is_read() {
    let work = tempfile::tempdir().unwrap();
    let mut setup = ClusterSetup::new(work.path());
    setup.masters = 2;
    setup.master = MasterSetup {
        allocation_interval: Duration::from_millis(100),
        status_update_retry_min: Duration::from_millis(500),
        ..MasterSetup::default()
    };
    let cluster = Cluster::start(setup).await.unwrap();
    cluster
        .add_agent(AgentSpec::new("agent-1", "127.0.0.1"), |book| {
            let mut config = SimulatedAgentConfig::new(book);
            config.run_time = Duration::from_secs(4);
            config.stdout = "hello from the agent\n".to_owned();
            Arc::new(SimulatedAgent::new(config))
        })
        .await
        .unwrap();
    let service = Service::start(Settings::new().set("master", cluster.master_url())).await;

    let id = service.submit(&shell_task("echo hello")).await;
    service.wait_state(&id, "TASK_RUNNING").await;
    cluster.stop_leader().await.unwrap();
    let task = service.wait_terminal(&id).await;
    assert_eq!(current_state(&task), "TASK_FINISHED", "{task}");
    assert_eq!(task["agent_id"], "agent-1");

    let response = service.get(&format!("/api/v1/task/{id}/stdout")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "hello from the agent\n");
    cluster.stop().await;
}
