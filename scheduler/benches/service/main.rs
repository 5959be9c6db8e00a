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
mod paused;
mod server;
mod stats;
mod tasks;

use std::fs;
use std::path::Path;

use time::format_description::well_known::Rfc3339;

use error::{BenchError, Result};
use stats::{render_table, Row};

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported (every target is checked).
    println!("{}", machine_description());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("start the benchmark's async runtime"));
    let outcome = runtime.and_then(|runtime| runtime.block_on(run_all()));
    match outcome {
        Ok((rows, notes)) => {
            println!("\n{}", render_table(&rows));
            for note in notes {
                println!("note: {note}");
            }
            let missed = rows.iter().filter(|r| r.passed() == Some(false)).count();
            if missed > 0 {
                println!("{missed} target(s) missed");
                std::process::exit(1);
            }
            println!("all targets met");
        }
        Err(error) => {
            eprintln!("bench: {error}");
            std::process::exit(2);
        }
    }
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

/// Date, CPU, memory and load, so that published numbers say where they come from.
fn machine_description() -> String {
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|line| line.starts_with(key))
            .and_then(|line| line.split_once(':'))
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let temp = std::env::temp_dir();
    format!(
        "eremetic service benchmarks, {now}\nbinary: {}\ncpu: {} x {}\nmemory: {}\n\
         load average: {}\ndata dir: {} on {}",
        server::BINARY.unwrap_or("(not built)"),
        cpus,
        field(&cpuinfo, "model name"),
        field(&read("/proc/meminfo"), "MemTotal"),
        read("/proc/loadavg").trim(),
        temp.display(),
        mount_of(&temp, &read("/proc/self/mounts")),
    )
}

/// "<type> (<options>)" of the mount holding `path`: the longest mount point that is a
/// prefix of it.
fn mount_of(path: &Path, mounts: &str) -> String {
    mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, point, fs_type, options, ..] if path.starts_with(point) => {
                    Some((point.len(), format!("{fs_type} ({options})")))
                }
                _ => None,
            }
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, description)| description)
        .unwrap_or_else(|| "unknown file system".to_owned())
}
