//! Command-line parsing of the `deimos` binary (pure: arguments in, [`Invocation`] out).
//!
//! Exit codes of the binary (as Deimos):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | bad or missing arguments (the help text goes to stderr) |
//! | 4 | a handled error: bad input record, Docker failure, lock busy, unknown container... |
//! | 8 | an unexpected failure |
//! | 16 | the configuration could not be loaded |

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// A containerizer call made by the Mesos agent.
    Containerizer(Subcommand),
    /// `observe <container-id>`: block until the container exits, exit with its exit code.
    Observe {
        /// The Mesos container id.
        container_id: String,
    },
    /// `watch <container-id>` (internal): the detached process that follows a container.
    Watch {
        /// The Mesos container id.
        container_id: String,
    },
    /// `state [--rm] [TIME]`: list (or remove) exited state directories started before TIME.
    State {
        /// Remove them instead of listing.
        remove: bool,
        /// Cutoff as given on the command line (default: now).
        before: Option<String>,
    },
    /// `locks`: list lock files and their holders.
    Locks,
    /// `config`: print the effective configuration.
    Config,
    /// `help`, `-h`, `--help`.
    Help,
    /// `--version`.
    Version,
}

/// The subcommands the agent runs through `--containerizer_path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subcommand {
    /// `launch [--no-fork]`; `no_fork` keeps the watcher in the foreground (debugging).
    Launch {
        /// Watch the container in this process instead of a detached one.
        no_fork: bool,
    },
    /// `update`.
    Update,
    /// `usage`.
    Usage,
    /// `wait`.
    Wait,
    /// `destroy`.
    Destroy,
    /// `containers`.
    Containers,
    /// `recover`.
    Recover,
}

impl Subcommand {
    /// The subcommand's name as the agent passes it.
    pub fn name(self) -> &'static str {
        match self {
            Subcommand::Launch { .. } => "launch",
            Subcommand::Update => "update",
            Subcommand::Usage => "usage",
            Subcommand::Wait => "wait",
            Subcommand::Destroy => "destroy",
            Subcommand::Containers => "containers",
            Subcommand::Recover => "recover",
        }
    }
}

/// A command line that cannot be understood (exit code 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses the arguments after the program name.
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Invocation, UsageError> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let Some((&first, rest)) = args.split_first() else {
        return Err(UsageError("please specify a subcommand".into()));
    };
    let no_more = |invocation: Invocation| {
        if let Some(extra) = rest.first() {
            Err(UsageError(format!(
                "`{first}` takes no arguments, got {extra:?}"
            )))
        } else {
            Ok(invocation)
        }
    };
    match first {
        "launch" => match rest {
            [] => Ok(Invocation::Containerizer(Subcommand::Launch {
                no_fork: false,
            })),
            ["--no-fork"] => Ok(Invocation::Containerizer(Subcommand::Launch {
                no_fork: true,
            })),
            [other, ..] => Err(UsageError(format!(
                "`launch` accepts only --no-fork, got {other:?}"
            ))),
        },
        "update" => no_more(Invocation::Containerizer(Subcommand::Update)),
        "usage" => no_more(Invocation::Containerizer(Subcommand::Usage)),
        "wait" => no_more(Invocation::Containerizer(Subcommand::Wait)),
        "destroy" => no_more(Invocation::Containerizer(Subcommand::Destroy)),
        "containers" => no_more(Invocation::Containerizer(Subcommand::Containers)),
        "recover" => no_more(Invocation::Containerizer(Subcommand::Recover)),
        "observe" | "watch" => {
            let [container_id] = rest else {
                return Err(UsageError(format!(
                    "`{first}` takes exactly one argument: the container id"
                )));
            };
            let container_id = (*container_id).to_owned();
            Ok(if first == "observe" {
                Invocation::Observe { container_id }
            } else {
                Invocation::Watch { container_id }
            })
        }
        "state" => parse_state(rest),
        "locks" => no_more(Invocation::Locks),
        "config" => no_more(Invocation::Config),
        "help" | "-h" | "--help" => Ok(Invocation::Help),
        "--version" | "version" => Ok(Invocation::Version),
        other => Err(UsageError(format!("unknown subcommand {other:?}"))),
    }
}

