//! A launched `TaskInfo` as a container: pure, through the containerizer's one translation.
//!
//! The containerizer already turns a Mesos task into a [`ContainerSpec`]
//! ([`deimos_runtime::mesos::translate::plan_launch`]: image, network, port mappings, docker
//! parameters, volumes, force pull, privileged, command, cpus/mem, environment, URIs). It reads
//! the unversioned `mesos` package, whose field numbers are those of `mesos.v1`, so a v1
//! `TaskInfo` is carried over by re-encoding it, and the result is then given the executor's
//! identity: container name, labels and `MESOS_EXECUTOR_ID`.
//!
//! Limits follow Mesos' Docker containerizer (`Docker::RunOptions::create`): 1024 CPU shares
//! per CPU (at least 2), a CFS quota of cpus × 100 ms per 100 ms period only when the
//! operator asks for hard limits (`[containers] cfs_quota`, the agent's
//! `--cgroups_enable_cfs`), the memory limit at least [`MIN_MEMORY_BYTES`]; swap is off
//! (`MemorySwap` = `Memory`, set by `deimos_runtime`). What the operator's `[policy]` refuses
//! is [`Error::Refused`], which the executor reports as `TASK_ERROR` with
//! `REASON_TASK_UNAUTHORIZED`, as a master reports a task its authorizer refuses.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use deimos_runtime::fetch::UriSpec;
use deimos_runtime::mesos::task_data;
use deimos_runtime::mesos::translate::{
    plan_launch, LaunchContext, TranslateError, TranslateSettings,
};
use deimos_runtime::policy::ContainerPolicy;
use deimos_runtime::spec::{labels, ContainerSpec};
use mesos_proto::{containerizer, mesos, v1};
use prost::Message;

use crate::error::Error;

/// The value of the [`labels::MANAGED_BY`] label on the executor's containers.
pub const MANAGED_BY: &str = "deimos-executor";

/// The smallest memory limit a container gets (32 MiB), whatever the task's `mem`: Mesos'
/// Docker containerizer raises a smaller one to its `MIN_MEMORY` as well (Docker itself
/// refuses limits below 6 MB).
pub const MIN_MEMORY_BYTES: u64 = 32 << 20;

/// Who runs the task: the identity given to its container.
#[derive(Debug, Clone, Copy)]
pub struct TaskContext<'a> {
    /// The framework id (`MESOS_FRAMEWORK_ID`).
    pub framework_id: &'a str,
    /// This executor's id (`MESOS_EXECUTOR_ID`).
    pub executor_id: &'a str,
    /// The agent id, when known.
    pub agent_id: Option<&'a str>,
    /// The executor's Mesos container id (`SUBSCRIBED.container_id`), when the agent sent one.
    pub container_id: Option<&'a str>,
    /// The sandbox on the host (`MESOS_DIRECTORY`), mounted into the container.
    pub directory: &'a Path,
    /// The operator's policy (`[policy]` of `deimos.cfg`).
    pub policy: &'a ContainerPolicy,
    /// `[containers] cfs_quota` of `deimos.cfg`: the task's cpus also as a CFS quota.
    pub cfs_quota: bool,
    /// This executor process's instance id (label [`labels::EXECUTOR_INSTANCE`]), by which
    /// its watchdog finds the containers to remove when the executor dies.
    pub instance: &'a str,
}

/// Everything needed to start a task's container.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPlan {
    /// The task id.
    pub task_id: String,
    /// The container to create.
    pub spec: ContainerSpec,
    /// URIs of the task's command, to fetch into the sandbox first.
    pub uris: Vec<UriSpec>,
    /// Host ports allocated to the task (its `ports` resources).
    pub allocated_ports: Vec<u16>,
    /// No explicit port mapping was given on a bridge or user network: publish the allocated
    /// ports paired with the image's exposed ports once the image is present.
    pub pair_with_exposed: bool,
    /// The task's own kill policy grace period, when it has one.
    pub kill_grace: Option<Duration>,
}

