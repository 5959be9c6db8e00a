//! Pure parsers for cgroup and procfs file contents.

use std::collections::HashMap;

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controller,list:/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProcCgroupEntry {
    /// Hierarchy id; 0 for the cgroup v2 unified hierarchy.
    pub(super) hierarchy: u32,
    /// Controllers bound to the hierarchy (`name=systemd` included as written); empty for v2.
    pub(super) controllers: Vec<String>,
    /// Path of the cgroup relative to the hierarchy's root, starting with `/`.
    pub(super) path: String,
}

/// Parses `/proc/<pid>/cgroup`; malformed lines are skipped.
pub(super) fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroupEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let hierarchy = fields.next()?.trim().parse().ok()?;
            let controllers = fields.next()?;
            let path = fields.next()?;
            if !path.starts_with('/') {
                return None;
            }
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Some(ProcCgroupEntry {
                hierarchy,
                controllers,
                path: path.to_owned(),
            })
        })
        .collect()
}

/// A file holding one unsigned number.
pub(super) fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A file holding one signed number (`cpu.cfs_quota_us` is -1 when unlimited).
pub(super) fn parse_i64(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

/// A flat keyed file (`memory.stat`, `cpu.stat`, `cpuacct.stat`): `key value` per line.
/// Lines whose value is not a number are skipped.
pub(super) fn parse_flat_keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(char::is_whitespace)?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}

/// Number of non-empty lines (`cgroup.procs`, `tasks`, `cgroup.threads`).
pub(super) fn count_lines(text: &str) -> u32 {
    let count = text.lines().filter(|line| !line.trim().is_empty()).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// cgroup v1 reports "no memory limit" as the largest page-aligned counter value
/// (0x7FFFFFFFFFFFF000 on 64-bit kernels); anything from 2^62 up is treated as unlimited.
pub(super) fn v1_memory_limit(bytes: u64) -> Option<u64> {
    (bytes < 1 << 62).then_some(bytes)
}

/// A cgroup v2 limit file (`memory.max`, `memory.low`): a number or `max` (unlimited: `None`).
pub(super) fn parse_v2_limit(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => None,
        value => value.parse().ok(),
    }
}

/// A CFS bandwidth limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CfsQuota {
    /// Microseconds of CPU time per period.
    pub(super) quota_us: u64,
    /// Period length in microseconds.
    pub(super) period_us: u64,
}

impl CfsQuota {
    /// The limit in CPUs (`quota / period`); `None` for a zero period.
    pub(super) fn cpus(self) -> Option<f64> {
        (self.period_us > 0).then(|| self.quota_us as f64 / self.period_us as f64)
    }
}

/// cgroup v2 `cpu.max`: `"<quota> <period>"` or `"max <period>"`. Returns `Ok(None)` when
/// unlimited, `Err(())` when malformed.
pub(super) fn parse_cpu_max(text: &str) -> Result<Option<CfsQuota>, ()> {
    let mut fields = text.split_whitespace();
    let quota = fields.next().ok_or(())?;
    let period_us = fields.next().ok_or(())?.parse().map_err(|_| ())?;
    if quota == "max" {
        return Ok(None);
    }
    Ok(Some(CfsQuota {
        quota_us: quota.parse().map_err(|_| ())?,
        period_us,
    }))
}

/// cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`: a quota of -1 (or any negative) means
/// unlimited.
pub(super) fn v1_cfs_quota(quota_us: i64, period_us: u64) -> Option<CfsQuota> {
    u64::try_from(quota_us).ok().map(|quota_us| CfsQuota {
        quota_us,
        period_us,
    })
}

/// CPUs from cgroup v1 `cpu.shares` (1024 shares = 1 CPU, Mesos' convention).
pub(super) fn cpus_from_shares(shares: u64) -> f64 {
    shares as f64 / 1024.0
}

