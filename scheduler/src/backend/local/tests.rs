//! The local backend over a fake runtime: what it asks Docker to do, without Docker.

use std::collections::BTreeMap;
use std::sync::Mutex;

use deimos_runtime::runtime::{
    exit_status, ContainerInfo, ContainerState, ExitStatus, ImageInfo, ImageSource,
    ListedContainer, LogOptions, LogTotals, RuntimeError, UsageStats,
};
use deimos_runtime::spec::{Limits, RegistryAuth};
use nix::sys::signal::Signal;

use super::spec::HOST_PORTS_LABEL;
use super::*;
use crate::backend::RecoveredState;
use crate::backend::{Backend, OutputDropped};
use crate::task::{AgentConstraint, FetchUri, PortProtocol, PortRequest};
use crate::task::{Network, NewTask};
use async_trait::async_trait;

/// A runtime that records the specifications it is asked to launch and serves canned
/// containers.
#[derive(Default)]
struct FakeRuntime {
    launched: Mutex<Vec<ContainerSpec>>,
    removed: Mutex<Vec<String>>,
    /// Answer the first launch with a name conflict.
    conflict_once: Mutex<bool>,
    containers: Mutex<Vec<(ListedContainer, ContainerInfo)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap()
}

impl FakeRuntime {
    fn info(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        lock(&self.containers)
            .iter()
            .find(|(listed, _)| listed.id == id)
            .map(|(_, info)| info.clone())
            .ok_or_else(|| RuntimeError::NoSuchContainer { id: id.into() })
    }
}

fn unsupported(operation: &'static str) -> RuntimeError {
    RuntimeError::Docker {
        operation,
        target: "fake".into(),
        reason: "not supported by the fake runtime (HTTP 501)".into(),
    }
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn ensure_image(
        &self,
        _: &str,
        _: bool,
        _: Option<&RegistryAuth>,
    ) -> Result<ImageSource, RuntimeError> {
        Ok(ImageSource::Local)
    }
    async fn inspect_image(&self, _: &str) -> Result<ImageInfo, RuntimeError> {
        Err(unsupported("inspect_image"))
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut conflict = lock(&self.conflict_once);
        if *conflict {
            *conflict = false;
            return Err(RuntimeError::NameConflict {
                name: spec.name.clone().unwrap_or_default(),
                reason: "in use (HTTP 409)".into(),
            });
        }
        let mut launched = lock(&self.launched);
        launched.push(spec.clone());
        Ok(format!("container-{}", launched.len()))
    }
    async fn start(&self, _: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        let info = self.info(id)?;
        Ok(exit_status(info.exit_code.unwrap_or(0), info.oom_killed))
    }
    async fn stop(&self, id: &str, _: Duration) -> Result<(), RuntimeError> {
        self.info(id).map(|_| ())
    }
    async fn kill(&self, _: &str, _: Signal) -> Result<(), RuntimeError> {
        Err(unsupported("kill"))
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        lock(&self.removed).push(id.to_owned());
        Ok(())
    }
    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        self.info(id)
    }
    async fn stats(&self, _: &str) -> Result<UsageStats, RuntimeError> {
        Err(unsupported("stats"))
    }
    async fn update_limits(&self, _: &str, _: &Limits) -> Result<(), RuntimeError> {
        Err(unsupported("update"))
    }
    async fn list(&self, filters: &[LabelFilter]) -> Result<Vec<ListedContainer>, RuntimeError> {
        Ok(lock(&self.containers)
            .iter()
            .map(|(listed, _)| listed.clone())
            .filter(|listed| {
                filters
                    .iter()
                    .all(|filter| listed.labels.get(&filter.key) == filter.value.as_ref())
            })
            .collect())
    }
    async fn stream_logs(
        &self,
        _: &str,
        dir: &Path,
        _: LogOptions,
    ) -> Result<LogTotals, RuntimeError> {
        use std::io::Write;
        let mut stdout = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join(STDOUT_FILE))
            .unwrap();
        stdout.write_all(b"whole log\n").unwrap();
        Ok(LogTotals {
            stdout_bytes: 10,
            ..LogTotals::default()
        })
    }
}

