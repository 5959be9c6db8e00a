//! The local backend against the real Docker engine (`deimos-test/busybox:latest`).
//!
//! Each test uses its own instance id and data directory; a guard removes every container
//! labelled with that instance id when the test ends, also when it fails. Needs Docker and the
//! local test images: run `scripts/setup` first.

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eremetic::backend::{
    Allocation, Backend, BackendError, LocalBackend, LocalConfig, RecoveredState, Reservation,
    Resources, Run,
};
use eremetic::task::{NewTask, Task, TaskId};
use time::OffsetDateTime;

const IMAGE: &str = "deimos-test/busybox:latest";
const OWNER_LABEL: &str = "io.deimos.owner";

/// A unique instance id per test, so that tests running in parallel never see each other's
/// containers.
fn instance_id(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("eremetic-test:{test}:{}:{nanos}:{n}", std::process::id())
}

/// Removes every container of the given instances when dropped.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for instance in &self.0 {
            let listed = Command::new("docker")
                .args(["ps", "-aq", "--filter"])
                .arg(format!("label={OWNER_LABEL}={instance}"))
                .output();
            let Ok(listed) = listed else { continue };
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
}

fn config(data_dir: &Path, instance: &str, port_range: (u16, u16)) -> LocalConfig {
    LocalConfig {
        docker_host: None,
        data_dir: data_dir.to_owned(),
        cpus: 2.0,
        mem_mib: 2048.0,
        port_range,
        instance_id: instance.to_owned(),
        user_network: None,
        fetch_local_paths: Vec::new(),
        output_limit: None,
        min_free_bytes: 0,
        fetch_cache: deimos_runtime::fetch::CacheOptions {
            dir: data_dir.join("fetch-cache"),
            max_size: 1 << 20,
            setting: "fetch_cache_dir",
        },
    }
}

async fn connect(data_dir: &Path, instance: &str, port_range: (u16, u16)) -> LocalBackend {
    match LocalBackend::connect(config(data_dir, instance, port_range)).await {
        Ok(backend) => backend,
        Err(error) => panic!("the Docker engine is required (run scripts/setup): {error}"),
    }
}

fn request(command: &str) -> NewTask {
    let body = serde_json::json!({"image": IMAGE, "command": command, "cpu": 0.2, "mem": 32});
    eremetic::api::parse_v1(body.to_string().as_bytes()).unwrap()
}

fn task(request: NewTask) -> Task {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut random = [0u8; 16];
    random[..4].copy_from_slice(&std::process::id().to_le_bytes());
    random[4..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    random[8..].copy_from_slice(&(nanos.as_nanos() as u64).to_le_bytes());
    Task::new(
        TaskId::generate(random),
        "test".into(),
        request,
        OffsetDateTime::now_utc(),
    )
}

fn place(backend: &LocalBackend, task: &Task) -> Allocation {
    match backend.place(&Resources::of(&task.request)) {
        Reservation::Reserved(allocation) => allocation,
        Reservation::Wait => panic!("the test backend has room for the task"),
    }
}

async fn start(backend: &LocalBackend, task: &Task) -> Run {
    let allocation = place(backend, task);
    backend.start_run(task, 1, &allocation).await.unwrap()
}

fn read(run: &Run, file: &str) -> String {
    std::fs::read_to_string(run.sandbox.join(file)).unwrap_or_default()
}

#[tokio::test]
async fn started_task_exits_zero_with_its_output_in_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("output");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let backend = connect(dir.path(), &instance, (38000, 38009)).await;
    let task = task(request(
        "echo hello; echo oops >&2; echo inside > \"$MESOS_SANDBOX/made\"; echo \"$MESOS_TASK_ID\"",
    ));
    let run = start(&backend, &task).await;
    assert_eq!(
        run.sandbox,
        dir.path().join("sandboxes").join(task.id.as_str())
    );
    let outcome = backend.wait_run(&run).await.unwrap();
    assert_eq!(outcome.exit_code, 0);
    assert!(
        !outcome.oom_killed && outcome.signal.is_none(),
        "{outcome:?}"
    );
    assert_eq!(read(&run, "stdout"), format!("hello\n{}\n", task.id));
    assert_eq!(read(&run, "stderr"), "oops\n");
    assert_eq!(read(&run, "made"), "inside\n");
    backend.destroy_run(&run).await.unwrap();
    assert!(run.sandbox.exists(), "destroy keeps the sandbox");
    backend.remove_sandbox(&task.id).await.unwrap();
    assert!(!run.sandbox.exists());
}

