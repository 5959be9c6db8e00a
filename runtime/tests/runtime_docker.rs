//! The Docker runtime against the real engine, with the local test images.
//!
//! These tests need a running Docker Engine and the images `deimos-test/busybox:latest` and
//! `deimos-test/busybox-exposed:latest`; run `scripts/setup` first. Every container is named
//! after its test and this process, and removed by a guard even when the test fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use deimos_runtime::runtime::{
    ContainerRuntime, ContainerState, DockerRuntime, ExposedPort, ImageSource, LabelFilter,
    LogOptions, RuntimeError,
};
use deimos_runtime::spec::{
    labels, Command, ContainerSpec, EnvVar, Limits, PortMapping, Protocol, Sandbox,
    DEFAULT_SANDBOX_MOUNT,
};
use nix::sys::signal::Signal;

const BUSYBOX: &str = "deimos-test/busybox:latest";
const BUSYBOX_EXPOSED: &str = "deimos-test/busybox-exposed:latest";

async fn docker() -> DockerRuntime {
    match DockerRuntime::connect(None).await {
        Ok(runtime) => runtime,
        Err(error) => panic!("Docker is unreachable ({error}); run scripts/setup"),
    }
}

/// Removes the named container when dropped, through its own connection and runtime so that
/// it also works while a failed test unwinds.
struct ContainerGuard {
    name: String,
}

impl ContainerGuard {
    async fn new(runtime: &DockerRuntime, test: &str) -> Self {
        let name = format!("deimos-rt-{test}-{}", std::process::id());
        // A leftover of an earlier run with the same process id would make creation fail.
        if let Err(error) = runtime.remove(&name).await {
            panic!("cannot remove leftover container {name}: {error}");
        }
        Self { name }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let name = self.name.clone();
        let removal = std::thread::spawn(move || {
            let executor = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            executor.block_on(async {
                let runtime = DockerRuntime::connect(None).await?;
                runtime.remove(&name).await
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        });
        match removal.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("cleanup of container {} failed: {error}", self.name),
            Err(_) => eprintln!("cleanup of container {} panicked", self.name),
        }
    }
}

fn shell(guard: &ContainerGuard, image: &str, line: &str) -> ContainerSpec {
    ContainerSpec {
        name: Some(guard.name.clone()),
        image: image.into(),
        command: Command::Shell(line.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn exit_codes_zero_and_three_are_reported() {
    let runtime = docker().await;
    for (test, code) in [("exit0", 0), ("exit3", 3)] {
        let guard = ContainerGuard::new(&runtime, test).await;
        let id = runtime
            .launch(&shell(&guard, BUSYBOX, &format!("exit {code}")))
            .await
            .unwrap();
        let status = runtime.wait(&id).await.unwrap();
        assert_eq!(
            (status.exit_code, status.oom_killed, status.signal),
            (code, false, None)
        );
    }
}

#[tokio::test]
async fn sigkill_from_the_host_is_reported_as_signal_9_and_code_137() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "sigkill").await;
    let id = runtime
        .launch(&shell(&guard, BUSYBOX, "sleep 1000"))
        .await
        .unwrap();
    runtime.kill(&id, Signal::SIGKILL).await.unwrap();
    let status = runtime.wait(&id).await.unwrap();
    assert_eq!(
        (status.exit_code, status.signal, status.oom_killed),
        (137, Some(9), false)
    );
    let error = runtime.kill(&id, Signal::SIGKILL).await.unwrap_err();
    assert!(matches!(error, RuntimeError::NotRunning { .. }), "{error}");
}

#[tokio::test]
async fn process_killing_itself_with_sigkill_reports_code_137() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "selfkill").await;
    // The container's PID 1 ignores signals from inside its namespace, so the shell that
    // kills itself runs as a child; the outer shell then exits with the child's status.
    let spec = shell(&guard, BUSYBOX, r#"sh -c 'kill -9 $$'; exit $?"#);
    let id = runtime.launch(&spec).await.unwrap();
    let status = runtime.wait(&id).await.unwrap();
    assert_eq!((status.exit_code, status.signal), (137, Some(9)));
}

#[tokio::test]
async fn wait_reports_oom_kill_as_killed() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "oom").await;
    let spec = ContainerSpec {
        limits: Limits {
            memory_bytes: Some(8 << 20),
            ..Default::default()
        },
        // The shell keeps 64 MiB in a variable; a pipe alone would stream in small buffers.
        ..shell(
            &guard,
            BUSYBOX,
            r#"x=$(head -c 67108864 /dev/zero | tr '\0' a); echo ${#x}"#,
        )
    };
    let id = runtime.launch(&spec).await.unwrap();
    let status = runtime.wait(&id).await.unwrap();
    assert!(status.oom_killed, "{status:?}");
    assert_eq!((status.exit_code, status.signal), (137, Some(9)));
}

