//! `deimos destroy`: stop and remove a container; idempotent.

use std::io::Read;
use std::time::Duration;

use mesos_proto::containerizer::Destroy;

use super::context::{read_request, request_id, Context};
use super::launch::write_small_file;
use super::wait::await_exit;
use super::watcher::{resolve_docker_id, DESTROYED_FILE};
use crate::error::{in_container, Error, Result};
use crate::runtime::{ContainerRuntime, RuntimeError};
use crate::state::{Acquire, LockMode, LockName};

/// How long a destroy waits for a concurrent destroy of the same container.
const DESTROY_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads a `Destroy`, stops the container (SIGTERM, then SIGKILL after the configured grace
/// period), waits until its exit is recorded and removes it. The watcher then runs the
/// `ondestroy` hook. Destroying an unknown or already exited container is not an error.
pub fn destroy(ctx: &Context, input: &mut dyn Read) -> Result<()> {
    let request: Destroy = read_request(input)?;
    let id = request_id(&request.container_id)?;
    in_container(id, || destroy_container(ctx, id))
}

fn destroy_container(ctx: &Context, id: &str) -> Result<()> {
    let dir = match ctx.container(id) {
        Ok(dir) => dir,
        Err(Error::UnknownContainer(_)) => {
            log::info!("destroy: container {id} is unknown; nothing to do");
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    // First, holding nothing else: a destroy holding the directory while it waits here would
    // keep the one ahead of it from restarting a dead watcher (which needs `launch` EX).
    let destroying = dir.lock_if_present(
        LockName::Destroy,
        LockMode::Exclusive,
        Acquire::Timeout(DESTROY_LOCK_TIMEOUT),
    )?;
    // Held while this destroy reads and writes the state directory: `state --rm` leaves it
    // alone meanwhile.
    let in_use = match destroying.is_some() {
        true => dir.hold()?,
        false => None,
    };
    let Some(in_use) = in_use else {
        // A cleanup removed the directory after the container had exited.
        log::info!("destroy: the state of container {id} was removed meanwhile; nothing to do");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start the async runtime"))?;
    let docker = runtime.block_on(ctx.runtime())?;
    // Found by label too: a launch may have died between creating and recording it.
    let docker_id = runtime.block_on(resolve_docker_id(&docker, &dir))?;
    if dir.exit()?.is_none() {
        write_small_file(&dir.file(DESTROYED_FILE), "destroy requested")?;
        if let Some(docker_id) = &docker_id {
            let grace = ctx.config.containers.stop_grace_period;
            match runtime.block_on(docker.stop(docker_id, grace)) {
                Ok(()) | Err(RuntimeError::NoSuchContainer { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        // The watcher records the exit (a new one is started if it died; with no container
        // ever created, it records that). `await_exit` holds the directory itself, and must
        // be able to restart a watcher, which needs `launch` exclusively: let ours go.
        drop(in_use);
        if await_exit(ctx, &dir, false)?.is_none() {
            log::info!("destroy: the state of container {id} was removed after its exit");
        }
    }
    // The watcher removes the container once the exit is recorded; this covers a watcher
    // that died in between. Removing an absent container is not an error.
    if let Some(docker_id) = docker_id {
        runtime.block_on(docker.remove(&docker_id))?;
    }
    log::info!("container {id} destroyed");
    Ok(())
}
