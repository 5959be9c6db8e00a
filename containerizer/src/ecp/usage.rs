//! `deimos usage` and `deimos update`: statistics and limits of a running container.
//!
//! `usage` is called often by agents for every container, so it reads the container's cgroup
//! files directly: no Docker API call, no async runtime.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use mesos_proto::containerizer::{Update, Usage};
use mesos_proto::ecp;
use mesos_proto::mesos::ResourceStatistics;

use super::context::{read_request, request_id, Context};
use crate::cgroups::{read_usage, ResourceUsage};
use crate::error::{in_container, Error, Result};
use crate::runtime::{ContainerRuntime, RuntimeError};
use crate::spec::Limits;

/// Reads a `Usage` and writes the container's `ResourceStatistics` (always with a timestamp;
/// only the timestamp once the container has exited).
pub fn usage(ctx: &Context, input: &mut dyn Read, output: &mut dyn Write) -> Result<()> {
    let request: Usage = read_request(input)?;
    let id = request_id(&request.container_id)?;
    in_container(id, || usage_of(ctx, id, output))
}

fn usage_of(ctx: &Context, id: &str, output: &mut dyn Write) -> Result<()> {
    let dir = ctx.container(id)?;
    let mut statistics = ResourceStatistics {
        timestamp: now_seconds(),
        ..ResourceStatistics::default()
    };
    if !dir.has_exit()? {
        if let Some(docker_id) = dir.docker_id()? {
            match read_usage(&docker_id, None) {
                Ok(usage) => fill_statistics(&mut statistics, &usage),
                // Exited between the two checks, or no cgroup visible: report what we know.
                Err(error) => log::info!("usage of {}: {error}", dir.id()),
            }
        }
    }
    ecp::write_message(output, &statistics)?;
    Ok(())
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Copies the cgroup readings into the protobuf reply.
pub(super) fn fill_statistics(statistics: &mut ResourceStatistics, usage: &ResourceUsage) {
    statistics.processes = usage.processes;
    statistics.threads = usage.threads;
    statistics.cpus_user_time_secs = usage.cpus_user_time_secs;
    statistics.cpus_system_time_secs = usage.cpus_system_time_secs;
    statistics.cpus_limit = usage.cpus_limit;
    statistics.cpus_nr_periods = usage.cpus_nr_periods;
    statistics.cpus_nr_throttled = usage.cpus_nr_throttled;
    statistics.cpus_throttled_time_secs = usage.cpus_throttled_time_secs;
    statistics.mem_total_bytes = usage.mem_total_bytes;
    statistics.mem_total_memsw_bytes = usage.mem_total_memsw_bytes;
    statistics.mem_limit_bytes = usage.mem_limit_bytes;
    statistics.mem_soft_limit_bytes = usage.mem_soft_limit_bytes;
    statistics.mem_file_bytes = usage.mem_file_bytes;
    statistics.mem_anon_bytes = usage.mem_anon_bytes;
    statistics.mem_cache_bytes = usage.mem_cache_bytes;
    statistics.mem_rss_bytes = usage.mem_rss_bytes;
    statistics.mem_mapped_file_bytes = usage.mem_mapped_file_bytes;
    statistics.mem_swap_bytes = usage.mem_swap_bytes;
    statistics.mem_unevictable_bytes = usage.mem_unevictable_bytes;
}

/// Reads an `Update` and applies its cpus/mem to the running container.
///
/// An empty resource list (the agent shrinks the container after a task's terminal update)
/// changes nothing. A container that already exited is not an error. Docker refusing a change
/// (e.g. a memory limit below current use) is reported on stderr but does not fail the call:
/// a failed `update` makes the agent destroy a healthy container.
pub fn update(ctx: &Context, input: &mut dyn Read) -> Result<()> {
    let request: Update = read_request(input)?;
    let id = request_id(&request.container_id)?;
    in_container(id, || update_limits(ctx, id, &request))
}

fn update_limits(ctx: &Context, id: &str, request: &Update) -> Result<()> {
    let dir = ctx.container(id)?;
    let scalar = |name: &str| -> Option<f64> {
        let total: f64 = request
            .resources
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum();
        (total > 0.0).then_some(total)
    };
    let limits = Limits::from_allocation(
        scalar("cpus"),
        scalar("mem"),
        ctx.config.containers.cfs_quota,
    );
    if limits == Limits::default() || dir.has_exit()? {
        return Ok(());
    }
    let Some(docker_id) = dir.docker_id()? else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start the async runtime"))?;
    let result = runtime.block_on(async {
        ctx.runtime()
            .await?
            .update_limits(&docker_id, &limits)
            .await
            .map_err(Error::from)
    });
    match result {
        Ok(()) => Ok(()),
        Err(Error::Runtime(
            RuntimeError::NoSuchContainer { .. } | RuntimeError::NotRunning { .. },
        )) => Ok(()),
        Err(Error::Runtime(refused)) => {
            eprintln!(
                "deimos update: container {}: limits not changed: {refused}",
                dir.id()
            );
            Ok(())
        }
        Err(other) => Err(other),
    }
}