#[tokio::test]
async fn stop_kills_a_container_ignoring_sigterm_after_the_grace_period() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "stop").await;
    let id = runtime
        .launch(&shell(&guard, BUSYBOX, "sleep 1000"))
        .await
        .unwrap();
    let started = Instant::now();
    runtime.stop(&id, Duration::from_secs(1)).await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(20),
        "{elapsed:?}"
    );
    let info = runtime.inspect(&id).await.unwrap();
    assert_eq!(
        (info.running, info.state, info.exit_code),
        (false, ContainerState::Exited, Some(137))
    );
    runtime.stop(&id, Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn env_reaches_the_container_with_later_duplicates_winning() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "env").await;
    let sandbox = tempfile::tempdir().unwrap();
    let spec = ContainerSpec {
        env: vec![
            EnvVar::new("A", "1"),
            EnvVar::new("B", "two words"),
            EnvVar::new("A", "3"),
        ],
        ..shell(&guard, BUSYBOX, r#"echo "A=$A B=$B""#)
    };
    let id = runtime.launch(&spec).await.unwrap();
    runtime
        .stream_logs(&id, sandbox.path(), LogOptions::default())
        .await
        .unwrap();
    assert_eq!(runtime.wait(&id).await.unwrap().exit_code, 0);
    assert_eq!(read(sandbox.path(), "stdout"), "A=3 B=two words\n");
}

#[tokio::test]
async fn output_over_the_limit_is_rotated_and_the_newest_lines_are_kept() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "rotate").await;
    let sandbox = tempfile::tempdir().unwrap();
    // 2000 numbered lines of 16 bytes (32,000 bytes) against a 4 KiB limit.
    let line = r#"i=0; while [ $i -lt 2000 ]; do printf 'line %010d\n' $i; i=$((i+1)); done"#;
    let id = runtime.launch(&shell(&guard, BUSYBOX, line)).await.unwrap();
    let options = LogOptions {
        limit: std::num::NonZeroU64::new(4096),
        ..LogOptions::default()
    };
    let totals = runtime
        .stream_logs(&id, sandbox.path(), options)
        .await
        .unwrap();
    assert_eq!(runtime.wait(&id).await.unwrap().exit_code, 0);
    let current = read(sandbox.path(), "stdout");
    let previous = read(sandbox.path(), "stdout.1");
    assert!(current.len() <= 4096 && previous.len() <= 4096);
    let kept = format!("{previous}{current}");
    assert!(kept.ends_with("line 0000001999\n"), "{kept:?}");
    assert_eq!(totals.stdout_bytes, 32_000);
    assert_eq!(
        totals.stdout_dropped_bytes + kept.len() as u64,
        32_000,
        "every byte is either kept or counted as dropped"
    );
    let counter = read(sandbox.path(), "stdout.dropped");
    assert_eq!(counter.trim(), totals.stdout_dropped_bytes.to_string());
}