#[tokio::test]
async fn nonzero_exit_code_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("exit");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let backend = connect(dir.path(), &instance, (38010, 38019)).await;
    let run = start(&backend, &task(request("exit 3"))).await;
    let outcome = backend.wait_run(&run).await.unwrap();
    assert_eq!(outcome.exit_code, 3);
    assert!(
        !outcome.oom_killed && outcome.signal.is_none(),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn wait_reports_oom_kill_as_killed() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("oom");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let backend = connect(dir.path(), &instance, (38020, 38029)).await;
    let mut request = request("x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived");
    request.mem = 8.0;
    let run = start(&backend, &task(request)).await;
    let outcome = backend.wait_run(&run).await.unwrap();
    assert!(outcome.oom_killed, "{outcome:?}");
    assert_ne!(outcome.exit_code, 0);
    assert!(!read(&run, "stdout").contains("survived"));
}

#[tokio::test]
async fn stop_ends_a_running_task_and_reports_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("stop");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let backend = connect(dir.path(), &instance, (38030, 38039)).await;
    let run = start(&backend, &task(request("echo started; sleep 30"))).await;
    let began = Instant::now();
    let (stopped, outcome) = tokio::join!(backend.stop_run(&run, Duration::from_secs(1)), async {
        backend.wait_run(&run).await
    });
    stopped.unwrap();
    let outcome = outcome.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "{:?}",
        began.elapsed()
    );
    // `sh` as PID 1 ignores SIGTERM, so the grace period ends with SIGKILL.
    assert_eq!(outcome.signal, Some(9), "{outcome:?}");
    assert_eq!(outcome.exit_code, 137);
    assert!(!outcome.oom_killed);
    assert_eq!(read(&run, "stdout"), "started\n");
}

/// GET / on the host port until the server answers or `deadline` passes.
fn http_get(port: u16, deadline: Instant) -> String {
    loop {
        let attempt = TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        });
        match attempt {
            Ok(answer) if answer.contains("200") => return answer,
            _ if Instant::now() > deadline => panic!("no HTTP answer on host port {port}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[tokio::test]
async fn host_port_is_reachable_and_exported_as_port0() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("ports");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let backend = connect(dir.path(), &instance, (38040, 38049)).await;
    let body = serde_json::json!({
        "image": IMAGE,
        "command": "echo \"PORT0=$PORT0 PORT1=$PORT1 PORT=$PORT\"; mkdir -p /www; \
                    echo served > /www/index.html; httpd -f -p 8080 -h /www",
        "cpu": 0.2,
        "mem": 32,
        "ports": [{"container_port": 8080, "protocol": "tcp"}, {"container_port": 9090}],
    });
    let task = task(eremetic::api::parse_v1(body.to_string().as_bytes()).unwrap());
    let run = start(&backend, &task).await;
    assert_eq!(run.host_ports, vec![38040, 38041]);
    let answer =
        tokio::task::spawn_blocking(|| http_get(38040, Instant::now() + Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(answer.contains("served"), "{answer}");
    backend
        .stop_run(&run, Duration::from_secs(1))
        .await
        .unwrap();
    backend.wait_run(&run).await.unwrap();
    assert_eq!(read(&run, "stdout"), "PORT0=38040 PORT1=38041 PORT=38040\n");
}

#[tokio::test]
async fn second_instance_recovers_and_follows_a_running_container() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("recover");
    let other = format!("{instance}-other");
    let _cleanup = Cleanup(vec![instance.clone(), other.clone()]);
    let first = connect(dir.path(), &instance, (38050, 38059)).await;
    let foreign = connect(dir.path(), &other, (38050, 38059)).await;
    let mut request = request("echo before; sleep 2; echo after");
    request.ports = eremetic::api::parse_v1(
        br#"{"image": "x", "cpu": 1, "mem": 32, "ports": [{"container_port": 80}]}"#,
    )
    .unwrap()
    .ports;
    let task = task(request);
    let run = start(&first, &task).await;
    let foreign_run = start(&foreign, &self::task(self::request("sleep 2"))).await;
    // The first instance saves some output, then "crashes".
    let following = tokio::time::timeout(Duration::from_millis(700), first.wait_run(&run)).await;
    assert!(following.is_err(), "the task still runs");
    drop(first);

    let second = connect(dir.path(), &instance, (38050, 38059)).await;
    let recovered = second.find_runs().await.unwrap();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    let found = &recovered[0];
    assert_eq!(found.task_id, task.id);
    assert_eq!(found.attempt, 1);
    assert_eq!(found.state, RecoveredState::Running);
    assert_eq!(found.run.run_id, run.run_id);
    assert_eq!(found.run.container_id, run.container_id);
    assert_eq!(found.run.host_ports, run.host_ports);
    assert_eq!(found.run.sandbox, run.sandbox);
    assert_ne!(found.run.container_id, foreign_run.container_id);
    second.adopt(&Allocation::for_task(
        &task.request,
        found.run.host_ports.clone(),
    ));
    assert_eq!(second.free().ports, 9);
    let outcome = second.wait_run(&found.run).await.unwrap();
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(read(&found.run, "stdout"), "before\nafter\n");
}

#[tokio::test]
async fn exited_container_is_recovered_with_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("exited");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let first = connect(dir.path(), &instance, (38060, 38069)).await;
    let run = start(&first, &task(request("echo done; exit 4"))).await;
    first.wait_run(&run).await.unwrap();
    drop(first);
    let second = connect(dir.path(), &instance, (38060, 38069)).await;
    let recovered = second.find_runs().await.unwrap();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    let RecoveredState::Exited(outcome) = recovered[0].state else {
        panic!("the container has exited: {recovered:?}");
    };
    assert_eq!(outcome.exit_code, 4);
    let again = second.wait_run(&recovered[0].run).await.unwrap();
    assert_eq!(again, outcome);
    assert_eq!(read(&recovered[0].run, "stdout"), "done\n");
}

#[tokio::test]
async fn unpullable_image_fails_the_start_as_an_image_error() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("image");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let backend = connect(dir.path(), &instance, (38070, 38079)).await;
    let mut request = request("true");
    // A registry on a closed local port: the pull fails at once.
    request.image = "127.0.0.1:1/eremetic/absent:latest".into();
    let task = task(request);
    let allocation = place(&backend, &task);
    let error = backend.start_run(&task, 1, &allocation).await.unwrap_err();
    assert!(matches!(error, BackendError::Image { .. }), "{error}");
    assert!(error.is_start_failure() && !error.is_unreachable());
    assert!(
        error.to_string().contains("127.0.0.1:1/eremetic/absent"),
        "{error}"
    );
}

