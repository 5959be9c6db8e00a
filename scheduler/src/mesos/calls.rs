//! Builders of the scheduler API's `Call`s. Pure: the client sends them.

use std::time::Duration;

use mesos_proto::v1::scheduler::{call, Call};
use mesos_proto::v1::{
    framework_info, offer, AgentId, DurationInfo, Filters, FrameworkId, FrameworkInfo, KillPolicy,
    OfferId, TaskId as MesosTaskId, TaskInfo, TaskStatus,
};

use super::task_info::mesos_task_id;
use crate::task::{Task, TaskState};

/// Longest refuse filter Mesos honours (one year).
pub const MAX_REFUSE: Duration = Duration::from_secs(31_536_000);

/// Length of a valid status update uuid.
pub const UUID_LEN: usize = 16;

/// What the framework tells the master about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkSettings {
    /// Framework name (Eremetic's default: `Eremetic`).
    pub name: String,
    /// Unix user tasks run as unless a task names its own.
    pub user: String,
    /// The framework's role (`*`: no role).
    pub role: String,
    /// Whether agents checkpoint the framework's tasks (to survive agent restarts).
    pub checkpoint: bool,
    /// How long the master keeps the tasks after the scheduler disconnects. Mesos' default
    /// of 0 kills every task as soon as the connection drops: use weeks.
    pub failover_timeout: Duration,
    /// Principal, when the master authenticates frameworks.
    pub principal: Option<String>,
    /// Host name shown in the master's UI.
    pub hostname: Option<String>,
    /// The scheduler's web UI.
    pub webui_url: Option<String>,
    /// Declare `PARTITION_AWARE` (Mesos 1.1+): lost agents yield TASK_UNREACHABLE,
    /// TASK_GONE... instead of TASK_LOST.
    pub partition_aware: bool,
}

fn framework(id: &str) -> Option<FrameworkId> {
    Some(FrameworkId {
        value: id.to_owned(),
    })
}

fn envelope(framework_id: Option<&str>, kind: call::Type) -> Call {
    Call {
        framework_id: framework_id.and_then(framework),
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn filters(refuse: Duration) -> Option<Filters> {
    Some(Filters {
        refuse_seconds: Some(refuse.min(MAX_REFUSE).as_secs_f64()),
    })
}

/// SUBSCRIBE. `framework_id` is the id the master gave earlier (re-subscription after a
/// disconnection or failover): it is set both in the envelope and in `framework_info.id`, as
/// the master requires. Capabilities: `TASK_KILLING_STATE` always, `PARTITION_AWARE` when
/// configured.
pub fn subscribe(settings: &FrameworkSettings, framework_id: Option<&str>) -> Call {
    use framework_info::capability::Type as Capability;
    let mut capabilities = vec![Capability::TaskKillingState];
    if settings.partition_aware {
        capabilities.push(Capability::PartitionAware);
    }
    let info = FrameworkInfo {
        user: settings.user.clone(),
        name: settings.name.clone(),
        id: framework_id.and_then(framework),
        failover_timeout: Some(settings.failover_timeout.as_secs_f64()),
        checkpoint: Some(settings.checkpoint),
        // The deprecated single `role` works with every master (MULTI_ROLE needs 1.2+).
        #[allow(deprecated)]
        role: Some(settings.role.clone()),
        principal: settings.principal.clone(),
        hostname: settings.hostname.clone(),
        webui_url: settings.webui_url.clone(),
        capabilities: capabilities
            .into_iter()
            .map(|kind| framework_info::Capability {
                r#type: Some(kind as i32),
            })
            .collect(),
        ..Default::default()
    };
    Call {
        subscribe: Some(call::Subscribe {
            framework_info: info,
            ..Default::default()
        }),
        ..envelope(framework_id, call::Type::Subscribe)
    }
}

/// ACCEPT of `offer_ids` with one LAUNCH of `tasks` (all on the offers' agent). Resources of
/// the offers that the tasks do not use are declined with the `refuse` filter.
pub fn accept(
    framework_id: &str,
    offer_ids: Vec<OfferId>,
    tasks: Vec<TaskInfo>,
    refuse: Duration,
) -> Call {
    Call {
        accept: Some(call::Accept {
            offer_ids,
            operations: vec![offer::Operation {
                r#type: Some(offer::operation::Type::Launch as i32),
                launch: Some(offer::operation::Launch { task_infos: tasks }),
                ..Default::default()
            }],
            filters: filters(refuse),
        }),
        ..envelope(Some(framework_id), call::Type::Accept)
    }
}

/// DECLINE of `offer_ids`; their resources are not re-offered for `refuse` (capped at
/// [`MAX_REFUSE`]).
pub fn decline(framework_id: &str, offer_ids: Vec<OfferId>, refuse: Duration) -> Call {
    Call {
        decline: Some(call::Decline {
            offer_ids,
            filters: filters(refuse),
        }),
        ..envelope(Some(framework_id), call::Type::Decline)
    }
}

/// KILL of a Mesos task (pass its agent when known; `grace` overrides the task's kill policy).
pub fn kill(
    framework_id: &str,
    mesos_task_id: &str,
    agent_id: Option<&str>,
    grace: Option<Duration>,
) -> Call {
    Call {
        kill: Some(call::Kill {
            task_id: MesosTaskId {
                value: mesos_task_id.to_owned(),
            },
            agent_id: agent_id.map(|value| AgentId {
                value: value.to_owned(),
            }),
            kill_policy: grace.map(|grace| KillPolicy {
                grace_period: Some(DurationInfo {
                    nanoseconds: i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX),
                }),
            }),
        }),
        ..envelope(Some(framework_id), call::Type::Kill)
    }
}

/// ACKNOWLEDGE of a status update, or `None` when the update must not be acknowledged: it has
/// no uuid (master-generated: reconciliation answers, agent removal, invalid offers), its uuid
/// is not 16 bytes, or it names no agent. Such an ACKNOWLEDGE would be answered 400.
pub fn acknowledge(framework_id: &str, status: &TaskStatus) -> Option<Call> {
    let uuid = status.uuid.as_ref().filter(|uuid| uuid.len() == UUID_LEN)?;
    let agent_id = status.agent_id.clone()?;
    Some(Call {
        acknowledge: Some(call::Acknowledge {
            agent_id,
            task_id: status.task_id.clone(),
            uuid: uuid.clone(),
        }),
        ..envelope(Some(framework_id), call::Type::Acknowledge)
    })
}

/// One task of an explicit reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileTarget {
    /// Mesos task id (`<task id>.<attempt>`).
    pub mesos_task_id: String,
    /// The agent it was launched on.
    pub agent_id: String,
}

