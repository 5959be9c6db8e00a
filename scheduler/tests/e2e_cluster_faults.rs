//! End to end on a harness cluster through faults: the real `eremetic` binary with `master` set
//! to the `zk://` election of two masters in a real ZooKeeper, simulated agents (each task runs
//! for the seconds of its `harness.run_seconds` label), and the faults a cluster meets: eremetic
//! killed with SIGKILL and restarted, the leading master stopping, an agent partitioned then
//! healed, an agent marked gone, offers rescinded, the framework removed after its failover
//! timeout, and credentials refused or accepted.
//!
//! "Launched once" is counted where it happens: the LAUNCH operations every master received
//! and the executor runs every agent started.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_support::{current_state, history, shell_task, with, Service, Settings, DEADLINE};
use mesos_harness::cluster::simulated::{SimulatedAgent, SimulatedAgentConfig, RUN_SECONDS_LABEL};
use mesos_harness::cluster::{Cluster, ClusterSetup};
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};
use serde_json::{json, Value};

/// How long a simulated task runs unless its label says otherwise.
const DEFAULT_RUN: Duration = Duration::from_secs(30);

/// A cluster of two masters elected in ZooKeeper, with quick allocations and update retries.
async fn cluster(work: &std::path::Path, adjust: impl FnOnce(&mut MasterSetup)) -> Cluster {
    let mut setup = ClusterSetup::new(work);
    setup.masters = 2;
    setup.master = MasterSetup {
        allocation_interval: Duration::from_millis(100),
        status_update_retry_min: Duration::from_millis(500),
        ..MasterSetup::default()
    };
    adjust(&mut setup.master);
    Cluster::start(setup).await.unwrap()
}

/// Adds simulated agent `agent_id` with `cpus` cpus.
async fn add_agent(cluster: &Cluster, agent_id: &str, cpus: f64) {
    let mut spec = AgentSpec::new(agent_id, "127.0.0.1");
    spec.cpus = cpus;
    cluster
        .add_agent(spec, |book| {
            let mut config = SimulatedAgentConfig::new(book);
            config.run_time = DEFAULT_RUN;
            Arc::new(SimulatedAgent::new(config))
        })
        .await
        .unwrap();
}

/// A task of 1 cpu that runs `seconds` on a simulated agent, relaunched up to `retries` times.
fn task(seconds: f64, retries: u32) -> Value {
    with(
        shell_task("true"),
        json!({
            "cpu": 1.0,
            "retries": retries,
            "labels": {RUN_SECONDS_LABEL: seconds.to_string()},
        }),
    )
}

/// How many LAUNCH operations of `master` named Mesos task `mesos_id`.
fn launches(master: &FakeMaster, mesos_id: &str) -> usize {
    master
        .calls()
        .iter()
        .filter_map(|call| call.accept.as_ref())
        .flat_map(|accept| &accept.operations)
        .filter_map(|operation| operation.launch.as_ref())
        .flat_map(|launch| &launch.task_infos)
        .filter(|info| info.task_id.value == mesos_id)
        .count()
}

/// How many LAUNCH operations of every running master named Mesos task `mesos_id`.
fn launches_on_masters(cluster: &Cluster, mesos_id: &str) -> usize {
    cluster
        .masters()
        .iter()
        .map(|master| launches(master, mesos_id))
        .sum()
}

/// The agents that started an executor run for Mesos task `mesos_id` (one entry per run).
fn runs(cluster: &Cluster, mesos_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for agent_id in cluster.agent_ids() {
        let agent = cluster.agent(&agent_id).unwrap();
        let runs = agent.book.executors();
        let here = runs.iter().filter(|run| run.executor_id == mesos_id);
        found.extend(here.map(|_| agent_id.clone()));
    }
    found
}

