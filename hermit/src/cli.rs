//! The command line of `hermit` (clap) and the rewriting of Go-style flags before parsing.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// The text after the flag list of `hermit --help`.
const AFTER_HELP: &str = "\
Environment:
  EREMETIC_URL       server URL (default http://localhost:8080); user:password@ gives Basic auth
  EREMETIC_TOKEN     bearer token (takes precedence over Basic credentials)
  EREMETIC_USER      Basic auth user, with EREMETIC_PASSWORD
  HERMIT_INSECURE    any non-empty value: do not verify the server's TLS certificate

Flags may be written Go-style with one dash (-cpu 0.5, -file=stderr) as Eremetic's hermit
accepts them, or with two (--cpu 0.5).

Exit codes:
  0  success
  1  the server refused the request, or a waited task failed without an exit code
  2  usage error (flags, filters, task file, environment)
  3  server unreachable
  4  task not found
  5  unauthorized (401/403)
  wait and run --wait exit with the task's own exit code when it has one.";

/// `hermit`: the command-line client of the eremetic scheduler.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "hermit",
    version,
    about = "Command-line client of the eremetic scheduler (compatible with Eremetic's hermit)",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The sub-commands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Submit a task (or every task of a YAML file) and print its id.
    Run(Box<RunArgs>),
    /// Show one task.
    Task(TaskArgs),
    /// List tasks, most recently updated first.
    Ls(LsArgs),
    /// Print a task's stdout or stderr.
    Logs(LogsArgs),
    /// Kill a task.
    Kill(IdArgs),
    /// Delete a terminated task's record.
    Delete(IdArgs),
    /// Wait until a task ends; exit with its exit code.
    Wait(IdArgs),
    /// Show the client and server versions.
    Version,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `hermit run`.
#[derive(Debug, Clone, PartialEq, Default, Args)]
pub struct RunArgs {
    /// CPUs to give to the task [default: 0.1].
    #[arg(long, value_name = "CPUS")]
    pub cpu: Option<f64>,
    /// Memory in MiB to give to the task [default: 128].
    #[arg(long, value_name = "MIB")]
    pub mem: Option<f64>,
    /// Docker image [default: busybox].
    #[arg(long)]
    pub image: Option<String>,
    /// Container port to publish (none unless given).
    #[arg(long)]
    pub port: Option<u16>,
    /// Network mode: BRIDGE, HOST, NONE or USER [default: the server's, BRIDGE].
    #[arg(long)]
    pub network: Option<String>,
    /// DNS server for the task.
    #[arg(long)]
    pub dns: Option<String>,
    /// Environment variable KEY=VALUE (repeatable; the value may contain '=').
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Secret environment variable KEY=VALUE, masked when read back (repeatable).
    #[arg(long = "masked-env", value_name = "KEY=VALUE")]
    pub masked_env: Vec<String>,
    /// URI to download into the sandbox (repeatable; archives are extracted).
    #[arg(long, value_name = "URL")]
    pub uri: Vec<String>,
    /// Argument for the image's entrypoint (repeatable; used when there is no COMMAND).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub arg: Vec<String>,
    /// Task name.
    #[arg(long)]
    pub name: Option<String>,
    /// Submit every task listed in this YAML file (flags above give their defaults).
    #[arg(short = 'f', long = "file", value_name = "TASKS.YML")]
    pub file: Option<PathBuf>,
    /// Wait until the task(s) end; exit with the (first failing) task's exit code.
    #[arg(short = 'w', long)]
    pub wait: bool,
    /// Shell command, the remaining arguments joined by spaces.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// Output format of `task` and `ls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Table,
    /// The server's task documents as JSON.
    Json,
}

/// `hermit task`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct TaskArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The task id.
    #[arg(value_name = "TASK_ID")]
    pub id: String,
}

/// `hermit ls`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct LsArgs {
    /// Comma-separated filters: min_age=<duration>, max_age=<duration>, status=<state>,
    /// user=<user>, name=<name> (durations as in Go: 90s, 5m, 1h30m).
    #[arg(long, value_name = "K=V,...")]
    pub filter: Option<String>,
    /// Show only the N most recently updated tasks (negative: all).
    #[arg(short = 'n', value_name = "N", allow_negative_numbers = true)]
    pub n: Option<i64>,
    /// Print task ids only.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Also list terminated tasks (the server lists active and queued ones by default).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Which output file of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFile {
    /// Standard output.
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogFile {
    /// The route segment (`stdout`, `stderr`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogFile::Stdout => "stdout",
            LogFile::Stderr => "stderr",
        }
    }
}

