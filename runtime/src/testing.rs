//! Test fakes (feature `test-util`, and this crate's own tests): [`FakeRuntime`], a scripted
//! engine that records every call. Release builds never compile this module.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use nix::sys::signal::Signal;

use crate::runtime::logs::write_log_stream_with;
use crate::runtime::{
    ContainerInfo, ContainerRuntime, ExitStatus, ExposedPort, ImageInfo, ImageSource, LabelFilter,
    ListedContainer, LogOptions, LogTotals, RuntimeError, UsageStats,
};
use crate::spec::{ContainerSpec, Limits, RegistryAuth};

/// One answer of the fake engine to a log request: the engine's whole log so far (replayed
/// from the start, as Docker does for the same `since`), then how the stream ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAnswer {
    /// The chunks in order: `(true, text)` on stdout, `(false, text)` on stderr.
    pub chunks: Vec<(bool, &'static str)>,
    /// The stream breaks after the chunks as if the engine went away (else it ends cleanly).
    pub lost: bool,
}

/// A scripted engine. Calls are recorded as short strings (`"create task.1"`, `"start c1"`,
/// `"ensure_image app:1 force=true anonymous"`, `"wait c1"`, `"logs c1"`, `"remove c1"`, ...);
/// answers come from its settings and queues:
///
/// - the image is present unless [`FakeRuntime::without_image`]; `create` then fails with
///   [`RuntimeError::ImageNotFound`] until `ensure_image` pulls it;
/// - a name added with [`FakeRuntime::add_leftover`] conflicts on `create` until removed;
/// - every container created is `c1`; `start` fails when [`FakeRuntime::failing_start`];
/// - `inspect_json` describes the last container created ([`FakeRuntime::FAKE_IP`] on its
///   network, its sandbox mounted), or fails as for a missing container before any `create`;
/// - `wait` takes the next scripted answer and reports the container gone when none is left;
/// - `stream_logs` takes the next scripted answer; once they are used up it replays the last
///   one's output, ending cleanly (as Docker does for a stopped container), and reports the
///   container gone when none was ever scripted;
/// - the other operations fail as an unreachable engine would.
#[derive(Debug)]
pub struct FakeRuntime {
    calls: Mutex<Vec<String>>,
    image_present: AtomicBool,
    start_fails: bool,
    exposed: Vec<ExposedPort>,
    leftovers: Mutex<Vec<String>>,
    waits: Mutex<VecDeque<Result<ExitStatus, RuntimeError>>>,
    logs: Mutex<VecDeque<LogAnswer>>,
    last_log: Mutex<Option<LogAnswer>>,
    hold_logs: bool,
    exited: AtomicBool,
    exit_seen: tokio::sync::Notify,
    created: Mutex<Option<ContainerSpec>>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self {
            calls: Mutex::default(),
            image_present: AtomicBool::new(true),
            start_fails: false,
            exposed: Vec::new(),
            leftovers: Mutex::default(),
            waits: Mutex::default(),
            logs: Mutex::default(),
            last_log: Mutex::default(),
            hold_logs: false,
            exited: AtomicBool::new(false),
            exit_seen: tokio::sync::Notify::new(),
            created: Mutex::default(),
        }
    }
}

/// The error of an engine that does not answer (what Docker's client reports when its socket
/// refuses connections).
pub fn unreachable(operation: &'static str) -> RuntimeError {
    RuntimeError::Docker {
        operation,
        target: "c1".into(),
        reason: "error trying to connect: Connection refused".into(),
    }
}

impl FakeRuntime {
    /// The address `inspect_json` gives the container on its network.
    pub const FAKE_IP: &'static str = "172.17.0.2";

    /// The image is missing until pulled.
    pub fn without_image(self) -> Self {
        self.image_present.store(false, Ordering::SeqCst);
        self
    }

    /// Every `start` fails (as when a host port is taken).
    pub fn failing_start(self) -> Self {
        Self {
            start_fails: true,
            ..self
        }
    }

    /// Every `stream_logs` answers only once a `wait` has reported an exit (a stream that the
    /// engine ends, for whatever reason, just after the container's exit is seen).
    pub fn holding_logs_until_exit(self) -> Self {
        Self {
            hold_logs: true,
            ..self
        }
    }

    /// The image exposes these ports.
    pub fn with_exposed_ports(self, exposed: Vec<ExposedPort>) -> Self {
        Self { exposed, ..self }
    }

    /// A leftover container holds `name` until it is removed.
    pub fn add_leftover(&self, name: &str) {
        lock(&self.leftovers).push(name.to_owned());
    }

