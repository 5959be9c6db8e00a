//! Reading a run back from its container after a restart: which task and attempt it is,
//! which host ports it holds, and whether it still runs. Pure.

use std::collections::BTreeMap;

use deimos_runtime::runtime::{exit_status, ContainerInfo, ContainerState};
use deimos_runtime::spec::labels;

use super::spec::{parse_ports, HOST_PORTS_LABEL};
use crate::backend::{RecoveredState, RunOutcome};
use crate::task::TaskId;

/// Who a container is, from its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) task_id: TaskId,
    pub(crate) attempt: u32,
    pub(crate) run_id: String,
    pub(crate) host_ports: Vec<u16>,
}

/// Reads the task id, run id (`<task id>.<attempt>`) and host ports from a container's labels;
/// the error says which label is missing or malformed.
pub(crate) fn identify(labels: &BTreeMap<String, String>) -> Result<Identity, String> {
    let label = |key: &'static str| {
        labels
            .get(key)
            .ok_or_else(|| format!("label {key} is missing"))
    };
    let task_text = label(labels::TASK_ID)?;
    let task_id =
        TaskId::parse(task_text).map_err(|error| format!("label {}: {error}", labels::TASK_ID))?;
    let run_id = label(labels::CONTAINER_ID)?;
    let attempt = run_id
        .strip_prefix(task_id.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|attempt| attempt.parse::<u32>().ok())
        .ok_or_else(|| {
            format!(
                "label {} is {run_id:?}, not \"{task_id}.<attempt>\"",
                labels::CONTAINER_ID
            )
        })?;
    let ports_text = label(HOST_PORTS_LABEL)?;
    let host_ports = parse_ports(ports_text).ok_or_else(|| {
        format!("label {HOST_PORTS_LABEL} is {ports_text:?}, not a comma-separated port list")
    })?;
    Ok(Identity {
        task_id,
        attempt,
        run_id: run_id.clone(),
        host_ports,
    })
}

/// What to do with a container found again.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    /// Report it with this state.
    Report(RecoveredState),
    /// Created but never started (the previous instance stopped between create and start):
    /// remove it; its task will be found without a run and relaunched.
    RemoveUnstarted,
    /// Being removed by someone: ignore it.
    Ignore,
}

/// Classifies an inspected container.
pub(crate) fn classify(info: &ContainerInfo) -> Found {
    match info.state {
        ContainerState::Created => Found::RemoveUnstarted,
        ContainerState::Removing => Found::Ignore,
        state if state.is_active() || info.running => Found::Report(RecoveredState::Running),
        // Exited, Dead or unknown: it ended. Without a recorded code (a dead container may
        // lack one) it counts as a failure, never as a success.
        _ => {
            let code = info.exit_code.unwrap_or(UNKNOWN_EXIT_CODE);
            Found::Report(RecoveredState::Exited(RunOutcome::from(exit_status(
                code,
                info.oom_killed,
            ))))
        }
    }
}

/// The exit code reported for an ended container whose code Docker did not record.
const UNKNOWN_EXIT_CODE: i64 = 255;

#[cfg(test)]
mod tests {
    use deimos_runtime::spec::Limits;

    use super::*;

    fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn info(state: ContainerState, exit_code: Option<i64>, oom_killed: bool) -> ContainerInfo {
        ContainerInfo {
            id: "c1".into(),
            name: "x".into(),
            image: "busybox".into(),
            state,
            running: state == ContainerState::Running,
            pid: None,
            exit_code,
            oom_killed,
            started_at: None,
            finished_at: None,
            labels: BTreeMap::new(),
            limits: Limits::default(),
        }
    }

    #[test]
    fn identity_is_read_from_the_labels() {
        let labels = labels_of(&[
            (labels::TASK_ID, "eremetic-task.abc"),
            (labels::CONTAINER_ID, "eremetic-task.abc.3"),
            (HOST_PORTS_LABEL, "31000,31002"),
        ]);
        assert_eq!(
            identify(&labels),
            Ok(Identity {
                task_id: TaskId::parse("eremetic-task.abc").unwrap(),
                attempt: 3,
                run_id: "eremetic-task.abc.3".into(),
                host_ports: vec![31000, 31002],
            })
        );
    }

    #[test]
    fn malformed_labels_are_named() {
        let missing = identify(&labels_of(&[(labels::TASK_ID, "t")])).unwrap_err();
        assert!(missing.contains(labels::CONTAINER_ID), "{missing}");
        let foreign = identify(&labels_of(&[
            (labels::TASK_ID, "t"),
            (labels::CONTAINER_ID, "other.1"),
            (HOST_PORTS_LABEL, ""),
        ]))
        .unwrap_err();
        assert!(foreign.contains("\"other.1\""), "{foreign}");
        let ports = identify(&labels_of(&[
            (labels::TASK_ID, "t"),
            (labels::CONTAINER_ID, "t.1"),
            (HOST_PORTS_LABEL, "a"),
        ]))
        .unwrap_err();
        assert!(ports.contains(HOST_PORTS_LABEL), "{ports}");
    }

    #[test]
    fn containers_are_classified_by_state() {
        assert_eq!(
            classify(&info(ContainerState::Running, None, false)),
            Found::Report(RecoveredState::Running)
        );
        assert_eq!(
            classify(&info(ContainerState::Created, None, false)),
            Found::RemoveUnstarted
        );
        assert_eq!(
            classify(&info(ContainerState::Removing, None, false)),
            Found::Ignore
        );
        let oom = RunOutcome {
            exit_code: 137,
            oom_killed: true,
            signal: Some(9),
        };
        assert_eq!(
            classify(&info(ContainerState::Exited, Some(137), true)),
            Found::Report(RecoveredState::Exited(oom))
        );
        let Found::Report(RecoveredState::Exited(dead)) =
            classify(&info(ContainerState::Dead, None, false))
        else {
            panic!("a dead container has ended");
        };
        assert_ne!(dead.exit_code, 0);
    }
}
