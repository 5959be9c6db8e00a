//! Configuration loading with real files: layer precedence, environment names, errors that
//! name the key and its source, defaults that depend on auth, the shipped example file and
//! the masked rendering.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use eremetic::config::{self, Cli, Config, ConfigError, HostFacts};

const HOST: HostFacts = HostFacts {
    uid: 1000,
    cpus: Some(2),
    mem_mib: Some(4096),
};

/// A temporary directory holding the YAML file and the data directory.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `eremetic.yml` with `data_dir` pointing into the fixture, plus `body`.
    fn file(&self, body: &str) -> PathBuf {
        let path = self.path("eremetic.yml");
        let text = format!("data_dir: {}\n{body}", self.path("data").display());
        std::fs::write(&path, text).expect("write config");
        path
    }

    fn cli(&self, file: &Path, flags: &[&str]) -> Cli {
        let mut args = vec!["eremetic", "--config", file.to_str().expect("utf-8 path")];
        args.extend_from_slice(flags);
        Cli::try_parse_from(args).expect("flags parse")
    }

    /// The default file location used instead of /etc/eremetic/eremetic.yml.
    fn absent_default(&self) -> PathBuf {
        self.path("no-default.yml")
    }
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

fn load(fixture: &Fixture, cli: &Cli, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    config::load_with(cli, &env_of(env), &HOST, &fixture.absent_default())
}

fn load_err(fixture: &Fixture, cli: &Cli, env: &[(&str, &str)]) -> String {
    match load(fixture, cli, env) {
        Ok(config) => panic!("expected an error, loaded {config:?}"),
        Err(error) => error.to_string(),
    }
}

fn shipped_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/eremetic.yml")
}

#[test]
fn layers_override_in_order_file_unprefixed_env_prefixed_env_flag() {
    let fixture = Fixture::new();
    let file = fixture.file("port: 1001\nqueue_size: 11\nloglevel: error\nmem: 100\n");
    let cli = fixture.cli(&file, &[]);
    let env_all = [
        ("PORT", "1002"),
        ("QUEUE_SIZE", "12"),
        ("LOGLEVEL", "warn"),
        ("EREMETIC_PORT", "1003"),
        ("EREMETIC_QUEUE_SIZE", "13"),
    ];
    let config = load(&fixture, &cli, &env_all).unwrap();
    assert_eq!(config.mem, 100, "file beats default");
    assert_eq!(
        config.loglevel,
        config::LogLevel::Warn,
        "unprefixed env beats file"
    );
    assert_eq!(config.queue_size, 13, "EREMETIC_ env beats unprefixed env");
    assert_eq!(config.port, 1003);
    let cli = fixture.cli(&file, &["--port", "1004"]);
    let config = load(&fixture, &cli, &env_all).unwrap();
    assert_eq!(config.port, 1004, "flag beats everything");
    let config = load(&fixture, &fixture.cli(&file, &[]), &[]).unwrap();
    assert_eq!((config.port, config.queue_size), (1001, 11), "file alone");
}

#[test]
fn empty_environment_variable_counts_as_unset() {
    let fixture = Fixture::new();
    let file = fixture.file("port: 1001\n");
    let config = load(&fixture, &fixture.cli(&file, &[]), &[("EREMETIC_PORT", "")]).unwrap();
    assert_eq!(config.port, 1001);
}

#[test]
fn unprefixed_user_and_name_are_ignored_but_prefixed_ones_are_read() {
    let fixture = Fixture::new();
    let file = fixture.file("");
    let cli = fixture.cli(&file, &[]);
    let config = load(&fixture, &cli, &[("USER", "alice"), ("NAME", "shell")]).unwrap();
    assert_eq!(config.mesos.user, None);
    assert_eq!(config.mesos.name, None);
    let config = load(
        &fixture,
        &cli,
        &[("EREMETIC_USER", "mesos"), ("EREMETIC_NAME", "Tasks")],
    )
    .unwrap();
    assert_eq!(config.mesos.user.as_deref(), Some("mesos"));
    assert_eq!(config.mesos.name.as_deref(), Some("Tasks"));
    assert_eq!(config::UNPREFIXED_ENV_EXCLUDED, ["USER", "NAME"]);
}