/// The tasks to reconcile explicitly: those launched on Mesos and not ended (STAGING,
/// STARTING, RUNNING, TERMINATING with a known agent), by the Mesos id of their current
/// attempt. Queued tasks — also a queued task being killed, which has no agent — are never
/// included: Mesos would answer TASK_LOST for them although they are still to be launched
/// (E-15).
pub fn reconcile_targets<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Vec<ReconcileTarget> {
    tasks
        .into_iter()
        .filter(|task| {
            matches!(
                task.current_state(),
                Some(
                    TaskState::Staging
                        | TaskState::Starting
                        | TaskState::Running
                        | TaskState::Terminating
                )
            )
        })
        .filter_map(|task| {
            let agent_id = task.agent_id.clone().filter(|agent| !agent.is_empty())?;
            Some(ReconcileTarget {
                mesos_task_id: mesos_task_id(&task.id, task.current_attempt()),
                agent_id,
            })
        })
        .collect()
}

/// Explicit RECONCILE of `targets`; `None` for an empty list, which Mesos would take as an
/// implicit reconciliation of every task (use [`reconcile_all`] for that on purpose).
pub fn reconcile(framework_id: &str, targets: &[ReconcileTarget]) -> Option<Call> {
    if targets.is_empty() {
        return None;
    }
    Some(Call {
        reconcile: Some(call::Reconcile {
            tasks: targets
                .iter()
                .map(|target| call::reconcile::Task {
                    task_id: MesosTaskId {
                        value: target.mesos_task_id.clone(),
                    },
                    agent_id: Some(AgentId {
                        value: target.agent_id.clone(),
                    }),
                })
                .collect(),
        }),
        ..envelope(Some(framework_id), call::Type::Reconcile)
    })
}

/// Implicit RECONCILE: the master answers with the latest state of every task it knows for
/// the framework (tasks it does not know produce nothing).
pub fn reconcile_all(framework_id: &str) -> Call {
    Call {
        reconcile: Some(call::Reconcile { tasks: Vec::new() }),
        ..envelope(Some(framework_id), call::Type::Reconcile)
    }
}

/// REVIVE: clears refuse filters and resumes offers (for `roles`; empty: all roles).
pub fn revive(framework_id: &str, roles: &[String]) -> Call {
    Call {
        revive: (!roles.is_empty()).then(|| call::Revive {
            roles: roles.to_vec(),
        }),
        ..envelope(Some(framework_id), call::Type::Revive)
    }
}

/// SUPPRESS: stops offers (for `roles`; empty: all roles) until the next REVIVE.
pub fn suppress(framework_id: &str, roles: &[String]) -> Call {
    Call {
        suppress: (!roles.is_empty()).then(|| call::Suppress {
            roles: roles.to_vec(),
        }),
        ..envelope(Some(framework_id), call::Type::Suppress)
    }
}

/// TEARDOWN: removes the framework; Mesos kills all its tasks.
pub fn teardown(framework_id: &str) -> Call {
    envelope(Some(framework_id), call::Type::Teardown)
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
