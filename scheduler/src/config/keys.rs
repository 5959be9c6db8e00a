//! The table of configuration keys: their names in YAML, the environment and on the command
//! line, and which of them are secrets or lists.

/// Prefix of the environment variable of every key: `EREMETIC_PORT` sets `port`.
pub const ENV_PREFIX: &str = "EREMETIC_";

/// Eremetic's unprefixed environment names that are NOT read, because the login shell or a
/// container platform sets them for reasons of its own (sharp edge E-25: the shell's `USER`
/// silently changed Eremetic's framework user). `EREMETIC_USER` and `EREMETIC_NAME` work.
pub const UNPREFIXED_ENV_EXCLUDED: &[&str] = &["USER", "NAME"];

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeySpec {
    /// The YAML name (lowercase, underscores).
    pub name: &'static str,
    /// Eremetic has this key, so its unprefixed environment name is read for compatibility
    /// (unless listed in [`UNPREFIXED_ENV_EXCLUDED`]).
    pub eremetic: bool,
    /// The value is a secret: never printed.
    pub secret: bool,
    /// The value is a list (a YAML sequence, or comma-separated in the environment and flags).
    pub list: bool,
}

const fn key(name: &'static str) -> KeySpec {
    KeySpec {
        name,
        eremetic: false,
        secret: false,
        list: false,
    }
}

const fn eremetic(name: &'static str) -> KeySpec {
    KeySpec {
        name,
        eremetic: true,
        secret: false,
        list: false,
    }
}

/// Every key, in the order of the example file and of [`super::Config::render_masked`].
pub(crate) const KEYS: &[KeySpec] = &[
    // HTTP
    eremetic("address"),
    eremetic("port"),
    eremetic("url_prefix"),
    KeySpec {
        secret: true,
        ..eremetic("http_credentials")
    },
    KeySpec {
        secret: true,
        list: true,
        ..key("bearer_tokens")
    },
    key("tls_cert"),
    key("tls_key"),
    KeySpec {
        list: true,
        ..key("allowed_hosts")
    },
    // logging
    eremetic("loglevel"),
    eremetic("logformat"),
    // storage
    key("data_dir"),
    eremetic("database_driver"),
    eremetic("database"),
    key("retention"),
    key("task_output_limit"),
    key("data_dir_min_free"),
    key("fetch_cache_dir"),
    key("fetch_cache_size"),
    // queue and backend
    eremetic("queue_size"),
    eremetic("master"),
    key("master_scheme"),
    key("master_ca_file"),
    key("docker_host"),
    key("cpus"),
    key("mem"),
    key("port_range"),
    key("user_network"),
    key("default_retries"),
    key("kill_grace_period"),
    key("unreachable_timeout"),
    key("launch_mode"),
    key("executor_command"),
    key("executor_uri"),
    key("executor_cpus"),
    key("executor_mem"),
    key("instance_id"),
    KeySpec {
        list: true,
        ..key("allowed_host_paths")
    },
    key("allow_privileged"),
    key("allow_volumes_from"),
    // callbacks
    KeySpec {
        secret: true,
        ..key("callback_secret")
    },
    key("callback_timeout"),
    key("callback_retry_period"),
    key("callback_states"),
    // Eremetic's Mesos framework settings
    eremetic("name"),
    eremetic("user"),
    eremetic("checkpoint"),
    eremetic("failover_timeout"),
    eremetic("framework_id"),
    eremetic("credential_file"),
    eremetic("messenger_address"),
    eremetic("messenger_port"),
];

/// The key named `name` (exact YAML spelling).
pub(crate) fn find(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|spec| spec.name == name)
}

impl KeySpec {
    /// `EREMETIC_<KEY>`.
    pub(crate) fn prefixed_env(&self) -> String {
        format!("{ENV_PREFIX}{}", self.name.to_ascii_uppercase())
    }

    /// Eremetic's unprefixed environment name, when it is read for this key.
    pub(crate) fn unprefixed_env(&self) -> Option<String> {
        let upper = self.name.to_ascii_uppercase();
        (self.eremetic && !UNPREFIXED_ENV_EXCLUDED.contains(&upper.as_str())).then_some(upper)
    }

    /// `--kebab-case`.
    pub(crate) fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }
}

/// The known key closest to `unknown`, when one is close enough to be a likely typo.
pub(crate) fn suggest(unknown: &str) -> Option<&'static str> {
    let lowered = unknown.to_ascii_lowercase().replace('-', "_");
    KEYS.iter()
        .map(|spec| (strsim::levenshtein(&lowered, spec.name), spec.name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// All key names, comma-separated, for error messages.
pub(crate) fn all_names() -> String {
    KEYS.iter()
        .map(|spec| spec.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_name_have_no_unprefixed_env_name() {
        assert_eq!(find("user").and_then(KeySpec::unprefixed_env), None);
        assert_eq!(find("name").and_then(KeySpec::unprefixed_env), None);
        assert_eq!(
            find("user").map(KeySpec::prefixed_env).as_deref(),
            Some("EREMETIC_USER")
        );
        assert_eq!(
            find("port").and_then(KeySpec::unprefixed_env).as_deref(),
            Some("PORT")
        );
    }

    #[test]
    fn keys_new_in_this_server_have_only_the_prefixed_env_name() {
        for name in ["docker_host", "mem", "cpus", "data_dir", "retention"] {
            assert_eq!(find(name).and_then(KeySpec::unprefixed_env), None, "{name}");
        }
    }

    #[test]
    fn flags_are_kebab_case() {
        assert_eq!(
            find("queue_size").map(KeySpec::flag).as_deref(),
            Some("--queue-size")
        );
    }

    #[test]
    fn suggest_finds_typos_and_ignores_unrelated_words() {
        assert_eq!(suggest("prot"), Some("port"));
        assert_eq!(suggest("queue-size"), Some("queue_size"));
        assert_eq!(suggest("http_credential"), Some("http_credentials"));
        assert_eq!(suggest("zookeeper_connection_string"), None);
    }

    #[test]
    fn key_names_are_unique() {
        for (index, spec) in KEYS.iter().enumerate() {
            assert!(
                KEYS[index + 1..]
                    .iter()
                    .all(|other| other.name != spec.name),
                "{}",
                spec.name
            );
        }
    }
}
