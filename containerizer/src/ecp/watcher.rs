//! The watcher: the detached process (`deimos watch <id>`) that follows one container.
//!
//! It takes the `observe` and `wait` locks exclusively, says `ready` on its stdout (the pipe
//! to whoever started it, who holds the `launch` lock until then), starts the observer
//! executor of a command task, streams the container's output into `<sandbox>/stdout` and
//! `<sandbox>/stderr`, waits for the exit, records it (retrying until it is written, e.g. on a
//! full state root, the stopped container kept meanwhile), removes the container and releases
//! `wait`; then it waits for the observer (so its final status update reaches the agent
//! before `wait` answers), releases `observe` and runs the `ondestroy` hook. When it cannot
//! get ready it answers `failed: <cause>` instead of `ready`.
//!
//! Its orders come as one JSON document on stdin ([`WatchOrder`]); its log goes to
//! `<state dir>/watcher.log`. A watcher that dies (even by SIGKILL) loses nothing: locks are
//! released by the kernel, and the next `wait` starts a new one.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::context::Context;
use super::hooks;
use crate::error::{in_container, Error, Result};
use crate::runtime::lifecycle::{self, EnginePolicy};
use crate::runtime::{
    ContainerRuntime, DockerRuntime, ExitStatus, LabelFilter, LogOptions, RuntimeError,
};
use crate::spec::{labels, EnvVar};
use crate::state::{Acquire, ContainerDir, ExitRecord, LockGuard, LockMode, LockName};

/// File in the state directory whose presence says a `destroy` stopped the container.
pub(super) const DESTROYED_FILE: &str = "destroyed";
/// The watcher's log file in the state directory.
pub(super) const WATCHER_LOG: &str = crate::state::files::WATCHER_LOG;

/// Set (to `1`) in the environment of the `deimos watch` that [`spawn_watcher`] starts: that
/// process only starts the real watcher and exits (see [`detach`]).
const DETACH_ENV: &str = "DEIMOS_WATCH_DETACH";

/// How long a new watcher waits for the locks (only transient holders can be in the way).
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the observer may take to report after the container exited.
const OBSERVER_GRACE: Duration = Duration::from_secs(10);
/// How often the watcher checks that the observer still runs while the container does.
const OBSERVER_POLL: Duration = Duration::from_millis(100);
/// The first pause between attempts to write the exit record (state root full...).
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest pause between attempts to write the exit record.
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

/// The watcher's answer on its stdout once it holds its locks.
const READY: &str = "ready";
/// The start of the watcher's answer when it cannot start, followed by the cause: its log may
/// be unwritable (a full state root), so the cause travels back to whoever started it.
const FAILED: &str = "failed:";

/// What a watcher is asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct WatchOrder {
    /// The Mesos sandbox, where `stdout` and `stderr` are written.
    pub sandbox_dir: PathBuf,
    /// The observer executor to start (command tasks of a fresh launch only).
    pub observer: Option<Vec<String>>,
    /// The environment of the `ondestroy` hook (the task's).
    pub hook_env: Vec<(String, String)>,
    /// Resume the log stream from this time (Unix seconds) instead of the beginning.
    pub logs_since: Option<i64>,
}

