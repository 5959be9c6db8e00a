//! Harness of hermit's end-to-end tests: a real eremetic service (the `eremetic` library's
//! `server::serve`, on its own runtime and thread, on a listener this harness bound to port 0)
//! with its own data directory and instance id, running tasks in the real Docker engine; and a
//! few HTTP helpers to check what hermit did. Dropping a [`Service`] stops it and removes every
//! container labelled with its instance id, even when a test panics.
//!
//! hermit depends on eremetic only as a dev-dependency, so the `eremetic` binary is not built
//! for these tests: the service runs in the test process instead.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser as _;
use eremetic::config::Cli;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The image every task runs (busybox-static; built by `scripts/setup`).
pub const IMAGE: &str = "deimos-test/busybox:latest";

/// How long a test waits for a task to reach a state before it fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// How long the service may take to answer its first request or to stop.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// Interval between two polls of a task document.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The label holding a container's owner (the service's instance id).
const OWNER_LABEL: &str = "io.deimos.owner";

/// Settings passed to the service as `EREMETIC_<KEY>` environment variables.
#[derive(Debug, Clone)]
pub struct Settings {
    vars: BTreeMap<String, String>,
}

impl Settings {
    /// Quick kills, no free-space floor; everything else at the service's defaults. (The
    /// service writes no logs: a test process has no log subscriber.)
    pub fn new() -> Settings {
        Settings {
            vars: BTreeMap::new(),
        }
        .set("address", "127.0.0.1")
        .set("kill_grace_period", "1s")
        // The tests must not depend on this machine's free disk space.
        .set("data_dir_min_free", "0")
    }

    /// Sets `EREMETIC_<KEY>` (key in lower case, as in the YAML file).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Settings {
        self.vars
            .insert(format!("EREMETIC_{}", key.to_uppercase()), value.into());
        self
    }
}

/// A port nobody listens on: bound on 127.0.0.1, then released.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("a bound listener's address")
        .port()
}

