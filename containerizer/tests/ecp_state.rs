//! End-to-end: the state directory as seen through the binary: `containers` scoping between
//! agents, start-time entries, and the operator's `state [--rm] [TIME]`.
//!
//! Needs Docker and the local test images: run `scripts/setup` first.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod ecp_support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use deimos::state::ContainerRecord;
use ecp_support::{docker_inspect, wait_until, Agent, HttpServer, Reply, Setup};

/// Every entry of an index directory resolves to an existing state directory.
fn assert_no_dangling_links(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        assert!(
            fs::metadata(&path).is_ok_and(|m| m.is_dir()),
            "dangling index link {}",
            path.display()
        );
    }
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn two_agents_sharing_a_state_root_do_not_see_each_others_containers() {
    let first = Agent::new("agent-a");
    let second = Setup::new("agent-b").sharing_state_of(&first).start();
    let a = first.executor("exec sleep 300").build();
    let b = second.executor("exec sleep 300").build();
    first.launch_ok(&a);
    second.launch_ok(&b);
    assert_eq!(first.containers(), vec![a.id.clone()]);
    assert_eq!(second.containers(), vec![b.id.clone()]);

    // The second agent's restart must not touch the first agent's container.
    second.recover().assert_success();
    second.destroy(&a).assert_success();
    let a_docker = first.docker_id(&a.id);
    assert_eq!(
        docker_inspect(&a_docker, "{{.State.Running}}").as_deref(),
        Some("true")
    );
    let line = second.wait_call(&a).run().error_line(4).to_owned();
    assert!(line.contains("unknown container"), "{line}");
    assert_eq!(first.containers(), vec![a.id.clone()]);

    first.destroy(&a).assert_success();
    second.destroy(&b).assert_success();
    assert_eq!(first.containers(), Vec::<String>::new());
    assert_eq!(second.containers(), Vec::<String>::new());
}

