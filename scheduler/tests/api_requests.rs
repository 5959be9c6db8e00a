//! Submit bodies through the public API: malformed requests name the offending field, v1 and
//! v0 spellings of the same request agree, and task documents never reveal masked values.

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use eremetic::api::{
    parse_v0, parse_v1, ErrorDocument, Problem, TaskV0, TaskV1, MAX_BODY_BYTES, MSG_INVALID_REQUEST,
};
use eremetic::task::{
    generate_name, FetchUri, Network, PortProtocol, StateFilter, Task, TaskId, TaskState, MASK,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// A valid v1 request that the malformed cases below start from.
fn base() -> Value {
    json!({"image": "busybox:1.36", "cpu": 0.5, "mem": 64, "command": "echo hi"})
}

/// `base()` with the members of `patch` replaced (a `"$remove"` value removes the member).
fn patched(patch: Value) -> Vec<u8> {
    let mut body = base();
    let object = body.as_object_mut().unwrap();
    for (key, value) in patch.as_object().unwrap() {
        if value == "$remove" {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
    serde_json::to_vec(&body).unwrap()
}

#[test]
fn malformed_requests_name_the_offending_field() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"image\": ".to_vec(), "body"),
        (b"not json".to_vec(), "body"),
        (b"".to_vec(), "body"),
        (b"[1, 2]".to_vec(), "body"),
        (b"\"busybox\"".to_vec(), "body"),
        (patched(json!({"image": "$remove"})), "image"),
        (patched(json!({"image": ""})), "image"),
        (patched(json!({"image": 42})), "image"),
        (patched(json!({"image": "bad image"})), "image"),
        (patched(json!({"image": "../../etc/passwd"})), "image"),
        (
            patched(json!({"image": "<script>alert(1)</script>"})),
            "image",
        ),
        (patched(json!({"image": "a".repeat(300_000)})), "image"),
        (patched(json!({"image": "Upper/Case"})), "image"),
        (patched(json!({"image": "app@sha256:short"})), "image"),
        (patched(json!({"cpu": 0})), "cpu"),
        (patched(json!({"cpu": -1.5})), "cpu"),
        (patched(json!({"cpu": "1"})), "cpu"),
        (patched(json!({"cpu": "$remove"})), "cpu"),
        (patched(json!({"mem": 1})), "mem"),
        (patched(json!({"mem": "$remove"})), "mem"),
        (patched(json!({"mem": [64]})), "mem"),
        (patched(json!({"network": "bridged"})), "network"),
        (patched(json!({"network": 1})), "network"),
        (
            patched(json!({"ports": [{"container_port": -1}]})),
            "ports[0].container_port",
        ),
        (
            patched(json!({"ports": [{"container_port": 65536}]})),
            "ports[0].container_port",
        ),
        (
            patched(json!({"ports": [{"protocol": "tcp"}]})),
            "ports[0].container_port",
        ),
        (
            patched(json!({"ports": [{"container_port": "80"}]})),
            "ports[0].container_port",
        ),
        (
            patched(
                json!({"ports": [{"container_port": 80}, {"container_port": 53, "protocol": "sctp"}]}),
            ),
            "ports[1].protocol",
        ),
        (
            patched(json!({"ports": [{"container_port": 80, "host_port": -1}]})),
            "ports[0].host_port",
        ),
        (patched(json!({"ports": {"container_port": 80}})), "ports"),
        (patched(json!({"ports": [80]})), "ports[0]"),
        (
            patched(json!({"volumes": [{"container_path": "/data", "host_path": "../data"}]})),
            "volumes[0].host_path",
        ),
        (
            patched(json!({"volumes": [{"container_path": "/d", "host_path": "a/../../b"}]})),
            "volumes[0].host_path",
        ),
        (
            patched(json!({"volumes": [{"container_path": "data", "host_path": "/data"}]})),
            "volumes[0].container_path",
        ),
        (
            patched(json!({"volumes": [{"container_path": "/data"}]})),
            "volumes[0].host_path",
        ),
        (
            patched(json!({"volumes": [{"container_path": "/d", "host_path": "/a:b"}]})),
            "volumes[0].host_path",
        ),
        (
            patched(json!({"volumes_from": ["ok", "not ok"]})),
            "volumes_from[1]",
        ),
        (
            patched(json!({"callback_uri": "not a url"})),
            "callback_uri",
        ),
        (
            patched(json!({"callback_uri": "ftp://example.com/cb"})),
            "callback_uri",
        ),
        (
            patched(json!({"callback_uri": "http:///cb"})),
            "callback_uri",
        ),
        (
            patched(json!({"callback_states": "running"})),
            "callback_states",
        ),
        (patched(json!({"callback_states": true})), "callback_states"),
        (patched(json!({"timeout": -1})), "timeout"),
        (patched(json!({"timeout": 1.5})), "timeout"),
        (patched(json!({"timeout": 1e30})), "timeout"),
        (
            patched(json!({"timeout": 9_223_372_036_854_775_807_i64})),
            "timeout",
        ),
        (patched(json!({"retries": -2})), "retries"),
        (patched(json!({"retries": 1000})), "retries"),
        (patched(json!({"dns": "dns.example.com"})), "dns"),
        (patched(json!({"env": {"A": 1}})), "env.A"),
        (patched(json!({"env": {"A=B": "c"}})), "env.A=B"),
        (patched(json!({"env": {"": "c"}})), "env."),
        (patched(json!({"env": ["A=B"]})), "env"),
        (
            patched(json!({"masked_env": {"TOKEN": true}})),
            "masked_env.TOKEN",
        ),
        (
            patched(json!({"env": {"TOKEN": "a"}, "masked_env": {"TOKEN": "b"}})),
            "masked_env.TOKEN",
        ),
        (patched(json!({"labels": {"": "x"}})), "labels"),
        (patched(json!({"labels": {"a": 1}})), "labels.a"),
        (patched(json!({"args": ["ok", 2]})), "args[1]"),
        (patched(json!({"args": "a b"})), "args"),
        (patched(json!({"command": ["echo"]})), "command"),
        (
            patched(json!({"agent_constraints": [{"attribute_value": "x"}]})),
            "agent_constraints[0].attribute_name",
        ),
        (
            patched(json!({"agent_constraints": [{"attribute_name": "rack"}]})),
            "agent_constraints[0].attribute_value",
        ),
        (patched(json!({"fetch": [{"uri": ""}]})), "fetch[0].uri"),
        (
            patched(json!({"fetch": [{"uri": "http://x/a", "extract": "yes"}]})),
            "fetch[0].extract",
        ),
        (patched(json!({"uris": ["http://x/a b"]})), "uris[0]"),
        (
            patched(json!({"force_pull_image": "true"})),
            "force_pull_image",
        ),
        (patched(json!({"privileged": 1})), "privileged"),
        (patched(json!({"user": "root user"})), "user"),
        (patched(json!({"user": "a:b:c"})), "user"),
        (patched(json!({"name": "a\nb"})), "name"),
        (patched(json!({"name": "n".repeat(256)})), "name"),
        (vec![b' '; MAX_BODY_BYTES + 1], "body"),
    ];
    assert!(cases.len() >= 30);
    for (body, field) in &cases {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let errors = parse_v1(body).expect_err(&text);
        assert!(
            errors.fields().any(|f| f == *field),
            "{text}: expected a problem with {field}, got {errors}"
        );
        let doc = ErrorDocument::invalid_request(&errors);
        assert_eq!(doc.message, MSG_INVALID_REQUEST);
        assert!(doc.errors.iter().any(|e| e.field == *field));
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let body = json!({
        "cpu": 0, "mem": 1, "network": "overlay",
        "ports": [{"container_port": 70000, "protocol": "icmp"}],
        "volumes": [{"container_path": "x", "host_path": "../y"}],
        "callback_uri": "mailto:x", "timeout": -5, "retries": -1
    });
    let errors = parse_v1(&serde_json::to_vec(&body).unwrap()).unwrap_err();
    let mut fields: Vec<_> = errors.fields().collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "callback_uri",
            "cpu",
            "image",
            "mem",
            "network",
            "ports[0].container_port",
            "ports[0].protocol",
            "retries",
            "timeout",
            "volumes[0].container_path",
            "volumes[0].host_path",
        ]
    );
}