#[tokio::test]
async fn labels_find_containers_again_including_stopped_ones() {
    let runtime = docker().await;
    let created = ContainerGuard::new(&runtime, "labels-created").await;
    let exited = ContainerGuard::new(&runtime, "labels-exited").await;
    let owner = format!("runtime-test-{}", std::process::id());
    let labelled = |guard: &ContainerGuard, line: &str| ContainerSpec {
        labels: BTreeMap::from([
            (labels::OWNER.to_owned(), owner.clone()),
            (labels::CONTAINER_ID.to_owned(), guard.name.clone()),
        ]),
        ..shell(guard, BUSYBOX, line)
    };
    let created_id = runtime.create(&labelled(&created, "true")).await.unwrap();
    let exited_id = runtime.launch(&labelled(&exited, "true")).await.unwrap();
    runtime.wait(&exited_id).await.unwrap();

    let mut found = runtime
        .list(&[
            LabelFilter::equals(labels::OWNER, &owner),
            LabelFilter::present(labels::CONTAINER_ID),
        ])
        .await
        .unwrap();
    found.sort_by(|a, b| a.names.cmp(&b.names));
    let summary: Vec<(&str, ContainerState, &str)> = found
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.state,
                c.labels[labels::CONTAINER_ID].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                created_id.as_str(),
                ContainerState::Created,
                created.name.as_str()
            ),
            (
                exited_id.as_str(),
                ContainerState::Exited,
                exited.name.as_str()
            ),
        ]
    );
    let one = runtime
        .list(&[LabelFilter::equals(labels::CONTAINER_ID, &created.name)])
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].names, std::slice::from_ref(&created.name));
    assert_eq!(one[0].labels[labels::OWNER], owner);
}

#[tokio::test]
async fn sandbox_path_with_colons_is_mounted_and_writable() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "sandbox").await;
    let root = tempfile::tempdir().unwrap();
    let sandbox = root.path().join("run:2024-01-01T10:00:00");
    std::fs::create_dir(&sandbox).unwrap();
    let spec = ContainerSpec {
        sandbox: Some(Sandbox {
            host_dir: sandbox.clone(),
            container_dir: DEFAULT_SANDBOX_MOUNT.into(),
        }),
        ..shell(
            &guard,
            BUSYBOX,
            &format!("echo written-inside > {DEFAULT_SANDBOX_MOUNT}/result"),
        )
    };
    let id = runtime.launch(&spec).await.unwrap();
    assert_eq!(runtime.wait(&id).await.unwrap().exit_code, 0);
    assert_eq!(read(&sandbox, "result"), "written-inside\n");
}

#[tokio::test]
async fn logs_are_appended_to_stdout_and_stderr_as_they_are_produced() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "logs").await;
    let sandbox = tempfile::tempdir().unwrap();
    std::fs::write(sandbox.path().join("stdout"), "before\n").unwrap();
    let spec = shell(
        &guard,
        BUSYBOX,
        "echo out1; echo err1 >&2; sleep 3; echo out2; echo err2 >&2",
    );
    let id = runtime.launch(&spec).await.unwrap();
    let streaming = {
        let (runtime, id, dir) = (runtime.clone(), id.clone(), sandbox.path().to_owned());
        tokio::spawn(async move { runtime.stream_logs(&id, &dir, LogOptions::default()).await })
    };
    // The first line must reach the file while the container still sleeps.
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(sandbox.path(), "stdout") != "before\nout1\n" {
        assert!(
            Instant::now() < deadline,
            "stdout: {:?}",
            read(sandbox.path(), "stdout")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        runtime.inspect(&id).await.unwrap().running,
        "output arrived only after the exit"
    );
    let totals = streaming.await.unwrap().unwrap();
    assert_eq!((totals.stdout_bytes, totals.stderr_bytes), (10, 10));
    assert_eq!(read(sandbox.path(), "stdout"), "before\nout1\nout2\n");
    assert_eq!(read(sandbox.path(), "stderr"), "err1\nerr2\n");
    runtime.remove(&id).await.unwrap();
    assert_eq!(
        read(sandbox.path(), "stdout"),
        "before\nout1\nout2\n",
        "files outlive the container"
    );
}

