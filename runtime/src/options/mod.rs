//! docker-run style options, as found in the legacy Mesos `CommandInfo.container.options` list
//! and in `ContainerInfo.DockerInfo.parameters`, parsed into typed [`DockerOption`]s and then
//! applied onto a [`ContainerSpec`].
//!
//! Parsing and applying are separate pure steps: [`parse_options`] / [`parse_parameters`]
//! validate everything first (an unknown or unsupported flag is an error, never silently
//! ignored: Deimos passed any flag straight to `docker run`, D-17), then [`apply_options`]
//! changes the spec.
//!
//! Syntax follows docker's flag library: `--flag=value`, `--flag value`, `-f value`,
//! `-f=value`, `-fvalue`, combined short booleans (`-it`), and booleans as `--privileged` or
//! `--privileged=false`. Decisions where docker's behaviour cannot be kept:
//! - `--name` is rejected: deimos names containers itself to find them again.
//! - `--env-file` is rejected (it would read a file on the agent), as is a bare `-e NAME`
//!   (it would copy the agent's environment into the task).
//! - `--rm`, `-d`, `-i`, `-t` and `--sig-proxy` describe how the docker CLI client runs a
//!   container; deimos always runs containers detached, without stdin or a terminal, and removes
//!   them itself. They are accepted for compatibility with Deimos-era task definitions and
//!   returned as [`DockerOption::Ignored`] with the reason, so the caller can log it.
//! - `--memory-swap`, `--expose`, `-P`, `--mount`, `--cidfile`, `--restart`, `--attach` are
//!   rejected with a reason: the spec has no equivalent or deimos owns that behaviour.
//! - Only bind mounts of absolute host paths, and ports on all host addresses, are supported.

mod parse;
mod values;

use crate::spec::{Command, ContainerSpec, EnvVar, NetworkMode, PortMapping, VolumeMount};

pub use parse::{parse_options, parse_parameters};
pub use values::MAX_PORTS_PER_OPTION;

/// The separator in a legacy options list after which the command's argv follows.
pub const ARGV_SEPARATOR: &str = "//";

/// One parsed docker-run option.
#[derive(Debug, Clone, PartialEq)]
pub enum DockerOption {
    /// `-v`/`--volume host:container[:ro|rw]`.
    Volume(VolumeMount),
    /// `--volumes-from container[:ro|rw]`.
    VolumesFrom(String),
    /// `-e`/`--env NAME=value`.
    Env(EnvVar),
    /// `-p`/`--publish`: one mapping, or several for a port range.
    Publish(Vec<PortMapping>),
    /// `-c`/`--cpu-shares`; 0 means docker's default.
    CpuShares(u64),
    /// `--cpus`: a hard limit in CPUs; 0 means no limit.
    Cpus(f64),
    /// `-m`/`--memory` in bytes; 0 means no limit.
    Memory(u64),
    /// `--net`/`--network`.
    Network(NetworkMode),
    /// `--dns`.
    Dns(String),
    /// `-w`/`--workdir` (absolute).
    WorkDir(String),
    /// `--privileged[=bool]`.
    Privileged(bool),
    /// `-u`/`--user`.
    User(String),
    /// `--entrypoint`: a single program, as in docker; empty clears the image's entrypoint.
    Entrypoint(String),
    /// `-l`/`--label key[=value]`.
    Label {
        /// Label key.
        key: String,
        /// Label value (empty when not given).
        value: String,
    },
    /// `--add-host host:ip`.
    AddHost(String),
    /// `--cap-add`.
    CapAdd(String),
    /// `--cap-drop`.
    CapDrop(String),
    /// `-h`/`--hostname`.
    Hostname(String),
    /// A docker CLI flag accepted for compatibility that has no effect here.
    Ignored {
        /// The flag as written (`--rm`, `-t`).
        option: String,
        /// Why it has no effect.
        reason: &'static str,
    },
}

/// Why an options list or a parameter could not be parsed. The first problem is reported:
/// after an unknown flag it is unknown whether the next argument is its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// A flag docker-run does not have (or this parser does not know).
    #[error("unknown docker option {option:?}")]
    Unknown {
        /// The flag as written.
        option: String,
    },
    /// A docker-run flag deliberately not supported.
    #[error("unsupported docker option {option:?}: {reason}")]
    Unsupported {
        /// The flag as written.
        option: String,
        /// Why it is not supported.
        reason: &'static str,
    },
    /// A flag that takes a value came last.
    #[error("option {option:?} needs a value")]
    MissingValue {
        /// The flag as written.
        option: String,
    },
    /// A flag's value is malformed or not supported.
    #[error("invalid {what} {value:?} for {option:?}: {reason}")]
    InvalidValue {
        /// The flag as written.
        option: String,
        /// The kind of value expected (`memory`, `volume`, …).
        what: &'static str,
        /// The value (with an environment variable's value hidden).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A positional argument where only flags are allowed.
    #[error(
        "unexpected argument {argument:?}: only docker options are allowed here (a command goes \
         after \"//\")"
    )]
    UnexpectedArgument {
        /// The argument.
        argument: String,
    },
    /// A `DockerInfo` parameter whose key cannot name a flag.
    #[error("invalid docker parameter key {key:?}: {reason}")]
    InvalidParameterKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Splits a legacy options list at the first [`ARGV_SEPARATOR`]: the options before it, and the