/// CPUs from cgroup v2 `cpu.weight`, inverting the conversion Docker/runc apply to
/// `--cpu-shares` (`weight = 1 + (shares - 2) * 9999 / 262142`). The conversion rounds down,
/// so the result is close to, not exactly, the requested share.
pub(super) fn cpus_from_weight(weight: u64) -> f64 {
    let shares = 2.0 + (weight.saturating_sub(1) as f64) * 262_142.0 / 9_999.0;
    shares / 1024.0
}

/// Converts a counter to `u32` (the protobuf field type), saturating.
pub(super) fn saturating_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroup_v1_cgroupfs_lines_are_parsed() {
        let text =
            "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n";
        let entries = parse_proc_cgroup(text);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(entries[1].path, "/docker/abc");
        assert_eq!(
            entries[3],
            ProcCgroupEntry {
                hierarchy: 0,
                controllers: vec![],
                path: "/".into()
            }
        );
    }

    #[test]
    fn proc_cgroup_skips_malformed_lines_and_keeps_colons_in_paths() {
        let entries = parse_proc_cgroup("garbage\nx:memory:/a\n3:memory:/a:b\n5:cpu:relative\n");
        assert_eq!(
            entries,
            [ProcCgroupEntry {
                hierarchy: 3,
                controllers: vec!["memory".into()],
                path: "/a:b".into()
            }]
        );
    }

    #[test]
    fn flat_keyed_files_parse_numbers_and_skip_others() {
        let stat = parse_flat_keyed("cache 4096\nrss 8192\nweird x\n\ntotal_rss 12288\n");
        assert_eq!(stat.get("rss"), Some(&8192));
        assert_eq!(stat.get("total_rss"), Some(&12288));
        assert_eq!(stat.get("weird"), None);
    }

    #[test]
    fn numbers_parse_with_trailing_newline() {
        assert_eq!(parse_u64("67108864\n"), Some(67_108_864));
        assert_eq!(parse_u64("max\n"), None);
        assert_eq!(parse_i64("-1\n"), Some(-1));
    }

    #[test]
    fn v1_unlimited_memory_is_none() {
        assert_eq!(v1_memory_limit(9_223_372_036_854_771_712), None);
        assert_eq!(v1_memory_limit(67_108_864), Some(67_108_864));
    }

    #[test]
    fn v2_limits_read_max_as_unlimited() {
        assert_eq!(parse_v2_limit("max\n"), None);
        assert_eq!(parse_v2_limit("67108864\n"), Some(67_108_864));
    }

    #[test]
    fn cpu_max_reads_quota_and_unlimited() {
        assert_eq!(parse_cpu_max("max 100000\n"), Ok(None));
        let quota = parse_cpu_max("150000 100000\n").unwrap().unwrap();
        assert_eq!(quota.cpus(), Some(1.5));
        assert_eq!(parse_cpu_max("garbage"), Err(()));
        assert_eq!(parse_cpu_max(""), Err(()));
    }

    #[test]
    fn v1_quota_minus_one_is_unlimited() {
        assert_eq!(v1_cfs_quota(-1, 100_000), None);
        assert_eq!(
            v1_cfs_quota(50_000, 100_000).and_then(CfsQuota::cpus),
            Some(0.5)
        );
        assert_eq!(v1_cfs_quota(50_000, 0).and_then(CfsQuota::cpus), None);
    }

    #[test]
    fn shares_and_weights_convert_to_cpus() {
        assert_eq!(cpus_from_shares(512), 0.5);
        // Docker maps --cpu-shares 1024 to weight 39; reading it back gives about one CPU.
        let cpus = cpus_from_weight(39);
        assert!((cpus - 1.0).abs() < 0.03, "{cpus}");
        let cpus = cpus_from_weight(1 + (512 - 2) * 9999 / 262_142);
        assert!((cpus - 0.5).abs() < 0.03, "{cpus}");
    }

    #[test]
    fn line_counts_ignore_blank_lines() {
        assert_eq!(count_lines("1\n25\n\n"), 2);
        assert_eq!(count_lines(""), 0);
    }
}
