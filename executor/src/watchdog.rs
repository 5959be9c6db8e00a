//! No container outlives its executor: a watchdog process removes the containers of an
//! executor that died without doing it itself (SIGKILL, the agent destroying it after the
//! shutdown grace period, a crash).
//!
//! # Mechanism
//!
//! - Every executor process draws a random **instance id** and labels each of its containers
//!   with it ([`labels::EXECUTOR_INSTANCE`], next to the other `io.deimos.*` labels).
//! - At start, before it subscribes, the executor creates a pipe (the **lifeline**) and keeps
//!   its write end open for as long as it lives; the end is close-on-exec, and the executor
//!   starts no other program, so nobody else holds it. The kernel closes it when the
//!   executor's process ends, however it ends.
//! - The watchdog is this program (`deimos-executor watchdog <instance>`) reading the
//!   lifeline's read end as its stdin. It is started through a short-lived intermediate
//!   process and calls `setsid`, so that it is nobody's descendant and in a session of its
//!   own: the agent's kill of the executor's process tree, process group or session
//!   (Mesos' POSIX launcher) does not reach it. It tells the executor it is ready on a second
//!   pipe, then waits.
//! - When reading the lifeline gives end-of-file, the executor is gone: the watchdog removes
//!   (kills) every container labelled `io.deimos.managed-by=deimos-executor` with its
//!   instance id, retrying while the Docker engine is unreachable for up to
//!   [`SWEEP_PATIENCE`], and exits. After a normal exit the executor has already removed its
//!   containers and the sweep finds none.
//!
//! The bound: the containers are gone a Docker `remove` after the executor's death (well
//! under a second on a working engine; the executor's test allows 10 s).
//!
//! Limit: under an agent whose launcher kills the executor's whole cgroup (Mesos' Linux
//! launcher), the watchdog, being in that cgroup, dies with the executor; the containers
//! then survive until someone removes them by their labels.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deimos_runtime::runtime::{ContainerRuntime, DockerRuntime, LabelFilter};
use deimos_runtime::spec::labels;

use crate::error::Error;
use crate::task::MANAGED_BY;

/// The first argument that starts the watchdog (`deimos-executor watchdog <instance>`).
pub const WATCHDOG_ARG: &str = "watchdog";

/// Set for the intermediate process, which only starts the real watchdog and exits.
const DETACH_ENV: &str = "DEIMOS_EXECUTOR_WATCHDOG_DETACH";

/// The watchdog's answer once it runs in its own session.
const READY: &str = "ready";

/// How long the watchdog keeps trying to remove the containers while Docker fails.
pub const SWEEP_PATIENCE: Duration = Duration::from_secs(60);

/// Pause between two sweeps when one failed.
const SWEEP_RETRY: Duration = Duration::from_secs(1);

/// The executor's end of the lifeline: the watchdog sweeps when it is closed, that is when
/// the executor process ends. Keep it for the executor's whole life.
#[derive(Debug)]
pub struct Lifeline {
    _write_end: OwnedFd,
}

/// Starts the watchdog of the executor `instance` and returns once it runs on its own.
pub fn start(instance: &str) -> Result<Lifeline, Error> {
    let failed = |reason: String| Error::Watchdog { reason };
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|error| failed(format!("creating the lifeline pipe: {error}")))?;
    let program = std::env::current_exe()
        .map_err(|error| failed(format!("finding this program's path: {error}")))?;
    let mut intermediate = Command::new(&program)
        .args([WATCHDOG_ARG, instance])
        .env(DETACH_ENV, "1")
        .stdin(Stdio::from(read_end))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| failed(format!("starting {}: {error}", program.display())))?;
    // The watchdog holds the answer pipe's write end after the intermediate exits: the line
    // (or end-of-file, if it failed) comes from it.
    let mut answer = String::new();
    if let Some(stdout) = intermediate.stdout.take() {
        BufReader::new(stdout)
            .read_line(&mut answer)
            .map_err(|error| failed(format!("reading its answer: {error}")))?;
    }
    let status = intermediate.wait();
    if answer.trim_end() != READY {
        return Err(failed(format!(
            "it answered {:?} instead of {READY:?} (intermediate process: {status:?})",
            answer.trim_end()
        )));
    }
    Ok(Lifeline {
        _write_end: write_end,
    })
}

/// `deimos-executor watchdog <instance>`: the intermediate process starts the real watchdog
/// (same standard streams) and returns; the real one waits for the end of the lifeline on
/// stdin, then removes the instance's containers. Returns the process exit code.
pub fn main(instance: &str) -> u8 {
    if std::env::var_os(DETACH_ENV).is_some() {
        return detach(instance);
    }
    // A session of our own: kills aimed at the executor's group or session miss us.
    if let Err(error) = nix::unistd::setsid() {
        log::warn!("watchdog: setsid: {error}");
    }
    {
        let mut stdout = std::io::stdout().lock();
        // Best effort: an executor that died already just means sweeping at once.
        let _ = std::io::Write::write_all(&mut stdout, format!("{READY}\n").as_bytes())
            .and_then(|()| std::io::Write::flush(&mut stdout));
    }
    // Close our copy of the answer pipe: the executor must not wait for it any longer.
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(null);
    }
    wait_for_end_of_lifeline();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            log::error!("watchdog: cannot start the async runtime: {error}");
            return 2;
        }
    };
    match runtime.block_on(sweep_with_patience(instance)) {
        Ok(0) => 0,
        Ok(removed) => {
            log::warn!(
                "watchdog: the executor (instance {instance}) died; removed {removed} container(s)"
            );
            0
        }
        Err(error) => {
            log::error!("watchdog: the containers of executor instance {instance} could not be removed: {error}");
            1
        }
    }
}

fn detach(instance: &str) -> u8 {
    let spawned = std::env::current_exe().and_then(|program| {
        Command::new(program)
            .args([WATCHDOG_ARG, instance])
            .env_remove(DETACH_ENV)
            .spawn()
    });
    match spawned {
        Ok(_) => 0,
        Err(error) => {
            log::error!("watchdog: starting the watchdog process: {error}");
            1
        }
    }
}

/// Reads stdin until end-of-file (the executor writes nothing; anything read is ignored).
fn wait_for_end_of_lifeline() {
    let mut stdin = std::io::stdin().lock();
    let mut buffer = [0u8; 64];
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                log::warn!("watchdog: reading the lifeline: {error}; sweeping now");
                return;
            }
        }
    }
}

/// [`sweep`] against the local Docker engine, retried for [`SWEEP_PATIENCE`].
async fn sweep_with_patience(instance: &str) -> Result<usize, Error> {
    let deadline = Instant::now() + SWEEP_PATIENCE;
    loop {
        let attempt = match DockerRuntime::connect(None).await {
            Ok(docker) => sweep(&docker, instance).await,
            Err(error) => Err(Error::Docker(error)),
        };
        match attempt {
            Err(error) if Instant::now() < deadline => {
                log::warn!("watchdog: {error}; retrying in {SWEEP_RETRY:?}");
                tokio::time::sleep(SWEEP_RETRY).await;
            }
            done => return done,
        }
    }
}

/// Removes (killing) every container of the executor `instance`; returns how many there
/// were.
pub async fn sweep(runtime: &dyn ContainerRuntime, instance: &str) -> Result<usize, Error> {
    let filters = [
        LabelFilter::equals(labels::MANAGED_BY, MANAGED_BY),
        LabelFilter::equals(labels::EXECUTOR_INSTANCE, instance),
    ];
    let found = runtime.list(&filters).await?;
    for container in &found {
        runtime.remove(&container.id).await?;
    }
    Ok(found.len())
}
