//! The flag table and the tokenizer for docker-run options.

use super::values::{self, Invalid};
use super::{DockerOption, OptionsError};

/// How a flag is handled.
#[derive(Clone, Copy)]
enum Flag {
    /// Takes a value.
    Value(fn(&str) -> Result<DockerOption, Invalid>),
    /// A boolean (`--flag`, `--flag=false`).
    Bool(fn(bool) -> DockerOption),
    /// A boolean docker CLI flag accepted without effect, with the reason.
    Ignored(&'static str),
    /// A docker-run flag rejected with a reason; `takes_value` tells how docker parses it.
    Unsupported {
        reason: &'static str,
        takes_value: bool,
    },
}

impl Flag {
    fn is_boolean(self) -> bool {
        match self {
            Flag::Value(_) => false,
            Flag::Bool(_) | Flag::Ignored(_) => true,
            Flag::Unsupported { takes_value, .. } => !takes_value,
        }
    }
}

/// The long name of a one-letter flag.
fn short_to_long(short: char) -> Option<&'static str> {
    Some(match short {
        'a' => "attach",
        'c' => "cpu-shares",
        'd' => "detach",
        'e' => "env",
        'h' => "hostname",
        'i' => "interactive",
        'l' => "label",
        'm' => "memory",
        'p' => "publish",
        'P' => "publish-all",
        't' => "tty",
        'u' => "user",
        'v' => "volume",
        'w' => "workdir",
        _ => return None,
    })
}

const CLIENT_ONLY: &str =
    "deimos always runs containers detached without stdin or terminal and removes them itself";

fn unsupported(reason: &'static str, takes_value: bool) -> Flag {
    Flag::Unsupported {
        reason,
        takes_value,
    }
}

/// The flag with this long name.
fn lookup(long: &str) -> Option<Flag> {
    use DockerOption as O;
    let flag = match long {
        "volume" => Flag::Value(|v| values::parse_volume(v).map(O::Volume)),
        "volumes-from" => Flag::Value(|v| values::parse_volumes_from(v).map(O::VolumesFrom)),
        "env" => Flag::Value(|v| values::parse_env(v).map(O::Env)),
        "publish" => Flag::Value(|v| values::parse_publish(v).map(O::Publish)),
        "cpu-shares" => Flag::Value(|v| values::parse_cpu_shares(v).map(O::CpuShares)),
        "cpus" => Flag::Value(|v| values::parse_cpus(v).map(O::Cpus)),
        "memory" => Flag::Value(|v| values::parse_memory(v).map(O::Memory)),
        "net" | "network" => Flag::Value(|v| values::parse_network(v).map(O::Network)),
        "dns" => Flag::Value(|v| values::parse_non_empty("DNS server", v).map(O::Dns)),
        "workdir" => Flag::Value(parse_workdir),
        "privileged" => Flag::Bool(O::Privileged),
        "user" => Flag::Value(|v| values::parse_non_empty("user", v).map(O::User)),
        "entrypoint" => Flag::Value(|v| Ok(O::Entrypoint(v.to_owned()))),
        "label" => {
            Flag::Value(|v| values::parse_label(v).map(|(key, value)| O::Label { key, value }))
        }
        "add-host" => Flag::Value(|v| values::parse_add_host(v).map(O::AddHost)),
        "cap-add" => Flag::Value(|v| values::parse_non_empty("capability", v).map(O::CapAdd)),
        "cap-drop" => Flag::Value(|v| values::parse_non_empty("capability", v).map(O::CapDrop)),
        "hostname" => Flag::Value(|v| values::parse_non_empty("host name", v).map(O::Hostname)),
        "rm" | "detach" | "interactive" | "tty" | "sig-proxy" => Flag::Ignored(CLIENT_ONLY),
        "name" => unsupported("deimos names containers itself to find them again", true),
        "env-file" => unsupported("it would read a file on the agent; use -e NAME=value", true),
        "memory-swap" => unsupported("only a memory limit (-m) can be set", true),
        "expose" => unsupported("publish ports with -p instead", true),
        "publish-all" => unsupported("publish ports explicitly with -p", false),
        "mount" => unsupported("use -v /host/path:/container/path[:ro] instead", true),
        "cidfile" => unsupported("deimos tracks the container id itself", true),
        "restart" => unsupported("restarts are decided by Mesos and the scheduler", true),
        "attach" => unsupported("deimos never attaches to the container", true),
        _ => return None,
    };
    Some(flag)
}

fn parse_workdir(value: &str) -> Result<DockerOption, Invalid> {
    if !value.starts_with('/') {
        return Err(Invalid {
            what: "working directory",
            reason: "must be an absolute path".into(),
        });
    }
    Ok(DockerOption::WorkDir(value.to_owned()))
}