#[test]
fn unknown_key_in_file_is_refused_naming_key_file_and_suggestion() {
    let fixture = Fixture::new();
    let file = fixture.file("queue_sise: 5\n");
    let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
    assert!(error.contains("\"queue_sise\""), "{error}");
    assert!(error.contains(&file.display().to_string()), "{error}");
    assert!(error.contains("did you mean queue_size?"), "{error}");
}

#[test]
fn bad_values_name_the_key_and_the_file_variable_or_flag() {
    let fixture = Fixture::new();
    let file = fixture.file("port: eighty\n");
    let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
    assert!(
        error.starts_with(&format!("port from file {}", file.display())),
        "{error}"
    );

    let file = fixture.file("");
    let cli = fixture.cli(&file, &[]);
    let error = load_err(&fixture, &cli, &[("EREMETIC_QUEUE_SIZE", "0")]);
    assert!(
        error.starts_with("queue_size from environment variable EREMETIC_QUEUE_SIZE"),
        "{error}"
    );
    let error = load_err(&fixture, &cli, &[("LOGFORMAT", "xml")]);
    assert!(
        error.starts_with("logformat from environment variable LOGFORMAT"),
        "{error}"
    );

    let cli = fixture.cli(&file, &["--port-range", "9-1"]);
    let error = load_err(&fixture, &cli, &[]);
    assert!(
        error.starts_with("port_range from flag --port-range"),
        "{error}"
    );
}

#[test]
fn yaml_syntax_error_is_refused_naming_the_file() {
    let fixture = Fixture::new();
    let file = fixture.file("port: [8080\n");
    let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
    assert!(
        error.contains(&file.display().to_string()) && error.contains("YAML"),
        "{error}"
    );
}

#[test]
fn address_defaults_to_loopback_without_credentials_and_all_interfaces_with_them() {
    let fixture = Fixture::new();
    let open = fixture.file("");
    let config = load(&fixture, &fixture.cli(&open, &[]), &[]).unwrap();
    assert_eq!(config.address, IpAddr::from([127, 0, 0, 1]));
    assert!(!config.auth_required());

    let protected = fixture.file("http_credentials: admin:secret\n");
    let config = load(&fixture, &fixture.cli(&protected, &[]), &[]).unwrap();
    assert_eq!(config.address, IpAddr::from([0, 0, 0, 0]));
    assert!(config.auth_required());

    let file = fixture.file("");
    let config = load(
        &fixture,
        &fixture.cli(&file, &[]),
        &[("EREMETIC_BEARER_TOKENS", "t1,t2")],
    )
    .unwrap();
    assert_eq!(config.address, IpAddr::from([0, 0, 0, 0]));

    let cli = fixture.cli(&protected, &["--address", "127.0.0.1"]);
    let config = load(&fixture, &cli, &[]).unwrap();
    assert_eq!(
        config.address,
        IpAddr::from([127, 0, 0, 1]),
        "explicit value wins"
    );
}

