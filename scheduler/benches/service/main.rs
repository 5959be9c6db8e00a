//! Benchmarks of the `eremetic` service against the targets of the README: accepted and
//! durably stored submissions per second with launching paused (and the same server's
//! `/api/v1/version` rate, the ceiling of its HTTP stack), POST → running against a direct
//! launch through the Engine API, and the service's memory with 100,000 stored tasks.
//!
//! Run with `scripts/bench` (or `cargo bench -p eremetic --bench service` after
//! scripts/setup). Needs the Docker engine and the local test image; exits with status 1 when
//! a target is missed and 2 when a measurement could not be made.

mod client;
mod error;
mod launch;
mod load;
mod machine;
mod paused;
mod server;
mod stats;
mod tasks;

use error::{BenchError, Result};
use stats::Row;

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported (every target is checked).
    println!("{}", machine::description("eremetic service benchmarks"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("start the benchmark's async runtime"));
    let outcome = runtime.and_then(|runtime| runtime.block_on(run_all()));
    stats::report_and_exit(outcome);
}

async fn run_all() -> Result<(Vec<Row>, Vec<String>)> {
    eprintln!("bench: submissions with launching paused, then 100,000 stored tasks ...");
    let (mut rows, mut notes) = paused::bench().await?;
    eprintln!("bench: POST -> running against a direct launch ...");
    let (launch_rows, launch_notes) = launch::bench().await?;
    rows.extend(launch_rows);
    notes.extend(launch_notes);
    Ok((rows, notes))
}
