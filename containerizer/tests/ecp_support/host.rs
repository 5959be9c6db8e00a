//! The host side of the tests: the docker CLI, processes, polling, ports, and a tiny HTTP
//! server (with a tar.gz builder) for URI fetching.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{BUSYBOX, BUSYBOX_EXPOSED, SERIAL};

/// Fails the test (with a hint) unless Docker answers and the test images exist.
pub fn require_docker() {
    for image in [BUSYBOX, BUSYBOX_EXPOSED] {
        let output = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", image])
            .output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "Docker image {image} is missing or Docker is unreachable ({}); run scripts/setup",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => panic!("cannot run the docker CLI ({error}); run scripts/setup"),
        }
    }
}

/// Runs the docker CLI.
pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// `docker inspect -f <format> <id>`, trimmed; `None` when the container does not exist.
pub fn docker_inspect(id: &str, format: &str) -> Option<String> {
    let output = docker(&["inspect", "--type", "container", "-f", format, id]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Ids of the containers (any state) carrying `label=value`.
pub fn docker_ids_with_label(label: &str, value: &str) -> Vec<String> {
    let filter = format!("label={label}={value}");
    let output = docker(&["ps", "-aq", "--no-trunc", "--filter", &filter]);
    assert!(
        output.status.success(),
        "docker ps failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// True while `pid` runs (a zombie counts as dead: it holds no locks any more).
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// True when `pid` is `deimos watch <id>`.
pub fn is_deimos_watcher(pid: i32, id: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            args.len() >= 3 && args[1] == b"watch" && args[2] == id.as_bytes()
        })
        .unwrap_or(false)
}

/// Polls `condition` every 20 ms; fails the test after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until Docker reports the container as no longer running.
pub fn wait_for_docker_exit(docker_id: &str) {
    wait_until(Duration::from_secs(30), "the container to exit", || {
        docker_inspect(docker_id, "{{.State.Running}}").as_deref() != Some("true")
    });
}

/// A host port `p` such that `p` and `p + 1` are free now, and `p + 999` is a valid port.
/// Starts from a per-process pseudo-random point below the ephemeral range, so parallel tests
/// rarely probe the same ports.
pub fn free_port_pair() -> u16 {
    let seed = (std::process::id() as usize * 7919
        + SERIAL.fetch_add(1, Ordering::SeqCst) * 104_729)
        % 8000;
    for offset in 0..8000usize {
        let port = 20_000 + ((seed + offset * 2) % 8000) as u16;
        let first = TcpListener::bind(("0.0.0.0", port));
        let second = TcpListener::bind(("0.0.0.0", port + 1));
        if first.is_ok() && second.is_ok() {
            return port;
        }
    }
    panic!("no free pair of ports between 20000 and 28000");
}

/// GET `path` from `127.0.0.1:port`; the whole response (status line, headers, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// What the server answers for a path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// 200 with this body, after a delay.
    Slow(Duration, Vec<u8>),
    /// 200 with this body, once this file exists (a gate the test opens when it is ready).
    Gated(PathBuf, Vec<u8>),
}

/// An HTTP/1.0 server on 127.0.0.1 answering GETs from a fixed table (unknown paths: 404).
pub struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts the server.
    pub fn start(routes: Vec<(&str, Reply)>) -> HttpServer {
        let routes: Arc<BTreeMap<String, Reply>> =
            Arc::new(routes.into_iter().map(|(p, r)| (p.to_owned(), r)).collect());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the HTTP server");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let routes = routes.clone();
                        std::thread::spawn(move || serve(stream, &routes));
                    }
                }
            })
        };
        HttpServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, routes: &BTreeMap<String, Reply>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let target = text.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    let (status, body) = match routes.get(path).cloned() {
        Some(Reply::Body(body)) => (200, body),
        Some(Reply::Status(status)) => (status, Vec::new()),
        Some(Reply::Slow(delay, body)) => {
            std::thread::sleep(delay);
            (200, body)
        }
        Some(Reply::Gated(gate, body)) => {
            while !gate.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            (200, body)
        }
        None => (404, Vec::new()),
    };
    let head = format!(
        "HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// A gzip-compressed tar archive of regular files.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, name, *data)
            .expect("append to tar");
    }
    builder
        .into_inner()
        .and_then(|encoder| encoder.finish())
        .expect("finish tar.gz")
}
