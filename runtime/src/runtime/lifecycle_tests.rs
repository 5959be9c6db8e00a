//! Tests of the [`super::lifecycle`] helpers against the scripted fake runtime whose log
//! streams are written by the real writer (real files, rotation and skipping).

use super::lifecycle::{
    launch_replacing_leftover, publish_allocated_ports, run_to_exit, EnginePolicy,
};
use super::*;
use crate::spec::{PortMapping, Protocol};
use crate::testing::{unreachable, FakeRuntime, LogAnswer};

fn spec(name: &str) -> ContainerSpec {
    ContainerSpec {
        image: "app:1".into(),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn quick(ride_out: Option<Duration>) -> EnginePolicy {
    EnginePolicy {
        ride_out,
        first_pause: Duration::from_millis(1),
        max_pause: Duration::from_millis(5),
        drain: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_name_held_by_a_leftover_is_freed_and_the_launch_repeated() {
    let runtime = FakeRuntime::default();
    runtime.add_leftover("task.1");
    let launched = launch_replacing_leftover(&runtime, &spec("task.1"))
        .await
        .unwrap();
    assert_eq!(launched.id, "c1");
    assert_eq!(launched.replaced_leftover.as_deref(), Some("task.1"));
    assert_eq!(
        runtime.calls(),
        [
            "create task.1",
            "remove task.1",
            "create task.1",
            "start c1"
        ]
    );
}

#[tokio::test]
async fn a_free_name_is_launched_without_removing_anything() {
    let runtime = FakeRuntime::default();
    let launched = launch_replacing_leftover(&runtime, &spec("task.1"))
        .await
        .unwrap();
    assert_eq!(launched.replaced_leftover, None);
    assert_eq!(runtime.calls(), ["create task.1", "start c1"]);
}

#[tokio::test]
async fn allocated_ports_are_paired_in_order_with_the_sorted_exposed_ports() {
    let runtime = FakeRuntime::default().with_exposed_ports(vec![
        ExposedPort {
            port: 8080,
            protocol: Protocol::Tcp,
        },
        ExposedPort {
            port: 53,
            protocol: Protocol::Udp,
        },
    ]);
    let mut spec = ContainerSpec {
        force_pull: true,
        ..spec("task.1")
    };
    publish_allocated_ports(&runtime, &mut spec, &[31000, 31001, 31002])
        .await
        .unwrap();
    let mapping = |host_port, container_port, protocol| PortMapping {
        host_port,
        container_port,
        protocol,
    };
    assert_eq!(
        spec.ports,
        [
            mapping(31000, 53, Protocol::Udp),
            mapping(31001, 8080, Protocol::Tcp)
        ]
    );
    // Pulled once here (as asked); the launch must not pull again.
    assert!(!spec.force_pull);
    assert_eq!(
        runtime.calls(),
        [
            "ensure_image app:1 force=true anonymous",
            "inspect_image app:1"
        ]
    );
}

#[tokio::test]
async fn an_engine_that_goes_away_during_the_wait_is_ridden_out_and_no_output_repeats() {
    let sandbox = tempfile::tempdir().unwrap();
    // Output written before this follower started (an earlier watcher's) stays as it is.
    std::fs::write(sandbox.path().join(STDOUT_FILE), "earlier\n").unwrap();
    let runtime = FakeRuntime::default();
    runtime.script_waits([
        Err(unreachable("wait")),
        Err(unreachable("wait")),
        Ok(exit_status(3, false)),
    ]);
    runtime.script_logs([
        // The stream breaks in the middle of a line when the engine goes away...
        LogAnswer {
            chunks: vec![(true, "one\n"), (false, "warn\n"), (true, "tw")],
            lost: true,
        },
        // ...is refused while it is away...
        LogAnswer {
            chunks: vec![],
            lost: true,
        },
        // ...and replays the whole log once it is back.
        LogAnswer {
            chunks: vec![
                (true, "one\n"),
                (false, "warn\n"),
                (true, "two\n"),
                (true, "three\n"),
                (false, "done\n"),
            ],
            lost: false,
        },
    ]);
    let end = run_to_exit(
        &runtime,
        "c1",
        sandbox.path(),
        LogOptions::default(),
        &quick(Some(Duration::from_secs(30))),
    )
    .await;
    assert_eq!(end.exit.unwrap().exit_code, 3);
    let totals = end.output.unwrap();
    let read = |name| std::fs::read_to_string(sandbox.path().join(name)).unwrap();
    assert_eq!(read(STDOUT_FILE), "earlier\none\ntwo\nthree\n");
    assert_eq!(read(STDERR_FILE), "warn\ndone\n");
    assert_eq!((totals.stdout_bytes, totals.stderr_bytes), (14, 10));
    let calls = runtime.calls();
    assert_eq!(calls.iter().filter(|c| *c == "wait c1").count(), 3);
    // Three streams, and the replay after the exit that makes sure the outage cut nothing.
    assert_eq!(calls.iter().filter(|c| *c == "logs c1").count(), 4);
}

#[tokio::test]
async fn an_engine_away_longer_than_the_ride_out_ends_the_wait_with_its_error() {
    let sandbox = tempfile::tempdir().unwrap();
    let runtime = FakeRuntime::default();
    runtime.script_waits([Err(unreachable("wait")), Ok(exit_status(0, false))]);
    runtime.script_logs([LogAnswer {
        chunks: vec![(true, "one\n")],
        lost: false,
    }]);
    let end = run_to_exit(
        &runtime,
        "c1",
        sandbox.path(),
        LogOptions::default(),
        &quick(Some(Duration::ZERO)),
    )
    .await;
    let error = end.exit.unwrap_err();
    assert!(error.to_string().contains("Connection refused"), "{error}");
    assert_eq!(end.output.unwrap().stdout_bytes, 4);
}

#[tokio::test]
async fn a_container_that_disappears_ends_the_wait_at_once() {
    let sandbox = tempfile::tempdir().unwrap();
    let runtime = FakeRuntime::default();
    let end = run_to_exit(
        &runtime,
        "c1",
        sandbox.path(),
        LogOptions::default(),
        &quick(None),
    )
    .await;
    assert!(end.exit.unwrap_err().is_no_such_container());
    assert!(end.output.unwrap_err().is_no_such_container());
    let mut calls = runtime.calls();
    calls.sort();
    assert_eq!(calls, ["logs c1", "wait c1"]);
}

#[tokio::test]
async fn a_log_stream_closed_cleanly_by_a_going_engine_is_resumed_after_the_exit() {
    let sandbox = tempfile::tempdir().unwrap();
    let runtime = FakeRuntime::default();
    runtime.script_waits([Err(unreachable("wait")), Ok(exit_status(0, false))]);
    runtime.script_logs([
        // Ended without an error when the engine stopped, the container still running.
        LogAnswer {
            chunks: vec![(true, "one\n")],
            lost: false,
        },
        LogAnswer {
            chunks: vec![(true, "one\n"), (true, "two\n")],
            lost: false,
        },
    ]);
    let end = run_to_exit(
        &runtime,
        "c1",
        sandbox.path(),
        LogOptions::default(),
        &quick(None),
    )
    .await;
    assert_eq!(end.exit.unwrap().exit_code, 0);
    assert_eq!(end.output.unwrap().stdout_bytes, 8);
    let stdout = std::fs::read_to_string(sandbox.path().join(STDOUT_FILE)).unwrap();
    assert_eq!(stdout, "one\ntwo\n");
}

#[tokio::test]
async fn a_log_stream_closed_cleanly_during_an_outage_and_seen_after_the_exit_is_resumed() {
    let sandbox = tempfile::tempdir().unwrap();
    // The stream's clean end (the engine going away) is only seen after the exit: both were
    // ready at once, and the exit was taken first.
    let runtime = FakeRuntime::default().holding_logs_until_exit();
    runtime.script_waits([Err(unreachable("wait")), Ok(exit_status(0, false))]);
    runtime.script_logs([
        LogAnswer {
            chunks: vec![(true, "one\n")],
            lost: false,
        },
        LogAnswer {
            chunks: vec![(true, "one\n"), (false, "two\n")],
            lost: false,
        },
    ]);
    let end = run_to_exit(
        &runtime,
        "c1",
        sandbox.path(),
        LogOptions::default(),
        &quick(None),
    )
    .await;
    assert_eq!(end.exit.unwrap().exit_code, 0);
    let read = |name| std::fs::read_to_string(sandbox.path().join(name)).unwrap();
    assert_eq!(
        (read(STDOUT_FILE), read(STDERR_FILE)),
        ("one\n".into(), "two\n".into())
    );
    assert_eq!(end.output.unwrap().stderr_bytes, 4);
}

#[tokio::test]
async fn without_an_exit_the_output_saved_before_the_outage_is_kept() {
    let sandbox = tempfile::tempdir().unwrap();
    let runtime = FakeRuntime::default();
    runtime.script_waits([Err(unreachable("wait"))]);
    runtime.script_logs([LogAnswer {
        chunks: vec![(true, "one\n")],
        lost: false,
    }]);
    let end = run_to_exit(
        &runtime,
        "c1",
        sandbox.path(),
        LogOptions::default(),
        &quick(Some(Duration::ZERO)),
    )
    .await;
    assert!(end.exit.is_err());
    assert_eq!(end.output.unwrap().stdout_bytes, 4);
    let logs = runtime.calls().iter().filter(|c| *c == "logs c1").count();
    assert_eq!(logs, 1, "no replay without an exit");
}
