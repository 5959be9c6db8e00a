//! Value types and their parsers. Every parser is pure and returns the reason a value is
//! rejected; the caller adds the key and where the value came from.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::task::MASK;

/// A secret setting (password, token, signing key): `Debug` and `Display` print the mask.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value, for the code that checks or signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// `http_credentials`: the user and password of HTTP Basic auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCredentials {
    /// The user name (not secret, but never empty and without `:`).
    pub user: String,
    /// The password.
    pub password: SecretString,
}

/// `loglevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn` (also `warning`).
    Warn,
    /// `error` (also logrus' `fatal` and `panic`, for Eremetic files).
    Error,
}

impl LogLevel {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `logformat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `database_driver`: only the embedded SQLite store exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseDriver {
    /// `sqlite`.
    Sqlite,
}

impl fmt::Display for DatabaseDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sqlite")
    }
}

/// `port_range`: host ports handed to tasks, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port (≥ 1).
    pub low: u16,
    /// Last port (≥ `low`).
    pub high: u16,
}

impl PortRange {
    /// How many ports the range holds.
    pub fn len(&self) -> usize {
        usize::from(self.high - self.low) + 1
    }

    /// Always false: a range holds at least one port. (Present for clippy's `len` rule.)
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

/// Booleans: `true/false/yes/no/on/off/1/0`, any case.
pub(crate) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("{text:?} is not a boolean (use true or false)")),
    }
}

/// Durations: an integer of seconds, or a number with a unit `ms`, `s`, `m`, `h`, `d`
/// (`500ms`, `10s`, `5m`, `1h`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let invalid = || {
        format!(
            "{text:?} is not a duration (use an integer of seconds or e.g. 500ms, 10s, 5m, 1h, 7d)"
        )
    };
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    let unit_millis: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    amount
        .checked_mul(unit_millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}

/// The shortest exact spelling [`parse_duration`] reads back.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if millis > 0 && millis % size == 0 {
            return format!("{}{unit}", millis / size);
        }
    }
    if millis == 0 {
        "0s".to_owned()
    } else {
        format!("{millis}ms")
    }
}

// Sizes (`data_dir_min_free`, `task_output_limit`) are read by the one size parser the
// containerizer's configuration uses too.
pub use deimos_runtime::size::{format_size, human_size, parse_size};

/// A duration that must not be zero.
pub(crate) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("must be longer than zero".to_owned()),
        duration => Ok(duration),
    }
}

/// An unsigned integer with an inclusive lower bound.
pub(crate) fn parse_integer_at_least<T>(text: &str, minimum: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let value: T = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    if value < minimum {
        return Err(format!("must be at least {minimum}, got {value}"));
    }
    Ok(value)
}

/// A TCP port (`0` lets the system choose one).
pub(crate) fn parse_port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a port number (0-65535)"))
}

/// `cpus`: a finite number ≥ 0 (0 gives the backend no capacity: tasks stay queued).
pub(crate) fn parse_cpus(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of CPUs"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("must be a number ≥ 0, got {text:?}"));
    }
    Ok(value)
}

/// `port_range`: `LOW-HIGH` with `1 ≤ LOW ≤ HIGH ≤ 65535`.
pub(crate) fn parse_port_range(text: &str) -> Result<PortRange, String> {
    let shape = || format!("{text:?} is not a port range (use LOW-HIGH, e.g. 31000-32000)");
    let (low, high) = text.trim().split_once('-').ok_or_else(shape)?;
    let low: u16 = low.trim().parse().map_err(|_| shape())?;
    let high: u16 = high.trim().parse().map_err(|_| shape())?;
    if low == 0 {
        return Err("the first port must be at least 1".to_owned());
    }
    if low > high {
        return Err(format!(
            "the first port {low} is above the last port {high}"
        ));
    }
    Ok(PortRange { low, high })
}

/// `http_credentials`: `user:password`, both parts non-empty (a malformed value is an error,
/// never an open server: sharp edge E-19). The password may contain `:`.
pub(crate) fn parse_credentials(text: &str) -> Result<HttpCredentials, String> {
    let (user, password) = text
        .split_once(':')
        .ok_or("must be user:password (no ':' found)")?;
    if user.is_empty() {
        return Err("the user part of user:password is empty".to_owned());
    }
    if password.is_empty() {
        return Err("the password part of user:password is empty".to_owned());
    }
    Ok(HttpCredentials {
        user: user.to_owned(),
        password: SecretString::new(password),
    })
}

/// One bearer token: printable ASCII without spaces or commas, as an HTTP header carries it.
/// The message never repeats the token.
pub(crate) fn parse_bearer_token(text: &str, position: usize) -> Result<SecretString, String> {
    if text.is_empty() {
        return Err(format!("token {position} is empty"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(format!(
            "token {position} contains a character other than printable ASCII (no spaces or commas)"
        ));
    }
    Ok(SecretString::new(text))
}

/// `url_prefix`: empty, or starts with `/` and does not end with `/`.
pub(crate) fn parse_url_prefix(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    if !text.starts_with('/') {
        return Err(format!("{text:?} must start with '/'"));
    }
    if text.ends_with('/') {
        return Err(format!("{text:?} must not end with '/'"));
    }
    if text.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
        return Err(format!(
            "{text:?} must be a URL path (no spaces, '?' or '#')"
        ));
    }
    Ok(text.to_owned())
}

/// One `allowed_hosts` entry: a DNS name (letters, digits, `-`, `.`), without port or scheme;
/// returned in lower case (names compare without case).
pub(crate) fn parse_host_name(text: &str, position: usize) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err(format!("host {position} is empty"));
    }
    if name.contains(':') || name.contains('/') {
        return Err(format!(
            "host {position} ({name:?}) must be a bare name, without scheme or port \
             (e.g. eremetic.example.com)"
        ));
    }
    let valid = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid || name.len() > 253 {
        return Err(format!(
            "host {position} ({name:?}) is not a host name (letters, digits, '-' and '.')"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// `address`: an IP address to listen on.
pub(crate) fn parse_address(text: &str) -> Result<IpAddr, String> {
    let trimmed = text.trim();
    if trimmed == "localhost" {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    // `[::1]` as written in URLs.
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(trimmed);
    bare.parse()
        .map_err(|_| format!("{text:?} is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::)"))
}

/// `loglevel`: `trace|debug|info|warn|error`, any case; `warning`, `fatal` and `panic` (logrus
/// names found in Eremetic files) are accepted as `warn`, `error`, `error`.
pub(crate) fn parse_log_level(text: &str) -> Result<LogLevel, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "trace" => Ok(LogLevel::Trace),
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warn" | "warning" => Ok(LogLevel::Warn),
        "error" | "fatal" | "panic" => Ok(LogLevel::Error),
        _ => Err(format!(
            "{text:?} is not a log level (trace, debug, info, warn, error)"
        )),
    }
}

/// `logformat`: `text` or `json`, any case.
pub(crate) fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{text:?} is not a log format (text or json)")),
    }
}

/// `database_driver`: `sqlite`; Eremetic's drivers are refused with an explanation.
pub(crate) fn parse_database_driver(text: &str) -> Result<DatabaseDriver, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "sqlite" => Ok(DatabaseDriver::Sqlite),
        driver @ ("boltdb" | "zk") => Err(format!(
            "{driver:?} is one of Eremetic's drivers; this server stores tasks in an embedded \
             SQLite database: use database_driver: sqlite (or remove the key) and point \
             `database` at a file path"
        )),
        _ => Err(format!("{text:?} is not a database driver (only sqlite)")),
    }
}

/// `docker_host`: `unix:///absolute/path`, `tcp://host:port` or `http://host:port`.
pub(crate) fn parse_docker_host(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if let Some(path) = trimmed.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(format!(
                "{text:?}: a unix socket path must be absolute (unix:///var/run/docker.sock)"
            ));
        }
        return Ok(trimmed.to_owned());
    }
    for scheme in ["tcp://", "http://"] {
        if let Some(authority) = trimmed.strip_prefix(scheme) {
            if authority.is_empty() || authority.contains(char::is_whitespace) {
                return Err(format!("{text:?} has no host after {scheme}"));
            }
            return Ok(trimmed.to_owned());
        }
    }
    Err(format!(
        "{text:?} is not a Docker endpoint (unix:///path, tcp://host:port or http://host:port)"
    ))
}

/// A path that must be absolute.
pub(crate) fn parse_absolute_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text.trim());
    if !path.is_absolute() {
        return Err(format!("{text:?} is not an absolute path"));
    }
    Ok(path)
}

/// A non-empty string without leading or trailing spaces.
pub(crate) fn parse_non_empty(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(trimmed.to_owned())
}

/// Splits a comma-separated list (environment and flag syntax); blanks around items are
/// dropped, empty items are kept so that the item parser can name them.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(|item| item.trim().to_owned()).collect()
}

/// `MemTotal` of `/proc/meminfo`, in MiB.
pub(crate) fn parse_meminfo_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let mut fields = line["MemTotal:".len()..].split_whitespace();
    let amount: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(amount / 1024),
        Some(_) => None,
    }
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