/// Polls `check` until it holds; fails after [`DEADLINE`] with `what` and the service's log.
async fn eventually(service: &Service, what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < DEADLINE,
            "{what} did not happen within {DEADLINE:?}\n{}",
            service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The framework id the leading master has subscribed.
async fn subscribed(cluster: &Cluster) -> String {
    let leader = cluster.wait_leader(DEADLINE).await.unwrap();
    leader.wait_subscribed(DEADLINE).await.unwrap()
}

/// Sends `signal` (`STOP`, `CONT`) to the service's process with `kill`.
fn signal(service: &Service, signal: &str) {
    let pid = service.pid().to_string();
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.clone()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{signal} {pid} failed");
}

/// The offer ids the ACCEPT calls of `master` named, with the Mesos task ids they launched.
fn accepts(master: &FakeMaster) -> Vec<(Vec<String>, Vec<String>)> {
    let accepted = master.calls().into_iter().filter_map(|call| call.accept);
    accepted
        .map(|accept| {
            let offers = accept.offer_ids.iter().map(|id| id.value.clone()).collect();
            let launched = accept
                .operations
                .iter()
                .filter_map(|operation| operation.launch.as_ref())
                .flat_map(|launch| &launch.task_infos)
                .map(|info| info.task_id.value.clone())
                .collect();
            (offers, launched)
        })
        .collect()
}

/// How many entries of the task's history are `state`.
fn count_in_history(task: &Value, state: &str) -> usize {
    history(task).iter().filter(|s| *s == state).count()
}

#[tokio::test]
async fn after_kill_9_and_restart_eremetic_adopts_its_running_tasks_without_relaunching_them() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), |_| {}).await;
    add_agent(&cluster, "agent-1", 4.0).await;
    let mut service = Service::start(Settings::new().set("master", cluster.master_url())).await;
    let framework_id = subscribed(&cluster).await;

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(service.submit(&task(6.0, 2)).await);
    }
    for id in &ids {
        service.wait_state(id, "TASK_RUNNING").await;
    }
    service.kill_9();
    service.restart().await;

    // The same framework subscribes again: the masters' view, not eremetic's word.
    let leader = cluster.leader().unwrap();
    eventually(&service, "the resubscription with the same id", || {
        leader.connected_frameworks() == vec![framework_id.clone()]
    })
    .await;
    drop(leader);
    for id in &ids {
        let done = service.wait_end(id, "TASK_FINISHED").await;
        assert_eq!(count_in_history(&done, "TASK_STAGING"), 1, "{done}");
        let mesos_id = format!("{id}.0");
        assert_eq!(launches_on_masters(&cluster, &mesos_id), 1, "{done}");
        assert_eq!(runs(&cluster, &mesos_id), vec!["agent-1"], "{done}");
        assert_eq!(done["framework_id"], framework_id.as_str(), "{done}");
    }
    let relaunched = cluster.agent_ids().iter().any(|agent| {
        let executors = cluster.agent(agent).unwrap().book.executors();
        executors.iter().any(|run| run.executor_id.ends_with(".1"))
    });
    assert!(!relaunched, "a task was relaunched as attempt 1");
    cluster.stop().await;
}

#[tokio::test]
async fn a_master_failover_through_zookeeper_launches_each_task_once_and_all_finish() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), |_| {}).await;
    // Room for two tasks: the other two wait in the queue across the failover.
    add_agent(&cluster, "agent-1", 2.0).await;
    let service = Service::start(Settings::new().set("master", cluster.master_url())).await;

    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(service.submit(&task(6.0, 2)).await);
    }
    let mut running = 0;
    for id in &ids[..2] {
        service.wait_state(id, "TASK_RUNNING").await;
        running += 1;
    }
    assert_eq!(running, 2);
    for id in &ids[2..] {
        let queued = service.task(id).await;
        assert_eq!(current_state(&queued), "TASK_QUEUED", "{queued}");
    }
    // The old leader's launches, counted before its process ends (nothing more fits there).
    let old_leader = cluster.leader().unwrap();
    let before: Vec<usize> = ids
        .iter()
        .map(|id| launches(&old_leader, &format!("{id}.0")))
        .collect();
    drop(old_leader);
    cluster.stop_leader().await.unwrap();
    let new_leader = cluster.wait_leader(DEADLINE).await.unwrap();
    new_leader.wait_subscribed(DEADLINE).await.unwrap();
    drop(new_leader);

    for (id, before) in ids.iter().zip(before) {
        let done = service.wait_end(id, "TASK_FINISHED").await;
        let mesos_id = format!("{id}.0");
        let total = before + launches_on_masters(&cluster, &mesos_id);
        assert_eq!(total, 1, "launches of {mesos_id} on both masters\n{done}");
        assert_eq!(runs(&cluster, &mesos_id), vec!["agent-1"], "{done}");
        assert_eq!(count_in_history(&done, "TASK_STAGING"), 1, "{done}");
        assert_eq!(done["retry"], 0, "{done}");
    }
    // The new leader was asked about the runs it inherited.
    let leader = cluster.leader().unwrap();
    assert!(
        leader.calls().iter().any(|call| call.reconcile.is_some()),
        "eremetic did not reconcile with the new leader"
    );
    drop(leader);
    cluster.stop().await;
}

