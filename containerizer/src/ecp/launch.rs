//! `deimos launch`: start the container described by a `Launch` record and return promptly.

use std::fs;
use std::io::Read;
use std::path::Path;

use mesos_proto::containerizer::Launch;

use super::context::{read_request, Context};
use super::hooks;
use super::translate::{plan_launch, LaunchContext, LaunchKind, LaunchPlan, TranslateError};
use super::watcher::{self, WatchOrder};
use crate::config::PlaceholderValues;
use crate::error::{in_container, Error, Result};
use crate::fetch::{fetch_all, FetchOptions, FileOwner};
use crate::runtime::{lifecycle, load_registry_auth, ContainerRuntime};
use crate::state::{ContainerDir, ContainerId, LaunchingContainer, NewContainer};

/// Reads a `Launch`, starts its container and a detached watcher, and returns.
///
/// Nothing is left behind on failure, also when the watcher cannot start: the container (if
/// created) is removed and the state directory discarded. With `no_fork` the watcher runs in this process (debugging).
pub fn launch(ctx: &Context, input: &mut dyn Read, no_fork: bool) -> Result<()> {
    let message: Launch = read_request(input)?;
    let id = message.container_id.value.clone();
    in_container(&id, || launch_container(ctx, &message, no_fork))
}

fn launch_container(ctx: &Context, message: &Launch, no_fork: bool) -> Result<()> {
    let settings = ctx.translate_settings();
    let mut plan = plan_launch(
        message,
        LaunchContext {
            settings: &settings,
            env: &ctx.env,
            cwd: &ctx.cwd,
        },
    )?;
    let id = ContainerId::new(plan.container_id.clone())?;
    let observer = observer_command(ctx, &plan);
    let task_id = match &plan.kind {
        LaunchKind::CommandTask { task_id, .. } => Some(task_id.clone()),
        LaunchKind::Executor => None,
    };
    let new = NewContainer {
        executor_id: plan.executor_id.clone(),
        task_id,
        owner: ctx.owner(),
        sandbox: Some(plan.sandbox_dir.clone()),
    };
    let launching = ctx.state.create_container(&id, &new)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start the async runtime"))?;
    if let Err(error) = runtime.block_on(start_container(ctx, &mut plan, launching.dir())) {
        return Err(abandon(&runtime, ctx, &plan, launching, error));
    }

    let order = WatchOrder {
        sandbox_dir: plan.sandbox_dir.clone(),
        observer,
        hook_env: plan
            .spec
            .env
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect(),
        logs_since: None,
    };
    if no_fork {
        let guards = match watcher::Guards::take(launching.dir()) {
            Ok(guards) => guards,
            Err(error) => return Err(abandon(&runtime, ctx, &plan, launching, error)),
        };
        drop(runtime);
        let (dir, launch_guard) = launching.into_parts();
        drop(launch_guard);
        return watcher::follow(ctx, &dir, &order, guards);
    }
    match watcher::spawn_watcher(ctx, launching.dir(), &order, watcher::Placement::Child) {
        Ok(pid) => log::info!("container {id} launched; watcher pid {pid}"),
        // Nobody would watch the container, record its exit or remove it: take it back.
        Err(error) => return Err(abandon(&runtime, ctx, &plan, launching, error)),
    }
    // Releases `lock.launch`: the watcher holds `wait` now.
    drop(launching);
    Ok(())
}

/// Undoes a launch that failed after its state directory was created: removes the container
/// (stopping it if it runs) and the state directory; returns `error`, the reason.
fn abandon(
    runtime: &tokio::runtime::Runtime,
    ctx: &Context,
    plan: &LaunchPlan,
    launching: LaunchingContainer,
    error: Error,
) -> Error {
    let id = launching.dir().id().clone();
    runtime.block_on(remove_leftover(ctx, plan));
    if let Err(discard) = launching.discard() {
        log::error!("discarding the state of failed launch {id}: {discard}");
    }
    error
}

