//! Parsers for the values of docker-run options, with docker's syntax and semantics.
//!
//! Each parser returns an [`Invalid`] on bad input: what kind of value it expected and why the
//! text does not fit. The flag parser turns it into an
//! [`OptionsError::InvalidValue`](super::OptionsError::InvalidValue) naming the option.

use std::path::PathBuf;

use crate::spec::{EnvVar, NetworkMode, PortMapping, Protocol, VolumeMount};

/// Most ports one `-p` value may expand to. Deimos turned a 1001-port range into 1001 `-p`
/// flags (D-1); a typo such as `1-65535:1-65535` must not become 65535 port bindings.
pub const MAX_PORTS_PER_OPTION: usize = 1024;

/// Why an option value was rejected: the kind of value and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    /// The kind of value, e.g. `memory`, `port mapping`.
    pub(super) what: &'static str,
    /// What was expected or what is wrong.
    pub(super) reason: String,
}

impl Invalid {
    fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self {
            what,
            reason: reason.into(),
        }
    }
}

/// Parses a boolean like docker's flag library (Go's `strconv.ParseBool`).
pub(super) fn parse_bool(text: &str) -> Result<bool, Invalid> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Invalid::new("boolean", "expected true or false")),
    }
}

/// Parses a memory size with docker's semantics: a number (decimals allowed) with an optional
/// binary unit suffix `b`, `k`, `m` or `g` (also `kb`, `kib`, …), case-insensitive; a plain
/// number is bytes.
pub(super) fn parse_memory(text: &str) -> Result<u64, Invalid> {
    let invalid = || {
        Invalid::new(
            "memory",
            "expected a number with an optional b, k, m or g suffix",
        )
    };
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(invalid());
    }
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let suffix = suffix
        .strip_prefix(' ')
        .unwrap_or(suffix)
        .to_ascii_lowercase();
    let unit: u64 = match suffix.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "ki" | "kib" => 1 << 10,
        "m" | "mb" | "mi" | "mib" => 1 << 20,
        "g" | "gb" | "gi" | "gib" => 1 << 30,
        _ => return Err(invalid()),
    };
    let bytes = number * unit as f64;
    // Docker's API takes a signed 64-bit number of bytes.
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(Invalid::new("memory", "too large"));
    }
    Ok(bytes as u64)
}

/// Parses a number of CPUs for `--cpus` (a positive decimal, `0` meaning no limit).
pub(super) fn parse_cpus(text: &str) -> Result<f64, Invalid> {
    let invalid = || {
        Invalid::new(
            "number of CPUs",
            "expected a decimal number such as 0.5 or 2",
        )
    };
    let cpus: f64 = text.trim().parse().map_err(|_| invalid())?;
    if !(0.0..=1_000_000.0).contains(&cpus) {
        return Err(invalid());
    }
    Ok(cpus)
}

/// Parses CPU shares for `-c` (a non-negative integer, `0` meaning docker's default).
pub(super) fn parse_cpu_shares(text: &str) -> Result<u64, Invalid> {
    text.parse::<u64>()
        .ok()
        .filter(|shares| *shares <= i64::MAX as u64)
        .ok_or_else(|| Invalid::new("CPU shares", "expected a whole number such as 1024"))
}

/// Parses `NAME=value`. A bare `NAME` (docker copies the value from the client's environment)
/// is rejected: here that would leak the agent's environment into the task.
pub(super) fn parse_env(text: &str) -> Result<EnvVar, Invalid> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(Invalid::new(
            "environment variable",
            "expected NAME=value (a bare NAME would copy the value from the agent's environment)",
        ));
    };
    if name.is_empty() {
        return Err(Invalid::new(
            "environment variable",
            "the name before '=' is empty",
        ));
    }
    if name.contains('\0') || value.contains('\0') {
        return Err(Invalid::new(
            "environment variable",
            "contains a NUL character",
        ));
    }
    Ok(EnvVar::new(name, value))
}

/// Label keys under this prefix identify containers (see [`crate::spec::labels`]); a task must
/// not forge or override them.
pub(super) const RESERVED_LABEL_PREFIX: &str = "io.deimos.";

