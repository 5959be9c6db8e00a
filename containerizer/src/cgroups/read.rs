//! Reading statistics from located cgroup directories. A missing or malformed file leaves
//! its fields unset; it never fails the whole read.

use std::io::ErrorKind;
use std::path::Path;

use super::locate::V1Dirs;
use super::parse::{
    count_lines, cpus_from_shares, cpus_from_weight, parse_cpu_max, parse_flat_keyed, parse_i64,
    parse_u64, parse_v2_limit, saturating_u32, v1_cfs_quota, v1_memory_limit,
};
use super::ResourceUsage;

/// Reads one small file; `None` when it is missing or unreadable (logged at debug level
/// unless simply absent, which is normal: e.g. swap accounting disabled).
fn read(dir: &Path, name: &str) -> Option<String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == ErrorKind::NotFound => None,
        Err(err) => {
            log::debug!("cannot read {}: {err}", path.display());
            None
        }
    }
}

fn read_u64(dir: &Path, name: &str) -> Option<u64> {
    let value = read(dir, name)?;
    let parsed = parse_u64(&value);
    if parsed.is_none() {
        log::debug!(
            "{} holds {:?}, not a number",
            dir.join(name).display(),
            value.trim()
        );
    }
    parsed
}

fn usecs_to_secs(usecs: u64) -> f64 {
    usecs as f64 / 1e6
}

/// Statistics from cgroup v1 directories; `clock_ticks_per_sec` converts `cpuacct.stat`.
pub(super) fn read_v1(dirs: &V1Dirs, clock_ticks_per_sec: u64) -> ResourceUsage {
    let mut usage = ResourceUsage::default();
    if let Some(dir) = &dirs.cpu {
        read_v1_cpu(dir, &mut usage);
    }
    if let Some(dir) = &dirs.cpuacct {
        read_v1_cpuacct(dir, clock_ticks_per_sec, &mut usage);
    }
    if let Some(dir) = &dirs.memory {
        read_v1_memory(dir, &mut usage);
    }
    let any_dir = [&dirs.memory, &dirs.cpu, &dirs.cpuacct, &dirs.pids]
        .into_iter()
        .flatten()
        .next();
    if let Some(dir) = any_dir {
        usage.processes = read(dir, "cgroup.procs").map(|text| count_lines(&text));
        let pids = dirs
            .pids
            .as_deref()
            .and_then(|pids| read_u64(pids, "pids.current"));
        usage.threads = pids
            .map(saturating_u32)
            .or_else(|| read(dir, "tasks").map(|text| count_lines(&text)));
    }
    usage
}

fn read_v1_cpu(dir: &Path, usage: &mut ResourceUsage) {
    let quota = read(dir, "cpu.cfs_quota_us").and_then(|text| parse_i64(&text));
    let period = read_u64(dir, "cpu.cfs_period_us");
    let quota_cpus = quota
        .zip(period)
        .and_then(|(quota, period)| v1_cfs_quota(quota, period)?.cpus());
    usage.cpus_limit = quota_cpus.or_else(|| read_u64(dir, "cpu.shares").map(cpus_from_shares));
    if let Some(text) = read(dir, "cpu.stat") {
        let stat = parse_flat_keyed(&text);
        usage.cpus_nr_periods = stat.get("nr_periods").copied().map(saturating_u32);
        usage.cpus_nr_throttled = stat.get("nr_throttled").copied().map(saturating_u32);
        usage.cpus_throttled_time_secs = stat.get("throttled_time").map(|&ns| ns as f64 / 1e9);
    }
}

fn read_v1_cpuacct(dir: &Path, clock_ticks_per_sec: u64, usage: &mut ResourceUsage) {
    let Some(text) = read(dir, "cpuacct.stat") else {
        return;
    };
    let stat = parse_flat_keyed(&text);
    let ticks = clock_ticks_per_sec.max(1) as f64;
    usage.cpus_user_time_secs = stat.get("user").map(|&t| t as f64 / ticks);
    usage.cpus_system_time_secs = stat.get("system").map(|&t| t as f64 / ticks);
}

