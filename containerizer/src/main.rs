//! `deimos`: the external containerizer program for Mesos agents. See `deimos help` and the
//! library documentation; exit codes are listed in [`deimos::cli`].

use std::io::{self, Write};

use deimos::cli::{self, Invocation, Subcommand, HELP};
use deimos::config::{self, SearchEnv};
use deimos::ecp::{self, Context};
use deimos::error::{Error, EXIT_CONFIG, EXIT_OK, EXIT_USAGE};
use deimos::logging;

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invocation = match cli::parse_args(&args) {
        Ok(invocation) => invocation,
        Err(error) => {
            eprint!("{HELP}");
            eprintln!("deimos: {error}");
            return EXIT_USAGE;
        }
    };
    let name = args
        .first()
        .map(String::as_str)
        .unwrap_or("deimos")
        .to_owned();
    match invocation {
        Invocation::Help => return print(HELP),
        Invocation::Version => return print(&format!("deimos {}\n", env!("CARGO_PKG_VERSION"))),
        _ => {}
    }
    let loaded = match config::load(&SearchEnv::from_process()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("deimos {name}: configuration error: {error}");
            return EXIT_CONFIG;
        }
    };
    // Errors always get their one line on stderr below; they are also logged when a log
    // destination other than the console would otherwise miss them.
    let log_errors = match logging::init(&loaded.config.log) {
        Ok(outputs) => {
            outputs.console == log::LevelFilter::Off && outputs.syslog >= log::LevelFilter::Error
        }
        Err(_) => false,
    };
    let result = Context::from_process(loaded).and_then(|ctx| dispatch(&ctx, invocation));
    match result {
        Ok(code) => code,
        Err(error) => {
            let line = error.to_string().replace('\n', " ");
            if log_errors {
                log::error!("{name}: {line}");
            }
            // Not eprintln!, which panics when stderr cannot be written: a watcher's stderr
            // is its log in the state root, which may be full.
            let _ = writeln!(io::stderr(), "deimos {name}: {line}");
            error.exit_code()
        }
    }
}

fn dispatch(ctx: &Context, invocation: Invocation) -> Result<i32, Error> {
    let (mut stdin, mut stdout) = (io::stdin().lock(), io::stdout().lock());
    match invocation {
        Invocation::Containerizer(subcommand) => {
            match subcommand {
                Subcommand::Launch { no_fork } => ecp::launch(ctx, &mut stdin, no_fork)?,
                Subcommand::Update => ecp::update(ctx, &mut stdin)?,
                Subcommand::Usage => ecp::usage(ctx, &mut stdin, &mut stdout)?,
                Subcommand::Wait => ecp::wait(ctx, &mut stdin, &mut stdout)?,
                Subcommand::Destroy => ecp::destroy(ctx, &mut stdin)?,
                Subcommand::Containers => ecp::containers(ctx, &mut stdout)?,
                Subcommand::Recover => ecp::recover(ctx)?,
            }
            stdout.flush().map_err(Error::io("write to stdout"))?;
            Ok(EXIT_OK)
        }
        Invocation::Observe { container_id } => ecp::observe(ctx, &container_id),
        Invocation::Watch { container_id } => {
            ecp::watch(ctx, &container_id, &mut stdin, &mut stdout).map(|()| EXIT_OK)
        }
        Invocation::State { remove, before } => {
            ecp::state_command(ctx, remove, before.as_deref(), &mut stdout).map(|()| EXIT_OK)
        }
        Invocation::Locks => ecp::print_locks(ctx, &mut stdout).map(|()| EXIT_OK),
        Invocation::Config => ecp::print_config(ctx, &mut stdout).map(|()| EXIT_OK),
        Invocation::Help | Invocation::Version => Ok(EXIT_OK),
    }
}

fn print(text: &str) -> i32 {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => EXIT_OK,
        Err(_) => deimos::error::EXIT_HANDLED,
    }
}
