//! `hermit`, the command-line client of the scheduler (the `hermit` binary is a thin wrapper
//! around [`main`]).
//!
//! A package of its own: it shares the task model (states, state groups, fetch URIs) with the
//! service through the `eremetic-model` crate and depends on nothing else of the service, so
//! installing it builds no SQLite, Docker client, HTTP server or web UI.
//!
//! Compatible with Eremetic's hermit: `run`, `task`, `ls`, `logs`, `kill`, `version` with
//! their flags, `EREMETIC_URL` (default `http://localhost:8080`; Eremetic's was 8000) and
//! `HERMIT_INSECURE` (non-empty: no TLS verification). Added: `delete`, `wait`, `logs -f`,
//! `run --wait`, `run -f tasks.yml`, `--output json|table` for `task` and `ls`, `ls -a`,
//! credentials from `EREMETIC_TOKEN` (Bearer) or `EREMETIC_USER`/`EREMETIC_PASSWORD` (Basic)
//! or `user:password@` in the URL, and `completions <shell>`.
//!
//! Go-style flags: Eremetic's hermit parsed flags with Go's `flag` package (`-cpu 0.5`,
//! `-file=stderr`, `-help`). Before clap parses the command line, [`normalize_args`] rewrites
//! single-dash names that are long flags of the sub-command into `--name`; clap's short flags
//! (`-e`, `-n`, `-q`, `-f`) are untouched, and everything from `run`'s first positional
//! argument on is the task's command, never a flag.
//!
//! Errors are one line on standard error, `hermit: <cause>`, with these exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the server refused the request (other statuses), bad response, or a waited task failed without an exit code |
//! | 2 | usage error: flags, arguments, `-filter`, task file, environment variables |
//! | 3 | server unreachable (connection, DNS, TLS, timeout) |
//! | 4 | task not found (404) |
//! | 5 | unauthorized (401, 403) |
//!
//! `wait` and `run --wait` exit with the task's own exit code when it has one (so a task
//! exiting 3 makes hermit exit 3). Differences from Eremetic's hermit fix its sharp edges
//! (E-28): `run` requests a port only with `-port`, prints the task id and fails on HTTP
//! errors with the server's message; `ls -n` keeps the N newest after sorting; unknown
//! filter names are errors; `TASK_TERMINATING` shows as `terminating`; `-e` values may contain
//! `=`; the client version is the crate version; usage errors exit 2 (Eremetic: 1).

mod cli;
mod client;
mod commands;
mod error;
mod filter;
mod format;
mod request;
mod view;

use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

pub use cli::{
    normalize_args, Cli, Command, CompletionsArgs, IdArgs, LogFile, LogsArgs, LsArgs, OutputFormat,
    RunArgs, TaskArgs,
};
pub use client::{Client, Credentials, Settings, DEFAULT_URL};
pub use error::{
    one_line, HermitError, EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_UNAUTHORIZED, EXIT_UNREACHABLE,
    EXIT_USAGE,
};
pub use filter::{parse_duration, parse_filters, select, state_query, Filter};
pub use format::{format_age, task_details, task_table};
pub use request::{
    request_from_flags, requests_from_file, split_pair, Submission, DEFAULT_CPU, DEFAULT_IMAGE,
    DEFAULT_MEM,
};
pub use view::{outcome, short_state, Outcome, StatusView, TaskDocument, TaskView};

/// Runs `hermit` with the command line `args` (program name first) and the environment `var`;
/// prints results on standard output and failures as one `hermit: ...` line on standard
/// error; returns the process exit code.
pub fn main(args: Vec<OsString>, var: impl Fn(&str) -> Option<String>) -> u8 {
    let args = normalize_args(args);
    if args.len() <= 1 {
        // Eremetic's hermit prints its usage and succeeds when called without arguments.
        return match Cli::command().print_help() {
            Ok(()) => 0,
            Err(_) => EXIT_FAILURE,
        };
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    match execute(cli, var) {
        Ok(code) => code,
        // `hermit logs -f ID | head`: the reader left, which is not a failure.
        Err(HermitError::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(error) => {
            eprintln!("hermit: {}", error.one_line());
            error.exit_code()
        }
    }
}

/// Help and version requests are printed as clap renders them; real usage errors become one
/// line and [`EXIT_USAGE`].
fn usage_error(error: &clap::Error) -> u8 {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => match error.print() {
            Ok(()) => 0,
            Err(_) => EXIT_FAILURE,
        },
        _ => {
            eprintln!("hermit: {} (see 'hermit --help')", clap_cause(error));
            EXIT_USAGE
        }
    }
}

/// The cause of a clap error on one line: its text up to the usage section.
fn clap_cause(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let cause: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let cause = cause.join(" ");
    let cause = cause.strip_prefix("error: ").unwrap_or(&cause);
    if cause.is_empty() {
        "invalid command line".to_owned()
    } else {
        cause.to_owned()
    }
}

fn execute(cli: Cli, var: impl Fn(&str) -> Option<String>) -> Result<u8, HermitError> {
    if let Command::Completions(args) = &cli.command {
        let mut command = Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(args.shell, &mut command, "hermit", &mut out);
        return commands::print_bytes(&out).map(|()| 0);
    }
    let settings = Settings::from_env(var)?;
    let client = Client::new(settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HermitError::Runtime)?;
    runtime.block_on(commands::execute(&client, cli.command))
}
