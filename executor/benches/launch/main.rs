//! Benchmark of `deimos-executor` against the README targets: LAUNCH → TASK_RUNNING through the
//! real executor binary (release build) and the harness's fake agent, against creating and
//! starting the same container directly through `deimos_runtime` (ratio of medians ≤ 1.10),
//! and the resident memory of the executor (≤ 15 MiB) and of its watchdog while one task runs.
//!
//! Run with `scripts/bench` (or `cargo bench -p deimos-executor --bench launch` after
//! scripts/setup). Needs the Docker engine and the test image; prints a table and exits with
//! status 1 when a target is missed and 2 when a measurement could not be made. Timings on a
//! shared machine vary: the pairs alternate which side goes first so that drift hits both.

mod measure;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use deimos_runtime::runtime::DockerRuntime;

/// Measured pairs (one launch through the executor, one direct launch each).
const PAIRS: usize = 31;
/// Unmeasured pairs first (binary, image metadata and page caches).
const WARM_UP_PAIRS: usize = 1;
/// The target of median(executor) / median(direct).
const TARGET_RATIO: f64 = 1.10;
/// The target of the executor's resident memory while one task runs, in KiB.
const TARGET_RSS_KIB: u64 = 15 * 1024;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; there are no filters.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(bench()) {
        Ok(report) => {
            print!("{}", report.table());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::from(2)
        }
    }
}

/// Everything measured.
struct Report {
    via_executor: Vec<Duration>,
    direct: Vec<Duration>,
    executor_rss_kib: Vec<u64>,
    watchdog_rss_kib: Vec<u64>,
}

async fn bench() -> Result<Report, String> {
    let docker = DockerRuntime::connect(None)
        .await
        .map_err(|error| format!("Docker is unreachable ({error}); run scripts/setup"))?;
    let mut report = Report {
        via_executor: Vec::new(),
        direct: Vec::new(),
        executor_rss_kib: Vec::new(),
        watchdog_rss_kib: Vec::new(),
    };
    for pair in 0..WARM_UP_PAIRS + PAIRS {
        let executor_first = pair % 2 == 0;
        let mut executor_run = None;
        let mut direct = None;
        for executor_side in [executor_first, !executor_first] {
            if executor_side {
                executor_run = Some(measure::through_executor(&docker, pair).await?);
            } else {
                direct = Some(measure::direct(&docker, pair).await?);
            }
        }
        let (Some(run), Some(direct)) = (executor_run, direct) else {
            return Err("a side of the pair was not measured".into());
        };
        if pair >= WARM_UP_PAIRS {
            report.via_executor.push(run.to_running);
            report.direct.push(direct);
            report.executor_rss_kib.push(run.executor_rss_kib);
            report.watchdog_rss_kib.push(run.watchdog_rss_kib);
        }
    }
    Ok(report)
}

impl Report {
    fn ratio(&self) -> f64 {
        median(&self.via_executor).as_secs_f64() / median(&self.direct).as_secs_f64()
    }

    fn executor_rss(&self) -> u64 {
        self.executor_rss_kib.iter().copied().max().unwrap_or(0)
    }

    fn passed(&self) -> bool {
        self.ratio() <= TARGET_RATIO && self.executor_rss() <= TARGET_RSS_KIB
    }

    fn table(&self) -> String {
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        let mut out = String::new();
        let header = format!(
            "{:<50} {:>5} {:>10} {:>10} {:>10} {:>10} {:>6}",
            "deimos-executor benchmark", "runs", "median", "p90", "min", "max", "result"
        );
        let _ = writeln!(out, "{header}\n{}", "-".repeat(header.len()));
        for (name, samples) in [
            (
                "LAUNCH -> TASK_RUNNING via executor (ms)",
                &self.via_executor,
            ),
            ("direct create+start via deimos_runtime (ms)", &self.direct),
        ] {
            let _ = writeln!(
                out,
                "{name:<50} {:>5} {:>10} {:>10} {:>10} {:>10} {:>6}",
                samples.len(),
                ms(median(samples)),
                ms(percentile_90(samples)),
                ms(samples.iter().copied().min().unwrap_or_default()),
                ms(samples.iter().copied().max().unwrap_or_default()),
                "-"
            );
        }
        let ratio = self.ratio();
        let _ = writeln!(
            out,
            "{:<50} {:>5} {:>10.3} {:>10} {:>10} {:>10} {:>6}",
            format!("ratio of medians executor/direct (<= {TARGET_RATIO})"),
            self.direct.len(),
            ratio,
            "-",
            "-",
            "-",
            verdict(ratio <= TARGET_RATIO)
        );
        for (name, samples, target) in [
            (
                "executor VmRSS, one task running (KiB, <= 15 MiB)",
                &self.executor_rss_kib,
                Some(TARGET_RSS_KIB),
            ),
            (
                "watchdog VmRSS, one task running (KiB)",
                &self.watchdog_rss_kib,
                None,
            ),
        ] {
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            let max = sorted.last().copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name:<50} {:>5} {:>10} {:>10} {:>10} {:>10} {:>6}",
                sorted.len(),
                sorted.get(sorted.len() / 2).copied().unwrap_or(0),
                sorted
                    .get((sorted.len() * 9).div_ceil(10).saturating_sub(1))
                    .copied()
                    .unwrap_or(0),
                sorted.first().copied().unwrap_or(0),
                max,
                target.map_or("-", |limit| verdict(max <= limit)),
            );
        }
        out
    }
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => Duration::ZERO,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// Nearest rank: the ceil(0.9 n)-th smallest sample.
fn percentile_90(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (9 * sorted.len()).div_ceil(10).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}
