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
    assert!(config.docker.host.is_some());
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
