//! Pure conversions of Docker Engine API responses into the runtime's plain values.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerInspectResponse, ContainerStatsResponse, ContainerSummary, EventMessage, HostConfig,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::types::{
    ContainerInfo, ContainerState, ExitStatus, ExposedPort, ListedContainer, UsageStats,
};
use crate::spec::{Limits, Protocol};

/// Largest signal number on Linux; exit codes `128 + n` above it are not signal deaths.
const MAX_SIGNAL: i64 = 64;

/// SIGKILL, which the OOM killer sends.
const SIGKILL: i32 = 9;

/// The exit status of a container from its exit code and `State.OOMKilled` flag.
pub fn exit_status(exit_code: i64, oom_killed: bool) -> ExitStatus {
    let signal = if oom_killed && exit_code == 128 + i64::from(SIGKILL) {
        Some(SIGKILL)
    } else if (129..=128 + MAX_SIGNAL).contains(&exit_code) {
        i32::try_from(exit_code - 128).ok()
    } else {
        None
    };
    ExitStatus {
        exit_code,
        oom_killed,
        signal,
    }
}

/// The exposed ports of an image from its `Config.ExposedPorts` keys (`80/tcp`, `53/udp`,
/// or a bare `80` meaning TCP), sorted by number. Keys that are not ports (port ranges never
/// reach image configs, but a corrupt config could hold anything) are skipped with a warning.
pub(crate) fn exposed_ports(keys: &[String]) -> Vec<ExposedPort> {
    let mut ports: Vec<ExposedPort> = keys
        .iter()
        .filter_map(|key| {
            let parsed = parse_exposed_port(key);
            if parsed.is_none() {
                log::warn!("ignoring exposed port {key:?} of an image: not <port>[/<protocol>]");
            }
            parsed
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

fn parse_exposed_port(key: &str) -> Option<ExposedPort> {
    let (port, protocol) = match key.split_once('/') {
        Some((port, protocol)) => (port, Protocol::parse(protocol)?),
        None => (key, Protocol::Tcp),
    };
    Some(ExposedPort {
        port: port.parse().ok()?,
        protocol,
    })
}

/// Parses a Docker timestamp; Docker's zero time (`0001-01-01T00:00:00Z`, "never") and
/// unparsable values give `None`.
pub(crate) fn docker_time(text: Option<&str>) -> Option<OffsetDateTime> {
    let time = OffsetDateTime::parse(text?, &Rfc3339).ok()?;
    (time.year() > 1).then_some(time)
}

/// The container information of an inspect response; `lookup` is the id or name that was
/// inspected, used when the response lacks an id.
pub(crate) fn container_info(lookup: &str, response: ContainerInspectResponse) -> ContainerInfo {
    let state = response.state.unwrap_or_default();
    let config = response.config.unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let status = state.status.map_or(ContainerState::Unknown, |status| {
        ContainerState::from_docker(status.as_ref())
    });
    ContainerInfo {
        id: response.id.unwrap_or_else(|| lookup.to_owned()),
        name: strip_slash(response.name.as_deref().unwrap_or_default()),
        image: config.image.unwrap_or_default(),
        state: status,
        running,
        pid: state
            .pid
            .filter(|pid| *pid > 0)
            .and_then(|pid| u32::try_from(pid).ok()),
        exit_code: if running || status == ContainerState::Created {
            None
        } else {
            state.exit_code
        },
        oom_killed: state.oom_killed.unwrap_or(false),
        started_at: docker_time(state.started_at.as_deref()),
        finished_at: docker_time(state.finished_at.as_deref()),
        labels: to_btree_map(config.labels),
        limits: response
            .host_config
            .as_ref()
            .map(limits_of)
            .unwrap_or_default(),
    }
}

/// A `docker inspect`-shaped document of what [`ContainerInfo`] knows (the default of
/// [`super::ContainerRuntime::inspect_json`]).
pub(crate) fn inspect_document(info: &ContainerInfo) -> serde_json::Value {
    serde_json::json!({
        "Id": info.id,
        "Name": format!("/{}", info.name),
        "Config": { "Image": info.image, "Labels": info.labels },
        "State": {
            "Status": info.state.as_docker(),
            "Running": info.running,
            "Pid": info.pid.unwrap_or(0),
            "ExitCode": info.exit_code.unwrap_or(0),
            "OOMKilled": info.oom_killed,
        },
    })
}

/// The limits applied by a host configuration (zero means "unset" to Docker).
pub(crate) fn limits_of(host: &HostConfig) -> Limits {
    let positive = |value: Option<i64>| value.filter(|v| *v > 0);
    let cpu_quota = match (positive(host.cpu_quota), positive(host.cpu_period)) {
        (Some(quota), Some(period)) => Some(quota as f64 / period as f64),
        (Some(quota), None) => Some(quota as f64 / super::translate::CPU_PERIOD_MICROS as f64),
        _ => None,
    };
    Limits {
        cpu_shares: positive(host.cpu_shares).and_then(|v| u64::try_from(v).ok()),
        cpu_quota,
        memory_bytes: positive(host.memory).and_then(|v| u64::try_from(v).ok()),
    }
}

/// A container of a list response.
pub(crate) fn listed_container(summary: ContainerSummary) -> ListedContainer {
    ListedContainer {
        id: summary.id.unwrap_or_default(),
        names: summary
            .names
            .unwrap_or_default()
            .iter()
            .map(|name| strip_slash(name))
            .collect(),
        image: summary.image.unwrap_or_default(),
        state: summary.state.map_or(ContainerState::Unknown, |state| {
            ContainerState::from_docker(state.as_ref())
        }),
        labels: to_btree_map(summary.labels),
    }
}

/// Usage figures of a one-shot stats response. RSS and cache come from the cgroup v1 keys
/// (`rss`, `cache`) or, on cgroup v2, their equivalents (`anon`, `file`).
pub(crate) fn usage_stats(stats: &ContainerStatsResponse) -> UsageStats {
    let cpu = stats.cpu_stats.clone().unwrap_or_default();
    let usage = cpu.cpu_usage.unwrap_or_default();
    let throttling = cpu.throttling_data.unwrap_or_default();
    let memory = stats.memory_stats.clone().unwrap_or_default();
    let memory_detail = memory.stats.unwrap_or_default();
    let detail = |v1: &str, v2: &str| {
        memory_detail
            .get(v1)
            .or_else(|| memory_detail.get(v2))
            .copied()
    };
    UsageStats {
        cpu_total_ns: usage.total_usage.unwrap_or(0),
        cpu_user_ns: usage.usage_in_usermode.unwrap_or(0),
        cpu_system_ns: usage.usage_in_kernelmode.unwrap_or(0),
        cpu_periods: throttling.periods.unwrap_or(0),
        cpu_throttled_periods: throttling.throttled_periods.unwrap_or(0),
        cpu_throttled_ns: throttling.throttled_time.unwrap_or(0),
        memory_usage_bytes: memory.usage.unwrap_or(0),
        memory_limit_bytes: memory.limit.unwrap_or(0),
        memory_rss_bytes: detail("rss", "anon"),
        memory_cache_bytes: detail("cache", "file"),
    }
}

fn strip_slash(name: &str) -> String {
    name.strip_prefix('/').unwrap_or(name).to_owned()
}

fn to_btree_map(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

/// Whether an exited container's OOM flag may still be on its way: it had a memory limit, its
/// main process died of SIGKILL (what the OOM killer sends) and the flag is not set yet.
pub(crate) fn might_await_oom_report(info: &ContainerInfo) -> bool {
    let killed_by_sigkill = 128 + i64::from(SIGKILL);
    !info.oom_killed
        && info.exit_code == Some(killed_by_sigkill)
        && info.limits.memory_bytes.is_some_and(|bytes| bytes > 0)
}

/// What the engine's events say about a container's SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillEvidence {
    /// A SIGKILL went through the API (`docker stop` after its grace, `docker kill`).
    ThroughTheApi,
    /// The OOM killer struck.
    OutOfMemory,
    /// Neither is recorded (yet).
    Unknown,
}

/// Reads the `kill` and `oom` events of one container: an `oom` event wins (a stop may come
/// while the OOM killer strikes), else a `kill` event whose `signal` attribute is SIGKILL.
pub(crate) fn kill_evidence(events: &[EventMessage]) -> KillEvidence {
    let action = |event: &EventMessage| event.action.as_deref().unwrap_or_default().to_owned();
    if events.iter().any(|event| action(event) == "oom") {
        return KillEvidence::OutOfMemory;
    }
    let sigkill = |event: &EventMessage| {
        let signal = event
            .actor
            .as_ref()
            .and_then(|actor| actor.attributes.as_ref())
            .and_then(|attributes| attributes.get("signal"));
        matches!(signal.map(String::as_str), Some("9" | "KILL" | "SIGKILL"))
    };
    if events
        .iter()
        .any(|event| action(event) == "kill" && sigkill(event))
    {
        KillEvidence::ThroughTheApi
    } else {
        KillEvidence::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(exit_code: i64, oom_killed: bool, memory_bytes: Option<u64>) -> ContainerInfo {
        ContainerInfo {
            id: "abc".into(),
            name: "task-1".into(),
            image: "busybox".into(),
            state: ContainerState::Exited,
            running: false,
            pid: None,
            exit_code: Some(exit_code),
            oom_killed,
            started_at: None,
            finished_at: None,
            labels: BTreeMap::new(),
            limits: Limits {
                memory_bytes,
                ..Limits::default()
            },
        }
    }

    fn event(action: &str, signal: Option<&str>) -> EventMessage {
        EventMessage {
            action: Some(action.to_owned()),
            actor: Some(bollard::models::EventActor {
                id: Some("abc".to_owned()),
                attributes: Some(
                    signal
                        .map(|signal| ("signal".to_owned(), signal.to_owned()))
                        .into_iter()
                        .collect(),
                ),
            }),
            ..EventMessage::default()
        }
    }

    #[test]
    fn a_stop_that_ended_in_sigkill_is_a_kill_through_the_api() {
        let stop = [event("kill", Some("15")), event("kill", Some("9"))];
        assert_eq!(kill_evidence(&stop), KillEvidence::ThroughTheApi);
    }

    #[test]
    fn an_oom_event_is_an_oom_kill_even_during_a_stop() {
        let events = [
            event("kill", Some("15")),
            event("oom", None),
            event("kill", Some("9")),
        ];
        assert_eq!(kill_evidence(&events), KillEvidence::OutOfMemory);
    }

    #[test]
    fn a_sigterm_alone_or_no_event_is_no_evidence() {
        assert_eq!(
            kill_evidence(&[event("kill", Some("15"))]),
            KillEvidence::Unknown
        );
        assert_eq!(kill_evidence(&[]), KillEvidence::Unknown);
    }

    #[test]
    fn only_an_unflagged_sigkill_under_a_memory_limit_may_await_the_oom_report() {
        assert!(might_await_oom_report(&exited(137, false, Some(32 << 20))));
        assert!(!might_await_oom_report(&exited(137, true, Some(32 << 20))));
        assert!(!might_await_oom_report(&exited(137, false, None)));
        assert!(!might_await_oom_report(&exited(143, false, Some(32 << 20))));
        assert!(!might_await_oom_report(&exited(0, false, Some(32 << 20))));
    }

    #[test]
    fn inspect_document_has_the_engines_keys_for_what_is_known() {
        let info = ContainerInfo {
            id: "abc".into(),
            name: "task-1".into(),
            image: "busybox".into(),
            state: ContainerState::Exited,
            running: false,
            pid: None,
            exit_code: Some(3),
            oom_killed: true,
            started_at: None,
            finished_at: None,
            labels: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            limits: Limits::default(),
        };
        let document = inspect_document(&info);
        assert_eq!(document["Id"], "abc");
        assert_eq!(document["Name"], "/task-1");
        assert_eq!(document["Config"]["Image"], "busybox");
        assert_eq!(document["Config"]["Labels"]["k"], "v");
        assert_eq!(document["State"]["Status"], "exited");
        assert_eq!(document["State"]["Running"], false);
        assert_eq!(document["State"]["Pid"], 0);
        assert_eq!(document["State"]["ExitCode"], 3);
        assert_eq!(document["State"]["OOMKilled"], true);
    }
}
