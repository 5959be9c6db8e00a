//! Time from `POST /api/v1/task` until the task is `TASK_RUNNING`, against starting the same
//! container directly through the Engine API with the deimos runtime library
//! (`ContainerRuntime::launch`: create + start), in alternating pairs.
//!
//! The service side is watched on `GET /api/v1/events` (subscribed before posting, events
//! stamped when they arrive); without an event stream, the task is polled every 5 ms.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use deimos_runtime::runtime::{ContainerRuntime, DockerRuntime};
use deimos_runtime::spec::{
    labels, Command, ContainerSpec, EnvVar, Limits, Sandbox, DEFAULT_SANDBOX_MOUNT,
};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::Method;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::{uri, Connection};
use crate::error::{BenchError, Result};
use crate::server::{Server, Settings, IMAGE};
use crate::stats::{median, Row, Target};
use crate::tasks;

/// Measured pairs (one task through the service and one direct launch each).
const PAIRS: usize = 10;
/// Unmeasured pairs first (image metadata, connections, the store's first pages).
const WARM_UP_PAIRS: usize = 1;
/// The target of median(service) / median(direct).
const TARGET_RATIO: f64 = 1.2;

/// The task: long enough never to end by itself during a pair.
const COMMAND: &str = "sleep 30";
const CPUS: f64 = 0.1;
const MEM_MIB: u64 = 32;

/// How long a launch or a kill may take.
const STEP_LIMIT: Duration = Duration::from_secs(60);
/// Polling interval when the service has no event stream.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// Runs the pairs; returns the rows and notes.
pub(crate) async fn bench() -> Result<(Vec<Row>, Vec<String>)> {
    let server = Server::start(Settings {
        name: "launch",
        cpus: 2.0,
        mem_mib: 4096,
    })
    .await?;
    let docker = DockerRuntime::connect(None)
        .await
        .map_err(BenchError::docker("connect to the Docker engine"))?;
    docker
        .inspect_image(IMAGE)
        .await
        .map_err(BenchError::docker(format!(
            "inspect the test image {IMAGE}"
        )))?;
    let direct_containers = DirectContainers::default();
    let mut connection = Connection::open(server.addr()).await?;
    let mut watch = Watch::open(server.addr()).await?;
    let body = tasks::body(COMMAND, CPUS, MEM_MIB)?;

    let (mut via_service, mut direct) = (Vec::new(), Vec::new());
    for pair in 0..WARM_UP_PAIRS + PAIRS {
        // Alternate which side goes first, so that drift of the machine hits both alike.
        let service_first = pair % 2 == 0;
        let mut times = [Duration::ZERO; 2];
        for service_side in [service_first, !service_first] {
            times[usize::from(!service_side)] = if service_side {
                launch_through_service(&mut connection, &mut watch, &body).await?
            } else {
                let sandbox_parent = server.temp_dir().join("direct");
                launch_directly(&docker, &direct_containers, &sandbox_parent, pair).await?
            };
        }
        if pair >= WARM_UP_PAIRS {
            via_service.push(times[0]);
            direct.push(times[1]);
        }
    }
    let no_samples = || BenchError::Check("launch: no samples".to_owned());
    let service_median = median(&via_service).ok_or_else(no_samples)?;
    let direct_median = median(&direct).ok_or_else(no_samples)?;
    let ratio = service_median.as_secs_f64() / direct_median.as_secs_f64();
    let as_ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let runs = PAIRS as u64;
    let rows = vec![
        Row::value(
            format!("POST -> TASK_RUNNING ({}), median", watch.describe()),
            runs,
            as_ms(service_median),
            "ms",
        )
        .percentiles(&via_service),
        Row::value(
            "direct DockerRuntime::launch, median",
            runs,
            as_ms(direct_median),
            "ms",
        )
        .percentiles(&direct),
        Row::value("launch ratio of medians service/direct", runs, ratio, "x")
            .target(Target::AtMost(TARGET_RATIO)),
    ];
    let notes = match &watch {
        Watch::Events(_) => Vec::new(),
        Watch::Polling => vec![format!(
            "GET /api/v1/events was not available: task states were polled every {POLL_EVERY:?}"
        )],
    };
    Ok((rows, notes))
}

/// One task through the service: the time from before the POST until `TASK_RUNNING` arrived;
/// then the task is killed and its end awaited (not timed).
async fn launch_through_service(
    connection: &mut Connection,
    watch: &mut Watch,
    body: &Bytes,
) -> Result<Duration> {
    watch.drain();
    let start = Instant::now();
    let id = tasks::submit(connection, body).await?;
    let running = watch.wait(connection, &id, "TASK_RUNNING").await?;
    let elapsed = running.saturating_duration_since(start);
    tasks::kill(connection, &id).await?;
    watch.wait(connection, &id, "TASK_KILLED").await?;
    Ok(elapsed)
}

/// One direct launch of the container the service would create (timed), then its removal
/// (not timed).
async fn launch_directly(
    docker: &DockerRuntime,
    containers: &DirectContainers,
    sandbox_parent: &Path,
    pair: usize,
) -> Result<Duration> {
    let name = format!("eremetic-bench-direct-{}-{pair}", std::process::id());
    let sandbox = sandbox_parent.join(&name);
    fs::create_dir_all(&sandbox).map_err(BenchError::io(format!(
        "create the sandbox {}",
        sandbox.display()
    )))?;
    let spec = direct_spec(&name, &sandbox);
    containers.track(&name);
    let start = Instant::now();
    let id = docker
        .launch(&spec)
        .await
        .map_err(BenchError::docker(format!("launch container {name}")))?;
    let elapsed = start.elapsed();
    docker
        .remove(&id)
        .await
        .map_err(BenchError::docker(format!("remove container {name}")))?;
    Ok(elapsed)
}