/// Parses `key=value` or `key` (empty value), as docker does for `-l`.
pub(super) fn parse_label(text: &str) -> Result<(String, String), Invalid> {
    let (key, value) = text.split_once('=').unwrap_or((text, ""));
    if key.is_empty() {
        return Err(Invalid::new("label", "the key before '=' is empty"));
    }
    if key.starts_with(RESERVED_LABEL_PREFIX) {
        return Err(Invalid::new(
            "label",
            format!("keys starting with {RESERVED_LABEL_PREFIX:?} are reserved for deimos"),
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Parses an `--add-host` entry `host:ip` (the IP may be IPv6 and contain `:`).
pub(super) fn parse_add_host(text: &str) -> Result<String, Invalid> {
    match text.split_once(':') {
        Some((host, ip)) if !host.is_empty() && !ip.is_empty() => Ok(text.to_owned()),
        _ => Err(Invalid::new("extra host", "expected host:ip")),
    }
}

/// Parses a `--net`/`--network` value.
pub(super) fn parse_network(text: &str) -> Result<NetworkMode, Invalid> {
    NetworkMode::parse(text).ok_or_else(|| {
        Invalid::new(
            "network",
            "expected bridge, host, none, container:<name> or a network name",
        )
    })
}

/// Parses `--volumes-from container[:ro|:rw]`.
pub(super) fn parse_volumes_from(text: &str) -> Result<String, Invalid> {
    let container = match text.rsplit_once(':') {
        Some((container, "ro" | "rw")) => container,
        Some(_) => {
            return Err(Invalid::new("volumes-from", "expected container[:ro|:rw]"));
        }
        None => text,
    };
    if container.is_empty() {
        return Err(Invalid::new("volumes-from", "the container name is empty"));
    }
    Ok(text.to_owned())
}

/// A value that must not be empty (`--dns`, `--user`, `--hostname`, capabilities, …).
pub(super) fn parse_non_empty(what: &'static str, text: &str) -> Result<String, Invalid> {
    if text.is_empty() {
        return Err(Invalid::new(what, "must not be empty"));
    }
    Ok(text.to_owned())
}

/// Parses a bind mount `host:container[:ro|rw]` in docker's `-v` syntax.
///
/// Only bind mounts of absolute host paths are supported: named and anonymous volumes would
/// outlive the task on the agent. Because `:` separates the fields, a host path containing `:`
/// cannot be expressed this way (the sandbox mount does not go through this syntax).
pub(super) fn parse_volume(text: &str) -> Result<VolumeMount, Invalid> {
    let invalid = |reason: &str| Invalid::new("volume", reason);
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, mode) =
        match parts.as_slice() {
            [_] => return Err(invalid(
                "anonymous volumes are not supported: expected /host/path:/container/path[:ro|rw]",
            )),
            [host, container] => (*host, *container, None),
            [host, container, mode] => (*host, *container, Some(*mode)),
            _ => {
                return Err(invalid(
                    "too many ':' (host paths containing ':' cannot be mounted with this syntax)",
                ))
            }
        };
    if host.is_empty() {
        return Err(invalid("the host path is empty"));
    }
    if !host.starts_with('/') {
        let kind = if host.starts_with('.') || host.contains('/') {
            "relative host paths are not supported: the host path must be absolute"
        } else {
            "named volumes are not supported, only bind mounts of absolute host paths"
        };
        return Err(invalid(kind));
    }
    if !container.starts_with('/') {
        return Err(invalid("the container path must be absolute"));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(_) => return Err(invalid("the mode must be ro or rw")),
    };
    Ok(VolumeMount {
        host_path: PathBuf::from(host),
        container_path: container.into(),
        read_only,
    })
}

/// Parses a published port: `[ip:][host:]container[/proto]`, where `host` and `container` may
/// be ranges of equal length (`8000-8001:80-81`); a missing or empty host port means 0 (docker
/// picks one). Binding to a specific host address is rejected: the spec publishes on all
/// addresses.
pub(super) fn parse_publish(text: &str) -> Result<Vec<PortMapping>, Invalid> {
    let invalid = |reason: String| Invalid::new("port mapping", reason);
    let (addresses, protocol) = match text.rsplit_once('/') {
        Some((rest, proto)) => {
            let protocol = Protocol::parse(proto).ok_or_else(|| {
                invalid(format!(
                    "unknown protocol {proto:?}: expected tcp, udp or sctp"
                ))
            })?;
            (rest, protocol)
        }
        None => (text, Protocol::Tcp),
    };
    let (ip, host, container) = split_publish(addresses).map_err(invalid)?;
    if let Some(ip) = ip {
        if !matches!(ip, "" | "0.0.0.0" | "::" | "[::]") {
            return Err(invalid(format!(
                "binding to host address {ip:?} is not supported: ports are published on all \
                 addresses"
            )));
        }
    }
    let container = parse_port_range(container, "container").map_err(invalid)?;
    let host = match host {
        None | Some("") => None,
        Some(host) => Some(parse_port_range(host, "host").map_err(invalid)?),
    };
    expand_ports(host, container, protocol).map_err(invalid)
}

/// Splits `[ip:][host:]container` into its parts (an IPv6 address must be in brackets).
fn split_publish(text: &str) -> Result<(Option<&str>, Option<&str>, &str), String> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (ip, rest) = bracketed
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in the host address".to_owned())?;
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| "expected ':' after the bracketed host address".to_owned())?;
        let (host, container) = rest
            .split_once(':')
            .ok_or_else(|| "expected [ip]:host:container".to_owned())?;
        return Ok((
            Some(if ip == "::" { "::" } else { ip }),
            Some(host),
            container,
        ));
    }
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [container] => Ok((None, None, container)),
        [host, container] => Ok((None, Some(host), container)),
        [ip, host, container] => Ok((Some(ip), Some(host), container)),
        _ => Err("expected [ip:][host:]container[/protocol]".to_owned()),
    }
}

