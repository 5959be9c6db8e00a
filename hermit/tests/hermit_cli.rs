//! End to end: the real `hermit` binary against a real `eremetic` service running tasks in
//! Docker — submitting (with Go-style flags and from a YAML file), waiting with exit-code
//! propagation, showing and listing tasks, logs (also followed), kill, delete, version,
//! credentials from the environment, and its one-line errors with documented exit codes. The
//! service runs in this process (see `support`).

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{free_port, Service, Settings, IMAGE};

/// How long one hermit invocation may take.
const HERMIT_DEADLINE: Duration = Duration::from_secs(60);

/// An id no task has.
const UNKNOWN_ID: &str = "eremetic-task.00000000-0000-4000-8000-000000000000";

/// The environment of a hermit invocation: only `PATH` and what the test sets.
#[derive(Debug, Clone, Default)]
struct Env(BTreeMap<String, String>);

impl Env {
    fn for_service(service: &Service) -> Env {
        Env::default().set("EREMETIC_URL", service.url(""))
    }

    fn set(mut self, name: &str, value: impl Into<String>) -> Env {
        self.0.insert(name.to_owned(), value.into());
        self
    }
}

/// Runs `hermit args...` with `env`; fails the test if it runs longer than the deadline.
fn hermit(env: &Env, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hermit"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(&env.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HERMIT_DEADLINE {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "hermit {args:?} did not finish within {HERMIT_DEADLINE:?}; stdout: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Expects success and returns standard output.
fn success(env: &Env, args: &[&str]) -> String {
    let output = hermit(env, args);
    assert!(
        output.status.success(),
        "hermit {args:?} exited with {}: stderr {:?}, stdout {:?}",
        output.status,
        stderr(&output),
        stdout(&output)
    );
    stdout(&output)
}

/// Expects exit code `code` and one `hermit: ...` line on standard error; returns that line.
fn failure(env: &Env, args: &[&str], code: i32) -> String {
    let output = hermit(env, args);
    let text = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "hermit {args:?}: stderr {text:?}, stdout {:?}",
        stdout(&output)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "hermit {args:?}: not one line: {text:?}");
    assert!(lines[0].starts_with("hermit: "), "{text:?}");
    lines[0].to_owned()
}

/// `hermit run` with small resources and the test image; returns the printed id.
fn run_task(env: &Env, command: &[&str]) -> String {
    let mut args = vec!["run", "-cpu", "0.1", "-mem", "32", "-image", IMAGE];
    args.extend_from_slice(command);
    let out = success(env, &args);
    let id = out.trim().to_owned();
    assert!(
        id.starts_with("eremetic-task.") && !id.contains('\n'),
        "run printed {out:?}"
    );
    id
}

#[tokio::test]
async fn run_with_go_style_flags_prints_the_id_and_wait_propagates_exit_code() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let id = run_task(&env, &["-e", "GREETING=a=b", "echo $GREETING; exit 3"]);
    let task = service.task(&id).await;
    assert_eq!(task["cpu"], 0.1);
    assert_eq!(task["mem"], 32.0);
    assert_eq!(task["env"]["GREETING"], "a=b");
    assert_eq!(
        task["ports"],
        serde_json::json!([]),
        "no port without -port"
    );
    let output = hermit(&env, &["wait", &id]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.starts_with(&format!("{id} failed (exit code 3)")),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(service.output(&id, "stdout").await, "a=b\n");
}

#[tokio::test]
async fn run_wait_exits_with_the_task_exit_code() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let args = [
        "run", "--wait", "--cpu", "0.2", "--mem=32", "--image", IMAGE, "echo", "bye;", "exit", "7",
    ];
    let output = hermit(&env, &args);
    assert_eq!(output.status.code(), Some(7), "{}", stderr(&output));
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].starts_with(&format!("{} failed (exit code 7)", lines[0])),
        "{out}"
    );
    let ok = ["run", "-wait", "-mem", "32", "-image", IMAGE, "true"];
    let out = success(&env, &ok);
    assert!(out.ends_with("finished (exit code 0)\n"), "{out}");
}

#[tokio::test]
async fn run_reports_the_server_validation_message() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let line = failure(&env, &["run", "-cpu", "0", "-image", IMAGE, "true"], 1);
    assert!(line.contains("400") && line.contains("cpu"), "{line}");
    let line = failure(&env, &["run", "-e", "NOVALUE", "true"], 2);
    assert!(line.contains("NOVALUE"), "{line}");
}