/// argv after it (`None` when there is no separator; an empty argv means the image's default
/// command).
pub fn split_argv(list: &[String]) -> (&[String], Option<Vec<String>>) {
    match list.iter().position(|arg| arg == ARGV_SEPARATOR) {
        Some(at) => (&list[..at], Some(list[at + 1..].to_vec())),
        None => (list, None),
    }
}

/// Deimos's options policy (`[containers.options]`): the task's options if there are any and
/// they are not ignored, else the configured `default`; then `append`. The task's list is split
/// at `//` first, so its argv applies even when its options are ignored. Only the task's list
/// can carry an argv; `default` and `append` are options only.
pub fn effective_options(
    task: &[String],
    default: &[String],
    append: &[String],
    ignore: bool,
) -> (Vec<String>, Option<Vec<String>>) {
    let (task_options, argv) = split_argv(task);
    let base = if !task_options.is_empty() && !ignore {
        task_options
    } else {
        default
    };
    let options = base.iter().chain(append).cloned().collect();
    (options, argv)
}

/// The command for an argv given after `//`: empty means the image's default command.
pub fn command_from_argv(argv: Vec<String>) -> Command {
    if argv.is_empty() {
        Command::ImageDefault
    } else {
        Command::Argv(argv)
    }
}

/// The options that have no effect, to be logged by the caller.
pub fn ignored_options(options: &[DockerOption]) -> impl Iterator<Item = (&str, &str)> {
    options.iter().filter_map(|option| match option {
        DockerOption::Ignored { option, reason } => Some((option.as_str(), *reason)),
        _ => None,
    })
}

/// Applies parsed options to a spec, in order (a later option wins where docker's last flag
/// wins; lists are appended to).
///
/// Resource options (`-c`, `--cpus`, `-m`) replace the spec's limits: a caller that wants the
/// Mesos allocation to win, as Deimos placed `-c`/`-m` after the task's options, applies the
/// allocation afterwards.
pub fn apply_options(mut spec: ContainerSpec, options: &[DockerOption]) -> ContainerSpec {
    for option in options {
        apply_option(&mut spec, option);
    }
    spec
}

