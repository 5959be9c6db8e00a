//! Benchmarks of the `deimos` binary against the targets in the README: whole-process wall
//! times of the release build, measured with `Instant` around spawn..reap.
//!
//! Run with `scripts/bench` (or `cargo bench -p deimos --bench ecp` after scripts/setup).
//! Needs the Docker engine and the local test image; exits with status 1 when a target is
//! missed and 2 when a measurement could not be made.

mod cleanup;
mod docker;
mod error;
mod harness;
mod launch;
mod messages;
mod stats;
mod usage;

use std::cell::RefCell;
use std::fs;
use std::path::Path;

use time::format_description::well_known::Rfc3339;

use docker::DirectDocker;
use error::Result;
use stats::{render_table, Row};

/// Docker containers to remove when a benchmark ends, also when it fails half-way.
pub(crate) struct CleanupGuard<'a> {
    docker: &'a DirectDocker,
    names: RefCell<Vec<String>>,
}

impl<'a> CleanupGuard<'a> {
    /// A guard removing containers through `docker`.
    pub(crate) fn new(docker: &'a DirectDocker) -> CleanupGuard<'a> {
        CleanupGuard {
            docker,
            names: RefCell::new(Vec::new()),
        }
    }

    /// Remembers a container name (or id) to remove.
    pub(crate) fn track(&self, name: &str) {
        self.names.borrow_mut().push(name.to_owned());
    }
}

impl Drop for CleanupGuard<'_> {
    fn drop(&mut self) {
        for name in self.names.borrow().iter() {
            // Normally already destroyed; removing a missing container is success.
            if let Err(error) = self.docker.remove(name) {
                eprintln!("bench: cleaning up: {error}");
            }
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported (every target is checked).
    println!("{}", machine_description());
    match run_all() {
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

fn run_all() -> Result<(Vec<Row>, Vec<String>)> {
    let docker = DirectDocker::connect(harness::IMAGE)?;
    eprintln!("bench: usage and containers ...");
    let (mut rows, notes) = usage::bench(&docker)?;
    eprintln!("bench: launch against direct create+start ...");
    rows.extend(launch::bench(&docker)?);
    eprintln!("bench: state and state --rm ...");
    rows.extend(cleanup::bench()?);
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
        "deimos benchmarks, {now}\nbinary: {}\ncpu: {} x {}\nmemory: {}\nload average: {}\n\
         temp dir: {} on {}",
        harness::DEIMOS,
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