#[test]
fn d5_concurrent_launches_each_get_a_start_time_entry() {
    let agent = Agent::new("d5");
    let containers: Vec<_> = (0..4).map(|_| agent.executor("exit 0").build()).collect();
    std::thread::scope(|scope| {
        let launches: Vec<_> = containers
            .iter()
            .map(|c| scope.spawn(|| agent.launch_ok(c)))
            .collect();
        for launch in launches {
            launch.join().expect("a launch failed");
        }
    });
    let mut tokens = Vec::new();
    for c in &containers {
        let record = fs::read_to_string(agent.state_dir(&c.id).join("container.json")).unwrap();
        let token = ContainerRecord::parse(&record).unwrap().start_time_entry;
        let link = agent.state_root.join("start-time").join(&token);
        assert_eq!(
            fs::canonicalize(&link).unwrap(),
            fs::canonicalize(agent.state_dir(&c.id)).unwrap()
        );
        tokens.push(token);
        assert_eq!(agent.wait(c).status, Some(0));
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(
        tokens.len(),
        containers.len(),
        "start-time entries collided"
    );
}

#[test]
fn d11_state_rm_removes_only_exited_state_and_leaves_no_dangling_links() {
    let agent = Agent::new("d11");
    let server = HttpServer::start(vec![(
        "/slow.txt",
        Reply::Slow(Duration::from_millis(2500), b"slow\n".to_vec()),
    )]);
    let exited: Vec<_> = (0..2).map(|_| agent.executor("exit 0").build()).collect();
    for c in &exited {
        agent.launch_ok(c);
        assert_eq!(agent.wait(c).status, Some(0));
    }
    let live = agent.executor("exec sleep 300").build();
    agent.launch_ok(&live);
    let launching = agent
        .executor("exit 0")
        .uri(&server.url("/slow.txt"))
        .build();
    let mut slow_launch = agent.launch_call(&launching).spawn();
    wait_until(Duration::from_secs(10), "the launching state", || {
        agent
            .state_dir(&launching.id)
            .join("container.json")
            .exists()
    });

    // Listing: run from cron, without the agent's variables.
    let state = || agent.call(&["state"]).env_remove("MESOS_WORK_DIRECTORY");
    let listed = lines(&state().run().success().stdout);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let future = agent
        .call(&["state", "2999-01-01T00:00:00Z"])
        .run()
        .success();
    assert_eq!(lines(&future.stdout), listed);
    let none = agent
        .call(&["state", "2000-01-01T00:00:00Z"])
        .run()
        .success();
    assert!(none.stdout.is_empty(), "nothing started before 2000");

    let removed = agent
        .call(&["state", "--rm"])
        .env_remove("MESOS_WORK_DIRECTORY")
        .run()
        .success();
    assert!(!slow_launch.has_exited(), "the slow launch ended too early");
    assert_eq!(lines(&removed.stdout).len(), 2, "{removed:?}");
    for c in &exited {
        assert!(!agent.state_dir(&c.id).exists(), "exited state kept");
    }
    assert!(agent.state_dir(&live.id).join("cid").exists());
    assert!(agent.state_dir(&launching.id).exists());
    assert_no_dangling_links(&agent.state_root.join("start-time"));
    assert_no_dangling_links(&agent.state_root.join("docker"));
    assert_eq!(agent.containers().len(), 2);

    // The launch that was in progress completes normally.
    slow_launch.finish(Duration::from_secs(30)).assert_success();
    assert_eq!(agent.wait(&launching).status, Some(0));
    agent.destroy(&live).assert_success();
    agent.call(&["state", "--rm"]).run().assert_success();
    for c in [&live, &launching] {
        assert!(!agent.state_dir(&c.id).exists());
    }
    assert_no_dangling_links(&agent.state_root.join("start-time"));
    assert_no_dangling_links(&agent.state_root.join("docker"));
}

#[test]
fn d12_concurrent_cleanup_fails_cleanly() {
    let agent = Agent::new("d12");
    let c = agent.executor("exit 0").build();
    agent.launch_ok(&c);
    agent.wait(&c);

    // Another cleanup holds the lock.
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(agent.state_root.join("cleanup"))
        .unwrap();
    fs2::FileExt::try_lock_exclusive(&lock).unwrap();
    let busy = agent.call(&["state", "--rm"]).run();
    let line = busy.error_line(4);
    assert!(
        line.contains("another `deimos state --rm` is running"),
        "{line}"
    );
    assert!(agent.state_dir(&c.id).exists());
    fs2::FileExt::unlock(&lock).unwrap();
    drop(lock);

    // Several at once (cron overlapping): each succeeds or says it is busy; one removes.
    let runs: Vec<_> = (0..4)
        .map(|_| agent.call(&["state", "--rm"]).spawn())
        .collect();
    for run in runs {
        let finished = run.finish(Duration::from_secs(30));
        match finished.code() {
            Some(0) => {}
            Some(4) => assert!(finished.error_line(4).contains("is running")),
            other => panic!("state --rm ended with {other:?}: {}", finished.stderr),
        }
    }
    assert!(!agent.state_dir(&c.id).exists());
}

#[test]
fn d13_state_without_root_lists_nothing() {
    let agent = Agent::new("d13");
    assert!(!agent.state_root.exists());
    let listed = agent.call(&["state"]).run().success();
    assert!(listed.stdout.is_empty());
    agent.call(&["state", "--rm"]).run().assert_success();
    // `containers` always writes a record, even an empty one.
    let containers = agent.call(&["containers"]).run().success();
    assert_eq!(containers.stdout, vec![0, 0, 0, 0]);
    agent.recover().assert_success();
}

#[test]
fn d13_state_with_unparsable_time_names_the_expected_format() {
    let agent = Agent::new("d13-time");
    for time in ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00"] {
        let finished = agent.call(&["state", time]).run();
        let line = finished.error_line(4);
        assert!(line.contains("YYYY-MM-DDTHH:MM:SSZ"), "{line}");
        assert!(line.contains(time), "{line}");
    }
}
