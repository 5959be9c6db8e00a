//! Submit bodies (v1 and v0) parsed and validated into a [`NewTask`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::error::{Problem, ValidationErrors};
use super::json::{member, Collector};
use crate::task::{
    sandbox_relative_path, AgentConstraint, CallbackStates, FetchUri, Network, NewTask,
    PortProtocol, PortRequest, Secret, Volume, DEFAULT_USER,
};

/// Largest accepted body (1 MiB, Eremetic's read limit). Eremetic truncates longer bodies and
/// then fails to parse them (E-31); here they are rejected as too large.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Smallest accepted memory request in MiB: Docker refuses memory limits below 6 MiB.
pub const MIN_MEM_MIB: f64 = 6.0;

/// Largest accepted `timeout`: one year, in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 60 * 60;

/// Largest accepted `retries`.
pub const MAX_RETRIES: i64 = 100;

/// Longest accepted task name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// The keys that differ between API versions.
struct Keys {
    cpu: &'static str,
    mem: &'static str,
    image: &'static str,
    agent_constraints: &'static str,
}

const V1: Keys = Keys {
    cpu: "cpu",
    mem: "mem",
    image: "image",
    agent_constraints: "agent_constraints",
};

const V0: Keys = Keys {
    cpu: "task_cpus",
    mem: "task_mem",
    image: "docker_image",
    agent_constraints: "slave_constraints",
};

/// Parses and validates a v1 submit body (`POST /api/v1/task`).
///
/// Keys follow Go's `encoding/json` rules (case-insensitive, unknown keys ignored, a `null`
/// body or member counts as absent). Unlike Eremetic, which validates nothing (E-17), every
/// field is checked and every problem is reported. Besides Eremetic's keys, `uris` (v0 only in
/// Eremetic), `user` (default `root`, Eremetic's), `timeout` (seconds, 0 = none), `retries`
/// and `callback_states` (`terminal` or `all`) are accepted.
pub fn parse_v1(body: &[u8]) -> Result<NewTask, ValidationErrors> {
    parse(body, &V1)
}

/// Parses and validates a v0 submit body (`POST /task`): as [`parse_v1`] but with the keys
/// `task_cpus`, `task_mem`, `docker_image` and `slave_constraints`. `volumes_from`, missing
/// from Eremetic's v0 (E-29), is accepted too.
pub fn parse_v0(body: &[u8]) -> Result<NewTask, ValidationErrors> {
    parse(body, &V0)
}

fn parse(body: &[u8], keys: &Keys) -> Result<NewTask, ValidationErrors> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ValidationErrors::single(
            "body",
            Problem::TooLarge {
                size: body.len(),
                limit: MAX_BODY_BYTES,
            },
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        let (line, column) = (error.line(), error.column());
        let text = error.to_string();
        let suffix = format!(" at line {line} column {column}");
        let detail = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
        ValidationErrors::single(
            "body",
            Problem::InvalidJson {
                line,
                column,
                detail,
            },
        )
    })?;
    let empty = Map::new();
    let object = match &value {
        Value::Null => &empty,
        Value::Object(object) => object,
        other => {
            return Err(ValidationErrors::single(
                "body",
                Problem::WrongType {
                    expected: "an object",
                    found: super::json::kind(other),
                },
            ))
        }
    };
    let mut reader = Reader {
        object,
        out: Collector::default(),
    };
    let task = reader.task(keys);
    if reader.out.errors.is_empty() {
        Ok(task)
    } else {
        Err(ValidationErrors {
            errors: reader.out.errors,
        })
    }
}

struct Reader<'v> {
    object: &'v Map<String, Value>,
    out: Collector,
}

