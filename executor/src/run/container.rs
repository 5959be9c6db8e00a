//! A task's container through the deimos runtime: fetch, launch, follow (output into the
//! sandbox, exit status), stop, remove.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deimos_runtime::fetch::{fetch_all, FetchOptions, FileOwner};
use deimos_runtime::runtime::lifecycle::{self, EnginePolicy};
use deimos_runtime::runtime::{ContainerRuntime, LogOptions};

use crate::env::Operator;
use crate::error::Error;
use crate::protocol::ContainerOutcome;
use crate::task::TaskPlan;

/// Fetches the task's URIs into `sandbox`, completes the port mapping and creates and starts
/// the container. Returns its Docker id.
pub(super) async fn launch(
    runtime: &Arc<dyn ContainerRuntime>,
    plan: &mut TaskPlan,
    sandbox: &Path,
    operator: &Operator,
) -> Result<String, Error> {
    if !plan.uris.is_empty() {
        let options = FetchOptions {
            owner: FileOwner::for_container(plan.spec.user.as_deref()),
            user: plan.spec.user.clone(),
            ..operator.fetch.clone()
        };
        fetch_all(&plan.uris, sandbox, &options)
            .await
            .map_err(|source| Error::Fetch {
                task_id: plan.task_id.clone(),
                source,
            })?;
    }
    // After the fetch (it may create the sandbox directories volumes name): host paths are
    // resolved and checked once more, and the resolved paths are mounted.
    operator
        .policy
        .resolve(&mut plan.spec)
        .map_err(|source| Error::Refused {
            task_id: plan.task_id.clone(),
            source,
        })?;
    if plan.pair_with_exposed {
        // Pairing needs the image's exposed ports, so the image must be present first.
        lifecycle::publish_allocated_ports(runtime.as_ref(), &mut plan.spec, &plan.allocated_ports)
            .await?;
    }
    let launched = lifecycle::launch_replacing_leftover(runtime.as_ref(), &plan.spec).await?;
    if let Some(name) = &launched.replaced_leftover {
        // A container of an earlier executor run with the same container id and task id
        // (it cannot be ours: we launch a task once). Nobody followed it any more.
        log::warn!(
            "removed the leftover container {name} of task {}",
            plan.task_id
        );
    }
    Ok(launched.id)
}

/// Waits for the container to stop while appending its output to `sandbox/stdout` and
/// `sandbox/stderr`, then removes it. A wait that fails (the container disappeared, or the
/// engine stayed unreachable longer than [`EnginePolicy::default`] rides out) removes the
/// container (killing it) and reports it lost.
pub(super) async fn follow(
    runtime: &Arc<dyn ContainerRuntime>,
    task_id: &str,
    container: &str,
    sandbox: &Path,
) -> ContainerOutcome {
    // Rides out a Docker restart for a while; a task whose engine stays away is lost.
    let end = lifecycle::run_to_exit(
        runtime.as_ref(),
        container,
        sandbox,
        LogOptions::default(),
        &EnginePolicy::default(),
    )
    .await;
    if let Err(error) = end.output {
        // The outcome matters more than the output: report it anyway.
        log::warn!("saving the output of task {task_id} (container {container}) failed: {error}");
    }
    let outcome = match end.exit {
        Ok(status) => ContainerOutcome::Exited(status),
        Err(error) => ContainerOutcome::Lost {
            reason: error.to_string(),
        },
    };
    remove(runtime, task_id, container).await;
    outcome
}

/// Stops a container (SIGTERM, SIGKILL after `grace`). A container already gone is fine.
pub(super) async fn stop(
    runtime: &Arc<dyn ContainerRuntime>,
    task_id: &str,
    container: &str,
    grace: Duration,
) {
    log::info!("stopping task {task_id} (container {container}) with a grace period of {grace:?}");
    match runtime.stop(container, grace).await {
        Ok(()) => {}
        Err(error) if error.is_no_such_container() => {}
        Err(error) => log::error!("stopping task {task_id} (container {container}): {error}"),
    }
}

/// Removes a container, killing it if it still runs; failures are logged.
pub(super) async fn remove(runtime: &Arc<dyn ContainerRuntime>, task_id: &str, container: &str) {
    if let Err(error) = runtime.remove(container).await {
        log::warn!("removing the container {container} of task {task_id}: {error}");
    }
}