fn config(data_dir: &Path) -> LocalConfig {
    LocalConfig {
        docker_host: None,
        data_dir: data_dir.to_owned(),
        cpus: 2.0,
        mem_mib: 1024.0,
        port_range: (31000, 31002),
        instance_id: "eremetic:/data".into(),
        user_network: None,
        fetch_local_paths: vec![data_dir.to_owned()],
        output_limit: None,
        min_free_bytes: 0,
        fetch_cache: deimos_runtime::fetch::CacheOptions {
            dir: data_dir.join("fetch-cache"),
            max_size: 1 << 20,
            setting: "fetch_cache_dir",
        },
    }
}

/// A minimal valid request, parsed as a client would send it.
fn request() -> NewTask {
    let body =
        br#"{"image": "deimos-test/busybox:latest", "command": "true", "cpu": 0.5, "mem": 64}"#;
    crate::api::parse_v1(body).unwrap()
}

fn task(request: NewTask) -> Task {
    Task::new(
        TaskId::generate([3; 16]),
        "t".into(),
        request,
        OffsetDateTime::UNIX_EPOCH,
    )
}

fn backend(dir: &Path) -> (LocalBackend, Arc<FakeRuntime>) {
    let runtime = Arc::new(FakeRuntime::default());
    let backend = LocalBackend::with_runtime(config(dir), runtime.clone());
    (backend, runtime)
}

fn placed(backend: &LocalBackend, task: &Task) -> Allocation {
    match backend.place(&Resources::of(&task.request)) {
        Reservation::Reserved(allocation) => allocation,
        Reservation::Wait => panic!("expected a placement"),
    }
}

#[test]
fn admissible_names_every_field_beyond_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, _) = backend(dir.path());
    assert_eq!(backend.admissible(&request()), Ok(()));
    let mut big = request();
    big.cpu = 3.0;
    big.network = Network::User;
    big.ports = vec![
        PortRequest {
            container_port: 80,
            protocol: PortProtocol::Tcp
        };
        4
    ];
    let reason = backend.admissible(&big).unwrap_err();
    assert!(reason.contains("cpu: 3 CPUs requested"), "{reason}");
    assert!(reason.contains("31000-31002 has 3"), "{reason}");
    assert!(reason.contains("network: USER"), "{reason}");
    assert!(!reason.contains("mem"), "{reason}");
    let mut constrained = request();
    constrained.agent_constraints = vec![AgentConstraint {
        attribute_name: "rack".into(),
        attribute_value: "a1".into(),
    }];
    let reason = backend.admissible(&constrained).unwrap_err();
    assert!(reason.contains("agent_constraints: rack=a1"), "{reason}");
}

#[test]
fn output_files_have_the_names_the_log_endpoints_serve() {
    use crate::service::LogStream;
    assert_eq!(STDOUT_FILE, LogStream::Stdout.file_name());
    assert_eq!(STDERR_FILE, LogStream::Stderr.file_name());
}

#[test]
fn sandbox_is_under_the_data_directory() {
    let (backend, _) = backend(Path::new("/var/lib/eremetic"));
    let id = TaskId::parse("eremetic-task.x").unwrap();
    assert_eq!(
        backend.sandbox_dir(&id),
        PathBuf::from("/var/lib/eremetic/sandboxes/eremetic-task.x")
    );
}