#[tokio::test]
async fn an_unreachable_agent_s_task_is_relaunched_elsewhere_and_its_old_run_killed_when_back() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), |_| {}).await;
    add_agent(&cluster, "agent-a", 4.0).await;
    let service = Service::start(
        Settings::new()
            .set("master", cluster.master_url())
            .set("unreachable_timeout", "3s"),
    )
    .await;
    let id = service.submit(&task(12.0, 1)).await;
    let running = service.wait_state(&id, "TASK_RUNNING").await;
    assert_eq!(running["agent_id"], "agent-a", "{running}");
    add_agent(&cluster, "agent-b", 4.0).await;

    cluster.partition_agent("agent-a").unwrap();
    // Waiting out the timeout, the task stays running as attempt 0 and says why it waits.
    let waiting = service
        .wait_for(&id, "waiting for its agent", |task| {
            !task["waiting_reason"].is_null() || task["retry"] != 0
        })
        .await;
    assert_eq!(current_state(&waiting), "TASK_RUNNING", "{waiting}");
    assert_eq!(waiting["retry"], 0, "{waiting}");
    let reason = waiting["waiting_reason"].as_str().unwrap();
    assert!(
        reason.contains("agent cannot be reached") && reason.contains("unreachable_timeout (3 s)"),
        "{waiting}"
    );
    let relaunched = service
        .wait_for(&id, "running again as attempt 1", |task| {
            task["retry"] == 1 && current_state(task) == "TASK_RUNNING"
        })
        .await;
    assert_eq!(relaunched["agent_id"], "agent-b", "{relaunched}");
    assert_eq!(runs(&cluster, &format!("{id}.1")), vec!["agent-b"]);

    // The old run comes back with its agent: eremetic kills it.
    cluster.heal_agent("agent-a").unwrap();
    let old = format!("{id}.0");
    let leader = cluster.leader().unwrap();
    eventually(&service, "a KILL of the old run", || {
        leader.kills().iter().any(|kill| kill.task_id == old)
    })
    .await;
    drop(leader);
    let done = service.wait_end(&id, "TASK_FINISHED").await;
    assert_eq!(done["retry"], 1, "{done}");
    assert_eq!(done["agent_id"], "agent-b", "{done}");
    assert_eq!(runs(&cluster, &old), vec!["agent-a"], "{done}");
    cluster.stop().await;
}

#[tokio::test]
async fn a_task_of_an_agent_marked_gone_is_relaunched_per_retries_or_fails_in_words() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), |_| {}).await;
    add_agent(&cluster, "agent-a", 4.0).await;
    let service = Service::start(Settings::new().set("master", cluster.master_url())).await;
    let retried = service.submit(&task(10.0, 1)).await;
    let given_up = service.submit(&task(10.0, 0)).await;
    for id in [&retried, &given_up] {
        let running = service.wait_state(id, "TASK_RUNNING").await;
        assert_eq!(running["agent_id"], "agent-a", "{running}");
    }
    add_agent(&cluster, "agent-b", 4.0).await;
    cluster.mark_gone("agent-a").unwrap();

    let done = service.wait_end(&retried, "TASK_FINISHED").await;
    assert_eq!(done["retry"], 1, "{done}");
    assert_eq!(done["agent_id"], "agent-b", "{done}");
    assert_eq!(runs(&cluster, &format!("{retried}.1")), vec!["agent-b"]);

    let failed = service.wait_terminal(&given_up).await;
    assert_ne!(current_state(&failed), "TASK_FINISHED", "{failed}");
    assert_eq!(failed["retry"], 0, "{failed}");
    let reason = failed["failure_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("operator"), "reason in words: {failed}");
    assert!(runs(&cluster, &format!("{given_up}.1")).is_empty());
    cluster.stop().await;
}

