//! [`ZooKeeperServer`]: a private, standalone ZooKeeper server for tests, the
//! real one from the distribution's `zookeeper` package (Debian lays it out as
//! `/usr/share/java/zookeeper.jar`, whose manifest names its dependencies;
//! `scripts/setup` installs it).
//!
//! Each server gets a port that was free when the harness bound it (port 0 on
//! 127.0.0.1) and its own configuration and data directory under the system's
//! temporary directory; it is killed, and the directory removed, on drop.
//! Readiness is ZooKeeper's own `ruok` four-letter command answered `imok`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::HarnessError;

/// The server jar of Debian's `zookeeper` package (`libzookeeper-java`).
const DEBIAN_JAR: &str = "/usr/share/java/zookeeper.jar";

/// An SLF4J binding writing to stderr, from `libslf4j-java` (without one the
/// server logs nothing, which leaves a failed start unexplained).
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

/// How long a JVM may take to start and answer `ruok` on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Attempts with a new port when the one chosen was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;

/// A running standalone ZooKeeper server on `127.0.0.1:<port>`.
#[derive(Debug)]
pub struct ZooKeeperServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl ZooKeeperServer {
    /// Starts a server and waits until it answers `ruok`. Fails with
    /// [`HarnessError::ZooKeeperMissing`] when ZooKeeper or Java is not
    /// installed (`ZOOKEEPER_CLASSPATH` and `JAVA` override the places
    /// looked at).
    pub async fn start() -> Result<ZooKeeperServer, HarnessError> {
        let classpath = classpath()?;
        let java = java()?;
        let dir = private_dir()?;
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut server = ZooKeeperServer {
                child: None,
                port,
                dir: dir.clone(),
            };
            match server.launch(&java, &classpath).await {
                Ok(()) => return Ok(server),
                Err(error) => {
                    // Keep the directory for the next attempt.
                    server.dir = PathBuf::new();
                    last = Some(error);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last.unwrap_or_else(|| HarnessError::ZooKeeperServer {
            what: "could not be started".to_owned(),
        }))
    }

    /// `127.0.0.1:<port>`, the connect string of a client.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and starts it again on the same port with the same data: clients
    /// see a connection loss, and their sessions live on if they reconnect in time.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        let classpath = classpath()?;
        let java = java()?;
        self.launch(&java, &classpath).await
    }

    async fn launch(&mut self, java: &Path, classpath: &str) -> Result<(), HarnessError> {
        let config = self.dir.join("zoo.cfg");
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let failed = |what: String| HarnessError::ZooKeeperServer { what };
        std::fs::create_dir_all(&data)
            .map_err(|error| failed(format!("data directory {}: {error}", data.display())))?;
        write_config(&config, &data, self.port)
            .map_err(|error| failed(format!("configuration {}: {error}", config.display())))?;
        let log_file = std::fs::File::create(&log)
            .map_err(|error| failed(format!("log {}: {error}", log.display())))?;
        let stderr = log_file
            .try_clone()
            .map_err(|error| failed(format!("log {}: {error}", log.display())))?;
        let child = Command::new(java)
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
                classpath,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .spawn()
            .map_err(|error| failed(format!("{} could not run: {error}", java.display())))?;
        self.child = Some(child);
        self.wait_ready(&log).await
    }

    async fn wait_ready(&mut self, log: &Path) -> Result<(), HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ruok(self.port).await {
                return Ok(());
            }
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status.to_string()),
                _ => None,
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(HarnessError::ZooKeeperServer {
                    what: format!(
                        "on port {} exited ({status}) before answering; its log ends with:\n{}",
                        self.port,
                        log_tail(log)
                    ),
                });
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(HarnessError::ZooKeeperServer {
                    what: format!(
                        "on port {} did not answer ruok within {START_TIMEOUT:?}; its log ends \
                         with:\n{}",
                        self.port,
                        log_tail(log)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ZooKeeperServer {
    fn drop(&mut self) {
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether the server on `port` answers `ruok` with `imok`.
async fn ruok(port: u16) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"ruok").await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer == b"imok")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), exchange).await,
        Ok(Ok(true))
    )
}

fn classpath() -> Result<String, HarnessError> {
    if let Ok(classpath) = std::env::var("ZOOKEEPER_CLASSPATH") {
        return Ok(classpath);
    }
    if !Path::new(DEBIAN_JAR).is_file() {
        return Err(HarnessError::ZooKeeperMissing {
            missing: DEBIAN_JAR.to_owned(),
        });
    }
    let mut classpath = DEBIAN_JAR.to_owned();
    if Path::new(SLF4J_SIMPLE).is_file() {
        classpath.push(':');
        classpath.push_str(SLF4J_SIMPLE);
    }
    Ok(classpath)
}

fn java() -> Result<PathBuf, HarnessError> {
    if let Some(java) = std::env::var_os("JAVA") {
        let java = PathBuf::from(java);
        if !java.is_file() {
            return Err(HarnessError::ZooKeeperMissing {
                missing: format!("{} (from JAVA)", java.display()),
            });
        }
        return Ok(java);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("java"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| HarnessError::ZooKeeperMissing {
            missing: "java (a Java runtime) on PATH".to_owned(),
        })
}

/// A port that was free a moment ago (the server binds it right after).
fn free_port() -> Result<u16, HarnessError> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    std::net::TcpListener::bind(address)
        .and_then(|listener| listener.local_addr())
        .map(|bound| bound.port())
        .map_err(|source| HarnessError::Bind { address, source })
}

fn private_dir() -> Result<PathBuf, HarnessError> {
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random).map_err(|error| HarnessError::ZooKeeperServer {
        what: format!("directory name: no randomness: {error}"),
    })?;
    let name: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("mesos-harness-zk-{name}"));
    std::fs::create_dir_all(&dir).map_err(|error| HarnessError::ZooKeeperServer {
        what: format!("directory {}: {error}", dir.display()),
    })?;
    Ok(dir)
}

fn write_config(path: &Path, data: &Path, port: u16) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    // tickTime 1 s: sessions may last 2-20 s (the masters' and detectors' 10 s fit).
    writeln!(file, "tickTime=1000")?;
    writeln!(file, "dataDir={}", data.display())?;
    writeln!(file, "clientPort={port}")?;
    writeln!(file, "clientPortAddress=127.0.0.1")?;
    writeln!(file, "maxClientCnxns=0")?;
    writeln!(file, "admin.enableServer=false")?;
    writeln!(file, "4lw.commands.whitelist=ruok,srvr")?;
    file.sync_all()
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_java_runtime_is_named_with_the_way_to_install_it() {
        // The only test of this binary that sets these variables.
        std::env::set_var("ZOOKEEPER_CLASSPATH", "/nonexistent/zookeeper.jar");
        std::env::set_var("JAVA", "/nonexistent/bin/java");
        let error = ZooKeeperServer::start().await.map(|_| ()).unwrap_err();
        std::env::remove_var("ZOOKEEPER_CLASSPATH");
        std::env::remove_var("JAVA");
        let message = error.to_string();
        assert!(
            message.contains("ZooKeeper is not installed")
                && message.contains("/nonexistent/bin/java")
                && message.contains("run scripts/setup"),
            "{message}"
        );
    }
}