/// Parses a docker-run options list (the part before `//`) into typed options, in order.
///
/// Fails on the first unknown, unsupported or malformed option, or on a positional argument.
pub fn parse_options(args: &[String]) -> Result<Vec<DockerOption>, OptionsError> {
    let mut parsed = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut next_value = || rest.next().map(String::as_str);
        if let Some(long) = arg.strip_prefix("--").filter(|long| !long.is_empty()) {
            parsed.push(parse_long(long, &mut next_value)?);
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty() && *s != "-") {
            parse_shorts(arg, shorts, &mut next_value, &mut parsed)?;
        } else {
            return Err(OptionsError::UnexpectedArgument {
                argument: arg.clone(),
            });
        }
    }
    Ok(parsed)
}

/// Parses `DockerInfo.parameters`: each `{key, value}` means `--key=value` (as the Mesos docker
/// containerizer passes them), so `key` is a long flag name without dashes.
pub fn parse_parameters(
    parameters: &[(String, String)],
) -> Result<Vec<DockerOption>, OptionsError> {
    parameters
        .iter()
        .map(|(key, value)| {
            let reason = if key.is_empty() {
                Some("it is empty")
            } else if key.starts_with('-') {
                Some("give the long flag name without dashes, e.g. \"volume\"")
            } else if key.contains('=') || key.chars().any(char::is_whitespace) {
                Some("it must be a flag name")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(OptionsError::InvalidParameterKey {
                    key: key.clone(),
                    reason,
                });
            }
            parse_long(&format!("{key}={value}"), &mut || None)
        })
        .collect()
}

/// Parses `name`, `name=value` or `name` followed by a value argument (`--` already removed).
fn parse_long<'a>(
    text: &'a str,
    next_value: &mut dyn FnMut() -> Option<&'a str>,
) -> Result<DockerOption, OptionsError> {
    let (name, inline) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (text, None),
    };
    let option = format!("--{name}");
    let flag = lookup(name).ok_or_else(|| OptionsError::Unknown {
        option: option.clone(),
    })?;
    let value = if flag.is_boolean() {
        inline
    } else {
        Some(
            inline
                .or_else(next_value)
                .ok_or_else(|| OptionsError::MissingValue {
                    option: option.clone(),
                })?,
        )
    };
    apply_flag(flag, name, option, value)
}

/// Parses a group of one-letter flags (`-v X`, `-vX`, `-v=X`, `-it`, `-t=false`).
fn parse_shorts<'a>(
    arg: &str,
    shorts: &'a str,
    next_value: &mut dyn FnMut() -> Option<&'a str>,
    parsed: &mut Vec<DockerOption>,
) -> Result<(), OptionsError> {
    for (at, short) in shorts.char_indices() {
        let option = format!("-{short}");
        let Some((long, flag)) = short_to_long(short).and_then(|l| Some((l, lookup(l)?))) else {
            // `-net` names the whole word, `-itx` the offending letter.
            let option = if at == 0 { arg.to_owned() } else { option };
            return Err(OptionsError::Unknown { option });
        };
        let after = &shorts[at + short.len_utf8()..];
        let inline = after.strip_prefix('=');
        if flag.is_boolean() {
            parsed.push(apply_flag(flag, long, option, inline)?);
            if inline.is_some() {
                return Ok(());
            }
            continue;
        }
        let value = match inline.or(Some(after).filter(|a| !a.is_empty())) {
            Some(value) => value,
            None => next_value().ok_or_else(|| OptionsError::MissingValue {
                option: option.clone(),
            })?,
        };
        parsed.push(apply_flag(flag, long, option, Some(value))?);
        return Ok(());
    }
    Ok(())
}

/// Turns a flag and its value (`None` for a boolean given without value) into an option.
fn apply_flag(
    flag: Flag,
    long: &str,
    option: String,
    value: Option<&str>,
) -> Result<DockerOption, OptionsError> {
    let invalid = |invalid: Invalid, value: &str| OptionsError::InvalidValue {
        option: option.clone(),
        what: invalid.what,
        value: shown_value(long, value),
        reason: invalid.reason,
    };
    let boolean = |value: Option<&str>| match value {
        None => Ok(true),
        Some(text) => values::parse_bool(text).map_err(|e| invalid(e, text)),
    };
    match flag {
        Flag::Value(parse) => {
            let value = value.unwrap_or_default();
            parse(value).map_err(|e| invalid(e, value))
        }
        Flag::Bool(make) => Ok(make(boolean(value)?)),
        Flag::Ignored(reason) => {
            boolean(value)?;
            Ok(DockerOption::Ignored { option, reason })
        }
        Flag::Unsupported { reason, .. } => Err(OptionsError::Unsupported { option, reason }),
    }
}