/// What the service's local backend creates for the task (see
/// `src/backend/local/spec.rs`): `sh -c` command, CPU shares and CFS quota, memory limit,
/// Mesos-style environment, identifying labels and the sandbox mount.
fn direct_spec(name: &str, sandbox: &Path) -> ContainerSpec {
    let owner = format!("eremetic-bench-direct-{}", std::process::id());
    let labels: BTreeMap<String, String> = [
        (labels::MANAGED_BY, "eremetic-bench"),
        (labels::TASK_ID, name),
        (labels::CONTAINER_ID, name),
        (labels::OWNER, owner.as_str()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    ContainerSpec {
        name: Some(name.to_owned()),
        image: IMAGE.to_owned(),
        command: Command::Shell(COMMAND.to_owned()),
        env: vec![
            EnvVar::new("MESOS_TASK_ID", name),
            EnvVar::new("MESOS_SANDBOX", DEFAULT_SANDBOX_MOUNT),
        ],
        limits: Limits::from_allocation(Some(CPUS), Some(MEM_MIB as f64), true),
        labels,
        sandbox: Some(Sandbox {
            host_dir: sandbox.to_owned(),
            container_dir: DEFAULT_SANDBOX_MOUNT.to_owned(),
        }),
        ..ContainerSpec::default()
    }
}

/// Containers of the direct side, removed when the benchmark ends (also when it fails).
#[derive(Default)]
struct DirectContainers {
    names: RefCell<Vec<String>>,
}

impl DirectContainers {
    fn track(&self, name: &str) {
        self.names.borrow_mut().push(name.to_owned());
    }
}

impl Drop for DirectContainers {
    fn drop(&mut self) {
        let names = self.names.borrow();
        if names.is_empty() {
            return;
        }
        // Normally already removed; `docker rm -f` of a missing one only complains.
        let removed = Process::new("docker")
            .args(["rm", "-f", "-v"])
            .args(names.iter())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(error) = removed {
            eprintln!("bench: cleaning up the direct containers: run docker rm: {error}");
        }
    }
}

/// How task states are observed.
enum Watch {
    /// `GET /api/v1/events`.
    Events(Events),
    /// `GET /api/v1/task/{id}` every [`POLL_EVERY`].
    Polling,
}

impl Watch {
    async fn open(addr: SocketAddr) -> Result<Watch> {
        Ok(match Events::open(addr).await? {
            Some(events) => Watch::Events(events),
            None => Watch::Polling,
        })
    }

    fn describe(&self) -> &'static str {
        match self {
            Watch::Events(_) => "SSE",
            Watch::Polling => "polled",
        }
    }

    fn drain(&mut self) {
        if let Watch::Events(events) = self {
            while events.lines.try_recv().is_ok() {}
        }
    }

    /// When the task was seen in `wanted`.
    async fn wait(
        &mut self,
        connection: &mut Connection,
        id: &str,
        wanted: &str,
    ) -> Result<Instant> {
        match self {
            Watch::Events(events) => events.wait_for(id, wanted).await,
            Watch::Polling => {
                tasks::wait_for_state(connection, id, wanted, POLL_EVERY, STEP_LIMIT).await
            }
        }
    }
}

/// The `data:` lines of the server-sent event stream, stamped on arrival.
struct Events {
    lines: mpsc::UnboundedReceiver<(Instant, String)>,
    reader: JoinHandle<()>,
}

impl Events {
    /// Subscribes; `None` when the service answers anything but 200.
    async fn open(addr: SocketAddr) -> Result<Option<Events>> {
        let mut connection = Connection::open(addr).await?;
        let response = connection
            .send(&Method::GET, &uri("/api/v1/events")?, None)
            .await?;
        if response.status() != 200 {
            return Ok(None);
        }
        let mut body = response.into_body();
        let (sender, lines) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            // The connection lives as long as the stream is read.
            let _connection = connection;
            let mut pending: Vec<u8> = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let arrived = Instant::now();
                pending.extend_from_slice(&data);
                while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line);
                    if let Some(data) = text.trim_end().strip_prefix("data:") {
                        if sender.send((arrived, data.trim().to_owned())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Some(Events { lines, reader }))
    }

    /// The arrival of the first event of task `id` naming state `wanted`; fails when the task
    /// ends in another state first, the stream ends, or [`STEP_LIMIT`] passes.
    async fn wait_for(&mut self, id: &str, wanted: &str) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + STEP_LIMIT;
        let quoted = format!("\"{wanted}\"");
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Err(_) => {
                    return Err(BenchError::Timeout(format!(
                        "no {wanted} event for task {id} within {STEP_LIMIT:?}"
                    )))
                }
                Ok(None) => {
                    return Err(BenchError::Check(format!(
                        "GET /api/v1/events ended while waiting for {wanted} of task {id}"
                    )))
                }
                Ok(Some(line)) => line,
            };
            let (arrived, data) = line;
            if !data.contains(id) {
                continue;
            }
            if data.contains(&quoted) {
                return Ok(arrived);
            }
            if ended(&data) {
                return Err(BenchError::Check(format!(
                    "task {id} ended while waiting for {wanted}: event {data}"
                )));
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Whether an event's data names a terminal state.
fn ended(data: &str) -> bool {
    tasks::TERMINAL
        .iter()
        .any(|state| data.contains(&format!("\"{state}\"")))
}
