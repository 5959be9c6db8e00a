//! `deimos wait` (the agent's) and `deimos observe <id>` (the observer executor's): block until
//! the container has exited.

use std::io::{Read, Write};
use std::time::Duration;

use mesos_proto::containerizer::Wait;
use mesos_proto::ecp;

use super::context::{read_request, request_id, Context};
use super::termination_of;
use super::watcher::{spawn_watcher, Placement, WatchOrder};
use crate::error::{in_container, Error, Result};
use crate::runtime::ContainerRuntime;
use crate::state::{Acquire, ContainerDir, ExitRecord, LockMode, LockName};

/// Reads a `Wait`, blocks until the container has exited and writes its `Termination`.
///
/// Safe to run before `launch` has finished (it waits for it), several times at once, after
/// the watcher died (it starts a new one), and to be SIGKILLed at any moment (it only reads).
pub fn wait(ctx: &Context, input: &mut dyn Read, output: &mut dyn Write) -> Result<()> {
    let request: Wait = read_request(input)?;
    let id = request_id(&request.container_id)?;
    in_container(id, || {
        let dir = ctx.container(id)?;
        let exit = await_exit(ctx, &dir, true)?.ok_or_else(|| removed(id))?;
        ecp::write_message(output, &termination_of(&exit))?;
        Ok(())
    })
}

/// `deimos observe <id>`: blocks until the container has exited and returns the exit code the
/// process should exit with (the container's; 128 + signal when it was killed by a signal).
/// SIGTERM or SIGINT (the observer executor killing its task) stops the container with the
/// configured grace period, then keeps waiting.
pub fn observe(ctx: &Context, container_id: &str) -> Result<i32> {
    in_container(container_id, || observe_container(ctx, container_id))
}

fn observe_container(ctx: &Context, container_id: &str) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(Error::io("start the async runtime"))?;
    // First of all: the executor may kill its task as soon as it has started us, and SIGTERM
    // before the handlers are installed would end this process and leave the container.
    let signals = runtime.block_on(async { stop_signals() });
    let dir = ctx.container(container_id)?;
    let exit = runtime.block_on(async {
        let waiter = {
            let (ctx, dir) = (ctx.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                await_exit(&ctx, &dir, false)?.ok_or_else(|| removed(dir.id().as_str()))
            })
        };
        tokio::spawn(stop_on_signal(signals, ctx.clone(), dir.clone()));
        waiter
            .await
            .map_err(|e| Error::Internal(format!("observe: waiting task failed: {e}")))?
    })?;
    Ok(observed_exit_code(&exit))
}

/// The exit code `observe` reports for an exit record.
fn observed_exit_code(exit: &ExitRecord) -> i32 {
    match (exit.signal, exit.exit_code) {
        (Some(signal), _) => 128 + (signal & 0x7f),
        (None, Some(code)) => code & 0xff,
        (None, None) => 1,
    }
}

/// SIGTERM and SIGINT, caught from now on (`None` when they cannot be).
fn stop_signals() -> Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => {
            log::warn!("observe: cannot install signal handlers");
            None
        }
    }
}

async fn stop_on_signal(
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
    ctx: Context,
    dir: ContainerDir,
) {
    let Some((mut term, mut int)) = signals else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    log::info!("observe: stopping container {} on request", dir.id());
    let stopped = async {
        let docker_id = dir
            .docker_id()?
            .ok_or_else(|| Error::Internal("no Docker id recorded".into()))?;
        ctx.runtime()
            .await?
            .stop(&docker_id, ctx.config.containers.stop_grace_period)
            .await?;
        Ok::<_, Error>(())
    };
    if let Err(error) = stopped.await {
        log::error!("observe: stopping container {}: {error}", dir.id());
    }
}

/// Blocks until the exit of the container is recorded, starting a new watcher when the
/// previous one died. `take_observe` also waits for the observer executor to finish.
/// `Ok(None)` when the state directory is gone (removed by `state --rm` before this call got
/// to it).
///
/// Holds `launch` shared from the first look at the directory until the exit is read, so that
/// `state --rm` cannot remove the directory under a waiter (for instance while the observer
/// executor still reports and the exit is recorded already); it is released only to restart a
/// watcher, which needs `launch` exclusively. Callers must not hold it themselves.
pub(super) fn await_exit(
    ctx: &Context,
    dir: &ContainerDir,
    take_observe: bool,
) -> Result<Option<ExitRecord>> {
    loop {
        let Some(in_use) = dir.hold()? else {
            return Ok(None);
        };
        let observe = match take_observe {
            true => Some(dir.lock(LockName::Observe, LockMode::Shared, Acquire::Blocking)?),
            false => None,
        };
        let wait = dir.lock(LockName::Wait, LockMode::Shared, Acquire::Blocking)?;
        if let Some(exit) = dir.exit()? {
            return Ok(Some(exit));
        }
        drop((wait, observe, in_use));
        restart_watcher(ctx, dir)?;
    }
}

/// The error of a call about a container whose state `state --rm` removed meanwhile.
fn removed(id: &str) -> Error {
    Error::UnknownContainer(id.to_owned())
}

/// Starts a watcher for a container nobody watches (its watcher died), under `lock.launch`.
pub(super) fn restart_watcher(ctx: &Context, dir: &ContainerDir) -> Result<()> {
    let launch = dir.lock(LockName::Launch, LockMode::Exclusive, Acquire::Blocking)?;
    if dir.exit()?.is_some() || dir.is_locked_exclusively(LockName::Wait)? {
        return Ok(()); // somebody else did it
    }
    log::warn!("container {} has no watcher; starting a new one", dir.id());
    let order = WatchOrder::resume(dir, &ctx.cwd);
    let result = spawn_watcher(ctx, dir, &order, Placement::Detached);
    drop(launch);
    if result.is_err() {
        // Do not spin: give whatever is wrong a moment before the caller retries.
        std::thread::sleep(Duration::from_millis(500));
    }
    result.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_reports_signal_as_128_plus_signal() {
        let exit = ExitRecord {
            signal: Some(9),
            ..ExitRecord::with_code(137)
        };
        assert_eq!(observed_exit_code(&exit), 137);
        assert_eq!(observed_exit_code(&ExitRecord::with_code(3)), 3);
        assert_eq!(
            observed_exit_code(&ExitRecord {
                exit_code: None,
                ..ExitRecord::with_code(0)
            }),
            1
        );
    }
}