#[test]
fn malformed_http_credentials_are_refused_instead_of_leaving_the_server_open() {
    let fixture = Fixture::new();
    for bad in ["adminsecret", ":secret", "admin:"] {
        let file = fixture.file(&format!("http_credentials: \"{bad}\"\n"));
        let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
        assert!(
            error.starts_with("http_credentials from file"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn half_configured_or_missing_tls_files_are_refused() {
    let fixture = Fixture::new();
    let cert = fixture.path("cert.pem");
    let key = fixture.path("key.pem");
    std::fs::write(&cert, "cert").unwrap();
    std::fs::write(&key, "key").unwrap();

    let file = fixture.file(&format!("tls_cert: {}\n", cert.display()));
    let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
    assert!(
        error.contains("tls_cert is set") && error.contains("tls_key is not"),
        "{error}"
    );

    let file = fixture.file(&format!("tls_key: {}\n", key.display()));
    let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
    assert!(
        error.contains("tls_key is set") && error.contains("tls_cert is not"),
        "{error}"
    );

    let missing = fixture.path("missing.pem");
    let file = fixture.file(&format!(
        "tls_cert: {}\ntls_key: {}\n",
        missing.display(),
        key.display()
    ));
    let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
    assert!(
        error.starts_with("tls_cert from file") && error.contains("does not exist"),
        "{error}"
    );

    let file = fixture.file(&format!(
        "tls_cert: {}\ntls_key: {}\n",
        cert.display(),
        key.display()
    ));
    let tls = load(&fixture, &fixture.cli(&file, &[]), &[])
        .unwrap()
        .tls
        .unwrap();
    assert_eq!((tls.cert, tls.key), (cert, key));
}

#[test]
fn a_zookeeper_master_is_read_and_eremetic_s_host_port_master_is_read_from_its_env_name() {
    let fixture = Fixture::new();
    let file = fixture.file("master: zk://zk1:2181,zk2:2181/mesos\n");
    let config = load(&fixture, &fixture.cli(&file, &[]), &[]).unwrap();
    match config.master {
        Some(eremetic::mesos::MasterUrl::ZooKeeper(zk)) => {
            assert_eq!(zk.connect_string(), "zk1:2181,zk2:2181");
            assert_eq!(zk.path, "/mesos");
        }
        other => panic!("{other:?}"),
    }
    let file = fixture.file("master: zk://zk1:2181/\n");
    let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
    assert!(
        error.contains("master from file") && error.contains("may not be / alone"),
        "{error}"
    );
    let file = fixture.file("");
    let config = load(
        &fixture,
        &fixture.cli(&file, &[]),
        &[("MASTER", "10.0.0.1:5050")],
    )
    .unwrap();
    match config.master {
        Some(eremetic::mesos::MasterUrl::Http(http)) => {
            assert_eq!(http.base_url(), "http://10.0.0.1:5050");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn eremetic_storage_drivers_are_refused_with_an_explanation() {
    let fixture = Fixture::new();
    let file = fixture.file("database_driver: boltdb\ndatabase: db/eremetic.db\n");
    let error = load_err(&fixture, &fixture.cli(&file, &[]), &[]);
    assert!(
        error.starts_with("database_driver from file") && error.contains("SQLite"),
        "{error}"
    );
}

#[test]
fn config_flag_must_name_an_existing_file() {
    let fixture = Fixture::new();
    let missing = fixture.path("missing.yml");
    let error = load_err(&fixture, &fixture.cli(&missing, &[]), &[]);
    assert!(error.contains(&missing.display().to_string()) && error.contains("does not exist"));
}

#[test]
fn default_file_is_read_when_present_and_skipped_when_absent() {
    let fixture = Fixture::new();
    let env = env_of(&[("HOME", "/home/op")]);
    let absent =
        config::load_with(&Cli::default(), &env, &HOST, &fixture.absent_default()).unwrap();
    assert_eq!(absent.config_file, None);
    assert_eq!(
        absent.data_dir,
        PathBuf::from("/home/op/.local/share/eremetic")
    );

    let default_file = fixture.file("port: 9123\n");
    let present = config::load_with(&Cli::default(), &env, &HOST, &default_file).unwrap();
    assert_eq!(present.config_file, Some(default_file));
    assert_eq!(present.port, 9123);
}

#[test]
fn shipped_example_loads_and_only_repeats_the_defaults() {
    let fixture = Fixture::new();
    let env = [("HOME", "/home/op")];
    let example = shipped_example();
    let from_example = load(&fixture, &fixture.cli(&example, &[]), &env).unwrap();
    let without = config::load_with(
        &Cli::default(),
        &env_of(&env),
        &HOST,
        &fixture.absent_default(),
    )
    .unwrap();
    assert_eq!(from_example.config_file.as_deref(), Some(example.as_path()));
    assert_eq!(
        Config {
            config_file: None,
            ..from_example
        },
        without
    );
}

#[test]
fn shipped_example_documents_every_key() {
    let example = std::fs::read_to_string(shipped_example()).unwrap();
    let fixture = Fixture::new();
    let file = fixture.file("");
    let config = load(&fixture, &fixture.cli(&file, &[]), &[]).unwrap();
    for line in config
        .render_masked()
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let key = line.split(':').next().unwrap();
        let documented = example.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key}:"))
        });
        assert!(documented, "etc/eremetic.yml does not mention {key}");
    }
}

#[test]
fn render_masked_hides_credentials_tokens_and_callback_secret() {
    let fixture = Fixture::new();
    let file = fixture.file(
        "http_credentials: admin:pa55word\nbearer_tokens: [tok-aaaa, tok-bbbb]\n\
         callback_secret: hmac-key\n",
    );
    let config = load(&fixture, &fixture.cli(&file, &[]), &[]).unwrap();
    assert_eq!(
        config.callback_secret.as_ref().unwrap().expose(),
        "hmac-key"
    );
    let text = config.render_masked();
    for secret in ["pa55word", "admin", "tok-aaaa", "tok-bbbb", "hmac-key"] {
        assert!(!text.contains(secret), "{secret} shown:\n{text}");
    }
    assert!(text.contains("http_credentials: \"*******\""), "{text}");
    assert!(
        text.contains("bearer_tokens: [\"*******\", \"*******\"]"),
        "{text}"
    );
    assert!(text.contains("callback_secret: \"*******\""), "{text}");
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("pa55word") && !debug.contains("tok-aaaa") && !debug.contains("hmac-key")
    );
}

#[test]
fn rendered_config_without_secrets_loads_back_to_the_same_config() {
    let fixture = Fixture::new();
    let file = fixture.file(
        "port: 9000\nurl_prefix: /tasks\nretention: 7d\ncpus: 1.5\nmem: 2048\n\
         allowed_host_paths: [/srv/a, /srv/b]\nkill_grace_period: 1500ms\nuser_network: tasks\n\
         name: Eremetic\nfailover_timeout: 2592000\ncheckpoint: false\n",
    );
    let config = load(&fixture, &fixture.cli(&file, &[]), &[]).unwrap();
    let rendered = fixture.path("rendered.yml");
    std::fs::write(&rendered, config.render_masked()).unwrap();
    let reloaded = load(&fixture, &fixture.cli(&rendered, &[]), &[]).unwrap();
    assert_eq!(
        Config {
            config_file: None,
            ..reloaded
        },
        Config {
            config_file: None,
            ..config
        }
    );
}

#[test]
fn check_config_prints_the_masked_config_and_exits_zero() {
    let fixture = Fixture::new();
    let file = fixture.file("http_credentials: admin:pa55word\nqueue_size: 42\n");
    let cli = fixture.cli(&file, &["--check-config"]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        config::check_config(&cli, &env_of(&[]), &mut out, &mut err),
        0
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("queue_size: 42") && !out.contains("pa55word"),
        "{out}"
    );
    assert!(err.is_empty());

    let file = fixture.file("queue_size: none\n");
    let cli = fixture.cli(&file, &["--check-config"]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        config::check_config(&cli, &env_of(&[]), &mut out, &mut err),
        config::CONFIG_ERROR_EXIT_CODE
    );
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("queue_size from file"), "{err}");
}

#[test]
fn durations_from_files_accept_units_and_plain_seconds() {
    let fixture = Fixture::new();
    let file = fixture.file("kill_grace_period: 30\ncallback_retry_period: 2h\nretention: 500ms\n");
    let config = load(&fixture, &fixture.cli(&file, &[]), &[]).unwrap();
    assert_eq!(config.kill_grace_period, Duration::from_secs(30));
    assert_eq!(config.callback_retry_period, Duration::from_secs(7200));
    assert_eq!(config.retention, Some(Duration::from_millis(500)));
}
