//! End-to-end: `wait` under concurrency and abuse, watchers that die, `recover` +
//! `containers` after a restart, and orphans handled as the agent handles them.
//!
//! Containers that must outlive a step wait for a `go` file in their sandbox instead of
//! sleeping, so the tests are fast and do not depend on timing.
//!
//! Needs Docker and the local test images: run `scripts/setup` first.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod ecp_support;

use std::fs;
use std::time::Duration;

use ecp_support::{
    docker, docker_inspect, is_deimos_watcher, process_alive, wait_for_docker_exit, wait_until,
    Agent, HttpServer, Reply, TestContainer,
};
use mesos_proto::containerizer::{Destroy, Termination, Wait};
use mesos_proto::ecp::encode_record;
use nix::sys::signal::Signal;

/// A command that prints `started`, waits for the `go` file, prints `finishing`, exits `code`.
fn until_go(code: i32) -> String {
    format!(
        "echo started; while [ ! -e /mnt/mesos/sandbox/go ]; do sleep 0.05; done; \
         echo finishing; exit {code}"
    )
}

fn go(c: &TestContainer) {
    fs::write(c.sandbox.join("go"), "").unwrap();
}

fn wait_started(c: &TestContainer) {
    wait_until(Duration::from_secs(10), "the container to start", || {
        c.sandbox_file("stdout").contains("started")
    });
}

#[test]
fn d4_wait_during_a_slow_launch_blocks_then_answers() {
    let agent = Agent::new("d4");
    let server = HttpServer::start(vec![(
        "/slow.txt",
        Reply::Slow(Duration::from_millis(1500), b"slow\n".to_vec()),
    )]);
    let c = agent
        .executor("cat slow.txt; exit 2")
        .uri(&server.url("/slow.txt"))
        .build();
    let mut launching = agent.launch_call(&c).spawn();
    wait_until(Duration::from_secs(10), "the state directory", || {
        agent.state_dir(&c.id).join("container.json").exists()
    });
    assert!(!launching.has_exited(), "the launch was not slow");
    // The agent queues calls until launch returns; a wait arriving earlier must still work.
    let mut waiting = agent.wait_call(&c).spawn();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.has_exited(), "wait answered during the launch");
    assert_eq!(
        agent.containers(),
        vec![c.id.clone()],
        "launching is active"
    );
    launching.finish(Duration::from_secs(30)).assert_success();
    let termination: Termination = waiting.finish(Duration::from_secs(30)).success().record();
    assert_eq!(termination.status, Some(2 << 8));
    assert_eq!(c.sandbox_file("stdout"), "slow\n");
}

#[test]
fn concurrent_waits_all_answer_the_same_termination() {
    let agent = Agent::new("concurrent-waits");
    let c = agent.executor(&until_go(5)).build();
    agent.launch_ok(&c);
    let waits: Vec<_> = (0..4).map(|_| agent.wait_call(&c).spawn()).collect();
    std::thread::sleep(Duration::from_millis(200));
    go(&c);
    let terminations: Vec<Termination> = waits
        .into_iter()
        .map(|w| w.finish(Duration::from_secs(30)).success().record())
        .collect();
    assert_eq!(terminations[0].status, Some(5 << 8));
    assert!(terminations.iter().all(|t| *t == terminations[0]));
}

#[test]
fn wait_killed_while_blocked_leaves_the_container_waitable() {
    let agent = Agent::new("killed-wait");
    let c = agent.executor(&until_go(6)).build();
    agent.launch_ok(&c);
    let watcher = agent.watcher_pid(&c.id);
    let waiting = agent.wait_call(&c).spawn();
    std::thread::sleep(Duration::from_millis(300));
    let killed = waiting.kill();
    assert_eq!(killed.signal(), Some(9));
    assert!(killed.stdout.is_empty());
    // Still running, still watched by the same watcher.
    assert_eq!(agent.containers(), vec![c.id.clone()]);
    assert_eq!(agent.watcher_pid(&c.id), watcher);
    go(&c);
    assert_eq!(agent.wait(&c).status, Some(6 << 8));
}

#[test]
fn d10_recover_readopts_running_containers() {
    let agent = Agent::new("d10");
    let c = agent.executor(&until_go(7)).build();
    agent.launch_ok(&c);
    wait_started(&c);
    let old = agent.kill_watcher(&c.id, Signal::SIGKILL);
    // Unwatched but alive: still active for the agent.
    assert_eq!(agent.containers(), vec![c.id.clone()]);

    agent.recover().assert_success();
    let new = agent.watcher_pid(&c.id);
    assert_ne!(new, old);
    assert!(process_alive(new) && is_deimos_watcher(new, &c.id));
    assert_eq!(agent.containers(), vec![c.id.clone()]);

    go(&c);
    let termination = agent.wait(&c);
    assert_eq!(termination.status, Some(7 << 8));
    assert_eq!(termination.killed, Some(false));
    assert!(
        c.sandbox_file("stdout").contains("finishing"),
        "logs resumed"
    );
    assert_eq!(agent.containers(), Vec::<String>::new());
    assert_eq!(agent.docker_containers(), Vec::<String>::new());
}

