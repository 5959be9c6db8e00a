//! The executor process as the agent's Mesos containerizer (posix launcher)
//! starts it: its environment (`executorEnvironment` in `src/slave/slave.cpp`
//! merged as `MesosContainerizerProcess::_launch` and `mesos-containerizer
//! launch` do), its argv (`sh -c value` or value + arguments), the sandbox
//! as working directory with `stdout`/`stderr` files, its URIs placed in
//! the sandbox, and its destruction (SIGKILL of its process group).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use mesos_proto::v1::{command_info, environment, CommandInfo};
use tokio::process::{Child, Command};

/// `os::host_default_path()`: the PATH given when the environment has none.
pub(super) const HOST_DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The executor's complete environment (nothing is inherited from the
/// agent process). Lowest priority first: the agent's `LIBPROCESS_IP`, the
/// `--executor_environment_variables` flag, the agent's `LIBPROCESS_PORT`
/// and `MESOS_*` variables (`agent_env`, which includes the containerizer's
/// `MESOS_SANDBOX`), then the command's own variables (secrets are not
/// resolved here and are left out); PATH defaults to the host's.
pub(super) fn executor_environment(
    libprocess_ip: Option<&str>,
    flags_env: &[(String, String)],
    agent_env: &[(String, String)],
    command: Option<&CommandInfo>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(ip) = libprocess_ip {
        env.insert("LIBPROCESS_IP".to_owned(), ip.to_owned());
    }
    env.extend(flags_env.iter().cloned());
    env.extend(agent_env.iter().cloned());
    let variables = command
        .and_then(|c| c.environment.as_ref())
        .map(|e| e.variables.as_slice())
        .unwrap_or_default();
    for variable in variables {
        if variable.r#type() == environment::variable::Type::Secret {
            continue;
        }
        let value = variable.value.clone().unwrap_or_default();
        env.insert(variable.name.clone(), value);
    }
    env.entry("PATH".to_owned())
        .or_insert_with(|| HOST_DEFAULT_PATH.to_owned());
    env
}

/// What to exec: the program and its full argv (argv\[0\] included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invocation {
    /// The program (`sh` for a shell command).
    pub(super) program: PathBuf,
    /// argv, starting with argv\[0\].
    pub(super) argv: Vec<String>,
}

/// `mesos-containerizer launch`: a shell command (`shell` defaults to true)
/// runs as `sh -c <value>`; otherwise `value` is the program and
/// `arguments` the whole argv, and a relative program is looked up in the
/// sandbox first.
pub(super) fn invocation(command: &CommandInfo, sandbox: &Path) -> Result<Invocation, String> {
    let value = command.value.clone().unwrap_or_default();
    if command.shell.unwrap_or(true) {
        if value.is_empty() {
            return Err("the executor's CommandInfo is a shell command without a value".to_owned());
        }
        return Ok(Invocation {
            program: PathBuf::from("sh"),
            argv: vec!["sh".to_owned(), "-c".to_owned(), value],
        });
    }
    if value.is_empty() {
        return Err("the executor's CommandInfo has no value (the program to run)".to_owned());
    }
    let mut program = PathBuf::from(&value);
    if program.is_relative() && sandbox.join(&program).is_file() {
        program = sandbox.join(&program);
    }
    let argv = if command.arguments.is_empty() {
        vec![value]
    } else {
        command.arguments.clone()
    };
    Ok(Invocation { program, argv })
}

/// Starts the executor in a process group of its own (what the agent kills
/// when it destroys the container), in `sandbox`, with exactly `env`, its
/// output appended to `<sandbox>/stdout` and `<sandbox>/stderr`.
pub(super) fn spawn(
    invocation: &Invocation,
    env: &BTreeMap<String, String>,
    sandbox: &Path,
) -> Result<Child, String> {
    let output = |name: &str| -> Result<Stdio, String> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.join(name))
            .map(Stdio::from)
            .map_err(|e| format!("cannot open the sandbox's {name}: {e}"))
    };
    let mut command = Command::new(&invocation.program);
    if let Some(arg0) = invocation.argv.first() {
        command.arg0(arg0);
    }
    command
        .args(invocation.argv.iter().skip(1))
        .env_clear()
        .envs(env)
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(output("stdout")?)
        .stderr(output("stderr")?)
        .process_group(0);
    command.spawn().map_err(|e| {
        format!(
            "cannot execute {} in {}: {e}",
            invocation.program.display(),
            sandbox.display()
        )
    })
}

