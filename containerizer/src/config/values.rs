//! Value syntax of the containerizer's own keys: log levels, durations, Docker hosts, paths.
//! Arrays, booleans, host directories and sizes are `deimos_runtime`'s (shared with the
//! executor).
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
    fn container_paths_must_be_absolute() {
        assert_eq!(parse_container_path("/mnt/x"), Ok("/mnt/x".to_owned()));
        assert!(parse_container_path("mnt").is_err());
    }
}