#[tokio::test]
async fn a_rescinded_offer_is_not_launched_on_and_the_task_launches_on_a_later_offer() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), |_| {}).await;
    let service = Service::start(Settings::new().set("master", cluster.master_url())).await;
    subscribed(&cluster).await;
    let id = service.submit(&task(1.0, 0)).await;
    let leader = cluster.leader().unwrap();
    eventually(&service, "a REVIVE for the queued task", || {
        let revive = mesos_proto::v1::scheduler::call::Type::Revive as i32;
        leader
            .calls()
            .iter()
            .any(|call| call.r#type == Some(revive))
    })
    .await;

    // eremetic is stopped while the offer arrives and is rescinded: it holds it, unread, and
    // reads the RESCIND right behind it.
    signal(&service, "STOP");
    add_agent(&cluster, "agent-1", 4.0).await;
    let offer = {
        let started = Instant::now();
        loop {
            if let Some(offer) = leader.offers_outstanding().into_iter().next() {
                break offer.id.value;
            }
            assert!(started.elapsed() < DEADLINE, "no offer was made");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    leader.rescind(&offer).unwrap();
    signal(&service, "CONT");

    let done = service.wait_end(&id, "TASK_FINISHED").await;
    let accepts = accepts(&leader);
    assert!(
        accepts.iter().all(|(offers, _)| !offers.contains(&offer)),
        "an ACCEPT named the rescinded offer {offer}: {accepts:?}"
    );
    // A placement on the rescinded offer goes back to the queue (its retries untouched) and
    // its launch takes the next attempt number: one launch in all, of one Mesos task id.
    let prefix = format!("{id}.");
    let launching: Vec<_> = accepts
        .iter()
        .flat_map(|(offers, launched)| launched.iter().map(move |task| (offers, task)))
        .filter(|(_, task)| task.starts_with(&prefix))
        .collect();
    assert_eq!(launching.len(), 1, "{accepts:?}");
    assert_eq!(runs(&cluster, launching[0].1), vec!["agent-1"], "{done}");
    assert_eq!(done["retry"], 0, "{done}");
    drop(leader);
    cluster.stop().await;
}

#[tokio::test]
async fn a_removed_framework_subscribes_afresh_and_its_tasks_end_per_the_retry_policy() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), |_| {}).await;
    add_agent(&cluster, "agent-1", 4.0).await;
    let mut service = Service::start(
        Settings::new()
            .set("master", cluster.master_url())
            .set("failover_timeout", "1"),
    )
    .await;
    let old_id = subscribed(&cluster).await;
    // Long enough to be still running when the framework is removed, however slow the
    // machine is between TASK_RUNNING and the kill (the relaunch runs as long).
    let retried = service.submit(&task(12.0, 1)).await;
    let given_up = service.submit(&task(12.0, 0)).await;
    for id in [&retried, &given_up] {
        service.wait_state(id, "TASK_RUNNING").await;
    }

    // Stopped past its failover timeout, the framework is removed and its tasks killed.
    service.kill_9();
    let leader = cluster.leader().unwrap();
    eventually(&service, "the master to remove the framework", || {
        [&retried, &given_up].iter().all(|id| {
            let task = leader.task(&format!("{id}.0"));
            task.is_some_and(|task| task.removed)
        })
    })
    .await;
    service.restart().await;
    let new_id = leader.wait_subscribed(DEADLINE).await.unwrap();
    assert_ne!(new_id, old_id, "the removed framework id was used again");
    drop(leader);

    let done = service.wait_end(&retried, "TASK_FINISHED").await;
    assert_eq!(done["retry"], 1, "{done}");
    assert_eq!(done["framework_id"], new_id.as_str(), "{done}");
    let failed = service.wait_terminal(&given_up).await;
    assert_ne!(current_state(&failed), "TASK_FINISHED", "{failed}");
    let reason = failed["failure_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("removed the framework"), "{failed}");
    let log = String::from_utf8_lossy(&service.log_bytes()).into_owned();
    assert!(
        log.contains("removed the framework"),
        "{}",
        service.log_tail()
    );
    cluster.stop().await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_in_words_and_the_right_ones_run_a_task() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster(work.path(), |master| {
        let credentials = [("eremetic".to_owned(), "right-secret".to_owned())];
        master.http_framework_credentials = Some(credentials.into_iter().collect());
    })
    .await;
    add_agent(&cluster, "agent-1", 4.0).await;
    let credential_file = work.path().join("credential");
    std::fs::write(&credential_file, "eremetic wrong-secret\n").unwrap();
    let settings = Settings::new()
        .set("master", cluster.master_url())
        .set("credential_file", credential_file.to_str().unwrap());
    let mut service = Service::start(settings).await;

    let refused = |cluster: &serde_json::Value| {
        let error = cluster["mesos"]["connection"]["last_error"].as_str();
        error.is_some_and(|error| error.contains("401"))
    };
    let started = Instant::now();
    let view = loop {
        let view: Value = service.get("/cluster").await.json().await.unwrap();
        if refused(&view) {
            break view;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "/cluster: {view}\n{}",
            service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = view["mesos"]["connection"]["last_error"].as_str().unwrap();
    assert!(error.to_lowercase().contains("credential"), "{view}");
    let log = String::from_utf8_lossy(&service.log_bytes()).into_owned();
    assert!(log.contains("401"), "{}", service.log_tail());
    let leader = cluster.leader().unwrap();
    assert!(leader.connected_frameworks().is_empty());
    drop(leader);

    service.terminate().await;
    std::fs::write(&credential_file, "eremetic right-secret\n").unwrap();
    service.restart().await;
    let id = service.submit(&task(1.0, 0)).await;
    let done = service.wait_end(&id, "TASK_FINISHED").await;
    assert_eq!(done["agent_id"], "agent-1", "{done}");
    cluster.stop().await;
}
