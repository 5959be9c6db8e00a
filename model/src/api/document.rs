//! Task documents returned by the API (`TaskV1`, `TaskV0`), with secrets masked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::task::{
    AgentConstraint, CallbackStates, FetchUri, StatusEntry, Task, Volume, DEFAULT_MAX_RETRIES, MASK,
};

/// A port mapping as shown in a task document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortDocument {
    /// Port inside the container. A request's `0` (the same as the host port) shows the host
    /// port once it is allocated, `0` before.
    pub container_port: u16,
    /// Host port assigned at launch; 0 until then.
    pub host_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// The keys v1 and v0 documents share. Strings Eremetic always sends are `""` when unset;
/// the keys this implementation adds (`timeout`, `retries`, `exit_code`, `failure_reason`,
/// `waiting_reason`) are `null` when unset; the dropped-byte counts are 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommonDocument {
    /// Task id.
    pub id: String,
    /// Task name.
    pub name: String,
    /// Docker image.
    pub image: String,
    /// Shell command line (`""` when the image entrypoint runs with `args`).
    pub command: String,
    /// Entrypoint arguments.
    pub args: Vec<String>,
    /// User inside the container (`root` unless the request named one; `""` for tasks
    /// stored before that default, which ran as the image's user).
    pub user: String,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Secret environment: keys visible, every value replaced by [`MASK`].
    pub masked_env: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Bind mounts.
    pub volumes: Vec<Volume>,
    /// Port mappings.
    pub ports: Vec<PortDocument>,
    /// Status history, oldest first.
    pub status: Vec<StatusEntry>,
    /// Network mode (`BRIDGE`, `HOST`, `NONE`, `USER`).
    pub network: String,
    /// DNS server.
    pub dns: String,
    /// Mesos framework id.
    pub framework_id: String,
    /// Host name of the machine that runs the task.
    pub hostname: String,
    /// Relaunches so far.
    pub retry: u32,
    /// Callback URL.
    pub callback_uri: String,
    /// Which status changes are POSTed (`terminal`, `all`); `None`: the server's setting.
    pub callback_states: Option<CallbackStates>,
    /// Sandbox directory.
    pub sandbox_path: String,
    /// Agent address.
    pub agent_ip: String,
    /// Agent HTTP port (0 when unknown).
    pub agent_port: u16,
    /// Force pull.
    pub force_pull_image: bool,
    /// Privileged.
    pub privileged: bool,
    /// Fetched URIs.
    pub fetch: Vec<FetchUri>,
    /// Timeout in seconds.
    pub timeout: Option<u64>,
    /// Relaunches allowed.
    pub retries: u32,
    /// Exit status, once known.
    pub exit_code: Option<i32>,
    /// Why the task failed, once known.
    pub failure_reason: Option<String>,
    /// Bytes of stdout dropped because the output limit was exceeded (the log endpoint
    /// serves the newest output); live while the task runs, final once it has ended.
    #[serde(default)]
    pub stdout_dropped_bytes: u64,
    /// Bytes of stderr dropped because the output limit was exceeded.
    #[serde(default)]
    pub stderr_dropped_bytes: u64,
    /// Why a queued task is not launched now, in words; `null` when it is not held back.
    #[serde(default)]
    pub waiting_reason: Option<String>,
}

/// The v1 task document (`GET /api/v1/task/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskV1 {
    /// The shared keys.
    #[serde(flatten)]
    pub common: CommonDocument,
    /// CPUs.
    pub cpu: f64,
    /// Memory in MiB.
    pub mem: f64,
    /// Agent id.
    pub agent_id: String,
    /// Placement constraints.
    pub agent_constraints: Vec<AgentConstraint>,
    /// `--volumes-from` containers.
    pub volumes_from: Vec<String>,
}

/// The deprecated v0 task document (`GET /task/{id}`): v1 with the old key names and without
/// `volumes_from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskV0 {
    /// The shared keys.
    #[serde(flatten)]
    pub common: CommonDocument,
    /// CPUs.
    pub task_cpus: f64,
    /// Memory in MiB.
    pub task_mem: f64,
    /// Agent id.
    pub slave_id: String,
    /// Placement constraints.
    pub slave_constraints: Vec<AgentConstraint>,
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

