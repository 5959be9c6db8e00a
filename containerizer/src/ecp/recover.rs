//! `deimos recover` and `deimos containers`: the agent's start-up sequence.
//!
//! On every start the agent runs `recover`, then `containers`, then `wait` + `destroy` for
//! every listed container it does not recognise (orphans). `recover` makes the state
//! directories true again after a restart of the agent, of Deimos' watchers or of the host:
//! exits that happened while nobody watched are recorded, live containers get a watcher back,
//! and containers a crashed launch left without a state directory are removed. `containers`
//! then lists what is still active. Both only consider containers of this agent instance
//! (`MESOS_WORK_DIRECTORY`), so two agents on one host never destroy each other's containers.

use std::collections::HashSet;
use std::io::Write;

use mesos_proto::containerizer::Containers;
use mesos_proto::ecp;
use mesos_proto::mesos::ContainerId as MesosContainerId;
use time::OffsetDateTime;

use super::context::Context;
use super::wait::restart_watcher;
use super::watcher::{resolve_docker_id, unknown_exit, DESTROYED_FILE};
use crate::error::{Error, Result};
use crate::runtime::{ContainerRuntime, DockerRuntime, LabelFilter, RuntimeError};
use crate::spec::labels;
use crate::state::{
    Acquire, ContainerDir, ContainerStatus, ExitRecord, LockError, LockMode, LockName,
};

/// Writes the active containers of this agent (launching, running, or unwatched).
pub fn containers(ctx: &Context, output: &mut dyn Write) -> Result<()> {
    let active = ctx
        .state
        .list(&ctx.scope)?
        .into_iter()
        .filter(|c| {
            matches!(
                c.status,
                ContainerStatus::Launching | ContainerStatus::Running | ContainerStatus::Unwatched
            )
        })
        .map(|c| MesosContainerId {
            value: c.id.as_str().to_owned(),
        });
    let reply = Containers {
        containers: active.collect(),
    };
    ecp::write_message(output, &reply)?;
    Ok(())
}

/// Reconciles the state directories with Docker (see the module docs).
pub fn recover(ctx: &Context) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start the async runtime"))?;
    let docker = runtime.block_on(ctx.runtime())?;
    let summaries = ctx.state.list(&ctx.scope)?;
    let known: HashSet<String> = summaries.iter().map(|s| s.id.as_str().to_owned()).collect();
    for summary in summaries
        .iter()
        .filter(|s| s.status == ContainerStatus::Unwatched)
    {
        let dir = ctx.state.container(&summary.id)?;
        if let Err(error) = runtime.block_on(reconcile(ctx, &docker, &dir)) {
            eprintln!("deimos recover: container {}: {error}", summary.id);
        }
    }
    runtime.block_on(remove_dangling(ctx, &docker, &known))
}

/// One unwatched container: record its exit, or give it a watcher again.
async fn reconcile(ctx: &Context, docker: &DockerRuntime, dir: &ContainerDir) -> Result<()> {
    let launch = match dir.lock(LockName::Launch, LockMode::Exclusive, Acquire::NonBlocking) {
        Ok(guard) => guard,
        // A launch, or a `wait`/`destroy` that restarts the watcher itself if it must.
        Err(LockError::WouldBlock { .. }) => {
            log::info!(
                "recover: container {} is in use; left to its user",
                dir.id()
            );
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    if dir.has_exit()? || dir.is_locked_exclusively(LockName::Wait)? {
        return Ok(()); // a `wait` restarted its watcher meanwhile
    }
    let Some(docker_id) = resolve_docker_id(docker, dir).await? else {
        dir.record_exit(&unknown_exit(
            "the launch did not complete: no container was created",
        ))?;
        return Ok(());
    };
    let exit = match docker.inspect(&docker_id).await {
        Err(RuntimeError::NoSuchContainer { .. }) => Some(unknown_exit(&format!(
            "container {docker_id} vanished while nobody watched it (host or Docker restart?)"
        ))),
        Err(error) => return Err(error.into()),
        Ok(info) if info.running => None,
        Ok(info) => Some(ExitRecord {
            exit_code: info.exit_code.and_then(|c| i32::try_from(c).ok()),
            signal: crate::runtime::exit_status(info.exit_code.unwrap_or(0), info.oom_killed)
                .signal,
            oom_killed: info.oom_killed,
            destroyed: dir.file(DESTROYED_FILE).exists(),
            message: String::new(),
            finished_at: info.finished_at.or_else(|| Some(OffsetDateTime::now_utc())),
        }),
    };
    match exit {
        Some(mut exit) => {
            exit.destroyed |= dir.file(DESTROYED_FILE).exists();
            dir.record_exit(&exit)?;
            if let Err(error) = docker.remove(&docker_id).await {
                log::warn!("recover: removing exited container {docker_id}: {error}");
            }
            drop(launch);
        }
        None => {
            drop(launch);
            restart_watcher(ctx, dir)?;
        }
    }
    Ok(())
}

/// Containers labelled as ours (this agent) with no state directory: a launch died between
/// creating the container and recording it. Nobody can ever wait for them: remove them.
async fn remove_dangling(
    ctx: &Context,
    docker: &DockerRuntime,
    known: &HashSet<String>,
) -> Result<()> {
    let mut filters = vec![LabelFilter::equals(labels::MANAGED_BY, "deimos")];
    if let Some(owner) = ctx.owner() {
        filters.push(LabelFilter::equals(labels::OWNER, owner));
    }
    for container in docker.list(&filters).await? {
        let Some(id) = container.labels.get(labels::CONTAINER_ID) else {
            continue;
        };
        let has_state =
            crate::state::ContainerId::new(id.as_str()).map(|id| ctx.state.container(&id).is_ok());
        if known.contains(id) || has_state.unwrap_or(true) {
            continue;
        }
        log::warn!(
            "recover: removing container {} of unknown Mesos container {id}",
            container.id
        );
        if let Err(error) = docker.remove(&container.id).await {
            eprintln!(
                "deimos recover: removing dangling container {}: {error}",
                container.id
            );
        }
    }
    Ok(())
}
