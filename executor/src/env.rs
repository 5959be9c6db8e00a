//! The environment a Mesos agent gives an executor (mesos-protocol.md §4.3), parsed into typed
//! [`Settings`]. Pure: the variables come from a lookup function. [`Settings::from_process_env`]
//! also reads the operator's `deimos.cfg` ([`Operator`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` when the agent does not set it (Mesos' default).
pub const DEFAULT_SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(5);

/// How the executor behaves after losing the agent, when the framework checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// `MESOS_RECOVERY_TIMEOUT`: how long to keep re-subscribing after the first disconnection.
    pub timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX`: the longest wait between two SUBSCRIBE attempts.
    pub backoff_max: Duration,
}

/// The executor's settings, from the agent-provided environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// `MESOS_AGENT_ENDPOINT`: `host:port` of the agent's HTTP API.
    pub agent_endpoint: String,
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
    /// `MESOS_SLAVE_ID` (or `MESOS_AGENT_ID`), when set.
    pub agent_id: Option<String>,
    /// `MESOS_DIRECTORY`: the sandbox path on the host, bind-mounted into task containers.
    pub directory: PathBuf,
    /// `MESOS_SANDBOX`, else `MESOS_DIRECTORY`: the sandbox as this process sees it, where the
    /// tasks' `stdout` and `stderr` are written.
    pub sandbox: PathBuf,
    /// `MESOS_CHECKPOINT`: `Some` when the framework checkpoints (re-subscribe after losing the
    /// agent), `None` when it does not (shut down instead).
    pub recovery: Option<Recovery>,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`: time between SHUTDOWN and the agent destroying
    /// the executor.
    pub shutdown_grace_period: Duration,
    /// `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`: sent as `Authorization: Bearer` on every call.
    pub authentication_token: Option<String>,
    /// The operator's limits from `deimos.cfg`.
    pub operator: Operator,
}

/// What the operator's `deimos.cfg` says about the executor's tasks: `[policy]` (privileged
/// mode, host paths, `--volumes-from`), `[uris]` (local files, size caps, unpacking) and
/// `[containers] cfs_quota` (hard CPU limits). [`Default`] is a configuration without a file:
/// everything refused, 1 GiB caps, the fetch cache in its default directory, CPU shares only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Checked when a task is translated, host paths resolved again before the container is
    /// created.
    pub policy: deimos_runtime::policy::ContainerPolicy,
    /// How the task's URIs are fetched.
    pub fetch: deimos_runtime::fetch::FetchOptions,
    /// Enforce a task's cpus as a CFS quota besides the shares, as a Mesos agent with
    /// `--cgroups_enable_cfs` does for its Docker containers.
    pub cfs_quota: bool,
}

impl Default for Operator {
    fn default() -> Self {
        Operator::from_config(&deimos_runtime::config::OperatorConfig::default())
    }
}

impl Operator {
    /// The settings of a configuration.
    pub fn from_config(config: &deimos_runtime::config::OperatorConfig) -> Operator {
        Operator {
            policy: config.policy.container_policy(),
            fetch: config.uris.fetch_options(),
            cfs_quota: config.cfs_quota,
        }
    }