fn read_v1_memory(dir: &Path, usage: &mut ResourceUsage) {
    usage.mem_total_bytes = read_u64(dir, "memory.usage_in_bytes");
    usage.mem_total_memsw_bytes = read_u64(dir, "memory.memsw.usage_in_bytes");
    usage.mem_limit_bytes = read_u64(dir, "memory.limit_in_bytes").and_then(v1_memory_limit);
    usage.mem_soft_limit_bytes =
        read_u64(dir, "memory.soft_limit_in_bytes").and_then(v1_memory_limit);
    let Some(text) = read(dir, "memory.stat") else {
        return;
    };
    let stat = parse_flat_keyed(&text);
    // Hierarchical totals include child cgroups; fall back to the local counters.
    let get = |key: &str| {
        stat.get(format!("total_{key}").as_str())
            .or_else(|| stat.get(key))
            .copied()
    };
    // As Mesos does: rss is the anonymous memory, cache the file-backed memory.
    usage.mem_rss_bytes = get("rss");
    usage.mem_anon_bytes = get("rss");
    usage.mem_cache_bytes = get("cache");
    usage.mem_file_bytes = get("cache");
    usage.mem_mapped_file_bytes = get("mapped_file");
    usage.mem_swap_bytes = get("swap");
    usage.mem_unevictable_bytes = get("unevictable");
}

/// Statistics from a cgroup v2 directory.
pub(super) fn read_v2(dir: &Path) -> ResourceUsage {
    let mut usage = ResourceUsage::default();
    read_v2_cpu(dir, &mut usage);
    read_v2_memory(dir, &mut usage);
    usage.processes = read(dir, "cgroup.procs").map(|text| count_lines(&text));
    usage.threads = read_u64(dir, "pids.current")
        .map(saturating_u32)
        .or_else(|| read(dir, "cgroup.threads").map(|text| count_lines(&text)));
    usage
}

fn read_v2_cpu(dir: &Path, usage: &mut ResourceUsage) {
    let quota = read(dir, "cpu.max").and_then(|text| match parse_cpu_max(&text) {
        Ok(quota) => quota,
        Err(()) => {
            log::debug!(
                "{} holds {:?}, not \"<quota|max> <period>\"",
                dir.join("cpu.max").display(),
                text.trim()
            );
            None
        }
    });
    usage.cpus_limit = quota
        .and_then(|q| q.cpus())
        .or_else(|| read_u64(dir, "cpu.weight").map(cpus_from_weight));
    if let Some(text) = read(dir, "cpu.stat") {
        let stat = parse_flat_keyed(&text);
        usage.cpus_user_time_secs = stat.get("user_usec").copied().map(usecs_to_secs);
        usage.cpus_system_time_secs = stat.get("system_usec").copied().map(usecs_to_secs);
        usage.cpus_nr_periods = stat.get("nr_periods").copied().map(saturating_u32);
        usage.cpus_nr_throttled = stat.get("nr_throttled").copied().map(saturating_u32);
        usage.cpus_throttled_time_secs = stat.get("throttled_usec").copied().map(usecs_to_secs);
    }
}

fn read_v2_memory(dir: &Path, usage: &mut ResourceUsage) {
    usage.mem_total_bytes = read_u64(dir, "memory.current");
    usage.mem_swap_bytes = read_u64(dir, "memory.swap.current");
    usage.mem_total_memsw_bytes = usage
        .mem_total_bytes
        .zip(usage.mem_swap_bytes)
        .map(|(m, s)| m.saturating_add(s));
    usage.mem_limit_bytes = read(dir, "memory.max").and_then(|text| parse_v2_limit(&text));
    // `docker run --memory-reservation` sets memory.low on v2.
    usage.mem_soft_limit_bytes = read(dir, "memory.low")
        .and_then(|text| parse_v2_limit(&text))
        .filter(|&low| low > 0);
    let Some(text) = read(dir, "memory.stat") else {
        return;
    };
    let stat = parse_flat_keyed(&text);
    usage.mem_rss_bytes = stat.get("anon").copied();
    usage.mem_anon_bytes = stat.get("anon").copied();
    usage.mem_cache_bytes = stat.get("file").copied();
    usage.mem_file_bytes = stat.get("file").copied();
    usage.mem_mapped_file_bytes = stat.get("file_mapped").copied();
    usage.mem_unevictable_bytes = stat.get("unevictable").copied();
}