impl<'v> Reader<'v> {
    fn get(&self, key: &str) -> Option<&'v Value> {
        member(self.object, key)
    }

    /// A string member; absent and empty both give `None`.
    fn text(&mut self, key: &str) -> Option<&'v str> {
        let value = self.get(key)?;
        self.out.string(key, value).filter(|text| !text.is_empty())
    }

    fn flag(&mut self, key: &str) -> bool {
        self.get(key)
            .and_then(|value| self.out.boolean(key, value))
            .unwrap_or(false)
    }

    fn task(&mut self, keys: &Keys) -> NewTask {
        let env = self.env("env");
        let masked_env = self.env("masked_env");
        for name in masked_env.keys().filter(|name| env.contains_key(*name)) {
            self.out.push(
                format!("masked_env.{name}"),
                Problem::Invalid("is also set in env, which would expose it".into()),
            );
        }
        let mut fetch = self.uris();
        let uris_count = fetch.len();
        fetch.extend(self.fetch());
        NewTask {
            name: self.name(),
            image: self.image(keys.image),
            command: self.command(),
            args: self.args(),
            cpu: self.cpu(keys.cpu),
            mem: self.mem(keys.mem),
            env,
            masked_env: masked_env
                .into_iter()
                .map(|(name, value)| (name, Secret::new(value)))
                .collect(),
            labels: self.labels(),
            volumes: self.volumes(),
            volumes_from: self.volumes_from(),
            ports: self.ports(),
            network: self.network(),
            dns: self.dns(),
            agent_constraints: self.constraints(keys.agent_constraints),
            callback_uri: self.callback_uri(),
            callback_states: self.callback_states(),
            fetch,
            uris_count,
            force_pull_image: self.flag("force_pull_image"),
            privileged: self.flag("privileged"),
            user: Some(self.user().unwrap_or_else(|| DEFAULT_USER.to_owned())),
            timeout_secs: self.timeout(),
            retries: self.retries(),
        }
    }

    fn name(&mut self) -> Option<String> {
        let name = self.text("name")?;
        if name.len() > MAX_NAME_LEN {
            let reason = format!(
                "is {} bytes long, at most {MAX_NAME_LEN} allowed",
                name.len()
            );
            self.out.push("name", Problem::Invalid(reason));
        } else if name.chars().any(char::is_control) {
            let reason = "must not contain control characters".to_owned();
            self.out.push("name", Problem::Invalid(reason));
        }
        Some(name.to_owned())
    }

    fn image(&mut self, key: &str) -> String {
        let Some(image) = self.text(key) else {
            if self.get(key).is_none_or(Value::is_string) {
                self.out.push(key, Problem::Required);
            }
            return String::new();
        };
        if let Err(why) = super::image_ref::check_image_reference(image) {
            let reason = format!("is not a Docker image reference: {why}");
            self.out.push(key, Problem::Invalid(reason));
        }
        image.to_owned()
    }

    fn command(&mut self) -> Option<String> {
        let command = self.text("command")?;
        if command.contains('\0') {
            let reason = "must not contain NUL characters".to_owned();
            self.out.push("command", Problem::Invalid(reason));
        }
        Some(command.to_owned())
    }

    fn args(&mut self) -> Vec<String> {
        let Some(value) = self.get("args") else {
            return Vec::new();
        };
        let args = self.out.strings("args", value);
        for (index, arg) in &args {
            if arg.contains('\0') {
                let reason = "must not contain NUL characters".to_owned();
                self.out
                    .push(format!("args[{index}]"), Problem::Invalid(reason));
            }
        }
        args.into_iter().map(|(_, arg)| arg.to_owned()).collect()
    }

    fn cpu(&mut self, key: &str) -> f64 {
        let Some(value) = self.get(key) else {
            self.out.push(key, Problem::Required);
            return 0.0;
        };
        let cpu = self.out.number(key, value).unwrap_or(0.0);
        if value.is_number() && !(cpu > 0.0 && cpu.is_finite()) {
            self.out.push(key, Problem::NotPositive(cpu));
        }
        cpu
    }

    fn mem(&mut self, key: &str) -> f64 {
        let Some(value) = self.get(key) else {
            self.out.push(key, Problem::Required);
            return 0.0;
        };
        let mem = self.out.number(key, value).unwrap_or(0.0);
        if value.is_number() && !(mem >= MIN_MEM_MIB && mem.is_finite()) {
            let problem = Problem::TooSmall {
                minimum: MIN_MEM_MIB,
                value: mem,
            };
            self.out.push(key, problem);
        }
        mem
    }

    fn env(&mut self, key: &str) -> BTreeMap<String, String> {
        let Some(value) = self.get(key) else {
            return BTreeMap::new();
        };
        let mut env = BTreeMap::new();
        for (name, text) in self.out.string_map(key, value) {
            let reason = if name.is_empty() {
                Some("variable name is empty")
            } else if name.contains('=') {
                Some("variable name must not contain '='")
            } else if name.contains('\0') || text.contains('\0') {
                Some("must not contain NUL characters")
            } else {
                None
            };
            if let Some(reason) = reason {
                self.out
                    .push(format!("{key}.{name}"), Problem::Invalid(reason.into()));
            }
            env.insert(name.to_owned(), text.to_owned());
        }
        env
    }

    fn labels(&mut self) -> BTreeMap<String, String> {
        let Some(value) = self.get("labels") else {
            return BTreeMap::new();
        };
        let labels = self.out.string_map("labels", value);
        if labels.iter().any(|(name, _)| name.is_empty()) {
            let reason = "label name is empty".to_owned();
            self.out.push("labels", Problem::Invalid(reason));
        }
        labels
            .into_iter()
            .map(|(name, text)| (name.to_owned(), text.to_owned()))
            .collect()
    }

    /// The members of an array of objects, each with its `key[i]` path.
    fn objects(&mut self, key: &str) -> Vec<(String, &'v Map<String, Value>)> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let Some(items) = self.out.array(key, value) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let path = format!("{key}[{index}]");
                let object = self.out.object(&path, item)?;
                Some((path, object))
            })
            .collect()
    }

    /// A required, non-empty string member of a nested object.
    fn nested_text(
        &mut self,
        object: &'v Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<&'v str> {
        let path = format!("{parent}.{key}");
        let path = path.as_str();
        let Some(value) = member(object, key) else {
            self.out.push(path, Problem::Required);
            return None;
        };
        let text = self.out.string(path, value)?;
        if text.is_empty() {
            self.out.push(path, Problem::Required);
            return None;
        }
        Some(text)
    }

    fn absolute_path(&mut self, object: &'v Map<String, Value>, parent: &str, key: &str) -> String {
        let Some(text) = self.nested_text(object, parent, key) else {
            return String::new();
        };
        let path = format!("{parent}.{key}");
        if !text.starts_with('/') {
            self.out.push(&path, Problem::NotAbsolute(text.to_owned()));
        } else if text.contains(':') || text.contains('\0') {
            let reason = "must not contain ':' or NUL characters".to_owned();
            self.out.push(&path, Problem::Invalid(reason));
        }
        text.to_owned()
    }

    fn volumes(&mut self) -> Vec<Volume> {
        let mut volumes = Vec::new();
        for (path, object) in self.objects("volumes") {
            volumes.push(Volume {
                container_path: self.absolute_path(object, &path, "container_path"),
                host_path: self.host_path(object, &path),
            });
        }
        volumes
    }

    /// A volume's `host_path`: absolute (a host directory, within `allowed_host_paths`), or
    /// relative to the task's sandbox (Mesos' rule) without climbing out of it.
    fn host_path(&mut self, object: &'v Map<String, Value>, parent: &str) -> String {
        let Some(text) = self.nested_text(object, parent, "host_path") else {
            return String::new();
        };
        if text.starts_with('/') {
            return self.absolute_path(object, parent, "host_path");
        }
        if let Err(reason) = sandbox_relative_path(text) {
            let path = format!("{parent}.host_path");
            self.out.push(&path, Problem::Invalid(reason));
        }
        text.to_owned()
    }

    fn volumes_from(&mut self) -> Vec<String> {
        let Some(value) = self.get("volumes_from") else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for (index, name) in self.out.strings("volumes_from", value) {
            if name.is_empty() {
                continue;
            }
            if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                let reason = format!("{name:?} is not a container name");
                let field = format!("volumes_from[{index}]");
                self.out.push(field, Problem::Invalid(reason));
            }
            names.push(name.to_owned());
        }
        names
    }

    fn ports(&mut self) -> Vec<PortRequest> {
        let mut ports = Vec::new();
        for (path, object) in self.objects("ports") {
            let field = format!("{path}.container_port");
            let container_port = match member(object, "container_port") {
                None => {
                    self.out.push(field, Problem::Required);
                    None
                }
                // 0 means "the same as the host port" (Eremetic; hermit sends it when no port
                // was asked for).
                Some(value) => self.out.integer_in(&field, value, 0, 65535),
            };
            if let Some(value) = member(object, "host_port") {
                // Accepted for compatibility and ignored: host ports are assigned at launch.
                self.out
                    .integer_in(&format!("{path}.host_port"), value, 0, 65535);
            }
            let field = format!("{path}.protocol");
            let protocol = match member(object, "protocol") {
                None => Some(PortProtocol::Tcp),
                Some(value) => match self.out.string(&field, value) {
                    None => None,
                    Some("") => Some(PortProtocol::Tcp),
                    Some(text) if text.eq_ignore_ascii_case("tcp") => Some(PortProtocol::Tcp),
                    Some(text) if text.eq_ignore_ascii_case("udp") => Some(PortProtocol::Udp),
                    Some(text) => {
                        let problem = Problem::UnknownValue {
                            value: text.to_owned(),
                            expected: "tcp, udp",
                        };
                        self.out.push(field, problem);
                        None
                    }
                },
            };
            if let (Some(port), Some(protocol)) = (container_port, protocol) {
                ports.push(PortRequest {
                    container_port: u16::try_from(port).unwrap_or(0),
                    protocol,
                });
            }
        }
        ports
    }

    fn network(&mut self) -> Network {
        let Some(text) = self.text("network") else {
            return Network::Bridge;
        };
        let all = [Network::Bridge, Network::Host, Network::None, Network::User];
        match all
            .into_iter()
            .find(|n| n.as_str().eq_ignore_ascii_case(text))
        {
            Some(network) => network,
            None => {
                let problem = Problem::UnknownValue {
                    value: text.to_owned(),
                    expected: "BRIDGE, HOST, NONE, USER",
                };
                self.out.push("network", problem);
                Network::Bridge
            }
        }
    }

    fn dns(&mut self) -> Option<String> {
        let text = self.text("dns")?;
        if text.parse::<IpAddr>().is_err() {
            let reason = format!("{text:?} is not an IP address");
            self.out.push("dns", Problem::Invalid(reason));
        }
        Some(text.to_owned())
    }

    fn constraints(&mut self, key: &str) -> Vec<AgentConstraint> {
        let mut constraints = Vec::new();
        for (path, object) in self.objects(key) {
            let name = self.nested_text(object, &path, "attribute_name");
            let field = format!("{path}.attribute_value");
            let value = match member(object, "attribute_value") {
                None => {
                    self.out.push(field, Problem::Required);
                    None
                }
                Some(value) => self.out.string(&field, value),
            };
            if let (Some(name), Some(value)) = (name, value) {
                constraints.push(AgentConstraint {
                    attribute_name: name.to_owned(),
                    attribute_value: value.to_owned(),
                });
            }
        }
        constraints
    }

    fn callback_uri(&mut self) -> Option<String> {
        let uri = self.text("callback_uri")?;
        if let Err(reason) = check_http_url(uri) {
            self.out.push("callback_uri", Problem::Invalid(reason));
        }
        Some(uri.to_owned())
    }

    fn callback_states(&mut self) -> Option<CallbackStates> {
        let states = self.text("callback_states")?;
        CallbackStates::parse(states)
            .map_err(|reason| self.out.push("callback_states", Problem::Invalid(reason)))
            .ok()
    }

    fn uris(&mut self) -> Vec<FetchUri> {
        let Some(value) = self.get("uris") else {
            return Vec::new();
        };
        let mut fetch = Vec::new();
        for (index, uri) in self.out.strings("uris", value) {
            let field = format!("uris[{index}]");
            if let Err(reason) = check_fetch_uri(uri) {
                self.out.push(field, reason);
            }
            fetch.push(FetchUri::from_plain_uri(uri));
        }
        fetch
    }

    fn fetch(&mut self) -> Vec<FetchUri> {
        let mut fetch = Vec::new();
        for (path, object) in self.objects("fetch") {
            let field = format!("{path}.uri");
            let uri = self.nested_text(object, &path, "uri");
            if let Some(Err(reason)) = uri.map(check_fetch_uri) {
                self.out.push(field, reason);
            }
            let mut flag = |name: &str| {
                let field = format!("{path}.{name}");
                member(object, name)
                    .and_then(|value| self.out.boolean(&field, value))
                    .unwrap_or(false)
            };
            let (extract, executable, cache) = (flag("extract"), flag("executable"), flag("cache"));
            if let Some(uri) = uri {
                fetch.push(FetchUri {
                    uri: uri.to_owned(),
                    extract,
                    executable,
                    cache,
                });
            }
        }
        fetch
    }

    fn user(&mut self) -> Option<String> {
        let user = self.text("user")?;
        let valid_part = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        let mut parts = user.splitn(2, ':');
        let user_ok = parts.next().is_some_and(valid_part);
        if !(user_ok && parts.next().is_none_or(valid_part)) {
            let reason = format!("{user:?} is not a user name or id, optionally with :group");
            self.out.push("user", Problem::Invalid(reason));
        }
        Some(user.to_owned())
    }

    fn timeout(&mut self) -> Option<u64> {
        let value = self.get("timeout")?;
        let seconds = self.out.integer("timeout", value)?;
        if seconds < 0 {
            let seconds = i64::try_from(seconds).unwrap_or(i64::MIN);
            self.out.push("timeout", Problem::Negative(seconds));
            return None;
        }
        if seconds > MAX_TIMEOUT_SECS as i128 {
            let problem = Problem::OutOfRange {
                min: 0,
                max: MAX_TIMEOUT_SECS as i64,
                value: seconds,
            };
            self.out.push("timeout", problem);
            return None;
        }
        u64::try_from(seconds).ok().filter(|seconds| *seconds > 0)
    }

    fn retries(&mut self) -> Option<u32> {
        let value = self.get("retries")?;
        let count = self.out.integer("retries", value)?;
        if count < 0 {
            let count = i64::try_from(count).unwrap_or(i64::MIN);
            self.out.push("retries", Problem::Negative(count));
            return None;
        }
        match u32::try_from(count) {
            Ok(count) if i64::from(count) <= MAX_RETRIES => Some(count),
            _ => {
                let problem = Problem::OutOfRange {
                    min: 0,
                    max: MAX_RETRIES,
                    value: count,
                };
                self.out.push("retries", problem);
                None
            }
        }
    }
}