/// SIGKILLs the process group `pid` leads and `pid` itself (the posix
/// launcher's destroy); a group already gone is fine.
pub(super) fn destroy(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(raw);
    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

/// Archive suffixes the Mesos fetcher extracts when `extract` is set.
const ARCHIVES: [&str; 9] = [
    ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip", ".gz",
];

/// Places the command's URIs in the sandbox as the Mesos fetcher does for
/// local sources (`file://` URIs and absolute paths): copied under
/// `output_file` or their base name, made executable when asked. Remote
/// URIs and archives to extract are refused with the URI and the reason
/// (this harness fetches local files only; pre-place others).
pub(super) fn fetch_uris(uris: &[command_info::Uri], sandbox: &Path) -> Result<(), String> {
    for uri in uris {
        fetch_one(uri, sandbox)
            .map_err(|reason| format!("Failed to fetch '{}': {reason}", uri.value))?;
    }
    Ok(())
}

fn fetch_one(uri: &command_info::Uri, sandbox: &Path) -> Result<(), String> {
    let source = match uri.value.strip_prefix("file://") {
        Some(path) => PathBuf::from(path),
        None if uri.value.starts_with('/') => PathBuf::from(&uri.value),
        None => {
            return Err(
                "the harness agent fetches local files only (file:// or an absolute path)"
                    .to_owned(),
            )
        }
    };
    let name = match &uri.output_file {
        Some(name) if !name.is_empty() => PathBuf::from(name),
        _ => PathBuf::from(source.file_name().ok_or("the URI names no file")?),
    };
    let extract = uri.extract.unwrap_or(true);
    let file_name = name.display().to_string();
    if extract && ARCHIVES.iter().any(|suffix| file_name.ends_with(suffix)) {
        return Err("archives are not extracted by the harness agent".to_owned());
    }
    if name.is_absolute()
        || name
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(format!("the output file {file_name} leaves the sandbox"));
    }
    let target = sandbox.join(&name);
    std::fs::copy(&source, &target)
        .map_err(|e| format!("cannot copy {}: {e}", source.display()))?;
    if uri.executable.unwrap_or(false) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::Environment;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn variable(name: &str, value: &str, secret: bool) -> environment::Variable {
        environment::Variable {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            r#type: Some(if secret {
                environment::variable::Type::Secret as i32
            } else {
                environment::variable::Type::Value as i32
            }),
            secret: None,
        }
    }

    #[test]
    fn environment_priority_is_command_over_agent_over_flags() {
        let command = CommandInfo {
            environment: Some(Environment {
                variables: vec![
                    variable("MESOS_DIRECTORY", "/from/command", false),
                    variable("TOKEN", "hidden", true),
                    variable("PATH", "/opt/bin", false),
                ],
            }),
            ..Default::default()
        };
        let env = executor_environment(
            Some("10.0.0.1"),
            &pairs(&[("LIBPROCESS_PORT", "5051"), ("DOCKER_HOST", "unix:///d")]),
            &pairs(&[("LIBPROCESS_PORT", "0"), ("MESOS_DIRECTORY", "/sandbox")]),
            Some(&command),
        );
        assert_eq!(env["LIBPROCESS_IP"], "10.0.0.1");
        assert_eq!(env["LIBPROCESS_PORT"], "0");
        assert_eq!(env["DOCKER_HOST"], "unix:///d");
        assert_eq!(env["MESOS_DIRECTORY"], "/from/command");
        assert_eq!(env["PATH"], "/opt/bin");
        assert!(!env.contains_key("TOKEN"));
    }

    #[test]
    fn environment_without_path_gets_the_host_default() {
        let env = executor_environment(None, &[], &pairs(&[("MESOS_SLAVE_ID", "a")]), None);
        assert_eq!(env["PATH"], HOST_DEFAULT_PATH);
        assert!(!env.contains_key("LIBPROCESS_IP"));
    }

    #[test]
    fn shell_commands_run_under_sh_and_others_exec_their_arguments() {
        let sandbox = Path::new("/nonexistent-sandbox");
        let shell = CommandInfo {
            value: Some("exec ./deimos-executor".to_owned()),
            ..Default::default()
        };
        assert_eq!(
            invocation(&shell, sandbox).unwrap(),
            Invocation {
                program: PathBuf::from("sh"),
                argv: vec!["sh".into(), "-c".into(), "exec ./deimos-executor".into()],
            }
        );
        let plain = CommandInfo {
            shell: Some(false),
            value: Some("/usr/bin/exec".to_owned()),
            arguments: vec!["exec-name".into(), "--flag".into()],
            ..Default::default()
        };
        let plain = invocation(&plain, sandbox).unwrap();
        assert_eq!(plain.program, PathBuf::from("/usr/bin/exec"));
        assert_eq!(plain.argv, ["exec-name", "--flag"]);
        let empty = CommandInfo::default();
        let error = invocation(&empty, sandbox).unwrap_err();
        assert!(error.contains("without a value"), "{error}");
    }

    #[test]
    fn local_uris_are_copied_into_the_sandbox_and_remote_ones_refused() {
        let dir = std::env::temp_dir().join(format!("fetch-{}", std::process::id()));
        let sandbox = dir.join("sandbox");
        std::fs::create_dir_all(&sandbox).unwrap();
        let source = dir.join("tool");
        std::fs::write(&source, "#!/bin/sh\n").unwrap();
        let uri = |value: String| command_info::Uri {
            value,
            executable: Some(true),
            extract: None,
            cache: None,
            output_file: None,
        };
        fetch_uris(&[uri(format!("file://{}", source.display()))], &sandbox).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(sandbox.join("tool"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o755);
        let error = fetch_uris(&[uri("http://repo.example/tool".into())], &sandbox).unwrap_err();
        assert!(
            error.starts_with("Failed to fetch 'http://repo.example/tool': "),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
