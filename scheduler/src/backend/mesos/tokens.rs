//! The acknowledgement tokens the Mesos backend hands the core: what an ACKNOWLEDGE needs
//! (agent, Mesos task id, uuid) and when the update arrived, for the acknowledgement latency.

use std::time::{Duration, Instant};

use mesos_proto::v1::{AgentId, TaskId as MesosTaskId, TaskStatus};

use crate::backend::AckToken;

/// The acknowledgement token of a status update: agent, Mesos task id, uuid, and the time it
/// was received as nanoseconds after `epoch` (the backend's creation).
pub(super) fn status_token(
    agent_id: &str,
    task_id: &str,
    uuid: &[u8],
    epoch: Instant,
    received: Instant,
) -> AckToken {
    let nanos = received.saturating_duration_since(epoch).as_nanos();
    AckToken(format!(
        "status\n{agent_id}\n{task_id}\n{}\n{nanos}",
        hex::encode(uuid)
    ))
}

/// The acknowledgement token of a granted framework id.
pub(super) fn framework_token(framework_id: &str) -> AckToken {
    AckToken(format!("framework\n{framework_id}"))
}

/// A status with what an ACKNOWLEDGE needs, and when its update was received (`None` when the
/// token does not say), read back from a token.
pub(super) fn acknowledged_status(
    token: &str,
    epoch: Instant,
) -> Option<(TaskStatus, Option<Instant>)> {
    let mut parts = token.split('\n');
    let (kind, agent, task, uuid) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if kind != "status" {
        return None;
    }
    let received = parts
        .next()
        .and_then(|nanos| nanos.parse::<u64>().ok())
        .and_then(|nanos| epoch.checked_add(Duration::from_nanos(nanos)));
    let status = TaskStatus {
        task_id: MesosTaskId {
            value: task.to_owned(),
        },
        agent_id: Some(AgentId {
            value: agent.to_owned(),
        }),
        uuid: Some(hex::decode(uuid).ok()?),
        ..Default::default()
    };
    Some((status, received))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_token_carries_what_the_acknowledge_needs_and_when_the_update_came() {
        let epoch = Instant::now();
        let received = epoch + Duration::from_millis(1500);
        let token = status_token(
            "agent-1",
            "eremetic-task.abc.0",
            &[1, 2, 255],
            epoch,
            received,
        );
        let (status, at) = acknowledged_status(&token.0, epoch).unwrap_or_default();
        assert_eq!(status.task_id.value, "eremetic-task.abc.0");
        assert_eq!(
            status.agent_id.map(|agent| agent.value),
            Some("agent-1".into())
        );
        assert_eq!(status.uuid, Some(vec![1, 2, 255]));
        assert_eq!(at, Some(received));
        assert!(acknowledged_status(&framework_token("fw").0, epoch).is_none());
        assert!(acknowledged_status("status\nagent\ntask\nnot-hex", epoch).is_none());
        let (_, at) = acknowledged_status("status\nagent\ntask\n01", epoch).unwrap_or_default();
        assert_eq!(at, None, "a token without a time");
    }
}