/// Translates a launched task into a container plan. Pure.
///
/// The task must name a Docker image (`ContainerInfo.docker.image`, or a Docker image of a
/// `MESOS` container). Its command comes from `TaskInfo.data`
/// ([`deimos_runtime::mesos::task_data`]): a real master refuses tasks that carry both an
/// executor and a command, so the scheduler sends it there. A task without data runs its
/// `command` when an agent hands one through, and the image's default command otherwise.
pub fn plan_task(task: &v1::TaskInfo, ctx: &TaskContext<'_>) -> Result<TaskPlan, Error> {
    let task_id = task.task_id.value.clone();
    let invalid = |reason: String| Error::InvalidTask {
        task_id: task_id.clone(),
        reason,
    };
    if task_id.is_empty() {
        return Err(invalid("task_id is empty".into()));
    }
    if docker_image(task).is_none() {
        return Err(invalid(
            "no Docker image: set ContainerInfo.docker.image (container type DOCKER)".into(),
        ));
    }
    let mut with_command = task.clone();
    with_command.command = Some(task_command(task)?);
    with_command.data = None;
    let unversioned = mesos::TaskInfo::decode(with_command.encode_to_vec().as_slice())
        .map_err(|error| invalid(format!("re-encoding the TaskInfo failed: {error}")))?;
    let container_id = ctx.container_id.unwrap_or(ctx.executor_id);
    let launch = containerizer::Launch {
        container_id: mesos::ContainerId {
            value: container_id.to_owned(),
        },
        task_info: Some(unversioned),
        directory: Some(ctx.directory.display().to_string()),
        ..Default::default()
    };
    let settings = TranslateSettings {
        policy: ctx.policy.clone(),
        cfs_quota: ctx.cfs_quota,
        ..TranslateSettings::default()
    };
    let env = translation_env(ctx);
    let plan = plan_launch(
        &launch,
        LaunchContext {
            settings: &settings,
            env: &env,
            cwd: ctx.directory,
        },
    )
    .map_err(|error| match error {
        TranslateError::Policy(source) => Error::Refused {
            task_id: task_id.clone(),
            source,
        },
        other => invalid(other.to_string()),
    })?;

    let mut spec = plan.spec;
    spec.limits.memory_bytes = spec.limits.memory_bytes.map(|m| m.max(MIN_MEMORY_BYTES));
    spec.name = Some(container_name(container_id, &task_id));
    set_identity_labels(&mut spec, ctx, &task_id);
    if let Some(var) = spec.env.iter_mut().find(|v| v.name == "MESOS_EXECUTOR_ID") {
        var.value = ctx.executor_id.to_owned();
    }
    Ok(TaskPlan {
        task_id,
        spec,
        uris: plan.uris,
        allocated_ports: plan.allocated_ports,
        pair_with_exposed: plan.pair_with_exposed,
        kill_grace: task
            .kill_policy
            .as_ref()
            .and_then(|policy| policy.grace_period.as_ref())
            .map(duration_of),
    })
}

/// The command a task runs: decoded from `TaskInfo.data`, else its `command`, else none (the
/// image's default). Data and a command together are ambiguous and refused. Secret values of
/// the environment become plain values: the container gets them as ordinary variables.
fn task_command(task: &v1::TaskInfo) -> Result<v1::CommandInfo, Error> {
    let task_id = &task.task_id.value;
    let data = task.data.as_deref().filter(|data| !data.is_empty());
    let mut command = match (data, &task.command) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidTask {
                task_id: task_id.clone(),
                reason: "both TaskInfo.command and TaskInfo.data are set; the command belongs \
                         in TaskInfo.data only"
                    .into(),
            })
        }
        (Some(data), None) => task_data::decode(data).map_err(|source| Error::TaskData {
            task_id: task_id.clone(),
            source,
        })?,
        (None, Some(command)) => command.clone(),
        (None, None) => return Ok(v1::CommandInfo::default()),
    };
    resolve_secret_values(&mut command).map_err(|reason| Error::InvalidTask {
        task_id: task_id.clone(),
        reason,
    })?;
    Ok(command)
}

