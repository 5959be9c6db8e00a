//! Command-line flags of the `eremetic` binary, and `--check-config`.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;

use super::load;

/// Exit code of `--check-config` (and of a start-up) with an invalid configuration.
pub const CONFIG_ERROR_EXIT_CODE: u8 = 2;

/// `eremetic [--config FILE] [--check-config] [--KEY VALUE]...`
///
/// Flags override `EREMETIC_<KEY>` environment variables, which override Eremetic's unprefixed
/// names, which override the YAML file. Values are written as in the file; lists are
/// comma-separated. Secrets (`http_credentials`, `bearer_tokens`, `callback_secret`) and
/// Eremetic's Mesos framework keys have no flag: use the file or the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser)]
#[command(
    name = "eremetic",
    version,
    about = "Eremetic-compatible scheduler for one-shot Docker tasks"
)]
pub struct Cli {
    /// YAML configuration file (must exist); default /etc/eremetic/eremetic.yml if present.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print it with secrets masked and exit (0 valid, 2 invalid).
    #[arg(long)]
    pub check_config: bool,
    /// IP address to listen on.
    #[arg(long, value_name = "IP")]
    pub address: Option<String>,
    /// TCP port to listen on.
    #[arg(long)]
    pub port: Option<String>,
    /// Path prefix of generated URLs behind a prefix-stripping proxy (`/x`).
    #[arg(long, value_name = "PATH")]
    pub url_prefix: Option<String>,
    /// PEM certificate chain for HTTPS.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// PEM private key for HTTPS.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<String>,
    /// Comma-separated host names requests may be addressed to.
    #[arg(long, value_name = "NAMES")]
    pub allowed_hosts: Option<String>,
    /// trace, debug, info, warn or error.
    #[arg(long, value_name = "LEVEL")]
    pub loglevel: Option<String>,
    /// text or json.
    #[arg(long, value_name = "FORMAT")]
    pub logformat: Option<String>,
    /// Directory of the database and task sandboxes.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// SQLite database file.
    #[arg(long, value_name = "FILE")]
    pub database: Option<String>,
    /// Delete terminal tasks after this duration (e.g. 7d).
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<String>,
    /// Capacity of the task queue.
    #[arg(long, value_name = "N")]
    pub queue_size: Option<String>,
    /// Mesos master (`http://host:5050`); unset: the local Docker engine.
    #[arg(long)]
    pub master: Option<String>,
    /// Scheme of masters whose address names none (ZooKeeper leaders): http or https.
    #[arg(long, value_name = "SCHEME")]
    pub master_scheme: Option<String>,
    /// PEM file of the CA certificates trusted for https masters.
    #[arg(long, value_name = "FILE")]
    pub master_ca_file: Option<String>,
    /// Docker Engine endpoint (unix:///path or tcp://host:port).
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,
    /// CPUs available to tasks.
    #[arg(long)]
    pub cpus: Option<String>,
    /// Memory available to tasks, in MiB.
    #[arg(long, value_name = "MIB")]
    pub mem: Option<String>,
    /// Host ports for tasks, LOW-HIGH.
    #[arg(long, value_name = "LOW-HIGH")]
    pub port_range: Option<String>,
    /// Docker network for tasks with network USER.
    #[arg(long, value_name = "NETWORK")]
    pub user_network: Option<String>,
    /// Relaunch attempts of a lost task unless the request says otherwise.
    #[arg(long, value_name = "N")]
    pub default_retries: Option<String>,
    /// Time between SIGTERM and SIGKILL when killing a task.
    #[arg(long, value_name = "DURATION")]
    pub kill_grace_period: Option<String>,
    /// How long a task on an unreachable Mesos agent is waited for before it is relaunched.
    #[arg(long, value_name = "DURATION")]
    pub unreachable_timeout: Option<String>,
    /// How tasks are launched on Mesos agents: docker, deimos-executor or mesos.
    #[arg(long, value_name = "MODE")]
    pub launch_mode: Option<String>,
    /// Owner label of this instance's containers.
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,
    /// Comma-separated absolute host directories tasks may bind-mount.
    #[arg(long, value_name = "DIRS")]
    pub allowed_host_paths: Option<String>,
    /// Allow privileged tasks (`--allow-privileged` alone means true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_privileged: Option<String>,
    /// Allow tasks to use `volumes_from` (`--allow-volumes-from` alone means true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_volumes_from: Option<String>,
    /// Timeout of one callback request.
    #[arg(long, value_name = "DURATION")]
    pub callback_timeout: Option<String>,
    /// How long failing callbacks are retried.
    #[arg(long, value_name = "DURATION")]
    pub callback_retry_period: Option<String>,
    /// Status changes POSTed to callbacks: terminal or all.
    #[arg(long, value_name = "STATES")]
    pub callback_states: Option<String>,
}