/// Checks that `uri` is an absolute `http` or `https` URL with a host.
/// `uri` with the password of its user information (if any) replaced by the mask, for error
/// messages: a callback or fetch URL may carry credentials.
fn without_password(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://").map(|at| at + 3) else {
        return uri.to_owned();
    };
    let rest = &uri[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return uri.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return uri.to_owned();
    };
    format!(
        "{}{}:{}{}",
        &uri[..scheme_end],
        &userinfo[..colon],
        crate::task::MASK,
        &uri[scheme_end + at..]
    )
}

fn check_http_url(uri: &str) -> Result<(), String> {
    let shown = without_password(uri);
    let lower = uri.to_ascii_lowercase();
    let Some(scheme_len) = ["http://", "https://"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme))
        .map(|scheme| scheme.len())
    else {
        return Err(format!("{shown:?} is not an http:// or https:// URL"));
    };
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{shown:?} contains blanks or control characters"));
    }
    let authority = uri[scheme_len..]
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = match host_port.rfind(':') {
        Some(colon) if !host_port[colon..].contains(']') => {
            (&host_port[..colon], Some(&host_port[colon + 1..]))
        }
        _ => (host_port, None),
    };
    if host.is_empty() {
        return Err(format!("{shown:?} has no host"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |port| port == 0) {
            return Err(format!("{shown:?} has an invalid port {port:?}"));
        }
    }
    Ok(())
}

