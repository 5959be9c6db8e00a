//! Resource statistics read from a container's cgroup (v1 and v2), for `deimos usage`.
//!
//! Agents ask for usage often and for every container, so this reads a handful of small
//! cgroup files and makes no Docker API call. The cgroup is found from the container's init
//! process (`/proc/<pid>/cgroup`, which works whatever the cgroup driver or parent), else by
//! searching where Docker puts it: `<root>/<controller>/docker/<id>`,
//! `<root>/<controller>/system.slice/docker-<id>.scope` (also under combined `cpu,cpuacct`
//! mounts), `<root>/<controller>/<id>`, and on cgroup v2 `<root>/system.slice/docker-<id>.scope`
//! or `<root>/docker/<id>`.
//!
//! Unlike Deimos (D-9), a missing file only leaves its fields unset; CPU times are reported;
//! combined `cpu,cpuacct` mounts and cgroup v2 work. The result is a plain struct whose field
//! names follow Mesos' `ResourceStatistics`; converting it (and adding the timestamp) is the
//! caller's job.

mod locate;
mod parse;
mod read;

use std::path::PathBuf;

pub use locate::{CgroupLocation, V1Dirs};

/// Statistics of one container; `None` where the kernel did not provide the value (missing
/// controller or file, or no limit set). Names and units follow Mesos' `ResourceStatistics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceUsage {
    /// Processes directly in the container's cgroup.
    pub processes: Option<u32>,
    /// Threads (tasks) in the container's cgroup.
    pub threads: Option<u32>,
    /// CPU time spent in user mode, seconds.
    pub cpus_user_time_secs: Option<f64>,
    /// CPU time spent in kernel mode, seconds.
    pub cpus_system_time_secs: Option<f64>,
    /// CPU limit: CFS quota / period when a quota is set, else shares / 1024 (on v2 the shares
    /// are recovered from `cpu.weight`, approximately).
    pub cpus_limit: Option<f64>,
    /// CFS periods elapsed.
    pub cpus_nr_periods: Option<u32>,
    /// CFS periods in which the container was throttled.
    pub cpus_nr_throttled: Option<u32>,
    /// Total time throttled, seconds.
    pub cpus_throttled_time_secs: Option<f64>,
    /// Memory in use (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub mem_total_bytes: Option<u64>,
    /// Memory plus swap in use.
    pub mem_total_memsw_bytes: Option<u64>,
    /// Hard memory limit; `None` when unlimited.
    pub mem_limit_bytes: Option<u64>,
    /// Soft memory limit (reservation); `None` when unset.
    pub mem_soft_limit_bytes: Option<u64>,
    /// File-backed memory (same as `mem_cache_bytes`, kept for old agents).
    pub mem_file_bytes: Option<u64>,
    /// Anonymous memory (same as `mem_rss_bytes`, kept for old agents).
    pub mem_anon_bytes: Option<u64>,
    /// Page cache.
    pub mem_cache_bytes: Option<u64>,
    /// Anonymous resident memory.
    pub mem_rss_bytes: Option<u64>,
    /// Memory-mapped files.
    pub mem_mapped_file_bytes: Option<u64>,
    /// Swap in use.
    pub mem_swap_bytes: Option<u64>,
    /// Memory that cannot be reclaimed.
    pub mem_unevictable_bytes: Option<u64>,
}

/// A container's statistics could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The id is not a full Docker container id (it becomes part of paths).
    #[error("invalid Docker container id {id:?}: expected the full 64-character lowercase hexadecimal id")]
    InvalidContainerId {
        /// The id given.
        id: String,
    },
    /// No cgroup directory of the container exists (it has exited, or cgroups are mounted
    /// elsewhere).
    #[error(
        "no cgroup found for container {container_id} (init pid: {init_pid}); searched: {searched}"
    )]
    NotFound {
        /// The Docker container id.
        container_id: String,
        /// The init pid given, or `unknown`.
        init_pid: String,
        /// The directories tried, comma-separated.
        searched: String,
    },
}

/// Where the cgroup and proc file systems are (injectable for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupFs {
    /// The cgroup mount root (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The proc mount (`/proc`).
    pub proc_root: PathBuf,
    /// `USER_HZ`, the unit of cgroup v1 `cpuacct.stat`.
    pub clock_ticks_per_sec: u64,
}

impl CgroupFs {
    /// This host's `/sys/fs/cgroup` and `/proc`, with `sysconf(_SC_CLK_TCK)` (100 if unknown).
    pub fn host() -> Self {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|ticks| u64::try_from(ticks).ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100);
        Self {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            proc_root: PathBuf::from("/proc"),
            clock_ticks_per_sec: ticks,
        }
    }

    /// Finds the container's cgroup directories. `init_pid` (the container's init process as
    /// Docker reports it) is tried first; it is ignored if its cgroup does not name the
    /// container (the process has gone and the pid was reused).
    pub fn locate(
        &self,
        container_id: &str,
        init_pid: Option<u32>,
    ) -> Result<CgroupLocation, CgroupError> {
        if container_id.len() != 64
            || !container_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(CgroupError::InvalidContainerId {
                id: container_id.to_owned(),
            });
        }
        let proc_cgroup = init_pid.and_then(|pid| {
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()
        });
        locate::locate(&self.cgroup_root, container_id, proc_cgroup.as_deref()).map_err(
            |searched| {
                let searched: Vec<String> = searched
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect();
                CgroupError::NotFound {
                    container_id: container_id.to_owned(),
                    init_pid: init_pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string()),
                    searched: searched.join(", "),
                }
            },
        )
    }

    /// Reads the container's statistics: whatever its cgroup provides.
    pub fn read_usage(
        &self,
        container_id: &str,
        init_pid: Option<u32>,
    ) -> Result<ResourceUsage, CgroupError> {
        Ok(match self.locate(container_id, init_pid)? {
            CgroupLocation::V1(dirs) => read::read_v1(&dirs, self.clock_ticks_per_sec),
            CgroupLocation::V2(dir) => read::read_v2(&dir),
        })
    }
}

/// Reads a container's statistics from this host's cgroups ([`CgroupFs::host`]).
pub fn read_usage(container_id: &str, init_pid: Option<u32>) -> Result<ResourceUsage, CgroupError> {
    CgroupFs::host().read_usage(container_id, init_pid)
}

#[cfg(test)]
mod tests;