#[tokio::test]
async fn task_shows_the_fields_as_text_and_json() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let args = [
        "run",
        "-name",
        "shown",
        "-mem",
        "32",
        "-image",
        IMAGE,
        "-e",
        "A=1",
        "--masked-env",
        "SECRET=hidden",
        "echo",
        "hi",
    ];
    let id = success(&env, &args).trim().to_owned();
    success(&env, &["wait", &id]);
    let text = success(&env, &["task", &id]);
    for line in [
        format!("ID: {id}"),
        "Name: shown".to_owned(),
        "Command: echo hi".to_owned(),
        format!("Image: {IMAGE}"),
        "CPU: 0.1".to_owned(),
        "Memory: 32".to_owned(),
        "Environment Variables: A=1".to_owned(),
        "Masked Environment Variables: SECRET=*******".to_owned(),
        "State: finished".to_owned(),
        "Exit code: 0".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains("Last updated: "), "{text}");
    assert!(!text.contains("hidden"), "{text}");
    let json: Value =
        serde_json::from_str(&success(&env, &["task", "-output", "json", &id])).unwrap();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["name"], "shown");
}

#[tokio::test]
async fn ls_lists_filters_and_limits_tasks() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let done = run_task(&env, &["true"]);
    service.wait_end(&done, "TASK_FINISHED").await;
    // Status times are whole seconds: make the sleeper's last update strictly newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let sleeper = run_task(&env, &["sleep", "60"]);
    service.wait_state(&sleeper, "TASK_RUNNING").await;

    let table = success(&env, &["ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("TASK ID") && lines[0].contains("LAST UPDATED"),
        "{table}"
    );
    let row = lines.iter().find(|l| l.starts_with(&sleeper)).unwrap();
    assert!(
        row.contains(" running ") && row.contains("\"sleep 60\""),
        "{table}"
    );
    assert!(
        !table.contains(&done),
        "terminated tasks are not listed by default: {table}"
    );

    assert_eq!(success(&env, &["ls", "-q"]), format!("{sleeper}\n"));
    let finished = success(&env, &["ls", "-filter", "status=finished", "-q"]);
    assert_eq!(finished, format!("{done}\n"));
    let all = success(&env, &["ls", "-a", "-q"]);
    assert_eq!(all, format!("{sleeper}\n{done}\n"), "newest first");
    assert_eq!(
        success(&env, &["ls", "-a", "-n", "1", "-q"]),
        format!("{sleeper}\n")
    );
    let json: Value =
        serde_json::from_str(&success(&env, &["ls", "-a", "-output", "json"])).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{json}");

    let line = failure(&env, &["ls", "-filter", "colour=red"], 2);
    assert!(line.contains("colour"), "{line}");
    failure(&env, &["ls", "-filter", "status"], 2);

    assert_eq!(
        success(&env, &["kill", &sleeper]),
        format!("Killed task {sleeper}\n")
    );
    service.wait_end(&sleeper, "TASK_KILLED").await;
    assert_eq!(
        success(&env, &["delete", &sleeper]),
        format!("Deleted task {sleeper}\n")
    );
    let line = failure(&env, &["task", &sleeper], 4);
    assert!(line.contains("not found"), "{line}");
}

#[tokio::test]
async fn ls_filter_user_root_finds_a_task_submitted_without_a_user() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let body = serde_json::json!({"image": IMAGE, "command": "sleep 60", "cpu": 0.1, "mem": 32});
    let running = service.submit(&body).await;
    service.wait_state(&running, "TASK_RUNNING").await;
    let listed = success(&env, &["ls", "-filter", "user=root", "-q"]);
    assert_eq!(listed.trim(), running, "Eremetic's default user is root");
    assert_eq!(success(&env, &["ls", "-filter", "user=nobody", "-q"]), "");
    success(&env, &["kill", &running]);
    service.wait_end(&running, "TASK_KILLED").await;
}

#[tokio::test]
async fn logs_prints_and_follows_task_output() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let id = run_task(&env, &["echo one; echo oops >&2; sleep 2; echo two"]);
    service.wait_state(&id, "TASK_RUNNING").await;
    let followed = success(&env, &["logs", "-f", &id]);
    assert_eq!(followed, "one\ntwo\n");
    service.wait_end(&id, "TASK_FINISHED").await;
    assert_eq!(success(&env, &["logs", &id]), "one\ntwo\n");
    assert_eq!(success(&env, &["logs", "-file", "stderr", &id]), "oops\n");
    assert_eq!(success(&env, &["logs", "--file=stderr", &id]), "oops\n");
}

#[tokio::test]
async fn kill_of_a_finished_task_fails_with_the_server_message() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let id = run_task(&env, &["true"]);
    success(&env, &["wait", &id]);
    let line = failure(&env, &["kill", &id], 1);
    assert!(line.contains("409"), "{line}");
    failure(&env, &["kill", UNKNOWN_ID], 4);
    failure(&env, &["logs", UNKNOWN_ID], 4);
    failure(&env, &["wait", UNKNOWN_ID], 4);
    failure(&env, &["delete", UNKNOWN_ID], 4);
}

