//! Submit bodies (`POST /api/v1/task`) built from `hermit run` flags or a YAML task file.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::cli::RunArgs;
use super::error::HermitError;
use eremetic_model::task::FetchUri;

/// CPUs of a task when neither a flag nor the task file gives them (Eremetic's hermit).
pub const DEFAULT_CPU: f64 = 0.1;
/// Memory in MiB when neither a flag nor the task file gives it (Eremetic's hermit).
pub const DEFAULT_MEM: f64 = 128.0;
/// Image when neither a flag nor the task file gives one (Eremetic's hermit).
pub const DEFAULT_IMAGE: &str = "busybox";

/// One task to submit: a label to report it by (its name, or its place in the file) and the
/// v1 request body.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The task's name, or `tasks[i]` for an unnamed task of a file; `None` for a task from
    /// flags without `--name`.
    pub label: Option<String>,
    /// The JSON body.
    pub body: Value,
}

/// Splits `KEY=VALUE` at the first `=` (values may contain `=`, unlike Eremetic's hermit,
/// E-28). `flag` names the flag in the error.
pub fn split_pair(pair: &str, flag: &str) -> Result<(String, String), HermitError> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        Some(_) => Err(HermitError::Usage(format!(
            "{flag} {pair:?}: the variable name before '=' is empty"
        ))),
        None => Err(HermitError::Usage(format!(
            "{flag} {pair:?}: expected KEY=VALUE"
        ))),
    }
}

fn pairs(values: &[String], flag: &str) -> Result<BTreeMap<String, String>, HermitError> {
    values.iter().map(|pair| split_pair(pair, flag)).collect()
}

/// The body of `hermit run` with flags only. A port is requested only with `--port` (E-28:
/// Eremetic's hermit always asked for one).
pub fn request_from_flags(run: &RunArgs) -> Result<Submission, HermitError> {
    let mut body = Map::new();
    body.insert(
        "image".into(),
        json!(run.image.as_deref().unwrap_or(DEFAULT_IMAGE)),
    );
    body.insert("cpu".into(), json!(run.cpu.unwrap_or(DEFAULT_CPU)));
    body.insert("mem".into(), json!(run.mem.unwrap_or(DEFAULT_MEM)));
    if !run.command.is_empty() {
        body.insert("command".into(), json!(run.command.join(" ")));
    }
    if !run.arg.is_empty() {
        body.insert("args".into(), json!(run.arg));
    }
    if let Some(name) = &run.name {
        body.insert("name".into(), json!(name));
    }
    insert_common(&mut body, run)?;
    if let Some(port) = run.port {
        body.insert(
            "ports".into(),
            json!([{"container_port": port, "protocol": "tcp"}]),
        );
    }
    if !run.uri.is_empty() {
        body.insert("fetch".into(), fetch(&run.uri));
    }
    Ok(Submission {
        label: run.name.clone(),
        body: Value::Object(body),
    })
}

/// Network, DNS and environment from flags.
fn insert_common(body: &mut Map<String, Value>, run: &RunArgs) -> Result<(), HermitError> {
    if let Some(network) = &run.network {
        body.insert("network".into(), json!(network));
    }
    if let Some(dns) = &run.dns {
        body.insert("dns".into(), json!(dns));
    }
    let env = pairs(&run.env, "-e")?;
    if !env.is_empty() {
        body.insert("env".into(), json!(env));
    }
    let masked = pairs(&run.masked_env, "--masked-env")?;
    if !masked.is_empty() {
        body.insert("masked_env".into(), json!(masked));
    }
    Ok(())
}

/// `fetch` entries for plain URIs: archives are extracted, as Eremetic's `uris`.
fn fetch(uris: &[String]) -> Value {
    let entries: Vec<FetchUri> = uris
        .iter()
        .map(|uri| FetchUri::from_plain_uri(uri))
        .collect();
    json!(entries)
}

/// A scalar YAML value used as a string (`DEBUG: true`, `PORT: 8080`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Flag(bool),
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::Text(text) => text,
            Scalar::Integer(value) => value.to_string(),
            Scalar::Float(value) => value.to_string(),
            Scalar::Flag(value) => value.to_string(),
        }
    }
}

/// A port of a task file: `80` or `{container_port: 53, protocol: udp}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PortEntry {
    Number(u16),
    Full {
        container_port: u16,
        #[serde(default)]
        protocol: Option<String>,
    },
}

/// A bind mount of a task file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeEntry {
    container_path: String,
    host_path: String,
}

/// One task of a task file; every key is optional but `image` falls back to the flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskEntry {
    name: Option<String>,
    image: Option<String>,
    command: Option<String>,
    args: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, Scalar>,
    #[serde(default)]
    masked_env: BTreeMap<String, Scalar>,
    cpu: Option<f64>,
    mem: Option<f64>,
    #[serde(default)]
    ports: Vec<PortEntry>,
    network: Option<String>,
    dns: Option<String>,
    #[serde(default)]
    uris: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, Scalar>,
    #[serde(default)]
    volumes: Vec<VolumeEntry>,
    callback_uri: Option<String>,
    timeout: Option<u64>,
    retries: Option<u32>,
    user: Option<String>,
    force_pull_image: Option<bool>,
    privileged: Option<bool>,
}