/// `hermit logs`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct LogsArgs {
    /// Which file to print.
    #[arg(long, value_enum, default_value_t = LogFile::Stdout)]
    pub file: LogFile,
    /// Keep printing output while the task runs.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The task id.
    #[arg(value_name = "TASK_ID")]
    pub id: String,
}

/// Commands taking only a task id.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct IdArgs {
    /// The task id.
    #[arg(value_name = "TASK_ID")]
    pub id: String,
}

/// `hermit completions`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Rewrites Go-style single-dash long flags (`-cpu 0.5`, `-file=stderr`, `-help`) into the
/// double-dash form clap parses (`--cpu 0.5`, `--file=stderr`, `--help`).
///
/// Only names that are long flags of the sub-command in effect (from the clap definition) are
/// rewritten, so clap's short flags keep working (`-e K=V`, `-eK=V`, `-n 5`, `-qa`). Values of
/// flags are never rewritten (`-arg -v` passes `-v` to the task). For `run`, the first
/// positional argument starts the task's COMMAND: `--` is inserted before it, so that a
/// command such as `sh -c 'echo hi'` reaches the task untouched, as with Go's `flag`.
pub fn normalize_args<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    let root = Cli::command();
    let rest: Vec<OsString> = args.collect();
    let mut index = 0;
    // Before the sub-command: only the global help/version flags.
    while index < rest.len() {
        let token = &rest[index];
        index += 1;
        match token.to_str() {
            Some("-help") => out.push("--help".into()),
            Some("-version") => out.push("--version".into()),
            Some(name) if !name.starts_with('-') => {
                out.push(token.clone());
                if let Some(sub) = root.find_subcommand(name) {
                    normalize_sub(sub, &rest[index..], &mut out);
                    return out;
                }
            }
            _ => out.push(token.clone()),
        }
    }
    out
}

/// How a sub-command's flag is spelled and whether it takes a value.
struct FlagSpec {
    long: Option<String>,
    short: Option<char>,
    takes_value: bool,
}

fn flag_specs(command: &clap::Command) -> Vec<FlagSpec> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_positional())
        .map(|arg| FlagSpec {
            long: arg.get_long().map(str::to_owned),
            short: arg.get_short(),
            takes_value: arg.get_action().takes_values(),
        })
        .collect()
}