#[test]
fn body_size_limit_is_inclusive() {
    let mut body = patched(json!({}));
    body.resize(MAX_BODY_BYTES, b' ');
    assert!(parse_v1(&body).is_ok());
    body.push(b' ');
    let errors = parse_v1(&body).unwrap_err();
    assert!(matches!(errors.errors[0].problem, Problem::TooLarge { .. }));
}

const V1_EXAMPLE: &str = r#"{
  "name": "my-task",
  "cpu": 1.5,
  "mem": 22.0,
  "image": "busybox",
  "command": "echo date && sleep 30 && date",
  "args": ["ignored"],
  "env": {"KEY": "value"},
  "masked_env": {"SECRET": "do-not-show"},
  "labels": {"team": "infra"},
  "volumes": [{"container_path": "/var/run/docker.sock", "host_path": "/var/run/docker.sock"}],
  "volumes_from": ["data-container"],
  "ports": [{"container_port": 8080, "protocol": "tcp"}, {"container_port": 53, "protocol": "UDP"}],
  "network": "HOST",
  "dns": "10.0.0.2",
  "agent_constraints": [{"attribute_name": "node_name", "attribute_value": "node1"}],
  "callback_uri": "http://callback.example.com:8000/done",
  "uris": ["http://example.com/config.tar.gz"],
  "fetch": [{"uri": "http://example.com/run.sh", "executable": true, "cache": true}],
  "force_pull_image": true,
  "privileged": false,
  "user": "1000:1000",
  "timeout": 600,
  "retries": 2
}"#;

