//! `deimos-executor`: started by a Mesos agent with the executor environment (no arguments).
//! `deimos-executor watchdog <instance>` is the executor's own watchdog process (see
//! `deimos_executor::watchdog`), never started by hand.
//!
//! Exit codes:
//! - `0`: every task ended and the agent acknowledged its terminal update, or SHUTDOWN;
//! - `1`: the executor environment is missing or invalid (the message names the variable), or
//!   the operator's `deimos.cfg` cannot be loaded (the message names the file and key);
//! - `2`: the executor could not start (Docker unreachable, HTTP client);
//! - `3`: the agent was lost (no checkpointing, or `MESOS_RECOVERY_TIMEOUT` passed);
//! - `4`: the agent refused the subscription.

use std::process::ExitCode;

use deimos_executor::env::Settings;
use deimos_executor::run::{exit_code, run};
use deimos_executor::watchdog;

fn main() -> ExitCode {
    // stderr is the sandbox's `stderr` file; the agent's environment decides nothing here.
    if let Err(error) = deimos_runtime::console::init(log::LevelFilter::Info) {
        eprintln!("deimos-executor: {error}");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, instance] = args.as_slice() {
        if command == watchdog::WATCHDOG_ARG {
            return ExitCode::from(watchdog::main(instance));
        }
    }
    let settings = match Settings::from_process_env() {
        Ok(settings) => settings,
        Err(error) => {
            log::error!("{error}");
            eprintln!("deimos-executor: {error}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("deimos-executor: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(run(settings));
    match &result {
        Ok(reason) => log::info!("exiting: {reason:?}"),
        Err(error) => log::error!("{error}"),
    }
    ExitCode::from(exit_code(&result))
}
