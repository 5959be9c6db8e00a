//! The `master` configuration value: one master reached over HTTP, or a ZooKeeper ensemble
//! where the masters elect their leader.
//!
//! Accepted forms (reference: Mesos `MasterDetector::create`, `zookeeper::URL::parse`):
//! - `host:port` and `master@host:port` — one master over plain HTTP;
//! - `http://host:port[/prefix]` and `https://host:port[/prefix]` — one master, with the
//!   scheme to use (the prefix is for masters behind a reverse proxy);
//! - `zk://[user:password@]host1:port1,host2:port2/path` — a ZooKeeper target.
//!
//! A missing port defaults to 5050 for masters and 2181 for ZooKeeper servers. Hosts may be
//! bracketed IPv6 literals (`[::1]:5050`).
//!
//! This module parses the target and implements the pure parts of leader detection
//! ([`leader_node`], [`master_from_node`]); [`super::detector::MasterDetector`] does the
//! ZooKeeper I/O (children with a watch, the leader's data, re-detection on changes).

use std::fmt;

use prost::Message;

use super::MesosError;

/// Port of a master when the value names none.
pub const DEFAULT_MASTER_PORT: u16 = 5050;

/// Port of a ZooKeeper server when the value names none.
pub const DEFAULT_ZOOKEEPER_PORT: u16 = 2181;

/// A parsed `master` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterUrl {
    /// One master, reached over HTTP(S).
    Http(HttpMaster),
    /// A ZooKeeper ensemble holding the masters' leader election.
    ZooKeeper(ZkTarget),
}

/// HTTP or HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One master's HTTP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpMaster {
    /// Scheme.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path prefix before `/api/v1/scheduler` (empty, or starting with `/` and not ending
    /// with it).
    pub path_prefix: String,
}

impl HttpMaster {
    /// `scheme://host:port` (IPv6 hosts bracketed).
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}:{}{}",
            self.scheme.as_str(),
            bracket(&self.host),
            self.port,
            self.path_prefix
        )
    }

    /// The scheduler API endpoint, `<base>/api/v1/scheduler`.
    pub fn scheduler_endpoint(&self) -> String {
        format!("{}/api/v1/scheduler", self.base_url())
    }
}

/// One ZooKeeper server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkServer {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

/// ZooKeeper `digest` credentials (`user:password`).
#[derive(Clone, PartialEq, Eq)]
pub struct ZkCredentials {
    /// User name.
    pub username: String,
    password: String,
}

impl ZkCredentials {
    /// The password, for the ZooKeeper session only.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The `digest` scheme's authentication data, `user:password`.
    pub fn digest(&self) -> String {
        format!("{}:{}", self.username, self.password)
    }
}

impl fmt::Debug for ZkCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkCredentials")
            .field("username", &self.username)
            .field("password", &crate::task::MASK)
            .finish()
    }
}

/// Where the masters' leader election lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkTarget {
    /// The ensemble's servers, in the configured order.
    pub servers: Vec<ZkServer>,
    /// Digest credentials, if any.
    pub credentials: Option<ZkCredentials>,
    /// The election znode (`/mesos`), absolute, never `/`.
    pub path: String,
}

