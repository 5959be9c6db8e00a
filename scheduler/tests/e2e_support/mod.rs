//! Harness of the end-to-end tests: runs the real `eremetic` binary on a free port with its own
//! data directory and instance id against the real Docker engine, talks to it over HTTP, and
//! cleans up after itself (the process is killed and its containers removed, even when a test
//! panics).
//!
//! Every test file includes this module with `mod e2e_support;` and uses a different subset of
//! it, hence the `dead_code` allowance.

#![allow(dead_code, unreachable_pub)]

pub mod docker;
pub mod receiver;
pub mod sse;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

/// The image every task runs (busybox-static; built by `scripts/setup`).
pub const IMAGE: &str = "deimos-test/busybox:latest";

/// How long a test waits for a task to reach a state before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How long the service may take to answer its first request.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// How long a SIGTERM'ed service may take to exit.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// Interval between two polls of a task document.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Lines of the service log quoted in failure messages.
const LOG_TAIL_LINES: usize = 40;

/// Terminal task states.
pub const TERMINAL: [&str; 5] = [
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
];

/// Whether `state` is terminal.
pub fn is_terminal(state: &str) -> bool {
    TERMINAL.contains(&state)
}

/// Settings passed to the service as `EREMETIC_<KEY>` environment variables.
#[derive(Debug, Clone)]
pub struct Settings {
    vars: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new()
    }
}

impl Settings {
    /// Listening on 127.0.0.1, quick kills, JSON debug logs, no free-space floor; everything
    /// else at the service's defaults.
    pub fn new() -> Settings {
        Settings {
            vars: BTreeMap::new(),
        }
        .set("address", "127.0.0.1")
        .set("kill_grace_period", "1s")
        .set("logformat", "json")
        .set("loglevel", "debug")
        // The tests must not depend on this machine's free disk space.
        .set("data_dir_min_free", "0")
    }

    /// Sets `key` (the YAML name, e.g. `queue_size`) to `value`.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Settings {
        let name = format!("EREMETIC_{}", key.to_ascii_uppercase());
        self.vars.insert(name, value.into());
        self
    }

    /// Leaves `key` at the service's default.
    pub fn unset(mut self, key: &str) -> Settings {
        self.vars
            .remove(&format!("EREMETIC_{}", key.to_ascii_uppercase()));
        self
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// A name unique among all test processes and all services of this one.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{count}-{nanos:08x}", std::process::id())
}

/// The path of the binary under test.
fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_eremetic")
}

/// A running (or stopped, between restarts) `eremetic` service with its own data directory.
///
/// Dropping it kills the process with SIGKILL and removes every container labelled with its
/// instance id.
pub struct Service {
    dir: TempDir,
    instance_id: String,
    settings: Settings,
    process: Option<Child>,
    starts: usize,
    port: u16,
    auth: Option<String>,
    scheme: &'static str,
    host: &'static str,
    client: reqwest::Client,
}