/// Sandbox, URIs, image, hooks, create and start; records the Docker id. (The sandbox path is
/// in the state directory's `container.json` already.)
async fn start_container(ctx: &Context, plan: &mut LaunchPlan, dir: &ContainerDir) -> Result<()> {
    let sandbox = plan.sandbox_dir.clone();
    fs::create_dir_all(&sandbox).map_err(Error::io(format!(
        "create the sandbox {}",
        sandbox.display()
    )))?;
    plan.apply_switch_user();
    let fetch_options = FetchOptions {
        owner: FileOwner::for_container(plan.spec.user.as_deref()),
        user: plan.spec.user.clone(),
        ..ctx.config.uris.fetch_options()
    };
    fetch_all(&plan.uris, &sandbox, &fetch_options).await?;
    // After the fetch, which may create the sandbox directories volumes name.
    let policy = ctx.config.policy.container_policy();
    policy
        .resolve(&mut plan.spec)
        .map_err(TranslateError::from)?;

    let runtime = ctx.runtime().await?;
    if let Some(dockercfg) = &ctx.config.index.dockercfg {
        plan.spec.registry_auth = load_registry_auth(dockercfg, &plan.spec.image)?;
    }
    if plan.pair_with_exposed {
        // Pairing needs the image's exposed ports, so the image must be present first.
        lifecycle::publish_allocated_ports(&runtime, &mut plan.spec, &plan.allocated_ports).await?;
    }
    // Not waited for, as in Deimos: the agent's registration timer runs during launch.
    let _onlaunch = hooks::start(
        "onlaunch",
        &ctx.config.hooks.onlaunch,
        &plan.spec.env,
        &plan.container_id,
    );
    let launched = lifecycle::launch_replacing_leftover(&runtime, &plan.spec).await?;
    if let Some(name) = &launched.replaced_leftover {
        log::warn!("removed the leftover container {name} of an interrupted launch");
    }
    dir.record_docker_id(&launched.id)?;
    Ok(())
}

/// Removes the container of a failed launch, found by its name.
async fn remove_leftover(ctx: &Context, plan: &LaunchPlan) {
    let Some(name) = &plan.spec.name else { return };
    match ctx.runtime().await {
        Ok(runtime) => {
            if let Err(error) = runtime.remove(name).await {
                log::warn!("removing container {name} of a failed launch: {error}");
            }
        }
        Err(error) => log::warn!("removing container {name} of a failed launch: {error}"),
    }
}

/// The observer executor of a command task, when configured and runnable. When it cannot be
/// started the container still runs; stderr (the agent copies it into the sandbox) says why.
fn observer_command(ctx: &Context, plan: &LaunchPlan) -> Option<Vec<String>> {
    let LaunchKind::CommandTask { task_id, .. } = &plan.kind else {
        return None;
    };
    if !ctx.config.observer.enabled {
        return None;
    }
    let deimos = ctx.deimos_exe.to_string_lossy();
    let values = PlaceholderValues {
        deimos: &deimos,
        container_id: &plan.container_id,
        libexec_dir: ctx.var("MESOS_LIBEXEC_DIRECTORY"),
    };
    let command = ctx.config.observer.command_for(|name| ctx.var(name));
    let problem = match command.expand(&values) {
        Ok(argv) => match argv.first().map(|p| runnable(Path::new(p))) {
            Some(Ok(())) => return Some(argv),
            Some(Err(reason)) => reason,
            None => "the observer command is empty".to_owned(),
        },
        Err(error) => error.to_string(),
    };
    eprintln!(
        "deimos launch: container {}: no observer executor ({problem}); the container runs, \
         but no executor will register for task {task_id}",
        plan.container_id
    );
    None
}

fn runnable(program: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if program.components().count() == 1 {
        return Ok(()); // looked up in PATH when started
    }
    match fs::metadata(program) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(format!("{} is not an executable file", program.display())),
        Err(error) => Err(format!("{}: {error}", program.display())),
    }
}

/// Writes a small state file atomically (temp file and rename).
pub(super) fn write_small_file(path: &Path, content: &str) -> Result<()> {
    let temp = path.with_extension("tmp");
    fs::write(&temp, format!("{content}\n"))
        .and_then(|()| fs::rename(&temp, path))
        .map_err(Error::io(format!("write {}", path.display())))
}
