//! `deimos state` and `deimos state --rm` over 10,000 exited state directories.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::error::{BenchError, Result};
use crate::harness::{BenchEnv, Reply};
use crate::stats::{Row, Summary, Target};

/// Exited state directories per round.
const CONTAINERS: usize = 10_000;
/// Rounds (each seeds the directories anew; seeding is not timed).
const ROUNDS: usize = 3;
/// The target of `state --rm`.
const TARGET: Duration = Duration::from_secs(2);

/// Measures listing and removal; returns their rows.
pub(crate) fn bench() -> Result<Vec<Row>> {
    let env = BenchEnv::new("state")?;
    let (mut listing, mut removal) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        env.seed_exited(&format!("bench-r{round}"), CONTAINERS)?;
        // The cutoff is "now" with millisecond resolution: let the newest start time pass.
        std::thread::sleep(Duration::from_millis(5));

        let listed = env.run(&["state"], &[], Reply::Text)?;
        let lines = count_lines(&listed.stdout, |_| true);
        check(lines == CONTAINERS, || {
            format!("`deimos state` listed {lines} entries, expected {CONTAINERS}")
        })?;
        listing.push(listed.elapsed);

        let removed = env.run(&["state", "--rm"], &[], Reply::Text)?;
        let lines = count_lines(&removed.stdout, |line| line.starts_with("removed "));
        check(lines == CONTAINERS, || {
            format!("`deimos state --rm` removed {lines} entries, expected {CONTAINERS}")
        })?;
        check_all_gone(&env)?;
        removal.push(removed.elapsed);
    }
    let row = |name: String, samples: &[Duration], target| {
        Summary::of(samples)
            .map(|summary| Row::Timing {
                name: name.clone(),
                summary,
                target,
            })
            .ok_or_else(|| BenchError::Check(format!("{name}: no samples")))
    };
    Ok(vec![
        row(
            format!("state (list {CONTAINERS} exited)"),
            &listing,
            Target::None,
        )?,
        row(
            format!("state --rm ({CONTAINERS} exited)"),
            &removal,
            Target::MedianAtMost(TARGET),
        )?,
    ])
}

fn count_lines(text: &[u8], keep: impl Fn(&str) -> bool) -> usize {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|line| keep(line))
        .count()
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<()> {
    if condition {
        Ok(())
    } else {
        Err(BenchError::Check(message()))
    }
}

/// Nothing may be left in `mesos/`, `docker/` or `start-time/`.
fn check_all_gone(env: &BenchEnv) -> Result<()> {
    let state = env.state();
    for dir in [
        state.mesos_dir(),
        state.docker_dir(),
        state.start_time_dir(),
    ] {
        let left = entries_in(&dir)?;
        check(left == 0, || {
            format!(
                "{left} entries are left in {} after `deimos state --rm`",
                dir.display()
            )
        })?;
    }
    Ok(())
}

fn entries_in(dir: &Path) -> Result<usize> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.count()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(BenchError::io(format!("list {}", dir.display()))(e)),
    }
}