impl ZkTarget {
    /// The connect string of a ZooKeeper client: `h1:p1,h2:p2` (the path is separate).
    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(|server| format!("{}:{}", bracket(&server.host), server.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URL with the password masked: `zk://user:<mask>@h1:p1,h2:p2/path`.
    pub fn masked_url(&self) -> String {
        let credentials = self
            .credentials
            .as_ref()
            .map_or_else(String::new, |credentials| {
                format!("{}:{}@", credentials.username, crate::task::MASK)
            });
        format!("zk://{credentials}{}{}", self.connect_string(), self.path)
    }
}

impl MasterUrl {
    /// Parses a `master` value; errors name the value and what is wrong with it.
    pub fn parse(value: &str) -> Result<MasterUrl, MesosError> {
        let invalid = |why: &str| MesosError::InvalidMaster {
            value: value.to_owned(),
            why: why.to_owned(),
        };
        let text = value.trim();
        if text.is_empty() {
            return Err(invalid("the value is empty"));
        }
        if let Some(rest) = text.strip_prefix("zk://") {
            return parse_zk(rest)
                .map(MasterUrl::ZooKeeper)
                .map_err(|why| invalid(&why));
        }
        if text.starts_with("file://") {
            return Err(invalid(
                "file:// master values are deprecated in Mesos and not supported; put the \
                 content of the file in the value",
            ));
        }
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if text.contains("://") {
            return Err(invalid(
                "unsupported scheme: use http://, https:// or zk://",
            ));
        } else {
            (Scheme::Http, text.strip_prefix("master@").unwrap_or(text))
        };
        parse_http(scheme, rest, !text.contains("://"))
            .map(MasterUrl::Http)
            .map_err(|why| invalid(&why))
    }
}

fn parse_http(scheme: Scheme, rest: &str, bare: bool) -> Result<HttpMaster, String> {
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    if bare && !path.is_empty() {
        return Err("a path needs an explicit http:// or https:// scheme".to_owned());
    }
    if authority.contains('@') {
        return Err("credentials are not allowed in a master URL".to_owned());
    }
    if path.contains(['?', '#']) {
        return Err("a master URL may not have a query or fragment".to_owned());
    }
    let (host, port) = host_port(authority, DEFAULT_MASTER_PORT)?;
    Ok(HttpMaster {
        scheme,
        host,
        port,
        path_prefix: path.trim_end_matches('/').to_owned(),
    })
}

fn parse_zk(rest: &str) -> Result<ZkTarget, String> {
    // As Mesos: the path starts at the first '/', credentials precede the last '@'.
    let Some(slash) = rest.find('/') else {
        return Err("a zk:// URL needs a path, e.g. zk://zk1:2181/mesos".to_owned());
    };
    let (hosts_part, path) = rest.split_at(slash);
    if path == "/" {
        return Err("the ZooKeeper path may not be / alone".to_owned());
    }
    if path.ends_with('/') || path.contains("//") {
        return Err(format!(
            "ZooKeeper path {path:?} has an empty component or a trailing /"
        ));
    }
    let (credentials, servers) = match hosts_part.rfind('@') {
        Some(at) => (Some(credentials(&hosts_part[..at])?), &hosts_part[at + 1..]),
        None => (None, hosts_part),
    };
    if servers.is_empty() {
        return Err("a zk:// URL needs at least one host:port".to_owned());
    }
    let servers = servers
        .split(',')
        .map(|server| {
            host_port(server, DEFAULT_ZOOKEEPER_PORT).map(|(host, port)| ZkServer { host, port })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ZkTarget {
        servers,
        credentials,
        path: path.to_owned(),
    })
}

fn credentials(text: &str) -> Result<ZkCredentials, String> {
    match text.split_once(':') {
        Some((username, password)) if !username.is_empty() => Ok(ZkCredentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }),
        _ => Err("ZooKeeper credentials must be user:password".to_owned()),
    }
}

/// Splits `host[:port]` / `[v6][:port]`, validating both parts.
fn host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("{text:?}: unterminated [ in an IPv6 address"));
        };
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("{text:?}: expected :port after the IPv6 address"))?,
            ),
        };
        (host, port)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{text:?}: the host is empty"));
    }
    if let Some(bad) = host
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | ',' | '[' | ']'))
    {
        return Err(format!("{text:?}: the host contains {bad:?}"));
    }
    let port = match port {
        None => default_port,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => {
                return Err(format!(
                    "{text:?}: port {port:?} is not a number in 1-65535"
                ))
            }
        },
    };
    Ok((host.to_owned(), port))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The leading master's znode among the children of the election path: the member with the