fn texts(map: BTreeMap<String, Scalar>) -> BTreeMap<String, String> {
    map.into_iter()
        .map(|(key, value)| (key, value.into_text()))
        .collect()
}

/// The tasks of a YAML task file: either a list of tasks or a mapping with a `tasks` list.
/// Each task takes the keys of the v1 request (`name`, `image`, `command`, `args`, `env`,
/// `masked_env`, `cpu`, `mem`, `ports`, `network`, `dns`, `uris`, `labels`, `volumes`,
/// `callback_uri`, `timeout`, `retries`, `user`, `force_pull_image`, `privileged`); `image`,
/// `cpu`, `mem`, `network`, `dns` default to the flags (then to hermit's defaults) and `env`,
/// `masked_env` extend those of the flags. `path` names the file in errors.
pub fn requests_from_file(
    path: &str,
    text: &str,
    flags: &RunArgs,
) -> Result<Vec<Submission>, HermitError> {
    let bad = |reason: String| HermitError::BadTaskFile {
        path: path.to_owned(),
        reason,
    };
    let document: serde_norway::Value =
        serde_norway::from_str(text).map_err(|error| bad(error.to_string()))?;
    let items = match document {
        serde_norway::Value::Sequence(items) => items,
        serde_norway::Value::Mapping(mut mapping) => match mapping.remove("tasks") {
            Some(serde_norway::Value::Sequence(items)) if mapping.is_empty() => items,
            _ => {
                return Err(bad(
                    "expected a list of tasks or a mapping with only a `tasks` list".into(),
                ))
            }
        },
        _ => {
            return Err(bad(
                "expected a list of tasks or a mapping with a `tasks` list".into(),
            ))
        }
    };
    if items.is_empty() {
        return Err(bad("it lists no tasks".into()));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let entry: TaskEntry = serde_norway::from_value(item)
                .map_err(|error| bad(format!("tasks[{index}]: {error}")))?;
            entry_request(entry, index, flags)
                .map_err(|reason| bad(format!("tasks[{index}]: {reason}")))
        })
        .collect()
}

