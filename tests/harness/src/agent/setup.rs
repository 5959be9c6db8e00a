//! What the fake agent knows about the one framework/executor it hosts, and
//! the environment it gives that executor (§4.3).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mesos_proto::v1::executor::event;
use mesos_proto::v1::{
    executor_info, AgentId, AgentInfo, CommandInfo, ContainerId, ExecutorId, ExecutorInfo,
    FrameworkId, FrameworkInfo,
};

use super::codec::ContentType;

/// Configuration of a [`FakeAgent`](super::FakeAgent).
#[derive(Debug, Clone)]
pub struct AgentSetup {
    /// The framework the executor belongs to (`MESOS_FRAMEWORK_ID`).
    pub framework_id: String,
    /// The executor's id (`MESOS_EXECUTOR_ID`).
    pub executor_id: String,
    /// The agent's id (`MESOS_SLAVE_ID`, `agent_info.id`).
    pub agent_id: String,
    /// The executor's container id (`SUBSCRIBED.container_id`).
    pub container_id: String,
    /// `FrameworkInfo.checkpoint`: decides `MESOS_CHECKPOINT` and whether the
    /// agent recovers the executor after a restart.
    pub checkpoint: bool,
    /// Request `Content-Type`s this agent accepts (a real agent accepts both;
    /// restrict it to check what an executor sends). Others get 415.
    pub accepted_content_types: Vec<ContentType>,
    /// `FrameworkInfo.user`.
    pub framework_user: String,
    /// `FrameworkInfo.name`.
    pub framework_name: String,
    /// `AgentInfo.hostname`.
    pub hostname: String,
    /// `ExecutorInfo.command` sent in SUBSCRIBED (how the executor was started).
    pub executor_command: Option<CommandInfo>,
    /// `MESOS_RECOVERY_TIMEOUT` (only given with checkpointing; Mesos default 15 min).
    pub recovery_timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX` (only given with checkpointing), which
    /// is also the agent's executor re-registration timeout after a restart
    /// (Mesos default 2 s).
    pub subscription_backoff_max: Duration,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` (Mesos default 5 s).
    pub shutdown_grace_period: Duration,
    /// Interval of HEARTBEAT events on a subscription (Mesos 1.8+: 30 min).
    pub heartbeat_interval: Duration,
    /// Whether `MESOS_SANDBOX` is set. The Mesos and Docker containerizers set
    /// it (to `MESOS_DIRECTORY` for a host process); the external
    /// containerizer does not, so an executor must cope with both.
    pub sets_mesos_sandbox: bool,
}

impl AgentSetup {
    /// A setup with these ids, checkpointing on, both content types accepted
    /// and Mesos' default timings.
    pub fn new(
        framework_id: impl Into<String>,
        executor_id: impl Into<String>,
        agent_id: impl Into<String>,
        container_id: impl Into<String>,
    ) -> Self {
        AgentSetup {
            framework_id: framework_id.into(),
            executor_id: executor_id.into(),
            agent_id: agent_id.into(),
            container_id: container_id.into(),
            checkpoint: true,
            accepted_content_types: vec![ContentType::Json, ContentType::Protobuf],
            framework_user: "root".to_owned(),
            framework_name: "mesos-harness".to_owned(),
            hostname: "localhost".to_owned(),
            executor_command: None,
            recovery_timeout: Duration::from_secs(15 * 60),
            subscription_backoff_max: Duration::from_secs(2),
            shutdown_grace_period: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(30 * 60),
            sets_mesos_sandbox: true,
        }
    }

    /// The SUBSCRIBED payload this agent sends (executor, framework and agent
    /// info, container id), for an agent listening on `address`.
    pub fn subscribed(&self, address: SocketAddr) -> event::Subscribed {
        let framework_id = FrameworkId {
            value: self.framework_id.clone(),
        };
        event::Subscribed {
            executor_info: ExecutorInfo {
                r#type: Some(executor_info::Type::Custom as i32),
                executor_id: ExecutorId {
                    value: self.executor_id.clone(),
                },
                framework_id: Some(framework_id.clone()),
                command: self.executor_command.clone(),
                ..Default::default()
            },
            framework_info: FrameworkInfo {
                user: self.framework_user.clone(),
                name: self.framework_name.clone(),
                id: Some(framework_id),
                checkpoint: Some(self.checkpoint),
                ..Default::default()
            },
            agent_info: AgentInfo {
                hostname: self.hostname.clone(),
                port: Some(i32::from(address.port())),
                id: Some(AgentId {
                    value: self.agent_id.clone(),
                }),
                ..Default::default()
            },
            container_id: Some(ContainerId {
                value: self.container_id.clone(),
                parent: None,
            }),
        }
    }

