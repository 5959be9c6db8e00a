use std::collections::HashMap;

use super::super::layers::{self, Setting};
use super::*;

const HOST: HostFacts = HostFacts {
    uid: 1000,
    cpus: Some(4),
    mem_mib: Some(8192),
};

fn no_env(_: &str) -> Option<String> {
    None
}

fn home_env(name: &str) -> Option<String> {
    (name == "HOME").then(|| "/home/op".to_owned())
}

fn settings(pairs: &[(&'static str, &str)]) -> Settings {
    pairs
        .iter()
        .map(|(key, value)| {
            (
                *key,
                Setting {
                    value: RawValue::Scalar((*value).to_owned()),
                    source: Source::Env(format!("EREMETIC_{}", key.to_uppercase())),
                },
            )
        })
        .collect()
}

fn resolved(pairs: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
    resolve(&settings(pairs), &HOST, &home_env)
}

/// A configuration with every secret set, for the render tests.
pub(crate) fn sample_config() -> Config {
    let text = "http_credentials: admin:hunter2\nbearer_tokens: [token-one, token-two]\n\
                callback_secret: sign-me\ndata_dir: /srv/eremetic\nname: Eremetic\n";
    let settings = layers::parse_yaml(text, Path::new("/etc/eremetic/eremetic.yml"))
        .expect("sample YAML parses");
    resolve(&settings, &HOST, &no_env).expect("sample config resolves")
}

#[test]
fn defaults_without_any_setting() {
    let config = resolved(&[]).unwrap();
    assert_eq!(config.address, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(config.port, 8080);
    assert_eq!(config.url_prefix, "");
    assert_eq!(config.loglevel, v::LogLevel::Info);
    assert_eq!(config.logformat, v::LogFormat::Text);
    assert_eq!(
        config.data_dir,
        PathBuf::from("/home/op/.local/share/eremetic")
    );
    assert_eq!(
        config.database,
        PathBuf::from("/home/op/.local/share/eremetic/eremetic.db")
    );
    assert_eq!(
        config.instance_id,
        "eremetic:/home/op/.local/share/eremetic"
    );
    assert_eq!(config.queue_size, 100);
    assert_eq!((config.cpus, config.mem), (4.0, 8192));
    assert_eq!(config.port_range, DEFAULT_PORT_RANGE);
    assert_eq!(config.default_retries, 5);
    assert_eq!(config.kill_grace_period, Duration::from_secs(10));
    assert_eq!(config.callback_timeout, Duration::from_secs(10));
    assert_eq!(config.callback_retry_period, Duration::from_secs(3600));
    assert_eq!(config.retention, None);
    assert_eq!(config.task_output_limit.map(|l| l.get()), Some(1 << 30));
    assert_eq!(config.data_dir_min_free, 1 << 30);
    assert_eq!(
        config.fetch_cache_dir,
        PathBuf::from("/home/op/.local/share/eremetic/fetch-cache")
    );
    assert_eq!(config.fetch_cache_size, 2 << 30);
    assert!(config.allowed_host_paths.is_empty());
    assert!(!config.allow_privileged);
    assert_eq!(config.mesos, MesosSettings::default());
}

#[test]
fn address_defaults_to_all_interfaces_when_auth_is_configured() {
    let with_basic = resolved(&[("http_credentials", "a:b")]).unwrap();
    assert_eq!(with_basic.address, IpAddr::from([0, 0, 0, 0]));
    let with_token = resolved(&[("bearer_tokens", "t1,t2")]).unwrap();
    assert_eq!(with_token.address, IpAddr::from([0, 0, 0, 0]));
    assert_eq!(with_token.bearer_tokens.len(), 2);
    let explicit = resolved(&[("http_credentials", "a:b"), ("address", "127.0.0.1")]).unwrap();
    assert_eq!(explicit.address, IpAddr::from([127, 0, 0, 1]));
}

#[test]
fn data_dir_default_prefers_systemd_then_root_then_xdg_then_home() {
    let env: HashMap<&str, &str> = HashMap::from([
        ("STATE_DIRECTORY", "/var/lib/eremetic-unit:/other"),
        ("XDG_DATA_HOME", "/xdg"),
        ("HOME", "/home/op"),
    ]);
    let lookup = |drop: &[&str]| {
        let env = env.clone();
        let drop: Vec<String> = drop.iter().map(|s| s.to_string()).collect();
        move |name: &str| {
            (!drop.iter().any(|d| d == name))
                .then(|| env.get(name).map(|v| v.to_string()))
                .flatten()
        }
    };
    let dir = |uid, drop: &[&str]| default_data_dir(uid, &lookup(drop)).unwrap();
    assert_eq!(dir(1000, &[]), PathBuf::from("/var/lib/eremetic-unit"));
    assert_eq!(
        dir(0, &["STATE_DIRECTORY"]),
        PathBuf::from("/var/lib/eremetic")
    );
    assert_eq!(
        dir(1000, &["STATE_DIRECTORY"]),
        PathBuf::from("/xdg/eremetic")
    );
    assert_eq!(
        dir(1000, &["STATE_DIRECTORY", "XDG_DATA_HOME"]),
        PathBuf::from("/home/op/.local/share/eremetic")
    );
    let error = default_data_dir(1000, &no_env).unwrap_err().to_string();
    assert!(error.contains("data_dir"), "{error}");
}

#[test]
fn relative_database_is_inside_data_dir_and_absolute_is_kept() {
    let relative = resolved(&[("data_dir", "/d"), ("database", "db/tasks.db")]).unwrap();
    assert_eq!(relative.database, PathBuf::from("/d/db/tasks.db"));
    let absolute = resolved(&[("data_dir", "/d"), ("database", "/x/t.db")]).unwrap();
    assert_eq!(absolute.database, PathBuf::from("/x/t.db"));
}

#[test]
fn zookeeper_database_and_eremetic_drivers_are_refused() {
    let error = resolved(&[("database", "zk://zk1:2181/eremetic")])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("database from environment variable EREMETIC_DATABASE"),
        "{error}"
    );
    let error = resolved(&[("database_driver", "boltdb")])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("database_driver") && error.contains("SQLite"),
        "{error}"
    );
}

#[test]
fn a_zookeeper_master_is_accepted_and_a_malformed_one_names_the_key() {
    let config = resolved(&[("master", "zk://eremetic:s3cret@zk1:2181,zk2/mesos")]).unwrap();
    match &config.master {
        Some(MasterUrl::ZooKeeper(zk)) => {
            assert_eq!(zk.connect_string(), "zk1:2181,zk2:2181");
            assert_eq!(zk.path, "/mesos");
            assert_eq!(
                zk.masked_url(),
                format!(
                    "zk://eremetic:{}@zk1:2181,zk2:2181/mesos",
                    crate::task::MASK
                )
            );
        }
        other => panic!("{other:?}"),
    }
    let error = resolved(&[("master", "zk://zk1:2181")])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("master from environment variable EREMETIC_MASTER")
            && error.contains("needs a path"),
        "{error}"
    );
}

