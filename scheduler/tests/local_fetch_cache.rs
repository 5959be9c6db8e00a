//! The local backend's fetch cache against the real Docker engine and a real HTTP server on
//! 127.0.0.1 that counts its requests: a task's `fetch` URI with `cache: true` is downloaded
//! once into `fetch_cache_dir` and reaches the container of every task that asks for it.
//! Needs Docker and the local test images: run `scripts/setup` first.

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use deimos_runtime::fetch::CacheOptions;
use eremetic::backend::{LocalBackend, LocalConfig, Reservation, Resources, Run};
use eremetic::task::{Task, TaskId};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const IMAGE: &str = "deimos-test/busybox:latest";
const OWNER_LABEL: &str = "io.deimos.owner";

/// Answers every GET with `body` and counts the requests, until dropped.
struct CountingServer {
    url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingServer {
    async fn start(path: &str, body: &'static [u8]) -> CountingServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        CountingServer {
            url,
            requests,
            task,
        }
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Removes every container of the instance when dropped.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(listed) = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label={OWNER_LABEL}={}", self.0))
            .output()
        else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

fn unique(test: &str) -> (String, [u8; 16]) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = [0u8; 16];
    random[..4].copy_from_slice(&std::process::id().to_le_bytes());
    random[4..8].copy_from_slice(&n.to_le_bytes());
    random[8..].copy_from_slice(&(nanos.as_nanos() as u64).to_le_bytes());
    let instance = format!(
        "eremetic-test:{test}:{}:{}:{n}",
        std::process::id(),
        nanos.subsec_nanos()
    );
    (instance, random)
}

fn config(data_dir: &Path, instance: &str) -> LocalConfig {
    LocalConfig {
        docker_host: None,
        data_dir: data_dir.to_owned(),
        cpus: 2.0,
        mem_mib: 2048.0,
        port_range: (38100, 38109),
        instance_id: instance.to_owned(),
        user_network: None,
        fetch_local_paths: Vec::new(),
        output_limit: None,
        min_free_bytes: 0,
        fetch_cache: CacheOptions {
            dir: data_dir.join("fetch-cache"),
            max_size: 1 << 20,
            setting: "fetch_cache_dir",
        },
    }
}

async fn run_task(backend: &LocalBackend, body: serde_json::Value) -> Run {
    let request = eremetic::api::parse_v1(body.to_string().as_bytes()).unwrap();
    let (_, random) = unique("task");
    let task = Task::new(
        TaskId::generate(random),
        "test".into(),
        request,
        OffsetDateTime::now_utc(),
    );
    let allocation = match backend.place(&Resources::of(&task.request)) {
        Reservation::Reserved(allocation) => allocation,
        Reservation::Wait => panic!("the test backend has room for the task"),
    };
    let run = backend.start_run(&task, 1, &allocation).await.unwrap();
    let outcome = backend.wait_run(&run).await.unwrap();
    assert_eq!(outcome.exit_code, 0, "{outcome:?}");
    backend.destroy_run(&run).await.unwrap();
    run
}

#[tokio::test]
async fn a_cached_fetch_uri_is_downloaded_once_and_reaches_every_tasks_container() {
    let server = CountingServer::start("/tool.sh", b"#!/bin/sh\necho cached tool ran\n").await;
    let dir = tempfile::tempdir().unwrap();
    let (instance, _) = unique("fetchcache");
    let _cleanup = Cleanup(instance.clone());
    let backend = match LocalBackend::connect(config(dir.path(), &instance)).await {
        Ok(backend) => backend,
        Err(error) => panic!("the Docker engine is required (run scripts/setup): {error}"),
    };
    let body = serde_json::json!({
        "image": IMAGE,
        "command": "cd \"$MESOS_SANDBOX\" && ./tool.sh",
        "cpu": 0.2,
        "mem": 32,
        "fetch": [{"uri": server.url, "executable": true, "cache": true}],
    });
    for _ in 0..2 {
        let run = run_task(&backend, body.clone()).await;
        let stdout = std::fs::read_to_string(run.sandbox.join("stdout")).unwrap();
        assert_eq!(stdout, "cached tool ran\n");
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    let cache = dir.path().join("fetch-cache");
    assert!(cache.is_dir(), "the cache is under fetch_cache_dir");
    // Without the flag, the URI is fetched for each task.
    let uncached = serde_json::json!({
        "image": IMAGE,
        "command": "cd \"$MESOS_SANDBOX\" && ./tool.sh",
        "cpu": 0.2,
        "mem": 32,
        "fetch": [{"uri": server.url, "executable": true}],
    });
    run_task(&backend, uncached.clone()).await;
    run_task(&backend, uncached).await;
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
}
