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
    drop(dir.lock(LockName::Launch, LockMode::Shared, Acquire::Blocking)?);
    let _destroying = dir.lock(
        LockName::Destroy,
        LockMode::Exclusive,
        Acquire::Timeout(DESTROY_LOCK_TIMEOUT),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start the async runtime"))?;
    let docker = runtime.block_on(ctx.runtime())?;
    // Found by label too: a launch may have died between creating and recording it.
    let Some(docker_id) = runtime.block_on(resolve_docker_id(&docker, &dir))? else {
        // No container was ever created; the watcher (or `wait`) records that.
        if dir.exit()?.is_none() {
            write_small_file(&dir.file(DESTROYED_FILE), "destroy requested")?;
            await_exit(ctx, &dir, false)?;
        }
        return Ok(());
    };
    if dir.exit()?.is_none() {
        write_small_file(&dir.file(DESTROYED_FILE), "destroy requested")?;
        let grace = ctx.config.containers.stop_grace_period;
        match runtime.block_on(docker.stop(&docker_id, grace)) {
            Ok(()) | Err(RuntimeError::NoSuchContainer { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        // The watcher records the exit (a new one is started if it died).
        await_exit(ctx, &dir, false)?;
    }
    runtime.block_on(docker.remove(&docker_id))?;
    log::info!("container {id} destroyed");
    Ok(())
}
