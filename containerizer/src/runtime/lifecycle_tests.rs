//! Tests of the [`super::lifecycle`] helpers against a scripted fake runtime whose log
//! streams are written by the real writer (real files, rotation and skipping).

use std::collections::VecDeque;
use std::sync::Mutex;

use bollard::container::LogOutput;

use super::lifecycle::{
    launch_replacing_leftover, publish_allocated_ports, run_to_exit, EnginePolicy,
};
use super::logs::write_log_stream_with;
use super::*;
use crate::spec::{PortMapping, Protocol};

/// One answer of the fake engine to a log request: the engine's whole log so far (replayed
/// from the start, as Docker does for the same `since`), then how the stream ends.
struct LogAnswer {
    chunks: Vec<(bool, &'static str)>,
    lost: bool,
}

/// A scripted engine: answers come from queues; calls are recorded.
#[derive(Default)]
struct ScriptedRuntime {
    calls: Mutex<Vec<String>>,
    /// Names whose creation conflicts with a leftover (until the leftover is removed).
    leftovers: Mutex<Vec<String>>,
    exposed: Vec<ExposedPort>,
    waits: Mutex<VecDeque<Result<ExitStatus, RuntimeError>>>,
    logs: Mutex<VecDeque<LogAnswer>>,
}

fn unreachable(operation: &'static str) -> RuntimeError {
    RuntimeError::Docker {
        operation,
        target: "c1".into(),
        reason: "error trying to connect: Connection refused".into(),
    }
}

impl ScriptedRuntime {
    fn record(&self, call: impl Into<String>) {
        self.calls.lock().unwrap().push(call.into());
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl ContainerRuntime for ScriptedRuntime {
    async fn ensure_image(
        &self,
        image: &str,
        force_pull: bool,
        _auth: Option<&RegistryAuth>,
    ) -> Result<ImageSource, RuntimeError> {
        self.record(format!("ensure_image {image} force={force_pull}"));
        Ok(ImageSource::Local)
    }

    async fn inspect_image(&self, image: &str) -> Result<ImageInfo, RuntimeError> {
        self.record(format!("inspect_image {image}"));
        Ok(ImageInfo {
            id: "sha256:1".into(),
            exposed_ports: self.exposed.clone(),
        })
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let name = spec.name.clone().unwrap_or_default();
        self.record(format!("create {name}"));
        if self.leftovers.lock().unwrap().contains(&name) {
            return Err(RuntimeError::NameConflict {
                name,
                reason: "already in use (HTTP 409)".into(),
            });
        }
        Ok("c1".into())
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("start {id}"));
        Ok(())
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        self.record(format!("wait {id}"));
        let next = self.waits.lock().unwrap().pop_front();
        next.unwrap_or_else(|| Err(RuntimeError::NoSuchContainer { id: id.into() }))
    }

    async fn stop(&self, _id: &str, _grace: Duration) -> Result<(), RuntimeError> {
        Err(unreachable("stop"))
    }

    async fn kill(&self, _id: &str, _signal: Signal) -> Result<(), RuntimeError> {
        Err(unreachable("kill"))
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("remove {id}"));
        self.leftovers.lock().unwrap().retain(|name| name != id);
        Ok(())
    }

    async fn inspect(&self, _id: &str) -> Result<ContainerInfo, RuntimeError> {
        Err(unreachable("inspect"))
    }

    async fn stats(&self, _id: &str) -> Result<UsageStats, RuntimeError> {
        Err(unreachable("stats"))
    }

    async fn update_limits(&self, _id: &str, _limits: &Limits) -> Result<(), RuntimeError> {
        Err(unreachable("update"))
    }

    async fn list(&self, _filters: &[LabelFilter]) -> Result<Vec<ListedContainer>, RuntimeError> {
        Err(unreachable("list"))
    }

    async fn stream_logs(
        &self,
        id: &str,
        dir: &Path,
        options: LogOptions,
    ) -> Result<LogTotals, RuntimeError> {
        self.record(format!("logs {id}"));
        let Some(answer) = self.logs.lock().unwrap().pop_front() else {
            return Err(RuntimeError::NoSuchContainer { id: id.into() });
        };
        let chunks = answer.chunks.iter().map(|&(stdout, text)| {
            let message = text.as_bytes().to_vec().into();
            Ok(match stdout {
                true => LogOutput::StdOut { message },
                false => LogOutput::StdErr { message },
            })
        });
        let totals = write_log_stream_with(id, dir, options, futures::stream::iter(chunks)).await?;
        match answer.lost {
            true => Err(unreachable("logs")),
            false => Ok(totals),
        }
    }
}

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
    let runtime = ScriptedRuntime::default();
    runtime.leftovers.lock().unwrap().push("task.1".into());
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
    let runtime = ScriptedRuntime::default();
    let launched = launch_replacing_leftover(&runtime, &spec("task.1"))
        .await
        .unwrap();
    assert_eq!(launched.replaced_leftover, None);
    assert_eq!(runtime.calls(), ["create task.1", "start c1"]);
}

#[tokio::test]
async fn allocated_ports_are_paired_in_order_with_the_sorted_exposed_ports() {
    let runtime = ScriptedRuntime {
        exposed: vec![
            ExposedPort {
                port: 8080,
                protocol: Protocol::Tcp,
            },
            ExposedPort {
                port: 53,
                protocol: Protocol::Udp,
            },
        ],
        ..Default::default()
    };
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
        ["ensure_image app:1 force=true", "inspect_image app:1"]
    );
}

#[tokio::test]
async fn an_engine_that_goes_away_during_the_wait_is_ridden_out_and_no_output_repeats() {
    let sandbox = tempfile::tempdir().unwrap();
    // Output written before this follower started (an earlier watcher's) stays as it is.
    std::fs::write(sandbox.path().join(STDOUT_FILE), "earlier\n").unwrap();
    let runtime = ScriptedRuntime::default();
    runtime.waits.lock().unwrap().extend([
        Err(unreachable("wait")),
        Err(unreachable("wait")),
        Ok(exit_status(3, false)),
    ]);
    runtime.logs.lock().unwrap().extend([
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
    assert_eq!(calls.iter().filter(|c| *c == "logs c1").count(), 3);
}

#[tokio::test]
async fn an_engine_away_longer_than_the_ride_out_ends_the_wait_with_its_error() {
    let sandbox = tempfile::tempdir().unwrap();
    let runtime = ScriptedRuntime::default();
    runtime
        .waits
        .lock()
        .unwrap()
        .extend([Err(unreachable("wait")), Ok(exit_status(0, false))]);
    runtime.logs.lock().unwrap().push_back(LogAnswer {
        chunks: vec![(true, "one\n")],
        lost: false,
    });
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
    let runtime = ScriptedRuntime::default();
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
    let runtime = ScriptedRuntime::default();
    runtime
        .waits
        .lock()
        .unwrap()
        .extend([Err(unreachable("wait")), Ok(exit_status(0, false))]);
    runtime.logs.lock().unwrap().extend([
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
