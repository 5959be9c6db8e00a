//! `eremetic`: the Eremetic-compatible task service. Parses arguments, loads the
//! configuration and runs [`eremetic::server::run`].
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT) or a valid `--check-config`;
//! 1 when the service cannot start or fails (store, Docker engine, listening socket);
//! 2 for an invalid configuration.

use std::process::ExitCode;

use clap::Parser;
use eremetic::config::{self, Cli, CONFIG_ERROR_EXIT_CODE};

/// jemalloc, not glibc's allocator: with 100,000 tasks on a cluster, glibc kept most of the
/// memory of each burst (submissions, launches, a reconciliation) fragmented for the life of
/// the process, more than twice the live data.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts: a background thread gives freed memory back to
/// the system after a second (`dirty_decay_ms`) even while the service is idle, at once for
/// pages already given up once (`muzzy_decay_ms`).
// jemalloc reads this C string (`const char *`) under its prefixed name; exporting a symbol is
// what the lint calls unsafe, and the value is a valid NUL-terminated string.
#[allow(unsafe_code, non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 60] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = |name: &str| std::env::var(name).ok();
    if cli.check_config {
        let code = config::check_config(&cli, &env, &mut std::io::stdout(), &mut std::io::stderr());
        return ExitCode::from(code);
    }
    let config = match config::load(&cli, &env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("eremetic: invalid configuration: {error}");
            return ExitCode::from(CONFIG_ERROR_EXIT_CODE);
        }
    };
    if let Err(error) = eremetic::logging::init(config.loglevel, config.logformat) {
        eprintln!("eremetic: {error}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("eremetic: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(eremetic::server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("eremetic: {error}");
            ExitCode::FAILURE
        }
    }
}
