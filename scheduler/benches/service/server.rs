//! The service under test: the bench-built `eremetic` binary in a private temp directory
//! (data directory, empty configuration file, log), configured only through `EREMETIC_*`
//! variables, stopped and cleaned up (process and containers) when dropped.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deimos_runtime::spec::labels;

use crate::client::Connection;
use crate::error::{BenchError, Result};

/// The binary under test, built with the bench profile by `cargo bench`. Read at run time
/// (`option_env!`) so that the bench compiles while the crate has no binary yet.
pub(crate) const BINARY: Option<&str> = option_env!("CARGO_BIN_EXE_eremetic");

/// The local test image (built by scripts/setup).
pub(crate) const IMAGE: &str = "deimos-test/busybox:latest";

/// How long the service may take to answer `GET /api/v1/version` after it was started.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Inherited variables the service may need; everything else (any `EREMETIC_*` or Eremetic's
/// unprefixed `PORT`, `MASTER`, ... of the caller's shell) is cleared, so that only this
/// file decides the configuration.
const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "DOCKER_HOST",
    "LANG",
    "MALLOC_ARENA_MAX",
];

/// What differs between the benchmark's service instances.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Labels the temp directory and the instance id.
    pub(crate) name: &'static str,
    /// `cpus`: the CPUs the local backend may hand out.
    pub(crate) cpus: f64,
    /// `mem`: the memory (MiB) the local backend may hand out.
    pub(crate) mem_mib: u64,
}

/// A running service; killed, and its containers removed, when dropped.
pub(crate) struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    instance_id: String,
    env: Vec<(String, String)>,
    config: PathBuf,
    log: PathBuf,
    // Last: removed after the process is gone.
    temp: tempfile::TempDir,
}

impl Server {
    /// Starts the service and waits until it answers `GET /api/v1/version`.
    pub(crate) async fn start(settings: Settings) -> Result<Server> {
        Server::start_with_env(settings, Vec::new()).await
    }

