//! Unit tests of parsing and rendering (pure, from strings).

use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_config(text, "/etc/deimos.cfg")
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn empty_text_gives_defaults() {
    let config = parse("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.index.account_libmesos, "libmesos");
    assert!(config.uris.unpack);
    assert_eq!(config.state.root, PathBuf::from("/tmp/deimos"));
    assert_eq!(config.containers.stop_grace_period, Duration::from_secs(10));
    assert_eq!(config.containers.effective_workdir(), "/mnt/mesos/sandbox");
    assert!(config.observer.enabled);
}

#[test]
fn keys_merge_over_defaults_one_by_one() {
    let config = parse("[docker.index]\naccount: acme\n").unwrap();
    assert_eq!(config.index.account.as_deref(), Some("acme"));
    assert_eq!(config.index.account_libmesos, "libmesos");
}

#[test]
fn colon_and_equals_both_separate_keys_from_values() {
    let config = parse("[state]\nroot = /var/lib/deimos\n[uris]\nunpack: false\n").unwrap();
    assert_eq!(config.state.root, PathBuf::from("/var/lib/deimos"));
    assert!(!config.uris.unpack);
}

#[test]
fn keys_and_sections_are_case_insensitive() {
    let config = parse("[Containers.Image]\nDEFAULT: docker:///ubuntu\nIgnore: YES\n").unwrap();
    assert_eq!(config.image.default.as_deref(), Some("docker:///ubuntu"));
    assert!(config.image.ignore);
}

#[test]
fn deimos_example_unpack_capital_true_is_accepted() {
    assert!(parse("[uris]\nunpack: True\n").unwrap().uris.unpack);
}

#[test]
fn arrays_keep_json_quotes_and_backslashes_literal() {
    let text = "[containers.options]\nappend: [\"-e\", \"A=\\\"x\\\"\", \"C:\\\\tmp\"]\n";
    let config = parse(text).unwrap();
    assert_eq!(config.options.append, ["-e", "A=\"x\"", "C:\\tmp"]);
}

#[test]
fn plain_array_value_is_one_element_and_continuation_lines_join() {
    let text = "[hooks]\nonlaunch: /usr/bin/notify\nondestroy: [\"/bin/echo\",\n    \"done\"]\n";
    let config = parse(text).unwrap();
    assert_eq!(config.hooks.onlaunch, ["/usr/bin/notify"]);
    assert_eq!(config.hooks.ondestroy, ["/bin/echo", "done"]);
}

#[test]
fn repeated_key_takes_last_value() {
    let config = parse("[log]\nconsole: INFO\nconsole: error\n").unwrap();
    assert_eq!(config.log.console, Some(LogLevel::Error));
}

#[test]
fn unknown_section_is_an_error_naming_file_and_section() {
    let message = error("[dokcer]\nhost: unix:///x\n");
    assert!(message.contains("/etc/deimos.cfg"), "{message}");
    assert!(message.contains("[dokcer]"), "{message}");
    assert!(message.contains("[docker.index]"), "{message}");
}

#[test]
fn unknown_key_is_an_error_listing_supported_keys() {
    let message = error("[uris]\nunpak: true\n");
    assert!(message.contains("[uris]"), "{message}");
    assert!(message.contains("\"unpak\""), "{message}");
    assert!(message.contains("supported keys: unpack"), "{message}");
}

#[test]
fn docker_cli_options_are_rejected_with_an_explanation() {
    let message = error("[docker]\ntls: true\n");
    assert!(message.contains("Engine API"), "{message}");
    assert!(message.contains("supported keys: host"), "{message}");
}

#[test]
fn docker_host_accepts_plain_value_or_one_element_list() {
    let plain = parse("[docker]\nhost: tcp://127.0.0.1:2375\n").unwrap();
    assert_eq!(
        plain.docker.hosts,
        vec![DockerHost::Tcp("127.0.0.1:2375".to_owned())]
    );
    let list = parse("[docker]\nhost: [\"unix:///run/docker.sock\"]\n").unwrap();
    assert_eq!(
        list.docker.hosts,
        vec![DockerHost::Unix(PathBuf::from("/run/docker.sock"))]
    );
}

#[test]
fn docker_host_keeps_several_endpoints_in_order() {
    let config = parse("[docker]\nhost: [\"unix:///a.sock\", \"tcp://b:1\"]\n").unwrap();
    assert_eq!(
        config.docker.hosts,
        vec![
            DockerHost::Unix(PathBuf::from("/a.sock")),
            DockerHost::Tcp("b:1".to_owned())
        ]
    );
    let message = error("[docker]\nhost: [\"unix:///a.sock\", \"ftp://b\"]\n");
    assert!(message.contains("[docker] host"), "{message}");
    assert!(message.contains("ftp://b"), "{message}");
}

#[test]
fn policy_and_fetch_limits_are_read_and_default_to_refusing() {
    let defaults = Config::default();
    assert!(!defaults.policy.allow_privileged && !defaults.policy.allow_volumes_from);
    assert!(defaults.policy.allowed_host_paths.is_empty());
    assert!(defaults.uris.allowed_local_paths.is_empty());
    assert_eq!(defaults.uris.max_size, 1 << 30);
    let config = parse(
        "[policy]\nallow_privileged: yes\nallowed_host_paths: [\"/srv/data\"]\n\
         [uris]\nallowed_local_paths: /srv/artifacts\nmax_size: 10MiB\nmax_extracted_size: 2GiB\n",
    )
    .unwrap();
    assert!(config.policy.allow_privileged);
    assert_eq!(
        config.policy.allowed_host_paths,
        vec![PathBuf::from("/srv/data")]
    );
    assert_eq!(
        config.uris.allowed_local_paths,
        vec![PathBuf::from("/srv/artifacts")]
    );
    assert_eq!(config.uris.max_size, 10 << 20);
    assert_eq!(config.uris.max_extracted_size, 2 << 30);
    assert_eq!(parse(&config.render()).unwrap(), config);
    let message = error("[policy]\nallowed_host_paths: [\"data\"]\n");
    assert!(message.contains("[policy] allowed_host_paths"), "{message}");
}

#[test]
fn malformed_value_names_file_line_section_key_and_reason() {
    let message = error("[containers.options]\nignore: perhaps\n");
    assert_eq!(
        message,
        "/etc/deimos.cfg:2: [containers.options] ignore: \"perhaps\" is not a boolean \
         (true/false, yes/no, on/off, 1/0)"
    );
}

#[test]
fn unknown_sections_keys_and_the_two_key_rule_name_their_line() {
    let message = error("[state]\nroot: /x\n\n[dokcer]\n");
    assert!(
        message.starts_with("/etc/deimos.cfg:4: unknown section [dokcer]"),
        "{message}"
    );
    let message = error("[uris]\n; comment\nunpak: true\n");
    assert!(
        message.starts_with("/etc/deimos.cfg:3: [uris] has no key"),
        "{message}"
    );
    let message = error("[containers.image]\n\nignore: true\n");
    assert!(
        message.starts_with("/etc/deimos.cfg:3: [containers.image] ignore"),
        "{message}"
    );
}

#[test]
fn array_that_is_not_a_list_of_strings_is_rejected() {
    let message = error("[hooks]\nonlaunch: [\"/bin/x\", 3]\n");
    assert!(message.contains("[hooks] onlaunch"), "{message}");
}

#[test]
fn state_root_with_colon_or_relative_is_rejected() {
    assert!(error("[state]\nroot: /tmp/a:b\n").contains("must not contain ':'"));
    assert!(error("[state]\nroot: tmp/deimos\n").contains("absolute"));
}

#[test]
fn ignoring_the_task_image_requires_a_default_image() {
    let message = error("[containers.image]\nignore: true\n");
    assert!(message.contains("[containers.image] ignore"), "{message}");
    assert!(message.contains("no default image"), "{message}");
}

#[test]
fn log_levels_parse_and_unknown_level_is_rejected() {
    let config = parse("[log]\nconsole: off\nsyslog: warning\n").unwrap();
    assert_eq!(config.log.console, Some(LogLevel::Off));
    assert_eq!(config.log.syslog, Some(LogLevel::Warning));
    assert!(error("[log]\nconsole: loud\n").contains("[log] console"));
}

#[test]
fn log_defaults_depend_on_stderr_being_a_terminal() {
    let unset = LogConfig::default();
    assert_eq!(unset.resolve(true), (LogLevel::Debug, LogLevel::Off));
    assert_eq!(unset.resolve(false), (LogLevel::Off, LogLevel::Info));
    let set = LogConfig {
        console: Some(LogLevel::Error),
        syslog: None,
    };
    assert_eq!(set.resolve(false), (LogLevel::Error, LogLevel::Info));
}

#[test]
fn containers_section_parses_durations_and_paths() {
    let text = "[containers]\nstop_grace_period: 30\ncfs_quota: on\nsandbox_mount: /sandbox\n";
    let config = parse(text).unwrap();
    assert_eq!(config.containers.stop_grace_period, Duration::from_secs(30));
    assert!(config.containers.cfs_quota);
    assert_eq!(config.containers.effective_workdir(), "/sandbox");
    let config = parse("[containers]\nstop_grace_period: 2500ms\nworkdir: /app\n").unwrap();
    assert_eq!(
        config.containers.stop_grace_period,
        Duration::from_millis(2500)
    );
    assert_eq!(config.containers.effective_workdir(), "/app");
    assert!(error("[containers]\nsandbox_mount: sandbox\n").contains("absolute"));
}

#[test]
fn observer_command_is_validated_and_can_be_disabled() {
    let config =
        parse("[observer]\nenabled: no\ncommand: [\"/bin/watch\", \"{container_id}\"]\n").unwrap();
    assert!(!config.observer.enabled);
    assert_eq!(
        config.observer.command.unwrap().argv(),
        ["/bin/watch", "{container_id}"]
    );
    assert!(error("[observer]\ncommand: [\"{pid}\"]\n").contains("unknown placeholder {pid}"));
    assert!(error("[observer]\ncommand: []\n").contains("enabled: false"));
}

#[test]
fn key_before_any_section_is_rejected() {
    assert!(error("root: /x\n[state]\n").contains("before any [section]"));
}

#[test]
fn ini_syntax_error_reports_file_and_position() {
    let message = error("[docker\n");
    assert!(
        message.starts_with("/etc/deimos.cfg: INI syntax error at line"),
        "{message}"
    );
}

#[test]
fn single_value_keys_reject_multi_line_values() {
    assert!(error("[docker.index]\naccount: a\n  b\n").contains("single line"));
}

#[test]
fn render_of_defaults_parses_back_to_defaults() {
    let rendered = Config::default().render();
    assert!(rendered.contains("; host: not set"), "{rendered}");
    assert!(
        rendered.contains("; command: not set (by the agent's version: "),
        "{rendered}"
    );
    assert_eq!(parse(&rendered).unwrap(), Config::default());
}

#[test]
fn render_of_every_key_set_parses_back_identically() {
    let text = r#"
[docker]
host: tcp://docker.local:2375
[docker.index]
index: registry.local:5000
account_libmesos: mesos
account: team
dockercfg: /etc/deimos/dockercfg
[containers.image]
default: docker:///busybox
ignore: true
[containers.options]
default: ["-e", "X=1"]
append: ["--label", "a=\"b\""]
ignore: yes
[containers]
stop_grace_period: 1500ms
cfs_quota: true
sandbox_mount: /sandbox
workdir: /work
[hooks]
onlaunch: ["/bin/logger", "launch"]
ondestroy: /bin/true
[uris]
unpack: false
cache_dir: /srv/fetch-cache
cache_size: 3GiB
[log]
console: CRITICAL
syslog: NOTSET
[state]
root: /var/lib/deimos
[observer]
enabled: false
command: ["{deimos}", "observe", "{container_id}"]
"#;
    let config = parse(text).unwrap();
    assert_eq!(parse(&config.render()).unwrap(), config);
    assert!(config.render().contains("stop_grace_period: 1500ms"));
    assert!(config
        .render()
        .contains("cache_dir: /srv/fetch-cache\ncache_size: 3GiB"));
    let no_cache = parse("[uris]\ncache_dir:\n").unwrap();
    assert_eq!(no_cache.uris.cache_dir, None);
    assert_eq!(parse(&no_cache.render()).unwrap(), no_cache);
}
