//! The example configuration and the search path, against real files in temporary
//! directories.

use std::fs;
use std::path::{Path, PathBuf};

use deimos::config::{load, parse_config, search_path, Config, ConfigError, SearchEnv};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/deimos.cfg")
}

#[test]
fn example_config_parses_and_states_the_defaults() {
    let text = fs::read_to_string(example_path()).expect("etc/deimos.cfg is readable");
    let config = parse_config(&text, "etc/deimos.cfg").expect("etc/deimos.cfg parses");
    assert_eq!(
        config,
        Config::default(),
        "the example's active lines must be the defaults"
    );
}

#[test]
fn example_config_with_every_commented_key_enabled_still_parses() {
    let text = fs::read_to_string(example_path()).expect("etc/deimos.cfg is readable");
    // Uncomment "# key: value" lines (not prose) to check the documented examples are valid.
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(": ").is_some_and(|(k, _)| {
                    !k.contains(' ') && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                rest
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config =
        parse_config(&uncommented, "etc/deimos.cfg (uncommented)").expect("examples parse");
    assert_eq!(
        config.image.default.as_deref(),
        Some("docker:///busybox:latest")
    );
    assert!(!config.docker.hosts.is_empty());
    assert!(config.log.console.is_some() && config.log.syslog.is_some());
}

struct Dirs {
    _root: tempfile::TempDir,
    env: SearchEnv,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().expect("tempdir");
    let make = |name: &str| {
        let dir = root.path().join(name);
        fs::create_dir_all(&dir).expect("mkdir");
        dir
    };
    let env = SearchEnv {
        config_file: None,
        current_dir: make("cwd"),
        called_by_agent: false,
        home: Some(make("home")),
        system_root: make("sys"),
    };
    Dirs { _root: root, env }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

#[test]
fn no_file_anywhere_gives_defaults() {
    let dirs = dirs();
    let loaded = load(&dirs.env).expect("defaults");
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.source, None);
}

#[test]
fn first_file_on_the_search_path_wins_and_only_it_is_loaded() {
    let dirs = dirs();
    let home = dirs.env.home.clone().expect("home");
    write(&home.join(".deimos"), "[state]\nroot: /from/home\n");
    write(
        &dirs.env.system_root.join("etc/deimos.cfg"),
        "[uris]\nunpack: false\n",
    );
    let loaded = load(&dirs.env).expect("loads");
    assert_eq!(loaded.source, Some(home.join(".deimos")));
    assert_eq!(loaded.config.state.root, PathBuf::from("/from/home"));
    assert!(
        loaded.config.uris.unpack,
        "the later file must not be merged in"
    );

    write(
        &dirs.env.current_dir.join("deimos.cfg"),
        "[state]\nroot: /from/cwd\n",
    );
    assert_eq!(
        load(&dirs.env).expect("loads").config.state.root,
        PathBuf::from("/from/cwd")
    );
}

#[test]
fn search_path_order_matches_deimos() {
    let dirs = dirs();
    let home = dirs.env.home.clone().expect("home");
    let sys = &dirs.env.system_root;
    assert_eq!(
        search_path(&dirs.env),
        [
            dirs.env.current_dir.join("deimos.cfg"),
            home.join(".deimos"),
            sys.join("etc/deimos.cfg"),
            sys.join("usr/etc/deimos.cfg"),
            sys.join("usr/local/etc/deimos.cfg"),
        ]
    );
}

#[test]
fn a_deimos_cfg_in_the_sandbox_is_ignored_when_an_agent_runs_deimos() {
    let mut dirs = dirs();
    dirs.env.called_by_agent = true;
    let planted = dirs.env.current_dir.join("deimos.cfg");
    write(
        &planted,
        "[hooks]\nondestroy: [\"/bin/sh\", \"-c\", \"id\"]\n",
    );
    write(
        &dirs.env.system_root.join("etc/deimos.cfg"),
        "[state]\nroot: /from/etc\n",
    );
    assert!(!search_path(&dirs.env).contains(&planted));
    let loaded = load(&dirs.env).expect("loads");
    assert_eq!(
        loaded.source,
        Some(dirs.env.system_root.join("etc/deimos.cfg"))
    );
    assert_eq!(loaded.config.state.root, PathBuf::from("/from/etc"));
}

#[test]
fn env_var_file_overrides_the_search_path() {
    let mut dirs = dirs();
    write(
        &dirs.env.current_dir.join("deimos.cfg"),
        "[state]\nroot: /from/cwd\n",
    );
    let explicit = dirs.env.system_root.join("custom.cfg");
    write(&explicit, "[state]\nroot: /explicit\n");
    dirs.env.config_file = Some(explicit.clone());
    let loaded = load(&dirs.env).expect("loads");
    assert_eq!(
        (loaded.source, loaded.config.state.root),
        (Some(explicit), PathBuf::from("/explicit"))
    );
}

#[test]
fn env_var_naming_a_missing_file_is_an_error() {
    let mut dirs = dirs();
    write(&dirs.env.current_dir.join("deimos.cfg"), "");
    dirs.env.config_file = Some(dirs.env.system_root.join("missing.cfg"));
    let err = load(&dirs.env).expect_err("missing explicit file");
    assert!(matches!(err, ConfigError::EnvFileMissing { .. }), "{err}");
    assert!(
        err.to_string().contains("DEIMOS_CONFIG") && err.to_string().contains("missing.cfg"),
        "{err}"
    );
}

#[test]
fn invalid_file_error_names_the_file_path() {
    let dirs = dirs();
    let path = dirs.env.current_dir.join("deimos.cfg");
    write(&path, "[state]\nroot: relative\n");
    let message = load(&dirs.env).expect_err("invalid").to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("[state] root"), "{message}");
}

#[test]
fn unreadable_candidate_is_an_error_not_skipped() {
    let dirs = dirs();
    // A directory where the file should be cannot be read as a file.
    fs::create_dir_all(dirs.env.current_dir.join("deimos.cfg")).expect("mkdir");
    let err = load(&dirs.env).expect_err("unreadable");
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

/// Deimos' own example configuration (its keys and values).
fn deimos_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deimos-example.cfg")
}

fn deimos(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_deimos"))
        .args(args)
        .env("DEIMOS_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .output()
        .expect("deimos runs")
}

#[test]
fn deimos_example_configuration_loads_unchanged() {
    let output = deimos(&deimos_example(), &["config"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(r#"host: ["unix:///var/run/docker.sock","tcp://localhost:2375"]"#),
        "{stdout}"
    );
    assert!(stdout.contains("default: docker:///ubuntu"), "{stdout}");
}

#[test]
fn the_first_docker_endpoint_that_answers_is_used_and_the_others_are_explained() {
    // The engine the other Docker tests use: DOCKER_HOST when it is a socket, else the default.
    let engine = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|host| host.starts_with("unix://"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
    let scratch = tempfile::tempdir().expect("tempdir");
    let missing = scratch.path().join("no-engine.sock");
    let config = scratch.path().join("deimos.cfg");
    fs::write(
        &config,
        format!(
            "[docker]\nhost: [\"unix://{}\", \"{engine}\"]\n[log]\nconsole: INFO\nsyslog: off\n\
             [state]\nroot: {}\n",
            missing.display(),
            scratch.path().join("state").display()
        ),
    )
    .expect("write config");
    // `recover` connects to Docker; the unique work directory keeps it away from anyone
    // else's containers.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deimos"))
        .arg("recover")
        .env("DEIMOS_CONFIG", &config)
        .env("MESOS_WORK_DIRECTORY", scratch.path())
        .output()
        .expect("deimos runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("using Docker at {engine} (endpoint 2 of 2)")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("unix://{} does not answer", missing.display())),
        "{stderr}"
    );
}