    /// [`Server::start`] with more `EREMETIC_*` settings (`MASTER`, ...), given without the
    /// prefix.
    pub(crate) async fn start_with_env(
        settings: Settings,
        extra: Vec<(&str, String)>,
    ) -> Result<Server> {
        let binary = binary()?;
        let temp = tempfile::Builder::new()
            .prefix(&format!("eremetic-bench-{}-", settings.name))
            .tempdir()
            .map_err(BenchError::io("create the benchmark's temp directory"))?;
        let data_dir = temp.path().join("data");
        fs::create_dir(&data_dir)
            .map_err(BenchError::io(format!("create {}", data_dir.display())))?;
        // An empty file: /etc/eremetic/eremetic.yml must not leak into the measurement.
        let config = temp.path().join("empty.yml");
        fs::write(&config, "").map_err(BenchError::io(format!("write {}", config.display())))?;
        let port = free_port()?;
        let instance_id = format!("eremetic-bench-{}-{}", settings.name, std::process::id());
        let mut env = service_env(settings, &data_dir, port, &instance_id);
        env.extend(
            extra
                .into_iter()
                .map(|(key, value)| (format!("EREMETIC_{key}"), value)),
        );
        let mut server = Server {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            instance_id,
            env,
            config,
            log: temp.path().join("eremetic.log"),
            temp,
        };
        eprintln!(
            "bench: starting {binary} (data in {})",
            server.temp.path().display()
        );
        server.spawn(binary)?;
        server.wait_ready().await?;
        Ok(server)
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The temp directory (for the direct side's sandboxes).
    pub(crate) fn temp_dir(&self) -> &Path {
        self.temp.path()
    }

    /// Kills the process with SIGKILL (no chance to flush anything), starts it again on the
    /// same data directory and port, and returns the time until it answered again.
    pub(crate) async fn kill_and_restart(&mut self) -> Result<Duration> {
        self.kill();
        let start = Instant::now();
        self.spawn(binary()?)?;
        self.wait_ready().await?;
        Ok(start.elapsed())
    }

    /// Resident and peak resident memory of the process, in bytes (`VmRSS`, `VmHWM`).
    pub(crate) fn memory(&self) -> Result<(u64, u64)> {
        let pid = self.pid()?;
        let path = format!("/proc/{pid}/status");
        let status = fs::read_to_string(&path).map_err(BenchError::io(format!("read {path}")))?;
        let field = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kib| kib.trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
                .ok_or_else(|| BenchError::Check(format!("{path} has no {key} field in kB")))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// An error naming what happened to the service, with the end of its log.
    pub(crate) fn failure(&self, what: impl Into<String>) -> BenchError {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let tail_start = text
            .char_indices()
            .rev()
            .nth(2000)
            .map_or(0, |(index, _)| index);
        BenchError::Service {
            what: what.into(),
            log: self.log.clone(),
            tail: text[tail_start..].to_owned(),
        }
    }

    fn pid(&self) -> Result<u32> {
        self.child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| self.failure("is not running"))
    }

    fn spawn(&mut self, binary: &str) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(BenchError::io(format!("open {}", self.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(BenchError::io(format!("open {}", self.log.display())))?;
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(&self.config)
            .env_clear()
            .envs(
                PASSED_THROUGH
                    .iter()
                    .filter_map(|name| std::env::var(name).ok().map(|value| (*name, value))),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.temp.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(BenchError::io(format!("start {binary}")))?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls `GET /api/v1/version` until it answers 200, failing early when the process
    /// exits.
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(self.failure(format!("exited during start-up with {status}")));
                }
            }
            if let Ok(mut connection) = Connection::open(self.addr).await {
                if let Ok((200, _)) = connection.get("/api/v1/version").await {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(self.failure(format!(
                    "did not answer GET /api/v1/version on {} within {START_LIMIT:?}",
                    self.addr
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL; an already exited process is fine.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Removes every container with this instance's owner label (the service is gone, so
    /// nothing relaunches them).
    fn remove_containers(&self) {
        let filter = format!("label={}={}", labels::OWNER, self.instance_id);
        let listed = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .stderr(Stdio::inherit())
            .output();
        let ids: Vec<String> = match listed {
            Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            Ok(output) => {
                eprintln!(
                    "bench: cleaning up: docker ps {filter} exited with {}",
                    output.status
                );
                return;
            }
            Err(error) => {
                eprintln!("bench: cleaning up: run docker ps {filter}: {error}");
                return;
            }
        };
        if ids.is_empty() {
            return;
        }
        let removed = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .stdout(Stdio::null())
            .status();
        if !matches!(removed, Ok(status) if status.success()) {
            eprintln!(
                "bench: cleaning up: docker rm -f of {} containers failed",
                ids.len()
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        self.remove_containers();
    }
}

fn binary() -> Result<&'static str> {
    BINARY.ok_or_else(|| {
        BenchError::Check(
            "the eremetic binary is not part of this build (no CARGO_BIN_EXE_eremetic); \
             run `cargo bench -p eremetic --bench service`"
                .to_owned(),
        )
    })
}

/// A port nobody listens on now: bound, then released for the service.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(BenchError::io("bind 127.0.0.1:0 to find a free port"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(BenchError::io("read the address of the free-port probe"))
}

fn service_env(
    settings: Settings,
    data_dir: &Path,
    port: u16,
    instance_id: &str,
) -> Vec<(String, String)> {
    [
        ("DATA_DIR", data_dir.display().to_string()),
        ("ADDRESS", "127.0.0.1".to_owned()),
        ("PORT", port.to_string()),
        // Large enough never to answer 503 during the benchmark.
        ("QUEUE_SIZE", "1000000".to_owned()),
        ("CPUS", settings.cpus.to_string()),
        ("MEM", settings.mem_mib.to_string()),
        ("INSTANCE_ID", instance_id.to_owned()),
        ("LOGLEVEL", "warn".to_owned()),
        // `sleep` as PID 1 ignores SIGTERM: do not wait long for it on kills.
        ("KILL_GRACE_PERIOD", "1s".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("EREMETIC_{key}"), value))
    .collect()
}