const V0_EXAMPLE: &str = r#"{
  "name": "my-task",
  "task_cpus": 1.5,
  "task_mem": 22.0,
  "docker_image": "busybox",
  "command": "echo date && sleep 30 && date",
  "args": ["ignored"],
  "env": {"KEY": "value"},
  "masked_env": {"SECRET": "do-not-show"},
  "labels": {"team": "infra"},
  "volumes": [{"container_path": "/var/run/docker.sock", "host_path": "/var/run/docker.sock"}],
  "volumes_from": ["data-container"],
  "ports": [{"container_port": 8080, "protocol": "tcp"}, {"container_port": 53, "protocol": "UDP"}],
  "network": "HOST",
  "dns": "10.0.0.2",
  "slave_constraints": [{"attribute_name": "node_name", "attribute_value": "node1"}],
  "callback_uri": "http://callback.example.com:8000/done",
  "uris": ["http://example.com/config.tar.gz"],
  "fetch": [{"uri": "http://example.com/run.sh", "executable": true, "cache": true}],
  "force_pull_image": true,
  "privileged": false,
  "user": "1000:1000",
  "timeout": 600,
  "retries": 2
}"#;

#[test]
fn v1_and_v0_examples_parse_to_the_same_task() {
    let v1 = parse_v1(V1_EXAMPLE.as_bytes()).unwrap();
    let v0 = parse_v0(V0_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(v1, v0);
    assert_eq!(v1.name.as_deref(), Some("my-task"));
    assert_eq!(v1.cpu, 1.5);
    assert_eq!(v1.network, Network::Host);
    assert_eq!(v1.ports[1].protocol, PortProtocol::Udp);
    assert_eq!(v1.masked_env["SECRET"].expose(), "do-not-show");
    assert_eq!(v1.timeout_secs, Some(600));
    assert_eq!(v1.retries, Some(2));
    assert_eq!(
        v1.fetch,
        [
            FetchUri {
                uri: "http://example.com/config.tar.gz".into(),
                extract: true,
                executable: false,
                cache: false,
            },
            FetchUri {
                uri: "http://example.com/run.sh".into(),
                extract: false,
                executable: true,
                cache: true,
            },
        ]
    );
}

#[test]
fn version_specific_keys_are_not_mixed() {
    // v0 keys in a v1 body are unknown (ignored), so the v1 required fields are missing.
    let errors = parse_v1(V0_EXAMPLE.as_bytes()).unwrap_err();
    let fields: Vec<_> = errors.fields().collect();
    assert_eq!(fields, ["image", "cpu", "mem"]);
    let errors = parse_v0(br#"{"image":"a","cpu":1,"mem":64}"#).unwrap_err();
    let fields: Vec<_> = errors.fields().collect();
    assert_eq!(fields, ["docker_image", "task_cpus", "task_mem"]);
}

#[test]
fn keys_match_case_insensitively_like_go() {
    let task = parse_v1(br#"{"Image":"busybox","CPU":1,"Mem":64,"unknown":1}"#).unwrap();
    assert_eq!(task.image, "busybox");
}

fn stored_task() -> Task {
    let request = parse_v1(V1_EXAMPLE.as_bytes()).unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let mut task = Task::new(TaskId::generate([9; 16]), "my-task".into(), request, now);
    task.push_status(TaskState::Staging, now);
    task.push_status(TaskState::Running, now);
    task
}

#[test]
fn masked_values_never_appear_in_documents() {
    let task = stored_task();
    let v1 = serde_json::to_string(&TaskV1::from_task(&task)).unwrap();
    let v0 = serde_json::to_string(&TaskV0::from_task(&task)).unwrap();
    for json in [&v1, &v0] {
        assert!(!json.contains("do-not-show"), "{json}");
        assert!(
            json.contains(r#""masked_env":{"SECRET":"*******"}"#),
            "{json}"
        );
        assert!(json.contains(r#""KEY":"value""#));
    }
    assert!(!format!("{task:?}").contains("do-not-show"));
    assert_eq!(MASK, "*******");
}

#[test]
fn state_filter_selects_by_current_state() {
    let mut task = stored_task();
    let default = StateFilter::parse(None).unwrap();
    assert!(default.matches(task.current_state()));
    let terminated = StateFilter::parse(Some("terminated")).unwrap();
    assert!(!terminated.matches(task.current_state()));
    task.push_status(TaskState::Error, OffsetDateTime::UNIX_EPOCH);
    assert!(TaskState::Error.is_terminal());
    assert!(task.is_terminal());
    assert!(terminated.matches(task.current_state()));
    assert!(!default.matches(task.current_state()));
    assert!(StateFilter::parse(Some("running")).is_err());
}

#[test]
fn ids_and_names_have_the_eremetic_format() {
    let id = TaskId::generate([0xab; 16]);
    let text = id.as_str();
    let uuid = text.strip_prefix("eremetic-task.").unwrap();
    let groups: Vec<_> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12]);
    assert_eq!(&uuid[14..15], "4");
    assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    assert!(uuid
        .chars()
        .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let name = generate_name([3, 14, 15, 92, 65, 35, 89, 79]);
    let suffix = name.strip_prefix("Eremetic task ").unwrap();
    assert_eq!(suffix.len(), 8);
}

#[test]
fn callback_states_is_terminal_or_all_in_any_case_and_shown_in_the_document() {
    use eremetic::task::CallbackStates;
    let all = parse_v1(&patched(json!({"callback_states": "ALL"}))).unwrap();
    assert_eq!(all.callback_states, Some(CallbackStates::All));
    let unset = parse_v1(&patched(json!({}))).unwrap();
    assert_eq!(unset.callback_states, None);
    let now = OffsetDateTime::now_utc();
    let task = Task::new(TaskId::generate([3; 16]), "t".into(), all, now);
    let document = serde_json::to_value(TaskV1::from_task(&task)).unwrap();
    assert_eq!(document["callback_states"], "all");
    let task = Task::new(TaskId::generate([4; 16]), "t".into(), unset, now);
    let document = serde_json::to_value(TaskV0::from_task(&task)).unwrap();
    assert_eq!(document["callback_states"], Value::Null);
}

#[test]
fn a_request_without_user_runs_as_root_and_its_document_says_so() {
    let unnamed = parse_v1(&patched(json!({}))).unwrap();
    assert_eq!(unnamed.user.as_deref(), Some("root"));
    let named = parse_v1(&patched(json!({"user": "nobody"}))).unwrap();
    assert_eq!(named.user.as_deref(), Some("nobody"));
    let task = Task::new(
        TaskId::generate([5; 16]),
        "t".into(),
        unnamed,
        OffsetDateTime::now_utc(),
    );
    assert_eq!(TaskV1::from_task(&task).common.user, "root");
    assert_eq!(TaskV0::from_task(&task).common.user, "root");
}

#[test]
fn container_port_0_shows_the_host_port_once_allocated() {
    let request = parse_v1(&patched(json!({"ports": [
        {"container_port": 0, "protocol": "tcp"},
        {"container_port": 8080}
    ]})))
    .unwrap();
    let mut task = Task::new(
        TaskId::generate([6; 16]),
        "t".into(),
        request,
        OffsetDateTime::now_utc(),
    );
    let ports = |task: &Task| {
        TaskV1::from_task(task)
            .common
            .ports
            .iter()
            .map(|port| (port.container_port, port.host_port))
            .collect::<Vec<_>>()
    };
    assert_eq!(ports(&task), [(0, 0), (8080, 0)], "before allocation");
    task.host_ports = vec![31005, 31006];
    assert_eq!(ports(&task), [(31005, 31005), (8080, 31006)]);
}