#[test]
fn recover_records_the_exit_of_a_container_that_ended_unwatched() {
    let agent = Agent::new("recover-exited");
    let c = agent.executor(&until_go(3)).build();
    agent.launch_ok(&c);
    wait_started(&c);
    agent.kill_watcher(&c.id, Signal::SIGKILL);
    let docker_id = agent.docker_id(&c.id);
    go(&c);
    wait_for_docker_exit(&docker_id);

    agent.recover().assert_success();
    let exit = agent.exit_record(&c.id).expect("exit recorded by recover");
    assert_eq!(exit["exit_code"], 3, "{exit}");
    assert_eq!(docker_inspect(&docker_id, "{{.Id}}"), None, "not removed");
    assert_eq!(agent.containers(), Vec::<String>::new());
    let termination = agent.wait(&c);
    assert_eq!(termination.status, Some(3 << 8));
    assert_eq!(termination.killed, Some(false));
}

#[test]
fn recover_records_an_unknown_exit_for_a_container_removed_behind_its_back() {
    let agent = Agent::new("recover-vanished");
    let live = agent.executor(&until_go(0)).build();
    let gone = agent.executor(&until_go(0)).build();
    agent.launch_ok(&live);
    agent.launch_ok(&gone);
    wait_started(&gone);
    agent.kill_watcher(&gone.id, Signal::SIGKILL);
    let removed = docker(&["rm", "-f", &agent.docker_id(&gone.id)]);
    assert!(removed.status.success(), "{removed:?}");

    agent.recover().assert_success();
    let exit = agent
        .exit_record(&gone.id)
        .expect("exit recorded by recover");
    assert!(exit["exit_code"].is_null(), "{exit}");
    let termination = agent.wait(&gone);
    assert_eq!(termination.status, None, "unknown status: -1 for the agent");
    let message = termination.message.unwrap();
    assert!(message.contains("vanished"), "{message}");
    // Only the live container is active.
    assert_eq!(agent.containers(), vec![live.id.clone()]);
    go(&live);
    assert_eq!(agent.wait(&live).status, Some(0));
}

#[test]
fn orphans_are_waited_for_and_destroyed_from_the_agent_directory() {
    let agent = Agent::new("orphans");
    let c = agent.executor("exec sleep 300").build();
    agent.launch_ok(&c);
    let docker_id = agent.docker_id(&c.id);

    // Agent restart: recover, containers; the container is not one it recovers.
    agent.recover().assert_success();
    assert_eq!(agent.containers(), vec![c.id.clone()]);
    let wait_bytes = encode_record(&Wait {
        container_id: c.mesos_id(),
    })
    .unwrap();
    let destroy_bytes = encode_record(&Destroy {
        container_id: c.mesos_id(),
    })
    .unwrap();
    // No sandbox: the agent's own directory, no launch variables.
    let mut waiting = agent.call(&["wait"]).input(wait_bytes).spawn();
    let destroyed = agent.call(&["destroy"]).input(destroy_bytes).run();
    destroyed.assert_success();
    // The agent SIGKILLs the wait tree once destroy has exited; ours has answered by then or
    // answers at once, since destroy returns only after the exit is recorded.
    wait_until(Duration::from_secs(10), "the orphan wait", || {
        waiting.has_exited()
    });
    let termination: Termination = waiting.finish(Duration::from_secs(1)).success().record();
    assert_eq!(termination.killed, Some(true));
    assert_eq!(docker_inspect(&docker_id, "{{.Id}}"), None, "not removed");
    assert_eq!(agent.containers(), Vec::<String>::new());
}

#[test]
fn d18_watcher_killed_by_sigterm_is_replaced_by_the_next_wait() {
    let agent = Agent::new("d18");
    let c = agent.executor(&until_go(4)).build();
    agent.launch_ok(&c);
    wait_started(&c);
    let old = agent.kill_watcher(&c.id, Signal::SIGTERM);
    let docker_id = agent.docker_id(&c.id);
    assert_eq!(
        docker_inspect(&docker_id, "{{.State.Running}}").as_deref(),
        Some("true"),
        "the container must survive its watcher"
    );
    let waiting = agent.wait_call(&c).spawn();
    wait_until(Duration::from_secs(10), "a new watcher", || {
        fs::read_to_string(agent.state_dir(&c.id).join("pid"))
            .is_ok_and(|p| p.trim() != old.to_string())
    });
    go(&c);
    let termination: Termination = waiting.finish(Duration::from_secs(30)).success().record();
    assert_eq!(termination.status, Some(4 << 8));
}

#[test]
fn watcher_restarted_by_a_wait_survives_the_agent_killing_that_wait() {
    let agent = Agent::new("wait-tree");
    let c = agent.executor(&until_go(8)).build();
    agent.launch_ok(&c);
    wait_started(&c);
    let old = agent.kill_watcher(&c.id, Signal::SIGKILL);
    let waiting = agent.wait_call(&c).spawn();
    wait_until(Duration::from_secs(10), "a new watcher", || {
        fs::read_to_string(agent.state_dir(&c.id).join("pid"))
            .is_ok_and(|p| p.trim() != old.to_string())
    });
    let watcher = agent.watcher_pid(&c.id);
    // The agent kills the whole tree of a blocked wait (after a destroy, or when it gives up).
    let killed = waiting.kill();
    assert_eq!(killed.signal(), Some(9));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        process_alive(watcher),
        "the watcher {watcher} died with the wait that started it"
    );
    assert_eq!(agent.containers(), vec![c.id.clone()]);
    go(&c);
    assert_eq!(agent.wait(&c).status, Some(8 << 8));
}