#[tokio::test]
async fn published_port_is_reachable_from_the_host() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "port").await;
    let image = runtime.inspect_image(BUSYBOX_EXPOSED).await.unwrap();
    let tcp = |port| ExposedPort {
        port,
        protocol: Protocol::Tcp,
    };
    assert_eq!(image.exposed_ports, [tcp(80), tcp(443)]);

    let sandbox = tempfile::tempdir().unwrap();
    std::fs::write(sandbox.path().join("index.html"), "hello from deimos\n").unwrap();
    let host_port = free_port();
    let spec = ContainerSpec {
        ports: vec![PortMapping {
            host_port,
            container_port: 80,
            protocol: Protocol::Tcp,
        }],
        sandbox: Some(Sandbox {
            host_dir: sandbox.path().to_owned(),
            container_dir: "/www".into(),
        }),
        command: Command::Argv(
            ["httpd", "-f", "-p", "80", "-h", "/www"]
                .map(String::from)
                .to_vec(),
        ),
        ..shell(&guard, BUSYBOX_EXPOSED, "")
    };
    runtime.launch(&spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let response = loop {
        match http_get(host_port) {
            Ok(response) if response.contains("hello from deimos") => break response,
            other => assert!(
                Instant::now() < deadline,
                "no answer on port {host_port}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(response.starts_with("HTTP/1."), "{response}");
}

#[tokio::test]
async fn memory_limit_update_is_visible_in_inspect() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "update").await;
    let spec = ContainerSpec {
        limits: Limits {
            cpu_shares: Some(512),
            cpu_quota: None,
            memory_bytes: Some(64 << 20),
        },
        ..shell(&guard, BUSYBOX, "sleep 1000")
    };
    let id = runtime.launch(&spec).await.unwrap();
    assert_eq!(
        runtime.inspect(&id).await.unwrap().limits.memory_bytes,
        Some(64 << 20)
    );
    let new_limits = Limits {
        cpu_shares: Some(1024),
        cpu_quota: Some(0.5),
        memory_bytes: Some(32 << 20),
    };
    runtime.update_limits(&id, &new_limits).await.unwrap();
    let info = runtime.inspect(&id).await.unwrap();
    assert_eq!(info.limits, new_limits);
    let stats = runtime.stats(&id).await.unwrap();
    assert_eq!(stats.memory_limit_bytes, 32 << 20);
    assert!(stats.memory_usage_bytes > 0, "{stats:?}");
}

#[tokio::test]
async fn inspect_reports_a_running_container() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "inspect").await;
    let spec = ContainerSpec {
        labels: BTreeMap::from([(labels::MANAGED_BY.to_owned(), "deimos".to_owned())]),
        ..shell(&guard, BUSYBOX, "sleep 1000")
    };
    let id = runtime.launch(&spec).await.unwrap();
    let info = runtime.inspect(&guard.name).await.unwrap();
    assert_eq!(
        (info.id.as_str(), info.name.as_str()),
        (id.as_str(), guard.name.as_str())
    );
    assert_eq!(
        (info.running, info.state, info.exit_code),
        (true, ContainerState::Running, None)
    );
    assert!(info.pid.is_some_and(|pid| pid > 1), "{info:?}");
    assert!(
        info.started_at.is_some() && info.finished_at.is_none(),
        "{info:?}"
    );
    assert_eq!(info.labels[labels::MANAGED_BY], "deimos");
}

