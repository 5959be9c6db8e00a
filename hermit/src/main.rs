//! `hermit`: the command-line client of the eremetic scheduler. Everything lives in the
//! library ([`hermit::main`]); this only passes the command line and environment in and
//! the exit code out.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = hermit::main(std::env::args_os().collect(), |name| {
        std::env::var(name).ok()
    });
    ExitCode::from(code)
}