fn entry_request(entry: TaskEntry, index: usize, flags: &RunArgs) -> Result<Submission, String> {
    let mut body = Map::new();
    let image = entry
        .image
        .or_else(|| flags.image.clone())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
    body.insert("image".into(), json!(image));
    body.insert(
        "cpu".into(),
        json!(entry.cpu.or(flags.cpu).unwrap_or(DEFAULT_CPU)),
    );
    body.insert(
        "mem".into(),
        json!(entry.mem.or(flags.mem).unwrap_or(DEFAULT_MEM)),
    );
    let optional = [
        ("name", entry.name.clone()),
        ("command", entry.command),
        ("network", entry.network.or_else(|| flags.network.clone())),
        ("dns", entry.dns.or_else(|| flags.dns.clone())),
        ("callback_uri", entry.callback_uri),
        ("user", entry.user),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            body.insert(key.into(), json!(value));
        }
    }
    if let Some(args) = entry.args {
        body.insert("args".into(), json!(args));
    }
    let mut env = pairs(&flags.env, "-e").map_err(|error| error.to_string())?;
    env.extend(texts(entry.env));
    let mut masked = pairs(&flags.masked_env, "--masked-env").map_err(|error| error.to_string())?;
    masked.extend(texts(entry.masked_env));
    for (key, map) in [
        ("env", env),
        ("masked_env", masked),
        ("labels", texts(entry.labels)),
    ] {
        if !map.is_empty() {
            body.insert(key.into(), json!(map));
        }
    }
    let ports: Vec<Value> = entry
        .ports
        .into_iter()
        .map(|port| match port {
            PortEntry::Number(port) => json!({"container_port": port, "protocol": "tcp"}),
            PortEntry::Full {
                container_port,
                protocol,
            } => json!({"container_port": container_port, "protocol": protocol.unwrap_or_else(|| "tcp".into())}),
        })
        .collect();
    if !ports.is_empty() {
        body.insert("ports".into(), Value::Array(ports));
    } else if let Some(port) = flags.port {
        body.insert(
            "ports".into(),
            json!([{"container_port": port, "protocol": "tcp"}]),
        );
    }
    if !entry.uris.is_empty() {
        body.insert("fetch".into(), fetch(&entry.uris));
    }
    if !entry.volumes.is_empty() {
        let volumes: Vec<Value> = entry
            .volumes
            .iter()
            .map(|v| json!({"container_path": v.container_path, "host_path": v.host_path}))
            .collect();
        body.insert("volumes".into(), Value::Array(volumes));
    }
    let numbers = [
        ("timeout", entry.timeout.map(Value::from)),
        ("retries", entry.retries.map(Value::from)),
        ("force_pull_image", entry.force_pull_image.map(Value::from)),
        ("privileged", entry.privileged.map(Value::from)),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            body.insert(key.into(), value);
        }
    }
    Ok(Submission {
        label: Some(entry.name.unwrap_or_else(|| format!("tasks[{index}]"))),
        body: Value::Object(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> RunArgs {
        use clap::Parser;
        let mut argv = vec!["hermit", "run"];
        argv.extend_from_slice(args);
        let cli = super::super::cli::Cli::try_parse_from(super::super::cli::normalize_args(argv))
            .unwrap();
        match cli.command {
            super::super::cli::Command::Run(run) => *run,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn run_sends_a_port_only_when_asked() {
        let body = request_from_flags(&run(&["echo", "hi"])).unwrap().body;
        assert!(body.get("ports").is_none(), "{body}");
        assert_eq!(body["command"], "echo hi");
        assert_eq!(body["image"], DEFAULT_IMAGE);
        assert_eq!(body["cpu"], DEFAULT_CPU);
        assert_eq!(body["mem"], DEFAULT_MEM);
        let body = request_from_flags(&run(&["-port", "8080", "true"]))
            .unwrap()
            .body;
        assert_eq!(
            body["ports"],
            json!([{"container_port": 8080, "protocol": "tcp"}])
        );
    }

    #[test]
    fn env_values_may_contain_equals_signs() {
        let body = request_from_flags(&run(&["-e", "URL=a=b", "-e", "EMPTY=", "true"]))
            .unwrap()
            .body;
        assert_eq!(body["env"], json!({"URL": "a=b", "EMPTY": ""}));
    }

    #[test]
    fn env_without_a_name_or_equals_is_a_usage_error() {
        for bad in ["NOVALUE", "=x"] {
            let error = request_from_flags(&run(&["-e", bad, "true"])).unwrap_err();
            assert!(matches!(error, HermitError::Usage(_)), "{error}");
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[test]
    fn uris_become_fetch_entries_and_args_pass_through() {
        let submission = request_from_flags(&run(&[
            "-uri",
            "http://x/a.tgz",
            "-arg",
            "-v",
            "-arg",
            "x",
            "-name",
            "n",
            "-network",
            "HOST",
        ]))
        .unwrap();
        let body = submission.body;
        assert_eq!(body["fetch"][0]["uri"], "http://x/a.tgz");
        assert_eq!(body["fetch"][0]["extract"], true);
        assert_eq!(body["args"], json!(["-v", "x"]));
        assert!(body.get("command").is_none());
        assert_eq!(body["network"], "HOST");
        assert_eq!(submission.label.as_deref(), Some("n"));
    }

    const FILE: &str = "
tasks:
  - name: first
    image: img
    command: echo one
    env: {A: 1, B: 'x=y'}
    masked_env: {S: secret}
    ports: [80, {container_port: 53, protocol: udp}]
  - command: echo two
    mem: 64
";

    #[test]
    fn task_file_lists_tasks_with_flag_defaults() {
        let flags = run(&[
            "-image", "flag-img", "-cpu", "0.3", "-e", "A=flag", "-e", "F=f",
        ]);
        let tasks = requests_from_file("t.yml", FILE, &flags).unwrap();
        assert_eq!(tasks.len(), 2);
        let first = &tasks[0].body;
        assert_eq!(tasks[0].label.as_deref(), Some("first"));
        assert_eq!(first["image"], "img");
        assert_eq!(first["cpu"], 0.3);
        assert_eq!(first["env"], json!({"A": "1", "B": "x=y", "F": "f"}));
        assert_eq!(first["masked_env"], json!({"S": "secret"}));
        assert_eq!(
            first["ports"][1],
            json!({"container_port": 53, "protocol": "udp"})
        );
        let second = &tasks[1].body;
        assert_eq!(tasks[1].label.as_deref(), Some("tasks[1]"));
        assert_eq!(second["image"], "flag-img");
        assert_eq!(second["mem"], 64.0);
        assert_eq!(second["command"], "echo two");
    }

    #[test]
    fn task_file_may_be_a_bare_list() {
        let tasks =
            requests_from_file("t.yml", "- image: a\n- image: b\n", &RunArgs::default()).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[1].body["image"], "b");
    }

    #[test]
    fn task_file_errors_name_the_file_and_entry() {
        let flags = RunArgs::default();
        let error = requests_from_file("t.yml", "- image: a\n- imag: b\n", &flags).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("t.yml") && text.contains("tasks[1]") && text.contains("imag"),
            "{text}"
        );
        for bad in ["[]", "tasks: 3", "just text", "tasks: []\nother: 1"] {
            let error = requests_from_file("t.yml", bad, &flags).unwrap_err();
            assert!(
                matches!(error, HermitError::BadTaskFile { .. }),
                "{bad}: {error}"
            );
        }
    }
}