    /// The environment an agent listening on `address` gives the executor
    /// whose sandbox is `sandbox` (agent `executorEnvironment`, §4.3).
    pub fn executor_env(&self, address: SocketAddr, sandbox: &Path) -> Vec<(String, String)> {
        let sandbox = sandbox.display().to_string();
        let mut env = vec![
            ("MESOS_FRAMEWORK_ID", self.framework_id.clone()),
            ("MESOS_EXECUTOR_ID", self.executor_id.clone()),
            ("MESOS_AGENT_ENDPOINT", address.to_string()),
            ("MESOS_SLAVE_PID", format!("slave(1)@{address}")),
            ("MESOS_SLAVE_ID", self.agent_id.clone()),
            ("MESOS_DIRECTORY", sandbox.clone()),
            (
                "MESOS_CHECKPOINT",
                if self.checkpoint { "1" } else { "0" }.to_owned(),
            ),
        ];
        if self.sets_mesos_sandbox {
            env.push(("MESOS_SANDBOX", sandbox));
        }
        if self.checkpoint {
            env.push((
                "MESOS_RECOVERY_TIMEOUT",
                stout_duration(self.recovery_timeout),
            ));
            env.push((
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                stout_duration(self.subscription_backoff_max),
            ));
        }
        env.push((
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
            stout_duration(self.shutdown_grace_period),
        ));
        env.push(("MESOS_HTTP_COMMAND_EXECUTOR", "0".to_owned()));
        env.push(("LIBPROCESS_PORT", "0".to_owned()));
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// Formats a duration as stout's `Duration` output operator does: the largest
/// unit (`ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`, `weeks`) in which
/// the value is at least 1, with up to 6 significant digits (`15mins`,
/// `2secs`, `1.5secs`).
pub fn stout_duration(duration: Duration) -> String {
    const UNITS: [(u128, &str); 8] = [
        (1, "ns"),
        (1_000, "us"),
        (1_000_000, "ms"),
        (1_000_000_000, "secs"),
        (60 * 1_000_000_000, "mins"),
        (3_600 * 1_000_000_000, "hrs"),
        (86_400 * 1_000_000_000, "days"),
        (604_800 * 1_000_000_000, "weeks"),
    ];
    let nanos = duration.as_nanos();
    let (unit_nanos, unit) = UNITS
        .iter()
        .rev()
        .find(|(unit_nanos, _)| nanos >= *unit_nanos)
        .copied()
        .unwrap_or((1, "ns"));
    // Nanosecond counts of test durations fit an f64 exactly enough for 6 digits.
    let value = nanos as f64 / unit_nanos as f64;
    format!("{}{unit}", six_significant_digits(value))
}

/// Like C++ `ostream << double` with the default precision of 6 (`%g`
/// without exponent for the magnitudes used here).
fn six_significant_digits(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let integer_digits = value.abs().log10().floor() as i32 + 1;
    let decimals = (6 - integer_digits).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_map(setup: &AgentSetup) -> std::collections::HashMap<String, String> {
        let address: SocketAddr = "127.0.0.1:5051".parse().unwrap();
        setup
            .executor_env(address, Path::new("/var/sandbox"))
            .into_iter()
            .collect()
    }

    #[test]
    fn stout_durations_use_the_largest_whole_unit() {
        assert_eq!(stout_duration(Duration::from_secs(900)), "15mins");
        assert_eq!(stout_duration(Duration::from_secs(2)), "2secs");
        assert_eq!(stout_duration(Duration::from_millis(1500)), "1.5secs");
        assert_eq!(stout_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(stout_duration(Duration::from_secs(7200)), "2hrs");
        assert_eq!(stout_duration(Duration::ZERO), "0ns");
    }

    #[test]
    fn checkpointing_executor_env_has_recovery_variables() {
        let env = env_map(&AgentSetup::new("f", "e", "a", "c"));
        assert_eq!(env["MESOS_AGENT_ENDPOINT"], "127.0.0.1:5051");
        assert_eq!(env["MESOS_SLAVE_PID"], "slave(1)@127.0.0.1:5051");
        assert_eq!(env["MESOS_CHECKPOINT"], "1");
        assert_eq!(env["MESOS_RECOVERY_TIMEOUT"], "15mins");
        assert_eq!(env["MESOS_SUBSCRIPTION_BACKOFF_MAX"], "2secs");
        assert_eq!(env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"], "5secs");
        assert_eq!(env["MESOS_DIRECTORY"], "/var/sandbox");
        assert_eq!(env["MESOS_SANDBOX"], "/var/sandbox");
        assert_eq!(env["MESOS_HTTP_COMMAND_EXECUTOR"], "0");
    }

    #[test]
    fn non_checkpointing_executor_env_has_no_recovery_variables() {
        let setup = AgentSetup {
            checkpoint: false,
            sets_mesos_sandbox: false,
            ..AgentSetup::new("f", "e", "a", "c")
        };
        let env = env_map(&setup);
        assert_eq!(env["MESOS_CHECKPOINT"], "0");
        assert!(!env.contains_key("MESOS_RECOVERY_TIMEOUT"));
        assert!(!env.contains_key("MESOS_SUBSCRIPTION_BACKOFF_MAX"));
        assert!(!env.contains_key("MESOS_SANDBOX"));
        assert_eq!(env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"], "5secs");
    }
}
