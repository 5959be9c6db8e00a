//! End-to-end: `destroy`, `usage`, `update`, the observer of command tasks and the hooks,
//! driven exactly as a Mesos agent drives the binary (see `ecp_support`).
//!
//! Needs Docker and the local test images: run `scripts/setup` first.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod ecp_support;

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ecp_support::{cpus, docker_inspect, mem, wait_until, Agent, Setup, CALL_TIMEOUT, DEIMOS};
use mesos_proto::containerizer::Termination;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn d8_termination_reports_killed_and_message() {
    let agent = Agent::new("d8");
    let c = agent.executor("exec sleep 300").build();
    agent.launch_ok(&c);
    let docker_id = agent.docker_id(&c.id);
    let waiting = agent.wait_call(&c).spawn();
    agent.destroy(&c).assert_success();
    let termination: Termination = waiting.finish(Duration::from_secs(30)).success().record();
    assert_eq!(termination.killed, Some(true), "{termination:?}");
    // sleep as PID 1 ignores SIGTERM: SIGKILL after the grace period.
    assert_eq!(termination.status, Some(9));
    let message = termination.message.as_deref().unwrap();
    assert!(message.ends_with("destroyed"), "{message}");
    assert_eq!(docker_inspect(&docker_id, "{{.Id}}"), None, "not removed");
    assert_eq!(agent.docker_containers(), Vec::<String>::new());

    // Idempotent: again, and for a container nobody ever launched.
    agent.destroy(&c).assert_success();
    let unknown = agent.executor("true").build();
    agent.destroy(&unknown).assert_success();
    assert_eq!(agent.wait(&c), termination, "the exit record changed");
}

#[test]
fn destroy_sends_sigterm_before_sigkill() {
    let agent = Setup::new("destroy-term")
        .set("containers", "stop_grace_period", "20s")
        .start();
    let c = agent
        .executor("trap 'echo got TERM; exit 0' TERM; echo ready; sleep 300 & wait")
        .build();
    agent.launch_ok(&c);
    wait_until(Duration::from_secs(10), "the trap to be installed", || {
        c.sandbox_file("stdout").contains("ready")
    });
    let destroyed = agent.destroy(&c).success();
    assert!(destroyed.elapsed < Duration::from_secs(15), "{destroyed:?}");
    let termination = agent.wait(&c);
    assert_eq!(termination.status, Some(0));
    assert_eq!(termination.killed, Some(true));
    assert!(c.sandbox_file("stdout").contains("got TERM"));
}

#[test]
fn d9_usage_always_answers_with_the_allocation_while_running_and_a_timestamp_after_exit() {
    let agent = Agent::new("usage");
    let c = agent
        .executor("exec sleep 300")
        .resources(vec![cpus(0.5), mem(64.0)])
        .build();
    agent.launch_ok(&c);
    let before = now();
    let statistics = agent.usage(&c);
    assert!(statistics.timestamp >= before - 1.0 && statistics.timestamp <= now() + 1.0);
    assert_eq!(statistics.mem_limit_bytes, Some(64 * 1024 * 1024));
    assert_eq!(statistics.cpus_limit, Some(0.5));
    assert!(statistics.mem_rss_bytes.is_some() || statistics.mem_total_bytes.is_some());

    agent.destroy(&c).assert_success();
    let statistics = agent.usage(&c);
    assert!(statistics.timestamp > 0.0);
    assert_eq!(statistics.mem_limit_bytes, None);
    assert_eq!(statistics.cpus_limit, None);
}

#[test]
fn concurrent_wait_destroy_and_usage_on_one_container_all_succeed() {
    let agent = Agent::new("concurrent-calls");
    let c = agent.executor("exec sleep 300").build();
    agent.launch_ok(&c);
    let waiting = agent.wait_call(&c).spawn();
    std::thread::scope(|scope| {
        let usages: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..3 {
                        assert!(agent.usage(&c).timestamp > 0.0);
                    }
                })
            })
            .collect();
        let destroys: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| agent.destroy(&c).assert_success()))
            .collect();
        for handle in usages.into_iter().chain(destroys) {
            handle.join().expect("a concurrent call failed");
        }
    });
    let termination: Termination = waiting.finish(Duration::from_secs(30)).success().record();
    assert_eq!(termination.killed, Some(true));
    assert_eq!(agent.docker_containers(), Vec::<String>::new());
}

