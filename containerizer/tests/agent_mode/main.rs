//! The real `deimos` binary under a Mesos 1.0 agent with `--isolation=external`
//! (`mesos_harness::cluster::containerizer_agent`): a fake master, the agent attached to it,
//! a scheduler client over HTTP, real Docker (`deimos-test/busybox`).
//!
//! This binary is also the agent's `mesos-executor` (the harness's stand-in for Mesos 1.0's
//! HTTP command executor): each test installs it under that name in its launcher directory,
//! and `main` runs the executor when started under that name. Deimos runs with its default
//! configuration for observers (no `[observer] command`), so it chooses the observer by the
//! agent's version: the agent sets `MESOS_HTTP_COMMAND_EXECUTOR`, so `mesos-executor
//! --task_command` = `deimos observe <id>` (Mesos 1.0's `mesos-executor` no longer has
//! Deimos' `--override` and refuses it). The ECP calls are recorded by the agent itself
//! (`ContainerizerAgent::invocations`).

// Test code: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)]

#[path = "../../../tests/harness/tests/scheduler_client/mod.rs"]
mod scheduler_client;
mod support;
mod tests;

use std::panic::AssertUnwindSafe;

fn main() {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name() == Some("mesos-executor".as_ref()) {
        let rest: Vec<String> = args.collect();
        std::process::exit(
            mesos_harness::cluster::containerizer_agent::command_executor::main(&rest),
        );
    }
    let filters: Vec<String> = args.filter(|a| !a.starts_with('-')).collect();
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in tests::ALL {
            println!("{name}: test");
        }
        return;
    }
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests::ALL {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        println!("test {name} ...");
        match std::panic::catch_unwind(AssertUnwindSafe(test)) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    println!("\n{ran} tests run, {} failed: {failed:?}", failed.len());
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