impl WatchOrder {
    /// The order for a watcher that replaces a dead one: same sandbox (as recorded at the
    /// launch; `fallback_sandbox` when unknown), logs resumed from the last write to the
    /// output files, no observer (it was started by the first watcher).
    pub(super) fn resume(dir: &ContainerDir, fallback_sandbox: &Path) -> WatchOrder {
        let sandbox_dir = match dir.sandbox() {
            Ok(Some(sandbox)) => sandbox,
            Ok(None) => fallback_sandbox.to_path_buf(),
            Err(error) => {
                log::warn!(
                    "reading the sandbox of {}: {error}; using {}",
                    dir.id(),
                    fallback_sandbox.display()
                );
                fallback_sandbox.to_path_buf()
            }
        };
        let logs_since = [crate::runtime::STDOUT_FILE, crate::runtime::STDERR_FILE]
            .iter()
            .filter_map(|name| {
                fs::metadata(sandbox_dir.join(name))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .max()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        WatchOrder {
            sandbox_dir,
            observer: None,
            hook_env: Vec::new(),
            logs_since,
        }
    }
}

/// Where a new watcher process goes in the process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// A child of the caller: fine for `launch`, which exits at once (the agent never kills
    /// the process tree of a `launch`), and one process start cheaper.
    Child,
    /// Nobody's descendant, through an intermediate process: for watchers started by `wait`
    /// or `recover`, whose process trees the agent may SIGKILL.
    Detached,
}

/// Starts a watcher for `dir` and returns once it holds its locks.
///
/// The caller must hold the `launch` lock exclusively.
pub(super) fn spawn_watcher(
    ctx: &Context,
    dir: &ContainerDir,
    order: &WatchOrder,
    placement: Placement,
) -> Result<u32> {
    let log_path = dir.file(WATCHER_LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(Error::io(format!(
            "open the watcher log {}",
            log_path.display()
        )))?;
    let mut command = Command::new(&ctx.deimos_exe);
    command
        .args(["watch", dir.id().as_str()])
        .current_dir(&ctx.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log);
    if let Some(source) = &ctx.config_source {
        // The watcher and the observer must load the configuration this launch used.
        command.env(crate::config::CONFIG_ENV_VAR, source);
    }
    if placement == Placement::Detached {
        command.env(DETACH_ENV, "1");
    }
    let mut child = command
        .spawn()
        .map_err(|e| Error::Watcher(format!("{}: {e}", ctx.deimos_exe.display())))?;
    let pid = child.id();
    let order_json =
        serde_json::to_vec(order).map_err(|e| Error::Internal(format!("watch order: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&order_json)
            .map_err(|e| Error::Watcher(format!("sending its orders: {e}")))?;
    }
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| Error::Watcher(format!("reading its answer: {e}")))?;
    }
    let answer = line.trim_end();
    let failed = answer.is_empty() || answer.starts_with(FAILED);
    // The intermediate process of a detached start exits as soon as the real watcher runs,
    // and a watcher that could not get ready exits at once: reap either.
    let status = match placement == Placement::Detached || failed {
        true => child
            .wait()
            .map_err(|error| log::warn!("reaping the watcher (pid {pid}): {error}"))
            .ok(),
        false => None,
    };
    if answer == READY {
        return Ok(dir.watcher_pid()?.unwrap_or(pid));
    }
    Err(Error::Watcher(match answer.strip_prefix(FAILED) {
        Some(cause) => cause.trim_start().to_owned(),
        None if answer.is_empty() => {
            let how = match (placement, status) {
                (Placement::Child, Some(status)) => format!(" ({status})"),
                _ => String::new(),
            };
            format!(
                "it exited{how} before it was ready{}",
                log_excerpt(&log_path)
            )
        }
        None => format!("it answered {answer:?} instead of {READY:?}"),
    }))
}

/// The last line of the watcher's log, for an error message (`; its log … is empty` when
/// there is none).
fn log_excerpt(log_path: &Path) -> String {
    let text = fs::read_to_string(log_path).unwrap_or_default();
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(last) => format!("; last line of {}: {}", log_path.display(), last.trim()),
        None => format!("; its log {} is empty", log_path.display()),
    }
}

/// Starts the real watcher (this program, `watch <id>`, same standard streams) and returns at
/// once, so that the watcher is nobody's descendant: a Mesos agent SIGKILLs the whole process
/// tree of a `wait` after a `destroy`, and a watcher that this `wait` restarted must survive
/// that. The pipes to whoever started us are inherited, so readiness still reaches them.
fn detach(ctx: &Context, container_id: &str) -> Result<()> {
    Command::new(&ctx.deimos_exe)
        .args(["watch", container_id])
        .env_remove(DETACH_ENV)
        .current_dir(&ctx.cwd)
        .spawn()
        .map(drop)
        .map_err(|e| Error::Watcher(format!("{}: {e}", ctx.deimos_exe.display())))
}

/// `deimos watch <id>`: the detached watcher's entry point.
pub fn watch(
    ctx: &Context,
    container_id: &str,
    orders: &mut dyn Read,
    ready: &mut dyn Write,
) -> Result<()> {
    in_container(container_id, || {
        if ctx.var(DETACH_ENV).is_some() {
            return detach(ctx, container_id);
        }
        watch_container_process(ctx, container_id, orders, ready)
    })
}

fn watch_container_process(
    ctx: &Context,
    container_id: &str,
    orders: &mut dyn Read,
    ready: &mut dyn Write,
) -> Result<()> {
    // A session of our own: the agent kills the process trees of its ECP calls, not us.
    if let Err(error) = nix::unistd::setsid() {
        log::debug!("setsid: {error} (already a session leader)");
    }
    let (dir, order, guards) = match prepare(ctx, container_id, orders) {
        Ok(prepared) => prepared,
        Err(error) => {
            let cause = error.to_string().replace('\n', " ");
            // Best effort: whoever started us may have gone.
            let _ = writeln!(ready, "{FAILED} {cause}").and_then(|()| ready.flush());
            return Err(error);
        }
    };
    if let Err(error) = writeln!(ready, "{READY}").and_then(|()| ready.flush()) {
        // Whoever started us died after we took the locks (the agent kills the process tree
        // of a `wait`): the container still needs its watcher.
        log::warn!("cannot report readiness: {error}; watching anyway");
    }
    follow(ctx, &dir, &order, guards)
}

/// Everything before readiness: the state directory, the orders, the locks, the pid record.
fn prepare(
    ctx: &Context,
    container_id: &str,
    orders: &mut dyn Read,
) -> Result<(ContainerDir, WatchOrder, Guards)> {
    let dir = ctx.container(container_id)?;
    let mut text = Vec::new();
    orders
        .read_to_end(&mut text)
        .map_err(Error::io("read the watch order"))?;
    let order: WatchOrder = serde_json::from_slice(&text)
        .map_err(|e| Error::InvalidRequest(format!("watch order: {e}")))?;
    let guards = Guards::take(&dir)?;
    dir.record_watcher_pid(std::process::id())?;
    Ok((dir, order, guards))
}

/// The locks a watcher holds.
pub(super) struct Guards {
    observe: LockGuard,
    wait: LockGuard,
}

impl Guards {
    /// Takes `observe` and `wait` exclusively.
    pub(super) fn take(dir: &ContainerDir) -> Result<Guards> {
        let observe = dir.lock(
            LockName::Observe,
            LockMode::Exclusive,
            Acquire::Timeout(LOCK_TIMEOUT),
        )?;
        let wait = dir.lock(
            LockName::Wait,
            LockMode::Exclusive,
            Acquire::Timeout(LOCK_TIMEOUT),
        )?;
        // Nothing is written into the lock files: `deimos locks` reads holders from
        // /proc/locks, and empty files keep the state directory cheap to remove.
        Ok(Guards { observe, wait })
    }
}

/// Follows the container to its end (also used in the foreground by `launch --no-fork`).
pub(super) fn follow(
    ctx: &Context,
    dir: &ContainerDir,
    order: &WatchOrder,
    guards: Guards,
) -> Result<()> {
    let Guards { observe, wait } = guards;
    let mut observer = order
        .observer
        .as_deref()
        .and_then(|argv| start_observer(argv, dir, &order.sandbox_dir));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start the async runtime"))?;
    let exit = runtime.block_on(watch_with_observer(ctx, dir, order, observer.as_mut()))?;
    log::info!(
        "container {} ended: {}",
        dir.id(),
        super::termination_of(&exit).message.unwrap_or_default()
    );
    drop(wait);
    if let Some(child) = observer {
        finish_observer(child, dir);
    }
    drop(observe);
    let hook_env: Vec<EnvVar> = order
        .hook_env
        .iter()
        .map(|(n, v)| EnvVar::new(n, v))
        .collect();
    if let Some(child) = hooks::start(
        "ondestroy",
        &ctx.config.hooks.ondestroy,
        &hook_env,
        dir.id().as_str(),
    ) {
        hooks::reap("ondestroy", child, hooks::ONDESTROY_TIMEOUT);
    }
    Ok(())
}

/// [`watch_container`], and while the container runs, the observer executor: when it ends
/// first, the task has nobody reporting on it any more and is over for the agent (killed
/// before `deimos observe` had installed its signal handler, SIGKILLed after the kill grace
/// period, or gone for any other reason), so the container is stopped rather than left
/// running with no executor.
async fn watch_with_observer(
    ctx: &Context,
    dir: &ContainerDir,
    order: &WatchOrder,
    mut observer: Option<&mut Child>,
) -> Result<ExitRecord> {
    let watch = watch_container(ctx, dir, order);
    tokio::pin!(watch);
    loop {
        let Some(child) = observer.as_deref_mut() else {
            return watch.await;
        };
        tokio::select! {
            exit = &mut watch => return exit,
            () = tokio::time::sleep(OBSERVER_POLL) => {
                if let Ok(Some(status)) = child.try_wait() {
                    log::warn!(
                        "observer of {} ended ({status}) while the container runs; stopping it",
                        dir.id()
                    );
                    stop_container(ctx, dir).await;
                    observer = None;
                }
            }
        }
    }
}

/// Stops the container with the configured grace period (the exit is recorded by the watch).
async fn stop_container(ctx: &Context, dir: &ContainerDir) {
    let stopped = async {
        let runtime = ctx.runtime().await?;
        if let Some(docker_id) = resolve_docker_id(&runtime, dir).await? {
            runtime
                .stop(&docker_id, ctx.config.containers.stop_grace_period)
                .await?;
        }
        Ok::<_, Error>(())
    };
    if let Err(error) = stopped.await {
        log::error!("stopping container {}: {error}", dir.id());
    }
}

/// Follows the container to its exit, records the exit and removes the container.
async fn watch_container(
    ctx: &Context,
    dir: &ContainerDir,
    order: &WatchOrder,
) -> Result<ExitRecord> {
    let runtime = ctx.runtime().await?;
    let Some(docker_id) = resolve_docker_id(&runtime, dir).await? else {
        let exit = unknown_exit("the launch did not complete: no container was created");
        record_exit_durably(dir, &exit).await?;
        return Ok(exit);
    };
    let since = order
        .logs_since
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
    // Only this watcher can ever record the exit, and the container survives a Docker
    // restart (live-restore): ride out an unreachable engine for as long as it takes.
    let end = lifecycle::run_to_exit(
        &runtime,
        &docker_id,
        &order.sandbox_dir,
        LogOptions::since(since),
        &EnginePolicy::forever(),
    )
    .await;
    if let Err(error) = &end.output {
        log::warn!("log stream of {docker_id}: {error}");
    }
    let exit = exit_record(end.exit, &docker_id, dir);
    // Removed only once the exit is recorded: until then the stopped container is where the
    // exit can be read again (by a new watcher or `recover`) if this watcher dies.
    record_exit_durably(dir, &exit).await?;
    if let Err(error) = runtime.remove(&docker_id).await {
        log::warn!("removing container {docker_id}: {error}");
    }
    Ok(exit)
}

/// Writes the exit record, retrying with back-off (each failure logged) until it is written:
/// meanwhile `wait` stays locked, so no waiter sees the container end without its status.
/// Gives up only when the state directory is gone (removed behind our back: nobody can wait
/// for the container any more).
async fn record_exit_durably(dir: &ContainerDir, exit: &ExitRecord) -> Result<()> {
    let mut pause = RECORD_RETRY_FIRST;
    loop {
        match dir.record_exit(exit) {
            Ok(()) => return Ok(()),
            Err(error) if !dir.path().is_dir() => return Err(error.into()),
            Err(error) => {
                log::error!(
                    "cannot record the exit of container {}: {error}; the container is kept, \
                     retrying in {pause:?}",
                    dir.id()
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RECORD_RETRY_MAX);
            }
        }
    }
}

/// The exit record of a wait's result: a missing container (or, never with a policy that
/// rides out forever, a failed wait) is an exit whose status is unknown.
fn exit_record(
    exit: std::result::Result<ExitStatus, RuntimeError>,
    docker_id: &str,
    dir: &ContainerDir,
) -> ExitRecord {
    let destroyed = dir.file(DESTROYED_FILE).exists();
    match exit {
        Ok(status) => ExitRecord {
            exit_code: i32::try_from(status.exit_code).ok(),
            signal: status.signal,
            oom_killed: status.oom_killed,
            destroyed,
            message: String::new(),
            finished_at: Some(OffsetDateTime::now_utc()),
        },
        Err(error) => {
            let message = match error {
                RuntimeError::NoSuchContainer { .. } => {
                    format!("container {docker_id} disappeared while it was watched")
                }
                other => format!("waiting for container {docker_id} failed: {other}"),
            };
            ExitRecord {
                destroyed,
                ..unknown_exit(&message)
            }
        }
    }
}

/// The Docker id from the state directory, or found by label when the launch died between
/// creating the container and recording its id.
pub(super) async fn resolve_docker_id(
    runtime: &DockerRuntime,
    dir: &ContainerDir,
) -> Result<Option<String>> {
    if let Some(id) = dir.docker_id()? {
        return Ok(Some(id));
    }
    let filters = [
        LabelFilter::equals(labels::MANAGED_BY, "deimos"),
        LabelFilter::equals(labels::CONTAINER_ID, dir.id().as_str()),
    ];
    let found = runtime
        .list(&filters)
        .await?
        .into_iter()
        .next()
        .map(|c| c.id);
    if let Some(id) = &found {
        dir.record_docker_id(id)?;
    }
    Ok(found)
}

/// An exit whose status could not be observed.
pub(super) fn unknown_exit(message: &str) -> ExitRecord {
    ExitRecord {
        exit_code: None,
        signal: None,
        oom_killed: false,
        destroyed: false,
        message: message.to_owned(),
        finished_at: Some(OffsetDateTime::now_utc()),
    }
}

fn start_observer(argv: &[String], dir: &ContainerDir, sandbox: &Path) -> Option<Child> {
    let (program, args) = argv.split_first()?;
    let output = |name: &str| {
        File::create(dir.file(name))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(output("observer.out"))
        .stderr(output("observer.err"))
        .env("LIBPROCESS_PORT", "0");
    match command.spawn() {
        Ok(child) => {
            log::info!("observer {program:?} started (pid {})", child.id());
            Some(child)
        }
        Err(error) => {
            log::error!("observer {program:?} could not start: {error}");
            None
        }
    }
}

/// Gives the observer [`OBSERVER_GRACE`] to report the task's end, then stops it.
fn finish_observer(mut child: Child, dir: &ContainerDir) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let deadline = Instant::now() + OBSERVER_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            log::info!("observer of {} ended with {status}", dir.id());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log::warn!(
        "observer of {} still runs {OBSERVER_GRACE:?} after the exit; terminating it",
        dir.id()
    );
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    std::thread::sleep(Duration::from_secs(1));
    let _ = child.kill();
    let _ = child.wait();
}