    /// Loads `$DEIMOS_CONFIG` (which must exist when set), else the first of
    /// `/etc/deimos.cfg`, `/usr/etc/deimos.cfg`, `/usr/local/etc/deimos.cfg`; no file gives
    /// [`Operator::default`]. Unlike `deimos`, neither the current directory (the sandbox,
    /// which the framework fills through the executor's URIs) nor `~` is searched: a task
    /// must not be able to choose its own policy.
    pub fn load(config_file: Option<PathBuf>) -> Result<Operator, Error> {
        let paths = deimos_runtime::config::system_search_path(std::path::Path::new("/"));
        let (config, source) =
            deimos_runtime::config::load_operator_config(config_file.as_deref(), &paths)?;
        if let Some(source) = &source {
            log::info!("operator configuration: {}", source.display());
        }
        Ok(Operator::from_config(&config))
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("agent_endpoint", &self.agent_endpoint)
            .field("framework_id", &self.framework_id)
            .field("executor_id", &self.executor_id)
            .field("agent_id", &self.agent_id)
            .field("directory", &self.directory)
            .field("sandbox", &self.sandbox)
            .field("recovery", &self.recovery)
            .field("shutdown_grace_period", &self.shutdown_grace_period)
            // The token is a credential: only say whether there is one.
            .field(
                "authentication_token",
                &self.authentication_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Settings {
    /// Parses the settings from `lookup` (variable name → value).
    ///
    /// Required: `MESOS_AGENT_ENDPOINT`, `MESOS_FRAMEWORK_ID`, `MESOS_EXECUTOR_ID`,
    /// `MESOS_DIRECTORY`, `MESOS_CHECKPOINT`, and with `MESOS_CHECKPOINT=1` also
    /// `MESOS_RECOVERY_TIMEOUT` and `MESOS_SUBSCRIPTION_BACKOFF_MAX` (as the official executor
    /// library requires).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|value| !value.is_empty())
                .ok_or(Error::MissingVariable { name })
        };
        let optional = |name: &str| lookup(name).filter(|value| !value.is_empty());

        let agent_endpoint = required("MESOS_AGENT_ENDPOINT")?;
        check_endpoint(&agent_endpoint).map_err(|reason| Error::InvalidVariable {
            name: "MESOS_AGENT_ENDPOINT",
            value: agent_endpoint.clone(),
            reason,
        })?;
        let framework_id = required("MESOS_FRAMEWORK_ID")?;
        let executor_id = required("MESOS_EXECUTOR_ID")?;
        let directory = PathBuf::from(required("MESOS_DIRECTORY")?);
        if !directory.is_absolute() {
            return Err(Error::InvalidVariable {
                name: "MESOS_DIRECTORY",
                value: directory.display().to_string(),
                reason: "not an absolute path".into(),
            });
        }
        let sandbox = optional("MESOS_SANDBOX").map_or_else(|| directory.clone(), PathBuf::from);
        let checkpoint = parse_flag("MESOS_CHECKPOINT", &required("MESOS_CHECKPOINT")?)?;
        let recovery = if checkpoint {
            Some(Recovery {
                timeout: duration_variable("MESOS_RECOVERY_TIMEOUT", required)?,
                backoff_max: duration_variable("MESOS_SUBSCRIPTION_BACKOFF_MAX", required)?,
            })
        } else {
            None
        };
        let shutdown_grace_period = match optional("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD") {
            Some(value) => parse_duration(&value).map_err(|reason| Error::InvalidVariable {
                name: "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                value,
                reason,
            })?,
            None => DEFAULT_SHUTDOWN_GRACE_PERIOD,
        };
        Ok(Settings {
            agent_endpoint,
            framework_id,
            executor_id,
            agent_id: optional("MESOS_SLAVE_ID").or_else(|| optional("MESOS_AGENT_ID")),
            directory,
            sandbox,
            recovery,
            shutdown_grace_period,
            authentication_token: optional("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"),
            operator: Operator::default(),
        })
    }

    /// Parses the settings from this process's environment. A variable that is not valid
    /// UTF-8 counts as absent.
    /// The operator's configuration is loaded too ([`Operator::load`]).
    pub fn from_process_env() -> Result<Settings, Error> {
        let mut settings = Settings::from_lookup(|name| std::env::var(name).ok())?;
        let config_file = std::env::var_os(deimos_runtime::config::CONFIG_ENV_VAR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        settings.operator = Operator::load(config_file)?;
        Ok(settings)
    }

    /// The URL of the executor API: `http://<MESOS_AGENT_ENDPOINT>/api/v1/executor`.
    pub fn executor_url(&self) -> String {
        format!("http://{}/api/v1/executor", self.agent_endpoint)
    }
}

fn duration_variable(
    name: &'static str,
    required: impl Fn(&'static str) -> Result<String, Error>,
) -> Result<Duration, Error> {
    let value = required(name)?;
    parse_duration(&value).map_err(|reason| Error::InvalidVariable {
        name,
        value,
        reason,
    })
}

/// `1`/`true` or `0`/`false`.
fn parse_flag(name: &'static str, value: &str) -> Result<bool, Error> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(Error::InvalidVariable {
            name,
            value: value.to_owned(),
            reason: "expected 1 or 0".into(),
        }),
    }
}

/// `host:port` with a non-empty host and a port 1-65535 (`[v6]:port` for IPv6).
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| "expected <ip>:<port>".to_owned())?;
    if host.is_empty() || host.contains('/') || host.chars().any(char::is_whitespace) {
        return Err("expected <ip>:<port> with a host before the colon".into());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {port:?} is not a number from 1 to 65535")),
        Ok(_) => Ok(()),
    }
}

