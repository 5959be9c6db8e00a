//! `mesos-harness`: a Mesos cluster on this machine for trying eremetic
//! against (see `mesos_harness::cluster::cli`).
//!
//! Started under the name `mesos-executor` (e.g. through a symbolic link in
//! an external containerizer agent's `--launcher_dir`), it is the harness's
//! stand-in for Mesos' HTTP command executor
//! (`mesos_harness::cluster::containerizer_agent::command_executor`), so a
//! test outside the harness package has one without building its own.

use std::process::ExitCode;

use mesos_harness::cluster::cli::{parse_args, run, Command, USAGE};
use mesos_harness::cluster::containerizer_agent::command_executor;
use tokio::signal::unix::{signal, SignalKind};

/// The name under which this binary is the command executor.
const COMMAND_EXECUTOR_NAME: &str = "mesos-executor";

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name() == Some(COMMAND_EXECUTOR_NAME.as_ref()) {
        let rest: Vec<String> = args.collect();
        let code = command_executor::main(&rest);
        // Exit codes beyond a byte are not representable; the executor's are 0 and 1.
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let options = match parse_args(args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(options)) => options,
        Err(error) => {
            eprintln!("mesos-harness: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mesos-harness: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // Installed before anything starts, so an early signal is not lost.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        };
        let mut stdout = std::io::stdout();
        run(options, shutdown, &mut stdout)
            .await
            .map_err(std::io::Error::other)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mesos-harness: {error}");
            ExitCode::FAILURE
        }
    }
}
