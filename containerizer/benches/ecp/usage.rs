//! `deimos usage` against a running container and `deimos containers` over ten state
//! directories (the running one and nine exited ones of the same agent).

use std::time::Duration;

use mesos_proto::containerizer::Containers;
use mesos_proto::mesos::ResourceStatistics;
use prost::Message;

use crate::docker::DirectDocker;
use crate::error::{BenchError, Result};
use crate::harness::{BenchEnv, Reply};
use crate::messages::{destroy_record, launch_record, usage_record};
use crate::stats::{Row, Summary, Target};
use crate::CleanupGuard;

/// Runs not counted (page cache, dentry cache).
const WARM_UP_RUNS: usize = 3;
/// Runs measured per subcommand.
const RUNS: usize = 30;
/// The target of both medians.
const TARGET: Duration = Duration::from_millis(10);
/// State directories present for `containers` (one running, the others exited).
const STATE_DIRS: usize = 10;
const RUNNING_ID: &str = "bench-usage";

/// Measures both subcommands; returns their table rows and notes for the reader.
pub(crate) fn bench(docker: &DirectDocker) -> Result<(Vec<Row>, Vec<String>)> {
    let env = BenchEnv::new("usage")?;
    let guard = CleanupGuard::new(docker);
    guard.track(&format!("mesos-{RUNNING_ID}"));
    let sandbox = env.sandbox(RUNNING_ID);
    env.run(
        &["launch"],
        &launch_record(RUNNING_ID, &sandbox)?,
        Reply::Nothing,
    )?;
    env.seed_exited("bench-exited", STATE_DIRS - 1)?;

    let (usage, notes) = bench_usage(&env)?;
    let containers = bench_containers(&env)?;
    env.run(&["destroy"], &destroy_record(RUNNING_ID)?, Reply::Nothing)?;
    Ok((
        vec![
            timing_row("usage (1 running container)", &usage)?,
            timing_row(
                &format!("containers ({STATE_DIRS} state dirs)"),
                &containers,
            )?,
        ],
        notes,
    ))
}

fn timing_row(name: &str, samples: &[Duration]) -> Result<Row> {
    let summary = Summary::of(samples)
        .ok_or_else(|| BenchError::Check(format!("{name}: no samples were taken")))?;
    Ok(Row::Timing {
        name: name.to_owned(),
        summary,
        target: Target::MedianAtMost(TARGET),
    })
}

fn bench_usage(env: &BenchEnv) -> Result<(Vec<Duration>, Vec<String>)> {
    let record = usage_record(RUNNING_ID)?;
    let mut samples = Vec::with_capacity(RUNS);
    let mut first_reply = None;
    for run in 0..WARM_UP_RUNS + RUNS {
        let done = env.run(&["usage"], &record, Reply::Record)?;
        let statistics = ResourceStatistics::decode(done.stdout.as_slice()).map_err(|e| {
            BenchError::Check(format!("the usage reply is not a ResourceStatistics: {e}"))
        })?;
        // NaN and non-positive values both fail.
        if statistics.timestamp.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(BenchError::Check(format!(
                "the usage reply has no timestamp: {statistics:?}"
            )));
        }
        first_reply.get_or_insert(statistics);
        if run >= WARM_UP_RUNS {
            samples.push(done.elapsed);
        }
    }
    let notes = first_reply.map(describe_statistics).into_iter().collect();
    Ok((samples, notes))
}

/// Whether the replies carried cgroup readings or only the timestamp.
fn describe_statistics(statistics: ResourceStatistics) -> String {
    match (statistics.mem_limit_bytes, statistics.cpus_user_time_secs) {
        (Some(mem), cpu) => format!(
            "usage replies carry cgroup statistics (mem_limit_bytes {mem}, \
             cpus_user_time_secs {cpu:?})"
        ),
        (None, _) => "usage replies carry only the timestamp: no cgroup readings \
                      (the cgroup of the container was not found)"
            .to_owned(),
    }
}

fn bench_containers(env: &BenchEnv) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(RUNS);
    for run in 0..WARM_UP_RUNS + RUNS {
        let done = env.run(&["containers"], &[], Reply::Record)?;
        let reply = Containers::decode(done.stdout.as_slice()).map_err(|e| {
            BenchError::Check(format!("the containers reply is not a Containers: {e}"))
        })?;
        let ids: Vec<&str> = reply.containers.iter().map(|c| c.value.as_str()).collect();
        if ids != [RUNNING_ID] {
            return Err(BenchError::Check(format!(
                "containers listed {ids:?}; expected only the running {RUNNING_ID}"
            )));
        }
        if run >= WARM_UP_RUNS {
            samples.push(done.elapsed);
        }
    }
    Ok(samples)
}