#[tokio::test]
async fn unreachable_engine_is_reported_as_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), "eremetic-test:unreachable", (38080, 38089));
    config.docker_host = Some("unix:///nonexistent/docker.sock".into());
    let error = LocalBackend::connect(config).await.unwrap_err();
    assert!(error.is_unreachable(), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/docker.sock"),
        "{error}"
    );
}

#[tokio::test]
async fn engine_gone_after_connecting_fails_the_start_as_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // A socket nobody listens on any more, and a client that does not contact the engine
    // before its first request.
    let socket = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let host = format!("unix://{}", socket.display());
    let runtime =
        deimos_runtime::runtime::DockerRuntime::connect_with_api_version(Some(&host), "1.41")
            .unwrap();
    let backend = LocalBackend::with_runtime(
        config(dir.path(), "eremetic-test:gone", (38090, 38099)),
        std::sync::Arc::new(runtime),
    );
    let task = task(request("true"));
    let allocation = place(&backend, &task);
    let error = backend.start_run(&task, 1, &allocation).await.unwrap_err();
    assert!(
        error.is_unreachable() && !error.is_start_failure(),
        "{error}"
    );
    let error = backend.find_runs().await.unwrap_err();
    assert!(error.is_unreachable(), "{error}");
}

#[tokio::test]
async fn usage_is_reported_while_the_container_exists_and_none_after_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("usage");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let backend = connect(dir.path(), &instance, (38100, 38109)).await;
    let run = start(&backend, &task(request("sleep 30"))).await;
    let usage = backend.usage_of(&run.run_id).await.unwrap();
    let usage = usage.expect("a running container has usage statistics");
    assert!(usage.memory_limit_bytes > 0, "{usage:?}");
    backend.destroy_run(&run).await.unwrap();
    assert_eq!(backend.usage_of(&run.run_id).await.unwrap(), None);
    let total = backend.total();
    assert!(total.cpus > 0.0 && total.ports == 10, "{total:?}");
}

#[tokio::test]
async fn relaunch_under_a_new_run_id_removes_the_container_left_by_the_earlier_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let instance = instance_id("relaunch");
    let _cleanup = Cleanup(vec![instance.clone()]);
    let backend = connect(dir.path(), &instance, (38200, 38209)).await;
    let task = task(request("sleep 30"));
    let allocation = place(&backend, &task);
    // Attempt 1 started, but (say) the engine stopped answering before the launch was
    // reported: the engine relaunches the task as attempt 2.
    let first = backend.start_run(&task, 1, &allocation).await.unwrap();
    let second = backend.start_run(&task, 2, &allocation).await.unwrap();
    assert_eq!(second.run_id, format!("{}.2", task.id));
    assert_ne!(first.container_id, second.container_id);
    assert!(
        backend.usage_of(&first.run_id).await.unwrap().is_none(),
        "the earlier attempt's container is gone"
    );
    assert!(backend.usage_of(&second.run_id).await.unwrap().is_some());
    backend.destroy_run(&second).await.unwrap();
}