fn normalize_sub(command: &clap::Command, rest: &[OsString], out: &mut Vec<OsString>) {
    let specs = flag_specs(command);
    let long = |name: &str| specs.iter().find(|spec| spec.long.as_deref() == Some(name));
    let short = |c: char| specs.iter().find(|spec| spec.short == Some(c));
    // Only `run` has a trailing command whose arguments must not be read as flags.
    let trailing = command.get_name() == "run";
    let mut index = 0;
    while index < rest.len() {
        let token = &rest[index];
        index += 1;
        let Some(text) = token.to_str() else {
            out.push(token.clone());
            continue;
        };
        if text == "--" {
            out.extend(rest[index - 1..].iter().cloned());
            return;
        }
        let value_follows = if let Some(body) = text.strip_prefix("--") {
            out.push(token.clone());
            !body.contains('=') && long(body).is_some_and(|spec| spec.takes_value)
        } else if let Some(body) = text.strip_prefix('-').filter(|body| !body.is_empty()) {
            let name = body.split('=').next().unwrap_or(body);
            if name == "help" || name == "h" {
                out.push("--help".into());
                false
            } else if let Some(spec) = long(name).filter(|_| name.chars().count() > 1) {
                out.push(format!("--{body}").into());
                !body.contains('=') && spec.takes_value
            } else {
                let mut chars = body.chars();
                let first = chars.next().and_then(short);
                let single = chars.next().is_none();
                if first.is_none() && !single {
                    // Not a cluster of known short flags: an unknown Go-style name, which clap
                    // then reports by its whole name (`--bogus`, not `-b`).
                    out.push(format!("--{body}").into());
                    false
                } else {
                    out.push(token.clone());
                    // `-e K=V` takes the next token; `-eK=V` and `-qa` do not.
                    single && first.is_some_and(|spec| spec.takes_value)
                }
            }
        } else {
            if trailing {
                out.push("--".into());
                out.extend(rest[index - 1..].iter().cloned());
                return;
            }
            out.push(token.clone());
            false
        };
        if value_follows && index < rest.len() {
            out.push(rest[index].clone());
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().copied())
            .into_iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(normalize_args(args.iter().copied())).unwrap()
    }

    #[test]
    fn go_style_long_flags_become_double_dash() {
        assert_eq!(
            normalized(&["hermit", "run", "-cpu", "0.5", "-mem=64", "-image", "x", "true"]),
            ["hermit", "run", "--cpu", "0.5", "--mem=64", "--image", "x", "--", "true"]
        );
        assert_eq!(
            normalized(&["hermit", "logs", "-file", "stderr", "ID"]),
            ["hermit", "logs", "--file", "stderr", "ID"]
        );
        assert_eq!(normalized(&["hermit", "-help"]), ["hermit", "--help"]);
        assert_eq!(
            normalized(&["hermit", "ls", "-help"]),
            ["hermit", "ls", "--help"]
        );
    }

    #[test]
    fn short_flags_and_flag_values_are_left_alone() {
        assert_eq!(
            normalized(&["hermit", "run", "-e", "A=b", "-eC=d", "-arg", "-image", "sh"]),
            ["hermit", "run", "-e", "A=b", "-eC=d", "--arg", "-image", "--", "sh"]
        );
        assert_eq!(
            normalized(&["hermit", "ls", "-n", "-1", "-qa"]),
            ["hermit", "ls", "-n", "-1", "-qa"]
        );
    }

    #[test]
    fn run_command_arguments_are_never_read_as_flags() {
        let cli = parse(&["hermit", "run", "-image", "img", "sh", "-c", "exit -cpu"]);
        let Command::Run(run) = cli.command else {
            panic!("not run: {cli:?}")
        };
        assert_eq!(run.image.as_deref(), Some("img"));
        assert_eq!(run.cpu, None);
        assert_eq!(run.command, ["sh", "-c", "exit -cpu"]);
    }

    #[test]
    fn go_and_clap_spellings_parse_the_same() {
        let go = parse(&[
            "hermit", "run", "-cpu", "0.2", "-mem", "32", "-port=80", "-e", "A=1", "ls",
        ]);
        let clap = parse(&[
            "hermit", "run", "--cpu", "0.2", "--mem=32", "--port", "80", "--env", "A=1", "ls",
        ]);
        assert_eq!(go, clap);
        let Command::Run(run) = go.command else {
            panic!("not run")
        };
        assert_eq!(
            (run.cpu, run.mem, run.port),
            (Some(0.2), Some(32.0), Some(80))
        );
    }

    #[test]
    fn ls_accepts_eremetic_flags() {
        let cli = parse(&["hermit", "ls", "-filter", "status=running", "-n", "3", "-q"]);
        let Command::Ls(ls) = cli.command else {
            panic!("not ls")
        };
        assert_eq!(ls.filter.as_deref(), Some("status=running"));
        assert_eq!(ls.n, Some(3));
        assert!(ls.quiet);
        let cli = parse(&["hermit", "ls", "-n", "-1", "-output", "json"]);
        let Command::Ls(ls) = cli.command else {
            panic!("not ls")
        };
        assert_eq!((ls.n, ls.output), (Some(-1), OutputFormat::Json));
    }

    #[test]
    fn logs_follow_and_run_file_share_the_short_f() {
        let cli = parse(&["hermit", "logs", "-f", "-file=stderr", "ID"]);
        assert_eq!(
            cli.command,
            Command::Logs(LogsArgs {
                file: LogFile::Stderr,
                follow: true,
                id: "ID".into()
            })
        );
        let cli = parse(&["hermit", "run", "-f", "tasks.yml", "-wait"]);
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.file, Some(PathBuf::from("tasks.yml")));
        assert!(run.wait);
    }

    #[test]
    fn unknown_commands_and_flags_are_usage_errors() {
        assert!(Cli::try_parse_from(normalize_args(["hermit", "frobnicate"])).is_err());
        assert!(Cli::try_parse_from(normalize_args(["hermit", "ls", "-bogus"])).is_err());
        assert_eq!(
            normalized(&["hermit", "ls", "-bogus"]),
            ["hermit", "ls", "--bogus"]
        );
        assert!(
            Cli::try_parse_from(normalize_args(["hermit", "logs", "-file", "x", "I"])).is_err()
        );
    }
}