#[test]
fn an_http_master_selects_the_mesos_backend_and_eremetic_s_host_port_form_is_accepted() {
    for (value, base) in [
        ("http://master.example:5050", "http://master.example:5050"),
        ("master.example:5050", "http://master.example:5050"),
    ] {
        let config = resolved(&[("master", value)]).unwrap();
        match config.master {
            Some(crate::mesos::MasterUrl::Http(http)) => assert_eq!(http.base_url(), base),
            other => panic!("{value}: {other:?}"),
        }
    }
    let error = resolved(&[("master", "ftp://x")]).unwrap_err().to_string();
    assert!(error.contains("master"), "{error}");
}

#[test]
fn a_failover_timeout_of_zero_is_refused() {
    let error = resolved(&[("failover_timeout", "0")])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("failover_timeout") && error.contains("kill every task"),
        "{error}"
    );
}

#[test]
fn bad_values_name_the_key_and_source() {
    let cases: &[(&'static str, &str)] = &[
        ("port", "http"),
        ("queue_size", "0"),
        ("cpus", "-2"),
        ("mem", "lots"),
        ("port_range", "32000-31000"),
        ("kill_grace_period", "soon"),
        ("retention", "0"),
        ("task_output_limit", "100"),
        ("task_output_limit", "lots"),
        ("task_output_limit", "0"),
        ("data_dir_min_free", "5%"),
        ("data_dir_min_free", "-1GiB"),
        ("fetch_cache_dir", "cache"),
        ("fetch_cache_dir", "/srv/../cache"),
        ("fetch_cache_size", "0"),
        ("fetch_cache_size", "big"),
        ("callback_timeout", "0s"),
        ("allow_privileged", "perhaps"),
        ("allowed_host_paths", "/srv,relative"),
        ("allowed_host_paths", "/srv/../etc"),
        ("user_network", "-bad"),
        ("docker_host", "docker.sock"),
        ("url_prefix", "api/"),
        ("data_dir", "relative/dir"),
        ("instance_id", " "),
        ("checkpoint", "sometimes"),
        ("messenger_port", "70000"),
        ("failover_timeout", "forever"),
        ("loglevel", "loud"),
        ("logformat", "xml"),
        ("address", "example.com"),
        ("bearer_tokens", "ok,,other"),
        ("http_credentials", "no-colon"),
        ("allowed_hosts", "eremetic.example.com:8080"),
        ("allowed_hosts", "ok.example,,other"),
        ("allowed_hosts", "http://x"),
        ("allowed_hosts", "bad_name.example"),
    ];
    for (key, value) in cases {
        let error = resolved(&[(key, value)]).unwrap_err().to_string();
        let prefix = format!(
            "{key} from environment variable EREMETIC_{}",
            key.to_uppercase()
        );
        assert!(error.starts_with(&prefix), "{key}={value}: {error}");
    }
}

#[test]
fn credential_errors_never_echo_the_secret() {
    let error = resolved(&[("http_credentials", "hunter2")])
        .unwrap_err()
        .to_string();
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn a_list_given_to_a_single_value_key_is_an_error() {
    let settings = layers::parse_yaml("port: [1, 2]\n", Path::new("/f.yml")).unwrap();
    let error = resolve(&settings, &HOST, &home_env)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("port from file /f.yml") && error.contains("list"),
        "{error}"
    );
}

#[test]
fn lists_accept_yaml_sequences_and_comma_separated_text() {
    let settings = layers::parse_yaml(
        "allowed_host_paths: [/srv/data/, /opt]\n",
        Path::new("/f.yml"),
    )
    .unwrap();
    let config = resolve(&settings, &HOST, &home_env).unwrap();
    assert_eq!(
        config.allowed_host_paths,
        [PathBuf::from("/srv/data"), PathBuf::from("/opt")]
    );
    let config = resolved(&[("allowed_host_paths", "/a, /b")]).unwrap();
    assert_eq!(config.allowed_host_paths.len(), 2);
}

#[test]
fn zero_capacity_is_accepted() {
    let config = resolved(&[("cpus", "0"), ("mem", "0")]).unwrap();
    assert_eq!((config.cpus, config.mem), (0.0, 0));
}

#[test]
fn missing_host_facts_without_a_setting_is_an_error_naming_the_key() {
    let host = HostFacts {
        mem_mib: None,
        ..HOST
    };
    let error = resolve(&Settings::new(), &host, &home_env)
        .unwrap_err()
        .to_string();
    assert!(error.contains("default of mem"), "{error}");
    let config = resolve(&settings(&[("mem", "512")]), &host, &home_env).unwrap();
    assert_eq!(config.mem, 512);
}

#[test]
fn mesos_keys_are_parsed_and_reported_as_ignored() {
    let config = resolved(&[
        ("name", "Eremetic"),
        ("checkpoint", "false"),
        ("failover_timeout", "2592000.0"),
        ("messenger_port", "5051"),
    ])
    .unwrap();
    assert_eq!(config.mesos.checkpoint, Some(false));
    assert_eq!(
        config.mesos.failover_timeout,
        Some(Duration::from_secs(2_592_000))
    );
    assert_eq!(
        config.mesos.set_keys(),
        ["name", "checkpoint", "failover_timeout", "messenger_port"]
    );
    let warnings = config.startup_warnings();
    assert!(
        warnings.iter().any(|w| w.contains("ignored")),
        "{warnings:?}"
    );
}

#[test]
fn open_server_on_a_network_address_is_warned_about() {
    let open = resolved(&[("address", "0.0.0.0")]).unwrap();
    assert!(open.startup_warnings()[0].contains("without authentication"));
    let local = resolved(&[]).unwrap();
    assert!(local.startup_warnings().is_empty());
    let protected = resolved(&[("http_credentials", "a:b")]).unwrap();
    let warnings = protected.startup_warnings();
    assert!(warnings
        .iter()
        .all(|w| !w.contains("without authentication")));
    assert!(
        warnings.iter().any(|w| w.contains("unencrypted")),
        "{warnings:?}"
    );
}

#[test]
fn allowed_hosts_are_names_in_lower_case_and_named_in_the_open_server_warning() {
    let config = resolved(&[
        ("allowed_hosts", "Eremetic.Example.com, other.example"),
        ("address", "0.0.0.0"),
    ])
    .unwrap();
    assert_eq!(
        config.allowed_hosts,
        ["eremetic.example.com", "other.example"]
    );
    let warnings = config.startup_warnings();
    assert!(
        warnings[0].contains("the API is open")
            && warnings[0].contains("eremetic.example.com, other.example"),
        "{warnings:?}"
    );
    assert!(resolved(&[]).unwrap().allowed_hosts.is_empty());
}

#[test]
fn output_limit_and_free_space_floor_take_sizes() {
    let config = resolved(&[
        ("task_output_limit", "64KiB"),
        ("data_dir_min_free", "1000PiB"),
    ])
    .unwrap();
    assert_eq!(config.task_output_limit.map(|l| l.get()), Some(64 << 10));
    assert_eq!(config.data_dir_min_free, 1000 << 50);
    let config = resolved(&[
        ("task_output_limit", "Unlimited"),
        ("data_dir_min_free", "0"),
    ])
    .unwrap();
    assert_eq!(config.task_output_limit, None);
    assert_eq!(config.data_dir_min_free, 0);
    let error = resolved(&[("task_output_limit", "100")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("must be at least 1KiB"), "{error}");
}

#[test]
fn the_fetch_cache_takes_a_directory_and_a_size() {
    let config = resolved(&[
        ("fetch_cache_dir", "/var/cache/eremetic"),
        ("fetch_cache_size", "500MiB"),
    ])
    .unwrap();
    assert_eq!(config.fetch_cache_dir, PathBuf::from("/var/cache/eremetic"));
    assert_eq!(config.fetch_cache_size, 500 << 20);
}

#[test]
fn a_missing_or_invalid_master_ca_file_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, why) in [(&missing, "cannot read"), (&not_pem, "no PEM certificate")] {
        let error = resolved(&[
            ("master", "https://m1:5050"),
            ("master_ca_file", &file.display().to_string()),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("master_ca_file from environment variable EREMETIC_MASTER_CA_FILE")
                && error.contains(why),
            "{error}"
        );
    }
}

#[test]
fn master_scheme_reaches_zookeeper_leaders_and_must_agree_with_the_master() {
    let config = resolved(&[
        ("master", "zk://zk1:2181/mesos"),
        ("master_scheme", "https"),
    ])
    .unwrap();
    assert_eq!(
        config.mesos.master_scheme,
        Some(crate::mesos::master_url::Scheme::Https)
    );
    let error = resolved(&[("master", "http://m1:5050"), ("master_scheme", "https")])
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("master_scheme from"), "{error}");
}