fn parse_state(rest: &[&str]) -> Result<Invocation, UsageError> {
    let mut remove = false;
    let mut before = None;
    for &arg in rest {
        match arg {
            "--rm" => remove = true,
            flag if flag.starts_with('-') => {
                return Err(UsageError(format!(
                    "`state` accepts only --rm and a time, got {flag:?}"
                )))
            }
            time if before.is_none() => before = Some(time.to_owned()),
            time => {
                return Err(UsageError(format!(
                    "`state` takes one time argument, got a second: {time:?}"
                )))
            }
        }
    }
    Ok(Invocation::State { remove, before })
}

/// The help text.
pub const HELP: &str = "\
Usage: deimos <subcommand> [arguments]

Containerizer subcommands (run by the Mesos agent through --containerizer_path; each reads at
most one length-prefixed protobuf record on stdin and writes at most one on stdout):

  deimos launch [--no-fork]   start the container described by the Launch record and return;
                              a detached watcher follows it (--no-fork: watch in the foreground)
  deimos wait                 block until the container has exited, write a Termination
  deimos destroy              stop and remove the container (idempotent)
  deimos usage                write the container's ResourceStatistics
  deimos update               apply new cpu/mem limits to the running container
  deimos containers           list the active containers
  deimos recover              reconcile the state directories with Docker after a restart

Other subcommands:

  deimos observe <id>         block until the container has exited and exit with its exit code
                              (run by the observer executor of command tasks)
  deimos state [--rm] [TIME]  list the state directories of containers that exited and were
                              started before TIME (UTC, 2024-01-31T12:00:00Z; default: now);
                              --rm removes them (safe to run from cron)
  deimos locks                list the lock files and the processes holding them
  deimos config               print the effective configuration
  deimos help                 this text

Exit codes: 0 success, 1 bad arguments, 4 handled error, 8 unexpected failure,
16 configuration error. Errors are reported as one line on stderr.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerizer_subcommands_parse() {
        assert_eq!(
            parse_args(&["wait"]),
            Ok(Invocation::Containerizer(Subcommand::Wait))
        );
        assert_eq!(
            parse_args(&["launch", "--no-fork"]),
            Ok(Invocation::Containerizer(Subcommand::Launch {
                no_fork: true
            }))
        );
        assert_eq!(parse_args(&["recover"]).map(|_| ()), Ok(()));
    }

    #[test]
    fn missing_subcommand_is_a_usage_error() {
        let none: [&str; 0] = [];
        assert!(parse_args(&none)
            .unwrap_err()
            .0
            .contains("specify a subcommand"));
    }

    #[test]
    fn unknown_subcommand_is_named_in_the_error() {
        assert_eq!(
            parse_args(&["frobnicate"]).unwrap_err().0,
            "unknown subcommand \"frobnicate\""
        );
    }

    #[test]
    fn extra_arguments_are_rejected() {
        assert!(parse_args(&["wait", "x"]).is_err());
        assert!(parse_args(&["observe"]).is_err());
        assert!(parse_args(&["observe", "a", "b"]).is_err());
        assert!(parse_args(&["launch", "--fork"]).is_err());
    }

    #[test]
    fn state_takes_rm_and_one_time_in_any_order() {
        assert_eq!(
            parse_args(&["state", "2024-01-01T00:00:00Z", "--rm"]),
            Ok(Invocation::State {
                remove: true,
                before: Some("2024-01-01T00:00:00Z".into())
            })
        );
        assert_eq!(
            parse_args(&["state"]),
            Ok(Invocation::State {
                remove: false,
                before: None
            })
        );
        assert!(parse_args(&["state", "a", "b"]).is_err());
        assert!(parse_args(&["state", "--force"]).is_err());
    }

    #[test]
    fn observe_takes_the_container_id() {
        assert_eq!(
            parse_args(&["observe", "abc"]),
            Ok(Invocation::Observe {
                container_id: "abc".into()
            })
        );
    }
}
