//! Value syntax shared by all keys: arrays, booleans, log levels, durations, Docker hosts.
//!
//! Every function is pure and returns the reason a value is rejected; the caller adds the
//! file, section and key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A log level as written in `[log]`: Python's level names (any case) plus `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `NOTSET`: everything (Python's root logger semantics), including trace messages.
    NotSet,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING`.
    Warning,
    /// `ERROR`.
    Error,
    /// `CRITICAL`: the `log` crate has no higher level than error, so this is ERROR.
    Critical,
    /// `off`: this destination is disabled.
    Off,
}

impl LogLevel {
    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotSet => "NOTSET",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
            Self::Critical => "CRITICAL",
            Self::Off => "off",
        }
    }

    /// The equivalent `log` crate filter.
    pub fn to_level_filter(self) -> log::LevelFilter {
        match self {
            Self::NotSet => log::LevelFilter::Trace,
            Self::Debug => log::LevelFilter::Debug,
            Self::Info => log::LevelFilter::Info,
            Self::Warning => log::LevelFilter::Warn,
            Self::Error | Self::Critical => log::LevelFilter::Error,
            Self::Off => log::LevelFilter::Off,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the Docker Engine API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// `unix:///absolute/path/to/docker.sock`.
    Unix(PathBuf),
    /// `tcp://host[:port]` (plain HTTP).
    Tcp(String),
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(authority) => write!(f, "tcp://{authority}"),
        }
    }
}

/// Parses an array: a JSON list of strings when the value starts with `[`, an empty list for
/// an empty value, otherwise a one-element list holding the value.
pub(super) fn parse_array(raw: &str) -> Result<Vec<String>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    if !raw.starts_with('[') {
        return Ok(vec![raw.to_owned()]);
    }
    serde_json::from_str::<Vec<String>>(raw)
        .map_err(|err| format!("{raw:?} starts with '[' but is not a JSON list of strings: {err}"))
}

/// Parses a boolean: `true/false/yes/no/on/off/1/0`, any case.
pub(super) fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "{raw:?} is not a boolean (true/false, yes/no, on/off, 1/0)"
        )),
    }
}

/// Parses a log level name, any case.
pub(super) fn parse_level(raw: &str) -> Result<LogLevel, String> {
    let level = match raw.trim().to_ascii_uppercase().as_str() {
        "NOTSET" => LogLevel::NotSet,
        "DEBUG" => LogLevel::Debug,
        "INFO" => LogLevel::Info,
        "WARNING" => LogLevel::Warning,
        "ERROR" => LogLevel::Error,
        "CRITICAL" => LogLevel::Critical,
        "OFF" => LogLevel::Off,
        _ => {
            return Err(format!(
                "{raw:?} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL, NOTSET, off)"
            ))
        }
    };
    Ok(level)
}

/// Parses a duration: a non-negative number of seconds (`10`, `2.5`) or a number with a unit
/// `ms`, `s`, `m` or `h` (`500ms`, `10s`, `1.5m`).
pub(super) fn parse_duration(raw: &str) -> Result<Duration, String> {
    let text = raw.trim();
    let unit_start = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_start);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "{raw:?} has unknown unit {unit:?} (use ms, s, m or h)"
            ))
        }
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration (seconds, or a number with ms/s/m/h)"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("{raw:?} is not a non-negative, finite duration"))
}

/// Formats a duration the way [`parse_duration`] reads it back exactly.
pub(super) fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

/// Parses a Docker Engine endpoint: `unix:///absolute/path` or `tcp://host[:port]`.
pub(super) fn parse_docker_host(raw: &str) -> Result<DockerHost, String> {
    let raw = raw.trim();
    if let Some(path) = raw.strip_prefix("unix://") {
        if !path.starts_with('/') || path.len() < 2 {
            return Err(format!(
                "{raw:?}: a unix socket must be an absolute path (unix:///path)"
            ));
        }
        return Ok(DockerHost::Unix(PathBuf::from(path)));
    }
    if let Some(authority) = raw.strip_prefix("tcp://") {
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let bad = authority.is_empty()
            || authority.contains(|c: char| c == '/' || c.is_whitespace() || c == '@');
        if bad {
            return Err(format!("{raw:?}: expected tcp://host or tcp://host:port"));
        }
        return Ok(DockerHost::Tcp(authority.to_owned()));
    }
    Err(format!(
        "{raw:?} is not a Docker endpoint (use unix:///path or tcp://host:port)"
    ))
}

/// Parses a size in bytes: a whole number, optionally with a binary unit `KiB`, `MiB`,
/// `GiB` or `TiB` (`1GiB`, `512 MiB`, `1048576`).
pub(super) fn parse_size(raw: &str) -> Result<u64, String> {
    let text = raw.trim();
    let unit_start = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_start);
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => {
            return Err(format!(
                "{raw:?} has unknown unit {unit:?} (use KiB, MiB, GiB or TiB, or plain bytes)"
            ))
        }
    };
    let amount: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a size (a whole number of bytes, or e.g. 1GiB)"))?;
    match amount.checked_mul(scale) {
        Some(0) => Err(format!("{raw:?} must be more than zero")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{raw:?} is too large")),
    }
}

/// Formats a size the way [`parse_size`] reads it back exactly (the largest exact unit).
pub(super) fn format_size(bytes: u64) -> String {
    let units = [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    units
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes % unit == 0)
        .map_or_else(
            || bytes.to_string(),
            |(unit, name)| format!("{}{name}", bytes / unit),
        )
}