impl Cli {
    /// `(key, value)` of every flag, for the flag layer.
    pub(crate) fn flag_values(&self) -> Vec<(&'static str, Option<&str>)> {
        [
            ("address", &self.address),
            ("port", &self.port),
            ("url_prefix", &self.url_prefix),
            ("tls_cert", &self.tls_cert),
            ("tls_key", &self.tls_key),
            ("allowed_hosts", &self.allowed_hosts),
            ("loglevel", &self.loglevel),
            ("logformat", &self.logformat),
            ("data_dir", &self.data_dir),
            ("database", &self.database),
            ("retention", &self.retention),
            ("queue_size", &self.queue_size),
            ("master", &self.master),
            ("master_scheme", &self.master_scheme),
            ("master_ca_file", &self.master_ca_file),
            ("docker_host", &self.docker_host),
            ("cpus", &self.cpus),
            ("mem", &self.mem),
            ("port_range", &self.port_range),
            ("user_network", &self.user_network),
            ("default_retries", &self.default_retries),
            ("kill_grace_period", &self.kill_grace_period),
            ("unreachable_timeout", &self.unreachable_timeout),
            ("launch_mode", &self.launch_mode),
            ("instance_id", &self.instance_id),
            ("allowed_host_paths", &self.allowed_host_paths),
            ("allow_privileged", &self.allow_privileged),
            ("allow_volumes_from", &self.allow_volumes_from),
            ("callback_timeout", &self.callback_timeout),
            ("callback_retry_period", &self.callback_retry_period),
            ("callback_states", &self.callback_states),
        ]
        .into_iter()
        .map(|(key, value)| (key, value.as_deref()))
        .collect()
    }
}

/// `--check-config`: loads the configuration; prints it with secrets masked to `out` and
/// returns 0, or prints the error to `err` and returns [`CONFIG_ERROR_EXIT_CODE`].
pub fn check_config(
    cli: &Cli,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match load(cli, env) {
        Ok(config) => {
            let text = config.render_masked();
            let mut warnings = String::new();
            for warning in config.startup_warnings() {
                warnings.push_str(&format!("# warning: {warning}\n"));
            }
            // Failing to write the report to a closed pipe leaves nothing else to report to.
            let _ = write!(out, "# configuration is valid\n{warnings}{text}");
            0
        }
        Err(error) => {
            let _ = writeln!(err, "eremetic: invalid configuration: {error}");
            CONFIG_ERROR_EXIT_CODE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_in_kebab_case() {
        let cli = Cli::try_parse_from([
            "eremetic",
            "--config",
            "/tmp/x.yml",
            "--port",
            "9000",
            "--queue-size",
            "7",
            "--allow-privileged",
            "--check-config",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("/tmp/x.yml")));
        assert_eq!(cli.port.as_deref(), Some("9000"));
        assert_eq!(cli.queue_size.as_deref(), Some("7"));
        assert_eq!(cli.allow_privileged.as_deref(), Some("true"));
        assert!(cli.check_config);
    }

    #[test]
    fn version_flag_prints_the_version() {
        let error = Cli::try_parse_from(["eremetic", "--version"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(error.to_string().contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn secrets_have_no_flag() {
        for flag in ["--http-credentials", "--bearer-tokens", "--callback-secret"] {
            assert!(
                Cli::try_parse_from(["eremetic", flag, "x"]).is_err(),
                "{flag}"
            );
        }
    }

    #[test]
    fn every_flag_maps_to_a_known_key() {
        for (key, _) in Cli::default().flag_values() {
            assert!(super::super::keys::find(key).is_some(), "{key}");
        }
    }

    #[test]
    fn check_config_reports_an_error_with_exit_code_2() {
        let cli = Cli {
            config: Some(PathBuf::from("/nonexistent/eremetic.yml")),
            ..Cli::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(check_config(&cli, &|_| None, &mut out, &mut err), 2);
        assert!(out.is_empty());
        let message = String::from_utf8(err).unwrap();
        assert!(message.contains("/nonexistent/eremetic.yml"), "{message}");
    }
}