/// A running eremetic service in this process.
pub struct Service {
    dir: TempDir,
    instance_id: String,
    url: String,
    port: u16,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Service {
    /// Starts a service with `settings` and waits until it answers `/api/v1/version`.
    pub async fn start(settings: Settings) -> Service {
        require_docker();
        let dir = tempfile::Builder::new()
            .prefix("hermit-e2e-")
            .tempdir()
            .expect("create the service's temporary directory");
        let instance_id = format!("hermit-e2e-{}", unique_suffix(dir.path()));
        let config = load_config(dir.path(), &instance_id, &settings);
        let (client, scheme, host) = http_client(&settings);
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the service's listener");
        let port = listener
            .local_addr()
            .expect("the listener's address")
            .port();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::spawn(move || serve(config, listener, stopped));
        let mut service = Service {
            dir,
            instance_id,
            url: format!("{scheme}://{host}:{port}"),
            port,
            client,
            stop: Some(stop),
            thread: Some(thread),
        };
        service.wait_ready().await;
        service
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let url = self.url("/api/v1/version");
        loop {
            if self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                let outcome = self.thread.take().map(JoinHandle::join);
                panic!("the service stopped during start-up: {outcome:?}");
            }
            if let Ok(response) = self.client.get(&url).send().await {
                if response.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(
                started.elapsed() < STARTUP_DEADLINE,
                "the service did not answer GET /api/v1/version within {STARTUP_DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The temporary directory holding the config file and the data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port><path>` (`https://localhost:...` with TLS).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET path`: the status and the body as text.
    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// Submits `body` to `POST /api/v1/task`, expects 202 and returns the task id.
    pub async fn submit(&self, body: &Value) -> String {
        let response = self
            .client
            .post(self.url("/api/v1/task"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST /api/v1/task: {error}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::ACCEPTED, "submit {body}: {text}");
        match serde_json::from_str(&text) {
            Ok(Value::String(id)) => id,
            _ => panic!("submit answered 202 with {text:?}, expected the task id"),
        }
    }

    /// `GET /api/v1/task/{id}`, expecting 200.
    pub async fn task(&self, id: &str) -> Value {
        let (status, text) = self.get(&format!("/api/v1/task/{id}")).await;
        assert_eq!(status, StatusCode::OK, "GET task {id}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("task {id} ({error}): {text}"))
    }

    /// `GET /api/v1/task/{id}/{stream}` (no follow), expecting 200; the body as text.
    pub async fn output(&self, id: &str, stream: &str) -> String {
        let (status, text) = self.get(&format!("/api/v1/task/{id}/{stream}")).await;
        assert_eq!(status, StatusCode::OK, "GET {stream} of {id}: {text}");
        text
    }

    /// Polls the task until `done` holds for its document; fails the test after [`DEADLINE`].
    async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let task = self.task(id).await;
            if done(&task) {
                return task;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "task {id} did not become {what} within {DEADLINE:?}: {task}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the task's current state is `state`.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        self.wait_for(id, state, |task| current_state(task) == state)
            .await
    }

    /// Waits until the task is terminal and expects that terminal state to be `state`.
    pub async fn wait_end(&self, id: &str, state: &str) -> Value {
        let task = self.wait_for(id, "terminal", is_terminal).await;
        assert_eq!(current_state(&task), state, "{task}");
        task
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A service that does not stop is left behind (the test process ends anyway)
            // rather than hanging the test.
            let started = Instant::now();
            while !thread.is_finished() && started.elapsed() < SHUTDOWN_DEADLINE {
                std::thread::sleep(Duration::from_millis(20));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        remove_containers_of(&self.instance_id);
    }
}

/// The configuration of a service in `dir`: an empty YAML file, then `settings` as
/// environment variables, as the `eremetic` binary would load it.
fn load_config(dir: &Path, instance_id: &str, settings: &Settings) -> eremetic::config::Config {
    let file = dir.join("eremetic.yml");
    fs::write(&file, "").expect("write an empty eremetic.yml");
    let data_dir: PathBuf = dir.join("data");
    fs::create_dir_all(&data_dir).expect("create the data directory");
    let mut vars = settings.vars.clone();
    vars.insert("EREMETIC_DATA_DIR".into(), data_dir.display().to_string());
    vars.insert("EREMETIC_INSTANCE_ID".into(), instance_id.to_owned());
    let cli = Cli::parse_from(["eremetic".as_ref(), "--config".as_ref(), file.as_os_str()]);
    let env = |name: &str| vars.get(name).cloned();
    eremetic::config::load(&cli, &env).expect("a valid test configuration")
}

/// The helpers' HTTP client (trusting the service's certificate, if any), the scheme and the
/// host name of the service's URL.
fn http_client(settings: &Settings) -> (reqwest::Client, &'static str, &'static str) {
    let mut client = reqwest::Client::builder().timeout(Duration::from_secs(15));
    let (scheme, host) = match settings.vars.get("EREMETIC_TLS_CERT") {
        Some(cert) => {
            let pem = fs::read(cert).expect("read the TLS certificate of the settings");
            let root = reqwest::Certificate::from_pem(&pem).expect("parse the TLS certificate");
            client = client.add_root_certificate(root);
            ("https", "localhost")
        }
        None => ("http", "127.0.0.1"),
    };
    (client.build().expect("build the HTTP client"), scheme, host)
}

/// Runs the service on its own runtime until `stopped` fires (or its sender is dropped).
fn serve(
    config: eremetic::config::Config,
    listener: TcpListener,
    stopped: oneshot::Receiver<()>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| format!("building the service's runtime: {error}"))?;
    runtime.block_on(async move {
        listener
            .set_nonblocking(true)
            .map_err(|error| format!("a non-blocking listener: {error}"))?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|error| format!("registering the listener: {error}"))?;
        let shutdown = async move {
            let _ = stopped.await;
        };
        eremetic::server::serve(config, listener, shutdown)
            .await
            .map_err(|error| error.to_string())
    })
}

/// Unique among the test processes and the services of this one: the process id and the
/// temporary directory's (random) name.
fn unique_suffix(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "{}-{}",
        std::process::id(),
        name.trim_start_matches("hermit-e2e-")
    )
}

/// The current (last) state of a task document; `""` without history.
pub fn current_state(task: &Value) -> String {
    task["status"]
        .as_array()
        .and_then(|entries| entries.last())
        .and_then(|entry| entry["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn is_terminal(task: &Value) -> bool {
    let terminal = [
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_LOST",
        "TASK_ERROR",
    ];
    terminal.contains(&current_state(task).as_str())
}

/// Fails the test unless the Docker engine answers and the test image is present.
fn require_docker() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let image = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", IMAGE])
            .output()
            .map_err(|error| format!("cannot run the docker CLI: {error}"))?;
        if !image.status.success() {
            return Err(format!(
                "the Docker engine is unreachable or the test image {IMAGE} is missing: {}",
                String::from_utf8_lossy(&image.stderr).trim()
            ));
        }
        Ok(())
    });
    if let Err(reason) = result {
        panic!("{reason}: run scripts/setup");
    }
}

/// Removes (forcibly) every container the service owned. Best effort: used on drop.
fn remove_containers_of(instance_id: &str) {
    let filter = format!("label={OWNER_LABEL}={instance_id}");
    let Ok(output) = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .arg("rm")
            .arg("-f")
            .args(&ids)
            .output();
    }
}