/// Parses `port` or `first-last` (inclusive) into a range of ports.
fn parse_port_range(text: &str, side: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "invalid {side} port {p:?}: expected a number from 1 to 65535"
            )),
        }
    };
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (port(first)?, port(last)?),
        None => {
            let single = port(text)?;
            (single, single)
        }
    };
    if first > last {
        return Err(format!("{side} port range {text:?} ends before it starts"));
    }
    Ok((first, last))
}

/// Pairs host and container port ranges, enforcing [`MAX_PORTS_PER_OPTION`].
fn expand_ports(
    host: Option<(u16, u16)>,
    container: (u16, u16),
    protocol: Protocol,
) -> Result<Vec<PortMapping>, String> {
    let count = usize::from(container.1 - container.0) + 1;
    if count > MAX_PORTS_PER_OPTION {
        return Err(format!(
            "the range covers {count} ports, more than the limit of {MAX_PORTS_PER_OPTION}"
        ));
    }
    if let Some(host) = host {
        let host_count = usize::from(host.1 - host.0) + 1;
        if host_count != count {
            return Err(format!(
                "the host range has {host_count} ports but the container range has {count}"
            ));
        }
    }
    Ok((0..count)
        .map(|offset| {
            // `offset < count <= 65535`, and both ranges have `count` ports, so no overflow.
            let offset = offset as u16;
            PortMapping {
                host_port: host.map_or(0, |(first, _)| first + offset),
                container_port: container.0 + offset,
                protocol,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_follow_docker_units() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1024", 1024),
            ("100b", 100),
            ("4k", 4096),
            ("4KB", 4096),
            ("512m", 512 << 20),
            ("512MiB", 512 << 20),
            ("1g", 1 << 30),
            ("1.5g", 3 << 29),
            ("2 g", 2 << 30),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_memory(text), Ok(*bytes), "{text}");
        }
    }

    #[test]
    fn malformed_memory_sizes_are_rejected() {
        for text in [
            "",
            "12x",
            "m",
            "-1m",
            "1..5m",
            ".5m",
            "5.m",
            "1t",
            "1g ",
            "99999999999g",
        ] {
            assert!(parse_memory(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn booleans_follow_go_parse_bool() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool("F"), Ok(false));
        assert!(parse_bool("yes").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn volume_syntax_accepts_absolute_bind_mounts_only() {
        let mount = parse_volume("/a:/b:ro").unwrap();
        assert_eq!(mount.host_path, PathBuf::from("/a"));
        assert_eq!(mount.container_path, "/b");
        assert!(mount.read_only);
        assert!(!parse_volume("/a:/b").unwrap().read_only);
        assert!(!parse_volume("/a:/b:rw").unwrap().read_only);
        let reason = |text| parse_volume(text).unwrap_err().reason;
        assert!(reason("data:/b").contains("named volumes"));
        assert!(reason("./data:/b").contains("relative"));
        assert!(reason("/data").contains("anonymous"));
        assert!(reason("/a:b").contains("container path"));
        assert!(reason("/a:/b:z").contains("ro or rw"));
        assert!(reason("/a:1:/b:ro").contains("too many"));
        assert!(reason(":/b").contains("empty"));
    }

    fn tcp(host_port: u16, container_port: u16) -> PortMapping {
        PortMapping {
            host_port,
            container_port,
            protocol: Protocol::Tcp,
        }
    }

    #[test]
    fn port_mappings_follow_docker_syntax() {
        let udp = PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Udp,
        };
        let cases: Vec<(&str, Vec<PortMapping>)> = vec![
            ("80", vec![tcp(0, 80)]),
            ("80/tcp", vec![tcp(0, 80)]),
            ("8080:80", vec![tcp(8080, 80)]),
            ("8080:80/udp", vec![udp]),
            ("0.0.0.0:8080:80", vec![tcp(8080, 80)]),
            ("0.0.0.0::80", vec![tcp(0, 80)]),
            ("[::]:8080:80", vec![tcp(8080, 80)]),
            ("8000-8001:80-81", vec![tcp(8000, 80), tcp(8001, 81)]),
            ("80-81", vec![tcp(0, 80), tcp(0, 81)]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_publish(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn malformed_port_mappings_are_rejected_with_a_reason() {
        let cases = [
            ("", "container port"),
            ("0", "container port"),
            ("70000", "container port"),
            ("80/icmp", "unknown protocol"),
            ("127.0.0.1:8080:80", "not supported"),
            ("8000-8002:80-81", "host range has 3"),
            ("81-80", "ends before"),
            ("1-2000", "limit of 1024"),
            ("a:b:c:d", "expected"),
            ("[::1:80:80", "unclosed"),
        ];
        for (text, reason) in cases {
            let error = parse_publish(text).unwrap_err();
            assert!(error.reason.contains(reason), "{text}: {}", error.reason);
        }
    }

    #[test]
    fn port_range_at_the_cap_is_accepted() {
        assert_eq!(
            parse_publish("1000-2023").unwrap().len(),
            MAX_PORTS_PER_OPTION
        );
        assert_eq!(
            parse_publish("65535:65535").unwrap(),
            vec![tcp(65535, 65535)]
        );
    }

    #[test]
    fn env_requires_a_name_and_an_explicit_value() {
        assert_eq!(parse_env("A=1=2"), Ok(EnvVar::new("A", "1=2")));
        assert_eq!(parse_env("A="), Ok(EnvVar::new("A", "")));
        assert!(parse_env("A")
            .unwrap_err()
            .reason
            .contains("agent's environment"));
        assert!(parse_env("=1").is_err());
    }

    #[test]
    fn labels_may_omit_the_value_but_not_use_reserved_keys() {
        assert_eq!(parse_label("a=b"), Ok(("a".into(), "b".into())));
        assert_eq!(parse_label("a"), Ok(("a".into(), String::new())));
        assert!(parse_label("=b").is_err());
        assert!(parse_label("io.deimos.owner=x")
            .unwrap_err()
            .reason
            .contains("reserved"));
    }

    #[test]
    fn small_values_are_validated() {
        assert_eq!(parse_add_host("db:10.0.0.1"), Ok("db:10.0.0.1".into()));
        assert_eq!(parse_add_host("db:::1"), Ok("db:::1".into()));
        assert!(parse_add_host("db").is_err());
        assert_eq!(parse_volumes_from("data:ro"), Ok("data:ro".into()));
        assert!(parse_volumes_from("data:x").is_err());
        assert!(parse_volumes_from(":ro").is_err());
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("NaN").is_err());
        assert_eq!(parse_cpu_shares("512"), Ok(512));
        assert!(parse_cpu_shares("1.5").is_err());
        assert!(parse_network("container:").is_err());
        assert!(parse_non_empty("user", "").is_err());
    }
}
