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

/// Where tmpfs is usually mounted; measured in addition when it is a tmpfs.
const TMPFS: &str = "/dev/shm";

/// Measures listing and removal with the state root in the temp directory (`$TMPDIR`, the
/// target), then, for information, on tmpfs; returns their rows.
pub(crate) fn bench() -> Result<Vec<Row>> {
    let mut rows = bench_in(&BenchEnv::new("state")?, "", Target::MedianAtMost(TARGET))?;
    if is_tmpfs(Path::new(TMPFS)) {
        let env = BenchEnv::new_in("state", Path::new(TMPFS))?;
        rows.extend(bench_in(&env, ", tmpfs", Target::None)?);
    }
    Ok(rows)
}

fn bench_in(env: &BenchEnv, label: &str, target: Target) -> Result<Vec<Row>> {
    let (mut listing, mut removal) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        env.seed_exited(&format!("bench-r{round}"), CONTAINERS)?;
        // Real state directories are old: their blocks are allocated and on disk, so that
        // removing them frees blocks (and, on file systems mounted with `discard`, trims
        // them). Fresh, still delayed-allocated files would be cheaper to remove.
        nix::unistd::sync();
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
        check_all_gone(env)?;
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
            format!("state (list {CONTAINERS} exited{label})"),
            &listing,
            Target::None,
        )?,
        row(
            format!("state --rm ({CONTAINERS} exited{label})"),
            &removal,
            target,
        )?,
    ])
}

/// Whether `path` is a mount point of a tmpfs (from /proc/self/mounts).
fn is_tmpfs(path: &Path) -> bool {
    fs::read_to_string("/proc/self/mounts").is_ok_and(|mounts| {
        mounts.lines().any(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount_point, fs_type) = (fields.next(), fields.next(), fields.next());
            mount_point == path.to_str() && fs_type == Some("tmpfs")
        })
    })
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