#[test]
fn update_applies_new_cpu_and_memory_limits() {
    let agent = Agent::new("update");
    let c = agent
        .executor("exec sleep 300")
        .resources(vec![cpus(0.5), mem(64.0)])
        .build();
    agent.launch_ok(&c);
    let docker_id = agent.docker_id(&c.id);
    let limits = || {
        docker_inspect(
            &docker_id,
            "{{.HostConfig.CpuShares}} {{.HostConfig.Memory}}",
        )
    };
    assert_eq!(limits().as_deref(), Some("512 67108864"));

    agent
        .update(&c, vec![cpus(1.0), mem(128.0)])
        .assert_success();
    assert_eq!(limits().as_deref(), Some("1024 134217728"));
    let statistics = agent.usage(&c);
    assert_eq!(statistics.mem_limit_bytes, Some(128 * 1024 * 1024));
    assert_eq!(statistics.cpus_limit, Some(1.0));

    // The agent shrinks the container to nothing after a terminal task update: no change.
    agent.update(&c, Vec::new()).assert_success();
    assert_eq!(limits().as_deref(), Some("1024 134217728"));

    agent.destroy(&c).assert_success();
    agent
        .update(&c, vec![cpus(2.0), mem(256.0)])
        .assert_success();
}

/// A fake Mesos command executor: records its argv and environment, runs the command line it
/// was given after `--override`, waits a second (so a `wait` that did not wait for it would
/// answer first), then records the exit code of that command.
fn fake_executor(out: &std::path::Path) -> String {
    let out = out.display();
    format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$@\" > {out}/argv\n\
         env > {out}/env\n\
         [ \"$1\" = --override ] && shift\n\
         \"$@\"\n\
         code=$?\n\
         sleep 1\n\
         echo $code > {out}/observe-exit\n\
         exit $code\n"
    )
}