/// Parses a duration in the format Mesos (stout) writes: a non-negative decimal number
/// followed by one of `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`, `weeks`
/// (`15mins`, `2secs`, `1.5secs`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("{text:?} has no unit (ns, us, ms, secs, mins, hrs, days, weeks)")
        })?;
    let (number, unit) = text.split_at(split);
    let amount: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a decimal number"))?;
    let unit_secs = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86_400.0,
        "weeks" => 604_800.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} (expected ns, us, ms, secs, mins, hrs, days or weeks)"
            ))
        }
    };
    Duration::try_from_secs_f64(amount * unit_secs).map_err(|error| format!("{text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;

    #[test]
    fn operator_settings_come_from_the_deimos_configuration_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deimos.cfg");
        std::fs::write(
            &file,
            "[policy]\nallow_privileged: true\n[uris]\nallowed_local_paths: [\"/srv/a\"]\n\
             max_size: 10MiB\ncache_dir: /srv/cache\ncache_size: 5MiB\n",
        )
        .unwrap();
        let operator = Operator::load(Some(file)).unwrap();
        assert!(operator.policy.allow_privileged);
        assert_eq!(operator.fetch.local_files.dirs(), [PathBuf::from("/srv/a")]);
        assert_eq!(operator.fetch.max_size, 10 << 20);
        let cache = operator.fetch.cache.as_ref().unwrap();
        assert_eq!(
            (cache.dir.as_path(), cache.max_size),
            (Path::new("/srv/cache"), 5 << 20)
        );
        let missing = Operator::load(Some(dir.path().join("missing.cfg"))).unwrap_err();
        assert!(missing.to_string().contains("missing.cfg"), "{missing}");
        let bad = dir.path().join("bad.cfg");
        std::fs::write(&bad, "[policy]\nallow_privileged: maybe\n").unwrap();
        let error = Operator::load(Some(bad.clone())).unwrap_err().to_string();
        assert!(error.contains("[policy] allow_privileged"), "{error}");
        std::fs::write(&bad, "[uris]\ncache_size: none\n").unwrap();
        let error = Operator::load(Some(bad)).unwrap_err().to_string();
        assert!(error.contains("[uris] cache_size"), "{error}");
    }

    #[test]
    fn the_containerizers_sections_of_a_shared_deimos_cfg_are_left_to_it() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/deimos.cfg");
        assert_eq!(Operator::load(Some(example)).unwrap(), Operator::default());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deimos.cfg");
        std::fs::write(
            &file,
            "[docker]\nhost: unix:///run/docker.sock\n[log]\nconsole: DEBUG\n\
             [policy]\nallow_volumes_from: yes\n",
        )
        .unwrap();
        assert!(
            Operator::load(Some(file))
                .unwrap()
                .policy
                .allow_volumes_from
        );
    }

    fn base() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
            ("MESOS_FRAMEWORK_ID", "fw-1"),
            ("MESOS_EXECUTOR_ID", "ex-1"),
            ("MESOS_DIRECTORY", "/var/lib/mesos/sandbox"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "15mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs"),
        ])
    }

    fn parse(vars: &BTreeMap<&'static str, &'static str>) -> Result<Settings, Error> {
        Settings::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()))
    }

    fn without(name: &str) -> BTreeMap<&'static str, &'static str> {
        let mut vars = base();
        vars.remove(name);
        vars
    }

    fn with(name: &'static str, value: &'static str) -> BTreeMap<&'static str, &'static str> {
        let mut vars = base();
        vars.insert(name, value);
        vars
    }

    #[test]
    fn agent_environment_with_checkpointing_parses_every_setting() {
        let mut vars = base();
        vars.insert("MESOS_SLAVE_ID", "agent-7");
        vars.insert("MESOS_SANDBOX", "/mnt/mesos/sandbox");
        vars.insert("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "10secs");
        vars.insert("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "jwt");
        let settings = parse(&vars).unwrap();
        assert_eq!(settings.agent_endpoint, "127.0.0.1:5051");
        assert_eq!(settings.framework_id, "fw-1");
        assert_eq!(settings.executor_id, "ex-1");
        assert_eq!(settings.agent_id.as_deref(), Some("agent-7"));
        assert_eq!(settings.directory, PathBuf::from("/var/lib/mesos/sandbox"));
        assert_eq!(settings.sandbox, PathBuf::from("/mnt/mesos/sandbox"));
        assert_eq!(
            settings.recovery,
            Some(Recovery {
                timeout: Duration::from_secs(900),
                backoff_max: Duration::from_secs(2)
            })
        );
        assert_eq!(settings.shutdown_grace_period, Duration::from_secs(10));
        assert_eq!(settings.authentication_token.as_deref(), Some("jwt"));
        assert_eq!(
            settings.executor_url(),
            "http://127.0.0.1:5051/api/v1/executor"
        );
    }

    #[test]
    fn debug_output_redacts_the_authentication_token() {
        let settings = parse(&with("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "s3cr3t")).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn without_checkpointing_recovery_variables_are_not_needed() {
        let mut vars = with("MESOS_CHECKPOINT", "0");
        vars.remove("MESOS_RECOVERY_TIMEOUT");
        vars.remove("MESOS_SUBSCRIPTION_BACKOFF_MAX");
        let settings = parse(&vars).unwrap();
        assert_eq!(settings.recovery, None);
        assert_eq!(settings.sandbox, settings.directory);
        assert_eq!(
            settings.shutdown_grace_period,
            DEFAULT_SHUTDOWN_GRACE_PERIOD
        );
        assert_eq!(settings.agent_id, None);
    }

    #[test]
    fn agent_id_falls_back_to_mesos_agent_id() {
        let settings = parse(&with("MESOS_AGENT_ID", "a-2")).unwrap();
        assert_eq!(settings.agent_id.as_deref(), Some("a-2"));
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for name in [
            "MESOS_AGENT_ENDPOINT",
            "MESOS_FRAMEWORK_ID",
            "MESOS_EXECUTOR_ID",
            "MESOS_DIRECTORY",
            "MESOS_CHECKPOINT",
            "MESOS_RECOVERY_TIMEOUT",
            "MESOS_SUBSCRIPTION_BACKOFF_MAX",
        ] {
            let error = parse(&without(name)).unwrap_err();
            assert!(
                matches!(error, Error::MissingVariable { name: n } if n == name),
                "{name}: {error}"
            );
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn empty_required_variable_counts_as_missing() {
        let error = parse(&with("MESOS_EXECUTOR_ID", "")).unwrap_err();
        assert!(matches!(
            error,
            Error::MissingVariable {
                name: "MESOS_EXECUTOR_ID"
            }
        ));
    }

    #[test]
    fn each_malformed_variable_is_named_with_its_value() {
        let cases = [
            ("MESOS_AGENT_ENDPOINT", "localhost"),
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:0"),
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:99999"),
            ("MESOS_AGENT_ENDPOINT", ":5051"),
            ("MESOS_AGENT_ENDPOINT", "http://h:5051"),
            ("MESOS_DIRECTORY", "relative/sandbox"),
            ("MESOS_CHECKPOINT", "yes"),
            ("MESOS_RECOVERY_TIMEOUT", "15"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2 secs"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "five"),
        ];
        for (name, value) in cases {
            let error = parse(&with(name, value)).unwrap_err();
            assert!(
                matches!(&error, Error::InvalidVariable { name: n, value: v, .. } if *n == name && v == value),
                "{name}={value}: {error}"
            );
            let message = error.to_string();
            assert!(
                message.contains(name) && message.contains(value),
                "{message}"
            );
        }
    }

    #[test]
    fn ipv6_endpoint_in_brackets_is_accepted() {
        let settings = parse(&with("MESOS_AGENT_ENDPOINT", "[::1]:5051")).unwrap();
        assert_eq!(settings.executor_url(), "http://[::1]:5051/api/v1/executor");
    }

    #[test]
    fn stout_durations_parse_in_every_unit() {
        let cases = [
            ("100ns", Duration::from_nanos(100)),
            ("250us", Duration::from_micros(250)),
            ("500ms", Duration::from_millis(500)),
            ("2secs", Duration::from_secs(2)),
            ("1.5secs", Duration::from_millis(1500)),
            ("15mins", Duration::from_secs(900)),
            ("2hrs", Duration::from_secs(7200)),
            ("1days", Duration::from_secs(86_400)),
            ("1weeks", Duration::from_secs(604_800)),
            ("0secs", Duration::ZERO),
        ];
        for (text, expected) in cases {
            let parsed = parse_duration(text).unwrap();
            let delta = parsed.abs_diff(expected);
            assert!(delta < Duration::from_nanos(2), "{text}: {parsed:?}");
        }
    }

    #[test]
    fn durations_without_number_or_known_unit_are_rejected() {
        for text in ["", "secs", "5", "5s", "5 secs", "-5secs", "1.2.3secs"] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
    }
}