/// The value as shown in an error: an environment variable's value may be a secret.
fn shown_value(long: &str, value: &str) -> String {
    match (long, value.split_once('=')) {
        ("env", Some((name, _))) => format!("{name}=…"),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::spec::{EnvVar, NetworkMode, PortMapping, Protocol, VolumeMount};

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn parse(list: &[&str]) -> Result<Vec<DockerOption>, OptionsError> {
        parse_options(&strings(list))
    }

    fn error(list: &[&str]) -> String {
        parse(list).unwrap_err().to_string()
    }

    #[test]
    fn every_value_form_is_accepted() {
        let expected = vec![DockerOption::Memory(512 << 20)];
        for list in [
            &["-m", "512m"][..],
            &["-m512m"],
            &["-m=512m"],
            &["--memory", "512m"],
            &["--memory=512m"],
        ] {
            assert_eq!(parse(list), Ok(expected.clone()), "{list:?}");
        }
    }

    #[test]
    fn boolean_forms_are_accepted() {
        let on = Ok(vec![DockerOption::Privileged(true)]);
        let off = Ok(vec![DockerOption::Privileged(false)]);
        assert_eq!(parse(&["--privileged"]), on);
        assert_eq!(parse(&["--privileged=true"]), on);
        assert_eq!(parse(&["--privileged=false"]), off);
        assert_eq!(parse(&["--privileged=0"]), off);
        // As in docker, a boolean does not consume the next argument.
        assert!(error(&["--privileged", "false"]).contains("unexpected argument \"false\""));
    }

    #[test]
    fn common_flags_parse_to_typed_options() {
        let cases: Vec<(Vec<&str>, DockerOption)> = vec![
            (
                vec!["-v", "/a:/b:ro"],
                DockerOption::Volume(VolumeMount {
                    host_path: "/a".into(),
                    container_path: "/b".into(),
                    read_only: true,
                }),
            ),
            (
                vec!["--volumes-from=c1:ro"],
                DockerOption::VolumesFrom("c1:ro".into()),
            ),
            (vec!["-e", "A=b"], DockerOption::Env(EnvVar::new("A", "b"))),
            (vec!["--env=A=b"], DockerOption::Env(EnvVar::new("A", "b"))),
            (
                vec!["-p", "8080:80/udp"],
                DockerOption::Publish(vec![PortMapping {
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Udp,
                }]),
            ),
            (vec!["-c", "512"], DockerOption::CpuShares(512)),
            (vec!["--cpu-shares=512"], DockerOption::CpuShares(512)),
            (vec!["--cpus", "0.5"], DockerOption::Cpus(0.5)),
            (vec!["--net=none"], DockerOption::Network(NetworkMode::None)),
            (
                vec!["--network", "mynet"],
                DockerOption::Network(NetworkMode::User("mynet".into())),
            ),
            (
                vec!["--dns", "8.8.8.8"],
                DockerOption::Dns("8.8.8.8".into()),
            ),
            (vec!["-w", "/srv"], DockerOption::WorkDir("/srv".into())),
            (vec!["--workdir=/srv"], DockerOption::WorkDir("/srv".into())),
            (
                vec!["-u", "1000:1000"],
                DockerOption::User("1000:1000".into()),
            ),
            (
                vec!["--entrypoint", "/bin/sh"],
                DockerOption::Entrypoint("/bin/sh".into()),
            ),
            (
                vec!["-l", "k=v"],
                DockerOption::Label {
                    key: "k".into(),
                    value: "v".into(),
                },
            ),
            (
                vec!["--add-host", "db:10.0.0.1"],
                DockerOption::AddHost("db:10.0.0.1".into()),
            ),
            (
                vec!["--cap-add=NET_ADMIN"],
                DockerOption::CapAdd("NET_ADMIN".into()),
            ),
            (
                vec!["--cap-drop", "ALL"],
                DockerOption::CapDrop("ALL".into()),
            ),
            (vec!["-h", "box"], DockerOption::Hostname("box".into())),
            (vec!["--hostname=box"], DockerOption::Hostname("box".into())),
        ];
        for (list, option) in cases {
            assert_eq!(parse(&list), Ok(vec![option]), "{list:?}");
        }
    }

    #[test]
    fn value_may_start_with_a_dash_as_in_docker() {
        assert_eq!(
            parse(&["--entrypoint", "-x"]),
            Ok(vec![DockerOption::Entrypoint("-x".into())])
        );
    }

    #[test]
    fn combined_short_booleans_are_ignored_client_flags() {
        let options = parse(&["-it", "--rm", "-d=true"]).unwrap();
        let names: Vec<_> = super::super::ignored_options(&options)
            .map(|(o, _)| o)
            .collect();
        assert_eq!(names, ["-i", "-t", "--rm", "-d"]);
        // A value flag may end a group of booleans.
        let options = parse(&["-itv/a:/b"]).unwrap();
        assert!(matches!(options.last(), Some(DockerOption::Volume(_))));
    }

    #[test]
    fn errors_name_the_option_and_the_reason() {
        let cases: &[(&[&str], &str)] = &[
            (&["--foo"], "unknown docker option \"--foo\""),
            (&["--foo=1"], "unknown docker option \"--foo\""),
            (&["-net", "host"], "unknown docker option \"-net\""),
            (&["-ix"], "unknown docker option \"-x\""),
            (&["-m"], "option \"-m\" needs a value"),
            (&["--volume"], "option \"--volume\" needs a value"),
            (
                &["-m", "12x"],
                "invalid memory \"12x\" for \"-m\": expected a number with an optional b, k, m \
                 or g suffix",
            ),
            (
                &["--privileged=maybe"],
                "invalid boolean \"maybe\" for \"--privileged\"",
            ),
            (&["--rm=maybe"], "invalid boolean \"maybe\" for \"--rm\""),
            (&["-v", "data:/data"], "named volumes are not supported"),
            (
                &["-w", "rel"],
                "invalid working directory \"rel\" for \"-w\"",
            ),
            (&["--name", "x"], "unsupported docker option \"--name\""),
            (
                &["--env-file", "/e"],
                "unsupported docker option \"--env-file\": it would read",
            ),
            (
                &["--memory-swap=1g"],
                "unsupported docker option \"--memory-swap\"",
            ),
            (&["-P"], "unsupported docker option \"-P\""),
            (&["busybox"], "unexpected argument \"busybox\""),
            (&["--"], "unexpected argument \"--\""),
            (&["-"], "unexpected argument \"-\""),
            (&["//", "ls"], "unexpected argument \"//\""),
            (&["-l", "io.deimos.owner=me"], "reserved"),
        ];
        for (list, message) in cases {
            let text = error(list);
            assert!(text.contains(message), "{list:?}: {text}");
        }
    }

    #[test]
    fn env_errors_do_not_show_the_value() {
        let text = error(&["-e", "=secret"]);
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn parameters_are_long_flags_with_values() {
        let parameters = vec![
            ("volume".to_string(), "/a:/b".to_string()),
            ("privileged".to_string(), "true".to_string()),
            ("env".to_string(), "A=b".to_string()),
            ("entrypoint".to_string(), String::new()),
        ];
        let options = parse_parameters(&parameters).unwrap();
        assert_eq!(options.len(), 4);
        assert_eq!(options[1], DockerOption::Privileged(true));
        assert_eq!(options[2], DockerOption::Env(EnvVar::new("A", "b")));
        assert_eq!(options[3], DockerOption::Entrypoint(String::new()));
    }

    #[test]
    fn invalid_parameters_are_rejected_with_a_reason() {
        let cases = [
            ("", "x", "invalid docker parameter key \"\": it is empty"),
            ("-v", "/a:/b", "without dashes"),
            ("foo", "1", "unknown docker option \"--foo\""),
            (
                "privileged",
                "",
                "invalid boolean \"\" for \"--privileged\"",
            ),
            ("memory", "lots", "invalid memory \"lots\""),
        ];
        for (key, value, message) in cases {
            let text = parse_parameters(&[(key.into(), value.into())])
                .unwrap_err()
                .to_string();
            assert!(text.contains(message), "{key}={value}: {text}");
        }
    }

    fn option_like() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("-v".to_string()),
            Just("-e".to_string()),
            Just("-p".to_string()),
            Just("-m".to_string()),
            Just("--privileged".to_string()),
            Just("-it".to_string()),
            Just("//".to_string()),
            "-[a-zA-Z]{1,3}(=[ -~]{0,6})?",
            "--[a-z-]{1,12}(=[ -~]{0,10})?",
            "[ -~]{0,12}",
            "[0-9:./\\-\\[\\]a-z]{0,16}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn random_option_lists_never_panic(list in prop::collection::vec(option_like(), 0..8)) {
            let _ = parse_options(&list);
            let pairs: Vec<(String, String)> =
                list.chunks(2).map(|c| (c[0].clone(), c.last().cloned().unwrap_or_default())).collect();
            let _ = parse_parameters(&pairs);
        }

        #[test]
        fn published_port_ranges_expand_in_order(first in 1u16..60000, len in 0u16..100) {
            let last = first + len;
            let text = format!("{first}-{last}:{first}-{last}/udp");
            let options = parse_options(&["-p".to_string(), text]).unwrap();
            let DockerOption::Publish(ports) = &options[0] else { panic!("not a publish") };
            prop_assert_eq!(ports.len(), usize::from(len) + 1);
            for (offset, port) in ports.iter().enumerate() {
                prop_assert_eq!(usize::from(port.host_port), usize::from(first) + offset);
                prop_assert_eq!(port.host_port, port.container_port);
                prop_assert_eq!(port.protocol, Protocol::Udp);
            }
        }
    }
}