#[tokio::test]
async fn inspect_json_is_the_engines_document_with_mounts_and_network() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "inspectjson").await;
    let sandbox = tempfile::tempdir().unwrap();
    let spec = ContainerSpec {
        sandbox: Some(Sandbox {
            host_dir: sandbox.path().to_path_buf(),
            container_dir: DEFAULT_SANDBOX_MOUNT.into(),
        }),
        ..shell(&guard, BUSYBOX, "sleep 1000")
    };
    let id = runtime.launch(&spec).await.unwrap();
    let document = runtime.inspect_json(&guard.name).await.unwrap();
    assert_eq!(document["Id"], id.as_str());
    assert_eq!(document["Name"], format!("/{}", guard.name).as_str());
    assert_eq!(document["State"]["Running"], true);
    let sandbox_mount = document["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|mount| mount["Destination"] == DEFAULT_SANDBOX_MOUNT);
    assert_eq!(
        sandbox_mount.map(|mount| mount["Source"].clone()),
        Some(sandbox.path().display().to_string().into()),
        "{document}"
    );
    // The engine's own fields come through, also those this crate never reads.
    let mode = document["HostConfig"]["NetworkMode"].as_str().unwrap();
    let address = document["NetworkSettings"]["Networks"][mode]["IPAddress"]
        .as_str()
        .unwrap_or_default();
    assert!(address.parse::<std::net::IpAddr>().is_ok(), "{document}");
    assert!(document["Config"]["Env"].is_array(), "{document}");

    runtime.remove(&id).await.unwrap();
    let error = runtime.inspect_json(&id).await.unwrap_err();
    assert!(error.is_no_such_container(), "{error}");
}

#[tokio::test]
async fn removing_an_absent_container_is_ok() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "remove").await;
    let id = runtime
        .create(&shell(&guard, BUSYBOX, "true"))
        .await
        .unwrap();
    runtime.remove(&id).await.unwrap();
    runtime.remove(&id).await.unwrap();
    let error = runtime.inspect(&id).await.unwrap_err();
    assert!(error.is_no_such_container(), "{error}");
    let error = runtime.wait(&id).await.unwrap_err();
    assert!(error.is_no_such_container(), "{error}");
}

#[tokio::test]
async fn missing_image_without_registry_fails_naming_the_image() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "noimage").await;
    let image = format!("deimos-test/absent-{}:latest", std::process::id());
    let error = runtime
        .launch(&shell(&guard, &image, "true"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RuntimeError::ImageNotFound { .. } | RuntimeError::PullFailed { .. }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains(&image), "{error}");
    let error = runtime.inspect_image(&image).await.unwrap_err();
    assert!(
        matches!(error, RuntimeError::ImageNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn present_image_is_not_pulled() {
    let runtime = docker().await;
    assert_eq!(
        runtime.ensure_image(BUSYBOX, false, None).await.unwrap(),
        ImageSource::Local
    );
}

#[tokio::test]
async fn duplicate_container_name_is_a_name_conflict() {
    let runtime = docker().await;
    let guard = ContainerGuard::new(&runtime, "conflict").await;
    runtime
        .create(&shell(&guard, BUSYBOX, "true"))
        .await
        .unwrap();
    let error = runtime
        .create(&shell(&guard, BUSYBOX, "true"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RuntimeError::NameConflict { ref name, .. } if *name == guard.name),
        "{error:?}"
    );
}

#[tokio::test]
async fn negotiated_api_version_is_at_most_the_engines() {
    let runtime = docker().await;
    let version = runtime.api_version();
    let fixed = DockerRuntime::connect_with_api_version(Some(runtime.host()), &version).unwrap();
    assert_eq!(fixed.api_version(), version);
    assert_eq!(
        fixed.ensure_image(BUSYBOX, false, None).await.unwrap(),
        ImageSource::Local
    );
}

#[tokio::test]
async fn unreachable_engine_is_a_connect_error_naming_the_host() {
    let error = DockerRuntime::connect(Some("unix:///nonexistent/docker.sock"))
        .await
        .unwrap_err();
    assert!(matches!(error, RuntimeError::Connect { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/docker.sock"),
        "{error}"
    );
    let error = DockerRuntime::connect(Some("ftp://example"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("ftp://example"), "{error}");
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0");
    match listener.and_then(|listener| listener.local_addr()) {
        Ok(address) => address.port(),
        Err(error) => panic!("cannot find a free TCP port: {error}"),
    }
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}