#[test]
fn command_task_observer_runs_observe_and_wait_answers_after_it() {
    let agent = Agent::new("observer");
    let out = agent.scratch("observer-out");
    agent.install_executor(&fake_executor(&out));
    let c = agent.command_task("sleep 1; exit 3").build();
    // An agent before Mesos 1.0 (no MESOS_HTTP_COMMAND_EXECUTOR): the default observer is
    // Deimos' `mesos-executor --override` form.
    agent
        .launch_call(&c)
        .env_remove("MESOS_HTTP_COMMAND_EXECUTOR")
        .run()
        .assert_success();
    let termination = agent.wait(&c);
    assert_eq!(termination.status, Some(3 << 8));
    // `wait` answered only once the observer had finished.
    let observed = fs::read_to_string(out.join("observe-exit")).expect("observer not finished");
    assert_eq!(
        observed.trim(),
        "3",
        "observe exits with the container's code"
    );

    let argv: Vec<String> = fs::read_to_string(out.join("argv"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(argv.len(), 4, "{argv:?}");
    assert_eq!(argv[0], "--override");
    assert_eq!(
        fs::canonicalize(&argv[1]).unwrap(),
        fs::canonicalize(DEIMOS).unwrap()
    );
    assert_eq!(argv[2..], ["observe".to_owned(), c.id.clone()]);
    let env = fs::read_to_string(out.join("env")).unwrap();
    let has = |line: &str| env.lines().any(|l| l == line);
    assert!(
        has(&format!("MESOS_EXECUTOR_ID={}", c.executor_id)),
        "{env}"
    );
    assert!(has(&format!("MESOS_SLAVE_PID={}", ecp_support::AGENT_PID)));
    assert!(has(&format!("MESOS_DIRECTORY={}", c.sandbox.display())));
    assert!(has("LIBPROCESS_PORT=0"), "{env}");
}

/// The observer executor gone while the task runs (for instance SIGTERMed by its executor
/// before `deimos observe` could catch the signal): nobody reports on the task any more, so
/// the container must not run on with no executor.
#[test]
fn container_is_stopped_when_its_observer_ends_first() {
    let agent = Agent::new("observer-gone");
    agent.install_executor("#!/bin/sh\nexit 0\n");
    let c = agent.command_task("sleep 600").build();
    agent.launch_ok(&c);
    let docker_id = agent.docker_id(&c.id);
    // Without the stop, `wait` would block until the 600 s sleep ends (CALL_TIMEOUT fails it).
    let termination = agent.wait(&c);
    assert_ne!(termination.status, Some(0), "{termination:?}");
    wait_until(CALL_TIMEOUT, "the stopped container removed", || {
        docker_inspect(&docker_id, "{{.State.Status}}").is_none()
    });
}

#[test]
fn command_task_without_mesos_executor_still_launches() {
    let agent = Agent::new("no-observer");
    let c = agent.command_task("exit 0").build();
    let launched = agent.launch_ok(&c);
    assert!(
        launched.stderr.contains("no observer executor"),
        "{}",
        launched.stderr
    );
    assert!(
        launched.stderr.contains("mesos-executor"),
        "{}",
        launched.stderr
    );
    assert_eq!(agent.wait(&c).status, Some(0));
}

#[test]
fn d16_hooks_run_with_a_path_and_the_task_environment() {
    let probe = tempfile::tempdir().unwrap();
    let hook = |name: &str| {
        format!(
            "[\"sh\", \"-c\", \"env > {}/{name}.env\"]",
            probe.path().display()
        )
    };
    let agent = Setup::new("d16")
        .set("hooks", "onlaunch", &hook("onlaunch"))
        .set("hooks", "ondestroy", &hook("ondestroy"))
        .start();
    let c = agent.executor("exit 0").env("FOO", "from-task").build();
    agent.launch_ok(&c);
    assert_eq!(agent.wait(&c).status, Some(0));
    for name in ["onlaunch", "ondestroy"] {
        let path = probe.path().join(format!("{name}.env"));
        wait_until(Duration::from_secs(10), &format!("the {name} hook"), || {
            fs::read_to_string(&path).is_ok_and(|t| t.contains("FOO="))
        });
        let env = fs::read_to_string(&path).unwrap();
        let has = |line: &str| env.lines().any(|l| l == line);
        assert!(has("FOO=from-task"), "{name}: {env}");
        assert!(
            has(&format!("DEIMOS_CONTAINER_ID={}", c.id)),
            "{name}: {env}"
        );
        assert!(
            env.lines().any(|l| l.starts_with("PATH=/")),
            "{name}: {env}"
        );
        // The task's environment replaces ours.
        assert!(!env.contains("DEIMOS_CONFIG="), "{name}: {env}");
    }
}

#[test]
fn observe_stops_the_container_on_sigterm_and_exits_with_its_code() {
    let agent = Agent::new("observe-term");
    let c = agent
        .executor("trap 'exit 42' TERM; echo ready; sleep 300 & wait")
        .build();
    agent.launch_ok(&c);
    wait_until(Duration::from_secs(10), "the trap to be installed", || {
        c.sandbox_file("stdout").contains("ready")
    });
    // As the Mesos command executor runs it, and kills it when the task is killed.
    let mut observing = agent.call(&["observe", &c.id]).cwd(&c.sandbox).spawn();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !observing.has_exited(),
        "observe returned while the container runs"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(observing.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let observed = observing.finish(Duration::from_secs(30));
    assert_eq!(observed.code(), Some(42), "{}", observed.stderr);
    assert_eq!(agent.wait(&c).status, Some(42 << 8));
}