impl CommonDocument {
    /// The shared keys of `task`, with every `masked_env` value replaced by [`MASK`].
    pub fn from_task(task: &Task) -> Self {
        let request = &task.request;
        let ports = request
            .ports
            .iter()
            .enumerate()
            .map(|(index, port)| {
                let host_port = task.host_ports.get(index).copied().unwrap_or(0);
                PortDocument {
                    // 0 asks for the host port inside too; once the host port is allocated the
                    // document says which, as Eremetic saved it back into the task.
                    container_port: match port.container_port {
                        0 => host_port,
                        requested => requested,
                    },
                    host_port,
                    protocol: port.protocol.as_str().to_owned(),
                }
            })
            .collect();
        CommonDocument {
            id: task.id.to_string(),
            name: task.name.clone(),
            image: request.image.clone(),
            command: text(&request.command),
            args: request.args.clone(),
            user: text(&request.user),
            env: request.env.clone(),
            masked_env: request
                .masked_env
                .keys()
                .map(|name| (name.clone(), MASK.to_owned()))
                .collect(),
            labels: request.labels.clone(),
            volumes: request.volumes.clone(),
            ports,
            status: task.status.clone(),
            network: request.network.as_str().to_owned(),
            dns: text(&request.dns),
            framework_id: text(&task.framework_id),
            hostname: text(&task.hostname),
            retry: task.retry,
            callback_uri: text(&request.callback_uri),
            callback_states: request.callback_states,
            sandbox_path: text(&task.sandbox_path),
            agent_ip: text(&task.agent_ip),
            agent_port: task.agent_port.unwrap_or(0),
            force_pull_image: request.force_pull_image,
            privileged: request.privileged,
            fetch: request.fetch.clone(),
            timeout: request.timeout_secs,
            retries: request.retries.unwrap_or(DEFAULT_MAX_RETRIES),
            exit_code: task.exit_code,
            failure_reason: task.failure_reason.clone(),
            stdout_dropped_bytes: task.stdout_dropped_bytes,
            stderr_dropped_bytes: task.stderr_dropped_bytes,
            waiting_reason: task.waiting_reason.clone(),
        }
    }
}

impl TaskV1 {
    /// The v1 document of `task`, masked.
    pub fn from_task(task: &Task) -> Self {
        TaskV1 {
            common: CommonDocument::from_task(task),
            cpu: task.request.cpu,
            mem: task.request.mem,
            agent_id: text(&task.agent_id),
            agent_constraints: task.request.agent_constraints.clone(),
            volumes_from: task.request.volumes_from.clone(),
        }
    }
}

impl TaskV0 {
    /// The v0 document of `task`, masked.
    pub fn from_task(task: &Task) -> Self {
        TaskV0 {
            common: CommonDocument::from_task(task),
            task_cpus: task.request.cpu,
            task_mem: task.request.mem,
            slave_id: text(&task.agent_id),
            slave_constraints: task.request.agent_constraints.clone(),
        }
    }
}

impl From<&Task> for TaskV1 {
    fn from(task: &Task) -> Self {
        TaskV1::from_task(task)
    }
}

impl From<&Task> for TaskV0 {
    fn from(task: &Task) -> Self {
        TaskV0::from_task(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_v1;
    use crate::task::TaskId;
    use time::OffsetDateTime;

    fn task() -> Task {
        let request = parse_v1(
            br#"{"image":"busybox","cpu":1,"mem":64,"masked_env":{"TOKEN":"s3cr3t"},
                "ports":[{"container_port":80},{"container_port":53,"protocol":"udp"}]}"#,
        )
        .unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap();
        let mut task = Task::new(TaskId::generate([7; 16]), "t".into(), request, now);
        task.host_ports = vec![31000];
        task
    }

    #[test]
    fn v1_document_has_every_eremetic_key() {
        let value = serde_json::to_value(TaskV1::from_task(&task())).unwrap();
        for key in [
            "cpu",
            "mem",
            "command",
            "args",
            "user",
            "env",
            "masked_env",
            "labels",
            "image",
            "volumes",
            "volumes_from",
            "ports",
            "status",
            "id",
            "name",
            "network",
            "dns",
            "framework_id",
            "agent_id",
            "agent_constraints",
            "hostname",
            "retry",
            "callback_uri",
            "sandbox_path",
            "agent_ip",
            "agent_port",
            "force_pull_image",
            "privileged",
            "fetch",
        ] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        assert_eq!(value["masked_env"]["TOKEN"], MASK);
        assert_eq!(value["ports"][0]["host_port"], 31000);
        assert_eq!(value["ports"][1]["host_port"], 0);
        assert_eq!(value["ports"][1]["protocol"], "udp");
        assert_eq!(value["status"][0]["status"], "TASK_QUEUED");
        assert_eq!(value["status"][0]["time"], 1_600_000_000);
    }

    #[test]
    fn v0_document_uses_the_old_keys() {
        let value = serde_json::to_value(TaskV0::from_task(&task())).unwrap();
        for key in ["task_cpus", "task_mem", "slave_id", "slave_constraints"] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        for key in [
            "cpu",
            "mem",
            "agent_id",
            "agent_constraints",
            "volumes_from",
        ] {
            assert!(value.get(key).is_none(), "unexpected {key}");
        }
    }

    #[test]
    fn documents_round_trip() {
        let doc = TaskV1::from_task(&task());
        let json = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<TaskV1>(&json).unwrap(), doc);
        let doc = TaskV0::from_task(&task());
        let json = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<TaskV0>(&json).unwrap(), doc);
    }
}