fn apply_option(spec: &mut ContainerSpec, option: &DockerOption) {
    match option {
        DockerOption::Volume(mount) => spec.volumes.push(mount.clone()),
        DockerOption::VolumesFrom(container) => spec.volumes_from.push(container.clone()),
        DockerOption::Env(var) => spec.env.push(var.clone()),
        DockerOption::Publish(ports) => spec.ports.extend_from_slice(ports),
        DockerOption::CpuShares(shares) => {
            spec.limits.cpu_shares = Some(*shares).filter(|s| *s > 0)
        }
        DockerOption::Cpus(cpus) => spec.limits.cpu_quota = Some(*cpus).filter(|c| *c > 0.0),
        DockerOption::Memory(bytes) => spec.limits.memory_bytes = Some(*bytes).filter(|b| *b > 0),
        DockerOption::Network(mode) => spec.network = mode.clone(),
        DockerOption::Dns(server) => spec.dns.push(server.clone()),
        DockerOption::WorkDir(dir) => spec.working_dir = Some(dir.clone()),
        DockerOption::Privileged(on) => spec.privileged = *on,
        DockerOption::User(user) => spec.user = Some(user.clone()),
        DockerOption::Entrypoint(program) if program.is_empty() => spec.entrypoint = Some(vec![]),
        DockerOption::Entrypoint(program) => spec.entrypoint = Some(vec![program.clone()]),
        DockerOption::Label { key, value } => {
            spec.labels.insert(key.clone(), value.clone());
        }
        DockerOption::AddHost(entry) => spec.extra_hosts.push(entry.clone()),
        DockerOption::CapAdd(cap) => spec.cap_add.push(cap.clone()),
        DockerOption::CapDrop(cap) => spec.cap_drop.push(cap.clone()),
        DockerOption::Hostname(name) => spec.hostname = Some(name.clone()),
        DockerOption::Ignored { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::spec::{Protocol, Sandbox};

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn split_argv_takes_everything_after_the_first_separator() {
        let list = strings(&["-v", "/a:/b", "//", "echo", "//", "x"]);
        let (options, argv) = split_argv(&list);
        assert_eq!(options, strings(&["-v", "/a:/b"]).as_slice());
        assert_eq!(argv, Some(strings(&["echo", "//", "x"])));
        let list = strings(&["-t", "//"]);
        assert_eq!(
            split_argv(&list),
            (strings(&["-t"]).as_slice(), Some(vec![]))
        );
        let list = strings(&["-t"]);
        assert_eq!(split_argv(&list), (list.as_slice(), None));
    }

    #[test]
    fn effective_options_follow_the_deimos_policy() {
        let default = strings(&["--dns", "1.1.1.1"]);
        let append = strings(&["-l", "a=b"]);
        // (task options, ignore, expected options, expected argv)
        type Case = (Vec<String>, bool, Vec<String>, Option<Vec<String>>);
        let cases: Vec<Case> = vec![
            // Task options win over the default; append always follows.
            (
                strings(&["-m", "1g"]),
                false,
                strings(&["-m", "1g", "-l", "a=b"]),
                None,
            ),
            // No task options: the default.
            (
                vec![],
                false,
                strings(&["--dns", "1.1.1.1", "-l", "a=b"]),
                None,
            ),
            // Ignored task options: the default, but the argv after // still applies.
            (
                strings(&["-m", "1g", "//", "ls"]),
                true,
                strings(&["--dns", "1.1.1.1", "-l", "a=b"]),
                Some(strings(&["ls"])),
            ),
            // Only an argv: the default options, the argv.
            (
                strings(&["//", "ls", "-l"]),
                false,
                strings(&["--dns", "1.1.1.1", "-l", "a=b"]),
                Some(strings(&["ls", "-l"])),
            ),
            // An empty argv after // means the image's default command.
            (
                strings(&["-t", "//"]),
                false,
                strings(&["-t", "-l", "a=b"]),
                Some(vec![]),
            ),
        ];
        for (task, ignore, options, argv) in cases {
            let result = effective_options(&task, &default, &append, ignore);
            assert_eq!(result, (options, argv), "task {task:?} ignore {ignore}");
        }
    }

    #[test]
    fn empty_argv_means_image_default_command() {
        assert_eq!(command_from_argv(vec![]), Command::ImageDefault);
        assert_eq!(
            command_from_argv(strings(&["ls"])),
            Command::Argv(strings(&["ls"]))
        );
    }

    #[test]
    fn applying_options_fills_the_spec() {
        let list = strings(&[
            "-v",
            "/a:/b:ro",
            "--env=X=1",
            "-p",
            "8080:80/udp",
            "-c",
            "512",
            "-m",
            "1g",
            "--cpus",
            "1.5",
            "--net",
            "host",
            "--dns",
            "8.8.8.8",
            "-w",
            "/work",
            "--privileged",
            "-u",
            "nobody",
            "--entrypoint",
            "/bin/sh",
            "-l",
            "team=x",
            "--add-host",
            "db:1.2.3.4",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "MKNOD",
            "-h",
            "box",
            "--volumes-from",
            "c1",
            "--rm",
        ]);
        let options = parse_options(&list).unwrap();
        let spec = apply_options(ContainerSpec::default(), &options);
        assert_eq!(
            spec.volumes,
            vec![VolumeMount {
                host_path: PathBuf::from("/a"),
                container_path: "/b".into(),
                read_only: true
            }]
        );
        assert_eq!(spec.env, vec![EnvVar::new("X", "1")]);
        let udp = PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Udp,
        };
        assert_eq!(spec.ports, vec![udp]);
        assert_eq!(spec.limits.cpu_shares, Some(512));
        assert_eq!(spec.limits.memory_bytes, Some(1 << 30));
        assert_eq!(spec.limits.cpu_quota, Some(1.5));
        assert_eq!(spec.network, NetworkMode::Host);
        assert_eq!(spec.dns, strings(&["8.8.8.8"]));
        assert_eq!(spec.working_dir.as_deref(), Some("/work"));
        assert!(spec.privileged);
        assert_eq!(spec.user.as_deref(), Some("nobody"));
        assert_eq!(spec.entrypoint, Some(strings(&["/bin/sh"])));
        assert_eq!(spec.labels.get("team").map(String::as_str), Some("x"));
        assert_eq!(spec.extra_hosts, strings(&["db:1.2.3.4"]));
        assert_eq!(spec.cap_add, strings(&["NET_ADMIN"]));
        assert_eq!(spec.cap_drop, strings(&["MKNOD"]));
        assert_eq!(spec.hostname.as_deref(), Some("box"));
        assert_eq!(spec.volumes_from, strings(&["c1"]));
        assert_eq!(
            ignored_options(&options)
                .map(|(o, _)| o)
                .collect::<Vec<_>>(),
            ["--rm"]
        );
    }

    #[test]
    fn applying_options_keeps_unrelated_fields_and_later_flags_win() {
        let base = ContainerSpec {
            image: "busybox".into(),
            sandbox: Some(Sandbox {
                host_dir: "/s".into(),
                container_dir: "/mnt".into(),
            }),
            privileged: true,
            ..ContainerSpec::default()
        };
        let options = parse_options(&strings(&[
            "-m",
            "1g",
            "-m",
            "0",
            "--privileged=false",
            "--entrypoint=",
            "-c",
            "0",
        ]))
        .unwrap();
        let spec = apply_options(base.clone(), &options);
        assert_eq!(spec.image, "busybox");
        assert_eq!(spec.sandbox, base.sandbox);
        assert_eq!(spec.limits.memory_bytes, None, "-m 0 means no limit");
        assert_eq!(spec.limits.cpu_shares, None, "-c 0 means docker's default");
        assert!(!spec.privileged);
        assert_eq!(
            spec.entrypoint,
            Some(vec![]),
            "an empty entrypoint clears the image's"
        );
    }
}