/// smallest sequence number. Members are named `<label>_<seq>` (`json.info_0000000012`,
/// `info_0000000003`) or are all digits; other children (`log_replicas`) are skipped.
pub fn leader_node<'a>(children: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    children
        .into_iter()
        .filter_map(|name| sequence(name).map(|seq| (seq, name)))
        .min_by_key(|(seq, _)| *seq)
        .map(|(_, name)| name)
}

fn sequence(name: &str) -> Option<u64> {
    let digits = name.rsplit('_').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The leading master's address from the data of its znode, by the node's label:
/// `json.info_` holds `MasterInfo` as JSON, `info_` as binary protobuf, and an unlabelled
/// node the string `master@ip:port`. The master is reached over plain HTTP.
pub fn master_from_node(node: &str, data: &[u8]) -> Result<HttpMaster, MesosError> {
    let invalid = |why: String| MesosError::InvalidMasterInfo {
        node: node.to_owned(),
        why,
    };
    let label = node.split_once('_').map_or("", |(label, _)| label);
    let info = match label {
        "json.info" => mesos_proto::json::from_slice::<mesos_proto::v1::MasterInfo>(data)
            .map_err(|error| invalid(format!("not MasterInfo JSON: {error}")))?,
        "info" => mesos_proto::v1::MasterInfo::decode(data)
            .map_err(|error| invalid(format!("not a MasterInfo protobuf: {error}")))?,
        "" => {
            let text = std::str::from_utf8(data)
                .map_err(|_| invalid("the master pid is not UTF-8".to_owned()))?;
            let (host, port) = host_port(text.trim().trim_start_matches("master@"), 5050)
                .map_err(|why| invalid(format!("bad master pid: {why}")))?;
            return Ok(HttpMaster {
                scheme: Scheme::Http,
                host,
                port,
                path_prefix: String::new(),
            });
        }
        other => return Err(invalid(format!("unknown node label {other:?}"))),
    };
    master_from_info(&info).map_err(invalid)
}

/// The HTTP address of a `MasterInfo`, as Mesos' v1 scheduler library reaches a detected
/// master (`scheduler.cpp`, `detected`: the IP and port of `MasterInfo.pid`): the `pid`'s
/// address when it has one, else `address` (ip preferred, then hostname), else the legacy
/// `hostname`/`ip` (IPv4 in network byte order) and `port` fields.
pub fn master_from_info(info: &mesos_proto::v1::MasterInfo) -> Result<HttpMaster, String> {
    let http = |host: String, port: u32| -> Result<HttpMaster, String> {
        let port = u16::try_from(port)
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("master port {port} is not in 1-65535"))?;
        Ok(HttpMaster {
            scheme: Scheme::Http,
            host,
            port,
            path_prefix: String::new(),
        })
    };
    if let Some(pid) = info.pid.as_deref().filter(|pid| !pid.is_empty()) {
        let address = pid.split_once('@').map_or(pid, |(_, address)| address);
        let (host, port) = host_port(address, DEFAULT_MASTER_PORT)
            .map_err(|why| format!("bad master pid {pid:?}: {why}"))?;
        return http(host, u32::from(port));
    }
    if let Some(address) = &info.address {
        let host = address
            .ip
            .clone()
            .filter(|ip| !ip.is_empty())
            .or_else(|| address.hostname.clone().filter(|host| !host.is_empty()));
        if let Some(host) = host {
            let port = u32::try_from(address.port).unwrap_or(0);
            return http(host, port);
        }
    }
    let host = match info.hostname.clone().filter(|host| !host.is_empty()) {
        Some(host) => host,
        // Network byte order stored in a host integer: the first octet is the low byte.
        None => std::net::Ipv4Addr::from(info.ip.to_le_bytes()).to_string(),
    };
    http(host, info.port)
}

#[cfg(test)]
#[path = "master_url_tests.rs"]
mod tests;
