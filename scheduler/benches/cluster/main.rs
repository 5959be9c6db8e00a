//! Benchmarks of `eremetic` on a Mesos cluster (issue 11's targets): launches per second
//! from a queue of 10,000 tasks against 1,000 agents, status updates stored and
//! acknowledged per second, the time to reconcile 100,000 tasks after a `kill -9` and a
//! restart, and the service's memory with 100,000 tasks on the cluster.
//!
//! The cluster is the harness's fake master (the scheduler API over real HTTP, protobuf)
//! with 1,000 attached agents that run nothing (`agents.rs`); eremetic is the bench-built
//! binary as a separate process. Both share the machine's cores: the figures are for both
//! sides on one machine, as the issue asks.
//!
//! Run with `scripts/bench` or `cargo bench -p eremetic --bench cluster` (no Docker needed).
//! `CLUSTER_BENCH_SCALE=0.1` runs every phase with a tenth of the tasks and agents, for a
//! quick look (targets are then not checked). Exits with status 1 when a target is missed
//! and 2 when a measurement could not be made.

mod agents;
#[path = "../service/client.rs"]
#[allow(dead_code)]
mod client;
#[path = "../service/error.rs"]
#[allow(dead_code)]
mod error;
#[path = "../service/load.rs"]
#[allow(dead_code)]
mod load;
#[path = "../service/machine.rs"]
mod machine;
mod phases;
#[path = "../service/server.rs"]
#[allow(dead_code)]
mod server;
#[path = "../service/stats.rs"]
#[allow(dead_code)]
mod stats;
#[path = "../service/tasks.rs"]
#[allow(dead_code)]
mod tasks;

use error::{BenchError, Result};

fn main() {
    println!("{}", machine::description("eremetic on a Mesos cluster"));
    let scale = match phases::Scale::from_env() {
        Ok(scale) => scale,
        Err(error) => {
            eprintln!("bench: {error}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("start the benchmark's async runtime"));
    let outcome: Result<_> = runtime.and_then(|runtime| runtime.block_on(phases::bench(scale)));
    stats::report_and_exit(outcome);
}