#[tokio::test]
async fn start_fetches_into_a_fresh_sandbox_and_launches_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, runtime) = backend(dir.path());
    let source = dir.path().join("input.txt");
    std::fs::write(&source, "payload").unwrap();
    let mut req = request();
    req.fetch = vec![FetchUri {
        uri: source.to_string_lossy().into_owned(),
        extract: false,
        executable: true,
        cache: false,
    }];
    req.ports = vec![PortRequest {
        container_port: 80,
        protocol: PortProtocol::Tcp,
    }];
    let task = task(req);
    let sandbox = backend.sandbox_dir(&task.id);
    std::fs::create_dir_all(&sandbox).unwrap();
    std::fs::write(sandbox.join("stdout"), "previous attempt").unwrap();
    let allocation = placed(&backend, &task);
    let run = backend.start_run(&task, 2, &allocation).await.unwrap();
    assert_eq!(run.run_id, format!("{}.2", task.id));
    assert_eq!(run.host_ports, vec![31000]);
    assert_eq!(run.sandbox, sandbox);
    assert_eq!(
        std::fs::read_to_string(sandbox.join("input.txt")).unwrap(),
        "payload"
    );
    assert_eq!(std::fs::read_to_string(sandbox.join("stdout")).unwrap(), "");
    let launched = lock(&runtime.launched);
    assert_eq!(launched.len(), 1);
    assert_eq!(launched[0].name.as_deref(), Some(run.run_id.as_str()));
    assert_eq!(
        launched[0].labels.get(HOST_PORTS_LABEL).map(String::as_str),
        Some("31000")
    );
}

#[tokio::test]
async fn failed_fetch_fails_the_start_naming_the_uri() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, runtime) = backend(dir.path());
    let mut req = request();
    req.fetch = vec![FetchUri::from_plain_uri("/nonexistent/tool.sh")];
    let task = task(req);
    let allocation = placed(&backend, &task);
    let error = backend.start_run(&task, 1, &allocation).await.unwrap_err();
    assert!(error.is_start_failure(), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/tool.sh"),
        "{error}"
    );
    assert!(lock(&runtime.launched).is_empty());
}

#[tokio::test]
async fn a_local_file_replaced_by_a_link_after_submission_is_refused_at_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("eremetic.db"), "other tasks' secrets").unwrap();
    let (backend, runtime) = backend(dir.path());
    // Allowed when submitted; a link to a file outside the allowed directory by the launch.
    let planted = dir.path().join("input.txt");
    std::os::unix::fs::symlink(outside.path().join("eremetic.db"), &planted).unwrap();
    let mut req = request();
    req.fetch = vec![FetchUri::from_plain_uri(&planted.to_string_lossy())];
    let task = task(req);
    let allocation = placed(&backend, &task);
    let error = backend.start_run(&task, 1, &allocation).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("local file refused") && text.contains("resolves to"),
        "{text}"
    );
    assert!(!backend.sandbox_dir(&task.id).join("input.txt").exists());
    assert!(lock(&runtime.launched).is_empty());
}

#[tokio::test]
async fn start_refuses_an_allocation_without_the_requested_ports() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, _) = backend(dir.path());
    let mut req = request();
    req.ports = vec![PortRequest {
        container_port: 80,
        protocol: PortProtocol::Tcp,
    }];
    let allocation = Allocation {
        cpus: 0.5,
        mem_mib: 64.0,
        host_ports: Vec::new(),
    };
    let error = backend
        .start_run(&task(req), 1, &allocation)
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::AllocationMismatch { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn leftover_container_of_the_same_run_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, runtime) = backend(dir.path());
    *lock(&runtime.conflict_once) = true;
    let task = task(request());
    let allocation = placed(&backend, &task);
    let run = backend.start_run(&task, 1, &allocation).await.unwrap();
    assert_eq!(*lock(&runtime.removed), vec![run.run_id.clone()]);
    assert_eq!(lock(&runtime.launched).len(), 1);
}