/// Checks a fetcher URI: non-empty, without blanks.
fn check_fetch_uri(uri: &str) -> Result<(), Problem> {
    if uri.is_empty() {
        return Err(Problem::Required);
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let shown = without_password(uri);
        return Err(Problem::Invalid(format!(
            "{shown:?} contains blanks or control characters"
        )));
    }
    // A file URL naming another host can never be fetched here (403s for local files that
    // are not allowed come from the operator's policy, which needs the file system).
    deimos_runtime::fetch::local_file_path(uri)
        .map_err(|reason| Problem::Invalid(format!("{:?}: {reason}", without_password(uri))))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_never_repeat_a_url_password() {
        let error = check_http_url("ftp://user:hunter2@example.com/x").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("user:*******@example.com"), "{error}");
        assert_eq!(
            without_password("http://example.com/a@b"),
            "http://example.com/a@b"
        );
        assert_eq!(
            without_password("http://user@example.com"),
            "http://user@example.com"
        );
    }

    #[test]
    fn http_urls_are_checked() {
        for ok in [
            "http://example.com",
            "https://user@example.com:8443/cb?x=1",
            "HTTP://[::1]:80/",
            "http://10.0.0.1/hook",
        ] {
            assert_eq!(check_http_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ftp://example.com",
            "example.com/cb",
            "http://",
            "http:///path",
            "http://host:0/",
            "http://host:99999/",
            "http://exa mple.com/",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn minimal_request_gets_defaults() {
        let task = parse_v1(br#"{"image":"busybox","cpu":0.5,"mem":64}"#).unwrap();
        assert_eq!(task.network, Network::Bridge);
        assert_eq!(task.retries, None);
        assert_eq!(task.timeout_secs, None);
        assert_eq!(task.name, None);
        assert_eq!(task.command, None);
    }

    #[test]
    fn empty_and_null_bodies_report_the_required_fields() {
        for body in [&b"null"[..], b"{}"] {
            let errors = parse_v1(body).unwrap_err();
            let fields: Vec<_> = errors.fields().collect();
            assert_eq!(fields, ["image", "cpu", "mem"]);
        }
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let errors = parse_v1(b"{\n  \"image\": \"a\",\n  oops\n}").unwrap_err();
        match &errors.errors[0].problem {
            Problem::InvalidJson { line, column, .. } => assert_eq!((*line, *column), (3, 3)),
            other => panic!("{other:?}"),
        }
        assert!(errors
            .to_string()
            .starts_with("body: invalid JSON at line 3, column 3: "));
    }

    #[test]
    fn timeouts_beyond_the_integer_range_are_too_large_not_fractions() {
        for (body, reason) in [
            (r#""timeout":1e30"#, "is too large: 1e+30"),
            (r#""timeout":18446744073709551616"#, "is too large"),
            (r#""timeout":-1e30"#, "is too small"),
            (
                r#""timeout":1.5"#,
                "expected an integer, found a fractional number",
            ),
            (r#""timeout":-3"#, "must not be negative, got -3"),
            (r#""timeout":99999999999"#, "must be between 0 and 31536000"),
        ] {
            let text = format!(r#"{{"image":"busybox","cpu":1,"mem":64,{body}}}"#);
            let errors = parse_v1(text.as_bytes()).unwrap_err();
            let problems: Vec<String> = errors
                .for_field("timeout")
                .map(ToString::to_string)
                .collect();
            assert_eq!(problems.len(), 1, "{body}: {errors}");
            assert!(problems[0].contains(reason), "{body}: {}", problems[0]);
        }
    }

    #[test]
    fn image_references_are_checked_against_dockers_grammar() {
        for (version, key) in [("v1", "image"), ("v0", "docker_image")] {
            for image in ["../../etc/passwd", "<script>", "Busybox", "app:-1"] {
                let body = if version == "v1" {
                    format!(r#"{{"image":{image:?},"cpu":1,"mem":64}}"#)
                } else {
                    format!(r#"{{"docker_image":{image:?},"task_cpus":1,"task_mem":64}}"#)
                };
                let parsed = if version == "v1" {
                    parse_v1(body.as_bytes())
                } else {
                    parse_v0(body.as_bytes())
                };
                let errors = parsed.unwrap_err();
                let fields: Vec<_> = errors.fields().collect();
                assert_eq!(fields, [key], "{image}");
                assert!(errors
                    .to_string()
                    .contains("is not a Docker image reference"));
            }
        }
        assert!(
            parse_v1(br#"{"image":"registry.example:5000/team/app:1.0","cpu":1,"mem":64}"#).is_ok()
        );
    }
}
