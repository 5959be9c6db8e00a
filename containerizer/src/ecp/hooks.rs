//! The `[hooks]` programs: `onlaunch` just before the container starts, `ondestroy` once the
//! container has exited and been removed.
//!
//! Like Deimos, a hook runs with the task's environment instead of ours (the task's variables
//! plus the `MESOS_*` ones the container gets); unlike Deimos (D-16) it also gets a `PATH`
//! when the task sets none, and `DEIMOS_CONTAINER_ID`. Hooks get /dev/null as standard
//! streams. `onlaunch` is not waited for (the agent's registration timer runs during launch);
//! `ondestroy` is run by the long-lived watcher, which reaps it (waiting at most
//! [`ONDESTROY_TIMEOUT`]).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::spec::EnvVar;

/// How long the watcher waits for `ondestroy` before leaving it running.
pub(super) const ONDESTROY_TIMEOUT: Duration = Duration::from_secs(30);

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Starts a hook; failures are logged, never fatal (as in Deimos).
pub(super) fn start(
    name: &str,
    argv: &[String],
    env: &[EnvVar],
    container_id: &str,
) -> Option<Child> {
    let (program, args) = argv.split_first()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if !env.iter().any(|v| v.name == "PATH") {
        command.env("PATH", DEFAULT_PATH);
    }
    command.envs(env.iter().map(|v| (&v.name, &v.value)));
    command.env("DEIMOS_CONTAINER_ID", container_id);
    match command.spawn() {
        Ok(child) => {
            log::info!(
                "{name} hook {program:?} started (pid {}) for container {container_id}",
                child.id()
            );
            Some(child)
        }
        Err(error) => {
            log::warn!(
                "{name} hook {program:?} for container {container_id} could not start: {error}"
            );
            None
        }
    }
}

/// Waits for a hook to finish, at most `timeout`; logs how it ended.
pub(super) fn reap(name: &str, mut child: Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                log::warn!("{name} hook (pid {}) ended with {status}", child.id());
                return;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                log::warn!(
                    "{name} hook (pid {}) still runs after {timeout:?}; leaving it",
                    child.id()
                );
                return;
            }
            Err(error) => {
                log::warn!(
                    "{name} hook (pid {}): cannot wait for it: {error}",
                    child.id()
                );
                return;
            }
        }
    }
}