#[tokio::test]
async fn a_relaunch_removes_the_leftover_container_of_an_earlier_attempt_only() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, runtime) = backend(dir.path());
    let task = task(request());
    let other = TaskId::generate([4; 16]);
    let labelled = |id: &str, task: &TaskId, attempt: u32| {
        let run = format!("{task}.{attempt}");
        let labels = [
            (labels::MANAGED_BY, MANAGED_BY),
            (labels::OWNER, "eremetic:/data"),
            (labels::TASK_ID, task.as_str()),
            (labels::CONTAINER_ID, run.as_str()),
            (HOST_PORTS_LABEL, ""),
        ];
        container(id, &labels, ContainerState::Running, None)
    };
    lock(&runtime.containers).extend([
        labelled("left-by-attempt-0", &task.id, 0),
        labelled("another-task", &other, 0),
    ]);
    let allocation = placed(&backend, &task);
    backend.start_run(&task, 0, &allocation).await.unwrap();
    assert!(
        lock(&runtime.removed).is_empty(),
        "a first launch has no earlier attempt"
    );
    let run = backend.start_run(&task, 1, &allocation).await.unwrap();
    assert_eq!(run.run_id, format!("{}.1", task.id));
    assert_eq!(
        *lock(&runtime.removed),
        vec!["left-by-attempt-0".to_owned()]
    );
}

fn container(
    id: &str,
    labels: &[(&str, &str)],
    state: ContainerState,
    code: Option<i64>,
) -> (ListedContainer, ContainerInfo) {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let listed = ListedContainer {
        id: id.into(),
        names: vec![id.into()],
        image: "busybox".into(),
        state,
        labels: labels.clone(),
    };
    let info = ContainerInfo {
        id: id.into(),
        name: id.into(),
        image: "busybox".into(),
        state,
        running: state == ContainerState::Running,
        pid: None,
        exit_code: code,
        oom_killed: false,
        started_at: Some(OffsetDateTime::UNIX_EPOCH),
        finished_at: None,
        labels,
        limits: Limits::default(),
    };
    (listed, info)
}

#[tokio::test]
async fn recover_reports_own_runs_and_removes_unstarted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, runtime) = backend(dir.path());
    let ours = |task: &'static str, run: &'static str| {
        [
            (labels::MANAGED_BY, "eremetic"),
            (labels::OWNER, "eremetic:/data"),
            (labels::TASK_ID, task),
            (labels::CONTAINER_ID, run),
            (HOST_PORTS_LABEL, "31001"),
        ]
    };
    let foreign = [
        (labels::MANAGED_BY, "eremetic"),
        (labels::OWNER, "eremetic:/elsewhere"),
        (labels::TASK_ID, "t4"),
        (labels::CONTAINER_ID, "t4.1"),
        (HOST_PORTS_LABEL, ""),
    ];
    *lock(&runtime.containers) = vec![
        container("c1", &ours("t1", "t1.1"), ContainerState::Running, None),
        container("c2", &ours("t2", "t2.3"), ContainerState::Exited, Some(3)),
        container("c3", &ours("t3", "t3.1"), ContainerState::Created, None),
        container("c4", &foreign, ContainerState::Running, None),
    ];
    let recovered = backend.find_runs().await.unwrap();
    let summary: Vec<(String, u32, RecoveredState)> = recovered
        .iter()
        .map(|run| (run.task_id.to_string(), run.attempt, run.state.clone()))
        .collect();
    let exited = RunOutcome {
        exit_code: 3,
        oom_killed: false,
        signal: None,
    };
    assert_eq!(
        summary,
        vec![
            ("t1".into(), 1, RecoveredState::Running),
            ("t2".into(), 3, RecoveredState::Exited(exited)),
        ]
    );
    let first = &recovered[0].run;
    assert_eq!(first.container_id, "c1");
    assert_eq!(first.host_ports, vec![31001]);
    assert_eq!(
        first.sandbox,
        backend.sandbox_dir(&TaskId::parse("t1").unwrap())
    );
    assert_eq!(*lock(&runtime.removed), vec!["c3".to_owned()]);
}

