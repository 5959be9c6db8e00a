//! The effective configuration as YAML, secrets masked (`--check-config`). Every key is
//! printed; an unset key is `~`. With secrets unset, the text loads back to the same config.

use std::fmt::Display;
use std::path::Path;

use super::values::{format_duration, format_size};
use super::Config;
use crate::task::MASK;

/// A YAML double-quoted string (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "~".to_owned())
}

fn path(path: &Path) -> String {
    quoted(&path.to_string_lossy())
}

fn optional<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "~".to_owned(), show)
}

fn plain(value: impl Display) -> String {
    value.to_string()
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

impl Config {
    /// The value of every key as YAML text, in the order of [`super::keys::KEYS`].
    pub(crate) fn rendered_values(&self) -> Vec<(&'static str, String)> {
        let duration = |d| quoted(&format_duration(d));
        let size = |bytes| quoted(&format_size(bytes));
        let mesos = &self.mesos;
        vec![
            ("address", quoted(&self.address.to_string())),
            ("port", plain(self.port)),
            ("url_prefix", quoted(&self.url_prefix)),
            (
                "http_credentials",
                optional(self.http_credentials.as_ref(), |_| quoted(MASK)),
            ),
            (
                "bearer_tokens",
                list(self.bearer_tokens.iter().map(|_| quoted(MASK))),
            ),
            (
                "tls_cert",
                optional(self.tls.as_ref(), |tls| path(&tls.cert)),
            ),
            ("tls_key", optional(self.tls.as_ref(), |tls| path(&tls.key))),
            (
                "allowed_hosts",
                list(self.allowed_hosts.iter().map(|host| quoted(host))),
            ),
            ("loglevel", plain(self.loglevel)),
            ("logformat", plain(self.logformat)),
            ("data_dir", path(&self.data_dir)),
            ("database_driver", plain(self.database_driver)),
            ("database", path(&self.database)),
            ("retention", optional(self.retention, duration)),
            (
                "task_output_limit",
                self.task_output_limit
                    .map_or_else(|| "unlimited".to_owned(), |limit| size(limit.get())),
            ),
            ("data_dir_min_free", size(self.data_dir_min_free)),
            ("fetch_cache_dir", path(&self.fetch_cache_dir)),
            ("fetch_cache_size", size(self.fetch_cache_size)),
            ("queue_size", plain(self.queue_size)),
            (
                "master",
                match &self.master {
                    Some(crate::mesos::MasterUrl::Http(http)) => quoted(&http.base_url()),
                    Some(crate::mesos::MasterUrl::ZooKeeper(zk)) => quoted(&zk.masked_url()),
                    None => "~".to_owned(),
                },
            ),
            (
                "master_scheme",
                optional(mesos.master_scheme, |scheme| plain(scheme.as_str())),
            ),
            (
                "master_ca_file",
                optional(mesos.master_ca_file.as_ref(), |ca| path(&ca.path)),
            ),
            ("docker_host", optional(self.docker_host.as_deref(), quoted)),
            ("cpus", plain(self.cpus)),
            ("mem", plain(self.mem)),
            ("port_range", quoted(&self.port_range.to_string())),
            (
                "user_network",
                optional(self.user_network.as_deref(), quoted),
            ),
            ("default_retries", plain(self.default_retries)),
            ("kill_grace_period", duration(self.kill_grace_period)),
            ("unreachable_timeout", duration(self.unreachable_timeout)),
            ("launch_mode", plain(self.launch_mode)),
            ("executor_command", quoted(&self.executor_command)),
            (
                "executor_uri",
                optional(self.executor_uri.as_deref(), quoted),
            ),
            ("executor_cpus", plain(self.executor_cpus)),
            ("executor_mem", plain(self.executor_mem)),
            ("instance_id", quoted(&self.instance_id)),
            (
                "allowed_host_paths",
                list(self.allowed_host_paths.iter().map(|p| path(p))),
            ),
            ("allow_privileged", plain(self.allow_privileged)),
            ("allow_volumes_from", plain(self.allow_volumes_from)),
            (
                "callback_secret",
                optional(self.callback_secret.as_ref(), |_| quoted(MASK)),
            ),
            ("callback_timeout", duration(self.callback_timeout)),
            (
                "callback_retry_period",
                duration(self.callback_retry_period),
            ),
            ("callback_states", plain(self.callback_states)),
            ("name", optional(mesos.name.as_deref(), quoted)),
            ("user", optional(mesos.user.as_deref(), quoted)),
            ("checkpoint", optional(mesos.checkpoint, plain)),
            (
                "failover_timeout",
                optional(mesos.failover_timeout, duration),
            ),
            (
                "framework_id",
                optional(mesos.framework_id.as_deref(), quoted),
            ),
            (
                "credential_file",
                optional(mesos.credential_file.as_deref(), path),
            ),
            (
                "messenger_address",
                optional(mesos.messenger_address.as_deref(), quoted),
            ),
            ("messenger_port", optional(mesos.messenger_port, plain)),
        ]
    }

    /// Every key as a `key: value` YAML line, secrets replaced by `*******`.
    pub fn render_masked(&self) -> String {
        let mut text = match &self.config_file {
            Some(file) => format!("# read from {}\n", file.display()),
            None => "# no configuration file read\n".to_owned(),
        };
        for (key, value) in self.rendered_values() {
            text.push_str(&format!("{key}: {value}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::KEYS;
    use super::super::resolve::tests::sample_config;

    #[test]
    fn every_key_is_rendered_in_table_order() {
        let rendered: Vec<_> = sample_config()
            .rendered_values()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let table: Vec<_> = KEYS.iter().map(|spec| spec.name).collect();
        assert_eq!(rendered, table);
    }

    #[test]
    fn secrets_are_masked() {
        let text = sample_config().render_masked();
        for secret in ["hunter2", "token-one", "token-two", "sign-me"] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        assert!(text.contains("http_credentials: \"*******\""), "{text}");
        assert!(text.contains("callback_secret: \"*******\""), "{text}");
    }
}