/// Parses a list of host directories: absolute paths without `..`.
pub(super) fn parse_host_dirs(raw: &str) -> Result<Vec<PathBuf>, String> {
    parse_array(raw)?
        .into_iter()
        .map(|dir| {
            let path = PathBuf::from(dir.trim());
            if !path.is_absolute() {
                return Err(format!("{dir:?} must be an absolute path"));
            }
            if path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(format!("{dir:?} must not contain '..'"));
            }
            Ok(path)
        })
        .collect()
}

/// Checks an absolute path inside containers (sandbox mount, working directory).
pub(super) fn parse_container_path(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if !raw.starts_with('/') {
        return Err(format!(
            "{raw:?} must be an absolute path inside the container"
        ));
    }
    Ok(raw.to_owned())
}

/// Checks the state root: absolute and free of `:` (which would break Docker volume syntax).
pub(super) fn parse_state_root(raw: &str) -> Result<PathBuf, String> {
    let raw = raw.trim();
    if raw.contains(':') {
        return Err(format!("{raw:?} must not contain ':'"));
    }
    if !Path::new(raw).is_absolute() {
        return Err(format!("{raw:?} must be an absolute path"));
    }
    Ok(PathBuf::from(raw))
}

/// Checks a value that must not be empty and returns it trimmed.
pub(super) fn parse_non_empty(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if raw.contains(char::is_control) {
        return Err(format!(
            "{raw:?} must be a single line without control characters"
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_from_json_list_of_strings() {
        assert_eq!(
            parse_array(r#"["-e", "A=b c"]"#),
            Ok(vec!["-e".to_owned(), "A=b c".to_owned()])
        );
        assert_eq!(parse_array("[]"), Ok(vec![]));
    }

    #[test]
    fn array_from_plain_value_is_one_element() {
        assert_eq!(parse_array("/bin/true"), Ok(vec!["/bin/true".to_owned()]));
    }

    #[test]
    fn array_from_empty_value_is_empty() {
        assert_eq!(parse_array("  "), Ok(vec![]));
    }

    #[test]
    fn array_rejects_list_of_non_strings_and_broken_json() {
        assert!(parse_array("[1, 2]")
            .unwrap_err()
            .contains("not a JSON list of strings"));
        assert!(parse_array("[\"a\"").is_err());
        assert!(parse_array("[\"a\", true]").is_err());
    }

    #[test]
    fn bool_accepts_common_spellings_in_any_case() {
        for yes in ["true", "True", "YES", "on", "1"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["false", "FALSE", "No", "off", "0"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        assert!(parse_bool("maybe").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn level_names_are_case_insensitive_and_off_disables() {
        assert_eq!(parse_level("debug"), Ok(LogLevel::Debug));
        assert_eq!(parse_level("WARNING"), Ok(LogLevel::Warning));
        assert_eq!(parse_level("Off"), Ok(LogLevel::Off));
        assert_eq!(parse_level("notset"), Ok(LogLevel::NotSet));
        assert!(parse_level("WARN").is_err());
        assert_eq!(
            LogLevel::Critical.to_level_filter(),
            log::LevelFilter::Error
        );
        assert_eq!(LogLevel::Off.to_level_filter(), log::LevelFilter::Off);
    }

    #[test]
    fn duration_accepts_seconds_and_units() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn duration_rejects_negative_unknown_unit_and_garbage() {
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("10d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("inf").is_err());
    }

    #[test]
    fn duration_format_round_trips() {
        for d in [
            Duration::from_secs(10),
            Duration::from_millis(1500),
            Duration::from_nanos(1),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
    }

    #[test]
    fn docker_host_accepts_unix_and_tcp() {
        assert_eq!(
            parse_docker_host("unix:///var/run/docker.sock"),
            Ok(DockerHost::Unix(PathBuf::from("/var/run/docker.sock")))
        );
        assert_eq!(
            parse_docker_host("tcp://10.0.0.1:2375"),
            Ok(DockerHost::Tcp("10.0.0.1:2375".into()))
        );
        assert_eq!(
            DockerHost::Unix(PathBuf::from("/run/d.sock")).to_string(),
            "unix:///run/d.sock"
        );
    }

    #[test]
    fn docker_host_rejects_other_schemes_and_relative_sockets() {
        assert!(parse_docker_host("http://x:1").is_err());
        assert!(parse_docker_host("unix://docker.sock").is_err());
        assert!(parse_docker_host("tcp://").is_err());
        assert!(parse_docker_host("tcp://h:1/path").is_err());
    }

    #[test]
    fn state_root_must_be_absolute_without_colon() {
        assert_eq!(
            parse_state_root("/var/lib/deimos"),
            Ok(PathBuf::from("/var/lib/deimos"))
        );
        assert!(parse_state_root("/a:b").unwrap_err().contains("':'"));
        assert!(parse_state_root("relative")
            .unwrap_err()
            .contains("absolute"));
    }

    #[test]
    fn sizes_take_binary_units_and_round_trip() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("1GB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("0").unwrap_err().contains("more than zero"));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999TiB").unwrap_err().contains("too large"));
        for bytes in [1u64 << 30, 3 << 20, 1000, 1536] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes), "{bytes}");
        }
    }

    #[test]
    fn host_dirs_must_be_absolute_without_parent_components() {
        assert_eq!(
            parse_host_dirs(r#"["/srv/a", "/data"]"#),
            Ok(vec![PathBuf::from("/srv/a"), PathBuf::from("/data")])
        );
        assert_eq!(parse_host_dirs(""), Ok(vec![]));
        assert!(parse_host_dirs("srv").unwrap_err().contains("absolute"));
        assert!(parse_host_dirs("/srv/../etc").unwrap_err().contains(".."));
    }

    #[test]
    fn container_paths_must_be_absolute() {
        assert_eq!(parse_container_path("/mnt/x"), Ok("/mnt/x".to_owned()));
        assert!(parse_container_path("mnt").is_err());
    }
}