#[tokio::test]
async fn wait_replaces_partial_output_with_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, runtime) = backend(dir.path());
    *lock(&runtime.containers) = vec![container("c1", &[], ContainerState::Exited, Some(0))];
    let sandbox = dir.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    std::fs::write(sandbox.join("stdout"), "whole").unwrap();
    let run = Run {
        run_id: "t.1".into(),
        container_id: "c1".into(),
        sandbox: sandbox.clone(),
        host_ports: Vec::new(),
        hostname: "h".into(),
        started_at: OffsetDateTime::UNIX_EPOCH,
    };
    let outcome = backend.wait_run(&run).await.unwrap();
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
        "whole log\n"
    );
    let gone = Run {
        container_id: "c9".into(),
        ..run.clone()
    };
    assert!(backend.wait_run(&gone).await.unwrap_err().is_gone());
    backend
        .stop_run(&gone, Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn remove_sandbox_of_a_missing_sandbox_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, _) = backend(dir.path());
    let id = TaskId::parse("t1").unwrap();
    backend.remove_sandbox(&id).await.unwrap();
    std::fs::create_dir_all(backend.sandbox_dir(&id).join("sub")).unwrap();
    backend.remove_sandbox(&id).await.unwrap();
    assert!(!backend.sandbox_dir(&id).exists());
}

#[tokio::test]
async fn usage_of_a_container_that_stopped_during_the_call_is_none_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, runtime) = backend(dir.path());
    // The fake's statistics always fail, as Docker's do for a container that has just exited.
    *lock(&runtime.containers) = vec![
        container("exited", &[], ContainerState::Exited, Some(0)),
        container("running", &[], ContainerState::Running, None),
    ];
    assert_eq!(backend.usage_of("exited").await.unwrap(), None);
    assert_eq!(backend.usage_of("removed").await.unwrap(), None);
    // A container that still runs and has no statistics is a real failure.
    let error = backend.usage_of("running").await.unwrap_err();
    assert!(error.to_string().contains("running"), "{error}");
}

#[test]
fn launches_wait_while_the_data_dir_is_below_its_free_space_floor() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::default());
    let floor = |min_free_bytes| {
        let config = LocalConfig {
            data_dir: dir.path().to_owned(),
            min_free_bytes,
            ..config(dir.path())
        };
        LocalBackend::with_runtime(config, runtime.clone()).launch_blocker()
    };
    // No file system has a million PiB free.
    let reason = floor(1_000_000 << 50).unwrap();
    let expected = format!("waiting: data_dir {} has ", dir.path().display());
    assert!(reason.starts_with(&expected), "{reason}");
    assert!(reason.contains("free, below the floor of"), "{reason}");
    assert_eq!(floor(0), None);
    assert_eq!(floor(1), None);
}

#[tokio::test]
async fn a_new_attempt_starts_without_the_rotated_output_of_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, _) = backend(dir.path());
    let task = task(request());
    let sandbox = backend.sandbox_dir(&task.id);
    std::fs::create_dir_all(&sandbox).unwrap();
    for (name, text) in [
        ("stdout.1", "old"),
        ("stdout.dropped", "7"),
        ("stderr", "x"),
    ] {
        std::fs::write(sandbox.join(name), text).unwrap();
    }
    let dropped = backend.output_dropped(&task.id).await;
    assert_eq!((dropped.stdout, dropped.stderr), (7, 0));
    // A link the container planted must be removed, never truncated through.
    let host_file = dir.path().join("host-file");
    std::fs::write(&host_file, "precious").unwrap();
    std::os::unix::fs::symlink(&host_file, sandbox.join("stdout")).unwrap();
    let allocation = placed(&backend, &task);
    backend.start_run(&task, 0, &allocation).await.unwrap();
    assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "precious");
    assert!(!sandbox.join("stdout").is_symlink());
    assert_eq!(std::fs::read_to_string(sandbox.join("stdout")).unwrap(), "");
    assert!(!sandbox.join("stdout.1").exists() && !sandbox.join("stdout.dropped").exists());
    assert_eq!(
        backend.output_dropped(&task.id).await,
        OutputDropped::default()
    );
}
