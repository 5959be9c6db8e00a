//! `deimos launch` until the container runs, against creating and starting the identical
//! container directly through the Engine API, in alternating pairs.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use deimos::config::{self, SearchEnv};
use deimos::ecp::translate::{plan_launch, LaunchContext};
use deimos::ecp::Context;
use deimos::runtime::translate::{create_request, CreateRequest};

use crate::docker::DirectDocker;
use crate::error::{BenchError, Result};
use crate::harness::{BenchEnv, Reply, DEIMOS};
use crate::messages::{destroy_record, launch_message, launch_record};
use crate::stats::{Row, Summary, Target};
use crate::CleanupGuard;

/// Measured pairs (one deimos launch and one direct create+start each).
const PAIRS: usize = 31;
/// Unmeasured pairs first (binary and image metadata caches).
const WARM_UP_PAIRS: usize = 1;
/// The target of median(deimos launch) / median(direct).
const TARGET_RATIO: f64 = 1.10;

/// Measures both sides; returns the rows for each side and their ratio.
pub(crate) fn bench(docker: &DirectDocker) -> Result<Vec<Row>> {
    let env = BenchEnv::new("launch")?;
    let guard = CleanupGuard::new(docker);
    let (mut via_deimos, mut direct) = (Vec::new(), Vec::new());
    for pair in 0..WARM_UP_PAIRS + PAIRS {
        // Alternate which side goes first, so that drift of the machine hits both alike.
        let deimos_first = pair % 2 == 0;
        let mut times = [Duration::ZERO; 2];
        for side in [deimos_first, !deimos_first] {
            times[usize::from(!side)] = if side {
                launch_with_deimos(&env, &guard, pair)?
            } else {
                launch_directly(&env, docker, &guard, pair)?
            };
        }
        if pair >= WARM_UP_PAIRS {
            via_deimos.push(times[0]);
            direct.push(times[1]);
        }
    }
    let summarise = |samples: &[Duration], what: &str| {
        Summary::of(samples).ok_or_else(|| BenchError::Check(format!("{what}: no samples")))
    };
    let deimos_summary = summarise(&via_deimos, "deimos launch")?;
    let direct_summary = summarise(&direct, "direct create+start")?;
    let ratio = deimos_summary.median.as_secs_f64() / direct_summary.median.as_secs_f64();
    Ok(vec![
        Row::Timing {
            name: "launch: deimos launch (until exit 0)".into(),
            summary: deimos_summary,
            target: Target::None,
        },
        Row::Timing {
            name: "launch: direct create+start (bollard)".into(),
            summary: direct_summary,
            target: Target::None,
        },
        Row::Ratio {
            name: "launch: ratio of medians deimos/direct".into(),
            runs: PAIRS,
            value: ratio,
            target: Target::RatioAtMost(TARGET_RATIO),
        },
    ])
}

/// One `deimos launch` (timed), then `deimos destroy` (not timed).
fn launch_with_deimos(env: &BenchEnv, guard: &CleanupGuard<'_>, pair: usize) -> Result<Duration> {
    let id = format!("bench-launch-{pair}");
    guard.track(&format!("mesos-{id}"));
    let record = launch_record(&id, &env.sandbox(&id))?;
    let elapsed = env.run(&["launch"], &record, Reply::Nothing)?.elapsed;
    env.run(&["destroy"], &destroy_record(&id)?, Reply::Nothing)?;
    Ok(elapsed)
}

/// One direct create+start of the container deimos would create (timed), then its
/// removal (not timed).
fn launch_directly(
    env: &BenchEnv,
    docker: &DirectDocker,
    guard: &CleanupGuard<'_>,
    pair: usize,
) -> Result<Duration> {
    let id = format!("bench-direct-{pair}");
    let name = format!("bench-direct-{pair}-{}", std::process::id());
    guard.track(&name);
    let request = same_request_as_deimos(env, &id)?;
    let start = Instant::now();
    let docker_id = docker.create_and_start(&name, request)?;
    let elapsed = start.elapsed();
    docker.remove(&docker_id)?;
    Ok(elapsed)
}

/// The create request `deimos launch` sends for this container, made with the library and
/// the benchmark's configuration; its sandbox is created as the launch would.
fn same_request_as_deimos(env: &BenchEnv, id: &str) -> Result<CreateRequest> {
    let sandbox = env.sandbox(id);
    fs::create_dir_all(&sandbox).map_err(BenchError::io(format!(
        "create the sandbox {}",
        sandbox.display()
    )))?;
    let loaded = config::load(&SearchEnv {
        config_file: Some(env.config_path().to_path_buf()),
        current_dir: env.base().to_path_buf(),
        called_by_agent: true,
        home: None,
        system_root: PathBuf::from("/"),
    })
    .map_err(|e| BenchError::Library {
        what: format!("load {}", env.config_path().display()),
        reason: e.to_string(),
    })?;
    let process_env: BTreeMap<String, String> =
        [("MESOS_WORK_DIRECTORY".to_owned(), env.work_dir().to_owned())].into();
    let ctx = Context::new(loaded, process_env, env.base().to_path_buf(), DEIMOS.into());
    let settings = ctx.translate_settings();
    let plan = plan_launch(
        &launch_message(id, &sandbox),
        LaunchContext {
            settings: &settings,
            env: &ctx.env,
            cwd: &ctx.cwd,
        },
    )
    .map_err(|e| BenchError::Library {
        what: format!("translate the Launch of {id}"),
        reason: e.to_string(),
    })?;
    create_request(&plan.spec).map_err(|e| BenchError::Library {
        what: format!("make the create request of {id}"),
        reason: e.to_string(),
    })
}