    /// Queues answers of `wait`.
    pub fn script_waits(
        &self,
        answers: impl IntoIterator<Item = Result<ExitStatus, RuntimeError>>,
    ) {
        lock(&self.waits).extend(answers);
    }

    /// Queues answers of `stream_logs`.
    pub fn script_logs(&self, answers: impl IntoIterator<Item = LogAnswer>) {
        lock(&self.logs).extend(answers);
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    fn record(&self, call: impl Into<String>) {
        lock(&self.calls).push(call.into());
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn ensure_image(
        &self,
        image: &str,
        force_pull: bool,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageSource, RuntimeError> {
        let user = auth.map_or("anonymous", |auth| auth.username.as_str());
        self.record(format!("ensure_image {image} force={force_pull} {user}"));
        match self.image_present.swap(true, Ordering::SeqCst) && !force_pull {
            true => Ok(ImageSource::Local),
            false => Ok(ImageSource::Pulled),
        }
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
        self.record(format!("create {name}").trim_end());
        if !self.image_present.load(Ordering::SeqCst) {
            return Err(RuntimeError::ImageNotFound {
                image: spec.image.clone(),
                reason: "absent".into(),
            });
        }
        if lock(&self.leftovers).contains(&name) {
            return Err(RuntimeError::NameConflict {
                name,
                reason: "already in use (HTTP 409)".into(),
            });
        }
        *lock(&self.created) = Some(spec.clone());
        Ok("c1".into())
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("start {id}"));
        match self.start_fails {
            true => Err(RuntimeError::Docker {
                operation: "start",
                target: id.into(),
                reason: "port is already allocated".into(),
            }),
            false => Ok(()),
        }
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        self.record(format!("wait {id}"));
        let next = lock(&self.waits).pop_front();
        let answer = next.unwrap_or_else(|| Err(RuntimeError::NoSuchContainer { id: id.into() }));
        if answer.is_ok() {
            self.exited.store(true, Ordering::SeqCst);
            self.exit_seen.notify_waiters();
        }
        answer
    }

    async fn stop(&self, _id: &str, _grace: Duration) -> Result<(), RuntimeError> {
        Err(unreachable("stop"))
    }

    async fn kill(&self, _id: &str, _signal: Signal) -> Result<(), RuntimeError> {
        Err(unreachable("kill"))
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("remove {id}"));
        lock(&self.leftovers).retain(|name| name != id);
        Ok(())
    }

    async fn inspect(&self, _id: &str) -> Result<ContainerInfo, RuntimeError> {
        Err(unreachable("inspect"))
    }

    async fn inspect_json(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        self.record(format!("inspect_json {id}"));
        let created = lock(&self.created).clone();
        let spec = created.ok_or_else(|| RuntimeError::NoSuchContainer { id: id.to_owned() })?;
        let mode = spec.network.as_docker();
        let mounts: Vec<serde_json::Value> = spec
            .sandbox
            .iter()
            .map(|sandbox| {
                serde_json::json!({
                    "Type": "bind",
                    "Source": sandbox.host_dir,
                    "Destination": sandbox.container_dir,
                })
            })
            .collect();
        let exited = self.exited.load(Ordering::SeqCst);
        Ok(serde_json::json!({
            "Id": "c1",
            "Name": format!("/{}", spec.name.unwrap_or_default()),
            "Config": { "Image": spec.image, "Labels": spec.labels },
            "State": { "Running": !exited, "Pid": if exited { 0 } else { 4242 } },
            "HostConfig": { "NetworkMode": mode },
            "Mounts": mounts,
            "NetworkSettings": { "Networks": { mode.clone(): { "IPAddress": Self::FAKE_IP } } },
        }))
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
        while self.hold_logs && !self.exited.load(Ordering::SeqCst) {
            let exit_seen = self.exit_seen.notified();
            tokio::pin!(exit_seen);
            // Registered before the check, so a notification in between is not missed.
            exit_seen.as_mut().enable();
            if self.exited.load(Ordering::SeqCst) {
                break;
            }
            exit_seen.await;
        }
        let next = lock(&self.logs).pop_front();
        let answer = match next {
            Some(answer) => answer,
            None => match lock(&self.last_log).clone() {
                Some(last) => LogAnswer {
                    lost: false,
                    ..last
                },
                None => return Err(RuntimeError::NoSuchContainer { id: id.into() }),
            },
        };
        *lock(&self.last_log) = Some(answer.clone());
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