/// Replaces each `SECRET` variable holding its value (`Secret.value.data`, UTF-8) by a plain
/// one. A secret by reference needs a secret store, which an executor does not have: refused,
/// naming the variable.
fn resolve_secret_values(command: &mut v1::CommandInfo) -> Result<(), String> {
    use v1::environment::variable::Type;
    let Some(environment) = command.environment.as_mut() else {
        return Ok(());
    };
    for variable in &mut environment.variables {
        if variable.r#type.and_then(|t| Type::try_from(t).ok()) != Some(Type::Secret) {
            continue;
        }
        let name = &variable.name;
        let secret = variable
            .secret
            .take()
            .ok_or_else(|| format!("environment variable {name}: type SECRET without a secret"))?;
        let data = secret.value.map(|value| value.data).ok_or_else(|| {
            format!(
                "environment variable {name}: only secrets given by value are supported \
                 (a secret reference needs a secret store)"
            )
        })?;
        let value = String::from_utf8(data)
            .map_err(|_| format!("environment variable {name}: the secret value is not UTF-8"))?;
        variable.value = Some(value);
        variable.r#type = Some(Type::Value as i32);
    }
    Ok(())
}

/// A `DurationInfo` as a duration; negative values are zero.
pub fn duration_of(info: &v1::DurationInfo) -> Duration {
    Duration::from_nanos(u64::try_from(info.nanoseconds).unwrap_or(0))
}

fn docker_image(task: &v1::TaskInfo) -> Option<&str> {
    let container = task.container.as_ref()?;
    let from_docker = container.docker.as_ref().map(|d| d.image.as_str());
    let from_mesos = container
        .mesos
        .as_ref()
        .and_then(|m| m.image.as_ref())
        .and_then(|i| i.docker.as_ref())
        .map(|d| d.name.as_str());
    from_docker
        .into_iter()
        .chain(from_mesos)
        .find(|image| !image.is_empty())
}

/// The process environment the translation sees: only what the container should inherit.
fn translation_env(ctx: &TaskContext<'_>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("MESOS_FRAMEWORK_ID".to_owned(), ctx.framework_id.to_owned()),
        (
            "MESOS_DIRECTORY".to_owned(),
            ctx.directory.display().to_string(),
        ),
    ]);
    if let Some(agent) = ctx.agent_id {
        env.insert("MESOS_SLAVE_ID".into(), agent.to_owned());
        env.insert("MESOS_AGENT_ID".into(), agent.to_owned());
    }
    env
}

/// Ours win over anything the task's labels or parameters set: a task must not pass for
/// another executor's container.
fn set_identity_labels(spec: &mut ContainerSpec, ctx: &TaskContext<'_>, task_id: &str) {
    spec.labels.remove(labels::OWNER);
    spec.labels.remove(labels::CONTAINER_ID);
    spec.labels.remove(labels::EXECUTOR_INSTANCE);
    let mut ours = vec![
        (labels::MANAGED_BY, MANAGED_BY),
        (labels::TASK_ID, task_id),
        (labels::EXECUTOR_ID, ctx.executor_id),
        (labels::FRAMEWORK_ID, ctx.framework_id),
        (labels::EXECUTOR_INSTANCE, ctx.instance),
    ];
    if let Some(container) = ctx.container_id {
        ours.push((labels::CONTAINER_ID, container));
    }
    for (key, value) in ours {
        spec.labels.insert(key.to_owned(), value.to_owned());
    }
}

/// `mesos-<container id>.<task id>`, with every character Docker refuses in a name (outside
/// `[a-zA-Z0-9_.-]`) replaced by `_`.
pub fn container_name(container_id: &str, task_id: &str) -> String {
    let raw = format!("mesos-{container_id}.{task_id}");
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