#[tokio::test]
async fn version_prints_client_and_server_versions() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let out = success(&env, &["version"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Client:");
    assert_eq!(lines[1], format!(" Version: {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(lines[2], "");
    assert_eq!(lines[3], "Server:");
    let server = lines[4].strip_prefix(" Version: ").unwrap();
    assert!(!server.is_empty() && !server.contains('"'), "{out}");
}

#[tokio::test]
async fn run_file_submits_every_task_and_reports_ids_with_names() {
    let service = Service::start(Settings::new()).await;
    let env = Env::for_service(&service);
    let file = service.dir().join("tasks.yml");
    let yaml = "tasks:\n  - name: first\n    command: echo first $WHO\n    env: {WHO: one}\n  \
         - name: second\n    command: echo second\n    mem: 48\n";
    std::fs::write(&file, yaml).unwrap();
    let path = file.to_str().unwrap();
    let args = ["run", "-f", path, "-image", IMAGE, "-mem", "32", "-wait"];
    let out = success(&env, &args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let (first, second) = (
        lines[0].split_once('\t').unwrap(),
        lines[1].split_once('\t').unwrap(),
    );
    assert_eq!((first.1, second.1), ("first", "second"));
    assert!(
        lines[2].starts_with(first.0) && lines[2].ends_with("finished (exit code 0)"),
        "{out}"
    );
    assert_eq!(service.output(first.0, "stdout").await, "first one\n");
    assert_eq!(service.output(second.0, "stdout").await, "second\n");
    assert_eq!(service.task(second.0).await["mem"], 48.0);
    assert_eq!(service.task(first.0).await["mem"], 32.0);
    std::fs::write(&file, "- image: x\n- imge: y\n").unwrap();
    let line = failure(&env, &["run", "-f", path], 2);
    assert!(line.contains("tasks[1]") && line.contains("imge"), "{line}");
}

#[tokio::test]
async fn credentials_come_from_the_environment() {
    let settings = Settings::new()
        .set("http_credentials", "operator:s3cret-pw")
        .set("bearer_tokens", "token-one");
    let service = Service::start(settings).await;
    let env = Env::for_service(&service);
    let line = failure(&env, &["ls"], 5);
    assert!(
        line.contains("401") && line.contains("EREMETIC_TOKEN"),
        "{line}"
    );
    success(&env.clone().set("EREMETIC_TOKEN", "token-one"), &["ls"]);
    let basic = env
        .clone()
        .set("EREMETIC_USER", "operator")
        .set("EREMETIC_PASSWORD", "s3cret-pw");
    success(&basic, &["ls"]);
    failure(&env.clone().set("EREMETIC_TOKEN", "wrong"), &["ls"], 5);
    let in_url = Env::default().set(
        "EREMETIC_URL",
        format!("http://operator:s3cret-pw@127.0.0.1:{}", service.port()),
    );
    success(&in_url, &["ls"]);
    // The version route stays open, as a health check.
    success(&env, &["version"]);
}

#[tokio::test]
async fn hermit_insecure_accepts_a_self_signed_certificate() {
    let certificate = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert, certificate.cert.pem()).unwrap();
    std::fs::write(&key, certificate.signing_key.serialize_pem()).unwrap();
    let settings = Settings::new()
        .set("tls_cert", cert.to_str().unwrap())
        .set("tls_key", key.to_str().unwrap());
    let service = Service::start(settings).await;
    let env = Env::for_service(&service);
    assert!(env.0["EREMETIC_URL"].starts_with("https://"));
    // Without HERMIT_INSECURE the unknown issuer is refused, as an unreachable server.
    let line = failure(&env, &["ls"], 3);
    assert!(line.to_lowercase().contains("certificate"), "{line}");
    let insecure = env.set("HERMIT_INSECURE", "1");
    let id = run_task(&insecure, &["echo over tls"]);
    assert_eq!(success(&insecure, &["wait", &id]).lines().count(), 1);
    assert_eq!(success(&insecure, &["logs", &id]), "over tls\n");
}

#[test]
fn unreachable_server_is_a_one_line_error_with_exit_code_3() {
    let env = Env::default().set("EREMETIC_URL", format!("http://127.0.0.1:{}", free_port()));
    for args in [&["ls"][..], &["task", UNKNOWN_ID], &["version"]] {
        let line = failure(&env, args, 3);
        assert!(line.contains("cannot reach"), "{line}");
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let env = Env::default();
    let line = failure(&env, &["frobnicate"], 2);
    assert!(line.contains("frobnicate"), "{line}");
    let line = failure(&env, &["ls", "-bogus"], 2);
    assert!(line.contains("--bogus"), "{line}");
    failure(&env, &["task"], 2);
    let bad_url = Env::default().set("EREMETIC_URL", "localhost:8080");
    failure(&bad_url, &["ls"], 2);
}

#[test]
fn help_and_bash_completions_are_printed() {
    let usage = success(&Env::default(), &[]);
    assert!(
        usage.contains("Usage: hermit") && usage.contains("completions"),
        "{usage}"
    );
    let help = success(&Env::default(), &["-help"]);
    assert!(help.contains("Exit codes:"), "{help}");
    let script = success(&Env::default(), &["completions", "bash"]);
    assert!(
        script.contains("_hermit") && script.contains("--filter"),
        "{script}"
    );
    assert!(!success(&Env::default(), &["completions", "zsh"]).is_empty());
    assert!(!success(&Env::default(), &["completions", "fish"]).is_empty());
}