impl Service {
    /// Starts a service with `settings` and waits until it answers `/api/v1/version`.
    pub async fn start(settings: Settings) -> Service {
        docker::require_docker();
        let dir = tempfile::Builder::new()
            .prefix("eremetic-e2e-")
            .tempdir()
            .expect("create the service's temporary directory");
        fs::write(dir.path().join("eremetic.yml"), "").expect("write an empty eremetic.yml");
        fs::create_dir_all(dir.path().join("data")).expect("create the data directory");
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(15));
        let tls = settings.vars.get("EREMETIC_TLS_CERT").map(|cert| {
            let pem = fs::read(cert).expect("read the TLS certificate of the settings");
            reqwest::Certificate::from_pem(&pem).expect("parse the TLS certificate")
        });
        let (scheme, host) = match tls {
            Some(root) => {
                client = client.add_root_certificate(root);
                ("https", "localhost")
            }
            None => ("http", "127.0.0.1"),
        };
        let client = client.build().expect("build the HTTP client");
        let mut service = Service {
            dir,
            instance_id: unique_name("e2e"),
            settings,
            process: None,
            starts: 0,
            port: 0,
            auth: None,
            scheme,
            host,
            client,
        };
        service.launch().await;
        service
    }

    /// Sends every request of the helpers below with this `Authorization` header.
    pub fn use_authorization(&mut self, header: impl Into<String>) {
        self.auth = Some(header.into());
    }

    /// The `Authorization` header the helpers send, if any.
    pub fn authorization(&self) -> Option<&str> {
        self.auth.as_deref()
    }

    /// The temporary directory holding the config file, the data directory and the logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The service's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The instance id: the owner label of its containers.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The port the current process listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.dir.path().join(format!("eremetic.{start}.log"))
    }

    /// Starts a new process on the same data directory, instance id and settings (a new port).
    async fn launch(&mut self) {
        assert!(
            self.process.is_none(),
            "launch: the service is still running"
        );
        self.port = free_port();
        let log_path = self.log_path(self.starts);
        self.starts += 1;
        let log = File::create(&log_path).expect("create the service log file");
        let log_err = log
            .try_clone()
            .expect("duplicate the service log file handle");
        let mut command = Command::new(binary());
        command
            .arg("--config")
            .arg(self.dir.path().join("eremetic.yml"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_BACKTRACE", "1")
            .env("EREMETIC_DATA_DIR", self.data_dir())
            .env("EREMETIC_PORT", self.port.to_string())
            .env("EREMETIC_INSTANCE_ID", &self.instance_id)
            .envs(&self.settings.vars)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        if let Some(host) = std::env::var_os("DOCKER_HOST") {
            command.env("DOCKER_HOST", host);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", binary()));
        self.process = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let url = self.url("/api/v1/version");
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "the service exited during start-up with {status}\n{}",
                    self.log_tail()
                );
            }
            if let Ok(response) = self.client.get(&url).send().await {
                if response.status() == StatusCode::OK {
                    return;
                }
            }
            if started.elapsed() > STARTUP_DEADLINE {
                panic!(
                    "the service did not answer GET /api/v1/version within {STARTUP_DEADLINE:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit status, once the process has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.process
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// The process id of the running service.
    pub fn pid(&self) -> u32 {
        self.process
            .as_ref()
            .expect("the service is not running")
            .id()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                self.process = None;
                return status;
            }
            if started.elapsed() > SHUTDOWN_DEADLINE {
                panic!(
                    "the service did not exit within {SHUTDOWN_DEADLINE:?} of SIGTERM\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process with SIGKILL (`kill -9`) and reaps it.
    pub fn kill_9(&mut self) {
        let mut child = self.process.take().expect("the service is not running");
        child.kill().expect("send SIGKILL to the service");
        child.wait().expect("reap the killed service");
    }

    /// Starts a new process on the same data directory and instance id after a stop.
    pub async fn restart(&mut self) {
        self.launch().await;
    }

    /// Every log line the service's processes wrote, as raw bytes.
    pub fn log_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for start in 0..self.starts {
            if let Ok(content) = fs::read(self.log_path(start)) {
                bytes.extend_from_slice(&content);
            }
        }
        bytes
    }

    /// The last lines of the service log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.log_bytes()).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "--- service log (last {} lines) ---\n{}",
            tail.len(),
            tail.join("\n")
        )
    }

    /// `http://127.0.0.1:<port><path>` (`https://localhost:...` with TLS).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}:{}{path}", self.scheme, self.host, self.port)
    }

    /// The HTTP client of the helpers (it trusts the service's TLS certificate, if any).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A request carrying the configured `Authorization` header.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.raw(method, path);
        match &self.auth {
            Some(header) => builder.header("Authorization", header),
            None => builder,
        }
    }

    /// A request without any `Authorization` header.
    pub fn raw(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends a request; a transport error fails the test with the log tail.
    pub async fn send(&self, builder: RequestBuilder) -> Response {
        match builder.send().await {
            Ok(response) => response,
            Err(error) => panic!("request failed: {error}\n{}", self.log_tail()),
        }
    }

    /// `GET path` with the configured credentials.
    pub async fn get(&self, path: &str) -> Response {
        self.send(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON body and the configured credentials.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// Submits `body` to `POST /api/v1/task`, expects 202 and returns the task id.
    pub async fn submit(&self, body: &Value) -> String {
        let response = self.post_json("/api/v1/task", body).await;
        self.accepted_id(response, body).await
    }

    /// The task id of a 202 answer to a submission of `body`.
    pub async fn accepted_id(&self, response: Response, body: &Value) -> String {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status != StatusCode::ACCEPTED {
            panic!(
                "submit {body} answered {status}, expected 202: {text}\n{}",
                self.log_tail()
            );
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::String(id)) => id,
            _ => panic!("submit answered 202 with {text:?}, expected a JSON string (the task id)"),
        }
    }

    /// `GET /api/v1/task/{id}`, expecting 200.
    pub async fn task(&self, id: &str) -> Value {
        let response = self.get(&format!("/api/v1/task/{id}")).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            panic!(
                "GET task {id} answered {status}: {text}\n{}",
                self.log_tail()
            );
        }
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("GET task {id}: body is not JSON ({error}): {text}"))
    }

    /// Polls the task until `done` holds for its document; fails after [`DEADLINE`] with the
    /// document and the log tail. `what` describes the awaited condition.
    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let task = self.task(id).await;
            if done(&task) {
                return task;
            }
            if started.elapsed() > DEADLINE {
                self.fail(
                    &format!("task {id} did not become {what} within {DEADLINE:?}"),
                    &task,
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the task's current state is `state`; fails at once if the task ends in
    /// another terminal state.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        let task = self
            .wait_for(id, state, |task| {
                let current = current_state(task);
                current == state || is_terminal(&current)
            })
            .await;
        if current_state(&task) != state {
            self.fail(&format!("task {id} ended before reaching {state}"), &task);
        }
        task
    }

    /// Waits until the task is in a terminal state and returns its document.
    pub async fn wait_terminal(&self, id: &str) -> Value {
        self.wait_for(id, "terminal", |task| is_terminal(&current_state(task)))
            .await
    }

    /// Waits until the task ended in `state` and returns its document.
    pub async fn wait_end(&self, id: &str, state: &str) -> Value {
        let task = self.wait_terminal(id).await;
        if current_state(&task) != state {
            self.fail(&format!("task {id} ended, but not as {state}"), &task);
        }
        task
    }

    /// Fails the test with `message`, the task document and the log tail.
    pub fn fail(&self, message: &str, task: &Value) -> ! {
        let document = serde_json::to_string_pretty(task).unwrap_or_else(|_| task.to_string());
        panic!("{message}\ntask document: {document}\n{}", self.log_tail());
    }

    /// `GET /api/v1/task/{id}/{stream}` (no follow), expecting 200; the body as text.
    pub async fn output(&self, id: &str, stream: &str) -> String {
        let response = self.get(&format!("/api/v1/task/{id}/{stream}")).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            panic!(
                "GET {stream} of {id} answered {status}: {text}\n{}",
                self.log_tail()
            );
        }
        text
    }

    /// `GET /api/v1/task?state=...` (all states when `state` is `None`): the documents.
    pub async fn list(&self, query: &str) -> Vec<Value> {
        let response = self.get(&format!("/api/v1/task{query}")).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            panic!(
                "GET /api/v1/task{query} answered {status}: {text}\n{}",
                self.log_tail()
            );
        }
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("list is not JSON ({error}): {text}"))
    }

    /// `POST /api/v1/task/{id}/kill`, expecting 202.
    pub async fn kill_task(&self, id: &str) {
        let response = self
            .send(self.request(Method::POST, &format!("/api/v1/task/{id}/kill")))
            .await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status != StatusCode::ACCEPTED {
            panic!(
                "kill {id} answered {status}, expected 202: {text}\n{}",
                self.log_tail()
            );
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        docker::remove_labelled("io.deimos.owner", &self.instance_id);
    }
}

/// The current (last) state of a task document; `""` without history.
pub fn current_state(task: &Value) -> String {
    history(task).last().cloned().unwrap_or_default()
}

/// The states of a task's status history, oldest first.
pub fn history(task: &Value) -> Vec<String> {
    task["status"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| entry["status"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A v1 request for the test image running `command` with small resources.
pub fn shell_task(command: &str) -> Value {
    serde_json::json!({"image": IMAGE, "command": command, "cpu": 0.1, "mem": 32})
}

/// `task` with the members of `extra` added or replaced.
pub fn with(mut task: Value, extra: Value) -> Value {
    if let (Some(task), Some(extra)) = (task.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            task.insert(key.clone(), value.clone());
        }
    }
    task
}

/// The `Authorization` value of HTTP Basic credentials.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// Whether `haystack` contains `needle` (raw bytes).
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}
